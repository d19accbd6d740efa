/* Where a VM's time went: timestamps of the VMM's setup phases and of
 * guest milestones, and VM exits counted by reason. Written only by the
 * VM's own threads; read after the VM has ended. */
#ifndef VMP_VMM_TRACE_H
#define VMP_VMM_TRACE_H

#include <stddef.h>
#include <stdint.h>

enum trace_point {
	TP_START,      /* vm_start called */
	TP_KVM_OPEN,   /* /dev/kvm opened, capabilities checked */
	TP_VM_CREATED, /* KVM VM, irqchip, PIT */
	TP_MEMORY,     /* guest RAM mapped and registered */
	TP_KERNEL,     /* kernel loaded */
	TP_INITRD,     /* initramfs loaded */
	TP_BOOT_DATA,  /* command line, zero page, page tables */
	TP_VCPU,       /* vCPU created with CPUID and registers */
	TP_DEVICES,    /* virtio devices wired */
	TP_FIRST_RUN,  /* first KVM_RUN entered */
	TP_INIT_READY, /* guest init reported ready */
	TP_INIT_EXIT,  /* guest init reported its exit */
	TP_END,        /* vCPU loop left */
	TP_COUNT,
};

#define TRACE_EXIT_REASONS 64
#define TRACE_PORTS        12

struct trace_port_count {
	uint16_t port;
	uint64_t count;
};

struct vm_trace {
	uint64_t ns[TP_COUNT]; /* CLOCK_MONOTONIC; 0 = not reached */
	uint64_t exits[TRACE_EXIT_REASONS];
	uint64_t interrupted; /* KVM_RUN returned EINTR */
	struct trace_port_count ports[TRACE_PORTS];
	uint64_t other_ports;
	uint64_t mmio_virtio, mmio_other;
	/* CPU time of the vCPU thread: where KVM emulates guest-kernel code,
	 * this is the guest's work, and it does not grow when other
	 * processes compete for the host CPUs the way wall time does. */
	uint64_t vcpu_user_ns, vcpu_sys_ns;
	unsigned vcpus; /* how many vCPUs' counters were added */
};

uint64_t trace_now_ns(void);
void trace_mark(struct vm_trace *t, enum trace_point p);
void trace_count_port(struct vm_trace *t, uint16_t port);
/* Records the calling thread's CPU time as the vCPU's. */
void trace_vcpu_cputime(struct vm_trace *t);
/* Adds one vCPU's counters (exits, ports, CPU time) into t. */
void trace_add_counters(struct vm_trace *t, const struct vm_trace *vcpu);
/* Milliseconds from TP_START to p, or -1 if p was not reached. */
double trace_ms(const struct vm_trace *t, enum trace_point p);
/* snprintf-style formatting of the whole trace. */
int trace_format(const struct vm_trace *t, char *buf, size_t len);

#endif
