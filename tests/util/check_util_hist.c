/*
 * check_util_hist.c - util_hist: which bucket a duration lands in (the
 * bounds are inclusive, as Prometheus' le), +Inf past the last bound,
 * the sum, and counts from many threads adding up across the shards.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "tests/check_main.h"
#include "util/util.h"

START_TEST(test_util_hist__buckets_are_inclusive_bounds)
{
	struct util_hist *h = calloc(1, sizeof(*h));
	struct util_hist_snap s = { .count = 0 };

	ck_assert_ptr_nonnull(h);
	util_hist_record(h, 0);                                   /* bucket 0 */
	util_hist_record(h, util_hist_bounds_ns[0]);              /* bucket 0 */
	util_hist_record(h, util_hist_bounds_ns[0] + 1);          /* bucket 1 */
	util_hist_record(h, util_hist_bounds_ns[5]);              /* bucket 5 */
	util_hist_record(h, util_hist_bounds_ns[UTIL_HIST_BOUNDS - 1]);     /* last finite */
	util_hist_record(h, util_hist_bounds_ns[UTIL_HIST_BOUNDS - 1] + 1); /* +Inf */
	util_hist_record(h, UINT64_MAX / 2);                      /* +Inf */
	util_hist_read(h, &s);
	ck_assert_uint_eq(s.count, 7);
	ck_assert_uint_eq(s.bucket[0], 2);
	ck_assert_uint_eq(s.bucket[1], 1);
	ck_assert_uint_eq(s.bucket[5], 1);
	ck_assert_uint_eq(s.bucket[UTIL_HIST_BOUNDS - 1], 1);
	ck_assert_uint_eq(s.bucket[UTIL_HIST_BOUNDS], 2);
	ck_assert_uint_eq(s.sum_ns, 0 + util_hist_bounds_ns[0] * 2 + 1 + util_hist_bounds_ns[5] +
				    util_hist_bounds_ns[UTIL_HIST_BOUNDS - 1] * 2 + 1 +
				    UINT64_MAX / 2);
	free(h);
}
END_TEST

START_TEST(test_util_hist__bounds_increase_log_spaced)
{
	ck_assert_uint_eq(util_hist_bounds_ns[0], 10000);
	ck_assert_uint_eq(util_hist_bounds_ns[UTIL_HIST_BOUNDS - 1], 10000000000ull);
	for (int i = 1; i < UTIL_HIST_BOUNDS; i++) {
		ck_assert_uint_gt(util_hist_bounds_ns[i], util_hist_bounds_ns[i - 1]);
		/* 1, 2.5, 5, 10: each step at most 2.5 times the last */
		ck_assert_uint_le(util_hist_bounds_ns[i] * 2, util_hist_bounds_ns[i - 1] * 5);
	}
}
END_TEST

#define HIST_THREADS 8
#define HIST_PER_THREAD 20000

static void *hist_worker(void *arg)
{
	struct util_hist *h = arg;

	for (int i = 0; i < HIST_PER_THREAD; i++)
		util_hist_record(h, (uint64_t)(i % 7) * 1000000);  /* 0 .. 6 ms */
	return NULL;
}

START_TEST(test_util_hist__threads_add_up)
{
	struct util_hist *h = calloc(1, sizeof(*h));
	struct util_hist_snap s = { .count = 0 };
	pthread_t t[HIST_THREADS];
	uint64_t want_sum = 0, n = 0;

	ck_assert_ptr_nonnull(h);
	for (int i = 0; i < HIST_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, hist_worker, h), 0);
	for (int i = 0; i < HIST_THREADS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	util_hist_read(h, &s);
	for (int i = 0; i < HIST_PER_THREAD; i++)
		want_sum += (uint64_t)(i % 7) * 1000000;
	ck_assert_uint_eq(s.count, (uint64_t)HIST_THREADS * HIST_PER_THREAD);
	ck_assert_uint_eq(s.sum_ns, want_sum * HIST_THREADS);
	for (int b = 0; b <= UTIL_HIST_BOUNDS; b++)
		n += s.bucket[b];
	ck_assert_uint_eq(n, s.count);
	free(h);
}
END_TEST

static Suite *util_hist_suite(void)
{
	Suite *s = suite_create("util_hist");
	TCase *tc = tcase_create("util_hist");
	tcase_add_test(tc, test_util_hist__buckets_are_inclusive_bounds);
	tcase_add_test(tc, test_util_hist__bounds_increase_log_spaced);
	tcase_add_test(tc, test_util_hist__threads_add_up);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(util_hist_suite)
