/* Host files on a command (src/api/files.c): the setters vmproc_cmd_share,
 * vmproc_cmd_root and vmproc_cmd_file, guest path normalisation, and what
 * spawning makes of them: a FUSE server with the right entries and the
 * ROOT and MOUNT messages init applies (vmproc_abi.h), in order. No VM. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/command.h"
#include "api/files.h"
#include "harness.h"
#include "vmproc.h"

static char tmp[64];

static void make_tmp(void)
{
	if (tmp[0])
		return;
	snprintf(tmp, sizeof(tmp), "/tmp/vmproc-test-files-XXXXXX");
	CHECK(mkdtemp(tmp) != NULL);
	char p[128];
	const char *dirs[] = {"a", "b", "root", "root/etc", "root/data", "a/sub"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", tmp, dirs[i]);
		CHECK(mkdir(p, 0755) == 0);
	}
}

static const char *in_tmp(const char *rel)
{
	static char bufs[4][128];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, sizeof(bufs[0]), "%s/%s", tmp, rel);
	return b;
}

/* Messages as spawn would put them on the control port. */
struct msgs {
	unsigned n;
	uint32_t type[16];
	uint8_t payload[16][256];
	size_t len[16];
	int fail_at; /* put fails (-ENOMEM) for message number fail_at (1-based) */
};

static int put(void *ctx, uint32_t type, const void *payload, size_t len)
{
	struct msgs *m = ctx;
	if (m->fail_at && m->n + 1 == (unsigned)m->fail_at)
		return -ENOMEM;
	if (m->n >= 16 || len > 256)
		return -E2BIG;
	m->type[m->n] = type;
	memcpy(m->payload[m->n], payload, len);
	m->len[m->n] = len;
	m->n++;
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Whether message i is MOUNT(flags, entry, path). */
static bool is_mount(const struct msgs *m, unsigned i, unsigned flags, const char *entry,
                     const char *path)
{
	if (i >= m->n || m->type[i] != VMPROC_MSG_MOUNT || m->len[i] < 8)
		return false;
	const uint8_t *p = m->payload[i];
	size_t n = le32(p + 4);
	return le32(p) == flags && n == strlen(entry) && !memcmp(p + 8, entry, n) &&
	       m->len[i] == 8 + n + strlen(path) && !memcmp(p + 8 + n, path, strlen(path));
}

static vmproc_cmd *new_cmd(void)
{
	vmproc_cmd *cmd = NULL;
	CHECK(vmproc_cmd_new(&cmd, "/bin/true") == 0);
	return cmd;
}

static void guest_paths_are_normalised(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"/a//b/", "/a/b"},     {"/", "/"},    {"//", "/"}, {"/...", "/..."},
	    {"/a.b/.c", "/a.b/.c"}, {"a", NULL},   {"", NULL},  {"/a/./b", NULL},
	    {"/a/../b", NULL},      {"/..", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = cmd_guest_path(cases[i].in);
		if (cases[i].out)
			CHECK_MSG(p && !strcmp(p, cases[i].out), "%s -> %s", cases[i].in,
			          p ? p : "NULL");
		else
			CHECK_MSG(!p && errno == EINVAL, "%s accepted", cases[i].in);
		free(p);
	}
	CHECK(cmd_guest_path(NULL) == NULL);
	char longp[PATH_MAX + 2];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	CHECK(cmd_guest_path(longp) == NULL);
	char longname[NAME_MAX + 3];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	CHECK_MSG(cmd_guest_path(longname) == NULL, "a component of NAME_MAX + 1 bytes");
}

static void setters_check_their_arguments(void)
{
	vmproc_cmd *cmd = new_cmd();
	const vmproc_file_ops ops = {0};
	CHECK(vmproc_cmd_share(NULL, "/tmp", "/x", 0) == -EINVAL);
	CHECK(vmproc_cmd_share(cmd, NULL, "/x", 0) == -EINVAL);
	CHECK(vmproc_cmd_share(cmd, "", "/x", 0) == -EINVAL);
	CHECK(vmproc_cmd_share(cmd, "/tmp", "x", 0) == -EINVAL);
	CHECK(strstr(vmproc_cmd_error(cmd), "not absolute"));
	CHECK(vmproc_cmd_share(cmd, "/tmp", "/", 0) == -EINVAL);
	CHECK(vmproc_cmd_share(cmd, "/tmp", "/x", 2) == -EINVAL);
	CHECK(vmproc_cmd_share(cmd, "/tmp", "/x/", VMPROC_SHARE_READONLY) == 0);
	CHECK(cmd->nshares == 1 && !strcmp(cmd->shares[0].guest, "/x") &&
	      cmd->shares[0].flags == VMPROC_SHARE_READONLY);
	CHECK(!strcmp(vmproc_cmd_error(cmd), ""));
	for (int i = 1; i < VMPROC_MOUNT_MAX; i++)
		CHECK(vmproc_cmd_share(cmd, "/tmp", "/y", 0) == 0);
	CHECK(vmproc_cmd_share(cmd, "/tmp", "/y", 0) == -E2BIG);

	CHECK(vmproc_cmd_root(cmd, NULL, 0) == -EINVAL);
	CHECK(vmproc_cmd_root(cmd, "/tmp", VMPROC_ROOT_READONLY | VMPROC_ROOT_OVERLAY) == -EINVAL);
	CHECK(vmproc_cmd_root(cmd, "/tmp", 4) == -EINVAL);
	CHECK(vmproc_cmd_root(cmd, "/tmp", VMPROC_ROOT_OVERLAY) == 0);
	CHECK(vmproc_cmd_root(cmd, "/var", 0) == 0);
	CHECK(!strcmp(cmd->root, "/var") && cmd->root_flags == 0);

	CHECK(vmproc_cmd_file(cmd, "/d/f", 0644, NULL, NULL) == -EINVAL);
	CHECK(vmproc_cmd_file(cmd, "/f", 0644, &ops, NULL) == -EINVAL);
	CHECK(vmproc_cmd_file(cmd, "d/f", 0644, &ops, NULL) == -EINVAL);
	CHECK(vmproc_cmd_file(cmd, "/d/../f", 0644, &ops, NULL) == -EINVAL);
	CHECK(vmproc_cmd_file(cmd, "/d//f", 0104644, &ops, NULL) == 0);
	CHECK(cmd->nfiles == 1 && !strcmp(cmd->files[0].guest, "/d/f") &&
	      cmd->files[0].mode == 0644);
	CHECK(vmproc_cmd_file(cmd, "/d/f", 0644, &ops, NULL) == -EEXIST);
	vmproc_cmd_free(cmd);
}

static void nothing_to_share_builds_nothing(void)
{
	vmproc_cmd *cmd = new_cmd();
	struct msgs m = {0};
	struct fuse_server *s = (struct fuse_server *)&m;
	struct vmp_error err = {0};
	CHECK(!cmd_files_any(cmd));
	CHECK(cmd_files_build(cmd, &s, put, &m, &err) == 0 && s == NULL && m.n == 0);
	vmproc_cmd_free(cmd);
}

static long dummy_read(void *u, uint64_t off, const struct iovec *iov, int n)
{
	(void)u, (void)off, (void)iov, (void)n;
	return 0;
}

/* Shares in order, then one virtual directory per directory of files
 * that no share holds; files inside a share need no mount. */
static void shares_and_files_become_mounts(void)
{
	make_tmp();
	vmproc_cmd *cmd = new_cmd();
	const vmproc_file_ops ops = {.read = dummy_read};
	CHECK(vmproc_cmd_share(cmd, in_tmp("a"), "/mnt/a", VMPROC_SHARE_READONLY) == 0);
	CHECK(vmproc_cmd_share(cmd, in_tmp("b"), "/mnt/a/b", 0) == 0);
	CHECK(vmproc_cmd_file(cmd, "/data/x", 0644, &ops, NULL) == 0);
	CHECK(vmproc_cmd_file(cmd, "/mnt/a/b/in-b", 0644, &ops, NULL) == 0);
	CHECK(vmproc_cmd_file(cmd, "/mnt/a/sub/in-a", 0644, &ops, NULL) == 0);
	CHECK(vmproc_cmd_file(cmd, "/data/y", 0600, &ops, NULL) == 0);
	CHECK(vmproc_cmd_file(cmd, "/other/z", 0600, &ops, NULL) == 0);
	struct msgs m = {0};
	struct fuse_server *s = NULL;
	struct vmp_error err = {0};
	CHECK_MSG(cmd_files_build(cmd, &s, put, &m, &err) == 0 && s, "%s", err.msg);
	CHECK_MSG(m.n == 4, "%u messages", m.n);
	CHECK(is_mount(&m, 0, VMPROC_MOUNT_F_READONLY, "s0", "/mnt/a"));
	CHECK(is_mount(&m, 1, 0, "s1", "/mnt/a/b"));
	CHECK(is_mount(&m, 2, 0, "d0", "/data"));
	CHECK(is_mount(&m, 3, 0, "d1", "/other"));
	fuse_server_free(s);

	/* A file in a directory the share does not have: spawn fails. */
	CHECK(vmproc_cmd_file(cmd, "/mnt/a/missing/f", 0644, &ops, NULL) == 0);
	m.n = 0;
	s = NULL;
	CHECK(cmd_files_build(cmd, &s, put, &m, &err) < 0 && !s);
	vmproc_cmd_free(cmd);
}

static void root_comes_first_and_holds_files(void)
{
	make_tmp();
	vmproc_cmd *cmd = new_cmd();
	const vmproc_file_ops ops = {.read = dummy_read};
	CHECK(vmproc_cmd_share(cmd, in_tmp("a"), "/srv", 0) == 0);
	CHECK(vmproc_cmd_root(cmd, in_tmp("root"), VMPROC_ROOT_OVERLAY) == 0);
	CHECK(vmproc_cmd_file(cmd, "/data/x", 0644, &ops, NULL) == 0);
	CHECK(vmproc_cmd_file(cmd, "/etc/y", 0644, &ops, NULL) == 0);
	struct msgs m = {0};
	struct fuse_server *s = NULL;
	struct vmp_error err = {0};
	CHECK_MSG(cmd_files_build(cmd, &s, put, &m, &err) == 0 && s, "%s", err.msg);
	CHECK_MSG(m.n == 2, "%u messages", m.n);
	CHECK(m.type[0] == VMPROC_MSG_ROOT && m.len[0] == 8 &&
	      le32(m.payload[0]) == VMPROC_ROOT_F_OVERLAY && !memcmp(m.payload[0] + 4, "root", 4));
	CHECK(is_mount(&m, 1, 0, "s0", "/srv"));
	fuse_server_free(s);

	/* Read-only root. */
	CHECK(vmproc_cmd_root(cmd, in_tmp("root"), VMPROC_ROOT_READONLY) == 0);
	m.n = 0;
	CHECK(cmd_files_build(cmd, &s, put, &m, &err) == 0 && s);
	CHECK(m.n >= 1 && le32(m.payload[0]) == VMPROC_ROOT_F_READONLY);
	fuse_server_free(s);
	vmproc_cmd_free(cmd);
}

static void failures_leave_nothing(void)
{
	make_tmp();
	vmproc_cmd *cmd = new_cmd();
	CHECK(vmproc_cmd_share(cmd, in_tmp("a"), "/a", 0) == 0);
	CHECK(vmproc_cmd_share(cmd, in_tmp("no-such-dir"), "/b", 0) == 0);
	struct msgs m = {0};
	struct fuse_server *s = NULL;
	struct vmp_error err = {0};
	CHECK(cmd_files_build(cmd, &s, put, &m, &err) == -ENOENT && !s);
	CHECK_MSG(strstr(err.msg, "no-such-dir"), "message: %s", err.msg);
	vmproc_cmd_free(cmd);

	/* A file where a directory should be. */
	cmd = new_cmd();
	CHECK(vmproc_cmd_share(cmd, "/etc/hostname", "/a", 0) == 0);
	vmp_error_clear(&err);
	CHECK(cmd_files_build(cmd, &s, put, &m, &err) == -ENOTDIR && !s);
	vmproc_cmd_free(cmd);

	/* The control port's buffer runs out. */
	cmd = new_cmd();
	CHECK(vmproc_cmd_share(cmd, in_tmp("a"), "/a", 0) == 0);
	CHECK(vmproc_cmd_share(cmd, in_tmp("b"), "/b", 0) == 0);
	memset(&m, 0, sizeof(m));
	m.fail_at = 2;
	vmp_error_clear(&err);
	CHECK(cmd_files_build(cmd, &s, put, &m, &err) == -ENOMEM && !s);
	vmproc_cmd_free(cmd);
}

static void cleanup(void)
{
	if (tmp[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		CHECK(system(cmd) == 0);
	}
}

TEST_LIST(T(guest_paths_are_normalised), T(setters_check_their_arguments),
          T(nothing_to_share_builds_nothing), T(shares_and_files_become_mounts),
          T(root_comes_first_and_holds_files), T(failures_leave_nothing), T(cleanup))
