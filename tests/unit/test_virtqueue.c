/* Split virtqueue, device side. The test plays the driver: it lays out
 * the descriptor table, avail and used rings in a fake guest memory
 * (a calloc'd buffer behind guest_mem_layout), publishes chains and checks
 * what virtq_pop/push/chain_read/chain_write/needs_interrupt do, with
 * particular attention to guests that break the rules. */
#include <errno.h>
#include <stdint.h>

#include "harness.h"
#include "virtio/virtqueue.h"
#include "mem/guest_mem.h"

#define MEM_SIZE  (4u << 20)
#define DESC_GPA  0x1000ull
#define AVAIL_GPA 0x3000ull
#define USED_GPA  0x4000ull
#define DATA_GPA  0x10000ull

static uint8_t *g_buf;
static struct guest_mem g_mem;
static struct virtq g_q;
static struct virtq_chain g_c;
static struct vmp_error g_err;

/* --- the driver side ------------------------------------------------- */

static void *gp(uint64_t gpa)
{
	return g_buf + gpa;
}

static void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct virtq_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
	memcpy(gp(DESC_GPA + 16ull * i), &d, sizeof(d));
}

static uint16_t rd16(uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, gp(gpa), 2);
	return v;
}
static void wr16(uint64_t gpa, uint16_t v)
{
	memcpy(gp(gpa), &v, 2);
}
static uint32_t rd32(uint64_t gpa)
{
	uint32_t v;
	memcpy(&v, gp(gpa), 4);
	return v;
}

static uint16_t avail_idx(void)
{
	return rd16(AVAIL_GPA + 2);
}
static void set_avail_idx(uint16_t v)
{
	wr16(AVAIL_GPA + 2, v);
}
static void set_avail_flags(uint16_t v)
{
	wr16(AVAIL_GPA, v);
}
static void set_used_event(uint16_t size, uint16_t v)
{
	wr16(AVAIL_GPA + 4 + 2ull * size, v);
}

/* Publishes head in the next avail slot and bumps idx. */
static void avail_add(uint16_t size, uint16_t head)
{
	uint16_t idx = avail_idx();
	wr16(AVAIL_GPA + 4 + 2ull * (idx & (size - 1)), head);
	set_avail_idx((uint16_t)(idx + 1));
}

static uint16_t used_idx(void)
{
	return rd16(USED_GPA + 2);
}
static uint32_t used_id(unsigned slot)
{
	return rd32(USED_GPA + 4 + 8ull * slot);
}
static uint32_t used_len(unsigned slot)
{
	return rd32(USED_GPA + 8 + 8ull * slot);
}

/* Fresh zeroed memory and an unstarted queue of the given size. */
static int setup(uint16_t size)
{
	free(g_buf);
	g_buf = calloc(1, MEM_SIZE);
	if (!g_buf)
		return -1;
	guest_mem_layout(&g_mem, g_buf, MEM_SIZE);
	virtq_reset(&g_q);
	g_q.size = size;
	g_q.desc_gpa = DESC_GPA;
	g_q.avail_gpa = AVAIL_GPA;
	g_q.used_gpa = USED_GPA;
	memset(&g_c, 0, sizeof(g_c));
	vmp_error_clear(&g_err);
	return 0;
}

/* As the transport does on QueueReady: start, then mark ready. */
static int setup_started(uint16_t size)
{
	if (setup(size))
		return -1;
	int rc = virtq_start(&g_q, &g_mem, &g_err);
	if (rc)
		return rc;
	g_q.ready = true;
	return 0;
}

#define SETUP(size)                                                                                \
	do {                                                                                       \
		int rc_ = setup_started(size);                                                     \
		CHECK_MSG(rc_ == 0, "setup rc %d: %s", rc_, g_err.msg);                            \
		if (rc_)                                                                           \
			return;                                                                    \
	} while (0)

static int start_with(uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	if (setup(size))
		return -12345;
	g_q.desc_gpa = desc;
	g_q.avail_gpa = avail;
	g_q.used_gpa = used;
	vmp_error_clear(&g_err);
	return virtq_start(&g_q, &g_mem, &g_err);
}

/* Pops and expects a guest error with the given code and a message. */
static int pop_expect_error(int code)
{
	vmp_error_clear(&g_err);
	int rc = virtq_pop(&g_q, &g_mem, &g_c, &g_err);
	return rc == code && g_err.code == code && g_err.msg[0] != '\0';
}

/* --- virtq_start --------------------------------------------------- */

static void start_rejects_bad_sizes(void)
{
	static const uint16_t bad[] = {0,   3,   5,   6,   7,    12,    100,
	                               255, 257, 384, 512, 1024, 32768, 65535};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = start_with(bad[i], DESC_GPA, AVAIL_GPA, USED_GPA);
		CHECK_MSG(rc == -EINVAL, "size %u: rc %d", bad[i], rc);
		CHECK_MSG(g_err.msg[0] != '\0', "size %u: no message", bad[i]);
	}
	static const uint16_t good[] = {1, 2, 4, 8, 16, 64, 128, 256};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = start_with(good[i], 0x10000, 0x20000, 0x30000);
		CHECK_MSG(rc == 0, "size %u: rc %d: %s", good[i], rc, g_err.msg);
	}
}

static void start_rejects_misaligned_rings(void)
{
	/* desc needs 16, avail 2, used 4 (virtio 1.x 2.7). */
	CHECK(start_with(8, DESC_GPA + 8, AVAIL_GPA, USED_GPA) == -EINVAL);
	CHECK(start_with(8, DESC_GPA + 1, AVAIL_GPA, USED_GPA) == -EINVAL);
	CHECK(start_with(8, DESC_GPA, AVAIL_GPA + 1, USED_GPA) == -EINVAL);
	CHECK(start_with(8, DESC_GPA, AVAIL_GPA, USED_GPA + 2) == -EINVAL);
	CHECK(start_with(8, DESC_GPA, AVAIL_GPA, USED_GPA + 1) == -EINVAL);
	CHECK(g_err.msg[0] != '\0');
	/* The minimum alignments are enough. */
	CHECK(start_with(8, DESC_GPA + 16, AVAIL_GPA + 2, USED_GPA + 4) == 0);
}

static void start_rejects_rings_outside_memory(void)
{
	uint16_t n = 16;
	uint64_t dsz = virtq_desc_bytes(n), asz = virtq_avail_bytes(n), usz = virtq_used_bytes(n);
	CHECK(dsz == 16u * n && asz == 6u + 2u * n && usz == 6u + 8u * n);
	/* Entirely outside. */
	CHECK(start_with(n, MEM_SIZE, AVAIL_GPA, USED_GPA) == -EFAULT);
	CHECK(start_with(n, DESC_GPA, MEM_SIZE + 0x1000, USED_GPA) == -EFAULT);
	CHECK(start_with(n, DESC_GPA, AVAIL_GPA, 1ull << 40) == -EFAULT);
	/* Straddling the end by a little. */
	CHECK(start_with(n, MEM_SIZE - dsz + 16, AVAIL_GPA, USED_GPA) == -EFAULT);
	CHECK(start_with(n, DESC_GPA, MEM_SIZE - asz + 2, USED_GPA) == -EFAULT);
	CHECK(start_with(n, DESC_GPA, AVAIL_GPA, ((MEM_SIZE - usz) & ~3ull) + 4) == -EFAULT);
	/* Wrapping around the 64-bit address space (aligned values). */
	CHECK(start_with(n, UINT64_MAX - 15, AVAIL_GPA, USED_GPA) == -EFAULT);
	CHECK(start_with(n, DESC_GPA, UINT64_MAX - 1, USED_GPA) == -EFAULT);
	CHECK(start_with(n, DESC_GPA, AVAIL_GPA, UINT64_MAX - 3) == -EFAULT);
	CHECK(g_err.msg[0] != '\0');
	/* Exactly at the end fits. */
	CHECK(start_with(n, MEM_SIZE - dsz, AVAIL_GPA, USED_GPA) == 0);
	CHECK(start_with(n, DESC_GPA, MEM_SIZE - asz, USED_GPA) == 0);
	/* (used is 6 + 8n bytes, so with 4-alignment it ends 2 bytes short) */
	CHECK(start_with(n, DESC_GPA, AVAIL_GPA, (MEM_SIZE - usz) & ~3ull) == 0);
}

/* --- popping well-formed chains ----------------------------------- */

static void pop_empty_and_not_ready(void)
{
	SETUP(8);
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 0);
	CHECK(g_err.code == 0);
	/* A published chain is not taken from a queue that is not ready. */
	set_desc(0, DATA_GPA, 16, 0, 0);
	avail_add(8, 0);
	g_q.ready = false;
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 0);
	g_q.ready = true;
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 1);
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 0);
	/* A reset queue has no rings: nothing to pop, no crash. */
	virtq_reset(&g_q);
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 0);
}

static void pop_read_write_chain(void)
{
	SETUP(8);
	/* head 5: two readable buffers then two writable ones, linked in a
	 * non-sequential order. */
	memcpy(gp(DATA_GPA), "hello, ", 7);
	memcpy(gp(DATA_GPA + 0x100), "world", 5);
	set_desc(5, DATA_GPA, 7, VIRTQ_DESC_F_NEXT, 2);
	set_desc(2, DATA_GPA + 0x100, 5, VIRTQ_DESC_F_NEXT, 7);
	set_desc(7, DATA_GPA + 0x200, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	set_desc(0, DATA_GPA + 0x300, 8, VIRTQ_DESC_F_WRITE, 0);
	avail_add(8, 5);

	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 1);
	CHECK(g_err.code == 0);
	CHECK(g_c.head == 5);
	CHECK(g_c.nread == 2 && g_c.nwrite == 2);
	CHECK(g_c.read_len == 12 && g_c.write_len == 12);
	CHECK(g_c.iov[0].iov_base == gp(DATA_GPA) && g_c.iov[0].iov_len == 7);
	CHECK(g_c.iov[1].iov_base == gp(DATA_GPA + 0x100) && g_c.iov[1].iov_len == 5);
	CHECK(g_c.iov[2].iov_base == gp(DATA_GPA + 0x200) && g_c.iov[2].iov_len == 4);
	CHECK(g_c.iov[3].iov_base == gp(DATA_GPA + 0x300) && g_c.iov[3].iov_len == 8);

	char text[32] = {0};
	CHECK(virtq_chain_read(&g_c, 0, text, sizeof(text)) == 12);
	CHECK(memcmp(text, "hello, world", 12) == 0);

	CHECK(virtq_chain_write(&g_c, 0, "ABCDEFGHIJKLMNOP", 16) == 12);
	CHECK(memcmp(gp(DATA_GPA + 0x200), "ABCD", 4) == 0);
	CHECK(memcmp(gp(DATA_GPA + 0x300), "EFGHIJKL", 8) == 0);
	CHECK(*(uint8_t *)gp(DATA_GPA + 0x308) == 0); /* nothing past the buffer */
	/* The readable buffers were not written. */
	CHECK(memcmp(gp(DATA_GPA), "hello, ", 7) == 0);
	CHECK(memcmp(gp(DATA_GPA + 0x100), "world", 5) == 0);

	CHECK(used_idx() == 0);
	virtq_push(&g_q, g_c.head, 12);
	CHECK(used_idx() == 1);
	CHECK(used_id(0) == 5 && used_len(0) == 12);
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 0);
}

static void chain_read_write_offsets(void)
{
	SETUP(4);
	for (int i = 0; i < 10; i++)
		((uint8_t *)gp(DATA_GPA))[i] = (uint8_t)('0' + i);
	/* readable: [0..3) [3..10); writable: 2 bytes, 0-byte, 3 bytes */
	set_desc(0, DATA_GPA, 3, VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, DATA_GPA + 3, 7, VIRTQ_DESC_F_NEXT, 2);
	set_desc(2, DATA_GPA + 0x100, 2, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	set_desc(3, DATA_GPA + 0x200, 3, VIRTQ_DESC_F_WRITE, 0);
	avail_add(4, 0);
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 1);
	CHECK(g_c.nread == 2 && g_c.nwrite == 2);

	char out[16];
	memset(out, 'x', sizeof(out));
	CHECK(virtq_chain_read(&g_c, 2, out, 4) == 4); /* crosses the buffer boundary */
	CHECK(memcmp(out, "2345", 4) == 0 && out[4] == 'x');
	CHECK(virtq_chain_read(&g_c, 3, out, 16) == 7);
	CHECK(memcmp(out, "3456789", 7) == 0);
	CHECK(virtq_chain_read(&g_c, 9, out, 16) == 1 && out[0] == '9');
	CHECK(virtq_chain_read(&g_c, 10, out, 16) == 0);
	CHECK(virtq_chain_read(&g_c, UINT64_MAX, out, 16) == 0);
	CHECK(virtq_chain_read(&g_c, 0, out, 0) == 0);

	CHECK(virtq_chain_write(&g_c, 1, "abcd", 4) == 4); /* 1 byte in buf 2, 3 in buf 3 */
	CHECK(memcmp(gp(DATA_GPA + 0x100), "\0a", 2) == 0);
	CHECK(memcmp(gp(DATA_GPA + 0x200), "bcd", 3) == 0);
	CHECK(virtq_chain_write(&g_c, 4, "zz", 2) == 1);
	CHECK(memcmp(gp(DATA_GPA + 0x200), "bcz", 3) == 0);
	CHECK(virtq_chain_write(&g_c, 5, "q", 1) == 0);
	CHECK(virtq_chain_write(&g_c, UINT64_MAX, "q", 1) == 0);
	/* Writes never land in readable buffers. */
	CHECK(memcmp(gp(DATA_GPA), "0123456789", 10) == 0);
}

static void chain_of_only_writable_or_readable(void)
{
	SETUP(4);
	set_desc(1, DATA_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
	avail_add(4, 1);
	set_desc(2, DATA_GPA + 0x100, 8, 0, 0);
	avail_add(4, 2);

	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 1);
	CHECK(g_c.head == 1 && g_c.nread == 0 && g_c.nwrite == 1 && g_c.write_len == 8);
	char b[8] = {0};
	CHECK(virtq_chain_read(&g_c, 0, b, 8) == 0);
	CHECK(virtq_chain_write(&g_c, 0, "12345678", 8) == 8);
	CHECK(memcmp(gp(DATA_GPA), "12345678", 8) == 0);

	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 1);
	CHECK(g_c.head == 2 && g_c.nread == 1 && g_c.nwrite == 0 && g_c.read_len == 8);
	CHECK(virtq_chain_write(&g_c, 0, "12345678", 8) == 0);
	CHECK(memcmp(gp(DATA_GPA + 0x100), "\0\0\0\0\0\0\0\0", 8) == 0);
}

static void several_chains_in_order(void)
{
	SETUP(8);
	for (uint16_t i = 0; i < 8; i++)
		set_desc(i, DATA_GPA + 0x100ull * i, 0x10, VIRTQ_DESC_F_WRITE, 0);
	/* All eight slots at once (avail idx advanced by exactly the size). */
	static const uint16_t heads[8] = {3, 1, 4, 0, 5, 2, 6, 7};
	for (int i = 0; i < 8; i++)
		avail_add(8, heads[i]);
	for (int i = 0; i < 8; i++) {
		int rc = virtq_pop(&g_q, &g_mem, &g_c, &g_err);
		CHECK_MSG(rc == 1, "pop %d: rc %d: %s", i, rc, g_err.msg);
		CHECK_MSG(g_c.head == heads[i], "pop %d: head %u", i, g_c.head);
		CHECK(g_c.iov[0].iov_base == gp(DATA_GPA + 0x100ull * heads[i]));
	}
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 0);
	/* Completed out of order: the used ring records them as pushed. */
	for (int i = 7; i >= 0; i--)
		virtq_push(&g_q, heads[i], (uint32_t)i);
	CHECK(used_idx() == 8);
	for (unsigned s = 0; s < 8; s++)
		CHECK_MSG(used_id(s) == heads[7 - s] && used_len(s) == 7 - s, "slot %u", s);
}

static void full_length_chain_is_accepted(void)
{
	/* A chain using every descriptor once is legal; only a revisit is a loop. */
	SETUP(256);
	for (unsigned i = 0; i < 256; i++)
		set_desc((uint16_t)i, DATA_GPA + i, 1, i < 255 ? VIRTQ_DESC_F_NEXT : 0,
		         (uint16_t)(i + 1));
	avail_add(256, 0);
	int rc = virtq_pop(&g_q, &g_mem, &g_c, &g_err);
	CHECK_MSG(rc == 1, "rc %d: %s", rc, g_err.msg);
	CHECK(g_c.nread == 256 && g_c.read_len == 256);
	CHECK(g_c.iov[255].iov_base == gp(DATA_GPA + 255));
}

/* --- hostile drivers ----------------------------------------------- */

static void chain_loops_are_rejected(void)
{
	/* a -> b -> a */
	SETUP(8);
	set_desc(1, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 6);
	set_desc(6, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 1);
	avail_add(8, 1);
	CHECK(pop_expect_error(-ELOOP));

	/* a -> a */
	SETUP(8);
	set_desc(3, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 3);
	avail_add(8, 3);
	CHECK(pop_expect_error(-ELOOP));

	/* A loop entered after a few descriptors: 0 -> 1 -> 2 -> 1, size 256. */
	SETUP(256);
	set_desc(0, DATA_GPA, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, DATA_GPA, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	set_desc(2, DATA_GPA, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	avail_add(256, 0);
	CHECK(pop_expect_error(-ELOOP));
}

static void next_out_of_range_is_rejected(void)
{
	SETUP(8);
	set_desc(0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 8);
	avail_add(8, 0);
	CHECK(pop_expect_error(-EINVAL));

	SETUP(8);
	set_desc(0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 0xffff);
	avail_add(8, 0);
	CHECK(pop_expect_error(-EINVAL));

	/* next is ignored without F_NEXT. */
	SETUP(8);
	set_desc(0, DATA_GPA, 4, 0, 0xffff);
	avail_add(8, 0);
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 1);
	CHECK(g_c.nread == 1);
}

static void head_out_of_range_is_rejected(void)
{
	SETUP(8);
	avail_add(8, 8);
	CHECK(pop_expect_error(-EINVAL));

	SETUP(8);
	avail_add(8, 0xffff);
	CHECK(pop_expect_error(-EINVAL));
}

static void avail_idx_jump_is_rejected(void)
{
	SETUP(8);
	set_avail_idx(9);
	CHECK(pop_expect_error(-EINVAL));

	SETUP(8);
	set_avail_idx(0x8000);
	CHECK(pop_expect_error(-EINVAL));

	SETUP(8);
	set_avail_idx(0xffff); /* "minus one": 65535 pending */
	CHECK(pop_expect_error(-EINVAL));

	/* After consuming some, a jump relative to last_avail is still caught. */
	SETUP(4);
	for (uint16_t i = 0; i < 4; i++) {
		set_desc(i, DATA_GPA, 4, 0, 0);
		avail_add(4, i);
	}
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 1);
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 1);
	set_avail_idx(7); /* 5 pending > 4 */
	CHECK(pop_expect_error(-EINVAL));
}

static void buffers_outside_memory_are_rejected(void)
{
	static const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
	    {MEM_SIZE, 1},                           /* just past the end */
	    {MEM_SIZE - 4, 8},                       /* straddling the end */
	    {MEM_SIZE - 1, 0xffffffff},              /* straddling by a lot */
	    {0, 0xffffffff},                         /* longer than memory */
	    {1ull << 40, 16},                        /* far away */
	    {UINT64_MAX, 1},                         /* addr + len wraps to 0 */
	    {UINT64_MAX - 3, 8},                     /* addr + len wraps to 4 */
	    {0x1000ull - 0xffffffffull, 0xffffffff}, /* addr + len wraps to 0x1000 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* As the first (readable) buffer... */
		SETUP(8);
		set_desc(0, bad[i].addr, bad[i].len, 0, 0);
		avail_add(8, 0);
		CHECK_MSG(pop_expect_error(-EFAULT), "case %zu as head: err %d", i, g_err.code);
		/* ...and as a writable buffer later in the chain. */
		SETUP(8);
		set_desc(0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 4);
		set_desc(4, bad[i].addr, bad[i].len, VIRTQ_DESC_F_WRITE, 0);
		avail_add(8, 0);
		CHECK_MSG(pop_expect_error(-EFAULT), "case %zu in chain: err %d", i, g_err.code);
	}
	/* Exactly up to the end is fine. */
	SETUP(8);
	set_desc(0, MEM_SIZE - 8, 8, VIRTQ_DESC_F_WRITE, 0);
	avail_add(8, 0);
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 1);
	CHECK(g_c.iov[0].iov_base == gp(MEM_SIZE - 8));
	CHECK(virtq_chain_write(&g_c, 0, "12345678", 8) == 8);
	CHECK(memcmp(gp(MEM_SIZE - 8), "12345678", 8) == 0);
}

static void readable_after_writable_is_rejected(void)
{
	SETUP(8);
	set_desc(0, DATA_GPA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, DATA_GPA + 0x100, 8, 0, 0);
	avail_add(8, 0);
	CHECK(pop_expect_error(-EINVAL));
}

static void indirect_without_negotiation_is_rejected(void)
{
	/* A well-formed indirect table in memory: still not negotiated. */
	SETUP(8);
	struct virtq_desc table = {.addr = DATA_GPA + 0x100, .len = 8, .flags = 0, .next = 0};
	memcpy(gp(DATA_GPA), &table, sizeof(table));
	set_desc(0, DATA_GPA, sizeof(table), VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(8, 0);
	CHECK(pop_expect_error(-EINVAL));

	/* Later in a chain. */
	SETUP(8);
	set_desc(0, DATA_GPA + 0x200, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, DATA_GPA, sizeof(table), VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(8, 0);
	CHECK(pop_expect_error(-EINVAL));
}

/* --- 16-bit index wrap-around ---------------------------------------- */

static void indices_wrap_around(void)
{
	SETUP(8);
	/* As if 65534 chains had already gone through the queue. */
	g_q.last_avail = 65534;
	g_q.used_idx = 65534;
	wr16(USED_GPA + 2, 65534);
	set_avail_idx(65534);
	for (uint16_t i = 0; i < 4; i++)
		set_desc(i, DATA_GPA + 0x10ull * i, 0x10, VIRTQ_DESC_F_WRITE, 0);
	avail_add(8, 2); /* slot 65534 & 7 = 6 */
	avail_add(8, 0); /* slot 7 */
	avail_add(8, 3); /* slot 0, avail idx wraps to 0 */
	avail_add(8, 1); /* slot 1, idx 1 */
	CHECK(avail_idx() == 2);
	static const uint16_t want[4] = {2, 0, 3, 1};
	for (int i = 0; i < 4; i++) {
		int rc = virtq_pop(&g_q, &g_mem, &g_c, &g_err);
		CHECK_MSG(rc == 1, "pop %d: rc %d: %s", i, rc, g_err.msg);
		CHECK_MSG(g_c.head == want[i], "pop %d: head %u", i, g_c.head);
		virtq_push(&g_q, g_c.head, 0x10u + (uint32_t)i);
	}
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 0);
	CHECK(g_q.last_avail == 2);
	CHECK(used_idx() == 2);
	CHECK(used_id(6) == 2 && used_len(6) == 0x10);
	CHECK(used_id(7) == 0 && used_len(7) == 0x11);
	CHECK(used_id(0) == 3 && used_len(0) == 0x12);
	CHECK(used_id(1) == 1 && used_len(1) == 0x13);

	/* A jump that only looks small because of the wrap is still caught. */
	SETUP(8);
	g_q.last_avail = 65530;
	set_avail_idx(5); /* 11 pending */
	CHECK(pop_expect_error(-EINVAL));
}

/* --- interrupt suppression ------------------------------------------- */

static void no_interrupt_flag(void)
{
	SETUP(8);
	set_desc(0, DATA_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
	avail_add(8, 0);
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 1);
	virtq_push(&g_q, 0, 8);
	CHECK(virtq_needs_interrupt(&g_q));
	set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT);
	virtq_push(&g_q, 0, 8);
	CHECK(!virtq_needs_interrupt(&g_q));
	/* Unknown flag bits do not suppress. */
	set_avail_flags(0x8000);
	virtq_push(&g_q, 0, 8);
	CHECK(virtq_needs_interrupt(&g_q));
	set_avail_flags(0);
	CHECK(virtq_needs_interrupt(&g_q));
}

static void event_idx_suppression(void)
{
	SETUP(8);
	g_q.event_idx = true;
	/* With EVENT_IDX the flags field is ignored (spec 2.7.10). */
	set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT);

	set_used_event(8, 0);   /* interrupt once used idx moves past 0 */
	virtq_push(&g_q, 0, 1); /* used 1 */
	CHECK(virtq_needs_interrupt(&g_q));

	set_used_event(8, 2);   /* wants an interrupt when entry 2 is used (idx 2 -> 3) */
	virtq_push(&g_q, 0, 1); /* used 2 */
	CHECK(!virtq_needs_interrupt(&g_q));
	virtq_push(&g_q, 0, 1); /* used 3: crossed */
	CHECK(virtq_needs_interrupt(&g_q));
	/* Nothing pushed since: no interrupt. */
	CHECK(!virtq_needs_interrupt(&g_q));

	/* Two pushed at once, used_event among them: one interrupt. */
	set_used_event(8, 3);
	virtq_push(&g_q, 0, 1); /* 4 */
	virtq_push(&g_q, 0, 1); /* 5 */
	CHECK(virtq_needs_interrupt(&g_q));

	/* used_event far ahead: suppressed. */
	set_used_event(8, 100);
	virtq_push(&g_q, 0, 1); /* 6 */
	CHECK(!virtq_needs_interrupt(&g_q));
	/* used_event behind the last signal: already signalled, suppressed. */
	set_used_event(8, 4);
	virtq_push(&g_q, 0, 1); /* 7 */
	CHECK(!virtq_needs_interrupt(&g_q));
}

static void event_idx_wraps(void)
{
	SETUP(8);
	g_q.event_idx = true;
	g_q.used_idx = 65533;
	set_used_event(8, 65532);
	virtq_push(&g_q, 0, 1);             /* 65534 */
	CHECK(virtq_needs_interrupt(&g_q)); /* first check always signals */
	set_used_event(8, 65535);
	virtq_push(&g_q, 0, 1); /* 65535 */
	CHECK(!virtq_needs_interrupt(&g_q));
	virtq_push(&g_q, 0, 1); /* 0: crossed 65535 */
	CHECK(g_q.used_idx == 0 && used_idx() == 0);
	CHECK(virtq_needs_interrupt(&g_q));
	set_used_event(8, 1);
	virtq_push(&g_q, 0, 1); /* 1 */
	CHECK(!virtq_needs_interrupt(&g_q));
	virtq_push(&g_q, 0, 1); /* 2 */
	CHECK(virtq_needs_interrupt(&g_q));
}

static void start_resets_indices(void)
{
	SETUP(8);
	set_desc(0, DATA_GPA, 8, 0, 0);
	avail_add(8, 0);
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 1);
	virtq_push(&g_q, 0, 0);
	CHECK(g_q.last_avail == 1 && g_q.used_idx == 1);
	/* The driver resets the device and sets the queue up afresh. */
	memset(g_buf, 0, 0x8000);
	g_q.ready = false;
	CHECK(virtq_start(&g_q, &g_mem, &g_err) == 0);
	g_q.ready = true;
	CHECK(g_q.last_avail == 0 && g_q.used_idx == 0);
	set_desc(0, DATA_GPA, 8, 0, 0);
	avail_add(8, 0);
	CHECK(virtq_pop(&g_q, &g_mem, &g_c, &g_err) == 1);
	virtq_push(&g_q, 0, 0);
	CHECK(used_idx() == 1);
}

TEST_LIST(T(start_rejects_bad_sizes), T(start_rejects_misaligned_rings),
          T(start_rejects_rings_outside_memory), T(pop_empty_and_not_ready),
          T(pop_read_write_chain), T(chain_read_write_offsets),
          T(chain_of_only_writable_or_readable), T(several_chains_in_order),
          T(full_length_chain_is_accepted), T(chain_loops_are_rejected),
          T(next_out_of_range_is_rejected), T(head_out_of_range_is_rejected),
          T(avail_idx_jump_is_rejected), T(buffers_outside_memory_are_rejected),
          T(readable_after_writable_is_rejected), T(indirect_without_negotiation_is_rejected),
          T(indices_wrap_around), T(no_interrupt_flag), T(event_idx_suppression),
          T(event_idx_wraps), T(start_resets_indices))
