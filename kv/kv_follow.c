/*
 * kv_follow.c - read-only followers: a read-only open on the latest
 * manifest keeps up with the writer by polling.
 *
 * DESIGN
 *   Every poll_interval_ms the follower thread
 *     1. loads the latest manifest if its id moved, builds a version for it
 *        (sharing readers with the current one) and installs it; then drops
 *        the frozen memtables whose data the tables now hold
 *        (max_seq <= manifest.last_seq);
 *     2. skips WAL ids the manifest folded into tables (<= replay_after);
 *     3. replays WAL objects from the next id on until one is missing (the
 *        writer uploads them in order, so the first missing id is the end
 *        for now), skipping records at or below manifest.last_seq.
 *   The active memtable is frozen when it passes a quarter of
 *   memtable_bytes, so old replayed data can be dropped in step 1 and the
 *   follower's memory stays bounded by what the writer has not yet flushed.
 *
 *   It never writes to the store. It survives the writer's compaction and
 *   GC: tables of the manifest it uses stay for gc_min_age, and a WAL
 *   object deleted under it is found covered by the next manifest.
 *
 * ERRORS
 *   Any store error ends the poll; the next one retries. Health and lag
 *   are in stats. A corrupt object is logged (with its name) and retried
 *   on later polls — a follower never dies.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Install a newer manifest and drop memtables it covers. */
static int kv_follow_manifest(struct kv_db *db)
{
	struct kv_manifest *m = NULL;
	struct kv_version *prev, *v;
	uint64_t cur;
	int rc;

	CHECK_RETURN(pthread_mutex_lock(&db->mu));
	cur = db->ver->man->id;
	prev = db->ver;
	kv_version_ref(prev);
	CHECK_RETURN(pthread_mutex_unlock(&db->mu));

	rc = kv_manifest_load_latest_after(db->store, cur, &m);
	if (rc == 0 && m->id > cur) {
		rc = kv_version_build(&v, m, prev, NULL, NULL, db->store, db->cache);
		if (rc) {
			kv_manifest_free(m);
		} else {
			struct kv_mem *drop[KV_MAX_IMM];
			size_t nd = 0;
			CHECK_RETURN(pthread_mutex_lock(&db->mu));
			struct kv_version *old = db->ver;
			db->ver = v;
			while (db->n_imm > 0 && db->imm[0].max_seq <= v->man->last_seq) {
				drop[nd++] = db->imm[0].mem;
				memmove(&db->imm[0], &db->imm[1], (db->n_imm - 1) * sizeof(db->imm[0]));
				db->n_imm--;
			}
			if (db->last_seq < v->man->last_seq)
				db->last_seq = v->man->last_seq;
			if (db->follow_next_wal <= v->man->wal_replay_after)
				db->follow_next_wal = v->man->wal_replay_after + 1;
			CHECK_RETURN(pthread_mutex_unlock(&db->mu));
			kv_version_unref(old);
			for (size_t i = 0; i < nd; i++)
				kv_mem_unref(drop[i]);
		}
	} else {
		kv_manifest_free(m);
	}
	kv_version_unref(prev);
	return rc;
}

/* Replay new WAL objects. */
static int kv_follow_wal(struct kv_db *db)
{
	int rc = 0;

	for (;;) {
		struct kv_replay r = { .db = db, .missing_ok = 1 };
		void *data = NULL;
		size_t len = 0;
		uint64_t last, id;

		CHECK_RETURN(pthread_mutex_lock(&db->mu));
		id = db->follow_next_wal;
		int stop = db->shutdown;
		CHECK_RETURN(pthread_mutex_unlock(&db->mu));
		if (stop)
			break;
		/* Fetch unlocked; only this thread moves follow_next_wal. */
		rc = kv_replay_fetch(db, id, &r, &data, &len);
		if (rc == -ENOENT) {
			rc = 0;
			break;
		}
		if (rc)
			break;
		CHECK_RETURN(pthread_mutex_lock(&db->mu));
		r.skip_upto = db->ver->man->last_seq;
		rc = kv_replay_data(db, id, data, len, &r, &last);
		if (rc == 0) {
			db->follow_next_wal = id + 1;
			if (kv_mem_bytes(db->mem) >= db->conf.memtable_bytes / 4)
				kv_flush_freeze(db);
		}
		CHECK_RETURN(pthread_mutex_unlock(&db->mu));
		obj_buf_free(data);
		if (rc)
			break;
	}
	return rc;
}

void *kv_follow_main(void *arg)
{
	struct kv_db *db = arg;
	uint64_t caught_up = util_now_ns();

	CHECK_RETURN(pthread_mutex_lock(&db->mu));
	for (;;) {
		uint64_t wall = util_wall_ns() + (uint64_t)db->conf.poll_interval_ms * 1000000ull;
		struct timespec ts = { (time_t)(wall / 1000000000ull), (long)(wall % 1000000000ull) };
		while (!db->shutdown && util_wall_ns() < wall)
			pthread_cond_timedwait(&db->cv_compact, &db->mu, &ts);
		if (db->shutdown)
			break;
		CHECK_RETURN(pthread_mutex_unlock(&db->mu));
		int rc = kv_follow_manifest(db);
		if (rc == 0)
			rc = kv_follow_wal(db);
		CHECK_RETURN(pthread_mutex_lock(&db->mu));
		db->follow_polls++;
		if (rc) {
			kv_health_fail(&db->follow_health, rc);
			if (db->follow_health.consecutive_failures % 10 == 1)
				UTIL_WARN("kv", "follower poll failed (%s); retrying every %u ms",
					  kv_strerror(rc), db->conf.poll_interval_ms);
		} else {
			kv_health_ok(&db->follow_health);
			caught_up = util_now_ns();
		}
		db->follow_lag_ms = (util_now_ns() - caught_up) / 1000000;
	}
	CHECK_RETURN(pthread_mutex_unlock(&db->mu));
	return NULL;
}
