/* Error reporting inside the library: a negative errno-style code plus a
 * human-readable message kept on the object that failed. Nothing here
 * prints or exits. */
#ifndef VMP_UTIL_ERROR_H
#define VMP_UTIL_ERROR_H

#include <stddef.h>

#define VMP_ERROR_MAX 512

struct vmp_error {
	int code;                 /* 0 or a negative errno value */
	char msg[VMP_ERROR_MAX];  /* "" when code == 0 */
};

/* Records code (negative errno) and a formatted message; returns code so
 * callers can write `return vmp_fail(err, -EINVAL, "...")`. err may be
 * NULL. A message already recorded is kept: the first cause wins. */
int vmp_fail(struct vmp_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like vmp_fail, appending ": strerror(-code)". */
int vmp_fail_errno(struct vmp_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void vmp_error_clear(struct vmp_error *err);

#endif
