/*
 * check_util.c - CRC32C against published vectors, PRNG reproducibility,
 * checked arithmetic.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "util/util.h"

START_TEST(test_util__crc32c_vectors)
{
	uint8_t buf[32];
	/* RFC 3720 B.4 test vectors. */
	memset(buf, 0, 32);
	ck_assert_uint_eq(util_crc32c(0, buf, 32), 0x8a9136aa);
	memset(buf, 0xff, 32);
	ck_assert_uint_eq(util_crc32c(0, buf, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	ck_assert_uint_eq(util_crc32c(0, buf, 32), 0x46dd794e);
	ck_assert_uint_eq(util_crc32c(0, "123456789", 9), 0xe3069283);
	/* Incremental equals one-shot. */
	uint32_t c = util_crc32c(0, buf, 13);
	c = util_crc32c(c, buf + 13, 19);
	ck_assert_uint_eq(c, 0x46dd794e);
}
END_TEST

START_TEST(test_util__rand_reproducible)
{
	struct util_rand a, b;
	util_rand_seed(&a, 5);
	util_rand_seed(&b, 5);
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_eq(util_rand_next(&a), util_rand_next(&b));
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_lt(util_rand_below(&a, 7), 7);
}
END_TEST

START_TEST(test_util__checked_arithmetic)
{
	size_t r;
	ck_assert_int_eq(util_size_add(&r, SIZE_MAX, 1), -EOVERFLOW);
	ck_assert_int_eq(util_size_mul(&r, SIZE_MAX / 2, 3), -EOVERFLOW);
	ck_assert_int_eq(util_size_mul(&r, 1000, 1000), 0);
	ck_assert_uint_eq(r, 1000000);
	uint8_t p[8];
	util_put_be64(p, 0x0102030405060708ull);
	ck_assert_uint_eq(p[0], 1);
	ck_assert_uint_eq(util_get_be64(p), 0x0102030405060708ull);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("util");
	tcase_add_test(tc, test_util__crc32c_vectors);
	tcase_add_test(tc, test_util__rand_reproducible);
	tcase_add_test(tc, test_util__checked_arithmetic);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
