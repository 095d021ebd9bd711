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

void cli_err_stale(const char *mp)
{
	cli_err("%s: the mount is stale (its daemon is gone: transport endpoint is not "
		"connected); run `fusermount3 -u %s` to remove it", mp, mp);
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

/* Each command's synopsis and one line of what it does (shalefs(1)). */
static const struct {
	const char *name, *synopsis, *what;
} cli_cmds[] = {
	{ "mount", "mount [-f] [-d] [-o OPT[,OPT...]] STORE MOUNTPOINT",
	  "mount a store (waits up to lease_wait= for an unmount of it on this host)" },
	{ "umount", "umount [--lazy] MOUNTPOINT",
	  "unmount; returns once the daemon has flushed everything and exited" },
	{ "sync", "sync MOUNTPOINT", "make everything written to the mount so far durable" },
	{ "format", "format [-o OPT,...] [--force] STORE",
	  "create a store in an empty location (--force: one holding other objects)" },
	{ "checkpoint", "checkpoint create [-o OPT,...] [--expire DURATION] STORE|MOUNTPOINT NAME\n"
	  "       shalefs checkpoint list [-o OPT,...] STORE\n"
	  "       shalefs checkpoint delete [-o OPT,...] [--force] STORE NAME",
	  "named, read-only snapshots (mount one with -o checkpoint=NAME)" },
	{ "stats", "stats [-o OPT,...] [--watch N | --json | --raw] MOUNTPOINT|STORE",
	  "what is mounted, its state, sizes, request rates and last error (--watch N: one\n"
	  "line of rates every N seconds until Ctrl-C; --json: all of it and every counter as\n"
	  "one JSON object; --raw: the counters as \"key: value\" lines)" },
	{ "fsck", "fsck [-o OPT,...] [--json] [--repair] STORE",
	  "check a store (exit 0 clean, 1 corrected, 4 problems left, 8 could not run)" },
};
#define CLI_N_CMDS (sizeof(cli_cmds) / sizeof(cli_cmds[0]))

static void cli_usage(FILE *f, const char *cmd)
{
	for (size_t i = 0; i < CLI_N_CMDS; i++) {
		if (cmd && !strcmp(cmd, cli_cmds[i].name)) {
			fprintf(f, "usage: shalefs %s\n%s.\n", cli_cmds[i].synopsis,
				cli_cmds[i].what);
			if (strcmp(cmd, "mount") != 0 && strcmp(cmd, "umount") != 0 &&
			    strcmp(cmd, "sync") != 0)
				fprintf(f, "STORE is file:///abs/dir or s3://bucket[/prefix]; the -o "
					"options that reach it are those of mount.\n");
			fprintf(f, "See shalefs(1).\n");
			if (strcmp(cmd, "mount") != 0)
				return;
			break;
		}
	}
	if (!cmd || strcmp(cmd, "mount") != 0) {
		fprintf(f, "usage: shalefs COMMAND ...\n");
		for (size_t i = 0; i < CLI_N_CMDS; i++)
			fprintf(f, "       shalefs %s\n", cli_cmds[i].synopsis);
		fprintf(f, "       shalefs --version | --help | COMMAND --help\n");
	}
	fprintf(f,
		"STORE is file:///abs/dir or s3://bucket[/prefix]. Options:\n"
		"  ro, allow_other, flush_interval_ms=N, cache_mb=N, write_buffer_mb=N, memtable_mb=N,\n"
		"  wal_bypass_mb=N, wal_bypass_quiet_ms=N, attr_timeout=S, entry_timeout=S,\n"
		"  gc_interval=S, gc_min_age=S, reserve_mb=N,\n"
		"  checkpoint=NAME, lease_wait=S, takeover, unmount_timeout=S, store_timeout=S,\n"
		"  endpoint=URL, region=R, profile=P, credentials_file=/ABS/PATH, no_sign_request,\n"
		"  path_style, insecure_tls, sign_payload,\n"
		"  single_writer_unsafe, no_writeback_cache, size=SIZE (a quota, e.g. 10G),\n"
		"  log_file=/ABS/PATH (the daemon's log; SIGHUP reopens it),\n"
		"  log_level=error|warn|info|debug (default warn, or SHALEFS_LOG),\n"
		"  metrics=[ADDR:]PORT (Prometheus text at http://ADDR:PORT/metrics; ADDR\n"
		"  defaults to 127.0.0.1), metrics_file=/ABS/PATH (the same text, rewritten\n"
		"  every 15 s, for node_exporter's textfile collector),\n"
		"  and the usual FUSE mount options.\n"
		"Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws only.\n"
		"See shalefs(1).\n");
}

int cli_writer_pass(const struct cli_opts *o, struct obj_backend *store, const char *what)
{
	struct kv_lease_conf lease = { .wait_ms = 0 };
	struct fs_config fc = FS_CONFIG_INIT;
	struct kv_db *db = NULL;
	struct fs *fs = NULL;
	int rc;

	cli_quiet(1);
	rc = cli_open_kv(o, store, KV_OPEN_WRITER, &lease, &db);
	if (rc == 0) {
		rc = fs_alloc(&fs, &fc);
		if (rc == 0)
			rc = fs_start(fs, db, store);
		if (rc)
			cli_err("%s %s failed: %s", what, o->store,
				fs ? fs_last_error(fs) : kv_strerror(rc));
	}
	cli_quiet(0);
	if (fs && fs_stop(fs) != 0)
		rc = -EIO;
	if (db && kv_close(db) != 0)
		rc = -EIO;
	fs_free(fs);
	return rc ? -1 : 0;
}

int cli_only_flags(const struct cli_opts *o, unsigned allowed, const char *cmd)
{
	static const struct {
		unsigned flag;
		const char *name;
	} names[] = { { CLI_F_FORCE, "--force" }, { CLI_F_JSON, "--json" },
		      { CLI_F_REPAIR, "--repair" }, { CLI_F_LAZY, "--lazy" },
		      { CLI_F_EXPIRE, "--expire" }, { CLI_F_RAW, "--raw" },
		      { CLI_F_WATCH, "--watch" } };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((o->flags & names[i].flag) && !(allowed & names[i].flag)) {
			cli_err("shalefs %s does not take %s (see shalefs %s --help)", cmd,
				names[i].name, cmd);
			return -1;
		}
	return 0;
}

/* Parse argv (without the subcommand) into o; print the usage for --help,
 * the error line otherwise. Returns 0, 1 (--help) or -1 (printed); o is
 * the caller's either way (cli_opts_free). */
int cli_parse(int argc, char **argv, struct cli_opts *o, const char *second)
{
	char err[1024];
	int rc = cli_opts_parse(o, argc, argv, second, err, sizeof(err));

	if (rc == 1) {
		cli_usage(stdout, strcmp(argv[0], "shalefs") && strncmp(argv[0], "mount.", 6) ?
			  argv[0] : "mount");
		return 1;
	}
	if (rc) {
		cli_err("%s", err);
		return -1;
	}
	/* log_level= wins over SHALEFS_LOG, for every command. */
	if (o->log_level >= 0)
		util_log_set_level((enum util_log_level)o->log_level);
	return 0;
}

static void cli_obj_config(const struct cli_opts *o, struct obj_config *c);

/* Check the URL's syntax (no I/O), the bucket name against what o's
 * endpoint and path_style allow. Returns 0 or -1 (printed). */
int cli_check_url(const struct cli_opts *o, struct obj_url *u)
{
	const char *url = o->store;
	struct obj_config oc;
	int rc;

	cli_obj_config(o, &oc);
	rc = obj_url_parse_conf(u, url, &oc.s3);
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
	c->s3.credentials_file = o->credentials_file;
	c->s3.no_sign_request = o->no_sign_request;
	c->s3.path_style = o->path_style ? 1 : -1;
	c->s3.insecure_tls = o->insecure_tls;
	c->s3.unsigned_payload = o->sign_payload ? -1 : 0;
	c->retry.max_total_ms = o->store_timeout_s * 1000u;
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
static int cli_open_store_ext(const struct cli_opts *o, int writer, int create,
			      struct obj_backend **out);

int cli_open_store(const struct cli_opts *o, int writer, struct obj_backend **out)
{
	return cli_open_store_ext(o, writer, 0, out);
}

int cli_open_store_create(const struct cli_opts *o, struct obj_backend **out)
{
	return cli_open_store_ext(o, 1, 1, out);
}

static int cli_open_store_ext(const struct cli_opts *o, int writer, int create,
			      struct obj_backend **out)
{
	struct obj_config oc;
	struct obj_url u;
	int rc;

	*out = NULL;
	if (cli_check_url(o, &u))
		return -1;
	cli_obj_config(o, &oc);
	oc.create = create;
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
				cli_err("store %s: access denied (%s); check the credentials "
					"(shalefs(1) CREDENTIALS)", o->store, cli_cause(rc));
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

void cli_lease_waiting(void *arg, const struct kv_lease_info *holder)
{
	char who[1400];
	const struct cli_opts *o = arg;

	kv_lease_describe(holder, who, sizeof(who));
	cli_err("store %s is mounted read-write by %s; waiting up to %u s for it to be "
		"unmounted", o->store, who, o->lease_wait_s);
}

/* Say why the lease could not be had (kv_open returned -EBUSY). */
static void cli_lease_refused(const struct cli_opts *o, const struct kv_lease_info *h)
{
	char who[1400];

	kv_lease_describe(h, who, sizeof(who));
	if (kv_lease_liveness(h) == KV_LEASE_LIVE)
		cli_err("store %s is mounted read-write by %s, still after %u s (lease_wait=); "
			"unmount it first (shalefs umount%s%s), or mount with -o takeover to "
			"cut it off", o->store, who, o->lease_wait_s, h->mountpoint[0] ? " " : "",
			h->mountpoint);
	else
		cli_err("store %s is mounted read-write by %s; unmount it there, or mount with "
			"-o takeover if %s is gone", o->store, who,
			h->who.host[0] ? h->who.host : "that host");
}

int cli_check_store(const struct cli_opts *o, struct obj_backend *store, int writer)
{
	int rc = kv_store_check(store);

	if (rc == KV_STORE_MARKED)
		return 0;
	if (rc == KV_STORE_UNMARKED) {
		/* Made before the marker existed: a writer adds it. */
		if (writer && (rc = kv_store_mark(store)) != 0)
			UTIL_WARN(CLI_LOG, "store %s: could not add its marker: %s", o->store,
				  cli_cause(rc));
		return 0;
	}
	if (rc == -ENOENT)
		cli_err("no ShaleFS store at %s; create one with `shalefs format %s`", o->store,
			o->store);
	else if (rc == -EPROTO)
		cli_err("store %s was made by a newer shalefs (store format above %u); use a "
			"newer shalefs", o->store, KV_STORE_FORMAT);
	else if (rc == KV_ECORRUPT)
		cli_err("store %s: its marker object %s is damaged", o->store, KV_STORE_MARKER);
	else
		cli_err("store %s: %s", o->store, cli_cause(rc));
	return -1;
}

/* Open the engine. Returns 0 or -1 (printed). */
int cli_open_kv(const struct cli_opts *o, struct obj_backend *store, enum kv_open_mode mode,
		struct kv_lease_conf *lc, struct kv_db **out)
{
	struct kv_config kc = KV_CONFIG_INIT;
	struct kv_lease_info holder;
	int rc;

	if (cli_check_store(o, store, mode == KV_OPEN_WRITER))
		return -1;
	kc.mode = mode;
	kc.checkpoint = o->checkpoint;
	/* Half the interval for the fs buffers, half for the WAL. */
	kc.flush_interval_ms = o->flush_interval_ms / 2 ? o->flush_interval_ms / 2 : 1;
	if (o->cache_mb)
		kc.block_cache_bytes = (size_t)o->cache_mb << 20;
	if (o->memtable_mb)
		kc.memtable_bytes = (size_t)o->memtable_mb << 20;
	kc.gc_interval_ms = o->gc_interval_s * 1000u;
	kc.gc_min_age_ms = o->gc_min_age_s * 1000u;
	if (o->reserve_set)
		kc.reserve_bytes = o->reserve_mb ? (size_t)o->reserve_mb << 20 : KV_RESERVE_NONE;
	kc.close_timeout_ms = o->unmount_timeout_s * 1000u;
	if (lc) {
		memset(&holder, 0, sizeof(holder));
		lc->holder = &holder;
		kc.lease = lc;
	}
	rc = kv_open(out, store, &kc);
	if (rc == 0) {
		if (lc && lc->took_over) {
			char who[1400];
			kv_lease_describe(&holder, who, sizeof(who));
			/* cli_err: the libraries' own lines are silenced here. */
			cli_err("took over store %s from %s: %s", o->store, who,
				lc->took_over == 1 ? "that process is gone (crash recovery)" :
				"-o takeover: it is fenced and turns read-only");
		}
		return 0;
	}
	if (rc == -EBUSY && lc)
		cli_lease_refused(o, &holder);
	else if (rc == -ENOENT && mode == KV_OPEN_CHECKPOINT)
		cli_err("store %s: no checkpoint named '%s' (shalefs checkpoint list %s)",
			o->store, o->checkpoint, o->store);
	else if (rc == -ENOENT)
		cli_err("no ShaleFS store at %s; create one with `shalefs format %s`", o->store,
			o->store);
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
		cli_err("missing command: usage: shalefs mount|umount|sync|format|checkpoint|stats|"
			"fsck ... (see shalefs --help)");
		return 1;
	}
	if (strcmp(argv[1], "mount") == 0)
		return cli_mount(argc - 1, argv + 1, "shalefs mount");
	if (strcmp(argv[1], "umount") == 0 || strcmp(argv[1], "unmount") == 0)
		return cli_umount(argc - 1, argv + 1);
	if (strcmp(argv[1], "sync") == 0)
		return cli_sync(argc - 1, argv + 1);
	if (strcmp(argv[1], "format") == 0)
		return cli_format(argc - 1, argv + 1);
	if (strcmp(argv[1], "stats") == 0)
		return cli_stats(argc - 1, argv + 1);
	if (strcmp(argv[1], "checkpoint") == 0)
		return cli_checkpoint(argc - 1, argv + 1);
	if (strcmp(argv[1], "fsck") == 0)
		return cli_fsck(argc - 1, argv + 1);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		cli_usage(stdout, argc > 2 ? argv[2] : NULL);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("shalefs %s (filesystem format %u)\n", PACKAGE_VERSION, FS_FORMAT_VERSION);
		return 0;
	}
	if (strstr(argv[1], "://"))     /* mount.fuse runs "shalefs STORE MOUNTPOINT -o ..." */
		return cli_mount(argc, argv, "shalefs");
	cli_err("unknown command '%s' (expected mount, umount, sync, format, checkpoint, stats or "
		"fsck; see shalefs --help)", argv[1]);
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
	if (rc == 0 && o->log_file) {
		cli_err("option 'log_file=' applies to shalefs mount only (the other commands "
			"log to stderr)");
		rc = -1;
	}
	if (rc == 0 && (o->metrics_addr || o->metrics_file)) {
		cli_err("options 'metrics=' and 'metrics_file=' apply to shalefs mount only");
		rc = -1;
	}
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
	} else if (cli_open_kv(o, *store, KV_OPEN_READONLY, NULL, db)) {
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
