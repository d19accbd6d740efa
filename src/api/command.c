/* Building a command: program, arguments, environment, working
 * directory, ids, standard streams. Nothing here touches a VM. */
#include "api/command.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "vmm/host.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int grow(void *arrayp, size_t *cap, size_t n)
{
	char ***array = arrayp;
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 8;
	char **a = realloc(*array, ncap * sizeof(*a));
	if (!a)
		return -ENOMEM;
	*array = a;
	*cap = ncap;
	return 0;
}

/* The index of key's entry, or nenv. key_len excludes any '='. */
static size_t env_find(const vmproc_cmd *cmd, const char *key, size_t key_len)
{
	for (size_t i = 0; i < cmd->nenv; i++)
		if (strncmp(cmd->env[i], key, key_len) == 0 && cmd->env[i][key_len] == '=')
			return i;
	return cmd->nenv;
}

/* Takes ownership of kv ("KEY=VALUE", validated). */
static int env_put(vmproc_cmd *cmd, char *kv)
{
	size_t key_len = (size_t)(strchr(kv, '=') - kv);
	size_t i = env_find(cmd, kv, key_len);
	if (i < cmd->nenv) {
		free(cmd->env[i]);
		cmd->env[i] = kv;
		return 0;
	}
	if (grow(&cmd->env, &cmd->env_cap, cmd->nenv)) {
		free(kv);
		return vmp_fail(&cmd->err, -ENOMEM, "out of memory");
	}
	cmd->env[cmd->nenv++] = kv;
	return 0;
}

static int env_put_copy(vmproc_cmd *cmd, const char *kv)
{
	char *c = strdup(kv);
	if (!c)
		return vmp_fail(&cmd->err, -ENOMEM, "out of memory");
	return env_put(cmd, c);
}

int vmproc_cmd_new(vmproc_cmd **out, const char *program)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!program || !*program)
		return -EINVAL;
	vmproc_cmd *cmd = calloc(1, sizeof(*cmd));
	if (!cmd)
		return -ENOMEM;
	for (int i = 0; i < 3; i++)
		cmd->stdio[i].fd = -1;
	cmd->capture_limit = VMPROC_CAPTURE_LIMIT_DEFAULT;
	cmd->fd_limit = VMPROC_FD_LIMIT_DEFAULT;
	int rc = 0;
	if (!(cmd->program = strdup(program)) || !(cmd->cwd = strdup("/")))
		rc = -ENOMEM;
	if (!rc)
		rc = env_put_copy(cmd, DEFAULT_PATH);
	if (!rc)
		rc = env_put_copy(cmd, "HOME=/root");
	/* Reads /proc/cpuinfo: once per command. */
	const char *host_env = rc ? NULL : vm_host_guest_env();
	if (host_env)
		rc = env_put_copy(cmd, host_env);
	if (rc) {
		vmproc_cmd_free(cmd);
		return rc;
	}
	*out = cmd;
	return 0;
}

static void stdio_release(struct cmd_stdio *s)
{
	free(s->data);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

void vmproc_cmd_free(vmproc_cmd *cmd)
{
	if (!cmd)
		return;
	free(cmd->program);
	free(cmd->arg0);
	for (size_t i = 0; i < cmd->nargs; i++)
		free(cmd->args[i]);
	free(cmd->args);
	for (size_t i = 0; i < cmd->nenv; i++)
		free(cmd->env[i]);
	free(cmd->env);
	free(cmd->cwd);
	for (int i = 0; i < 3; i++)
		stdio_release(&cmd->stdio[i]);
	cmd_files_release(cmd);
	free(cmd);
}

const char *vmproc_cmd_error(const vmproc_cmd *cmd)
{
	return cmd ? cmd->err.msg : "";
}

/* Every setter starts here: a usable handle, and a fresh message. */
static int begin(vmproc_cmd *cmd)
{
	if (!cmd)
		return -EINVAL;
	vmp_error_clear(&cmd->err);
	return 0;
}

int vmproc_cmd_arg(vmproc_cmd *cmd, const char *arg)
{
	if (begin(cmd))
		return -EINVAL;
	if (!arg)
		return vmp_fail(&cmd->err, -EINVAL, "argument is NULL");
	char *c = strdup(arg);
	if (!c || grow(&cmd->args, &cmd->args_cap, cmd->nargs)) {
		free(c);
		return vmp_fail(&cmd->err, -ENOMEM, "out of memory");
	}
	cmd->args[cmd->nargs++] = c;
	return 0;
}

int vmproc_cmd_arg0(vmproc_cmd *cmd, const char *arg0)
{
	if (begin(cmd))
		return -EINVAL;
	if (!arg0)
		return vmp_fail(&cmd->err, -EINVAL, "argv[0] is NULL");
	char *c = strdup(arg0);
	if (!c)
		return vmp_fail(&cmd->err, -ENOMEM, "out of memory");
	free(cmd->arg0);
	cmd->arg0 = c;
	return 0;
}

static int check_key(vmproc_cmd *cmd, const char *key, size_t len)
{
	if (len == 0)
		return vmp_fail(&cmd->err, -EINVAL, "environment variable with an empty name");
	if (memchr(key, '=', len))
		return vmp_fail(&cmd->err, -EINVAL,
		                "environment variable name \"%.*s\" contains '='", (int)len, key);
	return 0;
}

int vmproc_cmd_env(vmproc_cmd *cmd, const char *key, const char *value)
{
	if (begin(cmd))
		return -EINVAL;
	if (!key || !value)
		return vmp_fail(&cmd->err, -EINVAL, "environment name or value is NULL");
	int rc = check_key(cmd, key, strlen(key));
	if (rc)
		return rc;
	size_t kl = strlen(key), vl = strlen(value);
	char *kv = malloc(kl + vl + 2);
	if (!kv)
		return vmp_fail(&cmd->err, -ENOMEM, "out of memory");
	snprintf(kv, kl + vl + 2, "%s=%s", key, value);
	return env_put(cmd, kv);
}

int vmproc_cmd_env_string(vmproc_cmd *cmd, const char *key_value)
{
	if (begin(cmd))
		return -EINVAL;
	if (!key_value)
		return vmp_fail(&cmd->err, -EINVAL, "environment string is NULL");
	const char *eq = strchr(key_value, '=');
	if (!eq)
		return vmp_fail(&cmd->err, -EINVAL,
		                "environment string \"%s\" is not of the form KEY=VALUE",
		                key_value);
	int rc = check_key(cmd, key_value, (size_t)(eq - key_value));
	return rc ? rc : env_put_copy(cmd, key_value);
}

int vmproc_cmd_env_remove(vmproc_cmd *cmd, const char *key)
{
	if (begin(cmd))
		return -EINVAL;
	if (!key)
		return vmp_fail(&cmd->err, -EINVAL, "environment name is NULL");
	int rc = check_key(cmd, key, strlen(key));
	if (rc)
		return rc;
	size_t i = env_find(cmd, key, strlen(key));
	if (i < cmd->nenv) {
		free(cmd->env[i]);
		memmove(cmd->env + i, cmd->env + i + 1, (cmd->nenv - i - 1) * sizeof(char *));
		cmd->nenv--;
	}
	return 0;
}

int vmproc_cmd_env_clear(vmproc_cmd *cmd)
{
	if (begin(cmd))
		return -EINVAL;
	for (size_t i = 0; i < cmd->nenv; i++)
		free(cmd->env[i]);
	cmd->nenv = 0;
	return 0;
}

int vmproc_cmd_cwd(vmproc_cmd *cmd, const char *dir)
{
	if (begin(cmd))
		return -EINVAL;
	if (!dir || !*dir)
		return vmp_fail(&cmd->err, -EINVAL, "working directory is empty");
	char *c = strdup(dir);
	if (!c)
		return vmp_fail(&cmd->err, -ENOMEM, "out of memory");
	free(cmd->cwd);
	cmd->cwd = c;
	return 0;
}

int vmproc_cmd_uid(vmproc_cmd *cmd, unsigned uid)
{
	if (begin(cmd))
		return -EINVAL;
	cmd->uid = uid;
	return 0;
}

int vmproc_cmd_gid(vmproc_cmd *cmd, unsigned gid)
{
	if (begin(cmd))
		return -EINVAL;
	cmd->gid = gid;
	return 0;
}

/* Checks that stream s can take the mode (and that the caller's other
 * arguments, ok, were fine), then forgets its previous setting. A failed
 * call leaves the stream as it was. */
static int stdio_begin(vmproc_cmd *cmd, vmproc_stream s, bool in_ok, bool out_ok, bool ok)
{
	if (begin(cmd))
		return -EINVAL;
	if ((unsigned)s > VMPROC_STDERR)
		return vmp_fail(&cmd->err, -EINVAL, "no such stream %d", (int)s);
	if (s == VMPROC_STDIN ? !in_ok : !out_ok)
		return vmp_fail(&cmd->err, -EINVAL, "mode not available for %s",
		                s == VMPROC_STDIN ? "stdin" : "stdout or stderr");
	if (!ok)
		return vmp_fail(&cmd->err, -EINVAL, "bad argument for %s",
		                s == VMPROC_STDIN    ? "stdin"
		                : s == VMPROC_STDOUT ? "stdout"
		                                     : "stderr");
	stdio_release(&cmd->stdio[s]);
	return 0;
}

int vmproc_cmd_stdio_null(vmproc_cmd *cmd, vmproc_stream s)
{
	int rc = stdio_begin(cmd, s, true, true, true);
	if (!rc)
		cmd->stdio[s].mode = STDIO_NULL;
	return rc;
}

int vmproc_cmd_stdio_fd(vmproc_cmd *cmd, vmproc_stream s, int fd)
{
	if (cmd && fd < 0) {
		vmp_error_clear(&cmd->err);
		return vmp_fail(&cmd->err, -EBADF, "bad file descriptor %d", fd);
	}
	int rc = stdio_begin(cmd, s, true, true, true);
	if (rc)
		return rc;
	cmd->stdio[s].mode = STDIO_FD;
	cmd->stdio[s].fd = fd;
	return 0;
}

int vmproc_cmd_stdio_pipe(vmproc_cmd *cmd, vmproc_stream s)
{
	int rc = stdio_begin(cmd, s, true, true, true);
	if (!rc)
		cmd->stdio[s].mode = STDIO_PIPE;
	return rc;
}

int vmproc_cmd_stdin_buffer(vmproc_cmd *cmd, const void *data, size_t len)
{
	if (!cmd)
		return -EINVAL;
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy) {
		vmp_error_clear(&cmd->err);
		return vmp_fail(&cmd->err, -ENOMEM, "out of memory for a %zu-byte stdin", len);
	}
	int rc = stdio_begin(cmd, VMPROC_STDIN, true, false, data || !len);
	if (rc) {
		free(copy);
		return rc;
	}
	if (len)
		memcpy(copy, data, len);
	cmd->stdio[0].mode = STDIO_BUFFER;
	cmd->stdio[0].data = copy;
	cmd->stdio[0].len = len;
	return 0;
}

int vmproc_cmd_stdio_capture(vmproc_cmd *cmd, vmproc_stream s)
{
	int rc = stdio_begin(cmd, s, false, true, true);
	if (!rc)
		cmd->stdio[s].mode = STDIO_CAPTURE;
	return rc;
}

int vmproc_cmd_stdin_callback(vmproc_cmd *cmd, vmproc_read_fn fn, void *userdata)
{
	int rc = stdio_begin(cmd, VMPROC_STDIN, true, false, fn != NULL);
	if (rc)
		return rc;
	cmd->stdio[0].mode = STDIO_CALLBACK;
	cmd->stdio[0].read_fn = fn;
	cmd->stdio[0].userdata = userdata;
	return 0;
}

int vmproc_cmd_stdio_callback(vmproc_cmd *cmd, vmproc_stream s, vmproc_write_fn fn, void *userdata)
{
	int rc = stdio_begin(cmd, s, false, true, fn != NULL);
	if (rc)
		return rc;
	cmd->stdio[s].mode = STDIO_CALLBACK;
	cmd->stdio[s].write_fn = fn;
	cmd->stdio[s].userdata = userdata;
	return 0;
}

int vmproc_cmd_capture_limit(vmproc_cmd *cmd, size_t max_bytes)
{
	if (begin(cmd))
		return -EINVAL;
	cmd->capture_limit = max_bytes;
	return 0;
}

int vmproc_cmd_fd_limit(vmproc_cmd *cmd, unsigned max_fds)
{
	if (begin(cmd))
		return -EINVAL;
	cmd->fd_limit = max_fds;
	return 0;
}

int vmproc_cmd_tty(vmproc_cmd *cmd, unsigned rows, unsigned cols)
{
	if (begin(cmd))
		return -EINVAL;
	if (rows == 0 || cols == 0 || rows > UINT16_MAX || cols > UINT16_MAX)
		return vmp_fail(&cmd->err, -EINVAL, "terminal size %ux%u out of range", rows, cols);
	cmd->tty = true;
	cmd->rows = rows;
	cmd->cols = cols;
	return 0;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int cmd_fresh(struct cmd_fresh *f)
{
	size_t got = 0;
	while (got < sizeof(f->seed)) {
		ssize_t n = getrandom(f->seed + got, sizeof(f->seed) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += (size_t)n;
	}
	/* The clock last: as late as possible. */
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return -errno;
	put_le(f->time, (uint64_t)(int64_t)ts.tv_sec, 8);
	put_le(f->time + 8, (uint64_t)ts.tv_nsec, 4);
	return 0;
}
