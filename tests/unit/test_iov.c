/* util/iov: totals, copies in and out at an offset (across piece
 * boundaries, past the end, with empty pieces), slices and advancing. */
#include <stdint.h>
#include <sys/uio.h>

#include "harness.h"
#include "util/iov.h"

/* Pieces of 3, 0, 5 and 2 bytes over one buffer: "abc" "" "defgh" "ij". */
static char g_buf[16];
static struct iovec g_iov[4];

static void setup(void)
{
	memcpy(g_buf, "abcdefghij", 10);
	g_iov[0] = (struct iovec){.iov_base = g_buf, .iov_len = 3};
	g_iov[1] = (struct iovec){.iov_base = g_buf + 3, .iov_len = 0};
	g_iov[2] = (struct iovec){.iov_base = g_buf + 3, .iov_len = 5};
	g_iov[3] = (struct iovec){.iov_base = g_buf + 8, .iov_len = 2};
}

static void total(void)
{
	setup();
	CHECK(iov_total(g_iov, 4) == 10);
	CHECK(iov_total(g_iov, 1) == 3);
	CHECK(iov_total(g_iov, 0) == 0);
	CHECK(iov_total(NULL, 0) == 0);
}

static void to_buf(void)
{
	setup();
	char out[16];
	memset(out, 0, sizeof(out));
	CHECK(iov_to_buf(g_iov, 4, 0, out, sizeof(out)) == 10);
	CHECK(!memcmp(out, "abcdefghij", 10));
	memset(out, 0, sizeof(out));
	CHECK(iov_to_buf(g_iov, 4, 2, out, 4) == 4); /* crosses the empty piece */
	CHECK(!memcmp(out, "cdef", 4));
	CHECK(iov_to_buf(g_iov, 4, 3, out, 16) == 7);
	CHECK(!memcmp(out, "defghij", 7));
	CHECK(iov_to_buf(g_iov, 4, 9, out, 16) == 1 && out[0] == 'j');
	CHECK(iov_to_buf(g_iov, 4, 10, out, 16) == 0);
	CHECK(iov_to_buf(g_iov, 4, SIZE_MAX, out, 16) == 0);
	CHECK(iov_to_buf(g_iov, 4, 0, out, 0) == 0);
	CHECK(iov_to_buf(g_iov, 0, 0, out, 16) == 0);
	/* Only n pieces count. */
	CHECK(iov_to_buf(g_iov, 3, 0, out, 16) == 8);
}

static void from_buf(void)
{
	setup();
	CHECK(iov_from_buf(g_iov, 4, 2, "1234", 4) == 4);
	CHECK(!memcmp(g_buf, "ab1234ghij", 10));
	CHECK(iov_from_buf(g_iov, 4, 8, "xyz", 3) == 2); /* the array ends first */
	CHECK(!memcmp(g_buf, "ab1234ghxy", 10));
	CHECK(iov_from_buf(g_iov, 4, 10, "q", 1) == 0);
	CHECK(iov_from_buf(g_iov, 4, SIZE_MAX, "q", 1) == 0);
	CHECK(iov_from_buf(g_iov, 4, 0, "q", 0) == 0);
	CHECK(!memcmp(g_buf, "ab1234ghxy", 10));
	CHECK(g_buf[10] == 0);
}

static void slice(void)
{
	setup();
	struct iovec s[4];
	size_t got = 99;
	unsigned n = iov_slice(s, 4, g_iov, 4, 2, 7, &got);
	CHECK(n == 3 && got == 7);
	CHECK(s[0].iov_base == g_buf + 2 && s[0].iov_len == 1);
	CHECK(s[1].iov_base == g_buf + 3 && s[1].iov_len == 5);
	CHECK(s[2].iov_base == g_buf + 8 && s[2].iov_len == 1);
	/* Longer than the array: what it holds. */
	n = iov_slice(s, 4, g_iov, 4, 4, 100, &got);
	CHECK(n == 2 && got == 6);
	CHECK(s[0].iov_base == g_buf + 4 && s[0].iov_len == 4);
	/* Room for fewer pieces than needed. */
	n = iov_slice(s, 1, g_iov, 4, 0, 10, &got);
	CHECK(n == 1 && got == 3);
	/* Empty ranges and offsets past the end. */
	CHECK(iov_slice(s, 4, g_iov, 4, 0, 0, &got) == 0 && got == 0);
	CHECK(iov_slice(s, 4, g_iov, 4, 10, 5, &got) == 0 && got == 0);
	CHECK(iov_slice(s, 4, g_iov, 4, SIZE_MAX, SIZE_MAX, &got) == 0 && got == 0);
	CHECK(iov_slice(s, 0, g_iov, 4, 0, 5, &got) == 0 && got == 0);
	/* Within one piece. */
	n = iov_slice(s, 4, g_iov, 4, 4, 2, &got);
	CHECK(n == 1 && got == 2 && s[0].iov_base == g_buf + 4 && s[0].iov_len == 2);
}

static void advance(void)
{
	setup();
	struct iovec v[4];
	memcpy(v, g_iov, sizeof(v));
	struct iovec *p = v;
	CHECK(iov_advance(&p, 4, 0) == 4 && p == v);
	CHECK(iov_advance(&p, 4, 1) == 4 && p == v);
	CHECK(p->iov_base == g_buf + 1 && p->iov_len == 2);
	/* The rest of piece 0 and the empty piece go. */
	CHECK(iov_advance(&p, 4, 2) == 2 && p == v + 2);
	CHECK(p->iov_base == g_buf + 3 && p->iov_len == 5);
	CHECK(iov_advance(&p, 2, 6) == 1 && p == v + 3);
	CHECK(p->iov_base == g_buf + 9 && p->iov_len == 1);
	CHECK(iov_advance(&p, 1, 1) == 0 && p == v + 4);
	/* Past the end: nothing left, nothing read beyond. */
	memcpy(v, g_iov, sizeof(v));
	p = v;
	CHECK(iov_advance(&p, 4, 100) == 0 && p == v + 4);
}

TEST_LIST(T(total), T(to_buf), T(from_buf), T(slice), T(advance))
