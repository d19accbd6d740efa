/* libFuzzer target for the snapshot file parser (snapshot_read,
 * src/snapshot/snapshot.c) and the restore validation of the device state
 * a snapshot carries that runs without KVM: the virtio-mmio transports
 * (virtio_mmio_restore, virtqueue setup) and the command channel
 * (virtio_ports_restore), over the snapshot's own guest memory, as a
 * clone would restore them.
 *
 * Each input is a snapshot file, written to a private temporary
 * directory (on /dev/shm when there is one) and read with a fixed secret.
 * The target is built with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, so
 * snapshot_read computes the MACs but takes any value (a fuzzer cannot
 * make one): the inputs reach the parser behind the MAC check. The
 * library itself refuses to build that way (snapshot.c).
 *
 * Invariants (a violation abort()s):
 *   - snapshot_read fails with -EBADMSG or -ESTALE (for these inputs) and
 *     a message and *out NULL, or succeeds with counts and sizes within
 *     the limits of snapshot.h, a memory size the file holds, and vCPU
 *     states x86_vcpu_state_check accepts;
 *   - the memory of a snapshot read is a memfd of mem_size bytes, sealed
 *     against writes, shrinking and growing, that holds exactly the
 *     file's memory bytes (the bytes verified are the bytes used);
 *   - a restore either fails with a message or leaves every ready queue
 *     with a power-of-two size within the device's maximum and rings
 *     inside guest memory;
 *   - no file descriptor is leaked.
 *
 * `fuzz_snapshot --write-seeds DIR` writes the seed corpus: snapshots
 * made by snapshot_write from this build's own structures (so their sizes
 * match), with a channel device in a plausible driver state. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include "mem/guest_mem.h"
#include "snapshot/snapshot.h"
#include "util/error.h"
#include "virtio/mmio.h"
#include "virtio/ports.h"
#include "vmproc_abi.h"
#include "x86/kvm_state.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VIRTIO_ID_CONSOLE 3
#define PAGE              SNAPSHOT_PAGE

static const uint8_t k_secret[SNAPSHOT_SECRET_LEN] = "the fuzzer's secret, 32 bytes..";
static char g_dir[PATH_MAX], g_path[PATH_MAX + 8];
static int g_irqfd = -1;
static bool g_trace; /* FUZZ_SNAPSHOT_TRACE=1: say what each step returned */

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "fuzz_snapshot: invariant violated: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static unsigned fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

/* --- restore, as a clone does it ---------------------------------------- */

static void no_read_config(void *dev, uint32_t off, void *data, uint32_t len)
{
	(void)dev, (void)off;
	memset(data, 0, len);
}

static int no_notify(void *dev, struct virtio_mmio *t, unsigned q, struct vmp_error *err)
{
	(void)dev, (void)t, (void)q, (void)err;
	return 0;
}

static void no_reset(void *dev)
{
	(void)dev;
}

static void discard(void *userdata, unsigned port, const uint8_t *data, size_t len)
{
	(void)userdata, (void)port, (void)data, (void)len;
}

static void no_event(void *userdata)
{
	(void)userdata;
}

static const struct virtio_ports_backend k_backend = {.data = discard, .event = no_event};

static void check_queues(const struct virtio_mmio *t, const struct guest_mem *mem)
{
	for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		const struct virtq *q = &t->vq[i];
		if (!q->ready)
			continue;
		if (i >= t->ops->num_queues || !q->size || q->size > t->ops->queue_max ||
		    (q->size & (q->size - 1)))
			fail("queue %u ready with size %u", i, q->size);
		if (!q->desc || q->desc != guest_mem_ptr(mem, q->desc_gpa, 16ull * q->size) ||
		    q->avail != guest_mem_ptr(mem, q->avail_gpa, 6 + 2ull * q->size) ||
		    q->used != guest_mem_ptr(mem, q->used_gpa, 6 + 8ull * q->size))
			fail("queue %u rings are not inside guest memory", i);
	}
}

static void check_failure(int rc, const struct vmp_error *err, const char *what)
{
	if (g_trace)
		fprintf(stderr, "fuzz_snapshot: %s: %d %s\n", what, rc, err->msg);
	if (rc > 0 || (rc < 0 && !err->msg[0]))
		fail("%s returned %d with message '%s'", what, rc, err->msg);
}

/* Any device but the channel: a transport whose device has the saved id
 * and every queue, so that only the values saved decide. */
static void restore_device(const struct virtio_mmio_state *s, const struct guest_mem *mem)
{
	const struct virtio_device_ops ops = {
	    .name = "fuzzed-device",
	    .device_id = s->device_id,
	    .features = s->driver_features, /* the feature check is the channel's */
	    .num_queues = VIRTIO_MMIO_MAX_QUEUES,
	    .queue_max = VIRTQ_MAX_SIZE,
	    .config_size = 0,
	    .read_config = no_read_config,
	    .notify = no_notify,
	    .reset = no_reset,
	};
	struct virtio_mmio t;
	struct vmp_error err = {0};
	if (virtio_mmio_init(&t, 0xd0000000ull, 5, g_irqfd, &ops, NULL, mem))
		fail("virtio_mmio_init");
	int rc = virtio_mmio_restore(&t, s, &err);
	check_failure(rc, &err, "virtio_mmio_restore");
	if (!rc)
		check_queues(&t, mem);
	virtio_mmio_destroy(&t);
}

/* The command channel: its transport from the first console state, then
 * the ports' own state. */
static void restore_channel(const struct snapshot *s, const struct virtio_mmio_state *ms,
                            const struct guest_mem *mem)
{
	static const char *const names[] = VMPROC_ABI_PORT_NAMES;
	const bool open[VMPROC_ABI_CHANNEL_PORTS] = {true, false, true, true};
	struct virtio_ports *p = NULL;
	if (virtio_ports_new(&p, VMPROC_ABI_CHANNEL_PORTS, names, open, &k_backend, NULL))
		fail("virtio_ports_new");
	struct virtio_mmio t;
	if (virtio_mmio_init(&t, 0xd0000000ull, 6, g_irqfd, virtio_ports_ops(p), p, mem))
		fail("virtio_mmio_init (channel)");
	virtio_ports_attach(p, &t);
	struct vmp_error err = {0};
	int rc = virtio_mmio_restore(&t, ms, &err);
	check_failure(rc, &err, "virtio_mmio_restore (channel)");
	if (!rc) {
		check_queues(&t, mem);
		if (s->has_channel) {
			rc = virtio_ports_restore(p, &s->channel, &err);
			check_failure(rc, &err, "virtio_ports_restore");
		}
	}
	virtio_ports_detach(p);
	virtio_mmio_destroy(&t);
	virtio_ports_free(p);
}

/* --- the file ------------------------------------------------------------- */

static void check_snapshot(const struct snapshot *s, const uint8_t *data, size_t size)
{
	const struct snapshot_file_header *h = (const void *)data; /* size >= sizeof(*h) */
	if (s->nvcpus == 0 || s->nvcpus > SNAPSHOT_MAX_VCPUS || s->ndev > SNAPSHOT_MAX_DEVICES)
		fail("counts %u vCPUs, %u devices", s->nvcpus, s->ndev);
	if (!s->mem_size || s->mem_size % PAGE || h->mem_off > size ||
	    s->mem_size > size - h->mem_off)
		fail("memory of %llu bytes at %llu in a file of %zu",
		     (unsigned long long)s->mem_size, (unsigned long long)h->mem_off, size);
	for (uint32_t i = 0; i < s->nvcpus; i++) {
		struct vmp_error err = {0};
		if (x86_vcpu_state_check(&s->vcpu[i], &err))
			fail("vCPU %u state accepted: %s", i, err.msg);
	}
	struct stat st;
	int seals = fcntl(s->mem_fd, F_GET_SEALS);
	if (fstat(s->mem_fd, &st) < 0 || (uint64_t)st.st_size != s->mem_size || seals < 0 ||
	    (seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)) !=
	        (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW))
		fail("memory fd: size %lld, seals %#x", (long long)st.st_size, seals);
	uint8_t page[PAGE];
	for (uint64_t off = 0; off < s->mem_size; off += PAGE) {
		if (pread(s->mem_fd, page, PAGE, (off_t)(s->mem_off + off)) != PAGE ||
		    memcmp(page, data + h->mem_off + off, PAGE))
			fail("memory page %llu is not the file's",
			     (unsigned long long)(off / PAGE));
	}
}

static void restore_all(const struct snapshot *s)
{
	if (!s->ndev)
		return;
	void *m = mmap(NULL, s->mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, s->mem_fd,
	               (off_t)s->mem_off);
	if (m == MAP_FAILED)
		fail("cannot map the snapshot's memory");
	struct guest_mem mem;
	guest_mem_layout(&mem, m, s->mem_size);
	bool channel = false;
	for (uint32_t i = 0; i < s->ndev; i++) {
		if (s->dev[i].device_id == VIRTIO_ID_CONSOLE && !channel) {
			restore_channel(s, &s->dev[i], &mem);
			channel = true;
		} else {
			restore_device(&s->dev[i], &mem);
		}
	}
	munmap(m, s->mem_size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned fds = fd_count();
	int fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		fail("cannot write %s", g_path);
	close(fd);
	struct snapshot *s = (struct snapshot *)1;
	struct vmp_error err = {0};
	int rc = snapshot_read(g_path, NULL, k_secret, &s, &err);
	if (g_trace)
		fprintf(stderr, "fuzz_snapshot: snapshot_read: %d %s\n", rc, err.msg);
	if (rc) {
		if ((rc != -EBADMSG && rc != -ESTALE) || s || !err.msg[0] || err.code != rc)
			fail("snapshot_read: %d, out %p, '%s'", rc, (void *)s, err.msg);
	} else {
		if (!s || size < sizeof(struct snapshot_file_header))
			fail("snapshot_read accepted %zu bytes", size);
		check_snapshot(s, data, size);
		restore_all(s);
		snapshot_unref(s);
	}
	if (fd_count() != fds)
		fail("%u file descriptors open, %u before", fd_count(), fds);
	return 0;
}

/* --- seeds ---------------------------------------------------------------- */

/* A snapshot of mem_pages pages with nvcpus vCPUs and ndev devices, the
 * first a command channel whose queues (size 8) lie in page 1 onwards. */
static struct snapshot *seed_snapshot(uint32_t nvcpus, uint32_t ndev, uint32_t mem_pages)
{
	struct snapshot *s = snapshot_new(nvcpus);
	if (!s)
		return NULL;
	s->ndev = ndev;
	s->has_channel = ndev > 0;
	s->mem_size = (uint64_t)mem_pages * PAGE;
	s->mem_fd = memfd_create("seed", MFD_CLOEXEC);
	if (s->mem_fd < 0 || ftruncate(s->mem_fd, (off_t)s->mem_size) < 0) {
		snapshot_unref(s);
		return NULL;
	}
	uint8_t page[PAGE];
	for (unsigned i = 0; i < PAGE; i++)
		page[i] = (uint8_t)(i * 7 + 1);
	if (pwrite(s->mem_fd, page, PAGE, 0) != PAGE) {
		snapshot_unref(s);
		return NULL;
	}
	for (uint32_t i = 0; i < nvcpus; i++) {
		s->vcpu[i].regs.rip = 0xffffffff81000000ull + i;
		s->vcpu[i].nmsrs = 2;
		s->vcpu[i].msrs[0].index = 0xc0000080;
		s->vcpu[i].xcrs.nr_xcrs = 1;
	}
	for (uint32_t d = 0; d < ndev; d++) {
		struct virtio_mmio_state *m = &s->dev[d];
		m->device_id = d == 0 ? VIRTIO_ID_CONSOLE : 2 + d;
		m->status = 0xf;
		m->driver_features = VIRTIO_F_VERSION_1;
		unsigned nq = d == 0 ? 2 + 2 * VMPROC_ABI_CHANNEL_PORTS : 1;
		for (unsigned q = 0; q < nq; q++) {
			uint64_t base = PAGE * (1 + (uint64_t)q % (mem_pages - 1));
			m->vq[q] = (struct virtio_mmio_queue_state){.desc_gpa = base,
			                                            .avail_gpa = base + 0x400,
			                                            .used_gpa = base + 0x800,
			                                            .size = 8,
			                                            .ready = 1};
		}
	}
	s->channel.nports = VMPROC_ABI_CHANNEL_PORTS;
	s->channel.device_ready = 1;
	for (unsigned i = 0; i < VMPROC_ABI_CHANNEL_PORTS; i++)
		s->channel.port[i].ready = s->channel.port[i].guest_open = 1;
	s->channel.npending = 1;
	s->channel.pending[0].id = 1;
	s->channel.pending[0].event = 6;
	s->channel.pending[0].value = 1;
	return s;
}

static int write_seeds(const char *dir)
{
	static const uint32_t shapes[][3] = {{1, 0, 1}, {1, 1, 4}, {2, 3, 8}, {1, 2, 16}};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct snapshot *s = seed_snapshot(shapes[i][0], shapes[i][1], shapes[i][2]);
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/snapshot-%ucpu-%udev-%upages", dir, shapes[i][0],
		         shapes[i][1], shapes[i][2]);
		struct vmp_error err = {0};
		if (!s || snapshot_write(s, path, k_secret, &err)) {
			fprintf(stderr, "fuzz_snapshot: cannot write %s: %s\n", path, err.msg);
			snapshot_unref(s);
			return 1;
		}
		snapshot_unref(s);
	}
	return 0;
}

static void remove_dir(void)
{
	unlink(g_path);
	rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (*argc == 3 && !strcmp((*argv)[1], "--write-seeds"))
		exit(write_seeds((*argv)[2]));
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(g_dir, sizeof(g_dir), "%s/vmproc-fuzz-XXXXXX", base);
	if (!mkdtemp(g_dir))
		fail("mkdtemp %s: %s", g_dir, strerror(errno));
	/* tests/fuzz/run.sh removes it after a crash (atexit does not run). */
	fprintf(stderr, "fuzz_snapshot: host tree in %s\n", g_dir);
	snprintf(g_path, sizeof(g_path), "%s/snap", g_dir);
	atexit(remove_dir);
	g_trace = getenv("FUZZ_SNAPSHOT_TRACE") != NULL;
	g_irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g_irqfd < 0)
		fail("eventfd");
	return 0;
}
