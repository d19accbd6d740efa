#include "virtio/ports.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VIRTIO_ID_CONSOLE          3
#define VIRTIO_CONSOLE_F_MULTIPORT (1ull << 1)
#define QUEUE_MAX                  32

/* Control events (struct virtio_console_control.event). */
enum {
	CTRL_DEVICE_READY = 0,
	CTRL_PORT_ADD = 1,
	CTRL_PORT_REMOVE = 2,
	CTRL_PORT_READY = 3,
	CTRL_CONSOLE_PORT = 4,
	CTRL_RESIZE = 5,
	CTRL_PORT_OPEN = 6,
	CTRL_PORT_NAME = 7,
};

/* struct virtio_console_control: le32 id, le16 event, le16 value. */
#define CTRL_HDR_LEN 8
/* Queue 2 and 3 are the control queues; port 0 has 0 and 1. */
#define QUEUE_CTRL_RX 2
#define QUEUE_CTRL_TX 3
/* Host-to-guest control messages waiting for a guest buffer: at most a
 * handful per port (add, name, open, close). */
#define PENDING_MAX 32

struct ctrl_msg {
	uint32_t id;
	uint16_t event, value;
};

struct port_state {
	char name[VIRTIO_PORTS_NAME_MAX + 1];
	bool host_open;
	bool guest_open;
	bool ready; /* the guest sent PORT_READY */
};

struct virtio_ports {
	struct virtio_device_ops ops;
	unsigned nports;
	struct port_state port[VIRTIO_PORTS_MAX];
	const struct virtio_ports_backend *be;
	void *userdata;
	/* Guards t against detach; taken before t->lock, never inside it. */
	pthread_rwlock_t attach_lock;
	struct virtio_mmio *t;
	/* The rest is under t->lock. */
	struct ctrl_msg pending[PENDING_MAX];
	unsigned npending;
	bool device_ready;
	/* A ring broke while the host fed it (virtio_ports_send): the next
	 * notify reports it, so the VM is stopped. */
	struct vmp_error broken;
	struct virtq_chain chain;
};

static unsigned queue_rx(unsigned port)
{
	return port == 0 ? 0 : 2 + 2 * port;
}

static unsigned queue_tx(unsigned port)
{
	return port == 0 ? 1 : 3 + 2 * port;
}

/* The port whose data queue q is, or -1 for the control queues. */
static int queue_port(unsigned q, bool *is_tx)
{
	*is_tx = q & 1;
	if (q == QUEUE_CTRL_RX || q == QUEUE_CTRL_TX)
		return -1;
	return q < 2 ? 0 : (int)(q - 2) / 2;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr. */
static void read_config(void *dev, uint32_t off, void *data, uint32_t len)
{
	struct virtio_ports *p = dev;
	uint8_t cfg[12] = {0};
	put_le32(cfg + 4, p->nports);
	memset(data, 0, len);
	if (off < sizeof(cfg))
		memcpy(data, cfg + off, len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

static void queue_ctrl(struct virtio_ports *p, uint32_t id, uint16_t event, uint16_t value)
{
	/* Only the newest open state of a port matters: a waiting PORT_OPEN
	 * is updated rather than queued again, so the queue stays bounded
	 * (add, name and open per port) and the last state always arrives. */
	if (event == CTRL_PORT_OPEN)
		for (unsigned i = 0; i < p->npending; i++)
			if (p->pending[i].id == id && p->pending[i].event == CTRL_PORT_OPEN) {
				p->pending[i].value = value;
				return;
			}
	if (p->npending < PENDING_MAX)
		p->pending[p->npending++] = (struct ctrl_msg){id, event, value};
}

/* Delivers pending control messages into the guest's control buffers. */
static int flush_ctrl(struct virtio_ports *p, struct virtio_mmio *t, struct vmp_error *err)
{
	struct virtq *q = &t->vq[QUEUE_CTRL_RX];
	unsigned done = 0;
	int rc = 0;
	while (done < p->npending && (rc = virtq_pop(q, t->mem, &p->chain, err)) > 0) {
		const struct ctrl_msg *m = &p->pending[done++];
		uint8_t buf[CTRL_HDR_LEN + VIRTIO_PORTS_NAME_MAX];
		put_le32(buf, m->id);
		put_le16(buf + 4, m->event);
		put_le16(buf + 6, m->value);
		size_t len = CTRL_HDR_LEN;
		if (m->event == CTRL_PORT_NAME) {
			size_t n = strlen(p->port[m->id].name);
			memcpy(buf + len, p->port[m->id].name, n);
			len += n;
		}
		uint64_t put = virtq_chain_write(&p->chain, 0, buf, len);
		virtq_push(q, p->chain.head, (uint32_t)put);
	}
	if (done) {
		memmove(p->pending, p->pending + done,
		        (p->npending - done) * sizeof(p->pending[0]));
		p->npending -= done;
		virtio_mmio_interrupt(t, QUEUE_CTRL_RX);
	}
	return rc < 0 ? rc : 0;
}

static void handle_ctrl(struct virtio_ports *p, uint32_t id, uint16_t event, uint16_t value)
{
	switch (event) {
	case CTRL_DEVICE_READY:
		if (value != 1 || p->device_ready)
			return; /* the driver gave up on the device, or said it twice */
		p->device_ready = true;
		for (unsigned i = 0; i < p->nports; i++)
			queue_ctrl(p, i, CTRL_PORT_ADD, 0);
		return;
	case CTRL_PORT_READY:
		if (id >= p->nports || value != 1 || p->port[id].ready)
			return;
		p->port[id].ready = true;
		queue_ctrl(p, id, CTRL_PORT_NAME, 1);
		if (p->port[id].host_open)
			queue_ctrl(p, id, CTRL_PORT_OPEN, 1);
		return;
	case CTRL_PORT_OPEN:
		if (id >= p->nports)
			return;
		p->port[id].guest_open = value != 0;
		if (p->be->event)
			p->be->event(p->userdata);
		return;
	default: return; /* nothing else is meant for the device */
	}
}

static int drain_ctrl_tx(struct virtio_ports *p, struct virtio_mmio *t, struct vmp_error *err)
{
	struct virtq *q = &t->vq[QUEUE_CTRL_TX];
	int rc = 0;
	unsigned took = 0;
	while (took < virtq_batch(q) && (rc = virtq_pop(q, t->mem, &p->chain, err)) > 0) {
		took++;
		uint8_t hdr[CTRL_HDR_LEN];
		if (virtq_chain_read(&p->chain, 0, hdr, sizeof(hdr)) == sizeof(hdr)) {
			uint32_t id = hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
			              (uint32_t)hdr[3] << 24;
			handle_ctrl(p, id, (uint16_t)(hdr[4] | hdr[5] << 8),
			            (uint16_t)(hdr[6] | hdr[7] << 8));
		}
		virtq_push(q, p->chain.head, 0);
	}
	if (took)
		virtio_mmio_interrupt(t, QUEUE_CTRL_TX);
	if (rc < 0)
		return rc;
	rc = flush_ctrl(p, t, err);
	return rc ? rc : took == virtq_batch(q) ? VIRTIO_NOTIFY_MORE : 0;
}

static int drain_port_tx(struct virtio_ports *p, struct virtio_mmio *t, unsigned port,
                         struct vmp_error *err)
{
	struct virtq *q = &t->vq[queue_tx(port)];
	int rc = 0;
	unsigned took = 0;
	while (took < virtq_batch(q) && (rc = virtq_pop(q, t->mem, &p->chain, err)) > 0) {
		took++;
		unsigned n;
		const struct iovec *iov = virtq_chain_readable(&p->chain, &n);
		for (unsigned i = 0; i < n; i++)
			if (iov[i].iov_len && p->be->data)
				p->be->data(p->userdata, port, iov[i].iov_base, iov[i].iov_len);
		virtq_push(q, p->chain.head, 0);
	}
	if (took)
		virtio_mmio_interrupt(t, queue_tx(port));
	return rc < 0 ? rc : took == virtq_batch(q) ? VIRTIO_NOTIFY_MORE : 0;
}

static int notify(void *dev, struct virtio_mmio *t, unsigned q, struct vmp_error *err)
{
	struct virtio_ports *p = dev;
	if (p->broken.code)
		return vmp_fail(err, p->broken.code, "%s", p->broken.msg);
	if (q == QUEUE_CTRL_TX)
		return drain_ctrl_tx(p, t, err);
	if (q == QUEUE_CTRL_RX)
		return flush_ctrl(p, t, err);
	bool is_tx;
	int port = queue_port(q, &is_tx);
	if (port < 0 || (unsigned)port >= p->nports)
		return 0;
	if (is_tx)
		return drain_port_tx(p, t, (unsigned)port, err);
	if (p->be->event)
		p->be->event(p->userdata); /* new receive buffers */
	return 0;
}

static void reset(void *dev)
{
	struct virtio_ports *p = dev;
	p->npending = 0;
	p->device_ready = false;
	for (unsigned i = 0; i < p->nports; i++)
		p->port[i].guest_open = p->port[i].ready = false;
}

int virtio_ports_new(struct virtio_ports **out, unsigned nports, const char *const names[],
                     const bool host_open[], const struct virtio_ports_backend *be, void *userdata)
{
	if (nports == 0 || nports > VIRTIO_PORTS_MAX || !be)
		return -EINVAL;
	struct virtio_ports *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	int rc = -pthread_rwlock_init(&p->attach_lock, NULL);
	if (rc) {
		free(p);
		return rc;
	}
	p->nports = nports;
	for (unsigned i = 0; i < nports; i++) {
		if (strlen(names[i]) > VIRTIO_PORTS_NAME_MAX) {
			virtio_ports_free(p);
			return -ENAMETOOLONG;
		}
		strcpy(p->port[i].name, names[i]);
		p->port[i].host_open = host_open[i];
	}
	p->be = be;
	p->userdata = userdata;
	p->ops = (struct virtio_device_ops){
	    .name = "virtio-console (ports)",
	    .device_id = VIRTIO_ID_CONSOLE,
	    .features = VIRTIO_CONSOLE_F_MULTIPORT,
	    .num_queues = 2 + 2 * nports,
	    .queue_max = QUEUE_MAX,
	    .config_size = 12,
	    .read_config = read_config,
	    .notify = notify,
	    .reset = reset,
	};
	*out = p;
	return 0;
}

void virtio_ports_free(struct virtio_ports *p)
{
	if (!p)
		return;
	pthread_rwlock_destroy(&p->attach_lock);
	free(p);
}

const struct virtio_device_ops *virtio_ports_ops(struct virtio_ports *p)
{
	return &p->ops;
}

void virtio_ports_attach(struct virtio_ports *p, struct virtio_mmio *t)
{
	pthread_rwlock_wrlock(&p->attach_lock);
	p->t = t;
	pthread_rwlock_unlock(&p->attach_lock);
}

void virtio_ports_detach(struct virtio_ports *p)
{
	virtio_ports_attach(p, NULL);
}

long virtio_ports_send(struct virtio_ports *p, unsigned port, const void *data, size_t len)
{
	if (port >= p->nports)
		return -EINVAL;
	pthread_rwlock_rdlock(&p->attach_lock);
	struct virtio_mmio *t = p->t;
	if (!t) {
		pthread_rwlock_unlock(&p->attach_lock);
		return -EPIPE;
	}
	pthread_mutex_lock(&t->lock);
	size_t done = 0;
	if (virtio_mmio_driver_ok(t) && p->port[port].guest_open && !p->broken.code) {
		struct virtq *q = &t->vq[queue_rx(port)];
		bool pushed = false;
		/* A broken ring is kept and reported by the next notify, on
		 * the vCPU thread, which then stops the VM. */
		while (done < len && virtq_pop(q, t->mem, &p->chain, &p->broken) > 0) {
			uint64_t n = virtq_chain_write(&p->chain, 0, (const uint8_t *)data + done,
			                               len - done);
			virtq_push(q, p->chain.head, (uint32_t)n);
			pushed = true;
			done += n;
			if (n == 0) {
				vmp_fail(&p->broken, -EINVAL,
				         "receive buffer of port %u is not writable", port);
				break;
			}
		}
		if (pushed)
			virtio_mmio_interrupt(t, queue_rx(port));
	}
	pthread_mutex_unlock(&t->lock);
	pthread_rwlock_unlock(&p->attach_lock);
	return (long)done;
}

int virtio_ports_set_host_open(struct virtio_ports *p, unsigned port, bool open)
{
	if (port >= p->nports)
		return -EINVAL;
	pthread_rwlock_rdlock(&p->attach_lock);
	struct virtio_mmio *t = p->t;
	if (!t) {
		p->port[port].host_open = open; /* before start, or after the end */
		pthread_rwlock_unlock(&p->attach_lock);
		return 0;
	}
	pthread_mutex_lock(&t->lock);
	int rc = 0;
	if (p->port[port].host_open != open) {
		p->port[port].host_open = open;
		if (p->port[port].ready) {
			queue_ctrl(p, port, CTRL_PORT_OPEN, open);
			/* As in virtio_ports_send: a broken ring is kept for
			 * the next notify, which stops the VM. */
			if (virtio_mmio_driver_ok(t) && !p->broken.code)
				rc = flush_ctrl(p, t, &p->broken);
		}
	}
	pthread_mutex_unlock(&t->lock);
	pthread_rwlock_unlock(&p->attach_lock);
	return rc;
}

bool virtio_ports_guest_open(struct virtio_ports *p, unsigned port)
{
	if (port >= p->nports)
		return false;
	pthread_rwlock_rdlock(&p->attach_lock);
	bool open = false;
	if (p->t) {
		pthread_mutex_lock(&p->t->lock);
		open = p->port[port].guest_open;
		pthread_mutex_unlock(&p->t->lock);
	}
	pthread_rwlock_unlock(&p->attach_lock);
	return open;
}

_Static_assert(PENDING_MAX == 32, "struct virtio_ports_state holds PENDING_MAX messages");

void virtio_ports_save(struct virtio_ports *p, struct virtio_ports_state *s)
{
	memset(s, 0, sizeof(*s));
	pthread_rwlock_rdlock(&p->attach_lock);
	if (p->t)
		pthread_mutex_lock(&p->t->lock);
	s->nports = p->nports;
	s->device_ready = p->device_ready;
	for (unsigned i = 0; i < p->nports; i++) {
		s->port[i].host_open = p->port[i].host_open;
		s->port[i].guest_open = p->port[i].guest_open;
		s->port[i].ready = p->port[i].ready;
	}
	s->npending = p->npending;
	for (unsigned i = 0; i < p->npending; i++) {
		s->pending[i].id = p->pending[i].id;
		s->pending[i].event = p->pending[i].event;
		s->pending[i].value = p->pending[i].value;
	}
	if (p->t)
		pthread_mutex_unlock(&p->t->lock);
	pthread_rwlock_unlock(&p->attach_lock);
}

int virtio_ports_restore(struct virtio_ports *p, const struct virtio_ports_state *s,
                         struct vmp_error *err)
{
	if (s->nports != p->nports)
		return vmp_fail(err, -EINVAL, "channel state has %u ports, the device %u",
		                s->nports, p->nports);
	if (s->npending > PENDING_MAX)
		return vmp_fail(err, -EINVAL, "channel state has %u pending messages", s->npending);
	for (unsigned i = 0; i < s->npending; i++)
		if (s->pending[i].id >= p->nports)
			return vmp_fail(err, -EINVAL, "channel state has a message for port %u",
			                s->pending[i].id);
	pthread_rwlock_rdlock(&p->attach_lock);
	struct virtio_mmio *t = p->t;
	if (!t) {
		pthread_rwlock_unlock(&p->attach_lock);
		return vmp_fail(err, -EINVAL, "channel restored before it was attached");
	}
	pthread_mutex_lock(&t->lock);
	p->device_ready = s->device_ready != 0;
	p->npending = s->npending;
	for (unsigned i = 0; i < s->npending; i++)
		p->pending[i] =
		    (struct ctrl_msg){s->pending[i].id, s->pending[i].event, s->pending[i].value};
	for (unsigned i = 0; i < p->nports; i++) {
		p->port[i].guest_open = s->port[i].guest_open != 0;
		p->port[i].ready = s->port[i].ready != 0;
		/* What the guest was told (or will be, by a pending message). */
		bool told = s->port[i].host_open != 0;
		for (unsigned j = 0; j < p->npending; j++)
			if (p->pending[j].id == i && p->pending[j].event == CTRL_PORT_OPEN)
				told = p->pending[j].value != 0;
		if (p->port[i].ready && told != p->port[i].host_open)
			queue_ctrl(p, i, CTRL_PORT_OPEN, p->port[i].host_open);
	}
	int rc = 0;
	if (p->npending && virtio_mmio_driver_ok(t))
		rc = flush_ctrl(p, t, err);
	pthread_mutex_unlock(&t->lock);
	pthread_rwlock_unlock(&p->attach_lock);
	return rc;
}
