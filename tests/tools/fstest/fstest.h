/* fstest: exercises a directory with real system calls and reports what
 * works, for vmproc's virtio-fs shares (run in the guest on the mounted
 * share) and, built for the host, on local directories.
 *
 *   fstest ops [--expect-no-devices] [--expect-no-setuid] DIR
 *   fstest escape [--expect-no-devices] [--expect-no-setuid] [-i N]
 *                 DIR MARKER_TEXT [PATH...]
 *   fstest bench DIR [-s MiB] [-n FILES] [-r FILE]
 *
 * Output, one line each:
 *   PASS name
 *   FAIL name: what happened (errno text)
 *   SKIP name: why
 *   INFO name: a fact worth knowing (counts, figures, what was tolerated)
 *   bench key=value               (bench only)
 * and last "fstest: N passed, N failed". Exit status: 0 no FAIL, 1 some
 * FAIL, 2 usage.
 *
 * ops works in a fresh subdirectory of DIR and removes it at the end.
 * escape looks for a file outside DIR whose content starts with
 * MARKER_TEXT. bench times sequential I/O and metadata operations.
 *
 * The files: main.c (options), report.c (the output lines), util.c
 * (helpers), ops.c with ops_files.c, ops_tree.c and ops_special.c (the
 * cases of ops), escape.c, bench.c. */
#ifndef FSTEST_H
#define FSTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define MIB (1024 * 1024)

/* --- reporting (report.c) ------------------------------------------------- */

extern const char *cur_case;
extern int cur_done; /* the running case has failed or skipped */

__attribute__((format(printf, 1, 2))) void failf(const char *fmt, ...);
/* A FAIL with errno's text appended. */
__attribute__((format(printf, 1, 2))) void faile(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void skipf(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void infof(const char *fmt, ...);
/* Runs one case: PASS unless it reported a FAIL or a SKIP. */
void run_case(const char *name, void (*fn)(void));
/* Prints "fstest: N passed, N failed"; the exit status. */
int summary(void);

/* In a case function: report and jump to its cleanup at "out". */
#define FAILF(...)                                                                                 \
	do {                                                                                       \
		failf(__VA_ARGS__);                                                                \
		goto out;                                                                          \
	} while (0)
#define FAILE(...)                                                                                 \
	do {                                                                                       \
		faile(__VA_ARGS__);                                                                \
		goto out;                                                                          \
	} while (0)
/* A call that must not return a negative value. */
#define SYS(call, ...)                                                                             \
	do {                                                                                       \
		if ((call) < 0)                                                                    \
			FAILE(__VA_ARGS__);                                                        \
	} while (0)
/* A call that must fail with errno e1 or e2. */
#define EXPECT_ERR(call, e1, e2, what)                                                             \
	do {                                                                                       \
		errno = 0;                                                                         \
		if ((call) >= 0)                                                                   \
			FAILF("%s succeeded, expected %s", what, strerror(e1));                    \
		if (errno != (e1) && errno != (e2))                                                \
			FAILE("%s: expected %s, got", what, strerror(e1));                         \
	} while (0)

/* 0 if the call returned >= 0, else errno. */
#define RESULT(call) ((call) < 0 ? errno : 0)

/* --- helpers (util.c) ----------------------------------------------------- */

_Noreturn void die(const char *what);
void *xmalloc(size_t n);
void close_fd(int *fd);
/* Deterministic, not compressible: xorshift32 from a seed. */
void fill(unsigned char *b, size_t n, uint32_t seed);
int write_all(int fd, const void *buf, size_t n);
ssize_t read_all(int fd, void *buf, size_t n);
int pwrite_all(int fd, const void *buf, size_t n, off_t off);
ssize_t pread_all(int fd, void *buf, size_t n, off_t off);
/* Index of the first differing byte, or -1 if equal. */
long first_diff(const unsigned char *a, const unsigned char *b, size_t n);
long first_nonzero(const unsigned char *a, size_t n);
/* a/b into out (PATH_MAX bytes); exits if it does not fit. */
void join(char *out, const char *a, const char *b);

extern char tdir[PATH_MAX]; /* ops: the fresh test directory */
/* A path in the test directory; 8 results stay valid at a time. */
const char *tp(const char *name);

/* Creates (truncating) a file with n bytes of content. 0, or -1 with errno. */
int put_file(const char *path, const void *data, size_t n, mode_t mode);
/* Reads a whole (small) file: its length, or -1 with errno. */
ssize_t get_file(const char *path, void *buf, size_t cap);
/* Whether a small file's whole content is exactly the string s. */
int file_is(const char *path, const char *s);
/* Whether path's permission bits (stat) are want: 1 or 0, with them in
 * got; -1 with errno. */
int mode_is(const char *path, mode_t want, mode_t *got);
int sys_renameat2(int olddir, const char *oldp, int newdir, const char *newp, unsigned flags);
/* Removes a tree (not following symlinks). 0, or -1 with a message in err. */
int rm_tree(int parent, const char *name, char *err, size_t errlen);
/* Makes DIR/PREFIX.PID.N, its path in out: 0, or -1 with errno. */
int mk_unique(const char *dir, const char *prefix, char *out);
double mono_now(void);

/* Runs fn in a forked child, which sends its results (n ints) through a
 * pipe at two points: first n1 ints, then, after the parent's go-ahead,
 * the rest. mid() runs in the parent between the two. */
struct child {
	pid_t pid;
	int to_child, from_child;
};

int child_start(struct child *c, void (*fn)(int out, int in));
/* Reads n ints from the child: 0, or -1 if it died first. */
int child_recv(struct child *c, int *v, size_t n);
void child_go(struct child *c);
/* Closes the pipes and reaps the child: its exit status, or -1. */
int child_end(struct child *c);
void child_send(int out, const int *v, size_t n);
void child_wait(int in);

/* --- the commands --------------------------------------------------------- */

/* Options of ops and escape (main.c). */
extern int expect_no_devices, expect_no_setuid;

/* The cases of ops, in the order they run: each file's own list. */
struct fstest_case {
	const char *name;
	void (*fn)(void);
};
extern const struct fstest_case ops_file_cases[]; /* ops_files.c */
extern const size_t ops_n_file_cases;
extern const struct fstest_case ops_tree_cases[]; /* ops_tree.c */
extern const size_t ops_n_tree_cases;
extern const struct fstest_case ops_special_cases[]; /* ops_special.c */
extern const size_t ops_n_special_cases;

int cmd_ops(const char *dir);
int cmd_escape(const char *dir, const char *marker_text, char **paths, int npaths, int iterations);
int cmd_bench(const char *dir, int mib, int files, const char *read_file);

#endif
