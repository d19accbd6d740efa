/* The VM's virtio devices on their MMIO transports, in guest-ABI order. */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/fuse_backend.h"
#include "vmm/internal.h"
#include "vmproc_abi.h"
#include "x86/layout.h"

static void console_output(const void *data, size_t len, void *userdata)
{
	struct vm *vm = userdata;
	/* Keep the tail: a panic message is looked for there. */
	const uint8_t *p = data;
	pthread_mutex_lock(&vm->console_lock);
	if (len >= VM_CONSOLE_TAIL) {
		memcpy(vm->console_tail, p + len - VM_CONSOLE_TAIL, VM_CONSOLE_TAIL);
		vm->console_tail_len = VM_CONSOLE_TAIL;
	} else {
		size_t keep = vm->console_tail_len + len > VM_CONSOLE_TAIL ? VM_CONSOLE_TAIL - len
		                                                           : vm->console_tail_len;
		memmove(vm->console_tail, vm->console_tail + vm->console_tail_len - keep, keep);
		memcpy(vm->console_tail + keep, p, len);
		vm->console_tail_len = keep + len;
	}
	if (vm->cfg.console_fn)
		vm->cfg.console_fn(data, len, vm->cfg.console_userdata);
	pthread_mutex_unlock(&vm->console_lock);
}

static int add_device(struct vm *vm, const struct virtio_device_ops *ops, void *dev,
                      struct vmp_error *err)
{
	if (vm->ndev >= VM_MAX_DEVICES)
		return vmp_fail(err, -ENOSPC, "too many devices");
	struct vm_device *d = &vm->dev[vm->ndev];
	unsigned irq = VM_FIRST_DEVICE_IRQ + vm->ndev;
	uint64_t base = LAYOUT_VIRTIO_MMIO_BASE + vm->ndev * LAYOUT_VIRTIO_MMIO_SIZE;
	d->irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->irqfd < 0)
		return vmp_fail_errno(err, -errno, "eventfd");
	struct kvm_irqfd irqfd = {.fd = (uint32_t)d->irqfd, .gsi = irq};
	if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		int e = -errno;
		close(d->irqfd);
		return vmp_fail_errno(err, e, "KVM_IRQFD");
	}
	int rc = virtio_mmio_init(&d->transport, base, irq, d->irqfd, ops, dev, &vm->mem);
	if (rc) {
		close(d->irqfd);
		return vmp_fail_errno(err, rc, "virtio-mmio transport");
	}
	vm->ndev++;
	return 0;
}

static int add_disk(struct vm *vm, const char *path, bool read_only, struct vmp_error *err)
{
	struct virtio_blk *b;
	int rc = virtio_blk_new(&b, path, read_only, err);
	if (rc)
		return rc;
	vm->disks[vm->ndisks++] = b;
	return add_device(vm, virtio_blk_ops(b), b, err);
}

/* Device order is guest ABI: virtio0 the console (hvc0), virtio1 the
 * command channel if any (/dev/vport1p*, see vmproc_abi.h) and virtio2
 * its virtio-fs device, then the system image (vda), then the caller's
 * disks (vdb...). */
int vm_devices_setup(struct vm *vm, struct vmp_error *err)
{
	vm->console = virtio_console_new(console_output, vm);
	if (!vm->console)
		return vmp_fail(err, -ENOMEM, "out of memory");
	int rc = add_device(vm, virtio_console_ops(), vm->console, err);
	if (!rc && vm->channel) {
		rc = add_device(vm, virtio_ports_ops(vm->channel), vm->channel, err);
		if (!rc)
			virtio_ports_attach(vm->channel, &vm->dev[vm->ndev - 1].transport);
		if (!rc)
			rc = virtio_fs_new(&vm->fs, VMPROC_ABI_FS_TAG,
			                   vm->fs_server ? vm_fuse_backend() : NULL, vm->fs_server,
			                   err);
		if (!rc)
			rc = add_device(vm, virtio_fs_ops(), vm->fs, err);
	}
	if (!rc && vm->files.system)
		rc = add_disk(vm, vm->files.system, true, err);
	for (unsigned i = 0; !rc && i < vm->cfg.ndisks; i++)
		rc = add_disk(vm, vm->cfg.disks[i].path, vm->cfg.disks[i].read_only, err);
	return rc;
}

void vm_devices_teardown(struct vm *vm)
{
	/* The channel's feeding thread must let go of guest memory first. */
	if (vm->channel)
		virtio_ports_detach(vm->channel);
	for (unsigned i = 0; i < vm->ndev; i++) {
		virtio_mmio_destroy(&vm->dev[i].transport);
		close(vm->dev[i].irqfd);
	}
	vm->ndev = 0;
	virtio_fs_free(vm->fs);
	vm->fs = NULL;
	virtio_console_free(vm->console);
	vm->console = NULL;
	for (unsigned i = 0; i < vm->ndisks; i++)
		virtio_blk_free(vm->disks[i]);
	vm->ndisks = 0;
}
