/*
 * kv_pending.c - tables written but not yet committed to a manifest.
 *
 * A flush or a compaction uploads its output SSTs before the manifest
 * that names them commits. Until then GC would see them as unreferenced,
 * so the writer registers each one here (db->pending, protected by
 * db->mu) before the upload and forgets it once the commit succeeded or
 * was given up. GC (kv_gc.c) never deletes a table on the list, whatever
 * its age.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int kv_pending_add(struct kv_db *db, const struct kv_sst_id *id)
{
	int rc = 0;
	kv_mutex_lock(&db->mu);
	struct kv_sst_id *p = realloc(db->pending, (db->n_pending + 1) * sizeof(*p));
	if (p) {
		db->pending = p;
		p[db->n_pending++] = *id;
	} else {
		rc = -ENOMEM;
	}
	kv_mutex_unlock(&db->mu);
	return rc;
}

void kv_pending_del(struct kv_db *db, const struct kv_sst_id *id)
{
	kv_mutex_lock(&db->mu);
	for (size_t i = 0; i < db->n_pending; i++)
		if (!memcmp(db->pending[i].b, id->b, 16)) {
			db->pending[i] = db->pending[--db->n_pending];
			kv_gc_kick(db);         /* abandoned, it is garbage */
			break;
		}
	kv_mutex_unlock(&db->mu);
}
