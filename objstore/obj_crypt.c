/*
 * obj_crypt.c - the encryption wrapper: every object the engine stores is
 * AES-256-GCM ciphertext, cut into chunks so that a ranged get fetches and
 * decrypts only the chunks it covers (docs/encryption.md). The store's
 * marker and key object ("shalefs-store", "shalefs-key*") pass through in
 * the clear: they must be readable before the key is known, and hold no
 * file data.
 *
 * CHUNK FORMAT (every other object)
 *   The plaintext is cut into chunks of OBJ_CRYPT_CHUNK (16384) bytes; the
 *   last chunk holds the rest (1..16384 bytes), and an empty object is one
 *   empty chunk, so every object has a final chunk. Each chunk is stored
 *   as
 *       nonce   12 bytes, random for every chunk of every write
 *       data    the chunk's bytes, AES-256-GCM encrypted with the data key
 *       tag     16 bytes, the GCM tag
 *   back to back, with no object header: chunk i starts at ciphertext
 *   offset i * 16412, and an object of S ciphertext bytes has
 *   n = ceil(S / 16412) chunks and S - 28 n plaintext bytes (a size whose
 *   last chunk is shorter than 28 bytes is no object's: -EIO). The
 *   associated data of chunk i is
 *       "shalefs-chunk 1" and a NUL     16 bytes: framing version
 *       store id                        16 bytes, from the key object
 *       i                               8 bytes, big-endian
 *       final                           1 byte: 1 for the last chunk, else 0
 *       the object's name               its bytes, no terminator
 *   so a chunk moved to another offset, an object cut short at a chunk
 *   boundary or extended, an object copied under another name or into
 *   another store, and any flipped bit all fail the tag.
 *
 * RANGED GETS
 *   get(off, len) fetches chunks off/16384 .. (off+len-1)/16384 and one
 *   byte more: that byte tells whether the last fetched chunk is the final
 *   one (no byte: the object ends there, and the chunk must say so). A get
 *   that starts at or past the end (nothing fetched) reads the object's
 *   final chunk to prove that the end is real, not a truncation.
 *
 * SPARE
 *   A put seals into a buffer as big as the object (a table: tens of
 *   MiB). A fresh one costs the kernel a zeroed page for every page of
 *   it, more than the cipher, so the wrapper keeps buffers given back
 *   (two: a flush and a compaction put at once; CRYPT_SPARE_MAX bytes
 *   in all, the RSS an encrypted mount adds) and hands one to the next
 *   put it fits, unless it is over twice the size asked for. A buffer is
 *   made an eighth larger than asked (when it could be kept): tables of
 *   one kind differ by a little, and one a byte bigger than the kept
 *   buffer would fault in a fresh one.
 *
 * THREADING
 *   The data key is read-only after create; each call has its own cipher
 *   context; counters are atomics; the spare buffer has its mutex.
 */
#include "objstore/objstore_int.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#define CRYPT_CC ((uint64_t)OBJ_CRYPT_CHUNK + OBJ_CRYPT_OVERHEAD)
#define CRYPT_AAD_MAGIC "shalefs-chunk 1"     /* 15 bytes + NUL = 16 */
#define CRYPT_AAD_FIXED (16 + OBJ_CRYPT_ID_LEN + 8 + 1)
#define CRYPT_NONCE_BATCH 64
#define CRYPT_SPARE_MAX ((size_t)160 << 20)  /* seal buffers kept, bytes in all (SPARE) */
#define CRYPT_SPARES 2

struct obj_crypt {
	struct obj_wrapper w;             /* must be first */
	struct obj_crypt_secret *key;     /* owned; read-only after create */
	atomic_uint_fast64_t sealed;      /* chunks encrypted */
	atomic_uint_fast64_t opened;      /* chunks decrypted */
	atomic_uint_fast64_t auth_failures;
	pthread_mutex_t spare_mu;
	void *spare[CRYPT_SPARES];        /* SPARE: protected by spare_mu */
	size_t spare_cap[CRYPT_SPARES];
};

#define CRYPT_INNER(b) (((struct obj_wrapper *)(b))->inner)

/* Names stored in the clear: the store marker and the key objects. */
static int crypt_clear_name(const char *name)
{
	return !strcmp(name, "shalefs-store") || !strncmp(name, "shalefs-key", 11);
}

int obj_crypt_plain_size(uint64_t ct, uint64_t *plain)
{
	uint64_t n = (ct + CRYPT_CC - 1) / CRYPT_CC;

	if (ct == 0 || ct - (n - 1) * CRYPT_CC < OBJ_CRYPT_OVERHEAD)
		return -EIO;
	*plain = ct - n * OBJ_CRYPT_OVERHEAD;
	return 0;
}

uint64_t obj_crypt_cipher_size(uint64_t plain)
{
	uint64_t n = plain == 0 ? 1 : (plain + OBJ_CRYPT_CHUNK - 1) / OBJ_CRYPT_CHUNK;
	return plain + n * OBJ_CRYPT_OVERHEAD;
}

/* The associated data of chunk i of `name` into aad; returns its length. */
static size_t crypt_aad(uint8_t *aad, const struct obj_crypt_secret *k, const char *name,
			size_t name_len, uint64_t i, int final)
{
	memcpy(aad, CRYPT_AAD_MAGIC, 16);
	memcpy(aad + 16, k->id, OBJ_CRYPT_ID_LEN);
	util_put_be64(aad + 16 + OBJ_CRYPT_ID_LEN, i);
	aad[CRYPT_AAD_FIXED - 1] = (uint8_t)(final ? 1 : 0);
	memcpy(aad + CRYPT_AAD_FIXED, name, name_len);
	return CRYPT_AAD_FIXED + name_len;
}

/* Chunks [i0, i1) of an object of n chunks and len plaintext bytes. */
struct crypt_seal_range {
	const struct obj_crypt_secret *k;
	const char *name;
	size_t nlen, len;
	const uint8_t *data;
	uint8_t *ct;
	uint64_t n, i0, i1;
	int rc;
};

static void *crypt_seal_range(void *arg)
{
	struct crypt_seal_range *r = arg;
	uint8_t aad[CRYPT_AAD_FIXED + OBJ_NAME_MAX];
	uint8_t nonces[12 * CRYPT_NONCE_BATCH];
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int m;

	r->rc = -ENOMEM;
	if (!ctx)
		return NULL;
	r->rc = -EIO;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, r->k->key, NULL) != 1)
		goto out;
	for (uint64_t i = r->i0; i < r->i1; i++) {
		const uint8_t *pt = r->data + i * OBJ_CRYPT_CHUNK;
		uint8_t *p = r->ct + i * CRYPT_CC;
		size_t plen = i + 1 < r->n ? OBJ_CRYPT_CHUNK : r->len - (size_t)i * OBJ_CRYPT_CHUNK;
		size_t alen = crypt_aad(aad, r->k, r->name, r->nlen, i, i + 1 == r->n);
		/* Random nonces, drawn CRYPT_NONCE_BATCH at a time: one
		 * RAND_bytes call per chunk cost more than the cipher. */
		if ((i - r->i0) % CRYPT_NONCE_BATCH == 0 &&
		    RAND_bytes(nonces, (int)sizeof(nonces)) != 1)
			goto out;
		memcpy(p, nonces + 12 * ((i - r->i0) % CRYPT_NONCE_BATCH), 12);
		if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, p) != 1 ||
		    EVP_EncryptUpdate(ctx, NULL, &m, aad, (int)alen) != 1 ||
		    (plen && EVP_EncryptUpdate(ctx, p + 12, &m, pt, (int)plen) != 1) ||
		    EVP_EncryptFinal_ex(ctx, p + 12 + plen, &m) != 1 ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, p + 12 + plen) != 1)
			goto out;
	}
	r->rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return NULL;
}

/* An object of at least this many chunks is sealed by two threads: the
 * seal of a table is on its flush's path to the store, and a second core
 * halves it (the chunks are independent). */
#define CRYPT_SPLIT_CHUNKS 256

int obj_crypt_seal_into(const struct obj_crypt_secret *k, const char *name, const void *data,
			size_t len, uint8_t *ct)
{
	size_t nlen = strnlen(name, OBJ_NAME_MAX + 1);
	uint64_t total = obj_crypt_cipher_size(len);
	struct crypt_seal_range a, b;
	pthread_t t;
	int split;

	if (nlen > OBJ_NAME_MAX || total < len || total > SIZE_MAX)
		return -EINVAL;
	a = (struct crypt_seal_range){ .k = k, .name = name, .nlen = nlen, .len = len,
				       .data = data, .ct = ct,
				       .n = (total - len) / OBJ_CRYPT_OVERHEAD };
	a.i1 = a.n;
	b = a;
	split = a.n >= CRYPT_SPLIT_CHUNKS;
	if (split) {
		a.i1 = b.i0 = a.n / 2;
		split = pthread_create(&t, NULL, crypt_seal_range, &b) == 0;
		if (!split)
			a.i1 = a.n;
	}
	crypt_seal_range(&a);
	if (split) {
		CHECK_RETURN(pthread_join(t, NULL));
		if (!a.rc)
			a.rc = b.rc;
	}
	return a.rc;
}

int obj_crypt_seal(const struct obj_crypt_secret *k, const char *name, const void *data,
		   size_t len, void **out, size_t *out_len)
{
	uint64_t total = obj_crypt_cipher_size(len);
	uint8_t *ct;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (total < len || total > SIZE_MAX)
		return -EINVAL;
	if (!(ct = util_big_alloc((size_t)total)))
		return -ENOMEM;
	rc = obj_crypt_seal_into(k, name, data, len, ct);
	if (rc) {
		free(ct);
		return rc;
	}
	*out = ct;
	*out_len = (size_t)total;
	return 0;
}

ssize_t obj_crypt_unseal(const struct obj_crypt_secret *k, const char *name,
			 uint64_t first_chunk, uint8_t *buf, size_t ct_len, int ends, size_t skip,
			 const char **why, uint64_t *bad)
{
	uint8_t aad[CRYPT_AAD_FIXED + OBJ_NAME_MAX];
	size_t nlen = strnlen(name, OBJ_NAME_MAX + 1);
	uint64_t n = (ct_len + CRYPT_CC - 1) / CRYPT_CC;
	size_t rem = (size_t)(ct_len % CRYPT_CC), done = 0;
	EVP_CIPHER_CTX *ctx = NULL;
	ssize_t rc = -EIO;
	int m;

	*why = NULL;
	*bad = first_chunk;
	if (nlen > OBJ_NAME_MAX)
		return -EINVAL;
	if (n == 0) {
		*why = "no chunk where one must be (object emptied or cut short)";
		return -EIO;
	}
	if (rem && rem < OBJ_CRYPT_OVERHEAD) {
		*bad = first_chunk + n - 1;
		*why = "a chunk shorter than its nonce and tag (object cut short)";
		return -EIO;
	}
	if (rem && !ends) {
		*bad = first_chunk + n - 1;
		*why = "a short chunk that is not the last (object cut short)";
		return -EIO;
	}
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->key, NULL) != 1) {
		*why = "cipher setup failed";
		goto out;
	}
	/* In place: chunk j's plaintext is decrypted where its ciphertext is,
	 * then moved down to just after the previous chunk's. The output
	 * never overtakes the input (16384 j - skip <= 16412 j + 12), and
	 * each move is of one chunk that is still in the cache. */
	for (uint64_t j = 0; j < n; j++) {
		uint8_t *c = buf + j * CRYPT_CC, tag[16];
		size_t clen = j + 1 < n || !rem ? (size_t)CRYPT_CC : rem;
		size_t plen = clen - OBJ_CRYPT_OVERHEAD, from = j == 0 ? skip : 0;
		size_t alen = crypt_aad(aad, k, name, nlen, first_chunk + j, ends && j + 1 == n);

		*bad = first_chunk + j;
		memcpy(tag, c + 12 + plen, 16);
		if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, c) != 1 ||
		    EVP_DecryptUpdate(ctx, NULL, &m, aad, (int)alen) != 1 ||
		    (plen && EVP_DecryptUpdate(ctx, c + 12, &m, c + 12, (int)plen) != 1) ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1 ||
		    EVP_DecryptFinal_ex(ctx, tag, &m) != 1) {
			*why = "authentication failed (tampered, truncated, replaced, or copied "
			       "from another name or store)";
			goto out;
		}
		if (from < plen) {
			memmove(buf + done, c + 12 + from, plen - from);
			done += plen - from;
		}
	}
	rc = (ssize_t)done;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

static int crypt_auth_fail(struct obj_crypt *c, const char *op, const char *name, uint64_t chunk,
			   const char *why)
{
	atomic_fetch_add(&c->auth_failures, 1);
	return obj_fail(-EBADMSG, UTIL_LOG_ERROR, op, name, "encrypted chunk %" PRIu64 ": %s", chunk,
			why ? why : "cannot be decrypted");
}

/* Decrypt ct (chunks from `first` on, as fetched) in place: on success
 * its first *pt_len bytes are the plaintext from `skip` bytes into chunk
 * `first` on. */
static int crypt_open_span(struct obj_crypt *c, const char *op, const char *name,
			   uint64_t first, void *ct, size_t ct_len, int ends, size_t skip,
			   size_t *pt_len)
{
	const char *why;
	uint64_t bad;
	ssize_t n;

	*pt_len = 0;
	n = obj_crypt_unseal(c->key, name, first, ct, ct_len, ends, skip, &why, &bad);
	if (n < 0)
		return n == -EIO ? crypt_auth_fail(c, op, name, bad, why) : (int)n;
	atomic_fetch_add(&c->opened, (ct_len + CRYPT_CC - 1) / CRYPT_CC);
	*pt_len = (size_t)n;
	return 0;
}

/* A get that fetched nothing at chunk `first`: prove the object really
 * ends before it by reading and checking its final chunk. */
static int crypt_check_end(struct obj_crypt *c, const char *name, uint64_t first)
{
	struct obj_backend *in = CRYPT_INNER(c);
	struct obj_stat st;
	uint64_t plain, n;
	void *ct = NULL;
	size_t ct_len = 0, pt_len = 0;
	int rc;

	if (first == 0)
		return crypt_auth_fail(c, "get", name, 0, "the object is empty: an encrypted "
				       "object always has a chunk (object emptied)");
	rc = in->head(in, name, &st);
	if (rc)
		return rc;
	if (obj_crypt_plain_size(st.size, &plain))
		return crypt_auth_fail(c, "get", name, st.size / CRYPT_CC,
				       "its size is no encrypted object's (object cut short)");
	n = (st.size + CRYPT_CC - 1) / CRYPT_CC;
	if (n > first)
		return obj_fail(-EIO, UTIL_LOG_ERROR, "get", name, "object changed while read");
	rc = in->get(in, name, (n - 1) * CRYPT_CC, OBJ_WHOLE, &ct, &ct_len);
	if (rc)
		return rc;
	rc = crypt_open_span(c, "get", name, n - 1, ct, ct_len, 1, 0, &pt_len);
	obj_buf_free(ct);
	return rc;
}

static int obj_crypt__get(struct obj_backend *b, const char *name, uint64_t off, uint64_t len,
			  void **out, size_t *out_len)
{
	struct obj_crypt *c = (struct obj_crypt *)b;
	struct obj_backend *in = CRYPT_INNER(b);
	uint64_t first = off / OBJ_CRYPT_CHUNK, last, ct_off, ct_len, skip;
	void *ct = NULL;
	size_t got = 0, pt_len = 0;
	int rc, ends, whole;

	*out = NULL;
	*out_len = 0;
	if (crypt_clear_name(name))
		return in->get(in, name, off, len, out, out_len);
	whole = len == OBJ_WHOLE || off + len < off || len > UINT64_MAX / 2;
	ct_off = first * CRYPT_CC;
	if (whole) {
		ct_len = OBJ_WHOLE;
	} else {
		last = (off + (len ? len : 1) - 1) / OBJ_CRYPT_CHUNK;
		ct_len = (last - first + 1) * CRYPT_CC + 1;
	}
	rc = in->get(in, name, ct_off, ct_len, &ct, &got);
	if (rc)
		return rc;
	if (got == 0) {
		rc = crypt_check_end(c, name, first);
		return rc;
	}
	ends = whole || got < ct_len;
	if (!ends)
		got--;                          /* the probe byte */
	skip = off - first * OBJ_CRYPT_CHUNK;
	rc = crypt_open_span(c, "get", name, first, ct, got, ends, (size_t)skip, &pt_len);
	if (rc || len == 0 || pt_len == 0) {
		obj_buf_free(ct);
		return rc;
	}
	if (!whole && pt_len > len)
		pt_len = (size_t)len;
	/* The fetched buffer is the caller's now (obj_buf_free). */
	*out = ct;
	*out_len = pt_len;
	return 0;
}

static int obj_crypt__head(struct obj_backend *b, const char *name, struct obj_stat *st)
{
	struct obj_crypt *c = (struct obj_crypt *)b;
	struct obj_backend *in = CRYPT_INNER(b);
	uint64_t plain;
	int rc = in->head(in, name, st);

	if (rc || crypt_clear_name(name))
		return rc;
	if (obj_crypt_plain_size(st->size, &plain))
		return crypt_auth_fail(c, "head", name, st->size / CRYPT_CC,
				       "its size is no encrypted object's (object cut short)");
	st->size = plain;
	return 0;
}

/* A buffer of at least n bytes for a put to seal into (SPARE); *cap is
 * its size, for crypt_spare_put. */
static void *crypt_spare_get(struct obj_crypt *c, size_t n, size_t *cap)
{
	void *p = NULL;
	int best = -1;

	CHECK_RETURN(pthread_mutex_lock(&c->spare_mu));
	for (int i = 0; i < CRYPT_SPARES; i++) {
		if (c->spare[i] && c->spare_cap[i] >= n && c->spare_cap[i] / 2 <= n &&
		    (best < 0 || c->spare_cap[i] < c->spare_cap[best]))
			best = i;
	}
	if (best >= 0) {
		p = c->spare[best];
		*cap = c->spare_cap[best];
		c->spare[best] = NULL;
		c->spare_cap[best] = 0;
	}
	CHECK_RETURN(pthread_mutex_unlock(&c->spare_mu));
	if (!p) {
		size_t want = n + n / 8 <= CRYPT_SPARE_MAX ? n + n / 8 : n;
		if ((p = util_big_alloc(want)))
			*cap = want;
	}
	return p;
}

/* Give back a buffer of crypt_spare_get: kept in an empty slot, or in
 * place of a smaller one, while the kept bytes stay within
 * CRYPT_SPARE_MAX; freed otherwise. */
static void crypt_spare_put(struct obj_crypt *c, void *p, size_t cap)
{
	size_t total = 0;
	int slot = -1;

	CHECK_RETURN(pthread_mutex_lock(&c->spare_mu));
	for (int i = 0; i < CRYPT_SPARES; i++) {
		total += c->spare_cap[i];
		if (slot < 0 || c->spare_cap[i] < c->spare_cap[slot])
			slot = i;           /* the empty or smallest slot */
	}
	if (c->spare_cap[slot] < cap && total - c->spare_cap[slot] + cap <= CRYPT_SPARE_MAX) {
		void *old = c->spare[slot];
		c->spare[slot] = p;
		c->spare_cap[slot] = cap;
		p = old;
	}
	CHECK_RETURN(pthread_mutex_unlock(&c->spare_mu));
	free(p);
}

static int crypt_put(struct obj_backend *b, int create_only, const char *name, const void *data,
		     size_t len, const char *token)
{
	struct obj_crypt *c = (struct obj_crypt *)b;
	struct obj_backend *in = CRYPT_INNER(b);
	void *ct;
	size_t ct_len, cap = 0;
	int rc;

	if (crypt_clear_name(name))
		return create_only ? in->put_if_absent(in, name, data, len, token) :
				     in->put(in, name, data, len, token);
	ct_len = (size_t)obj_crypt_cipher_size(len);
	if (ct_len < len)
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, create_only ? "put_if_absent" : "put", name,
				"object too big to encrypt");
	if (!(ct = crypt_spare_get(c, ct_len, &cap)))
		return -ENOMEM;
	rc = obj_crypt_seal_into(c->key, name, data, len, ct);
	if (rc) {
		crypt_spare_put(c, ct, cap);
		return obj_fail(rc, UTIL_LOG_ERROR, create_only ? "put_if_absent" : "put", name,
				"encryption failed: %s", util_strerror(rc));
	}
	atomic_fetch_add(&c->sealed, (ct_len - len) / OBJ_CRYPT_OVERHEAD);
	rc = create_only ? in->put_if_absent(in, name, ct, ct_len, token) :
			   in->put(in, name, ct, ct_len, token);
	crypt_spare_put(c, ct, cap);
	return rc;
}

static int obj_crypt__put(struct obj_backend *b, const char *name, const void *data, size_t len,
			  const char *token)
{
	return crypt_put(b, 0, name, data, len, token);
}

static int obj_crypt__put_if_absent(struct obj_backend *b, const char *name, const void *data,
				    size_t len, const char *token)
{
	return crypt_put(b, 1, name, data, len, token);
}

static int obj_crypt__del(struct obj_backend *b, const char *name)
{
	struct obj_backend *in = CRYPT_INNER(b);
	return in->del(in, name);
}

static int obj_crypt__del_many(struct obj_backend *b, const char *const *names, size_t count)
{
	return obj_delete_many(CRYPT_INNER(b), names, count);
}

static int obj_crypt__list(struct obj_backend *b, const char *prefix, const char *start_after,
			   size_t max, struct obj_list **out)
{
	struct obj_backend *in = CRYPT_INNER(b);
	int rc = in->list(in, prefix, start_after, max, out);

	if (rc)
		return rc;
	for (size_t i = 0; i < (*out)->count; i++) {
		struct obj_list_entry *e = &(*out)->entries[i];
		uint64_t plain;
		if (crypt_clear_name(e->name))
			continue;
		/* A size no object has is reported as 0; reading it says why. */
		e->size = obj_crypt_plain_size(e->size, &plain) ? 0 : plain;
	}
	return 0;
}

static void obj_crypt__stats(struct obj_backend *b, obj_stat_emit_fn emit, void *arg)
{
	struct obj_crypt *c = (struct obj_crypt *)b;

	emit(arg, "objstore_crypt_chunks_encrypted", atomic_load(&c->sealed));
	emit(arg, "objstore_crypt_chunks_decrypted", atomic_load(&c->opened));
	emit(arg, "objstore_crypt_auth_failures", atomic_load(&c->auth_failures));
	obj_stats(c->w.inner, emit, arg);
}

static void obj_crypt__free(struct obj_backend *b)
{
	struct obj_crypt *c = (struct obj_crypt *)b;
	obj_close(c->w.inner);
	obj_crypt_secret_free(c->key);
	for (int i = 0; i < CRYPT_SPARES; i++)
		free(c->spare[i]);
	CHECK_RETURN(pthread_mutex_destroy(&c->spare_mu));
	free(c);
}

int obj_crypt_open(struct obj_backend **out, struct obj_backend *inner,
		   const struct obj_crypt_config *conf)
{
	struct obj_crypt *c;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	rc = obj_crypt_load(&c->key, inner, conf);
	if (rc) {
		free(c);
		return rc;
	}
	CHECK_RETURN(pthread_mutex_init(&c->spare_mu, NULL));
	c->w.inner = inner;
	c->w.base.version = OBJ_BACKEND_VERSION;
	c->w.base.kind = "crypt";
	c->w.base.get = obj_crypt__get;
	c->w.base.head = obj_crypt__head;
	c->w.base.put = obj_crypt__put;
	c->w.base.put_if_absent = obj_crypt__put_if_absent;
	c->w.base.del = obj_crypt__del;
	c->w.base.list = obj_crypt__list;
	c->w.base.del_many = obj_crypt__del_many;
	c->w.base.stats = obj_crypt__stats;
	c->w.base.free = obj_crypt__free;
	*out = &c->w.base;
	return 0;
}

int obj_is_encrypted(struct obj_backend *b)
{
	for (; b; b = obj_wrapper_inner(b))
		if (b->kind && !strcmp(b->kind, "crypt"))
			return 1;
	return 0;
}
