/*
 * kv_sst_block.c - SST blocks: a stored block checked (trailer, CRC32C)
 * and decoded (zstd or none), a decoded block parsed (restart array) and
 * iterated, and a decoded block put into the block cache. The format is
 * described above the encoder in kv_sst_build.c; the reader
 * (kv_sst_read.c) and the read-ahead planner (kv_readahead.c) call these.
 *
 * TRUST
 *   Every byte from the store is untrusted. Every decode error returns
 *   KV_ECORRUPT and logs one line naming the object and the place
 *   ("sst/<id>.sst: block at offset N: checksum mismatch"); nothing here
 *   asserts on store bytes. Offsets and lengths are range-checked before
 *   use, never trusted to fit. A NULL object name makes a decoder quiet:
 *   the block was read ahead and nobody has asked for it yet, so its
 *   error is reported when someone does (kv_readahead.c).
 *
 * THREADS
 *   Everything here works on the caller's buffers and iterators; the only
 *   shared state is the per-thread zstd context (kv_sst_dctx).
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* ---- stored blocks ------------------------------------------------------ */


/*
 * Check the trailer of a stored block (p, n bytes including the trailer).
 * *body_len and *type get the stored payload length and its compression.
 */
int kv_sst_check_stored(const char *name, uint64_t off, const uint8_t *p, size_t n,
			size_t *body_len, uint8_t *type)
{
	if (n < KV_SST_TRAILER_SIZE)
		return KV_CORRUPT(name, off, "block at offset %" PRIu64 ": shorter than its trailer",
				  off);
	size_t body = n - KV_SST_TRAILER_SIZE;
	uint8_t t = p[body];
	uint32_t want = util_get_be32(p + body + 1);
	uint32_t crc = util_crc32c(0, p, body);
	crc = util_crc32c(crc, &t, 1);
	if (!KV_SST_CRC_OK(want, crc))
		return KV_CORRUPT(name, off, "block at offset %" PRIu64 ": checksum mismatch", off);
	*body_len = body;
	*type = t;
	return 0;
}

/*
 * A decompression context per thread, reused across blocks: creating one
 * per block was two thirds of a random read's instructions (callgrind on
 * kvbench readrandom). Freed when the thread exits. NULL (allocation
 * failed) makes the caller fall back to the one-shot ZSTD_decompress.
 */
static pthread_key_t kv_sst_dctx_key;
static pthread_once_t kv_sst_dctx_once = PTHREAD_ONCE_INIT;

static void kv_sst_dctx_free(void *p)
{
	ZSTD_freeDCtx(p);
}

static void kv_sst_dctx_init(void)
{
	if (pthread_key_create(&kv_sst_dctx_key, kv_sst_dctx_free))
		kv_sst_dctx_key = (pthread_key_t)-1;
}

static ZSTD_DCtx *kv_sst_dctx(void)
{
	ZSTD_DCtx *d;
	pthread_once(&kv_sst_dctx_once, kv_sst_dctx_init);
	if (kv_sst_dctx_key == (pthread_key_t)-1)
		return NULL;
	d = pthread_getspecific(kv_sst_dctx_key);
	if (!d && (d = ZSTD_createDCtx()) != NULL && pthread_setspecific(kv_sst_dctx_key, d)) {
		ZSTD_freeDCtx(d);
		d = NULL;
	}
	return d;
}

/*
 * Check and decode a stored data block into a fresh malloc'd buffer
 * (*out, *out_len; the caller's, free()). Returns 0, KV_ECORRUPT, -ENOMEM.
 */
static int kv_sst_unwrap(const char *name, uint64_t off, const uint8_t *p, size_t n,
			 uint8_t **out, size_t *out_len)
{
	size_t body, len;
	uint8_t type, *buf;
	int rc = kv_sst_check_stored(name, off, p, n, &body, &type);
	if (rc)
		return rc;
	switch (type) {
	case KV_SST_COMP_NONE:
		len = body;
		if (len > KV_SST_BLOCK_MAX)
			return KV_CORRUPT(name, off, "block at offset %" PRIu64 ": %zu bytes is too large",
					  off, len);
		if (!(buf = malloc(len ? len : 1)))
			return -ENOMEM;
		if (len)
			memcpy(buf, p, len);
		break;
	case KV_SST_COMP_ZSTD: {
		unsigned long long sz = ZSTD_getFrameContentSize(p, body);
		if (sz == ZSTD_CONTENTSIZE_ERROR || sz == ZSTD_CONTENTSIZE_UNKNOWN)
			return KV_CORRUPT(name, off, "block at offset %" PRIu64 ": bad zstd frame header",
					  off);
		if (sz > KV_SST_BLOCK_MAX)
			return KV_CORRUPT(name, off, "block at offset %" PRIu64
					  ": decompressed size %llu is too large", off, sz);
		len = (size_t)sz;
		if (!(buf = malloc(len ? len : 1)))
			return -ENOMEM;
		ZSTD_DCtx *dctx = kv_sst_dctx();
		size_t got = dctx ? ZSTD_decompressDCtx(dctx, buf, len, p, body)
				  : ZSTD_decompress(buf, len, p, body);
		if (ZSTD_isError(got) || got != len) {
			free(buf);
			return KV_CORRUPT(name, off, "block at offset %" PRIu64 ": zstd: %s", off,
					  ZSTD_isError(got) ? ZSTD_getErrorName(got)
							    : "size mismatch");
		}
		break;
	}
	default:
		return KV_CORRUPT(name, off, "block at offset %" PRIu64 ": unknown compression type %u",
				  off, type);
	}
	*out = buf;
	*out_len = len;
	return 0;
}

/* Check the block's restart array framing (restart offsets themselves are
 * checked when used). */
int kv_sst_block_parse(const char *name, uint64_t off, const uint8_t *data, size_t len,
		       struct kv_sst_block *blk)
{
	if (len < 4)
		return KV_CORRUPT(name, off, "block at offset %" PRIu64 ": too short (%zu bytes)",
				  off, len);
	uint32_t n = util_get_be32(data + len - 4);
	if (n > (len - 4) / 4)
		return KV_CORRUPT(name, off, "block at offset %" PRIu64
				  ": restart count %" PRIu32 " does not fit", off, n);
	size_t rlen = len - 4 - (size_t)n * 4;
	if ((n == 0) != (rlen == 0))
		return KV_CORRUPT(name, off, "block at offset %" PRIu64
				  ": restart count %" PRIu32 " with %zu bytes of entries",
				  off, n, rlen);
	blk->data = data;
	blk->rlen = rlen;
	blk->nrestarts = n;
	blk->off = off;
	return 0;
}

/* ---- block iterator ----------------------------------------------------- */

/* The biter must not move after this (key may point into it). */
void kv_sst_bi_init(struct kv_sst_biter *it, const char *name)
{
	memset(it, 0, sizeof(*it));
	it->name = name;
	it->key.data = it->kbuf;
	it->key.cap = sizeof(it->kbuf);
	it->key.borrowed = 1;
}

void kv_sst_bi_set(struct kv_sst_biter *it, const struct kv_sst_block *b)
{
	it->b = *b;
	it->valid = 0;
	it->key.len = 0;
}

static void kv_sst_bi_fail(struct kv_sst_biter *it, int rc)
{
	it->err = rc;
	it->valid = 0;
}

/* Check an internal key decoded from a block. */
static int kv_sst_key_ok(const uint8_t *k, size_t len)
{
	return len >= KV_IKEY_TRAILER && kv_ikey_type(k, len) <= KV_TYPE_REF;
}

/*
 * Decode the entry at offset p; it->key must hold the previous key (or be
 * empty at a restart point). p == rlen means "past the last entry".
 */
static void kv_sst_bi_decode(struct kv_sst_biter *it, size_t p)
{
	const uint8_t *base = it->b.data, *end = base + it->b.rlen, *q;
	uint64_t shared, unshared, vlen;
	int rc;

	if (it->err)
		return;
	if (p >= it->b.rlen) {
		it->valid = 0;
		return;
	}
	if (!(q = kv_sst_entry_head(base + p, end, &shared, &unshared, &vlen)) ||
	    shared > it->key.len || vlen > (size_t)(end - q) - unshared)
		goto bad;
	it->key.len = (size_t)shared;
	if ((rc = kv_buf_append(&it->key, q, (size_t)unshared))) {
		kv_sst_bi_fail(it, rc);
		return;
	}
	if (!kv_sst_key_ok(it->key.data, it->key.len))
		goto bad;
	it->val = q + unshared;
	it->vlen = (size_t)vlen;
	it->cur = p;
	it->nxt = (size_t)(it->val + vlen - base);
	it->valid = 1;
	return;
bad:
	kv_sst_bi_fail(it, KV_CORRUPT(it->name, it->b.off, "block at offset %" PRIu64
				      ": malformed entry at %zu", it->b.off, p));
}

void kv_sst_bi_seek_first(struct kv_sst_biter *it)
{
	it->key.len = 0;
	kv_sst_bi_decode(it, 0);
}

void kv_sst_bi_next(struct kv_sst_biter *it)
{
	assert(it->valid);
	kv_sst_bi_decode(it, it->nxt);
}

/* Offset of restart point i, checked. */
int kv_sst_bi_restart(struct kv_sst_biter *it, uint32_t i, size_t *off)
{
	size_t o = util_get_be32(it->b.data + it->b.rlen + (size_t)i * 4);
	if (o >= it->b.rlen) {
		int rc = KV_CORRUPT(it->name, it->b.off, "block at offset %" PRIu64
				    ": restart %" PRIu32 " points outside the block",
				    it->b.off, i);
		kv_sst_bi_fail(it, rc);
		return rc;
	}
	*off = o;
	return 0;
}

/* The whole key of restart point i, read in place (shared must be 0). */
int kv_sst_bi_restart_key(struct kv_sst_biter *it, uint32_t i, const uint8_t **k,
			  size_t *klen)
{
	const uint8_t *end = it->b.data + it->b.rlen, *q;
	uint64_t shared, unshared, vlen;
	size_t o;
	int rc;

	if ((rc = kv_sst_bi_restart(it, i, &o)))
		return rc;
	if (!(q = kv_sst_entry_head(it->b.data + o, end, &shared, &unshared, &vlen)) ||
	    shared != 0 || !kv_sst_key_ok(q, (size_t)unshared))
		goto bad;
	*k = q;
	*klen = (size_t)unshared;
	return 0;
bad:
	rc = KV_CORRUPT(it->name, it->b.off, "block at offset %" PRIu64 ": malformed restart entry at %zu",
			it->b.off, o);
	kv_sst_bi_fail(it, rc);
	return rc;
}

/*
 * Position at the first entry >= target (internal key), knowing that the
 * last restart point whose key is < target lies in [lo, hi] (restart 0
 * stands for "none is").
 */
void kv_sst_bi_seek_in(struct kv_sst_biter *it, const uint8_t *target, size_t tlen,
		       uint32_t lo, uint32_t hi)
{
	size_t off;

	if (it->err)
		return;
	if (it->b.nrestarts == 0) {
		it->valid = 0;
		return;
	}
	if (hi > it->b.nrestarts - 1)
		hi = it->b.nrestarts - 1;
	if (lo > hi)
		lo = hi;
	/* Last restart point whose key is < target; the answer is at or after it. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo + 1) / 2;
		const uint8_t *k;
		size_t klen;
		if (kv_sst_bi_restart_key(it, mid, &k, &klen))
			return;
		if (kv_ikey_cmp(k, klen, target, tlen) < 0)
			lo = mid;
		else
			hi = mid - 1;
	}
	if (kv_sst_bi_restart(it, lo, &off))
		return;
	it->key.len = 0;
	kv_sst_bi_decode(it, off);
	while (it->valid && kv_ikey_cmp(it->key.data, it->key.len, target, tlen) < 0)
		kv_sst_bi_decode(it, it->nxt);
}

void kv_sst_bi_seek(struct kv_sst_biter *it, const uint8_t *target, size_t tlen)
{
	kv_sst_bi_seek_in(it, target, tlen, 0, UINT32_MAX);
}


/*
 * Check and decode the stored block at `off` (index size `size`) from the
 * raw bytes read for it (p, n: n short of size + trailer means the object
 * ended early), and parse it into *blk. On success *dec (*dec_len bytes,
 * the caller's, free()) holds the block blk points into. name NULL =
 * quiet (KV_CORRUPT). Returns 0, KV_ECORRUPT or -ENOMEM.
 */
int kv_sst_decode(const char *name, uint64_t off, uint64_t size, const uint8_t *p,
		  size_t n, uint8_t **dec, size_t *dec_len, struct kv_sst_block *blk)
{
	int rc;

	if (n != size + KV_SST_TRAILER_SIZE)
		return KV_CORRUPT(name, off, "block at offset %" PRIu64 ": truncated object (read %zu of %"
				  PRIu64 " bytes)", off, n, size + KV_SST_TRAILER_SIZE);
	if ((rc = kv_sst_unwrap(name, off, p, n, dec, dec_len)))
		return rc;
	if ((rc = kv_sst_block_parse(name, off, *dec, *dec_len, blk))) {
		free(*dec);
		*dec = NULL;
	}
	return rc;
}

/*
 * kv_sst_block_cache - check and decode the stored block at `off` (index
 * size `size`) from its raw bytes (p, n), as kv_sst_decode does, and
 * insert it into cache under (id, off). On success *h is the pinned
 * handle (the caller's: kv_cache_release) and *blk points into its block.
 * name NULL = quiet. Returns 0, KV_ECORRUPT or -ENOMEM (*h untouched on
 * failure). Thread-safe.
 */
int kv_sst_block_cache(struct kv_cache *cache, uint64_t id, const char *name, uint64_t off,
		       uint64_t size, const uint8_t *p, size_t n, struct kv_cache_handle **h,
		       struct kv_sst_block *blk)
{
	struct kv_cache_handle *e;
	uint8_t *dec = NULL;
	size_t len = 0;
	int rc;

	if ((rc = kv_sst_decode(name, off, size, p, n, &dec, &len, blk)))
		return rc;
	/* The cache owns dec from here on, even on failure. */
	if (!(e = kv_cache_insert(cache, id, off, dec, len)))
		return -ENOMEM;
	*h = e;
	return 0;
}

/*
 * kv_sst_verify_restarts - check a block's restart array against its
 * entries (kv_sst_verify): seeks trust it, a sequential walk does not
 * use it. Restart points must be entry starts, strictly increasing, the
 * first at offset 0, each with shared == 0. `it` is set on the block; it
 * is left positioned nowhere. Returns 0, KV_ECORRUPT or -ENOMEM.
 */
int kv_sst_verify_restarts(struct kv_sst_biter *it)
{
	uint32_t ri = 0;
	size_t roff = 0;

	for (kv_sst_bi_seek_first(it); it->valid; kv_sst_bi_next(it)) {
		if (ri < it->b.nrestarts) {
			if (kv_sst_bi_restart(it, ri, &roff))
				return it->err;
			if (roff == it->cur) {
				const uint8_t *k;
				size_t kl;
				if (kv_sst_bi_restart_key(it, ri, &k, &kl))
					return it->err;
				ri++;
			} else if (roff < it->cur) {
				break;                  /* not at an entry boundary */
			}
		}
		if (it->cur == 0 && ri == 0)
			break;                          /* the first entry must be one */
	}
	if (it->err)
		return it->err;
	if (ri != it->b.nrestarts)
		return KV_CORRUPT(it->name, it->b.off, "block at offset %" PRIu64
				  ": restart point %" PRIu32 " is not an entry boundary",
				  it->b.off, ri);
	return 0;
}
