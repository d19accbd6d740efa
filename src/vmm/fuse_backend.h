/* The FUSE server (fuse/server.h) as the virtio-fs device's backend: the
 * one place that knows both. */
#ifndef VMP_VMM_FUSE_BACKEND_H
#define VMP_VMM_FUSE_BACKEND_H

#include "virtio/fs.h"

/* The backend table whose ctx is a struct fuse_server. */
const struct virtio_fs_backend *vm_fuse_backend(void);

#endif
