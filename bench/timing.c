/* Timing helpers for run_vs_native.sh, which builds this file itself.
 *
 *   timing spawn N PROGRAM [ARGS...]
 *       runs PROGRAM N times, one after the other, with fork + execv +
 *       waitpid, and prints each run's wall time in ms, one a line. Fails
 *       if a run does not exit 0.
 *   timing read
 *       reads standard input to its end and prints "BYTES FIRST SPAN_NS":
 *       the bytes read, how many the first read returned, and the time
 *       from the first read that returned data to the last one. So the
 *       time before the first byte (a VM's boot) and after the last (its
 *       teardown) is left out: (BYTES - FIRST) / SPAN is the rate.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int spawn(long n, char **argv)
{
	for (long i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		pid_t pid = fork();
		if (pid < 0) {
			perror("timing: fork");
			return 1;
		}
		if (pid == 0) {
			execv(argv[0], argv);
			perror(argv[0]);
			_exit(127);
		}
		int ws;
		while (waitpid(pid, &ws, 0) < 0) {
			if (errno != EINTR) {
				perror("timing: waitpid");
				return 1;
			}
		}
		uint64_t t1 = now_ns();
		if (!WIFEXITED(ws) || WEXITSTATUS(ws)) {
			fprintf(stderr, "timing: %s did not exit 0\n", argv[0]);
			return 1;
		}
		printf("%.4f\n", (double)(t1 - t0) / 1e6);
	}
	return 0;
}

static int read_all(void)
{
	static char buf[1 << 20];
	uint64_t bytes = 0, first = 0, t_first = 0, t_last = 0;
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("timing: read");
			return 1;
		}
		if (n == 0)
			break;
		t_last = now_ns();
		if (!bytes) {
			t_first = t_last;
			first = (uint64_t)n;
		}
		bytes += (uint64_t)n;
	}
	printf("%llu %llu %llu\n", (unsigned long long)bytes, (unsigned long long)first,
	       (unsigned long long)(t_last - t_first));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "spawn"))
		return spawn(strtol(argv[2], NULL, 10), argv + 3);
	if (argc == 2 && !strcmp(argv[1], "read"))
		return read_all();
	fprintf(stderr, "usage: timing spawn N PROGRAM [ARGS...] | timing read\n");
	return 2;
}
