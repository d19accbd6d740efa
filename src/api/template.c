/* Templates: snapshots of a booted VM, kept in memory, in files and in
 * the user's snapshot cache; spawning from them is in child.c. */
#include "api/template.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/command.h"
#include "snapshot/cache.h"
#include "virtio/ports.h"
#include "vmm/host.h"
#include "vmm/vm.h"
#include "vmproc_abi.h"

struct vmproc_template {
	struct vm_config cfg;
	pthread_mutex_t lock; /* snap */
	struct snapshot *snap;
	struct vmp_error err;
};

/* --- the key ------------------------------------------------------------ */

static void describe_file(FILE *f, const char *what, const char *path)
{
	struct stat st;
	if (!path) {
		fprintf(f, "%s none\n", what);
	} else if (stat(path, &st) < 0) {
		fprintf(f, "%s %s missing\n", what, path);
	} else {
		fprintf(f, "%s %s %llu %llu %lld %lld.%09ld %lld.%09ld\n", what, path,
		        (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		        (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
		        (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	}
}

int template_key(const struct vm_config *cfg, uint8_t key[SNAPSHOT_KEY_LEN], struct vmp_error *err)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return vmp_fail(err, -ENOMEM, "out of memory");
	struct vm_files files;
	int rc = vm_config_resolve_files(cfg, &files, err);
	if (!rc) {
		fprintf(f, "vmproc %s snapshot format %d\n", VMPROC_VERSION_STRING,
		        SNAPSHOT_FORMAT_VERSION);
		describe_file(f, "kernel", files.kernel);
		describe_file(f, "initrd", files.initrd);
		describe_file(f, "system", files.system);
		for (unsigned i = 0; i < cfg->ndisks; i++) {
			fprintf(f, "disk %u %s\n", i, cfg->disks[i].read_only ? "ro" : "rw");
			describe_file(f, "disk", cfg->disks[i].path);
		}
		fprintf(f, "memory %u cpus %u\ncmdline %s\n", cfg->memory_mib,
		        cfg->cpus ? cfg->cpus : 1, cfg->cmdline_extra ? cfg->cmdline_extra : "");
		rc = vm_host_describe(f, cfg->cpus ? cfg->cpus : 1, err);
	}
	vm_files_release(&files);
	if (fclose(f) != 0 && !rc)
		rc = vmp_fail(err, -ENOMEM, "out of memory");
	if (!rc)
		for (int i = 0; i < SNAPSHOT_KEY_LEN / 8; i++) {
			uint64_t h = snapshot_hash(100 + (uint64_t)i, text, len);
			memcpy(key + 8 * i, &h, 8);
		}
	free(text);
	return rc;
}

bool template_config_allows(const struct vm_config *cfg)
{
	if (cfg->kernel_log)
		return false;
	for (unsigned i = 0; i < cfg->ndisks; i++)
		if (!cfg->disks[i].read_only)
			return false;
	return true;
}

bool template_config_matches(const vmproc_template *t, const struct vm_config *cfg)
{
	return vm_config_same_machine(&t->cfg, cfg);
}

const struct vm_config *template_config(const vmproc_template *t)
{
	return &t->cfg;
}

/* --- building ----------------------------------------------------------- */

static void discard_data(void *userdata, unsigned port, const uint8_t *data, size_t len)
{
	(void)userdata, (void)port, (void)data, (void)len;
}

static void no_event(void *userdata)
{
	(void)userdata;
}

static const struct virtio_ports_backend template_backend = {
    .data = discard_data,
    .event = no_event,
};

int template_boot(const struct vm_config *cfg, struct snapshot **out, struct vmp_error *err)
{
	*out = NULL;
	/* The same command channel a child has, so clones can take it over:
	 * every port open on the host side (a clone tells the guest where
	 * its own differ). */
	static const char *const names[] = VMPROC_ABI_PORT_NAMES;
	const bool open[VMPROC_ABI_CHANNEL_PORTS] = {true, true, true, true};
	struct virtio_ports *ports = NULL;
	struct vm *vm = NULL;
	int rc = virtio_ports_new(&ports, VMPROC_ABI_CHANNEL_PORTS, names, open, &template_backend,
	                          NULL);
	if (rc)
		return vmp_fail_errno(err, rc, "cannot create the command channel");
	/* The guest init reads these into its page cache before it is
	 * ready, so they are in the snapshot: every clone that runs the
	 * shell or the demo is spared reading them from the disk (slow
	 * where the guest kernel is emulated). Ahead of the caller's words,
	 * which may end in "--" and init arguments. */
	static const char prewarm[] = "vmproc_prewarm=/bin/sh,/usr/bin/catsay";
	struct vm_config boot;
	if ((rc = vm_config_copy(&boot, cfg))) {
		virtio_ports_free(ports);
		return vmp_fail(err, rc, "out of memory");
	}
	size_t n = sizeof(prewarm) + 1 + (cfg->cmdline_extra ? strlen(cfg->cmdline_extra) : 0);
	char *words = malloc(n);
	if (words)
		snprintf(words, n, "%s%s%s", prewarm, cfg->cmdline_extra ? " " : "",
		         cfg->cmdline_extra ? cfg->cmdline_extra : "");
	free(boot.cmdline_extra);
	boot.cmdline_extra = words;
	rc = words ? vm_new(&vm, &boot) : -ENOMEM;
	vm_config_release(&boot);
	if (rc) {
		virtio_ports_free(ports);
		return vmp_fail_errno(err, rc, "cannot create the VM");
	}
	vm_set_channel(vm, ports);
	vm_set_capture(vm);
	int status = 0;
	rc = vm_start(vm);
	if (!rc)
		rc = vm_wait(vm, &status);
	struct snapshot *s = rc ? NULL : vm_take_snapshot(vm);
	if (rc)
		vmp_fail(err, rc, "booting the template VM: %s", vm_error(vm));
	else if (!s)
		rc = vmp_fail(err, -EPROTO,
		              "the template VM powered off (status %d) before its init was ready",
		              status);
	vm_free(vm);
	virtio_ports_free(ports);
	*out = s;
	return rc;
}

/* --- the cache ---------------------------------------------------------- */

int vmproc_snapshot_cache_dir(char *buf, size_t len)
{
	const char *dir = getenv("VMPROC_CACHE_DIR");
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	int n;
	if (dir && *dir)
		n = snprintf(buf, len, "%s", dir);
	else if (xdg && *xdg == '/')
		n = snprintf(buf, len, "%s/vmproc/snapshots", xdg);
	else if (home && *home == '/')
		n = snprintf(buf, len, "%s/.cache/vmproc/snapshots", home);
	else
		return -ENOENT;
	return n < 0 ? -EINVAL : n;
}

static int cache_path(const uint8_t key[SNAPSHOT_KEY_LEN], char *buf, size_t len)
{
	char dir[PATH_MAX];
	int n = vmproc_snapshot_cache_dir(dir, sizeof(dir));
	if (n < 0)
		return n;
	if ((size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	char hex[33];
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	n = snprintf(buf, len, "%s/%s.snap", dir, hex);
	return n < 0 ? -EINVAL : n;
}

/* The user's snapshot cache directory, made if missing and checked, and
 * the secret in it that authenticates snapshot files (snapshot/cache.h). */
static int cache_open(char dir[PATH_MAX], uint8_t secret[SNAPSHOT_SECRET_LEN],
                      struct vmp_error *err)
{
	int n = vmproc_snapshot_cache_dir(dir, PATH_MAX);
	if (n < 0 || n >= PATH_MAX)
		return vmp_fail(err, n < 0 ? n : -ENAMETOOLONG,
		                "no snapshot cache directory (set VMPROC_CACHE_DIR)");
	int rc = snapshot_cache_dir(dir, err);
	return rc ? rc : snapshot_cache_secret(dir, secret, err);
}

/* What snapshot_read refuses that a build replaces: in a safe cache
 * directory, the file at path is the user's to rename over. */
static bool rebuilds(int rc)
{
	return rc == -ENOENT || rc == -ESTALE || rc == -EBADMSG || rc == -ELOOP || rc == -EPERM;
}

/* Builds of one snapshot are serialised across threads and processes
 * (snapshot_cache_lock): the first spawn of a configuration boots its
 * template, the others wait for the file instead of booting their own. */
static int load_or_build(const struct vm_config *cfg, const uint8_t key[SNAPSHOT_KEY_LEN],
                         struct snapshot **out, struct vmp_error *err)
{
	char path[PATH_MAX], dir[PATH_MAX];
	uint8_t secret[SNAPSHOT_SECRET_LEN];
	int n = cache_path(key, path, sizeof(path));
	if (n < 0 || (size_t)n >= sizeof(path))
		return vmp_fail(err, n < 0 ? n : -ENAMETOOLONG, "no snapshot cache directory");
	/* A directory someone else can write (or a key others can read) is
	 * not used at all: its files could have been planted. Nor is one
	 * whose key is damaged: every file in it would be rebuilt in vain. One that
	 * cannot be made only costs the next spawn a boot: this one goes on
	 * with the snapshot it builds. */
	struct vmp_error save_err = {0};
	int rc = cache_open(dir, secret, &save_err);
	if (rc == -EPERM || rc == -EBADMSG) /* unsafe, or a damaged key to delete */
		return vmp_fail(err, rc, "%s", save_err.msg);
	struct vmp_error load_err = {0};
	if (!rc && !(rc = snapshot_read(path, key, secret, out, &load_err))) {
		explicit_bzero(secret, sizeof(secret));
		return 0;
	}
	if (!save_err.code && !rebuilds(rc)) {
		explicit_bzero(secret, sizeof(secret));
		return vmp_fail(err, rc, "%s", load_err.msg);
	}
	struct vmp_error lock_err = {0};
	int lock = save_err.code ? -1 : snapshot_cache_lock(path, &lock_err);
	/* Someone else may have built it while we waited for the lock. */
	vmp_error_clear(&load_err);
	if (lock >= 0 && !snapshot_read(path, key, secret, out, &load_err)) {
		close(lock);
		explicit_bzero(secret, sizeof(secret));
		return 0;
	}
	/* Missing, stale or damaged: build it again (without the lock if
	 * it could not be taken: then perhaps twice). */
	rc = template_boot(cfg, out, err);
	if (!rc) {
		memcpy((*out)->key, key, SNAPSHOT_KEY_LEN);
		if (!save_err.code)
			snapshot_write(*out, path, secret, &save_err);
	}
	explicit_bzero(secret, sizeof(secret));
	if (lock >= 0)
		close(lock);
	if (rc)
		return rc;
	/* A cache that cannot be written costs the next spawn a boot; this
	 * spawn goes on with the snapshot it has. */
	return 0;
}

int template_from_cache(const struct vm_config *cfg, struct snapshot **out, struct vmp_error *err)
{
	uint8_t key[SNAPSHOT_KEY_LEN];
	int rc = template_key(cfg, key, err);
	return rc ? rc : load_or_build(cfg, key, out, err);
}

/* --- the public object -------------------------------------------------- */

int vmproc_template_new(vmproc_template **out, const vmproc_config *cfg)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	struct vm_config defaults;
	vm_config_init(&defaults);
	struct vmproc_template *t = calloc(1, sizeof(*t));
	int rc = t ? vm_config_copy(&t->cfg, cfg ? &cfg->vm : &defaults) : -ENOMEM;
	if (!rc && (rc = -pthread_mutex_init(&t->lock, NULL)))
		vm_config_release(&t->cfg);
	if (rc) {
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void vmproc_template_free(vmproc_template *t)
{
	if (!t)
		return;
	snapshot_unref(t->snap);
	pthread_mutex_destroy(&t->lock);
	vm_config_release(&t->cfg);
	free(t);
}

const char *vmproc_template_error(const vmproc_template *t)
{
	return t ? t->err.msg : "";
}

static void set_snapshot(vmproc_template *t, struct snapshot *s)
{
	pthread_mutex_lock(&t->lock);
	struct snapshot *old = t->snap;
	t->snap = s;
	pthread_mutex_unlock(&t->lock);
	snapshot_unref(old);
}

struct snapshot *template_snapshot(vmproc_template *t)
{
	pthread_mutex_lock(&t->lock);
	struct snapshot *s = t->snap;
	if (s)
		snapshot_ref(s);
	pthread_mutex_unlock(&t->lock);
	return s;
}

int vmproc_template_build(vmproc_template *t)
{
	if (!t)
		return -EINVAL;
	vmp_error_clear(&t->err);
	uint8_t key[SNAPSHOT_KEY_LEN];
	struct snapshot *s = NULL;
	int rc = template_key(&t->cfg, key, &t->err);
	if (!rc)
		rc = template_boot(&t->cfg, &s, &t->err);
	if (rc)
		return rc;
	memcpy(s->key, key, SNAPSHOT_KEY_LEN);
	set_snapshot(t, s);
	return 0;
}

int vmproc_template_save(vmproc_template *t, const char *path)
{
	if (!t || !path)
		return -EINVAL;
	vmp_error_clear(&t->err);
	struct snapshot *s = template_snapshot(t);
	if (!s)
		return vmp_fail(&t->err, -ENOENT, "the template holds no snapshot yet");
	char dir[PATH_MAX];
	uint8_t secret[SNAPSHOT_SECRET_LEN];
	int rc = cache_open(dir, secret, &t->err);
	if (!rc)
		rc = snapshot_write(s, path, secret, &t->err);
	explicit_bzero(secret, sizeof(secret));
	snapshot_unref(s);
	return rc;
}

int vmproc_template_load(vmproc_template *t, const char *path)
{
	if (!t || !path)
		return -EINVAL;
	vmp_error_clear(&t->err);
	uint8_t key[SNAPSHOT_KEY_LEN], secret[SNAPSHOT_SECRET_LEN];
	char dir[PATH_MAX];
	struct snapshot *s = NULL;
	int rc = template_key(&t->cfg, key, &t->err);
	if (!rc)
		rc = cache_open(dir, secret, &t->err);
	if (!rc)
		rc = snapshot_read(path, key, secret, &s, &t->err);
	explicit_bzero(secret, sizeof(secret));
	if (!rc)
		set_snapshot(t, s);
	return rc;
}

int vmproc_template_cached(vmproc_template *t)
{
	if (!t)
		return -EINVAL;
	vmp_error_clear(&t->err);
	struct snapshot *s = NULL;
	int rc = template_from_cache(&t->cfg, &s, &t->err);
	if (!rc)
		set_snapshot(t, s);
	return rc;
}

int vmproc_template_cache_path(const vmproc_template *t, char *buf, size_t len)
{
	if (!t)
		return -EINVAL;
	uint8_t key[SNAPSHOT_KEY_LEN];
	struct vmp_error err = {0};
	int rc = template_key(&t->cfg, key, &err);
	return rc ? rc : cache_path(key, buf, len);
}

int vmproc_cmd_snapshot(vmproc_cmd *cmd, vmproc_snapshot_mode mode)
{
	if (!cmd)
		return -EINVAL;
	if (mode != VMPROC_SNAPSHOT_AUTO && mode != VMPROC_SNAPSHOT_NEVER &&
	    mode != VMPROC_SNAPSHOT_ALWAYS)
		return vmp_fail(&cmd->err, -EINVAL, "unknown snapshot mode %d", (int)mode);
	cmd->snapshot = mode;
	return 0;
}
