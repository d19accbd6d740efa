/* Embedding libvmproc: boot the built-in guest, run one shell command in
 * it, stream its console output to our stdout, and report how it ended.
 *
 *   build/examples/boot_and_run 'echo hello from a VM; uname -r'
 *
 * Build against an installed vmproc with:
 *   cc boot_and_run.c $(pkg-config --cflags --libs vmproc)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmproc.h>

static void print_console(const void *data, size_t len, void *userdata)
{
	(void)userdata;
	fwrite(data, 1, len, stdout);
}

int main(int argc, char **argv)
{
	const char *script = argc > 1 ? argv[1] : "echo hello from a VM";
	/* The guest init runs the words after "--" as its program. */
	char cmdline[1024];
	if (strchr(script, '"')) {
		fprintf(stderr, "boot_and_run: the script must not contain '\"'\n");
		return 2;
	}
	snprintf(cmdline, sizeof(cmdline), "-- /bin/sh -c \"%s\"", script);

	vmproc_config *cfg;
	if (vmproc_config_new(&cfg) != 0)
		return 1;
	vmproc_config_set_console(cfg, print_console, NULL);
	vmproc_config_set_timeout_ms(cfg, 10 * 60 * 1000);
	if (vmproc_config_set_cmdline_extra(cfg, cmdline) != 0) {
		fprintf(stderr, "boot_and_run: %s\n", vmproc_config_error(cfg));
		vmproc_config_free(cfg);
		return 1;
	}

	vmproc_vm *vm;
	int status = -1, rc = vmproc_vm_new(&vm, cfg);
	if (rc == 0) {
		rc = vmproc_vm_start(vm);
		if (rc == 0)
			rc = vmproc_vm_wait(vm, &status);
		if (rc != 0)
			fprintf(stderr, "boot_and_run: VM failed (%s): %s\n",
			        vmproc_failure_name(vmproc_vm_failure(vm)), vmproc_vm_error(vm));
		else
			fprintf(stderr, "boot_and_run: exit status %d, init ready after %.0f ms\n",
			        status, vmproc_vm_ms_to_ready(vm));
		vmproc_vm_free(vm);
	}
	vmproc_config_free(cfg);
	return rc == 0 ? status : 125;
}
