/*
 * obj_s3_req.c - one S3 request: the connection pool, curl's callbacks,
 * signing and performing an exchange, and the one switch that maps its
 * failure to an errno. obj_s3.c builds each operation on obj_s3_perform.
 *
 * DESIGN
 *   See obj_s3.c: one struct obj_s3 per bucket+prefix, easy handles
 *   borrowed from a pool (pool_mu), every request signed afresh with a
 *   pinned credential snapshot, no retry here (obj_retry.c decides).
 */
#include "objstore/obj_s3_int.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

const char *const obj_s3_verb_names[OBJ_S3_V__N] = {
	"get", "head", "put", "post", "delete", "list",
};

/* ---- small helpers --------------------------------------------------------- */

void obj_s3_req_free(struct obj_s3_req *r)
{
	obj_s3_buf_free(&r->resp);
}

/* Copy src into dst[0..n) keeping only printable ASCII (server text is
 * untrusted: no control characters reach a log line). */
void obj_s3_sanitize(char *dst, size_t n, const char *src)
{
	size_t o = 0;
	if (!n)
		return;
	for (; src && *src && o + 1 < n; src++)
		dst[o++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
	dst[o] = '\0';
}

/* Log level for a failure: expected outcomes quietly, transient ones at
 * info (the retry wrapper reports if it gives up), the rest as errors. */
int obj_s3_level(int rc)
{
	if (rc == -ENOENT || rc == -EEXIST)
		return UTIL_LOG_DEBUG;
	if (obj_err_is_transient(rc))
		return UTIL_LOG_INFO;
	return UTIL_LOG_ERROR;
}

int obj_s3_fail(int rc, const char *op, const char *name, const char *msg)
{
	return obj_fail(rc, obj_s3_level(rc), op, name ? name : "", "%s", msg);
}

/* The full S3 key for `name` into a fresh string, checking the name. */
int obj_s3_key(struct obj_s3 *s, const char *name, char **out, const char *op)
{
	size_t pl = strlen(s->prefix), nl;
	int rc;

	*out = NULL;
	if (!name || (rc = obj_name_check(name)))
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, op, name ? name : "(null)", "invalid object name");
	nl = strlen(name);
	if (pl + nl > OBJ_NAME_MAX)
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, op, name,
				"name with prefix '%s' is longer than S3's %d-byte key limit", s->prefix,
				OBJ_NAME_MAX);
	*out = malloc(pl + nl + 1);
	if (!*out)
		return obj_fail(-ENOMEM, UTIL_LOG_ERROR, op, name, "out of memory");
	memcpy(*out, s->prefix, pl);
	memcpy(*out + pl, name, nl + 1);
	return 0;
}

/* ---- the connection pool ------------------------------------------------- */

static int obj_s3_pool_get(struct obj_s3 *s, CURL **out)
{
	CURL *h = NULL;
	int create = 0;

	CHECK_RETURN(pthread_mutex_lock(&s->pool_mu));
	while (s->pool_nfree == 0 && s->pool_created >= s->set.max_connections) {
		atomic_fetch_add_explicit(&s->st_pool_waits, 1, memory_order_relaxed);
		CHECK_RETURN(pthread_cond_wait(&s->pool_cv, &s->pool_mu));
	}
	if (s->pool_nfree)
		h = s->pool_free[--s->pool_nfree];
	else {
		s->pool_created++;
		create = 1;
	}
	CHECK_RETURN(pthread_mutex_unlock(&s->pool_mu));

	if (create) {
		h = curl_easy_init();
		if (!h) {
			CHECK_RETURN(pthread_mutex_lock(&s->pool_mu));
			s->pool_created--;
			CHECK_RETURN(pthread_cond_signal(&s->pool_cv));
			CHECK_RETURN(pthread_mutex_unlock(&s->pool_mu));
			return -ENOMEM;
		}
	} else {
		curl_easy_reset(h); /* keeps the live connection */
	}
	*out = h;
	return 0;
}

static void obj_s3_pool_put(struct obj_s3 *s, CURL *h)
{
	CHECK_RETURN(pthread_mutex_lock(&s->pool_mu));
	assert(s->pool_nfree < s->pool_created);
	s->pool_free[s->pool_nfree++] = h;
	CHECK_RETURN(pthread_cond_signal(&s->pool_cv));
	CHECK_RETURN(pthread_mutex_unlock(&s->pool_mu));
}

/* ---- curl callbacks --------------------------------------------------------- */

static size_t obj_s3_on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct obj_s3_req *r = arg;
	size_t n = size * nmemb;
	/* max_resp bounds a successful body; error bodies are small XML. */
	size_t max = (r->hdr_status >= 200 && r->hdr_status < 300) ? r->max_resp : OBJ_S3_MAX_SMALL_BODY;

	if (r->dst && r->hdr_status >= 200 && r->hdr_status < 300) {
		if (n > r->dst_cap - r->dst_len) {
			r->resp_overflow = 1;
			return 0;
		}
		memcpy(r->dst + r->dst_len, ptr, n);
		r->dst_len += n;
		return n;
	}
	if (n > max || r->resp.len > max - n) {
		r->resp_overflow = 1;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	obj_s3_buf_add(&r->resp, ptr, n);
	return r->resp.err ? 0 : n;
}

static size_t obj_s3_on_upload(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct obj_s3_req *r = arg;
	size_t n = size * nmemb, left = r->body_len - r->upload_pos;

	if (n > left)
		n = left;
	if (n)
		memcpy(ptr, (const char *)r->body + r->upload_pos, n);
	r->upload_pos += n;
	return n;
}

/* Rewind for curl (it may resend the body on a redirect or auth retry). */
static int obj_s3_on_seek(void *arg, curl_off_t off, int origin)
{
	struct obj_s3_req *r = arg;
	if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->body_len)
		return CURL_SEEKFUNC_FAIL;
	r->upload_pos = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

static int obj_s3_hdr_is(const char *line, size_t n, const char *name, const char **val,
			 size_t *vlen)
{
	size_t k = strlen(name);
	if (n <= k || line[k] != ':' || strncasecmp(line, name, k))
		return 0;
	line += k + 1;
	n -= k + 1;
	while (n && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	while (n && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
		n--;
	*val = line;
	*vlen = n;
	return 1;
}

static size_t obj_s3_on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct obj_s3_req *r = arg;
	size_t n = size * nmemb, vlen;
	const char *v;

	if (n >= 5 && !memcmp(line, "HTTP/", 5)) {
		/* A new response (after 100 Continue, say): forget the last one. */
		r->etag[0] = r->token[0] = '\0';
		r->have_token = r->have_content_length = r->have_range_total = 0;
		r->dst_len = 0;
		r->content_length = 0;
		r->mtime_ns = 0;
		/* "HTTP/1.1 206 Partial Content" */
		const char *sp = memchr(line, ' ', n);
		r->hdr_status = sp ? strtol(sp + 1, NULL, 10) : 0;
		return n;
	}
	if (obj_s3_hdr_is(line, n, "content-length", &v, &vlen)) {
		char num[24];
		char *end;
		if (vlen && vlen < sizeof(num)) {
			memcpy(num, v, vlen);
			num[vlen] = '\0';
			unsigned long long cl = strtoull(num, &end, 10);
			if (*end == '\0' && num[0] >= '0' && num[0] <= '9') {
				r->content_length = cl;
				r->have_content_length = 1;
				/* Size the body buffer once instead of doubling. */
				if (!r->dst && r->hdr_status >= 200 && r->hdr_status < 300 &&
				    cl <= r->max_resp && cl > r->resp.cap)
					(void)obj_s3_buf_reserve(&r->resp, (size_t)cl);
			}
		}
	} else if (obj_s3_hdr_is(line, n, "content-range", &v, &vlen)) {
		/* "bytes 0-8388607/268435456" */
		const char *slash = memchr(v, '/', vlen);
		if (slash && slash + 1 < v + vlen && slash[1] >= '0' && slash[1] <= '9') {
			char num[24];
			size_t k = (size_t)(v + vlen - slash - 1);
			if (k < sizeof(num)) {
				char *end;
				memcpy(num, slash + 1, k);
				num[k] = '\0';
				r->range_total = strtoull(num, &end, 10);
				r->have_range_total = *end == '\0';
			}
		}
	} else if (obj_s3_hdr_is(line, n, "etag", &v, &vlen)) {
		if (vlen < sizeof(r->etag)) {
			memcpy(r->etag, v, vlen);
			r->etag[vlen] = '\0';
		}
	} else if (obj_s3_hdr_is(line, n, OBJ_S3_TOKEN_HEADER, &v, &vlen)) {
		if (vlen < sizeof(r->token)) {
			memcpy(r->token, v, vlen);
			r->token[vlen] = '\0';
			r->have_token = 1;
		}
	} else if (obj_s3_hdr_is(line, n, "last-modified", &v, &vlen)) {
		char tbuf[64];
		struct tm tm;
		if (vlen < sizeof(tbuf)) {
			memcpy(tbuf, v, vlen);
			tbuf[vlen] = '\0';
			memset(&tm, 0, sizeof(tm));
			const char *end = strptime(tbuf, "%a, %d %b %Y %H:%M:%S", &tm);
			if (end)
				r->mtime_ns = (int64_t)timegm(&tm) * 1000000000;
		}
	}
	return n;
}

/* ---- error mapping: the one switch ------------------------------------------ */

/*
 * obj_s3_map_error - turn a finished request into 0 or a negative errno,
 * writing the cause to r->msg. Transport failures come from curl; HTTP
 * failures from the status and S3's <Error><Code>. Also used for a 200
 * whose body is an <Error> (CompleteMultipartUpload): pass status 500.
 */
int obj_s3_map_error(struct obj_s3 *s, struct obj_s3_req *r)
{
	char code[64] = "", text[200] = "";
	struct obj_s3_xml *x = NULL;
	int rc;

	if (r->cc != CURLE_OK) {
		const char *why = r->curl_err[0] ? r->curl_err : curl_easy_strerror(r->cc);
		atomic_fetch_add_explicit(&s->st_transport_err, 1, memory_order_relaxed);
		switch (r->cc) {
		case CURLE_OPERATION_TIMEDOUT:
			rc = -ETIMEDOUT;
			break;
		case CURLE_COULDNT_CONNECT:
			rc = r->os_errno == EHOSTUNREACH ? -EHOSTUNREACH
			   : r->os_errno == ENETUNREACH ? -ENETUNREACH : -ECONNREFUSED;
			break;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
			rc = -EHOSTUNREACH;
			break;
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			rc = -ECONNRESET;
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
			snprintf(r->msg, sizeof(r->msg), "TLS verification failed for %s: %s",
				 s->host_hdr, why);
			return -EACCES;
		case CURLE_OUT_OF_MEMORY:
			rc = -ENOMEM;
			break;
		case CURLE_WRITE_ERROR:
			if (r->resp_overflow) {
				snprintf(r->msg, sizeof(r->msg), "response body larger than expected (over %zu bytes)",
					 r->max_resp);
				return -EIO;
			}
			if (r->resp.err) {
				snprintf(r->msg, sizeof(r->msg), "out of memory for the response body");
				return -ENOMEM;
			}
			rc = -EIO;
			break;
		case CURLE_URL_MALFORMAT:
			rc = -EINVAL;
			break;
		default:
			rc = -EIO;
			break;
		}
		snprintf(r->msg, sizeof(r->msg), "%s %s: %s", r->method, s->host_hdr, why);
		return rc;
	}

	if (r->status >= 200 && r->status < 300)
		return 0;
	if (r->status >= 500)
		atomic_fetch_add_explicit(&s->st_http_5xx, 1, memory_order_relaxed);
	else if (r->status >= 400)
		atomic_fetch_add_explicit(&s->st_http_4xx, 1, memory_order_relaxed);

	if (r->resp.len && obj_s3_xml_parse(&x, r->resp.p, r->resp.len) == 0) {
		const struct obj_s3_xml_node *root = obj_s3_xml_root(x);
		if (!strcmp(obj_s3_xml_name(root), "Error")) {
			obj_s3_sanitize(code, sizeof(code), obj_s3_xml_child_text(root, "Code"));
			obj_s3_sanitize(text, sizeof(text), obj_s3_xml_child_text(root, "Message"));
		}
		obj_s3_xml_free(x);
	}

	switch (r->status) {
	case 400:
		if (!strcmp(code, "RequestTimeout"))
			rc = -EAGAIN; /* idle upload; S3 asks the client to retry */
		else if (!strcmp(code, "ExpiredToken") || !strcmp(code, "InvalidToken") ||
			 !strcmp(code, "AuthorizationHeaderMalformed"))
			rc = -EACCES;
		else
			rc = -EINVAL;
		break;
	case 401:
	case 403:
		/* RGW's user and bucket quotas answer 403 QuotaExceeded. */
		rc = !strcmp(code, "QuotaExceeded") ? -EDQUOT : -EACCES;
		break;
	case 404:
		rc = -ENOENT;
		if (!strcmp(code, "NoSuchBucket")) {
			snprintf(r->code, sizeof(r->code), "%s", code);
			snprintf(r->msg, sizeof(r->msg), "bucket '%s' does not exist at %s", s->bucket,
				 s->host_hdr);
			return rc;
		}
		break;
	case 301:
	case 307:
	case 308:
		snprintf(r->msg, sizeof(r->msg),
			 "HTTP %ld %s: bucket '%s' must be reached through another endpoint or region (set endpoint= or region=)",
			 r->status, code[0] ? code : "redirect", s->bucket);
		return -EINVAL;
	case 405:
	case 501:
		rc = -ENOTSUP;
		break;
	case 409:
		/* OperationAborted, ConditionalRequestConflict: a concurrent
		 * change of the same key; trying again resolves it. */
		rc = -EAGAIN;
		break;
	case 412:
		rc = -EEXIST;
		break;
	case 416:
		rc = -ERANGE; /* get() turns this into 0 bytes */
		break;
	case 429:
		rc = -EAGAIN;
		break;
	default:
		rc = r->status >= 500 ? -EAGAIN : -EIO;
		break;
	}
	snprintf(r->code, sizeof(r->code), "%s", code);
	if (code[0])
		snprintf(r->msg, sizeof(r->msg), "HTTP %ld %s%s%s", r->status, code, text[0] ? ": " : "",
			 text);
	else
		snprintf(r->msg, sizeof(r->msg), "HTTP %ld%s", r->status,
			 r->status == 403 ? " (access denied; no error body)" :
			 r->status == 404 ? " (not found)" : "");
	return rc;
}

/* ---- performing a request ----------------------------------------------------- */

static void obj_s3_amz_date(char out[17])
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static struct curl_slist *obj_s3_slist_add(struct curl_slist *l, const char *name,
					   const char *value, int *err)
{
	char line[1200];
	struct curl_slist *n;
	if (*err)
		return l;
	/* "Name:" with nothing after it tells curl to drop that header. */
	if ((size_t)snprintf(line, sizeof(line), "%s:%s%s", name, *value ? " " : "", value) >=
	    sizeof(line)) {
		*err = -EINVAL;
		return l;
	}
	n = curl_slist_append(l, line);
	if (!n) {
		*err = -ENOMEM;
		return l;
	}
	return n;
}

/*
 * obj_s3_perform_once - sign r with k (NULL: unsigned), send it, wait for
 * the answer. Returns as obj_s3_perform.
 */
static int obj_s3_perform_once(struct obj_s3 *s, struct obj_s3_req *r, const struct obj_s3_creds *k)
{
	struct obj_s3_header hdrs[12];
	struct obj_s3_sign_input sin;
	struct obj_s3_buf path = { 0 }, url = { 0 };
	struct curl_slist *sl = NULL;
	char amz_date[17], hash[OBJ_S3_SHA256_HEX_LEN + 1];
	char *auth = NULL, *qs = NULL;
	CURL *h = NULL;
	size_t nh = 0, i;
	long nconn = 0;
	uint64_t timeout_ms;
	int rc = 0, err = 0;

	r->msg[0] = r->curl_err[0] = r->code[0] = '\0';
	r->status = 0;
	r->cc = CURLE_OK;
	if (!r->max_resp)
		r->max_resp = OBJ_S3_MAX_SMALL_BODY;

	/* Path: "/bucket" (path-style) + "/" + key, each segment encoded once. */
	obj_s3_buf_adds(&path, s->path_base);
	obj_s3_buf_adds(&path, "/");
	if (r->key)
		obj_s3_uri_encode(&path, r->key, strlen(r->key), 1);
	if ((rc = obj_s3_buf_err(&path)))
		goto out;

	/* Over TLS, bodies of OBJ_S3_UNSIGNED_MIN and up are sent as
	 * UNSIGNED-PAYLOAD: TLS already protects them in transit, and hashing
	 * was a sixth of the daemon's CPU on a bulk write (SHA-256 at ~1.8
	 * GB/s here, over every WAL, SST and part byte). Plain http keeps the
	 * signed payload: nothing else would protect the bytes there
	 * (obj_s3_config.unsigned_payload). */
	if (r->body_len >= OBJ_S3_UNSIGNED_MIN && s->set.unsigned_payload)
		snprintf(hash, sizeof(hash), "%s", "UNSIGNED-PAYLOAD");
	else if (r->body_len)
		rc = obj_s3_sha256_hex(r->body, r->body_len, hash);
	else
		memcpy(hash, OBJ_S3_EMPTY_SHA256, sizeof(hash));
	if (rc)
		goto out;
	obj_s3_amz_date(amz_date);

	hdrs[nh++] = (struct obj_s3_header){ "Host", s->host_hdr };
	hdrs[nh++] = (struct obj_s3_header){ "x-amz-date", amz_date };
	hdrs[nh++] = (struct obj_s3_header){ "x-amz-content-sha256", hash };
	if (k && k->session_token)
		hdrs[nh++] = (struct obj_s3_header){ "x-amz-security-token", k->session_token };
	for (i = 0; i < r->nhdr; i++)
		hdrs[nh++] = r->hdr[i];

	sin = (struct obj_s3_sign_input){
		.method = r->method,
		.path = path.p,
		.query = r->query,
		.nquery = r->nquery,
		.headers = hdrs,
		.nheaders = nh,
		.payload_hash = hash,
		.amz_date = amz_date,
		.region = s->set.region,
		.service = "s3",
		.access_key = k ? k->access_key : "",
		.secret_key = k ? k->secret_key : "",
	};
	/* Unsigned requests still go through the signer for the canonical
	 * (encoded, sorted) query string. */
	if ((rc = obj_s3_sign(&sin, &auth, &qs, NULL)))
		goto out;

	obj_s3_buf_adds(&url, s->url_base);
	obj_s3_buf_adds(&url, path.p);
	if (qs[0]) {
		obj_s3_buf_adds(&url, "?");
		obj_s3_buf_adds(&url, qs);
	}
	if ((rc = obj_s3_buf_err(&url)))
		goto out;

	for (i = 0; i < nh; i++)
		sl = obj_s3_slist_add(sl, hdrs[i].name, hdrs[i].value, &err);
	if (k)
		sl = obj_s3_slist_add(sl, "Authorization", auth, &err);
	sl = obj_s3_slist_add(sl, "Expect", "", &err); /* no 100-continue round trip */
	if (r->verb == OBJ_S3_V_POST || r->verb == OBJ_S3_V_PUT)
		sl = obj_s3_slist_add(sl, "Content-Type", "application/octet-stream", &err);
	if ((rc = err))
		goto out;

	if ((rc = obj_s3_pool_get(s, &h)))
		goto out;

	/* Timeout: the base, plus a second per MiB of known payload. Bodies of
	 * unknown size rely on the low-speed limit to catch a stall. */
	timeout_ms = s->set.request_timeout_ms + ((r->body_len + r->expect_len) >> 20) * 1000;
	curl_easy_setopt(h, CURLOPT_URL, url.p);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "shalefs/" PACKAGE_VERSION);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->curl_err);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)s->set.connect_timeout_ms);
	if (!(r->verb == OBJ_S3_V_GET && !r->expect_len))
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)((s->set.request_timeout_ms + 999) / 1000));
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, s->set.insecure_tls ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, s->set.insecure_tls ? 0L : 2L);
	if (s->set.ca_bundle)
		curl_easy_setopt(h, CURLOPT_CAINFO, s->set.ca_bundle);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, obj_s3_on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, obj_s3_on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	switch (r->verb) {
	case OBJ_S3_V_HEAD:
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		break;
	case OBJ_S3_V_PUT:
		r->upload_pos = 0;
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, obj_s3_on_upload);
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, obj_s3_on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
		break;
	case OBJ_S3_V_POST:
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body_len ? (const char *)r->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		break;
	case OBJ_S3_V_DELETE:
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
		break;
	default:
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		break;
	}

	atomic_fetch_add_explicit(&s->st_req[r->verb], 1, memory_order_relaxed);
	r->cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nconn);
	if (r->cc == CURLE_COULDNT_CONNECT) {
		long e = 0;
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &e);
		r->os_errno = (int)e;
	}
	/* Unhook our stack objects before the handle goes back to the pool. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	obj_s3_pool_put(s, h);

	atomic_fetch_add_explicit(nconn ? &s->st_conn_new : &s->st_conn_reused, 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&s->st_bytes_out, r->upload_pos + (r->verb == OBJ_S3_V_POST ? r->body_len : 0),
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&s->st_bytes_in, r->resp.len + r->dst_len, memory_order_relaxed);
	rc = obj_s3_map_error(s, r);
	goto done;

out:
	if (rc)
		snprintf(r->msg, sizeof(r->msg), "%s", rc == -ENOMEM ? "out of memory" : util_strerror(rc));
done:
	if (auth) {
		memset(auth, 0, strlen(auth));
		free(auth);
	}
	free(qs);
	curl_slist_free_all(sl);
	obj_s3_buf_free(&path);
	obj_s3_buf_free(&url);
	return rc;
}

/* Did the store refuse r's credentials in a way a refresh can cure? */
static int obj_s3_auth_refused(const struct obj_s3_req *r)
{
	static const char *const codes[] = { "ExpiredToken", "InvalidAccessKeyId", "InvalidToken",
					     "TokenRefreshRequired", "InvalidClientTokenId", NULL };
	if (r->cc != CURLE_OK || (r->status != 400 && r->status != 403))
		return 0;
	if (!r->code[0])
		return r->verb == OBJ_S3_V_HEAD && r->status == 403; /* HEAD answers carry no body */
	for (int i = 0; codes[i]; i++)
		if (!strcmp(r->code, codes[i]))
			return 1;
	return 0;
}

/*
 * obj_s3_perform - sign r with a snapshot of the current credentials,
 * send it, wait for the answer; once more with refreshed credentials when
 * temporary ones were refused (see CREDENTIALS). Returns 0 for a 2xx, else
 * a negative errno with the cause in r->msg (the caller records it with
 * obj_s3_fail). Thread-safe; blocks while the pool is exhausted or while
 * expired credentials are being refreshed.
 */
int obj_s3_perform(struct obj_s3 *s, struct obj_s3_req *r)
{
	struct obj_s3_creds *k = NULL;
	int rc;

	for (int attempt = 0;; attempt++) {
		rc = obj_s3_cred_get(s->cred, &k, r->msg, sizeof(r->msg));
		if (rc)
			return rc;
		rc = obj_s3_perform_once(s, r, k);
		if (rc == -EACCES && attempt == 0 && obj_s3_auth_refused(r) &&
		    obj_s3_cred_expired(s->cred, k)) {
			obj_s3_cred_put(s->cred, k);
			util_log(UTIL_LOG_INFO, OBJ_S3_MOD, "%s: %s; sending it again with refreshed credentials",
				 r->method, r->msg);
			obj_s3_buf_free(&r->resp);
			r->resp_overflow = 0;
			r->dst_len = 0;
			continue;
		}
		obj_s3_cred_put(s->cred, k);
		return rc;
	}
}

