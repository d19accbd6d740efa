/* vmproc: the command-line tool. Its subcommands, one file each, are
 * listed here and nowhere else: a new one is a cli/NAME.c defining
 * cmd_NAME and a row in commands[]. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vmproc.h"

cli_command_fn cmd_run, cmd_boot, cmd_snapshot;

static const struct cli_command {
	const char *name;
	cli_command_fn *fn;
	const char *help; /* one line for vmproc --help */
} commands[] = {
    {"run", cmd_run, "run a program in its own VM, like a child process"},
    {"boot", cmd_boot, "boot the guest to its init and power it off again"},
    {"snapshot", cmd_snapshot, "build, list or clear the cached snapshots of booted guests"},
};

static void usage(FILE *f)
{
	fputs("Usage: vmproc [--version] [--help] COMMAND [OPTIONS]\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
	fputs("\n"
	      "Run 'vmproc COMMAND --help' for a command's options.\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_VMPROC_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("vmproc %s\n", vmproc_version());
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "vmproc: unknown command '%s'\n", cmd);
	usage(stderr);
	return EXIT_VMPROC_USAGE;
}
