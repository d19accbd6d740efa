/* An Intel MultiProcessor Specification 1.4 table: CPUs, the ISA bus and
 * the I/O APIC with its interrupt routing. Without ACPI this is how Linux
 * finds its processors and I/O APIC. Placing the floating pointer at the
 * very first address Linux scans also spares it the scan itself, which
 * maps and unmaps every 16 bytes of the BIOS area (about a second of
 * emulated guest-kernel time). */
#ifndef VMP_X86_MPTABLE_H
#define VMP_X86_MPTABLE_H

#include <stdint.h>

#include "util/error.h"
#include "vmm/guest_mem.h"

#define MPTABLE_IOAPIC_PINS 24

/* Writes the table at gpa (below 1 KiB: the first region Linux scans).
 * Returns 0 or -E2BIG if it would not fit in max_len bytes. */
int mptable_write(struct guest_mem *mem, uint64_t gpa, uint64_t max_len, unsigned ncpus,
                  struct vmp_error *err);

#endif
