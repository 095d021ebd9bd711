/*
 * fs_int.h - internals of the fs module, sectioned by defining file.
 * Never included from outside fs/ (tests of fs internals excepted).
 */
#ifndef SHALE_FS_INT_H
#define SHALE_FS_INT_H

/* 312 or more: below it libfuse 3.14 maps fuse_session_loop_mt to its 3.2
 * ABI, which reads the loop config as the old struct, and the loop then
 * starts and ends a thread per request. */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fs/fs.h"
#include "kv/kv.h"
#include "objstore/objstore.h"
#include "util/util.h"

#define FS_LOG "fs"

#define FS_ROOT_INO ((uint64_t)FUSE_ROOT_ID)     /* 1 */
#define FS_FIRST_INO ((uint64_t)2)
/* Inode numbers are reserved in ranges of this many: one superblock write
 * per range, never reused (a crash skips the rest of a range). */
#define FS_INO_RANGE ((uint64_t)1024)
/* Virtual inodes of the control directory: never stored, never in the table. */
#define FS_CTL_DIR_INO ((uint64_t)0xFFFFFFFFFFFFFF00ULL)
#define FS_CTL_STATS_INO ((uint64_t)0xFFFFFFFFFFFFFF01ULL)
#define FS_CTL_CMD_INO ((uint64_t)0xFFFFFFFFFFFFFF02ULL)
#define FS_CTL_INFO_INO ((uint64_t)0xFFFFFFFFFFFFFF03ULL)
/* Longest command line, and reply line, of the ctl file. */
#define FS_CTL_REPLY_MAX 512
#define FS_IS_CTL(ino) ((ino) >= FS_CTL_DIR_INO)

#define FS_NAME_MAX 255
#define FS_SYMLINK_MAX 4095
#define FS_XATTR_NAME_MAX 255
#define FS_XATTR_SIZE_MAX 65536
#define FS_MAX_FILE_SIZE ((uint64_t)1 << 50)    /* 1 PiB; EFBIG above */
/* Chunk indices below which a whole-file delete writes tombstones blind
 * rather than reading what exists (fs_orphan.c, fs_data.c): 64 GiB. */
#define FS_BLIND_DELETE_MAX ((uint64_t)1 << 20)
/* First readdir cookie of a directory's entries (1 and 2 are . and ..). */
#define FS_FIRST_COOKIE ((uint64_t)3)

/* ======================= fs_key.c: keys and records ======================= */

/* Key prefixes (docs/fs-format.md). */
#define FS_K_SUPER  'S'
#define FS_K_INODE  'I'
#define FS_K_DENT   'D'
#define FS_K_COOKIE 'R'
#define FS_K_CHUNK  'C'
#define FS_K_XATTR  'X'
#define FS_K_ORPHAN 'O'

/* Longest key: prefix + 8-byte ino + a 255-byte name. */
#define FS_KEY_MAX (1 + 8 + FS_XATTR_NAME_MAX + 1)

struct fs_key {
	uint8_t b[FS_KEY_MAX];
	size_t len;
};

void fs_key_super(struct fs_key *k);
void fs_key_inode(struct fs_key *k, uint64_t ino);
void fs_key_orphan(struct fs_key *k, uint64_t ino);
/* name must be <= FS_XATTR_NAME_MAX bytes (callers check). */
void fs_key_dent(struct fs_key *k, uint64_t parent, const char *name, size_t nlen);
void fs_key_cookie(struct fs_key *k, uint64_t parent, uint64_t cookie);
void fs_key_chunk(struct fs_key *k, uint64_t ino, uint64_t idx);
void fs_key_xattr(struct fs_key *k, uint64_t ino, const char *name, size_t nlen);
/* The first key after every key of (prefix, ino): bound for iterators. */
void fs_key_ino_end(struct fs_key *k, char prefix, uint64_t ino);
/* Just (prefix, ino): the lower bound. */
void fs_key_ino_start(struct fs_key *k, char prefix, uint64_t ino);

struct fs_time {
	int64_t sec;
	uint32_t nsec;
};

/* An inode record: the I key's value (without the inline symlink). */
struct fs_attr {
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint32_t nlink;
	uint32_t flags;
	uint8_t hints;             /* FS_HINT_*: byte 1 of the record */
	uint64_t size;
	uint64_t rdev;
	uint64_t blocks;           /* 512-byte units stored in C keys */
	struct fs_time atime, mtime, ctime, btime;
	uint64_t parent;           /* directories: the parent (root: itself) */
	uint64_t next_cookie;      /* directories: next readdir cookie */
};

/* Record hints (byte 1 of the inode record): facts that spare an engine
 * read. Writers that do not know a hint write the byte as 0, which means
 * "unknown", never a wrong answer; so a hint is only ever trusted when set.
 * FS_HINT_NO_XATTRS: the inode has no X key. Set at creation, cleared in
 * the batch that writes its first X key. ls -l asks for security.selinux
 * of every entry; without the hint each of those is an engine miss. */
#define FS_HINT_NO_XATTRS 0x01

/* Encode attr (+ inline symlink target) into a malloc'd value (caller frees).
 * Returns 0 or -ENOMEM. */
int fs_attr_encode(const struct fs_attr *a, const char *link, size_t link_len, void **out,
		   size_t *out_len);
/* Decode; *link (when not NULL) is a malloc'd NUL-terminated copy of an inline
 * symlink target or NULL. Returns 0, -EIO (malformed record; logged), -ENOMEM. */
int fs_attr_decode(struct fs_attr *a, char **link, size_t *link_len, const void *val,
		   size_t len, uint64_t ino);

/* A directory entry: the D key's value. */
struct fs_dent {
	uint64_t ino;
	uint8_t type;              /* mode >> 12 */
	uint64_t cookie;
};
#define FS_DENT_LEN 17
void fs_dent_encode(uint8_t out[FS_DENT_LEN], const struct fs_dent *d);
int fs_dent_decode(struct fs_dent *d, const void *val, size_t len);
/* R value: ino:8 type:1 name. out must hold 9 + nlen bytes. */
void fs_cookie_encode(uint8_t *out, uint64_t ino, uint8_t type, const char *name, size_t nlen);

/* The superblock: the S key's value. */
struct fs_super {
	uint32_t format;
	uint32_t chunk_size;
	uint8_t uuid[16];
	uint64_t ino_limit;        /* every ino below this may have been used */
	uint64_t created_ns;
};
#define FS_SUPER_LEN 48
void fs_super_encode(uint8_t out[FS_SUPER_LEN], const struct fs_super *s);
/* Returns 0 or -EPROTO (bad magic/size; logged). */
int fs_super_decode(struct fs_super *s, const void *val, size_t len);

static inline struct fs_time fs_time_now(void)
{
	uint64_t ns = util_wall_ns();
	struct fs_time t = { (int64_t)(ns / 1000000000u), (uint32_t)(ns % 1000000000u) };
	return t;
}

/* ======================= fs_optime.c: FUSE request latency ======================= */

/* The timed operations: every method of fs_ops_untimed but init, destroy
 * and the forgets. X(op) per operation, op the fuse_lowlevel_ops field. */
#define FS_OPTIME_OPS(X) X(lookup) X(getattr) X(setattr) X(readlink) X(mknod) X(mkdir) \
	X(unlink) X(rmdir) X(symlink) X(rename) X(link) X(open) X(read) X(write) X(release) \
	X(fsync) X(opendir) X(readdir) X(readdirplus) X(releasedir) X(fsyncdir) X(statfs) \
	X(setxattr) X(getxattr) X(listxattr) X(removexattr) X(create) X(fallocate)
enum fs_optime_op {
#define FS_OPTIME_ENUM(op) FS_OPT_##op,
	FS_OPTIME_OPS(FS_OPTIME_ENUM)
#undef FS_OPTIME_ENUM
	FS_OPT_COUNT
};

/* ======================= fs_inode.c: the inode table ======================= */

/*
 * A buffered chunk: the whole 64 KiB image of chunk `idx` of a file, dirty.
 * Protected by its inode's mu.
 */
struct fs_chunk {
	struct fs_chunk *next;
	uint64_t idx;
	uint32_t stored_len;       /* bytes of this chunk in the engine, 0 = none */
	int complete;              /* a write reached the chunk's last byte */
	uint8_t data[];            /* FS_CHUNK_SIZE bytes */
};

struct fs_inode {
	uint64_t ino;
	struct fs_inode *hnext;    /* protected by fs->itab_mu */
	uint64_t nlookup;          /* protected by fs->itab_mu: kernel lookup count */
	uint32_t pins;             /* protected by fs->itab_mu: temporary references */

	/* Held across engine calls that concern this inode only (see the
	 * DESIGN block of fs_inode.c); never across fuse_reply_*. */
	pthread_mutex_t mu;
	int loaded;                /* protected by mu: a is valid */
	int gone;                  /* protected by mu: reclaimed; I key deleted */
	struct fs_attr a;          /* protected by mu */
	char *link;                /* protected by mu: symlink target */
	size_t link_len;           /* protected by mu */
	uint32_t nopen;            /* protected by mu: open file handles */
	struct fs_chunk *chunks;   /* protected by mu: dirty chunk images */
	size_t n_chunks;           /* protected by mu */
	int attr_dirty;            /* protected by mu: a changed, I key not yet written */
	int wb_err;                /* protected by mu: failed background flush, for fsync */
	uint64_t since_fsync;      /* protected by mu: bytes written since the last
				    * fsync (wal_bypass_bytes) */
	uint64_t blocks_seen;      /* protected by mu: st_blocks last sent with attributes
				    * the kernel caches (lookup, getattr) */
	atomic_int needs_flush;    /* any thread: chunks or attr_dirty (flusher hint) */
	/* 1: the record's FS_HINT_NO_XATTRS (struct fs_attr), so getxattr
	 * and listxattr answer without an engine read. The kernel asks for
	 * security.capability before the first write to every file, and ls -l
	 * for security.selinux of every entry. Set when the record is loaded
	 * or created; setxattr clears it before its batch. */
	atomic_int no_xattrs;
	/* On fs->dirty (protected by fs->itab_mu): every inode whose
	 * needs_flush is set is on it (fs_inode_mark_dirty); clean ones leave
	 * at the flusher's next pass or when the object is freed. */
	struct fs_inode *dnext, *dprev;
	int on_dirty;
	/* On fs->idle (protected by fs->itab_mu): objects with no pins that
	 * the kernel still knows, oldest first: the candidates to free past
	 * the cap (fs_inode.c, THE CAP). */
	struct fs_inode *inext, *iprev;
	int on_idle;
};

/* A lookup count kept without its object (fs_inode.c, THE CAP). */
struct fs_ghost {
	uint64_t ino;
	uint64_t nlookup;
	struct fs_ghost *next;
};

/* The inode table starts with this many buckets and doubles whenever it
 * holds more than two inodes per bucket (fs_itab_insert): a fixed 4096
 * made chains of 15 and more once 60,000 inodes were cached, and walking
 * them under itab_mu was the daemon's largest user-space cost. */
#define FS_ITAB_MIN_BUCKETS 4096

/* fs_inode.c, BATCH REUSE: at most FS_BATCH_KEEP batches of at most
 * FS_BATCH_KEEP_BYTES encoded are kept, so under 16 MiB allocated (a
 * batch's buffer grows by doubling). */
#define FS_BATCH_KEEP 4
#define FS_BATCH_KEEP_BYTES ((size_t)2 << 20)

struct fs {
	struct fs_config conf;
	struct kv_db *db;          /* borrowed */
	struct obj_backend *store; /* borrowed (stats) */
	int started;

	/* Inode table. Lock order: an inode's mu, then itab_mu (innermost);
	 * itab_mu is never held across engine calls or fuse_reply_*. */
	pthread_mutex_t itab_mu;
	struct fs_inode **itab;                   /* protected by itab_mu */
	size_t itab_buckets;                      /* a power of two; itab_mu */
	size_t n_inodes;                          /* protected by itab_mu */
	struct fs_inode *idle, *idle_tail;        /* protected by itab_mu */
	struct fs_ghost **ghosts;                 /* protected by itab_mu */
	size_t ghost_buckets;                     /* a power of two; itab_mu */
	size_t n_ghosts;                          /* protected by itab_mu */
	uint64_t n_evicted;                       /* protected by itab_mu */
	/* Inodes that may hold buffered data (see struct fs_inode), so the
	 * flusher never scans the whole table: with 10,000 cached inodes
	 * that scan, under itab_mu, was a quarter of the daemon's CPU. */
	struct fs_inode *dirty;                   /* protected by itab_mu */
	size_t n_dirty;                           /* protected by itab_mu */

	/* Cross-directory rename of a directory (the VFS's
	 * s_vfs_rename_mutex): taken before any inode mu, held while the
	 * subtree check walks parent pointers, so ancestry cannot change. */
	pthread_mutex_t rename_mu;

	/* Inode number allocation. */
	pthread_mutex_t ino_mu;
	pthread_cond_t ino_cv;
	uint64_t ino_next;         /* protected by ino_mu */
	uint64_t ino_limit;        /* protected by ino_mu: reserved in the superblock */
	int ino_reserving;         /* protected by ino_mu: a thread writes the superblock */
	struct fs_super super;     /* protected by ino_mu (ino_limit mirrors it) */

	/* Write buffer accounting and the flusher thread. */
	pthread_mutex_t wb_mu;
	pthread_cond_t wb_cv;      /* writers waiting for room; flusher kicks */
	size_t wb_bytes;           /* protected by wb_mu */
	int flusher_stop;          /* protected by wb_mu */
	int flusher_kick;          /* protected by wb_mu */
	unsigned wb_waiters;       /* writers in fs_wb_wait_room; protected by wb_mu */
	/* The error of the last failed move of buffered data into the engine
	 * (the store fails: ENOSPC, EACCES, EIO), 0 after one succeeds. A
	 * writer waiting for room returns it instead of waiting. */
	atomic_int wb_store_err;
	pthread_t flusher;
	int flusher_running;

	/* Open control-file handles (fs_ctl.c): their text, freed at release,
	 * or by fs_free for handles whose release never came (the session
	 * ended while a `shalefs stats` had the file open). */
	pthread_mutex_t ctl_mu;
	struct fs_ctl_fh *ctl_fhs; /* protected by ctl_mu */

	/* Batches of buffered data kept for reuse (fs_inode.c, BATCH REUSE). */
	pthread_mutex_t batch_mu;
	struct kv_batch *batch_free[FS_BATCH_KEEP]; /* protected by batch_mu */
	size_t n_batch_free;       /* protected by batch_mu */

	struct fuse_session *se;   /* borrowed; NULL when not serving FUSE */
	char errmsg[256];          /* why fs_start failed (fs_last_error) */
	atomic_int rofs_logged;    /* the "now read-only" line was written */
	atomic_int init_done;      /* FUSE init received (writeback known) */
	int writeback;             /* kernel granted writeback cache */
	/* When the last "small" fsync came (fs_note_small_fsync): bulk data
	 * stays on the WAL for conf.wal_bypass_quiet_ms after it. */
	atomic_uint_fast64_t small_fsync_ns;

	/* Space accounting (statfs, conf.size_limit): the I keys, and the
	 * sum of the sizes of regular files. Counted by a scan of the I keys
	 * at fs_start (fs_space_scan), then kept by this mount's own changes;
	 * never stored (docs/fs-format.md, "Space accounting"). A read-only
	 * mount keeps what it counted at its start. */
	atomic_uint_fast64_t live_inodes, live_bytes;

	/* Counters (relaxed atomics). */
	atomic_uint_fast64_t n_lookup, n_create, n_unlink, n_rename, n_read, n_write, n_fsync,
		n_readdir, n_flush_batches, n_flush_chunks, bytes_read, bytes_written,
		n_orphans_reclaimed, n_write_waits, n_errors_erofs, n_flusher_runs;

	uint64_t started_wall_ns;  /* when fs_start ran; immutable after it */

	/* Latency of each FUSE operation (fs_optime.c); lock-free. */
	struct util_hist op_lat[FS_OPT_COUNT];
};

/* 512-byte units of a chunk value of len bytes (st_blocks). */
static inline uint64_t fs_blocks_of(uint64_t len)
{
	return (len + 511) / 512;
}

/* Allocate the empty table (fs_alloc). Returns 0 or -ENOMEM. */
int fs_inode_table_init(struct fs *fs);
/* Free every table object, buffered data included, and the table (fs_free;
 * no other thread runs). */
void fs_inode_table_free(struct fs *fs);
/*
 * fs_inode_get - pin the table object of ino, creating an unloaded one if
 * needed (no I/O). *out is pinned; drop with fs_inode_unpin.
 * Returns 0 or -ENOMEM.
 */
int fs_inode_get(struct fs *fs, uint64_t ino, struct fs_inode **out);
/* fs_inode_new - insert a fresh, loaded inode (a new ino; no I/O), pinned.
 * Returns 0, -ENOMEM. */
int fs_inode_new(struct fs *fs, uint64_t ino, const struct fs_attr *a, const char *link,
		 size_t link_len, struct fs_inode **out);
/* 1 when ino is cached with no_xattrs set (see struct fs_inode); 0 when
 * unknown. */
int fs_inode_no_xattrs(struct fs *fs, uint64_t ino);
void fs_inode_unpin(struct fs *fs, struct fs_inode *ip);
/* Add n kernel lookups (one per fuse_reply_entry/create). */
void fs_inode_ref_lookup(struct fs *fs, struct fs_inode *ip, uint64_t n);
/* Drop n kernel lookups of ino (forget). */
void fs_inode_forget(struct fs *fs, uint64_t ino, uint64_t n);
/*
 * fs_inode_lock - lock ip->mu and load its record if needed.
 * Returns 0 (locked), -ENOENT (no such inode; unlocked), -EIO, -ENOMEM.
 * A gone inode is returned locked with 0: callers check ip->gone.
 */
int fs_inode_lock(struct fs *fs, struct fs_inode *ip);
void fs_inode_unlock(struct fs_inode *ip);
/*
 * fs_inode_get_locked - fs_inode_get, then fs_inode_lock: on success *out
 * is pinned and locked (release both with fs_inode_unlock_unpin); on error
 * nothing is held and *out is NULL. Returns 0, -ENOENT (no such inode),
 * -EIO, -ENOMEM. A gone inode is returned with 0: callers check ip->gone.
 */
int fs_inode_get_locked(struct fs *fs, uint64_t ino, struct fs_inode **out);
/* Unlock and unpin what fs_inode_get_locked returned; NULL is a no-op. */
void fs_inode_unlock_unpin(struct fs *fs, struct fs_inode *ip);
/* Lock up to 4 inodes (NULLs and duplicates allowed) in ascending ino order.
 * Returns 0 with all locked, or an error with none locked. */
int fs_inode_lock_set(struct fs *fs, struct fs_inode **v, int n);
void fs_inode_unlock_set(struct fs_inode **v, int n);
/* Allocate a never-used inode number. Returns 0, -EROFS, or an engine error. */
int fs_ino_alloc(struct fs *fs, uint64_t *out);
/* Put ip's I key into b (ip->mu held). Clears attr_dirty. */
int fs_inode_put(struct fs_inode *ip, struct kv_batch *b);
/* Convert an attr to a struct stat. */
void fs_attr_to_stat(const struct fs_attr *a, uint64_t ino, struct stat *st);
/* ip's attributes as the user sees them: st_blocks counts buffered chunks
 * as they will be stored (ip->mu held). */
void fs_inode_stat(struct fs_inode *ip, struct stat *st);
/* Apply a kv_write; on -EROFS log the fencing once. Returns kv_write's code. */
int fs_write_batch(struct fs *fs, struct kv_batch *b);
/* The same with kv_write_unlogged: bulk file data only (fs_data.c). */
int fs_write_batch_unlogged(struct fs *fs, struct kv_batch *b);
/* A flush batch is bulk when it carries at least this many whole chunks
 * (and its file took wal_bypass_bytes since its last fsync). */
#define FS_BULK_CHUNKS 4
/*
 * Bulk data skips the WAL only when no small fsync (of a file not in bulk
 * mode, or of a directory) came in the last conf.wal_bypass_quiet_ms
 * (default FS_DFLT_WAL_BYPASS_QUIET_MS, 5 s): every fsync
 * waits for all earlier writes, and unlogged ones become durable by a
 * memtable flush (tens of MB), not by a WAL object (a few MB). With a
 * database committing every 20 ms beside a 1 GiB copy on s3://, its
 * fsyncs took 0.25-2.9 s each that way, against 0.35-0.6 s on the WAL
 * (bench/fsync_under_bulk; docs/fs-format.md).
 */
void fs_note_small_fsync(struct fs *fs);
/* 1 when no small fsync came in the last wal_bypass_quiet_ms. */
int fs_bulk_quiet(struct fs *fs);
/* -EROFS if the mount is read-only or the engine was fenced. */
int fs_check_writable(struct fs *fs);
/* Set ip->needs_flush and put ip on the dirty list (ip->mu held). */
void fs_inode_mark_dirty(struct fs *fs, struct fs_inode *ip);
/* Collect pins of inodes needing a flush (flusher). *out malloc'd. */
int fs_inode_collect_dirty(struct fs *fs, struct fs_inode ***out, size_t *n);
/* Count delta more (or fewer) bytes of chunk images in the write buffer;
 * a decrease wakes writers waiting for room. Any thread, wb_mu not held. */
void fs_wb_account(struct fs *fs, long delta);
/* Write buffered chunks (all, or only complete ones) and the I key in one
 * batch (ip->mu held). Returns 0 or -errno (kept in ip->wb_err). */
int fs_inode_flush_locked(struct fs *fs, struct fs_inode *ip, int only_complete);
/* Drop buffered chunks without writing (ip->mu held). */
void fs_inode_drop_chunks_locked(struct fs *fs, struct fs_inode *ip);

/* ======================= fs_data.c: file data ======================= */

/* Account `delta` more bytes of regular-file size (a write or truncate
 * past the end). Returns 0, or -ENOSPC (nothing accounted) when that would
 * pass conf.size_limit. Any thread. */
int fs_space_grow(struct fs *fs, uint64_t delta);
/* Account `delta` fewer bytes (truncate down, reclaim, a grow undone). */
void fs_space_shrink(struct fs *fs, uint64_t delta);
/* Count the I keys and the sizes of regular files (fs_start). Returns 0 or
 * an engine error. */
int fs_space_scan(struct fs *fs);

/* Read up to size bytes at off. Called with ip->mu held; returns with it
 * released (the engine reads run unlocked, at a snapshot taken under it).
 * Returns bytes read or -errno. */
ssize_t fs_data_read_unlock(struct fs *fs, struct fs_inode *ip, uint64_t off, size_t size,
			    char *buf);
/* Buffer a write (ip->mu held). Returns bytes written or -errno. */
ssize_t fs_data_write(struct fs *fs, struct fs_inode *ip, uint64_t off, const char *buf,
		      size_t size);
/* Change the size (ip->mu held): flush, then one batch that trims the tail
 * chunk, deletes chunks past the end and writes the I key. */
int fs_data_truncate_locked(struct fs *fs, struct fs_inode *ip, uint64_t size,
			    struct kv_batch *extra);
/* Add to b the deletion of chunks [first, end) of ino, without reading
 * them (they need not exist). Returns 0 or -ENOMEM. */
int fs_data_delete_chunks(struct kv_batch *b, uint64_t ino, uint64_t first, uint64_t end);
/* Punch [off, off+len) to zeros keeping the size (ip->mu held). */
int fs_data_punch_locked(struct fs *fs, struct fs_inode *ip, uint64_t off, uint64_t len);
/* Wait while the write buffer is full (no lock held). Returns 0, or the store's error
 * (wb_store_err) when the buffer cannot drain because the store fails. */
int fs_wb_wait_room(struct fs *fs);
int fs_flusher_start(struct fs *fs);
void fs_flusher_stop(struct fs *fs);
/* Flush every dirty inode. Returns 0 or the first error. */
int fs_data_flush_all(struct fs *fs);

/* ======================= fs_orphan.c: unlinked inodes ======================= */

/* Delete the C, X, I and O keys of ino (orphan reclaim; idempotent). a:
 * its attributes if loaded, else NULL (read from the record). Returns 0 or
 * an engine error. */
int fs_orphan_reclaim_keys(struct fs *fs, uint64_t ino, const struct fs_attr *a);
/* Release a file handle (ip->mu held): flush, nopen--, reclaim at zero if
 * unlinked. Returns 0 or the flush's or the reclaim's error. */
int fs_orphan_release_locked(struct fs *fs, struct fs_inode *ip);
/* Reclaim ip if it is unlinked and not open (ip->mu held). */
int fs_orphan_maybe_reclaim_locked(struct fs *fs, struct fs_inode *ip);
/* Reclaim every inode with an O key (fs_start: files a crash left
 * unlinked while open). Returns 0 or an engine error. */
int fs_orphan_reclaim_all(struct fs *fs);

/* ======================= fs_mount.c: lifecycle, whole-mount operations ======================= */

/* The errno an fsync reports for the result rc of kv_sync (or a flush):
 * ENOMEM, ENOSPC, EDQUOT, EACCES and EROFS as they are, anything else
 * logged and EIO. */
int fs_sync_errno(struct fs *fs, int rc);

/* ======================= fs_dir.c: names ======================= */

/* Look up name in parent (no locks needed). Returns 0, -ENOENT, -EIO. */
int fs_dent_get(struct fs *fs, uint64_t parent, const char *name, struct fs_dent *out);
/* Put/delete the D and R keys of an entry. */
int fs_dent_put(struct kv_batch *b, uint64_t parent, const char *name, const struct fs_dent *d);
int fs_dent_del(struct kv_batch *b, uint64_t parent, const char *name, uint64_t cookie);
/* 1 if directory ino has no entries, 0 if it has, <0 on error. */
int fs_dir_is_empty(struct fs *fs, uint64_t ino);
/* A name one may look up or create: 0, -ENOENT (empty), -ENAMETOOLONG,
 * -EINVAL (a '/'). */
int fs_dir_name_check(const char *name);
/* 1 when name in parent is the control directory (FS_CTL_NAME in the root). */
int fs_dir_is_ctl_name(uint64_t parent, const char *name);
/* 0 for a usable directory (ip->mu held), else -ENOENT (unlinked or gone)
 * or -ENOTDIR. */
int fs_dir_check(struct fs_inode *ip);
/* Most links of an inode (a directory's subdirectories count): EMLINK. */
#define FS_LINK_MAX 65000

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi);
void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi);

/* ======================= fs_rename.c: rename ======================= */

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags);

/* ======================= fs_ops.c: the FUSE edge ======================= */

/* The handlers, untimed (fs_optime.c wraps them). */
extern const struct fuse_lowlevel_ops fs_ops_untimed;

static inline struct fs *fs_of(fuse_req_t req)
{
	return (struct fs *)fuse_req_userdata(req);
}

/* ======================= fs_reply.c: FUSE replies ======================= */

/*
 * Each handler ends with exactly one of these, given the rc of its fs_do_*
 * function: rc < 0 replies with the error (the one place fs errors become
 * positive errnos; the engine's own codes become EIO), rc == 0 with the
 * out-params. No lock may be held.
 */
void fs_reply_err(fuse_req_t req, int rc);                 /* rc 0: success */
void fs_reply_none(fuse_req_t req);                        /* forget */
void fs_reply_entry(fuse_req_t req, int rc, const struct fuse_entry_param *e);
/* Returns -1 when rc was 0 but the reply did not reach the kernel
 * (interrupted): the caller undoes the lookup and the open handle. */
int fs_reply_create(fuse_req_t req, int rc, const struct fuse_entry_param *e,
		    const struct fuse_file_info *fi);
void fs_reply_attr(fuse_req_t req, int rc, const struct stat *st, double timeout);
void fs_reply_readlink(fuse_req_t req, int rc, const char *link);
/* Returns -1 when rc was 0 but the reply did not reach the kernel: the
 * kernel will not release the handle, so the caller does. */
int fs_reply_open(fuse_req_t req, int rc, const struct fuse_file_info *fi);
void fs_reply_buf(fuse_req_t req, int rc, const void *buf, size_t len);
void fs_reply_write(fuse_req_t req, int rc, size_t n);
/* getxattr/listxattr: size 0 asks for the length, a smaller size than len
 * is ERANGE, else the value. */
void fs_reply_xattr(fuse_req_t req, int rc, size_t size, const void *val, size_t len);
struct statvfs;
void fs_reply_statfs(fuse_req_t req, int rc, const struct statvfs *sv);

/* ======================= fs_ctl.c: the control directory ======================= */

/* The parts of the handlers for control inodes (see fs_ctl.c): each
 * returns 0 or -errno and fills its out-params; the caller replies. */
int fs_ctl_lookup(struct fs *fs, uint64_t ino, struct fuse_entry_param *e);
int fs_ctl_lookup_name(struct fs *fs, uint64_t parent, const char *name,
		       struct fuse_entry_param *e);
int fs_ctl_getattr(struct fs *fs, uint64_t ino, struct stat *st);
/* An open control file's handle (fi->fh): its text, on fs->ctl_fhs. */
struct fs_ctl_fh {
	struct fs_ctl_fh *prev, *next;    /* protected by fs->ctl_mu */
	char text[];                      /* NUL-terminated */
};
/* On success fi->fh is a struct fs_ctl_fh (fs_ctl_do_release frees it). */
int fs_ctl_do_open(struct fs *fs, uint64_t ino, struct fuse_file_info *fi);
/* *out: a malloc'd copy of *n bytes of the handle's text (the caller's). */
int fs_ctl_do_read(uint64_t ino, size_t size, off_t off, const struct fuse_file_info *fi,
		   char **out, size_t *n);
/* Run the command line in data; its reply line goes to the handle. */
int fs_ctl_do_write(struct fs *fs, uint64_t ino, const char *data, size_t size,
		    const struct fuse_file_info *fi);
void fs_ctl_do_release(struct fs *fs, struct fuse_file_info *fi);
/* *buf: malloc'd, the caller's (also on error), *pos bytes of entries. */
int fs_ctl_do_readdir(fuse_req_t req, uint64_t ino, size_t size, off_t off, int plus,
		      char **buf, size_t *pos);

#endif /* SHALE_FS_INT_H */
