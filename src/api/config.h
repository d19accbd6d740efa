/* The contents of a vmproc_config, shared by the API and the VMM. */
#ifndef VMP_API_CONFIG_H
#define VMP_API_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"
#include "vmproc.h"

#define CONFIG_MIN_MEMORY_MIB     16
#define CONFIG_MAX_MEMORY_MIB     65536
#define CONFIG_DEFAULT_MEMORY_MIB 128
#define CONFIG_MAX_DISKS          6
#define CONFIG_MAX_CPUS           64

struct vmproc_config {
	char *kernel_path;   /* NULL: default */
	char *initrd_path;   /* NULL: default */
	char *cmdline_extra; /* NULL: none */
	char *system_path;   /* NULL: default; "" : none */
	struct config_disk {
		char *path;
		bool read_only;
	} disks[CONFIG_MAX_DISKS];
	unsigned ndisks;
	unsigned memory_mib;
	unsigned cpus;
	uint64_t timeout_ms;
	vmproc_output_fn console_fn;
	void *console_userdata;
	bool kernel_log;
	bool profile;
	struct vmp_error err;
};

/* Deep copy (for a VM to own its configuration). */
int config_copy(struct vmproc_config *dst, const struct vmproc_config *src);
void config_release(struct vmproc_config *c);

/* Resolve the default kernel and initrd paths ($VMPROC_KERNEL,
 * $VMPROC_INITRD, then the install data directory). Returns a string the
 * caller frees, or NULL on allocation failure. */
char *config_default_kernel(void);
char *config_default_initrd(void);
char *config_default_system(void);

#endif
