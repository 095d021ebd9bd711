/*
 * obj_s3_sign.c - AWS Signature Version 4 for the S3 backend, and the
 * small text helpers it needs (growable buffers, hex, base64, URI
 * encoding). Every OpenSSL call of the backend lives in this file, so
 * differences between OpenSSL versions stay here (STYLE rule 16).
 *
 * THE ALGORITHM (header-based signing, as AWS documents it)
 *
 *   CanonicalRequest =
 *       Method '\n' CanonicalURI '\n' CanonicalQuery '\n'
 *       CanonicalHeaders '\n' SignedHeaders '\n' PayloadHash
 *
 *   CanonicalURI      the path, each segment percent-encoded once (S3 does
 *                     not double-encode and does not normalise "." / "..")
 *   CanonicalQuery    key=value pairs, key and value each percent-encoded
 *                     (unreserved set only), sorted by key then value,
 *                     joined with '&'; a bare key is "key="
 *   CanonicalHeaders  "name:value\n" for each signed header, names lower-
 *                     cased and sorted, values trimmed with runs of spaces
 *                     collapsed; repeated names join their values with ','
 *   SignedHeaders     the lower-cased names joined with ';'
 *
 *   StringToSign = "AWS4-HMAC-SHA256\n" AmzDate '\n' Scope '\n'
 *                  hex(SHA256(CanonicalRequest))
 *   Scope        = Date '/' Region '/' Service "/aws4_request"
 *   SigningKey   = HMAC(HMAC(HMAC(HMAC("AWS4" Secret, Date), Region),
 *                  Service), "aws4_request")
 *   Signature    = hex(HMAC(SigningKey, StringToSign))
 *
 * Secrets only ever live in local buffers here and are wiped with
 * OPENSSL_cleanse() before return. Define SHALE_S3_DEBUG_SIGNING at
 * compile time to log canonical requests (never the key, the signature or
 * the session token's value).
 */
#include "objstore/obj_s3_int.h"
#include "objstore/objstore_int.h"
#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* ---- growable buffers --------------------------------------------------- */

int obj_s3_buf_reserve(struct obj_s3_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (b->err)
		return b->err;
	if (util_size_add(&need, b->len, extra) || util_size_add(&need, need, 1))
		return b->err = -EOVERFLOW;
	if (need <= b->cap)
		return 0;
	if (!b->p && need >= OBJ_BUF_POOL_MIN) {
		/* A body of known size (a GET, Content-Length): exactly that,
		 * from obj_buf_alloc (the pool, or huge pages from 4 MiB on). */
		if (!(b->p = obj_buf_alloc(need)))
			return b->err = -ENOMEM;
		b->cap = need;
		return 0;
	}
	cap = b->cap ? b->cap : 64;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	p = realloc(b->p, cap);
	if (!p)
		return b->err = -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

void obj_s3_buf_add(struct obj_s3_buf *b, const void *data, size_t len)
{
	if (obj_s3_buf_reserve(b, len))
		return;
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void obj_s3_buf_adds(struct obj_s3_buf *b, const char *s)
{
	obj_s3_buf_add(b, s, strlen(s));
}

void obj_s3_buf_addf(struct obj_s3_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = -EINVAL;
		return;
	}
	if (obj_s3_buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *obj_s3_buf_take(struct obj_s3_buf *b)
{
	char *p;

	if (b->err) {
		obj_s3_buf_free(b);
		return NULL;
	}
	if (!b->p && obj_s3_buf_reserve(b, 0))
		return NULL;
	b->p[b->len] = '\0';
	p = b->p;
	memset(b, 0, sizeof(*b));
	return p;
}

void obj_s3_buf_free(struct obj_s3_buf *b)
{
	obj_buf_free(b->p);      /* it may be a get body from obj_buf_alloc */
	memset(b, 0, sizeof(*b));
}

void obj_s3_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- hashes ------------------------------------------------------------- */

static void obj_s3_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int obj_s3_digest(const EVP_MD *md, const void *data, size_t len, unsigned char *out,
			 unsigned *outlen)
{
	/* EVP_Digest allocates a context; its failure is an allocation one. */
	if (!EVP_Digest(data, len, out, outlen, md, NULL))
		return -ENOMEM;
	return 0;
}

int obj_s3_sha256_hex(const void *data, size_t len, char out[OBJ_S3_SHA256_HEX_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	int rc = obj_s3_digest(EVP_sha256(), data, len, md, &n);
	if (rc)
		return rc;
	obj_s3_hex(md, n, out);
	return 0;
}

int obj_s3_md5_base64(const void *data, size_t len, char out[25])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	int rc = obj_s3_digest(EVP_md5(), data, len, md, &n);
	if (rc)
		return rc;
	/* 16 bytes encode to 24 characters plus the NUL EVP_EncodeBlock adds. */
	if (EVP_EncodeBlock((unsigned char *)out, md, (int)n) != 24)
		return -EIO;
	return 0;
}

/* HMAC-SHA256 of msg under key into out[32]. */
static int obj_s3_hmac(const void *key, size_t keylen, const void *msg, size_t msglen,
		       unsigned char out[32])
{
	unsigned n = 0;
	if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &n) || n != 32)
		return -ENOMEM;
	return 0;
}

/* ---- encoding ------------------------------------------------------------ */

void obj_s3_uri_encode(struct obj_s3_buf *out, const char *s, size_t len, int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	if (obj_s3_buf_reserve(out, len * 3))
		return;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
			out->p[out->len++] = (char)c;
		} else {
			out->p[out->len++] = '%';
			out->p[out->len++] = digits[c >> 4];
			out->p[out->len++] = digits[c & 15];
		}
	}
	out->p[out->len] = '\0';
}

/* ---- canonical request ---------------------------------------------------- */

struct obj_s3_kv {
	char *k;
	char *v;
};

static int obj_s3_kv_cmp(const void *a, const void *b)
{
	const struct obj_s3_kv *x = a, *y = b;
	int c = strcmp(x->k, y->k);
	return c ? c : strcmp(x->v, y->v);
}

/* Header names compare by name only; qsort is not stable, so ties are
 * broken by the original position (kept in v's companion index). */
struct obj_s3_hdr {
	char *name;                       /* lower-cased */
	char *value;                      /* trimmed, spaces collapsed */
	size_t pos;
};

static int obj_s3_hdr_cmp(const void *a, const void *b)
{
	const struct obj_s3_hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static char *obj_s3_lower_dup(const char *s)
{
	size_t n = strlen(s);
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	for (size_t i = 0; i <= n; i++)
		d[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	return d;
}

static char *obj_s3_trim_dup(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *d = malloc(n + 1);
	int space = 0;
	if (!d)
		return NULL;
	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t') {
			space = 1;
			continue;
		}
		if (space && o)
			d[o++] = ' ';
		space = 0;
		d[o++] = *s;
	}
	d[o] = '\0';
	return d;
}

int obj_s3_sign(const struct obj_s3_sign_input *in, char **authorization, char **query_out,
		char **canonical_out)
{
	struct obj_s3_kv *q = NULL;
	struct obj_s3_hdr *h = NULL;
	struct obj_s3_buf creq = { 0 }, qs = { 0 }, signed_hdrs = { 0 }, sts = { 0 };
	struct obj_s3_buf auth = { 0 }, tmp = { 0 };
	char creq_hash[OBJ_S3_SHA256_HEX_LEN + 1];
	char date[9], sig[65];
	unsigned char k1[32], k2[32], k3[32], k4[32], mac[32];
	char *secret4 = NULL;
	size_t i, slen = 0;
	int have_host = 0, have_date = 0;
	int rc = -ENOMEM;

	*authorization = NULL;
	if (query_out)
		*query_out = NULL;
	if (canonical_out)
		*canonical_out = NULL;
	if (strlen(in->amz_date) != 16 || in->amz_date[8] != 'T')
		return -EINVAL;

	/* Canonical query: encode each key and value, then sort. */
	if (in->nquery) {
		q = calloc(in->nquery, sizeof(*q));
		if (!q)
			goto out;
		for (i = 0; i < in->nquery; i++) {
			const char *v = in->query[i].value ? in->query[i].value : "";
			obj_s3_uri_encode(&tmp, in->query[i].key, strlen(in->query[i].key), 0);
			q[i].k = obj_s3_buf_take(&tmp);
			obj_s3_uri_encode(&tmp, v, strlen(v), 0);
			q[i].v = obj_s3_buf_take(&tmp);
			if (!q[i].k || !q[i].v)
				goto out;
		}
		qsort(q, in->nquery, sizeof(*q), obj_s3_kv_cmp);
		for (i = 0; i < in->nquery; i++)
			obj_s3_buf_addf(&qs, "%s%s=%s", i ? "&" : "", q[i].k, q[i].v);
	}
	obj_s3_buf_adds(&qs, "");

	/* Canonical headers. */
	h = calloc(in->nheaders ? in->nheaders : 1, sizeof(*h));
	if (!h)
		goto out;
	for (i = 0; i < in->nheaders; i++) {
		h[i].name = obj_s3_lower_dup(in->headers[i].name);
		h[i].value = obj_s3_trim_dup(in->headers[i].value);
		h[i].pos = i;
		if (!h[i].name || !h[i].value)
			goto out;
		have_host |= !strcmp(h[i].name, "host");
		have_date |= !strcmp(h[i].name, "x-amz-date");
	}
	if (!have_host || !have_date) {
		rc = -EINVAL;
		goto out;
	}
	qsort(h, in->nheaders, sizeof(*h), obj_s3_hdr_cmp);

	obj_s3_buf_addf(&creq, "%s\n%s\n%s\n", in->method, in->path, qs.p ? qs.p : "");
	for (i = 0; i < in->nheaders; i++) {
		if (i && !strcmp(h[i].name, h[i - 1].name)) {
			obj_s3_buf_addf(&creq, ",%s", h[i].value);
			continue;
		}
		if (i)
			obj_s3_buf_adds(&creq, "\n");
		obj_s3_buf_addf(&creq, "%s:%s", h[i].name, h[i].value);
		obj_s3_buf_addf(&signed_hdrs, "%s%s", signed_hdrs.len ? ";" : "", h[i].name);
	}
	obj_s3_buf_addf(&creq, "\n\n%s\n%s", signed_hdrs.p ? signed_hdrs.p : "", in->payload_hash);
	if ((rc = obj_s3_buf_err(&creq)) || (rc = obj_s3_buf_err(&signed_hdrs)) ||
	    (rc = obj_s3_buf_err(&qs)))
		goto out;
#ifdef SHALE_S3_DEBUG_SIGNING
	{
		/* The session token is a credential: its value stays out. */
		const char *t = strstr(creq.p, "\nx-amz-security-token:");
		const char *rest = t ? strchr(t + 1, '\n') : NULL;
		if (t && rest)
			UTIL_DEBUG("s3", "canonical request:\n%.*s\nx-amz-security-token:(redacted)%s",
				   (int)(t - creq.p), creq.p, rest);
		else
			UTIL_DEBUG("s3", "canonical request:\n%s", creq.p);
	}
#endif

	/* String to sign. */
	memcpy(date, in->amz_date, 8);
	date[8] = '\0';
	if ((rc = obj_s3_sha256_hex(creq.p, creq.len, creq_hash)))
		goto out;
	obj_s3_buf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", in->amz_date, date,
			in->region, in->service, creq_hash);
	if ((rc = obj_s3_buf_err(&sts)))
		goto out;

	/* Signing key and signature. */
	slen = strlen(in->secret_key) + 4;
	secret4 = malloc(slen + 1);
	rc = -ENOMEM;
	if (!secret4)
		goto out;
	memcpy(secret4, "AWS4", 4);
	memcpy(secret4 + 4, in->secret_key, slen - 4 + 1);
	if ((rc = obj_s3_hmac(secret4, slen, date, 8, k1)) ||
	    (rc = obj_s3_hmac(k1, 32, in->region, strlen(in->region), k2)) ||
	    (rc = obj_s3_hmac(k2, 32, in->service, strlen(in->service), k3)) ||
	    (rc = obj_s3_hmac(k3, 32, "aws4_request", 12, k4)) ||
	    (rc = obj_s3_hmac(k4, 32, sts.p, sts.len, mac)))
		goto out;
	obj_s3_hex(mac, 32, sig);

	obj_s3_buf_addf(&auth,
			"AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
			in->access_key, date, in->region, in->service, signed_hdrs.p, sig);
	*authorization = obj_s3_buf_take(&auth);
	rc = -ENOMEM;
	if (!*authorization)
		goto out;
	if (query_out) {
		*query_out = obj_s3_buf_take(&qs);
		if (!*query_out)
			goto fail_auth;
	}
	if (canonical_out) {
		*canonical_out = obj_s3_buf_take(&creq);
		if (!*canonical_out)
			goto fail_query;
	}
	rc = 0;
	goto out;

fail_query:
	if (query_out) {
		free(*query_out);
		*query_out = NULL;
	}
fail_auth:
	free(*authorization);
	*authorization = NULL;
out:
	if (secret4) {
		OPENSSL_cleanse(secret4, slen);
		free(secret4);
	}
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	OPENSSL_cleanse(k3, sizeof(k3));
	OPENSSL_cleanse(k4, sizeof(k4));
	if (q) {
		for (i = 0; i < in->nquery; i++) {
			free(q[i].k);
			free(q[i].v);
		}
		free(q);
	}
	if (h) {
		for (i = 0; i < in->nheaders; i++) {
			free(h[i].name);
			free(h[i].value);
		}
		free(h);
	}
	obj_s3_buf_free(&creq);
	obj_s3_buf_free(&qs);
	obj_s3_buf_free(&signed_hdrs);
	obj_s3_buf_free(&sts);
	obj_s3_buf_free(&auth);
	obj_s3_buf_free(&tmp);
	return rc;
}
