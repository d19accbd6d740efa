#include "virtio/mmio.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

enum {
	REG_MAGIC = 0x000,
	REG_VERSION = 0x004,
	REG_DEVICE_ID = 0x008,
	REG_VENDOR_ID = 0x00c,
	REG_DEVICE_FEATURES = 0x010,
	REG_DEVICE_FEATURES_SEL = 0x014,
	REG_DRIVER_FEATURES = 0x020,
	REG_DRIVER_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030,
	REG_QUEUE_NUM_MAX = 0x034,
	REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044,
	REG_QUEUE_NOTIFY = 0x050,
	REG_INTERRUPT_STATUS = 0x060,
	REG_INTERRUPT_ACK = 0x064,
	REG_STATUS = 0x070,
	REG_QUEUE_DESC_LOW = 0x080,
	REG_QUEUE_DESC_HIGH = 0x084,
	REG_QUEUE_DRIVER_LOW = 0x090,
	REG_QUEUE_DRIVER_HIGH = 0x094,
	REG_QUEUE_DEVICE_LOW = 0x0a0,
	REG_QUEUE_DEVICE_HIGH = 0x0a4,
	REG_CONFIG_GENERATION = 0x0fc,
	REG_CONFIG = 0x100,
};

#define VIRTIO_MMIO_WINDOW        0x1000
#define MAGIC_VALUE               0x74726976 /* "virt" */
#define VENDOR_ID                 0x554d4551 /* "QEMU": what Linux and peers expect */
#define STATUS_DRIVER_OK          4
#define STATUS_FEATURES_OK        8
#define STATUS_DEVICE_NEEDS_RESET 64
#define INTERRUPT_USED_BUFFER     1

int virtio_mmio_init(struct virtio_mmio *t, uint64_t base, unsigned irq, int irqfd,
                     const struct virtio_device_ops *ops, void *dev, const struct guest_mem *mem)
{
	memset(t, 0, sizeof(*t));
	if (ops->num_queues > VIRTIO_MMIO_MAX_QUEUES)
		return -EINVAL;
	int rc = pthread_mutex_init(&t->lock, NULL);
	if (rc)
		return -rc;
	t->base = base;
	t->irq = irq;
	t->irqfd = irqfd;
	t->ops = ops;
	t->dev = dev;
	t->mem = mem;
	return 0;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	pthread_mutex_destroy(&t->lock);
}

static uint64_t offered_features(const struct virtio_mmio *t)
{
	return t->ops->features | VIRTIO_F_VERSION_1;
}

static void reset_device(struct virtio_mmio *t)
{
	t->status = 0;
	t->driver_features = 0;
	t->interrupt_status = 0;
	t->queue_sel = 0;
	t->pending = 0;
	for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		virtq_reset(&t->vq[i]);
	if (t->ops->reset)
		t->ops->reset(t->dev);
}

static struct virtq *selected_queue(struct virtio_mmio *t)
{
	return t->queue_sel < t->ops->num_queues ? &t->vq[t->queue_sel] : NULL;
}

static uint32_t read_reg(struct virtio_mmio *t, uint64_t off)
{
	struct virtq *q = selected_queue(t);
	uint64_t f = offered_features(t);
	switch (off) {
	case REG_MAGIC: return MAGIC_VALUE;
	case REG_VERSION: return 2;
	case REG_DEVICE_ID: return t->ops->device_id;
	case REG_VENDOR_ID: return VENDOR_ID;
	case REG_DEVICE_FEATURES:
		return t->device_features_sel == 0   ? (uint32_t)f
		       : t->device_features_sel == 1 ? (uint32_t)(f >> 32)
		                                     : 0;
	case REG_QUEUE_NUM_MAX: return q ? t->ops->queue_max : 0;
	case REG_QUEUE_READY: return q ? q->ready : 0;
	case REG_INTERRUPT_STATUS: return t->interrupt_status;
	case REG_STATUS: return t->status;
	case REG_CONFIG_GENERATION: return t->config_generation;
	default: return 0;
	}
}

static void set_half(uint64_t *v, uint32_t val, bool high)
{
	*v = high ? ((*v & 0xffffffffull) | ((uint64_t)val << 32)) : ((*v & ~0xffffffffull) | val);
}

static int write_queue_ready(struct virtio_mmio *t, struct virtq *q, uint32_t val,
                             struct vmp_error *err)
{
	if (!val) {
		q->ready = false;
		return 0;
	}
	if (q->ready)
		return 0; /* enabled again: its layout and positions stay */
	if (q->size == 0 || q->size > t->ops->queue_max)
		return vmp_fail(err, -EINVAL, "%s: queue %u enabled with size %u (max %u)",
		                t->ops->name, t->queue_sel, q->size, t->ops->queue_max);
	q->event_idx = (t->driver_features & VIRTIO_RING_F_EVENT_IDX) != 0;
	int rc = virtq_start(q, t->mem, err);
	if (rc)
		return rc;
	q->ready = true;
	return 0;
}

static int write_status(struct virtio_mmio *t, uint32_t val)
{
	if (val == 0) {
		reset_device(t);
		return 0;
	}
	if ((val & STATUS_FEATURES_OK) && !(t->status & STATUS_FEATURES_OK)) {
		/* Refuse features we did not offer, and legacy drivers. */
		uint64_t f = t->driver_features;
		if ((f & ~offered_features(t)) || !(f & VIRTIO_F_VERSION_1))
			val &= ~(uint32_t)STATUS_FEATURES_OK;
	}
	t->status = val;
	return 0;
}

static int write_reg(struct virtio_mmio *t, uint64_t off, uint32_t val, struct vmp_error *err)
{
	struct virtq *q = selected_queue(t);
	switch (off) {
	case REG_DEVICE_FEATURES_SEL: t->device_features_sel = val; return 0;
	case REG_DRIVER_FEATURES_SEL: t->driver_features_sel = val; return 0;
	case REG_DRIVER_FEATURES:
		if (t->driver_features_sel < 2 && !(t->status & STATUS_FEATURES_OK))
			set_half(&t->driver_features, val, t->driver_features_sel == 1);
		return 0;
	case REG_QUEUE_SEL: t->queue_sel = val; return 0;
	case REG_INTERRUPT_ACK: t->interrupt_status &= ~val; return 0;
	case REG_STATUS: return write_status(t, val);
	default: break;
	}
	if (!q)
		return 0; /* queue registers with an invalid QueueSel: ignored */
	if (q->ready && off != REG_QUEUE_READY)
		return 0; /* a live queue's layout cannot change under us */
	switch (off) {
	case REG_QUEUE_NUM: q->size = val > 0xffff ? 0 : (uint16_t)val; return 0;
	case REG_QUEUE_READY: return write_queue_ready(t, q, val, err);
	case REG_QUEUE_DESC_LOW: set_half(&q->desc_gpa, val, false); return 0;
	case REG_QUEUE_DESC_HIGH: set_half(&q->desc_gpa, val, true); return 0;
	case REG_QUEUE_DRIVER_LOW: set_half(&q->avail_gpa, val, false); return 0;
	case REG_QUEUE_DRIVER_HIGH: set_half(&q->avail_gpa, val, true); return 0;
	case REG_QUEUE_DEVICE_LOW: set_half(&q->used_gpa, val, false); return 0;
	case REG_QUEUE_DEVICE_HIGH: set_half(&q->used_gpa, val, true); return 0;
	default: return 0;
	}
}

static int access_config(struct virtio_mmio *t, uint64_t off, uint8_t *data, uint32_t len,
                         bool is_write)
{
	uint64_t coff = off - REG_CONFIG;
	if (is_write || coff >= t->ops->config_size || len > t->ops->config_size - coff) {
		if (!is_write)
			memset(data, 0, len);
		return 0; /* config writes are not supported by our devices */
	}
	t->ops->read_config(t->dev, (uint32_t)coff, data, len);
	return 0;
}

/* Queue q's notify, if the driver may notify it now; remembers whether
 * the device yielded with work left. Under t->lock. */
static int notify_queue(struct virtio_mmio *t, uint32_t q, struct vmp_error *err)
{
	if (q >= t->ops->num_queues || !t->vq[q].ready || !(t->status & STATUS_DRIVER_OK))
		return 0;
	t->pending &= ~(1u << q);
	int rc = t->ops->notify(t->dev, t, q, err);
	if (rc == VIRTIO_NOTIFY_MORE) {
		t->pending |= 1u << q;
		rc = 0;
	}
	return rc < 0 ? rc : 0;
}

int virtio_mmio_access(struct virtio_mmio *t, uint64_t off, uint8_t *data, uint32_t len,
                       bool is_write, struct vmp_error *err)
{
	int rc = 0;
	if (len == 0 || len > 8 || off >= VIRTIO_MMIO_WINDOW || len > VIRTIO_MMIO_WINDOW - off)
		return 0;
	pthread_mutex_lock(&t->lock);
	if (off >= REG_CONFIG) {
		rc = access_config(t, off, data, len, is_write);
	} else if (len != 4 || (off & 3)) {
		/* Registers are 32-bit; other widths are ignored. */
		if (!is_write)
			memset(data, 0, len);
	} else if (!is_write) {
		uint32_t v = read_reg(t, off);
		memcpy(data, &v, 4);
	} else {
		uint32_t v;
		memcpy(&v, data, 4);
		if (off == REG_QUEUE_NOTIFY) {
			rc = notify_queue(t, v, err);
		} else {
			rc = write_reg(t, off, v, err);
		}
	}
	if (rc)
		t->status |= STATUS_DEVICE_NEEDS_RESET;
	pthread_mutex_unlock(&t->lock);
	return rc;
}

bool virtio_mmio_pending(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	bool pending = t->pending != 0;
	pthread_mutex_unlock(&t->lock);
	return pending;
}

int virtio_mmio_continue(struct virtio_mmio *t, struct vmp_error *err)
{
	int rc = 0;
	pthread_mutex_lock(&t->lock);
	for (uint32_t q = 0; !rc && q < VIRTIO_MMIO_MAX_QUEUES; q++)
		if (t->pending & (1u << q))
			rc = notify_queue(t, q, err);
	if (rc) {
		t->pending = 0;
		t->status |= STATUS_DEVICE_NEEDS_RESET;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void virtio_mmio_interrupt(struct virtio_mmio *t, unsigned q)
{
	if (q >= t->ops->num_queues || !t->vq[q].ready || !virtq_needs_interrupt(&t->vq[q]))
		return;
	t->interrupt_status |= INTERRUPT_USED_BUFFER;
	uint64_t one = 1;
	/* An eventfd write only fails if the counter would overflow, which
	 * means an interrupt is pending anyway. */
	ssize_t n = write(t->irqfd, &one, sizeof(one));
	(void)n;
}

bool virtio_mmio_driver_ok(const struct virtio_mmio *t)
{
	return (t->status & STATUS_DRIVER_OK) != 0;
}

void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&t->lock);
	s->device_id = t->ops->device_id;
	s->status = t->status;
	s->device_features_sel = t->device_features_sel;
	s->driver_features_sel = t->driver_features_sel;
	s->queue_sel = t->queue_sel;
	s->interrupt_status = t->interrupt_status;
	s->config_generation = t->config_generation;
	s->driver_features = t->driver_features;
	for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		const struct virtq *q = &t->vq[i];
		s->vq[i] = (struct virtio_mmio_queue_state){
		    .desc_gpa = q->desc_gpa,
		    .avail_gpa = q->avail_gpa,
		    .used_gpa = q->used_gpa,
		    .size = q->size,
		    .last_avail = q->last_avail,
		    .used_idx = q->used_idx,
		    .signalled_used = q->signalled_used,
		    .ready = q->ready,
		    .event_idx = q->event_idx,
		    .signalled_valid = q->signalled_valid,
		};
	}
	pthread_mutex_unlock(&t->lock);
}

int virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *s,
                        struct vmp_error *err)
{
	if (s->device_id != t->ops->device_id)
		return vmp_fail(err, -EINVAL, "%s: state of device id %u, not %u", t->ops->name,
		                s->device_id, t->ops->device_id);
	if (s->driver_features & ~offered_features(t))
		return vmp_fail(err, -EINVAL, "%s: state has features the device does not offer",
		                t->ops->name);
	pthread_mutex_lock(&t->lock);
	t->status = s->status;
	t->device_features_sel = s->device_features_sel;
	t->driver_features_sel = s->driver_features_sel;
	t->queue_sel = s->queue_sel;
	t->interrupt_status = s->interrupt_status;
	t->config_generation = s->config_generation;
	t->driver_features = s->driver_features;
	int rc = 0;
	for (unsigned i = 0; !rc && i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		const struct virtio_mmio_queue_state *qs = &s->vq[i];
		struct virtq *q = &t->vq[i];
		virtq_reset(q);
		q->desc_gpa = qs->desc_gpa;
		q->avail_gpa = qs->avail_gpa;
		q->used_gpa = qs->used_gpa;
		q->size = qs->size;
		if (!qs->ready)
			continue;
		if (i >= t->ops->num_queues || q->size == 0 || q->size > t->ops->queue_max) {
			rc = vmp_fail(err, -EINVAL, "%s: state has queue %u ready with size %u",
			              t->ops->name, i, q->size);
			break;
		}
		q->event_idx = (t->driver_features & VIRTIO_RING_F_EVENT_IDX) != 0;
		if ((rc = virtq_start(q, t->mem, err)))
			break;
		q->ready = true;
		q->last_avail = qs->last_avail;
		q->used_idx = qs->used_idx;
		q->signalled_used = qs->signalled_used;
		q->signalled_valid = qs->signalled_valid != 0;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}
