/*
 * kv_repair.c - what `shalefs fsck --scrub --repair` mends: only what
 * needs no guess about what the lost bytes held.
 *
 * WHAT IT REPAIRS
 *   1. A WAL the live filesystem cannot replay: a damaged or missing WAL
 *      object above the latest manifest's replay point (kv_open refuses
 *      such a store). The log is cut at its last valid record, as a crash
 *      at that point would have left it: the damaged object N keeps the
 *      valid records before its first damaged one (kv_wal_salvage) and is
 *      rewritten whole under the same name, and every later WAL object
 *      keeps its name but loses its records (an empty object, as a fence
 *      is). So what the filesystem holds afterwards is a prefix of the
 *      write order, the engine's rule after a crash. Keeping the later
 *      records instead would leave a log with a hole: a change written
 *      after a lost one (a write into a file whose create was lost) would
 *      apply on top of nothing. The ids stay contiguous (kv_open refuses a
 *      gap), and a writer that lost the store but still retries an upload
 *      finds its id taken, as with any fence.
 *   2. Tables no manifest references (the latest, or a checkpoint's,
 *      directly or as a data table of one of its tables, kv_ref.c):
 *      outputs of a flush or compaction that never committed, or tables
 *      GC has not collected yet. Removed when created min_age ago (the
 *      time is in the name); left alone while a reader is registered
 *      (docs/lease.md): it may hold an older manifest that names them.
 *   3. WAL objects at or below every replay point (their records are in
 *      tables), fences excepted: kept forever (kv_gc.c says why).
 *   What GC does in a running writer, 2 and 3 do on a store nobody
 *   mounts. If any checkpoint's manifest cannot be read, 2 and 3 are
 *   skipped: the tables and WAL it needs are unknown.
 *
 * WHAT IT DOES NOT
 *   A damaged table, manifest or checkpoint manifest: the bytes are gone,
 *   and any rewrite would guess (dropping a damaged block would bring
 *   back the older versions beneath it as if current). They are reported
 *   by scrub and left as they are.
 *
 * NOTHING IS LOST SILENTLY
 *   Without conf->apply nothing is written: every action is reported as
 *   planned. With it, every object whose bytes change (1) is first copied
 *   whole to <lost>wal/<name> (put-if-absent; the copy must succeed
 *   before the object changes), and each action is reported as it is
 *   done. Removals (2, 3) are of objects the filesystem does not read.
 *
 * ORDER, AND AN INTERRUPTED REPAIR
 *   The later objects are emptied highest id first and object N is
 *   rewritten last. Interrupted anywhere, N is still damaged (the store
 *   still refuses to mount, no log with a hole ever replays), and a new
 *   run finds N again and finishes the job; the copies of objects already
 *   emptied stay under the first run's lost+found.
 *
 * The caller makes sure no writer runs (the lease): a writer would be
 * refused by the damaged WAL anyway, but tables and WAL removal assume
 * nobody commits meanwhile.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kv_repair_wal {
	uint64_t id;
	uint64_t size;
};

struct kv_repair_run {
	struct obj_backend *store;
	const struct kv_repair_conf *c;
	struct kv_repair_summary *sum;
	struct kv_manifest *m;            /* latest */
	char (*live)[48];                 /* tables some manifest references, sorted */
	size_t n_live, cap_live;
	uint64_t floor;                   /* WAL ids <= this are in every manifest's tables */
	int ckpt_unknown;                 /* a checkpoint manifest could not be read */
	int readers;                      /* registered readers */
	uint64_t now_ms;
	uint64_t min_age_ms;
	struct kv_repair_wal *wal;        /* every WAL object, by id */
	size_t n_wal, cap_wal;
};

static void kv_repair_note(struct kv_repair_run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void kv_repair_note(struct kv_repair_run *r, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (r->c->note)
		r->c->note(r->c->arg, text);
}

static int kv_repair_report(struct kv_repair_run *r, struct kv_repair_action *a)
{
	r->sum->planned++;
	if (a->done)
		r->sum->done++;
	return r->c->action ? r->c->action(r->c->arg, a) : 0;
}

static int kv_repair_name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int kv_repair_live_id(void *arg, const struct kv_sst_id *id)
{
	struct kv_repair_run *r = arg;

	if (util_grow(&r->live, &r->cap_live, r->n_live, sizeof(*r->live)))
		return -ENOMEM;
	kv_sst_id_name(id, r->live[r->n_live++], 48);
	return 0;
}

/* The tables of m and the data tables they reference (kv_ref.c). */
static int kv_repair_live_add(void *arg, const struct kv_manifest *m)
{
	struct kv_repair_run *r = arg;
	int rc = kv_manifest_each_sst(m, kv_repair_live_id, r);

	if (m->wal_replay_after < r->floor)
		r->floor = m->wal_replay_after;
	return rc;
}

/* The latest manifest, its checkpoints', the live tables and the floor. */
static int kv_repair_load(struct kv_repair_run *r)
{
	int rc = kv_manifest_load_latest(r->store, &r->m);

	if (rc)
		return rc;
	r->floor = UINT64_MAX;
	rc = kv_repair_live_add(r, r->m);
	for (size_t i = 0; i < r->m->n_ckpt && !rc; i++) {
		struct kv_manifest *cm = NULL;
		int lrc = kv_manifest_load(r->store, r->m->ckpts[i].manifest_id, &cm);
		if (lrc == KV_ECORRUPT || lrc == -ENOENT) {
			r->ckpt_unknown = 1;
			kv_repair_note(r, "checkpoint %s: its manifest cannot be read, so the "
				       "tables and WAL objects it needs are unknown: no table or "
				       "old WAL object is removed", r->m->ckpts[i].name);
			continue;
		}
		rc = lrc ? lrc : kv_repair_live_add(r, cm);
		kv_manifest_free(cm);
	}
	if (!rc && r->n_live)
		qsort(r->live, r->n_live, sizeof(*r->live), kv_repair_name_cmp);
	return rc;
}

static int kv_repair_reader_cb(void *arg, const struct kv_lease_info *l)
{
	(void)l;
	((struct kv_repair_run *)arg)->readers++;
	return 0;
}

/* 2: tables nothing references. */
static int kv_repair_sst_cb(void *arg, const char *name, uint64_t size)
{
	struct kv_repair_run *r = arg;
	uint64_t ms;

	if (kv_gc_sst_time(name, &ms))
		return 0;                       /* not ours */
	if (r->n_live && bsearch(name, r->live, r->n_live, sizeof(*r->live), kv_repair_name_cmp))
		return 0;
	if (ms + r->min_age_ms > r->now_ms) {
		kv_repair_note(r, "%s: not referenced, but written less than %u s ago "
			       "(a flush or compaction may not have committed it yet)", name,
			       (unsigned)(r->min_age_ms / 1000));
		return 0;
	}
	struct kv_repair_action a = { .kind = KV_REPAIR_REMOVE_TABLE, .object = name,
				      .bytes = size };
	if (r->c->apply) {
		a.err = obj_delete(r->store, name);
		a.done = a.err == 0 || a.err == -ENOENT;
	}
	int rc = kv_repair_report(r, &a);
	return rc ? rc : a.done || !r->c->apply ? 0 : a.err;
}

static int kv_repair_wal_cb(void *arg, const char *name, uint64_t size)
{
	struct kv_repair_run *r = arg;
	uint64_t id;

	if (kv_name_id(name, "wal/", &id))
		return 0;
	if (util_grow(&r->wal, &r->cap_wal, r->n_wal, sizeof(*r->wal)))
		return -ENOMEM;
	r->wal[r->n_wal].id = id;
	r->wal[r->n_wal].size = size;
	r->n_wal++;
	return 0;
}

/* 3: WAL objects every manifest has in its tables. */
static int kv_repair_old_wal(struct kv_repair_run *r)
{
	char name[48];
	int rc = 0;

	for (size_t i = 0; i < r->n_wal && !rc; i++) {
		if (r->wal[i].id > r->floor)
			break;
		if (r->wal[i].size == kv_gc_fence_size())
			continue;
		kv_wal_name(r->wal[i].id, name, sizeof(name));
		struct kv_repair_action a = { .kind = KV_REPAIR_REMOVE_WAL, .object = name,
					      .bytes = r->wal[i].size };
		if (r->c->apply) {
			a.err = obj_delete(r->store, name);
			a.done = a.err == 0 || a.err == -ENOENT;
		}
		rc = kv_repair_report(r, &a);
		if (!rc && r->c->apply && !a.done)
			rc = a.err;
	}
	return rc;
}

/* Copy `data` to <lost>name before it changes. */
static int kv_repair_save(struct kv_repair_run *r, const char *name, const void *data,
			  size_t len, char *saved, size_t size)
{
	snprintf(saved, size, "%s%s", r->c->lost_prefix, name);
	int rc = obj_put_if_absent(r->store, saved, data, len);
	return rc == -EEXIST ? 0 : rc;
}

struct kv_repair_rebuild {
	struct kv_buf *buf;
	uint64_t records, last_seq;
};

static int kv_repair_keep(void *arg, uint64_t first_seq, uint32_t count,
			  const uint8_t *entries, size_t entries_len)
{
	struct kv_repair_rebuild *b = arg;

	b->records++;
	b->last_seq = first_seq + count - 1;
	return b->buf ? kv_wal_append(b->buf, first_seq, count, entries, entries_len) : 0;
}

/* Records in a WAL object (its trailer's count, or a walk when damaged). */
static uint64_t kv_repair_count(const void *data, size_t len)
{
	struct kv_repair_rebuild b = { 0 };
	struct kv_wal_header h;
	size_t end;

	if (!data || kv_wal_salvage(data, len, &h, kv_repair_keep, &b, &end))
		return 0;
	return b.records;
}

/*
 * Replace WAL object `id` with a header (epoch) and the records `keep`
 * says: the valid prefix of data (keep), or none. The old bytes are
 * saved first. a->done/err say how it went.
 */
static int kv_repair_rewrite(struct kv_repair_run *r, uint64_t id, uint64_t epoch,
			     const void *data, size_t len, int keep, struct kv_repair_action *a,
			     char *saved, size_t saved_size)
{
	struct kv_buf buf = { 0 };
	struct kv_wal_header h = { .wal_id = id, .writer_epoch = epoch };
	struct kv_repair_rebuild b = { .buf = &buf };
	char name[48];
	size_t end = 0;
	int rc;

	kv_wal_name(id, name, sizeof(name));
	rc = kv_wal_begin(&buf, &h);
	if (!rc && keep && data) {
		/* A bad header salvages nothing: the object is then empty. */
		int src = kv_wal_salvage(data, len, &h, kv_repair_keep, &b, &end);
		if (src != KV_ECORRUPT)
			rc = src;
	}
	rc = rc ? rc : kv_wal_finish(&buf);
	if (!rc && data && len)
		rc = kv_repair_save(r, name, data, len, saved, saved_size);
	if (!rc)
		rc = obj_put(r->store, name, buf.data, buf.len);
	kv_buf_free(&buf);
	a->err = rc;
	a->done = rc == 0;
	return rc;
}

/* 1: cut the log at its last valid record. */
static int kv_repair_cut(struct kv_repair_run *r)
{
	uint64_t after = r->m->wal_replay_after, cut = 0, epoch = r->m->writer_epoch;
	void *data = NULL;
	size_t len = 0, first = r->n_wal;
	char name[48], saved[512];
	int rc = 0, found = 0;

	for (size_t i = 0; i < r->n_wal; i++)
		if (r->wal[i].id > after) {
			first = i;
			break;
		}
	/* Find the first object that is missing, or fails to decode whole. */
	for (size_t i = first; i < r->n_wal && !found; i++) {
		uint64_t want = i == first ? after + 1 : r->wal[i - 1].id + 1;
		if (r->wal[i].id != want) {
			cut = want;                 /* a hole: that id is missing */
			found = 1;
			break;
		}
		kv_wal_name(r->wal[i].id, name, sizeof(name));
		rc = obj_get(r->store, name, 0, OBJ_WHOLE, &data, &len);
		if (rc == -ENOENT) {
			cut = r->wal[i].id;
			found = 1;
			break;
		}
		if (rc)
			return rc;
		struct kv_wal_header h;
		int drc = kv_wal_decode(name, data, len, &h, NULL, NULL);
		if (drc == 0 && h.wal_id != r->wal[i].id)
			drc = KV_ECORRUPT;
		if (drc == KV_ECORRUPT) {
			cut = r->wal[i].id;
			found = 1;
			break;
		}
		if (drc) {
			obj_buf_free(data);
			return drc;
		}
		epoch = h.writer_epoch;
		obj_buf_free(data);
		data = NULL;
	}
	if (!found)
		return 0;
	for (size_t i = 0; i < r->m->n_ckpt; i++)
		if (r->m->ckpts[i].wal_id > cut)
			kv_repair_note(r, "checkpoint %s needs WAL objects past the cut at wal id "
				       "%" PRIu64 ": it is cut there too", r->m->ckpts[i].name, cut);
	/* Later objects, highest id first. */
	for (size_t i = r->n_wal; i-- > first && !rc;) {
		if (r->wal[i].id <= cut)
			break;
		void *ld = NULL;
		size_t ll = 0;
		kv_wal_name(r->wal[i].id, name, sizeof(name));
		if (r->wal[i].size == kv_gc_fence_size())
			continue;               /* already empty */
		rc = obj_get(r->store, name, 0, OBJ_WHOLE, &ld, &ll);
		if (rc == -ENOENT) {
			rc = 0;
			ld = NULL;
			ll = 0;
		}
		if (rc)
			break;
		struct kv_repair_action a = { .kind = KV_REPAIR_EMPTY_WAL, .object = name,
					      .bytes = ll, .drop_records = kv_repair_count(ld, ll) };
		struct kv_wal_header h;
		size_t end;
		uint64_t e = ld && kv_wal_salvage(ld, ll, &h, NULL, NULL, &end) == 0 ?
			     h.writer_epoch : epoch;
		saved[0] = 0;
		if (r->c->apply)
			(void)kv_repair_rewrite(r, r->wal[i].id, e, ld, ll, 0, &a, saved,
						sizeof(saved));
		a.saved_as = saved;
		obj_buf_free(ld);
		rc = kv_repair_report(r, &a);
		if (!rc && r->c->apply && !a.done)
			rc = a.err;
	}
	if (rc) {
		obj_buf_free(data);
		return rc;
	}
	/* The object at the cut: its valid prefix (none when it is missing). */
	struct kv_repair_rebuild b = { 0 };
	struct kv_wal_header h;
	size_t end = 0;
	kv_wal_name(cut, name, sizeof(name));
	if (data && kv_wal_salvage(data, len, &h, kv_repair_keep, &b, &end) == 0)
		epoch = h.writer_epoch;
	struct kv_repair_action a = { .kind = KV_REPAIR_CUT_WAL, .object = name,
				      .bytes = data ? len - end : 0, .keep_records = b.records,
				      .keep_bytes = end, .last_seq = b.last_seq,
				      .missing = data == NULL };
	saved[0] = 0;
	if (r->c->apply)
		(void)kv_repair_rewrite(r, cut, epoch, data, len, 1, &a, saved, sizeof(saved));
	a.saved_as = saved;
	obj_buf_free(data);
	rc = kv_repair_report(r, &a);
	return rc ? rc : r->c->apply && !a.done ? a.err : 0;
}

int kv_repair(struct obj_backend *store, const struct kv_repair_conf *conf,
	      struct kv_repair_summary *sum)
{
	struct kv_repair_run r = { .store = store, .c = conf, .sum = sum };
	int rc;

	memset(sum, 0, sizeof(*sum));
	r.min_age_ms = conf->min_age_ms ? conf->min_age_ms : KV_DFLT_GC_MIN_AGE_MS;
	r.now_ms = util_wall_ns() / 1000000;
	rc = kv_repair_load(&r);
	if (rc == KV_ECORRUPT || rc == -ENOENT) {
		kv_repair_note(&r, "the latest manifest cannot be read: nothing is repaired "
			       "(which tables and WAL objects the filesystem needs is unknown)");
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	rc = obj_list_each(store, "wal/", 1000, kv_repair_wal_cb, &r);
	if (!rc)
		rc = kv_repair_cut(&r);
	if (!rc && !r.ckpt_unknown)
		rc = kv_repair_old_wal(&r);
	if (!rc && !r.ckpt_unknown)
		rc = kv_readers_list(store, kv_repair_reader_cb, &r);
	if (!rc && !r.ckpt_unknown && r.readers)
		kv_repair_note(&r, "%d reader%s registered: unreferenced tables are left (a "
			       "reader may hold an older manifest that names them)", r.readers,
			       r.readers == 1 ? " is" : "s are");
	if (!rc && !r.ckpt_unknown && !r.readers)
		rc = obj_list_each(store, "sst/", 1000, kv_repair_sst_cb, &r);
out:
	free(r.live);
	free(r.wal);
	kv_manifest_free(r.m);
	return rc;
}
