/* The guest/host ABI between vmproc's VMM and its guest init.
 *
 * Shared by the VMM (src/) and the guest init (guest/init/). Both sides
 * include this file; it must stay free of anything but constants.
 *
 * The init talks to the VMM through two I/O ports that it may write from
 * user space after ioperm(). A port write is the cheapest possible signal
 * on hosts whose KVM emulates guest-kernel code: one VM exit, no guest
 * kernel work. The layout is compatible with QEMU's isa-debugcon (event
 * port) and isa-debug-exit (exit port), so the same guest runs unchanged
 * under QEMU for side-by-side benchmarks.
 */
#ifndef VMPROC_ABI_H
#define VMPROC_ABI_H

/* Event port: 8-bit writes of one of the VMPROC_EVENT_* codes. */
#define VMPROC_ABI_EVENT_PORT 0x600
/* Init has mounted its file systems and is ready for work. */
#define VMPROC_EVENT_READY 'R'

/* Exit port: an 8-bit write ends the VM. The value is the guest's exit
 * status in shell convention: 0-127 an exit code, 128+N death by signal N.
 * The init writes it after sync(), so nothing is left to flush. */
#define VMPROC_ABI_EXIT_PORT 0x601

#endif
