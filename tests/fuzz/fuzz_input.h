/* What every libFuzzer target in tests/fuzz/ shares: reading the input
 * (little-endian integers; past its end, zeros), failing an invariant
 * (a message on stderr, then abort(): libFuzzer keeps the input),
 * counting the host fds open in the process, for the leak checks, and a
 * private directory for the host files a target serves.
 *
 * Define FUZZ_NAME (the target's name, for messages) before including. */
#ifndef VMP_TESTS_FUZZ_INPUT_H
#define VMP_TESTS_FUZZ_INPUT_H

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_NAME
#error "define FUZZ_NAME before including fuzz_input.h"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, FUZZ_NAME ": invariant violated: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

/* For the harness's own setup: what failed is not the code under test. */
static inline void must(bool ok, const char *what)
{
	if (!ok) {
		perror(what);
		abort();
	}
}

struct input {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t get8(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint16_t get16(struct input *in)
{
	uint16_t lo = get8(in);
	return (uint16_t)(lo | (uint16_t)get8(in) << 8);
}

static inline uint32_t get32(struct input *in)
{
	uint32_t lo = get16(in);
	return lo | (uint32_t)get16(in) << 16;
}

static inline uint64_t get64(struct input *in)
{
	uint64_t lo = get32(in);
	return lo | (uint64_t)get32(in) << 32;
}

/* Up to n bytes of the input (fewer at its end). */
static inline const uint8_t *take(struct input *in, size_t *n)
{
	if (*n > in->n)
		*n = in->n;
	const uint8_t *p = in->p;
	in->p += *n;
	in->n -= *n;
	return p;
}

/* How many fds the process has open (the entries of /proc/self/fd,
 * without the one reading it). */
static inline int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	must(d != NULL, "/proc/self/fd");
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* Makes a private temporary directory in dir (n bytes, at least 32): on
 * tmpfs if there is one, as targets rewrite files for every input.
 * cleanup, which should remove it, runs at exit; a crash leaves it, and
 * tests/fuzz/run.sh removes it by the line printed here. */
static inline void private_dir(char *dir, size_t n, void (*cleanup)(void))
{
	snprintf(dir, n, "/dev/shm/vmproc-fuzz-XXXXXX");
	if (!mkdtemp(dir)) {
		snprintf(dir, n, "/tmp/vmproc-fuzz-XXXXXX");
		must(mkdtemp(dir) != NULL, "mkdtemp");
	}
	atexit(cleanup);
	fprintf(stderr, FUZZ_NAME ": host tree in %s\n", dir);
}

#endif
