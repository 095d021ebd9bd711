/*
 * kvbench_rocksdb.c - kvbench (bench/kvbench.h) over RocksDB 7.8 through
 * its C API (rocksdb/c.h; Debian librocksdb-dev), for comparison.
 *
 *   kvbench_rocksdb --db=DIR [options of kvbench_main.c]
 *
 * CONFIGURATION (every option not listed is RocksDB's default)
 *   write_buffer_size  = --write-buffer-mb (64 MiB = RocksDB's default);
 *                        max_write_buffer_number stays 2
 *   block cache        = LRU of --cache-mb (64 MiB; default 32 MiB)
 *   filter_policy      = bloom of --bloom-bits (10; default none)
 *   compression        = snappy (the default when built with it; explicit)
 *   leveled compaction, L0 trigger 4, slowdown 20, stop 36,
 *   max_background_jobs 2: defaults
 *   writes: sync = 0, WAL on (db_bench's defaults)
 *
 * ACCOUNTING
 *   Bytes written: the harness's wchar. "Compaction pending" is RocksDB's
 *   own: rocksdb.compaction-pending, rocksdb.mem-table-flush-pending and
 *   the running compactions and flushes.
 */
#include <errno.h>
#include <inttypes.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>

#include "bench/kvbench.h"

struct kvb_rocksdb {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_block_based_table_options_t *bbto;
	rocksdb_cache_t *cache;
	rocksdb_writeoptions_t *wo;
	rocksdb_readoptions_t *ro;
};

static void kvb_rocksdb_free(struct kvb_rocksdb *r)
{
	if (r->db)
		rocksdb_close(r->db);
	if (r->opts)
		rocksdb_options_destroy(r->opts);
	if (r->bbto)
		rocksdb_block_based_options_destroy(r->bbto);
	if (r->cache)
		rocksdb_cache_destroy(r->cache);
	if (r->wo)
		rocksdb_writeoptions_destroy(r->wo);
	if (r->ro)
		rocksdb_readoptions_destroy(r->ro);
	free(r);
}

static int kvb_rocksdb_open(void **out, const struct kvb_opts *o, int fresh, char *err,
			    size_t errlen)
{
	struct kvb_rocksdb *r = calloc(1, sizeof(*r));
	char *e = NULL;
	if (!r)
		return -ENOMEM;
	r->opts = rocksdb_options_create();
	r->bbto = rocksdb_block_based_options_create();
	r->cache = rocksdb_cache_create_lru(o->cache_bytes);
	r->wo = rocksdb_writeoptions_create();
	r->ro = rocksdb_readoptions_create();
	rocksdb_block_based_options_set_block_cache(r->bbto, r->cache);
	if (o->bloom_bits > 0)
		/* the table options own the policy from here on */
		rocksdb_block_based_options_set_filter_policy(
			r->bbto, rocksdb_filterpolicy_create_bloom(o->bloom_bits));
	rocksdb_options_set_block_based_table_factory(r->opts, r->bbto);
	rocksdb_options_set_create_if_missing(r->opts, 1);
	rocksdb_options_set_write_buffer_size(r->opts, o->write_buffer_bytes);
	rocksdb_options_set_compression(r->opts, rocksdb_snappy_compression);
	rocksdb_writeoptions_set_sync(r->wo, 0);
	rocksdb_writeoptions_disable_WAL(r->wo, 0);
	(void)fresh;
	r->db = rocksdb_open(r->opts, o->db, &e);
	if (e) {
		snprintf(err, errlen, "%s", e);
		rocksdb_free(e);
		r->db = NULL;
		kvb_rocksdb_free(r);
		return -EIO;
	}
	*out = r;
	return 0;
}

static int kvb_rocksdb_close(void *h)
{
	kvb_rocksdb_free(h);
	return 0;
}

static int kvb_rocksdb_destroy(const struct kvb_opts *o)
{
	return kvb_dir_remove(o->db);
}

static int kvb_rocksdb_put(void *h, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct kvb_rocksdb *r = h;
	char *e = NULL;
	rocksdb_put(r->db, r->wo, k, klen, v, vlen, &e);
	if (e) {
		fprintf(stderr, "rocksdb_put: %s\n", e);
		rocksdb_free(e);
		return -EIO;
	}
	return 0;
}

static int kvb_rocksdb_get(void *h, const void *k, size_t klen, size_t *vlen)
{
	struct kvb_rocksdb *r = h;
	char *e = NULL;
	char *v = rocksdb_get(r->db, r->ro, k, klen, vlen, &e);
	if (e) {
		fprintf(stderr, "rocksdb_get: %s\n", e);
		rocksdb_free(e);
		return -EIO;
	}
	if (!v)
		return 0;
	rocksdb_free(v);
	return 1;
}

static int kvb_rocksdb_scan(void *h, uint64_t *n, uint64_t *bytes)
{
	struct kvb_rocksdb *r = h;
	rocksdb_iterator_t *it = rocksdb_create_iterator(r->db, r->ro);
	uint64_t cnt = 0, b = 0;
	char *e = NULL;
	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl, vl;
		rocksdb_iter_key(it, &kl);
		rocksdb_iter_value(it, &vl);
		cnt++;
		b += kl + vl;
	}
	rocksdb_iter_get_error(it, &e);
	rocksdb_iter_destroy(it);
	*n = cnt;
	*bytes = b;
	if (e) {
		fprintf(stderr, "rocksdb iterator: %s\n", e);
		rocksdb_free(e);
		return -EIO;
	}
	return 0;
}

static int kvb_rocksdb_compact_all(void *h)
{
	struct kvb_rocksdb *r = h;
	rocksdb_compact_range(r->db, NULL, 0, NULL, 0);
	return 0;
}

static uint64_t kvb_rocksdb_int(struct kvb_rocksdb *r, const char *prop)
{
	uint64_t v = 0;
	if (rocksdb_property_int(r->db, prop, &v))
		return UINT64_MAX;
	return v;
}

static void kvb_rocksdb_sample(void *h, struct kvb_sample *s)
{
	struct kvb_rocksdb *r = h;
	char *l0 = rocksdb_property_value(r->db, "rocksdb.num-files-at-level0");
	if (l0) {
		s->l0_count = strtoull(l0, NULL, 10);
		rocksdb_free(l0);
	}
	s->l0_limit = 36;                 /* level0_stop_writes_trigger */
	s->l0_trigger = 4;                /* level0_file_num_compaction_trigger */
	s->compaction_pending = kvb_rocksdb_int(r, "rocksdb.compaction-pending") == 1 ||
				kvb_rocksdb_int(r, "rocksdb.mem-table-flush-pending") == 1 ||
				kvb_rocksdb_int(r, "rocksdb.num-running-compactions") > 0 ||
				kvb_rocksdb_int(r, "rocksdb.num-running-flushes") > 0;
}

static int kvb_rocksdb_store_bytes(void *h, const struct kvb_opts *o, uint64_t *out)
{
	return kvb_dir_bytes(o->db, out);
}

static void kvb_rocksdb_describe(void *h, const struct kvb_opts *o, FILE *f)
{
	fprintf(f,
		"kvbench engine=rocksdb bench=config db=%s write_buffer_mib=%zu block_cache_mib=%zu "
		"bloom_bits=%d compression=snappy sync=0 wal=on\n",
		o->db, o->write_buffer_bytes >> 20, o->cache_bytes >> 20, o->bloom_bits);
}

static const struct kvb_engine kvb_rocksdb_engine = {
	.name = "rocksdb",
	.open = kvb_rocksdb_open,
	.close = kvb_rocksdb_close,
	.destroy = kvb_rocksdb_destroy,
	.put = kvb_rocksdb_put,
	.get = kvb_rocksdb_get,
	.scan = kvb_rocksdb_scan,
	.compact_all = kvb_rocksdb_compact_all,
	.sample = kvb_rocksdb_sample,
	.store_bytes = kvb_rocksdb_store_bytes,
	.rss_budget = NULL,
	.describe = kvb_rocksdb_describe,
};

int main(int argc, char **argv)
{
	return kvb_main(argc, argv, &kvb_rocksdb_engine);
}
