/* End-to-end scenarios that run concurrently: guest boots (or restores)
 * are slow where the KVM emulates guest-kernel code, so a test program
 * runs all its scenarios in one round, a few VMs at a time, each on its
 * own thread, and its TEST functions then report each scenario's outcome.
 * Shared by the e2e test programs (header-only, like harness.h). */
#ifndef VMP_TESTS_SCENARIOS_H
#define VMP_TESTS_SCENARIOS_H

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "proc_counts.h"
#include "vmproc.h"

#define TIMEOUT_MS (15 * 60 * 1000) /* a safety net only: boots may be slow */

struct scenario {
	const char *name;
	void (*fn)(struct scenario *s);
	int failed;
	char why[1024];
};

/* Records the first failure of a scenario (scenarios run concurrently, so
 * they cannot use the harness's global CHECK). */
static void sfail(struct scenario *s, const char *file, int line, const char *cond, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));
static void sfail(struct scenario *s, const char *file, int line, const char *cond, const char *fmt,
                  ...)
{
	if (s->failed++)
		return;
	int n = snprintf(s->why, sizeof(s->why), "%s:%d: %s: ", file, line, cond);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(s->why))
		vsnprintf(s->why + n, sizeof(s->why) - (size_t)n, fmt, ap);
	va_end(ap);
}
#define SCHECK(s, cond, ...)                                                                       \
	do {                                                                                       \
		if (!(cond))                                                                       \
			sfail((s), __FILE__, __LINE__, #cond, __VA_ARGS__);                        \
	} while (0)

static vmproc_config *config(uint64_t timeout_ms)
{
	vmproc_config *cfg = NULL;
	if (vmproc_config_new(&cfg) || vmproc_config_set_timeout_ms(cfg, timeout_ms)) {
		vmproc_config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* A command with arguments, NULL-terminated. */
static vmproc_cmd *command(const char *program, ...)
{
	vmproc_cmd *cmd;
	if (vmproc_cmd_new(&cmd, program))
		return NULL;
	va_list ap;
	va_start(ap, program);
	for (const char *a; (a = va_arg(ap, const char *));)
		vmproc_cmd_arg(cmd, a);
	va_end(ap);
	return cmd;
}

static const char *status_text(int rc, const vmproc_status *st, vmproc_child *c, char *buf,
                               size_t len)
{
	snprintf(buf, len, "rc %d exited %d code %d signal %d exec_errno %d failure %s: %s", rc,
	         st->exited, st->code, st->signal, st->exec_errno, vmproc_failure_name(st->failure),
	         c ? vmproc_child_error(c) : "");
	return buf;
}

/* vmproc_output, and the captured streams as strings. */
struct ran {
	int rc;
	vmproc_status st;
	vmproc_child *child;
	const char *out, *err;
	size_t out_len, err_len;
	char text[1024];
};

static void run_output(struct scenario *s, vmproc_cmd *cmd, struct ran *r)
{
	memset(r, 0, sizeof(*r));
	vmproc_config *cfg = config(TIMEOUT_MS);
	SCHECK(s, cmd && cfg, "setup");
	r->rc = cmd && cfg ? vmproc_output(cmd, cfg, &r->st, &r->child) : -EINVAL;
	vmproc_config_free(cfg);
	SCHECK(s, r->child, "spawn failed: %s", cmd ? vmproc_cmd_error(cmd) : "");
	r->out = vmproc_child_output(r->child, VMPROC_STDOUT, &r->out_len);
	r->err = vmproc_child_output(r->child, VMPROC_STDERR, &r->err_len);
	if (!r->out)
		r->out = "";
	if (!r->err)
		r->err = "";
	status_text(r->rc, &r->st, r->child, r->text, sizeof(r->text));
}

static void ran_free(struct ran *r, vmproc_cmd *cmd)
{
	vmproc_child_free(r->child);
	vmproc_cmd_free(cmd);
}

/* One round: the scenarios, how many run at once, and what it saw. */
struct scenario_round {
	struct scenario *list;
	size_t n;
	int at_once;
	bool done;
	int running, most_running;
	int fds_before, fds_after, threads_before, threads_after;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

struct scenario_thread_arg {
	struct scenario_round *r;
	struct scenario *s;
};

static void *scenario_thread(void *arg)
{
	struct scenario_thread_arg *a = arg;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	a->s->fn(a->s);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* Progress on stderr: the PASS/FAIL lines come after the round. */
	fprintf(stderr, "# %s: %s after %.1f s\n", a->s->name, a->s->failed ? "failed" : "done",
	        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	pthread_mutex_lock(&a->r->lock);
	a->r->running--;
	pthread_cond_broadcast(&a->r->cond);
	pthread_mutex_unlock(&a->r->lock);
	return NULL;
}

/* Runs every scenario whose name contains filter (NULL: all), at_once at
 * a time; only the first call does anything. */
static void scenario_round_run(struct scenario_round *r, const char *filter)
{
	if (r->done)
		return;
	r->done = true;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->fds_before = count_dir("/proc/self/fd");
	r->threads_before = count_dir("/proc/self/task");
	pthread_t *t = calloc(r->n, sizeof(*t));
	struct scenario_thread_arg *args = calloc(r->n, sizeof(*args));
	bool *started = calloc(r->n, sizeof(*started));
	for (size_t i = 0; t && args && started && i < r->n; i++) {
		if (filter && !strstr(r->list[i].name, filter))
			continue;
		pthread_mutex_lock(&r->lock);
		while (r->running >= r->at_once)
			pthread_cond_wait(&r->cond, &r->lock);
		r->running++;
		if (r->running > r->most_running)
			r->most_running = r->running;
		pthread_mutex_unlock(&r->lock);
		args[i] = (struct scenario_thread_arg){r, &r->list[i]};
		started[i] = pthread_create(&t[i], NULL, scenario_thread, &args[i]) == 0;
		if (!started[i]) {
			r->list[i].failed = 1;
			snprintf(r->list[i].why, sizeof(r->list[i].why), "no thread");
			pthread_mutex_lock(&r->lock);
			r->running--;
			pthread_mutex_unlock(&r->lock);
		}
	}
	for (size_t i = 0; t && args && started && i < r->n; i++)
		if (started[i])
			pthread_join(t[i], NULL);
	free(t);
	free(args);
	free(started);
	r->fds_after = settled("/proc/self/fd", r->fds_before);
	r->threads_after = settled("/proc/self/task", r->threads_before);
}

static const struct scenario *scenario_find(const struct scenario_round *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->list[i].name, name) == 0)
			return &r->list[i];
	return NULL;
}

/* Runs the round if it has not run, then records scenario name's outcome
 * with the harness (CHECK_MSG): a TEST function's body. */
static void scenario_check(struct scenario_round *r, const char *filter, const char *name)
{
	scenario_round_run(r, filter);
	const struct scenario *sc = scenario_find(r, name);
	CHECK_MSG(sc && !sc->failed, "%s", sc ? sc->why : "no such scenario");
}

/* The TEST function name_test for scenario name, in a file that defines
 * its round as round_ and its name filter as filter. */
#define SCENARIO_TEST(name)                                                                        \
	static void name##_test(void)                                                              \
	{                                                                                          \
		scenario_check(&round_, filter, #name);                                            \
	}

#endif
