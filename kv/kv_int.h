/*
 * kv_int.h - internals of the kv module, sectioned by defining file.
 * Never included from outside kv/ (and its tests).
 *
 * INTERNAL KEYS
 *   Every entry in a memtable, WAL replay or SST is keyed by an internal
 *   key: the user key bytes followed by an 8-byte big-endian trailer
 *   (seq << 8 | type). Internal keys order by user key ascending (bytewise,
 *   shorter first on a common prefix), then by seq DESCENDING, so the
 *   newest version of a key is met first. kv_ikey_cmp() is the only
 *   comparator. Sequence numbers are < 2^56.
 *
 * ITERATORS
 *   Memtables, SSTs, sorted runs and the merge of them all expose the same
 *   internal iterator (struct kv_iter) over internal keys. Key and value
 *   slices are borrowed until the next call that moves the iterator.
 */
#ifndef SHALE_KV_INT_H
#define SHALE_KV_INT_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kv/kv.h"
#include "objstore/objstore.h"
#include "util/util.h"

/* ---- corruption (kv_corrupt.c) --------------------------------------------
 * KV_CORRUPT(object, offset, fmt, ...): log "<object>: <reason>" with the
 * source file and line, record it as the last corruption and evaluate to
 * KV_ECORRUPT. object NULL = quiet (nothing logged or recorded). offset is
 * where in the object the fault lies, KV_CORRUPT_NO_OFFSET when it is the
 * object as a whole (missing, too short, bad whole-object checksum). */
#define KV_CORRUPT_NO_OFFSET UINT64_MAX
int kv_corrupt_at(const char *file, int line, const char *object, uint64_t offset,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define KV_CORRUPT(object, offset, ...) \
	kv_corrupt_at(__FILE__, __LINE__, object, offset, __VA_ARGS__)
/* The same for the last corruption found by the calling thread. */
void kv_corrupt_mine(struct kv_corrupt_info *out);
/* obj_get of an engine object; -EBADMSG (the store's authentication
 * failed: obj_crypt.c) becomes KV_CORRUPT naming the object. */
int kv_obj_get(struct obj_backend *store, const char *name, uint64_t off, uint64_t len,
	       void **out, size_t *out_len);

/* ---- internal keys (kv_ikey.c) ------------------------------------------ */

enum kv_type {
	KV_TYPE_DELETE = 0,
	KV_TYPE_VALUE = 1,
	KV_TYPE_REF = 2,                  /* only in tables: the value is in a data table
					   * (kv_ref.c); never in a memtable or the WAL */
};
/* Trailer type byte of a seek target: sorts before every type at its seq. */
#define KV_TYPE_SEEK 0xff

#define KV_IKEY_TRAILER 8
#define KV_SEQ_MAX ((UINT64_C(1) << 56) - 1)

static inline uint64_t kv_ikey_pack(uint64_t seq, enum kv_type type)
{
	return seq << 8 | (uint64_t)type;
}
/* Build an internal key into buf (klen + 8 bytes). */
static inline void kv_ikey_make(uint8_t *buf, const void *key, size_t klen, uint64_t seq,
				enum kv_type type)
{
	memcpy(buf, key, klen);
	util_put_be64(buf + klen, kv_ikey_pack(seq, type));
}
static inline uint64_t kv_ikey_seq(const uint8_t *ikey, size_t len)
{
	return util_get_be64(ikey + len - KV_IKEY_TRAILER) >> 8;
}
static inline enum kv_type kv_ikey_type(const uint8_t *ikey, size_t len)
{
	return (enum kv_type)(ikey[len - 1]);
}
/* Bytewise compare of user keys (memcmp, then length). */
int kv_ukey_cmp(const void *a, size_t alen, const void *b, size_t blen);
/* Internal key order described above. Both lengths must be >= 8. */
int kv_ikey_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* LEB128 varints used by the WAL, block and manifest encoders. */
size_t kv_varint_put(uint8_t *p, uint64_t v);         /* returns bytes written (<= 10) */
/* Decode from [p, end); returns bytes read, 0 if truncated/overlong.
 * Inline because block seeks decode three varints per entry they step
 * over (about 80 per point lookup) and nearly all of them are one byte;
 * the general case stays out of line. */
size_t kv_varint_get_slow(const uint8_t *p, const uint8_t *end, uint64_t *v);
static inline size_t kv_varint_get(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	if (p < end && *p < 0x80) {
		*v = *p;
		return 1;
	}
	return kv_varint_get_slow(p, end, v);
}

/* Growable byte buffer for encoders. All appends return 0 or -ENOMEM;
 * after a failure the buffer stays valid (and failed). */
struct kv_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int borrowed;                     /* data is the owner's fixed storage: never
					   * realloc'd or freed; growing copies it out */
};
int kv_buf_reserve(struct kv_buf *b, size_t extra);
int kv_buf_append(struct kv_buf *b, const void *p, size_t n);
int kv_buf_put_varint(struct kv_buf *b, uint64_t v);
int kv_buf_put_be32(struct kv_buf *b, uint32_t v);
int kv_buf_put_be64(struct kv_buf *b, uint64_t v);
void kv_buf_free(struct kv_buf *b);
/* Recycle a finished buffer: malloc'd data of cap bytes becomes *spare
 * (emptied, for the next object of its kind to be built in: a fresh big
 * buffer faults in every page, kv_pool.c) when spare is empty and cap is
 * at most max_cap; otherwise it is freed. Either way data is spare's or
 * gone. */
void kv_buf_keep_spare(struct kv_buf *spare, uint8_t *data, size_t cap, size_t max_cap);

/* ---- iterators (kv_iter.c) ---------------------------------------------- */

struct kv_iter;
struct kv_iter_ops {
	/* Position at the first entry >= the internal key (ikey, len). */
	void (*seek)(struct kv_iter *it, const uint8_t *ikey, size_t len);
	void (*seek_first)(struct kv_iter *it);
	void (*next)(struct kv_iter *it);
	int (*valid)(struct kv_iter *it);
	/* Current internal key / value; borrowed until the iterator moves. */
	void (*key)(struct kv_iter *it, const uint8_t **k, size_t *len);
	void (*value)(struct kv_iter *it, const uint8_t **v, size_t *len);
	/* 0, or the error (-EIO, KV_ECORRUPT, ...) that made it invalid. */
	int (*status)(struct kv_iter *it);
	void (*free)(struct kv_iter *it);
};
struct kv_iter {
	const struct kv_iter_ops *ops;
};

/*
 * kv_merge_iter_create - merge n child iterators (ownership of the
 * children and of the array passes to the merge iterator on success
 * only). Children must be ordered newest first: on equal internal keys
 * (which cannot happen for distinct seqs) the earlier child wins.
 */
int kv_merge_iter_create(struct kv_iter **out, struct kv_iter **children, size_t n);

/*
 * kv_user_iter_create - the user's view of an internal-key iterator.
 * Takes ownership of `inner` on success only (on failure the caller still
 * owns it). Exposes, for each user key in [lo, hi) (NULL/0 = unbounded on
 * that side; lo and hi are copied), only the newest version with
 * seq <= snap, and skips the key entirely when that version is a
 * tombstone. On this iterator key() returns the USER key (no trailer),
 * value() the value, and seek() takes a USER key (clamped to lo).
 * status() is 0, -ENOMEM (a seek key could not be built) or the inner
 * iterator's error. Returns 0 or -ENOMEM.
 */
int kv_user_iter_create(struct kv_iter **out, struct kv_iter *inner, uint64_t snap,
			const void *lo, size_t lolen, const void *hi, size_t hilen);
/* Is the (valid) user iterator's current entry a REF (kv_ref.c), its
 * value() a reference to resolve rather than the value? */
int kv_user_iter_is_ref(struct kv_iter *it);

/* ---- block pool (kv_pool.c) ---------------------------------------------
 * Recycled blocks of one size, at most max_free of them kept when
 * returned. Thread-safe; reference-counted (create gives one reference).
 * kv_pool_get returns a block of kv_pool_block bytes or NULL (no memory). */
struct kv_pool;
struct kv_pool *kv_pool_create(size_t block, size_t max_free);
void kv_pool_ref(struct kv_pool *p);
void kv_pool_unref(struct kv_pool *p);
size_t kv_pool_block(const struct kv_pool *p);
void *kv_pool_get(struct kv_pool *p);
void kv_pool_put(struct kv_pool *p, void *blk);
size_t kv_pool_free_bytes(struct kv_pool *p);

/* ---- memtable (kv_memtable.c) -------------------------------------------
 * An arena-allocated skiplist of internal keys. One writer at a time
 * (the caller serialises adds); any number of concurrent readers and
 * iterators, lock-free. Reference-counted: the engine, every reader and
 * the flusher hold references. */
struct kv_mem;
/* A new, empty memtable with one reference (the caller's). Its arena
 * chunks come from, and go back to, pool (a reference is taken) if that
 * is not NULL. 0 or -ENOMEM. */
int kv_mem_create(struct kv_mem **out, struct kv_pool *pool);
/* A pool of memtable arena chunks that keeps up to `bytes` of them, or
 * NULL (no memory). */
struct kv_pool *kv_mem_pool_create(size_t bytes);
void kv_mem_ref(struct kv_mem *m);
/* Drop a reference; the last one frees the arena (every borrowed pointer
 * into it dies with it). */
void kv_mem_unref(struct kv_mem *m);
/*
 * Add one entry. Callers serialise adds; readers may run concurrently.
 * Returns 0, -ENOMEM (memtable unchanged) or -EINVAL (seq > KV_SEQ_MAX,
 * bad type, key or value longer than KV_KEY_MAX / KV_VALUE_MAX). Adding
 * the same (key, seq) twice is a caller bug; the later add then shadows
 * the earlier one.
 */
int kv_mem_add(struct kv_mem *m, uint64_t seq, enum kv_type type, const void *key,
	       size_t klen, const void *val, size_t vlen);
/*
 * kv_mem_get - newest version of `key` with seq <= snap.
 * Returns 1 found a value (val and vlen borrowed for the life of the
 * memtable reference), 2 found a tombstone, 0 not present.
 */
int kv_mem_get(struct kv_mem *m, const void *key, size_t klen, uint64_t snap,
	       const uint8_t **val, size_t *vlen);
/* Bytes of entries (nodes, keys, values) stored: what the freeze
 * threshold compares. Any thread. */
size_t kv_mem_bytes(const struct kv_mem *m);
/* Arena bytes allocated (whole chunks): what the memtable costs. */
size_t kv_mem_alloc_bytes(const struct kv_mem *m);
uint64_t kv_mem_count(const struct kv_mem *m);    /* entries; any thread */
/* Iterator holding a memtable reference until freed. 0 or -ENOMEM. */
int kv_mem_iter_create(struct kv_iter **out, struct kv_mem *m);
/*
 * kv_mem_check_invariants - walk the whole skiplist and verify level 0 is
 * in non-decreasing internal-key order, each level i > 0 is a sorted
 * subsequence of level i-1, every node on level i is at least i+1 high,
 * and the entry count matches. Returns 1 if all hold, else logs the first
 * violation and returns 0. Not concurrent with kv_mem_add. Debug builds
 * (SHALE_DEBUG) call it as assert(kv_mem_check_invariants(m)) when the
 * last reference drops; tests call it directly.
 */
int kv_mem_check_invariants(struct kv_mem *m);

/* ---- WAL objects (kv_wal.c) ----------------------------------------------
 * Encoding/decoding of one WAL object (the format is described in prose
 * above kv_wal_begin). A WAL object holds whole write batches. The
 * encoders append to a caller-owned kv_buf that holds exactly one object
 * (begin on an empty buffer, append records, finish once); they return 0,
 * -ENOMEM (the buffer keeps its previous contents) or -EINVAL (misuse:
 * non-empty buffer at begin, count 0, entries over KV_BATCH_MAX, a seq
 * range past KV_SEQ_MAX, a buffer that is not an unfinished object). */
struct kv_wal_header {
	uint64_t wal_id;
	uint64_t writer_epoch;
};
/* Start an object: writes the header into the (empty) buf. */
int kv_wal_begin(struct kv_buf *buf, const struct kv_wal_header *h);
/* Append one batch record (the batch's encoded entries, see kv_batch):
 * seqs first_seq .. first_seq + count - 1. The entries are not parsed. */
int kv_wal_append(struct kv_buf *buf, uint64_t first_seq, uint32_t count,
		  const uint8_t *entries, size_t entries_len);
/* Seal: append the object trailer (record count + object checksum). */
int kv_wal_finish(struct kv_buf *buf);
/*
 * kv_wal_decode - verify and walk an object. The whole object (header,
 * every record and its entries, trailer) is verified BEFORE fn is first
 * called, so a corrupt object never replays partially. Then fn is called
 * for every batch record in order; fn returns 0 to go on or an error to
 * stop. h (may be NULL) receives the header. name (may be NULL) is the
 * object name used in the error message. Returns 0, KV_ECORRUPT (after
 * exactly one UTIL_ERROR line naming `name` and the fault) or fn's error.
 * Records in a valid object have count >= 1 and strictly increasing,
 * non-overlapping seq ranges. Entry pointers are borrowed from data.
 */
typedef int (*kv_wal_record_fn)(void *arg, uint64_t first_seq, uint32_t count,
				const uint8_t *entries, size_t entries_len);
int kv_wal_decode(const char *name, const uint8_t *data, size_t len,
		  struct kv_wal_header *h, kv_wal_record_fn fn, void *arg);
/* The valid prefix of a damaged object (header, then records up to the
 * first that fails its checks; the trailer is ignored): fn per good
 * record, *good_end past the last. 0, KV_ECORRUPT (the header is bad:
 * nothing salvaged; no log line) or fn's error. kv_wal.c, SALVAGE. */
int kv_wal_salvage(const uint8_t *data, size_t len, struct kv_wal_header *h,
		   kv_wal_record_fn fn, void *arg, size_t *good_end);
/* Entries of a batch: type u8, key varint-len + bytes, (value varint-len
 * + bytes if type == VALUE). kv_batch_each walks them, checking every
 * length against the end of the buffer and the KV_KEY_MAX/KV_VALUE_MAX
 * limits, and that exactly `count` entries fill exactly `len` bytes.
 * Every entry is checked before fn is first called. Returns 0,
 * KV_ECORRUPT (one UTIL_ERROR line) or fn's error. */
typedef int (*kv_batch_entry_fn)(void *arg, enum kv_type type, const uint8_t *key,
				 size_t klen, const uint8_t *val, size_t vlen);
int kv_batch_each(const uint8_t *entries, size_t len, uint32_t count,
		  kv_batch_entry_fn fn, void *arg);

/* ---- write batches (kv_batch.c) ------------------------------------------
 * The public struct kv_batch: its entries already encoded in exactly the
 * kv_batch_each format, so the engine copies rep.data straight into a WAL
 * record (kv_wal_append(buf, first_seq, b->count, b->rep.data, b->rep.len))
 * and replays it into the memtable with kv_batch_each.
 *
 * Limits (kv_batch_put/delete return -EINVAL beyond them; the WAL decoder
 * treats entries beyond them as corrupt): keys 1..KV_KEY_MAX bytes, values
 * 0..KV_VALUE_MAX bytes. A batch's encoding is capped at KV_BATCH_MAX
 * bytes (-E2BIG), which keeps a WAL record's be32 length in range. */
#define KV_KEY_MAX   ((size_t)65536)
#define KV_VALUE_MAX ((size_t)64 << 20)
#define KV_BATCH_MAX ((size_t)1 << 30)

struct kv_batch {
	struct kv_buf rep;       /* encoded entries */
	uint32_t count;          /* entries in rep */
};

/* ---- SSTs (kv_sst_build.c, kv_sst_read.c, kv_sst_check.c, kv_bloom.c, kv_cache.c) */

/* SSTs are named sst/<ULID>.sst: 128-bit ids, unique without coordination. */
struct kv_sst_id {
	uint8_t b[16];
};
void kv_sst_id_new(struct kv_sst_id *id);
/* "sst/01HF...XYZ.sst" into buf (>= 36 bytes). */
void kv_sst_id_name(const struct kv_sst_id *id, char *buf, size_t size);

/* What the manifest records about an SST. */
/* A data table a table's REF entries point into (kv_ref.c). */
struct kv_dref {
	struct kv_sst_id id;
	uint64_t size;                    /* the data table's object bytes */
	uint64_t bytes;                   /* value bytes this table references in it */
};

struct kv_sst_meta {
	struct kv_sst_id id;
	uint64_t size;                    /* object bytes */
	uint64_t entries;
	uint64_t min_seq, max_seq;
	uint8_t *smallest;                /* smallest internal key (malloc'd) */
	size_t smallest_len;
	uint8_t *largest;                 /* largest internal key (malloc'd) */
	size_t largest_len;
	struct kv_dref *refs;             /* data tables it references, by id (malloc'd) */
	size_t n_refs;
};
void kv_sst_meta_clear(struct kv_sst_meta *m);
int kv_sst_meta_copy(struct kv_sst_meta *dst, const struct kv_sst_meta *src);

/* ---- references into data tables (kv_ref.c) ----------------------------- */

/* A decoded REF value (format in kv_ref.c). */
struct kv_ref {
	struct kv_sst_id id;              /* the data table */
	uint64_t seq;                     /* the value's seq in it */
	uint64_t len;                     /* the value's length */
};
#define KV_REF_MAX (16 + 2 * 10)
/* Encode into buf (KV_REF_MAX bytes); returns the length. */
size_t kv_ref_encode(uint8_t *buf, const struct kv_ref *r);
/* 0, or -EINVAL when v is not a well-formed REF value. */
int kv_ref_decode(const uint8_t *v, size_t vlen, struct kv_ref *out);
/* Add `bytes` referenced in data table id (size bytes) to the set
 * refs[0..*n), kept sorted by id. 0 or -ENOMEM (the set unchanged). */
int kv_dref_add(struct kv_dref **refs, size_t *n, const struct kv_sst_id *id, uint64_t size,
		uint64_t bytes);
const struct kv_dref *kv_dref_lookup(const struct kv_dref *refs, size_t n,
				     const struct kv_sst_id *id);
/* *dst = malloc'd copy of src[0..n) (NULL when n is 0). 0 or -ENOMEM. */
int kv_drefs_copy(struct kv_dref **dst, const struct kv_dref *src, size_t n);

struct kv_sst_options {
	size_t block_size;                /* default 4096 */
	int restart_interval;             /* default 16 */
	int compression_level;            /* zstd level (< 0: zstd's fast levels); 0 = none */
	int bloom_bits_per_key;           /* 0 = default 10; < 0 = no filter */
	/* The object size of a data table the table's REF entries point into
	 * (kv_ref.c), asked at finish for each: 0 and *size, or nonzero
	 * (finish fails with it). NULL: a table without REF entries. */
	int (*ref_size)(void *arg, const struct kv_sst_id *id, uint64_t *size);
	void *ref_arg;
};

/* Format constants shared by the builder and the reader (the format is
 * described in prose above the encoder in kv_sst_build.c). */
#define KV_SST_FOOTER_SIZE 64
#define KV_SST_TRAILER_SIZE 5             /* after every stored block: type + CRC32C */
#define KV_SST_MAGIC UINT64_C(0x5368616c65535354)   /* "ShaleSST" */
#define KV_SST_VERSION 1
#define KV_SST_COMP_NONE 0
#define KV_SST_COMP_ZSTD 1
/* Largest decoded data block either side accepts: a block holds at least
 * one entry, so this also bounds one entry (key + value + overhead). */
#define KV_SST_BLOCK_MAX ((size_t)16 << 20)

struct kv_sst_builder;
int kv_sst_builder_create(struct kv_sst_builder **out, const struct kv_sst_options *opt);
/* Entries must arrive in strictly increasing internal-key order. */
int kv_sst_builder_add(struct kv_sst_builder *b, const uint8_t *ikey, size_t iklen,
		       const void *val, size_t vlen);
size_t kv_sst_builder_size(const struct kv_sst_builder *b);   /* bytes so far (estimate) */
/* Finish: *out is the whole object (caller frees with free()); meta gets
 * sizes, counts and key range (id left to the caller). */
int kv_sst_builder_finish(struct kv_sst_builder *b, uint8_t **out, size_t *out_len,
			  struct kv_sst_meta *meta);
/* Build into spare's storage (an earlier output's, already faulted in)
 * instead of growing a fresh buffer; spare is left empty. Before the first
 * add only. */
void kv_sst_builder_reuse(struct kv_sst_builder *b, struct kv_buf *spare);
/* Data blocks zstd was run on so far (tests: COMPRESSION BACKOFF). */
uint64_t kv_sst_builder_compress_tries(const struct kv_sst_builder *b);
void kv_sst_builder_free(struct kv_sst_builder *b);

/* Block cache: sharded LRU of decoded data blocks, byte-capped. */
struct kv_cache;
struct kv_cache_handle;
/* kv_cache_create (kv_readahead.c): a cache with its read-ahead state,
 * as readers need it. *out is the caller's (kv_cache_free). 0 or -ENOMEM. */
int kv_cache_create(struct kv_cache **out, size_t capacity);
void kv_cache_free(struct kv_cache *c);
/* The cache alone (kv_cache.c), for kv_cache_create / kv_cache_free. */
int kv_cache_new(struct kv_cache **out, size_t capacity);
void kv_cache_delete(struct kv_cache *c);
/* A fresh id for a reader's cache keys. */
uint64_t kv_cache_new_id(struct kv_cache *c);
struct kv_cache_handle *kv_cache_lookup(struct kv_cache *c, uint64_t file, uint64_t off);
/* Insert (taking ownership of data, freed with free()); returns a handle
 * (the caller must release it), or NULL on -ENOMEM (data freed). */
struct kv_cache_handle *kv_cache_insert(struct kv_cache *c, uint64_t file, uint64_t off,
					void *data, size_t len);
const void *kv_cache_data(struct kv_cache_handle *h, size_t *len);
void kv_cache_release(struct kv_cache *c, struct kv_cache_handle *h);
void kv_cache_stats(struct kv_cache *c, uint64_t *hits, uint64_t *misses, uint64_t *bytes);
/* Is (file, off) cached? No pin, no LRU refresh, not counted. */
int kv_cache_contains(struct kv_cache *c, uint64_t file, uint64_t off);
/* The read-ahead planner's engine-wide state (kv_readahead.c), which the
 * cache only carries: kv_cache_create makes it and sets it, kv_cache_free
 * frees it. Borrowed for the cache's life. */
struct kv_ra *kv_cache_ra(const struct kv_cache *c);
void kv_cache_set_ra(struct kv_cache *c, struct kv_ra *ra);
/* Walk every shard and check its bookkeeping (lists, refcounts, byte
 * totals). Returns 0 when consistent, -1 otherwise. Always compiled (tests
 * call it); SHALE_DEBUG builds also assert it after every mutation. */
int kv_cache_check_invariants(struct kv_cache *c);

/* SST reader: footer, index and filter loaded once at open, data blocks
 * fetched by range through the cache. Thread-safe; reference-counted. */
struct kv_sst_reader;
int kv_sst_open(struct kv_sst_reader **out, struct obj_backend *store, struct kv_cache *cache,
		const struct kv_sst_meta *meta);
/* A reader of a table kv_sst_open found corrupt: reads of its keys fail
 * as corrupt, naming it and why (BROKEN TABLES in kv_version.c). */
int kv_sst_open_broken(struct kv_sst_reader **out, const struct kv_sst_meta *meta,
		       const char *why);
/* A reader of a table kv_sst_open found corrupt in its footer, filter or
 * index but whose data blocks are all sound: the table read whole, its
 * blocks found by their checksums and an index built for them in memory
 * (kv_sst_rebuild.c). KV_ECORRUPT (quiet) when that cannot be proved
 * complete, or a store error. why: kv_sst_open's reason (logged). */
int kv_sst_open_rebuilt(struct kv_sst_reader **out, struct obj_backend *store,
			struct kv_cache *cache, const struct kv_sst_meta *meta, const char *why);
/* kv_sst_rebuild.c: the data blocks of limit bytes of a table, found from
 * offset 0 by their checksums, and an index block (decoded form: entries,
 * restarts, count) for them. Stops at the first place no block ends. 0 or
 * -ENOMEM; the caller decides whether the result is the whole table. */
struct kv_sst_rebuilt {
	struct kv_buf index;              /* the index block */
	size_t index_rlen;                /* its entries end here */
	uint64_t blocks, entries;
	uint64_t data_end;                /* the blocks found end here */
	struct kv_buf last;               /* the last key found */
	struct kv_buf restarts, cand;     /* work buffers */
};
int kv_sst_rebuild_index(const uint8_t *data, size_t limit, struct kv_sst_rebuilt *rb);
void kv_sst_rebuilt_free(struct kv_sst_rebuilt *rb);
/* 0 when r is broken and its keys lie outside the user-key range [lo, hi)
 * (NULL: unbounded), else 1. */
int kv_sst_wanted(const struct kv_sst_reader *r, const void *lo, size_t lolen, const void *hi,
		  size_t hilen);
void kv_sst_ref(struct kv_sst_reader *r);
void kv_sst_unref(struct kv_sst_reader *r);
/* Same contract as kv_mem_get, but the value is copied: *val is malloc'd
 * (caller frees) when 1 is returned. Negative errno/KV_ECORRUPT on error. */
int kv_sst_get(struct kv_sst_reader *r, const void *key, size_t klen, uint64_t snap,
	       uint8_t **val, size_t *vlen);
/* Part of a value, for a lookup that wants only some of its bytes
 * (kv_get_part): [off, off + cap) of it, clipped to its end, is copied to
 * buf, and no whole copy is made. */
struct kv_part {
	size_t off, cap;
	uint8_t *buf;
};
/* kv_sst_get with part: when not NULL, 1 copies that part of the value
 * and leaves *val NULL; *vlen is the whole value's length either way.
 * Both return 3 for a REF entry, with its REF value (kv_ref.c) in *val,
 * malloc'd, part or not: the caller resolves it (kv_version_ref_read). */
#define KV_GOT_REF 3
int kv_sst_get_part(struct kv_sst_reader *r, const void *key, size_t klen, uint64_t snap,
		    const struct kv_part *part, uint8_t **val, size_t *vlen);
/* Copy part (not NULL) of the value v (vlen bytes). */
void kv_part_copy(const struct kv_part *part, const uint8_t *v, size_t vlen);
int kv_sst_iter_create(struct kv_iter **out, struct kv_sst_reader *r);
/* background: a compaction input, whose read-ahead spans are not counted
 * as foreground reads (kv_ra_span). */
int kv_sst_iter_create_ext(struct kv_iter **out, struct kv_sst_reader *r, int background);
/* Verify every block (kv_sst_scrub that stops at the first damage). */
int kv_sst_verify(struct kv_sst_reader *r);
/* A damaged stretch of an SST (kv_sst_scrub): bytes [off, off + len),
 * which held the user keys in (lo, hi] (lo NULL: from the table's first
 * key; hi NULL: to its last). Borrowed for the callback. */
struct kv_sst_damage {
	const char *name;
	int err;                          /* KV_ECORRUPT */
	uint64_t off, len;
	const uint8_t *lo, *hi;
	size_t lo_len, hi_len;
};
typedef int (*kv_sst_damage_fn)(void *arg, const struct kv_sst_damage *d);
int kv_sst_scrub(struct kv_sst_reader *r, size_t span, kv_sst_damage_fn fn,
		 void (*read)(void *arg, uint64_t n), void *arg);
/* Entries the footer records. */
uint64_t kv_sst_entries(const struct kv_sst_reader *r);
/* Decode-only checks over an in-memory SST (fuzzing; kv_sst_check.c). */
int kv_sst_check_buffer(const uint8_t *data, size_t len);

/* Bloom filter over user keys. */
int kv_bloom_build(struct kv_buf *out, const uint32_t *hashes, size_t n, int bits_per_key);
int kv_bloom_may_contain(const uint8_t *filter, size_t len, uint32_t hash);
uint32_t kv_bloom_hash(const void *key, size_t len);

/* ---- SST blocks (kv_sst_block.c) -------------------------------------------
 * A stored block checked and decoded, a decoded block parsed and iterated.
 * Every decode error is KV_CORRUPT (kv_corrupt.c) naming the object and
 * the place; a NULL name makes a decoder quiet (a block read
 * ahead that nobody has asked for yet: its error is reported when someone
 * does). */
/* Builds with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION defined (the
 * libFuzzer build) ignore CRC mismatches, so mutated inputs reach the
 * structural decoders instead of all stopping at the checksum. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define KV_SST_CRC_OK(stored, computed) ((void)(stored), (void)(computed), 1)
#else
#define KV_SST_CRC_OK(stored, computed) ((stored) == (computed))
#endif

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

/* The header of the block entry at q: its shared, unshared (key suffix)
 * and value lengths. Returns where the key suffix starts, or NULL when a
 * varint does not decode or the suffix would pass end. Inline: block
 * seeks decode one per entry they step over. */
static inline const uint8_t *kv_sst_entry_head(const uint8_t *q, const uint8_t *end,
					       uint64_t *shared, uint64_t *unshared,
					       uint64_t *vlen)
{
	size_t n;
	if (!(n = kv_varint_get(q, end, shared)))
		return NULL;
	q += n;
	if (!(n = kv_varint_get(q, end, unshared)))
		return NULL;
	q += n;
	if (!(n = kv_varint_get(q, end, vlen)))
		return NULL;
	q += n;
	return *unshared > (size_t)(end - q) ? NULL : q;
}
/* Check the trailer of a stored block (p, n bytes with the trailer):
 * *body_len and *type get the payload length and its compression. */
int kv_sst_check_stored(const char *name, uint64_t off, const uint8_t *p, size_t n,
			size_t *body_len, uint8_t *type);
/* Check a decoded block's restart array framing; *blk points into data. */
int kv_sst_block_parse(const char *name, uint64_t off, const uint8_t *data, size_t len,
		       struct kv_sst_block *blk);
/* Check, decode and parse the stored block at off (index size `size`)
 * from the raw bytes read for it (p, n): *dec (*dec_len bytes, the
 * caller's, free()) holds the block blk points into. */
int kv_sst_decode(const char *name, uint64_t off, uint64_t size, const uint8_t *p,
		  size_t n, uint8_t **dec, size_t *dec_len, struct kv_sst_block *blk);
/* The same, then insert it into cache under (id, off): *h pinned, the
 * caller's (kv_cache_release). 0, KV_ECORRUPT or -ENOMEM. */
int kv_sst_block_cache(struct kv_cache *cache, uint64_t id, const char *name, uint64_t off,
		       uint64_t size, const uint8_t *p, size_t n, struct kv_cache_handle **h,
		       struct kv_sst_block *blk);
/* Block iterator. init before first use (the biter must not move after
 * it: key may point into it), set on a block, then seek or step. Errors
 * are sticky in it->err (and make it invalid). */
void kv_sst_bi_init(struct kv_sst_biter *it, const char *name);
void kv_sst_bi_set(struct kv_sst_biter *it, const struct kv_sst_block *b);
void kv_sst_bi_seek_first(struct kv_sst_biter *it);
void kv_sst_bi_next(struct kv_sst_biter *it);
/* First entry >= target; seek_in knows the last restart point whose key
 * is < target lies in [lo, hi]. */
void kv_sst_bi_seek(struct kv_sst_biter *it, const uint8_t *target, size_t tlen);
void kv_sst_bi_seek_in(struct kv_sst_biter *it, const uint8_t *target, size_t tlen,
		       uint32_t lo, uint32_t hi);
/* Offset, and whole key read in place, of restart point i (checked). */
int kv_sst_bi_restart(struct kv_sst_biter *it, uint32_t i, size_t *off);
int kv_sst_bi_restart_key(struct kv_sst_biter *it, uint32_t i, const uint8_t **k,
			  size_t *klen);
/* Check the restart array against the entries (kv_sst_verify). */
int kv_sst_verify_restarts(struct kv_sst_biter *it);

/* ---- read-ahead (kv_readahead.c) --------------------------------------------
 * The SST read-ahead planner (DESIGN at the top of kv_readahead.c): a
 * block-cache miss that continues a stream of sequential misses, or a
 * guess, fetches a span of the blocks after it in one GET; a stream keeps
 * its next span in flight on the fill threads (prefetch).
 *
 * Engine-wide part: the span budget, the counters kv_stats reports and
 * the fill threads. Every reader of an engine shares its block cache
 * (kv_sst_open is given only that), so this state hangs off the cache
 * (kv_cache_ra) and these functions take the cache. All thread-safe. */
struct kv_ra;
/* The largest span worth fetching into c (capacity / 8). */
size_t kv_ra_span_max(const struct kv_cache *c);
/* Span bytes in flight are capped at capacity / 4: reserve returns 1
 * (granted; give them back with release) or 0 (fetch one block). */
int kv_ra_reserve(struct kv_cache *c, size_t bytes);
void kv_ra_release(struct kv_cache *c, size_t bytes);
/* 1 when entries, spans in flight and `bytes` more fit in 7/8 of the
 * capacity (a guessed span may be fetched). */
int kv_ra_room(struct kv_cache *c, size_t bytes);
/* No guessed spans from this cache's readers (tests of the streams). */
void kv_ra_no_guesses(struct kv_cache *c);
/* Tables of at most `bytes` read at random are fetched whole into the
 * store's disk cache (WARM in kv_readahead.c); 0 = never (the default). */
void kv_ra_set_warm(struct kv_cache *c, uint64_t bytes);
struct kv_ra_stats {
	uint64_t spans;                   /* GETs of several blocks (prefetches included) */
	uint64_t blocks;                  /* blocks they cached that nobody had asked for yet */
	uint64_t waits;                   /* misses that waited for a span in flight */
	uint64_t fg_spans;                /* spans not fetched for compaction inputs */
	uint64_t guesses;                 /* guessed spans fetched (GUESSES) */
	uint64_t warm_bytes;              /* bytes fetched for the disk cache only (WARM) */
};
void kv_ra_count(struct kv_cache *c, uint64_t spans, uint64_t blocks, uint64_t waits);
/* What a span was fetched for: a compaction input's stream, a foreground
 * sequential read (a kv_get or user iterator stream: the compactor waits
 * while they come, READS FIRST in kv_compact.c), or a guess. */
enum kv_ra_kind { KV_RA_BACKGROUND, KV_RA_SEQUENTIAL, KV_RA_GUESS };
/* Count one span fetched (spans, plus fg_spans or guesses by kind). */
void kv_ra_span(struct kv_cache *c, enum kv_ra_kind kind);
void kv_ra_stats(struct kv_cache *c, struct kv_ra_stats *st);
/* Fill threads: run prefetch jobs in the background. kv_open starts
 * them; kv_close and kv_cache_free stop them. submit: 0 (exactly one of
 * run(arg) / cancel(arg) will be called) or -EBUSY (neither; the caller
 * keeps arg). */
int kv_ra_fill_start(struct kv_cache *c);
void kv_ra_fill_stop(struct kv_cache *c);
int kv_ra_fill_running(struct kv_cache *c);
int kv_ra_fill_submit(struct kv_cache *c, void (*run)(void *), void (*cancel)(void *),
		      void *arg);

/*
 * Per-table part: a struct kv_ra_table embedded in each SST reader, and a
 * struct kv_ra_stream per iterator. The reader calls kv_ra_miss on a
 * cache miss, kv_ra_hit on an iterator's hit, and kv_ra_marked after
 * every block it served.
 */
#define KV_RA_STREAMS 4                   /* point-lookup streams per table */
#define KV_RA_SLOTS 8                     /* spans in flight per table */
#define KV_RA_DEPTH 4                     /* spans a stream keeps queued ahead (PREFETCH) */
#define KV_RA_FILL_THREADS 8              /* GETs of prefetched spans at once (FILL THREADS) */
#define KV_RA_FILL_QUEUE 16               /* jobs that may wait for a fill thread */

/* One sequential stream of misses. Fields are protected by the table's mu
 * for its shared streams, owned by the iterator's thread for its own;
 * mark is also read without the lock. */
struct kv_ra_stream {
	uint64_t next;                    /* where its next miss is expected; UINT64_MAX = unused */
	uint64_t lo;                      /* where its last span asked for started: a miss in
					   * [lo, next) is a straggler */
	size_t next_p;                    /* index entry of the block at next; SIZE_MAX = unknown */
	uint64_t win;                     /* bytes of its last span; 0 = none yet */
	_Atomic uint64_t mark;            /* reading the block here prefetches more;
					   * UINT64_MAX = no prefetch pending */
	uint64_t ahead[KV_RA_DEPTH];      /* first blocks of the spans queued ahead of the
					   * reader, oldest first; mark is ahead[0] */
	unsigned nahead;
	int loose;                        /* started by a miss in no stream, not yet seen
					   * to continue (WARM: kv_ra_loose_end) */
	int guessed;                      /* its last span was a guess, not yet confirmed
					   * (kv_ra_guess_score) */
	int background;                   /* a compaction input's: its spans are not
					   * foreground reads (kv_ra_span) */
};

/* A span being fetched; hi == 0 = free slot. */
struct kv_ra_slot {
	uint64_t lo, hi;                  /* stored bytes [lo, hi) */
	uint64_t id;                      /* tells a reused slot from the awaited span */
};

/* The table as its reader opened it: what the planner reads of it. The
 * planner pins its reader through ref / unref (kv_sst_ref, kv_sst_unref),
 * so kv_readahead.c never calls into kv_sst_read.c, which calls it. */
struct kv_ra_src {
	struct kv_sst_reader *r;          /* the owner; a prefetch holds a reference on it */
	void (*ref)(struct kv_sst_reader *r);
	void (*unref)(struct kv_sst_reader *r);   /* may free r */
	struct obj_backend *store;
	const char *name;                 /* "sst/<ULID>.sst" */
	struct kv_cache *cache;           /* not NULL */
	uint64_t cache_id;
	const uint8_t *index;             /* the decoded index block ... */
	size_t index_rlen;                /* ... whose entries end here */
	uint64_t data_end;                /* data blocks live in [0, data_end) */
};

struct kv_ra_table {
	struct kv_ra_src src;             /* immutable */
	pthread_mutex_t mu;               /* never held across I/O; taken before the cache's locks */
	pthread_cond_t cv;                /* broadcast when a span in flight completes */
	struct kv_ra_stream ra[KV_RA_STREAMS];   /* point lookups; protected by mu */
	unsigned victim;                  /* stream replaced next; protected by mu */
	uint64_t guess;                   /* bytes a guess fetches now, 0 = none
					   * (GUESSES); protected by mu */
	unsigned loose_misses;            /* misses in no stream whose stream did not
					   * continue (WARM); mu */
	uint64_t warm_next;               /* WARM: first byte not yet asked for; mu */
	unsigned warm_out;                /* WARM: GETs queued or running; mu */
	struct kv_ra_slot slots[KV_RA_SLOTS];    /* protected by mu */
	uint64_t ids;                     /* last slot id; protected by mu */
};

void kv_ra_table_init(struct kv_ra_table *t, const struct kv_ra_src *src);
void kv_ra_table_destroy(struct kv_ra_table *t);
void kv_ra_stream_init(struct kv_ra_stream *s, int background);
/* kv_ra_miss's answers besides 0 / an error (see there). */
#define KV_RA_ALONE 1                     /* fetch the block alone */
#define KV_RA_WAITED 2                    /* look in the cache again */
int kv_ra_miss(struct kv_ra_table *t, struct kv_ra_stream *own, uint64_t off, uint64_t size,
	       size_t p, size_t next_p, struct kv_cache_handle **h, struct kv_sst_block *blk);
void kv_ra_hit(struct kv_ra_stream *own, uint64_t end, size_t next_p);
void kv_ra_marked(struct kv_ra_table *t, struct kv_ra_stream *own, uint64_t off);

/* ---- manifest (kv_manifest.c) --------------------------------------------
 * The format is described in prose above kv_manifest_encode's file. */
#define KV_CKPT_NAME_MAX 255

struct kv_run {
	uint64_t run_id;
	struct kv_sst_meta *ssts;         /* sorted by key, non-overlapping */
	size_t n;
};

struct kv_checkpoint {
	char *name;
	uint64_t manifest_id;             /* the manifest whose SSTs it pins */
	uint64_t wal_id;                  /* replay (manifest's replay_after, wal_id] */
	uint64_t created_ns;
	uint64_t expire_ns;               /* wall clock; 0 = never */
};

struct kv_manifest {
	uint64_t id;
	uint64_t writer_epoch;
	uint64_t compactor_epoch;
	uint64_t wal_replay_after;
	uint64_t last_seq;
	uint64_t next_run_id;
	uint64_t created_ns;
	struct kv_sst_meta *l0;           /* newest first */
	size_t n_l0;
	struct kv_run *runs;              /* newest first */
	size_t n_runs;
	struct kv_checkpoint *ckpts;
	size_t n_ckpt;
};

/* Every object the tables of m need: each table, then each data table it
 * references (kv_ref.c; a data table comes once per table referencing
 * it). Stops at, and returns, the first nonzero return of fn. */
typedef int (*kv_sst_id_fn)(void *arg, const struct kv_sst_id *id);
int kv_manifest_each_sst(const struct kv_manifest *m, kv_sst_id_fn fn, void *arg);

/* "manifest/000...42" / "wal/000...42" into buf (>= 48 bytes). */
void kv_manifest_name(uint64_t id, char *buf, size_t size);
void kv_wal_name(uint64_t id, char *buf, size_t size);
/* Parse the 20-digit id after prefix; -EINVAL if name is not of that form. */
int kv_name_id(const char *name, const char *prefix, uint64_t *id);

void kv_manifest_free(struct kv_manifest *m);
/* Deep copy; *out is the caller's (kv_manifest_free). 0 or -ENOMEM. */
int kv_manifest_copy(struct kv_manifest **out, const struct kv_manifest *src);
int kv_manifest_encode(const struct kv_manifest *m, struct kv_buf *b);
/* Returns 0, KV_ECORRUPT (logged with `name`) or -ENOMEM. */
int kv_manifest_decode(const char *name, const uint8_t *data, size_t len,
		       struct kv_manifest **out);
/* Highest manifest id in the store (0 = none), given that manifest `after`
 * exists (0 = nothing known): only newer names are listed. */
int kv_manifest_latest_id(struct obj_backend *store, uint64_t after, uint64_t *id);
int kv_manifest_load(struct obj_backend *store, uint64_t id, struct kv_manifest **out);
/* Latest manifest; -ENOENT when the store has none. */
int kv_manifest_load_latest(struct obj_backend *store, struct kv_manifest **out);
/* The same, when manifest `after` is known to have existed (a hint that
 * saves listing old ones; a GC'd hint falls back to a full listing). */
int kv_manifest_load_latest_after(struct obj_backend *store, uint64_t after,
				  struct kv_manifest **out);
/* Write m as manifest `id` (sets m->id, m->created_ns) with put_if_absent:
 * 0, -EEXIST (someone else moved first: reload and retry), or an error. */
int kv_manifest_store(struct obj_backend *store, struct kv_manifest *m, uint64_t id);
const struct kv_checkpoint *kv_manifest_find_ckpt(const struct kv_manifest *m, const char *name);

/* ---- versions (kv_version.c) ---------------------------------------------
 * A version is the set of open SST readers for one manifest: what reads
 * consult below the memtables. Immutable once built; reference-counted so
 * readers and iterators keep using the SSTs they started with while a
 * flush or compaction installs a new version. */
struct kv_vrun {
	struct kv_sst_reader **r;         /* parallel to man->runs[i].ssts */
	size_t n;
};
/* A data table of a version: its reader, or NULL with why it has none. */
struct kv_vdata {
	struct kv_sst_id id;
	uint64_t size;
	uint64_t live;                    /* value bytes the version's tables reference */
	struct kv_sst_reader *r;
	int err;                          /* KV_ECORRUPT or -ENOENT when r is NULL */
};

struct kv_version {
	atomic_int refs;
	struct kv_manifest *man;          /* owned */
	struct kv_sst_reader **l0;        /* parallel to man->l0 (newest first) */
	struct kv_vrun *runs;             /* parallel to man->runs */
	struct kv_vdata *data;            /* data tables the tables reference, by id */
	size_t n_data;
	struct kv_vreg *reg;              /* registered here while alive; may be NULL */
	struct kv_version *rprev, *rnext; /* protected by reg->mu */
};

/*
 * Every version alive in a process, so GC keeps the tables of old versions
 * that iterators and snapshots still read: gc_min_age alone protects them
 * only for that long (a scan slower than that, or one under valgrind, read
 * a table GC had deleted). Lock order: reg->mu is taken alone or inside
 * db->mu, never the other way round.
 */
struct kv_vreg {
	pthread_mutex_t mu;
	struct kv_version *head;
};
/* Call fn for every live version's manifest (reg->mu held meanwhile;
 * fn must not take db->mu). Stops at the first nonzero return. */
int kv_vreg_each(struct kv_vreg *reg, int (*fn)(void *arg, const struct kv_manifest *m),
		 void *arg);
/*
 * Build a version for `man` (ownership of man passes to the version on
 * success only), reusing readers of `prev` (may be NULL) for SSTs both
 * share and opening the others. `extra` (may be NULL) is a reader already
 * open for the SST `extra_id` (a flush's output).
 */
int kv_version_build(struct kv_version **out, struct kv_manifest *man,
		     const struct kv_version *prev, struct kv_sst_reader *extra,
		     const struct kv_sst_id *extra_id, struct obj_backend *store,
		     struct kv_cache *cache, struct kv_vreg *reg);
void kv_version_ref(struct kv_version *v);
void kv_version_unref(struct kv_version *v);
/* Point lookup below the memtables: same contract as kv_sst_get_part,
 * except that a table the store cannot find is KV_ECORRUPT, never -ENOENT. */
int kv_version_get(struct kv_version *v, const void *key, size_t klen, uint64_t snap,
		   const struct kv_part *part, uint8_t **val, size_t *vlen);
/* The value a REF entry (value refv, refl bytes) of user key `key` stands
 * for, from its data table: 1 with *val malloc'd (or part copied), or
 * KV_ECORRUPT naming the data table (missing, damaged, or without the
 * entry), -ENOMEM, a store error. `from` names the table holding the REF,
 * for messages (may be NULL). */
int kv_version_ref_read(struct kv_version *v, const char *from, const void *key, size_t klen,
			const uint8_t *refv, size_t refl, const struct kv_part *part,
			uint8_t **val, size_t *vlen);
/* kv_sst_options.ref_size for tables whose REFs point into data tables of
 * version arg: -EINVAL for one it does not have. */
int kv_version_ref_size(void *arg, const struct kv_sst_id *id, uint64_t *size);
/* The data table id of version v, or NULL. */
const struct kv_vdata *kv_version_data_find(const struct kv_version *v,
					    const struct kv_sst_id *id);
/* Append one internal iterator per SST (L0 newest first, then runs) to
 * its[*n...]; its must have room for kv_version_sst_count(v). */
/* Append an iterator per table of v to its[*n..]; a broken table only
 * when its keys overlap the user-key range [lo, hi) (NULL: unbounded). */
int kv_version_iters(struct kv_version *v, const void *lo, size_t lolen, const void *hi,
		     size_t hilen, struct kv_iter **its, size_t *n);
size_t kv_version_sst_count(const struct kv_version *v);

/* ---- the engine (kv_db.c and the files its threads and helpers live in) ---
 *
 * LOCKING
 *   db->mu protects every field marked so. It is never held across store
 *   I/O: threads copy and pin what they need (memtable and version
 *   references) under mu, work unlocked, and reacquire mu to publish.
 *
 * SEQUENCES
 *   last_seq     highest seq assigned; every batch up to it is in a memtable
 *   durable_seq  every seq up to it is durable: in a WAL object the store
 *                acknowledged, or in an SST a committed manifest holds (a
 *                flush commit raises it to the flushed memtable's max_seq:
 *                flushes go oldest first, so everything below is in SSTs)
 *   man.last_seq highest seq folded into SSTs
 *   durable_seq <= last_seq; what survives a crash is a prefix of the
 *   write order containing at least every batch up to durable_seq.
 *
 * UNLOGGED BATCHES (kv_write_unlogged)
 *   go into the memtable only; its flush makes them durable. To keep the
 *   prefix rule, no WAL object holding a seq above the lowest unlogged seq
 *   not yet in a committed SST (kv_unlogged_first) is uploaded before that
 *   flush commits: the WAL writer holds it, and freezes the memtable that
 *   holds the unlogged batch at once instead of waiting for it to fill.
 *   It also freezes such a memtable when kv_sync waits or the first
 *   unlogged batch in it is flush_interval_ms old, so unlogged data keeps
 *   the durability promise of logged data.
 */

/* idle_compact_ms's default; also the READS FIRST window when idle merges
 * are off (kv_compact.c). */
#define KV_DFLT_IDLE_COMPACT_MS 2000

enum kv_state {
	KV_STATE_OK = 0,
	KV_STATE_FENCED = 1,              /* a newer writer took over: read-only */
	KV_STATE_ERROR = 2,               /* internal failure, or close gave up storing */
};

/* Health of one background activity, shown in stats. */
struct kv_health {
	uint64_t runs;                    /* successful completions */
	uint64_t failures;                /* failed attempts (each retried) */
	uint64_t consecutive_failures;
	uint64_t last_success_ns;         /* wall clock, 0 = never */
	int last_error;
};
void kv_health_ok(struct kv_health *h);
void kv_health_fail(struct kv_health *h, int err);

#define KV_MAX_IMM 16

/* A frozen memtable's table, built and not yet uploaded (kv_flush_build.c). */
struct kv_built {
	uint8_t *sst;                     /* the object's bytes (malloc'd) */
	size_t len;
	struct kv_sst_meta meta;          /* without id and size: named at upload */
	uint64_t dropped;                 /* versions no one could read */
	/* The data table its REF entries point into (kv_ref.c), or none
	 * (data NULL). Named at build: the REFs name it. */
	uint8_t *data;
	size_t data_len;
	struct kv_sst_id data_id;
	uint64_t data_values;             /* values moved into it */
};

enum kv_build_state {
	KV_BUILD_NONE = 0,                /* not being built ahead (maybe built) */
	KV_BUILD_RUNNING,                 /* the prebuilder is building it */
	KV_BUILD_SKIP,                    /* a prebuild failed: the flusher builds it */
};

struct kv_imm {
	struct kv_mem *mem;
	uint64_t max_seq;                 /* highest seq in it */
	uint64_t first_unlogged;          /* lowest unlogged seq in it, 0 = none */
	enum kv_build_state build;
	struct kv_built *built;           /* built ahead by the prebuilder, or NULL */
};

struct kv_wal_done {
	uint64_t id;
	uint64_t last_seq;                /* highest seq in that WAL object */
};

struct kv_snapshot {
	uint64_t seq;
	struct kv_snapshot *prev, *next;  /* protected by db->mu */
};
/* kv_snapshot.c: the live snapshots' seqs, ascending (mu held); *out is NULL (and *n 0)
 * when there are none. Any snapshot taken later sees only the newest
 * version of each key, so these are all a flush or a compaction must keep
 * older versions for. */
struct kv_db;
int kv_snapshot_seqs(struct kv_db *db, uint64_t **out, size_t *n);
/* Whether some seqs[i] has lo <= seqs[i] < hi: a snapshot that sees the
 * version at lo, which the newer version at hi hides from the others. */
int kv_snapshot_sees(const uint64_t *seqs, size_t n, uint64_t lo, uint64_t hi);

/*
 * db->mu is a struct kv_mutex: a pthread mutex that, in builds with
 * assertions (!NDEBUG, the sanitizer build among them), records the
 * thread holding it, so a function documented "(mu held)" checks that on
 * entry with KV_MU_HELD(db). The record is written only by the holder,
 * under the mutex, so reading it from the holder needs no other lock.
 * Every lock, unlock and condition wait on db->mu goes through these
 * wrappers: a bare pthread call on the inner mutex would leave the record
 * wrong.
 */
struct kv_mutex {
	pthread_mutex_t m;
#ifndef NDEBUG
	pthread_t owner;                  /* valid while held; protected by m */
	int held;                         /* protected by m */
#endif
};

static inline void kv_mutex_init(struct kv_mutex *mu)
{
	CHECK_RETURN(pthread_mutex_init(&mu->m, NULL));
#ifndef NDEBUG
	mu->held = 0;
#endif
}

static inline void kv_mutex_destroy(struct kv_mutex *mu)
{
	pthread_mutex_destroy(&mu->m);
}

/* Whether the calling thread holds mu (always 1 without assertions). */
static inline int kv_mutex_held(const struct kv_mutex *mu)
{
#ifndef NDEBUG
	return mu->held && pthread_equal(mu->owner, pthread_self());
#else
	(void)mu;
	return 1;
#endif
}

/* Record the calling thread as the holder (m just acquired). */
static inline void kv_mutex_took(struct kv_mutex *mu)
{
#ifndef NDEBUG
	assert(!mu->held);
	mu->owner = pthread_self();
	mu->held = 1;
#else
	(void)mu;
#endif
}

/* Clear the record before m is released (the caller must hold it). */
static inline void kv_mutex_leaving(struct kv_mutex *mu)
{
#ifndef NDEBUG
	assert(kv_mutex_held(mu));
	mu->held = 0;
#else
	(void)mu;
#endif
}

static inline void kv_mutex_lock(struct kv_mutex *mu)
{
	CHECK_RETURN(pthread_mutex_lock(&mu->m));
	kv_mutex_took(mu);
}

static inline void kv_mutex_unlock(struct kv_mutex *mu)
{
	kv_mutex_leaving(mu);
	CHECK_RETURN(pthread_mutex_unlock(&mu->m));
}

/* pthread_cond_wait on mu (held), which the wait releases and retakes. */
static inline void kv_cond_wait(pthread_cond_t *cv, struct kv_mutex *mu)
{
	kv_mutex_leaving(mu);
	CHECK_RETURN(pthread_cond_wait(cv, &mu->m));
	kv_mutex_took(mu);
}

/* pthread_cond_timedwait on mu (held): 0, or its ETIMEDOUT. */
static inline int kv_cond_timedwait(pthread_cond_t *cv, struct kv_mutex *mu,
				    const struct timespec *abstime)
{
	kv_mutex_leaving(mu);
	int rc = pthread_cond_timedwait(cv, &mu->m, abstime);
	kv_mutex_took(mu);
	return rc;
}

/* On entry to a function documented "(mu held)". */
#define KV_MU_HELD(db) assert(kv_mutex_held(&(db)->mu))

struct kv_db {
	struct obj_backend *store;        /* borrowed; immutable */
	struct kv_config conf;            /* defaults filled in; immutable */
	struct kv_cache *cache;           /* thread-safe on its own */
	int readonly;                     /* immutable */

	struct kv_mutex mu;               /* kv_mutex_lock / kv_mutex_unlock */
	pthread_cond_t cv_wal;            /* wakes the WAL writer */
	pthread_cond_t cv_flush;          /* wakes the memtable flusher */
	pthread_cond_t cv_state;          /* durable_seq, imm, version or state changed */

	/* protected by mu: */
	int shutdown;                     /* 1 = close: drain and exit; 2 = abandon */
	uint64_t shutdown_ns;             /* monotonic, when close began */
	enum kv_state state;
	int state_err;                    /* cause of ERROR */
	struct kv_mem *mem;
	struct kv_pool *mem_pool;         /* arena chunks of dropped memtables; immutable
					   * pointer, thread-safe itself */
	struct kv_imm imm[KV_MAX_IMM];    /* frozen, oldest first */
	size_t n_imm;
	struct kv_version *ver;
	uint64_t last_seq;
	uint64_t durable_seq;
	uint64_t mem_first_unlogged;      /* lowest unlogged seq in mem, 0 = none */
	uint64_t unlogged_since_ns;       /* when mem got its first unlogged batch */
	int flusher_exited;               /* kv_flush_main returned (close) */
	uint64_t writer_epoch;
	struct kv_lease_info lease;       /* ours while lease.gen != 0 (open/close only) */
	char reader_obj[64];              /* our readers/ object; "" none (open/close only) */
	atomic_int ckpt_deleted;          /* checkpoint mode: our checkpoint is gone */
	_Atomic uint64_t ckpt_checked_ns; /* when a failed read last looked for it */
	struct kv_snapshot snaps;         /* list head of live snapshots */

	/* WAL writer state, protected by mu: */
	struct kv_buf wal_open;           /* the object being filled (unsealed) */
	struct kv_buf wal_spare;          /* an uploaded object's buffer, for the next
					   * (a fresh one faults in every page) */
#define KV_FLUSH_SPARES 2
	struct kv_buf flush_spare[KV_FLUSH_SPARES]; /* flushed SSTs' buffers, for the
					   * next builds (kv_flush_build.c) */
	uint64_t wal_open_last_seq;
	uint64_t wal_open_since_ns;       /* when its first record arrived */
	uint64_t wal_next_id;             /* id of wal_open */
	size_t wal_inflight;              /* bytes being uploaded */
	size_t sync_waiters;
	struct kv_wal_done *wal_done;     /* uploaded objects above replay_after */
	size_t n_wal_done, cap_wal_done;
	uint64_t wal_since_freeze;        /* WAL objects since the last freeze */

	/* counters, protected by mu: */
	struct kv_health wal_health, flush_health;
	uint64_t wal_objects, wal_bytes, l0_flushes, l0_bytes, write_stalls, manifest_writes;
	uint64_t l0_dropped;              /* hidden versions flushes left out */
	uint64_t data_tables, data_bytes; /* data tables flushes wrote (kv_ref.c) */
	uint64_t data_rewritten;          /* value bytes compactions copied (REWRITING) */
	uint64_t data_tables_rewritten;   /* data tables they wrote for them */
	uint64_t l0_prebuilt;             /* flushes whose table was built ahead */
	uint64_t unlogged_batches, unlogged_bytes, wal_holds;
	uint64_t stall_ns;
	unsigned writers_waiting;         /* in kv_write's stall loop now (READS FIRST) */
	/* A failing store (kv_health.c, STORE FAILURES), protected by mu: */
	int store_err;                    /* last failed durable write's error; 0 = healthy */
	uint64_t store_err_since_ns;      /* wall clock of the first failure in a row */
	uint64_t store_fail_gen;          /* failures so far: a waiter sees a new one */
	uint64_t store_fail_logged_ns;    /* monotonic: last "still failing" line */
	uint64_t store_fail_run;          /* failures in the current run */
	int retry_now;                    /* a sync waits: cut the current backoff short */
	size_t full_overdraft;            /* bytes of deletes let in while full, and of */
	size_t full_trickle;              /* other writes (kv_db.c, ROOM TO DELETE) ... */
	int full_deletes;                 /* ... and whether a delete came: all 0 again
					   * once the store takes writes (the trickle once
					   * the reserve is made again) */
	/* Room to recover (kv_reclaim.c), protected by mu: */
	int reserve_state;                /* KV_RESERVE_* */
	uint64_t reserve_releases;
	uint64_t reserve_retry_ns;        /* RELEASED: wait before the next PUT; 0 = first */
	uint64_t reclaim_seen_seq, reclaim_seen_manifest;  /* what the last pass saw */
	uint64_t reclaim_passes, reclaim_tables, reclaim_bytes;
	unsigned compact_space_fails;     /* jobs failed for space in a row (kv_compact.c,
					   * SHORT OF ROOM), at most 5 */

	/* compactor and GC, protected by mu: */
	pthread_cond_t cv_compact;        /* wakes the compactor */
	pthread_cond_t cv_gc;             /* wakes GC (kv_gc_kick, close) */
	int gc_kick;                      /* GC has something to look at (kv_gc.c, SCHEDULE) */
	uint64_t gc_due_ms;               /* wall ms a known deletion falls due; UINT64_MAX none */
	uint64_t gc_passes;
	struct kv_vreg vreg;              /* live versions (GC keeps their tables) */
	int compactor_running;
	uint64_t compactor_epoch;
	size_t idle_l0_n;                 /* L0 and last_seq as the compactor last saw them ... */
	uint64_t idle_seq;
	struct kv_sst_id idle_l0_newest;
	uint64_t idle_l0_since_ns;        /* ... and since when (kv_compact_idle) */
	uint64_t rf_seq, rf_spans;        /* last_seq, read-ahead spans as last seen ... */
	uint64_t rf_write_ns, rf_read_ns; /* ... and when they last changed (READS FIRST) */
	uint64_t bulk_full_ns;            /* when a write last filled the memtable (BULK LOADS) */
	int bulk_holding;                 /* jobs wait for a bulk load now ... */
	uint64_t bulk_holds;              /* ... and how many times they began to */
	struct kv_sst_id *quarantine;     /* corrupt tables never compacted again */
	size_t n_quarantine;
	struct kv_health compact_health, gc_health;
	uint64_t compactions, compaction_failures, compaction_retries;
	uint64_t compact_bytes_in, compact_bytes_out;
	uint64_t gc_deleted_ssts, gc_deleted_wals, gc_deleted_manifests;
	/* Unreferenced tables GC has seen, by name, with the wall time (ms)
	 * of the pass that first found them unreferenced (kv_gc.c, AGE).
	 * Only kv_gc_pass uses them (one caller at a time: the GC thread,
	 * or a test with no_background). */
	struct kv_gc_unref *gc_unref;
	size_t n_gc_unref;

	/* Tables written but not yet committed to a manifest (flush and
	 * compaction outputs): GC never deletes them, whatever their age. */
	struct kv_sst_id *pending;
	size_t n_pending;

	/* read-only followers, protected by mu: */
	uint64_t follow_next_wal;         /* next WAL id to replay */
	uint64_t follow_polls, follow_lag_ms;
	struct kv_health follow_health;

	pthread_t wal_thread, flush_thread, compact_thread, gc_thread, follow_thread, prebuild_thread;
	int threads;                      /* bits: 1 wal, 2 flush, 4 compact, 8 gc, 16 follow,
					   * 32 prebuild */
};

/* kv_wal_writer.c */
void *kv_wal_writer_main(void *arg);
/* Append a batch to the open WAL object (mu held). */
int kv_wal_writer_append(struct kv_db *db, uint64_t first_seq, const struct kv_batch *b);
/* Record an uploaded (or replayed) WAL object (mu held). 0 or -ENOMEM. */
int kv_wal_done_push(struct kv_db *db, uint64_t id, uint64_t last_seq);

/* The lowest unlogged seq not yet in a committed SST, 0 = none (mu held). */
uint64_t kv_unlogged_first(const struct kv_db *db);

/* kv_flush_build.c */
/* Build mem's SST into *bt, keeping what the live snapshots can read, in
 * a kept buffer if there is one. mu held; dropped while it builds, so the
 * caller holds a reference on mem. */
int kv_flush_build(struct kv_db *db, struct kv_mem *mem, struct kv_built *bt);
void kv_built_free(struct kv_built *bt);
/* Keep a table buffer of cap bytes for a later build, or free it (mu held). */
void kv_flush_spare_put(struct kv_db *db, uint8_t *data, size_t cap);
/* The prebuilder thread: builds imm[1] while imm[0] is flushed. */
void *kv_flush_prebuild_main(void *arg);

/* kv_flush.c */
void *kv_flush_main(void *arg);
/* Freeze the active memtable (mu held). -ENOMEM leaves it active. */
int kv_flush_freeze(struct kv_db *db);
/* Flush the oldest frozen memtable to an L0 SST and commit it (mu NOT
 * held). Used by the flusher thread and by recovery. */
int kv_flush_one(struct kv_db *db);
/* Apply fn to a copy of the current manifest and CAS it in as the next
 * id, reloading on conflict; installs the result as the current version.
 * Returns 0, KV_EFENCED (a newer writer; state set), or an error. */
typedef int (*kv_manifest_apply_fn)(void *arg, struct kv_manifest *m);
int kv_manifest_update(struct kv_db *db, kv_manifest_apply_fn fn, void *arg,
		       struct kv_sst_reader *extra, const struct kv_sst_id *extra_id);

/* kv_compact.c, kv_gc.c, kv_follow.c */
void *kv_compact_main(void *arg);
int kv_compact_wanted(const struct kv_db *db);
void *kv_gc_main(void *arg);
/* One GC pass (also used by tests and the CLI). 0 or an error. */
int kv_gc_pass(struct kv_db *db, int dry_run);
/* GC's default gc_min_age_ms; kv_repair's default too. */
#define KV_DFLT_GC_MIN_AGE_MS 300000
/* Bytes of an empty (fence) WAL object. */
size_t kv_gc_fence_size(void);
/* Creation time (ms) of a table from its name sst/<ULID>.sst; -EINVAL for
 * names that are not ours. */
int kv_gc_sst_time(const char *name, uint64_t *ms);
void *kv_follow_main(void *arg);

/* kv_replay.c */
struct kv_wal_scan {
	uint64_t after;                   /* ids above this only */
	uint64_t max;                     /* highest id seen */
	uint64_t count;
	uint64_t gap;                     /* first missing id, 0 = none */
};
/* List WAL objects above `after`: the highest id and the first gap. */
int kv_wal_scan(struct obj_backend *store, uint64_t after, struct kv_wal_scan *s);
struct kv_replay {
	struct kv_db *db;
	uint64_t skip_upto;               /* records at or below this are in SSTs */
	uint64_t max_seq;
	uint64_t seq;                     /* seq of the entry being applied */
	int missing_ok;                   /* a missing object is -ENOENT, not corruption */
};
/* Fetch WAL object `id` without holding mu. -ENOENT only if r->missing_ok,
 * else a missing object is KV_ECORRUPT. *data is obj_buf_free'd by the caller. */
int kv_replay_fetch(struct kv_db *db, uint64_t id, const struct kv_replay *r, void **data,
		    size_t *len);
/* Replay fetched bytes into db->mem (mu held; the caller is the only
 * memtable writer). *last = the highest seq after it. */
int kv_replay_data(struct kv_db *db, uint64_t id, const void *data, size_t len,
		   struct kv_replay *r, uint64_t *last);
/* Replay WAL objects (after, upto] at open (mu held, no other thread
 * running), recording each as uploaded (kv_wal_done_push) if record_done. */
int kv_replay_range(struct kv_db *db, uint64_t after, uint64_t upto, int record_done);

/* kv_pending.c: register / forget an uncommitted table (mu NOT held). */
int kv_pending_add(struct kv_db *db, const struct kv_sst_id *id);
void kv_pending_del(struct kv_db *db, const struct kv_sst_id *id);

/* Tell GC there may be garbage (a new manifest, an abandoned table, a
 * full store): it runs a pass once gc_interval_ms has passed since its
 * last one (mu held). */
static inline void kv_gc_kick(struct kv_db *db);

/* ---- room to recover on a full store (kv_reclaim.c) --------------------- */
enum { KV_RESERVE_UNKNOWN = 0, KV_RESERVE_PRESENT, KV_RESERVE_RELEASED };
/* Release the reserve when the store is full, make it again once it has
 * room (GC thread; takes mu). Returns the wall-clock ns at which it wants
 * to be called again, 0 = only on the next event. */
uint64_t kv_reserve_tend(struct kv_db *db);
/* Short of room (kv_reclaim.c, THE RESERVE): the store refuses writes for
 * space, or the reserve is spent and not made again yet. (mu held) */
int kv_room_short(const struct kv_db *db);
/* Whether a reclaim pass has something new to look at (mu held). */
int kv_reclaim_wanted(struct kv_db *db);
/* One reclaim pass (compactor thread; mu not held). Returns 0 or an error. */
int kv_reclaim_pass(struct kv_db *db);

/* kv_health.c */
/* Enter FENCED or ERROR (mu held): logs once, wakes every waiter. */
void kv_db_set_state(struct kv_db *db, enum kv_state st, int err);
/* Sleep for a retry backoff step, returning early on abandon (mu NOT held). */
void kv_db_backoff(struct kv_db *db, unsigned attempt);
/* Emit h as NAME_runs, NAME_failures, NAME_consecutive_failures,
 * NAME_last_success_unix_ms. */
void kv_health_emit(kv_stat_emit_fn emit, void *arg, const char *name,
		    const struct kv_health *h);
/* A durable write (what: "WAL upload wal/N", "memtable flush") failed
 * with err, or succeeded (mu held): STORE FAILURES in kv_health.c. */
void kv_db_store_failed(struct kv_db *db, const char *what, int err);
void kv_db_store_ok(struct kv_db *db);
/* The errno a caller sees for a store failure: -ENOSPC, -EDQUOT, -EACCES
 * or -EIO. */
int kv_store_errno(int err);

/* ---- ownership (kv_lease.c) ------------------------------------------------
 * Called from kv_open/kv_close with db->conf.lease set. */
/* A read of a checkpoint-mode db failed as corrupt: if the checkpoint
 * was deleted (checkpoint delete --force), say so once and set
 * ckpt_deleted. Looks at most every few seconds. */
void kv_db_checkpoint_check(struct kv_db *db);
/* Take the writer lease, recording `epoch`. Returns 0, -EBUSY (held:
 * conf.lease->holder filled in), or a store error. */
int kv_lease_acquire(struct kv_db *db, uint64_t epoch);
/* Release it (clean: everything written is durable); logs failures. */
void kv_lease_release(struct kv_db *db, int clean);
/* Register / unregister this read-only db under readers/. */
int kv_reader_register(struct kv_db *db);
void kv_reader_unregister(struct kv_db *db);

static inline void kv_gc_kick(struct kv_db *db)
{
	KV_MU_HELD(db);
	db->gc_kick = 1;
	CHECK_RETURN(pthread_cond_signal(&db->cv_gc));
}

#endif /* SHALE_KV_INT_H */
