/* The host terminal while vmproc run -t -i has it in raw mode, restored on
 * every way out: the normal end, errors, the signals vmproc passes on (it
 * reads them from a signalfd and returns normally), job control, and the
 * signals that end it. One terminal per process: the state is static, so
 * signal handlers can reach it. */
#ifndef VMP_CLI_TERMINAL_H
#define VMP_CLI_TERMINAL_H

/* Puts the terminal on stdin in raw mode, its settings saved, if it is a
 * terminal; else does nothing. Installs handlers that restore it before
 * any signal that ends vmproc does (SIGUSR1, SIGALRM, SIGSEGV, ... for
 * each whose disposition is the default, so a sanitizer's own handlers
 * stay). 0, or -1 if it could not be made raw. */
int terminal_make_raw(void);

/* Restores the saved settings if the terminal is raw. Async-signal-safe. */
void terminal_restore(void);

/* SIGTSTP (someone asked vmproc to stop; Ctrl-Z on a raw terminal is the
 * guest's): restores the terminal, stops the process (the guest with it),
 * and when continued makes the terminal raw again if vmproc is then in
 * its foreground. */
void terminal_stop(void);

/* SIGCONT: raw again, if it was raw and vmproc is in the foreground (a
 * shell may have reset the terminal while vmproc was stopped). */
void terminal_continued(void);

#endif
