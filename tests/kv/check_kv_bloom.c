/*
 * check_kv_bloom.c - tests of kv/kv_bloom.c: false positive rate, no
 * false negatives, malformed filters, hash stability (the hash is part of
 * the SST format).
 */
#include "kv/kv_int.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/check_main.h"

static void make_key(char *buf, size_t size, const char *pfx, uint64_t i)
{
	snprintf(buf, size, "%s/%016llx", pfx, (unsigned long long)i);
}

START_TEST(test_kv_bloom__fp_rate_10_bits)
{
	const size_t n = 100000;
	uint32_t *h = malloc(n * sizeof(*h));
	struct kv_buf f = { 0 };
	char key[64];
	size_t fp = 0;

	ck_assert_ptr_nonnull(h);
	for (size_t i = 0; i < n; i++) {
		make_key(key, sizeof(key), "in", i);
		h[i] = kv_bloom_hash(key, strlen(key));
	}
	ck_assert_int_eq(kv_bloom_build(&f, h, n, 10), 0);
	ck_assert_uint_eq(f.len, (n * 10 / 8 + 63) / 64 * 64 + 1);   /* whole lines */
	ck_assert_uint_eq(f.data[f.len - 1], 0x40 | 6);  /* blocked, k = 10 * 0.69 */
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(kv_bloom_may_contain(f.data, f.len, h[i]), 1);
	for (size_t i = 0; i < n; i++) {
		make_key(key, sizeof(key), "out", i);
		fp += (size_t)kv_bloom_may_contain(f.data, f.len, kv_bloom_hash(key, strlen(key)));
	}
	double rate = (double)fp / (double)n;
	/* Theory: (1 - e^(-6/10))^6 = 0.84% unblocked; ~1% in 512-bit lines. */
	ck_assert_msg(rate < 0.02, "false positive rate %.4f", rate);
	ck_assert_msg(rate > 0.002, "suspiciously low false positive rate %.4f", rate);
	kv_buf_free(&f);
	free(h);
}
END_TEST

START_TEST(test_kv_bloom__small_and_empty_filters)
{
	struct kv_buf f = { 0 };
	uint32_t h = kv_bloom_hash("x", 1);

	ck_assert_int_eq(kv_bloom_build(&f, NULL, 0, 10), 0);
	ck_assert_uint_eq(f.len, 64 + 1);                      /* one line minimum */
	ck_assert_int_eq(kv_bloom_may_contain(f.data, f.len, h), 0);
	f.len = 0;
	ck_assert_int_eq(kv_bloom_build(&f, &h, 1, 1), 0);
	ck_assert_uint_eq(f.data[f.len - 1], 0x40 | 1);        /* k clamped to >= 1 */
	ck_assert_int_eq(kv_bloom_may_contain(f.data, f.len, h), 1);
	f.len = 0;
	ck_assert_int_eq(kv_bloom_build(&f, &h, 1, 100), 0);
	ck_assert_uint_eq(f.data[f.len - 1], 0x40 | 30);       /* k clamped to <= 30 */
	ck_assert_int_eq(kv_bloom_may_contain(f.data, f.len, h), 1);
	ck_assert_int_eq(kv_bloom_build(&f, &h, 1, 0), -EINVAL);
	ck_assert_int_eq(kv_bloom_build(&f, &h, 1, -3), -EINVAL);
	kv_buf_free(&f);
}
END_TEST

START_TEST(test_kv_bloom__malformed_filter_may_contain)
{
	uint8_t zeros[16] = { 0 };
	uint32_t h = kv_bloom_hash("key", 3);

	ck_assert_int_eq(kv_bloom_may_contain(NULL, 0, h), 1);
	ck_assert_int_eq(kv_bloom_may_contain(zeros, 0, h), 1);
	ck_assert_int_eq(kv_bloom_may_contain(zeros, 1, h), 1);
	zeros[15] = 0;                                         /* k = 0 */
	ck_assert_int_eq(kv_bloom_may_contain(zeros, 16, h), 1);
	zeros[15] = 31;                                        /* k > 30 */
	ck_assert_int_eq(kv_bloom_may_contain(zeros, 16, h), 1);
	zeros[15] = 255;
	ck_assert_int_eq(kv_bloom_may_contain(zeros, 16, h), 1);
	zeros[15] = 3;                                         /* well-formed, all bits clear */
	ck_assert_int_eq(kv_bloom_may_contain(zeros, 16, h), 0);
	zeros[0] = 0xff;                                       /* tiny bit array: 1 byte */
	zeros[1] = 1;
	ck_assert_int_ge(kv_bloom_may_contain(zeros, 2, h), 0);
	/* Blocked kind: the array must be whole 64-byte lines. */
	uint8_t line[65] = { 0 };
	line[64] = 0x40 | 6;
	ck_assert_int_eq(kv_bloom_may_contain(line, 65, h), 0);
	ck_assert_int_eq(kv_bloom_may_contain(line + 1, 64, h), 1);   /* 63 bytes */
	line[64] = 0x40 | 31;
	ck_assert_int_eq(kv_bloom_may_contain(line, 65, h), 1);
	line[64] = 0x40;                                       /* k = 0 */
	ck_assert_int_eq(kv_bloom_may_contain(line, 65, h), 1);
}
END_TEST

START_TEST(test_kv_bloom__hash_is_stable)
{
	/* These values are persisted in every SST's filter: they must never
	 * change (MurmurHash3 x86_32, seed 0xbc9f1d34, little-endian reads). */
	ck_assert_uint_eq(kv_bloom_hash("", 0), 0x3f177186u);
	ck_assert_uint_eq(kv_bloom_hash("a", 1), 0x6dba6b55u);
	ck_assert_uint_eq(kv_bloom_hash("abcd", 4), 0x3bf97d00u);
	ck_assert_uint_eq(kv_bloom_hash("hello, world", 12), 0xe8b6e2c7u);
	/* Every tail length differs. */
	ck_assert_uint_ne(kv_bloom_hash("abcde", 5), kv_bloom_hash("abcdf", 5));
	ck_assert_uint_ne(kv_bloom_hash("abcdef", 6), kv_bloom_hash("abcdeg", 6));
	ck_assert_uint_ne(kv_bloom_hash("abcdefg", 7), kv_bloom_hash("abcdefh", 7));
}
END_TEST

/*
 * SSTs written before the blocked kind carry classic filters; they must
 * keep answering right. The classic layout is rebuilt here independently
 * of kv_bloom.c, from the format text.
 */
START_TEST(test_kv_bloom__classic_filters_still_read)
{
	const size_t n = 20000, bytes = n * 10 / 8;
	uint8_t *f = calloc(bytes + 1, 1);
	char key[64];
	size_t fp = 0;

	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < n; i++) {
		make_key(key, sizeof(key), "in", i);
		uint32_t h = kv_bloom_hash(key, strlen(key));
		uint32_t delta = (h >> 17) | (h << 15);
		for (int j = 0; j < 6; j++, h += delta)
			f[(h % (bytes * 8)) / 8] |= (uint8_t)(1u << ((h % (bytes * 8)) % 8));
	}
	f[bytes] = 6;
	for (size_t i = 0; i < n; i++) {
		make_key(key, sizeof(key), "in", i);
		ck_assert_int_eq(kv_bloom_may_contain(f, bytes + 1, kv_bloom_hash(key, strlen(key))), 1);
		make_key(key, sizeof(key), "out", i);
		fp += (size_t)kv_bloom_may_contain(f, bytes + 1, kv_bloom_hash(key, strlen(key)));
	}
	ck_assert_msg(fp > n / 500 && fp < n / 50, "classic false positives %zu of %zu", fp, n);
	free(f);
}
END_TEST

/* The blocked layout is persisted: pin its bytes for a fixed key set. */
START_TEST(test_kv_bloom__blocked_layout_is_stable)
{
	struct kv_buf f = { 0 };
	uint32_t h[200];
	char key[64];

	for (size_t i = 0; i < 200; i++) {
		make_key(key, sizeof(key), "pin", i);
		h[i] = kv_bloom_hash(key, strlen(key));
	}
	ck_assert_int_eq(kv_bloom_build(&f, h, 200, 10), 0);
	ck_assert_uint_eq(f.len, 4 * 64 + 1);
	ck_assert_uint_eq(util_crc32c(0, f.data, f.len), 0xd9b670ffu);
	kv_buf_free(&f);
}
END_TEST

static Suite *kv_bloom_suite(void)
{
	Suite *s = suite_create("kv_bloom");
	TCase *tc;

	tc = tcase_create("fp_rate");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_kv_bloom__fp_rate_10_bits);
	suite_add_tcase(s, tc);

	tc = tcase_create("shapes");
	tcase_add_test(tc, test_kv_bloom__small_and_empty_filters);
	tcase_add_test(tc, test_kv_bloom__malformed_filter_may_contain);
	tcase_add_test(tc, test_kv_bloom__classic_filters_still_read);
	tcase_add_test(tc, test_kv_bloom__blocked_layout_is_stable);
	suite_add_tcase(s, tc);

	tc = tcase_create("hash");
	tcase_add_test(tc, test_kv_bloom__hash_is_stable);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(kv_bloom_suite)
