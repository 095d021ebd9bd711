/*
 * conc.c - concurrency exerciser: N threads create, write, rename, link,
 * unlink, mkdir, rmdir and rename directories in a few shared directories
 * with a small name space, so operations collide all the time.
 *
 *   conc DIR SECONDS [THREADS]
 *
 * Expected failures (ENOENT, EEXIST, ENOTEMPTY, EINVAL, EISDIR, ENOTDIR,
 * EBUSY, EMLINK) are counted; any other errno fails the run. A watchdog
 * fails the run when no thread made progress for 30 s (a deadlock).
 * Exit 0 on success.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *base;
static atomic_long n_ops, n_expected_err;
static atomic_int stop, failed;
static time_t deadline;

static int expected(int e)
{
	return e == ENOENT || e == EEXIST || e == ENOTEMPTY || e == EINVAL || e == EISDIR ||
	       e == ENOTDIR || e == EBUSY || e == EMLINK || e == EPERM /* link of a dir */;
}

static void check(int rc, const char *op, const char *a, const char *b)
{
	if (rc == 0) {
		atomic_fetch_add(&n_ops, 1);
		return;
	}
	if (expected(errno)) {
		atomic_fetch_add(&n_ops, 1);
		atomic_fetch_add(&n_expected_err, 1);
		return;
	}
	fprintf(stderr, "conc: %s %s %s: unexpected %s\n", op, a, b ? b : "", strerror(errno));
	atomic_store(&failed, 1);
	atomic_store(&stop, 1);
}

static void name(char *buf, size_t n, uint64_t r)
{
	static const char *dirs[] = { "s0", "s1", "s2", "s0/sub0", "s1/sub1", "s2/sub2/deeper" };
	snprintf(buf, n, "%s/%s/%c%u", base, dirs[r % 6], "fdl"[(r >> 8) % 3],
		 (unsigned)((r >> 16) % 12));
}

static void *worker(void *arg)
{
	uint64_t r = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ULL + 7;
	char a[512], b[512];

	while (!atomic_load(&stop)) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		name(a, sizeof(a), r);
		name(b, sizeof(b), r >> 24);
		switch ((r >> 40) % 10) {
		case 0:
		case 1: {
			int fd = open(a, O_CREAT | O_EXCL | O_WRONLY, 0644);
			if (fd >= 0) {
				if (write(fd, a, strlen(a)) < 0 && !expected(errno))
					check(-1, "write", a, NULL);
				close(fd);
			}
			check(fd >= 0 ? 0 : -1, "create", a, NULL);
			break;
		}
		case 2:
		case 3:
			check(rename(a, b), "rename", a, b);
			break;
		case 4:
			check(link(a, b), "link", a, b);
			break;
		case 5:
			check(unlink(a), "unlink", a, NULL);
			break;
		case 6:
			check(mkdir(a, 0755), "mkdir", a, NULL);
			break;
		case 7:
			check(rmdir(a), "rmdir", a, NULL);
			break;
		case 8: {
			struct stat st;
			check(lstat(a, &st), "lstat", a, NULL);
			break;
		}
		default: {
			char d1[512], d2[512];
			snprintf(d1, sizeof(d1), "%s/s%u/sub%u", base, (unsigned)(r % 3),
				 (unsigned)((r >> 3) % 3));
			snprintf(d2, sizeof(d2), "%s/s%u/sub%u", base, (unsigned)((r >> 5) % 3),
				 (unsigned)((r >> 7) % 3));
			check(rename(d1, d2), "rename-dir", d1, d2);
		}
		}
		if (time(NULL) >= deadline)
			atomic_store(&stop, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int secs, nthreads;
	pthread_t t[64];
	char p[512];

	if (argc < 3) {
		fprintf(stderr, "usage: conc DIR SECONDS [THREADS]\n");
		return 2;
	}
	base = argv[1];
	secs = atoi(argv[2]);
	nthreads = argc > 3 ? atoi(argv[3]) : 8;
	if (nthreads < 1 || nthreads > 64)
		nthreads = 8;
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/s%d", base, i);
		mkdir(p, 0755);
		snprintf(p, sizeof(p), "%s/s%d/sub%d", base, i, i);
		mkdir(p, 0755);
	}
	snprintf(p, sizeof(p), "%s/s2/sub2/deeper", base);
	mkdir(p, 0755);
	deadline = time(NULL) + secs;
	for (long i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	long last = -1;
	int still = 0;
	while (!atomic_load(&stop) || 0) {
		sleep(1);
		long now = atomic_load(&n_ops);
		if (now == last) {
			if (++still >= 30) {
				fprintf(stderr, "conc: no progress for 30 s: deadlock?\n");
				return 1;       /* threads are stuck: do not join */
			}
		} else {
			still = 0;
		}
		last = now;
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	printf("conc: %d threads, %d s: %ld operations (%ld expected errors)%s\n", nthreads, secs,
	       atomic_load(&n_ops), atomic_load(&n_expected_err),
	       atomic_load(&failed) ? ", FAILED" : "");
	return atomic_load(&failed) ? 1 : 0;
}
