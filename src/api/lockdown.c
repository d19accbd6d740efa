/* vmproc_lockdown: a process that is only a VMM drops what it does not
 * need. no_new_privs, Landlock (landlock.c) for the files, and a seccomp
 * allowlist for every thread. docs/security.md says, group by group, why
 * each syscall is allowed; a syscall the VMM starts to use must be added
 * to its group here and there, or the process dies of SIGSYS. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/command.h"
#include "api/config.h"
#include "api/lockdown.h"

struct vmproc_lockdown {
	struct lockdown_path *paths;
	size_t npaths, cap;
	vmproc_landlock_mode landlock;
	int landlock_abi; /* enforced, after apply */
	bool applied;
	struct vmp_error err;
};

/* --- the seccomp allowlist --------------------------------------------- */

/* Allowed whatever their arguments (docs/security.md, same groups). */
static const int allowed[] = {
    /* memory: glibc's heap, guest RAM, snapshots mapped copy-on-write
     * (mmap and mprotect are in `checked`: never executable) */
    SCMP_SYS(brk),
    SCMP_SYS(munmap),
    SCMP_SYS(mremap),
    SCMP_SYS(madvise),
    SCMP_SYS(memfd_create),
    /* threads (clone is checked) and their synchronisation */
    SCMP_SYS(futex),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    SCMP_SYS(gettid),
    SCMP_SYS(getpid),
    SCMP_SYS(restart_syscall),
    /* signals within the process (kill and tgkill are checked) */
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigtimedwait),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(signalfd4),
    /* clocks, timers (timeout and profile kicks), CPU time for traces */
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_getres),
    SCMP_SYS(gettimeofday),
    SCMP_SYS(time),
    SCMP_SYS(nanosleep),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(timer_create),
    SCMP_SYS(timer_settime),
    SCMP_SYS(timer_gettime),
    SCMP_SYS(timer_getoverrun),
    SCMP_SYS(timer_delete),
    SCMP_SYS(getrusage),
    /* I/O on descriptors the process has: standard streams, pipes,
     * eventfds (irqfds, wake-ups), disks, snapshots */
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(lseek),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(close),
    SCMP_SYS(dup),
    SCMP_SYS(dup3),
    SCMP_SYS(eventfd2),
    SCMP_SYS(pipe2),
    SCMP_SYS(getrandom),
    /* files: the FUSE server's operations, disks, the snapshot cache
     * (which files: Landlock's part; open, openat, mknodat and the
     * chmods are checked) */
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(statx),
    SCMP_SYS(fstatfs),
    SCMP_SYS(getdents64),
    SCMP_SYS(readlinkat),
    SCMP_SYS(mkdir),
    SCMP_SYS(mkdirat),
    SCMP_SYS(symlinkat),
    SCMP_SYS(linkat),
    SCMP_SYS(link), /* the cache secret is made once: a temporary file linked into place */
    SCMP_SYS(unlink),
    SCMP_SYS(unlinkat),
    SCMP_SYS(rename),
    SCMP_SYS(renameat),
    SCMP_SYS(renameat2),
    SCMP_SYS(fchownat),
    SCMP_SYS(utimensat),
    SCMP_SYS(fallocate),
    SCMP_SYS(ftruncate),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(syncfs),
    SCMP_SYS(flock),
    /* identity, read only */
    SCMP_SYS(getuid),
    SCMP_SYS(geteuid),
    SCMP_SYS(getgid),
    SCMP_SYS(getegid),
    SCMP_SYS(getppid),
    SCMP_SYS(getpgrp),
    SCMP_SYS(sysinfo),
};

/* Allowed when (argument & mask) == value; several rows for one syscall
 * are alternatives. */
struct checked {
	int nr;
	unsigned arg;
	scmp_datum_t mask, value;
};

#define LOW32     0xffffffffull
#define SUID_SGID ((scmp_datum_t)(S_ISUID | S_ISGID))
#define CREATES   ((scmp_datum_t)(O_CREAT | (O_TMPFILE & ~O_DIRECTORY)))
#define NEW_NAMESPACE                                                                              \
	((scmp_datum_t)(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |              \
	                CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET))
#define IOCTL(req)                                                                                 \
	{                                                                                          \
		SCMP_SYS(ioctl), 1, LOW32, (scmp_datum_t)(req)                                     \
	}
#define FCNTL(cmd)                                                                                 \
	{                                                                                          \
		SCMP_SYS(fcntl), 1, LOW32, (scmp_datum_t)(cmd)                                     \
	}
#define MKNOD(type)                                                                                \
	{                                                                                          \
		SCMP_SYS(mknodat), 2, S_IFMT | SUID_SGID, (scmp_datum_t)(type)                     \
	}

static const struct checked checked[] = {
    /* memory is never made executable: no code can be loaded */
    {SCMP_SYS(mmap), 2, PROT_EXEC, 0},
    {SCMP_SYS(mprotect), 2, PROT_EXEC, 0},
    /* threads share everything; a new process (fork) is refused */
    {SCMP_SYS(clone), 0, CLONE_THREAD | NEW_NAMESPACE, CLONE_THREAD},
    /* files are opened, but not created set-user-ID or set-group-ID */
    {SCMP_SYS(open), 1, CREATES, 0},
    {SCMP_SYS(open), 2, SUID_SGID, 0},
    {SCMP_SYS(openat), 2, CREATES, 0},
    {SCMP_SYS(openat), 3, SUID_SGID, 0},
    {SCMP_SYS(fchmod), 1, SUID_SGID, 0},
    {SCMP_SYS(fchmodat), 2, SUID_SGID, 0},
    /* the FUSE server's mknod: regular files, FIFOs, sockets, never a
     * device node */
    MKNOD(S_IFREG),
    MKNOD(S_IFIFO),
    MKNOD(S_IFSOCK),
    /* descriptor flags and duplicates; no locks or leases on host files */
    FCNTL(F_GETFD),
    FCNTL(F_SETFD),
    FCNTL(F_GETFL),
    FCNTL(F_SETFL),
    FCNTL(F_DUPFD),
    FCNTL(F_DUPFD_CLOEXEC),
    /* the snapshot's memory is a sealed memfd (src/snapshot/snapshot.c) */
    FCNTL(F_ADD_SEALS),
    FCNTL(F_GET_SEALS),
    /* resource limits may be read, not changed */
    {SCMP_SYS(prlimit64), 2, ~0ull, 0},
    /* the terminal: isatty, raw mode for -t, its size, job control */
    IOCTL(TCGETS),
    IOCTL(TCSETS),
    IOCTL(TCSETSW),
    IOCTL(TCSETSF),
    IOCTL(TIOCGWINSZ),
    IOCTL(TIOCGPGRP),
    /* KVM, every ioctl the VMM makes: /dev/kvm's ... */
    IOCTL(KVM_GET_API_VERSION),
    IOCTL(KVM_CHECK_EXTENSION),
    IOCTL(KVM_CREATE_VM),
    IOCTL(KVM_GET_VCPU_MMAP_SIZE),
    IOCTL(KVM_GET_SUPPORTED_CPUID),
    IOCTL(KVM_GET_MSR_INDEX_LIST),
    /* ... the VM's ... */
    IOCTL(KVM_SET_TSS_ADDR),
    IOCTL(KVM_CREATE_IRQCHIP),
    IOCTL(KVM_CREATE_PIT2),
    IOCTL(KVM_SET_USER_MEMORY_REGION),
    IOCTL(KVM_CREATE_VCPU),
    IOCTL(KVM_IRQFD),
    IOCTL(KVM_GET_IRQCHIP),
    IOCTL(KVM_SET_IRQCHIP),
    IOCTL(KVM_GET_PIT2),
    IOCTL(KVM_SET_PIT2),
    IOCTL(KVM_GET_CLOCK),
    IOCTL(KVM_SET_CLOCK),
    /* ... and each vCPU's */
    IOCTL(KVM_RUN),
    IOCTL(KVM_SET_CPUID2),
    IOCTL(KVM_SET_SIGNAL_MASK),
    IOCTL(KVM_GET_REGS),
    IOCTL(KVM_SET_REGS),
    IOCTL(KVM_GET_SREGS),
    IOCTL(KVM_SET_SREGS),
    IOCTL(KVM_SET_FPU),
    IOCTL(KVM_GET_MSRS),
    IOCTL(KVM_SET_MSRS),
    IOCTL(KVM_GET_XSAVE),
    IOCTL(KVM_SET_XSAVE),
    IOCTL(KVM_GET_XCRS),
    IOCTL(KVM_SET_XCRS),
    IOCTL(KVM_GET_LAPIC),
    IOCTL(KVM_SET_LAPIC),
    IOCTL(KVM_GET_VCPU_EVENTS),
    IOCTL(KVM_SET_VCPU_EVENTS),
    IOCTL(KVM_GET_MP_STATE),
    IOCTL(KVM_SET_MP_STATE),
    IOCTL(KVM_GET_DEBUGREGS),
    IOCTL(KVM_SET_DEBUGREGS),
};

/* A process built with AddressSanitizer (the test suite's second build)
 * checks for leaks at exit from a thread that stops the others with
 * ptrace; these are allowed only when its runtime is linked in. */
static const int sanitizer[] = {
    SCMP_SYS(prctl), SCMP_SYS(ptrace), SCMP_SYS(wait4), SCMP_SYS(readlink), SCMP_SYS(getdents),
};
/* Defined by the AddressSanitizer and LeakSanitizer runtimes only. */
extern void __lsan_do_leak_check(void) __attribute__((weak));

static bool sanitizer_runtime(void)
{
	return __lsan_do_leak_check != NULL;
}

static int add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned n,
                    const struct scmp_arg_cmp *cmp, struct vmp_error *err)
{
	int rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);
	if (rc) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		vmp_fail_errno(err, rc, "seccomp: cannot add a rule for %s", name ? name : "?");
		free(name);
	}
	return rc;
}

/* Signals go to this process only, not to others. */
static int add_own_signals(scmp_filter_ctx ctx, struct vmp_error *err)
{
	const struct scmp_arg_cmp self = SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (scmp_datum_t)getpid());
	int rc = add_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, &self, err);
	return rc ? rc : add_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, &self, err);
}

static int build_filter(scmp_filter_ctx *out, struct vmp_error *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return vmp_fail(err, -ENOMEM, "seccomp: cannot create a filter");
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	/* Every thread, those running VMs already included. */
	if (!rc)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc)
		vmp_fail_errno(err, rc, "seccomp: cannot set the filter's attributes");
	for (size_t i = 0; !rc && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		rc = add_rule(ctx, SCMP_ACT_ALLOW, allowed[i], 0, NULL, err);
	for (size_t i = 0; !rc && i < sizeof(checked) / sizeof(checked[0]); i++) {
		const struct checked *c = &checked[i];
		const struct scmp_arg_cmp cmp = {c->arg, SCMP_CMP_MASKED_EQ, c->mask, c->value};
		rc = add_rule(ctx, SCMP_ACT_ALLOW, c->nr, 1, &cmp, err);
	}
	if (!rc)
		rc = add_own_signals(ctx, err);
	for (size_t i = 0;
	     !rc && sanitizer_runtime() && i < sizeof(sanitizer) / sizeof(sanitizer[0]); i++)
		rc = add_rule(ctx, SCMP_ACT_ALLOW, sanitizer[i], 0, NULL, err);
	/* ... and its leak checker's helper is a clone that shares memory
	 * but is no thread (a fork, which shares none, stays refused). */
	if (!rc && sanitizer_runtime()) {
		const struct scmp_arg_cmp vm =
		    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_VM | NEW_NAMESPACE, CLONE_VM);
		rc = add_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, &vm, err);
	}
	/* clone3 passes its flags in memory, where a filter cannot check
	 * them: glibc falls back to clone, whose flags are checked. */
	if (!rc)
		rc = add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, NULL, err);
	if (rc) {
		seccomp_release(ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

/* --- the object ---------------------------------------------------------- */

int vmproc_lockdown_new(vmproc_lockdown **out)
{
	if (!out)
		return -EINVAL;
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void vmproc_lockdown_free(vmproc_lockdown *ld)
{
	if (!ld)
		return;
	for (size_t i = 0; i < ld->npaths; i++)
		free(ld->paths[i].path);
	free(ld->paths);
	free(ld);
}

const char *vmproc_lockdown_error(const vmproc_lockdown *ld)
{
	return ld ? ld->err.msg : "";
}

static int add_path(vmproc_lockdown *ld, const char *path, unsigned access)
{
	if (ld->npaths == ld->cap) {
		size_t cap = ld->cap ? 2 * ld->cap : 8;
		struct lockdown_path *p = realloc(ld->paths, cap * sizeof(*p));
		if (!p)
			return vmp_fail(&ld->err, -ENOMEM, "out of memory");
		ld->paths = p;
		ld->cap = cap;
	}
	char *copy = strdup(path);
	if (!copy)
		return vmp_fail(&ld->err, -ENOMEM, "out of memory");
	ld->paths[ld->npaths++] = (struct lockdown_path){.path = copy, .access = access};
	return 0;
}

/* Every setter starts here: a clean message, and no change once applied. */
static int begin(vmproc_lockdown *ld)
{
	if (!ld)
		return -EINVAL;
	vmp_error_clear(&ld->err);
	if (ld->applied)
		return vmp_fail(&ld->err, -EALREADY, "the lock-down is applied already");
	return 0;
}

int vmproc_lockdown_allow_path(vmproc_lockdown *ld, const char *path, unsigned access)
{
	int rc = begin(ld);
	if (rc)
		return rc;
	if (!path || !*path)
		return vmp_fail(&ld->err, -EINVAL, "allow_path: the path is empty");
	if (!access || (access & ~(VMPROC_LOCKDOWN_READ | VMPROC_LOCKDOWN_WRITE)))
		return vmp_fail(&ld->err, -EINVAL, "allow_path: bad access 0x%x", access);
	return add_path(ld, path, access);
}

/* Creates dir and its missing parents, as the snapshot cache will. */
static int make_dir_chain(char *dir)
{
	if (mkdir(dir, 0755) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -errno;
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return -ENOENT;
	*slash = '\0';
	int rc = make_dir_chain(dir);
	*slash = '/';
	if (!rc && mkdir(dir, 0755) < 0 && errno != EEXIST)
		rc = -errno;
	return rc;
}

/* The snapshot cache, if there is one: a process without it can still
 * boot VMs, so none is not an error. */
static int allow_cache(vmproc_lockdown *ld)
{
	char dir[4096];
	int n = vmproc_snapshot_cache_dir(dir, sizeof(dir));
	if (n < 0 || (size_t)n >= sizeof(dir))
		return 0;
	make_dir_chain(dir);
	return add_path(ld, dir, VMPROC_LOCKDOWN_READ | VMPROC_LOCKDOWN_WRITE);
}

int vmproc_lockdown_allow_config(vmproc_lockdown *ld, const vmproc_config *cfg)
{
	int rc = begin(ld);
	if (rc)
		return rc;
	struct vm_config defaults;
	vm_config_init(&defaults);
	const struct vm_config *c = cfg ? &cfg->vm : &defaults;
	struct vm_files files;
	if ((rc = vm_config_resolve_files(c, &files, &ld->err)))
		return rc;
	const char *const read_only[] = {files.kernel, files.initrd, files.system};
	for (size_t i = 0; !rc && i < sizeof(read_only) / sizeof(read_only[0]); i++)
		if (read_only[i] && *read_only[i])
			rc = add_path(ld, read_only[i], VMPROC_LOCKDOWN_READ);
	for (unsigned i = 0; !rc && i < c->ndisks; i++)
		rc = add_path(ld, c->disks[i].path,
		              VMPROC_LOCKDOWN_READ |
		                  (c->disks[i].read_only ? 0 : VMPROC_LOCKDOWN_WRITE));
	vm_files_release(&files);
	return rc ? rc : allow_cache(ld);
}

int vmproc_lockdown_allow_cmd(vmproc_lockdown *ld, const vmproc_cmd *cmd)
{
	int rc = begin(ld);
	if (rc)
		return rc;
	if (!cmd)
		return vmp_fail(&ld->err, -EINVAL, "allow_cmd: no command");
	for (size_t i = 0; !rc && i < cmd->nshares; i++)
		rc = add_path(ld, cmd->shares[i].host,
		              (cmd->shares[i].flags & VMPROC_SHARE_READONLY)
		                  ? VMPROC_LOCKDOWN_READ
		                  : VMPROC_LOCKDOWN_READ | VMPROC_LOCKDOWN_WRITE);
	/* An overlay root changes only guest memory. */
	if (!rc && cmd->root)
		rc = add_path(ld, cmd->root,
		              (cmd->root_flags & (VMPROC_ROOT_READONLY | VMPROC_ROOT_OVERLAY))
		                  ? VMPROC_LOCKDOWN_READ
		                  : VMPROC_LOCKDOWN_READ | VMPROC_LOCKDOWN_WRITE);
	return rc;
}

int vmproc_lockdown_landlock(vmproc_lockdown *ld, vmproc_landlock_mode mode)
{
	int rc = begin(ld);
	if (rc)
		return rc;
	if (mode != VMPROC_LANDLOCK_AUTO && mode != VMPROC_LANDLOCK_OFF &&
	    mode != VMPROC_LANDLOCK_REQUIRE)
		return vmp_fail(&ld->err, -EINVAL, "unknown Landlock mode %d", (int)mode);
	ld->landlock = mode;
	return 0;
}

/* A sanitizer's report reads the program and its libraries for their
 * symbols: every file mapped now, read only. */
static int allow_mapped_files(vmproc_lockdown *ld)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return 0;
	char line[4096 + 128];
	int rc = 0;
	while (!rc && fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');
		if (!path)
			continue;
		path[strcspn(path, "\n")] = '\0';
		rc = add_path(ld, path, VMPROC_LOCKDOWN_READ);
	}
	fclose(f);
	return rc;
}

/* What every VM needs beside the caller's paths. */
static int add_builtin_paths(vmproc_lockdown *ld)
{
	int rc = add_path(ld, "/dev/kvm",
	                  VMPROC_LOCKDOWN_READ | VMPROC_LOCKDOWN_WRITE | LOCKDOWN_DEVICE);
	/* Whether the host emulates guest-kernel code (x86/cpuid.c). */
	if (!rc)
		rc = add_path(ld, "/proc/cpuinfo", VMPROC_LOCKDOWN_READ);
	/* glibc and the FUSE server's /proc/self/fd reopening. */
	if (!rc)
		rc = add_path(ld, "/proc/self", VMPROC_LOCKDOWN_READ);
	if (!rc && sanitizer_runtime())
		rc = allow_mapped_files(ld);
	return rc;
}

/* The ruleset to enforce into *fd, or -1 if Landlock is off or missing. */
static int landlock_prepare(vmproc_lockdown *ld, int *fd, int *abi)
{
	*fd = -1;
	*abi = ld->landlock == VMPROC_LANDLOCK_OFF ? 0 : landlock_abi();
	if (!*abi)
		return ld->landlock == VMPROC_LANDLOCK_REQUIRE
		           ? vmp_fail(&ld->err, -EOPNOTSUPP, "this kernel has no Landlock")
		           : 0;
	int rc = add_builtin_paths(ld);
	if (!rc && (rc = landlock_ruleset(*abi, ld->paths, ld->npaths, &ld->err)) >= 0) {
		*fd = rc;
		rc = 0;
	}
	return rc;
}

int vmproc_lockdown_apply(vmproc_lockdown *ld)
{
	int rc = begin(ld);
	if (rc)
		return rc;
	scmp_filter_ctx ctx = NULL;
	if ((rc = build_filter(&ctx, &ld->err)))
		return rc;
	int ruleset, abi;
	rc = landlock_prepare(ld, &ruleset, &abi);
	/* Landlock and a filter loaded without CAP_SYS_ADMIN need it; no
	 * exec could gain privileges anyway. */
	if (!rc && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		rc = vmp_fail_errno(&ld->err, -errno, "cannot set no_new_privs");
	if (!rc && ruleset >= 0) {
		rc = landlock_enforce(ruleset, &ld->err);
		ruleset = -1;
		if (!rc)
			ld->landlock_abi = abi;
	}
	if (!rc && (rc = seccomp_load(ctx)))
		vmp_fail_errno(&ld->err, rc, "seccomp: cannot load the filter%s",
		               rc == -ESRCH ? " into every thread (one has a filter of its own)"
		                            : "");
	if (ruleset >= 0)
		close(ruleset);
	seccomp_release(ctx);
	ld->applied = !rc;
	return rc;
}

int vmproc_lockdown_landlock_abi(const vmproc_lockdown *ld)
{
	return ld ? ld->landlock_abi : -EINVAL;
}
