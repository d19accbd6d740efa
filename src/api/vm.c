/* vmproc_vm_*: the public VM handle over the VMM's struct vm
 * (vmm/vm.h), which does all the work. */
#include "api/vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/config.h"

int vmproc_vm_new(vmproc_vm **out, const vmproc_config *cfg)
{
	if (!out || !cfg)
		return -EINVAL;
	struct vmproc_vm *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	int rc = vm_new(&h->vm, &cfg->vm);
	if (rc) {
		free(h);
		return rc;
	}
	*out = h;
	return 0;
}

int vmproc_vm_start(vmproc_vm *vm)
{
	return vm ? vm_start(vm->vm) : -EINVAL;
}

int vmproc_vm_wait(vmproc_vm *vm, int *exit_status)
{
	return vm ? vm_wait(vm->vm, exit_status) : -EINVAL;
}

int vmproc_vm_try_wait(vmproc_vm *vm, int *exit_status)
{
	return vm ? vm_try_wait(vm->vm, exit_status) : -EINVAL;
}

int vmproc_vm_fd(const vmproc_vm *vm)
{
	return vm ? vm_ended_fd(vm->vm) : -EINVAL;
}

int vmproc_vm_stop(vmproc_vm *vm)
{
	return vm ? vm_stop(vm->vm) : -EINVAL;
}

vmproc_failure vmproc_vm_failure(const vmproc_vm *vm)
{
	return vm ? vm_failure(vm->vm) : VMPROC_FAILURE_NONE;
}

const char *vmproc_vm_error(const vmproc_vm *vm)
{
	return vm ? vm_error(vm->vm) : "";
}

int vmproc_vm_format_trace(const vmproc_vm *vm, char *buf, size_t len)
{
	return vm ? vm_format_trace(vm->vm, buf, len) : -EINVAL;
}

double vmproc_vm_ms_to_ready(const vmproc_vm *vm)
{
	return vm ? vm_ms_to_ready(vm->vm) : -1;
}

double vmproc_vm_ms_to_exit(const vmproc_vm *vm)
{
	return vm ? vm_ms_to_exit(vm->vm) : -1;
}

void vmproc_vm_free(vmproc_vm *vm)
{
	if (!vm || vm->borrowed)
		return;
	vm_free(vm->vm);
	free(vm);
}

const char *vmproc_failure_name(vmproc_failure f)
{
	switch (f) {
	case VMPROC_FAILURE_NONE: return "none";
	case VMPROC_FAILURE_SETUP: return "setup";
	case VMPROC_FAILURE_GUEST_PANIC: return "guest-panic";
	case VMPROC_FAILURE_GUEST_RESET: return "guest-reset";
	case VMPROC_FAILURE_TRIPLE_FAULT: return "triple-fault";
	case VMPROC_FAILURE_EMULATION: return "emulation-failure";
	case VMPROC_FAILURE_GUEST_ERROR: return "guest-error";
	case VMPROC_FAILURE_TIMEOUT: return "timeout";
	case VMPROC_FAILURE_STOPPED: return "stopped";
	case VMPROC_FAILURE_VMM: return "vmm-error";
	}
	return "unknown";
}

int vmproc_vm_run(const vmproc_config *cfg, int *exit_status, char *errbuf, size_t errbuf_len)
{
	vmproc_vm *vm;
	int rc = vmproc_vm_new(&vm, cfg);
	if (rc) {
		if (errbuf && errbuf_len)
			snprintf(errbuf, errbuf_len, "cannot create VM: error %d", -rc);
		return rc;
	}
	rc = vmproc_vm_start(vm);
	if (!rc)
		rc = vmproc_vm_wait(vm, exit_status);
	if (rc && errbuf && errbuf_len)
		snprintf(errbuf, errbuf_len, "%s", vmproc_vm_error(vm));
	vmproc_vm_free(vm);
	return rc;
}
