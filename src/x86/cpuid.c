#include "x86/cpuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define BIT(n) (1u << (n))

/* CPUID.1:ECX */
#define F1_ECX_PCID       BIT(17)
#define F1_ECX_X2APIC     BIT(21)
#define F1_ECX_POPCNT     BIT(23)
#define F1_ECX_XSAVE      BIT(26)
#define F1_ECX_OSXSAVE    BIT(27)
#define F1_ECX_AVX        BIT(28)
#define F1_ECX_F16C       BIT(29)
#define F1_ECX_RDRAND     BIT(30)
#define F1_ECX_HYPERVISOR BIT(31)
#define F1_ECX_FMA        BIT(12)
#define F1_ECX_MOVBE      BIT(22)
/* CPUID.7.0:EBX */
#define F7_EBX_FSGSBASE BIT(0)
#define F7_EBX_AVX2     BIT(5)
#define F7_EBX_SMEP     BIT(7)
#define F7_EBX_ERMS     BIT(9)
#define F7_EBX_INVPCID  BIT(10)
#define F7_EBX_RDSEED   BIT(18)
#define F7_EBX_SMAP     BIT(20)
/* AVX-512 F, DQ, IFMA, PF, ER, CD, BW, VL */
#define F7_EBX_AVX512                                                                              \
	(BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31))
/* CPUID.0x80000001:ECX */
#define FX1_ECX_LAHF BIT(0)
/* CPUID.0x80000008:EBX */
#define FX8_EBX_XSAVEERPTR BIT(2)

bool cpuid_host_emulates_kernel(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	if (!f)
		return true; /* cannot tell: the masked CPUID is safe everywhere */
	char line[4096];
	bool hw = false, seen_flags = false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		seen_flags = true;
		if (strstr(line, " vmx") || strstr(line, " svm"))
			hw = true;
		break;
	}
	fclose(f);
	return !(seen_flags && hw);
}

int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out, struct vmp_error *err)
{
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return vmp_fail(err, -ENOMEM, "out of memory for CPUID");
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			*out = c;
			return 0;
		}
		int e = errno;
		free(c);
		if (e != E2BIG)
			return vmp_fail_errno(err, -e, "KVM_GET_SUPPORTED_CPUID");
	}
	return vmp_fail(err, -E2BIG, "KVM_GET_SUPPORTED_CPUID: too many entries");
}

static void mask_for_emulator(struct kvm_cpuid_entry2 *e)
{
	switch (e->function) {
	case 1:
		e->ecx &= ~(F1_ECX_PCID | F1_ECX_POPCNT | F1_ECX_XSAVE | F1_ECX_OSXSAVE |
		            F1_ECX_AVX | F1_ECX_F16C | F1_ECX_RDRAND | F1_ECX_FMA | F1_ECX_MOVBE);
		break;
	case 7:
		/* ERMS is hidden too: the kernel then copies with rep movsq,
		 * eight times fewer emulated iterations than rep movsb.
		 * ECX/EDX hold LA57, PKU and speculation controls: none is
		 * wanted in an emulated kernel. */
		if (e->index == 0) {
			e->eax = 0;
			e->ebx &= ~(F7_EBX_FSGSBASE | F7_EBX_AVX2 | F7_EBX_SMEP | F7_EBX_ERMS |
			            F7_EBX_INVPCID | F7_EBX_RDSEED | F7_EBX_SMAP | F7_EBX_AVX512);
			e->ecx = 0;
			e->edx = 0;
		} else {
			e->eax = e->ebx = e->ecx = e->edx = 0;
		}
		break;
	case 0xd: /* XSAVE state enumeration: none without XSAVE */
	case 0x14: /* processor trace */ e->eax = e->ebx = e->ecx = e->edx = 0; break;
	case 0x80000001:
		/* LAHF/SAHF in 64-bit mode only: no ABM (lzcnt), SSE4A, XOP... */
		e->ecx &= FX1_ECX_LAHF;
		break;
	case 0x80000008:
		/* Keep XSAVEERPTR: without it AMD guests take a path with
		 * fnclex, which the emulator cannot run. */
		e->ebx |= FX8_EBX_XSAVEERPTR;
		break;
	default: break;
	}
}

void cpuid_filter(struct kvm_cpuid2 *c, unsigned vcpu_id, unsigned ncpus, bool emulated)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			/* APIC id, logical processor count, CLFLUSH size 64. */
			e->ebx =
			    (vcpu_id << 24) | ((ncpus & 0xff) << 16) | (8u << 8) | (e->ebx & 0xff);
			e->ecx |= F1_ECX_HYPERVISOR;
			break;
		case 0xb:
		case 0x1f:
			e->edx = vcpu_id; /* x2APIC id */
			break;
		default: break;
		}
		if (emulated)
			mask_for_emulator(e);
	}
}
