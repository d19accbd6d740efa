/* The machinery of the command channel's host tests (serve_session.h):
 * stubs for fresh.c and mounts.c, the VMM's messages, serve sessions. */
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
#include "init_logic.h"
#include "mounts.h"
#include "serve.h"
#include "serve_session.h"
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

void wire_put(struct wire *w, unsigned type, const void *data, size_t len)
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

void wire_str(struct wire *w, unsigned type, const char *s)
{
	wire_put(w, type, s, strlen(s));
}

void wire_u32(struct wire *w, unsigned type, unsigned v)
{
	unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 24)};

	wire_put(w, type, b, 4);
}

void wire_size(struct wire *w, unsigned type, unsigned rows, unsigned cols)
{
	unsigned char b[4] = {(unsigned char)rows, (unsigned char)(rows >> 8), (unsigned char)cols,
	                      (unsigned char)(cols >> 8)};

	wire_put(w, type, b, 4);
}

void wire_time(struct wire *w, unsigned long long sec, unsigned nsec)
{
	unsigned char b[12];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(sec >> (8 * i));
	for (int i = 0; i < 4; i++)
		b[8 + i] = (unsigned char)(nsec >> (8 * i));
	wire_put(w, VMPROC_MSG_TIME, b, sizeof(b));
}

/* A SEED of len bytes: first, then 1, 2, 3..., last. */
void wire_seed(struct wire *w, size_t len, unsigned char first, unsigned char last)
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

void wire_run(struct wire *w)
{
	wire_put(w, VMPROC_MSG_RUN, NULL, 0);
}

/* ARG messages for a NULL-terminated list. */
void wire_argv(struct wire *w, const char *const *argv)
{
	for (size_t i = 0; argv[i] != NULL; i++)
		wire_str(w, VMPROC_MSG_ARG, argv[i]);
}

void wire_mount(struct wire *w, unsigned flags, const char *entry, const char *path)
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

/* --- one serve session ---------------------------------------------- */

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

void die(const char *what)
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

void session_start(struct session *s)
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

void send_bytes(int fd, const void *data, size_t len)
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

void session_send(struct session *s, const struct wire *w)
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
bool wait_output(struct session *s, const char *text)
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
void session_finish(struct session *s)
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

void session_free(struct session *s)
{
	for (int i = 0; i < S_N; i++) {
		if (s->fd[i] >= 0 && i != S_CTL)
			close(s->fd[i]);
		free(s->got[i].data);
	}
}

/* Runs a whole command sent in one write, with optional stdin. */
void run_simple(struct session *s, struct wire *w, const char *input)
{
	session_start(s);
	session_send(s, w);
	if (input != NULL)
		send_bytes(s->in, input, strlen(input));
	session_finish(s);
	free(w->buf);
	*w = (struct wire){0};
}

/* --- what the tests check ------------------------------------------- */

/* init's answer was EXITED with a status that wait macros see as exit
 * code code, and serve returned the same. */
bool exited_with(const struct session *s, int code)
{
	int ws = (int)s->value;

	return s->nmsgs == 1 && s->type == VMPROC_MSG_EXITED && WIFEXITED(ws) &&
	       WEXITSTATUS(ws) == code && s->status == code;
}

bool exec_failed_with(const struct session *s, int err)
{
	return s->nmsgs == 1 && s->type == VMPROC_MSG_EXEC_FAILED && s->value == (unsigned)err &&
	       s->status == init_exec_failure_status(err);
}

/* --- around the tests ----------------------------------------------- */

/* A scratch directory for programs and files. */
char scratch[64];

void make_file(const char *name, const char *text, mode_t mode)
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

void serve_tests_setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(scratch, sizeof(scratch), "/tmp/vmproc-test-serve.XXXXXX");
	if (mkdtemp(scratch) == NULL)
		die("mkdtemp");
	chmod(scratch, 0755);
}

void serve_tests_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "test_serve: could not remove %s\n", scratch);
}
