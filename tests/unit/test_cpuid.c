/* cpuid_filter on a synthetic KVM_GET_SUPPORTED_CPUID result: what the
 * guest kernel sees per vCPU, in emulated mode (features the KVM
 * emulator cannot run are hidden) and in hardware mode (kept). */
#include <linux/kvm.h>
#include <stdint.h>

#include "harness.h"
#include "x86/cpuid.h"

#define BIT(n) (1u << (n))

/* CPUID.1:ECX */
#define PCID       BIT(17)
#define POPCNT     BIT(23)
#define XSAVE      BIT(26)
#define OSXSAVE    BIT(27)
#define AVX        BIT(28)
#define RDRAND     BIT(30)
#define HYPERVISOR BIT(31)
#define SSE3       BIT(0)
#define SSSE3      BIT(9)
#define SSE41      BIT(19)
#define SSE42      BIT(20)
/* CPUID.7.0:EBX */
#define FSGSBASE BIT(0)
#define SMEP     BIT(7)
#define ERMS     BIT(9)
#define SMAP     BIT(20)
#define BMI1     BIT(3)
/* CPUID.0x80000008:EBX */
#define XSAVEERPTR BIT(2)

enum { E_1, E_7, E_7_1, E_D0, E_D1, E_X1, E_X8, E_B, E_0, E_EXTRA, N_ENTRIES };

/* Every register of every leaf starts all-ones (except HYPERVISOR and
 * XSAVEERPTR, which start clear), as a feature-rich host would report. */
static struct kvm_cpuid2 *make_cpuid(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + N_ENTRIES * sizeof(c->entries[0]));
	if (!c)
		return NULL;
	static const struct {
		uint32_t function, index;
	} leaves[N_ENTRIES] = {
	    [E_1] = {1, 0},           [E_7] = {7, 0},    [E_7_1] = {7, 1},
	    [E_D0] = {0xd, 0},        [E_D1] = {0xd, 1}, [E_X1] = {0x80000001, 0},
	    [E_X8] = {0x80000008, 0}, [E_B] = {0xb, 0},  [E_0] = {0, 0},
	    [E_EXTRA] = {1, 0},
	};
	for (unsigned i = 0; i < N_ENTRIES; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		e->function = leaves[i].function;
		e->index = leaves[i].index;
		e->eax = e->ebx = e->ecx = e->edx = 0xffffffff;
	}
	c->entries[E_1].ecx &= ~HYPERVISOR;
	c->entries[E_1].ebx = 0x000000ab; /* brand index in EBX[7:0] */
	c->entries[E_X8].ebx = 0;
	c->entries[E_0].eax = 0x1f;
	c->entries[E_0].ebx = 0x756e6547; /* "Genu" */
	/* The last entry is outside nent: cpuid_filter must not touch it. */
	c->entries[E_EXTRA].ecx = 0;
	c->nent = N_ENTRIES - 1;
	return c;
}

static void emulated_masks_leaf1(void)
{
	struct kvm_cpuid2 *c = make_cpuid();
	CHECK(c);
	if (!c)
		return;
	cpuid_filter(c, 0, 1, true);
	uint32_t ecx = c->entries[E_1].ecx;
	CHECK((ecx & XSAVE) == 0);
	CHECK((ecx & OSXSAVE) == 0);
	CHECK((ecx & AVX) == 0);
	CHECK((ecx & POPCNT) == 0);
	CHECK((ecx & RDRAND) == 0);
	CHECK((ecx & PCID) == 0);
	CHECK(ecx & HYPERVISOR);
	/* Baseline features survive. */
	CHECK((ecx & (SSE3 | SSSE3 | SSE41 | SSE42)) == (SSE3 | SSSE3 | SSE41 | SSE42));
	CHECK(c->entries[E_1].edx == 0xffffffff);
	CHECK(c->entries[E_1].eax == 0xffffffff);
	/* The entry past nent is untouched. */
	CHECK(c->entries[E_EXTRA].ecx == 0 && c->entries[E_EXTRA].ebx == 0xffffffff);
	free(c);
}

static void emulated_masks_leaf7_and_xsave_leaves(void)
{
	struct kvm_cpuid2 *c = make_cpuid();
	CHECK(c);
	if (!c)
		return;
	cpuid_filter(c, 0, 1, true);
	uint32_t ebx = c->entries[E_7].ebx;
	CHECK((ebx & SMAP) == 0);
	CHECK((ebx & SMEP) == 0);
	CHECK((ebx & FSGSBASE) == 0);
	CHECK((ebx & ERMS) == 0);
	CHECK(ebx & BMI1); /* not everything is hidden */
	/* XSAVE state enumeration: nothing without XSAVE. */
	for (int i = E_D0; i <= E_D1; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];
		CHECK_MSG(e->eax == 0 && e->ebx == 0 && e->ecx == 0 && e->edx == 0, "0xd.%u",
		          e->index);
	}
	/* Kept on AMD so the kernel avoids the fnclex path. */
	CHECK(c->entries[E_X8].ebx & XSAVEERPTR);
	/* Vendor and max leaf untouched. */
	CHECK(c->entries[E_0].eax == 0x1f && c->entries[E_0].ebx == 0x756e6547);
	free(c);
}

static void hardware_mode_keeps_features(void)
{
	struct kvm_cpuid2 *c = make_cpuid();
	CHECK(c);
	if (!c)
		return;
	cpuid_filter(c, 0, 1, false);
	uint32_t ecx = c->entries[E_1].ecx;
	CHECK(ecx & AVX);
	CHECK(ecx & XSAVE);
	CHECK(ecx & OSXSAVE);
	CHECK(ecx & POPCNT);
	CHECK(ecx & RDRAND);
	CHECK(ecx & PCID);
	CHECK(ecx & HYPERVISOR);
	CHECK(ecx == 0xffffffff);
	CHECK(c->entries[E_7].ebx == 0xffffffff);
	CHECK(c->entries[E_7].ecx == 0xffffffff && c->entries[E_7].edx == 0xffffffff);
	CHECK(c->entries[E_D0].eax == 0xffffffff && c->entries[E_D1].eax == 0xffffffff);
	CHECK(c->entries[E_X1].ecx == 0xffffffff);
	free(c);
}

static void apic_id_per_vcpu(void)
{
	for (int emulated = 0; emulated <= 1; emulated++) {
		for (unsigned id = 0; id < 4; id++) {
			struct kvm_cpuid2 *c = make_cpuid();
			CHECK(c);
			if (!c)
				return;
			cpuid_filter(c, id, 4, emulated);
			uint32_t ebx = c->entries[E_1].ebx;
			CHECK_MSG(ebx >> 24 == id, "vcpu %u: APIC id %u", id, ebx >> 24);
			CHECK_MSG(((ebx >> 16) & 0xff) == 4, "vcpu %u: %u logical CPUs", id,
			          (ebx >> 16) & 0xff);
			CHECK(((ebx >> 8) & 0xff) == 8); /* CLFLUSH line: 8 * 8 bytes */
			CHECK((ebx & 0xff) == 0xab);     /* brand index kept */
			/* The x2APIC topology leaf agrees. */
			CHECK(c->entries[E_B].edx == id);
			CHECK(c->entries[E_1].ecx & HYPERVISOR);
			free(c);
		}
	}
	/* A larger id. */
	struct kvm_cpuid2 *c = make_cpuid();
	CHECK(c);
	if (!c)
		return;
	cpuid_filter(c, 200, 255, false);
	CHECK(c->entries[E_1].ebx >> 24 == 200);
	CHECK(c->entries[E_B].edx == 200);
	free(c);
}

static void filter_is_idempotent(void)
{
	struct kvm_cpuid2 *a = make_cpuid(), *b = make_cpuid();
	CHECK(a && b);
	if (a && b) {
		cpuid_filter(a, 1, 2, true);
		cpuid_filter(b, 1, 2, true);
		cpuid_filter(b, 1, 2, true);
		CHECK(memcmp(a->entries, b->entries, sizeof(a->entries[0]) * N_ENTRIES) == 0);
	}
	free(a);
	free(b);
}

TEST_LIST(T(emulated_masks_leaf1), T(emulated_masks_leaf7_and_xsave_leaves),
          T(hardware_mode_keeps_features), T(apic_id_per_vcpu), T(filter_is_idempotent))
