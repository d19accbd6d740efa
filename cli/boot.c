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

static void boot_usage(FILE *f)
{
	fputs("Usage: vmproc boot [OPTIONS] [-- INIT-ARGS...]\n"
	      "\n"
	      "Boots the guest kernel with its built-in init, which mounts its file\n"
	      "systems, reports ready and powers the VM off. Exit status: the init's\n"
	      "(0 on a clean poweroff), or 125 if the VM failed.\n"
	      "\n"
	      "Options:\n"
	      "  --trace            print where boot time went, and VM exits\n"
	      "  --kernel PATH      guest kernel (uncompressed vmlinux)\n"
	      "  --initrd PATH      initramfs (uncompressed cpio)\n"
	      "  --system PATH      system image mounted at /usr (erofs); '' for none\n"
	      "  --disk PATH[:ro]   attach a disk image (/dev/vdb, ...); repeatable\n"
	      "  --memory MIB       guest memory in MiB (default 128)\n"
	      "  --cpus N           number of vCPUs (default 1)\n"
	      "  --timeout SECONDS  stop the VM after this long (default: none)\n"
	      "  --cmdline WORDS    extra kernel command-line words\n"
	      "  --kernel-log       show the kernel's boot log (slow: one exit per byte)\n"
	      "  --profile          sample the guest RIP; with --trace, print hot functions\n"
	      "  -h, --help         this help\n"
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

struct boot_opts {
	int trace;
	int kernel_log;
	int profile;
	const char *kernel, *initrd, *cmdline, *system;
	const char *disks[8];
	unsigned ndisks;
	unsigned long memory, timeout, cpus;
};

static int parse_boot(int argc, char **argv, struct boot_opts *o)
{
	enum {
		O_TRACE = 256,
		O_KERNEL,
		O_INITRD,
		O_MEMORY,
		O_TIMEOUT,
		O_CMDLINE,
		O_KLOG,
		O_PROFILE,
		O_SYSTEM,
		O_DISK,
		O_CPUS
	};
	static const struct option opts[] = {
	    {"trace", no_argument, NULL, O_TRACE},
	    {"kernel", required_argument, NULL, O_KERNEL},
	    {"initrd", required_argument, NULL, O_INITRD},
	    {"memory", required_argument, NULL, O_MEMORY},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"cmdline", required_argument, NULL, O_CMDLINE},
	    {"kernel-log", no_argument, NULL, O_KLOG},
	    {"profile", no_argument, NULL, O_PROFILE},
	    {"system", required_argument, NULL, O_SYSTEM},
	    {"disk", required_argument, NULL, O_DISK},
	    {"cpus", required_argument, NULL, O_CPUS},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case O_TRACE: o->trace = 1; break;
		case O_KLOG: o->kernel_log = 1; break;
		case O_PROFILE: o->profile = 1; break;
		case O_SYSTEM: o->system = optarg; break;
		case O_DISK:
			if (o->ndisks == sizeof(o->disks) / sizeof(o->disks[0])) {
				fprintf(stderr, "vmproc: too many --disk options\n");
				return -1;
			}
			o->disks[o->ndisks++] = optarg;
			break;
		case O_KERNEL: o->kernel = optarg; break;
		case O_INITRD: o->initrd = optarg; break;
		case O_CMDLINE: o->cmdline = optarg; break;
		case O_MEMORY:
			if (cli_parse_uint(optarg, 65536, &o->memory)) {
				fprintf(stderr, "vmproc: --memory wants MiB, not '%s'\n", optarg);
				return -1;
			}
			break;
		case O_CPUS:
			if (cli_parse_uint(optarg, 1024, &o->cpus) || o->cpus == 0) {
				fprintf(stderr,
				        "vmproc: --cpus wants a number of vCPUs, not '%s'\n",
				        optarg);
				return -1;
			}
			break;
		case O_TIMEOUT:
			if (cli_parse_uint(optarg, 86400, &o->timeout)) {
				fprintf(stderr, "vmproc: --timeout wants seconds, not '%s'\n",
				        optarg);
				return -1;
			}
			break;
		case 'h': boot_usage(stdout); exit(0);
		default: boot_usage(stderr); return -1;
		}
	}
	return 0;
}

/* PATH or PATH:ro */
static int add_disk_option(vmproc_config *cfg, const char *spec)
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

static int configure(vmproc_config *cfg, const struct boot_opts *o, char *cmdline)
{
	int rc = 0;
	if (!rc && o->kernel)
		rc = vmproc_config_set_kernel(cfg, o->kernel);
	if (!rc && o->initrd)
		rc = vmproc_config_set_initrd(cfg, o->initrd);
	if (!rc && o->system)
		rc = vmproc_config_set_system_image(cfg, o->system);
	for (unsigned i = 0; !rc && i < o->ndisks; i++)
		rc = add_disk_option(cfg, o->disks[i]);
	if (!rc && o->memory)
		rc = vmproc_config_set_memory_mib(cfg, (unsigned)o->memory);
	if (!rc && o->cpus)
		rc = vmproc_config_set_cpus(cfg, (unsigned)o->cpus);
	if (!rc && o->timeout)
		rc = vmproc_config_set_timeout_ms(cfg, (uint64_t)o->timeout * 1000);
	if (!rc && cmdline && *cmdline)
		rc = vmproc_config_set_cmdline_extra(cfg, cmdline);
	if (!rc)
		rc = vmproc_config_set_console(cfg, write_out, NULL);
	if (!rc)
		rc = vmproc_config_set_kernel_log(cfg, o->kernel_log);
	if (!rc)
		rc = vmproc_config_set_profile(cfg, o->profile);
	if (rc)
		fprintf(stderr, "vmproc: %s\n", vmproc_config_error(cfg));
	return rc;
}

int cmd_boot(int argc, char **argv)
{
	struct boot_opts o = {0};
	if (parse_boot(argc, argv, &o))
		return EXIT_VMPROC_USAGE;
	char *cmdline = join_words(o.cmdline, argc - optind, argv + optind);
	vmproc_config *cfg = NULL;
	vmproc_vm *vm = NULL;
	int status = EXIT_VMPROC_VM;
	if (!cmdline)
		return EXIT_VMPROC_USAGE;
	if (vmproc_config_new(&cfg) || configure(cfg, &o, cmdline) || vmproc_vm_new(&vm, cfg)) {
		fprintf(stderr, "vmproc: cannot set up the VM\n");
		goto out;
	}
	int rc = vmproc_vm_start(vm);
	int exit_status = 0;
	if (!rc)
		rc = vmproc_vm_wait(vm, &exit_status);
	if (o.trace) {
		char buf[16384];
		vmproc_vm_format_trace(vm, buf, sizeof(buf));
		fputs(buf, stderr);
	}
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
	vmproc_config_free(cfg);
	free(cmdline);
	return status;
}
