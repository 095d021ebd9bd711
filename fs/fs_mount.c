/*
 * fs_mount.c - the fs lifecycle (fs_alloc, fs_start, fs_stop, fs_free) and
 * the operations on the whole mount: fs_sync, fs_checkpoint, fs_stats.
 *
 * fs_start reads the superblock (or writes the first one into an empty
 * store), reclaims the orphans a crash left, counts the live inodes and
 * bytes, pins the root and starts the flusher; fs_stop flushes every
 * buffer and stops the flusher. See fs.h for the order of calls.
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fs_set_session(struct fs *fs, struct fuse_session *se)
{
	fs->se = se;
}

int fs_alloc(struct fs **out, const struct fs_config *conf)
{
	struct fs *fs;

	*out = NULL;
	if (!conf || conf->version != FS_CONFIG_VERSION || conf->flush_interval_ms == 0 ||
	    conf->write_buffer_bytes < 2 * (size_t)FS_CHUNK_SIZE || conf->attr_timeout < 0 ||
	    conf->entry_timeout < 0)
		return -EINVAL;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	if (fs_inode_table_init(fs) != 0) {
		free(fs);
		return -ENOMEM;
	}
	fs->conf = *conf;
	CHECK_RETURN(pthread_mutex_init(&fs->itab_mu, NULL));
	CHECK_RETURN(pthread_mutex_init(&fs->rename_mu, NULL));
	CHECK_RETURN(pthread_mutex_init(&fs->ino_mu, NULL));
	CHECK_RETURN(pthread_cond_init(&fs->ino_cv, NULL));
	CHECK_RETURN(pthread_mutex_init(&fs->wb_mu, NULL));
	CHECK_RETURN(pthread_cond_init(&fs->wb_cv, NULL));
	CHECK_RETURN(pthread_mutex_init(&fs->batch_mu, NULL));
	CHECK_RETURN(pthread_mutex_init(&fs->ctl_mu, NULL));
	*out = fs;
	return 0;
}

/* Write the superblock and the root inode of an empty store (one batch). */
static int fs_init_store(struct fs *fs, struct fs_super *s)
{
	struct fs_attr root = { 0 };
	struct kv_batch *b = NULL;
	struct fs_key k;
	uint8_t sv[FS_SUPER_LEN];
	void *iv = NULL;
	size_t il;
	int rc;

	memset(s, 0, sizeof(*s));
	s->format = FS_FORMAT_VERSION;
	s->chunk_size = FS_CHUNK_SIZE;
	rc = util_random_bytes(s->uuid, sizeof(s->uuid));
	if (rc)
		return rc;
	s->ino_limit = FS_FIRST_INO + FS_INO_RANGE;
	s->created_ns = util_wall_ns();

	root.mode = S_IFDIR | 0755;
	root.uid = (uint32_t)getuid();
	root.gid = (uint32_t)getgid();
	root.nlink = 2;
	root.atime = root.mtime = root.ctime = root.btime = fs_time_now();
	root.parent = FS_ROOT_INO;
	root.next_cookie = FS_FIRST_COOKIE;

	rc = kv_batch_create(&b);
	if (rc)
		return rc;
	fs_super_encode(sv, s);
	fs_key_super(&k);
	rc = kv_batch_put(b, k.b, k.len, sv, sizeof(sv));
	if (!rc)
		rc = fs_attr_encode(&root, NULL, 0, &iv, &il);
	fs_key_inode(&k, FS_ROOT_INO);
	if (!rc)
		rc = kv_batch_put(b, k.b, k.len, iv, il);
	if (!rc)
		rc = fs_write_batch(fs, b);
	if (!rc)
		rc = kv_sync(fs->db);
	free(iv);
	kv_batch_free(b);
	if (!rc) {
		char hex[33];
		for (int i = 0; i < 16; i++)
			snprintf(hex + 2 * i, 3, "%02x", s->uuid[i]);
		UTIL_INFO(FS_LOG, "initialised a new filesystem in an empty store "
			  "(format %u, uuid %s)", FS_FORMAT_VERSION, hex);
	}
	return rc;
}

/* Is there any key at all in the store? 1 yes, 0 no, <0 error. */
static int fs_store_has_keys(struct fs *fs)
{
	struct kv_iter_user *it = NULL;
	int rc = kv_iter_create(fs->db, NULL, NULL, 0, NULL, 0, &it);
	if (rc)
		return rc;
	rc = kv_iter_valid(it) ? 1 : kv_iter_status(it);
	kv_iter_free(it);
	return rc;
}

/* Log why fs_start fails and keep the line for fs_last_error. */
#define FS_START_FAIL(fs, ...) do { \
	snprintf((fs)->errmsg, sizeof((fs)->errmsg), __VA_ARGS__); \
	UTIL_ERROR(FS_LOG, "%s", (fs)->errmsg); \
} while (0)

const char *fs_last_error(struct fs *fs)
{
	return fs->errmsg[0] ? fs->errmsg : "unknown error";
}

int fs_start(struct fs *fs, struct kv_db *db, struct obj_backend *store)
{
	struct fs_super s;
	struct fs_key k;
	struct fs_inode *root = NULL;
	void *val = NULL;
	size_t len = 0;
	int rc, fresh = 0;

	assert(!fs->started);
	fs->db = db;
	fs->store = store;
	fs->started_wall_ns = util_wall_ns();
	if (kv_is_readonly(db))
		fs->conf.readonly = 1;

	fs_key_super(&k);
	rc = kv_get(db, NULL, k.b, k.len, &val, &len);
	if (rc == -ENOENT) {
		if (fs->conf.readonly) {
			FS_START_FAIL(fs, "the store holds no filesystem yet: mount it read-write "
				   "once to create one");
			return -ENOENT;
		}
		rc = fs_store_has_keys(fs);
		if (rc > 0) {
			FS_START_FAIL(fs, "the store holds engine data but no ShaleFS superblock: "
				   "it is not a ShaleFS store; refusing to mount it");
			return -EPROTO;
		}
		if (rc == 0) {
			rc = fs_init_store(fs, &s);
			fresh = 1;
		}
		if (rc) {
			FS_START_FAIL(fs, "initialising the filesystem failed: %s", kv_strerror(rc));
			return rc;
		}
	} else if (rc) {
		FS_START_FAIL(fs, "reading the superblock failed: %s", kv_strerror(rc));
		return rc;
	} else {
		rc = fs_super_decode(&s, val, len);
		free(val);
		if (rc) {
			FS_START_FAIL(fs, "the superblock is not a ShaleFS superblock: it is not a "
				      "ShaleFS store; refusing to mount it");
			return rc;
		}
		if (s.format != FS_FORMAT_VERSION) {
			FS_START_FAIL(fs, "the store holds ShaleFS format version %u; this shalefs "
				   "reads format %u only: refusing to mount it", s.format,
				   FS_FORMAT_VERSION);
			return -EPROTO;
		}
		if (s.chunk_size != FS_CHUNK_SIZE) {
			FS_START_FAIL(fs, "the store uses %u-byte chunks; this shalefs uses %u: "
				   "refusing to mount it", s.chunk_size, FS_CHUNK_SIZE);
			return -EPROTO;
		}
	}

	fs->super = s;
	fs->ino_next = s.ino_limit;      /* the rest of the last range is skipped */
	fs->ino_limit = s.ino_limit;
	if (fresh)
		fs->ino_next = FS_FIRST_INO;  /* nothing of the first range was used */

	/* A damaged object (KV_ECORRUPT, logged naming it) costs the reads
	 * that need it, not the mount: both steps below are redone at the
	 * next mount, and `shalefs fsck --scrub` names what it costs. */
	if (!fs->conf.readonly) {
		rc = fs_orphan_reclaim_all(fs);
		if (rc == KV_ECORRUPT) {
			UTIL_WARN(FS_LOG, "files unlinked while open before a crash cannot all be "
				  "reclaimed (a damaged object, named above); the next mount tries again");
		} else if (rc) {
			FS_START_FAIL(fs, "reclaiming orphans failed: %s", kv_strerror(rc));
			return rc;
		}
	}
	/* After the reclaim: what it deleted is not counted. */
	rc = fs_space_scan(fs);
	if (rc == KV_ECORRUPT) {
		UTIL_WARN(FS_LOG, "the inode and byte counts (statfs) leave out what a damaged "
			  "object (named above) holds");
	} else if (rc) {
		FS_START_FAIL(fs, "counting the inodes failed: %s", kv_strerror(rc));
		return rc;
	}

	/* Pin the root: one lookup we never drop. */
	rc = fs_inode_get_locked(fs, FS_ROOT_INO, &root);
	if (rc) {
		FS_START_FAIL(fs, "the root inode cannot be read: %s", kv_strerror(rc));
		return rc == -ENOENT ? -EIO : rc;
	}
	fs_inode_ref_lookup(fs, root, 1);
	fs_inode_unlock_unpin(fs, root);

	if (!fs->conf.readonly) {
		rc = fs_flusher_start(fs);
		if (rc) {
			FS_START_FAIL(fs, "cannot start the flusher thread");
			return rc;
		}
	}
	fs->started = 1;
	return 0;
}

int fs_stop(struct fs *fs)
{
	int rc = 0;

	if (!fs->started)
		return 0;
	if (!fs->conf.readonly) {
		fs_flusher_stop(fs);
		rc = fs_data_flush_all(fs);
	}
	fs->started = 0;
	return rc;
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	fs_inode_table_free(fs);
	CHECK_RETURN(pthread_mutex_destroy(&fs->itab_mu));
	CHECK_RETURN(pthread_mutex_destroy(&fs->rename_mu));
	CHECK_RETURN(pthread_mutex_destroy(&fs->ino_mu));
	CHECK_RETURN(pthread_cond_destroy(&fs->ino_cv));
	CHECK_RETURN(pthread_mutex_destroy(&fs->wb_mu));
	CHECK_RETURN(pthread_cond_destroy(&fs->wb_cv));
	for (size_t i = 0; i < fs->n_batch_free; i++)
		kv_batch_free(fs->batch_free[i]);
	CHECK_RETURN(pthread_mutex_destroy(&fs->batch_mu));
	while (fs->ctl_fhs) {
		struct fs_ctl_fh *h = fs->ctl_fhs;
		fs->ctl_fhs = h->next;
		free(h);
	}
	CHECK_RETURN(pthread_mutex_destroy(&fs->ctl_mu));
	free(fs);
}

/* ---- the whole mount ------------------------------------------------------ */

/* The errno an fsync reports for a failed kv_sync: the store's own
 * (ENOSPC, EACCES: the engine logged it, at a bounded rate), EROFS once
 * fenced, EIO for anything else. */
int fs_sync_errno(struct fs *fs, int rc)
{
	switch (rc) {
	case 0:
	case -ENOMEM:
	case -ENOSPC:
	case -EDQUOT:
	case -EACCES:
		return rc;
	case -EROFS:
		(void)fs_check_writable(fs);
		return rc;
	default:
		UTIL_ERROR(FS_LOG, "sync failed: %s", kv_strerror(rc));
		return -EIO;
	}
}

int fs_sync(struct fs *fs)
{
	int rc, rc2;

	if (fs->conf.readonly)
		return 0;
	fs_note_small_fsync(fs);
	rc = fs_data_flush_all(fs);
	rc2 = kv_sync(fs->db);
	return fs_sync_errno(fs, rc ? rc : rc2);
}

int fs_checkpoint(struct fs *fs, const char *name, uint64_t expire_ns)
{
	int rc;

	if (fs->conf.readonly)
		return -EROFS;
	/* Buffered file data first: kv_db_checkpoint_create makes durable
	 * what the engine has, and closed files may still be in our buffers. */
	rc = fs_data_flush_all(fs);
	if (rc)
		return rc;
	rc = kv_db_checkpoint_create(fs->db, name, expire_ns);
	if (rc == 0)
		UTIL_INFO(FS_LOG, "checkpoint '%s' created", name);
	return rc;
}

void fs_stats(struct fs *fs, fs_stat_emit_fn emit, void *arg)
{
	size_t n_inodes, n_ghosts, wb;
	uint64_t n_evicted;

	CHECK_RETURN(pthread_mutex_lock(&fs->itab_mu));
	n_inodes = fs->n_inodes;
	n_ghosts = fs->n_ghosts;
	n_evicted = fs->n_evicted;
	CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
	CHECK_RETURN(pthread_mutex_lock(&fs->wb_mu));
	wb = fs->wb_bytes;
	CHECK_RETURN(pthread_mutex_unlock(&fs->wb_mu));
	emit(arg, "fs_daemon_pid", (uint64_t)getpid());
	emit(arg, "fs_format", FS_FORMAT_VERSION);
	emit(arg, "fs_readonly", (uint64_t)(fs->conf.readonly || kv_is_readonly(fs->db)));
	emit(arg, "fs_started_unix_ms", fs->started_wall_ns / 1000000u);
	emit(arg, "fs_inodes", atomic_load(&fs->live_inodes));
	emit(arg, "fs_logical_bytes", atomic_load(&fs->live_bytes));
	emit(arg, "fs_inodes_cached", n_inodes);
	emit(arg, "fs_inode_ghosts", n_ghosts);
	emit(arg, "fs_inodes_evicted", n_evicted);
	emit(arg, "fs_write_buffer_bytes", wb);
	emit(arg, "fs_write_buffer_cap", fs->conf.write_buffer_bytes);
	emit(arg, "fs_lookups", atomic_load(&fs->n_lookup));
	emit(arg, "fs_creates", atomic_load(&fs->n_create));
	emit(arg, "fs_unlinks", atomic_load(&fs->n_unlink));
	emit(arg, "fs_renames", atomic_load(&fs->n_rename));
	emit(arg, "fs_reads", atomic_load(&fs->n_read));
	emit(arg, "fs_writes", atomic_load(&fs->n_write));
	emit(arg, "fs_fsyncs", atomic_load(&fs->n_fsync));
	emit(arg, "fs_readdirs", atomic_load(&fs->n_readdir));
	emit(arg, "fs_bytes_read", atomic_load(&fs->bytes_read));
	emit(arg, "fs_bytes_written", atomic_load(&fs->bytes_written));
	emit(arg, "fs_flush_batches", atomic_load(&fs->n_flush_batches));
	emit(arg, "fs_flush_chunks", atomic_load(&fs->n_flush_chunks));
	emit(arg, "fs_write_waits", atomic_load(&fs->n_write_waits));
	emit(arg, "fs_flusher_runs", atomic_load(&fs->n_flusher_runs));
	emit(arg, "fs_orphans_reclaimed", atomic_load(&fs->n_orphans_reclaimed));
	emit(arg, "fs_erofs_errors", atomic_load(&fs->n_errors_erofs));
}
