/* libFuzzer target for virtio-blk (src/virtio/blk.c) over the mmio
 * transport: two disks at once, read-write and read-only, on files in a
 * private temporary directory made once (on /dev/shm when there is one):
 *
 *   BASE/rw.img      read-write disk, RW_BYTES: whole sectors and a tail
 *                    the device must never touch (rewritten every input)
 *   BASE/ro.img      read-only disk, RO_BYTES
 *   BASE/neighbour   a file no device has open
 *
 * The harness keeps a model of the read-write disk and, for every request
 * it builds, predicts the status byte, the used length and what lands in
 * the guest's buffers and in the file (requests of every type, sectors at,
 * near and past the end, transfers that are not whole sectors, headers
 * split across buffers, missing or long status buffers). After every
 * record: the files are as the model says (their size, the tail, the
 * read-only disk), and, per input, the directory holds the same three
 * files and no fd leaked. Guest memory, used rings and the transport are
 * checked by tests/fuzz/fuzz_guest.h around every call.
 *
 * Input: u8 header (unused, reserved), then at most 64 records; a
 * record's first byte % 8 selects it: 0-3 REQUEST, 4-7 the shared records
 * of fuzz_guest.h (RAW, MMIO, SETUP, NOTIFY; dev 0 is read-write, dev 1
 * read-only):
 *
 *   REQUEST  u8 dev; u8 tsel; u32 traw: type IN, OUT, FLUSH, GET_ID for
 *            tsel % 5 < 4, else traw; u8 ssel; u64 sraw: sector sraw %
 *            (sectors + 1), sectors - (sraw & 7), sectors + (sraw & 7) or
 *            sraw as is (ssel % 4); u8 split: header in one buffer (0) or
 *            two, cut at split % 16; u8 nseg (% 6) { u16 len: bit 15 set
 *            len & 0x7fff bytes, else (len % 17) sectors }; u8 dir: data
 *            buffers as the type wants them (0), all readable (1) or all
 *            writable (2); u8 status: a 1-byte status buffer (0), none
 *            (1), 2 bytes (2), or (status >> 2) + 1 bytes (3); u8 fill:
 *            the seed of what readable data holds.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_NAME "fuzz_blk"
#include "fuzz_guest.h"
#include "virtio/blk.h"

#define SECTOR      512u
#define RW_BYTES    (128u * SECTOR + 100u)
#define RO_BYTES    (16u * SECTOR + 3u)
#define MAX_RECORDS 64

#define T_IN     0u
#define T_OUT    1u
#define T_FLUSH  4u
#define T_GET_ID 8u
#define S_OK     0
#define S_IOERR  1
#define S_UNSUPP 2

static char g_base[64], g_rw[96], g_ro[96], g_neighbour[96];
static uint8_t g_model[RW_BYTES];
static struct virtio_blk *g_blk[2];
static struct fz_dev *g_dev[2];

static uint8_t rw_pattern(uint64_t off)
{
	return (uint8_t)((off >> 9) * 37u + (off & 511u) * 3u + 1u);
}

static uint8_t ro_pattern(uint64_t off)
{
	return (uint8_t)(off * 11u + 5u);
}

static void write_file(const char *path, uint8_t (*pat)(uint64_t), uint32_t len)
{
	static uint8_t buf[RW_BYTES];
	for (uint32_t i = 0; i < len; i++)
		buf[i] = pat(i);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	must(fd >= 0, path);
	must(write(fd, buf, len) == (ssize_t)len, path);
	close(fd);
}

/* The file's content, which must be len bytes long. */
static void read_file(const char *path, uint8_t *buf, uint32_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	must(fd >= 0, path);
	struct stat st;
	must(fstat(fd, &st) == 0, path);
	if (st.st_size != (off_t)len)
		fail("%s is %lld bytes, not %u", path, (long long)st.st_size, len);
	must(read(fd, buf, len) == (ssize_t)len, path);
	close(fd);
}

/* The read-write disk is the model (strict), or becomes it (after
 * records whose writes the harness does not predict); either way its
 * size and tail hold, and the read-only disk is untouched. */
static void check_files(bool strict)
{
	static uint8_t buf[RW_BYTES];
	read_file(g_rw, buf, RW_BYTES);
	for (uint32_t i = RW_BYTES / SECTOR * SECTOR; i < RW_BYTES; i++)
		if (buf[i] != rw_pattern(i))
			fail("byte %u, past the last whole sector of the disk, changed", i);
	if (strict && memcmp(buf, g_model, RW_BYTES)) {
		uint32_t i = 0;
		while (buf[i] == g_model[i])
			i++;
		fail("disk byte %u is 0x%02x, the model says 0x%02x", i, buf[i], g_model[i]);
	}
	memcpy(g_model, buf, RW_BYTES);
	read_file(g_ro, buf, RO_BYTES);
	for (uint32_t i = 0; i < RO_BYTES; i++)
		if (buf[i] != ro_pattern(i))
			fail("byte %u of the read-only disk changed", i);
}

static void check_dir(void)
{
	DIR *d = opendir(g_base);
	must(d != NULL, g_base);
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (strcmp(e->d_name, "rw.img") && strcmp(e->d_name, "ro.img") &&
		    strcmp(e->d_name, "neighbour"))
			fail("%s appeared in %s", e->d_name, g_base);
		n++;
	}
	closedir(d);
	if (n != 3)
		fail("%u files in %s, not 3", n, g_base);
	uint8_t buf[16];
	read_file(g_neighbour, buf, 9);
	if (memcmp(buf, "neighbour", 9))
		fail("the neighbour file changed");
}

/* --- requests ------------------------------------------------------- */

#define MAX_SEG 5

static void rec_request(struct input *in)
{
	static const uint32_t types[4] = {T_IN, T_OUT, T_FLUSH, T_GET_ID};
	unsigned di = get8(in) & 1;
	struct fz_dev *d = g_dev[di];
	bool ro = di == 1;
	uint64_t sectors = (ro ? RO_BYTES : RW_BYTES) / SECTOR;
	uint8_t tsel = get8(in);
	uint32_t traw = get32(in);
	uint32_t type = tsel % 5 < 4 ? types[tsel % 5] : traw;
	uint8_t ssel = get8(in);
	uint64_t sraw = get64(in);
	uint64_t sector = ssel % 4 == 0   ? sraw % (sectors + 1)
	                  : ssel % 4 == 1 ? sectors - (sraw & 7)
	                  : ssel % 4 == 2 ? sectors + (sraw & 7)
	                                  : sraw;
	uint8_t split = get8(in) % 16;
	unsigned nseg = get8(in) % (MAX_SEG + 1);
	uint32_t seg[MAX_SEG];
	for (unsigned i = 0; i < nseg; i++) {
		uint16_t l = get16(in);
		seg[i] = (l & 0x8000) ? l & 0x7fffu : (l % 17u) * SECTOR;
	}
	uint8_t dir = get8(in) % 3;
	uint8_t st = get8(in);
	uint32_t status_len = st % 4 == 0 ? 1 : st % 4 == 1 ? 0 : st % 4 == 2 ? 2 : (st >> 2) + 1u;
	uint8_t fill = get8(in);

	bool data_writable = dir == 0 ? type == T_IN || type == T_GET_ID : dir == 2;
	uint8_t hdr[16];
	memcpy(hdr, &type, 4);
	memset(hdr + 4, 0, 4);
	memcpy(hdr + 8, &sector, 8);
	static uint8_t data[MAX_SEG][0x8000];
	struct fz_buf b[2 + MAX_SEG + 1];
	unsigned n = 0;
	if (split) {
		b[n++] = (struct fz_buf){.len = split, .data = hdr};
		b[n++] = (struct fz_buf){.len = 16u - split, .data = hdr + split};
	} else {
		b[n++] = (struct fz_buf){.len = 16, .data = hdr};
	}
	unsigned first_seg = n;
	uint64_t rbytes = 16, wbytes = 0;
	for (unsigned i = 0; i < nseg; i++) {
		for (uint32_t k = 0; k < seg[i]; k++)
			data[i][k] = (uint8_t)(fill + k * 7u + i);
		b[n++] = (struct fz_buf){.len = seg[i], .writable = data_writable, .data = data[i]};
		*(data_writable ? &wbytes : &rbytes) += seg[i];
	}
	if (status_len)
		b[n++] = (struct fz_buf){.len = status_len, .writable = true};
	wbytes += status_len;
	bool clean = !d->tainted && !d->sticky;
	if (!wbytes)
		d->tainted = true; /* no status byte: the device must stop the VM */
	int64_t used = fz_submit(d, 0, b, n);
	if (used == FZ_UNPUBLISHED)
		return; /* the queue is not set up */
	if (!wbytes) {
		if (clean && used != FZ_STOPPED)
			fail("a request without a status byte did not stop the VM");
		return;
	}
	if (!clean) {
		/* What was in the ring before may have moved the disk. */
		check_files(false);
		return;
	}
	if (used < 0)
		fail("a request was not completed");
	if ((uint64_t)used != wbytes)
		fail("used length %lld, the request has %llu writable bytes", (long long)used,
		     (unsigned long long)wbytes);

	/* The writable bytes, in order, as the device left them. */
	static uint8_t out[MAX_SEG * 0x8000 + 64];
	uint64_t o = 0;
	for (unsigned i = first_seg; i < n; i++)
		if (b[i].writable) {
			memcpy(out + o, fz_ptr(b[i].gpa), b[i].len);
			o += b[i].len;
		}
	uint64_t data_in = wbytes - 1, data_out = rbytes - 16;
	uint8_t want;
	uint64_t bytes = type == T_IN ? data_in : data_out;
	bool in_range =
	    bytes % SECTOR == 0 && sector <= sectors && bytes / SECTOR <= sectors - sector;
	switch (type) {
	case T_IN: want = in_range ? S_OK : S_IOERR; break;
	case T_OUT: want = ro || !in_range ? S_IOERR : S_OK; break;
	case T_FLUSH:
	case T_GET_ID: want = S_OK; break;
	default: want = S_UNSUPP; break;
	}
	if (out[wbytes - 1] != want)
		fail("type %u sector %llu (%llu bytes in, %llu out): status %u, want %u", type,
		     (unsigned long long)sector, (unsigned long long)data_in,
		     (unsigned long long)data_out, out[wbytes - 1], want);
	/* What the guest got back. */
	for (uint64_t k = 0; k < data_in; k++) {
		uint8_t w = 0xee;
		if (type == T_IN && want == S_OK) {
			uint64_t off = sector * SECTOR + k;
			w = ro ? ro_pattern(off) : g_model[off];
		} else if (type == T_GET_ID && k < 20) {
			w = k < 6 ? (uint8_t) "vmproc"[k] : 0;
		}
		if (out[k] != w)
			fail("type %u: writable byte %llu is 0x%02x, want 0x%02x", type,
			     (unsigned long long)k, out[k], w);
	}
	if (type == T_OUT && want == S_OK) {
		uint64_t off = sector * SECTOR;
		for (unsigned i = first_seg; i < n && !b[i].writable; i++) {
			memcpy(g_model + off, data[i - first_seg], b[i].len);
			off += b[i].len;
		}
	}
	check_files(true);
}

/* --- libFuzzer entry points ----------------------------------------- */

static void remove_base(void)
{
	unlink(g_rw);
	unlink(g_ro);
	unlink(g_neighbour);
	rmdir(g_base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	private_dir(g_base, sizeof(g_base), remove_base);
	snprintf(g_rw, sizeof(g_rw), "%s/rw.img", g_base);
	snprintf(g_ro, sizeof(g_ro), "%s/ro.img", g_base);
	snprintf(g_neighbour, sizeof(g_neighbour), "%s/neighbour", g_base);
	write_file(g_ro, ro_pattern, RO_BYTES);
	int fd = open(g_neighbour, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	must(fd >= 0 && write(fd, "neighbour", 9) == 9, g_neighbour);
	close(fd);
	fz_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	write_file(g_rw, rw_pattern, RW_BYTES);
	for (uint32_t i = 0; i < RW_BYTES; i++)
		g_model[i] = rw_pattern(i);
	int fds = fd_count();
	fz_start();
	const char *path[2] = {g_rw, g_ro};
	for (unsigned i = 0; i < 2; i++) {
		vmp_error_clear(&fz.err);
		if (virtio_blk_new(&g_blk[i], path[i], i == 1, &fz.err))
			fail("virtio_blk_new: %s", fz.err.msg);
		g_dev[i] = fz_add(virtio_blk_ops(g_blk[i]), g_blk[i]);
		fz_setup(g_dev[i]);
	}
	get8(&in);
	for (unsigned r = 0; r < MAX_RECORDS && in.n; r++) {
		unsigned k = get8(&in) % 8;
		if (k < 4) {
			rec_request(&in);
			fz_check_transports();
		} else {
			fz_record(k - 4, &in);
			check_files(false);
		}
	}
	fz_finish();
	for (unsigned i = 0; i < 2; i++)
		virtio_blk_free(g_blk[i]);
	check_files(false);
	check_dir();
	if (fd_count() != fds)
		fail("%d fds open after the input, %d before", fd_count(), fds);
	return 0;
}
