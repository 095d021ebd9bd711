/*
 * fsbench_ops - the timed loops of bench/fsbench: one workload per call, on
 * any mounted filesystem, stopping at a time limit.
 *
 *   fsbench_ops create   DIR N LIMIT        N empty files (open O_CREAT+close)
 *   fsbench_ops write    DIR N SIZE LIMIT   N files of SIZE bytes, then syncfs
 *   fsbench_ops stat     DIR LIMIT          readdir + lstat of every entry
 *   fsbench_ops read     DIR LIMIT          readdir + read of every file
 *   fsbench_ops walkread DIR LIMIT          the same, recursively (a tree)
 *   fsbench_ops seqwrite FILE BYTES LIMIT   1 MiB writes, then fsync
 *   fsbench_ops seqread  FILE LIMIT         1 MiB reads to EOF
 *   fsbench_ops mkfile   FILE BYTES         untimed set-up: fill + fsync
 *   fsbench_ops randwrite FILE N LIMIT      N aligned 4 KiB pwrites, then fsync
 *   fsbench_ops randread  FILE N LIMIT      N aligned 4 KiB preads
 *   fsbench_ops rename   FROM TO NFILES     rename(2) of a directory + fsync
 *                                           of the parent; rate = NFILES/s
 *   fsbench_ops rmrf     DIR LIMIT          unlink/rmdir depth-first (rm -rf)
 *   fsbench_ops fsynclat DIR N             N rounds of a 4 KiB pwrite + fsync
 *                                           to one of 8 files, 20 ms apart
 *                                           (a database's commits); prints
 *                                           FSYNC n=N p50_ms= p90_ms= max_ms=
 *   fsbench_ops count    DIR                files under DIR (untimed)
 *   fsbench_ops gentree  DIR N              deterministic tree of N files
 *
 * Every timed call prints one line:
 *   RESULT op=OP n=DONE bytes=BYTES secs=S complete=0|1
 * where S includes the final sync/fsync, DONE counts completed items
 * (files, entries, or 4 KiB operations) and complete=0 means the time limit
 * (LIMIT seconds, 0 = none) stopped the loop first; the rate is then the
 * one of the completed part. A failure prints "ERROR ..." and exits 1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double t0, limit;
static int stopped;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int over(void)
{
	if (limit > 0 && now() - t0 >= limit)
		stopped = 1;
	return stopped;
}

static void die(const char *what, const char *path)
{
	printf("ERROR %s %s: %s\n", what, path, strerror(errno));
	fflush(stdout);
	exit(1);
}

static void result(const char *op, unsigned long long n, unsigned long long bytes)
{
	printf("RESULT op=%s n=%llu bytes=%llu secs=%.4f complete=%d\n", op, n, bytes,
	       now() - t0, !stopped);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t xs(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void syncdir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		die("open", dir);
	if (syncfs(fd) != 0)
		die("syncfs", dir);
	close(fd);
}

static char buf[1 << 20];

/* Read one whole file; returns bytes. */
static unsigned long long readall(int dfd, const char *name, const char *what)
{
	unsigned long long tot = 0;
	ssize_t r;
	int fd = openat(dfd, name, O_RDONLY);
	if (fd < 0)
		die(what, name);
	while ((r = read(fd, buf, sizeof buf)) > 0)
		tot += (unsigned long long)r;
	if (r < 0)
		die("read", name);
	close(fd);
	return tot;
}

/* Recursive walk; op: 0 count, 1 read, 2 rm. */
static unsigned long long walk_n, walk_bytes;
static void walk(int dfd, const char *path, int op)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	if (!d)
		die("fdopendir", path);
	while (!over() && (e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		unsigned char t = e->d_type;
		if (t == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW))
				die("stat", e->d_name);
			t = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
		}
		if (t == DT_DIR) {
			int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY);
			if (sub < 0)
				die("open", e->d_name);
			walk(sub, e->d_name, op);
			if (op == 2 && !stopped) {
				if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR))
					die("rmdir", e->d_name);
				walk_n++;
			}
		} else if (op == 1) {
			walk_bytes += readall(dirfd(d), e->d_name, "open");
			walk_n++;
		} else if (op == 2) {
			if (unlinkat(dirfd(d), e->d_name, 0))
				die("unlink", e->d_name);
			walk_n++;
		} else {
			walk_n++;
		}
	}
	closedir(d);
}

static int opendir_fd(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		die("open", dir);
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: see the top of bench/fsbench_ops.c\n");
		return 2;
	}
	const char *op = argv[1], *p = argv[2];
	char name[PATH_MAX];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (char)(xs() & 0xff);   /* incompressible */

	if (!strcmp(op, "create") || !strcmp(op, "write")) {
		int w = op[0] == 'w';
		long n = atol(argv[3]);
		size_t size = w ? (size_t)atol(argv[4]) : 0;
		limit = atof(argv[w ? 5 : 4]);
		int dfd = opendir_fd(p);
		long i;
		t0 = now();
		for (i = 0; i < n && !over(); i++) {
			snprintf(name, sizeof name, "f%06ld", i);
			int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
			if (fd < 0)
				die("create", name);
			if (size && write(fd, buf + (i % 256) * 4096, size) != (ssize_t)size)
				die("write", name);
			if (close(fd))
				die("close", name);
		}
		if (w && syncfs(dfd))
			die("syncfs", p);
		result(op, (unsigned long long)i, (unsigned long long)i * size);
	} else if (!strcmp(op, "stat") || !strcmp(op, "read")) {
		int rd = op[0] == 'r';
		unsigned long long n = 0, bytes = 0;
		limit = atof(argv[3]);
		t0 = now();
		int dfd = opendir_fd(p);
		DIR *d = fdopendir(dfd);
		struct dirent *e;
		while (!over() && (e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			if (rd) {
				bytes += readall(dirfd(d), e->d_name, "open");
			} else {
				struct stat st;
				if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW))
					die("stat", e->d_name);
			}
			n++;
		}
		closedir(d);
		result(op, n, bytes);
	} else if (!strcmp(op, "walkread") || !strcmp(op, "rmrf") || !strcmp(op, "count")) {
		int mode = op[0] == 'w' ? 1 : op[0] == 'r' ? 2 : 0;
		limit = mode ? atof(argv[3]) : 0;
		t0 = now();
		walk(opendir_fd(p), p, mode);
		if (mode == 2 && !stopped && rmdir(p))
			die("rmdir", p);
		if (mode == 2 && !stopped)
			walk_n++;
		if (mode == 0)
			printf("%llu\n", walk_n);
		else
			result(op, walk_n, walk_bytes);
	} else if (!strcmp(op, "seqwrite") || !strcmp(op, "mkfile")) {
		unsigned long long want = strtoull(argv[3], NULL, 10), done = 0;
		limit = op[0] == 's' ? atof(argv[4]) : 0;
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			die("create", p);
		t0 = now();
		while (done < want && !over()) {
			size_t len = want - done < sizeof buf ? want - done : sizeof buf;
			if (write(fd, buf, len) != (ssize_t)len)
				die("write", p);
			done += len;
		}
		if (fsync(fd))
			die("fsync", p);
		close(fd);
		if (op[0] == 's')
			result(op, done >> 12, done);
	} else if (!strcmp(op, "seqread")) {
		unsigned long long done = 0;
		ssize_t r;
		limit = atof(argv[3]);
		t0 = now();
		int fd = open(p, O_RDONLY);
		if (fd < 0)
			die("open", p);
		while (!over() && (r = read(fd, buf, sizeof buf)) > 0)
			done += (unsigned long long)r;
		close(fd);
		result(op, done >> 12, done);
	} else if (!strcmp(op, "fsynclat") && argc == 4) {
		int n = atoi(argv[3]);
		double *lat = calloc(n > 0 ? (size_t)n : 1, sizeof(*lat));
		if (n <= 0 || !lat)
			die("fsynclat", p);
		for (int i = 0; i < n; i++) {
			snprintf(name, sizeof name, "%s/db%d", p, i % 8);
			int fd = open(name, O_WRONLY | O_CREAT, 0644);
			if (fd < 0 || pwrite(fd, buf, 4096, (off_t)(i / 8) * 4096) != 4096)
				die("write", name);
			double t = now();
			if (fsync(fd))
				die("fsync", name);
			lat[i] = now() - t;
			close(fd);
			struct timespec ts = { 0, 20 * 1000000L };
			nanosleep(&ts, NULL);
		}
		qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
		printf("FSYNC n=%d p50_ms=%.1f p90_ms=%.1f max_ms=%.1f\n", n, lat[n / 2] * 1e3,
		       lat[n * 9 / 10] * 1e3, lat[n - 1] * 1e3);
		free(lat);
	} else if (!strcmp(op, "randwrite") || !strcmp(op, "randread")) {
		int w = op[4] == 'w';
		long n = atol(argv[3]), i;
		limit = atof(argv[4]);
		struct stat st;
		t0 = now();
		int fd = open(p, w ? O_WRONLY : O_RDONLY);
		if (fd < 0 || fstat(fd, &st))
			die("open", p);
		unsigned long long blocks = (unsigned long long)st.st_size / 4096;
		rng = w ? 12345 : 67890;
		for (i = 0; i < n && !over(); i++) {
			off_t off = (off_t)(xs() % blocks) * 4096;
			ssize_t r = w ? pwrite(fd, buf + (i % 256) * 4096, 4096, off)
				      : pread(fd, buf, 4096, off);
			if (r != 4096)
				die(w ? "pwrite" : "pread", p);
		}
		if (w && fsync(fd))
			die("fsync", p);
		close(fd);
		result(op, (unsigned long long)i, (unsigned long long)i * 4096);
	} else if (!strcmp(op, "rename")) {
		char parent[PATH_MAX];
		snprintf(parent, sizeof parent, "%s", argv[3]);
		char *slash = strrchr(parent, '/');
		if (slash)
			*slash = 0;
		t0 = now();
		if (rename(p, argv[3]))
			die("rename", p);
		int fd = open(slash ? parent : ".", O_RDONLY | O_DIRECTORY);
		if (fd < 0 || fsync(fd))
			die("fsync", parent);
		close(fd);
		result(op, strtoull(argv[4], NULL, 10), 0);
	} else if (!strcmp(op, "gentree")) {
		/* A source-tree-like layout: 100 files per directory, 10
		 * directories per parent, sizes 0..8 KiB (mean ~4 KiB). */
		long n = atol(argv[3]);
		rng = 4242;
		for (long i = 0; i < n; i++) {
			if (i % 100 == 0) {
				snprintf(name, sizeof name, "%s/d%03ld", p, i / 1000);
				mkdir(name, 0755);
				snprintf(name, sizeof name, "%s/d%03ld/s%02ld", p, i / 1000,
					 (i / 100) % 10);
				if (mkdir(name, 0755) && errno != EEXIST)
					die("mkdir", name);
			}
			snprintf(name, sizeof name, "%s/d%03ld/s%02ld/file%05ld.c", p, i / 1000,
				 (i / 100) % 10, i);
			int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			size_t len = (size_t)(xs() % 8193);
			if (fd < 0 || write(fd, buf + (i % 64) * 8192, len) != (ssize_t)len)
				die("gentree", name);
			close(fd);
		}
	} else {
		fprintf(stderr, "fsbench_ops: unknown op %s\n", op);
		return 2;
	}
	(void)syncdir;
	return 0;
}
