/*
 * tort_work.c - the torture suite's workload and checker.
 *
 *   tort_work fixed PHASE DIR LOG     the fixed workload's phase 1, 2 or 3
 *                                     (deterministic; exits 0 when done)
 *   tort_work random SEED DIR LOG     a mixed workload until killed or an
 *                                     error (exits 1 and names it)
 *   tort_work verify ROOT LOG...      check every acknowledged fact
 *
 * DIR is where this run works (it is created); ROOT is what LOG paths are
 * relative to, so that several runs (rounds) can share one log each and
 * one verify. The workload keeps a full model of every file it touches
 * (content, links) in memory and writes to LOG, a file outside the mount:
 *
 *   I path             intent: path is about to change; until the next A or
 *                      D line for it, its state after a crash is unknown
 *   A path size hash   acknowledged: an fsync returned 0 after the last
 *                      change, and the file holds `size` bytes whose
 *                      FNV-1a 64 is `hash`
 *   D path             acknowledged absence (unlinked/renamed away, then an
 *                      fsync returned 0)
 *   C dir k            prefix chain: dir/c<k> was created (empty files
 *                      c0, c1, ... created one after another, never removed)
 *                      and an fsync returned 0 afterwards
 *
 * Every fsync makes every earlier namespace change durable (the engine's
 * WAL is one ordered log and fsync is a kv_sync), but only the fsync'd
 * inode's data; so a name is acknowledged at an fsync when its inode's data
 * is clean (fsync'd since its last change), otherwise it stays pending.
 *
 * verify replays the logs, then for every path whose last line is A checks
 * size and content, for D that it does not exist, and for each chain that
 * the c<k> present are exactly c0..c<m> (no hole: what survived is a prefix
 * of the creation order) with m at least the last acknowledged k. It
 * prints "verified FILES files BYTES bytes lost LOST_BYTES" and exits 0
 * when nothing acknowledged was lost, 1 otherwise (each problem named).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_NAMES 64
#define MAX_INODES 64
#define MAX_BIG (1536 * 1024)

struct tw_inode {
	unsigned char *buf;
	size_t size;
	int dirty;                     /* data changed since its last fsync */
	int nlink;
};

struct tw_name {
	char rel[128];                 /* relative to ROOT */
	int ino;                       /* -1 = does not exist */
	int pending;                   /* an I line without A/D since */
};

static struct tw_inode inodes[MAX_INODES];
static struct tw_name names[MAX_NAMES];
static int n_names;
static FILE *tw_log;
static const char *tw_root;
static char tw_sub[96];           /* DIR relative to ROOT */
static uint64_t tw_rng;
static unsigned chain_next;

static uint64_t tw_rand(void)
{
	tw_rng ^= tw_rng << 13;
	tw_rng ^= tw_rng >> 7;
	tw_rng ^= tw_rng << 17;
	return tw_rng;
}

static uint64_t tw_hash(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void tw_path(char *out, size_t n, const char *rel)
{
	snprintf(out, n, "%s/%s", tw_root, rel);
}

/* With TW_FULL_OK set (a store-full episode, tests/torture/full.sh), a
 * full store ends the workload with status 3 instead of failing it:
 * what was acknowledged before stands, the rest is unknown (its I
 * records say so). */
static void tw_fail(const char *what, const char *rel)
{
	int full = errno == ENOSPC || errno == EDQUOT;
	fprintf(stderr, "tort_work: %s %s: %s\n", what, rel, strerror(errno));
	fflush(tw_log);
	exit(full && getenv("TW_FULL_OK") ? 3 : 1);
}

static void tw_logf(const char *kind, const char *rel, const struct tw_inode *ip)
{
	if (ip)
		fprintf(tw_log, "%s %s %zu %016llx\n", kind, rel, ip->size,
			(unsigned long long)tw_hash(ip->buf, ip->size));
	else
		fprintf(tw_log, "%s %s\n", kind, rel);
	fflush(tw_log);                /* the machine does not crash, the daemon does */
}

static void tw_intent(int ni)
{
	names[ni].pending = 1;
	tw_logf("I", names[ni].rel, NULL);
}

static void tw_intent_inode(int ino)
{
	for (int i = 0; i < n_names; i++)
		if (names[i].ino == ino)
			tw_intent(i);
}

static int tw_new_inode(void)
{
	for (int i = 0; i < MAX_INODES; i++)
		if (!inodes[i].nlink && !inodes[i].buf) {
			inodes[i].buf = calloc(1, MAX_BIG);
			if (!inodes[i].buf)
				abort();
			inodes[i].size = 0;
			inodes[i].dirty = 0;
			return i;
		}
	return -1;
}

static void tw_drop_link(int ino)
{
	if (--inodes[ino].nlink == 0) {
		free(inodes[ino].buf);
		inodes[ino].buf = NULL;
	}
}

static int tw_name_new(void)
{
	if (n_names >= MAX_NAMES)
		return -1;
	snprintf(names[n_names].rel, sizeof(names[n_names].rel), "%s/n%02d", tw_sub, n_names);
	names[n_names].ino = -1;
	names[n_names].pending = 0;
	return n_names++;
}

/* fsync inode `ino` (through any of its names) and acknowledge what that
 * makes durable: the inode's names, and every pending name whose inode is
 * clean or which is gone. */
static void tw_sync(int ino)
{
	char p[512];
	int ni, fd;

	for (ni = 0; ni < n_names && names[ni].ino != ino; ni++)
		;
	if (ni == n_names)
		return;
	tw_path(p, sizeof(p), names[ni].rel);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		tw_fail("open for fsync", names[ni].rel);
	if (fsync(fd) != 0)
		tw_fail("fsync", names[ni].rel);
	close(fd);
	inodes[ino].dirty = 0;
	for (int i = 0; i < n_names; i++) {
		if (!names[i].pending)
			continue;
		if (names[i].ino < 0) {
			tw_logf("D", names[i].rel, NULL);
			names[i].pending = 0;
		} else if (!inodes[names[i].ino].dirty) {
			tw_logf("A", names[i].rel, &inodes[names[i].ino]);
			names[i].pending = 0;
		}
	}
}

static void tw_fill(unsigned char *p, size_t n)
{
	uint64_t x = tw_rand();
	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		p[i] = (unsigned char)(x >> (8 * (i % 8)));
	}
}

/* Write [off, off+len) of inode ino's model to the file, in pieces. */
static void tw_pwrite(int ino, const char *rel, size_t off, size_t len, int flags)
{
	char p[512];
	int fd;
	tw_path(p, sizeof(p), rel);
	fd = open(p, O_WRONLY | flags, 0644);
	if (fd < 0)
		tw_fail("open", rel);
	for (size_t done = 0; done < len;) {
		size_t piece = (size_t)(tw_rand() % 100000) + 1;
		if (piece > len - done)
			piece = len - done;
		if (pwrite(fd, inodes[ino].buf + off + done, piece, (off_t)(off + done)) != (ssize_t)piece)
			tw_fail("write", rel);
		done += piece;
	}
	if (close(fd) != 0)
		tw_fail("close", rel);
}

static size_t tw_size(int big)
{
	uint64_t r = tw_rand() % 100;
	if (big)
		return 512 * 1024 + (size_t)(tw_rand() % (MAX_BIG - 512 * 1024));
	if (r < 10)
		return 0;
	if (r < 75)
		return (size_t)(tw_rand() % 8192) + 1;
	return (size_t)(tw_rand() % (256 * 1024)) + 1;
}

static int tw_pick_existing(void)
{
	int live[MAX_NAMES], n = 0;
	for (int i = 0; i < n_names; i++)
		if (names[i].ino >= 0)
			live[n++] = i;
	return n ? live[tw_rand() % (uint64_t)n] : -1;
}

static int tw_pick_free_name(void)
{
	int n = 0, freeish[MAX_NAMES];
	for (int i = 0; i < n_names; i++)
		if (names[i].ino < 0)
			freeish[n++] = i;
	if (n && (n_names >= MAX_NAMES || tw_rand() % 2))
		return freeish[tw_rand() % (uint64_t)n];
	return tw_name_new();
}

/* Returns the new inode, or -1 when the tables are full. */
static int op_create(int big)
{
	int ni = tw_pick_free_name(), ino = tw_new_inode();
	if (ni < 0 || ino < 0) {
		if (ino >= 0) {
			free(inodes[ino].buf);
			inodes[ino].buf = NULL;
		}
		return -1;
	}
	inodes[ino].size = tw_size(big);
	tw_fill(inodes[ino].buf, inodes[ino].size);
	inodes[ino].nlink = 1;
	inodes[ino].dirty = 1;
	tw_intent(ni);
	names[ni].ino = ino;
	tw_pwrite(ino, names[ni].rel, 0, inodes[ino].size, O_CREAT | O_TRUNC);
	return ino;
}

static void op_overwrite(void)
{
	int ni = tw_pick_existing(), ino;
	size_t off, len;
	if (ni < 0)
		return;
	ino = names[ni].ino;
	off = inodes[ino].size ? (size_t)(tw_rand() % inodes[ino].size) : 0;
	len = (size_t)(tw_rand() % 65536) + 1;
	if (off + len > MAX_BIG)
		len = MAX_BIG - off;
	tw_intent_inode(ino);
	tw_fill(inodes[ino].buf + off, len);
	if (off + len > inodes[ino].size)
		inodes[ino].size = off + len;
	inodes[ino].dirty = 1;
	tw_pwrite(ino, names[ni].rel, off, len, 0);
}

static void op_truncate(void)
{
	int ni = tw_pick_existing(), ino;
	size_t ns;
	char p[512];
	if (ni < 0)
		return;
	ino = names[ni].ino;
	ns = (size_t)(tw_rand() % (inodes[ino].size + 20000 + 1));
	if (ns > MAX_BIG)
		ns = MAX_BIG;
	tw_intent_inode(ino);
	if (ns > inodes[ino].size)
		memset(inodes[ino].buf + inodes[ino].size, 0, ns - inodes[ino].size);
	inodes[ino].size = ns;
	inodes[ino].dirty = 1;
	tw_path(p, sizeof(p), names[ni].rel);
	if (truncate(p, (off_t)ns) != 0)
		tw_fail("truncate", names[ni].rel);
}

static void op_rename(void)
{
	int src = tw_pick_existing(), dst, old;
	char a[512], b[512];
	if (src < 0)
		return;
	dst = tw_rand() % 3 == 0 ? tw_pick_existing() : tw_pick_free_name();
	if (dst < 0 || dst == src)
		return;
	if (names[dst].ino == names[src].ino)
		return;                /* rename between hard links is a no-op in POSIX */
	tw_intent(src);
	tw_intent(dst);
	tw_path(a, sizeof(a), names[src].rel);
	tw_path(b, sizeof(b), names[dst].rel);
	if (rename(a, b) != 0)
		tw_fail("rename", names[src].rel);
	old = names[dst].ino;
	names[dst].ino = names[src].ino;
	names[src].ino = -1;
	if (old >= 0)
		tw_drop_link(old);
}

static void op_link(void)
{
	int src = tw_pick_existing(), dst = tw_pick_free_name();
	char a[512], b[512];
	if (src < 0 || dst < 0 || names[dst].ino >= 0)
		return;
	tw_intent(dst);
	tw_path(a, sizeof(a), names[src].rel);
	tw_path(b, sizeof(b), names[dst].rel);
	if (link(a, b) != 0)
		tw_fail("link", names[src].rel);
	names[dst].ino = names[src].ino;
	inodes[names[src].ino].nlink++;
}

static void op_unlink(void)
{
	int ni = tw_pick_existing(), ino;
	char p[512];
	if (ni < 0)
		return;
	ino = names[ni].ino;
	tw_intent(ni);
	tw_path(p, sizeof(p), names[ni].rel);
	if (unlink(p) != 0)
		tw_fail("unlink", names[ni].rel);
	names[ni].ino = -1;
	tw_drop_link(ino);
}

static void op_chain(void)
{
	char rel[128], p[512];
	int fd;
	snprintf(rel, sizeof(rel), "%s/chain/c%u", tw_sub, chain_next);
	tw_path(p, sizeof(p), rel);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		tw_fail("create", rel);
	close(fd);
	chain_next++;
}

/* fsync the chain directory (a kv_sync like any fsync). */
static void tw_sync_chain(void)
{
	char rel[128], p[512];
	int fd;
	snprintf(rel, sizeof(rel), "%s/chain", tw_sub);
	tw_path(p, sizeof(p), rel);
	fd = open(p, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || fsync(fd) != 0)
		tw_fail("fsync", rel);
	close(fd);
}

/* An fsync of a random inode, of every dirty one, or of the chain
 * directory; then the chain is acknowledged (only after a real fsync). */
static void op_sync(void)
{
	int ni = tw_pick_existing(), synced = 0;
	if (ni >= 0 && tw_rand() % 4 == 0) {
		for (int i = 0; i < MAX_INODES; i++)    /* every dirty inode */
			if (inodes[i].nlink && inodes[i].dirty) {
				tw_sync(i);
				synced = 1;
			}
	} else if (ni >= 0) {
		tw_sync(names[ni].ino);
		synced = 1;
	}
	if (!synced)
		tw_sync_chain();
	if (chain_next) {
		fprintf(tw_log, "C %s/chain %u\n", tw_sub, chain_next - 1);
		fflush(tw_log);
	}
}

static void tw_step(int big_ok)
{
	uint64_t r = tw_rand() % 100;
	if (r < 18)
		op_create(big_ok && tw_rand() % 8 == 0);
	else if (r < 33)
		op_overwrite();
	else if (r < 40)
		op_truncate();
	else if (r < 50)
		op_rename();
	else if (r < 56)
		op_link();
	else if (r < 64)
		op_unlink();
	else if (r < 80)
		op_chain();
	else
		op_sync();
}

static void tw_begin(const char *dir, const char *logp, uint64_t seed)
{
	char p[512];
	size_t rl = strlen(tw_root);
	if (strncmp(dir, tw_root, rl) != 0 || dir[rl] != '/') {
		fprintf(stderr, "tort_work: DIR must be under ROOT\n");
		exit(2);
	}
	snprintf(tw_sub, sizeof(tw_sub), "%s", dir + rl + 1);
	tw_log = fopen(logp, "a");
	if (!tw_log) {
		perror(logp);
		exit(2);
	}
	tw_rng = seed * 0x9E3779B97F4A7C15ULL + 12345;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		tw_fail("mkdir", tw_sub);
	snprintf(p, sizeof(p), "%s/chain", dir);
	if (mkdir(p, 0755) != 0 && errno != EEXIST)
		tw_fail("mkdir", "chain");
}

/* ---- verify -------------------------------------------------------------- */

struct vrec {
	char rel[128];
	char kind;                     /* 'I', 'A', 'D' */
	size_t size;
	unsigned long long hash;
};

struct vchain {
	char dir[128];
	long k;
};

static int verify(const char *root, int nlogs, char **logs)
{
	struct vrec *v = NULL;
	struct vchain *c = NULL;
	size_t nv = 0, capv = 0, nc = 0, capc = 0;
	unsigned long long files = 0, bytes = 0, lost = 0, pending = 0;
	unsigned char *buf = malloc(MAX_BIG + 1);
	char line[512], p[640];
	int bad = 0;

	for (int l = 0; l < nlogs; l++) {
		FILE *f = fopen(logs[l], "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			char kind, rel[128];
			size_t size = 0;
			unsigned long long h = 0;
			long k;
			size_t i;
			if (sscanf(line, "%c %127s", &kind, rel) != 2)
				continue;
			if (kind == 'C') {
				if (sscanf(line, "C %127s %ld", rel, &k) != 2)
					continue;
				for (i = 0; i < nc && strcmp(c[i].dir, rel); i++)
					;
				if (i == nc) {
					if (nc == capc) {
						capc = capc ? capc * 2 : 64;
						c = realloc(c, capc * sizeof(*c));
					}
					snprintf(c[nc].dir, sizeof(c[nc].dir), "%s", rel);
					c[nc++].k = -1;
				}
				if (k > c[i].k)
					c[i].k = k;
				continue;
			}
			if (kind == 'A' && sscanf(line, "A %127s %zu %llx", rel, &size, &h) != 3)
				continue;
			for (i = 0; i < nv && strcmp(v[i].rel, rel); i++)
				;
			if (i == nv) {
				if (nv == capv) {
					capv = capv ? capv * 2 : 256;
					v = realloc(v, capv * sizeof(*v));
				}
				snprintf(v[nv].rel, sizeof(v[nv].rel), "%s", rel);
				nv++;
			}
			v[i].kind = kind;
			v[i].size = size;
			v[i].hash = h;
		}
		fclose(f);
	}
	for (size_t i = 0; i < nv; i++) {
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", root, v[i].rel);
		if (v[i].kind == 'I') {
			pending++;
			continue;
		}
		if (v[i].kind == 'D') {
			if (lstat(p, &st) == 0) {
				fprintf(stderr, "verify: %s was unlinked (acknowledged) but exists\n", v[i].rel);
				bad = 1;
			}
			continue;
		}
		files++;
		bytes += v[i].size;
		int fd = open(p, O_RDONLY);
		if (fd < 0) {
			fprintf(stderr, "verify: acknowledged %s (%zu bytes) is missing: %s\n", v[i].rel,
				v[i].size, strerror(errno));
			lost += v[i].size ? v[i].size : 1;
			bad = 1;
			continue;
		}
		size_t n = 0;
		ssize_t r;
		while (n <= MAX_BIG && (r = read(fd, buf + n, MAX_BIG + 1 - n)) > 0)
			n += (size_t)r;
		close(fd);
		if (n != v[i].size || tw_hash(buf, n) != v[i].hash) {
			fprintf(stderr, "verify: %s has %zu bytes (hash %016llx), acknowledged %zu (hash %016llx)\n",
				v[i].rel, n, (unsigned long long)tw_hash(buf, n), v[i].size, v[i].hash);
			lost += v[i].size ? v[i].size : 1;
			bad = 1;
		}
	}
	for (size_t i = 0; i < nc; i++) {
		DIR *d;
		struct dirent *de;
		long max = -1, count = 0;
		snprintf(p, sizeof(p), "%s/%s", root, c[i].dir);
		d = opendir(p);
		if (!d) {
			fprintf(stderr, "verify: chain %s missing: %s\n", c[i].dir, strerror(errno));
			bad = 1;
			continue;
		}
		while ((de = readdir(d))) {
			char *end;
			long k;
			if (de->d_name[0] != 'c')
				continue;
			k = strtol(de->d_name + 1, &end, 10);
			if (*end)
				continue;
			count++;
			if (k > max)
				max = k;
		}
		closedir(d);
		if (count != max + 1) {
			fprintf(stderr, "verify: chain %s is not a prefix: %ld files, highest c%ld\n",
				c[i].dir, count, max);
			bad = 1;
		}
		if (max < c[i].k) {
			fprintf(stderr, "verify: chain %s ends at c%ld, c%ld was acknowledged\n", c[i].dir,
				max, c[i].k);
			bad = 1;
		}
		files++;
	}
	printf("verified %llu files %llu bytes lost %llu pending %llu\n", files, bytes, lost, pending);
	free(buf);
	free(v);
	free(c);
	return bad;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "verify")) {
		return verify(argv[2], argc - 3, argv + 3);
	}
	if (argc == 5 && !strcmp(argv[1], "fixed")) {
		/* fixed PHASE DIR LOG: ROOT is DIR's parent */
		static char root[512];
		int phase = atoi(argv[2]);
		char *slash;
		snprintf(root, sizeof(root), "%s", argv[3]);
		slash = strrchr(root, '/');
		if (!slash)
			return 2;
		*slash = '\0';
		tw_root = root;
		tw_begin(argv[3], argv[4], (uint64_t)phase);
		/* Phase 1: 60 mixed steps. Phase 2: 6 large files (memtable
		 * flushes, then a compaction with write_buffer_mb=1), synced.
		 * Phase 3: 60 more mixed steps and a final sync. */
		if (phase == 2) {
			for (int i = 0; i < 6; i++) {
				int ino = op_create(1);
				if (ino >= 0)
					tw_sync(ino);
			}
		} else {
			for (int i = 0; i < 60; i++)
				tw_step(0);
		}
		for (int i = 0; i < n_names; i++)
			if (names[i].ino >= 0)
				tw_sync(names[i].ino);
		op_sync();
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "random")) {
		static char root[512];
		char *slash;
		snprintf(root, sizeof(root), "%s", argv[3]);
		slash = strrchr(root, '/');
		if (!slash)
			return 2;
		*slash = '\0';
		tw_root = root;
		tw_begin(argv[3], argv[4], strtoull(argv[2], NULL, 10));
		for (;;)
			tw_step(1);
	}
	fprintf(stderr, "usage: tort_work fixed PHASE DIR LOG | random SEED DIR LOG | verify ROOT LOG...\n");
	return 2;
}
