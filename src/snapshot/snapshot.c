#include "snapshot/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "snapshot/cache.h"
#include "vmproc.h"

static const char magic[8] = {'V', 'M', 'P', 'S', 'N', 'A', 'P', 0};

struct snapshot *snapshot_new(uint32_t nvcpus)
{
	if (nvcpus == 0 || nvcpus > SNAPSHOT_MAX_VCPUS)
		return NULL;
	struct snapshot *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->vcpu = calloc(nvcpus, sizeof(*s->vcpu));
	if (!s->vcpu) {
		free(s);
		return NULL;
	}
	atomic_init(&s->refs, 1);
	s->nvcpus = nvcpus;
	s->mem_fd = -1;
	return s;
}

void snapshot_ref(struct snapshot *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void snapshot_unref(struct snapshot *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	if (s->mem_fd >= 0)
		close(s->mem_fd);
	free(s->vcpu);
	free(s);
}

/* --- hashing ------------------------------------------------------------ */

static uint64_t mix(uint64_t h)
{
	h ^= h >> 31;
	h *= 0x7fb5d329728ea185ull;
	h ^= h >> 27;
	h *= 0x81dadef4bc2dd44dull;
	h ^= h >> 33;
	return h;
}

uint64_t snapshot_hash(uint64_t seed, const void *data, uint64_t len)
{
	/* Four independent lanes over 8-byte words, so it runs at memory
	 * speed; the tail and the length are folded in at the end. */
	const uint8_t *p = data;
	uint64_t lane[4] = {seed ^ 0x9e3779b97f4a7c15ull, seed + 1, ~seed, seed ^ len};
	uint64_t i = 0;
	for (; i + 32 <= len; i += 32)
		for (int j = 0; j < 4; j++) {
			uint64_t w;
			memcpy(&w, p + i + 8 * j, 8);
			lane[j] = (lane[j] ^ w) * 0x100000001b3ull;
			lane[j] ^= lane[j] >> 29;
		}
	uint64_t h = mix(lane[0]) ^ mix(lane[1] + 1) ^ mix(lane[2] + 2) ^ mix(lane[3] + 3);
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return mix(h ^ len);
}

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[64];
	for (unsigned i = 0; i < SNAPSHOT_PAGE; i += 64)
		if (memcmp(p + i, zero, 64) != 0)
			return false;
	return true;
}

/* --- authentication ----------------------------------------------------- */

#if defined(FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION) && defined(VMPROC_DATADIR)
#error "the fuzzing hook (MACs not compared) in a build of the library"
#endif

/* HMAC-SHA256 keyed with the user's secret (OpenSSL's libcrypto). */
static int mac_begin(EVP_MAC_CTX **out, const uint8_t secret[SNAPSHOT_SECRET_LEN],
                     struct vmp_error *err)
{
	*out = NULL;
	EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	EVP_MAC_free(mac); /* ctx holds its own reference */
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_end(),
	};
	if (!ctx || !EVP_MAC_init(ctx, secret, SNAPSHOT_SECRET_LEN, params)) {
		EVP_MAC_CTX_free(ctx);
		return vmp_fail(err, -ENOSYS, "libcrypto has no HMAC-SHA256");
	}
	*out = ctx;
	return 0;
}

static int mac_end(EVP_MAC_CTX *ctx, uint8_t out[SNAPSHOT_MAC_LEN], struct vmp_error *err)
{
	size_t len = 0;
	int ok = EVP_MAC_final(ctx, out, &len, SNAPSHOT_MAC_LEN) && len == SNAPSHOT_MAC_LEN;
	EVP_MAC_CTX_free(ctx);
	return ok ? 0 : vmp_fail(err, -EIO, "HMAC failed");
}

/* The MAC of len bytes at data, in one go. */
static int mac_of(const uint8_t secret[SNAPSHOT_SECRET_LEN], const void *data, size_t len,
                  uint8_t out[SNAPSHOT_MAC_LEN], struct vmp_error *err)
{
	EVP_MAC_CTX *ctx;
	int rc = mac_begin(&ctx, secret, err);
	if (!rc && !EVP_MAC_update(ctx, data, len)) {
		EVP_MAC_CTX_free(ctx);
		return vmp_fail(err, -EIO, "HMAC failed");
	}
	return rc ? rc : mac_end(ctx, out, err);
}

/* Constant time. A fuzzing build (tests/fuzz) takes any MAC, so that its
 * inputs reach the parser behind it; the library refuses to build so. */
static bool mac_equal(const uint8_t a[SNAPSHOT_MAC_LEN], const uint8_t b[SNAPSHOT_MAC_LEN])
{
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	(void)a, (void)b;
	return true;
#else
	return CRYPTO_memcmp(a, b, SNAPSHOT_MAC_LEN) == 0;
#endif
}

/* The header's MAC: of the header with header_mac zero. */
static int header_mac(const struct snapshot_file_header *h,
                      const uint8_t secret[SNAPSHOT_SECRET_LEN], uint8_t out[SNAPSHOT_MAC_LEN],
                      struct vmp_error *err)
{
	struct snapshot_file_header c = *h;
	memset(c.header_mac, 0, sizeof(c.header_mac));
	return mac_of(secret, &c, sizeof(c), out, err);
}

/* Starts the data MAC (of the state, then of the memory, mac_memory). */
static int data_mac_begin(EVP_MAC_CTX **ctx, const uint8_t secret[SNAPSHOT_SECRET_LEN],
                          const uint8_t *state, uint64_t len, struct vmp_error *err)
{
	static const char label[16] = "vmproc snapshot"; /* apart from the header's input */
	int rc = mac_begin(ctx, secret, err);
	if (!rc && (!EVP_MAC_update(*ctx, (const uint8_t *)label, sizeof(label)) ||
	            !EVP_MAC_update(*ctx, state, len))) {
		EVP_MAC_CTX_free(*ctx);
		*ctx = NULL;
		rc = vmp_fail(err, -EIO, "HMAC failed");
	}
	return rc;
}

static int write_all(int fd, const void *data, size_t len, off_t off)
{
	const uint8_t *p = data;
	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Adds every non-zero page of fd's [off, off+size) to the MAC, after its
 * index (64 bits, little endian): the MAC does not depend on how the file
 * system stores holes. Holes (SEEK_DATA) are skipped without reading
 * them. With copy_fd >= 0 each non-zero page is also written there at
 * its offset in memory, so the bytes authenticated are the bytes kept,
 * whatever happens to fd later. */
static int mac_memory(int fd, uint64_t off, uint64_t size, int copy_fd, EVP_MAC_CTX *ctx,
                      struct vmp_error *err)
{
	enum { CHUNK = 64 * SNAPSHOT_PAGE };
	uint8_t *buf = malloc(CHUNK);
	if (!buf)
		return vmp_fail(err, -ENOMEM, "out of memory");
	uint64_t pos = off, end = off + size;
	int rc = 0;
	while (pos < end) {
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
		if (data < 0) {
			if (errno != ENXIO)
				rc = vmp_fail_errno(err, -errno, "lseek");
			break; /* ENXIO: only a hole up to the end */
		}
		if ((uint64_t)data >= end)
			break;
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0) {
			rc = vmp_fail_errno(err, -errno, "lseek");
			break;
		}
		uint64_t from = ((uint64_t)data - off) / SNAPSHOT_PAGE * SNAPSHOT_PAGE + off;
		uint64_t to = (uint64_t)hole < end ? (uint64_t)hole : end;
		for (pos = from; pos < to;) {
			/* Whole pages: a partial one at a hole is read whole. */
			uint64_t len = to - pos < CHUNK ? (to - pos + SNAPSHOT_PAGE - 1) /
			                                      SNAPSHOT_PAGE * SNAPSHOT_PAGE
			                                : CHUNK;
			if (len > end - pos)
				len = end - pos;
			ssize_t n = pread(fd, buf, len, (off_t)pos);
			if (n != (ssize_t)len) {
				rc = n < 0 ? vmp_fail_errno(err, -errno, "reading guest memory")
				           : vmp_fail(err, -EBADMSG, "guest memory is truncated");
				goto out;
			}
			for (uint64_t i = 0; i < len && !rc;
			     i += SNAPSHOT_PAGE, pos += SNAPSHOT_PAGE) {
				const uint8_t *page = buf + i;
				if (page_is_zero(page))
					continue;
				uint64_t index = (pos - off) / SNAPSHOT_PAGE; /* x86-64: LE */
				if (!EVP_MAC_update(ctx, (const uint8_t *)&index, sizeof(index)) ||
				    !EVP_MAC_update(ctx, page, SNAPSHOT_PAGE))
					rc = vmp_fail(err, -EIO, "HMAC failed");
				else if (copy_fd >= 0 &&
				         (rc = write_all(copy_fd, page, SNAPSHOT_PAGE,
				                         (off_t)(pos - off))))
					vmp_fail_errno(err, rc, "cannot copy guest memory");
			}
			if (rc)
				goto out;
		}
	}
out:
	free(buf);
	return rc;
}

/* --- the state blob ----------------------------------------------------- */

static uint64_t state_len(const struct snapshot *s)
{
	return sizeof(s->vm) + (uint64_t)s->nvcpus * sizeof(s->vcpu[0]) +
	       (uint64_t)s->ndev * sizeof(s->dev[0]) + sizeof(s->channel);
}

struct part {
	void *p;
	size_t len;
};

/* Serialises into buf (state_len bytes), or deserialises from it. */
static void state_copy(struct snapshot *s, uint8_t *buf, bool to_buf)
{
	struct part parts[3 + SNAPSHOT_MAX_VCPUS + SNAPSHOT_MAX_DEVICES];
	unsigned n = 0;
	parts[n++] = (struct part){&s->vm, sizeof(s->vm)};
	for (uint32_t i = 0; i < s->nvcpus; i++)
		parts[n++] = (struct part){&s->vcpu[i], sizeof(s->vcpu[i])};
	for (uint32_t i = 0; i < s->ndev; i++)
		parts[n++] = (struct part){&s->dev[i], sizeof(s->dev[i])};
	parts[n++] = (struct part){&s->channel, sizeof(s->channel)};
	for (unsigned i = 0; i < n; i++) {
		if (to_buf)
			memcpy(buf, parts[i].p, parts[i].len);
		else
			memcpy(parts[i].p, buf, parts[i].len);
		buf += parts[i].len;
	}
}

static void fill_header(struct snapshot_file_header *h, const struct snapshot *s)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, magic, sizeof(magic));
	h->format_version = SNAPSHOT_FORMAT_VERSION;
	h->header_size = sizeof(*h);
	snprintf(h->vmproc_version, sizeof(h->vmproc_version), "%s", VMPROC_VERSION_STRING);
	memcpy(h->key, s->key, SNAPSHOT_KEY_LEN);
	h->nvcpus = s->nvcpus;
	h->ndev = s->ndev;
	h->has_channel = s->has_channel;
	h->vm_state_size = sizeof(s->vm);
	h->vcpu_state_size = sizeof(s->vcpu[0]);
	h->mmio_state_size = sizeof(s->dev[0]);
	h->ports_state_size = sizeof(s->channel);
	h->mem_size = s->mem_size;
	h->state_off = sizeof(*h);
	h->state_len = state_len(s);
	h->mem_off =
	    (h->state_off + h->state_len + SNAPSHOT_PAGE - 1) / SNAPSHOT_PAGE * SNAPSHOT_PAGE;
}

/* Copies the non-zero pages of the snapshot's memory to fd at off. */
static int write_memory(const struct snapshot *s, int fd, uint64_t off, struct vmp_error *err)
{
	uint8_t *buf = malloc(SNAPSHOT_PAGE);
	if (!buf)
		return vmp_fail(err, -ENOMEM, "out of memory");
	int rc = 0;
	uint64_t base = s->mem_off;
	for (uint64_t pos = 0; pos < s->mem_size && !rc; pos += SNAPSHOT_PAGE) {
		off_t data = lseek(s->mem_fd, (off_t)(base + pos), SEEK_DATA);
		if (data < 0)
			break; /* the rest is a hole */
		if ((uint64_t)data > base + pos) {
			pos = ((uint64_t)data - base) / SNAPSHOT_PAGE * SNAPSHOT_PAGE;
			if (pos >= s->mem_size)
				break;
		}
		ssize_t n = pread(s->mem_fd, buf, SNAPSHOT_PAGE, (off_t)(base + pos));
		if (n != (ssize_t)SNAPSHOT_PAGE) {
			rc = vmp_fail(err, n < 0 ? -errno : -EIO, "cannot read guest memory");
			break;
		}
		if (!page_is_zero(buf) &&
		    (rc = write_all(fd, buf, SNAPSHOT_PAGE, (off_t)(off + pos))))
			vmp_fail_errno(err, rc, "cannot write the snapshot");
	}
	free(buf);
	return rc;
}

/* The rename itself reaches the disk with the directory. */
static void sync_dir(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int snapshot_write(const struct snapshot *s, const char *path,
                   const uint8_t secret[SNAPSHOT_SECRET_LEN], struct vmp_error *err)
{
	if (s->mem_fd < 0 || s->ndev > SNAPSHOT_MAX_DEVICES)
		return vmp_fail(err, -EINVAL, "incomplete snapshot");
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
		return vmp_fail(err, -ENAMETOOLONG, "snapshot path too long");
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return vmp_fail_errno(err, -errno, "cannot create %s", tmp);
	struct snapshot_file_header h;
	fill_header(&h, s);
	uint8_t *state = malloc(h.state_len);
	int rc = state ? 0 : vmp_fail(err, -ENOMEM, "out of memory");
	EVP_MAC_CTX *ctx = NULL;
	if (!rc) {
		state_copy((struct snapshot *)s, state, true);
		rc = data_mac_begin(&ctx, secret, state, h.state_len, err);
	}
	if (!rc && !(rc = mac_memory(s->mem_fd, s->mem_off, s->mem_size, -1, ctx, err))) {
		rc = mac_end(ctx, h.data_mac, err);
		ctx = NULL;
	}
	EVP_MAC_CTX_free(ctx);
	if (!rc && ftruncate(fd, (off_t)(h.mem_off + h.mem_size)) < 0)
		rc = vmp_fail_errno(err, -errno, "cannot size %s", tmp);
	if (!rc)
		rc = write_memory(s, fd, h.mem_off, err);
	if (!rc && (rc = write_all(fd, state, h.state_len, (off_t)h.state_off)))
		vmp_fail_errno(err, rc, "cannot write %s", tmp);
	if (!rc && !(rc = header_mac(&h, secret, h.header_mac, err)) &&
	    (rc = write_all(fd, &h, sizeof(h), 0)))
		vmp_fail_errno(err, rc, "cannot write %s", tmp);
	if (!rc && fsync(fd) < 0)
		rc = vmp_fail_errno(err, -errno, "fsync %s", tmp);
	free(state);
	close(fd);
	if (!rc && rename(tmp, path) < 0)
		rc = vmp_fail_errno(err, -errno, "cannot rename %s to %s", tmp, path);
	if (rc)
		unlink(tmp);
	else
		sync_dir(path);
	return rc;
}

/* --- reading ------------------------------------------------------------ */

static int read_all(int fd, void *data, size_t len, off_t off)
{
	uint8_t *p = data;
	while (len) {
		ssize_t n = pread(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EBADMSG;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int check_header(const struct snapshot_file_header *h, uint64_t file_size,
                        const uint8_t *key, const uint8_t secret[SNAPSHOT_SECRET_LEN],
                        const char *path, struct vmp_error *err)
{
	if (memcmp(h->magic, magic, sizeof(magic)) != 0)
		return vmp_fail(err, -EBADMSG, "%s is not a vmproc snapshot", path);
	uint8_t mac[SNAPSHOT_MAC_LEN];
	int rc = header_mac(h, secret, mac, err);
	if (rc)
		return rc;
	if (!mac_equal(mac, h->header_mac))
		return vmp_fail(err, -EBADMSG,
		                "%s: the header does not authenticate (damaged, from another "
		                "vmproc, or not made with this user's key)",
		                path);
	if (h->format_version != SNAPSHOT_FORMAT_VERSION || h->header_size != sizeof(*h) ||
	    strncmp(h->vmproc_version, VMPROC_VERSION_STRING, sizeof(h->vmproc_version)) != 0)
		return vmp_fail(err, -ESTALE, "%s was made by another vmproc (%.16s, format %u)",
		                path, h->vmproc_version, h->format_version);
	if (h->vm_state_size != sizeof(struct x86_vm_state) ||
	    h->vcpu_state_size != sizeof(struct x86_vcpu_state) ||
	    h->mmio_state_size != sizeof(struct virtio_mmio_state) ||
	    h->ports_state_size != sizeof(struct virtio_ports_state))
		return vmp_fail(err, -ESTALE, "%s was made by another build of vmproc", path);
	if (key && memcmp(h->key, key, SNAPSHOT_KEY_LEN) != 0)
		return vmp_fail(err, -ESTALE, "%s is a snapshot of another configuration", path);
	if (h->nvcpus == 0 || h->nvcpus > SNAPSHOT_MAX_VCPUS || h->ndev > SNAPSHOT_MAX_DEVICES ||
	    h->has_channel > 1)
		return vmp_fail(err, -EBADMSG, "%s: bad counts in the header", path);
	uint64_t want_state = sizeof(struct x86_vm_state) +
	                      (uint64_t)h->nvcpus * sizeof(struct x86_vcpu_state) +
	                      (uint64_t)h->ndev * sizeof(struct virtio_mmio_state) +
	                      sizeof(struct virtio_ports_state);
	if (h->state_off != sizeof(*h) || h->state_len != want_state ||
	    h->mem_off % SNAPSHOT_PAGE || h->mem_off < h->state_off + h->state_len ||
	    h->mem_size == 0 || h->mem_size % SNAPSHOT_PAGE || h->mem_size > (1ull << 40))
		return vmp_fail(err, -EBADMSG, "%s: bad layout in the header", path);
	if (h->mem_off > file_size || h->mem_size > file_size - h->mem_off) /* no wrap-around */
		return vmp_fail(err, -EBADMSG, "%s is truncated (%llu of %llu bytes)", path,
		                (unsigned long long)file_size,
		                (unsigned long long)(h->mem_off + h->mem_size));
	return 0;
}

#define MEMORY_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* An empty (all holes) memfd of size bytes that can be sealed. */
static int memory_copy_new(uint64_t size, int *out, struct vmp_error *err)
{
	int fd = memfd_create("vmproc-snapshot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return vmp_fail_errno(err, -errno, "memfd_create");
	if (ftruncate(fd, (off_t)size) < 0) {
		int rc = vmp_fail_errno(err, -errno, "cannot size the guest memory");
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

int snapshot_read(const char *path, const uint8_t key[SNAPSHOT_KEY_LEN],
                  const uint8_t secret[SNAPSHOT_SECRET_LEN], struct snapshot **out,
                  struct vmp_error *err)
{
	*out = NULL;
	/* Not through a symbolic link, and only the user's own file. */
	int fd = snapshot_cache_open_file(path, err);
	if (fd < 0)
		return fd;
	struct stat st;
	struct snapshot_file_header h;
	int rc = fstat(fd, &st) < 0 ? vmp_fail_errno(err, -errno, "cannot stat %s", path) : 0;
	if (!rc && (uint64_t)st.st_size < sizeof(h))
		rc = vmp_fail(err, -EBADMSG, "%s is too short to be a snapshot", path);
	if (!rc && read_all(fd, &h, sizeof(h), 0))
		rc = vmp_fail(err, -EBADMSG, "cannot read the header of %s", path);
	if (!rc)
		rc = check_header(&h, (uint64_t)st.st_size, key, secret, path, err);
	struct snapshot *s = NULL;
	uint8_t *state = NULL;
	if (!rc && !(s = snapshot_new(h.nvcpus)))
		rc = vmp_fail(err, -ENOMEM, "out of memory");
	if (!rc && !(state = malloc(h.state_len)))
		rc = vmp_fail(err, -ENOMEM, "out of memory");
	if (!rc && read_all(fd, state, h.state_len, (off_t)h.state_off))
		rc = vmp_fail(err, -EBADMSG, "cannot read the state in %s", path);
	/* Clones map a sealed copy of the memory, made as it is verified:
	 * the file may be rewritten or truncated later (a clone mapping it
	 * would see the new bytes, or SIGBUS the host); the copy cannot. */
	EVP_MAC_CTX *ctx = NULL;
	uint8_t mac[SNAPSHOT_MAC_LEN];
	int mem = -1;
	if (!rc)
		rc = memory_copy_new(h.mem_size, &mem, err);
	if (!rc)
		rc = data_mac_begin(&ctx, secret, state, h.state_len, err);
	if (!rc && (rc = mac_memory(fd, h.mem_off, h.mem_size, mem, ctx, err)))
		rc = rc == -EBADMSG || rc == -EIO ? -EBADMSG : rc;
	if (!rc) {
		rc = mac_end(ctx, mac, err);
		ctx = NULL;
	}
	EVP_MAC_CTX_free(ctx);
	if (!rc && !mac_equal(mac, h.data_mac))
		rc = vmp_fail(err, -EBADMSG, "%s: the saved state or memory is damaged", path);
	/* Authenticated: now the state is parsed, and still checked. */
	if (!rc) {
		memcpy(s->key, h.key, SNAPSHOT_KEY_LEN);
		s->ndev = h.ndev;
		s->has_channel = h.has_channel != 0;
		s->mem_size = h.mem_size;
		state_copy(s, state, false);
		struct vmp_error why = {0};
		for (uint32_t i = 0; !rc && i < s->nvcpus; i++)
			rc = x86_vcpu_state_check(&s->vcpu[i], &why);
		if (rc) /* recorded with the code returned */
			rc = vmp_fail(err, -EBADMSG, "%s: %s", path, why.msg);
	}
	if (!rc && fcntl(mem, F_ADD_SEALS, MEMORY_SEALS) < 0)
		rc = vmp_fail_errno(err, -errno, "cannot seal the guest memory");
	free(state);
	close(fd);
	if (rc) {
		if (mem >= 0)
			close(mem);
		snapshot_unref(s);
		return rc;
	}
	s->mem_fd = mem;
	s->mem_off = 0;
	*out = s;
	return 0;
}
