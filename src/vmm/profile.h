/* A sampling profiler of the guest: a periodic timer interrupts the vCPU
 * thread out of KVM_RUN, the VMM reads the guest RIP, and at the end the
 * samples are attributed to guest kernel functions through vmlinux's
 * symbol table. On hosts that emulate guest-kernel code, this shows where
 * boot time goes without tracing inside the guest (ftrace and kprobes
 * need int3, which the emulator cannot run). */
#ifndef VMP_VMM_PROFILE_H
#define VMP_VMM_PROFILE_H

#include <stddef.h>
#include <stdint.h>

struct profile {
	uint64_t interval_ns; /* next sampling interval */
	uint64_t *rip;
	size_t n, cap;
	char *report; /* formatted at the end, owned */
};

/* Sampling interval in vCPU CPU time. Under PVM an interrupted
 * rep-string instruction restarts from the beginning (seen: clear_bss's
 * 1.1 MB rep stosb never finished at 1 kHz), so when a sample finds the
 * RIP where the previous one did, the interval doubles until the
 * instruction completes; any progress resets it. */
#define PROFILE_INTERVAL_NS     2000000ull
#define PROFILE_MAX_INTERVAL_NS 4000000000ull
#define PROFILE_MAX_SAMPLES     (4u << 20)

/* Records a sample; returns the interval until the next one. */
uint64_t profile_record(struct profile *p, uint64_t rip);
/* Moves src's samples into dst (another vCPU's, say); src is emptied. */
void profile_merge(struct profile *dst, struct profile *src);
/* Aggregates samples by function (symbols from the ELF kernel image) and
 * formats the top entries into p->report. */
void profile_finish(struct profile *p, const uint8_t *kernel, size_t kernel_size);
void profile_release(struct profile *p);

#endif
