/*
 * kv_health.c - how the engine's threads and its store are doing: the
 * per-thread health counters (kv_stats: *_runs, *_failures, ...), the
 * failing-store state that syncs and writers consult, the handle's
 * FENCED / ERROR state (kv_db_set_state) and the retry backoff the
 * threads sleep between attempts (kv_db_backoff). kv_db.c and every
 * background thread's file use these; this file uses none of them.
 *
 * STORE FAILURES
 *   A WAL upload or memtable flush that fails (store full, quota, access
 *   denied, an outage longer than the retry wrapper's budget) never turns
 *   the handle read-only: what was written stays in memory, bounded by
 *   the same budgets as always, and the threads retry with backoff until
 *   the store takes writes again. Meanwhile callers are told instead of
 *   left waiting: kv_sync returns the failure of an attempt made while it
 *   waited, and a writer that would wait for room returns it too
 *   (kv_store_errno: -ENOSPC, -EDQUOT, -EACCES, -EIO). The first failure
 *   is logged with its cause, then one line every KV_STORE_LOG_EVERY_NS
 *   while it lasts, and one when writes work again. Only fencing (FENCED) and
 *   internal failures (ERROR: a batch half applied, out of memory) stop
 *   writes for good; kv_close gives up after conf.close_timeout_ms.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

/* While the store fails: one log line this often. */
#define KV_STORE_LOG_EVERY_NS (300ull * 1000000000)

void kv_health_ok(struct kv_health *h)
{
	h->runs++;
	h->consecutive_failures = 0;
	h->last_success_ns = util_wall_ns();
	h->last_error = 0;
}

void kv_health_fail(struct kv_health *h, int err)
{
	h->failures++;
	h->consecutive_failures++;
	h->last_error = err;
}

int kv_store_errno(int err)
{
	switch (err) {
	case -ENOSPC:
	case -EDQUOT:
		return err;
	case -EACCES:
	case -EPERM:
		return -EACCES;
	case -ENOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

void kv_db_store_failed(struct kv_db *db, const char *what, int err)
{
	KV_MU_HELD(db);
	uint64_t now = util_now_ns();

	db->store_fail_gen++;
	db->store_fail_run++;
	if (!db->store_err) {
		db->store_err_since_ns = util_wall_ns();
		db->store_fail_logged_ns = now;
		UTIL_ERROR("kv", "%s failed (%s): the store takes no writes; what was written is "
			   "kept in memory and retried, and fsync reports the failure until it "
			   "works again", what, kv_strerror(err));
	} else if (now - db->store_fail_logged_ns >= KV_STORE_LOG_EVERY_NS) {
		db->store_fail_logged_ns = now;
		UTIL_ERROR("kv", "the store still takes no writes (%s: %s; %" PRIu64 " failed "
			   "attempts in %" PRIu64 " s)", what, kv_strerror(err), db->store_fail_run,
			   (util_wall_ns() - db->store_err_since_ns) / 1000000000u);
	}
	/* A full store: collect what is already garbage now (kv_gc.c, A FULL
	 * STORE), not gc_interval_ms later. */
	if ((err == -ENOSPC || err == -EDQUOT) && db->store_err != err)
		kv_gc_kick(db);
	db->store_err = err;
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_state));
}

void kv_db_store_ok(struct kv_db *db)
{
	KV_MU_HELD(db);
	if (!db->store_err)
		return;
	UTIL_WARN("kv", "the store takes writes again after %" PRIu64 " s and %" PRIu64
		  " failed attempts; nothing was lost", (util_wall_ns() - db->store_err_since_ns) /
		  1000000000u, db->store_fail_run);
	db->store_err = 0;
	db->store_fail_run = 0;
	db->full_overdraft = 0;
	db->full_deletes = 0;
	if (db->reserve_state == KV_RESERVE_RELEASED)
		kv_gc_kick(db);         /* the reserve is made again (kv_reclaim.c) */
	else
		db->full_trickle = 0;   /* the reserve's room is for deletes alone */
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_state));
}

void kv_health_emit(kv_stat_emit_fn emit, void *arg, const char *name,
		    const struct kv_health *h)
{
	char key[80];
	snprintf(key, sizeof(key), "%s_runs", name);
	emit(arg, key, h->runs);
	snprintf(key, sizeof(key), "%s_failures", name);
	emit(arg, key, h->failures);
	snprintf(key, sizeof(key), "%s_consecutive_failures", name);
	emit(arg, key, h->consecutive_failures);
	snprintf(key, sizeof(key), "%s_last_success_unix_ms", name);
	emit(arg, key, h->last_success_ns / 1000000);
}

void kv_db_set_state(struct kv_db *db, enum kv_state st, int err)
{
	KV_MU_HELD(db);
	if (db->state != KV_STATE_OK)
		return;
	db->state = st;
	db->state_err = err;
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_state));
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_wal));
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_flush));
}

void kv_db_backoff(struct kv_db *db, unsigned attempt)
{
	uint64_t ms = 50ull << (attempt < 7 ? attempt : 7);  /* 50 ms .. 6.4 s */
	struct util_rand r;
	util_rand_seed(&r, util_now_ns() ^ (uintptr_t)db);
	ms = ms / 2 + util_rand_below(&r, ms / 2 + 1);
	for (uint64_t slept = 0; slept < ms; slept += 10) {
		kv_mutex_lock(&db->mu);
		int stop = db->shutdown == 2 || db->retry_now;
		db->retry_now = 0;
		kv_mutex_unlock(&db->mu);
		if (stop)
			return;
		util_sleep_ns(10 * 1000000ull);
	}
}
