#include "virtio/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/iov.h"

#define VIRTIO_ID_BLOCK       2
#define VIRTIO_BLK_F_SEG_MAX  (1ull << 2)
#define VIRTIO_BLK_F_RO       (1ull << 5)
#define VIRTIO_BLK_F_BLK_SIZE (1ull << 6)
#define VIRTIO_BLK_F_FLUSH    (1ull << 9)

#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define SECTOR_SIZE 512u
#define QUEUE_MAX   128
#define SEG_MAX     (QUEUE_MAX - 2) /* a chain holds header and status too */
#define ID_BYTES    20

struct blk_req_header {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_config {
	uint64_t capacity; /* sectors */
	uint32_t size_max;
	uint32_t seg_max;
	uint8_t geometry[4];
	uint32_t blk_size;
} __attribute__((packed));

struct virtio_blk {
	int fd;
	bool read_only;
	uint64_t sectors;
	struct blk_config config;
	struct virtq_chain chain;
	struct iovec iov[VIRTQ_MAX_SIZE]; /* the part of the chain a transfer moves */
};

int virtio_blk_new(struct virtio_blk **out, const char *path, bool read_only, struct vmp_error *err)
{
	int fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return vmp_fail_errno(err, -errno, "cannot open disk image %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return vmp_fail(err, -EINVAL, "disk image %s is not a regular file", path);
	}
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b) {
		close(fd);
		return vmp_fail(err, -ENOMEM, "out of memory");
	}
	b->fd = fd;
	b->read_only = read_only;
	b->sectors = (uint64_t)st.st_size / SECTOR_SIZE;
	b->config.capacity = b->sectors;
	b->config.seg_max = SEG_MAX;
	b->config.blk_size = SECTOR_SIZE;
	*out = b;
	return 0;
}

void virtio_blk_free(struct virtio_blk *b)
{
	if (!b)
		return;
	close(b->fd);
	free(b);
}

static void read_config(void *dev, uint32_t off, void *data, uint32_t len)
{
	struct virtio_blk *b = dev;
	if (off > sizeof(b->config) || len > sizeof(b->config) - off) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, (const uint8_t *)&b->config + off, len);
}

/* Moves len bytes between the file at pos and the chain's writable
 * (to_guest) or readable buffers, starting skip bytes into them. */
static int transfer(struct virtio_blk *b, uint64_t skip, uint64_t len, uint64_t pos, bool to_guest)
{
	unsigned n;
	const struct iovec *iov =
	    to_guest ? virtq_chain_writable(&b->chain, &n) : virtq_chain_readable(&b->chain, &n);
	size_t got;
	unsigned cnt = iov_slice(b->iov, VIRTQ_MAX_SIZE, iov, n, skip, len, &got);
	for (unsigned i = 0; i < cnt; i++) {
		uint8_t *p = b->iov[i].iov_base;
		size_t k = b->iov[i].iov_len;
		for (size_t done = 0; done < k;) {
			ssize_t r = to_guest
			                ? pread(b->fd, p + done, k - done, (off_t)(pos + done))
			                : pwrite(b->fd, p + done, k - done, (off_t)(pos + done));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0) /* file shrank under us: reads see zeros */
				return to_guest ? (memset(p + done, 0, k - done), 0) : -EIO;
			done += (size_t)r;
		}
		pos += k;
	}
	return 0;
}

static bool in_range(const struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
	if (bytes % SECTOR_SIZE)
		return false;
	uint64_t count = bytes / SECTOR_SIZE;
	return sector <= b->sectors && count <= b->sectors - sector;
}

/* Serves one request and returns its status byte. */
static uint8_t serve(struct virtio_blk *b, const struct blk_req_header *h)
{
	struct virtq_chain *c = &b->chain;
	uint64_t data_in = c->write_len - 1;          /* device-writable, minus status */
	uint64_t data_out = c->read_len - sizeof(*h); /* device-readable, minus header */
	switch (h->type) {
	case VIRTIO_BLK_T_IN:
		if (!in_range(b, h->sector, data_in))
			return VIRTIO_BLK_S_IOERR;
		if (transfer(b, 0, data_in, h->sector * SECTOR_SIZE, true))
			return VIRTIO_BLK_S_IOERR;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_OUT:
		if (b->read_only || !in_range(b, h->sector, data_out))
			return VIRTIO_BLK_S_IOERR;
		return transfer(b, sizeof(*h), data_out, h->sector * SECTOR_SIZE, false)
		           ? VIRTIO_BLK_S_IOERR
		           : VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_FLUSH:
		return fdatasync(b->fd) == 0 || b->read_only ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
	case VIRTIO_BLK_T_GET_ID: {
		char id[ID_BYTES] = "vmproc";
		uint64_t n = data_in < ID_BYTES ? data_in : ID_BYTES;
		virtq_chain_write(c, 0, id, n);
		return VIRTIO_BLK_S_OK;
	}
	default: return VIRTIO_BLK_S_UNSUPP;
	}
}

static int notify(void *dev, struct virtio_mmio *t, unsigned q, struct vmp_error *err)
{
	struct virtio_blk *b = dev;
	struct virtq *vq = &t->vq[q];
	int rc = 0;
	unsigned served = 0;
	while (served < virtq_batch(vq) && (rc = virtq_pop(vq, t->mem, &b->chain, err)) > 0) {
		struct virtq_chain *c = &b->chain;
		struct blk_req_header h;
		/* A request needs its header and a status byte; anything less
		 * is a driver bug we refuse to guess around. */
		if (c->read_len < sizeof(h) || c->write_len < 1 || c->write_len > UINT32_MAX)
			return vmp_fail(err, -EINVAL,
			                "virtio-blk request without header or status");
		virtq_chain_read(c, 0, &h, sizeof(h));
		uint8_t status = serve(b, &h);
		virtq_chain_write(c, c->write_len - 1, &status, 1);
		/* Like QEMU: the used length covers the whole writable part,
		 * whose last byte is the status. */
		virtq_push(vq, c->head, (uint32_t)c->write_len);
		served++;
	}
	if (served)
		virtio_mmio_interrupt(t, q);
	return rc < 0 ? rc : served == virtq_batch(vq) ? VIRTIO_NOTIFY_MORE : 0;
}

#define BLK_OPS(ro)                                                                                \
	{                                                                                          \
		.name = "virtio-blk", .device_id = VIRTIO_ID_BLOCK,                                \
		.features = VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH |    \
		            ((ro) ? VIRTIO_BLK_F_RO : 0),                                          \
		.num_queues = 1, .queue_max = QUEUE_MAX, .config_size = sizeof(struct blk_config), \
		.read_config = read_config, .notify = notify, .reset = NULL,                       \
	}

static const struct virtio_device_ops ops_rw = BLK_OPS(0), ops_ro = BLK_OPS(1);

const struct virtio_device_ops *virtio_blk_ops(const struct virtio_blk *b)
{
	return b->read_only ? &ops_ro : &ops_rw;
}
