/*
 * kv_gc.c - the garbage collector thread: deletes objects nothing needs.
 *
 * WHAT IS GARBAGE (decided against the LATEST manifest in the store, read
 * fresh each pass, never against a cached copy: a checkpoint may have been
 * created by another process)
 *   sst/       tables referenced by neither the latest manifest, nor the
 *              manifest of any live checkpoint, nor any version alive in
 *              this process (kv_vreg: old iterators), AND old enough (AGE).
 *              A data table (kv_ref.c) is referenced through the tables
 *              that list it, so it lives exactly as long as the last of
 *              them.
 *   wal/       objects with id <= the smallest wal_replay_after among the
 *              latest manifest and every checkpoint's manifest (their data
 *              is in tables), EXCEPT fence objects (empty WAL objects):
 *              those are kept forever. A fenced writer may still be
 *              retrying the upload at its fence id; deleting the fence
 *              would let that zombie write succeed where no reader will
 *              ever look, and it would believe its data durable.
 *   manifest/  all but the newest manifests_keep, except those pinned by a
 *              checkpoint.
 *   Expired checkpoints are removed from the manifest (by CAS) first.
 *
 * AGE
 *   A table is deleted only when both
 *     - it was created gc_min_age ago (the ULID in its name carries the
 *       time): protects what a flush or compaction of another process
 *       wrote but has not committed yet;
 *     - passes of this GC have found it unreferenced for gc_min_age: a
 *       reader (a follower, another machine) may have loaded, just before
 *       the compaction that dropped it, a manifest that names it.
 *   The second rule is the one that protects readers. With only the first,
 *   an old table dropped by a compaction went at the very next pass, under
 *   a follower that had loaded the previous manifest a moment before; it
 *   then read "object is corrupt" (a referenced table is missing). The
 *   first-seen times live in memory (db->gc_unref): a new process starts
 *   counting again, which only delays deletion.
 *
 * SCHEDULE
 *   A mount with nothing to do makes no request, so GC runs on events, not
 *   on a timer: when this process installs a new manifest (a flush, a
 *   compaction, a checkpoint), abandons an uncommitted table, or finds the
 *   store full (kv_gc_kick), and when a deletion it already knows of falls
 *   due (a table's AGE, a checkpoint's expiry: gc_due_ms, from the last
 *   pass). gc_interval_ms is the least time between two passes, so a busy
 *   writer's stream of manifests costs one pass per interval. What only
 *   another process changes (a checkpoint deleted by `shalefs checkpoint
 *   delete` on the store) is collected at this process's next event.
 *
 * A FULL STORE
 *   While the store is short of room (it refuses writes for space:
 *   ENOSPC, a quota; or the reserve is spent and not made again yet:
 *   kv_room_short, kv_reclaim.c), garbage is what stands between the
 *   user and a working store: passes run at most a second apart, and when this process holds the writer lease and
 *   no reader is registered under readers/, the AGE rules are waived. Both
 *   protect other processes only (an uncommitted table of a writer that
 *   holds no lease now cannot be committed; a reader that loaded an older
 *   manifest is registered), and this process's own uncommitted tables and
 *   old versions stay live whatever their age.
 *
 * ERRORS
 *   Like the compactor: every store error is retried on the next pass (or
 *   with backoff), counted in stats; the thread never exits the process.
 *   A delete of an object that is already gone is success.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Size of an empty (fence) WAL object: header + trailer, no records. */
size_t kv_gc_fence_size(void)
{
	static size_t n;
	if (!n) {
		struct kv_buf b = { 0 };
		struct kv_wal_header h = { 1, 1 };
		if (kv_wal_begin(&b, &h) == 0 && kv_wal_finish(&b) == 0)
			n = b.len;
		kv_buf_free(&b);
	}
	return n;
}

/* Every table live in the latest manifest or a checkpoint's, by name. */
struct kv_gc_live {
	char (*names)[48];
	size_t n, cap;
	uint64_t wal_floor;               /* WAL ids <= this are garbage */
	uint64_t *pinned;                 /* manifest ids pinned by checkpoints */
	size_t n_pinned;
};

static int kv_gc_live_id(void *arg, const struct kv_sst_id *id)
{
	struct kv_gc_live *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		char (*p)[48] = realloc(l->names, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->names = p;
		l->cap = cap;
	}
	kv_sst_id_name(id, l->names[l->n++], 48);
	return 0;
}

/* The tables of m and their data tables (a kv_vreg_each callback: a live
 * version's manifest). */
static int kv_gc_live_tables(void *arg, const struct kv_manifest *m)
{
	return kv_manifest_each_sst(m, kv_gc_live_id, arg);
}

static int kv_gc_live_manifest(struct kv_gc_live *l, const struct kv_manifest *m)
{
	int rc = kv_gc_live_tables(l, m);
	if (m->wal_replay_after < l->wal_floor)
		l->wal_floor = m->wal_replay_after;
	return rc;
}

static int kv_gc_name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/*
 * Creation time (ms) of a table from its name sst/<ULID>.sst: the first 10
 * Crockford base32 characters hold the 48-bit millisecond timestamp.
 * Returns -EINVAL for names that are not ours.
 */
int kv_gc_sst_time(const char *name, uint64_t *ms)
{
	static const char alpha[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	uint64_t t = 0;

	if (strncmp(name, "sst/", 4) || strlen(name) != 4 + 26 + 4 || strcmp(name + 30, ".sst"))
		return -EINVAL;
	for (int i = 0; i < 10; i++) {
		const char *c = name[4 + i] ? strchr(alpha, name[4 + i]) : NULL;
		if (!c)
			return -EINVAL;
		t = t << 5 | (uint64_t)(c - alpha);
	}
	/* The first character carries only the top 3 bits (128 = 3 + 25 * 5),
	 * so 10 characters are exactly the 48-bit time. */
	*ms = t;
	return 0;
}

struct kv_gc_pass {
	struct kv_db *db;
	struct kv_gc_live *live;
	uint64_t now_ms;
	int urgent;                       /* A FULL STORE: no AGE rules */
	uint64_t due_ms;                  /* earliest deletion left for later */
	uint64_t latest_manifest;
	char **victims;
	size_t n_victims, cap_victims;
	struct kv_gc_unref *unref;        /* this pass's unreferenced tables */
	size_t n_unref, cap_unref;
	uint64_t deleted_sst, deleted_wal, deleted_manifest;
};

/* An unreferenced table and the wall time (ms) it was first seen so. */
struct kv_gc_unref {
	char name[48];
	uint64_t since_ms;
};

static int kv_gc_unref_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kv_gc_unref *)a)->name, ((const struct kv_gc_unref *)b)->name);
}

/* Since when has the previous pass known `name` unreferenced? p->now_ms if
 * not at all. Records it for the next pass (p->unref, sorted at the end). */
static int kv_gc_unref_since(struct kv_gc_pass *p, const char *name, uint64_t *since)
{
	struct kv_gc_unref key, *prev = NULL;

	*since = p->now_ms;
	if (strlen(name) >= sizeof(key.name))
		return 0;               /* not a name we make: never tracked, never aged */
	strcpy(key.name, name);
	if (p->db->n_gc_unref)
		prev = bsearch(&key, p->db->gc_unref, p->db->n_gc_unref, sizeof(key),
			       kv_gc_unref_cmp);
	if (prev)
		*since = prev->since_ms;
	if (p->n_unref == p->cap_unref) {
		size_t cap = p->cap_unref ? p->cap_unref * 2 : 64;
		struct kv_gc_unref *v = realloc(p->unref, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->unref = v;
		p->cap_unref = cap;
	}
	key.since_ms = *since;
	p->unref[p->n_unref++] = key;
	return 0;
}

static int kv_gc_victim(struct kv_gc_pass *p, const char *name)
{
	if (p->n_victims == p->cap_victims) {
		size_t cap = p->cap_victims ? p->cap_victims * 2 : 64;
		char **v = realloc(p->victims, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->victims = v;
		p->cap_victims = cap;
	}
	p->victims[p->n_victims] = strdup(name);
	if (!p->victims[p->n_victims])
		return -ENOMEM;
	p->n_victims++;
	return 0;
}

static int kv_gc_sst_cb(void *arg, const char *name, uint64_t size)
{
	struct kv_gc_pass *p = arg;
	uint64_t ms;
	(void)size;
	if (kv_gc_sst_time(name, &ms))
		return 0;               /* not ours: leave it */
	if (p->live->n &&
	    bsearch(name, p->live->names, p->live->n, sizeof(*p->live->names), kv_gc_name_cmp))
		return 0;
	uint64_t since;
	int rc = kv_gc_unref_since(p, name, &since);
	if (rc)
		return rc;
	uint64_t due = (ms > since ? ms : since) + p->db->conf.gc_min_age_ms;
	if (!p->urgent && due > p->now_ms) {
		if (due < p->due_ms)
			p->due_ms = due;
		return 0;
	}
	p->deleted_sst++;
	return kv_gc_victim(p, name);
}

static int kv_gc_wal_cb(void *arg, const char *name, uint64_t size)
{
	struct kv_gc_pass *p = arg;
	uint64_t id;
	if (kv_name_id(name, "wal/", &id))
		return 0;
	if (id > p->live->wal_floor)
		return 1;               /* names sort by id: nothing further is garbage */
	if (size == kv_gc_fence_size())
		return 0;               /* fences are kept forever */
	p->deleted_wal++;
	return kv_gc_victim(p, name);
}

static int kv_gc_manifest_cb(void *arg, const char *name, uint64_t size)
{
	struct kv_gc_pass *p = arg;
	uint64_t id;
	(void)size;
	if (kv_name_id(name, "manifest/", &id))
		return 0;
	if (id + p->db->conf.manifests_keep > p->latest_manifest)
		return 1;
	for (size_t i = 0; i < p->live->n_pinned; i++)
		if (p->live->pinned[i] == id)
			return 0;
	p->deleted_manifest++;
	return kv_gc_victim(p, name);
}

/* Drop expired checkpoints (manifest CAS). */
static int kv_gc_expire_apply(void *arg, struct kv_manifest *m)
{
	uint64_t now = *(uint64_t *)arg;
	size_t keep = 0;
	for (size_t i = 0; i < m->n_ckpt; i++) {
		if (m->ckpts[i].expire_ns && m->ckpts[i].expire_ns <= now) {
			UTIL_INFO("kv", "checkpoint '%s' expired", m->ckpts[i].name);
			free(m->ckpts[i].name);
		} else {
			m->ckpts[keep++] = m->ckpts[i];
		}
	}
	m->n_ckpt = keep;
	return 0;
}

static int kv_gc_reader_cb(void *arg, const struct kv_lease_info *r)
{
	(void)r;
	(*(size_t *)arg)++;
	return 0;
}

/* A FULL STORE: may this pass skip the AGE rules? */
static int kv_gc_urgent(struct kv_db *db)
{
	size_t readers = 0;

	kv_mutex_lock(&db->mu);
	int full = kv_room_short(db);
	int leased = db->lease.gen != 0 && db->state == KV_STATE_OK;
	kv_mutex_unlock(&db->mu);
	if (!full || !leased)
		return 0;
	if (kv_readers_list(db->store, kv_gc_reader_cb, &readers) != 0 || readers)
		return 0;
	return 1;
}

/* One GC pass. Returns 0 or an error (retried next pass). */
int kv_gc_pass(struct kv_db *db, int dry_run)
{
	struct kv_gc_live live = { .wal_floor = UINT64_MAX };
	struct kv_gc_pass p = { .db = db, .live = &live, .due_ms = UINT64_MAX };
	struct kv_manifest *m = NULL;
	uint64_t now = util_wall_ns();
	int rc;

	kv_mutex_lock(&db->mu);
	uint64_t hint = db->ver->man->id;
	kv_mutex_unlock(&db->mu);
	rc = kv_manifest_load_latest_after(db->store, hint, &m);
	if (rc)
		return rc;
	for (size_t i = 0; i < m->n_ckpt; i++)
		if (m->ckpts[i].expire_ns && m->ckpts[i].expire_ns <= now && !dry_run && !db->readonly) {
			kv_manifest_free(m);
			m = NULL;
			rc = kv_manifest_update(db, kv_gc_expire_apply, &now, NULL, NULL);
			if (rc)
				return rc;
			rc = kv_manifest_load_latest_after(db->store, hint, &m);
			if (rc)
				return rc;
			break;
		}
	p.latest_manifest = m->id;
	for (size_t i = 0; i < m->n_ckpt; i++)
		if (m->ckpts[i].expire_ns && m->ckpts[i].expire_ns / 1000000 + 1 < p.due_ms)
			p.due_ms = m->ckpts[i].expire_ns / 1000000 + 1;
	p.urgent = kv_gc_urgent(db);
	rc = kv_gc_live_manifest(&live, m);
	live.pinned = calloc(m->n_ckpt ? m->n_ckpt : 1, sizeof(*live.pinned));
	if (!live.pinned)
		rc = -ENOMEM;
	for (size_t i = 0; i < m->n_ckpt && !rc; i++) {
		struct kv_manifest *cm = NULL;
		live.pinned[live.n_pinned++] = m->ckpts[i].manifest_id;
		rc = kv_manifest_load(db->store, m->ckpts[i].manifest_id, &cm);
		if (rc == 0)
			rc = kv_gc_live_manifest(&live, cm);
		kv_manifest_free(cm);
	}
	/* Uncommitted flush/compaction outputs of this process. */
	kv_mutex_lock(&db->mu);
	for (size_t i = 0; i < db->n_pending && !rc; i++) {
		rc = kv_gc_live_id(&live, &db->pending[i]);
	}
	kv_mutex_unlock(&db->mu);
	/* Tables of every version still alive here (old iterators, snapshots). */
	if (!rc)
		rc = kv_vreg_each(&db->vreg, kv_gc_live_tables, &live);
	if (rc)
		goto out;
	if (live.n)
		qsort(live.names, live.n, sizeof(*live.names), kv_gc_name_cmp);
	p.now_ms = now / 1000000;
	rc = obj_list_each(db->store, "sst/", 1000, kv_gc_sst_cb, &p);
	if (!rc && live.wal_floor != UINT64_MAX)
		rc = obj_list_each(db->store, "wal/", 1000, kv_gc_wal_cb, &p);
	if (!rc)
		rc = obj_list_each(db->store, "manifest/", 1000, kv_gc_manifest_cb, &p);
	if (rc)
		goto out;
	if (dry_run) {
		for (size_t i = 0; i < p.n_victims; i++)
			UTIL_INFO("kv", "gc (dry run): would delete %s", p.victims[i]);
	} else {
		/* In groups, so a close does not wait for a long GC pass. */
		for (size_t i = 0; i < p.n_victims && !rc; i += 100) {
			size_t n = p.n_victims - i < 100 ? p.n_victims - i : 100;
			kv_mutex_lock(&db->mu);
			int stop = db->shutdown;
			kv_mutex_unlock(&db->mu);
			if (stop)
				break;
			rc = obj_delete_many(db->store, (const char *const *)p.victims + i, n);
		}
	}
	if (!rc) {
		/* What this pass saw is what the next one compares with (a
		 * deleted table is simply not listed again). */
		if (p.n_unref)
			qsort(p.unref, p.n_unref, sizeof(*p.unref), kv_gc_unref_cmp);
		free(db->gc_unref);
		db->gc_unref = p.unref;
		db->n_gc_unref = p.n_unref;
		p.unref = NULL;
		kv_mutex_lock(&db->mu);
		if (!dry_run) {
			db->gc_deleted_ssts += p.deleted_sst;
			db->gc_deleted_wals += p.deleted_wal;
			db->gc_deleted_manifests += p.deleted_manifest;
		}
		kv_health_ok(&db->gc_health);
		db->gc_due_ms = p.due_ms;
		kv_mutex_unlock(&db->mu);
	}
out:
	free(p.unref);
	for (size_t i = 0; i < p.n_victims; i++)
		free(p.victims[i]);
	free(p.victims);
	free(live.names);
	free(live.pinned);
	kv_manifest_free(m);
	return rc;
}


/* SCHEDULE: wait (mu held) until a pass is wanted and allowed; 0 = go,
 * 1 = stop (close, or fenced). */
static int kv_gc_wait(struct kv_db *db, uint64_t last_ns)
{
	for (;;) {
		if (db->shutdown || db->state == KV_STATE_FENCED)
			return 1;
		uint64_t now = util_wall_ns();
		uint64_t gap = (kv_room_short(db) ? 1000ull : db->conf.gc_interval_ms) * 1000000ull;
		uint64_t allowed = last_ns + gap;
		uint64_t due = db->gc_due_ms == UINT64_MAX ? UINT64_MAX : db->gc_due_ms * 1000000ull;
		uint64_t wake = db->gc_kick ? 0 : due;
		if (wake < allowed)
			wake = allowed;
		if (wake <= now)
			return 0;
		if (wake == UINT64_MAX) {
			kv_cond_wait(&db->cv_gc, &db->mu);
		} else {
			struct timespec ts = { (time_t)(wake / 1000000000ull),
					       (long)(wake % 1000000000ull) };
			kv_cond_timedwait(&db->cv_gc, &db->mu, &ts);
		}
	}
}

void *kv_gc_main(void *arg)
{
	struct kv_db *db = arg;
	/* The first pass too waits an interval: an open is busy enough. */
	uint64_t last_ns = util_wall_ns();

	util_thread_setup("kv-gc", 1);
	(void)obj_purpose_set(OBJ_PURPOSE_GC);   /* what its requests cost: objstore.h */
	/* The reserve (kv_reclaim.c) first: a store that fills soon after
	 * the mount should find it there. */
	if (!db->conf.gc_dry_run)
		(void)kv_reserve_tend(db);
	kv_mutex_lock(&db->mu);
	while (kv_gc_wait(db, last_ns) == 0) {
		db->gc_kick = 0;
		db->gc_due_ms = UINT64_MAX;     /* the pass finds the next one */
		kv_mutex_unlock(&db->mu);
		uint64_t again = db->conf.gc_dry_run ? 0 : kv_reserve_tend(db);
		int rc = kv_gc_pass(db, db->conf.gc_dry_run);
		kv_mutex_lock(&db->mu);
		last_ns = util_wall_ns();
		db->gc_passes++;
		if (again && again / 1000000 < db->gc_due_ms)
			db->gc_due_ms = again / 1000000;
		if (rc) {
			kv_health_fail(&db->gc_health, rc);
			db->gc_kick = 1;        /* retried an interval later */
			UTIL_WARN("kv", "garbage collection pass failed (%s); next pass in %u ms",
				  kv_strerror(rc), db->conf.gc_interval_ms);
		}
	}
	kv_mutex_unlock(&db->mu);
	return NULL;
}
