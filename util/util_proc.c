/*
 * util_proc.c - who this process is, and whether another one still runs.
 *
 * A store's writer lease (kv/kv_lease.c) records its holder as a
 * struct util_proc_id. Another process reading that record decides with
 * util_proc_state() whether the holder can still write:
 *
 *   host_id    /etc/machine-id (or dbus's copy): the same across reboots.
 *              Two hosts that share it (cloned images) are told apart
 *              only by host name, which is compared too.
 *   boot_id    the kernel's random id of this boot: a holder recorded
 *              under another boot of this host is gone.
 *   pid_ns     the inode of the pid namespace: a pid means something only
 *              inside its namespace, so a holder in another container is
 *              treated as another host (never judged dead from here).
 *   pid, start the process and its start time in clock ticks since boot
 *              (field 22 of /proc/PID/stat): a pid reused by an unrelated
 *              process has another start time. A zombie (killed, its
 *              parent not yet told) counts as gone: it runs no code.
 *
 * Every lookup that fails leaves its field empty (0 or ""), and a holder
 * whose identity cannot be compared is reported as UTIL_PROC_FOREIGN,
 * never as dead: a wrong "dead" would let two writers run.
 */
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read the first line of path into buf (no newline). Returns 0 or -errno. */
static int util_proc_read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f)) {
		fclose(f);
		buf[0] = '\0';
		return -EIO;
	}
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

/* Keep only [A-Za-z0-9-]: these ids go into text records one per line. */
static void util_proc_clean(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++)
		if ((*r >= '0' && *r <= '9') || (*r >= 'a' && *r <= 'z') ||
		    (*r >= 'A' && *r <= 'Z') || *r == '-')
			*w++ = *r;
	*w = '\0';
}

/* State letter (field 3) and start time (field 22) of pid's
 * /proc/PID/stat. Returns 0 or -1 (no such process, or unreadable). */
static int util_proc_stat(int64_t pid, char *state, uint64_t *out)
{
	char path[64], buf[1024];
	unsigned long long start = 0;
	const char *p;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and parentheses,
	 * so count fields from the last ')'. starttime is field 22; after
	 * the ')' come fields 3 (state) onwards. */
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	for (int field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		if (field == 3)
			*state = *p;
		if (field == 22) {
			if (sscanf(p, "%llu", &start) != 1)
				return -1;
			break;
		}
		while (*p && *p != ' ')
			p++;
	}
	*out = start;
	return 0;
}

uint64_t util_proc_start_time(int64_t pid)
{
	char state;
	uint64_t start;
	return util_proc_stat(pid, &state, &start) == 0 ? start : 0;
}

int util_proc_self(struct util_proc_id *id)
{
	struct stat st;

	memset(id, 0, sizeof(*id));
	if (gethostname(id->host, sizeof(id->host)) != 0)
		snprintf(id->host, sizeof(id->host), "unknown");
	id->host[sizeof(id->host) - 1] = '\0';
	id->host[strcspn(id->host, "\r\n")] = '\0';
	if (util_proc_read_line("/etc/machine-id", id->host_id, sizeof(id->host_id)) != 0 ||
	    !id->host_id[0])
		(void)util_proc_read_line("/var/lib/dbus/machine-id", id->host_id,
					  sizeof(id->host_id));
	util_proc_clean(id->host_id);
	(void)util_proc_read_line("/proc/sys/kernel/random/boot_id", id->boot_id,
				  sizeof(id->boot_id));
	util_proc_clean(id->boot_id);
	if (stat("/proc/self/ns/pid", &st) == 0)
		id->pid_ns = (uint64_t)st.st_ino;
	id->pid = (int64_t)getpid();
	id->start = util_proc_start_time(id->pid);
	return 0;
}

int util_proc_same_host(const struct util_proc_id *a, const struct util_proc_id *b)
{
	return a->host_id[0] && strcmp(a->host_id, b->host_id) == 0 &&
	       strcmp(a->host, b->host) == 0;
}

enum util_proc_state util_proc_state(const struct util_proc_id *id)
{
	struct util_proc_id me;

	util_proc_self(&me);
	if (!util_proc_same_host(id, &me))
		return UTIL_PROC_FOREIGN;
	/* Another boot of this host: every process of that boot is gone. */
	if (id->boot_id[0] && me.boot_id[0] && strcmp(id->boot_id, me.boot_id) != 0)
		return UTIL_PROC_DEAD;
	if (!id->pid_ns || id->pid_ns != me.pid_ns || id->pid <= 0)
		return UTIL_PROC_FOREIGN;
	if (kill((pid_t)id->pid, 0) != 0 && errno == ESRCH)
		return UTIL_PROC_DEAD;
	/* The pid exists (EPERM means it exists too). A zombie (killed, not
	 * yet reaped by its parent) runs no code any more. Same process only
	 * if it started when the record says. */
	{
		char state = '?';
		uint64_t start = 0;
		if (util_proc_stat(id->pid, &state, &start) == 0) {
			if (state == 'Z' || state == 'X')
				return UTIL_PROC_DEAD;
			if (id->start && start && start != id->start)
				return UTIL_PROC_DEAD;
		}
	}
	return UTIL_PROC_ALIVE;
}
