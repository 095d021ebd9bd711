/*
 * check_kv_memtable.c - tests for kv/kv_memtable.c.
 *
 * The memtable is checked against a model (a sorted array of every entry
 * added) over many versions per key, and under concurrency: readers
 * iterating and getting while one writer adds must always see sorted,
 * complete entries and never lose a version they once saw.
 */
#include "kv/kv_int.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check_main.h"

/* ---- helpers ------------------------------------------------------------- */

/* A pool of distinct user keys of 1..12 bytes over a small alphabet, so
 * many keys are prefixes of others (the "shorter first" rule matters). */
struct pool {
	uint8_t key[8192][12];
	size_t len[8192];
	size_t n;
};

static int pool_has(const struct pool *p, const uint8_t *k, size_t len)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->len[i] == len && !memcmp(p->key[i], k, len))
			return 1;
	return 0;
}

static struct pool *pool_make(struct util_rand *r, size_t n)
{
	struct pool *p = calloc(1, sizeof(*p));
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_le(n, 8192);
	while (p->n < n) {
		uint8_t k[12];
		size_t len = 1 + util_rand_below(r, 12);
		for (size_t i = 0; i < len; i++)
			k[i] = (uint8_t)("ab\0\xff"[util_rand_below(r, 4)]);
		if (pool_has(p, k, len))
			continue;
		memcpy(p->key[p->n], k, len);
		p->len[p->n++] = len;
	}
	return p;
}

/* The value stored for seq: a deterministic function of it, so the model
 * need not keep value bytes and a torn value is detectable. */
static size_t value_for(uint64_t seq, uint8_t *buf)
{
	size_t len = (size_t)(seq % 41);
	uint64_t x = seq * 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < len; i++) {
		x ^= x >> 29;
		x *= 0xbf58476d1ce4e5b9ull;
		buf[i] = (uint8_t)(x >> 56);
	}
	return len;
}

struct model_ent {
	uint32_t key;                     /* pool index */
	uint64_t seq;
	enum kv_type type;
};

static const struct pool *g_pool;

static int model_cmp(const void *a, const void *b)
{
	const struct model_ent *x = a, *y = b;
	int c = kv_ukey_cmp(g_pool->key[x->key], g_pool->len[x->key], g_pool->key[y->key],
			    g_pool->len[y->key]);
	if (c)
		return c;
	return x->seq > y->seq ? -1 : x->seq < y->seq;
}

/* ---- basic behaviour ----------------------------------------------------- */

START_TEST(test_kv_memtable__empty)
{
	struct kv_mem *m;
	struct kv_iter *it;
	const uint8_t *v;
	size_t vlen;

	ck_assert_int_eq(kv_mem_create(&m, NULL), 0);
	ck_assert_uint_eq(kv_mem_count(m), 0);
	ck_assert_uint_gt(kv_mem_bytes(m), 0);
	ck_assert_int_eq(kv_mem_get(m, "a", 1, KV_SEQ_MAX, &v, &vlen), 0);
	ck_assert_int_eq(kv_mem_iter_create(&it, m), 0);
	it->ops->seek_first(it);
	ck_assert(!it->ops->valid(it));
	ck_assert_int_eq(it->ops->status(it), 0);
	it->ops->free(it);
	ck_assert(kv_mem_check_invariants(m));
	kv_mem_unref(m);
}
END_TEST

START_TEST(test_kv_memtable__get_versions)
{
	struct kv_mem *m;
	const uint8_t *v;
	size_t vlen;

	ck_assert_int_eq(kv_mem_create(&m, NULL), 0);
	ck_assert_int_eq(kv_mem_add(m, 10, KV_TYPE_VALUE, "k", 1, "v10", 3), 0);
	ck_assert_int_eq(kv_mem_add(m, 20, KV_TYPE_DELETE, "k", 1, NULL, 0), 0);
	ck_assert_int_eq(kv_mem_add(m, 30, KV_TYPE_VALUE, "k", 1, "v30", 3), 0);
	ck_assert_int_eq(kv_mem_add(m, 15, KV_TYPE_VALUE, "kk", 2, "", 0), 0);

	ck_assert_int_eq(kv_mem_get(m, "k", 1, 9, &v, &vlen), 0);
	ck_assert_int_eq(kv_mem_get(m, "k", 1, 10, &v, &vlen), 1);
	ck_assert_mem_eq(v, "v10", 3);
	ck_assert_int_eq(kv_mem_get(m, "k", 1, 19, &v, &vlen), 1);
	ck_assert_mem_eq(v, "v10", 3);
	ck_assert_int_eq(kv_mem_get(m, "k", 1, 20, &v, &vlen), 2);
	ck_assert_int_eq(kv_mem_get(m, "k", 1, 29, &v, &vlen), 2);
	ck_assert_int_eq(kv_mem_get(m, "k", 1, 30, &v, &vlen), 1);
	ck_assert_mem_eq(v, "v30", 3);
	ck_assert_int_eq(kv_mem_get(m, "k", 1, UINT64_MAX, &v, &vlen), 1);
	ck_assert_mem_eq(v, "v30", 3);
	/* A longer key with the same prefix is a different key. */
	ck_assert_int_eq(kv_mem_get(m, "kk", 2, 14, &v, &vlen), 0);
	ck_assert_int_eq(kv_mem_get(m, "kk", 2, 15, &v, &vlen), 1);
	ck_assert_uint_eq(vlen, 0);
	ck_assert_int_eq(kv_mem_get(m, "", 0, 100, &v, &vlen), 0);
	ck_assert_int_eq(kv_mem_get(m, "j", 1, 100, &v, &vlen), 0);
	ck_assert_int_eq(kv_mem_get(m, "l", 1, 100, &v, &vlen), 0);
	ck_assert_uint_eq(kv_mem_count(m), 4);
	ck_assert(kv_mem_check_invariants(m));
	kv_mem_unref(m);
}
END_TEST

START_TEST(test_kv_memtable__bad_args)
{
	struct kv_mem *m;
	ck_assert_int_eq(kv_mem_create(&m, NULL), 0);
	ck_assert_int_eq(kv_mem_add(m, KV_SEQ_MAX + 1, KV_TYPE_VALUE, "k", 1, "v", 1), -EINVAL);
	ck_assert_int_eq(kv_mem_add(m, 1, (enum kv_type)7, "k", 1, "v", 1), -EINVAL);
	ck_assert_int_eq(kv_mem_add(m, 1, KV_TYPE_VALUE, "k", KV_KEY_MAX + 1, "v", 1), -EINVAL);
	ck_assert_int_eq(kv_mem_add(m, 1, KV_TYPE_VALUE, "k", 1, "v", KV_VALUE_MAX + 1), -EINVAL);
	ck_assert_uint_eq(kv_mem_count(m), 0);
	ck_assert_int_eq(kv_mem_add(m, KV_SEQ_MAX, KV_TYPE_VALUE, "k", 1, "v", 1), 0);
	ck_assert(kv_mem_check_invariants(m));
	kv_mem_unref(m);
}
END_TEST

/* Big values get their own chunk; small ones keep filling the current. */
START_TEST(test_kv_memtable__arena_big_entries)
{
	struct kv_mem *m;
	const uint8_t *v;
	size_t vlen;
	size_t big = 5u << 20;
	uint8_t *buf = malloc(big);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < big; i++)
		buf[i] = (uint8_t)(i * 7);

	ck_assert_int_eq(kv_mem_create(&m, NULL), 0);
	size_t b0 = kv_mem_alloc_bytes(m);
	size_t u0 = kv_mem_bytes(m);                       /* the head sentinel */
	ck_assert_uint_lt(u0, 512);
	ck_assert_int_eq(kv_mem_add(m, 1, KV_TYPE_VALUE, "a", 1, "x", 1), 0);
	ck_assert_uint_eq(kv_mem_alloc_bytes(m), b0);     /* fits in the first chunk */
	size_t u1 = kv_mem_bytes(m);
	ck_assert_uint_gt(u1, u0 + 2);                     /* a node, its key and value */
	ck_assert_uint_lt(u1, u0 + 512);
	ck_assert_int_eq(kv_mem_add(m, 2, KV_TYPE_VALUE, "big", 3, buf, big), 0);
	ck_assert_uint_ge(kv_mem_alloc_bytes(m), b0 + big);
	ck_assert_uint_ge(kv_mem_bytes(m), u1 + big);
	size_t b1 = kv_mem_alloc_bytes(m);
	ck_assert_int_eq(kv_mem_add(m, 3, KV_TYPE_VALUE, "b", 1, "y", 1), 0);
	ck_assert_uint_eq(kv_mem_alloc_bytes(m), b1);     /* still the first chunk */
	/* Many small entries eventually need more chunks. */
	for (uint64_t s = 4; s < 40000; s++)
		ck_assert_int_eq(kv_mem_add(m, s, KV_TYPE_VALUE, &s, sizeof(s), buf, 32), 0);
	ck_assert_uint_gt(kv_mem_alloc_bytes(m), b1);
	ck_assert_uint_le(kv_mem_bytes(m), kv_mem_alloc_bytes(m));
	ck_assert_int_eq(kv_mem_get(m, "big", 3, 100, &v, &vlen), 1);
	ck_assert_uint_eq(vlen, big);
	ck_assert(memcmp(v, buf, big) == 0);
	ck_assert(kv_mem_check_invariants(m));
	kv_mem_unref(m);
	free(buf);
}
END_TEST

/* An iterator keeps the memtable (and the borrowed bytes) alive. */
START_TEST(test_kv_memtable__iter_holds_ref)
{
	struct kv_mem *m;
	struct kv_iter *it;
	const uint8_t *k, *v;
	size_t klen, vlen;

	ck_assert_int_eq(kv_mem_create(&m, NULL), 0);
	ck_assert_int_eq(kv_mem_add(m, 5, KV_TYPE_VALUE, "key", 3, "val", 3), 0);
	ck_assert_int_eq(kv_mem_iter_create(&it, m), 0);
	kv_mem_unref(m);                  /* the iterator's reference remains */
	it->ops->seek_first(it);
	ck_assert(it->ops->valid(it));
	it->ops->key(it, &k, &klen);
	it->ops->value(it, &v, &vlen);
	ck_assert_uint_eq(klen, 3 + KV_IKEY_TRAILER);
	ck_assert_mem_eq(k, "key", 3);
	ck_assert_uint_eq(kv_ikey_seq(k, klen), 5);
	ck_assert_int_eq(kv_ikey_type(k, klen), KV_TYPE_VALUE);
	ck_assert_mem_eq(v, "val", 3);
	it->ops->next(it);
	ck_assert(!it->ops->valid(it));
	it->ops->free(it);                /* frees the memtable (ASan checks) */
}
END_TEST

/* ---- model --------------------------------------------------------------- */

#define MODEL_ADDS 200000

START_TEST(test_kv_memtable__model)
{
	struct util_rand r;
	struct kv_mem *m;
	struct kv_iter *it;
	uint8_t vbuf[64];
	const uint8_t *k, *v;
	size_t klen, vlen;

	util_rand_seed(&r, 0x5eed0001 + (uint64_t)_i);
	struct pool *p = pool_make(&r, 5000);
	g_pool = p;
	struct model_ent *ents = calloc(MODEL_ADDS, sizeof(*ents));
	ck_assert_ptr_nonnull(ents);

	/* Seqs are a random permutation-ish order: adds are not in seq order
	 * (replayed WAL and batches interleave); assign distinct seqs. */
	ck_assert_int_eq(kv_mem_create(&m, NULL), 0);
	for (size_t i = 0; i < MODEL_ADDS; i++) {
		ents[i].key = (uint32_t)util_rand_below(&r, p->n);
		ents[i].seq = i + 1;
		ents[i].type = util_rand_below(&r, 5) == 0 ? KV_TYPE_DELETE : KV_TYPE_VALUE;
	}
	for (size_t i = MODEL_ADDS - 1; i > 0; i--) {      /* shuffle seqs */
		size_t j = util_rand_below(&r, i + 1);
		uint64_t t = ents[i].seq;
		ents[i].seq = ents[j].seq;
		ents[j].seq = t;
	}
	for (size_t i = 0; i < MODEL_ADDS; i++) {
		struct model_ent *e = &ents[i];
		size_t n = value_for(e->seq, vbuf);
		ck_assert_int_eq(kv_mem_add(m, e->seq, e->type, p->key[e->key], p->len[e->key],
					    vbuf, n), 0);
	}
	ck_assert_uint_eq(kv_mem_count(m), MODEL_ADDS);
	ck_assert(kv_mem_check_invariants(m));

	qsort(ents, MODEL_ADDS, sizeof(*ents), model_cmp);

	/* Full iteration equals the sorted model. */
	ck_assert_int_eq(kv_mem_iter_create(&it, m), 0);
	size_t i = 0;
	for (it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it), i++) {
		ck_assert_uint_lt(i, MODEL_ADDS);
		const struct model_ent *e = &ents[i];
		it->ops->key(it, &k, &klen);
		it->ops->value(it, &v, &vlen);
		ck_assert_uint_eq(klen, p->len[e->key] + KV_IKEY_TRAILER);
		ck_assert(memcmp(k, p->key[e->key], p->len[e->key]) == 0);
		ck_assert_uint_eq(kv_ikey_seq(k, klen), e->seq);
		ck_assert_int_eq(kv_ikey_type(k, klen), e->type);
		if (e->type == KV_TYPE_VALUE) {
			size_t n = value_for(e->seq, vbuf);
			ck_assert_uint_eq(vlen, n);
			ck_assert(memcmp(v, vbuf, n) == 0);
		} else {
			ck_assert_uint_eq(vlen, 0);
		}
	}
	ck_assert_uint_eq(i, MODEL_ADDS);

	/* Index of each key's first (newest) version in the sorted model. */
	size_t *first = malloc((p->n + 1) * sizeof(*first));
	size_t *count = calloc(p->n, sizeof(*count));
	ck_assert_ptr_nonnull(first);
	ck_assert_ptr_nonnull(count);
	for (size_t j = MODEL_ADDS; j-- > 0;) {
		first[ents[j].key] = j;
		count[ents[j].key]++;
	}

	/* Random snapshot gets. */
	for (int q = 0; q < 50000; q++) {
		uint32_t key = (uint32_t)util_rand_below(&r, p->n);
		uint64_t snap = util_rand_below(&r, MODEL_ADDS + 10);
		int want = 0;
		uint64_t want_seq = 0;
		for (size_t j = first[key]; count[key] && j < first[key] + count[key]; j++) {
			if (ents[j].seq <= snap) {
				want = ents[j].type == KV_TYPE_VALUE ? 1 : 2;
				want_seq = ents[j].seq;
				break;
			}
		}
		int got = kv_mem_get(m, p->key[key], p->len[key], snap, &v, &vlen);
		ck_assert_int_eq(got, want);
		if (got == 1) {
			size_t n = value_for(want_seq, vbuf);
			ck_assert_uint_eq(vlen, n);
			ck_assert(memcmp(v, vbuf, n) == 0);
		}
	}
	/* Keys never added. */
	ck_assert_int_eq(kv_mem_get(m, "zzzzzzzzzzzzz", 13, KV_SEQ_MAX, &v, &vlen), 0);
	ck_assert_int_eq(kv_mem_get(m, "", 0, KV_SEQ_MAX, &v, &vlen), 0);

	/* Random seeks land on the model's lower bound. */
	for (int q = 0; q < 20000; q++) {
		uint8_t ik[12 + KV_IKEY_TRAILER];
		uint32_t key = (uint32_t)util_rand_below(&r, p->n);
		uint64_t seq = util_rand_below(&r, MODEL_ADDS + 10);
		enum kv_type type = (enum kv_type)util_rand_below(&r, 2);
		kv_ikey_make(ik, p->key[key], p->len[key], seq, type);
		size_t iklen = p->len[key] + KV_IKEY_TRAILER;
		/* lower bound by binary search over the model */
		size_t lo = 0, hi = MODEL_ADDS;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			const struct model_ent *e = &ents[mid];
			uint8_t ek[12 + KV_IKEY_TRAILER];
			kv_ikey_make(ek, p->key[e->key], p->len[e->key], e->seq, e->type);
			if (kv_ikey_cmp(ek, p->len[e->key] + KV_IKEY_TRAILER, ik, iklen) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		it->ops->seek(it, ik, iklen);
		if (lo == MODEL_ADDS) {
			ck_assert(!it->ops->valid(it));
			continue;
		}
		ck_assert(it->ops->valid(it));
		it->ops->key(it, &k, &klen);
		ck_assert_uint_eq(kv_ikey_seq(k, klen), ents[lo].seq);
	}
	it->ops->free(it);
	free(first);
	free(count);
	free(ents);
	free(p);
	kv_mem_unref(m);
}
END_TEST

/* ---- concurrency --------------------------------------------------------- */

#define CONC_KEYS 1000
#define CONC_MAX_ADDS 400000
#define CONC_VLEN 48

struct conc {
	struct kv_mem *m;
	atomic_uint_fast64_t published;   /* every seq <= this is in the memtable */
	atomic_int stop;
	uint64_t seconds_ns;
	atomic_uint_fast64_t reads;
};

/* Value of (key index, seq): seq, key index, then a pattern of both. */
static void conc_value(uint32_t key, uint64_t seq, uint8_t *v)
{
	util_put_be64(v, seq);
	util_put_be32(v + 8, key);
	for (int i = 12; i < CONC_VLEN; i++)
		v[i] = (uint8_t)(seq * 31 + key * 17 + (uint64_t)i);
}

static void conc_key(uint32_t key, uint8_t *k, size_t *len)
{
	/* Variable length, shared prefixes; at least one fill byte so the
	 * mapping from key index to bytes is one-to-one. */
	*len = 5 + key % 5;
	util_put_be32(k, key % 97);
	memset(k + 4, (int)(key / 97), *len - 4);
}

static void *conc_writer(void *arg)
{
	struct conc *c = arg;
	struct util_rand r;
	uint8_t k[16], v[CONC_VLEN];
	size_t klen;
	uint64_t end = util_now_ns() + c->seconds_ns;

	util_rand_seed(&r, 42);
	for (uint64_t seq = 1; seq <= CONC_MAX_ADDS; seq++) {
		uint32_t key = (uint32_t)util_rand_below(&r, CONC_KEYS);
		conc_key(key, k, &klen);
		conc_value(key, seq, v);
		if (kv_mem_add(c->m, seq, KV_TYPE_VALUE, k, klen, v, CONC_VLEN) != 0)
			break;
		atomic_store_explicit(&c->published, seq, memory_order_release);
		if ((seq & 1023) == 0 && util_now_ns() > end)
			break;
	}
	atomic_store(&c->stop, 1);
	return NULL;
}

/* Check one entry is complete and self-consistent. Returns 0 if torn. */
static int conc_entry_ok(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
	uint8_t want_k[16], want_v[CONC_VLEN];
	size_t wlen;
	if (klen < KV_IKEY_TRAILER + 4 || vlen != CONC_VLEN)
		return 0;
	uint64_t seq = kv_ikey_seq(k, klen);
	uint32_t key = util_get_be32(v + 8);
	if (key >= CONC_KEYS || util_get_be64(v) != seq)
		return 0;
	conc_key(key, want_k, &wlen);
	conc_value(key, seq, want_v);
	return wlen + KV_IKEY_TRAILER == klen && !memcmp(k, want_k, wlen) &&
	       !memcmp(v, want_v, CONC_VLEN) && kv_ikey_type(k, klen) == KV_TYPE_VALUE;
}

static void *conc_reader(void *arg)
{
	struct conc *c = arg;
	struct util_rand r;
	uint64_t *last = calloc(CONC_KEYS, sizeof(*last));   /* newest seq seen per key */
	intptr_t bad = 0;
	uint64_t reads = 0;

	if (!last)
		return (void *)1;
	util_rand_seed(&r, (uint64_t)(uintptr_t)&r);
	while (!atomic_load(&c->stop) && !bad) {
		/* Gets at the published snapshot never go backwards in time. */
		for (int i = 0; i < 200 && !bad; i++) {
			uint8_t k[16];
			size_t klen, vlen;
			const uint8_t *v;
			uint32_t key = (uint32_t)util_rand_below(&r, CONC_KEYS);
			uint64_t snap = atomic_load_explicit(&c->published, memory_order_acquire);
			conc_key(key, k, &klen);
			int rc = kv_mem_get(c->m, k, klen, snap, &v, &vlen);
			reads++;
			if (rc == 0) {
				if (last[key])
					bad = 2;          /* a version we saw vanished */
				continue;
			}
			if (rc != 1 || vlen != CONC_VLEN) {
				bad = 3;
				continue;
			}
			uint64_t seq = util_get_be64(v);
			uint8_t want[CONC_VLEN];
			conc_value(key, seq, want);
			if (memcmp(v, want, CONC_VLEN) || seq > snap || seq < last[key])
				bad = 4;
			last[key] = seq;
		}
		/* Iterate a stretch from a random point: sorted, never torn. */
		struct kv_iter *it;
		if (kv_mem_iter_create(&it, c->m)) {
			bad = 5;
			break;
		}
		uint8_t seek[16 + KV_IKEY_TRAILER], prev[16 + KV_IKEY_TRAILER];
		size_t sklen, prevlen = 0;
		conc_key((uint32_t)util_rand_below(&r, CONC_KEYS), seek, &sklen);
		util_put_be64(seek + sklen, UINT64_MAX);
		it->ops->seek(it, seek, sklen + KV_IKEY_TRAILER);
		for (int n = 0; n < 2000 && it->ops->valid(it) && !bad; n++) {
			const uint8_t *k, *v;
			size_t klen, vlen;
			it->ops->key(it, &k, &klen);
			it->ops->value(it, &v, &vlen);
			reads++;
			if (!conc_entry_ok(k, klen, v, vlen))
				bad = 6;
			else if (prevlen && kv_ikey_cmp(prev, prevlen, k, klen) >= 0)
				bad = 7;
			memcpy(prev, k, klen);
			prevlen = klen;
			it->ops->next(it);
		}
		it->ops->free(it);
	}
	atomic_fetch_add(&c->reads, reads);
	free(last);
	return (void *)bad;
}

START_TEST(test_kv_memtable__concurrent_readers)
{
	struct conc c;
	pthread_t w, rd[4];

	memset(&c, 0, sizeof(c));
	c.seconds_ns = 2000000000ull;
	ck_assert_int_eq(kv_mem_create(&c.m, NULL), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&rd[i], NULL, conc_reader, &c), 0);
	ck_assert_int_eq(pthread_create(&w, NULL, conc_writer, &c), 0);
	ck_assert_int_eq(pthread_join(w, NULL), 0);
	for (int i = 0; i < 4; i++) {
		void *res;
		ck_assert_int_eq(pthread_join(rd[i], &res), 0);
		ck_assert_msg(res == NULL, "reader %d failed check %ld", i, (long)(intptr_t)res);
	}
	uint64_t n = atomic_load(&c.published);
	ck_assert_uint_gt(n, 1000);
	ck_assert_uint_eq(kv_mem_count(c.m), n);
	ck_assert_uint_gt(atomic_load(&c.reads), 0);
	ck_assert(kv_mem_check_invariants(c.m));
	kv_mem_unref(c.m);
}
END_TEST

/* The block pool keeps at most max_free returned blocks and hands them
 * out again before it allocates. */
START_TEST(test_kv_memtable__pool_is_bounded_and_recycles)
{
	struct kv_pool *p = kv_pool_create(4096, 2);
	void *a, *b, *c, *d;

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(kv_pool_block(p), 4096);
	a = kv_pool_get(p);
	b = kv_pool_get(p);
	c = kv_pool_get(p);
	ck_assert(a && b && c);
	memset(a, 1, 4096);                     /* whole blocks are usable */
	kv_pool_put(p, a);
	kv_pool_put(p, b);
	kv_pool_put(p, c);                      /* beyond max_free: freed */
	ck_assert_uint_eq(kv_pool_free_bytes(p), 2 * 4096);
	d = kv_pool_get(p);
	ck_assert(d == b || d == a);            /* recycled, not fresh */
	ck_assert_uint_eq(kv_pool_free_bytes(p), 4096);
	kv_pool_put(p, d);
	kv_pool_put(p, NULL);                   /* no-op */
	kv_pool_unref(p);                       /* frees the kept blocks (ASan) */
}
END_TEST

/* A memtable's standard chunks go back to its pool when it is dropped,
 * even after the pool's creator let go of it, and the next memtable takes
 * them before it allocates; big entries' own chunks do not go there. */
START_TEST(test_kv_memtable__chunks_return_to_pool)
{
	struct kv_pool *p = kv_mem_pool_create(4u << 20);
	struct kv_mem *m, *m2;
	uint8_t val[60000];
	char key[32];
	size_t block;

	ck_assert_ptr_nonnull(p);
	block = kv_pool_block(p);
	ck_assert_int_eq(kv_mem_create(&m, p), 0);
	memset(val, 7, sizeof(val));
	for (int i = 0; i < 100; i++) {          /* ~6 MiB: 6-7 chunks */
		snprintf(key, sizeof(key), "k%04d", i);
		ck_assert_int_eq(kv_mem_add(m, (uint64_t)i + 1, KV_TYPE_VALUE, key, strlen(key),
					    val, sizeof(val)), 0);
	}
	uint8_t *big = calloc(1, 300000);       /* > 1/4 chunk: a chunk of its own */
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(kv_mem_add(m, 1000, KV_TYPE_VALUE, "big", 3, big, 300000), 0);
	free(big);
	ck_assert_uint_eq(kv_pool_free_bytes(p), 0);
	ck_assert_int_eq(kv_mem_create(&m2, p), 0);      /* its head: 1 chunk */
	kv_pool_unref(p);                       /* the memtables keep it alive */
	kv_mem_unref(m);
	/* 4 MiB of room: 3 chunks of 1 MiB + header fit, the rest was freed. */
	ck_assert_uint_eq(kv_pool_free_bytes(p), (4u << 20) / block * block);
	for (int i = 0; i < 20; i++) {           /* ~1.2 MiB: one more chunk */
		snprintf(key, sizeof(key), "j%04d", i);
		ck_assert_int_eq(kv_mem_add(m2, (uint64_t)i + 1, KV_TYPE_VALUE, key, strlen(key),
					    val, sizeof(val)), 0);
	}
	ck_assert_uint_eq(kv_pool_free_bytes(p), ((4u << 20) / block - 1) * block);
	kv_mem_unref(m2);                       /* last reference: pool freed (ASan) */
}
END_TEST

static Suite *kv_memtable_suite(void)
{
	Suite *s = suite_create("kv_memtable");
	TCase *tc;

	tc = tcase_create("basic");
	tcase_add_test(tc, test_kv_memtable__empty);
	tcase_add_test(tc, test_kv_memtable__get_versions);
	tcase_add_test(tc, test_kv_memtable__bad_args);
	tcase_add_test(tc, test_kv_memtable__iter_holds_ref);
	suite_add_tcase(s, tc);

	tc = tcase_create("arena");
	tcase_add_test(tc, test_kv_memtable__arena_big_entries);
	tcase_add_test(tc, test_kv_memtable__pool_is_bounded_and_recycles);
	tcase_add_test(tc, test_kv_memtable__chunks_return_to_pool);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);

	tc = tcase_create("model");
	tcase_add_loop_test(tc, test_kv_memtable__model, 0, 2);
	tcase_set_timeout(tc, 600);
	suite_add_tcase(s, tc);

	tc = tcase_create("concurrent");
	tcase_add_test(tc, test_kv_memtable__concurrent_readers);
	tcase_set_timeout(tc, 600);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(kv_memtable_suite)
