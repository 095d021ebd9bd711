/*
 * check_obj_url.c - store URL parsing: every accepted form, and a clear
 * message for every malformed one.
 */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "objstore/objstore.h"

START_TEST(test_obj_url__accepted_forms)
{
	struct obj_url u;
	ck_assert_int_eq(obj_url_parse(&u, "file:///var/lib/shalefs///"), 0);
	ck_assert_int_eq(u.scheme, OBJ_SCHEME_FILE);
	ck_assert_str_eq(u.path, "/var/lib/shalefs");
	obj_url_free(&u);
	ck_assert_int_eq(obj_url_parse(&u, "file:///"), 0);
	ck_assert_str_eq(u.path, "/");
	obj_url_free(&u);
	ck_assert_int_eq(obj_url_parse(&u, "mem://"), 0);
	ck_assert_str_eq(u.path, "default");
	obj_url_free(&u);
	ck_assert_int_eq(obj_url_parse(&u, "s3://my-bucket.data"), 0);
	ck_assert_int_eq(u.scheme, OBJ_SCHEME_S3);
	ck_assert_str_eq(u.bucket, "my-bucket.data");
	ck_assert_str_eq(u.prefix, "");
	obj_url_free(&u);
	ck_assert_int_eq(obj_url_parse(&u, "s3://bkt/a/b/"), 0);
	ck_assert_str_eq(u.bucket, "bkt");
	ck_assert_str_eq(u.prefix, "a/b/");
	obj_url_free(&u);
	ck_assert_int_eq(obj_url_parse(&u, "s3://bkt/x"), 0);
	ck_assert_str_eq(u.prefix, "x/");
	obj_url_free(&u);
}
END_TEST

START_TEST(test_obj_url__malformed_rejected_with_reason)
{
	static const struct { const char *url, *needle; } bad[] = {
		{ "", "expected" },
		{ "/var/lib/x", "file:///abs/dir" },
		{ "file://rel/path", "absolute" },
		{ "http://host/x", "unknown scheme" },
		{ "s3://", "bucket name" },
		{ "s3://AB", "bucket name" },
		{ "s3://Upper-Case", "bucket name" },
		{ "s3://bkt//double", "empty path" },
		{ "s3://-bad-", "bucket name" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct obj_url u;
		ck_assert_int_eq(obj_url_parse(&u, bad[i].url), -EINVAL);
		ck_assert_msg(strstr(obj_last_error(), bad[i].needle) != NULL, "%s -> %s", bad[i].url,
			      obj_last_error());
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("obj_url");
	TCase *tc = tcase_create("url");
	tcase_add_test(tc, test_obj_url__accepted_forms);
	tcase_add_test(tc, test_obj_url__malformed_rejected_with_reason);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
