/*
 * util_log.c - one-line log messages with a timestamp, level, module and
 * store tag, sent to stderr, an append-only file, or syslog.
 *
 * LINE FORMAT (stderr and file)
 *   2025-03-01T12:34:56.789Z shalefs[PID] TAG LEVEL MODULE: message
 *   The timestamp is UTC wall-clock time with milliseconds (ISO 8601);
 *   TAG is the store URL set by util_log_set_tag, left out (with its
 *   space) when none was set. Syslog lines are "TAG MODULE: message":
 *   syslog adds the time, the level and the pid itself.
 *
 * SINKS
 *   stderr until util_log_open_file or util_log_use_syslog chooses
 *   another. The file sink is a descriptor number (>= 3) that never
 *   changes once chosen: util_log_reopen opens the path again and dup3()s
 *   the new file onto that number, so a thread writing at that moment
 *   writes whole lines into either the old file or the new one, never into
 *   a closed or reused descriptor. That is what logrotate needs: rename
 *   the file, then SIGHUP the daemon, which calls util_log_reopen.
 *
 * THREADS
 *   The level, the sink and the descriptor are atomics, so any thread may
 *   log without a lock. Each line is formatted into a local buffer and
 *   written with one write(2) (O_APPEND for files), so lines from
 *   different threads never interleave. log_file_lock serialises
 *   util_log_open_file and util_log_reopen (the path and the descriptor);
 *   it is never taken while logging.
 */
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = -1;
static atomic_int log_syslog;
static atomic_int log_fd = STDERR_FILENO;   /* where non-syslog lines go */
static atomic_uint_fast64_t log_counts[4];

/* The store tag: written once by util_log_set_tag, before threads log. */
static char log_tag[512];

/* The last ERROR or WARN message (util_log_last_problem); log_last_lock
 * is held only to copy the text, never across I/O. */
static pthread_mutex_t log_last_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_last_text[512];     /* protected by log_last_lock */
static uint64_t log_last_ns;        /* protected by log_last_lock; 0 = none */
static enum util_log_level log_last_level; /* protected by log_last_lock */

static pthread_mutex_t log_file_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_path[PATH_MAX];     /* protected by log_file_lock; "" = no file */
static int log_file_fd = -1;        /* protected by log_file_lock */

int util_log_level_parse(const char *s, enum util_log_level *out)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	for (int i = 0; i < 4; i++)
		if (s && strcmp(s, names[i]) == 0) {
			*out = (enum util_log_level)i;
			return 0;
		}
	return -EINVAL;
}

static enum util_log_level util_log_level_from_env(void)
{
	enum util_log_level l;

	if (util_log_level_parse(getenv("SHALEFS_LOG"), &l) != 0)
		return UTIL_LOG_WARN;
	return l;
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

void util_log_set_tag(const char *tag)
{
	snprintf(log_tag, sizeof(log_tag), "%s", tag ? tag : "");
}

void util_log_use_syslog(int on)
{
	if (on)
		openlog("shalefs", LOG_PID, LOG_DAEMON);
	atomic_store(&log_syslog, on);
}

int util_log_syslog_reachable(void)
{
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
	struct sockaddr_un a;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", "/dev/log");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
		int ok;

		if (fd < 0)
			continue;
		ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return 1;
	}
	return 0;
}

/* Open path for appending, on a descriptor >= 3 (0-2 are stdio, which the
 * daemon points at /dev/null). Returns the descriptor or -errno. */
static int util_log_open_fd(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	int hi;

	if (fd < 0)
		return -errno;
	if (fd > STDERR_FILENO)
		return fd;
	hi = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	if (hi < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	return hi;
}

/* Put a fresh open of log_path on log_file_fd. Caller holds log_file_lock. */
static int util_log_reopen_locked(void)
{
	int fd = util_log_open_fd(log_path);

	if (fd < 0)
		return fd;
	if (log_file_fd < 0) {
		log_file_fd = fd;
		return 0;
	}
	if (dup3(fd, log_file_fd, O_CLOEXEC) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	return 0;
}

int util_log_open_file(const char *path)
{
	char old[PATH_MAX];
	int rc;

	if (!path || path[0] != '/')
		return -EINVAL;
	if (strlen(path) >= sizeof(log_path))
		return -ENAMETOOLONG;
	CHECK_RETURN(pthread_mutex_lock(&log_file_lock));
	memcpy(old, log_path, sizeof(old));
	snprintf(log_path, sizeof(log_path), "%s", path);
	rc = util_log_reopen_locked();
	if (rc) {
		memcpy(log_path, old, sizeof(old));
	} else {
		atomic_store(&log_fd, log_file_fd);
		atomic_store(&log_syslog, 0);
	}
	CHECK_RETURN(pthread_mutex_unlock(&log_file_lock));
	return rc;
}

int util_log_reopen(void)
{
	char path[PATH_MAX];
	int rc;

	CHECK_RETURN(pthread_mutex_lock(&log_file_lock));
	if (log_file_fd < 0) {
		CHECK_RETURN(pthread_mutex_unlock(&log_file_lock));
		return 1;
	}
	rc = util_log_reopen_locked();
	memcpy(path, log_path, sizeof(path));
	CHECK_RETURN(pthread_mutex_unlock(&log_file_lock));
	/* Logged after the switch, so the line lands in the new file (or, on
	 * failure, in the old one, which stays open). */
	if (rc)
		UTIL_WARN("log", "cannot reopen the log file %s: %s; still writing to the "
			  "file opened before", path, util_strerror(-rc));
	else
		UTIL_INFO("log", "reopened the log file %s", path);
	return rc;
}

uint64_t util_log_count(enum util_log_level level)
{
	return atomic_load(&log_counts[level]);
}

uint64_t util_log_last_problem(enum util_log_level *level, char *buf, size_t len)
{
	uint64_t t;

	CHECK_RETURN(pthread_mutex_lock(&log_last_lock));
	t = log_last_ns;
	*level = log_last_level;
	if (len)
		snprintf(buf, len, "%s", log_last_text);
	CHECK_RETURN(pthread_mutex_unlock(&log_last_lock));
	return t;
}

/* Keep an ERROR or WARN message for util_log_last_problem. */
static void util_log_keep_problem(enum util_log_level level, const char *module,
				  const char *fmt, va_list ap)
{
	char text[sizeof(log_last_text)];
	size_t n;
	int k = snprintf(text, sizeof(text), "%s: ", module);

	if (k < 0 || (size_t)k >= sizeof(text))
		k = 0;
	vsnprintf(text + k, sizeof(text) - (size_t)k, fmt, ap);
	n = strlen(text);
	while (n > 0 && text[n - 1] == '\n')
		text[--n] = '\0';
	CHECK_RETURN(pthread_mutex_lock(&log_last_lock));
	memcpy(log_last_text, text, n + 1);
	log_last_ns = util_wall_ns();
	log_last_level = level;
	CHECK_RETURN(pthread_mutex_unlock(&log_last_lock));
}

/* Drop the trailing newlines a message may bring (libfuse's do). */
static size_t util_log_trim(char *line, size_t n)
{
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	return n;
}

void util_vlog(enum util_log_level level, const char *module, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[2048];
	const char *sp = log_tag[0] ? " " : "";
	int saved = errno;
	size_t n;
	int k;

	if (level <= UTIL_LOG_WARN) {
		va_list aq;
		va_copy(aq, ap);
		util_log_keep_problem(level, module, fmt, aq);
		va_end(aq);
		errno = saved;         /* for a %m in fmt */
	}
	if ((int)level > (int)util_log_get_level())
		return;
	atomic_fetch_add(&log_counts[level], 1);
	if (atomic_load(&log_syslog)) {
		k = snprintf(line, sizeof(line), "%s%s%s: ", log_tag, sp, module);
		if (k < 0 || (size_t)k >= sizeof(line))
			k = 0;
		vsnprintf(line + k, sizeof(line) - (size_t)k, fmt, ap);
		util_log_trim(line, strlen(line));
		syslog(prio[level], "%s", line);
		errno = saved;
		return;
	}
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	k = snprintf(line, sizeof(line),
		     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ shalefs[%d] %s%s%s %s: ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000000L, (int)getpid(), log_tag, sp,
		     names[level], module);
	if (k < 0)
		k = 0;
	if ((size_t)k < sizeof(line))
		vsnprintf(line + k, sizeof(line) - (size_t)k, fmt, ap);
	n = util_log_trim(line, strnlen(line, sizeof(line) - 2));
	line[n++] = '\n';
	/* One write per line; a short write to a log is not worth retrying. */
	ssize_t w = write(atomic_load(&log_fd), line, n);
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
