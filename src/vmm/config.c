#include "vmm/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VMPROC_DATADIR
#error "VMPROC_DATADIR must be defined by the build"
#endif

void vm_config_init(struct vm_config *c)
{
	*c = (struct vm_config){.memory_mib = VM_DEFAULT_MEMORY_MIB, .cpus = 1};
}

void vm_config_release(struct vm_config *c)
{
	free(c->kernel_path);
	free(c->initrd_path);
	free(c->cmdline_extra);
	free(c->system_path);
	for (unsigned i = 0; i < c->ndisks; i++)
		free(c->disks[i].path);
	c->ndisks = 0;
	c->kernel_path = c->initrd_path = c->cmdline_extra = c->system_path = NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int vm_config_copy(struct vm_config *dst, const struct vm_config *src)
{
	*dst = *src;
	dst->kernel_path = dup_or_null(src->kernel_path);
	dst->initrd_path = dup_or_null(src->initrd_path);
	dst->cmdline_extra = dup_or_null(src->cmdline_extra);
	dst->system_path = dup_or_null(src->system_path);
	bool failed = false;
	for (unsigned i = 0; i < src->ndisks; i++) {
		dst->disks[i].path = dup_or_null(src->disks[i].path);
		failed |= !dst->disks[i].path;
	}
	if (failed || (src->kernel_path && !dst->kernel_path) ||
	    (src->initrd_path && !dst->initrd_path) ||
	    (src->cmdline_extra && !dst->cmdline_extra) ||
	    (src->system_path && !dst->system_path)) {
		vm_config_release(dst);
		return -ENOMEM;
	}
	return 0;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

bool vm_config_same_machine(const struct vm_config *a, const struct vm_config *b)
{
	if (!same_str(a->kernel_path, b->kernel_path) ||
	    !same_str(a->initrd_path, b->initrd_path) ||
	    !same_str(a->system_path, b->system_path) ||
	    !same_str(a->cmdline_extra, b->cmdline_extra) || a->memory_mib != b->memory_mib ||
	    (a->cpus ? a->cpus : 1) != (b->cpus ? b->cpus : 1) || a->ndisks != b->ndisks)
		return false;
	for (unsigned i = 0; i < a->ndisks; i++)
		if (!same_str(a->disks[i].path, b->disks[i].path) ||
		    a->disks[i].read_only != b->disks[i].read_only)
			return false;
	return true;
}

int vm_config_set_path(char **field, const char *value, const char *what, struct vmp_error *err)
{
	char *copy = NULL;
	if (value) {
		if (!*value)
			return vmp_fail(err, -EINVAL, "%s must not be empty", what);
		copy = strdup(value);
		if (!copy)
			return vmp_fail(err, -ENOMEM, "out of memory");
	}
	free(*field);
	*field = copy;
	return 0;
}

int vm_config_add_disk(struct vm_config *c, const char *path, bool read_only, struct vmp_error *err)
{
	if (!*path)
		return vmp_fail(err, -EINVAL, "disk path must not be empty");
	if (c->ndisks >= VM_MAX_DISKS)
		return vmp_fail(err, -ENOSPC, "at most %d disks", VM_MAX_DISKS);
	char *copy = strdup(path);
	if (!copy)
		return vmp_fail(err, -ENOMEM, "out of memory");
	c->disks[c->ndisks++] = (struct vm_disk){.path = copy, .read_only = read_only};
	return 0;
}

int vm_config_set_memory_mib(struct vm_config *c, unsigned mib, struct vmp_error *err)
{
	if (mib < VM_MIN_MEMORY_MIB || mib > VM_MAX_MEMORY_MIB)
		return vmp_fail(err, -EINVAL, "memory must be %d..%d MiB, not %u",
		                VM_MIN_MEMORY_MIB, VM_MAX_MEMORY_MIB, mib);
	c->memory_mib = mib;
	return 0;
}

int vm_config_set_cpus(struct vm_config *c, unsigned n, struct vmp_error *err)
{
	if (n < 1 || n > VM_MAX_CPUS)
		return vmp_fail(err, -EINVAL, "vCPUs must be 1..%d, not %u", VM_MAX_CPUS, n);
	c->cpus = n;
	return 0;
}

static char *default_path(const char *env, const char *file)
{
	const char *v = getenv(env);
	if (v && *v)
		return strdup(v);
	char *p = NULL;
	if (asprintf(&p, "%s/%s", VMPROC_DATADIR, file) < 0)
		return NULL;
	return p;
}

int vm_config_resolve_files(const struct vm_config *c, struct vm_files *out, struct vmp_error *err)
{
	*out = (struct vm_files){0};
	out->kernel =
	    c->kernel_path ? strdup(c->kernel_path) : default_path("VMPROC_KERNEL", "vmlinux");
	out->initrd = c->initrd_path ? strdup(c->initrd_path)
	                             : default_path("VMPROC_INITRD", "initramfs.cpio");
	bool want_system = !c->system_path || *c->system_path;
	if (!c->system_path)
		out->system = default_path("VMPROC_SYSTEM", "system.erofs");
	else if (*c->system_path)
		out->system = strdup(c->system_path);
	if (!out->kernel || !out->initrd || (want_system && !out->system)) {
		vm_files_release(out);
		return vmp_fail(err, -ENOMEM, "out of memory");
	}
	return 0;
}

void vm_files_release(struct vm_files *f)
{
	free(f->kernel);
	free(f->initrd);
	free(f->system);
	*f = (struct vm_files){0};
}
