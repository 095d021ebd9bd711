/*
 * cli_stats_sample.c - one sample of the counters `shalefs stats` shows:
 * from a mount point, the daemon's control files (.shalefs/stats, the
 * "key: value" counters, and .shalefs/info, text such as the store and
 * the last error); from a store this command opened, the filesystem's
 * own rendering of the same counters. And the lookups of one key in a
 * sample.
 *
 * Below both cli_stats.c (which picks the source) and cli_stats_show.c
 * (which renders samples): it calls neither.
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
