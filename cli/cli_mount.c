/*
 * cli_mount.c - `shalefs mount`: check the command line, fork, open the
 * store, the engine and the filesystem, and serve FUSE until unmounted.
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
 *   buffers are flushed, the engine closed (kv_close flushes the WAL and
 *   then releases the writer lease, docs/lease.md), the status file for
 *   `shalefs umount` written (cli_ctl.c), and the process exits 0 if both
 *   succeeded.
 *
 * LOGGING
 *   Every line names the store (util_log_set_tag). With -o log_file=PATH
 *   the lines go to PATH from the start, foreground or not; the parent
 *   opens it before the fork, so a log file that cannot be opened fails
 *   the mount at once with one line. Without it a foreground mount logs
 *   to stderr; a background one, once mounted, to syslog when /dev/log
 *   accepts a connection, and otherwise to a file under the user's state
 *   directory (cli_mount_log_fallback), which it names on the terminal
 *   just before it detaches: a mount that fails leaves no such file and
 *   prints only its one line. After the detach, libfuse's own messages go
 *   to the same log.
 *
 * SIGNALS
 *   SIGTERM and SIGINT end the session (libfuse's handlers). SIGHUP never
 *   does: it is blocked in every thread from the start of cli_mount_run
 *   (so the threads the engine and libfuse create inherit the block), its
 *   disposition is set after fuse_set_signal_handlers to a handler that
 *   does nothing (libfuse installs one that ends the session), and one
 *   thread takes it with sigwait() and reopens the log file
 *   (util_log_reopen), which logrotate needs: rename, then SIGHUP. No
 *   signal handler does any work.
 *
 * METRICS
 *   With -o metrics= and/or metrics_file= (cli_metrics.c) the exporter
 *   starts once the mount is up and before the detach, so a port that
 *   cannot be bound fails the mount with one line; it stops after the
 *   final flush and before the engine closes, writing the file once more.
 *
 * OWNERSHIP
 *   A read-write mount takes the store's writer lease before it opens
 *   anything for writing: it waits up to lease_wait= for a live holder on
 *   this host (an unmount still flushing), takes over one that is gone,
 *   and refuses any other unless -o takeover. Read-only and checkpoint
 *   mounts register as readers. All of it is kv_open's, given a
 *   struct kv_lease_conf.
 */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fuse_log.h>
#include <fuse_opt.h>

/*
 * The mount point must be a directory, not a stale mount, and not a live
 * ShaleFS mount: the kernel would stack the new mount on it, hiding the
 * one below, which keeps running (and writing) unseen until an unmount
 * of the top one brings it back. Other mounts (a disk at /mnt) may be
 * mounted over, as mount(8) allows.
 */
static int cli_check_mountpoint(const char *mp)
{
	struct statx st;
	uint64_t pid;
	/* FORCE_SYNC: a FUSE mount whose daemon died answers a plain stat()
	 * from the attributes the kernel still caches; asking the daemon
	 * is what shows that the mount is stale. */
	if (statx(AT_FDCWD, mp, AT_STATX_FORCE_SYNC, STATX_TYPE, &st) != 0) {
		if (errno == ENOTCONN)
			cli_err_stale(mp);
		else
			cli_err("mount point %s: %s", mp, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.stx_mode)) {
		cli_err("mount point %s is not a directory", mp);
		return -1;
	}
	if ((st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    (st.stx_attributes & STATX_ATTR_MOUNT_ROOT) &&
	    cli_ctl_stat(mp, "fs_daemon_pid", &pid) == 0) {
		cli_err("mount point %s already has a ShaleFS mounted on it (daemon pid %" PRIu64
			"): unmount it first (shalefs umount %s)", mp, pid, mp);
		return -1;
	}
	return 0;
}

/* ---- logging ---------------------------------------------------------------- */

/* mkdir -p path with mode for the directories it creates. Returns 0 or -errno. */
static int cli_mount_mkdirs(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, path, n + 1);
	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) != 0 && errno != EEXIST)
			return -errno;
		*s = c;
		if (!c)
			return 0;
	}
}

/*
 * Where a background daemon without syslog and without log_file= logs:
 * /var/log/shalefs/ for root, else $XDG_STATE_HOME/shalefs/ or
 * ~/.local/state/shalefs/, in a file named after the mount point's
 * absolute path with the slashes turned into dashes (/mnt/x ->
 * mnt-x.log; / -> -.log). Creates the directory. Returns 0 with the path
 * in buf, or -errno (buf still names what was tried, or is "").
 */
static int cli_mount_log_fallback(const char *mountpoint, char *buf, size_t len)
{
	char mp[PATH_MAX], dir[PATH_MAX];
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	int n;

	buf[0] = '\0';
	if (!realpath(mountpoint, mp))
		return -errno;
	if (geteuid() == 0)
		n = snprintf(dir, sizeof(dir), "/var/log/shalefs");
	else if (xdg && xdg[0] == '/')
		n = snprintf(dir, sizeof(dir), "%s/shalefs", xdg);
	else if (home && home[0] == '/')
		n = snprintf(dir, sizeof(dir), "%s/.local/state/shalefs", home);
	else
		return -ENOENT;
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	for (char *s = mp; *s; s++)
		if (*s == '/')
			*s = '-';
	n = snprintf(buf, len, "%s/%s.log", dir, mp[1] ? mp + 1 : mp);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return cli_mount_mkdirs(dir, geteuid() == 0 ? 0750 : 0700);
}

/*
 * Before the fork: name the store in every line, and open log_file= if
 * given, so that a log file that cannot be opened fails the mount at once.
 * Returns 0, or -1 (printed).
 */
static int cli_mount_log_setup(const struct cli_opts *o)
{
	int rc;

	util_log_set_tag(o->store);
	if (!o->log_file)
		return 0;
	rc = util_log_open_file(o->log_file);
	if (rc) {
		cli_err("log file %s: %s", o->log_file, util_strerror(-rc));
		return -1;
	}
	return 0;
}

/*
 * At the detach, without log_file=: syslog when it is reachable, else the
 * fallback file, named on the terminal (still stderr here). Never fails
 * the mount: refusing it for want of a log would be worse than no log.
 */
static void cli_mount_log_detach(const char *mountpoint)
{
	char path[PATH_MAX];
	int rc;

	if (util_log_syslog_reachable()) {
		util_log_use_syslog(1);
		return;
	}
	rc = cli_mount_log_fallback(mountpoint, path, sizeof(path));
	if (rc == 0)
		rc = util_log_open_file(path);
	if (rc == 0) {
		cli_err("no syslog here; logging to %s", path);
		return;
	}
	cli_err("no syslog here, and the log file %s cannot be opened (%s): the daemon's "
		"messages will be lost; use -o log_file=PATH",
		path[0] ? path : "under the state directory", util_strerror(-rc));
	util_log_use_syslog(1);
}

/* libfuse's messages, once stderr is /dev/null: into our log. */
static void cli_mount_fuse_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	enum util_log_level l = level <= FUSE_LOG_ERR ? UTIL_LOG_ERROR :
		level == FUSE_LOG_WARNING ? UTIL_LOG_WARN :
		level == FUSE_LOG_DEBUG ? UTIL_LOG_DEBUG : UTIL_LOG_INFO;

	util_vlog(l, "fuse", fmt, ap);
}

/* ---- SIGHUP: reopen the log ---------------------------------------------------- */

/* The thread that takes SIGHUP (see SIGNALS above). */
struct cli_hup {
	pthread_t thread;
	atomic_int stop;           /* set before the thread is woken to end */
	int started;
};

/* SIGHUP's disposition: neither the default (terminate) nor libfuse's
 * handler (end the session). Never runs while SIGHUP is blocked, which
 * it is in every thread; does nothing if it does. */
static void cli_mount_hup_ignore(int sig)
{
	(void)sig;
}

static void *cli_mount_hup_main(void *arg)
{
	struct cli_hup *h = arg;
	sigset_t set;
	int sig;

	util_thread_setup("shalefs-hup", 0);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (atomic_load(&h->stop))
			break;
		if (util_log_reopen() == 1)
			UTIL_INFO(CLI_LOG, "SIGHUP: no log file to reopen (it does not unmount; "
				  "use shalefs umount)");
	}
	return NULL;
}

/* Take SIGHUP from libfuse and start the thread. Returns 0 or -errno. */
static int cli_mount_hup_start(struct cli_hup *h)
{
	struct sigaction sa;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_mount_hup_ignore;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGHUP, &sa, NULL) != 0)
		return -errno;
	atomic_store(&h->stop, 0);
	rc = pthread_create(&h->thread, NULL, cli_mount_hup_main, h);
	if (rc)
		return -rc;
	h->started = 1;
	return 0;
}

static void cli_mount_hup_stop(struct cli_hup *h)
{
	if (!h->started)
		return;
	atomic_store(&h->stop, 1);
	CHECK_RETURN(pthread_kill(h->thread, SIGHUP));
	CHECK_RETURN(pthread_join(h->thread, NULL));
	h->started = 0;
}

/* ---- mounting ---------------------------------------------------------------- */

/* Choose the log (unless log_file= did), tell the waiting parent the
 * mount is up, and leave the terminal. */
static void cli_detach(int fd, const struct cli_opts *o)
{
	int nul;
	char ok = '0';

	if (fd < 0)
		return;
	if (!o->log_file)
		cli_mount_log_detach(o->mountpoint);
	if (write(fd, &ok, 1) != 1)
		UTIL_WARN(CLI_LOG, "cannot report the mount to the parent: %s", strerror(errno));
	close(fd);
	nul = open("/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		if (nul > 2)
			close(nul);
	}
	fuse_set_log_func(cli_mount_fuse_log);
	if (chdir("/") != 0) {
		/* Harmless: only keeps a directory busy. */
	}
}

/* Everything after the (optional) fork. Returns the exit code. */
static int cli_mount_run(struct cli_opts *o, int report_fd)
{
	struct cli_hup hup = { .started = 0 };
	struct cli_metrics *metrics = NULL;
	sigset_t hupset;
	struct obj_backend *store = NULL;
	struct kv_db *db = NULL;
	struct fs *fs = NULL;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *lc = NULL;
	struct fs_config fc = FS_CONFIG_INIT;
	char *fopts = NULL, mp[PATH_MAX];
	const char *why = "the mount failed";
	int rc, code = 1, mounted = 0, handlers = 0;
	enum kv_open_mode mode = o->checkpoint ? KV_OPEN_CHECKPOINT :
		o->ro ? KV_OPEN_READONLY : KV_OPEN_WRITER;
	struct kv_lease_conf lease = {
		.mountpoint = realpath(o->mountpoint, mp) ? mp : o->mountpoint,
		.wait_ms = o->lease_wait_s * 1000u, .takeover = o->takeover,
		.waiting = cli_lease_waiting, .arg = o,
	};

	/* Before any thread exists, so that every thread inherits it. */
	sigemptyset(&hupset);
	sigaddset(&hupset, SIGHUP);
	CHECK_RETURN(pthread_sigmask(SIG_BLOCK, &hupset, NULL));
	cli_quiet(1);
	if (cli_open_store(o, mode == KV_OPEN_WRITER, &store))
		goto out;
	if (cli_open_kv(o, store, mode, &lease, &db))
		goto out;

	fc.readonly = o->ro;
	fc.flush_interval_ms = o->flush_interval_ms;
	fc.write_buffer_bytes = (size_t)o->write_buffer_mb << 20;
	fc.attr_timeout = o->attr_timeout;
	fc.entry_timeout = o->entry_timeout;
	fc.writeback_cache = !o->no_writeback;
	fc.wal_bypass_bytes = (size_t)o->wal_bypass_mb << 20;
	fc.wal_bypass_quiet_ms = o->wal_bypass_quiet_ms;
	fc.inode_cache = o->inode_cache;
	fc.size_limit = o->size_bytes;
	fc.store_url = o->store;
	fc.mountpoint = lease.mountpoint;
	fc.checkpoint = o->checkpoint;
	rc = fs_alloc(&fs, &fc);
	if (rc) {
		cli_err("invalid filesystem settings: %s", util_strerror(-rc));
		goto out;
	}
	rc = fs_start(fs, db, store);
	if (rc) {
		cli_err("store %s: %s", o->store, fs_last_error(fs));
		goto out;
	}
	cli_quiet(0);

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
			cli_err("out of memory");
			goto out;
		}
		se = fuse_session_new(&args, fs_fuse_ops(), sizeof(struct fuse_lowlevel_ops), fs);
		fuse_opt_free_args(&args);
	}
	if (!se) {
		cli_err("FUSE rejected the mount options '%s' (see the line above)",
			fopts ? fopts : "");
		goto out;
	}
	fs_set_session(fs, se);
	if (fuse_set_signal_handlers(se) != 0) {
		cli_err("cannot install signal handlers");
		goto out;
	}
	handlers = 1;
	rc = cli_mount_hup_start(&hup);
	if (rc) {
		cli_err("cannot set up SIGHUP (reopening the log): %s", util_strerror(-rc));
		goto out;
	}
	if (fuse_session_mount(se, o->mountpoint) != 0) {
		cli_err("cannot mount %s on %s (see the line above; is /dev/fuse "
			"available and fusermount3 installed?)", o->store, o->mountpoint);
		goto out;
	}
	mounted = 1;
	/* Once mounted, before the detach: a port that cannot be bound fails
	 * the mount with its one line. */
	if (cli_metrics_start(&metrics, o, fs, db, store))
		goto out;
	UTIL_INFO(CLI_LOG, "mounted %s on %s%s", o->store, o->mountpoint,
		  o->checkpoint ? " (read-only, at a checkpoint)" : o->ro ? " (read-only)" : "");
	cli_detach(report_fd, o);
	report_fd = -1;

	lc = fuse_loop_cfg_create();
	if (!lc) {
		UTIL_ERROR(CLI_LOG, "out of memory");
		goto out;
	}
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, 16);
	rc = fuse_session_loop_mt(se, lc);
	if (rc < 0)
		UTIL_WARN(CLI_LOG, "the FUSE session ended with %s", util_strerror(-rc));
	code = 0;
	why = "clean: everything written is durable";
out:
	cli_quiet(0);
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	cli_mount_hup_stop(&hup);
	if (fs)
		fs_set_session(fs, NULL);
	if (se)
		fuse_session_destroy(se);
	fuse_loop_cfg_destroy(lc);
	if (fs) {
		rc = fs_stop(fs);
		if (rc) {
			UTIL_ERROR(CLI_LOG, "flushing buffered data at unmount failed: %s",
				   kv_strerror(rc));
			code = 1;
			why = "flushing buffered data at unmount failed";
		}
	}
	/* After the last flush (its counters go into the file), before the
	 * engine closes: a scrape during a long unmount still answers. */
	cli_metrics_stop(metrics);
	if (db) {
		rc = kv_close(db);
		if (rc) {
			UTIL_ERROR(CLI_LOG, "closing the engine failed: %s: data written since the "
				   "last fsync may be lost", kv_strerror(rc));
			code = 1;
			why = "closing the engine failed: data written since the last fsync may "
			      "be lost (see the daemon's log)";
		}
	}
	fs_free(fs);
	obj_close(store);
	free(fopts);
	if (mounted)
		cli_ctl_status_write(code, why);
	if (report_fd >= 0)
		close(report_fd);      /* the parent sees EOF: failure */
	return code;
}

int cli_mount(int argc, char **argv, const char *prog)
{
	struct cli_opts o;
	struct obj_url u;
	int rc, fds[2];
	pid_t pid;

	rc = cli_parse(argc, argv, &o, "MOUNTPOINT");
	if (rc) {
		cli_opts_free(&o);
		return rc > 0 ? 0 : 1;
	}
	if (cli_only_flags(&o, 0, "mount") || cli_check_url(&o, &u)) {
		cli_opts_free(&o);
		return 1;
	}
	if (o.takeover && o.ro) {
		cli_err("option 'takeover' applies to read-write mounts only");
		obj_url_free(&u);
		cli_opts_free(&o);
		return 1;
	}
	if (u.scheme != OBJ_SCHEME_S3 && (o.endpoint || o.region || o.profile || o.path_style ||
					   o.insecure_tls || o.sign_payload || o.credentials_file ||
					   o.no_sign_request)) {
		cli_err("options endpoint=, region=, profile=, credentials_file=, no_sign_request, "
			"path_style, insecure_tls and sign_payload apply to s3:// stores only");
		obj_url_free(&u);
		cli_opts_free(&o);
		return 1;
	}
	obj_url_free(&u);
	if (cli_check_mountpoint(o.mountpoint)) {
		cli_opts_free(&o);
		return 1;
	}
	if (cli_mount_log_setup(&o)) {
		cli_opts_free(&o);
		return 1;
	}
	if (o.foreground) {
		rc = cli_mount_run(&o, -1);
		cli_opts_free(&o);
		return rc;
	}
	if (pipe2(fds, O_CLOEXEC) != 0) {
		cli_err("pipe: %s", strerror(errno));
		cli_opts_free(&o);
		return 1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		cli_err("fork: %s", strerror(errno));
		cli_opts_free(&o);
		return 1;
	}
	if (pid == 0) {
		close(fds[0]);
		if (setsid() < 0)
			UTIL_WARN(CLI_LOG, "setsid: %s", strerror(errno));
		rc = cli_mount_run(&o, fds[1]);
		cli_opts_free(&o);
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
		cli_opts_free(&o);
		if (n == 1 && c == '0')
			return 0;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			return WEXITSTATUS(status);
		return 1;
	}
}
