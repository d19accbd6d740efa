/* Helpers for arrays of struct iovec: their total length, copies between
 * an iovec array (from a byte offset into it) and a flat buffer, a view
 * of a byte range as a shorter iovec array, and dropping bytes from the
 * front. None of them allocates; every offset and length is bounded by
 * what the array holds. */
#ifndef VMP_UTIL_IOV_H
#define VMP_UTIL_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* The bytes iov[0..n) cover. */
size_t iov_total(const struct iovec *iov, unsigned n);

/* Copies up to len bytes starting off bytes into iov[0..n) to buf;
 * returns the bytes copied (fewer when the array ends first). */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len);
/* Copies up to len bytes of buf into iov[0..n) starting off bytes into
 * it; returns the bytes copied. */
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len);

/* Fills dst[0..max) with the pieces of iov[0..n) that hold bytes
 * [off, off + len): pointers into the same memory, nothing copied.
 * Returns their count; *got is the bytes they cover (less than len when
 * iov ends first or max pieces are not enough). */
unsigned iov_slice(struct iovec *dst, unsigned max, const struct iovec *iov, unsigned n, size_t off,
                   size_t len, size_t *got);

/* Drops the first len bytes of the array *iov of n pieces: whole pieces
 * by moving *iov on, part of one by adjusting it in place. Returns the
 * pieces left. */
unsigned iov_advance(struct iovec **iov, unsigned n, size_t len);

#endif
