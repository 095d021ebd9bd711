/*
 * check_obj_url.c - store URL parsing: every accepted form, and a clear
 * message for every malformed one.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "objstore/objstore.h"
#include "tests/check_main.h"

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
	/* Dots inside a segment are names, not "." or "..". */
	ck_assert_int_eq(obj_url_parse(&u, "s3://bkt/a.b/..c/.d"), 0);
	ck_assert_str_eq(u.prefix, "a.b/..c/.d/");
	obj_url_free(&u);
	ck_assert_int_eq(obj_url_parse(&u, "file:///srv/.store/x..y"), 0);
	ck_assert_str_eq(u.path, "/srv/.store/x..y");
	obj_url_free(&u);
	ck_assert_int_eq(obj_url_parse(&u, "s3://my.bucket-1"), 0);
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
		/* Path segments: empty, "." and "..". */
		{ "s3://bkt/../x", "'..' path segments" },
		{ "s3://bkt/a/..", "'..' path segments" },
		{ "s3://bkt/./x", "'.' and '..'" },
		{ "s3://bkt//x", "empty path segment" },
		{ "s3://bkt//", "empty path segment" },
		{ "s3://bkt/a//b/", "empty path segment" },
		{ "file:///a/../b", "'..' path segments" },
		{ "file:///a/./b", "'.' and '..'" },
		{ "file:///a//b", "empty path segment" },
		{ "file:////a", "empty path segment" },
		{ "file:///..", "'..' path segments" },
		/* AWS's bucket rules. */
		{ "s3://a..b", "must not contain '..'" },
		{ "s3://192.168.5.4", "IP address" },
		{ "s3://xn--bucket", "prefix AWS reserves" },
		{ "s3://sthree-data", "prefix AWS reserves" },
		{ "s3://data-s3alias", "suffix AWS reserves" },
		{ "s3://data--ol-s3", "suffix AWS reserves" },
		{ "s3://Bad_Bucket", "-o path_style" },
		{ "s3://", "missing bucket name" },
		{ "s3:///x", "missing bucket name" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct obj_url u;
		ck_assert_int_eq(obj_url_parse(&u, bad[i].url), -EINVAL);
		ck_assert_msg(strstr(obj_last_error(), bad[i].needle) != NULL, "%s -> %s", bad[i].url,
			      obj_last_error());
	}
}
END_TEST

/* With path_style, or an endpoint that is not AWS's, the service decides:
 * capitals and underscores (RGW's relaxed names) are accepted. */
START_TEST(test_obj_url__relaxed_bucket_names_off_aws)
{
	struct obj_s3_config path = { .path_style = 1 };
	struct obj_s3_config rgw = { .endpoint = "http://rgw.example:7480", .path_style = -1 };
	struct obj_s3_config aws = { .endpoint = "https://s3.eu-west-1.amazonaws.com",
				     .path_style = -1 };
	struct obj_s3_config dflt = { .path_style = -1 };
	struct obj_url u;

	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_S3");
	ck_assert_int_eq(obj_url_parse_conf(&u, "s3://Bad_Bucket/x", &path), 0);
	ck_assert_str_eq(u.bucket, "Bad_Bucket");
	ck_assert_str_eq(u.prefix, "x/");
	obj_url_free(&u);
	ck_assert_int_eq(obj_url_parse_conf(&u, "s3://Data_2024", &rgw), 0);
	obj_url_free(&u);
	/* AWS, or no endpoint at all (AWS by default): AWS's rules. */
	ck_assert_int_eq(obj_url_parse_conf(&u, "s3://Bad_Bucket", &aws), -EINVAL);
	obj_url_free(&u);
	ck_assert_int_eq(obj_url_parse_conf(&u, "s3://Bad_Bucket", &dflt), -EINVAL);
	obj_url_free(&u);
	ck_assert_int_eq(obj_url_parse_conf(&u, "s3://Bad_Bucket", NULL), -EINVAL);
	obj_url_free(&u);
	/* The endpoint may come from the environment. */
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000", 1);
	ck_assert_int_eq(obj_url_parse_conf(&u, "s3://Bad_Bucket", &dflt), 0);
	obj_url_free(&u);
	unsetenv("AWS_ENDPOINT_URL");
	/* Relaxed is not anything: still no '/', '%', spaces, or a short name. */
	ck_assert_int_eq(obj_url_parse_conf(&u, "s3://ab", &path), -EINVAL);
	ck_assert_msg(strstr(obj_last_error(), "3-255") != NULL, "%s", obj_last_error());
	obj_url_free(&u);
	ck_assert_int_eq(obj_url_parse_conf(&u, "s3://a%20b", &path), -EINVAL);
	obj_url_free(&u);
	/* Segments are refused off AWS too. */
	ck_assert_int_eq(obj_url_parse_conf(&u, "s3://Bad_Bucket/../x", &path), -EINVAL);
	obj_url_free(&u);
}
END_TEST

/* A failure of no one object (LIST of the whole store, name "") reads
 * "OP: CAUSE", never "OP : CAUSE". */
START_TEST(test_obj_url__error_without_name)
{
	ck_assert_int_eq(obj_fail(-EACCES, -1, "s3 LIST", "", "HTTP 403 AccessDenied"), -EACCES);
	ck_assert_str_eq(obj_last_error(), "s3 LIST: HTTP 403 AccessDenied");
	ck_assert_int_eq(obj_fail(-EACCES, -1, "s3 LIST", NULL, "denied"), -EACCES);
	ck_assert_str_eq(obj_last_error(), "s3 LIST: denied");
	ck_assert_int_eq(obj_fail(-EIO, -1, "s3 GET", "sst/1", "bad"), -EIO);
	ck_assert_str_eq(obj_last_error(), "s3 GET sst/1: bad");
}
END_TEST

static Suite *obj_url_suite(void)
{
	Suite *s = suite_create("obj_url");
	TCase *tc = tcase_create("url");
	tcase_add_test(tc, test_obj_url__accepted_forms);
	tcase_add_test(tc, test_obj_url__malformed_rejected_with_reason);
	tcase_add_test(tc, test_obj_url__relaxed_bucket_names_off_aws);
	tcase_add_test(tc, test_obj_url__error_without_name);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(obj_url_suite)
