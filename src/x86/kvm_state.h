/* Saving and restoring the x86 state KVM keeps for a VM and its vCPUs:
 * everything a snapshot needs besides guest memory and the devices.
 *
 * The structures are KVM's own ABI structures (linux/kvm.h), so a
 * snapshot file holds them as they are; the MSRs are those KVM lists as
 * saveable (KVM_GET_MSR_INDEX_LIST) that this host can read. A vCPU's
 * state must be taken when the vCPU is out of KVM_RUN with no port or
 * MMIO access pending (x86_vcpu_complete_pending first). */
#ifndef VMP_X86_KVM_STATE_H
#define VMP_X86_KVM_STATE_H

#include <linux/kvm.h>
#include <stdint.h>

#include "util/error.h"

/* More than KVM lists on any host seen (about 100). */
#define X86_STATE_MAX_MSRS 320

struct x86_vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave xsave; /* the 4 KiB legacy layout (KVM_GET_XSAVE) */
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	struct kvm_debugregs debugregs;
	uint32_t nmsrs;
	uint32_t pad;
	struct kvm_msr_entry msrs[X86_STATE_MAX_MSRS];
};

struct x86_vm_state {
	struct kvm_irqchip pic_master, pic_slave, ioapic;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
};

/* Lets KVM finish a port or MMIO access the vCPU exited for, without
 * running guest code (immediate_exit), so the state read next is
 * consistent. run is the vCPU's mapped kvm_run. */
int x86_vcpu_complete_pending(int vcpu_fd, struct kvm_run *run, struct vmp_error *err);

int x86_vcpu_save(int kvm_fd, int vcpu_fd, struct x86_vcpu_state *s, struct vmp_error *err);
/* Into a new vCPU that has its CPUID set and has never run. */
int x86_vcpu_restore(int vcpu_fd, const struct x86_vcpu_state *s, struct vmp_error *err);

int x86_vm_save(int vm_fd, struct x86_vm_state *s, struct vmp_error *err);
/* Into a new VM with its irqchip and PIT created, before any vCPU runs. */
int x86_vm_restore(int vm_fd, const struct x86_vm_state *s, struct vmp_error *err);

/* Checks a state read from a file before it goes near KVM: counts in
 * range (KVM checks the values themselves). */
int x86_vcpu_state_check(const struct x86_vcpu_state *s, struct vmp_error *err);

#endif
