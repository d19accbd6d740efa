/* Pure helpers of the guest init: no system calls, so the host can test
 * them (tests/guest/test_init_logic.c) without a VM. */
#ifndef VMPROC_INIT_LOGIC_H
#define VMPROC_INIT_LOGIC_H

#include <stdbool.h>
#include <stddef.h>

#include "vmproc_abi.h"

/* A message line built without stdio: init writes each one with a single
 * write(2), and stdio would add size and buffering state that a vfork
 * child must not touch. Overlong lines are cut, never overflowed. */
struct init_line {
	char buf[512];
	size_t len;
};

void init_line_add(struct init_line *line, const char *s);
void init_line_add_uint(struct init_line *line, unsigned value);

/* Shell-convention status of a wait(2) status: the exit code, or 128+N
 * for death by signal N. */
int init_exit_status(int wstatus);

/* Status of a child whose exec failed with errno err, as shells do it:
 * 127 when the program does not exist, 126 when it cannot be run. */
int init_exec_failure_status(int err);

/* The system image (guest/image/mksystem.sh): a read-only erofs on the
 * VMM's first virtio-blk disk, mounted over the initramfs's empty /usr. */
#define INIT_SYSTEM_DEVICE "/dev/vda"
#define INIT_SYSTEM_TARGET "/usr"

/* Whether mounting the system image failed with errno err only because
 * the VM has no such disk (a VMM or peer that boots a self-contained
 * initramfs): normal, so init says nothing. Anything else (a kernel
 * without erofs, a bad image) leaves the guest without its programs and
 * must be reported. */
bool init_system_disk_absent(int err);

/* Whether the kernel environment asks for step-by-step messages. */
bool init_debug_requested(char *const envp[]);

/* Whether the kernel environment asks for the command channel
 * (VMPROC_ABI_CHANNEL_WORD, vmproc_abi.h). */
bool init_channel_requested(char *const envp[]);

/* The PATH of a program run from the kernel command line, and where a
 * channel command without PATH in its environment is searched. */
#define INIT_CHILD_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The value of KEY in envp ("KEY=VALUE" strings), or NULL. */
const char *init_env_get(char *const envp[], const char *key);

/* One step of an execvp-style search: takes the next entry off the
 * colon-separated list *path and writes ENTRY/file into buf (just file for
 * an empty entry, which means the current directory). *path becomes NULL
 * after the last entry. Returns false when the name does not fit in cap.
 * Call only while *path != NULL. */
bool init_path_next(const char **path, const char *file, char *buf, size_t cap);

/* --- prewarming (VMPROC_ABI_PREWARM_ENV, vmproc_abi.h) --------------- */

/* The paths of a vmproc_prewarm value, in order, each NUL-terminated. */
struct init_prewarm {
	size_t count;
	/* Entries left out: those of VMPROC_PREWARM_PATH_MAX bytes or more,
	 * and every one after the first VMPROC_PREWARM_MAX. Empty entries
	 * (",,", a leading or trailing comma) mean nothing and are not
	 * counted. */
	unsigned ignored;
	char paths[VMPROC_PREWARM_MAX][VMPROC_PREWARM_PATH_MAX];
};

/* Splits value (NULL: no prewarming) at its commas into pw. Never
 * fails: whatever does not fit is counted in pw->ignored. */
void init_prewarm_parse(struct init_prewarm *pw, const char *value);

/* --- the command channel (vmproc_abi.h) ------------------------------ */

/* Shell-convention status when init cannot run a channel command at all
 * because the channel itself failed: ports that never appeared, or a
 * control port that closed (or failed) before VMPROC_MSG_RUN. There is
 * nobody to send VMPROC_MSG_EXEC_FAILED to, so this status and a console
 * line are all the host gets. 125 as in env(1) and docker: the runner
 * failed, not the program. */
#define INIT_STATUS_CHANNEL_FAILED 125

#define INIT_MSG_HDR 8u /* sizeof(struct vmproc_msg_hdr) on the wire */
/* An encoded guest-to-host message: a header and a u32. */
#define INIT_MSG_U32_SIZE (INIT_MSG_HDR + 4u)

/* A whole message as it came off the wire. data points into the framer's
 * buffer and stays valid until the next init_rx_space(). */
struct init_msg {
	unsigned type;
	unsigned len;
	const unsigned char *data;
};

/* The byte-stream framer of the control port. A read from a virtio port
 * returns whatever one host buffer held (or the rest of it), so a message
 * may arrive in pieces and one read may hold several messages: reads go
 * into buf (init_rx_space, init_rx_commit) and init_rx_next cuts whole
 * messages out of it. cap must be at least INIT_RX_MIN, so a message of
 * the largest allowed size always fits. */
#define INIT_RX_MIN (INIT_MSG_HDR + VMPROC_MSG_MAX)
struct init_rx {
	unsigned char *buf;
	size_t cap;
	size_t start; /* first byte not yet taken by init_rx_next */
	size_t end;   /* end of the bytes read */
};

void init_rx_init(struct init_rx *rx, unsigned char *buf, size_t cap);
/* Where the next read goes and how much it may take (always > 0). Moves
 * unconsumed bytes to the front, so messages returned before are gone. */
unsigned char *init_rx_space(struct init_rx *rx, size_t *room);
/* n bytes were read into the space init_rx_space returned. */
void init_rx_commit(struct init_rx *rx, size_t n);
/* 1: *msg is the next whole message (now consumed); 0: more bytes are
 * needed; -E2BIG: a header announces more than VMPROC_MSG_MAX bytes, and
 * as the stream cannot be resynchronised the framer stays in that
 * state. */
int init_rx_next(struct init_rx *rx, struct init_msg *msg);

/* The payload of a u32 message (UID, GID, SIGNAL); false unless it is
 * exactly 4 bytes. */
bool init_msg_u32(const struct init_msg *msg, unsigned *value);
/* The payload of a TTY or WINSIZE message; false unless exactly 4 bytes. */
bool init_msg_size(const struct init_msg *msg, unsigned short *rows, unsigned short *cols);
/* The payload of a TIME message: seconds and nanoseconds; false unless it
 * is exactly VMPROC_MSG_TIME_LEN bytes with nanoseconds below 1e9. */
bool init_msg_time(const struct init_msg *msg, long long *sec, unsigned *nsec);
/* Encodes a guest-to-host message with a u32 payload into out
 * (INIT_MSG_U32_SIZE bytes), little endian. */
void init_msg_encode_u32(unsigned char *out, unsigned type, unsigned value);

/* The command as described by the messages before VMPROC_MSG_RUN. The
 * strings live in mem, a caller-provided arena: each ARG and ENV is kept
 * there NUL-terminated, and at RUN the argv and envp arrays are built at
 * its end. */
struct init_cmd {
	char *mem;
	size_t cap;
	size_t used;
	size_t nargs;
	size_t nenv;
	const char *cwd;     /* NULL: init's own (/) */
	const char *program; /* NULL: argv[0] */
	bool set_ids;        /* UID or GID given */
	unsigned uid;
	unsigned gid;
	bool tty;
	unsigned short rows; /* the last TTY or WINSIZE before RUN */
	unsigned short cols;
	/* SIGNALs before RUN, bit N-1 for signal N: delivered, lowest number
	 * first, once the program runs. Repeats of one signal merge, as for
	 * the kernel's own standard signals. */
	unsigned long long signals;
	/* TIME and SEED, applied by serve.c before the program starts. */
	bool set_time;
	long long time_sec;
	unsigned time_nsec;
	size_t seed_len; /* 0: no SEED */
	unsigned char seed[VMPROC_SEED_MAX];
	/* ROOT and MOUNTs (host files), applied by mounts.c before the
	 * program starts; strings in mem. */
	const char *root_entry; /* NULL: no ROOT */
	unsigned root_flags;
	size_t nmounts;
	struct init_mount {
		const char *entry; /* a name in the virtio-fs root */
		const char *path;  /* absolute guest path */
		unsigned flags;
	} mounts[VMPROC_MOUNT_MAX];
	char **argv; /* set at RUN */
	char **envp; /* set at RUN */
};

#define INIT_CMD_MORE 0
#define INIT_CMD_RUN  1

void init_cmd_init(struct init_cmd *cmd, char *mem, size_t cap);
/* Takes one message before RUN. Returns INIT_CMD_MORE, INIT_CMD_RUN (the
 * command is complete, argv and envp are set), or a negative errno:
 * -EINVAL for a malformed message (a wrong length, a NUL inside a string,
 * TIME's nanoseconds out of range, RUN without any ARG, a type that has no
 * meaning here, a ROOT or MOUNT whose entry is not one path component or
 * whose path is not absolute), -E2BIG when the strings do not fit in mem
 * or there are more than VMPROC_MOUNT_MAX MOUNTs. */
int init_cmd_add(struct init_cmd *cmd, const struct init_msg *msg);

#endif
