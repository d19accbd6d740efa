/* Pure helpers of the guest init: no system calls, so the host can test
 * them (test_init_logic.c) without a VM. */
#ifndef VMPROC_INIT_LOGIC_H
#define VMPROC_INIT_LOGIC_H

#include <stdbool.h>
#include <stddef.h>

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

/* Writes dir/file into buf; false when it does not fit. */
bool init_join_path(char *buf, size_t cap, const char *dir, const char *file);

/* Where to look for a program named without a slash: the directories of
 * the PATH that the program itself is given (INIT_CHILD_PATH), in order. */
#define INIT_CHILD_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
extern const char *const init_path_dirs[];

#endif
