/* Putting a vCPU into the state the Linux 64-bit boot protocol expects:
 * long mode, identity-mapped page tables, flat segments, RSI -> zero page. */
#ifndef VMP_X86_CPU_H
#define VMP_X86_CPU_H

#include <stdint.h>

#include "util/error.h"
#include "mem/guest_mem.h"

/* Writes the GDT and page tables into guest memory (shared by all vCPUs). */
int x86_write_boot_tables(struct guest_mem *mem, struct vmp_error *err);

/* Sets registers, segments, FPU, LAPIC and MSRs of the boot vCPU. */
int x86_setup_boot_vcpu(int vcpu_fd, uint64_t entry, uint64_t zero_page, struct vmp_error *err);
/* An application processor: left in its reset state for the guest to
 * start with INIT and SIPI; only the MSRs firmware would have set. */
int x86_setup_ap_vcpu(int vcpu_fd, struct vmp_error *err);

#endif
