/* The command builder (src/api/command.c): the public setters of
 * include/vmproc.h ("Commands"), checked through their return values,
 * vmproc_cmd_error and the struct they fill (src/api/command.h), and the
 * per-spawn TIME and SEED payloads (cmd_fresh). No VM: vmproc_spawn is not
 * exercised here. */
#include <errno.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/command.h"
#include "harness.h"
#include "vmproc.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static vmproc_cmd *new_cmd(const char *program)
{
	vmproc_cmd *cmd = NULL;
	int rc = vmproc_cmd_new(&cmd, program);
	CHECK_MSG(rc == 0 && cmd, "vmproc_cmd_new(\"%s\"): %d", program, rc);
	return cmd;
}

/* The index of key's entry in the environment, or -1. */
static long env_index(const vmproc_cmd *cmd, const char *key)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i < cmd->nenv; i++)
		if (strncmp(cmd->env[i], key, kl) == 0 && cmd->env[i][kl] == '=')
			return (long)i;
	return -1;
}

/* Whether key is set, to value. */
static bool env_is(const vmproc_cmd *cmd, const char *key, const char *value)
{
	long i = env_index(cmd, key);
	return i >= 0 && strcmp(cmd->env[i] + strlen(key) + 1, value) == 0;
}

/* Every entry is KEY=VALUE with a non-empty key, and no key twice. */
static bool env_well_formed(const vmproc_cmd *cmd)
{
	for (size_t i = 0; i < cmd->nenv; i++) {
		const char *eq = strchr(cmd->env[i], '=');
		if (!eq || eq == cmd->env[i])
			return false;
		size_t kl = (size_t)(eq - cmd->env[i]);
		for (size_t j = i + 1; j < cmd->nenv; j++)
			if (strncmp(cmd->env[j], cmd->env[i], kl + 1) == 0)
				return false;
	}
	return true;
}

/* A snapshot of the environment, to check a call left it unchanged. */
struct env_copy {
	size_t n;
	char *e[64];
};

static void env_save(const vmproc_cmd *cmd, struct env_copy *c)
{
	c->n = cmd->nenv < 64 ? cmd->nenv : 64;
	for (size_t i = 0; i < c->n; i++)
		c->e[i] = strdup(cmd->env[i]);
}

static bool env_same(const vmproc_cmd *cmd, const struct env_copy *c)
{
	if (cmd->nenv != c->n)
		return false;
	for (size_t i = 0; i < c->n; i++)
		if (!c->e[i] || strcmp(cmd->env[i], c->e[i]) != 0)
			return false;
	return true;
}

static void env_release(struct env_copy *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->e[i]);
	c->n = 0;
}

static bool has_error(const vmproc_cmd *cmd)
{
	const char *e = vmproc_cmd_error(cmd);
	return e && e[0] != '\0';
}

static bool no_error(const vmproc_cmd *cmd)
{
	const char *e = vmproc_cmd_error(cmd);
	return e && e[0] == '\0';
}

/* A call that must fail with code and leave a message. */
#define EXPECT_FAIL(cmd, call, code)                                                               \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		CHECK_MSG(rc_ == (code), "%s returned %d, want %d", #call, rc_, code);             \
		CHECK_MSG(has_error(cmd), "%s left no message", #call);                            \
	} while (0)

/* A call that must succeed and clear the message. */
#define EXPECT_OK(cmd, call)                                                                       \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		CHECK_MSG(rc_ == 0, "%s returned %d: %s", #call, rc_, vmproc_cmd_error(cmd));      \
		CHECK_MSG(no_error(cmd), "%s kept the message \"%s\"", #call,                      \
		          vmproc_cmd_error(cmd));                                                  \
	} while (0)

static long read_none(void *buf, size_t len, void *userdata)
{
	(void)buf;
	(void)len;
	(void)userdata;
	return 0;
}

static int write_none(const void *data, size_t len, void *userdata)
{
	(void)data;
	(void)len;
	(void)userdata;
	return 0;
}

/* ------------------------------------------------------------------ */

static void new_rejects_bad_program(void)
{
	vmproc_cmd *cmd = (vmproc_cmd *)(uintptr_t)0x1;
	CHECK(vmproc_cmd_new(&cmd, NULL) == -EINVAL);
	CHECK(cmd == NULL);
	cmd = (vmproc_cmd *)(uintptr_t)0x1;
	CHECK(vmproc_cmd_new(&cmd, "") == -EINVAL);
	CHECK(cmd == NULL);
	CHECK(vmproc_cmd_new(NULL, "ls") == -EINVAL);
	CHECK(vmproc_cmd_new(NULL, NULL) == -EINVAL);
	/* A one-character program is fine. */
	CHECK(vmproc_cmd_new(&cmd, "x") == 0 && cmd);
	vmproc_cmd_free(cmd);
}

static void new_has_the_documented_defaults(void)
{
	char prog[] = "/usr/bin/env";
	vmproc_cmd *cmd = new_cmd(prog);
	if (!cmd)
		return;
	/* The program is copied. */
	prog[1] = 'X';
	CHECK(strcmp(cmd->program, "/usr/bin/env") == 0);
	CHECK(cmd->arg0 == NULL);
	CHECK(cmd->nargs == 0);
	CHECK(cmd->cwd && strcmp(cmd->cwd, "/") == 0);
	CHECK(cmd->uid == 0 && cmd->gid == 0);
	CHECK(!cmd->tty);
	for (int s = 0; s < 3; s++) {
		CHECK_MSG(cmd->stdio[s].mode == STDIO_DEFAULT, "stream %d mode %d", s,
		          (int)cmd->stdio[s].mode);
		CHECK_MSG(cmd->stdio[s].fd == -1, "stream %d fd %d", s, cmd->stdio[s].fd);
		CHECK(cmd->stdio[s].data == NULL && cmd->stdio[s].len == 0);
	}
	CHECK(no_error(cmd));
	vmproc_cmd_free(cmd);
}

static void default_env_has_path_and_home(void)
{
	vmproc_cmd *cmd = new_cmd("ls");
	if (!cmd)
		return;
	CHECK(cmd->nenv >= 2);
	CHECK(env_index(cmd, "PATH") == 0 && strcmp(cmd->env[0], DEFAULT_PATH) == 0);
	CHECK(env_index(cmd, "HOME") == 1 && strcmp(cmd->env[1], "HOME=/root") == 0);
	/* On some hosts a GLIBC_TUNABLES follows (see README); nothing else. */
	for (size_t i = 2; i < cmd->nenv; i++)
		CHECK_MSG(strncmp(cmd->env[i], "GLIBC_TUNABLES=", 15) == 0, "unexpected \"%s\"",
		          cmd->env[i]);
	CHECK(cmd->nenv <= 3);
	CHECK(env_well_formed(cmd));
	/* Two commands do not share their environment. */
	vmproc_cmd *other = new_cmd("ls");
	if (!other) {
		vmproc_cmd_free(cmd);
		return;
	}
	CHECK(vmproc_cmd_env(other, "HOME", "/home/x") == 0);
	CHECK(env_is(cmd, "HOME", "/root"));
	CHECK(env_is(other, "HOME", "/home/x"));
	vmproc_cmd_free(other);
	vmproc_cmd_free(cmd);
}

static void env_rejects_bad_keys(void)
{
	vmproc_cmd *cmd = new_cmd("ls");
	if (!cmd)
		return;
	struct env_copy before;
	env_save(cmd, &before);

	EXPECT_FAIL(cmd, vmproc_cmd_env(cmd, "", "v"), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_env(cmd, "A=B", "v"), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_env(cmd, "=", "v"), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_env(cmd, "KEY=", "v"), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_env(cmd, "=KEY", "v"), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_env(cmd, NULL, "v"), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_env(cmd, "K", NULL), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_env(cmd, NULL, NULL), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_env(cmd, "PATH=x", "y"), -EINVAL);

	EXPECT_FAIL(cmd, vmproc_cmd_env_string(cmd, "NOEQUALS"), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_env_string(cmd, "=value"), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_env_string(cmd, "="), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_env_string(cmd, ""), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_env_string(cmd, NULL), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_env_remove(cmd, NULL), -EINVAL);

	/* None of it changed the environment. */
	CHECK(env_same(cmd, &before));

	/* A NULL command: an error code, no crash. */
	CHECK(vmproc_cmd_env(NULL, "K", "v") == -EINVAL);
	CHECK(vmproc_cmd_env_string(NULL, "K=v") == -EINVAL);
	CHECK(vmproc_cmd_env_remove(NULL, "K") == -EINVAL);
	CHECK(vmproc_cmd_env_clear(NULL) == -EINVAL);
	env_release(&before);
	vmproc_cmd_free(cmd);
}

static void env_set_twice_replaces_in_place(void)
{
	vmproc_cmd *cmd = new_cmd("ls");
	if (!cmd)
		return;
	size_t base = cmd->nenv;
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "FOO", "1"));
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "BAR", "2"));
	EXPECT_OK(cmd, vmproc_cmd_env_string(cmd, "BAZ=3"));
	CHECK(cmd->nenv == base + 3);
	CHECK(env_index(cmd, "FOO") == (long)base && env_index(cmd, "BAR") == (long)base + 1 &&
	      env_index(cmd, "BAZ") == (long)base + 2);

	/* Replaced where it stands, by either call. */
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "FOO", "one"));
	CHECK(cmd->nenv == base + 3);
	CHECK(env_index(cmd, "FOO") == (long)base && env_is(cmd, "FOO", "one"));
	EXPECT_OK(cmd, vmproc_cmd_env_string(cmd, "BAR=x=y"));
	CHECK(cmd->nenv == base + 3);
	CHECK(env_index(cmd, "BAR") == (long)base + 1 && env_is(cmd, "BAR", "x=y"));
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "PATH", "/bin"));
	CHECK(env_index(cmd, "PATH") == 0 && strcmp(cmd->env[0], "PATH=/bin") == 0);
	CHECK(cmd->nenv == base + 3);

	/* Keys that are prefixes of one another are different keys. */
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "FO", "p"));
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "FOOD", "q"));
	CHECK(cmd->nenv == base + 5);
	CHECK(env_is(cmd, "FOO", "one"));
	CHECK(env_is(cmd, "FO", "p") && env_is(cmd, "FOOD", "q"));

	/* Empty values are values; '=' in a value is fine. */
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "EMPTY", ""));
	EXPECT_OK(cmd, vmproc_cmd_env_string(cmd, "E2="));
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "EQ", "a=b=c"));
	CHECK(env_is(cmd, "EMPTY", "") && env_is(cmd, "E2", ""));
	CHECK(env_is(cmd, "EQ", "a=b=c"));
	CHECK(env_well_formed(cmd));

	/* The caller's strings are copied. */
	char key[] = "MINE", value[] = "before", kv[] = "KV=before";
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, key, value));
	EXPECT_OK(cmd, vmproc_cmd_env_string(cmd, kv));
	key[0] = 'X';
	value[0] = 'X';
	kv[0] = 'X';
	kv[4] = 'X';
	CHECK(env_is(cmd, "MINE", "before"));
	CHECK(env_is(cmd, "KV", "before"));

	/* Many variables: all kept, in order, replacing still in place. */
	size_t n0 = cmd->nenv;
	for (int i = 0; i < 300; i++) {
		char k[16], v[16];
		snprintf(k, sizeof(k), "V%d", i);
		snprintf(v, sizeof(v), "%d", i * 3);
		CHECK(vmproc_cmd_env(cmd, k, v) == 0);
	}
	CHECK(cmd->nenv == n0 + 300);
	CHECK(vmproc_cmd_env(cmd, "V150", "new") == 0);
	CHECK(cmd->nenv == n0 + 300);
	CHECK(env_index(cmd, "V150") == (long)(n0 + 150));
	CHECK(strcmp(cmd->env[n0 + 150], "V150=new") == 0);
	CHECK(strcmp(cmd->env[n0 + 299], "V299=897") == 0);
	CHECK(env_well_formed(cmd));
	vmproc_cmd_free(cmd);
}

static void env_remove_and_clear(void)
{
	vmproc_cmd *cmd = new_cmd("ls");
	if (!cmd)
		return;
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "A", "1"));
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "B", "2"));
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "C", "3"));
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "D", "4"));
	struct env_copy before;
	env_save(cmd, &before);

	/* Absent keys: 0, nothing changes. */
	EXPECT_OK(cmd, vmproc_cmd_env_remove(cmd, "NOPE"));
	EXPECT_OK(cmd, vmproc_cmd_env_remove(cmd, "AB"));
	CHECK(vmproc_cmd_env_remove(cmd, "") == -EINVAL);
	CHECK(vmproc_cmd_env_remove(cmd, "A=1") == -EINVAL); /* a name, not a pair */
	EXPECT_OK(cmd, vmproc_cmd_env_remove(cmd, "PAT"));
	CHECK(env_same(cmd, &before));
	env_release(&before);

	/* Removing one keeps the others in order. */
	size_t n = cmd->nenv;
	long b = env_index(cmd, "B");
	EXPECT_OK(cmd, vmproc_cmd_env_remove(cmd, "B"));
	CHECK(cmd->nenv == n - 1 && env_index(cmd, "B") < 0);
	CHECK(env_index(cmd, "A") == b - 1 && env_index(cmd, "C") == b &&
	      env_index(cmd, "D") == b + 1);
	EXPECT_OK(cmd, vmproc_cmd_env_remove(cmd, "B"));
	CHECK(cmd->nenv == n - 1);
	/* The defaults can go too; the last entry as well. */
	EXPECT_OK(cmd, vmproc_cmd_env_remove(cmd, "HOME"));
	EXPECT_OK(cmd, vmproc_cmd_env_remove(cmd, "C"));
	CHECK(env_index(cmd, "HOME") < 0 && env_index(cmd, "C") < 0);
	CHECK(env_index(cmd, "PATH") == 0 && env_index(cmd, "A") >= 0);
	/* Set again after removal: appended at the end. */
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "B", "again"));
	CHECK(env_index(cmd, "B") == (long)cmd->nenv - 1);

	/* Clear: nothing left, the defaults included. */
	EXPECT_OK(cmd, vmproc_cmd_env_clear(cmd));
	CHECK(cmd->nenv == 0);
	CHECK(env_index(cmd, "PATH") < 0 && env_index(cmd, "HOME") < 0);
	EXPECT_OK(cmd, vmproc_cmd_env_clear(cmd));
	EXPECT_OK(cmd, vmproc_cmd_env_remove(cmd, "PATH"));
	CHECK(cmd->nenv == 0);
	/* And it fills up again. */
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "ONLY", "1"));
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "ONLY", "2"));
	CHECK(cmd->nenv == 1 && strcmp(cmd->env[0], "ONLY=2") == 0);
	EXPECT_OK(cmd, vmproc_cmd_env_remove(cmd, "ONLY"));
	CHECK(cmd->nenv == 0);
	vmproc_cmd_free(cmd);
}

static void args_in_order_and_arg0(void)
{
	vmproc_cmd *cmd = new_cmd("/bin/echo");
	if (!cmd)
		return;
	EXPECT_OK(cmd, vmproc_cmd_arg(cmd, "one"));
	EXPECT_OK(cmd, vmproc_cmd_arg(cmd, ""));
	EXPECT_OK(cmd, vmproc_cmd_arg(cmd, "two words"));
	EXPECT_OK(cmd, vmproc_cmd_arg(cmd, "--opt=x"));
	EXPECT_FAIL(cmd, vmproc_cmd_arg(cmd, NULL), -EINVAL);
	CHECK(cmd->nargs == 4);
	static const char *const want[4] = {"one", "", "two words", "--opt=x"};
	for (size_t i = 0; i < 4 && i < cmd->nargs; i++)
		CHECK_MSG(strcmp(cmd->args[i], want[i]) == 0, "arg %zu is \"%s\"", i, cmd->args[i]);

	/* Arguments are copied. */
	char a[] = "mine";
	EXPECT_OK(cmd, vmproc_cmd_arg(cmd, a));
	a[0] = 'X';
	CHECK(cmd->nargs == 5 && strcmp(cmd->args[4], "mine") == 0);

	/* argv[0]: the program until set, then replaced by each call. */
	CHECK(cmd->arg0 == NULL);
	EXPECT_OK(cmd, vmproc_cmd_arg0(cmd, "first"));
	CHECK(cmd->arg0 && strcmp(cmd->arg0, "first") == 0);
	char second[] = "second";
	EXPECT_OK(cmd, vmproc_cmd_arg0(cmd, second));
	second[0] = 'X';
	CHECK(cmd->arg0 && strcmp(cmd->arg0, "second") == 0);
	EXPECT_FAIL(cmd, vmproc_cmd_arg0(cmd, NULL), -EINVAL);
	CHECK(cmd->arg0 && strcmp(cmd->arg0, "second") == 0);
	EXPECT_OK(cmd, vmproc_cmd_arg0(cmd, ""));
	CHECK(cmd->arg0 && cmd->arg0[0] == '\0');
	/* Neither touches the program or the other arguments. */
	CHECK(strcmp(cmd->program, "/bin/echo") == 0);
	CHECK(cmd->nargs == 5 && strcmp(cmd->args[0], "one") == 0);

	/* Many arguments. */
	for (int i = 0; i < 1000; i++) {
		char s[16];
		snprintf(s, sizeof(s), "a%d", i);
		CHECK(vmproc_cmd_arg(cmd, s) == 0);
	}
	CHECK(cmd->nargs == 1005);
	CHECK(strcmp(cmd->args[5], "a0") == 0 && strcmp(cmd->args[1004], "a999") == 0);
	CHECK(strcmp(cmd->args[505], "a500") == 0);

	CHECK(vmproc_cmd_arg(NULL, "x") == -EINVAL);
	CHECK(vmproc_cmd_arg0(NULL, "x") == -EINVAL);
	vmproc_cmd_free(cmd);
}

static void cwd_and_ids(void)
{
	vmproc_cmd *cmd = new_cmd("ls");
	if (!cmd)
		return;
	EXPECT_FAIL(cmd, vmproc_cmd_cwd(cmd, ""), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_cwd(cmd, NULL), -EINVAL);
	CHECK(strcmp(cmd->cwd, "/") == 0);
	char dir[] = "/tmp/work";
	EXPECT_OK(cmd, vmproc_cmd_cwd(cmd, dir));
	dir[1] = 'X';
	CHECK(strcmp(cmd->cwd, "/tmp/work") == 0);
	EXPECT_FAIL(cmd, vmproc_cmd_cwd(cmd, ""), -EINVAL);
	CHECK(strcmp(cmd->cwd, "/tmp/work") == 0);
	EXPECT_OK(cmd, vmproc_cmd_cwd(cmd, "/"));
	CHECK(strcmp(cmd->cwd, "/") == 0);
	CHECK(vmproc_cmd_cwd(NULL, "/") == -EINVAL);

	EXPECT_OK(cmd, vmproc_cmd_uid(cmd, 1000));
	EXPECT_OK(cmd, vmproc_cmd_gid(cmd, 100));
	CHECK(cmd->uid == 1000 && cmd->gid == 100);
	EXPECT_OK(cmd, vmproc_cmd_uid(cmd, 0));
	CHECK(cmd->uid == 0 && cmd->gid == 100);
	CHECK(vmproc_cmd_uid(NULL, 1) == -EINVAL && vmproc_cmd_gid(NULL, 1) == -EINVAL);
	vmproc_cmd_free(cmd);
}

static void tty_size_is_checked(void)
{
	vmproc_cmd *cmd = new_cmd("sh");
	if (!cmd)
		return;
	static const unsigned bad[][2] = {
	    {0, 80}, {24, 0}, {0, 0}, {65536, 80}, {24, 65536}, {UINT_MAX, 80}, {24, UINT_MAX},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = vmproc_cmd_tty(cmd, bad[i][0], bad[i][1]);
		CHECK_MSG(rc == -EINVAL, "%ux%u returned %d", bad[i][0], bad[i][1], rc);
		CHECK_MSG(has_error(cmd), "%ux%u: no message", bad[i][0], bad[i][1]);
		CHECK_MSG(!cmd->tty, "%ux%u set tty", bad[i][0], bad[i][1]);
	}
	EXPECT_OK(cmd, vmproc_cmd_tty(cmd, 24, 80));
	CHECK(cmd->tty && cmd->rows == 24 && cmd->cols == 80);
	/* A bad size later leaves the good one. */
	EXPECT_FAIL(cmd, vmproc_cmd_tty(cmd, 0, 80), -EINVAL);
	CHECK(cmd->tty && cmd->rows == 24 && cmd->cols == 80);
	EXPECT_OK(cmd, vmproc_cmd_tty(cmd, 65535, 65535));
	CHECK(cmd->rows == 65535 && cmd->cols == 65535);
	EXPECT_OK(cmd, vmproc_cmd_tty(cmd, 1, 1));
	CHECK(cmd->rows == 1 && cmd->cols == 1);
	CHECK(vmproc_cmd_tty(NULL, 24, 80) == -EINVAL);
	vmproc_cmd_free(cmd);
}

static void stdio_modes(void)
{
	vmproc_cmd *cmd = new_cmd("cat");
	if (!cmd)
		return;
	/* Capture is for output only: stdin is refused and unchanged. */
	EXPECT_OK(cmd, vmproc_cmd_stdio_pipe(cmd, VMPROC_STDIN));
	EXPECT_FAIL(cmd, vmproc_cmd_stdio_capture(cmd, VMPROC_STDIN), -EINVAL);
	CHECK(cmd->stdio[0].mode == STDIO_PIPE);
	EXPECT_OK(cmd, vmproc_cmd_stdio_capture(cmd, VMPROC_STDOUT));
	EXPECT_OK(cmd, vmproc_cmd_stdio_capture(cmd, VMPROC_STDERR));
	CHECK(cmd->stdio[1].mode == STDIO_CAPTURE && cmd->stdio[2].mode == STDIO_CAPTURE);
	/* A write callback is for output, a read callback for stdin. */
	EXPECT_FAIL(cmd, vmproc_cmd_stdio_callback(cmd, VMPROC_STDIN, write_none, NULL), -EINVAL);
	CHECK(cmd->stdio[0].mode == STDIO_PIPE);
	int ud = 0;
	EXPECT_OK(cmd, vmproc_cmd_stdin_callback(cmd, read_none, &ud));
	CHECK(cmd->stdio[0].mode == STDIO_CALLBACK && cmd->stdio[0].read_fn == read_none &&
	      cmd->stdio[0].userdata == &ud);
	EXPECT_OK(cmd, vmproc_cmd_stdio_callback(cmd, VMPROC_STDERR, write_none, &ud));
	CHECK(cmd->stdio[2].mode == STDIO_CALLBACK && cmd->stdio[2].write_fn == write_none &&
	      cmd->stdio[2].userdata == &ud);
	EXPECT_FAIL(cmd, vmproc_cmd_stdin_callback(cmd, NULL, NULL), -EINVAL);
	EXPECT_FAIL(cmd, vmproc_cmd_stdio_callback(cmd, VMPROC_STDOUT, NULL, NULL), -EINVAL);

	/* A refused call leaves the stream as it was. */
	EXPECT_FAIL(cmd, vmproc_cmd_stdio_fd(cmd, VMPROC_STDERR, -1), -EBADF);
	CHECK(cmd->stdio[2].mode == STDIO_CALLBACK && cmd->stdio[2].write_fn == write_none);
	EXPECT_FAIL(cmd, vmproc_cmd_stdio_callback(cmd, VMPROC_STDERR, NULL, NULL), -EINVAL);
	CHECK(cmd->stdio[2].mode == STDIO_CALLBACK && cmd->stdio[2].write_fn == write_none);
	EXPECT_FAIL(cmd, vmproc_cmd_stdin_callback(cmd, NULL, NULL), -EINVAL);
	CHECK(cmd->stdio[0].mode == STDIO_CALLBACK && cmd->stdio[0].read_fn == read_none);
	EXPECT_OK(cmd, vmproc_cmd_stdin_buffer(cmd, "abc", 3));
	EXPECT_FAIL(cmd, vmproc_cmd_stdin_buffer(cmd, NULL, 5), -EINVAL);
	CHECK(cmd->stdio[0].mode == STDIO_BUFFER && cmd->stdio[0].len == 3 &&
	      memcmp(cmd->stdio[0].data, "abc", 3) == 0);

	/* Bad fds. */
	EXPECT_FAIL(cmd, vmproc_cmd_stdio_fd(cmd, VMPROC_STDOUT, -1), -EBADF);
	EXPECT_FAIL(cmd, vmproc_cmd_stdio_fd(cmd, VMPROC_STDIN, -1), -EBADF);
	EXPECT_FAIL(cmd, vmproc_cmd_stdio_fd(cmd, VMPROC_STDERR, INT_MIN), -EBADF);
	EXPECT_OK(cmd, vmproc_cmd_stdio_fd(cmd, VMPROC_STDIN, 0));
	EXPECT_OK(cmd, vmproc_cmd_stdio_fd(cmd, VMPROC_STDOUT, 7));
	EXPECT_OK(cmd, vmproc_cmd_stdio_fd(cmd, VMPROC_STDERR, 1));
	CHECK(cmd->stdio[0].mode == STDIO_FD && cmd->stdio[0].fd == 0);
	CHECK(cmd->stdio[1].mode == STDIO_FD && cmd->stdio[1].fd == 7);
	CHECK(cmd->stdio[2].mode == STDIO_FD && cmd->stdio[2].fd == 1);

	/* No such stream, for every setter that takes one. */
	vmproc_stream bad[] = {(vmproc_stream)3, (vmproc_stream)7, (vmproc_stream)-1,
	                       (vmproc_stream)INT_MAX};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vmproc_stream s = bad[i];
		EXPECT_FAIL(cmd, vmproc_cmd_stdio_null(cmd, s), -EINVAL);
		EXPECT_FAIL(cmd, vmproc_cmd_stdio_fd(cmd, s, 1), -EINVAL);
		EXPECT_FAIL(cmd, vmproc_cmd_stdio_pipe(cmd, s), -EINVAL);
		EXPECT_FAIL(cmd, vmproc_cmd_stdio_capture(cmd, s), -EINVAL);
		EXPECT_FAIL(cmd, vmproc_cmd_stdio_callback(cmd, s, write_none, NULL), -EINVAL);
	}
	/* ... and the three streams are as they were. */
	CHECK(cmd->stdio[0].mode == STDIO_FD && cmd->stdio[0].fd == 0);
	CHECK(cmd->stdio[1].mode == STDIO_FD && cmd->stdio[1].fd == 7);
	CHECK(cmd->stdio[2].mode == STDIO_FD && cmd->stdio[2].fd == 1);

	/* The last call for a stream wins; the others keep theirs. */
	EXPECT_OK(cmd, vmproc_cmd_stdio_pipe(cmd, VMPROC_STDOUT));
	EXPECT_OK(cmd, vmproc_cmd_stdio_null(cmd, VMPROC_STDOUT));
	CHECK(cmd->stdio[1].mode == STDIO_NULL && cmd->stdio[1].fd == -1);
	CHECK(cmd->stdio[0].mode == STDIO_FD && cmd->stdio[2].mode == STDIO_FD);
	for (int s = 0; s < 3; s++) {
		EXPECT_OK(cmd, vmproc_cmd_stdio_null(cmd, (vmproc_stream)s));
		CHECK(cmd->stdio[s].mode == STDIO_NULL);
		EXPECT_OK(cmd, vmproc_cmd_stdio_pipe(cmd, (vmproc_stream)s));
		CHECK(cmd->stdio[s].mode == STDIO_PIPE && cmd->stdio[s].fd == -1);
	}
	CHECK(vmproc_cmd_stdio_null(NULL, VMPROC_STDIN) == -EINVAL);
	CHECK(vmproc_cmd_stdio_fd(NULL, VMPROC_STDIN, 0) == -EINVAL);
	CHECK(vmproc_cmd_stdio_pipe(NULL, VMPROC_STDIN) == -EINVAL);
	CHECK(vmproc_cmd_stdio_capture(NULL, VMPROC_STDOUT) == -EINVAL);
	CHECK(vmproc_cmd_stdin_buffer(NULL, "x", 1) == -EINVAL);
	CHECK(vmproc_cmd_stdin_callback(NULL, read_none, NULL) == -EINVAL);
	CHECK(vmproc_cmd_stdio_callback(NULL, VMPROC_STDOUT, write_none, NULL) == -EINVAL);
	vmproc_cmd_free(cmd);
}

static void stdin_buffer_is_copied(void)
{
	vmproc_cmd *cmd = new_cmd("cat");
	if (!cmd)
		return;
	size_t len = 100000;
	uint8_t *data = malloc(len);
	if (!data) {
		CHECK(data != NULL);
		vmproc_cmd_free(cmd);
		return;
	}
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 13 + 5);
	EXPECT_OK(cmd, vmproc_cmd_stdin_buffer(cmd, data, len));
	/* The caller changes and frees its buffer. */
	memset(data, 0, len);
	free(data);
	CHECK(cmd->stdio[0].mode == STDIO_BUFFER && cmd->stdio[0].len == len);
	bool same = cmd->stdio[0].data != NULL;
	for (size_t i = 0; same && i < len; i++)
		same = cmd->stdio[0].data[i] == (uint8_t)(i * 13 + 5);
	CHECK(same);
	/* Output streams are untouched. */
	CHECK(cmd->stdio[1].mode == STDIO_DEFAULT && cmd->stdio[2].mode == STDIO_DEFAULT);

	/* Replaced by a new buffer (the old one is released: ASan checks). */
	char small[] = "hello";
	EXPECT_OK(cmd, vmproc_cmd_stdin_buffer(cmd, small, 5));
	small[0] = 'J';
	CHECK(cmd->stdio[0].len == 5 && memcmp(cmd->stdio[0].data, "hello", 5) == 0);
	/* Empty input: fine, with or without a pointer. */
	EXPECT_OK(cmd, vmproc_cmd_stdin_buffer(cmd, NULL, 0));
	CHECK(cmd->stdio[0].mode == STDIO_BUFFER && cmd->stdio[0].len == 0);
	EXPECT_OK(cmd, vmproc_cmd_stdin_buffer(cmd, "x", 0));
	CHECK(cmd->stdio[0].mode == STDIO_BUFFER && cmd->stdio[0].len == 0);
	/* NULL with a length is refused. */
	EXPECT_FAIL(cmd, vmproc_cmd_stdin_buffer(cmd, NULL, 5), -EINVAL);
	/* Another mode releases the buffer. */
	EXPECT_OK(cmd, vmproc_cmd_stdin_buffer(cmd, "abc", 3));
	EXPECT_OK(cmd, vmproc_cmd_stdio_null(cmd, VMPROC_STDIN));
	CHECK(cmd->stdio[0].mode == STDIO_NULL && cmd->stdio[0].data == NULL &&
	      cmd->stdio[0].len == 0);
	/* A buffer left set is released by vmproc_cmd_free (ASan checks). */
	EXPECT_OK(cmd, vmproc_cmd_stdin_buffer(cmd, "abc", 3));
	vmproc_cmd_free(cmd);
}

static void errors_are_set_then_cleared(void)
{
	vmproc_cmd *cmd = new_cmd("ls");
	if (!cmd)
		return;
	CHECK(no_error(cmd));
	/* Each failure leaves a message; the next success clears it. */
	EXPECT_FAIL(cmd, vmproc_cmd_env(cmd, "", "v"), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_env(cmd, "K", "v"));
	EXPECT_FAIL(cmd, vmproc_cmd_env_string(cmd, "NOEQUALS"), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_env_remove(cmd, "K"));
	EXPECT_FAIL(cmd, vmproc_cmd_arg(cmd, NULL), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_arg(cmd, "a"));
	EXPECT_FAIL(cmd, vmproc_cmd_arg0(cmd, NULL), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_arg0(cmd, "a0"));
	EXPECT_FAIL(cmd, vmproc_cmd_cwd(cmd, ""), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_cwd(cmd, "/tmp"));
	EXPECT_FAIL(cmd, vmproc_cmd_tty(cmd, 0, 1), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_uid(cmd, 5));
	EXPECT_FAIL(cmd, vmproc_cmd_stdio_capture(cmd, VMPROC_STDIN), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_gid(cmd, 5));
	EXPECT_FAIL(cmd, vmproc_cmd_stdio_fd(cmd, VMPROC_STDOUT, -1), -EBADF);
	EXPECT_OK(cmd, vmproc_cmd_env_clear(cmd));
	EXPECT_FAIL(cmd, vmproc_cmd_stdio_null(cmd, (vmproc_stream)7), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_stdio_null(cmd, VMPROC_STDOUT));
	EXPECT_FAIL(cmd, vmproc_cmd_stdin_buffer(cmd, NULL, 1), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_stdio_pipe(cmd, VMPROC_STDERR));
	EXPECT_FAIL(cmd, vmproc_cmd_stdin_callback(cmd, NULL, NULL), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_stdin_buffer(cmd, "x", 1));
	EXPECT_FAIL(cmd, vmproc_cmd_stdio_callback(cmd, VMPROC_STDOUT, NULL, NULL), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_stdio_capture(cmd, VMPROC_STDOUT));
	EXPECT_FAIL(cmd, vmproc_cmd_env_remove(cmd, NULL), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_stdin_callback(cmd, read_none, NULL));
	EXPECT_FAIL(cmd, vmproc_cmd_tty(cmd, 70000, 1), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_stdio_callback(cmd, VMPROC_STDERR, write_none, NULL));
	EXPECT_FAIL(cmd, vmproc_cmd_env(cmd, "A=B", "v"), -EINVAL);
	EXPECT_OK(cmd, vmproc_cmd_tty(cmd, 10, 10));
	/* A second failure in a row replaces the first message. */
	EXPECT_FAIL(cmd, vmproc_cmd_cwd(cmd, ""), -EINVAL);
	char first[VMP_ERROR_MAX];
	snprintf(first, sizeof(first), "%s", vmproc_cmd_error(cmd));
	EXPECT_FAIL(cmd, vmproc_cmd_stdio_fd(cmd, VMPROC_STDOUT, -1), -EBADF);
	CHECK_MSG(strcmp(first, vmproc_cmd_error(cmd)) != 0, "still \"%s\"", first);
	/* The message is a string for NULL too. */
	CHECK(vmproc_cmd_error(NULL) != NULL);
	vmproc_cmd_free(cmd);
}

static void free_null_and_full(void)
{
	vmproc_cmd_free(NULL);
	/* A command with every part allocated frees cleanly (ASan checks). */
	vmproc_cmd *cmd = new_cmd("prog");
	if (!cmd)
		return;
	CHECK(vmproc_cmd_arg0(cmd, "p") == 0);
	for (int i = 0; i < 20; i++) {
		char s[16];
		snprintf(s, sizeof(s), "arg%d", i);
		CHECK(vmproc_cmd_arg(cmd, s) == 0);
		snprintf(s, sizeof(s), "K%d", i);
		CHECK(vmproc_cmd_env(cmd, s, "v") == 0);
	}
	CHECK(vmproc_cmd_cwd(cmd, "/srv") == 0);
	CHECK(vmproc_cmd_stdin_buffer(cmd, "data", 4) == 0);
	CHECK(vmproc_cmd_stdio_capture(cmd, VMPROC_STDOUT) == 0);
	CHECK(vmproc_cmd_stdio_callback(cmd, VMPROC_STDERR, write_none, NULL) == 0);
	CHECK(vmproc_cmd_tty(cmd, 24, 80) == 0);
	vmproc_cmd_free(cmd);
	/* An untouched one too. */
	vmproc_cmd *plain = new_cmd("prog");
	if (!plain)
		return;
	vmproc_cmd_free(plain);
}

/* --- TIME and SEED (cmd_fresh) ------------------------------------- */

static uint64_t get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static long long ns_of(long long sec, long long nsec)
{
	return sec * 1000000000LL + nsec;
}

/* TIME is the host's CLOCK_REALTIME at the call, little endian. */
static void fresh_time_is_now(void)
{
	struct cmd_fresh f;
	struct timespec before, after;
	clock_gettime(CLOCK_REALTIME, &before);
	int rc = cmd_fresh(&f);
	clock_gettime(CLOCK_REALTIME, &after);
	CHECK_MSG(rc == 0, "cmd_fresh: %d", rc);
	CHECK(sizeof(f.time) == 12 && VMPROC_MSG_TIME_LEN == 12);
	CHECK(sizeof(f.seed) >= VMPROC_SEED_MIN && sizeof(f.seed) <= VMPROC_SEED_MAX);
	long long sec = (long long)get_le(f.time, 8);
	uint64_t nsec = get_le(f.time + 8, 4);
	CHECK_MSG(nsec < 1000000000u, "nsec %llu", (unsigned long long)nsec);
	long long t = ns_of(sec, (long long)nsec);
	CHECK_MSG(
	    t >= ns_of(before.tv_sec, before.tv_nsec) && t <= ns_of(after.tv_sec, after.tv_nsec),
	    "TIME %lld.%09llu not between %lld.%09ld and %lld.%09ld", sec, (unsigned long long)nsec,
	    (long long)before.tv_sec, before.tv_nsec, (long long)after.tv_sec, after.tv_nsec);
}

/* Every call has its own seed. */
static void fresh_seed_differs(void)
{
	struct cmd_fresh a, b;
	static const uint8_t zero[CMD_SEED_LEN];
	CHECK(cmd_fresh(&a) == 0 && cmd_fresh(&b) == 0);
	CHECK(memcmp(a.seed, b.seed, sizeof(a.seed)) != 0);
	CHECK(memcmp(a.seed, zero, sizeof(zero)) != 0 && memcmp(b.seed, zero, sizeof(zero)) != 0);
}

/* getrandom failing (here: refused by seccomp with ENOSYS, as on a kernel
 * without it) is an error for the caller, not a crash nor a zero seed. */
static void fresh_getrandom_failure(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct sock_filter code[] = {
		    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
		    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getrandom, 0, 1),
		    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
			_exit(2);
		struct cmd_fresh f;
		_exit(cmd_fresh(&f) == -ENOSYS ? 0 : 1);
	}
	int ws = -1;
	CHECK(pid > 0 && waitpid(pid, &ws, 0) == pid);
	CHECK_MSG(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child status %#x (2: no seccomp)", ws);
}

TEST_LIST(T(new_rejects_bad_program), T(new_has_the_documented_defaults),
          T(default_env_has_path_and_home), T(env_rejects_bad_keys),
          T(env_set_twice_replaces_in_place), T(env_remove_and_clear), T(args_in_order_and_arg0),
          T(cwd_and_ids), T(tty_size_is_checked), T(stdio_modes), T(stdin_buffer_is_copied),
          T(errors_are_set_then_cleared), T(free_null_and_full), T(fresh_time_is_now),
          T(fresh_seed_differs), T(fresh_getrandom_failure))
