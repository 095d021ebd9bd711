/*
 * kv_flush.c - memtable flushes: frozen memtables become L0 SSTs, and the
 * manifest CAS that records them (shared with the compactor).
 *
 * DESIGN
 *   kv_write freezes the active memtable when it passes memtable_bytes
 *   (and the WAL writer does after many WAL objects, so a trickle of writes
 *   still ends up in SSTs and recovery stays short). The flusher thread
 *   takes the oldest frozen memtable, writes it as sst/<ULID>.sst with a
 *   plain put (a fresh random name cannot conflict), opens a reader on it,
 *   then commits a manifest that adds it to L0 and moves last_seq and
 *   wal_replay_after forward. Only after the commit does the frozen
 *   memtable leave the read path, in the same critical section that
 *   installs the new version, so readers never see a gap.
 *
 *   Frozen memtables are flushed oldest first and one at a time, so L0 is
 *   ordered newest first by construction; the next one's table may be
 *   built meanwhile (kv_flush_build.c).
 *
 * MANIFEST CAS
 *   kv_manifest_update copies the current manifest, applies a change, and
 *   writes it as id+1 with put_if_absent. On -EEXIST it reloads the latest
 *   manifest: a different writer epoch means we were fenced (stop, quietly
 *   read-only); otherwise someone else (a compactor, a checkpoint created
 *   by the CLI) moved it, so the change is re-applied on top and retried.
 *
 * FAILURES
 *   Store errors are retried with backoff as long as they last (health in
 *   stats). Nothing here exits or asserts on store data; an SST that was
 *   uploaded but never committed is garbage for the GC.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>


int kv_flush_freeze(struct kv_db *db)
{
	KV_MU_HELD(db);
	struct kv_mem *fresh;
	int rc;

	if (kv_mem_count(db->mem) == 0 || db->n_imm >= KV_MAX_IMM)
		return 0;
	rc = kv_mem_create(&fresh, db->mem_pool);
	if (rc)
		return rc;
	db->imm[db->n_imm++] = (struct kv_imm){
		.mem = db->mem, .max_seq = db->last_seq, .first_unlogged = db->mem_first_unlogged,
	};
	db->mem = fresh;
	db->mem_first_unlogged = 0;
	db->unlogged_since_ns = 0;
	db->wal_since_freeze = 0;
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_flush));    /* flusher, prebuilder */
	return 0;
}

/* Install a committed manifest as the current version (mu not held).
 * Takes ownership of man on success only. */
static int kv_flush_install(struct kv_db *db, struct kv_manifest *man, struct kv_sst_reader *extra,
			    const struct kv_sst_id *extra_id)
{
	struct kv_version *prev, *v;
	int rc;

	kv_mutex_lock(&db->mu);
	prev = db->ver;
	kv_version_ref(prev);
	kv_mutex_unlock(&db->mu);
	rc = kv_version_build(&v, man, prev, extra, extra_id, db->store, db->cache, &db->vreg);
	kv_version_unref(prev);
	if (rc)
		return rc;
	kv_mutex_lock(&db->mu);
	if (db->ver->man->id < v->man->id) {
		prev = db->ver;
		db->ver = v;
		v = NULL;
		kv_gc_kick(db);         /* what the new manifest dropped may be garbage */
	} else {
		prev = NULL;            /* someone installed a newer one meanwhile */
	}
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_state));
	kv_mutex_unlock(&db->mu);
	kv_version_unref(prev);
	kv_version_unref(v);
	return 0;
}

int kv_manifest_update(struct kv_db *db, kv_manifest_apply_fn fn, void *arg,
		       struct kv_sst_reader *extra, const struct kv_sst_id *extra_id)
{
	unsigned attempt = 0;
	uint64_t start = util_now_ns();
	int rc;

	for (;;) {
		struct kv_manifest *m = NULL;
		uint64_t id, epoch;

		kv_mutex_lock(&db->mu);
		if (db->state == KV_STATE_FENCED) {
			kv_mutex_unlock(&db->mu);
			return KV_EFENCED;
		}
		int shutdown = db->shutdown;
		rc = kv_manifest_copy(&m, db->ver->man);
		id = db->ver->man->id;
		epoch = db->writer_epoch;
		kv_mutex_unlock(&db->mu);
		if (shutdown == 2) {
			kv_manifest_free(m);
			return -ECANCELED;
		}
		if (!rc) {
			/* The change itself may refuse (a stale compaction job, a
			 * checkpoint name taken): that is final, not a store error. */
			int arc = fn(arg, m);
			if (arc) {
				kv_manifest_free(m);
				return arc;
			}
			rc = kv_manifest_store(db->store, m, id + 1);
		}
		if (rc == 0) {
			kv_mutex_lock(&db->mu);
			db->manifest_writes++;
			kv_db_store_ok(db);
			kv_mutex_unlock(&db->mu);
			/* Committed: it must become our view, or the next update would
			 * re-apply the change. Opening readers can fail in an outage. */
			while ((rc = kv_flush_install(db, m, extra, extra_id)) != 0) {
				kv_mutex_lock(&db->mu);
				kv_health_fail(&db->flush_health, rc);
				shutdown = db->shutdown;
				kv_mutex_unlock(&db->mu);
				if (shutdown == 2 || rc == KV_ECORRUPT) {
					kv_manifest_free(m);
					return rc;
				}
				kv_db_backoff(db, attempt++);
			}
			return 0;
		}
		kv_manifest_free(m);
		m = NULL;
		if (rc == -EEXIST) {
			/* Someone moved the manifest: who? */
			rc = kv_manifest_load_latest_after(db->store, id, &m);
			if (rc == 0 && m->writer_epoch != epoch) {
				UTIL_ERROR("kv", "manifest/%020" PRIu64 " has writer epoch %" PRIu64
					   " (ours is %" PRIu64 "): fenced by a newer writer; read-only now",
					   m->id, m->writer_epoch, epoch);
				kv_manifest_free(m);
				kv_mutex_lock(&db->mu);
				kv_db_set_state(db, KV_STATE_FENCED, -EROFS);
				kv_mutex_unlock(&db->mu);
				return KV_EFENCED;
			}
			if (rc == 0) {
				rc = kv_flush_install(db, m, NULL, NULL);
				if (rc == 0) {
					attempt = 0;
					continue;       /* re-apply on the newer manifest */
				}
				kv_manifest_free(m);
			}
		}
		if (rc == KV_ECORRUPT)
			return rc;
		kv_mutex_lock(&db->mu);
		kv_health_fail(&db->flush_health, rc);
		/* A flush commit waits here while syncs wait for it: tell them. */
		kv_db_store_failed(db, "manifest update", rc);
		shutdown = db->shutdown;
		kv_mutex_unlock(&db->mu);
		if (shutdown && util_now_ns() - start > db->conf.close_timeout_ms * 1000000ull)
			return rc;
		kv_db_backoff(db, attempt++);
	}
}

struct kv_flush_apply {
	const struct kv_sst_meta *meta;
	uint64_t max_seq;
	uint64_t replay_after;
};

/* Add the new L0 table; fold the WAL up to the flushed memtable. */
static int kv_flush_apply_l0(void *arg, struct kv_manifest *m)
{
	struct kv_flush_apply *a = arg;
	struct kv_sst_meta *l0 = malloc((m->n_l0 + 1) * sizeof(*l0));
	int rc;

	if (!l0)
		return -ENOMEM;
	rc = kv_sst_meta_copy(&l0[0], a->meta);
	if (rc) {
		free(l0);
		return rc;
	}
	if (m->n_l0)
		memcpy(&l0[1], m->l0, m->n_l0 * sizeof(*l0));
	free(m->l0);
	m->l0 = l0;
	m->n_l0++;
	if (a->max_seq > m->last_seq)
		m->last_seq = a->max_seq;
	if (a->replay_after > m->wal_replay_after)
		m->wal_replay_after = a->replay_after;
	return 0;
}

/* Highest WAL id whose objects up to it hold only seqs <= max_seq (mu held). */
static uint64_t kv_flush_replay_after(struct kv_db *db, uint64_t max_seq)
{
	KV_MU_HELD(db);
	uint64_t after = db->ver->man->wal_replay_after;
	for (size_t i = 0; i < db->n_wal_done && db->wal_done[i].last_seq <= max_seq; i++)
		after = db->wal_done[i].id;
	return after;
}

int kv_flush_one(struct kv_db *db)
{
	struct kv_sst_meta meta = { 0 };
	struct kv_sst_reader *reader = NULL;
	struct kv_built *bt;
	struct kv_mem *mem;
	uint64_t max_seq, dropped = 0;
	int pending = 0;
	uint8_t *sst = NULL, *data = NULL;
	size_t len = 0, data_len = 0;
	struct kv_sst_id data_id = { { 0 } };
	int data_pending = 0, data_put = 0;
	char name[64], dname[64];
	unsigned attempt = 0;
	int rc = 0;

	kv_mutex_lock(&db->mu);
	if (db->n_imm == 0) {
		kv_mutex_unlock(&db->mu);
		return 0;
	}
	/* Being built ahead (kv_flush_build.c): that build is ours. */
	while (db->imm[0].build == KV_BUILD_RUNNING)
		kv_cond_wait(&db->cv_state, &db->mu);
	mem = db->imm[0].mem;
	max_seq = db->imm[0].max_seq;
	kv_mem_ref(mem);
	bt = db->imm[0].built;
	db->imm[0].built = NULL;
	if (bt)
		db->l0_prebuilt++;
	else if ((bt = calloc(1, sizeof(*bt))))
		rc = kv_flush_build(db, mem, bt);  /* drops mu while it builds */
	else
		rc = -ENOMEM;
	kv_mutex_unlock(&db->mu);
	if (rc)
		goto out;
	/* The table is ours now: its buffer goes back as a spare below. */
	sst = bt->sst;
	len = bt->len;
	meta = bt->meta;
	dropped = bt->dropped;
	data = bt->data;
	data_len = bt->data_len;
	data_id = bt->data_id;
	memset(bt, 0, sizeof(*bt));
	kv_sst_id_new(&meta.id);
	meta.size = len;
	kv_sst_id_name(&meta.id, name, sizeof(name));
	kv_sst_id_name(&data_id, dname, sizeof(dname));
	rc = kv_pending_add(db, &meta.id);
	if (rc)
		goto out;
	pending = 1;
	if (data) {
		rc = kv_pending_add(db, &data_id);
		if (rc)
			goto out;
		data_pending = 1;
	}
	for (;;) {
		/* The data table first: the table's REFs name it. */
		rc = 0;
		if (data && !data_put) {
			enum obj_purpose was = obj_purpose_set(OBJ_PURPOSE_SEGMENT);
			rc = obj_put(db->store, dname, data, data_len);
			obj_purpose_set(was);
		}
		if (rc == 0 && data)
			data_put = 1;
		if (rc == 0)
			rc = obj_put(db->store, name, sst, len);
		if (rc == 0)
			rc = kv_sst_open(&reader, db->store, db->cache, &meta);
		if (rc == 0)
			break;
		kv_mutex_lock(&db->mu);
		kv_health_fail(&db->flush_health, rc);
		kv_db_store_failed(db, "memtable flush", rc);
		/* At close the WAL holds logged data: give up at once; data
		 * written unlogged is only here: try until close_timeout_ms. */
		int give_up = db->shutdown == 2 ||
			(db->shutdown && (!db->imm[0].first_unlogged ||
					  util_now_ns() - db->shutdown_ns >
					  db->conf.close_timeout_ms * 1000000ull));
		kv_mutex_unlock(&db->mu);
		if (give_up)
			goto out;
		kv_db_backoff(db, attempt++);
	}
	kv_mutex_lock(&db->mu);
	kv_flush_spare_put(db, sst, len);
	kv_flush_spare_put(db, data, data_len);
	kv_mutex_unlock(&db->mu);
	sst = NULL;
	data = NULL;

	struct kv_flush_apply a = { .meta = &meta, .max_seq = max_seq };
	kv_mutex_lock(&db->mu);
	a.replay_after = kv_flush_replay_after(db, max_seq);
	kv_mutex_unlock(&db->mu);
	rc = kv_manifest_update(db, kv_flush_apply_l0, &a, reader, &meta.id);
	if (rc)
		goto out;

	/* Committed: the frozen memtable leaves the read path. The new version
	 * holding its SST was installed by kv_manifest_update. */
	kv_mutex_lock(&db->mu);
	struct kv_mem *done = db->imm[0].mem;
	memmove(&db->imm[0], &db->imm[1], (db->n_imm - 1) * sizeof(db->imm[0]));
	db->n_imm--;
	size_t k = 0;
	while (k < db->n_wal_done && db->wal_done[k].id <= a.replay_after)
		k++;
	if (k) {
		memmove(db->wal_done, db->wal_done + k, (db->n_wal_done - k) * sizeof(*db->wal_done));
		db->n_wal_done -= k;
	}
	db->l0_flushes++;
	db->l0_bytes += meta.size + data_len;
	if (data_pending) {
		db->data_tables++;
		db->data_bytes += data_len;
	}
	db->l0_dropped += dropped;
	/* Every seq up to max_seq is in SSTs now (older memtables were
	 * flushed first): durable, whatever the WAL has uploaded. */
	if (max_seq > db->durable_seq)
		db->durable_seq = max_seq;
	kv_health_ok(&db->flush_health);
	CHECK_RETURN(pthread_cond_signal(&db->cv_wal));    /* may release a held object */
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_state));
	CHECK_RETURN(pthread_cond_signal(&db->cv_compact));
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_flush));    /* a new imm[1] to prebuild */
	kv_mutex_unlock(&db->mu);
	kv_mem_unref(done);
out:
	kv_built_free(bt);
	if (pending)
		kv_pending_del(db, &meta.id);
	if (data_pending)
		kv_pending_del(db, &data_id);
	free(data);
	if (reader)
		kv_sst_unref(reader);
	free(sst);
	kv_sst_meta_clear(&meta);
	kv_mem_unref(mem);
	return rc;
}

void *kv_flush_main(void *arg)
{
	struct kv_db *db = arg;
	unsigned attempt = 0;

	util_thread_setup("kv-flush", 0);
	(void)obj_purpose_set(OBJ_PURPOSE_FLUSH);   /* what its requests cost: objstore.h */

	kv_mutex_lock(&db->mu);
	for (;;) {
		if (db->shutdown == 2 || db->state == KV_STATE_FENCED)
			break;
		if (db->n_imm == 0) {
			if (db->shutdown)
				break;
			kv_cond_wait(&db->cv_flush, &db->mu);
			continue;
		}
		kv_mutex_unlock(&db->mu);
		int rc = kv_flush_one(db);
		int failed = rc && rc != KV_EFENCED && rc != -ECANCELED;
		kv_mutex_lock(&db->mu);
		if (failed)
			kv_db_store_failed(db, "memtable flush", rc);
		else if (rc == 0)
			kv_db_store_ok(db);
		/* At close the WAL still holds logged data: stop at once. Data
		 * written unlogged is only here: keep trying for a while. */
		if (rc && db->shutdown &&
		    (db->shutdown == 2 || !failed || !db->n_imm || !db->imm[0].first_unlogged ||
		     util_now_ns() - db->shutdown_ns > db->conf.close_timeout_ms * 1000000ull))
			break;
		kv_mutex_unlock(&db->mu);
		if (failed)
			kv_db_backoff(db, attempt++);
		else
			attempt = 0;
		kv_mutex_lock(&db->mu);
	}
	/* A WAL object held for an unlogged batch can no longer be released:
	 * the WAL writer must stop waiting (kv_close then reports it). */
	db->flusher_exited = 1;
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_wal));
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_state));
	kv_mutex_unlock(&db->mu);
	return NULL;
}
