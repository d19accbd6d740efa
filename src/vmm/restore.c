/* Snapshots of a running VM: capture at the guest init's ready point,
 * and restore into a new VM instead of booting. */
#include <errno.h>

#include "snapshot/snapshot.h"
#include "vmm/internal.h"
#include "x86/kvm_state.h"

/* A snapshot fits this VM if it has the same shape; what it was made
 * from (kernel, initramfs, ...) is its key, which the caller checks. */
static int check_restore_shape(const struct vm *vm, struct vmp_error *err)
{
	const struct snapshot *s = vm->restore;
	if (s->nvcpus != vm->nvcpus || s->mem_size != (uint64_t)vm->cfg.memory_mib << 20)
		return vmp_fail(err, -EINVAL,
		                "the snapshot is of a VM with %u vCPUs and %llu MiB, not %u and %u",
		                s->nvcpus, (unsigned long long)(s->mem_size >> 20), vm->nvcpus,
		                vm->cfg.memory_mib);
	if (s->ndev != vm->ndev || s->has_channel != (vm->channel != NULL))
		return vmp_fail(err, -EINVAL, "the snapshot is of a VM with %u devices%s, not %u%s",
		                s->ndev, s->has_channel ? " and a command channel" : "", vm->ndev,
		                vm->channel ? " and a command channel" : "");
	return 0;
}

/* Instead of loading and booting: the snapshot's state into the new
 * vCPUs, interrupt controllers and devices. Devices last: a device that
 * tells the guest something at restore raises an interrupt, which
 * restoring the LAPIC would drop. */
static int restore_state(struct vm *vm, struct vmp_error *err)
{
	struct snapshot *s = vm->restore;
	int rc = vm_vcpus_create(vm, 0, err);
	if (!rc && (rc = x86_vm_restore(vm->vm_fd, &s->vm, err)))
		vmp_error_context(err, "interrupt controllers and clock");
	for (unsigned i = 0; !rc && i < vm->ndev; i++)
		if ((rc = virtio_mmio_restore(&vm->dev[i].transport, &s->dev[i], err)))
			vmp_error_context(err, "device %u", i);
	if (!rc && vm->channel && (rc = virtio_ports_restore(vm->channel, &s->channel, err)))
		vmp_error_context(err, "command channel");
	if (!rc)
		atomic_store(&vm->init_ready, true); /* TP_INIT_READY: at the first run */
	return rc;
}

/* After the steps every VM takes: a snapshot's devices and state instead
 * of a kernel, initramfs and boot data. */
int vm_restore_setup(struct vm *vm, struct vmp_error *err)
{
	int rc;
	if ((rc = vm_devices_setup(vm, err)))
		return rc;
	if ((rc = check_restore_shape(vm, err)) == 0)
		rc = restore_state(vm, err);
	if (rc) {
		vmp_error_context(err, "restoring snapshot");
		return rc;
	}
	trace_mark(&vm->trace, TP_VCPU);
	trace_mark(&vm->trace, TP_DEVICES);
	return 0;
}

void vm_set_capture(struct vm *vm)
{
	vm->capture = true;
}

void vm_set_restore(struct vm *vm, struct snapshot *s)
{
	snapshot_ref(s);
	snapshot_unref(vm->restore);
	vm->restore = s;
}

struct snapshot *vm_take_snapshot(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	struct snapshot *s = vm->state == VM_ENDED ? vm->captured : NULL;
	if (s)
		vm->captured = NULL;
	pthread_mutex_unlock(&vm->lock);
	return s;
}

void vm_capture(struct vm *vm)
{
	struct vmp_error err = {0};
	struct snapshot *s = snapshot_new(vm->nvcpus);
	int rc = s ? 0 : vmp_fail(&err, -ENOMEM, "out of memory");
	pthread_mutex_lock(&vm->lock);
	bool failed = vm->failure != VMPROC_FAILURE_NONE;
	pthread_mutex_unlock(&vm->lock);
	if (failed) {
		snapshot_unref(s);
		return;
	}
	if (!rc && vm->ndev > SNAPSHOT_MAX_DEVICES)
		rc = vmp_fail(&err, -E2BIG, "too many devices for a snapshot");
	if (!rc && vm->fs)
		rc = virtio_fs_check_capture(vm->fs, &err);
	if (!rc)
		rc = x86_vm_save(vm->vm_fd, &s->vm, &err);
	for (unsigned i = 0; !rc && i < vm->nvcpus; i++)
		rc = x86_vcpu_save(vm->kvm_fd, vm->vcpu[i].fd, &s->vcpu[i], &err);
	if (!rc) {
		s->ndev = vm->ndev;
		for (unsigned i = 0; i < vm->ndev; i++)
			virtio_mmio_save(&vm->dev[i].transport, &s->dev[i]);
		s->has_channel = vm->channel != NULL;
		if (vm->channel)
			virtio_ports_save(vm->channel, &s->channel);
		s->mem_size = vm->mem.ram_size;
		s->mem_off = 0;
		s->mem_fd = vm->mem_fd; /* the snapshot's now */
		vm->mem_fd = -1;
	}
	if (rc) {
		snapshot_unref(s);
		vm_fail(vm, VMPROC_FAILURE_VMM, rc, "cannot take the snapshot: %s", err.msg);
		return;
	}
	pthread_mutex_lock(&vm->lock);
	vm->captured = s;
	pthread_mutex_unlock(&vm->lock);
}
