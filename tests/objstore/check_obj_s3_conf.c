/*
 * check_obj_s3_conf.c - S3 configuration resolution (objstore/obj_s3_conf.c):
 * option > environment > ~/.aws files, profiles, endpoint parsing, the
 * automatic addressing style, and messages that never carry a secret;
 * with the static sources of the credential chain (obj_s3_cred_src.c),
 * which read the same files. Instance metadata is disabled throughout.
 * Each test runs in its own process (CK_FORK), so setenv() is private.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "objstore/obj_s3_int.h"
#include "tests/check_common.h"
#include "tests/check_main.h"

static struct obj_s3_creds *creds;

static void conf_setup(void)
{
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
		"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_PROFILE",
		"AWS_CA_BUNDLE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	check_dir_setup();
	setenv("HOME", check_dir, 1); /* no real ~/.aws leaks in */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

/* The credentials the chain finds for settings s, into `creds`. */
static int chain(const struct obj_s3_settings *s, const struct obj_s3_config *c, char *err, size_t n)
{
	struct obj_s3_cred_src *src = NULL;
	int rc;
	obj_s3_creds_free(creds);
	creds = NULL;
	rc = obj_s3_cred_src_chain(&src, &creds, s, c, "bucket", err, n);
	obj_s3_cred_src_free(src);
	return rc;
}

static void conf_teardown(void)
{
	obj_s3_creds_free(creds);
	creds = NULL;
	check_dir_teardown();
}

static void write_file(const char *rel, const char *text)
{
	char path[400];
	FILE *f;
	snprintf(path, sizeof(path), "%s/.aws", check_dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%s", check_dir, rel);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(test_obj_s3_conf__env_credentials_and_defaults)
{
	struct obj_s3_settings s;
	char err[256];
	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
	setenv("AWS_SESSION_TOKEN", "TOK", 1);
	ck_assert_int_eq(obj_s3_settings_resolve(&s, NULL, "bucket", err, sizeof(err)), 0);
	ck_assert_int_eq(chain(&s, NULL, err, sizeof(err)), 0);
	ck_assert_str_eq(creds->access_key, "AK");
	ck_assert_str_eq(creds->secret_key, "SK");
	ck_assert_str_eq(creds->session_token, "TOK");
	ck_assert_int_eq(creds->expires, 0);
	ck_assert_str_eq(s.region, "us-east-1");
	ck_assert_str_eq(s.scheme, "https");
	ck_assert_str_eq(s.host, "s3.us-east-1.amazonaws.com");
	ck_assert_int_eq(s.path_style, 0);
	ck_assert_int_eq(s.insecure_tls, 0);
	ck_assert_uint_eq(s.connect_timeout_ms, OBJ_S3_DFLT_CONNECT_TIMEOUT_MS);
	ck_assert_uint_eq(s.part_size, OBJ_S3_DFLT_PART_SIZE);
	obj_s3_settings_clear(&s);
}
END_TEST

START_TEST(test_obj_s3_conf__options_beat_env_beat_files)
{
	struct obj_s3_settings s;
	struct obj_s3_config c = { .path_style = -1 };
	char err[256];

	write_file(".aws/credentials", "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = FILESECRET\n"
				       "[other]\naws_access_key_id=OK\naws_secret_access_key=OS\naws_session_token=OT\n");
	write_file(".aws/config", "[default]\nregion = eu-west-1\n"
				  "[profile other]\nregion = ap-south-1\ns3 =\n  endpoint_url = http://10.1.2.3:9000\n"
				  "  addressing_style = virtual\n");
	/* Files only. */
	ck_assert_int_eq(obj_s3_settings_resolve(&s, &c, "bucket", err, sizeof(err)), 0);
	ck_assert_int_eq(chain(&s, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(creds->access_key, "FILEKEY");
	ck_assert_str_eq(s.region, "eu-west-1");
	ck_assert_str_eq(s.host, "s3.eu-west-1.amazonaws.com");
	ck_assert_ptr_null(creds->session_token);
	obj_s3_settings_clear(&s);

	/* A profile from the environment, nested s3 block. */
	setenv("AWS_PROFILE", "other", 1);
	ck_assert_int_eq(obj_s3_settings_resolve(&s, &c, "bucket", err, sizeof(err)), 0);
	ck_assert_int_eq(chain(&s, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(creds->access_key, "OK");
	ck_assert_str_eq(creds->session_token, "OT");
	ck_assert_str_eq(s.region, "ap-south-1");
	ck_assert_str_eq(s.scheme, "http");
	ck_assert_str_eq(s.host, "10.1.2.3");
	ck_assert_uint_eq(s.port, 9000);
	ck_assert_int_eq(s.path_style, 0); /* addressing_style = virtual wins over auto */
	obj_s3_settings_clear(&s);

	/* Environment beats files. */
	setenv("AWS_REGION", "us-west-2", 1);
	setenv("AWS_ENDPOINT_URL", "http://localhost:7480", 1);
	setenv("AWS_ACCESS_KEY_ID", "EK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ES", 1);
	c.path_style = 1;
	ck_assert_int_eq(obj_s3_settings_resolve(&s, &c, "bucket", err, sizeof(err)), 0);
	ck_assert_int_eq(chain(&s, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(creds->access_key, "EK");
	ck_assert_ptr_null(creds->session_token); /* env keys never mix with a file token */
	ck_assert_str_eq(s.region, "us-west-2");
	ck_assert_str_eq(s.host, "localhost");
	ck_assert_int_eq(s.path_style, 1);
	obj_s3_settings_clear(&s);

	/* AWS_ENDPOINT_URL_S3 beats AWS_ENDPOINT_URL; options beat both. */
	setenv("AWS_ENDPOINT_URL_S3", "https://s3.example.com", 1);
	c.path_style = -1;
	ck_assert_int_eq(obj_s3_settings_resolve(&s, &c, "bucket", err, sizeof(err)), 0);
	ck_assert_str_eq(s.host, "s3.example.com");
	ck_assert_int_eq(s.path_style, 0);
	obj_s3_settings_clear(&s);
	c.endpoint = "http://127.0.0.1:8000/";
	c.region = "r1";
	c.profile = "default";
	ck_assert_int_eq(obj_s3_settings_resolve(&s, &c, "bucket", err, sizeof(err)), 0);
	ck_assert_str_eq(s.host, "127.0.0.1");
	ck_assert_uint_eq(s.port, 8000);
	ck_assert_str_eq(s.region, "r1");
	ck_assert_int_eq(s.path_style, 1); /* auto: IP endpoint */
	obj_s3_settings_clear(&s);
}
END_TEST

START_TEST(test_obj_s3_conf__file_locations_from_env)
{
	struct obj_s3_settings s;
	char err[256], path[400];
	FILE *f;
	snprintf(path, sizeof(path), "%s/creds", check_dir);
	f = fopen(path, "w");
	fputs("# comment\n; other\n[p]\n aws_access_key_id = K2 \naws_secret_access_key=S2\n", f);
	fclose(f);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_PROFILE", "p", 1);
	ck_assert_int_eq(obj_s3_settings_resolve(&s, NULL, "bucket", err, sizeof(err)), 0);
	ck_assert_int_eq(chain(&s, NULL, err, sizeof(err)), 0);
	ck_assert_str_eq(creds->access_key, "K2");
	ck_assert_str_eq(creds->secret_key, "S2");
	obj_s3_settings_clear(&s);
}
END_TEST

START_TEST(test_obj_s3_conf__no_credentials_is_eacces)
{
	struct obj_s3_settings s;
	char err[1024];
	ck_assert_int_eq(obj_s3_settings_resolve(&s, NULL, "bucket", err, sizeof(err)), 0);
	ck_assert_int_eq(chain(&s, NULL, err, sizeof(err)), -EACCES);
	ck_assert_ptr_nonnull(strstr(err, "no S3 credentials found"));
	/* It says what it tried. */
	ck_assert_ptr_nonnull(strstr(err, "environment"));
	ck_assert_ptr_nonnull(strstr(err, "web identity"));
	ck_assert_ptr_nonnull(strstr(err, "profile 'default'"));
	ck_assert_ptr_nonnull(strstr(err, "ECS"));
	ck_assert_msg(strstr(err, "AWS_EC2_METADATA_DISABLED") != NULL, "%s", err);
	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	ck_assert_int_eq(chain(&s, NULL, err, sizeof(err)), -EACCES);
	ck_assert_ptr_nonnull(strstr(err, "must be set together"));
	obj_s3_settings_clear(&s);
}
END_TEST

START_TEST(test_obj_s3_conf__malformed_endpoints)
{
	static const char *const bad[] = {
		"127.0.0.1:7480", "ftp://host", "http//host", "http://", "http://:80", "http://host:0",
		"http://host:65536", "http://host:x", "http://host/path", "http://host?q", "http://ho st",
		"http://[::1", "http://-host",
	};
	char *scheme, *host, err[256];
	unsigned port;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(obj_s3_endpoint_parse(bad[i], &scheme, &host, &port, err, sizeof(err)) == -EINVAL,
			      "accepted %s", bad[i]);
		ck_assert_ptr_nonnull(strstr(err, "malformed S3 endpoint URL"));
		ck_assert_ptr_null(strchr(err, '\n'));
	}
	/* Userinfo is refused without being echoed. */
	ck_assert_int_eq(obj_s3_endpoint_parse("http://user:hunter2@host", &scheme, &host, &port, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_null(strstr(err, "hunter2"));
	ck_assert_int_eq(obj_s3_endpoint_parse("HTTPS://[::1]:8443", &scheme, &host, &port, err, sizeof(err)), 0);
	ck_assert_str_eq(scheme, "https");
	ck_assert_str_eq(host, "[::1]");
	ck_assert_uint_eq(port, 8443);
	free(scheme);
	free(host);
}
END_TEST

START_TEST(test_obj_s3_conf__auto_path_style)
{
	ck_assert_int_eq(obj_s3_host_is_local_or_ip("127.0.0.1"), 1);
	ck_assert_int_eq(obj_s3_host_is_local_or_ip("[::1]"), 1);
	ck_assert_int_eq(obj_s3_host_is_local_or_ip("localhost"), 1);
	ck_assert_int_eq(obj_s3_host_is_local_or_ip("b.localhost"), 1);
	ck_assert_int_eq(obj_s3_host_is_local_or_ip("s3.amazonaws.com"), 0);

	struct obj_s3_settings s;
	char err[256];
	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
	/* A bucket that cannot be a DNS label goes path-style even on AWS. */
	ck_assert_int_eq(obj_s3_settings_resolve(&s, NULL, "My_Bucket", err, sizeof(err)), 0);
	ck_assert_int_eq(s.path_style, 1);
	obj_s3_settings_clear(&s);
	ck_assert_int_eq(obj_s3_settings_resolve(&s, NULL, "a.b.c", err, sizeof(err)), 0);
	ck_assert_int_eq(s.path_style, 1); /* dots under https */
	obj_s3_settings_clear(&s);
}
END_TEST

/* Payload hashing: skipped over https and to loopback endpoints, kept
 * over plain http to any other host, and either way when forced. */
START_TEST(test_obj_s3_conf__unsigned_payload_by_endpoint)
{
	static const struct { const char *ep; int force, want; } cases[] = {
		{ "https://s3.example.com", 0, 1 },
		{ "http://s3.example.com", 0, 0 },
		{ "http://10.0.0.5:7480", 0, 0 },
		{ "http://127.0.0.1:7480", 0, 1 },
		{ "http://127.8.9.10", 0, 1 },
		{ "http://[::1]:9000", 0, 1 },
		{ "http://localhost:9000", 0, 1 },
		{ "http://b.localhost:9000", 0, 0 },    /* not trusted to be loopback */
		{ "http://128.0.0.1", 0, 0 },
		{ "http://127.0.0.1:7480", -1, 0 },
		{ "https://s3.example.com", -1, 0 },
		{ "http://s3.example.com", 1, 1 },
	};
	struct obj_s3_settings s;
	char err[256];

	ck_assert_int_eq(obj_s3_host_is_loopback("127.0.0.1"), 1);
	ck_assert_int_eq(obj_s3_host_is_loopback("[::1]"), 1);
	ck_assert_int_eq(obj_s3_host_is_loopback("[::2]"), 0);
	ck_assert_int_eq(obj_s3_host_is_loopback("LocalHost"), 1);
	ck_assert_int_eq(obj_s3_host_is_loopback("s3.amazonaws.com"), 0);
	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct obj_s3_config c = { .endpoint = cases[i].ep, .path_style = -1,
					   .unsigned_payload = cases[i].force };
		ck_assert_int_eq(obj_s3_settings_resolve(&s, &c, "bucket", err, sizeof(err)), 0);
		ck_assert_msg(s.unsigned_payload == cases[i].want, "%s (force %d): unsigned_payload %d",
			      cases[i].ep, cases[i].force, s.unsigned_payload);
		obj_s3_settings_clear(&s);
	}
}
END_TEST

START_TEST(test_obj_s3_conf__sizes_clamped)
{
	struct obj_s3_settings s;
	struct obj_s3_config c = { .path_style = -1, .part_size = 1024, .multipart_threshold = 10,
				   .insecure_tls = 1 };
	char err[256];
	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
	setenv("AWS_CA_BUNDLE", "/etc/ca.pem", 1);
	ck_assert_int_eq(obj_s3_settings_resolve(&s, &c, "bucket", err, sizeof(err)), 0);
	ck_assert_uint_eq(s.part_size, OBJ_S3_MIN_PART_SIZE);
	ck_assert_uint_eq(s.multipart_threshold, OBJ_S3_MIN_PART_SIZE);
	ck_assert_int_eq(s.insecure_tls, 1);
	ck_assert_str_eq(s.ca_bundle, "/etc/ca.pem");
	obj_s3_settings_clear(&s);
}
END_TEST

static Suite *obj_s3_conf_suite(void)
{
	Suite *s = suite_create("obj_s3_conf");
	TCase *t = tcase_create("resolve");
	tcase_add_checked_fixture(t, conf_setup, conf_teardown);
	tcase_add_test(t, test_obj_s3_conf__env_credentials_and_defaults);
	tcase_add_test(t, test_obj_s3_conf__options_beat_env_beat_files);
	tcase_add_test(t, test_obj_s3_conf__file_locations_from_env);
	tcase_add_test(t, test_obj_s3_conf__no_credentials_is_eacces);
	tcase_add_test(t, test_obj_s3_conf__malformed_endpoints);
	tcase_add_test(t, test_obj_s3_conf__auto_path_style);
	tcase_add_test(t, test_obj_s3_conf__unsigned_payload_by_endpoint);
	tcase_add_test(t, test_obj_s3_conf__sizes_clamped);
	suite_add_tcase(s, t);
	return s;
}

CHECK_MAIN(obj_s3_conf_suite)
