/* boot_params_build: the Linux x86 zero page as the kernel will read it
 * (Documentation/arch/x86/boot.rst): magic values, command line, initrd
 * and the e820 memory map, for small guests and for guests whose RAM
 * continues above the 32-bit MMIO hole. */
#include <asm/bootparam.h>
#include <asm/e820.h>
#include <errno.h>
#include <stdint.h>

#include "harness.h"
#include "mem/guest_mem.h"
#include "x86/boot_params.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static struct boot_params g_bp;
static struct vmp_error g_err;

/* Only the region table matters to boot_params_build; small layouts
 * need no memory behind them. Large ones use a MAP_NORESERVE mapping. */
static uint8_t g_dummy[16];

static struct boot_params_input input(const struct guest_mem *m)
{
	return (struct boot_params_input){
	    .mem = m,
	    .cmdline_gpa = 0x20000,
	    .cmdline_size = sizeof("console=hvc0 quiet"),
	};
}

static int build(const struct boot_params_input *in)
{
	vmp_error_clear(&g_err);
	memset(&g_bp, 0xff, sizeof(g_bp)); /* stale data must not survive */
	return boot_params_build(&g_bp, in, &g_err);
}

static int e820_is(unsigned i, uint64_t addr, uint64_t size, uint32_t type)
{
	const struct boot_e820_entry *e = &g_bp.e820_table[i];
	return e->addr == addr && e->size == size && e->type == type;
}

/* Entries sorted, non-overlapping, nothing inside the MMIO hole, and the
 * RAM entries add up to what the guest was given minus the legacy hole. */
static int e820_sane(uint64_t ram_size)
{
	uint64_t ram = 0, end = 0;
	for (unsigned i = 0; i < g_bp.e820_entries; i++) {
		const struct boot_e820_entry *e = &g_bp.e820_table[i];
		if (e->size == 0 || e->addr < end || e->addr + e->size < e->addr)
			return 0;
		end = e->addr + e->size;
		if (e->type == E820_RAM) {
			ram += e->size;
			if (e->addr < GUEST_MEM_HIGH_START && end > GUEST_MEM_MMIO_HOLE_START)
				return 0;
		}
	}
	return ram == ram_size - (0x100000 - 0x9fc00);
}

static void header_magic_and_cmdline(void)
{
	struct guest_mem m;
	guest_mem_layout(&m, g_dummy, 128 * MiB);
	struct boot_params_input in = input(&m);
	int rc = build(&in);
	CHECK_MSG(rc == 0, "rc %d: %s", rc, g_err.msg);
	CHECK(g_err.code == 0);
	CHECK(g_bp.hdr.boot_flag == 0xaa55);
	CHECK(g_bp.hdr.header == 0x53726448);
	CHECK(memcmp(&g_bp.hdr.header, "HdrS", 4) == 0);
	/* 2.12+ is needed for the ext_* high halves the kernel then reads. */
	CHECK(g_bp.hdr.version >= 0x020c);
	CHECK(g_bp.hdr.type_of_loader != 0); /* 0 would mean LILO */
	CHECK(g_bp.hdr.loadflags & LOADED_HIGH);
	CHECK(g_bp.hdr.cmd_line_ptr == 0x20000);
	CHECK(g_bp.ext_cmd_line_ptr == 0);
	CHECK(g_bp.hdr.cmdline_size == strlen("console=hvc0 quiet"));
	/* No initrd. */
	CHECK(g_bp.hdr.ramdisk_image == 0 && g_bp.hdr.ramdisk_size == 0);
	CHECK(g_bp.ext_ramdisk_image == 0 && g_bp.ext_ramdisk_size == 0);
	/* Fields we do not set are zero, not left over. */
	CHECK(g_bp.acpi_rsdp_addr == 0);
	CHECK(g_bp.hdr.setup_data == 0);
	CHECK(g_bp.e820_table[g_bp.e820_entries].size == 0);
	CHECK(g_bp.screen_info.orig_video_isVGA == 0);
}

static void cmdline_and_initrd_addresses(void)
{
	struct guest_mem m;
	guest_mem_layout(&m, g_dummy, 256 * MiB);
	struct boot_params_input in = input(&m);
	in.initrd_gpa = 0x7000000;
	in.initrd_size = 0x123456;
	CHECK(build(&in) == 0);
	CHECK(g_bp.hdr.ramdisk_image == 0x7000000);
	CHECK(g_bp.hdr.ramdisk_size == 0x123456);
	CHECK(g_bp.ext_ramdisk_image == 0);

	/* Above 4 GiB, the high halves go into the ext_ fields. */
	in.initrd_gpa = 0x120000000ull;
	in.cmdline_gpa = 0x100020000ull;
	CHECK(build(&in) == 0);
	CHECK(g_bp.hdr.ramdisk_image == 0x20000000);
	CHECK(g_bp.ext_ramdisk_image == 1);
	CHECK(g_bp.hdr.cmd_line_ptr == 0x20000);
	CHECK(g_bp.ext_cmd_line_ptr == 1);

	/* initrd_size 0 means no initrd, whatever the address. */
	in.initrd_size = 0;
	CHECK(build(&in) == 0);
	CHECK(g_bp.hdr.ramdisk_image == 0 && g_bp.ext_ramdisk_image == 0 &&
	      g_bp.hdr.ramdisk_size == 0);
}

static void e820_small_memory(void)
{
	struct guest_mem m;
	guest_mem_layout(&m, g_dummy, 128 * MiB);
	struct boot_params_input in = input(&m);
	CHECK(build(&in) == 0);
	CHECK(g_bp.e820_entries == 3);
	CHECK(e820_is(0, 0, 0x9fc00, E820_RAM));
	CHECK(e820_is(1, 0x9fc00, 0x100000 - 0x9fc00, E820_RESERVED));
	CHECK(e820_is(2, 0x100000, 128 * MiB - 0x100000, E820_RAM));
	CHECK(e820_sane(128 * MiB));

	/* Just over 1 MiB is the smallest accepted. */
	guest_mem_layout(&m, g_dummy, MiB + 4096);
	CHECK(build(&in) == 0);
	CHECK(g_bp.e820_entries == 3);
	CHECK(e820_is(2, 0x100000, 4096, E820_RAM));

	/* Up to the start of the hole: still one RAM block above 1 MiB. */
	guest_mem_layout(&m, g_dummy, GUEST_MEM_MMIO_HOLE_START);
	CHECK(build(&in) == 0);
	CHECK(g_bp.e820_entries == 3);
	CHECK(e820_is(2, 0x100000, GUEST_MEM_MMIO_HOLE_START - 0x100000, E820_RAM));
	CHECK(e820_sane(GUEST_MEM_MMIO_HOLE_START));
}

static void e820_memory_above_hole(void)
{
	uint64_t ram = 5 * GiB;
	struct guest_mem m;
	struct vmp_error err = {0};
	int rc = guest_mem_init(&m, ram, &err);
	CHECK_MSG(rc == 0, "guest_mem_init: %s", err.msg);
	if (rc)
		return;
	struct boot_params_input in = input(&m);
	CHECK(build(&in) == 0);
	CHECK(g_bp.e820_entries == 4);
	CHECK(e820_is(0, 0, 0x9fc00, E820_RAM));
	CHECK(e820_is(1, 0x9fc00, 0x100000 - 0x9fc00, E820_RESERVED));
	CHECK(e820_is(2, 0x100000, GUEST_MEM_MMIO_HOLE_START - 0x100000, E820_RAM));
	CHECK(e820_is(3, GUEST_MEM_HIGH_START, ram - GUEST_MEM_MMIO_HOLE_START, E820_RAM));
	CHECK(e820_sane(ram));
	guest_mem_release(&m);

	/* One page past the hole start. */
	ram = GUEST_MEM_MMIO_HOLE_START + 4096;
	rc = guest_mem_init(&m, ram, &err);
	CHECK(rc == 0);
	if (rc)
		return;
	CHECK(build(&in) == 0);
	CHECK(g_bp.e820_entries == 4);
	CHECK(e820_is(3, GUEST_MEM_HIGH_START, 4096, E820_RAM));
	CHECK(e820_sane(ram));
	guest_mem_release(&m);
}

static void rejects_small_memory(void)
{
	static const uint64_t sizes[] = {0, 4096, 0x9fc00, 512 * 1024, MiB};
	struct guest_mem m;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		guest_mem_layout(&m, g_dummy, sizes[i]);
		struct boot_params_input in = input(&m);
		int rc = build(&in);
		CHECK_MSG(rc == -EINVAL, "%llu bytes: rc %d", (unsigned long long)sizes[i], rc);
		CHECK(g_err.code == -EINVAL && g_err.msg[0] != '\0');
	}
	/* No memory at all, or a table that does not start at 0. */
	struct boot_params_input in = input(NULL);
	CHECK(build(&in) == -EINVAL);
	memset(&m, 0, sizeof(m));
	in.mem = &m;
	CHECK(build(&in) == -EINVAL);
	guest_mem_layout(&m, g_dummy, 128 * MiB);
	m.region[0].gpa = 0x1000;
	CHECK(build(&in) == -EINVAL);
}

static void cmdline_length_limits(void)
{
	struct guest_mem m;
	guest_mem_layout(&m, g_dummy, 128 * MiB);
	struct boot_params_input in = input(&m);
	/* COMMAND_LINE_SIZE is 2048 including the NUL. */
	in.cmdline_size = 2048;
	CHECK(build(&in) == 0);
	CHECK(g_bp.hdr.cmdline_size == 2047);
	in.cmdline_size = 1; /* empty command line */
	CHECK(build(&in) == 0);
	CHECK(g_bp.hdr.cmdline_size == 0);

	static const uint32_t bad[] = {2049, 4096, 0x10000, UINT32_MAX};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		in.cmdline_size = bad[i];
		int rc = build(&in);
		CHECK_MSG(rc == -E2BIG, "size %u: rc %d", bad[i], rc);
		CHECK(g_err.msg[0] != '\0');
	}
	/* 0 bytes cannot even hold the NUL. */
	in.cmdline_size = 0;
	CHECK(build(&in) < 0);
	CHECK(g_err.msg[0] != '\0');
}

TEST_LIST(T(header_magic_and_cmdline), T(cmdline_and_initrd_addresses), T(e820_small_memory),
          T(e820_memory_above_hole), T(rejects_small_memory), T(cmdline_length_limits))
