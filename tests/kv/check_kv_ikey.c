/*
 * check_kv_ikey.c - tests for kv/kv_ikey.c: key order, varints, kv_buf.
 */
#include "kv/kv_int.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check_main.h"

static int sgn(int x)
{
	return (x > 0) - (x < 0);
}

START_TEST(test_kv_ikey__ukey_order)
{
	ck_assert_int_eq(kv_ukey_cmp("", 0, "", 0), 0);
	ck_assert_int_lt(kv_ukey_cmp("", 0, "a", 1), 0);
	ck_assert_int_lt(kv_ukey_cmp("a", 1, "ab", 2), 0);     /* shorter first */
	ck_assert_int_gt(kv_ukey_cmp("b", 1, "ab", 2), 0);
	ck_assert_int_lt(kv_ukey_cmp("a\0", 2, "a\xff", 2), 0); /* unsigned bytes */
	ck_assert_int_lt(kv_ukey_cmp("\x7f", 1, "\x80", 1), 0);
	ck_assert_int_eq(kv_ukey_cmp("abc", 3, "abc", 3), 0);
}
END_TEST

START_TEST(test_kv_ikey__ikey_order)
{
	uint8_t a[16], b[16];

	kv_ikey_make(a, "k", 1, 10, KV_TYPE_VALUE);
	kv_ikey_make(b, "k", 1, 9, KV_TYPE_VALUE);
	ck_assert_int_lt(kv_ikey_cmp(a, 9, b, 9), 0);           /* newer first */
	ck_assert_int_gt(kv_ikey_cmp(b, 9, a, 9), 0);
	ck_assert_int_eq(kv_ikey_cmp(a, 9, a, 9), 0);
	kv_ikey_make(b, "k", 1, 10, KV_TYPE_DELETE);
	ck_assert_int_lt(kv_ikey_cmp(a, 9, b, 9), 0);           /* same seq: value first */
	/* User key dominates seq. */
	kv_ikey_make(a, "k", 1, 1, KV_TYPE_VALUE);
	kv_ikey_make(b, "kk", 2, KV_SEQ_MAX, KV_TYPE_VALUE);
	ck_assert_int_lt(kv_ikey_cmp(a, 9, b, 10), 0);
	/* Accessors. */
	kv_ikey_make(a, "xy", 2, KV_SEQ_MAX, KV_TYPE_DELETE);
	ck_assert_uint_eq(kv_ikey_seq(a, 10), KV_SEQ_MAX);
	ck_assert_int_eq(kv_ikey_type(a, 10), KV_TYPE_DELETE);
	ck_assert_uint_eq(kv_ikey_pack(3, KV_TYPE_VALUE), 0x301);
}
END_TEST

/* kv_ikey_cmp agrees with (ukey asc, seq desc, type desc) on random keys. */
START_TEST(test_kv_ikey__ikey_order_random)
{
	struct util_rand r;
	util_rand_seed(&r, 11);
	for (int i = 0; i < 100000; i++) {
		uint8_t ka[4], kb[4], a[12], b[12];
		size_t la = util_rand_below(&r, 4), lb = util_rand_below(&r, 4);
		for (size_t j = 0; j < 4; j++) {
			ka[j] = (uint8_t)util_rand_below(&r, 3);
			kb[j] = (uint8_t)util_rand_below(&r, 3);
		}
		uint64_t sa = util_rand_below(&r, 4), sb = util_rand_below(&r, 4);
		enum kv_type ta = (enum kv_type)util_rand_below(&r, 2);
		enum kv_type tb = (enum kv_type)util_rand_below(&r, 2);
		kv_ikey_make(a, ka, la, sa, ta);
		kv_ikey_make(b, kb, lb, sb, tb);
		int want = sgn(kv_ukey_cmp(ka, la, kb, lb));
		if (!want)
			want = sa != sb ? (sa > sb ? -1 : 1) : (ta != tb ? (ta > tb ? -1 : 1) : 0);
		ck_assert_int_eq(sgn(kv_ikey_cmp(a, la + 8, b, lb + 8)), want);
		ck_assert_int_eq(sgn(kv_ikey_cmp(b, lb + 8, a, la + 8)), -want);
	}
}
END_TEST

START_TEST(test_kv_ikey__varint_round_trip)
{
	static const uint64_t vals[] = { 0, 1, 127, 128, 255, 16383, 16384, UINT32_MAX,
					 (uint64_t)1 << 56, UINT64_MAX - 1, UINT64_MAX };
	uint8_t buf[10];
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		uint64_t v = 0;
		size_t n = kv_varint_put(buf, vals[i]);
		ck_assert_uint_ge(n, 1);
		ck_assert_uint_le(n, 10);
		ck_assert_uint_eq(kv_varint_get(buf, buf + n, &v), n);
		ck_assert_uint_eq(v, vals[i]);
		/* Every truncation fails. */
		for (size_t t = 0; t < n; t++)
			ck_assert_uint_eq(kv_varint_get(buf, buf + t, &v), 0);
	}
	ck_assert_uint_eq(kv_varint_put(buf, UINT64_MAX), 10);
}
END_TEST

START_TEST(test_kv_ikey__varint_overlong)
{
	uint8_t buf[12];
	uint64_t v;
	memset(buf, 0x80, sizeof(buf));
	ck_assert_uint_eq(kv_varint_get(buf, buf + sizeof(buf), &v), 0);    /* > 10 bytes */
	/* 10th byte > 1 overflows 64 bits. */
	memset(buf, 0xff, 9);
	buf[9] = 0x02;
	ck_assert_uint_eq(kv_varint_get(buf, buf + 10, &v), 0);
	buf[9] = 0x01;
	ck_assert_uint_eq(kv_varint_get(buf, buf + 10, &v), 10);
	ck_assert_uint_eq(v, UINT64_MAX);
}
END_TEST

START_TEST(test_kv_ikey__buf)
{
	struct kv_buf b = { 0 };
	ck_assert_int_eq(kv_buf_append(&b, "abc", 3), 0);
	ck_assert_int_eq(kv_buf_put_be32(&b, 0x01020304), 0);
	ck_assert_int_eq(kv_buf_put_be64(&b, 0x05060708090a0b0cull), 0);
	ck_assert_int_eq(kv_buf_put_varint(&b, 300), 0);
	ck_assert_int_eq(kv_buf_append(&b, NULL, 0), 0);
	static const uint8_t want[] = { 'a', 'b', 'c', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
					0xac, 0x02 };
	ck_assert_uint_eq(b.len, sizeof(want));
	ck_assert_mem_eq(b.data, want, sizeof(want));
	/* A size that cannot exist fails cleanly. */
	ck_assert_int_eq(kv_buf_reserve(&b, SIZE_MAX), -ENOMEM);
	ck_assert_uint_eq(b.len, sizeof(want));
	for (int i = 0; i < 10000; i++)
		ck_assert_int_eq(kv_buf_append(&b, "0123456789", 10), 0);
	ck_assert_uint_eq(b.len, sizeof(want) + 100000);
	ck_assert_mem_eq(b.data, want, sizeof(want));
	kv_buf_free(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(test_kv_ikey__strerror)
{
	ck_assert_ptr_nonnull(strstr(kv_strerror(KV_ECORRUPT), "corrupt"));
	ck_assert_ptr_nonnull(kv_strerror(KV_EFENCED));
	ck_assert_ptr_nonnull(kv_strerror(-ENOENT));
	ck_assert_str_eq(kv_strerror(0), "success");
}
END_TEST

/* A buffer that starts in its owner's fixed storage (kv_sst_read.c's
 * block iterators) copies out when it grows and never frees that storage. */
START_TEST(test_kv_ikey__buf_borrowed_storage)
{
	uint8_t fixed[4];
	struct kv_buf b = { .data = fixed, .cap = sizeof(fixed), .borrowed = 1 };

	ck_assert_int_eq(kv_buf_append(&b, "abc", 3), 0);
	ck_assert_ptr_eq(b.data, fixed);
	ck_assert_int_eq(kv_buf_append(&b, "defghijk", 8), 0);
	ck_assert_ptr_ne(b.data, fixed);
	ck_assert_int_eq(b.borrowed, 0);
	ck_assert_uint_eq(b.len, 11);
	ck_assert_mem_eq(b.data, "abcdefghijk", 11);
	kv_buf_free(&b);                /* frees the heap copy (ASan checks) */
	b = (struct kv_buf){ .data = fixed, .cap = sizeof(fixed), .borrowed = 1 };
	kv_buf_free(&b);                /* must not free() the stack array */
	ck_assert_ptr_null(b.data);
}
END_TEST

static Suite *kv_ikey_suite(void)
{
	Suite *s = suite_create("kv_ikey");
	TCase *tc;

	tc = tcase_create("order");
	tcase_add_test(tc, test_kv_ikey__ukey_order);
	tcase_add_test(tc, test_kv_ikey__ikey_order);
	tcase_add_test(tc, test_kv_ikey__ikey_order_random);
	suite_add_tcase(s, tc);

	tc = tcase_create("varint");
	tcase_add_test(tc, test_kv_ikey__varint_round_trip);
	tcase_add_test(tc, test_kv_ikey__varint_overlong);
	suite_add_tcase(s, tc);

	tc = tcase_create("buf");
	tcase_add_test(tc, test_kv_ikey__buf);
	tcase_add_test(tc, test_kv_ikey__buf_borrowed_storage);
	tcase_add_test(tc, test_kv_ikey__strerror);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(kv_ikey_suite)
