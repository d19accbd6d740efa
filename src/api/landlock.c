/* Landlock for the lock-down: which files the process may still open.
 * Through the kernel's UAPI and syscall(2) (Debian has no library for
 * it); the rights that headers older than the running kernel lack are
 * defined here. Every right the kernel's ABI knows is handled, so what
 * no rule allows is denied. */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "api/lockdown.h"

/* ABI 2 (Linux 5.19) and later. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
/* ABI 3 (6.2) */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
/* ABI 5 (6.10) */
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
/* ABI 4 (6.7): TCP */
#define LL_NET_BIND_TCP    (1ULL << 0)
#define LL_NET_CONNECT_TCP (1ULL << 1)
/* ABI 6 (6.12): scopes */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LL_SCOPE_SIGNAL               (1ULL << 1)

/* struct landlock_ruleset_attr as of ABI 6; the kernel is given only the
 * fields its ABI has. */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

/* ABI 1: everything up to making symlinks. */
#define LL_FS_V1 ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1)
/* What a rule on a file (not a directory) may hold. */
#define LL_FS_FILE                                                                                 \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |                              \
	 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |                              \
	 LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define LL_FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
/* Changes, but never device nodes and never execution. */
#define LL_FS_WRITE                                                                                \
	(LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |                           \
	 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |                            \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |                              \
	 LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_REFER |   \
	 LANDLOCK_ACCESS_FS_TRUNCATE)

int landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return v > 0 ? (int)v : 0;
}

static uint64_t handled_fs(int abi)
{
	uint64_t fs = LL_FS_V1;
	if (abi >= 2)
		fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return fs;
}

static uint64_t rights(unsigned access)
{
	uint64_t r = 0;
	if (access & VMPROC_LOCKDOWN_READ)
		r |= LL_FS_READ;
	if (access & VMPROC_LOCKDOWN_WRITE)
		r |= LL_FS_WRITE;
	if (access & LOCKDOWN_DEVICE)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

static int add_path(int ruleset, uint64_t handled, const struct lockdown_path *p,
                    struct vmp_error *err)
{
	int fd = open(p->path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : vmp_fail_errno(err, -errno, "landlock: %s", p->path);
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? vmp_fail_errno(err, -errno, "landlock: %s", p->path) : 0;
	struct landlock_path_beneath_attr attr = {
	    .allowed_access = rights(p->access) & handled,
	    .parent_fd = fd,
	};
	if (!S_ISDIR(st.st_mode))
		attr.allowed_access &= LL_FS_FILE;
	if (!rc && attr.allowed_access &&
	    syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &attr, 0) < 0)
		rc = vmp_fail_errno(err, -errno, "landlock: adding %s", p->path);
	close(fd);
	return rc;
}

int landlock_ruleset(int abi, const struct lockdown_path *paths, size_t n, struct vmp_error *err)
{
	struct ll_ruleset_attr attr = {.handled_access_fs = handled_fs(abi)};
	size_t size = sizeof(attr.handled_access_fs);
	if (abi >= 4) {
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		size += sizeof(attr.handled_access_net);
	}
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
		size += sizeof(attr.scoped);
	}
	int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (fd < 0)
		return vmp_fail_errno(err, -errno, "landlock: cannot create a ruleset (ABI %d)",
		                      abi);
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++)
		rc = add_path(fd, attr.handled_access_fs, &paths[i], err);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

int landlock_enforce(int ruleset_fd, struct vmp_error *err)
{
	int rc = 0;
	if (syscall(SYS_landlock_restrict_self, ruleset_fd, 0) < 0)
		rc = vmp_fail_errno(err, -errno, "landlock: cannot enforce the ruleset");
	close(ruleset_fd);
	return rc;
}
