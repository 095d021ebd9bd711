/*
 * fs.h - ShaleFS: a POSIX filesystem whose every inode, directory entry
 * and file chunk is a key in the kv engine (kv/kv.h). The on-store layout
 * is written out in docs/fs-format.md.
 *
 * LIFECYCLE
 *     fs_alloc(&fs, &conf)          no I/O; the FUSE session can be built
 *     fs_start(fs, db, store)       read (or initialise) the superblock,
 *                                   reclaim orphans, start the flusher
 *     ... fuse_session_loop_mt() with fs_fuse_ops() and `fs` as userdata ...
 *     fs_stop(fs)                   flush every buffer, stop the flusher;
 *                                   the caller then kv_close()s the db
 *     fs_free(fs)
 *
 * ERRORS
 *   0 or a negative errno, converted to a positive one only at the FUSE
 *   edge (fuse_reply_err(req, -rc)).
 *
 * THREADING
 *   The FUSE handlers may run on any number of threads at once (see the
 *   DESIGN block of fs_inode.c for the locks).
 */
#ifndef SHALE_FS_H
#define SHALE_FS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct fs;
struct kv_db;
struct obj_backend;
struct fuse_lowlevel_ops;

/* Format version written in the superblock; a store of another version is
 * refused at mount. */
#define FS_FORMAT_VERSION 1
/* Bytes per file chunk (one C key). Fixed by the format. */
#define FS_CHUNK_SIZE ((uint32_t)65536)

struct fs_config {
	unsigned version;               /* FS_CONFIG_VERSION */
	int readonly;                   /* refuse every change with -EROFS */
	unsigned flush_interval_ms;     /* buffered data reaches the engine within half of this */
	size_t write_buffer_bytes;      /* cap on buffered file data; writers wait above it */
	double attr_timeout;            /* seconds the kernel may cache attributes */
	double entry_timeout;           /* seconds the kernel may cache names */
	int writeback_cache;            /* ask for FUSE_CAP_WRITEBACK_CACHE */
	/* A file written sequentially past this many bytes since its last
	 * fsync sends its full chunks to the engine unlogged: they reach the
	 * store once, in an SST, not in the WAL and then an SST
	 * (kv_write_unlogged). 0 = never. */
	size_t wal_bypass_bytes;
	/* ... but only when no small fsync came in the last this-many ms
	 * (FS_BULK_QUIET_MS by default; 0 = no such pause). */
	unsigned wal_bypass_quiet_ms;
	/* size=: a quota on the logical bytes of live files (the sum of the
	 * sizes of regular files). statfs reports it as the total, and a
	 * write, truncate or fallocate that would take the sum past it fails
	 * with -ENOSPC. 0 = none (statfs reports the store's space). */
	uint64_t size_limit;
	/* inode_cache=: at most this many inode objects in memory (0 = no
	 * cap). Beyond it, idle clean ones the kernel still knows are freed
	 * and only their lookup count kept (fs_inode.c, THE CAP). */
	size_t inode_cache;
	/* What `shalefs stats` shows of this mount (the `info` control
	 * file); borrowed, they must outlive the fs; NULL = not known. */
	const char *store_url;          /* the store's URL, as given */
	const char *mountpoint;
	const char *checkpoint;         /* checkpoint= name; NULL for the live tree */
};

#define FS_CONFIG_VERSION 1
#define FS_DFLT_FLUSH_INTERVAL_MS 200
#define FS_DFLT_WRITE_BUFFER_BYTES ((size_t)64 << 20)
#define FS_DFLT_ATTR_TIMEOUT 1.0
#define FS_DFLT_ENTRY_TIMEOUT 1.0
#define FS_DFLT_WAL_BYPASS_BYTES ((size_t)8 << 20)
#define FS_DFLT_WAL_BYPASS_QUIET_MS 5000
#define FS_DFLT_INODE_CACHE 65536
#define FS_CONFIG_INIT { .version = FS_CONFIG_VERSION, \
	.flush_interval_ms = FS_DFLT_FLUSH_INTERVAL_MS, \
	.write_buffer_bytes = FS_DFLT_WRITE_BUFFER_BYTES, \
	.attr_timeout = FS_DFLT_ATTR_TIMEOUT, .entry_timeout = FS_DFLT_ENTRY_TIMEOUT, \
	.writeback_cache = 1, .wal_bypass_bytes = FS_DFLT_WAL_BYPASS_BYTES, \
	.wal_bypass_quiet_ms = FS_DFLT_WAL_BYPASS_QUIET_MS, .inode_cache = FS_DFLT_INODE_CACHE }

/* fs_alloc - an unstarted filesystem with a copy of conf. On success *out
 * is the caller's (fs_free). Returns 0, -EINVAL (bad config), -ENOMEM. */
int fs_alloc(struct fs **out, const struct fs_config *conf);

/*
 * fs_start - attach the engine and the store (both borrowed; they must
 * outlive the fs) and load the superblock. A writer initialises an empty
 * store (logged) and reclaims orphans left by a crash.
 * Returns 0, -ENOENT (read-only open of a store without a filesystem),
 * -EPROTO (another format version, or not a ShaleFS store; logged),
 * -EROFS, or an engine error.
 */
int fs_start(struct fs *fs, struct kv_db *db, struct obj_backend *store);

/* One line saying why fs_start failed; borrowed until fs_free. */
const char *fs_last_error(struct fs *fs);

/* fs_stop - flush every write buffer to the engine and stop the flusher.
 * Returns 0 or the first flush error (logged with the inode). */
int fs_stop(struct fs *fs);

/* fs_sync - every write the filesystem accepted before the call is
 * durable when it returns 0 (buffers into the engine, then kv_sync).
 * Kernel-cached dirty pages are not seen here: callers that need them
 * syncfs() the mount first. Returns 0 (also on a read-only fs), -EROFS,
 * -ENOSPC, -ENOMEM or -EIO (logged). */
int fs_sync(struct fs *fs);

/* fs_checkpoint - fs_sync, then checkpoint NAME of the store
 * (kv_db_checkpoint_create): it holds everything written before the call.
 * expire_ns: wall-clock ns, 0 = never. Returns 0, -EEXIST, -EINVAL (bad
 * name), -EROFS (read-only mount), or a sync or store error. */
int fs_checkpoint(struct fs *fs, const char *name, uint64_t expire_ns);

/* fs_free - free (after fs_stop). NULL is a no-op. */
void fs_free(struct fs *fs);

/* The session serving fs (for kernel cache invalidations); borrowed. */
struct fuse_session;
void fs_set_session(struct fs *fs, struct fuse_session *se);

/* The low-level operation table; userdata must be the struct fs. */
const struct fuse_lowlevel_ops *fs_fuse_ops(void);

/* Emit the filesystem's counters (the `stats` control file is these, then
 * kv_stats, then obj_stats). */
typedef void (*fs_stat_emit_fn)(void *arg, const char *key, uint64_t value);
void fs_stats(struct fs *fs, fs_stat_emit_fn emit, void *arg);

/*
 * fs_info_render - the `info` control file's text: "key: value\n" lines
 * whose values are text, for `shalefs stats`:
 *   mountpoint, store, checkpoint  from fs_config ("" when not known)
 *   mode                 read-write, read-only or checkpoint
 *   last_error_unix_ms   when the daemon last logged an error or a
 *                        warning (0: never), then last_error_level (error,
 *                        warn) and last_error (one line, "MODULE: text")
 * Ownership and returns as fs_stats_render.
 */
int fs_info_render(struct fs *fs, char **out, size_t *len);

/*
 * fs_latency - the time FUSE requests took, one histogram per operation
 * ("lookup", "getattr", "read", "write", "create", "fsync", ..., named as
 * the fuse_lowlevel_ops fields), each emitted on every call, in a fixed
 * order; h is borrowed for the call. Thread-safe.
 */
struct util_hist_snap;
typedef void (*fs_hist_emit_fn)(void *arg, const char *op, const struct util_hist_snap *h);
void fs_latency(struct fs *fs, fs_hist_emit_fn emit, void *arg);

/*
 * fs_stats_render - the `stats` control file's text: every counter of
 * fs_stats, then kv_stats of the engine, then obj_stats of the store, as
 * "key: value\n" lines (fs started). On success *out is a malloc'd
 * NUL-terminated string, the caller's (free), and *len its length without
 * the NUL. Returns 0 or -ENOMEM (*out untouched).
 */
int fs_stats_render(struct fs *fs, char **out, size_t *len);

/*
 * fs_fsck - check the filesystem graph in db (docs/fs-format.md). Each
 * problem is handed to conf->problem as one line of text (the first
 * FS_FSCK_MAX_REPORTED; all are counted). With conf->live (a writer holds
 * the store) orphans are open files, counted in open_orphans, not
 * problems. Returns 0 (it ran: *sum filled in), -ENOENT (empty store),
 * -EPROTO (another format), or an engine error (could not run).
 */
struct fs_fsck_conf {
	int live;
	void (*problem)(void *arg, const char *text);   /* may be NULL */
	void *arg;
};
struct fs_fsck_summary {
	uint64_t keys, inodes, entries;
	uint64_t problems;
	uint64_t open_orphans;        /* live: files unlinked while open */
};
#define FS_FSCK_MAX_REPORTED 1000
int fs_fsck(struct kv_db *db, const struct fs_fsck_conf *conf, struct fs_fsck_summary *sum);

/*
 * fs_scrub - name every path whose reads fail (fs_scrub.c): every lookup,
 * attribute, chunk and xattr read that reads do, through the engine.
 * conf->skip lists the user-key ranges (lo, hi] that kv_scrub found
 * damaged, so that a listing can go on past them and file data outside
 * them need not be read again.
 */
struct fs_scrub_range {
	const uint8_t *lo, *hi;           /* hi NULL: unknown end */
	size_t lo_len, hi_len;
};
struct fs_scrub_path {
	const char *path;                 /* "/a/b", or "orphan inode N" */
	uint64_t ino;
	/* "entry" (its lookup), "attributes", "data" (ranges), "xattrs",
	 * "listing" (a directory's names past the damage are unknown),
	 * "unreachable" (a directory above it fails) */
	const char *what;
	const char *object;               /* the damaged object the read met ("" unknown) */
	uint64_t object_off;
	const uint64_t (*ranges)[2];      /* "data": {offset, length} of file bytes lost */
	size_t n_ranges;
};
struct fs_scrub_conf {
	const struct fs_scrub_range *skip;
	size_t n_skip;
	/* 0: file data is read only where a damaged range may hold it (the
	 * rest was verified by kv_scrub); 1: every chunk is read. */
	int all;
	void (*path)(void *arg, const struct fs_scrub_path *p);  /* borrowed for the call */
	void *arg;
};
struct fs_scrub_summary {
	uint64_t entries, inodes, bytes;  /* names, inodes and file bytes read */
	uint64_t damaged_paths;
};
int fs_scrub(struct kv_db *db, const struct fs_scrub_conf *conf, struct fs_scrub_summary *sum);

/* Name of the hidden control directory in the root. */
#define FS_CTL_NAME ".shalefs"

#endif /* SHALE_FS_H */
