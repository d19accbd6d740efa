/* What the CLI's subcommands share for parsing their command lines. */
#include <errno.h>
#include <stdlib.h>

#include "options.h"

int cli_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return -1;
	*out = v;
	return 0;
}
