/*
 * check_obj_s3_sign.c - SigV4 (objstore/obj_s3_sign.c) against the
 * signatures AWS publishes: cases of the Signature Version 4 test suite
 * (service "service", region us-east-1, 20150830T123600Z, secret
 * wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY) and the S3 header-signing
 * examples (GET Object with Range, PUT Object, GET ?lifecycle, List
 * Objects; secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 20130524).
 * Plus URI encoding, base64 MD5 and buffer behaviour.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "objstore/obj_s3_int.h"
#include "tests/check_main.h"

#define SUITE_KEY "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define SUITE_SCOPE "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
#define S3_KEY "AKIAIOSFODNN7EXAMPLE"
#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_DATE "20130524T000000Z"

struct vec {
	const char *method, *path;
	struct obj_s3_query q[4];
	size_t nq;
	struct obj_s3_header h[6];
	size_t nh;
	const char *body;
	const char *key, *secret, *date, *service;
};

static char *sign(const struct vec *v, char **canon)
{
	char hash[OBJ_S3_SHA256_HEX_LEN + 1];
	struct obj_s3_buf path = { 0 };
	char *auth = NULL, *qs = NULL;

	obj_s3_uri_encode(&path, v->path, strlen(v->path), 1);
	ck_assert_int_eq(obj_s3_buf_err(&path), 0);
	ck_assert_int_eq(obj_s3_sha256_hex(v->body ? v->body : "", v->body ? strlen(v->body) : 0, hash), 0);
	struct obj_s3_sign_input in = {
		.method = v->method, .path = path.p, .query = v->q, .nquery = v->nq,
		.headers = v->h, .nheaders = v->nh, .payload_hash = hash, .amz_date = v->date,
		.region = "us-east-1", .service = v->service, .access_key = v->key,
		.secret_key = v->secret,
	};
	ck_assert_int_eq(obj_s3_sign(&in, &auth, &qs, canon), 0);
	free(qs);
	obj_s3_buf_free(&path);
	return auth;
}

#define SUITE_VEC(...) \
	{ .key = SUITE_KEY, .secret = SUITE_SECRET, .date = SUITE_DATE, .service = "service", __VA_ARGS__ }
#define HOST_DATE { "Host", "example.amazonaws.com" }, { "X-Amz-Date", SUITE_DATE }

START_TEST(test_obj_s3_sign__get_vanilla)
{
	struct vec v = SUITE_VEC(.method = "GET", .path = "/", .h = { HOST_DATE }, .nh = 2);
	char *canon = NULL, *a = sign(&v, &canon);
	ck_assert_str_eq(canon, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
				"host;x-amz-date\n" OBJ_S3_EMPTY_SHA256);
	ck_assert_str_eq(a, SUITE_SCOPE "SignedHeaders=host;x-amz-date, "
			    "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	free(a);
	free(canon);
}
END_TEST

START_TEST(test_obj_s3_sign__get_vanilla_query_order_key_case)
{
	struct vec v = SUITE_VEC(.method = "GET", .path = "/",
				 .q = { { "Param2", "value2" }, { "Param1", "value1" } }, .nq = 2,
				 .h = { HOST_DATE }, .nh = 2);
	char *canon = NULL, *a = sign(&v, &canon);
	ck_assert_str_eq(canon, "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
				"x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" OBJ_S3_EMPTY_SHA256);
	ck_assert_str_eq(a, SUITE_SCOPE "SignedHeaders=host;x-amz-date, "
			    "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
	free(a);
	free(canon);
}
END_TEST

START_TEST(test_obj_s3_sign__post_vanilla)
{
	struct vec v = SUITE_VEC(.method = "POST", .path = "/", .h = { HOST_DATE }, .nh = 2);
	char *a = sign(&v, NULL);
	ck_assert_str_eq(a, SUITE_SCOPE "SignedHeaders=host;x-amz-date, "
			    "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
	free(a);
}
END_TEST

START_TEST(test_obj_s3_sign__post_x_www_form_urlencoded)
{
	struct vec v = SUITE_VEC(.method = "POST", .path = "/", .body = "Param1=value1",
				 .h = { { "Content-Type", "application/x-www-form-urlencoded" }, HOST_DATE },
				 .nh = 3);
	char *canon = NULL, *a = sign(&v, &canon);
	ck_assert_str_eq(canon, "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
				"host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
				"content-type;host;x-amz-date\n"
				"9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
	ck_assert_str_eq(a, SUITE_SCOPE "SignedHeaders=content-type;host;x-amz-date, "
			    "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
	free(a);
	free(canon);
}
END_TEST

START_TEST(test_obj_s3_sign__get_header_value_trim)
{
	struct vec v = SUITE_VEC(.method = "GET", .path = "/",
				 .h = { HOST_DATE, { "My-Header1", " value1" },
					{ "My-Header2", "\"a   b   c\"" } },
				 .nh = 4);
	char *a = sign(&v, NULL);
	ck_assert_str_eq(a, SUITE_SCOPE "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
			    "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
	free(a);
}
END_TEST

START_TEST(test_obj_s3_sign__get_unreserved)
{
	struct vec v = SUITE_VEC(.method = "GET",
				 .path = "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
				 .h = { HOST_DATE }, .nh = 2);
	char *a = sign(&v, NULL);
	ck_assert_str_eq(a, SUITE_SCOPE "SignedHeaders=host;x-amz-date, "
			    "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
	free(a);
}
END_TEST

#define S3_VEC(...) \
	{ .key = S3_KEY, .secret = S3_SECRET, .date = S3_DATE, .service = "s3", __VA_ARGS__ }
#define S3_HOST { "Host", "examplebucket.s3.amazonaws.com" }
#define S3_EMPTY { "x-amz-content-sha256", OBJ_S3_EMPTY_SHA256 }, { "x-amz-date", S3_DATE }

START_TEST(test_obj_s3_sign__s3_get_object_range)
{
	struct vec v = S3_VEC(.method = "GET", .path = "/test.txt",
			      .h = { S3_HOST, { "Range", "bytes=0-9" }, S3_EMPTY }, .nh = 4);
	char *canon = NULL, *a = sign(&v, &canon);
	ck_assert_str_eq(canon, "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
				"x-amz-content-sha256:" OBJ_S3_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
				"host;range;x-amz-content-sha256;x-amz-date\n" OBJ_S3_EMPTY_SHA256);
	ck_assert_str_eq(a, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
			    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
			    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	free(a);
	free(canon);
}
END_TEST

START_TEST(test_obj_s3_sign__s3_put_object)
{
	/* The path has a '$', encoded once as %24 (S3 does not double-encode). */
	struct vec v = S3_VEC(.method = "PUT", .path = "/test$file.text", .body = "Welcome to Amazon S3.",
			      .h = { { "Date", "Fri, 24 May 2013 00:00:00 GMT" }, S3_HOST,
				     { "x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072" },
				     { "x-amz-date", S3_DATE }, { "x-amz-storage-class", "REDUCED_REDUNDANCY" } },
			      .nh = 5);
	char *canon = NULL, *a = sign(&v, &canon);
	ck_assert_ptr_nonnull(strstr(canon, "PUT\n/test%24file.text\n\n"));
	ck_assert_ptr_nonnull(strstr(a, "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
				       "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));
	free(a);
	free(canon);
}
END_TEST

START_TEST(test_obj_s3_sign__s3_bare_query_key)
{
	struct vec v = S3_VEC(.method = "GET", .path = "/", .q = { { "lifecycle", NULL } }, .nq = 1,
			      .h = { S3_HOST, S3_EMPTY }, .nh = 3);
	char *canon = NULL, *a = sign(&v, &canon);
	ck_assert_ptr_nonnull(strstr(canon, "GET\n/\nlifecycle=\n"));
	ck_assert_ptr_nonnull(strstr(a, "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
	free(a);
	free(canon);
}
END_TEST

START_TEST(test_obj_s3_sign__s3_list_objects_query_sorted)
{
	struct vec v = S3_VEC(.method = "GET", .path = "/", .q = { { "prefix", "J" }, { "max-keys", "2" } },
			      .nq = 2, .h = { S3_HOST, S3_EMPTY }, .nh = 3);
	char *a = sign(&v, NULL);
	ck_assert_ptr_nonnull(strstr(a, "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
	free(a);
}
END_TEST

START_TEST(test_obj_s3_sign__query_encoding)
{
	/* Keys and values are encoded (space as %20, '/' and '=' too) and
	 * sorted by encoded key, then value. */
	struct obj_s3_query q[] = { { "prefix", "a b/c=d" }, { "A", "2" }, { "A", "1" }, { "uploads", NULL } };
	struct obj_s3_header h[] = { { "host", "h" }, { "x-amz-date", S3_DATE } };
	struct obj_s3_sign_input in = {
		.method = "GET", .path = "/", .query = q, .nquery = 4, .headers = h, .nheaders = 2,
		.payload_hash = OBJ_S3_EMPTY_SHA256, .amz_date = S3_DATE, .region = "r",
		.service = "s3", .access_key = "k", .secret_key = "s",
	};
	char *auth = NULL, *qs = NULL;
	ck_assert_int_eq(obj_s3_sign(&in, &auth, &qs, NULL), 0);
	ck_assert_str_eq(qs, "A=1&A=2&prefix=a%20b%2Fc%3Dd&uploads=");
	free(auth);
	free(qs);
}
END_TEST

START_TEST(test_obj_s3_sign__missing_host_is_einval)
{
	struct obj_s3_header h[] = { { "x-amz-date", S3_DATE } };
	struct obj_s3_sign_input in = {
		.method = "GET", .path = "/", .headers = h, .nheaders = 1,
		.payload_hash = OBJ_S3_EMPTY_SHA256, .amz_date = S3_DATE, .region = "r",
		.service = "s3", .access_key = "k", .secret_key = "s",
	};
	char *auth = NULL;
	ck_assert_int_eq(obj_s3_sign(&in, &auth, NULL, NULL), -EINVAL);
	ck_assert_ptr_null(auth);
	in.amz_date = "2013";
	ck_assert_int_eq(obj_s3_sign(&in, &auth, NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_obj_s3_sign__uri_encode)
{
	struct obj_s3_buf b = { 0 };
	const char *key = "dir/a b+c~é\x01";
	obj_s3_uri_encode(&b, key, strlen(key), 1);
	ck_assert_str_eq(b.p, "dir/a%20b%2Bc~%C3%A9%01");
	b.len = 0;
	obj_s3_uri_encode(&b, "a/b", 3, 0);
	ck_assert_str_eq(b.p, "a%2Fb");
	obj_s3_buf_free(&b);
}
END_TEST

START_TEST(test_obj_s3_sign__md5_base64)
{
	char out[25];
	/* RFC 1321 test vector "abc" = 900150983cd24fb0d6963f7d28e17f72. */
	ck_assert_int_eq(obj_s3_md5_base64("abc", 3, out), 0);
	ck_assert_str_eq(out, "kAFQmDzST7DWlj99KOF/cg==");
}
END_TEST

START_TEST(test_obj_s3_sign__buf_take_empty)
{
	struct obj_s3_buf b = { 0 };
	char *s = obj_s3_buf_take(&b);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "");
	free(s);
	obj_s3_buf_addf(&b, "%d-%s", 42, "x");
	s = obj_s3_buf_take(&b);
	ck_assert_str_eq(s, "42-x");
	free(s);
}
END_TEST

static Suite *obj_s3_sign_suite(void)
{
	Suite *s = suite_create("obj_s3_sign");
	TCase *t = tcase_create("aws_test_suite");
	tcase_add_test(t, test_obj_s3_sign__get_vanilla);
	tcase_add_test(t, test_obj_s3_sign__get_vanilla_query_order_key_case);
	tcase_add_test(t, test_obj_s3_sign__post_vanilla);
	tcase_add_test(t, test_obj_s3_sign__post_x_www_form_urlencoded);
	tcase_add_test(t, test_obj_s3_sign__get_header_value_trim);
	tcase_add_test(t, test_obj_s3_sign__get_unreserved);
	suite_add_tcase(s, t);
	t = tcase_create("aws_s3_examples");
	tcase_add_test(t, test_obj_s3_sign__s3_get_object_range);
	tcase_add_test(t, test_obj_s3_sign__s3_put_object);
	tcase_add_test(t, test_obj_s3_sign__s3_bare_query_key);
	tcase_add_test(t, test_obj_s3_sign__s3_list_objects_query_sorted);
	suite_add_tcase(s, t);
	t = tcase_create("encoding");
	tcase_add_test(t, test_obj_s3_sign__query_encoding);
	tcase_add_test(t, test_obj_s3_sign__missing_host_is_einval);
	tcase_add_test(t, test_obj_s3_sign__uri_encode);
	tcase_add_test(t, test_obj_s3_sign__md5_base64);
	tcase_add_test(t, test_obj_s3_sign__buf_take_empty);
	suite_add_tcase(s, t);
	return s;
}

CHECK_MAIN(obj_s3_sign_suite)
