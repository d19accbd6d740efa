/* libFuzzer target for the virtio-mmio transport (src/virtio/mmio.c) with
 * several devices at once in one guest memory, and for the single-port
 * virtio-console (src/virtio/console.c, the guest's hvc0), which is
 * fuzzed here rather than in a target of its own:
 *
 *   dev 0  virtio-console, output to a callback, input from the host
 *   dev 1  virtio-blk, read-only, on a file in a private temporary dir
 *   dev 2  virtio-console with multiport (3 ports, a backend that only
 *          records)
 *   dev 3  a second virtio-console
 *
 * The guest writes registers in any order (MMIO), sets queues up with
 * hostile sizes and ring addresses (SETUP), lays rings of one device over
 * another's, resets devices with batches pending, and notifies queues
 * that yield with VIRTIO_NOTIFY_MORE before serving the rest with
 * virtio_mmio_continue (NOTIFY); all of it through the shared records of
 * tests/fuzz/fuzz_guest.h, whose checks run around every call (no write
 * outside the writable buffers of chains taken, used indices moved by
 * the chains taken, errors leave the transport in DEVICE_NEEDS_RESET)
 * and after every record (each transport's state as a guest sees it).
 * Besides: the console hands the host only bytes of readable buffers;
 * host input takes no more than offered; the read-only disk never
 * changes; no fd leaks over an input.
 *
 * Input: u8 header (unused), then at most 64 records; the first byte % 8
 * selects:
 *
 *   0 CHAIN     u8 dev; u8 queue; u8 nread (% 4); u8 nwrite (% 4);
 *               u16 size[nread + nwrite]: a well-formed chain (filled
 *               with a pattern) on any queue of any device, notified.
 *   1 CONSOLE   u8 dev (0 or 3 by bit 0); u8 nrx (% 4) receive buffers of
 *               u8 size each, then u16 len, len bytes: the host's input
 *               (virtio_console_input); then the same bytes written by
 *               the guest on the transmit queue.
 *   2 FEATURES  u8 dev; u64 features; u8 n (% 4 + 1); u8 status[n]: the
 *               driver's features, then status writes in that order.
 *   3 RESET     u8 dev; u8 setup: status 0, then set up again if bit 0.
 *   4-7         the shared records (RAW, MMIO, SETUP, NOTIFY).
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_NAME "fuzz_mmio"
#include "fuzz_guest.h"

#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/ports.h"

#define MAX_RECORDS 64
#define DISK_BYTES  (8u * 512u)

static char g_base[64], g_disk[96];
static struct virtio_console *g_con[2];
static struct virtio_blk *g_blk;
static struct virtio_ports *g_ports;
static struct fz_dev *g_dev[4];
static size_t g_out_bytes;

static uint8_t disk_pattern(uint32_t off)
{
	return (uint8_t)(off * 29u + 3u);
}

static void con_out(const void *data, size_t len, void *userdata)
{
	if (userdata != &g_out_bytes)
		fail("console output with userdata %p", userdata);
	fz_saw(data, len);
	g_out_bytes += len;
}

static void ports_data(void *userdata, unsigned port, const uint8_t *data, size_t len)
{
	if (userdata != &g_out_bytes || port >= 3)
		fail("ports backend: port %u, userdata %p", port, userdata);
	fz_saw(data, len);
}

static const struct virtio_ports_backend g_be = {.data = ports_data};

/* --- records -------------------------------------------------------- */

static void rec_chain(struct input *in)
{
	struct fz_dev *d = fz_pick(get8(in));
	unsigned q = get8(in) % d->t.ops->num_queues;
	unsigned nr = get8(in) % 4, nw = get8(in) % 4;
	struct fz_buf b[8];
	for (unsigned i = 0; i < nr + nw; i++)
		b[i] = (struct fz_buf){.len = get16(in) % 8192u, .writable = i >= nr};
	if (d == g_dev[1])
		d->tainted = true; /* a disk may refuse a chain that is no request */
	int64_t used = fz_submit(d, q, b, nr + nw);
	uint64_t wtotal = 0;
	for (unsigned i = nr; i < nr + nw; i++)
		wtotal += b[i].len;
	if (used >= 0 && (uint64_t)used > wtotal)
		fail("used length %lld with %llu writable bytes", (long long)used,
		     (unsigned long long)wtotal);
}

static void rec_console(struct input *in)
{
	unsigned which = get8(in) & 1;
	struct fz_dev *d = g_dev[which ? 3 : 0];
	unsigned nrx = get8(in) % 4;
	for (unsigned i = 0; i < nrx; i++) {
		struct fz_buf b = {.len = get8(in), .writable = true};
		fz_submit(d, 0, &b, 1);
	}
	size_t len = get16(in);
	const uint8_t *p = take(in, &len);
	fz_begin_host(d);
	size_t n = virtio_console_input(g_con[which], &d->t, p, len);
	fz_end(d, 0, false);
	if (n > len)
		fail("console input took %zu of %zu bytes", n, len);
	size_t before = g_out_bytes;
	struct fz_buf b = {.len = (uint32_t)len, .data = p};
	int64_t used = fz_submit(d, 1, &b, 1);
	if (used > 0)
		fail("console transmit chain used with length %lld", (long long)used);
	if (used == 0 && !d->tainted && g_out_bytes - before != len)
		fail("console wrote %zu bytes, the host got %zu", len, g_out_bytes - before);
}

static void rec_features(struct input *in)
{
	struct fz_dev *d = fz_pick(get8(in));
	uint64_t f = get64(in);
	unsigned n = get8(in) % 4 + 1;
	d->tainted = true;
	mmio_driver_attach(&d->t, &fz.err);
	write_driver_features(f);
	for (unsigned i = 0; i < n; i++) {
		uint8_t st = get8(in);
		if (fz_write(d, R_STATUS, st) < 0)
			fail("%s: a status write failed", d->t.ops->name);
	}
	fz_settle(d);
}

static void rec_reset(struct input *in)
{
	struct fz_dev *d = fz_pick(get8(in));
	uint8_t setup = get8(in);
	fz_reset(d);
	d->tainted = true;
	if (setup & 1)
		fz_setup(d);
}

/* --- libFuzzer entry points ----------------------------------------- */

static void remove_base(void)
{
	unlink(g_disk);
	rmdir(g_base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	private_dir(g_base, sizeof(g_base), remove_base);
	snprintf(g_disk, sizeof(g_disk), "%s/disk.img", g_base);
	uint8_t buf[DISK_BYTES];
	for (uint32_t i = 0; i < DISK_BYTES; i++)
		buf[i] = disk_pattern(i);
	int fd = open(g_disk, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
	must(fd >= 0 && write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf), g_disk);
	close(fd);
	fz_init();
	return 0;
}

static void check_disk(void)
{
	uint8_t buf[DISK_BYTES + 1];
	int fd = open(g_disk, O_RDONLY | O_CLOEXEC);
	must(fd >= 0, g_disk);
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n != DISK_BYTES)
		fail("the read-only disk is %zd bytes", n);
	for (uint32_t i = 0; i < DISK_BYTES; i++)
		if (buf[i] != disk_pattern(i))
			fail("byte %u of the read-only disk changed", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	int fds = fd_count();
	fz_start();
	for (unsigned i = 0; i < 2; i++) {
		g_con[i] = virtio_console_new(con_out, &g_out_bytes);
		must(g_con[i] != NULL, "virtio_console_new");
	}
	vmp_error_clear(&fz.err);
	if (virtio_blk_new(&g_blk, g_disk, true, &fz.err))
		fail("virtio_blk_new: %s", fz.err.msg);
	static const char *const names[] = {"a", "b", "c"};
	const bool open[3] = {true, false, true};
	must(virtio_ports_new(&g_ports, 3, names, open, &g_be, &g_out_bytes) == 0, "ports");
	g_dev[0] = fz_add(virtio_console_ops(), g_con[0]);
	g_dev[1] = fz_add(virtio_blk_ops(g_blk), g_blk);
	g_dev[2] = fz_add(virtio_ports_ops(g_ports), g_ports);
	g_dev[3] = fz_add(virtio_console_ops(), g_con[1]);
	virtio_ports_attach(g_ports, &g_dev[2]->t);
	for (unsigned i = 0; i < 4; i++)
		fz_setup(g_dev[i]);
	get8(&in);
	for (unsigned r = 0; r < MAX_RECORDS && in.n; r++) {
		unsigned k = get8(&in) % 8;
		switch (k) {
		case 0: rec_chain(&in); break;
		case 1: rec_console(&in); break;
		case 2: rec_features(&in); break;
		case 3: rec_reset(&in); break;
		default: fz_record(k - 4, &in); break;
		}
		fz_check_transports();
	}
	virtio_ports_detach(g_ports);
	fz_finish();
	virtio_ports_free(g_ports);
	virtio_blk_free(g_blk);
	for (unsigned i = 0; i < 2; i++)
		virtio_console_free(g_con[i]);
	check_disk();
	if (fd_count() != fds)
		fail("%d fds open after the input, %d before", fd_count(), fds);
	return 0;
}
