#include "x86/mptable.h"

#include <errno.h>
#include <string.h>

#define APIC_DEFAULT_BASE   0xfee00000u
#define IOAPIC_DEFAULT_BASE 0xfec00000u
#define APIC_VERSION        0x14
#define IOAPIC_VERSION      0x11

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };
#define CPU_ENABLED       1
#define CPU_BOOTPROCESSOR 2

struct mpf_intel {
	char signature[4]; /* "_MP_" */
	uint32_t physptr;
	uint8_t length; /* in 16-byte units */
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_table {
	char signature[4]; /* "PCMP" */
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount; /* number of entries */
	uint32_t lapic;
	uint32_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type, apicid, apicver, cpuflag;
	uint32_t cpufeature, featureflag, reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type, busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type, apicid, apicver, flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {
	uint8_t type, irqtype;
	uint16_t irqflag;
	uint8_t srcbus, srcbusirq, dstapic, dstirq;
} __attribute__((packed));

static uint8_t checksum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	while (n--)
		sum += *b++;
	return (uint8_t)(0 - sum);
}

struct writer {
	uint8_t *base, *at, *end;
	uint16_t entries;
};

static void *put(struct writer *w, size_t n)
{
	if ((size_t)(w->end - w->at) < n)
		return NULL;
	void *p = w->at;
	w->at += n;
	return p;
}

static int put_entries(struct writer *w, unsigned ncpus)
{
	uint8_t ioapic_id = (uint8_t)ncpus;
	for (unsigned i = 0; i < ncpus; i++) {
		struct mpc_cpu *c = put(w, sizeof(*c));
		if (!c)
			return -1;
		*c = (struct mpc_cpu){.type = MP_PROCESSOR,
		                      .apicid = (uint8_t)i,
		                      .apicver = APIC_VERSION,
		                      .cpuflag = CPU_ENABLED | (i == 0 ? CPU_BOOTPROCESSOR : 0),
		                      .cpufeature = 0x600,
		                      .featureflag = 0x201};
		w->entries++;
	}
	struct mpc_bus *b = put(w, sizeof(*b));
	struct mpc_ioapic *io = put(w, sizeof(*io));
	if (!b || !io)
		return -1;
	*b = (struct mpc_bus){.type = MP_BUS, .busid = 0};
	memcpy(b->bustype, "ISA   ", 6);
	*io = (struct mpc_ioapic){.type = MP_IOAPIC,
	                          .apicid = ioapic_id,
	                          .apicver = IOAPIC_VERSION,
	                          .flags = 1,
	                          .apicaddr = IOAPIC_DEFAULT_BASE};
	w->entries += 2;
	/* ISA IRQ n on I/O APIC pin n: KVM's default GSI routing. */
	for (uint8_t pin = 0; pin < MPTABLE_IOAPIC_PINS; pin++) {
		struct mpc_intsrc *s = put(w, sizeof(*s));
		if (!s)
			return -1;
		*s = (struct mpc_intsrc){.type = MP_INTSRC,
		                         .irqtype = MP_INT,
		                         .srcbus = 0,
		                         .srcbusirq = pin,
		                         .dstapic = ioapic_id,
		                         .dstirq = pin};
		w->entries++;
	}
	struct mpc_intsrc *l0 = put(w, sizeof(*l0)), *l1 = put(w, sizeof(*l1));
	if (!l0 || !l1)
		return -1;
	*l0 = (struct mpc_intsrc){
	    .type = MP_LINTSRC, .irqtype = MP_EXTINT, .dstapic = 0xff, .dstirq = 0};
	*l1 = (struct mpc_intsrc){
	    .type = MP_LINTSRC, .irqtype = MP_NMI, .dstapic = 0xff, .dstirq = 1};
	w->entries += 2;
	return 0;
}

int mptable_write(struct guest_mem *mem, uint64_t fp_gpa, uint64_t table_gpa, uint64_t table_max,
                  unsigned ncpus, struct vmp_error *err)
{
	if (ncpus == 0 || ncpus > MPTABLE_MAX_CPUS)
		return vmp_fail(err, -EINVAL, "an MP table lists 1..%d CPUs, not %u",
		                MPTABLE_MAX_CPUS, ncpus);
	struct mpf_intel *mpf = guest_mem_ptr(mem, fp_gpa, sizeof(*mpf));
	uint8_t *p = guest_mem_ptr(mem, table_gpa, table_max);
	if (!mpf || !p || table_gpa > UINT32_MAX - table_max ||
	    (fp_gpa < table_gpa + table_max && table_gpa < fp_gpa + sizeof(*mpf)))
		return vmp_fail(err, -EINVAL, "cannot place an MP table at 0x%llx and 0x%llx",
		                (unsigned long long)fp_gpa, (unsigned long long)table_gpa);
	memset(p, 0, table_max);
	struct writer w = {.base = p, .at = p, .end = p + table_max};
	struct mpc_table *t = put(&w, sizeof(*t));
	if (!t || put_entries(&w, ncpus))
		return vmp_fail(err, -E2BIG, "MP table for %u CPUs does not fit in %llu bytes",
		                ncpus, (unsigned long long)table_max);
	memcpy(t->signature, "PCMP", 4);
	t->length = (uint16_t)(w.at - (uint8_t *)t);
	t->spec = 4;
	memcpy(t->oem, "VMPROC  ", 8);
	memcpy(t->productid, "vmproc      ", 12);
	t->oemcount = w.entries;
	t->lapic = APIC_DEFAULT_BASE;
	t->checksum = checksum(t, t->length);
	memset(mpf, 0, sizeof(*mpf));
	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)table_gpa;
	mpf->length = 1;
	mpf->specification = 4;
	mpf->checksum = checksum(mpf, sizeof(*mpf));
	return 0;
}
