/* Boots the real guest (the project's kernel and initramfs). Guest boots
 * are slow on hosts that emulate guest-kernel code, so the VMs of this
 * file run concurrently, in one process, in one test round:
 *   plain    boots to init and powers off: status 0, a complete trace
 *   program  init runs a shell command: its output reaches the console
 *            callback and its exit status reaches the host
 *   panic    no init can be found: the kernel panics, the VM reports it
 *            and the other VMs are unaffected
 *   smp      two vCPUs: the guest kernel starts the second one and a
 *            program in the guest counts two processors */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "harness.h"
#include "vmproc.h"

#define BOOT_TIMEOUT_MS (10 * 60 * 1000)

struct console {
	pthread_mutex_t lock;
	char text[65536];
	size_t len;
};

static void on_console(const void *data, size_t len, void *userdata)
{
	struct console *c = userdata;
	pthread_mutex_lock(&c->lock);
	size_t room = sizeof(c->text) - 1 - c->len;
	if (len > room)
		len = room;
	memcpy(c->text + c->len, data, len);
	c->len += len;
	c->text[c->len] = '\0';
	pthread_mutex_unlock(&c->lock);
}

struct boot {
	const char *name;
	const char *cmdline;
	unsigned cpus; /* 0: the default */
	int rc, status;
	vmproc_failure failure;
	char error[512];
	char trace[8192];
	double ms_ready, ms_exit;
	struct console console;
};

static void *boot_thread(void *arg)
{
	struct boot *b = arg;
	vmproc_config *cfg = NULL;
	vmproc_vm *vm = NULL;
	b->rc = -999;
	pthread_mutex_init(&b->console.lock, NULL);
	if (vmproc_config_new(&cfg) || vmproc_config_set_timeout_ms(cfg, BOOT_TIMEOUT_MS) ||
	    vmproc_config_set_console(cfg, on_console, &b->console) ||
	    (b->cmdline && vmproc_config_set_cmdline_extra(cfg, b->cmdline)) ||
	    (b->cpus && vmproc_config_set_cpus(cfg, b->cpus)) || vmproc_vm_new(&vm, cfg))
		goto out;
	b->rc = vmproc_vm_start(vm);
	if (!b->rc)
		b->rc = vmproc_vm_wait(vm, &b->status);
	b->failure = vmproc_vm_failure(vm);
	snprintf(b->error, sizeof(b->error), "%s", vmproc_vm_error(vm));
	vmproc_vm_format_trace(vm, b->trace, sizeof(b->trace));
	b->ms_ready = vmproc_vm_ms_to_ready(vm);
	b->ms_exit = vmproc_vm_ms_to_exit(vm);
out:
	vmproc_vm_free(vm);
	vmproc_config_free(cfg);
	return NULL;
}

static struct boot boots[] = {
    {.name = "plain"},
    {.name = "program", .cmdline = "-- /bin/sh -c \"echo hello-from-guest; exit 7\""},
    {.name = "panic", .cmdline = "rdinit=/does-not-exist"},
    {.name = "smp",
     .cpus = 2,
     .cmdline =
         "-- /bin/sh -c \"n=$(grep -c ^processor /proc/cpuinfo); echo cpus=$n; test $n = 2\""},
};
#define NBOOTS (sizeof(boots) / sizeof(boots[0]))

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

static int fds_before, fds_after;

static void boot_all_concurrently(void)
{
	pthread_t t[NBOOTS];
	fds_before = count_fds();
	for (size_t i = 0; i < NBOOTS; i++)
		pthread_create(&t[i], NULL, boot_thread, &boots[i]);
	for (size_t i = 0; i < NBOOTS; i++)
		pthread_join(t[i], NULL);
	fds_after = count_fds();
	for (size_t i = 0; i < NBOOTS; i++)
		printf("  %s: rc %d status %d failure %s ready %.0f ms exit %.0f ms %s\n",
		       boots[i].name, boots[i].rc, boots[i].status,
		       vmproc_failure_name(boots[i].failure), boots[i].ms_ready, boots[i].ms_exit,
		       boots[i].error);
}

static void boots_to_init_and_powers_off(void)
{
	struct boot *b = &boots[0];
	CHECK_MSG(b->rc == 0, "rc %d: %s", b->rc, b->error);
	CHECK(b->status == 0);
	CHECK(b->failure == VMPROC_FAILURE_NONE);
	CHECK(b->ms_ready > 0 && b->ms_exit >= b->ms_ready);
}

static void trace_names_every_phase(void)
{
	const char *t = boots[0].trace;
	CHECK(strstr(t, "load kernel") != NULL);
	CHECK(strstr(t, "first guest instruction") != NULL);
	CHECK(strstr(t, "guest init ready") != NULL);
	CHECK(strstr(t, "guest poweroff") != NULL);
	CHECK(strstr(t, "not reached") == NULL);
	CHECK(strstr(t, "VM exits:") != NULL && strstr(t, "mmio") != NULL);
}

static void program_status_and_output_reach_host(void)
{
	struct boot *b = &boots[1];
	CHECK_MSG(b->rc == 0, "rc %d: %s", b->rc, b->error);
	CHECK_MSG(b->status == 7, "status %d", b->status);
	CHECK_MSG(strstr(b->console.text, "hello-from-guest") != NULL, "console: %.300s",
	          b->console.text);
}

static void kernel_panic_is_reported(void)
{
	struct boot *b = &boots[2];
	CHECK(b->rc < 0);
	CHECK_MSG(b->failure == VMPROC_FAILURE_GUEST_PANIC, "%s: %s",
	          vmproc_failure_name(b->failure), b->error);
	CHECK_MSG(strstr(b->error, "guest kernel panic: ") != NULL, "%s", b->error);
	CHECK(b->ms_ready < 0); /* init never ran */
}

static void guest_sees_two_cpus(void)
{
	struct boot *b = &boots[3];
	CHECK_MSG(b->rc == 0, "rc %d: %s", b->rc, b->error);
	CHECK_MSG(b->status == 0, "status %d; console: %.300s", b->status, b->console.text);
	CHECK_MSG(strstr(b->console.text, "cpus=2") != NULL, "console: %.300s", b->console.text);
	CHECK(strstr(b->trace, "vCPU threads (2)") != NULL);
}

static void vms_release_their_fds(void)
{
	CHECK_MSG(fds_after == fds_before, "%d fds before, %d after", fds_before, fds_after);
}

int main(int argc, char **argv)
{
	boot_all_concurrently();
	static const struct harness_test tests[] = {
	    T(boots_to_init_and_powers_off),
	    T(trace_names_every_phase),
	    T(program_status_and_output_reach_host),
	    T(kernel_panic_is_reported),
	    T(guest_sees_two_cpus),
	    T(vms_release_their_fds),
	};
	return harness_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
