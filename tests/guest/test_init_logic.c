/* Host-side tests of the guest init's pure helpers (guest/init/init_logic.c).
 * Prints "PASS name" / "FAIL name: why" lines (tests/harness.h) and exits
 * non-zero on any failure. */
#define _GNU_SOURCE
#include "harness.h"
#include "init_logic.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A real wait status from a child that runs fn, so the test does not
 * depend on how the C library encodes one. */
static int wait_status_of(void (*fn)(void))
{
	pid_t pid = fork();
	int wstatus = 0;

	if (pid == 0) {
		fn();
		_exit(99);
	}
	if (pid < 0 || waitpid(pid, &wstatus, 0) != pid) {
		perror("fork/waitpid");
		exit(2);
	}
	return wstatus;
}

static void exit_0(void)
{
	_exit(0);
}
static void exit_3(void)
{
	_exit(3);
}
static void exit_255(void)
{
	_exit(255);
}
static void die_kill(void)
{
	raise(SIGKILL);
}
static void die_term(void)
{
	raise(SIGTERM);
}
static void die_segv(void)
{
	raise(SIGSEGV);
}

static void test_exit_status(void)
{
	CHECK_MSG(init_exit_status(wait_status_of(exit_0)) == 0, "exit 0 -> 0");
	CHECK_MSG(init_exit_status(wait_status_of(exit_3)) == 3, "exit 3 -> 3");
	CHECK_MSG(init_exit_status(wait_status_of(exit_255)) == 255, "exit 255 -> 255");
	CHECK_MSG(init_exit_status(wait_status_of(die_kill)) == 128 + SIGKILL, "SIGKILL -> 137");
	CHECK_MSG(init_exit_status(wait_status_of(die_term)) == 128 + SIGTERM, "SIGTERM -> 143");
	CHECK_MSG(init_exit_status(wait_status_of(die_segv)) == 128 + SIGSEGV, "SIGSEGV -> 139");
}

static void test_exec_failure_status(void)
{
	CHECK_MSG(init_exec_failure_status(ENOENT) == 127, "ENOENT -> 127");
	CHECK_MSG(init_exec_failure_status(EACCES) == 126, "EACCES -> 126");
	CHECK_MSG(init_exec_failure_status(ENOEXEC) == 126, "ENOEXEC -> 126");
	CHECK_MSG(init_exec_failure_status(ENAMETOOLONG) == 126, "ENAMETOOLONG -> 126");
}

static void test_system_disk_absent(void)
{
	CHECK_MSG(init_system_disk_absent(ENOENT), "disk: ENOENT is no disk");
	CHECK_MSG(init_system_disk_absent(ENXIO), "disk: ENXIO is no disk");
	CHECK_MSG(!init_system_disk_absent(0), "disk: success is not absence");
	CHECK_MSG(!init_system_disk_absent(ENODEV), "disk: ENODEV (no erofs) reported");
	CHECK_MSG(!init_system_disk_absent(EINVAL), "disk: EINVAL (bad image) reported");
	CHECK_MSG(!init_system_disk_absent(EIO), "disk: EIO reported");
	CHECK_MSG(!init_system_disk_absent(EBUSY), "disk: EBUSY reported");
	CHECK_MSG(!init_system_disk_absent(ENOTBLK), "disk: ENOTBLK reported");
}

static void test_debug_requested(void)
{
	char *none[] = {NULL};
	char *kernel_default[] = {"HOME=/", "TERM=linux", NULL};
	char *on[] = {"HOME=/", "vmproc_debug=1", "TERM=linux", NULL};
	char *on_yes[] = {"vmproc_debug=yes", NULL};
	char *off_zero[] = {"vmproc_debug=0", NULL};
	char *off_empty[] = {"vmproc_debug=", NULL};
	char *prefix_only[] = {"vmproc_debugger=1", "vmproc_debug", NULL};

	CHECK_MSG(!init_debug_requested(NULL), "debug: NULL envp");
	CHECK_MSG(!init_debug_requested(none), "debug: empty envp");
	CHECK_MSG(!init_debug_requested(kernel_default), "debug: kernel default env");
	CHECK_MSG(init_debug_requested(on), "debug: vmproc_debug=1");
	CHECK_MSG(init_debug_requested(on_yes), "debug: vmproc_debug=yes");
	CHECK_MSG(!init_debug_requested(off_zero), "debug: vmproc_debug=0");
	CHECK_MSG(!init_debug_requested(off_empty), "debug: vmproc_debug=");
	CHECK_MSG(!init_debug_requested(prefix_only), "debug: near misses");
}

static void test_line(void)
{
	struct init_line line = {.len = 0};

	init_line_add(&line, "status ");
	init_line_add_uint(&line, 0);
	init_line_add(&line, " ");
	init_line_add_uint(&line, 4294967295u);
	CHECK_MSG(strcmp(line.buf, "status 0 4294967295") == 0, "line: numbers");
	CHECK_MSG(line.len == strlen(line.buf), "line: length");

	struct init_line full = {.len = 0};
	char big[1000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	init_line_add(&full, big);
	init_line_add(&full, "more");
	CHECK_MSG(full.len == sizeof(full.buf) - 1, "line: truncates at capacity");
	CHECK_MSG(full.buf[full.len] == '\0', "line: stays terminated");
}

static void test_channel_requested(void)
{
	char *on[] = {"HOME=/", "vmproc_channel=1", NULL};
	char *off[] = {"vmproc_channel=0", NULL};
	char *none[] = {"TERM=linux", "vmproc_channelx=1", NULL};

	CHECK_MSG(init_channel_requested(on), "channel: vmproc_channel=1");
	CHECK_MSG(!init_channel_requested(off), "channel: vmproc_channel=0");
	CHECK_MSG(!init_channel_requested(none), "channel: absent");
	CHECK_MSG(strcmp(VMPROC_ABI_CHANNEL_WORD, VMPROC_ABI_CHANNEL_ENV "=1") == 0,
	          "channel: word is ENV=1");
}

static void test_env_get(void)
{
	char *env[] = {"PATHX=no", "PATH=/a:/b", "EMPTY=", "NOEQUALS", NULL};

	CHECK_MSG(init_env_get(env, "PATH") != NULL &&
	              strcmp(init_env_get(env, "PATH"), "/a:/b") == 0,
	          "env: PATH found, not PATHX");
	CHECK_MSG(init_env_get(env, "EMPTY") != NULL && init_env_get(env, "EMPTY")[0] == '\0',
	          "env: empty value");
	CHECK_MSG(init_env_get(env, "NOEQUALS") == NULL, "env: no '=' is no value");
	CHECK_MSG(init_env_get(env, "HOME") == NULL, "env: absent");
	CHECK_MSG(init_env_get(NULL, "PATH") == NULL, "env: NULL envp");
}

static bool prewarm_is(const struct init_prewarm *pw, size_t count, unsigned ignored,
                       const char *const *paths)
{
	if (pw->count != count || pw->ignored != ignored)
		return false;
	for (size_t i = 0; i < count; i++) {
		if (strcmp(pw->paths[i], paths[i]) != 0)
			return false;
	}
	return true;
}

static void test_prewarm_parse(void)
{
	static struct init_prewarm pw;
	const char *one[] = {"/usr/bin/busybox"};
	const char *three[] = {"/bin/sh", "/usr/bin/catsay", "rel/a.b"};
	char value[64 * 20];
	char longest[VMPROC_PREWARM_PATH_MAX + 2];

	init_prewarm_parse(&pw, "/usr/bin/busybox");
	CHECK_MSG(prewarm_is(&pw, 1, 0, one), "prewarm: one path");
	init_prewarm_parse(&pw, "/bin/sh,/usr/bin/catsay,rel/a.b");
	CHECK_MSG(prewarm_is(&pw, 3, 0, three), "prewarm: several paths, in order");
	init_prewarm_parse(&pw, "");
	CHECK_MSG(prewarm_is(&pw, 0, 0, NULL), "prewarm: empty value");
	init_prewarm_parse(&pw, NULL);
	CHECK_MSG(prewarm_is(&pw, 0, 0, NULL), "prewarm: no value");
	init_prewarm_parse(&pw, ",,,");
	CHECK_MSG(prewarm_is(&pw, 0, 0, NULL), "prewarm: only commas");
	init_prewarm_parse(&pw, "/usr/bin/busybox,");
	CHECK_MSG(prewarm_is(&pw, 1, 0, one), "prewarm: trailing comma");
	init_prewarm_parse(&pw, ",/bin/sh,,/usr/bin/catsay,rel/a.b,,");
	CHECK_MSG(prewarm_is(&pw, 3, 0, three), "prewarm: empty entries between and around");

	/* Too many: the first VMPROC_PREWARM_MAX count, the rest do not. */
	value[0] = '\0';
	for (int i = 0; i < VMPROC_PREWARM_MAX + 3; i++) {
		char entry[16];

		snprintf(entry, sizeof(entry), "%s/p%d", i == 0 ? "" : ",", i);
		strcat(value, entry);
	}
	init_prewarm_parse(&pw, value);
	CHECK_MSG(pw.count == VMPROC_PREWARM_MAX && pw.ignored == 3 &&
	              strcmp(pw.paths[0], "/p0") == 0 &&
	              strcmp(pw.paths[VMPROC_PREWARM_MAX - 1], "/p15") == 0,
	          "prewarm: too many, the first 16 kept");
	strcat(value, ",,");
	init_prewarm_parse(&pw, value);
	CHECK_MSG(pw.count == VMPROC_PREWARM_MAX && pw.ignored == 3,
	          "prewarm: too many, empty entries not counted");

	/* Too long: VMPROC_PREWARM_PATH_MAX - 1 bytes fit, one more does not,
	 * and the next entry is still read. */
	memset(longest, 'a', sizeof(longest));
	longest[0] = '/';
	longest[VMPROC_PREWARM_PATH_MAX - 1] = '\0';
	snprintf(value, sizeof(value), "%s,/bin/sh", longest);
	init_prewarm_parse(&pw, value);
	CHECK_MSG(pw.count == 2 && pw.ignored == 0 && strcmp(pw.paths[0], longest) == 0 &&
	              strcmp(pw.paths[1], "/bin/sh") == 0,
	          "prewarm: longest path fits");
	longest[VMPROC_PREWARM_PATH_MAX - 1] = 'a';
	longest[VMPROC_PREWARM_PATH_MAX] = '\0';
	snprintf(value, sizeof(value), "/usr/bin/busybox,%s,/bin/sh", longest);
	init_prewarm_parse(&pw, value);
	CHECK_MSG(pw.count == 2 && pw.ignored == 1 &&
	              strcmp(pw.paths[0], "/usr/bin/busybox") == 0 &&
	              strcmp(pw.paths[1], "/bin/sh") == 0,
	          "prewarm: too long skipped, neighbours kept");
	init_prewarm_parse(&pw, longest);
	CHECK_MSG(pw.count == 0 && pw.ignored == 1, "prewarm: only a too-long path");
	CHECK_MSG(strcmp(VMPROC_ABI_PREWARM_ENV, "vmproc_prewarm") == 0 &&
	              strchr(VMPROC_ABI_PREWARM_ENV, '.') == NULL,
	          "prewarm: word name has no dot");
}

/* Joins every candidate of a PATH search with '|'. */
static void path_candidates(const char *path, const char *file, char *out, size_t cap)
{
	char buf[64];

	out[0] = '\0';
	while (path != NULL) {
		if (!init_path_next(&path, file, buf, sizeof(buf))) {
			strcat(out, "<too long>");
			return;
		}
		if (out[0] != '\0')
			strcat(out, "|");
		if (strlen(out) + strlen(buf) + 1 < cap)
			strcat(out, buf);
	}
}

static void test_path_next(void)
{
	char out[512];

	path_candidates("/bin:/usr/bin", "sh", out, sizeof(out));
	CHECK_MSG(strcmp(out, "/bin/sh|/usr/bin/sh") == 0, "path: two dirs");
	path_candidates("/x", "sh", out, sizeof(out));
	CHECK_MSG(strcmp(out, "/x/sh") == 0, "path: one dir");
	path_candidates("", "sh", out, sizeof(out));
	CHECK_MSG(strcmp(out, "sh") == 0, "path: empty PATH is the current directory");
	path_candidates("/a::/b:", "sh", out, sizeof(out));
	CHECK_MSG(strcmp(out, "/a/sh|sh|/b/sh|sh") == 0, "path: empty entries");
	path_candidates("/0123456789012345678901234567890123456789012345678901234567890", "sh", out,
	                sizeof(out));
	CHECK_MSG(strcmp(out, "<too long>") == 0, "path: too long");
	path_candidates("/01234567890123456789012345678901234567890123456789012345678", "sh", out,
	                sizeof(out));
	CHECK_MSG(strlen(out) == 63, "path: exactly fits");

	char all[512];
	char expect[512] = "";
	const char *dirs = INIT_CHILD_PATH;

	path_candidates(dirs, "f", all, sizeof(all));
	size_t n = 0;

	for (const char *p = dirs; *p != '\0'; p++) {
		if (*p == ':') {
			memcpy(expect + n, "/f|", 3);
			n += 3;
		} else {
			expect[n++] = *p;
		}
	}
	memcpy(expect + n, "/f", 3);
	CHECK_MSG(strcmp(all, expect) == 0, "path: INIT_CHILD_PATH in order");
}

/* --- the command channel --------------------------------------------- */

/* Appends a message to a wire buffer. */
static size_t put_msg(unsigned char *wire, size_t at, unsigned type, const void *data, size_t len)
{
	unsigned char *p = wire + at;

	for (int i = 0; i < 4; i++) {
		p[i] = (unsigned char)(type >> (8 * i));
		p[4 + i] = (unsigned char)(len >> (8 * i));
	}
	if (len > 0)
		memcpy(p + 8, data, len);
	return at + 8 + len;
}

static size_t put_str(unsigned char *wire, size_t at, unsigned type, const char *s)
{
	return put_msg(wire, at, type, s, strlen(s));
}

static size_t put_u32(unsigned char *wire, size_t at, unsigned type, unsigned v)
{
	unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 24)};

	return put_msg(wire, at, type, b, 4);
}

static size_t put_size(unsigned char *wire, size_t at, unsigned type, unsigned rows, unsigned cols)
{
	unsigned char b[4] = {(unsigned char)rows, (unsigned char)(rows >> 8), (unsigned char)cols,
	                      (unsigned char)(cols >> 8)};

	return put_msg(wire, at, type, b, 4);
}

static unsigned char rx_mem[INIT_RX_MIN];
static char cmd_mem[1 << 16];

/* Feeds wire into a fresh framer and command, chunk bytes per read (0:
 * all at once). Returns the final init_cmd_add result, or the framer's
 * error, or INIT_CMD_MORE if the bytes ran out. *msgs counts messages. */
static int feed(const unsigned char *wire, size_t len, size_t chunk, struct init_cmd *cmd,
                int *msgs)
{
	struct init_rx rx;
	size_t off = 0;

	init_rx_init(&rx, rx_mem, sizeof(rx_mem));
	init_cmd_init(cmd, cmd_mem, sizeof(cmd_mem));
	*msgs = 0;
	while (off < len) {
		size_t room;
		unsigned char *space = init_rx_space(&rx, &room);
		size_t n = chunk == 0 ? len - off : chunk;

		if (n > len - off)
			n = len - off;
		if (n > room)
			n = room;
		memcpy(space, wire + off, n);
		init_rx_commit(&rx, n);
		off += n;

		struct init_msg msg;
		int r;

		while ((r = init_rx_next(&rx, &msg)) > 0) {
			++*msgs;
			r = init_cmd_add(cmd, &msg);
			if (r != INIT_CMD_MORE)
				return r;
		}
		if (r < 0)
			return r;
	}
	return INIT_CMD_MORE;
}

static unsigned char wire[INIT_RX_MIN + 64];

static size_t full_command(unsigned char *w)
{
	size_t at = 0;

	at = put_str(w, at, VMPROC_MSG_ENV, "PATH=/x");
	at = put_str(w, at, VMPROC_MSG_ARG, "sh");
	at = put_u32(w, at, VMPROC_MSG_SIGNAL, 15);
	at = put_str(w, at, VMPROC_MSG_ARG, "-c");
	at = put_str(w, at, VMPROC_MSG_CWD, "/tmp");
	at = put_u32(w, at, VMPROC_MSG_UID, 1000);
	at = put_u32(w, at, VMPROC_MSG_GID, 100);
	at = put_size(w, at, VMPROC_MSG_TTY, 24, 80);
	at = put_str(w, at, VMPROC_MSG_ENV, "A=b=c");
	at = put_str(w, at, VMPROC_MSG_ARG, "");
	at = put_str(w, at, VMPROC_MSG_PROGRAM, "/bin/sh");
	at = put_u32(w, at, VMPROC_MSG_SIGNAL, 2);
	at = put_size(w, at, VMPROC_MSG_WINSIZE, 50, 132);
	at = put_u32(w, at, VMPROC_MSG_SIGNAL, 15);
	at = put_msg(w, at, VMPROC_MSG_RUN, NULL, 0);
	return at;
}

static bool full_command_ok(const struct init_cmd *c)
{
	return c->nargs == 3 && strcmp(c->argv[0], "sh") == 0 && strcmp(c->argv[1], "-c") == 0 &&
	       strcmp(c->argv[2], "") == 0 && c->argv[3] == NULL && c->nenv == 2 &&
	       strcmp(c->envp[0], "PATH=/x") == 0 && strcmp(c->envp[1], "A=b=c") == 0 &&
	       c->envp[2] == NULL && c->cwd != NULL && strcmp(c->cwd, "/tmp") == 0 &&
	       c->program != NULL && strcmp(c->program, "/bin/sh") == 0 && c->set_ids &&
	       c->uid == 1000 && c->gid == 100 && c->tty && c->rows == 50 && c->cols == 132 &&
	       c->signals == ((1ull << 14) | (1ull << 1)) &&
	       ((uintptr_t)c->argv % sizeof(char *)) == 0;
}

static void test_cmd_whole(void)
{
	struct init_cmd cmd;
	int msgs;
	size_t len = full_command(wire);

	CHECK_MSG(feed(wire, len, 0, &cmd, &msgs) == INIT_CMD_RUN && full_command_ok(&cmd),
	          "cmd: all messages in one read");
	CHECK_MSG(msgs == 15, "cmd: 15 messages");
}

static void test_cmd_split(void)
{
	struct init_cmd cmd;
	int msgs;
	size_t len = full_command(wire);
	bool all_ok = true;

	for (size_t chunk = 1; chunk <= 20; chunk++) {
		if (feed(wire, len, chunk, &cmd, &msgs) != INIT_CMD_RUN || !full_command_ok(&cmd))
			all_ok = false;
	}
	CHECK_MSG(all_ok, "cmd: split into reads of 1..20 bytes");
}

static void test_cmd_defaults(void)
{
	struct init_cmd cmd;
	int msgs;
	size_t at = put_str(wire, 0, VMPROC_MSG_ARG, "true");

	at = put_msg(wire, at, VMPROC_MSG_RUN, NULL, 0);
	CHECK_MSG(feed(wire, at, 0, &cmd, &msgs) == INIT_CMD_RUN, "cmd: ARG and RUN suffice");
	CHECK_MSG(cmd.nargs == 1 && strcmp(cmd.argv[0], "true") == 0 && cmd.argv[1] == NULL,
	          "cmd: argv");
	CHECK_MSG(cmd.nenv == 0 && cmd.envp[0] == NULL, "cmd: empty environment");
	CHECK_MSG(cmd.cwd == NULL && cmd.program == NULL && !cmd.set_ids && !cmd.tty &&
	              cmd.signals == 0,
	          "cmd: defaults");
}

static void test_cmd_stops_at_run(void)
{
	struct init_cmd cmd;
	int msgs;
	size_t at = put_str(wire, 0, VMPROC_MSG_ARG, "true");

	at = put_msg(wire, at, VMPROC_MSG_RUN, NULL, 0);
	at = put_u32(wire, at, VMPROC_MSG_SIGNAL, 9);
	CHECK_MSG(feed(wire, at, 0, &cmd, &msgs) == INIT_CMD_RUN && msgs == 2,
	          "cmd: RUN ends the command, later messages stay in the framer");
}

static int bad(unsigned type, const void *data, size_t len)
{
	struct init_cmd cmd;
	int msgs;
	size_t at = put_str(wire, 0, VMPROC_MSG_ARG, "x");

	at = put_msg(wire, at, type, data, len);
	at = put_msg(wire, at, VMPROC_MSG_RUN, NULL, 0);
	return feed(wire, at, 0, &cmd, &msgs);
}

static void test_cmd_malformed(void)
{
	struct init_cmd cmd;
	int msgs;

	CHECK_MSG(bad(VMPROC_MSG_UID, "abc", 3) == -EINVAL, "bad: UID of 3 bytes");
	CHECK_MSG(bad(VMPROC_MSG_GID, "abcde", 5) == -EINVAL, "bad: GID of 5 bytes");
	CHECK_MSG(bad(VMPROC_MSG_TTY, "ab", 2) == -EINVAL, "bad: TTY of 2 bytes");
	CHECK_MSG(bad(VMPROC_MSG_WINSIZE, "", 0) == -EINVAL, "bad: empty WINSIZE");
	CHECK_MSG(bad(VMPROC_MSG_SIGNAL, "abcdefgh", 8) == -EINVAL, "bad: SIGNAL of 8 bytes");
	CHECK_MSG(bad(VMPROC_MSG_RUN, "x", 1) == -EINVAL, "bad: RUN with payload");
	CHECK_MSG(bad(VMPROC_MSG_ARG, "a\0b", 3) == -EINVAL, "bad: NUL inside ARG");
	CHECK_MSG(bad(VMPROC_MSG_ENV, "A=\0", 3) == -EINVAL, "bad: NUL inside ENV");
	CHECK_MSG(bad(VMPROC_MSG_CWD, "\0", 1) == -EINVAL, "bad: NUL inside CWD");
	CHECK_MSG(bad(VMPROC_MSG_PROGRAM, "/bin/\0sh", 8) == -EINVAL, "bad: NUL inside PROGRAM");
	CHECK_MSG(bad(99, "", 0) == -EINVAL, "bad: unknown type");
	CHECK_MSG(bad(VMPROC_MSG_EXITED, "abcd", 4) == -EINVAL, "bad: guest-to-host type");
	CHECK_MSG(bad(VMPROC_MSG_SIGNAL, "\x00\x01\x00\x00", 4) == INIT_CMD_RUN,
	          "ok: SIGNAL 256 is dropped, not malformed");

	size_t at = put_str(wire, 0, VMPROC_MSG_ENV, "A=b");
	at = put_msg(wire, at, VMPROC_MSG_RUN, NULL, 0);
	CHECK_MSG(feed(wire, at, 0, &cmd, &msgs) == -EINVAL, "bad: no ARG at all");
}

static void test_cmd_sizes(void)
{
	struct init_cmd cmd;
	int msgs;
	static char big[VMPROC_MSG_MAX];

	memset(big, 'a', sizeof(big));
	/* The largest message fits the framer (but not this small arena). */
	size_t at = put_msg(wire, 0, VMPROC_MSG_ARG, big, VMPROC_MSG_MAX);
	CHECK_MSG(feed(wire, at, 0, &cmd, &msgs) == -E2BIG && msgs == 1,
	          "size: 1 MiB ARG framed, too big for a 64 KiB arena");
	at = put_msg(wire, 0, VMPROC_MSG_ARG, big, VMPROC_MSG_MAX);
	CHECK_MSG(feed(wire, at, 4096, &cmd, &msgs) == -E2BIG && msgs == 1,
	          "size: 1 MiB ARG framed from 4 KiB reads");

	/* One byte over: the header alone is refused. */
	at = put_msg(wire, 0, VMPROC_MSG_ARG, NULL, 0);
	wire[4] = 1;
	wire[5] = 0;
	wire[6] = 0x10; /* len = 0x100001 */
	CHECK_MSG(feed(wire, at, 0, &cmd, &msgs) == -E2BIG && msgs == 0, "size: MAX+1 refused");
	wire[4] = wire[5] = wire[6] = wire[7] = 0xff;
	CHECK_MSG(feed(wire, at, 0, &cmd, &msgs) == -E2BIG, "size: 4 GiB refused");

	/* Strings exactly filling the arena leave no room for argv. */
	struct init_cmd small;
	static char mem[64];
	struct init_msg m = {VMPROC_MSG_ARG, 60, (const unsigned char *)big};
	struct init_msg run = {VMPROC_MSG_RUN, 0, NULL};

	init_cmd_init(&small, mem, sizeof(mem));
	CHECK_MSG(init_cmd_add(&small, &m) == INIT_CMD_MORE, "size: 60 bytes fit 64");
	CHECK_MSG(init_cmd_add(&small, &m) == -E2BIG, "size: arena full");
	CHECK_MSG(init_cmd_add(&small, &run) == -E2BIG, "size: no room for argv");

	init_cmd_init(&small, mem, sizeof(mem));
	m.len = 20;
	CHECK_MSG(init_cmd_add(&small, &m) == INIT_CMD_MORE &&
	              init_cmd_add(&small, &run) == INIT_CMD_RUN && strlen(small.argv[0]) == 20,
	          "size: room for argv");
}

static void test_rx_partial(void)
{
	struct init_rx rx;
	struct init_msg msg;
	size_t room;
	size_t at = put_str(wire, 0, VMPROC_MSG_ARG, "hello");

	at = put_str(wire, at, VMPROC_MSG_ENV, "X=1");
	init_rx_init(&rx, rx_mem, sizeof(rx_mem));
	memcpy(init_rx_space(&rx, &room), wire, 7);
	init_rx_commit(&rx, 7);
	CHECK_MSG(room == sizeof(rx_mem), "rx: whole buffer free at first");
	CHECK_MSG(init_rx_next(&rx, &msg) == 0, "rx: partial header waits");
	memcpy(init_rx_space(&rx, &room), wire + 7, 15);
	init_rx_commit(&rx, 15);
	CHECK_MSG(init_rx_next(&rx, &msg) == 1 && msg.type == VMPROC_MSG_ARG && msg.len == 5 &&
	              memcmp(msg.data, "hello", 5) == 0,
	          "rx: first message");
	CHECK_MSG(init_rx_next(&rx, &msg) == 0, "rx: second one partial");
	unsigned char *space = init_rx_space(&rx, &room);
	CHECK_MSG(space == rx_mem + 9 && room == sizeof(rx_mem) - 9, "rx: rest moved to the front");
	memcpy(space, wire + 22, at - 22);
	init_rx_commit(&rx, at - 22);
	CHECK_MSG(init_rx_next(&rx, &msg) == 1 && msg.type == VMPROC_MSG_ENV && msg.len == 3 &&
	              memcmp(msg.data, "X=1", 3) == 0,
	          "rx: second message");
	CHECK_MSG(init_rx_next(&rx, &msg) == 0, "rx: empty");
	init_rx_space(&rx, &room);
	CHECK_MSG(room == sizeof(rx_mem), "rx: empty buffer reset");
}

static void test_msg_codec(void)
{
	unsigned char out[INIT_MSG_U32_SIZE];
	static const unsigned char expect[] = {33, 0, 0, 0, 4, 0, 0, 0, 0x0f, 0x8b, 0, 0x80};

	init_msg_encode_u32(out, VMPROC_MSG_EXITED, 0x80008b0fu);
	CHECK_MSG(memcmp(out, expect, sizeof(expect)) == 0, "codec: EXITED little endian");
	CHECK_MSG(INIT_MSG_HDR == sizeof(struct vmproc_msg_hdr), "codec: header size");

	unsigned v;
	unsigned short rows, cols;
	struct init_msg m = {VMPROC_MSG_WINSIZE, 4, (const unsigned char *)"\x18\x01\x50\x00"};

	CHECK_MSG(init_msg_size(&m, &rows, &cols) && rows == 0x118 && cols == 80, "codec: size");
	CHECK_MSG(init_msg_u32(&m, &v) && v == 0x00500118u, "codec: u32");
	m.len = 3;
	CHECK_MSG(!init_msg_u32(&m, &v) && !init_msg_size(&m, &rows, &cols), "codec: bad length");
}

/* A TIME payload: le64 seconds, le32 nanoseconds. */
static void time_payload(unsigned char *b, unsigned long long sec, unsigned nsec)
{
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(sec >> (8 * i));
	for (int i = 0; i < 4; i++)
		b[8 + i] = (unsigned char)(nsec >> (8 * i));
}

static void test_cmd_time_and_seed(void)
{
	struct init_cmd cmd;
	int msgs;
	unsigned char t[VMPROC_MSG_TIME_LEN + 1];
	unsigned char seed[VMPROC_SEED_MAX + 1];
	long long sec;
	unsigned nsec;

	CHECK_MSG(VMPROC_MSG_TIME_LEN == 12, "time: 8 + 4 bytes");
	time_payload(t, 0x0102030405060708ull, 999999999);
	struct init_msg m = {VMPROC_MSG_TIME, 12, t};
	CHECK_MSG(init_msg_time(&m, &sec, &nsec) && sec == 0x0102030405060708ll &&
	              nsec == 999999999,
	          "time: little endian, 999999999 ns");
	time_payload(t, ~0ull, 0);
	CHECK_MSG(init_msg_time(&m, &sec, &nsec) && sec == -1 && nsec == 0,
	          "time: negative seconds");
	time_payload(t, 1ull << 63, 0);
	CHECK_MSG(init_msg_time(&m, &sec, &nsec) && sec == INT64_MIN, "time: INT64_MIN");
	time_payload(t, 5, 1000000000);
	CHECK_MSG(!init_msg_time(&m, &sec, &nsec), "time: 1e9 ns refused");
	time_payload(t, 5, 0xffffffffu);
	CHECK_MSG(!init_msg_time(&m, &sec, &nsec), "time: 2^32-1 ns refused");
	time_payload(t, 5, 0);
	m.len = 11;
	CHECK_MSG(!init_msg_time(&m, &sec, &nsec), "time: 11 bytes refused");
	m.len = 13;
	CHECK_MSG(!init_msg_time(&m, &sec, &nsec), "time: 13 bytes refused");

	/* In a command, with RUN. */
	for (size_t i = 0; i < sizeof(seed); i++)
		seed[i] = (unsigned char)(i * 7 + 1);
	time_payload(t, 1700000000, 42);
	size_t at = put_msg(wire, 0, VMPROC_MSG_TIME, t, 12);
	at = put_msg(wire, at, VMPROC_MSG_SEED, seed, VMPROC_SEED_MIN);
	at = put_str(wire, at, VMPROC_MSG_ARG, "true");
	at = put_msg(wire, at, VMPROC_MSG_RUN, NULL, 0);
	CHECK_MSG(feed(wire, at, 0, &cmd, &msgs) == INIT_CMD_RUN && cmd.set_time &&
	              cmd.time_sec == 1700000000 && cmd.time_nsec == 42 &&
	              cmd.seed_len == VMPROC_SEED_MIN &&
	              memcmp(cmd.seed, seed, VMPROC_SEED_MIN) == 0 &&
	              strcmp(cmd.argv[0], "true") == 0,
	          "cmd: TIME and SEED kept");
	CHECK_MSG(feed(wire, at, 5, &cmd, &msgs) == INIT_CMD_RUN && cmd.set_time &&
	              cmd.seed_len == VMPROC_SEED_MIN &&
	              memcmp(cmd.seed, seed, VMPROC_SEED_MIN) == 0,
	          "cmd: TIME and SEED from 5-byte reads");

	/* The largest seed; a second SEED replaces the first. */
	at = put_msg(wire, 0, VMPROC_MSG_SEED, seed + 1, 100);
	at = put_msg(wire, at, VMPROC_MSG_SEED, seed, VMPROC_SEED_MAX);
	at = put_str(wire, at, VMPROC_MSG_ARG, "true");
	at = put_msg(wire, at, VMPROC_MSG_RUN, NULL, 0);
	CHECK_MSG(feed(wire, at, 0, &cmd, &msgs) == INIT_CMD_RUN && !cmd.set_time &&
	              cmd.seed_len == VMPROC_SEED_MAX &&
	              memcmp(cmd.seed, seed, VMPROC_SEED_MAX) == 0,
	          "cmd: 256-byte SEED, the last one counts");

	/* Neither: nothing to apply. */
	at = put_str(wire, 0, VMPROC_MSG_ARG, "true");
	at = put_msg(wire, at, VMPROC_MSG_RUN, NULL, 0);
	CHECK_MSG(feed(wire, at, 0, &cmd, &msgs) == INIT_CMD_RUN && !cmd.set_time &&
	              cmd.seed_len == 0,
	          "cmd: no TIME, no SEED");

	CHECK_MSG(bad(VMPROC_MSG_SEED, seed, VMPROC_SEED_MIN - 1) == -EINVAL,
	          "bad: SEED of 31 bytes");
	CHECK_MSG(bad(VMPROC_MSG_SEED, seed, VMPROC_SEED_MAX + 1) == -EINVAL,
	          "bad: SEED of 257 bytes");
	CHECK_MSG(bad(VMPROC_MSG_SEED, NULL, 0) == -EINVAL, "bad: empty SEED");
	CHECK_MSG(bad(VMPROC_MSG_TIME, t, 11) == -EINVAL, "bad: TIME of 11 bytes");
	CHECK_MSG(bad(VMPROC_MSG_TIME, t, 13) == -EINVAL, "bad: TIME of 13 bytes");
	time_payload(t, 1700000000, 1000000000);
	CHECK_MSG(bad(VMPROC_MSG_TIME, t, 12) == -EINVAL, "bad: TIME of 1e9 ns");
}

/* A ROOT or MOUNT payload: flags, then (MOUNT) the entry's length, entry,
 * path. */
static size_t fs_payload(unsigned char *b, unsigned flags, const char *entry, const char *path)
{
	size_t at = 0;
	size_t n = strlen(entry);

	for (int i = 0; i < 4; i++)
		b[at++] = (unsigned char)(flags >> (8 * i));
	if (path != NULL) {
		for (int i = 0; i < 4; i++)
			b[at++] = (unsigned char)(n >> (8 * i));
	}
	memcpy(b + at, entry, n);
	at += n;
	if (path != NULL) {
		memcpy(b + at, path, strlen(path));
		at += strlen(path);
	}
	return at;
}

static void test_cmd_root_and_mounts(void)
{
	struct init_cmd cmd;
	int msgs;
	unsigned char b[256];
	size_t at = put_str(wire, 0, VMPROC_MSG_ARG, "true");

	at = put_msg(wire, at, VMPROC_MSG_ROOT, b,
	             fs_payload(b, VMPROC_ROOT_F_OVERLAY, "root", NULL));
	at = put_msg(wire, at, VMPROC_MSG_MOUNT, b,
	             fs_payload(b, VMPROC_MOUNT_F_READONLY, "s0", "/mnt/a b"));
	at = put_msg(wire, at, VMPROC_MSG_MOUNT, b, fs_payload(b, 0, "d1", "/data"));
	at = put_msg(wire, at, VMPROC_MSG_RUN, NULL, 0);
	CHECK_MSG(feed(wire, at, 3, &cmd, &msgs) == INIT_CMD_RUN && cmd.root_entry != NULL &&
	              strcmp(cmd.root_entry, "root") == 0 &&
	              cmd.root_flags == VMPROC_ROOT_F_OVERLAY && cmd.nmounts == 2 &&
	              strcmp(cmd.mounts[0].entry, "s0") == 0 &&
	              strcmp(cmd.mounts[0].path, "/mnt/a b") == 0 &&
	              cmd.mounts[0].flags == VMPROC_MOUNT_F_READONLY &&
	              strcmp(cmd.mounts[1].entry, "d1") == 0 &&
	              strcmp(cmd.mounts[1].path, "/data") == 0 && cmd.mounts[1].flags == 0 &&
	              cmd.nargs == 1 && strcmp(cmd.argv[0], "true") == 0 && cmd.argv[1] == NULL,
	          "cmd: ROOT and MOUNTs kept, in order, argv intact");

	/* Without any: nothing to mount. */
	at = put_str(wire, 0, VMPROC_MSG_ARG, "true");
	at = put_msg(wire, at, VMPROC_MSG_RUN, NULL, 0);
	CHECK_MSG(feed(wire, at, 0, &cmd, &msgs) == INIT_CMD_RUN && cmd.root_entry == NULL &&
	              cmd.nmounts == 0,
	          "cmd: no ROOT, no MOUNT");

	/* At most VMPROC_MOUNT_MAX. */
	at = put_str(wire, 0, VMPROC_MSG_ARG, "true");
	for (int i = 0; i <= VMPROC_MOUNT_MAX; i++)
		at = put_msg(wire, at, VMPROC_MSG_MOUNT, b, fs_payload(b, 0, "s0", "/m"));
	at = put_msg(wire, at, VMPROC_MSG_RUN, NULL, 0);
	CHECK_MSG(feed(wire, at, 0, &cmd, &msgs) == -E2BIG, "bad: one MOUNT too many");

	size_t n = fs_payload(b, 0, "s0", "/m");
	CHECK_MSG(bad(VMPROC_MSG_MOUNT, b, 7) == -EINVAL, "bad: MOUNT of 7 bytes");
	CHECK_MSG(bad(VMPROC_MSG_MOUNT, b, n - 2) == -EINVAL, "bad: MOUNT without a path");
	CHECK_MSG(bad(VMPROC_MSG_MOUNT, b, fs_payload(b, 0, "s0", "m")) == -EINVAL,
	          "bad: MOUNT at a relative path");
	CHECK_MSG(bad(VMPROC_MSG_MOUNT, b, fs_payload(b, 0, "", "/m")) == -EINVAL,
	          "bad: MOUNT of an empty entry");
	CHECK_MSG(bad(VMPROC_MSG_MOUNT, b, fs_payload(b, 0, "..", "/m")) == -EINVAL,
	          "bad: MOUNT of entry ..");
	CHECK_MSG(bad(VMPROC_MSG_MOUNT, b, fs_payload(b, 0, "a/b", "/m")) == -EINVAL,
	          "bad: MOUNT of an entry with a slash");
	CHECK_MSG(bad(VMPROC_MSG_MOUNT, b, fs_payload(b, 4, "s0", "/m")) == -EINVAL,
	          "bad: MOUNT with unknown flags");
	n = fs_payload(b, 0, "s0", "/m");
	b[4] = 0xff; /* entry length past the payload */
	CHECK_MSG(bad(VMPROC_MSG_MOUNT, b, n) == -EINVAL, "bad: MOUNT entry length too long");
	n = fs_payload(b, 0, "s0", "/m");
	b[n] = '\0';
	b[n + 1] = 'x';
	CHECK_MSG(bad(VMPROC_MSG_MOUNT, b, n + 2) == -EINVAL, "bad: MOUNT path with a NUL");
	CHECK_MSG(bad(VMPROC_MSG_ROOT, b, fs_payload(b, 0, "", NULL)) == -EINVAL,
	          "bad: empty ROOT");
	CHECK_MSG(bad(VMPROC_MSG_ROOT, b, fs_payload(b, 3, "root", NULL)) == -EINVAL,
	          "bad: ROOT both read-only and overlay");
	CHECK_MSG(bad(VMPROC_MSG_ROOT, b, fs_payload(b, 8, "root", NULL)) == -EINVAL,
	          "bad: ROOT with unknown flags");
	CHECK_MSG(bad(VMPROC_MSG_ROOT, b, fs_payload(b, 0, ".", NULL)) == -EINVAL,
	          "bad: ROOT of .");
}

TEST_LIST(T(test_exit_status), T(test_exec_failure_status), T(test_system_disk_absent),
          T(test_debug_requested), T(test_line), T(test_channel_requested), T(test_env_get),
          T(test_path_next), T(test_prewarm_parse), T(test_rx_partial), T(test_msg_codec),
          T(test_cmd_whole), T(test_cmd_split), T(test_cmd_defaults), T(test_cmd_stops_at_run),
          T(test_cmd_malformed), T(test_cmd_sizes), T(test_cmd_time_and_seed),
          T(test_cmd_root_and_mounts))
