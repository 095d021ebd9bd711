/*
 * obj_url.c - the one place store URLs are parsed, and obj_open(), which
 * turns a URL into a backend stack (base ─ fault ─ metrics ─ retry).
 *
 * Accepted forms:
 *   file:///abs/dir       absolute path; trailing slashes are dropped
 *   mem://name            name may be empty ("mem://" is mem://default)
 *   s3://bucket[/prefix]  bucket: 3-63 of [a-z0-9.-]; prefix gains a '/'
 * Anything else is -EINVAL with a message saying what was expected.
 */
#include "objstore/objstore.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int obj_url_bucket_ok(const char *b, size_t n)
{
	if (n < 3 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];
		if (!(islower(c) || isdigit(c) || c == '.' || c == '-'))
			return 0;
	}
	return isalnum((unsigned char)b[0]) && isalnum((unsigned char)b[n - 1]);
}

int obj_url_parse(struct obj_url *out, const char *url)
{
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

		if (!obj_url_bucket_ok(p, blen))
			return obj_url_bad(url, "bucket name must be 3-63 characters of a-z, 0-9, '.' and '-'");
		while (plen > 0 && pfx[plen - 1] == '/')
			plen--;
		if (plen > 0 && (pfx[0] == '/' || strstr(pfx, "//")))
			return obj_url_bad(url, "prefix must not contain empty path components");
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
	rc = obj_url_parse(&u, url);
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
	*out = b;
	b = NULL;
out:
	if (b)
		b->free(b);
	free(spec);
	obj_url_free(&u);
	return rc;
}

void obj_close(struct obj_backend *b)
{
	if (b)
		b->free(b);
}
