/*
 * cli_stats.c - `shalefs stats`.
 *
 *   shalefs stats MOUNTPOINT      print MOUNTPOINT/.shalefs/stats
 *   shalefs stats [-o ...] STORE  open the store read-only and print the
 *                                 filesystem, engine and store counters
 *
 * Exit codes: 0 success, 1 failure (one line on stderr naming the cause).
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cli_stats_mountpoint(const char *mp)
{
	char path[PATH_MAX + 32], buf[65536];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s/stats", mp, FS_CTL_NAME);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		if (errno == ENOENT)
			cli_err("%s is not a ShaleFS mount point (no %s/stats)", mp, FS_CTL_NAME);
		else if (errno == ENOTCONN)
			cli_err_stale(mp);
		else
			cli_err("%s: %s", path, strerror(errno));
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
	if (n < 0) {
		cli_err("%s: %s", path, strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	return fflush(stdout) == 0 ? 0 : 1;
}

int cli_stats(int argc, char **argv)
{
	struct cli_opts *o = NULL;
	struct obj_backend *store = NULL;
	struct kv_db *db = NULL;
	struct fs *fs = NULL;
	struct fs_config fc = FS_CONFIG_INIT;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int rc, code = 1;

	rc = cli_parse_store_args(argc, argv, NULL, &o);
	if (rc)
		return rc > 0 ? 0 : 1;
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
			code = cli_stats_mountpoint(mp);
		}
		cli_opts_release(o);
		return code;
	}
	if (cli_open_readonly(o, &store, &db))
		goto out;
	fc.readonly = 1;
	rc = fs_alloc(&fs, &fc);
	if (!rc)
		rc = fs_start(fs, db, store);
	if (rc) {
		cli_err("store %s: reading the filesystem failed: %s", cli_opts_store(o),
			kv_strerror(rc));
		goto out;
	}
	rc = fs_stats_render(fs, &text, &len);
	if (rc) {
		cli_err("out of memory");
		goto out;
	}
	if (fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0)
		code = 0;
out:
	free(text);
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
