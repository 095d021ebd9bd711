/*
 * check_kv_iter.c - tests for kv/kv_iter.c: the merging iterator and the
 * user view, checked against a sorted model, over in-memory "vector"
 * children (which can inject an error) and real memtables.
 */
#include "kv/kv_int.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check_main.h"

/* ---- a test child: a sorted array of entries ------------------------------ */

struct ent {
	uint8_t ikey[8 + KV_IKEY_TRAILER];
	size_t iklen;
	uint32_t val;                     /* value bytes: be32 */
	uint8_t vbuf[4];
};

struct vec_iter {
	struct kv_iter base;
	struct ent *e;                    /* owned, sorted */
	size_t n, pos;
	size_t fail_at;                   /* moving onto this index fails (-EIO) */
	int err;
	int *freed;                       /* incremented at free */
};

static void vec__seek(struct kv_iter *it, const uint8_t *ik, size_t len)
{
	struct vec_iter *v = (struct vec_iter *)it;
	v->pos = 0;
	while (v->pos < v->n && kv_ikey_cmp(v->e[v->pos].ikey, v->e[v->pos].iklen, ik, len) < 0)
		v->pos++;
	if (v->pos >= v->fail_at && v->pos < v->n)
		v->err = -EIO;
}
static void vec__seek_first(struct kv_iter *it)
{
	struct vec_iter *v = (struct vec_iter *)it;
	v->pos = 0;
	if (v->fail_at == 0 && v->n)
		v->err = -EIO;
}
static void vec__next(struct kv_iter *it)
{
	struct vec_iter *v = (struct vec_iter *)it;
	ck_assert(v->pos < v->n && !v->err);
	v->pos++;
	if (v->pos == v->fail_at && v->pos < v->n)
		v->err = -EIO;
}
static int vec__valid(struct kv_iter *it)
{
	struct vec_iter *v = (struct vec_iter *)it;
	return !v->err && v->pos < v->n;
}
static void vec__key(struct kv_iter *it, const uint8_t **k, size_t *len)
{
	struct vec_iter *v = (struct vec_iter *)it;
	ck_assert(vec__valid(it));
	*k = v->e[v->pos].ikey;
	*len = v->e[v->pos].iklen;
}
static void vec__value(struct kv_iter *it, const uint8_t **val, size_t *len)
{
	struct vec_iter *v = (struct vec_iter *)it;
	ck_assert(vec__valid(it));
	*val = v->e[v->pos].vbuf;
	*len = 4;
}
static int vec__status(struct kv_iter *it)
{
	return ((struct vec_iter *)it)->err;
}
static void vec__free(struct kv_iter *it)
{
	struct vec_iter *v = (struct vec_iter *)it;
	if (v->freed)
		(*v->freed)++;
	free(v->e);
	free(v);
}
static const struct kv_iter_ops vec_ops = {
	vec__seek, vec__seek_first, vec__next, vec__valid, vec__key, vec__value, vec__status,
	vec__free,
};

static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	return kv_ikey_cmp(x->ikey, x->iklen, y->ikey, y->iklen);
}

static void ent_make(struct ent *e, const void *ukey, size_t uklen, uint64_t seq,
		     enum kv_type type, uint32_t val)
{
	ck_assert_uint_le(uklen, 8);
	kv_ikey_make(e->ikey, ukey, uklen, seq, type);
	e->iklen = uklen + KV_IKEY_TRAILER;
	e->val = val;
	util_put_be32(e->vbuf, val);
}

/* Takes a copy of e[0..n), sorts it. */
static struct kv_iter *vec_create(const struct ent *e, size_t n, int *freed)
{
	struct vec_iter *v = calloc(1, sizeof(*v));
	ck_assert_ptr_nonnull(v);
	v->e = malloc((n + 1) * sizeof(*e));
	ck_assert_ptr_nonnull(v->e);
	if (n)
		memcpy(v->e, e, n * sizeof(*e));
	qsort(v->e, n, sizeof(*e), ent_cmp);
	v->n = n;
	v->fail_at = SIZE_MAX;
	v->freed = freed;
	v->base.ops = &vec_ops;
	return &v->base;
}

/* Random user key of 1..3 bytes over {a, b}: lots of overlap, prefixes. */
static size_t rand_ukey(struct util_rand *r, uint8_t *k)
{
	size_t len = 1 + util_rand_below(r, 3);
	for (size_t i = 0; i < len; i++)
		k[i] = (uint8_t)('a' + util_rand_below(r, 2));
	return len;
}

/* ---- merging iterator ---------------------------------------------------- */

START_TEST(test_kv_iter__merge_empty)
{
	struct kv_iter *it, *none[1];
	int freed = 0;
	struct kv_iter **arr = malloc(2 * sizeof(*arr));
	ck_assert_ptr_nonnull(arr);

	/* n == 0 */
	ck_assert_int_eq(kv_merge_iter_create(&it, malloc(1), 0), 0);
	it->ops->seek_first(it);
	ck_assert(!it->ops->valid(it));
	ck_assert_int_eq(it->ops->status(it), 0);
	it->ops->free(it);

	/* Two empty children; both freed with the merge. */
	arr[0] = vec_create(NULL, 0, &freed);
	arr[1] = vec_create(NULL, 0, &freed);
	ck_assert_int_eq(kv_merge_iter_create(&it, arr, 2), 0);
	it->ops->seek_first(it);
	ck_assert(!it->ops->valid(it));
	it->ops->free(it);
	ck_assert_int_eq(freed, 2);
	(void)none;
}
END_TEST

/* The same internal key in two children: the newer (lower index) child
 * comes first. */
START_TEST(test_kv_iter__merge_tie_newest_first)
{
	struct ent a, b;
	struct kv_iter *it;
	const uint8_t *v;
	size_t vlen;
	struct kv_iter **arr = malloc(2 * sizeof(*arr));
	ck_assert_ptr_nonnull(arr);

	ent_make(&a, "k", 1, 7, KV_TYPE_VALUE, 1);
	ent_make(&b, "k", 1, 7, KV_TYPE_VALUE, 2);
	arr[0] = vec_create(&b, 1, NULL);     /* newest */
	arr[1] = vec_create(&a, 1, NULL);
	ck_assert_int_eq(kv_merge_iter_create(&it, arr, 2), 0);
	it->ops->seek_first(it);
	ck_assert(it->ops->valid(it));
	it->ops->value(it, &v, &vlen);
	ck_assert_uint_eq(util_get_be32(v), 2);
	it->ops->next(it);
	ck_assert(it->ops->valid(it));
	it->ops->value(it, &v, &vlen);
	ck_assert_uint_eq(util_get_be32(v), 1);
	it->ops->next(it);
	ck_assert(!it->ops->valid(it));
	it->ops->free(it);
}
END_TEST

#define NCHILD 6
#define PER_CHILD 3000

START_TEST(test_kv_iter__merge_model)
{
	struct util_rand r;
	struct ent *all = calloc(NCHILD * PER_CHILD, sizeof(*all));
	struct kv_iter **arr = malloc(NCHILD * sizeof(*arr));
	struct kv_iter *it;
	int freed = 0;
	size_t total = 0;
	uint64_t seq = 1;

	ck_assert_ptr_nonnull(all);
	ck_assert_ptr_nonnull(arr);
	util_rand_seed(&r, 7 + (uint64_t)_i);
	for (int c = 0; c < NCHILD; c++) {
		/* Child sizes vary, one is empty. */
		size_t n = c == 2 ? 0 : util_rand_below(&r, PER_CHILD) + 1;
		struct ent *start = all + total;
		for (size_t i = 0; i < n; i++) {
			uint8_t k[8];
			size_t kl = rand_ukey(&r, k);
			ent_make(&start[i], k, kl, seq++, (enum kv_type)util_rand_below(&r, 2),
				 (uint32_t)(c << 24 | i));
		}
		arr[c] = vec_create(start, n, &freed);
		total += n;
	}
	qsort(all, total, sizeof(*all), ent_cmp);
	ck_assert_int_eq(kv_merge_iter_create(&it, arr, NCHILD), 0);

	size_t i = 0;
	for (it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it), i++) {
		const uint8_t *k, *v;
		size_t klen, vlen;
		ck_assert_uint_lt(i, total);
		it->ops->key(it, &k, &klen);
		it->ops->value(it, &v, &vlen);
		ck_assert_uint_eq(klen, all[i].iklen);
		ck_assert(!memcmp(k, all[i].ikey, klen));
		ck_assert_uint_eq(util_get_be32(v), all[i].val);
	}
	ck_assert_uint_eq(i, total);
	ck_assert_int_eq(it->ops->status(it), 0);

	/* Seeks, then a few steps, agree with the model's lower bound. */
	for (int q = 0; q < 3000; q++) {
		uint8_t ik[8 + KV_IKEY_TRAILER];
		size_t kl = rand_ukey(&r, ik);
		util_put_be64(ik + kl, kv_ikey_pack(util_rand_below(&r, seq + 1),
						    (enum kv_type)util_rand_below(&r, 2)));
		size_t lb = 0;
		while (lb < total && kv_ikey_cmp(all[lb].ikey, all[lb].iklen, ik,
						 kl + KV_IKEY_TRAILER) < 0)
			lb++;
		it->ops->seek(it, ik, kl + KV_IKEY_TRAILER);
		for (int step = 0; step < 5; step++, lb++) {
			if (lb >= total) {
				ck_assert(!it->ops->valid(it));
				break;
			}
			ck_assert(it->ops->valid(it));
			const uint8_t *k;
			size_t klen;
			it->ops->key(it, &k, &klen);
			ck_assert_uint_eq(klen, all[lb].iklen);
			ck_assert(!memcmp(k, all[lb].ikey, klen));
			it->ops->next(it);
		}
	}
	it->ops->free(it);
	ck_assert_int_eq(freed, NCHILD);
	free(all);
}
END_TEST

/* A child that fails mid-way stops the merge with its error. */
START_TEST(test_kv_iter__merge_child_error)
{
	struct ent e[10];
	struct kv_iter *it;
	struct kv_iter **arr = malloc(2 * sizeof(*arr));
	ck_assert_ptr_nonnull(arr);

	for (int i = 0; i < 10; i++) {
		uint8_t k = (uint8_t)('a' + i);
		ent_make(&e[i], &k, 1, (uint64_t)i + 1, KV_TYPE_VALUE, (uint32_t)i);
	}
	arr[0] = vec_create(e, 5, NULL);          /* a..e */
	arr[1] = vec_create(e + 5, 5, NULL);      /* f..j, fails moving onto index 2 */
	((struct vec_iter *)arr[1])->fail_at = 2;
	ck_assert_int_eq(kv_merge_iter_create(&it, arr, 2), 0);
	int n = 0;
	for (it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it))
		n++;
	ck_assert_int_eq(n, 7);                   /* a..e, f, g; h fails */
	ck_assert_int_eq(it->ops->status(it), -EIO);
	/* Sticky: a seek does not resurrect it. */
	it->ops->seek_first(it);
	ck_assert(!it->ops->valid(it));
	ck_assert_int_eq(it->ops->status(it), -EIO);
	it->ops->free(it);

	/* An error at seek time. */
	arr = malloc(2 * sizeof(*arr));
	ck_assert_ptr_nonnull(arr);
	arr[0] = vec_create(e, 5, NULL);
	arr[1] = vec_create(e + 5, 5, NULL);
	((struct vec_iter *)arr[0])->fail_at = 0;
	ck_assert_int_eq(kv_merge_iter_create(&it, arr, 2), 0);
	it->ops->seek_first(it);
	ck_assert(!it->ops->valid(it));
	ck_assert_int_eq(it->ops->status(it), -EIO);
	it->ops->free(it);
}
END_TEST

/* ---- user iterator ------------------------------------------------------- */

struct uent {
	uint8_t k[8];
	size_t klen;
	uint64_t seq;
	enum kv_type type;
	uint32_t val;
};

static int uent_cmp(const void *a, const void *b)
{
	const struct uent *x = a, *y = b;
	int c = kv_ukey_cmp(x->k, x->klen, y->k, y->klen);
	if (c)
		return c;
	return x->seq > y->seq ? -1 : x->seq < y->seq;
}

/* Expected user view: indexes of the visible entries in sorted model m. */
static size_t user_model(const struct uent *m, size_t n, uint64_t snap, const uint8_t *lo,
			 size_t lolen, const uint8_t *hi, size_t hilen, size_t *out)
{
	size_t nout = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && !kv_ukey_cmp(m[j].k, m[j].klen, m[i].k, m[i].klen))
			j++;
		/* [i, j) is one user key, newest first. */
		for (size_t t = i; t < j; t++) {
			if (m[t].seq > snap)
				continue;
			if (m[t].type == KV_TYPE_VALUE &&
			    (!lo || kv_ukey_cmp(m[t].k, m[t].klen, lo, lolen) >= 0) &&
			    (!hi || kv_ukey_cmp(m[t].k, m[t].klen, hi, hilen) < 0))
				out[nout++] = t;
			break;
		}
		i = j;
	}
	return nout;
}

/* Three memtables under a merge, as the engine will build it. */
static struct kv_iter *user_build(struct kv_mem **mems, int nm, uint64_t snap,
				  const uint8_t *lo, size_t lolen, const uint8_t *hi,
				  size_t hilen)
{
	struct kv_iter **arr = malloc((size_t)nm * sizeof(*arr));
	struct kv_iter *merge, *user;
	ck_assert_ptr_nonnull(arr);
	for (int i = 0; i < nm; i++)
		ck_assert_int_eq(kv_mem_iter_create(&arr[i], mems[i]), 0);
	ck_assert_int_eq(kv_merge_iter_create(&merge, arr, (size_t)nm), 0);
	ck_assert_int_eq(kv_user_iter_create(&user, merge, snap, lo, lolen, hi, hilen), 0);
	return user;
}

START_TEST(test_kv_iter__user_hides_tombstones)
{
	struct kv_mem *m;
	struct kv_iter *it;
	const uint8_t *k, *v;
	size_t klen, vlen;

	ck_assert_int_eq(kv_mem_create(&m, NULL), 0);
	ck_assert_int_eq(kv_mem_add(m, 1, KV_TYPE_VALUE, "a", 1, "a1", 2), 0);
	ck_assert_int_eq(kv_mem_add(m, 2, KV_TYPE_VALUE, "b", 1, "b2", 2), 0);
	ck_assert_int_eq(kv_mem_add(m, 3, KV_TYPE_DELETE, "b", 1, NULL, 0), 0);
	ck_assert_int_eq(kv_mem_add(m, 4, KV_TYPE_VALUE, "a", 1, "a4", 2), 0);
	ck_assert_int_eq(kv_mem_add(m, 5, KV_TYPE_VALUE, "c", 1, "c5", 2), 0);

	it = user_build(&m, 1, KV_SEQ_MAX, NULL, 0, NULL, 0);
	it->ops->seek_first(it);
	ck_assert(it->ops->valid(it));
	it->ops->key(it, &k, &klen);
	it->ops->value(it, &v, &vlen);
	ck_assert_uint_eq(klen, 1);
	ck_assert_mem_eq(k, "a", 1);
	ck_assert_mem_eq(v, "a4", 2);              /* newest, a1 shadowed */
	it->ops->next(it);
	ck_assert(it->ops->valid(it));
	it->ops->key(it, &k, &klen);
	ck_assert_mem_eq(k, "c", 1);               /* b deleted */
	it->ops->next(it);
	ck_assert(!it->ops->valid(it));
	ck_assert_int_eq(it->ops->status(it), 0);
	/* seek takes a user key */
	it->ops->seek(it, (const uint8_t *)"b", 1);
	ck_assert(it->ops->valid(it));
	it->ops->key(it, &k, &klen);
	ck_assert_mem_eq(k, "c", 1);
	it->ops->free(it);

	/* At snapshot 2, b is alive and a is a1. */
	it = user_build(&m, 1, 2, NULL, 0, NULL, 0);
	it->ops->seek_first(it);
	it->ops->value(it, &v, &vlen);
	ck_assert_mem_eq(v, "a1", 2);
	it->ops->next(it);
	it->ops->value(it, &v, &vlen);
	ck_assert_mem_eq(v, "b2", 2);
	it->ops->next(it);
	ck_assert(!it->ops->valid(it));
	it->ops->free(it);

	/* Bounds [b, c): empty at now, b at snapshot 2. */
	it = user_build(&m, 1, KV_SEQ_MAX, (const uint8_t *)"b", 1, (const uint8_t *)"c", 1);
	it->ops->seek_first(it);
	ck_assert(!it->ops->valid(it));
	it->ops->seek(it, (const uint8_t *)"a", 1);   /* clamped to lo */
	ck_assert(!it->ops->valid(it));
	it->ops->free(it);
	it = user_build(&m, 1, 2, (const uint8_t *)"b", 1, (const uint8_t *)"c", 1);
	it->ops->seek(it, (const uint8_t *)"", 0);
	ck_assert(it->ops->valid(it));
	it->ops->key(it, &k, &klen);
	ck_assert_mem_eq(k, "b", 1);
	it->ops->next(it);
	ck_assert(!it->ops->valid(it));
	it->ops->free(it);
	kv_mem_unref(m);
}
END_TEST

#define UMODEL_N 20000

START_TEST(test_kv_iter__user_model)
{
	struct util_rand r;
	struct kv_mem *mems[3];
	struct uent *m = calloc(UMODEL_N, sizeof(*m));
	size_t *exp = calloc(UMODEL_N, sizeof(*exp));
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(exp);

	util_rand_seed(&r, 99 + (uint64_t)_i);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(kv_mem_create(&mems[i], NULL), 0);
	/* Memtable 0 gets the newest seqs, like the engine's active one;
	 * versions of a key are spread over all three. */
	for (size_t i = 0; i < UMODEL_N; i++) {
		struct uent *e = &m[i];
		e->klen = rand_ukey(&r, e->k);
		if (util_rand_below(&r, 2))   /* more distinct keys: 4 bytes */
			e->klen = 3 + util_rand_below(&r, 2), e->k[2] = (uint8_t)util_rand_below(&r, 8);
		e->seq = i + 1;
		e->type = util_rand_below(&r, 3) == 0 ? KV_TYPE_DELETE : KV_TYPE_VALUE;
		e->val = (uint32_t)util_rand_next(&r);
		if (e->klen > 3)
			e->k[3] = (uint8_t)util_rand_below(&r, 4);
		int which = 2 - (int)(i * 3 / UMODEL_N);
		uint8_t vb[4];
		util_put_be32(vb, e->val);
		ck_assert_int_eq(kv_mem_add(mems[which], e->seq, e->type, e->k, e->klen, vb,
					    e->type == KV_TYPE_VALUE ? 4 : 0), 0);
	}
	qsort(m, UMODEL_N, sizeof(*m), uent_cmp);

	for (int q = 0; q < 60; q++) {
		uint64_t snap = q == 0 ? KV_SEQ_MAX : util_rand_below(&r, UMODEL_N + 2);
		uint8_t lo[8], hi[8];
		size_t lolen = 0, hilen = 0;
		int has_lo = q % 3 != 0, has_hi = q % 4 != 0;
		if (has_lo)
			lolen = rand_ukey(&r, lo);
		if (has_hi)
			hilen = rand_ukey(&r, hi);
		size_t nexp = user_model(m, UMODEL_N, snap, has_lo ? lo : NULL, lolen,
					 has_hi ? hi : NULL, hilen, exp);
		struct kv_iter *it = user_build(mems, 3, snap, has_lo ? lo : NULL, lolen,
						has_hi ? hi : NULL, hilen);
		size_t i = 0;
		for (it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it), i++) {
			const uint8_t *k, *v;
			size_t klen, vlen;
			ck_assert_uint_lt(i, nexp);
			const struct uent *e = &m[exp[i]];
			it->ops->key(it, &k, &klen);
			it->ops->value(it, &v, &vlen);
			ck_assert_uint_eq(klen, e->klen);
			ck_assert(!memcmp(k, e->k, klen));
			ck_assert_uint_eq(vlen, 4);
			ck_assert_uint_eq(util_get_be32(v), e->val);
		}
		ck_assert_uint_eq(i, nexp);
		ck_assert_int_eq(it->ops->status(it), 0);

		/* Seeks by user key. */
		for (int s = 0; s < 50; s++) {
			uint8_t t[8];
			size_t tl = rand_ukey(&r, t);
			size_t j = 0;
			while (j < nexp && kv_ukey_cmp(m[exp[j]].k, m[exp[j]].klen, t, tl) < 0)
				j++;
			it->ops->seek(it, t, tl);
			if (j == nexp) {
				ck_assert(!it->ops->valid(it));
				continue;
			}
			ck_assert(it->ops->valid(it));
			const uint8_t *k;
			size_t klen;
			it->ops->key(it, &k, &klen);
			ck_assert_uint_eq(klen, m[exp[j]].klen);
			ck_assert(!memcmp(k, m[exp[j]].k, klen));
		}
		it->ops->free(it);
	}
	for (int i = 0; i < 3; i++)
		kv_mem_unref(mems[i]);
	free(m);
	free(exp);
}
END_TEST

/* The user view reports the inner iterator's error. */
START_TEST(test_kv_iter__user_inner_error)
{
	struct ent e[4];
	struct kv_iter *inner, *it;
	for (int i = 0; i < 4; i++) {
		uint8_t k = (uint8_t)('a' + i);
		ent_make(&e[i], &k, 1, (uint64_t)i + 1, KV_TYPE_VALUE, (uint32_t)i);
	}
	inner = vec_create(e, 4, NULL);
	((struct vec_iter *)inner)->fail_at = 2;
	ck_assert_int_eq(kv_user_iter_create(&it, inner, KV_SEQ_MAX, NULL, 0, NULL, 0), 0);
	int n = 0;
	for (it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it))
		n++;
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(it->ops->status(it), -EIO);
	it->ops->free(it);
}
END_TEST

static Suite *kv_iter_suite(void)
{
	Suite *s = suite_create("kv_iter");
	TCase *tc;

	tc = tcase_create("merge");
	tcase_add_test(tc, test_kv_iter__merge_empty);
	tcase_add_test(tc, test_kv_iter__merge_tie_newest_first);
	tcase_add_loop_test(tc, test_kv_iter__merge_model, 0, 3);
	tcase_add_test(tc, test_kv_iter__merge_child_error);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);

	tc = tcase_create("user");
	tcase_add_test(tc, test_kv_iter__user_hides_tombstones);
	tcase_add_loop_test(tc, test_kv_iter__user_model, 0, 2);
	tcase_add_test(tc, test_kv_iter__user_inner_error);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(kv_iter_suite)
