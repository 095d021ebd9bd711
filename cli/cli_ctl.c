/*
 * cli_ctl.c - talking to a running daemon through its mount point: the
 * control files MOUNTPOINT/.shalefs/{stats,ctl} (fs/fs_ctl.c), and the
 * status file a daemon leaves when it exits (for `shalefs umount`).
 *
 * STATUS FILES
 *   A mount daemon that ends writes RUNDIR/shalefs/<pid>.status, one
 *   line: "0 clean" when every write it accepted is durable and the lease
 *   released, "1 <why>" otherwise. RUNDIR is /run for root, else
 *   $XDG_RUNTIME_DIR, else /tmp (as shalefs-<uid>/). `shalefs umount`
 *   reads and removes it after the daemon has exited; a daemon killed
 *   before it could write one leaves none, and umount says so.
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

int cli_ctl_stat(const char *mountpoint, const char *key, uint64_t *out)
{
	char path[PATH_MAX + 32], line[256];
	size_t kl = strlen(key);
	FILE *f;
	int rc = -ENOENT;

	snprintf(path, sizeof(path), "%s/%s/stats", mountpoint, FS_CTL_NAME);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			*out = strtoull(line + kl + 1, NULL, 10);
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

int cli_ctl_command(const char *mountpoint, const char *cmd, char *reply, size_t len)
{
	char path[PATH_MAX + 32];
	ssize_t n;
	int fd, rc = 0;

	if (len)
		reply[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s/ctl", mountpoint, FS_CTL_NAME);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, cmd, strlen(cmd)) < 0)
		rc = -errno;
	/* The reply line says what happened, on success and failure alike. */
	if (len > 1 && (n = pread(fd, reply, len - 1, 0)) > 0) {
		reply[n] = '\0';
		reply[strcspn(reply, "\n")] = '\0';
	}
	close(fd);
	return rc;
}

void cli_ctl_status_path(int64_t pid, char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (geteuid() == 0)
		snprintf(buf, len, "/run/shalefs/%" PRId64 ".status", pid);
	else if (xdg && xdg[0] == '/')
		snprintf(buf, len, "%s/shalefs/%" PRId64 ".status", xdg, pid);
	else
		snprintf(buf, len, "/tmp/shalefs-%u/%" PRId64 ".status", (unsigned)geteuid(), pid);
}

void cli_ctl_status_write(int code, const char *why)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], *slash;
	FILE *f;

	cli_ctl_status_path((int64_t)getpid(), path, sizeof(path));
	slash = strrchr(path, '/');
	*slash = '\0';
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return;                     /* umount will say the daemon did not report */
	*slash = '/';
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f, "%d %s\n", code, why);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		unlink(tmp);
}

int cli_ctl_status_take(int64_t pid, char *why, size_t len)
{
	char path[PATH_MAX], line[512];
	FILE *f;
	int code;

	cli_ctl_status_path(pid, path, sizeof(path));
	f = fopen(path, "re");
	if (!f)
		return -ENOENT;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	unlink(path);
	line[strcspn(line, "\n")] = '\0';
	code = atoi(line);
	snprintf(why, len, "%s", strchr(line, ' ') ? strchr(line, ' ') + 1 : "");
	return code;
}
