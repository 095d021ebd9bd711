/*
 * cli_int.h - internals of the cli module, sectioned by defining file.
 * Never included from outside cli/.
 */
#ifndef SHALE_CLI_INT_H
#define SHALE_CLI_INT_H

#include "cli/cli.h"
#include "fs/fs.h"
#include "kv/kv.h"
#include "objstore/objstore.h"
#include "util/util.h"

#include <stdio.h>

#define CLI_LOG "cli"

/* ======================= cli_common.c: errors, usage, arguments ======================= */

/* Print "shalefs: <msg>" to stderr (one line). */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The line for a mount point whose daemon is gone (ENOTCONN): says to run
 * fusermount3 -u on it. */
void cli_err_stale(const char *mp);
/* s as a JSON string literal on stdout, quotes included; NULL prints "". */
void cli_json_str(const char *s);
/* Silence (1) or restore (0) the libraries' log lines on stderr. */
void cli_quiet(int on);
/* The descriptor of the command's own stderr, also while quiet. */
int cli_stderr_fd(void);
/* The usage of command cmd (NULL: of all of them) on f. */
void cli_usage(FILE *f, const char *cmd);
/* Parse argv (without the subcommand) into o; print the usage for --help,
 * the error line otherwise. Returns 0, 1 (--help) or -1 (printed); o is
 * the caller's either way (cli_opts_free). */
int cli_parse(int argc, char **argv, struct cli_opts *o, const char *second);
/* Refuse the --flags that cmd does not take (printed). Returns 0 or -1. */
int cli_only_flags(const struct cli_opts *o, unsigned allowed, const char *cmd);
/* Parse "[-o OPT,...] STORE [SECOND]" for stats/checkpoint. On success *out is the
 * caller's (cli_opts_release). Returns 0, 1 (--help printed), -1 (error
 * printed). */
int cli_parse_store_args(int argc, char **argv, const char *second, struct cli_opts **out);
/* The second positional argument (second != NULL above), borrowed. */
const char *cli_opts_second(const struct cli_opts *o);
void cli_opts_release(struct cli_opts *o);
const char *cli_opts_store(const struct cli_opts *o);

/* ======================= cli_open.c: the store and the engine ======================= */

/* Check o->store: its syntax, and its bucket name against what o's
 * endpoint and path_style allow (no I/O). On success u is the caller's
 * (obj_url_free). Returns 0 or -1 (printed). */
int cli_check_url(const struct cli_opts *o, struct obj_url *u);
/* Open the store behind o->store for a mount (writer: also probe
 * conditional writes), with the disk cache of o's cache_dir= and
 * cache_size= (docs/cache.md). On success *out is the caller's
 * (obj_close). Returns 0 or -1 (printed). */
int cli_open_store(const struct cli_opts *o, int writer, struct obj_backend **out);
/* The same for a writer, creating a file:// directory that is missing (format). */
int cli_open_store_create(const struct cli_opts *o, struct obj_backend **out);
/* Is there a store at o->store (kv_store_check)? A writer marks a store
 * made before the marker existed. Returns 0 or -1 (printed: "no ShaleFS
 * store at URL; create one with `shalefs format URL`", ...). */
int cli_check_store(const struct cli_opts *o, struct obj_backend *store, int writer);
/* Open the engine (after cli_check_store), with the writer lease or a
 * reader registration when lc is not NULL. On success *out is the
 * caller's (kv_close). Returns 0 or -1 (printed; a refused lease names
 * its holder). */
int cli_open_kv(const struct cli_opts *o, struct obj_backend *store, enum kv_open_mode mode,
		struct kv_lease_conf *lc, struct kv_db **out);
/* kv_lease_conf.waiting for the commands: one line saying what it waits
 * for; arg is the struct cli_opts. */
void cli_lease_waiting(void *arg, const struct kv_lease_info *holder);
/* Open store as its writer (lease, no wait) and start and stop the
 * filesystem once: an empty store gets its root directory, orphans a
 * crash left are reclaimed. what ("formatting", "repairing") heads the
 * error line. Returns 0 or -1 (printed). */
int cli_writer_pass(const struct cli_opts *o, struct obj_backend *store, const char *what);
/* Open the store (and engine, read-only). Returns 0 or -1 (printed). */
int cli_open_readonly(const struct cli_opts *o, struct obj_backend **store, struct kv_db **db);
int cli_open_store_only(const struct cli_opts *o, struct obj_backend **store);

/* ======================= cli_ctl.c: a running daemon ======================= */

/* One counter of MOUNTPOINT/.shalefs/stats. Returns 0, -ENOENT (no such
 * counter), or -errno of the open (not a ShaleFS mount: ENOENT too). */
int cli_ctl_stat(const char *mountpoint, const char *key, uint64_t *out);
/* Run one command of the daemon's ctl file (fs_ctl.c): "sync",
 * "checkpoint NAME EXPIRE_NS". reply (len bytes) gets its reply line.
 * Returns 0 or the command's -errno. */
int cli_ctl_command(const char *mountpoint, const char *cmd, char *reply, size_t len);
/* Where daemon pid leaves its exit status (see cli_ctl.c). */
void cli_ctl_status_path(int64_t pid, char *buf, size_t len);
/* Write this process's exit status (daemon, at exit). Best effort. */
void cli_ctl_status_write(int code, const char *why);
/* Read and remove daemon pid's status: returns its code (0, 1) with why,
 * or -ENOENT when it left none. */
int cli_ctl_status_take(int64_t pid, char *why, size_t len);

/* ======================= cli_mount.c: shalefs mount ======================= */

int cli_mount(int argc, char **argv, const char *prog);

/* ======================= cli_metrics.c: -o metrics=, metrics_file= ======================= */

struct cli_metrics;
/*
 * cli_metrics_start - serve the counters of fs, db and store (borrowed:
 * they must outlive cli_metrics_stop) as Prometheus text: over HTTP on
 * o->metrics_addr:o->metrics_port at /metrics (libmicrohttpd's own
 * thread), and/or into o->metrics_file, written once now and then every
 * 15 s by a thread of its own. Neither option: *out is NULL, returns 0.
 * Otherwise *out is the caller's, cli_metrics_stop, on failure too.
 * Returns 0 or -1 (one line printed: a port that cannot be bound, a file
 * that cannot be written).
 */
int cli_metrics_start(struct cli_metrics **out, const struct cli_opts *o, struct fs *fs,
		      struct kv_db *db, struct obj_backend *store);
/* Stop serving, write the file once more (after the filesystem's last
 * flush, before the engine closes), and free. NULL is a no-op. */
void cli_metrics_stop(struct cli_metrics *m);

/* ======================= cli_admin.c: umount, sync, format ======================= */

int cli_umount(int argc, char **argv);
int cli_sync(int argc, char **argv);
int cli_format(int argc, char **argv);

/* ======================= cli_rekey.c: shalefs rekey ======================= */

int cli_rekey(int argc, char **argv);

/* ======================= cli_stats.c: shalefs stats ======================= */

int cli_stats(int argc, char **argv);

/* ======================= cli_stats_sample.c: the counters of a mount or a store ======================= */

/* Where `shalefs stats` reads: a mount point's control files (mp), or a
 * filesystem this process opened read-only on a store (fs, borrowed). */
struct cli_stats_src {
	const char *mp;            /* NULL when fs is set */
	struct fs *fs;
	const char *store_url;     /* with fs: the store's URL, as given */
	const char *checkpoint;    /* with fs: checkpoint=, NULL for the live tree */
};
/* One sample: the stats text ("key: value" counters) and, from a mount
 * point whose daemon has it, the info text (NULL otherwise); both the
 * snapshot's (cli_stats_snap_free). */
struct cli_stats_snap {
	char *stats;
	char *info;
	uint64_t at_ns;            /* monotonic, when sampled */
	uint64_t wall_ns;          /* wall clock, when sampled */
};
/* Take a sample. Returns 0 or -errno (one line printed). */
int cli_stats_sample(struct cli_stats_src *src, struct cli_stats_snap *out);
void cli_stats_snap_free(struct cli_stats_snap *s);
/* Counter key of s into *out (0 when absent). Returns 0 or -ENOENT. */
int cli_stats_get(const struct cli_stats_snap *s, const char *key, uint64_t *out);
/* The same, 0 when absent. */
uint64_t cli_stats_u(const struct cli_stats_snap *s, const char *key);
/* Text value key of s's info into buf (len bytes); returns buf, or NULL
 * when there is no such line (or no info). */
const char *cli_stats_info(const struct cli_stats_snap *s, const char *key, char *buf,
			   size_t len);

/* ======================= cli_scrub.c: fsck --scrub ======================= */

/* Scrub store (already opened and checked); live_who names a live
 * writer (NULL: none). Prints the report; returns the fsck(8) code. */
int cli_fsck_scrub(const struct cli_opts *o, struct obj_backend *store, const char *live_who);

/* ======================= cli_stats_show.c: the summary, --json, --watch ======================= */

/* The summary (json 0) or the JSON object (json 1) on stdout. Returns the
 * exit code (0, or 1 with one line printed). */
int cli_stats_show(struct cli_stats_src *src, int json);
/* One line of rates every period_s seconds until SIGINT or SIGTERM, with
 * a header at the start of each screen. Returns the exit code: 0 when
 * stopped by a signal, 1 when a sample failed (printed). */
int cli_stats_watch(struct cli_stats_src *src, unsigned period_s);

/* ======================= cli_checkpoint.c: shalefs checkpoint ======================= */

int cli_checkpoint(int argc, char **argv);

/* ======================= cli_fsck.c: shalefs fsck ======================= */

int cli_fsck(int argc, char **argv);

#endif /* SHALE_CLI_INT_H */
