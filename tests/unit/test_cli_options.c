/* The CLI's shared option parser (cli/options.c): a subcommand's own
 * options beside the VM options, values checked by the library (its
 * message, the usage-error status), the groups a subcommand picks, and
 * --help. No VM: the options only fill a vmproc_config. */
#include <getopt.h>
#include <stdarg.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "harness.h"
#include "vmproc.h"

/* A subcommand like vmproc run: -x, --flag and --name ARG of its own. */
enum { O_NAME = CLI_OPT_OWN };
struct own {
	int x, calls;
	const char *name;
};

static int own_option(void *ctx, int c, const char *arg)
{
	struct own *o = ctx;
	o->calls++;
	if (c == 'x')
		o->x = 1;
	else if (c == O_NAME)
		o->name = arg;
	return 0;
}

static int usage_calls;
static void test_usage(FILE *f)
{
	(void)f;
	usage_calls++;
}

/* Parses the words (after an argv[0] of "test") with the VM options in
 * groups vm; stderr goes to err (cleared), cut at its size. */
static int parse(unsigned vm, struct own *own, struct vm_options *o, int *status, char *err,
                 size_t errlen, ...)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, O_NAME},
	    {NULL, 0, NULL, 0},
	};
	const struct cli_parser p = {
	    .shortopts = "x",
	    .longopts = opts,
	    .vm = vm,
	    .option = own_option,
	    .ctx = own,
	    .usage = test_usage,
	};
	char *argv[32] = {"test"};
	int argc = 1;
	va_list ap;
	va_start(ap, errlen);
	for (char *w; argc < 31 && (w = va_arg(ap, char *));)
		argv[argc++] = w;
	va_end(ap);
	/* stderr into a file for the call, then back */
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	int rc = cli_parse(argc, argv, &p, o, status);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	size_t n = fread(err, 1, errlen - 1, tmp);
	err[n] = '\0';
	fclose(tmp);
	return rc;
}

#define ALL_VM (VM_OPT_MACHINE | VM_OPT_DISK | VM_OPT_TRACE | VM_OPT_KERNEL_LOG)

static void test_own_and_vm_options(void)
{
	struct own own = {0};
	struct vm_options o = {0};
	int status = -7;
	char err[512];
	int rc =
	    parse(ALL_VM, &own, &o, &status, err, sizeof(err), "--memory", "64", "-x", "--cpus=2",
	          "--name", "n1", "--trace", "--profile", "--kernel", "/k", "--disk", "/d:ro",
	          "--timeout", "5", "--kernel-log", "prog", "--cpus", "9", NULL);
	CHECK_MSG(rc == 0, "rc %d, stderr: %s", rc, err);
	CHECK(status == -7); /* untouched when it goes on */
	CHECK(o.cfg != NULL);
	CHECK(own.x == 1 && own.calls == 2 && own.name && !strcmp(own.name, "n1"));
	CHECK(o.trace == 1);
	CHECK(!err[0]);
	CHECK(optind == 16); /* "prog": the first operand; what follows is its */
	vmproc_config_free(o.cfg);
}

/* The library's range, its message, the usage status: --cpus 65 as --cpus
 * 1024 (the CLI keeps no limit of its own). */
static void test_range_from_library(void)
{
	const char *bad[][2] = {{"--cpus", "65"},  {"--cpus", "1024"}, {"--cpus", "0"},
	                        {"--memory", "8"}, {"--memory", "0"},  {"--memory", "70000"},
	                        {"--kernel", ""}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct own own = {0};
		struct vm_options o = {0};
		int status = 0;
		char err[512], want[64];
		int rc = parse(VM_OPT_MACHINE, &own, &o, &status, err, sizeof(err), bad[i][0],
		               bad[i][1], "prog", NULL);
		CHECK_MSG(rc == -1 && status == EXIT_VMPROC_USAGE, "%s %s: rc %d status %d",
		          bad[i][0], bad[i][1], rc, status);
		/* "vmproc: --cpus: " and then what the library said */
		snprintf(want, sizeof(want), "vmproc: %s: %s\n", bad[i][0],
		         o.cfg ? vmproc_config_error(o.cfg) : "?");
		CHECK_MSG(!strcmp(err, want), "%s %s: stderr '%s', wanted '%s'", bad[i][0],
		          bad[i][1], err, want);
		CHECK_MSG(o.cfg && *vmproc_config_error(o.cfg), "%s %s: no library message",
		          bad[i][0], bad[i][1]);
		vmproc_config_free(o.cfg);
	}
}

static void test_malformed_numbers(void)
{
	const char *bad[][3] = {
	    {"--cpus", "x", "vmproc: --cpus wants a number of vCPUs, not 'x'\n"},
	    {"--memory", "12k", "vmproc: --memory wants MiB, not '12k'\n"},
	    {"--memory", "99999999999", "vmproc: --memory wants MiB, not '99999999999'\n"},
	    {"--timeout", "86401",
	     "vmproc: --timeout wants seconds (at most 86400), not '86401'\n"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct own own = {0};
		struct vm_options o = {0};
		int status = 0;
		char err[512];
		int rc = parse(VM_OPT_MACHINE, &own, &o, &status, err, sizeof(err), bad[i][0],
		               bad[i][1], NULL);
		CHECK_MSG(rc == -1 && status == EXIT_VMPROC_USAGE, "%s %s: rc %d status %d",
		          bad[i][0], bad[i][1], rc, status);
		CHECK_MSG(!strcmp(err, bad[i][2]), "stderr '%s'", err);
		vmproc_config_free(o.cfg);
	}
}

/* A VM option outside the subcommand's groups is unknown to it. */
static void test_groups(void)
{
	const char *outside[] = {"--disk", "--trace", "--profile", "--kernel-log"};
	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
		struct own own = {0};
		struct vm_options o = {0};
		int status = 0;
		char err[512];
		usage_calls = 0;
		int rc = parse(VM_OPT_MACHINE, &own, &o, &status, err, sizeof(err), outside[i], "x",
		               NULL);
		CHECK_MSG(rc == -1 && status == EXIT_VMPROC_USAGE && usage_calls == 1,
		          "%s: rc %d status %d usage %d", outside[i], rc, status, usage_calls);
		CHECK_MSG(strstr(err, "unrecognized option"), "%s: stderr '%s'", outside[i], err);
		vmproc_config_free(o.cfg);
	}
}

static void test_help_and_unknown(void)
{
	struct own own = {0};
	struct vm_options o = {0};
	int status = -7;
	char err[512];
	usage_calls = 0;
	int rc = parse(VM_OPT_MACHINE, &own, &o, &status, err, sizeof(err), "-x", "--help",
	               "--cpus", "65", NULL);
	CHECK(rc == -1 && status == 0 && usage_calls == 1 && !err[0]);
	vmproc_config_free(o.cfg);

	o = (struct vm_options){0};
	status = 0;
	rc = parse(VM_OPT_MACHINE, &own, &o, &status, err, sizeof(err), "-q", NULL);
	CHECK(rc == -1 && status == EXIT_VMPROC_USAGE && usage_calls == 2);
	vmproc_config_free(o.cfg);
}

/* Stops at the first operand ('+'): the program's own options are its. */
static void test_operands(void)
{
	struct own own = {0};
	struct vm_options o = {0};
	int status = 0;
	char err[512];
	int rc = parse(ALL_VM, &own, &o, &status, err, sizeof(err), "--", "--cpus", "99", NULL);
	CHECK(rc == 0 && optind == 2 && !err[0]);
	vmproc_config_free(o.cfg);
}

TEST_LIST(T(test_own_and_vm_options), T(test_range_from_library), T(test_malformed_numbers),
          T(test_groups), T(test_help_and_unknown), T(test_operands))
