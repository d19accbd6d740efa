#include "virtio/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VIRTIO_ID_FS 26
#define FS_TAG_BYTES 36
#define FS_QUEUES    2 /* hiprio, one request queue */
#define FS_QUEUE_MAX VIRTQ_MAX_SIZE

struct fs_config {
	uint8_t tag[FS_TAG_BYTES];
	uint32_t num_request_queues;
} __attribute__((packed));

struct virtio_fs {
	const struct virtio_fs_backend *be; /* NULL: none */
	void *ctx;
	struct fs_config config;
	struct virtq_chain chain;
};

int virtio_fs_new(struct virtio_fs **out, const char *tag, const struct virtio_fs_backend *be,
                  void *ctx, struct vmp_error *err)
{
	size_t n = strlen(tag);
	if (n == 0 || n > FS_TAG_BYTES)
		return vmp_fail(err, -EINVAL, "virtio-fs tag must be 1 to %d bytes", FS_TAG_BYTES);
	struct virtio_fs *fs = calloc(1, sizeof(*fs));
	if (!fs)
		return vmp_fail(err, -ENOMEM, "out of memory");
	/* The tag is NUL-padded, not NUL-terminated, when 36 bytes long. */
	memcpy(fs->config.tag, tag, n); // NOLINT(bugprone-not-null-terminated-result)
	fs->config.num_request_queues = 1;
	fs->be = be;
	fs->ctx = ctx;
	*out = fs;
	return 0;
}

void virtio_fs_free(struct virtio_fs *fs)
{
	free(fs);
}

static void read_config(void *dev, uint32_t off, void *data, uint32_t len)
{
	struct virtio_fs *fs = dev;
	if (off > sizeof(fs->config) || len > sizeof(fs->config) - off) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, (const uint8_t *)&fs->config + off, len);
}

/* Every chain is one FUSE request; what the backend wrote is the used
 * length. A request the backend cannot even answer (no room for a reply
 * header) is returned with length 0, as are those that take no reply:
 * the guest's driver only frees those. */
static int notify(void *dev, struct virtio_mmio *t, unsigned q, struct vmp_error *err)
{
	struct virtio_fs *fs = dev;
	struct virtq *vq = &t->vq[q];
	int rc = 0;
	unsigned served = 0;
	while (served < virtq_batch(vq) && (rc = virtq_pop(vq, t->mem, &fs->chain, err)) > 0) {
		uint32_t len = 0;
		if (fs->be && fs->be->request) {
			unsigned nin, nout;
			const struct iovec *in = virtq_chain_readable(&fs->chain, &nin);
			const struct iovec *out = virtq_chain_writable(&fs->chain, &nout);
			len = fs->be->request(fs->ctx, in, nin, out, nout);
		}
		if (len > fs->chain.write_len)
			len = (uint32_t)fs->chain.write_len;
		virtq_push(vq, fs->chain.head, len);
		/* Interrupt per completion batch, but do not make the guest
		 * wait for a long batch to finish either. */
		if (++served % 64 == 0)
			virtio_mmio_interrupt(t, q);
	}
	if (served)
		virtio_mmio_interrupt(t, q);
	return rc < 0 ? rc : served == virtq_batch(vq) ? VIRTIO_NOTIFY_MORE : 0;
}

static void reset(void *dev)
{
	struct virtio_fs *fs = dev;
	if (fs->be && fs->be->reset)
		fs->be->reset(fs->ctx);
}

int virtio_fs_check_capture(struct virtio_fs *fs, struct vmp_error *err)
{
	if (fs->be && fs->be->session_active && fs->be->session_active(fs->ctx))
		return vmp_fail(err, -EBUSY,
		                "the guest mounted the virtio-fs device before it was ready; "
		                "a snapshot cannot hold a FUSE session");
	return 0;
}

static const struct virtio_device_ops fs_ops = {
    .name = "virtio-fs",
    .device_id = VIRTIO_ID_FS,
    .features = 0,
    .num_queues = FS_QUEUES,
    .queue_max = FS_QUEUE_MAX,
    .config_size = sizeof(struct fs_config),
    .read_config = read_config,
    .notify = notify,
    .reset = reset,
};

const struct virtio_device_ops *virtio_fs_ops(void)
{
	return &fs_ops;
}
