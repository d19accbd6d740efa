/* Init's messages: every line goes to init's fd 2, the console (never to a
 * port of the command channel), with one write(2) each. */
#ifndef VMPROC_INIT_REPORT_H
#define VMPROC_INIT_REPORT_H

#include <stdbool.h>

#include "init_logic.h"

/* Whether the kernel command line asked for step-by-step messages. */
extern bool init_debug;

/* Writes line and a newline; best effort. */
void init_write_line(struct init_line *line);
/* "vmproc-init: WHAT" or "vmproc-init: WHAT DETAIL". */
void init_say(const char *what, const char *detail);
/* init_say, only in debug mode. */
void init_debug_say(const char *what, const char *detail);
/* "vmproc-init: CALL ARG: strerror (errno N)" for a failed system call. */
void init_report(const char *call, const char *arg, int err);

#endif
