/* Init's console messages; see report.h. */
#define _GNU_SOURCE
#include "report.h"

#include <string.h>
#include <unistd.h>

bool init_debug;

void init_write_line(struct init_line *line)
{
	init_line_add(line, "\n");
	/* Best effort: there is nobody to tell if the console is gone. */
	ssize_t ignored = write(STDERR_FILENO, line->buf, line->len);
	(void)ignored;
}

void init_say(const char *what, const char *detail)
{
	struct init_line line = {.len = 0};

	init_line_add(&line, "vmproc-init: ");
	init_line_add(&line, what);
	if (detail != NULL) {
		init_line_add(&line, " ");
		init_line_add(&line, detail);
	}
	init_write_line(&line);
}

void init_debug_say(const char *what, const char *detail)
{
	if (init_debug)
		init_say(what, detail);
}

void init_report(const char *call, const char *arg, int err)
{
	struct init_line line = {.len = 0};

	init_line_add(&line, "vmproc-init: ");
	init_line_add(&line, call);
	if (arg != NULL) {
		init_line_add(&line, " ");
		init_line_add(&line, arg);
	}
	init_line_add(&line, ": ");
	init_line_add(&line, strerror(err));
	init_line_add(&line, " (errno ");
	init_line_add_uint(&line, (unsigned)err);
	init_line_add(&line, ")");
	init_write_line(&line);
}
