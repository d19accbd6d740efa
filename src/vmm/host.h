/* The host as the floors above the VMM need to know it. */
#ifndef VMP_VMM_HOST_H
#define VMP_VMM_HOST_H

#include <stdbool.h>
#include <stdio.h>

#include "util/error.h"

/* Whether this host's KVM runs guest-kernel code through its emulator
 * (no VMX/SVM; docs/platform.md). */
bool vm_host_emulates_kernel(void);
/* An environment word every guest program needs on this host
 * ("GLIBC_TUNABLES=..." where the guest kernel cannot save AVX state),
 * or NULL. */
const char *vm_host_guest_env(void);
/* Writes a line describing the host CPU as KVM offers it to vCPU 0 of a
 * VM with cpus vCPUs, and whether guest-kernel code is emulated: a
 * snapshot taken on another CPU must not be restored here. */
int vm_host_describe(FILE *f, unsigned cpus, struct vmp_error *err);

#endif
