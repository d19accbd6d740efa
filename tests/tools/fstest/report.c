/* fstest's reporting: one PASS, FAIL or SKIP line per case, INFO lines,
 * and the summary. */
#include "fstest.h"

/* --- reporting ------------------------------------------------------------ */

static int n_passed, n_failed;
const char *cur_case = "setup";
int cur_done; /* the running case has failed or skipped */

static void report(const char *kind, int with_errno, int err, const char *fmt, va_list ap)
{
	printf("%s %s: ", kind, cur_case);
	vprintf(fmt, ap);
	if (with_errno)
		printf(" (%s)", strerror(err));
	putchar('\n');
}

void failf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report("FAIL", 0, 0, fmt, ap);
	va_end(ap);
	n_failed++;
	cur_done = 1;
}

/* A FAIL with errno's text appended. */
void faile(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	report("FAIL", 1, err, fmt, ap);
	va_end(ap);
	n_failed++;
	cur_done = 1;
}

void skipf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report("SKIP", 0, 0, fmt, ap);
	va_end(ap);
	cur_done = 1;
}

void infof(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report("INFO", 0, 0, fmt, ap);
	va_end(ap);
}

/* Runs one case: PASS unless it reported a FAIL or a SKIP. */
void run_case(const char *name, void (*fn)(void))
{
	cur_case = name;
	cur_done = 0;
	fn();
	if (!cur_done) {
		printf("PASS %s\n", name);
		n_passed++;
	}
}

int summary(void)
{
	printf("fstest: %d passed, %d failed\n", n_passed, n_failed);
	return n_failed ? 1 : 0;
}
