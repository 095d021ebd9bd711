/*
 * check_kv_batch.c - tests for kv/kv_batch.c (public write batches) and
 * kv_batch_each (the entry walker in kv_wal.c that replays them).
 */
#include "kv/kv_int.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/check_common.h"
#include "tests/check_main.h"

struct seen {
	int n;
	enum kv_type type[16];
	char key[16][8];
	size_t klen[16];
	char val[16][8];
	size_t vlen[16];
	int fail_at;
};

static int seen_fn(void *arg, enum kv_type type, const uint8_t *key, size_t klen,
		   const uint8_t *val, size_t vlen)
{
	struct seen *s = arg;
	if (s->n == s->fail_at)
		return -ECANCELED;
	ck_assert_int_lt(s->n, 16);
	ck_assert_uint_le(klen, 8);
	ck_assert_uint_le(vlen, 8);
	s->type[s->n] = type;
	memcpy(s->key[s->n], key, klen);
	s->klen[s->n] = klen;
	if (vlen)
		memcpy(s->val[s->n], val, vlen);
	s->vlen[s->n] = vlen;
	s->n++;
	return 0;
}

START_TEST(test_kv_batch__put_delete_encoding)
{
	struct kv_batch *b;
	struct seen s = { .fail_at = -1 };

	ck_assert_int_eq(kv_batch_create(&b), 0);
	ck_assert_uint_eq(kv_batch_count(b), 0);
	ck_assert_int_eq(kv_batch_put(b, "ab", 2, "xyz", 3), 0);
	ck_assert_int_eq(kv_batch_delete(b, "c", 1), 0);
	ck_assert_int_eq(kv_batch_put(b, "d", 1, NULL, 0), 0);
	ck_assert_uint_eq(kv_batch_count(b), 3);

	/* Exactly the documented encoding. */
	static const uint8_t want[] = { KV_TYPE_VALUE, 2, 'a', 'b', 3, 'x', 'y', 'z',
					KV_TYPE_DELETE, 1, 'c',
					KV_TYPE_VALUE, 1, 'd', 0 };
	ck_assert_uint_eq(b->rep.len, sizeof(want));
	ck_assert_mem_eq(b->rep.data, want, sizeof(want));

	ck_assert_int_eq(kv_batch_each(b->rep.data, b->rep.len, b->count, seen_fn, &s), 0);
	ck_assert_int_eq(s.n, 3);
	ck_assert_int_eq(s.type[0], KV_TYPE_VALUE);
	ck_assert_mem_eq(s.key[0], "ab", 2);
	ck_assert_mem_eq(s.val[0], "xyz", 3);
	ck_assert_int_eq(s.type[1], KV_TYPE_DELETE);
	ck_assert_uint_eq(s.vlen[1], 0);
	ck_assert_uint_eq(s.vlen[2], 0);

	kv_batch_clear(b);
	ck_assert_uint_eq(kv_batch_count(b), 0);
	ck_assert_uint_eq(b->rep.len, 0);
	ck_assert_int_eq(kv_batch_put(b, "e", 1, "1", 1), 0);
	ck_assert_uint_eq(kv_batch_count(b), 1);
	kv_batch_free(b);
	kv_batch_free(NULL);
}
END_TEST

START_TEST(test_kv_batch__limits)
{
	struct kv_batch *b;
	static char big[KV_KEY_MAX + 1];

	ck_assert_int_eq(kv_batch_create(&b), 0);
	ck_assert_int_eq(kv_batch_put(b, "", 0, "v", 1), -EINVAL);
	ck_assert_int_eq(kv_batch_delete(b, "", 0), -EINVAL);
	ck_assert_int_eq(kv_batch_put(b, big, KV_KEY_MAX + 1, "v", 1), -EINVAL);
	/* The value is rejected on its length before it is read. */
	ck_assert_int_eq(kv_batch_put(b, "k", 1, big, KV_VALUE_MAX + 1), -EINVAL);
	ck_assert_uint_eq(kv_batch_count(b), 0);
	ck_assert_uint_eq(b->rep.len, 0);
	/* The largest key is fine and round-trips. */
	memset(big, 'k', sizeof(big));
	ck_assert_int_eq(kv_batch_put(b, big, KV_KEY_MAX, "v", 1), 0);
	ck_assert_int_eq(kv_batch_each(b->rep.data, b->rep.len, b->count, NULL, NULL), 0);
	kv_batch_free(b);
}
END_TEST

/* The walker rejects every truncation and every wrong count, and calls
 * nothing before the whole batch is verified. */
START_TEST(test_kv_batch__each_bounds)
{
	struct kv_batch *b;
	struct util_rand r;

	util_rand_seed(&r, 3);
	ck_assert_int_eq(kv_batch_create(&b), 0);
	for (int i = 0; i < 10; i++) {
		char k[6], v[8];
		size_t kl = 1 + util_rand_below(&r, sizeof(k)), vl = util_rand_below(&r, 9);
		memset(k, 'a' + i, kl);
		memset(v, 'A' + i, vl);
		if (i % 3 == 1)
			ck_assert_int_eq(kv_batch_delete(b, k, kl), 0);
		else
			ck_assert_int_eq(kv_batch_put(b, k, kl, v, vl), 0);
	}
	int saved = check_stderr_quiet();
	for (size_t len = 0; len < b->rep.len; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, b->rep.data, len);
		struct seen s = { .fail_at = -1 };
		uint64_t before = util_log_count(UTIL_LOG_ERROR);
		ck_assert_int_eq(kv_batch_each(copy, len, b->count, seen_fn, &s), KV_ECORRUPT);
		ck_assert_uint_eq(util_log_count(UTIL_LOG_ERROR), before + 1);
		ck_assert_int_eq(s.n, 0);
		free(copy);
	}
	struct seen s = { .fail_at = -1 };
	ck_assert_int_eq(kv_batch_each(b->rep.data, b->rep.len, b->count - 1, seen_fn, &s),
			 KV_ECORRUPT);
	ck_assert_int_eq(kv_batch_each(b->rep.data, b->rep.len, b->count + 1, seen_fn, &s),
			 KV_ECORRUPT);
	ck_assert_int_eq(kv_batch_each(b->rep.data, b->rep.len, UINT32_MAX, seen_fn, &s),
			 KV_ECORRUPT);
	ck_assert_int_eq(s.n, 0);

	/* Bad type, empty key, overlong varints, lengths past the end. */
	static const uint8_t bad_type[] = { 7, 1, 'k' };
	static const uint8_t empty_key[] = { KV_TYPE_DELETE, 0 };
	static const uint8_t long_klen[] = { KV_TYPE_DELETE, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					     0xff, 0xff, 0xff, 0x7f };
	static const uint8_t klen_past[] = { KV_TYPE_DELETE, 5, 'k' };
	static const uint8_t vlen_past[] = { KV_TYPE_VALUE, 1, 'k', 0x81, 0x01, 'v' };
	static const uint8_t vlen_huge[] = { KV_TYPE_VALUE, 1, 'k', 0x80, 0x80, 0x80, 0x40 };
	static const uint8_t no_vlen[] = { KV_TYPE_VALUE, 1, 'k' };
	ck_assert_int_eq(kv_batch_each(bad_type, sizeof(bad_type), 1, NULL, NULL), KV_ECORRUPT);
	ck_assert_int_eq(kv_batch_each(empty_key, sizeof(empty_key), 1, NULL, NULL), KV_ECORRUPT);
	ck_assert_int_eq(kv_batch_each(long_klen, sizeof(long_klen), 1, NULL, NULL), KV_ECORRUPT);
	ck_assert_int_eq(kv_batch_each(klen_past, sizeof(klen_past), 1, NULL, NULL), KV_ECORRUPT);
	ck_assert_int_eq(kv_batch_each(vlen_past, sizeof(vlen_past), 1, NULL, NULL), KV_ECORRUPT);
	ck_assert_int_eq(kv_batch_each(vlen_huge, sizeof(vlen_huge), 1, NULL, NULL), KV_ECORRUPT);
	ck_assert_int_eq(kv_batch_each(no_vlen, sizeof(no_vlen), 1, NULL, NULL), KV_ECORRUPT);
	ck_assert_int_eq(kv_batch_each(NULL, 0, 0, NULL, NULL), 0);    /* empty is fine */
	check_stderr_restore(saved);
	kv_batch_free(b);
}
END_TEST

/* The callback's error stops the walk and is returned. */
START_TEST(test_kv_batch__each_callback_error)
{
	struct kv_batch *b;
	struct seen s = { .fail_at = 1 };

	ck_assert_int_eq(kv_batch_create(&b), 0);
	ck_assert_int_eq(kv_batch_put(b, "a", 1, "1", 1), 0);
	ck_assert_int_eq(kv_batch_put(b, "b", 1, "2", 1), 0);
	ck_assert_int_eq(kv_batch_put(b, "c", 1, "3", 1), 0);
	ck_assert_int_eq(kv_batch_each(b->rep.data, b->rep.len, b->count, seen_fn, &s),
			 -ECANCELED);
	ck_assert_int_eq(s.n, 1);
	kv_batch_free(b);
}
END_TEST

static Suite *kv_batch_suite(void)
{
	Suite *s = suite_create("kv_batch");
	TCase *tc;

	tc = tcase_create("api");
	tcase_add_test(tc, test_kv_batch__put_delete_encoding);
	tcase_add_test(tc, test_kv_batch__limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("each");
	tcase_add_test(tc, test_kv_batch__each_bounds);
	tcase_add_test(tc, test_kv_batch__each_callback_error);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(kv_batch_suite)
