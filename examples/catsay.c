/* Embedding libvmproc: what `echo hello | vmproc run /bin/catsay` does,
 * from C, with the program's standard input given from memory and its
 * standard output captured, then printed here.
 *
 *   build/examples/catsay                  # a cat says "hello"
 *   build/examples/catsay --dog Woof woof  # a dog says "Woof woof"
 *
 * Build against an installed vmproc with:
 *   cc catsay.c $(pkg-config --cflags --libs vmproc)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmproc.h>

/* The words of argv joined by spaces, and a newline: catsay's input. */
static char *join_text(int argc, char **argv)
{
	size_t len = 1;
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	char *text = malloc(len + 1);
	if (!text)
		return NULL;
	text[0] = '\0';
	for (int i = 0; i < argc; i++) {
		if (i)
			strcat(text, " ");
		strcat(text, argv[i]);
	}
	strcat(text, "\n");
	return text;
}

int main(int argc, char **argv)
{
	int dog = argc > 1 && !strcmp(argv[1], "--dog");
	int first = dog ? 2 : 1;
	static char *hello[] = {"hello"};
	char *text = first < argc ? join_text(argc - first, argv + first) : join_text(1, hello);
	vmproc_config *cfg = NULL;
	vmproc_cmd *cmd = NULL;
	int status = 1;
	if (!text || vmproc_config_new(&cfg) || vmproc_cmd_new(&cmd, "/bin/catsay"))
		goto out;
	/* A guest that hangs must not hang us. */
	vmproc_config_set_timeout_ms(cfg, 10 * 60 * 1000);
	if (vmproc_cmd_stdin_buffer(cmd, text, strlen(text)) ||
	    (dog && vmproc_cmd_env(cmd, "CATSAY_MODE", "dog"))) {
		fprintf(stderr, "catsay: %s\n", vmproc_cmd_error(cmd));
		goto out;
	}

	/* Boots a VM, runs catsay in it to the end, with stdout and stderr
	 * captured. */
	vmproc_status st;
	vmproc_child *child = NULL;
	int rc = vmproc_output(cmd, cfg, &st, &child);
	if (!child) {
		fprintf(stderr, "catsay: %s\n", vmproc_cmd_error(cmd));
		goto out;
	}
	size_t out_len = 0, err_len = 0;
	const char *out = vmproc_child_output(child, VMPROC_STDOUT, &out_len);
	const char *err = vmproc_child_output(child, VMPROC_STDERR, &err_len);
	if (out)
		fwrite(out, 1, out_len, stdout);
	if (err)
		fwrite(err, 1, err_len, stderr);
	if (rc)
		fprintf(stderr, "catsay: %s\n", vmproc_child_error(child));
	else if (st.exited)
		status = st.code;
	else
		fprintf(stderr, "catsay: killed by signal %d\n", st.signal);
	vmproc_child_free(child);
out:
	vmproc_cmd_free(cmd);
	vmproc_config_free(cfg);
	free(text);
	return status;
}
