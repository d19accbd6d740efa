/* Pure helpers of the guest init; see init_logic.h. */
#define _GNU_SOURCE
#include "init_logic.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>

/* Keep in step with INIT_CHILD_PATH. */
const char *const init_path_dirs[] = {
    "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", NULL,
};

void init_line_add(struct init_line *line, const char *s)
{
	size_t room = sizeof(line->buf) - 1 - line->len;
	size_t n = strlen(s);

	if (n > room)
		n = room;
	memcpy(line->buf + line->len, s, n);
	line->len += n;
	line->buf[line->len] = '\0';
}

void init_line_add_uint(struct init_line *line, unsigned value)
{
	char digits[16];
	size_t i = sizeof(digits) - 1;

	digits[i] = '\0';
	do {
		digits[--i] = (char)('0' + value % 10);
		value /= 10;
	} while (value != 0);
	init_line_add(line, digits + i);
}

int init_exit_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	/* Not reachable without WUNTRACED/WCONTINUED; say "failed" anyway
	 * rather than pretend success. */
	return 1;
}

int init_exec_failure_status(int err)
{
	return err == ENOENT ? 127 : 126;
}

bool init_system_disk_absent(int err)
{
	/* ENOENT: devtmpfs has no /dev/vda node. ENXIO: the node is there
	 * but no device behind it. */
	return err == ENOENT || err == ENXIO;
}

/* The kernel hands init every unknown key=value word of its command line
 * as an environment string, but silently drops words containing a dot
 * ("vmproc.debug" looks like a module parameter, see unknown_bootoption()
 * in init/main.c). So the switch is spelled vmproc_debug=1: it costs no
 * system call to find, unlike reading /proc/cmdline. */
bool init_debug_requested(char *const envp[])
{
	static const char key[] = "vmproc_debug=";

	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
		if (strncmp(envp[i], key, sizeof(key) - 1) != 0)
			continue;
		const char *value = envp[i] + sizeof(key) - 1;
		return value[0] != '\0' && strcmp(value, "0") != 0;
	}
	return false;
}

bool init_join_path(char *buf, size_t cap, const char *dir, const char *file)
{
	size_t dlen = strlen(dir);
	size_t flen = strlen(file);

	if (cap == 0 || dlen + 1 + flen >= cap)
		return false;
	memcpy(buf, dir, dlen);
	buf[dlen] = '/';
	memcpy(buf + dlen + 1, file, flen + 1);
	return true;
}
