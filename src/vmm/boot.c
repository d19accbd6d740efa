/* Booting a VM from files: the kernel ELF, the initramfs, the command
 * line and the boot tables in guest memory. Restored VMs skip all of it
 * (restore.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/internal.h"
#include "vmproc_abi.h"
#include "x86/boot_params.h"
#include "x86/cpu.h"
#include "x86/cpuid.h"
#include "x86/elf_kernel.h"
#include "x86/layout.h"
#include "x86/mptable.h"

#define PAGE_SIZE_4K 4096ull

/* -errno, never 0: a failed call that left errno at 0 still fails. */
static int neg_errno(void)
{
	int e = errno;
	return e > 0 ? -e : -EIO;
}

/* Kernel command line words every vmproc guest gets. Why each one
 * (docs/platform.md has the measurements):
 * console=hvc0     our virtio-console; no legacy UART exits
 * quiet            every printed byte costs emulated guest-kernel time
 * reboot=k         reboot/panic end in a port 0x64 write the VMM sees
 * panic=-1         reboot at once on panic instead of hanging
 * mitigations=off  no page-table isolation or retpolines: the VM's
 *                  hardware boundary is what isolates the guest, and PTI
 *                  doubles the cost of a system call
 * tsc=reliable     no clocksource watchdog work
 * no_timer_check   no busy-wait verifying the I/O APIC timer route */
static const char base_cmdline[] =
    "console=hvc0 quiet reboot=k panic=-1 mitigations=off tsc=reliable no_timer_check";
/* On hosts whose KVM emulates guest-kernel code (docs/platform.md), the
 * guest kernel must not use what the emulator cannot execute
 * (XSAVE/XRSTOR, POPCNT, CLAC/STAC of SMAP, RDPID...) nor rep movsb/stosb
 * (ERMS, FSRM: emulated byte by byte). Masking KVM's CPUID is not enough
 * there: PVM executes the guest's CPUID natively, so the guest sees the
 * host's bits (docs/platform.md, "CPUID runs natively"). The kernel's own
 * clearcpuid= (X86_FEATURE_* numbers of Linux 6.1) hides them. Not
 * "noxsave": 6.1 does not register it, so it would reach init as argv.
 * rodata=off skips write-protecting the kernel (about 13 s of emulated
 * page-table work, measured with initcall_debug); retain_initrd skips
 * poisoning the freed initramfs (about 1.7 s); noreplace-smp keeps the
 * lock prefixes a one-CPU kernel would patch away one text_poke at a
 * time (text_poke, switch_mm and TLB flushes were about 4% of the boot
 * profile).
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

int vm_map_file(const char *path, const char *what, const uint8_t **data, size_t *size,
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

/* The initramfs goes at the top of low RAM, as bootloaders put it. */
static int load_initrd(struct vm *vm, uint64_t kernel_end, uint64_t *gpa, uint32_t *size,
                       struct vmp_error *err)
{
	const uint8_t *data;
	size_t len;
	int rc = vm_map_file(vm->files.initrd, "initramfs", &data, &len, err);
	if (rc)
		return rc;
	uint64_t top = guest_mem_low_end(&vm->mem);
	if (len > UINT32_MAX || len > top || ((top - len) & ~(PAGE_SIZE_4K - 1)) < kernel_end) {
		munmap((void *)data, len);
		return vmp_fail(err, -ENOMEM,
		                "initramfs %s (%zu KiB) does not fit in %u MiB of guest memory "
		                "beside the kernel",
		                vm->files.initrd, len >> 10, vm->cfg.memory_mib);
	}
	uint64_t at = (top - len) & ~(PAGE_SIZE_4K - 1);
	/* vm_map_file succeeded, so data is set (the analyzer does not see
	 * that vmp_fail's value is always negative). */
	// NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker)
	memcpy(guest_mem_ptr(&vm->mem, at, len), data, len);
	munmap((void *)data, len);
	*gpa = at;
	*size = (uint32_t)len;
	return 0;
}

static int build_cmdline(struct vm *vm, char *buf, size_t len, struct vmp_error *err)
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

static int write_boot_data(struct vm *vm, uint64_t initrd_gpa, uint32_t initrd_size,
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

/* A Linux kernel ignores the processors past its NR_CPUS, which is the
 * initial value of nr_cpu_ids (absent from one-CPU kernels and from those
 * built with a fixed CPU count): asking for more would leave vCPUs that
 * never run. */
static int check_kernel_cpus(const struct vm *vm, struct vmp_error *err)
{
	uint32_t nr_cpus;
	if (vm->nvcpus == 1 || elf_kernel_read_object(vm->kernel_file, vm->kernel_size,
	                                              "nr_cpu_ids", &nr_cpus, sizeof(nr_cpus)))
		return 0;
	if (vm->nvcpus > nr_cpus)
		return vmp_fail(err, -ENOTSUP,
		                "%u vCPUs asked for, but the guest kernel %s supports at most %u "
		                "(its NR_CPUS)",
		                vm->nvcpus, vm->files.kernel, nr_cpus);
	return 0;
}

/* After the steps every VM takes (KVM, memory, the kernel file mapped):
 * load the kernel and initramfs, create the devices, write the boot
 * data and start vCPU 0 at the kernel's entry. */
int vm_boot_setup(struct vm *vm, struct vmp_error *err)
{
	struct vm_trace *t = &vm->trace;
	int rc;
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
	if ((rc = vm_devices_setup(vm, err)))
		return rc;
	if ((rc = write_boot_data(vm, initrd_gpa, initrd_size, err)))
		return rc;
	trace_mark(t, TP_BOOT_DATA);
	if ((rc = vm_vcpus_create(vm, k.entry, err)))
		return rc;
	trace_mark(t, TP_VCPU);
	trace_mark(t, TP_DEVICES);
	return 0;
}
