#include "x86/cpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "x86/layout.h"

#define CR0_PE      (1ull << 0)
#define CR0_ET      (1ull << 4)
#define CR0_PG      (1ull << 31)
#define CR4_PAE     (1ull << 5)
#define EFER_LME    (1ull << 8)
#define EFER_LMA    (1ull << 10)
#define PTE_PRESENT (1ull << 0)
#define PTE_WRITE   (1ull << 1)
#define PTE_HUGE    (1ull << 7)

/* The boot protocol wants __BOOT_CS = 0x10 and __BOOT_DS = 0x18. */
#define GDT_CODE_INDEX 2
#define GDT_DATA_INDEX 3
#define GDT_TSS_INDEX  4
#define GDT_ENTRIES    5

#define MSR_IA32_MISC_ENABLE    0x1a0
#define MISC_ENABLE_FAST_STRING 1ull

#define APIC_LVT0        0x350
#define APIC_LVT1        0x360
#define APIC_MODE_EXTINT 0x7
#define APIC_MODE_NMI    0x4

static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
	       ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
	       (uint64_t)(limit & 0x0000ffffu);
}

int x86_write_boot_tables(struct guest_mem *mem, struct vmp_error *err)
{
	uint64_t *gdt = guest_mem_ptr(mem, LAYOUT_GDT, GDT_ENTRIES * 8);
	uint64_t *pml4 = guest_mem_ptr(mem, LAYOUT_PML4, 4096);
	uint64_t *pdpt = guest_mem_ptr(mem, LAYOUT_PDPT, 4096);
	uint64_t *pd = guest_mem_ptr(mem, LAYOUT_PD, 4096);
	if (!gdt || !pml4 || !pdpt || !pd)
		return vmp_fail(err, -ENOMEM, "guest memory too small for boot page tables");
	memset(gdt, 0, GDT_ENTRIES * 8);
	gdt[GDT_CODE_INDEX] = gdt_entry(0xa09b, 0, 0xfffff); /* 64-bit code */
	gdt[GDT_DATA_INDEX] = gdt_entry(0xc093, 0, 0xfffff); /* data */
	gdt[GDT_TSS_INDEX] = gdt_entry(0x808b, 0, 0xfffff);  /* busy TSS */
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | PTE_PRESENT | PTE_WRITE;
	pdpt[0] = LAYOUT_PD | PTE_PRESENT | PTE_WRITE;
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = (i << 21) | PTE_PRESENT | PTE_WRITE | PTE_HUGE;
	return 0;
}

static struct kvm_segment segment(unsigned index, uint16_t flags)
{
	return (struct kvm_segment){
	    .base = 0,
	    .limit = 0xfffff,
	    .selector = (uint16_t)(index * 8),
	    .type = flags & 0xf,
	    .present = (flags >> 7) & 1,
	    .dpl = (flags >> 5) & 3,
	    .db = (flags >> 14) & 1,
	    .s = (flags >> 4) & 1,
	    .l = (flags >> 13) & 1,
	    .g = (flags >> 15) & 1,
	};
}

static int setup_sregs(int fd, struct vmp_error *err)
{
	struct kvm_sregs s;
	if (ioctl(fd, KVM_GET_SREGS, &s) < 0)
		return vmp_fail_errno(err, -errno, "KVM_GET_SREGS");
	struct kvm_segment code = segment(GDT_CODE_INDEX, 0xa09b);
	struct kvm_segment data = segment(GDT_DATA_INDEX, 0xc093);
	struct kvm_segment tss = segment(GDT_TSS_INDEX, 0x808b);
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = tss;
	s.gdt.base = LAYOUT_GDT;
	s.gdt.limit = GDT_ENTRIES * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = CR0_PE | CR0_PG | CR0_ET;
	s.cr3 = LAYOUT_PML4;
	s.cr4 = CR4_PAE;
	s.efer = EFER_LME | EFER_LMA;
	if (ioctl(fd, KVM_SET_SREGS, &s) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_SREGS");
	return 0;
}

static int setup_regs(int fd, uint64_t entry, uint64_t zero_page, struct vmp_error *err)
{
	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rflags = 0x2; /* reserved bit; interrupts off */
	r.rip = entry;
	r.rsi = zero_page;
	if (ioctl(fd, KVM_SET_REGS, &r) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_REGS");
	return 0;
}

static int setup_fpu(int fd, struct vmp_error *err)
{
	struct kvm_fpu f;
	memset(&f, 0, sizeof(f));
	f.fcw = 0x37f;
	f.mxcsr = 0x1f80;
	if (ioctl(fd, KVM_SET_FPU, &f) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_FPU");
	return 0;
}

static int setup_msrs(int fd, struct vmp_error *err)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[1];
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.e[0].index = MSR_IA32_MISC_ENABLE;
	m.e[0].data = MISC_ENABLE_FAST_STRING;
	if (ioctl(fd, KVM_SET_MSRS, &m) != 1)
		return vmp_fail(err, -EIO, "KVM_SET_MSRS failed for MISC_ENABLE");
	return 0;
}

static void set_lvt(struct kvm_lapic_state *l, unsigned reg, uint32_t mode)
{
	uint32_t v;
	memcpy(&v, &l->regs[reg], 4);
	v = (v & ~0x700u) | (mode << 8);
	memcpy(&l->regs[reg], &v, 4);
}

/* Legacy PIC interrupts reach the CPU through LINT0 in ExtINT mode until
 * the kernel programs its local APIC; NMIs through LINT1. */
static int setup_lapic(int fd, struct vmp_error *err)
{
	struct kvm_lapic_state l;
	if (ioctl(fd, KVM_GET_LAPIC, &l) < 0)
		return vmp_fail_errno(err, -errno, "KVM_GET_LAPIC");
	set_lvt(&l, APIC_LVT0, APIC_MODE_EXTINT);
	set_lvt(&l, APIC_LVT1, APIC_MODE_NMI);
	if (ioctl(fd, KVM_SET_LAPIC, &l) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_LAPIC");
	return 0;
}

int x86_setup_boot_vcpu(int vcpu_fd, uint64_t entry, uint64_t zero_page, struct vmp_error *err)
{
	int rc;
	if ((rc = setup_sregs(vcpu_fd, err)) || (rc = setup_regs(vcpu_fd, entry, zero_page, err)) ||
	    (rc = setup_fpu(vcpu_fd, err)) || (rc = setup_msrs(vcpu_fd, err)) ||
	    (rc = setup_lapic(vcpu_fd, err)))
		return rc;
	return 0;
}

int x86_setup_ap_vcpu(int vcpu_fd, struct vmp_error *err)
{
	return setup_msrs(vcpu_fd, err);
}
