/*
 * kv_wal.c - the WAL object codec: encoding batches into one WAL object
 * (wal/<id>.wal) and verifying + walking one on replay, plus the walker
 * for a batch's encoded entries.
 *
 * Nothing here does I/O: the engine builds an object in a kv_buf, puts it
 * with put_if_absent, and hands fetched bytes to kv_wal_decode.
 *
 * The decoder treats its input as hostile (it comes from the store):
 * every length is checked against the end of the buffer before it is
 * used, sizes are computed without overflow, and any inconsistency is
 * KV_CORRUPT: one log line naming the object and the fault. It never
 * asserts on input bytes and never calls back before the whole object
 * has been verified, so a corrupt object is never partly replayed.
 *
 * THREADING
 *   Stateless; every function is safe from any thread on distinct buffers.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/*
 * WAL OBJECT FORMAT (version 1). All integers are big-endian.
 *
 * An object is a header, zero or more batch records and a trailer:
 *
 *   HEADER (32 bytes)
 *     8  magic          "SHWAL" 0x00 0x00 0x01
 *     4  version        format version, 1
 *     8  wal_id         the id in the object's name (wal/<wal_id>.wal)
 *     8  writer_epoch   epoch of the writer that wrote it (fencing)
 *     4  header_crc     CRC32C of the 28 bytes above
 *
 *   RECORD (20 + length bytes), one per write batch, in seq order
 *     4  length         bytes of entries
 *     4  record_crc     CRC32C of first_seq, count and entries (the 12 +
 *                       length bytes that follow this field)
 *     8  first_seq      seq of the first entry; entry i has first_seq + i
 *     4  count          entries in the batch, >= 1
 *     .. entries        the batch's entries (kv_batch_each format):
 *                         u8 type (0 delete, 1 value),
 *                         varint klen (1..KV_KEY_MAX), klen key bytes,
 *                         if type is value: varint vlen (0..KV_VALUE_MAX),
 *                         vlen value bytes;
 *                       exactly count entries filling exactly length bytes
 *     A record's seqs lie in [first_seq, first_seq + count - 1], which
 *     must not exceed KV_SEQ_MAX, and each record's first_seq is above
 *     the previous record's last seq.
 *
 *   TRAILER (24 bytes)
 *     4  record_count   records in the object
 *     8  object_len     length of the whole object, trailer included
 *     8  magic          "SHWALEND"
 *     4  object_crc     CRC32C of every byte of the object before this
 *                       field (header, records and the 20 trailer bytes
 *                       above)
 *
 * So there is a checksum per record and one per object: a flipped byte
 * anywhere, or a truncation at any point, is detected. An object with zero
 * records (header + trailer, 56 bytes) is valid: the engine writes one to
 * fence older writers.
 */
#define KV_WAL_VERSION 1
#define KV_WAL_HEADER_SIZE 32
#define KV_WAL_RECORD_HEAD 20
#define KV_WAL_TRAILER_SIZE 24

static const uint8_t kv_wal_magic[8] = { 'S', 'H', 'W', 'A', 'L', 0, 0, 1 };
static const uint8_t kv_wal_end_magic[8] = { 'S', 'H', 'W', 'A', 'L', 'E', 'N', 'D' };

int kv_wal_begin(struct kv_buf *buf, const struct kv_wal_header *h)
{
	uint8_t hdr[KV_WAL_HEADER_SIZE];

	if (buf->len != 0)
		return -EINVAL;
	memcpy(hdr, kv_wal_magic, 8);
	util_put_be32(hdr + 8, KV_WAL_VERSION);
	util_put_be64(hdr + 12, h->wal_id);
	util_put_be64(hdr + 20, h->writer_epoch);
	util_put_be32(hdr + 28, util_crc32c(0, hdr, 28));
	return kv_buf_append(buf, hdr, sizeof(hdr));
}

int kv_wal_append(struct kv_buf *buf, uint64_t first_seq, uint32_t count,
		  const uint8_t *entries, size_t entries_len)
{
	uint8_t head[KV_WAL_RECORD_HEAD];
	size_t total;
	uint32_t crc;

	if (buf->len < KV_WAL_HEADER_SIZE || count == 0 || entries_len > KV_BATCH_MAX ||
	    first_seq > KV_SEQ_MAX || count - 1 > KV_SEQ_MAX - first_seq)
		return -EINVAL;
	if (util_size_add(&total, KV_WAL_RECORD_HEAD, entries_len))
		return -ENOMEM;
	/* Reserve first so a failure leaves buf exactly as it was. */
	int rc = kv_buf_reserve(buf, total);
	if (rc)
		return rc;
	util_put_be32(head, (uint32_t)entries_len);
	util_put_be64(head + 8, first_seq);
	util_put_be32(head + 16, count);
	crc = util_crc32c(0, head + 8, 12);
	crc = util_crc32c(crc, entries, entries_len);
	util_put_be32(head + 4, crc);
	kv_buf_append(buf, head, sizeof(head));
	kv_buf_append(buf, entries, entries_len);
	return 0;
}

int kv_wal_finish(struct kv_buf *buf)
{
	uint8_t tr[KV_WAL_TRAILER_SIZE];
	size_t off = KV_WAL_HEADER_SIZE;
	uint64_t records = 0;

	if (buf->len < KV_WAL_HEADER_SIZE)
		return -EINVAL;
	/* Count the records by their lengths (our own encoding, so the walk
	 * must end exactly at the end of the buffer). */
	while (off < buf->len) {
		if (buf->len - off < KV_WAL_RECORD_HEAD)
			return -EINVAL;
		size_t elen = util_get_be32(buf->data + off);
		if (buf->len - off - KV_WAL_RECORD_HEAD < elen)
			return -EINVAL;
		off += KV_WAL_RECORD_HEAD + elen;
		records++;
	}
	if (records > UINT32_MAX)
		return -EINVAL;
	size_t object_len;
	if (util_size_add(&object_len, buf->len, KV_WAL_TRAILER_SIZE))
		return -ENOMEM;
	int rc = kv_buf_reserve(buf, KV_WAL_TRAILER_SIZE);
	if (rc)
		return rc;
	util_put_be32(tr, (uint32_t)records);
	util_put_be64(tr + 4, (uint64_t)object_len);
	memcpy(tr + 12, kv_wal_end_magic, 8);
	uint32_t crc = util_crc32c(0, buf->data, buf->len);
	crc = util_crc32c(crc, tr, 20);
	util_put_be32(tr + 20, crc);
	kv_buf_append(buf, tr, sizeof(tr));
	return 0;
}

/* ---- batch entries ------------------------------------------------------- */

/*
 * One length-prefixed field of entry i (at offset at): a varint length in
 * [min, max] and that many bytes, all before end. On success *data points
 * at the bytes, *len is their count and *p is past them; otherwise
 * KV_ECORRUPT with why[] naming the field (what).
 */
static int kv_batch_field(const uint8_t **p, const uint8_t *end, const uint8_t **data,
			  uint64_t *len, uint64_t min, uint64_t max, const char *what, uint32_t i,
			  size_t at, char *why, size_t whysize)
{
	size_t n = kv_varint_get(*p, end, len);

	if (!n) {
		snprintf(why, whysize, "entry %" PRIu32 " at offset %zu: truncated or overlong %s "
			 "length", i, at, what);
		return KV_ECORRUPT;
	}
	*p += n;
	if (*len < min || *len > max || *len > (uint64_t)(end - *p)) {
		snprintf(why, whysize, "entry %" PRIu32 " at offset %zu: %s length %" PRIu64
			 " invalid or past the end", i, at, what, *len);
		return KV_ECORRUPT;
	}
	*data = *p;
	*p += *len;
	return 0;
}

/*
 * Walk count entries in [entries, entries + len), calling fn (if not NULL)
 * for each. On malformed input returns KV_ECORRUPT and describes the
 * fault in why[] (no logging: callers add their context). Otherwise 0 or
 * fn's error.
 */
static int kv_batch_walk(const uint8_t *entries, size_t len, uint32_t count,
			 kv_batch_entry_fn fn, void *arg, char *why, size_t whysize)
{
	const uint8_t *p = entries, *end = entries + len;
	uint64_t klen, vlen;

	for (uint32_t i = 0; i < count; i++) {
		size_t at = (size_t)(p - entries);
		if (p == end) {
			snprintf(why, whysize, "entry %" PRIu32 " of %" PRIu32 " at offset %zu: "
				 "past the end of the entries", i, count, at);
			return KV_ECORRUPT;
		}
		uint8_t type = *p++;
		if (type != KV_TYPE_VALUE && type != KV_TYPE_DELETE) {
			snprintf(why, whysize, "entry %" PRIu32 " at offset %zu: bad type %u", i,
				 at, (unsigned)type);
			return KV_ECORRUPT;
		}
		const uint8_t *key, *val = NULL;
		int rc = kv_batch_field(&p, end, &key, &klen, 1, KV_KEY_MAX, "key", i, at, why,
					whysize);
		if (rc)
			return rc;
		vlen = 0;
		if (type == KV_TYPE_VALUE) {
			rc = kv_batch_field(&p, end, &val, &vlen, 0, KV_VALUE_MAX, "value", i, at, why,
					    whysize);
			if (rc)
				return rc;
		}
		if (fn) {
			rc = fn(arg, (enum kv_type)type, key, (size_t)klen, val, (size_t)vlen);
			if (rc)
				return rc;
		}
	}
	if (p != end) {
		snprintf(why, whysize, "%zu bytes left after %" PRIu32 " entries",
			 (size_t)(end - p), count);
		return KV_ECORRUPT;
	}
	return 0;
}

int kv_batch_each(const uint8_t *entries, size_t len, uint32_t count,
		  kv_batch_entry_fn fn, void *arg)
{
	char why[160];

	/* Verify everything first: a batch applies whole or not at all. */
	int rc = kv_batch_walk(entries, len, count, NULL, NULL, why, sizeof(why));
	if (rc) {
		return KV_CORRUPT("batch", KV_CORRUPT_NO_OFFSET, "%zu bytes: %s", len, why);
	}
	if (!fn)
		return 0;
	rc = kv_batch_walk(entries, len, count, fn, arg, why, sizeof(why));
	assert(rc != KV_ECORRUPT);          /* verified above */
	return rc;
}

/* ---- decoding ------------------------------------------------------------ */

int kv_wal_decode(const char *name, const uint8_t *data, size_t len,
		  struct kv_wal_header *h, kv_wal_record_fn fn, void *arg)
{
	char why[256];
	uint64_t at = KV_CORRUPT_NO_OFFSET;   /* where the fault lies, for KV_CORRUPT */
	int rc;

	if (!name)
		name = "wal";
	if (len < KV_WAL_HEADER_SIZE + KV_WAL_TRAILER_SIZE) {
		snprintf(why, sizeof(why), "%zu bytes is too short for a WAL object", len);
		goto corrupt;
	}

	/* Header. */
	at = 0;
	if (memcmp(data, kv_wal_magic, 8) != 0) {
		snprintf(why, sizeof(why), "bad header magic");
		goto corrupt;
	}
	if (util_get_be32(data + 28) != util_crc32c(0, data, 28)) {
		snprintf(why, sizeof(why), "header checksum mismatch");
		goto corrupt;
	}
	uint32_t version = util_get_be32(data + 8);
	if (version != KV_WAL_VERSION) {
		snprintf(why, sizeof(why), "unsupported format version %" PRIu32, version);
		goto corrupt;
	}

	/* Trailer: checked before the records so a truncated object is
	 * reported as such rather than as a bad record. */
	const uint8_t *tr = data + len - KV_WAL_TRAILER_SIZE;
	at = len - KV_WAL_TRAILER_SIZE;
	if (memcmp(tr + 12, kv_wal_end_magic, 8) != 0) {
		snprintf(why, sizeof(why), "bad trailer magic (truncated object?)");
		goto corrupt;
	}
	uint64_t object_len = util_get_be64(tr + 4);
	if (object_len != (uint64_t)len) {
		snprintf(why, sizeof(why), "trailer says %" PRIu64 " bytes, object has %zu",
			 object_len, len);
		goto corrupt;
	}
	uint32_t record_count = util_get_be32(tr);

	/* Records: structure, per-record checksums, entries, seq order. */
	size_t off = KV_WAL_HEADER_SIZE;
	size_t records_end = len - KV_WAL_TRAILER_SIZE;
	uint64_t next_seq = 0;            /* lowest seq the next record may use */
	uint32_t nrec = 0;
	while (off < records_end) {
		size_t left = records_end - off;
		const uint8_t *r = data + off;
		at = off;
		if (left < KV_WAL_RECORD_HEAD) {
			snprintf(why, sizeof(why), "record %" PRIu32 " at offset %zu: header "
				 "runs past the end of the records", nrec, off);
			goto corrupt;
		}
		size_t elen = util_get_be32(r);
		if (elen > left - KV_WAL_RECORD_HEAD) {
			snprintf(why, sizeof(why), "record %" PRIu32 " at offset %zu: length %zu "
				 "runs past the end of the records", nrec, off, elen);
			goto corrupt;
		}
		if (util_get_be32(r + 4) != util_crc32c(0, r + 8, 12 + elen)) {
			snprintf(why, sizeof(why), "record %" PRIu32 " at offset %zu: checksum "
				 "mismatch", nrec, off);
			goto corrupt;
		}
		uint64_t first_seq = util_get_be64(r + 8);
		uint32_t count = util_get_be32(r + 16);
		if (count == 0 || first_seq < next_seq || first_seq > KV_SEQ_MAX ||
		    count - 1 > KV_SEQ_MAX - first_seq) {
			snprintf(why, sizeof(why), "record %" PRIu32 " at offset %zu: seqs %"
				 PRIu64 "+%" PRIu32 " out of order or out of range", nrec, off,
				 first_seq, count);
			goto corrupt;
		}
		char ewhy[160];
		if (kv_batch_walk(r + KV_WAL_RECORD_HEAD, elen, count, NULL, NULL, ewhy,
				  sizeof(ewhy))) {
			snprintf(why, sizeof(why), "record %" PRIu32 " at offset %zu: %s", nrec,
				 off, ewhy);
			goto corrupt;
		}
		next_seq = first_seq + count;
		off += KV_WAL_RECORD_HEAD + elen;
		if (nrec == UINT32_MAX) {
			snprintf(why, sizeof(why), "too many records");
			goto corrupt;
		}
		nrec++;
	}
	at = records_end;
	if (nrec != record_count) {
		snprintf(why, sizeof(why), "trailer counts %" PRIu32 " records, found %" PRIu32,
			 record_count, nrec);
		goto corrupt;
	}
	at = KV_CORRUPT_NO_OFFSET;
	if (util_get_be32(tr + 20) != util_crc32c(0, data, len - 4)) {
		snprintf(why, sizeof(why), "object checksum mismatch");
		goto corrupt;
	}

	/* Verified: now hand out the records. */
	if (h) {
		h->wal_id = util_get_be64(data + 12);
		h->writer_epoch = util_get_be64(data + 20);
	}
	if (!fn)
		return 0;
	for (off = KV_WAL_HEADER_SIZE; off < records_end;) {
		const uint8_t *r = data + off;
		size_t elen = util_get_be32(r);
		rc = fn(arg, util_get_be64(r + 8), util_get_be32(r + 16), r + KV_WAL_RECORD_HEAD,
			elen);
		if (rc)
			return rc;
		off += KV_WAL_RECORD_HEAD + elen;
	}
	return 0;

corrupt:
	return KV_CORRUPT(name, at, "%s", why);
}

/* ---- salvage ------------------------------------------------------------- */

/*
 * The valid prefix of a damaged object, for `fsck --scrub --repair`
 * (kv_repair.c): the header, if its magic, checksum and version hold, and
 * then the records in order for as long as each one's length, checksum,
 * seqs and entries hold. The walk ignores the trailer (a truncated or
 * damaged object has none to trust) and stops at the first record that
 * fails: nothing after a damaged record is handed out, since its length
 * field cannot be trusted to find the next one. fn gets each good record;
 * *good_end is the offset just past the last (KV_WAL_HEADER_SIZE when
 * there is none). Returns 0 (the header held), KV_ECORRUPT (it did not:
 * nothing is salvaged, no log line), or fn's error.
 */
int kv_wal_salvage(const uint8_t *data, size_t len, struct kv_wal_header *h,
		   kv_wal_record_fn fn, void *arg, size_t *good_end)
{
	size_t off = KV_WAL_HEADER_SIZE;
	uint64_t next_seq = 0;
	char why[160];

	*good_end = 0;
	if (len < KV_WAL_HEADER_SIZE || memcmp(data, kv_wal_magic, 8) != 0 ||
	    util_get_be32(data + 28) != util_crc32c(0, data, 28) ||
	    util_get_be32(data + 8) != KV_WAL_VERSION)
		return KV_ECORRUPT;
	h->wal_id = util_get_be64(data + 12);
	h->writer_epoch = util_get_be64(data + 20);
	*good_end = off;
	while (len - off >= KV_WAL_RECORD_HEAD) {
		const uint8_t *r = data + off;
		size_t elen = util_get_be32(r);
		if (elen > len - off - KV_WAL_RECORD_HEAD ||
		    util_get_be32(r + 4) != util_crc32c(0, r + 8, 12 + elen))
			break;
		uint64_t first_seq = util_get_be64(r + 8);
		uint32_t count = util_get_be32(r + 16);
		if (count == 0 || first_seq < next_seq || first_seq > KV_SEQ_MAX ||
		    count - 1 > KV_SEQ_MAX - first_seq ||
		    kv_batch_walk(r + KV_WAL_RECORD_HEAD, elen, count, NULL, NULL, why, sizeof(why)))
			break;
		if (fn) {
			int rc = fn(arg, first_seq, count, r + KV_WAL_RECORD_HEAD, elen);
			if (rc)
				return rc;
		}
		next_seq = first_seq + count;
		off += KV_WAL_RECORD_HEAD + elen;
		*good_end = off;
	}
	return 0;
}
