/* fstest ops: every case of ops_files.c, ops_tree.c and ops_special.c in
 * a fresh directory, then its removal. */
#include "fstest.h"

static void t_cleanup(void)
{
	char err[PATH_MAX + 100];
	struct stat st;

	if (rm_tree(AT_FDCWD, tdir, err, sizeof(err)) < 0)
		FAILF("removing %s: %s", tdir, err);
	EXPECT_ERR(lstat(tdir, &st), ENOENT, ENOENT, "the test directory after removal");
out:
	return;
}

/* mk_unique for ops: 0, or -1 after a FAIL. */
static int make_test_dir(const char *dir, char *out)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		faile("%s", dir);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		failf("%s: not a directory", dir);
		return -1;
	}
	if (mk_unique(dir, "fstest", out) < 0) {
		faile("mkdir %s", out);
		return -1;
	}
	return 0;
}

int cmd_ops(const char *dir)
{
	umask(0);
	cur_case = "setup";
	if (make_test_dir(dir, tdir) < 0)
		return summary();
	infof("testing in %s as uid %u", tdir, (unsigned)geteuid());
	for (size_t i = 0; i < ops_n_file_cases; i++)
		run_case(ops_file_cases[i].name, ops_file_cases[i].fn);
	for (size_t i = 0; i < ops_n_tree_cases; i++)
		run_case(ops_tree_cases[i].name, ops_tree_cases[i].fn);
	for (size_t i = 0; i < ops_n_special_cases; i++)
		run_case(ops_special_cases[i].name, ops_special_cases[i].fn);
	run_case("cleanup", t_cleanup);
	return summary();
}
