/* Error reporting inside the library: a negative errno-style code plus a
 * human-readable message kept on the object that failed. Nothing here
 * prints or exits. */
#ifndef VMP_UTIL_ERROR_H
#define VMP_UTIL_ERROR_H

#include <stddef.h>

#define VMP_ERROR_MAX 512

struct vmp_error {
	int code;                /* 0 or a negative errno value */
	char msg[VMP_ERROR_MAX]; /* "" when code == 0 */
};

/* Records code (negative errno) and a formatted message. err may be
 * NULL. A message already recorded is kept: the first cause wins. */
void vmp_error_set(struct vmp_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like vmp_error_set, appending ": strerror(-code)". */
void vmp_error_set_errno(struct vmp_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record and evaluate to code, so callers write
 * `return vmp_fail(err, -EINVAL, "...")`. code is evaluated once, before
 * anything can change errno. Macros, so that static analysis sees the
 * value returned is code (always negative) across translation units. */
#define vmp_fail(err, code, ...)                                                                   \
	__extension__({                                                                            \
		int vmp_code_ = (code);                                                            \
		vmp_error_set((err), vmp_code_, __VA_ARGS__);                                      \
		vmp_code_;                                                                         \
	})
#define vmp_fail_errno(err, code, ...)                                                             \
	__extension__({                                                                            \
		int vmp_code_ = (code);                                                            \
		vmp_error_set_errno((err), vmp_code_, __VA_ARGS__);                                \
		vmp_code_;                                                                         \
	})

/* Puts the context of the failure ahead of its cause, so a message reads
 * from the outermost step inward: "restoring snapshot: vCPU 0: KVM_SET_
 * SREGS: Invalid argument". Only on a recorded failure; err may be NULL. */
void vmp_error_context(struct vmp_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void vmp_error_clear(struct vmp_error *err);

#endif
