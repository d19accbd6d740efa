/* virtio-console with VIRTIO_CONSOLE_F_MULTIPORT (virtio 1.x, 5.3),
 * driven through the virtio-mmio transport the way Linux's
 * virtio_console driver does it: features, every queue (port 0 rx=0 tx=1,
 * control rx=2 tx=3, port N rx=2+2N tx=3+2N), DRIVER_OK, then control
 * messages (le32 id, le16 event, le16 value) and data laid out in a fake
 * guest memory (a calloc'd buffer behind guest_mem_layout) and kicked with
 * QueueNotify. The backend records what the device hands it; the
 * interrupt goes to a real eventfd. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "mem/guest_mem.h"
#include "mmio_driver.h"
#include "virtio/mmio.h"
#include "virtio/ports.h"
#include "virtio/virtqueue.h"

/* virtio-console (virtio 1.x, 5.3). */
#define DEVICE_ID_CONSOLE     3
#define CONSOLE_F_SIZE        (1ull << 0)
#define CONSOLE_F_MULTIPORT   (1ull << 1)
#define CONSOLE_F_EMERG_WRITE (1ull << 2)
#define CFG_COLS              0
#define CFG_ROWS              2
#define CFG_MAX_NR_PORTS      4
#define CFG_EMERG_WR          8
#define BAD_ID                0xffffffffu /* what Linux puts in DEVICE_READY */

enum {
	EV_DEVICE_READY = 0,
	EV_PORT_ADD = 1,
	EV_PORT_REMOVE = 2,
	EV_PORT_READY = 3,
	EV_CONSOLE_PORT = 4,
	EV_RESIZE = 5,
	EV_PORT_OPEN = 6,
	EV_PORT_NAME = 7,
};

#define Q_CTRL_RX 2u
#define Q_CTRL_TX 3u
#define MAXQ      (2 + 2 * VIRTIO_PORTS_MAX)

static unsigned q_rx(unsigned port)
{
	return port == 0 ? 0 : 2 + 2 * port;
}
static unsigned q_tx(unsigned port)
{
	return port == 0 ? 1 : 3 + 2 * port;
}

#define MEM_SIZE     (4u << 20)
#define QSIZE        16
#define BUF_SIZE     0x1000u /* each descriptor has a buffer of its own */
#define CTRL_BUF_LEN 64u
#define CANARY       0x5a
#define NAME31       "abcdefghijklmnopqrstuvwxyz01234"

/* Rings of queue q, and the buffer of its descriptor d. */
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
static uint64_t buf_gpa(unsigned q, unsigned d)
{
	return 0x100000ull + 0x10000ull * q + (uint64_t)BUF_SIZE * d;
}

/* --- the backend ---------------------------------------------------- */

struct rec {
	unsigned data_calls, events;
	unsigned last_port;
	bool bad_port, bad_userdata;
	uint8_t data[VIRTIO_PORTS_MAX][8192];
	size_t len[VIRTIO_PORTS_MAX];
};

static struct rec g_rec;

/* A guest on another vCPU that puts buffer head back on queue q every
 * time the device takes it, left more times. */
static struct {
	unsigned q;
	uint16_t head;
	unsigned long left;
} g_republish;
static void republish(void);

static void be_data(void *userdata, unsigned port, const uint8_t *data, size_t len)
{
	struct rec *r = &g_rec;
	if (g_republish.left) {
		g_republish.left--;
		republish();
	}
	if (userdata != &g_rec)
		r->bad_userdata = true;
	r->data_calls++;
	r->last_port = port;
	if (port >= VIRTIO_PORTS_MAX) {
		r->bad_port = true;
		return;
	}
	size_t room = sizeof(r->data[port]) - r->len[port];
	size_t n = len < room ? len : room;
	memcpy(r->data[port] + r->len[port], data, n);
	r->len[port] += n;
}

static void be_event(void *userdata)
{
	if (userdata != &g_rec)
		g_rec.bad_userdata = true;
	__atomic_add_fetch(&g_rec.events, 1, __ATOMIC_RELAXED);
}

static const struct virtio_ports_backend g_be = {.data = be_data, .event = be_event};

static bool got(unsigned port, const void *want, size_t len)
{
	return port < VIRTIO_PORTS_MAX && g_rec.len[port] == len &&
	       memcmp(g_rec.data[port], want, len) == 0;
}

/* --- setup ---------------------------------------------------------- */

static const char *const k_names[VIRTIO_PORTS_MAX] = {"console0", "org.vmproc.ctl", "data", "p3",
                                                      "p4",       "last-port"};
static const bool k_closed[VIRTIO_PORTS_MAX] = {false};

static uint8_t *g_buf;
static struct guest_mem g_mem;
static struct virtio_mmio g_t;
static struct virtio_ports *g_p;
static struct vmp_error g_err;
static int g_efd = -1;
static unsigned g_nports;
static const char *const *g_names;
static const bool *g_host_open;
static uint16_t g_next_desc[MAXQ]; /* next free descriptor */
static uint16_t g_seen[MAXQ];      /* used entries the driver has consumed */

static int setup(unsigned nports, const char *const *names, const bool *host_open)
{
	free(g_buf);
	g_buf = calloc(1, MEM_SIZE);
	if (!g_buf)
		return -1;
	guest_mem_layout(&g_mem, g_buf, MEM_SIZE);
	vmp_error_clear(&g_err);
	memset(&g_rec, 0, sizeof(g_rec));
	memset(g_next_desc, 0, sizeof(g_next_desc));
	memset(g_seen, 0, sizeof(g_seen));
	if (g_efd < 0)
		g_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g_efd < 0)
		return -2;
	uint64_t drain;
	while (read(g_efd, &drain, sizeof(drain)) == sizeof(drain))
		;
	g_nports = nports;
	g_names = names;
	g_host_open = host_open;
	g_p = NULL;
	int rc = virtio_ports_new(&g_p, nports, names, host_open, &g_be, &g_rec);
	if (rc)
		return rc;
	mmio_driver_attach(&g_t, &g_err);
	rc = virtio_mmio_init(&g_t, 0xd0000000ull, 6, g_efd, virtio_ports_ops(g_p), g_p, &g_mem);
	if (rc)
		return rc;
	virtio_ports_attach(g_p, &g_t);
	return 0;
}

static void teardown(void)
{
	if (g_p)
		virtio_ports_detach(g_p);
	virtio_mmio_destroy(&g_t);
	virtio_ports_free(g_p);
	g_p = NULL;
	free(g_buf);
	g_buf = NULL;
}

#define SETUP(n, names, open)                                                                      \
	do {                                                                                       \
		int rc_ = setup(n, names, open);                                                   \
		CHECK_MSG(rc_ == 0, "setup: %d: %s", rc_, g_err.msg);                              \
		if (rc_) {                                                                         \
			teardown();                                                                \
			return;                                                                    \
		}                                                                                  \
	} while (0)

/* --- the transport, as the driver sees it --------------------------- */

static uint64_t cfg(uint32_t off, uint32_t len)
{
	uint8_t b[8];
	memset(b, 0xee, sizeof(b));
	if (virtio_mmio_access(&g_t, R_CONFIG + off, b, len, false, &g_err))
		return 0xdeadbeefull;
	uint64_t v = 0;
	memcpy(&v, b, len);
	return v;
}

static unsigned num_queues(void)
{
	return 2 + 2 * g_nports;
}

/* What Linux negotiates (VERSION_1 and MULTIPORT), every queue with
 * QSIZE entries, DRIVER_OK. Also resets the driver's view of the rings,
 * so it serves again after a device reset. */
static int bring_up(void)
{
	uint64_t f = device_features();
	if (!(f & VIRTIO_F_VERSION_1) || !(f & CONSOLE_F_MULTIPORT))
		return -1;
	if (!negotiate(VIRTIO_F_VERSION_1 | CONSOLE_F_MULTIPORT))
		return -2;
	for (unsigned q = 0; q < num_queues(); q++) {
		memset(g_buf + desc_gpa(q), 0, 0x3000);
		g_next_desc[q] = g_seen[q] = 0;
		wr(R_QUEUE_SEL, q);
		if (rd(R_QUEUE_NUM_MAX) < QSIZE)
			return -3;
		if (setup_queue_at(q, QSIZE, desc_gpa(q), avail_gpa(q), used_gpa(q)))
			return -4;
	}
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return virtio_mmio_driver_ok(&g_t) ? 0 : -5;
}

#define BRING_UP()                                                                                 \
	do {                                                                                       \
		int rc_ = bring_up();                                                              \
		CHECK_MSG(rc_ == 0, "bring_up: %d: %s", rc_, g_err.msg);                           \
		if (rc_) {                                                                         \
			teardown();                                                                \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static int kick(uint32_t q)
{
	return wr(R_QUEUE_NOTIFY, q);
}

static uint64_t irq_count(void)
{
	uint64_t v = 0;
	if (read(g_efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static bool needs_reset(void)
{
	return (rd(R_STATUS) & S_NEEDS_RESET) != 0;
}

/* --- the driver's side of the queues -------------------------------- */

static uint16_t rd16(uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, g_buf + gpa, 2);
	return v;
}
static uint32_t rd32(uint64_t gpa)
{
	uint32_t v;
	memcpy(&v, g_buf + gpa, 4);
	return v;
}
static void wr16(uint64_t gpa, uint16_t v)
{
	memcpy(g_buf + gpa, &v, 2);
}

static uint16_t avail_idx(unsigned q)
{
	return rd16(avail_gpa(q) + 2);
}
static uint16_t used_idx(unsigned q)
{
	return rd16(used_gpa(q) + 2);
}
static uint32_t used_id(unsigned q, unsigned slot)
{
	return rd32(used_gpa(q) + 4 + 8ull * (slot % QSIZE));
}
static uint32_t used_len(unsigned q, unsigned slot)
{
	return rd32(used_gpa(q) + 8 + 8ull * (slot % QSIZE));
}

/* Buffers the driver gave queue q that the device has not returned. */
static unsigned outstanding(unsigned q)
{
	return (uint16_t)(avail_idx(q) - used_idx(q));
}

struct seg {
	uint32_t len;
	bool w;           /* device-writable: filled with CANARY */
	const void *data; /* device-readable: copied in (NULL: zeros) */
	uint64_t gpa;     /* 0: the descriptor's own buffer */
};

/* Chains the segments into free descriptors of queue q and publishes the
 * chain; returns its head. */
static uint16_t publish(unsigned q, const struct seg *s, unsigned n)
{
	uint16_t head = g_next_desc[q];
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % QSIZE);
		uint64_t gpa = s[i].gpa ? s[i].gpa : buf_gpa(q, idx);
		if (!s[i].gpa && s[i].len <= BUF_SIZE) {
			if (s[i].w)
				memset(g_buf + gpa, CANARY, BUF_SIZE);
			else if (s[i].data)
				memcpy(g_buf + gpa, s[i].data, s[i].len);
			else
				memset(g_buf + gpa, 0, s[i].len);
		}
		struct virtq_desc d = {
		    .addr = gpa,
		    .len = s[i].len,
		    .flags = (uint16_t)((s[i].w ? VIRTQ_DESC_F_WRITE : 0) |
		                        (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
		    .next = (uint16_t)((idx + 1) % QSIZE),
		};
		memcpy(g_buf + desc_gpa(q) + 16ull * idx, &d, sizeof(d));
	}
	g_next_desc[q] = (uint16_t)((head + n) % QSIZE);
	uint16_t idx = avail_idx(q);
	wr16(avail_gpa(q) + 4 + 2ull * (idx % QSIZE), head);
	wr16(avail_gpa(q) + 2, (uint16_t)(idx + 1));
	return head;
}

/* One device-readable buffer holding data. */
static uint16_t post_out(unsigned q, const void *data, uint32_t len)
{
	struct seg s = {.len = len, .data = data};
	return publish(q, &s, 1);
}

static void republish(void)
{
	unsigned q = g_republish.q;
	uint16_t idx = rd16(avail_gpa(q) + 2);
	wr16(avail_gpa(q) + 4 + 2u * (idx % QSIZE), g_republish.head);
	wr16(avail_gpa(q) + 2, (uint16_t)(idx + 1));
}

/* One device-writable buffer of len bytes. */
static uint16_t post_in(unsigned q, uint32_t len)
{
	struct seg s = {.len = len, .w = true};
	return publish(q, &s, 1);
}

/* The next used entry of q the driver has not looked at. */
static bool next_used(unsigned q, uint32_t *id, uint32_t *len)
{
	if (g_seen[q] == used_idx(q))
		return false;
	*id = used_id(q, g_seen[q]);
	*len = used_len(q, g_seen[q]);
	g_seen[q]++;
	return true;
}

/* --- control messages ------------------------------------------------ */

static void put_ctrl(uint8_t *b, uint32_t id, uint16_t event, uint16_t value)
{
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(id >> (8 * i));
	b[4] = (uint8_t)event;
	b[5] = (uint8_t)(event >> 8);
	b[6] = (uint8_t)value;
	b[7] = (uint8_t)(value >> 8);
}

/* Sends one control message on the control transmit queue, as Linux's
 * send_control_msg does (one 8-byte buffer, kick), and checks the device
 * returned the buffer. */
static int ctrl_send(uint32_t id, uint16_t event, uint16_t value)
{
	uint8_t b[8];
	put_ctrl(b, id, event, value);
	uint16_t head = post_out(Q_CTRL_TX, b, sizeof(b));
	int rc = wr(R_QUEUE_NOTIFY, Q_CTRL_TX);
	uint32_t uid = 0, ulen = 0;
	if (rc == 0) {
		CHECK_MSG(next_used(Q_CTRL_TX, &uid, &ulen) && uid == head && ulen == 0,
		          "control tx buffer not returned (id %u len %u head %u)", uid, ulen, head);
	}
	return rc;
}

static void post_ctrl_bufs(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		post_in(Q_CTRL_RX, CTRL_BUF_LEN);
}

struct cmsg {
	uint32_t id;
	uint16_t event, value;
	uint32_t len;
	uint64_t gpa;
	char name[CTRL_BUF_LEN + 1];
};

/* The next control message the device put in the control receive queue. */
static bool next_ctrl(struct cmsg *m)
{
	memset(m, 0, sizeof(*m));
	uint32_t head, len;
	if (!next_used(Q_CTRL_RX, &head, &len))
		return false;
	m->gpa = buf_gpa(Q_CTRL_RX, head % QSIZE);
	m->len = len;
	m->id = rd32(m->gpa);
	m->event = rd16(m->gpa + 4);
	m->value = rd16(m->gpa + 6);
	if (len > 8 && len <= CTRL_BUF_LEN)
		memcpy(m->name, g_buf + m->gpa + 8, len - 8);
	return true;
}

static void expect_ctrl_at(int line, uint32_t id, uint16_t event, uint16_t value)
{
	struct cmsg m;
	bool ok = next_ctrl(&m);
	CHECK_MSG(ok, "line %d: no control message, want (%u,%u,%u)", line, id, event, value);
	if (!ok)
		return;
	CHECK_MSG(m.id == id && m.event == event && m.value == value && m.len == 8,
	          "line %d: got (%u,%u,%u) len %u, want (%u,%u,%u) len 8", line, m.id, m.event,
	          m.value, m.len, id, event, value);
	CHECK_MSG(g_buf[m.gpa + 8] == CANARY, "line %d: wrote past the message", line);
}
#define EXPECT_CTRL(id, ev, val) expect_ctrl_at(__LINE__, id, ev, val)

static void expect_name_at(int line, uint32_t id, const char *name)
{
	struct cmsg m;
	bool ok = next_ctrl(&m);
	CHECK_MSG(ok, "line %d: no control message, want PORT_NAME(%u)", line, id);
	if (!ok)
		return;
	size_t n = strlen(name);
	CHECK_MSG(m.id == id && m.event == EV_PORT_NAME, "line %d: got (%u,%u,%u), want name of %u",
	          line, m.id, m.event, m.value, id);
	CHECK_MSG(m.len == 8 + n, "line %d: used len %u, want %zu", line, m.len, 8 + n);
	CHECK_MSG(memcmp(g_buf + m.gpa + 8, name, n) == 0, "line %d: name \"%.*s\", want \"%s\"",
	          line, (int)n, (const char *)g_buf + m.gpa + 8, name);
	CHECK_MSG(g_buf[m.gpa + 8 + n] == CANARY, "line %d: wrote past the name", line);
}
#define EXPECT_NAME(id, name) expect_name_at(__LINE__, id, name)

static void expect_no_ctrl_at(int line)
{
	struct cmsg m;
	bool extra = next_ctrl(&m);
	CHECK_MSG(!extra, "line %d: unexpected control message (%u,%u,%u) len %u", line, m.id,
	          m.event, m.value, m.len);
}
#define EXPECT_NO_CTRL() expect_no_ctrl_at(__LINE__)

/* The whole handshake of Linux's driver: DEVICE_READY, a PORT_ADD per
 * port, PORT_READY per port answered by PORT_NAME and, for ports created
 * host-open, PORT_OPEN(1). Gives exactly the control receive buffers
 * needed, so none is left over. */
static void handshake_at(int line)
{
	post_ctrl_bufs(g_nports);
	CHECK_MSG(ctrl_send(BAD_ID, EV_DEVICE_READY, 1) == 0, "line %d: %s", line, g_err.msg);
	for (unsigned i = 0; i < g_nports; i++)
		expect_ctrl_at(line, i, EV_PORT_ADD, 0);
	for (unsigned i = 0; i < g_nports; i++) {
		post_ctrl_bufs(g_host_open[i] ? 2 : 1);
		CHECK_MSG(ctrl_send(i, EV_PORT_READY, 1) == 0, "line %d: %s", line, g_err.msg);
		expect_name_at(line, i, g_names[i]);
		if (g_host_open[i])
			expect_ctrl_at(line, i, EV_PORT_OPEN, 1);
	}
	expect_no_ctrl_at(line);
	CHECK_MSG(outstanding(Q_CTRL_RX) == 0, "line %d: %u control buffers left", line,
	          outstanding(Q_CTRL_RX));
}
#define HANDSHAKE() handshake_at(__LINE__)

/* ------------------------------------------------------------------ */

static void new_rejects_bad_arguments(void)
{
	static const char *const names[VIRTIO_PORTS_MAX + 1] = {"a", "b", "c", "d", "e", "f", "g"};
	static const bool open[VIRTIO_PORTS_MAX + 1] = {false};
	struct virtio_ports *p = NULL;
	CHECK(virtio_ports_new(&p, 0, names, open, &g_be, NULL) == -EINVAL);
	CHECK(virtio_ports_new(&p, VIRTIO_PORTS_MAX + 1, names, open, &g_be, NULL) == -EINVAL);
	CHECK(virtio_ports_new(&p, 1, names, open, NULL, NULL) == -EINVAL);
	static const char *const long_name[1] = {NAME31 "5"};
	CHECK(virtio_ports_new(&p, 1, long_name, open, &g_be, NULL) == -ENAMETOOLONG);
	static const char *const second_long[2] = {"ok", NAME31 "56789"};
	CHECK(virtio_ports_new(&p, 2, second_long, open, &g_be, NULL) == -ENAMETOOLONG);
	CHECK(p == NULL);

	/* The longest name and the most ports are fine. */
	static const char *const max_name[1] = {NAME31};
	CHECK(virtio_ports_new(&p, 1, max_name, open, &g_be, NULL) == 0 && p);
	virtio_ports_free(p);
	p = NULL;
	CHECK(virtio_ports_new(&p, VIRTIO_PORTS_MAX, names, open, &g_be, NULL) == 0 && p);
	if (!p)
		return;
	const struct virtio_device_ops *ops = virtio_ports_ops(p);
	CHECK(ops->device_id == DEVICE_ID_CONSOLE);
	CHECK(ops->num_queues == 2 + 2 * VIRTIO_PORTS_MAX);
	CHECK(ops->num_queues <= VIRTIO_MMIO_MAX_QUEUES);

	/* Not attached yet: nothing to send to, host state is just kept. */
	CHECK(virtio_ports_send(p, 0, "x", 1) == -EPIPE);
	CHECK(virtio_ports_set_host_open(p, 0, true) == 0);
	CHECK(!virtio_ports_guest_open(p, 0));
	/* Ports out of range. */
	CHECK(virtio_ports_send(p, VIRTIO_PORTS_MAX, "x", 1) == -EINVAL);
	CHECK(virtio_ports_set_host_open(p, VIRTIO_PORTS_MAX, true) == -EINVAL);
	CHECK(virtio_ports_set_host_open(p, 1000000, false) == -EINVAL);
	CHECK(!virtio_ports_guest_open(p, VIRTIO_PORTS_MAX));
	virtio_ports_free(p);
	virtio_ports_free(NULL);
}

static void features_and_config(void)
{
	static const unsigned counts[] = {1, 3, VIRTIO_PORTS_MAX};
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		unsigned n = counts[k];
		SETUP(n, k_names, k_closed);
		CHECK(rd(R_DEVICE_ID) == DEVICE_ID_CONSOLE);
		uint64_t f = device_features();
		CHECK_MSG((f & CONSOLE_F_MULTIPORT) && (f & VIRTIO_F_VERSION_1),
		          "%u ports: features 0x%llx", n, (unsigned long long)f);
		/* No size and no emergency write: those fields read 0. */
		CHECK((f & (CONSOLE_F_SIZE | CONSOLE_F_EMERG_WRITE)) == 0);
		CHECK_MSG(cfg(CFG_MAX_NR_PORTS, 4) == n, "%u ports: max_nr_ports %llu", n,
		          (unsigned long long)cfg(CFG_MAX_NR_PORTS, 4));
		CHECK(cfg(CFG_COLS, 2) == 0 && cfg(CFG_ROWS, 2) == 0);
		CHECK(cfg(CFG_COLS, 4) == 0);
		CHECK(cfg(CFG_EMERG_WR, 4) == 0);
		/* Other widths: one 8-byte read, single bytes. */
		CHECK(cfg(0, 8) == (uint64_t)n << 32);
		CHECK(cfg(CFG_MAX_NR_PORTS, 1) == n && cfg(CFG_MAX_NR_PORTS + 1, 1) == 0);
		CHECK(cfg(CFG_MAX_NR_PORTS, 2) == n && cfg(CFG_MAX_NR_PORTS + 2, 2) == 0);
		/* Past the config space. */
		CHECK(cfg(12, 4) == 0 && cfg(10, 4) == 0);
		/* Every queue exists, and no more. */
		for (unsigned q = 0; q < 2 + 2 * n; q++) {
			wr(R_QUEUE_SEL, q);
			CHECK_MSG(rd(R_QUEUE_NUM_MAX) >= QSIZE, "%u ports: queue %u max %u", n, q,
			          rd(R_QUEUE_NUM_MAX));
		}
		wr(R_QUEUE_SEL, 2 + 2 * n);
		CHECK(rd(R_QUEUE_NUM_MAX) == 0);
		CHECK(negotiate(VIRTIO_F_VERSION_1 | CONSOLE_F_MULTIPORT));
		CHECK(!negotiate(VIRTIO_F_VERSION_1 | CONSOLE_F_MULTIPORT | CONSOLE_F_SIZE));
		teardown();
	}
}

static void device_ready_adds_every_port(void)
{
	SETUP(3, k_names, k_closed);
	BRING_UP();
	irq_count();
	post_ctrl_bufs(4);
	CHECK(ctrl_send(BAD_ID, EV_DEVICE_READY, 1) == 0);
	EXPECT_CTRL(0, EV_PORT_ADD, 0);
	EXPECT_CTRL(1, EV_PORT_ADD, 0);
	EXPECT_CTRL(2, EV_PORT_ADD, 0);
	EXPECT_NO_CTRL();
	CHECK(outstanding(Q_CTRL_RX) == 1);
	CHECK(irq_count() >= 1);
	CHECK(rd(R_INTERRUPT_STATUS) & 1);
	wr(R_INTERRUPT_ACK, 1);
	/* The driver giving up on the device: nothing to add. */
	CHECK(ctrl_send(BAD_ID, EV_DEVICE_READY, 0) == 0);
	EXPECT_NO_CTRL();
	CHECK(outstanding(Q_CTRL_RX) == 1);
	/* Nothing else happened to the ports. */
	for (unsigned i = 0; i < 3; i++)
		CHECK(!virtio_ports_guest_open(g_p, i));
	CHECK(g_rec.data_calls == 0 && !g_rec.bad_userdata);
	CHECK(!needs_reset());
	teardown();
}

static void messages_wait_for_control_buffers(void)
{
	SETUP(VIRTIO_PORTS_MAX, k_names, k_closed);
	BRING_UP();
	/* DEVICE_READY with no control receive buffer: the adds wait. */
	CHECK(ctrl_send(BAD_ID, EV_DEVICE_READY, 1) == 0);
	EXPECT_NO_CTRL();
	CHECK(used_idx(Q_CTRL_RX) == 0);
	/* A buffer the device is not told about is not used yet. */
	post_ctrl_bufs(1);
	EXPECT_NO_CTRL();
	irq_count();
	CHECK(kick(Q_CTRL_RX) == 0);
	EXPECT_CTRL(0, EV_PORT_ADD, 0);
	EXPECT_NO_CTRL();
	CHECK(irq_count() >= 1);
	post_ctrl_bufs(2);
	CHECK(kick(Q_CTRL_RX) == 0);
	EXPECT_CTRL(1, EV_PORT_ADD, 0);
	EXPECT_CTRL(2, EV_PORT_ADD, 0);
	EXPECT_NO_CTRL();
	/* More buffers than messages: the rest stays with the device. */
	post_ctrl_bufs(10);
	CHECK(kick(Q_CTRL_RX) == 0);
	for (unsigned i = 3; i < VIRTIO_PORTS_MAX; i++)
		EXPECT_CTRL(i, EV_PORT_ADD, 0);
	EXPECT_NO_CTRL();
	CHECK(outstanding(Q_CTRL_RX) == 10 - (VIRTIO_PORTS_MAX - 3));
	/* A notify with nothing pending is harmless. */
	CHECK(kick(Q_CTRL_RX) == 0);
	EXPECT_NO_CTRL();
	/* The buffers left over serve the next messages at once. */
	CHECK(ctrl_send(4, EV_PORT_READY, 1) == 0);
	EXPECT_NAME(4, k_names[4]);
	EXPECT_NO_CTRL();
	CHECK(!needs_reset());
	teardown();
}

static void port_ready_sends_name_then_open(void)
{
	static const char *const names[4] = {"console0", "b", NAME31, ""};
	static const bool open[4] = {true, false, true, false};
	SETUP(4, names, open);
	BRING_UP();
	post_ctrl_bufs(QSIZE);
	CHECK(ctrl_send(BAD_ID, EV_DEVICE_READY, 1) == 0);
	for (unsigned i = 0; i < 4; i++)
		EXPECT_CTRL(i, EV_PORT_ADD, 0);
	EXPECT_NO_CTRL();

	CHECK(ctrl_send(0, EV_PORT_READY, 1) == 0);
	EXPECT_NAME(0, "console0");
	EXPECT_CTRL(0, EV_PORT_OPEN, 1);
	EXPECT_NO_CTRL();

	/* PORT_READY(0): the guest failed to add the port. Nothing, and a
	 * later PORT_READY(1) is still answered. */
	CHECK(ctrl_send(1, EV_PORT_READY, 0) == 0);
	EXPECT_NO_CTRL();
	CHECK(ctrl_send(1, EV_PORT_READY, 1) == 0);
	EXPECT_NAME(1, "b");
	EXPECT_NO_CTRL(); /* host side closed: no PORT_OPEN */

	CHECK(ctrl_send(2, EV_PORT_READY, 1) == 0);
	EXPECT_NAME(2, NAME31);
	EXPECT_CTRL(2, EV_PORT_OPEN, 1);
	EXPECT_NO_CTRL();

	CHECK(ctrl_send(3, EV_PORT_READY, 1) == 0);
	EXPECT_NAME(3, "");
	EXPECT_NO_CTRL();

	/* A repeated PORT_READY is not answered twice. */
	CHECK(ctrl_send(0, EV_PORT_READY, 1) == 0);
	CHECK(ctrl_send(1, EV_PORT_READY, 1) == 0);
	EXPECT_NO_CTRL();
	/* The guest opening a port is not answered on the control queue. */
	CHECK(ctrl_send(0, EV_PORT_OPEN, 1) == 0);
	EXPECT_NO_CTRL();
	CHECK(g_rec.data_calls == 0);
	CHECK(!needs_reset());
	teardown();

	/* The same with the handshake helper and every port host-open. */
	static const bool all_open[VIRTIO_PORTS_MAX] = {true, true, true, true, true, true};
	SETUP(VIRTIO_PORTS_MAX, k_names, all_open);
	BRING_UP();
	HANDSHAKE();
	teardown();
}

static void guest_open_state_and_event(void)
{
	SETUP(2, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	CHECK(!virtio_ports_guest_open(g_p, 0) && !virtio_ports_guest_open(g_p, 1));
	unsigned ev = g_rec.events;
	CHECK(ctrl_send(1, EV_PORT_OPEN, 1) == 0);
	CHECK(virtio_ports_guest_open(g_p, 1));
	CHECK(!virtio_ports_guest_open(g_p, 0));
	CHECK(g_rec.events == ev + 1);
	CHECK(ctrl_send(0, EV_PORT_OPEN, 1) == 0);
	CHECK(virtio_ports_guest_open(g_p, 0) && virtio_ports_guest_open(g_p, 1));
	CHECK(g_rec.events == ev + 2);
	CHECK(ctrl_send(1, EV_PORT_OPEN, 0) == 0);
	CHECK(!virtio_ports_guest_open(g_p, 1));
	CHECK(virtio_ports_guest_open(g_p, 0));
	CHECK(g_rec.events == ev + 3);
	/* Closing twice is fine. */
	CHECK(ctrl_send(1, EV_PORT_OPEN, 0) == 0);
	CHECK(!virtio_ports_guest_open(g_p, 1));
	CHECK(ctrl_send(0, EV_PORT_OPEN, 0) == 0);
	CHECK(!virtio_ports_guest_open(g_p, 0));
	CHECK(!virtio_ports_guest_open(g_p, 2));
	CHECK(!virtio_ports_guest_open(g_p, UINT32_MAX));
	CHECK(!g_rec.bad_userdata && g_rec.data_calls == 0);
	EXPECT_NO_CTRL();
	teardown();
}

static void guest_writes_reach_the_backend(void)
{
	SETUP(3, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	irq_count();

	/* One buffer on port 1. */
	uint16_t h = post_out(q_tx(1), "hello", 5);
	CHECK(kick(q_tx(1)) == 0);
	CHECK(got(1, "hello", 5));
	CHECK(g_rec.data_calls == 1 && g_rec.last_port == 1);
	CHECK(g_rec.len[0] == 0 && g_rec.len[2] == 0);
	CHECK(used_idx(q_tx(1)) == 1 && used_id(q_tx(1), 0) == h && used_len(q_tx(1), 0) == 0);
	CHECK(irq_count() >= 1);

	/* A zero-length buffer: nothing for the backend, returned all the
	 * same. */
	h = post_out(q_tx(2), NULL, 0);
	CHECK(kick(q_tx(2)) == 0);
	CHECK(g_rec.len[2] == 0);
	CHECK(used_idx(q_tx(2)) == 1 && used_id(q_tx(2), 0) == h);
	/* A chain of three buffers on port 2: the bytes in order, the chain
	 * returned once by its head. */
	struct seg s[3] = {
	    {.len = 3, .data = "abc"}, {.len = 5, .data = "defgh"}, {.len = 2, .data = "ij"}};
	h = publish(q_tx(2), s, 3);
	CHECK(kick(q_tx(2)) == 0);
	CHECK(got(2, "abcdefghij", 10));
	CHECK(g_rec.last_port == 2);
	CHECK(used_idx(q_tx(2)) == 2 && used_id(q_tx(2), 1) == h && used_len(q_tx(2), 1) == 0);

	/* Port 0 uses queue 1. */
	h = post_out(q_tx(0), "zero", 4);
	CHECK(kick(q_tx(0)) == 0);
	CHECK(got(0, "zero", 4) && g_rec.last_port == 0);
	CHECK(used_idx(q_tx(0)) == 1 && used_id(q_tx(0), 0) == h);

	/* Several chains before one notify: served in order. */
	uint16_t h1 = post_out(q_tx(1), " world", 6);
	uint16_t h2 = publish(q_tx(1), s, 2);
	uint16_t h3 = post_out(q_tx(1), "!", 1);
	CHECK(kick(q_tx(1)) == 0);
	CHECK(got(1, "hello worldabcdefgh!", 20));
	CHECK(used_idx(q_tx(1)) == 4);
	CHECK(used_id(q_tx(1), 1) == h1 && used_id(q_tx(1), 2) == h2 && used_id(q_tx(1), 3) == h3);

	/* A large buffer arrives whole. */
	uint8_t big[BUF_SIZE];
	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 1);
	post_out(q_tx(2), big, sizeof(big));
	CHECK(kick(q_tx(2)) == 0);
	CHECK(g_rec.len[2] == 10 + sizeof(big) &&
	      memcmp(g_rec.data[2] + 10, big, sizeof(big)) == 0);

	/* A notify with nothing new is harmless. */
	unsigned calls = g_rec.data_calls;
	CHECK(kick(q_tx(1)) == 0);
	CHECK(g_rec.data_calls == calls && used_idx(q_tx(1)) == 4);
	CHECK(!g_rec.bad_port && !g_rec.bad_userdata);
	/* None of this touched the receive queues or the control queue. */
	CHECK(used_idx(q_rx(0)) == 0 && used_idx(q_rx(1)) == 0 && used_idx(q_rx(2)) == 0);
	EXPECT_NO_CTRL();
	CHECK(!needs_reset());
	teardown();
}

/* Checks used entry slot of q: the chain with head h, n bytes long, and
 * its bytes (a single buffer) equal want and are followed by CANARY. */
static void expect_rx_at(int line, unsigned q, unsigned slot, uint16_t h, const void *want,
                         uint32_t n)
{
	CHECK_MSG(used_idx(q) > slot, "line %d: queue %u slot %u not used", line, q, slot);
	CHECK_MSG(used_id(q, slot) == h && used_len(q, slot) == n,
	          "line %d: queue %u slot %u: id %u len %u, want %u %u", line, q, slot,
	          used_id(q, slot), used_len(q, slot), h, n);
	CHECK_MSG(memcmp(g_buf + buf_gpa(q, h), want, n) == 0, "line %d: data differs", line);
	CHECK_MSG(g_buf[buf_gpa(q, h) + n] == CANARY, "line %d: wrote past the data", line);
}
#define EXPECT_RX(q, slot, h, want, n) expect_rx_at(__LINE__, q, slot, h, want, n)

static void send_fills_receive_buffers(void)
{
	SETUP(3, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	uint8_t src[256];
	for (unsigned i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(0x30 + i % 61);
	unsigned q = q_rx(2);

	/* The guest has not opened the port: nothing taken, buffers kept. */
	uint16_t h0 = post_in(q, 16);
	CHECK(virtio_ports_send(g_p, 2, src, 40) == 0);
	CHECK(used_idx(q) == 0);
	CHECK(ctrl_send(2, EV_PORT_OPEN, 1) == 0);
	irq_count();

	/* 40 bytes over three 16-byte buffers. */
	uint16_t h1 = post_in(q, 16);
	uint16_t h2 = post_in(q, 16);
	CHECK(virtio_ports_send(g_p, 2, src, 40) == 40);
	CHECK(used_idx(q) == 3);
	EXPECT_RX(q, 0, h0, src, 16);
	EXPECT_RX(q, 1, h1, src + 16, 16);
	EXPECT_RX(q, 2, h2, src + 32, 8);
	CHECK(irq_count() >= 1);

	/* No buffer left: 0. */
	CHECK(virtio_ports_send(g_p, 2, src, 10) == 0);
	CHECK(used_idx(q) == 3);
	/* Nothing to send: no buffer taken. */
	post_in(q, 16);
	CHECK(virtio_ports_send(g_p, 2, src, 0) == 0);
	CHECK(used_idx(q) == 3);

	/* More data than room: what fits. The buffer posted above, then a
	 * two-buffer chain (one used entry for 10 + 6 bytes). */
	struct seg two[2] = {{.len = 10, .w = true}, {.len = 6, .w = true}};
	uint16_t hc = publish(q, two, 2);
	CHECK(virtio_ports_send(g_p, 2, src, 100) == 32);
	CHECK(used_idx(q) == 5);
	CHECK(used_len(q, 3) == 16 && memcmp(g_buf + buf_gpa(q, used_id(q, 3)), src, 16) == 0);
	CHECK(used_id(q, 4) == hc && used_len(q, 4) == 16);
	CHECK(memcmp(g_buf + buf_gpa(q, hc), src + 16, 10) == 0);
	CHECK(g_buf[buf_gpa(q, hc) + 10] == CANARY);
	CHECK(memcmp(g_buf + buf_gpa(q, (hc + 1) % QSIZE), src + 26, 6) == 0);
	CHECK(g_buf[buf_gpa(q, (hc + 1) % QSIZE) + 6] == CANARY);

	/* Less data than one buffer: one used entry with what was sent. */
	uint16_t h5 = post_in(q, 64);
	post_in(q, 64);
	CHECK(virtio_ports_send(g_p, 2, "ping", 4) == 4);
	CHECK(used_idx(q) == 6);
	EXPECT_RX(q, 5, h5, "ping", 4);
	CHECK(outstanding(q) == 1);

	/* Other ports and their queues are untouched. */
	CHECK(used_idx(q_rx(0)) == 0 && used_idx(q_rx(1)) == 0);
	post_in(q_rx(1), 16);
	CHECK(virtio_ports_send(g_p, 1, src, 8) == 0); /* port 1 not opened */
	CHECK(used_idx(q_rx(1)) == 0);
	CHECK(virtio_ports_send(g_p, 3, src, 8) == -EINVAL);
	CHECK(virtio_ports_send(g_p, UINT32_MAX, src, 8) == -EINVAL);

	/* The guest closes the port: nothing taken any more. */
	CHECK(ctrl_send(2, EV_PORT_OPEN, 0) == 0);
	CHECK(virtio_ports_send(g_p, 2, src, 8) == 0);
	CHECK(used_idx(q) == 6 && outstanding(q) == 1);
	CHECK(g_rec.data_calls == 0);
	CHECK(!needs_reset());
	teardown();
}

static void send_needs_driver_ok(void)
{
	SETUP(1, k_names, k_closed);
	/* Attached, but the driver has not even started. */
	CHECK(virtio_ports_send(g_p, 0, "x", 1) == 0);
	CHECK(!virtio_ports_guest_open(g_p, 0));
	CHECK(virtio_ports_set_host_open(g_p, 0, true) == 0);
	BRING_UP();
	/* Created closed, opened before the guest was ready: the guest
	 * learns it at PORT_READY. */
	post_ctrl_bufs(3);
	CHECK(ctrl_send(BAD_ID, EV_DEVICE_READY, 1) == 0);
	EXPECT_CTRL(0, EV_PORT_ADD, 0);
	CHECK(ctrl_send(0, EV_PORT_READY, 1) == 0);
	EXPECT_NAME(0, k_names[0]);
	EXPECT_CTRL(0, EV_PORT_OPEN, 1);
	EXPECT_NO_CTRL();
	teardown();
}

static void send_after_detach_is_epipe(void)
{
	SETUP(2, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	CHECK(ctrl_send(0, EV_PORT_OPEN, 1) == 0);
	uint16_t h = post_in(q_rx(0), 32);
	CHECK(virtio_ports_send(g_p, 0, "before", 6) == 6);
	EXPECT_RX(q_rx(0), 0, h, "before", 6);
	post_in(q_rx(0), 32);
	virtio_ports_detach(g_p);
	CHECK(virtio_ports_send(g_p, 0, "after", 5) == -EPIPE);
	CHECK(virtio_ports_send(g_p, 1, "after", 5) == -EPIPE);
	CHECK(virtio_ports_send(g_p, 0, "", 0) == -EPIPE);
	CHECK(used_idx(q_rx(0)) == 1);
	CHECK(!virtio_ports_guest_open(g_p, 0));
	/* Host state is kept, no message goes out. */
	CHECK(virtio_ports_set_host_open(g_p, 0, true) == 0);
	CHECK(used_idx(Q_CTRL_RX) == g_seen[Q_CTRL_RX]);
	/* Detaching twice is fine. */
	virtio_ports_detach(g_p);
	CHECK(virtio_ports_send(g_p, 0, "x", 1) == -EPIPE);
	teardown();
}

static void host_open_changes_are_sent(void)
{
	static const bool open[2] = {false, true};
	SETUP(2, k_names, open);
	BRING_UP();
	post_ctrl_bufs(2);
	CHECK(ctrl_send(BAD_ID, EV_DEVICE_READY, 1) == 0);
	EXPECT_CTRL(0, EV_PORT_ADD, 0);
	EXPECT_CTRL(1, EV_PORT_ADD, 0);
	post_ctrl_bufs(8);
	/* Before PORT_READY nothing is sent: the state goes out with it. */
	CHECK(virtio_ports_set_host_open(g_p, 0, true) == 0);
	CHECK(virtio_ports_set_host_open(g_p, 1, false) == 0);
	EXPECT_NO_CTRL();
	CHECK(ctrl_send(0, EV_PORT_READY, 1) == 0);
	EXPECT_NAME(0, k_names[0]);
	EXPECT_CTRL(0, EV_PORT_OPEN, 1);
	CHECK(ctrl_send(1, EV_PORT_READY, 1) == 0);
	EXPECT_NAME(1, k_names[1]);
	EXPECT_NO_CTRL();

	/* After PORT_READY every change goes out at once, repeats do not. */
	irq_count();
	CHECK(virtio_ports_set_host_open(g_p, 0, false) == 0);
	EXPECT_CTRL(0, EV_PORT_OPEN, 0);
	CHECK(irq_count() >= 1);
	CHECK(virtio_ports_set_host_open(g_p, 0, false) == 0);
	EXPECT_NO_CTRL();
	CHECK(virtio_ports_set_host_open(g_p, 1, true) == 0);
	EXPECT_CTRL(1, EV_PORT_OPEN, 1);
	CHECK(virtio_ports_set_host_open(g_p, 1, true) == 0);
	EXPECT_NO_CTRL();
	CHECK(outstanding(Q_CTRL_RX) == 3);

	/* Use up the buffers, then changes wait for new ones. */
	CHECK(virtio_ports_set_host_open(g_p, 0, true) == 0);
	CHECK(virtio_ports_set_host_open(g_p, 0, false) == 0);
	CHECK(virtio_ports_set_host_open(g_p, 0, true) == 0);
	EXPECT_CTRL(0, EV_PORT_OPEN, 1);
	EXPECT_CTRL(0, EV_PORT_OPEN, 0);
	EXPECT_CTRL(0, EV_PORT_OPEN, 1);
	CHECK(outstanding(Q_CTRL_RX) == 0);
	CHECK(virtio_ports_set_host_open(g_p, 1, false) == 0);
	CHECK(virtio_ports_set_host_open(g_p, 0, false) == 0);
	CHECK(virtio_ports_set_host_open(g_p, 1, true) == 0);
	EXPECT_NO_CTRL();
	post_ctrl_bufs(1);
	EXPECT_NO_CTRL(); /* not until the driver notifies */
	CHECK(kick(Q_CTRL_RX) == 0);
	/* Port 1's close and reopen merged into its newest state. */
	EXPECT_CTRL(1, EV_PORT_OPEN, 1);
	EXPECT_NO_CTRL();
	post_ctrl_bufs(4);
	CHECK(kick(Q_CTRL_RX) == 0);
	EXPECT_CTRL(0, EV_PORT_OPEN, 0);
	EXPECT_NO_CTRL();
	CHECK(outstanding(Q_CTRL_RX) == 3);

	/* Pending messages also go out when a host change finds buffers
	 * (port 0 is closed, port 1 open here; 3 buffers left). */
	CHECK(virtio_ports_set_host_open(g_p, 0, true) == 0);
	CHECK(virtio_ports_set_host_open(g_p, 1, false) == 0);
	CHECK(virtio_ports_set_host_open(g_p, 0, false) == 0);
	EXPECT_CTRL(0, EV_PORT_OPEN, 1);
	EXPECT_CTRL(1, EV_PORT_OPEN, 0);
	EXPECT_CTRL(0, EV_PORT_OPEN, 0);
	CHECK(outstanding(Q_CTRL_RX) == 0);
	CHECK(virtio_ports_set_host_open(g_p, 0, true) == 0);
	EXPECT_NO_CTRL();
	post_ctrl_bufs(2);
	CHECK(virtio_ports_set_host_open(g_p, 1, true) == 0);
	EXPECT_CTRL(0, EV_PORT_OPEN, 1);
	EXPECT_CTRL(1, EV_PORT_OPEN, 1);
	EXPECT_NO_CTRL();

	CHECK(virtio_ports_set_host_open(g_p, 2, true) == -EINVAL);
	/* None of this is the guest's side. */
	CHECK(!virtio_ports_guest_open(g_p, 0) && !virtio_ports_guest_open(g_p, 1));
	CHECK(!needs_reset());
	teardown();
}

static void malformed_control_messages_are_harmless(void)
{
	SETUP(3, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	post_ctrl_bufs(4); /* to catch any answer */
	unsigned ev = g_rec.events;

	/* Shorter than the 8-byte header: a PORT_OPEN(1, 1) cut short. */
	uint8_t b[16];
	put_ctrl(b, 1, EV_PORT_OPEN, 1);
	for (uint32_t len = 1; len < 8; len++) {
		uint16_t h = post_out(Q_CTRL_TX, b, len);
		CHECK_MSG(kick(Q_CTRL_TX) == 0, "%u bytes: %s", len, g_err.msg);
		uint32_t id = 0, ulen = 1;
		CHECK_MSG(next_used(Q_CTRL_TX, &id, &ulen) && id == h && ulen == 0,
		          "%u bytes: buffer not returned", len);
		CHECK_MSG(!virtio_ports_guest_open(g_p, 1), "%u bytes opened the port", len);
	}
	/* Split 4 + 3: still short. */
	struct seg split[2] = {{.len = 4, .data = b}, {.len = 3, .data = b + 4}};
	publish(Q_CTRL_TX, split, 2);
	CHECK(kick(Q_CTRL_TX) == 0);
	CHECK(!virtio_ports_guest_open(g_p, 1));
	/* Only a device-writable buffer: nothing to read. */
	struct seg wonly = {.len = 8, .w = true};
	publish(Q_CTRL_TX, &wonly, 1);
	CHECK(kick(Q_CTRL_TX) == 0);
	CHECK(!virtio_ports_guest_open(g_p, 1));
	CHECK(g_rec.events == ev);
	g_seen[Q_CTRL_TX] = used_idx(Q_CTRL_TX);
	CHECK(outstanding(Q_CTRL_TX) == 0);

	/* Split 4 + 4 is a whole header. */
	struct seg split8[2] = {{.len = 4, .data = b}, {.len = 4, .data = b + 4}};
	publish(Q_CTRL_TX, split8, 2);
	CHECK(kick(Q_CTRL_TX) == 0);
	CHECK(virtio_ports_guest_open(g_p, 1));
	CHECK(g_rec.events == ev + 1);
	g_seen[Q_CTRL_TX] = used_idx(Q_CTRL_TX);
	CHECK(ctrl_send(1, EV_PORT_OPEN, 0) == 0);
	CHECK(!virtio_ports_guest_open(g_p, 1));
	ev = g_rec.events;

	/* Ids out of range. */
	static const uint32_t bad_ids[] = {3,           4,     VIRTIO_PORTS_MAX, 255, 0x10000,
	                                   0x80000000u, BAD_ID};
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		CHECK_MSG(ctrl_send(bad_ids[i], EV_PORT_READY, 1) == 0, "id %u", bad_ids[i]);
		CHECK_MSG(ctrl_send(bad_ids[i], EV_PORT_OPEN, 1) == 0, "id %u", bad_ids[i]);
		CHECK_MSG(ctrl_send(bad_ids[i], EV_PORT_OPEN, 0) == 0, "id %u", bad_ids[i]);
	}
	EXPECT_NO_CTRL();
	CHECK(g_rec.events == ev);

	/* Events that are not for the device, or not events at all. */
	static const uint16_t bad_events[] = {
	    EV_PORT_ADD, EV_PORT_REMOVE, EV_CONSOLE_PORT, EV_RESIZE, EV_PORT_NAME, 8,
	    9,           0x100,          0x7fff,          0xfffe,    0xffff};
	for (size_t i = 0; i < sizeof(bad_events) / sizeof(bad_events[0]); i++) {
		for (uint32_t id = 0; id < 3; id++) {
			CHECK_MSG(ctrl_send(id, bad_events[i], 1) == 0, "event %u", bad_events[i]);
			CHECK_MSG(ctrl_send(id, bad_events[i], 0) == 0, "event %u", bad_events[i]);
		}
	}
	EXPECT_NO_CTRL();
	CHECK(g_rec.events == ev);
	for (unsigned i = 0; i < 3; i++)
		CHECK(!virtio_ports_guest_open(g_p, i));

	/* A message with trailing bytes is read by its header. */
	uint8_t longmsg[40];
	memset(longmsg, 0xa5, sizeof(longmsg));
	put_ctrl(longmsg, 2, EV_PORT_OPEN, 1);
	post_out(Q_CTRL_TX, longmsg, sizeof(longmsg));
	CHECK(kick(Q_CTRL_TX) == 0);
	CHECK(virtio_ports_guest_open(g_p, 2));

	/* Several messages in one notify are all handled. */
	uint8_t m1[8], m2[8];
	put_ctrl(m1, 0, EV_PORT_OPEN, 1);
	put_ctrl(m2, 2, EV_PORT_OPEN, 0);
	post_out(Q_CTRL_TX, m1, 8);
	post_out(Q_CTRL_TX, m2, 8);
	CHECK(kick(Q_CTRL_TX) == 0);
	CHECK(virtio_ports_guest_open(g_p, 0) && !virtio_ports_guest_open(g_p, 2));
	CHECK(outstanding(Q_CTRL_TX) == 0);
	g_seen[Q_CTRL_TX] = used_idx(Q_CTRL_TX);

	/* The device still works. */
	EXPECT_NO_CTRL();
	CHECK(virtio_ports_set_host_open(g_p, 1, true) == 0);
	EXPECT_CTRL(1, EV_PORT_OPEN, 1);
	CHECK(g_rec.data_calls == 0 && !g_rec.bad_userdata);
	CHECK(!needs_reset());
	CHECK(g_err.msg[0] == '\0');
	teardown();
}

static int direct_notify(unsigned q)
{
	pthread_mutex_lock(&g_t.lock);
	int rc = virtio_ports_ops(g_p)->notify(g_p, &g_t, q, &g_err);
	pthread_mutex_unlock(&g_t.lock);
	return rc;
}

/* A guest that republishes a buffer as fast as the device takes it cannot
 * hold the device (and the vCPU thread serving it) for good: each notify
 * takes one ring's worth and yields, and the transport says so, so the
 * vCPU can check for a stop between batches. Before batches, the first
 * kick never returned (alarm). */
static void republishing_guest_cannot_hold_the_device(void)
{
	SETUP(3, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	g_rec.data_calls = 0;
	uint16_t h = post_out(q_tx(1), "x", 1);
	g_republish.q = q_tx(1);
	g_republish.head = h;
	g_republish.left = ~0ul; /* for ever */
	alarm(10);
	CHECK(kick(q_tx(1)) == 0);
	CHECK(virtio_mmio_pending(&g_t));
	CHECK_MSG(g_rec.data_calls == QSIZE, "%u calls", g_rec.data_calls);
	CHECK(virtio_mmio_continue(&g_t, &g_err) == 0);
	CHECK(virtio_mmio_pending(&g_t));
	CHECK_MSG(g_rec.data_calls == 2 * QSIZE, "%u calls", g_rec.data_calls);
	/* The guest stops: the device catches up and has nothing left. */
	g_republish.left = 0;
	for (int i = 0; i < 3 && virtio_mmio_pending(&g_t); i++)
		CHECK(virtio_mmio_continue(&g_t, &g_err) == 0);
	CHECK(!virtio_mmio_pending(&g_t));
	CHECK(used_idx(q_tx(1)) == rd16(avail_gpa(q_tx(1)) + 2));
	alarm(0);
	CHECK(!needs_reset());
	/* A reset forgets what was pending. */
	g_republish.left = ~0ul;
	h = post_out(q_tx(1), "y", 1);
	g_republish.head = h;
	CHECK(kick(q_tx(1)) == 0 && virtio_mmio_pending(&g_t));
	g_republish.left = 0;
	wr(R_STATUS, 0);
	CHECK(!virtio_mmio_pending(&g_t));
	teardown();
}

static void out_of_range_notifies_are_ignored(void)
{
	SETUP(2, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	post_ctrl_bufs(2);
	unsigned ev = g_rec.events;
	static const uint32_t bad_q[] = {6, 7, 15, 16, 17, 0xffff, 0x10000, 0x7fffffff, 0xffffffff};
	for (size_t i = 0; i < sizeof(bad_q) / sizeof(bad_q[0]); i++)
		CHECK_MSG(kick(bad_q[i]) == 0, "queue %u: %s", bad_q[i], g_err.msg);
	/* Past the transport's check too: the device's own. */
	for (unsigned q = num_queues(); q < VIRTIO_MMIO_MAX_QUEUES; q++)
		CHECK_MSG(direct_notify(q) == 0, "queue %u: %s", q, g_err.msg);
	CHECK(g_rec.events == ev && g_rec.data_calls == 0);
	EXPECT_NO_CTRL();
	CHECK(!needs_reset());

	/* A notify of a receive queue means new buffers: an event. */
	post_in(q_rx(1), 16);
	CHECK(kick(q_rx(1)) == 0);
	CHECK(g_rec.events == ev + 1);
	CHECK(kick(q_rx(0)) == 0);
	CHECK(g_rec.events == ev + 2);
	CHECK(used_idx(q_rx(1)) == 0); /* not consumed: the guest has not opened it */
	/* And the device works. */
	CHECK(ctrl_send(1, EV_PORT_OPEN, 1) == 0);
	CHECK(virtio_ports_send(g_p, 1, "ok", 2) == 2);
	CHECK(used_idx(q_rx(1)) == 1 && used_len(q_rx(1), 0) == 2);
	teardown();
}

/* A notify the guest's broken ring made fail: an error with a message,
 * and the device flagged DEVICE_NEEDS_RESET (the VMM stops the VM). */
static void expect_broken(const char *what, int rc)
{
	CHECK_MSG(rc < 0, "%s: notify returned %d", what, rc);
	CHECK_MSG(g_err.msg[0] != '\0', "%s: no message", what);
	CHECK_MSG(needs_reset(), "%s: DEVICE_NEEDS_RESET not set", what);
}

static void broken_rings_fail_the_access(void)
{
	/* The control transmit queue. */
	SETUP(2, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	wr16(avail_gpa(Q_CTRL_TX) + 2, (uint16_t)(avail_idx(Q_CTRL_TX) + QSIZE + 1));
	expect_broken("control tx avail jump", kick(Q_CTRL_TX));
	teardown();

	/* A port's transmit queue: the backend sees nothing. */
	SETUP(2, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	post_out(q_tx(1), "lost", 4);
	wr16(avail_gpa(q_tx(1)) + 2, (uint16_t)(avail_idx(q_tx(1)) + 0x8000));
	expect_broken("port tx avail jump", kick(q_tx(1)));
	CHECK(g_rec.data_calls == 0);
	teardown();

	/* A head out of range. */
	SETUP(2, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	post_out(q_tx(0), "x", 1);
	wr16(avail_gpa(q_tx(0)) + 4, QSIZE + 3);
	expect_broken("port tx bad head", kick(q_tx(0)));
	CHECK(g_rec.data_calls == 0);
	teardown();

	/* A buffer outside guest memory. */
	SETUP(2, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	struct seg out = {.len = 16, .gpa = MEM_SIZE - 8};
	publish(q_tx(1), &out, 1);
	expect_broken("port tx buffer outside memory", kick(q_tx(1)));
	CHECK(g_rec.data_calls == 0);
	teardown();

	/* A control message chain that loops. */
	SETUP(2, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	uint8_t b[8];
	put_ctrl(b, 0, EV_PORT_OPEN, 1);
	struct seg loop[2] = {{.len = 4, .data = b}, {.len = 4, .data = b + 4}};
	uint16_t h = publish(Q_CTRL_TX, loop, 2);
	struct virtq_desc d;
	memcpy(&d, g_buf + desc_gpa(Q_CTRL_TX) + 16ull * ((h + 1) % QSIZE), sizeof(d));
	d.flags |= VIRTQ_DESC_F_NEXT;
	d.next = h;
	memcpy(g_buf + desc_gpa(Q_CTRL_TX) + 16ull * ((h + 1) % QSIZE), &d, sizeof(d));
	expect_broken("control tx loop", kick(Q_CTRL_TX));
	CHECK(!virtio_ports_guest_open(g_p, 0));
	teardown();

	/* The control receive queue, with a message waiting for it. */
	static const bool open[2] = {false, false};
	SETUP(2, k_names, open);
	BRING_UP();
	HANDSHAKE();
	CHECK(virtio_ports_set_host_open(g_p, 1, true) == 0); /* no buffer: pending */
	EXPECT_NO_CTRL();
	post_ctrl_bufs(1);
	wr16(avail_gpa(Q_CTRL_RX) + 2, (uint16_t)(avail_idx(Q_CTRL_RX) + QSIZE + 1));
	expect_broken("control rx avail jump", kick(Q_CTRL_RX));
	EXPECT_NO_CTRL();
	teardown();

	/* The control receive queue broken while the host opens a port: the
	 * host's call fails, and the next notify stops the VM too (found by
	 * tests/fuzz/fuzz_ports.c: the guest used to get away with it). */
	SETUP(2, k_names, open);
	BRING_UP();
	HANDSHAKE();
	post_ctrl_bufs(1);
	wr16(avail_gpa(Q_CTRL_RX) + 2, (uint16_t)(avail_idx(Q_CTRL_RX) + QSIZE + 1));
	CHECK(virtio_ports_set_host_open(g_p, 1, true) < 0);
	EXPECT_NO_CTRL();
	vmp_error_clear(&g_err);
	expect_broken("control rx broken under set_host_open", kick(q_tx(0)));
	teardown();

	/* A port's receive queue: the host's send just takes nothing. */
	SETUP(1, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	CHECK(ctrl_send(0, EV_PORT_OPEN, 1) == 0);
	post_in(q_rx(0), 16);
	wr16(avail_gpa(q_rx(0)) + 2, (uint16_t)(avail_idx(q_rx(0)) + QSIZE + 1));
	CHECK(virtio_ports_send(g_p, 0, "data", 4) == 0);
	CHECK(used_idx(q_rx(0)) == 0);
	/* ...and the next notify, on the vCPU thread, reports the broken
	 * ring so the VMM stops the VM. */
	CHECK(kick(q_rx(0)) != 0);
	teardown();
}

static void reset_forgets_guest_state(void)
{
	SETUP(2, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	CHECK(ctrl_send(0, EV_PORT_OPEN, 1) == 0);
	CHECK(virtio_ports_guest_open(g_p, 0));
	/* A message left pending (no control buffer) when the driver resets. */
	CHECK(virtio_ports_set_host_open(g_p, 0, true) == 0);
	EXPECT_NO_CTRL();
	wr(R_STATUS, 0);
	CHECK(!virtio_ports_guest_open(g_p, 0));
	CHECK(virtio_ports_send(g_p, 0, "x", 1) == 0);

	/* The driver comes back: nothing stale arrives. */
	BRING_UP();
	post_ctrl_bufs(4);
	CHECK(kick(Q_CTRL_RX) == 0);
	EXPECT_NO_CTRL();
	CHECK(!virtio_ports_guest_open(g_p, 0));
	/* The handshake runs again; the host side stayed open. */
	CHECK(ctrl_send(BAD_ID, EV_DEVICE_READY, 1) == 0);
	EXPECT_CTRL(0, EV_PORT_ADD, 0);
	EXPECT_CTRL(1, EV_PORT_ADD, 0);
	CHECK(ctrl_send(0, EV_PORT_READY, 1) == 0);
	EXPECT_NAME(0, k_names[0]);
	EXPECT_CTRL(0, EV_PORT_OPEN, 1);
	post_ctrl_bufs(1);
	CHECK(ctrl_send(1, EV_PORT_READY, 1) == 0);
	EXPECT_NAME(1, k_names[1]);
	EXPECT_NO_CTRL();
	/* Data flows again. */
	CHECK(ctrl_send(0, EV_PORT_OPEN, 1) == 0);
	uint16_t h = post_in(q_rx(0), 16);
	CHECK(virtio_ports_send(g_p, 0, "again", 5) == 5);
	EXPECT_RX(q_rx(0), 0, h, "again", 5);
	post_out(q_tx(1), "back", 4);
	CHECK(kick(q_tx(1)) == 0);
	CHECK(got(1, "back", 4));
	CHECK(!needs_reset());
	teardown();
}

static void every_port_uses_its_own_queues(void)
{
	SETUP(VIRTIO_PORTS_MAX, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	for (unsigned i = 0; i < VIRTIO_PORTS_MAX; i++)
		CHECK(ctrl_send(i, EV_PORT_OPEN, 1) == 0);
	for (unsigned i = 0; i < VIRTIO_PORTS_MAX; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "from port %u", i);
		post_out(q_tx(i), msg, (uint32_t)n);
		CHECK(kick(q_tx(i)) == 0);
		CHECK_MSG(got(i, msg, (size_t)n) && g_rec.last_port == i, "port %u", i);
	}
	CHECK(g_rec.data_calls == VIRTIO_PORTS_MAX);
	uint16_t heads[VIRTIO_PORTS_MAX];
	for (unsigned i = 0; i < VIRTIO_PORTS_MAX; i++)
		heads[i] = post_in(q_rx(i), 32);
	for (unsigned i = 0; i < VIRTIO_PORTS_MAX; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "to port %u", i);
		CHECK_MSG(virtio_ports_send(g_p, i, msg, (size_t)n) == n, "port %u", i);
		for (unsigned j = 0; j < VIRTIO_PORTS_MAX; j++)
			CHECK_MSG(used_idx(q_rx(j)) == (j <= i), "port %u: queue of port %u", i, j);
		EXPECT_RX(q_rx(i), 0, heads[i], msg, (uint32_t)n);
	}
	CHECK(!needs_reset());
	teardown();
}

struct sender {
	unsigned long sent, calls;
	long last;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		long n = virtio_ports_send(g_p, 0, "z", 1);
		s->calls++;
		s->last = n;
		if (n < 0)
			break;
		s->sent += (unsigned long)n;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 5)
			break; /* detach never took effect */
		sched_yield();
	}
	return NULL;
}

static void send_races_detach(void)
{
	SETUP(1, k_names, k_closed);
	BRING_UP();
	HANDSHAKE();
	CHECK(ctrl_send(0, EV_PORT_OPEN, 1) == 0);
	for (unsigned i = 0; i < 8; i++)
		post_in(q_rx(0), 4);
	struct sender s = {0};
	pthread_t th;
	int prc = pthread_create(&th, NULL, sender_main, &s);
	CHECK_MSG(prc == 0, "pthread_create: %d", prc);
	if (prc) {
		teardown();
		return;
	}
	/* Meanwhile the guest keeps the transport busy. */
	for (unsigned i = 0; i < 200; i++) {
		CHECK(ctrl_send(0, EV_PORT_OPEN, 1) == 0);
		CHECK(kick(q_rx(0)) == 0);
	}
	virtio_ports_detach(g_p);
	pthread_join(th, NULL);
	CHECK_MSG(s.last == -EPIPE, "last send returned %ld", s.last);
	CHECK(s.sent <= 8 && s.sent == used_idx(q_rx(0)));
	for (unsigned i = 0; i < s.sent; i++)
		CHECK(used_len(q_rx(0), i) == 1 &&
		      g_buf[buf_gpa(q_rx(0), used_id(q_rx(0), i))] == 'z');
	teardown();
}

/* --- save and restore ---------------------------------------------- */

/* Saves the device and its transport, then replaces both by new ones
 * (host_open as given) over the same guest memory and restores them into
 * those, as a clone made from a snapshot does. Returns what restoring
 * the ports returned, or a setup failure below -1000. */
static int reincarnate(const bool *host_open, struct virtio_ports_state *ps)
{
	struct virtio_mmio_state ms;
	virtio_mmio_save(&g_t, &ms);
	virtio_ports_save(g_p, ps);
	virtio_ports_detach(g_p);
	virtio_mmio_destroy(&g_t);
	virtio_ports_free(g_p);
	g_p = NULL;
	g_host_open = host_open;
	if (virtio_ports_new(&g_p, g_nports, g_names, host_open, &g_be, &g_rec))
		return -1001;
	if (virtio_mmio_init(&g_t, 0xd0000000ull, 6, g_efd, virtio_ports_ops(g_p), g_p, &g_mem))
		return -1002;
	virtio_ports_attach(g_p, &g_t);
	vmp_error_clear(&g_err);
	if (virtio_mmio_restore(&g_t, &ms, &g_err))
		return -1003;
	return virtio_ports_restore(g_p, ps, &g_err);
}

#define REINCARNATE(open, ps)                                                                      \
	do {                                                                                       \
		int rc_ = reincarnate(open, ps);                                                   \
		CHECK_MSG(rc_ == 0, "reincarnate: %d: %s", rc_, g_err.msg);                        \
		if (rc_ <= -1000) {                                                                \
			if (rc_ != -1001) /* -1001: no device, no transport */                     \
				teardown();                                                        \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static void ports_save_restore_round_trip(void)
{
	static const bool open[3] = {false, true, false};
	SETUP(3, k_names, open);
	BRING_UP();
	HANDSHAKE();
	CHECK(ctrl_send(1, EV_PORT_OPEN, 1) == 0);
	CHECK(ctrl_send(2, EV_PORT_OPEN, 1) == 0);
	struct virtio_ports_state ps, ps2;
	REINCARNATE(open, &ps);
	/* What was saved. */
	CHECK(ps.nports == 3 && ps.device_ready == 1 && ps.npending == 0);
	for (unsigned i = 0; i < 3; i++) {
		CHECK_MSG(ps.port[i].ready == 1, "port %u", i);
		CHECK_MSG(ps.port[i].host_open == open[i], "port %u", i);
		CHECK_MSG(ps.port[i].guest_open == (i != 0), "port %u", i);
	}
	for (unsigned i = 3; i < VIRTIO_PORTS_MAX; i++)
		CHECK(!ps.port[i].ready && !ps.port[i].guest_open && !ps.port[i].host_open);
	/* The new device has it all, and says nothing (nothing changed). */
	virtio_ports_save(g_p, &ps2);
	CHECK(memcmp(&ps, &ps2, sizeof(ps)) == 0);
	CHECK(!virtio_ports_guest_open(g_p, 0));
	CHECK(virtio_ports_guest_open(g_p, 1) && virtio_ports_guest_open(g_p, 2));
	post_ctrl_bufs(2);
	CHECK(kick(Q_CTRL_RX) == 0);
	EXPECT_NO_CTRL();
	/* The guest carries on: data both ways on the ports it opened, a
	 * repeated DEVICE_READY or PORT_READY adds nothing. */
	uint16_t h = post_in(q_rx(1), 16);
	CHECK(virtio_ports_send(g_p, 1, "after", 5) == 5);
	EXPECT_RX(q_rx(1), 0, h, "after", 5);
	CHECK(virtio_ports_send(g_p, 0, "x", 1) == 0); /* port 0 not open */
	post_out(q_tx(2), "back", 4);
	CHECK(kick(q_tx(2)) == 0);
	CHECK(got(2, "back", 4));
	CHECK(ctrl_send(BAD_ID, EV_DEVICE_READY, 1) == 0);
	CHECK(ctrl_send(1, EV_PORT_READY, 1) == 0);
	EXPECT_NO_CTRL();
	/* The guest closes a port on the new device. */
	CHECK(ctrl_send(2, EV_PORT_OPEN, 0) == 0);
	CHECK(!virtio_ports_guest_open(g_p, 2));
	CHECK(!needs_reset() && !g_rec.bad_userdata);
	teardown();
}

/* The host side of the new device differs from the one saved: the guest
 * is told the new device's value, once, for ready ports only. */
static void ports_restore_tells_the_guest_host_open(void)
{
	static const bool before[3] = {false, true, true};
	static const bool after[3] = {true, false, true};
	SETUP(3, k_names, before);
	BRING_UP();
	HANDSHAKE();
	post_ctrl_bufs(4); /* buffers waiting at the snapshot */
	struct virtio_ports_state ps;
	irq_count();
	REINCARNATE(after, &ps);
	CHECK(ps.npending == 0);
	EXPECT_CTRL(0, EV_PORT_OPEN, 1);
	EXPECT_CTRL(1, EV_PORT_OPEN, 0);
	EXPECT_NO_CTRL();
	CHECK(outstanding(Q_CTRL_RX) == 2);
	CHECK(irq_count() >= 1);
	/* The device's own changes go out as before. */
	CHECK(virtio_ports_set_host_open(g_p, 2, false) == 0);
	EXPECT_CTRL(2, EV_PORT_OPEN, 0);
	EXPECT_NO_CTRL();
	teardown();

	/* No control buffer at the snapshot: the message waits for one. */
	SETUP(3, k_names, before);
	BRING_UP();
	HANDSHAKE();
	REINCARNATE(after, &ps);
	EXPECT_NO_CTRL();
	post_ctrl_bufs(1);
	CHECK(kick(Q_CTRL_RX) == 0);
	EXPECT_CTRL(0, EV_PORT_OPEN, 1);
	EXPECT_NO_CTRL();
	post_ctrl_bufs(4);
	CHECK(kick(Q_CTRL_RX) == 0);
	EXPECT_CTRL(1, EV_PORT_OPEN, 0);
	EXPECT_NO_CTRL();
	teardown();
}

/* A PORT_OPEN waiting at the snapshot is what the guest will be told:
 * the new device's value replaces it when they differ, or it goes out
 * as it is. */
static void ports_restore_with_pending_port_open(void)
{
	static const bool open[2] = {false, true};
	static const bool closed[2] = {false, false};
	for (int same = 0; same < 2; same++) {
		SETUP(2, k_names, open);
		BRING_UP();
		HANDSHAKE();
		/* The host closes port 1 with no control buffer: pending. */
		CHECK(virtio_ports_set_host_open(g_p, 1, false) == 0);
		EXPECT_NO_CTRL();
		struct virtio_ports_state ps;
		/* same: the new device has port 1 closed as the pending message
		 * says; otherwise open, as the guest was told before. */
		REINCARNATE(same ? closed : open, &ps);
		CHECK(ps.npending == 1 && ps.pending[0].id == 1 &&
		      ps.pending[0].event == EV_PORT_OPEN && ps.pending[0].value == 0);
		CHECK(ps.port[1].host_open == 0);
		post_ctrl_bufs(4);
		CHECK(kick(Q_CTRL_RX) == 0);
		EXPECT_CTRL(1, EV_PORT_OPEN, same ? 0 : 1);
		EXPECT_NO_CTRL();
		teardown();
	}
}

/* Ports the guest has not made ready hear about the host side with
 * PORT_READY, as always, not at restore. */
static void ports_restore_before_port_ready(void)
{
	static const bool before[2] = {false, false};
	static const bool after[2] = {true, true};
	SETUP(2, k_names, before);
	BRING_UP();
	post_ctrl_bufs(2);
	CHECK(ctrl_send(BAD_ID, EV_DEVICE_READY, 1) == 0);
	EXPECT_CTRL(0, EV_PORT_ADD, 0);
	EXPECT_CTRL(1, EV_PORT_ADD, 0);
	post_ctrl_bufs(2);
	CHECK(ctrl_send(0, EV_PORT_READY, 1) == 0);
	EXPECT_NAME(0, k_names[0]);
	post_ctrl_bufs(2);
	struct virtio_ports_state ps;
	REINCARNATE(after, &ps);
	CHECK(ps.port[0].ready && !ps.port[1].ready);
	EXPECT_CTRL(0, EV_PORT_OPEN, 1);
	EXPECT_NO_CTRL();
	CHECK(ctrl_send(1, EV_PORT_READY, 1) == 0);
	EXPECT_NAME(1, k_names[1]);
	EXPECT_CTRL(1, EV_PORT_OPEN, 1);
	EXPECT_NO_CTRL();
	teardown();
}

static void ports_restore_rejects_bad_states(void)
{
	static const bool open[3] = {true, false, false};
	SETUP(3, k_names, open);
	BRING_UP();
	HANDSHAKE();
	CHECK(ctrl_send(1, EV_PORT_OPEN, 1) == 0);
	CHECK(virtio_ports_set_host_open(g_p, 2, true) == 0); /* pending */
	struct virtio_ports_state good, before, after;
	virtio_ports_save(g_p, &good);
	CHECK(good.npending == 1);
	struct {
		const char *what;
		struct virtio_ports_state s;
	} c[12];
	unsigned n = 0;
#define BAD(name, change)                                                                          \
	do {                                                                                       \
		c[n].what = name;                                                                  \
		c[n].s = good;                                                                     \
		struct virtio_ports_state *s = &c[n++].s;                                          \
		change;                                                                            \
	} while (0)
	BAD("nports 2", s->nports = 2);
	BAD("nports 4", s->nports = 4);
	BAD("nports 0", s->nports = 0);
	BAD("nports huge", s->nports = 0xffffffffu);
	BAD("npending 33", s->npending = 33);
	BAD("npending huge", s->npending = 0xffffffffu);
	BAD("message for port 3", s->pending[0].id = 3);
	BAD("message for port 6", s->pending[0].id = VIRTIO_PORTS_MAX);
	BAD("message for port ~0", s->pending[0].id = 0xffffffffu);
	BAD("second message for port 7", {
		s->npending = 2;
		s->pending[1] = s->pending[0];
		s->pending[1].id = 7;
	});
#undef BAD
	virtio_ports_save(g_p, &before);
	for (unsigned i = 0; i < n; i++) {
		vmp_error_clear(&g_err);
		int rc = virtio_ports_restore(g_p, &c[i].s, &g_err);
		CHECK_MSG(rc == -EINVAL && g_err.msg[0], "%s: %d", c[i].what, rc);
		/* Refused before anything changed. */
		virtio_ports_save(g_p, &after);
		CHECK_MSG(memcmp(&before, &after, sizeof(before)) == 0, "%s: device changed",
		          c[i].what);
	}
	/* The control: 32 pending messages for existing ports are fine. */
	struct virtio_ports_state full = good;
	full.npending = 32;
	for (unsigned i = 0; i < 32; i++) {
		full.pending[i].id = i % 3;
		full.pending[i].event = EV_PORT_ADD;
		full.pending[i].value = 0;
	}
	CHECK_MSG(virtio_ports_restore(g_p, &full, &g_err) == 0, "%s", g_err.msg);
	/* Not attached: refused too. */
	virtio_ports_detach(g_p);
	vmp_error_clear(&g_err);
	CHECK(virtio_ports_restore(g_p, &good, &g_err) < 0 && g_err.msg[0]);
	teardown();
}

TEST_LIST(T(republishing_guest_cannot_hold_the_device), T(new_rejects_bad_arguments),
          T(features_and_config), T(device_ready_adds_every_port),
          T(messages_wait_for_control_buffers), T(port_ready_sends_name_then_open),
          T(guest_open_state_and_event), T(guest_writes_reach_the_backend),
          T(send_fills_receive_buffers), T(send_needs_driver_ok), T(send_after_detach_is_epipe),
          T(host_open_changes_are_sent), T(malformed_control_messages_are_harmless),
          T(out_of_range_notifies_are_ignored), T(broken_rings_fail_the_access),
          T(reset_forgets_guest_state), T(every_port_uses_its_own_queues), T(send_races_detach),
          T(ports_save_restore_round_trip), T(ports_restore_tells_the_guest_host_open),
          T(ports_restore_with_pending_port_open), T(ports_restore_before_port_ready),
          T(ports_restore_rejects_bad_states))
