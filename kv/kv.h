/*
 * kv.h - ShaleFS's LSM key-value engine; every file it keeps is an object.
 *
 * A kv_db is an ordered map from byte-string keys to byte-string values,
 * stored in an object store (objstore.h) as WAL objects, SSTs and
 * manifests (docs/kv-format.md). One process at a time is the writer of a
 * store; any number may open it read-only. Opening a writer fences the
 * previous one: from then on the older handle returns -EROFS for writes.
 *
 * ERRORS
 *   0 on success, a negative errno, or a kv code below KV_ERR_BASE
 *   (kv_strerror() names both). Codes a caller should expect:
 *     -ENOENT      key not found (kv_get)
 *     -EROFS       handle is read-only, fenced by a newer writer, or in the
 *                  ERROR state after an internal failure (a batch half
 *                  applied); a failing store is not one (kv_sync)
 *     KV_ECORRUPT  an object failed its checksum or format checks; the
 *                  message names the object
 *     -ENOMEM, -EIO, and store errors passed through
 *
 * DURABILITY
 *   kv_write() returns once the batch is in the memtable and queued for
 *   the WAL; it is durable within flush_interval_ms, or as soon as
 *   kv_sync() returns. Batches become durable in the order they were
 *   written (the WAL is one ordered log): after a crash, what survives is
 *   a prefix of the write order that includes everything sync'd.
 *
 * THREADING
 *   A kv_db is safe to use from any number of threads. A kv_batch, a
 *   kv_iter and a kv_snapshot belong to one thread at a time.
 */
#ifndef SHALE_KV_H
#define SHALE_KV_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

struct obj_backend;
struct kv_lease_conf;

/* kv-specific error codes (negative, far from errno values). */
#define KV_ERR_BASE (-30800)
#define KV_ECORRUPT (-30800)      /* object failed checksum/format checks */
#define KV_EFENCED  (-30801)      /* internal: a newer writer fenced us (callers see -EROFS) */
#define KV_ERR_LAST (-30801)

/* Text for a negative errno or a KV_* code. */
const char *kv_strerror(int err);

struct kv_db;
struct kv_batch;
struct kv_iter_user;
struct kv_snapshot;

enum kv_open_mode {
	KV_OPEN_WRITER = 0,          /* create the store if empty; fence any older writer */
	KV_OPEN_READONLY = 1,        /* follow the latest manifest and WAL */
	KV_OPEN_CHECKPOINT = 2,      /* read-only view pinned at conf->checkpoint */
};

/* kv_config.compression_level: no compression at all. */
#define KV_COMPRESSION_OFF (-100000)

struct kv_config {
	unsigned version;                 /* KV_CONFIG_VERSION */
	enum kv_open_mode mode;
	const char *checkpoint;           /* name, for KV_OPEN_CHECKPOINT */
	unsigned flush_interval_ms;       /* WAL flush period; default 100 */
	size_t wal_max_bytes;             /* flush the WAL buffer early above this; default 4 MiB */
	size_t memtable_bytes;            /* freeze the memtable above this; default 64 MiB */
	unsigned max_frozen_memtables;    /* writers wait above this; default 2 */
	size_t block_cache_bytes;         /* default 64 MiB */
	unsigned l0_max;                  /* writers wait at this many L0 SSTs (frozen
					   * memtables count); default 32 */
	unsigned l0_compact_trigger;      /* compact at this many L0 SSTs; default 4 */
	unsigned l0_bulk_trigger;         /* ... or this many during a bulk load (kv_compact.c,
					   * BULK LOADS); default 3/4 of l0_max; at most
					   * l0_max - max_frozen_memtables, at least
					   * l0_compact_trigger (= off) */
	int compression_level;            /* zstd level for SST blocks, negative = zstd's
					   * fast levels; 0 = default (-1);
					   * KV_COMPRESSION_OFF = store blocks raw */
	int bloom_bits_per_key;           /* default 10 */
	unsigned poll_interval_ms;        /* read-only followers; default 1000 */
	int no_background;                /* tests: no compactor/GC threads */
	size_t sst_max_bytes;             /* split compaction output above this; default 64 MiB */
	unsigned gc_interval_ms;          /* least time between GC passes, which run on
					   * events, never on a timer (kv_gc.c,
					   * SCHEDULE); default 60000 */
	unsigned gc_min_age_ms;           /* SSTs younger than this are never deleted; default 300000 */
	int gc_dry_run;                   /* log what GC would delete, delete nothing */
	unsigned manifests_keep;          /* old manifests kept besides pinned ones; default 16 */
	unsigned idle_compact_ms;         /* merge L0 once neither it nor the data changed for this long
					   * (kv_compact.c, IDLE MERGE); default 2000;
					   * KV_IDLE_COMPACT_NEVER = off */
	/* The writer lease and reader registration (kv_lease.c, docs/lease.md);
	 * borrowed for kv_open only. NULL: none, the writer relies on
	 * fencing alone (unit tests, and tools that hold the lease already). */
	struct kv_lease_conf *lease;
	/* kv_close: how long to keep trying to store what is still in
	 * memory while the store fails (default 30000), before giving up and
	 * reporting it. */
	unsigned close_timeout_ms;
	/* Bytes kept in the store (object "reserve") while it has room, and
	 * released when it fills so that deletes can be stored (kv_reclaim.c);
	 * 0 or KV_RESERVE_NONE: none (the shalefs command asks for
	 * KV_DFLT_RESERVE_BYTES). */
	size_t reserve_bytes;
	/* A table of at most this many bytes that is read at random is
	 * fetched whole, in the background, for the object store's local
	 * disk cache (kv_readahead.c, WARM); 0 = never (the default: only
	 * worth it with a disk cache under the engine). */
	uint64_t warm_max_bytes;
	/* Values of at least this many bytes are written by the memtable
	 * flush into a data table of their own, and the tables hold
	 * references to them, so compaction never copies them again
	 * (kv_ref.c); 0 = never (the default). */
	size_t data_min_bytes;
	/* A data table whose live values are below this percentage of its
	 * size has those a compaction meets copied into a new one, so the
	 * dead rest can go (kv_ref.c, REWRITING); 0 = the default (50),
	 * KV_DATA_REWRITE_NEVER = never. */
	unsigned data_rewrite_pct;
};
#define KV_DATA_REWRITE_NEVER UINT_MAX
#define KV_DFLT_DATA_REWRITE_PCT 50
#define KV_RESERVE_NONE SIZE_MAX
#define KV_DFLT_RESERVE_BYTES ((size_t)16 << 20)
#define KV_IDLE_COMPACT_NEVER UINT_MAX

#define KV_CONFIG_VERSION 1
#define KV_CONFIG_INIT { .version = KV_CONFIG_VERSION }

/*
 * Ownership of a store (kv_lease.c; docs/lease.md). A writer open with a
 * lease takes lease/<gen> before it fences anything, and kv_close
 * releases it after the final flush; a read-only or checkpoint open
 * registers under readers/ until kv_close.
 */
struct kv_lease_info {
	uint64_t gen;                     /* lease/<gen>; 0 for a reader */
	int held;                         /* a writer holds the store */
	int clean;                        /* released with everything durable */
	int reader;                       /* a reader's registration */
	struct util_proc_id who;          /* the holder or reader */
	char mountpoint[1024];            /* "" when not mounted */
	char checkpoint[256];             /* readers at a checkpoint; "" otherwise */
	uint64_t since_ns;                /* wall clock, when it opened the store */
	uint64_t epoch;                   /* writer epoch claimed (writers) */
	char object[64];                  /* the object this was read from */
};
struct kv_lease_conf {
	const char *mountpoint;           /* recorded for others to read; may be NULL */
	unsigned wait_ms;                 /* wait for a live holder on this host */
	int takeover;                     /* take the lease from any holder (fencing it) */
	/* Called once when the open starts to wait for a live holder; may be NULL.
	 * The conf is borrowed for kv_open only; its out fields are written then. */
	void (*waiting)(void *arg, const struct kv_lease_info *holder);
	void *arg;
	struct kv_lease_info *holder;     /* out: the holder when kv_open returns -EBUSY,
					   * the previous holder when took_over is set */
	int took_over;                    /* out: 1 the holder was gone, 2 takeover asked */
};
enum kv_lease_liveness {
	KV_LEASE_FREE = 0,                /* released: nobody writes */
	KV_LEASE_LIVE = 1,                /* a running process on this host */
	KV_LEASE_DEAD = 2,                /* a process of this host that is gone */
	KV_LEASE_REMOTE = 3,              /* another host (or pid namespace): cannot tell */
};
/* The store's newest lease record. Returns 0, -ENOENT (never held),
 * KV_ECORRUPT (named in the log) or a store error. */
int kv_lease_read(struct obj_backend *store, struct kv_lease_info *out);
enum kv_lease_liveness kv_lease_liveness(const struct kv_lease_info *l);
/* "HOST (pid N, since T, on MOUNTPOINT)" into buf; returns its length. */
size_t kv_lease_describe(const struct kv_lease_info *l, char *buf, size_t len);
/* Every registered reader, in order of registration; fn returns 0 to go
 * on, <0 to stop with that error. */
typedef int (*kv_reader_fn)(void *arg, const struct kv_lease_info *r);
int kv_readers_list(struct obj_backend *store, kv_reader_fn fn, void *arg);
/* Remove a reader's registration (a dead one, or --force). Returns 0 or an error. */
int kv_reader_forget(struct obj_backend *store, const struct kv_lease_info *r);

/*
 * The store marker (kv_store.c): what makes a location a ShaleFS store.
 */
#define KV_STORE_MARKER "shalefs-store"
/* The newest store format this shalefs reads: 1 = plain, 2 = encrypted
 * (docs/encryption.md). A plain store is still written as format 1, so
 * older binaries keep reading it. */
#define KV_STORE_FORMAT 2u
#define KV_STORE_FORMAT_PLAIN 1u
#define KV_STORE_FORMAT_ENCRYPTED 2u
#define KV_STORE_MARKED 1                 /* kv_store_check: a store */
#define KV_STORE_UNMARKED 2               /* ... made before the marker existed */
/* Is there a store here? Returns KV_STORE_MARKED, KV_STORE_UNMARKED,
 * -ENOENT (no store), -EPROTO (a newer format), -ENOKEY (an encrypted
 * store opened without its key: no crypt layer on `store`),
 * -EMEDIUMTYPE (a plain store opened with a key), KV_ECORRUPT, or a
 * store error. */
int kv_store_check(struct obj_backend *store);
/* Add the marker to an unmarked store (a writer does). Returns 0 or an error. */
int kv_store_mark(struct obj_backend *store);
/* Make an empty location a store (writes the marker only, encrypted when
 * `store` has a crypt layer, whose key objects do not count as content;
 * the first
 * writer open writes the first manifest). Returns 0, -EEXIST (a store is
 * there already), -ENOTEMPTY (other objects are there and !force; the
 * first one's name goes to first, firstlen bytes), or a store error. */
int kv_store_format(struct obj_backend *store, int force, char *first, size_t firstlen);

/*
 * kv_open - open the engine over `store`. The store must outlive the db
 * (kv_close does not free it). On success *out is the caller's (kv_close).
 * Returns 0, -EROFS (writer open on a store whose conditional create is
 * broken), KV_ECORRUPT, -ENOENT (checkpoint not found / read-only open of
 * an empty store), -EBUSY (conf->lease: another process holds the store;
 * conf->lease->holder says who), or a store error.
 */
int kv_open(struct kv_db **out, struct obj_backend *store, const struct kv_config *conf);

/* kv_close - flush everything written (writer), stop threads, free.
 * Returns the first error of the final flush (the handle is freed anyway). */
int kv_close(struct kv_db *db);

/* kv_abandon - free without flushing: simulates a crash (tests). */
void kv_abandon(struct kv_db *db);

/* Single-key writes: shorthand for a one-entry batch. */
int kv_put(struct kv_db *db, const void *key, size_t klen, const void *val, size_t vlen);
int kv_delete(struct kv_db *db, const void *key, size_t klen);

/* Atomic batches: all entries or none survive a crash. */
int kv_batch_create(struct kv_batch **out);
int kv_batch_put(struct kv_batch *b, const void *key, size_t klen, const void *val, size_t vlen);
int kv_batch_delete(struct kv_batch *b, const void *key, size_t klen);
void kv_batch_clear(struct kv_batch *b);
size_t kv_batch_count(const struct kv_batch *b);
/* Encoded bytes: about what a cleared batch keeps allocated for reuse. */
size_t kv_batch_bytes(const struct kv_batch *b);
void kv_batch_free(struct kv_batch *b);
/* Apply a batch. May wait (backpressure) while flushes catch up; while
 * the store fails, it returns that failure instead of waiting (-ENOSPC,
 * -EACCES, -EIO as for kv_sync).
 * Returns 0, -EROFS, -ENOMEM, -EINVAL (empty key, key > 64 KiB). */
int kv_write(struct kv_db *db, struct kv_batch *b);
/*
 * kv_write_unlogged - the same, but the batch is not copied into the WAL:
 * it becomes durable when its memtable is flushed to an SST, so large
 * values reach the store once instead of twice. Durability and order are
 * kept as for kv_write (a crash leaves a prefix of the write order; within
 * flush_interval_ms, or at kv_sync), at a price: while such a batch waits
 * for its flush, later WAL objects wait too, and kv_sync waits for a
 * memtable flush (an SST upload) rather than one WAL object. For bulk
 * data (fs/ uses it for long sequential writes), not for small records.
 */
int kv_write_unlogged(struct kv_db *db, struct kv_batch *b);

/*
 * kv_get - newest value of key (at the snapshot, if not NULL).
 * On success *val is malloc'd, the caller's (free()).
 * Returns 0, -ENOENT (only ever "no such key"), KV_ECORRUPT (also: a
 * table the manifest references is missing from the store), or a store
 * error.
 */
int kv_get(struct kv_db *db, const struct kv_snapshot *snap, const void *key, size_t klen,
	   void **val, size_t *vlen);
/*
 * kv_get_part - bytes [off, off + cap) of key's value, clipped to its end,
 * copied into buf: a reader that wants a slice of a large value (fs/ reads
 * 4 KiB of a 64 KiB chunk) pays for no copy of the rest. *vlen gets the
 * whole value's length, so min(cap, *vlen - off) bytes were copied (none
 * when off >= *vlen). Returns as kv_get.
 */
int kv_get_part(struct kv_db *db, const struct kv_snapshot *snap, const void *key, size_t klen,
		size_t off, void *buf, size_t cap, size_t *vlen);

/* kv_sync - block until every batch written before the call is durable in
 * the store. While the store fails, the batches stay in memory and the
 * engine keeps retrying in the background (kv_db.c, STORE FAILURES); a
 * sync that sees an attempt fail returns that failure instead of waiting:
 * -ENOSPC (store full), -EDQUOT (over a quota), -EACCES (access denied),
 * -EIO (any other). A later sync succeeds once the store takes writes again.
 * Returns 0, those, or -EROFS (fenced, or the ERROR state). */
int kv_sync(struct kv_db *db);

/* Snapshots: a consistent view at the current sequence number. */
int kv_snapshot_create(struct kv_db *db, struct kv_snapshot **out);
void kv_snapshot_release(struct kv_db *db, struct kv_snapshot *s);

/*
 * Iteration over [lo, hi) (NULL = unbounded) in key order, at a snapshot
 * (NULL = now). Key/value pointers are borrowed until the next call.
 */
int kv_iter_create(struct kv_db *db, const struct kv_snapshot *snap, const void *lo,
		   size_t lolen, const void *hi, size_t hilen, struct kv_iter_user **out);
void kv_iter_seek(struct kv_iter_user *it, const void *key, size_t klen);
int kv_iter_valid(struct kv_iter_user *it);
void kv_iter_next(struct kv_iter_user *it);
const void *kv_iter_key(struct kv_iter_user *it, size_t *klen);
/* The value, valid until the iterator moves. A large value kept in a data
 * table is read here; if that fails the iteration ends (NULL, 0 bytes,
 * kv_iter_valid false, kv_iter_status the error). */
const void *kv_iter_value(struct kv_iter_user *it, size_t *vlen);
/* The value's length, without reading it. */
size_t kv_iter_value_len(struct kv_iter_user *it);
/* 0 or the error that ended it (never -ENOENT: a missing table is KV_ECORRUPT). */
int kv_iter_status(struct kv_iter_user *it);
void kv_iter_free(struct kv_iter_user *it);

/* Counters as key/value pairs (memtable bytes, l0_count, wal flushes,
 * health of background threads, ...). */
typedef void (*kv_stat_emit_fn)(void *arg, const char *key, uint64_t value);
void kv_stats(struct kv_db *db, kv_stat_emit_fn emit, void *arg);
/* Bytes of the tables and data tables of the current manifest (stats'
 * sst_bytes + data_table_bytes): what is
 * known to be stored, for the storage cost estimate. Thread-safe. */
uint64_t kv_table_bytes(struct kv_db *db);

/* 1 once the handle was fenced by a newer writer or entered the ERROR state. */
int kv_is_readonly(struct kv_db *db);

/*
 * Checkpoints: a named, durable pin of one manifest plus the WAL objects
 * durable when it was taken. Opening a store with KV_OPEN_CHECKPOINT gives
 * a read-only view that never changes; GC keeps everything it needs.
 * These work on a store directly (another process may be the writer):
 * they go through the manifest CAS. Names: 1-255 bytes of [A-Za-z0-9._-].
 */
struct kv_checkpoint_info {
	const char *name;                 /* borrowed for the callback only */
	uint64_t manifest_id;
	uint64_t wal_id;
	uint64_t created_ns;              /* wall clock */
	uint64_t expire_ns;               /* wall clock; 0 = never */
};
typedef int (*kv_checkpoint_fn)(void *arg, const struct kv_checkpoint_info *c);
/* Returns 0, -EEXIST (name taken), -EINVAL (bad name), -ENOENT (empty store). */
int kv_checkpoint_create(struct obj_backend *store, const char *name, uint64_t expire_ns);
/* Same, from the writer: everything written before the call is made
 * durable first, so the checkpoint holds it. */
int kv_db_checkpoint_create(struct kv_db *db, const char *name, uint64_t expire_ns);
int kv_checkpoint_list(struct obj_backend *store, kv_checkpoint_fn fn, void *arg);
/* Returns 0 or -ENOENT. */
int kv_checkpoint_delete(struct obj_backend *store, const char *name);

/* The last corruption the engine found (every KV_ECORRUPT logs and
 * records one): which object, and where in it. */
struct kv_corrupt_info {
	uint64_t count;                   /* corruptions reported so far */
	char object[64];                  /* the last one's object ("" none yet) */
	uint64_t offset;                  /* ... offset, or UINT64_MAX: the object as a whole */
	char reason[256];                 /* ... reason, as logged */
	const char *file;                 /* ... and where it was found */
	int line;
};
/* Copy the process's corruption record into *out. Any thread. */
void kv_corrupt_last(struct kv_corrupt_info *out);

/*
 * Scrub (kv_scrub.c): read every object the store still needs (the latest
 * manifest, the checkpoints' manifests, their tables, the WAL objects
 * above the oldest replay point) and check every byte, going on past
 * damage. Works on a store directly; a writer may be running (what it
 * changes meanwhile may be reported as missing: run again).
 */
enum kv_scrub_kind { KV_SCRUB_MANIFEST, KV_SCRUB_CHECKPOINT, KV_SCRUB_SST, KV_SCRUB_WAL };
struct kv_scrub_damage {
	const char *object;               /* its name in the store */
	enum kv_scrub_kind kind;          /* KV_SCRUB_CHECKPOINT: a checkpoint's manifest */
	const char *checkpoint;           /* ... and that checkpoint's name */
	uint64_t off, len;                /* damaged bytes; len 0: the object is missing */
	const char *reason;
	/* Tables: the user keys the damaged bytes held, in (lo, hi] (lo NULL:
	 * from the table's first key, hi NULL: to its last). */
	int keys_known;
	const uint8_t *lo, *hi;
	size_t lo_len, hi_len;
	int in_latest;                    /* the live filesystem needs the object */
	int in_tables;                    /* WAL: its records are in the latest's tables */
	const char *checkpoints;          /* checkpoints that need it, "a,b" ("" none) */
};
struct kv_scrub_summary {
	uint64_t planned, planned_bytes;  /* objects to read; bytes of their tables */
	uint64_t objects, bytes;          /* read so far */
	uint64_t damaged;                 /* damaged stretches found */
	int latest_unreadable;            /* kv_open of the live filesystem would fail */
};
struct kv_scrub_conf {
	unsigned jobs;                    /* objects read at once; 0 = 4 */
	size_t span;                      /* bytes of a table per GET; 0 = 8 MiB */
	/* Called one at a time (from worker threads); non-zero stops the scrub. */
	int (*damage)(void *arg, const struct kv_scrub_damage *d);
	void (*progress)(void *arg, const struct kv_scrub_summary *s, uint64_t planned);
	void *arg;
};
/* Returns 0 (everything read; the damage was reported), -ENOENT (no
 * manifest: not a store with data), a store error, or the callback's. */
int kv_scrub(struct obj_backend *store, const struct kv_scrub_conf *conf,
	     struct kv_scrub_summary *sum);

/*
 * Repair (kv_repair.c): what `fsck --scrub --repair` mends without a guess
 * about lost bytes: a WAL the filesystem cannot replay is cut at its last
 * valid record (KV_REPAIR_CUT_WAL for the damaged or missing object, which
 * keeps its valid prefix; KV_REPAIR_EMPTY_WAL for each later one, which
 * keeps its name and loses its records), tables no manifest references
 * and WAL objects every manifest has in its tables are removed. Nothing
 * is written unless conf->apply; then every object whose bytes change is
 * first copied whole under conf->lost_prefix. The caller makes sure no
 * writer runs. The file's header comment says why each rule is so.
 */
enum kv_repair_kind {
	KV_REPAIR_CUT_WAL, KV_REPAIR_EMPTY_WAL, KV_REPAIR_REMOVE_TABLE, KV_REPAIR_REMOVE_WAL
};
struct kv_repair_action {
	enum kv_repair_kind kind;
	const char *object;
	uint64_t bytes;                   /* bytes removed or dropped */
	uint64_t keep_records, keep_bytes; /* CUT: the valid prefix kept ... */
	uint64_t last_seq;                /* ... and its last seq (0: none) */
	int missing;                      /* CUT: the object was missing (written empty) */
	uint64_t drop_records;            /* EMPTY: records dropped */
	const char *saved_as;             /* apply: where the old bytes were copied ("") */
	int done;                         /* applied */
	int err;                          /* apply failed: the error */
};
struct kv_repair_conf {
	int apply;                        /* 0: report the plan, write nothing */
	uint64_t min_age_ms;              /* unreferenced tables younger are left;
					   * 0 = GC's default (gc_min_age_ms) */
	const char *lost_prefix;          /* e.g. "lost+found/20261207T0612Z/" */
	/* Called for each action, planned or done; non-zero stops. */
	int (*action)(void *arg, const struct kv_repair_action *a);
	/* Why something was left alone. */
	void (*note)(void *arg, const char *text);
	void *arg;
};
struct kv_repair_summary {
	uint64_t planned, done;
};
/* 0 (the plan was reported, or carried out), or an error (store, or a
 * failed action with apply: the actions before it stand). */
int kv_repair(struct obj_backend *store, const struct kv_repair_conf *conf,
	      struct kv_repair_summary *sum);

#endif /* SHALE_KV_H */
