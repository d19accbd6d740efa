/* A virtual machine, as the floors above the VMM see it: create it from
 * a configuration, attach the command channel and host files, start it,
 * wait for it, stop it, free it. Opaque; src/api/vm.c gives it to the
 * library's users as vmproc_vm. */
#ifndef VMP_VMM_VM_H
#define VMP_VMM_VM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "vmm/config.h"
#include "vmproc.h"

struct vm;
struct virtio_ports;
struct fuse_server;
struct snapshot;

/* A VM that will boot (or restore) cfg; cfg is copied. -errno. */
int vm_new(struct vm **out, const struct vm_config *cfg);
/* Sets it up and starts its vCPU threads; on failure the VM has ended
 * and vm_error says why. */
int vm_start(struct vm *vm);
/* 0 with the guest's exit status, or the VM's failure (-errno). */
int vm_wait(struct vm *vm, int *exit_status);
/* As vm_wait; -EAGAIN while running, -ECHILD before vm_start. */
int vm_try_wait(struct vm *vm, int *exit_status);
/* An eventfd readable once the VM has ended. */
int vm_ended_fd(const struct vm *vm);
/* Asks the VM to stop (it ends with VMPROC_FAILURE_STOPPED). Any thread. */
int vm_stop(struct vm *vm);
vmproc_failure vm_failure(const struct vm *vm);
const char *vm_error(const struct vm *vm);
int vm_format_trace(const struct vm *vm, char *buf, size_t len);
double vm_ms_to_ready(const struct vm *vm);
double vm_ms_to_exit(const struct vm *vm);
/* Stops a running VM, waits for its threads, frees everything. */
void vm_free(struct vm *vm);

/* Attaches the command channel (vmproc_abi.h) before vm_start. The
 * device stays the caller's; the VM detaches it before its memory goes. */
void vm_set_channel(struct vm *vm, struct virtio_ports *channel);
/* The FUSE server behind the virtio-fs device that every VM with a
 * command channel has (vmproc_abi.h). NULL: the device is there (the
 * guest ABI and the snapshot shape do not depend on the command) but
 * answers nothing; a template VM's guest never mounts it. The server
 * stays the caller's and must outlive the VM. Before vm_start. */
void vm_set_fs(struct vm *vm, struct fuse_server *server);
/* For device backends blocking on the vCPU thread (a slow reader of the
 * program's output): whether the VM is being stopped or timed out, so
 * the wait must end. vCPU thread only. */
bool vm_io_should_abort(struct vm *vm);
/* The signal mask for such waits (ppoll): the calling vCPU thread's,
 * with the kick signal unblocked. */
void vm_io_sigmask(sigset_t *out);
/* Ends the VM because the guest broke a protocol (vCPU thread only). */
void vm_guest_error(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Before vm_start: boot, and end by taking a snapshot at the
 * moment the guest init is ready (vm_take_snapshot). */
void vm_set_capture(struct vm *vm);
/* After a capturing VM ended with 0: the snapshot (the caller owns it),
 * or NULL with the VM's error. */
struct snapshot *vm_take_snapshot(struct vm *vm);
/* Before vm_start: start from snapshot s (a reference is taken)
 * instead of booting. The VM's configuration must be the snapshot's; the
 * caller checks the key, the VM checks the shape (vCPUs, memory,
 * devices). */
void vm_set_restore(struct vm *vm, struct snapshot *s);

#endif
