/* VM lifecycle: create the KVM VM, load the guest, start the vCPU thread,
 * report how it ended, tear everything down. */
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "snapshot/snapshot.h"
#include "vmproc_abi.h"
#include "x86/boot_params.h"
#include "x86/cpu.h"
#include "x86/cpuid.h"
#include "x86/elf_kernel.h"
#include "x86/kvm_state.h"
#include "x86/layout.h"
#include "x86/mptable.h"

#define KVM_API_VERSION_EXPECTED 12
#define TSS_ADDR                 0xfffbd000ul
#define PAGE_SIZE_4K             4096ull

/* Kernel command line words every vmproc guest gets. Why each one:
 * console=hvc0     our virtio-console; no legacy UART exits
 * quiet            every printed byte costs emulated guest-kernel time
 * reboot=k         reboot/panic end in a port 0x64 write the VMM sees
 * panic=-1         reboot at once on panic instead of hanging
 * mitigations=off  no page-table isolation or retpolines: a guest VM is
 *                  the isolation boundary, and PTI doubles syscall cost
 *          deterministic addresses (symbols in error messages)
 * tsc=reliable     no clocksource watchdog work
 * no_timer_check   no busy-wait verifying the I/O APIC timer route */
static const char base_cmdline[] =
    "console=hvc0 quiet reboot=k panic=-1 mitigations=off tsc=reliable no_timer_check";
/* On hosts whose KVM emulates guest-kernel code, the guest kernel must
 * not use what the emulator cannot execute (XSAVE/XRSTOR, POPCNT,
 * CLAC/STAC of SMAP, RDPID...) nor rep movsb/stosb (ERMS, FSRM: emulated
 * byte by byte). rodata=off skips write-protecting the kernel (about 13 s
 * of emulated page-table work, measured with initcall_debug) and
 * retain_initrd skips poisoning the freed initramfs (about 1.7 s);
 * noreplace-smp keeps the lock prefixes a one-CPU kernel would patch
 * away one text_poke at a time (text_poke, switch_mm and TLB flushes were
 * about 4% of the boot profile): inside
 * a VM the hardware boundary is what isolates the guest. Masking KVM's
 * CPUID is not enough there: PVM executes
 * the guest's CPUID natively, so the guest sees the host's bits (measured;
 * docs/platform.md, "CPUID runs natively"). The kernel's own
 * clearcpuid= (X86_FEATURE_* numbers of Linux 6.1) hides them. Not
 * "noxsave": 6.1 does not register it, so it would reach init as argv.
 * Native CPUID also means guest user space sees the host's AVX and XCR0,
 * while the guest kernel, without XSAVE, saves only SSE state on a
 * context switch: processes corrupt each other's YMM registers (seen: 3 of
 * 8 busybox pipelines segfaulted; none with AVX off). GLIBC_TUNABLES
 * reaches init's environment and init hands it to the program, keeping
 * glibc's string functions off AVX. Programs that probe CPUID themselves
 * remain exposed: a PVM limitation the guest cannot fix. */
static const char emulated_cmdline[] =
    " clearcpuid=145,151,154,156,158,288,293,295,297,298,304,306,308,534,580"
    " rodata=off retain_initrd noreplace-smp"
    " GLIBC_TUNABLES=" CPUID_GLIBC_TUNABLES;
static const char kernel_log_cmdline[] =
    "console=hvc0 reboot=k panic=-1 mitigations=off tsc=reliable no_timer_check "
    "earlyprintk=serial,ttyS0,115200 ignore_loglevel";

void vm_fail(struct vmproc_vm *vm, vmproc_failure f, int code, const char *fmt, ...)
{
	/* Several vCPU threads may fail at once: the first one wins. */
	pthread_mutex_lock(&vm->lock);
	if (vm->failure == VMPROC_FAILURE_NONE && !vm->err.code) {
		vm->failure = f;
		vm->err.code = code;
		va_list ap;
		va_start(ap, fmt);
		// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
		vsnprintf(vm->err.msg, sizeof(vm->err.msg), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&vm->lock);
}

void vm_symbolize(const struct vmproc_vm *vm, uint64_t addr, char *buf, size_t len)
{
	char name[128];
	uint64_t off;
	if (vm->kernel_file && elf_kernel_symbolize(vm->kernel_file, vm->kernel_size, addr, name,
	                                            sizeof(name), &off) == 0)
		snprintf(buf, len, "0x%llx (%s+0x%llx)", (unsigned long long)addr, name,
		         (unsigned long long)off);
	else
		snprintf(buf, len, "0x%llx", (unsigned long long)addr);
}

static void console_output(const void *data, size_t len, void *userdata)
{
	struct vmproc_vm *vm = userdata;
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

int vmproc_vm_new(vmproc_vm **out, const vmproc_config *cfg)
{
	if (!out || !cfg)
		return -EINVAL;
	struct vmproc_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->kvm_fd = vm->vm_fd = vm->mem_fd = -1;
	vm->ended_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int rc = vm->ended_fd < 0 ? -errno : 0;
	if (!rc)
		rc = config_copy(&vm->cfg, cfg);
	if (!rc) {
		vm->nvcpus = cfg->cpus ? cfg->cpus : 1;
		vm->vcpu = calloc(vm->nvcpus, sizeof(*vm->vcpu));
		if (!vm->vcpu)
			rc = -ENOMEM;
		for (unsigned i = 0; !rc && i < vm->nvcpus; i++)
			vm->vcpu[i] = (struct vm_vcpu){.vm = vm, .id = i, .fd = -1};
	}
	if (!rc) {
		vm->kernel_path =
		    cfg->kernel_path ? strdup(cfg->kernel_path) : config_default_kernel();
		vm->initrd_path =
		    cfg->initrd_path ? strdup(cfg->initrd_path) : config_default_initrd();
		if (!cfg->system_path)
			vm->system_path = config_default_system();
		else if (*cfg->system_path)
			vm->system_path = strdup(cfg->system_path);
		if (!vm->kernel_path || !vm->initrd_path ||
		    (!vm->system_path && (!cfg->system_path || *cfg->system_path)))
			rc = -ENOMEM;
	}
	if (!rc) {
		rc = -pthread_mutex_init(&vm->lock, NULL);
		if (!rc && (rc = -pthread_mutex_init(&vm->console_lock, NULL)))
			pthread_mutex_destroy(&vm->lock);
		if (!rc && (rc = -pthread_cond_init(&vm->ended_cond, NULL))) {
			pthread_mutex_destroy(&vm->console_lock);
			pthread_mutex_destroy(&vm->lock);
		}
	}
	if (rc) {
		if (vm->ended_fd >= 0)
			close(vm->ended_fd);
		free(vm->vcpu);
		config_release(&vm->cfg);
		free(vm->kernel_path);
		free(vm->initrd_path);
		free(vm->system_path);
		free(vm);
		return rc;
	}
	*out = vm;
	return 0;
}

/* -errno, never 0: a failed call that left errno at 0 still fails. */
static int neg_errno(void)
{
	int e = errno;
	return e > 0 ? -e : -EIO;
}

static int map_file(const char *path, const char *what, const uint8_t **data, size_t *size,
                    struct vmp_error *err)
{
	*data = NULL;
	*size = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vmp_fail_errno(err, neg_errno(), "cannot open %s %s", what, path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = neg_errno();
		close(fd);
		return vmp_fail_errno(err, e, "cannot stat %s %s", what, path);
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		return vmp_fail(err, -ENOEXEC, "%s %s is empty or not a regular file", what, path);
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = neg_errno();
	close(fd);
	if (p == MAP_FAILED)
		return vmp_fail_errno(err, e, "cannot map %s %s", what, path);
	*data = p;
	*size = (size_t)st.st_size;
	return 0;
}

static int open_kvm(struct vmproc_vm *vm, struct vmp_error *err)
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

static int create_vm(struct vmproc_vm *vm, struct vmp_error *err)
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

static int register_memory(struct vmproc_vm *vm, struct vmp_error *err)
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
static int setup_memory(struct vmproc_vm *vm, struct vmp_error *err)
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

/* The initramfs goes at the top of low RAM, as bootloaders put it. */
static int load_initrd(struct vmproc_vm *vm, uint64_t kernel_end, uint64_t *gpa, uint32_t *size,
                       struct vmp_error *err)
{
	const uint8_t *data;
	size_t len;
	int rc = map_file(vm->initrd_path, "initramfs", &data, &len, err);
	if (rc)
		return rc;
	uint64_t top = guest_mem_low_end(&vm->mem);
	if (len > UINT32_MAX || len > top || ((top - len) & ~(PAGE_SIZE_4K - 1)) < kernel_end) {
		munmap((void *)data, len);
		return vmp_fail(err, -ENOMEM,
		                "initramfs %s (%zu KiB) does not fit in %u MiB of guest memory "
		                "beside the kernel",
		                vm->initrd_path, len >> 10, vm->cfg.memory_mib);
	}
	uint64_t at = (top - len) & ~(PAGE_SIZE_4K - 1);
	/* map_file succeeded, so data is set (the analyzer does not see
	 * that vmp_fail's value is always negative). */
	// NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker)
	memcpy(guest_mem_ptr(&vm->mem, at, len), data, len);
	munmap((void *)data, len);
	*gpa = at;
	*size = (uint32_t)len;
	return 0;
}

static int build_cmdline(struct vmproc_vm *vm, char *buf, size_t len, struct vmp_error *err)
{
	size_t n = (size_t)snprintf(buf, len, "%s%s",
	                            vm->cfg.kernel_log ? kernel_log_cmdline : base_cmdline,
	                            vm->emulated_kernel ? emulated_cmdline : "");
	for (unsigned i = 0; i < vm->ndev && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, " virtio_mmio.device=4K@0x%llx:%u",
		                      (unsigned long long)vm->dev[i].transport.base,
		                      vm->dev[i].transport.irq);
	if (vm->channel && n < len)
		n += (size_t)snprintf(buf + n, len - n, " " VMPROC_ABI_CHANNEL_WORD);
	if (vm->cfg.cmdline_extra && n < len)
		n += (size_t)snprintf(buf + n, len - n, " %s", vm->cfg.cmdline_extra);
	if (n >= len)
		return vmp_fail(err, -E2BIG, "kernel command line is longer than %zu bytes",
		                len - 1);
	return 0;
}

static int write_boot_data(struct vmproc_vm *vm, uint64_t initrd_gpa, uint32_t initrd_size,
                           struct vmp_error *err)
{
	char *cmdline = guest_mem_ptr(&vm->mem, LAYOUT_CMDLINE, LAYOUT_CMDLINE_MAX);
	struct boot_params *bp = guest_mem_ptr(&vm->mem, LAYOUT_ZERO_PAGE, sizeof(*bp));
	if (!cmdline || !bp)
		return vmp_fail(err, -ENOMEM, "guest memory too small for boot data");
	int rc = build_cmdline(vm, cmdline, LAYOUT_CMDLINE_MAX, err);
	if (rc)
		return rc;
	/* A fresh seed per VM: clones of one guest must never share
	 * randomness. */
	uint8_t seed[32];
	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		return vmp_fail_errno(err, -errno, "getrandom");
	void *sd = guest_mem_ptr(&vm->mem, LAYOUT_SETUP_DATA, LAYOUT_SETUP_DATA_MAX);
	if (!sd)
		return vmp_fail(err, -ENOMEM, "guest memory too small for boot data");
	rc = boot_params_rng_seed(sd, LAYOUT_SETUP_DATA_MAX, seed, sizeof(seed), err);
	explicit_bzero(seed, sizeof(seed));
	if (rc)
		return rc;
	if ((rc = mptable_write(&vm->mem, LAYOUT_MPTABLE, LAYOUT_MPC_TABLE, LAYOUT_MPC_TABLE_MAX,
	                        vm->nvcpus, err)))
		return rc;
	struct boot_params_input in = {
	    .mem = &vm->mem,
	    .cmdline_gpa = LAYOUT_CMDLINE,
	    .cmdline_size = (uint32_t)strlen(cmdline) + 1,
	    .initrd_gpa = initrd_gpa,
	    .initrd_size = initrd_size,
	    .setup_data_gpa = LAYOUT_SETUP_DATA,
	};
	if ((rc = boot_params_build(bp, &in, err)))
		return rc;
	return x86_write_boot_tables(&vm->mem, err);
}

/* vCPU 0 starts at the kernel's 64-bit entry; the others stay in their
 * reset state (KVM keeps them waiting for INIT and SIPI) until the guest
 * kernel starts them through the in-kernel local APIC. */
static int create_vcpu(struct vmproc_vm *vm, struct vm_vcpu *c, const struct kvm_cpuid2 *supported,
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
		return rc ? vmp_fail(err, rc, "restoring vCPU %u: %s", c->id, err->msg) : 0;
	}
	if (c->id == 0)
		return x86_setup_boot_vcpu(c->fd, entry, LAYOUT_ZERO_PAGE, err);
	return x86_setup_ap_vcpu(c->fd, err);
}

static int create_vcpus(struct vmproc_vm *vm, uint64_t entry, struct vmp_error *err)
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

static int add_device(struct vmproc_vm *vm, const struct virtio_device_ops *ops, void *dev,
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

static int add_disk(struct vmproc_vm *vm, const char *path, bool read_only, struct vmp_error *err)
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
static int setup_devices(struct vmproc_vm *vm, struct vmp_error *err)
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
			rc = virtio_fs_new(&vm->fs, VMPROC_ABI_FS_TAG, vm->fs_server, err);
		if (!rc)
			rc = add_device(vm, virtio_fs_ops(), vm->fs, err);
	}
	if (!rc && vm->system_path)
		rc = add_disk(vm, vm->system_path, true, err);
	for (unsigned i = 0; !rc && i < vm->cfg.ndisks; i++)
		rc = add_disk(vm, vm->cfg.disks[i].path, vm->cfg.disks[i].read_only, err);
	return rc;
}

/* A Linux kernel ignores the processors past its NR_CPUS, which is the
 * initial value of nr_cpu_ids (absent from one-CPU kernels and from those
 * built with a fixed CPU count): asking for more would leave vCPUs that
 * never run. */
static int check_kernel_cpus(const struct vmproc_vm *vm, struct vmp_error *err)
{
	uint32_t nr_cpus;
	if (vm->nvcpus == 1 || elf_kernel_read_object(vm->kernel_file, vm->kernel_size,
	                                              "nr_cpu_ids", &nr_cpus, sizeof(nr_cpus)))
		return 0;
	if (vm->nvcpus > nr_cpus)
		return vmp_fail(err, -ENOTSUP,
		                "%u vCPUs asked for, but the guest kernel %s supports at most %u "
		                "(its NR_CPUS)",
		                vm->nvcpus, vm->kernel_path, nr_cpus);
	return 0;
}

/* A snapshot fits this VM if it has the same shape; what it was made
 * from (kernel, initramfs, ...) is its key, which the caller checks. */
static int check_restore_shape(const struct vmproc_vm *vm, struct vmp_error *err)
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
static int restore_state(struct vmproc_vm *vm, struct vmp_error *err)
{
	struct snapshot *s = vm->restore;
	int rc = create_vcpus(vm, 0, err);
	if (!rc && (rc = x86_vm_restore(vm->vm_fd, &s->vm, err)))
		vmp_fail(err, rc, "restoring the interrupt controllers and clock: %s", err->msg);
	for (unsigned i = 0; !rc && i < vm->ndev; i++)
		if ((rc = virtio_mmio_restore(&vm->dev[i].transport, &s->dev[i], err)))
			vmp_fail(err, rc, "restoring device %u: %s", i, err->msg);
	if (!rc && vm->channel && (rc = virtio_ports_restore(vm->channel, &s->channel, err)))
		vmp_fail(err, rc, "restoring the command channel: %s", err->msg);
	if (!rc)
		atomic_store(&vm->init_ready, true); /* TP_INIT_READY: at the first run */
	return rc;
}

/* After the steps every VM takes: a snapshot's devices and state instead
 * of a kernel, initramfs and boot data. */
static int setup_restored(struct vmproc_vm *vm, struct vmp_error *err)
{
	int rc;
	if ((rc = setup_devices(vm, err)))
		return rc;
	if ((rc = check_restore_shape(vm, err)))
		return rc;
	if ((rc = restore_state(vm, err)))
		return rc;
	trace_mark(&vm->trace, TP_VCPU);
	trace_mark(&vm->trace, TP_DEVICES);
	return 0;
}

static int setup(struct vmproc_vm *vm, struct vmp_error *err)
{
	struct vm_trace *t = &vm->trace;
	int rc;
	if ((rc = kick_install_handler()))
		return vmp_fail_errno(err, rc, "cannot install the vCPU kick signal handler");
	vm->emulated_kernel = cpuid_host_emulates_kernel();
	if ((rc = open_kvm(vm, err)))
		return rc;
	trace_mark(t, TP_KVM_OPEN);
	if ((rc = create_vm(vm, err)))
		return rc;
	trace_mark(t, TP_VM_CREATED);
	if ((rc = setup_memory(vm, err)))
		return rc;
	trace_mark(t, TP_MEMORY);
	/* A restored VM maps the kernel for symbols in error messages only. */
	if ((rc = map_file(vm->kernel_path, "kernel", &vm->kernel_file, &vm->kernel_size, err)))
		return rc;
	if (vm->restore)
		return setup_restored(vm, err);
	if ((rc = check_kernel_cpus(vm, err)))
		return rc;
	struct elf_kernel k;
	if ((rc = elf_kernel_load(&vm->mem, vm->kernel_file, vm->kernel_size, &k, err)))
		return rc;
	trace_mark(t, TP_KERNEL);
	uint64_t initrd_gpa = 0;
	uint32_t initrd_size = 0;
	if ((rc = load_initrd(vm, k.load_hi, &initrd_gpa, &initrd_size, err)))
		return rc;
	trace_mark(t, TP_INITRD);
	/* Devices first: their addresses go on the command line. */
	if ((rc = setup_devices(vm, err)))
		return rc;
	if ((rc = write_boot_data(vm, initrd_gpa, initrd_size, err)))
		return rc;
	trace_mark(t, TP_BOOT_DATA);
	if ((rc = create_vcpus(vm, k.entry, err)))
		return rc;
	trace_mark(t, TP_VCPU);
	trace_mark(t, TP_DEVICES);
	return 0;
}

static void teardown(struct vmproc_vm *vm)
{
	if (vm->timer_armed) {
		timer_delete(vm->timer);
		vm->timer_armed = false;
	}
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
	if (vm->kernel_file)
		munmap((void *)vm->kernel_file, vm->kernel_size);
	vm->kernel_file = NULL;
}

static void mark_ended(struct vmproc_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->state = VM_ENDED;
	pthread_cond_broadcast(&vm->ended_cond);
	pthread_mutex_unlock(&vm->lock);
	uint64_t one = 1;
	ssize_t n = write(vm->ended_fd, &one, sizeof(one));
	(void)n;
}

void vm_set_capture(struct vmproc_vm *vm)
{
	vm->capture = true;
}

void vm_set_restore(struct vmproc_vm *vm, struct snapshot *s)
{
	snapshot_ref(s);
	snapshot_unref(vm->restore);
	vm->restore = s;
}

struct snapshot *vm_take_snapshot(struct vmproc_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	struct snapshot *s = vm->state == VM_ENDED ? vm->captured : NULL;
	if (s)
		vm->captured = NULL;
	pthread_mutex_unlock(&vm->lock);
	return s;
}

void vm_capture(struct vmproc_vm *vm)
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

void vm_set_channel(struct vmproc_vm *vm, struct virtio_ports *channel)
{
	vm->channel = channel;
}

void vm_set_fs(struct vmproc_vm *vm, struct fuse_server *server)
{
	vm->fs_server = server;
}

void vm_guest_error(struct vmproc_vm *vm, const char *fmt, ...)
{
	char msg[VMP_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vm_fail(vm, VMPROC_FAILURE_GUEST_ERROR, -EPROTO, "%s", msg);
	int expected = 0;
	atomic_compare_exchange_strong(&vm->stop_request, &expected,
	                               (int)VMPROC_FAILURE_GUEST_ERROR);
}

/* Library threads take no process signals: those are the caller's. The
 * vCPU thread unblocks only its kick signal, inside KVM_RUN. */
static int create_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int vmproc_vm_start(vmproc_vm *vm)
{
	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	enum vm_state st = vm->state;
	if (st == VM_NEW)
		vm->state = VM_RUNNING;
	pthread_mutex_unlock(&vm->lock);
	if (st != VM_NEW)
		return vmp_fail(&vm->err, -EALREADY, "VM was already started");

	trace_mark(&vm->trace, TP_START);
	if (vm->cfg.timeout_ms)
		vm->deadline_ns = vm->trace.ns[TP_START] + vm->cfg.timeout_ms * 1000000ull;
	struct vmp_error err = {0};
	int rc = setup(vm, &err);
	if (!rc) {
		rc = -create_thread(&vm->vcpu[0].thread, vcpu_thread_main, vm);
		if (rc)
			vmp_fail_errno(&err, rc, "cannot create the vCPU thread");
		else
			vm->vcpu[0].thread_started = true;
	}
	if (rc) {
		vm_fail(vm, VMPROC_FAILURE_SETUP, rc, "%s", err.msg);
		teardown(vm);
		mark_ended(vm);
	}
	return rc;
}

void vm_thread_finished(struct vmproc_vm *vm)
{
	/* Release the VM's memory and fds as soon as it ends, not when the
	 * handle is freed: a finished VM costs its owner nothing but the
	 * handle. */
	teardown(vm);
	trace_mark(&vm->trace, TP_END);
	mark_ended(vm);
}

static int result(const struct vmproc_vm *vm, int *exit_status)
{
	if (vm->failure != VMPROC_FAILURE_NONE)
		return vm->err.code ? vm->err.code : -EIO;
	if (exit_status)
		*exit_status = vm->exit_status;
	return 0;
}

int vmproc_vm_wait(vmproc_vm *vm, int *exit_status)
{
	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_NEW) {
		pthread_mutex_unlock(&vm->lock);
		return -ECHILD;
	}
	while (vm->state != VM_ENDED)
		pthread_cond_wait(&vm->ended_cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	return result(vm, exit_status);
}

int vmproc_vm_try_wait(vmproc_vm *vm, int *exit_status)
{
	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	enum vm_state st = vm->state;
	pthread_mutex_unlock(&vm->lock);
	if (st == VM_NEW)
		return -ECHILD;
	if (st != VM_ENDED)
		return -EAGAIN;
	return result(vm, exit_status);
}

int vmproc_vm_fd(const vmproc_vm *vm)
{
	return vm ? vm->ended_fd : -EINVAL;
}

static void kick_all(struct vmproc_vm *vm, const struct vm_vcpu *except)
{
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		pid_t tid = atomic_load(&vm->vcpu[i].tid);
		if (tid > 0 && &vm->vcpu[i] != except)
			syscall(SYS_tgkill, getpid(), tid, kick_signal());
	}
}

/* The flag is set before any tid is read, and each vCPU thread publishes
 * its tid before it first looks at the flag: either the thread sees the
 * flag or it gets the kick (which, blocked outside KVM_RUN, then makes
 * its next KVM_RUN return at once). */
void vm_end(struct vmproc_vm *vm, const struct vm_vcpu *except)
{
	atomic_store(&vm->ending, true);
	kick_all(vm, except);
}

static void request_stop(struct vmproc_vm *vm, vmproc_failure why)
{
	int expected = 0;
	atomic_compare_exchange_strong(&vm->stop_request, &expected, (int)why);
	kick_all(vm, NULL);
}

int vmproc_vm_stop(vmproc_vm *vm)
{
	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_RUNNING)
		request_stop(vm, VMPROC_FAILURE_STOPPED);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

vmproc_failure vmproc_vm_failure(const vmproc_vm *vm)
{
	return vm ? vm->failure : VMPROC_FAILURE_NONE;
}

const char *vmproc_vm_error(const vmproc_vm *vm)
{
	return vm ? vm->err.msg : "";
}

int vmproc_vm_format_trace(const vmproc_vm *vm, char *buf, size_t len)
{
	if (!vm)
		return -EINVAL;
	int n = trace_format(&vm->trace, buf, len);
	if (vm->profile.report && n >= 0) {
		size_t used = (size_t)n < len ? (size_t)n : len;
		int m = snprintf(len > used ? buf + used : NULL, len > used ? len - used : 0, "%s",
		                 vm->profile.report);
		if (m > 0)
			n += m;
	}
	return n;
}

double vmproc_vm_ms_to_ready(const vmproc_vm *vm)
{
	return vm ? trace_ms(&vm->trace, TP_INIT_READY) : -1;
}

double vmproc_vm_ms_to_exit(const vmproc_vm *vm)
{
	return vm ? trace_ms(&vm->trace, TP_INIT_EXIT) : -1;
}

void vmproc_vm_free(vmproc_vm *vm)
{
	if (!vm)
		return;
	if (vm->vcpu[0].thread_started) {
		pthread_mutex_lock(&vm->lock);
		if (vm->state == VM_RUNNING)
			request_stop(vm, VMPROC_FAILURE_STOPPED);
		pthread_mutex_unlock(&vm->lock);
		pthread_join(vm->vcpu[0].thread, NULL);
	}
	close(vm->ended_fd);
	snapshot_unref(vm->captured);
	snapshot_unref(vm->restore);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		profile_release(&vm->vcpu[i].profile);
	free(vm->vcpu);
	profile_release(&vm->profile);
	pthread_cond_destroy(&vm->ended_cond);
	pthread_mutex_destroy(&vm->console_lock);
	pthread_mutex_destroy(&vm->lock);
	config_release(&vm->cfg);
	free(vm->kernel_path);
	free(vm->initrd_path);
	free(vm->system_path);
	free(vm);
}

const char *vmproc_failure_name(vmproc_failure f)
{
	switch (f) {
	case VMPROC_FAILURE_NONE: return "none";
	case VMPROC_FAILURE_SETUP: return "setup";
	case VMPROC_FAILURE_GUEST_PANIC: return "guest-panic";
	case VMPROC_FAILURE_GUEST_RESET: return "guest-reset";
	case VMPROC_FAILURE_TRIPLE_FAULT: return "triple-fault";
	case VMPROC_FAILURE_EMULATION: return "emulation-failure";
	case VMPROC_FAILURE_GUEST_ERROR: return "guest-error";
	case VMPROC_FAILURE_TIMEOUT: return "timeout";
	case VMPROC_FAILURE_STOPPED: return "stopped";
	case VMPROC_FAILURE_VMM: return "vmm-error";
	}
	return "unknown";
}

int vmproc_vm_run(const vmproc_config *cfg, int *exit_status, char *errbuf, size_t errbuf_len)
{
	vmproc_vm *vm;
	int rc = vmproc_vm_new(&vm, cfg);
	if (rc) {
		if (errbuf && errbuf_len)
			snprintf(errbuf, errbuf_len, "cannot create VM: error %d", -rc);
		return rc;
	}
	rc = vmproc_vm_start(vm);
	if (!rc)
		rc = vmproc_vm_wait(vm, exit_status);
	if (rc && errbuf && errbuf_len)
		snprintf(errbuf, errbuf_len, "%s", vm->err.msg);
	vmproc_vm_free(vm);
	return rc;
}
