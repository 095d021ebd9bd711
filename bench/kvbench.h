/*
 * kvbench.h - the shared harness of the kvbench programs (bench/kvbench_*.c).
 *
 * One program per engine (kvbench_shale, kvbench_leveldb, kvbench_rocksdb),
 * all with the same command line and the same workloads, in the style of
 * LevelDB's db_bench: 16-byte keys "%016llu", 100-byte values, WAL on, no
 * sync per write. Each program supplies a `struct kvb_engine` (a table of
 * function pointers, STYLE rule 7) and calls kvb_main(); everything else -
 * option parsing, key and value generation, timing, write accounting, RSS,
 * the sampler of --sustained, the result lines - lives in kvbench_main.c,
 * so the three programs differ only in how they talk to their engine.
 *
 * OUTPUT
 *   One line per phase, "kvbench key=value ...", parsed by the driver
 *   script bench/kvbench (which prints the table); a human reads them too.
 *
 * THREADING
 *   The harness calls the engine from the main thread only, except
 *   sample(), which the --sustained sampler thread calls once a second
 *   while the main thread writes: it must be safe concurrently with put().
 */
#ifndef SHALE_BENCH_KVBENCH_H
#define SHALE_BENCH_KVBENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Options common to every engine; the same flags mean the same thing. */
struct kvb_opts {
	const char *db;                   /* directory (or, for shale, a store URL) */
	uint64_t num;                     /* keys: --num, default 1,000,000 */
	uint64_t reads;                   /* gets in readrandom*; default = num */
	size_t value_size;                /* --value-size, default 100 */
	double compression_ratio;         /* value bytes left after compression; default 0.5 */
	size_t cache_bytes;               /* block cache, default 64 MiB */
	size_t write_buffer_bytes;        /* memtable, default 64 MiB */
	int bloom_bits;                   /* bloom filter bits per key, default 10 */
	uint64_t seed;                    /* key order; default 301 (as db_bench) */
	unsigned sample_ms;               /* --sustained sampling period, default 1000 */
	size_t rss_budget;                /* --sustained RSS limit; 0 = engine's own formula */
	unsigned settle_quiet_ms;         /* settle: no store writes for this long; default 2000 */
	unsigned settle_max_s;            /* settle: give up after this; default 600 */
	unsigned gc_ms;                   /* ShaleFS only, 0 = engine defaults (GC every 60 s,
					   * min age 300 s). Else GC is off until `space`,
					   * which reopens with gc_interval_ms 1000 and
					   * gc_min_age_ms gc_ms, then waits gc_ms + 3 s.
					   * LevelDB/RocksDB delete obsolete files at once */
	int gc_now;                       /* set by `space` before it reopens */
};

/* What the engine reports about itself (sample() fills what it knows;
 * UINT64_MAX = unknown). */
struct kvb_sample {
	uint64_t l0_count;                /* tables in level 0 */
	uint64_t l0_limit;                /* writers stall at this many (l0_max) */
	uint64_t l0_trigger;              /* compaction starts at this many */
	uint64_t store_bytes_written;     /* engine's own count of bytes written to its store */
	int compaction_pending;           /* 1 = the engine says it has work queued or running */
};

struct kvb_engine {
	const char *name;                 /* "shalefs", "leveldb", "rocksdb" */
	/* Open o->db; fresh = 1: the caller removed it, create it. *out is
	 * closed with close(). On failure writes a reason into err. */
	int (*open)(void **out, const struct kvb_opts *o, int fresh, char *err, size_t errlen);
	int (*close)(void *h);
	/* Remove the whole database (fresh start). Returns 0 or -errno. */
	int (*destroy)(const struct kvb_opts *o);
	/* One non-sync write through the WAL. Returns 0 or a negative error. */
	int (*put)(void *h, const void *k, size_t klen, const void *v, size_t vlen);
	/* Returns 1 (found; *vlen set), 0 (not found) or a negative error. */
	int (*get)(void *h, const void *k, size_t klen, size_t *vlen);
	/* Scan everything in key order; counts entries and key+value bytes. */
	int (*scan)(void *h, uint64_t *n, uint64_t *bytes);
	/* Full compaction, returning when done; NULL = the engine has none
	 * (the harness then waits for background compaction to settle). */
	int (*compact_all)(void *h);
	void (*sample)(void *h, struct kvb_sample *s);
	/* Sum of the sizes of every file/object of the database. */
	int (*store_bytes)(void *h, const struct kvb_opts *o, uint64_t *out);
	/* RSS budget for --sustained when --rss-budget-mb is not given, with
	 * the formula written into why. 0 = none. */
	size_t (*rss_budget)(void *h, const struct kvb_opts *o, char *why, size_t whylen);
	/* One line describing the configuration in effect (printed once). */
	void (*describe)(void *h, const struct kvb_opts *o, FILE *f);
};

/* Parse argv, run the benchmarks, print result lines. Returns the exit
 * status for main(). */
int kvb_main(int argc, char **argv, const struct kvb_engine *e);

/* Helpers for engines that keep a database in a local directory. */
int kvb_dir_remove(const char *dir);
int kvb_dir_bytes(const char *dir, uint64_t *out);

#endif /* SHALE_BENCH_KVBENCH_H */
