/*
 * kv_flush_build.c - a frozen memtable's SST: building it, and building
 * the next one while the flusher uploads (the prebuilder thread).
 *
 * DESIGN
 *   A flush is a build (iterate, compress, filter: CPU) and then an upload
 *   and a manifest commit (the store's latency). Done one after the other,
 *   a stream of large writes waits for both on every table. The prebuilder
 *   builds imm[1], the memtable after the one being flushed, while the
 *   flusher uploads imm[0]; the flusher then finds imm[0] built and goes
 *   straight to its upload. So a table's build overlaps the previous
 *   table's upload, and in a steady stream the slower of the two sets the
 *   pace. The encryption of a table (in its put) stays on the flusher:
 *   building is the part that does not depend on the store.
 *
 *   The prebuild is only ever a head start. The flusher never depends on
 *   it: an entry not built (none started, or it failed) is built by the
 *   flusher as always, and recovery, which has no prebuilder, always does
 *   that. The one wait is for a build in progress (imm[].build ==
 *   KV_BUILD_RUNNING): building it again would only waste the CPU.
 *
 *   Snapshots: a table built early keeps the versions the snapshots live
 *   at its build can read. A snapshot taken later has a seq at or above
 *   the frozen memtable's highest, so it reads only each key's newest
 *   version, which every build keeps.
 *
 * MEMORY
 *   At most one prebuilt table waits (imm[1]'s), so a flush holds at most
 *   two tables' buffers besides the memtables. Their buffers come back as
 *   spares (two, under mu) for the next builds: a fresh buffer faults in
 *   every page.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Called for each entry a flush keeps, in internal-key order. */
typedef int (*kv_flush_entry_fn)(void *arg, const uint8_t *k, size_t kl, const uint8_t *v,
				 size_t vl);

/*
 * Walk a memtable's entries, less the versions no one can read. A key
 * written twice while the memtable was active (a file chunk completed
 * after a partial write, an inode record updated by every write, a
 * database page rewritten) keeps only its newest version, plus the newest
 * at or below each live snapshot (`snaps`), as compaction keeps them.
 * Iterators need nothing: they hold the memtable itself. A frozen
 * memtable does not change, so two walks see the same entries.
 */
static int kv_flush_walk(struct kv_mem *mem, const uint64_t *snaps, size_t n_snaps,
			 uint64_t *dropped, kv_flush_entry_fn fn, void *arg)
{
	struct kv_iter *it = NULL;
	const uint8_t *last = NULL;           /* the last key kept */
	size_t last_len = 0;
	uint64_t last_seq = 0;
	int rc = kv_mem_iter_create(&it, mem);

	if (rc)
		return rc;
	for (it->ops->seek_first(it); it->ops->valid(it) && !rc; it->ops->next(it)) {
		const uint8_t *k, *v;
		size_t kl, vl;
		it->ops->key(it, &k, &kl);
		it->ops->value(it, &v, &vl);
		uint64_t seq = kv_ikey_seq(k, kl);
		if (last && kv_ukey_cmp(last, last_len - KV_IKEY_TRAILER, k, kl - KV_IKEY_TRAILER) == 0 &&
		    !kv_snapshot_sees(snaps, n_snaps, seq, last_seq)) {
			if (dropped)
				(*dropped)++;
			continue;
		}
		last = k;               /* memtable memory: valid while mem is */
		last_len = kl;
		last_seq = seq;
		rc = fn(arg, k, kl, v, vl);
	}
	if (!rc)
		rc = it->ops->status(it);
	it->ops->free(it);
	return rc;
}

/* The two builds of a flush: the data table, then the table. */
struct kv_flush_pass {
	struct kv_sst_builder *b;
	size_t min;                       /* data_min_bytes; 0 = no data table */
	struct kv_ref ref;                /* the data table (id, size) for the REFs */
	struct kv_buf key;                /* a REF's internal key */
	uint64_t moved;
};

static int kv_flush_is_data(const struct kv_flush_pass *p, const uint8_t *k, size_t kl, size_t vl)
{
	return p->min && vl >= p->min && kv_ikey_type(k, kl) == KV_TYPE_VALUE;
}

/* kv_sst_options.ref_size of the flush's table: its one data table. */
static int kv_flush_ref_size(void *arg, const struct kv_sst_id *id, uint64_t *size)
{
	const struct kv_built *out = arg;
	if (!out->data || memcmp(id->b, out->data_id.b, 16))
		return -EINVAL;
	*size = out->data_len;
	return 0;
}

/* Pass 1: the large values, as they are, into the data table. */
static int kv_flush_add_data(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	struct kv_flush_pass *p = arg;
	if (!kv_flush_is_data(p, k, kl, vl))
		return 0;
	p->moved++;
	return kv_sst_builder_add(p->b, k, kl, v, vl);
}

/* Pass 2: every entry into the table, a large value as a REF to it. */
static int kv_flush_add_main(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	struct kv_flush_pass *p = arg;
	uint8_t refv[KV_REF_MAX];

	if (!kv_flush_is_data(p, k, kl, vl))
		return kv_sst_builder_add(p->b, k, kl, v, vl);
	p->key.len = 0;
	if (kv_buf_append(&p->key, k, kl))
		return -ENOMEM;
	p->key.data[kl - 1] = KV_TYPE_REF;      /* the trailer's type byte */
	p->ref.seq = kv_ikey_seq(k, kl);
	p->ref.len = vl;
	return kv_sst_builder_add(p->b, p->key.data, kl, refv, kv_ref_encode(refv, &p->ref));
}

/*
 * Build the SST for a memtable (kv_flush_walk's entries) into out; with
 * data_min_bytes set, the values of at least that size go to a data table
 * built first (out->data), and the table holds REFs to them (kv_ref.c).
 * The larger output is built in *spare when it holds a buffer.
 */
static int kv_flush_build_mem(struct kv_db *db, struct kv_mem *mem, const uint64_t *snaps,
			      size_t n_snaps, struct kv_buf *spare, struct kv_built *out)
{
	struct kv_sst_options opt = {
		.compression_level = db->conf.compression_level,
		.bloom_bits_per_key = db->conf.bloom_bits_per_key,
		.ref_size = kv_flush_ref_size,
		.ref_arg = out,
	};
	struct kv_sst_options dopt = opt;
	struct kv_flush_pass p = { .min = db->conf.data_min_bytes };
	struct kv_sst_meta dmeta = { 0 };
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (p.min) {
		dopt.bloom_bits_per_key = -1;   /* every lookup in it finds its entry */
		rc = kv_sst_builder_create(&p.b, &dopt);
		if (rc)
			return rc;
		kv_sst_builder_reuse(p.b, spare);
		rc = kv_flush_walk(mem, snaps, n_snaps, NULL, kv_flush_add_data, &p);
		if (!rc && p.moved)
			rc = kv_sst_builder_finish(p.b, &out->data, &out->data_len, &dmeta);
		kv_sst_builder_free(p.b);
		kv_sst_meta_clear(&dmeta);
		p.b = NULL;
		if (rc)
			goto out;
		if (p.moved) {
			kv_sst_id_new(&out->data_id);
			p.ref.id = out->data_id;
			out->data_values = p.moved;
		} else {
			p.min = 0;
		}
	}
	rc = kv_sst_builder_create(&p.b, &opt);
	if (rc)
		goto out;
	if (!out->data)
		kv_sst_builder_reuse(p.b, spare);
	rc = kv_flush_walk(mem, snaps, n_snaps, &out->dropped, kv_flush_add_main, &p);
	if (!rc)
		rc = kv_sst_builder_finish(p.b, &out->sst, &out->len, &out->meta);
out:
	kv_sst_builder_free(p.b);
	kv_buf_free(&p.key);
	return rc;
}

/* A kept buffer for a build, or an empty one (mu held). */
static struct kv_buf kv_flush_spare_get(struct kv_db *db)
{
	KV_MU_HELD(db);
	for (size_t i = 0; i < KV_FLUSH_SPARES; i++) {
		if (db->flush_spare[i].data) {
			struct kv_buf b = db->flush_spare[i];
			memset(&db->flush_spare[i], 0, sizeof(b));
			return b;
		}
	}
	return (struct kv_buf){ 0 };
}

/* Keep a table's buffer (cap bytes) for a later build, or free it; at most
 * twice a memtable, so an odd big one is not kept (mu held). */
void kv_flush_spare_put(struct kv_db *db, uint8_t *data, size_t cap)
{
	KV_MU_HELD(db);
	if (!data)
		return;
	for (size_t i = 0; i < KV_FLUSH_SPARES; i++) {
		if (!db->flush_spare[i].data) {
			kv_buf_keep_spare(&db->flush_spare[i], data, cap, 2 * db->conf.memtable_bytes);
			return;
		}
	}
	free(data);
}

int kv_flush_build(struct kv_db *db, struct kv_mem *mem, struct kv_built *bt)
{
	KV_MU_HELD(db);
	uint64_t *snaps = NULL;
	size_t n_snaps = 0;
	int rc = kv_snapshot_seqs(db, &snaps, &n_snaps);

	if (rc)
		return rc;
	struct kv_buf spare = kv_flush_spare_get(db);
	kv_mutex_unlock(&db->mu);
	rc = kv_flush_build_mem(db, mem, snaps, n_snaps, &spare, bt);
	free(snaps);
	kv_mutex_lock(&db->mu);
	kv_flush_spare_put(db, spare.data, spare.cap);
	return rc;
}

void kv_built_free(struct kv_built *bt)
{
	if (!bt)
		return;
	free(bt->data);
	free(bt->sst);
	kv_sst_meta_clear(&bt->meta);
	free(bt);
}

/* Build imm[1] ahead of its flush (mu held on entry and return). */
static void kv_prebuild_one(struct kv_db *db)
{
	KV_MU_HELD(db);
	struct kv_mem *mem = db->imm[1].mem;
	struct kv_built *bt = calloc(1, sizeof(*bt));
	int rc;

	if (!bt) {
		db->imm[1].build = KV_BUILD_SKIP;
		return;
	}
	db->imm[1].build = KV_BUILD_RUNNING;
	kv_mem_ref(mem);
	rc = kv_flush_build(db, mem, bt);         /* drops mu while it builds */
	/* The flusher waits for a running build before it takes the entry,
	 * so it is still here, though maybe at imm[0] by now. */
	size_t i = 0;
	while (i < db->n_imm && db->imm[i].mem != mem)
		i++;
	if (i < db->n_imm) {
		db->imm[i].build = rc ? KV_BUILD_SKIP : KV_BUILD_NONE;
		if (!rc) {
			db->imm[i].built = bt;
			bt = NULL;
		}
	}
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_state));
	kv_mutex_unlock(&db->mu);
	kv_built_free(bt);
	kv_mem_unref(mem);
	kv_mutex_lock(&db->mu);
}

void *kv_flush_prebuild_main(void *arg)
{
	struct kv_db *db = arg;

	util_thread_setup("kv-prebuild", 0);
	kv_mutex_lock(&db->mu);
	/* At close the flusher drains alone: a prebuild is only a head start. */
	while (!db->shutdown && db->state != KV_STATE_FENCED && !db->flusher_exited) {
		if (db->n_imm >= 2 && db->imm[1].build == KV_BUILD_NONE && !db->imm[1].built)
			kv_prebuild_one(db);
		else
			kv_cond_wait(&db->cv_flush, &db->mu);
	}
	kv_mutex_unlock(&db->mu);
	return NULL;
}
