/* vmproc: run Linux programs in lightweight KVM virtual machines, from a
 * library, as easily as child processes.
 *
 * Conventions (all functions):
 * - Functions returning int return 0 on success or a negative errno value
 *   (-EINVAL, -ENOMEM, ...). Where a handle exists, a readable message
 *   describing the last failure is kept on it (vmproc_config_error,
 *   vmproc_vm_error). The library never prints, never exits the process
 *   and never raises signals at the caller.
 * - Strings passed in are copied; the caller keeps ownership of its
 *   pointers. Strings returned are owned by the handle and stay valid
 *   until the next call on that handle, or its _free.
 * - Thread safety is stated per function. "Any thread" functions may be
 *   called concurrently with each other on the same handle; other
 *   functions need the caller to serialise calls on that handle.
 *   Different handles are fully independent: any number of VMs may run
 *   in one process, from any threads.
 * - vmproc interrupts its own vCPU threads with the signal
 *   VMPROC_KICK_SIGNAL (SIGRTMAX - 1). On first use it installs a handler
 *   that does nothing for that signal if its disposition is SIG_DFL; a
 *   program that uses SIGRTMAX - 1 itself must leave it alone.
 */
#ifndef VMPROC_H
#define VMPROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VMPROC_API __attribute__((visibility("default")))
#else
#define VMPROC_API
#endif

#define VMPROC_VERSION_MAJOR  0
#define VMPROC_VERSION_MINOR  1
#define VMPROC_VERSION_PATCH  0
#define VMPROC_VERSION_STRING "0.1.0"

/* The library's version at run time, e.g. "0.1.0". Any thread. */
VMPROC_API const char *vmproc_version(void);

/* ------------------------------------------------------------------ */
/* VM configuration                                                    */
/* ------------------------------------------------------------------ */

typedef struct vmproc_config vmproc_config;

/* Called with guest console output (kernel messages, and whatever the
 * guest writes to /dev/console). Runs on a library thread; it must not
 * call back into the VM that produced the output, and it should return
 * quickly: the guest waits while it runs.
 * data may point straight into guest memory, which another vCPU of the
 * guest can change while the callback runs: copy what you parse first,
 * then check the copy (see "Guest memory in callbacks" below). */
typedef void (*vmproc_output_fn)(const void *data, size_t len, void *userdata);

/* Creates a configuration with defaults: the built-in guest kernel,
 * initramfs and system image, 128 MiB of memory, 1 vCPU, no timeout, console discarded.
 * *out is owned by the caller (vmproc_config_free). Any thread. */
VMPROC_API int vmproc_config_new(vmproc_config **out);
/* Frees cfg (NULL is fine). VMs created from it are unaffected. */
VMPROC_API void vmproc_config_free(vmproc_config *cfg);
/* Message for the last failed setter on cfg ("" if none). */
VMPROC_API const char *vmproc_config_error(const vmproc_config *cfg);

/* Path to an uncompressed x86_64 Linux kernel (vmlinux ELF). NULL restores
 * the default: $VMPROC_KERNEL, else the kernel installed with vmproc. */
VMPROC_API int vmproc_config_set_kernel(vmproc_config *cfg, const char *path);
/* Path to an initramfs (uncompressed newc cpio recommended). NULL
 * restores the default: $VMPROC_INITRD, else the built-in image. */
VMPROC_API int vmproc_config_set_initrd(vmproc_config *cfg, const char *path);
/* The system image: a read-only file system (erofs) that the guest init
 * mounts at /usr; the default one holds busybox (/bin/sh and friends,
 * through /bin -> /usr/bin) and catsay. It is the guest's first disk,
 * /dev/vda. NULL restores the default ($VMPROC_SYSTEM, else the image
 * installed with vmproc); "" attaches none. */
VMPROC_API int vmproc_config_set_system_image(vmproc_config *cfg, const char *path);
/* Attaches a disk image file as the next virtio-blk disk (/dev/vdb,
 * /dev/vdc, ... after the system image). At most 6. */
VMPROC_API int vmproc_config_add_disk(vmproc_config *cfg, const char *path, int read_only);
/* Guest RAM in MiB (16 .. 65536). */
VMPROC_API int vmproc_config_set_memory_mib(vmproc_config *cfg, unsigned mib);
/* Number of vCPUs (1 .. 64, default 1). */
VMPROC_API int vmproc_config_set_cpus(vmproc_config *cfg, unsigned n);
/* Extra words appended to the kernel command line. Words after a "--"
 * word are passed to the guest init as its arguments. */
VMPROC_API int vmproc_config_set_cmdline_extra(vmproc_config *cfg, const char *words);
/* Stop the VM if the guest has not powered off after ms milliseconds
 * (0: never). The VM then fails with VMPROC_FAILURE_TIMEOUT. */
VMPROC_API int vmproc_config_set_timeout_ms(vmproc_config *cfg, uint64_t ms);
/* Where console output goes (fn NULL: discarded). */
VMPROC_API int vmproc_config_set_console(vmproc_config *cfg, vmproc_output_fn fn, void *userdata);
/* Capture the guest kernel's early boot log (earlyprintk on a legacy
 * serial port, one VM exit per byte: slow, for diagnosis). The log goes
 * to the console callback. */
VMPROC_API int vmproc_config_set_kernel_log(vmproc_config *cfg, int enable);
/* Sample the guest's instruction pointer 1000 times a second of vCPU
 * time and add the busiest guest-kernel functions to the trace
 * (vmproc_vm_format_trace). For finding where guest time goes. */
VMPROC_API int vmproc_config_set_profile(vmproc_config *cfg, int enable);

/* ------------------------------------------------------------------ */
/* VMs                                                                 */
/* ------------------------------------------------------------------ */

typedef struct vmproc_vm vmproc_vm;

/* Why a VM ended other than by a clean poweroff. */
typedef enum vmproc_failure {
	VMPROC_FAILURE_NONE = 0,     /* the guest init powered off cleanly */
	VMPROC_FAILURE_SETUP,        /* the VM could not be created */
	VMPROC_FAILURE_GUEST_PANIC,  /* the guest kernel panicked */
	VMPROC_FAILURE_GUEST_RESET,  /* the guest rebooted without init's exit */
	VMPROC_FAILURE_TRIPLE_FAULT, /* the vCPU shut down (triple fault) */
	VMPROC_FAILURE_EMULATION,    /* KVM could not emulate a guest instruction */
	VMPROC_FAILURE_GUEST_ERROR,  /* the guest misused a device; VM stopped */
	VMPROC_FAILURE_TIMEOUT,      /* the configured timeout expired */
	VMPROC_FAILURE_STOPPED,      /* vmproc_vm_stop was called */
	VMPROC_FAILURE_VMM,          /* an error inside the VMM or KVM */
} vmproc_failure;

/* Creates a VM handle from cfg (copied). Nothing runs yet. *out is owned
 * by the caller (vmproc_vm_free). Any thread. */
VMPROC_API int vmproc_vm_new(vmproc_vm **out, const vmproc_config *cfg);

/* Creates the KVM VM, loads kernel and initramfs and starts the guest on
 * library threads. Returns once the guest is running; on failure the VM
 * is torn down and vmproc_vm_error says why. Call once per handle. */
VMPROC_API int vmproc_vm_start(vmproc_vm *vm);

/* Blocks until the VM has ended. Returns 0 if the guest init powered off
 * cleanly, with its exit status (0-255, shell convention) in
 * *exit_status (may be NULL); otherwise a negative errno value, with
 * vmproc_vm_failure and vmproc_vm_error saying why. Any thread. */
VMPROC_API int vmproc_vm_wait(vmproc_vm *vm, int *exit_status);

/* Like vmproc_vm_wait but never blocks: -EAGAIN while the VM runs. */
VMPROC_API int vmproc_vm_try_wait(vmproc_vm *vm, int *exit_status);

/* A file descriptor that becomes readable when the VM has ended, for
 * poll/epoll loops. Owned by the VM; valid until vmproc_vm_free. Any
 * thread, after vmproc_vm_new. */
VMPROC_API int vmproc_vm_fd(const vmproc_vm *vm);

/* Stops a running VM at once (a hard stop, like pulling the plug).
 * Returns immediately; wait for the end with vmproc_vm_wait. Any thread. */
VMPROC_API int vmproc_vm_stop(vmproc_vm *vm);

/* The failure category once the VM has ended (NONE while running or
 * after a clean poweroff). Any thread. */
VMPROC_API vmproc_failure vmproc_vm_failure(const vmproc_vm *vm);
/* A short name for a failure category ("guest-panic", ...). Any thread. */
VMPROC_API const char *vmproc_failure_name(vmproc_failure f);

/* Message for the last failure on vm ("" if none): for guest faults it
 * names the cause and, where the kernel has symbols, the guest function.
 * Valid until vmproc_vm_free. Call after vmproc_vm_wait returns. */
VMPROC_API const char *vmproc_vm_error(const vmproc_vm *vm);

/* Formats the boot trace into buf (NUL-terminated, truncated to len):
 * VMM phases, time to the first guest instruction, to init ready, to
 * poweroff, and VM exits counted by reason. Returns the length the full
 * text needs (like snprintf). Call after vmproc_vm_wait returns. */
VMPROC_API int vmproc_vm_format_trace(const vmproc_vm *vm, char *buf, size_t len);

/* Milliseconds from vmproc_vm_start to the guest init being ready and to
 * its poweroff; -1 if that point was not reached. After vmproc_vm_wait. */
VMPROC_API double vmproc_vm_ms_to_ready(const vmproc_vm *vm);
VMPROC_API double vmproc_vm_ms_to_exit(const vmproc_vm *vm);

/* Stops the VM if it runs, waits for its threads, releases every fd and
 * all memory. vm may be NULL. Must not race with other calls on vm. */
VMPROC_API void vmproc_vm_free(vmproc_vm *vm);

/* Convenience: new + start + wait + free. Returns what vmproc_vm_wait
 * returns; on failure copies the message into errbuf (may be NULL). */
VMPROC_API int vmproc_vm_run(const vmproc_config *cfg, int *exit_status, char *errbuf,
                             size_t errbuf_len);

/* ------------------------------------------------------------------ */
/* Commands: run a program in its own VM like a child process          */
/* ------------------------------------------------------------------ */

/* A command describes one program run: what to execute, its arguments,
 * environment, working directory, user and standard streams. Spawning it
 * boots a fresh VM (settings from a vmproc_config) whose guest init runs
 * the program and reports how it ended. The description travels to the
 * guest over a virtio channel: no length limit, no quoting rules. */
typedef struct vmproc_cmd vmproc_cmd;
/* A spawned command: the running program and its VM. */
typedef struct vmproc_child vmproc_child;

/* The program's standard streams. */
typedef enum vmproc_stream {
	VMPROC_STDIN = 0,
	VMPROC_STDOUT = 1,
	VMPROC_STDERR = 2,
} vmproc_stream;

/* Supplies standard input: fill buf with up to len bytes and return how
 * many, 0 at end of input, or a negative value for an error (treated as
 * end of input). Called on a library thread; it may block, but signals
 * and window-size changes for the program wait while it does. */
typedef long (*vmproc_read_fn)(void *buf, size_t len, void *userdata);
/* Receives standard output or error: return 0 to go on, or a negative
 * value to refuse further data (as a reader closing its pipe does: the
 * program then gets SIGPIPE). Called on a library thread, in the order
 * the program wrote; the program waits while it runs.
 *
 * Guest memory in callbacks: to spare a copy, data (like the iovecs of
 * vmproc_file_ops and the console callback's data) points straight into
 * the guest's buffers. The guest controls that memory and, with more
 * than one vCPU, can change it while the callback runs. Treat it as
 * untrusted input that may change under you: copy what you will parse or
 * act on, and validate the copy, never the original. It is valid only
 * until the callback returns. */
typedef int (*vmproc_write_fn)(const void *data, size_t len, void *userdata);

/* Creates a command that runs program, with argv[0] = program and no
 * other arguments. A program without a slash is searched in the guest in
 * the PATH of the command's environment. Defaults: the environment
 * PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,
 * HOME=/root (plus, on hosts whose KVM emulates the guest kernel, a
 * GLIBC_TUNABLES that keeps glibc off AVX: see README), working
 * directory /, user and group 0, stdin from nothing (reads see end of
 * input), stdout and stderr to the caller's fds 1 and 2. *out is owned
 * by the caller (vmproc_cmd_free). Any thread. */
VMPROC_API int vmproc_cmd_new(vmproc_cmd **out, const char *program);
/* Frees cmd (NULL is fine). Children spawned from it are unaffected. */
VMPROC_API void vmproc_cmd_free(vmproc_cmd *cmd);
/* Message for the last failed call on cmd, including vmproc_spawn. */
VMPROC_API const char *vmproc_cmd_error(const vmproc_cmd *cmd);

/* Appends one argument (argv[1], argv[2], ...). */
VMPROC_API int vmproc_cmd_arg(vmproc_cmd *cmd, const char *arg);
/* Replaces argv[0] (default: the program as given). */
VMPROC_API int vmproc_cmd_arg0(vmproc_cmd *cmd, const char *arg0);
/* Sets an environment variable. key must be non-empty and contain no
 * '='; neither may contain a NUL (so both are C strings) -EINVAL. */
VMPROC_API int vmproc_cmd_env(vmproc_cmd *cmd, const char *key, const char *value);
/* Sets one "KEY=VALUE" string, as found in environ; -EINVAL without '='
 * or with an empty key. */
VMPROC_API int vmproc_cmd_env_string(vmproc_cmd *cmd, const char *key_value);
/* Removes a variable (no error if absent). */
VMPROC_API int vmproc_cmd_env_remove(vmproc_cmd *cmd, const char *key);
/* Removes every variable, the defaults included. */
VMPROC_API int vmproc_cmd_env_clear(vmproc_cmd *cmd);
/* Working directory in the guest (default "/"). */
VMPROC_API int vmproc_cmd_cwd(vmproc_cmd *cmd, const char *dir);
/* User and group id in the guest (default 0 and 0). The group is also
 * the program's only supplementary group. */
VMPROC_API int vmproc_cmd_uid(vmproc_cmd *cmd, unsigned uid);
VMPROC_API int vmproc_cmd_gid(vmproc_cmd *cmd, unsigned gid);

/* Standard streams, each set independently; the last call for a stream
 * wins.
 * null:    stdin reads end of input at once; output is discarded.
 * fd:      the stream is connected to the caller's fd (dup'ed at spawn,
 *          so the caller may close its own). stdin is read from it,
 *          output written to it (if the reader goes away, the program
 *          gets SIGPIPE). Note that stdin data is read ahead of the
 *          program, as with any pipe.
 * pipe:    vmproc_child_pipe gives the caller the other end of a pipe:
 *          the write end for stdin (closing it is end of input), the read
 *          end for stdout/stderr (end of file once the VM has ended;
 *          closing it early is a reader going away).
 * buffer:  stdin: len bytes copied now, then end of input.
 *          stdout/stderr: captured in memory, see vmproc_child_output.
 * callback: the functions above, with userdata. */
VMPROC_API int vmproc_cmd_stdio_null(vmproc_cmd *cmd, vmproc_stream s);
VMPROC_API int vmproc_cmd_stdio_fd(vmproc_cmd *cmd, vmproc_stream s, int fd);
VMPROC_API int vmproc_cmd_stdio_pipe(vmproc_cmd *cmd, vmproc_stream s);
VMPROC_API int vmproc_cmd_stdin_buffer(vmproc_cmd *cmd, const void *data, size_t len);
VMPROC_API int vmproc_cmd_stdio_capture(vmproc_cmd *cmd, vmproc_stream s);
/* The most a captured stream keeps, in bytes, per stream (default
 * VMPROC_CAPTURE_LIMIT_DEFAULT; SIZE_MAX: as much as memory allows).
 * Output past it is not kept: the program gets SIGPIPE, and
 * vmproc_child_output_cut tells the caller. A guest writing without end
 * cannot grow the host's heap past this. */
#define VMPROC_CAPTURE_LIMIT_DEFAULT ((size_t)64 << 20)
VMPROC_API int vmproc_cmd_capture_limit(vmproc_cmd *cmd, size_t max_bytes);
VMPROC_API int vmproc_cmd_stdin_callback(vmproc_cmd *cmd, vmproc_read_fn fn, void *userdata);
VMPROC_API int vmproc_cmd_stdio_callback(vmproc_cmd *cmd, vmproc_stream s, vmproc_write_fn fn,
                                         void *userdata);
/* Runs the program on a pseudo-terminal in the guest, rows x cols, as
 * its controlling terminal: stdin feeds the terminal's input (so a ^C
 * byte becomes SIGINT for the program), stdout receives what the
 * terminal shows, and stderr is unused (the program's stderr is the
 * terminal too). Change the size later with vmproc_child_resize. */
VMPROC_API int vmproc_cmd_tty(vmproc_cmd *cmd, unsigned rows, unsigned cols);

/* ------------------------------------------------------------------ */
/* Host files in the guest (virtio-fs)                                 */
/* ------------------------------------------------------------------ */

/* Host directories, a host root and host-callback files reach the guest
 * through one virtio-fs device served by the library itself (a FUSE
 * server in the caller's process, no daemon). The guest sees a share
 * only below its guest path: "..", symlinks (resolved in the guest, never
 * on the host), hard links and renames cannot reach a host file outside
 * the share's directory. The library never opens or creates a device
 * node on the host and never sets set-user-ID or set-group-ID bits there.
 * Files the guest creates belong to the user running the library. POSIX
 * and flock locks work between the guest's processes (they are not seen
 * on the host); extended attributes are not supported (EOPNOTSUPP).
 * Works with snapshots: the shares are per spawn. */

/* Shares host directory host_dir (opened at spawn) at guest_path (an
 * absolute path; created in the guest if missing). flags:
 * VMPROC_SHARE_READONLY refuses every change with EROFS, enforced by the
 * library whatever the guest does. Several shares may be given; a later
 * one may sit inside an earlier one's guest path. */
#define VMPROC_SHARE_READONLY 1u
VMPROC_API int vmproc_cmd_share(vmproc_cmd *cmd, const char *host_dir, const char *guest_path,
                                unsigned flags);

/* Runs the program with host directory host_dir as the guest's root
 * directory (/). The guest's /dev, /proc, /sys, /tmp and /run are
 * mounted inside it if the tree has those directories. flags:
 * VMPROC_ROOT_READONLY: the root is read-only (EROFS on every change).
 * VMPROC_ROOT_OVERLAY: the guest may change its root, into a copy-on-
 * write layer in guest memory (overlayfs over a tmpfs): host_dir is never
 * modified and the changes vanish with the VM.
 * Without either flag the guest writes into host_dir. Shares and files
 * are then placed in the new root. */
#define VMPROC_ROOT_READONLY 1u
#define VMPROC_ROOT_OVERLAY  2u
VMPROC_API int vmproc_cmd_root(vmproc_cmd *cmd, const char *host_dir, unsigned flags);

/* A file in the guest whose content the caller provides (the C
 * counterpart of Starina's FileLike). The guest reads and writes it with
 * ordinary calls; each reaches a callback, with no page cache in
 * between. Callbacks run on a library thread of the child's VM, one at a
 * time per VM, while the guest program waits: they should return
 * promptly. Return values are byte counts or negative errno values,
 * which the guest's call gets (e.g. -EIO). */
typedef struct vmproc_file_ops {
	/* The size stat reports (NULL: 0). */
	uint64_t (*size)(void *userdata);
	/* Fills the guest's buffers iov[0..iovcnt) (iov points straight into
	 * guest memory, no intermediate copy; see "Guest memory in
	 * callbacks" above vmproc_write_fn) with the bytes at offset;
	 * returns how many (0: end of file). NULL: the file is not readable
	 * (EACCES). */
	long (*read)(void *userdata, uint64_t offset, const struct iovec *iov, int iovcnt);
	/* Takes the bytes the guest wrote at offset (iov points into guest
	 * memory that the guest may change meanwhile: copy, then validate);
	 * returns how many were taken. NULL: not writable
	 * (EACCES). */
	long (*write)(void *userdata, uint64_t offset, const struct iovec *iov, int iovcnt);
	/* Truncation (O_TRUNC, ftruncate) to size. NULL: -EINVAL, except
	 * that O_TRUNC on open is ignored. */
	int (*truncate)(void *userdata, uint64_t size);
} vmproc_file_ops;

/* Places a callback file at guest_path (absolute), with permission bits
 * mode (e.g. 0644; read and write bits are cleared where ops has no
 * callback). If guest_path's directory is inside a share (or the root),
 * the file appears in that directory (the directory must exist on the
 * host at spawn) and shadows a host file of the same name; otherwise the
 * directory is created in the guest as a virtual directory holding only
 * callback files. ops is copied; userdata is passed to every callback and
 * must stay valid until the child is freed. */
VMPROC_API int vmproc_cmd_file(vmproc_cmd *cmd, const char *guest_path, unsigned mode,
                               const vmproc_file_ops *ops, void *userdata);

/* The most host file descriptors the command's host files may hold open
 * for the guest at once (default VMPROC_FD_LIMIT_DEFAULT): one per file
 * or directory of a share the guest has looked up and not yet forgotten,
 * and one per file it has open. Past it the guest gets ENFILE ("Too many
 * open files in system"), and the process's other VMs and threads keep
 * their descriptors. Choose it so that the VMs you run at once, times
 * this, stay under your RLIMIT_NOFILE (the vmproc CLI raises its soft
 * limit to the hard one). */
#define VMPROC_FD_LIMIT_DEFAULT 4096u
VMPROC_API int vmproc_cmd_fd_limit(vmproc_cmd *cmd, unsigned max_fds);

/* How a child ended. */
typedef struct vmproc_status {
	int exited;             /* 1 if the program exited: then code is its exit code */
	int code;               /* 0..255 */
	int signal;             /* if the program was killed: the signal number, else 0 */
	int exec_errno;         /* the program could not be started (ENOENT: no such
	                         * file, EACCES: not executable, ...), else 0 */
	vmproc_failure failure; /* the VM failed before the program ended, else
	                         * VMPROC_FAILURE_NONE */
} vmproc_status;

/* Boots a VM with cfg (NULL: defaults; copied) and starts cmd in it.
 * Returns at once, while the guest boots: the program's output and exit
 * come later. On failure (bad settings, no KVM, no memory) nothing runs
 * and vmproc_cmd_error says why. *out is owned by the caller
 * (vmproc_child_free). Any thread; one cmd may be spawned many times,
 * but not concurrently with changes to it. */
VMPROC_API int vmproc_spawn(vmproc_cmd *cmd, const vmproc_config *cfg, vmproc_child **out);

/* Blocks until the child has ended and fills *st (may be NULL). Returns
 * 0 if the program ran and ended (st->exited or st->signal says how);
 * -ENOENT, -EACCES, ... if it could not be started (st->exec_errno);
 * another negative errno value if the VM failed first (st->failure). In
 * every non-zero case vmproc_child_error says why. Any thread; may be
 * called again and returns the same. */
VMPROC_API int vmproc_child_wait(vmproc_child *child, vmproc_status *st);
/* Like vmproc_child_wait but never blocks: -EAGAIN while it runs. */
VMPROC_API int vmproc_child_try_wait(vmproc_child *child, vmproc_status *st);
/* An fd that becomes readable when the child has ended (then
 * vmproc_child_try_wait does not return -EAGAIN). Owned by the child,
 * valid until vmproc_child_free. Any thread. */
VMPROC_API int vmproc_child_fd(const vmproc_child *child);
/* Sends signal sig (1..64) to the program in the guest. If the program
 * has not started yet (the VM is still booting), the signal is
 * delivered as soon as it starts. Returns -ESRCH once it has ended. Any
 * thread. */
VMPROC_API int vmproc_child_kill(vmproc_child *child, int sig);
/* Stops the VM at once (a hard stop); the child then ends with failure
 * VMPROC_FAILURE_STOPPED unless it had already ended. Any thread. */
VMPROC_API int vmproc_child_stop(vmproc_child *child);
/* Changes the pty size of a child spawned with vmproc_cmd_tty (the
 * program gets SIGWINCH). Any thread. */
VMPROC_API int vmproc_child_resize(vmproc_child *child, unsigned rows, unsigned cols);
/* The caller's end of a stream set to pipe mode, or -EINVAL. The fd is
 * owned by the caller from the first call on (the caller closes it);
 * later calls return -EBADF. Close stdin's to signal end of input. Any
 * thread. */
VMPROC_API int vmproc_child_pipe(vmproc_child *child, vmproc_stream s);
/* Captured output of a stream set to capture mode, after the child has
 * ended (NULL before, or for another mode). *len gets its length. The
 * bytes are owned by the child (valid until vmproc_child_free) and
 * followed by a NUL not counted in *len. A capture holds at most the
 * command's capture limit (vmproc_cmd_capture_limit); past it, or if
 * memory ran out, the capture is cut there and the program got SIGPIPE,
 * as a writer whose reader left does. */
VMPROC_API const char *vmproc_child_output(const vmproc_child *child, vmproc_stream s, size_t *len);
/* Whether stream s's capture was cut (1) or is whole (0), once the child
 * has ended (-EAGAIN before; -EINVAL for a bad argument). Any mode other
 * than capture gives 0. */
VMPROC_API int vmproc_child_output_cut(const vmproc_child *child, vmproc_stream s);
/* Why the child failed, or "" if it did not. Valid until
 * vmproc_child_free. After vmproc_child_wait returned. */
VMPROC_API const char *vmproc_child_error(const vmproc_child *child);
/* The child's VM, for its trace (vmproc_vm_format_trace) and timings.
 * Owned by the child. Do not free, stop or wait on it directly. */
VMPROC_API const vmproc_vm *vmproc_child_vm(const vmproc_child *child);
/* Stops the VM if it still runs, waits for the library's threads and
 * releases everything, the captured output included. child may be NULL.
 * Must not race with other calls on child. */
VMPROC_API void vmproc_child_free(vmproc_child *child);

/* ------------------------------------------------------------------ */
/* Snapshots: boot once, spawn many                                    */
/* ------------------------------------------------------------------ */

/* A template is a VM captured at the moment its guest init became ready
 * for a command: every vCPU, interrupt controller, clock and device, and
 * guest RAM. Spawning from it restores that moment into a new VM whose
 * RAM maps the template's copy-on-write, instead of booting: clones
 * share every page they do not write, and nothing one clone does is
 * visible to another. Each spawn still gets its own command, wall clock
 * (set from the host's at spawn) and random state (the guest's CRNG is
 * reseeded from the host's getrandom).
 *
 * Templates come from a boot (vmproc_template_build), a file
 * (vmproc_template_load), or the user's snapshot cache
 * (vmproc_template_cached): $VMPROC_CACHE_DIR, else
 * $XDG_CACHE_HOME/vmproc/snapshots, else ~/.cache/vmproc/snapshots,
 * one file per configuration, named by a hash of everything that
 * determines it (kernel, initramfs, system image and disks, by path,
 * size and modification time; memory, vCPUs, extra command line; the
 * host's CPU as KVM reports it; the vmproc version). A file that is
 * truncated, damaged, from another vmproc or for another configuration
 * is never used: the cache rebuilds it.
 *
 * The cache is trusted only if it is the user's own: the directory must
 * belong to the user (or root) and not be writable by group or others,
 * and so must every file in it; no file is reached through a symbolic
 * link. Snapshot files carry an HMAC-SHA256 under a per-user secret kept
 * in the cache directory (the file "key", mode 0600), so a file written
 * by anyone without the secret is rejected. A loaded snapshot's memory
 * is a sealed private copy of the bytes that were verified: rewriting or
 * truncating the file afterwards changes nothing for its clones.
 *
 * vmproc_spawn uses the cache by default (vmproc_cmd_snapshot): the
 * first spawn of a configuration boots and stores its template, later
 * ones restore it. */
typedef struct vmproc_template vmproc_template;

/* An empty template for cfg (NULL: defaults; copied). Fill it with
 * build, load or cached. *out is owned by the caller. Any thread. */
VMPROC_API int vmproc_template_new(vmproc_template **out, const vmproc_config *cfg);
/* Frees t (NULL is fine). Children spawned from it keep running: each
 * holds its own reference to the snapshot. Must not race with other
 * calls on t. */
VMPROC_API void vmproc_template_free(vmproc_template *t);
/* Message for the last failed call on t ("" if none). */
VMPROC_API const char *vmproc_template_error(const vmproc_template *t);
/* Boots a VM with the template's configuration and captures it when its
 * init is ready (blocks for a boot; the configuration's timeout
 * applies). Replaces what t held. Not concurrent with other calls on t
 * except vmproc_spawn_template. */
VMPROC_API int vmproc_template_build(vmproc_template *t);
/* Writes t's snapshot to path atomically (a temporary file, then
 * rename), authenticated with the user's cache secret (created if
 * needed), so that only the same user's vmproc_template_load accepts it.
 * Any thread, concurrently with spawns from t. */
VMPROC_API int vmproc_template_save(vmproc_template *t, const char *path);
/* Loads a snapshot file made for t's configuration. -ESTALE: the file
 * is valid but for another configuration or vmproc; -EBADMSG: it is
 * damaged, truncated, not a snapshot, or not authenticated by this
 * user's cache secret; -ENOENT: no such file; -ELOOP: path is a symbolic
 * link; -EPERM: the file (or the cache's secret) belongs to another user
 * or is writable by group or others. Nothing from a rejected file is
 * used. Not concurrent with other calls on t
 * except vmproc_spawn_template. */
VMPROC_API int vmproc_template_load(vmproc_template *t, const char *path);
/* Loads t's snapshot from the user's cache or, if it is missing or
 * rejected, builds it and stores it there. Same threading as build. */
VMPROC_API int vmproc_template_cached(vmproc_template *t);
/* The cache file t's configuration maps to (whether or not it exists)
 * into buf; returns the length it needs, or a negative errno value. */
VMPROC_API int vmproc_template_cache_path(const vmproc_template *t, char *buf, size_t len);
/* The snapshot cache directory into buf (it may not exist yet); returns
 * the length it needs, or -ENOENT if no directory can be found. Any
 * thread. */
VMPROC_API int vmproc_snapshot_cache_dir(char *buf, size_t len);

/* Spawns cmd from template t instead of booting. cfg NULL: t's
 * configuration; otherwise cfg must describe the same VM (kernel,
 * initramfs, system image, disks, memory, vCPUs, command line: else
 * -EINVAL) and supplies the per-spawn settings (timeout, console). Like
 * vmproc_spawn otherwise. Any thread, concurrently on one template. */
VMPROC_API int vmproc_spawn_template(vmproc_cmd *cmd, vmproc_template *t, const vmproc_config *cfg,
                                     vmproc_child **out);

/* Whether vmproc_spawn and vmproc_output start cmd from a snapshot. */
typedef enum vmproc_snapshot_mode {
	/* The default: from the cache when the configuration allows it (no
	 * writable disk, no kernel log) and the cache works;
	 * otherwise, or if anything in the snapshot path fails, a cold boot. */
	VMPROC_SNAPSHOT_AUTO = 0,
	/* Always a cold boot. */
	VMPROC_SNAPSHOT_NEVER = 1,
	/* From the cache, or fail (vmproc_cmd_error says why). */
	VMPROC_SNAPSHOT_ALWAYS = 2,
} vmproc_snapshot_mode;
VMPROC_API int vmproc_cmd_snapshot(vmproc_cmd *cmd, vmproc_snapshot_mode mode);
/* Whether the child was started from a snapshot (1) or booted (0). */
VMPROC_API int vmproc_child_from_snapshot(const vmproc_child *child);

/* Run to completion, like Rust's Command::output or Python's
 * subprocess.run: spawns cmd with stdout and stderr captured (unless set
 * otherwise on cmd) and stdin from nothing (unless set), waits, and
 * returns what vmproc_child_wait returns. On return *out_child holds the
 * ended child, for vmproc_child_output and vmproc_child_error; the
 * caller frees it. If spawning failed, *out_child is NULL and
 * vmproc_cmd_error says why. Any thread. */
VMPROC_API int vmproc_output(vmproc_cmd *cmd, const vmproc_config *cfg, vmproc_status *st,
                             vmproc_child **out_child);

/* ------------------------------------------------------------------ */
/* Lock-down: a process that is only a VMM drops what it does not need */
/* ------------------------------------------------------------------ */

/* vmproc_lockdown_apply confines the whole calling process, for good, to
 * what running VMs needs, as Firecracker's jailer and Solo5 do:
 * - PR_SET_NO_NEW_PRIVS;
 * - a seccomp allowlist (libseccomp) for every thread of the process,
 *   those that exist already included: the syscalls the VMM, its vCPU
 *   and I/O threads, the virtio devices and the FUSE server make while
 *   VMs run and while new ones are spawned (from a snapshot or booted),
 *   and what glibc needs for them; KVM and terminal ioctls only, by
 *   request number; threads but no processes; no exec, no sockets, no
 *   signals to other processes, no executable memory, no set-user-ID
 *   or set-group-ID modes, no device nodes. Any other syscall kills the
 *   process (SIGSYS), it never fails or succeeds quietly. docs/security.md
 *   lists every group and why;
 * - where the kernel has Landlock, a ruleset that limits the files the
 *   process can open to /dev/kvm, /proc/cpuinfo, /proc/self and the
 *   paths allowed below, and forbids TCP bind/connect and signals out of
 *   the process where the kernel can. Landlock covers the calling thread
 *   and the threads it creates afterwards (the kernel cannot apply it to
 *   threads that already exist): lock down before spawning VMs, from
 *   the thread that will spawn them, for it to cover the VMs' threads.
 * File descriptors opened before keep their access. The lock-down cannot
 * be undone; the process's children (it can have none afterwards)
 * would inherit it. Library code that needs what the list lacks
 * (dlopen, getaddrinfo, fork) must run before. */
typedef struct vmproc_lockdown vmproc_lockdown;

/* A lock-down that allows no path yet. *out is owned by the caller
 * (vmproc_lockdown_free). Any thread. */
VMPROC_API int vmproc_lockdown_new(vmproc_lockdown **out);
/* Frees ld (NULL is fine); an applied lock-down stays in force. */
VMPROC_API void vmproc_lockdown_free(vmproc_lockdown *ld);
/* Message for the last failed call on ld ("" if none). */
VMPROC_API const char *vmproc_lockdown_error(const vmproc_lockdown *ld);

/* What a path may be used for under Landlock. READ: read files, list
 * directories. WRITE: also write and truncate files, create, rename,
 * link and remove entries (never device nodes). A directory's access
 * covers everything beneath it. */
#define VMPROC_LOCKDOWN_READ  1u
#define VMPROC_LOCKDOWN_WRITE 2u
/* Allows path (copied; opened at apply, and skipped if it does not exist
 * then, so it stays out of reach). */
VMPROC_API int vmproc_lockdown_allow_path(vmproc_lockdown *ld, const char *path, unsigned access);
/* Allows what VMs of cfg (NULL: defaults) need: the kernel, initramfs
 * and system image (read), its disks (read, and write unless read-only)
 * and the snapshot cache directory (read and write; created if it is
 * missing). */
VMPROC_API int vmproc_lockdown_allow_config(vmproc_lockdown *ld, const vmproc_config *cfg);
/* Allows cmd's shares and root (vmproc_cmd_share, vmproc_cmd_root) as
 * configured: read-only ones and an overlay root for reading only. */
VMPROC_API int vmproc_lockdown_allow_cmd(vmproc_lockdown *ld, const vmproc_cmd *cmd);

/* Whether apply uses Landlock. AUTO (the default): where the kernel has
 * it; OFF: never; REQUIRE: apply fails with -EOPNOTSUPP without it. */
typedef enum vmproc_landlock_mode {
	VMPROC_LANDLOCK_AUTO = 0,
	VMPROC_LANDLOCK_OFF = 1,
	VMPROC_LANDLOCK_REQUIRE = 2,
} vmproc_landlock_mode;
VMPROC_API int vmproc_lockdown_landlock(vmproc_lockdown *ld, vmproc_landlock_mode mode);

/* Locks the process down (see above). Once per ld. On failure
 * vmproc_lockdown_error says why; if it failed after Landlock was
 * enforced (seccomp refused), the process stays under Landlock. Must
 * not race with another apply; other threads may go on meanwhile. */
VMPROC_API int vmproc_lockdown_apply(vmproc_lockdown *ld);
/* After a successful apply: the Landlock ABI version enforced, or 0 if
 * Landlock was not used. */
VMPROC_API int vmproc_lockdown_landlock_abi(const vmproc_lockdown *ld);

#ifdef __cplusplus
}
#endif

#endif
