/*
 * kv_follow.c - read-only followers: a read-only open on the latest
 * manifest keeps up with the writer by polling.
 *
 * DESIGN
 *   Every poll_interval_ms (-o poll_interval_ms=, default 1000) the
 *   follower thread
 *     1. loads the latest manifest if its id moved, builds a version for it
 *        (sharing readers with the current one) and installs it, keeping
 *        only memtable entries above manifest.last_seq (kv_follow_install
 *        says why that is needed for correct reads);
 *     2. skips WAL ids the manifest folded into tables (<= replay_after);
 *     3. replays WAL objects from the next id on until one is missing (the
 *        writer uploads them in order, so the first missing id is the end
 *        for now), skipping records at or below manifest.last_seq.
 *   So the follower's memory stays bounded by what the writer has not yet
 *   flushed.
 *
 *   WHAT A POLL COSTS. A follower polls because it is one, so an idle
 *   follower still makes requests; they are kept to the cheap class. Step
 *   1 asks for manifest/<current + 1> with a HEAD (writers number
 *   manifests one by one), and only when it exists LISTs manifest/ for
 *   the newest and GETs it. Step 3 is a GET of the next WAL object. So an
 *   idle poll is two GET-class requests that find nothing (at the default
 *   1 s: 172,800 a day, $0.07 at AWS S3 list prices). Because GC deletes
 *   all but the newest manifests_keep manifests, a follower that fell that
 *   far behind would never find current + 1: every KV_FOLLOW_LIST_EVERY-th
 *   poll LISTs regardless (one PUT-class request).
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

/* WHAT A POLL COSTS: every this many polls the manifests are listed even
 * when the next one is not there. */
#define KV_FOLLOW_LIST_EVERY 30

/*
 * Install version v and keep only memtable entries newer than its
 * last_seq. Point reads take the first version they meet, memtables
 * before tables, which is right only while every memtable entry is newer
 * than every table entry. A writer keeps that by construction; a follower
 * must restore it each time it adopts a manifest: it may hold key K at seq
 * 100 in a memtable while the new manifest's tables hold K at seq 200
 * (the WAL object with seq 200 was folded into tables before the follower
 * replayed it, and skipped). So the memtables are rebuilt from their
 * entries above last_seq — at most what the writer has not flushed yet.
 */
static int kv_follow_install(struct kv_db *db, struct kv_version *v)
{
	struct kv_mem *fresh = NULL, *old[KV_MAX_IMM + 1];
	struct kv_version *oldv;
	size_t nold = 0;
	int rc = kv_mem_create(&fresh, db->mem_pool);

	if (rc) {
		kv_version_unref(v);
		return rc;
	}
	kv_mutex_lock(&db->mu);
	uint64_t floor = v->man->last_seq;
	for (size_t i = 0; i <= db->n_imm; i++)
		old[nold++] = i < db->n_imm ? db->imm[i].mem : db->mem;
	for (size_t i = 0; i < nold && rc == 0; i++) {
		struct kv_iter *it = NULL;
		rc = kv_mem_iter_create(&it, old[i]);
		if (rc)
			break;
		for (it->ops->seek_first(it); !rc && it->ops->valid(it); it->ops->next(it)) {
			const uint8_t *k, *val;
			size_t kl, vl;
			it->ops->key(it, &k, &kl);
			if (kv_ikey_seq(k, kl) <= floor)
				continue;
			it->ops->value(it, &val, &vl);
			rc = kv_mem_add(fresh, kv_ikey_seq(k, kl), kv_ikey_type(k, kl), k,
					kl - KV_IKEY_TRAILER, val, vl);
		}
		it->ops->free(it);
	}
	if (rc) {
		kv_mutex_unlock(&db->mu);
		kv_mem_unref(fresh);
		kv_version_unref(v);
		return rc;
	}
	oldv = db->ver;
	db->ver = v;
	db->mem = fresh;
	db->n_imm = 0;
	if (db->last_seq < floor)
		db->last_seq = floor;
	if (db->follow_next_wal <= v->man->wal_replay_after)
		db->follow_next_wal = v->man->wal_replay_after + 1;
	kv_mutex_unlock(&db->mu);
	kv_version_unref(oldv);
	for (size_t i = 0; i < nold; i++)
		kv_mem_unref(old[i]);
	return 0;
}

/* Install a newer manifest and drop memtables it covers. */
static int kv_follow_manifest(struct kv_db *db, int full)
{
	struct kv_manifest *m = NULL;
	struct kv_version *prev, *v;
	uint64_t cur, id;
	char name[64];
	struct obj_stat st;
	int rc;

	kv_mutex_lock(&db->mu);
	cur = db->ver->man->id;
	kv_mutex_unlock(&db->mu);
	/* WHAT A POLL COSTS: a HEAD of the next manifest, a LIST only when
	 * it exists (or every KV_FOLLOW_LIST_EVERY-th poll). */
	if (!full) {
		kv_manifest_name(cur + 1, name, sizeof(name));
		rc = obj_head(db->store, name, &st);
		if (rc)
			return rc == -ENOENT ? 0 : rc;
	}
	rc = kv_manifest_latest_id(db->store, cur, &id);
	if (rc || id <= cur)
		return rc;

	kv_mutex_lock(&db->mu);
	prev = db->ver;
	kv_version_ref(prev);
	kv_mutex_unlock(&db->mu);
	rc = kv_manifest_load(db->store, id, &m);
	if (rc == -ENOENT)      /* GC went past it meanwhile: a newer one exists */
		rc = kv_manifest_load_latest_after(db->store, cur, &m);
	if (rc == 0 && m->id > prev->man->id) {
		rc = kv_version_build(&v, m, prev, NULL, NULL, db->store, db->cache, &db->vreg);
		if (rc) {
			kv_manifest_free(m);
		} else {
			rc = kv_follow_install(db, v);
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

		kv_mutex_lock(&db->mu);
		id = db->follow_next_wal;
		int stop = db->shutdown;
		kv_mutex_unlock(&db->mu);
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
		kv_mutex_lock(&db->mu);
		r.skip_upto = db->ver->man->last_seq;
		rc = kv_replay_data(db, id, data, len, &r, &last);
		if (rc == 0)
			db->follow_next_wal = id + 1;
		kv_mutex_unlock(&db->mu);
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
	unsigned polls = 0;

	util_thread_setup("kv-follow", 0);
	(void)obj_purpose_set(OBJ_PURPOSE_READ);   /* what its requests cost: objstore.h */
	kv_mutex_lock(&db->mu);
	for (;;) {
		uint64_t wall = util_wall_ns() + (uint64_t)db->conf.poll_interval_ms * 1000000ull;
		struct timespec ts = { (time_t)(wall / 1000000000ull), (long)(wall % 1000000000ull) };
		while (!db->shutdown && util_wall_ns() < wall)
			kv_cond_timedwait(&db->cv_compact, &db->mu, &ts);
		if (db->shutdown)
			break;
		kv_mutex_unlock(&db->mu);
		int rc = kv_follow_manifest(db, ++polls % KV_FOLLOW_LIST_EVERY == 0);
		if (rc == 0)
			rc = kv_follow_wal(db);
		kv_mutex_lock(&db->mu);
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
	kv_mutex_unlock(&db->mu);
	return NULL;
}
