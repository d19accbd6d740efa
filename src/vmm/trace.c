#include "vmm/trace.h"

#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

static const char *const point_names[TP_COUNT] = {
    [TP_START] = "start",
    [TP_KVM_OPEN] = "open /dev/kvm",
    [TP_VM_CREATED] = "create VM + irqchip",
    [TP_MEMORY] = "map guest memory",
    [TP_KERNEL] = "load kernel",
    [TP_INITRD] = "load initramfs",
    [TP_BOOT_DATA] = "boot params + page tables",
    [TP_VCPU] = "create vCPU",
    [TP_DEVICES] = "virtio devices",
    [TP_FIRST_RUN] = "first guest instruction",
    [TP_INIT_READY] = "guest init ready",
    [TP_INIT_EXIT] = "guest poweroff",
    [TP_END] = "VM stopped",
};

uint64_t trace_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void trace_mark(struct vm_trace *t, enum trace_point p)
{
	if (!t->ns[p])
		t->ns[p] = trace_now_ns();
}

void trace_count_port(struct vm_trace *t, uint16_t port)
{
	for (unsigned i = 0; i < TRACE_PORTS; i++) {
		if (t->ports[i].count && t->ports[i].port != port)
			continue;
		t->ports[i].port = port;
		t->ports[i].count++;
		return;
	}
	t->other_ports++;
}

void trace_vcpu_cputime(struct vm_trace *t)
{
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) < 0)
		return;
	t->vcpu_user_ns =
	    (uint64_t)ru.ru_utime.tv_sec * 1000000000ull + (uint64_t)ru.ru_utime.tv_usec * 1000ull;
	t->vcpu_sys_ns =
	    (uint64_t)ru.ru_stime.tv_sec * 1000000000ull + (uint64_t)ru.ru_stime.tv_usec * 1000ull;
}

void trace_add_counters(struct vm_trace *t, const struct vm_trace *vcpu)
{
	for (unsigned r = 0; r < TRACE_EXIT_REASONS; r++)
		t->exits[r] += vcpu->exits[r];
	t->interrupted += vcpu->interrupted;
	for (unsigned i = 0; i < TRACE_PORTS && vcpu->ports[i].count; i++) {
		unsigned j;
		for (j = 0; j < TRACE_PORTS && t->ports[j].count; j++)
			if (t->ports[j].port == vcpu->ports[i].port)
				break;
		if (j == TRACE_PORTS) {
			t->other_ports += vcpu->ports[i].count;
			continue;
		}
		t->ports[j].port = vcpu->ports[i].port;
		t->ports[j].count += vcpu->ports[i].count;
	}
	t->other_ports += vcpu->other_ports;
	t->mmio_virtio += vcpu->mmio_virtio;
	t->mmio_other += vcpu->mmio_other;
	t->vcpu_user_ns += vcpu->vcpu_user_ns;
	t->vcpu_sys_ns += vcpu->vcpu_sys_ns;
	t->vcpus++;
}

double trace_ms(const struct vm_trace *t, enum trace_point p)
{
	if (!t->ns[p] || !t->ns[TP_START])
		return -1;
	return (double)(t->ns[p] - t->ns[TP_START]) / 1e6;
}

static const char *exit_name(unsigned r)
{
	switch (r) {
	case KVM_EXIT_IO: return "io";
	case KVM_EXIT_MMIO: return "mmio";
	case KVM_EXIT_HLT: return "hlt";
	case KVM_EXIT_SHUTDOWN: return "shutdown";
	case KVM_EXIT_INTERNAL_ERROR: return "internal-error";
	case KVM_EXIT_FAIL_ENTRY: return "fail-entry";
	case KVM_EXIT_SYSTEM_EVENT: return "system-event";
	case KVM_EXIT_INTR: return "intr";
	default: return "other";
	}
}

struct out {
	char *buf;
	size_t len, need;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = o->need < o->len ? o->len - o->need : 0;
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	int n = vsnprintf(room ? o->buf + o->need : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->need += (size_t)n;
}

int trace_format(const struct vm_trace *t, char *buf, size_t len)
{
	struct out o = {.buf = buf, .len = len, .need = 0};
	if (len)
		buf[0] = '\0';
	put(&o, "vmproc boot trace (ms since start, +ms since previous step)\n");
	uint64_t prev = t->ns[TP_START];
	for (unsigned p = TP_KVM_OPEN; p < TP_COUNT; p++) {
		if (!t->ns[p]) {
			put(&o, "  %-28s       -   (not reached)\n", point_names[p]);
			continue;
		}
		put(&o, "  %-28s %10.3f  (+%.3f)\n", point_names[p],
		    (double)(t->ns[p] - t->ns[TP_START]) / 1e6, (double)(t->ns[p] - prev) / 1e6);
		prev = t->ns[p];
	}
	if (t->vcpus > 1)
		put(&o, "vCPU threads (%u) CPU time: ", t->vcpus);
	else
		put(&o, "vCPU thread CPU time: ");
	put(&o, "%.1f ms in KVM_RUN and the kernel, %.1f ms in the VMM\n",
	    (double)t->vcpu_sys_ns / 1e6, (double)t->vcpu_user_ns / 1e6);
	uint64_t total = 0;
	for (unsigned r = 0; r < TRACE_EXIT_REASONS; r++)
		total += t->exits[r];
	put(&o, "VM exits: %llu in all, %llu interrupted KVM_RUN\n", (unsigned long long)total,
	    (unsigned long long)t->interrupted);
	for (unsigned r = 0; r < TRACE_EXIT_REASONS; r++)
		if (t->exits[r])
			put(&o, "  %-16s %10llu\n", exit_name(r), (unsigned long long)t->exits[r]);
	for (unsigned i = 0; i < TRACE_PORTS && t->ports[i].count; i++)
		put(&o, "    port 0x%04x   %10llu\n", t->ports[i].port,
		    (unsigned long long)t->ports[i].count);
	if (t->other_ports)
		put(&o, "    other ports   %10llu\n", (unsigned long long)t->other_ports);
	if (t->mmio_virtio || t->mmio_other)
		put(&o, "    mmio virtio   %10llu\n    mmio other    %10llu\n",
		    (unsigned long long)t->mmio_virtio, (unsigned long long)t->mmio_other);
	return (int)o.need;
}
