/* virtio-console with VIRTIO_CONSOLE_F_MULTIPORT (virtio 1.x, section
 * 5.3): a device with several named byte-stream ports. The guest sees
 * each port as /dev/vport<device index>p<port id>, named in sysfs.
 *
 * The host side is a backend: it receives what the guest writes on a
 * port (synchronously, on the vCPU thread that notified) and feeds ports
 * from any thread with virtio_ports_send. Per port, the host's side is
 * open or closed (PORT_OPEN): a guest read of a port whose host side is
 * closed returns end of file once the data sent before is consumed, and
 * a guest write to it blocks, so output ports stay open. */
#ifndef VMP_VIRTIO_PORTS_H
#define VMP_VIRTIO_PORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/mmio.h"

#define VIRTIO_PORTS_MAX      6
#define VIRTIO_PORTS_NAME_MAX 31

struct virtio_ports;

struct virtio_ports_backend {
	/* The guest wrote len bytes on port. Called on the vCPU thread with
	 * the transport locked; the guest's write waits until it returns. */
	void (*data)(void *userdata, unsigned port, const uint8_t *data, size_t len);
	/* Something the host may be waiting for happened: the guest opened
	 * or closed a port, or gave a port new receive buffers. Called with
	 * the transport locked: just wake the feeding thread. */
	void (*event)(void *userdata);
};

/* nports ports, with names (copied) and initial host-side open state. */
int virtio_ports_new(struct virtio_ports **out, unsigned nports, const char *const names[],
                     const bool host_open[], const struct virtio_ports_backend *be, void *userdata);
/* Frees a device that is detached (or was never attached). */
void virtio_ports_free(struct virtio_ports *p);

const struct virtio_device_ops *virtio_ports_ops(struct virtio_ports *p);
/* Binds the device to its transport, once it is registered. */
void virtio_ports_attach(struct virtio_ports *p, struct virtio_mmio *t);
/* Unbinds it before the transport and guest memory go away: from then on
 * virtio_ports_send returns -EPIPE. Waits for a send in progress. */
void virtio_ports_detach(struct virtio_ports *p);

/* Copies up to len bytes into the port's receive buffers. Returns the
 * bytes taken: 0 when the guest has no free buffer or has not opened the
 * port (data for a port nobody opened would be dropped by the guest), or
 * -EPIPE once detached. Any thread. */
long virtio_ports_send(struct virtio_ports *p, unsigned port, const void *data, size_t len);
/* Opens or closes the host side of port. Any thread. */
int virtio_ports_set_host_open(struct virtio_ports *p, unsigned port, bool open);
/* What a snapshot keeps of the device besides its transport. */
struct virtio_ports_state {
	uint32_t nports;
	uint8_t device_ready, pad[3];
	struct {
		uint8_t host_open, guest_open, ready, pad;
	} port[VIRTIO_PORTS_MAX];
	uint32_t npending;
	struct {
		uint32_t id;
		uint16_t event, value;
	} pending[32];
};

/* While no vCPU runs. */
void virtio_ports_save(struct virtio_ports *p, struct virtio_ports_state *s);
/* Into an attached device with the same ports whose transport is
 * restored. Where this device's host side differs from what the guest
 * was told, the guest is told (PORT_OPEN). The state may come from a
 * file: counts and ids are checked. */
int virtio_ports_restore(struct virtio_ports *p, const struct virtio_ports_state *s,
                         struct vmp_error *err);

/* Whether the guest has the port open. Any thread. */
bool virtio_ports_guest_open(struct virtio_ports *p, unsigned port);

#endif
