/*
 * util.h - the few helpers every ShaleFS module shares: logging, clocks,
 * a seeded PRNG, CRC32C and big-endian integer codecs.
 *
 * Nothing here knows about objects, keys or inodes. Every function is
 * thread-safe unless its comment says otherwise.
 */
#ifndef SHALE_UTIL_H
#define SHALE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* ---- logging ------------------------------------------------------------
 * One line per message on stderr, in a log file (util_log_open_file) or in
 * syslog, each with a UTC timestamp, the level, the module and the store
 * tag (util_log.c shows the format). Secrets must never be passed here:
 * callers log object names and causes, never credentials.
 */
enum util_log_level {
	UTIL_LOG_ERROR = 0,
	UTIL_LOG_WARN = 1,
	UTIL_LOG_INFO = 2,
	UTIL_LOG_DEBUG = 3,
};

/* Messages above this level are dropped. Default WARN, or the value of
 * SHALEFS_LOG (error|warn|info|debug) read at the first log call; a level
 * set here wins over SHALEFS_LOG. */
void util_log_set_level(enum util_log_level level);
enum util_log_level util_log_get_level(void);
/* "error", "warn", "info" or "debug" into *out. Returns 0 or -EINVAL. */
int util_log_level_parse(const char *s, enum util_log_level *out);
/* Name the store in every line from now on (a URL; NULL or "" for none).
 * Not thread-safe: call it before other threads log. */
void util_log_set_tag(const char *tag);
/* Send log lines to syslog (daemon mode, ident "shalefs") instead of
 * stderr or the log file. */
void util_log_use_syslog(int on);
/* 1 when /dev/log is a socket that accepts a connection, else 0. */
int util_log_syslog_reachable(void);
/*
 * Append log lines to path (absolute) from now on instead of stderr or
 * syslog: opened O_APPEND|O_CLOEXEC, created 0640, on a descriptor >= 3
 * that stays open for the life of the process. Calling it again switches
 * to another path. Returns 0, -EINVAL (not absolute), -ENAMETOOLONG or
 * the open's -errno (the previous sink is kept).
 */
int util_log_open_file(const char *path);
/*
 * Open the log file's path again (after logrotate renamed it) and write
 * there from now on; the switch is atomic for threads logging meanwhile.
 * Logs one line saying so (info), or why not (warn: the old file stays in
 * use). Returns 0, 1 when no log file is in use (nothing done), or -errno.
 * Not async-signal-safe: call it from a thread, never a signal handler.
 */
int util_log_reopen(void);

void util_log(enum util_log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void util_vlog(enum util_log_level level, const char *module, const char *fmt, va_list ap);

#define UTIL_ERROR(mod, ...) util_log(UTIL_LOG_ERROR, mod, __VA_ARGS__)
#define UTIL_WARN(mod, ...)  util_log(UTIL_LOG_WARN, mod, __VA_ARGS__)
#define UTIL_INFO(mod, ...)  util_log(UTIL_LOG_INFO, mod, __VA_ARGS__)
#define UTIL_DEBUG(mod, ...) \
	do { if (util_log_get_level() >= UTIL_LOG_DEBUG) util_log(UTIL_LOG_DEBUG, mod, __VA_ARGS__); } while (0)

/* Count of ERROR/WARN lines logged so far (for tests and stats). */
uint64_t util_log_count(enum util_log_level level);
/*
 * The last ERROR or WARN message, whatever the level filter lets through
 * (for `shalefs stats`): returns its wall-clock time in ns, 0 when there
 * was none; *level gets its level and buf (len bytes, NUL-terminated)
 * "MODULE: message". Thread-safe.
 */
uint64_t util_log_last_problem(enum util_log_level *level, char *buf, size_t len);

/* ---- pthread checking -----------------------------------------------------
 * pthread calls on our own, correctly initialised objects cannot fail
 * unless memory is corrupt: that is an invariant, so assert it. */
#include <assert.h>
#define CHECK_RETURN(x) do { int _r = (x); (void)_r; assert(_r == 0); } while (0)

/* ---- threads ------------------------------------------------------------- */
/*
 * Name the calling thread (top -H and ps -L show it; at most 15 bytes)
 * and, when background is set, lower its CPU priority to nice 10, so it
 * gets the CPU mostly when foreground threads leave it (RocksDB can do the
 * same for compaction threads). Threads it then creates inherit the
 * priority. Not 19: on a machine kept busy by other processes a nice-19
 * compactor would all but stop, and writers wait for it at l0_max; at 10
 * it keeps about a tenth of a core against each busy nice-0 thread.
 * Linux only; elsewhere, or when the kernel refuses, nothing changes:
 * both are hints.
 */
void util_thread_setup(const char *name, int background);

/* ---- clocks -------------------------------------------------------------- */
uint64_t util_now_ns(void);        /* CLOCK_MONOTONIC */
uint64_t util_wall_ns(void);       /* CLOCK_REALTIME */
/* The CLOCK_REALTIME time ns from now, for pthread_cond_timedwait. */
struct timespec util_wall_after_ns(uint64_t ns);
void util_sleep_ns(uint64_t ns);

/* ---- latency histograms (util_hist.c) ------------------------------------
 * A fixed set of log-spaced bucket bounds, 1-2.5-5 per decade from 10 us
 * to 10 s (util_hist_bounds_ns), and one more bucket for anything slower.
 * Recording is lock-free: relaxed atomic adds into one of
 * UTIL_HIST_SHARDS copies, each padded to whole cache lines and chosen
 * per thread, so that threads on different CPUs rarely write the same
 * line. A reader adds the shards up; it may see a record's bucket before
 * its sum (or the other way round), never a torn counter. */
#define UTIL_HIST_BOUNDS 19                 /* finite bucket bounds */
#define UTIL_HIST_SHARDS 4
extern const uint64_t util_hist_bounds_ns[UTIL_HIST_BOUNDS];

struct util_hist_shard {
	_Atomic uint64_t bucket[UTIL_HIST_BOUNDS + 1]; /* last: +Inf */
	_Atomic uint64_t sum_ns;
	/* Padding to a multiple of a cache line, not _Alignas: the owners
	 * are calloc'd, which does not promise 64-byte alignment. */
	char pad[64 - ((UTIL_HIST_BOUNDS + 2) * 8) % 64];
};
/* Zero-initialised (calloc, static or = {0}) is an empty histogram. */
struct util_hist {
	struct util_hist_shard shard[UTIL_HIST_SHARDS];
};
/* A reader's copy: per-bucket (not cumulative) counts, their total and
 * the sum of the recorded durations. */
struct util_hist_snap {
	uint64_t bucket[UTIL_HIST_BOUNDS + 1];
	uint64_t count;
	uint64_t sum_ns;
};
/* Record one duration of ns nanoseconds. Thread-safe, no allocation. */
void util_hist_record(struct util_hist *h, uint64_t ns);
/* The same for the time since start_ns (util_now_ns). */
static inline void util_hist_since(struct util_hist *h, uint64_t start_ns)
{
	uint64_t now = util_now_ns();
	util_hist_record(h, now > start_ns ? now - start_ns : 0);
}
/* Add h's counts into out (zero it first for a single histogram). */
void util_hist_read(const struct util_hist *h, struct util_hist_snap *out);

/* ---- PRNG ---------------------------------------------------------------
 * splitmix64-seeded xoshiro256**: fast, reproducible from a seed. One
 * struct per thread (not thread-safe). */
struct util_rand {
	uint64_t s[4];
};
void util_rand_seed(struct util_rand *r, uint64_t seed);
uint64_t util_rand_next(struct util_rand *r);
/* Uniform in [0, n); n > 0. */
uint64_t util_rand_below(struct util_rand *r, uint64_t n);
/* Uniform in [0, 1). */
double util_rand_unit(struct util_rand *r);
/* A fresh seed from the OS (getrandom), never 0. */
uint64_t util_rand_os_seed(void);
/* Fill buf with len random bytes from the OS. Returns 0 or -errno. */
int util_random_bytes(void *buf, size_t len);

/* ---- CRC32C (Castagnoli) ------------------------------------------------- */
uint32_t util_crc32c(uint32_t crc, const void *data, size_t len);

/* ---- big-endian codecs --------------------------------------------------- */
static inline void util_put_be16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static inline void util_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = (uint8_t)v;
}
static inline void util_put_be64(uint8_t *p, uint64_t v)
{
	util_put_be32(p, (uint32_t)(v >> 32));
	util_put_be32(p + 4, (uint32_t)v);
}
static inline uint16_t util_get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t util_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t util_get_be64(const uint8_t *p)
{
	return (uint64_t)util_get_be32(p) << 32 | util_get_be32(p + 4);
}

/* ---- checked size arithmetic ---------------------------------------------
 * Return 0 and store the result, or -EOVERFLOW. */
int util_size_add(size_t *out, size_t a, size_t b);
int util_size_mul(size_t *out, size_t a, size_t b);
/* Room for element n of the array *vp (void **: the address of the array
 * pointer) of *cap elements of `elem` bytes: grows it (doubling, at least
 * 16) when n == *cap. 0, or -ENOMEM with the array left as it was. */
int util_grow(void *vp, size_t *cap, size_t n, size_t elem);
/*
 * util_big_alloc - malloc for a buffer of many MiB that is written once
 * whole (an object about to be stored): from UTIL_BIG_ALLOC bytes on it
 * is 2 MiB-aligned and asks for transparent huge pages, because on a VM
 * every 4 KiB page fault of a fresh buffer costs more than what is then
 * written to it (encrypting a 64 MiB table into fresh memory ran at a
 * fifth of the speed it ran at into huge pages). Freed with free(); NULL
 * when out of memory.
 */
#define UTIL_BIG_ALLOC ((size_t)4 << 20)
void *util_big_alloc(size_t n);

/* ---- processes and hosts (util_proc.c) ----------------------------------
 * Enough identity to tell, from another process, whether a recorded
 * process can still be running: see the DESIGN block of util_proc.c. */
struct util_proc_id {
	char host[256];                  /* host name */
	char host_id[64];                /* machine id, survives reboots; "" unknown */
	char boot_id[40];                /* id of the running boot; "" unknown */
	uint64_t pid_ns;                 /* pid namespace inode; 0 unknown */
	int64_t pid;
	uint64_t start;                  /* start time in ticks since boot; 0 unknown */
};
enum util_proc_state {
	UTIL_PROC_ALIVE = 0,             /* this host and pid namespace, still running */
	UTIL_PROC_DEAD = 1,              /* this host: gone (pid gone, reused, or rebooted) */
	UTIL_PROC_FOREIGN = 2,           /* another host or pid namespace: cannot tell */
};
/* Fill id with the calling process's identity. Returns 0. */
int util_proc_self(struct util_proc_id *id);
enum util_proc_state util_proc_state(const struct util_proc_id *id);
/* 1 when a and b name the same host (machine id and host name). */
int util_proc_same_host(const struct util_proc_id *a, const struct util_proc_id *b);
/* Start time of pid in clock ticks since boot; 0 when it cannot be read. */
uint64_t util_proc_start_time(int64_t pid);

/* Human-readable errno text that is safe to call from any thread. */
const char *util_strerror(int err);

#endif /* SHALE_UTIL_H */
