#include "virtio/console.h"

#include <stdlib.h>
#include <string.h>

#define VIRTIO_ID_CONSOLE 3
#define QUEUE_RX          0
#define QUEUE_TX          1
#define QUEUE_MAX         64

struct virtio_console {
	virtio_console_output_fn out;
	void *userdata;
	struct virtq_chain chain; /* scratch, used under the transport lock */
	/* The receive ring broke while the host fed it: the next notify
	 * reports it, so the VM is stopped. Under the transport lock. */
	struct vmp_error broken;
};

struct virtio_console *virtio_console_new(virtio_console_output_fn out, void *userdata)
{
	struct virtio_console *c = calloc(1, sizeof(*c));
	if (c) {
		c->out = out;
		c->userdata = userdata;
	}
	return c;
}

void virtio_console_free(struct virtio_console *c)
{
	free(c);
}

/* struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr. */
static void read_config(void *dev, uint32_t off, void *data, uint32_t len)
{
	(void)dev;
	(void)off;
	memset(data, 0, len);
}

static int drain_tx(struct virtio_console *c, struct virtio_mmio *t, struct vmp_error *err)
{
	struct virtq *q = &t->vq[QUEUE_TX];
	int rc = 0;
	unsigned took = 0;
	while (took++ < virtq_batch(q) && (rc = virtq_pop(q, t->mem, &c->chain, err)) > 0) {
		unsigned n;
		const struct iovec *iov = virtq_chain_readable(&c->chain, &n);
		for (unsigned i = 0; i < n; i++)
			if (c->out && iov[i].iov_len)
				c->out(iov[i].iov_base, iov[i].iov_len, c->userdata);
		virtq_push(q, c->chain.head, 0);
	}
	virtio_mmio_interrupt(t, QUEUE_TX);
	return rc < 0 ? rc : rc > 0 ? VIRTIO_NOTIFY_MORE : 0;
}

static int notify(void *dev, struct virtio_mmio *t, unsigned q, struct vmp_error *err)
{
	struct virtio_console *c = dev;
	if (c->broken.code)
		return vmp_fail(err, c->broken.code, "%s", c->broken.msg);
	if (q == QUEUE_TX)
		return drain_tx(dev, t, err);
	return 0; /* new receive buffers: input is pushed by the host */
}

static const struct virtio_device_ops ops = {
    .name = "virtio-console",
    .device_id = VIRTIO_ID_CONSOLE,
    .features = 0,
    .num_queues = 2,
    .queue_max = QUEUE_MAX,
    .config_size = 12,
    .read_config = read_config,
    .notify = notify,
    .reset = NULL,
};

const struct virtio_device_ops *virtio_console_ops(void)
{
	return &ops;
}

size_t virtio_console_input(struct virtio_console *c, struct virtio_mmio *t, const void *data,
                            size_t len)
{
	size_t done = 0;
	pthread_mutex_lock(&t->lock);
	struct virtq *q = &t->vq[QUEUE_RX];
	while (done < len && virtio_mmio_driver_ok(t) && !c->broken.code) {
		if (virtq_pop(q, t->mem, &c->chain, &c->broken) <= 0)
			break;
		uint64_t n =
		    virtq_chain_write(&c->chain, 0, (const uint8_t *)data + done, len - done);
		virtq_push(q, c->chain.head, (uint32_t)n);
		done += n;
	}
	if (done)
		virtio_mmio_interrupt(t, QUEUE_RX);
	pthread_mutex_unlock(&t->lock);
	return done;
}
