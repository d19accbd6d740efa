#include "x86/kvm_state.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_IA32_TSC_DEADLINE 0x6e0

int x86_vcpu_complete_pending(int vcpu_fd, struct kvm_run *run, struct vmp_error *err)
{
	run->immediate_exit = 1;
	int rc = ioctl(vcpu_fd, KVM_RUN, 0);
	int e = errno;
	run->immediate_exit = 0;
	/* KVM finishes the access, then returns EINTR without entering. */
	if (rc == 0 || e != EINTR)
		return vmp_fail(
		    err, rc == 0 ? -EIO : -e,
		    "KVM_RUN with immediate_exit did not return EINTR (rc %d, errno %d)", rc,
		    rc == 0 ? 0 : e);
	return 0;
}

/* The MSRs KVM can save, as a kvm_msr_list the caller frees. */
static int msr_index_list(int kvm_fd, struct kvm_msr_list **out, struct vmp_error *err)
{
	struct kvm_msr_list probe = {.nmsrs = 0};
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return vmp_fail_errno(err, -errno, "KVM_GET_MSR_INDEX_LIST");
	if (probe.nmsrs == 0 || probe.nmsrs > 4096)
		return vmp_fail(err, -EIO, "KVM lists %u saveable MSRs", probe.nmsrs);
	struct kvm_msr_list *l = malloc(sizeof(*l) + probe.nmsrs * sizeof(l->indices[0]));
	if (!l)
		return vmp_fail(err, -ENOMEM, "out of memory");
	l->nmsrs = probe.nmsrs;
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		int e = -errno;
		free(l);
		return vmp_fail_errno(err, e, "KVM_GET_MSR_INDEX_LIST");
	}
	*out = l;
	return 0;
}

/* Every listed MSR this vCPU lets us read (some are listed for features
 * the guest CPUID lacks, and reading them fails: those are not state). */
static int save_msrs(int kvm_fd, int vcpu_fd, struct x86_vcpu_state *s, struct vmp_error *err)
{
	struct kvm_msr_list *l = NULL;
	int rc = msr_index_list(kvm_fd, &l, err);
	if (rc || !l)
		return rc ? rc : -EIO;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} one;
	s->nmsrs = 0;
	for (uint32_t i = 0; i < l->nmsrs; i++) {
		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.e.index = l->indices[i];
		if (ioctl(vcpu_fd, KVM_GET_MSRS, &one) != 1)
			continue;
		if (s->nmsrs == X86_STATE_MAX_MSRS) {
			free(l);
			return vmp_fail(err, -E2BIG, "more than %d saveable MSRs",
			                X86_STATE_MAX_MSRS);
		}
		s->msrs[s->nmsrs++] = one.e;
	}
	free(l);
	return 0;
}

int x86_vcpu_save(int kvm_fd, int vcpu_fd, struct x86_vcpu_state *s, struct vmp_error *err)
{
	memset(s, 0, sizeof(*s));
	static const struct {
		unsigned long req;
		size_t off;
		const char *name;
	} parts[] = {
	    {KVM_GET_REGS, offsetof(struct x86_vcpu_state, regs), "KVM_GET_REGS"},
	    {KVM_GET_SREGS, offsetof(struct x86_vcpu_state, sregs), "KVM_GET_SREGS"},
	    {KVM_GET_XSAVE, offsetof(struct x86_vcpu_state, xsave), "KVM_GET_XSAVE"},
	    {KVM_GET_XCRS, offsetof(struct x86_vcpu_state, xcrs), "KVM_GET_XCRS"},
	    {KVM_GET_LAPIC, offsetof(struct x86_vcpu_state, lapic), "KVM_GET_LAPIC"},
	    {KVM_GET_VCPU_EVENTS, offsetof(struct x86_vcpu_state, events), "KVM_GET_VCPU_EVENTS"},
	    {KVM_GET_MP_STATE, offsetof(struct x86_vcpu_state, mp_state), "KVM_GET_MP_STATE"},
	    {KVM_GET_DEBUGREGS, offsetof(struct x86_vcpu_state, debugregs), "KVM_GET_DEBUGREGS"},
	};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (ioctl(vcpu_fd, parts[i].req, (char *)s + parts[i].off) < 0)
			return vmp_fail_errno(err, -errno, "%s", parts[i].name);
	return save_msrs(kvm_fd, vcpu_fd, s, err);
}

static int set_msrs(int vcpu_fd, const struct kvm_msr_entry *e, uint32_t n, struct vmp_error *err)
{
	if (n == 0)
		return 0;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(*e));
	if (!m)
		return vmp_fail(err, -ENOMEM, "out of memory");
	m->nmsrs = n;
	memcpy(m->entries, e, n * sizeof(*e));
	int done = ioctl(vcpu_fd, KVM_SET_MSRS, m);
	int e_no = errno;
	free(m);
	if (done < 0)
		return vmp_fail_errno(err, -e_no, "KVM_SET_MSRS");
	if ((uint32_t)done != n)
		return vmp_fail(err, -EINVAL, "KVM refused MSR 0x%x", e[done].index);
	return 0;
}

int x86_vcpu_restore(int vcpu_fd, const struct x86_vcpu_state *s, struct vmp_error *err)
{
	int rc = x86_vcpu_state_check(s, err);
	if (rc)
		return rc;
	/* QEMU's order: the TSC deadline after the LAPIC (setting the LAPIC
	 * clears it), events and debug registers last. */
	struct kvm_msr_entry msrs[X86_STATE_MAX_MSRS], deadline[1];
	uint32_t n = 0, nd = 0;
	for (uint32_t i = 0; i < s->nmsrs; i++) {
		if (s->msrs[i].index == MSR_IA32_TSC_DEADLINE) {
			deadline[0] = s->msrs[i];
			nd = 1;
		} else {
			msrs[n++] = s->msrs[i];
		}
	}
	if (ioctl(vcpu_fd, KVM_SET_REGS, &s->regs) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_REGS");
	if (ioctl(vcpu_fd, KVM_SET_XSAVE, &s->xsave) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_XSAVE");
	if (ioctl(vcpu_fd, KVM_SET_XCRS, &s->xcrs) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_XCRS");
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &s->sregs) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_SREGS");
	if ((rc = set_msrs(vcpu_fd, msrs, n, err)))
		return rc;
	if (ioctl(vcpu_fd, KVM_SET_MP_STATE, &s->mp_state) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_MP_STATE");
	if (ioctl(vcpu_fd, KVM_SET_LAPIC, &s->lapic) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_LAPIC");
	if ((rc = set_msrs(vcpu_fd, deadline, nd, err)))
		return rc;
	if (ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &s->events) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_VCPU_EVENTS");
	if (ioctl(vcpu_fd, KVM_SET_DEBUGREGS, &s->debugregs) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_DEBUGREGS");
	return 0;
}

int x86_vm_save(int vm_fd, struct x86_vm_state *s, struct vmp_error *err)
{
	memset(s, 0, sizeof(*s));
	s->pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
	s->pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	s->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	struct kvm_irqchip *chips[] = {&s->pic_master, &s->pic_slave, &s->ioapic};
	for (int i = 0; i < 3; i++)
		if (ioctl(vm_fd, KVM_GET_IRQCHIP, chips[i]) < 0)
			return vmp_fail_errno(err, -errno, "KVM_GET_IRQCHIP %d", i);
	if (ioctl(vm_fd, KVM_GET_PIT2, &s->pit) < 0)
		return vmp_fail_errno(err, -errno, "KVM_GET_PIT2");
	if (ioctl(vm_fd, KVM_GET_CLOCK, &s->clock) < 0)
		return vmp_fail_errno(err, -errno, "KVM_GET_CLOCK");
	return 0;
}

int x86_vm_restore(int vm_fd, const struct x86_vm_state *s, struct vmp_error *err)
{
	const struct kvm_irqchip *chips[] = {&s->pic_master, &s->pic_slave, &s->ioapic};
	for (int i = 0; i < 3; i++) {
		if (chips[i]->chip_id != (uint32_t)i)
			return vmp_fail(err, -EINVAL, "irqchip %d has id %u", i, chips[i]->chip_id);
		if (ioctl(vm_fd, KVM_SET_IRQCHIP, chips[i]) < 0)
			return vmp_fail_errno(err, -errno, "KVM_SET_IRQCHIP %d", i);
	}
	if (ioctl(vm_fd, KVM_SET_PIT2, &s->pit) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_PIT2");
	/* The guest's kvmclock goes on from where it was: for the guest no
	 * time passed between capture and restore (its wall clock is set
	 * per spawn by init, VMPROC_MSG_TIME). Only the clock value is
	 * ours to set; KVM rejects other flags from another host clock. */
	struct kvm_clock_data clock = {.clock = s->clock.clock};
	if (ioctl(vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_CLOCK");
	return 0;
}

int x86_vcpu_state_check(const struct x86_vcpu_state *s, struct vmp_error *err)
{
	if (s->nmsrs > X86_STATE_MAX_MSRS)
		return vmp_fail(err, -EINVAL, "vCPU state lists %u MSRs (at most %d)", s->nmsrs,
		                X86_STATE_MAX_MSRS);
	if (s->xcrs.nr_xcrs > KVM_MAX_XCRS)
		return vmp_fail(err, -EINVAL, "vCPU state lists %u XCRs (at most %d)",
		                s->xcrs.nr_xcrs, KVM_MAX_XCRS);
	return 0;
}
