/* The virtio-mmio transport, driven through virtio_mmio_access the way a
 * virtio 1.x driver does it (spec 4.2.3), with a fake device that counts
 * notifies and resets and, when asked, completes one buffer per notify.
 * The interrupt goes to a real eventfd, which the test reads. */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness.h"
#include "mem/guest_mem.h"
#include "mmio_driver.h"
#include "virtio/mmio.h"
#include "virtio/virtqueue.h"

/* Register offsets (virtio 1.x, 4.2.2). */

#define F_DEVICE_BIT3     (1ull << 3)
#define F_UNOFFERED_BIT5  (1ull << 5)
#define F_UNOFFERED_BIT40 (1ull << 40)

#define MEM_SIZE    (4u << 20)
#define QMAX        64
#define NQUEUES     2
#define CONFIG_SIZE 12
#define DATA_GPA    0x100000ull

/* Rings of queue q. */
static uint64_t desc_gpa(unsigned q)
{
	return 0x10000ull + 0x4000ull * q;
}
static uint64_t avail_gpa(unsigned q)
{
	return desc_gpa(q) + 0x1000;
}
static uint64_t used_gpa(unsigned q)
{
	return desc_gpa(q) + 0x2000;
}

struct fake_dev {
	unsigned notifies;
	unsigned notified_q[16];
	unsigned resets;
	unsigned config_reads;
	bool complete; /* pop and push one chain per notify, then interrupt */
	int notify_rc; /* returned by notify (negative: guest error) */
	struct virtq_chain chain;
};

static void fake_read_config(void *dev, uint32_t off, void *data, uint32_t len)
{
	struct fake_dev *d = dev;
	d->config_reads++;
	for (uint32_t i = 0; i < len; i++)
		((uint8_t *)data)[i] = (uint8_t)(0xc0 + off + i);
}

static int fake_notify(void *dev, struct virtio_mmio *t, unsigned q, struct vmp_error *err)
{
	struct fake_dev *d = dev;
	if (d->notifies < 16)
		d->notified_q[d->notifies] = q;
	d->notifies++;
	if (d->notify_rc)
		return vmp_fail(err, d->notify_rc, "fake device: guest error");
	if (d->complete) {
		int rc = virtq_pop(&t->vq[q], t->mem, &d->chain, err);
		if (rc < 0)
			return rc;
		if (rc > 0) {
			uint64_t n = virtq_chain_write(&d->chain, 0, "done", 4);
			virtq_push(&t->vq[q], d->chain.head, (uint32_t)n);
		}
		virtio_mmio_interrupt(t, q);
	}
	return 0;
}

static void fake_reset(void *dev)
{
	struct fake_dev *d = dev;
	d->resets++;
}

static const struct virtio_device_ops fake_ops = {
    .name = "fake",
    .device_id = 42,
    .features = F_DEVICE_BIT3 | VIRTIO_RING_F_EVENT_IDX,
    .num_queues = NQUEUES,
    .queue_max = QMAX,
    .config_size = CONFIG_SIZE,
    .read_config = fake_read_config,
    .notify = fake_notify,
    .reset = fake_reset,
};

static uint8_t *g_buf;
static struct guest_mem g_mem;
static struct virtio_mmio g_t;
static struct fake_dev g_dev;
static struct vmp_error g_err;
static int g_efd = -1;

static int setup(void)
{
	if (!g_buf)
		g_buf = malloc(MEM_SIZE);
	if (!g_buf)
		return -1;
	memset(g_buf, 0, MEM_SIZE);
	guest_mem_layout(&g_mem, g_buf, MEM_SIZE);
	memset(&g_dev, 0, sizeof(g_dev));
	vmp_error_clear(&g_err);
	if (g_efd < 0)
		g_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g_efd < 0)
		return -1;
	uint64_t drain;
	while (read(g_efd, &drain, sizeof(drain)) == sizeof(drain))
		;
	mmio_driver_attach(&g_t, &g_err);
	return virtio_mmio_init(&g_t, 0xd0000000ull, 5, g_efd, &fake_ops, &g_dev, &g_mem);
}

#define SETUP()                                                                                    \
	do {                                                                                       \
		int rc_ = setup();                                                                 \
		CHECK_MSG(rc_ == 0, "setup: %d", rc_);                                             \
		if (rc_)                                                                           \
			return;                                                                    \
	} while (0)

static void teardown(void)
{
	virtio_mmio_destroy(&g_t);
}

static int setup_queue(unsigned q, uint32_t num)
{
	return setup_queue_at(q, num, desc_gpa(q), avail_gpa(q), used_gpa(q));
}

/* The full bring-up: features, both queues of size 8, DRIVER_OK. */
static int bring_up(uint64_t f)
{
	if (!negotiate(f))
		return -1;
	for (unsigned q = 0; q < NQUEUES; q++)
		if (setup_queue(q, 8))
			return -2;
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return virtio_mmio_driver_ok(&g_t) ? 0 : -3;
}

/* Driver side of a queue: one writable buffer at DATA_GPA, published. */
static void publish_writable(unsigned q, uint16_t size, uint16_t head)
{
	struct virtq_desc d = {.addr = DATA_GPA, .len = 16, .flags = VIRTQ_DESC_F_WRITE};
	publish_desc(g_buf, desc_gpa(q), avail_gpa(q), size, head, d);
}

static uint16_t used_idx_of(unsigned q)
{
	uint16_t v;
	memcpy(&v, g_buf + used_gpa(q) + 2, 2);
	return v;
}

static uint64_t irq_count(void)
{
	uint64_t v = 0;
	if (read(g_efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* ------------------------------------------------------------------ */

static void identification_registers(void)
{
	SETUP();
	CHECK(rd(R_MAGIC) == 0x74726976);
	CHECK(rd(R_VERSION) == 2);
	CHECK(rd(R_DEVICE_ID) == 42);
	CHECK(rd(R_STATUS) == 0);
	CHECK(rd(R_INTERRUPT_STATUS) == 0);
	/* Identification registers are read-only. */
	CHECK(wr(R_MAGIC, 0) == 0);
	CHECK(wr(R_DEVICE_ID, 7) == 0);
	CHECK(rd(R_MAGIC) == 0x74726976 && rd(R_DEVICE_ID) == 42);
	CHECK(!virtio_mmio_driver_ok(&g_t));
	teardown();
}

static void init_rejects_too_many_queues(void)
{
	struct virtio_device_ops ops = fake_ops;
	ops.num_queues = VIRTIO_MMIO_MAX_QUEUES + 1;
	struct virtio_mmio t;
	CHECK(virtio_mmio_init(&t, 0, 5, -1, &ops, NULL, &g_mem) == -EINVAL);
}

static void device_features_offered(void)
{
	SETUP();
	uint64_t f = device_features();
	CHECK((f & VIRTIO_F_VERSION_1) != 0);
	CHECK((f & F_DEVICE_BIT3) != 0);
	CHECK((f & VIRTIO_RING_F_EVENT_IDX) != 0);
	CHECK((f & F_UNOFFERED_BIT5) == 0);
	CHECK(f == (F_DEVICE_BIT3 | VIRTIO_RING_F_EVENT_IDX | VIRTIO_F_VERSION_1));
	/* Selectors past the 64 feature bits read as zero. */
	wr(R_DEVICE_FEATURES_SEL, 2);
	CHECK(rd(R_DEVICE_FEATURES) == 0);
	wr(R_DEVICE_FEATURES_SEL, 0xffffffff);
	CHECK(rd(R_DEVICE_FEATURES) == 0);
	teardown();
}

static void feature_negotiation_accepts_subset(void)
{
	SETUP();
	CHECK(negotiate(VIRTIO_F_VERSION_1));
	CHECK(rd(R_STATUS) == (S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK));
	CHECK(g_t.driver_features == VIRTIO_F_VERSION_1);
	CHECK(negotiate(VIRTIO_F_VERSION_1 | F_DEVICE_BIT3 | VIRTIO_RING_F_EVENT_IDX));
	CHECK(g_t.driver_features ==
	      (VIRTIO_F_VERSION_1 | F_DEVICE_BIT3 | VIRTIO_RING_F_EVENT_IDX));
	/* Features are frozen once FEATURES_OK is set. */
	write_driver_features(VIRTIO_F_VERSION_1);
	CHECK(g_t.driver_features ==
	      (VIRTIO_F_VERSION_1 | F_DEVICE_BIT3 | VIRTIO_RING_F_EVENT_IDX));
	teardown();
}

static void feature_negotiation_refuses_unoffered(void)
{
	SETUP();
	CHECK(!negotiate(VIRTIO_F_VERSION_1 | F_UNOFFERED_BIT5));
	CHECK((rd(R_STATUS) & S_FEATURES_OK) == 0);
	CHECK((rd(R_STATUS) & (S_ACKNOWLEDGE | S_DRIVER)) == (S_ACKNOWLEDGE | S_DRIVER));
	CHECK(!negotiate(VIRTIO_F_VERSION_1 | F_UNOFFERED_BIT40));
	CHECK((rd(R_STATUS) & S_FEATURES_OK) == 0);
	/* Legacy driver: no VERSION_1. */
	CHECK(!negotiate(F_DEVICE_BIT3));
	CHECK(!negotiate(0));
	CHECK((rd(R_STATUS) & S_FEATURES_OK) == 0);
	/* After a refusal the driver may try again with a valid set
	 * without a reset. */
	write_driver_features(VIRTIO_F_VERSION_1 | F_DEVICE_BIT3);
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	CHECK((rd(R_STATUS) & S_FEATURES_OK) != 0);
	CHECK(g_t.driver_features == (VIRTIO_F_VERSION_1 | F_DEVICE_BIT3));
	teardown();
	/* Driver feature selectors past 1 are ignored. */
	SETUP();
	wr(R_DRIVER_FEATURES_SEL, 2);
	wr(R_DRIVER_FEATURES, 0xffffffff);
	CHECK(g_t.driver_features == 0);
	teardown();
}

static void queue_setup_and_ready(void)
{
	SETUP();
	CHECK(negotiate(VIRTIO_F_VERSION_1));
	wr(R_QUEUE_SEL, 0);
	CHECK(rd(R_QUEUE_NUM_MAX) == QMAX);
	CHECK(rd(R_QUEUE_READY) == 0);
	CHECK(setup_queue_at(0, 16, 0x40000, 0x41002, 0x42004) == 0);
	CHECK(rd(R_QUEUE_READY) == 1);
	CHECK(g_t.vq[0].ready && g_t.vq[0].size == 16);
	CHECK(g_t.vq[0].desc_gpa == 0x40000);
	CHECK(g_t.vq[0].avail_gpa == 0x41002 && g_t.vq[0].used_gpa == 0x42004);
	CHECK(!g_t.vq[0].event_idx);
	/* The other queue is independent. */
	wr(R_QUEUE_SEL, 1);
	CHECK(rd(R_QUEUE_NUM_MAX) == QMAX);
	CHECK(rd(R_QUEUE_READY) == 0);
	/* A live queue's layout cannot be changed... */
	wr(R_QUEUE_SEL, 0);
	wr(R_QUEUE_NUM, 32);
	wr(R_QUEUE_DESC_LOW, 0x50000);
	CHECK(g_t.vq[0].size == 16 && g_t.vq[0].desc_gpa == 0x40000);
	/* ...until it is disabled. */
	CHECK(wr(R_QUEUE_READY, 0) == 0);
	CHECK(rd(R_QUEUE_READY) == 0);
	wr(R_QUEUE_NUM, 32);
	CHECK(g_t.vq[0].size == 32);
	teardown();
}

static void queue_high_address_halves(void)
{
	SETUP();
	CHECK(negotiate(VIRTIO_F_VERSION_1));
	wr(R_QUEUE_SEL, 1);
	wr(R_QUEUE_DESC_LOW, 0x11111000);
	wr(R_QUEUE_DESC_HIGH, 0x2);
	wr(R_QUEUE_DRIVER_HIGH, 0x3);
	wr(R_QUEUE_DRIVER_LOW, 0x44444000);
	wr(R_QUEUE_DEVICE_LOW, 0x55555000);
	CHECK(g_t.vq[1].desc_gpa == 0x211111000ull);
	CHECK(g_t.vq[1].avail_gpa == 0x344444000ull);
	CHECK(g_t.vq[1].used_gpa == 0x55555000ull);
	/* Rings above 4 GiB do not exist in 4 MiB of RAM: enabling fails. */
	wr(R_QUEUE_NUM, 8);
	CHECK(wr(R_QUEUE_READY, 1) < 0);
	CHECK(rd(R_QUEUE_READY) == 0);
	teardown();
}

static void queue_ready_with_bad_size_fails(void)
{
	static const uint32_t bad[] = {0, 3, 48, QMAX * 2, 256, 0x10000, 0xffffffff};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		SETUP();
		CHECK(negotiate(VIRTIO_F_VERSION_1));
		int rc = setup_queue(0, bad[i]);
		CHECK_MSG(rc < 0, "size %u: rc %d", bad[i], rc);
		CHECK_MSG(g_err.msg[0] != '\0', "size %u: no message", bad[i]);
		CHECK_MSG(rd(R_QUEUE_READY) == 0, "size %u: queue became ready", bad[i]);
		teardown();
	}
	/* Never having written QueueNum at all. */
	SETUP();
	CHECK(negotiate(VIRTIO_F_VERSION_1));
	wr(R_QUEUE_SEL, 1);
	CHECK(wr(R_QUEUE_READY, 1) < 0);
	CHECK(rd(R_QUEUE_READY) == 0);
	teardown();
}

static void queue_ready_with_bad_rings_fails(void)
{
	SETUP();
	CHECK(negotiate(VIRTIO_F_VERSION_1));
	CHECK(setup_queue_at(0, 8, 0x10008, 0x20000, 0x30000) < 0); /* misaligned desc */
	CHECK(rd(R_QUEUE_READY) == 0);
	teardown();
	SETUP();
	CHECK(negotiate(VIRTIO_F_VERSION_1));
	CHECK(setup_queue_at(0, 8, 0x10000, MEM_SIZE - 8, 0x30000) < 0); /* avail past the end */
	CHECK(rd(R_QUEUE_READY) == 0);
	teardown();
}

static void queue_sel_out_of_range_is_ignored(void)
{
	SETUP();
	CHECK(negotiate(VIRTIO_F_VERSION_1));
	static const uint32_t sels[] = {NQUEUES, VIRTIO_MMIO_MAX_QUEUES - 1, VIRTIO_MMIO_MAX_QUEUES,
	                                0x10000, 0xffffffff};
	for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++) {
		wr(R_QUEUE_SEL, sels[i]);
		CHECK_MSG(rd(R_QUEUE_NUM_MAX) == 0, "sel %u", sels[i]);
		CHECK_MSG(rd(R_QUEUE_READY) == 0, "sel %u", sels[i]);
		CHECK(wr(R_QUEUE_NUM, 8) == 0);
		CHECK(wr(R_QUEUE_DESC_LOW, 0x10000) == 0);
		CHECK(wr(R_QUEUE_DRIVER_LOW, 0x11000) == 0);
		CHECK(wr(R_QUEUE_DEVICE_LOW, 0x12000) == 0);
		CHECK_MSG(wr(R_QUEUE_READY, 1) == 0, "sel %u: %s", sels[i], g_err.msg);
		CHECK_MSG(rd(R_QUEUE_READY) == 0, "sel %u", sels[i]);
	}
	/* No real queue was touched. */
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		CHECK_MSG(!g_t.vq[q].ready && g_t.vq[q].size == 0 && g_t.vq[q].desc_gpa == 0,
		          "queue %u changed", q);
	CHECK((rd(R_STATUS) & 0x80) == 0);
	teardown();
}

static void notify_reaches_device(void)
{
	SETUP();
	CHECK(bring_up(VIRTIO_F_VERSION_1) == 0);
	CHECK(wr(R_QUEUE_NOTIFY, 1) == 0);
	CHECK(wr(R_QUEUE_NOTIFY, 0) == 0);
	CHECK(g_dev.notifies == 2);
	CHECK(g_dev.notified_q[0] == 1 && g_dev.notified_q[1] == 0);
	/* QueueNotify is write-only: a read does not notify. */
	rd(R_QUEUE_NOTIFY);
	CHECK(g_dev.notifies == 2);
	teardown();
}

static void notify_invalid_queue_is_ignored(void)
{
	SETUP();
	CHECK(bring_up(VIRTIO_F_VERSION_1) == 0);
	CHECK(wr(R_QUEUE_NOTIFY, NQUEUES) == 0);
	CHECK(wr(R_QUEUE_NOTIFY, VIRTIO_MMIO_MAX_QUEUES) == 0);
	CHECK(wr(R_QUEUE_NOTIFY, 0xffffffff) == 0);
	CHECK(g_dev.notifies == 0);
	/* A queue that exists but is not ready. */
	wr(R_QUEUE_SEL, 1);
	wr(R_QUEUE_READY, 0);
	CHECK(wr(R_QUEUE_NOTIFY, 1) == 0);
	CHECK(g_dev.notifies == 0);
	CHECK(virtio_mmio_driver_ok(&g_t));
	teardown();
}

static void notify_before_driver_ok_is_ignored(void)
{
	SETUP();
	CHECK(negotiate(VIRTIO_F_VERSION_1));
	CHECK(setup_queue(0, 8) == 0);
	CHECK(wr(R_QUEUE_NOTIFY, 0) == 0);
	CHECK(g_dev.notifies == 0);
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	CHECK(wr(R_QUEUE_NOTIFY, 0) == 0);
	CHECK(g_dev.notifies == 1);
	teardown();
}

static void notify_error_is_returned(void)
{
	SETUP();
	CHECK(bring_up(VIRTIO_F_VERSION_1) == 0);
	g_dev.notify_rc = -EINVAL;
	CHECK(wr(R_QUEUE_NOTIFY, 0) == -EINVAL);
	CHECK(g_err.code == -EINVAL && g_err.msg[0] != '\0');
	teardown();
}

static void odd_access_widths_are_ignored(void)
{
	SETUP();
	uint8_t b[8];
	/* Narrow and wide reads of registers read as zero. */
	for (uint32_t len = 1; len <= 8; len++) {
		if (len == 4)
			continue;
		memset(b, 0xee, sizeof(b));
		CHECK_MSG(virtio_mmio_access(&g_t, R_MAGIC, b, len, false, &g_err) == 0, "len %u",
		          len);
		for (uint32_t i = 0; i < len; i++)
			CHECK_MSG(b[i] == 0, "len %u byte %u = %#x", len, i, b[i]);
	}
	/* Misaligned 32-bit reads. */
	memset(b, 0xee, sizeof(b));
	CHECK(virtio_mmio_access(&g_t, R_MAGIC + 1, b, 4, false, &g_err) == 0);
	CHECK(b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0);
	/* Narrow, wide and misaligned writes change nothing. */
	CHECK(negotiate(VIRTIO_F_VERSION_1));
	uint32_t st = rd(R_STATUS);
	memset(b, 0, sizeof(b));
	CHECK(virtio_mmio_access(&g_t, R_STATUS, b, 1, true, &g_err) == 0);
	CHECK(virtio_mmio_access(&g_t, R_STATUS, b, 2, true, &g_err) == 0);
	CHECK(virtio_mmio_access(&g_t, R_STATUS, b, 8, true, &g_err) == 0);
	CHECK(virtio_mmio_access(&g_t, R_STATUS + 2, b, 4, true, &g_err) == 0);
	CHECK(g_dev.resets == 1); /* only the reset from negotiate() */
	CHECK(rd(R_STATUS) == st);
	b[0] = 9;
	CHECK(virtio_mmio_access(&g_t, R_QUEUE_SEL, b, 1, true, &g_err) == 0);
	CHECK(g_t.queue_sel == 0);
	/* Zero-length and out-of-window accesses are harmless. */
	CHECK(virtio_mmio_access(&g_t, R_MAGIC, b, 0, false, &g_err) == 0);
	CHECK(virtio_mmio_access(&g_t, 0x1000, b, 4, false, &g_err) == 0);
	CHECK(virtio_mmio_access(&g_t, 0xffe, b, 4, false, &g_err) == 0);
	CHECK(virtio_mmio_access(&g_t, UINT64_MAX - 1, b, 4, true, &g_err) == 0);
	CHECK(rd(R_STATUS) == st);
	CHECK(g_dev.config_reads == 0);
	teardown();
}

static void config_space_reads(void)
{
	SETUP();
	uint8_t b[8];
	memset(b, 0, sizeof(b));
	CHECK(virtio_mmio_access(&g_t, R_CONFIG, b, 4, false, &g_err) == 0);
	CHECK(b[0] == 0xc0 && b[1] == 0xc1 && b[2] == 0xc2 && b[3] == 0xc3);
	/* Any width, any alignment inside the config space. */
	CHECK(virtio_mmio_access(&g_t, R_CONFIG + 5, b, 1, false, &g_err) == 0);
	CHECK(b[0] == 0xc5);
	CHECK(virtio_mmio_access(&g_t, R_CONFIG + 4, b, 8, false, &g_err) == 0);
	CHECK(b[0] == 0xc4 && b[7] == 0xcb);
	CHECK(virtio_mmio_access(&g_t, R_CONFIG + CONFIG_SIZE - 2, b, 2, false, &g_err) == 0);
	CHECK(b[0] == 0xc0 + CONFIG_SIZE - 2 && b[1] == 0xc0 + CONFIG_SIZE - 1);
	unsigned reads = g_dev.config_reads;
	CHECK(reads == 4);
	/* Out of range, or straddling the end: zeros, the device is not asked. */
	static const struct {
		uint64_t off;
		uint32_t len;
	} out[] = {{R_CONFIG + CONFIG_SIZE, 1},
	           {R_CONFIG + CONFIG_SIZE - 2, 4},
	           {R_CONFIG + CONFIG_SIZE - 1, 8},
	           {R_CONFIG + 0x100, 4},
	           {0xffc, 4}};
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		memset(b, 0xee, sizeof(b));
		CHECK(virtio_mmio_access(&g_t, out[i].off, b, out[i].len, false, &g_err) == 0);
		for (uint32_t k = 0; k < out[i].len; k++)
			CHECK_MSG(b[k] == 0, "case %zu byte %u = %#x", i, k, b[k]);
	}
	CHECK(g_dev.config_reads == reads);
	/* Config writes are ignored and do not disturb reads. */
	memset(b, 0x11, sizeof(b));
	CHECK(virtio_mmio_access(&g_t, R_CONFIG, b, 4, true, &g_err) == 0);
	CHECK(virtio_mmio_access(&g_t, R_CONFIG, b, 1, false, &g_err) == 0);
	CHECK(b[0] == 0xc0);
	CHECK(rd(R_CONFIG_GENERATION) == 0);
	teardown();
}

static void reset_clears_device(void)
{
	SETUP();
	CHECK(bring_up(VIRTIO_F_VERSION_1 | VIRTIO_RING_F_EVENT_IDX) == 0);
	unsigned resets = g_dev.resets;
	g_dev.complete = true;
	publish_writable(0, 8, 0);
	CHECK(wr(R_QUEUE_NOTIFY, 0) == 0);
	CHECK(rd(R_INTERRUPT_STATUS) == 1);
	wr(R_QUEUE_SEL, 1);

	CHECK(wr(R_STATUS, 0) == 0);
	CHECK(g_dev.resets == resets + 1);
	CHECK(rd(R_STATUS) == 0);
	CHECK(!virtio_mmio_driver_ok(&g_t));
	CHECK(rd(R_INTERRUPT_STATUS) == 0);
	CHECK(g_t.driver_features == 0);
	CHECK(g_t.queue_sel == 0);
	for (unsigned q = 0; q < NQUEUES; q++) {
		wr(R_QUEUE_SEL, q);
		CHECK_MSG(rd(R_QUEUE_READY) == 0, "queue %u still ready", q);
		CHECK(!g_t.vq[q].ready && g_t.vq[q].size == 0 && g_t.vq[q].desc_gpa == 0);
		CHECK(g_t.vq[q].last_avail == 0 && g_t.vq[q].used_idx == 0);
	}
	/* Notifies after the reset do not reach the device. */
	unsigned n = g_dev.notifies;
	CHECK(wr(R_QUEUE_NOTIFY, 0) == 0);
	CHECK(g_dev.notifies == n);
	/* And the driver can bring it up again from scratch. */
	memset(g_buf, 0, MEM_SIZE);
	CHECK(bring_up(VIRTIO_F_VERSION_1) == 0);
	publish_writable(0, 8, 3);
	CHECK(wr(R_QUEUE_NOTIFY, 0) == 0);
	CHECK(used_idx_of(0) == 1);
	teardown();
}

static void used_buffer_signals_irqfd(void)
{
	SETUP();
	CHECK(bring_up(VIRTIO_F_VERSION_1) == 0);
	g_dev.complete = true;
	CHECK(irq_count() == 0);
	publish_writable(1, 8, 2);
	CHECK(wr(R_QUEUE_NOTIFY, 1) == 0);
	CHECK(g_dev.notifies == 1);
	CHECK(used_idx_of(1) == 1);
	CHECK(memcmp(g_buf + DATA_GPA, "done", 4) == 0);
	CHECK(irq_count() == 1);
	CHECK(rd(R_INTERRUPT_STATUS) == 1);
	/* Acknowledged by the driver. */
	wr(R_INTERRUPT_ACK, 1);
	CHECK(rd(R_INTERRUPT_STATUS) == 0);

	/* The driver suppresses interrupts: used ring advances, no signal. */
	uint16_t no_int = VIRTQ_AVAIL_F_NO_INTERRUPT;
	memcpy(g_buf + avail_gpa(1), &no_int, 2);
	publish_writable(1, 8, 2);
	CHECK(wr(R_QUEUE_NOTIFY, 1) == 0);
	CHECK(used_idx_of(1) == 2);
	CHECK(irq_count() == 0);
	CHECK(rd(R_INTERRUPT_STATUS) == 0);

	/* From a device thread, with the lock held as documented. */
	no_int = 0;
	memcpy(g_buf + avail_gpa(1), &no_int, 2);
	pthread_mutex_lock(&g_t.lock);
	virtio_mmio_interrupt(&g_t, 1);
	pthread_mutex_unlock(&g_t.lock);
	CHECK(irq_count() == 1);
	/* An out-of-range queue number raises nothing. */
	pthread_mutex_lock(&g_t.lock);
	virtio_mmio_interrupt(&g_t, VIRTIO_MMIO_MAX_QUEUES);
	virtio_mmio_interrupt(&g_t, 1000);
	pthread_mutex_unlock(&g_t.lock);
	CHECK(irq_count() == 0);
	teardown();
}

/* QueueReady=1 again on a live queue changes nothing: the device's
 * positions in the rings stay, so the used index never goes back and no
 * chain is served twice (found by tests/fuzz/fuzz_blk.c: it restarted the
 * rings at index 0). */
static void queue_ready_again_keeps_positions(void)
{
	SETUP();
	CHECK(bring_up(VIRTIO_F_VERSION_1) == 0);
	g_dev.complete = true;
	publish_writable(1, 8, 2);
	publish_writable(1, 8, 3);
	CHECK(wr(R_QUEUE_NOTIFY, 1) == 0);
	CHECK(wr(R_QUEUE_NOTIFY, 1) == 0);
	CHECK(used_idx_of(1) == 2);
	wr(R_QUEUE_SEL, 1);
	CHECK(wr(R_QUEUE_READY, 1) == 0);
	CHECK(rd(R_QUEUE_READY) == 1);
	CHECK(g_t.vq[1].last_avail == 2 && g_t.vq[1].used_idx == 2);
	CHECK(wr(R_QUEUE_NOTIFY, 1) == 0); /* nothing new: nothing served */
	CHECK(used_idx_of(1) == 2);
	publish_writable(1, 8, 4);
	CHECK(wr(R_QUEUE_NOTIFY, 1) == 0);
	CHECK(used_idx_of(1) == 3);
	teardown();
}

static void event_idx_negotiated_per_queue(void)
{
	SETUP();
	CHECK(bring_up(VIRTIO_F_VERSION_1 | VIRTIO_RING_F_EVENT_IDX) == 0);
	CHECK(g_t.vq[0].event_idx && g_t.vq[1].event_idx);
	g_dev.complete = true;
	/* used_event = 1: the first completion (used idx 0 -> 1) is signalled,
	 * the second (1 -> 2) too since it crosses 1, the third is not. */
	uint16_t ev = 1;
	memcpy(g_buf + avail_gpa(0) + 4 + 2 * 8, &ev, 2);
	publish_writable(0, 8, 0);
	CHECK(wr(R_QUEUE_NOTIFY, 0) == 0);
	CHECK(irq_count() == 1);
	publish_writable(0, 8, 0);
	CHECK(wr(R_QUEUE_NOTIFY, 0) == 0);
	CHECK(irq_count() == 1);
	publish_writable(0, 8, 0);
	CHECK(wr(R_QUEUE_NOTIFY, 0) == 0);
	CHECK(used_idx_of(0) == 3);
	CHECK(irq_count() == 0);

	teardown();
	/* Not negotiated: event_idx stays off. */
	SETUP();
	CHECK(bring_up(VIRTIO_F_VERSION_1) == 0);
	CHECK(!g_t.vq[0].event_idx && !g_t.vq[1].event_idx);
	teardown();
}

static void guest_ring_error_fails_access(void)
{
	SETUP();
	CHECK(bring_up(VIRTIO_F_VERSION_1) == 0);
	g_dev.complete = true;
	/* Head out of range: the pop fails, the access reports it. */
	uint16_t head = 200, idx = 1;
	memcpy(g_buf + avail_gpa(0) + 4, &head, 2);
	memcpy(g_buf + avail_gpa(0) + 2, &idx, 2);
	int rc = wr(R_QUEUE_NOTIFY, 0);
	CHECK(rc == -EINVAL);
	CHECK(g_err.code == -EINVAL && g_err.msg[0] != '\0');
	CHECK(irq_count() == 0);
	teardown();
}

/* --- save and restore ---------------------------------------------- */

/* A second transport of the same device over the same memory, as a
 * clone made from a snapshot would have. */
static struct virtio_mmio g_t2;
static struct fake_dev g_dev2;

static int fresh_transport(void)
{
	memset(&g_dev2, 0, sizeof(g_dev2));
	return virtio_mmio_init(&g_t2, 0xd0000000ull, 5, g_efd, &fake_ops, &g_dev2, &g_mem);
}

/* A transport a driver set up: EVENT_IDX, both queues of size 8, queue 0
 * used twice (positions and the signalled index moved), queue 1 disabled
 * again after setup, selectors moved, an interrupt not acknowledged. */
static int drive_to_saved_state(struct virtio_mmio_state *s)
{
	int rc = bring_up(VIRTIO_F_VERSION_1 | VIRTIO_RING_F_EVENT_IDX | F_DEVICE_BIT3);
	if (rc)
		return rc;
	g_dev.complete = true;
	for (int i = 0; i < 3; i++) {
		publish_writable(0, 8, (uint16_t)i);
		if (wr(R_QUEUE_NOTIFY, 0))
			return -10;
	}
	wr(R_QUEUE_SEL, 1);
	wr(R_QUEUE_READY, 0);
	wr(R_DEVICE_FEATURES_SEL, 1);
	wr(R_DRIVER_FEATURES_SEL, 1);
	virtio_mmio_save(&g_t, s);
	return 0;
}

static void mmio_save_restore_round_trip(void)
{
	SETUP();
	struct virtio_mmio_state s;
	int rc = drive_to_saved_state(&s);
	CHECK_MSG(rc == 0, "drive: %d: %s", rc, g_err.msg);
	/* What was saved. */
	CHECK(s.device_id == 42);
	CHECK(s.status == (S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK));
	CHECK(s.driver_features == (VIRTIO_F_VERSION_1 | VIRTIO_RING_F_EVENT_IDX | F_DEVICE_BIT3));
	CHECK(s.queue_sel == 1 && s.device_features_sel == 1 && s.driver_features_sel == 1);
	CHECK(s.interrupt_status == 1);
	CHECK(s.vq[0].ready && s.vq[0].size == 8 && s.vq[0].desc_gpa == desc_gpa(0));
	CHECK(s.vq[0].avail_gpa == avail_gpa(0) && s.vq[0].used_gpa == used_gpa(0));
	CHECK(s.vq[0].last_avail == 3 && s.vq[0].used_idx == 3 && s.vq[0].event_idx);
	CHECK(s.vq[0].signalled_valid && s.vq[0].signalled_used == g_t.vq[0].signalled_used);
	CHECK(!s.vq[1].ready && s.vq[1].size == 8 && s.vq[1].desc_gpa == desc_gpa(1));
	for (unsigned q = NQUEUES; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		CHECK_MSG(!s.vq[q].ready && s.vq[q].size == 0, "queue %u", q);

	CHECK(fresh_transport() == 0);
	vmp_error_clear(&g_err);
	rc = virtio_mmio_restore(&g_t2, &s, &g_err);
	CHECK_MSG(rc == 0, "restore: %d: %s", rc, g_err.msg);
	/* The transport state is the old one's, field by field. */
	CHECK(g_t2.status == g_t.status && g_t2.driver_features == g_t.driver_features);
	CHECK(g_t2.queue_sel == g_t.queue_sel && g_t2.interrupt_status == g_t.interrupt_status);
	CHECK(g_t2.device_features_sel == g_t.device_features_sel);
	CHECK(g_t2.driver_features_sel == g_t.driver_features_sel);
	CHECK(g_t2.config_generation == g_t.config_generation);
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
		const struct virtq *a = &g_t.vq[q], *b = &g_t2.vq[q];
		CHECK_MSG(a->ready == b->ready && a->size == b->size &&
		              a->desc_gpa == b->desc_gpa && a->avail_gpa == b->avail_gpa &&
		              a->used_gpa == b->used_gpa,
		          "queue %u layout", q);
		if (a->ready)
			CHECK_MSG(a->last_avail == b->last_avail && a->used_idx == b->used_idx &&
			              a->signalled_used == b->signalled_used &&
			              a->signalled_valid == b->signalled_valid &&
			              a->event_idx == b->event_idx && a->desc == b->desc &&
			              a->avail == b->avail && a->used == b->used,
			          "queue %u positions", q);
	}
	struct virtio_mmio_state s2;
	virtio_mmio_save(&g_t2, &s2);
	/* Saved again: the same state, but for what a queue that is not ready
	 * does not use (enabling it starts it afresh). */
	struct virtio_mmio_state s1 = s;
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		if (!s1.vq[q].ready) {
			s1.vq[q].event_idx = s2.vq[q].event_idx;
			s1.vq[q].last_avail = s2.vq[q].last_avail;
			s1.vq[q].used_idx = s2.vq[q].used_idx;
			s1.vq[q].signalled_used = s2.vq[q].signalled_used;
			s1.vq[q].signalled_valid = s2.vq[q].signalled_valid;
		}
	CHECK(memcmp(&s1, &s2, sizeof(s1)) == 0);
	/* The registers, as the driver reads them from the new transport. */
	mmio_driver_attach(&g_t2, &g_err);
	CHECK(rd(R_STATUS) == s.status && rd(R_INTERRUPT_STATUS) == 1);
	CHECK(rd(R_QUEUE_READY) == 0); /* queue 1 is selected */
	wr(R_QUEUE_SEL, 0);
	CHECK(rd(R_QUEUE_READY) == 1 && rd(R_QUEUE_NUM_MAX) == QMAX);
	CHECK(virtio_mmio_driver_ok(&g_t2));
	/* And it carries on where the old one stopped: the next buffer is
	 * the fourth, and the old device is not involved. */
	irq_count();
	wr(R_INTERRUPT_ACK, 1);
	g_dev2.complete = true;
	publish_writable(0, 8, 3);
	CHECK(wr(R_QUEUE_NOTIFY, 0) == 0);
	CHECK(g_dev2.notifies == 1 && g_dev.notifies == 3);
	CHECK(used_idx_of(0) == 4 && g_t2.vq[0].last_avail == 4);
	/* Queue 1 can be enabled again with its old layout. */
	wr(R_QUEUE_SEL, 1);
	CHECK(wr(R_QUEUE_READY, 1) == 0 && g_t2.vq[1].ready);
	mmio_driver_attach(&g_t, &g_err);
	virtio_mmio_destroy(&g_t2);
	teardown();
}

/* A state before any driver: restores to a transport like a new one. */
static void mmio_restore_of_a_fresh_state(void)
{
	SETUP();
	struct virtio_mmio_state s;
	virtio_mmio_save(&g_t, &s);
	CHECK(s.device_id == 42 && s.status == 0 && s.driver_features == 0);
	CHECK(fresh_transport() == 0);
	CHECK(virtio_mmio_restore(&g_t2, &s, &g_err) == 0);
	CHECK(!virtio_mmio_driver_ok(&g_t2) && !g_t2.vq[0].ready);
	/* The driver brings it up as usual. */
	mmio_driver_attach(&g_t2, &g_err);
	CHECK(negotiate(VIRTIO_F_VERSION_1));
	CHECK(setup_queue(0, 8) == 0);
	mmio_driver_attach(&g_t, &g_err);
	virtio_mmio_destroy(&g_t2);
	teardown();
}

static void mmio_restore_rejects_bad_states(void)
{
	SETUP();
	struct virtio_mmio_state good;
	int rc = drive_to_saved_state(&good);
	CHECK_MSG(rc == 0, "drive: %d: %s", rc, g_err.msg);
	struct {
		const char *what;
		struct virtio_mmio_state s;
	} c[24];
	unsigned n = 0;
#define BAD(name, change)                                                                          \
	do {                                                                                       \
		c[n].what = name;                                                                  \
		c[n].s = good;                                                                     \
		struct virtio_mmio_state *s = &c[n++].s;                                           \
		change;                                                                            \
	} while (0)
	BAD("another device", s->device_id = 43);
	BAD("device id 0", s->device_id = 0);
	BAD("desc outside memory", s->vq[0].desc_gpa = MEM_SIZE);
	BAD("avail past the end", s->vq[0].avail_gpa = MEM_SIZE - 8);
	BAD("used far away", s->vq[0].used_gpa = 1ull << 40);
	BAD("desc wraps around", s->vq[0].desc_gpa = ~0ull - 15);
	BAD("desc misaligned", s->vq[0].desc_gpa += 8);
	BAD("used misaligned", s->vq[0].used_gpa += 2);
	BAD("size 0", s->vq[0].size = 0);
	BAD("size above queue_max", s->vq[0].size = QMAX * 2);
	BAD("size 65535", s->vq[0].size = 0xffff);
	BAD("size 48", s->vq[0].size = 48);
	BAD("size 3", s->vq[0].size = 3);
	BAD("size 12", s->vq[0].size = 12);
	BAD("queue past num_queues ready", {
		s->vq[NQUEUES] = s->vq[0];
		s->vq[NQUEUES].ready = 1;
	});
	BAD("last queue ready", {
		s->vq[VIRTIO_MMIO_MAX_QUEUES - 1] = s->vq[0];
		s->vq[VIRTIO_MMIO_MAX_QUEUES - 1].ready = 1;
	});
	BAD("disabled queue made ready with bad rings", {
		s->vq[1].ready = 1;
		s->vq[1].used_gpa = MEM_SIZE - 4;
	});
	BAD("features not offered (bit 5)", s->driver_features |= F_UNOFFERED_BIT5);
	BAD("features not offered (bit 40)", s->driver_features |= F_UNOFFERED_BIT40);
	BAD("all features", s->driver_features = ~0ull);
#undef BAD
	for (unsigned i = 0; i < n; i++) {
		CHECK(fresh_transport() == 0);
		vmp_error_clear(&g_err);
		rc = virtio_mmio_restore(&g_t2, &c[i].s, &g_err);
		CHECK_MSG(rc < 0 && g_err.msg[0], "%s: %d", c[i].what, rc);
		virtio_mmio_destroy(&g_t2);
	}
	/* The control: the good state itself, and sizes that are fine. */
	CHECK(fresh_transport() == 0);
	CHECK_MSG(virtio_mmio_restore(&g_t2, &good, &g_err) == 0, "%s", g_err.msg);
	virtio_mmio_destroy(&g_t2);
	for (uint16_t size = 1; size <= QMAX; size *= 2) {
		struct virtio_mmio_state s = good;
		s.vq[0].size = size;
		CHECK(fresh_transport() == 0);
		CHECK_MSG(virtio_mmio_restore(&g_t2, &s, &g_err) == 0, "size %u: %s", size,
		          g_err.msg);
		virtio_mmio_destroy(&g_t2);
	}
	/* Values the driver may leave anywhere are not errors: a queue
	 * that is not ready may hold any layout, selectors any value. */
	struct virtio_mmio_state s = good;
	s.vq[1].size = 1000;
	s.vq[1].desc_gpa = ~0ull;
	s.vq[5].size = 3;
	s.queue_sel = 0xffffffff;
	s.device_features_sel = 7;
	CHECK(fresh_transport() == 0);
	CHECK_MSG(virtio_mmio_restore(&g_t2, &s, &g_err) == 0, "%s", g_err.msg);
	CHECK(!g_t2.vq[1].ready && !g_t2.vq[5].ready);
	virtio_mmio_destroy(&g_t2);
	teardown();
}

TEST_LIST(T(identification_registers), T(init_rejects_too_many_queues), T(device_features_offered),
          T(feature_negotiation_accepts_subset), T(feature_negotiation_refuses_unoffered),
          T(queue_setup_and_ready), T(queue_high_address_halves),
          T(queue_ready_with_bad_size_fails), T(queue_ready_with_bad_rings_fails),
          T(queue_sel_out_of_range_is_ignored), T(notify_reaches_device),
          T(notify_invalid_queue_is_ignored), T(notify_before_driver_ok_is_ignored),
          T(notify_error_is_returned), T(odd_access_widths_are_ignored), T(config_space_reads),
          T(reset_clears_device), T(used_buffer_signals_irqfd), T(event_idx_negotiated_per_queue),
          T(queue_ready_again_keeps_positions), T(guest_ring_error_fails_access),
          T(mmio_save_restore_round_trip), T(mmio_restore_of_a_fresh_state),
          T(mmio_restore_rejects_bad_states))
