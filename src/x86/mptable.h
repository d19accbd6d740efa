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
#include "mem/guest_mem.h"

#define MPTABLE_IOAPIC_PINS 24
/* APIC ids 0..ncpus-1 for the CPUs, ncpus for the I/O APIC: 8-bit ids,
 * 0xff being broadcast. */
#define MPTABLE_MAX_CPUS 254

/* Writes the 16-byte floating pointer at fp_gpa (below 1 KiB: the first
 * region Linux scans) and the configuration table it points to at
 * table_gpa (below 4 GiB), listing ncpus processors with APIC ids
 * 0..ncpus-1, CPU 0 the boot processor. Returns 0, -EINVAL for a bad
 * placement or CPU count, or -E2BIG if the table would not fit in
 * table_max bytes. */
int mptable_write(struct guest_mem *mem, uint64_t fp_gpa, uint64_t table_gpa, uint64_t table_max,
                  unsigned ncpus, struct vmp_error *err);

#endif
