/* virtio-blk (device id 2) backed by a host file: read, write, flush and
 * get-id, optionally read-only. Requests are served synchronously on the
 * thread that takes the guest's notification, straight between the file
 * and the guest's buffers (pread/pwrite, no bounce copy). */
#ifndef VMP_VIRTIO_BLK_H
#define VMP_VIRTIO_BLK_H

#include <stdbool.h>

#include "util/error.h"
#include "virtio/mmio.h"

struct virtio_blk;

/* Opens path (read-only if read_only). The size is rounded down to whole
 * 512-byte sectors. */
int virtio_blk_new(struct virtio_blk **out, const char *path, bool read_only,
                   struct vmp_error *err);
void virtio_blk_free(struct virtio_blk *b);
/* The ops for this device (read-only devices advertise VIRTIO_BLK_F_RO). */
const struct virtio_device_ops *virtio_blk_ops(const struct virtio_blk *b);

#endif
