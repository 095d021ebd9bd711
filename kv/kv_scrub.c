/*
 * kv_scrub.c - read every object a store still needs and check every
 * byte of it, reporting each damaged stretch and going on past it.
 *
 * WHAT IS READ
 *   The latest manifest; the manifest of each checkpoint it lists; every
 *   table any of them names and every data table (kv_ref.c) those
 *   reference (once, however many share it); every WAL
 *   object in the store: the latest's records above its replay point are
 *   not in tables yet, a checkpoint's up to its wal_id are part of it,
 *   and those at or below the latest's replay point (which GC has not
 *   deleted yet, or a checkpoint needs) cost the live filesystem nothing.
 *
 * HOW
 *   A table is opened (footer, filter and index: damage there loses the
 *   whole table) and its data blocks are read `span` bytes per GET and
 *   checked block by block (kv_sst_scrub): a damaged block is reported
 *   with the user keys it could have held, and the next block is checked
 *   all the same. A WAL object is verified whole (kv_wal_decode: a
 *   damaged record makes everything after it in the object unusable,
 *   since replay is all or nothing); a manifest likewise. `jobs` worker
 *   threads take objects in turn; each holds at most one span, one WAL
 *   object or one manifest in memory.
 *
 * REPORTING
 *   conf->damage is called (serialized) for each damaged stretch, with
 *   the object's kind and which manifests need it; conf->progress every
 *   object. Neither is called after kv_scrub returns. Corruption is
 *   logged as always (KV_CORRUPT); a caller that prints its own report
 *   quiets the log.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_SCRUB_SPAN_DEFAULT ((size_t)8 << 20)
#define KV_SCRUB_JOBS_MAX 64

struct kv_scrub_obj {
	char name[64];
	enum kv_scrub_kind kind;
	uint64_t id;                      /* manifest or WAL id */
	struct kv_sst_meta meta;          /* tables */
	const char *ckpt;                 /* KV_SCRUB_CHECKPOINT: its name */
	int in_latest;                    /* the live filesystem needs it */
	int in_tables;                    /* WAL: records already in the latest's tables */
	char *ckpts;                      /* checkpoints that need it ("a,b"), NULL none */
};

struct kv_scrub_run {
	struct obj_backend *store;
	const struct kv_scrub_conf *conf;
	struct kv_scrub_summary *sum;
	struct kv_scrub_obj *objs;
	size_t n, cap, next;
	pthread_mutex_t mu;               /* next, sum, and the callbacks */
	int err;                          /* the first error that stops the run */
	struct kv_scrub_obj *cur;         /* the worker's object (thread-local use) */
};

static struct kv_scrub_obj *kv_scrub_add(struct kv_scrub_run *s)
{
	if (util_grow(&s->objs, &s->cap, s->n, sizeof(*s->objs)))
		return NULL;
	memset(&s->objs[s->n], 0, sizeof(s->objs[0]));
	return &s->objs[s->n++];
}

/* Note that checkpoint `ck` (NULL: the latest) needs o. */
static int kv_scrub_need(struct kv_scrub_obj *o, const char *ck)
{
	if (!ck) {
		o->in_latest = 1;
		return 0;
	}
	size_t have = o->ckpts ? strlen(o->ckpts) + 1 : 0;
	char *v = realloc(o->ckpts, have + strlen(ck) + 1);
	if (!v)
		return -ENOMEM;
	if (have)
		v[have - 1] = ',';
	strcpy(v + have, ck);
	o->ckpts = v;
	return 0;
}

static int kv_scrub_add_sst(struct kv_scrub_run *s, const struct kv_sst_meta *m, const char *ck)
{
	char name[64];
	struct kv_scrub_obj *o;

	kv_sst_id_name(&m->id, name, sizeof(name));
	for (size_t i = 0; i < s->n; i++)       /* few hundred tables: a scan is fine */
		if (s->objs[i].kind == KV_SCRUB_SST && !strcmp(s->objs[i].name, name))
			return kv_scrub_need(&s->objs[i], ck);
	if (!(o = kv_scrub_add(s)))
		return -ENOMEM;
	snprintf(o->name, sizeof(o->name), "%s", name);
	o->kind = KV_SCRUB_SST;
	if (kv_sst_meta_copy(&o->meta, m)) {
		s->n--;
		return -ENOMEM;
	}
	return kv_scrub_need(o, ck);
}

/*
 * A data table (kv_ref.c) that table t references. Its manifest entry is
 * t's: its key range is the widest of the tables that reference it, which
 * is where a damaged stretch of it can hold keys when its own keys are
 * not known (footer or index damaged).
 */
static int kv_scrub_add_data(struct kv_scrub_run *s, const struct kv_sst_meta *t,
			     const struct kv_dref *d, const char *ck)
{
	struct kv_sst_meta m = { .id = d->id, .size = d->size };
	char name[64];

	kv_sst_id_name(&d->id, name, sizeof(name));
	for (size_t i = 0; i < s->n; i++) {
		struct kv_sst_meta *o = &s->objs[i].meta;
		if (s->objs[i].kind != KV_SCRUB_SST || strcmp(s->objs[i].name, name))
			continue;
		if (kv_ikey_cmp(t->largest, t->largest_len, o->largest, o->largest_len) > 0) {
			uint8_t *k = malloc(t->largest_len);
			if (!k)
				return -ENOMEM;
			memcpy(k, t->largest, t->largest_len);
			free(o->largest);
			o->largest = k;
			o->largest_len = t->largest_len;
		}
		return kv_scrub_need(&s->objs[i], ck);
	}
	m.smallest = t->smallest;
	m.smallest_len = t->smallest_len;
	m.largest = t->largest;
	m.largest_len = t->largest_len;
	return kv_scrub_add_sst(s, &m, ck);
}

/* A table, then the data tables it references. */
static int kv_scrub_add_table(struct kv_scrub_run *s, const struct kv_sst_meta *t, const char *ck)
{
	int rc = kv_scrub_add_sst(s, t, ck);
	for (size_t i = 0; i < t->n_refs && !rc; i++)
		rc = kv_scrub_add_data(s, t, &t->refs[i], ck);
	return rc;
}

static int kv_scrub_add_tables(struct kv_scrub_run *s, const struct kv_manifest *m,
			       const char *ck)
{
	int rc = 0;
	for (size_t i = 0; i < m->n_l0 && !rc; i++)
		rc = kv_scrub_add_table(s, &m->l0[i], ck);
	for (size_t i = 0; i < m->n_runs && !rc; i++)
		for (size_t j = 0; j < m->runs[i].n && !rc; j++)
			rc = kv_scrub_add_table(s, &m->runs[i].ssts[j], ck);
	return rc;
}

/* Report damage found in o by this thread (mu not held). */
static int kv_scrub_report(struct kv_scrub_run *s, const struct kv_scrub_obj *o, int err,
			   uint64_t off, uint64_t len, const struct kv_sst_damage *sd)
{
	struct kv_corrupt_info ci;
	struct kv_scrub_damage d = {
		.object = o->name, .kind = o->kind, .off = off, .len = len,
		.in_latest = o->in_latest, .in_tables = o->in_tables,
		.checkpoints = o->ckpts ? o->ckpts : "", .checkpoint = o->ckpt,
	};
	int rc = 0;

	kv_corrupt_mine(&ci);
	if (err == -ENOENT)
		d.reason = "missing, but a manifest references it";
	else
		d.reason = ci.reason[0] ? ci.reason : "corrupt";
	if (sd) {
		d.keys_known = 1;
		d.lo = sd->lo;
		d.lo_len = sd->lo_len;
		d.hi = sd->hi;
		d.hi_len = sd->hi_len;
		if (!d.hi) {                    /* to the table's end: its last key */
			d.hi = o->meta.largest;
			d.hi_len = o->meta.largest_len >= KV_IKEY_TRAILER ?
				   o->meta.largest_len - KV_IKEY_TRAILER : 0;
		}
	} else if (o->kind == KV_SCRUB_SST) {
		/* The whole table: the manifest knows its key range. */
		d.keys_known = 1;
		d.hi = o->meta.largest;
		d.hi_len = o->meta.largest_len >= KV_IKEY_TRAILER ?
			   o->meta.largest_len - KV_IKEY_TRAILER : 0;
	}
	CHECK_RETURN(pthread_mutex_lock(&s->mu));
	s->sum->damaged++;
	if (o->in_latest && !o->in_tables && o->kind != KV_SCRUB_SST)
		s->sum->latest_unreadable = 1;  /* kv_open of the live filesystem fails */
	if (s->conf->damage)
		rc = s->conf->damage(s->conf->arg, &d);
	CHECK_RETURN(pthread_mutex_unlock(&s->mu));
	return rc;
}

static void kv_scrub_read(void *arg, uint64_t n)
{
	struct kv_scrub_run *s = arg;
	CHECK_RETURN(pthread_mutex_lock(&s->mu));
	s->sum->bytes += n;
	CHECK_RETURN(pthread_mutex_unlock(&s->mu));
}

struct kv_scrub_sst_ctx {
	struct kv_scrub_run *s;
	const struct kv_scrub_obj *o;
	int damaged;
};

static int kv_scrub_sst_damage(void *arg, const struct kv_sst_damage *d)
{
	struct kv_scrub_sst_ctx *c = arg;
	c->damaged = 1;
	return kv_scrub_report(c->s, c->o, d->err, d->off, d->len, d);
}

static void kv_scrub_sst_read(void *arg, uint64_t n)
{
	struct kv_scrub_sst_ctx *c = arg;
	kv_scrub_read(c->s, n);
}

static int kv_scrub_sst(struct kv_scrub_run *s, const struct kv_scrub_obj *o)
{
	struct kv_scrub_sst_ctx c = { .s = s, .o = o };
	struct kv_sst_reader *r = NULL;
	int rc = kv_sst_open(&r, s->store, NULL, &o->meta);

	if (rc == KV_ECORRUPT || rc == -ENOENT) {
		struct kv_corrupt_info ci;
		kv_corrupt_mine(&ci);
		uint64_t off = rc == -ENOENT || ci.offset == KV_CORRUPT_NO_OFFSET ? 0 : ci.offset;
		return kv_scrub_report(s, o, rc, off, o->meta.size - off, NULL);
	}
	if (rc)
		return rc;
	rc = kv_sst_scrub(r, s->conf->span ? s->conf->span : KV_SCRUB_SPAN_DEFAULT,
			  kv_scrub_sst_damage, kv_scrub_sst_read, &c);
	kv_sst_unref(r);
	return rc;
}

static int kv_scrub_wal_record(void *arg, uint64_t first_seq, uint32_t count,
			       const uint8_t *entries, size_t entries_len)
{
	(void)arg, (void)first_seq, (void)count, (void)entries, (void)entries_len;
	return 0;
}

/* A WAL object or a manifest: fetched and decoded whole. */
static int kv_scrub_whole(struct kv_scrub_run *s, const struct kv_scrub_obj *o)
{
	void *buf = NULL;
	size_t len = 0;
	int rc = kv_obj_get(s->store, o->name, 0, OBJ_WHOLE, &buf, &len);

	if (rc == -ENOENT)
		return kv_scrub_report(s, o, rc, 0, 0, NULL);
	if (rc)
		return rc;
	kv_scrub_read(s, len);
	if (o->kind == KV_SCRUB_WAL) {
		struct kv_wal_header h;
		rc = kv_wal_decode(o->name, buf, len, &h, kv_scrub_wal_record, NULL);
		if (rc == 0 && h.wal_id != o->id)
			rc = KV_CORRUPT(o->name, 0, "corrupt WAL object: header says id %" PRIu64,
					h.wal_id);
	} else {
		struct kv_manifest *m = NULL;
		rc = kv_manifest_decode(o->name, buf, len, &m);
		kv_manifest_free(m);
	}
	obj_buf_free(buf);
	if (rc == KV_ECORRUPT) {
		struct kv_corrupt_info ci;
		kv_corrupt_mine(&ci);
		uint64_t off = ci.offset == KV_CORRUPT_NO_OFFSET || ci.offset > len ? 0 : ci.offset;
		return kv_scrub_report(s, o, rc, off, len - off, NULL);
	}
	return rc;
}

static void *kv_scrub_worker(void *arg)
{
	struct kv_scrub_run *s = arg;

	util_thread_setup("kv-scrub", 0);
	(void)obj_purpose_set(OBJ_PURPOSE_OTHER);   /* what its requests cost: objstore.h */
	for (;;) {
		CHECK_RETURN(pthread_mutex_lock(&s->mu));
		if (s->err || s->next == s->n) {
			CHECK_RETURN(pthread_mutex_unlock(&s->mu));
			return NULL;
		}
		struct kv_scrub_obj *o = &s->objs[s->next++];
		CHECK_RETURN(pthread_mutex_unlock(&s->mu));

		int rc = o->kind == KV_SCRUB_SST ? kv_scrub_sst(s, o) : kv_scrub_whole(s, o);
		CHECK_RETURN(pthread_mutex_lock(&s->mu));
		if (rc && !s->err)
			s->err = rc;
		s->sum->objects++;
		if (!rc && s->conf->progress)
			s->conf->progress(s->conf->arg, s->sum, s->n);
		CHECK_RETURN(pthread_mutex_unlock(&s->mu));
	}
}

struct kv_scrub_wal_list {
	struct kv_scrub_run *s;
	uint64_t latest_after;
	const struct kv_manifest *m;
};

static int kv_scrub_wal_cb(void *arg, const char *name, uint64_t size)
{
	struct kv_scrub_wal_list *w = arg;
	struct kv_scrub_obj *o;
	uint64_t id;
	int rc = 0;

	(void)size;
	if (kv_name_id(name, "wal/", &id))
		return 0;
	if (!(o = kv_scrub_add(w->s)))
		return -ENOMEM;
	snprintf(o->name, sizeof(o->name), "%s", name);
	o->kind = KV_SCRUB_WAL;
	o->id = id;
	if (id > w->latest_after)
		o->in_latest = 1;
	else
		o->in_tables = 1;
	for (size_t i = 0; i < w->m->n_ckpt && !rc; i++)
		if (id > w->s->objs[i + 1].id && id <= w->m->ckpts[i].wal_id)
			rc = kv_scrub_need(o, w->m->ckpts[i].name);
	return rc;
}

/* Gather what to read: the latest manifest (objs[0]), the checkpoints'
 * manifests (objs[1..n_ckpt], id = their replay point), tables, WAL. */
static int kv_scrub_plan(struct kv_scrub_run *s, struct kv_manifest **latest)
{
	struct kv_manifest *m = NULL;
	struct kv_scrub_obj *o;
	struct kv_scrub_wal_list w = { .s = s };
	int rc = kv_manifest_load_latest(s->store, &m);

	if (rc)
		return rc;
	*latest = m;
	if (!(o = kv_scrub_add(s)))
		return -ENOMEM;
	kv_manifest_name(m->id, o->name, sizeof(o->name));
	o->kind = KV_SCRUB_MANIFEST;
	o->id = m->wal_replay_after;
	o->in_latest = 1;
	w.latest_after = m->wal_replay_after;
	w.m = m;
	/* Checkpoint manifests first, so objs[1 + i] is checkpoint i. */
	struct kv_manifest **cm = calloc(m->n_ckpt ? m->n_ckpt : 1, sizeof(*cm));
	if (!cm)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_ckpt; i++) {
		if (!(o = kv_scrub_add(s))) {
			rc = -ENOMEM;
			break;
		}
		kv_manifest_name(m->ckpts[i].manifest_id, o->name, sizeof(o->name));
		o->kind = KV_SCRUB_CHECKPOINT;
		o->ckpt = m->ckpts[i].name;
		if ((rc = kv_scrub_need(o, m->ckpts[i].name)))
			break;
		int lrc = kv_manifest_load(s->store, m->ckpts[i].manifest_id, &cm[i]);
		if (lrc == KV_ECORRUPT || lrc == -ENOENT) {
			o->id = m->ckpts[i].wal_id;     /* its WAL cannot be placed: none */
			continue;               /* reported when the worker reads it */
		}
		if ((rc = lrc))
			break;
		o->id = cm[i]->wal_replay_after;
	}
	if (!rc)
		rc = kv_scrub_add_tables(s, m, NULL);
	for (size_t i = 0; i < m->n_ckpt && !rc; i++)
		if (cm[i])
			rc = kv_scrub_add_tables(s, cm[i], m->ckpts[i].name);
	for (size_t i = 0; i < m->n_ckpt; i++)
		kv_manifest_free(cm[i]);
	free(cm);
	if (!rc)
		rc = obj_list_each(s->store, "wal/", 1000, kv_scrub_wal_cb, &w);
	return rc;
}

int kv_scrub(struct obj_backend *store, const struct kv_scrub_conf *conf,
	     struct kv_scrub_summary *sum)
{
	struct kv_scrub_run s = { .store = store, .conf = conf, .sum = sum };
	struct kv_manifest *latest = NULL;
	pthread_t tid[KV_SCRUB_JOBS_MAX];
	unsigned jobs = conf->jobs ? conf->jobs : 4, started = 0;
	int rc;

	memset(sum, 0, sizeof(*sum));
	if (jobs > KV_SCRUB_JOBS_MAX)
		jobs = KV_SCRUB_JOBS_MAX;
	CHECK_RETURN(pthread_mutex_init(&s.mu, NULL));
	rc = kv_scrub_plan(&s, &latest);
	if (rc == KV_ECORRUPT && s.n == 0) {
		/* The latest manifest itself: nothing else can be placed. */
		struct kv_corrupt_info ci;
		struct kv_scrub_obj *o = kv_scrub_add(&s);
		kv_corrupt_mine(&ci);
		if (o) {
			snprintf(o->name, sizeof(o->name), "%s", ci.object);
			o->kind = KV_SCRUB_MANIFEST;
			o->in_latest = 1;
			rc = kv_scrub_report(&s, o, KV_ECORRUPT, 0, 0, NULL);
			sum->objects = 1;
		}
		goto out;
	}
	if (rc)
		goto out;
	sum->planned = s.n;
	for (size_t i = 0; i < s.n; i++)
		sum->planned_bytes += s.objs[i].kind == KV_SCRUB_SST ? s.objs[i].meta.size : 0;
	if (jobs > s.n)
		jobs = s.n ? (unsigned)s.n : 1;
	for (unsigned i = 0; i < jobs; i++) {
		if (pthread_create(&tid[i], NULL, kv_scrub_worker, &s) != 0)
			break;
		started++;
	}
	if (!started)
		kv_scrub_worker(&s);            /* no thread to be had: do it here */
	for (unsigned i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	rc = s.err;
out:
	for (size_t i = 0; i < s.n; i++) {
		kv_sst_meta_clear(&s.objs[i].meta);
		free(s.objs[i].ckpts);
	}
	free(s.objs);
	kv_manifest_free(latest);
	pthread_mutex_destroy(&s.mu);
	return rc;
}
