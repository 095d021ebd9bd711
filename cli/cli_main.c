/*
 * fs_cli.c - the `shalefs` command: dispatch, option parsing shared by
 * the subcommands, and `shalefs mount`.
 *
 *   shalefs mount [-f] [-d] [-o OPT[,OPT...]] STORE MOUNTPOINT
 *   shalefs STORE MOUNTPOINT [-o ...]         (as mount.fuse runs it)
 *   mount.shalefs STORE MOUNTPOINT [-o ...]   (as mount(8) runs it)
 *
 * MOUNT SEQUENCE
 *   The parent checks what it can without I/O (options, the URL, the
 *   mount point), then - unless -f - forks BEFORE opening anything: the
 *   engine starts threads and a fork would lose them. The child opens the
 *   store, the engine and the filesystem, mounts, and only then writes one
 *   byte into a pipe; the parent exits 0 on that byte and otherwise with
 *   the child's status. Every failure prints one line naming the object
 *   and the cause, on the terminal (the child still shares it), and exits
 *   non-zero. After the session loop ends (unmount, SIGTERM/SIGINT) the
 *   buffers are flushed, the engine closed (kv_close flushes the WAL), and
 *   the process exits 0 if both succeeded.
 *
 * Credentials never come from argv: AWS_* variables or ~/.aws only.
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fuse_opt.h>

/* Where fs_cli_err writes: stderr, or the saved stderr while the
 * libraries' own log lines are silenced (fs_cli_quiet). */
static int fs_cli_errfd = 2;
static int fs_cli_saved_fd = -1;

void fs_cli_err(const char *fmt, ...)
{
	va_list ap;
	char line[1024];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	dprintf(fs_cli_errfd, "shalefs: %s\n", line);
}

/*
 * While opening the store, the engine and the filesystem, the libraries
 * log failures themselves; the command prints one line that repeats the
 * cause (obj_last_error, fs_last_error). So their lines are dropped during
 * that phase unless SHALEFS_LOG asks for info or debug output.
 */
void fs_cli_quiet(int on)
{
	if (on && fs_cli_saved_fd < 0 && util_log_get_level() < UTIL_LOG_INFO) {
		int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
		fs_cli_saved_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
		if (nul < 0 || fs_cli_saved_fd < 0) {
			if (nul >= 0)
				close(nul);
			if (fs_cli_saved_fd >= 0)
				close(fs_cli_saved_fd);
			fs_cli_saved_fd = -1;
			return;
		}
		fflush(stderr);
		dup2(nul, 2);
		close(nul);
		fs_cli_errfd = fs_cli_saved_fd;
	} else if (!on && fs_cli_saved_fd >= 0) {
		fflush(stderr);
		dup2(fs_cli_saved_fd, 2);
		close(fs_cli_saved_fd);
		fs_cli_saved_fd = -1;
		fs_cli_errfd = 2;
	}
}

/* ---- options (parsed in fs_mountopt.c) ------------------------------------ */

static void fs_cli_usage(FILE *f)
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
 * the caller's either way (fs_mountopt_free). */
static int fs_cli_parse(int argc, char **argv, struct fs_mount_opts *o, const char *second)
{
	char err[1024];
	int rc = fs_mountopt_parse(o, argc, argv, second, err, sizeof(err));

	if (rc == 1) {
		fs_cli_usage(stdout);
		return 1;
	}
	if (rc) {
		fs_cli_err("%s", err);
		return -1;
	}
	return 0;
}

/* Check the URL's syntax (no I/O). Returns 0 or -1 (printed). */
static int fs_cli_check_url(const char *url, struct obj_url *u)
{
	int rc = obj_url_parse(u, url);
	if (rc) {
		const char *why = obj_last_error();
		if (why && *why)
			fs_cli_err("%s", why);      /* names the URL and the cause */
		else
			fs_cli_err("invalid store URL '%s': expected file:///abs/dir or "
				   "s3://bucket[/prefix]", url);
		return -1;
	}
	if (u->scheme == OBJ_SCHEME_MEM) {
		fs_cli_err("store '%s': mem:// stores live inside one process and cannot be "
			   "mounted; use file:// or s3://", url);
		obj_url_free(u);
		return -1;
	}
	return 0;
}

static void fs_cli_obj_config(const struct fs_mount_opts *o, struct obj_config *c)
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

static const char *fs_cli_cause(int rc)
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
static int fs_cli_open_store(const struct fs_mount_opts *o, int writer, struct obj_backend **out)
{
	struct obj_config oc;
	struct obj_url u;
	int rc;

	*out = NULL;
	if (fs_cli_check_url(o->store, &u))
		return -1;
	fs_cli_obj_config(o, &oc);
	if (u.scheme == OBJ_SCHEME_S3) {
		struct obj_backend *raw = NULL;
		struct obj_list *l = NULL;

		rc = obj_s3_create(&raw, u.bucket, u.prefix, &oc.s3);
		if (rc) {
			fs_cli_err("store %s: %s", o->store, fs_cli_cause(rc));
			goto fail;
		}
		rc = raw->list(raw, "", NULL, 1, &l);
		obj_list_free(l);
		if (rc) {
			if (rc == -ENOENT)
				fs_cli_err("store %s: bucket '%s' does not exist", o->store, u.bucket);
			else if (rc == -EACCES)
				fs_cli_err("store %s: access denied (%s); check AWS_ACCESS_KEY_ID/"
					   "AWS_SECRET_ACCESS_KEY or the profile", o->store,
					   fs_cli_cause(rc));
			else
				fs_cli_err("store %s: %s", o->store, fs_cli_cause(rc));
			raw->free(raw);
			goto fail;
		}
		if (writer && !o->single_writer_unsafe) {
			rc = obj_s3_probe_conditional(raw);
			if (rc == -ENOTSUP) {
				fs_cli_err("store %s ignores conditional writes (If-None-Match): a "
					   "second writer could corrupt it, so a writer mount is refused; "
					   "mount with -o ro, or with -o single_writer_unsafe if you "
					   "guarantee there is only ever one writer", o->store);
				raw->free(raw);
				goto fail;
			}
			if (rc) {
				fs_cli_err("store %s: probing conditional writes failed: %s", o->store,
					   fs_cli_cause(rc));
				raw->free(raw);
				goto fail;
			}
		}
		raw->free(raw);
	} else if (o->single_writer_unsafe) {
		fs_cli_err("option 'single_writer_unsafe' applies to s3:// stores only");
		goto fail;
	}
	obj_url_free(&u);
	rc = obj_open(out, o->store, &oc);
	if (rc) {
		if (rc == -ENOENT)
			fs_cli_err("store %s: does not exist (%s)", o->store, fs_cli_cause(rc));
		else
			fs_cli_err("store %s: cannot open: %s", o->store, fs_cli_cause(rc));
		return -1;
	}
	return 0;
fail:
	obj_url_free(&u);
	return -1;
}

/* Open the engine. Returns 0 or -1 (printed). */
static int fs_cli_open_kv(const struct fs_mount_opts *o, struct obj_backend *store,
			  enum kv_open_mode mode, struct kv_db **out)
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
		fs_cli_err("store %s: no checkpoint named '%s' (shalefs checkpoint list %s)",
			   o->store, o->checkpoint, o->store);
	else if (rc == -ENOENT)
		fs_cli_err("store %s holds no filesystem yet: mount it read-write once to "
			   "create one", o->store);
	else if (rc == -EROFS)
		fs_cli_err("store %s: a writer cannot be opened: %s", o->store, fs_cli_cause(rc));
	else
		fs_cli_err("store %s: opening the engine failed: %s", o->store, fs_cli_cause(rc));
	return -1;
}

/* ---- mount ------------------------------------------------------------------ */

static int fs_cli_check_mountpoint(const char *mp)
{
	struct stat st;
	if (stat(mp, &st) != 0) {
		fs_cli_err("mount point %s: %s", mp, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fs_cli_err("mount point %s is not a directory", mp);
		return -1;
	}
	return 0;
}

/* Tell the waiting parent the mount is up, and leave the terminal. */
static void fs_cli_detach(int fd)
{
	int nul;
	char ok = '0';

	if (fd < 0)
		return;
	if (write(fd, &ok, 1) != 1)
		UTIL_WARN(FS_LOG, "cannot report the mount to the parent: %s", strerror(errno));
	close(fd);
	nul = open("/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		if (nul > 2)
			close(nul);
	}
	util_log_use_syslog(1);
	if (chdir("/") != 0) {
		/* Harmless: only keeps a directory busy. */
	}
}

/* Everything after the (optional) fork. Returns the exit code. */
static int fs_cli_mount_run(struct fs_mount_opts *o, int report_fd)
{
	struct obj_backend *store = NULL;
	struct kv_db *db = NULL;
	struct fs *fs = NULL;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *lc = NULL;
	struct fs_config fc = FS_CONFIG_INIT;
	char *fopts = NULL;
	int rc, code = 1, mounted = 0, handlers = 0;
	enum kv_open_mode mode = o->checkpoint ? KV_OPEN_CHECKPOINT :
		o->ro ? KV_OPEN_READONLY : KV_OPEN_WRITER;

	fs_cli_quiet(1);
	if (fs_cli_open_store(o, mode == KV_OPEN_WRITER, &store))
		goto out;
	if (fs_cli_open_kv(o, store, mode, &db))
		goto out;

	fc.readonly = o->ro;
	fc.flush_interval_ms = o->flush_interval_ms;
	fc.write_buffer_bytes = (size_t)o->write_buffer_mb << 20;
	fc.attr_timeout = o->attr_timeout;
	fc.entry_timeout = o->entry_timeout;
	fc.writeback_cache = !o->no_writeback;
	fc.wal_bypass_bytes = (size_t)o->wal_bypass_mb << 20;
	fc.wal_bypass_quiet_ms = o->wal_bypass_quiet_ms;
	rc = fs_alloc(&fs, &fc);
	if (rc) {
		fs_cli_err("invalid filesystem settings: %s", util_strerror(-rc));
		goto out;
	}
	rc = fs_start(fs, db, store);
	if (rc) {
		fs_cli_err("store %s: %s", o->store, fs_last_error(fs));
		goto out;
	}
	fs_cli_quiet(0);

	/* FUSE arguments: our defaults, then what the user passed through. */
	{
		char *fsname = NULL;
		struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
		int bad = fuse_opt_add_arg(&args, "shalefs") ||
			fuse_opt_add_opt(&fopts, "default_permissions,subtype=shalefs");
		if (!bad && asprintf(&fsname, "fsname=%s", o->store) > 0) {
			bad = fuse_opt_add_opt_escaped(&fopts, fsname);
			free(fsname);
		}
		if (!bad && o->ro)
			bad = fuse_opt_add_opt(&fopts, "ro");
		if (!bad && o->fuse_opts)
			bad = fuse_opt_add_opt(&fopts, o->fuse_opts);
		if (!bad)
			bad = fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, fopts);
		if (!bad && o->debug)
			bad = fuse_opt_add_arg(&args, "-d");
		if (bad) {
			fuse_opt_free_args(&args);
			fs_cli_err("out of memory");
			goto out;
		}
		se = fuse_session_new(&args, fs_fuse_ops(), sizeof(struct fuse_lowlevel_ops), fs);
		fuse_opt_free_args(&args);
	}
	if (!se) {
		fs_cli_err("FUSE rejected the mount options '%s' (see the line above)",
			   fopts ? fopts : "");
		goto out;
	}
	fs_set_session(fs, se);
	if (fuse_set_signal_handlers(se) != 0) {
		fs_cli_err("cannot install signal handlers");
		goto out;
	}
	handlers = 1;
	if (fuse_session_mount(se, o->mountpoint) != 0) {
		fs_cli_err("cannot mount %s on %s (see the line above; is /dev/fuse "
			   "available and fusermount3 installed?)", o->store, o->mountpoint);
		goto out;
	}
	mounted = 1;
	UTIL_INFO(FS_LOG, "mounted %s on %s%s", o->store, o->mountpoint,
		  o->checkpoint ? " (read-only, at a checkpoint)" : o->ro ? " (read-only)" : "");
	fs_cli_detach(report_fd);
	report_fd = -1;

	lc = fuse_loop_cfg_create();
	if (!lc) {
		UTIL_ERROR(FS_LOG, "out of memory");
		goto out;
	}
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, 16);
	rc = fuse_session_loop_mt(se, lc);
	if (rc < 0)
		UTIL_WARN(FS_LOG, "the FUSE session ended with %s", util_strerror(-rc));
	code = 0;
out:
	fs_cli_quiet(0);
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (fs)
		fs_set_session(fs, NULL);
	if (se)
		fuse_session_destroy(se);
	fuse_loop_cfg_destroy(lc);
	if (fs) {
		rc = fs_stop(fs);
		if (rc) {
			UTIL_ERROR(FS_LOG, "flushing buffered data at unmount failed: %s",
				   kv_strerror(rc));
			code = 1;
		}
	}
	if (db) {
		rc = kv_close(db);
		if (rc) {
			UTIL_ERROR(FS_LOG, "closing the engine failed: %s: data written since the "
				   "last fsync may be lost", kv_strerror(rc));
			code = 1;
		}
	}
	fs_free(fs);
	obj_close(store);
	free(fopts);
	if (report_fd >= 0)
		close(report_fd);      /* the parent sees EOF: failure */
	return code;
}

int fs_cli_mount(int argc, char **argv, const char *prog)
{
	struct fs_mount_opts o;
	struct obj_url u;
	int rc, fds[2];
	pid_t pid;

	rc = fs_cli_parse(argc, argv, &o, "MOUNTPOINT");
	if (rc) {
		fs_mountopt_free(&o);
		return rc > 0 ? 0 : 1;
	}
	if (fs_cli_check_url(o.store, &u)) {
		fs_mountopt_free(&o);
		return 1;
	}
	if (u.scheme != OBJ_SCHEME_S3 && (o.endpoint || o.region || o.profile || o.path_style ||
					   o.insecure_tls || o.sign_payload)) {
		fs_cli_err("options endpoint=, region=, profile=, path_style, insecure_tls and "
			   "sign_payload apply to s3:// stores only");
		obj_url_free(&u);
		fs_mountopt_free(&o);
		return 1;
	}
	obj_url_free(&u);
	if (fs_cli_check_mountpoint(o.mountpoint)) {
		fs_mountopt_free(&o);
		return 1;
	}
	if (o.foreground) {
		rc = fs_cli_mount_run(&o, -1);
		fs_mountopt_free(&o);
		return rc;
	}
	if (pipe2(fds, O_CLOEXEC) != 0) {
		fs_cli_err("pipe: %s", strerror(errno));
		fs_mountopt_free(&o);
		return 1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fs_cli_err("fork: %s", strerror(errno));
		fs_mountopt_free(&o);
		return 1;
	}
	if (pid == 0) {
		close(fds[0]);
		if (setsid() < 0)
			UTIL_WARN(FS_LOG, "setsid: %s", strerror(errno));
		rc = fs_cli_mount_run(&o, fds[1]);
		fs_mountopt_free(&o);
		return rc;
	}
	close(fds[1]);
	{
		char c;
		ssize_t n;
		int status;
		do
			n = read(fds[0], &c, 1);
		while (n < 0 && errno == EINTR);
		close(fds[0]);
		fs_mountopt_free(&o);
		if (n == 1 && c == '0')
			return 0;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			return WEXITSTATUS(status);
		return 1;
	}
}

/* ---- dispatch ----------------------------------------------------------------- */

int fs_cli_main(int argc, char **argv)
{
	char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];

	if (strcmp(base, "mount.shalefs") == 0 || strcmp(base, "mount.fuse.shalefs") == 0)
		return fs_cli_mount(argc, argv, base);
	if (argc < 2) {
		fs_cli_err("missing command: usage: shalefs mount|stats|checkpoint ... "
			   "(see shalefs --help)");
		return 1;
	}
	if (strcmp(argv[1], "mount") == 0)
		return fs_cli_mount(argc - 1, argv + 1, "shalefs mount");
	if (strcmp(argv[1], "stats") == 0)
		return fs_cli_stats(argc - 1, argv + 1);
	if (strcmp(argv[1], "checkpoint") == 0)
		return fs_cli_checkpoint(argc - 1, argv + 1);
	if (strcmp(argv[1], "fsck") == 0)
		return fs_cli_fsck(argc - 1, argv + 1);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fs_cli_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("shalefs %s (filesystem format %u)\n", PACKAGE_VERSION, FS_FORMAT_VERSION);
		return 0;
	}
	if (strstr(argv[1], "://"))     /* mount.fuse runs "shalefs STORE MOUNTPOINT -o ..." */
		return fs_cli_mount(argc, argv, "shalefs");
	fs_cli_err("unknown command '%s' (expected mount, stats, checkpoint, fsck; see shalefs --help)",
		   argv[1]);
	return 1;
}

/* ---- helpers for the other subcommands ---------------------------------------- */

int fs_cli_parse_store_args(int argc, char **argv, const char *second,
			    struct fs_mount_opts **out)
{
	struct fs_mount_opts *o = calloc(1, sizeof(*o));
	int rc;

	*out = NULL;
	if (!o) {
		fs_cli_err("out of memory");
		return -1;
	}
	rc = fs_cli_parse(argc, argv, o, second);
	if (rc) {
		fs_mountopt_free(o);
		free(o);
		return rc;
	}
	*out = o;
	return 0;
}

void fs_cli_opts_release(struct fs_mount_opts *o)
{
	if (o) {
		fs_mountopt_free(o);
		free(o);
	}
}

const char *fs_cli_opts_store(const struct fs_mount_opts *o)
{
	return o->store;
}

const char *fs_cli_opts_second(const struct fs_mount_opts *o)
{
	return o->mountpoint;
}

int fs_cli_open_readonly(const struct fs_mount_opts *o, struct obj_backend **store,
			 struct kv_db **db)
{
	*db = NULL;
	int rc = 0;

	fs_cli_quiet(1);
	if (fs_cli_open_store(o, 0, store)) {
		rc = -1;
	} else if (fs_cli_open_kv(o, *store, KV_OPEN_READONLY, db)) {
		obj_close(*store);
		*store = NULL;
		rc = -1;
	}
	fs_cli_quiet(0);
	return rc;
}

int fs_cli_open_store_only(const struct fs_mount_opts *o, struct obj_backend **store)
{
	int rc;

	fs_cli_quiet(1);
	rc = fs_cli_open_store(o, 0, store);
	fs_cli_quiet(0);
	return rc;
}
