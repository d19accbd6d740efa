/* The single-port virtio-console (the guest's hvc0), driven through the
 * virtio-mmio transport the way a virtio 1.x driver does it: features,
 * both queues, DRIVER_OK, then buffers laid out in a fake guest memory (a
 * calloc'd buffer behind guest_mem_layout) and kicked with QueueNotify.
 * Output goes to a callback that records it; input comes from
 * virtio_console_input. */
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness.h"
#include "mem/guest_mem.h"
#include "mmio_driver.h"
#include "virtio/console.h"
#include "virtio/mmio.h"
#include "virtio/virtqueue.h"

#define MEM_SIZE (1u << 20)
#define QSIZE    16
#define Q_RX     0u
#define Q_TX     1u
#define BUF_GPA  0x80000ull

static uint64_t desc_gpa(unsigned q)
{
	return 0x10000ull + 0x4000ull * q;
}

static uint8_t *g_buf;
static struct guest_mem g_mem;
static struct virtio_mmio g_t;
static struct virtio_console *g_con;
static struct vmp_error g_err;
static int g_efd = -1;
static uint16_t g_next[2];
static char g_out[256];
static size_t g_out_len;

static void out(const void *data, size_t len, void *userdata)
{
	(void)userdata;
	if (g_out_len + len <= sizeof(g_out)) {
		memcpy(g_out + g_out_len, data, len);
		g_out_len += len;
	}
}

static int setup(void)
{
	g_buf = calloc(1, MEM_SIZE);
	g_con = virtio_console_new(out, NULL);
	if (g_efd < 0)
		g_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!g_buf || !g_con || g_efd < 0)
		return -1;
	guest_mem_layout(&g_mem, g_buf, MEM_SIZE);
	vmp_error_clear(&g_err);
	g_out_len = 0;
	memset(g_next, 0, sizeof(g_next));
	if (virtio_mmio_init(&g_t, 0xd0000000ull, 5, g_efd, virtio_console_ops(), g_con, &g_mem))
		return -2;
	mmio_driver_attach(&g_t, &g_err);
	if (!negotiate(VIRTIO_F_VERSION_1))
		return -3;
	for (unsigned q = 0; q < 2; q++)
		if (setup_queue_at(q, QSIZE, desc_gpa(q), desc_gpa(q) + 0x1000,
		                   desc_gpa(q) + 0x2000))
			return -4;
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return virtio_mmio_driver_ok(&g_t) ? 0 : -5;
}

static void teardown(void)
{
	virtio_mmio_destroy(&g_t);
	virtio_console_free(g_con);
	free(g_buf);
	g_buf = NULL;
}

/* One buffer (flags: VIRTQ_DESC_F_*) published on queue q. */
static void publish(unsigned q, uint64_t gpa, uint32_t len, uint16_t flags)
{
	struct virtq_desc d = {.addr = gpa, .len = len, .flags = flags};
	publish_desc(g_buf, desc_gpa(q), desc_gpa(q) + 0x1000, QSIZE, g_next[q]++ % QSIZE, d);
}

static uint16_t used_idx(unsigned q)
{
	uint16_t v;
	memcpy(&v, g_buf + desc_gpa(q) + 0x2002, 2);
	return v;
}

static void input_and_output(void)
{
	CHECK(setup() == 0);
	publish(Q_RX, BUF_GPA, 4, VIRTQ_DESC_F_WRITE);
	publish(Q_RX, BUF_GPA + 0x100, 16, VIRTQ_DESC_F_WRITE);
	CHECK(virtio_console_input(g_con, &g_t, "hello, guest", 12) == 12);
	CHECK(memcmp(g_buf + BUF_GPA, "hell", 4) == 0);
	CHECK(memcmp(g_buf + BUF_GPA + 0x100, "o, guest", 8) == 0);
	CHECK(used_idx(Q_RX) == 2);
	CHECK(virtio_console_input(g_con, &g_t, "more", 4) == 0); /* no buffer left */
	memcpy(g_buf + BUF_GPA + 0x200, "hi host", 7);
	publish(Q_TX, BUF_GPA + 0x200, 7, 0);
	CHECK(wr(R_QUEUE_NOTIFY, Q_TX) == 0);
	CHECK(g_out_len == 7 && memcmp(g_out, "hi host", 7) == 0);
	CHECK(used_idx(Q_TX) == 1);
	teardown();
}

/* A receive buffer the rules forbid (here an indirect descriptor, not
 * negotiated): the host's input takes nothing, and the next notify fails
 * with a message and DEVICE_NEEDS_RESET, so the VMM stops the VM. Found by
 * tests/fuzz/fuzz_mmio.c: the chain used to vanish with the VM going on. */
static void broken_receive_ring_stops_the_vm(void)
{
	CHECK(setup() == 0);
	publish(Q_RX, BUF_GPA, 64, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_INDIRECT);
	publish(Q_RX, BUF_GPA + 0x100, 16, VIRTQ_DESC_F_WRITE);
	CHECK(virtio_console_input(g_con, &g_t, "lost", 4) == 0);
	CHECK(virtio_console_input(g_con, &g_t, "lost", 4) == 0); /* nothing more taken */
	CHECK(used_idx(Q_RX) == 0);
	publish(Q_TX, BUF_GPA + 0x200, 1, 0);
	CHECK(wr(R_QUEUE_NOTIFY, Q_TX) < 0);
	CHECK_MSG(strstr(g_err.msg, "indirect") != NULL, "%s", g_err.msg);
	CHECK(rd(R_STATUS) & S_NEEDS_RESET);
	CHECK(g_out_len == 0);
	teardown();
}

TEST_LIST(T(input_and_output), T(broken_receive_ring_stops_the_vm))
