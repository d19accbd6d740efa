/* vmproc run: a program in its own VM, like a child process. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "terminal.h"
#include "vmproc.h"

/* Exit codes for failures of vmproc itself, as docker run does. */
/* vmproc run: the program could not be started, as in a shell. */
#define EXIT_CANNOT_EXEC 126 /* it exists but cannot be executed */
#define EXIT_NOT_FOUND   127 /* no such program */
/* vmproc run --timeout expired, as with coreutils' timeout. */
#define EXIT_TIMEOUT 124

cli_command_fn cmd_run;

/* The VM options vmproc run takes. */
#define RUN_VM_OPTIONS (VM_OPT_MACHINE | VM_OPT_TRACE)

static void run_usage(FILE *f)
{
	fputs("Usage: vmproc run [OPTIONS] [--] PROGRAM [ARGS...]\n"
	      "\n"
	      "Boots a fresh VM and runs PROGRAM with ARGS in it, like a child process:\n"
	      "the program's standard output and error are vmproc's, and vmproc exits\n"
	      "with its exit status. A PROGRAM without a slash is searched in the\n"
	      "guest's PATH.\n"
	      "\n"
	      "Options:\n"
	      "  -e, --env KEY=VALUE   set an environment variable; repeatable\n"
	      "  -w, --workdir DIR     working directory in the guest (default /)\n"
	      "  -u, --user UID[:GID]  user and group id in the guest (default 0:0;\n"
	      "                        without :GID the group is 0, as in docker run)\n"
	      "  -i, --interactive     stream standard input to the program even when it\n"
	      "                        is a terminal (a pipe or file is streamed anyway)\n"
	      "  -n, --no-stdin        the program's stdin is empty (/dev/null), as with\n"
	      "                        ssh -n; for loops that read their own input\n"
	      "  -t, --tty             run the program on a terminal in the guest, sized\n"
	      "                        like vmproc's (24x80 if it has none); with -i and\n"
	      "                        a terminal on stdin, keys go to it raw, Ctrl-C too\n"
	      "  -v, --volume HOST:GUEST[:ro]\n"
	      "                        share host directory HOST at GUEST in the guest\n"
	      "                        (virtio-fs, served by vmproc itself); :ro makes it\n"
	      "                        read-only, enforced on the host; repeatable\n"
	      "  --root DIR[:overlay|:ro|:rw]\n"
	      "                        run the program with host directory DIR as its /\n"
	      "                        (e.g. a debootstrap tree). overlay (the default):\n"
	      "                        the guest may change it, in guest memory, and DIR\n"
	      "                        is never modified; ro: read-only; rw: changes go\n"
	      "                        to DIR\n",
	      f);
	vm_options_usage(f, RUN_VM_OPTIONS);
	fputs("  --snapshot            start from the cached snapshot of this VM\n"
	      "                        configuration (built by the first run), or fail\n"
	      "  --no-snapshot         boot the guest (by default a snapshot is used when\n"
	      "                        one can be: see vmproc snapshot --help)\n"
	      "  --no-lockdown         do not lock vmproc down before the VM starts (by\n"
	      "                        default: a seccomp allowlist, no_new_privs and,\n"
	      "                        where the kernel has it, Landlock; for debugging)\n"
	      "  -h, --help            this help\n"
	      "\n"
	      "Signals: SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to vmproc are passed\n"
	      "on to the program (while the VM boots, they wait for the program to\n"
	      "start). A second one stops the VM at once. With -t, Ctrl-C typed on a\n"
	      "raw terminal is a key for the program's terminal, not a signal to\n"
	      "vmproc. A raw terminal is restored on every way out, and while vmproc\n"
	      "is stopped (SIGTSTP).\n"
	      "\n"
	      "Exit status:\n"
	      "  0-255    the program's exit status (which may itself be 124-127)\n"
	      "  128+N    the program was killed by signal N, or vmproc stopped the VM\n"
	      "           on a second signal N\n"
	      "  124      --timeout expired, as with timeout(1)\n"
	      "  125      vmproc or the VM failed: bad options, no KVM, guest panic...\n"
	      "  126      the program exists but cannot be executed\n"
	      "  127      the program was not found\n",
	      f);
}

enum { O_ROOT = CLI_OPT_OWN, O_SNAPSHOT, O_NO_SNAPSHOT, O_NO_LOCKDOWN };

struct run_opts {
	const char **env; /* -e values, already checked; as many as argc */
	unsigned nenv;
	const char **volumes; /* -v values, checked in build_cmd; as many as argc */
	unsigned nvolumes;
	const char *root; /* --root value */
	const char *workdir;
	unsigned long uid, gid;
	int has_user;
	int interactive, no_stdin, tty;
	int no_lockdown;
	vmproc_snapshot_mode snapshot;
};

/* UID or UID:GID, each a number (the guest has no user database). */
static int parse_user(const char *s, struct run_opts *o)
{
	const unsigned long max_id = 4294967294UL; /* (uid_t)-1 means "none" */
	const char *colon = strchr(s, ':');
	char *uid = strndup(s, colon ? (size_t)(colon - s) : strlen(s));
	int rc = -1;
	if (!uid)
		return -1;
	o->gid = 0;
	if (!cli_parse_uint(uid, max_id, &o->uid) &&
	    (!colon || !cli_parse_uint(colon + 1, max_id, &o->gid)))
		rc = 0;
	free(uid);
	o->has_user = !rc;
	return rc;
}

/* KEY=VALUE with a non-empty KEY, as vmproc_cmd_env_string wants. */
static int valid_env(const char *s)
{
	const char *eq = strchr(s, '=');
	return eq && eq != s;
}

/* One of vmproc run's own options (cli_parser.option). */
static int run_option(void *ctx, int c, const char *arg)
{
	struct run_opts *o = ctx;
	switch (c) {
	case 'e':
		if (!valid_env(arg)) {
			fprintf(stderr, "vmproc: --env wants KEY=VALUE, not '%s'\n", arg);
			return -1;
		}
		o->env[o->nenv++] = arg;
		break;
	case 'w': o->workdir = arg; break;
	case 'v': o->volumes[o->nvolumes++] = arg; break;
	case O_ROOT: o->root = arg; break;
	case 'u':
		if (parse_user(arg, o)) {
			fprintf(stderr, "vmproc: --user wants UID[:GID] (numbers), not '%s'\n",
			        arg);
			return -1;
		}
		break;
	case 'i': o->interactive = 1; break;
	case 'n': o->no_stdin = 1; break;
	case 't': o->tty = 1; break;
	case O_SNAPSHOT: o->snapshot = VMPROC_SNAPSHOT_ALWAYS; break;
	case O_NO_SNAPSHOT: o->snapshot = VMPROC_SNAPSHOT_NEVER; break;
	case O_NO_LOCKDOWN: o->no_lockdown = 1; break;
	}
	return 0;
}

/* vmproc run's options into o, the VM's into vm; 0, or -1 and vmproc
 * run's exit status in *status (cli_parse). The program is argv[optind]. */
static int parse_run(int argc, char **argv, struct run_opts *o, struct vm_options *vm, int *status)
{
	static const struct option opts[] = {
	    {"env", required_argument, NULL, 'e'},
	    {"workdir", required_argument, NULL, 'w'},
	    {"user", required_argument, NULL, 'u'},
	    {"interactive", no_argument, NULL, 'i'},
	    {"no-stdin", no_argument, NULL, 'n'},
	    {"tty", no_argument, NULL, 't'},
	    {"volume", required_argument, NULL, 'v'},
	    {"root", required_argument, NULL, O_ROOT},
	    {"snapshot", no_argument, NULL, O_SNAPSHOT},
	    {"no-snapshot", no_argument, NULL, O_NO_SNAPSHOT},
	    {"no-lockdown", no_argument, NULL, O_NO_LOCKDOWN},
	    {NULL, 0, NULL, 0},
	};
	const struct cli_parser parser = {
	    .shortopts = "e:w:u:v:int",
	    .longopts = opts,
	    .vm = RUN_VM_OPTIONS,
	    .option = run_option,
	    .ctx = o,
	    .usage = run_usage,
	};
	if (cli_parse(argc, argv, &parser, vm, status))
		return -1;
	if (optind >= argc) {
		fprintf(stderr, "vmproc: run needs a PROGRAM\n");
		run_usage(stderr);
		*status = EXIT_VMPROC_USAGE;
		return -1;
	}
	return 0;
}

/* The host terminal's size, from whichever of stdin and stdout is one. */
static void terminal_size(unsigned *rows, unsigned *cols)
{
	struct winsize ws;
	*rows = 24;
	*cols = 80;
	for (int fd = 0; fd <= 1; fd++) {
		if (!ioctl(fd, TIOCGWINSZ, &ws) && ws.ws_row && ws.ws_col) {
			*rows = ws.ws_row;
			*cols = ws.ws_col;
			return;
		}
	}
}

/* Whether vmproc's stdin goes to the program: with -i always; without it
 * when stdin is a pipe or a file (`echo hello | vmproc run catsay`) but not
 * a terminal, so a program started from a shell does not take the keyboard
 * unasked; never with -n, or when fd 0 is closed. */
static int stream_stdin(const struct run_opts *o)
{
	struct stat st;
	if (o->no_stdin || fstat(STDIN_FILENO, &st))
		return 0;
	return o->interactive || !isatty(STDIN_FILENO);
}

/* Whether s ends with ":suffix"; if so, its length without it. */
static int has_suffix(const char *s, const char *suffix, size_t *len)
{
	size_t n = strlen(s), k = strlen(suffix);
	if (n <= k + 1 || s[n - k - 1] != ':' || strcmp(s + n - k, suffix) != 0)
		return 0;
	*len = n - k - 1;
	return 1;
}

/* -v HOST:GUEST[:ro|:rw]: GUEST is what follows the last ':' (it starts
 * with '/'), so HOST may itself contain colons. */
static int add_volume(vmproc_cmd *cmd, const char *v)
{
	size_t len = strlen(v);
	unsigned flags = 0;
	if (has_suffix(v, "ro", &len))
		flags = VMPROC_SHARE_READONLY;
	else
		has_suffix(v, "rw", &len);
	char *spec = strndup(v, len);
	if (!spec)
		return -ENOMEM;
	char *colon = strrchr(spec, ':');
	int rc;
	if (!colon || colon == spec || colon[1] != '/') {
		fprintf(stderr,
		        "vmproc: --volume wants HOST:GUEST[:ro] with an absolute GUEST, "
		        "not '%s'\n",
		        v);
		rc = -EINVAL;
	} else {
		*colon = '\0';
		rc = vmproc_cmd_share(cmd, spec, colon + 1, flags);
		if (rc)
			fprintf(stderr, "vmproc: %s\n", vmproc_cmd_error(cmd));
	}
	free(spec);
	return rc;
}

/* --root DIR[:overlay|:ro|:rw] */
static int add_root(vmproc_cmd *cmd, const char *v)
{
	size_t len = strlen(v);
	unsigned flags = VMPROC_ROOT_OVERLAY;
	if (has_suffix(v, "ro", &len))
		flags = VMPROC_ROOT_READONLY;
	else if (has_suffix(v, "rw", &len))
		flags = 0;
	else
		has_suffix(v, "overlay", &len);
	char *dir = strndup(v, len);
	if (!dir)
		return -ENOMEM;
	int rc = vmproc_cmd_root(cmd, dir, flags);
	if (rc)
		fprintf(stderr, "vmproc: %s\n", vmproc_cmd_error(cmd));
	free(dir);
	return rc;
}

/* The command: program, arguments and every option that shapes it. */
static int build_cmd(vmproc_cmd *cmd, const struct run_opts *o, int argc, char **argv)
{
	int rc = 0;
	for (int i = 1; !rc && i < argc; i++)
		rc = vmproc_cmd_arg(cmd, argv[i]);
	for (unsigned i = 0; !rc && i < o->nenv; i++)
		rc = vmproc_cmd_env_string(cmd, o->env[i]);
	if (!rc && o->workdir)
		rc = vmproc_cmd_cwd(cmd, o->workdir);
	if (!rc && o->root && (rc = add_root(cmd, o->root)))
		return rc;
	for (unsigned i = 0; !rc && i < o->nvolumes; i++)
		if ((rc = add_volume(cmd, o->volumes[i])))
			return rc;
	if (!rc)
		rc = vmproc_cmd_snapshot(cmd, o->snapshot);
	if (!rc && o->has_user)
		rc = vmproc_cmd_uid(cmd, (unsigned)o->uid);
	if (!rc && o->has_user)
		rc = vmproc_cmd_gid(cmd, (unsigned)o->gid);
	if (!rc)
		rc = stream_stdin(o) ? vmproc_cmd_stdio_fd(cmd, VMPROC_STDIN, STDIN_FILENO)
		                     : vmproc_cmd_stdio_null(cmd, VMPROC_STDIN);
	if (!rc)
		rc = vmproc_cmd_stdio_fd(cmd, VMPROC_STDOUT, STDOUT_FILENO);
	if (o->tty) {
		unsigned rows, cols;
		terminal_size(&rows, &cols);
		if (!rc)
			rc = vmproc_cmd_tty(cmd, rows, cols);
	} else if (!rc) {
		rc = vmproc_cmd_stdio_fd(cmd, VMPROC_STDERR, STDERR_FILENO);
	}
	if (rc)
		fprintf(stderr, "vmproc: %s\n", vmproc_cmd_error(cmd));
	return rc;
}

/* The signals vmproc run passes on. They are blocked in every thread
 * (the library's threads inherit the mask at spawn) and read from a
 * signalfd, so none can end vmproc with the terminal still raw. They stay
 * blocked until vmproc exits: one arriving after the child has ended is
 * not for anyone. */
static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

/* Adds sig to set unless vmproc inherited it ignored (nohup, a
 * background job of a non-interactive shell): then it stays ignored. A
 * blocked signal would be queued for the signalfd even so. */
static void add_unless_ignored(sigset_t *set, int sig)
{
	struct sigaction old;
	if (sigaction(sig, NULL, &old) || old.sa_handler != SIG_IGN)
		sigaddset(set, sig);
}

/* The forwarded signals; with -t SIGWINCH too, and with a raw terminal
 * the job-control signals that must restore it (terminal.h). */
static int block_signals(int tty, int raw)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); i++)
		add_unless_ignored(&set, forwarded_signals[i]);
	if (tty)
		sigaddset(&set, SIGWINCH);
	if (raw) {
		add_unless_ignored(&set, SIGTSTP);
		sigaddset(&set, SIGCONT);
	}
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -1;
	int fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (fd < 0)
		fprintf(stderr, "vmproc: signalfd: %s\n", strerror(errno));
	return fd;
}

/* Passes signals on until the child has ended. The first SIGINT, SIGTERM,
 * SIGHUP or SIGQUIT goes to the program; a second one stops the VM, and
 * its number is returned (0 if the child ended by itself). */
static int wait_child(vmproc_child *child, int sfd)
{
	struct pollfd fds[2] = {
	    {.fd = vmproc_child_fd(child), .events = POLLIN},
	    {.fd = sfd, .events = POLLIN},
	};
	int forwarded = 0, stopped_by = 0;
	while (vmproc_child_try_wait(child, NULL) == -EAGAIN) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "vmproc: poll: %s\n", strerror(errno));
			vmproc_child_stop(child);
			break;
		}
		struct signalfd_siginfo si;
		if (!(fds[1].revents & POLLIN) || read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		int sig = (int)si.ssi_signo;
		if (sig == SIGTSTP)
			terminal_stop();
		else if (sig == SIGCONT)
			terminal_continued();
		if (sig == SIGWINCH || sig == SIGTSTP || sig == SIGCONT) {
			/* The size may have changed meanwhile too. */
			unsigned rows, cols;
			terminal_size(&rows, &cols);
			vmproc_child_resize(child, rows, cols);
		} else if (!forwarded) {
			forwarded = 1;
			vmproc_child_kill(child, sig);
		} else if (!stopped_by) {
			stopped_by = sig;
			vmproc_child_stop(child);
		}
	}
	return stopped_by;
}

/* vmproc run's exit status for how the child ended (see run_usage). */
static int run_exit_status(const vmproc_child *child, int rc, const vmproc_status *st,
                           int stopped_by)
{
	if (!rc && st->exited)
		return st->code;
	if (!rc && st->signal)
		return 128 + st->signal;
	if (st->exec_errno) {
		fprintf(stderr, "vmproc: %s\n", vmproc_child_error(child));
		return st->exec_errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
	}
	if (stopped_by && st->failure == VMPROC_FAILURE_STOPPED) {
		fprintf(stderr, "vmproc: stopped the VM on a second SIG%s\n",
		        sigabbrev_np(stopped_by));
		return 128 + stopped_by;
	}
	fprintf(stderr, "vmproc: %s\n", vmproc_child_error(child));
	return st->failure == VMPROC_FAILURE_TIMEOUT ? EXIT_TIMEOUT : EXIT_VMPROC_VM;
}

/* From here on vmproc is a VMM and nothing else (docs/security.md): it
 * locks itself down before the VM's threads exist, so that Landlock, which
 * the kernel applies to the calling thread and its new threads only,
 * covers them too; the seccomp filter allows everything the spawn needs,
 * the snapshot cache's first boot included. */
static int lock_down(const vmproc_cmd *cmd, const vmproc_config *cfg)
{
	vmproc_lockdown *ld;
	int rc = vmproc_lockdown_new(&ld);
	if (rc) {
		fprintf(stderr, "vmproc: cannot lock down: %s\n", strerror(-rc));
		return rc;
	}
	if (!(rc = vmproc_lockdown_allow_config(ld, cfg)) &&
	    !(rc = vmproc_lockdown_allow_cmd(ld, cmd)))
		rc = vmproc_lockdown_apply(ld);
	if (rc)
		fprintf(stderr, "vmproc: cannot lock down (--no-lockdown goes without): %s\n",
		        vmproc_lockdown_error(ld));
	vmproc_lockdown_free(ld);
	return rc;
}

/* Spawns the command, waits for it with signals passed on, and returns
 * vmproc run's exit status. */
static int run_child(vmproc_cmd *cmd, const struct vm_options *vm, const struct run_opts *o)
{
	int raw = o->tty && o->interactive && isatty(STDIN_FILENO);
	int sfd = block_signals(o->tty, raw);
	if (sfd < 0)
		return EXIT_VMPROC_VM;
	if (!o->no_lockdown && lock_down(cmd, vm->cfg)) {
		close(sfd);
		return EXIT_VMPROC_VM;
	}
	if (raw)
		terminal_make_raw();
	vmproc_child *child = NULL;
	int status = EXIT_VMPROC_VM;
	if (vmproc_spawn(cmd, vm->cfg, &child)) {
		terminal_restore();
		fprintf(stderr, "vmproc: %s\n", vmproc_cmd_error(cmd));
	} else {
		int stopped_by = wait_child(child, sfd);
		vmproc_status st = {0};
		int rc = vmproc_child_wait(child, &st);
		terminal_restore();
		vm_options_print_trace(vm, vmproc_child_vm(child));
		status = run_exit_status(child, rc, &st, stopped_by);
		vmproc_child_free(child);
	}
	close(sfd);
	return status;
}

/* The virtio-fs server holds one host fd per guest-visible file of a
 * share: take all the descriptors the hard limit allows, as virtiofsd
 * does. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o = {0};
	struct vm_options vm = {0};
	vmproc_cmd *cmd = NULL;
	int status = EXIT_VMPROC_USAGE;
	o.env = calloc((size_t)argc, sizeof(*o.env));
	o.volumes = calloc((size_t)argc, sizeof(*o.volumes));
	if (!o.env || !o.volumes || parse_run(argc, argv, &o, &vm, &status))
		goto out;
	raise_fd_limit();
	int rc = vmproc_cmd_new(&cmd, argv[optind]);
	if (rc) {
		fprintf(stderr, "vmproc: %s: %s\n", argv[optind], strerror(-rc));
		goto out;
	}
	if (build_cmd(cmd, &o, argc - optind, argv + optind))
		goto out;
	/* A reader of our stdout that goes away must not kill vmproc: the
	 * library sees EPIPE and the program gets SIGPIPE, as it would
	 * natively. */
	signal(SIGPIPE, SIG_IGN);
	status = run_child(cmd, &vm, &o);
out:
	vmproc_cmd_free(cmd);
	vmproc_config_free(vm.cfg);
	free(o.env);
	free(o.volumes);
	return status;
}
