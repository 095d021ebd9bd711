/*
 * fsx.c - random-operation data-integrity exerciser: every operation is
 * applied to a file on ShaleFS and to a model file on an ordinary local
 * directory, and every read is compared byte for byte.
 *
 *   fsx -s SEED -p PHASE -n OPS TESTFILE MODELFILE
 *
 * One run is one phase: it first checks that TESTFILE equals MODELFILE in
 * full (so state carried over an unmount/remount between phases is
 * verified), then does OPS random operations (PRNG seeded from SEED and
 * PHASE), then compares in full again. Operations: pwrite at random
 * offsets and sizes (small, chunk-sized, multi-chunk, unaligned), pread
 * with compare, truncate down and up, fallocate mode 0 (extend),
 * PUNCH_HOLE|KEEP_SIZE, mmap reads, fsync, close+reopen. Exit 0 on
 * success, 1 on the first mismatch (with the operation log tail), 2 on
 * usage or setup errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SIZE (3u << 20)          /* files stay below 3 MiB */
#define LOG_N 32

static uint64_t rng_s[2];
static char oplog[LOG_N][160];
static unsigned long opno;
static int tfd = -1, mfd = -1;
static const char *tpath, *mpath;
static unsigned char *tbuf, *mbuf;

static uint64_t rnd(void)
{
	uint64_t s1 = rng_s[0];
	const uint64_t s0 = rng_s[1];
	rng_s[0] = s0;
	s1 ^= s1 << 23;
	rng_s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return rng_s[1] + s0;
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void logop(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logop(const char *fmt, ...)
{
	va_list ap;
	char *l = oplog[opno % LOG_N];
	int k = snprintf(l, 160, "%lu: ", opno);
	va_start(ap, fmt);
	vsnprintf(l + k, 160 - (size_t)k, fmt, ap);
	va_end(ap);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "fsx: FAILED at op %lu: ", opno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nlast operations:\n");
	for (unsigned long i = opno >= LOG_N ? opno - LOG_N + 1 : 0; i <= opno; i++)
		fprintf(stderr, "  %s\n", oplog[i % LOG_N]);
	exit(1);
}

static off_t fsize(int fd, const char *what)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		die("fstat %s: %s", what, strerror(errno));
	return st.st_size;
}

static void full_read(int fd, unsigned char *buf, size_t len, off_t off, const char *what)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);
		if (n < 0)
			die("pread %s at %lld: %s", what, (long long)(off + (off_t)done), strerror(errno));
		if (n == 0)
			break;
		done += (size_t)n;
	}
	if (done != len)
		die("short read of %s: %zu of %zu at %lld", what, done, len, (long long)off);
}

static void compare(off_t off, size_t len, const char *how)
{
	full_read(tfd, tbuf, len, off, "test file");
	full_read(mfd, mbuf, len, off, "model file");
	if (memcmp(tbuf, mbuf, len) != 0) {
		size_t i = 0;
		while (tbuf[i] == mbuf[i])
			i++;
		die("%s: data differs at offset %lld (test 0x%02x, model 0x%02x), range %lld+%zu",
		    how, (long long)(off + (off_t)i), tbuf[i], mbuf[i], (long long)off, len);
	}
}

static void check_all(const char *when)
{
	off_t ts = fsize(tfd, "test file"), ms = fsize(mfd, "model file");
	if (ts != ms)
		die("%s: size %lld, model %lld", when, (long long)ts, (long long)ms);
	for (off_t off = 0; off < ts; off += MAX_SIZE)
		compare(off, (size_t)(ts - off < (off_t)MAX_SIZE ? ts - off : (off_t)MAX_SIZE), when);
}

static void both_pwrite(const unsigned char *data, size_t len, off_t off)
{
	if (pwrite(tfd, data, len, off) != (ssize_t)len)
		die("pwrite test %zu at %lld: %s", len, (long long)off, strerror(errno));
	if (pwrite(mfd, data, len, off) != (ssize_t)len)
		die("pwrite model: %s", strerror(errno));
}

static void reopen(void)
{
	if (tfd >= 0 && close(tfd) != 0)
		die("close test file: %s", strerror(errno));
	tfd = open(tpath, O_RDWR | O_CREAT, 0644);
	if (tfd < 0)
		die("open %s: %s", tpath, strerror(errno));
}

static size_t pick_len(void)
{
	switch (below(6)) {
	case 0: return (size_t)below(16) + 1;
	case 1: return (size_t)below(4096) + 1;
	case 2: return 65536;
	case 3: return (size_t)below(65536 * 3) + 1;
	case 4: return 4096 * ((size_t)below(32) + 1);
	default: return (size_t)below(300000) + 1;
	}
}

static off_t pick_off(off_t size)
{
	switch (below(5)) {
	case 0: return (off_t)(below(48) * 65536);                 /* chunk aligned */
	case 1: return size;                                      /* append */
	case 2: return size ? (off_t)below((uint64_t)size) : 0;   /* inside */
	case 3: return (off_t)(below(48) * 65536 + 65536 - below(64)); /* just before a boundary */
	default: return (off_t)below(MAX_SIZE - 300000);
	}
}

int main(int argc, char **argv)
{
	unsigned long seed = 1, phase = 0, nops = 1000;
	unsigned char *data;
	int c;

	while ((c = getopt(argc, argv, "s:p:n:")) != -1) {
		switch (c) {
		case 's': seed = strtoul(optarg, NULL, 0); break;
		case 'p': phase = strtoul(optarg, NULL, 0); break;
		case 'n': nops = strtoul(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: fsx -s SEED -p PHASE -n OPS TESTFILE MODELFILE\n");
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: fsx -s SEED -p PHASE -n OPS TESTFILE MODELFILE\n");
		return 2;
	}
	tpath = argv[optind];
	mpath = argv[optind + 1];
	rng_s[0] = seed * 0x9E3779B97F4A7C15ULL + 1;
	rng_s[1] = (phase + 1) * 0xBF58476D1CE4E5B9ULL ^ seed;
	for (int i = 0; i < 20; i++)
		rnd();
	tbuf = malloc(MAX_SIZE);
	mbuf = malloc(MAX_SIZE);
	data = malloc(MAX_SIZE);
	if (!tbuf || !mbuf || !data) {
		fprintf(stderr, "fsx: out of memory\n");
		return 2;
	}
	reopen();
	mfd = open(mpath, O_RDWR | O_CREAT, 0644);
	if (mfd < 0) {
		fprintf(stderr, "fsx: open %s: %s\n", mpath, strerror(errno));
		return 2;
	}
	logop("start: full compare (seed %lu phase %lu)", seed, phase);
	check_all("initial compare (state carried over from the previous phase)");

	for (opno = 1; opno <= nops; opno++) {
		off_t size = fsize(mfd, "model file"), off;
		size_t len;
		unsigned op = (unsigned)below(100);

		if (op < 40) {                                   /* write */
			off = pick_off(size);
			len = pick_len();
			if ((uint64_t)off + len > MAX_SIZE)
				len = MAX_SIZE - (size_t)off;
			if (len == 0)
				continue;
			unsigned char v = (unsigned char)below(256);
			for (size_t i = 0; i < len; i++)
				data[i] = (unsigned char)(v + i * 13 + opno);
			logop("write %lld+%zu", (long long)off, len);
			both_pwrite(data, len, off);
		} else if (op < 65) {                            /* read + compare */
			if (size == 0)
				continue;
			off = (off_t)below((uint64_t)size);
			len = pick_len();
			if ((off_t)len > size - off)
				len = (size_t)(size - off);
			logop("read %lld+%zu", (long long)off, len);
			compare(off, len, "read");
		} else if (op < 73) {                            /* truncate */
			off_t ns = below(3) == 0 ? (off_t)below(MAX_SIZE) :
				(size ? (off_t)below((uint64_t)size + 1) : 0);
			if (below(4) == 0)
				ns = ns / 65536 * 65536;
			logop("truncate %lld -> %lld", (long long)size, (long long)ns);
			if (ftruncate(tfd, ns) != 0)
				die("ftruncate test: %s", strerror(errno));
			if (ftruncate(mfd, ns) != 0)
				die("ftruncate model: %s", strerror(errno));
		} else if (op < 80) {                            /* punch hole */
			if (size == 0)
				continue;
			off = (off_t)below((uint64_t)size);
			len = pick_len();
			logop("punch %lld+%zu", (long long)off, len);
			if (fallocate(tfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, (off_t)len))
				die("punch test: %s", strerror(errno));
			if ((off_t)len > size - off)
				len = (size_t)(size - off);
			memset(data, 0, len);
			if (pwrite(mfd, data, len, off) != (ssize_t)len)
				die("model punch: %s", strerror(errno));
		} else if (op < 84) {                            /* fallocate extend */
			off = (off_t)below(MAX_SIZE / 2);
			len = (size_t)below(MAX_SIZE / 2) + 1;
			logop("fallocate %lld+%zu", (long long)off, len);
			if (fallocate(tfd, 0, off, (off_t)len) != 0)
				die("fallocate test: %s", strerror(errno));
			if ((off_t)(off + (off_t)len) > size && ftruncate(mfd, off + (off_t)len) != 0)
				die("model extend: %s", strerror(errno));
		} else if (op < 90) {                            /* mmap read */
			if (size == 0)
				continue;
			off = (off_t)(below((uint64_t)size) & ~(uint64_t)4095);
			len = pick_len();
			if ((off_t)len > size - off)
				len = (size_t)(size - off);
			logop("mmap read %lld+%zu", (long long)off, len);
			void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, tfd, off);
			if (m == MAP_FAILED)
				die("mmap: %s", strerror(errno));
			full_read(mfd, mbuf, len, off, "model file");
			if (memcmp(m, mbuf, len) != 0) {
				size_t i = 0;
				while (((unsigned char *)m)[i] == mbuf[i])
					i++;
				die("mmap read differs at %lld", (long long)(off + (off_t)i));
			}
			munmap(m, len);
		} else if (op < 94) {
			logop("fsync");
			if (fsync(tfd) != 0)
				die("fsync: %s", strerror(errno));
		} else if (op < 97) {
			logop("close+reopen");
			reopen();
		} else {
			logop("full compare");
			check_all("full compare");
		}
		off_t ts = fsize(tfd, "test file"), ms = fsize(mfd, "model file");
		if (ts != ms)
			die("size %lld, model %lld", (long long)ts, (long long)ms);
	}
	opno = nops;
	logop("final full compare");
	check_all("final compare");
	if (close(tfd) != 0)
		die("close: %s", strerror(errno));
	close(mfd);
	free(tbuf);
	free(mbuf);
	free(data);
	printf("fsx: seed %lu phase %lu: %lu operations OK\n", seed, phase, nops);
	return 0;
}
