/*
 * check_kv_ref.c - data tables (kv_ref.c): large values written once by
 * the flush, referenced from the tables, read back through gets, parts and
 * iterators, carried through compaction without being copied, kept by GC
 * exactly as long as a manifest in use references them.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"
#include "kv/kv_int.h"
#include "objstore/objstore.h"
#include "util/util.h"
#include "tests/check_common.h"
#include "tests/check_main.h"

enum { BIG = 3000, MIN = 1024, KEYS = 400 };

/* Key k's value in generation gen: BIG bytes for even keys, small for odd. */
static size_t ref_val(int k, int gen, uint8_t *buf)
{
	size_t n = k % 2 ? 40 : BIG;
	uint64_t x = (uint64_t)k * 1000003u + (uint64_t)gen * 7919u;
	for (size_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (uint8_t)(x >> 56);
	}
	return n;
}

static void ref_key(int k, char *key)
{
	snprintf(key, 32, "key%06d", k);
}

static void ref_put_gen(struct kv_db *db, int gen)
{
	uint8_t val[BIG];
	char key[32];
	for (int k = 0; k < KEYS; k++) {
		ref_key(k, key);
		ck_assert_int_eq(kv_put(db, key, strlen(key), val, ref_val(k, gen, val)), 0);
	}
}

#define ref_check_gen(db, gen) ref_check_gen_(db, #db, gen)
static void ref_check_gen_(struct kv_db *db, const char *who, int gen)
{
	uint8_t want[BIG], part[100];
	char key[32];
	for (int k = 0; k < KEYS; k++) {
		void *v;
		size_t vl, wl = ref_val(k, gen, want);
		ref_key(k, key);
		int rc = kv_get(db, NULL, key, strlen(key), &v, &vl);
		ck_assert_msg(rc == 0, "%s: gen %d %s: %s", who, gen, key, kv_strerror(rc));
		ck_assert_msg(vl == wl && !memcmp(v, want, wl), "%s: gen %d %s: wrong value", who,
			      gen, key);
		free(v);
		/* A part of it, from the middle. */
		rc = kv_get_part(db, NULL, key, strlen(key), wl / 2, part, sizeof(part), &vl);
		ck_assert_msg(rc == 0 && vl == wl, "%s: part of %s: %s", who, key, kv_strerror(rc));
		ck_assert(!memcmp(part, want + wl / 2, wl - wl / 2 < sizeof(part) ?
				  wl - wl / 2 : sizeof(part)));
	}
	/* Every value again through an iterator; lengths without reading. */
	struct kv_iter_user *it;
	int n = 0;
	ck_assert_int_eq(kv_iter_create(db, NULL, NULL, 0, NULL, 0, &it), 0);
	for (; kv_iter_valid(it); kv_iter_next(it), n++) {
		size_t kl, vl, wl = ref_val(n, gen, want);
		const char *k = kv_iter_key(it, &kl);
		ref_key(n, key);
		ck_assert(kl == strlen(key) && !memcmp(k, key, kl));
		ck_assert_uint_eq(kv_iter_value_len(it), wl);
		const void *v = kv_iter_value(it, &vl);
		ck_assert_msg(vl == wl && !memcmp(v, want, wl), "%s: iterator, gen %d %s", who, gen,
			      key);
	}
	ck_assert_int_eq(kv_iter_status(it), 0);
	kv_iter_free(it);
	ck_assert_int_eq(n, KEYS);
}

static int ref_exists(struct obj_backend *store, const struct kv_sst_id *id)
{
	char name[64];
	struct obj_stat st;
	kv_sst_id_name(id, name, sizeof(name));
	return obj_head(store, name, &st) == 0;
}

/* Every table of manifest id and every data table they list exist; returns
 * how many data tables are listed. */
static size_t ref_manifest_complete(struct obj_backend *store, uint64_t id)
{
	struct kv_manifest *m;
	struct kv_dref *all = NULL;
	size_t n = 0;
	ck_assert_int_eq(kv_manifest_load(store, id, &m), 0);
	for (size_t r = 0; r <= m->n_runs; r++) {
		struct kv_sst_meta *t = r == 0 ? m->l0 : m->runs[r - 1].ssts;
		size_t nt = r == 0 ? m->n_l0 : m->runs[r - 1].n;
		for (size_t i = 0; i < nt; i++) {
			ck_assert(ref_exists(store, &t[i].id));
			for (size_t k = 0; k < t[i].n_refs; k++) {
				ck_assert_msg(ref_exists(store, &t[i].refs[k].id),
					      "manifest %llu: a data table is missing",
					      (unsigned long long)id);
				ck_assert_int_eq(kv_dref_add(&all, &n, &t[i].refs[k].id, 0, 0), 0);
			}
		}
	}
	kv_manifest_free(m);
	free(all);
	return n;
}

static size_t ref_count_ssts(struct obj_backend *store)
{
	struct obj_list *l = NULL;
	ck_assert_int_eq(obj_list_page(store, "sst/", NULL, 1000, &l), 0);
	size_t n = l->count;
	obj_list_free(l);
	return n;
}

/*
 * Values of at least data_min_bytes go to data tables at flush and read
 * back through every read path, before and after compaction and a reopen;
 * compaction moves references, not the values: what it writes is a small
 * fraction of what the flushes wrote.
 */
START_TEST(test_kv_ref__values_live_in_data_tables)
{
	struct obj_backend *store = check_mem_open("refdata");
	struct kv_config c = KV_CONFIG_INIT;
	struct kv_db *db;

	c.memtable_bytes = 256 << 10;
	c.data_min_bytes = MIN;
	c.l0_compact_trigger = 2;
	c.l0_bulk_trigger = 2;
	ck_assert_int_eq(kv_open(&db, store, &c), 0);
	for (int gen = 1; gen <= 6; gen++) {
		ref_put_gen(db, gen);
		check_kv_flush_now(db);
		ref_check_gen(db, gen);
	}
	uint64_t deadline = util_now_ns() + 30ull * 1000000000ull;
	while (check_kv_stat(db, "compactions_completed") < 2) {
		ck_assert_msg(util_now_ns() < deadline, "no compaction");
		util_sleep_ns(20 * 1000000ull);
	}
	ref_check_gen(db, 6);
	uint64_t data = check_kv_stat(db, "data_table_bytes_written");
	uint64_t out = check_kv_stat(db, "compaction_bytes_out");
	ck_assert_uint_ge(check_kv_stat(db, "data_tables_written"), 6);
	ck_assert_uint_ge(data, 6ull * KEYS / 2 * BIG);
	ck_assert_msg(out * 10 < data, "compaction wrote %llu bytes for %llu of data tables",
		      (unsigned long long)out, (unsigned long long)data);
	ck_assert_int_eq(kv_close(db), 0);

	/* The manifest lists the data tables, and they are all there. */
	uint64_t latest;
	ck_assert_int_eq(kv_manifest_latest_id(store, 0, &latest), 0);
	ck_assert_uint_gt(ref_manifest_complete(store, latest), 0);

	ck_assert_int_eq(kv_open(&db, store, &c), 0);
	ref_check_gen(db, 6);
	/* A store written with data tables reads without the option too. */
	ck_assert_int_eq(kv_close(db), 0);
	c.data_min_bytes = 0;
	ck_assert_int_eq(kv_open(&db, store, &c), 0);
	ref_check_gen(db, 6);
	ck_assert_int_eq(kv_close(db), 0);
	check_mem_close(store, "refdata");
}
END_TEST

/*
 * A checkpoint taken before overwrites still reads its values after
 * compaction and GC past the min age; once it is deleted, GC removes the
 * data tables only it referenced, and the store shrinks back.
 */
START_TEST(test_kv_ref__gc_keeps_data_tables_in_use)
{
	struct obj_backend *store = check_mem_open("refgc");
	struct kv_config c = KV_CONFIG_INIT, cc = KV_CONFIG_INIT;
	struct kv_db *w, *ck;

	c.memtable_bytes = 256 << 10;
	c.data_min_bytes = MIN;
	c.l0_compact_trigger = 2;
	c.l0_bulk_trigger = 2;
	c.gc_interval_ms = 50;
	c.gc_min_age_ms = 300;
	c.manifests_keep = 2;
	ck_assert_int_eq(kv_open(&w, store, &c), 0);
	ref_put_gen(w, 1);
	check_kv_flush_now(w);
	ck_assert_int_eq(kv_db_checkpoint_create(w, "gen1", 0), 0);
	for (int gen = 2; gen <= 5; gen++) {
		ref_put_gen(w, gen);
		check_kv_flush_now(w);
	}
	util_sleep_ns(1500 * 1000000ull);
	ck_assert_uint_gt(check_kv_stat(w, "gc_deleted_ssts"), 0);
	cc.mode = KV_OPEN_CHECKPOINT;
	cc.checkpoint = "gen1";
	ck_assert_int_eq(kv_open(&ck, store, &cc), 0);
	ref_check_gen(ck, 1);
	ref_check_gen(w, 5);
	kv_close(ck);

	struct kv_manifest *m;
	uint64_t latest;
	ck_assert_int_eq(kv_manifest_latest_id(store, 0, &latest), 0);
	ck_assert_int_eq(kv_manifest_load(store, latest, &m), 0);
	const struct kv_checkpoint *cp = kv_manifest_find_ckpt(m, "gen1");
	ck_assert_ptr_nonnull(cp);
	ref_manifest_complete(store, cp->manifest_id);
	kv_manifest_free(m);
	size_t with_ckpt = ref_count_ssts(store);

	/* The checkpoint goes: its data tables go too. */
	ck_assert_int_eq(kv_checkpoint_delete(store, "gen1"), 0);
	ref_put_gen(w, 6);                      /* a manifest change wakes GC */
	check_kv_flush_now(w);
	uint64_t deadline = util_now_ns() + 20ull * 1000000000ull;
	while (ref_count_ssts(store) >= with_ckpt) {
		ck_assert_msg(util_now_ns() < deadline, "GC kept %zu tables", with_ckpt);
		util_sleep_ns(50 * 1000000ull);
	}
	ref_check_gen(w, 6);
	ck_assert_int_eq(kv_manifest_latest_id(store, 0, &latest), 0);
	ref_manifest_complete(store, latest);
	ck_assert_int_eq(kv_close(w), 0);
	check_mem_close(store, "refgc");
}
END_TEST

/*
 * A data table that is gone is corruption naming it for the values in it,
 * not "no such key", and every other key still reads.
 */
START_TEST(test_kv_ref__missing_data_table_is_corruption)
{
	struct obj_backend *store = check_mem_open("refgone");
	struct kv_config c = KV_CONFIG_INIT;
	struct kv_db *db;
	uint8_t want[BIG];
	char key[32], name[64];

	c.memtable_bytes = 4 << 20;             /* one flush, at close */
	c.data_min_bytes = MIN;
	c.no_background = 1;
	ck_assert_int_eq(kv_open(&db, store, &c), 0);
	ref_put_gen(db, 1);
	ck_assert_int_eq(kv_close(db), 0);

	uint64_t latest;
	struct kv_manifest *m;
	ck_assert_int_eq(kv_manifest_latest_id(store, 0, &latest), 0);
	ck_assert_int_eq(kv_manifest_load(store, latest, &m), 0);
	ck_assert_uint_eq(m->n_l0, 1);
	ck_assert_uint_eq(m->l0[0].n_refs, 1);
	ck_assert_uint_eq(m->l0[0].refs[0].bytes, (uint64_t)KEYS / 2 * BIG);
	kv_sst_id_name(&m->l0[0].refs[0].id, name, sizeof(name));
	kv_manifest_free(m);
	ck_assert_int_eq(obj_delete(store, name), 0);

	ck_assert_int_eq(kv_open(&db, store, &c), 0);
	for (int k = 0; k < 4; k++) {
		void *v;
		size_t vl, wl = ref_val(k, 1, want);
		ref_key(k, key);
		int rc = kv_get(db, NULL, key, strlen(key), &v, &vl);
		if (k % 2) {
			ck_assert_int_eq(rc, 0);
			ck_assert(vl == wl && !memcmp(v, want, wl));
			free(v);
		} else {
			ck_assert_int_eq(rc, KV_ECORRUPT);
		}
	}
	struct kv_iter_user *it;
	ck_assert_int_eq(kv_iter_create(db, NULL, NULL, 0, NULL, 0, &it), 0);
	ck_assert(kv_iter_valid(it));
	size_t vl;
	ck_assert_ptr_null(kv_iter_value(it, &vl));
	ck_assert(!kv_iter_valid(it));
	ck_assert_int_eq(kv_iter_status(it), KV_ECORRUPT);
	kv_iter_free(it);
	kv_close(db);
	check_mem_close(store, "refgone");
}
END_TEST

static uint64_t ref_live_bytes(int gen_of[KEYS])
{
	uint8_t buf[BIG];
	uint64_t n = 0;
	for (int k = 0; k < KEYS; k++) {
		size_t l = ref_val(k, gen_of[k], buf);
		if (l >= MIN)
			n += l;
	}
	return n;
}

/*
 * A long run of random overwrites: compactions copy the values still live
 * out of data tables that are mostly dead, GC deletes those, and the data
 * tables stay within a small multiple of the live values instead of
 * growing with everything ever written. A checkpoint taken before the
 * overwrites still reads its values after all that.
 */
START_TEST(test_kv_ref__mostly_dead_data_tables_are_rewritten)
{
	struct obj_backend *store = check_mem_open("refrw");
	struct kv_config c = KV_CONFIG_INIT, cc = KV_CONFIG_INIT;
	struct kv_db *w, *ck;
	int gen_of[KEYS];
	uint8_t val[BIG];
	char key[32];
	struct util_rand r;

	util_rand_seed(&r, 42);
	c.memtable_bytes = 256 << 10;
	c.data_min_bytes = MIN;
	c.l0_compact_trigger = 2;
	c.l0_bulk_trigger = 2;
	c.gc_interval_ms = 50;
	c.gc_min_age_ms = 200;
	c.manifests_keep = 2;
	ck_assert_int_eq(kv_open(&w, store, &c), 0);
	ref_put_gen(w, 1);
	for (int k = 0; k < KEYS; k++)
		gen_of[k] = 1;
	check_kv_flush_now(w);
	ck_assert_int_eq(kv_db_checkpoint_create(w, "before", 0), 0);
	uint64_t written = 0;
	for (int round = 2; round <= 40; round++) {
		for (int i = 0; i < KEYS / 4; i++) {
			int k = (int)util_rand_below(&r, KEYS / 2) * 2;     /* the big ones */
			ref_key(k, key);
			size_t l = ref_val(k, round, val);
			ck_assert_int_eq(kv_put(w, key, strlen(key), val, l), 0);
			gen_of[k] = round;
			written += l;
		}
		check_kv_flush_now(w);
	}
	/* Let compaction and GC settle. */
	util_sleep_ns(3000 * 1000000ull);
	uint64_t live = ref_live_bytes(gen_of);
	uint64_t data = check_kv_stat(w, "data_table_bytes");
	ck_assert_uint_gt(check_kv_stat(w, "data_rewrite_bytes"), 0);
	ck_assert_msg(data < 3 * live, "data tables hold %llu bytes for %llu live (%llu written)",
		      (unsigned long long)data, (unsigned long long)live,
		      (unsigned long long)written);
	for (int k = 0; k < KEYS; k++) {
		void *v;
		size_t vl, wl = ref_val(k, gen_of[k], val);
		ref_key(k, key);
		ck_assert_int_eq(kv_get(w, NULL, key, strlen(key), &v, &vl), 0);
		ck_assert_msg(vl == wl && !memcmp(v, val, wl), "%s: wrong value", key);
		free(v);
	}
	cc.mode = KV_OPEN_CHECKPOINT;
	cc.checkpoint = "before";
	ck_assert_int_eq(kv_open(&ck, store, &cc), 0);
	ref_check_gen(ck, 1);
	kv_close(ck);
	ck_assert_int_eq(kv_close(w), 0);
	check_mem_close(store, "refrw");
}
END_TEST

/*
 * Crashes (kv_abandon) at random moments while flushes write data tables
 * and compactions copy values out of mostly dead ones, under store errors
 * and cancellations: after every reopen each key reads its last synced
 * value, and a checkpoint taken at the start still reads its own.
 */
START_TEST(test_kv_ref__crashes_during_rewrites_lose_nothing)
{
	struct kv_config c = KV_CONFIG_INIT, cc = KV_CONFIG_INIT;
	struct kv_db *w, *ck;
	int gen_of[KEYS], g = 1;
	uint64_t rewritten = 0;
	uint8_t val[BIG];
	char key[32];
	struct util_rand r;

	obj_mem_destroy("refcrash");
	struct obj_backend *store = check_store_open("mem://refcrash",
						     "seed=9,error=0.05,cancel=0.03,after=0.5");
	util_rand_seed(&r, 11);
	c.memtable_bytes = 256 << 10;
	c.flush_interval_ms = 10;
	c.data_min_bytes = MIN;
	c.l0_compact_trigger = 2;
	c.l0_bulk_trigger = 2;
	c.gc_interval_ms = 50;
	c.gc_min_age_ms = 100;
	c.manifests_keep = 2;
	c.idle_compact_ms = 100;                /* the window jobs wait for reads in */
	ck_assert_int_eq(kv_open(&w, store, &c), 0);
	ref_put_gen(w, 1);
	ck_assert_int_eq(kv_sync(w), 0);
	for (int k = 0; k < KEYS; k++)
		gen_of[k] = 1;
	ck_assert_int_eq(kv_db_checkpoint_create(w, "before", 0), 0);
	for (int crash = 0; crash < 8; crash++) {
		for (int round = 0; round < 6; round++) {
			g++;
			for (int i = 0; i < KEYS / 4; i++) {
				int k = (int)util_rand_below(&r, KEYS / 2) * 2;
				ref_key(k, key);
				ck_assert_int_eq(kv_put(w, key, strlen(key), val, ref_val(k, g, val)), 0);
				gen_of[k] = g;
			}
			ck_assert_int_eq(kv_sync(w), 0);
		}
		util_sleep_ns(util_rand_below(&r, 800) * 1000000ull);
		rewritten += check_kv_stat(w, "data_rewrite_bytes");
		kv_abandon(w);
		ck_assert_int_eq(kv_open(&w, store, &c), 0);
		for (int k = 0; k < KEYS; k++) {
			void *v;
			size_t vl, wl = ref_val(k, gen_of[k], val);
			ref_key(k, key);
			int rc = kv_get(w, NULL, key, strlen(key), &v, &vl);
			ck_assert_msg(rc == 0, "crash %d: %s: %s", crash, key, kv_strerror(rc));
			ck_assert_msg(vl == wl && !memcmp(v, val, wl), "crash %d: %s: wrong value", crash,
				      key);
			free(v);
		}
	}
	util_sleep_ns(1500 * 1000000ull);
	rewritten += check_kv_stat(w, "data_rewrite_bytes");
	ck_assert_msg(rewritten > 0, "no value was copied out of a data table");
	cc.mode = KV_OPEN_CHECKPOINT;
	cc.checkpoint = "before";
	ck_assert_int_eq(kv_open(&ck, store, &cc), 0);
	ref_check_gen(ck, 1);
	kv_close(ck);
	ck_assert_int_eq(kv_close(w), 0);
	obj_close(store);
	obj_mem_destroy("refcrash");
}
END_TEST

/*
 * A store written before data tables (values in the tables, format-1
 * manifests) opened with them on: the old values read as they were, new
 * large values go to data tables, compaction merges the two kinds
 * (inline values and REFs of the same keys), and everything reads back,
 * before and after a reopen.
 */
START_TEST(test_kv_ref__older_store_takes_data_tables)
{
	struct obj_backend *store = check_mem_open("refold");
	struct kv_config c = KV_CONFIG_INIT;
	struct kv_db *db;
	uint64_t latest;
	struct kv_manifest *m;

	c.memtable_bytes = 256 << 10;
	c.l0_compact_trigger = 2;
	c.l0_bulk_trigger = 2;
	ck_assert_int_eq(kv_open(&db, store, &c), 0);
	ref_put_gen(db, 1);
	ck_assert_int_eq(kv_close(db), 0);
	ck_assert_int_eq(kv_manifest_latest_id(store, 0, &latest), 0);
	ck_assert_int_eq(kv_manifest_load(store, latest, &m), 0);
	for (size_t i = 0; i < m->n_l0; i++)
		ck_assert_uint_eq(m->l0[i].n_refs, 0);
	kv_manifest_free(m);

	c.data_min_bytes = MIN;
	ck_assert_int_eq(kv_open(&db, store, &c), 0);
	ref_check_gen(db, 1);
	/* Half the keys again: the other half keeps its inline values. */
	uint8_t val[BIG];
	char key[32];
	for (int k = 0; k < KEYS; k += 4) {
		ref_key(k, key);
		ck_assert_int_eq(kv_put(db, key, strlen(key), val, ref_val(k, 1, val)), 0);
	}
	check_kv_flush_now(db);
	ck_assert_uint_ge(check_kv_stat(db, "data_tables_written"), 1);
	uint64_t deadline = util_now_ns() + 30ull * 1000000000ull;
	while (check_kv_stat(db, "compactions_completed") < 1) {
		ck_assert_msg(util_now_ns() < deadline, "no compaction");
		util_sleep_ns(20 * 1000000ull);
	}
	ref_check_gen(db, 1);
	ck_assert_int_eq(kv_close(db), 0);
	ck_assert_int_eq(kv_open(&db, store, &c), 0);
	ref_check_gen(db, 1);
	ck_assert_uint_gt(check_kv_stat(db, "data_tables"), 0);
	ck_assert_int_eq(kv_close(db), 0);
	check_mem_close(store, "refold");
}
END_TEST

/* Manifests: version 1 while no table references a data table (older
 * builds read it), version 2 with the lists, which decode as written. */
START_TEST(test_kv_ref__manifest_versions)
{
	struct kv_manifest m = { .id = 7, .last_seq = 9 };
	struct kv_sst_meta t = { .size = 100, .entries = 1, .min_seq = 1, .max_seq = 1 };
	uint8_t key[9] = "a";
	struct kv_buf b = { 0 };
	struct kv_manifest *d;

	t.smallest = t.largest = key;
	t.smallest_len = t.largest_len = sizeof(key);
	t.id.b[0] = 1;
	m.l0 = &t;
	m.n_l0 = 1;
	ck_assert_int_eq(kv_manifest_encode(&m, &b), 0);
	ck_assert_uint_eq(util_get_be32(b.data + 8), 1);
	kv_buf_free(&b);

	struct kv_sst_id a = { { 2 } }, z = { { 3 } };
	ck_assert_int_eq(kv_dref_add(&t.refs, &t.n_refs, &z, 5000, 10), 0);
	ck_assert_int_eq(kv_dref_add(&t.refs, &t.n_refs, &a, 4000, 20), 0);
	ck_assert_int_eq(kv_dref_add(&t.refs, &t.n_refs, &z, 5000, 1), 0);
	ck_assert_uint_eq(t.n_refs, 2);
	ck_assert_int_eq(kv_manifest_encode(&m, &b), 0);
	ck_assert_uint_eq(util_get_be32(b.data + 8), 2);
	ck_assert_int_eq(kv_manifest_decode("m", b.data, b.len, &d), 0);
	ck_assert_uint_eq(d->l0[0].n_refs, 2);
	ck_assert(!memcmp(d->l0[0].refs[0].id.b, a.b, 16));
	ck_assert_uint_eq(d->l0[0].refs[0].size, 4000);
	ck_assert_uint_eq(d->l0[0].refs[0].bytes, 20);
	ck_assert_uint_eq(d->l0[0].refs[1].bytes, 11);
	kv_manifest_free(d);
	free(t.refs);
	kv_buf_free(&b);

	/* A REF value round-trips; anything else is refused. */
	struct kv_ref r = { .id = a, .seq = 77, .len = 65536 }, r2;
	uint8_t enc[KV_REF_MAX];
	size_t n = kv_ref_encode(enc, &r);
	ck_assert_int_eq(kv_ref_decode(enc, n, &r2), 0);
	ck_assert(!memcmp(&r, &r2, sizeof(r)));
	ck_assert_int_eq(kv_ref_decode(enc, n - 1, &r2), -EINVAL);
	enc[n] = 0;
	ck_assert_int_eq(kv_ref_decode(enc, n + 1, &r2), -EINVAL);
}
END_TEST

/* Open with no background threads: the flushes happen at close, and
 * nothing compacts under the reclaim pass. */
static struct kv_db *ref_open_still(struct obj_backend *store)
{
	struct kv_config c = KV_CONFIG_INIT;
	struct kv_db *db;
	c.data_min_bytes = MIN;
	c.no_background = 1;
	ck_assert_int_eq(kv_open(&db, store, &c), 0);
	return db;
}

/* With val: put keys <p>000..<p><n-1> (k % step == 0) to BIG random
 * bytes (ref_val of 2k in generation p), and s<p>000.. to 200 bytes when
 * small; without: delete those keys. */
static void ref_fill(struct kv_db *db, char p, int n, int step, int val, int small)
{
	uint8_t v[BIG];
	char key[32];
	for (int k = 0; k < n; k += step) {
		snprintf(key, sizeof(key), "%c%03d", p, k);
		if (val)
			ck_assert_int_eq(kv_put(db, key, strlen(key), v, ref_val(2 * k, p, v)), 0);
		else
			ck_assert_int_eq(kv_delete(db, key, strlen(key)), 0);
		if (small) {
			snprintf(key, sizeof(key), "s%c%03d", p, k);
			ck_assert_int_eq(kv_put(db, key, strlen(key), v, 200), 0);
		}
	}
}

/* The data tables the latest manifest references. */
static size_t ref_latest_data_tables(struct obj_backend *store)
{
	uint64_t latest;
	ck_assert_int_eq(kv_manifest_latest_id(store, 0, &latest), 0);
	return ref_manifest_complete(store, latest);
}

/*
 * On a full store the reclaim pass weighs a REF by the value it pins: a
 * table of many small live values and a few REFs into a data table whose
 * every value is deleted is rewritten without them, and the data table is
 * no longer referenced (GC deletes it); a data table that still holds a
 * live value stays, and everything live reads, also after a reopen.
 */
START_TEST(test_kv_ref__reclaim_frees_dead_data_tables)
{
	struct obj_backend *store = check_mem_open("refreclaim");
	struct kv_db *db = ref_open_still(store);
	ref_fill(db, 'a', 60, 1, 'a', 1);
	ck_assert_int_eq(kv_close(db), 0);          /* T0 (+ smalls) and its data table */
	db = ref_open_still(store);
	ref_fill(db, 'b', 60, 1, 'b', 1);
	ck_assert_int_eq(kv_close(db), 0);          /* T1 and its data table */
	ck_assert_uint_eq(ref_latest_data_tables(store), 2);

	db = ref_open_still(store);
	ref_fill(db, 'a', 60, 1, 0, 0);             /* every a: the first data table dead */
	ref_fill(db, 'b', 60, 2, 0, 0);             /* half the b: the second one lives */
	ck_assert_int_eq(kv_sync(db), 0);
	ck_assert_int_eq(kv_reclaim_pass(db), 0);
	ck_assert_uint_eq(ref_latest_data_tables(store), 1);
	ck_assert_uint_ge(check_kv_stat(db, "reclaim_bytes"), 60ull * BIG);
	for (int pass = 0; pass < 2; pass++) {
		for (int k = 0; k < 60; k++) {
			char key[32];
			void *v = NULL;
			size_t vl;
			snprintf(key, sizeof(key), "b%03d", k);
			int rc = kv_get(db, NULL, key, strlen(key), &v, &vl);
			if (k % 2 == 0) {
				ck_assert_int_eq(rc, -ENOENT);
			} else {
				uint8_t want[BIG];
				ck_assert_msg(rc == 0 && vl == ref_val(2 * k, 'b', want) &&
					      !memcmp(v, want, BIG), "%s: %s", key, kv_strerror(rc));
				free(v);
			}
			snprintf(key, sizeof(key), "a%03d", k);
			ck_assert_int_eq(kv_get(db, NULL, key, strlen(key), &v, &vl), -ENOENT);
			snprintf(key, sizeof(key), "sa%03d", k);
			ck_assert_int_eq(kv_get(db, NULL, key, strlen(key), &v, &vl), 0);
			ck_assert_uint_eq(vl, 200);
			free(v);
		}
		ck_assert_int_eq(kv_close(db), 0);
		db = ref_open_still(store);
	}
	ck_assert_int_eq(kv_close(db), 0);
	check_mem_close(store, "refreclaim");
}
END_TEST

static Suite *kv_ref_suite(void)
{
	Suite *s = suite_create("kv_ref");
	TCase *tc = tcase_create("ref");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_kv_ref__manifest_versions);
	tcase_add_test(tc, test_kv_ref__values_live_in_data_tables);
	tcase_add_test(tc, test_kv_ref__gc_keeps_data_tables_in_use);
	tcase_add_test(tc, test_kv_ref__missing_data_table_is_corruption);
	tcase_add_test(tc, test_kv_ref__mostly_dead_data_tables_are_rewritten);
	tcase_add_test(tc, test_kv_ref__crashes_during_rewrites_lose_nothing);
	tcase_add_test(tc, test_kv_ref__older_store_takes_data_tables);
	tcase_add_test(tc, test_kv_ref__reclaim_frees_dead_data_tables);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(kv_ref_suite)
