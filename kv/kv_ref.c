/*
 * kv_ref.c - references from tables into data tables: large values kept
 * out of compaction.
 *
 * DESIGN
 *   A memtable flush with kv_config.data_min_bytes set writes every value
 *   of at least that many bytes into a second table of its own, the data
 *   table (an ordinary SST, sst/<ULID>.sst, no filter), and puts a small
 *   REF entry in the flush's table in its place: same user key and seq,
 *   type KV_TYPE_REF. Compaction and reclaim then move REF entries from
 *   table to table like any other, and never copy the value again, so
 *   file data is written once however often its keys are compacted
 *   (docs/kv-format.md, "Data tables").
 *
 *   A data table is live while some table of a live manifest references
 *   it. Every table's manifest entry lists the data tables its REF entries
 *   point into (struct kv_dref: id, object size, and the value bytes it
 *   references), which the SST builder collects from the entries it is
 *   given, so every writer of tables (flush, compaction, reclaim, repair)
 *   keeps the list right without knowing about it. GC, checkpoints and
 *   followers keep data tables exactly as they keep the tables that list
 *   them.
 *
 * REF VALUE FORMAT (the value of a KV_TYPE_REF entry)
 *   16 bytes  ULID of the data table
 *   varint    seq of the value's entry in the data table (the REF's own
 *             seq when written; kept here so that the reference alone
 *             names the entry)
 *   varint    the value's length
 *   Nothing follows. The data table holds the value under the REF's user
 *   key with type KV_TYPE_VALUE at that seq; its blocks carry the CRC32C
 *   that checks it. The data table's object size, which its reader needs
 *   to find the footer, is in the manifest entry of every table that
 *   references it (struct kv_dref), not here: a compaction writes REFs to
 *   the data table it is still filling.
 *
 * REWRITING (kv_compact.c)
 *   A data table's live bytes are what the tables of the current version
 *   reference in it (the sum of their kv_dref.bytes). Overwritten and
 *   deleted values stop counting as compactions drop their REFs, and a
 *   data table whose live bytes fall below data_rewrite_pct of its size
 *   has the values a compaction meets in it copied into a new data table
 *   written by that compaction; once no table references the old one, GC
 *   deletes it.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t kv_ref_encode(uint8_t *buf, const struct kv_ref *r)
{
	size_t n = 16;
	memcpy(buf, r->id.b, 16);
	n += kv_varint_put(buf + n, r->seq);
	n += kv_varint_put(buf + n, r->len);
	return n;
}

int kv_ref_decode(const uint8_t *v, size_t vlen, struct kv_ref *out)
{
	const uint8_t *p = v + 16, *end = v + vlen;
	size_t n;

	if (vlen < 16 + 2)
		return -EINVAL;
	memcpy(out->id.b, v, 16);
	if (!(n = kv_varint_get(p, end, &out->seq)))
		return -EINVAL;
	p += n;
	if (!(n = kv_varint_get(p, end, &out->len)))
		return -EINVAL;
	p += n;
	return p == end && out->seq <= KV_SEQ_MAX ? 0 : -EINVAL;
}

/* Index of id in the sorted refs[0..n), or where it would go (*found 0). */
static size_t kv_dref_find(const struct kv_dref *refs, size_t n, const struct kv_sst_id *id,
			   int *found)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(refs[mid].id.b, id->b, 16);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

int kv_dref_add(struct kv_dref **refs, size_t *n, const struct kv_sst_id *id, uint64_t size,
		uint64_t bytes)
{
	int found;
	size_t i = kv_dref_find(*refs, *n, id, &found);

	if (!found) {
		struct kv_dref *p = realloc(*refs, (*n + 1) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memmove(p + i + 1, p + i, (*n - i) * sizeof(*p));
		p[i] = (struct kv_dref){ .id = *id, .size = size };
		*refs = p;
		(*n)++;
	}
	(*refs)[i].bytes += bytes;
	return 0;
}

const struct kv_dref *kv_dref_lookup(const struct kv_dref *refs, size_t n,
				     const struct kv_sst_id *id)
{
	int found;
	size_t i = kv_dref_find(refs, n, id, &found);
	return found ? &refs[i] : NULL;
}

int kv_drefs_copy(struct kv_dref **dst, const struct kv_dref *src, size_t n)
{
	*dst = NULL;
	if (!n)
		return 0;
	*dst = malloc(n * sizeof(**dst));
	if (!*dst)
		return -ENOMEM;
	memcpy(*dst, src, n * sizeof(**dst));
	return 0;
}
