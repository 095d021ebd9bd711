/*
 * fs_ops.c - the FUSE edge: the low-level operation table, and the
 * handlers of operations on one inode (attributes, open files, data,
 * xattrs, statfs). Names are in fs_dir.c, the control directory in
 * fs_ctl.c, the replies in fs_reply.c.
 *
 * Every handler decodes its request, calls one fs_do_* function that
 * returns 0 or -errno and fills out-params, and replies once through
 * fs_reply.c: fs_reply_err(req, rc) == fuse_reply_err(req, -rc). The
 * fs_do_* functions return with no lock held: results are copied out
 * under the inode lock, the lock dropped, then the reply sent.
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/falloc.h>

/* Pin and lock ino for an operation on it: the kernel knows the inode, so
 * one missing from the store is -ESTALE. */
static int fs_ops_get_locked(struct fs *fs, uint64_t ino, struct fs_inode **out)
{
	int rc = fs_inode_get_locked(fs, ino, out);

	return rc == -ENOENT ? -ESTALE : rc;
}

/* fs_ops_get_locked for an operation that changes ino: a read-only or
 * failed filesystem refuses first, without touching the inode. */
static int fs_ops_get_writable(struct fs *fs, uint64_t ino, struct fs_inode **out)
{
	int rc = fs_check_writable(fs);

	return rc ? rc : fs_ops_get_locked(fs, ino, out);
}

/* ---- session ---------------------------------------------------------------- */

static void fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	if (fs->conf.writeback_cache && !fs->conf.readonly &&
	    (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
		fs->writeback = 1;
	}
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	/* Big writes: up to 1 MiB per request (the kernel caps it by its
	 * max_pages). */
	conn->max_write = 1 << 20;
	conn->max_readahead = 1 << 20;
	conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
	conn->want &= ~(unsigned)FUSE_CAP_SPLICE_WRITE;
	conn->want &= ~(unsigned)FUSE_CAP_SPLICE_MOVE;
	atomic_store(&fs->init_done, 1);
}

static void fs_op_destroy(void *userdata)
{
	/* Flushing happens in fs_stop, after the session loop returns. */
	(void)userdata;
}

static void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_inode_forget(fs_of(req), ino, nlookup);
	fs_reply_none(req);
}

static void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		fs_inode_forget(fs_of(req), forgets[i].ino, forgets[i].nlookup);
	fs_reply_none(req);
}

/* ---- attributes ------------------------------------------------------------ */

static int fs_do_getattr(struct fs *fs, uint64_t ino, struct stat *st)
{
	struct fs_inode *ip;
	int rc;

	if (FS_IS_CTL(ino))
		return fs_ctl_getattr(fs, ino, st);
	rc = fs_ops_get_locked(fs, ino, &ip);
	if (rc)
		return rc;
	fs_inode_stat(ip, st);
	ip->blocks_seen = (uint64_t)st->st_blocks;
	fs_inode_unlock_unpin(fs, ip);
	return 0;
}

static void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct stat st;
	int rc = fs_do_getattr(fs, ino, &st);

	fs_reply_attr(req, rc, &st, fs->conf.attr_timeout);
}

static struct fs_time fs_time_of(const struct timespec *ts)
{
	struct fs_time t = { ts->tv_sec, (uint32_t)ts->tv_nsec };
	return t;
}

/* What setattr(size) refuses (ip->mu held). */
static int fs_setattr_check(const struct fs_inode *ip, const struct stat *attr, int to_set)
{
	if (!(to_set & FUSE_SET_ATTR_SIZE))
		return 0;
	if (S_ISDIR(ip->a.mode))
		return -EISDIR;
	if (!S_ISREG(ip->a.mode) || attr->st_size < 0)
		return -EINVAL;
	return 0;
}

/* Set the mode, owner and time fields the request names into a; ctime is
 * now unless given. */
static void fs_setattr_apply(struct fs_attr *a, const struct stat *attr, int to_set,
			     struct fs_time now)
{
	if (to_set & FUSE_SET_ATTR_MODE)
		a->mode = (a->mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_UID)
		a->uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		a->gid = attr->st_gid;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		a->atime = now;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		a->atime = fs_time_of(&attr->st_atim);
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		a->mtime = now;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		a->mtime = fs_time_of(&attr->st_mtim);
	if (to_set & FUSE_SET_ATTR_CTIME)
		a->ctime = fs_time_of(&attr->st_ctim);
	else
		a->ctime = now;
}

/* Store ip's changed attributes (ip->mu held): a size change as one
 * truncate, anything else as the I key alone. */
static int fs_setattr_store_locked(struct fs *fs, struct fs_inode *ip, const struct stat *attr,
				   int to_set, struct fs_time now)
{
	struct kv_batch *b = NULL;
	int rc;

	if (ip->gone) {
		/* Unlinked and reclaimed, still known to the kernel (the
		 * writeback cache flushes times of deleted inodes): nothing
		 * is stored any more, so only the memory copy changes. */
		if (to_set & FUSE_SET_ATTR_SIZE)
			ip->a.size = (uint64_t)attr->st_size;
		return 0;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if ((uint64_t)attr->st_size != ip->a.size && !(to_set & FUSE_SET_ATTR_MTIME))
			ip->a.mtime = now;
		/* Flush, then one batch: trimmed tail, deleted chunks, record. */
		return fs_data_truncate_locked(fs, ip, (uint64_t)attr->st_size, NULL);
	}
	rc = kv_batch_create(&b);
	if (!rc)
		rc = fs_inode_put(ip, b);
	if (!rc)
		rc = fs_write_batch(fs, b);
	kv_batch_free(b);
	if (rc)
		return rc;
	/* The record written carries any buffered size change too. */
	ip->attr_dirty = 0;
	if (!ip->chunks)
		atomic_store(&ip->needs_flush, 0);
	return 0;
}

static int fs_do_setattr(struct fs *fs, uint64_t ino, const struct stat *attr, int to_set,
			 struct stat *st)
{
	struct fs_inode *ip;
	struct fs_attr saved;
	struct fs_time now = fs_time_now();
	int rc;

	if (FS_IS_CTL(ino))
		return -EPERM;
	rc = fs_ops_get_writable(fs, ino, &ip);
	if (rc)
		return rc;
	saved = ip->a;
	rc = fs_setattr_check(ip, attr, to_set);
	if (!rc) {
		fs_setattr_apply(&ip->a, attr, to_set, now);
		rc = fs_setattr_store_locked(fs, ip, attr, to_set, now);
		if (rc)
			ip->a = saved;
	}
	if (!rc)
		fs_inode_stat(ip, st);
	fs_inode_unlock_unpin(fs, ip);
	return rc;
}

static void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			  struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct stat st;
	int rc = fs_do_setattr(fs, ino, attr, to_set, &st);

	fs_reply_attr(req, rc, &st, fs->conf.attr_timeout);
}

/* On success *out is a malloc'd copy of the target, the caller's. */
static int fs_do_readlink(struct fs *fs, uint64_t ino, char **out)
{
	struct fs_inode *ip;
	int rc;

	*out = NULL;
	if (FS_IS_CTL(ino))
		return -EINVAL;
	rc = fs_ops_get_locked(fs, ino, &ip);
	if (rc)
		return rc;
	if (!S_ISLNK(ip->a.mode) || !ip->link)
		rc = -EINVAL;
	else if (!(*out = strdup(ip->link)))
		rc = -ENOMEM;
	fs_inode_unlock_unpin(fs, ip);
	return rc;
}

static void fs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char *link;
	int rc = fs_do_readlink(fs_of(req), ino, &link);

	fs_reply_readlink(req, rc, link);
	free(link);
}

/* ---- open files ------------------------------------------------------------- */

/*
 * open(O_TRUNC) of an existing file. libfuse asks for atomic O_TRUNC by
 * default, and then the kernel sends no setattr(size=0): it sets its own
 * size to 0 and expects the open to have truncated (fuse_do_setattr,
 * ATTR_OPEN). Like truncate(2) from open, times change even when the size
 * was 0 already. ip->mu held.
 */
static int fs_open_trunc_locked(struct fs *fs, struct fs_inode *ip)
{
	struct fs_attr saved = ip->a;
	int rc;

	ip->a.mtime = ip->a.ctime = fs_time_now();
	rc = fs_data_truncate_locked(fs, ip, 0, NULL);
	if (rc)
		ip->a = saved;
	return rc;
}

/* Open ino with fi->flags: one more open handle; fi gets the handle's
 * options. */
static int fs_do_open(struct fs *fs, uint64_t ino, struct fuse_file_info *fi)
{
	struct fs_inode *ip;
	int rc, acc = fi->flags & O_ACCMODE;

	if (FS_IS_CTL(ino))
		return fs_ctl_do_open(fs, ino, fi);
	if (acc != O_RDONLY || (fi->flags & O_TRUNC)) {
		rc = fs_check_writable(fs);
		if (rc)
			return rc;
	}
	rc = fs_ops_get_locked(fs, ino, &ip);
	if (rc)
		return rc;
	if (ip->gone)
		rc = -ENOENT;
	else if (S_ISDIR(ip->a.mode))
		rc = -EISDIR;
	else if ((fi->flags & O_TRUNC) && S_ISREG(ip->a.mode))
		rc = fs_open_trunc_locked(fs, ip);
	if (!rc)
		ip->nopen++;
	fs_inode_unlock_unpin(fs, ip);
	if (rc)
		return rc;
	fi->fh = 0;
	fi->keep_cache = fs->conf.readonly ? 0 : 1;
	return 0;
}

/* Release a handle fs_do_open gave: of a control file its text, of an
 * inode its open count (the last of an unlinked file reclaims it). */
static int fs_do_release(struct fs *fs, uint64_t ino, struct fuse_file_info *fi)
{
	struct fs_inode *ip;
	int rc;

	if (FS_IS_CTL(ino)) {
		fs_ctl_do_release(fs, fi);
		return 0;
	}
	rc = fs_ops_get_locked(fs, ino, &ip);
	if (rc == 0) {
		if (ip->nopen)
			rc = fs_orphan_release_locked(fs, ip);
		fs_inode_unlock_unpin(fs, ip);
	}
	return rc;
}

static void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	int rc = fs_do_open(fs, ino, fi);

	if (fs_reply_open(req, rc, fi) != 0)
		/* Interrupted: the kernel will not release this handle. */
		(void)fs_do_release(fs, ino, fi);
}

static void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_reply_err(req, fs_do_release(fs_of(req), ino, fi));
}

/* Read up to size bytes at off into b (room for size): *n bytes. */
static int fs_do_read(struct fs *fs, uint64_t ino, size_t size, off_t off, char *b, size_t *n)
{
	struct fs_inode *ip;
	ssize_t got;
	int rc;

	*n = 0;
	if (off < 0)
		return -EINVAL;
	rc = fs_ops_get_locked(fs, ino, &ip);
	if (rc)
		return rc;
	got = fs_data_read_unlock(fs, ip, (uint64_t)off, size, b);
	fs_inode_unpin(fs, ip);
	atomic_fetch_add(&fs->n_read, 1);
	if (got < 0)
		return (int)got;
	*n = (size_t)got;
	return 0;
}

/*
 * Each FUSE worker thread keeps one reply buffer for READ, of up to
 * FS_READ_BUF_MAX (the largest READ the kernel sends: max_write sets its
 * max_pages, fs_op_init), freed when the thread ends:
 * a buffer allocated per request is a fresh mmap (the daemon sends every
 * allocation of 128 KiB and more to mmap, cli/shalefs.c) whose pages are
 * faulted in again on every read. The cap on RSS counts a reply per
 * worker thread already.
 */
#define FS_READ_BUF_MAX ((size_t)1 << 20)

static pthread_key_t fs_read_buf_key;
static pthread_once_t fs_read_buf_once = PTHREAD_ONCE_INIT;

static void fs_read_buf_init(void)
{
	CHECK_RETURN(pthread_key_create(&fs_read_buf_key, free));
}

/* This thread's reply buffer (NULL when size is over FS_READ_BUF_MAX or
 * out of memory: the caller allocates one of its own). */
static char *fs_read_buf(size_t size)
{
	char *b;

	if (size > FS_READ_BUF_MAX)
		return NULL;
	CHECK_RETURN(pthread_once(&fs_read_buf_once, fs_read_buf_init));
	if (!(b = pthread_getspecific(fs_read_buf_key))) {
		if (!(b = malloc(FS_READ_BUF_MAX)))
			return NULL;
		if (pthread_setspecific(fs_read_buf_key, b)) {
			free(b);
			return NULL;
		}
	}
	return b;
}

static void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	char *buf = NULL, *own = NULL;
	size_t n = 0;
	int rc;

	if (FS_IS_CTL(ino)) {
		rc = fs_ctl_do_read(ino, size, off, fi, &own, &n);
		buf = own;
	} else if (!(buf = fs_read_buf(size)) && !(buf = own = malloc(size ? size : 1))) {
		rc = -ENOMEM;
	} else {
		rc = fs_do_read(fs_of(req), ino, size, off, buf, &n);
	}
	fs_reply_buf(req, rc, buf, n);
	free(own);
}

/* Write size bytes at off (the end with append); *n bytes were taken. */
static int fs_do_write(struct fs *fs, uint64_t ino, const char *data, size_t size, off_t off,
		       int append, size_t *n)
{
	struct fs_inode *ip;
	ssize_t got;
	int rc;

	*n = 0;
	if (off < 0)
		return -EINVAL;
	rc = fs_check_writable(fs);
	if (!rc)
		rc = fs_wb_wait_room(fs);
	if (!rc)
		rc = fs_ops_get_locked(fs, ino, &ip);
	if (rc)
		return rc;
	if (ip->gone) {
		/* Writeback of a deleted inode's pages: nobody can read them. */
		got = (ssize_t)size;
	} else if (!S_ISREG(ip->a.mode)) {
		got = -EINVAL;
	} else {
		/* Without the writeback cache the kernel leaves O_APPEND to us. */
		if (append && !fs->writeback)
			off = (off_t)ip->a.size;
		got = fs_data_write(fs, ip, (uint64_t)off, data, size);
	}
	fs_inode_unlock_unpin(fs, ip);
	atomic_fetch_add(&fs->n_write, 1);
	if (got < 0)
		return (int)got;
	*n = (size_t)got;
	return 0;
}

static void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	size_t n = size;
	int rc;

	if (FS_IS_CTL(ino))
		rc = fs_ctl_do_write(fs_of(req), ino, data, size, fi);
	else
		rc = fs_do_write(fs_of(req), ino, data, size, off, fi->flags & O_APPEND, &n);
	fs_reply_write(req, rc, n);
}

/* fsync: flush ino's buffer into the engine, report (and clear) an
 * earlier background failure of it, then make everything durable. */
static int fs_do_fsync(struct fs *fs, uint64_t ino)
{
	struct fs_inode *ip;
	struct stat st;
	int blocks_changed, rc;

	atomic_fetch_add(&fs->n_fsync, 1);
	if (FS_IS_CTL(ino) || fs->conf.readonly)
		return 0;
	rc = fs_ops_get_locked(fs, ino, &ip);
	if (rc)
		return rc;
	rc = fs_inode_flush_locked(fs, ip, 0);
	if (!rc && ip->wb_err)
		rc = ip->wb_err;
	ip->wb_err = 0;
	/* A commit-sized fsync: bulk data stays on the WAL for a while
	 * (wal_bypass_quiet_ms), so commits are not stuck behind flushes. */
	if (ip->since_fsync < fs->conf.wal_bypass_bytes)
		fs_note_small_fsync(fs);
	ip->since_fsync = 0;        /* the next bulk is counted afresh */
	fs_inode_stat(ip, &st);
	blocks_changed = (uint64_t)st.st_blocks != ip->blocks_seen;
	ip->blocks_seen = (uint64_t)st.st_blocks;
	fs_inode_unlock_unpin(fs, ip);
	/* With the writeback cache the kernel keeps size and times itself and
	 * does not ask again after writes, so st_blocks would stay what the
	 * last lookup/getattr said: drop its cached attributes (attributes
	 * only, which takes no kernel inode lock) when blocks changed. */
	if (blocks_changed && fs->se && fs->writeback)
		(void)fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
	if (rc)
		return rc;
	return fs_sync_errno(fs, kv_sync(fs->db));
}

static void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fs_reply_err(req, fs_do_fsync(fs_of(req), ino));
}

static int fs_do_opendir(struct fs *fs, uint64_t ino, struct fuse_file_info *fi)
{
	struct fs_inode *ip;
	int rc;

	if (!FS_IS_CTL(ino)) {
		rc = fs_ops_get_locked(fs, ino, &ip);
		if (rc)
			return rc;
		rc = S_ISDIR(ip->a.mode) ? 0 : -ENOTDIR;
		if (ip->gone)
			rc = -ENOENT;
		fs_inode_unlock_unpin(fs, ip);
		if (rc)
			return rc;
	}
	fi->fh = 0;
	fi->cache_readdir = 0;
	return 0;
}

static void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* Nothing to undo when the reply fails: a directory handle holds
	 * nothing. */
	(void)fs_reply_open(req, fs_do_opendir(fs_of(req), ino, fi), fi);
}

static void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_reply_err(req, 0);
}

static int fs_do_fsyncdir(struct fs *fs, uint64_t ino)
{
	atomic_fetch_add(&fs->n_fsync, 1);
	/* fsync of the root is a whole-mount sync (shalefs(1), SYNC). */
	if (ino == FS_ROOT_INO)
		return fs_sync(fs);
	if (FS_IS_CTL(ino) || fs->conf.readonly)
		return 0;
	fs_note_small_fsync(fs);
	return fs_sync_errno(fs, kv_sync(fs->db));
}

static void fs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			   struct fuse_file_info *fi)
{
	fs_reply_err(req, fs_do_fsyncdir(fs_of(req), ino));
}

/*
 * statfs. Inodes: f_files is FS_STATFS_FILES (inode numbers are 64-bit and
 * never reused, so there is no real limit), f_ffree that minus the live
 * inodes (the I keys), so `df -i` shows them as used. Space: with size=,
 * the total is the limit and the used part the sum of the sizes of regular
 * files (fs->live_bytes); without it, a file:// store's filesystem (its
 * real size and free space), else a large constant.
 */
#define FS_STATFS_FILES ((uint64_t)1 << 48)

static int fs_do_statfs(struct fs *fs, struct statvfs *sv)
{
	uint64_t used_inodes, used, total, avail;

	memset(sv, 0, sizeof(*sv));
	used_inodes = atomic_load(&fs->live_inodes);
	sv->f_bsize = FS_CHUNK_SIZE;
	sv->f_frsize = 4096;
	if (fs->conf.size_limit) {
		used = atomic_load(&fs->live_bytes);
		total = fs->conf.size_limit;
		avail = used < total ? total - used : 0;
		sv->f_blocks = (fsblkcnt_t)(total / sv->f_frsize);
		/* Round the used part up, so df never shows less than is used. */
		sv->f_bfree = (fsblkcnt_t)(avail / sv->f_frsize);
	} else if (fs->store && obj_space(fs->store, &total, &avail) == 0) {
		/* file://: the space of the filesystem that holds the store. */
		sv->f_blocks = (fsblkcnt_t)(total / sv->f_frsize);
		sv->f_bfree = (fsblkcnt_t)(avail / sv->f_frsize);
	} else {
		/* An object store has no fixed size: a large, constant one. */
		sv->f_blocks = (fsblkcnt_t)1 << 40;     /* 4 PiB */
		sv->f_bfree = sv->f_blocks;
	}
	sv->f_bavail = sv->f_bfree;
	sv->f_files = (fsfilcnt_t)FS_STATFS_FILES;
	sv->f_ffree = used_inodes < FS_STATFS_FILES ? sv->f_files - used_inodes : 0;
	sv->f_favail = sv->f_ffree;
	sv->f_namemax = FS_NAME_MAX;
	sv->f_fsid = 0;
	return 0;
}

static void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int rc = fs_do_statfs(fs_of(req), &sv);

	fs_reply_statfs(req, rc, &sv);
}

/* fallocate of a regular file (ip->mu held): mode 0 extends the size (storage
 * is allocated on write), PUNCH_HOLE|KEEP_SIZE zeroes a range. */
static int fs_fallocate_locked(struct fs *fs, struct fs_inode *ip, int mode, uint64_t off,
			       uint64_t len)
{
	struct fs_attr saved;
	int rc;

	if (!S_ISREG(ip->a.mode))
		return S_ISDIR(ip->a.mode) ? -EISDIR : -ENODEV;
	if (mode != 0)
		return fs_data_punch_locked(fs, ip, off, len);
	if (off + len <= ip->a.size)
		return 0;
	saved = ip->a;
	ip->a.ctime = fs_time_now();
	rc = fs_data_truncate_locked(fs, ip, off + len, NULL);
	if (rc)
		ip->a = saved;
	return rc;
}

static int fs_do_fallocate(struct fs *fs, uint64_t ino, int mode, off_t off, off_t len)
{
	struct fs_inode *ip;
	int rc;

	if (FS_IS_CTL(ino))
		return -EBADF;
	if (mode != 0 && mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if ((uint64_t)off > FS_MAX_FILE_SIZE || (uint64_t)len > FS_MAX_FILE_SIZE - (uint64_t)off)
		return -EFBIG;
	rc = fs_ops_get_writable(fs, ino, &ip);
	if (rc)
		return rc;
	rc = fs_fallocate_locked(fs, ip, mode, (uint64_t)off, (uint64_t)len);
	fs_inode_unlock_unpin(fs, ip);
	return rc;
}

static void fs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			    struct fuse_file_info *fi)
{
	fs_reply_err(req, fs_do_fallocate(fs_of(req), ino, mode, off, len));
}

/* ---- extended attributes ---------------------------------------------------- */

/*
 * Names shalefs does not store (the n bytes at name): "system.*", POSIX
 * ACLs, which the kernel would have to enforce (FUSE_CAP_POSIX_ACL), and
 * "security.selinux", a label no kernel reads from a FUSE filesystem here
 * (SELinux labels FUSE mounts by policy, genfscon, without asking it). Both
 * are EOPNOTSUPP, not ENODATA: ls -l asks for both of every entry, and
 * takes EOPNOTSUPP (only) as "this filesystem has none", asking no more;
 * each ENODATA is a FUSE round trip per entry (docs/fs-format.md, "Large
 * directories").
 */
static int fs_xattr_unsupported(const char *name, size_t n)
{
	static const char selinux[] = "security.selinux";

	return (n >= 7 && memcmp(name, "system.", 7) == 0) ||
	       (n == sizeof(selinux) - 1 && memcmp(name, selinux, n) == 0);
}

static int fs_xattr_name_check(const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return -EINVAL;
	if (n > FS_XATTR_NAME_MAX)
		return -ERANGE;
	if (fs_xattr_unsupported(name, n))
		return -EOPNOTSUPP;
	return 0;
}

/* The checks of setxattr and removexattr that need no inode. value == NULL
 * means remove: names we never store (fs_xattr_unsupported) are missing
 * (ENODATA). */
static int fs_xattr_change_check(const char *name, const char *value, size_t size, int flags)
{
	int rc = fs_xattr_name_check(name);

	if (!value && rc == -EOPNOTSUPP)
		rc = -ENODATA;
	if (!rc && size > FS_XATTR_SIZE_MAX)
		rc = -E2BIG;
	if (!rc && (flags & ~(XATTR_CREATE | XATTR_REPLACE)))
		rc = -EINVAL;
	return rc;
}

/* Put (value != NULL) or delete the xattr key k of ip, with the inode
 * (ctime) in one batch (ip->mu held). A missing name to remove or replace
 * is ENODATA, an existing one with XATTR_CREATE EEXIST. */
static int fs_xattr_change_locked(struct fs *fs, struct fs_inode *ip, const struct fs_key *k,
				  const char *value, size_t size, int flags)
{
	struct kv_batch *b = NULL;
	struct fs_attr saved;
	void *old = NULL;
	size_t oldlen;
	int rc;

	rc = atomic_load(&ip->no_xattrs) ? -ENOENT
					 : kv_get(fs->db, NULL, k->b, k->len, &old, &oldlen);
	free(old);
	if (value)
		atomic_store(&ip->no_xattrs, 0);   /* before the key can exist */
	if (rc == 0 && (flags & XATTR_CREATE))
		return -EEXIST;
	if (rc == -ENOENT && (!value || (flags & XATTR_REPLACE)))
		return -ENODATA;
	if (rc && rc != -ENOENT)
		return rc == -ENOMEM ? rc : -EIO;
	saved = ip->a;
	ip->a.ctime = fs_time_now();
	if (value)
		ip->a.hints &= (uint8_t)~FS_HINT_NO_XATTRS;
	rc = kv_batch_create(&b);
	if (!rc)
		rc = value ? kv_batch_put(b, k->b, k->len, value, size)
			   : kv_batch_delete(b, k->b, k->len);
	if (!rc)
		rc = fs_inode_put(ip, b);
	if (!rc)
		rc = fs_write_batch(fs, b);
	if (rc)
		ip->a = saved;
	kv_batch_free(b);
	return rc;
}

/* setxattr and removexattr (value == NULL). */
static int fs_do_xattr_change(struct fs *fs, uint64_t ino, const char *name, const char *value,
			      size_t size, int flags)
{
	struct fs_inode *ip;
	struct fs_key k;
	int rc;

	if (FS_IS_CTL(ino))
		return -EPERM;
	rc = fs_xattr_change_check(name, value, size, flags);
	if (!rc)
		rc = fs_ops_get_writable(fs, ino, &ip);
	if (rc)
		return rc;
	if (ip->gone) {
		rc = -ENOENT;
	} else {
		fs_key_xattr(&k, ino, name, strlen(name));
		rc = fs_xattr_change_locked(fs, ip, &k, value, size, flags);
	}
	fs_inode_unlock_unpin(fs, ip);
	return rc;
}

static void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			   size_t size, int flags)
{
	/* An empty value is a value: never NULL here. */
	fs_reply_err(req, fs_do_xattr_change(fs_of(req), ino, name, value ? value : "", size,
					     flags));
}

static void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fs_reply_err(req, fs_do_xattr_change(fs_of(req), ino, name, NULL, 0, 0));
}

/* On success *val (malloc'd, the caller's; NULL when empty) holds *len
 * bytes of the value. */
static int fs_do_getxattr(struct fs *fs, uint64_t ino, const char *name, void **val,
			  size_t *len)
{
	struct fs_key k;
	int rc;

	*val = NULL;
	*len = 0;
	if (FS_IS_CTL(ino))
		return -ENODATA;
	rc = fs_xattr_name_check(name);
	if (rc)
		return rc;
	fs_key_xattr(&k, ino, name, strlen(name));
	rc = fs_inode_no_xattrs(fs, ino) ? -ENOENT : kv_get(fs->db, NULL, k.b, k.len, val, len);
	if (rc == -ENOENT)
		return -ENODATA;
	if (rc && rc != -ENOMEM)
		return -EIO;
	return rc;
}

static void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	void *val;
	size_t len;
	int rc = fs_do_getxattr(fs_of(req), ino, name, &val, &len);

	fs_reply_xattr(req, rc, size, val, len);
	free(val);
}

/* The names of ino's xattrs, each NUL-terminated, into *buf (malloc'd, the
 * caller's; NULL when there are none), *total bytes. */
static int fs_do_listxattr(struct fs *fs, uint64_t ino, char **buf, size_t *total)
{
	struct kv_iter_user *it = NULL;
	struct fs_key lo, hi;
	size_t cap = 0;
	int rc;

	*buf = NULL;
	*total = 0;
	if (FS_IS_CTL(ino) || fs_inode_no_xattrs(fs, ino))
		return 0;
	fs_key_ino_start(&lo, FS_K_XATTR, ino);
	fs_key_ino_end(&hi, FS_K_XATTR, ino);
	rc = kv_iter_create(fs->db, NULL, lo.b, lo.len, hi.b, hi.len, &it);
	for (; !rc && kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl;
		const uint8_t *key = kv_iter_key(it, &kl);
		size_t nl = kl - 9;
		if (fs_xattr_unsupported((const char *)key + 9, nl))
			continue;      /* not readable either (fs_xattr_unsupported) */
		if (*total + nl + 1 > cap) {
			size_t nc = (cap ? cap * 2 : 256) + nl + 1;
			char *t = realloc(*buf, nc);
			if (!t) {
				rc = -ENOMEM;
				break;
			}
			*buf = t;
			cap = nc;
		}
		memcpy(*buf + *total, key + 9, nl);
		(*buf)[*total + nl] = '\0';
		*total += nl + 1;
	}
	if (!rc)
		rc = kv_iter_status(it);
	kv_iter_free(it);
	if (rc) {
		free(*buf);
		*buf = NULL;
		*total = 0;
		return rc == -ENOMEM ? rc : -EIO;
	}
	return 0;
}

static void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf;
	size_t total;
	int rc = fs_do_listxattr(fs_of(req), ino, &buf, &total);

	fs_reply_xattr(req, rc, size, buf, total);
	free(buf);
}

/* ---- the table ---------------------------------------------------------------- */

/* Wrapped by fs_optime.c, whose table fs_fuse_ops() returns. Every
 * method here must have a timed wrapper there (FS_OPTIME_OPS), or be one
 * of the four it passes through. */
const struct fuse_lowlevel_ops fs_ops_untimed = {
	.init = fs_op_init,
	.destroy = fs_op_destroy,
	.lookup = fs_op_lookup,
	.forget = fs_op_forget,
	.forget_multi = fs_op_forget_multi,
	.getattr = fs_op_getattr,
	.setattr = fs_op_setattr,
	.readlink = fs_op_readlink,
	.mknod = fs_op_mknod,
	.mkdir = fs_op_mkdir,
	.unlink = fs_op_unlink,
	.rmdir = fs_op_rmdir,
	.symlink = fs_op_symlink,
	.rename = fs_op_rename,
	.link = fs_op_link,
	.open = fs_op_open,
	.read = fs_op_read,
	.write = fs_op_write,
	/* No .flush, on purpose: close() is not a sync point, as on a local
	 * filesystem. libfuse answers FLUSH with ENOSYS once and the kernel
	 * stops sending it (fc->no_flush). Dirty pages are still written back
	 * at close and their WRITE errors reported there; the inode's buffer
	 * reaches the engine at the last close (release), or from the flusher
	 * within flush_interval_ms / 2; fsync reports what failed in between.
	 * One round trip less per file written (docs/fs-format.md,
	 * "Durability"). */
	.release = fs_op_release,
	.fsync = fs_op_fsync,
	.opendir = fs_op_opendir,
	.readdir = fs_op_readdir,
	.readdirplus = fs_op_readdirplus,
	.releasedir = fs_op_releasedir,
	.fsyncdir = fs_op_fsyncdir,
	.statfs = fs_op_statfs,
	.setxattr = fs_op_setxattr,
	.getxattr = fs_op_getxattr,
	.listxattr = fs_op_listxattr,
	.removexattr = fs_op_removexattr,
	.create = fs_op_create,
	.fallocate = fs_op_fallocate,
};

