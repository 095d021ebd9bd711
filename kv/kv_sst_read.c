/*
 * kv_sst_read.c - the SST reader: open (footer, filter, index), point
 * lookups, iterators, verification, and the in-memory checker used by
 * the fuzzer. The format is described above the encoder in
 * kv_sst_build.c.
 *
 * LIFECYCLE
 *   kv_sst_open fetches the footer (ranged GET of the last 64 bytes) and
 *   then the adjacent filter + index (one ranged GET), checks them and
 *   keeps them for the reader's life. Data blocks are fetched by ranged
 *   GET when needed, checked (CRC, decompression, block structure) and
 *   inserted decoded into the block cache under (reader cache id, block
 *   offset). A reader is immutable after open except for its read-ahead
 *   state (READ-AHEAD below, guarded by ra_mu), so any number of threads
 *   may use it; it is reference-counted (kv_sst_ref/unref) and every
 *   iterator holds a reference. Cache entries of a freed reader are never
 *   looked up again (ids are not reused) and age out of the LRU.
 *
 * READ-AHEAD
 *   A block-cache miss costs one GET, and on S3 a GET costs its latency
 *   (~3 ms on a local gateway, more on a real one) whatever its size: a
 *   file read chunk by chunk (one 64 KiB chunk is one data block) ran at
 *   one block per latency, ~20 MiB/s. So a miss that continues a
 *   sequential stream fetches a span of the blocks that follow it in the
 *   same GET and caches them all:
 *
 *   - A stream is (next, win): where its next miss is expected (just past
 *     the last block or span it fetched) and the size of its last span.
 *     A miss at or up to KV_SST_RA_SLACK past `next` is sequential: it
 *     fetches a span of 2 * win bytes (KV_SST_RA_MIN for the first one,
 *     at most KV_SST_RA_MAX, and at most what kv_cache_ra_span_max allows)
 *     starting at the missed block. Any other miss starts a new stream
 *     there, except a miss just behind a stream's `next` (a straggler of
 *     a concurrent sequential read), which leaves the streams as they are;
 *     either fetches its block alone, or a guess (next item).
 *   - GUESSES. A miss that continues no stream fetches its block alone
 *     once the block cache is 7/8 full (counting spans in flight,
 *     kv_cache_ra_room), so a working set larger than the cache is read
 *     block by block and read-ahead never pushes useful blocks out for
 *     a guess. Until then it fetches a span of up to KV_SST_RA_GUESS from
 *     the missed block on, and a new stream continues after it: the
 *     blocks that follow are the next chunks of the same file, or the
 *     next entries of the same directory or inode range, and on S3 a
 *     1 MiB GET costs about what a 64 KiB one does. Random 4 KiB reads of
 *     a 64 MiB file on s3:// fetched its 1,024 chunks one GET each.
 *   - Point lookups from every thread share the reader's
 *     KV_SST_RA_STREAMS streams (a miss picks the stream it continues,
 *     else replaces the oldest); an iterator has a stream of its own,
 *     which cache hits advance too, since it steps through blocks in order.
 *   - A span holds whole blocks, as the index lays them out: it ends at
 *     the data region's end, at an index entry that does not decode or
 *     does not follow on contiguously (the block is judged when asked
 *     for), and before a block already cached.
 *   - Every block of a span is checked and decoded exactly as a single
 *     block is (kv_sst_decode), then cached. Only the block asked for
 *     reports errors: a bad block read ahead is dropped without a word
 *     and fetched again, alone, if it is ever asked for, which then
 *     reports it with the same KV_ECORRUPT and the same message as a
 *     reader without read-ahead. A store error fails only the request
 *     whose span it was.
 *   - Spans in flight are recorded in the reader (KV_SST_RA_SLOTS at
 *     most); a miss inside one waits for it (ra_cv) and then looks in the
 *     cache again instead of issuing its own GET. ra_mu guards streams and
 *     slots and is never held across I/O (lock order: ra_mu, then the
 *     cache's locks: a shard's in kv_cache_contains, fill_mu in
 *     kv_cache_fill_submit; the cache never calls back into a reader
 *     while it holds one).
 *   - Memory: the blocks go into the byte-capped block cache; the raw
 *     span (at most KV_SST_RA_MAX) lives only while it is fetched and
 *     decoded, and kv_cache_ra_reserve caps the bytes of all spans in
 *     flight. Refused, a miss fetches its block alone.
 *   - Without a cache (kv_sst_check_buffer) and in kv_sst_verify, which
 *     bypasses it, there is no read-ahead.
 *
 * PREFETCH
 *   A span still stalls its reader for a GET, and fs/ reads one file's
 *   chunks one at a time, so while the cache's fill threads run
 *   (kv_cache_fill_start; kv_open starts them) a stream also keeps one
 *   span in flight AHEAD of its reader:
 *   - When a miss fetches a span, the span after it (twice the window,
 *     same caps) is queued for a fill thread, and the stream's `mark` is
 *     set to its first block; `next` moves past it.
 *   - Reading the marked block (a hit, or a wait for the span in flight)
 *     queues the span after that one, and so on: one span ahead.
 *   - The job holds a reference on the reader, a slot (so a miss in its
 *     range waits for it rather than fetching again) and its bytes of the
 *     read-ahead budget. It decodes every block quietly; whatever fails
 *     (GET, decode, cache insert) is dropped: the block is fetched, and
 *     its error reported, when someone asks for it. Nothing is queued
 *     when the queue, the slots or the budget are full, the next block is
 *     cached already, or the table ends; the stream then goes back to
 *     fetching on misses. kv_close stops the fill threads (queued jobs are
 *     cancelled, running ones finish) before it returns.
 *
 * TRUST
 *   Every byte from the store is untrusted. Every decode error returns
 *   KV_ECORRUPT and logs one line naming the object and the place
 *   ("sst/<id>.sst: block at offset N: checksum mismatch"); nothing here
 *   asserts on store bytes. Offsets and lengths are range-checked before
 *   use, never trusted to fit.
 *
 * SHARED DECODING
 *   kv_sst_check_buffer (fuzzing) runs the very same open/verify/iterate/
 *   get code over a private in-memory struct obj_backend that serves get()
 *   from the caller's buffer, so the fuzzer exercises the production
 *   decoder rather than a copy of it.
 *
 *   Builds with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION defined (the
 *   libFuzzer build) ignore CRC mismatches, so mutated inputs reach the
 *   structural decoders instead of all stopping at the checksum.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define KV_SST_CRC_OK(stored, computed) ((void)(stored), (void)(computed), 1)
#else
#define KV_SST_CRC_OK(stored, computed) ((stored) == (computed))
#endif

#define KV_SST_NAME_SIZE 48

/* READ-AHEAD tuning (see above). */
#define KV_SST_RA_MIN ((uint64_t)256 << 10)      /* first span of a stream */
#define KV_SST_RA_MAX ((uint64_t)8 << 20)        /* largest span: one GET */
#define KV_SST_RA_SLACK ((uint64_t)128 << 10)    /* a miss this far past `next` is sequential */
#define KV_SST_RA_STREAMS 4                      /* point-lookup streams per reader */
#define KV_SST_RA_SLOTS 4                        /* spans in flight per reader */
#define KV_SST_RA_GUESS ((uint64_t)1 << 20)      /* span of a miss in no stream (GUESSES) */
#define KV_SST_RA_NONE UINT64_MAX

/* One sequential stream of misses. Fields are protected by the reader's
 * ra_mu for its shared streams, owned by the iterator's thread for its
 * own; mark is also read without the lock. */
struct kv_sst_ra {
	uint64_t next;                    /* where its next miss is expected; NONE = unused */
	size_t next_p;                    /* index entry of the block at next; SIZE_MAX = unknown */
	uint64_t win;                     /* bytes of its last span; 0 = none yet */
	_Atomic uint64_t mark;            /* reading the block here prefetches the next span;
					   * NONE = no prefetch pending (PREFETCH) */
	int background;                   /* a compaction input's: its spans are not
					   * foreground reads (kv_cache_ra_span) */
};

/* A span being fetched; hi == 0 = free slot. */
struct kv_sst_ra_slot {
	uint64_t lo, hi;                  /* stored bytes [lo, hi) */
	uint64_t id;                      /* tells a reused slot from the awaited span */
};

struct kv_sst_reader {
	atomic_uint refs;
	struct obj_backend *store;        /* borrowed: must outlive the reader */
	struct kv_cache *cache;           /* borrowed; NULL = no caching */
	uint64_t cache_id;                /* key space of this reader in the cache */
	char name[KV_SST_NAME_SIZE];      /* "sst/<ULID>.sst" */
	uint64_t size;                    /* object bytes (from the manifest) */
	uint64_t entries;                 /* from the footer */
	uint64_t nblocks;                 /* from the footer */
	uint64_t data_end;                /* data blocks live in [0, data_end) */
	void *meta;                       /* filter + index as fetched (obj_buf_free) */
	const uint8_t *filter;            /* into meta; NULL = no filter */
	size_t filter_len;
	const uint8_t *index;             /* decoded index block, into meta */
	size_t index_len;
	size_t index_rlen;                /* its entries end here (restarts follow) */
	uint64_t index_off;               /* where the index is stored (messages) */
	uint64_t *fences;                 /* per index restart; NULL = none (see below) */
	const uint8_t *fence_prefix;      /* shared by every index key, into meta */
	size_t fence_skip;                /* its length */

	/* read-ahead (READ-AHEAD above) */
	pthread_mutex_t ra_mu;            /* never held across I/O; taken before the cache's locks */
	pthread_cond_t ra_cv;             /* broadcast when a span in flight completes */
	struct kv_sst_ra ra[KV_SST_RA_STREAMS];   /* point lookups; protected by ra_mu */
	unsigned ra_victim;               /* stream replaced next; protected by ra_mu */
	struct kv_sst_ra_slot slots[KV_SST_RA_SLOTS];   /* protected by ra_mu */
	uint64_t ra_ids;                  /* last slot id; protected by ra_mu */
};

/* A decoded block, parsed just enough to iterate it. */
struct kv_sst_block {
	const uint8_t *data;
	size_t rlen;                      /* entries occupy [0, rlen); restarts follow */
	uint32_t nrestarts;
	uint64_t off;                     /* where the block is stored (messages) */
};

/* Iterator within one block. key holds the whole current key, because
 * entries store only the suffix not shared with the previous key. */
struct kv_sst_biter {
	const char *name;                 /* object name (messages) */
	struct kv_sst_block b;
	size_t cur;                       /* offset of the current entry */
	size_t nxt;                       /* offset of the entry after the current one */
	struct kv_buf key;                /* starts in kbuf: no malloc for most keys */
	uint8_t kbuf[64];
	const uint8_t *val;
	size_t vlen;
	int valid;
	int err;                          /* sticky */
};

/* Keeps a data block's bytes alive: a cache handle or an owned copy. */
struct kv_sst_bref {
	struct kv_cache *cache;
	struct kv_cache_handle *h;
	uint8_t *owned;
};

/* How one caller reads blocks (kv_sst_read_block). */
struct kv_sst_stream {
	int use_cache;                    /* 0: always read from the store, no read-ahead */
	int shared;                       /* 1: read ahead on the reader's shared streams */
	struct kv_sst_ra ra;              /* else on this one (owned by the caller's thread) */
};

/* The two-level iterator: index block -> data block. */
struct kv_sst_iter {
	struct kv_iter base;
	struct kv_sst_reader *r;
	struct kv_sst_biter index;
	struct kv_sst_biter data;
	struct kv_sst_bref ref;           /* pins data.b */
	struct kv_sst_stream st;
	int status;                       /* sticky first error */
};

/* ---- errors ------------------------------------------------------------- */

static int kv_sst_corrupt_at(const char *file, int line, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Log "<name>: <what>" with the origin, return KV_ECORRUPT. name NULL =
 * quiet: a block read ahead that nobody has asked for yet (READ-AHEAD). */
static int kv_sst_corrupt_at(const char *file, int line, const char *name, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	if (!name)
		return KV_ECORRUPT;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	UTIL_ERROR("kv", "%s: %s (%s:%d)", name, msg, file, line);
	return KV_ECORRUPT;
}
#define KV_SST_CORRUPT(name, ...) kv_sst_corrupt_at(__FILE__, __LINE__, name, __VA_ARGS__)

/* ---- stored blocks ------------------------------------------------------ */

/*
 * Check the trailer of a stored block (p, n bytes including the trailer).
 * *body_len and *type get the stored payload length and its compression.
 */
static int kv_sst_check_stored(const char *name, uint64_t off, const uint8_t *p, size_t n,
			       size_t *body_len, uint8_t *type)
{
	if (n < KV_SST_TRAILER_SIZE)
		return KV_SST_CORRUPT(name, "block at offset %" PRIu64 ": shorter than its trailer",
				      off);
	size_t body = n - KV_SST_TRAILER_SIZE;
	uint8_t t = p[body];
	uint32_t want = util_get_be32(p + body + 1);
	uint32_t crc = util_crc32c(0, p, body);
	crc = util_crc32c(crc, &t, 1);
	if (!KV_SST_CRC_OK(want, crc))
		return KV_SST_CORRUPT(name, "block at offset %" PRIu64 ": checksum mismatch", off);
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
			return KV_SST_CORRUPT(name, "block at offset %" PRIu64 ": %zu bytes is too large",
					      off, len);
		if (!(buf = malloc(len ? len : 1)))
			return -ENOMEM;
		if (len)
			memcpy(buf, p, len);
		break;
	case KV_SST_COMP_ZSTD: {
		unsigned long long sz = ZSTD_getFrameContentSize(p, body);
		if (sz == ZSTD_CONTENTSIZE_ERROR || sz == ZSTD_CONTENTSIZE_UNKNOWN)
			return KV_SST_CORRUPT(name, "block at offset %" PRIu64 ": bad zstd frame header",
					      off);
		if (sz > KV_SST_BLOCK_MAX)
			return KV_SST_CORRUPT(name, "block at offset %" PRIu64
					      ": decompressed size %llu is too large", off, sz);
		len = (size_t)sz;
		if (!(buf = malloc(len ? len : 1)))
			return -ENOMEM;
		ZSTD_DCtx *dctx = kv_sst_dctx();
		size_t got = dctx ? ZSTD_decompressDCtx(dctx, buf, len, p, body)
				  : ZSTD_decompress(buf, len, p, body);
		if (ZSTD_isError(got) || got != len) {
			free(buf);
			return KV_SST_CORRUPT(name, "block at offset %" PRIu64 ": zstd: %s", off,
					      ZSTD_isError(got) ? ZSTD_getErrorName(got)
								: "size mismatch");
		}
		break;
	}
	default:
		return KV_SST_CORRUPT(name, "block at offset %" PRIu64 ": unknown compression type %u",
				      off, type);
	}
	*out = buf;
	*out_len = len;
	return 0;
}

/* Check the block's restart array framing (restart offsets themselves are
 * checked when used). */
static int kv_sst_block_parse(const char *name, uint64_t off, const uint8_t *data, size_t len,
			      struct kv_sst_block *blk)
{
	if (len < 4)
		return KV_SST_CORRUPT(name, "block at offset %" PRIu64 ": too short (%zu bytes)",
				      off, len);
	uint32_t n = util_get_be32(data + len - 4);
	if (n > (len - 4) / 4)
		return KV_SST_CORRUPT(name, "block at offset %" PRIu64
				      ": restart count %" PRIu32 " does not fit", off, n);
	size_t rlen = len - 4 - (size_t)n * 4;
	if ((n == 0) != (rlen == 0))
		return KV_SST_CORRUPT(name, "block at offset %" PRIu64
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
static void kv_sst_bi_init(struct kv_sst_biter *it, const char *name)
{
	memset(it, 0, sizeof(*it));
	it->name = name;
	it->key.data = it->kbuf;
	it->key.cap = sizeof(it->kbuf);
	it->key.borrowed = 1;
}

static void kv_sst_bi_set(struct kv_sst_biter *it, const struct kv_sst_block *b)
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
	return len >= KV_IKEY_TRAILER && kv_ikey_type(k, len) <= KV_TYPE_VALUE;
}

/*
 * Decode the entry at offset p; it->key must hold the previous key (or be
 * empty at a restart point). p == rlen means "past the last entry".
 */
static void kv_sst_bi_decode(struct kv_sst_biter *it, size_t p)
{
	const uint8_t *base = it->b.data, *end = base + it->b.rlen, *q;
	uint64_t shared, unshared, vlen;
	size_t n;
	int rc;

	if (it->err)
		return;
	if (p >= it->b.rlen) {
		it->valid = 0;
		return;
	}
	q = base + p;
	if (!(n = kv_varint_get(q, end, &shared)))
		goto bad;
	q += n;
	if (!(n = kv_varint_get(q, end, &unshared)))
		goto bad;
	q += n;
	if (!(n = kv_varint_get(q, end, &vlen)))
		goto bad;
	q += n;
	if (shared > it->key.len || unshared > (size_t)(end - q) ||
	    vlen > (size_t)(end - q) - unshared)
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
	kv_sst_bi_fail(it, KV_SST_CORRUPT(it->name, "block at offset %" PRIu64
					   ": malformed entry at %zu", it->b.off, p));
}

static void kv_sst_bi_seek_first(struct kv_sst_biter *it)
{
	it->key.len = 0;
	kv_sst_bi_decode(it, 0);
}

static void kv_sst_bi_next(struct kv_sst_biter *it)
{
	assert(it->valid);
	kv_sst_bi_decode(it, it->nxt);
}

/* Offset of restart point i, checked. */
static int kv_sst_bi_restart(struct kv_sst_biter *it, uint32_t i, size_t *off)
{
	size_t o = util_get_be32(it->b.data + it->b.rlen + (size_t)i * 4);
	if (o >= it->b.rlen) {
		int rc = KV_SST_CORRUPT(it->name, "block at offset %" PRIu64
					": restart %" PRIu32 " points outside the block",
					it->b.off, i);
		kv_sst_bi_fail(it, rc);
		return rc;
	}
	*off = o;
	return 0;
}

/* The whole key of restart point i, read in place (shared must be 0). */
static int kv_sst_bi_restart_key(struct kv_sst_biter *it, uint32_t i, const uint8_t **k,
				 size_t *klen)
{
	const uint8_t *end = it->b.data + it->b.rlen, *q;
	uint64_t shared, unshared, vlen;
	size_t o, n;
	int rc;

	if ((rc = kv_sst_bi_restart(it, i, &o)))
		return rc;
	q = it->b.data + o;
	if (!(n = kv_varint_get(q, end, &shared)))
		goto bad;
	q += n;
	if (!(n = kv_varint_get(q, end, &unshared)))
		goto bad;
	q += n;
	if (!(n = kv_varint_get(q, end, &vlen)))
		goto bad;
	q += n;
	if (shared != 0 || unshared > (size_t)(end - q) || !kv_sst_key_ok(q, (size_t)unshared))
		goto bad;
	*k = q;
	*klen = (size_t)unshared;
	return 0;
bad:
	rc = KV_SST_CORRUPT(it->name, "block at offset %" PRIu64 ": malformed restart entry at %zu",
			    it->b.off, o);
	kv_sst_bi_fail(it, rc);
	return rc;
}

/*
 * Position at the first entry >= target (internal key), knowing that the
 * last restart point whose key is < target lies in [lo, hi] (restart 0
 * stands for "none is").
 */
static void kv_sst_bi_seek_in(struct kv_sst_biter *it, const uint8_t *target, size_t tlen,
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

static void kv_sst_bi_seek(struct kv_sst_biter *it, const uint8_t *target, size_t tlen)
{
	kv_sst_bi_seek_in(it, target, tlen, 0, UINT32_MAX);
}

/* ---- data block fetch --------------------------------------------------- */

static void kv_sst_bref_release(struct kv_sst_bref *ref)
{
	if (ref->h)
		kv_cache_release(ref->cache, ref->h);
	free(ref->owned);
	ref->h = NULL;
	ref->owned = NULL;
}

/* Decode an index entry's value: varint offset + varint size. */
static int kv_sst_block_handle(const struct kv_sst_reader *r, const uint8_t *v, size_t vlen,
			       uint64_t *off, uint64_t *size)
{
	size_t n = kv_varint_get(v, v + vlen, off), m;
	if (!n || !(m = kv_varint_get(v + n, v + vlen, size)))
		return KV_SST_CORRUPT(r->name, "index: malformed block handle");
	return 0;
}

/*
 * Check and decode the stored block at `off` (index size `size`) from the
 * raw bytes read for it (p, n: n short of size + trailer means the object
 * ended early), and parse it into *blk. On success *dec (*dec_len bytes,
 * the caller's, free()) holds the block blk points into. name NULL =
 * quiet (kv_sst_corrupt_at). Returns 0, KV_ECORRUPT or -ENOMEM.
 */
static int kv_sst_decode(const char *name, uint64_t off, uint64_t size, const uint8_t *p,
			 size_t n, uint8_t **dec, size_t *dec_len, struct kv_sst_block *blk)
{
	int rc;

	if (n != size + KV_SST_TRAILER_SIZE)
		return KV_SST_CORRUPT(name, "block at offset %" PRIu64 ": truncated object (read %zu of %"
				      PRIu64 " bytes)", off, n, size + KV_SST_TRAILER_SIZE);
	if ((rc = kv_sst_unwrap(name, off, p, n, dec, dec_len)))
		return rc;
	if ((rc = kv_sst_block_parse(name, off, *dec, *dec_len, blk))) {
		free(*dec);
		*dec = NULL;
	}
	return rc;
}

/* Pin the cached block at off into *ref / *blk. Returns 1 (found; *rc is
 * 0 or the parse error) or 0 (not cached). */
static int kv_sst_cache_get(struct kv_sst_reader *r, uint64_t off, struct kv_sst_bref *ref,
			    struct kv_sst_block *blk, int *rc)
{
	struct kv_cache_handle *h = kv_cache_lookup(r->cache, r->cache_id, off);
	const void *d;
	size_t len;

	if (!h)
		return 0;
	d = kv_cache_data(h, &len);
	/* Checked before it was inserted; parsing again is O(1). */
	*rc = kv_sst_block_parse(r->name, off, d, len, blk);
	if (*rc) {
		kv_cache_release(r->cache, h);
		return 1;
	}
	ref->cache = r->cache;
	ref->h = h;
	return 1;
}

/* Fetch the one stored block at (off, size) and decode it into *ref / *blk,
 * through the cache or not. Returns 0, KV_ECORRUPT, -ENOMEM or a store
 * error. */
static int kv_sst_fetch_one(struct kv_sst_reader *r, uint64_t off, uint64_t size, int use_cache,
			    struct kv_sst_bref *ref, struct kv_sst_block *blk)
{
	void *raw = NULL;
	size_t raw_len = 0, len;
	uint8_t *dec = NULL;
	int rc;

	rc = obj_get(r->store, r->name, off, size + KV_SST_TRAILER_SIZE, &raw, &raw_len);
	if (rc)
		goto out;
	if ((rc = kv_sst_decode(r->name, off, size, raw, raw_len, &dec, &len, blk)))
		goto out;
	if (use_cache) {
		/* The cache owns dec from here on, even on failure. */
		struct kv_cache_handle *h = kv_cache_insert(r->cache, r->cache_id, off, dec, len);
		dec = NULL;
		if (!h) {
			rc = -ENOMEM;
			goto out;
		}
		ref->cache = r->cache;
		ref->h = h;
	} else {
		ref->owned = dec;
		dec = NULL;
	}
out:
	free(dec);
	if (raw)
		obj_buf_free(raw);
	return rc;
}

/* ---- read-ahead (READ-AHEAD above) ---------------------------------------- */

/* Walks the block handles of index entries from a given entry on,
 * without building keys. */
struct kv_sst_hcur {
	const uint8_t *base, *end;
	size_t p;                         /* offset of the next entry in the index block */
};

static void kv_sst_hcur_init(struct kv_sst_hcur *c, const struct kv_sst_reader *r, size_t p)
{
	c->base = r->index;
	c->end = r->index + r->index_rlen;
	c->p = p;
}

/* The next handle; 0 at the end of the index or at an entry that does not
 * decode (quietly: the block is judged when it is asked for). */
static int kv_sst_hcur_next(struct kv_sst_hcur *c, uint64_t *off, uint64_t *size)
{
	const uint8_t *q = c->base + c->p, *v;
	uint64_t shared, unshared, vlen;
	size_t n, m;

	if (c->p >= (size_t)(c->end - c->base) || !(n = kv_varint_get(q, c->end, &shared)))
		return 0;
	q += n;
	if (!(n = kv_varint_get(q, c->end, &unshared)))
		return 0;
	q += n;
	if (!(n = kv_varint_get(q, c->end, &vlen)))
		return 0;
	q += n;
	if (unshared > (size_t)(c->end - q) || vlen > (size_t)(c->end - q) - unshared)
		return 0;
	v = q + unshared;
	if (!(n = kv_varint_get(v, v + vlen, off)) || !(m = kv_varint_get(v + n, v + vlen, size)))
		return 0;
	c->p = (size_t)(v + vlen - c->base);
	return 1;
}

/* The in-flight span holding off, or -1 (ra_mu held). */
static int kv_sst_ra_inflight(const struct kv_sst_reader *r, uint64_t off)
{
	for (int i = 0; i < KV_SST_RA_SLOTS; i++)
		if (r->slots[i].hi && off >= r->slots[i].lo && off < r->slots[i].hi)
			return i;
	return -1;
}

/*
 * Plan a span of at most `win` bytes starting with the block at `off`,
 * whose index entry is at p: that block and the ones after it while they
 * follow on contiguously inside the data region and are neither cached
 * nor in a span in flight (the first block is checked against the cache
 * only if check_first). ra_mu held. Returns the span's bytes (0: not even
 * the first block qualifies); *nblocks its blocks, *end_p the index entry
 * after its last block.
 */
static uint64_t kv_sst_ra_plan(struct kv_sst_reader *r, size_t p, uint64_t off, uint64_t win,
			       int check_first, uint32_t *nblocks, size_t *end_p)
{
	struct kv_sst_hcur c;
	uint64_t hi = off, boff, bsize;
	uint32_t nb = 0;

	kv_sst_hcur_init(&c, r, p);
	*end_p = p;
	while (kv_sst_hcur_next(&c, &boff, &bsize)) {
		if (boff != hi || bsize > KV_SST_BLOCK_MAX || hi > r->data_end ||
		    bsize + KV_SST_TRAILER_SIZE > r->data_end - hi ||
		    (nb && hi + bsize + KV_SST_TRAILER_SIZE - off > win) ||
		    ((nb || check_first) && kv_cache_contains(r->cache, r->cache_id, boff)) ||
		    kv_sst_ra_inflight(r, boff) >= 0)
			break;
		hi += bsize + KV_SST_TRAILER_SIZE;
		nb++;
		*end_p = c.p;
	}
	*nblocks = nb;
	return hi - off;
}

/* A free slot for [lo, lo + len) with its bytes reserved, or -1 (ra_mu held). */
static int kv_sst_ra_slot_take(struct kv_sst_reader *r, uint64_t lo, uint64_t len)
{
	for (int i = 0; i < KV_SST_RA_SLOTS; i++) {
		if (r->slots[i].hi)
			continue;
		if (!kv_cache_ra_reserve(r->cache, (size_t)len))
			return -1;
		r->slots[i].lo = lo;
		r->slots[i].hi = lo + len;
		r->slots[i].id = ++r->ra_ids;
		return i;
	}
	return -1;
}

/* Plan a span of up to `win` bytes from the block at (p, off) and take a
 * slot for it (ra_mu held; kv_sst_ra_plan's check_first, *nb, *end_p).
 * Returns the slot, or -1: the span is one block, or no slot or budget is
 * free (the miss then fetches its block alone). */
static int kv_sst_ra_span_take(struct kv_sst_reader *r, size_t p, uint64_t off, uint64_t win,
			       int check_first, uint64_t *len, uint32_t *nb, size_t *end_p)
{
	*len = kv_sst_ra_plan(r, p, off, win, check_first, nb, end_p);
	return *nb > 1 ? kv_sst_ra_slot_take(r, off, *len) : -1;
}

/* What a stream's spans count as (kv_cache_ra_span). */
static enum kv_ra_kind kv_sst_ra_kind(const struct kv_sst_ra *s)
{
	return s->background ? KV_RA_BACKGROUND : KV_RA_SEQUENTIAL;
}

/* The span of slot i is done: give its bytes back, wake whoever waits. */
static void kv_sst_ra_slot_done(struct kv_sst_reader *r, int i)
{
	kv_cache_ra_release(r->cache, (size_t)(r->slots[i].hi - r->slots[i].lo));
	CHECK_RETURN(pthread_mutex_lock(&r->ra_mu));
	r->slots[i].hi = 0;
	CHECK_RETURN(pthread_cond_broadcast(&r->ra_cv));
	CHECK_RETURN(pthread_mutex_unlock(&r->ra_mu));
}

/*
 * Fetch the planned span [lo, lo + len) of nb blocks, the first one's
 * index entry at p, with one GET, and cache every block that checks out.
 * With ref (and blk) the first block, of index size `size`, is the one
 * asked for: it is decoded loudly into *ref / *blk exactly as
 * kv_sst_fetch_one would, and the result is what fetching it alone would
 * have returned; the others are decoded quietly. Without (a prefetch),
 * every block is quiet and the result is only a hint (0 or the store
 * error). kind: what the span is for, for the counters (kv_cache_ra_span).
 */
static int kv_sst_ra_fetch(struct kv_sst_reader *r, size_t p, uint64_t lo, uint64_t size,
			   uint64_t len, uint32_t nb, enum kv_ra_kind kind, struct kv_sst_bref *ref,
			   struct kv_sst_block *blk)
{
	uint64_t boff, bsize, pos = 0, cached = 0, first = size + KV_SST_TRAILER_SIZE;
	struct kv_sst_hcur c;
	struct kv_sst_block b;
	void *raw = NULL;
	uint8_t *dec = NULL;
	size_t raw_len = 0, dlen;
	int rc;

	rc = obj_get(r->store, r->name, lo, len, &raw, &raw_len);
	if (rc)
		return rc;
	kv_cache_ra_span(r->cache, kind);
	kv_sst_hcur_init(&c, r, p);
	for (uint32_t i = 0; i < nb && kv_sst_hcur_next(&c, &boff, &bsize); i++) {
		uint64_t bstored = bsize + KV_SST_TRAILER_SIZE;
		if (i > 0 || !ref) {
			if (pos > raw_len || bstored > raw_len - pos)
				break;          /* short read: left for whoever asks */
			if (kv_sst_decode(NULL, boff, bsize, (const uint8_t *)raw + pos,
					  (size_t)bstored, &dec, &dlen, &b) == 0) {
				struct kv_cache_handle *h =
					kv_cache_insert(r->cache, r->cache_id, boff, dec, dlen);
				if (h) {
					kv_cache_release(r->cache, h);
					cached++;
				}
				dec = NULL;
			}
		}
		pos += bstored;
	}
	kv_cache_ra_count(r->cache, 0, cached, 0);
	if (ref) {
		/* The blocks read ahead went first: if this one fails, whoever
		 * waits for them still finds them. */
		rc = kv_sst_decode(r->name, lo, size, raw, raw_len < first ? raw_len : (size_t)first,
				   &dec, &dlen, blk);
		if (!rc) {
			struct kv_cache_handle *h = kv_cache_insert(r->cache, r->cache_id, lo,
								    dec, dlen);
			if (h) {
				ref->cache = r->cache;
				ref->h = h;
			} else {
				rc = -ENOMEM;
			}
		}
	}
	obj_buf_free(raw);
	return rc;
}

/* ---- prefetch (PREFETCH above) ---------------------------------------------- */

struct kv_sst_pf_job {
	struct kv_sst_reader *r;          /* a reference of the job's own */
	size_t p;                         /* index entry of the first block */
	uint64_t lo, len;
	uint32_t nb;
	int slot;
	enum kv_ra_kind kind;             /* of the stream it continues */
};

static void kv_sst_pf_end(struct kv_sst_pf_job *j)
{
	kv_sst_ra_slot_done(j->r, j->slot);
	kv_sst_unref(j->r);
	free(j);
}

/* On a fill thread: errors are dropped (whoever asks for a block the span
 * did not cache fetches it, and hears about it). */
static void kv_sst_pf_run(void *arg)
{
	struct kv_sst_pf_job *j = arg;
	(void)kv_sst_ra_fetch(j->r, j->p, j->lo, 0, j->len, j->nb, j->kind, NULL, NULL);
	kv_sst_pf_end(j);
}

static void kv_sst_pf_cancel(void *arg)
{
	kv_sst_pf_end(arg);
}

/*
 * Queue the span after everything stream s has (at s->next) for a fill
 * thread, and mark its first block: reading that block queues the one
 * after. Any reason not to (nothing left, cached, no slot, budget, queue
 * full) just ends the prefetching. ra_mu held.
 */
static void kv_sst_ra_prefetch(struct kv_sst_reader *r, struct kv_sst_ra *s, uint64_t max)
{
	struct kv_sst_pf_job *j;
	uint64_t w, len;
	uint32_t nb;
	size_t end_p;
	int slot;

	atomic_store_explicit(&s->mark, KV_SST_RA_NONE, memory_order_relaxed);
	if (s->next_p == SIZE_MAX || s->next >= r->data_end || !kv_cache_fill_running(r->cache))
		return;
	w = s->win ? s->win * 2 : KV_SST_RA_MIN;
	if (w > max)
		w = max;
	if ((slot = kv_sst_ra_span_take(r, s->next_p, s->next, w, 1, &len, &nb, &end_p)) < 0)
		return;
	if (!(j = malloc(sizeof(*j)))) {
		kv_cache_ra_release(r->cache, (size_t)len);
		r->slots[slot].hi = 0;
		return;
	}
	*j = (struct kv_sst_pf_job){ .r = r, .p = s->next_p, .lo = s->next, .len = len,
				     .nb = nb, .slot = slot, .kind = kv_sst_ra_kind(s) };
	kv_sst_ref(r);
	if (kv_cache_fill_submit(r->cache, kv_sst_pf_run, kv_sst_pf_cancel, j)) {
		kv_sst_unref(r);                /* never the last: the caller holds one */
		kv_cache_ra_release(r->cache, (size_t)len);
		r->slots[slot].hi = 0;          /* nobody could wait on it: ra_mu held */
		free(j);
		return;
	}
	atomic_store_explicit(&s->mark, s->next, memory_order_relaxed);
	s->next += len;
	s->next_p = end_p;
	s->win = w;
}

/* The largest span for this reader's cache. */
static uint64_t kv_sst_ra_max(const struct kv_sst_reader *r)
{
	uint64_t max = kv_cache_ra_span_max(r->cache);
	return max < KV_SST_RA_MAX ? max : KV_SST_RA_MAX;
}

/* The block at off was read by stream st: if a stream's mark is there,
 * queue its next span. */
static void kv_sst_ra_marked(struct kv_sst_reader *r, struct kv_sst_stream *st, uint64_t off)
{
	struct kv_sst_ra *s = st->shared ? r->ra : &st->ra;
	unsigned n = st->shared ? KV_SST_RA_STREAMS : 1;

	for (unsigned i = 0; i < n; i++) {
		if (atomic_load_explicit(&s[i].mark, memory_order_relaxed) != off)
			continue;
		CHECK_RETURN(pthread_mutex_lock(&r->ra_mu));
		if (atomic_load_explicit(&s[i].mark, memory_order_relaxed) == off)
			kv_sst_ra_prefetch(r, &s[i], kv_sst_ra_max(r));
		CHECK_RETURN(pthread_mutex_unlock(&r->ra_mu));
	}
}

/* ---- read-ahead on a miss ------------------------------------------------------ */

/*
 * Classify a miss of the stored block [off, off + stored) (index entry
 * after it: next_p) against the streams s[0..n) (ra_mu held). Returns the
 * span size to fetch with *which the stream it continues, or 0: no stream
 * continues. Then *which is the new stream started there (replacing
 * s[*victim]), or n when the miss was just behind a stream (none started).
 */
static uint64_t kv_sst_ra_classify(struct kv_sst_ra *s, unsigned n, unsigned *victim,
				   uint64_t off, uint64_t stored, size_t next_p, uint64_t max,
				   unsigned *which)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (s[i].next != KV_SST_RA_NONE && off >= s[i].next &&
		    off - s[i].next <= KV_SST_RA_SLACK) {
			uint64_t w = s[i].win ? s[i].win * 2 : KV_SST_RA_MIN;
			*which = i;
			return w < max ? w : max;
		}
	}
	*which = n;
	for (i = 0; i < n; i++) {
		if (s[i].next != KV_SST_RA_NONE && off < s[i].next &&
		    s[i].next - off <= KV_SST_RA_MAX + KV_SST_RA_SLACK)
			return 0;
	}
	i = *which = *victim;
	*victim = (i + 1) % n;
	s[i].next = off + stored;
	s[i].next_p = next_p;
	s[i].win = 0;
	atomic_store_explicit(&s[i].mark, KV_SST_RA_NONE, memory_order_relaxed);
	return 0;
}

#define KV_SST_RA_ALONE 1                 /* kv_sst_ra_read: fetch the block alone */

/*
 * The read-ahead part of a cache miss on the block at (off, size), index
 * entry idx, by stream st: wait for a span in flight that holds the
 * block, or fetch a span starting with it (and queue the one after it).
 * Returns 0 or an error with *ref / *blk set as kv_sst_read_block
 * documents, or KV_SST_RA_ALONE.
 */
static int kv_sst_ra_read(struct kv_sst_reader *r, uint64_t off, uint64_t size,
			  const struct kv_sst_biter *idx, struct kv_sst_stream *st,
			  struct kv_sst_bref *ref, struct kv_sst_block *blk)
{
	uint64_t stored = size + KV_SST_TRAILER_SIZE, max = kv_sst_ra_max(r), win, len = 0;
	struct kv_sst_ra *s = st->shared ? r->ra : &st->ra;
	unsigned nstreams = st->shared ? KV_SST_RA_STREAMS : 1;
	uint32_t nb = 0;
	unsigned which = 0, own_victim = 0;
	size_t end_p = idx->nxt;
	int slot = -1, rc;

	CHECK_RETURN(pthread_mutex_lock(&r->ra_mu));
	if ((slot = kv_sst_ra_inflight(r, off)) >= 0) {
		uint64_t id = r->slots[slot].id;
		while (r->slots[slot].hi && r->slots[slot].id == id)
			CHECK_RETURN(pthread_cond_wait(&r->ra_cv, &r->ra_mu));
		CHECK_RETURN(pthread_mutex_unlock(&r->ra_mu));
		kv_cache_ra_count(r->cache, 0, 0, 1);
		if (kv_sst_cache_get(r, off, ref, blk, &rc))
			return rc;
		return KV_SST_RA_ALONE;         /* the span failed, or this block did */
	}
	win = kv_sst_ra_classify(s, nstreams, st->shared ? &r->ra_victim : &own_victim, off,
				 stored, idx->nxt, max, &which);
	if (win == 0) {
		/* GUESSES: a span while the cache has room; a new stream
		 * continues after it. */
		uint64_t g = KV_SST_RA_GUESS < max ? KV_SST_RA_GUESS : max;
		if (g > stored && kv_cache_ra_room(r->cache, (size_t)g) &&
		    (slot = kv_sst_ra_span_take(r, idx->cur, off, g, 0, &len, &nb, &end_p)) >= 0) {
			if (which < nstreams) {
				s[which].next = off + len;
				s[which].next_p = end_p;
				s[which].win = len;
			}
		}
	} else if (win > stored) {
		slot = kv_sst_ra_span_take(r, idx->cur, off, win, 0, &len, &nb, &end_p);
		if (slot >= 0) {
			s[which].next = off + len;
			s[which].next_p = end_p;
		} else {                        /* too many spans out: this block alone */
			s[which].next = off + stored;
			s[which].next_p = idx->nxt;
		}
		s[which].win = win;
		if (slot >= 0)
			kv_sst_ra_prefetch(r, &s[which], max);
	}
	CHECK_RETURN(pthread_mutex_unlock(&r->ra_mu));
	if (slot < 0)
		return KV_SST_RA_ALONE;
	/* A guess (win == 0) is no evidence of a sequential read (READS FIRST). */
	rc = kv_sst_ra_fetch(r, idx->cur, off, size, len, nb,
			     win == 0 ? KV_RA_GUESS : kv_sst_ra_kind(&s[which]), ref, blk);
	kv_sst_ra_slot_done(r, slot);
	return rc;
}

/*
 * Make the data block at (off, size) available in *blk, pinned by *ref
 * (which must be empty), for stream st. With st->use_cache the block
 * comes from, or goes into, the reader's cache, and a miss may read ahead
 * (READ-AHEAD above) when idx, the block's index entry, is given;
 * without, it is always read from the store, alone (kv_sst_verify).
 * Returns 0, KV_ECORRUPT, -ENOMEM or a store error.
 */
static int kv_sst_read_block(struct kv_sst_reader *r, uint64_t off, uint64_t size,
			     const struct kv_sst_biter *idx, struct kv_sst_stream *st,
			     struct kv_sst_bref *ref, struct kv_sst_block *blk)
{
	int use_cache = st->use_cache && r->cache, rc;

	if (size > KV_SST_BLOCK_MAX || off > r->data_end ||
	    size + KV_SST_TRAILER_SIZE > r->data_end - off) {
		return KV_SST_CORRUPT(r->name, "index: block at offset %" PRIu64 " size %" PRIu64
				      " lies outside the data region", off, size);
	}
	if (!use_cache)
		return kv_sst_fetch_one(r, off, size, 0, ref, blk);
	if (kv_sst_cache_get(r, off, ref, blk, &rc)) {
		/* An iterator's stream follows it over cached blocks (never
		 * back into what it has fetched or queued already). */
		uint64_t end = off + size + KV_SST_TRAILER_SIZE;
		if (!st->shared && !rc && (st->ra.next == KV_SST_RA_NONE || end > st->ra.next)) {
			st->ra.next = end;
			st->ra.next_p = idx ? idx->nxt : SIZE_MAX;
		}
	} else if (!idx || (rc = kv_sst_ra_read(r, off, size, idx, st, ref, blk)) == KV_SST_RA_ALONE) {
		rc = kv_sst_fetch_one(r, off, size, 1, ref, blk);
	}
	if (!rc && idx)
		kv_sst_ra_marked(r, st, off);
	return rc;
}

/* ---- open / ref / unref ------------------------------------------------- */

struct kv_sst_footer {
	uint64_t index_off, index_size, filter_off, filter_size, entries, blocks;
};

static int kv_sst_footer_parse(const char *name, uint64_t size, const uint8_t *f,
			       struct kv_sst_footer *ft)
{
	uint64_t end = size - KV_SST_FOOTER_SIZE;      /* size >= footer: checked by the caller */

	if (util_get_be64(f + 52) != KV_SST_MAGIC)
		return KV_SST_CORRUPT(name, "footer: bad magic (not an SST)");
	if (!KV_SST_CRC_OK(util_get_be32(f + 60), util_crc32c(0, f, 60)))
		return KV_SST_CORRUPT(name, "footer: checksum mismatch");
	if (util_get_be32(f + 48) != KV_SST_VERSION)
		return KV_SST_CORRUPT(name, "footer: unsupported format version %" PRIu32,
				      util_get_be32(f + 48));
	ft->index_off = util_get_be64(f + 0);
	ft->index_size = util_get_be64(f + 8);
	ft->filter_off = util_get_be64(f + 16);
	ft->filter_size = util_get_be64(f + 24);
	ft->entries = util_get_be64(f + 32);
	ft->blocks = util_get_be64(f + 40);
	/* The index ends where the footer starts; the filter, if any, ends
	 * where the index starts (see the format in kv_sst_build.c). */
	if (ft->index_size > end || end - ft->index_size < KV_SST_TRAILER_SIZE ||
	    ft->index_off != end - ft->index_size - KV_SST_TRAILER_SIZE)
		return KV_SST_CORRUPT(name, "footer: index at %" PRIu64 " size %" PRIu64
				      " does not end at the footer", ft->index_off, ft->index_size);
	if (ft->filter_size == 0 ? ft->filter_off != ft->index_off :
	    (ft->filter_size > ft->index_off ||
	     ft->index_off - ft->filter_size < KV_SST_TRAILER_SIZE ||
	     ft->filter_off != ft->index_off - ft->filter_size - KV_SST_TRAILER_SIZE))
		return KV_SST_CORRUPT(name, "footer: filter at %" PRIu64 " size %" PRIu64
				      " does not end at the index", ft->filter_off, ft->filter_size);
	return 0;
}

/*
 * INDEX FENCES
 *
 * A point lookup binary-searches the index block's restart keys, and in a
 * 64 MiB table that is ~16,000 keys scattered over ~500 KiB: each probe
 * below the top few levels is a cache miss (13% of a random-read run).
 * So the reader keeps, per restart point, 8 bytes of its user key packed
 * into a big-endian integer, taken after the prefix every index key
 * shares (the common prefix of the first and the last one: keys sorted
 * between them share it too). The search first narrows to the restart
 * points whose fence equals the target's, in one contiguous array, and
 * only compares whole keys there. Fences are memory-only: nothing about
 * them is stored.
 *
 * Why it is exact: for keys that share the prefix, fence(a) < fence(b)
 * implies user key a < b (bytewise, shorter keys padded with zeros,
 * which only ever makes fences equal, never reversed), and internal keys
 * order by user key first. Equal fences decide nothing.
 */
static uint64_t kv_sst_fence(const uint8_t *k, size_t len)
{
	uint64_t f = 0;
	for (size_t i = 0; i < 8; i++)
		f = f << 8 | (i < len ? k[i] : 0);
	return f;
}

/* Build r->fences; on any failure the reader just goes without. */
static void kv_sst_fences_build(struct kv_sst_reader *r, const struct kv_sst_block *idx)
{
	struct kv_sst_biter it;
	const uint8_t *first, *last, *k;
	size_t flen, llen, klen, skip = 0;
	uint64_t *f;

	if (idx->nrestarts < 64)
		return;                         /* a short search needs no help */
	kv_sst_bi_init(&it, r->name);
	kv_sst_bi_set(&it, idx);
	if (kv_sst_bi_restart_key(&it, 0, &first, &flen) ||
	    kv_sst_bi_restart_key(&it, idx->nrestarts - 1, &last, &llen))
		return;
	flen -= KV_IKEY_TRAILER;
	llen -= KV_IKEY_TRAILER;
	while (skip < flen && skip < llen && first[skip] == last[skip])
		skip++;
	if (!(f = malloc((size_t)idx->nrestarts * sizeof(*f))))
		return;
	for (uint32_t i = 0; i < idx->nrestarts; i++) {
		if (kv_sst_bi_restart_key(&it, i, &k, &klen)) {
			free(f);
			return;                 /* the seek will report it */
		}
		klen -= KV_IKEY_TRAILER;
		f[i] = kv_sst_fence(k + (klen < skip ? klen : skip), klen < skip ? 0 : klen - skip);
	}
	r->fences = f;
	r->fence_prefix = first;
	r->fence_skip = skip;
}

/* Seek the index iterator, narrowed by the fences when they apply. */
static void kv_sst_index_seek(struct kv_sst_iter *it, const uint8_t *ikey, size_t len)
{
	const struct kv_sst_reader *r = it->r;
	size_t ulen = len - KV_IKEY_TRAILER, n = it->index.b.nrestarts, a = 0, b, lo, hi;
	uint64_t t;

	if (!r->fences || ulen < r->fence_skip || memcmp(ikey, r->fence_prefix, r->fence_skip)) {
		kv_sst_bi_seek(&it->index, ikey, len);
		return;
	}
	t = kv_sst_fence(ikey + r->fence_skip, ulen - r->fence_skip);
	for (lo = 0, hi = n; lo < hi;) {        /* a = first fence >= t */
		size_t mid = lo + (hi - lo) / 2;
		if (r->fences[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	a = lo;
	for (hi = n; lo < hi;) {                /* b = first fence > t */
		size_t mid = lo + (hi - lo) / 2;
		if (r->fences[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	b = lo;
	/* Restarts before a are < target, those from b on are > it. */
	kv_sst_bi_seek_in(&it->index, ikey, len, a ? (uint32_t)(a - 1) : 0,
			  b ? (uint32_t)(b - 1) : 0);
}

/*
 * kv_sst_open - open the SST described by meta (id and size are used)
 * in store, caching data blocks in cache (NULL = no caching). store and
 * cache must outlive the reader. On success *out holds one reference
 * (kv_sst_unref). Returns 0, KV_ECORRUPT, -ENOMEM, -ENOENT or another
 * store error. Two ranged GETs: the footer, then filter + index.
 */
int kv_sst_open(struct kv_sst_reader **out, struct obj_backend *store, struct kv_cache *cache,
		const struct kv_sst_meta *meta)
{
	struct kv_sst_reader *r;
	struct kv_sst_footer ft = { 0 };
	struct kv_sst_block idx;
	void *buf = NULL;
	size_t n = 0, body;
	uint8_t type;
	int rc;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	atomic_init(&r->refs, 1);
	r->store = store;
	r->cache = cache;
	CHECK_RETURN(pthread_mutex_init(&r->ra_mu, NULL));
	CHECK_RETURN(pthread_cond_init(&r->ra_cv, NULL));
	for (size_t i = 0; i < KV_SST_RA_STREAMS; i++) {
		r->ra[i].next = KV_SST_RA_NONE;
		r->ra[i].next_p = SIZE_MAX;
		atomic_init(&r->ra[i].mark, KV_SST_RA_NONE);
	}
	r->size = meta->size;
	kv_sst_id_name(&meta->id, r->name, sizeof(r->name));

	/* Smallest SST: an empty index block (4 bytes) + trailer + footer. */
	if (r->size < KV_SST_FOOTER_SIZE + KV_SST_TRAILER_SIZE + 4) {
		rc = KV_SST_CORRUPT(r->name, "object of %" PRIu64 " bytes is too small for an SST",
				    r->size);
		goto fail;
	}
	rc = obj_get(store, r->name, r->size - KV_SST_FOOTER_SIZE, KV_SST_FOOTER_SIZE, &buf, &n);
	if (rc)
		goto fail;
	if (n != KV_SST_FOOTER_SIZE) {
		rc = KV_SST_CORRUPT(r->name, "footer: truncated object (read %zu of 64 bytes at %" PRIu64
				    ")", n, r->size - KV_SST_FOOTER_SIZE);
		goto fail;
	}
	if ((rc = kv_sst_footer_parse(r->name, r->size, buf, &ft)))
		goto fail;
	obj_buf_free(buf);
	buf = NULL;

	/* Filter and index are adjacent and end at the footer: one GET. */
	uint64_t meta_len = r->size - KV_SST_FOOTER_SIZE - ft.filter_off;
	rc = obj_get(store, r->name, ft.filter_off, meta_len, &r->meta, &n);
	if (rc)
		goto fail;
	if (n != meta_len) {
		rc = KV_SST_CORRUPT(r->name, "index: truncated object (read %zu of %" PRIu64
				    " bytes at %" PRIu64 ")", n, meta_len, ft.filter_off);
		goto fail;
	}
	const uint8_t *m = r->meta;
	if (ft.filter_size) {
		rc = kv_sst_check_stored(r->name, ft.filter_off, m,
					 (size_t)ft.filter_size + KV_SST_TRAILER_SIZE, &body, &type);
		if (rc)
			goto fail;
		/* The builder never compresses the filter or the index. */
		if (type != KV_SST_COMP_NONE) {
			rc = KV_SST_CORRUPT(r->name, "filter: unexpected compression type %u", type);
			goto fail;
		}
		r->filter = m;
		r->filter_len = body;
	}
	const uint8_t *ip = m + (ft.index_off - ft.filter_off);
	rc = kv_sst_check_stored(r->name, ft.index_off, ip,
				 (size_t)ft.index_size + KV_SST_TRAILER_SIZE, &body, &type);
	if (rc)
		goto fail;
	if (type != KV_SST_COMP_NONE) {
		rc = KV_SST_CORRUPT(r->name, "index: unexpected compression type %u", type);
		goto fail;
	}
	if ((rc = kv_sst_block_parse(r->name, ft.index_off, ip, body, &idx)))
		goto fail;
	r->index = ip;
	r->index_len = body;
	r->index_rlen = idx.rlen;
	r->index_off = ft.index_off;
	r->entries = ft.entries;
	r->nblocks = ft.blocks;
	r->data_end = ft.filter_off;
	kv_sst_fences_build(r, &idx);
	if (cache)
		r->cache_id = kv_cache_new_id(cache);
	*out = r;
	return 0;
fail:
	if (buf)
		obj_buf_free(buf);
	if (r->meta)
		obj_buf_free(r->meta);
	CHECK_RETURN(pthread_cond_destroy(&r->ra_cv));
	CHECK_RETURN(pthread_mutex_destroy(&r->ra_mu));
	free(r);
	return rc;
}

/* kv_sst_ref - take another reference. Thread-safe. */
void kv_sst_ref(struct kv_sst_reader *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

/* kv_sst_unref - drop a reference; the last one frees the reader. */
void kv_sst_unref(struct kv_sst_reader *r)
{
	if (!r)
		return;
	unsigned prev = atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel);
	assert(prev > 0);
	if (prev != 1)
		return;
	if (r->meta)
		obj_buf_free(r->meta);
	free(r->fences);
	CHECK_RETURN(pthread_cond_destroy(&r->ra_cv));
	CHECK_RETURN(pthread_mutex_destroy(&r->ra_mu));
	free(r);
}

/* ---- two-level iterator ------------------------------------------------- */

static void kv_sst_it_index_block(const struct kv_sst_reader *r, struct kv_sst_block *b)
{
	/* Parsed successfully at open; cannot fail now. */
	int rc = kv_sst_block_parse(r->name, r->index_off, r->index, r->index_len, b);
	assert(rc == 0);
	(void)rc;
}

static void kv_sst_it_init(struct kv_sst_iter *it, struct kv_sst_reader *r)
{
	struct kv_sst_block b;
	memset(it, 0, sizeof(*it));
	it->r = r;
	it->st.use_cache = 1;
	it->st.ra.next = KV_SST_RA_NONE;
	it->st.ra.next_p = SIZE_MAX;
	atomic_init(&it->st.ra.mark, KV_SST_RA_NONE);
	kv_sst_bi_init(&it->index, r->name);
	kv_sst_bi_init(&it->data, r->name);
	kv_sst_it_index_block(r, &b);
	kv_sst_bi_set(&it->index, &b);
}

static void kv_sst_it_cleanup(struct kv_sst_iter *it)
{
	kv_sst_bref_release(&it->ref);
	kv_buf_free(&it->index.key);
	kv_buf_free(&it->data.key);
}

/* Pick up a block iterator's error. Returns the iterator status. */
static int kv_sst_it_sync(struct kv_sst_iter *it)
{
	if (!it->status)
		it->status = it->index.err ? it->index.err : it->data.err;
	if (it->status)
		it->data.valid = 0;
	return it->status;
}

/* Load the data block the index iterator points at (data not positioned). */
static int kv_sst_it_load(struct kv_sst_iter *it)
{
	struct kv_sst_block b;
	uint64_t off, size;
	int rc;

	kv_sst_bref_release(&it->ref);
	it->data.valid = 0;
	if ((rc = kv_sst_block_handle(it->r, it->index.val, it->index.vlen, &off, &size)) ||
	    (rc = kv_sst_read_block(it->r, off, size, &it->index, &it->st, &it->ref, &b))) {
		it->status = rc;
		return rc;
	}
	kv_sst_bi_set(&it->data, &b);
	return 0;
}

/* Move to the next block while the data iterator is exhausted. */
static void kv_sst_it_skip(struct kv_sst_iter *it)
{
	while (!kv_sst_it_sync(it) && !it->data.valid) {
		kv_sst_bi_next(&it->index);
		if (kv_sst_it_sync(it) || !it->index.valid)
			break;
		if (kv_sst_it_load(it))
			break;
		kv_sst_bi_seek_first(&it->data);
	}
}

static void kv_sst_iter__seek(struct kv_iter *base, const uint8_t *ikey, size_t len)
{
	struct kv_sst_iter *it = (struct kv_sst_iter *)base;
	assert(len >= KV_IKEY_TRAILER);
	it->data.valid = 0;
	if (it->status)
		return;
	/* The first index key >= target names the only block that can hold it. */
	kv_sst_index_seek(it, ikey, len);
	if (kv_sst_it_sync(it) || !it->index.valid || kv_sst_it_load(it))
		return;
	kv_sst_bi_seek(&it->data, ikey, len);
	kv_sst_it_skip(it);
}

static void kv_sst_iter__seek_first(struct kv_iter *base)
{
	struct kv_sst_iter *it = (struct kv_sst_iter *)base;
	it->data.valid = 0;
	if (it->status)
		return;
	kv_sst_bi_seek_first(&it->index);
	if (kv_sst_it_sync(it) || !it->index.valid || kv_sst_it_load(it))
		return;
	kv_sst_bi_seek_first(&it->data);
	kv_sst_it_skip(it);
}

static void kv_sst_iter__next(struct kv_iter *base)
{
	struct kv_sst_iter *it = (struct kv_sst_iter *)base;
	assert(it->data.valid && !it->status);
	kv_sst_bi_next(&it->data);
	kv_sst_it_skip(it);
}

static int kv_sst_iter__valid(struct kv_iter *base)
{
	struct kv_sst_iter *it = (struct kv_sst_iter *)base;
	return !it->status && it->data.valid;
}

static void kv_sst_iter__key(struct kv_iter *base, const uint8_t **k, size_t *len)
{
	struct kv_sst_iter *it = (struct kv_sst_iter *)base;
	assert(it->data.valid);
	*k = it->data.key.data;
	*len = it->data.key.len;
}

static void kv_sst_iter__value(struct kv_iter *base, const uint8_t **v, size_t *len)
{
	struct kv_sst_iter *it = (struct kv_sst_iter *)base;
	assert(it->data.valid);
	*v = it->data.val;
	*len = it->data.vlen;
}

static int kv_sst_iter__status(struct kv_iter *base)
{
	return ((struct kv_sst_iter *)base)->status;
}

static void kv_sst_iter__free(struct kv_iter *base)
{
	struct kv_sst_iter *it = (struct kv_sst_iter *)base;
	struct kv_sst_reader *r = it->r;
	kv_sst_it_cleanup(it);
	free(it);
	kv_sst_unref(r);
}

static const struct kv_iter_ops kv_sst_iter_ops = {
	.seek = kv_sst_iter__seek,
	.seek_first = kv_sst_iter__seek_first,
	.next = kv_sst_iter__next,
	.valid = kv_sst_iter__valid,
	.key = kv_sst_iter__key,
	.value = kv_sst_iter__value,
	.status = kv_sst_iter__status,
	.free = kv_sst_iter__free,
};

/*
 * kv_sst_iter_create - an unpositioned iterator over every entry (seek or
 * seek_first before use). It holds a reference on r until freed; it
 * belongs to one thread at a time. Returns 0 or -ENOMEM.
 */
int kv_sst_iter_create(struct kv_iter **out, struct kv_sst_reader *r)
{
	return kv_sst_iter_create_ext(out, r, 0);
}

int kv_sst_iter_create_ext(struct kv_iter **out, struct kv_sst_reader *r, int background)
{
	struct kv_sst_iter *it = malloc(sizeof(*it));
	if (!it)
		return -ENOMEM;
	kv_sst_it_init(it, r);
	it->st.ra.background = background;
	it->base.ops = &kv_sst_iter_ops;
	kv_sst_ref(r);
	*out = &it->base;
	return 0;
}

/* ---- point lookups ------------------------------------------------------ */

/*
 * kv_sst_get - newest version of `key` with seq <= snap: 1 value (*val
 * malloc'd, the caller's, free()), 2 tombstone, 0 absent; or KV_ECORRUPT,
 * -ENOMEM, a store error. Thread-safe.
 */
int kv_sst_get(struct kv_sst_reader *r, const void *key, size_t klen, uint64_t snap,
	       uint8_t **val, size_t *vlen)
{
	struct kv_sst_iter it;
	uint8_t tbuf[128], *target = tbuf;     /* most keys fit: no malloc per get */
	size_t tlen;
	int rc = 0;

	if (r->filter && !kv_bloom_may_contain(r->filter, r->filter_len, kv_bloom_hash(key, klen)))
		return 0;
	if (util_size_add(&tlen, klen, KV_IKEY_TRAILER) ||
	    (tlen > sizeof(tbuf) && !(target = malloc(tlen))))
		return -ENOMEM;
	/* (key, snap, VALUE) sorts before every version with seq <= snap. */
	kv_ikey_make(target, key, klen, snap > KV_SEQ_MAX ? KV_SEQ_MAX : snap, KV_TYPE_VALUE);
	kv_sst_it_init(&it, r);
	it.st.shared = 1;                       /* gets come from any thread: shared streams */
	kv_sst_iter__seek(&it.base, target, tlen);
	if (it.status) {
		rc = it.status;
		goto out;
	}
	if (!it.data.valid ||
	    kv_ukey_cmp(it.data.key.data, it.data.key.len - KV_IKEY_TRAILER, key, klen) != 0)
		goto out;
	if (kv_ikey_type(it.data.key.data, it.data.key.len) == KV_TYPE_DELETE) {
		rc = 2;
		goto out;
	}
	uint8_t *v = malloc(it.data.vlen ? it.data.vlen : 1);
	if (!v) {
		rc = -ENOMEM;
		goto out;
	}
	if (it.data.vlen)
		memcpy(v, it.data.val, it.data.vlen);
	*val = v;
	*vlen = it.data.vlen;
	rc = 1;
out:
	kv_sst_it_cleanup(&it);
	if (target != tbuf)
		free(target);
	return rc;
}

/* ---- verification ------------------------------------------------------- */

/*
 * Check a block's restart array against its entries: seeks trust it, a
 * sequential walk does not use it. Restart points must be entry starts,
 * strictly increasing, the first at offset 0, each with shared == 0.
 * `it` is set on the block; it is left positioned nowhere.
 */
static int kv_sst_verify_restarts(struct kv_sst_biter *it)
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
		return KV_SST_CORRUPT(it->name, "block at offset %" PRIu64
				      ": restart point %" PRIu32 " is not an entry boundary",
				      it->b.off, ri);
	return 0;
}

/*
 * kv_sst_verify - read every data block from the store (bypassing the
 * cache) and check everything checkable: checksums, block structure,
 * strictly increasing keys, index separators, contiguous block layout,
 * entry and block counts, and that the filter holds every user key.
 * Returns 0, KV_ECORRUPT, -ENOMEM or a store error. Thread-safe.
 */
int kv_sst_verify(struct kv_sst_reader *r)
{
	struct kv_sst_biter idx, data;
	struct kv_sst_block b;
	struct kv_sst_bref ref = { 0 };
	struct kv_sst_stream st = { .use_cache = 0 };
	struct kv_buf prev = { 0 }, prev_sep = { 0 };
	uint64_t entries = 0, blocks = 0, next_off = 0, off, size;
	int rc = 0;

	kv_sst_bi_init(&idx, r->name);
	kv_sst_bi_init(&data, r->name);
	kv_sst_it_index_block(r, &b);
	kv_sst_bi_set(&idx, &b);
	if ((rc = kv_sst_verify_restarts(&idx)))
		goto out;
	for (kv_sst_bi_seek_first(&idx); idx.valid; kv_sst_bi_next(&idx)) {
		if ((rc = kv_sst_block_handle(r, idx.val, idx.vlen, &off, &size)))
			goto out;
		if (off != next_off) {
			rc = KV_SST_CORRUPT(r->name, "index: block %" PRIu64 " at offset %" PRIu64
					    ", expected %" PRIu64, blocks, off, next_off);
			goto out;
		}
		kv_sst_bref_release(&ref);
		if ((rc = kv_sst_read_block(r, off, size, NULL, &st, &ref, &b)))
			goto out;
		next_off = off + size + KV_SST_TRAILER_SIZE;
		blocks++;
		kv_sst_bi_set(&data, &b);
		if ((rc = kv_sst_verify_restarts(&data)))
			goto out;
		kv_sst_bi_seek_first(&data);
		if (!data.valid && !data.err) {
			rc = KV_SST_CORRUPT(r->name, "block at offset %" PRIu64 ": empty data block", off);
			goto out;
		}
		for (; data.valid; kv_sst_bi_next(&data)) {
			const uint8_t *k = data.key.data;
			size_t kl = data.key.len;
			if ((prev.len && kv_ikey_cmp(prev.data, prev.len, k, kl) >= 0) ||
			    (prev_sep.len && kv_ikey_cmp(prev_sep.data, prev_sep.len, k, kl) >= 0) ||
			    kv_ikey_cmp(k, kl, idx.key.data, idx.key.len) > 0) {
				rc = KV_SST_CORRUPT(r->name, "block at offset %" PRIu64
						    ": keys out of order", off);
				goto out;
			}
			if (r->filter && !kv_bloom_may_contain(r->filter, r->filter_len,
							       kv_bloom_hash(k, kl - KV_IKEY_TRAILER))) {
				rc = KV_SST_CORRUPT(r->name, "filter: misses a key of block at offset %"
						    PRIu64, off);
				goto out;
			}
			prev.len = 0;
			if ((rc = kv_buf_append(&prev, k, kl)))
				goto out;
			entries++;
		}
		if ((rc = data.err))
			goto out;
		prev_sep.len = 0;
		if ((rc = kv_buf_append(&prev_sep, idx.key.data, idx.key.len)))
			goto out;
	}
	if ((rc = idx.err))
		goto out;
	if (next_off != r->data_end || blocks != r->nblocks || entries != r->entries) {
		rc = KV_SST_CORRUPT(r->name, "footer: %" PRIu64 " entries in %" PRIu64
				    " blocks ending at %" PRIu64 ", found %" PRIu64 " in %" PRIu64
				    " ending at %" PRIu64, r->entries, r->nblocks, r->data_end,
				    entries, blocks, next_off);
		goto out;
	}
out:
	kv_sst_bref_release(&ref);
	kv_buf_free(&idx.key);
	kv_buf_free(&data.key);
	kv_buf_free(&prev);
	kv_buf_free(&prev_sep);
	return rc;
}

/* ---- in-memory checking (fuzzing) ---------------------------------------- */

/* A read-only "store" holding one object: the buffer under check. */
struct kv_sst_membuf {
	struct obj_backend base;
	const uint8_t *data;
	size_t len;
};

static int kv_sst_membuf__get(struct obj_backend *b, const char *name, uint64_t off,
			      uint64_t len, void **out, size_t *out_len)
{
	struct kv_sst_membuf *m = (struct kv_sst_membuf *)b;
	(void)name;
	*out = NULL;
	*out_len = 0;
	if (off >= m->len)
		return 0;
	if (len > m->len - off)
		len = m->len - off;
	void *p = malloc((size_t)len);
	if (!p)
		return -ENOMEM;
	memcpy(p, m->data + off, (size_t)len);
	*out = p;
	*out_len = (size_t)len;
	return 0;
}

/* Reader inconsistent with itself: a bug in this file, not corruption. */
static int kv_sst_check_bug(const char *what)
{
	UTIL_ERROR("kv", "sst check: reader inconsistency: %s", what);
	return -EIO;
}

/* Spot checks: get and seek must find what iteration found. */
#define KV_SST_CHECK_SAMPLES 256

/*
 * kv_sst_check_buffer - open, verify, iterate and probe an SST held in
 * memory (data, len), with no cache. Returns 0 (valid SST), KV_ECORRUPT,
 * -ENOMEM, or -EIO when the reader disagrees with itself (a reader bug:
 * the fuzzer treats it as a finding).
 */
int kv_sst_check_buffer(const uint8_t *data, size_t len)
{
	struct kv_sst_membuf mb = { 0 };
	struct kv_sst_meta meta = { 0 };
	struct kv_sst_reader *r = NULL;
	struct kv_iter *it = NULL, *seek = NULL;
	struct kv_buf prev = { 0 };
	uint64_t count = 0, checked = 0;
	uint8_t *val = NULL;
	size_t vlen;
	int rc;

	mb.base.version = OBJ_BACKEND_VERSION;
	mb.base.kind = "sst-check";
	mb.base.get = kv_sst_membuf__get;
	mb.data = data;
	mb.len = len;
	meta.size = len;

	if ((rc = kv_sst_open(&r, &mb.base, NULL, &meta)))
		return rc;
	if ((rc = kv_sst_verify(r)))
		goto out;
	if ((rc = kv_sst_iter_create(&it, r)) || (rc = kv_sst_iter_create(&seek, r)))
		goto out;
	for (it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it)) {
		const uint8_t *k, *v;
		size_t kl, vl;
		it->ops->key(it, &k, &kl);
		it->ops->value(it, &v, &vl);
		count++;
		uint64_t seq = kv_ikey_seq(k, kl);
		/* get(ukey, seq) answers this entry unless an entry with the same
		 * user key and seq but a greater type came just before it. */
		int shadowed = prev.len == kl && !memcmp(prev.data, k, kl - 1);
		if (checked < KV_SST_CHECK_SAMPLES && !shadowed) {
			checked++;
			int g = kv_sst_get(r, k, kl - KV_IKEY_TRAILER, seq, &val, &vlen);
			int want = kv_ikey_type(k, kl) == KV_TYPE_VALUE ? 1 : 2;
			if (g < 0) {
				rc = g;
				goto out;
			}
			if (g != want || (g == 1 && (vlen != vl || (vl && memcmp(val, v, vl))))) {
				rc = kv_sst_check_bug("get disagrees with iteration");
				goto out;
			}
			free(val);
			val = NULL;
			seek->ops->seek(seek, k, kl);
			const uint8_t *sk;
			size_t skl;
			if (!seek->ops->valid(seek)) {
				rc = seek->ops->status(seek);
				if (!rc)
					rc = kv_sst_check_bug("seek to an existing key found nothing");
				goto out;
			}
			seek->ops->key(seek, &sk, &skl);
			if (skl != kl || memcmp(sk, k, kl)) {
				rc = kv_sst_check_bug("seek disagrees with iteration");
				goto out;
			}
		}
		prev.len = 0;
		if ((rc = kv_buf_append(&prev, k, kl)))
			goto out;
	}
	if ((rc = it->ops->status(it)))
		goto out;
	if (count != r->entries)
		rc = kv_sst_check_bug("iteration count differs from the verified count");
out:
	free(val);
	kv_buf_free(&prev);
	if (seek)
		seek->ops->free(seek);
	if (it)
		it->ops->free(it);
	kv_sst_unref(r);
	return rc;
}
