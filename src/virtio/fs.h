/* virtio-fs (device id 26, virtio 1.2 section 5.11): the guest's FUSE
 * requests, carried over virtqueues, answered in this process by a
 * backend (the VMM wires in the FUSE server). One high-priority queue
 * (FORGET, INTERRUPT) and one request queue; requests are served
 * synchronously on the vCPU thread that notified, the backend getting
 * the guest's buffers themselves, so data can move straight between
 * host files (or host callbacks) and guest memory. */
#ifndef VMP_VIRTIO_FS_H
#define VMP_VIRTIO_FS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/error.h"
#include "virtio/mmio.h"

struct virtio_fs;

/* What answers the requests; ctx is the backend's own. Called on the
 * vCPU thread that notified, with the transport locked, one call at a
 * time. */
struct virtio_fs_backend {
	/* Serves one request: in[0..nin) are the chain's device-readable
	 * buffers (the request), out[0..nout) its device-writable ones (room
	 * for the reply), all pointing into guest memory, whose contents the
	 * guest controls. Returns the bytes written into out[]; 0 returns
	 * the chain unanswered (requests that take no reply). */
	uint32_t (*request)(void *ctx, const struct iovec *in, unsigned nin,
	                    const struct iovec *out, unsigned nout);
	/* The guest reset the device: forget the session. */
	void (*reset)(void *ctx);
	/* Whether the backend holds a session (state a snapshot cannot
	 * hold). */
	bool (*session_active)(void *ctx);
};

/* A device with mount tag tag (at most 36 bytes) served by be with ctx,
 * both of which stay the caller's and must outlive the device. be NULL:
 * no backend, every request is returned unanswered. */
int virtio_fs_new(struct virtio_fs **out, const char *tag, const struct virtio_fs_backend *be,
                  void *ctx, struct vmp_error *err);
void virtio_fs_free(struct virtio_fs *fs);
const struct virtio_device_ops *virtio_fs_ops(void);

/* For a snapshot: 0 if the device can be captured (the guest has no FUSE
 * session: a session's nodes and open files are host state a snapshot
 * cannot hold), else -EBUSY with a message. */
int virtio_fs_check_capture(struct virtio_fs *fs, struct vmp_error *err);

#endif
