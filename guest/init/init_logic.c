/* Pure helpers of the guest init; see init_logic.h. */
#define _GNU_SOURCE
#include "init_logic.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

void init_line_add(struct init_line *line, const char *s)
{
	size_t room = sizeof(line->buf) - 1 - line->len;
	size_t n = strlen(s);

	if (n > room)
		n = room;
	memcpy(line->buf + line->len, s, n);
	line->len += n;
	line->buf[line->len] = '\0';
}

void init_line_add_uint(struct init_line *line, unsigned value)
{
	char digits[16];
	size_t i = sizeof(digits) - 1;

	digits[i] = '\0';
	do {
		digits[--i] = (char)('0' + value % 10);
		value /= 10;
	} while (value != 0);
	init_line_add(line, digits + i);
}

int init_exit_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	/* Not reachable without WUNTRACED/WCONTINUED; say "failed" anyway
	 * rather than pretend success. */
	return 1;
}

int init_exec_failure_status(int err)
{
	return err == ENOENT ? 127 : 126;
}

bool init_system_disk_absent(int err)
{
	/* ENOENT: devtmpfs has no /dev/vda node. ENXIO: the node is there
	 * but no device behind it. */
	return err == ENOENT || err == ENXIO;
}

/* The kernel hands init every unknown key=value word of its command line
 * as an environment string, but silently drops words containing a dot
 * ("vmproc.debug" looks like a module parameter, see unknown_bootoption()
 * in init/main.c). So the switch is spelled vmproc_debug=1: it costs no
 * system call to find, unlike reading /proc/cmdline. */
const char *init_env_get(char *const envp[], const char *key)
{
	size_t n = strlen(key);

	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
		if (strncmp(envp[i], key, n) == 0 && envp[i][n] == '=')
			return envp[i] + n + 1;
	}
	return NULL;
}

/* A switch on the kernel command line: set, and neither empty nor "0". */
static bool env_switch(char *const envp[], const char *key)
{
	const char *value = init_env_get(envp, key);

	return value != NULL && value[0] != '\0' && strcmp(value, "0") != 0;
}

bool init_debug_requested(char *const envp[])
{
	return env_switch(envp, "vmproc_debug");
}

bool init_channel_requested(char *const envp[])
{
	return env_switch(envp, VMPROC_ABI_CHANNEL_ENV);
}

bool init_path_next(const char **path, const char *file, char *buf, size_t cap)
{
	const char *dir = *path;
	const char *colon = strchr(dir, ':');
	size_t dlen = colon != NULL ? (size_t)(colon - dir) : strlen(dir);
	size_t flen = strlen(file);
	size_t sep = dlen > 0 ? 1 : 0;

	*path = colon != NULL ? colon + 1 : NULL;
	if (dlen + sep + flen >= cap)
		return false;
	memcpy(buf, dir, dlen);
	if (sep)
		buf[dlen] = '/';
	memcpy(buf + dlen + sep, file, flen + 1);
	return true;
}

void init_prewarm_parse(struct init_prewarm *pw, const char *value)
{
	pw->count = 0;
	pw->ignored = 0;
	while (value != NULL && *value != '\0') {
		const char *comma = strchr(value, ',');
		size_t len = comma != NULL ? (size_t)(comma - value) : strlen(value);

		if (len >= VMPROC_PREWARM_PATH_MAX ||
		    (len > 0 && pw->count == VMPROC_PREWARM_MAX)) {
			pw->ignored++;
		} else if (len > 0) {
			memcpy(pw->paths[pw->count], value, len);
			pw->paths[pw->count][len] = '\0';
			pw->count++;
		}
		value = comma != NULL ? comma + 1 : NULL;
	}
}

/* --- the command channel ----------------------------------------------- */

static unsigned get_le32(const unsigned char *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8 | (unsigned)p[2] << 16 | (unsigned)p[3] << 24;
}

static void put_le32(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

void init_rx_init(struct init_rx *rx, unsigned char *buf, size_t cap)
{
	rx->buf = buf;
	rx->cap = cap;
	rx->start = 0;
	rx->end = 0;
}

unsigned char *init_rx_space(struct init_rx *rx, size_t *room)
{
	if (rx->start > 0) {
		memmove(rx->buf, rx->buf + rx->start, rx->end - rx->start);
		rx->end -= rx->start;
		rx->start = 0;
	}
	*room = rx->cap - rx->end;
	return rx->buf + rx->end;
}

void init_rx_commit(struct init_rx *rx, size_t n)
{
	rx->end += n;
}

int init_rx_next(struct init_rx *rx, struct init_msg *msg)
{
	size_t have = rx->end - rx->start;
	const unsigned char *p = rx->buf + rx->start;

	if (have < INIT_MSG_HDR)
		return 0;
	unsigned len = get_le32(p + 4);

	if (len > VMPROC_MSG_MAX)
		return -E2BIG;
	if (have - INIT_MSG_HDR < len)
		return 0;
	msg->type = get_le32(p);
	msg->len = len;
	msg->data = p + INIT_MSG_HDR;
	rx->start += INIT_MSG_HDR + len;
	return 1;
}

bool init_msg_u32(const struct init_msg *msg, unsigned *value)
{
	if (msg->len != 4)
		return false;
	*value = get_le32(msg->data);
	return true;
}

bool init_msg_size(const struct init_msg *msg, unsigned short *rows, unsigned short *cols)
{
	if (msg->len != 4)
		return false;
	*rows = (unsigned short)(msg->data[0] | msg->data[1] << 8);
	*cols = (unsigned short)(msg->data[2] | msg->data[3] << 8);
	return true;
}

bool init_msg_time(const struct init_msg *msg, long long *sec, unsigned *nsec)
{
	if (msg->len != VMPROC_MSG_TIME_LEN)
		return false;
	unsigned long long s = get_le32(msg->data) | (unsigned long long)get_le32(msg->data + 4)
	                                                 << 32;
	unsigned ns = get_le32(msg->data + 8);

	if (ns >= 1000000000u)
		return false;
	/* Two's complement, without relying on the conversion of an
	 * out-of-range unsigned value. */
	*sec = s <= (unsigned long long)INT64_MAX ? (long long)s : -(long long)(~s) - 1;
	*nsec = ns;
	return true;
}

void init_msg_encode_u32(unsigned char *out, unsigned type, unsigned value)
{
	put_le32(out, type);
	put_le32(out + 4, 4);
	put_le32(out + 8, value);
}

/* Tags of the strings in the arena. */
#define CMD_ARG   'A'
#define CMD_ENV   'E'
#define CMD_OTHER 'O' /* CWD, PROGRAM: reached through their pointers */

void init_cmd_init(struct init_cmd *cmd, char *mem, size_t cap)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->mem = mem;
	cmd->cap = cap;
}

/* Keeps a string payload as tag, bytes, NUL; returns it, or NULL with
 * *err set. */
static const char *cmd_keep_bytes(struct init_cmd *cmd, char tag, const unsigned char *data,
                                  size_t len, int *err)
{
	if (memchr(data, '\0', len) != NULL) {
		*err = -EINVAL;
		return NULL;
	}
	if (cmd->cap - cmd->used < len + 2) {
		*err = -E2BIG;
		return NULL;
	}
	char *s = cmd->mem + cmd->used + 1;

	cmd->mem[cmd->used] = tag;
	memcpy(s, data, len);
	s[len] = '\0';
	cmd->used += len + 2;
	return s;
}

static const char *cmd_keep(struct init_cmd *cmd, char tag, const struct init_msg *msg, int *err)
{
	return cmd_keep_bytes(cmd, tag, msg->data, msg->len, err);
}

/* A virtio-fs root entry name: one path component. */
static bool entry_ok(const unsigned char *p, size_t n)
{
	if (n == 0 || memchr(p, '/', n) != NULL)
		return false;
	return !(n == 1 && p[0] == '.') && !(n == 2 && p[0] == '.' && p[1] == '.');
}

static int cmd_root(struct init_cmd *cmd, const struct init_msg *msg)
{
	int err = -EINVAL;

	if (msg->len < 5)
		return -EINVAL;
	unsigned flags = get_le32(msg->data);

	if ((flags & ~(VMPROC_ROOT_F_READONLY | VMPROC_ROOT_F_OVERLAY)) != 0 ||
	    flags == (VMPROC_ROOT_F_READONLY | VMPROC_ROOT_F_OVERLAY) ||
	    !entry_ok(msg->data + 4, msg->len - 4))
		return -EINVAL;
	const char *e = cmd_keep_bytes(cmd, CMD_OTHER, msg->data + 4, msg->len - 4, &err);

	if (e == NULL)
		return err;
	cmd->root_entry = e;
	cmd->root_flags = flags;
	return INIT_CMD_MORE;
}

static int cmd_mount(struct init_cmd *cmd, const struct init_msg *msg)
{
	int err = -EINVAL;

	if (msg->len < 8)
		return -EINVAL;
	unsigned flags = get_le32(msg->data);
	unsigned n = get_le32(msg->data + 4);

	if ((flags & ~VMPROC_MOUNT_F_READONLY) != 0 || n > msg->len - 8 ||
	    !entry_ok(msg->data + 8, n))
		return -EINVAL;
	const unsigned char *path = msg->data + 8 + n;
	size_t plen = msg->len - 8 - n;

	if (plen == 0 || path[0] != '/')
		return -EINVAL;
	if (cmd->nmounts >= VMPROC_MOUNT_MAX)
		return -E2BIG;
	struct init_mount *m = &cmd->mounts[cmd->nmounts];

	m->entry = cmd_keep_bytes(cmd, CMD_OTHER, msg->data + 8, n, &err);
	if (m->entry == NULL)
		return err;
	m->path = cmd_keep_bytes(cmd, CMD_OTHER, path, plen, &err);
	if (m->path == NULL)
		return err;
	m->flags = flags;
	cmd->nmounts++;
	return INIT_CMD_MORE;
}

/* At RUN: the argv and envp arrays, after the strings. */
static int cmd_finish(struct init_cmd *cmd)
{
	if (cmd->nargs == 0)
		return -EINVAL;
	/* The arrays start at the first pointer-aligned address after the
	 * strings. */
	uintptr_t end = (uintptr_t)(cmd->mem + cmd->used);
	size_t at = cmd->used + (size_t)((sizeof(char *) - end % sizeof(char *)) % sizeof(char *));
	size_t slots = cmd->nargs + 1 + cmd->nenv + 1;

	if (at > cmd->cap || (cmd->cap - at) / sizeof(char *) < slots)
		return -E2BIG;
	char **argv = (char **)(void *)(cmd->mem + at);
	char **envp = argv + cmd->nargs + 1;
	size_t a = 0;
	size_t e = 0;

	for (size_t i = 0; i < cmd->used;) {
		char tag = cmd->mem[i];
		char *s = cmd->mem + i + 1;

		if (tag == CMD_ARG)
			argv[a++] = s;
		else if (tag == CMD_ENV)
			envp[e++] = s;
		i += strlen(s) + 2;
	}
	argv[a] = NULL;
	envp[e] = NULL;
	cmd->argv = argv;
	cmd->envp = envp;
	return INIT_CMD_RUN;
}

int init_cmd_add(struct init_cmd *cmd, const struct init_msg *msg)
{
	int err = -EINVAL;
	unsigned v;

	switch (msg->type) {
	case VMPROC_MSG_ARG:
		if (cmd_keep(cmd, CMD_ARG, msg, &err) == NULL)
			return err;
		cmd->nargs++;
		return INIT_CMD_MORE;
	case VMPROC_MSG_ENV:
		if (cmd_keep(cmd, CMD_ENV, msg, &err) == NULL)
			return err;
		cmd->nenv++;
		return INIT_CMD_MORE;
	case VMPROC_MSG_CWD:
		cmd->cwd = cmd_keep(cmd, CMD_OTHER, msg, &err);
		return cmd->cwd != NULL ? INIT_CMD_MORE : err;
	case VMPROC_MSG_PROGRAM:
		cmd->program = cmd_keep(cmd, CMD_OTHER, msg, &err);
		return cmd->program != NULL ? INIT_CMD_MORE : err;
	case VMPROC_MSG_UID:
		if (!init_msg_u32(msg, &cmd->uid))
			return -EINVAL;
		cmd->set_ids = true;
		return INIT_CMD_MORE;
	case VMPROC_MSG_GID:
		if (!init_msg_u32(msg, &cmd->gid))
			return -EINVAL;
		cmd->set_ids = true;
		return INIT_CMD_MORE;
	case VMPROC_MSG_TTY:
		if (!init_msg_size(msg, &cmd->rows, &cmd->cols))
			return -EINVAL;
		cmd->tty = true;
		return INIT_CMD_MORE;
	case VMPROC_MSG_WINSIZE:
		if (!init_msg_size(msg, &cmd->rows, &cmd->cols))
			return -EINVAL;
		return INIT_CMD_MORE;
	case VMPROC_MSG_SIGNAL:
		if (!init_msg_u32(msg, &v))
			return -EINVAL;
		/* A number kill(2) would refuse is dropped here as it would be
		 * after RUN. */
		if (v >= 1 && v <= 64)
			cmd->signals |= 1ull << (v - 1);
		return INIT_CMD_MORE;
	case VMPROC_MSG_TIME:
		if (!init_msg_time(msg, &cmd->time_sec, &cmd->time_nsec))
			return -EINVAL;
		cmd->set_time = true;
		return INIT_CMD_MORE;
	case VMPROC_MSG_SEED:
		if (msg->len < VMPROC_SEED_MIN || msg->len > VMPROC_SEED_MAX)
			return -EINVAL;
		memcpy(cmd->seed, msg->data, msg->len);
		cmd->seed_len = msg->len;
		return INIT_CMD_MORE;
	case VMPROC_MSG_ROOT: return cmd_root(cmd, msg);
	case VMPROC_MSG_MOUNT: return cmd_mount(cmd, msg);
	case VMPROC_MSG_RUN:
		if (msg->len != 0)
			return -EINVAL;
		return cmd_finish(cmd);
	default:
		/* Host and guest are built from one tree, so an unknown type
		 * is a bug or a version skew: fail loudly rather than run a
		 * command without a setting the host asked for. */
		return -EINVAL;
	}
}
