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
	      "  --force               rebuild even if a valid snapshot is cached\n"
	      "  --memory MIB          guest memory in MiB (default 128)\n"
	      "  --cpus N              number of vCPUs (default 1)\n"
	      "  --kernel PATH         guest kernel (uncompressed vmlinux)\n"
	      "  --initrd PATH         initramfs (uncompressed cpio)\n"
	      "  --system PATH         system image mounted at /usr (erofs); '' for none\n"
	      "  --timeout SECONDS     give up on the boot after this long\n",
	      f);
}

static int configure(vmproc_config *cfg, int argc, char **argv, int *force)
{
	enum { O_MEMORY = 256, O_CPUS, O_KERNEL, O_INITRD, O_SYSTEM, O_TIMEOUT, O_FORCE };
	static const struct option opts[] = {
	    {"memory", required_argument, NULL, O_MEMORY},
	    {"cpus", required_argument, NULL, O_CPUS},
	    {"kernel", required_argument, NULL, O_KERNEL},
	    {"initrd", required_argument, NULL, O_INITRD},
	    {"system", required_argument, NULL, O_SYSTEM},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"force", no_argument, NULL, O_FORCE},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c, rc = 0;
	unsigned long v;
	while (!rc && (c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case O_MEMORY:
			rc = cli_parse_uint(optarg, 65536, &v)
			         ? -EINVAL
			         : vmproc_config_set_memory_mib(cfg, (unsigned)v);
			break;
		case O_CPUS:
			rc = cli_parse_uint(optarg, 1024, &v)
			         ? -EINVAL
			         : vmproc_config_set_cpus(cfg, (unsigned)v);
			break;
		case O_TIMEOUT:
			rc = cli_parse_uint(optarg, 86400, &v)
			         ? -EINVAL
			         : vmproc_config_set_timeout_ms(cfg, (uint64_t)v * 1000);
			break;
		case O_KERNEL: rc = vmproc_config_set_kernel(cfg, optarg); break;
		case O_INITRD: rc = vmproc_config_set_initrd(cfg, optarg); break;
		case O_SYSTEM: rc = vmproc_config_set_system_image(cfg, optarg); break;
		case O_FORCE: *force = 1; break;
		case 'h': snapshot_usage(stdout); exit(0);
		default: return -EINVAL;
		}
		if (rc) {
			const char *why = vmproc_config_error(cfg);
			fprintf(stderr, "vmproc: %s: %s\n", argv[optind - 1],
			        *why ? why : "bad value");
		}
	}
	if (!rc && optind < argc) {
		fprintf(stderr, "vmproc: snapshot build: unexpected '%s'\n", argv[optind]);
		rc = -EINVAL;
	}
	return rc;
}

static int snapshot_build(int argc, char **argv)
{
	vmproc_config *cfg = NULL;
	vmproc_template *t = NULL;
	int force = 0, status = EXIT_VMPROC_USAGE;
	char path[PATH_MAX];
	if (vmproc_config_new(&cfg) || configure(cfg, argc, argv, &force))
		goto out;
	status = EXIT_VMPROC_VM;
	if (vmproc_template_new(&t, cfg) ||
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
	vmproc_config_free(cfg);
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
