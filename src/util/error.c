#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void record(struct vmp_error *err, int code, const char *suffix, const char *fmt, va_list ap)
{
	if (!err || err->code != 0)
		return;
	err->code = code;
	/* The analyzer cannot follow va_start across the call. */
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (suffix && n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", suffix);
}

void vmp_error_set(struct vmp_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	record(err, code, NULL, fmt, ap);
	va_end(ap);
}

void vmp_error_set_errno(struct vmp_error *err, int code, const char *fmt, ...)
{
	char buf[128];
	/* The GNU strerror_r: thread-safe, returns the message it chose. */
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
	const char *s = strerror_r(-code, buf, sizeof(buf));
#else
	const char *s = buf;
	if (strerror_r(-code, buf, sizeof(buf)) != 0)
		snprintf(buf, sizeof(buf), "error %d", -code);
#endif
	va_list ap;
	va_start(ap, fmt);
	record(err, code, s, fmt, ap);
	va_end(ap);
}

void vmp_error_clear(struct vmp_error *err)
{
	err->code = 0;
	err->msg[0] = '\0';
}
