/* Host files for a command (vmproc_cmd_share, vmproc_cmd_root,
 * vmproc_cmd_file): at spawn, the FUSE server behind the VM's virtio-fs
 * device and the ROOT/MOUNT messages that make init mount it
 * (vmproc_abi.h). */
#ifndef VMP_API_FILES_H
#define VMP_API_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "api/command.h"
#include "fuse/server.h"

/* Receives one encoded message (type, payload) for the control port. */
typedef int (*cmd_put_fn)(void *ctx, uint32_t type, const void *payload, size_t len);

/* Whether cmd has any host files (else no server is needed: the device
 * answers nothing and init mounts nothing). */
int cmd_files_any(const vmproc_cmd *cmd);

/* Builds the server for cmd's shares, root and files (host directories
 * are opened now) into *out (the caller frees it), and hands the
 * ROOT/MOUNT messages to put in the order init must apply them. */
int cmd_files_build(const vmproc_cmd *cmd, struct fuse_server **out, cmd_put_fn put, void *ctx,
                    struct vmp_error *err);

/* Normalises an absolute guest path into a new string: collapses
 * repeated '/', drops a trailing '/'; NULL (errno EINVAL) if it is
 * relative, has a "." or ".." component, or is longer than PATH_MAX. */
char *cmd_guest_path(const char *path);

#endif
