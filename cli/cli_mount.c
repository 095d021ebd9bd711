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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fuse_opt.h>

static int cli_check_mountpoint(const char *mp)
{
	struct stat st;
	if (stat(mp, &st) != 0) {
		cli_err("mount point %s: %s", mp, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		cli_err("mount point %s is not a directory", mp);
		return -1;
	}
	return 0;
}

/* Tell the waiting parent the mount is up, and leave the terminal. */
static void cli_detach(int fd)
{
	int nul;
	char ok = '0';

	if (fd < 0)
		return;
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
	util_log_use_syslog(1);
	if (chdir("/") != 0) {
		/* Harmless: only keeps a directory busy. */
	}
}

/* Everything after the (optional) fork. Returns the exit code. */
static int cli_mount_run(struct cli_opts *o, int report_fd)
{
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
	if (fuse_session_mount(se, o->mountpoint) != 0) {
		cli_err("cannot mount %s on %s (see the line above; is /dev/fuse "
			"available and fusermount3 installed?)", o->store, o->mountpoint);
		goto out;
	}
	mounted = 1;
	UTIL_INFO(CLI_LOG, "mounted %s on %s%s", o->store, o->mountpoint,
		  o->checkpoint ? " (read-only, at a checkpoint)" : o->ro ? " (read-only)" : "");
	cli_detach(report_fd);
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
	if (cli_only_flags(&o, 0, "mount") || cli_check_url(o.store, &u)) {
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
					   o.insecure_tls || o.sign_payload)) {
		cli_err("options endpoint=, region=, profile=, path_style, insecure_tls and "
			"sign_payload apply to s3:// stores only");
		obj_url_free(&u);
		cli_opts_free(&o);
		return 1;
	}
	obj_url_free(&u);
	if (cli_check_mountpoint(o.mountpoint)) {
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
