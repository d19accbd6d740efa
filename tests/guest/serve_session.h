/* What the host tests of the guest init's command channel (test_serve.c,
 * test_serve_tty.c) share: building the VMM's messages, and one serve
 * session, init_serve() in a forked process with socketpairs standing in
 * for the four virtio ports and a pipe for the console (serve_session.c,
 * which also holds the stubs for fresh.c and mounts.c).
 *
 * Differences from the real ports: a socket write may be short (a port
 * write of up to 32 KiB is not), and closing the host's end of stdin here
 * is what the VMM closing the port is there. The serve process is made a
 * child subreaper, so orphans come back to it as they would to PID 1. */
#ifndef VMP_TESTS_SERVE_SESSION_H
#define VMP_TESTS_SERVE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* --- building the VMM's messages ------------------------------------- */

struct wire {
	unsigned char *buf;
	size_t len, cap;
};

void wire_put(struct wire *w, unsigned type, const void *data, size_t len);
void wire_str(struct wire *w, unsigned type, const char *s);
void wire_u32(struct wire *w, unsigned type, unsigned v);
void wire_size(struct wire *w, unsigned type, unsigned rows, unsigned cols);
void wire_time(struct wire *w, unsigned long long sec, unsigned nsec);
/* A SEED of len bytes: first, then 1, 2, 3..., last. */
void wire_seed(struct wire *w, size_t len, unsigned char first, unsigned char last);
void wire_mount(struct wire *w, unsigned flags, const char *entry, const char *path);
void wire_run(struct wire *w);
/* ARG messages for a NULL-terminated list. */
void wire_argv(struct wire *w, const char *const *argv);

/* --- one serve session ---------------------------------------------- */

struct buf {
	char *data;
	size_t len, cap;
};

enum { S_CTL, S_OUT, S_ERR, S_CONSOLE, S_N };

struct session {
	pid_t pid;
	int ctl, in;
	int fd[S_N]; /* host ends read by collect(), -1 at EOF */
	struct buf got[S_N];
	int status; /* init_serve's return value, -1 if it did not return */
	double elapsed;
	/* The one message init sent back. */
	unsigned type;
	unsigned value;
	int nmsgs;
};

void session_start(struct session *s);
void send_bytes(int fd, const void *data, size_t len);
void session_send(struct session *s, const struct wire *w);
/* Collects until the program's stdout contains text (or 10 s pass). */
bool wait_output(struct session *s, const char *text);
/* Closes stdin, collects until every stream ends and the serve process
 * has exited, and decodes init's one message. */
void session_finish(struct session *s);
void session_free(struct session *s);
/* Runs a whole command sent in one write, with optional stdin. */
void run_simple(struct session *s, struct wire *w, const char *input);

#define OUT(s)     ((s)->got[S_OUT].data)
#define ERR(s)     ((s)->got[S_ERR].data)
#define CONSOLE(s) ((s)->got[S_CONSOLE].data)

/* init's answer was EXITED with a status that wait macros see as exit
 * code code, and serve returned the same. */
bool exited_with(const struct session *s, int code);
bool exec_failed_with(const struct session *s, int err);

/* For the test files, which include tests/harness.h. */
#define CHECK_EXITED(s, code)                                                                      \
	CHECK_MSG(exited_with(s, code),                                                            \
	          "msgs %d type %u value %#x status %d; out \"%s\" err \"%s\" console \"%s\"",     \
	          (s)->nmsgs, (s)->type, (s)->value, (s)->status, OUT(s), ERR(s), CONSOLE(s))
#define CHECK_EXEC_FAILED(s, err)                                                                  \
	CHECK_MSG(exec_failed_with(s, err),                                                        \
	          "msgs %d type %u value %u status %d; out \"%s\" console \"%s\"", (s)->nmsgs,     \
	          (s)->type, (s)->value, (s)->status, OUT(s), CONSOLE(s))
#define CHECK_STR(got, want) CHECK_MSG(strcmp(got, want) == 0, "got \"%s\", want \"%s\"", got, want)
#define CHECK_HAS(got, want) CHECK_MSG(strstr(got, want) != NULL, "\"%s\" not in \"%s\"", want, got)

/* --- around the tests ------------------------------------------------ */

/* A scratch directory for programs and files (serve_tests_setup). */
extern char scratch[64];

_Noreturn void die(const char *what);
void make_file(const char *name, const char *text, mode_t mode);

/* Before the first test: SIGPIPE ignored, the scratch directory made. */
void serve_tests_setup(void);
/* After the last: the scratch directory removed. */
void serve_tests_cleanup(void);

#endif
