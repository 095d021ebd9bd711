/*
 * obj_s3_cred_src.c - where S3 credentials come from: the sources of the
 * AWS credential chain, how each is fetched, and the order they are tried
 * in. (Their answers and files are read by obj_s3_cred_parse.c.)
 *
 * THE CHAIN (the AWS SDKs' order; the first source that is configured
 * is used, and a configured source that fails is an error, not a reason
 * to try the next one)
 *   0. -o credentials_file=PATH   s3fs-style lines "ACCESS_KEY_ID:SECRET"
 *                                 (or "BUCKET:ACCESS_KEY_ID:SECRET", which
 *                                 wins for that bucket); '#' comments. The
 *                                 file must not be accessible to group or
 *                                 others. Replaces the whole chain.
 *   1. environment                AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
 *                                 (+ AWS_SESSION_TOKEN)
 *   2. web identity               AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *                                 (+ AWS_ROLE_SESSION_NAME): STS
 *                                 AssumeRoleWithWebIdentity, unsigned
 *   3. the profile                conf->profile, AWS_PROFILE, "default", from
 *                                 the credentials file then the config file:
 *                                   role_arn + source_profile: STS AssumeRole
 *                                     signed with the source profile's
 *                                     credentials (resolved the same way,
 *                                     up to 4 levels deep)
 *                                   role_arn + web_identity_token_file
 *                                   aws_access_key_id + aws_secret_access_key
 *                                     (+ aws_session_token)
 *                                   credential_process
 *   4. ECS container credentials  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 *                                 (http://169.254.170.2 + it) or
 *                                 AWS_CONTAINER_CREDENTIALS_FULL_URI, with
 *                                 AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)
 *   5. EC2 instance metadata      IMDSv2 at AWS_EC2_METADATA_SERVICE_ENDPOINT
 *                                 or http://169.254.169.254, unless
 *                                 AWS_EC2_METADATA_DISABLED=true; 1 s to
 *                                 connect, so elsewhere it fails fast.
 *   Nothing found: -EACCES, "no S3 credentials found", listing what was
 *   tried.
 *
 * STS
 *   Endpoint AWS_ENDPOINT_URL_STS, else https://sts.REGION.amazonaws.com.
 *   Requests are form POSTs (Action=...&Version=2011-06-15&...), so the
 *   web identity token travels in the body, not the URL. AssumeRole is
 *   signed with SigV4 for service "sts" in the S3 settings' region.
 *
 * A source can be fetched again and again: that is how the refresher
 * (obj_s3_cred.c) renews temporary credentials. Every answer buffer is
 * wiped after parsing; no message built here contains a secret, a token
 * or a response body (STS's error Code and Message are kept, sanitised).
 */
#include "objstore/obj_s3_int.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define OBJ_S3_STS_VERSION "2011-06-15"
#define OBJ_S3_ECS_HOST "http://169.254.170.2"
#define OBJ_S3_IMDS_HOST "http://169.254.169.254"
#define OBJ_S3_IMDS_TTL "21600"
#define OBJ_S3_IMDS_CONNECT_MS 1000u
#define OBJ_S3_IMDS_TIMEOUT_MS 3000u
#define OBJ_S3_ECS_CONNECT_MS 2000u
#define OBJ_S3_ECS_TIMEOUT_MS 5000u
#define OBJ_S3_PROCESS_TIMEOUT_MS 60000u
#define OBJ_S3_PROFILE_DEPTH 4

enum obj_s3_src_kind {
	OBJ_S3_SRC_STATIC,
	OBJ_S3_SRC_PROCESS,
	OBJ_S3_SRC_ASSUME_ROLE,
	OBJ_S3_SRC_WEB_IDENTITY,
	OBJ_S3_SRC_ECS,
	OBJ_S3_SRC_IMDS,
};

struct obj_s3_cred_src {
	enum obj_s3_src_kind kind;
	char name[256];                   /* for messages: "EC2 instance metadata" */
	struct obj_s3_creds *fixed;       /* STATIC */
	char *command;                    /* PROCESS */
	char *role_arn;                   /* ASSUME_ROLE, WEB_IDENTITY */
	char *session_name;
	char *external_id;                /* ASSUME_ROLE, may be NULL */
	char *duration;                   /* ASSUME_ROLE, may be NULL */
	struct obj_s3_cred_src *source;   /* ASSUME_ROLE: the source profile's */
	char *token_file;                 /* WEB_IDENTITY; ECS auth token file */
	char *token;                      /* ECS auth token (a secret) */
	char *url;                        /* STS endpoint, ECS URL, IMDS base */
	char *region;                     /* STS signing region */
	int insecure_tls;
	char *ca_bundle;
};

static const char *obj_s3_src_env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static void obj_s3_src_wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

const char *obj_s3_cred_src_name(const struct obj_s3_cred_src *s)
{
	return s->name;
}

void obj_s3_cred_src_free(struct obj_s3_cred_src *s)
{
	if (!s)
		return;
	obj_s3_creds_free(s->fixed);
	free(s->command);
	free(s->role_arn);
	free(s->session_name);
	free(s->external_id);
	free(s->duration);
	obj_s3_cred_src_free(s->source);
	free(s->token_file);
	obj_s3_src_wipe_free(s->token);
	free(s->url);
	free(s->region);
	free(s->ca_bundle);
	free(s);
}

static struct obj_s3_cred_src *obj_s3_src_new(enum obj_s3_src_kind kind, const struct obj_s3_settings *set,
					      const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static struct obj_s3_cred_src *obj_s3_src_new(enum obj_s3_src_kind kind, const struct obj_s3_settings *set,
					      const char *fmt, ...)
{
	struct obj_s3_cred_src *s = calloc(1, sizeof(*s));
	va_list ap;

	if (!s)
		return NULL;
	s->kind = kind;
	va_start(ap, fmt);
	vsnprintf(s->name, sizeof(s->name), fmt, ap);
	va_end(ap);
	s->insecure_tls = set->insecure_tls;
	if (set->region && !(s->region = strdup(set->region)))
		goto nomem;
	if (set->ca_bundle && !(s->ca_bundle = strdup(set->ca_bundle)))
		goto nomem;
	return s;
nomem:
	obj_s3_cred_src_free(s);
	return NULL;
}

/* obj_s3_cred_io_http for a credential source: a transport failure means
 * the source gave no credentials, -EACCES (reason in err). */
static int obj_s3_src_http(const struct obj_s3_cred_http *h, long *status, struct obj_s3_buf *resp,
			   char *err, size_t errlen)
{
	return obj_s3_cred_io_http(h, status, resp, err, errlen) ? -EACCES : 0;
}

/*
 * A small secret file (web identity token, ECS authorization token) into
 * *out, trailing newlines removed. Returns 0 or -EACCES (message names
 * the file).
 */
static int obj_s3_src_read_small(const char *path, char **out, const char *what, char *err,
				 size_t errlen)
{
	char *buf = NULL;
	size_t n = 0;
	int fd, rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		obj_s3_errf(err, errlen, "%s %s: %s", what, path, util_strerror(-errno));
		return -EACCES;
	}
	rc = obj_s3_cred_parse_read_fd(fd, what, path, &buf, &n, err, errlen);
	if (rc) {
		close(fd);
		return rc;
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	if (!n) {
		obj_s3_errf(err, errlen, "%s %s is empty", what, path);
		rc = -EACCES;
		goto out;
	}
	*out = strdup(buf);
	if (!*out) {
		obj_s3_errf(err, errlen, "out of memory");
		rc = -ENOMEM;
	}
out:
	OPENSSL_cleanse(buf, OBJ_S3_SECRET_FILE_MAX + 1);
	free(buf);
	close(fd);
	return rc;
}


/* ---- fetching ------------------------------------------------------------------------ */

static int obj_s3_src_form(struct obj_s3_buf *b, const char *key, const char *val)
{
	if (!val)
		return 0;
	obj_s3_buf_addf(b, "%s%s=", b->len ? "&" : "", key);
	obj_s3_uri_encode(b, val, strlen(val), 0);
	return obj_s3_buf_err(b);
}

/* POST body to STS; sign with `signer` when not NULL. */
static int obj_s3_src_sts(struct obj_s3_cred_src *s, const char *body, const struct obj_s3_creds *signer,
			  struct obj_s3_creds **out, char *err, size_t errlen)
{
	struct obj_s3_cred_http h = { 0 };
	struct obj_s3_buf resp = { 0 }, host = { 0 }, hx = { 0 };
	char *scheme = NULL, *hostname = NULL, *auth = NULL;
	char amz_date[17], hash[OBJ_S3_SHA256_HEX_LEN + 1], e2[200];
	const char *hdrs[6];
	char *hdr_lines[4] = { NULL, NULL, NULL, NULL };
	unsigned port = 0;
	size_t nh = 0;
	long status = 0;
	int rc;

	if ((rc = obj_s3_endpoint_parse(s->url, &scheme, &hostname, &port, e2, sizeof(e2)))) {
		obj_s3_errf(err, errlen, "STS endpoint: %s", e2);
		return -EINVAL;
	}
	if (port && !((port == 80 && !strcmp(scheme, "http")) || (port == 443 && !strcmp(scheme, "https"))))
		obj_s3_buf_addf(&host, "%s:%u", hostname, port);
	else
		obj_s3_buf_adds(&host, hostname);
	obj_s3_buf_addf(&hx, "%s://%s/", scheme, host.p ? host.p : "");
	rc = -ENOMEM;
	if (obj_s3_buf_err(&host) || obj_s3_buf_err(&hx))
		goto nomem;
	hdrs[nh++] = "Content-Type: application/x-www-form-urlencoded; charset=utf-8";
	hdrs[nh++] = "Accept: application/xml";
	if (signer) {
		struct obj_s3_header sh[4];
		struct obj_s3_sign_input in;
		size_t ns = 0;
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
		if ((rc = obj_s3_sha256_hex(body, strlen(body), hash)))
			goto nomem;
		sh[ns++] = (struct obj_s3_header){ "Host", host.p };
		sh[ns++] = (struct obj_s3_header){ "X-Amz-Date", amz_date };
		sh[ns++] = (struct obj_s3_header){ "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" };
		if (signer->session_token)
			sh[ns++] = (struct obj_s3_header){ "X-Amz-Security-Token", signer->session_token };
		in = (struct obj_s3_sign_input){
			.method = "POST", .path = "/", .headers = sh, .nheaders = ns,
			.payload_hash = hash, .amz_date = amz_date, .region = s->region ? s->region : OBJ_S3_DFLT_REGION,
			.service = "sts", .access_key = signer->access_key, .secret_key = signer->secret_key,
		};
		if ((rc = obj_s3_sign(&in, &auth, NULL, NULL)))
			goto nomem;
		if (asprintf(&hdr_lines[0], "X-Amz-Date: %s", amz_date) < 0 ||
		    asprintf(&hdr_lines[1], "Authorization: %s", auth) < 0 ||
		    (signer->session_token &&
		     asprintf(&hdr_lines[2], "X-Amz-Security-Token: %s", signer->session_token) < 0)) {
			rc = -ENOMEM;
			goto nomem;
		}
		for (int i = 0; i < 3; i++)
			if (hdr_lines[i])
				hdrs[nh++] = hdr_lines[i];
	}
	hdrs[nh] = NULL;
	h = (struct obj_s3_cred_http){
		.method = "POST", .url = hx.p, .headers = hdrs, .body = body,
		.connect_timeout_ms = OBJ_S3_DFLT_CONNECT_TIMEOUT_MS, .timeout_ms = OBJ_S3_DFLT_REQUEST_TIMEOUT_MS,
		.insecure_tls = s->insecure_tls, .ca_bundle = s->ca_bundle,
	};
	if ((rc = obj_s3_src_http(&h, &status, &resp, err, errlen)))
		goto out;
	if (status == 200) {
		rc = obj_s3_cred_parse_sts(resp.p, resp.len, out, err, errlen);
	} else {
		/* An error answer: keep STS's Code and Message when it has them. */
		struct obj_s3_creds *none = NULL;
		int prc = obj_s3_cred_parse_sts(resp.p, resp.len, &none, e2, sizeof(e2));
		obj_s3_creds_free(none);
		obj_s3_errf(err, errlen, "STS %s: HTTP %ld%s%s", hx.p, status, prc ? " " : "",
				prc && strncmp(e2, "STS: ", 5) == 0 ? e2 + 5 : "");
		rc = -EACCES;
	}
	goto out;
nomem:
	obj_s3_errf(err, errlen, "out of memory");
out:
	for (int i = 0; i < 4; i++)
		obj_s3_src_wipe_free(hdr_lines[i]);
	obj_s3_src_wipe_free(auth);
	obj_s3_cred_io_wipe(&resp);
	obj_s3_buf_free(&host);
	obj_s3_buf_free(&hx);
	free(scheme);
	free(hostname);
	return rc;
}

static int obj_s3_src_fetch_role(struct obj_s3_cred_src *s, struct obj_s3_creds **out, char *err,
				 size_t errlen)
{
	struct obj_s3_buf body = { 0 };
	struct obj_s3_creds *src_creds = NULL;
	char *jwt = NULL;
	char e2[300];
	int rc;

	if (s->kind == OBJ_S3_SRC_WEB_IDENTITY) {
		if ((rc = obj_s3_src_read_small(s->token_file, &jwt, "web identity token file", err, errlen)))
			return rc;
	} else if ((rc = obj_s3_cred_src_fetch(s->source, &src_creds, e2, sizeof(e2)))) {
		obj_s3_errf(err, errlen, "source profile: %s", e2);
		return rc;
	}
	rc = obj_s3_src_form(&body, "Action", s->kind == OBJ_S3_SRC_WEB_IDENTITY ? "AssumeRoleWithWebIdentity" : "AssumeRole");
	if (!rc)
		rc = obj_s3_src_form(&body, "Version", OBJ_S3_STS_VERSION);
	if (!rc)
		rc = obj_s3_src_form(&body, "RoleArn", s->role_arn);
	if (!rc)
		rc = obj_s3_src_form(&body, "RoleSessionName", s->session_name);
	if (!rc)
		rc = obj_s3_src_form(&body, "ExternalId", s->external_id);
	if (!rc)
		rc = obj_s3_src_form(&body, "DurationSeconds", s->duration);
	if (!rc)
		rc = obj_s3_src_form(&body, "WebIdentityToken", jwt);
	if (rc) {
		obj_s3_errf(err, errlen, "out of memory");
	} else {
		rc = obj_s3_src_sts(s, body.p, src_creds, out, e2, sizeof(e2));
		if (rc)
			obj_s3_errf(err, errlen, "%s", e2);
	}
	obj_s3_cred_io_wipe(&body);
	obj_s3_src_wipe_free(jwt);
	obj_s3_creds_free(src_creds);
	return rc;
}

static int obj_s3_src_fetch_ecs(struct obj_s3_cred_src *s, struct obj_s3_creds **out, char *err,
				size_t errlen)
{
	struct obj_s3_buf resp = { 0 };
	char *tok = NULL, *line = NULL;
	const char *hdrs[2] = { NULL, NULL };
	struct obj_s3_cred_http h;
	long status = 0;
	int rc;

	if (s->token_file) {
		if ((rc = obj_s3_src_read_small(s->token_file, &tok, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", err, errlen)))
			return rc;
	}
	if (tok || s->token) {
		if (asprintf(&line, "Authorization: %s", tok ? tok : s->token) < 0) {
			line = NULL;
			rc = -ENOMEM;
			obj_s3_errf(err, errlen, "out of memory");
			goto out;
		}
		hdrs[0] = line;
	}
	h = (struct obj_s3_cred_http){
		.method = "GET", .url = s->url, .headers = hdrs,
		.connect_timeout_ms = OBJ_S3_ECS_CONNECT_MS, .timeout_ms = OBJ_S3_ECS_TIMEOUT_MS,
		.no_proxy = 1, .insecure_tls = s->insecure_tls, .ca_bundle = s->ca_bundle,
	};
	if ((rc = obj_s3_src_http(&h, &status, &resp, err, errlen)))
		goto out;
	if (status != 200) {
		obj_s3_errf(err, errlen, "container credentials %s: HTTP %ld", s->url, status);
		rc = -EACCES;
		goto out;
	}
	rc = obj_s3_cred_parse_container(resp.p, resp.len, out, "container credentials", err, errlen);
out:
	obj_s3_src_wipe_free(line);
	obj_s3_src_wipe_free(tok);
	obj_s3_cred_io_wipe(&resp);
	return rc;
}

static int obj_s3_src_fetch_imds(struct obj_s3_cred_src *s, struct obj_s3_creds **out, char *err,
				 size_t errlen)
{
	struct obj_s3_buf resp = { 0 }, url = { 0 };
	char *tok_line = NULL, *role = NULL;
	const char *hdrs[2] = { "X-aws-ec2-metadata-token-ttl-seconds: " OBJ_S3_IMDS_TTL, NULL };
	struct obj_s3_cred_http h = {
		.method = "PUT", .headers = hdrs, .connect_timeout_ms = OBJ_S3_IMDS_CONNECT_MS,
		.timeout_ms = OBJ_S3_IMDS_TIMEOUT_MS, .no_proxy = 1,
	};
	long status = 0;
	int rc;

	/* 1. a session token */
	obj_s3_buf_addf(&url, "%s/latest/api/token", s->url);
	if ((rc = obj_s3_buf_err(&url)))
		goto nomem;
	h.url = url.p;
	if ((rc = obj_s3_src_http(&h, &status, &resp, err, errlen)))
		goto out;
	if (status != 200 || !resp.len) {
		obj_s3_errf(err, errlen, "%s: HTTP %ld", url.p, status);
		rc = -EACCES;
		goto out;
	}
	if (asprintf(&tok_line, "X-aws-ec2-metadata-token: %.*s", (int)strcspn(resp.p, "\r\n"), resp.p) < 0) {
		tok_line = NULL;
		goto nomem;
	}
	obj_s3_cred_io_wipe(&resp);
	hdrs[0] = tok_line;

	/* 2. the role's name */
	obj_s3_buf_free(&url);
	obj_s3_buf_addf(&url, "%s/latest/meta-data/iam/security-credentials/", s->url);
	if ((rc = obj_s3_buf_err(&url)))
		goto nomem;
	h.method = "GET";
	h.url = url.p;
	if ((rc = obj_s3_src_http(&h, &status, &resp, err, errlen)))
		goto out;
	if (status != 200 || !resp.len) {
		obj_s3_errf(err, errlen, "%s: HTTP %ld%s", url.p, status,
				status == 404 ? " (no IAM role attached to this instance)" : "");
		rc = -EACCES;
		goto out;
	}
	role = strndup(resp.p, strcspn(resp.p, "\r\n"));
	if (!role)
		goto nomem;
	for (const char *c = role; *c; c++) {
		if (!isalnum((unsigned char)*c) && !strchr("+=,.@_-", *c)) {
			obj_s3_errf(err, errlen, "%s: malformed role name", url.p);
			rc = -EACCES;
			goto out;
		}
	}
	obj_s3_cred_io_wipe(&resp);

	/* 3. its credentials */
	obj_s3_buf_free(&url);
	obj_s3_buf_addf(&url, "%s/latest/meta-data/iam/security-credentials/%s", s->url, role);
	if ((rc = obj_s3_buf_err(&url)))
		goto nomem;
	h.url = url.p;
	if ((rc = obj_s3_src_http(&h, &status, &resp, err, errlen)))
		goto out;
	if (status != 200) {
		obj_s3_errf(err, errlen, "%s: HTTP %ld", url.p, status);
		rc = -EACCES;
		goto out;
	}
	rc = obj_s3_cred_parse_container(resp.p, resp.len, out, "EC2 instance metadata", err, errlen);
	goto out;
nomem:
	rc = -ENOMEM;
	obj_s3_errf(err, errlen, "out of memory");
out:
	obj_s3_src_wipe_free(tok_line);
	free(role);
	obj_s3_cred_io_wipe(&resp);
	obj_s3_buf_free(&url);
	return rc;
}

int obj_s3_cred_src_fetch(struct obj_s3_cred_src *s, struct obj_s3_creds **out, char *err, size_t errlen)
{
	struct obj_s3_buf o = { 0 };
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	switch (s->kind) {
	case OBJ_S3_SRC_STATIC:
		rc = obj_s3_creds_new(out, s->fixed->access_key, s->fixed->secret_key,
				      s->fixed->session_token, s->fixed->expires);
		if (rc)
			obj_s3_errf(err, errlen, "out of memory");
		return rc;
	case OBJ_S3_SRC_PROCESS:
		rc = obj_s3_cred_io_process(s->command, OBJ_S3_PROCESS_TIMEOUT_MS, &o, err, errlen);
		if (!rc)
			rc = obj_s3_cred_parse_process(o.p, o.len, out, err, errlen);
		obj_s3_cred_io_wipe(&o);
		return rc;
	case OBJ_S3_SRC_ASSUME_ROLE:
	case OBJ_S3_SRC_WEB_IDENTITY:
		return obj_s3_src_fetch_role(s, out, err, errlen);
	case OBJ_S3_SRC_ECS:
		return obj_s3_src_fetch_ecs(s, out, err, errlen);
	case OBJ_S3_SRC_IMDS:
		return obj_s3_src_fetch_imds(s, out, err, errlen);
	}
	return -EINVAL;
}

/* ---- building the chain ----------------------------------------------------------------- */

static int obj_s3_src_static(struct obj_s3_cred_src **out, const struct obj_s3_settings *set,
			     const char *ak, const char *sk, const char *tok, const char *name)
{
	struct obj_s3_cred_src *s = obj_s3_src_new(OBJ_S3_SRC_STATIC, set, "%s", name);
	if (!s || obj_s3_creds_new(&s->fixed, ak, sk, tok, 0)) {
		obj_s3_cred_src_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

static int obj_s3_src_sts_url(struct obj_s3_cred_src *s, const struct obj_s3_settings *set)
{
	const char *v = obj_s3_src_env("AWS_ENDPOINT_URL_STS");
	if (v)
		s->url = strdup(v);
	else if (asprintf(&s->url, "https://sts.%s.amazonaws.com", set->region ? set->region : OBJ_S3_DFLT_REGION) < 0)
		s->url = NULL;
	return s->url ? 0 : -ENOMEM;
}

static int obj_s3_src_session_name(struct obj_s3_cred_src *s, const char *given)
{
	if (given)
		s->session_name = strdup(given);
	else if (asprintf(&s->session_name, "shalefs-%ld-%lld", (long)getpid(), (long long)time(NULL)) < 0)
		s->session_name = NULL;
	return s->session_name ? 0 : -ENOMEM;
}

/*
 * The source of profile `name`, or *out = NULL when the profile holds no
 * credentials at all. depth bounds source_profile chains (and cycles).
 */
static int obj_s3_src_profile(struct obj_s3_cred_src **out, const struct obj_s3_settings *set,
			      const char *name, int depth, char *err, size_t errlen)
{
	struct obj_s3_profile p;
	struct obj_s3_cred_src *s = NULL;
	const char *files = set->cred_file ? set->cred_file : "~/.aws/credentials";
	int rc;

	*out = NULL;
	if ((rc = obj_s3_profile_load(&p, set->cred_file, set->config_file, name))) {
		obj_s3_errf(err, errlen, "cannot read the AWS configuration files (too large or unreadable)");
		return rc == -ENOMEM ? rc : -EACCES;
	}
	if (p.v[OBJ_S3_PROFILE_ROLE_ARN]) {
		if (depth >= OBJ_S3_PROFILE_DEPTH) {
			obj_s3_errf(err, errlen, "profile '%s': source_profile chain longer than %d (a cycle?)",
					name, OBJ_S3_PROFILE_DEPTH);
			rc = -EACCES;
			goto out;
		}
		if (p.v[OBJ_S3_PROFILE_WEB_IDENTITY_TOKEN_FILE]) {
			s = obj_s3_src_new(OBJ_S3_SRC_WEB_IDENTITY, set, "profile '%s' web identity (role_arn)", name);
			if (!s || !(s->token_file = strdup(p.v[OBJ_S3_PROFILE_WEB_IDENTITY_TOKEN_FILE])))
				goto nomem;
		} else if (p.v[OBJ_S3_PROFILE_SOURCE_PROFILE]) {
			char e2[300];
			s = obj_s3_src_new(OBJ_S3_SRC_ASSUME_ROLE, set, "profile '%s' role_arn (source_profile '%s')",
					   name, p.v[OBJ_S3_PROFILE_SOURCE_PROFILE]);
			if (!s)
				goto nomem;
			if (!strcmp(p.v[OBJ_S3_PROFILE_SOURCE_PROFILE], name) && p.v[OBJ_S3_PROFILE_ACCESS_KEY]) {
				/* A profile that names itself: its own static keys. */
				rc = obj_s3_src_static(&s->source, set, p.v[OBJ_S3_PROFILE_ACCESS_KEY],
						       p.v[OBJ_S3_PROFILE_SECRET_KEY] ? p.v[OBJ_S3_PROFILE_SECRET_KEY] : "",
						       p.v[OBJ_S3_PROFILE_SESSION_TOKEN], "static keys");
				if (rc)
					goto nomem;
			} else {
				rc = obj_s3_src_profile(&s->source, set, p.v[OBJ_S3_PROFILE_SOURCE_PROFILE], depth + 1,
							e2, sizeof(e2));
				if (rc) {
					obj_s3_errf(err, errlen, "profile '%s': source_profile: %s", name, e2);
					goto out;
				}
				if (!s->source) {
					obj_s3_errf(err, errlen, "profile '%s': source_profile '%s' holds no credentials",
							name, p.v[OBJ_S3_PROFILE_SOURCE_PROFILE]);
					rc = -EACCES;
					goto out;
				}
			}
			if ((p.v[OBJ_S3_PROFILE_EXTERNAL_ID] && !(s->external_id = strdup(p.v[OBJ_S3_PROFILE_EXTERNAL_ID]))) ||
			    (p.v[OBJ_S3_PROFILE_DURATION] && !(s->duration = strdup(p.v[OBJ_S3_PROFILE_DURATION]))))
				goto nomem;
		} else {
			obj_s3_errf(err, errlen,
					"profile '%s': role_arn needs source_profile or web_identity_token_file%s",
					name, p.v[OBJ_S3_PROFILE_CREDENTIAL_SOURCE] ? " (credential_source is not supported)" : "");
			rc = -EACCES;
			goto out;
		}
		if (!(s->role_arn = strdup(p.v[OBJ_S3_PROFILE_ROLE_ARN])) ||
		    obj_s3_src_session_name(s, p.v[OBJ_S3_PROFILE_ROLE_SESSION_NAME]) || obj_s3_src_sts_url(s, set))
			goto nomem;
	} else if (p.v[OBJ_S3_PROFILE_ACCESS_KEY] || p.v[OBJ_S3_PROFILE_SECRET_KEY]) {
		char nm[200];
		if (!p.v[OBJ_S3_PROFILE_ACCESS_KEY] || !p.v[OBJ_S3_PROFILE_SECRET_KEY]) {
			obj_s3_errf(err, errlen, "S3 credentials: profile '%s' in %s has only one of "
					"aws_access_key_id and aws_secret_access_key", name, files);
			rc = -EACCES;
			goto out;
		}
		snprintf(nm, sizeof(nm), "profile '%s' static keys", name);
		if (obj_s3_src_static(&s, set, p.v[OBJ_S3_PROFILE_ACCESS_KEY], p.v[OBJ_S3_PROFILE_SECRET_KEY],
				      p.v[OBJ_S3_PROFILE_SESSION_TOKEN], nm))
			goto nomem;
	} else if (p.v[OBJ_S3_PROFILE_CREDENTIAL_PROCESS]) {
		s = obj_s3_src_new(OBJ_S3_SRC_PROCESS, set, "profile '%s' credential_process", name);
		if (!s || !(s->command = strdup(p.v[OBJ_S3_PROFILE_CREDENTIAL_PROCESS])))
			goto nomem;
	}
	*out = s;
	s = NULL;
	rc = 0;
	goto out;
nomem:
	rc = -ENOMEM;
	obj_s3_errf(err, errlen, "out of memory");
out:
	obj_s3_cred_src_free(s);
	obj_s3_profile_clear(&p);
	return rc;
}

static int obj_s3_src_imds_disabled(void)
{
	const char *v = obj_s3_src_env("AWS_EC2_METADATA_DISABLED");
	return v && !strcasecmp(v, "true");
}

int obj_s3_cred_src_chain(struct obj_s3_cred_src **out, struct obj_s3_creds **first,
			  const struct obj_s3_settings *set, const struct obj_s3_config *conf,
			  const char *bucket, char *err, size_t errlen)
{
	struct obj_s3_cred_src *s = NULL;
	struct obj_s3_buf tried = { 0 };
	char e2[400];
	const char *v;
	int rc, is_imds = 0;

	*out = NULL;
	*first = NULL;
	if (err && errlen)
		err[0] = '\0';

	/* 0. -o credentials_file= */
	if (conf && conf->credentials_file && *conf->credentials_file) {
		struct obj_s3_creds *k = NULL;
		if ((rc = obj_s3_cred_parse_passwd(conf->credentials_file, bucket, &k, err, errlen)))
			return rc;
		s = obj_s3_src_new(OBJ_S3_SRC_STATIC, set, "credentials file %s", conf->credentials_file);
		if (!s) {
			obj_s3_creds_free(k);
			goto nomem;
		}
		s->fixed = k;
		goto fetch;
	}

	/* 1. environment */
	if (obj_s3_src_env("AWS_ACCESS_KEY_ID") || obj_s3_src_env("AWS_SECRET_ACCESS_KEY")) {
		if (!obj_s3_src_env("AWS_ACCESS_KEY_ID") || !obj_s3_src_env("AWS_SECRET_ACCESS_KEY")) {
			obj_s3_errf(err, errlen, "S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
			return -EACCES;
		}
		if (obj_s3_src_static(&s, set, obj_s3_src_env("AWS_ACCESS_KEY_ID"), obj_s3_src_env("AWS_SECRET_ACCESS_KEY"),
				      obj_s3_src_env("AWS_SESSION_TOKEN"), "the environment (AWS_ACCESS_KEY_ID)"))
			goto nomem;
		goto fetch;
	}
	obj_s3_buf_adds(&tried, "environment (AWS_ACCESS_KEY_ID unset)");

	/* 2. web identity */
	if ((v = obj_s3_src_env("AWS_WEB_IDENTITY_TOKEN_FILE"))) {
		if (!obj_s3_src_env("AWS_ROLE_ARN")) {
			obj_s3_errf(err, errlen, "S3 credentials: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
			obj_s3_buf_free(&tried);
			return -EACCES;
		}
		s = obj_s3_src_new(OBJ_S3_SRC_WEB_IDENTITY, set, "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)");
		if (!s || !(s->token_file = strdup(v)) || !(s->role_arn = strdup(obj_s3_src_env("AWS_ROLE_ARN"))) ||
		    obj_s3_src_session_name(s, obj_s3_src_env("AWS_ROLE_SESSION_NAME")) || obj_s3_src_sts_url(s, set))
			goto nomem;
		goto fetch;
	}
	obj_s3_buf_adds(&tried, ", web identity (AWS_WEB_IDENTITY_TOKEN_FILE unset)");

	/* 3. the profile */
	if ((rc = obj_s3_src_profile(&s, set, set->profile ? set->profile : "default", 0, err, errlen))) {
		obj_s3_buf_free(&tried);
		return rc;
	}
	if (s)
		goto fetch;
	obj_s3_buf_addf(&tried, ", profile '%s' in %s and %s", set->profile ? set->profile : "default",
			set->cred_file ? set->cred_file : "~/.aws/credentials",
			set->config_file ? set->config_file : "~/.aws/config");

	/* 4. ECS */
	if ((v = obj_s3_src_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) ||
	    obj_s3_src_env("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
		const char *tf = obj_s3_src_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
		const char *tk = obj_s3_src_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
		s = obj_s3_src_new(OBJ_S3_SRC_ECS, set, "ECS container credentials");
		if (!s)
			goto nomem;
		if (v) {
			if (asprintf(&s->url, "%s%s%s", OBJ_S3_ECS_HOST, v[0] == '/' ? "" : "/", v) < 0) {
				s->url = NULL;
				goto nomem;
			}
		} else if (!(s->url = strdup(obj_s3_src_env("AWS_CONTAINER_CREDENTIALS_FULL_URI")))) {
			goto nomem;
		}
		if ((tf && !(s->token_file = strdup(tf))) || (!tf && tk && !(s->token = strdup(tk))))
			goto nomem;
		goto fetch;
	}
	obj_s3_buf_adds(&tried, ", ECS (AWS_CONTAINER_CREDENTIALS_* unset)");

	/* 5. IMDS */
	if (obj_s3_src_imds_disabled()) {
		obj_s3_buf_adds(&tried, ", EC2 instance metadata (AWS_EC2_METADATA_DISABLED=true)");
		goto none;
	}
	v = obj_s3_src_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	s = obj_s3_src_new(OBJ_S3_SRC_IMDS, set, "EC2 instance metadata");
	if (!s || !(s->url = strdup(v ? v : OBJ_S3_IMDS_HOST)))
		goto nomem;
	while (s->url[0] && s->url[strlen(s->url) - 1] == '/')
		s->url[strlen(s->url) - 1] = '\0';
	is_imds = 1;

fetch:
	rc = obj_s3_cred_src_fetch(s, first, e2, sizeof(e2));
	if (rc == -ENOMEM)
		goto nomem;
	if (rc && is_imds) {
		obj_s3_buf_addf(&tried, ", EC2 instance metadata (%s)", e2);
		goto none;
	}
	if (rc) {
		obj_s3_errf(err, errlen, "S3 credentials from %s: %s", s->name, e2);
		obj_s3_cred_src_free(s);
		obj_s3_buf_free(&tried);
		return -EACCES;
	}
	obj_s3_buf_free(&tried);
	*out = s;
	return 0;

none:
	obj_s3_errf(err, errlen, "no S3 credentials found; tried %s. See CREDENTIALS in shalefs(1)",
			tried.p ? tried.p : "nothing");
	obj_s3_cred_src_free(s);
	obj_s3_buf_free(&tried);
	return -EACCES;
nomem:
	obj_s3_errf(err, errlen, "out of memory");
	obj_s3_cred_src_free(s);
	obj_s3_buf_free(&tried);
	return -ENOMEM;
}
