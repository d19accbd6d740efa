/* fstest bench: sequential write and read throughput, then creates, stats
 * and unlinks per second. */
#include "fstest.h"

static int bench_mib, bench_files;
static const char *bench_read_file;
static char bench_dat[PATH_MAX], bench_meta[PATH_MAX];
static unsigned char *bench_buf;
static int bench_wrote;
/* The figures for the summary line; negative: not measured. */
static double fig_write = -1, fig_read = -1, fig_meta[3] = {-1, -1, -1};

static void b_write(void)
{
	int fd = -1;
	double t0, t1, tf;

	SYS(fd = open(bench_dat, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644), "open %s",
	    bench_dat);
	t0 = mono_now();
	for (int i = 0; i < bench_mib; i++)
		SYS(write_all(fd, bench_buf, MIB), "write at %d MiB", i);
	tf = mono_now();
	SYS(fsync(fd), "fsync");
	t1 = mono_now();
	SYS(close(fd), "close");
	fd = -1;
	bench_wrote = 1;
	fig_write = bench_mib / (t1 - t0);
	printf("bench write_MiBps=%.1f\n", fig_write);
	infof("%d MiB in 1 MiB writes: %.3f s, of which fsync %.3f s", bench_mib, t1 - t0, t1 - tf);
out:
	close_fd(&fd);
}

static void b_read(void)
{
	const char *f = bench_read_file ? bench_read_file : bench_dat;
	int fd = -1;
	double t0, t1;
	long long total = 0;
	ssize_t n;

	if (!bench_read_file && !bench_wrote) {
		skipf("no -r FILE and no bench.dat");
		return;
	}
	SYS(fd = open(f, O_RDONLY | O_CLOEXEC), "open %s", f);
	if (!bench_read_file)
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	t0 = mono_now();
	while ((n = read(fd, bench_buf, MIB)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			FAILE("read at %lld", total);
		total += n;
	}
	t1 = mono_now();
	if (total == 0)
		FAILF("%s is empty", f);
	fig_read = (double)total / MIB / (t1 - t0);
	printf("bench read_MiBps=%.1f\n", fig_read);
	infof("%.1f MiB from %s in %.3f s%s", (double)total / MIB, f, t1 - t0,
	      bench_read_file ? ""
	                      : " (the file just written: it may come from the page cache; use -r "
	                        "FILE for an uncached one)");
out:
	close_fd(&fd);
}

static int meta_ok;

/* Times one metadata pass over the files; op 0 create, 1 stat, 2 unlink. */
static void meta_pass(int op, const char *key)
{
	char p[PATH_MAX], name[32];
	struct stat st;
	double t0, t1;
	int fd;

	if (op == 0) {
		if (mk_unique(bench_meta, "bench.meta", p) < 0)
			FAILE("mkdir in %s", bench_meta);
		snprintf(bench_meta, sizeof(bench_meta), "%s", p);
		meta_ok = 1;
	} else if (!meta_ok) {
		skipf("no files created");
		return;
	}
	t0 = mono_now();
	for (int i = 0; i < bench_files; i++) {
		snprintf(name, sizeof(name), "f%07d", i);
		join(p, bench_meta, name);
		if (op == 0) {
			fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
			if (fd < 0 || close(fd) < 0) {
				meta_ok = 0;
				FAILE("create %s", p);
			}
		} else if (op == 1) {
			if (stat(p, &st) < 0) {
				meta_ok = 0;
				FAILE("stat %s", p);
			}
		} else if (unlink(p) < 0) {
			meta_ok = 0;
			FAILE("unlink %s", p);
		}
	}
	t1 = mono_now();
	fig_meta[op] = bench_files / (t1 - t0);
	printf("bench %s=%.1f\n", key, fig_meta[op]);
	infof("%d files in %.3f s", bench_files, t1 - t0);
out:
	return;
}

static void b_create(void)
{
	meta_pass(0, "create_per_s");
}

static void b_stat(void)
{
	meta_pass(1, "stat_per_s");
}

static void b_unlink(void)
{
	meta_pass(2, "unlink_per_s");
}

int cmd_bench(const char *dir, int mib, int files, const char *read_file)
{
	char err[PATH_MAX + 100];

	bench_mib = mib;
	bench_files = files;
	bench_read_file = read_file;
	umask(022);
	join(bench_dat, dir, "bench.dat");
	snprintf(bench_meta, sizeof(bench_meta), "%s", dir);
	if (posix_memalign((void **)&bench_buf, 4096, MIB))
		die("posix_memalign");
	fill(bench_buf, MIB, 1234);
	run_case("write", b_write);
	run_case("read", b_read);
	run_case("create", b_create);
	run_case("stat", b_stat);
	run_case("unlink", b_unlink);
	cur_case = "cleanup";
	if (unlink(bench_dat) < 0 && errno != ENOENT)
		faile("unlink %s", bench_dat);
	if (strcmp(bench_meta, dir) && rm_tree(AT_FDCWD, bench_meta, err, sizeof(err)) < 0)
		failf("%s", err);
	cur_case = "summary";
	infof("write %.1f MiB/s (%d MiB, with fsync), read %.1f MiB/s%s; per second: "
	      "create %.0f, stat %.0f, unlink %.0f (%d files); -1: not measured",
	      fig_write, bench_mib, fig_read, bench_read_file ? "" : " (maybe cached)", fig_meta[0],
	      fig_meta[1], fig_meta[2], bench_files);
	return summary();
}
