#include "x86/boot_params.h"

#include <asm/e820.h>
#include <errno.h>
#include <string.h>

#include "x86/layout.h"

#define BOOT_FLAG_MAGIC       0xaa55
#define HDRS_MAGIC            0x53726448 /* "HdrS" */
#define BOOT_PROTOCOL_VERSION 0x020f     /* 2.15, Linux 5.x+ */
#define LOADER_TYPE_UNDEFINED 0xff
#define KERNEL_ALIGNMENT      0x1000000

static int add_e820(struct boot_params *bp, uint64_t addr, uint64_t size, uint32_t type)
{
	if (bp->e820_entries >= E820_MAX_ENTRIES_ZEROPAGE)
		return -ENOSPC;
	struct boot_e820_entry *e = &bp->e820_table[bp->e820_entries++];
	e->addr = addr;
	e->size = size;
	e->type = type;
	return 0;
}

static int build_e820(struct boot_params *bp, const struct guest_mem *mem)
{
	const struct guest_region *low = &mem->region[0];
	int rc = 0;
	/* Conventional memory below the EBDA, then the legacy hole, then RAM
	 * from 1 MiB: what every PC-like firmware reports. */
	rc |= add_e820(bp, 0, LAYOUT_EBDA_START, E820_RAM);
	rc |=
	    add_e820(bp, LAYOUT_EBDA_START, LAYOUT_HIMEM_START - LAYOUT_EBDA_START, E820_RESERVED);
	rc |= add_e820(bp, LAYOUT_HIMEM_START, low->size - LAYOUT_HIMEM_START, E820_RAM);
	for (unsigned i = 1; i < mem->nregions; i++)
		rc |= add_e820(bp, mem->region[i].gpa, mem->region[i].size, E820_RAM);
	return rc;
}

#ifndef SETUP_RNG_SEED
#define SETUP_RNG_SEED 9
#endif

int boot_params_rng_seed(void *dst, size_t dst_len, const void *seed, uint32_t len,
                         struct vmp_error *err)
{
	struct setup_data sd = {.next = 0, .type = SETUP_RNG_SEED, .len = len};
	if (dst_len < sizeof(sd) || len > dst_len - sizeof(sd))
		return vmp_fail(err, -E2BIG, "RNG seed of %u bytes does not fit", len);
	memcpy(dst, &sd, sizeof(sd));
	memcpy((uint8_t *)dst + sizeof(sd), seed, len);
	return 0;
}

int boot_params_build(struct boot_params *bp, const struct boot_params_input *in,
                      struct vmp_error *err)
{
	memset(bp, 0, sizeof(*bp));
	if (!in->mem || in->mem->nregions == 0 || in->mem->region[0].gpa != 0 ||
	    in->mem->region[0].size <= LAYOUT_HIMEM_START)
		return vmp_fail(err, -EINVAL, "guest memory must start at 0 and extend past 1 MiB");
	if (in->cmdline_size == 0 || in->cmdline_size > LAYOUT_CMDLINE_MAX)
		return vmp_fail(err, -E2BIG, "kernel command line is %u bytes; at most %d fit",
		                in->cmdline_size, LAYOUT_CMDLINE_MAX - 1);

	struct setup_header *h = &bp->hdr;
	h->boot_flag = BOOT_FLAG_MAGIC;
	h->header = HDRS_MAGIC;
	h->version = BOOT_PROTOCOL_VERSION;
	h->type_of_loader = LOADER_TYPE_UNDEFINED;
	h->loadflags = LOADED_HIGH;
	h->kernel_alignment = KERNEL_ALIGNMENT;
	h->cmd_line_ptr = (uint32_t)in->cmdline_gpa;
	bp->ext_cmd_line_ptr = (uint32_t)(in->cmdline_gpa >> 32);
	h->cmdline_size = in->cmdline_size - 1;
	if (in->initrd_size) {
		h->ramdisk_image = (uint32_t)in->initrd_gpa;
		bp->ext_ramdisk_image = (uint32_t)(in->initrd_gpa >> 32);
		h->ramdisk_size = in->initrd_size;
	}
	h->setup_data = in->setup_data_gpa;
	if (build_e820(bp, in->mem))
		return vmp_fail(err, -ENOSPC, "too many e820 entries");
	return 0;
}
