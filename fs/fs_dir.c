/*
 * fs_dir.c - names: lookup, the creating operations (mknod, mkdir,
 * symlink, create), unlink, rmdir, link and readdir (rename is in
 * fs_rename.c, on the helpers here).
 *
 * Every operation that changes more than one key builds ONE kv batch and
 * applies it under the locks of every inode whose record it rewrites, so
 * it is atomic after a crash and ordered with respect to other changes of
 * the same inodes.
 *
 * RESOLVE, LOCK, VERIFY
 *   Operations on a name and the inode it names (unlink, rmdir, rename)
 *   first read the entry under the parent's lock, then take every lock in
 *   ascending inode order (fs_inode_lock_set) and read the entry again; if
 *   it changed meanwhile they start over. So locks are only ever taken in
 *   one global order and no deadlock is possible.
 *
 * READDIR COOKIES
 *   Each entry gets a cookie from its directory's next_cookie counter when
 *   it is created (D value) with a second key R<dir><cookie> -> ino, type,
 *   name. readdir(offset) lists R keys with cookie > offset, so an offset
 *   stays valid while entries are added or removed concurrently: no entry
 *   present for the whole listing is skipped or repeated. Offsets 1 and 2
 *   are "." and "..".
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fs_dent_get(struct fs *fs, uint64_t parent, const char *name, struct fs_dent *out)
{
	struct fs_key k;
	void *val = NULL;
	size_t len = 0;
	int rc;

	fs_key_dent(&k, parent, name, strlen(name));
	rc = kv_get(fs->db, NULL, k.b, k.len, &val, &len);
	if (rc == -ENOENT)
		return rc;
	if (rc) {
		UTIL_ERROR(FS_LOG, "directory %" PRIu64 " entry '%s': read failed: %s", parent, name,
			   kv_strerror(rc));
		return rc == -ENOMEM ? rc : -EIO;
	}
	rc = fs_dent_decode(out, val, len);
	free(val);
	if (rc)
		UTIL_ERROR(FS_LOG, "directory %" PRIu64 " entry '%s': malformed (%zu bytes)", parent,
			   name, len);
	return rc;
}

int fs_dent_put(struct kv_batch *b, uint64_t parent, const char *name, const struct fs_dent *d)
{
	size_t nlen = strlen(name);
	uint8_t dv[FS_DENT_LEN], rv[9 + FS_NAME_MAX];
	struct fs_key k;
	int rc;

	fs_dent_encode(dv, d);
	fs_key_dent(&k, parent, name, nlen);
	rc = kv_batch_put(b, k.b, k.len, dv, sizeof(dv));
	if (rc)
		return rc;
	fs_cookie_encode(rv, d->ino, d->type, name, nlen);
	fs_key_cookie(&k, parent, d->cookie);
	return kv_batch_put(b, k.b, k.len, rv, 9 + nlen);
}

int fs_dent_del(struct kv_batch *b, uint64_t parent, const char *name, uint64_t cookie)
{
	struct fs_key k;
	int rc;

	fs_key_dent(&k, parent, name, strlen(name));
	rc = kv_batch_delete(b, k.b, k.len);
	if (rc)
		return rc;
	fs_key_cookie(&k, parent, cookie);
	return kv_batch_delete(b, k.b, k.len);
}

int fs_dir_is_empty(struct fs *fs, uint64_t ino)
{
	struct fs_key lo, hi;
	struct kv_iter_user *it = NULL;
	int rc;

	fs_key_ino_start(&lo, FS_K_DENT, ino);
	fs_key_ino_end(&hi, FS_K_DENT, ino);
	rc = kv_iter_create(fs->db, NULL, lo.b, lo.len, hi.b, hi.len, &it);
	if (rc)
		return rc;
	rc = kv_iter_valid(it) ? 0 : kv_iter_status(it);
	if (rc == 0 && !kv_iter_valid(it))
		rc = 1;
	kv_iter_free(it);
	return rc;
}

/* A name one may look up or create: -ENOENT (empty), -ENAMETOOLONG, -EINVAL
 * (a '/'), else 0. */
int fs_dir_name_check(const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return -ENOENT;
	if (n > FS_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '/', n))
		return -EINVAL;
	return 0;
}

/* Fill e for ip (ip->mu held) with the configured timeouts; the kernel
 * caches these attributes, so their st_blocks is what it has seen. */
static void fs_dir_entry_fill(struct fs *fs, struct fs_inode *ip, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ip->ino;
	e->generation = 0;          /* inode numbers are never reused */
	fs_inode_stat(ip, &e->attr);
	ip->blocks_seen = (uint64_t)e->attr.st_blocks;
	e->attr_timeout = fs->conf.attr_timeout;
	e->entry_timeout = fs->conf.entry_timeout;
}

int fs_dir_is_ctl_name(uint64_t parent, const char *name)
{
	return parent == FS_ROOT_INO && strcmp(name, FS_CTL_NAME) == 0;
}

/* A usable directory (ip->mu held)? */
int fs_dir_check(struct fs_inode *ip)
{
	if (ip->gone || ip->a.nlink == 0)
		return -ENOENT;
	if (!S_ISDIR(ip->a.mode))
		return -ENOTDIR;
	return 0;
}

/* ---- lookup --------------------------------------------------------------- */

static int fs_do_lookup(struct fs *fs, uint64_t parent, const char *name,
			struct fuse_entry_param *e)
{
	struct fs_inode *pp = NULL, *ip = NULL;
	struct fs_dent d;
	uint64_t ino;
	int rc;

	if (FS_IS_CTL(parent))
		return fs_ctl_lookup_name(fs, parent, name, e);
	if (fs_dir_is_ctl_name(parent, name))
		return fs_ctl_lookup(fs, FS_CTL_DIR_INO, e);
	rc = fs_dir_name_check(name);
	if (rc)
		return rc;
	rc = fs_inode_get_locked(fs, parent, &pp);
	if (rc)
		goto out;
	rc = fs_dir_check(pp);
	if (!rc) {
		if (strcmp(name, ".") == 0) {
			ino = parent;
		} else if (strcmp(name, "..") == 0) {
			ino = pp->a.parent;
		} else {
			rc = fs_dent_get(fs, parent, name, &d);
			ino = d.ino;
		}
	}
	fs_inode_unlock_unpin(fs, pp);
	if (rc)
		goto out;
	/* -ENOENT: removed since we read the entry. */
	rc = fs_inode_get_locked(fs, ino, &ip);
	if (rc)
		goto out;
	if (ip->gone) {
		rc = -ENOENT;
	} else {
		fs_dir_entry_fill(fs, ip, e);
		fs_inode_ref_lookup(fs, ip, 1);
	}
	fs_inode_unlock_unpin(fs, ip);
out:
	atomic_fetch_add(&fs->n_lookup, 1);
	return rc;
}

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int rc = fs_do_lookup(fs_of(req), parent, name, &e);

	fs_reply_entry(req, rc, &e);
}

/* ---- creating ------------------------------------------------------------- */

/* What a creating operation asks for, decoded from its request. */
struct fs_new {
	mode_t mode;               /* with the type */
	dev_t rdev;
	const char *link;          /* symlink target, or NULL */
	uid_t uid;                 /* the caller's */
	gid_t gid;
	int open;                  /* also open it: one handle */
};

/* The checks that need no inode: the control directory, the name, the
 * symlink target, a writable mount. */
static int fs_create_check(struct fs *fs, uint64_t parent, const char *name,
			   const struct fs_new *nw)
{
	size_t link_len = nw->link ? strlen(nw->link) : 0;
	int rc;

	if (FS_IS_CTL(parent))
		return -EPERM;
	if (fs_dir_is_ctl_name(parent, name))
		return -EEXIST;
	rc = fs_dir_name_check(name);
	if (rc)
		return rc;
	if (nw->link && (link_len == 0 || link_len > FS_SYMLINK_MAX))
		return link_len ? -ENAMETOOLONG : -ENOENT;
	return fs_check_writable(fs);
}

/* The attributes of the new inode in directory pp (pp->mu held): the
 * caller's owner, the group (and a directory's set-gid bit) of a set-gid
 * parent. */
static void fs_create_attr(struct fs_attr *a, const struct fs_inode *pp, const struct fs_new *nw)
{
	memset(a, 0, sizeof(*a));
	a->mode = nw->mode;
	a->uid = nw->uid;
	a->gid = nw->gid;
	if (pp->a.mode & S_ISGID) {
		a->gid = pp->a.gid;
		if (S_ISDIR(nw->mode))
			a->mode |= S_ISGID;
	}
	a->nlink = S_ISDIR(nw->mode) ? 2 : 1;
	a->rdev = (S_ISCHR(nw->mode) || S_ISBLK(nw->mode)) ? nw->rdev : 0;
	a->size = nw->link ? strlen(nw->link) : 0;
	a->atime = a->mtime = a->ctime = a->btime = fs_time_now();
	a->hints = FS_HINT_NO_XATTRS;
	if (S_ISDIR(nw->mode)) {
		a->next_cookie = FS_FIRST_COOKIE;
		a->parent = pp->ino;
	}
}

/* Create the inode and its entry in pp (pp->mu held): one batch of the new
 * I key, the D and R keys and the parent's record. *out is the new inode,
 * pinned - the caller unpins it, after unlocking pp, also on failure. */
static int fs_create_locked(struct fs *fs, struct fs_inode *pp, const char *name,
			    const struct fs_new *nw, struct fs_inode **out)
{
	struct fs_inode *ip = NULL;
	struct kv_batch *b = NULL;
	struct fs_attr a, saved;
	struct fs_dent d;
	uint64_t ino;
	int rc;

	*out = NULL;
	rc = fs_dir_check(pp);
	if (rc)
		return rc;
	rc = fs_dent_get(fs, pp->ino, name, &d);
	if (rc == 0)
		rc = -EEXIST;
	if (rc != -ENOENT)
		return rc;
	if (S_ISDIR(nw->mode) && pp->a.nlink >= FS_LINK_MAX)
		return -EMLINK;
	fs_create_attr(&a, pp, nw);
	rc = fs_ino_alloc(fs, &ino);
	if (rc)
		return rc;
	rc = fs_inode_new(fs, ino, &a, nw->link, nw->link ? strlen(nw->link) : 0, &ip);
	if (rc)
		return rc;
	*out = ip;

	saved = pp->a;
	d.ino = ino;
	d.type = (uint8_t)((a.mode & S_IFMT) >> 12);
	d.cookie = pp->a.next_cookie++;
	pp->a.mtime = pp->a.ctime = a.ctime;
	if (S_ISDIR(nw->mode))
		pp->a.nlink++;
	rc = kv_batch_create(&b);
	if (!rc)
		rc = fs_inode_put(ip, b);
	if (!rc)
		rc = fs_dent_put(b, pp->ino, name, &d);
	if (!rc)
		rc = fs_inode_put(pp, b);
	if (!rc)
		rc = fs_write_batch(fs, b);
	kv_batch_free(b);
	if (rc)
		pp->a = saved;
	return rc;
}

/*
 * Create `name` in parent as nw asks. On success e is filled and the inode
 * has one more kernel lookup (and, with nw->open, one open handle).
 */
static int fs_do_create(struct fs *fs, uint64_t parent, const char *name,
			const struct fs_new *nw, struct fuse_entry_param *e)
{
	struct fs_inode *pp = NULL, *ip = NULL;
	int rc;

	rc = fs_create_check(fs, parent, name, nw);
	if (rc)
		return rc;
	rc = fs_inode_get_locked(fs, parent, &pp);
	if (rc)
		return rc;
	rc = fs_create_locked(fs, pp, name, nw, &ip);
	if (!rc) {
		CHECK_RETURN(pthread_mutex_lock(&ip->mu));
		if (nw->open)
			ip->nopen++;
		fs_dir_entry_fill(fs, ip, e);
		CHECK_RETURN(pthread_mutex_unlock(&ip->mu));
		fs_inode_ref_lookup(fs, ip, 1);
		atomic_fetch_add(&fs->n_create, 1);
		atomic_fetch_add(&fs->live_inodes, 1);
	}
	fs_inode_unlock(pp);
	fs_inode_unpin(fs, ip);
	fs_inode_unpin(fs, pp);
	return rc;
}

/* The request's caller and the mode asked for. */
static void fs_new_init(struct fs_new *nw, fuse_req_t req, mode_t mode, dev_t rdev,
			const char *link, int open)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	nw->mode = mode;
	nw->rdev = rdev;
	nw->link = link;
	nw->uid = ctx->uid;
	nw->gid = ctx->gid;
	nw->open = open;
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fuse_entry_param e;
	struct fs_new nw;
	int rc = 0;

	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFIFO: case S_IFSOCK: case S_IFCHR: case S_IFBLK:
		break;
	case 0:
		mode |= S_IFREG;
		break;
	default:
		rc = -EINVAL;
		break;
	}
	fs_new_init(&nw, req, mode, rdev, NULL, 0);
	if (!rc)
		rc = fs_do_create(fs_of(req), parent, name, &nw, &e);
	fs_reply_entry(req, rc, &e);
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fuse_entry_param e;
	struct fs_new nw;
	int rc;

	fs_new_init(&nw, req, S_IFDIR | (mode & 07777), 0, NULL, 0);
	rc = fs_do_create(fs_of(req), parent, name, &nw, &e);
	fs_reply_entry(req, rc, &e);
}

void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	struct fs_new nw;
	int rc;

	fs_new_init(&nw, req, S_IFLNK | 0777, 0, link, 0);
	rc = fs_do_create(fs_of(req), parent, name, &nw, &e);
	fs_reply_entry(req, rc, &e);
}

/* The kernel will not use the handle or the lookup of a created file
 * whose reply failed (interrupted): give both back. */
static void fs_create_undo(struct fs *fs, uint64_t ino)
{
	struct fs_inode *ip;

	if (fs_inode_get_locked(fs, ino, &ip) == 0) {
		(void)fs_orphan_release_locked(fs, ip);
		fs_inode_unlock_unpin(fs, ip);
	}
	fs_inode_forget(fs, ino, 1);
}

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct fs_new nw;
	int rc;

	fs_new_init(&nw, req, S_IFREG | (mode & 07777), 0, NULL, 1);
	rc = fs_do_create(fs, parent, name, &nw, &e);
	fi->fh = 0;
	fi->keep_cache = 0;
	if (fs_reply_create(req, rc, &e, fi) != 0)
		fs_create_undo(fs, e.ino);
}

/* ---- removing ------------------------------------------------------------- */

/* The checks that need no inode: the control directory, the name, "." and
 * "..", a writable mount. */
static int fs_remove_check(struct fs *fs, uint64_t parent, const char *name, int isdir)
{
	int rc;

	if (FS_IS_CTL(parent) || fs_dir_is_ctl_name(parent, name))
		return -EPERM;
	rc = fs_dir_name_check(name);
	if (rc)
		return rc;
	if (strcmp(name, ".") == 0)
		return isdir ? -EINVAL : -EISDIR;
	if (strcmp(name, "..") == 0)
		return isdir ? -ENOTEMPTY : -EISDIR;
	return fs_check_writable(fs);
}

/*
 * Resolve `name` in pp, then lock pp and the inode it names (set[0], set[1])
 * and read the entry again, starting over if it changed meanwhile. On 0
 * both are locked, set[1] is pinned (the caller unpins it) and *d is the
 * entry; on error nothing is locked and set[1] is NULL.
 */
static int fs_remove_lock(struct fs *fs, struct fs_inode *pp, const char *name,
			  struct fs_inode **set, struct fs_dent *d)
{
	struct fs_dent first;
	int rc;

	set[0] = pp;
	set[1] = NULL;
	for (;;) {
		rc = fs_inode_lock(fs, pp);
		if (rc)
			return rc;
		rc = fs_dir_check(pp);
		if (!rc)
			rc = fs_dent_get(fs, pp->ino, name, &first);
		fs_inode_unlock(pp);
		if (!rc)
			rc = fs_inode_get(fs, first.ino, &set[1]);
		if (rc)
			return rc;
		rc = fs_inode_lock_set(fs, set, 2);
		if (rc) {
			fs_inode_unpin(fs, set[1]);
			set[1] = NULL;
			return rc == -ENOENT ? -EIO : rc;   /* an entry naming a missing inode */
		}
		rc = fs_dir_check(pp);
		if (!rc)
			rc = fs_dent_get(fs, pp->ino, name, d);
		if (!rc && d->ino == set[1]->ino)
			return 0;
		fs_inode_unlock_set(set, 2);
		fs_inode_unpin(fs, set[1]);
		set[1] = NULL;
		if (rc)
			return rc;
	}
}

/* What may be removed (both locked): rmdir wants an empty directory,
 * unlink anything else. */
static int fs_remove_check_locked(struct fs *fs, struct fs_inode *cp, int isdir)
{
	int rc;

	if (cp->gone)
		return -EIO;
	if (!isdir)
		return S_ISDIR(cp->a.mode) ? -EISDIR : 0;
	if (!S_ISDIR(cp->a.mode))
		return -ENOTDIR;
	rc = fs_dir_is_empty(fs, cp->ino);
	if (rc <= 0)
		return rc == 0 ? -ENOTEMPTY : rc;
	return 0;
}

/* Remove entry d (`name`) of pp naming cp, both locked: one batch of the D
 * and R keys, both records and, with cp's last link, its O key; then
 * reclaim cp if no handle holds it. */
static int fs_remove_locked(struct fs *fs, struct fs_inode *pp, struct fs_inode *cp,
			    const char *name, const struct fs_dent *d, int isdir)
{
	struct kv_batch *b = NULL;
	struct fs_attr psaved, csaved;
	struct fs_key k;
	int rc;

	rc = fs_remove_check_locked(fs, cp, isdir);
	if (rc)
		return rc;
	psaved = pp->a;
	csaved = cp->a;
	pp->a.mtime = pp->a.ctime = fs_time_now();
	cp->a.ctime = pp->a.ctime;
	if (isdir) {
		cp->a.nlink = 0;
		pp->a.nlink--;
	} else {
		cp->a.nlink--;
	}
	rc = kv_batch_create(&b);
	if (!rc)
		rc = fs_dent_del(b, pp->ino, name, d->cookie);
	if (!rc)
		rc = fs_inode_put(cp, b);
	if (!rc)
		rc = fs_inode_put(pp, b);
	if (!rc && cp->a.nlink == 0) {
		fs_key_orphan(&k, cp->ino);
		rc = kv_batch_put(b, k.b, k.len, "", 0);
	}
	if (!rc)
		rc = fs_write_batch(fs, b);
	kv_batch_free(b);
	if (rc) {
		pp->a = psaved;
		cp->a = csaved;
		return rc;
	}
	atomic_fetch_add(&fs->n_unlink, 1);
	if (cp->a.nlink == 0)
		(void)fs_orphan_maybe_reclaim_locked(fs, cp);   /* logged; O key stays */
	return 0;
}

static int fs_do_remove(struct fs *fs, uint64_t parent, const char *name, int isdir)
{
	struct fs_inode *pp = NULL, *set[2];
	struct fs_dent d;
	int rc;

	rc = fs_remove_check(fs, parent, name, isdir);
	if (rc)
		return rc;
	rc = fs_inode_get(fs, parent, &pp);
	if (rc)
		return rc;
	rc = fs_remove_lock(fs, pp, name, set, &d);
	if (!rc) {
		rc = fs_remove_locked(fs, pp, set[1], name, &d, isdir);
		fs_inode_unlock_set(set, 2);
		fs_inode_unpin(fs, set[1]);
	}
	fs_inode_unpin(fs, pp);
	return rc;
}

void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_reply_err(req, fs_do_remove(fs_of(req), parent, name, 0));
}

void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_reply_err(req, fs_do_remove(fs_of(req), parent, name, 1));
}

/* ---- link ----------------------------------------------------------------- */

/* Link ip as nn in pp, both locked: one batch of the D and R keys and both
 * records; on success e is filled and ip has one more kernel lookup. */
static int fs_link_locked(struct fs *fs, struct fs_inode *ip, struct fs_inode *pp,
			  const char *nn, struct fuse_entry_param *e)
{
	struct fs_attr isaved, psaved;
	struct kv_batch *b = NULL;
	struct fs_dent d;
	int rc;

	rc = fs_dir_check(pp);
	if (rc)
		return rc;
	if (ip->gone || ip->a.nlink == 0)
		return -ENOENT;
	if (S_ISDIR(ip->a.mode))
		return -EPERM;
	if (ip->a.nlink >= FS_LINK_MAX)
		return -EMLINK;
	rc = fs_dent_get(fs, pp->ino, nn, &d);
	if (rc == 0)
		rc = -EEXIST;
	if (rc != -ENOENT)
		return rc;
	isaved = ip->a;
	psaved = pp->a;
	d.ino = ip->ino;
	d.type = (uint8_t)((ip->a.mode & S_IFMT) >> 12);
	d.cookie = pp->a.next_cookie++;
	ip->a.nlink++;
	ip->a.ctime = pp->a.mtime = pp->a.ctime = fs_time_now();
	rc = kv_batch_create(&b);
	if (!rc)
		rc = fs_dent_put(b, pp->ino, nn, &d);
	if (!rc)
		rc = fs_inode_put(ip, b);
	if (!rc)
		rc = fs_inode_put(pp, b);
	if (!rc)
		rc = fs_write_batch(fs, b);
	kv_batch_free(b);
	if (rc) {
		ip->a = isaved;
		pp->a = psaved;
		return rc;
	}
	fs_dir_entry_fill(fs, ip, e);
	fs_inode_ref_lookup(fs, ip, 1);
	return 0;
}

static int fs_do_link(struct fs *fs, uint64_t ino, uint64_t np, const char *nn,
		      struct fuse_entry_param *e)
{
	struct fs_inode *ip = NULL, *pp = NULL, *set[2];
	int rc;

	if (FS_IS_CTL(ino) || FS_IS_CTL(np))
		return -EPERM;
	if (fs_dir_is_ctl_name(np, nn))
		return -EEXIST;
	rc = fs_dir_name_check(nn);
	if (!rc)
		rc = fs_check_writable(fs);
	if (rc)
		return rc;
	rc = fs_inode_get(fs, ino, &ip);
	if (!rc)
		rc = fs_inode_get(fs, np, &pp);
	set[0] = ip;
	set[1] = pp;
	if (!rc)
		rc = fs_inode_lock_set(fs, set, 2);
	if (!rc) {
		rc = fs_link_locked(fs, ip, pp, nn, e);
		fs_inode_unlock_set(set, 2);
	}
	fs_inode_unpin(fs, pp);
	fs_inode_unpin(fs, ip);
	return rc;
}

void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct fuse_entry_param e;
	int rc = fs_do_link(fs_of(req), ino, newparent, newname, &e);

	fs_reply_entry(req, rc, &e);
}

/* ---- readdir -------------------------------------------------------------- */

/* Add "." and ".." (cookies 1 and 2) from offset off; no lookup count (as
 * passthrough_ll). Returns 0, or 1 when the buffer is full. */
static int fs_readdir_dots(fuse_req_t req, uint64_t ino, uint64_t parent, off_t off, int plus,
			   char *buf, size_t size, size_t *pos)
{
	for (off_t o = off; o < 2; o++) {
		struct stat st = { 0 };
		const char *nm = o == 0 ? "." : "..";
		size_t need;
		st.st_ino = o == 0 ? ino : parent;
		st.st_mode = S_IFDIR;
		if (plus) {
			struct fuse_entry_param e = { 0 };
			e.attr = st;
			need = fuse_add_direntry_plus(req, buf + *pos, size - *pos, nm, &e, o + 1);
		} else {
			need = fuse_add_direntry(req, buf + *pos, size - *pos, nm, &st, o + 1);
		}
		if (need > size - *pos)
			return 1;
		*pos += need;
	}
	return 0;
}

/*
 * readdirplus: add the entry `name` of inode cino with its attributes.
 * Every entry returned is a lookup; the count is added only once the entry
 * fits, so nothing needs undoing. Returns 0, 1 when the buffer is full, or
 * an error; an inode removed while we list is skipped (0).
 */
static int fs_readdir_plus_one(struct fs *fs, fuse_req_t req, uint64_t cino, const char *name,
			       uint64_t cookie, char *buf, size_t size, size_t *pos)
{
	struct fs_inode *ip = NULL;
	struct fuse_entry_param e;
	size_t need;
	int rc;

	rc = fs_inode_get_locked(fs, cino, &ip);
	if (rc)
		return rc == -ENOENT ? 0 : rc;  /* removed while we list: skip it */
	if (ip->gone) {
		fs_inode_unlock_unpin(fs, ip);
		return 0;
	}
	fs_dir_entry_fill(fs, ip, &e);
	fs_inode_unlock(ip);
	need = fuse_add_direntry_plus(req, buf + *pos, size - *pos, name, &e, (off_t)cookie);
	if (need > size - *pos) {
		fs_inode_unpin(fs, ip);
		return 1;
	}
	fs_inode_ref_lookup(fs, ip, 1);
	fs_inode_unpin(fs, ip);
	*pos += need;
	return 0;
}

/* Add the entries of directory ino with cookies above off, from its R
 * keys, until the buffer is full. Returns 0 or an error. */
static int fs_readdir_entries(struct fs *fs, fuse_req_t req, uint64_t ino, off_t off, int plus,
			      char *buf, size_t size, size_t *pos)
{
	struct kv_iter_user *it = NULL;
	struct fs_key lo, hi;
	uint64_t start = (uint64_t)off < FS_FIRST_COOKIE ? FS_FIRST_COOKIE : (uint64_t)off + 1;
	int rc;

	fs_key_cookie(&lo, ino, start);
	fs_key_ino_end(&hi, FS_K_COOKIE, ino);
	rc = kv_iter_create(fs->db, NULL, lo.b, lo.len, hi.b, hi.len, &it);
	if (rc)
		return rc;
	for (; kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl, vl, need;
		const uint8_t *key = kv_iter_key(it, &kl);
		const uint8_t *val = kv_iter_value(it, &vl);
		char name[FS_NAME_MAX + 1];
		uint64_t cookie;
		struct stat st = { 0 };

		if (kl != 17 || vl < 10 || vl > 9 + FS_NAME_MAX) {
			UTIL_ERROR(FS_LOG, "directory %" PRIu64 ": malformed cookie record", ino);
			rc = -EIO;
			break;
		}
		cookie = util_get_be64(key + 9);
		memcpy(name, val + 9, vl - 9);
		name[vl - 9] = '\0';
		if (plus) {
			rc = fs_readdir_plus_one(fs, req, util_get_be64(val), name, cookie, buf, size,
						 pos);
			if (rc)
				break;         /* an error, or 1: full */
			continue;
		}
		st.st_ino = util_get_be64(val);
		st.st_mode = (mode_t)val[8] << 12;
		need = fuse_add_direntry(req, buf + *pos, size - *pos, name, &st, (off_t)cookie);
		if (need > size - *pos)
			break;
		*pos += need;
	}
	if (rc == 1)
		rc = 0;
	if (rc == 0)
		rc = kv_iter_status(it);
	kv_iter_free(it);
	return rc;
}

/*
 * List directory ino from offset off into *buf (malloc'd, the caller's,
 * also on error), *pos bytes of it filled. Entries listed before an error
 * (and, for readdirplus, counted) are in *buf: the caller replies with them.
 */
static int fs_do_readdir(struct fs *fs, fuse_req_t req, uint64_t ino, size_t size, off_t off,
			 int plus, char **buf, size_t *pos)
{
	struct fs_inode *dp = NULL;
	uint64_t parent;
	int rc;

	*pos = 0;
	atomic_fetch_add(&fs->n_readdir, 1);
	if (size > 1 << 20)
		size = 1 << 20;
	*buf = malloc(size ? size : 1);
	if (!*buf)
		return -ENOMEM;
	rc = fs_inode_get_locked(fs, ino, &dp);
	if (rc)
		return rc;
	rc = fs_dir_check(dp);
	parent = dp->a.parent;
	fs_inode_unlock(dp);       /* dp stays pinned while we list */
	if (!rc && fs_readdir_dots(req, ino, parent, off, plus, *buf, size, pos) == 0)
		rc = fs_readdir_entries(fs, req, ino, off, plus, *buf, size, pos);
	fs_inode_unpin(fs, dp);
	return rc;
}

static void fs_readdir_reply(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	char *buf = NULL;
	size_t pos = 0;
	int rc;

	if (FS_IS_CTL(ino))
		rc = fs_ctl_do_readdir(req, ino, size, off, plus, &buf, &pos);
	else
		rc = fs_do_readdir(fs_of(req), req, ino, size, off, plus, &buf, &pos);
	/* Entries already listed (and, for readdirplus, counted) must reach
	 * the kernel; the next call meets the error again. */
	fs_reply_buf(req, pos ? 0 : rc, buf, pos);
	free(buf);
}

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	fs_readdir_reply(req, ino, size, off, 0);
}

void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	fs_readdir_reply(req, ino, size, off, 1);
}
