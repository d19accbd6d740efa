/* Snapshots without a VM: a synthetic struct snapshot (recognisable
 * state values, a 4 MiB memfd with a few non-zero pages) written to a
 * file in a temporary directory and read back; then that file damaged,
 * truncated or re-written with a header whose MAC is right but whose
 * values are not, each of which snapshot_read must refuse. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "harness.h"
#include "snapshot/snapshot.h"
#include "util/error.h"
#include "vmproc.h"
#include "x86/kvm_state.h"

/* The on-disk header (snapshot.h); its size is part of the format. */
/* What snapshot.c writes as header_size and state_off (checked on every
 * file the tests write, in check_layout). */
_Static_assert(sizeof(struct snapshot_file_header) == 192, "the snapshot file header is 192 bytes");
_Static_assert(offsetof(struct snapshot_file_header, header_mac) == 160, "header_mac is last");

#define PAGE     SNAPSHOT_PAGE
#define MEM_SIZE (4u << 20)
#define NPAGES   (MEM_SIZE / PAGE)

/* Non-zero pages of the synthetic guest memory, and one that stays zero. */
static const unsigned k_pages[] = {0, 5, 6, 300, NPAGES - 1};
#define ZERO_PAGE 7u
#define DATA_PAGE 5u

static char g_dir[64];
static char g_path[128];
static struct vmp_error g_err;
/* The user's secret the files are written with (any 32 bytes will do). */
static const uint8_t g_secret[SNAPSHOT_SECRET_LEN] = "a test secret, 32 bytes long...";

/* --- helpers -------------------------------------------------------- */

static uint8_t page_byte(unsigned page, unsigned i)
{
	return (uint8_t)(page * 31 + i * 7 + 1) | 1; /* never 0 */
}

static void fill_key(uint8_t key[SNAPSHOT_KEY_LEN], uint8_t base)
{
	for (unsigned i = 0; i < SNAPSHOT_KEY_LEN; i++)
		key[i] = (uint8_t)(base + i * 3);
}

/* A memfd of MEM_SIZE bytes with the k_pages pages filled; the rest are
 * holes, except that page 9 is written with zeros (allocated, but zero). */
static int make_mem(bool with_data)
{
	int fd = memfd_create("test-snapshot", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, MEM_SIZE) < 0) {
		close(fd);
		return -1;
	}
	uint8_t buf[PAGE];
	for (size_t k = 0; with_data && k < sizeof(k_pages) / sizeof(k_pages[0]); k++) {
		for (unsigned i = 0; i < PAGE; i++)
			buf[i] = page_byte(k_pages[k], i);
		if (pwrite(fd, buf, PAGE, (off_t)k_pages[k] * PAGE) != (ssize_t)PAGE) {
			close(fd);
			return -1;
		}
	}
	memset(buf, 0, sizeof(buf));
	if (pwrite(fd, buf, PAGE, 9 * PAGE) != (ssize_t)PAGE) {
		close(fd);
		return -1;
	}
	return fd;
}

/* What the memory of make_mem(true) holds. */
static uint8_t *expected_mem(void)
{
	uint8_t *m = calloc(1, MEM_SIZE);
	if (!m)
		return NULL;
	for (size_t k = 0; k < sizeof(k_pages) / sizeof(k_pages[0]); k++)
		for (unsigned i = 0; i < PAGE; i++)
			m[(size_t)k_pages[k] * PAGE + i] = page_byte(k_pages[k], i);
	return m;
}

/* A synthetic snapshot with recognisable values everywhere. */
static struct snapshot *make_snapshot(uint32_t nvcpus, uint32_t ndev, bool with_data)
{
	struct snapshot *s = snapshot_new(nvcpus);
	if (!s)
		return NULL;
	fill_key(s->key, 0x40);
	s->ndev = ndev;
	s->has_channel = true;
	s->mem_size = MEM_SIZE;
	s->mem_off = 0;
	s->mem_fd = make_mem(with_data);
	if (s->mem_fd < 0) {
		snapshot_unref(s);
		return NULL;
	}
	s->vm.clock.clock = 0x1122334455667788ull;
	s->vm.pit.channels[0].count = 0xabcd;
	s->vm.ioapic.chip_id = 2;
	for (uint32_t i = 0; i < nvcpus; i++) {
		struct x86_vcpu_state *v = &s->vcpu[i];
		v->regs.rip = 0xffffffff81000000ull + i;
		v->regs.rax = 0xa5a5a5a5a5a5a5a5ull ^ i;
		v->sregs.cr3 = 0x1000 * (i + 1);
		v->xcrs.nr_xcrs = 1;
		v->xcrs.xcrs[0].value = 7;
		v->nmsrs = 3;
		for (uint32_t m = 0; m < 3; m++) {
			v->msrs[m].index = 0xc0000080 + m;
			v->msrs[m].data = 0x100 * (i + 1) + m;
		}
		v->msrs[X86_STATE_MAX_MSRS - 1].data = 0xfeedull + i; /* unused, kept */
	}
	for (uint32_t d = 0; d < ndev; d++) {
		s->dev[d].device_id = 2 + d;
		s->dev[d].status = 0xf;
		s->dev[d].driver_features = VIRTIO_F_VERSION_1 | d;
		s->dev[d].vq[1].size = 64;
		s->dev[d].vq[1].ready = 1;
		s->dev[d].vq[1].desc_gpa = 0x10000ull * (d + 1);
		s->dev[d].vq[1].last_avail = (uint16_t)(1000 + d);
	}
	s->channel.nports = 2;
	s->channel.device_ready = 1;
	s->channel.port[1].guest_open = 1;
	s->channel.npending = 1;
	s->channel.pending[0].id = 1;
	s->channel.pending[0].event = 6;
	s->channel.pending[0].value = 1;
	return s;
}

static bool same_state(const struct snapshot *a, const struct snapshot *b)
{
	if (a->nvcpus != b->nvcpus || a->ndev != b->ndev || a->has_channel != b->has_channel ||
	    a->mem_size != b->mem_size || memcmp(a->key, b->key, SNAPSHOT_KEY_LEN) ||
	    memcmp(&a->vm, &b->vm, sizeof(a->vm)) ||
	    memcmp(&a->channel, &b->channel, sizeof(a->channel)))
		return false;
	for (uint32_t i = 0; i < a->nvcpus; i++)
		if (memcmp(&a->vcpu[i], &b->vcpu[i], sizeof(a->vcpu[i])))
			return false;
	for (uint32_t i = 0; i < a->ndev; i++)
		if (memcmp(&a->dev[i], &b->dev[i], sizeof(a->dev[i])))
			return false;
	return true;
}

static int setup_dir(void)
{
	if (g_dir[0])
		return 0;
	if (harness_temp_dir(g_dir, sizeof(g_dir), "vmp-snap"))
		return -1;
	snprintf(g_path, sizeof(g_path), "%s/snap", g_dir);
	return 0;
}

/* Entries of the temporary directory besides . and .. */
static unsigned dir_entries(void)
{
	DIR *d = opendir(g_dir);
	if (!d)
		return 1000;
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void clean_dir(void)
{
	DIR *d = opendir(g_dir);
	if (!d)
		return;
	struct dirent *e;
	char p[sizeof(g_dir) + 256 + 2];
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", g_dir, e->d_name);
			unlink(p);
		}
	closedir(d);
}

__attribute__((destructor)) static void remove_dir(void)
{
	if (g_dir[0]) {
		clean_dir();
		rmdir(g_dir);
	}
}

/* Open file descriptors of this process: a failed read must close its. */
static unsigned fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	unsigned n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Writes a fresh synthetic snapshot to g_path. */
static int write_fresh(uint32_t nvcpus, uint32_t ndev)
{
	if (setup_dir())
		return -1;
	struct snapshot *s = make_snapshot(nvcpus, ndev, true);
	if (!s)
		return -1;
	vmp_error_clear(&g_err);
	int rc = snapshot_write(s, g_path, g_secret, &g_err);
	snapshot_unref(s);
	return rc;
}

#define WRITE_FRESH(nv, nd)                                                                        \
	do {                                                                                       \
		int rc_ = write_fresh(nv, nd);                                                     \
		CHECK_MSG(rc_ == 0, "write: %d: %s", rc_, g_err.msg);                              \
		if (rc_)                                                                           \
			return;                                                                    \
	} while (0)

/* Reads g_path with key (NULL: the synthetic one), checks it fails with
 * want and a message; returns the code. */
static int read_code(const uint8_t *key)
{
	uint8_t k[SNAPSHOT_KEY_LEN];
	fill_key(k, 0x40);
	struct snapshot *s = (struct snapshot *)1;
	vmp_error_clear(&g_err);
	int rc = snapshot_read(g_path, key ? key : k, g_secret, &s, &g_err);
	if (rc == 0) {
		snapshot_unref(s);
		return 0;
	}
	if (s != NULL || g_err.msg[0] == '\0' || g_err.code == 0)
		return -10000; /* an error must leave *out NULL and say why */
	if (g_err.code != rc)
		return -10001; /* with the code it returns (found by fuzz_snapshot) */
	return rc;
}

#define EXPECT_READ(want, ...)                                                                     \
	do {                                                                                       \
		int rc_ = read_code(NULL);                                                         \
		CHECK_MSG(rc_ == (want), "got %d (%s), want %d: " __VA_ARGS__, rc_, g_err.msg,     \
		          want);                                                                   \
	} while (0)

static int read_header(struct snapshot_file_header *h)
{
	int fd = open(g_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, h, sizeof(*h), 0);
	close(fd);
	return n == (ssize_t)sizeof(*h) ? 0 : -1;
}

/* HMAC-SHA256 of the header with header_mac zero, under secret: made
 * here with OpenSSL's one-shot HMAC(), apart from the library's. */
static void header_mac_of(const struct snapshot_file_header *h, const uint8_t *secret,
                          uint8_t out[SNAPSHOT_MAC_LEN])
{
	struct snapshot_file_header c = *h;
	memset(c.header_mac, 0, sizeof(c.header_mac));
	unsigned len = 0;
	if (!HMAC(EVP_sha256(), secret, SNAPSHOT_SECRET_LEN, (const uint8_t *)&c, sizeof(c), out,
	          &len) ||
	    len != SNAPSHOT_MAC_LEN)
		memset(out, 0, SNAPSHOT_MAC_LEN);
}

static bool header_mac_is_right(const struct snapshot_file_header *h)
{
	uint8_t mac[SNAPSHOT_MAC_LEN];
	header_mac_of(h, g_secret, mac);
	return !memcmp(mac, h->header_mac, SNAPSHOT_MAC_LEN);
}

/* Writes h with a correct header_mac. */
static int write_header(struct snapshot_file_header *h)
{
	header_mac_of(h, g_secret, h->header_mac);
	int fd = open(g_path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = pwrite(fd, h, sizeof(*h), 0);
	close(fd);
	return n == (ssize_t)sizeof(*h) ? 0 : -1;
}

static int poke(uint64_t off, const void *data, size_t len)
{
	int fd = open(g_path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = pwrite(fd, data, len, (off_t)off);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static int flip(uint64_t off, uint8_t mask)
{
	int fd = open(g_path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	uint8_t b;
	int rc = -1;
	if (pread(fd, &b, 1, (off_t)off) == 1) {
		b ^= mask;
		rc = pwrite(fd, &b, 1, (off_t)off) == 1 ? 0 : -1;
	}
	close(fd);
	return rc;
}

static int write_text(const char *text, size_t len)
{
	int fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	ssize_t n = len ? write(fd, text, len) : 0;
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/* The header fields that follow from the snapshot written. */
static bool check_layout(const struct snapshot_file_header *h, uint32_t nvcpus, uint32_t ndev)
{
	uint64_t state = sizeof(struct x86_vm_state) + nvcpus * sizeof(struct x86_vcpu_state) +
	                 ndev * sizeof(struct virtio_mmio_state) +
	                 sizeof(struct virtio_ports_state);
	return !memcmp(h->magic, "VMPSNAP", 8) && h->format_version == SNAPSHOT_FORMAT_VERSION &&
	       h->header_size == sizeof(*h) && h->state_off == sizeof(*h) &&
	       h->state_len == state && h->mem_off % PAGE == 0 &&
	       h->mem_off >= h->state_off + h->state_len && h->mem_off - state < 2 * PAGE &&
	       h->mem_size == MEM_SIZE && h->nvcpus == nvcpus && h->ndev == ndev &&
	       h->has_channel == 1 && header_mac_is_right(h) &&
	       !strcmp(h->vmproc_version, VMPROC_VERSION_STRING);
}

/* --- snapshot_hash -------------------------------------------------- */

static void hash_is_deterministic_and_sensitive(void)
{
	uint8_t a[300], b[301];
	for (unsigned i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i * 13 + 5);
	/* Same input, same hash, wherever it lies (unaligned too). */
	memcpy(b + 1, a, sizeof(a));
	for (uint64_t len = 0; len <= sizeof(a); len++) {
		uint64_t h = snapshot_hash(7, a, len);
		CHECK_MSG(h == snapshot_hash(7, a, len), "len %llu", (unsigned long long)len);
		CHECK_MSG(h == snapshot_hash(7, b + 1, len), "len %llu unaligned",
		          (unsigned long long)len);
		/* The seed matters. */
		CHECK_MSG(h != snapshot_hash(8, a, len), "len %llu seed", (unsigned long long)len);
		CHECK_MSG(h != snapshot_hash(~7ull, a, len), "len %llu seed",
		          (unsigned long long)len);
		/* So does the length, even when the extra byte is zero. */
		if (len < sizeof(a))
			CHECK_MSG(h != snapshot_hash(7, a, len + 1), "len %llu+1",
			          (unsigned long long)len);
	}
	/* Every byte of every length, in the 32-byte blocks and the tail,
	 * each bit flipped at a time. */
	static const uint64_t lens[] = {1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 255, 300};
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		uint64_t len = lens[k], h = snapshot_hash(1, a, len);
		for (uint64_t i = 0; i < len; i++)
			for (unsigned bit = 0; bit < 8; bit++) {
				a[i] ^= (uint8_t)(1u << bit);
				uint64_t h2 = snapshot_hash(1, a, len);
				a[i] ^= (uint8_t)(1u << bit);
				CHECK_MSG(h2 != h, "len %llu byte %llu bit %u",
				          (unsigned long long)len, (unsigned long long)i, bit);
			}
		CHECK(snapshot_hash(1, a, len) == h);
	}
	/* Zeros of different lengths, and swapped words, differ. */
	static const uint8_t zero[64];
	for (unsigned len = 0; len < 64; len++)
		CHECK_MSG(snapshot_hash(0, zero, len) != snapshot_hash(0, zero, len + 1),
		          "zeros %u", len);
	uint64_t w[8] = {1, 2, 3, 4, 5, 6, 7, 8}, v[8] = {2, 1, 3, 4, 5, 6, 7, 8};
	CHECK(snapshot_hash(0, w, sizeof(w)) != snapshot_hash(0, v, sizeof(v)));
	uint64_t x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8] = {5, 6, 7, 8, 1, 2, 3, 4};
	CHECK(snapshot_hash(0, x, sizeof(x)) != snapshot_hash(0, y, sizeof(y)));
	/* Length 0 reads nothing (NULL is fine). */
	CHECK(snapshot_hash(3, NULL, 0) == snapshot_hash(3, a, 0));
}

static void hash_reads_only_len_bytes(void)
{
	/* Exactly sized heap buffers: under ASan a read past len is caught. */
	for (size_t len = 1; len <= 70; len++) {
		uint8_t *p = malloc(len);
		if (!p) {
			CHECK(p);
			return;
		}
		memset(p, 0x5c, len);
		uint64_t h = snapshot_hash(9, p, len);
		CHECK(h == snapshot_hash(9, p, len));
		free(p);
	}
}

/* --- the round trip -------------------------------------------------- */

static void write_read_round_trip(void)
{
	static const uint32_t cpus[] = {1, 2};
	static const uint32_t devs[] = {0, 3, SNAPSHOT_MAX_DEVICES};
	CHECK(setup_dir() == 0);
	uint8_t *want = expected_mem();
	CHECK(want != NULL);
	if (!want)
		return;
	for (size_t c = 0; c < 2; c++)
		for (size_t d = 0; d < 3; d++) {
			clean_dir();
			struct snapshot *s = make_snapshot(cpus[c], devs[d], true);
			CHECK(s != NULL);
			if (!s)
				continue;
			vmp_error_clear(&g_err);
			int rc = snapshot_write(s, g_path, g_secret, &g_err);
			CHECK_MSG(rc == 0, "%u cpus %u devs: write %d: %s", cpus[c], devs[d], rc,
			          g_err.msg);
			CHECK_MSG(dir_entries() == 1, "%u entries: a temporary file is left",
			          dir_entries());
			struct snapshot_file_header h;
			CHECK(read_header(&h) == 0 && check_layout(&h, cpus[c], devs[d]));
			CHECK(!memcmp(h.key, s->key, SNAPSHOT_KEY_LEN));
			/* Sparse: a handful of pages besides the state. */
			struct stat st;
			CHECK(stat(g_path, &st) == 0);
			CHECK(S_ISREG(st.st_mode) && (uint64_t)st.st_size == h.mem_off + MEM_SIZE);
			CHECK_MSG((uint64_t)st.st_blocks * 512 <= h.mem_off + 64 * PAGE,
			          "%llu bytes allocated of %llu",
			          (unsigned long long)st.st_blocks * 512,
			          (unsigned long long)st.st_size);
			/* Not readable by others: it holds guest memory. */
			CHECK((st.st_mode & 077) == 0);

			struct snapshot *r = NULL;
			vmp_error_clear(&g_err);
			rc = snapshot_read(g_path, s->key, g_secret, &r, &g_err);
			CHECK_MSG(rc == 0 && r, "read %d: %s", rc, g_err.msg);
			if (r) {
				CHECK(same_state(s, r));
				CHECK(r->vcpu[0].regs.rip == 0xffffffff81000000ull);
				CHECK(r->vcpu[cpus[c] - 1].msrs[2].data == 0x100 * cpus[c] + 2);
				CHECK(r->mem_off == 0 && r->mem_fd >= 0); /* a copy */
				CHECK(atomic_load(&r->refs) == 1);
				uint8_t *m = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
				                  MAP_PRIVATE, r->mem_fd, (off_t)r->mem_off);
				CHECK(m != MAP_FAILED);
				if (m != MAP_FAILED) {
					CHECK(memcmp(m, want, MEM_SIZE) == 0);
					for (unsigned p = 0; p < NPAGES; p += 97)
						CHECK_MSG(!memcmp(m + (size_t)p * PAGE,
						                  want + (size_t)p * PAGE, PAGE),
						          "page %u", p);
					/* Private: a clone's writes do not reach the file. */
					m[DATA_PAGE * PAGE] ^= 0xff;
					munmap(m, MEM_SIZE);
				}
				snapshot_unref(r);
			}
			CHECK(read_code(NULL) == 0);
			snapshot_unref(s);
		}
	free(want);
	clean_dir();
}

/* What a clone maps is what was verified: the file rewritten, then
 * truncated, after snapshot_read changes nothing of it (a mapping of the
 * file would see the new bytes, then raise SIGBUS). */
static void memory_is_a_sealed_copy(void)
{
	WRITE_FRESH(1, 1);
	struct snapshot *r = NULL;
	vmp_error_clear(&g_err);
	CHECK_MSG(snapshot_read(g_path, NULL, g_secret, &r, &g_err) == 0 && r, "%s", g_err.msg);
	uint8_t *want = expected_mem(), *got = malloc(MEM_SIZE);
	if (!r || !want || !got) {
		CHECK(want && got);
		goto out;
	}
	struct snapshot_file_header h;
	CHECK(read_header(&h) == 0);
	/* Every page rewritten (holes and data), then the file cut short. */
	uint8_t junk[PAGE];
	memset(junk, 0xee, sizeof(junk));
	for (unsigned p = 0; p < NPAGES; p++)
		CHECK(poke(h.mem_off + (uint64_t)p * PAGE, junk, PAGE) == 0);
	ssize_t n = pread(r->mem_fd, got, MEM_SIZE, (off_t)r->mem_off);
	CHECK_MSG(n == MEM_SIZE && !memcmp(got, want, MEM_SIZE), "after a rewrite: %zd", n);
	CHECK(truncate(g_path, 0) == 0);
	n = pread(r->mem_fd, got, MEM_SIZE, (off_t)r->mem_off);
	bool same = n == MEM_SIZE && !memcmp(got, want, MEM_SIZE);
	CHECK_MSG(same, "after truncation: %zd", n);
	/* Sparse like the file: the holes were not filled in. */
	struct stat st;
	CHECK(fstat(r->mem_fd, &st) == 0 && (uint64_t)st.st_blocks * 512 <= 16 * PAGE);
	/* As a clone maps it (only when it is there: a mapping past the
	 * end of the file would raise SIGBUS). */
	uint8_t *m = same ? mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, r->mem_fd,
	                         (off_t)r->mem_off)
	                  : MAP_FAILED;
	CHECK(!same || m != MAP_FAILED);
	if (m != MAP_FAILED) {
		CHECK(memcmp(m, want, MEM_SIZE) == 0);
		m[DATA_PAGE * PAGE] ^= 1; /* copy-on-write */
		munmap(m, MEM_SIZE);
	}
	/* Sealed: not even this process can change it. */
	int seals = fcntl(r->mem_fd, F_GET_SEALS);
	CHECK_MSG(seals >= 0 &&
	              (seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) ==
	                  (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
	          "seals %#x", seals);
	CHECK(pwrite(r->mem_fd, junk, 1, 0) < 0 && errno == EPERM);
	CHECK(ftruncate(r->mem_fd, PAGE) < 0 && errno == EPERM);
	CHECK(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, r->mem_fd, 0) == MAP_FAILED);
	n = pread(r->mem_fd, got, MEM_SIZE, 0);
	CHECK(n == MEM_SIZE && !memcmp(got, want, MEM_SIZE));
out:
	free(want);
	free(got);
	snapshot_unref(r);
	clean_dir();
}

/* A snapshot read from a file (memory in a sealed copy) written again,
 * as a template loaded from disk and saved elsewhere would be. */
static void rewrite_of_a_read_snapshot(void)
{
	WRITE_FRESH(2, 2);
	struct snapshot *r = NULL, *r2 = NULL;
	CHECK(snapshot_read(g_path, NULL, g_secret, &r, &g_err) == 0 && r);
	if (!r)
		return;
	CHECK(r->mem_off == 0);
	char path2[160];
	snprintf(path2, sizeof(path2), "%s/second", g_dir);
	vmp_error_clear(&g_err);
	CHECK_MSG(snapshot_write(r, path2, g_secret, &g_err) == 0, "%s", g_err.msg);
	CHECK(snapshot_read(path2, r->key, g_secret, &r2, &g_err) == 0 && r2);
	uint8_t *want = expected_mem();
	if (r2 && want) {
		CHECK(same_state(r, r2));
		uint8_t *m =
		    mmap(NULL, MEM_SIZE, PROT_READ, MAP_PRIVATE, r2->mem_fd, (off_t)r2->mem_off);
		CHECK(m != MAP_FAILED);
		if (m != MAP_FAILED) {
			CHECK(memcmp(m, want, MEM_SIZE) == 0);
			munmap(m, MEM_SIZE);
		}
	}
	/* Over an existing file: replaced, nothing else left. */
	r->key[0] ^= 1;
	CHECK(snapshot_write(r, path2, g_secret, &g_err) == 0);
	CHECK(dir_entries() == 2);
	uint8_t k[SNAPSHOT_KEY_LEN];
	memcpy(k, r->key, sizeof(k));
	struct snapshot *r3 = NULL;
	CHECK(snapshot_read(path2, k, g_secret, &r3, &g_err) == 0 && r3);
	snapshot_unref(r3);
	free(want);
	snapshot_unref(r2);
	snapshot_unref(r);
	clean_dir();
}

/* All-zero memory: no data at all after the state. */
static void all_zero_memory(void)
{
	CHECK(setup_dir() == 0);
	struct snapshot *s = make_snapshot(1, 1, false);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(snapshot_write(s, g_path, g_secret, &g_err) == 0);
	struct stat st;
	CHECK(stat(g_path, &st) == 0 && (uint64_t)st.st_blocks * 512 <= 16 * PAGE + 64 * 1024);
	struct snapshot *r = NULL;
	CHECK(snapshot_read(g_path, s->key, g_secret, &r, &g_err) == 0 && r);
	if (r) {
		uint8_t *m =
		    mmap(NULL, MEM_SIZE, PROT_READ, MAP_PRIVATE, r->mem_fd, (off_t)r->mem_off);
		CHECK(m != MAP_FAILED);
		if (m != MAP_FAILED) {
			bool zero = true;
			for (size_t i = 0; i < MEM_SIZE; i++)
				zero &= m[i] == 0;
			CHECK(zero);
			munmap(m, MEM_SIZE);
		}
	}
	snapshot_unref(r);
	snapshot_unref(s);
	clean_dir();
}

/* --- files that are not this snapshot -------------------------------- */

static void read_rejects_other_files(void)
{
	WRITE_FRESH(1, 1);
	/* Another key: stale; no key: fine. */
	uint8_t other[SNAPSHOT_KEY_LEN];
	fill_key(other, 0x40);
	other[SNAPSHOT_KEY_LEN - 1] ^= 0x80;
	CHECK(read_code(other) == -ESTALE);
	struct snapshot *s = NULL;
	CHECK(snapshot_read(g_path, NULL, g_secret, &s, &g_err) == 0 && s);
	snapshot_unref(s);

	/* Missing file. */
	unlink(g_path);
	CHECK(read_code(NULL) == -ENOENT);
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/no/such/dir", g_dir);
	s = (struct snapshot *)1;
	CHECK(snapshot_read(missing, NULL, g_secret, &s, &g_err) == -ENOENT && s == NULL);

	/* Empty, short text, long text. */
	CHECK(write_text("", 0) == 0);
	EXPECT_READ(-EBADMSG, "empty");
	CHECK(write_text("hello\n", 6) == 0);
	EXPECT_READ(-EBADMSG, "short text");
	char text[8192];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "lorem ipsum dolor sit amet\n"[i % 27];
	CHECK(write_text(text, sizeof(text)) == 0);
	EXPECT_READ(-EBADMSG, "text");
	/* A directory. */
	unlink(g_path);
	CHECK(mkdir(g_path, 0700) == 0);
	int rc = read_code(NULL);
	CHECK_MSG(rc == -EBADMSG || rc == -EISDIR, "directory: %d", rc);
	rmdir(g_path);

	/* The wrong magic, with everything else right (even the hash). */
	WRITE_FRESH(1, 1);
	struct snapshot_file_header h;
	CHECK(read_header(&h) == 0);
	h.magic[0] = 'X';
	CHECK(write_header(&h) == 0);
	EXPECT_READ(-EBADMSG, "magic");
	clean_dir();
}

/* --- authentication ------------------------------------------------- */

/* What someone without the user's secret can make is refused: a file
 * written by this very code under another secret (theirs), with a state
 * of their choosing, or a good file with its header re-MACed under a
 * guessed one. */
static void forged_files_are_refused(void)
{
	static const uint8_t theirs[SNAPSHOT_SECRET_LEN] = "someone else's secret, 32 bytes";
	CHECK(setup_dir() == 0);
	struct snapshot *s = make_snapshot(1, 1, true);
	CHECK(s != NULL);
	if (!s)
		return;
	s->vcpu[0].regs.rip = 0x4141414141414141ull;
	vmp_error_clear(&g_err);
	CHECK(snapshot_write(s, g_path, theirs, &g_err) == 0);
	snapshot_unref(s);
	int rc = read_code(NULL);
	CHECK_MSG(rc == -EBADMSG && strstr(g_err.msg, "authenticate"), "%d %s", rc, g_err.msg);
	/* ... which the secret it was made with does read. */
	s = NULL;
	CHECK(snapshot_read(g_path, NULL, theirs, &s, &g_err) == 0 && s &&
	      s->vcpu[0].regs.rip == 0x4141414141414141ull);
	snapshot_unref(s);
	/* A good file, its header's MAC made with a guessed secret. */
	WRITE_FRESH(1, 1);
	struct snapshot_file_header h;
	CHECK(read_header(&h) == 0);
	static const uint8_t zero[SNAPSHOT_SECRET_LEN];
	header_mac_of(&h, zero, h.header_mac);
	CHECK(poke(0, &h, sizeof(h)) == 0);
	EXPECT_READ(-EBADMSG, "header MAC under a guessed secret");
	/* A good file's data MAC moved onto another good file's header (both
	 * the user's): the header MAC covers it. */
	WRITE_FRESH(1, 1);
	CHECK(read_header(&h) == 0);
	uint8_t other_mac[SNAPSHOT_MAC_LEN];
	struct snapshot_file_header z;
	s = make_snapshot(1, 1, false);
	CHECK(s && snapshot_write(s, g_path, g_secret, &g_err) == 0);
	snapshot_unref(s);
	CHECK(read_header(&z) == 0);
	memcpy(other_mac, h.data_mac, sizeof(other_mac));
	memcpy(z.data_mac, other_mac, sizeof(other_mac));
	CHECK(poke(0, &z, sizeof(z)) == 0);
	EXPECT_READ(-EBADMSG, "data MAC of another file");
	clean_dir();
}

/* --- files that are not the user's own ------------------------------- */

static void read_refuses_files_not_the_users_own(void)
{
	WRITE_FRESH(1, 1);
	/* A symbolic link to a good snapshot is not followed. */
	char link[160];
	snprintf(link, sizeof(link), "%s/link", g_dir);
	CHECK(symlink(g_path, link) == 0);
	struct snapshot *s = (struct snapshot *)1;
	vmp_error_clear(&g_err);
	int rc = snapshot_read(link, NULL, g_secret, &s, &g_err);
	CHECK_MSG(rc == -ELOOP && s == NULL && strstr(g_err.msg, "symbolic link"), "link: %d %s",
	          rc, g_err.msg);
	if (rc == 0)
		snapshot_unref(s);
	unlink(link);
	/* Writable by group or others: refused; readable is fine. */
	static const struct {
		mode_t mode;
		int want;
	} modes[] = {{0664, -EPERM}, {0646, -EPERM}, {0622, -EPERM}, {0644, 0}, {0600, 0}};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		CHECK(chmod(g_path, modes[i].mode) == 0);
		rc = read_code(NULL);
		CHECK_MSG(rc == modes[i].want, "mode %03o: %d (%s)", (unsigned)modes[i].mode, rc,
		          g_err.msg);
		CHECK(rc == 0 || strstr(g_err.msg, "writable by group or others"));
	}
	/* Another user's (only root can make one). */
	if (chown(g_path, 65534, 65534) == 0) {
		rc = read_code(NULL);
		CHECK_MSG(rc == -EPERM && strstr(g_err.msg, "owned by uid 65534"), "%d (%s)", rc,
		          g_err.msg);
	}
	/* A FIFO is not a snapshot, and does not hang the reader. */
	unlink(g_path);
	CHECK(mkfifo(g_path, 0600) == 0);
	EXPECT_READ(-EBADMSG, "FIFO");
	clean_dir();
}

/* --- damage ---------------------------------------------------------- */

static void damaged_header(void)
{
	unsigned fds = fd_count();
	/* Every byte of the header, one at a time. */
	for (unsigned i = 0; i < sizeof(struct snapshot_file_header); i++) {
		WRITE_FRESH(1, 1);
		CHECK(flip(i, 0x10) == 0);
		int rc = read_code(NULL);
		CHECK_MSG(rc == -EBADMSG, "header byte %u: %d (%s)", i, rc, g_err.msg);
	}
	CHECK(fd_count() == fds);
	clean_dir();
}

static void damaged_state(void)
{
	WRITE_FRESH(2, 2);
	struct snapshot_file_header h;
	CHECK(read_header(&h) == 0);
	uint64_t at[] = {0,
	                 sizeof(struct x86_vm_state) - 1,
	                 sizeof(struct x86_vm_state) + 1,
	                 sizeof(struct x86_vm_state) + sizeof(struct x86_vcpu_state) + 8,
	                 h.state_len - sizeof(struct virtio_ports_state) -
	                     sizeof(struct virtio_mmio_state),
	                 h.state_len - 1};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		WRITE_FRESH(2, 2);
		CHECK(flip(h.state_off + at[i], 0x01) == 0);
		int rc = read_code(NULL);
		CHECK_MSG(rc == -EBADMSG, "state byte %llu: %d (%s)", (unsigned long long)at[i], rc,
		          g_err.msg);
	}
	clean_dir();
}

static void damaged_memory(void)
{
	struct snapshot_file_header h;
	uint8_t zero[PAGE] = {0};
	/* One byte of a non-zero page: first, middle, last page of memory. */
	static const unsigned where[][2] = {{0, 0}, {DATA_PAGE, 1234}, {NPAGES - 1, PAGE - 1}};
	for (size_t i = 0; i < 3; i++) {
		WRITE_FRESH(1, 1);
		CHECK(read_header(&h) == 0);
		CHECK(flip(h.mem_off + (uint64_t)where[i][0] * PAGE + where[i][1], 0x40) == 0);
		int rc = read_code(NULL);
		CHECK_MSG(rc == -EBADMSG, "page %u: %d (%s)", where[i][0], rc, g_err.msg);
	}
	/* A zero page (a hole) becomes non-zero. */
	WRITE_FRESH(1, 1);
	CHECK(poke(h.mem_off + (uint64_t)ZERO_PAGE * PAGE + 100, "\1", 1) == 0);
	EXPECT_READ(-EBADMSG, "zero page made non-zero");
	/* A zero page written with zeros: still the same memory. */
	WRITE_FRESH(1, 1);
	CHECK(poke(h.mem_off + (uint64_t)ZERO_PAGE * PAGE, zero, PAGE) == 0);
	EXPECT_READ(0, "zero page written with zeros");
	/* A non-zero page zeroed, by writing zeros or by punching a hole. */
	WRITE_FRESH(1, 1);
	CHECK(poke(h.mem_off + (uint64_t)DATA_PAGE * PAGE, zero, PAGE) == 0);
	EXPECT_READ(-EBADMSG, "page zeroed");
	WRITE_FRESH(1, 1);
	int fd = open(g_path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	if (fd >= 0) {
		int rc = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		                   (off_t)(h.mem_off + (uint64_t)DATA_PAGE * PAGE), PAGE);
		close(fd);
		if (rc == 0)
			EXPECT_READ(-EBADMSG, "page punched out");
	}
	/* Two non-zero pages swapped (6 has the contents of 5 and back). */
	WRITE_FRESH(1, 1);
	uint8_t a[PAGE], b[PAGE];
	for (unsigned i = 0; i < PAGE; i++) {
		a[i] = page_byte(5, i);
		b[i] = page_byte(6, i);
	}
	CHECK(poke(h.mem_off + 5ull * PAGE, b, PAGE) == 0);
	CHECK(poke(h.mem_off + 6ull * PAGE, a, PAGE) == 0);
	EXPECT_READ(-EBADMSG, "pages swapped");
	clean_dir();
}

static void truncated_files(void)
{
	struct snapshot_file_header h;
	WRITE_FRESH(1, 1);
	CHECK(read_header(&h) == 0);
	uint64_t size = h.mem_off + MEM_SIZE;
	const uint64_t to[] = {size - PAGE,
	                       size - 1,
	                       h.mem_off,
	                       h.state_off + h.state_len / 2,
	                       sizeof(struct snapshot_file_header),
	                       sizeof(struct snapshot_file_header) / 2,
	                       1,
	                       0};
	for (size_t i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
		WRITE_FRESH(1, 1);
		CHECK(truncate(g_path, (off_t)to[i]) == 0);
		int rc = read_code(NULL);
		CHECK_MSG(rc == -EBADMSG, "truncated to %llu: %d (%s)", (unsigned long long)to[i],
		          rc, g_err.msg);
	}
	clean_dir();
}

/* --- crafted headers ------------------------------------------------- */

/* Rewrites the header of a fresh file with field changes; the hash is
 * made right, so only the checks on values can refuse it. */
#define CRAFT(want, what, change)                                                                  \
	do {                                                                                       \
		WRITE_FRESH(1, 1);                                                                 \
		struct snapshot_file_header h_;                                                    \
		CHECK(read_header(&h_) == 0);                                                      \
		{                                                                                  \
			struct snapshot_file_header *h = &h_;                                      \
			change;                                                                    \
		}                                                                                  \
		CHECK(write_header(&h_) == 0);                                                     \
		int rc_ = read_code(NULL);                                                         \
		CHECK_MSG(rc_ == (want), "%s: got %d (%s), want %d", what, rc_, g_err.msg, want);  \
	} while (0)

static void crafted_headers(void)
{
	unsigned fds = fd_count();
	/* The control: rewriting an unchanged header is fine. */
	CRAFT(0, "unchanged", (void)h);

	CRAFT(-EBADMSG, "nvcpus 0", h->nvcpus = 0);
	CRAFT(-EBADMSG, "nvcpus 2 (state for 1)", h->nvcpus = 2);
	CRAFT(-EBADMSG, "nvcpus 65", h->nvcpus = SNAPSHOT_MAX_VCPUS + 1);
	CRAFT(-EBADMSG, "nvcpus 1000", h->nvcpus = 1000);
	CRAFT(-EBADMSG, "nvcpus huge", h->nvcpus = 0xffffffffu);
	CRAFT(-EBADMSG, "ndev 0 (state for 1)", h->ndev = 0);
	CRAFT(-EBADMSG, "ndev 11", h->ndev = SNAPSHOT_MAX_DEVICES + 1);
	CRAFT(-EBADMSG, "ndev 99", h->ndev = 99);
	CRAFT(-EBADMSG, "has_channel 2", h->has_channel = 2);
	CRAFT(-EBADMSG, "mem_size 0", h->mem_size = 0);
	CRAFT(-EBADMSG, "mem_size unaligned", h->mem_size = MEM_SIZE - 1);
	CRAFT(-EBADMSG, "mem_size +1", h->mem_size = MEM_SIZE + 1);
	CRAFT(-EBADMSG, "mem_size a page more", h->mem_size = MEM_SIZE + PAGE);
	CRAFT(-EBADMSG, "mem_size 1 TiB", h->mem_size = 1ull << 40);
	CRAFT(-EBADMSG, "mem_size 2 TiB", h->mem_size = 1ull << 41);
	CRAFT(-EBADMSG, "mem_size huge", h->mem_size = ~0ull - PAGE + 1);
	CRAFT(-EBADMSG, "mem_off unaligned", h->mem_off += 8);
	CRAFT(-EBADMSG, "mem_off in the state", h->mem_off -= PAGE);
	CRAFT(-EBADMSG, "mem_off 0", h->mem_off = 0);
	CRAFT(-EBADMSG, "mem_off a page on", h->mem_off += PAGE);
	CRAFT(-EBADMSG, "mem_off beyond the file", h->mem_off = 1ull << 40);
	CRAFT(-EBADMSG, "mem_off huge", h->mem_off = 1ull << 62);
	CRAFT(-EBADMSG, "mem_off at the top", h->mem_off = ~0ull - PAGE + 1);
	CRAFT(-EBADMSG, "state_len +1", h->state_len += 1);
	CRAFT(-EBADMSG, "state_len -1", h->state_len -= 1);
	CRAFT(-EBADMSG, "state_len 0", h->state_len = 0);
	CRAFT(-EBADMSG, "state_len huge", h->state_len = ~0ull);
	CRAFT(-EBADMSG, "state_off 0", h->state_off = 0);
	CRAFT(-EBADMSG, "state_off +8", h->state_off += 8);
	CRAFT(-EBADMSG, "data_mac", h->data_mac[0] ^= 1);
	CRAFT(-EBADMSG, "data_mac last byte", h->data_mac[SNAPSHOT_MAC_LEN - 1] ^= 0x80);

	/* Made by another vmproc, or another build of it: stale. */
	CRAFT(-ESTALE, "format_version", h->format_version = SNAPSHOT_FORMAT_VERSION + 1);
	CRAFT(-ESTALE, "format_version 0", h->format_version = 0);
	CRAFT(-ESTALE, "vmproc_version",
	      snprintf(h->vmproc_version, sizeof(h->vmproc_version), "99.0.0"));
	CRAFT(-ESTALE, "vmproc_version unterminated",
	      memset(h->vmproc_version, 'v', sizeof(h->vmproc_version)));
	CRAFT(-ESTALE, "header_size", h->header_size += 8);
	CRAFT(-ESTALE, "vm_state_size", h->vm_state_size += 4);
	CRAFT(-ESTALE, "vcpu_state_size", h->vcpu_state_size -= 4);
	CRAFT(-ESTALE, "mmio_state_size", h->mmio_state_size = 0);
	CRAFT(-ESTALE, "ports_state_size", h->ports_state_size *= 2);
	/* Another key than the one asked for. */
	CRAFT(-ESTALE, "key", h->key[3] ^= 1);
	CHECK(fd_count() == fds);
	clean_dir();
}

/* The wrap-around: mem_off + mem_size overflows to 0 (or a small value),
 * with data_mac that of memory with no data, as a reader that read
 * nothing would compute. */
static void crafted_mem_off_wraps_around(void)
{
	CHECK(setup_dir() == 0);
	/* The MAC of all-zero memory, from a real file. */
	struct snapshot *s = make_snapshot(1, 1, false);
	CHECK(s && snapshot_write(s, g_path, g_secret, &g_err) == 0);
	snapshot_unref(s);
	struct snapshot_file_header z;
	CHECK(read_header(&z) == 0);

	static const uint64_t offs[] = {0ull - MEM_SIZE, 0ull - MEM_SIZE + PAGE,
	                                0ull - MEM_SIZE + 16 * PAGE};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		WRITE_FRESH(1, 1);
		struct snapshot_file_header h;
		CHECK(read_header(&h) == 0);
		h.mem_off = offs[i];
		memcpy(h.data_mac, z.data_mac, sizeof(h.data_mac));
		CHECK(write_header(&h) == 0);
		int rc = read_code(NULL);
		CHECK_MSG(rc == -EBADMSG, "mem_off 0x%llx: %d (%s)", (unsigned long long)offs[i],
		          rc, g_err.msg);
	}
	clean_dir();
}

/* Rewrites g_path with vCPU cpu's state changed, as someone with the
 * user's secret can: through snapshot_write, so the MACs are right. */
static int rewrite_state(uint32_t cpu, void (*change)(struct x86_vcpu_state *))
{
	struct snapshot *s = NULL;
	if (snapshot_read(g_path, NULL, g_secret, &s, &g_err))
		return -1;
	change(&s->vcpu[cpu]);
	int rc = snapshot_write(s, g_path, g_secret, &g_err);
	snapshot_unref(s);
	return rc;
}

static void set_rip(struct x86_vcpu_state *v)
{
	v->regs.rip = 0x1234;
}
static void too_many_msrs(struct x86_vcpu_state *v)
{
	v->nmsrs = X86_STATE_MAX_MSRS + 1;
}
static void way_too_many_msrs(struct x86_vcpu_state *v)
{
	v->nmsrs = 0xffffffffu;
}
static void most_msrs(struct x86_vcpu_state *v)
{
	v->nmsrs = X86_STATE_MAX_MSRS;
}
static void too_many_xcrs(struct x86_vcpu_state *v)
{
	v->xcrs.nr_xcrs = KVM_MAX_XCRS + 1;
}

static void crafted_vcpu_state(void)
{
	/* The control: a changed value with the MACs made right is read. */
	WRITE_FRESH(2, 1);
	CHECK(rewrite_state(1, set_rip) == 0);
	struct snapshot *s = NULL;
	CHECK(snapshot_read(g_path, NULL, g_secret, &s, &g_err) == 0 && s);
	if (s)
		CHECK(s->vcpu[1].regs.rip == 0x1234 && s->vcpu[0].regs.rip != 0x1234);
	snapshot_unref(s);
	WRITE_FRESH(2, 1);
	CHECK(rewrite_state(0, most_msrs) == 0);
	EXPECT_READ(0, "nmsrs at the maximum");

	/* Counts past the arrays: refused before anything uses them. */
	static void (*const bad[])(struct x86_vcpu_state *) = {too_many_msrs, way_too_many_msrs,
	                                                       too_many_xcrs};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (uint32_t cpu = 0; cpu < 2; cpu++) {
			WRITE_FRESH(2, 1);
			CHECK(rewrite_state(cpu, bad[i]) == 0);
			int rc = read_code(NULL);
			CHECK_MSG(rc == -EBADMSG, "case %zu cpu %u: %d (%s)", i, cpu, rc,
			          g_err.msg);
		}
	/* x86_vcpu_state_check itself. */
	struct x86_vcpu_state *v = calloc(1, sizeof(*v));
	CHECK(v != NULL);
	if (v) {
		struct vmp_error e = {0};
		CHECK(x86_vcpu_state_check(v, &e) == 0);
		v->nmsrs = X86_STATE_MAX_MSRS;
		CHECK(x86_vcpu_state_check(v, &e) == 0);
		v->nmsrs++;
		CHECK(x86_vcpu_state_check(v, &e) < 0 && e.msg[0]);
		free(v);
	}
	clean_dir();
}

/* --- writing --------------------------------------------------------- */

static void write_failures(void)
{
	CHECK(setup_dir() == 0);
	clean_dir();
	struct snapshot *s = make_snapshot(1, 1, true);
	CHECK(s != NULL);
	if (!s)
		return;
	char p[PATH_MAX + 64];
	/* A directory that does not exist. */
	snprintf(p, sizeof(p), "%s/no/such/dir/snap", g_dir);
	vmp_error_clear(&g_err);
	int rc = snapshot_write(s, p, g_secret, &g_err);
	CHECK_MSG(rc == -ENOENT && g_err.msg[0], "%d: %s", rc, g_err.msg);
	snprintf(p, sizeof(p), "/nonexistent-vmproc-dir/snap");
	vmp_error_clear(&g_err);
	CHECK(snapshot_write(s, p, g_secret, &g_err) < 0 && g_err.msg[0]);
	/* Over a directory: the temporary file goes, the directory stays. */
	snprintf(p, sizeof(p), "%s/adir", g_dir);
	CHECK(mkdir(p, 0700) == 0);
	vmp_error_clear(&g_err);
	CHECK(snapshot_write(s, p, g_secret, &g_err) < 0 && g_err.msg[0]);
	CHECK(dir_entries() == 1);
	rmdir(p);
	/* A path too long. */
	memset(p, 'a', sizeof(p) - 1);
	p[sizeof(p) - 1] = 0;
	p[0] = '/';
	vmp_error_clear(&g_err);
	CHECK(snapshot_write(s, p, g_secret, &g_err) == -ENAMETOOLONG && g_err.msg[0]);
	/* No memory, or too many devices: refused, nothing written. */
	int fd = s->mem_fd;
	s->mem_fd = -1;
	vmp_error_clear(&g_err);
	CHECK(snapshot_write(s, g_path, g_secret, &g_err) == -EINVAL && g_err.msg[0]);
	s->mem_fd = fd;
	s->ndev = SNAPSHOT_MAX_DEVICES + 1;
	vmp_error_clear(&g_err);
	CHECK(snapshot_write(s, g_path, g_secret, &g_err) == -EINVAL && g_err.msg[0]);
	CHECK(dir_entries() == 0);
	/* NULL err is fine. */
	CHECK(snapshot_write(s, g_path, g_secret, NULL) == -EINVAL);
	s->ndev = 1;
	snapshot_unref(s);
	clean_dir();
}

/* --- lifetime -------------------------------------------------------- */

static void new_and_refcount(void)
{
	CHECK(snapshot_new(0) == NULL);
	CHECK(snapshot_new(SNAPSHOT_MAX_VCPUS + 1) == NULL);
	CHECK(snapshot_new(0xffffffffu) == NULL);
	struct snapshot *big = snapshot_new(SNAPSHOT_MAX_VCPUS);
	CHECK(big && big->nvcpus == SNAPSHOT_MAX_VCPUS && big->mem_fd == -1);
	snapshot_unref(big);

	struct snapshot *s = snapshot_new(2);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(s->nvcpus == 2 && s->ndev == 0 && !s->has_channel && s->mem_fd == -1);
	CHECK(atomic_load(&s->refs) == 1);
	s->mem_fd = memfd_create("refcount", MFD_CLOEXEC);
	int fd = s->mem_fd;
	CHECK(fd >= 0);
	snapshot_ref(s);
	snapshot_ref(s);
	CHECK(atomic_load(&s->refs) == 3);
	snapshot_unref(s);
	snapshot_unref(s);
	/* Still alive (ASan would see a use after free) with its fd. */
	CHECK(atomic_load(&s->refs) == 1 && s->vcpu[1].nmsrs == 0);
	CHECK(fcntl(fd, F_GETFD) >= 0);
	snapshot_unref(s);
	/* The last reference closed mem_fd. */
	CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
	snapshot_unref(NULL);
}

TEST_LIST(T(hash_is_deterministic_and_sensitive), T(hash_reads_only_len_bytes),
          T(write_read_round_trip), T(memory_is_a_sealed_copy), T(rewrite_of_a_read_snapshot),
          T(all_zero_memory), T(read_rejects_other_files), T(forged_files_are_refused),
          T(read_refuses_files_not_the_users_own), T(damaged_header), T(damaged_state),
          T(damaged_memory), T(truncated_files), T(crafted_headers),
          T(crafted_mem_off_wraps_around), T(crafted_vcpu_state), T(write_failures),
          T(new_and_refcount))
