/* Host files in the guest (vmproc_abi.h, ROOT and MOUNT): mounting the
 * virtio-fs device and binding its entries where the command wants them.
 * A file of its own so that the host tests of serve.c (tests/guest/serve_session.c) link
 * a stub in its place. */
#ifndef VMPROC_INIT_MOUNTS_H
#define VMPROC_INIT_MOUNTS_H

#include "init_logic.h"

/* Applies cmd's ROOT and MOUNTs (nothing if it has none). Returns 0, or
 * the errno of the step that failed (reported on the console). With a
 * ROOT, *root is the directory the program must chroot into (else
 * NULL). */
int init_mounts(const struct init_cmd *cmd, const char **root);

#endif
