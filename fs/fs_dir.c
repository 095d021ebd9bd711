/*
 * fs_dir.c - names: lookup, the creating operations (mknod, mkdir,
 * symlink, create), unlink, rmdir, rename, link and readdir.
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

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define FS_LINK_MAX 65000

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

static int fs_is_ctl_name(uint64_t parent, const char *name)
{
	return parent == FS_ROOT_INO && strcmp(name, FS_CTL_NAME) == 0;
}

/* A usable directory (ip->mu held)? */
static int fs_dir_check(struct fs_inode *ip)
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
	if (fs_is_ctl_name(parent, name))
		return fs_ctl_lookup(fs, FS_CTL_DIR_INO, e);
	rc = fs_name_check(name);
	if (rc)
		return rc;
	rc = fs_inode_get(fs, parent, &pp);
	if (rc)
		return rc;
	rc = fs_inode_lock(fs, pp);
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
	fs_inode_unlock(pp);
	if (rc)
		goto out;
	rc = fs_inode_get(fs, ino, &ip);
	if (rc)
		goto out;
	rc = fs_inode_lock(fs, ip);
	if (rc) {
		if (rc == -ENOENT)
			rc = -ENOENT;   /* removed since we read the entry */
		goto out;
	}
	if (ip->gone) {
		rc = -ENOENT;
	} else {
		fs_entry_fill(fs, ip, e);
		fs_inode_ref_lookup(fs, ip, 1);
	}
	fs_inode_unlock(ip);
out:
	fs_inode_unpin(fs, ip);
	fs_inode_unpin(fs, pp);
	atomic_fetch_add(&fs->n_lookup, 1);
	return rc;
}

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int rc = fs_do_lookup(fs_of(req), parent, name, &e);
	if (rc)
		fs_reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

/* ---- creating ------------------------------------------------------------- */

/*
 * Create `name` in parent: mode (with type), rdev, symlink target.
 * open != 0 also opens it (one handle). On success e is filled and the
 * inode has one more kernel lookup.
 */
static int fs_do_create(fuse_req_t req, uint64_t parent, const char *name, mode_t mode,
			dev_t rdev, const char *link, int open, struct fuse_entry_param *e)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fs_inode *pp = NULL, *ip = NULL;
	struct kv_batch *b = NULL;
	struct fs_attr a = { 0 }, saved;
	struct fs_dent d;
	size_t link_len = link ? strlen(link) : 0;
	int rc, locked = 0;

	if (FS_IS_CTL(parent))
		return -EPERM;
	if (fs_is_ctl_name(parent, name))
		return -EEXIST;
	rc = fs_name_check(name);
	if (rc)
		return rc;
	if (link && (link_len == 0 || link_len > FS_SYMLINK_MAX))
		return link_len ? -ENAMETOOLONG : -ENOENT;
	rc = fs_check_writable(fs);
	if (rc)
		return rc;
	rc = fs_inode_get(fs, parent, &pp);
	if (rc)
		return rc;
	rc = fs_inode_lock(fs, pp);
	if (rc)
		goto out;
	locked = 1;
	rc = fs_dir_check(pp);
	if (rc)
		goto out;
	rc = fs_dent_get(fs, parent, name, &d);
	if (rc == 0)
		rc = -EEXIST;
	if (rc != -ENOENT)
		goto out;
	if (S_ISDIR(mode) && pp->a.nlink >= FS_LINK_MAX) {
		rc = -EMLINK;
		goto out;
	}

	a.mode = mode;
	a.uid = ctx->uid;
	a.gid = ctx->gid;
	if (pp->a.mode & S_ISGID) {
		a.gid = pp->a.gid;
		if (S_ISDIR(mode))
			a.mode |= S_ISGID;
	}
	a.nlink = S_ISDIR(mode) ? 2 : 1;
	a.rdev = (S_ISCHR(mode) || S_ISBLK(mode)) ? rdev : 0;
	a.size = link_len;
	a.atime = a.mtime = a.ctime = a.btime = fs_time_now();
	if (S_ISDIR(mode)) {
		a.next_cookie = FS_FIRST_COOKIE;
		a.parent = parent;
	}
	uint64_t ino;
	rc = fs_ino_alloc(fs, &ino);
	if (rc)
		goto out;
	rc = fs_inode_new(fs, ino, &a, link, link_len, &ip);
	if (rc)
		goto out;

	saved = pp->a;
	d.ino = ino;
	d.type = (uint8_t)((a.mode & S_IFMT) >> 12);
	d.cookie = pp->a.next_cookie++;
	pp->a.mtime = pp->a.ctime = a.ctime;
	if (S_ISDIR(mode))
		pp->a.nlink++;
	rc = kv_batch_create(&b);
	if (!rc)
		rc = fs_inode_put(ip, b);
	if (!rc)
		rc = fs_dent_put(b, parent, name, &d);
	if (!rc)
		rc = fs_inode_put(pp, b);
	if (!rc)
		rc = fs_write_batch(fs, b);
	if (rc) {
		pp->a = saved;
		goto out;
	}
	CHECK_RETURN(pthread_mutex_lock(&ip->mu));
	if (open)
		ip->nopen++;
	fs_entry_fill(fs, ip, e);
	CHECK_RETURN(pthread_mutex_unlock(&ip->mu));
	fs_inode_ref_lookup(fs, ip, 1);
	atomic_fetch_add(&fs->n_create, 1);
	atomic_fetch_add(&fs->live_inodes, 1);
out:
	kv_batch_free(b);
	if (locked)
		fs_inode_unlock(pp);
	fs_inode_unpin(fs, ip);
	fs_inode_unpin(fs, pp);
	return rc;
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fuse_entry_param e;
	int rc;

	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFIFO: case S_IFSOCK: case S_IFCHR: case S_IFBLK:
		break;
	case 0:
		mode |= S_IFREG;
		break;
	default:
		fs_reply_err(req, -EINVAL);
		return;
	}
	rc = fs_do_create(req, parent, name, mode, rdev, NULL, 0, &e);
	if (rc)
		fs_reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fuse_entry_param e;
	int rc = fs_do_create(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL, 0, &e);
	if (rc)
		fs_reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int rc = fs_do_create(req, parent, name, S_IFLNK | 0777, 0, link, 0, &e);
	if (rc)
		fs_reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;
	int rc = fs_do_create(req, parent, name, S_IFREG | (mode & 07777), 0, NULL, 1, &e);
	if (rc) {
		fs_reply_err(req, rc);
		return;
	}
	fi->fh = 0;
	fi->keep_cache = 0;
	if (fuse_reply_create(req, &e, fi) != 0) {
		/* The kernel will not use this handle or this lookup. */
		struct fs_inode *ip;
		if (fs_inode_get(fs, e.ino, &ip) == 0) {
			CHECK_RETURN(pthread_mutex_lock(&ip->mu));
			(void)fs_orphan_release_locked(fs, ip);
			CHECK_RETURN(pthread_mutex_unlock(&ip->mu));
			fs_inode_unpin(fs, ip);
		}
		fs_inode_forget(fs, e.ino, 1);
	}
}

/* ---- removing ------------------------------------------------------------- */

static int fs_do_remove(struct fs *fs, uint64_t parent, const char *name, int isdir)
{
	struct fs_inode *pp = NULL, *cp = NULL, *set[2];
	struct kv_batch *b = NULL;
	struct fs_attr psaved, csaved;
	struct fs_dent d, d2;
	struct fs_key k;
	int rc, locked = 0;

	if (FS_IS_CTL(parent) || fs_is_ctl_name(parent, name))
		return -EPERM;
	rc = fs_name_check(name);
	if (rc)
		return rc;
	if (strcmp(name, ".") == 0)
		return isdir ? -EINVAL : -EISDIR;
	if (strcmp(name, "..") == 0)
		return isdir ? -ENOTEMPTY : -EISDIR;
	rc = fs_check_writable(fs);
	if (rc)
		return rc;
	rc = fs_inode_get(fs, parent, &pp);
	if (rc)
		return rc;
again:
	rc = fs_inode_lock(fs, pp);
	if (rc)
		goto out;
	rc = fs_dir_check(pp);
	if (!rc)
		rc = fs_dent_get(fs, parent, name, &d);
	fs_inode_unlock(pp);
	if (rc)
		goto out;
	rc = fs_inode_get(fs, d.ino, &cp);
	if (rc)
		goto out;
	set[0] = pp;
	set[1] = cp;
	rc = fs_inode_lock_set(fs, set, 2);
	if (rc) {
		if (rc == -ENOENT)
			rc = -EIO;   /* an entry naming a missing inode */
		goto out;
	}
	locked = 1;
	rc = fs_dir_check(pp);
	if (!rc)
		rc = fs_dent_get(fs, parent, name, &d2);
	if (rc)
		goto out;
	if (d2.ino != cp->ino) {
		fs_inode_unlock_set(set, 2);
		locked = 0;
		fs_inode_unpin(fs, cp);
		cp = NULL;
		goto again;
	}
	if (cp->gone) {
		rc = -EIO;
		goto out;
	}
	if (isdir) {
		if (!S_ISDIR(cp->a.mode)) {
			rc = -ENOTDIR;
			goto out;
		}
		rc = fs_dir_is_empty(fs, cp->ino);
		if (rc == 0)
			rc = -ENOTEMPTY;
		if (rc < 0)
			goto out;
		rc = 0;
	} else if (S_ISDIR(cp->a.mode)) {
		rc = -EISDIR;
		goto out;
	}

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
		rc = fs_dent_del(b, parent, name, d2.cookie);
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
	if (rc) {
		pp->a = psaved;
		cp->a = csaved;
		goto out;
	}
	atomic_fetch_add(&fs->n_unlink, 1);
	if (cp->a.nlink == 0)
		(void)fs_orphan_maybe_reclaim_locked(fs, cp);   /* logged; O key stays */
out:
	kv_batch_free(b);
	if (locked)
		fs_inode_unlock_set(set, 2);
	fs_inode_unpin(fs, cp);
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

/* ---- rename --------------------------------------------------------------- */

/* Is `anc` an ancestor of (or equal to) `ino`? Called with rename_mu held
 * and no inode lock, so ancestry cannot change. 1 yes, 0 no, <0 error. */
static int fs_is_ancestor(struct fs *fs, uint64_t anc, uint64_t ino)
{
	for (int depth = 0; depth < 100000; depth++) {
		struct fs_inode *ip;
		uint64_t parent;
		int rc;

		if (ino == anc)
			return 1;
		if (ino == FS_ROOT_INO)
			return 0;
		rc = fs_inode_get(fs, ino, &ip);
		if (rc)
			return rc;
		rc = fs_inode_lock(fs, ip);
		if (rc) {
			fs_inode_unpin(fs, ip);
			return rc == -ENOENT ? -EIO : rc;
		}
		parent = ip->a.parent;
		fs_inode_unlock(ip);
		fs_inode_unpin(fs, ip);
		if (parent == ino)
			return -EIO;
		ino = parent;
	}
	UTIL_ERROR(FS_LOG, "directory %" PRIu64 ": parent chain too deep or looping", ino);
	return -EIO;
}

static int fs_do_rename(struct fs *fs, uint64_t op, const char *on, uint64_t np,
			const char *nn, unsigned flags)
{
	struct fs_inode *opp = NULL, *npp = NULL, *sp = NULL, *dp = NULL, *set[4];
	struct fs_attr saved[4];
	struct kv_batch *b = NULL;
	struct fs_dent sd, dd, sd2, dd2;
	struct fs_key k;
	int rc, locked = 0, have_dst, rmu = 0, exchange = !!(flags & RENAME_EXCHANGE);
	struct fs_time now;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE) ||
	    (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE))
		return -EINVAL;
	if (FS_IS_CTL(op) || FS_IS_CTL(np) || fs_is_ctl_name(op, on) || fs_is_ctl_name(np, nn))
		return -EPERM;
	rc = fs_name_check(on);
	if (!rc)
		rc = fs_name_check(nn);
	if (rc)
		return rc;
	if (!strcmp(on, ".") || !strcmp(on, "..") || !strcmp(nn, ".") || !strcmp(nn, ".."))
		return -EBUSY;
	rc = fs_check_writable(fs);
	if (rc)
		return rc;
	rc = fs_inode_get(fs, op, &opp);
	if (!rc)
		rc = fs_inode_get(fs, np, &npp);
	if (rc)
		goto out;
again:
	set[0] = opp;
	set[1] = npp;
	rc = fs_inode_lock_set(fs, set, 2);
	if (rc)
		goto out;
	rc = fs_dir_check(opp);
	if (!rc)
		rc = fs_dir_check(npp);
	if (!rc)
		rc = fs_dent_get(fs, op, on, &sd);
	if (!rc) {
		rc = fs_dent_get(fs, np, nn, &dd);
		have_dst = rc == 0;
		if (rc == -ENOENT)
			rc = 0;
	}
	fs_inode_unlock_set(set, 2);
	if (rc)
		goto out;
	if (have_dst && dd.ino == sd.ino) {
		rc = 0;        /* both names are the same inode: nothing to do */
		goto out;
	}
	if (!have_dst && exchange) {
		rc = -ENOENT;
		goto out;
	}
	if (have_dst && (flags & RENAME_NOREPLACE)) {
		rc = -EEXIST;
		goto out;
	}
	rc = fs_inode_get(fs, sd.ino, &sp);
	if (!rc && have_dst)
		rc = fs_inode_get(fs, dd.ino, &dp);
	if (rc)
		goto out;
	if (op != np && (sd.type == (S_IFDIR >> 12) || (exchange && dd.type == (S_IFDIR >> 12)))) {
		CHECK_RETURN(pthread_mutex_lock(&fs->rename_mu));
		rmu = 1;
		if (sd.type == (S_IFDIR >> 12)) {
			rc = fs_is_ancestor(fs, sd.ino, np);
			if (rc == 1)
				rc = -EINVAL;
			if (rc)
				goto out;
		}
		if (exchange && dd.type == (S_IFDIR >> 12)) {
			rc = fs_is_ancestor(fs, dd.ino, op);
			if (rc == 1)
				rc = -EINVAL;
			if (rc)
				goto out;
		}
	}
	set[0] = opp;
	set[1] = npp;
	set[2] = sp;
	set[3] = dp;
	rc = fs_inode_lock_set(fs, set, 4);
	if (rc) {
		if (rc == -ENOENT)
			rc = -EIO;
		goto out;
	}
	locked = 1;
	rc = fs_dir_check(opp);
	if (!rc)
		rc = fs_dir_check(npp);
	if (!rc)
		rc = fs_dent_get(fs, op, on, &sd2);
	if (!rc) {
		rc = fs_dent_get(fs, np, nn, &dd2);
		if (rc == 0 && !have_dst)
			rc = -EAGAIN;
		else if (rc == -ENOENT && !have_dst)
			rc = 0;
		else if (rc == -ENOENT)
			rc = -EAGAIN;
		else if (rc == 0 && dd2.ino != dd.ino)
			rc = -EAGAIN;
	}
	if (!rc && sd2.ino != sd.ino)
		rc = -EAGAIN;
	if (rc == -EAGAIN) {
		/* Changed between the two reads: start over. */
		fs_inode_unlock_set(set, 4);
		locked = 0;
		if (rmu)
			CHECK_RETURN(pthread_mutex_unlock(&fs->rename_mu));
		rmu = 0;
		fs_inode_unpin(fs, sp);
		fs_inode_unpin(fs, dp);
		sp = dp = NULL;
		goto again;
	}
	if (rc)
		goto out;
	if (sp->gone || (dp && dp->gone)) {
		rc = -EIO;
		goto out;
	}
	int sdir = S_ISDIR(sp->a.mode), ddir = dp && S_ISDIR(dp->a.mode);
	if (dp && !exchange) {
		if (sdir && !ddir) {
			rc = -ENOTDIR;
			goto out;
		}
		if (!sdir && ddir) {
			rc = -EISDIR;
			goto out;
		}
		if (ddir) {
			rc = fs_dir_is_empty(fs, dp->ino);
			if (rc == 0)
				rc = -ENOTEMPTY;
			if (rc < 0)
				goto out;
			rc = 0;
		}
	}
	if (sdir && op != np && npp->a.nlink >= FS_LINK_MAX && !ddir) {
		rc = -EMLINK;
		goto out;
	}

	saved[0] = opp->a;
	saved[1] = npp->a;
	saved[2] = sp->a;
	if (dp)
		saved[3] = dp->a;
	now = fs_time_now();
	rc = kv_batch_create(&b);
	if (rc)
		goto out;
	if (exchange) {
		struct fs_dent a1 = { dp->ino, dd2.type, sd2.cookie };
		struct fs_dent a2 = { sp->ino, sd2.type, dd2.cookie };
		rc = fs_dent_put(b, op, on, &a1);
		if (!rc)
			rc = fs_dent_put(b, np, nn, &a2);
		if (op != np) {
			if (sdir) {
				sp->a.parent = np;
				opp->a.nlink--;
				npp->a.nlink++;
			}
			if (ddir) {
				dp->a.parent = op;
				npp->a.nlink--;
				opp->a.nlink++;
			}
		}
		dp->a.ctime = now;
	} else {
		struct fs_dent a2 = { sp->ino, sd2.type, 0 };
		rc = fs_dent_del(b, op, on, sd2.cookie);
		if (!rc && dp) {
			fs_key_cookie(&k, np, dd2.cookie);
			rc = kv_batch_delete(b, k.b, k.len);
			dp->a.ctime = now;
			if (ddir) {
				dp->a.nlink = 0;
				npp->a.nlink--;
			} else {
				dp->a.nlink--;
			}
			if (!rc && dp->a.nlink == 0) {
				fs_key_orphan(&k, dp->ino);
				rc = kv_batch_put(b, k.b, k.len, "", 0);
			}
		}
		a2.cookie = npp->a.next_cookie++;
		if (!rc)
			rc = fs_dent_put(b, np, nn, &a2);
		if (sdir && op != np) {
			sp->a.parent = np;
			opp->a.nlink--;
			npp->a.nlink++;
		}
	}
	sp->a.ctime = now;
	opp->a.mtime = opp->a.ctime = now;
	npp->a.mtime = npp->a.ctime = now;
	{
		struct fs_inode *u[4];
		int m = 0;
		for (int i = 0; i < 4; i++) {
			int dup = 0;
			if (!set[i])
				continue;
			for (int j = 0; j < m; j++)
				dup |= u[j] == set[i];
			if (!dup)
				u[m++] = set[i];
		}
		for (int i = 0; i < m && !rc; i++)
			rc = fs_inode_put(u[i], b);
	}
	if (!rc)
		rc = fs_write_batch(fs, b);
	if (rc) {
		/* Restore in reverse so a shared inode gets its first copy back. */
		if (dp)
			dp->a = saved[3];
		sp->a = saved[2];
		npp->a = saved[1];
		opp->a = saved[0];
		goto out;
	}
	atomic_fetch_add(&fs->n_rename, 1);
	if (dp && !exchange && dp->a.nlink == 0)
		(void)fs_orphan_maybe_reclaim_locked(fs, dp);
out:
	kv_batch_free(b);
	if (locked)
		fs_inode_unlock_set(set, 4);
	if (rmu)
		CHECK_RETURN(pthread_mutex_unlock(&fs->rename_mu));
	fs_inode_unpin(fs, dp);
	fs_inode_unpin(fs, sp);
	fs_inode_unpin(fs, npp);
	fs_inode_unpin(fs, opp);
	return rc;
}

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags)
{
	fs_reply_err(req, fs_do_rename(fs_of(req), parent, name, newparent, newname, flags));
}

/* ---- link ----------------------------------------------------------------- */

static int fs_do_link(struct fs *fs, uint64_t ino, uint64_t np, const char *nn,
		      struct fuse_entry_param *e)
{
	struct fs_inode *ip = NULL, *pp = NULL, *set[2];
	struct fs_attr isaved, psaved;
	struct kv_batch *b = NULL;
	struct fs_dent d;
	int rc, locked = 0;

	if (FS_IS_CTL(ino) || FS_IS_CTL(np))
		return -EPERM;
	if (fs_is_ctl_name(np, nn))
		return -EEXIST;
	rc = fs_name_check(nn);
	if (rc)
		return rc;
	rc = fs_check_writable(fs);
	if (rc)
		return rc;
	rc = fs_inode_get(fs, ino, &ip);
	if (!rc)
		rc = fs_inode_get(fs, np, &pp);
	if (rc)
		goto out;
	set[0] = ip;
	set[1] = pp;
	rc = fs_inode_lock_set(fs, set, 2);
	if (rc)
		goto out;
	locked = 1;
	rc = fs_dir_check(pp);
	if (rc)
		goto out;
	if (ip->gone || ip->a.nlink == 0) {
		rc = -ENOENT;
		goto out;
	}
	if (S_ISDIR(ip->a.mode)) {
		rc = -EPERM;
		goto out;
	}
	if (ip->a.nlink >= FS_LINK_MAX) {
		rc = -EMLINK;
		goto out;
	}
	rc = fs_dent_get(fs, np, nn, &d);
	if (rc == 0)
		rc = -EEXIST;
	if (rc != -ENOENT)
		goto out;
	isaved = ip->a;
	psaved = pp->a;
	d.ino = ino;
	d.type = (uint8_t)((ip->a.mode & S_IFMT) >> 12);
	d.cookie = pp->a.next_cookie++;
	ip->a.nlink++;
	ip->a.ctime = pp->a.mtime = pp->a.ctime = fs_time_now();
	rc = kv_batch_create(&b);
	if (!rc)
		rc = fs_dent_put(b, np, nn, &d);
	if (!rc)
		rc = fs_inode_put(ip, b);
	if (!rc)
		rc = fs_inode_put(pp, b);
	if (!rc)
		rc = fs_write_batch(fs, b);
	if (rc) {
		ip->a = isaved;
		pp->a = psaved;
		goto out;
	}
	fs_entry_fill(fs, ip, e);
	fs_inode_ref_lookup(fs, ip, 1);
out:
	kv_batch_free(b);
	if (locked)
		fs_inode_unlock_set(set, 2);
	fs_inode_unpin(fs, pp);
	fs_inode_unpin(fs, ip);
	return rc;
}

void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct fuse_entry_param e;
	int rc = fs_do_link(fs_of(req), ino, newparent, newname, &e);
	if (rc)
		fs_reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

/* ---- readdir -------------------------------------------------------------- */

static void fs_do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	struct fs *fs = fs_of(req);
	struct fs_inode *dp = NULL;
	struct kv_iter_user *it = NULL;
	struct fs_key lo, hi;
	char *buf = NULL;
	size_t pos = 0;
	uint64_t parent;
	int rc;

	if (FS_IS_CTL(ino)) {
		fs_ctl_readdir(req, ino, size, off, plus);
		return;
	}
	atomic_fetch_add(&fs->n_readdir, 1);
	if (size > 1 << 20)
		size = 1 << 20;
	buf = malloc(size ? size : 1);
	if (!buf) {
		fs_reply_err(req, -ENOMEM);
		return;
	}
	rc = fs_inode_get(fs, ino, &dp);
	if (rc)
		goto fail;
	rc = fs_inode_lock(fs, dp);
	if (rc)
		goto fail;
	rc = fs_dir_check(dp);
	parent = dp->a.parent;
	fs_inode_unlock(dp);
	if (rc)
		goto fail;

	/* "." and "..": cookies 1 and 2; no lookup count (as passthrough_ll). */
	for (off_t o = off; o < 2; o++) {
		struct stat st = { 0 };
		const char *nm = o == 0 ? "." : "..";
		size_t need;
		st.st_ino = o == 0 ? ino : parent;
		st.st_mode = S_IFDIR;
		if (plus) {
			struct fuse_entry_param e = { 0 };
			e.attr = st;
			need = fuse_add_direntry_plus(req, buf + pos, size - pos, nm, &e, o + 1);
		} else {
			need = fuse_add_direntry(req, buf + pos, size - pos, nm, &st, o + 1);
		}
		if (need > size - pos)
			goto done;
		pos += need;
	}

	{
		uint64_t start = (uint64_t)off < FS_FIRST_COOKIE ? FS_FIRST_COOKIE : (uint64_t)off + 1;
		fs_key_cookie(&lo, ino, start);
		fs_key_ino_end(&hi, FS_K_COOKIE, ino);
	}
	rc = kv_iter_create(fs->db, NULL, lo.b, lo.len, hi.b, hi.len, &it);
	if (rc)
		goto fail;
	for (; kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl, vl, need;
		const uint8_t *key = kv_iter_key(it, &kl);
		const uint8_t *val = kv_iter_value(it, &vl);
		char name[FS_NAME_MAX + 1];
		uint64_t cookie, cino;
		struct stat st = { 0 };

		if (kl != 17 || vl < 10 || vl > 9 + FS_NAME_MAX) {
			UTIL_ERROR(FS_LOG, "directory %" PRIu64 ": malformed cookie record", ino);
			rc = -EIO;
			goto fail;
		}
		cookie = util_get_be64(key + 9);
		cino = util_get_be64(val);
		memcpy(name, val + 9, vl - 9);
		name[vl - 9] = '\0';
		st.st_ino = cino;
		st.st_mode = (mode_t)val[8] << 12;
		if (!plus) {
			need = fuse_add_direntry(req, buf + pos, size - pos, name, &st, (off_t)cookie);
			if (need > size - pos)
				break;
			pos += need;
			continue;
		}
		/* readdirplus: every entry returned is a lookup. The count is
		 * added only once the entry fits, so nothing needs undoing. */
		struct fs_inode *ip = NULL;
		struct fuse_entry_param e;
		rc = fs_inode_get(fs, cino, &ip);
		if (rc)
			goto fail;
		rc = fs_inode_lock(fs, ip);
		if (rc == -ENOENT || (rc == 0 && ip->gone)) {
			/* Removed while we list: skip it. */
			if (rc == 0)
				fs_inode_unlock(ip);
			fs_inode_unpin(fs, ip);
			rc = 0;
			continue;
		}
		if (rc) {
			fs_inode_unpin(fs, ip);
			goto fail;
		}
		fs_entry_fill(fs, ip, &e);
		fs_inode_unlock(ip);
		need = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, (off_t)cookie);
		if (need > size - pos) {
			fs_inode_unpin(fs, ip);
			break;
		}
		fs_inode_ref_lookup(fs, ip, 1);
		fs_inode_unpin(fs, ip);
		pos += need;
	}
	rc = kv_iter_status(it);
	if (rc)
		goto fail;
done:
	kv_iter_free(it);
	fs_inode_unpin(fs, dp);
	fuse_reply_buf(req, buf, pos);
	free(buf);
	return;
fail:
	kv_iter_free(it);
	fs_inode_unpin(fs, dp);
	if (pos) {
		/* Entries already listed (and, for readdirplus, counted) must
		 * reach the kernel; the next call meets the error again. */
		fuse_reply_buf(req, buf, pos);
		free(buf);
		return;
	}
	free(buf);
	fs_reply_err(req, rc);
}

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	fs_do_readdir(req, ino, size, off, 0);
}

void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	fs_do_readdir(req, ino, size, off, 1);
}
