/*
 * kv_sst_rebuild.c - find a table's data blocks without its index, and
 * build the index again from them.
 *
 * WHY
 *   A table's footer, filter and index only say where its data blocks
 *   are (kv_sst_build.c): every key and value is in the data blocks,
 *   each with its own CRC32C. When one byte of that metadata is damaged,
 *   nothing is lost yet, but a reader cannot find a block, and every read
 *   of the table's key range fails (BROKEN TABLES in kv_version.c); with
 *   an index damaged in a table of directory entries, whole directories
 *   cannot be listed. So kv_sst_open_rebuilt (kv_sst_read.c) reads the
 *   table whole, and this file finds its blocks by their checksums and
 *   writes a new index for it, in memory. The table then serves reads as
 *   before, without a filter; scrub still reports the damaged bytes, and
 *   the next compaction of the table writes it out whole again.
 *
 * HOW BLOCKS ARE FOUND
 *   Blocks carry no length: a stored block is its bytes, a type byte
 *   (0 or 1) and the CRC32C of both (BLOCK TRAILER in kv_sst_build.c).
 *   Block 0 starts at offset 0 and each block starts where the previous
 *   one's trailer ends, so from a block's start the scan extends the CRC
 *   of the bytes so far one byte at a time (one pass over the table) and
 *   stops at the first place where the byte there is a type and the next
 *   four bytes are the CRC of everything before plus that type. Such a
 *   candidate is taken only if it also decodes as a data block whose keys
 *   are valid and strictly above every key before it; a chance CRC match
 *   inside a block (odds 2^-32 per place) fails that and the scan goes on.
 *
 * WHEN THE RESULT IS TRUSTED
 *   Only when it is provably the whole table (the caller checks): blocks
 *   contiguous from offset 0, with the counts and the data end the footer
 *   records when the footer is sound, else ending with the largest key the
 *   manifest records for the table. A table whose data block is damaged
 *   too cannot be rebuilt: the scan never finds that block's end, and the
 *   table stays broken. A partial index would be worse than none: the keys
 *   it misses would read as absent, or as the older versions beneath them.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Append one index entry (restart interval 1: no shared prefix). */
static int kv_sst_rebuild_entry(struct kv_sst_rebuilt *rb, const uint8_t *key, size_t klen,
				uint64_t off, uint64_t size)
{
	uint8_t head[30], val[20];
	size_t vlen = kv_varint_put(val, off);
	vlen += kv_varint_put(val + vlen, size);
	size_t h = kv_varint_put(head, 0);
	h += kv_varint_put(head + h, klen);
	h += kv_varint_put(head + h, vlen);
	uint8_t at[4];
	util_put_be32(at, (uint32_t)rb->index.len);
	int rc = kv_buf_append(&rb->restarts, at, 4);
	rc = rc ? rc : kv_buf_append(&rb->index, head, h);
	rc = rc ? rc : kv_buf_append(&rb->index, key, klen);
	return rc ? rc : kv_buf_append(&rb->index, val, vlen);
}

/*
 * Check the decoded block b: its keys valid and strictly increasing,
 * above rb->last. On success rb->last holds its last key and *n its
 * entry count; on failure rb->last is as it was. KV_ECORRUPT (quiet) or
 * -ENOMEM.
 */
static int kv_sst_rebuild_check(struct kv_sst_rebuilt *rb, const struct kv_sst_block *b,
				uint64_t *n)
{
	struct kv_sst_biter it;
	int rc = 0;

	*n = 0;
	rb->cand.len = 0;
	kv_sst_bi_init(&it, NULL);
	kv_sst_bi_set(&it, b);
	for (kv_sst_bi_seek_first(&it); it.valid; kv_sst_bi_next(&it)) {
		const struct kv_buf *prev = *n ? &rb->cand : &rb->last;
		if (it.key.len < KV_IKEY_TRAILER ||
		    (prev->len && kv_ikey_cmp(prev->data, prev->len, it.key.data, it.key.len) >= 0)) {
			rc = KV_ECORRUPT;
			break;
		}
		rb->cand.len = 0;
		if ((rc = kv_buf_append(&rb->cand, it.key.data, it.key.len)))
			break;
		(*n)++;
	}
	if (!rc && (it.err || *n == 0))
		rc = it.err == -ENOMEM ? -ENOMEM : KV_ECORRUPT;
	kv_buf_free(&it.key);
	if (!rc) {
		struct kv_buf t = rb->last;
		rb->last = rb->cand;
		rb->cand = t;
	}
	rb->cand.len = 0;
	return rc;
}

int kv_sst_rebuild_index(const uint8_t *data, size_t limit, struct kv_sst_rebuilt *rb)
{
	size_t s = 0;
	int rc = 0;

	memset(rb, 0, sizeof(*rb));
	while (s < limit && !rc) {
		uint32_t crc = 0;
		size_t end = limit - s > KV_SST_BLOCK_MAX + KV_SST_TRAILER_SIZE ?
			     s + KV_SST_BLOCK_MAX + KV_SST_TRAILER_SIZE : limit;
		int found = 0;
		for (size_t p = s; p + KV_SST_TRAILER_SIZE <= end && !found; p++) {
			uint8_t t = data[p];
			if (p > s && (t == KV_SST_COMP_NONE || t == KV_SST_COMP_ZSTD) &&
			    KV_SST_CRC_OK(util_get_be32(data + p + 1), util_crc32c(crc, &t, 1))) {
				uint8_t *dec = NULL;
				size_t dec_len = 0;
				struct kv_sst_block b;
				uint64_t n = 0, size = p - s;
				rc = kv_sst_decode(NULL, s, size, data + s, size + KV_SST_TRAILER_SIZE,
						   &dec, &dec_len, &b);
				if (rc == 0)
					rc = kv_sst_rebuild_check(rb, &b, &n);
				free(dec);
				if (rc == 0) {
					rc = kv_sst_rebuild_entry(rb, rb->last.data, rb->last.len, s, size);
					rb->blocks++;
					rb->entries += n;
					rb->data_end = p + KV_SST_TRAILER_SIZE;
					found = 1;
					s = rb->data_end;
					break;
				}
				if (rc != KV_ECORRUPT)
					break;
				rc = 0;                 /* not a block's end after all */
			}
			crc = util_crc32c(crc, &t, 1);
		}
		if (!found)
			break;                  /* what follows is no data block: the filter, the index, or damage */
	}
	if (rc == KV_ECORRUPT)
		rc = 0;
	if (!rc) {
		uint8_t cnt[4];
		util_put_be32(cnt, (uint32_t)rb->blocks);
		rb->index_rlen = rb->index.len;
		rc = kv_buf_append(&rb->index, rb->restarts.data, rb->restarts.len);
		rc = rc ? rc : kv_buf_append(&rb->index, cnt, 4);
	}
	if (rc)
		kv_sst_rebuilt_free(rb);
	return rc;
}

void kv_sst_rebuilt_free(struct kv_sst_rebuilt *rb)
{
	kv_buf_free(&rb->index);
	kv_buf_free(&rb->restarts);
	kv_buf_free(&rb->last);
	kv_buf_free(&rb->cand);
}
