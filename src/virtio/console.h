/* virtio-console (device id 3), single port, no multiport: the guest's
 * /dev/hvc0. What the guest writes goes to an output callback; input is
 * queued by the host with virtio_console_input. */
#ifndef VMP_VIRTIO_CONSOLE_H
#define VMP_VIRTIO_CONSOLE_H

#include <stddef.h>

#include "virtio/mmio.h"

typedef void (*virtio_console_output_fn)(const void *data, size_t len, void *userdata);

struct virtio_console;

struct virtio_console *virtio_console_new(virtio_console_output_fn out, void *userdata);
void virtio_console_free(struct virtio_console *c);
const struct virtio_device_ops *virtio_console_ops(void);

/* Copies up to len bytes into the guest's receive buffers; returns how
 * many were taken (0 when the guest has no buffer ready). A receive ring
 * that breaks the rules takes nothing more, and the next notify fails
 * (the VMM then stops the VM). Takes t->lock. */
size_t virtio_console_input(struct virtio_console *c, struct virtio_mmio *t, const void *data,
                            size_t len);

#endif
