/* The public vmproc_vm: a handle on the VMM's struct vm. */
#ifndef VMP_API_VM_H
#define VMP_API_VM_H

#include <stdbool.h>

#include "vmm/vm.h"
#include "vmproc.h"

struct vmproc_vm {
	struct vm *vm;
	bool borrowed; /* a child's VM (vmproc_child_vm): not freed with the handle */
};

#endif
