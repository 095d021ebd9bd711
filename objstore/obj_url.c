/*
 * obj_url.c - the one place store URLs are parsed, and obj_open(), which
 * turns a URL into a backend stack (base ─ fault ─ metrics ─ retry ─
 * dcache ─ crypt).
 * This file only composes: it calls the backends' and wrappers' create
 * functions, and none of them calls back here (obj_close, which the
 * wrappers use on their inner backend, lives in obj_util.c).
 *
 * Accepted forms:
 *   file:///abs/dir       absolute path; trailing slashes are dropped
 *   mem://name            name may be empty ("mem://" is mem://default)
 *   s3://bucket[/prefix]  prefix gains a '/'
 * A path or prefix has no empty, "." or ".." segment (s3://b//x,
 * s3://b/../x, file:///a/../b): S3 keys are not paths, so "x/../y" would
 * be a prefix of its own, not y, and a file:// store must have one name.
 * Bucket names follow AWS's rules (3-63 of [a-z0-9.-], a letter or digit
 * at both ends, no "..", not an IP address, none of the reserved prefixes
 * and suffixes). With path-style requests, or an endpoint that is not
 * AWS's (another S3 service: it decides), the name goes only into the
 * request path, so anything an S3 service may allow is accepted: 3-255 of
 * [A-Za-z0-9._-] (RGW's relaxed names, capitals and underscores among
 * them).
 * Anything else is -EINVAL with a message saying what was expected.
 */
#include "objstore/objstore.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void obj_url_free(struct obj_url *u)
{
	if (!u)
		return;
	free(u->path);
	free(u->bucket);
	free(u->prefix);
	memset(u, 0, sizeof(*u));
}

static int obj_url_bad(const char *url, const char *why)
{
	return obj_fail(-EINVAL, -1, "open", url, "invalid store URL: %s", why);
}

/* AWS's rules for a bucket name (docs.aws.amazon.com, "Bucket naming rules"). */
static const char *obj_url_bucket_aws(const char *b, size_t n)
{
	static const char *const bad_prefix[] = { "xn--", "sthree-", "amzn-s3-demo-", NULL };
	static const char *const bad_suffix[] = { "-s3alias", "--ol-s3", ".mrap", "--x-s3",
						  "--table-s3", NULL };
	unsigned a, b2, c, d;
	char ip[64], tail;

	if (n < 3 || n > 63)
		return "bucket name must be 3-63 characters of a-z, 0-9, '.' and '-'";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)b[i];
		if (!(islower(ch) || isdigit(ch) || ch == '.' || ch == '-'))
			return "bucket name must be 3-63 characters of a-z, 0-9, '.' and '-' "
			       "(capitals and '_' only with -o path_style, on a service that "
			       "allows them)";
		if (ch == '.' && i + 1 < n && b[i + 1] == '.')
			return "bucket name must not contain '..'";
	}
	if (!isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1]))
		return "bucket name must begin and end with a letter or digit";
	memcpy(ip, b, n);
	ip[n] = '\0';
	if (sscanf(ip, "%3u.%3u.%3u.%3u%c", &a, &b2, &c, &d, &tail) == 4)
		return "bucket name must not be an IP address";
	for (int i = 0; bad_prefix[i]; i++)
		if (!strncmp(b, bad_prefix[i], strlen(bad_prefix[i])))
			return "bucket name uses a prefix AWS reserves (xn--, sthree-, amzn-s3-demo-)";
	for (int i = 0; bad_suffix[i]; i++) {
		size_t m = strlen(bad_suffix[i]);
		if (n >= m && !memcmp(b + n - m, bad_suffix[i], m))
			return "bucket name uses a suffix AWS reserves (-s3alias, --ol-s3, .mrap, "
			       "--x-s3, --table-s3)";
	}
	return NULL;
}

/* What an S3 service may allow in a path-style request: RGW's relaxed names
 * (and what obj_s3_create takes). */
static const char *obj_url_bucket_relaxed(const char *b, size_t n)
{
	if (n < 3 || n > 255)
		return "bucket name must be 3-255 characters of A-Z, a-z, 0-9, '.', '-' and '_'";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)b[i];
		if (!(isalnum(ch) || ch == '.' || ch == '-' || ch == '_'))
			return "bucket name must be 3-255 characters of A-Z, a-z, 0-9, '.', '-' "
			       "and '_'";
	}
	return NULL;
}

/* 1 when the host of endpoint URL e is AWS's (*.amazonaws.com[.cn]). */
static int obj_url_endpoint_aws(const char *e)
{
	const char *h = strstr(e, "://");
	size_t n;

	h = h ? h + 3 : e;
	n = strcspn(h, ":/?");
	while (n > 0 && h[n - 1] == '.')
		n--;
	return (n >= 13 && !strncasecmp(h + n - 13, "amazonaws.com", 13)) ||
	       (n >= 16 && !strncasecmp(h + n - 16, "amazonaws.com.cn", 16));
}

/* Relaxed bucket names: path-style asked for, or an endpoint (the option,
 * else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL) that is not AWS's. */
static int obj_url_relaxed(const struct obj_s3_config *c)
{
	const char *e = c ? c->endpoint : NULL;

	if (!c)
		return 0;
	if (c->path_style == 1)
		return 1;
	if (!e || !*e)
		e = getenv("AWS_ENDPOINT_URL_S3");
	if (!e || !*e)
		e = getenv("AWS_ENDPOINT_URL");
	return e && *e && !obj_url_endpoint_aws(e);
}

/* Each '/'-separated segment of p[0..n) is non-empty and not "." or "..".
 * Returns NULL or why not. */
static const char *obj_url_segments(const char *p, size_t n)
{
	size_t i = 0;

	while (i <= n) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		if (j == i)
			return "empty path segment ('//'); write the path with single slashes";
		if ((j - i == 1 && p[i] == '.') || (j - i == 2 && p[i] == '.' && p[i + 1] == '.'))
			return "'.' and '..' path segments are not allowed; write the path "
			       "without them";
		i = j + 1;
	}
	return NULL;
}

int obj_url_parse(struct obj_url *out, const char *url)
{
	return obj_url_parse_conf(out, url, NULL);
}

int obj_url_parse_conf(struct obj_url *out, const char *url, const struct obj_s3_config *s3)
{
	const char *why;

	memset(out, 0, sizeof(*out));
	if (!url || !*url)
		return obj_url_bad("(empty)", "expected file:///abs/dir, s3://bucket[/prefix] or mem://name");

	if (!strncmp(url, "file://", 7)) {
		const char *p = url + 7;
		size_t n;
		if (*p != '/')
			return obj_url_bad(url, "file:// needs an absolute path, as in file:///var/lib/shalefs");
		n = strlen(p);
		while (n > 1 && p[n - 1] == '/')
			n--;
		if (n > 1 && (why = obj_url_segments(p + 1, n - 1)) != NULL)
			return obj_url_bad(url, why);
		out->scheme = OBJ_SCHEME_FILE;
		out->path = strndup(p, n);
		return out->path ? 0 : -ENOMEM;
	}
	if (!strncmp(url, "mem://", 6)) {
		const char *p = url + 6;
		out->scheme = OBJ_SCHEME_MEM;
		out->path = strdup(*p ? p : "default");
		return out->path ? 0 : -ENOMEM;
	}
	if (!strncmp(url, "s3://", 5)) {
		const char *p = url + 5, *slash = strchr(p, '/');
		size_t blen = slash ? (size_t)(slash - p) : strlen(p);
		const char *pfx = slash ? slash + 1 : "";
		size_t plen = strlen(pfx);

		char bucket[256];

		if (blen == 0)
			return obj_url_bad(url, "missing bucket name (s3://bucket[/prefix])");
		if (blen >= sizeof(bucket))
			return obj_url_bad(url, "bucket name longer than 255 characters");
		memcpy(bucket, p, blen);
		bucket[blen] = '\0';
		why = obj_url_relaxed(s3) ? obj_url_bucket_relaxed(bucket, blen) :
					    obj_url_bucket_aws(bucket, blen);
		if (why)
			return obj_url_bad(url, why);
		while (plen > 0 && pfx[plen - 1] == '/')
			plen--;
		if ((slash && plen == 0 && pfx[0] == '/') ||
		    (plen > 0 && (why = obj_url_segments(pfx, plen)) != NULL))
			return obj_url_bad(url, why ? why : "empty path segment ('//'); write the "
					   "path with single slashes");
		out->scheme = OBJ_SCHEME_S3;
		out->bucket = strndup(p, blen);
		out->prefix = malloc(plen + 2);
		if (!out->bucket || !out->prefix) {
			obj_url_free(out);
			return -ENOMEM;
		}
		memcpy(out->prefix, pfx, plen);
		if (plen)
			out->prefix[plen++] = '/';
		out->prefix[plen] = '\0';
		return 0;
	}
	if (strstr(url, "://"))
		return obj_url_bad(url, "unknown scheme (use file://, s3:// or mem://)");
	return obj_url_bad(url, "not a URL; a local store is written file:///abs/dir");
}

/*
 * The fault wrapper's spec: `faults` (may be NULL) plus the crash point
 * from SHALEFS_CRASH_AFTER_OPS=N[,MODE] (docs/faults.md). *out is NULL when
 * no wrapper is wanted: no faults, no crash point and no
 * SHALEFS_CRASH_COUNT_FILE. Otherwise *out is the caller's (free).
 * Returns 0, -EINVAL (malformed variable), -ENOMEM.
 */
static int obj_url_crash_spec(char **out, const char *faults)
{
	const char *crash = getenv("SHALEFS_CRASH_AFTER_OPS");
	const char *count = getenv("SHALEFS_CRASH_COUNT_FILE");
	char n[32], mode[32] = "after";
	const char *comma;
	size_t nlen;

	*out = NULL;
	if (!faults)
		faults = "";
	if (crash && *crash) {
		comma = strchr(crash, ',');
		nlen = comma ? (size_t)(comma - crash) : strlen(crash);
		if (nlen == 0 || nlen >= sizeof(n) || strspn(crash, "0123456789") != nlen ||
		    (comma && (strlen(comma + 1) == 0 || strlen(comma + 1) >= sizeof(mode))))
			return obj_fail(-EINVAL, -1, "SHALEFS_CRASH_AFTER_OPS", crash,
					"expected N[,after|before|put-succeeded]");
		memcpy(n, crash, nlen);
		n[nlen] = '\0';
		if (comma)
			snprintf(mode, sizeof(mode), "%s", comma + 1);
		if (asprintf(out, "%s%scrash_after=%s,crash_mode=%s", faults, *faults ? "," : "", n, mode) < 0) {
			*out = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	if (!*faults && !(count && *count))
		return 0;
	*out = strdup(faults);
	return *out ? 0 : -ENOMEM;
}

int obj_open(struct obj_backend **out, const char *url, const struct obj_config *conf)
{
	static const struct obj_config defaults = OBJ_CONFIG_INIT;
	struct obj_url u;
	struct obj_backend *b = NULL, *w = NULL;
	const char *faults;
	char *spec = NULL;
	int rc;

	*out = NULL;
	if (!conf)
		conf = &defaults;
	obj_clear_error();
	rc = obj_url_parse_conf(&u, url, &conf->s3);
	if (rc)
		return rc;

	switch (u.scheme) {
	case OBJ_SCHEME_FILE:
		rc = obj_local_create(&b, u.path, conf->create);
		break;
	case OBJ_SCHEME_MEM:
		rc = obj_mem_create(&b, u.path);
		break;
	case OBJ_SCHEME_S3:
		rc = obj_s3_create(&b, u.bucket, u.prefix, &conf->s3);
		break;
	}
	if (rc)
		goto out;

	faults = conf->faults ? conf->faults : getenv("SHALEFS_FAULTS");
	rc = obj_url_crash_spec(&spec, faults);
	if (rc)
		goto out;
	if (spec) {
		rc = obj_fault_create(&w, b, spec);
		if (rc)
			goto out;
		b = w;
	}
	rc = obj_metrics_create(&w, b);
	if (rc)
		goto out;
	b = w;
	if (!conf->no_retry) {
		rc = obj_retry_create(&w, b, &conf->retry);
		if (rc)
			goto out;
		b = w;
	}
	if (conf->dcache.dir && *conf->dcache.dir && conf->dcache.size) {
		char *id = NULL;
		rc = obj_dcache_store_id(&id, &u, &conf->s3);
		if (rc)
			goto out;
		rc = obj_dcache_create(&w, b, &conf->dcache, id);
		free(id);
		if (rc == -ENOMEM || rc == -EINVAL)
			goto out;
		/* A cache that cannot be used never stops the store from opening. */
		if (rc)
			util_log(UTIL_LOG_WARN, "objstore", "%s; running without the disk cache",
				 obj_last_error());
		else
			b = w;
		obj_clear_error();
		rc = 0;
	}
	if (conf->crypt.key_file || conf->crypt.passphrase_file) {
		rc = obj_crypt_open(&w, b, &conf->crypt);
		if (rc)
			goto out;
		b = w;
	}
	*out = b;
	b = NULL;
out:
	if (b)
		b->free(b);
	free(spec);
	obj_url_free(&u);
	return rc;
}
