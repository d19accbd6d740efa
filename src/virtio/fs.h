/* virtio-fs (device id 26, virtio 1.2 section 5.11): the guest's FUSE
 * requests, carried over virtqueues, answered in this process by a FUSE
 * server (fuse/server.h). One high-priority queue (FORGET, INTERRUPT) and
 * one request queue; requests are served synchronously on the vCPU
 * thread that notified, data moving straight between host files (or
 * host callbacks) and the guest's buffers. */
#ifndef VMP_VIRTIO_FS_H
#define VMP_VIRTIO_FS_H

#include "fuse/server.h"
#include "util/error.h"
#include "virtio/mmio.h"

struct virtio_fs;

/* A device with mount tag tag (at most 36 bytes) serving server, which
 * stays the caller's and must outlive the device. */
int virtio_fs_new(struct virtio_fs **out, const char *tag, struct fuse_server *server,
                  struct vmp_error *err);
void virtio_fs_free(struct virtio_fs *fs);
const struct virtio_device_ops *virtio_fs_ops(void);

/* For a snapshot: 0 if the device can be captured (the guest has no FUSE
 * session: a session's nodes and open files are host state a snapshot
 * cannot hold), else -EBUSY with a message. */
int virtio_fs_check_capture(struct virtio_fs *fs, struct vmp_error *err);

#endif
