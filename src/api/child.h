/* A spawned command (struct vmproc_child) as child.c (spawning,
 * waiting) and child_io.c (its streams and control messages) share it.
 * Threads and lock order: see child.c. */
#ifndef VMP_API_CHILD_H
#define VMP_API_CHILD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/command.h"
#include "api/vm.h"
#include "util/error.h"
#include "virtio/ports.h"
#include "vmproc.h"
#include "vmproc_abi.h"

#define STDIN_CHUNK 65536
/* Writes to a blocking fd of the caller go in pieces no larger than what
 * POLLOUT promises for a pipe, so a stop is never stuck in write(). */
#define BLOCKING_CHUNK 4096
/* Guest-to-host control messages are tiny; anything larger is a broken
 * or hostile guest. */
#define CTL_IN_MAX 64

struct out_stream {
	enum stdio_mode mode;
	int fd; /* FD: our dup; PIPE: our write end (non-blocking) */
	bool fd_blocking;
	vmproc_write_fn fn;
	void *userdata;
	char *cap; /* CAPTURE */
	size_t cap_len, cap_size;
	size_t cap_limit; /* the most kept; past it the stream is cut */
	bool cut;         /* output went past cap_limit (or memory ran out) */
	bool dead;        /* the destination went away: output is dropped */
};

struct in_stream {
	enum stdio_mode mode;
	int fd;        /* FD: our dup; PIPE: our read end (non-blocking) */
	uint8_t *data; /* BUFFER: owned, sent from off */
	size_t len, off;
	vmproc_read_fn fn;
	void *userdata;
	uint8_t *pend; /* read from fd or callback, not yet in the guest */
	size_t plen, poff;
	bool eof;    /* the source is exhausted */
	bool closed; /* the host side of the port is closed */
};

struct vmproc_child {
	struct vm *vm;
	struct vmproc_vm handle; /* vmproc_child_vm: borrows vm */
	struct virtio_ports *ports;
	struct fuse_server *fs; /* host files, NULL if none */
	bool tty;
	bool from_snapshot;
	char *program; /* for messages */

	pthread_mutex_t lock; /* ctl_out, the flags below */
	uint8_t *ctl_out;
	size_t ctl_len, ctl_cap;
	/* Where the TIME payload is in ctl_out until the first bytes of it
	 * reach the guest: the clock is read again at each try, so the
	 * guest's is set as late as possible (a boot takes a while). */
	size_t time_off;
	bool time_sent;
	bool sigpipe_queued;
	/* Reported by the guest, on the vCPU thread. */
	bool exited;
	uint32_t wstatus;
	int exec_errno;

	uint8_t ctl_in[CTL_IN_MAX + sizeof(struct vmproc_msg_hdr)];
	size_t ctl_in_len; /* vCPU thread only */

	int wake_fd;
	pthread_t io;
	bool io_started;
	atomic_bool io_quit;
	struct in_stream in;
	struct out_stream out[2]; /* stdout, stderr */
	int caller_fd[3];         /* pipe ends not yet taken by the caller */
	bool caller_fd_given[3];

	pthread_mutex_t finish_lock; /* finished and the result below */
	bool finished;
	int result;
	vmproc_status st;
	char err[VMP_ERROR_MAX];
};

/* child_io.c */
/* Wakes the I/O thread (a control message or a stream changed). */
void child_wake(struct vmproc_child *c);
/* Control messages to the guest, queued for the I/O thread: -errno. */
int child_put_msg(struct vmproc_child *c, uint32_t type, const void *payload, size_t len);
int child_put_u32(struct vmproc_child *c, uint32_t type, uint32_t v);
int child_put_size(struct vmproc_child *c, uint32_t type, unsigned rows, unsigned cols);
/* The command's messages (program, argv, env, cwd, ids, TIME, SEED...). */
int child_put_command(struct vmproc_child *c, const vmproc_cmd *cmd);
/* child_put_msg for cmd_files_build (ctx: the child). */
int child_put_cb(void *ctx, uint32_t type, const void *payload, size_t len);
/* The channel's backend: what the guest writes, on the vCPU thread. */
extern const struct virtio_ports_backend child_port_backend;
/* The I/O thread (arg: the child): feeds the guest. */
void *child_io_main(void *arg);

#endif
