/*
 * kv_checkpoint.c - named, durable pins of a manifest plus the WAL that
 * was durable when they were taken.
 *
 * A checkpoint {name, manifest_id, wal_id} lives in the manifest. Opening
 * it loads manifest `manifest_id` and replays WAL objects
 * (its wal_replay_after, wal_id]; GC keeps that manifest, its tables and
 * those WAL objects for as long as the checkpoint exists. Because wal_id is
 * read from the store (the highest contiguous WAL object), a checkpoint
 * taken by another process while a writer runs holds everything the
 * writer had made durable (fsync'd) before the call, and its view never
 * changes afterwards.
 *
 * Every change goes through the manifest CAS (put_if_absent of id+1). The
 * writer, on its next CAS, meets the new manifest, reloads and re-applies
 * its own change on top, so checkpoints made from outside are never lost.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The apply's "name taken", kept apart from the store's -EEXIST (a lost
 * CAS race, retried) until the loop ends. */
#define KV_CKPT_TAKEN (-EADDRINUSE)

static int kv_ckpt_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > KV_CKPT_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return name[0] != '.';
}

struct kv_ckpt_add {
	const char *name;
	uint64_t wal_id;
	uint64_t expire_ns;
};

static int kv_ckpt_add_apply(void *arg, struct kv_manifest *m)
{
	struct kv_ckpt_add *a = arg;
	if (kv_manifest_find_ckpt(m, a->name))
		return KV_CKPT_TAKEN;
	struct kv_checkpoint *c = realloc(m->ckpts, (m->n_ckpt + 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	m->ckpts = c;
	c[m->n_ckpt].name = strdup(a->name);
	if (!c[m->n_ckpt].name)
		return -ENOMEM;
	c[m->n_ckpt].manifest_id = m->id + 1;   /* the manifest this CAS writes */
	c[m->n_ckpt].wal_id = a->wal_id;
	c[m->n_ckpt].created_ns = util_wall_ns();
	c[m->n_ckpt].expire_ns = a->expire_ns;
	m->n_ckpt++;
	return 0;
}

static int kv_ckpt_del_apply(void *arg, struct kv_manifest *m)
{
	const char *name = arg;
	for (size_t i = 0; i < m->n_ckpt; i++) {
		if (strcmp(m->ckpts[i].name, name))
			continue;
		free(m->ckpts[i].name);
		memmove(&m->ckpts[i], &m->ckpts[i + 1], (m->n_ckpt - i - 1) * sizeof(*m->ckpts));
		m->n_ckpt--;
		return 0;
	}
	return -ENOENT;
}

/* The manifest CAS loop for callers without a kv_db (the CLI). -EEXIST
 * from the store means someone else moved first: reload and re-apply. */
static int kv_ckpt_cas(struct obj_backend *store, kv_manifest_apply_fn fn, void *arg)
{
	for (int attempt = 0; attempt < 1000; attempt++) {
		struct kv_manifest *m = NULL;
		int rc = kv_manifest_load_latest(store, &m);
		if (rc)
			return rc;
		rc = fn(arg, m);
		if (rc == 0)
			rc = kv_manifest_store(store, m, m->id + 1);
		kv_manifest_free(m);
		if (rc != -EEXIST)
			return rc == KV_CKPT_TAKEN ? -EEXIST : rc;
		util_sleep_ns((uint64_t)(1 + attempt % 50) * 1000000ull);
	}
	return -EAGAIN;
}

/* The highest WAL id durable now (contiguous after the manifest's). */
static int kv_ckpt_wal_id(struct obj_backend *store, uint64_t *wal_id)
{
	struct kv_manifest *m = NULL;
	struct kv_wal_scan s;
	int rc = kv_manifest_load_latest(store, &m);
	if (rc)
		return rc;
	rc = kv_wal_scan(store, m->wal_replay_after, &s);
	if (rc == 0)
		*wal_id = s.gap ? s.gap - 1 : s.max;
	kv_manifest_free(m);
	return rc;
}

int kv_checkpoint_create(struct obj_backend *store, const char *name, uint64_t expire_ns)
{
	struct kv_ckpt_add a = { .name = name, .expire_ns = expire_ns };
	int rc;

	if (!kv_ckpt_name_ok(name))
		return -EINVAL;
	rc = kv_ckpt_wal_id(store, &a.wal_id);
	if (rc)
		return rc;
	rc = kv_ckpt_cas(store, kv_ckpt_add_apply, &a);
	if (rc == 0)
		UTIL_INFO("kv", "checkpoint '%s' created (WAL up to %" PRIu64 ")", name, a.wal_id);
	return rc;
}

int kv_db_checkpoint_create(struct kv_db *db, const char *name, uint64_t expire_ns)
{
	struct kv_ckpt_add a = { .name = name, .expire_ns = expire_ns };
	int rc;

	if (!kv_ckpt_name_ok(name))
		return -EINVAL;
	if (db->readonly)
		return kv_checkpoint_create(db->store, name, expire_ns);
	rc = kv_sync(db);
	if (rc)
		return rc;
	rc = kv_ckpt_wal_id(db->store, &a.wal_id);
	if (rc)
		return rc;
	rc = kv_manifest_update(db, kv_ckpt_add_apply, &a, NULL, NULL);
	return rc == KV_CKPT_TAKEN ? -EEXIST : rc;
}

int kv_checkpoint_list(struct obj_backend *store, kv_checkpoint_fn fn, void *arg)
{
	struct kv_manifest *m = NULL;
	int rc = kv_manifest_load_latest(store, &m);
	if (rc)
		return rc;
	for (size_t i = 0; i < m->n_ckpt && rc == 0; i++) {
		struct kv_checkpoint_info c = {
			.name = m->ckpts[i].name,
			.manifest_id = m->ckpts[i].manifest_id,
			.wal_id = m->ckpts[i].wal_id,
			.created_ns = m->ckpts[i].created_ns,
			.expire_ns = m->ckpts[i].expire_ns,
		};
		rc = fn(arg, &c);
	}
	kv_manifest_free(m);
	return rc > 0 ? 0 : rc;
}

int kv_checkpoint_delete(struct obj_backend *store, const char *name)
{
	if (!kv_ckpt_name_ok(name))
		return -EINVAL;
	return kv_ckpt_cas(store, kv_ckpt_del_apply, (void *)name);
}
