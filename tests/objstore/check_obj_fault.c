/*
 * check_obj_fault.c - the fault wrapper: spec parsing (every bad spec is a
 * clear -EINVAL), reproducibility from a seed, and the "succeeded but
 * reported failure" mode; crash points (crash_after/crash_mode, the
 * SHALEFS_CRASH_AFTER_OPS and SHALEFS_CRASH_COUNT_FILE variables): each
 * crash test runs in its own forked process (CK_FORK), so the
 * process-wide counter starts at 0, and must end with _exit(99).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "objstore/objstore.h"
#include "tests/check_common.h"
#include "tests/check_main.h"

START_TEST(test_obj_fault__bad_specs_rejected)
{
	static const struct { const char *spec, *needle; } bad[] = {
		{ "error=2", "probability" },        { "error=abc", "probability" },
		{ "cancel=-0.1", "probability" },    { "bogus=1", "unknown key" },
		{ "error", "key=value" },            { "latency_ms=5-1", "latency_ms" },
		{ "latency_ms=x", "latency_ms" },    { "ops=get+frob", "frob" },
		{ "seed=zz", "seed" },               { "error=0.6,cancel=0.6", "more than 1" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct obj_backend *base, *f = NULL;
		ck_assert_int_eq(obj_mem_create(&base, "faultspec"), 0);
		ck_assert_msg(obj_fault_create(&f, base, bad[i].spec) == -EINVAL, "%s", bad[i].spec);
		ck_assert_msg(strstr(obj_last_error(), bad[i].needle) != NULL, "%s -> %s", bad[i].spec,
			      obj_last_error());
		obj_close(base);
	}
	/* Through obj_open, the env-style spec gives the same clear error. */
	struct obj_backend *b;
	struct obj_config c = OBJ_CONFIG_INIT;
	c.faults = "error=1.5";
	ck_assert_int_eq(obj_open(&b, "mem://faultspec", &c), -EINVAL);
	c.faults = "seed=7,error=0.10,cancel=0.05,latency_ms=0-2,ops=get+put+list";
	ck_assert_int_eq(obj_open(&b, "mem://faultspec", &c), 0);
	obj_close(b);
}
END_TEST

/* The sequence of outcomes for a seed, as a bit string. */
static void outcomes(const char *spec, char *out, int n)
{
	struct obj_backend *f = check_fault_open("faultseq", spec);
	for (int i = 0; i < n; i++) {
		struct obj_stat st;
		int rc = obj_head(f, "nothing", &st);
		out[i] = rc == -ENOENT ? '.' : rc == -ECANCELED ? 'c' : 'e';
	}
	out[n] = '\0';
	check_mem_close(f, "faultseq");
}

START_TEST(test_obj_fault__seeded_and_reproducible)
{
	char a[501], b[501], c[501];
	outcomes("seed=99,error=0.2,cancel=0.1", a, 500);
	outcomes("seed=99,error=0.2,cancel=0.1", b, 500);
	outcomes("seed=100,error=0.2,cancel=0.1", c, 500);
	ck_assert_str_eq(a, b);
	ck_assert_str_ne(a, c);
	int e = 0, k = 0;
	for (int i = 0; i < 500; i++) {
		e += a[i] == 'e';
		k += a[i] == 'c';
	}
	/* 20% / 10% of 500, with generous binomial bounds. */
	ck_assert_int_gt(e, 60);
	ck_assert_int_lt(e, 140);
	ck_assert_int_gt(k, 25);
	ck_assert_int_lt(k, 80);
}
END_TEST

START_TEST(test_obj_fault__failure_after_success)
{
	struct obj_backend *base, *f;
	int reported_fail = 0, actually_written = 0;

	obj_mem_destroy("faultafter");
	ck_assert_int_eq(obj_mem_create(&base, "faultafter"), 0);
	ck_assert_int_eq(obj_mem_create(&f, "faultafter"), 0);
	obj_close(f);
	struct obj_backend *peek;
	ck_assert_int_eq(obj_mem_create(&peek, "faultafter"), 0);
	ck_assert_int_eq(obj_fault_create(&f, base, "seed=1,error=1,after=1,ops=put"), 0);
	for (int i = 0; i < 50; i++) {
		char name[32];
		struct obj_stat st;
		snprintf(name, sizeof(name), "o%d", i);
		if (obj_put_if_absent(f, name, "x", 1) != 0)
			reported_fail++;
		if (obj_head(peek, name, &st) == 0)
			actually_written++;
	}
	ck_assert_int_eq(reported_fail, 50);
	ck_assert_int_eq(actually_written, 50);
	/* ops=put leaves reads alone. */
	void *buf;
	size_t len;
	ck_assert_int_eq(obj_get(f, "o1", 0, OBJ_WHOLE, &buf, &len), 0);
	free(buf);
	obj_close(f);
	obj_close(peek);
	obj_mem_destroy("faultafter");
}
END_TEST

/* The 3rd operation, whatever it is, is the last. */
START_TEST(test_obj_fault__crash_after_nth_op)
{
	struct obj_backend *f = check_fault_open("crash1", "crash_after=3");
	struct obj_stat st;
	ck_assert_int_eq(obj_head(f, "x", &st), -ENOENT);
	ck_assert_int_eq(obj_put(f, "x", "a", 1), 0);
	(void)obj_head(f, "x", &st);
	ck_abort_msg("survived the crash point");
}
END_TEST

/* put-succeeded counts only puts the store accepted: not heads, not a
 * refused put_if_absent. */
START_TEST(test_obj_fault__crash_after_put_succeeded)
{
	struct obj_backend *f = check_fault_open("crash2", "crash_after=2,crash_mode=put-succeeded");
	struct obj_stat st;
	ck_assert_int_eq(obj_put(f, "x", "a", 1), 0);
	ck_assert_int_eq(obj_head(f, "x", &st), 0);
	ck_assert_int_eq(obj_put_if_absent(f, "x", "b", 1), -EEXIST);
	ck_assert_int_eq(obj_head(f, "x", &st), 0);
	(void)obj_put(f, "y", "c", 1);
	ck_abort_msg("survived the crash point");
}
END_TEST

/* SHALEFS_CRASH_AFTER_OPS through obj_open: a bad value is -EINVAL with a
 * message; N,before dies at operation N without performing it. */
START_TEST(test_obj_fault__crash_env)
{
	struct obj_backend *b;
	struct obj_stat st;
	setenv("SHALEFS_CRASH_AFTER_OPS", "12,sideways", 1);
	ck_assert_int_eq(obj_open(&b, "mem://crash3", NULL), -EINVAL);
	setenv("SHALEFS_CRASH_AFTER_OPS", "x", 1);
	ck_assert_int_eq(obj_open(&b, "mem://crash3", NULL), -EINVAL);
	ck_assert_msg(strstr(obj_last_error(), "SHALEFS_CRASH_AFTER_OPS") != NULL, "%s", obj_last_error());
	setenv("SHALEFS_CRASH_AFTER_OPS", "2,before", 1);
	ck_assert_int_eq(obj_open(&b, "mem://crash3", NULL), 0);
	ck_assert_int_eq(obj_head(b, "x", &st), -ENOENT);
	(void)obj_put(b, "x", "a", 1);
	ck_abort_msg("survived the crash point");
}
END_TEST

/* SHALEFS_CRASH_COUNT_FILE alone installs the layer and gets the counts at
 * close. */
START_TEST(test_obj_fault__crash_count_file)
{
	char path[] = "/tmp/check_obj_fault.XXXXXX", line[128] = "";
	struct obj_backend *b;
	struct obj_stat st;
	int fd = mkstemp(path);
	FILE *fp;
	ck_assert_int_ge(fd, 0);
	close(fd);
	unsetenv("SHALEFS_CRASH_AFTER_OPS");
	setenv("SHALEFS_CRASH_COUNT_FILE", path, 1);
	ck_assert_int_eq(obj_open(&b, "mem://crash4", NULL), 0);
	ck_assert_int_eq(obj_put(b, "x", "a", 1), 0);
	ck_assert_int_eq(obj_head(b, "x", &st), 0);
	ck_assert_int_eq(obj_put_if_absent(b, "x", "b", 1), -EEXIST);
	obj_close(b);
	fp = fopen(path, "r");
	ck_assert_ptr_nonnull(fp);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), fp));
	fclose(fp);
	unlink(path);
	ck_assert_str_eq(line, "ops 3 puts_ok 1\n");
}
END_TEST

static Suite *obj_fault_suite(void)
{
	Suite *s = suite_create("obj_fault");
	TCase *tc = tcase_create("fault");
	tcase_add_test(tc, test_obj_fault__bad_specs_rejected);
	tcase_add_test(tc, test_obj_fault__seeded_and_reproducible);
	tcase_add_test(tc, test_obj_fault__failure_after_success);
	tcase_add_exit_test(tc, test_obj_fault__crash_after_nth_op, 99);
	tcase_add_exit_test(tc, test_obj_fault__crash_after_put_succeeded, 99);
	tcase_add_exit_test(tc, test_obj_fault__crash_env, 99);
	tcase_add_test(tc, test_obj_fault__crash_count_file);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(obj_fault_suite)
