/* The vCPU threads: enter the guest, handle each exit, re-enter, until
 * the guest powers off, fails, or the VM is stopped. Each vCPU has its own
 * thread running the same loop; whichever ends the VM makes the others
 * leave theirs, and vCPU 0's thread, which started the others, joins them
 * before the VM is torn down. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vmm/internal.h"
#include "vmproc_abi.h"
#include "x86/kvm_state.h"
#include "x86/layout.h"

#define PORT_I8042_COMMAND 0x64
#define I8042_CMD_RESET    0xfe
#define PORT_COM1          0x3f8
#define COM1_LSR           (PORT_COM1 + 5)
#define LSR_TX_EMPTY       0x60

enum loop { LOOP_CONTINUE, LOOP_END };

static const char panic_marker[] = "Kernel panic - not syncing: ";

/* The VM ended by a guest reset. If the console shows a panic message,
 * that is the cause; otherwise the guest rebooted on its own. */
static void guest_reset(struct vm *vm)
{
	char tail[VM_CONSOLE_TAIL + 1];
	pthread_mutex_lock(&vm->console_lock);
	memcpy(tail, vm->console_tail, vm->console_tail_len);
	tail[vm->console_tail_len] = '\0';
	pthread_mutex_unlock(&vm->console_lock);
	char *p = NULL;
	for (char *q = strstr(tail, panic_marker); q; q = strstr(q + 1, panic_marker))
		p = q;
	if (p) {
		p += sizeof(panic_marker) - 1;
		size_t n = strcspn(p, "\r\n");
		vm_fail(vm, VMPROC_FAILURE_GUEST_PANIC, -EIO, "guest kernel panic: %.*s", (int)n,
		        p);
	} else {
		vm_fail(vm, VMPROC_FAILURE_GUEST_RESET, -EIO,
		        "guest rebooted before its init reported an exit status");
	}
}

static enum loop port_write(struct vm *vm, uint16_t port, const uint8_t *data, unsigned size)
{
	switch (port) {
	case VMPROC_ABI_EVENT_PORT:
		if (data[0] == VMPROC_EVENT_READY) {
			trace_mark(&vm->trace, TP_INIT_READY);
			atomic_store(&vm->init_ready, true);
			/* The snapshot point: init waits for its command. */
			if (vm->capture) {
				atomic_store(&vm->capture_ready, true);
				return LOOP_END;
			}
		}
		return LOOP_CONTINUE;
	case VMPROC_ABI_EXIT_PORT:
		trace_mark(&vm->trace, TP_INIT_EXIT);
		vm->exit_status = data[0];
		return LOOP_END;
	case PORT_I8042_COMMAND:
		if (data[0] != I8042_CMD_RESET)
			return LOOP_CONTINUE;
		guest_reset(vm);
		return LOOP_END;
	case PORT_COM1:
		/* earlyprintk=serial: only asked for with kernel_log. */
		if (vm->cfg.kernel_log && vm->cfg.console_fn) {
			pthread_mutex_lock(&vm->console_lock);
			vm->cfg.console_fn(data, size == 0 ? 0 : 1, vm->cfg.console_userdata);
			pthread_mutex_unlock(&vm->console_lock);
		}
		return LOOP_CONTINUE;
	default: return LOOP_CONTINUE;
	}
}

static void port_read(uint16_t port, uint8_t *data, unsigned size)
{
	memset(data, 0xff, size);
	if (port == COM1_LSR)
		data[0] = LSR_TX_EMPTY;
	else if (port == PORT_I8042_COMMAND || (port >= PORT_COM1 && port < PORT_COM1 + 8))
		data[0] = 0; /* i8042: input buffer empty, so kb_wait() returns at once */
}

static enum loop handle_io(struct vm_vcpu *c)
{
	struct vm *vm = c->vm;
	struct kvm_run *r = c->run;
	uint64_t bytes = (uint64_t)r->io.size * r->io.count;
	if (r->io.size == 0 || r->io.size > 4 || r->io.data_offset > vm->run_size ||
	    bytes > vm->run_size - r->io.data_offset) {
		vm_fail(vm, VMPROC_FAILURE_VMM, -EIO, "KVM reported a malformed port access");
		return LOOP_END;
	}
	uint8_t *data = (uint8_t *)r + r->io.data_offset;
	trace_count_port(&c->stats, r->io.port);
	for (uint32_t i = 0; i < r->io.count; i++, data += r->io.size) {
		if (r->io.direction == KVM_EXIT_IO_OUT) {
			if (port_write(vm, r->io.port, data, r->io.size) == LOOP_END)
				return LOOP_END;
		} else {
			port_read(r->io.port, data, r->io.size);
		}
	}
	return LOOP_CONTINUE;
}

static bool should_stop(struct vm *vm);

static enum loop handle_mmio(struct vm_vcpu *c)
{
	struct vm *vm = c->vm;
	struct kvm_run *r = c->run;
	uint64_t addr = r->mmio.phys_addr;
	uint32_t len = r->mmio.len;
	if (len > sizeof(r->mmio.data))
		len = sizeof(r->mmio.data);
	for (unsigned i = 0; i < vm->ndev; i++) {
		struct virtio_mmio *t = &vm->dev[i].transport;
		if (addr < t->base || addr - t->base >= LAYOUT_VIRTIO_MMIO_SIZE)
			continue;
		c->stats.mmio_virtio++;
		struct vmp_error err = {0};
		int rc = virtio_mmio_access(t, addr - t->base, r->mmio.data, len, r->mmio.is_write,
		                            &err);
		/* A device that yielded with work left (a guest republishing
		 * buffers from another vCPU) is served on batch by batch, as
		 * long as nobody stops the VM and its deadline has not come. */
		while (!rc && virtio_mmio_pending(t)) {
			if (should_stop(vm))
				return LOOP_END;
			rc = virtio_mmio_continue(t, &err);
		}
		if (rc) {
			vm_fail(vm, VMPROC_FAILURE_GUEST_ERROR, err.code, "guest misused %s: %s",
			        t->ops->name, err.msg);
			return LOOP_END;
		}
		return LOOP_CONTINUE;
	}
	c->stats.mmio_other++;
	if (!r->mmio.is_write)
		memset(r->mmio.data, 0xff, len);
	return LOOP_CONTINUE;
}

static uint64_t guest_rip(const struct vm_vcpu *c)
{
	struct kvm_regs regs;
	if (ioctl(c->fd, KVM_GET_REGS, &regs) < 0)
		return 0;
	return regs.rip;
}

static void fail_at_rip(struct vm_vcpu *c, vmproc_failure f, const char *what)
{
	char where[192];
	vm_symbolize(c->vm, guest_rip(c), where, sizeof(where));
	if (c->vm->nvcpus > 1)
		vm_fail(c->vm, f, -EIO, "%s at guest RIP %s on vCPU %u", what, where, c->id);
	else
		vm_fail(c->vm, f, -EIO, "%s at guest RIP %s", what, where);
}

static enum loop handle_internal_error(struct vm_vcpu *c)
{
	uint32_t sub = c->run->internal.suberror;
	if (sub == KVM_INTERNAL_ERROR_EMULATION) {
		fail_at_rip(c, VMPROC_FAILURE_EMULATION,
		            "KVM could not emulate a guest instruction");
	} else {
		char what[64];
		snprintf(what, sizeof(what), "KVM internal error (suberror %u)", sub);
		fail_at_rip(c, VMPROC_FAILURE_VMM, what);
	}
	return LOOP_END;
}

static enum loop handle_system_event(struct vm_vcpu *c)
{
	struct vm *vm = c->vm;
	switch (c->run->system_event.type) {
	case KVM_SYSTEM_EVENT_RESET: guest_reset(vm); break;
	case KVM_SYSTEM_EVENT_CRASH:
		vm_fail(vm, VMPROC_FAILURE_GUEST_PANIC, -EIO, "guest reported a crash");
		break;
	default:
		vm_fail(vm, VMPROC_FAILURE_GUEST_RESET, -EIO,
		        "guest shut down before its init reported an exit status");
		break;
	}
	return LOOP_END;
}

static enum loop handle_exit(struct vm_vcpu *c)
{
	uint32_t reason = c->run->exit_reason;
	c->stats.exits[reason < TRACE_EXIT_REASONS ? reason : 0]++;
	switch (reason) {
	case KVM_EXIT_IO: return handle_io(c);
	case KVM_EXIT_MMIO: return handle_mmio(c);
	case KVM_EXIT_INTR: return LOOP_CONTINUE;
	case KVM_EXIT_SHUTDOWN:
		fail_at_rip(c, VMPROC_FAILURE_TRIPLE_FAULT, "guest triple-faulted (vCPU shutdown)");
		return LOOP_END;
	case KVM_EXIT_INTERNAL_ERROR: return handle_internal_error(c);
	case KVM_EXIT_SYSTEM_EVENT: return handle_system_event(c);
	case KVM_EXIT_HLT:
		fail_at_rip(c, VMPROC_FAILURE_VMM, "guest halted with no way to wake it");
		return LOOP_END;
	case KVM_EXIT_FAIL_ENTRY:
		vm_fail(c->vm, VMPROC_FAILURE_VMM, -EIO,
		        "KVM could not enter the guest (reason 0x%llx)",
		        (unsigned long long)c->run->fail_entry.hardware_entry_failure_reason);
		return LOOP_END;
	default: fail_at_rip(c, VMPROC_FAILURE_VMM, "unexpected KVM exit"); return LOOP_END;
	}
}

/* The kick signal is blocked in this thread except inside KVM_RUN. */
static int prepare_signals(const struct vm_vcpu *c)
{
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, kick_signal());
	int rc = pthread_sigmask(SIG_BLOCK, &block, NULL);
	if (rc)
		return -rc;
	sigset_t during_run;
	pthread_sigmask(SIG_BLOCK, NULL, &during_run);
	sigdelset(&during_run, kick_signal());
	/* The kernel's sigset is 8 bytes on x86_64, not glibc's 128. */
	struct {
		struct kvm_signal_mask hdr;
		uint8_t set[8];
	} m;
	m.hdr.len = 8;
	memcpy(m.set, &during_run, 8);
	if (ioctl(c->fd, KVM_SET_SIGNAL_MASK, &m) < 0)
		return -errno;
	return 0;
}

/* A timer that sends the kick signal to this thread. */
static int kick_timer(timer_t *t, bool *armed, clockid_t clock, int flags, uint64_t first_ns,
                      uint64_t interval_ns)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = kick_signal();
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(clock, &sev, t) < 0)
		return -errno;
	*armed = true;
	struct itimerspec its;
	its.it_value.tv_sec = (time_t)(first_ns / 1000000000ull);
	its.it_value.tv_nsec = (long)(first_ns % 1000000000ull);
	its.it_interval.tv_sec = (time_t)(interval_ns / 1000000000ull);
	its.it_interval.tv_nsec = (long)(interval_ns % 1000000000ull);
	if (timer_settime(*t, flags, &its, NULL) < 0)
		return -errno;
	return 0;
}

/* The deadline kicks vCPU 0 only: its thread then ends the VM for all. */
static int arm_timers(struct vm_vcpu *c)
{
	struct vm *vm = c->vm;
	int rc = 0;
	if (c->id == 0 && vm->deadline_ns)
		rc = kick_timer(&vm->timer, &vm->timer_armed, CLOCK_MONOTONIC, TIMER_ABSTIME,
		                vm->deadline_ns, 0);
	/* Profile samples tick in this thread's CPU time, so they measure
	 * guest work, not waiting for a host CPU. */
	if (!rc && vm->cfg.profile)
		rc = kick_timer(&c->profile_timer, &c->profile_timer_armed, CLOCK_THREAD_CPUTIME_ID,
		                0, PROFILE_INTERVAL_NS, 0);
	return rc;
}

/* KVM_RUN returns EINTR with the kick still pending: KVM puts the
 * thread's blocked mask back before returning to user space, so the
 * signal is never delivered. Unless it is taken here, every later
 * KVM_RUN returns at once (seen: 76,000 EINTRs a second). */
static void consume_kicks(void)
{
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, kick_signal());
	struct timespec zero = {0, 0};
	while (sigtimedwait(&kick, NULL, &zero) > 0)
		;
}

bool vm_io_should_abort(struct vm *vm)
{
	consume_kicks();
	return atomic_load(&vm->ending) || atomic_load(&vm->stop_request) ||
	       (vm->deadline_ns && trace_now_ns() >= vm->deadline_ns);
}

void vm_io_sigmask(sigset_t *out)
{
	pthread_sigmask(SIG_BLOCK, NULL, out);
	sigdelset(out, kick_signal());
}

static bool should_stop(struct vm *vm)
{
	if (atomic_load(&vm->ending))
		return true;
	int why = atomic_load(&vm->stop_request);
	if (why) {
		vm_fail(vm, (vmproc_failure)why, -ECANCELED, "VM stopped by its owner");
		return true;
	}
	if (vm->deadline_ns && trace_now_ns() >= vm->deadline_ns) {
		vm_fail(vm, VMPROC_FAILURE_TIMEOUT, -ETIMEDOUT,
		        "guest did not power off within %llu ms%s",
		        (unsigned long long)vm->cfg.timeout_ms,
		        atomic_load(&vm->init_ready) ? "" : " (its init never became ready)");
		return true;
	}
	return false;
}

static void sample(struct vm_vcpu *c)
{
	uint64_t next = profile_record(&c->profile, guest_rip(c));
	struct itimerspec its = {
	    .it_value = {.tv_sec = (time_t)(next / 1000000000ull),
	                 .tv_nsec = (long)(next % 1000000000ull)},
	};
	timer_settime(c->profile_timer, 0, &its, NULL);
}

static void run_loop(struct vm_vcpu *c)
{
	struct vm *vm = c->vm;
	if (c->id == 0) {
		trace_mark(&vm->trace, TP_FIRST_RUN);
		/* A restored guest's init is ready from its first instruction. */
		if (vm->restore)
			trace_mark(&vm->trace, TP_INIT_READY);
	}
	for (;;) {
		if (should_stop(vm))
			return;
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			/* EAGAIN: a vCPU waiting for its SIPI was woken. */
			if (errno == EINTR || errno == EAGAIN) {
				c->stats.interrupted++;
				consume_kicks();
				if (c->profile_timer_armed)
					sample(c);
				continue;
			}
			vm_fail(vm, VMPROC_FAILURE_VMM, -errno, "KVM_RUN failed: %s",
			        strerror(errno));
			return;
		}
		if (handle_exit(c) == LOOP_END)
			return;
	}
}

/* One vCPU's life in its thread, up to the VM's end. */
static void run_vcpu(struct vm_vcpu *c)
{
	struct vm *vm = c->vm;
	int rc = prepare_signals(c);
	if (rc)
		vm_fail(vm, VMPROC_FAILURE_VMM, rc, "cannot set up vCPU signals: %s",
		        strerror(-rc));
	else if ((rc = arm_timers(c)))
		vm_fail(vm, VMPROC_FAILURE_VMM, rc, "cannot arm the vCPU timers: %s",
		        strerror(-rc));
	if (!rc) {
		atomic_store(&c->tid, (pid_t)syscall(SYS_gettid));
		run_loop(c);
		atomic_store(&c->tid, 0);
		trace_vcpu_cputime(&c->stats);
	}
	/* A snapshot is taken next: the access this vCPU last exited for
	 * must be complete in its state. */
	if (!rc && atomic_load(&vm->capture_ready)) {
		struct vmp_error err = {0};
		consume_kicks();
		if (x86_vcpu_complete_pending(c->fd, c->run, &err))
			vm_fail(vm, VMPROC_FAILURE_VMM, err.code, "snapshot: vCPU %u: %s", c->id,
			        err.msg);
	}
	/* Whatever ended this vCPU's loop ends the VM for the others. */
	vm_end(vm, c);
}

static void *ap_thread_main(void *arg)
{
	run_vcpu(arg);
	return NULL;
}

void *vcpu_thread_main(void *arg)
{
	struct vm *vm = arg;
	/* The other vCPUs' threads start blocked in KVM_RUN until the guest
	 * sends them INIT and SIPI. */
	for (unsigned i = 1; i < vm->nvcpus; i++) {
		struct vm_vcpu *c = &vm->vcpu[i];
		int rc = -pthread_create(&c->thread, NULL, ap_thread_main, c);
		if (rc) {
			vm_fail(vm, VMPROC_FAILURE_VMM, rc,
			        "cannot create the thread of vCPU %u: %s", i, strerror(-rc));
			atomic_store(&vm->ending, true);
			break;
		}
		c->thread_started = true;
	}
	run_vcpu(&vm->vcpu[0]);
	for (unsigned i = 1; i < vm->nvcpus; i++) {
		struct vm_vcpu *c = &vm->vcpu[i];
		if (c->thread_started)
			pthread_join(c->thread, NULL);
		c->thread_started = false;
	}
	/* Every vCPU thread is gone: their counters and samples are final. */
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		trace_add_counters(&vm->trace, &vm->vcpu[i].stats);
		profile_merge(&vm->profile, &vm->vcpu[i].profile);
	}
	profile_finish(&vm->profile, vm->kernel_file, vm->kernel_size);
	if (atomic_load(&vm->capture_ready))
		vm_capture(vm);
	vm_thread_finished(vm);
	return NULL;
}
