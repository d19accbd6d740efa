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
 * quickly: the guest waits while it runs. */
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

#ifdef __cplusplus
}
#endif

#endif
