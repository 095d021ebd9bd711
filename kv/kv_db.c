/*
 * kv_db.c - the engine's front: open and recovery (with fencing), the
 * write path, reads, sync, iterators, close, stats. WAL replay is in
 * kv_replay.c, snapshots in kv_snapshot.c. This file starts the
 * background threads (WAL writer, flusher, compactor, GC, follower); what
 * they share with it (state, health, backoff, pending tables, snapshots,
 * replay) lives in files below both, so nothing calls back into this
 * one (scripts/callcycles checks it).
 *
 * OPEN AS WRITER
 *   1. Load the latest manifest; an empty store gets manifest 1.
 *   2. Bump writer_epoch with a manifest CAS (id+1). From now on any older
 *      writer's manifest CAS fails and it finds our epoch: fenced.
 *   3. List WAL objects after wal_replay_after; write an empty "fence" WAL
 *      object at the next id with put_if_absent (on -EEXIST: someone wrote
 *      there first, list again and go one further). An older writer's next
 *      WAL upload now meets -EEXIST: fenced.
 *   4. Replay every WAL object in (wal_replay_after, fence) into memtables,
 *      skipping records with seq <= manifest.last_seq (already in SSTs).
 *      Everything the old writer had acknowledged is in those objects.
 *      A missing object in that range, or one failing its checksums, fails
 *      the open with KV_ECORRUPT naming it: objects are written whole, so a
 *      bad checksum is corruption, never a torn write to skip.
 *   5. Start the WAL writer and memtable flusher threads.
 *
 * OPEN READ-ONLY / AT A CHECKPOINT
 *   Load the latest manifest (or the checkpoint's), replay the WAL objects
 *   after it (up to the checkpoint's wal_id), and never write.
 *
 * WRITE PATH (kv_write)
 *   Under db->mu: wait while over budget (backpressure: frozen memtables,
 *   unflushed WAL bytes), assign seqs, append the batch to the open WAL
 *   object, apply it to the memtable, publish last_seq. The WAL writer
 *   thread makes it durable (kv_wal_writer.c).
 *
 * STORE FAILURES: kv_health.c.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_DFLT_FLUSH_INTERVAL_MS 100
#define KV_DFLT_WAL_MAX_BYTES ((size_t)4 << 20)
#define KV_DFLT_MEMTABLE_BYTES ((size_t)64 << 20)
#define KV_DFLT_MAX_FROZEN 2
#define KV_DFLT_BLOCK_CACHE ((size_t)64 << 20)
#define KV_DFLT_L0_MAX 32
#define KV_DFLT_L0_TRIGGER 4
/* zstd's first fast level: blocks come out somewhat larger than at level
 * 3 on kvbench's half-compressible values but decompress several times
 * faster, and every block-cache miss pays that decompression. Compression
 * is faster too. docs/kv-format.md, "Known limits", has the figures. */
#define KV_DFLT_COMPRESSION (-1)
#define KV_DFLT_BLOOM 10
#define KV_DFLT_POLL_MS 1000
#define KV_DFLT_SST_MAX ((size_t)64 << 20)
#define KV_DFLT_GC_INTERVAL_MS 60000
#define KV_DFLT_MANIFESTS_KEEP 16
/* Writers wait while this many WAL bytes are not yet in the store. */
#define KV_WAL_BUDGET_FACTOR 4
#define KV_DFLT_CLOSE_TIMEOUT_MS 30000

static void kv_db_join(struct kv_db *db);

static void kv_conf_defaults(struct kv_config *c)
{
	if (!c->flush_interval_ms)
		c->flush_interval_ms = KV_DFLT_FLUSH_INTERVAL_MS;
	if (!c->wal_max_bytes)
		c->wal_max_bytes = KV_DFLT_WAL_MAX_BYTES;
	if (!c->memtable_bytes)
		c->memtable_bytes = KV_DFLT_MEMTABLE_BYTES;
	if (!c->max_frozen_memtables)
		c->max_frozen_memtables = KV_DFLT_MAX_FROZEN;
	if (c->max_frozen_memtables > KV_MAX_IMM - 1)
		c->max_frozen_memtables = KV_MAX_IMM - 1;
	if (!c->block_cache_bytes)
		c->block_cache_bytes = KV_DFLT_BLOCK_CACHE;
	if (!c->l0_max)
		c->l0_max = KV_DFLT_L0_MAX;
	if (!c->l0_compact_trigger)
		c->l0_compact_trigger = KV_DFLT_L0_TRIGGER;
	/* A writer stalled at l0_max must never be left waiting for a bulk
	 * load's hold to end: it ends below l0_max minus the frozen
	 * memtables, which count toward l0_max (kv_write_stalled). */
	if (!c->l0_bulk_trigger)
		c->l0_bulk_trigger = c->l0_max * 3 / 4;
	if (c->l0_max > c->max_frozen_memtables &&
	    c->l0_bulk_trigger > c->l0_max - c->max_frozen_memtables)
		c->l0_bulk_trigger = c->l0_max - c->max_frozen_memtables;
	if (c->l0_bulk_trigger < c->l0_compact_trigger)
		c->l0_bulk_trigger = c->l0_compact_trigger;
	if (c->compression_level == 0)
		c->compression_level = KV_DFLT_COMPRESSION;
	else if (c->compression_level == KV_COMPRESSION_OFF)
		c->compression_level = 0;
	if (!c->idle_compact_ms)
		c->idle_compact_ms = KV_DFLT_IDLE_COMPACT_MS;
	if (!c->data_rewrite_pct)
		c->data_rewrite_pct = KV_DFLT_DATA_REWRITE_PCT;
	else if (c->data_rewrite_pct == KV_DATA_REWRITE_NEVER || c->data_rewrite_pct > 100)
		c->data_rewrite_pct = 0;        /* internally: never */
	if (!c->bloom_bits_per_key)
		c->bloom_bits_per_key = KV_DFLT_BLOOM;
	if (!c->poll_interval_ms)
		c->poll_interval_ms = KV_DFLT_POLL_MS;
	if (!c->close_timeout_ms)
		c->close_timeout_ms = KV_DFLT_CLOSE_TIMEOUT_MS;
	if (!c->reserve_bytes)
		c->reserve_bytes = KV_RESERVE_NONE;
	if (!c->sst_max_bytes)
		c->sst_max_bytes = KV_DFLT_SST_MAX;
	if (!c->gc_interval_ms)
		c->gc_interval_ms = KV_DFLT_GC_INTERVAL_MS;
	if (!c->gc_min_age_ms)
		c->gc_min_age_ms = KV_DFLT_GC_MIN_AGE_MS;
	if (!c->manifests_keep)
		c->manifests_keep = KV_DFLT_MANIFESTS_KEEP;
}

/* ---- open --------------------------------------------------------------- */

static int kv_open_install(struct kv_db *db, struct kv_manifest *man)
{
	struct kv_version *v;
	int rc = kv_version_build(&v, man, NULL, NULL, NULL, db->store, db->cache, &db->vreg);
	if (rc)
		return rc;
	db->ver = v;
	db->last_seq = man->last_seq;
	return 0;
}

/* Steps 1-2: the latest manifest with our writer epoch in it. */
static int kv_open_claim(struct kv_db *db, struct kv_manifest **out)
{
	struct kv_manifest *m = NULL;
	int rc;

	for (int attempt = 0; attempt < 100; attempt++) {
		rc = kv_manifest_load_latest(db->store, &m);
		if (rc == -ENOENT) {
			struct kv_manifest init = { .next_run_id = 1 };
			UTIL_INFO("kv", "empty store: writing the first manifest");
			rc = kv_manifest_store(db->store, &init, 1);
			if (rc == 0 || rc == -EEXIST)
				continue;
			return rc;
		}
		if (rc)
			return rc;
		m->writer_epoch++;
		rc = kv_manifest_store(db->store, m, m->id + 1);
		if (rc == 0) {
			*out = m;
			return 0;
		}
		kv_manifest_free(m);
		m = NULL;
		if (rc != -EEXIST)
			return rc;
	}
	UTIL_ERROR("kv", "could not claim the store: the manifest keeps changing under us");
	return -EAGAIN;
}

/* Step 3: the fence object. Returns its id. */
static int kv_open_fence(struct kv_db *db, uint64_t after, uint64_t *fence)
{
	struct kv_buf b = { 0 };
	struct kv_wal_scan s;
	char name[48];
	int rc;

	for (int attempt = 0; attempt < 100; attempt++) {
		rc = kv_wal_scan(db->store, after, &s);
		if (rc)
			return rc;
		if (s.gap) {
			kv_wal_name(s.gap, name, sizeof(name));
			return KV_CORRUPT(name, KV_CORRUPT_NO_OFFSET, "missing while later WAL "
					  "objects exist: the WAL is not contiguous");
		}
		struct kv_wal_header h = { .wal_id = s.max + 1, .writer_epoch = db->writer_epoch };
		kv_buf_free(&b);
		rc = kv_wal_begin(&b, &h);
		rc = rc ? rc : kv_wal_finish(&b);
		if (rc)
			break;
		kv_wal_name(s.max + 1, name, sizeof(name));
		rc = obj_put_if_absent(db->store, name, b.data, b.len);
		if (rc == 0) {
			*fence = s.max + 1;
			break;
		}
		if (rc != -EEXIST)
			break;
	}
	kv_buf_free(&b);
	return rc;
}

static int kv_open_writer(struct kv_db *db)
{
	struct kv_manifest *m = NULL;
	uint64_t fence = 0, after;
	int rc;

	if (db->conf.lease) {
		/* The epoch the claim below will write: recorded in the lease
		 * so that others can match the holder to its manifests. */
		uint64_t epoch = 1;
		rc = kv_manifest_load_latest(db->store, &m);
		if (rc == 0)
			epoch = m->writer_epoch + 1;
		else if (rc != -ENOENT)
			return rc;
		kv_manifest_free(m);
		m = NULL;
		rc = kv_lease_acquire(db, epoch);
		if (rc)
			return rc;
	}
	rc = kv_open_claim(db, &m);
	if (rc)
		return rc;
	db->writer_epoch = m->writer_epoch;
	after = m->wal_replay_after;
	rc = kv_open_install(db, m);
	if (rc) {
		kv_manifest_free(m);
		return rc;
	}
	rc = kv_open_fence(db, after, &fence);
	if (rc)
		return rc;
	UTIL_INFO("kv", "writer epoch %" PRIu64 ": replaying WAL %" PRIu64 "..%" PRIu64,
		  db->writer_epoch, after + 1, fence - 1);
	kv_mutex_lock(&db->mu);
	rc = kv_replay_range(db, after, fence - 1, 1);
	/* The fence holds no data; record it so replay_after can pass it. */
	if (rc == 0)
		rc = kv_wal_done_push(db, fence, db->last_seq);
	db->durable_seq = db->last_seq;
	db->wal_next_id = fence + 1;
	kv_mutex_unlock(&db->mu);
	return rc;
}

static int kv_open_reader(struct kv_db *db)
{
	struct kv_manifest *m = NULL;
	uint64_t upto;
	int rc;

	if (db->conf.mode == KV_OPEN_CHECKPOINT) {
		struct kv_manifest *latest;
		const struct kv_checkpoint *c;
		if (!db->conf.checkpoint)
			return -EINVAL;
		rc = kv_manifest_load_latest(db->store, &latest);
		if (rc)
			return rc;
		c = kv_manifest_find_ckpt(latest, db->conf.checkpoint);
		if (!c) {
			UTIL_ERROR("kv", "no checkpoint named '%s' in manifest/%020" PRIu64,
				   db->conf.checkpoint, latest->id);
			kv_manifest_free(latest);
			return -ENOENT;
		}
		uint64_t mid = c->manifest_id;
		upto = c->wal_id;
		kv_manifest_free(latest);
		rc = kv_manifest_load(db->store, mid, &m);
	} else {
		rc = kv_manifest_load_latest(db->store, &m);
		upto = UINT64_MAX;
	}
	if (rc)
		return rc;
	uint64_t after = m->wal_replay_after;
	rc = kv_open_install(db, m);
	if (rc) {
		kv_manifest_free(m);
		return rc;
	}
	if (upto == UINT64_MAX) {
		struct kv_wal_scan s;
		rc = kv_wal_scan(db->store, after, &s);
		if (rc)
			return rc;
		/* A follower reads up to the first gap: a writer's upload may be
		 * in flight while later ids cannot exist yet. */
		upto = s.gap ? s.gap - 1 : s.max;
	}
	kv_mutex_lock(&db->mu);
	rc = kv_replay_range(db, after, upto, 0);
	db->durable_seq = db->last_seq;
	db->follow_next_wal = upto + 1;
	kv_mutex_unlock(&db->mu);
	return rc;
}

static void kv_db_free(struct kv_db *db)
{
	for (size_t i = 0; i < db->n_imm; i++) {
		kv_mem_unref(db->imm[i].mem);
		kv_built_free(db->imm[i].built);
	}
	if (db->mem)
		kv_mem_unref(db->mem);
	kv_version_unref(db->ver);
	pthread_mutex_destroy(&db->vreg.mu);  /* every iterator is gone by now */
	kv_buf_free(&db->wal_open);
	kv_buf_free(&db->wal_spare);
	for (size_t i = 0; i < KV_FLUSH_SPARES; i++)
		kv_buf_free(&db->flush_spare[i]);
	kv_pool_unref(db->mem_pool);
	free(db->wal_done);
	if (db->cache)
		kv_cache_free(db->cache);
	pthread_cond_destroy(&db->cv_wal);
	pthread_cond_destroy(&db->cv_flush);
	pthread_cond_destroy(&db->cv_state);
	pthread_cond_destroy(&db->cv_compact);
	pthread_cond_destroy(&db->cv_gc);
	kv_mutex_destroy(&db->mu);
	free(db->quarantine);
	free(db->pending);
	free(db->gc_unref);
	free(db);
}

static int kv_db_open(struct kv_db **out, struct obj_backend *store, const struct kv_config *conf)
{
	static const struct kv_config defaults = KV_CONFIG_INIT;
	struct kv_db *db;
	int rc;

	*out = NULL;
	db = calloc(1, sizeof(*db));
	if (!db)
		return -ENOMEM;
	db->store = store;
	db->conf = conf ? *conf : defaults;
	kv_conf_defaults(&db->conf);
	db->readonly = db->conf.mode != KV_OPEN_WRITER;
	db->snaps.next = db->snaps.prev = &db->snaps;
	kv_mutex_init(&db->mu);
	CHECK_RETURN(pthread_mutex_init(&db->vreg.mu, NULL));
	CHECK_RETURN(pthread_cond_init(&db->cv_wal, NULL));
	CHECK_RETURN(pthread_cond_init(&db->cv_flush, NULL));
	CHECK_RETURN(pthread_cond_init(&db->cv_state, NULL));
	CHECK_RETURN(pthread_cond_init(&db->cv_compact, NULL));
	CHECK_RETURN(pthread_cond_init(&db->cv_gc, NULL));
	db->gc_kick = 1;                /* garbage a previous process left */
	db->gc_due_ms = UINT64_MAX;
	rc = kv_cache_create(&db->cache, db->conf.block_cache_bytes);
	if (rc)
		goto fail;
	kv_ra_set_warm(db->cache, db->conf.warm_max_bytes);
	/* One memtable's worth of chunks is what the next memtable reuses
	 * while the last frozen one is dropped (kv_pool.c). */
	db->mem_pool = kv_mem_pool_create(db->conf.memtable_bytes);
	if (!db->mem_pool) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = kv_mem_create(&db->mem, db->mem_pool);
	if (rc)
		goto fail;
	rc = db->readonly ? kv_open_reader(db) : kv_open_writer(db);
	if (rc)
		goto fail;
	/* Readers register so that checkpoint delete can name them; a store
	 * that refuses the registration is still readable. */
	if (db->readonly && db->conf.lease && (rc = kv_reader_register(db)) != 0)
		UTIL_WARN("kv", "cannot register this reader under readers/ (%s): "
			  "checkpoint delete will not see it", kv_strerror(rc));
	int want = 0;
	if (!db->readonly) {
		want = 1 | 2 | 32;
		if (pthread_create(&db->wal_thread, NULL, kv_wal_writer_main, db) == 0)
			db->threads |= 1;
		if (pthread_create(&db->flush_thread, NULL, kv_flush_main, db) == 0)
			db->threads |= 2;
		if (pthread_create(&db->prebuild_thread, NULL, kv_flush_prebuild_main, db) == 0)
			db->threads |= 32;
		if (!db->conf.no_background) {
			want |= 4 | 8;
			if (pthread_create(&db->compact_thread, NULL, kv_compact_main, db) == 0)
				db->threads |= 4;
			if (pthread_create(&db->gc_thread, NULL, kv_gc_main, db) == 0)
				db->threads |= 8;
		}
	} else if (db->conf.mode == KV_OPEN_READONLY && !db->conf.no_background) {
		want = 16;
		if (pthread_create(&db->follow_thread, NULL, kv_follow_main, db) == 0)
			db->threads |= 16;
	}
	if (db->threads != want) {
		UTIL_ERROR("kv", "cannot start the engine's threads");
		rc = -EAGAIN;
		goto fail_threads;
	}
	/* Sequential reads prefetch on the cache's fill threads (PREFETCH in
	 * kv_readahead.c); without them they just do not prefetch. */
	if ((rc = kv_ra_fill_start(db->cache)))
		UTIL_WARN("kv", "cannot start the block cache's fill threads (%s): reads will not "
			  "prefetch", strerror(-rc));
	*out = db;
	return 0;
fail_threads:
	kv_mutex_lock(&db->mu);
	db->shutdown = 2;
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_wal));
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_flush));
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_compact));
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_gc));
	kv_mutex_unlock(&db->mu);
	kv_db_join(db);
fail:
	/* Nothing was acknowledged under a lease taken here. */
	kv_lease_release(db, 1);
	kv_reader_unregister(db);
	kv_db_free(db);
	return rc;
}

/* The requests of an open (the lease, the manifest, the WAL replay and the
 * flushes it makes on this thread) are charged to "other" (objstore.h). */
int kv_open(struct kv_db **out, struct obj_backend *store, const struct kv_config *conf)
{
	enum obj_purpose was = obj_purpose_set(OBJ_PURPOSE_OTHER);
	int rc = kv_db_open(out, store, conf);

	(void)obj_purpose_set(was);
	return rc;
}

static void kv_db_join(struct kv_db *db)
{
	if (db->threads & 4)
		pthread_join(db->compact_thread, NULL);
	if (db->threads & 8)
		pthread_join(db->gc_thread, NULL);
	if (db->threads & 16)
		pthread_join(db->follow_thread, NULL);
	if (db->threads & 1)
		pthread_join(db->wal_thread, NULL);
	if (db->threads & 2)
		pthread_join(db->flush_thread, NULL);
	if (db->threads & 32)
		pthread_join(db->prebuild_thread, NULL);
	db->threads = 0;
}

/* Stop the threads: mode 1 drains (close), mode 2 drops (abandon). */
static void kv_db_stop(struct kv_db *db, int mode)
{
	kv_mutex_lock(&db->mu);
	if (mode == 1 && db->state == KV_STATE_OK && !db->readonly) {
		/* Fold the memtable into an SST so the next open replays little. */
		if (kv_flush_freeze(db))
			UTIL_WARN("kv", "close: could not freeze the memtable; the WAL keeps its data");
	}
	db->shutdown = mode;
	db->shutdown_ns = util_now_ns();
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_wal));
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_flush));
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_state));
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_compact));
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_gc));
	kv_mutex_unlock(&db->mu);
	kv_db_join(db);
	/* Prefetches hold readers, which use the store: done before close
	 * returns (kv_cache_free would stop them too, but later). */
	if (db->cache)
		kv_ra_fill_stop(db->cache);
}

int kv_close(struct kv_db *db)
{
	int rc = 0;
	if (!db)
		return 0;
	kv_db_stop(db, 1);
	if (!db->readonly) {
		if (db->state == KV_STATE_ERROR)
			rc = -EIO;
		else if (db->durable_seq < db->last_seq)
			rc = db->state == KV_STATE_FENCED ? -EROFS : -EIO;
		if (rc)
			UTIL_ERROR("kv", "close: writes after seq %" PRIu64 " (up to %" PRIu64
				   ") were not made durable: %s", db->durable_seq, db->last_seq,
				   kv_strerror(rc));
		/* A fenced writer's lease was taken over: nothing to release. */
		if (db->state != KV_STATE_FENCED)
			kv_lease_release(db, rc == 0);
	}
	kv_reader_unregister(db);
	kv_db_free(db);
	return rc;
}

void kv_abandon(struct kv_db *db)
{
	if (!db)
		return;
	kv_db_stop(db, 2);
	kv_db_free(db);
}

/* ---- writes ------------------------------------------------------------- */

/* Must a writer wait? (mu held) */
static int kv_write_stalled(struct kv_db *db)
{
	KV_MU_HELD(db);
	size_t wal = db->wal_open.len + db->wal_inflight;
	if (db->n_imm >= db->conf.max_frozen_memtables &&
	    kv_mem_bytes(db->mem) >= db->conf.memtable_bytes)
		return 1;
	/* Too many L0 tables slow every read: wait for the compactor, unless
	 * it cannot help (not running, or stuck on a quarantined table). A
	 * frozen memtable is an L0 table on its way, so L0 never exceeds
	 * l0_max. */
	if (db->compactor_running && !db->n_quarantine &&
	    db->ver->man->n_l0 + db->n_imm >= db->conf.l0_max)
		return 1;
	return wal >= db->conf.wal_max_bytes * KV_WAL_BUDGET_FACTOR;
}

static int kv_batch_apply_entry(void *arg, enum kv_type type, const uint8_t *key, size_t klen,
				const uint8_t *val, size_t vlen)
{
	struct kv_replay *r = arg;
	return kv_mem_add(r->db->mem, r->seq++, type, key, klen, val, vlen);
}

/* Value bytes of a batch's puts, and whether it deletes anything. */
struct kv_shrink {
	size_t put_bytes;
	int deletes;
};

static int kv_shrink_entry(void *arg, enum kv_type type, const uint8_t *key, size_t klen,
			   const uint8_t *val, size_t vlen)
{
	struct kv_shrink *s = arg;
	(void)key;
	(void)val;
	if (type == KV_TYPE_DELETE)
		s->deletes = 1;
	else
		s->put_bytes += klen + vlen;
	return 0;
}

/*
 * ROOM TO DELETE: what a writer may add while the store is short of room
 * (kv_room_short: it refuses writes for space, or the reserve is spent).
 * Deletes (rm, truncate: tombstones, and at most a few small records such
 * as the inode they change) shrink the data set: refusing them would
 * leave the user no way to make room, so they go in, stall or not, within
 * KV_FULL_OVERDRAFT bytes while the store refuses writes (without limit
 * once it takes them), and the first of them releases the reserve
 * (kv_reclaim.c) for them. Other writes get ENOSPC beyond
 * KV_FULL_TRICKLE bytes until the reserve is made again - at once while
 * the store refuses writes, after up to KV_RESERVE_WAIT_NS while it takes
 * them (file data waits in the filesystem's buffers): stored ahead of the deletes in the WAL,
 * they would take the room the reserve gives. The reclaim pass then
 * turns the deletes into free space.
 */
#define KV_FULL_OVERDRAFT ((size_t)8 << 20)
#define KV_SHRINK_PUT_MAX 4096

#define KV_FULL_TRICKLE ((size_t)1 << 20)
/* How long a write refused only for the spent reserve waits for it. */
#define KV_RESERVE_WAIT_NS (5ull * 1000000000)

/* 1: let b in (counted), 0: refuse it (the store is full), -1: the store
 * is not full, the usual rules apply (mu held). */
static int kv_write_full_admit(struct kv_db *db, const struct kv_batch *b)
{
	struct kv_shrink s = { 0 };
	int full = db->store_err == -ENOSPC || db->store_err == -EDQUOT;

	if (!kv_room_short(db))
		return -1;
	if (kv_batch_each(b->rep.data, b->rep.len, b->count, kv_shrink_entry, &s) != 0)
		return 0;
	if (s.deletes && s.put_bytes <= KV_SHRINK_PUT_MAX) {
		if (!full)
			return -1;      /* the store takes writes: the usual rules */
		if (db->full_overdraft + b->rep.len > KV_FULL_OVERDRAFT)
			return 0;
		db->full_overdraft += b->rep.len;
		if (!db->full_deletes) {
			db->full_deletes = 1;
			kv_gc_kick(db);         /* release the reserve for them */
		}
		return 1;
	}
	if (db->full_trickle + b->rep.len > KV_FULL_TRICKLE)
		return 0;
	db->full_trickle += b->rep.len;
	return 1;
}

static int kv_write_ext(struct kv_db *db, struct kv_batch *b, int unlogged)
{
	struct kv_replay r = { .db = db };
	uint64_t first, stall_start = 0;
	int rc;

	if (db->readonly)
		return -EROFS;
	if (!b || b->count == 0)
		return 0;
	kv_mutex_lock(&db->mu);
	for (;;) {
		if (db->state != KV_STATE_OK || db->shutdown) {
			if (stall_start)
				db->writers_waiting--;
			rc = -EROFS;
			goto out;
		}
		/* While the store is short of room, a write waits for nothing:
		 * it is let in (a delete; a little else) or refused now.
		 * Anything else stored ahead of the deletes would take the room
		 * they make. */
		int full = kv_write_full_admit(db, b);
		if (full == 1)
			break;
		if (full == 0 && !db->store_err &&
		    (!stall_start || util_now_ns() - stall_start < KV_RESERVE_WAIT_NS)) {
			/* The store takes writes but the reserve is spent: GC
			 * makes it again within a second or two when there is
			 * room, and the write goes in then. */
			if (!stall_start) {
				stall_start = util_now_ns();
				db->write_stalls++;
				db->writers_waiting++;
			}
			uint64_t wall = util_wall_ns() + KV_RESERVE_WAIT_NS / 8;
			struct timespec ts = { (time_t)(wall / 1000000000ull),
					       (long)(wall % 1000000000ull) };
			(void)kv_cond_timedwait(&db->cv_state, &db->mu, &ts);
			continue;
		}
		if (full == 0) {
			if (stall_start)
				db->writers_waiting--;
			rc = db->store_err ? kv_store_errno(db->store_err) : -ENOSPC;
			goto out;
		}
		if (!kv_write_stalled(db))
			break;
		if (db->store_err) {
			/* The room comes back only when the store takes writes. */
			if (stall_start)
				db->writers_waiting--;
			rc = kv_store_errno(db->store_err);
			goto out;
		}
		if (!stall_start) {
			stall_start = util_now_ns();
			db->write_stalls++;
			db->writers_waiting++;
		}
		CHECK_RETURN(pthread_cond_signal(&db->cv_wal));
		kv_cond_wait(&db->cv_state, &db->mu);
	}
	if (stall_start) {
		db->stall_ns += util_now_ns() - stall_start;
		db->writers_waiting--;
	}
	first = db->last_seq + 1;
	if (first + b->count - 1 > KV_SEQ_MAX) {
		rc = -EOVERFLOW;
		goto out;
	}
	if (!unlogged) {
		rc = kv_wal_writer_append(db, first, b);
		if (rc)
			goto out;
	}
	r.seq = first;
	rc = kv_batch_each(b->rep.data, b->rep.len, b->count, kv_batch_apply_entry, &r);
	if (rc) {
		/* The WAL has the whole batch but the memtable only part of it:
		 * readers could see half a batch. Stop taking writes. */
		UTIL_ERROR("kv", "applying a batch to the memtable failed (%s): handle is now in "
			   "the ERROR state", kv_strerror(rc));
		kv_db_set_state(db, KV_STATE_ERROR, rc);
		goto out;
	}
	db->last_seq = first + b->count - 1;
	if (unlogged) {
		db->unlogged_batches++;
		db->unlogged_bytes += b->rep.len;
		if (!db->mem_first_unlogged) {
			/* The WAL writer times its flush from here. */
			db->mem_first_unlogged = first;
			db->unlogged_since_ns = util_now_ns();
			CHECK_RETURN(pthread_cond_signal(&db->cv_wal));
		}
	}
	if (kv_mem_bytes(db->mem) >= db->conf.memtable_bytes &&
	    db->n_imm < db->conf.max_frozen_memtables) {
		db->bulk_full_ns = util_now_ns();   /* BULK LOADS in kv_compact.c */
		kv_flush_freeze(db);        /* -ENOMEM: stay in this memtable for now */
	}
out:
	kv_mutex_unlock(&db->mu);
	return rc;
}

int kv_write(struct kv_db *db, struct kv_batch *b)
{
	return kv_write_ext(db, b, 0);
}

int kv_write_unlogged(struct kv_db *db, struct kv_batch *b)
{
	return kv_write_ext(db, b, 1);
}

int kv_put(struct kv_db *db, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct kv_batch *b;
	int rc = kv_batch_create(&b);
	if (rc)
		return rc;
	rc = kv_batch_put(b, key, klen, val, vlen);
	if (!rc)
		rc = kv_write(db, b);
	kv_batch_free(b);
	return rc;
}

int kv_delete(struct kv_db *db, const void *key, size_t klen)
{
	struct kv_batch *b;
	int rc = kv_batch_create(&b);
	if (rc)
		return rc;
	rc = kv_batch_delete(b, key, klen);
	if (!rc)
		rc = kv_write(db, b);
	kv_batch_free(b);
	return rc;
}

int kv_sync(struct kv_db *db)
{
	uint64_t target, gen;
	int rc = 0;

	if (db->readonly)
		return 0;
	kv_mutex_lock(&db->mu);
	target = db->last_seq;
	gen = db->store_fail_gen;
	if (db->store_err)
		db->retry_now = 1;      /* try again now, not after the backoff */
	db->sync_waiters++;
	for (;;) {
		while (db->durable_seq < target && db->state == KV_STATE_OK &&
		       db->store_fail_gen == gen) {
			CHECK_RETURN(pthread_cond_signal(&db->cv_wal));
			kv_cond_wait(&db->cv_state, &db->mu);
		}
		/* A failure that a retry already overcame before this waiter
		 * woke is no answer: keep waiting for the data itself. */
		if (db->durable_seq < target && db->state == KV_STATE_OK && !db->store_err) {
			gen = db->store_fail_gen;
			continue;
		}
		break;
	}
	db->sync_waiters--;
	if (db->durable_seq < target && db->state == KV_STATE_OK)
		rc = kv_store_errno(db->store_err ? db->store_err : -EIO);
	else if (db->durable_seq < target)
		rc = db->state == KV_STATE_FENCED ? -EROFS : -EIO;
	kv_mutex_unlock(&db->mu);
	return rc;
}

int kv_is_readonly(struct kv_db *db)
{
	kv_mutex_lock(&db->mu);
	int ro = db->readonly || db->state != KV_STATE_OK;
	kv_mutex_unlock(&db->mu);
	return ro;
}

/* ---- reads -------------------------------------------------------------- */

/* What a read needs, pinned under mu. */
struct kv_pin {
	struct kv_mem *mems[KV_MAX_IMM + 1];  /* newest first */
	size_t n_mems;
	struct kv_version *ver;
	uint64_t seq;
};

static void kv_pin_take(struct kv_db *db, const struct kv_snapshot *snap, struct kv_pin *p)
{
	kv_mutex_lock(&db->mu);
	p->seq = snap ? snap->seq : db->last_seq;
	p->n_mems = 0;
	kv_mem_ref(db->mem);
	p->mems[p->n_mems++] = db->mem;
	for (size_t i = db->n_imm; i > 0; i--) {
		kv_mem_ref(db->imm[i - 1].mem);
		p->mems[p->n_mems++] = db->imm[i - 1].mem;
	}
	p->ver = db->ver;
	kv_version_ref(p->ver);
	kv_mutex_unlock(&db->mu);
}

static void kv_pin_drop(struct kv_pin *p)
{
	for (size_t i = 0; i < p->n_mems; i++)
		kv_mem_unref(p->mems[i]);
	kv_version_unref(p->ver);
}

/* kv_get and kv_get_part: with part NULL, *val gets a malloc'd copy. */
static int kv_get_ext(struct kv_db *db, const struct kv_snapshot *snap, const void *key,
		      size_t klen, const struct kv_part *part, void **val, size_t *vlen)
{
	struct kv_pin p;
	int rc = 0;

	*val = NULL;
	*vlen = 0;
	if (klen == 0 || klen > KV_KEY_MAX)
		return -EINVAL;
	kv_pin_take(db, snap, &p);
	for (size_t i = 0; i < p.n_mems && rc == 0; i++) {
		const uint8_t *v;
		size_t vl;
		rc = kv_mem_get(p.mems[i], key, klen, p.seq, &v, &vl);
		if (rc == 1 && part) {
			kv_part_copy(part, v, vl);
			*vlen = vl;
		} else if (rc == 1) {
			*val = malloc(vl ? vl : 1);
			if (!*val) {
				rc = -ENOMEM;
				break;
			}
			memcpy(*val, v, vl);
			*vlen = vl;
		}
	}
	if (rc == 0) {
		uint8_t *v = NULL;
		size_t vl = 0;
		rc = kv_version_get(p.ver, key, klen, p.seq, part, &v, &vl);
		if (rc == 1) {
			*val = v;
			*vlen = vl;
		}
	}
	kv_pin_drop(&p);
	if (rc == 1)
		return 0;
	if (rc == 0 || rc == 2)
		return -ENOENT;
	if (rc == KV_ECORRUPT)
		kv_db_checkpoint_check(db);
	return rc;
}

int kv_get(struct kv_db *db, const struct kv_snapshot *snap, const void *key, size_t klen,
	   void **val, size_t *vlen)
{
	return kv_get_ext(db, snap, key, klen, NULL, val, vlen);
}

int kv_get_part(struct kv_db *db, const struct kv_snapshot *snap, const void *key, size_t klen,
		size_t off, void *buf, size_t cap, size_t *vlen)
{
	struct kv_part part = { .off = off, .cap = cap, .buf = buf };
	void *none;

	return kv_get_ext(db, snap, key, klen, &part, &none, vlen);
}

/* ---- iterators ---------------------------------------------------------- */

struct kv_iter_user {
	struct kv_db *db;
	struct kv_iter *it;               /* user-view iterator over the merge */
	struct kv_pin pin;
	int missing_logged;               /* kv_iter_status reported a missing table */
	int err;                          /* a value failed to read: the iteration ends */
	uint8_t *val;                     /* the current value, read from its data table */
	size_t val_len;
};

int kv_iter_create(struct kv_db *db, const struct kv_snapshot *snap, const void *lo,
		   size_t lolen, const void *hi, size_t hilen, struct kv_iter_user **out)
{
	struct kv_iter_user *u = calloc(1, sizeof(*u));
	struct kv_iter **kids = NULL, *merge = NULL;
	size_t n = 0, cap;
	int rc;

	*out = NULL;
	if (!u)
		return -ENOMEM;
	u->db = db;
	kv_pin_take(db, snap, &u->pin);
	cap = u->pin.n_mems + kv_version_sst_count(u->pin.ver);
	kids = calloc(cap ? cap : 1, sizeof(*kids));
	if (!kids) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < u->pin.n_mems; i++) {
		rc = kv_mem_iter_create(&kids[n], u->pin.mems[i]);
		if (rc)
			goto fail;
		n++;
	}
	rc = kv_version_iters(u->pin.ver, lo, lolen, hi, hilen, kids, &n);
	if (rc)
		goto fail;
	rc = kv_merge_iter_create(&merge, kids, n);
	if (rc)
		goto fail;
	kids = NULL;
	n = 0;
	rc = kv_user_iter_create(&u->it, merge, u->pin.seq, lo, lolen, hi, hilen);
	if (rc)
		goto fail;
	merge = NULL;
	u->it->ops->seek_first(u->it);
	*out = u;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		kids[i]->ops->free(kids[i]);
	free(kids);
	if (merge)
		merge->ops->free(merge);
	kv_pin_drop(&u->pin);
	free(u);
	return rc;
}

void kv_iter_seek(struct kv_iter_user *u, const void *key, size_t klen)
{
	u->it->ops->seek(u->it, key, klen);
}

int kv_iter_valid(struct kv_iter_user *u)
{
	return !u->err && u->it->ops->valid(u->it);
}

void kv_iter_next(struct kv_iter_user *u)
{
	free(u->val);
	u->val = NULL;
	u->it->ops->next(u->it);
}

const void *kv_iter_key(struct kv_iter_user *u, size_t *klen)
{
	const uint8_t *k;
	u->it->ops->key(u->it, &k, klen);
	return k;
}

/*
 * A REF entry's value is read from its data table when asked for (a scan
 * that needs only keys or lengths reads no data), and kept until the
 * iterator moves. A failed read ends the iteration: kv_iter_valid turns
 * false and kv_iter_status reports it; this call returns NULL, 0 bytes.
 */
const void *kv_iter_value(struct kv_iter_user *u, size_t *vlen)
{
	const uint8_t *v, *k;
	size_t kl;

	u->it->ops->value(u->it, &v, vlen);
	if (!kv_user_iter_is_ref(u->it))
		return v;
	if (u->val) {
		*vlen = u->val_len;
		return u->val;
	}
	if (u->err) {
		*vlen = 0;
		return NULL;
	}
	u->it->ops->key(u->it, &k, &kl);
	int rc = kv_version_ref_read(u->pin.ver, NULL, k, kl, v, *vlen, NULL, &u->val, &u->val_len);
	if (rc != 1) {
		u->err = rc < 0 ? rc : KV_ECORRUPT;
		u->val = NULL;
		*vlen = 0;
		return NULL;
	}
	*vlen = u->val_len;
	return u->val;
}

size_t kv_iter_value_len(struct kv_iter_user *u)
{
	const uint8_t *v;
	size_t vlen;
	struct kv_ref ref;

	u->it->ops->value(u->it, &v, &vlen);
	if (kv_user_iter_is_ref(u->it) && kv_ref_decode(v, vlen, &ref) == 0)
		return (size_t)ref.len;
	return vlen;
}

int kv_iter_status(struct kv_iter_user *u)
{
	int rc = u->err ? u->err : u->it->ops->status(u->it);

	/* Only a table read can fail with -ENOENT here: the store did not
	 * find a table the pinned version references. That is corruption,
	 * not "not found" (see kv_version_read_err); logged once. */
	if (rc == -ENOENT) {
		rc = KV_CORRUPT(u->missing_logged ? NULL : "iterator", KV_CORRUPT_NO_OFFSET,
				"a table the manifest references is missing from the store "
				"(a read of it was answered 'not found')");
		u->missing_logged = 1;
	}
	if (rc == KV_ECORRUPT)
		kv_db_checkpoint_check(u->db);
	return rc;
}

void kv_iter_free(struct kv_iter_user *u)
{
	if (!u)
		return;
	u->it->ops->free(u->it);
	kv_pin_drop(&u->pin);
	free(u->val);
	free(u);
}

/* ---- stats -------------------------------------------------------------- */

uint64_t kv_table_bytes(struct kv_db *db)
{
	uint64_t n = 0;

	kv_mutex_lock(&db->mu);
	const struct kv_manifest *m = db->ver->man;
	for (size_t i = 0; i < m->n_l0; i++)
		n += m->l0[i].size;
	for (size_t i = 0; i < m->n_runs; i++)
		for (size_t j = 0; j < m->runs[i].n; j++)
			n += m->runs[i].ssts[j].size;
	for (size_t i = 0; i < db->ver->n_data; i++)
		n += db->ver->data[i].size;
	kv_mutex_unlock(&db->mu);
	return n;
}

void kv_stats(struct kv_db *db, kv_stat_emit_fn emit, void *arg)
{
	uint64_t hits, misses, bytes, imm_bytes = 0, l0_bytes = 0, sst_bytes;
	struct kv_ra_stats ra;
	size_t runs_ssts = 0;

	kv_mutex_lock(&db->mu);
	const struct kv_manifest *m = db->ver->man;
	for (size_t i = 0; i < db->n_imm; i++)
		imm_bytes += kv_mem_bytes(db->imm[i].mem);
	for (size_t i = 0; i < m->n_l0; i++)
		l0_bytes += m->l0[i].size;
	sst_bytes = l0_bytes;
	for (size_t i = 0; i < m->n_runs; i++) {
		runs_ssts += m->runs[i].n;
		for (size_t j = 0; j < m->runs[i].n; j++)
			sst_bytes += m->runs[i].ssts[j].size;
	}
	emit(arg, "state", (uint64_t)db->state);
	emit(arg, "readonly", (uint64_t)(db->readonly || db->state != KV_STATE_OK));
	emit(arg, "memtable_bytes", kv_mem_bytes(db->mem));
	emit(arg, "memtable_entries", kv_mem_count(db->mem));
	emit(arg, "frozen_memtables", db->n_imm);
	emit(arg, "frozen_memtable_bytes", imm_bytes);
	/* Kept for reuse, not in use: part of RSS (kv_pool.c). */
	emit(arg, "memtable_pool_bytes", kv_pool_free_bytes(db->mem_pool));
	emit(arg, "wal_spare_bytes", db->wal_spare.cap);
	emit(arg, "l0_count", m->n_l0);
	emit(arg, "l0_compact_trigger", db->conf.l0_compact_trigger);
	emit(arg, "l0_bulk_trigger", db->conf.l0_bulk_trigger);
	emit(arg, "l0_max", db->conf.l0_max);
	emit(arg, "sorted_runs", m->n_runs);
	emit(arg, "sorted_run_ssts", runs_ssts);
	/* The tables the manifest names (L0 and runs): the store's bytes
	 * short of WAL objects, manifests and garbage not yet collected. */
	emit(arg, "l0_bytes", l0_bytes);
	emit(arg, "sst_bytes", sst_bytes);
	uint64_t data_bytes = 0;
	for (size_t i = 0; i < db->ver->n_data; i++)
		data_bytes += db->ver->data[i].size;
	emit(arg, "data_tables", db->ver->n_data);
	emit(arg, "data_table_bytes", data_bytes);
	emit(arg, "manifest_id", m->id);
	emit(arg, "writer_epoch", db->writer_epoch);
	emit(arg, "lease_gen", db->lease.gen);
	emit(arg, "store_failing", db->store_err != 0);
	emit(arg, "store_error_errno", (uint64_t)-db->store_err);
	emit(arg, "store_failing_since_unix_ms", db->store_err ? db->store_err_since_ns / 1000000u : 0);
	emit(arg, "store_write_failures", db->store_fail_gen);
	emit(arg, "checkpoint_deleted", (uint64_t)atomic_load(&db->ckpt_deleted));
	emit(arg, "wal_replay_after", m->wal_replay_after);
	emit(arg, "wal_next_id", db->wal_next_id);
	emit(arg, "last_seq", db->last_seq);
	emit(arg, "durable_seq", db->durable_seq);
	emit(arg, "wal_buffered_bytes", db->wal_open.len + db->wal_inflight);
	emit(arg, "wal_objects_written", db->wal_objects);
	emit(arg, "wal_bytes_written", db->wal_bytes);
	emit(arg, "l0_flushes", db->l0_flushes);
	emit(arg, "l0_versions_dropped", db->l0_dropped);
	emit(arg, "data_tables_written", db->data_tables);
	emit(arg, "data_table_bytes_written", db->data_bytes);
	emit(arg, "data_rewrite_bytes", db->data_rewritten);
	emit(arg, "data_rewrite_tables", db->data_tables_rewritten);
	emit(arg, "l0_prebuilt", db->l0_prebuilt);
	emit(arg, "l0_bytes_written", db->l0_bytes);
	emit(arg, "manifest_writes", db->manifest_writes);
	emit(arg, "unlogged_batches", db->unlogged_batches);
	emit(arg, "unlogged_bytes", db->unlogged_bytes);
	emit(arg, "wal_holds", db->wal_holds);
	emit(arg, "write_stalls", db->write_stalls);
	emit(arg, "write_stall_ms", db->stall_ns / 1000000);
	kv_health_emit(emit, arg, "wal_writer", &db->wal_health);
	kv_health_emit(emit, arg, "memtable_flusher", &db->flush_health);
	kv_health_emit(emit, arg, "compactor", &db->compact_health);
	kv_health_emit(emit, arg, "gc", &db->gc_health);
	emit(arg, "compactor_running", (uint64_t)db->compactor_running);
	emit(arg, "compaction_pending", (uint64_t)(db->state == KV_STATE_OK && !db->readonly &&
						   kv_compact_wanted(db)));
	emit(arg, "compactions_completed", db->compactions);
	emit(arg, "compactions_failed", db->compaction_failures);
	emit(arg, "compactions_retried", db->compaction_retries);
	emit(arg, "compaction_bytes_in", db->compact_bytes_in);
	emit(arg, "compaction_bytes_out", db->compact_bytes_out);
	emit(arg, "compaction_quarantined_ssts", db->n_quarantine);
	emit(arg, "compaction_bulk_holds", db->bulk_holds);
	emit(arg, "gc_passes", db->gc_passes);
	emit(arg, "reserve_present", db->reserve_state == KV_RESERVE_PRESENT);
	emit(arg, "room_short", kv_room_short(db));
	emit(arg, "reserve_releases", db->reserve_releases);
	emit(arg, "reclaim_passes", db->reclaim_passes);
	emit(arg, "reclaim_tables", db->reclaim_tables);
	emit(arg, "reclaim_bytes", db->reclaim_bytes);
	emit(arg, "gc_deleted_ssts", db->gc_deleted_ssts);
	emit(arg, "gc_deleted_wals", db->gc_deleted_wals);
	emit(arg, "gc_deleted_manifests", db->gc_deleted_manifests);
	if (db->conf.mode == KV_OPEN_READONLY) {
		kv_health_emit(emit, arg, "follower", &db->follow_health);
		emit(arg, "follower_polls", db->follow_polls);
		emit(arg, "follower_lag_ms", db->follow_lag_ms);
	}
	kv_mutex_unlock(&db->mu);
	kv_cache_stats(db->cache, &hits, &misses, &bytes);
	emit(arg, "block_cache_hits", hits);
	emit(arg, "block_cache_misses", misses);
	emit(arg, "block_cache_bytes", bytes);
	emit(arg, "block_cache_cap", db->conf.block_cache_bytes);
	kv_ra_stats(db->cache, &ra);
	emit(arg, "readahead_spans", ra.spans);
	emit(arg, "readahead_spans_foreground", ra.fg_spans);
	emit(arg, "readahead_guesses", ra.guesses);
	emit(arg, "readahead_warm_bytes", ra.warm_bytes);
	emit(arg, "readahead_blocks", ra.blocks);
	emit(arg, "readahead_waits", ra.waits);
}
