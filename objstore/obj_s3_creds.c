/*
 * obj_s3_creds.c - one set of S3 credentials (struct obj_s3_creds): making
 * one, freeing it with its secrets wiped, and reading the ISO 8601 expiry
 * the sources write.
 *
 * The bottom of the credential files: the provider (obj_s3_cred.c), the
 * sources (obj_s3_cred_src.c) and the parsers (obj_s3_cred_parse.c) all
 * make and free sets, so these live below all three and call none of
 * them. Pure functions: no lock, no global state; the reference count in
 * a set is the provider's to guard.
 */
#include "objstore/obj_s3_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

static void obj_s3_creds_wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

int obj_s3_creds_new(struct obj_s3_creds **out, const char *access_key, const char *secret_key,
		     const char *session_token, int64_t expires)
{
	struct obj_s3_creds *c;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->access_key = strdup(access_key);
	c->secret_key = strdup(secret_key);
	c->session_token = session_token && *session_token ? strdup(session_token) : NULL;
	c->expires = expires;
	c->refs = 1;
	if (!c->access_key || !c->secret_key || (session_token && *session_token && !c->session_token)) {
		obj_s3_creds_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void obj_s3_creds_free(struct obj_s3_creds *c)
{
	if (!c)
		return;
	obj_s3_creds_wipe_free(c->access_key);
	obj_s3_creds_wipe_free(c->secret_key);
	obj_s3_creds_wipe_free(c->session_token);
	free(c);
}

/*
 * ISO 8601 as the sources write it: "2024-05-01T12:00:00Z", optionally with
 * fractional seconds and a "+hh:mm"/"-hh:mm" offset instead of Z.
 */
int obj_s3_time_parse(const char *s, int64_t *out)
{
	struct tm tm;
	const char *p;
	int64_t t;

	if (!s)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p || tm.tm_year < 70)
		return -EINVAL;
	t = (int64_t)timegm(&tm);
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '+' ? 1 : -1;
		if (p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9' || p[3] != ':' ||
		    p[4] < '0' || p[4] > '9' || p[5] < '0' || p[5] > '9')
			return -EINVAL;
		int hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
		if (hh > 23 || mm > 59)
			return -EINVAL;
		t -= sign * (hh * 3600 + mm * 60);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	*out = t;
	return 0;
}
