/* Guests that misbehave on purpose (tests/e2e/hostile/hostile_init.c as
 * their init, booted cold): whatever the guest does, the VM ends at its
 * timeout, the caller's wait returns, and the process keeps its fds. A
 * watchdog turns a hung host into a failure instead of a hung suite. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "vmproc.h"

#ifndef HOSTILE_INITRD
#define HOSTILE_INITRD "build/hostile-initramfs.cpio"
#endif
/* Far beyond a cold boot to init (about 6-20 s where the guest kernel is
 * emulated, more under load and sanitizers). */
#define TIMEOUT_MS (60 * 1000)
#define WATCHDOG_S (TIMEOUT_MS / 1000 + 300)

static void *watchdog(void *arg)
{
	const char *name = arg;
	sleep(WATCHDOG_S);
	printf("FAIL %s: the host still waits %d s after a %d s timeout\n", name, WATCHDOG_S,
	       TIMEOUT_MS / 1000);
	fflush(stdout);
	_exit(1);
}

struct ran {
	const char *mode;
	int rc;
	vmproc_status st;
	char err[512];
	char out[64]; /* the start of what the guest wrote on stdout */
	double seconds;
	int setup_failed;
};

/* Boots the hostile init in mode r->mode (a thread of its own). */
static void *run_hostile(void *arg)
{
	struct ran *r = arg;
	vmproc_config *cfg = NULL;
	vmproc_cmd *cmd = NULL;
	vmproc_child *c = NULL;
	char words[64];
	snprintf(words, sizeof(words), "-- %s", r->mode);
	r->setup_failed =
	    vmproc_config_new(&cfg) || vmproc_config_set_initrd(cfg, HOSTILE_INITRD) ||
	    vmproc_config_set_cmdline_extra(cfg, words) ||
	    vmproc_config_set_timeout_ms(cfg, TIMEOUT_MS) || vmproc_cmd_new(&cmd, "/bin/true") ||
	    vmproc_cmd_snapshot(cmd, VMPROC_SNAPSHOT_NEVER) ||
	    vmproc_cmd_stdio_capture(cmd, VMPROC_STDOUT) || vmproc_cmd_capture_limit(cmd, 1 << 20);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r->rc = r->setup_failed ? -EINVAL : vmproc_spawn(cmd, cfg, &c);
	if (r->rc)
		snprintf(r->err, sizeof(r->err), "spawn: %s", cmd ? vmproc_cmd_error(cmd) : "");
	else
		r->rc = vmproc_child_wait(c, &r->st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (c) {
		snprintf(r->err, sizeof(r->err), "%s", vmproc_child_error(c));
		const char *out = vmproc_child_output(c, VMPROC_STDOUT, NULL);
		snprintf(r->out, sizeof(r->out), "%s", out ? out : "");
	}
	vmproc_child_free(c);
	vmproc_cmd_free(cmd);
	vmproc_config_free(cfg);
	return NULL;
}

static int open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 4096; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* Every mode boots at once (each boot is slow where the guest kernel is
 * emulated); the tests below then look at what each saw. */
static struct ran runs[] = {
    {.mode = "wait"}, {.mode = "zero-len-control"}, {.mode = "flood-stdout"}};
#define NRUNS (sizeof(runs) / sizeof(runs[0]))
static int fds_before, fds_after;

static void run_all(void)
{
	static int done;
	if (done++)
		return;
	pthread_t w, t[NRUNS];
	pthread_create(&w, NULL, watchdog, "test_hostile");
	fds_before = open_fds();
	for (size_t i = 0; i < NRUNS; i++)
		pthread_create(&t[i], NULL, run_hostile, &runs[i]);
	for (size_t i = 0; i < NRUNS; i++)
		pthread_join(t[i], NULL);
	fds_after = open_fds();
	pthread_cancel(w);
	pthread_join(w, NULL);
}

static void ends_at_timeout(const char *mode)
{
	run_all();
	struct ran *r = NULL;
	for (size_t i = 0; i < NRUNS; i++)
		if (!strcmp(runs[i].mode, mode))
			r = &runs[i];
	CHECK(r && !r->setup_failed);
	if (!r)
		return;
	/* The init ran (it says so first), and the VM ended at its timeout. */
	char hello[64];
	snprintf(hello, sizeof(hello), "hostile:%s\n", mode);
	CHECK_MSG(!strncmp(r->out, hello, strlen(hello)), "%s: the init never ran: stdout '%s'",
	          mode, r->out);
	CHECK_MSG(r->st.failure == VMPROC_FAILURE_TIMEOUT, "%s: rc %d failure %s after %.1f s: %s",
	          mode, r->rc, vmproc_failure_name(r->st.failure), r->seconds, r->err);
	CHECK_MSG(r->seconds < TIMEOUT_MS / 1000 + 60, "%s: ended after %.1f s", mode, r->seconds);
	CHECK_MSG(fds_after == fds_before, "%d fds before, %d after", fds_before, fds_after);
}

/* The control case: an init that only waits is stopped at the timeout. */
static void waiting_init_ends_at_timeout(void)
{
	ends_at_timeout("wait");
}

/* A control message whose header says len 0, then any byte: this hung
 * the vCPU thread with the transport lock held, out of reach of stop and
 * the timeout. */
static void zero_length_control_message_ends_at_timeout(void)
{
	ends_at_timeout("zero-len-control");
}

/* Output without end into a capture: kept to the limit, VM ended on time. */
static void stdout_flood_ends_at_timeout(void)
{
	ends_at_timeout("flood-stdout");
}

TEST_LIST(T(waiting_init_ends_at_timeout), T(zero_length_control_message_ends_at_timeout),
          T(stdout_flood_ends_at_timeout))
