/* What the process holds, for the e2e tests' leak checks: entries of
 * /proc/self/fd and /proc/self/task. */
#ifndef VMP_TESTS_PROC_COUNTS_H
#define VMP_TESTS_PROC_COUNTS_H

#include <dirent.h>
#include <time.h>

static inline int count_dir(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* The count of entries in path once it is back to expected (or after
 * 3 s): pthread_join returns when the kernel clears the thread's tid, a
 * moment before the thread leaves /proc/self/task. */
static inline int settled(const char *path, int expected)
{
	int n = count_dir(path);
	for (int i = 0; i < 300 && n != expected; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
		n = count_dir(path);
	}
	return n;
}

#endif
