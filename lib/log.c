// SPDX-License-Identifier: MIT
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>

static const char *log_program = "isola";
static enum log_level log_threshold = LOG_LEVEL_INFO;

void log_set_program(const char *name)
{
	log_program = name;
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = {"", "warning: ", "", "debug: "};
	char line[1024];
	va_list ap;

	if (level > log_threshold)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line so lines from different threads never interleave.
	 * "\r\n": the console may be in raw mode. */
	fprintf(stderr, "%s: %s%s\r\n", log_program, prefix[level], line);
}
