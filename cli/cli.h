/* What every file of the CLI shares. One file per subcommand (cli/run.c,
 * cli/boot.c, cli/snapshot.c, ...); cli/main.c holds the table that names
 * them all, and cli/options.h the parser of the options they share. */
#ifndef VMP_CLI_CLI_H
#define VMP_CLI_CLI_H

/* Exit codes (see vmproc run --help). */
#define EXIT_VMPROC_USAGE 125 /* bad options */
#define EXIT_VMPROC_VM    125 /* the VM could not start or failed */

/* A subcommand: argv[0] is its name, as the user typed it; returns the
 * exit status. Each cli/NAME.c declares its own (`cli_command_fn
 * cmd_NAME;`) and cli/main.c lists it in its table of subcommands. */
typedef int cli_command_fn(int argc, char **argv);

#endif
