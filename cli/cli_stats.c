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

/* Read all of path into *out (NUL-terminated, the caller's). Returns 0 or
 * -errno. */
static int cli_stats_read_file(const char *path, char **out)
{
	char *buf = NULL, *t;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		if (cap - len < 4097) {
			cap = cap ? cap * 2 : 16384;
			t = realloc(buf, cap);
			if (!t) {
				rc = -ENOMEM;
				break;
			}
			buf = t;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

int cli_stats_sample(struct cli_stats_src *src, struct cli_stats_snap *out)
{
	char path[PATH_MAX + 32];
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	out->at_ns = util_now_ns();
	out->wall_ns = util_wall_ns();
	if (src->fs)
		return fs_stats_render(src->fs, &out->stats, &len) ? -ENOMEM : 0;
	snprintf(path, sizeof(path), "%s/%s/stats", src->mp, FS_CTL_NAME);
	rc = cli_stats_read_file(path, &out->stats);
	if (rc) {
		if (rc == -ENOENT)
			cli_err("%s is not a ShaleFS mount point (no %s/stats)", src->mp,
				FS_CTL_NAME);
		else if (rc == -ENOTCONN)
			cli_err_stale(src->mp);
		else
			cli_err("%s: %s", path, strerror(-rc));
		return rc;
	}
	/* A daemon from before the info file has none: the summary says
	 * less, nothing fails. */
	snprintf(path, sizeof(path), "%s/%s/info", src->mp, FS_CTL_NAME);
	if (cli_stats_read_file(path, &out->info) != 0)
		out->info = NULL;
	return 0;
}

void cli_stats_snap_free(struct cli_stats_snap *s)
{
	free(s->stats);
	free(s->info);
	memset(s, 0, sizeof(*s));
}

/* The value of "key: value" line key in text, borrowed up to its end of
 * line (*vlen bytes); NULL when absent. */
static const char *cli_stats_find(const char *text, const char *key, size_t *vlen)
{
	size_t k = strlen(key);
	const char *p = text, *e;

	while (p && *p) {
		e = strchr(p, '\n');
		if (!strncmp(p, key, k) && p[k] == ':' && p[k + 1] == ' ') {
			*vlen = (e ? (size_t)(e - p) : strlen(p)) - k - 2;
			return p + k + 2;
		}
		p = e ? e + 1 : NULL;
	}
	return NULL;
}

int cli_stats_get(const struct cli_stats_snap *s, const char *key, uint64_t *out)
{
	size_t n;
	const char *v = s->stats ? cli_stats_find(s->stats, key, &n) : NULL;

	*out = 0;
	if (!v)
		return -ENOENT;
	*out = strtoull(v, NULL, 10);
	return 0;
}

uint64_t cli_stats_u(const struct cli_stats_snap *s, const char *key)
{
	uint64_t v;

	(void)cli_stats_get(s, key, &v);
	return v;
}

const char *cli_stats_info(const struct cli_stats_snap *s, const char *key, char *buf, size_t len)
{
	size_t n;
	const char *v = s->info ? cli_stats_find(s->info, key, &n) : NULL;

	if (!v || !len)
		return NULL;
	if (n >= len)
		n = len - 1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return buf;
}

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
