/*
 * obj_s3_json.c - a tiny, strict JSON reader for the credential sources
 * that answer in JSON (credential_process, ECS, EC2 instance metadata).
 *
 * Those answers are one flat object of strings and numbers:
 *   {"Version": 1, "AccessKeyId": "...", "SecretAccessKey": "...",
 *    "SessionToken": "...", "Expiration": "2024-05-01T12:00:00Z"}
 * so the reader takes the values of the top-level members whose names the
 * caller asks for: a string value is decoded (escapes, \uXXXX as UTF-8),
 * a number, true, false is handed back as its text, null as absent.
 * Nested objects and arrays are checked and skipped. Anything that is not
 * JSON is refused, as is a duplicate of a requested name (which of two
 * secrets to believe is not a question to answer). Depth is bounded, so
 * hostile input costs at most its length.
 *
 * Values may be secrets: every buffer this file allocates is wiped with
 * OPENSSL_cleanse before it is freed.
 */
#include "objstore/obj_s3_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define OBJ_S3_JSON_MAX_DEPTH 32

struct obj_s3_json_in {
	const char *p;
	const char *end;
};

static void obj_s3_json_ws(struct obj_s3_json_in *in)
{
	while (in->p < in->end && (*in->p == ' ' || *in->p == '\t' || *in->p == '\n' || *in->p == '\r'))
		in->p++;
}

static int obj_s3_json_hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -EINVAL;
	}
	*out = v;
	return 0;
}

static void obj_s3_json_utf8(struct obj_s3_buf *b, unsigned cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	obj_s3_buf_add(b, u, n);
}

/* A string at in->p (the opening quote); decoded into b when b is not NULL. */
static int obj_s3_json_string(struct obj_s3_json_in *in, struct obj_s3_buf *b)
{
	if (in->p >= in->end || *in->p != '"')
		return -EINVAL;
	in->p++;
	while (in->p < in->end) {
		unsigned char c = (unsigned char)*in->p++;
		if (c == '"')
			return b ? obj_s3_buf_err(b) : 0;
		if (c < 0x20)
			return -EINVAL;
		if (c != '\\') {
			if (b)
				obj_s3_buf_add(b, &c, 1);
			continue;
		}
		if (in->p >= in->end)
			return -EINVAL;
		c = (unsigned char)*in->p++;
		switch (c) {
		case '"': case '\\': case '/':
			break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			if (in->end - in->p < 4 || obj_s3_json_hex4(in->p, &cp))
				return -EINVAL;
			in->p += 4;
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (in->end - in->p < 6 || in->p[0] != '\\' || in->p[1] != 'u' ||
				    obj_s3_json_hex4(in->p + 2, &lo) || lo < 0xdc00 || lo >= 0xe000)
					return -EINVAL;
				in->p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				return -EINVAL;
			}
			if (b)
				obj_s3_json_utf8(b, cp);
			continue;
		}
		default:
			return -EINVAL;
		}
		if (b)
			obj_s3_buf_add(b, &c, 1);
	}
	return -EINVAL;
}

/* A number, true, false or null: its text is [start, in->p). */
static int obj_s3_json_scalar(struct obj_s3_json_in *in)
{
	static const char *const words[] = { "true", "false", "null" };
	const char *s = in->p;

	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(words[i]);
		if ((size_t)(in->end - s) >= n && !memcmp(s, words[i], n)) {
			in->p += n;
			return 0;
		}
	}
	if (in->p < in->end && *in->p == '-')
		in->p++;
	if (in->p >= in->end || *in->p < '0' || *in->p > '9')
		return -EINVAL;
	if (*in->p == '0')
		in->p++;
	else
		while (in->p < in->end && *in->p >= '0' && *in->p <= '9')
			in->p++;
	if (in->p < in->end && *in->p == '.') {
		in->p++;
		if (in->p >= in->end || *in->p < '0' || *in->p > '9')
			return -EINVAL;
		while (in->p < in->end && *in->p >= '0' && *in->p <= '9')
			in->p++;
	}
	if (in->p < in->end && (*in->p == 'e' || *in->p == 'E')) {
		in->p++;
		if (in->p < in->end && (*in->p == '+' || *in->p == '-'))
			in->p++;
		if (in->p >= in->end || *in->p < '0' || *in->p > '9')
			return -EINVAL;
		while (in->p < in->end && *in->p >= '0' && *in->p <= '9')
			in->p++;
	}
	return 0;
}

/* Any value, skipped (checked but not kept). */
static int obj_s3_json_skip(struct obj_s3_json_in *in, int depth)
{
	char close;
	int first = 1, rc;

	obj_s3_json_ws(in);
	if (in->p >= in->end)
		return -EINVAL;
	if (*in->p == '"')
		return obj_s3_json_string(in, NULL);
	if (*in->p != '{' && *in->p != '[')
		return obj_s3_json_scalar(in);
	if (depth >= OBJ_S3_JSON_MAX_DEPTH)
		return -EINVAL;
	close = *in->p == '{' ? '}' : ']';
	in->p++;
	for (;;) {
		obj_s3_json_ws(in);
		if (in->p < in->end && *in->p == close && first) {
			in->p++;
			return 0;
		}
		if (close == '}') {
			if ((rc = obj_s3_json_string(in, NULL)))
				return rc;
			obj_s3_json_ws(in);
			if (in->p >= in->end || *in->p++ != ':')
				return -EINVAL;
		}
		if ((rc = obj_s3_json_skip(in, depth + 1)))
			return rc;
		obj_s3_json_ws(in);
		if (in->p >= in->end)
			return -EINVAL;
		if (*in->p == close) {
			in->p++;
			return 0;
		}
		if (*in->p++ != ',')
			return -EINVAL;
		first = 0;
	}
}

static void obj_s3_json_buf_wipe(struct obj_s3_buf *b)
{
	if (b->p)
		OPENSSL_cleanse(b->p, b->cap);
	obj_s3_buf_free(b);
}

int obj_s3_json_strings(const char *data, size_t len, const char *const *keys, size_t nkeys,
			char **vals)
{
	struct obj_s3_json_in in = { data, data + len };
	struct obj_s3_buf name = { 0 }, val = { 0 };
	int first = 1, rc = -EINVAL;

	for (size_t i = 0; i < nkeys; i++)
		vals[i] = NULL;
	obj_s3_json_ws(&in);
	if (in.p >= in.end || *in.p++ != '{')
		goto fail;
	for (;;) {
		size_t k;
		obj_s3_json_ws(&in);
		if (first && in.p < in.end && *in.p == '}') {
			in.p++;
			break;
		}
		first = 0;
		obj_s3_buf_free(&name);
		if ((rc = obj_s3_json_string(&in, &name)))
			goto fail;
		obj_s3_buf_adds(&name, "");
		if ((rc = obj_s3_buf_err(&name)))
			goto fail;
		rc = -EINVAL;
		obj_s3_json_ws(&in);
		if (in.p >= in.end || *in.p++ != ':')
			goto fail;
		obj_s3_json_ws(&in);
		for (k = 0; k < nkeys; k++)
			if (!strcmp(name.p, keys[k]))
				break;
		if (k == nkeys) {
			if ((rc = obj_s3_json_skip(&in, 1)))
				goto fail;
		} else {
			const char *start = in.p;
			if (vals[k])
				goto fail; /* duplicate */
			if (in.p < in.end && *in.p == '"') {
				if ((rc = obj_s3_json_string(&in, &val)))
					goto fail;
				obj_s3_buf_adds(&val, "");
			} else if (in.p < in.end && (*in.p == '{' || *in.p == '[')) {
				if ((rc = obj_s3_json_skip(&in, 1)))
					goto fail; /* not a scalar: treated as absent */
			} else {
				if ((rc = obj_s3_json_scalar(&in)))
					goto fail;
				if ((size_t)(in.p - start) != 4 || memcmp(start, "null", 4))
					obj_s3_buf_add(&val, start, (size_t)(in.p - start));
			}
			if ((rc = obj_s3_buf_err(&val)))
				goto fail;
			if (val.p) {
				vals[k] = obj_s3_buf_take(&val);
				if (!vals[k]) {
					rc = -ENOMEM;
					goto fail;
				}
			}
			rc = -EINVAL;
		}
		obj_s3_json_ws(&in);
		if (in.p >= in.end)
			goto fail;
		if (*in.p == '}') {
			in.p++;
			break;
		}
		if (*in.p++ != ',')
			goto fail;
	}
	obj_s3_json_ws(&in);
	if (in.p != in.end)
		goto fail; /* trailing garbage */
	obj_s3_buf_free(&name);
	return 0;

fail:
	obj_s3_buf_free(&name);
	obj_s3_json_buf_wipe(&val);
	for (size_t i = 0; i < nkeys; i++) {
		if (vals[i]) {
			OPENSSL_cleanse(vals[i], strlen(vals[i]));
			free(vals[i]);
			vals[i] = NULL;
		}
	}
	return rc;
}
