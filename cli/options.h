/* The one parser of a subcommand's command line: the subcommand's own
 * options beside the VM options that every VM-starting subcommand shares
 * (--memory, --cpus, --kernel, ...), and the number helpers. A new
 * subcommand describes its own options in a struct cli_parser and picks
 * the VM options it takes; a new VM option is a row in cli/options.c's
 * table and reaches every subcommand that takes its group. */
#ifndef VMP_CLI_OPTIONS_H
#define VMP_CLI_OPTIONS_H

#include <getopt.h>
#include <stdio.h>

#include "vmproc.h"

/* The groups of VM options, for struct cli_parser's vm. */
enum {
	VM_OPT_MACHINE = 1 << 0,    /* --memory --cpus --timeout --kernel --initrd --system */
	VM_OPT_DISK = 1 << 1,       /* --disk PATH[:ro] */
	VM_OPT_TRACE = 1 << 2,      /* --trace --profile */
	VM_OPT_KERNEL_LOG = 1 << 3, /* --kernel-log */
};

/* Where the VM options go. cfg (made by cli_parse, freed by the caller)
 * gets each one as it is parsed, so the library checks every value, ranges
 * included; what is not part of a configuration is kept here. */
struct vm_options {
	vmproc_config *cfg;
	int trace; /* --trace: print the VM's trace at the end */
};

/* A subcommand's own options. Their codes are short-option letters, or
 * CLI_OPT_OWN and up for long-only ones (the VM options use others). */
#define CLI_OPT_OWN 256
struct cli_parser {
	const char *shortopts;         /* getopt's short options, without '+' and 'h' */
	const struct option *longopts; /* terminated by a {0} entry; NULL: none */
	unsigned vm;                   /* which VM options: VM_OPT_* */
	/* One of its own options (arg: its argument or NULL): 0, or -1 after
	 * saying why on stderr. */
	int (*option)(void *ctx, int code, const char *arg);
	void *ctx;
	void (*usage)(FILE *f); /* its --help */
};

/* Parses argv's options (argv[0] is the subcommand's name) up to the first
 * operand or "--", as getopt does: operands then start at optind. Creates
 * vm->cfg (the caller frees it, whatever this returns) and sets each VM
 * option on it. Returns 0 if the subcommand goes on; else -1 and *status
 * is its exit status: 0 after --help (printed to stdout), or
 * EXIT_VMPROC_USAGE after saying on stderr what was wrong (an unknown
 * option, a malformed value, or one the library refused). */
int cli_parse(int argc, char **argv, const struct cli_parser *p, struct vm_options *vm,
              int *status);

/* The help lines of the VM options in the groups vm, as a subcommand's
 * usage shows them. */
void vm_options_usage(FILE *f, unsigned vm);

/* With --trace, prints the VM's trace (vmproc_vm_format_trace) to stderr. */
void vm_options_print_trace(const struct vm_options *o, const vmproc_vm *vm);

/* A decimal number <= max into *out; -1 if s is not one. */
int cli_parse_uint(const char *s, unsigned long max, unsigned long *out);

#endif
