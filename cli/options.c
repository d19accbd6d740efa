/* The one parser of a subcommand's command line (see options.h). The VM
 * options are passed to the library as they are parsed; the library
 * checks their values (vmproc_config_set_cpus: 1..64, ...) and says what
 * is wrong, so the CLI keeps no limits of its own but what the library
 * has none for (--timeout). */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

/* One VM option and the library's setter it goes to: set_string with its
 * argument, set_number with it as a number (what it counts: wants), or
 * enable; --trace, the one with none of them, is the CLI's own. */
struct vm_option {
	const char *name;
	unsigned group;   /* VM_OPT_* */
	const char *help; /* its lines in a subcommand's --help */
	int (*set_string)(vmproc_config *cfg, const char *arg);
	int (*set_number)(vmproc_config *cfg, unsigned n);
	int (*enable)(vmproc_config *cfg, int on);
	const char *wants;
	unsigned long max; /* set_number: the most the CLI passes on */
};

/* The library takes any timeout; the CLI takes up to a day, in seconds. */
static int set_timeout(vmproc_config *cfg, unsigned seconds)
{
	return vmproc_config_set_timeout_ms(cfg, (uint64_t)seconds * 1000);
}

/* PATH or PATH:ro */
static int add_disk(vmproc_config *cfg, const char *spec)
{
	size_t n = strlen(spec);
	int ro = n > 3 && !strcmp(spec + n - 3, ":ro");
	char *path = strndup(spec, ro ? n - 3 : n);
	if (!path)
		return -ENOMEM;
	int rc = vmproc_config_add_disk(cfg, path, ro);
	free(path);
	return rc;
}

/* In the order of --help. Numbers go to the library whole (up to what its
 * unsigned takes), for it to check. */
static const struct vm_option vm_table[] = {
    {"memory", VM_OPT_MACHINE, "  --memory MIB          guest memory in MiB (default 128)\n",
     .set_number = vmproc_config_set_memory_mib, .wants = "MiB", .max = UINT_MAX},
    {"cpus", VM_OPT_MACHINE, "  --cpus N              number of vCPUs (default 1)\n",
     .set_number = vmproc_config_set_cpus, .wants = "a number of vCPUs", .max = UINT_MAX},
    {"timeout", VM_OPT_MACHINE,
     "  --timeout SECONDS     stop the VM after this long (default: none)\n",
     .set_number = set_timeout, .wants = "seconds (at most 86400)", .max = 86400},
    {"kernel", VM_OPT_MACHINE, "  --kernel PATH         guest kernel (uncompressed vmlinux)\n",
     .set_string = vmproc_config_set_kernel},
    {"initrd", VM_OPT_MACHINE, "  --initrd PATH         initramfs (uncompressed cpio)\n",
     .set_string = vmproc_config_set_initrd},
    {"system", VM_OPT_MACHINE,
     "  --system PATH         system image mounted at /usr (erofs); '' for none\n",
     .set_string = vmproc_config_set_system_image},
    {"disk", VM_OPT_DISK,
     "  --disk PATH[:ro]      attach a disk image (/dev/vdb, ...); repeatable\n",
     .set_string = add_disk},
    {.name = "trace",
     .group = VM_OPT_TRACE,
     .help = "  --trace               print the VM's boot trace to stderr at the end\n"},
    {"profile", VM_OPT_TRACE,
     "  --profile             sample the guest's RIP; --trace then lists the\n"
     "                        busiest guest-kernel functions\n",
     .enable = vmproc_config_set_profile},
    {"kernel-log", VM_OPT_KERNEL_LOG,
     "  --kernel-log          show the kernel's boot log (slow: one exit per byte)\n",
     .enable = vmproc_config_set_kernel_log},
};
#define VM_TABLE_SIZE (sizeof(vm_table) / sizeof(vm_table[0]))
/* getopt codes of the VM options: VM_CODE + their index in vm_table. */
#define VM_CODE 0x10000

int cli_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

void vm_options_usage(FILE *f, unsigned vm)
{
	for (size_t i = 0; i < VM_TABLE_SIZE; i++)
		if (vm_table[i].group & vm)
			fputs(vm_table[i].help, f);
}

static int vm_option(const struct vm_option *v, const char *arg, struct vm_options *o)
{
	unsigned long n = 0;
	int rc = 0;
	if (v->set_number && cli_parse_uint(arg, v->max, &n)) {
		fprintf(stderr, "vmproc: --%s wants %s, not '%s'\n", v->name, v->wants, arg);
		return -1;
	}
	if (v->set_number)
		rc = v->set_number(o->cfg, (unsigned)n);
	else if (v->set_string)
		rc = v->set_string(o->cfg, arg);
	else if (v->enable)
		rc = v->enable(o->cfg, 1);
	else
		o->trace = 1;
	if (rc) {
		const char *why = vmproc_config_error(o->cfg);
		fprintf(stderr, "vmproc: --%s: %s\n", v->name, *why ? why : strerror(-rc));
		return -1;
	}
	return 0;
}

/* getopt_long's table: the subcommand's own options, its VM options and
 * --help. NULL if out of memory. */
static struct option *option_table(const struct cli_parser *p)
{
	size_t n = 0, own = 0;
	while (p->longopts && p->longopts[own].name)
		own++;
	struct option *all = calloc(own + VM_TABLE_SIZE + 2, sizeof(*all));
	if (!all)
		return NULL;
	for (size_t i = 0; i < own; i++)
		all[n++] = p->longopts[i];
	for (size_t i = 0; i < VM_TABLE_SIZE; i++)
		if (vm_table[i].group & p->vm)
			all[n++] = (struct option){vm_table[i].name,
			                           vm_table[i].set_string || vm_table[i].set_number
			                               ? required_argument
			                               : no_argument,
			                           NULL, VM_CODE + (int)i};
	all[n] = (struct option){"help", no_argument, NULL, 'h'};
	return all;
}

int cli_parse(int argc, char **argv, const struct cli_parser *p, struct vm_options *vm, int *status)
{
	const char *own = p->shortopts ? p->shortopts : "";
	struct option *all = option_table(p);
	char *shortopts = malloc(strlen(own) + 3);
	int rc = all && shortopts ? vmproc_config_new(&vm->cfg) : -ENOMEM;
	int st = EXIT_VMPROC_USAGE;
	if (rc) {
		fprintf(stderr, "vmproc: %s\n", strerror(-rc));
		st = EXIT_VMPROC_VM;
		goto out;
	}
	/* '+': stop at the first operand, which may be the guest program's. */
	strcpy(shortopts, "+");
	strcat(shortopts, own);
	strcat(shortopts, "h");
	optind = 0; /* glibc: start afresh at argv[1] */
	int c;
	while (!rc && (c = getopt_long(argc, argv, shortopts, all, NULL)) != -1) {
		if (c == 'h') {
			p->usage(stdout);
			st = 0;
			rc = -1;
		} else if (c >= VM_CODE && c < VM_CODE + (int)VM_TABLE_SIZE) {
			rc = vm_option(&vm_table[c - VM_CODE], optarg, vm);
		} else if (c != '?' && c != ':' && p->option) {
			rc = p->option(p->ctx, c, optarg);
		} else { /* getopt said what */
			p->usage(stderr);
			rc = -1;
		}
	}
out:
	free(all);
	free(shortopts);
	if (!rc)
		return 0;
	*status = st;
	return -1;
}

void vm_options_print_trace(const struct vm_options *o, const vmproc_vm *vm)
{
	char probe[1];
	int n = o->trace && vm ? vmproc_vm_format_trace(vm, probe, sizeof(probe)) : -1;
	char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (!buf)
		return;
	vmproc_vm_format_trace(vm, buf, (size_t)n + 1);
	fputs(buf, stderr);
	free(buf);
}
