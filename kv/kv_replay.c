/*
 * kv_replay.c - WAL replay into the memtable: at open (kv_db.c, steps 3
 * and 4 of OPEN AS WRITER) and by read-only followers (kv_follow.c).
 *
 * Replay applies each record whose seqs are above skip_upto (already in
 * SSTs) to db->mem under db->mu, freezing the memtable when it is full;
 * a writer flushes as it goes so a long WAL stays within the memory
 * budget. Objects are written whole, so one that fails its checksums, or
 * one missing from a range that must be complete, is corruption.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int kv_replay_entry(void *arg, enum kv_type type, const uint8_t *key, size_t klen,
			   const uint8_t *val, size_t vlen)
{
	struct kv_replay *r = arg;
	return kv_mem_add(r->db->mem, r->seq++, type, key, klen, val, vlen);
}

static int kv_replay_record(void *arg, uint64_t first_seq, uint32_t count, const uint8_t *entries,
			    size_t len)
{
	struct kv_replay *r = arg;
	struct kv_db *db = r->db;
	int rc;

	if (first_seq + count - 1 <= r->skip_upto)
		return 0;
	r->seq = first_seq;
	rc = kv_batch_each(entries, len, count, kv_replay_entry, r);
	if (rc)
		return rc;
	if (first_seq + count - 1 > r->max_seq)
		r->max_seq = first_seq + count - 1;
	db->last_seq = r->max_seq > db->last_seq ? r->max_seq : db->last_seq;
	if (kv_mem_bytes(db->mem) >= db->conf.memtable_bytes) {
		rc = kv_flush_freeze(db);
		if (rc)
			return rc;
		/* Recovery flushes as it goes so replaying a long WAL stays
		 * within the memory budget. Writers only: readers keep memtables. */
		while (!db->readonly && db->n_imm >= db->conf.max_frozen_memtables) {
			kv_mutex_unlock(&db->mu);
			rc = kv_flush_one(db);
			kv_mutex_lock(&db->mu);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Replay the bytes of WAL object `id` (mu held). */
int kv_replay_data(struct kv_db *db, uint64_t id, const void *data, size_t len,
		   struct kv_replay *r, uint64_t *last)
{
	KV_MU_HELD(db);
	char name[48];
	struct kv_wal_header h;
	int rc;

	kv_wal_name(id, name, sizeof(name));
	r->max_seq = 0;
	rc = kv_wal_decode(name, data, len, &h, kv_replay_record, r);
	if (rc == 0 && h.wal_id != id) {
		rc = KV_CORRUPT(name, 0, "corrupt WAL object: header says id %" PRIu64, h.wal_id);
	}
	*last = r->max_seq ? r->max_seq : db->last_seq;
	return rc;
}

/* Fetch WAL object `id` (no lock needed). -ENOENT only if r->missing_ok. */
int kv_replay_fetch(struct kv_db *db, uint64_t id, const struct kv_replay *r, void **data,
		    size_t *len)
{
	char name[48];
	int rc;

	kv_wal_name(id, name, sizeof(name));
	rc = kv_obj_get(db->store, name, 0, OBJ_WHOLE, data, len);
	if (rc == -ENOENT && !r->missing_ok) {
		return KV_CORRUPT(name, KV_CORRUPT_NO_OFFSET, "missing: the WAL between the "
				  "manifest and the newest object must be complete");
	}
	return rc;
}

/* Replay one WAL object (mu held, no other thread running). */
static int kv_replay_object(struct kv_db *db, uint64_t id, struct kv_replay *r, uint64_t *last)
{
	KV_MU_HELD(db);
	void *data = NULL;
	size_t len = 0;
	int rc = kv_replay_fetch(db, id, r, &data, &len);
	if (rc == 0)
		rc = kv_replay_data(db, id, data, len, r, last);
	obj_buf_free(data);
	return rc;
}

static int kv_wal_scan_cb(void *arg, const char *name, uint64_t size)
{
	struct kv_wal_scan *s = arg;
	uint64_t id;
	(void)size;
	if (kv_name_id(name, "wal/", &id) || id <= s->after)
		return 0;
	if (!s->gap && id != (s->count ? s->max + 1 : s->after + 1))
		s->gap = s->count ? s->max + 1 : s->after + 1;
	s->max = id;
	s->count++;
	return 0;
}

/* Find the WAL objects after `after`: highest id, and the first gap.
 * Names are fixed-width, so listing starts right after wal/<after>. */
int kv_wal_scan(struct obj_backend *store, uint64_t after, struct kv_wal_scan *s)
{
	char start[48];
	int rc;

	memset(s, 0, sizeof(*s));
	s->after = after;
	s->max = after;
	kv_wal_name(after, start, sizeof(start));
	for (;;) {
		struct obj_list *l = NULL;
		rc = obj_list_page(store, "wal/", start, 1000, &l);
		if (rc)
			return rc;
		for (size_t i = 0; i < l->count; i++)
			kv_wal_scan_cb(s, l->entries[i].name, l->entries[i].size);
		int more = l->truncated && l->count > 0;
		if (more)
			snprintf(start, sizeof(start), "%s", l->entries[l->count - 1].name);
		obj_list_free(l);
		if (!more)
			return 0;
	}
}

int kv_replay_range(struct kv_db *db, uint64_t after, uint64_t upto, int record_done)
{
	KV_MU_HELD(db);
	struct kv_replay r = { .db = db, .skip_upto = db->ver->man->last_seq };
	int rc = 0;

	for (uint64_t id = after + 1; id <= upto && rc == 0; id++) {
		uint64_t last;
		rc = kv_replay_object(db, id, &r, &last);
		if (rc == 0 && record_done)
			rc = kv_wal_done_push(db, id, db->last_seq);
	}
	return rc;
}
