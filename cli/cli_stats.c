/*
 * cli_stats.c - `shalefs stats`: where the counters come from.
 *
 *   shalefs stats [--watch N|--json|--raw] MOUNTPOINT
 *       MOUNTPOINT/.shalefs/stats (counters) and .shalefs/info (text:
 *       store, mode, last error) of the running daemon
 *   shalefs stats [-o ...] [--watch N|--json|--raw] STORE
 *       the store opened read-only by this command: the filesystem,
 *       engine and store counters of that open, rendered the same way
 *
 * This file picks the source and the output; the samples are taken by
 * cli_stats_sample.c and rendered by cli_stats_show.c, which uses the
 * sampler too and never calls back here.
 *
 * Without a flag the output is a short summary; the rates in it come
 * from two samples CLI_STATS_GAP_MS apart (cli_stats_show.c). --raw
 * prints the stats file as it is, one "key: value" line per counter:
 * scripts parse that form.
 *
 * Exit codes: 0 success (also --watch ended by Ctrl-C or SIGTERM),
 * 1 failure (one line on stderr naming the cause).
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --raw: the stats file as it is. */
static int cli_stats_raw(struct cli_stats_src *src)
{
	struct cli_stats_snap s;
	int code = 1;

	if (cli_stats_sample(src, &s))
		return 1;
	if (fputs(s.stats, stdout) != EOF && fflush(stdout) == 0)
		code = 0;
	cli_stats_snap_free(&s);
	return code;
}

static int cli_stats_run(struct cli_stats_src *src, const struct cli_opts *o)
{
	if (o->flags & CLI_F_RAW)
		return cli_stats_raw(src);
	if (o->flags & CLI_F_WATCH)
		return cli_stats_watch(src, o->watch_s);
	return cli_stats_show(src, (o->flags & CLI_F_JSON) != 0);
}

int cli_stats(int argc, char **argv)
{
	struct cli_opts *o = NULL;
	struct obj_backend *store = NULL;
	struct kv_db *db = NULL;
	struct fs *fs = NULL;
	struct fs_config fc = FS_CONFIG_INIT;
	struct cli_stats_src src = { .mp = NULL };
	struct stat st;
	unsigned modes;
	int rc, code = 1;

	rc = cli_parse_store_args(argc, argv, NULL, &o);
	if (rc)
		return rc > 0 ? 0 : 1;
	if (cli_only_flags(o, CLI_F_JSON | CLI_F_RAW | CLI_F_WATCH, "stats"))
		goto out;
	modes = o->flags & (CLI_F_JSON | CLI_F_RAW | CLI_F_WATCH);
	if (modes & (modes - 1)) {
		cli_err("shalefs stats takes one of --watch, --json and --raw");
		goto out;
	}
	if (!strstr(cli_opts_store(o), "://")) {
		const char *mp = cli_opts_store(o);
		if (stat(mp, &st) != 0 && errno == ENOTCONN) {
			cli_err_stale(mp);
		} else if (stat(mp, &st) != 0) {
			cli_err("%s: %s (expected a mount point or a store URL)", mp,
				strerror(errno));
		} else if (!S_ISDIR(st.st_mode)) {
			cli_err("%s is not a directory (expected a mount point or a store URL)", mp);
		} else {
			src.mp = mp;
			code = cli_stats_run(&src, o);
		}
		goto out;
	}
	if (cli_open_readonly(o, &store, &db))
		goto out;
	fc.readonly = 1;
	fc.store_url = cli_opts_store(o);
	fc.checkpoint = o->checkpoint;
	rc = fs_alloc(&fs, &fc);
	if (!rc)
		rc = fs_start(fs, db, store);
	if (rc) {
		cli_err("store %s: reading the filesystem failed: %s", cli_opts_store(o),
			kv_strerror(rc));
		goto out;
	}
	src.fs = fs;
	src.store_url = cli_opts_store(o);
	src.checkpoint = o->checkpoint;
	code = cli_stats_run(&src, o);
out:
	if (fs) {
		(void)fs_stop(fs);
		fs_free(fs);
	}
	if (db)
		(void)kv_close(db);
	obj_close(store);
	cli_opts_release(o);
	return code;
}
