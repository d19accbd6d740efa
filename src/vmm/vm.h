/* A virtual machine: one KVM VM, its memory, vCPU, devices and the
 * library thread that runs it. This is struct vmproc_vm behind the
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
#include "virtio/mmio.h"
#include "virtio/ports.h"
#include "vmm/guest_mem.h"
#include "vmm/profile.h"
#include "vmm/trace.h"

#define VM_CONSOLE_TAIL 4096
#define VM_MAX_DEVICES  10
/* Legacy PIC lines free on a PC without ISA devices. */
#define VM_FIRST_DEVICE_IRQ 5

enum vm_state { VM_NEW, VM_RUNNING, VM_ENDED };

struct vm_device {
	struct virtio_mmio transport;
	int irqfd;
};

struct vmproc_vm {
	struct vmproc_config cfg; /* owned copy */
	char *kernel_path, *initrd_path;

	pthread_mutex_t lock; /* state, result */
	pthread_cond_t ended_cond;
	enum vm_state state;
	int ended_fd; /* eventfd, readable once ended */

	int kvm_fd, vm_fd, vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	struct guest_mem mem;
	const uint8_t *kernel_file; /* mapped for symbols in error messages */
	size_t kernel_size;
	bool emulated_kernel;

	struct vm_device dev[VM_MAX_DEVICES];
	unsigned ndev;
	struct virtio_console *console;
	struct virtio_ports *channel; /* the command channel; owned by the child */
	struct virtio_blk *disks[CONFIG_MAX_DISKS + 1];
	unsigned ndisks;
	char *system_path; /* resolved; NULL: no system image */

	pthread_t thread;
	bool thread_started;
	_Atomic pid_t vcpu_tid;
	atomic_int stop_request; /* 0, or the vmproc_failure to end with */
	uint64_t deadline_ns;    /* 0: none */
	timer_t timer;
	bool timer_armed;
	timer_t profile_timer;
	bool profile_timer_armed;
	struct profile profile;
	sigset_t io_sigmask; /* vCPU thread's mask without the kick signal */

	/* Result, written by the vCPU thread before state becomes ENDED. */
	int exit_status;
	vmproc_failure failure;
	struct vmp_error err;

	struct vm_trace trace;
	char console_tail[VM_CONSOLE_TAIL];
	size_t console_tail_len;
	bool init_ready;
};

/* Internals shared between vm.c and vcpu.c. */
void *vcpu_thread_main(void *arg);
/* The vCPU thread's last act: release KVM resources, mark the VM ended. */
void vm_thread_finished(struct vmproc_vm *vm);
/* Ends the VM with a failure (first call wins); message formatted. */
void vm_fail(struct vmproc_vm *vm, vmproc_failure f, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Symbolises a guest kernel address into buf ("func+0x12" or "0x..."). */
void vm_symbolize(const struct vmproc_vm *vm, uint64_t addr, char *buf, size_t len);

/* Attaches the command channel (vmproc_abi.h) before vmproc_vm_start. The
 * device stays the caller's; the VM detaches it before its memory goes. */
void vm_set_channel(struct vmproc_vm *vm, struct virtio_ports *channel);
/* For device backends blocking on the vCPU thread (a slow reader of the
 * program's output): whether the VM is being stopped or timed out, so
 * the wait must end. vCPU thread only. */
bool vm_io_should_abort(struct vmproc_vm *vm);
/* The signal mask for such waits (ppoll): the kick signal unblocked. */
const sigset_t *vm_io_sigmask(struct vmproc_vm *vm);
/* Ends the VM because the guest broke a protocol (vCPU thread only). */
void vm_guest_error(struct vmproc_vm *vm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The kick signal and its process-wide no-op handler (kick.c). */
int kick_signal(void);
int kick_install_handler(void);

#endif
