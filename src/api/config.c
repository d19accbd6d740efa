#include "api/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifndef VMPROC_DATADIR
#error "VMPROC_DATADIR must be defined by the build"
#endif

int vmproc_config_new(vmproc_config **out)
{
	struct vmproc_config *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->memory_mib = CONFIG_DEFAULT_MEMORY_MIB;
	c->cpus = 1;
	*out = c;
	return 0;
}

void config_release(struct vmproc_config *c)
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

void vmproc_config_free(vmproc_config *cfg)
{
	if (!cfg)
		return;
	config_release(cfg);
	free(cfg);
}

const char *vmproc_config_error(const vmproc_config *cfg)
{
	return cfg ? cfg->err.msg : "";
}

static int set_string(vmproc_config *cfg, char **field, const char *value, const char *what)
{
	if (!cfg)
		return -EINVAL;
	vmp_error_clear(&cfg->err);
	char *copy = NULL;
	if (value) {
		if (!*value)
			return vmp_fail(&cfg->err, -EINVAL, "%s must not be empty", what);
		copy = strdup(value);
		if (!copy)
			return vmp_fail(&cfg->err, -ENOMEM, "out of memory");
	}
	free(*field);
	*field = copy;
	return 0;
}

int vmproc_config_set_kernel(vmproc_config *cfg, const char *path)
{
	return set_string(cfg, &cfg->kernel_path, path, "kernel path");
}

int vmproc_config_set_initrd(vmproc_config *cfg, const char *path)
{
	return set_string(cfg, &cfg->initrd_path, path, "initrd path");
}

int vmproc_config_set_cmdline_extra(vmproc_config *cfg, const char *words)
{
	return set_string(cfg, &cfg->cmdline_extra, words && *words ? words : NULL, "command line");
}

int vmproc_config_set_system_image(vmproc_config *cfg, const char *path)
{
	if (!cfg)
		return -EINVAL;
	vmp_error_clear(&cfg->err);
	char *copy = path ? strdup(path) : NULL;
	if (path && !copy)
		return vmp_fail(&cfg->err, -ENOMEM, "out of memory");
	free(cfg->system_path);
	cfg->system_path = copy;
	return 0;
}

int vmproc_config_add_disk(vmproc_config *cfg, const char *path, int read_only)
{
	if (!cfg || !path)
		return -EINVAL;
	vmp_error_clear(&cfg->err);
	if (!*path)
		return vmp_fail(&cfg->err, -EINVAL, "disk path must not be empty");
	if (cfg->ndisks >= CONFIG_MAX_DISKS)
		return vmp_fail(&cfg->err, -ENOSPC, "at most %d disks", CONFIG_MAX_DISKS);
	char *copy = strdup(path);
	if (!copy)
		return vmp_fail(&cfg->err, -ENOMEM, "out of memory");
	cfg->disks[cfg->ndisks++] = (struct config_disk){.path = copy, .read_only = read_only != 0};
	return 0;
}

int vmproc_config_set_memory_mib(vmproc_config *cfg, unsigned mib)
{
	if (!cfg)
		return -EINVAL;
	vmp_error_clear(&cfg->err);
	if (mib < CONFIG_MIN_MEMORY_MIB || mib > CONFIG_MAX_MEMORY_MIB)
		return vmp_fail(&cfg->err, -EINVAL, "memory must be %d..%d MiB, not %u",
		                CONFIG_MIN_MEMORY_MIB, CONFIG_MAX_MEMORY_MIB, mib);
	cfg->memory_mib = mib;
	return 0;
}

int vmproc_config_set_cpus(vmproc_config *cfg, unsigned n)
{
	if (!cfg)
		return -EINVAL;
	vmp_error_clear(&cfg->err);
	if (n < 1 || n > CONFIG_MAX_CPUS)
		return vmp_fail(&cfg->err, -EINVAL, "vCPUs must be 1..%d, not %u", CONFIG_MAX_CPUS,
		                n);
	cfg->cpus = n;
	return 0;
}

int vmproc_config_set_timeout_ms(vmproc_config *cfg, uint64_t ms)
{
	if (!cfg)
		return -EINVAL;
	cfg->timeout_ms = ms;
	return 0;
}

int vmproc_config_set_console(vmproc_config *cfg, vmproc_output_fn fn, void *userdata)
{
	if (!cfg)
		return -EINVAL;
	cfg->console_fn = fn;
	cfg->console_userdata = userdata;
	return 0;
}

int vmproc_config_set_kernel_log(vmproc_config *cfg, int enable)
{
	if (!cfg)
		return -EINVAL;
	cfg->kernel_log = enable != 0;
	return 0;
}

int vmproc_config_set_profile(vmproc_config *cfg, int enable)
{
	if (!cfg)
		return -EINVAL;
	cfg->profile = enable != 0;
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int config_copy(struct vmproc_config *dst, const struct vmproc_config *src)
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
	vmp_error_clear(&dst->err);
	if (failed || (src->kernel_path && !dst->kernel_path) ||
	    (src->initrd_path && !dst->initrd_path) ||
	    (src->cmdline_extra && !dst->cmdline_extra) ||
	    (src->system_path && !dst->system_path)) {
		config_release(dst);
		return -ENOMEM;
	}
	return 0;
}

static char *default_path(const char *env, const char *file)
{
	const char *v = getenv(env);
	if (v && *v)
		return strdup(v);
	size_t n = strlen(VMPROC_DATADIR) + 1 + strlen(file) + 1;
	char *p = malloc(n);
	if (p) {
		strcpy(p, VMPROC_DATADIR);
		strcat(p, "/");
		strcat(p, file);
	}
	return p;
}

char *config_default_kernel(void)
{
	return default_path("VMPROC_KERNEL", "vmlinux");
}

char *config_default_initrd(void)
{
	return default_path("VMPROC_INITRD", "initramfs.cpio");
}

char *config_default_system(void)
{
	return default_path("VMPROC_SYSTEM", "system.erofs");
}
