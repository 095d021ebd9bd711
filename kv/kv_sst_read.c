/*
 * kv_sst_read.c - the SST reader: open (footer, filter, index), point
 * lookups, iterators and verification. The format is described above the
 * encoder in kv_sst_build.c; blocks are checked and decoded by
 * kv_sst_block.c, and which blocks a miss fetches besides its own is
 * decided by the read-ahead planner (kv_readahead.c).
 *
 * LIFECYCLE
 *   kv_sst_open fetches the footer (ranged GET of the last 64 bytes) and
 *   then the adjacent filter + index (one ranged GET), checks them and
 *   keeps them for the reader's life. Data blocks are fetched by ranged
 *   GET when needed, checked (CRC, decompression, block structure) and
 *   inserted decoded into the block cache under (reader cache id, block
 *   offset). A reader is immutable after open except for its read-ahead
 *   state (struct kv_ra_table, guarded by its own lock), so any number of
 *   threads may use it; it is reference-counted (kv_sst_ref/unref) and
 *   every iterator holds a reference, as does a prefetch in flight. Cache
 *   entries of a freed reader are never looked up again (ids are not
 *   reused) and age out of the LRU.
 *
 * READ-AHEAD
 *   On a cache miss the reader asks the planner (kv_ra_miss), which may
 *   fetch a span of blocks with the one asked for, or wait for a span in
 *   flight that holds it; an iterator's hits advance its stream
 *   (kv_ra_hit), and every block served may queue a prefetch
 *   (kv_ra_marked). Point lookups use the table's shared streams, an
 *   iterator a stream of its own. Without a cache (kv_sst_check_buffer)
 *   and in kv_sst_verify, which bypasses it, there is no read-ahead.
 *
 * TRUST
 *   Every byte from the store is untrusted (TRUST in kv_sst_block.c):
 *   decode errors are KV_ECORRUPT with one log line naming the object and
 *   the place, never an assert.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_SST_NAME_SIZE 48

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
	struct kv_ra_table ra;            /* read-ahead (kv_readahead.c); set up only with a cache */
	/* A table whose footer, filter or index is damaged (kv_sst_broken.c):
	 * every read of a key in [lo, hi] fails as corrupt, naming it. */
	int broken;
	uint8_t *lo, *hi;                 /* its user-key range, from the manifest */
	size_t lo_len, hi_len;
	char why[160];
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
	struct kv_ra_stream ra;           /* else on this one (owned by the caller's thread) */
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
		return KV_CORRUPT(r->name, KV_CORRUPT_NO_OFFSET, "index: malformed block handle");
	return 0;
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
	int rc;

	rc = kv_obj_get(r->store, r->name, off, size + KV_SST_TRAILER_SIZE, &raw, &raw_len);
	if (rc)
		return rc;
	if (use_cache) {
		ref->cache = r->cache;
		rc = kv_sst_block_cache(r->cache, r->cache_id, r->name, off, size, raw, raw_len,
					&ref->h, blk);
	} else {
		rc = kv_sst_decode(r->name, off, size, raw, raw_len, &ref->owned, &len, blk);
	}
	obj_buf_free(raw);
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
	struct kv_ra_stream *own = st->shared ? NULL : &st->ra;
	int use_cache = st->use_cache && r->cache, rc;

	if (size > KV_SST_BLOCK_MAX || off > r->data_end ||
	    size + KV_SST_TRAILER_SIZE > r->data_end - off) {
		return KV_CORRUPT(r->name, off, "index: block at offset %" PRIu64 " size %" PRIu64
				  " lies outside the data region", off, size);
	}
	if (!use_cache)
		return kv_sst_fetch_one(r, off, size, 0, ref, blk);
	if (kv_sst_cache_get(r, off, ref, blk, &rc)) {
		if (!rc)
			kv_ra_hit(own, off + size + KV_SST_TRAILER_SIZE, idx ? idx->nxt : SIZE_MAX);
	} else {
		ref->cache = r->cache;
		rc = idx ? kv_ra_miss(&r->ra, own, off, size, idx->cur, idx->nxt, &ref->h, blk)
			 : KV_RA_ALONE;
		if (rc == KV_RA_WAITED && !kv_sst_cache_get(r, off, ref, blk, &rc))
			rc = KV_RA_ALONE;       /* the span failed, or this block did */
		if (rc == KV_RA_ALONE)
			rc = kv_sst_fetch_one(r, off, size, 1, ref, blk);
	}
	if (!rc && idx)
		kv_ra_marked(&r->ra, own, off);
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
		return KV_CORRUPT(name, end, "footer: bad magic (not an SST)");
	if (!KV_SST_CRC_OK(util_get_be32(f + 60), util_crc32c(0, f, 60)))
		return KV_CORRUPT(name, end, "footer: checksum mismatch");
	if (util_get_be32(f + 48) != KV_SST_VERSION)
		return KV_CORRUPT(name, end, "footer: unsupported format version %" PRIu32,
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
		return KV_CORRUPT(name, end, "footer: index at %" PRIu64 " size %" PRIu64
				  " does not end at the footer", ft->index_off, ft->index_size);
	if (ft->filter_size == 0 ? ft->filter_off != ft->index_off :
	    (ft->filter_size > ft->index_off ||
	     ft->index_off - ft->filter_size < KV_SST_TRAILER_SIZE ||
	     ft->filter_off != ft->index_off - ft->filter_size - KV_SST_TRAILER_SIZE))
		return KV_CORRUPT(name, end, "footer: filter at %" PRIu64 " size %" PRIu64
				  " does not end at the index", ft->filter_off, ft->filter_size);
	return 0;
}

/*
 * INDEX FENCES
 *
 * A point lookup binary-searches the index block's restart keys, and in a
 * 64 MiB table that is ~16,000 keys scattered over ~500 KiB: each probe
 * below the top few levels is a CPU cache miss, a visible cost in a
 * random-read run.
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

/* A reader with one reference, before its footer and index are read. */
static struct kv_sst_reader *kv_sst_reader_new(struct obj_backend *store,
					       struct kv_cache *cache,
					       const struct kv_sst_meta *meta)
{
	struct kv_sst_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	atomic_init(&r->refs, 1);
	r->store = store;
	r->cache = cache;
	r->size = meta->size;
	kv_sst_id_name(&meta->id, r->name, sizeof(r->name));
	return r;
}

/* The end of an open: the index in place (r->index, index_len), the rest. */
static void kv_sst_open_done(struct kv_sst_reader *r, const struct kv_sst_block *idx)
{
	r->index_rlen = idx->rlen;
	kv_sst_fences_build(r, idx);
	if (r->cache) {
		r->cache_id = kv_cache_new_id(r->cache);
		kv_ra_table_init(&r->ra, &(struct kv_ra_src){
			.r = r, .ref = kv_sst_ref, .unref = kv_sst_unref,
			.store = r->store, .name = r->name, .cache = r->cache,
			.cache_id = r->cache_id, .index = r->index, .index_rlen = r->index_rlen,
			.data_end = r->data_end });
	}
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

	r = kv_sst_reader_new(store, cache, meta);
	if (!r)
		return -ENOMEM;

	/* Smallest SST: an empty index block (4 bytes) + trailer + footer. */
	if (r->size < KV_SST_FOOTER_SIZE + KV_SST_TRAILER_SIZE + 4) {
		rc = KV_CORRUPT(r->name, KV_CORRUPT_NO_OFFSET,
				"object of %" PRIu64 " bytes is too small for an SST", r->size);
		goto fail;
	}
	rc = kv_obj_get(store, r->name, r->size - KV_SST_FOOTER_SIZE, KV_SST_FOOTER_SIZE, &buf, &n);
	if (rc)
		goto fail;
	if (n != KV_SST_FOOTER_SIZE) {
		rc = KV_CORRUPT(r->name, r->size - KV_SST_FOOTER_SIZE,
				"footer: truncated object (read %zu of 64 bytes at %" PRIu64 ")", n,
				r->size - KV_SST_FOOTER_SIZE);
		goto fail;
	}
	if ((rc = kv_sst_footer_parse(r->name, r->size, buf, &ft)))
		goto fail;
	obj_buf_free(buf);
	buf = NULL;

	/* Filter and index are adjacent and end at the footer: one GET. */
	uint64_t meta_len = r->size - KV_SST_FOOTER_SIZE - ft.filter_off;
	rc = kv_obj_get(store, r->name, ft.filter_off, meta_len, &r->meta, &n);
	if (rc)
		goto fail;
	if (n != meta_len) {
		rc = KV_CORRUPT(r->name, ft.filter_off, "index: truncated object (read %zu of %" PRIu64
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
			rc = KV_CORRUPT(r->name, ft.filter_off, "filter: unexpected compression type %u", type);
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
		rc = KV_CORRUPT(r->name, ft.index_off, "index: unexpected compression type %u", type);
		goto fail;
	}
	if ((rc = kv_sst_block_parse(r->name, ft.index_off, ip, body, &idx)))
		goto fail;
	r->index = ip;
	r->index_len = body;
	r->index_off = ft.index_off;
	r->entries = ft.entries;
	r->nblocks = ft.blocks;
	r->data_end = ft.filter_off;
	kv_sst_open_done(r, &idx);
	*out = r;
	return 0;
fail:
	if (buf)
		obj_buf_free(buf);
	if (r->meta)
		obj_buf_free(r->meta);
	free(r);
	return rc;
}

int kv_sst_open_rebuilt(struct kv_sst_reader **out, struct obj_backend *store,
			struct kv_cache *cache, const struct kv_sst_meta *meta, const char *why)
{
	struct kv_sst_reader *r = kv_sst_reader_new(store, cache, meta);
	struct kv_sst_footer ft;
	struct kv_sst_rebuilt rb;
	struct kv_sst_block idx;
	void *buf = NULL;
	size_t n = 0;
	uint64_t limit;
	int rc, footer = 0;

	if (!r)
		return -ENOMEM;
	if (r->size <= KV_SST_FOOTER_SIZE) {
		free(r);
		return KV_ECORRUPT;
	}
	/* A sound footer says where the data ends, and how much it holds. */
	limit = r->size - KV_SST_FOOTER_SIZE;
	if (kv_obj_get(store, r->name, limit, KV_SST_FOOTER_SIZE, &buf, &n) == 0 &&
	    n == KV_SST_FOOTER_SIZE && kv_sst_footer_parse(NULL, r->size, buf, &ft) == 0) {
		footer = 1;
		limit = ft.filter_off;
	}
	obj_buf_free(buf);
	buf = NULL;
	rc = kv_obj_get(store, r->name, 0, limit, &buf, &n);
	if (rc == 0 && n != limit)
		rc = KV_ECORRUPT;
	if (rc) {
		obj_buf_free(buf);
		free(r);
		return rc == KV_ECORRUPT || rc == -ENOENT ? KV_ECORRUPT : rc;
	}
	rc = kv_sst_rebuild_index(buf, n, &rb);
	obj_buf_free(buf);
	if (rc) {
		free(r);
		return rc;
	}
	/* Only the whole table will do (kv_sst_rebuild.c, WHEN THE RESULT IS
	 * TRUSTED): what the manifest records, and the footer if sound. The
	 * manifest records neither count nor last key of a data table
	 * (kv_ref.c), but every REF names the entry it needs, and a read of
	 * one the blocks lack is corruption (kv_version_ref_read). */
	if (rb.blocks == 0 ||
	    (meta->largest && (rb.entries != meta->entries ||
			       kv_ikey_cmp(rb.last.data, rb.last.len, meta->largest,
					   meta->largest_len) != 0)) ||
	    (footer && (rb.data_end != ft.filter_off || rb.blocks != ft.blocks ||
			rb.entries != ft.entries)) ||
	    (!footer && rb.data_end + KV_SST_TRAILER_SIZE + 4 > r->size - KV_SST_FOOTER_SIZE) ||
	    kv_sst_block_parse(NULL, 0, rb.index.data, rb.index.len, &idx)) {
		kv_sst_rebuilt_free(&rb);
		free(r);
		return KV_ECORRUPT;
	}
	r->meta = rb.index.data;            /* freed with obj_buf_free: free() */
	rb.index.data = NULL;
	rb.index.len = rb.index.cap = 0;
	r->index = r->meta;
	r->index_len = idx.rlen + 4 * (size_t)idx.nrestarts + 4;
	r->index_off = rb.data_end;
	r->entries = rb.entries;
	r->nblocks = rb.blocks;
	r->data_end = rb.data_end;
	kv_sst_rebuilt_free(&rb);
	kv_sst_open_done(r, &idx);
	UTIL_WARN("kv", "%s: %s; its %" PRIu64 " data blocks (%" PRIu64 " entries) are sound: "
		  "reading it through an index rebuilt from them until a compaction rewrites "
		  "it (`shalefs fsck --scrub` reports the damaged bytes)", r->name, why,
		  r->nblocks, r->entries);
	*out = r;
	return 0;
}

/* kv_sst_entries - entries the footer records (the verified count once
 * kv_sst_verify has passed). */
uint64_t kv_sst_entries(const struct kv_sst_reader *r)
{
	return r->entries;
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
	if (r->cache)
		kv_ra_table_destroy(&r->ra);
	free(r->lo);
	free(r->hi);
	free(r);
}

/*
 * kv_sst_open_broken - a reader for a table that kv_sst_open found
 * corrupt (why: the reason), so that a version can still be built: the
 * rest of the store stays readable, and only reads that need this table
 * fail (BROKEN TABLES in kv_version.c). 0 or -ENOMEM.
 */
int kv_sst_open_broken(struct kv_sst_reader **out, const struct kv_sst_meta *meta,
		       const char *why)
{
	struct kv_sst_reader *r = kv_sst_reader_new(NULL, NULL, meta);

	if (!r)
		return -ENOMEM;
	r->broken = 1;
	snprintf(r->why, sizeof(r->why), "%s", why);
	r->lo_len = meta->smallest_len - KV_IKEY_TRAILER;
	r->hi_len = meta->largest_len - KV_IKEY_TRAILER;
	r->lo = malloc(r->lo_len ? r->lo_len : 1);
	r->hi = malloc(r->hi_len ? r->hi_len : 1);
	if (!r->lo || !r->hi) {
		free(r->lo);
		free(r->hi);
		free(r);
		return -ENOMEM;
	}
	memcpy(r->lo, meta->smallest, r->lo_len);
	memcpy(r->hi, meta->largest, r->hi_len);
	*out = r;
	return 0;
}

int kv_sst_wanted(const struct kv_sst_reader *r, const void *lo, size_t lolen, const void *hi,
		  size_t hilen)
{
	if (!r->broken)
		return 1;
	if (lo && kv_ukey_cmp(r->hi, r->hi_len, lo, lolen) < 0)
		return 0;
	if (hi && kv_ukey_cmp(r->lo, r->lo_len, hi, hilen) >= 0)
		return 0;
	return 1;
}

/* A read of broken table r: corrupt, naming it and why. */
static int kv_sst_broken_err(const struct kv_sst_reader *r)
{
	return KV_CORRUPT(r->name, KV_CORRUPT_NO_OFFSET, "table unreadable (%s): reads of "
			  "its keys fail", r->why);
}

/* ---- the iterator of a broken table --------------------------------------
 * Positioned at or before its last key it fails (it cannot tell what the
 * table holds there); past its last key it is simply exhausted, so an
 * iteration over other keys goes on. */
struct kv_sst_biter_broken {
	struct kv_iter base;
	struct kv_sst_reader *r;
	int status;
};

static void kv_sst_broken__seek(struct kv_iter *base, const uint8_t *ikey, size_t len)
{
	struct kv_sst_biter_broken *it = (struct kv_sst_biter_broken *)base;
	if (!it->status && kv_ukey_cmp(ikey, len - KV_IKEY_TRAILER, it->r->hi, it->r->hi_len) <= 0)
		it->status = kv_sst_broken_err(it->r);
}

static void kv_sst_broken__seek_first(struct kv_iter *base)
{
	struct kv_sst_biter_broken *it = (struct kv_sst_biter_broken *)base;
	if (!it->status)
		it->status = kv_sst_broken_err(it->r);
}

static void kv_sst_broken__next(struct kv_iter *base)
{
	(void)base;                     /* never valid: nothing to step over */
}

static int kv_sst_broken__valid(struct kv_iter *base)
{
	(void)base;
	return 0;
}

static void kv_sst_broken__key(struct kv_iter *base, const uint8_t **k, size_t *len)
{
	(void)base;
	*k = NULL;
	*len = 0;
}

static int kv_sst_broken__status(struct kv_iter *base)
{
	return ((struct kv_sst_biter_broken *)base)->status;
}

static void kv_sst_broken__free(struct kv_iter *base)
{
	struct kv_sst_biter_broken *it = (struct kv_sst_biter_broken *)base;
	kv_sst_unref(it->r);
	free(it);
}

static const struct kv_iter_ops kv_sst_broken_ops = {
	.seek = kv_sst_broken__seek,
	.seek_first = kv_sst_broken__seek_first,
	.next = kv_sst_broken__next,
	.valid = kv_sst_broken__valid,
	.key = kv_sst_broken__key,
	.value = kv_sst_broken__key,
	.status = kv_sst_broken__status,
	.free = kv_sst_broken__free,
};

static int kv_sst_broken_iter(struct kv_iter **out, struct kv_sst_reader *r)
{
	struct kv_sst_biter_broken *it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->base.ops = &kv_sst_broken_ops;
	it->r = r;
	kv_sst_ref(r);
	*out = &it->base;
	return 0;
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
	kv_ra_stream_init(&it->st.ra, 0);
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
	if (r->broken)
		return kv_sst_broken_iter(out, r);
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
 * malloc'd, the caller's, free()), 2 tombstone, KV_GOT_REF a reference
 * (its REF value in *val), 0 absent; or KV_ECORRUPT,
 * -ENOMEM, a store error. Thread-safe.
 */
void kv_part_copy(const struct kv_part *part, const uint8_t *v, size_t vlen)
{
	if (part->off < vlen && part->cap > 0) {
		size_t n = vlen - part->off < part->cap ? vlen - part->off : part->cap;
		memcpy(part->buf, v + part->off, n);
	}
}

int kv_sst_get(struct kv_sst_reader *r, const void *key, size_t klen, uint64_t snap,
	       uint8_t **val, size_t *vlen)
{
	return kv_sst_get_part(r, key, klen, snap, NULL, val, vlen);
}

int kv_sst_get_part(struct kv_sst_reader *r, const void *key, size_t klen, uint64_t snap,
		    const struct kv_part *part, uint8_t **val, size_t *vlen)
{
	struct kv_sst_iter it;
	uint8_t tbuf[128], *target = tbuf;     /* most keys fit: no malloc per get */
	size_t tlen;
	int rc = 0;

	if (r->broken)
		return kv_ukey_cmp(key, klen, r->lo, r->lo_len) < 0 ||
		       kv_ukey_cmp(key, klen, r->hi, r->hi_len) > 0 ? 0 : kv_sst_broken_err(r);
	if (r->filter && !kv_bloom_may_contain(r->filter, r->filter_len, kv_bloom_hash(key, klen)))
		return 0;
	if (util_size_add(&tlen, klen, KV_IKEY_TRAILER) ||
	    (tlen > sizeof(tbuf) && !(target = malloc(tlen))))
		return -ENOMEM;
	/* (key, snap, SEEK) sorts before every version with seq <= snap. */
	kv_ikey_make(target, key, klen, snap > KV_SEQ_MAX ? KV_SEQ_MAX : snap, KV_TYPE_SEEK);
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
	int is_ref = kv_ikey_type(it.data.key.data, it.data.key.len) == KV_TYPE_REF;
	if (part && !is_ref) {
		kv_part_copy(part, it.data.val, it.data.vlen);
		*vlen = it.data.vlen;
		rc = 1;
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
	rc = is_ref ? KV_GOT_REF : 1;
out:
	kv_sst_it_cleanup(&it);
	if (target != tbuf)
		free(target);
	return rc;
}

/* ---- verification ------------------------------------------------------- */

/* Where kv_sst_scrub is in the table, carried from block to block. */
struct kv_sst_scrub_pos {
	struct kv_buf prev;               /* the last good key ("" after a damaged block) */
	struct kv_buf prev_sep;           /* the index separator of the block before */
	uint64_t entries, blocks;
	int damaged;                      /* a block was damaged: entries cannot add up */
};

/* Check the decoded block b (index entry idx): its restarts, every entry
 * decoding, keys strictly increasing from the block before and not past
 * its separator, and the filter holding every user key. */
static int kv_sst_check_block(struct kv_sst_reader *r, const struct kv_sst_biter *idx,
			      const struct kv_sst_block *b, struct kv_sst_scrub_pos *p)
{
	struct kv_sst_biter data;
	uint64_t off = b->off, n = 0;
	int rc;

	kv_sst_bi_init(&data, r->name);
	kv_sst_bi_set(&data, b);
	if ((rc = kv_sst_verify_restarts(&data)))
		goto out;
	kv_sst_bi_seek_first(&data);
	if (!data.valid && !data.err) {
		rc = KV_CORRUPT(r->name, off, "block at offset %" PRIu64 ": empty data block", off);
		goto out;
	}
	for (; data.valid; kv_sst_bi_next(&data)) {
		const uint8_t *k = data.key.data;
		size_t kl = data.key.len;
		if ((p->prev.len && kv_ikey_cmp(p->prev.data, p->prev.len, k, kl) >= 0) ||
		    (p->prev_sep.len && kv_ikey_cmp(p->prev_sep.data, p->prev_sep.len, k, kl) >= 0) ||
		    kv_ikey_cmp(k, kl, idx->key.data, idx->key.len) > 0) {
			rc = KV_CORRUPT(r->name, off, "block at offset %" PRIu64 ": keys out of order",
					off);
			goto out;
		}
		if (r->filter && !kv_bloom_may_contain(r->filter, r->filter_len,
						       kv_bloom_hash(k, kl - KV_IKEY_TRAILER))) {
			rc = KV_CORRUPT(r->name, off, "filter: misses a key of block at offset %"
					PRIu64, off);
			goto out;
		}
		p->prev.len = 0;
		if ((rc = kv_buf_append(&p->prev, k, kl)))
			goto out;
		n++;
	}
	rc = data.err;
	if (!rc)
		p->entries += n;
out:
	kv_buf_free(&data.key);
	return rc;
}

/* Report damage at [off, off + len) whose user keys lie in (lo, hi]
 * (lo NULL: from the table's first key). Returns fn's verdict. */
static int kv_sst_damage(struct kv_sst_reader *r, kv_sst_damage_fn fn, void *arg, int err,
			 uint64_t off, uint64_t len, const struct kv_buf *lo, const struct kv_buf *hi)
{
	struct kv_sst_damage d = { .name = r->name, .err = err, .off = off, .len = len };

	if (lo && lo->len >= KV_IKEY_TRAILER) {
		d.lo = lo->data;
		d.lo_len = lo->len - KV_IKEY_TRAILER;
	}
	if (hi && hi->len >= KV_IKEY_TRAILER) {
		d.hi = hi->data;
		d.hi_len = hi->len - KV_IKEY_TRAILER;
	}
	return fn(arg, &d);
}

/*
 * kv_sst_scrub - read every data block from the store (bypassing the
 * cache), `span` bytes of whole blocks per GET, and check everything
 * checkable: checksums, block structure, strictly increasing keys, index
 * separators, contiguous block layout, entry and block counts, and that
 * the filter holds every user key. Each damaged block is passed to fn
 * (with the user keys it may have held), which returns 0 to go on or an
 * error to stop; read(arg, n) counts the bytes fetched (may be NULL).
 * Returns 0 (every block checked; fn saw the damage), fn's error,
 * -ENOMEM or a store error. Thread-safe.
 */
int kv_sst_scrub(struct kv_sst_reader *r, size_t span, kv_sst_damage_fn fn,
		 void (*read)(void *arg, uint64_t n), void *arg)
{
	struct kv_sst_biter idx;
	struct kv_sst_block b;
	struct kv_sst_scrub_pos p = { 0 };
	uint64_t next_off = 0, off, size, single_until = 0;
	int rc = 0;

	if (r->broken) {
		struct kv_sst_damage d = { .name = r->name, .err = kv_sst_broken_err(r),
					   .len = r->size };
		return fn(arg, &d);
	}

	kv_sst_bi_init(&idx, r->name);
	kv_sst_it_index_block(r, &b);
	kv_sst_bi_set(&idx, &b);
	if ((rc = kv_sst_verify_restarts(&idx)) == KV_ECORRUPT) {
		rc = kv_sst_damage(r, fn, arg, rc, r->index_off, r->size - r->index_off, NULL, NULL);
		goto out;
	}
	kv_sst_bi_seek_first(&idx);
	while (idx.valid && !rc) {
		/* One GET for the blocks from idx on that fit in span. */
		void *raw = NULL;
		size_t raw_len = 0;
		uint64_t first;
		rc = kv_sst_block_handle(r, idx.val, idx.vlen, &first, &size);
		if (rc && rc != KV_ECORRUPT)
			break;
		if (rc || first != next_off || size > KV_SST_BLOCK_MAX || first > r->data_end ||
		    size + KV_SST_TRAILER_SIZE > r->data_end - first) {
			if (!rc)
				rc = KV_CORRUPT(r->name, r->index_off, "index: block %" PRIu64
						" at offset %" PRIu64 " size %" PRIu64 ", expected "
						"offset %" PRIu64, p.blocks, first, size, next_off);
			/* The index is damaged: nothing after here can be found. */
			rc = kv_sst_damage(r, fn, arg, rc, r->index_off, r->size - r->index_off,
					   &p.prev_sep, NULL);
			goto out;
		}
		uint64_t want = size + KV_SST_TRAILER_SIZE;
		if (want < span && first >= single_until)
			want = r->data_end - first < span ? r->data_end - first : span;
		rc = kv_obj_get(r->store, r->name, first, want, &raw, &raw_len);
		if (rc == KV_ECORRUPT && want > size + KV_SST_TRAILER_SIZE) {
			/* The store refused the span's bytes (an encrypted store's
			 * authentication): read it again block by block. */
			single_until = first + want;
			rc = 0;
			continue;
		}
		if (rc == KV_ECORRUPT) {
			rc = kv_sst_damage(r, fn, arg, rc, first, want, &p.prev_sep, &idx.key);
			p.prev.len = 0;
			p.damaged = 1;
			next_off = first + want;
			p.blocks++;
			p.prev_sep.len = 0;
			if (!rc)
				rc = kv_buf_append(&p.prev_sep, idx.key.data, idx.key.len);
			kv_sst_bi_next(&idx);
			continue;
		}
		if (rc)
			break;
		if (read)
			read(arg, raw_len);
		/* Check each whole block of the span. */
		while (idx.valid) {
			uint8_t *dec = NULL;
			size_t dec_len;
			if (kv_sst_block_handle(r, idx.val, idx.vlen, &off, &size) ||
			    off != next_off || size > KV_SST_BLOCK_MAX || off > r->data_end ||
			    size + KV_SST_TRAILER_SIZE > r->data_end - off)
				break;          /* reported at the top of the outer loop */
			if (off + size + KV_SST_TRAILER_SIZE > first + want)
				break;          /* the next span */
			if (off + size + KV_SST_TRAILER_SIZE > first + raw_len)
				rc = KV_CORRUPT(r->name, off, "block at offset %" PRIu64 ": truncated "
						"object", off);
			else
				rc = kv_sst_decode(r->name, off, size, (uint8_t *)raw + (off - first),
						   size + KV_SST_TRAILER_SIZE, &dec, &dec_len, &b);
			if (!rc)
				rc = kv_sst_check_block(r, &idx, &b, &p);
			free(dec);
			if (rc == KV_ECORRUPT) {
				rc = kv_sst_damage(r, fn, arg, rc, off, size + KV_SST_TRAILER_SIZE,
						   &p.prev_sep, &idx.key);
				p.prev.len = 0;
				p.damaged = 1;
			}
			if (rc)
				break;
			next_off = off + size + KV_SST_TRAILER_SIZE;
			p.blocks++;
			p.prev_sep.len = 0;
			if ((rc = kv_buf_append(&p.prev_sep, idx.key.data, idx.key.len)))
				break;
			kv_sst_bi_next(&idx);
		}
		obj_buf_free(raw);
	}
	if (!rc && idx.err)
		rc = kv_sst_damage(r, fn, arg, idx.err, r->index_off, r->size - r->index_off,
				   &p.prev_sep, NULL);
	else if (!rc && (next_off != r->data_end || p.blocks != r->nblocks ||
			 (p.entries != r->entries && !p.damaged)))
		rc = kv_sst_damage(r, fn, arg,
				   KV_CORRUPT(r->name, r->size - KV_SST_FOOTER_SIZE, "footer: %" PRIu64
					      " entries in %" PRIu64 " blocks ending at %" PRIu64
					      ", found %" PRIu64 " in %" PRIu64 " ending at %" PRIu64,
					      r->entries, r->nblocks, r->data_end, p.entries,
					      p.blocks, next_off),
				   r->size - KV_SST_FOOTER_SIZE, KV_SST_FOOTER_SIZE, NULL, NULL);
out:
	kv_buf_free(&idx.key);
	kv_buf_free(&p.prev);
	kv_buf_free(&p.prev_sep);
	return rc;
}

/* kv_sst_verify's damage callback: the first damage ends it. */
static int kv_sst_verify_stop(void *arg, const struct kv_sst_damage *d)
{
	(void)arg;
	return d->err;
}

/*
 * kv_sst_verify - kv_sst_scrub that stops at the first damage (fsck,
 * compaction inputs). Returns 0, KV_ECORRUPT, -ENOMEM or a store error.
 */
int kv_sst_verify(struct kv_sst_reader *r)
{
	return kv_sst_scrub(r, 0, kv_sst_verify_stop, NULL, NULL);
}
