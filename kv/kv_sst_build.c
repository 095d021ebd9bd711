/*
 * kv_sst_build.c - the SST builder: sorted internal-key entries in, one
 * complete SST object (bytes) out.
 *
 * The builder works in memory: the engine writes SSTs of up to ~64 MiB
 * (values up to 64 KiB each) and puts them with one object PUT, so there
 * is nothing to stream. Entries arrive in strictly increasing internal-key
 * order (kv_ikey_cmp); the builder cuts them into data blocks, then
 * appends the filter, the index and the footer.
 *
 * STATE
 *   OPEN --add*--> OPEN --finish--> FINISHED (add/finish refuse: -EINVAL)
 *   An allocation failure in add or finish leaves the builder FAILED: every
 *   later call returns -ENOMEM, and the only useful verb is free.
 *
 * SST OBJECT FORMAT (version 1). All fixed-width integers are big-endian;
 * "varint" is LEB128 (kv_varint_put).
 *
 *   data block 0      stored block (see BLOCK TRAILER)
 *   ...
 *   data block n-1
 *   filter block      stored block, never compressed; absent (0 bytes, no
 *                     trailer) when the SST has no filter
 *   index block       stored block, never compressed
 *   footer            64 bytes
 *
 *   The filter and index are adjacent and end where the footer starts, so
 *   a reader loads them with one ranged GET once it has the footer (which
 *   it reads with a ranged GET of the last 64 bytes: the manifest knows
 *   the object size).
 *
 * BLOCK (data and index blocks share this format)
 *   A sequence of entries, then the restart array, then its count:
 *
 *     entry:    varint shared     bytes shared with the previous key
 *               varint unshared   bytes of key that follow
 *               varint value_len
 *               unshared bytes of key (the key's suffix after `shared`)
 *               value_len bytes of value
 *     restarts: be32 offset of entry   (one per restart point)
 *     count:    be32 number of restart points
 *
 *   Every restart_interval-th entry (the first one included) is a restart
 *   point: it has shared == 0, so a reader can binary-search the restart
 *   keys and then scan forward at most restart_interval entries. A block
 *   with no entries has no restart points (count 0). Keys are internal
 *   keys (user key + 8-byte trailer, kv_int.h), strictly increasing. The
 *   trailer's type is 0 (tombstone, empty value), 1 (value) or 2 (REF:
 *   the value is a reference into a data table, format in kv_ref.c).
 *
 * BLOCK TRAILER
 *   Every stored block (data, filter, index) is followed by 5 bytes:
 *
 *     u8   compression type: 0 = none, 1 = zstd (a single zstd frame that
 *          records its decompressed size)
 *     be32 CRC32C over the stored bytes followed by the type byte
 *
 *   A data block is stored zstd-compressed (at compression_level) only
 *   when that saves at least 1/8 of its size. Whether a block was tried
 *   is the builder's business (COMPRESSION BACKOFF below); readers only
 *   look at the type byte.
 *
 * INDEX BLOCK
 *   One entry per data block, in order (restart_interval 1, so every index
 *   key is a restart key): key = the last internal key of the block (a
 *   separator: >= every key of the block, < every key of the next one),
 *   value = varint offset + varint stored size (without the trailer) of
 *   the block. To find a key, seek the index to the first entry >= it.
 *
 * FILTER BLOCK
 *   The bloom filter of kv_bloom.c over the USER keys (internal key minus
 *   its 8-byte trailer), each distinct user key added once, with
 *   bloom_bits_per_key bits per key.
 *
 * FOOTER (64 bytes, at object size - 64)
 *     0  be64 index offset
 *     8  be64 index size (stored bytes, without the trailer)
 *    16  be64 filter offset (== index offset when there is no filter)
 *    24  be64 filter size (0 = no filter)
 *    32  be64 number of entries
 *    40  be64 number of data blocks
 *    48  be32 format version (1)
 *    52  be64 magic 0x5368616c65535354 ("ShaleSST")
 *    60  be32 CRC32C of bytes 0..59
 *
 *   So: filter offset + filter size + 5 == index offset (when a filter is
 *   present), index offset + index size + 5 == object size - 64, and the
 *   data blocks occupy [0, filter offset).
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define KV_SST_DEFAULT_BLOCK_SIZE 4096
#define KV_SST_DEFAULT_RESTART 16
#define KV_SST_DEFAULT_BLOOM 10
/* Room for the three varints of an entry header. */
#define KV_SST_ENTRY_OVERHEAD 30

/* One block being encoded. */
struct kv_sst_bb {
	struct kv_buf buf;                /* entries so far; whole block after finish */
	struct kv_buf restarts;           /* be32 restart offsets */
	struct kv_buf last;               /* last key added */
	int interval;                     /* restart interval */
	int counter;                      /* entries since the last restart */
	uint32_t nrestarts;
	uint64_t entries;
};

struct kv_sst_builder {
	struct kv_sst_options opt;        /* with defaults applied */
	int err;                          /* sticky -ENOMEM (FAILED) */
	int finished;
	struct kv_buf out;                /* the object so far */
	struct kv_sst_bb data;            /* current data block */
	struct kv_sst_bb index;
	struct kv_buf last;               /* last internal key added */
	struct kv_buf first;              /* first internal key added */
	struct kv_dref *refs;             /* data tables the REF entries point into */
	size_t n_refs;
	uint32_t *hashes;                 /* user-key hashes for the filter */
	size_t nhashes, hashes_cap;
	uint64_t entries, blocks, min_seq, max_seq;
	struct kv_buf scratch;            /* compression output */
	ZSTD_CCtx *cctx;                  /* created on first compression */
	unsigned skip_left, skip_next;    /* COMPRESSION BACKOFF */
	uint64_t compress_tries;
};

static void kv_sst_bb_init(struct kv_sst_bb *bb, int interval)
{
	memset(bb, 0, sizeof(*bb));
	bb->interval = interval;
	bb->counter = interval;           /* the first entry is a restart */
}

static void kv_sst_bb_reset(struct kv_sst_bb *bb)
{
	bb->buf.len = 0;
	bb->restarts.len = 0;
	bb->last.len = 0;
	bb->counter = bb->interval;
	bb->nrestarts = 0;
	bb->entries = 0;
}

static void kv_sst_bb_free(struct kv_sst_bb *bb)
{
	kv_buf_free(&bb->buf);
	kv_buf_free(&bb->restarts);
	kv_buf_free(&bb->last);
}

/* Encoded size if the block were finished now. */
static size_t kv_sst_bb_size(const struct kv_sst_bb *bb)
{
	return bb->buf.len + bb->restarts.len + 4;
}

/*
 * Append one entry. All memory is reserved before anything is written,
 * so on -ENOMEM the block is unchanged.
 */
static int kv_sst_bb_add(struct kv_sst_bb *bb, const uint8_t *key, size_t klen,
			 const uint8_t *val, size_t vlen)
{
	size_t shared = 0, need;
	int restart = bb->counter >= bb->interval;
	int rc;

	if (!restart) {
		size_t n = bb->last.len < klen ? bb->last.len : klen;
		while (shared < n && bb->last.data[shared] == key[shared])
			shared++;
	}
	if (util_size_add(&need, klen - shared, vlen) ||
	    util_size_add(&need, need, KV_SST_ENTRY_OVERHEAD))
		return -ENOMEM;
	if ((rc = kv_buf_reserve(&bb->buf, need)) || (rc = kv_buf_reserve(&bb->restarts, 4)))
		return rc;
	if (klen > bb->last.len && (rc = kv_buf_reserve(&bb->last, klen - bb->last.len)))
		return rc;

	if (restart) {
		util_put_be32(bb->restarts.data + bb->restarts.len, (uint32_t)bb->buf.len);
		bb->restarts.len += 4;
		bb->nrestarts++;
		bb->counter = 0;
	}
	uint8_t *p = bb->buf.data + bb->buf.len;
	p += kv_varint_put(p, shared);
	p += kv_varint_put(p, klen - shared);
	p += kv_varint_put(p, vlen);
	memcpy(p, key + shared, klen - shared);
	p += klen - shared;
	if (vlen)
		memcpy(p, val, vlen);
	p += vlen;
	bb->buf.len = (size_t)(p - bb->buf.data);
	memcpy(bb->last.data + shared, key + shared, klen - shared);
	bb->last.len = klen;
	bb->counter++;
	bb->entries++;
	return 0;
}

/* Append the restart array and count: bb->buf is then the whole block. */
static int kv_sst_bb_finish(struct kv_sst_bb *bb)
{
	int rc = kv_buf_append(&bb->buf, bb->restarts.data, bb->restarts.len);
	if (!rc)
		rc = kv_buf_put_be32(&bb->buf, bb->nrestarts);
	return rc;
}

/*
 * COMPRESSION BACKOFF. File data that is already compressed (or random)
 * fails the 1/8 test block after block, and each failed try still costs a
 * zstd pass and a copy (ZSTD_compressCCtx and its memcpy under the
 * flusher), a visible share of the daemon's CPU in a random-data write
 * (docs/kv-format.md, "Known limits"). So after a block that did not pay, the next 1 block is stored without a
 * try, after a second one in a row the next 2, then 4, ... up to
 * KV_SST_SKIP_MAX; a block that pays resets it. Compressible data that
 * follows incompressible data in one table loses at most KV_SST_SKIP_MAX
 * blocks' worth of compression.
 */
#define KV_SST_SKIP_MAX 16u

static int kv_sst_try_compress(struct kv_sst_builder *b)
{
	if (b->skip_left) {
		b->skip_left--;
		return 0;
	}
	b->compress_tries++;
	return 1;
}

static void kv_sst_compress_paid(struct kv_sst_builder *b, int paid)
{
	if (paid) {
		b->skip_next = 0;
		return;
	}
	b->skip_next = b->skip_next ? b->skip_next * 2 : 1;
	if (b->skip_next > KV_SST_SKIP_MAX)
		b->skip_next = KV_SST_SKIP_MAX;
	b->skip_left = b->skip_next;
}

uint64_t kv_sst_builder_compress_tries(const struct kv_sst_builder *b)
{
	return b->compress_tries;
}

/*
 * Append raw (len bytes) to the object as a stored block with its
 * trailer, compressed if allowed and worth it. *off and *size get the stored
 * block's offset and size (without trailer).
 */
static int kv_sst_write_block(struct kv_sst_builder *b, const uint8_t *raw, size_t len,
			      int may_compress, uint64_t *off, uint64_t *size)
{
	const uint8_t *stored = raw;
	size_t stored_len = len;
	uint8_t type = KV_SST_COMP_NONE;
	int rc;

	if (may_compress && b->opt.compression_level != 0 && len >= 64 && kv_sst_try_compress(b)) {
		size_t bound = ZSTD_compressBound(len);
		if (!b->cctx && !(b->cctx = ZSTD_createCCtx()))
			return -ENOMEM;
		b->scratch.len = 0;
		if ((rc = kv_buf_reserve(&b->scratch, bound)))
			return rc;
		size_t c = ZSTD_compressCCtx(b->cctx, b->scratch.data, bound, raw, len,
					     b->opt.compression_level);
		/* A zstd error here can only be resource exhaustion (the bound
		 * is sufficient): store the block uncompressed instead. */
		if (!ZSTD_isError(c) && c <= len - len / 8) {
			stored = b->scratch.data;
			stored_len = c;
			type = KV_SST_COMP_ZSTD;
		}
		kv_sst_compress_paid(b, type == KV_SST_COMP_ZSTD);
	}
	uint32_t crc = util_crc32c(0, stored, stored_len);
	crc = util_crc32c(crc, &type, 1);
	size_t need;
	if (util_size_add(&need, stored_len, KV_SST_TRAILER_SIZE))
		return -ENOMEM;
	if ((rc = kv_buf_reserve(&b->out, need)))
		return rc;
	*off = b->out.len;
	*size = stored_len;
	if (stored_len)
		memcpy(b->out.data + b->out.len, stored, stored_len);
	b->out.len += stored_len;
	b->out.data[b->out.len++] = type;
	util_put_be32(b->out.data + b->out.len, crc);
	b->out.len += 4;
	return 0;
}

/* Write out the current data block and add its index entry. */
static int kv_sst_flush_block(struct kv_sst_builder *b)
{
	uint64_t off, size;
	uint8_t handle[20];
	size_t hlen;
	int rc;

	if (b->data.entries == 0)
		return 0;
	if ((rc = kv_sst_bb_finish(&b->data)))
		return rc;
	if ((rc = kv_sst_write_block(b, b->data.buf.data, b->data.buf.len, 1, &off, &size)))
		return rc;
	hlen = kv_varint_put(handle, off);
	hlen += kv_varint_put(handle + hlen, size);
	/* The block's last key is a valid separator (see INDEX BLOCK). */
	if ((rc = kv_sst_bb_add(&b->index, b->data.last.data, b->data.last.len, handle, hlen)))
		return rc;
	b->blocks++;
	kv_sst_bb_reset(&b->data);
	return 0;
}

/*
 * kv_sst_builder_create - a builder with `opt` (NULL or zero fields mean
 * the defaults: block_size 4096, restart_interval 16, bloom 10 bits/key,
 * no compression; bloom_bits_per_key < 0 means no filter).
 * On success *out is the caller's (kv_sst_builder_free).
 * Returns 0, -EINVAL (bad options), -ENOMEM.
 */
int kv_sst_builder_create(struct kv_sst_builder **out, const struct kv_sst_options *opt)
{
	struct kv_sst_builder *b;
	struct kv_sst_options o = { 0 };

	if (opt)
		o = *opt;
	if (o.block_size == 0)
		o.block_size = KV_SST_DEFAULT_BLOCK_SIZE;
	if (o.restart_interval == 0)
		o.restart_interval = KV_SST_DEFAULT_RESTART;
	if (o.bloom_bits_per_key == 0)
		o.bloom_bits_per_key = KV_SST_DEFAULT_BLOOM;
	if (o.bloom_bits_per_key < 0)
		o.bloom_bits_per_key = 0;
	/* Blocks must stay decodable by the reader (KV_SST_BLOCK_MAX). */
	if (o.block_size > KV_SST_BLOCK_MAX / 4 || o.restart_interval < 0 ||
	    o.bloom_bits_per_key > 1000)
		return -EINVAL;
	if (o.compression_level > ZSTD_maxCLevel())
		o.compression_level = ZSTD_maxCLevel();
	if (o.compression_level < ZSTD_minCLevel())
		o.compression_level = ZSTD_minCLevel();

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->opt = o;
	kv_sst_bb_init(&b->data, o.restart_interval);
	kv_sst_bb_init(&b->index, 1);
	*out = b;
	return 0;
}

/*
 * kv_sst_builder_add - append one entry. ikey must be a valid internal key
 * (>= 8 bytes, type 0 or 1) greater than the previous one.
 * Returns 0, -EINVAL (order, malformed key, entry too large, finished;
 * nothing changed) or -ENOMEM (builder FAILED).
 */
int kv_sst_builder_add(struct kv_sst_builder *b, const uint8_t *ikey, size_t iklen,
		       const void *val, size_t vlen)
{
	int rc;

	if (b->err)
		return b->err;
	if (b->finished || iklen < KV_IKEY_TRAILER || kv_ikey_type(ikey, iklen) > KV_TYPE_REF)
		return -EINVAL;
	/* One entry must fit a block the reader accepts. */
	if (iklen > KV_SST_BLOCK_MAX / 4 || vlen > KV_SST_BLOCK_MAX / 4)
		return -EINVAL;
	if (b->entries && kv_ikey_cmp(b->last.data, b->last.len, ikey, iklen) >= 0)
		return -EINVAL;
	/* A REF entry: its data table joins the table's list (kv_ref.c). */
	if (kv_ikey_type(ikey, iklen) == KV_TYPE_REF) {
		struct kv_ref ref;
		if (kv_ref_decode(val, vlen, &ref))
			return -EINVAL;
		if (kv_dref_add(&b->refs, &b->n_refs, &ref.id, 0, ref.len))
			goto nomem;
	}

	const uint8_t *ukey = ikey;
	size_t uklen = iklen - KV_IKEY_TRAILER;
	int new_ukey = !b->entries ||
		kv_ukey_cmp(b->last.data, b->last.len - KV_IKEY_TRAILER, ukey, uklen) != 0;
	uint64_t seq = kv_ikey_seq(ikey, iklen);

	if (new_ukey && b->opt.bloom_bits_per_key && b->nhashes == b->hashes_cap) {
		size_t cap = b->hashes_cap ? b->hashes_cap * 2 : 1024, bytes;
		if (util_size_mul(&bytes, cap, sizeof(uint32_t)))
			goto nomem;
		uint32_t *h = realloc(b->hashes, bytes);
		if (!h)
			goto nomem;
		b->hashes = h;
		b->hashes_cap = cap;
	}
	if (!b->entries && kv_buf_append(&b->first, ikey, iklen))
		goto nomem;
	if ((rc = kv_sst_bb_add(&b->data, ikey, iklen, val, vlen)))
		goto fail;
	b->last.len = 0;
	if ((rc = kv_buf_append(&b->last, ikey, iklen)))
		goto fail;
	if (new_ukey && b->opt.bloom_bits_per_key)
		b->hashes[b->nhashes++] = kv_bloom_hash(ukey, uklen);
	if (!b->entries || seq < b->min_seq)
		b->min_seq = seq;
	if (!b->entries || seq > b->max_seq)
		b->max_seq = seq;
	b->entries++;
	if (kv_sst_bb_size(&b->data) >= b->opt.block_size && (rc = kv_sst_flush_block(b)))
		goto fail;
	return 0;
nomem:
	rc = -ENOMEM;
fail:
	b->err = rc;
	return rc;
}

/* kv_sst_builder_size - bytes the object would have if finished now
 * (an estimate: compression of the current block is not known yet). */
size_t kv_sst_builder_size(const struct kv_sst_builder *b)
{
	size_t filter = b->opt.bloom_bits_per_key ?
		b->nhashes * (size_t)b->opt.bloom_bits_per_key / 8 + 9 : 0;
	return b->out.len + kv_sst_bb_size(&b->data) + kv_sst_bb_size(&b->index) + filter +
	       3 * KV_SST_TRAILER_SIZE + KV_SST_FOOTER_SIZE;
}

static int kv_sst_dup(uint8_t **dst, size_t *dlen, const struct kv_buf *src)
{
	*dst = malloc(src->len ? src->len : 1);
	if (!*dst)
		return -ENOMEM;
	memcpy(*dst, src->data, src->len);
	*dlen = src->len;
	return 0;
}

/*
 * kv_sst_builder_finish - complete the object. On success *out (out_len
 * bytes) is the caller's, freed with free(); meta's size, entries,
 * min_seq, max_seq, smallest, largest and refs (the data tables its REF
 * entries point into, kv_ref.c) are overwritten (not freed first; the
 * keys and refs are malloc'd, NULL for an SST with none);
 * meta->id is left untouched. The builder is FINISHED afterwards.
 * Returns 0, -EINVAL (already finished) or -ENOMEM (builder FAILED).
 */
int kv_sst_builder_finish(struct kv_sst_builder *b, uint8_t **out, size_t *out_len,
			  struct kv_sst_meta *meta)
{
	struct kv_buf filter = { 0 };
	uint64_t filter_off, filter_size = 0, index_off, index_size;
	uint8_t *smallest = NULL, *largest = NULL;
	size_t smallest_len = 0, largest_len = 0;
	uint8_t *f;
	int rc;

	if (b->err)
		return b->err;
	if (b->finished)
		return -EINVAL;
	/* The data tables' sizes, for the manifest (kv_ref.c). */
	for (size_t i = 0; i < b->n_refs; i++)
		if (!b->opt.ref_size ||
		    b->opt.ref_size(b->opt.ref_arg, &b->refs[i].id, &b->refs[i].size))
			return -EINVAL;
	if ((rc = kv_sst_flush_block(b)))
		goto fail;

	filter_off = b->out.len;
	if (b->opt.bloom_bits_per_key) {
		if ((rc = kv_bloom_build(&filter, b->hashes, b->nhashes, b->opt.bloom_bits_per_key)))
			goto fail;
		if ((rc = kv_sst_write_block(b, filter.data, filter.len, 0, &filter_off, &filter_size)))
			goto fail;
	}
	if ((rc = kv_sst_bb_finish(&b->index)))
		goto fail;
	if ((rc = kv_sst_write_block(b, b->index.buf.data, b->index.buf.len, 0, &index_off,
				     &index_size)))
		goto fail;
	if (b->entries && ((rc = kv_sst_dup(&smallest, &smallest_len, &b->first)) ||
			   (rc = kv_sst_dup(&largest, &largest_len, &b->last))))
		goto fail;
	if ((rc = kv_buf_reserve(&b->out, KV_SST_FOOTER_SIZE)))
		goto fail;

	f = b->out.data + b->out.len;
	util_put_be64(f + 0, index_off);
	util_put_be64(f + 8, index_size);
	util_put_be64(f + 16, filter_off);
	util_put_be64(f + 24, filter_size);
	util_put_be64(f + 32, b->entries);
	util_put_be64(f + 40, b->blocks);
	util_put_be32(f + 48, KV_SST_VERSION);
	util_put_be64(f + 52, KV_SST_MAGIC);
	util_put_be32(f + 60, util_crc32c(0, f, 60));
	b->out.len += KV_SST_FOOTER_SIZE;

	meta->size = b->out.len;
	meta->entries = b->entries;
	meta->min_seq = b->min_seq;
	meta->max_seq = b->max_seq;
	meta->smallest = smallest;
	meta->smallest_len = smallest_len;
	meta->largest = largest;
	meta->largest_len = largest_len;
	meta->refs = b->refs;
	meta->n_refs = b->n_refs;
	b->refs = NULL;
	b->n_refs = 0;
	*out = b->out.data;
	*out_len = b->out.len;
	memset(&b->out, 0, sizeof(b->out));
	b->finished = 1;
	kv_buf_free(&filter);
	return 0;
fail:
	free(smallest);
	free(largest);
	kv_buf_free(&filter);
	b->err = rc;
	return rc;
}

void kv_sst_builder_reuse(struct kv_sst_builder *b, struct kv_buf *spare)
{
	if (b->out.data || b->out.len || spare->borrowed)
		return;
	b->out = *spare;
	b->out.len = 0;
	memset(spare, 0, sizeof(*spare));
}

/* kv_sst_builder_free - free the builder (NULL is a no-op). */
void kv_sst_builder_free(struct kv_sst_builder *b)
{
	if (!b)
		return;
	kv_buf_free(&b->out);
	kv_sst_bb_free(&b->data);
	kv_sst_bb_free(&b->index);
	kv_buf_free(&b->last);
	kv_buf_free(&b->first);
	kv_buf_free(&b->scratch);
	free(b->refs);
	free(b->hashes);
	ZSTD_freeCCtx(b->cctx);
	free(b);
}
