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

void vmp_error_context(struct vmp_error *err, const char *fmt, ...)
{
	if (!err || err->code == 0)
		return;
	char prefix[VMP_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	char both[2 * VMP_ERROR_MAX + 2];
	int m = snprintf(both, sizeof(both), "%s: %s", prefix, err->msg);
	size_t len = m < 0 ? 0 : (size_t)m < sizeof(err->msg) ? (size_t)m : sizeof(err->msg) - 1;
	memcpy(err->msg, both, len);
	err->msg[len] = '\0';
}

void vmp_error_clear(struct vmp_error *err)
{
	err->code = 0;
	err->msg[0] = '\0';
}
