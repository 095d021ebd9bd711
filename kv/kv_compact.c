/*
 * kv_compact.c - the compactor thread: size-tiered merging of L0 tables
 * into sorted runs and of similar-sized runs into bigger ones.
 *
 * DESIGN
 *   The LSM below the memtables is L0 (newest first, overlapping tables,
 *   one per memtable flush) and a list of sorted runs (newest first; each
 *   a set of non-overlapping tables). Every L0 table is newer than every
 *   run. Two kinds of job keep that shape small:
 *     L0 job   when L0 holds l0_compact_trigger tables, merge all of them
 *              into one new run, placed first (newest) in the run list
 *              (l0_bulk_trigger tables while a bulk load runs: BULK LOADS);
 *     run job  merge a window of adjacent runs whose sizes are within a
 *              factor of two of the window so far (a binary-counter policy:
 *              run sizes roughly double with age, so there are O(log n)
 *              runs and each byte is rewritten O(log n) times).
 *   Only adjacent runs are merged, so the age order stays intact.
 *
 * IDLE MERGE
 *   Below the trigger, up to l0_compact_trigger - 1 L0 tables would stay
 *   forever once writes stop, each holding newer copies of keys the runs
 *   also hold: every lookup probes them, and the block cache holds both
 *   copies (kvbench readrandom after an overwrite: 2 L0 tables made the
 *   working set ~35% larger than LevelDB's and cost 2.8x its cache
 *   misses). So when neither writes nor L0 have changed for
 *   idle_compact_ms, L0 is merged
 *   as if it were one run of its total size: together with the newest
 *   runs of at most 4x the window so far (looser than the run-job rule's
 *   2x: the store is idle, and a 1/4-size L0 is 25% space amplification
 *   otherwise), or alone when it has 2+ tables or nothing under it. A
 *   lone L0 table over a run more than 4x its size is left alone:
 *   rewriting the run for it would cost more than it saves. Each idle
 *   merge rewrites at most ~5x the L0 bytes, once per idle period.
 *
 *   A sequential read is not idle time: this merge, like every job, waits
 *   for it (READS FIRST below). Random reads do not hold it off: they are
 *   what it is for (kvbench readrandom above).
 *
 *   Before that, an idle writer's memtable is frozen, and so flushed, for
 *   the same reasons and two more: its memory (up to memtable_bytes) is
 *   released, and a restart has no WAL to replay. The flush changes L0,
 *   so idle_compact_ms later the idle merge folds the new table in.
 *
 *   Output is split into tables of at most sst_max_bytes, only between
 *   user keys, so all versions of a key live in one table of a run and a
 *   run lookup needs one table.
 *
 *   Versions are dropped when no live snapshot can see them (for each key:
 *   the newest version, plus the newest at or below each snapshot).
 *   Tombstones are dropped only when the job includes the oldest run (the
 *   bottom): there is nothing older for them to hide. Checkpoints need no
 *   special care here: they pin whole manifests, and GC keeps their tables.
 *
 * SHORT OF ROOM
 *   A job needs room for its output before its inputs can go, and a full
 *   store has none: after a job fails for space, the next ones merge
 *   only the oldest half of L0 (a quarter after two failures, ... at
 *   least two tables) into a new newest run - still above every run and
 *   below the L0 tables left - and run jobs wait. Writers stalled at
 *   l0_max get room back a few tables at a time, each job's inputs freed
 *   by GC at once (kv_gc.c, A FULL STORE). A job that works while the
 *   store takes writes ends it.
 *
 * COMMIT
 *   Outputs are written first (fresh ULID names), then the manifest CAS
 *   (kv_manifest_update) re-validates the job against the newest manifest:
 *   every input must still be where the job found it. If not, the job is
 *   abandoned and its outputs become garbage for the GC.
 *
 * ERRORS (the reason this file exists)
 *   A store error or a cancelled I/O at any step, including reloading the
 *   manifest, is retried with backoff. A corrupt input table is found by
 *   verifying the inputs, quarantined (never compacted again; reported in
 *   stats and the log), and the engine keeps serving reads and writes. A
 *   newer compactor epoch in the manifest means another compactor took
 *   over: this one stops quietly. Nothing here exits, aborts or asserts on
 *   store data.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_COMPACT_IDLE_MS 1000       /* re-check for work at least this often */
#define KV_COMPACT_MAX_RUNS 24        /* above this, merge the smallest pair */
#define KV_COMPACT_IDLE_FACTOR 4      /* IDLE MERGE: runs up to 4x the window so far */

struct kv_compact_job {
	int l0;                           /* 1 = every L0 table is an input */
	struct kv_sst_id *ids;            /* every input table, L0 ones first */
	size_t n_ids;
	size_t n_l0_ids;                  /* of which in L0 */
	uint64_t *run_ids;                /* input runs, newest first, adjacent
					   * (and the newest runs for an L0 job) */
	size_t n_runs;
	int bottom;                       /* the window ends at the oldest run */
	uint64_t bytes_in;
	struct kv_version *ver;           /* pinned: the inputs' readers */
	uint64_t *snaps;                  /* live snapshot seqs, ascending */
	size_t n_snaps;
	struct kv_run out;                /* output tables (run_id set at commit) */
	struct kv_sst_id *data_ids;       /* data tables it wrote (REWRITING, kv_ref.c) */
	size_t n_data_ids;
	uint64_t data_bytes;              /* their bytes */
	uint64_t rewritten;               /* value bytes copied into them */
	struct kv_dref *rewrite;          /* data tables whose values it copies */
	size_t n_rewrite;
	struct kv_sst_id bad_data;        /* a data table that failed a copy (corrupt) */
	int has_bad_data;
};

static void kv_compact_job_free(struct kv_db *db, struct kv_compact_job *j)
{
	/* Committed or abandoned: either way no longer in flight. */
	for (size_t i = 0; i < j->out.n; i++)
		kv_pending_del(db, &j->out.ssts[i].id);
	for (size_t i = 0; i < j->n_data_ids; i++)
		kv_pending_del(db, &j->data_ids[i]);
	free(j->data_ids);
	free(j->rewrite);
	free(j->ids);
	free(j->run_ids);
	free(j->snaps);
	for (size_t i = 0; i < j->out.n; i++)
		kv_sst_meta_clear(&j->out.ssts[i]);
	free(j->out.ssts);
	kv_version_unref(j->ver);
	memset(j, 0, sizeof(*j));
}

static int kv_compact_quarantined(struct kv_db *db, const struct kv_sst_id *id)
{
	for (size_t i = 0; i < db->n_quarantine; i++)
		if (!memcmp(db->quarantine[i].b, id->b, 16))
			return 1;
	return 0;
}

static uint64_t kv_run_bytes(const struct kv_run *r)
{
	uint64_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		n += r->ssts[i].size;
	return n;
}

static int kv_compact_add_id(struct kv_compact_job *j, const struct kv_sst_meta *m)
{
	struct kv_sst_id *ids = realloc(j->ids, (j->n_ids + 1) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	j->ids = ids;
	j->ids[j->n_ids++] = m->id;
	j->bytes_in += m->size;
	return 0;
}

/* End of the window that starts with `sum` bytes and takes runs from
 * index k on while each is at most factor x the window so far. */
static size_t kv_compact_window(const struct kv_manifest *m, size_t k, uint64_t sum,
				uint64_t factor)
{
	while (k < m->n_runs && kv_run_bytes(&m->runs[k]) <= factor * sum)
		sum += kv_run_bytes(&m->runs[k++]);
	return k;
}

/*
 * REWRITING (kv_ref.c): whether data table d of the current version is
 * mostly dead - its live values under data_rewrite_pct of its size - with
 * enough dead bytes to be worth a copy (a sixteenth of a memtable), and is
 * readable (not quarantined: a copy from it failed).
 */
static int kv_compact_data_dead(const struct kv_db *db, const struct kv_vdata *d)
{
	return db->conf.data_rewrite_pct && d->r && d->live < d->size &&
	       d->live * 100 < d->size * db->conf.data_rewrite_pct &&
	       d->size - d->live >= db->conf.memtable_bytes / 16 &&
	       !kv_compact_quarantined((struct kv_db *)db, &d->id);
}

/*
 * A run job of its own for REWRITING: with no other job, the run that
 * references the most bytes in mostly dead data tables (*first), merged
 * alone so that its REFs into them move to a new data table. Each such
 * job leaves its run referencing none of them (the job copies every
 * value it meets in one), so they end. Runs only: L0 goes to a run soon.
 */
static int kv_compact_rewrite_run(const struct kv_db *db, const struct kv_manifest *m,
				  size_t *first)
{
	const struct kv_version *v = db->ver;
	uint64_t best = 0;

	if (!db->conf.data_rewrite_pct || !v || v->man != m || db->compact_space_fails ||
	    db->store_err)
		return 0;
	for (size_t i = 0; i < m->n_runs; i++) {
		uint64_t b = 0;
		for (size_t t = 0; t < m->runs[i].n; t++) {
			const struct kv_sst_meta *tm = &m->runs[i].ssts[t];
			for (size_t k = 0; k < tm->n_refs; k++) {
				const struct kv_vdata *d = kv_version_data_find(v, &tm->refs[k].id);
				if (d && kv_compact_data_dead(db, d))
					b += tm->refs[k].bytes;
			}
		}
		if (b > best) {
			best = b;
			*first = i;
		}
	}
	return best > 0;
}

/*
 * What to merge next in manifest m: *l0 (every L0 table) and runs
 * [*first, *first + *n). Returns 1 if there is a job. idle: L0 has not
 * changed for idle_compact_ms (see IDLE MERGE). Pure: no allocation.
 */
static int kv_compact_choose(const struct kv_db *db, const struct kv_manifest *m, int idle,
			     int *l0, size_t *first, size_t *n)
{
	*l0 = 0;
	*first = *n = 0;
	if (m->n_l0 >= db->conf.l0_compact_trigger) {
		*l0 = 1;
		return 1;
	}
	if (idle && m->n_l0 > 0) {
		uint64_t sum = 0;
		for (size_t i = 0; i < m->n_l0; i++)
			sum += m->l0[i].size;
		size_t k = kv_compact_window(m, 0, sum, KV_COMPACT_IDLE_FACTOR);
		/* A lone table with nothing below is merged too: cheap, and
		 * the bottom drops the versions and tombstones it shadows. */
		if (m->n_l0 >= 2 || k >= 1 || m->n_runs == 0) {
			*l0 = 1;
			*n = k;
			return 1;
		}
	}
	for (size_t i = 0; i + 1 < m->n_runs && !*n; i++) {
		size_t k = kv_compact_window(m, i + 1, kv_run_bytes(&m->runs[i]), 2);
		if (k - i >= 2) {
			*first = i;
			*n = k - i;
		}
	}
	if (!*n && kv_compact_rewrite_run(db, m, first))
		*n = 1;
	if (!*n && m->n_runs > KV_COMPACT_MAX_RUNS) {
		uint64_t best = UINT64_MAX;
		for (size_t i = 0; i + 1 < m->n_runs; i++) {
			uint64_t s = kv_run_bytes(&m->runs[i]) + kv_run_bytes(&m->runs[i + 1]);
			if (s < best) {
				best = s;
				*first = i;
				*n = 2;
			}
		}
	}
	return *n > 0;
}

/* Whether nothing was written and L0 stayed as it is for idle_compact_ms
 * (mu held). The compactor notes when it last saw either change (it looks
 * at least every KV_COMPACT_IDLE_MS); a flush or a job changes the newest
 * L0 table or the count, a write changes last_seq. */
static int kv_compact_idle(struct kv_db *db)
{
	KV_MU_HELD(db);
	const struct kv_manifest *m = db->ver->man;
	uint64_t now = util_now_ns();
	struct kv_sst_id newest = { { 0 } };

	if (m->n_l0)
		newest = m->l0[0].id;
	if (m->n_l0 != db->idle_l0_n || memcmp(newest.b, db->idle_l0_newest.b, 16) ||
	    db->last_seq != db->idle_seq) {
		db->idle_seq = db->last_seq;
		db->idle_l0_n = m->n_l0;
		db->idle_l0_newest = newest;
		db->idle_l0_since_ns = now;
	}
	return db->conf.idle_compact_ms != KV_IDLE_COMPACT_NEVER &&
	       now - db->idle_l0_since_ns >= (uint64_t)db->conf.idle_compact_ms * 1000000ull;
}

/* The window READS FIRST and BULK LOADS look back over: idle_compact_ms,
 * or its default when idle merges are off. */
static uint64_t kv_compact_window_ns(const struct kv_db *db)
{
	return (uint64_t)(db->conf.idle_compact_ms != KV_IDLE_COMPACT_NEVER
			  ? db->conf.idle_compact_ms : KV_DFLT_IDLE_COMPACT_MS) * 1000000ull;
}

/*
 * READS FIRST: whether jobs wait for a sequential read (mu held). They do
 * while nothing has been written for the window, reads have fetched
 * read-ahead spans within it, and no writer waits (a writer stalled at l0_max writes
 * nothing while it waits for the compactor). The compactor's first
 * window after open counts as reading: a store mounted to be read gets
 * its reads going before a job left over from the last writer starts.
 * Any write ends the wait. Only foreground spans of sequential streams
 * count (kv_ra_span): not compaction inputs' own, and not the
 * guessed spans of random misses (GUESSES in kv_readahead.c), so random
 * reads, which the idle merge is for, never hold a job off. Without the
 * wait, a 1 GiB file read back on s3:// right after it was written meets
 * a merge of that 1 GiB left by the writer, and the two share the store
 * and the CPU.
 */
static int kv_compact_reads_first(struct kv_db *db)
{
	KV_MU_HELD(db);
	uint64_t now = util_now_ns(), win = kv_compact_window_ns(db);
	struct kv_ra_stats ra = { 0 };

	if (db->cache)
		kv_ra_stats(db->cache, &ra);
	if (db->last_seq != db->rf_seq) {
		db->rf_seq = db->last_seq;
		db->rf_write_ns = now;
	}
	if (ra.fg_spans != db->rf_spans) {
		db->rf_spans = ra.fg_spans;
		db->rf_read_ns = now;
	}
	return db->writers_waiting == 0 && now - db->rf_write_ns >= win &&
	       now - db->rf_read_ns < win;
}

/*
 * BULK LOADS: whether jobs wait for a bulk load to end (mu held). They do
 * while writes have filled a memtable within the window and L0 holds
 * fewer than l0_bulk_trigger tables. A bulk load (a big file copied in, a
 * restore, a database load) fills a memtable every fraction of a second,
 * and merging its tables while it runs makes it pay twice: every byte is
 * PUT to L0, then read back and PUT again by the merge, and a merge of 4
 * tables is merged again with the next (binary-counter policy), where one
 * merge after the load rewrites each byte once: holding the jobs saves
 * the merge's GETs and a share of the PUTs before the load's fsync
 * returns (docs/kv-format.md, "Bulk loads"). RocksDB's defaults make the same
 * trade: compaction from 4 L0 files, writes slowed from 20, stopped at 36.
 *   A steady trickle of writes is not a bulk load: it fills a memtable
 *   rarely, so it never holds jobs for long, and idle merges (IDLE MERGE)
 *   still keep L0 short for random reads. The price is read amplification
 *   while the load runs: a lookup probes up to l0_bulk_trigger tables'
 *   filters (in memory) instead of 4; a scan merges that many tables.
 *   l0_bulk_trigger (3/4 of l0_max) keeps l0_max - l0_bulk_trigger tables
 *   of room for writes while the job that ends the hold runs.
 */
static int kv_compact_bulk_load(struct kv_db *db)
{
	KV_MU_HELD(db);
	int hold = db->bulk_full_ns && util_now_ns() - db->bulk_full_ns < kv_compact_window_ns(db) &&
		   db->ver->man->n_l0 < db->conf.l0_bulk_trigger;

	if (hold && !db->bulk_holding)
		db->bulk_holds++;
	db->bulk_holding = hold;
	return hold;
}

/* kv_compact_wanted - whether the compactor (or the flusher) has work now
 * or once the writer has been idle long enough (mu held); for stats. */
int kv_compact_wanted(const struct kv_db *db)
{
	KV_MU_HELD(db);
	int idle = db->conf.idle_compact_ms != KV_IDLE_COMPACT_NEVER, l0;
	size_t first, n;
	return db->conf.no_background == 0 &&
	       (db->n_imm > 0 || (idle && kv_mem_count(db->mem) > 0) ||
		kv_compact_choose(db, db->ver->man, idle, &l0, &first, &n));
}

/*
 * Choose a job from the current version (mu held). Returns 1 with *j
 * filled, 0 when there is nothing to do, or -ENOMEM.
 */
static int kv_compact_pick(struct kv_db *db, struct kv_compact_job *j)
{
	KV_MU_HELD(db);
	const struct kv_manifest *m = db->ver->man;
	size_t first, n;
	int l0, rc;

	memset(j, 0, sizeof(*j));
	/* An idle merge waits for the idle flush: merging L0 while the
	 * memtable's table is on its way would leave that one behind. */
	int idle = kv_compact_idle(db) && db->n_imm == 0 && kv_mem_count(db->mem) == 0;
	size_t l0_from = 0;
	if (db->compact_space_fails) {
		/* SHORT OF ROOM: only the oldest L0 tables, into a new run. */
		if (m->n_l0 < 2)
			return 0;
		l0 = 1;
		first = n = 0;
		size_t take = m->n_l0 >> db->compact_space_fails;
		take = take < 2 ? 2 : take;
		l0_from = m->n_l0 - take;
	} else if (!kv_compact_choose(db, m, idle, &l0, &first, &n)) {
		return 0;
	}
	if (l0) {
		for (size_t i = l0_from; i < m->n_l0; i++)
			if (kv_compact_quarantined(db, &m->l0[i].id))
				return 0;
		j->l0 = 1;
		for (size_t i = l0_from; i < m->n_l0; i++)
			if ((rc = kv_compact_add_id(j, &m->l0[i])))
				goto fail;
		j->n_l0_ids = j->n_ids;
	}
	if (n) {
		j->run_ids = calloc(n, sizeof(*j->run_ids));
		if (!j->run_ids) {
			rc = -ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < n; i++) {
			const struct kv_run *r = &m->runs[first + i];
			j->run_ids[j->n_runs++] = r->run_id;
			for (size_t t = 0; t < r->n; t++) {
				if (kv_compact_quarantined(db, &r->ssts[t].id)) {
					kv_compact_job_free(db, j);
					return 0;
				}
				if ((rc = kv_compact_add_id(j, &r->ssts[t])))
					goto fail;
			}
		}
	}
	j->bottom = first + n == m->n_runs;
	/* The data tables whose values this job copies (REWRITING), decided
	 * here once, against the version it reads; none while the store is
	 * short of room (a copy needs room before its source can go). */
	for (size_t i = 0; i < db->ver->n_data && !db->compact_space_fails && !db->store_err; i++)
		if (kv_compact_data_dead(db, &db->ver->data[i]) &&
		    (rc = kv_dref_add(&j->rewrite, &j->n_rewrite, &db->ver->data[i].id,
				      db->ver->data[i].size, 0)))
			goto fail;
	/* Snapshots alive now; any taken later sees only the newest versions. */
	if ((rc = kv_snapshot_seqs(db, &j->snaps, &j->n_snaps)))
		goto fail;
	j->ver = db->ver;
	kv_version_ref(j->ver);
	return 1;
fail:
	kv_compact_job_free(db, j);
	return rc;
}

static int kv_compact_has_id(const struct kv_compact_job *j, const struct kv_sst_id *id);

/* The input readers of a job, as iterators (newest first). */
static int kv_compact_inputs(struct kv_compact_job *j, struct kv_iter **out)
{
	const struct kv_manifest *m = j->ver->man;
	struct kv_iter **kids = calloc(j->n_ids ? j->n_ids : 1, sizeof(*kids));
	size_t n = 0;
	int rc = 0;

	if (!kids)
		return -ENOMEM;
	if (j->l0) {
		for (size_t i = 0; i < m->n_l0 && !rc; i++)
			if (kv_compact_has_id(j, &m->l0[i].id) &&
			    (rc = kv_sst_iter_create_ext(&kids[n], j->ver->l0[i], 1)) == 0)
				n++;
	}
	{
		for (size_t i = 0; i < m->n_runs && !rc; i++) {
			int in = 0;
			for (size_t k = 0; k < j->n_runs; k++)
				in |= m->runs[i].run_id == j->run_ids[k];
			for (size_t t = 0; in && t < m->runs[i].n && !rc; t++)
				if ((rc = kv_sst_iter_create_ext(&kids[n], j->ver->runs[i].r[t], 1)) == 0)
					n++;
		}
	}
	if (!rc)
		rc = kv_merge_iter_create(out, kids, n);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			kids[i]->ops->free(kids[i]);
		free(kids);
	}
	return rc;
}

/* One buffered version of the current user key. */
struct kv_kept {
	uint8_t *k, *v;
	size_t kl, vl;
};

struct kv_compact_out {
	struct kv_db *db;
	struct kv_compact_job *j;
	struct kv_sst_builder *b;
	struct kv_kept *kept;
	size_t n_kept, cap_kept;
	uint64_t n_seen;               /* input entries read */
	struct kv_buf spare;           /* an uploaded output's buffer, for the next */
	/* The data table of the current output table: values copied out of
	 * data tables that are mostly dead (kv_ref.c, REWRITING). */
	struct kv_sst_builder *d;
	struct kv_sst_id d_id;
	uint64_t d_size;               /* its object size once uploaded, else 0 */
	struct kv_buf key;             /* scratch: a value's key in it */
};

/* Upload an output of the job (pending: protected from GC until the job
 * commits or is abandoned), retrying store errors with backoff. */
static int kv_compact_put(struct kv_compact_out *o, const char *name, const uint8_t *data,
			  size_t len)
{
	unsigned attempt = 0;
	int rc;

	while ((rc = obj_put(o->db->store, name, data, len)) != 0) {
		kv_mutex_lock(&o->db->mu);
		kv_health_fail(&o->db->compact_health, rc);
		/* Writers stalled at l0_max wait for this job: they are told
		 * (STORE FAILURES, kv_health.c) instead of waiting on. */
		kv_db_store_failed(o->db, "compaction output upload", rc);
		o->db->compaction_retries++;
		int stop = o->db->shutdown;
		int reclaim = kv_reclaim_wanted(o->db);
		kv_mutex_unlock(&o->db->mu);
		if (stop) {
			rc = -ECANCELED;        /* dropped at close, like the merge loop */
			break;
		}
		if (reclaim)
			break;          /* the job is retried after the reclaim pass */
		kv_db_backoff(o->db, attempt++);
	}
	if (rc == 0 && attempt) {
		kv_mutex_lock(&o->db->mu);
		kv_db_store_ok(o->db);
		kv_mutex_unlock(&o->db->mu);
	}
	return rc;
}

/* Finish the current output's data table, if it has one, and upload it. */
static int kv_compact_seal_data(struct kv_compact_out *o)
{
	struct kv_sst_meta meta = { 0 };
	uint8_t *data = NULL;
	size_t len = 0;
	char name[64];
	int rc;

	if (!o->d)
		return 0;
	rc = kv_sst_builder_finish(o->d, &data, &len, &meta);
	kv_sst_builder_free(o->d);
	o->d = NULL;
	kv_sst_meta_clear(&meta);
	if (rc)
		return rc;
	struct kv_sst_id *ids = realloc(o->j->data_ids, (o->j->n_data_ids + 1) * sizeof(*ids));
	if (!ids || (rc = kv_pending_add(o->db, &o->d_id))) {
		if (ids)
			o->j->data_ids = ids;
		free(data);
		return ids ? rc : -ENOMEM;
	}
	o->j->data_ids = ids;
	ids[o->j->n_data_ids++] = o->d_id;
	kv_sst_id_name(&o->d_id, name, sizeof(name));
	rc = kv_compact_put(o, name, data, len);
	free(data);
	if (rc == 0) {
		o->d_size = len;
		o->j->data_bytes += len;
	}
	return rc;
}

/* kv_sst_options.ref_size of an output: its own data table, or the
 * version's. */
static int kv_compact_ref_size(void *arg, const struct kv_sst_id *id, uint64_t *size)
{
	struct kv_compact_out *o = arg;
	if (o->d_size && !memcmp(id->b, o->d_id.b, 16)) {
		*size = o->d_size;
		return 0;
	}
	return kv_version_ref_size(o->j->ver, id, size);
}

/* Finish the current output table and upload it. */
static int kv_compact_seal(struct kv_compact_out *o)
{
	struct kv_sst_meta meta = { 0 };
	uint8_t *data = NULL;
	size_t len = 0;
	char name[64];
	int rc;

	if (!o->b)
		return 0;
	/* Its data table first: the table's REFs name it. */
	o->d_size = 0;
	rc = kv_compact_seal_data(o);
	if (!rc)
		rc = kv_sst_builder_finish(o->b, &data, &len, &meta);
	kv_sst_builder_free(o->b);
	o->b = NULL;
	if (rc)
		return rc;
	kv_sst_id_new(&meta.id);
	meta.size = len;
	kv_sst_id_name(&meta.id, name, sizeof(name));
	rc = kv_pending_add(o->db, &meta.id);
	if (rc) {
		free(data);
		kv_sst_meta_clear(&meta);
		return rc;
	}
	rc = kv_compact_put(o, name, data, len);
	/* The next output of this job builds in it (as kv_flush_one does). */
	kv_buf_keep_spare(&o->spare, data, len, SIZE_MAX);
	if (rc) {
		kv_pending_del(o->db, &meta.id);
		kv_sst_meta_clear(&meta);
		return rc;
	}
	struct kv_sst_meta *s = realloc(o->j->out.ssts, (o->j->out.n + 1) * sizeof(*s));
	if (!s) {
		kv_pending_del(o->db, &meta.id);
		kv_sst_meta_clear(&meta);
		return -ENOMEM;
	}
	o->j->out.ssts = s;
	s[o->j->out.n++] = meta;
	return 0;
}

/*
 * A kept REF entry e whose data table is mostly dead (REWRITING, kv_ref.c):
 * its value goes into the output's data table and e's value becomes a REF
 * to that. A damaged or missing data table keeps its REF as it is (reads
 * report it; the job must not fail on it forever).
 */
static int kv_compact_rewrite(struct kv_compact_out *o, struct kv_kept *e)
{
	struct kv_db *db = o->db;
	struct kv_ref ref;
	uint8_t *val = NULL, refv[KV_REF_MAX];
	size_t vl = 0;
	int rc;

	if (!o->j->n_rewrite || kv_ref_decode(e->v, e->vl, &ref) ||
	    !kv_dref_lookup(o->j->rewrite, o->j->n_rewrite, &ref.id))
		return 0;
	rc = kv_version_ref_read(o->j->ver, NULL, e->k, e->kl - KV_IKEY_TRAILER, e->v, e->vl,
				 NULL, &val, &vl);
	if (rc == KV_ECORRUPT) {
		/* Left as it is, and never chosen again (kv_compact_data_dead). */
		o->j->bad_data = ref.id;
		o->j->has_bad_data = 1;
		return 0;
	}
	if (rc != 1)
		return rc < 0 ? rc : -EIO;
	if (!o->d) {
		struct kv_sst_options dopt = {
			.compression_level = db->conf.compression_level,
			.bloom_bits_per_key = -1,
		};
		rc = kv_sst_builder_create(&o->d, &dopt);
		if (rc)
			goto out;
		kv_sst_id_new(&o->d_id);
	}
	o->key.len = 0;
	rc = kv_buf_append(&o->key, e->k, e->kl);
	if (rc)
		goto out;
	o->key.data[e->kl - 1] = KV_TYPE_VALUE;
	rc = kv_sst_builder_add(o->d, o->key.data, o->key.len, val, vl);
	if (rc)
		goto out;
	o->j->rewritten += vl;
	ref.id = o->d_id;
	size_t n = kv_ref_encode(refv, &ref);
	uint8_t *nv = malloc(n);
	if (!nv) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(nv, refv, n);
	free(e->v);
	e->v = nv;
	e->vl = n;
out:
	free(val);
	return rc;
}

/* Emit the buffered versions of one user key. */
static int kv_compact_flush_key(struct kv_compact_out *o)
{
	int rc = 0;
	size_t n = o->n_kept;
	size_t max = o->db->conf.sst_max_bytes;

	/* At the bottom, a tombstone that is the oldest kept version hides
	 * nothing: drop it (and repeat). */
	while (o->j->bottom && n > 0 &&
	       kv_ikey_type(o->kept[n - 1].k, o->kept[n - 1].kl) == KV_TYPE_DELETE)
		n--;
	if (n > 0 && o->b && (kv_sst_builder_size(o->b) >= max ||
			      (o->d && kv_sst_builder_size(o->d) >= max)))
		rc = kv_compact_seal(o);
	if (!rc && n > 0 && !o->b) {
		struct kv_sst_options opt = {
			.compression_level = o->db->conf.compression_level,
			.bloom_bits_per_key = o->db->conf.bloom_bits_per_key,
			.ref_size = kv_compact_ref_size,
			.ref_arg = o,
		};
		rc = kv_sst_builder_create(&o->b, &opt);
		if (!rc)
			kv_sst_builder_reuse(o->b, &o->spare);
	}
	for (size_t i = 0; i < n && !rc; i++) {
		if (kv_ikey_type(o->kept[i].k, o->kept[i].kl) == KV_TYPE_REF)
			rc = kv_compact_rewrite(o, &o->kept[i]);
		if (!rc)
			rc = kv_sst_builder_add(o->b, o->kept[i].k, o->kept[i].kl, o->kept[i].v,
						o->kept[i].vl);
	}
	for (size_t i = 0; i < o->n_kept; i++) {
		free(o->kept[i].k);
		free(o->kept[i].v);
	}
	o->n_kept = 0;
	return rc;
}

static int kv_compact_keep(struct kv_compact_out *o, const uint8_t *k, size_t kl,
			   const uint8_t *v, size_t vl)
{
	if (o->n_kept == o->cap_kept) {
		size_t cap = o->cap_kept ? o->cap_kept * 2 : 8;
		struct kv_kept *p = realloc(o->kept, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		o->kept = p;
		o->cap_kept = cap;
	}
	struct kv_kept *e = &o->kept[o->n_kept];
	e->k = malloc(kl);
	e->v = malloc(vl ? vl : 1);
	if (!e->k || !e->v) {
		free(e->k);
		free(e->v);
		return -ENOMEM;
	}
	memcpy(e->k, k, kl);
	if (vl)
		memcpy(e->v, v, vl);
	e->kl = kl;
	e->vl = vl;
	o->n_kept++;
	return 0;
}

/* Merge the inputs into output tables. */
/* Is the handle closing? */
static int kv_compact_stopping(struct kv_db *db)
{
	kv_mutex_lock(&db->mu);
	int stop = db->shutdown != 0;
	kv_mutex_unlock(&db->mu);
	return stop;
}

static int kv_compact_run(struct kv_db *db, struct kv_compact_job *j)
{
	struct kv_compact_out o = { .db = db, .j = j };
	struct kv_iter *it = NULL;
	uint64_t last_kept_seq = 0;
	int rc;

	rc = kv_compact_inputs(j, &it);
	if (rc)
		return rc;
	for (it->ops->seek_first(it); it->ops->valid(it) && !rc; it->ops->next(it)) {
		const uint8_t *k, *v;
		size_t kl, vl;
		/* A job over a gigabyte of S3 tables takes minutes: close must
		 * not wait for it (an unmount took 10-55 s). Dropping it is
		 * safe: nothing changed in the manifest, and the tables
		 * already uploaded are unreferenced, so GC removes them. */
		if ((++o.n_seen & 1023) == 0 && kv_compact_stopping(db)) {
			rc = -ECANCELED;
			break;
		}
		it->ops->key(it, &k, &kl);
		it->ops->value(it, &v, &vl);
		uint64_t seq = kv_ikey_seq(k, kl);
		int same = o.n_kept > 0 &&
			   kv_ukey_cmp(o.kept[0].k, o.kept[0].kl - KV_IKEY_TRAILER, k,
				       kl - KV_IKEY_TRAILER) == 0;
		if (!same) {
			rc = kv_compact_flush_key(&o);
			if (rc)
				break;
			rc = kv_compact_keep(&o, k, kl, v, vl);
			last_kept_seq = seq;
			continue;
		}
		if (seq == last_kept_seq)
			continue;       /* the same entry in two inputs (a re-flushed memtable) */
		/* An older version: kept only if a snapshot sees it. */
		if (kv_snapshot_sees(j->snaps, j->n_snaps, seq, last_kept_seq)) {
			rc = kv_compact_keep(&o, k, kl, v, vl);
			last_kept_seq = seq;
		}
	}
	if (!rc)
		rc = it->ops->status(it);
	if (!rc)
		rc = kv_compact_flush_key(&o);
	if (!rc)
		rc = kv_compact_seal(&o);
	for (size_t i = 0; i < o.n_kept; i++) {
		free(o.kept[i].k);
		free(o.kept[i].v);
	}
	free(o.kept);
	if (o.b)
		kv_sst_builder_free(o.b);
	kv_sst_builder_free(o.d);
	kv_buf_free(&o.key);
	kv_buf_free(&o.spare);
	it->ops->free(it);
	return rc;
}

struct kv_compact_commit {
	struct kv_compact_job *j;
	uint64_t epoch;
};

static int kv_compact_has_id(const struct kv_compact_job *j, const struct kv_sst_id *id)
{
	for (size_t i = 0; i < j->n_ids; i++)
		if (!memcmp(j->ids[i].b, id->b, 16))
			return 1;
	return 0;
}

/* Re-validate the job against manifest m and apply it. */
static int kv_compact_apply(void *arg, struct kv_manifest *m)
{
	struct kv_compact_commit *c = arg;
	struct kv_compact_job *j = c->j;
	struct kv_run out = { .run_id = m->next_run_id };
	size_t pos, found = 0;
	int rc;

	if (m->compactor_epoch != c->epoch)
		return KV_EFENCED;
	out.ssts = calloc(j->out.n ? j->out.n : 1, sizeof(*out.ssts));
	if (!out.ssts)
		return -ENOMEM;
	for (; out.n < j->out.n; out.n++)
		if ((rc = kv_sst_meta_copy(&out.ssts[out.n], &j->out.ssts[out.n])))
			goto fail;

	pos = 0;
	if (j->l0) {
		/* Flushes since the pick may have added newer L0 tables: they
		 * stay, above the output. */
		for (size_t i = 0; i < m->n_l0; i++)
			found += kv_compact_has_id(j, &m->l0[i].id);
		if (found != j->n_l0_ids) {
			rc = -ESTALE;
			goto fail;
		}
	}
	if (j->n_runs) {
		for (pos = 0; pos < m->n_runs && m->runs[pos].run_id != j->run_ids[0]; pos++)
			;
		if (pos + j->n_runs > m->n_runs || (j->l0 && pos != 0)) {
			rc = -ESTALE;
			goto fail;
		}
		for (size_t k = 0; k < j->n_runs; k++)
			if (m->runs[pos + k].run_id != j->run_ids[k]) {
				rc = -ESTALE;
				goto fail;
			}
	}
	/* Validated: now change m. */
	if (j->l0) {
		size_t keep = 0;
		for (size_t i = 0; i < m->n_l0; i++) {
			if (kv_compact_has_id(j, &m->l0[i].id))
				kv_sst_meta_clear(&m->l0[i]);
			else
				m->l0[keep++] = m->l0[i];
		}
		m->n_l0 = keep;
	}
	if (j->n_runs) {
		for (size_t k = 0; k < j->n_runs; k++) {
			struct kv_run *r = &m->runs[pos + k];
			for (size_t t = 0; t < r->n; t++)
				kv_sst_meta_clear(&r->ssts[t]);
			free(r->ssts);
		}
		memmove(&m->runs[pos], &m->runs[pos + j->n_runs],
			(m->n_runs - pos - j->n_runs) * sizeof(*m->runs));
		m->n_runs -= j->n_runs;
	}
	if (out.n == 0) {
		free(out.ssts);         /* everything was deleted: no run */
		return 0;
	}
	struct kv_run *runs = realloc(m->runs, (m->n_runs + 1) * sizeof(*runs));
	if (!runs) {
		rc = -ENOMEM;
		goto fail;
	}
	m->runs = runs;
	memmove(&runs[pos + 1], &runs[pos], (m->n_runs - pos) * sizeof(*runs));
	runs[pos] = out;
	m->n_runs++;
	m->next_run_id++;
	return 0;
fail:
	for (size_t i = 0; i < out.n; i++)
		kv_sst_meta_clear(&out.ssts[i]);
	free(out.ssts);
	return rc;
}

/* Quarantine table id: never compacted (or, a data table, copied) again. */
static void kv_compact_quarantine_id(struct kv_db *db, const struct kv_sst_id *id)
{
	char name[64];

	kv_sst_id_name(id, name, sizeof(name));
	kv_mutex_lock(&db->mu);
	struct kv_sst_id *q = kv_compact_quarantined(db, id) ? NULL :
			      realloc(db->quarantine, (db->n_quarantine + 1) * sizeof(*q));
	if (q) {
		db->quarantine = q;
		q[db->n_quarantine++] = *id;
		UTIL_ERROR("kv", "compaction: %s is corrupt; it is quarantined and will not be "
			   "compacted (reads of its keys may fail; the rest of the store is served)",
			   name);
	}
	kv_mutex_unlock(&db->mu);
}

/* Find and quarantine the corrupt input of a failed job. */
static void kv_compact_quarantine(struct kv_db *db, struct kv_compact_job *j)
{
	const struct kv_manifest *m = j->ver->man;
	struct kv_sst_reader *bad[64];
	struct kv_sst_id ids[64];
	size_t nbad = 0;

	for (size_t i = 0; i < m->n_l0 && nbad < 64; i++)
		if (kv_compact_has_id(j, &m->l0[i].id) && kv_sst_verify(j->ver->l0[i]) == KV_ECORRUPT) {
			bad[nbad] = j->ver->l0[i];
			ids[nbad++] = m->l0[i].id;
		}
	for (size_t i = 0; i < m->n_runs; i++)
		for (size_t t = 0; t < m->runs[i].n && nbad < 64; t++)
			if (kv_compact_has_id(j, &m->runs[i].ssts[t].id) &&
			    kv_sst_verify(j->ver->runs[i].r[t]) == KV_ECORRUPT) {
				bad[nbad] = j->ver->runs[i].r[t];
				ids[nbad++] = m->runs[i].ssts[t].id;
			}
	(void)bad;
	for (size_t i = 0; i < nbad; i++)
		kv_compact_quarantine_id(db, &ids[i]);
}

/* Claim the compactor role: bump compactor_epoch. */
static int kv_compact_claim_apply(void *arg, struct kv_manifest *m)
{
	uint64_t *epoch = arg;
	*epoch = ++m->compactor_epoch;
	return 0;
}

void *kv_compact_main(void *arg)
{
	struct kv_db *db = arg;
	unsigned attempt = 0;
	uint64_t epoch = 0;
	int rc;

	util_thread_setup("kv-compact", 1);
	(void)obj_purpose_set(OBJ_PURPOSE_COMPACT);   /* what its requests cost: objstore.h */

	while ((rc = kv_manifest_update(db, kv_compact_claim_apply, &epoch, NULL, NULL)) != 0) {
		if (rc == KV_EFENCED || rc == -ECANCELED)
			return NULL;
		kv_mutex_lock(&db->mu);
		int stop = db->shutdown;
		kv_health_fail(&db->compact_health, rc);
		kv_mutex_unlock(&db->mu);
		if (stop)
			return NULL;
		kv_db_backoff(db, attempt++);
	}
	kv_mutex_lock(&db->mu);
	db->compactor_epoch = epoch;
	db->compactor_running = 1;
	db->rf_seq = db->last_seq;             /* READS FIRST: no write yet, ... */
	db->rf_write_ns = 0;
	db->rf_read_ns = util_now_ns();        /* ... and maybe a read coming */
	for (;;) {
		struct kv_compact_job j;
		if (db->shutdown || db->state == KV_STATE_FENCED)
			break;
		if (kv_compact_idle(db) && db->n_imm == 0 && kv_mem_count(db->mem) > 0)
			(void)kv_flush_freeze(db);      /* IDLE MERGE; -ENOMEM: next time */
		if (kv_reclaim_wanted(db)) {
			/* A full store: turn deletes into room first (kv_reclaim.c). */
			kv_mutex_unlock(&db->mu);
			rc = kv_reclaim_pass(db);
			if (rc && rc != -ECANCELED && rc != -ESTALE)
				UTIL_WARN("kv", "reclaiming space on the full store failed (%s); "
					  "will retry", kv_strerror(rc));
			kv_mutex_lock(&db->mu);
			continue;
		}
		rc = kv_compact_reads_first(db) || kv_compact_bulk_load(db) ? 0
									: kv_compact_pick(db, &j);
		if (rc <= 0) {
			struct timespec ts = util_wall_after_ns(KV_COMPACT_IDLE_MS * 1000000ull);
			kv_cond_timedwait(&db->cv_compact, &db->mu, &ts);
			continue;
		}
		kv_mutex_unlock(&db->mu);

		rc = kv_compact_run(db, &j);
		if (rc == KV_ECORRUPT)
			kv_compact_quarantine(db, &j);
		if (j.has_bad_data)
			kv_compact_quarantine_id(db, &j.bad_data);
		if (rc == 0) {
			struct kv_compact_commit c = { &j, epoch };
			rc = kv_manifest_update(db, kv_compact_apply, &c, NULL, NULL);
		}
		kv_mutex_lock(&db->mu);
		if (rc == -ENOSPC || rc == -EDQUOT) {
			if (db->compact_space_fails < 5)
				db->compact_space_fails++;      /* SHORT OF ROOM */
		} else if (rc == 0 && !db->store_err) {
			db->compact_space_fails = 0;
		}
		if (rc == 0) {
			uint64_t out = 0;
			for (size_t i = 0; i < j.out.n; i++)
				out += j.out.ssts[i].size;
			db->compactions++;
			db->compact_bytes_in += j.bytes_in;
			db->compact_bytes_out += out + j.data_bytes;
			db->data_rewritten += j.rewritten;
			db->data_tables_rewritten += j.n_data_ids;
			kv_health_ok(&db->compact_health);
			attempt = 0;
			CHECK_RETURN(pthread_cond_broadcast(&db->cv_state));
		} else if (rc == KV_EFENCED) {
			if (db->state == KV_STATE_OK)
				UTIL_INFO("kv", "another compactor took over (epoch above %" PRIu64
					  "): this one stops", epoch);
			kv_mutex_unlock(&db->mu);
			kv_compact_job_free(db, &j);    /* takes mu: not under it */
			kv_mutex_lock(&db->mu);
			break;
		} else if (rc == -ECANCELED && db->shutdown) {
			UTIL_INFO("kv", "close: the compaction in progress is dropped (redone "
				  "by the next writer)");
		} else {
			db->compaction_failures++;
			kv_health_fail(&db->compact_health, rc);
			if (rc != -ESTALE && rc != -ECANCELED)
				UTIL_WARN("kv", "compaction failed (%s); will retry", kv_strerror(rc));
		}
		int again = rc != 0 && rc != -ESTALE && !db->shutdown;
		kv_mutex_unlock(&db->mu);
		kv_compact_job_free(db, &j);
		if (again)
			kv_db_backoff(db, attempt++);
		kv_mutex_lock(&db->mu);
	}
	db->compactor_running = 0;
	CHECK_RETURN(pthread_cond_broadcast(&db->cv_state));
	kv_mutex_unlock(&db->mu);
	return NULL;
}
