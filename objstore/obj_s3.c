/*
 * obj_s3.c - the S3 backend: objstore.h's contract over HTTP with libcurl,
 * signed with SigV4 (obj_s3_sign.c), for AWS S3 and compatible stores
 * (Ceph RGW, MinIO, ...). This file builds each operation; one request
 * (pool, callbacks, signing, error mapping) is obj_s3_req.c's.
 *
 * DESIGN
 *   One struct obj_s3 per bucket+prefix. Object "name" is stored under the
 *   S3 key prefix+name. Every operation is one HTTP request (multipart
 *   puts are several), performed synchronously on the calling thread with
 *   an easy handle borrowed from a pool:
 *
 *     pool_mu ─ protects pool_free[], pool_nfree, pool_created
 *
 *   At most conf->max_connections handles exist; a caller that finds none
 *   free waits on pool_cv. Handles are created lazily and keep their
 *   connection alive between requests (HTTP keep-alive), so a steady
 *   stream of requests reuses connections; curl_easy_reset() between
 *   requests keeps live connections. No lock is held across network I/O.
 *
 *   Every request is signed afresh when it is made, so the retry wrapper
 *   above (obj_retry_create) re-signs each attempt with a current date.
 *   This backend never retries: it maps each failure to one negative errno
 *   in obj_s3_map_error() (the one switch) and lets the wrapper decide.
 *
 * REQUESTS
 *   get            GET key with "Range: bytes=a-b". 416 (range starts at or
 *                  past the end) is 0 bytes, not an error. A 200 answer to
 *                  a ranged request (a server that ignores Range) is sliced
 *                  locally. Reads of more than two parts go in parallel
 *                  ranges pinned to one version with If-Match (see
 *                  obj_s3__get).
 *   head           HEAD key: size, ETag, Last-Modified, and the put token
 *                  from x-amz-meta-shalefs-token.
 *   put            PUT key with the body and x-amz-content-sha256 = SHA-256
 *                  of the body (signed payload; over https, bodies of 64 KiB
 *                  and up say UNSIGNED-PAYLOAD instead: TLS protects them,
 *                  and hashing cost a sixth of a bulk write's CPU). At or above
 *                  multipart_threshold: a multipart upload (below).
 *   put_if_absent  PUT key with "If-None-Match: *": 412 means the name
 *                  exists (-EEXIST). Always a single PUT, never multipart,
 *                  because CompleteMultipartUpload ignores If-None-Match on
 *                  RGW (and only recently honours it on AWS): a multipart
 *                  create-if-absent could not be made race-free. The engine
 *                  uses put_if_absent for manifests and WAL objects, which
 *                  are small; a body over S3's 5 GiB single-PUT limit is
 *                  refused with -EINVAL.
 *   del            DELETE key; 204 and 404 (NoSuchKey) are success. A
 *                  missing bucket is still -ENOENT.
 *   list           ListObjectsV2 (list-type=2) with prefix, start-after and
 *                  max-keys (at most 1000). The caller pages with
 *                  start_after = last name, so no continuation token is
 *                  kept. Keys are checked to be under the prefix and in
 *                  strictly increasing order.
 *   del_many       DeleteObjects (POST ?delete, Content-MD5 required) in
 *                  batches of 1000, quiet mode; NoSuchKey entries count as
 *                  deleted.
 *
 * MULTIPART
 *   Initiate (POST ?uploads, with the token header), then the parts (PUT
 *   ?partNumber=N&uploadId=U) by a few worker threads that take the next
 *   part number under mpu->mu, then Complete (POST ?uploadId=U with the
 *   part list). Any failure stops the workers and aborts the upload
 *   (DELETE ?uploadId=U) so no parts linger. Complete can answer 200 with
 *   an <Error> body; that counts as a failure. Part size is
 *   conf->part_size, raised when needed to stay within 10,000 parts.
 *
 * TOKENS
 *   The put token (objstore.h) travels as the user metadata header
 *   x-amz-meta-shalefs-token and comes back from HEAD unchanged; the retry
 *   wrapper compares it to tell its own ambiguous earlier attempt from a
 *   real put_if_absent conflict.
 *
 * CREDENTIALS
 *   s->cred (obj_s3_cred.c) holds them and refreshes temporary ones in the
 *   background. Each request pins a snapshot for its signature, so a
 *   refresh never changes the key under a request. A request refused with
 *   ExpiredToken / InvalidAccessKeyId (or a bodiless 403 to a HEAD) while
 *   the credentials are temporary asks for a refresh and is sent once more
 *   with the new set (obj_s3_perform). With no_sign_request there is no
 *   snapshot and requests carry no Authorization header.
 *
 * SECRETS
 *   Keys and tokens live only in the credential snapshots; the
 *   Authorization header is built per request and never logged. Messages
 *   carry the method, the object name, the HTTP status and S3's error
 *   code and message.
 */
#include "objstore/obj_s3_int.h"
#include "objstore/objstore_int.h"
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

static pthread_once_t obj_s3_once = PTHREAD_ONCE_INIT;
static CURLcode obj_s3_global_rc;

static void obj_s3_global_init(void)
{
	obj_s3_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- get / head ------------------------------------------------------------- */

static int obj_s3__head(struct obj_backend *b, const char *name, struct obj_stat *st)
{
	struct obj_s3 *s = obj_s3_of(b);
	struct obj_s3_req r = { .method = "HEAD", .verb = OBJ_S3_V_HEAD };
	char *key = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	if ((rc = obj_s3_key(s, name, &key, "s3 HEAD")))
		return rc;
	r.key = key;
	rc = obj_s3_perform(s, &r);
	if (rc) {
		rc = obj_s3_fail(rc, "s3 HEAD", name, r.msg);
		goto out;
	}
	if (!r.have_content_length) {
		rc = obj_s3_fail(-EIO, "s3 HEAD", name, "response has no Content-Length");
		goto out;
	}
	st->size = r.content_length;
	st->mtime_ns = r.mtime_ns;
	{
		/* The ETag without its quotes. */
		const char *e = r.etag;
		size_t n = strlen(e);
		if (n >= 2 && e[0] == '"' && e[n - 1] == '"') {
			e++;
			n -= 2;
		}
		if (n >= sizeof(st->etag))
			n = sizeof(st->etag) - 1;
		memcpy(st->etag, e, n);
		st->etag[n] = '\0';
	}
	if (r.have_token)
		snprintf(st->token, sizeof(st->token), "%s", r.token);
out:
	obj_s3_req_free(&r);
	free(key);
	return rc;
}

/* A parallel ranged read in progress (see obj_s3__get). */
struct obj_s3_pget {
	struct obj_s3 *s;
	const char *key;
	const char *if_match;             /* ETag of the first response, unquoted */
	uint8_t *dst;                     /* the whole result */
	uint64_t base;                    /* object offset of dst[0] */
	size_t from, len, chunk;          /* fetch dst[from..len) in chunks */
	unsigned nchunks;

	pthread_mutex_t mu;               /* protects next, rc, msg */
	unsigned next;
	int rc;
	char msg[400];
};

static int obj_s3_pget_chunk(struct obj_s3_pget *g, unsigned i, char *msg, size_t msglen)
{
	struct obj_s3_req r = { .method = "GET", .verb = OBJ_S3_V_GET, .key = g->key };
	size_t lo = g->from + (size_t)i * g->chunk;
	size_t n = g->len - lo < g->chunk ? g->len - lo : g->chunk;
	char range[64];
	int rc;

	snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)(g->base + lo),
		 (unsigned long long)(g->base + lo + n - 1));
	r.hdr[r.nhdr++] = (struct obj_s3_header){ "Range", range };
	/* RGW 16.2 matches only the unquoted form of an ETag. */
	r.hdr[r.nhdr++] = (struct obj_s3_header){ "If-Match", g->if_match };
	r.dst = g->dst + lo;
	r.dst_cap = n;
	r.max_resp = n;
	r.expect_len = n;
	rc = obj_s3_perform(g->s, &r);
	if (rc == -EEXIST) {
		/* 412: the object was replaced between our requests. Reading on
		 * would mix two versions; the caller's retry reads it afresh. */
		rc = -EAGAIN;
		snprintf(r.msg, sizeof(r.msg), "object replaced during a parallel read");
	} else if (rc == 0 && (r.status != 206 || r.dst_len != n)) {
		rc = -EIO;
		snprintf(r.msg, sizeof(r.msg), "range %s: HTTP %ld with %zu bytes", range, r.status,
			 r.dst_len);
	}
	if (rc)
		snprintf(msg, msglen, "%s", r.msg);
	obj_s3_req_free(&r);
	return rc;
}

static void *obj_s3_pget_worker(void *arg)
{
	struct obj_s3_pget *g = arg;
	char msg[400];

	for (;;) {
		unsigned i;
		int rc;

		CHECK_RETURN(pthread_mutex_lock(&g->mu));
		if (g->rc || g->next >= g->nchunks) {
			CHECK_RETURN(pthread_mutex_unlock(&g->mu));
			return NULL;
		}
		i = g->next++;
		CHECK_RETURN(pthread_mutex_unlock(&g->mu));
		rc = obj_s3_pget_chunk(g, i, msg, sizeof(msg));
		if (rc) {
			CHECK_RETURN(pthread_mutex_lock(&g->mu));
			if (!g->rc) {
				g->rc = rc;
				snprintf(g->msg, sizeof(g->msg), "%s", msg);
			}
			CHECK_RETURN(pthread_mutex_unlock(&g->mu));
			return NULL;
		}
	}
}

/* Run the workers of g on this thread and up to OBJ_S3_PART_THREADS-1
 * helpers. Returns g->rc. */
static int obj_s3_pget_run(struct obj_s3_pget *g)
{
	pthread_t th[OBJ_S3_PART_THREADS];
	unsigned nthreads = OBJ_S3_PART_THREADS, started = 0;

	if (nthreads > g->s->set.max_connections)
		nthreads = g->s->set.max_connections;
	if (nthreads > g->nchunks)
		nthreads = g->nchunks;
	CHECK_RETURN(pthread_mutex_init(&g->mu, NULL));
	for (unsigned i = 1; i < nthreads; i++) {
		if (pthread_create(&th[started], NULL, obj_s3_pget_worker, g))
			break;
		started++;
	}
	obj_s3_pget_worker(g);
	for (unsigned i = 0; i < started; i++)
		CHECK_RETURN(pthread_join(th[i], NULL));
	CHECK_RETURN(pthread_mutex_destroy(&g->mu));
	return g->rc;
}

/*
 * get. Small reads are one request. A read of the whole object, or of a
 * range larger than two parts, starts with a request for the first
 * part_size bytes; its Content-Range tells the object's size. If more is
 * wanted, the rest is fetched by up to OBJ_S3_PART_THREADS parallel
 * range requests written straight into the result buffer, each
 * conditional on the first response's ETag (If-Match) so that a
 * concurrent overwrite can never produce a mix of two versions: it fails
 * the read with -EAGAIN instead. (One stream into fresh memory is bound by
 * page faults and copying on this side; parallel streams spread that.)
 */
static int obj_s3__get(struct obj_backend *b, const char *name, uint64_t off, uint64_t len,
		       void **out, size_t *out_len)
{
	struct obj_s3 *s = obj_s3_of(b);
	struct obj_s3_req r = { .method = "GET", .verb = OBJ_S3_V_GET };
	struct obj_s3_pget g;
	char range[64], etag[80];
	char *key = NULL;
	uint8_t *all = NULL;
	size_t chunk = s->set.part_size;
	int split = len == OBJ_WHOLE || len > 2 * (uint64_t)chunk;
	int ranged = split || !(off == 0 && len == OBJ_WHOLE);
	uint64_t want = split ? chunk : len;   /* bytes asked for by the first request */
	int rc;

	*out = NULL;
	*out_len = 0;
	if (len == 0) {
		/* Nothing to read, but a missing object is still -ENOENT. */
		struct obj_stat st;
		return obj_s3__head(b, name, &st);
	}
	if ((rc = obj_s3_key(s, name, &key, "s3 GET")))
		return rc;
	r.key = key;
	r.max_resp = SIZE_MAX - 1;
	if (ranged) {
		if (off + want < off)
			snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)off);
		else
			snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off,
				 (unsigned long long)(off + want - 1));
		r.hdr[r.nhdr++] = (struct obj_s3_header){ "Range", range };
		if (want < SIZE_MAX - 1) {
			r.max_resp = (size_t)want; /* a 200 fallback is handled below */
			r.expect_len = want;
		}
	}
	rc = obj_s3_perform(s, &r);
	if (rc == -ERANGE) {
		rc = 0; /* the range starts at or past the end: 0 bytes */
		goto out;
	}
	if (rc == -EIO && r.resp_overflow && ranged && r.status == 200) {
		/* The server ignored Range and sent the whole object, which is
		 * bigger than the range: ask again without a limit and slice. */
		obj_s3_req_free(&r);
		struct obj_s3_req r2 = { .method = "GET", .verb = OBJ_S3_V_GET, .key = key,
					 .max_resp = SIZE_MAX - 1 };
		r2.hdr[r2.nhdr++] = (struct obj_s3_header){ "Range", range };
		r = r2;
		rc = obj_s3_perform(s, &r);
	}
	if (rc) {
		rc = obj_s3_fail(rc, "s3 GET", name, r.msg);
		goto out;
	}
	if (ranged && r.status == 200) {
		/* Whole object despite Range: keep [off, off+len). */
		size_t have = r.resp.len, start = off < have ? (size_t)off : have;
		size_t n = have - start;
		if (len != OBJ_WHOLE && n > len)
			n = (size_t)len;
		if (n == 0) {
			obj_s3_buf_free(&r.resp);
			goto out;
		}
		memmove(r.resp.p, r.resp.p + start, n);
		r.resp.len = n;
	} else if (r.have_content_length && r.content_length != r.resp.len) {
		rc = obj_s3_fail(-ECONNRESET, "s3 GET", name, "response shorter than its Content-Length");
		goto out;
	} else if (split && r.status == 206 && r.have_range_total &&
		   r.range_total > off + r.resp.len && (len == OBJ_WHOLE || len > r.resp.len)) {
		/* More to fetch: [off + got, end). */
		uint64_t end = len == OBJ_WHOLE || off + len > r.range_total ? r.range_total : off + len;
		const char *e = r.etag;
		size_t elen = strlen(e);

		if (end - off > SIZE_MAX - 1) {
			rc = obj_fail(-ENOMEM, UTIL_LOG_ERROR, "s3 GET", name, "object too large for memory");
			goto out;
		}
		if (elen >= 2 && e[0] == '"' && e[elen - 1] == '"') {
			e++;
			elen -= 2;
		}
		if (elen == 0 || elen >= sizeof(etag)) {
			rc = obj_fail(-EIO, UTIL_LOG_ERROR, "s3 GET", name, "response has no usable ETag");
			goto out;
		}
		memcpy(etag, e, elen);
		etag[elen] = '\0';
		all = obj_buf_alloc((size_t)(end - off));
		if (!all) {
			rc = obj_fail(-ENOMEM, UTIL_LOG_ERROR, "s3 GET", name, "out of memory");
			goto out;
		}
		memcpy(all, r.resp.p, r.resp.len);
		g = (struct obj_s3_pget){ .s = s, .key = key, .if_match = etag, .dst = all, .base = off,
					  .from = r.resp.len, .len = (size_t)(end - off), .chunk = chunk };
		g.nchunks = (unsigned)((g.len - g.from + chunk - 1) / chunk);
		if ((rc = obj_s3_pget_run(&g))) {
			rc = obj_s3_fail(rc, "s3 GET", name, g.msg);
			goto out;
		}
		*out = all;
		*out_len = g.len;
		all = NULL;
		goto out;
	}
	if (r.resp.len) {
		*out_len = r.resp.len;
		*out = r.resp.p; /* malloc'd: the caller frees it with obj_buf_free */
		memset(&r.resp, 0, sizeof(r.resp));
	}
out:
	obj_buf_free(all);
	obj_s3_req_free(&r);
	free(key);
	return rc;
}

/* ---- put ---------------------------------------------------------------------- */

static int obj_s3_token_ok(const char *token)
{
	size_t n;
	if (!token)
		return 1;
	n = strlen(token);
	if (n == 0 || n >= OBJ_TOKEN_MAX)
		return 0;
	for (; *token; token++)
		if (!((*token >= 'a' && *token <= 'z') || (*token >= 'A' && *token <= 'Z') ||
		      (*token >= '0' && *token <= '9') || *token == '_' || *token == '-'))
			return 0;
	return 1;
}

static int obj_s3_put_single(struct obj_s3 *s, const char *key, const char *name, const void *data,
			     size_t len, const char *token, int if_absent)
{
	struct obj_s3_req r = { .method = "PUT", .verb = OBJ_S3_V_PUT, .key = key, .body = data,
				.body_len = len };
	const char *op = if_absent ? "s3 PUT (if absent)" : "s3 PUT";
	int rc;

	if (if_absent)
		r.hdr[r.nhdr++] = (struct obj_s3_header){ "If-None-Match", "*" };
	if (token)
		r.hdr[r.nhdr++] = (struct obj_s3_header){ OBJ_S3_TOKEN_HEADER, token };
	rc = obj_s3_perform(s, &r);
	if (rc == -EEXIST && !if_absent)
		rc = -EIO; /* 412 without a condition: not ours to interpret */
	if (rc)
		rc = obj_s3_fail(rc, op, name, r.msg);
	obj_s3_req_free(&r);
	return rc;
}

/* A multipart upload in progress. */
struct obj_s3_mpu {
	struct obj_s3 *s;
	const char *key;
	const char *upload_id;
	const uint8_t *data;
	size_t len;
	size_t part_size;
	unsigned nparts;
	char (*etags)[80];                /* etags[i] for part i+1 */

	pthread_mutex_t mu;               /* protects next, rc, msg */
	unsigned next;                    /* next part index to upload */
	int rc;                           /* first failure */
	char msg[400];
};

static int obj_s3_mpu_part(struct obj_s3_mpu *m, unsigned i, char *msg, size_t msglen)
{
	struct obj_s3_req r = { .method = "PUT", .verb = OBJ_S3_V_PUT, .key = m->key };
	char pn[16];
	size_t off = (size_t)i * m->part_size;
	int rc;

	snprintf(pn, sizeof(pn), "%u", i + 1);
	r.query[r.nquery++] = (struct obj_s3_query){ "partNumber", pn };
	r.query[r.nquery++] = (struct obj_s3_query){ "uploadId", m->upload_id };
	r.body = m->data + off;
	r.body_len = m->len - off < m->part_size ? m->len - off : m->part_size;
	rc = obj_s3_perform(m->s, &r);
	if (rc == 0 && !r.etag[0]) {
		rc = -EIO;
		snprintf(r.msg, sizeof(r.msg), "part %u: response has no ETag", i + 1);
	}
	if (rc)
		snprintf(msg, msglen, "part %u: %s", i + 1, r.msg);
	else
		snprintf(m->etags[i], sizeof(m->etags[i]), "%s", r.etag);
	obj_s3_req_free(&r);
	return rc;
}

static void *obj_s3_mpu_worker(void *arg)
{
	struct obj_s3_mpu *m = arg;
	char msg[400];

	for (;;) {
		unsigned i;
		int rc;

		CHECK_RETURN(pthread_mutex_lock(&m->mu));
		if (m->rc || m->next >= m->nparts) {
			CHECK_RETURN(pthread_mutex_unlock(&m->mu));
			return NULL;
		}
		i = m->next++;
		CHECK_RETURN(pthread_mutex_unlock(&m->mu));

		rc = obj_s3_mpu_part(m, i, msg, sizeof(msg));
		if (rc) {
			CHECK_RETURN(pthread_mutex_lock(&m->mu));
			if (!m->rc) {
				m->rc = rc;
				snprintf(m->msg, sizeof(m->msg), "%s", msg);
			}
			CHECK_RETURN(pthread_mutex_unlock(&m->mu));
			return NULL;
		}
	}
}

static void obj_s3_mpu_abort(struct obj_s3 *s, const char *key, const char *name,
			     const char *upload_id)
{
	struct obj_s3_req r = { .method = "DELETE", .verb = OBJ_S3_V_DELETE, .key = key };
	int rc;

	atomic_fetch_add_explicit(&s->st_multipart_aborts, 1, memory_order_relaxed);
	r.query[r.nquery++] = (struct obj_s3_query){ "uploadId", upload_id };
	rc = obj_s3_perform(s, &r);
	if (rc && rc != -ENOENT)
		util_log(UTIL_LOG_WARN, OBJ_S3_MOD,
			 "s3 abort multipart upload of %s: %s (parts may linger until a lifecycle rule removes them)",
			 name, r.msg);
	obj_s3_req_free(&r);
}

static int obj_s3_put_multipart(struct obj_s3 *s, const char *key, const char *name,
				const void *data, size_t len, const char *token)
{
	struct obj_s3_req r = { .method = "POST", .verb = OBJ_S3_V_POST, .key = key };
	struct obj_s3_mpu m = { .s = s, .key = key, .data = data, .len = len };
	struct obj_s3_buf body = { 0 };
	struct obj_s3_xml *x = NULL;
	pthread_t th[OBJ_S3_PART_THREADS];
	unsigned nthreads, started = 0, i;
	char *upload_id = NULL;
	int rc, mu_init = 0;
	const char *op = "s3 PUT (multipart)";

	atomic_fetch_add_explicit(&s->st_multipart, 1, memory_order_relaxed);
	m.part_size = s->set.part_size;
	if ((len + m.part_size - 1) / m.part_size > OBJ_S3_MAX_PARTS) {
		size_t ps = (len + OBJ_S3_MAX_PARTS - 1) / OBJ_S3_MAX_PARTS;
		m.part_size = (ps + (1u << 20) - 1) & ~(((size_t)1 << 20) - 1);
	}
	if (m.part_size > OBJ_S3_MAX_PART_SIZE)
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, op, name, "object of %zu bytes is larger than S3 allows", len);
	m.nparts = (unsigned)((len + m.part_size - 1) / m.part_size);

	/* Initiate. */
	r.query[r.nquery++] = (struct obj_s3_query){ "uploads", NULL };
	if (token)
		r.hdr[r.nhdr++] = (struct obj_s3_header){ OBJ_S3_TOKEN_HEADER, token };
	if ((rc = obj_s3_perform(s, &r))) {
		rc = obj_s3_fail(rc, op, name, r.msg);
		goto out;
	}
	if (obj_s3_xml_parse(&x, r.resp.p, r.resp.len) ||
	    !obj_s3_xml_child_text(obj_s3_xml_root(x), "UploadId") ||
	    !*obj_s3_xml_child_text(obj_s3_xml_root(x), "UploadId")) {
		rc = obj_fail(-EIO, UTIL_LOG_ERROR, op, name, "malformed InitiateMultipartUpload response");
		goto out;
	}
	upload_id = strdup(obj_s3_xml_child_text(obj_s3_xml_root(x), "UploadId"));
	obj_s3_xml_free(x);
	x = NULL;
	if (!upload_id) {
		rc = obj_fail(-ENOMEM, UTIL_LOG_ERROR, op, name, "out of memory");
		goto out;
	}
	m.upload_id = upload_id;

	/* Parts, in parallel. */
	m.etags = calloc(m.nparts, sizeof(*m.etags));
	if (!m.etags) {
		rc = obj_fail(-ENOMEM, UTIL_LOG_ERROR, op, name, "out of memory");
		goto abort;
	}
	CHECK_RETURN(pthread_mutex_init(&m.mu, NULL));
	mu_init = 1;
	nthreads = OBJ_S3_PART_THREADS;
	if (nthreads > s->set.max_connections)
		nthreads = s->set.max_connections;
	if (nthreads > m.nparts)
		nthreads = m.nparts;
	for (i = 1; i < nthreads; i++) {
		if (pthread_create(&th[started], NULL, obj_s3_mpu_worker, &m))
			break; /* fewer helpers is fine: this thread works too */
		started++;
	}
	obj_s3_mpu_worker(&m);
	for (i = 0; i < started; i++)
		CHECK_RETURN(pthread_join(th[i], NULL));
	if (m.rc) {
		rc = obj_s3_fail(m.rc, op, name, m.msg);
		goto abort;
	}

	/* Complete. */
	obj_s3_buf_adds(&body, "<CompleteMultipartUpload>");
	for (i = 0; i < m.nparts; i++) {
		obj_s3_buf_addf(&body, "<Part><PartNumber>%u</PartNumber><ETag>", i + 1);
		obj_s3_xml_escape(&body, m.etags[i]);
		obj_s3_buf_adds(&body, "</ETag></Part>");
	}
	obj_s3_buf_adds(&body, "</CompleteMultipartUpload>");
	if ((rc = obj_s3_buf_err(&body))) {
		rc = obj_fail(-ENOMEM, UTIL_LOG_ERROR, op, name, "out of memory");
		goto abort;
	}
	obj_s3_req_free(&r);
	r = (struct obj_s3_req){ .method = "POST", .verb = OBJ_S3_V_POST, .key = key,
				 .body = body.p, .body_len = body.len };
	r.query[r.nquery++] = (struct obj_s3_query){ "uploadId", upload_id };
	/* Complete may take a while on big objects: allow for it. */
	r.expect_len = len;
	rc = obj_s3_perform(s, &r);
	if (rc == 0) {
		/* A 200 may still carry an <Error>. */
		if (obj_s3_xml_parse(&x, r.resp.p, r.resp.len)) {
			snprintf(r.msg, sizeof(r.msg), "malformed CompleteMultipartUpload response");
			rc = -EIO;
		} else if (!strcmp(obj_s3_xml_name(obj_s3_xml_root(x)), "Error")) {
			r.status = 500;
			rc = obj_s3_map_error(s, &r);
		}
	}
	if (rc) {
		rc = obj_s3_fail(rc, op, name, r.msg);
		goto abort;
	}
	goto out;

abort:
	obj_s3_mpu_abort(s, key, name, upload_id);
out:
	if (mu_init)
		CHECK_RETURN(pthread_mutex_destroy(&m.mu));
	obj_s3_xml_free(x);
	obj_s3_buf_free(&body);
	obj_s3_req_free(&r);
	free(m.etags);
	free(upload_id);
	return rc;
}

static int obj_s3__put(struct obj_backend *b, const char *name, const void *data, size_t len,
		       const char *token)
{
	struct obj_s3 *s = obj_s3_of(b);
	char *key = NULL;
	int rc;

	if (!obj_s3_token_ok(token))
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, "s3 PUT", name, "invalid put token");
	if ((rc = obj_s3_key(s, name, &key, "s3 PUT")))
		return rc;
	if (len >= s->set.multipart_threshold)
		rc = obj_s3_put_multipart(s, key, name, data, len, token);
	else
		rc = obj_s3_put_single(s, key, name, data, len, token, 0);
	free(key);
	return rc;
}

static int obj_s3__put_if_absent(struct obj_backend *b, const char *name, const void *data,
				 size_t len, const char *token)
{
	struct obj_s3 *s = obj_s3_of(b);
	char *key = NULL;
	int rc;

	if (!obj_s3_token_ok(token))
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, "s3 PUT (if absent)", name, "invalid put token");
	if (len > OBJ_S3_MAX_SINGLE_PUT)
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, "s3 PUT (if absent)", name,
				"%zu bytes: put_if_absent is a single PUT, limited to 5 GiB", len);
	if ((rc = obj_s3_key(s, name, &key, "s3 PUT (if absent)")))
		return rc;
	rc = obj_s3_put_single(s, key, name, data, len, token, 1);
	free(key);
	return rc;
}

/* ---- delete ------------------------------------------------------------------- */

static int obj_s3__del(struct obj_backend *b, const char *name)
{
	struct obj_s3 *s = obj_s3_of(b);
	struct obj_s3_req r = { .method = "DELETE", .verb = OBJ_S3_V_DELETE };
	char *key = NULL;
	int rc;

	if ((rc = obj_s3_key(s, name, &key, "s3 DELETE")))
		return rc;
	r.key = key;
	rc = obj_s3_perform(s, &r);
	if (rc == -ENOENT && strcmp(r.code, "NoSuchBucket"))
		rc = 0; /* already gone */
	if (rc)
		rc = obj_s3_fail(rc, "s3 DELETE", name, r.msg);
	obj_s3_req_free(&r);
	free(key);
	return rc;
}

static int obj_s3_delete_batch(struct obj_s3 *s, const char *const *names, size_t count)
{
	struct obj_s3_req r = { .method = "POST", .verb = OBJ_S3_V_POST };
	struct obj_s3_buf body = { 0 };
	struct obj_s3_xml *x = NULL;
	const struct obj_s3_xml_node *e;
	char md5[25];
	const char *op = "s3 DeleteObjects";
	int rc;

	obj_s3_buf_adds(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>");
	for (size_t i = 0; i < count; i++) {
		if (obj_name_check(names[i]) || strlen(s->prefix) + strlen(names[i]) > OBJ_NAME_MAX) {
			rc = obj_fail(-EINVAL, UTIL_LOG_ERROR, op, names[i], "invalid object name");
			goto out;
		}
		obj_s3_buf_adds(&body, "<Object><Key>");
		obj_s3_xml_escape(&body, s->prefix);
		obj_s3_xml_escape(&body, names[i]);
		obj_s3_buf_adds(&body, "</Key></Object>");
	}
	obj_s3_buf_adds(&body, "</Delete>");
	if (obj_s3_buf_err(&body) || obj_s3_md5_base64(body.p, body.len, md5)) {
		rc = obj_fail(-ENOMEM, UTIL_LOG_ERROR, op, names[0], "out of memory");
		goto out;
	}
	r.query[r.nquery++] = (struct obj_s3_query){ "delete", NULL };
	r.hdr[r.nhdr++] = (struct obj_s3_header){ "Content-MD5", md5 };
	r.body = body.p;
	r.body_len = body.len;
	rc = obj_s3_perform(s, &r);
	if (rc) {
		rc = obj_s3_fail(rc, op, names[0], r.msg);
		goto out;
	}
	if (r.resp.len == 0)
		goto out; /* quiet mode, nothing failed */
	if (obj_s3_xml_parse(&x, r.resp.p, r.resp.len)) {
		rc = obj_fail(-EIO, UTIL_LOG_ERROR, op, names[0], "malformed DeleteObjects response");
		goto out;
	}
	if (!strcmp(obj_s3_xml_name(obj_s3_xml_root(x)), "Error")) {
		r.status = 500;
		rc = obj_s3_fail(obj_s3_map_error(s, &r), op, names[0], r.msg);
		goto out;
	}
	for (e = obj_s3_xml_child(obj_s3_xml_root(x), "Error"); e; e = obj_s3_xml_next(e, "Error")) {
		const char *code = obj_s3_xml_child_text(e, "Code");
		char k[128], c[64], m[160];
		if (code && !strcmp(code, "NoSuchKey"))
			continue;
		obj_s3_sanitize(k, sizeof(k), obj_s3_xml_child_text(e, "Key"));
		obj_s3_sanitize(c, sizeof(c), code);
		obj_s3_sanitize(m, sizeof(m), obj_s3_xml_child_text(e, "Message"));
		rc = !strcmp(c, "AccessDenied") ? -EACCES
		   : (!strcmp(c, "InternalError") || !strcmp(c, "SlowDown")) ? -EAGAIN : -EIO;
		rc = obj_fail(rc, obj_s3_level(rc), op, k, "%s: %s", c[0] ? c : "error", m);
		break;
	}
out:
	obj_s3_xml_free(x);
	obj_s3_buf_free(&body);
	obj_s3_req_free(&r);
	return rc;
}

static int obj_s3__del_many(struct obj_backend *b, const char *const *names, size_t count)
{
	struct obj_s3 *s = obj_s3_of(b);
	int rc = 0;

	for (size_t i = 0; i < count && !rc; i += OBJ_S3_DELETE_BATCH) {
		size_t n = count - i < OBJ_S3_DELETE_BATCH ? count - i : OBJ_S3_DELETE_BATCH;
		rc = obj_s3_delete_batch(s, names + i, n);
	}
	return rc;
}

/* ---- list ------------------------------------------------------------------------ */

static int obj_s3__list(struct obj_backend *b, const char *prefix, const char *start_after,
			size_t max, struct obj_list **out)
{
	struct obj_s3 *s = obj_s3_of(b);
	struct obj_s3_req r = { .method = "GET", .verb = OBJ_S3_V_LIST };
	struct obj_s3_xml *x = NULL;
	struct obj_list *l = NULL;
	const struct obj_s3_xml_node *root, *c;
	char *full_prefix = NULL, *full_after = NULL, maxk[16];
	size_t pl = strlen(s->prefix), n = 0;
	const char *op = "s3 LIST";
	const char *truncated;
	int rc;

	*out = NULL;
	if (!prefix)
		prefix = "";
	if (max == 0 || max > OBJ_S3_LIST_MAX)
		max = OBJ_S3_LIST_MAX;
	rc = -ENOMEM;
	if (asprintf(&full_prefix, "%s%s", s->prefix, prefix) < 0) {
		full_prefix = NULL;
		goto nomem;
	}
	if (start_after && *start_after && asprintf(&full_after, "%s%s", s->prefix, start_after) < 0) {
		full_after = NULL;
		goto nomem;
	}
	snprintf(maxk, sizeof(maxk), "%zu", max);
	r.query[r.nquery++] = (struct obj_s3_query){ "list-type", "2" };
	r.query[r.nquery++] = (struct obj_s3_query){ "max-keys", maxk };
	if (full_prefix[0])
		r.query[r.nquery++] = (struct obj_s3_query){ "prefix", full_prefix };
	if (full_after)
		r.query[r.nquery++] = (struct obj_s3_query){ "start-after", full_after };
	if ((rc = obj_s3_perform(s, &r))) {
		rc = obj_s3_fail(rc, op, prefix, r.msg);
		goto out;
	}
	if (obj_s3_xml_parse(&x, r.resp.p, r.resp.len) ||
	    strcmp(obj_s3_xml_name(root = obj_s3_xml_root(x)), "ListBucketResult")) {
		rc = obj_fail(-EIO, UTIL_LOG_ERROR, op, prefix, "malformed ListObjectsV2 response");
		goto out;
	}
	for (c = obj_s3_xml_child(root, "Contents"); c; c = obj_s3_xml_next(c, "Contents"))
		n++;
	if (n > max) {
		rc = obj_fail(-EIO, UTIL_LOG_ERROR, op, prefix, "server returned %zu keys for max-keys %zu", n, max);
		goto out;
	}
	l = calloc(1, sizeof(*l));
	if (!l || (n && !(l->entries = calloc(n, sizeof(*l->entries)))))
		goto nomem;
	for (c = obj_s3_xml_child(root, "Contents"); c; c = obj_s3_xml_next(c, "Contents")) {
		const char *k = obj_s3_xml_child_text(c, "Key");
		const char *sz = obj_s3_xml_child_text(c, "Size");
		const char *prev = l->count ? l->entries[l->count - 1].name : NULL;
		char *end;
		unsigned long long size;

		if (!k || strncmp(k, full_prefix, strlen(full_prefix)) || !k[pl] || !sz ||
		    (full_after && strcmp(k, full_after) <= 0)) {
			rc = obj_fail(-EIO, UTIL_LOG_ERROR, op, prefix, "ListObjectsV2 returned a key outside the request");
			goto out;
		}
		size = strtoull(sz, &end, 10);
		if (!*sz || *end || sz[0] == '-') {
			rc = obj_fail(-EIO, UTIL_LOG_ERROR, op, prefix, "ListObjectsV2 returned a bad size");
			goto out;
		}
		if (prev && strcmp(prev, k + pl) >= 0) {
			rc = obj_fail(-EIO, UTIL_LOG_ERROR, op, prefix, "ListObjectsV2 keys out of order");
			goto out;
		}
		l->entries[l->count].name = strdup(k + pl);
		if (!l->entries[l->count].name)
			goto nomem;
		l->entries[l->count++].size = size;
	}
	truncated = obj_s3_xml_child_text(root, "IsTruncated");
	l->truncated = truncated && !strcmp(truncated, "true");
	if (l->truncated && l->count == 0) {
		/* Nothing to continue from: a server bug we cannot page past. */
		rc = obj_fail(-EIO, UTIL_LOG_ERROR, op, prefix, "ListObjectsV2 truncated with no keys");
		goto out;
	}
	*out = l;
	l = NULL;
	rc = 0;
	goto out;
nomem:
	rc = obj_fail(-ENOMEM, UTIL_LOG_ERROR, op, prefix, "out of memory");
out:
	obj_list_free(l);
	obj_s3_xml_free(x);
	obj_s3_req_free(&r);
	free(full_prefix);
	free(full_after);
	return rc;
}

/* ---- stats / free ------------------------------------------------------------- */

static void obj_s3__stats(struct obj_backend *b, obj_stat_emit_fn emit, void *arg)
{
	struct obj_s3 *s = obj_s3_of(b);
	char key[48];

	for (int v = 0; v < OBJ_S3_V__N; v++) {
		snprintf(key, sizeof(key), "s3_requests_%s", obj_s3_verb_names[v]);
		emit(arg, key, atomic_load(&s->st_req[v]));
	}
	emit(arg, "s3_bytes_in", atomic_load(&s->st_bytes_in));
	emit(arg, "s3_bytes_out", atomic_load(&s->st_bytes_out));
	emit(arg, "s3_http_4xx", atomic_load(&s->st_http_4xx));
	emit(arg, "s3_http_5xx", atomic_load(&s->st_http_5xx));
	emit(arg, "s3_transport_errors", atomic_load(&s->st_transport_err));
	emit(arg, "s3_connections_new", atomic_load(&s->st_conn_new));
	emit(arg, "s3_connections_reused", atomic_load(&s->st_conn_reused));
	emit(arg, "s3_pool_waits", atomic_load(&s->st_pool_waits));
	emit(arg, "s3_multipart_uploads", atomic_load(&s->st_multipart));
	emit(arg, "s3_multipart_aborts", atomic_load(&s->st_multipart_aborts));
	if (s->cred)
		obj_s3_cred_stats(s->cred, emit, arg);
}

static void obj_s3__free(struct obj_backend *b)
{
	struct obj_s3 *s = obj_s3_of(b);

	if (!s)
		return;
	/* No call may be in progress (objstore.h), so every handle is idle. */
	assert(s->pool_nfree == s->pool_created);
	for (unsigned i = 0; i < s->pool_nfree; i++)
		curl_easy_cleanup(s->pool_free[i]);
	free(s->pool_free);
	CHECK_RETURN(pthread_cond_destroy(&s->pool_cv));
	CHECK_RETURN(pthread_mutex_destroy(&s->pool_mu));
	obj_s3_cred_free(s->cred);
	obj_s3_settings_clear(&s->set);
	free(s->bucket);
	free(s->prefix);
	free(s->host_hdr);
	free(s->url_base);
	free(s->path_base);
	free(s);
}

/* ---- construction ---------------------------------------------------------------- */

static int obj_s3_bucket_ok(const char *bucket)
{
	size_t n = bucket ? strlen(bucket) : 0;
	if (n < 3 || n > 255)
		return 0;
	for (const char *c = bucket; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '.' || *c == '-' || *c == '_'))
			return 0;
	return 1;
}

/*
 * obj_s3_create - an S3 backend for `bucket`, storing objects under
 * `prefix` ("" or NULL for the bucket's root; a missing trailing '/' is
 * added). Resolves configuration (see obj_s3_conf.c) but makes no request:
 * a wrong key or a missing bucket shows at the first operation, or at
 * obj_s3_probe_conditional(). On success *out is the caller's (->free).
 * Returns 0, -EINVAL (bad bucket, malformed endpoint), -EACCES (no
 * credentials), -ENOMEM, -EIO (libcurl could not initialise); the reason
 * is in obj_last_error().
 */
int obj_s3_create(struct obj_backend **out, const char *bucket, const char *prefix,
		  const struct obj_s3_config *conf)
{
	struct obj_s3 *s = NULL;
	char err[700];
	size_t pl;
	int rc;

	*out = NULL;
	pthread_once(&obj_s3_once, obj_s3_global_init);
	if (obj_s3_global_rc != CURLE_OK)
		return obj_fail(-EIO, UTIL_LOG_ERROR, "s3 open", bucket ? bucket : "", "libcurl initialisation failed");
	if (!obj_s3_bucket_ok(bucket))
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, "s3 open", bucket ? bucket : "(null)",
				"invalid bucket name");
	if (!prefix)
		prefix = "";
	if (prefix[0] == '/' || strlen(prefix) >= OBJ_NAME_MAX)
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, "s3 open", bucket, "invalid key prefix");

	s = calloc(1, sizeof(*s));
	if (!s)
		return obj_fail(-ENOMEM, UTIL_LOG_ERROR, "s3 open", bucket, "out of memory");
	CHECK_RETURN(pthread_mutex_init(&s->pool_mu, NULL));
	CHECK_RETURN(pthread_cond_init(&s->pool_cv, NULL));
	rc = obj_s3_settings_resolve(&s->set, conf, bucket, err, sizeof(err));
	if (!rc)
		rc = obj_s3_cred_create(&s->cred, &s->set, conf, bucket, err, sizeof(err));
	if (rc) {
		rc = obj_fail(rc, UTIL_LOG_ERROR, "s3 open", bucket, "%s", err[0] ? err : util_strerror(rc));
		goto fail;
	}

	pl = strlen(prefix);
	rc = -ENOMEM;
	s->bucket = strdup(bucket);
	s->prefix = malloc(pl + 2);
	s->pool_free = calloc(s->set.max_connections, sizeof(*s->pool_free));
	if (!s->bucket || !s->prefix || !s->pool_free)
		goto nomem;
	memcpy(s->prefix, prefix, pl + 1);
	if (pl && prefix[pl - 1] != '/')
		memcpy(s->prefix + pl, "/", 2);

	{
		char port[16] = "";
		int def = s->set.port == 0 || (s->set.port == 80 && !strcmp(s->set.scheme, "http")) ||
			  (s->set.port == 443 && !strcmp(s->set.scheme, "https"));
		if (!def)
			snprintf(port, sizeof(port), ":%u", s->set.port);
		if (s->set.path_style) {
			if (asprintf(&s->host_hdr, "%s%s", s->set.host, port) < 0)
				s->host_hdr = NULL;
			if (asprintf(&s->path_base, "/%s", bucket) < 0)
				s->path_base = NULL;
		} else {
			if (asprintf(&s->host_hdr, "%s.%s%s", bucket, s->set.host, port) < 0)
				s->host_hdr = NULL;
			s->path_base = strdup("");
		}
		if (!s->host_hdr || !s->path_base ||
		    asprintf(&s->url_base, "%s://%s", s->set.scheme, s->host_hdr) < 0) {
			s->url_base = NULL;
			goto nomem;
		}
	}

	s->base.version = OBJ_BACKEND_VERSION;
	s->base.kind = "s3";
	s->base.get = obj_s3__get;
	s->base.head = obj_s3__head;
	s->base.put = obj_s3__put;
	s->base.put_if_absent = obj_s3__put_if_absent;
	s->base.del = obj_s3__del;
	s->base.list = obj_s3__list;
	s->base.del_many = obj_s3__del_many;
	s->base.stats = obj_s3__stats;
	s->base.free = obj_s3__free;
	util_log(UTIL_LOG_INFO, OBJ_S3_MOD, "s3://%s/%s at %s://%s (%s, region %s, credentials: %s)",
		 bucket, s->prefix, s->set.scheme, s->host_hdr,
		 s->set.path_style ? "path-style" : "virtual-hosted", s->set.region,
		 obj_s3_cred_source(s->cred));
	*out = &s->base;
	return 0;

nomem:
	rc = obj_fail(-ENOMEM, UTIL_LOG_ERROR, "s3 open", bucket, "out of memory");
fail:
	obj_s3__free(&s->base);
	return rc;
}

/*
 * obj_s3_probe_conditional - check that the store honours If-None-Match: *
 * on PUT, by creating one probe object twice. Returns 0 when the second
 * create got 412, -ENOTSUP when the store overwrote instead, -EINVAL when
 * b is not an S3 backend, or the error of the first failing request (a
 * wrong secret, a missing bucket, an unreachable endpoint show here). The
 * probe object is deleted in every case. Thread-safe.
 */
int obj_s3_probe_conditional(struct obj_backend *b)
{
	char name[80], token[40];
	uint64_t r;
	int rc, rc2;

	if (!b || !b->kind || strcmp(b->kind, "s3") || b->free != obj_s3__free)
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, "s3 probe", "", "not an S3 backend");
	r = util_rand_os_seed();
	snprintf(name, sizeof(name), ".shalefs-probe-%016llx", (unsigned long long)r);
	snprintf(token, sizeof(token), "probe-%016llx", (unsigned long long)r);
	rc = obj_s3__put_if_absent(b, name, "1", 1, token);
	if (rc)
		return rc;
	rc = obj_s3__put_if_absent(b, name, "2", 1, token);
	if (rc == -EEXIST)
		rc = 0;
	else if (rc == 0)
		rc = obj_fail(-ENOTSUP, UTIL_LOG_ERROR, "s3 probe", name,
			      "the store ignores If-None-Match on PUT: concurrent writers are unsafe");
	rc2 = obj_s3__del(b, name);
	return rc ? rc : rc2;
}
