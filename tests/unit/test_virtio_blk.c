/* virtio-blk, driven through the virtio-mmio transport the way a virtio 1.x
 * driver does it: features (with VERSION_1), one queue, DRIVER_OK, then
 * requests laid out in a fake guest memory (a calloc'd buffer behind
 * guest_mem_layout) and kicked with QueueNotify. The disk is a temporary
 * file in /tmp filled with a known pattern; the interrupt goes to a real
 * eventfd. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "mmio_driver.h"
#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "virtio/virtqueue.h"
#include "mem/guest_mem.h"

/* virtio-blk (virtio 1.x, 5.2). */
#define BLK_F_SIZE_MAX (1ull << 1)
#define BLK_F_SEG_MAX  (1ull << 2)
#define BLK_F_RO       (1ull << 5)
#define BLK_F_BLK_SIZE (1ull << 6)
#define BLK_F_FLUSH    (1ull << 9)
#define T_IN           0u
#define T_OUT          1u
#define T_FLUSH        4u
#define T_GET_ID       8u
#define T_DISCARD      11u
#define S_OK           0
#define S_IOERR        1
#define S_UNSUPP       2
#define CFG_CAPACITY   0
#define CFG_SEG_MAX    12
#define CFG_BLK_SIZE   20

#define SECTOR       512u
#define DISK_BYTES   (64u * 1024u)
#define DISK_SECTORS (DISK_BYTES / SECTOR)

#define MEM_SIZE     (4u << 20)
#define QSIZE        16
#define DESC_GPA     0x10000ull
#define AVAIL_GPA    0x11000ull
#define USED_GPA     0x12000ull
#define HDR_GPA      0x20000ull /* request k's header at HDR_GPA + 0x40 k */
#define STATUS_GPA   0x28000ull /* request k's status byte at STATUS_GPA + k */
#define DATA_GPA     0x100000ull
#define CANARY       0x5a
#define STATUS_UNSET 0xee

static uint8_t *g_buf;
static struct guest_mem g_mem;
static struct virtio_mmio g_t;
static struct virtio_blk *g_blk;
static struct vmp_error g_err;
static int g_efd = -1;
static int g_fd = -1; /* the backing file, for pread checks */
static char g_path[64];
static uint16_t g_next_desc; /* next free descriptor */
static unsigned g_nreq;      /* requests published so far */

/* The disk's initial content: differs from sector to sector and within one. */
static uint8_t pat(uint64_t off)
{
	return (uint8_t)((off >> 9) * 37u + (off & 511u) * 3u + 1u);
}

/* --- setup ---------------------------------------------------------- */

static int make_disk(uint32_t bytes)
{
	snprintf(g_path, sizeof(g_path), "/tmp/vmproc-blk-test-XXXXXX");
	g_fd = mkstemp(g_path);
	if (g_fd < 0)
		return -1;
	uint8_t *p = malloc(bytes ? bytes : 1);
	if (!p)
		return -1;
	for (uint32_t i = 0; i < bytes; i++)
		p[i] = pat(i);
	ssize_t n = pwrite(g_fd, p, bytes, 0);
	free(p);
	return n == (ssize_t)bytes ? 0 : -1;
}

static int setup(uint32_t disk_bytes, bool read_only)
{
	free(g_buf);
	g_buf = calloc(1, MEM_SIZE);
	if (!g_buf)
		return -1;
	guest_mem_layout(&g_mem, g_buf, MEM_SIZE);
	vmp_error_clear(&g_err);
	g_next_desc = 0;
	g_nreq = 0;
	if (g_efd < 0)
		g_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g_efd < 0)
		return -2;
	uint64_t drain;
	while (read(g_efd, &drain, sizeof(drain)) == sizeof(drain))
		;
	if (make_disk(disk_bytes))
		return -3;
	int rc = virtio_blk_new(&g_blk, g_path, read_only, &g_err);
	if (rc)
		return rc;
	mmio_driver_attach(&g_t, &g_err);
	return virtio_mmio_init(&g_t, 0xd0000000ull, 5, g_efd, virtio_blk_ops(g_blk), g_blk,
	                        &g_mem);
}

static void teardown(void)
{
	virtio_mmio_destroy(&g_t);
	virtio_blk_free(g_blk);
	g_blk = NULL;
	if (g_fd >= 0)
		close(g_fd);
	g_fd = -1;
	unlink(g_path);
	free(g_buf);
	g_buf = NULL;
}

#define SETUP(bytes, ro)                                                                           \
	do {                                                                                       \
		int rc_ = setup(bytes, ro);                                                        \
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

/* Negotiates what a Linux driver would (all offered features), sets up
 * queue 0 with QSIZE entries and sets DRIVER_OK. */
static int bring_up(void)
{
	uint64_t f = device_features();
	if (!(f & VIRTIO_F_VERSION_1) || !negotiate(f))
		return -1;
	wr(R_QUEUE_SEL, 0);
	if (rd(R_QUEUE_NUM_MAX) < QSIZE)
		return -2;
	if (setup_queue_at(0, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA))
		return -3;
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return virtio_mmio_driver_ok(&g_t) ? 0 : -4;
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

static int kick(void)
{
	return wr(R_QUEUE_NOTIFY, 0);
}

static uint64_t irq_count(void)
{
	uint64_t v = 0;
	if (read(g_efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* --- the driver's side of the queue --------------------------------- */

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

static uint16_t used_idx(void)
{
	return rd16(USED_GPA + 2);
}
static uint32_t used_id(unsigned slot)
{
	return rd32(USED_GPA + 4 + 8ull * (slot % QSIZE));
}
static uint32_t used_len(unsigned slot)
{
	return rd32(USED_GPA + 8 + 8ull * (slot % QSIZE));
}

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool w; /* device-writable */
};

/* Chains the segments into free descriptors and publishes the chain. */
static uint16_t publish(const struct seg *s, unsigned n)
{
	uint16_t head = g_next_desc;
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % QSIZE);
		struct virtq_desc d = {
		    .addr = s[i].gpa,
		    .len = s[i].len,
		    .flags = (uint16_t)((s[i].w ? VIRTQ_DESC_F_WRITE : 0) |
		                        (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
		    .next = (uint16_t)((idx + 1) % QSIZE),
		};
		memcpy(g_buf + DESC_GPA + 16ull * idx, &d, sizeof(d));
	}
	g_next_desc = (uint16_t)((head + n) % QSIZE);
	uint16_t idx = rd16(AVAIL_GPA + 2);
	wr16(AVAIL_GPA + 4 + 2ull * (idx % QSIZE), head);
	wr16(AVAIL_GPA + 2, (uint16_t)(idx + 1));
	return head;
}

struct req {
	uint16_t head;
	unsigned slot; /* its expected position in the used ring */
	uint64_t status_gpa;
};

static void put_header(uint64_t gpa, uint32_t type, uint64_t sector)
{
	uint32_t reserved = 0;
	memcpy(g_buf + gpa, &type, 4);
	memcpy(g_buf + gpa + 4, &reserved, 4);
	memcpy(g_buf + gpa + 8, &sector, 8);
}

/* A request with a 16-byte header of its own, the data segments, and a
 * separate 1-byte status (preset to STATUS_UNSET), published. */
static struct req queue_req(uint32_t type, uint64_t sector, const struct seg *data, unsigned n)
{
	struct req r = {.slot = g_nreq, .status_gpa = STATUS_GPA + g_nreq};
	uint64_t hdr = HDR_GPA + 0x40ull * g_nreq;
	g_nreq++;
	put_header(hdr, type, sector);
	g_buf[r.status_gpa] = STATUS_UNSET;
	struct seg s[8];
	s[0] = (struct seg){hdr, 16, false};
	for (unsigned i = 0; i < n && i < 6; i++)
		s[1 + i] = data[i];
	unsigned total = (n < 6 ? n : 6) + 2;
	s[total - 1] = (struct seg){r.status_gpa, 1, true};
	r.head = publish(s, total);
	return r;
}

static uint8_t status_of(struct req r)
{
	return g_buf[r.status_gpa];
}

/* Queues one request, kicks, checks it completed as the next used entry
 * and returns its status byte; *len gets the used length. */
static int io(uint32_t type, uint64_t sector, const struct seg *data, unsigned n, uint32_t *len)
{
	struct req r = queue_req(type, sector, data, n);
	int rc = kick();
	CHECK_MSG(rc == 0, "kick: %d: %s", rc, g_err.msg);
	CHECK_MSG(used_idx() == (uint16_t)(r.slot + 1), "used idx %u, want %u", used_idx(),
	          r.slot + 1);
	CHECK_MSG(used_id(r.slot) == r.head, "used id %u, want head %u", used_id(r.slot), r.head);
	if (len)
		*len = used_len(r.slot);
	return status_of(r);
}

/* --- the backing file ------------------------------------------------ */

static bool file_matches_pattern(uint64_t off, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++) {
		uint8_t c;
		if (pread(g_fd, &c, 1, (off_t)(off + i)) != 1 || c != pat(off + i))
			return false;
	}
	return true;
}

static bool guest_matches_pattern(uint64_t gpa, uint32_t len, uint64_t file_off)
{
	for (uint32_t i = 0; i < len; i++)
		if (g_buf[gpa + i] != pat(file_off + i))
			return false;
	return true;
}

static bool all_bytes(uint64_t gpa, uint32_t len, uint8_t v)
{
	for (uint32_t i = 0; i < len; i++)
		if (g_buf[gpa + i] != v)
			return false;
	return true;
}

static off_t file_size(void)
{
	struct stat st;
	return fstat(g_fd, &st) == 0 ? st.st_size : -1;
}

/* ------------------------------------------------------------------ */

static void config_space(void)
{
	SETUP(DISK_BYTES, false);
	CHECK(rd(R_DEVICE_ID) == 2);
	CHECK(cfg(CFG_CAPACITY, 8) == DISK_SECTORS);
	/* As Linux reads a 64-bit field: two 32-bit halves. */
	CHECK(cfg(CFG_CAPACITY, 4) == DISK_SECTORS && cfg(CFG_CAPACITY + 4, 4) == 0);
	wr(R_QUEUE_SEL, 0);
	uint32_t qmax = rd(R_QUEUE_NUM_MAX);
	uint64_t seg_max = cfg(CFG_SEG_MAX, 4);
	/* A chain holds the header and the status too. */
	CHECK_MSG(seg_max >= 1 && seg_max + 2 <= qmax, "seg_max %llu, queue max %u",
	          (unsigned long long)seg_max, qmax);
	CHECK(cfg(CFG_BLK_SIZE, 4) == SECTOR);
	uint64_t f = device_features();
	CHECK((f & VIRTIO_F_VERSION_1) != 0);
	CHECK((f & BLK_F_SEG_MAX) && (f & BLK_F_BLK_SIZE) && (f & BLK_F_FLUSH));
	CHECK((f & BLK_F_RO) == 0);
	CHECK((f & BLK_F_SIZE_MAX) == 0); /* size_max is left 0, so not offered */
	CHECK(!negotiate(VIRTIO_F_VERSION_1 | BLK_F_RO));
	CHECK(negotiate(VIRTIO_F_VERSION_1 | BLK_F_SEG_MAX | BLK_F_BLK_SIZE | BLK_F_FLUSH));
	teardown();

	/* A read-only device offers RO. */
	SETUP(DISK_BYTES, true);
	f = device_features();
	CHECK((f & BLK_F_RO) != 0 && (f & VIRTIO_F_VERSION_1) != 0);
	CHECK(cfg(CFG_CAPACITY, 8) == DISK_SECTORS);
	CHECK(negotiate(VIRTIO_F_VERSION_1 | BLK_F_RO));
	teardown();

	/* The size is rounded down to whole sectors. */
	SETUP(1000, false);
	CHECK(cfg(CFG_CAPACITY, 8) == 1);
	teardown();
	SETUP(511, false);
	CHECK(cfg(CFG_CAPACITY, 8) == 0);
	teardown();
}

static void read_into_one_buffer(void)
{
	SETUP(DISK_BYTES, false);
	BRING_UP();
	memset(g_buf + DATA_GPA, CANARY, 4096);
	struct seg d = {DATA_GPA, 2 * SECTOR, true};
	uint32_t len = 0;
	CHECK(io(T_IN, 3, &d, 1, &len) == S_OK);
	CHECK(len == 2 * SECTOR + 1);
	CHECK(guest_matches_pattern(DATA_GPA, 2 * SECTOR, 3 * SECTOR));
	CHECK(all_bytes(DATA_GPA + 2 * SECTOR, 1024, CANARY));
	/* The last sector, and the first. */
	d.len = SECTOR;
	CHECK(io(T_IN, DISK_SECTORS - 1, &d, 1, &len) == S_OK && len == SECTOR + 1);
	CHECK(guest_matches_pattern(DATA_GPA, SECTOR, DISK_BYTES - SECTOR));
	CHECK(io(T_IN, 0, &d, 1, &len) == S_OK && len == SECTOR + 1);
	CHECK(guest_matches_pattern(DATA_GPA, SECTOR, 0));
	/* The status byte may share the last data buffer. */
	memset(g_buf + DATA_GPA, CANARY, 4096);
	struct seg s[2] = {{HDR_GPA + 0x800, 16, false}, {DATA_GPA, SECTOR + 1, true}};
	put_header(HDR_GPA + 0x800, T_IN, 7);
	unsigned slot = g_nreq++;
	uint16_t head = publish(s, 2);
	CHECK(kick() == 0);
	CHECK(used_idx() == slot + 1 && used_id(slot) == head);
	CHECK(used_len(slot) == SECTOR + 1);
	CHECK(guest_matches_pattern(DATA_GPA, SECTOR, 7 * SECTOR));
	CHECK(g_buf[DATA_GPA + SECTOR] == S_OK);
	teardown();

	/* A 1000-byte file: its one sector reads back, the partial one is
	 * not part of the disk. */
	SETUP(1000, false);
	BRING_UP();
	d = (struct seg){DATA_GPA, SECTOR, true};
	CHECK(io(T_IN, 0, &d, 1, &len) == S_OK && len == SECTOR + 1);
	CHECK(guest_matches_pattern(DATA_GPA, SECTOR, 0));
	memset(g_buf + DATA_GPA, CANARY, SECTOR);
	CHECK(io(T_IN, 1, &d, 1, &len) == S_IOERR);
	CHECK(all_bytes(DATA_GPA, SECTOR, CANARY));
	teardown();
}

static void read_into_several_buffers(void)
{
	SETUP(DISK_BYTES, false);
	BRING_UP();
	memset(g_buf + DATA_GPA, CANARY, 0x10000);
	/* 4 sectors split at non-sector boundaries, scattered and out of
	 * address order. */
	struct seg d[4] = {
	    {DATA_GPA + 0x8000, 100, true},
	    {DATA_GPA + 0x1000, 412, true},
	    {DATA_GPA + 0x3000, 1024, true},
	    {DATA_GPA + 0x0000, 512, true},
	};
	uint32_t len = 0;
	CHECK(io(T_IN, 20, d, 4, &len) == S_OK);
	CHECK(len == 4 * SECTOR + 1);
	uint64_t off = 20ull * SECTOR;
	for (unsigned i = 0; i < 4; i++) {
		CHECK_MSG(guest_matches_pattern(d[i].gpa, d[i].len, off), "buffer %u", i);
		CHECK_MSG(g_buf[d[i].gpa + d[i].len] == CANARY, "past buffer %u", i);
		off += d[i].len;
	}
	CHECK(g_buf[DATA_GPA + 0x8000 - 1] == CANARY);
	teardown();
}

static void write_from_several_buffers(void)
{
	SETUP(DISK_BYTES, false);
	BRING_UP();
	uint8_t *src = g_buf + DATA_GPA;
	for (unsigned i = 0; i < 3 * SECTOR; i++)
		src[i] = (uint8_t)(0xa0 ^ i ^ (i >> 8));
	/* The same 1536 bytes as three scattered buffers. */
	memcpy(g_buf + DATA_GPA + 0x4000, src, 512);
	memcpy(g_buf + DATA_GPA + 0x2000, src + 512, 300);
	memcpy(g_buf + DATA_GPA + 0x6000, src + 812, 724);
	struct seg d[3] = {
	    {DATA_GPA + 0x4000, 512, false},
	    {DATA_GPA + 0x2000, 300, false},
	    {DATA_GPA + 0x6000, 724, false},
	};
	uint32_t len = 99;
	CHECK(io(T_OUT, 10, d, 3, &len) == S_OK);
	CHECK(len == 1);
	uint8_t back[3 * SECTOR];
	CHECK(pread(g_fd, back, sizeof(back), 10 * SECTOR) == (ssize_t)sizeof(back));
	CHECK(memcmp(back, src, sizeof(back)) == 0);
	/* Only those sectors changed. */
	CHECK(file_matches_pattern(0, 10 * SECTOR));
	CHECK(file_matches_pattern(13 * SECTOR, DISK_BYTES - 13 * SECTOR));
	CHECK(file_size() == DISK_BYTES);

	/* Framing is free: the header and the data in one readable buffer. */
	uint64_t hd = DATA_GPA + 0x9000;
	put_header(hd, T_OUT, 40);
	for (unsigned i = 0; i < SECTOR; i++)
		g_buf[hd + 16 + i] = (uint8_t)(0x3c + i);
	g_buf[STATUS_GPA + 0x100] = STATUS_UNSET;
	struct seg s[2] = {{hd, 16 + SECTOR, false}, {STATUS_GPA + 0x100, 1, true}};
	unsigned slot = g_nreq++;
	uint16_t head = publish(s, 2);
	CHECK(kick() == 0);
	CHECK(used_idx() == slot + 1 && used_id(slot) == head && used_len(slot) == 1);
	CHECK(g_buf[STATUS_GPA + 0x100] == S_OK);
	CHECK(pread(g_fd, back, SECTOR, 40 * SECTOR) == SECTOR);
	CHECK(memcmp(back, g_buf + hd + 16, SECTOR) == 0);
	CHECK(file_matches_pattern(39 * SECTOR, SECTOR) &&
	      file_matches_pattern(41 * SECTOR, SECTOR));
	teardown();
}

static void write_to_read_only_device_fails(void)
{
	SETUP(DISK_BYTES, true);
	BRING_UP();
	memset(g_buf + DATA_GPA, 0x77, 2 * SECTOR);
	struct seg d = {DATA_GPA, 2 * SECTOR, false};
	uint32_t len = 0;
	CHECK(io(T_OUT, 4, &d, 1, &len) == S_IOERR);
	CHECK(len == 1);
	CHECK(file_matches_pattern(0, DISK_BYTES));
	CHECK(file_size() == DISK_BYTES);
	/* Reads and flushes still work. */
	struct seg r = {DATA_GPA + 0x1000, SECTOR, true};
	CHECK(io(T_IN, 4, &r, 1, &len) == S_OK && len == SECTOR + 1);
	CHECK(guest_matches_pattern(DATA_GPA + 0x1000, SECTOR, 4 * SECTOR));
	CHECK(io(T_FLUSH, 0, NULL, 0, &len) == S_OK);
	teardown();
}

static void flush_get_id_and_unknown_types(void)
{
	SETUP(DISK_BYTES, false);
	BRING_UP();
	uint32_t len = 99;
	CHECK(io(T_FLUSH, 0, NULL, 0, &len) == S_OK);
	CHECK(len == 1);

	memset(g_buf + DATA_GPA, CANARY, 64);
	struct seg id = {DATA_GPA, 20, true};
	CHECK(io(T_GET_ID, 0, &id, 1, &len) == S_OK);
	CHECK(len == 21);
	char want[20] = "vmproc";
	CHECK(memcmp(g_buf + DATA_GPA, want, 20) == 0);
	CHECK(g_buf[DATA_GPA + 20] == CANARY);

	/* Unknown or unnegotiated types: UNSUPP, buffers untouched, file too. */
	static const uint32_t types[] = {2, 3, T_DISCARD, 13, 0xff, 0xffffffffu};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		memset(g_buf + DATA_GPA, CANARY, SECTOR);
		struct seg d = {DATA_GPA, SECTOR, true};
		len = 99;
		int st = io(types[i], 0, &d, 1, &len);
		CHECK_MSG(st == S_UNSUPP, "type %u: status %d", types[i], st);
		CHECK_MSG(len == SECTOR + 1, "type %u: used len %u", types[i], len);
		CHECK_MSG(all_bytes(DATA_GPA, SECTOR, CANARY), "type %u wrote data", types[i]);
	}
	CHECK(file_matches_pattern(0, DISK_BYTES));
	teardown();
}

static void out_of_range_requests_fail(void)
{
	SETUP(DISK_BYTES, false);
	BRING_UP();
	static const struct {
		uint64_t sector;
		uint32_t bytes;
	} bad[] = {
	    {DISK_SECTORS, SECTOR},         /* just past the end */
	    {DISK_SECTORS - 1, 2 * SECTOR}, /* straddles the end */
	    {DISK_SECTORS + 1000, SECTOR},
	    {UINT64_MAX, SECTOR}, /* sector + count overflows */
	    {UINT64_MAX - 1, 4 * SECTOR},
	    {1ull << 55, SECTOR},       /* sector * 512 wraps to 0 */
	    {(1ull << 55) + 1, SECTOR}, /* ... wraps to 512 */
	    {0, 511},                   /* not whole sectors */
	    {0, 513},
	    {2, 100},
	    {0, 1},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(g_buf + DATA_GPA, CANARY, 4096);
		struct seg d = {DATA_GPA, bad[i].bytes, true};
		uint32_t len = 99;
		int st = io(T_IN, bad[i].sector, &d, 1, &len);
		CHECK_MSG(st == S_IOERR, "read case %zu: status %d", i, st);
		CHECK_MSG(len == bad[i].bytes + 1, "read case %zu: used len %u", i, len);
		CHECK_MSG(all_bytes(DATA_GPA, 4096, CANARY), "read case %zu touched the buffer", i);
		/* The same as a write: refused, file unchanged, not extended. */
		memset(g_buf + DATA_GPA, 0x77, 4096);
		d.w = false;
		st = io(T_OUT, bad[i].sector, &d, 1, &len);
		CHECK_MSG(st == S_IOERR, "write case %zu: status %d", i, st);
		CHECK_MSG(file_matches_pattern(0, DISK_BYTES), "write case %zu changed the file",
		          i);
		CHECK_MSG(file_size() == DISK_BYTES, "write case %zu resized the file", i);
		/* And the device keeps working. */
		d = (struct seg){DATA_GPA, SECTOR, true};
		st = io(T_IN, 5, &d, 1, &len);
		CHECK_MSG(st == S_OK && len == SECTOR + 1, "after case %zu: status %d", i, st);
		CHECK_MSG(guest_matches_pattern(DATA_GPA, SECTOR, 5 * SECTOR), "after case %zu", i);
	}
	/* Several buffers adding up to a partial sector. */
	memset(g_buf + DATA_GPA, CANARY, 4096);
	struct seg two[2] = {{DATA_GPA, 512, true}, {DATA_GPA + 0x800, 100, true}};
	CHECK(io(T_IN, 0, two, 2, NULL) == S_IOERR);
	CHECK(all_bytes(DATA_GPA, 4096, CANARY));
	CHECK(virtio_mmio_driver_ok(&g_t) && (rd(R_STATUS) & S_NEEDS_RESET) == 0);
	teardown();
}

/* One malformed chain: the notify fails, nothing is completed, the file
 * is untouched and the status byte (if any) is not written. */
static void expect_malformed(const char *what, const struct seg *s, unsigned n, uint64_t status_gpa)
{
	if (status_gpa)
		g_buf[status_gpa] = STATUS_UNSET;
	publish(s, n);
	vmp_error_clear(&g_err);
	int rc = kick();
	CHECK_MSG(rc < 0, "%s: notify returned %d", what, rc);
	CHECK_MSG(g_err.msg[0] != '\0', "%s: no message", what);
	CHECK_MSG(used_idx() == 0, "%s: completed", what);
	CHECK_MSG(!status_gpa || g_buf[status_gpa] == STATUS_UNSET, "%s: status written", what);
	CHECK_MSG(file_matches_pattern(0, DISK_BYTES), "%s: file changed", what);
	CHECK_MSG(rd(R_STATUS) & S_NEEDS_RESET, "%s: DEVICE_NEEDS_RESET not set", what);
}

static void malformed_chains_fail_the_notify(void)
{
	uint64_t hdr = HDR_GPA, data = DATA_GPA, st = STATUS_GPA;

	/* A write with no device-writable byte at all. */
	SETUP(DISK_BYTES, false);
	BRING_UP();
	put_header(hdr, T_OUT, 0);
	memset(g_buf + data, 0x77, SECTOR);
	struct seg a[2] = {{hdr, 16, false}, {data, SECTOR, false}};
	expect_malformed("no status", a, 2, 0);
	teardown();

	/* A read with no device-writable byte: nothing to read into either. */
	SETUP(DISK_BYTES, false);
	BRING_UP();
	put_header(hdr, T_IN, 0);
	struct seg b[1] = {{hdr, 16, false}};
	expect_malformed("header only", b, 1, 0);
	teardown();

	/* Headers shorter than 16 bytes, the type saying write. */
	static const uint32_t short_lens[] = {15, 8, 1};
	for (size_t i = 0; i < sizeof(short_lens) / sizeof(short_lens[0]); i++) {
		SETUP(DISK_BYTES, false);
		BRING_UP();
		put_header(hdr, T_OUT, 0);
		struct seg c[2] = {{hdr, short_lens[i], false}, {st, 1, true}};
		char what[32];
		snprintf(what, sizeof(what), "%u-byte header", short_lens[i]);
		expect_malformed(what, c, 2, st);
		teardown();
	}

	/* No readable part at all: only writable buffers. */
	SETUP(DISK_BYTES, false);
	BRING_UP();
	struct seg e[2] = {{data, SECTOR, true}, {st, 1, true}};
	memset(g_buf + data, CANARY, SECTOR);
	expect_malformed("no header", e, 2, st);
	CHECK(all_bytes(data, SECTOR, CANARY));
	teardown();

	/* The framing rule is about totals: a header split 8 + 8 is fine. */
	SETUP(DISK_BYTES, false);
	BRING_UP();
	put_header(hdr, T_IN, 9);
	memset(g_buf + data, CANARY, SECTOR);
	g_buf[st] = STATUS_UNSET;
	struct seg f[4] = {
	    {hdr, 8, false}, {hdr + 8, 8, false}, {data, SECTOR, true}, {st, 1, true}};
	publish(f, 4);
	CHECK(kick() == 0);
	CHECK(used_idx() == 1 && used_len(0) == SECTOR + 1);
	CHECK(g_buf[st] == S_OK);
	CHECK(guest_matches_pattern(data, SECTOR, 9 * SECTOR));
	teardown();
}

static void batched_requests_in_order(void)
{
	SETUP(DISK_BYTES, false);
	BRING_UP();
	CHECK(irq_count() == 0);
	/* Write sector 30, read it back, flush, read sector 31, get the id:
	 * all published before a single notify. The read must see the
	 * write, which only holds if they are served in order. */
	for (unsigned i = 0; i < SECTOR; i++)
		g_buf[DATA_GPA + i] = (uint8_t)(0xc3 ^ i);
	memset(g_buf + DATA_GPA + 0x1000, CANARY, 0x3000);
	struct seg w = {DATA_GPA, SECTOR, false};
	struct seg r1 = {DATA_GPA + 0x1000, SECTOR, true};
	struct seg r2 = {DATA_GPA + 0x2000, SECTOR, true};
	struct seg id = {DATA_GPA + 0x3000, 20, true};
	struct req q[5];
	q[0] = queue_req(T_OUT, 30, &w, 1);
	q[1] = queue_req(T_IN, 30, &r1, 1);
	q[2] = queue_req(T_FLUSH, 0, NULL, 0);
	q[3] = queue_req(T_IN, 31, &r2, 1);
	q[4] = queue_req(T_GET_ID, 0, &id, 1);
	CHECK(used_idx() == 0);
	CHECK(kick() == 0);
	CHECK(used_idx() == 5);
	static const uint32_t lens[5] = {1, SECTOR + 1, 1, SECTOR + 1, 21};
	for (unsigned i = 0; i < 5; i++) {
		CHECK_MSG(used_id(i) == q[i].head, "slot %u: id %u, want %u", i, used_id(i),
		          q[i].head);
		CHECK_MSG(used_len(i) == lens[i], "slot %u: len %u", i, used_len(i));
		CHECK_MSG(status_of(q[i]) == S_OK, "request %u: status %u", i, status_of(q[i]));
	}
	CHECK(memcmp(g_buf + DATA_GPA + 0x1000, g_buf + DATA_GPA, SECTOR) == 0);
	CHECK(guest_matches_pattern(DATA_GPA + 0x2000, SECTOR, 31 * SECTOR));
	CHECK(memcmp(g_buf + DATA_GPA + 0x3000, "vmproc", 7) == 0);
	uint8_t back[SECTOR];
	CHECK(pread(g_fd, back, SECTOR, 30 * SECTOR) == SECTOR);
	CHECK(memcmp(back, g_buf + DATA_GPA, SECTOR) == 0);
	CHECK(irq_count() == 1);
	CHECK(rd(R_INTERRUPT_STATUS) == 1);

	/* A notify with nothing new is harmless; the next batch is served. */
	CHECK(kick() == 0);
	CHECK(used_idx() == 5);
	irq_count();
	struct req q5 = queue_req(T_IN, 0, &r2, 1);
	CHECK(kick() == 0);
	CHECK(used_idx() == 6 && used_id(5) == q5.head && status_of(q5) == S_OK);
	CHECK(guest_matches_pattern(DATA_GPA + 0x2000, SECTOR, 0));
	CHECK(irq_count() == 1);
	teardown();
}

TEST_LIST(T(config_space), T(read_into_one_buffer), T(read_into_several_buffers),
          T(write_from_several_buffers), T(write_to_read_only_device_fails),
          T(flush_get_id_and_unknown_types), T(out_of_range_requests_fail),
          T(malformed_chains_fail_the_notify), T(batched_requests_in_order))
