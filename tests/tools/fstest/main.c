/* fstest's command line (fstest.h says what each command does). */
#include "fstest.h"

static int usage(void)
{
	fprintf(stderr,
	        "usage: fstest ops [--expect-no-devices] [--expect-no-setuid] DIR\n"
	        "       fstest escape [--expect-no-devices] [--expect-no-setuid] [-i N] DIR "
	        "MARKER_TEXT [PATH...]\n"
	        "       fstest bench DIR [-s MiB] [-n FILES] [-r FILE]\n");
	return 2;
}

int expect_no_devices, expect_no_setuid;

/* A positive int option value, or -1. */
static int parse_count(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > INT_MAX)
		return -1;
	return (int)v;
}

int main(int argc, char **argv)
{
	char **pos;
	int npos = 0;
	int bench_mib = 256, bench_files = 10000, esc_iterations = 300;
	const char *bench_read_file = NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		return usage();
	pos = xmalloc(sizeof(char *) * (size_t)argc);
	/* Options anywhere after the command; "--" ends them. */
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		int bench = !strcmp(argv[1], "bench");

		if (!strcmp(a, "--")) {
			while (++i < argc)
				pos[npos++] = argv[i];
			break;
		} else if (!strcmp(a, "--expect-no-devices") && !bench) {
			expect_no_devices = 1;
		} else if (!strcmp(a, "--expect-no-setuid") && !bench) {
			expect_no_setuid = 1;
		} else if (bench && (!strcmp(a, "-s") || !strcmp(a, "-n")) && i + 1 < argc) {
			int v = parse_count(argv[++i]);

			if (v < 0)
				return usage();
			*(a[1] == 's' ? &bench_mib : &bench_files) = v;
		} else if (bench && !strcmp(a, "-r") && i + 1 < argc) {
			bench_read_file = argv[++i];
		} else if (!strcmp(argv[1], "escape") && !strcmp(a, "-i") && i + 1 < argc) {
			esc_iterations = parse_count(argv[++i]);
			if (esc_iterations < 0)
				return usage();
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "fstest: unknown option %s\n", a);
			return usage();
		} else {
			pos[npos++] = argv[i];
		}
	}
	if (!strcmp(argv[1], "ops") && npos == 1)
		return cmd_ops(pos[0]);
	if (!strcmp(argv[1], "escape") && npos >= 2 && pos[1][0]) {
		return cmd_escape(pos[0], pos[1], pos + 2, npos - 2, esc_iterations);
	}
	if (!strcmp(argv[1], "bench") && npos == 1)
		return cmd_bench(pos[0], bench_mib, bench_files, bench_read_file);
	return usage();
}
