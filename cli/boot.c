/* vmproc boot: boots the guest to its init and powers it off again, with
 * no command channel; for measuring and debugging the boot itself. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "vmproc.h"

cli_command_fn cmd_boot;

/* The VM options vmproc boot takes: all of them. */
#define BOOT_VM_OPTIONS (VM_OPT_MACHINE | VM_OPT_DISK | VM_OPT_TRACE | VM_OPT_KERNEL_LOG)

static void boot_usage(FILE *f)
{
	fputs("Usage: vmproc boot [OPTIONS] [-- INIT-ARGS...]\n"
	      "\n"
	      "Boots the guest kernel with its built-in init, which mounts its file\n"
	      "systems, reports ready and powers the VM off. Exit status: the init's\n"
	      "(0 on a clean poweroff), or 125 if the VM failed.\n"
	      "\n"
	      "Options:\n",
	      f);
	vm_options_usage(f, BOOT_VM_OPTIONS);
	fputs("  --cmdline WORDS       extra kernel command-line words\n"
	      "  -h, --help            this help\n"
	      "\n"
	      "Words after -- are passed to the guest init, which runs them as a\n"
	      "program and powers off with its exit status.\n",
	      f);
}

static void write_out(const void *data, size_t len, void *userdata)
{
	(void)userdata;
	fwrite(data, 1, len, stdout);
	fflush(stdout);
}

/* Joins argv words into kernel command-line words after "--". The kernel
 * splits its command line at spaces outside double quotes and has no
 * escape for a quote itself, so a word with white space is quoted and a
 * word with a double quote or a newline cannot be passed. */
static char *join_words(const char *prefix, int argc, char **argv)
{
	size_t n = (prefix ? strlen(prefix) + 1 : 0) + 4;
	for (int i = 0; i < argc; i++) {
		if (strpbrk(argv[i], "\"\n")) {
			fprintf(stderr,
			        "vmproc: cannot pass an argument containing '\"' or a newline "
			        "on the kernel command line: %s\n",
			        argv[i]);
			return NULL;
		}
		n += strlen(argv[i]) + 3;
	}
	char *s = malloc(n);
	if (!s)
		return NULL;
	s[0] = '\0';
	if (prefix)
		strcat(s, prefix);
	if (argc) {
		strcat(s, *s ? " --" : "--");
		for (int i = 0; i < argc; i++) {
			bool quote = !*argv[i] || strpbrk(argv[i], " \t");
			strcat(s, quote ? " \"" : " ");
			strcat(s, argv[i]);
			if (quote)
				strcat(s, "\"");
		}
	}
	return s;
}

enum { O_CMDLINE = CLI_OPT_OWN };

/* vmproc boot's own option: --cmdline (cli_parser.option). */
static int boot_option(void *ctx, int c, const char *arg)
{
	if (c == O_CMDLINE)
		*(const char **)ctx = arg;
	return 0;
}

int cmd_boot(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"cmdline", required_argument, NULL, O_CMDLINE},
	    {NULL, 0, NULL, 0},
	};
	const char *words = NULL;
	const struct cli_parser parser = {
	    .longopts = opts,
	    .vm = BOOT_VM_OPTIONS,
	    .option = boot_option,
	    .ctx = &words,
	    .usage = boot_usage,
	};
	struct vm_options o = {0};
	vmproc_vm *vm = NULL;
	char *cmdline = NULL;
	int status = EXIT_VMPROC_USAGE;
	if (cli_parse(argc, argv, &parser, &o, &status))
		goto out;
	cmdline = join_words(words, argc - optind, argv + optind);
	if (!cmdline)
		goto out;
	status = EXIT_VMPROC_VM;
	if (vmproc_config_set_cmdline_extra(o.cfg, cmdline) ||
	    vmproc_config_set_console(o.cfg, write_out, NULL) || vmproc_vm_new(&vm, o.cfg)) {
		const char *why = vmproc_config_error(o.cfg);
		if (*why)
			fprintf(stderr, "vmproc: %s\n", why);
		fprintf(stderr, "vmproc: cannot set up the VM\n");
		goto out;
	}
	int rc = vmproc_vm_start(vm);
	int exit_status = 0;
	if (!rc)
		rc = vmproc_vm_wait(vm, &exit_status);
	vm_options_print_trace(&o, vm);
	if (rc) {
		fprintf(stderr, "vmproc: VM failed (%s): %s\n",
		        vmproc_failure_name(vmproc_vm_failure(vm)), vmproc_vm_error(vm));
		goto out;
	}
	fprintf(stderr, "vmproc: guest booted to init in %.1f ms and powered off after %.1f ms\n",
	        vmproc_vm_ms_to_ready(vm), vmproc_vm_ms_to_exit(vm));
	status = exit_status;
out:
	vmproc_vm_free(vm);
	vmproc_config_free(o.cfg);
	free(cmdline);
	return status;
}
