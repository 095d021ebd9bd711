/*
 * check_util.c - CRC32C against published vectors, PRNG reproducibility,
 * checked arithmetic, the log's levels, line format, file sink and reopen.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"
#include "tests/check_main.h"

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

START_TEST(test_util__log_level_parse)
{
	enum util_log_level l;
	ck_assert_int_eq(util_log_level_parse("debug", &l), 0);
	ck_assert_int_eq(l, UTIL_LOG_DEBUG);
	ck_assert_int_eq(util_log_level_parse("error", &l), 0);
	ck_assert_int_eq(l, UTIL_LOG_ERROR);
	ck_assert_int_eq(util_log_level_parse("loud", &l), -EINVAL);
	ck_assert_int_eq(util_log_level_parse("", &l), -EINVAL);
	ck_assert_int_eq(util_log_level_parse(NULL, &l), -EINVAL);
}
END_TEST

/* The whole of a small file as a string (static buffer). */
static const char *slurp(const char *path)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	size_t n = 0;
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

/* Lines go to the file, with an ISO 8601 UTC timestamp, the level, the
 * module and the tag; a reopen after a rename writes to a new file. */
START_TEST(test_util__log_file_format_and_reopen)
{
	char dir[] = "/tmp/check_util_log.XXXXXX", path[256], moved[256];
	const char *t;
	struct stat st;
	int y, mo, d, h, mi, sec, ms, pid;
	char lvl[16], mod[32], tag[64];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/x.log", dir);
	snprintf(moved, sizeof(moved), "%s/x.log.1", dir);
	ck_assert_int_eq(util_log_open_file("relative.log"), -EINVAL);
	ck_assert_int_eq(util_log_reopen(), 1);        /* no file yet */
	ck_assert_int_eq(util_log_open_file(path), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0027, 0);       /* created 0640 at most */
	util_log_set_level(UTIL_LOG_INFO);
	util_log_set_tag("file:///srv/x");
	UTIL_WARN("kv", "first %d", 1);
	UTIL_DEBUG("kv", "not logged");
	t = slurp(path);
	ck_assert_int_eq(sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ shalefs[%d] %63s %15s %31s",
				&y, &mo, &d, &h, &mi, &sec, &ms, &pid, tag, lvl, mod), 11);
	ck_assert_int_eq(pid, (int)getpid());
	ck_assert_str_eq(tag, "file:///srv/x");
	ck_assert_str_eq(lvl, "warn");
	ck_assert_str_eq(mod, "kv:");
	ck_assert_ptr_nonnull(strstr(t, " kv: first 1\n"));
	ck_assert_ptr_null(strstr(t, "not logged"));

	ck_assert_int_eq(rename(path, moved), 0);
	UTIL_ERROR("fs", "to the renamed file");
	ck_assert_int_eq(util_log_reopen(), 0);
	UTIL_ERROR("fs", "to the new file");
	ck_assert_ptr_nonnull(strstr(slurp(moved), "to the renamed file"));
	ck_assert_ptr_null(strstr(slurp(moved), "to the new file"));
	t = slurp(path);
	ck_assert_ptr_nonnull(strstr(t, "info log: reopened the log file"));
	ck_assert_ptr_nonnull(strstr(t, "file:///srv/x error fs: to the new file\n"));

	unlink(path);
	unlink(moved);
	rmdir(dir);
}
END_TEST

/* util_log_last_problem keeps the last error or warning, whatever the
 * level lets through, and not info lines. */
START_TEST(test_util__log_last_problem)
{
	enum util_log_level l = UTIL_LOG_DEBUG;
	char buf[128];
	uint64_t t0 = util_wall_ns(), t;

	util_log_set_level(UTIL_LOG_ERROR);
	util_log(UTIL_LOG_WARN, "mod", "first %d", 1);
	util_log(UTIL_LOG_INFO, "mod", "not a problem");
	t = util_log_last_problem(&l, buf, sizeof(buf));
	ck_assert_uint_ge(t, t0);
	ck_assert_int_eq(l, UTIL_LOG_WARN);
	ck_assert_str_eq(buf, "mod: first 1");
	util_log(UTIL_LOG_ERROR, "other", "second\n");
	t = util_log_last_problem(&l, buf, sizeof(buf));
	ck_assert_int_eq(l, UTIL_LOG_ERROR);
	ck_assert_str_eq(buf, "other: second");
	util_log_set_level(UTIL_LOG_WARN);
}
END_TEST

static Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("util");
	tcase_add_test(tc, test_util__crc32c_vectors);
	tcase_add_test(tc, test_util__rand_reproducible);
	tcase_add_test(tc, test_util__checked_arithmetic);
	tcase_add_test(tc, test_util__log_level_parse);
	tcase_add_test(tc, test_util__log_file_format_and_reopen);
	tcase_add_test(tc, test_util__log_last_problem);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(util_suite)
