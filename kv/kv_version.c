/*
 * kv_version.c - versions: the open SST readers behind one manifest.
 *
 * A new version is built whenever the manifest changes (flush, compaction,
 * reload after a CAS conflict). Readers of SSTs that the previous version
 * also had are shared (reference-counted), so their cached index and
 * filter survive; only new SSTs are opened (footer + index + filter: two
 * ranged GETs each).
 *
 * BROKEN TABLES
 *   A table whose footer, filter or index fails its checks is first read
 *   whole and given an index rebuilt from its data blocks
 *   (kv_sst_open_rebuilt, kv_sst_rebuild.c), which serves it as if
 *   nothing had happened when every block is sound. One that cannot be
 *   rebuilt so (a data block damaged too), or that is missing, gets a
 *   broken reader (kv_sst_open_broken) instead of failing
 *   the whole version: one damaged object would otherwise keep the
 *   filesystem from mounting at all. Reads of keys in its range fail as
 *   corrupt, naming it; iterations fail only when they reach its range;
 *   the compactor quarantines it (kv_compact.c). Scrub names exactly the
 *   paths that fail (docs/scrub.md).
 *
 * Lookup order (newest data first): L0 newest to oldest, then sorted runs
 * newest to oldest; within a run, the one SST whose key range covers the
 * key. The first version found with seq <= snap wins: every source is
 * strictly newer than the ones after it for any key.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct kv_sst_reader *kv_version_find(const struct kv_version *v,
					     const struct kv_sst_id *id)
{
	if (!v)
		return NULL;
	for (size_t i = 0; i < v->man->n_l0; i++)
		if (!memcmp(v->man->l0[i].id.b, id->b, 16))
			return v->l0[i];
	for (size_t i = 0; i < v->man->n_runs; i++)
		for (size_t j = 0; j < v->man->runs[i].n; j++)
			if (!memcmp(v->man->runs[i].ssts[j].id.b, id->b, 16))
				return v->runs[i].r[j];
	return NULL;
}

static int kv_vdata_cmp(const void *id, const void *d)
{
	return memcmp(id, ((const struct kv_vdata *)d)->id.b, 16);
}

/* A data table's reader in version v, or NULL. */
static struct kv_vdata *kv_version_data(const struct kv_version *v, const struct kv_sst_id *id)
{
	return v && v->n_data ? bsearch(id->b, v->data, v->n_data, sizeof(*v->data), kv_vdata_cmp)
			      : NULL;
}

static int kv_version_reader(struct kv_sst_reader **out, const struct kv_sst_meta *meta,
			     const struct kv_version *prev, struct kv_sst_reader *extra,
			     const struct kv_sst_id *extra_id, struct obj_backend *store,
			     struct kv_cache *cache)
{
	struct kv_sst_reader *r = kv_version_find(prev, &meta->id);
	if (!r && extra && !memcmp(extra_id->b, meta->id.b, 16))
		r = extra;
	if (r) {
		kv_sst_ref(r);
		*out = r;
		return 0;
	}
	int rc = kv_sst_open(out, store, cache, meta);
	if (rc == -ENOENT) {
		/* The manifest names it, so it must exist: lost or deleted by
		 * something other than our GC. */
		char name[64];
		kv_sst_id_name(&meta->id, name, sizeof(name));
		rc = KV_CORRUPT(name, KV_CORRUPT_NO_OFFSET,
				"missing but the manifest references it");
	}
	if (rc == KV_ECORRUPT) {
		/* A damaged footer, filter or index: rebuilt from the data blocks
		 * when they are all sound; else BROKEN TABLES: serve everything
		 * else. */
		struct kv_corrupt_info ci;
		kv_corrupt_mine(&ci);
		rc = kv_sst_open_rebuilt(out, store, cache, meta,
					 ci.reason[0] ? ci.reason : "corrupt");
		if (rc == KV_ECORRUPT)
			rc = kv_sst_open_broken(out, meta, ci.reason[0] ? ci.reason : "corrupt");
	}
	return rc;
}

static int kv_vdata_order(const void *a, const void *b)
{
	return memcmp(((const struct kv_vdata *)a)->id.b, ((const struct kv_vdata *)b)->id.b, 16);
}

/* Add table t's data tables to v->data (room for them is there). */
static void kv_version_data_take(struct kv_version *v, const struct kv_sst_meta *t)
{
	for (size_t k = 0; k < t->n_refs; k++)
		v->data[v->n_data++] = (struct kv_vdata){ .id = t->refs[k].id, .size = t->refs[k].size,
							  .live = t->refs[k].bytes };
}

/*
 * The data tables every table of man references, sorted by id, each once
 * with the live bytes of all its references: every list appended, sorted,
 * and merged (a version is built at every flush and compaction, over
 * however many data tables the store has).
 */
static int kv_version_data_ids(struct kv_version *v, const struct kv_manifest *man)
{
	size_t total = 0, n = 0;

	for (size_t i = 0; i < man->n_l0; i++)
		total += man->l0[i].n_refs;
	for (size_t i = 0; i < man->n_runs; i++)
		for (size_t j = 0; j < man->runs[i].n; j++)
			total += man->runs[i].ssts[j].n_refs;
	if (!total)
		return 0;
	if (!(v->data = calloc(total, sizeof(*v->data))))
		return -ENOMEM;
	for (size_t i = 0; i < man->n_l0; i++)
		kv_version_data_take(v, &man->l0[i]);
	for (size_t i = 0; i < man->n_runs; i++)
		for (size_t j = 0; j < man->runs[i].n; j++)
			kv_version_data_take(v, &man->runs[i].ssts[j]);
	qsort(v->data, v->n_data, sizeof(*v->data), kv_vdata_order);
	for (size_t i = 0; i < v->n_data; i++) {
		if (n && !memcmp(v->data[n - 1].id.b, v->data[i].id.b, 16))
			v->data[n - 1].live += v->data[i].live;
		else
			v->data[n++] = v->data[i];
	}
	v->n_data = n;
	return 0;
}

/*
 * Open the data tables of v, sharing the readers prev has. Nothing is
 * read here for a new one but its footer and index (no filter: every
 * lookup in a data table finds its entry). One whose footer or index is
 * damaged is read through an index rebuilt from its data blocks when
 * those are sound (BROKEN TABLES above); one that is missing, or cannot
 * be rebuilt, gets no reader: reads of the values in it fail as corrupt,
 * naming it, and everything else is served.
 */
static int kv_version_open_data(struct kv_version *v, const struct kv_version *prev,
				struct obj_backend *store, struct kv_cache *cache)
{
	for (size_t i = 0; i < v->n_data; i++) {
		struct kv_vdata *d = &v->data[i];
		struct kv_vdata *p = kv_version_data(prev, &d->id);
		if (p && p->r) {
			kv_sst_ref(p->r);
			d->r = p->r;
			continue;
		}
		struct kv_sst_meta meta = { .id = d->id, .size = d->size };
		int rc = kv_sst_open(&d->r, store, cache, &meta);
		if (rc == KV_ECORRUPT) {
			/* Its footer or index: read it through one rebuilt from its
			 * data blocks when they are sound (as kv_version_reader). */
			struct kv_corrupt_info ci;
			kv_corrupt_mine(&ci);
			rc = kv_sst_open_rebuilt(&d->r, store, cache, &meta,
						 ci.reason[0] ? ci.reason : "corrupt");
		}
		if (rc == -ENOENT || rc == KV_ECORRUPT) {
			char name[64];
			kv_sst_id_name(&d->id, name, sizeof(name));
			d->r = NULL;
			d->err = rc == -ENOENT ? KV_CORRUPT(name, KV_CORRUPT_NO_OFFSET, "data table "
							    "missing but a table references it") : rc;
		} else if (rc) {
			return rc;
		}
	}
	return 0;
}

static void kv_version_free(struct kv_version *v)
{
	struct kv_manifest *m = v->man;
	for (size_t i = 0; i < v->n_data; i++)
		if (v->data[i].r)
			kv_sst_unref(v->data[i].r);
	free(v->data);
	if (v->l0) {
		for (size_t i = 0; i < m->n_l0; i++)
			if (v->l0[i])
				kv_sst_unref(v->l0[i]);
		free(v->l0);
	}
	if (v->runs) {
		for (size_t i = 0; i < m->n_runs; i++) {
			for (size_t j = 0; j < m->runs[i].n && v->runs[i].r; j++)
				if (v->runs[i].r[j])
					kv_sst_unref(v->runs[i].r[j]);
			free(v->runs[i].r);
		}
		free(v->runs);
	}
	free(v);
}

int kv_version_build(struct kv_version **out, struct kv_manifest *man,
		     const struct kv_version *prev, struct kv_sst_reader *extra,
		     const struct kv_sst_id *extra_id, struct obj_backend *store,
		     struct kv_cache *cache, struct kv_vreg *reg)
{
	struct kv_version *v = calloc(1, sizeof(*v));
	int rc = 0;

	*out = NULL;
	if (!v)
		return -ENOMEM;
	atomic_init(&v->refs, 1);
	v->man = man;
	v->l0 = calloc(man->n_l0 ? man->n_l0 : 1, sizeof(*v->l0));
	v->runs = calloc(man->n_runs ? man->n_runs : 1, sizeof(*v->runs));
	if (!v->l0 || !v->runs) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < man->n_l0 && !rc; i++)
		rc = kv_version_reader(&v->l0[i], &man->l0[i], prev, extra, extra_id, store, cache);
	for (size_t i = 0; i < man->n_runs && !rc; i++) {
		v->runs[i].n = man->runs[i].n;
		v->runs[i].r = calloc(man->runs[i].n ? man->runs[i].n : 1, sizeof(*v->runs[i].r));
		if (!v->runs[i].r) {
			rc = -ENOMEM;
			break;
		}
		for (size_t j = 0; j < man->runs[i].n && !rc; j++)
			rc = kv_version_reader(&v->runs[i].r[j], &man->runs[i].ssts[j], prev, extra,
					       extra_id, store, cache);
	}
	if (!rc)
		rc = kv_version_data_ids(v, man);
	if (!rc)
		rc = kv_version_open_data(v, prev, store, cache);
	if (rc)
		goto fail;
	if (reg) {
		v->reg = reg;
		CHECK_RETURN(pthread_mutex_lock(&reg->mu));
		v->rnext = reg->head;
		if (reg->head)
			reg->head->rprev = v;
		reg->head = v;
		CHECK_RETURN(pthread_mutex_unlock(&reg->mu));
	}
	*out = v;
	return 0;
fail:
	/* The caller keeps ownership of man on failure. */
	kv_version_free(v);
	return rc;
}

void kv_version_ref(struct kv_version *v)
{
	atomic_fetch_add(&v->refs, 1);
}

void kv_version_unref(struct kv_version *v)
{
	if (v && atomic_fetch_sub(&v->refs, 1) == 1) {
		struct kv_manifest *m = v->man;
		struct kv_vreg *reg = v->reg;
		if (reg) {
			CHECK_RETURN(pthread_mutex_lock(&reg->mu));
			if (v->rprev)
				v->rprev->rnext = v->rnext;
			else
				reg->head = v->rnext;
			if (v->rnext)
				v->rnext->rprev = v->rprev;
			CHECK_RETURN(pthread_mutex_unlock(&reg->mu));
		}
		kv_version_free(v);
		kv_manifest_free(m);
	}
}

int kv_vreg_each(struct kv_vreg *reg, int (*fn)(void *arg, const struct kv_manifest *m),
		 void *arg)
{
	int rc = 0;
	CHECK_RETURN(pthread_mutex_lock(&reg->mu));
	for (struct kv_version *v = reg->head; v && !rc; v = v->rnext)
		rc = fn(arg, v->man);
	CHECK_RETURN(pthread_mutex_unlock(&reg->mu));
	return rc;
}

/* Does SST meta's user-key range cover key? */
static int kv_meta_covers(const struct kv_sst_meta *m, const void *key, size_t klen)
{
	return kv_ukey_cmp(key, klen, m->smallest, m->smallest_len - KV_IKEY_TRAILER) >= 0 &&
	       kv_ukey_cmp(key, klen, m->largest, m->largest_len - KV_IKEY_TRAILER) <= 0;
}

/*
 * A read of a table this version references failed with rc. -ENOENT there
 * is the store saying the table's object is not found (lost, deleted by
 * something other than our GC, or a store answering 404 for an object it
 * has), and must not leave the engine as is: kv_get's -ENOENT means "no
 * such key", so a present key would read as absent (the filesystem would
 * see a chunk of zeros, a deleted inode, a free name). It is corruption,
 * as kv_version_reader already says when the table cannot be opened.
 */
static int kv_version_read_err(const struct kv_sst_meta *meta, int rc)
{
	char name[64];

	if (rc != -ENOENT)
		return rc;
	kv_sst_id_name(&meta->id, name, sizeof(name));
	return KV_CORRUPT(name, KV_CORRUPT_NO_OFFSET, "missing from the store but the manifest "
			  "references it (a read of it was answered 'not found')");
}

const struct kv_vdata *kv_version_data_find(const struct kv_version *v,
					    const struct kv_sst_id *id)
{
	return kv_version_data(v, id);
}

int kv_version_ref_size(void *arg, const struct kv_sst_id *id, uint64_t *size)
{
	const struct kv_vdata *d = kv_version_data(arg, id);
	if (!d)
		return -EINVAL;
	*size = d->size;
	return 0;
}

int kv_version_ref_read(struct kv_version *v, const char *from, const void *key, size_t klen,
			const uint8_t *refv, size_t refl, const struct kv_part *part,
			uint8_t **val, size_t *vlen)
{
	struct kv_ref ref;
	char name[64];
	int rc;

	if (kv_ref_decode(refv, refl, &ref))
		return KV_CORRUPT(from ? from : "table", KV_CORRUPT_NO_OFFSET,
				  "malformed reference into a data table (%zu bytes)", refl);
	kv_sst_id_name(&ref.id, name, sizeof(name));
	struct kv_vdata *d = kv_version_data(v, &ref.id);
	if (!d)
		return KV_CORRUPT(from ? from : "table", KV_CORRUPT_NO_OFFSET, "references data "
				  "table %s, which its manifest entry does not list", name);
	if (!d->r)
		return d->err;
	*val = NULL;
	rc = kv_sst_get_part(d->r, key, klen, ref.seq, part, val, vlen);
	if (rc == 1 && *vlen == ref.len)
		return 1;
	if (rc == 1 || rc == KV_GOT_REF) {
		free(*val);
		*val = NULL;
	}
	if (rc < 0 && rc != -ENOENT)
		return rc;
	return KV_CORRUPT(name, KV_CORRUPT_NO_OFFSET, "data table lacks the value %s "
			  "references (seq %llu, %llu bytes)", from ? from : "a table",
			  (unsigned long long)ref.seq, (unsigned long long)ref.len);
}

/* One table's answer for key: a REF is read from its data table. */
static int kv_version_get_one(struct kv_version *v, const struct kv_sst_meta *meta,
			      struct kv_sst_reader *r, const void *key, size_t klen,
			      uint64_t snap, const struct kv_part *part, uint8_t **val,
			      size_t *vlen)
{
	int rc = kv_sst_get_part(r, key, klen, snap, part, val, vlen);
	if (rc < 0)
		return kv_version_read_err(meta, rc);
	if (rc == KV_GOT_REF) {
		char name[64];
		uint8_t *refv = *val;
		size_t refl = *vlen;
		kv_sst_id_name(&meta->id, name, sizeof(name));
		rc = kv_version_ref_read(v, name, key, klen, refv, refl, part, val, vlen);
		free(refv);
	}
	return rc;
}

int kv_version_get(struct kv_version *v, const void *key, size_t klen, uint64_t snap,
		   const struct kv_part *part, uint8_t **val, size_t *vlen)
{
	const struct kv_manifest *m = v->man;
	int rc;

	for (size_t i = 0; i < m->n_l0; i++) {
		if (!kv_meta_covers(&m->l0[i], key, klen))
			continue;
		rc = kv_version_get_one(v, &m->l0[i], v->l0[i], key, klen, snap, part, val, vlen);
		if (rc != 0)
			return rc;
	}
	for (size_t i = 0; i < m->n_runs; i++) {
		const struct kv_run *run = &m->runs[i];
		/* Binary search: first SST whose largest user key >= key. */
		size_t lo = 0, hi = run->n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			const struct kv_sst_meta *s = &run->ssts[mid];
			if (kv_ukey_cmp(s->largest, s->largest_len - KV_IKEY_TRAILER, key, klen) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < run->n && kv_meta_covers(&run->ssts[lo], key, klen)) {
			rc = kv_version_get_one(v, &run->ssts[lo], v->runs[i].r[lo], key, klen,
						snap, part, val, vlen);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

size_t kv_version_sst_count(const struct kv_version *v)
{
	size_t n = v->man->n_l0;
	for (size_t i = 0; i < v->man->n_runs; i++)
		n += v->man->runs[i].n;
	return n;
}

int kv_version_iters(struct kv_version *v, const void *lo, size_t lolen, const void *hi,
		     size_t hilen, struct kv_iter **its, size_t *n)
{
	int rc;
	for (size_t i = 0; i < v->man->n_l0; i++) {
		if (!kv_sst_wanted(v->l0[i], lo, lolen, hi, hilen))
			continue;
		rc = kv_sst_iter_create(&its[*n], v->l0[i]);
		if (rc)
			return rc;
		(*n)++;
	}
	for (size_t i = 0; i < v->man->n_runs; i++)
		for (size_t j = 0; j < v->runs[i].n; j++) {
			if (!kv_sst_wanted(v->runs[i].r[j], lo, lolen, hi, hilen))
				continue;
			rc = kv_sst_iter_create(&its[*n], v->runs[i].r[j]);
			if (rc)
				return rc;
			(*n)++;
		}
	return 0;
}
