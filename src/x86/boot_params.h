/* The Linux x86 boot protocol's "zero page" (struct boot_params) for a
 * 64-bit entry: e820 map, command line, initrd. Pure: it fills a caller
 * buffer, so it is unit-tested without a VM. */
#ifndef VMP_X86_BOOT_PARAMS_H
#define VMP_X86_BOOT_PARAMS_H

#include <asm/bootparam.h>
#include <stdint.h>

#include "util/error.h"
#include "vmm/guest_mem.h"

struct boot_params_input {
	const struct guest_mem *mem;  /* RAM regions for the e820 map */
	uint64_t cmdline_gpa;
	uint32_t cmdline_size;        /* bytes including the NUL */
	uint64_t initrd_gpa;          /* 0 when there is no initrd */
	uint32_t initrd_size;
};

int boot_params_build(struct boot_params *bp, const struct boot_params_input *in,
		      struct vmp_error *err);

#endif
