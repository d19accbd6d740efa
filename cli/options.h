/* What the CLI's subcommands share for parsing their command lines. */
#ifndef VMP_CLI_OPTIONS_H
#define VMP_CLI_OPTIONS_H

/* A decimal number <= max into *out; -1 if s is not one. */
int cli_parse_uint(const char *s, unsigned long max, unsigned long *out);

#endif
