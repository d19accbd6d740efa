/* The Linux x86 boot protocol's "zero page" (struct boot_params) for a
 * 64-bit entry: e820 map, command line, initrd. Pure: it fills a caller
 * buffer, so it is unit-tested without a VM. */
#ifndef VMP_X86_BOOT_PARAMS_H
#define VMP_X86_BOOT_PARAMS_H

#include <asm/bootparam.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "mem/guest_mem.h"

struct boot_params_input {
	const struct guest_mem *mem; /* RAM regions for the e820 map */
	uint64_t cmdline_gpa;
	uint32_t cmdline_size; /* bytes including the NUL */
	uint64_t initrd_gpa;   /* 0 when there is no initrd */
	uint32_t initrd_size;
	uint64_t setup_data_gpa; /* first struct setup_data, 0 if none */
};

/* Writes a SETUP_RNG_SEED setup_data entry holding len random bytes at
 * dst (a buffer of dst_len bytes in guest memory). The guest kernel
 * credits them to its entropy pool at once, so its CRNG is ready without
 * waiting for interrupt jitter, and every VM starts from its own seed. */
int boot_params_rng_seed(void *dst, size_t dst_len, const void *seed, uint32_t len,
                         struct vmp_error *err);

int boot_params_build(struct boot_params *bp, const struct boot_params_input *in,
                      struct vmp_error *err);

#endif
