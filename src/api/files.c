#include "api/files.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmproc_abi.h"

/* Top-level entry names in the server's root: "root", "s<N>" for share N,
 * "d<N>" for virtual directory N. */
#define ENTRY_ROOT "root"
#define ENTRY_MAX  24

char *cmd_guest_path(const char *path)
{
	if (!path || path[0] != '/' || strlen(path) >= PATH_MAX) {
		errno = EINVAL;
		return NULL;
	}
	char *out = malloc(strlen(path) + 2);
	if (!out)
		return NULL;
	size_t n = 0;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		size_t len = (size_t)(e - p);
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.') ||
		    len > NAME_MAX) {
			free(out);
			errno = EINVAL;
			return NULL;
		}
		out[n++] = '/';
		memcpy(out + n, p, len);
		n += len;
		p = e;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return out;
}

/* Every setter starts here, as in command.c. */
static int begin(vmproc_cmd *cmd)
{
	if (!cmd)
		return -EINVAL;
	vmp_error_clear(&cmd->err);
	return 0;
}

int vmproc_cmd_share(vmproc_cmd *cmd, const char *host_dir, const char *guest_path, unsigned flags)
{
	if (begin(cmd))
		return -EINVAL;
	if (!host_dir || !*host_dir)
		return vmp_fail(&cmd->err, -EINVAL, "share: the host directory is empty");
	if (flags & ~VMPROC_SHARE_READONLY)
		return vmp_fail(&cmd->err, -EINVAL, "share: unknown flags 0x%x", flags);
	char *guest = cmd_guest_path(guest_path);
	if (!guest)
		return vmp_fail(&cmd->err, errno == ENOMEM ? -ENOMEM : -EINVAL,
		                "share: the guest path %s is not absolute or has . or ..",
		                guest_path ? guest_path : "(null)");
	if (strcmp(guest, "/") == 0) {
		free(guest);
		return vmp_fail(&cmd->err, -EINVAL,
		                "share: a share cannot be the guest's root (use vmproc_cmd_root)");
	}
	if (cmd->nshares >= VMPROC_MOUNT_MAX) {
		free(guest);
		return vmp_fail(&cmd->err, -E2BIG, "share: at most %d shares", VMPROC_MOUNT_MAX);
	}
	char *host = strdup(host_dir);
	struct cmd_share *a = realloc(cmd->shares, (cmd->nshares + 1) * sizeof(*a));
	if (!host || !a) {
		free(host);
		free(guest);
		if (a)
			cmd->shares = a;
		return vmp_fail(&cmd->err, -ENOMEM, "out of memory");
	}
	cmd->shares = a;
	a[cmd->nshares++] = (struct cmd_share){.host = host, .guest = guest, .flags = flags};
	return 0;
}

int vmproc_cmd_root(vmproc_cmd *cmd, const char *host_dir, unsigned flags)
{
	if (begin(cmd))
		return -EINVAL;
	if (!host_dir || !*host_dir)
		return vmp_fail(&cmd->err, -EINVAL, "root: the host directory is empty");
	if (flags & ~(VMPROC_ROOT_READONLY | VMPROC_ROOT_OVERLAY) ||
	    flags == (VMPROC_ROOT_READONLY | VMPROC_ROOT_OVERLAY))
		return vmp_fail(
		    &cmd->err, -EINVAL,
		    "root: flags must be 0, VMPROC_ROOT_READONLY or VMPROC_ROOT_OVERLAY");
	char *host = strdup(host_dir);
	if (!host)
		return vmp_fail(&cmd->err, -ENOMEM, "out of memory");
	free(cmd->root);
	cmd->root = host;
	cmd->root_flags = flags;
	return 0;
}

int vmproc_cmd_file(vmproc_cmd *cmd, const char *guest_path, unsigned mode,
                    const vmproc_file_ops *ops, void *userdata)
{
	if (begin(cmd))
		return -EINVAL;
	if (!ops)
		return vmp_fail(&cmd->err, -EINVAL, "file: no callbacks");
	char *guest = cmd_guest_path(guest_path);
	if (!guest)
		return vmp_fail(&cmd->err, errno == ENOMEM ? -ENOMEM : -EINVAL,
		                "file: the guest path %s is not absolute or has . or ..",
		                guest_path ? guest_path : "(null)");
	if (strcmp(guest, "/") == 0 || strrchr(guest, '/') == guest) {
		free(guest);
		return vmp_fail(&cmd->err, -EINVAL,
		                "file: %s: a callback file needs a directory other than /",
		                guest_path);
	}
	for (size_t i = 0; i < cmd->nfiles; i++) {
		if (strcmp(cmd->files[i].guest, guest) == 0) {
			free(guest);
			return vmp_fail(&cmd->err, -EEXIST, "file: %s is already set", guest_path);
		}
	}
	struct cmd_file *a = realloc(cmd->files, (cmd->nfiles + 1) * sizeof(*a));
	if (!a) {
		free(guest);
		return vmp_fail(&cmd->err, -ENOMEM, "out of memory");
	}
	cmd->files = a;
	a[cmd->nfiles++] = (struct cmd_file){
	    .guest = guest, .mode = mode & 0777, .ops = *ops, .userdata = userdata};
	return 0;
}

void cmd_files_release(vmproc_cmd *cmd)
{
	for (size_t i = 0; i < cmd->nshares; i++) {
		free(cmd->shares[i].host);
		free(cmd->shares[i].guest);
	}
	free(cmd->shares);
	for (size_t i = 0; i < cmd->nfiles; i++)
		free(cmd->files[i].guest);
	free(cmd->files);
	free(cmd->root);
	cmd->shares = NULL;
	cmd->files = NULL;
	cmd->root = NULL;
	cmd->nshares = cmd->nfiles = 0;
}

int cmd_files_any(const vmproc_cmd *cmd)
{
	return cmd->root || cmd->nshares || cmd->nfiles;
}

/* --- spawn ---------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int put_mount(cmd_put_fn put, void *ctx, const char *entry, const char *guest,
                     unsigned flags)
{
	size_t elen = strlen(entry), glen = strlen(guest);
	size_t len = 8 + elen + glen;
	uint8_t *p = malloc(len);
	if (!p)
		return -ENOMEM;
	put_le32(p, flags);
	put_le32(p + 4, (uint32_t)elen);
	/* Lengths, not terminators, delimit the strings on the wire. */
	memcpy(p + 8, entry, elen);        // NOLINT(bugprone-not-null-terminated-result)
	memcpy(p + 8 + elen, guest, glen); // NOLINT(bugprone-not-null-terminated-result)
	int rc = put(ctx, VMPROC_MSG_MOUNT, p, len);
	free(p);
	return rc;
}

/* Whether dir is path itself or below it (both normalised). */
static size_t inside(const char *dir, const char *path)
{
	if (strcmp(path, "/") == 0)
		return 1;
	size_t n = strlen(path);
	if (strncmp(dir, path, n) == 0 && (dir[n] == '\0' || dir[n] == '/'))
		return n;
	return 0;
}

/* The virtual directories: one per distinct parent directory of callback
 * files that no share (or root) holds. */
struct vdirs {
	char **path;
	size_t n;
};

static int vdir_index(struct vdirs *v, const char *dir, size_t *index)
{
	for (size_t i = 0; i < v->n; i++) {
		if (strcmp(v->path[i], dir) == 0) {
			*index = i;
			return 0;
		}
	}
	char **a = realloc(v->path, (v->n + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	v->path = a;
	if (!(a[v->n] = strdup(dir)))
		return -ENOMEM;
	*index = v->n++;
	return 1;
}

static int place_file(const vmproc_cmd *cmd, struct fuse_server *s, const struct cmd_file *f,
                      struct vdirs *vd, cmd_put_fn put, void *ctx, struct vmp_error *err)
{
	const char *slash = strrchr(f->guest, '/');
	size_t dlen = (size_t)(slash - f->guest);
	char *dir = strndup(f->guest, dlen);
	if (!dir)
		return vmp_fail(err, -ENOMEM, "out of memory");
	const char *name = slash + 1;
	/* The share (or root) holding dir, deepest first: it is mounted
	 * last, so it is what the guest sees there. */
	char entry[ENTRY_MAX];
	size_t best = 0;
	bool found = false;
	for (size_t i = 0; i < cmd->nshares; i++) {
		size_t n = inside(dir, cmd->shares[i].guest);
		if (n && n >= best) {
			best = n;
			found = true;
			snprintf(entry, sizeof(entry), "s%zu", i);
		}
	}
	if (!found && cmd->root) {
		found = true;
		best = 0;
		snprintf(entry, sizeof(entry), "%s", ENTRY_ROOT);
	}
	int rc;
	if (found) {
		const char *rel = dir + best;
		while (*rel == '/')
			rel++;
		rc = fuse_server_add_file(s, entry, rel, name, f->mode, &f->ops, f->userdata, err);
	} else {
		size_t idx;
		rc = vdir_index(vd, dir, &idx);
		if (rc < 0) {
			free(dir);
			return vmp_fail(err, rc, "out of memory");
		}
		snprintf(entry, sizeof(entry), "d%zu", idx);
		if (rc == 1) {
			rc = fuse_server_add_vdir(s, entry, err);
			if (!rc && (rc = put_mount(put, ctx, entry, dir, 0)))
				vmp_fail(err, rc, "cannot encode a mount");
		} else {
			rc = 0;
		}
		if (!rc)
			rc = fuse_server_add_file(s, entry, "", name, f->mode, &f->ops, f->userdata,
			                          err);
	}
	free(dir);
	return rc;
}

int cmd_files_build(const vmproc_cmd *cmd, struct fuse_server **out, cmd_put_fn put, void *ctx,
                    struct vmp_error *err)
{
	*out = NULL;
	if (!cmd_files_any(cmd))
		return 0;
	struct fuse_server *s;
	int rc = fuse_server_new(&s, err);
	if (rc)
		return rc;
	fuse_server_set_fd_limit(s, cmd->fd_limit);
	if (cmd->root) {
		unsigned f = cmd->root_flags;
		/* An overlay's lower layer is never written: the host enforces
		 * it too. */
		bool ro = f & (VMPROC_ROOT_READONLY | VMPROC_ROOT_OVERLAY);
		rc = fuse_server_add_dir(s, ENTRY_ROOT, cmd->root, ro, err);
		uint8_t p[4 + sizeof(ENTRY_ROOT) - 1];
		put_le32(p, (f & VMPROC_ROOT_READONLY ? VMPROC_ROOT_F_READONLY : 0) |
		                (f & VMPROC_ROOT_OVERLAY ? VMPROC_ROOT_F_OVERLAY : 0));
		memcpy(p + 4, ENTRY_ROOT, sizeof(ENTRY_ROOT) - 1);
		if (!rc && (rc = put(ctx, VMPROC_MSG_ROOT, p, sizeof(p))))
			vmp_fail(err, rc, "cannot encode the root");
	}
	for (size_t i = 0; !rc && i < cmd->nshares; i++) {
		const struct cmd_share *sh = &cmd->shares[i];
		char entry[ENTRY_MAX];
		snprintf(entry, sizeof(entry), "s%zu", i);
		bool ro = sh->flags & VMPROC_SHARE_READONLY;
		if (!(rc = fuse_server_add_dir(s, entry, sh->host, ro, err)) &&
		    (rc = put_mount(put, ctx, entry, sh->guest, ro ? VMPROC_MOUNT_F_READONLY : 0)))
			vmp_fail(err, rc, "cannot encode a mount");
	}
	struct vdirs vd = {0};
	for (size_t i = 0; !rc && i < cmd->nfiles; i++)
		rc = place_file(cmd, s, &cmd->files[i], &vd, put, ctx, err);
	if (!rc && cmd->nshares + vd.n > VMPROC_MOUNT_MAX)
		rc = vmp_fail(err, -E2BIG, "%zu shares and %zu directories of files: at most %d",
		              cmd->nshares, vd.n, VMPROC_MOUNT_MAX);
	for (size_t i = 0; i < vd.n; i++)
		free(vd.path[i]);
	free(vd.path);
	if (rc) {
		fuse_server_free(s);
		return rc;
	}
	*out = s;
	return 0;
}
