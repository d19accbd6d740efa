/* A VM's configuration: what the VMM boots and how. The VMM's own data;
 * the public vmproc_config (src/api/config.c) wraps it with an error
 * message for the caller. */
#ifndef VMP_VMM_CONFIG_H
#define VMP_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"
#include "vmproc.h"

#define VM_MIN_MEMORY_MIB     16
#define VM_MAX_MEMORY_MIB     65536
#define VM_DEFAULT_MEMORY_MIB 128
#define VM_MAX_DISKS          6
#define VM_MAX_CPUS           64

struct vm_config {
	char *kernel_path;   /* NULL: default */
	char *initrd_path;   /* NULL: default */
	char *cmdline_extra; /* NULL: none */
	char *system_path;   /* NULL: default; "" : none */
	struct vm_disk {
		char *path;
		bool read_only;
	} disks[VM_MAX_DISKS];
	unsigned ndisks;
	unsigned memory_mib;
	unsigned cpus;
	uint64_t timeout_ms;
	vmproc_output_fn console_fn;
	void *console_userdata;
	bool kernel_log;
	bool profile;
};

/* The defaults: 128 MiB, one vCPU, the built-in guest. */
void vm_config_init(struct vm_config *c);
/* Deep copy (for a VM or a template to own its configuration). */
int vm_config_copy(struct vm_config *dst, const struct vm_config *src);
void vm_config_release(struct vm_config *c);
/* Whether a and b describe the same VM (the per-VM settings that do not
 * change what boots aside: timeout, console, profile). */
bool vm_config_same_machine(const struct vm_config *a, const struct vm_config *b);

/* Validating setters: a value the VMM cannot run gets -EINVAL (or
 * -ENOSPC, -ENOMEM) and a message in err, and c is unchanged. */
int vm_config_set_path(char **field, const char *value, const char *what, struct vmp_error *err);
int vm_config_add_disk(struct vm_config *c, const char *path, bool read_only,
                       struct vmp_error *err);
int vm_config_set_memory_mib(struct vm_config *c, unsigned mib, struct vmp_error *err);
int vm_config_set_cpus(struct vm_config *c, unsigned n, struct vmp_error *err);

/* The files a VM boots from, defaults resolved: $VMPROC_KERNEL,
 * $VMPROC_INITRD, $VMPROC_SYSTEM, then the install data directory. The
 * one place defaults are decided, for the VM and for the snapshot key. */
struct vm_files {
	char *kernel;
	char *initrd;
	char *system; /* NULL: no system image */
};
int vm_config_resolve_files(const struct vm_config *c, struct vm_files *out, struct vmp_error *err);
void vm_files_release(struct vm_files *f);

#endif
