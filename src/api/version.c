#include "vmproc.h"

const char *vmproc_version(void)
{
	return VMPROC_VERSION_STRING;
}
