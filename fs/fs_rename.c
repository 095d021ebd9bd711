/*
 * fs_rename.c - rename(2), with RENAME_NOREPLACE and RENAME_EXCHANGE.
 *
 * Like every change of names (fs_dir.c) it builds ONE kv batch, applied
 * under the locks of every inode whose record it rewrites.
 *
 *   fs_do_rename checks its arguments, then fs_rename_lock resolves both
 *   names under the parents' locks, takes rename_mu and checks for a loop
 *   when a directory moves to another directory (fs_rename_loop_check),
 *   locks all four inodes and reads both entries again, starting over if
 *   they changed. fs_rename_locked then checks the types and builds one
 *   batch by case: fs_rename_same_dir, fs_rename_cross_dir (the same, and
 *   a directory changes parent) or fs_rename_exchange (RENAME_EXCHANGE).
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

struct fs_rename {
	uint64_t op, np;            /* old and new parent */
	const char *on, *nn;        /* old and new name */
	int exchange;               /* RENAME_EXCHANGE */
	int noreplace;              /* RENAME_NOREPLACE */
	struct fs_inode *opp, *npp; /* pinned parents */
	struct fs_inode *sp, *dp;   /* pinned source, destination (NULL: none) */
	struct fs_inode *set[4];    /* opp, npp, sp, dp: locked when `locked` */
	struct fs_dent sd, dd;      /* the entries as first read */
	struct fs_dent sd2, dd2;    /* the entries as read under all four locks */
	int have_dst;               /* nn exists */
	int noop;                   /* both names are the same inode */
	int sdir, ddir;             /* source, destination are directories */
	int locked;                 /* set is locked */
	int rmu;                    /* fs->rename_mu is held */
};

/* Is `anc` an ancestor of (or equal to) `ino`? Called with rename_mu held
 * and no inode lock, so ancestry cannot change. 1 yes, 0 no, <0 error. */
static int fs_rename_is_ancestor(struct fs *fs, uint64_t anc, uint64_t ino)
{
	for (int depth = 0; depth < 100000; depth++) {
		struct fs_inode *ip;
		uint64_t parent;
		int rc;

		if (ino == anc)
			return 1;
		if (ino == FS_ROOT_INO)
			return 0;
		rc = fs_inode_get_locked(fs, ino, &ip);
		if (rc)
			return rc == -ENOENT ? -EIO : rc;
		parent = ip->a.parent;
		fs_inode_unlock_unpin(fs, ip);
		if (parent == ino)
			return -EIO;
		ino = parent;
	}
	UTIL_ERROR(FS_LOG, "directory %" PRIu64 ": parent chain too deep or looping", ino);
	return -EIO;
}

/* The checks that need no inode: flags, the control directory, names. */
static int fs_rename_check_args(const struct fs_rename *r, unsigned flags)
{
	int rc;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE) ||
	    (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE))
		return -EINVAL;
	if (FS_IS_CTL(r->op) || FS_IS_CTL(r->np) || fs_dir_is_ctl_name(r->op, r->on) ||
	    fs_dir_is_ctl_name(r->np, r->nn))
		return -EPERM;
	rc = fs_dir_name_check(r->on);
	if (!rc)
		rc = fs_dir_name_check(r->nn);
	if (rc)
		return rc;
	if (!strcmp(r->on, ".") || !strcmp(r->on, "..") || !strcmp(r->nn, ".") ||
	    !strcmp(r->nn, ".."))
		return -EBUSY;
	return 0;
}

/* Read both entries under the parents' locks (released again) and check
 * what they allow; sets sd, dd, have_dst and noop. */
static int fs_rename_resolve(struct fs *fs, struct fs_rename *r)
{
	struct fs_inode *set[2] = { r->opp, r->npp };
	int rc;

	rc = fs_inode_lock_set(fs, set, 2);
	if (rc)
		return rc;
	rc = fs_dir_check(r->opp);
	if (!rc)
		rc = fs_dir_check(r->npp);
	if (!rc)
		rc = fs_dent_get(fs, r->op, r->on, &r->sd);
	if (!rc) {
		rc = fs_dent_get(fs, r->np, r->nn, &r->dd);
		r->have_dst = rc == 0;
		if (rc == -ENOENT)
			rc = 0;
	}
	fs_inode_unlock_set(set, 2);
	if (rc)
		return rc;
	if (r->have_dst && r->dd.ino == r->sd.ino) {
		r->noop = 1;   /* both names are the same inode: nothing to do */
		return 0;
	}
	if (!r->have_dst && r->exchange)
		return -ENOENT;
	if (r->have_dst && r->noreplace)
		return -EEXIST;
	return 0;
}

/* A directory moving to another directory must not move into its own
 * subtree: take rename_mu (held until the rename ends) and walk the new
 * parent's ancestors. Same-directory renames and files need neither. */
static int fs_rename_loop_check(struct fs *fs, struct fs_rename *r)
{
	int sdir = r->sd.type == (S_IFDIR >> 12);
	int ddir = r->exchange && r->dd.type == (S_IFDIR >> 12);
	int rc;

	if (r->op == r->np || (!sdir && !ddir))
		return 0;
	CHECK_RETURN(pthread_mutex_lock(&fs->rename_mu));
	r->rmu = 1;
	if (sdir) {
		rc = fs_rename_is_ancestor(fs, r->sd.ino, r->np);
		if (rc)
			return rc == 1 ? -EINVAL : rc;
	}
	if (ddir) {
		rc = fs_rename_is_ancestor(fs, r->dd.ino, r->op);
		if (rc)
			return rc == 1 ? -EINVAL : rc;
	}
	return 0;
}

/* Lock all four inodes and read both entries again: -EAGAIN if either
 * changed since fs_rename_resolve. */
static int fs_rename_lock_verify(struct fs *fs, struct fs_rename *r)
{
	int rc;

	r->set[0] = r->opp;
	r->set[1] = r->npp;
	r->set[2] = r->sp;
	r->set[3] = r->dp;
	rc = fs_inode_lock_set(fs, r->set, 4);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	r->locked = 1;
	rc = fs_dir_check(r->opp);
	if (!rc)
		rc = fs_dir_check(r->npp);
	if (!rc)
		rc = fs_dent_get(fs, r->op, r->on, &r->sd2);
	if (!rc) {
		rc = fs_dent_get(fs, r->np, r->nn, &r->dd2);
		if (rc == 0 && !r->have_dst)
			rc = -EAGAIN;
		else if (rc == -ENOENT && !r->have_dst)
			rc = 0;
		else if (rc == -ENOENT)
			rc = -EAGAIN;
		else if (rc == 0 && r->dd2.ino != r->dd.ino)
			rc = -EAGAIN;
	}
	if (!rc && r->sd2.ino != r->sd.ino)
		rc = -EAGAIN;
	return rc;
}

/* Undo fs_rename_lock down to the pinned parents. */
static void fs_rename_unlock(struct fs *fs, struct fs_rename *r)
{
	if (r->locked)
		fs_inode_unlock_set(r->set, 4);
	r->locked = 0;
	if (r->rmu)
		CHECK_RETURN(pthread_mutex_unlock(&fs->rename_mu));
	r->rmu = 0;
	fs_inode_unpin(fs, r->dp);
	fs_inode_unpin(fs, r->sp);
	r->sp = r->dp = NULL;
}

/*
 * Resolve, check for a loop, lock and verify, starting over while the
 * entries change between the reads. On 0 every inode of r->set is locked
 * (nothing is when r->noop); fs_rename_unlock undoes it either way.
 */
static int fs_rename_lock(struct fs *fs, struct fs_rename *r)
{
	int rc;

	for (;;) {
		rc = fs_rename_resolve(fs, r);
		if (rc || r->noop)
			return rc;
		rc = fs_inode_get(fs, r->sd.ino, &r->sp);
		if (!rc && r->have_dst)
			rc = fs_inode_get(fs, r->dd.ino, &r->dp);
		if (!rc)
			rc = fs_rename_loop_check(fs, r);
		if (!rc)
			rc = fs_rename_lock_verify(fs, r);
		if (rc != -EAGAIN)
			return rc;
		fs_rename_unlock(fs, r);
	}
}

/* The checks of the locked inodes: types, emptiness, link count. */
static int fs_rename_check_locked(struct fs *fs, struct fs_rename *r)
{
	int rc;

	if (r->sp->gone || (r->dp && r->dp->gone))
		return -EIO;
	r->sdir = S_ISDIR(r->sp->a.mode);
	r->ddir = r->dp && S_ISDIR(r->dp->a.mode);
	if (r->dp && !r->exchange) {
		if (r->sdir && !r->ddir)
			return -ENOTDIR;
		if (!r->sdir && r->ddir)
			return -EISDIR;
		if (r->ddir) {
			rc = fs_dir_is_empty(fs, r->dp->ino);
			if (rc <= 0)
				return rc == 0 ? -ENOTEMPTY : rc;
		}
	}
	if (r->sdir && r->op != r->np && r->npp->a.nlink >= FS_LINK_MAX && !r->ddir)
		return -EMLINK;
	return 0;
}

/* The replaced destination (not an exchange): its R key goes (its D key is
 * overwritten), it loses its link - a directory all of them and its
 * parent's ".." link - and with its last link it gets an O key. */
static int fs_rename_unlink_dst(struct fs_rename *r, struct kv_batch *b, struct fs_time now)
{
	struct fs_key k;
	int rc;

	fs_key_cookie(&k, r->np, r->dd2.cookie);
	rc = kv_batch_delete(b, k.b, k.len);
	r->dp->a.ctime = now;
	if (r->ddir) {
		r->dp->a.nlink = 0;
		r->npp->a.nlink--;
	} else {
		r->dp->a.nlink--;
	}
	if (!rc && r->dp->a.nlink == 0) {
		fs_key_orphan(&k, r->dp->ino);
		rc = kv_batch_put(b, k.b, k.len, "", 0);
	}
	return rc;
}

/* Within one directory: the old entry goes, the destination (if any) is
 * replaced, and the new entry gets a fresh cookie of the new parent. */
static int fs_rename_same_dir(struct fs_rename *r, struct kv_batch *b, struct fs_time now)
{
	struct fs_dent a2 = { r->sp->ino, r->sd2.type, 0 };
	int rc;

	rc = fs_dent_del(b, r->op, r->on, r->sd2.cookie);
	if (!rc && r->dp)
		rc = fs_rename_unlink_dst(r, b, now);
	a2.cookie = r->npp->a.next_cookie++;
	if (!rc)
		rc = fs_dent_put(b, r->np, r->nn, &a2);
	return rc;
}

/* To another directory: the entries change as within one
 * (fs_rename_same_dir), and a directory moved changes its parent, taking
 * its ".." link from the old parent to the new. */
static int fs_rename_cross_dir(struct fs_rename *r, struct kv_batch *b, struct fs_time now)
{
	int rc = fs_rename_same_dir(r, b, now);

	if (r->sdir) {
		r->sp->a.parent = r->np;
		r->opp->a.nlink--;
		r->npp->a.nlink++;
	}
	return rc;
}

/* RENAME_EXCHANGE: each name keeps its cookie and gets the other inode;
 * across directories each directory among them changes parent. */
static int fs_rename_exchange(struct fs_rename *r, struct kv_batch *b, struct fs_time now)
{
	struct fs_dent a1 = { r->dp->ino, r->dd2.type, r->sd2.cookie };
	struct fs_dent a2 = { r->sp->ino, r->sd2.type, r->dd2.cookie };
	int rc;

	rc = fs_dent_put(b, r->op, r->on, &a1);
	if (!rc)
		rc = fs_dent_put(b, r->np, r->nn, &a2);
	if (r->op != r->np) {
		if (r->sdir) {
			r->sp->a.parent = r->np;
			r->opp->a.nlink--;
			r->npp->a.nlink++;
		}
		if (r->ddir) {
			r->dp->a.parent = r->op;
			r->npp->a.nlink--;
			r->opp->a.nlink++;
		}
	}
	r->dp->a.ctime = now;
	return rc;
}

/* Put the I key of each distinct inode of r->set into b. */
static int fs_rename_put_inodes(struct fs_rename *r, struct kv_batch *b)
{
	struct fs_inode *u[4];
	int m = 0, rc = 0;

	for (int i = 0; i < 4; i++) {
		int dup = 0;
		if (!r->set[i])
			continue;
		for (int j = 0; j < m; j++)
			dup |= u[j] == r->set[i];
		if (!dup)
			u[m++] = r->set[i];
	}
	for (int i = 0; i < m && !rc; i++)
		rc = fs_inode_put(u[i], b);
	return rc;
}

/* The rename itself, every lock held: one batch by case, the records of
 * all the inodes changed, and the memory copies restored if it fails. */
static int fs_rename_locked(struct fs *fs, struct fs_rename *r)
{
	struct fs_attr saved[4];
	struct kv_batch *b = NULL;
	struct fs_time now;
	int rc;

	rc = fs_rename_check_locked(fs, r);
	if (rc)
		return rc;
	saved[0] = r->opp->a;
	saved[1] = r->npp->a;
	saved[2] = r->sp->a;
	if (r->dp)
		saved[3] = r->dp->a;
	now = fs_time_now();
	rc = kv_batch_create(&b);
	if (rc)
		return rc;
	if (r->exchange)
		rc = fs_rename_exchange(r, b, now);
	else if (r->op == r->np)
		rc = fs_rename_same_dir(r, b, now);
	else
		rc = fs_rename_cross_dir(r, b, now);
	r->sp->a.ctime = now;
	r->opp->a.mtime = r->opp->a.ctime = now;
	r->npp->a.mtime = r->npp->a.ctime = now;
	if (!rc)
		rc = fs_rename_put_inodes(r, b);
	if (!rc)
		rc = fs_write_batch(fs, b);
	kv_batch_free(b);
	if (rc) {
		/* Restore in reverse so a shared inode gets its first copy back. */
		if (r->dp)
			r->dp->a = saved[3];
		r->sp->a = saved[2];
		r->npp->a = saved[1];
		r->opp->a = saved[0];
		return rc;
	}
	atomic_fetch_add(&fs->n_rename, 1);
	if (r->dp && !r->exchange && r->dp->a.nlink == 0)
		(void)fs_orphan_maybe_reclaim_locked(fs, r->dp);
	return 0;
}

static int fs_do_rename(struct fs *fs, uint64_t op, const char *on, uint64_t np,
			const char *nn, unsigned flags)
{
	struct fs_rename r = { .op = op, .np = np, .on = on, .nn = nn };
	int rc;

	r.exchange = !!(flags & RENAME_EXCHANGE);
	r.noreplace = !!(flags & RENAME_NOREPLACE);
	rc = fs_rename_check_args(&r, flags);
	if (!rc)
		rc = fs_check_writable(fs);
	if (rc)
		return rc;
	rc = fs_inode_get(fs, op, &r.opp);
	if (!rc)
		rc = fs_inode_get(fs, np, &r.npp);
	if (!rc)
		rc = fs_rename_lock(fs, &r);
	if (!rc && !r.noop)
		rc = fs_rename_locked(fs, &r);
	fs_rename_unlock(fs, &r);
	fs_inode_unpin(fs, r.npp);
	fs_inode_unpin(fs, r.opp);
	return rc;
}

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags)
{
	fs_reply_err(req, fs_do_rename(fs_of(req), parent, name, newparent, newname, flags));
}
