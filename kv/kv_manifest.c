/*
 * kv_manifest.c - the manifest: which SSTs make up the store, how far the
 * WAL is folded into them, who the writer is, and the checkpoints. Each
 * change is a whole new object written with put_if_absent at the next id,
 * so the store's history of manifests is a chain of compare-and-swaps.
 *
 * MANIFEST OBJECT FORMAT (manifest/<20-digit zero-padded id>)
 *
 *   offset  size  field
 *   0       8     magic "SHMANIF\x01"
 *   8       4     format version, be32 (1 or 2: see "Version 2" below)
 *   12      8     id: this manifest's own id (must match the object name)
 *   20      8     writer_epoch: bumped by every writer open (fencing)
 *   28      8     compactor_epoch: bumped by every compactor start
 *   36      8     wal_replay_after: WAL objects with id <= this hold only
 *                 data already in the SSTs below; recovery replays ids above
 *   44      8     last_seq: every write with seq <= last_seq is in the SSTs;
 *                 replay skips WAL records at or below it
 *   52      8     next_run_id
 *   60      8     created_ns: wall clock when written (informational)
 *   68      ...   L0 list, newest first:   varint count, then SST metas
 *                 sorted runs, newest first: varint count, then per run:
 *                                          varint run_id, varint n, n metas
 *                 checkpoints:             varint count, then per checkpoint:
 *                   varint name length, name bytes, be64 manifest_id,
 *                   be64 wal_id, be64 created_ns, be64 expire_ns (0 = never)
 *   end-4   4     CRC32C of every byte before it, be32
 *
 *   SST meta: 16-byte ULID, varint size, varint entries, varint min_seq,
 *   varint max_seq, varint smallest-key length + bytes, varint largest-key
 *   length + bytes (internal keys); in format version 2 then the data
 *   tables its REF entries point into (kv_ref.c): varint count, then per
 *   data table, in ULID order: 16-byte ULID, varint object size, varint
 *   value bytes this table references in it.
 *
 * Version 2 differs from 1 only in those lists. A manifest none of whose
 * tables references a data table is written as version 1, so a store
 * that never used data tables stays readable by builds that predate them.
 *
 * A manifest that fails any check (magic, version, CRC, lengths, id that
 * does not match its name) is KV_ECORRUPT with the object named; there is
 * no partial decode.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MANIFEST_MAGIC "SHMANIF\x01"
#define MANIFEST_VERSION 2                /* the newest this build reads and writes */
#define MANIFEST_FIXED 68

void kv_manifest_name(uint64_t id, char *buf, size_t size)
{
	snprintf(buf, size, "manifest/%020" PRIu64, id);
}

void kv_wal_name(uint64_t id, char *buf, size_t size)
{
	snprintf(buf, size, "wal/%020" PRIu64, id);
}

int kv_name_id(const char *name, const char *prefix, uint64_t *id)
{
	size_t pl = strlen(prefix);
	uint64_t v = 0;
	if (strncmp(name, prefix, pl) || strlen(name) != pl + 20)
		return -EINVAL;
	for (const char *p = name + pl; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*id = v;
	return 0;
}

static void kv_run_clear(struct kv_run *r)
{
	for (size_t i = 0; i < r->n; i++)
		kv_sst_meta_clear(&r->ssts[i]);
	free(r->ssts);
	r->ssts = NULL;
	r->n = 0;
}

void kv_manifest_free(struct kv_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_l0; i++)
		kv_sst_meta_clear(&m->l0[i]);
	free(m->l0);
	for (size_t i = 0; i < m->n_runs; i++)
		kv_run_clear(&m->runs[i]);
	free(m->runs);
	for (size_t i = 0; i < m->n_ckpt; i++)
		free(m->ckpts[i].name);
	free(m->ckpts);
	free(m);
}

int kv_manifest_copy(struct kv_manifest **out, const struct kv_manifest *src)
{
	struct kv_manifest *m = calloc(1, sizeof(*m));
	int rc = -ENOMEM;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	*m = *src;
	m->l0 = NULL;
	m->runs = NULL;
	m->ckpts = NULL;
	m->n_l0 = m->n_runs = m->n_ckpt = 0;
	if (src->n_l0) {
		m->l0 = calloc(src->n_l0, sizeof(*m->l0));
		if (!m->l0)
			goto fail;
		for (; m->n_l0 < src->n_l0; m->n_l0++)
			if (kv_sst_meta_copy(&m->l0[m->n_l0], &src->l0[m->n_l0]))
				goto fail;
	}
	if (src->n_runs) {
		m->runs = calloc(src->n_runs, sizeof(*m->runs));
		if (!m->runs)
			goto fail;
		for (; m->n_runs < src->n_runs; m->n_runs++) {
			const struct kv_run *sr = &src->runs[m->n_runs];
			struct kv_run *dr = &m->runs[m->n_runs];
			dr->run_id = sr->run_id;
			dr->ssts = calloc(sr->n ? sr->n : 1, sizeof(*dr->ssts));
			if (!dr->ssts)
				goto fail;
			for (; dr->n < sr->n; dr->n++)
				if (kv_sst_meta_copy(&dr->ssts[dr->n], &sr->ssts[dr->n]))
					goto fail;
		}
	}
	if (src->n_ckpt) {
		m->ckpts = calloc(src->n_ckpt, sizeof(*m->ckpts));
		if (!m->ckpts)
			goto fail;
		for (; m->n_ckpt < src->n_ckpt; m->n_ckpt++) {
			m->ckpts[m->n_ckpt] = src->ckpts[m->n_ckpt];
			m->ckpts[m->n_ckpt].name = strdup(src->ckpts[m->n_ckpt].name);
			if (!m->ckpts[m->n_ckpt].name)
				goto fail;
		}
	}
	*out = m;
	return 0;
fail:
	kv_manifest_free(m);
	return rc;
}

/* ---- encoding ----------------------------------------------------------- */

static int enc_meta(struct kv_buf *b, const struct kv_sst_meta *s, unsigned version)
{
	int rc = kv_buf_append(b, s->id.b, 16);
	rc = rc ? rc : kv_buf_put_varint(b, s->size);
	rc = rc ? rc : kv_buf_put_varint(b, s->entries);
	rc = rc ? rc : kv_buf_put_varint(b, s->min_seq);
	rc = rc ? rc : kv_buf_put_varint(b, s->max_seq);
	rc = rc ? rc : kv_buf_put_varint(b, s->smallest_len);
	rc = rc ? rc : kv_buf_append(b, s->smallest, s->smallest_len);
	rc = rc ? rc : kv_buf_put_varint(b, s->largest_len);
	rc = rc ? rc : kv_buf_append(b, s->largest, s->largest_len);
	if (version < 2)
		return rc;
	rc = rc ? rc : kv_buf_put_varint(b, s->n_refs);
	for (size_t i = 0; !rc && i < s->n_refs; i++) {
		rc = kv_buf_append(b, s->refs[i].id.b, 16);
		rc = rc ? rc : kv_buf_put_varint(b, s->refs[i].size);
		rc = rc ? rc : kv_buf_put_varint(b, s->refs[i].bytes);
	}
	return rc;
}

/* 2 when a table of m references a data table, else 1. */
static unsigned kv_manifest_version(const struct kv_manifest *m)
{
	for (size_t i = 0; i < m->n_l0; i++)
		if (m->l0[i].n_refs)
			return 2;
	for (size_t i = 0; i < m->n_runs; i++)
		for (size_t j = 0; j < m->runs[i].n; j++)
			if (m->runs[i].ssts[j].n_refs)
				return 2;
	return 1;
}

int kv_manifest_encode(const struct kv_manifest *m, struct kv_buf *b)
{
	unsigned version = kv_manifest_version(m);
	int rc = kv_buf_append(b, MANIFEST_MAGIC, 8);
	rc = rc ? rc : kv_buf_put_be32(b, version);
	rc = rc ? rc : kv_buf_put_be64(b, m->id);
	rc = rc ? rc : kv_buf_put_be64(b, m->writer_epoch);
	rc = rc ? rc : kv_buf_put_be64(b, m->compactor_epoch);
	rc = rc ? rc : kv_buf_put_be64(b, m->wal_replay_after);
	rc = rc ? rc : kv_buf_put_be64(b, m->last_seq);
	rc = rc ? rc : kv_buf_put_be64(b, m->next_run_id);
	rc = rc ? rc : kv_buf_put_be64(b, m->created_ns);
	rc = rc ? rc : kv_buf_put_varint(b, m->n_l0);
	for (size_t i = 0; !rc && i < m->n_l0; i++)
		rc = enc_meta(b, &m->l0[i], version);
	rc = rc ? rc : kv_buf_put_varint(b, m->n_runs);
	for (size_t i = 0; !rc && i < m->n_runs; i++) {
		rc = kv_buf_put_varint(b, m->runs[i].run_id);
		rc = rc ? rc : kv_buf_put_varint(b, m->runs[i].n);
		for (size_t j = 0; !rc && j < m->runs[i].n; j++)
			rc = enc_meta(b, &m->runs[i].ssts[j], version);
	}
	rc = rc ? rc : kv_buf_put_varint(b, m->n_ckpt);
	for (size_t i = 0; !rc && i < m->n_ckpt; i++) {
		const struct kv_checkpoint *c = &m->ckpts[i];
		size_t nl = strlen(c->name);
		rc = kv_buf_put_varint(b, nl);
		rc = rc ? rc : kv_buf_append(b, c->name, nl);
		rc = rc ? rc : kv_buf_put_be64(b, c->manifest_id);
		rc = rc ? rc : kv_buf_put_be64(b, c->wal_id);
		rc = rc ? rc : kv_buf_put_be64(b, c->created_ns);
		rc = rc ? rc : kv_buf_put_be64(b, c->expire_ns);
	}
	rc = rc ? rc : kv_buf_put_be32(b, util_crc32c(0, b->data, b->len));
	return rc;
}

/* ---- decoding ----------------------------------------------------------- */

struct dec {
	const uint8_t *p, *end;
	int bad;
};

static uint64_t dec_varint(struct dec *d)
{
	uint64_t v = 0;
	size_t n;
	if (d->bad)
		return 0;
	n = kv_varint_get(d->p, d->end, &v);
	if (!n) {
		d->bad = 1;
		return 0;
	}
	d->p += n;
	return v;
}

static uint64_t dec_be64(struct dec *d)
{
	if (d->bad || d->end - d->p < 8) {
		d->bad = 1;
		return 0;
	}
	uint64_t v = util_get_be64(d->p);
	d->p += 8;
	return v;
}

/* Borrow n bytes; NULL (and bad) if they are not there. */
static const uint8_t *dec_bytes(struct dec *d, uint64_t n)
{
	if (d->bad || (uint64_t)(d->end - d->p) < n) {
		d->bad = 1;
		return NULL;
	}
	const uint8_t *r = d->p;
	d->p += n;
	return r;
}

/* A count that cannot exceed what the remaining bytes could hold. */
static size_t dec_count(struct dec *d, size_t min_item)
{
	uint64_t n = dec_varint(d);
	if (!d->bad && n > (uint64_t)(d->end - d->p) / min_item)
		d->bad = 1;
	return d->bad ? 0 : (size_t)n;
}

static int dec_meta(struct dec *d, struct kv_sst_meta *s, unsigned version)
{
	const uint8_t *id = dec_bytes(d, 16);
	if (id)
		memcpy(s->id.b, id, 16);
	s->size = dec_varint(d);
	s->entries = dec_varint(d);
	s->min_seq = dec_varint(d);
	s->max_seq = dec_varint(d);
	s->smallest_len = (size_t)dec_varint(d);
	const uint8_t *sm = dec_bytes(d, s->smallest_len);
	s->largest_len = (size_t)dec_varint(d);
	const uint8_t *lg = dec_bytes(d, s->largest_len);
	if (d->bad || s->smallest_len < KV_IKEY_TRAILER || s->largest_len < KV_IKEY_TRAILER) {
		d->bad = 1;
		s->smallest_len = s->largest_len = 0;
		return 0;
	}
	s->smallest = malloc(s->smallest_len);
	s->largest = malloc(s->largest_len);
	if (!s->smallest || !s->largest)
		return -ENOMEM;
	memcpy(s->smallest, sm, s->smallest_len);
	memcpy(s->largest, lg, s->largest_len);
	if (version < 2)
		return 0;
	size_t n = dec_count(d, 18);
	if (!n)
		return 0;
	s->refs = calloc(n, sizeof(*s->refs));
	if (!s->refs)
		return -ENOMEM;
	for (; s->n_refs < n && !d->bad; s->n_refs++) {
		struct kv_dref *r = &s->refs[s->n_refs];
		const uint8_t *rid = dec_bytes(d, 16);
		if (rid)
			memcpy(r->id.b, rid, 16);
		r->size = dec_varint(d);
		r->bytes = dec_varint(d);
		/* Sorted and distinct: lookups bsearch the list. */
		if (s->n_refs && memcmp(r[-1].id.b, r->id.b, 16) >= 0)
			d->bad = 1;
	}
	return 0;
}

/*
 * L0 is newest first, and a point read takes the first table that holds
 * the key: a table below an older one is shadowed by it. Flushes add
 * tables in seq order and a reclaim pass only narrows a table in its own
 * slot, so the seqs of L0 decrease from slot to slot. A manifest whose L0 does not (written by a
 * reclaim pass that put its replacements in each other's slots) is read
 * in seq order, and the writer's next manifest stores that order.
 */
static void kv_manifest_l0_order(const char *name, struct kv_manifest *m)
{
	size_t moved = 0;

	for (size_t i = 1; i < m->n_l0; i++) {
		struct kv_sst_meta t = m->l0[i];
		size_t j = i;
		for (; j > 0 && m->l0[j - 1].max_seq < t.max_seq; j--)
			m->l0[j] = m->l0[j - 1];
		if (j != i) {
			m->l0[j] = t;
			moved++;
		}
	}
	if (moved)
		UTIL_WARN("kv", "%s: %zu L0 tables were out of seq order; read in seq order "
			  "(the next manifest stores it)", name, moved);
}

int kv_manifest_decode(const char *name, const uint8_t *data, size_t len,
		       struct kv_manifest **out)
{
	struct kv_manifest *m = NULL;
	struct dec d;
	const char *why = NULL;
	int rc = 0;

	*out = NULL;
	if (len < MANIFEST_FIXED + 3 + 4) {
		why = "too short";
		goto corrupt;
	}
	if (memcmp(data, MANIFEST_MAGIC, 8)) {
		why = "bad magic";
		goto corrupt;
	}
	if (util_crc32c(0, data, len - 4) != util_get_be32(data + len - 4)) {
		why = "checksum mismatch";
		goto corrupt;
	}
	unsigned version = util_get_be32(data + 8);
	if (version < 1 || version > MANIFEST_VERSION) {
		return KV_CORRUPT(name, 8, "manifest format version %u is not supported (this "
				  "build reads 1 to %d)", version, MANIFEST_VERSION);
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	d.p = data + 12;
	d.end = data + len - 4;
	d.bad = 0;
	m->id = dec_be64(&d);
	m->writer_epoch = dec_be64(&d);
	m->compactor_epoch = dec_be64(&d);
	m->wal_replay_after = dec_be64(&d);
	m->last_seq = dec_be64(&d);
	m->next_run_id = dec_be64(&d);
	m->created_ns = dec_be64(&d);

	m->n_l0 = 0;
	size_t n = dec_count(&d, 21);
	if (n) {
		m->l0 = calloc(n, sizeof(*m->l0));
		if (!m->l0) {
			rc = -ENOMEM;
			goto fail;
		}
		for (; m->n_l0 < n && !d.bad; m->n_l0++)
			if ((rc = dec_meta(&d, &m->l0[m->n_l0], version)))
				goto fail;
	}
	n = dec_count(&d, 2);
	if (n) {
		m->runs = calloc(n, sizeof(*m->runs));
		if (!m->runs) {
			rc = -ENOMEM;
			goto fail;
		}
		for (; m->n_runs < n && !d.bad; m->n_runs++) {
			struct kv_run *r = &m->runs[m->n_runs];
			r->run_id = dec_varint(&d);
			size_t k = dec_count(&d, 21);
			r->ssts = calloc(k ? k : 1, sizeof(*r->ssts));
			if (!r->ssts) {
				rc = -ENOMEM;
				goto fail;
			}
			for (; r->n < k && !d.bad; r->n++)
				if ((rc = dec_meta(&d, &r->ssts[r->n], version)))
					goto fail;
		}
	}
	n = dec_count(&d, 33);
	if (n) {
		m->ckpts = calloc(n, sizeof(*m->ckpts));
		if (!m->ckpts) {
			rc = -ENOMEM;
			goto fail;
		}
		for (; m->n_ckpt < n && !d.bad; m->n_ckpt++) {
			struct kv_checkpoint *c = &m->ckpts[m->n_ckpt];
			uint64_t nl = dec_varint(&d);
			const uint8_t *nm = nl <= KV_CKPT_NAME_MAX ? dec_bytes(&d, nl) : NULL;
			if (!nm) {
				d.bad = 1;
				break;
			}
			c->name = strndup((const char *)nm, (size_t)nl);
			if (!c->name) {
				rc = -ENOMEM;
				goto fail;
			}
			c->manifest_id = dec_be64(&d);
			c->wal_id = dec_be64(&d);
			c->created_ns = dec_be64(&d);
			c->expire_ns = dec_be64(&d);
		}
	}
	if (d.bad) {
		why = "truncated or malformed field";
		goto corrupt;
	}
	if (d.p != d.end) {
		why = "trailing bytes";
		goto corrupt;
	}
	kv_manifest_l0_order(name, m);
	*out = m;
	return 0;
corrupt:
	rc = KV_CORRUPT(name, KV_CORRUPT_NO_OFFSET, "corrupt manifest: %s", why);
fail:
	kv_manifest_free(m);
	return rc;
}

/* ---- store operations --------------------------------------------------- */

static int kv_manifest_last_cb(void *arg, const char *name, uint64_t size)
{
	uint64_t *id = arg, v;
	(void)size;
	if (kv_name_id(name, "manifest/", &v) == 0 && v > *id)
		*id = v;
	return 0;
}

int kv_manifest_latest_id(struct obj_backend *store, uint64_t after, uint64_t *id)
{
	char start[48];
	int rc;

	/* Names are fixed-width, so listing after manifest/<after> sees only
	 * newer manifests: one request however many old ones GC has not
	 * removed yet. */
	*id = after;
	kv_manifest_name(after, start, sizeof(start));
	for (;;) {
		struct obj_list *l = NULL;
		rc = obj_list_page(store, "manifest/", after ? start : NULL, 1000, &l);
		if (rc)
			return rc;
		for (size_t i = 0; i < l->count; i++)
			kv_manifest_last_cb(id, l->entries[i].name, l->entries[i].size);
		int more = l->truncated && l->count > 0;
		if (more) {
			snprintf(start, sizeof(start), "%s", l->entries[l->count - 1].name);
			after = 1;
		}
		obj_list_free(l);
		if (!more)
			return 0;
	}
}

int kv_manifest_load(struct obj_backend *store, uint64_t id, struct kv_manifest **out)
{
	char name[64];
	void *data = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	kv_manifest_name(id, name, sizeof(name));
	rc = kv_obj_get(store, name, 0, OBJ_WHOLE, &data, &len);
	if (rc) {
		if (rc != -ENOENT)
			UTIL_ERROR("kv", "loading %s: %s", name, kv_strerror(rc));
		return rc;
	}
	rc = kv_manifest_decode(name, data, len, out);
	obj_buf_free(data);
	if (rc == 0 && (*out)->id != id) {
		rc = KV_CORRUPT(name, KV_CORRUPT_NO_OFFSET, "corrupt manifest: it says it is id %"
				PRIu64, (*out)->id);
		kv_manifest_free(*out);
		*out = NULL;
	}
	return rc;
}

int kv_manifest_load_latest(struct obj_backend *store, struct kv_manifest **out)
{
	return kv_manifest_load_latest_after(store, 0, out);
}

int kv_manifest_load_latest_after(struct obj_backend *store, uint64_t after,
				  struct kv_manifest **out)
{
	uint64_t id;
	int rc;

	*out = NULL;
	for (int attempt = 0;; attempt++) {
		rc = kv_manifest_latest_id(store, attempt ? 0 : after, &id);
		if (rc)
			return rc;
		if (id == 0)
			return -ENOENT;
		rc = kv_manifest_load(store, id, out);
		/* GC may delete an old manifest between list and get; a newer one
		 * then exists. */
		if (rc != -ENOENT || attempt >= 5)
			return rc;
	}
}

int kv_manifest_store(struct obj_backend *store, struct kv_manifest *m, uint64_t id)
{
	struct kv_buf b = { 0 };
	char name[64];
	int rc;

	m->id = id;
	m->created_ns = util_wall_ns();
	rc = kv_manifest_encode(m, &b);
	if (rc == 0) {
		kv_manifest_name(id, name, sizeof(name));
		rc = obj_put_if_absent(store, name, b.data, b.len);
	}
	kv_buf_free(&b);
	return rc;
}

/* One table and the data tables it references. */
static int kv_manifest_each_one(const struct kv_sst_meta *t, kv_sst_id_fn fn, void *arg)
{
	int rc = fn(arg, &t->id);
	for (size_t i = 0; i < t->n_refs && !rc; i++)
		rc = fn(arg, &t->refs[i].id);
	return rc;
}

int kv_manifest_each_sst(const struct kv_manifest *m, kv_sst_id_fn fn, void *arg)
{
	int rc = 0;
	for (size_t i = 0; i < m->n_l0 && !rc; i++)
		rc = kv_manifest_each_one(&m->l0[i], fn, arg);
	for (size_t i = 0; i < m->n_runs; i++)
		for (size_t t = 0; t < m->runs[i].n && !rc; t++)
			rc = kv_manifest_each_one(&m->runs[i].ssts[t], fn, arg);
	return rc;
}

const struct kv_checkpoint *kv_manifest_find_ckpt(const struct kv_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n_ckpt; i++)
		if (!strcmp(m->ckpts[i].name, name))
			return &m->ckpts[i];
	return NULL;
}
