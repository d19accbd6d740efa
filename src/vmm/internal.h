/* The VM behind struct vm and what the files of src/vmm/ share: vm.c
 * (lifecycle), kvm.c (KVM objects), boot.c (booting from files),
 * restore.c (snapshots), devices.c, vcpu.c (run loops), kick.c. Not for
 * other floors: they use vmm/vm.h. */
#ifndef VMP_VMM_INTERNAL_H
#define VMP_VMM_INTERNAL_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "mem/guest_mem.h"
#include "util/error.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/fs.h"
#include "virtio/mmio.h"
#include "virtio/ports.h"
#include "vmm/config.h"
#include "vmm/profile.h"
#include "vmm/trace.h"
#include "vmm/vm.h"

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
	struct vm *vm;
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

struct vm {
	struct vm_config cfg;  /* owned copy */
	struct vm_files files; /* cfg's files, defaults resolved */

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
	struct virtio_blk *disks[VM_MAX_DISKS + 1];
	unsigned ndisks;

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
void vm_thread_finished(struct vm *vm);
/* vCPU 0's thread, every vCPU stopped with nothing pending: saves the
 * VM's state into vm->captured, or fails the VM. */
void vm_capture(struct vm *vm);
/* Makes every vCPU leave its run loop (the VM ends); except: the caller's
 * own vCPU, or NULL. */
void vm_end(struct vm *vm, const struct vm_vcpu *except);
/* Ends the VM with a failure (first call wins); message formatted. */
void vm_fail(struct vm *vm, vmproc_failure f, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Symbolises a guest kernel address into buf ("func+0x12" or "0x..."). */
void vm_symbolize(const struct vm *vm, uint64_t addr, char *buf, size_t len);

/* Maps a whole file read-only (vm->kernel_file and such). */
int vm_map_file(const char *path, const char *what, const uint8_t **data, size_t *size,
                struct vmp_error *err);

/* kvm.c: /dev/kvm and its checks; the VM, its irqchip and PIT; guest
 * memory (anonymous, a memfd for capture, the snapshot's for restore);
 * the vCPUs (at entry, or from the snapshot); and their release. */
int vm_kvm_open(struct vm *vm, struct vmp_error *err);
int vm_kvm_create(struct vm *vm, struct vmp_error *err);
int vm_memory_setup(struct vm *vm, struct vmp_error *err);
int vm_vcpus_create(struct vm *vm, uint64_t entry, struct vmp_error *err);
void vm_kvm_release(struct vm *vm);

/* devices.c: the devices in guest-ABI order, and their release. */
int vm_devices_setup(struct vm *vm, struct vmp_error *err);
void vm_devices_teardown(struct vm *vm);

/* boot.c: kernel, initramfs, devices, boot data, vCPUs. */
int vm_boot_setup(struct vm *vm, struct vmp_error *err);
/* restore.c: devices, then the snapshot's state, instead of booting. */
int vm_restore_setup(struct vm *vm, struct vmp_error *err);

/* The kick signal and its process-wide no-op handler (kick.c). */
int kick_signal(void);
int kick_install_handler(void);

#endif
