/* What the CLI's commands share (cli/vmproc.c: main, run and boot;
 * cli/snapshot.c: vmproc snapshot). */
#ifndef VMP_CLI_CLI_H
#define VMP_CLI_CLI_H

#include <stdio.h>

/* Exit codes (see vmproc run --help). */
#define EXIT_VMPROC_USAGE 125 /* bad options */
#define EXIT_VMPROC_VM    125 /* the VM could not start or failed */

/* A decimal number <= max into *out; -1 if s is not one. */
int cli_parse_uint(const char *s, unsigned long max, unsigned long *out);

int cmd_snapshot(int argc, char **argv);

#endif
