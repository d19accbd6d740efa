#include "vmm/fuse_backend.h"

#include "fuse/server.h"

static uint32_t request(void *ctx, const struct iovec *in, unsigned nin, const struct iovec *out,
                        unsigned nout)
{
	return fuse_server_handle(ctx, in, nin, out, nout);
}

static void reset(void *ctx)
{
	fuse_server_reset(ctx);
}

static bool session_active(void *ctx)
{
	return fuse_server_session_active(ctx);
}

static const struct virtio_fs_backend backend = {
    .request = request,
    .reset = reset,
    .session_active = session_active,
};

const struct virtio_fs_backend *vm_fuse_backend(void)
{
	return &backend;
}
