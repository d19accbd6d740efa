#include "virtio/virtqueue.h"

#include <errno.h>
#include <string.h>

#include "util/iov.h"

/* The avail ring is u16 flags, u16 idx, u16 ring[n], u16 used_event.
 * The used ring is u16 flags, u16 idx, {u32 id, u32 len}[n], u16 avail_event. */
uint64_t virtq_desc_bytes(uint16_t n)
{
	return 16ull * n;
}
uint64_t virtq_avail_bytes(uint16_t n)
{
	return 6ull + 2ull * n;
}
uint64_t virtq_used_bytes(uint16_t n)
{
	return 6ull + 8ull * n;
}

static bool aligned(uint64_t v, uint64_t a)
{
	return (v & (a - 1)) == 0;
}

int virtq_start(struct virtq *q, const struct guest_mem *mem, struct vmp_error *err)
{
	uint16_t n = q->size;
	if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)) != 0)
		return vmp_fail(err, -EINVAL, "virtqueue size %u is not a power of two <= %u", n,
		                VIRTQ_MAX_SIZE);
	if (!aligned(q->desc_gpa, 16) || !aligned(q->avail_gpa, 2) || !aligned(q->used_gpa, 4))
		return vmp_fail(err, -EINVAL, "virtqueue ring addresses are misaligned");
	q->desc = guest_mem_ptr(mem, q->desc_gpa, virtq_desc_bytes(n));
	q->avail = guest_mem_ptr(mem, q->avail_gpa, virtq_avail_bytes(n));
	q->used = guest_mem_ptr(mem, q->used_gpa, virtq_used_bytes(n));
	if (!q->desc || !q->avail || !q->used)
		return vmp_fail(err, -EFAULT, "virtqueue rings lie outside guest memory");
	q->last_avail = 0;
	q->used_idx = 0;
	q->signalled_valid = false;
	return 0;
}

void virtq_reset(struct virtq *q)
{
	memset(q, 0, sizeof(*q));
}

static uint16_t load_acquire16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static int add_buf(struct virtq_chain *c, const struct guest_mem *mem, uint64_t addr, uint32_t len,
                   bool writable, struct vmp_error *err)
{
	if (!writable && c->nwrite)
		return vmp_fail(err, -EINVAL,
		                "virtqueue chain has a readable buffer after a writable one");
	if (c->nread + c->nwrite >= VIRTQ_MAX_SIZE)
		return vmp_fail(err, -E2BIG, "virtqueue chain is too long");
	uint8_t *p = guest_mem_ptr(mem, addr, len);
	if (!p)
		return vmp_fail(err, -EFAULT,
		                "virtqueue buffer 0x%llx+%u lies outside guest memory",
		                (unsigned long long)addr, len);
	c->iov[c->nread + c->nwrite] = (struct iovec){.iov_base = p, .iov_len = len};
	if (writable) {
		c->nwrite++;
		c->write_len += len;
	} else {
		c->nread++;
		c->read_len += len;
	}
	return 0;
}

int virtq_pop(struct virtq *q, const struct guest_mem *mem, struct virtq_chain *c,
              struct vmp_error *err)
{
	if (!q->ready || !q->avail)
		return 0;
	/* Acquire: the ring entry and descriptors the driver wrote before
	 * publishing idx must be visible to the reads below. */
	uint16_t avail_idx = load_acquire16(&q->avail[1]);
	uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
	if (pending == 0)
		return 0;
	if (pending > q->size)
		return vmp_fail(err, -EINVAL, "virtqueue avail index jumped by %u (queue size %u)",
		                pending, q->size);
	uint16_t head = q->avail[2 + (q->last_avail & (q->size - 1))];
	if (head >= q->size)
		return vmp_fail(err, -EINVAL, "virtqueue head %u out of range", head);
	q->last_avail++;

	c->head = head;
	c->nread = c->nwrite = 0;
	c->read_len = c->write_len = 0;
	uint16_t i = head;
	/* A chain visits at most size descriptors: a longer walk is a loop. */
	for (unsigned steps = 0;; steps++) {
		if (steps >= q->size)
			return vmp_fail(err, -ELOOP, "virtqueue descriptor chain loops");
		struct virtq_desc d;
		memcpy(&d, &q->desc[i], sizeof(d)); /* one snapshot: the guest may race */
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return vmp_fail(err, -EINVAL,
			                "indirect descriptor used but not negotiated");
		int rc = add_buf(c, mem, d.addr, d.len, d.flags & VIRTQ_DESC_F_WRITE, err);
		if (rc)
			return rc;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= q->size)
			return vmp_fail(err, -EINVAL, "virtqueue descriptor next %u out of range",
			                d.next);
		i = d.next;
	}
	return 1;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	uint32_t *elem = (uint32_t *)(q->used + 2) + 2u * (q->used_idx & (q->size - 1));
	elem[0] = head;
	elem[1] = len;
	q->used_idx++;
	/* Release: the element must be visible before the new index. */
	__atomic_store_n(&q->used[1], q->used_idx, __ATOMIC_RELEASE);
}

bool virtq_needs_interrupt(struct virtq *q)
{
	/* Full fence: our used->idx store must be visible before we read the
	 * driver's suppression state, or both sides may wait (spec 2.7.10). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->event_idx)
		return !(__atomic_load_n(&q->avail[0], __ATOMIC_RELAXED) &
		         VIRTQ_AVAIL_F_NO_INTERRUPT);
	uint16_t used_event = __atomic_load_n(&q->avail[2 + q->size], __ATOMIC_RELAXED);
	uint16_t old = q->signalled_used, new_idx = q->used_idx;
	bool first = !q->signalled_valid;
	q->signalled_used = new_idx;
	q->signalled_valid = true;
	/* vring_need_event(): did we cross used_event since the last signal? */
	return first || (uint16_t)(new_idx - used_event - 1) < (uint16_t)(new_idx - old);
}

uint64_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, uint64_t len)
{
	unsigned n;
	const struct iovec *iov = virtq_chain_readable(c, &n);
	return iov_to_buf(iov, n, off, dst, len);
}

uint64_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, uint64_t len)
{
	unsigned n;
	const struct iovec *iov = virtq_chain_writable(c, &n);
	return iov_from_buf(iov, n, off, src, len);
}

/* Counts are clamped to the array: a chain filled in by virtq_pop never
 * needs it, one built by other code cannot make us read past the end. */
const struct iovec *virtq_chain_readable(const struct virtq_chain *c, unsigned *n)
{
	*n = c->nread < VIRTQ_MAX_SIZE ? c->nread : VIRTQ_MAX_SIZE;
	return c->iov;
}

const struct iovec *virtq_chain_writable(const struct virtq_chain *c, unsigned *n)
{
	unsigned first = c->nread < VIRTQ_MAX_SIZE ? c->nread : VIRTQ_MAX_SIZE;
	*n = c->nwrite < VIRTQ_MAX_SIZE - first ? c->nwrite : VIRTQ_MAX_SIZE - first;
	return c->iov + first;
}
