/* vmproc_config_*: the public setters over the VMM's configuration. */
#include "api/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int vmproc_config_new(vmproc_config **out)
{
	struct vmproc_config *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	vm_config_init(&c->vm);
	*out = c;
	return 0;
}

void vmproc_config_free(vmproc_config *cfg)
{
	if (!cfg)
		return;
	vm_config_release(&cfg->vm);
	free(cfg);
}

const char *vmproc_config_error(const vmproc_config *cfg)
{
	return cfg ? cfg->err.msg : "";
}

/* Every setter starts with this: a clean message for this call. */
static bool begin(vmproc_config *cfg)
{
	if (cfg)
		vmp_error_clear(&cfg->err);
	return cfg != NULL;
}

int vmproc_config_set_kernel(vmproc_config *cfg, const char *path)
{
	if (!begin(cfg))
		return -EINVAL;
	return vm_config_set_path(&cfg->vm.kernel_path, path, "kernel path", &cfg->err);
}

int vmproc_config_set_initrd(vmproc_config *cfg, const char *path)
{
	if (!begin(cfg))
		return -EINVAL;
	return vm_config_set_path(&cfg->vm.initrd_path, path, "initrd path", &cfg->err);
}

int vmproc_config_set_cmdline_extra(vmproc_config *cfg, const char *words)
{
	if (!begin(cfg))
		return -EINVAL;
	return vm_config_set_path(&cfg->vm.cmdline_extra, words && *words ? words : NULL,
	                          "command line", &cfg->err);
}

int vmproc_config_set_system_image(vmproc_config *cfg, const char *path)
{
	if (!begin(cfg))
		return -EINVAL;
	/* "" is meaningful here: no system image. */
	char *copy = path ? strdup(path) : NULL;
	if (path && !copy)
		return vmp_fail(&cfg->err, -ENOMEM, "out of memory");
	free(cfg->vm.system_path);
	cfg->vm.system_path = copy;
	return 0;
}

int vmproc_config_add_disk(vmproc_config *cfg, const char *path, int read_only)
{
	if (!path || !begin(cfg))
		return -EINVAL;
	return vm_config_add_disk(&cfg->vm, path, read_only != 0, &cfg->err);
}

int vmproc_config_set_memory_mib(vmproc_config *cfg, unsigned mib)
{
	if (!begin(cfg))
		return -EINVAL;
	return vm_config_set_memory_mib(&cfg->vm, mib, &cfg->err);
}

int vmproc_config_set_cpus(vmproc_config *cfg, unsigned n)
{
	if (!begin(cfg))
		return -EINVAL;
	return vm_config_set_cpus(&cfg->vm, n, &cfg->err);
}

int vmproc_config_set_timeout_ms(vmproc_config *cfg, uint64_t ms)
{
	if (!begin(cfg))
		return -EINVAL;
	cfg->vm.timeout_ms = ms;
	return 0;
}

int vmproc_config_set_console(vmproc_config *cfg, vmproc_output_fn fn, void *userdata)
{
	if (!begin(cfg))
		return -EINVAL;
	cfg->vm.console_fn = fn;
	cfg->vm.console_userdata = userdata;
	return 0;
}

int vmproc_config_set_kernel_log(vmproc_config *cfg, int enable)
{
	if (!begin(cfg))
		return -EINVAL;
	cfg->vm.kernel_log = enable != 0;
	return 0;
}

int vmproc_config_set_profile(vmproc_config *cfg, int enable)
{
	if (!begin(cfg))
		return -EINVAL;
	cfg->vm.profile = enable != 0;
	return 0;
}
