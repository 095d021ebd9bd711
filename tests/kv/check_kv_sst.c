/*
 * check_kv_sst.c - tests of kv/kv_sst_id.c, kv/kv_sst_build.c and
 * kv/kv_sst_read.c (one Suite per source file, plus one for corruption).
 *
 * The reader is tested over a tiny in-test struct obj_backend that serves
 * get() from one buffer and counts calls (tstore below), so these tests
 * need no objstore backend and can corrupt the stored bytes at will.
 */
#include "kv/kv_int.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>

#include "tests/check_common.h"
#include "tests/check_main.h"

/* ---- in-test store: one object served from a buffer ---------------------- */

struct tstore {
	struct obj_backend base;
	char name[64];
	uint8_t *data;                    /* the object (owned) */
	size_t len;
	atomic_int gets;                  /* get() calls */
	atomic_uint_fast64_t bytes;       /* bytes they returned */
	atomic_uint_fast64_t hi;          /* highest end of a range returned */
	int fail;                         /* nonzero: get() returns this */
	unsigned delay_us;                /* each get() takes this long */
	atomic_int gate;                  /* nonzero: get() waits until it is cleared ... */
	atomic_int parked;                /* ... counted here meanwhile */
	int fail_others;                  /* nonzero: get() from a thread other than `main` fails so */
	pthread_t main;
};

static int tstore__get(struct obj_backend *b, const char *name, uint64_t off, uint64_t len,
		       void **out, size_t *out_len)
{
	struct tstore *s = (struct tstore *)b;
	s->gets++;
	*out = NULL;
	*out_len = 0;
	if (s->delay_us)
		usleep(s->delay_us);
	if (s->gate) {
		s->parked++;
		while (s->gate)
			usleep(1000);
		s->parked--;
	}
	if (s->fail)
		return s->fail;
	if (s->fail_others && !pthread_equal(pthread_self(), s->main))
		return s->fail_others;
	if (strcmp(name, s->name))
		return -ENOENT;
	if (off >= s->len)
		return 0;
	if (len > s->len - off)
		len = s->len - off;
	*out = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(*out);
	memcpy(*out, s->data + off, len);
	*out_len = len;
	s->bytes += len;
	uint64_t hi = s->hi;
	while (off + len > hi && !atomic_compare_exchange_weak(&s->hi, &hi, off + len))
		;
	return 0;
}

static void tstore_init(struct tstore *s, const struct kv_sst_meta *meta, uint8_t *data, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->base.version = OBJ_BACKEND_VERSION;
	s->base.kind = "test";
	s->base.get = tstore__get;
	kv_sst_id_name(&meta->id, s->name, sizeof(s->name));
	s->data = data;
	s->len = len;
}

/* ---- entries ------------------------------------------------------------ */

struct ent {
	uint8_t *ikey;
	size_t iklen;
	uint8_t *val;
	size_t vlen;
};

static struct ent ent_make(const void *ukey, size_t uklen, uint64_t seq, enum kv_type type,
			   const void *val, size_t vlen)
{
	struct ent e = { .iklen = uklen + KV_IKEY_TRAILER, .vlen = vlen };
	e.ikey = malloc(e.iklen);
	e.val = malloc(vlen ? vlen : 1);
	ck_assert(e.ikey && e.val);
	kv_ikey_make(e.ikey, ukey, uklen, seq, type);
	if (vlen)
		memcpy(e.val, val, vlen);
	return e;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	return kv_ikey_cmp(x->ikey, x->iklen, y->ikey, y->iklen);
}

static void ents_free(struct ent *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].ikey);
		free(e[i].val);
	}
	free(e);
}

/* Sort and drop duplicate internal keys; returns the new count. */
static size_t ents_sort(struct ent *e, size_t n)
{
	size_t m = 0;
	qsort(e, n, sizeof(*e), ent_cmp);
	for (size_t i = 0; i < n; i++) {
		if (m && ent_cmp(&e[m - 1], &e[i]) == 0) {
			free(e[i].ikey);
			free(e[i].val);
			continue;
		}
		e[m++] = e[i];
	}
	return m;
}

/*
 * n random entries: user keys "u/" + 1..20 letters from a 16-letter
 * alphabet (so neighbours share prefixes), about 1 in 8 keys with 2-3
 * versions, 1 in 10 versions a tombstone; values 0..200 bytes, 1% up to
 * 64 KiB, from a 16-letter alphabet (compressible, ~4 bits/byte).
 */
static struct ent *ents_random(size_t n, uint64_t seed, size_t *out_n)
{
	struct util_rand r;
	struct ent *e = malloc(n * sizeof(*e));
	uint8_t key[32], *val = malloc(65536);
	size_t m = 0;

	ck_assert(e && val);
	util_rand_seed(&r, seed);
	while (m < n) {
		size_t klen = 2 + 1 + util_rand_below(&r, 20);
		key[0] = 'u';
		key[1] = '/';
		for (size_t i = 2; i < klen; i++)
			key[i] = (uint8_t)('a' + util_rand_below(&r, 16));
		size_t versions = util_rand_below(&r, 8) == 0 ? 2 + util_rand_below(&r, 2) : 1;
		for (size_t v = 0; v < versions && m < n; v++) {
			uint64_t seq = 1 + util_rand_below(&r, 1000000);
			enum kv_type t = util_rand_below(&r, 10) == 0 ? KV_TYPE_DELETE : KV_TYPE_VALUE;
			size_t vlen = 0;
			if (t == KV_TYPE_VALUE) {
				vlen = util_rand_below(&r, 100) == 0 ? util_rand_below(&r, 65537)
								    : util_rand_below(&r, 201);
				for (size_t i = 0; i < vlen; i++)
					val[i] = (uint8_t)('A' + util_rand_below(&r, 16));
			}
			e[m++] = ent_make(key, klen, seq, t, val, vlen);
		}
	}
	free(val);
	*out_n = ents_sort(e, m);
	return e;
}

static void build(const struct ent *e, size_t n, const struct kv_sst_options *opt, uint8_t **obj,
		  size_t *len, struct kv_sst_meta *meta)
{
	struct kv_sst_builder *b;
	memset(meta, 0, sizeof(*meta));
	kv_sst_id_new(&meta->id);
	ck_assert_int_eq(kv_sst_builder_create(&b, opt), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(kv_sst_builder_add(b, e[i].ikey, e[i].iklen, e[i].val, e[i].vlen), 0);
	ck_assert_int_eq(kv_sst_builder_finish(b, obj, len, meta), 0);
	kv_sst_builder_free(b);
	ck_assert_uint_eq(meta->size, *len);
	ck_assert_uint_eq(meta->entries, n);
}

static void iter_key(struct kv_iter *it, const uint8_t **k, size_t *kl)
{
	ck_assert(it->ops->valid(it));
	it->ops->key(it, k, kl);
}

static void assert_at(struct kv_iter *it, const struct ent *e)
{
	const uint8_t *k, *v;
	size_t kl, vl;
	iter_key(it, &k, &kl);
	it->ops->value(it, &v, &vl);
	ck_assert_uint_eq(kl, e->iklen);
	ck_assert_mem_eq(k, e->ikey, kl);
	ck_assert_uint_eq(vl, e->vlen);
	if (vl)
		ck_assert_mem_eq(v, e->val, vl);
}

/* ---- kv_sst_id.c -------------------------------------------------------- */

START_TEST(test_kv_sst__id_name_is_ulid)
{
	struct kv_sst_id a, b;
	char na[64], nb[64];
	const char *alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

	kv_sst_id_new(&a);
	kv_sst_id_new(&b);
	ck_assert(memcmp(&a, &b, sizeof(a)) != 0);
	kv_sst_id_name(&a, na, sizeof(na));
	kv_sst_id_name(&b, nb, sizeof(nb));
	ck_assert_uint_eq(strlen(na), 34);
	ck_assert_int_eq(strncmp(na, "sst/", 4), 0);
	ck_assert_str_eq(na + 30, ".sst");
	for (int i = 4; i < 30; i++)
		ck_assert_ptr_nonnull(strchr(alphabet, na[i]));
	ck_assert(na[4] <= '7');                 /* top 2 of 130 bits are zero */
	/* The first 10 characters are the millisecond timestamp. */
	uint64_t ms = 0;
	for (int i = 0; i < 6; i++)
		ms = ms << 8 | a.b[i];
	uint64_t now = util_wall_ns() / 1000000u;
	ck_assert_uint_le(ms, now);
	ck_assert_uint_ge(ms + 10000, now);
	ck_assert_int_eq(strncmp(na, nb, 4 + 6), 0);  /* same ~minute */

	/* Known value: all-zero and all-one ids. */
	struct kv_sst_id z = { { 0 } };
	kv_sst_id_name(&z, na, sizeof(na));
	ck_assert_str_eq(na, "sst/00000000000000000000000000.sst");
	memset(&z, 0xff, sizeof(z));
	kv_sst_id_name(&z, na, sizeof(na));
	ck_assert_str_eq(na, "sst/7ZZZZZZZZZZZZZZZZZZZZZZZZZ.sst");
	/* Short buffers are truncated, NUL-terminated. */
	kv_sst_id_name(&z, na, 5);
	ck_assert_str_eq(na, "sst/");
}
END_TEST

START_TEST(test_kv_sst__meta_copy_and_clear)
{
	struct kv_sst_meta m = { 0 }, c;
	kv_sst_id_new(&m.id);
	m.size = 123;
	m.entries = 4;
	m.min_seq = 1;
	m.max_seq = 9;
	m.smallest = (uint8_t *)strdup("aaaaaaaaaa");
	m.smallest_len = 10;
	m.largest = (uint8_t *)strdup("zzzzzzzzzz");
	m.largest_len = 10;
	ck_assert_int_eq(kv_sst_meta_copy(&c, &m), 0);
	ck_assert_ptr_ne(c.smallest, m.smallest);
	ck_assert_mem_eq(c.smallest, m.smallest, 10);
	ck_assert_mem_eq(c.largest, m.largest, 10);
	ck_assert_mem_eq(&c.id, &m.id, sizeof(m.id));
	ck_assert_uint_eq(c.size, 123);
	kv_sst_meta_clear(&m);
	ck_assert_ptr_null(m.smallest);
	ck_assert_uint_eq(m.size, 0);
	kv_sst_meta_clear(&c);
	/* Copying a meta without keys. */
	ck_assert_int_eq(kv_sst_meta_copy(&c, &m), 0);
	ck_assert_ptr_null(c.smallest);
	kv_sst_meta_clear(&c);
}
END_TEST

/* ---- kv_sst_build.c ----------------------------------------------------- */

START_TEST(test_kv_sst__build_rejects_bad_input)
{
	struct kv_sst_builder *b;
	uint8_t k1[16], k2[16], *obj;
	size_t len;
	struct kv_sst_meta meta = { 0 };
	struct kv_sst_options bad = { .restart_interval = -1 };

	ck_assert_int_eq(kv_sst_builder_create(&b, &bad), -EINVAL);
	ck_assert_int_eq(kv_sst_builder_create(&b, NULL), 0);
	kv_ikey_make(k1, "a", 1, 5, KV_TYPE_VALUE);
	kv_ikey_make(k2, "b", 1, 5, KV_TYPE_VALUE);
	ck_assert_int_eq(kv_sst_builder_add(b, k1, 4, "x", 1), -EINVAL);      /* < 8 bytes */
	ck_assert_int_eq(kv_sst_builder_add(b, k2, 9, "x", 1), 0);
	ck_assert_int_eq(kv_sst_builder_add(b, k2, 9, "x", 1), -EINVAL);     /* duplicate */
	ck_assert_int_eq(kv_sst_builder_add(b, k1, 9, "x", 1), -EINVAL);     /* backwards */
	kv_ikey_make(k2, "b", 1, 4, KV_TYPE_VALUE);                           /* older: after */
	ck_assert_int_eq(kv_sst_builder_add(b, k2, 9, "y", 1), 0);
	kv_ikey_make(k2, "b", 1, 5, KV_TYPE_VALUE);                           /* newer: before */
	ck_assert_int_eq(kv_sst_builder_add(b, k2, 9, "y", 1), -EINVAL);
	kv_ikey_make(k2, "c", 1, 5, KV_TYPE_VALUE);
	k2[8] = 7;                                                            /* bad type */
	ck_assert_int_eq(kv_sst_builder_add(b, k2, 9, "y", 1), -EINVAL);
	ck_assert_int_eq(kv_sst_builder_finish(b, &obj, &len, &meta), 0);
	ck_assert_int_eq(kv_sst_builder_finish(b, &obj, &len, &meta), -EINVAL);
	ck_assert_int_eq(kv_sst_builder_add(b, k2, 9, "y", 1), -EINVAL);
	ck_assert_uint_eq(meta.entries, 2);
	ck_assert_uint_eq(meta.min_seq, 4);
	ck_assert_uint_eq(meta.max_seq, 5);
	ck_assert_int_eq(kv_sst_check_buffer(obj, len), 0);
	free(obj);
	kv_sst_meta_clear(&meta);
	kv_sst_builder_free(b);
	kv_sst_builder_free(NULL);
}
END_TEST

START_TEST(test_kv_sst__build_meta_and_layout)
{
	size_t n, len;
	struct ent *e = ents_random(3000, 11, &n);
	uint8_t *obj;
	struct kv_sst_meta meta;
	uint64_t lo = UINT64_MAX, hi = 0;

	build(e, n, NULL, &obj, &len, &meta);
	for (size_t i = 0; i < n; i++) {
		uint64_t s = kv_ikey_seq(e[i].ikey, e[i].iklen);
		lo = s < lo ? s : lo;
		hi = s > hi ? s : hi;
	}
	ck_assert_uint_eq(meta.min_seq, lo);
	ck_assert_uint_eq(meta.max_seq, hi);
	ck_assert_uint_eq(meta.smallest_len, e[0].iklen);
	ck_assert_mem_eq(meta.smallest, e[0].ikey, e[0].iklen);
	ck_assert_uint_eq(meta.largest_len, e[n - 1].iklen);
	ck_assert_mem_eq(meta.largest, e[n - 1].ikey, e[n - 1].iklen);
	/* Footer fields describe an index that ends at the footer, right
	 * after the filter. */
	const uint8_t *f = obj + len - KV_SST_FOOTER_SIZE;
	ck_assert_uint_eq(util_get_be64(f + 52), KV_SST_MAGIC);
	ck_assert_uint_eq(util_get_be32(f + 48), KV_SST_VERSION);
	ck_assert_uint_eq(util_get_be64(f + 0) + util_get_be64(f + 8) + KV_SST_TRAILER_SIZE,
			  len - KV_SST_FOOTER_SIZE);
	ck_assert_uint_eq(util_get_be64(f + 16) + util_get_be64(f + 24) + KV_SST_TRAILER_SIZE,
			  util_get_be64(f + 0));
	ck_assert_uint_eq(util_get_be64(f + 32), n);
	ck_assert_uint_gt(util_get_be64(f + 40), 1);
	/* bloom: 10 bits per distinct user key in whole 64-byte lines + the kind byte */
	size_t distinct = 0;
	for (size_t i = 0; i < n; i++)
		distinct += !i || kv_ukey_cmp(e[i].ikey, e[i].iklen - 8, e[i - 1].ikey,
					      e[i - 1].iklen - 8) != 0;
	ck_assert_uint_lt(distinct, n);
	ck_assert_uint_eq(util_get_be64(f + 24), (distinct * 10 + 511) / 512 * 64 + 1);
	ck_assert_int_eq(kv_sst_check_buffer(obj, len), 0);
	free(obj);
	kv_sst_meta_clear(&meta);
	ents_free(e, n);
}
END_TEST

START_TEST(test_kv_sst__build_empty_and_no_filter)
{
	struct kv_sst_meta meta;
	struct kv_sst_reader *r;
	struct kv_iter *it;
	struct tstore st;
	uint8_t *obj, *val;
	size_t len, vlen;

	build(NULL, 0, NULL, &obj, &len, &meta);
	ck_assert_ptr_null(meta.smallest);
	ck_assert_int_eq(kv_sst_check_buffer(obj, len), 0);
	tstore_init(&st, &meta, obj, len);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, NULL, &meta), 0);
	ck_assert_int_eq(kv_sst_get(r, "a", 1, KV_SEQ_MAX, &val, &vlen), 0);
	ck_assert_int_eq(kv_sst_iter_create(&it, r), 0);
	it->ops->seek_first(it);
	ck_assert(!it->ops->valid(it));
	ck_assert_int_eq(it->ops->status(it), 0);
	it->ops->free(it);
	ck_assert_int_eq(kv_sst_verify(r), 0);
	kv_sst_unref(r);
	free(obj);
	kv_sst_meta_clear(&meta);

	/* bloom_bits_per_key < 0: no filter block; lookups still work. */
	struct kv_sst_options o = { .bloom_bits_per_key = -1 };
	struct ent e[2] = { ent_make("k1", 2, 3, KV_TYPE_VALUE, "v1", 2),
			    ent_make("k2", 2, 3, KV_TYPE_DELETE, NULL, 0) };
	build(e, 2, &o, &obj, &len, &meta);
	const uint8_t *f = obj + len - KV_SST_FOOTER_SIZE;
	ck_assert_uint_eq(util_get_be64(f + 24), 0);
	ck_assert_uint_eq(util_get_be64(f + 16), util_get_be64(f + 0));
	tstore_init(&st, &meta, obj, len);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, NULL, &meta), 0);
	ck_assert_int_eq(kv_sst_get(r, "k1", 2, KV_SEQ_MAX, &val, &vlen), 1);
	ck_assert_uint_eq(vlen, 2);
	ck_assert_mem_eq(val, "v1", 2);
	free(val);
	ck_assert_int_eq(kv_sst_get(r, "k2", 2, KV_SEQ_MAX, &val, &vlen), 2);
	ck_assert_int_eq(kv_sst_get(r, "k3", 2, KV_SEQ_MAX, &val, &vlen), 0);
	ck_assert_int_eq(kv_sst_verify(r), 0);
	kv_sst_unref(r);
	ck_assert_int_eq(kv_sst_check_buffer(obj, len), 0);
	free(obj);
	kv_sst_meta_clear(&meta);
	free(e[0].ikey), free(e[0].val), free(e[1].ikey), free(e[1].val);
}
END_TEST

START_TEST(test_kv_sst__build_compression_pays)
{
	size_t n, plain_len, zstd_len;
	struct ent *e = ents_random(5000, 12, &n);
	uint8_t *plain, *packed;
	struct kv_sst_meta m1, m2;
	struct kv_sst_options z = { .compression_level = 3 };

	build(e, n, NULL, &plain, &plain_len, &m1);
	build(e, n, &z, &packed, &zstd_len, &m2);
	ck_assert_msg(zstd_len < plain_len * 3 / 4, "zstd %zu vs plain %zu", zstd_len, plain_len);
	ck_assert_int_eq(kv_sst_check_buffer(packed, zstd_len), 0);
	/* Incompressible values are stored as they are. */
	struct util_rand r;
	util_rand_seed(&r, 5);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < e[i].vlen; j++)
			e[i].val[j] = (uint8_t)util_rand_next(&r);
	free(plain);
	free(packed);
	kv_sst_meta_clear(&m1);
	kv_sst_meta_clear(&m2);
	build(e, n, NULL, &plain, &plain_len, &m1);
	build(e, n, &z, &packed, &zstd_len, &m2);
	ck_assert_uint_ge(zstd_len, plain_len * 95 / 100);
	ck_assert_int_eq(kv_sst_check_buffer(packed, zstd_len), 0);
	free(plain);
	free(packed);
	kv_sst_meta_clear(&m1);
	kv_sst_meta_clear(&m2);
	ents_free(e, n);
}
END_TEST

/* COMPRESSION BACKOFF: a run of incompressible 64 KiB values (file chunks
 * of random data) is tried by zstd ever more rarely, and compressible values
 * after them are compressed again within KV_SST_SKIP_MAX (16) blocks. */
START_TEST(test_kv_sst__compression_backs_off_on_incompressible_data)
{
	const size_t nrand = 100, ncomp = 100, vlen = 65536;
	struct kv_sst_options z = { .compression_level = -1 };
	struct kv_sst_builder *b;
	struct kv_sst_meta meta = { 0 };
	struct util_rand r;
	uint8_t *val = malloc(vlen), *obj;
	size_t len;
	uint64_t tries_rand = 0;

	ck_assert_ptr_nonnull(val);
	util_rand_seed(&r, 77);
	ck_assert_int_eq(kv_sst_builder_create(&b, &z), 0);
	for (size_t i = 0; i < nrand + ncomp; i++) {
		char key[16];
		snprintf(key, sizeof(key), "c/%05zu", i);
		for (size_t j = 0; j < vlen; j++)
			val[j] = i < nrand ? (uint8_t)util_rand_next(&r) : (uint8_t)('a' + j % 7);
		struct ent e = ent_make(key, strlen(key), 10 + i, KV_TYPE_VALUE, val, vlen);
		ck_assert_int_eq(kv_sst_builder_add(b, e.ikey, e.iklen, e.val, e.vlen), 0);
		free(e.ikey);
		free(e.val);
		if (i == nrand)       /* the last random block is written now */
			tries_rand = kv_sst_builder_compress_tries(b);
	}
	ck_assert_int_eq(kv_sst_builder_finish(b, &obj, &len, &meta), 0);
	/* Skips of 1, 2, 4, 8, 16, 16, ...: tries at blocks 0, 2, 5, 10, 19,
	 * 36, 53, 70, 87 of the 100. */
	ck_assert_msg(tries_rand >= 5 && tries_rand <= 12, "%llu tries on %zu random blocks",
		      (unsigned long long)tries_rand, nrand);
	ck_assert_uint_ge(kv_sst_builder_compress_tries(b), tries_rand + ncomp - 16);
	/* The random blocks stored raw, at most 16 compressible ones too. */
	ck_assert_msg(len < (nrand + 17) * vlen, "table of %zu bytes", len);
	ck_assert_uint_ge(len, nrand * vlen);
	ck_assert_int_eq(kv_sst_check_buffer(obj, len), 0);
	kv_sst_builder_free(b);
	kv_sst_meta_clear(&meta);
	free(obj);
	free(val);
}
END_TEST

/* ---- kv_sst_read.c ------------------------------------------------------ */

static void roundtrip(int level)
{
	size_t n, len;
	struct ent *e = ents_random(100000, 1000 + (uint64_t)level, &n);
	struct kv_sst_options o = { .compression_level = level };
	struct kv_sst_meta meta;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct kv_iter *it;
	struct tstore st;
	uint8_t *obj;
	size_t i;

	build(e, n, &o, &obj, &len, &meta);
	tstore_init(&st, &meta, obj, len);
	ck_assert_int_eq(kv_cache_create(&cache, 8 << 20), 0);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &meta), 0);
	ck_assert_int_eq(st.gets, 2);              /* footer, then filter + index */

	ck_assert_int_eq(kv_sst_iter_create(&it, r), 0);
	for (i = 0, it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it), i++)
		assert_at(it, &e[i]);
	ck_assert_int_eq(it->ops->status(it), 0);
	ck_assert_uint_eq(i, n);
	it->ops->free(it);

	/* Every user key at "now": its newest version. */
	for (i = 0; i < n; i++) {
		if (i && !kv_ukey_cmp(e[i].ikey, e[i].iklen - 8, e[i - 1].ikey, e[i - 1].iklen - 8))
			continue;
		uint8_t *v;
		size_t vl;
		int g = kv_sst_get(r, e[i].ikey, e[i].iklen - 8, KV_SEQ_MAX, &v, &vl);
		if (kv_ikey_type(e[i].ikey, e[i].iklen) == KV_TYPE_DELETE) {
			ck_assert_int_eq(g, 2);
			continue;
		}
		ck_assert_int_eq(g, 1);
		ck_assert_uint_eq(vl, e[i].vlen);
		if (vl)
			ck_assert_mem_eq(v, e[i].val, vl);
		free(v);
	}
	uint64_t hits, misses;
	kv_cache_stats(cache, &hits, &misses, NULL);
	ck_assert_uint_gt(hits, 0);
	ck_assert_int_eq(kv_sst_verify(r), 0);
	ck_assert_int_eq(kv_cache_check_invariants(cache), 0);
	kv_sst_unref(r);
	ck_assert_int_eq(kv_sst_check_buffer(obj, len), 0);
	kv_cache_free(cache);
	free(obj);
	kv_sst_meta_clear(&meta);
	ents_free(e, n);
}

START_TEST(test_kv_sst__roundtrip_100k_plain)
{
	roundtrip(0);
}
END_TEST

START_TEST(test_kv_sst__roundtrip_100k_zstd)
{
	roundtrip(3);
}
END_TEST

/* Keys "k" + 6 digits of 2*i (so odd numbers fall between entries), seq
 * 100, small blocks so block boundaries are everywhere. */
static struct ent *even_keys(size_t n)
{
	struct ent *e = malloc(n * sizeof(*e));
	char k[24], v[32];
	ck_assert_ptr_nonnull(e);
	for (size_t i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "k%06zu", 2 * i);
		snprintf(v, sizeof(v), "value-%zu", i);
		e[i] = ent_make(k, strlen(k), 100, KV_TYPE_VALUE, v, strlen(v));
	}
	return e;
}

static void seek_to(struct kv_iter *it, const char *ukey, uint64_t seq)
{
	uint8_t k[64];
	size_t l = strlen(ukey);
	kv_ikey_make(k, ukey, l, seq, KV_TYPE_VALUE);
	it->ops->seek(it, k, l + 8);
}

START_TEST(test_kv_sst__seek_boundaries)
{
	const size_t n = 2000;
	struct ent *e = even_keys(n);
	struct kv_sst_options o = { .block_size = 256, .restart_interval = 4 };
	struct kv_sst_meta meta;
	struct kv_sst_reader *r;
	struct kv_iter *it;
	struct tstore st;
	uint8_t *obj;
	size_t len;
	char k[16];

	build(e, n, &o, &obj, &len, &meta);
	ck_assert_uint_gt(util_get_be64(obj + len - KV_SST_FOOTER_SIZE + 40), 50);  /* many blocks */
	tstore_init(&st, &meta, obj, len);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, NULL, &meta), 0);
	ck_assert_int_eq(kv_sst_iter_create(&it, r), 0);

	seek_to(it, "a", KV_SEQ_MAX);                 /* before the first key */
	assert_at(it, &e[0]);
	seek_to(it, "k000000", KV_SEQ_MAX);           /* the first key */
	assert_at(it, &e[0]);
	seek_to(it, "k000000", 100);
	assert_at(it, &e[0]);
	seek_to(it, "k000000", 99);                   /* past its only version */
	assert_at(it, &e[1]);
	snprintf(k, sizeof(k), "k%06zu", 2 * (n - 1));
	seek_to(it, k, KV_SEQ_MAX);                   /* the last key */
	assert_at(it, &e[n - 1]);
	it->ops->next(it);
	ck_assert(!it->ops->valid(it));
	ck_assert_int_eq(it->ops->status(it), 0);
	seek_to(it, k, 99);                           /* just past the last entry */
	ck_assert(!it->ops->valid(it));
	seek_to(it, "z", KV_SEQ_MAX);                 /* after the last key */
	ck_assert(!it->ops->valid(it));
	ck_assert_int_eq(it->ops->status(it), 0);
	/* Every key and every gap (including all block boundaries), then
	 * walk a few entries on from there across blocks. */
	for (size_t i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "k%06zu", 2 * i);
		seek_to(it, k, KV_SEQ_MAX);
		assert_at(it, &e[i]);
		snprintf(k, sizeof(k), "k%06zu", 2 * i + 1);
		seek_to(it, k, KV_SEQ_MAX);
		if (i + 1 == n) {
			ck_assert(!it->ops->valid(it));
			continue;
		}
		for (size_t j = i + 1; j < n && j < i + 4; j++) {
			assert_at(it, &e[j]);
			it->ops->next(it);
		}
	}
	/* seek_first after reaching the end. */
	it->ops->seek_first(it);
	assert_at(it, &e[0]);
	ck_assert_int_eq(it->ops->status(it), 0);
	it->ops->free(it);
	kv_sst_unref(r);
	free(obj);
	kv_sst_meta_clear(&meta);
	ents_free(e, n);
}
END_TEST

/*
 * The reader narrows index seeks with 8-byte "fences" taken after the
 * prefix all index keys share (kv_sst_read.c, INDEX FENCES). Keys here
 * share a long prefix, differ within and beyond the 8 fence bytes, contain
 * NUL bytes (zero padding must not reorder "x" and "x\0") and vary in
 * length; probes include keys shorter than the shared prefix and keys
 * outside it. Every seek must land where a linear scan of the model does.
 */
START_TEST(test_kv_sst__index_fences_exact)
{
	static const char alpha[] = { 0, 'a', 'b' };
	const size_t want = 6000;
	struct kv_sst_options o = { .block_size = 64, .restart_interval = 2 };
	struct ent *e = malloc(want * sizeof(*e));
	struct kv_sst_meta meta;
	struct kv_sst_reader *r;
	struct kv_iter *it;
	struct util_rand rnd;
	struct tstore st;
	uint8_t key[64], *obj;
	size_t n, len;

	ck_assert_ptr_nonnull(e);
	util_rand_seed(&rnd, 0xfe4ce5);
	for (size_t i = 0; i < want; i++) {
		size_t kl = 10 + util_rand_below(&rnd, 14);
		memcpy(key, "prefix/xx/", 10);
		for (size_t j = 10; j < kl; j++)
			key[j] = (uint8_t)alpha[util_rand_below(&rnd, 3)];
		e[i] = ent_make(key, kl, 1 + util_rand_below(&rnd, 3), KV_TYPE_VALUE, "v", 1);
	}
	n = ents_sort(e, want);
	build(e, n, &o, &obj, &len, &meta);
	ck_assert_uint_gt(util_get_be64(obj + len - KV_SST_FOOTER_SIZE + 40), 500);  /* blocks */
	tstore_init(&st, &meta, obj, len);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, NULL, &meta), 0);
	ck_assert_int_eq(kv_sst_iter_create(&it, r), 0);
	for (size_t p = 0; p < 20000; p++) {
		size_t kl = util_rand_below(&rnd, 24), lb = 0;
		uint64_t seq = util_rand_below(&rnd, 5);
		uint8_t ik[64 + KV_IKEY_TRAILER];
		memcpy(key, "prefix/xx/", 10);
		if (util_rand_below(&rnd, 10) == 0)
			key[util_rand_below(&rnd, 10)] ^= 1;    /* outside the prefix */
		for (size_t j = 10; j < kl; j++)
			key[j] = (uint8_t)alpha[util_rand_below(&rnd, 3)];
		kv_ikey_make(ik, key, kl, seq, KV_TYPE_VALUE);
		while (lb < n && kv_ikey_cmp(e[lb].ikey, e[lb].iklen, ik, kl + KV_IKEY_TRAILER) < 0)
			lb++;
		it->ops->seek(it, ik, kl + KV_IKEY_TRAILER);
		ck_assert_int_eq(it->ops->status(it), 0);
		if (lb == n)
			ck_assert(!it->ops->valid(it));
		else
			assert_at(it, &e[lb]);
	}
	it->ops->free(it);
	kv_sst_unref(r);
	free(obj);
	kv_sst_meta_clear(&meta);
	ents_free(e, n);
}
END_TEST

START_TEST(test_kv_sst__get_with_snapshots)
{
	/* Key i has versions at seq 10, 20, 30 (newest first in the SST);
	 * the version at 20 is a tombstone for odd i. */
	const size_t keys = 500;
	struct ent *e = malloc(keys * 3 * sizeof(*e));
	struct kv_sst_options o = { .block_size = 512 };
	struct kv_sst_meta meta;
	struct kv_sst_reader *r;
	struct tstore st;
	uint8_t *obj, *v;
	size_t len, vl, n = 0;
	char k[16], val[32];

	for (size_t i = 0; i < keys; i++) {
		snprintf(k, sizeof(k), "key%05zu", i * 2);
		for (uint64_t s = 30; s >= 10; s -= 10) {
			snprintf(val, sizeof(val), "%zu@%llu", i, (unsigned long long)s);
			if (s == 20 && i % 2)
				e[n++] = ent_make(k, strlen(k), s, KV_TYPE_DELETE, NULL, 0);
			else
				e[n++] = ent_make(k, strlen(k), s, KV_TYPE_VALUE, val, strlen(val));
		}
	}
	build(e, n, &o, &obj, &len, &meta);
	tstore_init(&st, &meta, obj, len);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, NULL, &meta), 0);
	for (size_t i = 0; i < keys; i++) {
		snprintf(k, sizeof(k), "key%05zu", i * 2);
		static const uint64_t snaps[] = { 0, 5, 9, 10, 15, 19, 20, 25, 30, 31, 1000,
						  KV_SEQ_MAX, UINT64_MAX };
		for (size_t j = 0; j < sizeof(snaps) / sizeof(snaps[0]); j++) {
			uint64_t s = snaps[j], want = s >= 30 ? 30 : s >= 20 ? 20 : s >= 10 ? 10 : 0;
			int g = kv_sst_get(r, k, strlen(k), s, &v, &vl);
			if (want == 0) {
				ck_assert_int_eq(g, 0);
			} else if (want == 20 && i % 2) {
				ck_assert_int_eq(g, 2);
			} else {
				ck_assert_int_eq(g, 1);
				snprintf(val, sizeof(val), "%zu@%llu", i, (unsigned long long)want);
				ck_assert_uint_eq(vl, strlen(val));
				ck_assert_mem_eq(v, val, vl);
				free(v);
			}
		}
		/* Absent keys: in gaps, before and after. */
		snprintf(k, sizeof(k), "key%05zu", i * 2 + 1);
		ck_assert_int_eq(kv_sst_get(r, k, strlen(k), KV_SEQ_MAX, &v, &vl), 0);
	}
	ck_assert_int_eq(kv_sst_get(r, "a", 1, KV_SEQ_MAX, &v, &vl), 0);
	ck_assert_int_eq(kv_sst_get(r, "key", 3, KV_SEQ_MAX, &v, &vl), 0);
	ck_assert_int_eq(kv_sst_get(r, "z", 1, KV_SEQ_MAX, &v, &vl), 0);
	ck_assert_int_eq(kv_sst_get(r, "", 0, KV_SEQ_MAX, &v, &vl), 0);
	kv_sst_unref(r);
	free(obj);
	kv_sst_meta_clear(&meta);
	ents_free(e, n);
}
END_TEST

START_TEST(test_kv_sst__cache_and_refs)
{
	const size_t n = 2000;
	struct ent *e = even_keys(n);
	struct kv_sst_options o = { .block_size = 1024 };
	struct kv_sst_meta meta;
	struct kv_sst_reader *r, *r2;
	struct kv_cache *cache;
	struct kv_iter *it;
	struct tstore st;
	uint8_t *obj, *v;
	size_t len, vl;
	char k[16];

	build(e, n, &o, &obj, &len, &meta);
	tstore_init(&st, &meta, obj, len);
	ck_assert_int_eq(kv_cache_create(&cache, 1 << 20), 0);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &meta), 0);
	ck_assert_int_eq(st.gets, 2);
	snprintf(k, sizeof(k), "k%06d", 500);
	ck_assert_int_eq(kv_sst_get(r, k, strlen(k), KV_SEQ_MAX, &v, &vl), 1);
	free(v);
	ck_assert_int_eq(st.gets, 3);
	ck_assert_int_eq(kv_sst_get(r, k, strlen(k), KV_SEQ_MAX, &v, &vl), 1);
	free(v);
	ck_assert_int_eq(st.gets, 3);                 /* from the cache */
	/* Absent key rejected by the bloom filter: no block read at all. */
	int reads = st.gets, rejected = 0;
	for (int i = 0; i < 100; i++) {
		snprintf(k, sizeof(k), "k%06d", 2 * i + 1);
		ck_assert_int_eq(kv_sst_get(r, k, strlen(k), KV_SEQ_MAX, &v, &vl), 0);
	}
	rejected = 100 - (st.gets - reads);
	ck_assert_int_ge(rejected, 90);

	/* Two readers of one object do not share cache keys. */
	ck_assert_int_eq(kv_sst_open(&r2, &st.base, cache, &meta), 0);
	reads = st.gets;
	snprintf(k, sizeof(k), "k%06d", 500);
	ck_assert_int_eq(kv_sst_get(r2, k, strlen(k), KV_SEQ_MAX, &v, &vl), 1);
	free(v);
	ck_assert_int_eq(st.gets, reads + 1);
	kv_sst_unref(r2);

	/* An iterator keeps the reader alive after the caller's unref. */
	ck_assert_int_eq(kv_sst_iter_create(&it, r), 0);
	kv_sst_ref(r);
	kv_sst_unref(r);
	kv_sst_unref(r);
	size_t i = 0;
	for (it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it))
		assert_at(it, &e[i++]);
	ck_assert_uint_eq(i, n);
	it->ops->free(it);
	ck_assert_int_eq(kv_cache_check_invariants(cache), 0);
	kv_cache_free(cache);
	free(obj);
	kv_sst_meta_clear(&meta);
	ents_free(e, n);
}
END_TEST

START_TEST(test_kv_sst__store_errors_pass_through)
{
	const size_t n = 100;
	struct ent *e = even_keys(n);
	struct kv_sst_meta meta;
	struct kv_sst_reader *r;
	struct kv_iter *it;
	struct tstore st;
	uint8_t *obj, *v;
	size_t len, vl;

	build(e, n, NULL, &obj, &len, &meta);
	tstore_init(&st, &meta, obj, len);
	st.fail = -ENOENT;
	ck_assert_int_eq(kv_sst_open(&r, &st.base, NULL, &meta), -ENOENT);
	st.fail = 0;
	ck_assert_int_eq(kv_sst_open(&r, &st.base, NULL, &meta), 0);
	st.fail = -EIO;
	ck_assert_int_eq(kv_sst_get(r, "k000010", 7, KV_SEQ_MAX, &v, &vl), -EIO);
	ck_assert_int_eq(kv_sst_verify(r), -EIO);
	ck_assert_int_eq(kv_sst_iter_create(&it, r), 0);
	it->ops->seek_first(it);
	ck_assert(!it->ops->valid(it));
	ck_assert_int_eq(it->ops->status(it), -EIO);
	it->ops->free(it);
	kv_sst_unref(r);
	free(obj);
	kv_sst_meta_clear(&meta);
	ents_free(e, n);
}
END_TEST

/* ---- corruption --------------------------------------------------------- */

/* Tests that corrupt thousands of objects would log thousands of lines:
 * they send stderr to /dev/null while they run (check_stderr_quiet). */

struct corrupt_fixture {
	struct ent *e;
	size_t n;
	uint8_t *obj;
	size_t len;
	struct kv_sst_meta meta;
	uint64_t index_off, index_size, filter_off, filter_size;
};

static struct corrupt_fixture cf;

static void corrupt_setup(void)
{
	struct kv_sst_options o = { .block_size = 512, .compression_level = 3 };
	cf.n = 300;
	cf.e = even_keys(cf.n);
	build(cf.e, cf.n, &o, &cf.obj, &cf.len, &cf.meta);
	const uint8_t *f = cf.obj + cf.len - KV_SST_FOOTER_SIZE;
	cf.index_off = util_get_be64(f + 0);
	cf.index_size = util_get_be64(f + 8);
	cf.filter_off = util_get_be64(f + 16);
	cf.filter_size = util_get_be64(f + 24);
	ck_assert_uint_gt(cf.filter_size, 0);
}

static void corrupt_teardown(void)
{
	free(cf.obj);
	kv_sst_meta_clear(&cf.meta);
	ents_free(cf.e, cf.n);
}

/*
 * Open the object (len bytes, claimed size `size`) and use it every way:
 * returns the first error seen, or 0 if everything succeeded.
 */
static int use_sst(uint8_t *obj, size_t len, uint64_t size)
{
	struct kv_sst_meta m = cf.meta;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct kv_iter *it;
	struct tstore st;
	uint8_t *v;
	size_t vl;
	int rc;

	m.size = size;
	tstore_init(&st, &m, obj, len);
	ck_assert_int_eq(kv_cache_create(&cache, 1 << 20), 0);
	rc = kv_sst_open(&r, &st.base, cache, &m);
	if (rc)
		goto out;
	for (size_t i = 0; i < cf.n && !rc; i += 7) {
		int g = kv_sst_get(r, cf.e[i].ikey, cf.e[i].iklen - 8, KV_SEQ_MAX, &v, &vl);
		if (g == 1)
			free(v);
		rc = g < 0 ? g : 0;
	}
	if (!rc) {
		ck_assert_int_eq(kv_sst_iter_create(&it, r), 0);
		for (it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it))
			;
		rc = it->ops->status(it);
		it->ops->free(it);
	}
	if (!rc)
		rc = kv_sst_verify(r);
	kv_sst_unref(r);
out:
	ck_assert_int_eq(kv_cache_check_invariants(cache), 0);
	kv_cache_free(cache);
	return rc;
}

static void flip_and_expect_corrupt(size_t at)
{
	uint64_t logged = util_log_count(UTIL_LOG_ERROR);
	cf.obj[at] ^= 0x20;
	ck_assert_int_eq(use_sst(cf.obj, cf.len, cf.len), KV_ECORRUPT);
	cf.obj[at] ^= 0x20;
	ck_assert_uint_gt(util_log_count(UTIL_LOG_ERROR), logged);
}

START_TEST(test_kv_sst__corrupt_baseline_is_clean)
{
	ck_assert_int_eq(use_sst(cf.obj, cf.len, cf.len), 0);
	ck_assert_int_eq(kv_sst_check_buffer(cf.obj, cf.len), 0);
}
END_TEST

START_TEST(test_kv_sst__corrupt_data_block)
{
	flip_and_expect_corrupt(10);                        /* first block */
	flip_and_expect_corrupt(cf.filter_off / 2);         /* somewhere in the middle */
	flip_and_expect_corrupt(cf.filter_off - 1);         /* last block's CRC */
	flip_and_expect_corrupt(cf.filter_off - 5);         /* last block's type byte */
}
END_TEST

START_TEST(test_kv_sst__corrupt_index)
{
	flip_and_expect_corrupt(cf.index_off);
	flip_and_expect_corrupt(cf.index_off + cf.index_size / 2);
	flip_and_expect_corrupt(cf.index_off + cf.index_size + 2);   /* its CRC */
}
END_TEST

START_TEST(test_kv_sst__corrupt_filter)
{
	flip_and_expect_corrupt(cf.filter_off);
	flip_and_expect_corrupt(cf.filter_off + cf.filter_size - 1);  /* k */
}
END_TEST

START_TEST(test_kv_sst__corrupt_footer)
{
	int saved_stderr = check_stderr_quiet();
	for (size_t i = 0; i < KV_SST_FOOTER_SIZE; i++)
		flip_and_expect_corrupt(cf.len - KV_SST_FOOTER_SIZE + i);
	check_stderr_restore(saved_stderr);
}
END_TEST

START_TEST(test_kv_sst__corrupt_truncated)
{
	int saved_stderr = check_stderr_quiet();
	/* The manifest's size is right, the object is short ... */
	size_t cuts[] = { 0, 1, 63, 64, 65, cf.len / 2, cf.len - 65, cf.len - 64, cf.len - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		ck_assert_int_eq(use_sst(cf.obj, cuts[i], cf.len), KV_ECORRUPT);
	/* ... or the object and the size agree on a truncated length. */
	for (size_t l = 0; l < cf.len; l += 97)
		ck_assert_int_eq(use_sst(cf.obj, l, l), KV_ECORRUPT);
	for (size_t l = cf.len - 200; l < cf.len; l++)
		ck_assert_int_eq(use_sst(cf.obj, l, l), KV_ECORRUPT);
	/* Extra bytes after the footer: the footer is not where it should be. */
	uint8_t *longer = malloc(cf.len + 10);
	memcpy(longer, cf.obj, cf.len);
	memset(longer + cf.len, 0, 10);
	ck_assert_int_eq(use_sst(longer, cf.len + 10, cf.len + 10), KV_ECORRUPT);
	free(longer);
	check_stderr_restore(saved_stderr);
}
END_TEST

START_TEST(test_kv_sst__corrupt_every_byte)
{
	int saved_stderr = check_stderr_quiet();
	/* CRC32C catches every single-byte change; so must the reader, in
	 * every region. check_buffer must agree. */
	for (size_t i = 0; i < cf.len; i++) {
		uint8_t old = cf.obj[i];
		cf.obj[i] = (uint8_t)(old + 1 + (i % 255));
		ck_assert_int_eq(kv_sst_check_buffer(cf.obj, cf.len), KV_ECORRUPT);
		cf.obj[i] = old;
	}
	ck_assert_int_eq(kv_sst_check_buffer(cf.obj, cf.len), 0);
	check_stderr_restore(saved_stderr);
}
END_TEST

/*
 * The object (cf.obj, one byte changed) opened through kv_sst_open_rebuilt:
 * returns its result; when it opened, every entry must read back exactly
 * (iteration in order, and point gets).
 */
static int rebuilt_reads_all(void)
{
	struct kv_sst_reader *r;
	struct kv_iter *it;
	struct tstore st;
	int rc;

	tstore_init(&st, &cf.meta, cf.obj, cf.len);
	rc = kv_sst_open_rebuilt(&r, &st.base, NULL, &cf.meta, "test");
	if (rc)
		return rc;
	ck_assert_int_eq(kv_sst_iter_create(&it, r), 0);
	it->ops->seek_first(it);
	for (size_t i = 0; i < cf.n; i++) {
		assert_at(it, &cf.e[i]);
		it->ops->next(it);
	}
	ck_assert(!it->ops->valid(it));
	ck_assert_int_eq(it->ops->status(it), 0);
	it->ops->free(it);
	for (size_t i = 0; i < cf.n; i += 3) {
		uint8_t *v;
		size_t vl;
		ck_assert_int_eq(kv_sst_get(r, cf.e[i].ikey, cf.e[i].iklen - 8, KV_SEQ_MAX, &v,
					    &vl), 1);
		ck_assert_uint_eq(vl, cf.e[i].vlen);
		ck_assert_mem_eq(v, cf.e[i].val, vl);
		free(v);
	}
	ck_assert_uint_eq(kv_sst_entries(r), cf.n);
	kv_sst_unref(r);
	return 0;
}

START_TEST(test_kv_sst__rebuild_index_from_data_blocks)
{
	int saved_stderr = check_stderr_quiet();
	/* Every byte of the filter, the index and the footer: the data
	 * blocks hold everything, and the rebuilt index finds all of it. */
	for (size_t i = cf.filter_off; i < cf.len; i++) {
		cf.obj[i] ^= 0x41;
		ck_assert_int_eq(rebuilt_reads_all(), 0);
		cf.obj[i] ^= 0x41;
	}
	/* A damaged data block as well (or alone): never a partial index. */
	size_t blocks[] = { 0, 10, cf.filter_off / 2, cf.filter_off - 5, cf.filter_off - 1 };
	for (size_t b = 0; b < sizeof(blocks) / sizeof(blocks[0]); b++) {
		cf.obj[blocks[b]] ^= 0x41;
		ck_assert_int_eq(rebuilt_reads_all(), KV_ECORRUPT);
		cf.obj[cf.index_off + 3] ^= 0x41;
		ck_assert_int_eq(rebuilt_reads_all(), KV_ECORRUPT);
		cf.obj[cf.index_off + 3] ^= 0x41;
		cf.obj[blocks[b]] ^= 0x41;
	}
	/* The manifest records more entries than the blocks hold (a table
	 * that lost its last blocks would look so): refused. */
	cf.meta.entries++;
	ck_assert_int_eq(rebuilt_reads_all(), KV_ECORRUPT);
	cf.meta.entries--;
	ck_assert_int_eq(rebuilt_reads_all(), 0);
	check_stderr_restore(saved_stderr);
}
END_TEST

START_TEST(test_kv_sst__check_buffer_garbage)
{
	int saved_stderr = check_stderr_quiet();
	struct util_rand r;
	uint8_t buf[4096];
	util_rand_seed(&r, 99);
	for (int i = 0; i < 2000; i++) {
		size_t l = util_rand_below(&r, sizeof(buf));
		for (size_t j = 0; j < l; j++)
			buf[j] = (uint8_t)util_rand_next(&r);
		ck_assert_int_eq(kv_sst_check_buffer(buf, l), KV_ECORRUPT);
	}
	ck_assert_int_eq(kv_sst_check_buffer(NULL, 0), KV_ECORRUPT);
	check_stderr_restore(saved_stderr);
}
END_TEST

/* ---- read-ahead (READ-AHEAD in kv_sst_read.c) ----------------------------- */

#define RA_N 256                          /* blocks in the table ... */
#define RA_VLEN 65536                     /* ... each one 64 KiB value, like an fs chunk */

struct ra_table {
	struct ent *e;
	size_t n;
	uint8_t *obj;
	size_t len;
	struct kv_sst_meta meta;
	uint64_t data_end;                /* the data blocks end here */
	uint64_t bsize;                   /* stored bytes of each block (all alike) */
};

/* n keys "c000000".. with incompressible 64 KiB values, stored without
 * compression: one block per value, all of one size. */
static void ra_table_make(struct ra_table *t, size_t n)
{
	struct kv_sst_options o = { .block_size = 4096 };
	struct util_rand r;
	uint8_t *val = malloc(RA_VLEN);
	char k[16];

	memset(t, 0, sizeof(*t));
	t->n = n;
	t->e = malloc(n * sizeof(*t->e));
	ck_assert(val && t->e);
	util_rand_seed(&r, 4242);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < RA_VLEN; j += 8)
			util_put_be64(val + j, util_rand_next(&r));
		snprintf(k, sizeof(k), "c%06zu", i);
		t->e[i] = ent_make(k, strlen(k), 7, KV_TYPE_VALUE, val, RA_VLEN);
	}
	free(val);
	build(t->e, n, &o, &t->obj, &t->len, &t->meta);
	const uint8_t *f = t->obj + t->len - KV_SST_FOOTER_SIZE;
	t->data_end = util_get_be64(f + 16);              /* the filter starts there */
	ck_assert_uint_eq(util_get_be64(f + 40), n);      /* one block per value */
	ck_assert_uint_eq(t->data_end % n, 0);
	t->bsize = t->data_end / n;
}

static void ra_table_free(struct ra_table *t)
{
	free(t->obj);
	kv_sst_meta_clear(&t->meta);
	ents_free(t->e, t->n);
}

/* kv_sst_get of key i; a value found must be byte-identical to the one
 * built. No ck_assert: threads call it too. Returns the get's result, or
 * -1000 for a wrong value. */
static int ra_get(struct kv_sst_reader *r, const struct ra_table *t, size_t i)
{
	uint8_t *v;
	size_t vl;
	int g = kv_sst_get(r, t->e[i].ikey, t->e[i].iklen - 8, KV_SEQ_MAX, &v, &vl);
	if (g == 1) {
		if (vl != t->e[i].vlen || memcmp(v, t->e[i].val, vl))
			g = -1000;
		free(v);
	}
	return g;
}

/* Loop tests run _i == 0 without fill threads (no prefetch), 1 with. */
static struct kv_cache *ra_cache(size_t capacity, int fill)
{
	struct kv_cache *c;
	ck_assert_int_eq(kv_cache_create(&c, capacity), 0);
	if (fill)
		ck_assert_int_eq(kv_ra_fill_start(c), 0);
	return c;
}

START_TEST(test_kv_sst__readahead_sequential_gets)
{
	struct ra_table t;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct kv_ra_stats ra;
	struct tstore st;

	ra_table_make(&t, RA_N);
	tstore_init(&st, &t.meta, t.obj, t.len);
	cache = ra_cache(64 << 20, _i);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	int gets0 = st.gets;
	uint64_t bytes0 = st.bytes;
	for (size_t i = 0; i < RA_N; i++)
		ck_assert_int_eq(ra_get(r, &t, i), 1);
	int gets = st.gets - gets0;
	/* 256 blocks: a guess of 1 MiB (15 blocks: the next would pass 1
	 * MiB), then spans doubling from 2 MiB up to 8 MiB (31, 63, then
	 * 127 blocks): 5 GETs, prefetched or not. */
	ck_assert_int_le(gets, 6);
	ck_assert_uint_eq(st.bytes - bytes0, t.data_end);   /* each block once */
	kv_ra_stats(cache, &ra);
	ck_assert_uint_eq(ra.spans, (uint64_t)gets);
	/* (every block of a prefetched span counts, not the first of the others) */
	ck_assert_uint_ge(ra.blocks, RA_N - (uint64_t)gets);
	ck_assert_uint_le(ra.blocks, RA_N - 1);
	if (!_i)
		ck_assert_uint_eq(ra.blocks, RA_N - (uint64_t)gets);
	if (!_i)
		ck_assert_uint_eq(ra.waits, 0);
	/* All of it is cached now: reading again costs nothing. */
	for (size_t i = 0; i < RA_N; i++)
		ck_assert_int_eq(ra_get(r, &t, i), 1);
	ck_assert_int_eq(st.gets - gets0, gets);
	kv_sst_unref(r);
	ck_assert_int_eq(kv_cache_check_invariants(cache), 0);
	kv_cache_free(cache);
	ra_table_free(&t);
}
END_TEST

/* A random order over a table: ra_get of every block in perm[from, to). */
static void ra_get_perm(struct kv_sst_reader *r, const struct ra_table *t, const size_t *perm,
			size_t from, size_t to)
{
	for (size_t k = from; k < to; k++)
		ck_assert_int_eq(ra_get(r, t, perm[k]), 1);
}

/* Wait up to 10 s for the warm GETs to have fetched `bytes`. */
static void ra_wait_warm(struct kv_cache *cache, uint64_t bytes)
{
	struct kv_ra_stats ra;

	for (int ms = 0; ms < 10000; ms++) {
		kv_ra_stats(cache, &ra);
		if (ra.warm_bytes >= bytes)
			return;
		usleep(1000);
	}
}

static void ra_perm(size_t *perm, size_t n, uint64_t seed)
{
	struct util_rand rnd;
	util_rand_seed(&rnd, seed);
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = util_rand_below(&rnd, i + 1), x = perm[i];
		perm[i] = perm[j];
		perm[j] = x;
	}
}

/*
 * GUESSES: a miss in no stream fetches a span while guesses pay. Read at
 * random, a table stops guessing after a few guesses whose next block
 * nobody read: the bytes fetched are then about the bytes asked for, even
 * with a cache that has room for all of it.
 */
START_TEST(test_kv_sst__readahead_random_gets_stop_guessing)
{
	struct ra_table t;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct kv_ra_stats ra;
	struct tstore st;
	size_t perm[RA_N];

	ra_table_make(&t, RA_N);
	tstore_init(&st, &t.meta, t.obj, t.len);
	ra_perm(perm, RA_N, 77);
	ck_assert_int_eq(kv_cache_create(&cache, 64 << 20), 0);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	uint64_t bytes0 = st.bytes;
	ra_get_perm(r, &t, perm, 0, RA_N / 4);
	kv_ra_stats(cache, &ra);
	/* 64 of 256 blocks asked for (4 MiB): the first guesses (4 of 1 MiB
	 * while the 4 streams fill, then 512 KiB, 256 KiB) and no more. */
	ck_assert_uint_le(ra.guesses, 8);
	ck_assert_uint_le(st.bytes - bytes0, (uint64_t)RA_N / 4 * t.bsize + (6u << 20));
	uint64_t guesses = ra.guesses, bytes1 = st.bytes;
	ra_get_perm(r, &t, perm, RA_N / 4, RA_N / 2);
	kv_ra_stats(cache, &ra);
	ck_assert_uint_le(ra.guesses - guesses, 2);
	/* 64 more: at most one block each (fewer where a guess had it). */
	ck_assert_uint_le(st.bytes - bytes1, (uint64_t)RA_N / 4 * t.bsize + (1u << 20));
	kv_sst_unref(r);
	kv_cache_free(cache);
	ra_table_free(&t);
}
END_TEST

/* GUESSES: the first miss of a sequential read guesses, and its second
 * block confirms the guess; no guess once the cache is 7/8 full. */
START_TEST(test_kv_sst__readahead_guess_while_cache_has_room)
{
	struct ra_table t;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct kv_ra_stats ra;
	struct tstore st;

	ra_table_make(&t, RA_N);
	tstore_init(&st, &t.meta, t.obj, t.len);
	/* A cache of 16 MiB (256 blocks, the table): 8 blocks read in
	 * order from each of 8 places: every run starts with a guess (of 1
	 * MiB, which holds the 8). */
	ck_assert_int_eq(kv_cache_create(&cache, 16 << 20), 0);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	for (size_t k = 0; k < 8; k++)
		for (size_t i = 0; i < 8; i++)
			ck_assert_int_eq(ra_get(r, &t, k * 32 + i), 1);
	kv_ra_stats(cache, &ra);
	ck_assert_uint_eq(ra.guesses, 8);
	ck_assert_int_eq(kv_ra_room(cache, 1 << 20), 1);
	/* The rest of the table: the cache fills past 7/8. */
	for (size_t i = 0; i < RA_N; i++)
		ck_assert_int_eq(ra_get(r, &t, i), 1);
	ck_assert_int_eq(kv_ra_room(cache, 1 << 20), 0);
	kv_sst_unref(r);
	kv_cache_free(cache);
	ra_table_free(&t);
}
END_TEST

/*
 * WARM: with warming on for tables this small, random reads that stopped
 * guessing get the whole data region fetched on the fill threads (for a
 * disk cache under the store: here the bytes are only counted), once,
 * and the block cache is not filled with it.
 */
START_TEST(test_kv_sst__readahead_random_table_warmed)
{
	struct ra_table t;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct kv_ra_stats ra;
	struct tstore st;
	size_t perm[RA_N];
	uint64_t cached;

	ra_table_make(&t, RA_N);
	tstore_init(&st, &t.meta, t.obj, t.len);
	ra_perm(perm, RA_N, 78);
	cache = ra_cache(64 << 20, 1);
	kv_ra_set_warm(cache, _i ? t.data_end : t.data_end - 1);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	ra_get_perm(r, &t, perm, 0, RA_N / 8);
	ra_wait_warm(cache, t.data_end);                  /* the warm GETs, chained */
	kv_ra_fill_stop(cache);
	kv_ra_stats(cache, &ra);
	kv_cache_stats(cache, NULL, NULL, &cached);
	if (_i) {
		ck_assert_uint_eq(ra.warm_bytes, t.data_end);     /* each byte once */
	} else {                                          /* one byte too big: never */
		ck_assert_uint_eq(ra.warm_bytes, 0);
	}
	/* The block cache holds what was asked for and the first guesses. */
	ck_assert_uint_le(cached, (uint64_t)RA_N / 8 * t.bsize + (6u << 20));
	kv_sst_unref(r);
	kv_cache_free(cache);
	ra_table_free(&t);
}
END_TEST

/*
 * WARM starts at the third random miss, and only then: a lookup and then
 * a read of the whole table in key order (one stream, which continues)
 * warm nothing; two lookups apart warm nothing, a third warms the table.
 */
START_TEST(test_kv_sst__readahead_warm_needs_three_random_misses)
{
	struct ra_table t;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct kv_ra_stats ra;
	struct tstore st;

	ra_table_make(&t, RA_N);
	tstore_init(&st, &t.meta, t.obj, t.len);
	cache = ra_cache(64 << 20, 1);
	kv_ra_set_warm(cache, t.data_end);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	ck_assert_int_eq(ra_get(r, &t, RA_N / 2), 1);
	if (_i == 0) {                                    /* then in key order, whole */
		for (size_t k = 0; k < RA_N; k++)
			ck_assert_int_eq(ra_get(r, &t, k), 1);
	} else {
		ck_assert_int_eq(ra_get(r, &t, 7), 1);
	}
	usleep(100 * 1000);                               /* a warm would be under way */
	kv_ra_stats(cache, &ra);
	ck_assert_uint_eq(ra.warm_bytes, 0);
	if (_i == 1) {
		ck_assert_int_eq(ra_get(r, &t, RA_N - 20), 1);    /* the third, apart */
		ra_wait_warm(cache, t.data_end);
	}
	kv_ra_fill_stop(cache);
	kv_ra_stats(cache, &ra);
	ck_assert_uint_eq(ra.warm_bytes, _i == 1 ? t.data_end : 0);
	kv_sst_unref(r);
	kv_cache_free(cache);
	ra_table_free(&t);
}
END_TEST

START_TEST(test_kv_sst__readahead_iterator)
{
	struct ra_table t;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct kv_ra_stats ra;
	struct kv_iter *it;
	struct tstore st;
	size_t i;

	ra_table_make(&t, RA_N);
	tstore_init(&st, &t.meta, t.obj, t.len);
	cache = ra_cache(64 << 20, _i);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	int gets0 = st.gets;
	uint64_t bytes0 = st.bytes;
	ck_assert_int_eq(kv_sst_iter_create(&it, r), 0);
	for (i = 0, it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it), i++)
		assert_at(it, &t.e[i]);
	ck_assert_int_eq(it->ops->status(it), 0);
	ck_assert_uint_eq(i, RA_N);
	ck_assert_int_le(st.gets - gets0, 16);
	ck_assert_uint_eq(st.bytes - bytes0, t.data_end);
	kv_ra_stats(cache, &ra);
	ck_assert_uint_ge(ra.spans, 4);
	/* Again: all from the cache. */
	int gets = st.gets;
	for (i = 0, it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it), i++)
		assert_at(it, &t.e[i]);
	ck_assert_uint_eq(i, RA_N);
	ck_assert_int_eq(st.gets, gets);
	it->ops->free(it);
	kv_sst_unref(r);
	kv_cache_free(cache);

	/* Through a small cache, spans are capped at 1/8 of it and the cache
	 * stays within its budget; the data is still right. */
	cache = ra_cache(1 << 20, _i);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	gets0 = st.gets;
	ck_assert_int_eq(kv_sst_iter_create(&it, r), 0);
	for (i = 0, it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it), i++)
		assert_at(it, &t.e[i]);
	ck_assert_uint_eq(i, RA_N);
	/* 128 KiB spans hold one 64 KiB block: no read-ahead at all. */
	ck_assert_int_eq(st.gets - gets0, RA_N);
	it->ops->free(it);
	kv_sst_unref(r);
	uint64_t bytes;
	kv_cache_stats(cache, NULL, NULL, &bytes);
	ck_assert_uint_le(bytes, 1 << 20);
	ck_assert_int_eq(kv_cache_check_invariants(cache), 0);
	kv_cache_free(cache);
	ra_table_free(&t);
}
END_TEST

/* Restore stderr captured by check_stderr_capture and return the captured
 * lines with the log prefix ("HH:MM:SS.mmm shalefs[pid] ") cut off, one
 * after the other. */
static char *capture_end(int saved, FILE *f)
{
	static char out[4096];
	char line[1024];
	size_t n = 0;
	check_stderr_restore(saved);
	rewind(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "] ");
		p = p ? p + 2 : line;
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", p);
		ck_assert_uint_lt(n, sizeof(out));
	}
	fclose(f);
	return out;
}

START_TEST(test_kv_sst__readahead_corrupt_block_reported_when_asked)
{
	const size_t n = 64, bad = 10;
	struct ra_table t;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct kv_ra_stats ra;
	struct tstore st;
	char want[1024];
	FILE *f;
	int saved;

	ra_table_make(&t, n);
	t.obj[bad * t.bsize + 1000] ^= 0x20;              /* inside block 10's value */
	tstore_init(&st, &t.meta, t.obj, t.len);

	/* The reference: a reader without a cache (so without read-ahead). */
	saved = check_stderr_capture(&f);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, NULL, &t.meta), 0);
	ck_assert_int_eq(ra_get(r, &t, bad), KV_ECORRUPT);
	kv_sst_unref(r);
	snprintf(want, sizeof(want), "%s", capture_end(saved, f));
	ck_assert_ptr_nonnull(strstr(want, "block at offset"));
	ck_assert_ptr_nonnull(strstr(want, "checksum mismatch"));

	/* Sequential gets read block 10 ahead (in the span that block 4
	 * starts, or that a fill thread prefetched when block 1 was read);
	 * it is reported when asked for, then, and only then. */
	cache = ra_cache(64 << 20, _i);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	st.hi = 0;                                        /* (open read the index at the end) */
	saved = check_stderr_capture(&f);
	for (size_t i = 0; i < n; i++) {
		uint64_t errs = util_log_count(UTIL_LOG_ERROR);
		if (i == bad) {                   /* already fetched, quietly */
			while (_i && st.hi < (bad + 1) * t.bsize)
				usleep(1000);     /* (a prefetch may still be under way) */
			ck_assert_uint_ge(st.hi, (bad + 1) * t.bsize);
		}
		ck_assert_int_eq(ra_get(r, &t, i), i == bad ? KV_ECORRUPT : 1);
		ck_assert_uint_eq(util_log_count(UTIL_LOG_ERROR), errs + (i == bad));
	}
	/* Asked again, the same again. */
	ck_assert_int_eq(ra_get(r, &t, bad), KV_ECORRUPT);
	char *got = capture_end(saved, f);
	char twice[2048];
	snprintf(twice, sizeof(twice), "%s%s", want, want);
	ck_assert_str_eq(got, twice);
	kv_ra_stats(cache, &ra);
	ck_assert_uint_ge(ra.spans, 3);
	kv_sst_unref(r);

	/* An iterator stops at it with the same error, after every entry
	 * before it. */
	struct kv_iter *it;
	size_t i;
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	ck_assert_int_eq(kv_sst_iter_create(&it, r), 0);
	saved = check_stderr_capture(&f);
	for (i = 0, it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it), i++)
		assert_at(it, &t.e[i]);
	ck_assert_int_eq(it->ops->status(it), KV_ECORRUPT);
	ck_assert_uint_eq(i, bad);
	ck_assert_str_eq(capture_end(saved, f), want);
	it->ops->free(it);
	kv_sst_unref(r);
	ck_assert_int_eq(kv_cache_check_invariants(cache), 0);
	kv_cache_free(cache);
	ra_table_free(&t);
}
END_TEST

struct ra_thread {
	pthread_t tid;
	struct kv_sst_reader *r;
	const struct ra_table *t;
	size_t from, to;                  /* keys [from, to) in order */
	int bad;                          /* gets that did not return the value */
};

static void *ra_thread_main(void *arg)
{
	struct ra_thread *a = arg;
	for (size_t i = a->from; i < a->to; i++)
		a->bad += ra_get(a->r, a->t, i) != 1;
	return NULL;
}

START_TEST(test_kv_sst__readahead_miss_waits_for_span_in_flight)
{
	struct ra_table t;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct kv_ra_stats ra;
	struct tstore st;
	struct ra_thread a = { 0 }, b = { 0 };
	uint64_t misses0, misses;

	ra_table_make(&t, 16);
	tstore_init(&st, &t.meta, t.obj, t.len);
	ck_assert_int_eq(kv_cache_create(&cache, 64 << 20), 0);
	kv_ra_no_guesses(cache);          /* first misses alone, as below */
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	int gets0 = st.gets;
	ck_assert_int_eq(ra_get(r, &t, 0), 1);            /* alone: starts a stream */
	ck_assert_int_eq(st.gets, gets0 + 1);
	/* A asks for block 1: a span of blocks 1-3, held at the store. */
	st.gate = 1;
	a = (struct ra_thread){ .r = r, .t = &t, .from = 1, .to = 2 };
	ck_assert_int_eq(pthread_create(&a.tid, NULL, ra_thread_main, &a), 0);
	while (st.parked == 0)
		usleep(1000);
	/* B asks for block 2 meanwhile: it misses, and waits for A's span. */
	kv_cache_stats(cache, NULL, &misses0, NULL);
	b = (struct ra_thread){ .r = r, .t = &t, .from = 2, .to = 3 };
	ck_assert_int_eq(pthread_create(&b.tid, NULL, ra_thread_main, &b), 0);
	do {
		usleep(1000);
		kv_cache_stats(cache, NULL, &misses, NULL);
	} while (misses == misses0);
	usleep(50000);                            /* from its miss to its wait */
	ck_assert_int_eq(st.parked, 1);           /* B issued no GET of its own */
	st.gate = 0;
	ck_assert_int_eq(pthread_join(a.tid, NULL), 0);
	ck_assert_int_eq(pthread_join(b.tid, NULL), 0);
	ck_assert_int_eq(a.bad + b.bad, 0);
	ck_assert_int_eq(st.gets, gets0 + 2);
	kv_ra_stats(cache, &ra);
	ck_assert_uint_eq(ra.spans, 1);
	ck_assert_uint_eq(ra.waits, 1);
	kv_sst_unref(r);
	kv_cache_free(cache);
	ra_table_free(&t);
}
END_TEST

START_TEST(test_kv_sst__readahead_concurrent_readers)
{
	struct ra_table t;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct tstore st;
	struct ra_thread th[4];

	ra_table_make(&t, RA_N);
	tstore_init(&st, &t.meta, t.obj, t.len);
	st.delay_us = 2000;
	ck_assert_int_eq(kv_cache_create(&cache, 64 << 20), 0);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	int gets0 = st.gets;
	/* Two threads read the whole table, two others each half of it. */
	for (int i = 0; i < 4; i++) {
		th[i] = (struct ra_thread){ .r = r, .t = &t, .from = i == 3 ? RA_N / 2 : 0,
					    .to = i == 2 ? RA_N / 2 : RA_N };
		ck_assert_int_eq(pthread_create(&th[i].tid, NULL, ra_thread_main, &th[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(th[i].tid, NULL), 0);
		ck_assert_int_eq(th[i].bad, 0);
	}
	ck_assert_int_lt(st.gets - gets0, RA_N / 4);
	ck_assert_uint_lt(st.bytes, 2 * t.data_end);
	kv_sst_unref(r);
	ck_assert_int_eq(kv_cache_check_invariants(cache), 0);
	kv_cache_free(cache);
	ra_table_free(&t);
}
END_TEST

/*
 * PREFETCH: with fill threads, the KV_RA_DEPTH spans after the one a miss
 * fetched are fetched in the background, and reading the first block of
 * the oldest queues one more: nobody asks for blocks 4.., yet they arrive.
 */
START_TEST(test_kv_sst__prefetch_fetches_the_next_span_unasked)
{
	struct ra_table t;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct kv_ra_stats ra;
	struct tstore st;

	ra_table_make(&t, RA_N);
	tstore_init(&st, &t.meta, t.obj, t.len);
	cache = ra_cache(64 << 20, 1);
	kv_ra_no_guesses(cache);          /* first misses alone, as below */
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	int gets0 = st.gets;
	st.hi = 0;                                        /* (open read the index at the end) */
	ck_assert_int_eq(ra_get(r, &t, 0), 1);            /* alone */
	/* blocks 1-3, and KV_RA_DEPTH spans queued after them: 4-10 (512
	 * KiB), 11-25 (1 MiB), 26-56 (2 MiB), 57-119 (4 MiB, a quarter of
	 * the read-ahead budget) */
	ck_assert_int_eq(ra_get(r, &t, 1), 1);
	for (int ms = 0; st.hi < 120 * t.bsize && ms < 10000; ms++)
		usleep(1000);
	ck_assert_uint_eq(st.hi, 120 * t.bsize);
	ck_assert_int_eq(st.gets, gets0 + 6);
	ck_assert_int_eq(ra_get(r, &t, 2), 1);
	ck_assert_int_eq(ra_get(r, &t, 3), 1);
	ck_assert_uint_eq(st.hi, 120 * t.bsize);          /* nothing more until ... */
	ck_assert_int_eq(ra_get(r, &t, 4), 1);            /* ... the first queued span is read */
	for (int ms = 0; st.hi < 183 * t.bsize && ms < 10000; ms++)
		usleep(1000);
	ck_assert_uint_eq(st.hi, 183 * t.bsize);          /* one more: 120-182 */
	ck_assert_int_eq(st.gets, gets0 + 7);
	for (size_t i = 5; i < RA_N; i++)
		ck_assert_int_eq(ra_get(r, &t, i), 1);
	ck_assert_int_le(st.gets - gets0, 16);
	kv_ra_stats(cache, &ra);
	ck_assert_uint_eq(ra.spans, (uint64_t)(st.gets - gets0) - 1);
	kv_sst_unref(r);
	kv_cache_free(cache);
	ra_table_free(&t);
}
END_TEST

/* A prefetch that fails is dropped: nobody sees its error, the blocks are
 * fetched when asked for. */
START_TEST(test_kv_sst__prefetch_errors_are_dropped)
{
	struct ra_table t;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct tstore st;

	ra_table_make(&t, 64);
	tstore_init(&st, &t.meta, t.obj, t.len);
	st.main = pthread_self();
	st.fail_others = -EIO;                            /* the fill threads' GETs fail */
	cache = ra_cache(64 << 20, 1);
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	uint64_t errs = util_log_count(UTIL_LOG_ERROR);
	for (size_t i = 0; i < t.n; i++)
		ck_assert_int_eq(ra_get(r, &t, i), 1);
	ck_assert_uint_eq(util_log_count(UTIL_LOG_ERROR), errs);
	kv_sst_unref(r);
	kv_cache_free(cache);
	ra_table_free(&t);
}
END_TEST

/* The last reference to a reader may go while its prefetch is under way:
 * the job holds one of its own, and stopping the fill threads waits for it. */
START_TEST(test_kv_sst__prefetch_outlives_the_last_unref)
{
	struct ra_table t;
	struct kv_sst_reader *r;
	struct kv_cache *cache;
	struct tstore st;

	ra_table_make(&t, 64);
	tstore_init(&st, &t.meta, t.obj, t.len);
	cache = ra_cache(64 << 20, 1);
	kv_ra_no_guesses(cache);          /* first misses alone, as below */
	ck_assert_int_eq(kv_sst_open(&r, &st.base, cache, &t.meta), 0);
	st.hi = 0;                                        /* (open read the index at the end) */
	ck_assert_int_eq(ra_get(r, &t, 0), 1);
	st.delay_us = 200000;                             /* the prefetch takes 200 ms */
	ck_assert_int_eq(ra_get(r, &t, 1), 1);            /* (so did this span) */
	kv_sst_unref(r);                                  /* the prefetches are still running */
	kv_ra_fill_stop(cache);                        /* waits for them */
	ck_assert_uint_eq(st.hi, t.data_end);             /* the last of 4 spans: 57-63 */
	ck_assert_int_eq(kv_cache_check_invariants(cache), 0);
	kv_cache_free(cache);
	ra_table_free(&t);
}
END_TEST

static Suite *kv_sst_id_suite(void)
{
	Suite *s = suite_create("kv_sst_id");
	TCase *tc = tcase_create("ids");
	tcase_add_test(tc, test_kv_sst__id_name_is_ulid);
	tcase_add_test(tc, test_kv_sst__meta_copy_and_clear);
	suite_add_tcase(s, tc);
	return s;
}

static Suite *kv_sst_build_suite(void)
{
	Suite *s = suite_create("kv_sst_build");
	TCase *tc;

	tc = tcase_create("input");
	tcase_add_test(tc, test_kv_sst__build_rejects_bad_input);
	tcase_add_test(tc, test_kv_sst__build_empty_and_no_filter);
	suite_add_tcase(s, tc);

	tc = tcase_create("layout");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_kv_sst__build_meta_and_layout);
	tcase_add_test(tc, test_kv_sst__build_compression_pays);
	tcase_add_test(tc, test_kv_sst__compression_backs_off_on_incompressible_data);
	suite_add_tcase(s, tc);
	return s;
}

static Suite *kv_sst_read_suite(void)
{
	Suite *s = suite_create("kv_sst_read");
	TCase *tc;

	/* Corruption tests log one line per detected error: keep the
	 * console readable (the count is still checked). */
	if (!getenv("SHALEFS_LOG"))
		util_log_set_level(UTIL_LOG_ERROR);

	tc = tcase_create("roundtrip");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_kv_sst__roundtrip_100k_plain);
	tcase_add_test(tc, test_kv_sst__roundtrip_100k_zstd);
	suite_add_tcase(s, tc);

	tc = tcase_create("seek");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_kv_sst__seek_boundaries);
	tcase_add_test(tc, test_kv_sst__index_fences_exact);
	suite_add_tcase(s, tc);

	tc = tcase_create("get");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_kv_sst__get_with_snapshots);
	tcase_add_test(tc, test_kv_sst__cache_and_refs);
	tcase_add_test(tc, test_kv_sst__store_errors_pass_through);
	suite_add_tcase(s, tc);

	tc = tcase_create("corruption");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, corrupt_setup, corrupt_teardown);
	tcase_add_test(tc, test_kv_sst__corrupt_baseline_is_clean);
	tcase_add_test(tc, test_kv_sst__corrupt_data_block);
	tcase_add_test(tc, test_kv_sst__corrupt_index);
	tcase_add_test(tc, test_kv_sst__corrupt_filter);
	tcase_add_test(tc, test_kv_sst__corrupt_footer);
	tcase_add_test(tc, test_kv_sst__corrupt_truncated);
	tcase_add_test(tc, test_kv_sst__corrupt_every_byte);
	tcase_add_test(tc, test_kv_sst__rebuild_index_from_data_blocks);
	tcase_add_test(tc, test_kv_sst__check_buffer_garbage);
	suite_add_tcase(s, tc);

	tc = tcase_create("readahead");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_kv_sst__readahead_sequential_gets, 0, 2);
	tcase_add_test(tc, test_kv_sst__readahead_random_gets_stop_guessing);
	tcase_add_test(tc, test_kv_sst__readahead_guess_while_cache_has_room);
	tcase_add_loop_test(tc, test_kv_sst__readahead_random_table_warmed, 0, 2);
	tcase_add_loop_test(tc, test_kv_sst__readahead_warm_needs_three_random_misses, 0, 2);
	tcase_add_loop_test(tc, test_kv_sst__readahead_iterator, 0, 2);
	tcase_add_loop_test(tc, test_kv_sst__readahead_corrupt_block_reported_when_asked, 0, 2);
	tcase_add_test(tc, test_kv_sst__readahead_miss_waits_for_span_in_flight);
	tcase_add_test(tc, test_kv_sst__readahead_concurrent_readers);
	tcase_add_test(tc, test_kv_sst__prefetch_fetches_the_next_span_unasked);
	tcase_add_test(tc, test_kv_sst__prefetch_errors_are_dropped);
	tcase_add_test(tc, test_kv_sst__prefetch_outlives_the_last_unref);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(kv_sst_id_suite, kv_sst_build_suite, kv_sst_read_suite)
