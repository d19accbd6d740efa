/* A minimal test harness. Each TEST is a function; CHECK records a failure
 * with its location and keeps going. Every test prints one line:
 *   PASS name        or        FAIL name: file:line: what
 * and tests/run.sh counts those lines for the suite's summary. The one
 * harness of the C tests: tests/unit, tests/guest and, through
 * tests/e2e/scenarios.h, tests/e2e. */
#ifndef VMP_TESTS_HARNESS_H
#define VMP_TESTS_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int harness_failed_checks;
static char harness_first_failure[2048];

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			if (!harness_failed_checks++)                                              \
				snprintf(harness_first_failure, sizeof(harness_first_failure),     \
				         "%s:%d: %s", __FILE__, __LINE__, #cond);                  \
		}                                                                                  \
	} while (0)

#define CHECK_MSG(cond, ...)                                                                       \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			if (!harness_failed_checks++) {                                            \
				int n_ =                                                           \
				    snprintf(harness_first_failure, sizeof(harness_first_failure), \
				             "%s:%d: %s: ", __FILE__, __LINE__, #cond);            \
				if (n_ > 0 && (size_t)n_ < sizeof(harness_first_failure))          \
					snprintf(harness_first_failure + n_,                       \
					         sizeof(harness_first_failure) - (size_t)n_,       \
					         __VA_ARGS__);                                     \
			}                                                                          \
		}                                                                                  \
	} while (0)

struct harness_test {
	const char *name;
	void (*fn)(void);
};

static int harness_run(const struct harness_test *tests, size_t n, int argc, char **argv)
{
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (argc > 1 && !strstr(tests[i].name, argv[1]))
			continue;
		harness_failed_checks = 0;
		harness_first_failure[0] = '\0';
		tests[i].fn();
		if (harness_failed_checks) {
			failed++;
			printf("FAIL %s: %s\n", tests[i].name, harness_first_failure);
		} else {
			printf("PASS %s\n", tests[i].name);
		}
		fflush(stdout);
	}
	return failed ? 1 : 0;
}

/* Makes a private temporary directory $TMPDIR/<prefix>-XXXXXX (TMPDIR
 * unset: /tmp) into buf, once: later calls keep the one made. 0 or -1. */
static inline int harness_temp_dir(char *buf, size_t len, const char *prefix)
{
	if (buf[0])
		return 0;
	const char *tmp = getenv("TMPDIR");
	snprintf(buf, len, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
	if (!mkdtemp(buf)) {
		buf[0] = 0;
		return -1;
	}
	return 0;
}

#define TEST_LIST(...)                                                                             \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		static const struct harness_test tests_[] = {__VA_ARGS__};                         \
		return harness_run(tests_, sizeof(tests_) / sizeof(tests_[0]), argc, argv);        \
	}
#define T(fn)                                                                                      \
	{                                                                                          \
#fn, fn                                                                            \
	}

#endif
