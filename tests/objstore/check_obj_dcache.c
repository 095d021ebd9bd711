/*
 * check_obj_dcache.c - the disk cache wrapper over metrics(mem://) and a
 * temp cache directory: hits and misses are counted and a hit sends no
 * request; any range (across chunk boundaries, past the end, the whole
 * object) returns the store's bytes; a flipped byte, a truncated and a
 * deleted entry file are dropped, counted and refetched; the byte cap
 * holds within 5% under a workload 4x its size; two stores sharing one
 * cache directory keep their own bytes; a new wrapper over the same
 * directory serves from the cache with no request; write-through,
 * deletes, and one fetch for concurrent misses of one chunk.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "objstore/objstore.h"
#include "objstore/objstore_int.h"
#include "util/util.h"
#include "tests/check_common.h"
#include "tests/check_main.h"

#define CHUNK (64u * 1024)

static char root[CHECK_PATH_MAX];
static char store_a[64], store_b[64];
static int seq;

static void setup(void)
{
	ck_assert_int_eq(check_tmpdir_create(root, sizeof(root), "dcache"), 0);
	snprintf(store_a, sizeof(store_a), "dca-%d-%d", (int)getpid(), seq);
	snprintf(store_b, sizeof(store_b), "dcb-%d-%d", (int)getpid(), seq++);
	obj_mem_destroy(store_a);
	obj_mem_destroy(store_b);
}

static void teardown(void)
{
	obj_mem_destroy(store_a);
	obj_mem_destroy(store_b);
	check_tmpdir_remove(root);
}

/* metrics(mem://name), optionally with the fault spec between them. */
static struct obj_backend *inner_open(const char *name, const char *faults)
{
	struct obj_backend *m = NULL, *f = NULL, *w = NULL;

	ck_assert_int_eq(obj_mem_create(&m, name), 0);
	if (faults) {
		ck_assert_int_eq(obj_fault_create(&f, m, faults), 0);
		m = f;
	}
	ck_assert_int_eq(obj_metrics_create(&w, m), 0);
	return w;
}

/* dcache(metrics(mem://name)) with cap bytes; id names the store. */
static struct obj_backend *cache_open_ext(const char *name, const char *id, uint64_t cap,
					  const char *faults)
{
	struct obj_dcache_config conf = { .dir = root, .size = cap, .chunk = CHUNK };
	struct obj_backend *in = inner_open(name, faults), *c = NULL;

	ck_assert_int_eq(obj_dcache_create(&c, in, &conf, id), 0);
	return c;
}

static struct obj_backend *cache_open(const char *name, uint64_t cap)
{
	return cache_open_ext(name, name, cap, NULL);
}

static uint8_t *pattern(size_t len, unsigned seed)
{
	uint8_t *p = malloc(len ? len : 1);
	struct util_rand r;

	ck_assert_ptr_nonnull(p);
	util_rand_seed(&r, seed);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)util_rand_next(&r);
	return p;
}

/* Put into the bare store (behind the cache: no write-through). */
static void put_raw(const char *store, const char *name, const void *data, size_t len)
{
	struct obj_backend *m = NULL;

	ck_assert_int_eq(obj_mem_create(&m, store), 0);
	ck_assert_int_eq(obj_put(m, name, data, len), 0);
	obj_close(m);
}

/* get(off, len) through b equals want[off .. min(off + len, size)). */
static void expect_range(struct obj_backend *b, const char *name, const uint8_t *want,
			 size_t size, uint64_t off, uint64_t len)
{
	void *got = NULL;
	size_t n = 0;
	uint64_t end = len == OBJ_WHOLE || off + len > size ? size : off + len;
	size_t expect = off >= size ? 0 : (size_t)(end - off);

	ck_assert_int_eq(obj_get(b, name, off, len, &got, &n), 0);
	ck_assert_msg(n == expect, "get(%llu, %llu): %zu bytes, expected %zu",
		      (unsigned long long)off, (unsigned long long)len, n, expect);
	if (expect)
		ck_assert_msg(!memcmp(got, want + off, expect), "get(%llu, %llu): wrong bytes",
			      (unsigned long long)off, (unsigned long long)len);
	else
		ck_assert_ptr_null(got);
	obj_buf_free(got);
}

static uint64_t gets(struct obj_backend *b)
{
	return check_obj_stat(b, "objstore_get_requests");
}

/* The entry file of chunk k of name in the cache of store id. */
static void entry_path(char *buf, size_t size, const char *id, const char *name, uint32_t k)
{
	char dir[CHECK_PATH_MAX + 32];

	snprintf(dir, sizeof(dir), "%s/%016llx", root,
		 (unsigned long long)obj_dcache_hash(id));
	ck_assert_int_eq(obj_dcache_file_path(buf, size, dir, obj_dcache_hash(name), k), 0);
}

/* Bytes of all entry files under the cache directory of store id. */
static uint64_t du_entries(const char *id)
{
	char dir[CHECK_PATH_MAX + 32], sub[CHECK_PATH_MAX + 320], f[CHECK_PATH_MAX + 640];
	uint64_t sum = 0;
	DIR *d, *s;
	struct dirent *e, *g;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/%016llx", root, (unsigned long long)obj_dcache_hash(id));
	d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || !strcmp(e->d_name, "store") || !strcmp(e->d_name, "lock"))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		s = opendir(sub);
		if (!s)
			continue;
		while ((g = readdir(s)) != NULL) {
			if (g->d_name[0] == '.')
				continue;
			snprintf(f, sizeof(f), "%s/%s", sub, g->d_name);
			if (stat(f, &st) == 0)
				sum += (uint64_t)st.st_blocks * 512;
		}
		closedir(s);
	}
	closedir(d);
	return sum;
}

START_TEST(test_obj_dcache__hits_and_misses_are_counted)
{
	size_t size = 3 * CHUNK + 100;
	uint8_t *data = pattern(size, 1);
	struct obj_backend *c;

	put_raw(store_a, "sst/a.sst", data, size);
	c = cache_open(store_a, 64u << 20);
	expect_range(c, "sst/a.sst", data, size, 10, 100);
	ck_assert_uint_eq(gets(c), 1);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_misses"), 1);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_hits"), 0);
	expect_range(c, "sst/a.sst", data, size, 20, 1000);
	ck_assert_uint_eq(gets(c), 1);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_hits"), 1);
	/* Adjacent misses are one GET: chunks 1..3 (the last one short). */
	expect_range(c, "sst/a.sst", data, size, 0, OBJ_WHOLE);
	ck_assert_uint_eq(gets(c), 2);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_misses"), 4);
	expect_range(c, "sst/a.sst", data, size, 0, OBJ_WHOLE);
	ck_assert_uint_eq(gets(c), 2);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_entries"), 4);
	/* Other objects pass through, every time. */
	put_raw(store_a, "wal/00000000000000000001", data, 10);
	expect_range(c, "wal/00000000000000000001", data, 10, 0, OBJ_WHOLE);
	expect_range(c, "wal/00000000000000000001", data, 10, 0, OBJ_WHOLE);
	ck_assert_uint_eq(gets(c), 4);
	obj_close(c);
	free(data);
}
END_TEST

START_TEST(test_obj_dcache__ranges_across_chunks_and_past_end)
{
	static const size_t sizes[] = { 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 123, 4 * CHUNK };
	struct obj_backend *c = cache_open(store_a, 64u << 20);
	struct util_rand r;

	util_rand_seed(&r, 42);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t size = sizes[s];
		uint8_t *data = pattern(size, 100 + (unsigned)s);
		char name[64];
		const uint64_t fixed[][2] = {
			{ 0, OBJ_WHOLE }, { 0, size }, { 0, size + 5000 }, { size, 10 },
			{ size + CHUNK * 3, 10 }, { size - 1, 1 }, { CHUNK - 10, 20 },
			{ CHUNK, CHUNK }, { CHUNK * 2 - 1, CHUNK + 2 }, { 1, OBJ_WHOLE },
			{ size / 2, OBJ_WHOLE }, { CHUNK + 5, 3 * CHUNK },
		};
		snprintf(name, sizeof(name), "sst/r%zu.sst", s);
		put_raw(store_a, name, data, size);
		/* Twice: cold (fetched), then warm (cached), same answers. */
		for (int pass = 0; pass < 2; pass++)
			for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
				if (fixed[i][0] <= size + 4 * CHUNK)
					expect_range(c, name, data, size, fixed[i][0], fixed[i][1]);
		for (int i = 0; i < 200; i++) {
			uint64_t off = util_rand_below(&r, size + CHUNK);
			uint64_t len = 1 + util_rand_below(&r, 3 * CHUNK);
			expect_range(c, name, data, size, off, len);
		}
		free(data);
	}
	/* A missing object is -ENOENT, as from the store. */
	{
		void *got = NULL;
		size_t n = 0;
		ck_assert_int_eq(obj_get(c, "sst/none.sst", 0, 10, &got, &n), -ENOENT);
	}
	ck_assert_uint_eq(check_obj_stat(c, "dcache_corrupt"), 0);
	obj_close(c);
}
END_TEST

/*
 * A hit reads and checks only the pieces (OBJ_DCACHE_PIECE) that hold the
 * bytes asked for: a flipped byte in another piece of the chunk costs
 * nothing and is not served; a read of its piece finds it, drops the
 * entry and fetches the chunk again.
 */
START_TEST(test_obj_dcache__hit_checks_only_its_pieces)
{
	size_t size = 2 * CHUNK;
	uint8_t *data = pattern(size, 9);
	struct obj_backend *c;
	char path[CHECK_PATH_MAX + 128];
	struct stat st;
	uint64_t g;
	int fd, saved;
	uint8_t byte;

	ck_assert_uint_ge(CHUNK / OBJ_DCACHE_PIECE, 4);
	put_raw(store_a, "sst/p.sst", data, size);
	c = cache_open(store_a, 64u << 20);
	expect_range(c, "sst/p.sst", data, size, 0, OBJ_WHOLE);
	g = gets(c);
	/* Flip a byte of chunk 0's third piece (the payload ends the file). */
	entry_path(path, sizeof(path), store_a, "sst/p.sst", 0);
	ck_assert_int_eq(stat(path, &st), 0);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	off_t at = st.st_size - CHUNK + 2 * OBJ_DCACHE_PIECE + 100;
	ck_assert_int_eq(pread(fd, &byte, 1, at), 1);
	byte ^= 0x01;
	ck_assert_int_eq(pwrite(fd, &byte, 1, at), 1);
	close(fd);
	/* Pieces 0-1 and 3 of it, and a range across the chunks from piece 3 on. */
	expect_range(c, "sst/p.sst", data, size, 10, 2 * OBJ_DCACHE_PIECE - 10);
	expect_range(c, "sst/p.sst", data, size, 3 * OBJ_DCACHE_PIECE + 5, 100);
	expect_range(c, "sst/p.sst", data, size, 3 * OBJ_DCACHE_PIECE, CHUNK);
	ck_assert_uint_eq(gets(c), g);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_corrupt"), 0);
	/* One byte of the flipped piece: found, refetched, right. */
	saved = check_stderr_quiet();
	expect_range(c, "sst/p.sst", data, size, 2 * OBJ_DCACHE_PIECE + 100, 1);
	check_stderr_restore(saved);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_corrupt"), 1);
	ck_assert_uint_eq(gets(c), g + 1);
	expect_range(c, "sst/p.sst", data, size, 0, OBJ_WHOLE);
	ck_assert_uint_eq(gets(c), g + 1);
	obj_close(c);
	free(data);
}
END_TEST

START_TEST(test_obj_dcache__corrupt_truncated_deleted_entries_refetched)
{
	size_t size = 4 * CHUNK;
	uint8_t *data = pattern(size, 7);
	struct obj_backend *c;
	char path[CHECK_PATH_MAX + 128];
	uint64_t g;
	int fd, saved;
	uint8_t byte;

	put_raw(store_a, "sst/c.sst", data, size);
	c = cache_open(store_a, 64u << 20);
	expect_range(c, "sst/c.sst", data, size, 0, OBJ_WHOLE);
	g = gets(c);

	/* Flip one payload byte of chunk 0. */
	entry_path(path, sizeof(path), store_a, "sst/c.sst", 0);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &byte, 1, 5000), 1);
	byte ^= 0x20;
	ck_assert_int_eq(pwrite(fd, &byte, 1, 5000), 1);
	close(fd);
	/* Truncate chunk 1 by one byte, delete chunk 2, zero chunk 3's header crc. */
	entry_path(path, sizeof(path), store_a, "sst/c.sst", 1);
	ck_assert_int_eq(truncate(path, CHUNK), 0);
	entry_path(path, sizeof(path), store_a, "sst/c.sst", 2);
	ck_assert_int_eq(unlink(path), 0);
	entry_path(path, sizeof(path), store_a, "sst/c.sst", 3);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "\0\0\0\0", 4, 32), 4);
	close(fd);

	saved = check_stderr_quiet();
	expect_range(c, "sst/c.sst", data, size, 0, OBJ_WHOLE);
	check_stderr_restore(saved);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_corrupt"), 4);
	ck_assert_uint_eq(gets(c), g + 4);
	/* Refetched entries are good again. */
	expect_range(c, "sst/c.sst", data, size, 0, OBJ_WHOLE);
	ck_assert_uint_eq(gets(c), g + 4);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_corrupt"), 4);
	obj_close(c);

	/* A corrupt file is also dropped by the scan of a new wrapper. */
	entry_path(path, sizeof(path), store_a, "sst/c.sst", 0);
	ck_assert_int_eq(truncate(path, 10), 0);
	c = cache_open(store_a, 64u << 20);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_corrupt"), 1);
	/* chunks 1..3 and the end marker after chunk 3 */
	ck_assert_uint_eq(check_obj_stat(c, "dcache_entries"), 4);
	expect_range(c, "sst/c.sst", data, size, 0, OBJ_WHOLE);
	ck_assert_uint_eq(gets(c), 1);
	obj_close(c);
	free(data);
}
END_TEST

START_TEST(test_obj_dcache__cap_holds_under_4x_workload)
{
	const uint64_t cap = 2u << 20;
	const size_t obj = 4 * CHUNK;               /* 256 KiB objects */
	const int nobj = (int)(4 * cap / obj);      /* 4x the cap */
	uint8_t *data = pattern(obj, 9);
	struct obj_backend *c = cache_open(store_a, cap);
	struct util_rand r;
	char name[64];

	for (int i = 0; i < nobj; i++) {
		snprintf(name, sizeof(name), "sst/cap%03d.sst", i);
		data[0] = (uint8_t)i;
		put_raw(store_a, name, data, obj);
	}
	util_rand_seed(&r, 5);
	for (int round = 0; round < 3 * nobj; round++) {
		int i = round < nobj ? round : (int)util_rand_below(&r, (uint64_t)nobj);
		snprintf(name, sizeof(name), "sst/cap%03d.sst", i);
		data[0] = (uint8_t)i;
		expect_range(c, name, data, obj, 0, OBJ_WHOLE);
		ck_assert_uint_le(check_obj_stat(c, "dcache_bytes"), cap);
		ck_assert_msg(du_entries(store_a) <= cap + cap / 20,
			      "entry files use %llu bytes, cap %llu",
			      (unsigned long long)du_entries(store_a), (unsigned long long)cap);
	}
	ck_assert_uint_gt(check_obj_stat(c, "dcache_evictions"), 0);
	/* It is also full, not empty: at least 90% of the cap. */
	ck_assert_uint_ge(check_obj_stat(c, "dcache_bytes"), cap / 10 * 9);
	obj_close(c);

	/* A smaller cap at reopen evicts down to it. */
	c = cache_open(store_a, cap / 2);
	ck_assert_uint_le(check_obj_stat(c, "dcache_bytes"), cap / 2);
	ck_assert_uint_le(du_entries(store_a), cap / 2 + cap / 40);
	obj_close(c);
	free(data);
}
END_TEST

START_TEST(test_obj_dcache__two_stores_share_a_dir)
{
	size_t size = 2 * CHUNK + 7;
	uint8_t *a = pattern(size, 11), *bb = pattern(size, 12);
	struct obj_backend *ca, *cb;

	put_raw(store_a, "sst/same.sst", a, size);
	put_raw(store_b, "sst/same.sst", bb, size);
	ca = cache_open(store_a, 64u << 20);
	cb = cache_open(store_b, 64u << 20);
	for (int pass = 0; pass < 2; pass++) {
		expect_range(ca, "sst/same.sst", a, size, 0, OBJ_WHOLE);
		expect_range(cb, "sst/same.sst", bb, size, 0, OBJ_WHOLE);
		expect_range(ca, "sst/same.sst", a, size, CHUNK - 3, 10);
		expect_range(cb, "sst/same.sst", bb, size, CHUNK - 3, 10);
	}
	ck_assert_uint_eq(gets(ca), 1);
	ck_assert_uint_eq(gets(cb), 1);
	obj_close(ca);
	obj_close(cb);
	/* And after a reopen, in the other order. */
	cb = cache_open(store_b, 64u << 20);
	ca = cache_open(store_a, 64u << 20);
	expect_range(cb, "sst/same.sst", bb, size, 0, OBJ_WHOLE);
	expect_range(ca, "sst/same.sst", a, size, 0, OBJ_WHOLE);
	ck_assert_uint_eq(gets(ca) + gets(cb), 0);
	obj_close(ca);
	obj_close(cb);
	free(a);
	free(bb);
}
END_TEST

START_TEST(test_obj_dcache__reopen_serves_from_cache)
{
	size_t size = 6 * CHUNK + 999;
	uint8_t *data = pattern(size, 21);
	struct obj_backend *c;
	struct obj_backend *other = NULL;
	struct obj_dcache_config conf = { .dir = root, .size = 64u << 20, .chunk = CHUNK };

	put_raw(store_a, "sst/re.sst", data, size);
	c = cache_open(store_a, 64u << 20);
	expect_range(c, "sst/re.sst", data, size, 0, OBJ_WHOLE);
	ck_assert_uint_eq(gets(c), 1);
	/* One process at a time per store's cache. */
	{
		struct obj_backend *in = inner_open(store_a, NULL);
		int saved = check_stderr_quiet();
		ck_assert_int_eq(obj_dcache_create(&other, in, &conf, store_a), -EBUSY);
		check_stderr_restore(saved);
		obj_close(in);
	}
	obj_close(c);
	c = cache_open(store_a, 64u << 20);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_entries"), 7);
	expect_range(c, "sst/re.sst", data, size, 0, OBJ_WHOLE);
	expect_range(c, "sst/re.sst", data, size, 3 * CHUNK - 1, 2 * CHUNK);
	ck_assert_uint_eq(gets(c), 0);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_hits"), 7 + 3);
	obj_close(c);
	free(data);
}
END_TEST

START_TEST(test_obj_dcache__write_through_and_delete)
{
	size_t size = 3 * CHUNK + 1;
	uint8_t *data = pattern(size, 31);
	struct obj_backend *c = cache_open(store_a, 64u << 20);
	char path[CHECK_PATH_MAX + 128];

	ck_assert_int_eq(obj_put(c, "sst/w.sst", data, size), 0);
	ck_assert_int_eq(obj_put_if_absent(c, "sst/w2.sst", data, size), 0);
	expect_range(c, "sst/w.sst", data, size, 0, OBJ_WHOLE);
	expect_range(c, "sst/w2.sst", data, size, 100, 2 * CHUNK);
	ck_assert_uint_eq(gets(c), 0);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_writethrough_bytes"), 2 * size);
	/* A lost put_if_absent caches nothing of its bytes. */
	data[0] ^= 1;
	ck_assert_int_eq(obj_put_if_absent(c, "sst/w2.sst", data, size), -EEXIST);
	data[0] ^= 1;
	expect_range(c, "sst/w2.sst", data, size, 0, 10);
	/* Delete drops the entries and their files. */
	ck_assert_int_eq(obj_delete(c, "sst/w.sst"), 0);
	entry_path(path, sizeof(path), store_a, "sst/w.sst", 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_entries"), 4);
	{
		const char *names[] = { "sst/w2.sst" };
		ck_assert_int_eq(obj_delete_many(c, names, 1), 0);
	}
	ck_assert_uint_eq(check_obj_stat(c, "dcache_entries"), 0);
	ck_assert_uint_eq(check_obj_stat(c, "dcache_bytes"), 0);
	{
		void *got = NULL;
		size_t n = 0;
		ck_assert_int_eq(obj_get(c, "sst/w.sst", 0, 10, &got, &n), -ENOENT);
	}
	obj_close(c);
	free(data);
}
END_TEST

struct reader_arg {
	struct obj_backend *c;
	const uint8_t *data;
	size_t size;
	pthread_barrier_t *bar;
	int ok;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	void *got = NULL;
	size_t n = 0;

	pthread_barrier_wait(a->bar);
	a->ok = obj_get(a->c, "sst/conc.sst", 0, OBJ_WHOLE, &got, &n) == 0 && n == a->size &&
		!memcmp(got, a->data, n);
	obj_buf_free(got);
	return NULL;
}

START_TEST(test_obj_dcache__concurrent_misses_fetch_once)
{
	enum { N = 8 };
	size_t size = 2 * CHUNK;
	uint8_t *data = pattern(size, 41);
	/* Slow GETs, so that every reader arrives while the first one fetches. */
	struct obj_backend *c;
	pthread_t t[N];
	struct reader_arg a[N];
	pthread_barrier_t bar;

	put_raw(store_a, "sst/conc.sst", data, size);
	c = cache_open_ext(store_a, store_a, 64u << 20, "latency_ms=200,ops=get");
	pthread_barrier_init(&bar, NULL, N);
	for (int i = 0; i < N; i++) {
		a[i] = (struct reader_arg){ c, data, size, &bar, 0 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, reader, &a[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		ck_assert(a[i].ok);
	}
	pthread_barrier_destroy(&bar);
	ck_assert_uint_eq(gets(c), 1);
	obj_close(c);
	free(data);
}
END_TEST

struct span_arg {
	struct obj_backend *c;
	const uint8_t *data;
	uint64_t off, len;
	double secs;
	int ok;
};

static void *span_reader(void *p)
{
	struct span_arg *a = p;
	void *got = NULL;
	size_t n = 0;
	uint64_t t0 = util_now_ns();

	a->ok = obj_get(a->c, "sst/span.sst", a->off, a->len, &got, &n) == 0 && n == a->len &&
		!memcmp(got, a->data + a->off, n);
	a->secs = (double)(util_now_ns() - t0) / 1e9;
	obj_buf_free(got);
	return NULL;
}

/*
 * Two spans of a stream in flight share an edge chunk. The second get
 * fetches its own chunks at once and takes the shared one from the first
 * get's fetch when that ends: each chunk is fetched once, and the second
 * get takes about one GET's latency, not the rest of the first's plus its
 * own (400 ms GETs; it starts 100 ms after the first: about 400 ms
 * against 700 ms if it waited).
 */
START_TEST(test_obj_dcache__span_does_not_wait_for_its_neighbour)
{
	size_t size = 4 * CHUNK;
	uint8_t *data = pattern(size, 43);
	struct obj_backend *c;
	pthread_t ta, tb;
	struct span_arg a, b;

	put_raw(store_a, "sst/span.sst", data, size);
	c = cache_open_ext(store_a, store_a, 64u << 20, "latency_ms=400,ops=get");
	a = (struct span_arg){ c, data, 100, 2 * CHUNK - 200, 0, 0 };
	b = (struct span_arg){ c, data, 2 * CHUNK - 100, 2 * CHUNK + 50, 0, 0 };
	ck_assert_int_eq(pthread_create(&ta, NULL, span_reader, &a), 0);
	usleep(100 * 1000);
	ck_assert_int_eq(pthread_create(&tb, NULL, span_reader, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	ck_assert(a.ok && b.ok);
	ck_assert_uint_eq(gets(c), 2);
	ck_assert_msg(b.secs < 0.6, "the second get took %.3f s", b.secs);
	/* All of what they read is cached: reading it again sends nothing. */
	expect_range(c, "sst/span.sst", data, size, 100, 4 * CHUNK - 150);
	ck_assert_uint_eq(gets(c), 2);
	obj_close(c);
	free(data);
}
END_TEST

struct stress_arg {
	struct obj_backend *c;
	const uint8_t *data;
	size_t size;
	unsigned seed;
	int bad;
};

static void *stress_reader(void *p)
{
	struct stress_arg *a = p;
	struct util_rand r;

	util_rand_seed(&r, a->seed);
	for (int i = 0; i < 200 && !a->bad; i++) {
		uint64_t off = util_rand_below(&r, a->size + CHUNK / 2);
		uint64_t len = 1 + util_rand_below(&r, 3 * CHUNK);
		size_t want = off >= a->size ? 0 : (size_t)(a->size - off < len ? a->size - off : len);
		void *got = NULL;
		size_t n = 0;
		if (obj_get(a->c, "sst/stress.sst", off, len, &got, &n) != 0 || n != want ||
		    (n && memcmp(got, a->data + off, n)))
			a->bad = 1 + i;
		obj_buf_free(got);
	}
	return NULL;
}

/* Many gets of overlapping ranges at once, through slow GETs and a cache
 * that evicts: every get succeeds with every byte right (the chunks
 * another get was fetching land in their places, last). */
START_TEST(test_obj_dcache__concurrent_overlapping_ranges)
{
	enum { N = 8 };
	size_t size = 12 * CHUNK + 777;
	uint8_t *data = pattern(size, 47);
	struct obj_backend *c;
	pthread_t t[N];
	struct stress_arg a[N];

	put_raw(store_a, "sst/stress.sst", data, size);
	c = cache_open_ext(store_a, store_a, 4 * CHUNK + 8192, "latency_ms=0-3,ops=get");
	for (int i = 0; i < N; i++) {
		a[i] = (struct stress_arg){ c, data, size, 100 + i, 0 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, stress_reader, &a[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(!a[i].bad, "reader %d: get %d failed or was wrong", i, a[i].bad - 1);
	}
	obj_close(c);
	free(data);
}
END_TEST

static Suite *obj_dcache_suite(void)
{
	Suite *s = suite_create("obj_dcache");
	TCase *tc = tcase_create("dcache");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_obj_dcache__hits_and_misses_are_counted);
	tcase_add_test(tc, test_obj_dcache__ranges_across_chunks_and_past_end);
	tcase_add_test(tc, test_obj_dcache__corrupt_truncated_deleted_entries_refetched);
	tcase_add_test(tc, test_obj_dcache__hit_checks_only_its_pieces);
	tcase_add_test(tc, test_obj_dcache__cap_holds_under_4x_workload);
	tcase_add_test(tc, test_obj_dcache__two_stores_share_a_dir);
	tcase_add_test(tc, test_obj_dcache__reopen_serves_from_cache);
	tcase_add_test(tc, test_obj_dcache__write_through_and_delete);
	tcase_add_test(tc, test_obj_dcache__concurrent_misses_fetch_once);
	tcase_add_test(tc, test_obj_dcache__span_does_not_wait_for_its_neighbour);
	tcase_add_test(tc, test_obj_dcache__concurrent_overlapping_ranges);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(obj_dcache_suite)
