/* Host files in the guest, from C: a host directory shared read-only, and
 * a file whose content this program makes up as the guest reads it (a
 * host-callback file), which the guest program then copies into a
 * read-write share.
 *
 *   build/examples/host_files DIR     # DIR: any host directory
 *
 * prints what the guest saw (the first names in DIR, the callback file's
 * lines) and leaves DIR/../vmproc-example-out/copy.txt behind.
 *
 * Build against an installed vmproc with:
 *   cc host_files.c $(pkg-config --cflags --libs vmproc)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <vmproc.h>

#define LINES 1000

/* Line i of the made-up file: "line i\n", padded to 16 bytes. */
static void line_at(unsigned i, char out[16])
{
	snprintf(out, 16, "line %9u", i);
	out[15] = '\n';
}

static uint64_t numbers_size(void *userdata)
{
	(void)userdata;
	return LINES * 16;
}

/* Writes straight into the guest's buffers: no copy of the file exists. */
static long numbers_read(void *userdata, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	unsigned *calls = userdata;
	long done = 0;
	(*calls)++;
	for (int i = 0; i < iovcnt; i++) {
		char *p = iov[i].iov_base;
		for (size_t j = 0; j < iov[i].iov_len && offset < LINES * 16; j++, offset++) {
			char line[16];
			line_at((unsigned)(offset / 16), line);
			p[j] = line[offset % 16];
			done++;
		}
	}
	return done;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	char out[4096];
	snprintf(out, sizeof(out), "%s/../vmproc-example-out", argv[1]);
	if (mkdir(out, 0755) < 0 && errno != EEXIST) {
		perror(out);
		return 1;
	}
	unsigned calls = 0;
	const vmproc_file_ops numbers = {.size = numbers_size, .read = numbers_read};
	vmproc_cmd *cmd = NULL;
	int rc = vmproc_cmd_new(&cmd, "/bin/sh");
	if (!rc)
		rc = vmproc_cmd_arg(cmd, "-c");
	if (!rc)
		rc = vmproc_cmd_arg(cmd, "ls /src | head -3; wc -l < /data/numbers; "
		                         "tail -1 /data/numbers; cp /data/numbers /out/copy.txt");
	if (!rc)
		rc = vmproc_cmd_share(cmd, argv[1], "/src", VMPROC_SHARE_READONLY);
	if (!rc)
		rc = vmproc_cmd_share(cmd, out, "/out", 0);
	if (!rc)
		rc = vmproc_cmd_file(cmd, "/data/numbers", 0444, &numbers, &calls);
	if (rc) {
		fprintf(stderr, "host_files: %s\n", cmd ? vmproc_cmd_error(cmd) : "out of memory");
		vmproc_cmd_free(cmd);
		return 1;
	}
	vmproc_status st;
	vmproc_child *child = NULL;
	rc = vmproc_output(cmd, NULL, &st, &child);
	if (child) {
		size_t len;
		const char *text = vmproc_child_output(child, VMPROC_STDOUT, &len);
		fwrite(text ? text : "", 1, text ? len : 0, stdout);
		const char *err = vmproc_child_output(child, VMPROC_STDERR, &len);
		fwrite(err ? err : "", 1, err ? len : 0, stderr);
		if (rc < 0)
			fprintf(stderr, "host_files: %s\n", vmproc_child_error(child));
	} else {
		fprintf(stderr, "host_files: %s\n", vmproc_cmd_error(cmd));
	}
	printf("(%u read callbacks; the copy is in %s/copy.txt)\n", calls, out);
	vmproc_child_free(child);
	vmproc_cmd_free(cmd);
	return rc == 0 && st.exited ? st.code : 1;
}
