/*
 * cli_main.c - the `shalefs` command: dispatch, option parsing shared by
 * the subcommands, and opening the store and the engine for them.
 *
 *   shalefs mount [-f] [-d] [-o OPT[,OPT...]] STORE MOUNTPOINT
 *   shalefs STORE MOUNTPOINT [-o ...]         (as mount.fuse runs it)
 *   mount.shalefs STORE MOUNTPOINT [-o ...]   (as mount(8) runs it)
 *   shalefs stats|checkpoint|fsck ...         (cli_stats.c, cli_checkpoint.c,
 *                                             cli_fsck.c)
 *
 * `shalefs mount` itself is in cli_mount.c.
 *
 * Credentials never come from argv: AWS_* variables or ~/.aws only.
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where cli_err writes: stderr, or the saved stderr while the
 * libraries' own log lines are silenced (cli_quiet). */
static int cli_errfd = 2;
static int cli_saved_fd = -1;

void cli_err(const char *fmt, ...)
{
	va_list ap;
	char line[1024];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	dprintf(cli_errfd, "shalefs: %s\n", line);
}

/*
 * While opening the store, the engine and the filesystem, the libraries
 * log failures themselves; the command prints one line that repeats the
 * cause (obj_last_error, fs_last_error). So their lines are dropped during
 * that phase unless SHALEFS_LOG asks for info or debug output.
 */
void cli_quiet(int on)
{
	if (on && cli_saved_fd < 0 && util_log_get_level() < UTIL_LOG_INFO) {
		int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
		cli_saved_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
		if (nul < 0 || cli_saved_fd < 0) {
			if (nul >= 0)
				close(nul);
			if (cli_saved_fd >= 0)
				close(cli_saved_fd);
			cli_saved_fd = -1;
			return;
		}
		fflush(stderr);
		dup2(nul, 2);
		close(nul);
		cli_errfd = cli_saved_fd;
	} else if (!on && cli_saved_fd >= 0) {
		fflush(stderr);
		dup2(cli_saved_fd, 2);
		close(cli_saved_fd);
		cli_saved_fd = -1;
		cli_errfd = 2;
	}
}

/* ---- options (parsed in cli_opts.c) --------------------------------------- */

static void cli_usage(FILE *f)
{
	fprintf(f,
		"usage: shalefs mount [-f] [-d] [-o OPT[,OPT...]] STORE MOUNTPOINT\n"
		"       shalefs stats MOUNTPOINT|STORE\n"
		"       shalefs checkpoint create|list|delete STORE [NAME]\n"
		"       shalefs fsck STORE\n"
		"STORE is file:///abs/dir or s3://bucket[/prefix]. Options:\n"
		"  ro, allow_other, flush_interval_ms=N, cache_mb=N, write_buffer_mb=N, memtable_mb=N,\n"
		"  wal_bypass_mb=N, wal_bypass_quiet_ms=N, attr_timeout=S, entry_timeout=S,\n"
		"  checkpoint=NAME, endpoint=URL, region=R, profile=P, path_style, insecure_tls,\n"
		"  sign_payload, single_writer_unsafe, no_writeback_cache, and the usual FUSE\n"
		"  mount options.\n"
		"Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws only.\n"
		"See shalefs(1).\n");
}

/* Parse argv (without the subcommand) into o; print the usage for --help,
 * the error line otherwise. Returns 0, 1 (--help) or -1 (printed); o is
 * the caller's either way (cli_opts_free). */
int cli_parse(int argc, char **argv, struct cli_opts *o, const char *second)
{
	char err[1024];
	int rc = cli_opts_parse(o, argc, argv, second, err, sizeof(err));

	if (rc == 1) {
		cli_usage(stdout);
		return 1;
	}
	if (rc) {
		cli_err("%s", err);
		return -1;
	}
	return 0;
}

/* Check the URL's syntax (no I/O). Returns 0 or -1 (printed). */
int cli_check_url(const char *url, struct obj_url *u)
{
	int rc = obj_url_parse(u, url);
	if (rc) {
		const char *why = obj_last_error();
		if (why && *why)
			cli_err("%s", why);      /* names the URL and the cause */
		else
			cli_err("invalid store URL '%s': expected file:///abs/dir or "
				"s3://bucket[/prefix]", url);
		return -1;
	}
	if (u->scheme == OBJ_SCHEME_MEM) {
		cli_err("store '%s': mem:// stores live inside one process and cannot be "
			"mounted; use file:// or s3://", url);
		obj_url_free(u);
		return -1;
	}
	return 0;
}

static void cli_obj_config(const struct cli_opts *o, struct obj_config *c)
{
	static const struct obj_config init = OBJ_CONFIG_INIT;
	*c = init;
	c->s3.endpoint = o->endpoint;
	c->s3.region = o->region;
	c->s3.profile = o->profile;
	c->s3.path_style = o->path_style ? 1 : -1;
	c->s3.insecure_tls = o->insecure_tls;
	c->s3.unsigned_payload = o->sign_payload ? -1 : 0;
}

static const char *cli_cause(int rc)
{
	const char *why = obj_last_error();
	return why && *why ? why : kv_strerror(rc);
}

/*
 * Open the store behind o->store. For S3, first a direct request without
 * the retry wrapper (a wrong endpoint, key or bucket fails at once instead
 * of being retried), and for a writer the conditional-create probe.
 * On success *out is the caller's (obj_close). Returns 0 or -1 (printed).
 */
int cli_open_store(const struct cli_opts *o, int writer, struct obj_backend **out)
{
	struct obj_config oc;
	struct obj_url u;
	int rc;

	*out = NULL;
	if (cli_check_url(o->store, &u))
		return -1;
	cli_obj_config(o, &oc);
	if (u.scheme == OBJ_SCHEME_S3) {
		struct obj_backend *raw = NULL;
		struct obj_list *l = NULL;

		rc = obj_s3_create(&raw, u.bucket, u.prefix, &oc.s3);
		if (rc) {
			cli_err("store %s: %s", o->store, cli_cause(rc));
			goto fail;
		}
		rc = raw->list(raw, "", NULL, 1, &l);
		obj_list_free(l);
		if (rc) {
			if (rc == -ENOENT)
				cli_err("store %s: bucket '%s' does not exist", o->store, u.bucket);
			else if (rc == -EACCES)
				cli_err("store %s: access denied (%s); check AWS_ACCESS_KEY_ID/"
					"AWS_SECRET_ACCESS_KEY or the profile", o->store,
					cli_cause(rc));
			else
				cli_err("store %s: %s", o->store, cli_cause(rc));
			raw->free(raw);
			goto fail;
		}
		if (writer && !o->single_writer_unsafe) {
			rc = obj_s3_probe_conditional(raw);
			if (rc == -ENOTSUP) {
				cli_err("store %s ignores conditional writes (If-None-Match): a "
					"second writer could corrupt it, so a writer mount is refused; "
					"mount with -o ro, or with -o single_writer_unsafe if you "
					"guarantee there is only ever one writer", o->store);
				raw->free(raw);
				goto fail;
			}
			if (rc) {
				cli_err("store %s: probing conditional writes failed: %s", o->store,
					cli_cause(rc));
				raw->free(raw);
				goto fail;
			}
		}
		raw->free(raw);
	} else if (o->single_writer_unsafe) {
		cli_err("option 'single_writer_unsafe' applies to s3:// stores only");
		goto fail;
	}
	obj_url_free(&u);
	rc = obj_open(out, o->store, &oc);
	if (rc) {
		if (rc == -ENOENT)
			cli_err("store %s: does not exist (%s)", o->store, cli_cause(rc));
		else
			cli_err("store %s: cannot open: %s", o->store, cli_cause(rc));
		return -1;
	}
	return 0;
fail:
	obj_url_free(&u);
	return -1;
}

/* Open the engine. Returns 0 or -1 (printed). */
int cli_open_kv(const struct cli_opts *o, struct obj_backend *store, enum kv_open_mode mode,
		struct kv_db **out)
{
	struct kv_config kc = KV_CONFIG_INIT;
	int rc;

	kc.mode = mode;
	kc.checkpoint = o->checkpoint;
	/* Half the interval for the fs buffers, half for the WAL. */
	kc.flush_interval_ms = o->flush_interval_ms / 2 ? o->flush_interval_ms / 2 : 1;
	if (o->cache_mb)
		kc.block_cache_bytes = (size_t)o->cache_mb << 20;
	if (o->memtable_mb)
		kc.memtable_bytes = (size_t)o->memtable_mb << 20;
	rc = kv_open(out, store, &kc);
	if (rc == 0)
		return 0;
	if (rc == -ENOENT && mode == KV_OPEN_CHECKPOINT)
		cli_err("store %s: no checkpoint named '%s' (shalefs checkpoint list %s)",
			o->store, o->checkpoint, o->store);
	else if (rc == -ENOENT)
		cli_err("store %s holds no filesystem yet: mount it read-write once to "
			"create one", o->store);
	else if (rc == -EROFS)
		cli_err("store %s: a writer cannot be opened: %s", o->store, cli_cause(rc));
	else
		cli_err("store %s: opening the engine failed: %s", o->store, cli_cause(rc));
	return -1;
}

/* ---- dispatch ----------------------------------------------------------------- */

int cli_main(int argc, char **argv)
{
	char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];

	if (strcmp(base, "mount.shalefs") == 0 || strcmp(base, "mount.fuse.shalefs") == 0)
		return cli_mount(argc, argv, base);
	if (argc < 2) {
		cli_err("missing command: usage: shalefs mount|stats|checkpoint ... "
			"(see shalefs --help)");
		return 1;
	}
	if (strcmp(argv[1], "mount") == 0)
		return cli_mount(argc - 1, argv + 1, "shalefs mount");
	if (strcmp(argv[1], "stats") == 0)
		return cli_stats(argc - 1, argv + 1);
	if (strcmp(argv[1], "checkpoint") == 0)
		return cli_checkpoint(argc - 1, argv + 1);
	if (strcmp(argv[1], "fsck") == 0)
		return cli_fsck(argc - 1, argv + 1);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		cli_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("shalefs %s (filesystem format %u)\n", PACKAGE_VERSION, FS_FORMAT_VERSION);
		return 0;
	}
	if (strstr(argv[1], "://"))     /* mount.fuse runs "shalefs STORE MOUNTPOINT -o ..." */
		return cli_mount(argc, argv, "shalefs");
	cli_err("unknown command '%s' (expected mount, stats, checkpoint, fsck; see shalefs --help)",
		argv[1]);
	return 1;
}

/* ---- helpers for the other subcommands ---------------------------------------- */

int cli_parse_store_args(int argc, char **argv, const char *second,
			 struct cli_opts **out)
{
	struct cli_opts *o = calloc(1, sizeof(*o));
	int rc;

	*out = NULL;
	if (!o) {
		cli_err("out of memory");
		return -1;
	}
	rc = cli_parse(argc, argv, o, second);
	if (rc) {
		cli_opts_free(o);
		free(o);
		return rc;
	}
	*out = o;
	return 0;
}

void cli_opts_release(struct cli_opts *o)
{
	if (o) {
		cli_opts_free(o);
		free(o);
	}
}

const char *cli_opts_store(const struct cli_opts *o)
{
	return o->store;
}

const char *cli_opts_second(const struct cli_opts *o)
{
	return o->mountpoint;
}

int cli_open_readonly(const struct cli_opts *o, struct obj_backend **store,
		      struct kv_db **db)
{
	*db = NULL;
	int rc = 0;

	cli_quiet(1);
	if (cli_open_store(o, 0, store)) {
		rc = -1;
	} else if (cli_open_kv(o, *store, KV_OPEN_READONLY, db)) {
		obj_close(*store);
		*store = NULL;
		rc = -1;
	}
	cli_quiet(0);
	return rc;
}

int cli_open_store_only(const struct cli_opts *o, struct obj_backend **store)
{
	int rc;

	cli_quiet(1);
	rc = cli_open_store(o, 0, store);
	cli_quiet(0);
	return rc;
}
