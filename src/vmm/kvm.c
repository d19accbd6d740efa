/* The KVM objects of a VM: /dev/kvm, the VM with its irqchip and PIT,
 * guest memory registered with it, and the vCPUs with their CPUID. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snapshot/snapshot.h"
#include "vmm/internal.h"
#include "x86/cpu.h"
#include "x86/cpuid.h"
#include "x86/kvm_state.h"
#include "x86/layout.h"

#define KVM_API_VERSION_EXPECTED 12
#define TSS_ADDR                 0xfffbd000ul

int vm_kvm_open(struct vm *vm, struct vmp_error *err)
{
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return vmp_fail_errno(err, -errno, "cannot open /dev/kvm");
	int v = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION_EXPECTED)
		return vmp_fail(err, -ENOTSUP, "KVM API version %d, expected %d", v,
		                KVM_API_VERSION_EXPECTED);
	static const struct {
		int cap;
		const char *name;
	} caps[] = {
	    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
	    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
	    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
	    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
	};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0)
			return vmp_fail(err, -ENOTSUP, "KVM lacks %s", caps[i].name);
	/* KVM_CAP_MAX_VCPUS is the limit; without it, KVM_CAP_NR_VCPUS. */
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max <= 0)
		max = 4; /* what KVM_CREATE_VCPU allows without either capability */
	if (vm->nvcpus > (unsigned)max)
		return vmp_fail(err, -ENOTSUP, "%u vCPUs asked for; this host's KVM allows %d",
		                vm->nvcpus, max);
	return 0;
}

int vm_kvm_create(struct vm *vm, struct vmp_error *err)
{
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return vmp_fail_errno(err, -errno, "KVM_CREATE_VM");
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, TSS_ADDR) < 0)
		return vmp_fail_errno(err, -errno, "KVM_SET_TSS_ADDR");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return vmp_fail_errno(err, -errno, "KVM_CREATE_IRQCHIP");
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return vmp_fail_errno(err, -errno, "KVM_CREATE_PIT2");
	return 0;
}

static int register_memory(struct vm *vm, struct vmp_error *err)
{
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		struct kvm_userspace_memory_region r = {
		    .slot = i,
		    .guest_phys_addr = vm->mem.region[i].gpa,
		    .memory_size = vm->mem.region[i].size,
		    .userspace_addr = (uint64_t)(uintptr_t)vm->mem.region[i].host,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return vmp_fail_errno(err, -errno, "KVM_SET_USER_MEMORY_REGION");
	}
	return 0;
}

/* Anonymous memory; for a VM that will be captured, a memfd shared with
 * the snapshot, so taking the snapshot copies no RAM. */
int vm_memory_setup(struct vm *vm, struct vmp_error *err)
{
	uint64_t size = (uint64_t)vm->cfg.memory_mib << 20;
	int rc;
	if (vm->capture) {
		vm->mem_fd = memfd_create("vmproc-snapshot", MFD_CLOEXEC);
		if (vm->mem_fd < 0)
			return vmp_fail_errno(err, -errno, "memfd_create");
		if (ftruncate(vm->mem_fd, (off_t)size) < 0)
			return vmp_fail_errno(err, -errno, "cannot size the guest memory file");
		rc = guest_mem_init_fd(&vm->mem, size, vm->mem_fd, 0, true, err);
	} else if (vm->restore) {
		rc = guest_mem_init_fd(&vm->mem, size, vm->restore->mem_fd, vm->restore->mem_off,
		                       false, err);
	} else {
		rc = guest_mem_init(&vm->mem, size, err);
	}
	return rc ? rc : register_memory(vm, err);
}

/* vCPU 0 starts at the kernel's 64-bit entry; the others stay in their
 * reset state (KVM keeps them waiting for INIT and SIPI) until the guest
 * kernel starts them through the in-kernel local APIC. */
static int create_vcpu(struct vm *vm, struct vm_vcpu *c, const struct kvm_cpuid2 *supported,
                       uint64_t entry, struct vmp_error *err)
{
	c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)c->id);
	if (c->fd < 0)
		return vmp_fail_errno(err, -errno, "KVM_CREATE_VCPU %u", c->id);
	c->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED) {
		c->run = NULL;
		return vmp_fail_errno(err, -errno, "mmap of kvm_run");
	}
	size_t size = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *cpuid = malloc(size);
	if (!cpuid)
		return vmp_fail(err, -ENOMEM, "out of memory for CPUID");
	memcpy(cpuid, supported, size);
	cpuid_filter(cpuid, c->id, vm->nvcpus, vm->emulated_kernel);
	int rc = ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0 ? -errno : 0;
	free(cpuid);
	if (rc)
		return vmp_fail_errno(err, rc, "KVM_SET_CPUID2");
	if (vm->restore) {
		rc = x86_vcpu_restore(c->fd, &vm->restore->vcpu[c->id], err);
		if (rc)
			vmp_error_context(err, "vCPU %u", c->id);
		return rc;
	}
	if (c->id == 0)
		return x86_setup_boot_vcpu(c->fd, entry, LAYOUT_ZERO_PAGE, err);
	return x86_setup_ap_vcpu(c->fd, err);
}

int vm_vcpus_create(struct vm *vm, uint64_t entry, struct vmp_error *err)
{
	int sz = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (int)sizeof(struct kvm_run))
		return vmp_fail(err, -EIO, "KVM_GET_VCPU_MMAP_SIZE returned %d", sz);
	vm->run_size = (size_t)sz;
	struct kvm_cpuid2 *supported = NULL;
	int rc = cpuid_get_supported(vm->kvm_fd, &supported, err);
	for (unsigned i = 0; !rc && i < vm->nvcpus; i++)
		rc = create_vcpu(vm, &vm->vcpu[i], supported, entry, err);
	free(supported);
	return rc;
}

void vm_kvm_release(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vm_vcpu *c = &vm->vcpu[i];
		if (c->profile_timer_armed) {
			timer_delete(c->profile_timer);
			c->profile_timer_armed = false;
		}
		if (c->run)
			munmap(c->run, vm->run_size);
		c->run = NULL;
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
	}
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
	guest_mem_release(&vm->mem);
	if (vm->mem_fd >= 0)
		close(vm->mem_fd);
	vm->mem_fd = -1;
}
