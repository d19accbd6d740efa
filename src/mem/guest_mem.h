/* Guest physical memory: the host mappings behind guest RAM and the one
 * checked accessor through which every guest-controlled address passes. */
#ifndef VMP_MEM_GUEST_MEM_H
#define VMP_MEM_GUEST_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

/* RAM lives below the 32-bit MMIO hole and, for large guests, above 4 GiB. */
#define GUEST_MEM_MMIO_HOLE_START 0xc0000000ull
#define GUEST_MEM_HIGH_START      0x100000000ull
#define GUEST_MEM_MAX_REGIONS     2

struct guest_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

struct guest_mem {
	struct guest_region region[GUEST_MEM_MAX_REGIONS];
	unsigned nregions;
	uint64_t ram_size; /* total bytes of RAM */
	void *mapping;     /* one host mapping backing all regions */
	uint64_t mapping_size;
};

/* Maps ram_size bytes of zeroed anonymous memory and splits it into
 * regions around the MMIO hole. */
int guest_mem_init(struct guest_mem *m, uint64_t ram_size, struct vmp_error *err);
/* Maps ram_size bytes of the file fd from offset off: shared (a
 * snapshot's template VM writes its RAM into a memfd) or private
 * (copy-on-write: a clone reads the snapshot's pages and writes its own). */
int guest_mem_init_fd(struct guest_mem *m, uint64_t ram_size, int fd, uint64_t off, bool shared,
                      struct vmp_error *err);
void guest_mem_release(struct guest_mem *m);

/* Lays out regions for ram_size over an existing host buffer (used by
 * guest_mem_init and by unit tests). */
void guest_mem_layout(struct guest_mem *m, uint8_t *host, uint64_t ram_size);

/* The host address of [gpa, gpa+len) if the whole range lies inside one
 * RAM region, else NULL. Overflow-safe: gpa and len are guest-controlled. */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* End of the RAM region that starts at 0 (the low region). */
uint64_t guest_mem_low_end(const struct guest_mem *m);

#endif
