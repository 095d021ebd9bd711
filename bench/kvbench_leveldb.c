/*
 * kvbench_leveldb.c - kvbench (bench/kvbench.h) over LevelDB 1.23 through
 * its C API (leveldb/c.h; Debian libleveldb-dev), for comparison.
 *
 *   kvbench_leveldb --db=DIR [options of kvbench_main.c]
 *
 * CONFIGURATION (every option not listed is LevelDB's default)
 *   write_buffer_size  = --write-buffer-mb (64 MiB; LevelDB's default is
 *                        4 MiB: we give it the memtable ShaleFS gets)
 *   block_cache        = LRU of --cache-mb (64 MiB; default 8 MiB)
 *   filter_policy      = bloom of --bloom-bits (10; default none): ShaleFS
 *                        always has a bloom filter
 *   compression        = snappy (LevelDB's default)
 *   max_file_size, max_open_files, block_size: defaults (2 MiB, 1000, 4 KiB)
 *   writes: leveldb_writeoptions sync = 0 (WAL on, no fsync per write),
 *   reads: default (fill_cache on, no checksum verification)
 *
 * ACCOUNTING
 *   LevelDB has no bytes-written counter in its C API: the harness uses
 *   wchar. "Compaction pending" is LevelDB's own scoring, recomputed from
 *   leveldb.stats: L0 holds >= 4 files, or a level L >= 1 is bigger than
 *   10^L MiB.
 */
#include <errno.h>
#include <inttypes.h>
#include <leveldb/c.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/kvbench.h"

struct kvb_leveldb {
	leveldb_t *db;
	leveldb_options_t *opts;
	leveldb_cache_t *cache;
	leveldb_filterpolicy_t *bloom;
	leveldb_writeoptions_t *wo;
	leveldb_readoptions_t *ro;
};

static void kvb_leveldb_free(struct kvb_leveldb *l)
{
	if (l->db)
		leveldb_close(l->db);
	if (l->opts)
		leveldb_options_destroy(l->opts);
	if (l->cache)
		leveldb_cache_destroy(l->cache);
	if (l->bloom)
		leveldb_filterpolicy_destroy(l->bloom);
	if (l->wo)
		leveldb_writeoptions_destroy(l->wo);
	if (l->ro)
		leveldb_readoptions_destroy(l->ro);
	free(l);
}

static int kvb_leveldb_open(void **out, const struct kvb_opts *o, int fresh, char *err,
			    size_t errlen)
{
	struct kvb_leveldb *l = calloc(1, sizeof(*l));
	char *e = NULL;
	if (!l)
		return -ENOMEM;
	l->opts = leveldb_options_create();
	l->cache = leveldb_cache_create_lru(o->cache_bytes);
	l->wo = leveldb_writeoptions_create();
	l->ro = leveldb_readoptions_create();
	leveldb_options_set_create_if_missing(l->opts, 1);
	leveldb_options_set_write_buffer_size(l->opts, o->write_buffer_bytes);
	leveldb_options_set_cache(l->opts, l->cache);
	if (o->bloom_bits > 0) {
		l->bloom = leveldb_filterpolicy_create_bloom(o->bloom_bits);
		leveldb_options_set_filter_policy(l->opts, l->bloom);
	}
	leveldb_options_set_compression(l->opts, leveldb_snappy_compression);
	leveldb_writeoptions_set_sync(l->wo, 0);
	(void)fresh;
	l->db = leveldb_open(l->opts, o->db, &e);
	if (e) {
		snprintf(err, errlen, "%s", e);
		leveldb_free(e);
		l->db = NULL;
		kvb_leveldb_free(l);
		return -EIO;
	}
	*out = l;
	return 0;
}

static int kvb_leveldb_close(void *h)
{
	kvb_leveldb_free(h);
	return 0;
}

static int kvb_leveldb_destroy(const struct kvb_opts *o)
{
	return kvb_dir_remove(o->db);
}

static int kvb_leveldb_put(void *h, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct kvb_leveldb *l = h;
	char *e = NULL;
	leveldb_put(l->db, l->wo, k, klen, v, vlen, &e);
	if (e) {
		fprintf(stderr, "leveldb_put: %s\n", e);
		leveldb_free(e);
		return -EIO;
	}
	return 0;
}

static int kvb_leveldb_get(void *h, const void *k, size_t klen, size_t *vlen)
{
	struct kvb_leveldb *l = h;
	char *e = NULL;
	char *v = leveldb_get(l->db, l->ro, k, klen, vlen, &e);
	if (e) {
		fprintf(stderr, "leveldb_get: %s\n", e);
		leveldb_free(e);
		return -EIO;
	}
	if (!v)
		return 0;
	leveldb_free(v);
	return 1;
}

static int kvb_leveldb_scan(void *h, uint64_t *n, uint64_t *bytes)
{
	struct kvb_leveldb *l = h;
	leveldb_iterator_t *it = leveldb_create_iterator(l->db, l->ro);
	uint64_t cnt = 0, b = 0;
	char *e = NULL;
	for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
		size_t kl, vl;
		leveldb_iter_key(it, &kl);
		leveldb_iter_value(it, &vl);
		cnt++;
		b += kl + vl;
	}
	leveldb_iter_get_error(it, &e);
	leveldb_iter_destroy(it);
	*n = cnt;
	*bytes = b;
	if (e) {
		fprintf(stderr, "leveldb iterator: %s\n", e);
		leveldb_free(e);
		return -EIO;
	}
	return 0;
}

static int kvb_leveldb_compact_all(void *h)
{
	struct kvb_leveldb *l = h;
	leveldb_compact_range(l->db, NULL, 0, NULL, 0);
	return 0;
}

static void kvb_leveldb_sample(void *h, struct kvb_sample *s)
{
	struct kvb_leveldb *l = h;
	char *stats = leveldb_property_value(l->db, "leveldb.stats");
	s->l0_limit = 12;                 /* kL0_StopWritesTrigger */
	s->l0_trigger = 4;                /* kL0_CompactionTrigger */
	s->compaction_pending = 0;
	if (!stats)
		return;
	/* rows: "  L  Files  Size(MB)  Time(sec)  Read(MB)  Write(MB)" */
	char *save = NULL;
	for (char *line = strtok_r(stats, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int level, files;
		double mb;
		if (sscanf(line, "%d %d %lf", &level, &files, &mb) != 3)
			continue;
		if (level == 0) {
			s->l0_count = (uint64_t)files;
			if (files >= 4)
				s->compaction_pending = 1;
		} else {
			double limit = 10.0;
			for (int i = 1; i < level; i++)
				limit *= 10.0;
			if (mb > limit)
				s->compaction_pending = 1;
		}
	}
	if (s->l0_count == UINT64_MAX)
		s->l0_count = 0;
	leveldb_free(stats);
}

static int kvb_leveldb_store_bytes(void *h, const struct kvb_opts *o, uint64_t *out)
{
	return kvb_dir_bytes(o->db, out);
}

static void kvb_leveldb_describe(void *h, const struct kvb_opts *o, FILE *f)
{
	fprintf(f,
		"kvbench engine=leveldb bench=config version=%d.%d db=%s write_buffer_mib=%zu "
		"block_cache_mib=%zu bloom_bits=%d compression=snappy sync=0\n",
		leveldb_major_version(), leveldb_minor_version(), o->db,
		o->write_buffer_bytes >> 20, o->cache_bytes >> 20, o->bloom_bits);
}

static const struct kvb_engine kvb_leveldb_engine = {
	.name = "leveldb",
	.open = kvb_leveldb_open,
	.close = kvb_leveldb_close,
	.destroy = kvb_leveldb_destroy,
	.put = kvb_leveldb_put,
	.get = kvb_leveldb_get,
	.scan = kvb_leveldb_scan,
	.compact_all = kvb_leveldb_compact_all,
	.sample = kvb_leveldb_sample,
	.store_bytes = kvb_leveldb_store_bytes,
	.rss_budget = NULL,
	.describe = kvb_leveldb_describe,
};

int main(int argc, char **argv)
{
	return kvb_main(argc, argv, &kvb_leveldb_engine);
}
