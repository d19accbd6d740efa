/* The public vmproc_config: the VMM's configuration (vmm/config.h) and
 * the message of the last setter that failed. */
#ifndef VMP_API_CONFIG_H
#define VMP_API_CONFIG_H

#include "util/error.h"
#include "vmm/config.h"
#include "vmproc.h"

struct vmproc_config {
	struct vm_config vm;
	struct vmp_error err;
};

#endif
