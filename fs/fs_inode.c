/*
 * fs_inode.c - the in-memory inode table, lookup counts, inode-number
 * allocation, orphans, and the fs lifecycle (fs_alloc/start/stop/free).
 *
 * DESIGN (threads and locks)
 *   FUSE handlers run on the session's worker threads; one flusher thread
 *   (fs_data.c) writes buffered file data. Locks, outermost first:
 *
 *     fs->rename_mu   only cross-directory renames of a directory take it,
 *                     before any inode lock (the VFS's s_vfs_rename_mutex);
 *     inode mu        one per inode; several are taken in ascending inode
 *                     number (fs_inode_lock_set). It serialises every change
 *                     of that inode's keys: a handler reads the inode's
 *                     record, builds one batch and applies it under it, so
 *                     two changes of one inode can never reach the engine in
 *                     the other order. It is held across engine calls (kv_get,
 *                     kv_write) that concern this inode - as the kernel holds
 *                     i_rwsem across disk I/O - never across fuse_reply_*;
 *     fs->ino_mu, fs->wb_mu, fs->itab_mu   innermost, never held across
 *                     any engine call or reply. The inode-range reservation
 *                     writes the superblock with ino_mu released (other
 *                     allocators wait on ino_cv).
 *   So no lock shared by unrelated operations is held across store I/O.
 *
 * LIFETIME OF A TABLE OBJECT
 *   An object lives while nlookup + pins > 0 (both under itab_mu). nlookup
 *   is the kernel's count: +1 per fuse_reply_entry/fuse_reply_create,
 *   -n per forget. pins are our own short references. The root starts with
 *   nlookup = 1 that is never dropped (pinned). When the last reference
 *   goes and the object still holds buffered data, it is flushed first
 *   (while still findable), so a new object for the same inode can never
 *   load a record older than what this one writes.
 *
 * ORPHANS
 *   When nlink reaches 0 the same batch writes O<ino>. If no handle is open
 *   the inode's keys are deleted at once (fs_inode_reclaim_keys); otherwise
 *   at the last release. fs_start reclaims every O key left by a crash.
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t fs_itab_hash(uint64_t ino, size_t buckets)
{
	ino ^= ino >> 33;
	ino *= 0xff51afd7ed558ccdULL;
	ino ^= ino >> 33;
	return (size_t)ino & (buckets - 1);
}

/* itab_mu held. */
static struct fs_inode *fs_itab_find(struct fs *fs, uint64_t ino)
{
	struct fs_inode *ip;
	for (ip = fs->itab[fs_itab_hash(ino, fs->itab_buckets)]; ip; ip = ip->hnext)
		if (ip->ino == ino)
			return ip;
	return NULL;
}

/*
 * itab_mu held. Rehash into twice the buckets when the table holds more
 * than two inodes per bucket. All at once: the copy is a pointer walk
 * (about 10 ms per million cached inodes), amortised over the inserts that
 * doubled the table. Out of memory just leaves the chains longer.
 */
static void fs_itab_grow(struct fs *fs)
{
	size_t nb = 2 * fs->itab_buckets;
	struct fs_inode **t;

	if (fs->n_inodes <= 2 * fs->itab_buckets)
		return;
	t = calloc(nb, sizeof(*t));
	if (!t)
		return;
	for (size_t h = 0; h < fs->itab_buckets; h++) {
		struct fs_inode *ip = fs->itab[h], *next;
		for (; ip; ip = next) {
			size_t nh = fs_itab_hash(ip->ino, nb);
			next = ip->hnext;
			ip->hnext = t[nh];
			t[nh] = ip;
		}
	}
	free(fs->itab);
	fs->itab = t;
	fs->itab_buckets = nb;
}

/* itab_mu held; ip is not in the table. */
static void fs_itab_insert(struct fs *fs, struct fs_inode *ip)
{
	size_t h = fs_itab_hash(ip->ino, fs->itab_buckets);

	ip->hnext = fs->itab[h];
	fs->itab[h] = ip;
	fs->n_inodes++;
	fs_itab_grow(fs);
}

static struct fs_inode *fs_inode_alloc(uint64_t ino)
{
	struct fs_inode *ip = calloc(1, sizeof(*ip));
	if (!ip)
		return NULL;
	ip->ino = ino;
	CHECK_RETURN(pthread_mutex_init(&ip->mu, NULL));
	atomic_init(&ip->needs_flush, 0);
	atomic_init(&ip->no_xattrs, 0);
	return ip;
}

static void fs_inode_free(struct fs *fs, struct fs_inode *ip)
{
	fs_data_drop_locked(fs, ip);     /* no other reference exists */
	free(ip->link);
	CHECK_RETURN(pthread_mutex_destroy(&ip->mu));
	free(ip);
}

int fs_inode_get(struct fs *fs, uint64_t ino, struct fs_inode **out)
{
	struct fs_inode *ip, *fresh = NULL;

	*out = NULL;
	CHECK_RETURN(pthread_mutex_lock(&fs->itab_mu));
	ip = fs_itab_find(fs, ino);
	if (!ip) {
		CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
		fresh = fs_inode_alloc(ino);
		if (!fresh)
			return -ENOMEM;
		CHECK_RETURN(pthread_mutex_lock(&fs->itab_mu));
		ip = fs_itab_find(fs, ino);
		if (!ip) {
			ip = fresh;
			fresh = NULL;
			fs_itab_insert(fs, ip);
		}
	}
	ip->pins++;
	CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
	if (fresh) {
		CHECK_RETURN(pthread_mutex_destroy(&fresh->mu));
		free(fresh);
	}
	*out = ip;
	return 0;
}

int fs_inode_new(struct fs *fs, uint64_t ino, const struct fs_attr *a, const char *link,
		 size_t link_len, struct fs_inode **out)
{
	struct fs_inode *ip = fs_inode_alloc(ino);

	*out = NULL;
	if (!ip)
		return -ENOMEM;
	ip->a = *a;
	ip->loaded = 1;
	atomic_store(&ip->no_xattrs, 1);     /* numbers are never reused */
	if (link_len) {
		ip->link = malloc(link_len + 1);
		if (!ip->link) {
			fs_inode_free(fs, ip);
			return -ENOMEM;
		}
		memcpy(ip->link, link, link_len);
		ip->link[link_len] = '\0';
		ip->link_len = link_len;
	}
	ip->pins = 1;
	CHECK_RETURN(pthread_mutex_lock(&fs->itab_mu));
	assert(!fs_itab_find(fs, ino));      /* numbers are never reused */
	fs_itab_insert(fs, ip);
	CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
	*out = ip;
	return 0;
}

int fs_inode_no_xattrs(struct fs *fs, uint64_t ino)
{
	struct fs_inode *ip;
	int r = 0;

	CHECK_RETURN(pthread_mutex_lock(&fs->itab_mu));
	ip = fs_itab_find(fs, ino);
	if (ip)
		r = atomic_load(&ip->no_xattrs);
	CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
	return r;
}

/* ---- the dirty list ------------------------------------------------------ */

/* itab_mu held. */
static void fs_dirty_unlink(struct fs *fs, struct fs_inode *ip)
{
	if (!ip->on_dirty)
		return;
	if (ip->dprev)
		ip->dprev->dnext = ip->dnext;
	else
		fs->dirty = ip->dnext;
	if (ip->dnext)
		ip->dnext->dprev = ip->dprev;
	ip->dnext = ip->dprev = NULL;
	ip->on_dirty = 0;
	fs->n_dirty--;
}

void fs_inode_mark_dirty(struct fs *fs, struct fs_inode *ip)
{
	/* Set already: ip is on the list (it leaves only when found clean
	 * under itab_mu, or freed). */
	if (atomic_exchange(&ip->needs_flush, 1))
		return;
	CHECK_RETURN(pthread_mutex_lock(&fs->itab_mu));
	if (!ip->on_dirty) {
		ip->dprev = NULL;
		ip->dnext = fs->dirty;
		if (fs->dirty)
			fs->dirty->dprev = ip;
		fs->dirty = ip;
		ip->on_dirty = 1;
		fs->n_dirty++;
	}
	CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
}

/*
 * Drop `pins` pins and `lookups` lookups; at zero unlink from the table and
 * free outside the lock. Buffered data is flushed first (see LIFETIME).
 */
static void fs_inode_drop(struct fs *fs, struct fs_inode *ip, uint32_t pins, uint64_t lookups)
{
	CHECK_RETURN(pthread_mutex_lock(&fs->itab_mu));
	for (;;) {
		assert(ip->pins >= pins);
		if (ip->nlookup < lookups) {
			UTIL_ERROR(FS_LOG, "inode %" PRIu64 ": forget of %" PRIu64
				   " lookups, only %" PRIu64 " held", ip->ino, lookups, ip->nlookup);
			lookups = ip->nlookup;
		}
		ip->pins -= pins;
		ip->nlookup -= lookups;
		if (ip->pins || ip->nlookup) {
			CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
			return;
		}
		if (!atomic_load(&ip->needs_flush))
			break;
		/* Keep it findable while its buffers are written. */
		ip->pins = 1;
		pins = 1;
		lookups = 0;
		CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
		CHECK_RETURN(pthread_mutex_lock(&ip->mu));
		if (fs_data_flush_locked(fs, ip, 0) != 0) {
			/* Cannot be written (fenced, failing store): the error was
			 * logged; nobody can observe this inode any more. */
			fs_data_drop_locked(fs, ip);
			ip->attr_dirty = 0;
			atomic_store(&ip->needs_flush, 0);
		}
		CHECK_RETURN(pthread_mutex_unlock(&ip->mu));
		CHECK_RETURN(pthread_mutex_lock(&fs->itab_mu));
	}
	/* Unlink. */
	fs_dirty_unlink(fs, ip);
	struct fs_inode **pp = &fs->itab[fs_itab_hash(ip->ino, fs->itab_buckets)];
	while (*pp != ip)
		pp = &(*pp)->hnext;
	*pp = ip->hnext;
	fs->n_inodes--;
	CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
	fs_inode_free(fs, ip);
}

void fs_inode_unpin(struct fs *fs, struct fs_inode *ip)
{
	if (ip)
		fs_inode_drop(fs, ip, 1, 0);
}

void fs_inode_ref_lookup(struct fs *fs, struct fs_inode *ip, uint64_t n)
{
	CHECK_RETURN(pthread_mutex_lock(&fs->itab_mu));
	ip->nlookup += n;
	CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
}

void fs_inode_forget(struct fs *fs, uint64_t ino, uint64_t n)
{
	struct fs_inode *ip;

	if (FS_IS_CTL(ino))
		return;
	CHECK_RETURN(pthread_mutex_lock(&fs->itab_mu));
	ip = fs_itab_find(fs, ino);
	if (!ip) {
		CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
		UTIL_ERROR(FS_LOG, "forget of unknown inode %" PRIu64, ino);
		return;
	}
	if (ino == FS_ROOT_INO) {
		/* Root stays pinned by our own initial lookup. */
		if (ip->nlookup > n)
			ip->nlookup -= n;
		else
			ip->nlookup = 1;
		CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
		return;
	}
	ip->pins++;
	CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
	fs_inode_drop(fs, ip, 1, n);
}

static int fs_inode_load_locked(struct fs *fs, struct fs_inode *ip)
{
	struct fs_key k;
	void *val = NULL;
	size_t len = 0;
	char *link = NULL;
	size_t link_len = 0;
	int rc;

	fs_key_inode(&k, ip->ino);
	rc = kv_get(fs->db, NULL, k.b, k.len, &val, &len);
	if (rc == -ENOENT)
		return -ENOENT;
	if (rc) {
		UTIL_ERROR(FS_LOG, "inode %" PRIu64 ": read failed: %s", ip->ino, kv_strerror(rc));
		return rc == -ENOMEM ? rc : -EIO;
	}
	rc = fs_attr_decode(&ip->a, &link, &link_len, val, len, ip->ino);
	free(val);
	if (rc)
		return rc;
	free(ip->link);
	ip->link = link;
	ip->link_len = link_len;
	ip->loaded = 1;
	return 0;
}

int fs_inode_lock(struct fs *fs, struct fs_inode *ip)
{
	int rc;

	CHECK_RETURN(pthread_mutex_lock(&ip->mu));
	/* A read-only mount follows a live writer: never trust a cached record. */
	if (!ip->loaded || (fs->conf.readonly && !ip->gone)) {
		rc = fs_inode_load_locked(fs, ip);
		if (rc == -ENOENT && ip->loaded) {
			ip->gone = 1;
			rc = 0;
		}
		if (rc) {
			CHECK_RETURN(pthread_mutex_unlock(&ip->mu));
			return rc;
		}
	}
	return 0;
}

void fs_inode_unlock(struct fs_inode *ip)
{
	CHECK_RETURN(pthread_mutex_unlock(&ip->mu));
}

static int fs_inode_cmp(const void *a, const void *b)
{
	const struct fs_inode *x = *(struct fs_inode *const *)a, *y = *(struct fs_inode *const *)b;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Sorted, NULL-free, duplicate-free copy of v into s; returns its length. */
static int fs_inode_set_norm(struct fs_inode **s, struct fs_inode **v, int n)
{
	int m = 0;
	for (int i = 0; i < n; i++) {
		int dup = 0;
		if (!v[i])
			continue;
		for (int j = 0; j < m; j++)
			dup |= s[j] == v[i];
		if (!dup)
			s[m++] = v[i];
	}
	qsort(s, (size_t)m, sizeof(*s), fs_inode_cmp);
	return m;
}

int fs_inode_lock_set(struct fs *fs, struct fs_inode **v, int n)
{
	struct fs_inode *s[4];
	int m, rc;

	assert(n <= 4);
	m = fs_inode_set_norm(s, v, n);
	for (int i = 0; i < m; i++) {
		rc = fs_inode_lock(fs, s[i]);
		if (rc) {
			while (i-- > 0)
				fs_inode_unlock(s[i]);
			return rc;
		}
	}
	return 0;
}

void fs_inode_unlock_set(struct fs_inode **v, int n)
{
	struct fs_inode *s[4];
	int m;

	assert(n <= 4);
	m = fs_inode_set_norm(s, v, n);
	for (int i = m - 1; i >= 0; i--)
		fs_inode_unlock(s[i]);
}

int fs_inode_put(struct fs_inode *ip, struct kv_batch *b)
{
	struct fs_key k;
	void *val;
	size_t len;
	int rc;

	assert(!ip->gone);
	rc = fs_attr_encode(&ip->a, ip->link, ip->link_len, &val, &len);
	if (rc)
		return rc;
	fs_key_inode(&k, ip->ino);
	rc = kv_batch_put(b, k.b, k.len, val, len);
	free(val);
	return rc;
}

int fs_check_writable(struct fs *fs)
{
	if (fs->conf.readonly)
		return -EROFS;
	if (kv_is_readonly(fs->db)) {
		if (!atomic_exchange(&fs->rofs_logged, 1))
			UTIL_ERROR(FS_LOG, "the engine turned read-only (fenced by a newer writer "
				   "of this store, or an internal failure logged above): changes now "
				   "fail with EROFS, reads keep working");
		atomic_fetch_add(&fs->n_errors_erofs, 1);
		return -EROFS;
	}
	return 0;
}

static int fs_write_batch_ext(struct fs *fs, struct kv_batch *b, int unlogged)
{
	int rc = unlogged ? kv_write_unlogged(fs->db, b) : kv_write(fs->db, b);
	if (rc == -EROFS)
		(void)fs_check_writable(fs);
	else if (rc && rc != -ENOSPC && rc != -EDQUOT && rc != -EACCES)
		/* (a failing store's errors: the engine logs them, at a bounded rate) */
		UTIL_ERROR(FS_LOG, "engine write failed: %s", kv_strerror(rc));
	return rc;
}

int fs_write_batch(struct fs *fs, struct kv_batch *b)
{
	return fs_write_batch_ext(fs, b, 0);
}

int fs_write_batch_unlogged(struct fs *fs, struct kv_batch *b)
{
	return fs_write_batch_ext(fs, b, 1);
}

/* ---- inode numbers ------------------------------------------------------ */

static int fs_super_write(struct fs *fs, const struct fs_super *s)
{
	uint8_t v[FS_SUPER_LEN];
	struct fs_key k;
	struct kv_batch *b = NULL;
	int rc;

	fs_super_encode(v, s);
	fs_key_super(&k);
	rc = kv_batch_create(&b);
	if (rc)
		return rc;
	rc = kv_batch_put(b, k.b, k.len, v, sizeof(v));
	if (!rc)
		rc = fs_write_batch(fs, b);
	kv_batch_free(b);
	return rc;
}

int fs_ino_alloc(struct fs *fs, uint64_t *out)
{
	int rc = 0;

	CHECK_RETURN(pthread_mutex_lock(&fs->ino_mu));
	for (;;) {
		if (fs->ino_next < fs->ino_limit) {
			*out = fs->ino_next++;
			break;
		}
		if (fs->ino_reserving) {
			CHECK_RETURN(pthread_cond_wait(&fs->ino_cv, &fs->ino_mu));
			continue;
		}
		/* Reserve the next range: the superblock write is ordered before
		 * every batch that uses a number of it (the WAL is one log). */
		struct fs_super s = fs->super;
		s.ino_limit = fs->ino_limit + FS_INO_RANGE;
		if (s.ino_limit >= FS_CTL_DIR_INO) {
			rc = -ENOSPC;
			break;
		}
		fs->ino_reserving = 1;
		CHECK_RETURN(pthread_mutex_unlock(&fs->ino_mu));
		rc = fs_super_write(fs, &s);
		CHECK_RETURN(pthread_mutex_lock(&fs->ino_mu));
		fs->ino_reserving = 0;
		CHECK_RETURN(pthread_cond_broadcast(&fs->ino_cv));
		if (rc)
			break;
		fs->super = s;
		fs->ino_limit = s.ino_limit;
	}
	CHECK_RETURN(pthread_mutex_unlock(&fs->ino_mu));
	return rc;
}

/* ---- orphans ------------------------------------------------------------ */

/* Delete every key of (prefix, ino) in batches of at most 4096. */
static int fs_delete_range(struct fs *fs, char prefix, uint64_t ino, uint64_t *blocks_freed)
{
	struct fs_key lo, hi;
	struct kv_iter_user *it = NULL;
	struct kv_batch *b = NULL;
	int rc;

	fs_key_ino_start(&lo, prefix, ino);
	fs_key_ino_end(&hi, prefix, ino);
	rc = kv_batch_create(&b);
	if (rc)
		return rc;
	for (;;) {
		rc = kv_iter_create(fs->db, NULL, lo.b, lo.len, hi.b, hi.len, &it);
		if (rc)
			goto out;
		while (kv_iter_valid(it) && kv_batch_count(b) < 4096) {
			size_t kl, vl;
			const void *key = kv_iter_key(it, &kl);
			(void)kv_iter_value(it, &vl);
			if (blocks_freed)
				*blocks_freed += (vl + 511) / 512;
			rc = kv_batch_delete(b, key, kl);
			if (rc)
				goto out;
			kv_iter_next(it);
		}
		rc = kv_iter_status(it);
		kv_iter_free(it);
		it = NULL;
		if (rc)
			goto out;
		if (kv_batch_count(b) == 0)
			break;
		rc = fs_write_batch(fs, b);
		if (rc)
			goto out;
		kv_batch_clear(b);
	}
out:
	kv_iter_free(it);
	kv_batch_free(b);
	return rc;
}

/*
 * The chunk keys of a regular file of the given size. Every stored chunk
 * lies below the size (fs_data.c never stores a byte at or past it; fsck
 * checks), so deleting the key of each index below ceil(size / chunk)
 * removes them all without reading one: the iterate-and-delete of
 * fs_delete_range loads every block of the file, which on s3:// is one GET
 * per 64 KiB (an unlink of a 1 GiB file blocked for minutes). Past
 * FS_BLIND_DELETE_MAX indices (a 64 GiB file, ~30 MB of tombstones) a
 * sparse file's tombstones would cost more than reading what exists, so
 * such files are iterated.
 */
static int fs_delete_chunks_blind(struct fs *fs, uint64_t ino, uint64_t size)
{
	uint64_t end = (size + FS_CHUNK_SIZE - 1) / FS_CHUNK_SIZE;
	struct kv_batch *b = NULL;
	int rc;

	rc = kv_batch_create(&b);
	for (uint64_t first = 0; !rc && first < end; first += 4096) {
		uint64_t last = end - first > 4096 ? first + 4096 : end;
		kv_batch_clear(b);
		rc = fs_data_delete_chunks(b, ino, first, last);
		if (!rc)
			rc = fs_write_batch(fs, b);
	}
	kv_batch_free(b);
	return rc;
}

/* What reclaiming ino has to delete: *size and *is_reg from a (the table
 * object's attributes) or, when a is NULL (orphans of an earlier run), from
 * the stored record. *known = 0 when neither is available. */
static void fs_reclaim_shape(struct fs *fs, uint64_t ino, const struct fs_attr *a,
			     int *known, int *is_reg, uint64_t *size)
{
	struct fs_attr rec;
	struct fs_key k;
	void *val = NULL;
	size_t len = 0;

	*known = 0;
	if (!a) {
		fs_key_inode(&k, ino);
		if (kv_get(fs->db, NULL, k.b, k.len, &val, &len))
			return;
		int rc = fs_attr_decode(&rec, NULL, NULL, val, len, ino);
		free(val);
		if (rc)
			return;
		a = &rec;
	}
	*known = 1;
	*is_reg = S_ISREG(a->mode);
	*size = a->size;
}

int fs_inode_reclaim_keys(struct fs *fs, uint64_t ino, const struct fs_attr *a)
{
	struct kv_batch *b = NULL;
	struct fs_key k;
	uint64_t size = 0;
	int known, is_reg = 0, rc;

	fs_reclaim_shape(fs, ino, a, &known, &is_reg, &size);
	if (known && is_reg && size / FS_CHUNK_SIZE < FS_BLIND_DELETE_MAX)
		rc = fs_delete_chunks_blind(fs, ino, size);
	else if (known && !is_reg)
		rc = 0;        /* only regular files have chunks (symlinks are inline) */
	else
		rc = fs_delete_range(fs, FS_K_CHUNK, ino, NULL);
	if (!rc)
		rc = fs_delete_range(fs, FS_K_XATTR, ino, NULL);
	if (!rc)
		rc = kv_batch_create(&b);
	if (rc)
		goto out;
	fs_key_inode(&k, ino);
	rc = kv_batch_delete(b, k.b, k.len);
	fs_key_orphan(&k, ino);
	if (!rc)
		rc = kv_batch_delete(b, k.b, k.len);
	if (!rc)
		rc = fs_write_batch(fs, b);
out:
	kv_batch_free(b);
	if (rc)
		UTIL_ERROR(FS_LOG, "inode %" PRIu64 ": reclaiming the unlinked inode failed: %s "
			   "(its O key stays; the next mount retries)", ino, kv_strerror(rc));
	else
		atomic_fetch_add(&fs->n_orphans_reclaimed, 1);
	return rc;
}

int fs_inode_maybe_reclaim_locked(struct fs *fs, struct fs_inode *ip)
{
	int rc;

	if (ip->gone || ip->a.nlink > 0 || ip->nopen > 0)
		return 0;
	fs_data_drop_locked(fs, ip);
	ip->attr_dirty = 0;
	atomic_store(&ip->needs_flush, 0);
	rc = fs_inode_reclaim_keys(fs, ip->ino, &ip->a);
	if (rc == 0) {
		ip->gone = 1;
		atomic_fetch_sub(&fs->live_inodes, 1);
		if (S_ISREG(ip->a.mode))
			fs_space_shrink(fs, ip->a.size);
	}
	return rc;
}

int fs_inode_release_locked(struct fs *fs, struct fs_inode *ip)
{
	int rc = 0;

	assert(ip->nopen > 0);
	if (ip->a.nlink > 0 && !ip->gone)
		rc = fs_data_flush_locked(fs, ip, 0);
	ip->nopen--;
	if (ip->nopen == 0 && ip->a.nlink == 0)
		rc = fs_inode_maybe_reclaim_locked(fs, ip);
	return rc;
}

static int fs_reclaim_orphans(struct fs *fs)
{
	struct fs_key lo, hi;
	struct kv_iter_user *it = NULL;
	uint64_t *inos = NULL;
	size_t n = 0, cap = 0;
	int rc;

	lo.b[0] = FS_K_ORPHAN;
	lo.len = 1;
	hi.b[0] = FS_K_ORPHAN + 1;
	hi.len = 1;
	rc = kv_iter_create(fs->db, NULL, lo.b, lo.len, hi.b, hi.len, &it);
	if (rc)
		return rc;
	for (; kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl;
		const uint8_t *key = kv_iter_key(it, &kl);
		if (kl != 9)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			uint64_t *t = realloc(inos, nc * sizeof(*t));
			if (!t) {
				rc = -ENOMEM;
				goto out;
			}
			inos = t;
			cap = nc;
		}
		inos[n++] = util_get_be64(key + 1);
	}
	rc = kv_iter_status(it);
	kv_iter_free(it);
	it = NULL;
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		rc = fs_inode_reclaim_keys(fs, inos[i], NULL);
		if (rc)
			goto out;
	}
	if (n)
		UTIL_INFO(FS_LOG, "reclaimed %zu unlinked inode(s) left open by an earlier run", n);
out:
	kv_iter_free(it);
	free(inos);
	return rc;
}

/* ---- lifecycle ----------------------------------------------------------- */

void fs_attr_to_stat(const struct fs_attr *a, uint64_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blksize = FS_CHUNK_SIZE;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_atim.tv_sec = a->atime.sec;
	st->st_atim.tv_nsec = a->atime.nsec;
	st->st_mtim.tv_sec = a->mtime.sec;
	st->st_mtim.tv_nsec = a->mtime.nsec;
	st->st_ctim.tv_sec = a->ctime.sec;
	st->st_ctim.tv_nsec = a->ctime.nsec;
}

void fs_inode_stat(struct fs_inode *ip, struct stat *st)
{
	uint64_t blocks = ip->a.blocks;

	for (struct fs_chunk *c = ip->chunks; c; c = c->next) {
		uint64_t start = c->idx * FS_CHUNK_SIZE;
		uint64_t len = start >= ip->a.size ? 0 : ip->a.size - start;
		if (len > FS_CHUNK_SIZE)
			len = FS_CHUNK_SIZE;
		blocks = blocks - (c->stored_len + 511) / 512 + (len + 511) / 512;
	}
	fs_attr_to_stat(&ip->a, ip->ino, st);
	st->st_blocks = (blkcnt_t)blocks;
}

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
	fs->itab = calloc(FS_ITAB_MIN_BUCKETS, sizeof(*fs->itab));
	if (!fs->itab) {
		free(fs);
		return -ENOMEM;
	}
	fs->itab_buckets = FS_ITAB_MIN_BUCKETS;
	fs->conf = *conf;
	CHECK_RETURN(pthread_mutex_init(&fs->itab_mu, NULL));
	CHECK_RETURN(pthread_mutex_init(&fs->rename_mu, NULL));
	CHECK_RETURN(pthread_mutex_init(&fs->ino_mu, NULL));
	CHECK_RETURN(pthread_cond_init(&fs->ino_cv, NULL));
	CHECK_RETURN(pthread_mutex_init(&fs->wb_mu, NULL));
	CHECK_RETURN(pthread_cond_init(&fs->wb_cv, NULL));
	CHECK_RETURN(pthread_mutex_init(&fs->batch_mu, NULL));
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

	if (!fs->conf.readonly) {
		rc = fs_reclaim_orphans(fs);
		if (rc) {
			FS_START_FAIL(fs, "reclaiming orphans failed: %s", kv_strerror(rc));
			return rc;
		}
	}
	/* After the reclaim: what it deleted is not counted. */
	rc = fs_space_scan(fs);
	if (rc) {
		FS_START_FAIL(fs, "counting the inodes failed: %s", kv_strerror(rc));
		return rc;
	}

	/* Pin the root: one lookup we never drop. */
	rc = fs_inode_get(fs, FS_ROOT_INO, &root);
	if (rc) {
		FS_START_FAIL(fs, "out of memory");
		return rc;
	}
	rc = fs_inode_lock(fs, root);
	if (rc) {
		FS_START_FAIL(fs, "the root inode cannot be read: %s", kv_strerror(rc));
		fs_inode_unpin(fs, root);
		return rc == -ENOENT ? -EIO : rc;
	}
	fs_inode_unlock(root);
	fs_inode_ref_lookup(fs, root, 1);
	fs_inode_unpin(fs, root);

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
	for (size_t h = 0; h < fs->itab_buckets; h++) {
		struct fs_inode *ip = fs->itab[h], *next;
		for (; ip; ip = next) {
			next = ip->hnext;
			fs_inode_free(fs, ip);
		}
	}
	free(fs->itab);
	CHECK_RETURN(pthread_mutex_destroy(&fs->itab_mu));
	CHECK_RETURN(pthread_mutex_destroy(&fs->rename_mu));
	CHECK_RETURN(pthread_mutex_destroy(&fs->ino_mu));
	CHECK_RETURN(pthread_cond_destroy(&fs->ino_cv));
	CHECK_RETURN(pthread_mutex_destroy(&fs->wb_mu));
	CHECK_RETURN(pthread_cond_destroy(&fs->wb_cv));
	for (size_t i = 0; i < fs->n_batch_free; i++)
		kv_batch_free(fs->batch_free[i]);
	CHECK_RETURN(pthread_mutex_destroy(&fs->batch_mu));
	free(fs);
}

int fs_inode_collect_dirty(struct fs *fs, struct fs_inode ***out, size_t *n)
{
	struct fs_inode **v = NULL;
	size_t cnt = 0, cap;

	*out = NULL;
	*n = 0;
	CHECK_RETURN(pthread_mutex_lock(&fs->itab_mu));
	cap = fs->n_dirty;
	if (cap) {
		v = malloc(cap * sizeof(*v));
		if (!v) {
			CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
			return -ENOMEM;
		}
	}
	for (struct fs_inode *ip = fs->dirty, *next; ip; ip = next) {
		next = ip->dnext;
		if (atomic_load(&ip->needs_flush)) {
			ip->pins++;
			v[cnt++] = ip;
		} else {
			/* A writer that sets needs_flush after this takes
			 * itab_mu to put it back (fs_inode_mark_dirty). */
			fs_dirty_unlink(fs, ip);
		}
	}
	CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
	*out = v;
	*n = cnt;
	return 0;
}
