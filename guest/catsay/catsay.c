/* catsay: vmproc's demo program. Reads all of standard input and prints
 * it in a speech bubble spoken by an ASCII cat (CATSAY_MODE=dog: a dog).
 *
 * Text rules, chosen so the output is the same on every machine:
 *  - lines end at '\n'; a final line without '\n' counts, and empty input
 *    is one empty line (an empty bubble);
 *  - a tab becomes spaces up to the next multiple of 8 columns;
 *  - other control bytes become '?', since they would break the bubble;
 *  - a column is one UTF-8 character (bytes 0x80-0xbf continue one), so
 *    wide characters are counted as one column;
 *  - a line wider than 40 columns is broken at its last space that keeps
 *    the first part within 40 columns (the spaces at the break vanish),
 *    or, without such a space, after exactly 40 columns.
 *
 * Exit status: 0 done, 1 I/O or memory error, 2 usage (arguments, or a
 * CATSAY_MODE other than cat or dog).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WRAP_COLUMNS 40
#define TAB_STOP     8

/* The art starts right under the bubble; its first lines are the trail of
 * the speech bubble. Each string is one whole line. */
static const char *const cat_art[] = {
    "    \\", "     \\   /\\_/\\", "      \\ ( o.o )", "         > ^ <", "        (\")_(\")", NULL,
};

static const char *const dog_art[] = {
    "    \\",
    "     \\    / \\__",
    "      \\  (    @\\___",
    "         /         O",
    "        /   (_____/",
    "       /_____/   U",
    NULL,
};

/* --- growable byte buffer ---------------------------------------------- */

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

static int write_all(int fd, const char *p, size_t n);

/* Error messages go straight to write(2): stdio's printf would triple
 * the size of this static binary for three messages. */
static void complain(const char *what, const char *detail)
{
	const char *parts[] = {"catsay: ", what, detail, "\n"};

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (parts[i] != NULL)
			(void)write_all(STDERR_FILENO, parts[i], strlen(parts[i]));
	}
}

static _Noreturn void die_nomem(void)
{
	complain("out of memory", NULL);
	exit(1);
}

static void buf_reserve(struct buf *b, size_t extra)
{
	if (extra <= b->cap - b->len)
		return;
	size_t cap = b->cap != 0 ? b->cap : 4096;
	while (cap - b->len < extra) {
		if (cap > SIZE_MAX / 2)
			die_nomem();
		cap *= 2;
	}
	char *data = realloc(b->data, cap);
	if (data == NULL)
		die_nomem();
	b->data = data;
	b->cap = cap;
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (n == 0)
		return; /* s may then be NULL: an empty input has no data */
	buf_reserve(b, n);
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

static void buf_add_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_repeat(struct buf *b, char c, size_t n)
{
	buf_reserve(b, n);
	memset(b->data + b->len, c, n);
	b->len += n;
}

/* --- input and output ---------------------------------------------------- */

/* Returns 0, or the errno of the failed read. */
static int read_all(int fd, struct buf *in)
{
	for (;;) {
		/* Grow only when full: every realloc of a big block is an
		 * mmap/munmap pair, system calls a VM pays dearly for. */
		if (in->len == in->cap)
			buf_reserve(in, in->cap != 0 ? in->cap : 65536);
		ssize_t n = read(fd, in->data + in->len, in->cap - in->len);
		if (n > 0)
			in->len += (size_t)n;
		else if (n == 0)
			return 0;
		else if (errno != EINTR)
			return errno;
	}
}

/* Returns 0, or the errno of the failed write. */
static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t done = write(fd, p, n);
		if (done >= 0) {
			p += done;
			n -= (size_t)done;
		} else if (errno != EINTR) {
			return errno;
		}
	}
	return 0;
}

/* --- text into lines ------------------------------------------------------- */

static bool is_continuation(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

static size_t columns(const char *s, size_t n)
{
	size_t cols = 0;
	for (size_t i = 0; i < n; i++)
		cols += !is_continuation((unsigned char)s[i]);
	return cols;
}

/* Tabs to spaces and control bytes to '?', keeping the '\n's; also makes
 * sure the text ends with a '\n' unless it is empty. */
static void normalise(const struct buf *in, struct buf *out)
{
	size_t col = 0;

	for (size_t i = 0; i < in->len; i++) {
		unsigned char c = (unsigned char)in->data[i];
		if (c == '\n') {
			buf_add(out, "\n", 1);
			col = 0;
		} else if (c == '\t') {
			size_t spaces = TAB_STOP - col % TAB_STOP;
			buf_repeat(out, ' ', spaces);
			col += spaces;
		} else {
			char shown = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
			buf_add(out, &shown, 1);
			col += !is_continuation(c);
		}
	}
	if (out->len > 0 && out->data[out->len - 1] != '\n')
		buf_add(out, "\n", 1);
}

/* One line of the bubble: a slice of the normalised text. */
struct seg {
	size_t off;
	size_t len;
	size_t cols;
};

struct segs {
	struct seg *v;
	size_t n;
	size_t cap;
};

static void segs_add(struct segs *s, size_t off, size_t len, size_t cols)
{
	if (s->n == s->cap) {
		size_t cap = s->cap != 0 ? s->cap * 2 : 64;
		if (cap > SIZE_MAX / sizeof(*s->v))
			die_nomem();
		struct seg *v = realloc(s->v, cap * sizeof(*v));
		if (v == NULL)
			die_nomem();
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = (struct seg){off, len, cols};
}

/* Bytes taken by the first `cols` characters of p (n > that many). */
static size_t prefix_bytes(const char *p, size_t n, size_t cols)
{
	size_t i = 0;
	for (size_t seen = 0; i < n; i++) {
		if (!is_continuation((unsigned char)p[i]) && seen++ == cols)
			break;
	}
	return i;
}

/* Where to break a line wider than WRAP_COLUMNS: sets *end to the length
 * of the first part and returns where the rest starts. */
static size_t find_break(const char *p, size_t n, size_t *end)
{
	/* cut: where character 41 starts. A space there still lets the
	 * first 40 columns stand alone. */
	size_t cut = prefix_bytes(p, n, WRAP_COLUMNS);
	size_t space = cut + 1;
	while (space > 0 && p[space - 1] != ' ')
		space--;
	size_t e = space > 0 ? space - 1 : 0;
	while (e > 0 && p[e - 1] == ' ')
		e--;
	if (e == 0) {
		/* No word boundary to use: break inside the word. */
		*end = cut;
		return cut;
	}
	*end = e;
	while (space < n && p[space] == ' ')
		space++;
	return space;
}

/* Splits the line at base+off (without its '\n') into segments of at
 * most WRAP_COLUMNS columns, following the rules at the top of the file.
 * Keeps a running column count so a huge line costs linear time. */
static void wrap_line(struct segs *out, const char *base, size_t off, size_t n)
{
	const char *p = base + off;
	size_t cols = columns(p, n);

	while (cols > WRAP_COLUMNS) {
		size_t end;
		size_t next = find_break(p, n, &end);
		segs_add(out, (size_t)(p - base), end, columns(p, end));
		cols -= columns(p, next);
		p += next;
		n -= next;
		if (n == 0)
			return; /* only spaces were left */
	}
	segs_add(out, (size_t)(p - base), n, cols);
}

static void split_lines(const struct buf *text, struct segs *out)
{
	size_t off = 0;

	while (off < text->len) {
		const char *nl = memchr(text->data + off, '\n', text->len - off);
		size_t len = (size_t)(nl - (text->data + off));
		wrap_line(out, text->data, off, len);
		off += len + 1;
	}
	if (out->n == 0)
		segs_add(out, 0, 0, 0); /* empty input: an empty bubble */
}

/* --- drawing --------------------------------------------------------------- */

/* Bubble borders, cowsay style: "< x >" alone; otherwise "/ \", "| |" and
 * "\ /" for the first, middle and last lines. */
static void bubble_sides(size_t i, size_t n, char *left, char *right)
{
	if (n == 1) {
		*left = '<';
		*right = '>';
	} else if (i == 0) {
		*left = '/';
		*right = '\\';
	} else if (i == n - 1) {
		*left = '\\';
		*right = '/';
	} else {
		*left = '|';
		*right = '|';
	}
}

static void draw(struct buf *out, const char *text, const struct segs *segs,
                 const char *const art[])
{
	size_t width = 0;
	for (size_t i = 0; i < segs->n; i++) {
		if (segs->v[i].cols > width)
			width = segs->v[i].cols;
	}

	buf_add_str(out, " ");
	buf_repeat(out, '_', width + 2);
	buf_add_str(out, "\n");
	for (size_t i = 0; i < segs->n; i++) {
		const struct seg *s = &segs->v[i];
		char left, right;
		bubble_sides(i, segs->n, &left, &right);
		buf_add(out, &left, 1);
		buf_add_str(out, " ");
		buf_add(out, text + s->off, s->len);
		buf_repeat(out, ' ', width - s->cols + 1);
		buf_add(out, &right, 1);
		buf_add_str(out, "\n");
	}
	buf_add_str(out, " ");
	buf_repeat(out, '-', width + 2);
	buf_add_str(out, "\n");
	for (size_t i = 0; art[i] != NULL; i++) {
		buf_add_str(out, art[i]);
		buf_add_str(out, "\n");
	}
}

/* --- main ------------------------------------------------------------------ */

static const char *const *choose_art(void)
{
	const char *mode = getenv("CATSAY_MODE");

	if (mode == NULL || strcmp(mode, "cat") == 0)
		return cat_art;
	if (strcmp(mode, "dog") == 0)
		return dog_art;
	complain("unknown CATSAY_MODE (use cat or dog): ", mode);
	return NULL;
}

int main(int argc, char *argv[])
{
	(void)argv;
	if (argc > 1) {
		complain("usage: catsay < TEXT  (env CATSAY_MODE=cat|dog)", NULL);
		return 2;
	}
	const char *const *art = choose_art();
	if (art == NULL)
		return 2;

	struct buf in = {0}, text = {0}, out = {0};
	struct segs segs = {0};
	int err = read_all(STDIN_FILENO, &in);
	if (err != 0) {
		complain("read: ", strerror(err));
		return 1;
	}
	normalise(&in, &text);
	split_lines(&text, &segs);
	draw(&out, text.data, &segs, art);
	/* One write for the whole picture: on a VM console every write is
	 * a system call the guest kernel runs slowly. */
	err = write_all(STDOUT_FILENO, out.data, out.len);
	if (err != 0) {
		complain("write: ", strerror(err));
		return 1;
	}
	return 0;
}
