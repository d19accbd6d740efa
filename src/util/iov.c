#include "util/iov.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

size_t iov_total(const struct iovec *iov, unsigned n)
{
	size_t total = 0;
	for (unsigned i = 0; i < n; i++)
		total += iov[i].iov_len;
	return total;
}

/* A walk over the pieces of an iovec array that hold a byte range. */
struct range {
	const struct iovec *iov;
	unsigned n, i;
	size_t off;  /* bytes still to skip */
	size_t left; /* bytes of the range still to visit */
};

/* The next piece of the range: false once it or the array ends. */
static bool next_piece(struct range *r, uint8_t **p, size_t *len)
{
	while (r->i < r->n && r->left) {
		const struct iovec *v = &r->iov[r->i++];
		if (r->off >= v->iov_len) {
			r->off -= v->iov_len;
			continue;
		}
		size_t k = v->iov_len - r->off;
		if (k > r->left)
			k = r->left;
		*p = (uint8_t *)v->iov_base + r->off;
		*len = k;
		r->off = 0;
		r->left -= k;
		return true;
	}
	return false;
}

/* Copies between buf and bytes [off, off + len) of iov[0..n). */
static size_t copy(const struct iovec *iov, unsigned n, size_t off, uint8_t *buf, size_t len,
                   bool to_iov)
{
	struct range r = {.iov = iov, .n = n, .off = off, .left = len};
	size_t done = 0, k;
	uint8_t *p;
	while (next_piece(&r, &p, &k)) {
		if (to_iov)
			memcpy(p, buf + done, k);
		else
			memcpy(buf + done, p, k);
		done += k;
	}
	return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
	return copy(iov, n, off, buf, len, false);
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len)
{
	/* copy only reads buf in this direction. */
	return copy(iov, n, off, (uint8_t *)(uintptr_t)buf, len, true);
}

unsigned iov_slice(struct iovec *dst, unsigned max, const struct iovec *iov, unsigned n, size_t off,
                   size_t len, size_t *got)
{
	struct range r = {.iov = iov, .n = n, .off = off, .left = len};
	unsigned cnt = 0;
	size_t done = 0, k;
	uint8_t *p;
	while (cnt < max && next_piece(&r, &p, &k)) {
		dst[cnt].iov_base = p;
		dst[cnt].iov_len = k;
		cnt++;
		done += k;
	}
	*got = done;
	return cnt;
}

unsigned iov_advance(struct iovec **iov, unsigned n, size_t len)
{
	while (n > 0 && len >= (*iov)->iov_len) {
		len -= (*iov)->iov_len;
		(*iov)++;
		n--;
	}
	if (n > 0 && len) {
		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + len;
		(*iov)->iov_len -= len;
	}
	return n;
}
