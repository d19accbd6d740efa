/* What the host contributes to a VM that the floors above must know:
 * whether its KVM emulates guest-kernel code, and its CPU as KVM offers
 * it to guests (part of a snapshot's key). */
#include "vmm/host.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "snapshot/snapshot.h"
#include "x86/cpuid.h"

bool vm_host_emulates_kernel(void)
{
	return cpuid_host_emulates_kernel();
}

const char *vm_host_guest_env(void)
{
	return cpuid_host_emulates_kernel() ? "GLIBC_TUNABLES=" CPUID_GLIBC_TUNABLES : NULL;
}

/* The host's CPU as KVM offers it to guests: a snapshot taken on
 * another CPU must not be restored here. */
int vm_host_describe(FILE *f, unsigned cfg_cpus, struct vmp_error *err)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return vmp_fail_errno(err, -errno, "cannot open /dev/kvm");
	struct kvm_cpuid2 *c = NULL;
	int rc = cpuid_get_supported(kvm, &c, err);
	close(kvm);
	if (rc)
		return rc;
	/* As vCPU 0 sees it: KVM reports some fields of the host CPU the
	 * calling thread happens to run on (APIC ids), which must not make
	 * the key differ from one process to the next. */
	bool emulated = cpuid_host_emulates_kernel();
	cpuid_filter(c, 0, cfg_cpus, emulated);
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0x8000001e)
			c->entries[i].eax = c->entries[i].ebx = 0; /* extended APIC id, core id */
	fprintf(f, "cpu %u %016llx\n", c->nent,
	        (unsigned long long)snapshot_hash(3, c->entries, c->nent * sizeof(c->entries[0])));
	free(c);
	fprintf(f, "emulated %d\n", emulated);
	return 0;
}
