/*
 * kvbench_shale.c - kvbench (bench/kvbench.h) over ShaleFS's engine: kv.h
 * on an object store opened by URL (file:// by default, s3:// with the
 * rig's variables).
 *
 *   kvbench_shale --db=DIR|URL [options of kvbench_main.c]
 *
 * --db is a store URL (file://, s3://, mem://) or a plain directory,
 * which means file://DIR (created when missing).
 *
 * CONFIGURATION (struct kv_config; everything not listed is kv's default)
 *   memtable_bytes       = --write-buffer-mb (default 64 MiB = kv default)
 *   block_cache_bytes    = --cache-mb        (default 64 MiB = kv default)
 *   bloom_bits_per_key   = --bloom-bits      (default 10 = kv default)
 *   with --gc-ms: GC off (interval 1 h) until the `space` phase reopens
 *                          with gc_interval_ms 1000, gc_min_age_ms = --gc-ms
 *                          (the other engines delete obsolete files at once)
 *   Defaults kept: flush_interval_ms 100 (kv_put returns before the WAL
 *   object is written: the "WAL on, no sync per write" of db_bench),
 *   max_frozen_memtables 2, l0_compact_trigger 4, l0_max 32 (l0_bulk_trigger
 *   24: kv_compact.c, BULK LOADS), zstd level -1,
 *   sst_max_bytes 64 MiB.
 *
 * ACCOUNTING
 *   store bytes written: objstore_bytes_put of the store's metrics
 *   wrapper (every WAL object, SST and manifest); kv_stats'
 *   wal_bytes_written + l0_bytes_written + compaction_bytes_out is printed
 *   beside it by describe/space lines.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/kvbench.h"
#include "kv/kv.h"
#include "objstore/objstore.h"
#include "util/util.h"

struct kvb_shale {
	struct obj_backend *store;
	struct kv_db *db;
	struct kv_config conf;
};

/* The counters kvbench reads, from kv_stats and obj_stats. */
struct kvb_shale_stats {
	uint64_t l0_count, frozen, wal_bytes, l0_bytes, comp_out, compactions, bytes_put;
	uint64_t sorted_runs, stalls, stall_ms;
	uint64_t cache_hits, cache_misses;
	uint64_t pending;
	uint64_t l0_trigger, l0_max;      /* the engine's limits, defaults applied */
};

static void kvb_shale_emit(void *arg, const char *key, uint64_t v)
{
	struct kvb_shale_stats *s = arg;
	static const struct {
		const char *name;
		size_t off;
	} map[] = {
		{ "l0_count", offsetof(struct kvb_shale_stats, l0_count) },
		{ "compaction_pending", offsetof(struct kvb_shale_stats, pending) },
		{ "l0_compact_trigger", offsetof(struct kvb_shale_stats, l0_trigger) },
		{ "l0_max", offsetof(struct kvb_shale_stats, l0_max) },
		{ "frozen_memtables", offsetof(struct kvb_shale_stats, frozen) },
		{ "wal_bytes_written", offsetof(struct kvb_shale_stats, wal_bytes) },
		{ "l0_bytes_written", offsetof(struct kvb_shale_stats, l0_bytes) },
		{ "compaction_bytes_out", offsetof(struct kvb_shale_stats, comp_out) },
		{ "compactions_completed", offsetof(struct kvb_shale_stats, compactions) },
		{ "objstore_bytes_put", offsetof(struct kvb_shale_stats, bytes_put) },
		{ "sorted_runs", offsetof(struct kvb_shale_stats, sorted_runs) },
		{ "write_stalls", offsetof(struct kvb_shale_stats, stalls) },
		{ "write_stall_ms", offsetof(struct kvb_shale_stats, stall_ms) },
		{ "block_cache_hits", offsetof(struct kvb_shale_stats, cache_hits) },
		{ "block_cache_misses", offsetof(struct kvb_shale_stats, cache_misses) },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(key, map[i].name)) {
			*(uint64_t *)((char *)s + map[i].off) = v;
			return;
		}
}

static void kvb_shale_stats(struct kvb_shale *s, struct kvb_shale_stats *st)
{
	memset(st, 0, sizeof(*st));
	kv_stats(s->db, kvb_shale_emit, st);
	obj_stats(s->store, kvb_shale_emit, st);
}

static int kvb_shale_url(const char *db, char *url, size_t len)
{
	if (strstr(db, "://"))
		return snprintf(url, len, "%s", db) < (int)len ? 0 : -ENAMETOOLONG;
	if (db[0] != '/')
		return -EINVAL;
	return snprintf(url, len, "file://%s", db) < (int)len ? 0 : -ENAMETOOLONG;
}

static int kvb_shale_open(void **out, const struct kvb_opts *o, int fresh, char *err,
			  size_t errlen)
{
	struct obj_config oc = OBJ_CONFIG_INIT;
	struct kvb_shale *s;
	char url[1200];
	int rc;

	rc = kvb_shale_url(o->db, url, sizeof(url));
	if (rc) {
		snprintf(err, errlen, "--db must be a URL or an absolute directory");
		return rc;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	oc.create = 1;
	rc = obj_open(&s->store, url, &oc);
	if (rc) {
		snprintf(err, errlen, "%s", obj_last_error());
		goto err;
	}
	s->conf = (struct kv_config)KV_CONFIG_INIT;
	s->conf.memtable_bytes = o->write_buffer_bytes;
	s->conf.block_cache_bytes = o->cache_bytes;
	s->conf.bloom_bits_per_key = o->bloom_bits;
	if (o->gc_ms) {
		/* GC every second in the phase that asks for it (gc_now),
		 * else hourly: not during the writes and compactions before
		 * the space measurement. */
		s->conf.gc_interval_ms = o->gc_now ? 1000 : 3600u * 1000;
		s->conf.gc_min_age_ms = o->gc_ms;
	}
	rc = kv_open(&s->db, s->store, &s->conf);
	if (rc) {
		snprintf(err, errlen, "kv_open: %s", kv_strerror(rc));
		goto err;
	}
	(void)fresh;
	*out = s;
	return 0;
err:
	obj_close(s->store);
	free(s);
	return rc;
}

static int kvb_shale_close(void *h)
{
	struct kvb_shale *s = h;
	struct kvb_shale_stats st;
	kvb_shale_stats(s, &st);
	printf("kvbench engine=shalefs bench=engine_stats block_cache_hits=%" PRIu64
	       " block_cache_misses=%" PRIu64 " write_stalls=%" PRIu64 " write_stall_ms=%" PRIu64
	       " compactions=%" PRIu64 " l0_count=%" PRIu64 " sorted_runs=%" PRIu64 "\n",
	       st.cache_hits, st.cache_misses, st.stalls, st.stall_ms, st.compactions, st.l0_count,
	       st.sorted_runs);
	int rc = kv_close(s->db);
	obj_close(s->store);
	free(s);
	return rc;
}

static int kvb_shale_del_one(void *arg, const char *name, uint64_t size)
{
	(void)size;
	int rc = obj_delete(arg, name);
	return rc == -ENOENT ? 0 : rc;
}

static int kvb_shale_destroy(const struct kvb_opts *o)
{
	struct obj_config oc = OBJ_CONFIG_INIT;
	struct obj_backend *b;
	char url[1200];
	int rc = kvb_shale_url(o->db, url, sizeof(url));
	if (rc)
		return rc;
	if (!strncmp(url, "file://", 7))
		return kvb_dir_remove(url + 7);
	oc.create = 1;
	rc = obj_open(&b, url, &oc);
	if (rc)
		return rc;
	rc = obj_list_each(b, "", 0, kvb_shale_del_one, b);
	obj_close(b);
	return rc;
}

static int kvb_shale_put(void *h, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct kvb_shale *s = h;
	return kv_put(s->db, k, klen, v, vlen);
}

static int kvb_shale_get(void *h, const void *k, size_t klen, size_t *vlen)
{
	struct kvb_shale *s = h;
	void *v = NULL;
	int rc = kv_get(s->db, NULL, k, klen, &v, vlen);
	free(v);
	if (rc == -ENOENT)
		return 0;
	return rc ? rc : 1;
}

static int kvb_shale_scan(void *h, uint64_t *n, uint64_t *bytes)
{
	struct kvb_shale *s = h;
	struct kv_iter_user *it;
	uint64_t cnt = 0, b = 0;
	int rc = kv_iter_create(s->db, NULL, NULL, 0, NULL, 0, &it);
	if (rc)
		return rc;
	for (; kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl, vl;
		kv_iter_key(it, &kl);
		kv_iter_value(it, &vl);
		cnt++;
		b += kl + vl;
	}
	rc = kv_iter_status(it);
	kv_iter_free(it);
	*n = cnt;
	*bytes = b;
	return rc;
}

static void kvb_shale_sample(void *h, struct kvb_sample *out)
{
	struct kvb_shale *s = h;
	struct kvb_shale_stats st;
	kvb_shale_stats(s, &st);
	out->l0_count = st.l0_count;
	out->l0_limit = st.l0_max;
	out->l0_trigger = st.l0_trigger;
	out->store_bytes_written = st.bytes_put;
	/* The engine's own account: includes an idle L0 merge it will start
	 * (kv_compact.c, IDLE MERGE), which settle should wait for. */
	out->compaction_pending = st.frozen > 0 || st.l0_count >= out->l0_trigger || st.pending;
}

struct kvb_shale_du {
	uint64_t total, sst, wal, manifest, other;
	uint64_t n_sst, n_wal, n_manifest;
};

static int kvb_shale_du_one(void *arg, const char *name, uint64_t size)
{
	struct kvb_shale_du *d = arg;
	d->total += size;
	if (!strncmp(name, "sst/", 4)) {
		d->sst += size;
		d->n_sst++;
	} else if (!strncmp(name, "wal/", 4)) {
		d->wal += size;
		d->n_wal++;
	} else if (!strncmp(name, "manifest/", 9)) {
		d->manifest += size;
		d->n_manifest++;
	} else {
		d->other += size;
	}
	return 0;
}

static int kvb_shale_store_bytes(void *h, const struct kvb_opts *o, uint64_t *out)
{
	struct kvb_shale *s = h;
	struct kvb_shale_du d;
	struct kvb_shale_stats st;
	memset(&d, 0, sizeof(d));
	int rc = obj_list_each(s->store, "", 0, kvb_shale_du_one, &d);
	if (rc)
		return rc;
	kvb_shale_stats(s, &st);
	printf("kvbench engine=shalefs bench=space_detail sst_bytes=%" PRIu64 " ssts=%" PRIu64
	       " wal_bytes=%" PRIu64 " wals=%" PRIu64 " manifest_bytes=%" PRIu64
	       " manifests=%" PRIu64 " other_bytes=%" PRIu64 " l0_count=%" PRIu64
	       " sorted_runs=%" PRIu64 "\n",
	       d.sst, d.n_sst, d.wal, d.n_wal, d.manifest, d.n_manifest, d.other, st.l0_count,
	       st.sorted_runs);
	*out = d.total;
	return 0;
}

static size_t kvb_shale_rss_budget(void *h, const struct kvb_opts *o, char *why, size_t whylen)
{
	struct kvb_shale *s = h;
	size_t mem = s->conf.memtable_bytes;
	size_t frozen = s->conf.max_frozen_memtables ? s->conf.max_frozen_memtables : 2;
	size_t sst = s->conf.sst_max_bytes ? s->conf.sst_max_bytes : (size_t)64 << 20;
	/* 2 + frozen: the active memtable, the frozen ones, and the table the
	 * flusher builds ahead of its upload (kv_flush_build.c). */
	size_t budget = mem * (2 + frozen) + s->conf.block_cache_bytes + 2 * sst + ((size_t)32 << 20);
	snprintf(why, whylen,
		 "memtable x (2 + max_frozen %zu) + block cache + 2 x sst_max_bytes + 32 MiB", frozen);
	return budget;
}

static void kvb_shale_describe(void *h, const struct kvb_opts *o, FILE *f)
{
	struct kvb_shale *s = h;
	fprintf(f,
		"kvbench engine=shalefs bench=config db=%s memtable_mib=%zu max_frozen=default(2) "
		"block_cache_mib=%zu bloom_bits=%d l0_trigger=default(4) l0_max=default(32) "
		"compression=default(zstd_level_-1) flush_interval_ms=default(100) gc_ms=%u\n",
		o->db, s->conf.memtable_bytes >> 20, s->conf.block_cache_bytes >> 20,
		s->conf.bloom_bits_per_key, o->gc_ms);
}

static const struct kvb_engine kvb_shale_engine = {
	.name = "shalefs",
	.open = kvb_shale_open,
	.close = kvb_shale_close,
	.destroy = kvb_shale_destroy,
	.put = kvb_shale_put,
	.get = kvb_shale_get,
	.scan = kvb_shale_scan,
	.compact_all = NULL,              /* kv.h has no manual compaction: settle */
	.sample = kvb_shale_sample,
	.store_bytes = kvb_shale_store_bytes,
	.rss_budget = kvb_shale_rss_budget,
	.describe = kvb_shale_describe,
};

int main(int argc, char **argv)
{
	return kvb_main(argc, argv, &kvb_shale_engine);
}
