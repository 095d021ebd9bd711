/*
 * check_kv_wal.c - tests for kv/kv_wal.c: round trips of random batches,
 * fence objects, and that every corruption of an object (each single-byte
 * change, each truncation, crafted bad records) is KV_ECORRUPT with one
 * log line, never a crash and never a partial replay.
 */
#include "kv/kv_int.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/check_common.h"
#include "tests/check_main.h"

/* ---- helpers ------------------------------------------------------------- */

/* Collected replay: records and their entries, flattened. */
struct replay {
	uint32_t records;
	uint64_t seqs[64];
	uint32_t counts[64];
	struct kv_buf flat;               /* type, klen, key, vlen, val per entry */
	int fail_at;                      /* record fn fails here (-EIO), or -1 */
};

static int replay_entry(void *arg, enum kv_type type, const uint8_t *key, size_t klen,
			const uint8_t *val, size_t vlen)
{
	struct replay *rp = arg;
	ck_assert_int_eq(kv_buf_put_varint(&rp->flat, (uint64_t)type), 0);
	ck_assert_int_eq(kv_buf_put_varint(&rp->flat, klen), 0);
	ck_assert_int_eq(kv_buf_append(&rp->flat, key, klen), 0);
	ck_assert_int_eq(kv_buf_put_varint(&rp->flat, vlen), 0);
	ck_assert_int_eq(kv_buf_append(&rp->flat, val, vlen), 0);
	return 0;
}

static int replay_record(void *arg, uint64_t first_seq, uint32_t count, const uint8_t *entries,
			 size_t len)
{
	struct replay *rp = arg;
	if (rp->fail_at == (int)rp->records)
		return -EIO;
	ck_assert_uint_lt(rp->records, 64);
	rp->seqs[rp->records] = first_seq;
	rp->counts[rp->records] = count;
	rp->records++;
	return kv_batch_each(entries, len, count, replay_entry, rp);
}

/* Build a small valid object with nrec random records into out; the
 * expected replay goes into want. */
static void build_object(struct util_rand *r, int nrec, struct kv_buf *out, struct replay *want)
{
	struct kv_wal_header h = { .wal_id = 42, .writer_epoch = 7 };
	uint64_t seq = 1 + util_rand_below(r, 1000);

	memset(want, 0, sizeof(*want));
	ck_assert_int_eq(kv_wal_begin(out, &h), 0);
	for (int i = 0; i < nrec; i++) {
		struct kv_batch *b;
		ck_assert_int_eq(kv_batch_create(&b), 0);
		int n = 1 + (int)util_rand_below(r, 4);
		for (int j = 0; j < n; j++) {
			uint8_t k[16], v[32];
			size_t kl = 1 + util_rand_below(r, sizeof(k));
			size_t vl = util_rand_below(r, sizeof(v) + 1);
			for (size_t t = 0; t < kl; t++)
				k[t] = (uint8_t)util_rand_next(r);
			for (size_t t = 0; t < vl; t++)
				v[t] = (uint8_t)util_rand_next(r);
			if (util_rand_below(r, 4) == 0) {
				ck_assert_int_eq(kv_batch_delete(b, k, kl), 0);
				replay_entry(want, KV_TYPE_DELETE, k, kl, NULL, 0);
			} else {
				ck_assert_int_eq(kv_batch_put(b, k, kl, v, vl), 0);
				replay_entry(want, KV_TYPE_VALUE, k, kl, v, vl);
			}
		}
		ck_assert_int_eq(kv_wal_append(out, seq, b->count, b->rep.data, b->rep.len), 0);
		want->seqs[want->records] = seq;
		want->counts[want->records] = b->count;
		want->records++;
		seq += b->count + util_rand_below(r, 3);
		kv_batch_free(b);
	}
	ck_assert_int_eq(kv_wal_finish(out), 0);
}

static void replay_check(const struct replay *got, const struct replay *want)
{
	ck_assert_uint_eq(got->records, want->records);
	for (uint32_t i = 0; i < want->records; i++) {
		ck_assert_uint_eq(got->seqs[i], want->seqs[i]);
		ck_assert_uint_eq(got->counts[i], want->counts[i]);
	}
	ck_assert_uint_eq(got->flat.len, want->flat.len);
	ck_assert(got->flat.len == 0 || !memcmp(got->flat.data, want->flat.data, got->flat.len));
}

/* Decode expecting corruption: exactly one error line, no callback. */
static void expect_corrupt(const uint8_t *data, size_t len)
{
	struct replay rp;
	memset(&rp, 0, sizeof(rp));
	rp.fail_at = -1;
	uint64_t before = util_log_count(UTIL_LOG_ERROR);
	int rc = kv_wal_decode("wal/00000000000000000042", data, len, NULL, replay_record, &rp);
	ck_assert_int_eq(rc, KV_ECORRUPT);
	ck_assert_uint_eq(util_log_count(UTIL_LOG_ERROR), before + 1);
	ck_assert_uint_eq(rp.records, 0);
	kv_buf_free(&rp.flat);
}

/* ---- round trips --------------------------------------------------------- */

START_TEST(test_kv_wal__round_trip)
{
	struct util_rand r;
	util_rand_seed(&r, 1000 + (uint64_t)_i);
	for (int iter = 0; iter < 200; iter++) {
		struct kv_buf obj = { 0 };
		struct replay want, got;
		struct kv_wal_header h;
		build_object(&r, (int)util_rand_below(&r, 20), &obj, &want);
		memset(&got, 0, sizeof(got));
		got.fail_at = -1;
		ck_assert_int_eq(kv_wal_decode("w", obj.data, obj.len, &h, replay_record, &got), 0);
		ck_assert_uint_eq(h.wal_id, 42);
		ck_assert_uint_eq(h.writer_epoch, 7);
		replay_check(&got, &want);
		kv_buf_free(&obj);
		kv_buf_free(&want.flat);
		kv_buf_free(&got.flat);
	}
}
END_TEST

START_TEST(test_kv_wal__fence_object)
{
	struct kv_buf obj = { 0 };
	struct kv_wal_header h = { .wal_id = UINT64_MAX, .writer_epoch = 3 }, got = { 0 };
	struct replay rp;

	memset(&rp, 0, sizeof(rp));
	rp.fail_at = -1;
	ck_assert_int_eq(kv_wal_begin(&obj, &h), 0);
	ck_assert_int_eq(kv_wal_finish(&obj), 0);
	ck_assert_uint_eq(obj.len, 56);
	ck_assert_int_eq(kv_wal_decode(NULL, obj.data, obj.len, &got, replay_record, &rp), 0);
	ck_assert_uint_eq(got.wal_id, UINT64_MAX);
	ck_assert_uint_eq(got.writer_epoch, 3);
	ck_assert_uint_eq(rp.records, 0);
	/* Verify-only decode (no callback, no header). */
	ck_assert_int_eq(kv_wal_decode(NULL, obj.data, obj.len, NULL, NULL, NULL), 0);
	kv_buf_free(&obj);
}
END_TEST

/* The callback's error stops the walk and is returned as is. */
START_TEST(test_kv_wal__callback_error)
{
	struct util_rand r;
	struct kv_buf obj = { 0 };
	struct replay want, got;

	util_rand_seed(&r, 5);
	build_object(&r, 5, &obj, &want);
	memset(&got, 0, sizeof(got));
	got.fail_at = 2;
	ck_assert_int_eq(kv_wal_decode("w", obj.data, obj.len, NULL, replay_record, &got), -EIO);
	ck_assert_uint_eq(got.records, 2);
	kv_buf_free(&obj);
	kv_buf_free(&want.flat);
	kv_buf_free(&got.flat);
}
END_TEST

START_TEST(test_kv_wal__encoder_misuse)
{
	struct kv_buf obj = { 0 };
	struct kv_wal_header h = { 1, 1 };
	uint8_t e[4] = { KV_TYPE_DELETE, 1, 'k', 0 };

	ck_assert_int_eq(kv_wal_append(&obj, 1, 1, e, 3), -EINVAL);   /* no header */
	ck_assert_int_eq(kv_wal_finish(&obj), -EINVAL);
	ck_assert_int_eq(kv_wal_begin(&obj, &h), 0);
	ck_assert_int_eq(kv_wal_begin(&obj, &h), -EINVAL);            /* not empty */
	ck_assert_int_eq(kv_wal_append(&obj, 1, 0, e, 0), -EINVAL);   /* count 0 */
	ck_assert_int_eq(kv_wal_append(&obj, KV_SEQ_MAX, 2, e, 3), -EINVAL);
	ck_assert_int_eq(kv_wal_append(&obj, KV_SEQ_MAX, 1, e, 3), 0);
	ck_assert_int_eq(kv_wal_finish(&obj), 0);
	ck_assert_int_eq(kv_wal_decode("w", obj.data, obj.len, NULL, NULL, NULL), 0);
	kv_buf_free(&obj);
}
END_TEST

/* ---- corruption ---------------------------------------------------------- */

/* Every single-byte change anywhere in a small object is detected. */
START_TEST(test_kv_wal__every_byte_flip)
{
	struct util_rand r;
	struct kv_buf obj = { 0 };
	struct replay want;

	util_rand_seed(&r, 77);
	build_object(&r, 3, &obj, &want);
	uint8_t *copy = malloc(obj.len);
	ck_assert_ptr_nonnull(copy);
	int saved = check_stderr_quiet();
	for (size_t pos = 0; pos < obj.len; pos++) {
		for (int x = 1; x < 256; x++) {
			memcpy(copy, obj.data, obj.len);
			copy[pos] ^= (uint8_t)x;
			expect_corrupt(copy, obj.len);
		}
	}
	check_stderr_restore(saved);
	free(copy);
	kv_buf_free(&obj);
	kv_buf_free(&want.flat);
}
END_TEST

/* Every truncation (and every extension by garbage) is detected. */
START_TEST(test_kv_wal__every_truncation)
{
	struct util_rand r;
	struct kv_buf obj = { 0 };
	struct replay want;

	util_rand_seed(&r, 78);
	build_object(&r, 4, &obj, &want);
	int saved = check_stderr_quiet();
	for (size_t len = 0; len < obj.len; len++) {
		/* A private copy of exactly len bytes so ASan sees overreads. */
		uint8_t *copy = malloc(len ? len : 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, obj.data, len);
		expect_corrupt(copy, len);
		free(copy);
	}
	/* Two objects concatenated, or trailing garbage. */
	size_t n = obj.len;
	ck_assert_int_eq(kv_buf_reserve(&obj, n), 0);     /* append from itself */
	ck_assert_int_eq(kv_buf_append(&obj, obj.data, n), 0);
	expect_corrupt(obj.data, obj.len);
	obj.len = n + 1;
	obj.data[n] = 0;
	expect_corrupt(obj.data, obj.len);
	check_stderr_restore(saved);
	kv_buf_free(&obj);
	kv_buf_free(&want.flat);
}
END_TEST

/* Build an object whose records carry valid checksums but bad contents. */
static void crafted(const uint8_t *entries, size_t len, uint64_t first_seq, uint32_t count,
		    struct kv_buf *out)
{
	struct kv_wal_header h = { 42, 1 };
	out->len = 0;
	ck_assert_int_eq(kv_wal_begin(out, &h), 0);
	ck_assert_int_eq(kv_wal_append(out, first_seq, count, entries, len), 0);
	ck_assert_int_eq(kv_wal_finish(out), 0);
}

START_TEST(test_kv_wal__bad_records_with_valid_checksums)
{
	struct kv_buf obj = { 0 };
	uint8_t good[] = { KV_TYPE_VALUE, 1, 'k', 2, 'v', 'v', KV_TYPE_DELETE, 2, 'k', 'k' };
	uint8_t e[32];
	int saved = check_stderr_quiet();

	crafted(good, sizeof(good), 10, 2, &obj);
	ck_assert_int_eq(kv_wal_decode("w", obj.data, obj.len, NULL, NULL, NULL), 0);
	/* count mismatches */
	crafted(good, sizeof(good), 10, 1, &obj);
	expect_corrupt(obj.data, obj.len);
	crafted(good, sizeof(good), 10, 3, &obj);
	expect_corrupt(obj.data, obj.len);
	crafted(good, sizeof(good), 10, UINT32_MAX, &obj);   /* huge count */
	expect_corrupt(obj.data, obj.len);
	/* bad type */
	memcpy(e, good, sizeof(good));
	e[0] = 2;
	crafted(e, sizeof(good), 10, 2, &obj);
	expect_corrupt(obj.data, obj.len);
	/* key length past the end */
	memcpy(e, good, sizeof(good));
	e[7] = 3;
	crafted(e, sizeof(good), 10, 2, &obj);
	expect_corrupt(obj.data, obj.len);
	/* empty key */
	uint8_t empty_key[] = { KV_TYPE_DELETE, 0 };
	crafted(empty_key, sizeof(empty_key), 10, 1, &obj);
	expect_corrupt(obj.data, obj.len);
	/* overlong varint key length (11 continuation bytes) */
	memset(e, 0x80, sizeof(e));
	e[0] = KV_TYPE_DELETE;
	crafted(e, 12, 10, 1, &obj);
	expect_corrupt(obj.data, obj.len);
	/* value length 2^63 */
	uint8_t bigv[] = { KV_TYPE_VALUE, 1, 'k', 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
			   0x80, 0x80, 0x01 };
	crafted(bigv, sizeof(bigv), 10, 1, &obj);
	expect_corrupt(obj.data, obj.len);
	/* trailing bytes after the entries */
	crafted(good, sizeof(good) - 1, 10, 2, &obj);
	expect_corrupt(obj.data, obj.len);

	/* Seqs going backwards across records. */
	struct kv_wal_header h = { 42, 1 };
	obj.len = 0;
	ck_assert_int_eq(kv_wal_begin(&obj, &h), 0);
	ck_assert_int_eq(kv_wal_append(&obj, 10, 2, good, sizeof(good)), 0);
	ck_assert_int_eq(kv_wal_append(&obj, 11, 2, good, sizeof(good)), 0);   /* overlaps */
	ck_assert_int_eq(kv_wal_finish(&obj), 0);
	expect_corrupt(obj.data, obj.len);

	/* Unknown version with a valid header checksum. */
	crafted(good, sizeof(good), 10, 2, &obj);
	util_put_be32(obj.data + 8, 2);
	util_put_be32(obj.data + 28, util_crc32c(0, obj.data, 28));
	expect_corrupt(obj.data, obj.len);

	/* Trailer record count off by one, object checksum fixed up. */
	crafted(good, sizeof(good), 10, 2, &obj);
	uint8_t *tr = obj.data + obj.len - 24;
	util_put_be32(tr, 2);
	util_put_be32(tr + 20, util_crc32c(0, obj.data, obj.len - 4));
	expect_corrupt(obj.data, obj.len);
	check_stderr_restore(saved);
	kv_buf_free(&obj);
}
END_TEST

/* The log line names the object, the record and its offset. */
START_TEST(test_kv_wal__error_message_names_object)
{
	struct util_rand r;
	struct kv_buf obj = { 0 };
	struct replay want;
	char line[512];

	util_rand_seed(&r, 79);
	build_object(&r, 3, &obj, &want);
	/* Offset of record 1: header + record 0. */
	size_t off1 = 32 + 20 + util_get_be32(obj.data + 32);
	obj.data[off1 + 21] ^= 1;         /* record 1, first entry key length */

	FILE *f;
	int saved = check_stderr_capture(&f);
	int rc = kv_wal_decode("wal/00000000000000000042", obj.data, obj.len, NULL, NULL, NULL);
	check_stderr_restore(saved);
	ck_assert_int_eq(rc, KV_ECORRUPT);
	rewind(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	char want_msg[128];
	snprintf(want_msg, sizeof(want_msg),
		 "wal/00000000000000000042: record 1 at offset %zu: checksum mismatch", off1);
	ck_assert_msg(strstr(line, want_msg), "log line was: %s", line);
	ck_assert_ptr_null(fgets(line, sizeof(line), f));          /* one line only */
	struct kv_corrupt_info ci;                                 /* and the record */
	kv_corrupt_last(&ci);
	ck_assert_str_eq(ci.object, "wal/00000000000000000042");
	ck_assert_uint_eq(ci.offset, off1);
	ck_assert_ptr_nonnull(strstr(ci.reason, "checksum mismatch"));
	ck_assert_uint_ge(ci.count, 1);
	fclose(f);
	kv_buf_free(&obj);
	kv_buf_free(&want.flat);
}
END_TEST

static Suite *kv_wal_suite(void)
{
	Suite *s = suite_create("kv_wal");
	TCase *tc;

	tc = tcase_create("round_trip");
	tcase_add_loop_test(tc, test_kv_wal__round_trip, 0, 3);
	tcase_add_test(tc, test_kv_wal__fence_object);
	tcase_add_test(tc, test_kv_wal__callback_error);
	tcase_add_test(tc, test_kv_wal__encoder_misuse);
	suite_add_tcase(s, tc);

	tc = tcase_create("corruption");
	tcase_add_test(tc, test_kv_wal__every_byte_flip);
	tcase_add_test(tc, test_kv_wal__every_truncation);
	tcase_add_test(tc, test_kv_wal__bad_records_with_valid_checksums);
	tcase_add_test(tc, test_kv_wal__error_message_names_object);
	tcase_set_timeout(tc, 600);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(kv_wal_suite)
