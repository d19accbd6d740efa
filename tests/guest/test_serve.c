/* Host-side tests of the guest init's command channel (serve.c): each test
 * runs init_serve() in a forked process with socketpairs standing in for
 * the four virtio ports and a pipe for the console, plays the VMM's part
 * and checks what the program did and what init reported.
 *
 * Differences from the real ports: a socket write may be short (a port
 * write of up to 32 KiB is not), and closing the host's end of stdin here
 * is what the VMM closing the port is there. The serve process is made a
 * child subreaper, so orphans come back to it as they would to PID 1.
 *
 * Prints "PASS name" / "FAIL name: why" lines (tests/harness.h) and a
 * summary, and exits non-zero on any failure. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fresh.h"
#include "harness.h"
#include "init_logic.h"
#include "mounts.h"
#include "serve.h"
#include "vmproc_abi.h"

/* --- stubs for fresh.c ------------------------------------------------ */

/* In place of the real calls, which would set the host's clock and credit
 * its entropy pool: each says on the console (serve's fd 2) what it was
 * asked, and fails on request. */
static void stub_say(const char *text)
{
	ssize_t ignored = write(2, text, strlen(text));

	(void)ignored;
}

/* Fails for the second 13. */
int init_set_clock(long long sec, unsigned nsec, const char **call)
{
	char line[96];

	snprintf(line, sizeof(line), "stub clock %lld.%09u\n", sec, nsec);
	stub_say(line);
	*call = "clock_settime";
	return sec == 13 ? EPERM : 0;
}

/* Fails for a seed that starts with 0xee. */
int init_seed_random(const unsigned char *seed, size_t len, const char **call)
{
	char line[96];

	snprintf(line, sizeof(line), "stub seed %zu %02x..%02x\n", len, seed[0], seed[len - 1]);
	stub_say(line);
	*call = "ioctl RNDRESEEDCRNG";
	return seed[0] == 0xee ? ENOTTY : 0;
}

/* Says what it would mount; fails with EACCES for a MOUNT at /fail. */
int init_mounts(const struct init_cmd *cmd, const char **root)
{
	char line[160];

	*root = NULL;
	if (cmd->root_entry == NULL && cmd->nmounts == 0)
		return 0;
	snprintf(line, sizeof(line), "stub mounts root=%s/%u n=%zu\n",
	         cmd->root_entry != NULL ? cmd->root_entry : "-", cmd->root_flags, cmd->nmounts);
	stub_say(line);
	for (size_t i = 0; i < cmd->nmounts; i++) {
		snprintf(line, sizeof(line), "stub mount %s %s %u\n", cmd->mounts[i].entry,
		         cmd->mounts[i].path, cmd->mounts[i].flags);
		stub_say(line);
		if (strcmp(cmd->mounts[i].path, "/fail") == 0)
			return EACCES;
	}
	return 0;
}

/* --- building the VMM's messages ------------------------------------- */

struct wire {
	unsigned char *buf;
	size_t len, cap;
};

static void wire_put(struct wire *w, unsigned type, const void *data, size_t len)
{
	if (w->len + 8 + len > w->cap) {
		w->cap = (w->len + 8 + len) * 2;
		w->buf = realloc(w->buf, w->cap);
		if (w->buf == NULL)
			abort();
	}
	unsigned char *p = w->buf + w->len;

	for (int i = 0; i < 4; i++) {
		p[i] = (unsigned char)(type >> (8 * i));
		p[4 + i] = (unsigned char)(len >> (8 * i));
	}
	if (len > 0)
		memcpy(p + 8, data, len);
	w->len += 8 + len;
}

static void wire_str(struct wire *w, unsigned type, const char *s)
{
	wire_put(w, type, s, strlen(s));
}

static void wire_u32(struct wire *w, unsigned type, unsigned v)
{
	unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 24)};

	wire_put(w, type, b, 4);
}

static void wire_size(struct wire *w, unsigned type, unsigned rows, unsigned cols)
{
	unsigned char b[4] = {(unsigned char)rows, (unsigned char)(rows >> 8), (unsigned char)cols,
	                      (unsigned char)(cols >> 8)};

	wire_put(w, type, b, 4);
}

static void wire_time(struct wire *w, unsigned long long sec, unsigned nsec)
{
	unsigned char b[12];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(sec >> (8 * i));
	for (int i = 0; i < 4; i++)
		b[8 + i] = (unsigned char)(nsec >> (8 * i));
	wire_put(w, VMPROC_MSG_TIME, b, sizeof(b));
}

/* A SEED of len bytes: first, then 1, 2, 3..., last. */
static void wire_seed(struct wire *w, size_t len, unsigned char first, unsigned char last)
{
	unsigned char b[VMPROC_SEED_MAX + 8];

	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)i;
	if (len > 0) {
		b[0] = first;
		b[len - 1] = last;
	}
	wire_put(w, VMPROC_MSG_SEED, b, len);
}

static void wire_run(struct wire *w)
{
	wire_put(w, VMPROC_MSG_RUN, NULL, 0);
}

/* ARG messages for a NULL-terminated list. */
static void wire_argv(struct wire *w, const char *const *argv)
{
	for (size_t i = 0; argv[i] != NULL; i++)
		wire_str(w, VMPROC_MSG_ARG, argv[i]);
}

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

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void buf_add(struct buf *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->data = realloc(b->data, b->cap);
		if (b->data == NULL)
			abort();
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* The serve process: what PID 1 would be, with the guest ends of the
 * ports at 100..103 and nothing else open but the console on 2. */
static _Noreturn void serve_child(int ctl, int in, int out, int err, int console)
{
	int fds[4] = {ctl, in, out, err};

	for (int i = 0; i < 4; i++) {
		if (fcntl(fds[i], F_DUPFD_CLOEXEC, 100 + i) != 100 + i)
			die("F_DUPFD_CLOEXEC");
	}
	if (dup2(console, 2) < 0)
		die("dup2 console");
	close_range(3, 99, 0);
	close_range(104, ~0u, 0);
	/* A clean start, as the kernel gives init: every signal default,
	 * nothing blocked, working directory /. The raw rt_sigaction, as
	 * glibc refuses its own signals 32 and 33, which make may have left
	 * ignored. */
	for (int sig = 1; sig <= 64; sig++) {
		struct {
			void (*handler)(int);
			unsigned long flags;
			void (*restorer)(void);
			unsigned long mask;
		} dfl = {SIG_DFL, 0, NULL, 0};

		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
	}
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (chdir("/") < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		die("chdir/prctl");
	_exit(init_serve(100, 101, 102, 103));
}

static void session_start(struct session *s)
{
	int ctl[2], in[2], out[2], err[2], console[2];

	memset(s, 0, sizeof(*s));
	s->status = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, out) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, err) < 0 ||
	    pipe2(console, O_CLOEXEC) < 0)
		die("socketpair");
	s->elapsed = now();
	s->pid = fork();
	if (s->pid < 0)
		die("fork");
	if (s->pid == 0)
		serve_child(ctl[1], in[1], out[1], err[1], console[1]);
	close(ctl[1]);
	close(in[1]);
	close(out[1]);
	close(err[1]);
	close(console[1]);
	s->ctl = ctl[0];
	s->in = in[0];
	s->fd[S_CTL] = ctl[0];
	s->fd[S_OUT] = out[0];
	s->fd[S_ERR] = err[0];
	s->fd[S_CONSOLE] = console[0];
}

static void send_bytes(int fd, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("write to serve");
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

static void session_send(struct session *s, const struct wire *w)
{
	send_bytes(s->ctl, w->buf, w->len);
}

/* Reads whatever is there within timeout_ms; false when nothing was
 * left open to read. */
static bool collect(struct session *s, int timeout_ms)
{
	struct pollfd p[S_N];
	int idx[S_N];
	int n = 0;

	for (int i = 0; i < S_N; i++) {
		if (s->fd[i] >= 0) {
			idx[n] = i;
			p[n++] = (struct pollfd){.fd = s->fd[i], .events = POLLIN};
		}
	}
	if (n == 0)
		return false;
	if (poll(p, (nfds_t)n, timeout_ms) <= 0)
		return true;
	for (int j = 0; j < n; j++) {
		if (p[j].revents == 0)
			continue;
		char chunk[65536];
		int i = idx[j];
		ssize_t got = read(s->fd[i], chunk, sizeof(chunk));

		if (got > 0) {
			buf_add(&s->got[i], chunk, (size_t)got);
		} else if (got == 0 || errno != EINTR) {
			if (i != S_CTL)
				close(s->fd[i]);
			s->fd[i] = -1;
		}
	}
	return true;
}

/* Collects until the program's stdout contains text (or 10 s pass). */
static bool wait_output(struct session *s, const char *text)
{
	double deadline = now() + 10;

	while (now() < deadline) {
		if (s->got[S_OUT].data != NULL && strstr(s->got[S_OUT].data, text) != NULL)
			return true;
		if (!collect(s, 100))
			break;
	}
	return false;
}

/* Closes stdin, collects until every stream ends and the serve process
 * has exited, and decodes init's one message. */
static void session_finish(struct session *s)
{
	double deadline = now() + 20;

	if (s->in >= 0) {
		close(s->in);
		s->in = -1;
	}
	while (now() < deadline && collect(s, 100))
		;
	if (now() >= deadline) {
		kill(s->pid, SIGKILL);
		fprintf(stderr, "test_serve: serve did not finish, killed\n");
	}
	int wstatus;

	if (waitpid(s->pid, &wstatus, 0) == s->pid && WIFEXITED(wstatus))
		s->status = WEXITSTATUS(wstatus);
	s->elapsed = now() - s->elapsed;
	close(s->ctl);

	const struct buf *c = &s->got[S_CTL];
	size_t off = 0;

	for (int i = 0; i < S_N; i++) {
		if (s->got[i].data == NULL)
			buf_add(&s->got[i], "", 0);
	}
	while (off + 8 <= c->len) {
		const unsigned char *p = (const unsigned char *)c->data + off;
		unsigned type = p[0] | p[1] << 8 | p[2] << 16 | (unsigned)p[3] << 24;
		unsigned len = p[4] | p[5] << 8 | p[6] << 16 | (unsigned)p[7] << 24;

		if (off + 8 + len > c->len)
			break;
		s->nmsgs++;
		s->type = type;
		s->value = len == 4 ? p[8] | p[9] << 8 | p[10] << 16 | (unsigned)p[11] << 24 : ~0u;
		off += 8 + len;
	}
	if (off != c->len)
		s->nmsgs = -1; /* trailing garbage */
}

static void session_free(struct session *s)
{
	for (int i = 0; i < S_N; i++) {
		if (s->fd[i] >= 0 && i != S_CTL)
			close(s->fd[i]);
		free(s->got[i].data);
	}
}

/* Runs a whole command sent in one write, with optional stdin. */
static void run_simple(struct session *s, struct wire *w, const char *input)
{
	session_start(s);
	session_send(s, w);
	if (input != NULL)
		send_bytes(s->in, input, strlen(input));
	session_finish(s);
	free(w->buf);
	*w = (struct wire){0};
}

#define OUT(s)     ((s)->got[S_OUT].data)
#define ERR(s)     ((s)->got[S_ERR].data)
#define CONSOLE(s) ((s)->got[S_CONSOLE].data)

/* init's answer was EXITED with a status that wait macros see as exit
 * code code, and serve returned the same. */
static bool exited_with(const struct session *s, int code)
{
	int ws = (int)s->value;

	return s->nmsgs == 1 && s->type == VMPROC_MSG_EXITED && WIFEXITED(ws) &&
	       WEXITSTATUS(ws) == code && s->status == code;
}

static bool exec_failed_with(const struct session *s, int err)
{
	return s->nmsgs == 1 && s->type == VMPROC_MSG_EXEC_FAILED && s->value == (unsigned)err &&
	       s->status == init_exec_failure_status(err);
}

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

/* A scratch directory for programs and files. */
static char scratch[64];

static void make_file(const char *name, const char *text, mode_t mode)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", scratch, name);
	FILE *f = fopen(path, "w");

	if (f == NULL)
		die(path);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

/* --- the tests ------------------------------------------------------- */

static void t_exit_status_and_streams(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};

	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 3);
	CHECK_STR(OUT(&s), "out\n");
	CHECK_STR(ERR(&s), "err\n");
	/* The normal path says nothing on the console. */
	CHECK_STR(CONSOLE(&s), "");
	session_free(&s);
}

static void t_env_exact(void)
{
	struct session s;
	struct wire w = {0};

	wire_str(&w, VMPROC_MSG_ENV, "A=1");
	wire_str(&w, VMPROC_MSG_ARG, "/usr/bin/env");
	wire_str(&w, VMPROC_MSG_ENV, "B=two words");
	wire_str(&w, VMPROC_MSG_ENV, "C=");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "A=1\nB=two words\nC=\n");
	session_free(&s);

	/* No ENV at all: an empty environment. */
	wire_str(&w, VMPROC_MSG_ARG, "/usr/bin/env");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "");
	session_free(&s);
}

static void t_path_search(void)
{
	struct session s;
	struct wire w = {0};
	char env_path[128];

	make_file("vmproc-test-prog", "#!/bin/sh\necho found $0 \"$@\"\n", 0755);
	snprintf(env_path, sizeof(env_path), "PATH=/nonexistent:%s", scratch);

	/* Searched in the PATH of ENV. */
	wire_str(&w, VMPROC_MSG_ENV, env_path);
	wire_str(&w, VMPROC_MSG_ARG, "vmproc-test-prog");
	wire_str(&w, VMPROC_MSG_ARG, "x y");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	char want[256];

	snprintf(want, sizeof(want), "found %s/vmproc-test-prog x y\n", scratch);
	CHECK_STR(OUT(&s), want);
	session_free(&s);

	/* Not in INIT_CHILD_PATH, and ENV has no PATH. */
	wire_str(&w, VMPROC_MSG_ARG, "vmproc-test-prog");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, ENOENT);
	session_free(&s);

	/* ENV without PATH: INIT_CHILD_PATH finds sh. */
	wire_str(&w, VMPROC_MSG_ARG, "sh");
	wire_str(&w, VMPROC_MSG_ARG, "-c");
	wire_str(&w, VMPROC_MSG_ARG, "echo ok");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "ok\n");
	session_free(&s);

	/* PROGRAM apart from argv[0]. */
	wire_str(&w, VMPROC_MSG_PROGRAM, "sh");
	wire_str(&w, VMPROC_MSG_ARG, "my-name");
	wire_str(&w, VMPROC_MSG_ARG, "-c");
	wire_str(&w, VMPROC_MSG_ARG, "echo $0");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "my-name\n");
	session_free(&s);
}

static void t_cwd(void)
{
	struct session s;
	struct wire w = {0};

	wire_str(&w, VMPROC_MSG_CWD, scratch);
	wire_str(&w, VMPROC_MSG_ARG, "/bin/pwd");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	char want[128];

	snprintf(want, sizeof(want), "%s\n", scratch);
	CHECK_STR(OUT(&s), want);
	session_free(&s);

	wire_str(&w, VMPROC_MSG_ARG, "/bin/pwd");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "/\n");
	session_free(&s);

	wire_str(&w, VMPROC_MSG_CWD, "/nonexistent-dir");
	wire_str(&w, VMPROC_MSG_ARG, "/bin/pwd");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, ENOENT);
	session_free(&s);
}

static void t_exec_failures(void)
{
	struct session s;
	struct wire w = {0};
	char path[128];

	wire_str(&w, VMPROC_MSG_ARG, "/nonexistent/prog");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, ENOENT);
	CHECK_STR(OUT(&s), "");
	session_free(&s);

	make_file("not-executable", "#!/bin/sh\necho no\n", 0644);
	snprintf(path, sizeof(path), "%s/not-executable", scratch);
	wire_str(&w, VMPROC_MSG_ARG, path);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EACCES);
	session_free(&s);

	/* Searched: EACCES wins over ENOENT, as in execvp. */
	char env_path[160];

	snprintf(env_path, sizeof(env_path), "PATH=/nonexistent:%s:/bin", scratch);
	wire_str(&w, VMPROC_MSG_ENV, env_path);
	wire_str(&w, VMPROC_MSG_ARG, "not-executable");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EACCES);
	session_free(&s);
}

static void t_stdin(void)
{
	struct session s;
	struct wire w = {0};

	wire_str(&w, VMPROC_MSG_ARG, "/bin/cat");
	wire_run(&w);
	run_simple(&s, &w, "hello\nworld\n");
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "hello\nworld\n");
	session_free(&s);
}

/* The program has 0, 1 and 2 only (ls's own directory is its 3), and
 * starts with no signal blocked or ignored. */
static void t_clean_start(void)
{
	struct session s;
	struct wire w = {0};
	/* Run directly: a shell would reset its signal mask itself. */
	static const char *const ls[] = {"/bin/ls", "/proc/self/fd", NULL};
	static const char *const grep[] = {"/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status",
	                                   NULL};

	wire_argv(&w, ls);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "0\n1\n2\n3\n");
	session_free(&s);

	wire_argv(&w, grep);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
	session_free(&s);
}

static void t_ids(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c", "id -u; id -g; id -G", NULL};

	if (geteuid() != 0) {
		printf("test_serve: not root, uid/gid not tested\n");
		return;
	}
	wire_u32(&w, VMPROC_MSG_UID, 1234);
	wire_u32(&w, VMPROC_MSG_GID, 5678);
	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "1234\n5678\n5678\n");
	session_free(&s);

	/* Unprivileged, the cwd is checked as the user. */
	char private[128];

	snprintf(private, sizeof(private), "%s/private", scratch);
	if (mkdir(private, 0700) < 0 && errno != EEXIST)
		die(private);
	wire_u32(&w, VMPROC_MSG_UID, 1234);
	wire_str(&w, VMPROC_MSG_CWD, private);
	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EACCES);
	session_free(&s);
}

static void t_signal(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c", "echo ready; exec sleep 100", NULL};

	wire_argv(&w, argv);
	wire_run(&w);
	session_start(&s);
	session_send(&s, &w);
	free(w.buf);
	w = (struct wire){0};
	CHECK(wait_output(&s, "ready\n"));
	wire_u32(&w, VMPROC_MSG_SIGNAL, SIGTERM);
	session_send(&s, &w);
	free(w.buf);
	session_finish(&s);
	int ws = (int)s.value;

	CHECK_MSG(s.nmsgs == 1 && s.type == VMPROC_MSG_EXITED && WIFSIGNALED(ws) &&
	              WTERMSIG(ws) == SIGTERM && s.status == 128 + SIGTERM,
	          "msgs %d type %u value %#x status %d", s.nmsgs, s.type, s.value, s.status);
	CHECK(s.elapsed < 10);
	session_free(&s);
}

/* SIGNALs before RUN, and in the same write as RUN. */
static void t_early_signals(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sleep", "100", NULL};

	wire_u32(&w, VMPROC_MSG_SIGNAL, SIGKILL);
	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_MSG(s.nmsgs == 1 && s.type == VMPROC_MSG_EXITED && WIFSIGNALED((int)s.value) &&
	              WTERMSIG((int)s.value) == SIGKILL && s.status == 128 + SIGKILL,
	          "before RUN: type %u value %#x status %d", s.type, s.value, s.status);
	CHECK(s.elapsed < 10);
	session_free(&s);

	wire_argv(&w, argv);
	wire_run(&w);
	wire_u32(&w, VMPROC_MSG_SIGNAL, SIGINT);
	run_simple(&s, &w, NULL);
	CHECK_MSG(s.nmsgs == 1 && s.type == VMPROC_MSG_EXITED && WIFSIGNALED((int)s.value) &&
	              WTERMSIG((int)s.value) == SIGINT && s.status == 128 + SIGINT,
	          "with RUN: type %u value %#x status %d", s.type, s.value, s.status);
	session_free(&s);
}

/* The command one byte per write, so init reads it in pieces. */
static void t_split_messages(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c", "echo $0 $1 $X", "a", "b", NULL};

	wire_str(&w, VMPROC_MSG_ENV, "X=x");
	wire_argv(&w, argv);
	wire_u32(&w, VMPROC_MSG_UID, 0);
	wire_run(&w);
	session_start(&s);
	for (size_t i = 0; i < w.len; i++) {
		send_bytes(s.ctl, w.buf + i, 1);
		struct timespec ts = {0, 200000};

		nanosleep(&ts, NULL);
	}
	free(w.buf);
	session_finish(&s);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "a b x\n");
	session_free(&s);
}

static void t_large_arg(void)
{
	struct session s;
	struct wire w = {0};
	size_t n = 100000;
	char *big = malloc(n + 1);

	memset(big, 'x', n);
	big[n] = '\0';
	wire_str(&w, VMPROC_MSG_ARG, "/bin/sh");
	wire_str(&w, VMPROC_MSG_ARG, "-c");
	wire_str(&w, VMPROC_MSG_ARG, "echo ${#1}");
	wire_str(&w, VMPROC_MSG_ARG, "sh");
	wire_str(&w, VMPROC_MSG_ARG, big);
	free(big);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "100000\n");
	session_free(&s);
}

static void t_big_output(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/usr/bin/head", "-c", "3000000", "/dev/zero", NULL};

	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_MSG(s.got[S_OUT].len == 3000000, "got %zu bytes", s.got[S_OUT].len);
	session_free(&s);
}

static void t_malformed(void)
{
	struct session s;
	struct wire w = {0};

	wire_str(&w, VMPROC_MSG_ARG, "/bin/true");
	wire_put(&w, VMPROC_MSG_UID, "abc", 3);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EINVAL);
	CHECK_HAS(CONSOLE(&s), "bad command");
	session_free(&s);

	wire_str(&w, VMPROC_MSG_ENV, "A=b");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EINVAL);
	session_free(&s);

	wire_str(&w, VMPROC_MSG_ARG, "/bin/true");
	wire_put(&w, VMPROC_MSG_ARG, "a\0b", 3);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EINVAL);
	session_free(&s);

	wire_str(&w, VMPROC_MSG_ARG, "/bin/true");
	wire_put(&w, 77, "", 0);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EINVAL);
	session_free(&s);

	/* A header announcing VMPROC_MSG_MAX + 1 bytes: refused at once,
	 * without waiting for them. */
	unsigned char hdr[8] = {VMPROC_MSG_ARG, 0, 0, 0, 1, 0, 0x10, 0};

	wire_put(&w, VMPROC_MSG_ARG, "/bin/true", 9);
	memcpy(w.buf, hdr, 8);
	w.len = 8;
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, E2BIG);
	session_free(&s);
}

/* TIME and SEED are applied before the program starts (here: the stubs
 * above say so on the console); without them nothing is done. */
static void wire_mount(struct wire *w, unsigned flags, const char *entry, const char *path)
{
	unsigned char b[128];
	size_t n = strlen(entry), m = strlen(path);

	for (int i = 0; i < 4; i++) {
		b[i] = (unsigned char)(flags >> (8 * i));
		b[4 + i] = (unsigned char)(n >> (8 * i));
	}
	memcpy(b + 8, entry, n);
	memcpy(b + 8 + n, path, m);
	wire_put(w, VMPROC_MSG_MOUNT, b, 8 + n + m);
}

/* ROOT and MOUNTs reach the mounting step (a stub here) before the
 * program starts; a mount that fails is the program not starting. */
static void t_mounts(void)
{
	struct session s;
	struct wire w = {0};
	unsigned char root[8] = {VMPROC_ROOT_F_READONLY, 0, 0, 0, 'r', 'o', 'o', 't'};

	wire_put(&w, VMPROC_MSG_ROOT, root, sizeof(root));
	wire_mount(&w, VMPROC_MOUNT_F_READONLY, "s0", "/mnt/x");
	wire_str(&w, VMPROC_MSG_ARG, "/bin/echo");
	wire_str(&w, VMPROC_MSG_ARG, "ran");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "ran\n");
	CHECK_STR(CONSOLE(&s), "stub mounts root=root/1 n=1\nstub mount s0 /mnt/x 1\n");
	session_free(&s);

	wire_mount(&w, 0, "s0", "/fail");
	wire_str(&w, VMPROC_MSG_ARG, "/bin/echo");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXEC_FAILED(&s, EACCES);
	CHECK_STR(OUT(&s), "");
	session_free(&s);
}

static void t_time_and_seed(void)
{
	struct session s;
	struct wire w = {0};

	wire_time(&w, 1700000000, 123456789);
	wire_seed(&w, 32, 0xab, 0xcd);
	wire_str(&w, VMPROC_MSG_ARG, "/bin/echo");
	wire_str(&w, VMPROC_MSG_ARG, "ran");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "ran\n");
	CHECK_STR(CONSOLE(&s), "stub clock 1700000000.123456789\nstub seed 32 ab..cd\n");
	session_free(&s);

	/* The largest seed; the last of two TIMEs; negative seconds pass
	 * through (the kernel judges them). */
	wire_time(&w, 1, 0);
	wire_time(&w, ~0ull, 999999999);
	wire_seed(&w, VMPROC_SEED_MAX, 0x01, 0xff);
	wire_str(&w, VMPROC_MSG_ARG, "/bin/true");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(CONSOLE(&s), "stub clock -1.999999999\nstub seed 256 01..ff\n");
	session_free(&s);

	/* Only a SEED. */
	wire_seed(&w, 40, 0x02, 0x03);
	wire_str(&w, VMPROC_MSG_ARG, "/bin/true");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(CONSOLE(&s), "stub seed 40 02..03\n");
	session_free(&s);
}

/* A clock or seed that cannot be applied is reported; the program runs. */
static void t_time_and_seed_fail(void)
{
	struct session s;
	struct wire w = {0};

	wire_time(&w, 13, 0);
	wire_seed(&w, 32, 0xee, 0x00);
	wire_str(&w, VMPROC_MSG_ARG, "/bin/echo");
	wire_str(&w, VMPROC_MSG_ARG, "ran anyway");
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "ran anyway\n");
	CHECK_HAS(CONSOLE(&s), "vmproc-init: clock_settime: ");
	CHECK_HAS(CONSOLE(&s), "(errno 1)\n");
	CHECK_HAS(CONSOLE(&s), "vmproc-init: ioctl RNDRESEEDCRNG: ");
	CHECK_HAS(CONSOLE(&s), "(errno 25)\n");
	session_free(&s);
}

/* Malformed TIME and SEED are malformed commands: nothing is applied and
 * the program does not run. */
static void t_time_and_seed_malformed(void)
{
	struct session s;
	struct wire w = {0};
	static const unsigned char zeros[16] = {0};
	static const struct {
		const char *what;
		unsigned type;
		size_t len;
	} bad[] = {
	    {"TIME of 11 bytes", VMPROC_MSG_TIME, 11},   {"TIME of 13 bytes", VMPROC_MSG_TIME, 13},
	    {"empty TIME", VMPROC_MSG_TIME, 0},          {"SEED of 31 bytes", VMPROC_MSG_SEED, 31},
	    {"SEED of 257 bytes", VMPROC_MSG_SEED, 257}, {"empty SEED", VMPROC_MSG_SEED, 0},
	    {"TIME of 1e9 ns", VMPROC_MSG_TIME, 12},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (i == sizeof(bad) / sizeof(bad[0]) - 1)
			wire_time(&w, 1700000000, 1000000000);
		else if (bad[i].type == VMPROC_MSG_TIME)
			wire_put(&w, VMPROC_MSG_TIME, zeros, bad[i].len);
		else
			wire_seed(&w, bad[i].len, 0x11, 0x22);
		wire_str(&w, VMPROC_MSG_ARG, "/bin/echo");
		wire_str(&w, VMPROC_MSG_ARG, "ran");
		wire_run(&w);
		run_simple(&s, &w, NULL);
		CHECK_EXEC_FAILED(&s, EINVAL);
		CHECK_MSG(strcmp(OUT(&s), "") == 0 && strstr(CONSOLE(&s), "stub") == NULL &&
		              strstr(CONSOLE(&s), "bad command") != NULL,
		          "%s: out \"%s\" console \"%s\"", bad[i].what, OUT(&s), CONSOLE(&s));
		session_free(&s);
	}
}

/* The host closing the control port before RUN: no message possible. */
static void t_ctl_closed(void)
{
	struct session s;
	struct wire w = {0};

	wire_str(&w, VMPROC_MSG_ARG, "/bin/true");
	session_start(&s);
	session_send(&s, &w);
	free(w.buf);
	shutdown(s.ctl, SHUT_WR);
	session_finish(&s);
	CHECK_MSG(s.nmsgs == 0 && s.status == INIT_STATUS_CHANNEL_FAILED, "msgs %d status %d",
	          s.nmsgs, s.status);
	CHECK_HAS(CONSOLE(&s), "control port closed");
	session_free(&s);
}

/* After RUN, unknown or malformed messages are noted and ignored. */
static void t_ignored_after_run(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c", "read x; echo got $x", NULL};

	wire_argv(&w, argv);
	wire_run(&w);
	wire_put(&w, 99, "zz", 2);
	wire_put(&w, VMPROC_MSG_SIGNAL, "z", 1);
	wire_str(&w, VMPROC_MSG_ARG, "late");
	run_simple(&s, &w, "line\n");
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "got line\n");
	CHECK_HAS(CONSOLE(&s), "ignored control message type 99 length 2");
	CHECK_HAS(CONSOLE(&s), "type 9 length 1");
	session_free(&s);
}

/* --- tty mode -------------------------------------------------------- */

static void t_tty_size(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {
	    "/bin/sh", "-c",
	    "tty; stty size; test -t 0 && test -t 1 && test -t 2 && echo all-tty; echo e >&2",
	    NULL};

	wire_size(&w, VMPROC_MSG_TTY, 33, 101);
	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_HAS(OUT(&s), "/dev/pts/");
	CHECK_HAS(OUT(&s), "\r\n33 101\r\nall-tty\r\ne\r\n");
	CHECK_STR(ERR(&s), "");
	session_free(&s);
}

static void t_tty_shell(void)
{
	struct session s;
	struct wire w = {0};

	wire_size(&w, VMPROC_MSG_TTY, 24, 80);
	wire_str(&w, VMPROC_MSG_ENV, "PS1=$ ");
	wire_str(&w, VMPROC_MSG_ARG, "/bin/sh");
	wire_run(&w);
	run_simple(&s, &w, "echo hi-$((6*7))\nexit 5\n");
	CHECK_EXITED(&s, 5);
	CHECK_HAS(OUT(&s), "hi-42");
	session_free(&s);
}

static void t_tty_winsize(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c", "echo ready; read x; stty size", NULL};

	wire_size(&w, VMPROC_MSG_TTY, 10, 20);
	wire_argv(&w, argv);
	wire_run(&w);
	session_start(&s);
	session_send(&s, &w);
	free(w.buf);
	w = (struct wire){0};
	CHECK(wait_output(&s, "ready"));
	wire_size(&w, VMPROC_MSG_WINSIZE, 40, 120);
	session_send(&s, &w);
	free(w.buf);
	send_bytes(s.in, "go\n", 3);
	session_finish(&s);
	CHECK_EXITED(&s, 0);
	CHECK_HAS(OUT(&s), "40 120\r\n");
	session_free(&s);

	/* A WINSIZE before RUN is the size the program starts with. */
	static const char *const argv2[] = {"/bin/stty", "size", NULL};

	w = (struct wire){0};
	wire_size(&w, VMPROC_MSG_TTY, 10, 20);
	wire_size(&w, VMPROC_MSG_WINSIZE, 50, 60);
	wire_argv(&w, argv2);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_STR(OUT(&s), "50 60\r\n");
	session_free(&s);
}

/* A background process keeps the slave open: init must not wait for it,
 * and must still pass on everything the program wrote. */
static void t_tty_background(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {
	    "/bin/sh", "-c",
	    "(trap '' HUP; exec sleep 3) & i=0; while [ $i -lt 3000 ]; do echo line-$i; "
	    "i=$((i+1)); done; echo done",
	    NULL};

	wire_size(&w, VMPROC_MSG_TTY, 24, 80);
	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, NULL);
	CHECK_EXITED(&s, 0);
	CHECK_HAS(OUT(&s), "line-0\r\nline-1\r\n");
	CHECK_HAS(OUT(&s), "line-2999\r\ndone\r\n");
	CHECK_MSG(s.elapsed < 2.5, "took %.1f s", s.elapsed);
	session_free(&s);
}

/* Output still in the pty when the program exits reaches the host: init
 * is stopped while the program writes and exits, so it finds all of it
 * buffered at once. */
static void t_tty_drain(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {
	    "/bin/sh", "-c",
	    "echo ready; sleep 0.3; head -c 30000 /dev/zero | tr '\\0' x; echo end", NULL};

	wire_size(&w, VMPROC_MSG_TTY, 24, 80);
	wire_argv(&w, argv);
	wire_run(&w);
	session_start(&s);
	session_send(&s, &w);
	free(w.buf);
	CHECK(wait_output(&s, "ready\r\n"));
	kill(s.pid, SIGSTOP);
	struct timespec ts = {1, 0};

	nanosleep(&ts, NULL);
	kill(s.pid, SIGCONT);
	session_finish(&s);
	CHECK_EXITED(&s, 0);
	const char *x = strchr(OUT(&s), 'x');
	size_t n = x != NULL ? strspn(x, "x") : 0;

	CHECK_MSG(n == 30000, "%zu x of 30000", n);
	CHECK_HAS(OUT(&s), "xend\r\n");
	session_free(&s);
}

/* The host closing stdin stops the relay; the program carries on. */
static void t_tty_stdin_closed(void)
{
	struct session s;
	struct wire w = {0};
	static const char *const argv[] = {"/bin/sh", "-c",
	                                   "read x; echo got $x; sleep 0.2; echo end", NULL};

	wire_size(&w, VMPROC_MSG_TTY, 24, 80);
	wire_argv(&w, argv);
	wire_run(&w);
	run_simple(&s, &w, "abc\n");
	CHECK_EXITED(&s, 0);
	CHECK_HAS(OUT(&s), "got abc\r\nend\r\n");
	session_free(&s);
}

static const struct harness_test tests[] = {
    T(t_exit_status_and_streams),
    T(t_env_exact),
    T(t_path_search),
    T(t_cwd),
    T(t_exec_failures),
    T(t_stdin),
    T(t_clean_start),
    T(t_ids),
    T(t_signal),
    T(t_early_signals),
    T(t_split_messages),
    T(t_large_arg),
    T(t_big_output),
    T(t_malformed),
    T(t_time_and_seed),
    T(t_time_and_seed_fail),
    T(t_time_and_seed_malformed),
    T(t_ctl_closed),
    T(t_ignored_after_run),
    T(t_tty_size),
    T(t_tty_shell),
    T(t_tty_winsize),
    T(t_tty_background),
    T(t_tty_drain),
    T(t_tty_stdin_closed),
    T(t_mounts),
};

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	/* harness.h's runner prints no counts; this one does. */
	(void)harness_run;
	signal(SIGPIPE, SIG_IGN);
	snprintf(scratch, sizeof(scratch), "/tmp/vmproc-test-serve.XXXXXX");
	if (mkdtemp(scratch) == NULL)
		die("mkdtemp");
	chmod(scratch, 0755);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (argc > 1 && strstr(tests[i].name, argv[1]) == NULL)
			continue;
		harness_failed_checks = 0;
		harness_first_failure[0] = '\0';
		tests[i].fn();
		if (harness_failed_checks) {
			failed++;
			printf("FAIL %s: %s\n", tests[i].name, harness_first_failure);
		} else {
			passed++;
			printf("PASS %s\n", tests[i].name);
		}
		fflush(stdout);
	}
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "test_serve: could not remove %s\n", scratch);
	printf("test_serve: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
