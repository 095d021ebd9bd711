/*
 * check_kv_cache.c - tests of kv/kv_cache.c: lookup/insert/release,
 * byte cap and LRU eviction, pinning by refcount, replacement, stats, and
 * concurrent use from 8 threads. Every test checks the invariants.
 */
#include "kv/kv_int.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdlib.h>

#include "tests/check_main.h"

#define SHARDS 16

/* A block whose bytes name its key, so a wrong hit is detectable. */
static void *block(uint64_t file, uint64_t off, size_t len)
{
	uint8_t *p = malloc(len < 16 ? 16 : len);
	ck_assert_ptr_nonnull(p);
	memset(p, 0xab, len < 16 ? 16 : len);
	util_put_be64(p, file);
	util_put_be64(p + 8, off);
	return p;
}

static void check_block(struct kv_cache_handle *h, uint64_t file, uint64_t off)
{
	size_t len;
	const uint8_t *p = kv_cache_data(h, &len);
	ck_assert_uint_eq(util_get_be64(p), file);
	ck_assert_uint_eq(util_get_be64(p + 8), off);
}

START_TEST(test_kv_cache__insert_lookup_release)
{
	struct kv_cache *c;
	struct kv_cache_handle *h;
	uint64_t hits, misses, bytes;
	size_t len;

	ck_assert_int_eq(kv_cache_create(&c, 1 << 20), 0);
	uint64_t id = kv_cache_new_id(c);
	ck_assert_uint_ne(id, 0);
	ck_assert_uint_ne(kv_cache_new_id(c), id);
	ck_assert_ptr_null(kv_cache_lookup(c, id, 0));
	h = kv_cache_insert(c, id, 0, block(id, 0, 100), 100);
	ck_assert_ptr_nonnull(h);
	kv_cache_data(h, &len);
	ck_assert_uint_eq(len, 100);
	kv_cache_release(c, h);
	h = kv_cache_lookup(c, id, 0);
	ck_assert_ptr_nonnull(h);
	check_block(h, id, 0);
	ck_assert_ptr_null(kv_cache_lookup(c, id, 4096));
	ck_assert_ptr_null(kv_cache_lookup(c, id + 1, 0));
	kv_cache_release(c, h);
	kv_cache_stats(c, &hits, &misses, &bytes);
	ck_assert_uint_eq(hits, 1);
	ck_assert_uint_eq(misses, 3);
	ck_assert_uint_eq(bytes, 100);
	ck_assert_int_eq(kv_cache_check_invariants(c), 0);
	kv_cache_free(c);
}
END_TEST

START_TEST(test_kv_cache__eviction_under_cap)
{
	const size_t cap = SHARDS * 1000;
	struct kv_cache *c;
	uint64_t bytes;

	ck_assert_int_eq(kv_cache_create(&c, cap), 0);
	for (uint64_t i = 0; i < 5000; i++) {
		struct kv_cache_handle *h = kv_cache_insert(c, 1, i * 4096, block(1, i * 4096, 100), 100);
		ck_assert_ptr_nonnull(h);
		kv_cache_release(c, h);
		kv_cache_stats(c, NULL, NULL, &bytes);
		ck_assert_uint_le(bytes, cap);
	}
	ck_assert_int_eq(kv_cache_check_invariants(c), 0);
	/* About cap/100 blocks fit; the oldest are gone, the newest are there. */
	size_t present = 0;
	for (uint64_t i = 0; i < 5000; i++) {
		struct kv_cache_handle *h = kv_cache_lookup(c, 1, i * 4096);
		if (h) {
			check_block(h, 1, i * 4096);
			kv_cache_release(c, h);
			present++;
		}
	}
	ck_assert_uint_le(present, cap / 100);
	ck_assert_uint_ge(present, cap / 100 / 2);
	ck_assert_ptr_null(kv_cache_lookup(c, 1, 0));
	/* LRU, not FIFO: a block that keeps being used survives. */
	struct kv_cache_handle *h = kv_cache_insert(c, 2, 0, block(2, 0, 100), 100);
	kv_cache_release(c, h);
	for (uint64_t i = 0; i < 5000; i++) {
		h = kv_cache_insert(c, 3, i, block(3, i, 100), 100);
		kv_cache_release(c, h);
		h = kv_cache_lookup(c, 2, 0);
		ck_assert_ptr_nonnull(h);
		kv_cache_release(c, h);
	}
	ck_assert_int_eq(kv_cache_check_invariants(c), 0);
	kv_cache_free(c);
}
END_TEST

START_TEST(test_kv_cache__refcount_pins)
{
	const size_t cap = SHARDS * 100;
	struct kv_cache *c;
	struct kv_cache_handle *pinned, *h;
	uint64_t bytes;

	ck_assert_int_eq(kv_cache_create(&c, cap), 0);
	/* Larger than its shard's whole budget: kept while pinned. */
	pinned = kv_cache_insert(c, 7, 0, block(7, 0, 1000), 1000);
	ck_assert_ptr_nonnull(pinned);
	for (uint64_t i = 1; i < 2000; i++) {
		h = kv_cache_insert(c, 7, i, block(7, i, 50), 50);
		kv_cache_release(c, h);
	}
	ck_assert_int_eq(kv_cache_check_invariants(c), 0);
	check_block(pinned, 7, 0);
	h = kv_cache_lookup(c, 7, 0);                 /* still findable while pinned */
	ck_assert_ptr_eq(h, pinned);
	kv_cache_release(c, h);
	kv_cache_stats(c, NULL, NULL, &bytes);
	ck_assert_uint_gt(bytes, 1000 - 1);
	/* Released over budget: evicted at once. */
	kv_cache_release(c, pinned);
	ck_assert_ptr_null(kv_cache_lookup(c, 7, 0));
	kv_cache_stats(c, NULL, NULL, &bytes);
	ck_assert_uint_le(bytes, cap);
	ck_assert_int_eq(kv_cache_check_invariants(c), 0);
	kv_cache_free(c);
}
END_TEST

START_TEST(test_kv_cache__zero_capacity)
{
	struct kv_cache *c;
	uint64_t bytes;
	ck_assert_int_eq(kv_cache_create(&c, 0), 0);
	struct kv_cache_handle *h = kv_cache_insert(c, 1, 1, block(1, 1, 64), 64);
	ck_assert_ptr_nonnull(h);
	check_block(h, 1, 1);
	kv_cache_release(c, h);
	ck_assert_ptr_null(kv_cache_lookup(c, 1, 1));
	kv_cache_stats(c, NULL, NULL, &bytes);
	ck_assert_uint_eq(bytes, 0);
	ck_assert_int_eq(kv_cache_check_invariants(c), 0);
	kv_cache_free(c);
}
END_TEST

START_TEST(test_kv_cache__insert_replaces)
{
	struct kv_cache *c;
	struct kv_cache_handle *a, *b, *h;
	uint64_t bytes;

	ck_assert_int_eq(kv_cache_create(&c, 1 << 20), 0);
	a = kv_cache_insert(c, 1, 0, block(1, 0, 100), 100);
	b = kv_cache_insert(c, 1, 0, block(1, 0, 200), 200);
	ck_assert_ptr_ne(a, b);
	h = kv_cache_lookup(c, 1, 0);
	ck_assert_ptr_eq(h, b);
	kv_cache_release(c, h);
	size_t len;
	kv_cache_data(a, &len);                   /* the old block is still valid */
	ck_assert_uint_eq(len, 100);
	check_block(a, 1, 0);
	kv_cache_stats(c, NULL, NULL, &bytes);
	ck_assert_uint_eq(bytes, 200);
	ck_assert_int_eq(kv_cache_check_invariants(c), 0);
	kv_cache_release(c, a);
	kv_cache_release(c, b);
	/* Replacing an idle entry. */
	b = kv_cache_insert(c, 1, 0, block(1, 0, 300), 300);
	kv_cache_release(c, b);
	kv_cache_stats(c, NULL, NULL, &bytes);
	ck_assert_uint_eq(bytes, 300);
	ck_assert_int_eq(kv_cache_check_invariants(c), 0);
	kv_cache_free(c);
}
END_TEST

START_TEST(test_kv_cache__free_with_idle_entries)
{
	struct kv_cache *c;
	ck_assert_int_eq(kv_cache_create(&c, 1 << 20), 0);
	for (uint64_t i = 0; i < 1000; i++)       /* forces bucket growth */
		kv_cache_release(c, kv_cache_insert(c, 9, i, block(9, i, 32), 32));
	ck_assert_int_eq(kv_cache_check_invariants(c), 0);
	for (uint64_t i = 0; i < 1000; i++) {
		struct kv_cache_handle *h = kv_cache_lookup(c, 9, i);
		ck_assert_ptr_nonnull(h);
		check_block(h, 9, i);
		kv_cache_release(c, h);
	}
	kv_cache_free(c);
	kv_cache_free(NULL);
}
END_TEST

struct worker {
	struct kv_cache *c;
	uint64_t seed;
	int errors;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct util_rand r;
	struct kv_cache_handle *held[8] = { 0 };

	util_rand_seed(&r, w->seed);
	for (int i = 0; i < 50000; i++) {
		uint64_t file = util_rand_below(&r, 4) + 1, off = util_rand_below(&r, 500);
		int slot = (int)util_rand_below(&r, 8);
		struct kv_cache_handle *h = kv_cache_lookup(w->c, file, off);
		if (!h) {
			size_t len = 16 + util_rand_below(&r, 400);
			h = kv_cache_insert(w->c, file, off, block(file, off, len), len);
		}
		if (!h) {
			w->errors++;
			continue;
		}
		size_t len;
		const uint8_t *p = kv_cache_data(h, &len);
		if (util_get_be64(p) != file || util_get_be64(p + 8) != off)
			w->errors++;
		/* Hold a few handles across other operations. */
		if (held[slot])
			kv_cache_release(w->c, held[slot]);
		held[slot] = h;
	}
	for (int s = 0; s < 8; s++)
		if (held[s])
			kv_cache_release(w->c, held[s]);
	return NULL;
}

START_TEST(test_kv_cache__concurrent_8_threads)
{
	const size_t cap = 64 * 1024;
	struct kv_cache *c;
	pthread_t t[8];
	struct worker w[8];
	uint64_t bytes, hits, misses;

	ck_assert_int_eq(kv_cache_create(&c, cap), 0);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){ .c = c, .seed = (uint64_t)i + 1 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(w[i].errors, 0);
	}
	ck_assert_int_eq(kv_cache_check_invariants(c), 0);
	kv_cache_stats(c, &hits, &misses, &bytes);
	ck_assert_uint_eq(hits + misses, 8 * 50000);
	ck_assert_uint_gt(hits, 0);
	ck_assert_uint_le(bytes, cap + SHARDS);
	kv_cache_free(c);
}
END_TEST

START_TEST(test_kv_cache__contains_is_a_silent_peek)
{
	struct kv_cache *c;
	struct kv_cache_handle *h;
	uint64_t hits, misses;

	ck_assert_int_eq(kv_cache_create(&c, SHARDS * 300), 0);
	uint64_t id = kv_cache_new_id(c);
	ck_assert_int_eq(kv_cache_contains(c, id, 0), 0);
	h = kv_cache_insert(c, id, 0, block(id, 0, 100), 100);
	kv_cache_release(c, h);
	ck_assert_int_eq(kv_cache_contains(c, id, 0), 1);
	ck_assert_int_eq(kv_cache_contains(c, id, 1), 0);
	ck_assert_int_eq(kv_cache_contains(c, id + 1, 0), 0);
	kv_cache_stats(c, &hits, &misses, NULL);
	ck_assert_uint_eq(hits, 0);                       /* not counted */
	ck_assert_uint_eq(misses, 0);
	ck_assert_int_eq(kv_cache_check_invariants(c), 0); /* not pinned */
	kv_cache_free(c);
}
END_TEST

START_TEST(test_kv_cache__readahead_budget)
{
	struct kv_cache *c;
	struct kv_ra_stats st;

	ck_assert_int_eq(kv_cache_create(&c, 64 << 20), 0);
	ck_assert_uint_eq(kv_ra_span_max(c), 4 << 20);  /* capacity / 4 / KV_RA_DEPTH */
	/* A quarter of the capacity may be out at once, in any pieces. */
	ck_assert_int_eq(kv_ra_reserve(c, 2 << 20), 1);
	ck_assert_int_eq(kv_ra_reserve(c, 14 << 20), 1);
	ck_assert_int_eq(kv_ra_reserve(c, 1), 0);
	kv_ra_release(c, 2 << 20);
	ck_assert_int_eq(kv_ra_reserve(c, (2 << 20) + 1), 0);
	ck_assert_int_eq(kv_ra_reserve(c, 2 << 20), 1);
	kv_ra_release(c, 2 << 20);
	kv_ra_release(c, 14 << 20);
	ck_assert_int_eq(kv_ra_reserve(c, 17 << 20), 0);
	ck_assert_int_eq(kv_ra_reserve(c, SIZE_MAX), 0);
	ck_assert_int_eq(kv_ra_reserve(c, 16 << 20), 1);
	kv_ra_release(c, 16 << 20);
	kv_ra_count(c, 1, 30, 0);
	kv_ra_count(c, 2, 0, 5);
	kv_ra_stats(c, &st);
	ck_assert_uint_eq(st.spans, 3);
	ck_assert_uint_eq(st.blocks, 30);
	ck_assert_uint_eq(st.waits, 5);
	kv_cache_free(c);

	/* No capacity, no read-ahead. */
	ck_assert_int_eq(kv_cache_create(&c, 0), 0);
	ck_assert_uint_eq(kv_ra_span_max(c), 0);
	ck_assert_int_eq(kv_ra_reserve(c, 1), 0);
	kv_cache_free(c);
}
END_TEST

/* ---- fill threads ---------------------------------------------------------- */

struct fjob {
	atomic_int *ran, *cancelled;
	atomic_int *gate;                 /* run() waits while it is nonzero */
	atomic_int *running;
};

static void fjob_run(void *arg)
{
	struct fjob *j = arg;
	(*j->running)++;
	while (*j->gate)
		usleep(1000);
	(*j->ran)++;
	(*j->running)--;
}

static void fjob_cancel(void *arg)
{
	struct fjob *j = arg;
	(*j->cancelled)++;
}

static void *fill_stopper(void *c)
{
	kv_ra_fill_stop(c);
	return NULL;
}

START_TEST(test_kv_cache__fill_threads_run_or_cancel_each_job_once)
{
	struct kv_cache *c;
	atomic_int ran = 0, cancelled = 0, gate = 0, running = 0;
	struct fjob j = { &ran, &cancelled, &gate, &running };

	ck_assert_int_eq(kv_cache_create(&c, 1 << 20), 0);
	/* Not started: refused. */
	ck_assert_int_eq(kv_ra_fill_running(c), 0);
	ck_assert_int_eq(kv_ra_fill_submit(c, fjob_run, fjob_cancel, &j), -EBUSY);
	ck_assert_int_eq(kv_ra_fill_start(c), 0);
	ck_assert_int_eq(kv_ra_fill_running(c), 1);
	for (int i = 0; i < 20; i++)
		while (kv_ra_fill_submit(c, fjob_run, fjob_cancel, &j) == -EBUSY)
			usleep(1000);                     /* (KV_RA_FILL_QUEUE may wait) */
	while (ran < 20)
		usleep(1000);
	/* Every thread held up: the queue fills, then refuses. */
	gate = 1;
	for (int i = 0; i < KV_RA_FILL_THREADS; i++)
		ck_assert_int_eq(kv_ra_fill_submit(c, fjob_run, fjob_cancel, &j), 0);
	while (running < KV_RA_FILL_THREADS)
		usleep(1000);
	int queued = 0;
	while (kv_ra_fill_submit(c, fjob_run, fjob_cancel, &j) == 0)
		queued++;
	ck_assert_int_eq(queued, KV_RA_FILL_QUEUE);
	/* Stop: the queued ones are cancelled, the running ones finish. */
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, fill_stopper, c), 0);
	for (int ms = 0; cancelled < KV_RA_FILL_QUEUE && ms < 10000; ms++)
		usleep(1000);
	ck_assert_int_eq(cancelled, KV_RA_FILL_QUEUE);
	ck_assert_int_eq(ran, 20);                    /* still held */
	gate = 0;
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(ran, 20 + KV_RA_FILL_THREADS);
	ck_assert_int_eq(cancelled, KV_RA_FILL_QUEUE);
	ck_assert_int_eq(kv_ra_fill_running(c), 0);
	ck_assert_int_eq(kv_ra_fill_submit(c, fjob_run, fjob_cancel, &j), -EBUSY);
	ck_assert_int_eq(kv_ra_fill_start(c), 0);  /* once stopped, for good */
	ck_assert_int_eq(kv_ra_fill_running(c), 0);
	kv_ra_fill_stop(c);                        /* idempotent */
	kv_cache_free(c);

	/* kv_cache_free stops them too. */
	ck_assert_int_eq(kv_cache_create(&c, 1 << 20), 0);
	ck_assert_int_eq(kv_ra_fill_start(c), 0);
	gate = 1;
	running = 0;
	ck_assert_int_eq(kv_ra_fill_submit(c, fjob_run, fjob_cancel, &j), 0);
	while (running < 1)
		usleep(1000);
	ck_assert_int_eq(kv_ra_fill_submit(c, fjob_run, fjob_cancel, &j), 0);
	ck_assert_int_eq(kv_ra_fill_submit(c, fjob_run, fjob_cancel, &j), 0);
	ck_assert_int_eq(kv_ra_fill_submit(c, fjob_run, fjob_cancel, &j), 0);
	gate = 0;
	kv_cache_free(c);
	ck_assert_int_eq(ran + cancelled, 20 + KV_RA_FILL_THREADS + KV_RA_FILL_QUEUE + 4);
}
END_TEST

static Suite *kv_cache_suite(void)
{
	Suite *s = suite_create("kv_cache");
	TCase *tc;

	tc = tcase_create("basic");
	tcase_add_test(tc, test_kv_cache__insert_lookup_release);
	tcase_add_test(tc, test_kv_cache__insert_replaces);
	tcase_add_test(tc, test_kv_cache__free_with_idle_entries);
	tcase_add_test(tc, test_kv_cache__contains_is_a_silent_peek);
	tcase_add_test(tc, test_kv_cache__readahead_budget);
	suite_add_tcase(s, tc);

	tc = tcase_create("eviction");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_kv_cache__eviction_under_cap);
	tcase_add_test(tc, test_kv_cache__refcount_pins);
	tcase_add_test(tc, test_kv_cache__zero_capacity);
	suite_add_tcase(s, tc);

	tc = tcase_create("concurrency");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_kv_cache__concurrent_8_threads);
	tcase_add_test(tc, test_kv_cache__fill_threads_run_or_cancel_each_job_once);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(kv_cache_suite)
