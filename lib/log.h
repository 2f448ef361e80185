/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics, prefixed with the program name ("isola: ...").  They go to
 * stderr unless a sink file was set (Firecracker's PUT /logger): then every
 * line goes to the sink, and errors go to stderr too, so a failing VMM still
 * says why on its terminal.
 */
#ifndef ISOLA_LIB_LOG_H
#define ISOLA_LIB_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_OFF = -1,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG
};

void log_set_program(const char *name);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/*
 * Send lines to path (a file, appended to, or a named pipe that already has
 * a reader); NULL goes back to stderr.  show_level adds "[LEVEL]",
 * show_origin adds "file:line".  Writes never block: a full pipe drops the
 * line.  Returns 0 or -errno (the current sink is kept on failure).
 */
int log_set_sink(const char *path, bool show_level, bool show_origin);
/* Only lines logged from source files whose path starts with prefix go to
 * the sink (Firecracker's logger "module"); NULL: all.  Errors still reach
 * stderr.  Copies prefix; 0 or -ENOMEM. */
int log_set_module(const char *prefix);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_msg_at(enum log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Say why in the caller's buffer and return ret, for functions that report
 * failure as -errno plus a sentence:
 *	return error_text(err, errlen, -ENOENT, "%s: no such file", path);
 */
int error_text(char *err, size_t errlen, int ret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_error(...) log_msg_at(LOG_LEVEL_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_msg_at(LOG_LEVEL_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_msg_at(LOG_LEVEL_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_msg_at(LOG_LEVEL_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

#endif
