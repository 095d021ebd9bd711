/*
 * kv_snapshot.c - snapshots: a seq a reader pins, and the list of them a
 * flush or a compaction consults to know which older versions to keep.
 *
 * Live snapshots are a circular list headed by db->snaps, protected by
 * db->mu. A snapshot sees every batch up to its seq; creating one takes
 * last_seq.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdlib.h>

int kv_snapshot_create(struct kv_db *db, struct kv_snapshot **out)
{
	struct kv_snapshot *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return -ENOMEM;
	kv_mutex_lock(&db->mu);
	s->seq = db->last_seq;
	s->next = &db->snaps;
	s->prev = db->snaps.prev;
	db->snaps.prev->next = s;
	db->snaps.prev = s;
	kv_mutex_unlock(&db->mu);
	*out = s;
	return 0;
}

void kv_snapshot_release(struct kv_db *db, struct kv_snapshot *s)
{
	if (!s)
		return;
	kv_mutex_lock(&db->mu);
	s->prev->next = s->next;
	s->next->prev = s->prev;
	kv_mutex_unlock(&db->mu);
	free(s);
}

int kv_snapshot_seqs(struct kv_db *db, uint64_t **out, size_t *n)
{
	KV_MU_HELD(db);
	size_t ns = 0;

	*out = NULL;
	*n = 0;
	for (struct kv_snapshot *s = db->snaps.next; s != &db->snaps; s = s->next)
		ns++;
	if (!ns)
		return 0;
	uint64_t *seqs = calloc(ns, sizeof(*seqs));
	if (!seqs)
		return -ENOMEM;
	for (struct kv_snapshot *s = db->snaps.next; s != &db->snaps; s = s->next)
		seqs[(*n)++] = s->seq;
	for (size_t a = 1; a < *n; a++)         /* few: insertion sort */
		for (size_t b = a; b > 0 && seqs[b - 1] > seqs[b]; b--) {
			uint64_t t = seqs[b];
			seqs[b] = seqs[b - 1];
			seqs[b - 1] = t;
		}
	*out = seqs;
	return 0;
}

int kv_snapshot_sees(const uint64_t *seqs, size_t n, uint64_t lo, uint64_t hi)
{
	for (size_t i = 0; i < n; i++)
		if (seqs[i] >= lo && seqs[i] < hi)
			return 1;
	return 0;
}
