/*
 * kv_iter.c - iterators built from other iterators: the merging iterator
 * (n sorted internal-key iterators -> one sorted stream) and the user
 * view (internal keys -> the newest visible value of each user key).
 *
 * MERGING ITERATOR
 *   Children are ordered newest first (memtable, frozen memtables, L0
 *   newest to oldest, sorted runs). The valid children sit in a binary
 *   min-heap keyed by (current internal key, child index): the top is the
 *   smallest key and, on equal internal keys, the newest child. Seek
 *   repositions every child and rebuilds the heap (O(n)); next advances
 *   only the top child and sifts it down (O(log n)).
 *   Errors: a child that stops with a non-zero status() poisons the merge
 *   (it becomes invalid and status() returns that first error) because
 *   going on would silently skip that child's entries.
 *
 * USER ITERATOR
 *   Wraps one internal iterator (usually a merge). It is positioned on an
 *   entry E of the inner iterator such that E is the first version of its
 *   user key with seq <= snap, E is not a tombstone, and the user key is
 *   in [lo, hi). Moving on copies the current user key and skips every
 *   further version of it, since the inner iterator's key bytes are only
 *   borrowed until it moves.
 *
 * THREADING
 *   An iterator belongs to one thread at a time (like its children).
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- merging iterator ---------------------------------------------------- */

struct kv_merge_iter {
	struct kv_iter base;              /* must be first */
	struct kv_iter **child;           /* n children, newest first (owned) */
	size_t n;
	size_t *heap;                     /* child indexes; heap[0] is the top */
	size_t nheap;                     /* valid children in the heap */
	int err;                          /* first child error; sticky */
};

static inline void kv_iter_ikey(struct kv_iter *it, const uint8_t **k, size_t *len)
{
	it->ops->key(it, k, len);
}

/* 1 if child a's current entry comes before child b's. */
static int kv_merge_less(struct kv_merge_iter *mi, size_t a, size_t b)
{
	const uint8_t *ka, *kb;
	size_t la, lb;
	kv_iter_ikey(mi->child[a], &ka, &la);
	kv_iter_ikey(mi->child[b], &kb, &lb);
	int c = kv_ikey_cmp(ka, la, kb, lb);
	return c < 0 || (c == 0 && a < b);
}

static void kv_merge_sift_down(struct kv_merge_iter *mi, size_t i)
{
	size_t *h = mi->heap;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < mi->nheap && kv_merge_less(mi, h[l], h[m]))
			m = l;
		if (r < mi->nheap && kv_merge_less(mi, h[r], h[m]))
			m = r;
		if (m == i)
			return;
		size_t t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* Collect the valid children (noting the first error) and heapify. */
static void kv_merge_rebuild(struct kv_merge_iter *mi)
{
	mi->nheap = 0;
	for (size_t i = 0; i < mi->n; i++) {
		struct kv_iter *c = mi->child[i];
		if (c->ops->valid(c)) {
			mi->heap[mi->nheap++] = i;
		} else if (!mi->err) {
			mi->err = c->ops->status(c);
		}
	}
	if (mi->err) {
		mi->nheap = 0;
		return;
	}
	for (size_t i = mi->nheap / 2; i-- > 0;)
		kv_merge_sift_down(mi, i);
}

static void kv_merge_iter__seek(struct kv_iter *it, const uint8_t *ikey, size_t len)
{
	struct kv_merge_iter *mi = (struct kv_merge_iter *)it;
	if (mi->err)
		return;
	for (size_t i = 0; i < mi->n; i++)
		mi->child[i]->ops->seek(mi->child[i], ikey, len);
	kv_merge_rebuild(mi);
}

static void kv_merge_iter__seek_first(struct kv_iter *it)
{
	struct kv_merge_iter *mi = (struct kv_merge_iter *)it;
	if (mi->err)
		return;
	for (size_t i = 0; i < mi->n; i++)
		mi->child[i]->ops->seek_first(mi->child[i]);
	kv_merge_rebuild(mi);
}

static void kv_merge_iter__next(struct kv_iter *it)
{
	struct kv_merge_iter *mi = (struct kv_merge_iter *)it;
	assert(mi->nheap > 0);
	struct kv_iter *c = mi->child[mi->heap[0]];
	c->ops->next(c);
	if (!c->ops->valid(c)) {
		int rc = c->ops->status(c);
		if (rc) {
			mi->err = rc;
			mi->nheap = 0;
			return;
		}
		mi->heap[0] = mi->heap[--mi->nheap];
	}
	if (mi->nheap)
		kv_merge_sift_down(mi, 0);
}

static int kv_merge_iter__valid(struct kv_iter *it)
{
	return ((struct kv_merge_iter *)it)->nheap > 0;
}

static void kv_merge_iter__key(struct kv_iter *it, const uint8_t **k, size_t *len)
{
	struct kv_merge_iter *mi = (struct kv_merge_iter *)it;
	assert(mi->nheap > 0);
	kv_iter_ikey(mi->child[mi->heap[0]], k, len);
}

static void kv_merge_iter__value(struct kv_iter *it, const uint8_t **v, size_t *len)
{
	struct kv_merge_iter *mi = (struct kv_merge_iter *)it;
	assert(mi->nheap > 0);
	struct kv_iter *c = mi->child[mi->heap[0]];
	c->ops->value(c, v, len);
}

static int kv_merge_iter__status(struct kv_iter *it)
{
	return ((struct kv_merge_iter *)it)->err;
}

static void kv_merge_iter__free(struct kv_iter *it)
{
	struct kv_merge_iter *mi = (struct kv_merge_iter *)it;
	if (!mi)
		return;
	for (size_t i = 0; i < mi->n; i++)
		mi->child[i]->ops->free(mi->child[i]);
	free(mi->child);
	free(mi->heap);
	free(mi);
}

static const struct kv_iter_ops kv_merge_iter_ops = {
	.seek = kv_merge_iter__seek,
	.seek_first = kv_merge_iter__seek_first,
	.next = kv_merge_iter__next,
	.valid = kv_merge_iter__valid,
	.key = kv_merge_iter__key,
	.value = kv_merge_iter__value,
	.status = kv_merge_iter__status,
	.free = kv_merge_iter__free,
};

int kv_merge_iter_create(struct kv_iter **out, struct kv_iter **children, size_t n)
{
	struct kv_merge_iter *mi = calloc(1, sizeof(*mi));
	if (!mi)
		return -ENOMEM;
	/* calloc checks n * size for overflow; +1 keeps n == 0 non-NULL. */
	mi->heap = calloc(n + 1, sizeof(*mi->heap));
	if (!mi->heap) {
		free(mi);
		return -ENOMEM;
	}
	mi->base.ops = &kv_merge_iter_ops;
	mi->child = children;
	mi->n = n;
	*out = &mi->base;
	return 0;
}

/* ---- user iterator ------------------------------------------------------- */

struct kv_user_iter {
	struct kv_iter base;              /* must be first */
	struct kv_iter *inner;            /* internal-key iterator (owned) */
	uint64_t snap;                    /* newest visible seq */
	uint8_t *lo, *hi;                 /* bounds (copies), NULL = open */
	size_t lolen, hilen;
	struct kv_buf tmp;                /* seek key / user key being skipped */
	int valid;                        /* positioned on a visible entry */
	int err;                          /* sticky: -ENOMEM or inner error */
};

/* Record the inner iterator's status once it runs out. */
static void kv_user_stop(struct kv_user_iter *ui)
{
	ui->valid = 0;
	if (!ui->err)
		ui->err = ui->inner->ops->status(ui->inner);
}

/*
 * Advance the inner iterator past every entry whose user key equals the
 * one in ui->tmp.
 */
static void kv_user_skip_key(struct kv_user_iter *ui)
{
	struct kv_iter *in = ui->inner;
	while (in->ops->valid(in)) {
		const uint8_t *k;
		size_t len;
		kv_iter_ikey(in, &k, &len);
		if (len < KV_IKEY_TRAILER ||
		    kv_ukey_cmp(k, len - KV_IKEY_TRAILER, ui->tmp.data, ui->tmp.len) != 0)
			return;
		in->ops->next(in);
	}
}

/*
 * From the inner iterator's position, find the first entry that is the
 * newest visible version of its user key, is not a tombstone and is
 * below hi. The inner iterator never goes below lo: every seek is clamped.
 */
static void kv_user_find(struct kv_user_iter *ui)
{
	struct kv_iter *in = ui->inner;
	for (;;) {
		if (!in->ops->valid(in)) {
			kv_user_stop(ui);
			return;
		}
		const uint8_t *k;
		size_t len;
		kv_iter_ikey(in, &k, &len);
		if (len < KV_IKEY_TRAILER) {
			/* Every source checks its keys when it decodes them. */
			assert(!"internal key shorter than its trailer");
			ui->err = KV_ECORRUPT;
			ui->valid = 0;
			return;
		}
		size_t uklen = len - KV_IKEY_TRAILER;
		if (ui->hi && kv_ukey_cmp(k, uklen, ui->hi, ui->hilen) >= 0) {
			ui->valid = 0;            /* past the upper bound: done */
			return;
		}
		if (kv_ikey_seq(k, len) > ui->snap) {
			in->ops->next(in);        /* too new for this snapshot */
			continue;
		}
		if (kv_ikey_type(k, len) != KV_TYPE_DELETE) {
			ui->valid = 1;
			return;
		}
		/* Newest visible version is a tombstone: hide the key. */
		ui->tmp.len = 0;
		if (kv_buf_append(&ui->tmp, k, uklen)) {
			ui->err = -ENOMEM;
			ui->valid = 0;
			return;
		}
		kv_user_skip_key(ui);
	}
}

/* Seek the inner iterator to the first version of ukey visible at snap. */
static void kv_user_seek_inner(struct kv_user_iter *ui, const uint8_t *ukey, size_t uklen)
{
	uint8_t trailer[KV_IKEY_TRAILER];
	util_put_be64(trailer, ui->snap << 8 | 0xff);
	ui->tmp.len = 0;
	if (kv_buf_reserve(&ui->tmp, uklen + KV_IKEY_TRAILER)) {
		ui->err = -ENOMEM;
		ui->valid = 0;
		return;
	}
	kv_buf_append(&ui->tmp, ukey, uklen);          /* cannot fail now */
	kv_buf_append(&ui->tmp, trailer, sizeof(trailer));
	ui->inner->ops->seek(ui->inner, ui->tmp.data, ui->tmp.len);
	kv_user_find(ui);
}

static void kv_user_iter__seek(struct kv_iter *it, const uint8_t *ukey, size_t len)
{
	struct kv_user_iter *ui = (struct kv_user_iter *)it;
	if (ui->err)
		return;
	if (ui->lo && kv_ukey_cmp(ukey, len, ui->lo, ui->lolen) < 0) {
		ukey = ui->lo;
		len = ui->lolen;
	}
	kv_user_seek_inner(ui, ukey, len);
}

static void kv_user_iter__seek_first(struct kv_iter *it)
{
	struct kv_user_iter *ui = (struct kv_user_iter *)it;
	if (ui->err)
		return;
	if (ui->lo) {
		kv_user_seek_inner(ui, ui->lo, ui->lolen);
	} else {
		ui->inner->ops->seek_first(ui->inner);
		kv_user_find(ui);
	}
}

static void kv_user_iter__next(struct kv_iter *it)
{
	struct kv_user_iter *ui = (struct kv_user_iter *)it;
	const uint8_t *k;
	size_t len;

	assert(ui->valid);
	kv_iter_ikey(ui->inner, &k, &len);
	ui->tmp.len = 0;
	if (kv_buf_append(&ui->tmp, k, len - KV_IKEY_TRAILER)) {
		ui->err = -ENOMEM;
		ui->valid = 0;
		return;
	}
	kv_user_skip_key(ui);
	kv_user_find(ui);
}

static int kv_user_iter__valid(struct kv_iter *it)
{
	return ((struct kv_user_iter *)it)->valid;
}

static void kv_user_iter__key(struct kv_iter *it, const uint8_t **k, size_t *len)
{
	struct kv_user_iter *ui = (struct kv_user_iter *)it;
	assert(ui->valid);
	kv_iter_ikey(ui->inner, k, len);
	*len -= KV_IKEY_TRAILER;
}

static void kv_user_iter__value(struct kv_iter *it, const uint8_t **v, size_t *len)
{
	struct kv_user_iter *ui = (struct kv_user_iter *)it;
	assert(ui->valid);
	ui->inner->ops->value(ui->inner, v, len);
}

static int kv_user_iter__status(struct kv_iter *it)
{
	struct kv_user_iter *ui = (struct kv_user_iter *)it;
	return ui->err ? ui->err : ui->inner->ops->status(ui->inner);
}

static void kv_user_iter__free(struct kv_iter *it)
{
	struct kv_user_iter *ui = (struct kv_user_iter *)it;
	if (!ui)
		return;
	ui->inner->ops->free(ui->inner);
	kv_buf_free(&ui->tmp);
	free(ui->lo);
	free(ui->hi);
	free(ui);
}

static const struct kv_iter_ops kv_user_iter_ops = {
	.seek = kv_user_iter__seek,
	.seek_first = kv_user_iter__seek_first,
	.next = kv_user_iter__next,
	.valid = kv_user_iter__valid,
	.key = kv_user_iter__key,
	.value = kv_user_iter__value,
	.status = kv_user_iter__status,
	.free = kv_user_iter__free,
};

int kv_user_iter_is_ref(struct kv_iter *it)
{
	struct kv_user_iter *ui = (struct kv_user_iter *)it;
	const uint8_t *k;
	size_t len;

	assert(ui->valid);
	kv_iter_ikey(ui->inner, &k, &len);
	return kv_ikey_type(k, len) == KV_TYPE_REF;
}

/* malloc'd copy of a bound, or NULL for "open"; 0 or -ENOMEM. */
static int kv_user_bound(uint8_t **out, const void *p, size_t len)
{
	*out = NULL;
	if (!p)
		return 0;
	*out = malloc(len ? len : 1);
	if (!*out)
		return -ENOMEM;
	if (len)
		memcpy(*out, p, len);
	return 0;
}

int kv_user_iter_create(struct kv_iter **out, struct kv_iter *inner, uint64_t snap,
			const void *lo, size_t lolen, const void *hi, size_t hilen)
{
	struct kv_user_iter *ui = calloc(1, sizeof(*ui));
	if (!ui)
		return -ENOMEM;
	if (kv_user_bound(&ui->lo, lo, lolen) || kv_user_bound(&ui->hi, hi, hilen))
		goto nomem;
	ui->base.ops = &kv_user_iter_ops;
	ui->inner = inner;
	ui->snap = snap > KV_SEQ_MAX ? KV_SEQ_MAX : snap;
	ui->lolen = lolen;
	ui->hilen = hilen;
	*out = &ui->base;
	return 0;

nomem:
	free(ui->lo);
	free(ui->hi);
	free(ui);
	return -ENOMEM;
}
