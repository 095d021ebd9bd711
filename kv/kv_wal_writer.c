/*
 * kv_wal_writer.c - the WAL writer thread: group commit of write batches
 * into WAL objects.
 *
 * DESIGN
 *   Writers append their batch to db->wal_open (one unsealed WAL object in
 *   memory) under db->mu. This thread seals it and uploads it as
 *   wal/<wal_next_id> with put_if_absent when any of these holds:
 *     - a caller waits in kv_sync()      (at once: group commit; every
 *                                          batch in the object becomes
 *                                          durable with one PUT)
 *     - it reached conf.wal_max_bytes
 *     - its first record is flush_interval_ms old
 *   Uploads are strictly sequential, in id order, so durable_seq only ever
 *   moves forward over a gap-free prefix of the write order. An object
 *   that holds a seq above an unlogged batch not yet in an SST waits for
 *   that memtable's flush, which this thread then starts (kv_int.h,
 *   UNLOGGED BATCHES). While one
 *   upload is in flight, writers fill the next object. An uploaded
 *   object's buffer is kept (db->wal_spare) for the object after: the two
 *   buffers alternate instead of faulting in fresh pages for every object
 *   (kv_pool.c says why that matters).
 *
 * FAILURES
 *   -EEXIST means another writer put an object at our next id: we were
 *   fenced. The handle turns FENCED (read-only) and never writes again.
 *   Any other failure (store full, quota, access denied, an outage longer
 *   than the retry wrapper's budget) is retried with backoff for as long
 *   as it lasts, the object kept in memory; kv_db_store_failed tells
 *   syncs and stalled writers, and logs at a bounded rate (kv_health.c, STORE
 *   FAILURES). Only at close, after conf.close_timeout_ms, does it give up:
 *   kv_close then reports what was not made durable. This thread never
 *   exits the process and never asserts on store data.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Freeze the memtable after this many WAL objects, however small it is,
 * so a trickle of writes still reaches SSTs and recovery stays short. */
#define KV_WAL_FREEZE_OBJECTS 4096

int kv_wal_writer_append(struct kv_db *db, uint64_t first_seq, const struct kv_batch *b)
{
	KV_MU_HELD(db);
	int rc;

	int first = db->wal_open.len == 0;
	if (first && db->wal_open.cap == 0 && db->wal_spare.cap > 0) {
		db->wal_open = db->wal_spare;           /* len is 0 */
		memset(&db->wal_spare, 0, sizeof(db->wal_spare));
	}
	if (first) {
		struct kv_wal_header h = { .wal_id = db->wal_next_id, .writer_epoch = db->writer_epoch };
		rc = kv_wal_begin(&db->wal_open, &h);
		if (rc)
			return rc;
		db->wal_open_since_ns = util_now_ns();
	}
	rc = kv_wal_append(&db->wal_open, first_seq, b->count, b->rep.data, b->rep.len);
	if (rc)
		return rc;
	db->wal_open_last_seq = first_seq + b->count - 1;
	/* The writer sleeps without a timeout while the buffer is empty: the
	 * first record must wake it to start the flush_interval clock. */
	if (first || db->wal_open.len >= db->conf.wal_max_bytes || db->sync_waiters)
		CHECK_RETURN(pthread_cond_signal(&db->cv_wal));
	return 0;
}

/* Should the open object be sealed now? (mu held) */
static int kv_wal_due(struct kv_db *db, uint64_t now)
{
	KV_MU_HELD(db);
	if (db->wal_open.len == 0)
		return 0;
	return db->sync_waiters || db->shutdown || db->wal_open.len >= db->conf.wal_max_bytes ||
	       now - db->wal_open_since_ns >= (uint64_t)db->conf.flush_interval_ms * 1000000ull;
}

/* Must the open object wait for an unlogged batch's flush? It may not be
 * uploaded while it holds a seq above the lowest unlogged seq that is not
 * in a committed SST yet (kv_int.h, UNLOGGED BATCHES). (mu held) */
static int kv_wal_held(const struct kv_db *db)
{
	KV_MU_HELD(db);
	uint64_t u = kv_unlogged_first(db);
	return db->wal_open.len && u && db->wal_open_last_seq > u;
}

/*
 * Freeze the active memtable when it holds unlogged batches and they must
 * become durable now: kv_sync waits, close, flush_interval_ms since the
 * first of them, or a due WAL object is held for them. A full set of
 * frozen memtables defers it to the next flush commit, which wakes us.
 * (mu held)
 */
static void kv_wal_freeze_unlogged(struct kv_db *db, uint64_t now)
{
	KV_MU_HELD(db);
	int want;

	if (!db->mem_first_unlogged)
		return;
	want = db->sync_waiters || db->shutdown ||
	       now - db->unlogged_since_ns >= (uint64_t)db->conf.flush_interval_ms * 1000000ull ||
	       (kv_wal_due(db, now) && db->wal_open_last_seq > db->mem_first_unlogged);
	if (want && db->n_imm < db->conf.max_frozen_memtables && kv_flush_freeze(db))
		UTIL_WARN("kv", "could not freeze a memtable holding unlogged batches (out of "
			  "memory); retrying");
}

/* When the writer must look again without being woken (mu held). A
 * deadline already past means a freeze was deferred (all frozen slots
 * taken): the next flush commit wakes us, and we look again after one
 * more interval at the latest instead of spinning. */
static uint64_t kv_wal_next_deadline(const struct kv_db *db, int held, uint64_t now)
{
	KV_MU_HELD(db);
	uint64_t interval = (uint64_t)db->conf.flush_interval_ms * 1000000ull, t = UINT64_MAX;

	if (db->wal_open.len && !held)
		t = db->wal_open_since_ns + interval;
	if (db->mem_first_unlogged) {
		uint64_t u = db->unlogged_since_ns + interval;
		if (u <= now)
			u = now + interval;
		if (u < t)
			t = u;
	}
	if (held && now + interval < t)
		t = now + interval;
	return t;
}

int kv_wal_done_push(struct kv_db *db, uint64_t id, uint64_t last_seq)
{
	KV_MU_HELD(db);
	if (db->n_wal_done == db->cap_wal_done) {
		size_t cap = db->cap_wal_done ? db->cap_wal_done * 2 : 64;
		struct kv_wal_done *d = realloc(db->wal_done, cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		db->wal_done = d;
		db->cap_wal_done = cap;
	}
	db->wal_done[db->n_wal_done++] = (struct kv_wal_done){ id, last_seq };
	return 0;
}

/*
 * Upload one sealed object, retrying until it lands, we are fenced, or we
 * must give up (abandon, or close after conf.close_timeout_ms). Called
 * without mu. Returns 0, -EEXIST (fenced) or the error that made us give up.
 */
static int kv_wal_upload(struct kv_db *db, const char *name, const uint8_t *data, size_t len)
{
	uint64_t closing_since = 0;
	unsigned attempt = 0;
	char what[80];
	int rc;

	snprintf(what, sizeof(what), "WAL upload %s", name);
	for (;;) {
		rc = obj_put_if_absent(db->store, name, data, len);
		if (rc == -EEXIST)
			return rc;
		uint64_t now = util_now_ns();
		kv_mutex_lock(&db->mu);
		if (rc == 0) {
			kv_db_store_ok(db);
			kv_mutex_unlock(&db->mu);
			return 0;
		}
		kv_health_fail(&db->wal_health, rc);
		kv_db_store_failed(db, what, rc);
		int shutdown = db->shutdown;
		kv_mutex_unlock(&db->mu);
		if (shutdown == 2)
			return rc;
		if (shutdown && !closing_since)
			closing_since = now;
		if (closing_since && now - closing_since > db->conf.close_timeout_ms * 1000000ull)
			return rc;
		kv_db_backoff(db, attempt++);
	}
}

void *kv_wal_writer_main(void *arg)
{
	struct kv_db *db = arg;
	int was_held = 0;           /* counts each held object once (wal_holds) */

	util_thread_setup("kv-wal", 0);
	(void)obj_purpose_set(OBJ_PURPOSE_WAL);   /* what its requests cost: objstore.h */
	kv_mutex_lock(&db->mu);
	for (;;) {
		uint64_t now = util_now_ns();
		if (db->shutdown == 2)
			break;
		if (db->state != KV_STATE_OK) {
			/* Fenced or failed: nothing can be made durable any more. */
			if (db->shutdown)
				break;
			kv_cond_wait(&db->cv_wal, &db->mu);
			continue;
		}
		kv_wal_freeze_unlogged(db, now);
		int held = kv_wal_held(db);
		if (held && !was_held)
			db->wal_holds++;
		was_held = held;
		if (held && db->flusher_exited) {
			/* Closing and the flush gave up: what the open object
			 * holds can never be made durable in order. */
			UTIL_ERROR("kv", "close: WAL records after seq %" PRIu64 " wait for a memtable "
				   "flush that failed; they are not durable", db->durable_seq);
			break;
		}
		if (held || !kv_wal_due(db, now)) {
			if (db->shutdown && db->wal_open.len == 0)
				break;
			uint64_t due = kv_wal_next_deadline(db, held, now);
			if (due == UINT64_MAX) {
				kv_cond_wait(&db->cv_wal, &db->mu);
			} else {
				uint64_t wall = util_wall_ns() + (due > now ? due - now : 0);
				struct timespec ts = { (time_t)(wall / 1000000000ull),
						       (long)(wall % 1000000000ull) };
				int w = kv_cond_timedwait(&db->cv_wal, &db->mu, &ts);
				(void)w;
			}
			continue;
		}

		/* Seal the open object and take it. */
		int rc = kv_wal_finish(&db->wal_open);
		if (rc) {
			kv_db_set_state(db, KV_STATE_ERROR, rc);
			continue;
		}
		struct kv_buf obj = db->wal_open;
		uint64_t id = db->wal_next_id++, last = db->wal_open_last_seq;
		memset(&db->wal_open, 0, sizeof(db->wal_open));
		db->wal_inflight = obj.len;
		kv_mutex_unlock(&db->mu);

		char name[48];
		kv_wal_name(id, name, sizeof(name));
		rc = kv_wal_upload(db, name, obj.data, obj.len);

		kv_mutex_lock(&db->mu);
		db->wal_inflight = 0;
		if (rc == 0) {
			if (last > db->durable_seq)     /* a flush may have passed it */
				db->durable_seq = last;
			db->wal_objects++;
			db->wal_bytes += obj.len;
			db->wal_since_freeze++;
			kv_health_ok(&db->wal_health);
			if (kv_wal_done_push(db, id, last))
				kv_db_set_state(db, KV_STATE_ERROR, -ENOMEM);
			if (db->wal_since_freeze >= KV_WAL_FREEZE_OBJECTS &&
			    db->n_imm < db->conf.max_frozen_memtables)
				kv_flush_freeze(db);
		} else if (rc == -EEXIST) {
			UTIL_ERROR("kv", "%s already exists: a newer writer has fenced this one; "
				   "the store is now read-only for this process", name);
			kv_db_set_state(db, KV_STATE_FENCED, -EROFS);
		} else if (db->shutdown != 2) {
			UTIL_ERROR("kv", "close: gave up storing %s after %u ms (%s): writes after seq "
				   "%" PRIu64 " are not durable", name, db->conf.close_timeout_ms,
				   kv_strerror(rc), db->durable_seq);
			kv_db_set_state(db, KV_STATE_ERROR, rc);
		}
		if (obj.borrowed)
			kv_buf_free(&obj);
		else                                    /* for the next object */
			kv_buf_keep_spare(&db->wal_spare, obj.data, obj.cap,
					  2 * db->conf.wal_max_bytes);
		CHECK_RETURN(pthread_cond_broadcast(&db->cv_state));
	}
	kv_mutex_unlock(&db->mu);
	return NULL;
}

uint64_t kv_unlogged_first(const struct kv_db *db)
{
	KV_MU_HELD(db);
	for (size_t i = 0; i < db->n_imm; i++)
		if (db->imm[i].first_unlogged)
			return db->imm[i].first_unlogged;
	return db->mem_first_unlogged;
}
