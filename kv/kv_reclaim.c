/*
 * kv_reclaim.c - room to recover on a full store: the reserve object and
 * the reclaim pass that turns deletes into free space without a merge.
 *
 * THE PROBLEM
 *   A store that refuses writes for space (a full disk, a quota) would
 *   stay full for good: deleting a file writes tombstones, and the space
 *   its data holds comes back only when a compaction rewrites the tables
 *   without it - and a compaction needs room for its output first.
 *
 * THE RESERVE (object "reserve", conf.reserve_bytes of zeros)
 *   The writer keeps it in the store while there is room (made by the GC
 *   thread when it starts). When the user deletes something while the
 *   store refuses writes for space (kv_db.c, ROOM TO DELETE: nothing else
 *   is let in then), GC deletes it: the WAL backlog and the tombstones can
 *   then be stored, and the reclaim pass below needs little more.
 *   Its room is for that alone: until it is made again the store counts
 *   as short of room (kv_room_short) even though it takes writes, so
 *   deletes go in while other writes are refused beyond a trickle, the
 *   reclaim pass runs and GC skips its AGE rules. Otherwise the writes
 *   of the moment take the room, and the next deletes, stored behind
 *   whatever was let in ahead of them in the WAL, find none. GC makes it
 *   again as soon as the store has room for it (on file:// when statfs
 *   shows a sixteenth more than its size free; elsewhere when its PUT
 *   succeeds), trying every KV_RESERVE_RETRY_NS, doubled after each
 *   failed PUT up to KV_RESERVE_RETRY_MAX_NS: the writes waiting for it
 *   want it there soon, and the next deletes release it again if they
 *   must.
 *
 * THE RECLAIM PASS (compactor thread, while the store is full)
 *   A version of a key in a table is dead when a newer version of the key
 *   is visible at S = min(durable_seq, the oldest live snapshot): every
 *   reader of this process reads at S or above, and that newer version is
 *   durable (an acknowledged WAL object, or a committed table), so a crash
 *   brings it back. For each table the pass counts its dead versions (one
 *   seek per user key in a merge of every memtable and table); then, the
 *   cheapest first (least live data for the most dead), a table whose
 *   versions are all dead is dropped from the manifest, and one at least
 *   a third dead is replaced by a table of its live versions, in the same place (an
 *   L0 slot or the same run: its key range can only narrow). One manifest
 *   update commits them; the next GC pass (A FULL STORE in kv_gc.c)
 *   deletes the old tables at once, and the data tables (kv_ref.c) that
 *   no table references any more. A REF entry weighs what it pins: the
 *   dead bytes of a table include the values its dead REFs point to in
 *   data tables that no live REF points into (kv_reclaim_weigh_refs).
 *   A replacement that the store refuses
 *   is skipped. Runs only while no reader is registered (a follower's
 *   manifest and WAL position are not ours to reason about) and while
 *   this process holds the writer lease; it shares the compactor thread,
 *   so no compaction runs meanwhile.
 *   Data still in memtables (and so in WAL objects) is not reclaimed here:
 *   the flush that folds it into a table drops its dead versions.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define KV_RESERVE_NAME "reserve"
#define KV_RESERVE_RETRY_NS (1ull * 1000000000)
#define KV_RESERVE_RETRY_MAX_NS (64ull * 1000000000)

/* ---- the reserve -------------------------------------------------------- */

static int kv_store_full(const struct kv_db *db)
{
	return db->store_err == -ENOSPC || db->store_err == -EDQUOT;
}

int kv_room_short(const struct kv_db *db)
{
	KV_MU_HELD(db);
	return kv_store_full(db) || db->reserve_state == KV_RESERVE_RELEASED;
}

uint64_t kv_reserve_tend(struct kv_db *db)
{
	size_t want = db->conf.reserve_bytes;
	int full, state;

	if (db->readonly || want == KV_RESERVE_NONE)
		return 0;
	kv_mutex_lock(&db->mu);
	full = kv_store_full(db);
	int deletes = db->full_deletes;
	state = db->reserve_state;
	uint64_t retry = db->reserve_retry_ns ? db->reserve_retry_ns : KV_RESERVE_RETRY_NS;
	kv_mutex_unlock(&db->mu);

	if (full && deletes && state != KV_RESERVE_RELEASED) {
		int rc = obj_delete(db->store, KV_RESERVE_NAME);
		if (rc && rc != -ENOENT) {
			UTIL_WARN("kv", "the store is full, and the reserve (object %s) cannot be "
				  "deleted: %s", KV_RESERVE_NAME, kv_strerror(rc));
			return 0;               /* the next full-store pass tries again */
		}
		kv_mutex_lock(&db->mu);
		db->reserve_state = KV_RESERVE_RELEASED;
		db->reserve_releases++;
		db->reserve_retry_ns = 0;
		kv_mutex_unlock(&db->mu);
		if (rc == 0)
			UTIL_WARN("kv", "the store is full: released the %zu-byte reserve (object %s) "
				  "so that deletes can be stored; other writes wait until it is "
				  "made again, once there is room", want, KV_RESERVE_NAME);
		return util_wall_ns() + KV_RESERVE_RETRY_NS;
	}
	if (state == KV_RESERVE_PRESENT)
		return 0;
	if (full)
		return state == KV_RESERVE_RELEASED ? util_wall_ns() + retry : 0;
	if (state == KV_RESERVE_UNKNOWN) {
		struct obj_stat st;
		if (obj_head(db->store, KV_RESERVE_NAME, &st) == 0 && st.size == want) {
			kv_mutex_lock(&db->mu);
			db->reserve_state = KV_RESERVE_PRESENT;
			kv_mutex_unlock(&db->mu);
			return 0;
		}
	}
	uint64_t total, avail;
	if (state == KV_RESERVE_RELEASED && obj_space(db->store, &total, &avail) == 0 &&
	    avail < (uint64_t)want + want / 16)
		return util_wall_ns() + KV_RESERVE_RETRY_NS;
	uint8_t *zeros = calloc(1, want ? want : 1);
	int rc = zeros ? obj_put(db->store, KV_RESERVE_NAME, zeros, want) : -ENOMEM;
	free(zeros);
	if (rc) {
		UTIL_INFO("kv", "the reserve (object %s) cannot be made now: %s", KV_RESERVE_NAME,
			  kv_strerror(rc));
		if (state != KV_RESERVE_RELEASED)
			return util_wall_ns() + KV_RESERVE_RETRY_MAX_NS;
		kv_mutex_lock(&db->mu);
		db->reserve_retry_ns = retry * 2 < KV_RESERVE_RETRY_MAX_NS ? retry * 2
									: KV_RESERVE_RETRY_MAX_NS;
		kv_mutex_unlock(&db->mu);
		return util_wall_ns() + retry;
	}
	kv_mutex_lock(&db->mu);
	if (state == KV_RESERVE_RELEASED)
		UTIL_WARN("kv", "the reserve (object %s) is made again: writes are let in as "
			  "usual", KV_RESERVE_NAME);
	db->reserve_state = KV_RESERVE_PRESENT;
	db->reserve_retry_ns = 0;
	db->full_trickle = 0;
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_state));   /* writers waiting for it */
	kv_mutex_unlock(&db->mu);
	return 0;
}

/* ---- the reclaim pass --------------------------------------------------- */

/* One table of the version: where it is, and what the count found. */
struct kv_reclaim_cand {
	const struct kv_sst_meta *meta;   /* borrowed from the pinned version */
	struct kv_sst_reader *r;          /* borrowed */
	int l0;                           /* 1: in L0; 0: in the run run_id */
	uint64_t run_id;
	uint64_t dead, live;              /* versions */
	uint64_t dead_bytes, live_bytes;  /* key + value bytes (REFS) */
	struct kv_dref *dead_refs;        /* value bytes of its dead REFs, per data table */
	size_t n_dead_refs;
	struct kv_sst_meta out;           /* the replacement; id zero = drop */
	int chosen;
};

struct kv_reclaim {
	struct kv_db *db;
	struct kv_version *ver;
	struct kv_mem *mems[KV_MAX_IMM + 1];
	size_t n_mems;
	uint64_t s;                       /* versions hidden at s are dead */
	struct kv_iter *all;              /* merge of every memtable and table */
	struct kv_reclaim_cand *c;
	size_t n;
	struct kv_dref *live_refs;        /* value bytes of live REFs, per data table */
	size_t n_live_refs;
	uint8_t *seek;                    /* seek key buffer */
	size_t seek_cap;
};

/* Seq of the newest version of `key` visible at r->s; 0 = none. */
static int kv_reclaim_visible(struct kv_reclaim *r, const uint8_t *key, size_t kl,
			      uint64_t *seq)
{
	const uint8_t *k;
	size_t klen;

	if (kl + KV_IKEY_TRAILER > r->seek_cap) {
		uint8_t *p = realloc(r->seek, kl + KV_IKEY_TRAILER);
		if (!p)
			return -ENOMEM;
		r->seek = p;
		r->seek_cap = kl + KV_IKEY_TRAILER;
	}
	kv_ikey_make(r->seek, key, kl, r->s, KV_TYPE_VALUE);
	r->all->ops->seek(r->all, r->seek, kl + KV_IKEY_TRAILER);
	*seq = 0;
	if (!r->all->ops->valid(r->all))
		return r->all->ops->status(r->all);
	r->all->ops->key(r->all, &k, &klen);
	if (kv_ukey_cmp(k, klen - KV_IKEY_TRAILER, key, kl) == 0)
		*seq = kv_ikey_seq(k, klen);
	return 0;
}

/* Note a REF entry of table c in the per-data-table tallies. */
static int kv_reclaim_tally_ref(struct kv_reclaim *r, struct kv_reclaim_cand *c, int dead,
				const uint8_t *v, size_t vl)
{
	struct kv_ref ref;

	if (kv_ref_decode(v, vl, &ref)) {
		char name[64];
		kv_sst_id_name(&c->meta->id, name, sizeof(name));
		return KV_CORRUPT(name, KV_CORRUPT_NO_OFFSET,
				  "malformed reference into a data table (%zu bytes)", vl);
	}
	if (dead)
		return kv_dref_add(&c->dead_refs, &c->n_dead_refs, &ref.id, 0, ref.len);
	return kv_dref_add(&r->live_refs, &r->n_live_refs, &ref.id, 0, ref.len);
}

/* Walk table c; with b == NULL count its dead versions, else add its
 * live ones to b. Stops early at close. */
static int kv_reclaim_walk(struct kv_reclaim *r, struct kv_reclaim_cand *c,
			   struct kv_sst_builder *b)
{
	struct kv_iter *it = NULL;
	const uint8_t *prev = NULL;
	uint8_t *cur = NULL;
	size_t cur_len = 0, cur_cap = 0;
	uint64_t vis = 0, n = 0;
	int rc = kv_sst_iter_create_ext(&it, c->r, 1);

	if (rc)
		return rc;
	for (it->ops->seek_first(it); it->ops->valid(it) && !rc; it->ops->next(it)) {
		const uint8_t *k, *v;
		size_t kl, vl;
		it->ops->key(it, &k, &kl);
		it->ops->value(it, &v, &vl);
		if ((++n & 1023) == 0) {
			kv_mutex_lock(&r->db->mu);
			int stop = r->db->shutdown;
			kv_mutex_unlock(&r->db->mu);
			if (stop) {
				rc = -ECANCELED;
				break;
			}
		}
		size_t ul = kl - KV_IKEY_TRAILER;
		if (!prev || kv_ukey_cmp(cur, cur_len, k, ul) != 0) {
			if (ul > cur_cap) {
				uint8_t *p = realloc(cur, ul);
				if (!p) {
					rc = -ENOMEM;
					break;
				}
				cur = p;
				cur_cap = ul;
			}
			memcpy(cur, k, ul);
			cur_len = ul;
			prev = cur;
			if ((rc = kv_reclaim_visible(r, k, ul, &vis)))
				break;
		}
		int dead = vis > kv_ikey_seq(k, kl);
		if (b) {
			if (!dead)
				rc = kv_sst_builder_add(b, k, kl, v, vl);
			continue;
		}
		if (dead) {
			c->dead++;
			c->dead_bytes += kl + vl;
		} else {
			c->live++;
			c->live_bytes += kl + vl;
		}
		if (kv_ikey_type(k, kl) == KV_TYPE_REF)
			rc = kv_reclaim_tally_ref(r, c, dead, v, vl);
	}
	if (!rc)
		rc = it->ops->status(it);
	it->ops->free(it);
	free(cur);
	return rc;
}

/* Build and upload the replacement of c (its live versions). */
static int kv_reclaim_rewrite(struct kv_reclaim *r, struct kv_reclaim_cand *c)
{
	struct kv_sst_options opt = {
		.compression_level = r->db->conf.compression_level,
		.bloom_bits_per_key = r->db->conf.bloom_bits_per_key,
		.ref_size = kv_version_ref_size,
		.ref_arg = r->ver,
	};
	struct kv_sst_builder *b = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	char name[64];
	int rc = kv_sst_builder_create(&b, &opt);

	if (rc)
		return rc;
	rc = kv_reclaim_walk(r, c, b);
	if (!rc)
		rc = kv_sst_builder_finish(b, &data, &len, &c->out);
	kv_sst_builder_free(b);
	if (rc)
		return rc;
	kv_sst_id_new(&c->out.id);
	c->out.size = len;
	kv_sst_id_name(&c->out.id, name, sizeof(name));
	rc = kv_pending_add(r->db, &c->out.id);
	if (!rc) {
		rc = obj_put(r->db->store, name, data, len);
		if (rc)
			kv_pending_del(r->db, &c->out.id);
	}
	free(data);
	if (rc)
		kv_sst_meta_clear(&c->out);
	return rc;
}

static const struct kv_reclaim_cand *kv_reclaim_find(const struct kv_reclaim *r,
						     const struct kv_sst_id *id)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->c[i].chosen && !memcmp(r->c[i].meta->id.b, id->b, 16))
			return &r->c[i];
	return NULL;
}

/* Move *src into *dst; *src is left empty. */
static void kv_reclaim_take(struct kv_sst_meta *dst, struct kv_sst_meta *src)
{
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

static void kv_reclaim_copies_free(struct kv_sst_meta *copies, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kv_sst_meta_clear(&copies[i]);
	free(copies);
}

/* Replace or drop each chosen table where the job found it in m. A table
 * that moved (a flush added L0 tables above it: fine; a compaction is
 * impossible, it runs in this thread) is still matched by id and place. */
static int kv_reclaim_apply(void *arg, struct kv_manifest *m)
{
	const struct kv_reclaim *r = arg;
	size_t found = 0, want = 0;

	for (size_t i = 0; i < r->n; i++)
		want += r->c[i].chosen;
	for (size_t i = 0; i < m->n_l0; i++) {
		const struct kv_reclaim_cand *c = kv_reclaim_find(r, &m->l0[i].id);
		found += c && c->l0;
	}
	for (size_t i = 0; i < m->n_runs; i++)
		for (size_t t = 0; t < m->runs[i].n; t++) {
			const struct kv_reclaim_cand *c = kv_reclaim_find(r, &m->runs[i].ssts[t].id);
			found += c && !c->l0 && c->run_id == m->runs[i].run_id;
		}
	if (found != want)
		return -ESTALE;
	/* Validated: copies first, so that a failure leaves m as it was.
	 * copies[i] is candidate i's replacement: the candidates are in cost
	 * order, not in the manifest's, and each replacement must take the
	 * place of the very table it was built from (an L0 slot stands for
	 * an age: a table in another's slot shadows newer versions). */
	struct kv_sst_meta *copies = calloc(r->n ? r->n : 1, sizeof(*copies));
	int rc = copies ? 0 : -ENOMEM;
	for (size_t i = 0; i < r->n && !rc; i++)
		if (r->c[i].chosen && r->c[i].out.size)
			rc = kv_sst_meta_copy(&copies[i], &r->c[i].out);
	if (rc) {
		kv_reclaim_copies_free(copies, r->n);
		return rc;
	}
	size_t keep = 0;
	for (size_t i = 0; i < m->n_l0; i++) {
		const struct kv_reclaim_cand *c = kv_reclaim_find(r, &m->l0[i].id);
		if (!c) {
			m->l0[keep++] = m->l0[i];
			continue;
		}
		kv_sst_meta_clear(&m->l0[i]);
		if (c->out.size)
			kv_reclaim_take(&m->l0[keep++], &copies[c - r->c]);
	}
	m->n_l0 = keep;
	size_t rkeep = 0;
	for (size_t i = 0; i < m->n_runs; i++) {
		struct kv_run *run = &m->runs[i];
		keep = 0;
		for (size_t t = 0; t < run->n; t++) {
			const struct kv_reclaim_cand *c = kv_reclaim_find(r, &run->ssts[t].id);
			if (!c) {
				run->ssts[keep++] = run->ssts[t];
				continue;
			}
			kv_sst_meta_clear(&run->ssts[t]);
			if (c->out.size)
				kv_reclaim_take(&run->ssts[keep++], &copies[c - r->c]);
		}
		run->n = keep;
		if (keep)
			m->runs[rkeep++] = *run;
		else
			free(run->ssts);        /* every table of the run was dead */
	}
	m->n_runs = rkeep;
	kv_reclaim_copies_free(copies, r->n);
	return 0;
}

/* A dead REF frees its value only once no live REF points into the same
 * data table: then GC deletes the whole data table when the last table
 * referencing it is rewritten or dropped. Count such values as the dead
 * bytes of each table holding a dead REF to them, so that a small table
 * that pins a large dead data table is the first to go; a dead REF into a
 * data table that stays live frees nothing here (compaction's REWRITING
 * copies the live values out once there is room). */
static void kv_reclaim_weigh_refs(struct kv_reclaim *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct kv_reclaim_cand *c = &r->c[i];
		for (size_t d = 0; d < c->n_dead_refs; d++)
			if (!kv_dref_lookup(r->live_refs, r->n_live_refs, &c->dead_refs[d].id))
				c->dead_bytes += c->dead_refs[d].bytes;
	}
}

/* Object bytes of the data tables that no table references once the
 * chosen ones are replaced: their every REF was dead, and every table
 * holding one was chosen. */
static uint64_t kv_reclaim_data_freed(const struct kv_reclaim *r)
{
	uint64_t freed = 0;

	for (size_t i = 0; i < r->n; i++) {
		const struct kv_sst_meta *m = r->c[i].meta;
		for (size_t d = 0; d < m->n_refs; d++) {
			const struct kv_sst_id *id = &m->refs[d].id;
			int first = 1, all_chosen = 1;
			for (size_t j = 0; j < r->n && first; j++) {
				const struct kv_sst_meta *o = r->c[j].meta;
				if (!kv_dref_lookup(o->refs, o->n_refs, id))
					continue;
				first = j == i;
				all_chosen &= r->c[j].chosen &&
					      !kv_dref_lookup(r->c[j].out.refs, r->c[j].out.n_refs, id);
			}
			if (first && all_chosen)
				freed += m->refs[d].size;
		}
	}
	return freed;
}

static int kv_reclaim_cheaper(const void *a, const void *b)
{
	const struct kv_reclaim_cand *x = a, *y = b;
	/* x before y when x's live/dead is smaller: x->live * y->dead < y->live * x->dead */
	long double lx = (long double)x->live_bytes * (y->dead_bytes + 1);
	long double ly = (long double)y->live_bytes * (x->dead_bytes + 1);
	return lx < ly ? -1 : lx > ly;
}

static int kv_reclaim_add(struct kv_reclaim *r, const struct kv_sst_meta *m,
			  struct kv_sst_reader *rd, int l0, uint64_t run_id)
{
	struct kv_reclaim_cand *c = &r->c[r->n++];
	memset(c, 0, sizeof(*c));
	c->meta = m;
	c->r = rd;
	c->l0 = l0;
	c->run_id = run_id;
	return 0;
}

static void kv_reclaim_free(struct kv_reclaim *r)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->c[i].out.size) {
			kv_pending_del(r->db, &r->c[i].out.id);
			kv_sst_meta_clear(&r->c[i].out);
		}
		free(r->c[i].dead_refs);
	}
	free(r->c);
	free(r->live_refs);
	free(r->seek);
	if (r->all)
		r->all->ops->free(r->all);
	for (size_t i = 0; i < r->n_mems; i++)
		kv_mem_unref(r->mems[i]);
	kv_version_unref(r->ver);
}

static int kv_reclaim_reader_cb(void *arg, const struct kv_lease_info *l)
{
	(void)l;
	(*(size_t *)arg)++;
	return 0;
}

int kv_reclaim_wanted(struct kv_db *db)
{
	KV_MU_HELD(db);
	return kv_room_short(db) && db->lease.gen != 0 && db->state == KV_STATE_OK &&
	       (db->durable_seq != db->reclaim_seen_seq ||
		db->ver->man->id != db->reclaim_seen_manifest);
}

int kv_reclaim_pass(struct kv_db *db)
{
	struct kv_reclaim r = { .db = db };
	struct kv_iter **kids = NULL;
	size_t readers = 0, nk = 0, cap;
	uint64_t *snaps = NULL;
	size_t n_snaps = 0;
	int rc;

	if (kv_readers_list(db->store, kv_reclaim_reader_cb, &readers) != 0 || readers)
		return 0;
	kv_mutex_lock(&db->mu);
	db->reclaim_seen_seq = db->durable_seq;
	db->reclaim_seen_manifest = db->ver->man->id;
	r.s = db->durable_seq;
	rc = kv_snapshot_seqs(db, &snaps, &n_snaps);
	if (n_snaps && snaps[0] < r.s)
		r.s = snaps[0];
	kv_mem_ref(db->mem);
	r.mems[r.n_mems++] = db->mem;
	for (size_t i = db->n_imm; i > 0; i--) {
		kv_mem_ref(db->imm[i - 1].mem);
		r.mems[r.n_mems++] = db->imm[i - 1].mem;
	}
	r.ver = db->ver;
	kv_version_ref(r.ver);
	db->reclaim_passes++;
	kv_mutex_unlock(&db->mu);
	free(snaps);
	if (rc)
		goto out;

	/* The merge of everything, for kv_reclaim_visible. */
	cap = r.n_mems + kv_version_sst_count(r.ver);
	kids = calloc(cap ? cap : 1, sizeof(*kids));
	r.c = calloc(kv_version_sst_count(r.ver) + 1, sizeof(*r.c));
	if (!kids || !r.c) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < r.n_mems && !rc; i++)
		if ((rc = kv_mem_iter_create(&kids[nk], r.mems[i])) == 0)
			nk++;
	if (!rc)
		rc = kv_version_iters(r.ver, NULL, 0, NULL, 0, kids, &nk);
	if (!rc)
		rc = kv_merge_iter_create(&r.all, kids, nk);
	if (rc)
		goto out;
	kids = NULL;
	nk = 0;

	const struct kv_manifest *m = r.ver->man;
	for (size_t i = 0; i < m->n_l0; i++)
		kv_reclaim_add(&r, &m->l0[i], r.ver->l0[i], 1, 0);
	for (size_t i = 0; i < m->n_runs; i++)
		for (size_t t = 0; t < m->runs[i].n; t++)
			kv_reclaim_add(&r, &m->runs[i].ssts[t], r.ver->runs[i].r[t], 0,
				       m->runs[i].run_id);
	for (size_t i = 0; i < r.n && !rc; i++)
		rc = kv_reclaim_walk(&r, &r.c[i], NULL);
	if (rc)
		goto out;
	kv_reclaim_weigh_refs(&r);
	qsort(r.c, r.n, sizeof(*r.c), kv_reclaim_cheaper);
	size_t chosen = 0;
	uint64_t freed = 0;
	for (size_t i = 0; i < r.n; i++) {
		struct kv_reclaim_cand *c = &r.c[i];
		/* A rewrite needs room for the live part and frees the dead:
		 * only where that pays (a third dead or more). */
		if (!c->dead || (c->live && c->dead_bytes * 2 < c->live_bytes))
			continue;
		UTIL_DEBUG("kv", "reclaim: table of %" PRIu64 " bytes: %" PRIu64 " dead, %" PRIu64
			   " live bytes", c->meta->size, c->dead_bytes, c->live_bytes);
		if (c->live) {
			int wrc = kv_reclaim_rewrite(&r, c);
			if (wrc == -ECANCELED) {
				rc = wrc;
				goto out;
			}
			if (wrc) {
				UTIL_DEBUG("kv", "reclaim: no room for the rewrite (%s)", kv_strerror(wrc));
				continue;       /* no room for it: the next may fit */
			}
		}
		c->chosen = 1;
		chosen++;
		freed += c->meta->size - c->out.size;
	}
	if (!chosen)
		goto out;
	freed += kv_reclaim_data_freed(&r);
	rc = kv_manifest_update(db, kv_reclaim_apply, &r, NULL, NULL);
	if (rc == 0) {
		UTIL_INFO("kv", "the store is full: %zu tables without their dead versions "
			  "(%" PRIu64 " bytes to free)", chosen, freed);
		kv_mutex_lock(&db->mu);
		db->reclaim_tables += chosen;
		db->reclaim_bytes += freed;
		kv_mutex_unlock(&db->mu);
	}
out:
	if (kids) {
		for (size_t i = 0; i < nk; i++)
			kids[i]->ops->free(kids[i]);
		free(kids);
	}
	kv_reclaim_free(&r);
	return rc;
}
