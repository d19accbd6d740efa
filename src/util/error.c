#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int record(struct vmp_error *err, int code, const char *suffix,
		  const char *fmt, va_list ap)
{
	if (!err || err->code != 0)
		return code;
	err->code = code;
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (suffix && n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", suffix);
	return code;
}

int vmp_fail(struct vmp_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	record(err, code, NULL, fmt, ap);
	va_end(ap);
	return code;
}

int vmp_fail_errno(struct vmp_error *err, int code, const char *fmt, ...)
{
	char buf[128];
	/* strerror_r (XSI or GNU) is awkward to use portably; strerror is
	 * not thread-safe in theory but glibc's is for known errno values.
	 * Use the GNU variant explicitly through a helper. */
	const char *s = buf;
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
	s = strerror_r(-code, buf, sizeof(buf));
#else
	if (strerror_r(-code, buf, sizeof(buf)) != 0)
		snprintf(buf, sizeof(buf), "error %d", -code);
#endif
	va_list ap;
	va_start(ap, fmt);
	record(err, code, s, fmt, ap);
	va_end(ap);
	return code;
}

void vmp_error_clear(struct vmp_error *err)
{
	err->code = 0;
	err->msg[0] = '\0';
}
