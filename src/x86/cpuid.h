/* The guest's CPUID: what KVM supports, minus what the guest kernel must
 * not use on this host. On hosts whose KVM emulates guest-kernel code
 * (no VMX/SVM) the emulator cannot execute XSAVE/XRSTOR, POPCNT,
 * CLAC/STAC and friends, so those features are hidden; on
 * hardware-virtualisation hosts the guest keeps them. See
 * docs/platform.md, "What the emulator cannot execute". */
#ifndef VMP_X86_CPUID_H
#define VMP_X86_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "util/error.h"

enum cpu_mode {
	CPU_MODE_AUTO,     /* decide from the host */
	CPU_MODE_HARDWARE, /* guest kernel runs natively: keep features */
	CPU_MODE_EMULATED, /* guest kernel is emulated: mask features */
};

/* True when the host CPU advertises neither VMX nor SVM (read from
 * /proc/cpuinfo), i.e. KVM runs guest kernels through its emulator. */
bool cpuid_host_emulates_kernel(void);

/* The GLIBC_TUNABLES value that keeps glibc's string functions off AVX,
 * for guest programs on such hosts (see emulated_cmdline in vm.c). */
#define CPUID_GLIBC_TUNABLES                                                                       \
	"glibc.cpu.hwcaps=-AVX,-AVX2,-AVX512F,-AVX512BW,-AVX512CD,-AVX512DQ,-AVX512VL,"            \
	"-AVX_Fast_Unaligned_Load"

/* Fetches KVM_GET_SUPPORTED_CPUID into a new allocation (free()). */
int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out, struct vmp_error *err);

/* Edits entries in place for vCPU vcpu_id of ncpus. Pure. */
void cpuid_filter(struct kvm_cpuid2 *c, unsigned vcpu_id, unsigned ncpus, bool emulated);

#endif
