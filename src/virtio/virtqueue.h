/* Split virtqueues (virtio 1.x, section 2.7): the device side.
 *
 * Every value the guest controls passes through here and is checked
 * before use: ring addresses and sizes, avail indices, descriptor
 * indices, chain lengths, buffer addresses and lengths. A guest that
 * breaks the rules gets a negative return and a message; the caller
 * stops that VM. */
#ifndef VMP_VIRTIO_VIRTQUEUE_H
#define VMP_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mem/guest_mem.h"
#include "util/error.h"

#define VIRTQ_MAX_SIZE 256

#define VIRTQ_DESC_F_NEXT          1
#define VIRTQ_DESC_F_WRITE         2
#define VIRTQ_DESC_F_INDIRECT      4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq {
	/* Set by the driver through the transport. */
	uint16_t size;
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Validated host views, set by virtq_start. */
	struct virtq_desc *desc;
	uint16_t *avail;         /* flags, idx, ring[size], used_event */
	uint16_t *used;          /* flags, idx, then elems; see virtq_used_ring */
	uint16_t last_avail;     /* next avail entry to consume */
	uint16_t used_idx;       /* our copy of used->idx */
	bool event_idx;          /* VIRTIO_RING_F_EVENT_IDX negotiated */
	uint16_t signalled_used; /* used_idx when the guest was last notified */
	bool signalled_valid;
};

/* How many chains one notify takes from q before the device yields
 * (VIRTIO_NOTIFY_MORE): one ring's worth. A guest can republish buffers
 * from another vCPU as fast as the device takes them; the vCPU serving
 * the device then checks for a stop or the deadline between batches. */
static inline unsigned virtq_batch(const struct virtq *q)
{
	return q->size ? q->size : 1;
}

/* A chain taken from the ring: its buffers, each already checked and
 * translated to a host pointer (the device-readable ones first), and
 * their totals. Devices reach the buffers through the functions below. */
struct virtq_chain {
	uint16_t head;
	unsigned nread, nwrite;
	struct iovec iov[VIRTQ_MAX_SIZE];
	uint64_t read_len, write_len; /* totals */
};

/* Validates the ring addresses for size and computes host views. */
int virtq_start(struct virtq *q, const struct guest_mem *mem, struct vmp_error *err);
void virtq_reset(struct virtq *q);

/* Takes the next available chain: 1 if one was taken, 0 if the ring is
 * empty, negative if the guest broke the rules. */
int virtq_pop(struct virtq *q, const struct guest_mem *mem, struct virtq_chain *c,
              struct vmp_error *err);

/* Returns a chain to the guest with len bytes written into it. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);

/* Whether the guest wants an interrupt for what was pushed since the last
 * one (honours VIRTQ_AVAIL_F_NO_INTERRUPT and used_event). */
bool virtq_needs_interrupt(struct virtq *q);

/* Copies up to len bytes from the chain's readable buffers starting at
 * byte offset off; returns bytes copied. */
uint64_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, uint64_t len);
/* Copies into the chain's writable buffers; returns bytes copied. */
uint64_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src,
                           uint64_t len);

/* The chain's device-readable buffers as host iovecs: *n of them, at
 * most VIRTQ_MAX_SIZE, pointing into guest memory. */
const struct iovec *virtq_chain_readable(const struct virtq_chain *c, unsigned *n);
/* Its device-writable buffers, likewise. */
const struct iovec *virtq_chain_writable(const struct virtq_chain *c, unsigned *n);

/* Sizes in bytes of the three ring parts for a queue of size n. */
uint64_t virtq_desc_bytes(uint16_t n);
uint64_t virtq_avail_bytes(uint16_t n);
uint64_t virtq_used_bytes(uint16_t n);

#endif
