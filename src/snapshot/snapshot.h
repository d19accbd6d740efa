/* A VM snapshot: everything needed to start a new VM exactly where a
 * booted one stood when its init became ready for a command. Guest RAM
 * stays in a memfd (the template VM's own for a template made in this
 * process; for one loaded from disk, a sealed copy of the file's memory,
 * made while it is verified) that every clone maps copy-on-write; the
 * rest (vCPUs, interrupt controllers, clocks, devices) is a few KiB
 * copied into each clone.
 *
 * A snapshot is immutable once made and reference-counted, so a template
 * can be freed while clones made from it still run. Functions here are
 * thread-safe on distinct snapshots; ref/unref on any.
 *
 * On disk (all integers little endian; x86-64 hosts only):
 *   header (struct snapshot_file_header);
 *   state at state_off: the VM state, nvcpus vCPU states, ndev transport
 *     states, the channel state; each a fixed-size structure whose size
 *     the header records;
 *   guest RAM at mem_off (page aligned), mem_size bytes, sparse: pages
 *     of zeros are holes.
 * Authenticated with HMAC-SHA256 (libcrypto) under the user's secret
 * (snapshot/cache.h: a file of random bytes, 0600, in the cache): data_mac
 * covers the state, then every non-zero page after its index (so it does
 * not depend on how the file system stores holes); header_mac covers the
 * header (data_mac included). Without the secret a file cannot be forged,
 * only damaged; the non-cryptographic snapshot_hash only names things.
 * Anything that does not match (magic, MACs, format, vmproc version,
 * sizes, the caller's key) is rejected, never trusted. */
#ifndef VMP_SNAPSHOT_SNAPSHOT_H
#define VMP_SNAPSHOT_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"
#include "virtio/mmio.h"
#include "virtio/ports.h"
#include "x86/kvm_state.h"

#define SNAPSHOT_MAX_DEVICES 10
#define SNAPSHOT_MAX_VCPUS   64
#define SNAPSHOT_KEY_LEN     32
#define SNAPSHOT_PAGE        4096u
#define SNAPSHOT_SECRET_LEN  32 /* the HMAC key */
#define SNAPSHOT_MAC_LEN     32 /* HMAC-SHA256 */

struct snapshot {
	atomic_int refs;
	uint8_t key[SNAPSHOT_KEY_LEN]; /* what determines it (the caller's hash) */
	uint32_t nvcpus, ndev;
	bool has_channel;
	uint64_t mem_size;
	int mem_fd; /* owned */
	uint64_t mem_off;
	struct x86_vm_state vm;
	struct x86_vcpu_state *vcpu; /* nvcpus */
	struct virtio_mmio_state dev[SNAPSHOT_MAX_DEVICES];
	struct virtio_ports_state channel;
};

/* The file header (the format is described above). In this header so
 * that tests can craft files; only snapshot.c writes or reads it. */
struct snapshot_file_header {
	char magic[8];
	uint32_t format_version;
	uint32_t header_size;
	char vmproc_version[16];
	uint8_t key[SNAPSHOT_KEY_LEN];
	uint32_t nvcpus, ndev;
	uint32_t has_channel;
	/* Structure sizes: another build with other KVM headers is stale. */
	uint32_t vm_state_size, vcpu_state_size, mmio_state_size, ports_state_size;
	uint32_t pad;
	uint64_t mem_size;
	uint64_t state_off, state_len;
	uint64_t mem_off;
	uint8_t data_mac[SNAPSHOT_MAC_LEN];   /* of the state and memory */
	uint8_t header_mac[SNAPSHOT_MAC_LEN]; /* of this header with header_mac 0 */
};

/* An empty snapshot for nvcpus vCPUs with one reference; mem_fd -1. */
struct snapshot *snapshot_new(uint32_t nvcpus);
void snapshot_ref(struct snapshot *s);
/* Drops a reference; the last one frees it and closes mem_fd. NULL ok. */
void snapshot_unref(struct snapshot *s);

/* Writes the snapshot to path atomically (a temporary file in the same
 * directory, fsynced, then renamed over path), authenticated with secret. */
int snapshot_write(const struct snapshot *s, const char *path,
                   const uint8_t secret[SNAPSHOT_SECRET_LEN], struct vmp_error *err);

/* Reads and checks a snapshot file. key: the key it must have (NULL: any);
 * secret: the one it was written with. Returns -ENOENT if there is no
 * file, -ESTALE if it is a valid file for something else (another key or
 * vmproc version), -EBADMSG if it is corrupt, truncated, not a snapshot
 * or does not authenticate under secret, -ELOOP if path is a symbolic
 * link (never followed), -EPERM if the file is not the user's own or is
 * writable by group or others (snapshot/cache.h); the message says what.
 * The snapshot's memory is a sealed memfd (no write, shrink or grow)
 * copied from the file as it was verified: nothing done to the file
 * later reaches it. */
int snapshot_read(const char *path, const uint8_t key[SNAPSHOT_KEY_LEN],
                  const uint8_t secret[SNAPSHOT_SECRET_LEN], struct snapshot **out,
                  struct vmp_error *err);

/* A 64-bit hash of len bytes, seeded. Not cryptographic: it names
 * configurations (the key), it authenticates nothing. */
uint64_t snapshot_hash(uint64_t seed, const void *data, uint64_t len);

/* Where the format stands; a file of another version is stale. */
#define SNAPSHOT_FORMAT_VERSION 3

#endif
