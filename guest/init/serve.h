/* The guest side of the command channel (vmproc_abi.h, "The command
 * channel"). Takes its descriptors as parameters and does not assume it
 * is PID 1, so the host can test it with socketpairs (tests/guest/test_serve.c). */
#ifndef VMPROC_INIT_SERVE_H
#define VMPROC_INIT_SERVE_H

#include "vmproc_abi.h"

/* Opens the channel's ports, fds[i] being port i (VMPROC_ABI_PORT_*), in
 * port order and each exactly once, all close-on-exec. Their device nodes
 * appear asynchronously, so a missing one is retried every 5 ms, for
 * about 10 s in all. Returns 0, or -1 after a console line. */
int init_channel_open(int fds[VMPROC_ABI_CHANNEL_PORTS]);

/* Runs one command: reads its description from ctl until VMPROC_MSG_RUN,
 * starts the program (in, out and err become its 0, 1 and 2; in tty mode
 * a pty does, and init relays in to it and it to out), passes on signals
 * and window sizes, and when the program has exited sends
 * VMPROC_MSG_EXITED, or VMPROC_MSG_EXEC_FAILED if it never started.
 * Returns the status for the exit port: init_exit_status() of the wait
 * status; init_exec_failure_status() of the errno when the command was
 * malformed (EINVAL, E2BIG) or could not start; or
 * INIT_STATUS_CHANNEL_FAILED when ctl closed or failed before RUN.
 *
 * The descriptors must be above 2 or in port order (ctl < in < out <
 * err), and close-on-exec. The program starts in the caller's working
 * directory unless the command has CWD (init's is /, the protocol's
 * default). Blocks SIGCHLD in the caller and leaves it so. */
int init_serve(int ctl, int in, int out, int err);

/* execve(file) as execvp does: a name without a slash is searched in
 * path, a colon-separated list. Returns the errno that decides, only
 * when nothing could be executed. */
int init_exec(const char *file, char *const argv[], char *const envp[], const char *path);

#endif
