/* A fake guest for the device fuzz targets (fuzz_blk, fuzz_ports,
 * fuzz_mmio): guest memory, up to FZ_MAX_DEVS virtio-mmio transports in
 * it, a driver that sets them up the way Linux does
 * (tests/unit/mmio_driver.h), builds chains and kicks queues, the records
 * every target shares, and the checks around every call into a device.
 *
 * Guest memory (FZ_MEM_SIZE, calloc'd, behind guest_mem_layout):
 *   0x00000  rings: device d, queue q at FZ_RING(d, q): descriptors at +0,
 *            avail at +0x100, used at +0x200 (queue size FZ_QSIZE)
 *   0x10000  FZ_RAW_GPA: bytes RAW records copy in (64 KiB)
 *   0x20000  buffers of the chains the harness builds (to the end: 384 KiB)
 *
 * Every call that may make a device touch guest memory (an MMIO access,
 * virtio_mmio_continue, a host-side send) goes between fz_begin() and
 * fz_end(), which check, from a copy of guest memory taken before it:
 *   - per queue, the used index moved by as many chains as the device
 *     took from the avail ring (on an error, one chain less at most);
 *   - the chains it took, walked again in the copy: the used elements
 *     name their heads in order, with a length no larger than their
 *     writable bytes; a chain the rules forbid (loop, indirect, next out
 *     of range, buffer outside memory, readable after writable) is the
 *     last one taken, and the call failed;
 *   - no byte of guest memory changed outside the writable buffers of
 *     those chains and the used rings' index and elements;
 *   - what the device handed the host as guest data (fz_saw()) lies
 *     inside the readable buffers of chains it took;
 *   - a call that failed left a message and the transport in
 *     DEVICE_NEEDS_RESET.
 * When the guest laid rings and buffers over each other (the device's
 * own writes then change what it reads next), the walk cannot be trusted:
 * only the counts and the bounds of guest memory are checked.
 * After every record, fz_check_transports() checks each transport's state
 * as a guest could observe it (ready queues have sane sizes and rings in
 * guest memory, FEATURES_OK only with offered features, nothing pending
 * on a queue that does not exist).
 *
 * Records every target shares (fz_record; the target decodes its own
 * kinds first and passes the rest here):
 *   RAW     u8 dev; u8 queue (bit 7: the value written to QueueNotify as
 *           is); u8 ndesc (% 17) { u8 slot; u64 addr; u32 len; u16 flags;
 *           u16 next; }; u8 navail (% 9) u16 head[]; u16 skew; u16 dlen,
 *           dlen bytes copied to FZ_RAW_GPA; then a notify (FZ_NOTIFY).
 *   MMIO    u8 dev; u16 offset; u32 value; u8 mode: bit 0 write, bits
 *           1-2 width (4, 1, 2, 8 bytes).
 *   SETUP   u8 dev; u8 flags: bit 0 hostile queue, bit 1 size as is
 *           (else 1 << (size % 9)); then u8 queue; u16 size; u8 where[3] (descriptors, avail, used:
 * fz_hostile_gpa); u32 extra. The driver resets the device and sets it up again (the hostile queue
 * as told, which may fail). NOTIFY  u8 dev; u8 queue; u8 mode: bits 0-2 rounds of
 *           virtio_mmio_continue; bit 3 reset the device (status 0)
 *           after the notify; bit 4 set it up again after that; bit 5
 *           republish what was taken before continuing (another vCPU).
 */
#ifndef VMP_TESTS_FUZZ_GUEST_H
#define VMP_TESTS_FUZZ_GUEST_H

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fuzz_input.h"
#include "mem/guest_mem.h"
#include "unit/mmio_driver.h"
#include "virtio/mmio.h"
#include "virtio/virtqueue.h"

#define FZ_MEM_SIZE   (512u << 10)
#define FZ_MAX_DEVS   4
#define FZ_QSIZE      16u
#define FZ_RING(d, q) (0x4000ull * (d) + 0x400ull * (q))
#define FZ_RAW_GPA    0x10000ull
#define FZ_RAW_MAX    0x10000u
#define FZ_BUF_GPA    0x20000ull
#define FZ_MAX_SAW    1024
#define FZ_MAX_CHAINS 512 /* chains one call may take, all queues together */

enum { FZ_RAW = 0, FZ_MMIO, FZ_SETUP, FZ_NOTIFY, FZ_NKINDS };

struct fz_dev {
	struct virtio_mmio t;
	uint64_t features; /* what the driver accepts of the offered ones */
	/* The guest broke, or may have broken, the rules: an error from now
	 * on is the device doing its job, not a bug. setup() clears tainted,
	 * never sticky (for devices that remember a broken ring). */
	bool tainted, sticky;
	bool odd; /* a queue is set up elsewhere than FZ_RING (hostile SETUP) */
	/* A host-side call took a chain that broke the rules and did not
	 * return it: the next notify must stop the VM. */
	bool owes_stop;
	uint16_t next_desc[VIRTIO_MMIO_MAX_QUEUES];
};

struct fz_span {
	uint64_t gpa, len;
};

struct fz_queue_mark {
	bool ready;
	uint16_t size, last_avail, used_idx;
	uint64_t desc, avail, used;
};

static struct {
	uint8_t *ram, *shadow;
	struct guest_mem mem;
	struct fz_dev dev[FZ_MAX_DEVS];
	unsigned ndev;
	int efd;
	struct vmp_error err;
	uint64_t buf_next;
	/* Between fz_begin and fz_end. */
	struct fz_queue_mark mark[FZ_MAX_DEVS][VIRTIO_MMIO_MAX_QUEUES];
	struct {
		const uint8_t *p;
		size_t len;
	} saw[FZ_MAX_SAW];
	unsigned nsaw;
	bool saw_overflow;
	/* Filled by fz_end: the spans the device could write and read. */
	struct fz_span wspan[FZ_MAX_CHAINS * 4], rspan[FZ_MAX_CHAINS * 4];
	unsigned nw, nr;
} fz;

static inline void *fz_ptr(uint64_t gpa)
{
	return fz.ram + gpa;
}

static inline void fz_init(void)
{
	fz.ram = calloc(1, FZ_MEM_SIZE);
	fz.shadow = calloc(1, FZ_MEM_SIZE);
	must(fz.ram && fz.shadow, "calloc");
	guest_mem_layout(&fz.mem, fz.ram, FZ_MEM_SIZE);
	fz.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	must(fz.efd >= 0, "eventfd");
}

/* Starts an input: no devices, zeroed memory. */
static inline void fz_start(void)
{
	memset(fz.ram, 0, FZ_MEM_SIZE);
	fz.ndev = 0;
	fz.buf_next = FZ_BUF_GPA;
}

static inline struct fz_dev *fz_add(const struct virtio_device_ops *ops, void *dev)
{
	must(fz.ndev < FZ_MAX_DEVS, "too many devices");
	struct fz_dev *d = &fz.dev[fz.ndev];
	memset(d, 0, sizeof(*d));
	if (virtio_mmio_init(&d->t, 0xd0000000ull + 0x1000ull * fz.ndev, 5 + fz.ndev, fz.efd, ops,
	                     dev, &fz.mem))
		fail("virtio_mmio_init %s", ops->name);
	d->features = ops->features | VIRTIO_F_VERSION_1;
	fz.ndev++;
	return d;
}

/* Ends an input: the transports go, pending interrupts are drained. */
static inline void fz_finish(void)
{
	for (unsigned i = 0; i < fz.ndev; i++)
		virtio_mmio_destroy(&fz.dev[i].t);
	fz.ndev = 0;
	uint64_t v;
	while (read(fz.efd, &v, sizeof(v)) == sizeof(v))
		;
}

static inline struct fz_dev *fz_pick(uint8_t b)
{
	return &fz.dev[b % fz.ndev];
}

/* --- the checks ----------------------------------------------------- */

static inline bool fz_overlap(struct fz_span a, struct fz_span b)
{
	return a.len && b.len && a.gpa < b.gpa + b.len && b.gpa < a.gpa + a.len;
}

static inline bool fz_inside(const struct fz_span *s, unsigned n, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < n; i++)
		if (gpa >= s[i].gpa && len <= s[i].len && gpa - s[i].gpa <= s[i].len - len)
			return true;
	return false;
}

/* Called by a target's backend with guest bytes the device handed it. */
static inline void fz_saw(const void *p, size_t len)
{
	const uint8_t *b = p;
	if (len && (b < fz.ram || b > fz.ram + FZ_MEM_SIZE || len > FZ_MEM_SIZE ||
	            (size_t)(fz.ram + FZ_MEM_SIZE - b) < len))
		fail("the device handed the host %zu bytes at %p, outside guest memory", len, p);
	if (fz.nsaw == FZ_MAX_SAW) {
		fz.saw_overflow = true;
		return;
	}
	fz.saw[fz.nsaw].p = b;
	fz.saw[fz.nsaw].len = len;
	fz.nsaw++;
}

static inline void fz_begin(void)
{
	memcpy(fz.shadow, fz.ram, FZ_MEM_SIZE);
	for (unsigned d = 0; d < fz.ndev; d++)
		for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
			const struct virtq *v = &fz.dev[d].t.vq[q];
			fz.mark[d][q] = (struct fz_queue_mark){
			    .ready = v->ready,
			    .size = v->size,
			    .last_avail = v->last_avail,
			    .used_idx = v->used_idx,
			    .desc = v->desc_gpa,
			    .avail = v->avail_gpa,
			    .used = v->used_gpa,
			};
		}
	fz.nsaw = 0;
	fz.saw_overflow = false;
	vmp_error_clear(&fz.err);
}

/* fz_begin for a call from the host's side (a send, input), which may
 * find the guest's ring broken and keep that for the next notify: a
 * device that remembers it across resets is never clean again. End it
 * with fz_end(d, 0, false). */
static inline void fz_begin_host(struct fz_dev *d)
{
	if (d->tainted)
		d->sticky = true;
	fz_begin();
}

static inline uint16_t fz_shadow16(uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, fz.shadow + gpa, 2);
	return v;
}

/* Walks the chain at head in the copy taken by fz_begin, by the rules of
 * virtio 1.x 2.7.5 (no indirect descriptors: no device offers them).
 * Adds its buffers to the spans; returns its writable bytes, or -1 if a
 * driver may not publish it. */
static inline int64_t fz_walk(const struct fz_queue_mark *m, uint16_t head)
{
	int64_t wbytes = 0;
	bool writing = false;
	uint16_t i = head;
	for (unsigned n = 0; n < m->size; n++) {
		struct virtq_desc dsc;
		memcpy(&dsc, fz.shadow + m->desc + 16u * i, sizeof(dsc));
		if (dsc.flags & VIRTQ_DESC_F_INDIRECT)
			return -1;
		if (dsc.addr > FZ_MEM_SIZE || dsc.len > FZ_MEM_SIZE - dsc.addr)
			return -1;
		bool w = dsc.flags & VIRTQ_DESC_F_WRITE;
		if (!w && writing)
			return -1;
		writing = w;
		struct fz_span s = {dsc.addr, dsc.len};
		if (w) {
			if (fz.nw < sizeof(fz.wspan) / sizeof(fz.wspan[0]))
				fz.wspan[fz.nw++] = s;
			wbytes += dsc.len;
		} else if (fz.nr < sizeof(fz.rspan) / sizeof(fz.rspan[0])) {
			fz.rspan[fz.nr++] = s;
		}
		if (!(dsc.flags & VIRTQ_DESC_F_NEXT))
			return wbytes;
		if (dsc.next >= m->size)
			return -1;
		i = dsc.next;
	}
	return -1; /* a loop, or longer than the ring */
}

static inline struct fz_span fz_used_window(const struct fz_queue_mark *m)
{
	return (struct fz_span){m->used + 2, 2 + 8ull * m->size};
}

/* Whether the device's writes (used rings, writable buffers) may have
 * changed the rings it reads, or one used ring another's. */
static inline bool fz_tangled(void)
{
	for (unsigned d = 0; d < fz.ndev; d++)
		for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
			const struct fz_queue_mark *m = &fz.mark[d][q];
			if (!m->ready)
				continue;
			struct fz_span ring[2] = {{m->desc, 16ull * m->size},
			                          {m->avail, 6 + 2ull * m->size}};
			for (unsigned e = 0; e < fz.ndev; e++)
				for (unsigned r = 0; r < VIRTIO_MMIO_MAX_QUEUES; r++) {
					const struct fz_queue_mark *o = &fz.mark[e][r];
					if (!o->ready)
						continue;
					struct fz_span u = fz_used_window(o);
					if (fz_overlap(u, ring[0]) || fz_overlap(u, ring[1]))
						return true;
					if ((e != d || r != q) && fz_overlap(u, fz_used_window(m)))
						return true;
				}
			for (unsigned k = 0; k < fz.nw; k++)
				if (fz_overlap(fz.wspan[k], ring[0]) ||
				    fz_overlap(fz.wspan[k], ring[1]) ||
				    fz_overlap(fz.wspan[k], fz_used_window(m)))
					return true;
		}
	return false;
}

/* The used element k of a queue, as the device wrote it. */
static inline void fz_used_elem(const struct fz_queue_mark *m, uint16_t k, uint32_t *id,
                                uint32_t *len)
{
	const uint8_t *e = fz.ram + m->used + 4 + 8u * (k & (m->size - 1));
	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
}

/* d: the device called; rc: what the call returned; known: whether the
 * call reports an error itself (virtio_ports_send, for one, keeps a
 * broken ring for the next notify). */
static inline void fz_end(const struct fz_dev *d, int rc, bool known)
{
	static struct {
		const struct fz_queue_mark *m;
		uint16_t taken, pushed;
		int64_t wbytes[VIRTQ_MAX_SIZE];
		uint16_t head[VIRTQ_MAX_SIZE];
	} q_taken[FZ_MAX_DEVS * VIRTIO_MMIO_MAX_QUEUES];
	unsigned nq = 0;
	fz.nw = fz.nr = 0;
	if (rc < 0 && known && !(d->t.status & S_NEEDS_RESET))
		fail("%s: a call failed (%d: %s), the transport does not need a reset",
		     d->t.ops->name, rc, fz.err.msg);
	if (rc < 0 && known && !fz.err.msg[0])
		fail("%s: a call failed (%d) without a message", d->t.ops->name, rc);
	for (unsigned e = 0; e < fz.ndev; e++) {
		const struct virtio_mmio *t = &fz.dev[e].t;
		for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
			const struct fz_queue_mark *m = &fz.mark[e][q];
			const struct virtq *v = &t->vq[q];
			if (!m->ready || !v->ready || v->size != m->size || v->desc_gpa != m->desc)
				continue; /* reset or set up anew by the call */
			uint16_t taken = (uint16_t)(v->last_avail - m->last_avail);
			uint16_t pushed = (uint16_t)(v->used_idx - m->used_idx);
			if (pushed > taken)
				fail("%s queue %u: %u chains used, %u taken", t->ops->name, q,
				     pushed, taken);
			if (taken - pushed > 1 || (taken != pushed && rc >= 0 && known))
				fail("%s queue %u: %u chains taken, %u used (call returned %d)",
				     t->ops->name, q, taken, pushed, rc);
			if (taken != pushed && !known)
				fz.dev[e].owes_stop = true;
			if (!taken)
				continue;
			if (taken > m->size)
				fail("%s queue %u: %u chains in one call, queue size %u",
				     t->ops->name, q, taken, m->size);
			q_taken[nq].m = m;
			q_taken[nq].taken = taken;
			q_taken[nq].pushed = pushed;
			for (uint16_t k = 0; k < taken; k++) {
				uint16_t idx = (uint16_t)(m->last_avail + k);
				uint16_t head =
				    fz_shadow16(m->avail + 4 + 2u * (idx & (m->size - 1)));
				q_taken[nq].head[k] = head;
				q_taken[nq].wbytes[k] = head < m->size ? fz_walk(m, head) : -1;
			}
			nq++;
		}
	}
	bool tangled = fz_tangled();
	if (!tangled) {
		for (unsigned i = 0; i < nq; i++) {
			const struct fz_queue_mark *m = q_taken[i].m;
			for (uint16_t k = 0; k < q_taken[i].taken; k++) {
				int64_t wb = q_taken[i].wbytes[k];
				if (wb < 0 && k + 1 != q_taken[i].taken)
					fail("a chain that breaks the rules was taken and used");
				if (wb < 0 && (rc >= 0 && known))
					fail("a chain that breaks the rules was taken, no error");
				if (k >= q_taken[i].pushed)
					continue;
				uint32_t id, len;
				fz_used_elem(m, (uint16_t)(m->used_idx + k), &id, &len);
				if (id != q_taken[i].head[k])
					fail("used element %u names %u, the chain taken was %u", k,
					     id, q_taken[i].head[k]);
				if (len > wb)
					fail("used length %u of chain %u, which has %lld writable "
					     "bytes",
					     len, id, (long long)wb);
			}
		}
		/* What changed in guest memory. */
		for (unsigned d = 0; d < fz.ndev; d++)
			for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
				if (fz.mark[d][q].ready &&
				    fz.nw < sizeof(fz.wspan) / sizeof(fz.wspan[0]))
					fz.wspan[fz.nw++] = fz_used_window(&fz.mark[d][q]);
		for (uint64_t a = 0; a < FZ_MEM_SIZE; a += 64) {
			if (!memcmp(fz.ram + a, fz.shadow + a, 64))
				continue;
			for (uint64_t b = a; b < a + 64; b++)
				if (fz.ram[b] != fz.shadow[b] && !fz_inside(fz.wspan, fz.nw, b, 1))
					fail(
					    "the device wrote guest byte 0x%llx (0x%02x -> 0x%02x) "
					    "outside the writable buffers it was given",
					    (unsigned long long)b, fz.shadow[b], fz.ram[b]);
		}
		for (unsigned i = 0; i < fz.nsaw; i++) {
			uint64_t gpa = (uint64_t)(fz.saw[i].p - fz.ram);
			if (!fz_inside(fz.rspan, fz.nr, gpa, fz.saw[i].len))
				fail("the device handed the host %zu bytes at 0x%llx, not a "
				     "readable buffer of a chain it took",
				     fz.saw[i].len, (unsigned long long)gpa);
		}
	}
}

/* What a guest can see of a transport, after every record. */
static inline void fz_check_transports(void)
{
	for (unsigned d = 0; d < fz.ndev; d++) {
		const struct virtio_mmio *t = &fz.dev[d].t;
		const struct virtio_device_ops *ops = t->ops;
		uint64_t offered = ops->features | VIRTIO_F_VERSION_1;
		if ((t->status & S_FEATURES_OK) &&
		    ((t->driver_features & ~offered) || !(t->driver_features & VIRTIO_F_VERSION_1)))
			fail("%s: FEATURES_OK with features %#llx (offered %#llx)", ops->name,
			     (unsigned long long)t->driver_features, (unsigned long long)offered);
		if (t->pending >> ops->num_queues)
			fail("%s: pending %#x with %u queues", ops->name, t->pending,
			     ops->num_queues);
		for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
			const struct virtq *v = &t->vq[q];
			if (!v->ready)
				continue;
			if (q >= ops->num_queues)
				fail("%s: queue %u of %u ready", ops->name, q, ops->num_queues);
			uint16_t n = v->size;
			if (!n || n > ops->queue_max || (n & (n - 1)))
				fail("%s: queue %u ready with size %u", ops->name, q, n);
			struct {
				uint64_t gpa, len;
				const void *host;
				unsigned align;
			} r[3] = {{v->desc_gpa, virtq_desc_bytes(n), v->desc, 16},
			          {v->avail_gpa, virtq_avail_bytes(n), v->avail, 2},
			          {v->used_gpa, virtq_used_bytes(n), v->used, 4}};
			for (unsigned k = 0; k < 3; k++)
				if (r[k].gpa > FZ_MEM_SIZE || r[k].len > FZ_MEM_SIZE - r[k].gpa ||
				    r[k].gpa % r[k].align || r[k].host != fz.ram + r[k].gpa)
					fail("%s: queue %u ready with ring %u at %#llx", ops->name,
					     q, k, (unsigned long long)r[k].gpa);
		}
	}
}

/* --- the driver ----------------------------------------------------- */

static inline int fz_access(struct fz_dev *d, uint64_t off, uint8_t *b, uint32_t len, bool write)
{
	return virtio_mmio_access(&d->t, off, b, len, write, &fz.err);
}

/* A register write as a device call, checked. */
static inline int fz_write(struct fz_dev *d, uint64_t off, uint32_t v)
{
	uint8_t b[4];
	memcpy(b, &v, 4);
	bool owed = d->owes_stop && off == R_QUEUE_NOTIFY && v < d->t.ops->num_queues &&
	            d->t.vq[v].ready && (d->t.status & S_DRIVER_OK);
	fz_begin();
	int rc = fz_access(d, off, b, 4, true);
	fz_end(d, rc, true);
	if (owed && rc >= 0)
		fail("%s: a host-side call found a broken ring, the next notify did not stop "
		     "the VM",
		     d->t.ops->name);
	return rc;
}

/* Resets the device and sets it up as Linux would: every queue of size
 * FZ_QSIZE at FZ_RING, then DRIVER_OK. If hostile_q is a queue, it gets
 * size and rings as given instead; if enabling it fails, the driver stops
 * there (the VM would be stopped). */
static inline void fz_setup_with(struct fz_dev *d, int hostile_q, uint16_t size,
                                 const uint64_t gpa[3])
{
	unsigned idx = (unsigned)(d - fz.dev);
	mmio_driver_attach(&d->t, &fz.err);
	vmp_error_clear(&fz.err);
	if (!negotiate(d->features))
		fail("%s: FEATURES_OK refused", d->t.ops->name);
	d->tainted = d->odd = hostile_q >= 0;
	d->owes_stop = false;
	for (unsigned q = 0; q < d->t.ops->num_queues; q++) {
		uint64_t base = FZ_RING(idx, q);
		d->next_desc[q] = 0;
		if ((int)q == hostile_q) {
			fz_begin();
			int rc = setup_queue_at(q, size, gpa[0], gpa[1], gpa[2]);
			fz_end(d, rc, true);
			if (rc)
				return;
			continue;
		}
		memset(fz_ptr(base), 0, 0x400);
		if (setup_queue_at(q, FZ_QSIZE, base, base + 0x100, base + 0x200))
			fail("%s: queue %u setup: %s", d->t.ops->name, q, fz.err.msg);
	}
	if (wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK))
		fail("%s: DRIVER_OK: %s", d->t.ops->name, fz.err.msg);
}

static inline void fz_setup(struct fz_dev *d)
{
	fz_setup_with(d, -1, 0, NULL);
}

static inline void fz_reset(struct fz_dev *d)
{
	mmio_driver_attach(&d->t, &fz.err);
	if (wr(R_STATUS, 0))
		fail("%s: reset failed", d->t.ops->name);
	const struct virtio_mmio *t = &d->t;
	if (t->status || t->pending || t->driver_features)
		fail("%s: a reset left status %#x, pending %#x", t->ops->name, t->status,
		     t->pending);
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		if (t->vq[q].ready)
			fail("%s: queue %u ready after a reset", t->ops->name, q);
}

/* Room for len bytes of buffers (wrapping around: a driver reuses its
 * memory; the checks only look at what a call changed). */
static inline uint64_t fz_alloc(uint64_t len)
{
	if (fz.buf_next + len > FZ_MEM_SIZE)
		fz.buf_next = FZ_BUF_GPA;
	uint64_t a = fz.buf_next;
	fz.buf_next += (len + 15u) & ~15ull;
	return a;
}

struct fz_buf {
	uint32_t len;
	bool writable;
	const uint8_t *data; /* readable: its content (NULL: a pattern) */
	uint64_t gpa;        /* set by fz_chain: where it went */
};

/* Lays out a chain of buffers on queue q (descriptors from the driver's
 * next free slot on), publishes it and returns its head, or -1 if the
 * queue is not ready. */
static inline int fz_chain(struct fz_dev *d, unsigned q, struct fz_buf *b, unsigned n)
{
	const struct virtq *v = &d->t.vq[q];
	if (q >= d->t.ops->num_queues || !v->ready || !n || n > v->size)
		return -1;
	uint16_t idx;
	memcpy(&idx, fz_ptr(v->avail_gpa + 2), 2);
	if ((uint16_t)(idx - v->last_avail) >= v->size)
		return -1; /* a driver never has more out than the ring holds */
	uint16_t size = v->size, head = d->next_desc[q] % size, slot = head;
	/* The chain's buffers in one piece of memory, apart from each other,
	 * cut to fit when they are larger than all of it. */
	uint64_t total = 0, room = FZ_MEM_SIZE - FZ_BUF_GPA;
	for (unsigned i = 0; i < n; i++) {
		uint64_t want = (b[i].len + 15u) & ~15ull;
		if (want > room - total)
			b[i].len = (uint32_t)(want = room - total);
		total += want;
	}
	uint64_t a = fz_alloc(total);
	for (unsigned i = 0; i < n; i++) {
		uint32_t len = b[i].len;
		b[i].gpa = a;
		if (b[i].writable)
			memset(fz_ptr(a), 0xee, len);
		else if (b[i].data)
			memcpy(fz_ptr(a), b[i].data, len);
		else
			for (uint32_t k = 0; k < len; k++)
				fz.ram[a + k] = (uint8_t)(k * 13 + 7);
		uint16_t next = (uint16_t)((slot + 1) % size);
		struct virtq_desc dsc = {
		    .addr = a,
		    .len = len,
		    .flags = (uint16_t)((b[i].writable ? VIRTQ_DESC_F_WRITE : 0) |
		                        (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
		    .next = next,
		};
		memcpy(fz_ptr(v->desc_gpa + 16u * slot), &dsc, sizeof(dsc));
		slot = next;
		a += (len + 15u) & ~15ull;
	}
	d->next_desc[q] = slot;
	memcpy(fz_ptr(v->avail_gpa + 4 + 2u * (idx & (size - 1))), &head, 2);
	idx++;
	__atomic_store_n((uint16_t *)fz_ptr(v->avail_gpa + 2), idx, __ATOMIC_RELEASE);
	return head;
}

/* Notifies queue value v, then serves what the device left pending for
 * up to rounds more batches (virtio_mmio_continue, as the vCPU does).
 * Returns the first error. */
static inline int fz_kick(struct fz_dev *d, uint32_t v, unsigned rounds)
{
	int rc = fz_write(d, R_QUEUE_NOTIFY, v);
	for (unsigned r = 0; !rc && r < rounds && virtio_mmio_pending(&d->t); r++) {
		fz_begin();
		rc = virtio_mmio_continue(&d->t, &fz.err);
		fz_end(d, rc, true);
	}
	if (rc < 0 && !d->tainted && !d->sticky)
		fail("%s: the guest followed the rules, the device failed: %s", d->t.ops->name,
		     fz.err.msg);
	if (rc < 0)
		fz_setup(d); /* the VM would stop: a new one starts from a reset device */
	return rc;
}

/* A well-formed chain on queue q, notified. Returns the used length, or
 * FZ_UNUSED if the device did not complete it, FZ_STOPPED if it failed
 * (the VM would stop; the device is set up again), FZ_UNPUBLISHED if the
 * chain could not be published (the queue is not ready, or full). */
#define FZ_UNUSED      (-1)
#define FZ_UNPUBLISHED (-2)
#define FZ_STOPPED     (-3)
static inline int64_t fz_submit(struct fz_dev *d, unsigned q, struct fz_buf *b, unsigned n)
{
	int head = fz_chain(d, q, b, n);
	if (head < 0)
		return FZ_UNPUBLISHED;
	const struct virtq *v = &d->t.vq[q];
	uint16_t used = v->used_idx;
	if (fz_kick(d, q, 4) < 0)
		return FZ_STOPPED;
	if (v->used_idx == used)
		return FZ_UNUSED;
	uint32_t id, len;
	fz_used_elem(&(struct fz_queue_mark){.used = v->used_gpa, .size = v->size}, used, &id,
	             &len);
	return id == (uint32_t)head ? (int64_t)len : FZ_UNUSED;
}

/* --- the shared records --------------------------------------------- */

/* After a record that may have broken the rules: if the transport is as
 * fz_setup left it and no chain is waiting in any ring, what the guest
 * did left nothing behind and the device counts as clean again. */
static inline void fz_settle(struct fz_dev *d)
{
	const struct virtio_mmio *t = &d->t;
	unsigned idx = (unsigned)(d - fz.dev);
	if (d->odd || t->status != (S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK))
		return;
	for (unsigned q = 0; q < t->ops->num_queues; q++) {
		const struct virtq *v = &t->vq[q];
		uint16_t avail;
		if (!v->ready || v->size != FZ_QSIZE || v->desc_gpa != FZ_RING(idx, q) ||
		    v->avail_gpa != FZ_RING(idx, q) + 0x100 ||
		    v->used_gpa != FZ_RING(idx, q) + 0x200)
			return;
		memcpy(&avail, fz_ptr(v->avail_gpa + 2), 2);
		if (avail != v->last_avail)
			return;
	}
	d->tainted = false;
}

static inline void fz_rec_raw(struct input *in)
{
	struct fz_dev *d = fz_pick(get8(in));
	uint8_t nv = get8(in);
	uint32_t v = (nv & 0x80) ? nv : nv % d->t.ops->num_queues;
	const struct virtq *vq = &d->t.vq[v % VIRTIO_MMIO_MAX_QUEUES];
	bool ok = vq->ready && vq->size;
	unsigned nd = get8(in) % 17u;
	for (unsigned i = 0; i < nd; i++) {
		uint8_t slot = get8(in);
		struct virtq_desc dsc;
		dsc.addr = get64(in);
		dsc.len = get32(in);
		dsc.flags = get16(in);
		dsc.next = get16(in);
		if (ok)
			memcpy(fz_ptr(vq->desc_gpa + 16u * (slot % vq->size)), &dsc, sizeof(dsc));
	}
	unsigned na = get8(in) % 9u;
	uint16_t idx = 0;
	if (ok)
		memcpy(&idx, fz_ptr(vq->avail_gpa + 2), 2);
	for (unsigned i = 0; i < na; i++) {
		uint16_t h = get16(in);
		if (ok)
			memcpy(fz_ptr(vq->avail_gpa + 4 + 2u * ((idx + i) % vq->size)), &h, 2);
	}
	uint16_t skew = get16(in);
	size_t dlen = get16(in);
	const uint8_t *p = take(in, &dlen);
	memcpy(fz_ptr(FZ_RAW_GPA), p, dlen);
	if (ok) {
		idx = (uint16_t)(idx + na + skew);
		__atomic_store_n((uint16_t *)fz_ptr(vq->avail_gpa + 2), idx, __ATOMIC_RELEASE);
	}
	d->tainted = true;
	fz_kick(d, v, 2);
	fz_settle(d);
}

static inline void fz_rec_mmio(struct input *in)
{
	static const uint32_t widths[4] = {4, 1, 2, 8};
	struct fz_dev *d = fz_pick(get8(in));
	uint16_t off = get16(in);
	uint32_t val = get32(in);
	uint8_t mode = get8(in);
	uint8_t b[8] = {0};
	memcpy(b, &val, 4);
	d->tainted = true;
	fz_begin();
	int rc = fz_access(d, off, b, widths[(mode >> 1) & 3], mode & 1);
	fz_end(d, rc, true);
	if (rc < 0)
		fz_setup(d);
	fz_settle(d);
}

/* A ring address a hostile driver might give: from the standard place
 * to just past the end of memory, misaligned or on top of other rings. */
static inline uint64_t fz_hostile_gpa(uint8_t where, uint32_t extra, uint64_t standard)
{
	switch (where % 10) {
	case 0: return standard;
	case 1: return standard + (extra & 0xf); /* misaligned, likely */
	case 2: return FZ_MEM_SIZE - (extra & 0xfff);
	case 3: return FZ_MEM_SIZE + (extra & 0xfff);
	case 4: return FZ_RING(0, 0) + (extra & 0x3fff); /* over other rings */
	case 5: return FZ_RAW_GPA + (extra & 0xfff0);
	case 6: return (uint64_t)extra << 32 | (standard & 0xffffffffu);
	case 7: return ~0ull - (extra & 0xff);
	case 8: return GUEST_MEM_MMIO_HOLE_START + extra;
	default: return extra;
	}
}

static inline void fz_rec_setup(struct input *in)
{
	struct fz_dev *d = fz_pick(get8(in));
	uint8_t flags = get8(in);
	unsigned q = get8(in) % d->t.ops->num_queues;
	uint16_t size = get16(in);
	uint8_t where[3] = {get8(in), get8(in), get8(in)};
	uint32_t extra = get32(in);
	if (!(flags & 2))
		size = (uint16_t)(1u << (size % 9));
	if (!(flags & 1)) {
		fz_setup(d);
		return;
	}
	uint64_t base = FZ_RING((unsigned)(d - fz.dev), q);
	uint64_t std[3] = {base, base + 0x100, base + 0x200};
	uint64_t gpa[3];
	for (unsigned k = 0; k < 3; k++)
		gpa[k] = fz_hostile_gpa(where[k], extra >> (k * 3), std[k]);
	fz_setup_with(d, (int)q, size, gpa);
}

static inline void fz_rec_notify(struct input *in)
{
	struct fz_dev *d = fz_pick(get8(in));
	uint32_t q = get8(in) % d->t.ops->num_queues;
	uint8_t mode = get8(in);
	const struct virtq *v = &d->t.vq[q];
	uint16_t from = v->last_avail;
	int rc = fz_write(d, R_QUEUE_NOTIFY, q);
	if (rc < 0) {
		if (!d->tainted && !d->sticky)
			fail("%s: a notify failed: %s", d->t.ops->name, fz.err.msg);
		fz_setup(d);
		return;
	}
	if (mode & 8) {
		/* Reset with a batch still pending: nothing may be left. */
		fz_reset(d);
		fz_begin();
		rc = virtio_mmio_continue(&d->t, &fz.err);
		if (rc)
			fail("%s: continue after a reset: %d", d->t.ops->name, rc);
		fz_end(d, rc, true);
		if (memcmp(fz.ram, fz.shadow, FZ_MEM_SIZE))
			fail("%s: continue after a reset wrote guest memory", d->t.ops->name);
		if (mode & 16)
			fz_setup(d);
		return;
	}
	if ((mode & 32) && v->ready && v->size) {
		/* Another vCPU republishes what was taken. */
		uint16_t idx;
		memcpy(&idx, fz_ptr(v->avail_gpa + 2), 2);
		for (uint16_t k = from;
		     k != v->last_avail && (uint16_t)(idx - v->last_avail) < v->size; k++) {
			uint16_t h;
			memcpy(&h, fz_ptr(v->avail_gpa + 4 + 2u * (k & (v->size - 1))), 2);
			memcpy(fz_ptr(v->avail_gpa + 4 + 2u * (idx++ & (v->size - 1))), &h, 2);
		}
		__atomic_store_n((uint16_t *)fz_ptr(v->avail_gpa + 2), idx, __ATOMIC_RELEASE);
	}
	for (unsigned r = 0; !rc && r < (mode & 7u) && virtio_mmio_pending(&d->t); r++) {
		fz_begin();
		rc = virtio_mmio_continue(&d->t, &fz.err);
		fz_end(d, rc, true);
	}
	if (rc < 0) {
		if (!d->tainted && !d->sticky)
			fail("%s: a continue failed: %s", d->t.ops->name, fz.err.msg);
		fz_setup(d);
	}
}

/* Runs one shared record of kind k (0 .. FZ_NKINDS-1). */
static inline void fz_record(unsigned k, struct input *in)
{
	switch (k) {
	case FZ_RAW: fz_rec_raw(in); break;
	case FZ_MMIO: fz_rec_mmio(in); break;
	case FZ_SETUP: fz_rec_setup(in); break;
	default: fz_rec_notify(in); break;
	}
	fz_check_transports();
}

#endif
