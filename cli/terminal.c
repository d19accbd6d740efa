/* The host terminal in raw mode while a -t -i program runs on it, so that
 * every key (Ctrl-C, Ctrl-Z, ...) reaches the guest's terminal, which
 * does its own line editing and signals; and back to what it was on every
 * way out (terminal.h). */
#include "terminal.h"

#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved;
/* 1 while the terminal is raw, 2 while vmproc is stopped with it
 * restored (raw again when continued). */
static volatile sig_atomic_t state;

/* Signals whose default action ends the process and which vmproc does
 * not pass on to the program (SIGINT, SIGTERM, SIGHUP and SIGQUIT are
 * read from a signalfd; SIGKILL and a seccomp kill cannot be caught). */
static const int fatal_signals[] = {
    SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU, SIGXFSZ, SIGIO,     SIGPWR,
    SIGTRAP, SIGABRT, SIGBUS,  SIGFPE,    SIGILL,  SIGSEGV, SIGSYS,  SIGSTKFLT,
};

static void set_raw(void)
{
	struct termios raw = saved;
	cfmakeraw(&raw);
	if (!tcsetattr(STDIN_FILENO, TCSADRAIN, &raw))
		state = 1;
}

void terminal_restore(void)
{
	if (state == 1)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved);
	state = 0;
}

/* Restores the terminal, then lets the signal do what it would have
 * done: the handler was reset to the default on entry (SA_RESETHAND). */
static void restore_and_reraise(int sig)
{
	terminal_restore();
	raise(sig);
}

static void catch_fatal_signals(void)
{
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++) {
		struct sigaction old, sa;
		if (sigaction(fatal_signals[i], NULL, &old) || old.sa_handler != SIG_DFL ||
		    (old.sa_flags & SA_SIGINFO))
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = restore_and_reraise;
		sa.sa_flags = SA_RESETHAND | SA_NODEFER;
		sigfillset(&sa.sa_mask);
		sigaction(fatal_signals[i], &sa, NULL);
	}
}

int terminal_make_raw(void)
{
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved))
		return 0;
	catch_fatal_signals();
	set_raw();
	return state == 1 ? 0 : -1;
}

/* Only the foreground may change the terminal: a stopped vmproc that a
 * shell continues in the background leaves it to the shell. */
static int in_foreground(void)
{
	return tcgetpgrp(STDIN_FILENO) == getpgrp();
}

void terminal_stop(void)
{
	if (state != 1) {
		raise(SIGSTOP);
		return;
	}
	terminal_restore();
	state = 2;
	raise(SIGSTOP);
	terminal_continued();
}

void terminal_continued(void)
{
	if (state != 0 && in_foreground())
		set_raw();
}
