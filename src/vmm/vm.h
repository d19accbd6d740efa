/* A virtual machine: one KVM VM, its memory, vCPUs, devices and the
 * library threads that run it. This is struct vmproc_vm behind the
 * public handle. */
#ifndef VMP_VMM_VM_H
#define VMP_VMM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "api/config.h"
#include "util/error.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/fs.h"
#include "virtio/mmio.h"
#include "virtio/ports.h"
#include "mem/guest_mem.h"
#include "vmm/profile.h"
#include "vmm/trace.h"

struct snapshot;

#define VM_CONSOLE_TAIL 4096
#define VM_MAX_DEVICES  10
/* Legacy PIC lines free on a PC without ISA devices. */
#define VM_FIRST_DEVICE_IRQ 5

enum vm_state { VM_NEW, VM_RUNNING, VM_ENDED };

struct vm_device {
	struct virtio_mmio transport;
	int irqfd;
};

/* One vCPU and the host thread that runs it. Everything here is written
 * only by that thread, except tid (read by whoever kicks it). vCPU 0's
 * thread owns the VM's end: it starts the other vCPU threads, and when
 * any vCPU ends the VM it joins them all, then tears the VM down. */
struct vm_vcpu {
	struct vmproc_vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	_Atomic pid_t tid; /* 0 when not in its run loop */
	timer_t profile_timer;
	bool profile_timer_armed;
	struct profile profile;
	struct vm_trace stats; /* counters only; summed into vm->trace at the end */
};

struct vmproc_vm {
	struct vmproc_config cfg; /* owned copy */
	char *kernel_path, *initrd_path;

	pthread_mutex_t lock; /* state, result */
	pthread_cond_t ended_cond;
	enum vm_state state;
	int ended_fd; /* eventfd, readable once ended */

	int kvm_fd, vm_fd;
	size_t run_size;
	struct vm_vcpu *vcpu; /* cfg.cpus of them, allocated with the VM */
	unsigned nvcpus;
	struct guest_mem mem;
	const uint8_t *kernel_file; /* mapped for symbols in error messages */
	size_t kernel_size;
	bool emulated_kernel;

	struct vm_device dev[VM_MAX_DEVICES];
	unsigned ndev;
	struct virtio_console *console;
	struct virtio_ports *channel;  /* the command channel; owned by the child */
	struct fuse_server *fs_server; /* behind fs; owned by the child */
	struct virtio_fs *fs;          /* with the channel: host files */
	struct virtio_blk *disks[CONFIG_MAX_DISKS + 1];
	unsigned ndisks;
	char *system_path; /* resolved; NULL: no system image */

	atomic_int stop_request; /* 0, or the vmproc_failure to end with */
	atomic_bool ending;      /* a vCPU ended the VM: every vCPU leaves its loop */
	uint64_t deadline_ns;    /* 0: none */
	timer_t timer;           /* the deadline; kicks vCPU 0 */
	bool timer_armed;
	struct profile profile; /* every vCPU's samples, after the end */

	/* Result, written by the vCPU threads (under lock) before state
	 * becomes ENDED. */
	int exit_status;
	vmproc_failure failure;
	struct vmp_error err;

	struct vm_trace trace;
	pthread_mutex_t console_lock; /* console_tail and console_fn calls */
	char console_tail[VM_CONSOLE_TAIL];
	size_t console_tail_len;
	atomic_bool init_ready;

	/* Snapshots (snapshot/snapshot.h). A capturing VM keeps its RAM in
	 * mem_fd and, when its init reports ready, saves its state and ends
	 * with status 0; a restoring one starts from restore instead of
	 * booting. */
	bool capture;
	atomic_bool capture_ready; /* init is ready: every vCPU completes its
	                            * pending access on the way out */
	int mem_fd;
	struct snapshot *captured; /* the result, owned until taken */
	struct snapshot *restore;  /* a reference */
};

/* Internals shared between vm.c and vcpu.c. */
/* The thread of vCPU 0 (arg: the VM). It starts the other vCPUs' threads
 * and is the last of them to finish. */
void *vcpu_thread_main(void *arg);
/* vCPU 0's thread's last act, once every other vCPU thread is joined:
 * release KVM resources, mark the VM ended. */
void vm_thread_finished(struct vmproc_vm *vm);
/* vCPU 0's thread, every vCPU stopped with nothing pending: saves the
 * VM's state into vm->captured, or fails the VM. */
void vm_capture(struct vmproc_vm *vm);
/* Makes every vCPU leave its run loop (the VM ends); except: the caller's
 * own vCPU, or NULL. */
void vm_end(struct vmproc_vm *vm, const struct vm_vcpu *except);
/* Ends the VM with a failure (first call wins); message formatted. */
void vm_fail(struct vmproc_vm *vm, vmproc_failure f, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Symbolises a guest kernel address into buf ("func+0x12" or "0x..."). */
void vm_symbolize(const struct vmproc_vm *vm, uint64_t addr, char *buf, size_t len);

/* Attaches the command channel (vmproc_abi.h) before vmproc_vm_start. The
 * device stays the caller's; the VM detaches it before its memory goes. */
void vm_set_channel(struct vmproc_vm *vm, struct virtio_ports *channel);
/* The FUSE server behind the virtio-fs device that every VM with a
 * command channel has (vmproc_abi.h). NULL: the device is there (the
 * guest ABI and the snapshot shape do not depend on the command) but
 * answers nothing; a template VM's guest never mounts it. The server
 * stays the caller's and must outlive the VM. Before vmproc_vm_start. */
void vm_set_fs(struct vmproc_vm *vm, struct fuse_server *server);
/* For device backends blocking on the vCPU thread (a slow reader of the
 * program's output): whether the VM is being stopped or timed out, so
 * the wait must end. vCPU thread only. */
bool vm_io_should_abort(struct vmproc_vm *vm);
/* The signal mask for such waits (ppoll): the calling vCPU thread's,
 * with the kick signal unblocked. */
void vm_io_sigmask(sigset_t *out);
/* Ends the VM because the guest broke a protocol (vCPU thread only). */
void vm_guest_error(struct vmproc_vm *vm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Before vmproc_vm_start: boot, and end by taking a snapshot at the
 * moment the guest init is ready (vm_take_snapshot). */
void vm_set_capture(struct vmproc_vm *vm);
/* After a capturing VM ended with 0: the snapshot (the caller owns it),
 * or NULL with the VM's error. */
struct snapshot *vm_take_snapshot(struct vmproc_vm *vm);
/* Before vmproc_vm_start: start from snapshot s (a reference is taken)
 * instead of booting. The VM's configuration must be the snapshot's; the
 * caller checks the key, the VM checks the shape (vCPUs, memory,
 * devices). */
void vm_set_restore(struct vmproc_vm *vm, struct snapshot *s);

/* The kick signal and its process-wide no-op handler (kick.c). */
int kick_signal(void);
int kick_install_handler(void);

#endif
