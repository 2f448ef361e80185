// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "isola";
static _Atomic int log_threshold = LOG_LEVEL_INFO;

/* The sink: changed by the API thread while vCPU threads log, so the fd is
 * only used under the lock (a closed fd could be reused by then). */
static pthread_mutex_t log_sink_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_sink_fd = -1;
static bool log_sink_show_level, log_sink_show_origin;

void log_set_program(const char *name)
{
	log_program = name;
}

void log_set_level(enum log_level level)
{
	atomic_store(&log_threshold, level);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&log_threshold);
}

int log_set_sink(const char *path, bool show_level, bool show_origin)
{
	int fd = -1, old;

	if (path) {
		/* O_NONBLOCK: a FIFO without a reader fails now (ENXIO), and a
		 * full one drops lines instead of stalling a vCPU thread. */
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
	}
	pthread_mutex_lock(&log_sink_lock);
	old = log_sink_fd;
	log_sink_fd = fd;
	log_sink_show_level = show_level;
	log_sink_show_origin = show_origin;
	pthread_mutex_unlock(&log_sink_lock);
	if (old >= 0)
		close(old);
	return 0;
}

/* log_set_module's prefix (under log_sink_lock), NULL: every line. */
static char *log_sink_module;

int log_set_module(const char *prefix)
{
	char *copy = NULL, *old;

	if (prefix && !(copy = strdup(prefix)))
		return -ENOMEM;
	pthread_mutex_lock(&log_sink_lock);
	old = log_sink_module;
	log_sink_module = copy;
	pthread_mutex_unlock(&log_sink_lock);
	free(old);
	return 0;
}

static void log_write_sink(enum log_level level, const char *file, int line, const char *text)
{
	static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
	struct timespec now;
	struct tm tm;
	char stamp[32] = "", where[96] = "", buf[1280];
	int len;

	clock_gettime(CLOCK_REALTIME, &now);
	if (gmtime_r(&now.tv_sec, &tm))
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_sink_show_origin && file)
		snprintf(where, sizeof(where), "%s:%d ", file, line);
	len = snprintf(buf, sizeof(buf), "%s.%06ldZ [%s%s%s] %s%s\n", stamp, now.tv_nsec / 1000,
		       log_program, log_sink_show_level ? ":" : "",
		       log_sink_show_level ? names[level] : "", where, text);
	if (len > (int)sizeof(buf) - 1)
		len = (int)sizeof(buf) - 1;
	if (write(log_sink_fd, buf, (size_t)len) < 0) {
		/* EAGAIN: the reader is slow; the line is dropped, never waited for */
	}
}

static void log_vmsg(enum log_level level, const char *file, int line, const char *fmt, va_list ap)
{
	static const char *const prefix[] = {"", "warning: ", "", "debug: "};
	bool to_stderr = true;
	char text[1024];

	if (level < LOG_LEVEL_ERROR || level > LOG_LEVEL_DEBUG ||
	    (int)level > atomic_load(&log_threshold))
		return;
	vsnprintf(text, sizeof(text), fmt, ap);
	pthread_mutex_lock(&log_sink_lock);
	if (log_sink_fd >= 0) {
		if (!log_sink_module ||
		    (file && !strncmp(file, log_sink_module, strlen(log_sink_module))))
			log_write_sink(level, file, line, text);
		to_stderr = level == LOG_LEVEL_ERROR;
	}
	pthread_mutex_unlock(&log_sink_lock);
	/* One write per line so lines from different threads never interleave.
	 * "\r\n": the console may be in raw mode. */
	if (to_stderr)
		fprintf(stderr, "%s: %s%s\r\n", log_program, prefix[level], text);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, NULL, 0, fmt, ap);
	va_end(ap);
}

void log_msg_at(enum log_level level, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, file, line, fmt, ap);
	va_end(ap);
}

int error_text(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}
