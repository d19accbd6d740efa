/* vmm/config: the VM's configuration, its validating setters and the one
 * resolver of default guest files (used by the VM and the snapshot key). */
#include <errno.h>
#include <stdlib.h>

#include "harness.h"
#include "vmm/config.h"

static void defaults(void)
{
	struct vm_config c;
	vm_config_init(&c);
	CHECK(c.memory_mib == VM_DEFAULT_MEMORY_MIB);
	CHECK(c.cpus == 1);
	CHECK(!c.kernel_path && !c.initrd_path && !c.system_path && c.ndisks == 0);
	vm_config_release(&c);
}

static void setters_refuse_what_cannot_run(void)
{
	struct vm_config c;
	vm_config_init(&c);
	struct vmp_error err = {0};
	CHECK(vm_config_set_cpus(&c, VM_MAX_CPUS + 1, &err) == -EINVAL);
	CHECK(strstr(err.msg, "vCPUs must be 1..64"));
	CHECK(c.cpus == 1);
	vmp_error_clear(&err);
	CHECK(vm_config_set_cpus(&c, 0, &err) == -EINVAL);
	CHECK(vm_config_set_cpus(&c, 4, &err) == 0 && c.cpus == 4);
	vmp_error_clear(&err);
	CHECK(vm_config_set_memory_mib(&c, VM_MIN_MEMORY_MIB - 1, &err) == -EINVAL);
	CHECK(vm_config_set_memory_mib(&c, VM_MAX_MEMORY_MIB + 1, &err) == -EINVAL);
	CHECK(c.memory_mib == VM_DEFAULT_MEMORY_MIB);
	vmp_error_clear(&err);
	CHECK(vm_config_add_disk(&c, "", true, &err) == -EINVAL);
	for (int i = 0; i < VM_MAX_DISKS; i++)
		CHECK(vm_config_add_disk(&c, "/d", i % 2, &err) == 0);
	CHECK(vm_config_add_disk(&c, "/d", true, &err) == -ENOSPC);
	CHECK(vm_config_set_path(&c.kernel_path, "", "kernel path", &err) == -EINVAL);
	CHECK(!c.kernel_path);
	vm_config_release(&c);
}

static void copy_is_deep_and_same_machine(void)
{
	struct vm_config a, b;
	vm_config_init(&a);
	struct vmp_error err = {0};
	CHECK(vm_config_set_path(&a.kernel_path, "/k", "kernel", &err) == 0);
	CHECK(vm_config_add_disk(&a, "/disk", true, &err) == 0);
	a.timeout_ms = 5;
	CHECK(vm_config_copy(&b, &a) == 0);
	CHECK(b.kernel_path != a.kernel_path && !strcmp(b.kernel_path, "/k"));
	CHECK(b.disks[0].path != a.disks[0].path && !strcmp(b.disks[0].path, "/disk"));
	b.timeout_ms = 0; /* not part of the machine */
	CHECK(vm_config_same_machine(&a, &b));
	b.disks[0].read_only = false;
	CHECK(!vm_config_same_machine(&a, &b));
	b.disks[0].read_only = true;
	b.memory_mib = 256;
	CHECK(!vm_config_same_machine(&a, &b));
	vm_config_release(&a);
	vm_config_release(&b);
}

static void files_resolve_from_environment_then_datadir(void)
{
	struct vm_config c;
	vm_config_init(&c);
	struct vm_files f;
	struct vmp_error err = {0};
	setenv("VMPROC_KERNEL", "/env/vmlinux", 1);
	unsetenv("VMPROC_INITRD");
	unsetenv("VMPROC_SYSTEM");
	CHECK(vm_config_resolve_files(&c, &f, &err) == 0);
	CHECK(!strcmp(f.kernel, "/env/vmlinux"));
	CHECK(!strcmp(f.initrd, VMPROC_DATADIR "/initramfs.cpio"));
	CHECK(!strcmp(f.system, VMPROC_DATADIR "/system.erofs"));
	vm_files_release(&f);
	CHECK(!f.kernel && !f.initrd && !f.system);

	/* Explicit paths win; "" means no system image. */
	CHECK(vm_config_set_path(&c.kernel_path, "/mine", "kernel", &err) == 0);
	c.system_path = strdup("");
	CHECK(vm_config_resolve_files(&c, &f, &err) == 0);
	CHECK(!strcmp(f.kernel, "/mine"));
	CHECK(f.system == NULL);
	vm_files_release(&f);
	unsetenv("VMPROC_KERNEL");
	vm_config_release(&c);
}

TEST_LIST(T(defaults), T(setters_refuse_what_cannot_run), T(copy_is_deep_and_same_machine),
          T(files_resolve_from_environment_then_datadir))
