/* Templates (vmproc_template) and the snapshot cache, as spawning uses
 * them (child.c). */
#ifndef VMP_API_TEMPLATE_H
#define VMP_API_TEMPLATE_H

#include <stdbool.h>

#include "api/config.h"
#include "snapshot/snapshot.h"
#include "util/error.h"
#include "vmm/config.h"
#include "vmproc.h"

/* Everything that determines a snapshot of a VM configured by cfg,
 * hashed into key. */
int template_key(const struct vm_config *cfg, uint8_t key[SNAPSHOT_KEY_LEN], struct vmp_error *err);

/* Whether cfg can be snapshotted safely: no writable disk (its contents
 * would not match the snapshot's view), no kernel log (it changes the boot). */
bool template_config_allows(const struct vm_config *cfg);

/* The snapshot of t, referenced (snapshot_unref it), or NULL. */
struct snapshot *template_snapshot(vmproc_template *t);

/* The snapshot for cfg from the user's cache, built and stored there if
 * needed. For vmproc_spawn. */
int template_from_cache(const struct vm_config *cfg, struct snapshot **out, struct vmp_error *err);

/* Builds a snapshot of a VM booted with cfg (the key set by the caller). */
int template_boot(const struct vm_config *cfg, struct snapshot **out, struct vmp_error *err);

/* Whether cfg describes the VM the template was made for (per-spawn
 * settings aside). */
bool template_config_matches(const vmproc_template *t, const struct vm_config *cfg);
const struct vm_config *template_config(const vmproc_template *t);

#endif
