/*
 * check_obj_s3_cred.c - the S3 credential chain without a network:
 * the JSON reader (obj_s3_json.c), ISO 8601 expiry parsing, the answers of
 * credential_process / ECS / IMDS / STS (obj_s3_cred_src.c), the profile
 * resolver and credentials_file, running a real credential_process, and
 * the provider's refresh of expiring credentials (obj_s3_cred.c) driven
 * by a credential_process that hands out 4-second credentials.
 * Each test runs in its own process (CK_FORK), so setenv() is private.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "objstore/obj_s3_int.h"
#include "tests/check_main.h"

static char dir[256];
static struct obj_s3_creds *creds;

static void cred_setup(void)
{
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
		"AWS_ENDPOINT_URL_STS",
	};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	snprintf(dir, sizeof(dir), "/tmp/shale-s3cred-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	setenv("HOME", dir, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static void cred_teardown(void)
{
	char cmd[300];
	obj_s3_creds_free(creds);
	creds = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
}

static void write_file(const char *rel, const char *text, mode_t mode)
{
	char path[400];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_int_eq(chmod(path, mode), 0);
}

/* ---- JSON ------------------------------------------------------------------ */

START_TEST(test_obj_s3_cred_json__flat_object)
{
	static const char *const keys[] = { "a", "b", "n", "t", "z", "u" };
	const char *doc = " {\"x\": {\"a\": [1, {\"b\": \"no\"}]}, \"a\": \"A\\\"\\\\\\/\\n\", \"b\": \"\","
			  " \"n\": -12.5e3, \"t\": true, \"z\": null, \"u\": \"\\u00e9\\ud83d\\ude00\"} ";
	char *v[6];
	ck_assert_int_eq(obj_s3_json_strings(doc, strlen(doc), keys, 6, v), 0);
	ck_assert_str_eq(v[0], "A\"\\/\n"); /* nested "a" and "b" are not top-level */
	ck_assert_str_eq(v[1], "");
	ck_assert_str_eq(v[2], "-12.5e3");
	ck_assert_str_eq(v[3], "true");
	ck_assert_ptr_null(v[4]);
	ck_assert_str_eq(v[5], "\xc3\xa9\xf0\x9f\x98\x80");
	for (int i = 0; i < 6; i++)
		free(v[i]);
}
END_TEST

START_TEST(test_obj_s3_cred_json__refuses_malformed)
{
	static const char *const bad[] = {
		"", "[]", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x", "{\"a\":\"\x01\"}",
		"{\"a\":\"\\ud800\"}", "{\"a\": 01}", "{'a':1}", "{\"a\":1 \"b\":2}",
		"{\"a\":\"x\",\"a\":\"y\"}", /* a requested name twice */
		"{\"a\":\"unterminated}",
	};
	static const char *const keys[] = { "a" };
	char *v[1];
	char deep[200];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(obj_s3_json_strings(bad[i], strlen(bad[i]), keys, 1, v) == -EINVAL, "%s", bad[i]);
		ck_assert_ptr_null(v[0]);
	}
	/* Nesting deeper than the limit is refused, not recursed into. */
	memset(deep, '[', sizeof(deep));
	memcpy(deep, "{\"x\":", 5);
	ck_assert_int_eq(obj_s3_json_strings(deep, sizeof(deep), keys, 1, v), -EINVAL);
}
END_TEST

/* ---- ISO 8601 ---------------------------------------------------------------- */

START_TEST(test_obj_s3_cred_time__iso8601)
{
	int64_t t;
	ck_assert_int_eq(obj_s3_time_parse("2019-11-09T13:34:41Z", &t), 0);
	ck_assert_int_eq(t, 1573306481);
	ck_assert_int_eq(obj_s3_time_parse("2019-11-09T13:34:41.123Z", &t), 0);
	ck_assert_int_eq(t, 1573306481);
	ck_assert_int_eq(obj_s3_time_parse("2019-11-09T15:34:41+02:00", &t), 0);
	ck_assert_int_eq(t, 1573306481);
	ck_assert_int_eq(obj_s3_time_parse("2019-11-09T08:34:41-05:00", &t), 0);
	ck_assert_int_eq(t, 1573306481);
	ck_assert_int_eq(obj_s3_time_parse("2019-11-09T13:34:41", &t), -EINVAL);
	ck_assert_int_eq(obj_s3_time_parse("2019-11-09 13:34:41Z", &t), -EINVAL);
	ck_assert_int_eq(obj_s3_time_parse("2019-11-09T13:34:41Zjunk", &t), -EINVAL);
	ck_assert_int_eq(obj_s3_time_parse("tomorrow", &t), -EINVAL);
	ck_assert_int_eq(obj_s3_time_parse(NULL, &t), -EINVAL);
}
END_TEST

/* ---- the sources' answers --------------------------------------------------------- */

START_TEST(test_obj_s3_cred_parse__process_json)
{
	const char *ok = "{\"Version\": 1, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"SK\","
			 " \"SessionToken\": \"TK\", \"Expiration\": \"2030-01-01T00:00:00Z\"}";
	const char *stat = "{\"Version\": 1, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"SK\"}";
	const char *v2 = "{\"Version\": 2, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"SK\"}";
	const char *nosecret = "{\"Version\": 1, \"AccessKeyId\": \"AK\"}";
	const char *badexp = "{\"Version\": 1, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"SK\", \"Expiration\": \"soon\"}";
	char err[256];

	ck_assert_int_eq(obj_s3_cred_parse_process(ok, strlen(ok), &creds, err, sizeof(err)), 0);
	ck_assert_str_eq(creds->access_key, "AK");
	ck_assert_str_eq(creds->secret_key, "SK");
	ck_assert_str_eq(creds->session_token, "TK");
	ck_assert_int_eq(creds->expires, 1893456000);
	obj_s3_creds_free(creds);
	ck_assert_int_eq(obj_s3_cred_parse_process(stat, strlen(stat), &creds, err, sizeof(err)), 0);
	ck_assert_ptr_null(creds->session_token);
	ck_assert_int_eq(creds->expires, 0);
	obj_s3_creds_free(creds);
	creds = NULL;
	ck_assert_int_eq(obj_s3_cred_parse_process(v2, strlen(v2), &creds, err, sizeof(err)), -EACCES);
	ck_assert_ptr_nonnull(strstr(err, "Version"));
	ck_assert_int_eq(obj_s3_cred_parse_process(nosecret, strlen(nosecret), &creds, err, sizeof(err)), -EACCES);
	ck_assert_int_eq(obj_s3_cred_parse_process(badexp, strlen(badexp), &creds, err, sizeof(err)), -EACCES);
	ck_assert_ptr_nonnull(strstr(err, "Expiration"));
	ck_assert_int_eq(obj_s3_cred_parse_process("not json", 8, &creds, err, sizeof(err)), -EACCES);
	ck_assert_ptr_null(strstr(err, "SK"));
}
END_TEST

START_TEST(test_obj_s3_cred_parse__container_json)
{
	const char *ok = "{\"Code\": \"Success\", \"LastUpdated\": \"2020-01-01T00:00:00Z\", \"Type\": \"AWS-HMAC\","
			 " \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"SK\", \"Token\": \"TK\","
			 " \"Expiration\": \"2030-01-01T00:00:00Z\"}";
	const char *fail = "{\"Code\": \"AssumeRoleUnauthorizedAccess\", \"Message\": \"no role\"}";
	char err[256];
	ck_assert_int_eq(obj_s3_cred_parse_container(ok, strlen(ok), &creds, "IMDS", err, sizeof(err)), 0);
	ck_assert_str_eq(creds->session_token, "TK");
	ck_assert_int_eq(creds->expires, 1893456000);
	obj_s3_creds_free(creds);
	creds = NULL;
	ck_assert_int_eq(obj_s3_cred_parse_container(fail, strlen(fail), &creds, "IMDS", err, sizeof(err)), -EACCES);
	ck_assert_str_eq(err, "IMDS: AssumeRoleUnauthorizedAccess: no role");
}
END_TEST

START_TEST(test_obj_s3_cred_parse__sts_xml)
{
	const char *ok =
		"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
		"<AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>x</SubjectFromWebIdentityToken>"
		"<Credentials><SessionToken>TK</SessionToken><SecretAccessKey>SK</SecretAccessKey>"
		"<Expiration>2014-10-24T23:00:23Z</Expiration><AccessKeyId>AK</AccessKeyId></Credentials>"
		"</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
	const char *ar = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A2</AccessKeyId>"
			 "<SecretAccessKey>S2</SecretAccessKey><SessionToken>T2</SessionToken>"
			 "<Expiration>2014-10-24T23:00:23.5Z</Expiration></Credentials></AssumeRoleResult>"
			 "</AssumeRoleResponse>";
	const char *er = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
			 "<Message>not \x01 allowed</Message></Error></ErrorResponse>";
	const char *nocred = "<AssumeRoleResponse><AssumeRoleResult/></AssumeRoleResponse>";
	char err[256];

	ck_assert_int_eq(obj_s3_cred_parse_sts(ok, strlen(ok), &creds, err, sizeof(err)), 0);
	ck_assert_str_eq(creds->access_key, "AK");
	ck_assert_str_eq(creds->secret_key, "SK");
	ck_assert_str_eq(creds->session_token, "TK");
	ck_assert_int_eq(creds->expires, 1414191623);
	obj_s3_creds_free(creds);
	ck_assert_int_eq(obj_s3_cred_parse_sts(ar, strlen(ar), &creds, err, sizeof(err)), 0);
	ck_assert_str_eq(creds->access_key, "A2");
	obj_s3_creds_free(creds);
	creds = NULL;
	ck_assert_int_eq(obj_s3_cred_parse_sts(er, strlen(er), &creds, err, sizeof(err)), -EACCES);
	ck_assert_str_eq(err, "STS: AccessDenied: not ? allowed"); /* control characters sanitised */
	ck_assert_int_eq(obj_s3_cred_parse_sts(nocred, strlen(nocred), &creds, err, sizeof(err)), -EACCES);
	ck_assert_int_eq(obj_s3_cred_parse_sts("<a>", 3, &creds, err, sizeof(err)), -EACCES);
}
END_TEST

/* ---- files ----------------------------------------------------------------------- */

START_TEST(test_obj_s3_cred_passwd__lines_and_mode)
{
	char path[400], err[512];
	snprintf(path, sizeof(path), "%s/passwd", dir);

	write_file("passwd", "# comment\n\n  K1:S1  \nbkt:K2:S2\n", 0600);
	ck_assert_int_eq(obj_s3_cred_parse_passwd(path, "other", &creds, err, sizeof(err)), 0);
	ck_assert_str_eq(creds->access_key, "K1");
	ck_assert_str_eq(creds->secret_key, "S1");
	obj_s3_creds_free(creds);
	ck_assert_int_eq(obj_s3_cred_parse_passwd(path, "bkt", &creds, err, sizeof(err)), 0);
	ck_assert_str_eq(creds->access_key, "K2"); /* the bucket's own line wins */
	obj_s3_creds_free(creds);
	creds = NULL;

	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(obj_s3_cred_parse_passwd(path, "bkt", &creds, err, sizeof(err)), -EACCES);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_ptr_nonnull(strstr(err, "0644"));
	ck_assert_ptr_null(strstr(err, "S1"));

	write_file("passwd", "justonefield\n", 0600);
	ck_assert_int_eq(obj_s3_cred_parse_passwd(path, "bkt", &creds, err, sizeof(err)), -EACCES);
	ck_assert_ptr_nonnull(strstr(err, "line 1"));
	ck_assert_ptr_null(strstr(err, "justonefield"));
	snprintf(path, sizeof(path), "%s/missing", dir);
	ck_assert_int_eq(obj_s3_cred_parse_passwd(path, "bkt", &creds, err, sizeof(err)), -EACCES);
}
END_TEST

START_TEST(test_obj_s3_cred_profile__resolution)
{
	struct obj_s3_profile p;
	char cf[400], cfg[400];
	snprintf(cf, sizeof(cf), "%s/credentials", dir);
	snprintf(cfg, sizeof(cfg), "%s/config", dir);
	write_file("credentials", "[role]\nrole_arn = arn:from-credentials\n[src]\naws_access_key_id=K\n"
				  "aws_secret_access_key=S\n", 0600);
	write_file("config", "[profile role]\nrole_arn = arn:from-config\nsource_profile = src\n"
			     "external_id = ext\nduration_seconds = 900\n[default]\ncredential_process = echo x\n", 0600);
	ck_assert_int_eq(obj_s3_profile_load(&p, cf, cfg, "role"), 0);
	ck_assert_str_eq(p.v[OBJ_S3_PROFILE_ROLE_ARN], "arn:from-credentials"); /* key by key */
	ck_assert_str_eq(p.v[OBJ_S3_PROFILE_SOURCE_PROFILE], "src");
	ck_assert_str_eq(p.v[OBJ_S3_PROFILE_EXTERNAL_ID], "ext");
	ck_assert_str_eq(p.v[OBJ_S3_PROFILE_DURATION], "900");
	ck_assert_ptr_null(p.v[OBJ_S3_PROFILE_ACCESS_KEY]);
	obj_s3_profile_clear(&p);
	ck_assert_int_eq(obj_s3_profile_load(&p, cf, cfg, "default"), 0);
	ck_assert_str_eq(p.v[OBJ_S3_PROFILE_CREDENTIAL_PROCESS], "echo x");
	obj_s3_profile_clear(&p);
	ck_assert_int_eq(obj_s3_profile_load(&p, cf, cfg, "nosuch"), 0);
	for (int i = 0; i < OBJ_S3_PROFILE__N; i++)
		ck_assert_ptr_null(p.v[i]);
	obj_s3_profile_clear(&p);
}
END_TEST

/* The chain over settings pointing at dir's files. */
static int chain_for(const char *profile, struct obj_s3_cred_src **src, char *err, size_t n)
{
	struct obj_s3_settings s = { 0 };
	char cf[400], cfg[400];
	int rc;
	snprintf(cf, sizeof(cf), "%s/credentials", dir);
	snprintf(cfg, sizeof(cfg), "%s/config", dir);
	s.profile = (char *)profile;
	s.cred_file = cf;
	s.config_file = cfg;
	s.region = (char *)"us-east-1";
	obj_s3_creds_free(creds);
	creds = NULL;
	rc = obj_s3_cred_src_chain(src, &creds, &s, NULL, "bucket", err, n);
	return rc;
}

START_TEST(test_obj_s3_cred_chain__profile_kinds)
{
	struct obj_s3_cred_src *src = NULL;
	char err[1024];

	write_file("credentials", "[static]\naws_access_key_id=K\naws_secret_access_key=S\n"
				  "[half]\naws_access_key_id=K\n", 0600);
	write_file("config", "[profile proc]\ncredential_process = printf '{\"Version\":1,\"AccessKeyId\":\"PK\","
			     "\"SecretAccessKey\":\"PS\",\"SessionToken\":\"PT\"}'\n"
			     "[profile failing]\ncredential_process = echo oops >&2; exit 3\n"
			     "[profile garbage]\ncredential_process = echo not-json\n"
			     "[profile loop]\nrole_arn = arn:x\nsource_profile = loop2\n"
			     "[profile loop2]\nrole_arn = arn:y\nsource_profile = loop\n"
			     "[profile nosource]\nrole_arn = arn:x\n"
			     "[profile regiononly]\nregion = eu-west-1\n", 0600);

	ck_assert_int_eq(chain_for("static", &src, err, sizeof(err)), 0);
	ck_assert_str_eq(creds->access_key, "K");
	ck_assert_str_eq(obj_s3_cred_src_name(src), "profile 'static' static keys");
	obj_s3_cred_src_free(src);

	ck_assert_int_eq(chain_for("proc", &src, err, sizeof(err)), 0);
	ck_assert_str_eq(creds->access_key, "PK");
	ck_assert_str_eq(creds->session_token, "PT");
	ck_assert_str_eq(obj_s3_cred_src_name(src), "profile 'proc' credential_process");
	obj_s3_cred_src_free(src);

	ck_assert_int_eq(chain_for("failing", &src, err, sizeof(err)), -EACCES);
	ck_assert_msg(strstr(err, "exited with status 3") != NULL, "%s", err);
	ck_assert_int_eq(chain_for("garbage", &src, err, sizeof(err)), -EACCES);
	ck_assert_msg(strstr(err, "not a JSON object") != NULL, "%s", err);
	ck_assert_int_eq(chain_for("half", &src, err, sizeof(err)), -EACCES);
	ck_assert_msg(strstr(err, "only one of") != NULL, "%s", err);
	ck_assert_int_eq(chain_for("loop", &src, err, sizeof(err)), -EACCES);
	ck_assert_msg(strstr(err, "a cycle?") != NULL, "%s", err);
	ck_assert_int_eq(chain_for("nosource", &src, err, sizeof(err)), -EACCES);
	ck_assert_msg(strstr(err, "needs source_profile") != NULL, "%s", err);
	/* A profile with no credentials falls through to the rest of the chain. */
	ck_assert_int_eq(chain_for("regiononly", &src, err, sizeof(err)), -EACCES);
	ck_assert_msg(strstr(err, "no S3 credentials found") != NULL, "%s", err);
	/* The environment comes first. */
	setenv("AWS_ACCESS_KEY_ID", "EK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ES", 1);
	ck_assert_int_eq(chain_for("static", &src, err, sizeof(err)), 0);
	ck_assert_str_eq(creds->access_key, "EK");
	obj_s3_cred_src_free(src);
}
END_TEST

START_TEST(test_obj_s3_cred_chain__imds_unreachable_fails_fast)
{
	struct obj_s3_cred_src *src = NULL;
	char err[1024];
	time_t t0 = time(NULL);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1/", 1);
	ck_assert_int_eq(chain_for("default", &src, err, sizeof(err)), -EACCES);
	ck_assert_msg(strstr(err, "EC2 instance metadata (http://127.0.0.1:1/latest/api/token") != NULL, "%s", err);
	ck_assert_int_le(time(NULL) - t0, 5);
}
END_TEST

/* ---- refresh ---------------------------------------------------------------------- */

/*
 * A credential_process that hands out a new key each run ("K1", "K2", ...,
 * counted in dir/n) valid for 4 seconds, and fails once dir/fail exists.
 */
static void write_counting_process(void)
{
	char text[2048];
	snprintf(text, sizeof(text),
		 "[profile tick]\ncredential_process = test -e %s/fail && exit 1; "
		 "n=$(cat %s/n 2>/dev/null || echo 0); n=$((n+1)); echo $n >%s/n; printf '{\"Version\":1,\"AccessKeyId\":\"K%%s\",\"SecretAccessKey\":\"S\","
		 "\"SessionToken\":\"T\",\"Expiration\":\"%%s\"}' $n $(date -u -d @$(( $(date +%%s) + 4 )) "
		 "+%%Y-%%m-%%dT%%H:%%M:%%SZ)\n", dir, dir, dir);
	write_file("config", text, 0600);
}

static struct obj_s3_cred *provider(void)
{
	struct obj_s3_settings s = { 0 };
	struct obj_s3_cred *c = NULL;
	char cf[400], cfg[400], err[512];
	snprintf(cf, sizeof(cf), "%s/credentials", dir);
	snprintf(cfg, sizeof(cfg), "%s/config", dir);
	s.profile = (char *)"tick";
	s.cred_file = cf;
	s.config_file = cfg;
	ck_assert_msg(obj_s3_cred_create(&c, &s, NULL, "bucket", err, sizeof(err)) == 0, "%s", err);
	return c;
}

START_TEST(test_obj_s3_cred_refresh__ahead_of_expiry)
{
	struct obj_s3_cred *c;
	struct obj_s3_creds *k = NULL, *first = NULL;
	char err[256];
	int changes = 0;

	write_counting_process();
	c = provider();
	ck_assert_int_eq(obj_s3_cred_get(c, &first, err, sizeof(err)), 0);
	ck_assert_str_eq(first->access_key, "K1");
	/* For 9 s, every snapshot is valid, and the key keeps changing. */
	for (int i = 0; i < 90; i++) {
		ck_assert_int_eq(obj_s3_cred_get(c, &k, err, sizeof(err)), 0);
		ck_assert_int_gt(k->expires, (int64_t)time(NULL));
		if (strcmp(k->access_key, "K1"))
			changes++;
		obj_s3_cred_put(c, k);
		usleep(100000);
	}
	ck_assert_int_gt(changes, 0);
	/* A snapshot pinned across refreshes is intact (it is freed at put). */
	ck_assert_str_eq(first->access_key, "K1");
	ck_assert_str_eq(first->secret_key, "S");
	obj_s3_cred_put(c, first);
	obj_s3_cred_free(c);
	/* 4-second keys refreshed 2 s ahead: about one run every 2 s. */
	{
		char path[400];
		int n = 0;
		FILE *f;
		snprintf(path, sizeof(path), "%s/n", dir);
		f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(fscanf(f, "%d", &n), 1);
		fclose(f);
		ck_assert_int_ge(n, 4);
	}
}
END_TEST

START_TEST(test_obj_s3_cred_refresh__refused_key_retried_once)
{
	struct obj_s3_cred *c;
	struct obj_s3_creds *k = NULL, *k2 = NULL;
	char err[256];

	write_counting_process();
	c = provider();
	ck_assert_int_eq(obj_s3_cred_get(c, &k, err, sizeof(err)), 0);
	/* The store refused k: one refresh, a different set to retry with. */
	ck_assert_int_eq(obj_s3_cred_expired(c, k), 1);
	ck_assert_int_eq(obj_s3_cred_get(c, &k2, err, sizeof(err)), 0);
	ck_assert_str_ne(k2->access_key, k->access_key);
	/* A second caller refused with the same old set does not refresh again. */
	ck_assert_int_eq(obj_s3_cred_expired(c, k), 1);
	obj_s3_cred_put(c, k);
	obj_s3_cred_put(c, k2);
	obj_s3_cred_free(c);
}
END_TEST

START_TEST(test_obj_s3_cred_refresh__failing_source_never_hands_out_expired)
{
	struct obj_s3_cred *c;
	struct obj_s3_creds *k = NULL;
	char err[256];

	write_counting_process();
	c = provider();
	/* From now on the process fails. */
	write_file("fail", "", 0600);
	sleep(4);
	ck_assert_int_eq(obj_s3_cred_get(c, &k, err, sizeof(err)), -EAGAIN);
	ck_assert_ptr_null(k);
	ck_assert_msg(strstr(err, "have expired and could not be refreshed") != NULL, "%s", err);
	obj_s3_cred_free(c);
}
END_TEST

START_TEST(test_obj_s3_cred_refresh__unsigned)
{
	struct obj_s3_settings s = { 0 };
	struct obj_s3_config conf = { .path_style = -1, .no_sign_request = 1 };
	struct obj_s3_cred *c = NULL;
	struct obj_s3_creds *k = (void *)1;
	char err[256];
	ck_assert_int_eq(obj_s3_cred_create(&c, &s, &conf, "bucket", err, sizeof(err)), 0);
	ck_assert_int_eq(obj_s3_cred_get(c, &k, err, sizeof(err)), 0);
	ck_assert_ptr_null(k);
	ck_assert_int_eq(obj_s3_cred_expired(c, k), 0);
	obj_s3_cred_free(c);
}
END_TEST

static Suite *cred_suite(void)
{
	Suite *s = suite_create("obj_s3_cred");
	TCase *t = tcase_create("parse");
	tcase_add_checked_fixture(t, cred_setup, cred_teardown);
	tcase_add_test(t, test_obj_s3_cred_json__flat_object);
	tcase_add_test(t, test_obj_s3_cred_json__refuses_malformed);
	tcase_add_test(t, test_obj_s3_cred_time__iso8601);
	tcase_add_test(t, test_obj_s3_cred_parse__process_json);
	tcase_add_test(t, test_obj_s3_cred_parse__container_json);
	tcase_add_test(t, test_obj_s3_cred_parse__sts_xml);
	suite_add_tcase(s, t);
	t = tcase_create("chain");
	tcase_add_checked_fixture(t, cred_setup, cred_teardown);
	tcase_add_test(t, test_obj_s3_cred_passwd__lines_and_mode);
	tcase_add_test(t, test_obj_s3_cred_profile__resolution);
	tcase_add_test(t, test_obj_s3_cred_chain__profile_kinds);
	tcase_add_test(t, test_obj_s3_cred_chain__imds_unreachable_fails_fast);
	suite_add_tcase(s, t);
	t = tcase_create("refresh");
	tcase_set_timeout(t, 60);
	tcase_add_checked_fixture(t, cred_setup, cred_teardown);
	tcase_add_test(t, test_obj_s3_cred_refresh__ahead_of_expiry);
	tcase_add_test(t, test_obj_s3_cred_refresh__refused_key_retried_once);
	tcase_add_test(t, test_obj_s3_cred_refresh__failing_source_never_hands_out_expired);
	tcase_add_test(t, test_obj_s3_cred_refresh__unsigned);
	suite_add_tcase(s, t);
	return s;
}

CHECK_MAIN(cred_suite)
