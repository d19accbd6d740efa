/* mptable_write: the Intel MP Specification 1.4 tables as Linux parses
 * them (arch/x86/kernel/mpparse.c): the floating pointer and its
 * checksum, the configuration table it points to, one processor entry
 * per vCPU with APIC ids 0..n-1 and only CPU 0 the boot processor, the
 * I/O APIC after them, and the limits. */
#include <errno.h>
#include <stdint.h>

#include "harness.h"
#include "mem/guest_mem.h"
#include "x86/mptable.h"

#define MEM_SIZE  (2u << 20)
#define FP_GPA    0x0u
#define TABLE_GPA 0x1000u
#define TABLE_MAX 0x1000u

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4 };

static uint8_t *g_buf;
static struct guest_mem g_mem;
static struct vmp_error g_err;

static int write_table(unsigned ncpus)
{
	memset(g_buf, 0xa5, MEM_SIZE); /* stale bytes must not survive */
	vmp_error_clear(&g_err);
	return mptable_write(&g_mem, FP_GPA, TABLE_GPA, TABLE_MAX, ncpus, &g_err);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Walks the table as Linux does; counts entries by type and checks the
 * processor entries. Returns 0 if well formed. */
struct walk {
	unsigned cpus, buses, ioapics, intsrcs, lintsrcs;
	unsigned bsp_count;
	int bsp_id;
	int ioapic_id;
	int ids_in_order;
};

static int walk_table(unsigned ncpus, struct walk *w)
{
	memset(w, 0, sizeof(*w));
	w->bsp_id = w->ioapic_id = -1;
	w->ids_in_order = 1;
	const uint8_t *fp = g_buf + FP_GPA;
	if (memcmp(fp, "_MP_", 4) || fp[8] != 1 || fp[9] != 4 || sum(fp, 16) != 0)
		return -1;
	uint32_t phys = le32(fp + 4);
	if (phys != TABLE_GPA)
		return -2;
	const uint8_t *t = g_buf + phys;
	uint16_t len = le16(t + 4);
	if (memcmp(t, "PCMP", 4) || t[6] != 4 || len < 44 || len > TABLE_MAX || sum(t, len) != 0 ||
	    le32(t + 36) != 0xfee00000u)
		return -3;
	unsigned count = le16(t + 34), seen = 0;
	const uint8_t *e = t + 44, *end = t + len;
	while (e < end) {
		seen++;
		switch (e[0]) {
		case MP_PROCESSOR:
			if (e[1] != w->cpus)
				w->ids_in_order = 0;
			if (!(e[3] & 1))
				return -4; /* not enabled */
			if (e[3] & 2) {
				w->bsp_count++;
				w->bsp_id = e[1];
			}
			w->cpus++;
			e += 20;
			break;
		case MP_BUS:
			w->buses++;
			e += 8;
			break;
		case MP_IOAPIC:
			w->ioapics++;
			w->ioapic_id = e[1];
			if (le32(e + 4) != 0xfec00000u)
				return -5;
			e += 8;
			break;
		case MP_INTSRC:
			if (e[6] != ncpus)
				return -6; /* routed to another APIC than the I/O APIC */
			w->intsrcs++;
			e += 8;
			break;
		case MP_LINTSRC:
			w->lintsrcs++;
			e += 8;
			break;
		default: return -7;
		}
	}
	if (e != end || seen != count)
		return -8;
	return 0;
}

static void one_cpu(void)
{
	int rc = write_table(1);
	CHECK_MSG(rc == 0, "rc %d: %s", rc, g_err.msg);
	struct walk w;
	rc = walk_table(1, &w);
	CHECK_MSG(rc == 0, "walk %d", rc);
	CHECK(w.cpus == 1 && w.bsp_count == 1 && w.bsp_id == 0 && w.ids_in_order);
	CHECK(w.buses == 1 && w.ioapics == 1 && w.ioapic_id == 1);
	CHECK(w.intsrcs == MPTABLE_IOAPIC_PINS && w.lintsrcs == 2);
}

static void several_cpus_one_bsp(void)
{
	static const unsigned counts[] = {2, 3, 8, 64};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		unsigned n = counts[i];
		int rc = write_table(n);
		CHECK_MSG(rc == 0, "%u CPUs: rc %d: %s", n, rc, g_err.msg);
		struct walk w;
		rc = walk_table(n, &w);
		CHECK_MSG(rc == 0, "%u CPUs: walk %d", n, rc);
		CHECK_MSG(w.cpus == n, "%u CPUs listed, %u asked for", w.cpus, n);
		CHECK(w.bsp_count == 1 && w.bsp_id == 0 && w.ids_in_order);
		/* The I/O APIC id must not collide with a CPU's. */
		CHECK(w.ioapics == 1 && w.ioapic_id == (int)n);
	}
}

/* Only the 16 bytes of the floating pointer and the table's length are
 * written: neighbouring guest memory (the BIOS data area at 0x400,
 * whose words Linux reads) is left alone. */
static void writes_nothing_else(void)
{
	int rc = write_table(4);
	CHECK(rc == 0);
	uint16_t len = le16(g_buf + TABLE_GPA + 4);
	for (unsigned a = 16; a < TABLE_GPA; a++)
		if (g_buf[a] != 0xa5) {
			CHECK_MSG(0, "byte 0x%x changed", a);
			break;
		}
	/* The rest of the table's window is cleared; beyond it untouched. */
	CHECK(g_buf[TABLE_GPA + len] == 0 && g_buf[TABLE_GPA + TABLE_MAX - 1] == 0);
	CHECK(g_buf[TABLE_GPA + TABLE_MAX] == 0xa5);
}

static void rejects_bad_counts(void)
{
	CHECK(write_table(0) == -EINVAL && g_err.code == -EINVAL);
	CHECK(write_table(MPTABLE_MAX_CPUS + 1) == -EINVAL);
	CHECK(strstr(g_err.msg, "CPUs") != NULL);
}

static void rejects_what_does_not_fit(void)
{
	vmp_error_clear(&g_err);
	/* 64 CPUs need more than 1 KiB. */
	CHECK(mptable_write(&g_mem, FP_GPA, TABLE_GPA, 0x400, 64, &g_err) == -E2BIG);
	CHECK(mptable_write(&g_mem, FP_GPA, TABLE_GPA, 0x400, 2, &g_err) == 0);
	/* Overlapping floating pointer and table, or outside guest memory. */
	CHECK(mptable_write(&g_mem, 0x1008, 0x1000, TABLE_MAX, 2, &g_err) == -EINVAL);
	CHECK(mptable_write(&g_mem, 0x0, 0x0, TABLE_MAX, 2, &g_err) == -EINVAL);
	CHECK(mptable_write(&g_mem, 0x0, MEM_SIZE - 0x100, TABLE_MAX, 2, &g_err) == -EINVAL);
	CHECK(mptable_write(&g_mem, MEM_SIZE - 8, TABLE_GPA, TABLE_MAX, 2, &g_err) == -EINVAL);
}

int main(int argc, char **argv)
{
	g_buf = calloc(1, MEM_SIZE);
	if (!g_buf)
		return 1;
	guest_mem_layout(&g_mem, g_buf, MEM_SIZE);
	static const struct harness_test tests[] = {
	    T(one_cpu),
	    T(several_cpus_one_bsp),
	    T(writes_nothing_else),
	    T(rejects_bad_counts),
	    T(rejects_what_does_not_fit),
	};
	int rc = harness_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
	free(g_buf);
	return rc;
}
