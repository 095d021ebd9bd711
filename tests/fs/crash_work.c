/*
 * crash_work.c - an fsync-recording workload for crash tests.
 *
 *   crash_work run SEED DIR LOG      run until killed (or an error)
 *   crash_work verify DIR LOG        check every recorded fact
 *
 * `run` repeatedly writes a new version of one of 16 files under a fresh
 * name DIR/f<i>.<v> (random size up to 400 KiB, or CRASH_WORK_MAXSZ bytes
 * up to 8 MiB: big files take fs/'s unlogged path; content derived from i
 * and v), fsyncs it, appends "F i v size" to LOG (a local file, fsync'd), then
 * unlinks the previous version. It also appends records to DIR/journal
 * and after each fdatasync logs "J size". Between, it creates and renames
 * directories (unsynced noise for the namespace). LOG lines are only
 * written after the fsync returned 0: they are what was acknowledged.
 *
 * `verify` checks, after a crash and a remount, that the last version of
 * every file in LOG exists with exactly its content, and that the journal
 * holds at least the last logged size with the expected bytes. Exit 0 when
 * everything acknowledged survived, 1 otherwise (with the first problem).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NFILES 16
#define MAXSZ ((size_t)8 << 20)      /* the buffers */
static size_t maxsz = 400 * 1024;    /* file sizes: below this */

static unsigned char content_byte(unsigned i, unsigned v, size_t off)
{
	uint64_t x = ((uint64_t)i << 40) ^ ((uint64_t)v << 20) ^ (off / 8);
	x *= 0x9E3779B97F4A7C15ULL;
	return (unsigned char)(x >> (8 * (off % 8)));
}

static unsigned char journal_byte(size_t off)
{
	return (unsigned char)(off * 31 + (off >> 9));
}

static int logline(int lfd, const char *line)
{
	size_t n = strlen(line);
	if (write(lfd, line, n) != (ssize_t)n || fsync(lfd) != 0)
		return -1;
	return 0;
}

static int run(unsigned long seed, const char *dir, const char *logp)
{
	static unsigned char buf[MAXSZ];
	unsigned ver[NFILES] = { 0 };
	char path[4096], old[4096], line[128];
	uint64_t r = seed * 2654435761u + 1;
	size_t jsize = 0;
	int lfd, jfd;

	lfd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (lfd < 0)
		return 2;
	/* Continue versions and the journal from an earlier run. */
	{
		FILE *f = fopen(logp, "r");
		unsigned i, v;
		size_t s;
		char kind;
		while (f && fscanf(f, " %c", &kind) == 1) {
			if (kind == 'F' && fscanf(f, "%u %u %zu", &i, &v, &s) == 3 && i < NFILES)
				ver[i] = v;
			else if (kind == 'J' && fscanf(f, "%zu", &s) == 1)
				jsize = s;
		}
		if (f)
			fclose(f);
	}
	snprintf(path, sizeof(path), "%s/journal", dir);
	jfd = open(path, O_WRONLY | O_CREAT, 0644);
	if (jfd < 0)
		return 1;
	for (unsigned long k = 0;; k++) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		unsigned i = (unsigned)(r % NFILES);
		unsigned v = ver[i] + 1;
		size_t sz = (size_t)((r >> 8) % maxsz);
		for (size_t o = 0; o < sz; o++)
			buf[o] = content_byte(i, v, o);
		snprintf(path, sizeof(path), "%s/f%u.%u", dir, i, v);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			return 1;
		size_t done = 0;
		while (done < sz) {
			size_t piece = (size_t)(r >> 20) % 70000 + 1;
			if (piece > sz - done)
				piece = sz - done;
			if (write(fd, buf + done, piece) != (ssize_t)piece)
				return 1;
			done += piece;
		}
		if (fsync(fd) != 0)
			return 1;
		close(fd);
		snprintf(line, sizeof(line), "F %u %u %zu\n", i, v, sz);
		if (logline(lfd, line))
			return 2;
		if (ver[i]) {
			snprintf(old, sizeof(old), "%s/f%u.%u", dir, i, ver[i]);
			unlink(old);
		}
		ver[i] = v;

		/* journal append */
		size_t jn = (size_t)(r >> 33) % 5000 + 1;
		for (size_t o = 0; o < jn; o++)
			buf[o] = journal_byte(jsize + o);
		if (pwrite(jfd, buf, jn, (off_t)jsize) != (ssize_t)jn || fdatasync(jfd) != 0)
			return 1;
		jsize += jn;
		snprintf(line, sizeof(line), "J %zu\n", jsize);
		if (logline(lfd, line))
			return 2;

		/* namespace noise, not synced */
		snprintf(path, sizeof(path), "%s/d%lu", dir, k % 7);
		mkdir(path, 0755);
		snprintf(old, sizeof(old), "%s/d%lu/x", dir, k % 7);
		mkdir(old, 0755);
		snprintf(path, sizeof(path), "%s/d%lu/y", dir, (k + 3) % 7);
		rename(old, path);
	}
}

static int verify(const char *dir, const char *logp)
{
	static unsigned char buf[MAXSZ + 1];
	unsigned ver[NFILES] = { 0 };
	size_t vsz[NFILES] = { 0 }, jsize = 0;
	FILE *f = fopen(logp, "r");
	char path[4096], kind;
	unsigned i, v;
	size_t s;
	int bad = 0;

	if (!f) {
		fprintf(stderr, "verify: no log %s\n", logp);
		return 1;
	}
	while (fscanf(f, " %c", &kind) == 1) {
		if (kind == 'F' && fscanf(f, "%u %u %zu", &i, &v, &s) == 3 && i < NFILES) {
			ver[i] = v;
			vsz[i] = s;
		} else if (kind == 'J' && fscanf(f, "%zu", &s) == 1) {
			jsize = s;
		}
	}
	fclose(f);
	for (i = 0; i < NFILES; i++) {
		if (!ver[i])
			continue;
		snprintf(path, sizeof(path), "%s/f%u.%u", dir, i, ver[i]);
		int fd = open(path, O_RDONLY);
		if (fd < 0) {
			fprintf(stderr, "verify: acknowledged %s is missing: %s\n", path, strerror(errno));
			bad = 1;
			continue;
		}
		ssize_t n = read(fd, buf, sizeof(buf));
		ssize_t more = n == (ssize_t)sizeof(buf) ? 1 : 0;
		close(fd);
		if (n != (ssize_t)vsz[i] || more) {
			fprintf(stderr, "verify: %s has %zd bytes, acknowledged %zu\n", path, n, vsz[i]);
			bad = 1;
			continue;
		}
		for (size_t o = 0; o < vsz[i]; o++)
			if (buf[o] != content_byte(i, ver[i], o)) {
				fprintf(stderr, "verify: %s differs at byte %zu\n", path, o);
				bad = 1;
				break;
			}
	}
	if (jsize) {
		snprintf(path, sizeof(path), "%s/journal", dir);
		int fd = open(path, O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) != 0) {
			fprintf(stderr, "verify: journal missing\n");
			return 1;
		}
		if ((size_t)st.st_size < jsize) {
			fprintf(stderr, "verify: journal has %lld bytes, acknowledged %zu\n",
				(long long)st.st_size, jsize);
			bad = 1;
		}
		for (size_t off = 0; off < jsize && !bad;) {
			size_t want = jsize - off < MAXSZ ? jsize - off : MAXSZ;
			ssize_t n = pread(fd, buf, want, (off_t)off);
			if (n <= 0) {
				fprintf(stderr, "verify: journal read failed at %zu\n", off);
				bad = 1;
				break;
			}
			for (ssize_t q = 0; q < n; q++)
				if (buf[q] != journal_byte(off + (size_t)q)) {
					fprintf(stderr, "verify: journal differs at byte %zu\n", off + (size_t)q);
					bad = 1;
					break;
				}
			off += (size_t)n;
		}
		close(fd);
	}
	return bad;
}

int main(int argc, char **argv)
{
	const char *m = getenv("CRASH_WORK_MAXSZ");
	if (m && strtoul(m, NULL, 0) > 0)
		maxsz = strtoul(m, NULL, 0) < MAXSZ ? strtoul(m, NULL, 0) : MAXSZ;
	if (argc == 5 && !strcmp(argv[1], "run"))
		return run(strtoul(argv[2], NULL, 0), argv[3], argv[4]);
	if (argc == 4 && !strcmp(argv[1], "verify"))
		return verify(argv[2], argv[3]);
	fprintf(stderr, "usage: crash_work run SEED DIR LOG | crash_work verify DIR LOG\n");
	return 2;
}
