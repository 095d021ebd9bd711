/*
 * kv_batch.c - public write batches (struct kv_batch, kv.h).
 *
 * A batch is its WAL encoding: entries are appended to rep in exactly the
 * format kv_batch_each walks (see kv_int.h and the WAL format in
 * kv_wal.c), so committing a batch is one copy into a WAL record and one
 * kv_batch_each into the memtable, with no intermediate representation.
 *
 * INVARIANTS
 *   rep holds exactly `count` well-formed entries (kv_batch_each on it
 *   succeeds); rep.len <= KV_BATCH_MAX. A failed put/delete leaves the
 *   batch unchanged.
 *
 * THREADING
 *   A batch belongs to one thread at a time (kv.h).
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int kv_batch_create(struct kv_batch **out)
{
	struct kv_batch *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	*out = b;
	return 0;
}

/*
 * Append one entry. Returns 0, -EINVAL (empty key, key over KV_KEY_MAX,
 * value over KV_VALUE_MAX), -E2BIG (the batch would exceed KV_BATCH_MAX
 * bytes or 2^32-1 entries) or -ENOMEM; on error the batch is unchanged.
 */
static int kv_batch_add(struct kv_batch *b, enum kv_type type, const void *key, size_t klen,
			const void *val, size_t vlen)
{
	uint8_t hdr[1 + 10], vhdr[10];
	size_t hlen = 0, vhlen = 0, need;

	if (!b || klen == 0 || klen > KV_KEY_MAX || vlen > KV_VALUE_MAX ||
	    (!key && klen) || (!val && vlen))
		return -EINVAL;
	if (b->count == UINT32_MAX)
		return -E2BIG;
	hdr[hlen++] = (uint8_t)type;
	hlen += kv_varint_put(hdr + hlen, klen);
	/* Key and value are bounded, so need cannot overflow. */
	need = hlen + klen;
	if (type == KV_TYPE_VALUE) {
		vhlen = kv_varint_put(vhdr, vlen);
		need += vhlen + vlen;
	}
	if (b->rep.len > KV_BATCH_MAX || need > KV_BATCH_MAX - b->rep.len)
		return -E2BIG;
	/* Reserve once so the appends below cannot fail half-way. */
	if (kv_buf_reserve(&b->rep, need))
		return -ENOMEM;
	kv_buf_append(&b->rep, hdr, hlen);
	kv_buf_append(&b->rep, key, klen);
	if (type == KV_TYPE_VALUE) {
		kv_buf_append(&b->rep, vhdr, vhlen);
		kv_buf_append(&b->rep, val, vlen);
	}
	b->count++;
	return 0;
}

int kv_batch_put(struct kv_batch *b, const void *key, size_t klen, const void *val, size_t vlen)
{
	return kv_batch_add(b, KV_TYPE_VALUE, key, klen, val, vlen);
}

int kv_batch_delete(struct kv_batch *b, const void *key, size_t klen)
{
	return kv_batch_add(b, KV_TYPE_DELETE, key, klen, NULL, 0);
}

void kv_batch_clear(struct kv_batch *b)
{
	/* Keep the allocation: batches are typically reused. */
	b->rep.len = 0;
	b->count = 0;
}

size_t kv_batch_count(const struct kv_batch *b)
{
	return b->count;
}

size_t kv_batch_bytes(const struct kv_batch *b)
{
	return b->rep.len;
}

void kv_batch_free(struct kv_batch *b)
{
	if (!b)
		return;
	kv_buf_free(&b->rep);
	free(b);
}
