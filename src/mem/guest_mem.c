#include "mem/guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

void guest_mem_layout(struct guest_mem *m, uint8_t *host, uint64_t ram_size)
{
	uint64_t low = ram_size < GUEST_MEM_MMIO_HOLE_START ? ram_size : GUEST_MEM_MMIO_HOLE_START;
	m->nregions = 1;
	m->region[0] = (struct guest_region){.gpa = 0, .size = low, .host = host};
	if (ram_size > low) {
		m->region[1] = (struct guest_region){
		    .gpa = GUEST_MEM_HIGH_START,
		    .size = ram_size - low,
		    .host = host + low,
		};
		m->nregions = 2;
	}
	m->ram_size = ram_size;
}

static int map_guest(struct guest_mem *m, uint64_t ram_size, int flags, int fd, uint64_t off,
                     struct vmp_error *err)
{
	memset(m, 0, sizeof(*m));
	void *p =
	    mmap(NULL, ram_size, PROT_READ | PROT_WRITE, flags | MAP_NORESERVE, fd, (off_t)off);
	if (p == MAP_FAILED)
		return vmp_fail_errno(err, -errno, "cannot map %llu MiB of guest memory",
		                      (unsigned long long)(ram_size >> 20));
	/* Guest RAM is the guest's: a fork of the host process (the caller
	 * starting a helper) must not copy it, and a core dump of the host
	 * must not carry it (secrets of the guest, and gigabytes). */
	if (madvise(p, ram_size, MADV_DONTFORK) < 0 || madvise(p, ram_size, MADV_DONTDUMP) < 0) {
		int e = -errno;
		munmap(p, ram_size);
		return vmp_fail_errno(err, e, "cannot keep guest memory out of forks and core dumps");
	}
	m->mapping = p;
	m->mapping_size = ram_size;
	guest_mem_layout(m, p, ram_size);
	return 0;
}

int guest_mem_init(struct guest_mem *m, uint64_t ram_size, struct vmp_error *err)
{
	return map_guest(m, ram_size, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, err);
}

int guest_mem_init_fd(struct guest_mem *m, uint64_t ram_size, int fd, uint64_t off, bool shared,
                      struct vmp_error *err)
{
	return map_guest(m, ram_size, shared ? MAP_SHARED : MAP_PRIVATE, fd, off, err);
}

void guest_mem_release(struct guest_mem *m)
{
	if (m->mapping)
		munmap(m->mapping, m->mapping_size);
	memset(m, 0, sizeof(*m));
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct guest_region *r = &m->region[i];
		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		/* off <= size and len <= size - off, without overflow */
		if (off > r->size || len > r->size - off)
			continue;
		return r->host + off;
	}
	return NULL;
}

uint64_t guest_mem_low_end(const struct guest_mem *m)
{
	return m->nregions ? m->region[0].size : 0;
}
