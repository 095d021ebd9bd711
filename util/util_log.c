/*
 * util_log.c - one-line log messages with level and module.
 *
 * The level is read once from SHALEFS_LOG; after that it is a relaxed
 * atomic so any thread may log without a lock. Each line is formatted
 * into a local buffer and written with one write(2) so lines from
 * different threads never interleave.
 */
#include "util/util.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = -1;
static atomic_int log_syslog;
static atomic_uint_fast64_t log_counts[4];

static enum util_log_level util_log_level_from_env(void)
{
	const char *e = getenv("SHALEFS_LOG");
	if (!e)
		return UTIL_LOG_WARN;
	if (!strcmp(e, "error")) return UTIL_LOG_ERROR;
	if (!strcmp(e, "info")) return UTIL_LOG_INFO;
	if (!strcmp(e, "debug")) return UTIL_LOG_DEBUG;
	return UTIL_LOG_WARN;
}

void util_log_set_level(enum util_log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum util_log_level util_log_get_level(void)
{
	int l = atomic_load_explicit(&log_level, memory_order_relaxed);
	if (l < 0) {
		l = (int)util_log_level_from_env();
		atomic_store(&log_level, l);
	}
	return (enum util_log_level)l;
}

void util_log_use_syslog(int on)
{
	atomic_store(&log_syslog, on);
}

uint64_t util_log_count(enum util_log_level level)
{
	return atomic_load(&log_counts[level]);
}

void util_vlog(enum util_log_level level, const char *module, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[1024];
	int saved = errno;
	size_t n;

	if ((int)level > (int)util_log_get_level())
		return;
	atomic_fetch_add(&log_counts[level], 1);
	if (atomic_load(&log_syslog)) {
		int k = snprintf(line, sizeof(line), "%s: ", module);
		if (k < 0)
			k = 0;
		vsnprintf(line + k, sizeof(line) - (size_t)k, fmt, ap);
		syslog(prio[level], "%s", line);
		errno = saved;
		return;
	}
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int k = snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld shalefs[%d] %s %s: ",
			 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
			 (int)getpid(), names[level], module);
	if (k < 0)
		k = 0;
	if ((size_t)k < sizeof(line))
		vsnprintf(line + k, sizeof(line) - (size_t)k, fmt, ap);
	n = strnlen(line, sizeof(line) - 2);
	line[n++] = '\n';
	/* One write per line; a short write to stderr is not worth retrying. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
	errno = saved;
}

void util_log(enum util_log_level level, const char *module, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	util_vlog(level, module, fmt, ap);
	va_end(ap);
}
