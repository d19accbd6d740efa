/* vmproc snapshot: the cache of booted guests that vmproc run starts
 * from (see "Snapshots" in include/vmproc.h). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "vmproc.h"

cli_command_fn cmd_snapshot;

/* The VM options vmproc snapshot build takes: those that make a
 * configuration's snapshot (and --timeout for its boot). */
#define SNAPSHOT_VM_OPTIONS VM_OPT_MACHINE

static void snapshot_usage(FILE *f)
{
	fputs("Usage: vmproc snapshot build [--force] [VM OPTIONS]\n"
	      "       vmproc snapshot list\n"
	      "       vmproc snapshot clear\n"
	      "\n"
	      "vmproc run starts a program from a snapshot of a guest that already\n"
	      "booted to the point where its init waits for a command, instead of\n"
	      "booting one: the first run of a VM configuration boots and stores the\n"
	      "snapshot, later runs restore it. Snapshots live in the cache directory\n"
	      "($VMPROC_CACHE_DIR, else $XDG_CACHE_HOME/vmproc/snapshots, else\n"
	      "~/.cache/vmproc/snapshots), one file per configuration, named by a hash\n"
	      "of everything that determines it; a file that no longer matches (a new\n"
	      "kernel, initramfs or vmproc) or is damaged is rebuilt, never used.\n"
	      "\n"
	      "  build   make sure the snapshot for a configuration is cached (boots\n"
	      "          the guest if it is not), and print its path\n"
	      "  list    the cached snapshots: size on disk, age, and which one the\n"
	      "          default configuration uses\n"
	      "  clear   delete every cached snapshot\n"
	      "\n"
	      "Options of build (as for vmproc run):\n"
	      "  --force               rebuild even if a valid snapshot is cached\n",
	      f);
	vm_options_usage(f, SNAPSHOT_VM_OPTIONS);
}

enum { O_FORCE = CLI_OPT_OWN };

/* snapshot build's own option: --force (cli_parser.option). */
static int build_option(void *ctx, int c, const char *arg)
{
	(void)arg;
	if (c == O_FORCE)
		*(int *)ctx = 1;
	return 0;
}

/* snapshot build's options, the VM's into o; 0, or -1 and its exit status
 * in *status (cli_parse). */
static int parse_build(int argc, char **argv, struct vm_options *o, int *force, int *status)
{
	static const struct option opts[] = {
	    {"force", no_argument, NULL, O_FORCE},
	    {NULL, 0, NULL, 0},
	};
	const struct cli_parser parser = {
	    .longopts = opts,
	    .vm = SNAPSHOT_VM_OPTIONS,
	    .option = build_option,
	    .ctx = force,
	    .usage = snapshot_usage,
	};
	if (cli_parse(argc, argv, &parser, o, status))
		return -1;
	if (optind < argc) {
		fprintf(stderr, "vmproc: snapshot build: unexpected '%s'\n", argv[optind]);
		*status = EXIT_VMPROC_USAGE;
		return -1;
	}
	return 0;
}

static int snapshot_build(int argc, char **argv)
{
	struct vm_options o = {0};
	vmproc_template *t = NULL;
	int force = 0, status = EXIT_VMPROC_USAGE;
	char path[PATH_MAX];
	if (parse_build(argc, argv, &o, &force, &status))
		goto out;
	status = EXIT_VMPROC_VM;
	if (vmproc_template_new(&t, o.cfg) ||
	    vmproc_template_cache_path(t, path, sizeof(path)) >= (int)sizeof(path)) {
		fprintf(stderr, "vmproc: no snapshot cache directory (set VMPROC_CACHE_DIR)\n");
		goto out;
	}
	if (force)
		unlink(path);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (vmproc_template_cached(t)) {
		fprintf(stderr, "vmproc: %s\n", vmproc_template_error(t));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	struct stat st;
	if (stat(path, &st) < 0) {
		fprintf(stderr, "vmproc: the snapshot was made but could not be stored in %s\n",
		        path);
		goto out;
	}
	printf("%s\n", path);
	fprintf(stderr, "vmproc: snapshot ready in %.1f s (%lld MiB on disk)\n",
	        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	        (long long)st.st_blocks * 512 >> 20);
	status = 0;
out:
	vmproc_template_free(t);
	vmproc_config_free(o.cfg);
	return status;
}

static int is_snapshot_file(const char *name, int *is_temp)
{
	size_t n = strlen(name);
	*is_temp = strstr(name, ".snap.tmp.") != NULL;
	return *is_temp || (n > 5 && !strcmp(name + n - 5, ".snap")) ||
	       (n > 10 && !strcmp(name + n - 10, ".snap.lock"));
}

/* list (clear = 0) or delete (clear = 1) the cache's files. */
static int snapshot_dir(int clear)
{
	char dir[PATH_MAX], def[PATH_MAX] = "";
	int n = vmproc_snapshot_cache_dir(dir, sizeof(dir));
	if (n < 0 || n >= (int)sizeof(dir)) {
		fprintf(stderr, "vmproc: no snapshot cache directory (set VMPROC_CACHE_DIR)\n");
		return EXIT_VMPROC_VM;
	}
	vmproc_template *t = NULL;
	if (!clear && !vmproc_template_new(&t, NULL))
		vmproc_template_cache_path(t, def, sizeof(def));
	vmproc_template_free(t);
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT) {
			if (!clear)
				printf("%s: no snapshots\n", dir);
			return 0;
		}
		fprintf(stderr, "vmproc: %s: %s\n", dir, strerror(errno));
		return EXIT_VMPROC_VM;
	}
	int status = 0, count = 0;
	struct dirent *e;
	time_t now = time(NULL);
	while ((e = readdir(d))) {
		int temp;
		if (!is_snapshot_file(e->d_name, &temp))
			continue;
		char path[PATH_MAX * 2];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (clear) {
			if (unlink(path) < 0) {
				fprintf(stderr, "vmproc: cannot delete %s: %s\n", path,
				        strerror(errno));
				status = EXIT_VMPROC_VM;
			} else {
				count++;
			}
			continue;
		}
		struct stat st;
		if (strstr(e->d_name, ".lock") || stat(path, &st) < 0)
			continue;
		count++;
		printf("%s  %5lld MiB on disk  %6.1f h old%s%s\n", path,
		       (long long)st.st_blocks * 512 >> 20, difftime(now, st.st_mtime) / 3600,
		       !strcmp(path, def) ? "  (default configuration)" : "",
		       temp ? "  (unfinished: an interrupted build)" : "");
	}
	closedir(d);
	if (clear)
		printf("deleted %d snapshot file%s from %s\n", count, count == 1 ? "" : "s", dir);
	else if (!count)
		printf("%s: no snapshots\n", dir);
	return status;
}

int cmd_snapshot(int argc, char **argv)
{
	if (argc < 2) {
		snapshot_usage(stderr);
		return EXIT_VMPROC_USAGE;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		snapshot_usage(stdout);
		return 0;
	}
	if (!strcmp(sub, "build"))
		return snapshot_build(argc - 1, argv + 1);
	if (!strcmp(sub, "list") && argc == 2)
		return snapshot_dir(0);
	if (!strcmp(sub, "clear") && argc == 2)
		return snapshot_dir(1);
	fprintf(stderr, "vmproc: snapshot: unknown command or options '%s'\n", sub);
	snapshot_usage(stderr);
	return EXIT_VMPROC_USAGE;
}
