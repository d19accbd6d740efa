/* The virtio-mmio transport (virtio 1.x, section 4.2, version 2 layout).
 * A device plugs in through struct virtio_device_ops; the transport owns
 * the register file, feature negotiation, queue setup and the interrupt.
 * Register accesses arrive from a vCPU thread; devices may also complete
 * work from other threads, so the transport state is under a mutex. */
#ifndef VMP_VIRTIO_MMIO_H
#define VMP_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"
#include "util/error.h"
#include "virtio/virtqueue.h"

#define VIRTIO_MMIO_MAX_QUEUES 16
#define VIRTIO_NOTIFY_MORE     1

#define VIRTIO_F_VERSION_1      (1ull << 32)
#define VIRTIO_RING_F_EVENT_IDX (1ull << 29)

struct virtio_mmio;

struct virtio_device_ops {
	const char *name; /* for messages: "virtio-console" */
	uint32_t device_id;
	uint64_t features; /* offered, besides VIRTIO_F_VERSION_1 */
	unsigned num_queues;
	uint16_t queue_max;
	/* Device config space, at most 256 bytes; off+len is pre-checked. */
	uint32_t config_size;
	void (*read_config)(void *dev, uint32_t off, void *data, uint32_t len);
	/* The driver notified queue q. Returns 0, VIRTIO_NOTIFY_MORE when it
	 * took virtq_batch() chains and more may be waiting (the transport
	 * calls it again through virtio_mmio_continue), or negative if the
	 * guest broke the rules (message in err): the VM is then stopped. */
	int (*notify)(void *dev, struct virtio_mmio *t, unsigned q, struct vmp_error *err);
	/* The driver reset the device (status 0). */
	void (*reset)(void *dev);
};

struct virtio_mmio {
	pthread_mutex_t lock;
	uint64_t base;
	unsigned irq;
	int irqfd; /* eventfd bound to irq with KVM_IRQFD */
	const struct virtio_device_ops *ops;
	void *dev;
	const struct guest_mem *mem;
	uint32_t status, device_features_sel, driver_features_sel, queue_sel;
	uint64_t driver_features;
	uint32_t interrupt_status;
	uint32_t config_generation;
	uint32_t pending; /* queues whose notify yielded with work left */
	struct virtq vq[VIRTIO_MMIO_MAX_QUEUES];
};

int virtio_mmio_init(struct virtio_mmio *t, uint64_t base, unsigned irq, int irqfd,
                     const struct virtio_device_ops *ops, void *dev, const struct guest_mem *mem);
void virtio_mmio_destroy(struct virtio_mmio *t);

/* A guest access at offset off (0..0xfff) of the device window. Reads
 * fill data. Returns negative (message in err) if the guest drove the
 * device into an error that must stop the VM. */
int virtio_mmio_access(struct virtio_mmio *t, uint64_t off, uint8_t *data, uint32_t len,
                       bool is_write, struct vmp_error *err);

/* Whether a notify yielded with work left (VIRTIO_NOTIFY_MORE): the
 * caller serves it with virtio_mmio_continue, batch by batch, checking
 * between batches whether the VM is being stopped. */
bool virtio_mmio_pending(struct virtio_mmio *t);
/* One more batch of every queue that yielded. Like virtio_mmio_access,
 * negative if the guest broke the rules. */
int virtio_mmio_continue(struct virtio_mmio *t, struct vmp_error *err);

/* Raises the used-buffer interrupt if queue q asks for one. Call with
 * t->lock held (devices do, from notify or their own threads). */
void virtio_mmio_interrupt(struct virtio_mmio *t, unsigned q);

/* What a snapshot keeps of a transport: the register file and, per
 * queue, the driver's ring setup and the device's positions in it. */
struct virtio_mmio_queue_state {
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t size;
	uint16_t last_avail, used_idx, signalled_used;
	uint8_t ready, event_idx, signalled_valid, pad;
};

struct virtio_mmio_state {
	uint32_t device_id; /* the device it was taken from, checked at restore */
	uint32_t status, device_features_sel, driver_features_sel, queue_sel;
	uint32_t interrupt_status, config_generation, pad;
	uint64_t driver_features;
	struct virtio_mmio_queue_state vq[VIRTIO_MMIO_MAX_QUEUES];
};

/* Under t->lock. Take it while no vCPU runs. */
void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *s);
/* Into a fresh transport of the same device over the restored memory.
 * The state may come from a file: every value is checked as if the
 * driver had written it (queue sizes, ring addresses in guest memory). */
int virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *s,
                        struct vmp_error *err);

/* Whether the driver has finished initialisation (DRIVER_OK). */
bool virtio_mmio_driver_ok(const struct virtio_mmio *t);

#endif
