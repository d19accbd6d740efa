/* The contents of a vmproc_cmd, shared by the builder (command.c) and
 * spawning (child.c). */
#ifndef VMP_API_COMMAND_H
#define VMP_API_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "vmproc.h"
#include "vmproc_abi.h"

enum stdio_mode {
	STDIO_DEFAULT, /* stdin: null; stdout/stderr: the caller's fd 1/2 */
	STDIO_NULL,
	STDIO_FD,
	STDIO_PIPE,
	STDIO_BUFFER,  /* stdin only */
	STDIO_CAPTURE, /* stdout/stderr only */
	STDIO_CALLBACK,
};

struct cmd_stdio {
	enum stdio_mode mode;
	int fd;        /* STDIO_FD: the caller's fd, dup'ed at spawn */
	uint8_t *data; /* STDIO_BUFFER: owned copy */
	size_t len;
	vmproc_read_fn read_fn;
	vmproc_write_fn write_fn;
	void *userdata;
};

/* Host files (vmproc_cmd_share, _root, _file); see files.c. */
struct cmd_share {
	char *host;
	char *guest; /* normalised: absolute, no trailing '/', no "." or ".." */
	unsigned flags;
};
struct cmd_file {
	char *guest; /* normalised as above, never "/" */
	unsigned mode;
	vmproc_file_ops ops;
	void *userdata;
};

struct vmproc_cmd {
	char *program;
	char *arg0;  /* NULL: program */
	char **args; /* argv[1..] */
	size_t nargs, args_cap;
	char **env; /* "KEY=VALUE", keys unique */
	size_t nenv, env_cap;
	char *cwd;
	unsigned uid, gid;
	bool tty;
	unsigned rows, cols;
	struct cmd_stdio stdio[3];
	vmproc_snapshot_mode snapshot;
	size_t capture_limit; /* per captured stream */
	unsigned fd_limit;    /* host fds for host files */
	struct cmd_share *shares;
	size_t nshares;
	char *root; /* NULL: the guest's own root */
	unsigned root_flags;
	struct cmd_file *files;
	size_t nfiles;
	struct vmp_error err;
};

/* Frees the host-file settings of cmd (files.c). */
void cmd_files_release(vmproc_cmd *cmd);

/* What makes each spawn's VM its own (vmproc_abi.h, TIME and SEED): the
 * payloads of the two messages, which every command sends before RUN. A
 * seed of VMPROC_SEED_MIN bytes is 256 bits, the size of the kernel CRNG's
 * key. */
#define CMD_SEED_LEN VMPROC_SEED_MIN
struct cmd_fresh {
	uint8_t time[VMPROC_MSG_TIME_LEN]; /* CLOCK_REALTIME now */
	uint8_t seed[CMD_SEED_LEN];        /* from getrandom() */
};

/* Fills f with fresh values: the clock as of this call (so make it as late
 * as possible before the guest gets the message: the time in between is
 * lost from the guest's clock) and new random bytes. Returns 0, or -errno
 * when the clock or getrandom() failed. */
int cmd_fresh(struct cmd_fresh *f);

#endif
