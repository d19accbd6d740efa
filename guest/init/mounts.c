/* Host files: see mounts.h and vmproc_abi.h (ROOT, MOUNT). */
#include "mounts.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "report.h"
#include "vmproc_abi.h"

#define PATH_BYTES 4096

/* mkdir -p; 0 or an errno. */
static int make_dirs(const char *path)
{
	char buf[PATH_BYTES];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];

		buf[i] = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return errno;
		buf[i] = c;
	}
	struct stat st;

	if (stat(path, &st) < 0)
		return errno;
	return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

static bool join(char *buf, size_t cap, const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);

	if (la + lb + lc >= cap)
		return false;
	memcpy(buf, a, la);
	memcpy(buf + la, b, lb);
	memcpy(buf + la + lb, c, lc + 1);
	return true;
}

static int fail(const char *call, const char *arg, int err)
{
	init_report(call, arg, err);
	return err;
}

static int bind(const char *src, const char *dst, bool read_only, bool recursive)
{
	if (mount(src, dst, NULL, MS_BIND | (recursive ? MS_REC : 0), NULL) < 0)
		return fail("bind mount on", dst, errno);
	if (read_only &&
	    mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NODEV, NULL) < 0)
		return fail("remount read-only", dst, errno);
	return 0;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The guest's own /dev, /proc, /sys and fresh /tmp, /run inside the new
 * root, where it has those directories (an overlay can create them). */
static int populate_root(const char *root, bool can_create)
{
	static const char *const dirs[] = {"/dev", "/proc", "/sys", "/tmp", "/run"};
	char path[PATH_BYTES];

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (!join(path, sizeof(path), root, dirs[i], ""))
			return ENAMETOOLONG;
		if (!is_dir(path) && (!can_create || mkdir(path, 0755) < 0))
			continue;
		int err = 0;

		if (i == 0)
			err = bind("/dev", path, false, true);
		else if (i == 1 &&
		         mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			err = fail("mount proc on", path, errno);
		else if (i == 2)
			err = bind("/sys", path, false, false);
		else if (i >= 3 && mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV,
		                         i == 3 ? "mode=1777" : "mode=0755") < 0)
			err = fail("mount tmpfs on", path, errno);
		if (err != 0)
			return err;
	}
	return 0;
}

static int mount_root(const struct init_cmd *cmd)
{
	char src[PATH_BYTES];
	const char *root = VMPROC_ABI_FS_NEWROOT;
	int err = make_dirs(root);

	if (err != 0)
		return fail("mkdir", root, err);
	if (!join(src, sizeof(src), VMPROC_ABI_FS_MOUNT "/", cmd->root_entry, ""))
		return ENAMETOOLONG;
	if (cmd->root_flags & VMPROC_ROOT_F_OVERLAY) {
		const char *ovl = VMPROC_ABI_FS_OVERLAY;
		char opts[3 * PATH_BYTES];

		if ((err = make_dirs(ovl)) != 0)
			return fail("mkdir", ovl, err);
		if (mount("tmpfs", ovl, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
			return fail("mount tmpfs on", ovl, errno);
		if (mkdir(VMPROC_ABI_FS_OVERLAY "/upper", 0755) < 0 ||
		    mkdir(VMPROC_ABI_FS_OVERLAY "/work", 0755) < 0)
			return fail("mkdir", ovl, errno);
		if (!join(opts, sizeof(opts), "lowerdir=", src,
		          ",upperdir=" VMPROC_ABI_FS_OVERLAY "/upper,workdir=" VMPROC_ABI_FS_OVERLAY
		          "/work"))
			return ENAMETOOLONG;
		if (mount("overlay", root, "overlay", 0, opts) < 0)
			return fail("mount overlay on", root, errno);
	} else if ((err = bind(src, root, cmd->root_flags & VMPROC_ROOT_F_READONLY, false)) != 0) {
		return err;
	}
	return populate_root(root, (cmd->root_flags & VMPROC_ROOT_F_OVERLAY) != 0);
}

int init_mounts(const struct init_cmd *cmd, const char **root)
{
	char src[PATH_BYTES];
	char dst[PATH_BYTES];
	int err;

	*root = NULL;
	if (cmd->root_entry == NULL && cmd->nmounts == 0)
		return 0;
	if ((err = make_dirs(VMPROC_ABI_FS_MOUNT)) != 0)
		return fail("mkdir", VMPROC_ABI_FS_MOUNT, err);
	if (mount(VMPROC_ABI_FS_TAG, VMPROC_ABI_FS_MOUNT, "virtiofs", MS_NODEV, NULL) < 0)
		return fail("mount virtiofs on", VMPROC_ABI_FS_MOUNT, errno);
	if (cmd->root_entry != NULL) {
		if ((err = mount_root(cmd)) != 0)
			return err;
		*root = VMPROC_ABI_FS_NEWROOT;
	}
	for (size_t i = 0; i < cmd->nmounts; i++) {
		const struct init_mount *m = &cmd->mounts[i];

		if (!join(src, sizeof(src), VMPROC_ABI_FS_MOUNT "/", m->entry, "") ||
		    !join(dst, sizeof(dst), *root != NULL ? *root : "", m->path, ""))
			return ENAMETOOLONG;
		if ((err = make_dirs(dst)) != 0)
			return fail("mkdir", dst, err);
		if ((err = bind(src, dst, m->flags & VMPROC_MOUNT_F_READONLY, false)) != 0)
			return err;
	}
	return 0;
}
