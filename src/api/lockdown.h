/* The lock-down (vmproc_lockdown, lockdown.c) and its Landlock half
 * (landlock.c). */
#ifndef VMP_API_LOCKDOWN_H
#define VMP_API_LOCKDOWN_H

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"
#include "vmproc.h"

/* Beside VMPROC_LOCKDOWN_READ and _WRITE: ioctls on the device file
 * (/dev/kvm) are allowed too. */
#define LOCKDOWN_DEVICE 0x100u

struct lockdown_path {
	char *path;
	unsigned access; /* VMPROC_LOCKDOWN_* | LOCKDOWN_DEVICE */
};

/* The Landlock ABI version this kernel offers, 0 if none. */
int landlock_abi(void);

/* A ruleset for abi (>= 1) that allows only paths[0..n) (those that do
 * not exist are skipped) and handles every access right abi knows: file
 * access, TCP bind and connect, signals and abstract UNIX sockets out of
 * the domain. Returns its fd, or a negative errno value with err set. */
int landlock_ruleset(int abi, const struct lockdown_path *paths, size_t n, struct vmp_error *err);

/* Enforces the ruleset on the calling thread (no_new_privs must be set)
 * and closes it. */
int landlock_enforce(int ruleset_fd, struct vmp_error *err);

#endif
