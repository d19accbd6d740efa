/* How the VMM reports guests that misbehave and inputs that are wrong,
 * using tiny hand-made kernels (milliseconds each) and bad files. Every
 * case checks the error the user sees, and that the process keeps every
 * fd and thread it had before. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"
#include "proc_counts.h"
#include "tiny_kernel.h"
#include "vmproc.h"

static char tmpdir[] = "/tmp/vmproc-test-XXXXXX";

static int open_fds(void)
{
	return count_dir("/proc/self/fd");
}
static int threads(void)
{
	return count_dir("/proc/self/task");
}

static int threads_settled(int expected)
{
	return settled("/proc/self/task", expected);
}

static const char *tiny(const char *name, const unsigned char *code, size_t len)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if (tiny_kernel_write(path, code, len))
		return NULL;
	return path;
}

static const char *write_file(const char *name, const void *data, size_t len)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		return NULL;
	if (len)
		fwrite(data, 1, len, f);
	fclose(f);
	return path;
}

struct outcome {
	int rc;
	int status;
	vmproc_failure failure;
	char msg[512];
	double elapsed_ms;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct outcome run_kernel_cpus(const char *kernel, unsigned mem_mib, uint64_t timeout_ms,
                                      unsigned cpus)
{
	struct outcome o = {.rc = -999, .status = -1};
	vmproc_config *cfg;
	if (vmproc_config_new(&cfg))
		return o;
	if (kernel)
		vmproc_config_set_kernel(cfg, kernel);
	if (cpus && vmproc_config_set_cpus(cfg, cpus)) {
		vmproc_config_free(cfg);
		return o;
	}
	if (mem_mib)
		vmproc_config_set_memory_mib(cfg, mem_mib);
	vmproc_config_set_timeout_ms(cfg, timeout_ms);
	vmproc_vm *vm;
	if (vmproc_vm_new(&vm, cfg) == 0) {
		double t0 = now_ms();
		o.rc = vmproc_vm_start(vm);
		if (o.rc == 0)
			o.rc = vmproc_vm_wait(vm, &o.status);
		o.elapsed_ms = now_ms() - t0;
		o.failure = vmproc_vm_failure(vm);
		snprintf(o.msg, sizeof(o.msg), "%s", vmproc_vm_error(vm));
		vmproc_vm_free(vm);
	}
	vmproc_config_free(cfg);
	return o;
}

static struct outcome run_kernel(const char *kernel, unsigned mem_mib, uint64_t timeout_ms)
{
	return run_kernel_cpus(kernel, mem_mib, timeout_ms, 0);
}

#define NO_LEAKS_AROUND(stmt)                                                                      \
	do {                                                                                       \
		int fds_ = open_fds(), thr_ = threads();                                           \
		stmt;                                                                              \
		CHECK_MSG(open_fds() == fds_, "fds %d -> %d", fds_, open_fds());                   \
		CHECK_MSG(threads_settled(thr_) == thr_, "threads %d -> %d", thr_, threads());     \
	} while (0)

static void missing_kernel_is_a_setup_error(void)
{
	struct outcome o;
	NO_LEAKS_AROUND(o = run_kernel("/nonexistent/vmlinux", 0, 0));
	CHECK(o.rc == -ENOENT);
	CHECK(o.failure == VMPROC_FAILURE_SETUP);
	CHECK_MSG(strstr(o.msg, "/nonexistent/vmlinux") != NULL, "%s", o.msg);
}

static void empty_kernel_is_rejected(void)
{
	struct outcome o;
	const char *p = write_file("empty", "", 0);
	NO_LEAKS_AROUND(o = run_kernel(p, 0, 0));
	CHECK(o.failure == VMPROC_FAILURE_SETUP);
	CHECK_MSG(strstr(o.msg, "empty") != NULL, "%s", o.msg);
}

static void text_file_is_not_a_kernel(void)
{
	static const char text[] = "#!/bin/sh\n# a shell script, long enough to hold an ELF "
	                           "header\necho this is not a kernel\n";
	struct outcome o;
	NO_LEAKS_AROUND(o = run_kernel(write_file("text", text, sizeof(text)), 0, 0));
	CHECK(o.rc == -ENOEXEC);
	CHECK_MSG(strstr(o.msg, "not an ELF") != NULL, "%s", o.msg);
}

static void truncated_kernel_is_rejected(void)
{
	unsigned char buf[64 + 56 + sizeof(tiny_code_spin)];
	const char *full = tiny("full", tiny_code_spin, sizeof(tiny_code_spin));
	FILE *f = fopen(full, "rb");
	size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
	if (f)
		fclose(f);
	CHECK(n == sizeof(buf));
	struct outcome o;
	/* Cut inside the program header table, then inside the segment. */
	NO_LEAKS_AROUND(o = run_kernel(write_file("cut1", buf, 80), 0, 0));
	CHECK_MSG(strstr(o.msg, "truncated") != NULL, "%s", o.msg);
	NO_LEAKS_AROUND(o = run_kernel(write_file("cut2", buf, sizeof(buf) - 1), 0, 0));
	CHECK_MSG(strstr(o.msg, "truncated") != NULL, "%s", o.msg);
	CHECK(o.failure == VMPROC_FAILURE_SETUP);
}

static void host_program_is_not_a_kernel(void)
{
	/* /bin/true is an x86-64 ELF, but a position-independent program. */
	struct outcome o;
	NO_LEAKS_AROUND(o = run_kernel("/bin/true", 0, 0));
	CHECK(o.rc == -ENOEXEC);
	CHECK_MSG(strstr(o.msg, "not an ELF executable") != NULL, "%s", o.msg);
}

static void too_little_memory_is_a_clear_error(void)
{
	/* The real kernel and initramfs do not fit in 16 MiB. */
	struct outcome o;
	NO_LEAKS_AROUND(o = run_kernel(NULL, 16, 0));
	CHECK(o.failure == VMPROC_FAILURE_SETUP);
	CHECK_MSG(strstr(o.msg, "does not fit") != NULL, "%s", o.msg);
	vmproc_config *cfg;
	vmproc_config_new(&cfg);
	CHECK(vmproc_config_set_memory_mib(cfg, 8) == -EINVAL);
	CHECK(strstr(vmproc_config_error(cfg), "MiB") != NULL);
	vmproc_config_free(cfg);
}

static void triple_fault_is_reported_with_rip(void)
{
	struct outcome o;
	NO_LEAKS_AROUND(
	    o = run_kernel(tiny("tf", tiny_code_triple_fault, sizeof(tiny_code_triple_fault)), 0,
	                   10000));
	CHECK(o.rc < 0);
	CHECK_MSG(o.failure == VMPROC_FAILURE_TRIPLE_FAULT, "%s: %s",
	          vmproc_failure_name(o.failure), o.msg);
	CHECK_MSG(strstr(o.msg, "RIP 0x") != NULL, "%s", o.msg);
	if (getenv("VMPROC_TEST_VERBOSE"))
		printf("  message: %s\n", o.msg);
}

static void unemulated_instruction_names_rip(void)
{
	struct outcome o;
	NO_LEAKS_AROUND(
	    o = run_kernel(tiny("int3", tiny_code_int3, sizeof(tiny_code_int3)), 0, 10000));
	CHECK(o.rc < 0);
	if (o.failure == VMPROC_FAILURE_TRIPLE_FAULT)
		return; /* hardware virtualisation: int3 runs, then faults */
	CHECK_MSG(o.failure == VMPROC_FAILURE_EMULATION, "%s: %s", vmproc_failure_name(o.failure),
	          o.msg);
	CHECK_MSG(strstr(o.msg, "emulate") != NULL, "%s", o.msg);
	/* The int3 is the third byte of the code at 16 MiB. */
	CHECK_MSG(strstr(o.msg, "RIP 0x1000002") != NULL, "%s", o.msg);
}

static void spinning_guest_times_out(void)
{
	struct outcome o;
	NO_LEAKS_AROUND(
	    o = run_kernel(tiny("spin", tiny_code_spin, sizeof(tiny_code_spin)), 0, 300));
	CHECK(o.rc == -ETIMEDOUT);
	CHECK(o.failure == VMPROC_FAILURE_TIMEOUT);
	CHECK_MSG(o.elapsed_ms >= 300 && o.elapsed_ms < 5000, "%.0f ms", o.elapsed_ms);
	CHECK_MSG(strstr(o.msg, "300 ms") != NULL, "%s", o.msg);
}

static void halted_guest_times_out(void)
{
	struct outcome o;
	NO_LEAKS_AROUND(
	    o = run_kernel(tiny("halt", tiny_code_halt, sizeof(tiny_code_halt)), 0, 300));
	CHECK(o.failure == VMPROC_FAILURE_TIMEOUT);
	CHECK_MSG(o.elapsed_ms < 5000, "%.0f ms", o.elapsed_ms);
}

static void exit_port_reports_status(void)
{
	struct outcome o;
	NO_LEAKS_AROUND(
	    o = run_kernel(tiny("exit42", tiny_code_exit42, sizeof(tiny_code_exit42)), 0, 10000));
	CHECK_MSG(o.rc == 0, "rc %d: %s", o.rc, o.msg);
	CHECK(o.status == 42);
	CHECK(o.failure == VMPROC_FAILURE_NONE);
}

struct stopper {
	vmproc_vm *vm;
};

static void *stop_later(void *arg)
{
	struct stopper *s = arg;
	struct timespec ts = {0, 200 * 1000 * 1000};
	nanosleep(&ts, NULL);
	vmproc_vm_stop(s->vm);
	return NULL;
}

static void stop_from_another_thread(void)
{
	int fds = open_fds(), thr = threads();
	vmproc_config *cfg;
	vmproc_config_new(&cfg);
	vmproc_config_set_kernel(cfg, tiny("spin2", tiny_code_spin, sizeof(tiny_code_spin)));
	vmproc_vm *vm;
	CHECK(vmproc_vm_new(&vm, cfg) == 0);
	CHECK(vmproc_vm_start(vm) == 0);
	CHECK(vmproc_vm_try_wait(vm, NULL) == -EAGAIN);
	struct stopper s = {vm};
	pthread_t t;
	pthread_create(&t, NULL, stop_later, &s);
	int rc = vmproc_vm_wait(vm, NULL);
	pthread_join(t, NULL);
	CHECK(rc == -ECANCELED);
	CHECK(vmproc_vm_failure(vm) == VMPROC_FAILURE_STOPPED);
	CHECK(vmproc_vm_try_wait(vm, NULL) == -ECANCELED);
	vmproc_vm_free(vm);
	vmproc_config_free(cfg);
	CHECK(open_fds() == fds);
	CHECK(threads_settled(thr) == thr);
}

static void free_while_running_stops_the_vm(void)
{
	int fds = open_fds(), thr = threads();
	vmproc_config *cfg;
	vmproc_config_new(&cfg);
	vmproc_config_set_kernel(cfg, tiny("spin3", tiny_code_spin, sizeof(tiny_code_spin)));
	vmproc_vm *vm;
	CHECK(vmproc_vm_new(&vm, cfg) == 0);
	CHECK(vmproc_vm_start(vm) == 0);
	vmproc_vm_free(vm);
	vmproc_config_free(cfg);
	CHECK(open_fds() == fds);
	CHECK(threads_settled(thr) == thr);
}

struct parallel {
	const char *kernel;
	uint64_t timeout_ms;
	struct outcome out;
};

static void *run_parallel(void *arg)
{
	struct parallel *p = arg;
	p->out = run_kernel(p->kernel, 0, p->timeout_ms);
	return NULL;
}

static void failing_vms_do_not_disturb_others(void)
{
	static char kernels[3][256];
	snprintf(kernels[0], 256, "%s",
	         tiny("p-tf", tiny_code_triple_fault, sizeof(tiny_code_triple_fault)));
	snprintf(kernels[1], 256, "%s", tiny("p-spin", tiny_code_spin, sizeof(tiny_code_spin)));
	snprintf(kernels[2], 256, "%s", tiny("p-exit", tiny_code_exit42, sizeof(tiny_code_exit42)));
	struct parallel p[6];
	pthread_t t[6];
	for (int i = 0; i < 6; i++) {
		p[i] = (struct parallel){.kernel = kernels[i % 3], .timeout_ms = 500};
		pthread_create(&t[i], NULL, run_parallel, &p[i]);
	}
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 6; i += 3) {
		CHECK(p[i].out.failure == VMPROC_FAILURE_TRIPLE_FAULT);
		CHECK(p[i + 1].out.failure == VMPROC_FAILURE_TIMEOUT);
		CHECK(p[i + 2].out.rc == 0 && p[i + 2].out.status == 42);
	}
}

/* Several vCPUs: the VM ends when any of them ends it, and every vCPU
 * thread is gone when vmproc_vm_wait returns, including those of vCPUs
 * the guest never started (blocked in KVM_RUN waiting for a SIPI). */
static void smp_boot_cpu_exit_ends_waiting_aps(void)
{
	struct outcome o;
	NO_LEAKS_AROUND(
	    o = run_kernel_cpus(tiny("smp-exit42", tiny_code_exit42, sizeof(tiny_code_exit42)), 0,
	                        10000, 4));
	CHECK_MSG(o.rc == 0, "rc %d: %s", o.rc, o.msg);
	CHECK(o.status == 42);
}

/* vCPU 0 starts vCPU 1 with INIT and SIPI; vCPU 1, in real mode, writes
 * the exit port while vCPU 0 spins: vCPU 0 must be kicked out of the
 * guest for the VM to end. */
static void smp_started_ap_ends_the_vm(void)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/smp-ap", tmpdir);
	CHECK(tiny_kernel_write_ap(path, tiny_code_start_ap, sizeof(tiny_code_start_ap),
	                           tiny_ap_code_exit7, sizeof(tiny_ap_code_exit7)) == 0);
	struct outcome o;
	NO_LEAKS_AROUND(o = run_kernel_cpus(path, 0, 20000, 2));
	CHECK_MSG(o.rc == 0, "rc %d: %s (%s)", o.rc, o.msg, vmproc_failure_name(o.failure));
	CHECK_MSG(o.status == 7, "status %d", o.status);
	CHECK_MSG(o.elapsed_ms < 10000, "took %.0f ms", o.elapsed_ms);
}

static void smp_timeout_and_stop_end_every_vcpu(void)
{
	struct outcome o;
	NO_LEAKS_AROUND(o = run_kernel_cpus(
	                    tiny("smp-spin", tiny_code_spin, sizeof(tiny_code_spin)), 0, 300, 3));
	CHECK_MSG(o.failure == VMPROC_FAILURE_TIMEOUT, "%s: %s", vmproc_failure_name(o.failure),
	          o.msg);
	int fds = open_fds(), thr = threads();
	vmproc_config *cfg;
	vmproc_config_new(&cfg);
	vmproc_config_set_kernel(cfg, tiny("smp-spin2", tiny_code_spin, sizeof(tiny_code_spin)));
	CHECK(vmproc_config_set_cpus(cfg, 4) == 0);
	vmproc_vm *vm;
	CHECK(vmproc_vm_new(&vm, cfg) == 0);
	CHECK(vmproc_vm_start(vm) == 0);
	struct stopper s = {vm};
	pthread_t t;
	pthread_create(&t, NULL, stop_later, &s);
	CHECK(vmproc_vm_wait(vm, NULL) == -ECANCELED);
	pthread_join(t, NULL);
	CHECK(vmproc_vm_failure(vm) == VMPROC_FAILURE_STOPPED);
	vmproc_vm_free(vm);
	/* Freed while running: stopped and joined too. */
	CHECK(vmproc_vm_new(&vm, cfg) == 0);
	CHECK(vmproc_vm_start(vm) == 0);
	vmproc_vm_free(vm);
	vmproc_config_free(cfg);
	CHECK(open_fds() == fds);
	CHECK(threads_settled(thr) == thr);
}

static void smp_triple_fault_names_the_vcpu(void)
{
	struct outcome o;
	NO_LEAKS_AROUND(o = run_kernel_cpus(
	                    tiny("smp-tf", tiny_code_triple_fault, sizeof(tiny_code_triple_fault)),
	                    0, 10000, 2));
	CHECK(o.failure == VMPROC_FAILURE_TRIPLE_FAULT);
	CHECK_MSG(strstr(o.msg, "on vCPU 0") != NULL, "%s", o.msg);
}

static void cpu_count_limits(void)
{
	vmproc_config *cfg;
	CHECK(vmproc_config_new(&cfg) == 0);
	CHECK(vmproc_config_set_cpus(cfg, 0) == -EINVAL);
	CHECK(strstr(vmproc_config_error(cfg), "1..64") != NULL);
	CHECK(vmproc_config_set_cpus(cfg, 65) == -EINVAL);
	CHECK(vmproc_config_set_cpus(cfg, 64) == 0);
	CHECK(vmproc_config_set_cpus(cfg, 1) == 0);
	CHECK(vmproc_config_set_cpus(NULL, 2) == -EINVAL);
	vmproc_config_free(cfg);
}

static void cleanup(void)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

static void setup_tmpdir(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(2);
	}
	atexit(cleanup);
}

#undef TEST_MAIN
int main(int argc, char **argv)
{
	setup_tmpdir();
	static const struct harness_test tests[] = {
	    T(missing_kernel_is_a_setup_error),
	    T(empty_kernel_is_rejected),
	    T(text_file_is_not_a_kernel),
	    T(truncated_kernel_is_rejected),
	    T(host_program_is_not_a_kernel),
	    T(too_little_memory_is_a_clear_error),
	    T(triple_fault_is_reported_with_rip),
	    T(unemulated_instruction_names_rip),
	    T(spinning_guest_times_out),
	    T(halted_guest_times_out),
	    T(exit_port_reports_status),
	    T(stop_from_another_thread),
	    T(free_while_running_stops_the_vm),
	    T(failing_vms_do_not_disturb_others),
	    T(smp_boot_cpu_exit_ends_waiting_aps),
	    T(smp_started_ap_ends_the_vm),
	    T(smp_timeout_and_stop_end_every_vcpu),
	    T(smp_triple_fault_names_the_vcpu),
	    T(cpu_count_limits),
	};
	return harness_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
