/*
 * fs_cli_stats.c - `shalefs stats` and `shalefs checkpoint`.
 *
 *   shalefs stats MOUNTPOINT      print MOUNTPOINT/.shalefs/stats
 *   shalefs stats [-o ...] STORE  open the store read-only and print the
 *                                 filesystem, engine and store counters
 *   shalefs checkpoint create|list|delete [-o ...] STORE [NAME]
 *
 * Exit codes: 0 success, 1 failure (one line on stderr naming the cause).
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fs_cli_stats_mountpoint(const char *mp)
{
	char path[PATH_MAX + 32], buf[65536];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s/stats", mp, FS_CTL_NAME);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		if (errno == ENOENT)
			fs_cli_err("%s is not a ShaleFS mount point (no %s/stats)", mp, FS_CTL_NAME);
		else
			fs_cli_err("%s: %s", path, strerror(errno));
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
	if (n < 0) {
		fs_cli_err("%s: %s", path, strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	return fflush(stdout) == 0 ? 0 : 1;
}

int fs_cli_stats(int argc, char **argv)
{
	struct fs_mount_opts *o = NULL;
	struct obj_backend *store = NULL;
	struct kv_db *db = NULL;
	struct fs *fs = NULL;
	struct fs_config fc = FS_CONFIG_INIT;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int rc, code = 1;

	rc = fs_cli_parse_store_args(argc, argv, NULL, &o);
	if (rc)
		return rc > 0 ? 0 : 1;
	if (!strstr(fs_cli_opts_store(o), "://")) {
		const char *mp = fs_cli_opts_store(o);
		if (stat(mp, &st) != 0) {
			fs_cli_err("%s: %s (expected a mount point or a store URL)", mp,
				   strerror(errno));
		} else if (!S_ISDIR(st.st_mode)) {
			fs_cli_err("%s is not a directory (expected a mount point or a store URL)", mp);
		} else {
			code = fs_cli_stats_mountpoint(mp);
		}
		fs_cli_opts_release(o);
		return code;
	}
	if (fs_cli_open_readonly(o, &store, &db))
		goto out;
	fc.readonly = 1;
	rc = fs_alloc(&fs, &fc);
	if (!rc)
		rc = fs_start(fs, db, store);
	if (rc) {
		fs_cli_err("store %s: reading the filesystem failed: %s", fs_cli_opts_store(o),
			   kv_strerror(rc));
		goto out;
	}
	rc = fs_ctl_render_stats(fs, &text, &len);
	if (rc) {
		fs_cli_err("out of memory");
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
	fs_cli_opts_release(o);
	return code;
}

static int fs_cli_ckpt_print(void *arg, const struct kv_checkpoint_info *c)
{
	char when[64] = "?";
	time_t t = (time_t)(c->created_ns / 1000000000u);
	struct tm tm;

	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s\tcreated=%s\tmanifest=%" PRIu64 "\twal=%" PRIu64 "%s\n", c->name, when,
	       c->manifest_id, c->wal_id, c->expire_ns ? "\texpires" : "");
	return 0;
}

int fs_cli_checkpoint(int argc, char **argv)
{
	struct fs_mount_opts *o = NULL;
	struct obj_backend *store = NULL;
	const char *verb;
	int rc, code = 1;

	if (argc < 2) {
		fs_cli_err("usage: shalefs checkpoint create|list|delete [-o ...] STORE [NAME]");
		return 1;
	}
	verb = argv[1];
	if (strcmp(verb, "create") && strcmp(verb, "list") && strcmp(verb, "delete")) {
		fs_cli_err("unknown checkpoint command '%s' (expected create, list or delete)", verb);
		return 1;
	}
	rc = fs_cli_parse_store_args(argc - 1, argv + 1, strcmp(verb, "list") ? "NAME" : NULL,
				     &o);
	if (rc)
		return rc > 0 ? 0 : 1;
	if (fs_cli_open_store_only(o, &store))
		goto out;
	if (!strcmp(verb, "list")) {
		rc = kv_checkpoint_list(store, fs_cli_ckpt_print, NULL);
		if (rc == -ENOENT)
			rc = 0;
	} else if (!strcmp(verb, "create")) {
		rc = kv_checkpoint_create(store, fs_cli_opts_second(o), 0);
		if (rc == -EEXIST) {
			fs_cli_err("checkpoint '%s' already exists in %s", fs_cli_opts_second(o),
				   fs_cli_opts_store(o));
			goto out;
		}
		if (rc == -EINVAL) {
			fs_cli_err("invalid checkpoint name '%s': 1-255 characters of "
				   "[A-Za-z0-9._-]", fs_cli_opts_second(o));
			goto out;
		}
		if (rc == -ENOENT) {
			fs_cli_err("store %s is empty: nothing to checkpoint", fs_cli_opts_store(o));
			goto out;
		}
	} else {
		rc = kv_checkpoint_delete(store, fs_cli_opts_second(o));
		if (rc == -ENOENT) {
			fs_cli_err("no checkpoint named '%s' in %s", fs_cli_opts_second(o),
				   fs_cli_opts_store(o));
			goto out;
		}
	}
	if (rc) {
		const char *why = obj_last_error();
		fs_cli_err("checkpoint %s on %s failed: %s", verb, fs_cli_opts_store(o),
			   why && *why ? why : kv_strerror(rc));
		goto out;
	}
	code = fflush(stdout) == 0 ? 0 : 1;
out:
	obj_close(store);
	fs_cli_opts_release(o);
	return code;
}

/* shalefs fsck [-o ...] STORE: exit 0 clean, 1 problems (listed), 2 could
 * not run. */
int fs_cli_fsck(int argc, char **argv)
{
	struct fs_mount_opts *o = NULL;
	struct obj_backend *store = NULL;
	struct kv_db *db = NULL;
	unsigned long problems = 0;
	int rc, code = 2;

	rc = fs_cli_parse_store_args(argc, argv, NULL, &o);
	if (rc)
		return rc > 0 ? 0 : 2;
	if (fs_cli_open_readonly(o, &store, &db))
		goto out;
	rc = fs_fsck(db, stdout, &problems);
	if (rc) {
		fs_cli_err("fsck of %s could not run: %s", fs_cli_opts_store(o), kv_strerror(rc));
		goto out;
	}
	code = problems ? 1 : 0;
out:
	if (db)
		(void)kv_close(db);
	obj_close(store);
	fs_cli_opts_release(o);
	fflush(stdout);
	return code;
}
