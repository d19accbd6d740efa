/* guest_mem: region layout around the 32-bit MMIO hole and the checked
 * accessor guest_mem_ptr, which every guest-controlled address goes
 * through. No VM needed: small layouts use a calloc'd buffer, large ones
 * a MAP_NORESERVE mapping from guest_mem_init that is barely touched. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "mem/guest_mem.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void layout_small_is_one_region(void)
{
	uint64_t size = 4 * MiB;
	uint8_t *buf = calloc(1, size);
	CHECK(buf);
	if (!buf)
		return;
	struct guest_mem m;
	memset(&m, 0xa5, sizeof(m));
	guest_mem_layout(&m, buf, size);
	CHECK(m.nregions == 1);
	CHECK(m.region[0].gpa == 0);
	CHECK(m.region[0].size == size);
	CHECK(m.region[0].host == buf);
	CHECK(m.ram_size == size);
	CHECK(guest_mem_low_end(&m) == size);
	free(buf);
}

static void ptr_bounds_single_region(void)
{
	uint64_t size = 4 * MiB;
	uint8_t *buf = calloc(1, size);
	CHECK(buf);
	if (!buf)
		return;
	struct guest_mem m;
	guest_mem_layout(&m, buf, size);

	CHECK(guest_mem_ptr(&m, 0, size) == buf);
	CHECK(guest_mem_ptr(&m, 0, 1) == buf);
	CHECK(guest_mem_ptr(&m, 0x1234, 16) == buf + 0x1234);
	CHECK(guest_mem_ptr(&m, size - 1, 1) == buf + size - 1);
	CHECK(guest_mem_ptr(&m, size - 8, 8) == buf + size - 8);
	CHECK(guest_mem_ptr(&m, 0, 0) == buf);

	/* Anything reaching past the end. */
	CHECK(guest_mem_ptr(&m, 0, size + 1) == NULL);
	CHECK(guest_mem_ptr(&m, size, 1) == NULL);
	CHECK(guest_mem_ptr(&m, size - 8, 9) == NULL);
	CHECK(guest_mem_ptr(&m, size + 1, 0) == NULL);
	CHECK(guest_mem_ptr(&m, size + 4096, 16) == NULL);
	CHECK(guest_mem_ptr(&m, GUEST_MEM_HIGH_START, 1) == NULL);

	/* gpa + len overflows 64 bits: a naive "gpa + len <= size" passes. */
	CHECK(guest_mem_ptr(&m, UINT64_MAX, 1) == NULL);
	CHECK(guest_mem_ptr(&m, UINT64_MAX, 0) == NULL);
	CHECK(guest_mem_ptr(&m, 1, UINT64_MAX) == NULL);
	CHECK(guest_mem_ptr(&m, 0, UINT64_MAX) == NULL);
	CHECK(guest_mem_ptr(&m, 0x1000, UINT64_MAX - 0xfff) == NULL); /* sum wraps to 0 */
	CHECK(guest_mem_ptr(&m, 0x1000, UINT64_MAX - 0x7ff) == NULL); /* sum wraps to 0x800 */
	CHECK(guest_mem_ptr(&m, UINT64_MAX - 0xfff, 0x2000) == NULL);
	CHECK(guest_mem_ptr(&m, 1ull << 63, 1ull << 63) == NULL);
	free(buf);
}

static void empty_mem_has_nothing(void)
{
	struct guest_mem m;
	memset(&m, 0, sizeof(m));
	CHECK(guest_mem_ptr(&m, 0, 1) == NULL);
	CHECK(guest_mem_ptr(&m, 0, 0) == NULL);
	CHECK(guest_mem_low_end(&m) == 0);
}

static void layout_splits_around_mmio_hole(void)
{
	/* Exactly up to the hole: still one region. */
	struct guest_mem m;
	guest_mem_layout(&m, (uint8_t *)0x10000, GUEST_MEM_MMIO_HOLE_START);
	CHECK(m.nregions == 1);
	CHECK(m.region[0].size == GUEST_MEM_MMIO_HOLE_START);
	CHECK(guest_mem_low_end(&m) == GUEST_MEM_MMIO_HOLE_START);
	/* The first byte of the hole is not RAM. */
	CHECK(guest_mem_ptr(&m, GUEST_MEM_MMIO_HOLE_START, 1) == NULL);
}

static void two_regions_bounds(void)
{
	uint64_t ram = GUEST_MEM_MMIO_HOLE_START + 64 * MiB;
	uint64_t high = ram - GUEST_MEM_MMIO_HOLE_START;
	struct guest_mem m;
	struct vmp_error err = {0};
	int rc = guest_mem_init(&m, ram, &err);
	CHECK_MSG(rc == 0, "rc %d: %s", rc, err.msg);
	if (rc)
		return;
	uint8_t *base = m.mapping;
	CHECK(m.nregions == 2);
	CHECK(m.ram_size == ram);
	CHECK(m.region[0].gpa == 0 && m.region[0].size == GUEST_MEM_MMIO_HOLE_START);
	CHECK(m.region[1].gpa == GUEST_MEM_HIGH_START && m.region[1].size == high);
	CHECK(guest_mem_low_end(&m) == GUEST_MEM_MMIO_HOLE_START);

	/* Low region. */
	CHECK(guest_mem_ptr(&m, 0, GUEST_MEM_MMIO_HOLE_START) == base);
	CHECK(guest_mem_ptr(&m, GUEST_MEM_MMIO_HOLE_START - 4, 4) ==
	      base + GUEST_MEM_MMIO_HOLE_START - 4);
	/* Straddling the start of the hole, inside the hole, its end. */
	CHECK(guest_mem_ptr(&m, GUEST_MEM_MMIO_HOLE_START - 4, 8) == NULL);
	CHECK(guest_mem_ptr(&m, GUEST_MEM_MMIO_HOLE_START, 4) == NULL);
	CHECK(guest_mem_ptr(&m, 0xd0000000ull, 4) == NULL);
	CHECK(guest_mem_ptr(&m, GUEST_MEM_HIGH_START - 4, 4) == NULL);
	CHECK(guest_mem_ptr(&m, GUEST_MEM_HIGH_START - 4, 8) == NULL);
	/* Spanning both regions (and the hole) at once. */
	CHECK(guest_mem_ptr(&m, GUEST_MEM_MMIO_HOLE_START - 8, GUEST_MEM_HIGH_START) == NULL);
	CHECK(guest_mem_ptr(&m, 0, ram) == NULL);
	/* High region: maps right after the low part of the host buffer. */
	CHECK(guest_mem_ptr(&m, GUEST_MEM_HIGH_START, 4) == base + GUEST_MEM_MMIO_HOLE_START);
	CHECK(guest_mem_ptr(&m, GUEST_MEM_HIGH_START, high) == base + GUEST_MEM_MMIO_HOLE_START);
	CHECK(guest_mem_ptr(&m, GUEST_MEM_HIGH_START + high - 8, 8) == base + ram - 8);
	CHECK(guest_mem_ptr(&m, GUEST_MEM_HIGH_START + high - 8, 9) == NULL);
	CHECK(guest_mem_ptr(&m, GUEST_MEM_HIGH_START + high, 1) == NULL);
	CHECK(guest_mem_ptr(&m, GUEST_MEM_HIGH_START, high + 1) == NULL);
	/* Overflow in the high region. */
	CHECK(guest_mem_ptr(&m, GUEST_MEM_HIGH_START + 16, UINT64_MAX - 15) == NULL);
	CHECK(guest_mem_ptr(&m, UINT64_MAX - 3, 8) == NULL);

	/* The accessor really aliases the mapping. */
	uint8_t *p = guest_mem_ptr(&m, GUEST_MEM_HIGH_START + 0x100, 1);
	CHECK(p);
	if (p) {
		*p = 0x5a;
		CHECK(base[GUEST_MEM_MMIO_HOLE_START + 0x100] == 0x5a);
	}
	uint8_t *q = guest_mem_ptr(&m, 0x2000, 1);
	CHECK(q && *q == 0); /* zeroed memory */

	guest_mem_release(&m);
	CHECK(m.nregions == 0 && m.mapping == NULL);
	CHECK(guest_mem_ptr(&m, 0, 1) == NULL);
}

static void init_failure_reports_error(void)
{
	struct guest_mem m;
	struct vmp_error err = {0};
	int rc = guest_mem_init(&m, 0, &err); /* mmap of 0 bytes fails */
	CHECK(rc < 0);
	CHECK(err.code == rc);
	CHECK(err.msg[0] != '\0');
	CHECK(m.mapping == NULL);
	guest_mem_release(&m); /* harmless on a failed init */
}

/* The VmFlags line of the mapping starting at p, from /proc/self/smaps. */
static int vm_flags_of(const void *p, char *flags, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		return -1;
	char line[512];
	bool in = false;
	int rc = -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' '))
			in = start == (unsigned long)(uintptr_t)p;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(flags, len, "%s", line + 8);
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* Guest RAM stays out of the host's forks (dc) and core dumps (dd). */
static void kept_out_of_forks_and_core_dumps(void)
{
	struct guest_mem m;
	struct vmp_error err = {0};
	char flags[512];
	CHECK(guest_mem_init(&m, 64 * MiB, &err) == 0);
	CHECK(vm_flags_of(m.mapping, flags, sizeof(flags)) == 0);
	CHECK_MSG(strstr(flags, " dc") && strstr(flags, " dd"), "VmFlags:%s", flags);
	guest_mem_release(&m);

	int fd = memfd_create("test", MFD_CLOEXEC);
	CHECK(fd >= 0 && ftruncate(fd, (off_t)(16 * MiB)) == 0);
	CHECK(guest_mem_init_fd(&m, 16 * MiB, fd, 0, false, &err) == 0);
	CHECK(vm_flags_of(m.mapping, flags, sizeof(flags)) == 0);
	CHECK_MSG(strstr(flags, " dc") && strstr(flags, " dd"), "VmFlags:%s", flags);
	guest_mem_release(&m);
	close(fd);
}

TEST_LIST(T(kept_out_of_forks_and_core_dumps), T(layout_small_is_one_region),
          T(ptr_bounds_single_region), T(empty_mem_has_nothing), T(layout_splits_around_mmio_hole),
          T(two_regions_bounds), T(init_failure_reports_error))
