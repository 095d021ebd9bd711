/*
 * cli_admin.c - `shalefs umount`, `shalefs sync` and `shalefs format`:
 * the lifecycle around a mount (docs/lease.md).
 *
 *   shalefs umount [--lazy] MOUNTPOINT
 *       fusermount3 -u, then wait until the daemon has flushed, released
 *       the lease and exited; exit 0 only if it reported a clean end.
 *       --lazy: fusermount3 -u -z, and return at once.
 *   shalefs sync MOUNTPOINT
 *       syncfs() (the kernel's dirty pages to the daemon), then the
 *       daemon's "sync" command (its buffers and engine to the store).
 *   shalefs format [-o ...] [--force] [--encrypt] STORE
 *       the store marker, the first manifest (taking the lease) and the
 *       root directory; --encrypt (with -o key_file= or passphrase_file=)
 *       first makes the key object (docs/encryption.md).
 *
 * Exit codes: 0 success, 1 failure (one line naming the cause).
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* How often umount looks whether the daemon has exited, and says it waits. */
#define CLI_UMOUNT_POLL_NS (20ull * 1000000)
#define CLI_UMOUNT_SAY_NS (10ull * 1000000000)

/* Parse "COMMAND MOUNTPOINT" with only `allowed` flags. Returns 0 or the
 * exit code to return (help: 0, error: 1) through *code. */
static int cli_admin_args(int argc, char **argv, const char *cmd, unsigned allowed,
			  struct cli_opts **o, int *code)
{
	int rc = cli_parse_store_args(argc, argv, NULL, o);

	if (rc) {
		*code = rc > 0 ? 0 : 1;
		return -1;
	}
	if (cli_only_flags(*o, allowed, cmd)) {
		cli_opts_release(*o);
		*o = NULL;
		*code = 1;
		return -1;
	}
	return 0;
}

/* The daemon serving mp: its pid (from the stats file). Returns 0 or -1 (printed). */
static int cli_admin_daemon(const char *mp, int64_t *pid)
{
	uint64_t v = 0;
	int rc = cli_ctl_stat(mp, "fs_daemon_pid", &v);

	if (rc == -ENOTCONN) {
		cli_err_stale(mp);
		return -1;
	}
	if (rc || !v) {
		cli_err("%s is not a ShaleFS mount point (no %s/stats)", mp, FS_CTL_NAME);
		return -1;
	}
	*pid = (int64_t)v;
	return 0;
}

/* Run fusermount3 with args; returns its exit status (-1: could not run). */
static int cli_admin_fusermount(const char *flags, const char *mp)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", flags, mp, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int cli_umount(int argc, char **argv)
{
	struct cli_opts *o = NULL;
	struct util_proc_id d = { 0 };
	uint64_t t0, said;
	char mp[PATH_MAX], why[512];
	int code = 1, st;

	if (cli_admin_args(argc, argv, "umount", CLI_F_LAZY, &o, &code))
		return code;
	snprintf(mp, sizeof(mp), "%s", cli_opts_store(o));
	if (cli_admin_daemon(mp, &d.pid))
		goto out;
	if (o->flags & CLI_F_LAZY) {
		/* Detached now; the daemon flushes when the last user lets go. */
		st = cli_admin_fusermount("-uz", mp);
		if (st != 0)
			cli_err("fusermount3 -u -z %s failed (exit %d)", mp, st);
		code = st == 0 ? 0 : 1;
		goto out;
	}
	d.start = util_proc_start_time(d.pid);
	st = cli_admin_fusermount("-u", mp);
	if (st != 0) {
		cli_err("fusermount3 -u %s failed (exit %d; see the line above); nothing was "
			"unmounted", mp, st);
		goto out;
	}
	/* Wait for the daemon to finish: flush, lease release, exit. */
	t0 = said = util_now_ns();
	for (;;) {
		uint64_t start = util_proc_start_time(d.pid);
		if (kill((pid_t)d.pid, 0) != 0 || (d.start && start != d.start))
			break;
		if (util_now_ns() - said >= CLI_UMOUNT_SAY_NS) {
			said = util_now_ns();
			cli_err("waiting for the daemon (pid %" PRId64 ") to finish flushing %s (%" PRIu64
				" s so far)", d.pid, mp, (said - t0) / 1000000000u);
		}
		util_sleep_ns(CLI_UMOUNT_POLL_NS);
	}
	st = cli_ctl_status_take(d.pid, why, sizeof(why));
	if (st == -ENOENT)
		cli_err("the daemon of %s (pid %" PRId64 ") exited without reporting how it "
			"ended (killed?); writes not yet durable may be lost", mp, d.pid);
	else if (st != 0)
		cli_err("the daemon of %s (pid %" PRId64 ") ended badly: %s", mp, d.pid, why);
	else
		code = 0;
out:
	cli_opts_release(o);
	return code;
}

int cli_sync(int argc, char **argv)
{
	struct cli_opts *o = NULL;
	char reply[512];
	int64_t pid;
	int code = 1, fd, rc;
	const char *mp;

	if (cli_admin_args(argc, argv, "sync", 0, &o, &code))
		return code;
	mp = cli_opts_store(o);
	if (cli_admin_daemon(mp, &pid))
		goto out;
	/* The kernel's dirty pages first: the daemon cannot see them. */
	fd = open(mp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) != 0) {
		cli_err("syncfs %s: %s", mp, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	rc = cli_ctl_command(mp, "sync\n", reply, sizeof(reply));
	if (rc) {
		cli_err("sync of %s failed: %s", mp, reply[0] ? reply : strerror(-rc));
		goto out;
	}
	code = 0;
out:
	cli_opts_release(o);
	return code;
}

int cli_format(int argc, char **argv)
{
	struct cli_opts *o = NULL;
	struct obj_backend *store = NULL;
	char first[OBJ_NAME_MAX] = "";
	int code = 1, rc;

	if (cli_admin_args(argc, argv, "format", CLI_F_FORCE | CLI_F_ENCRYPT, &o, &code))
		return code;
	if ((o->flags & CLI_F_ENCRYPT) && !o->key_file && !o->passphrase_file) {
		cli_err("format --encrypt needs the master key: -o key_file=PATH or -o "
			"passphrase_file=PATH");
		goto out;
	}
	if (!(o->flags & CLI_F_ENCRYPT) && (o->key_file || o->passphrase_file)) {
		cli_err("a key was given without --encrypt: add --encrypt to make an encrypted "
			"store (docs/encryption.md), or drop key_file=/passphrase_file=");
		goto out;
	}
	cli_quiet(1);
	rc = cli_open_store_create(o, &store);
	cli_quiet(0);
	if (rc)
		goto out;
	rc = kv_store_format(store, (o->flags & CLI_F_FORCE) != 0, first, sizeof(first));
	if (rc == -EEXIST) {
		cli_err("%s already holds a ShaleFS store; nothing was changed (mount it, or "
			"choose another location)", o->store);
		goto out;
	}
	if (rc == -ENOTEMPTY) {
		cli_err("%s holds other objects/files (the first is '%s'), so it is not formatted; "
			"choose an empty location, or use --force to put a store beside them",
			o->store, first);
		goto out;
	}
	if (rc) {
		cli_err("formatting %s failed: %s", o->store, kv_strerror(rc));
		goto out;
	}
	/* The first manifest and the root directory. */
	if (cli_writer_pass(o, store, "formatting"))
		goto out;
	printf("shalefs: formatted %s (store format %u%s, filesystem format %u)\n", o->store,
	       obj_is_encrypted(store) ? KV_STORE_FORMAT_ENCRYPTED : KV_STORE_FORMAT_PLAIN,
	       obj_is_encrypted(store) ? ", encrypted" : "", FS_FORMAT_VERSION);
	code = fflush(stdout) == 0 ? 0 : 1;
out:
	obj_close(store);
	cli_opts_release(o);
	return code;
}
