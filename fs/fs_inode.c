/*
 * fs_inode.c - the in-memory inode table: lookup counts, inode locks, the
 * dirty list, the write buffer of one inode (its chunk images and how they
 * reach the engine), engine writes, and inode-number allocation. It calls
 * no other fs/ file but fs_key.c: file data (fs_data.c), orphans
 * (fs_orphan.c) and the lifecycle (fs_mount.c) are built on it.
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
 * THE CAP (inode_cache=, FS_DFLT_INODE_CACHE)
 *   The kernel keeps a lookup on every inode it caches, and after ls -l or
 *   a create of 400,000 files that is 400,000 objects of about 340 bytes.
 *   So past conf.inode_cache objects, the oldest idle ones (no pins, on
 *   fs->idle) that are also clean (no buffered data, no open handle, no
 *   pending write-back error, loaded, not gone) are freed, and only their
 *   lookup count is kept, as a ghost (struct fs_ghost, about 40 bytes
 *   with its bucket). The next fs_inode_get of that number makes a fresh
 *   object, takes the count back and loads the record: the object was
 *   clean, so the engine's record is the current one. An object that is
 *   not clean when its turn comes leaves the idle list; it comes back at
 *   its next unpin (release, the flusher's pass). Ghosts go with the
 *   kernel's forgets, so they are bounded by what the kernel caches.
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

/* ---- THE CAP: the idle list and the ghosts (itab_mu held) ------------------ */

static void fs_idle_unlink(struct fs *fs, struct fs_inode *ip)
{
	if (!ip->on_idle)
		return;
	if (ip->iprev)
		ip->iprev->inext = ip->inext;
	else
		fs->idle = ip->inext;
	if (ip->inext)
		ip->inext->iprev = ip->iprev;
	else
		fs->idle_tail = ip->iprev;
	ip->inext = ip->iprev = NULL;
	ip->on_idle = 0;
}

static void fs_idle_append(struct fs *fs, struct fs_inode *ip)
{
	if (ip->on_idle || ip->ino == FS_ROOT_INO)
		return;
	ip->iprev = fs->idle_tail;
	ip->inext = NULL;
	if (fs->idle_tail)
		fs->idle_tail->inext = ip;
	else
		fs->idle = ip;
	fs->idle_tail = ip;
	ip->on_idle = 1;
}

/* A new reference: an object with pins is never idle. */
static void fs_itab_pin(struct fs *fs, struct fs_inode *ip)
{
	fs_idle_unlink(fs, ip);
	ip->pins++;
}

/* Double the ghost buckets past two ghosts per bucket; out of memory just
 * leaves the chains longer. */
static void fs_ghost_grow(struct fs *fs)
{
	size_t nb = fs->ghost_buckets ? 2 * fs->ghost_buckets : FS_ITAB_MIN_BUCKETS;
	struct fs_ghost **t;

	if (fs->ghost_buckets && fs->n_ghosts <= 2 * fs->ghost_buckets)
		return;
	t = calloc(nb, sizeof(*t));
	if (!t)
		return;
	for (size_t h = 0; h < fs->ghost_buckets; h++) {
		struct fs_ghost *g = fs->ghosts[h], *next;
		for (; g; g = next) {
			size_t nh = fs_itab_hash(g->ino, nb);
			next = g->next;
			g->next = t[nh];
			t[nh] = g;
		}
	}
	free(fs->ghosts);
	fs->ghosts = t;
	fs->ghost_buckets = nb;
}

/* The slot that holds (or would hold) ino's ghost; NULL without buckets. */
static struct fs_ghost **fs_ghost_slot(struct fs *fs, uint64_t ino)
{
	struct fs_ghost **gp;

	if (!fs->ghost_buckets)
		return NULL;
	gp = &fs->ghosts[fs_itab_hash(ino, fs->ghost_buckets)];
	while (*gp && (*gp)->ino != ino)
		gp = &(*gp)->next;
	return gp;
}

/* Remove ino's ghost; returns its lookup count (0: none). */
static uint64_t fs_ghost_take(struct fs *fs, uint64_t ino)
{
	struct fs_ghost **gp = fs_ghost_slot(fs, ino), *g;
	uint64_t n;

	if (!gp || !*gp)
		return 0;
	g = *gp;
	*gp = g->next;
	n = g->nlookup;
	free(g);
	fs->n_ghosts--;
	return n;
}

/* Keep ino's lookup count without its object. Returns 0 or -ENOMEM. */
static int fs_ghost_add(struct fs *fs, uint64_t ino, uint64_t nlookup)
{
	struct fs_ghost *g = malloc(sizeof(*g));
	size_t h;

	if (!g)
		return -ENOMEM;
	fs_ghost_grow(fs);
	if (!fs->ghost_buckets) {
		free(g);
		return -ENOMEM;
	}
	h = fs_itab_hash(ino, fs->ghost_buckets);
	g->ino = ino;
	g->nlookup = nlookup;
	g->next = fs->ghosts[h];
	fs->ghosts[h] = g;
	fs->n_ghosts++;
	return 0;
}

/* A forget of an object freed past the cap. Returns 0 when ino has no
 * ghost. */
static int fs_ghost_forget(struct fs *fs, uint64_t ino, uint64_t n)
{
	struct fs_ghost **gp = fs_ghost_slot(fs, ino), *g;

	if (!gp || !*gp)
		return 0;
	g = *gp;
	if (g->nlookup < n) {
		UTIL_ERROR(FS_LOG, "inode %" PRIu64 ": forget of %" PRIu64 " lookups, only %"
			   PRIu64 " held", ino, n, g->nlookup);
		n = g->nlookup;
	}
	g->nlookup -= n;
	if (g->nlookup == 0) {
		*gp = g->next;
		free(g);
		fs->n_ghosts--;
	}
	return 1;
}

/* Nothing but its lookup count would be lost by freeing ip (no pins).
 * The fields under ip->mu may be read here: nobody holds mu without a
 * pin, and pins are taken under itab_mu. */
static int fs_itab_evictable(const struct fs_inode *ip)
{
	return ip->pins == 0 && ip->loaded && !ip->gone && ip->nopen == 0 && ip->n_chunks == 0 &&
	       !ip->attr_dirty && !ip->wb_err && !atomic_load(&ip->needs_flush) && !ip->on_dirty;
}

static void fs_itab_remove(struct fs *fs, struct fs_inode *ip);

/* Past the cap, free the oldest idle clean objects, keeping their lookup
 * counts as ghosts. The freed objects are chained on *freed (hnext) for
 * the caller to free after dropping itab_mu. */
static void fs_itab_evict(struct fs *fs, struct fs_inode **freed)
{
	while (fs->conf.inode_cache && fs->n_inodes > fs->conf.inode_cache && fs->idle) {
		struct fs_inode *ip = fs->idle;

		fs_idle_unlink(fs, ip);
		if (!fs_itab_evictable(ip))
			continue;              /* back at its next unpin */
		if (fs_ghost_add(fs, ip->ino, ip->nlookup) != 0)
			break;                 /* keep it: over the cap, not wrong */
		fs_itab_remove(fs, ip);
		fs->n_evicted++;
		ip->hnext = *freed;
		*freed = ip;
	}
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
	fs_inode_drop_chunks_locked(fs, ip);     /* no other reference exists */
	free(ip->link);
	CHECK_RETURN(pthread_mutex_destroy(&ip->mu));
	free(ip);
}

int fs_inode_table_init(struct fs *fs)
{
	fs->itab = calloc(FS_ITAB_MIN_BUCKETS, sizeof(*fs->itab));
	if (!fs->itab)
		return -ENOMEM;
	fs->itab_buckets = FS_ITAB_MIN_BUCKETS;
	return 0;
}

void fs_inode_table_free(struct fs *fs)
{
	for (size_t h = 0; h < fs->itab_buckets; h++) {
		struct fs_inode *ip = fs->itab[h], *next;
		for (; ip; ip = next) {
			next = ip->hnext;
			fs_inode_free(fs, ip);
		}
	}
	free(fs->itab);
	fs->itab = NULL;
	fs->itab_buckets = 0;
	for (size_t h = 0; h < fs->ghost_buckets; h++) {
		struct fs_ghost *g = fs->ghosts[h], *next;
		for (; g; g = next) {
			next = g->next;
			free(g);
		}
	}
	free(fs->ghosts);
	fs->ghosts = NULL;
	fs->ghost_buckets = 0;
	fs->n_ghosts = 0;
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
			ip->nlookup = fs_ghost_take(fs, ino);
			fs_itab_insert(fs, ip);
		}
	}
	fs_itab_pin(fs, ip);
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
	atomic_store(&ip->no_xattrs, (a->hints & FS_HINT_NO_XATTRS) != 0);
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
			fs_itab_pin(fs, ip);
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

/*
 * Drop `pins` pins and `lookups` lookups; at zero unlink from the table and
 * free outside the lock. Buffered data is flushed first (see LIFETIME).
 */
static void fs_inode_drop(struct fs *fs, struct fs_inode *ip, uint32_t pins, uint64_t lookups)
{
	struct fs_inode *freed = NULL, *next;

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
			if (ip->pins == 0) {
				fs_idle_append(fs, ip);
				fs_itab_evict(fs, &freed);
			}
			CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
			for (; freed; freed = next) {
				next = freed->hnext;
				fs_inode_free(fs, freed);
			}
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
		if (fs_inode_flush_locked(fs, ip, 0) != 0) {
			/* Cannot be written (fenced, failing store): the error was
			 * logged; nobody can observe this inode any more. */
			fs_inode_drop_chunks_locked(fs, ip);
			ip->attr_dirty = 0;
			atomic_store(&ip->needs_flush, 0);
		}
		CHECK_RETURN(pthread_mutex_unlock(&ip->mu));
		CHECK_RETURN(pthread_mutex_lock(&fs->itab_mu));
	}
	fs_itab_remove(fs, ip);
	CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
	fs_inode_free(fs, ip);
}

/* itab_mu held: unlink ip from the table and its lists. */
static void fs_itab_remove(struct fs *fs, struct fs_inode *ip)
{
	struct fs_inode **pp = &fs->itab[fs_itab_hash(ip->ino, fs->itab_buckets)];

	fs_dirty_unlink(fs, ip);
	fs_idle_unlink(fs, ip);
	while (*pp != ip)
		pp = &(*pp)->hnext;
	*pp = ip->hnext;
	fs->n_inodes--;
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
		int known = fs_ghost_forget(fs, ino, n);
		CHECK_RETURN(pthread_mutex_unlock(&fs->itab_mu));
		if (!known)
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
	fs_itab_pin(fs, ip);
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
	/* Only ever set from the record: setxattr clears both before its batch. */
	atomic_store(&ip->no_xattrs, (ip->a.hints & FS_HINT_NO_XATTRS) != 0);
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

int fs_inode_get_locked(struct fs *fs, uint64_t ino, struct fs_inode **out)
{
	struct fs_inode *ip;
	int rc;

	*out = NULL;
	rc = fs_inode_get(fs, ino, &ip);
	if (rc)
		return rc;
	rc = fs_inode_lock(fs, ip);
	if (rc) {
		fs_inode_unpin(fs, ip);
		return rc;
	}
	*out = ip;
	return 0;
}

void fs_inode_unlock_unpin(struct fs *fs, struct fs_inode *ip)
{
	if (!ip)
		return;
	fs_inode_unlock(ip);
	fs_inode_unpin(fs, ip);
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

/* ---- the write buffer of one inode ---------------------------------------- */

void fs_wb_account(struct fs *fs, long delta)
{
	CHECK_RETURN(pthread_mutex_lock(&fs->wb_mu));
	if (delta < 0)
		assert(fs->wb_bytes >= (size_t)-delta);
	fs->wb_bytes = (size_t)((long)fs->wb_bytes + delta);
	/* Only for writers waiting for room: the flusher sleeps on wb_cv too,
	 * and woke (and scanned every dirty inode) at every close of a
	 * written file, 1.2 times per file in write4k. */
	if (delta < 0 && fs->wb_waiters)
		CHECK_RETURN(pthread_cond_broadcast(&fs->wb_cv));
	CHECK_RETURN(pthread_mutex_unlock(&fs->wb_mu));
}

void fs_note_small_fsync(struct fs *fs)
{
	atomic_store(&fs->small_fsync_ns, util_now_ns());
}

int fs_bulk_quiet(struct fs *fs)
{
	uint64_t t = atomic_load(&fs->small_fsync_ns);
	return !t || util_now_ns() - t >= (uint64_t)fs->conf.wal_bypass_quiet_ms * 1000000ull;
}

void fs_inode_drop_chunks_locked(struct fs *fs, struct fs_inode *ip)
{
	struct fs_chunk *c = ip->chunks, *next;
	size_t n = 0;

	for (; c; c = next) {
		next = c->next;
		free(c);
		n++;
	}
	ip->chunks = NULL;
	ip->n_chunks = 0;
	if (n)
		fs_wb_account(fs, -(long)(n * FS_CHUNK_SIZE));
}

/*
 * BATCH REUSE
 *   A batch of buffered chunks is 256 KiB-1 MiB for the kernel's writeback
 *   WRITEs. Made fresh each time, it would grow by realloc, and at that
 *   size glibc maps new memory (cli/shalefs.c sets the mmap threshold), so
 *   every 4 KiB of it would cost a page fault and a clear, the biggest
 *   source of the daemon's page faults in a bulk write. So batches of up
 *   to FS_BATCH_KEEP_BYTES are kept for the next flush.
 */
static int fs_inode_batch_get(struct fs *fs, struct kv_batch **out)
{
	*out = NULL;
	CHECK_RETURN(pthread_mutex_lock(&fs->batch_mu));
	if (fs->n_batch_free)
		*out = fs->batch_free[--fs->n_batch_free];
	CHECK_RETURN(pthread_mutex_unlock(&fs->batch_mu));
	return *out ? 0 : kv_batch_create(out);
}

static void fs_inode_batch_put(struct fs *fs, struct kv_batch *b)
{
	if (!b)
		return;
	if (kv_batch_bytes(b) <= FS_BATCH_KEEP_BYTES) {
		kv_batch_clear(b);
		CHECK_RETURN(pthread_mutex_lock(&fs->batch_mu));
		if (fs->n_batch_free < FS_BATCH_KEEP) {
			fs->batch_free[fs->n_batch_free++] = b;
			b = NULL;
		}
		CHECK_RETURN(pthread_mutex_unlock(&fs->batch_mu));
	}
	kv_batch_free(b);
}

int fs_inode_flush_locked(struct fs *fs, struct fs_inode *ip, int only_complete)
{
	struct kv_batch *b = NULL;
	struct fs_key k;
	uint64_t blocks;
	size_t n_flushed = 0;
	int rc;

	if (ip->gone || (!ip->chunks && !ip->attr_dirty)) {
		if (!ip->chunks && !ip->attr_dirty)
			atomic_store(&ip->needs_flush, 0);
		return 0;
	}
	rc = fs_inode_batch_get(fs, &b);
	if (rc)
		return rc;
	blocks = ip->a.blocks;
	for (struct fs_chunk *c = ip->chunks; c; c = c->next) {
		uint64_t start = c->idx * FS_CHUNK_SIZE;
		uint64_t len;

		if (only_complete && !c->complete)
			continue;
		len = start >= ip->a.size ? 0 : ip->a.size - start;
		if (len > FS_CHUNK_SIZE)
			len = FS_CHUNK_SIZE;
		fs_key_chunk(&k, ip->ino, c->idx);
		if (len)
			rc = kv_batch_put(b, k.b, k.len, c->data, (size_t)len);
		else if (c->stored_len)
			rc = kv_batch_delete(b, k.b, k.len);
		if (rc)
			goto out;
		blocks = blocks - fs_blocks_of(c->stored_len) + fs_blocks_of(len);
		n_flushed++;
	}
	{
		uint64_t saved = ip->a.blocks;
		ip->a.blocks = blocks;
		rc = fs_inode_put(ip, b);
		ip->a.blocks = saved;
		if (rc)
			goto out;
	}
	/* Bulk data goes to the engine unlogged: it reaches the store once, in
	 * the memtable's SST (kv_write_unlogged; fsync and the flush interval
	 * still cover it). Bulk = this batch carries at least FS_BULK_CHUNKS
	 * whole chunks (one big WRITE; the kernel's writeback sends 1 MiB
	 * ones, several at once and out of order, so "sequential" cannot be
	 * told from offsets) of a file written past wal_bypass_bytes since
	 * its last fsync. So a slow appender, whose every batch would hold
	 * the WAL back until a memtable flush, and a database's write+fsync
	 * cycles, where an fsync costs one small WAL PUT instead of an SST,
	 * stay on the WAL; and while small fsyncs come, bulk data does too
	 * (wal_bypass_quiet_ms, fs_bulk_quiet). */
	if (only_complete && fs->conf.wal_bypass_bytes && n_flushed >= FS_BULK_CHUNKS &&
	    ip->since_fsync >= fs->conf.wal_bypass_bytes && fs_bulk_quiet(fs))
		rc = fs_write_batch_unlogged(fs, b);
	else
		rc = fs_write_batch(fs, b);
	if (rc) {
		if (rc == -EROFS) {
			/* It can never be written: drop it, fsync reports it. */
			fs_inode_drop_chunks_locked(fs, ip);
			ip->attr_dirty = 0;
			atomic_store(&ip->needs_flush, 0);
		}
		goto out;
	}
	ip->a.blocks = blocks;
	ip->attr_dirty = 0;
	/* Free what was written. */
	{
		struct fs_chunk **pp = &ip->chunks;
		size_t freed = 0;
		while (*pp) {
			struct fs_chunk *c = *pp;
			if (only_complete && !c->complete) {
				pp = &c->next;
				continue;
			}
			*pp = c->next;
			free(c);
			freed++;
		}
		ip->n_chunks -= freed;
		if (freed)
			fs_wb_account(fs, -(long)(freed * FS_CHUNK_SIZE));
	}
	if (!ip->chunks)
		atomic_store(&ip->needs_flush, 0);
	atomic_fetch_add(&fs->n_flush_batches, 1);
	atomic_fetch_add(&fs->n_flush_chunks, n_flushed);
out:
	fs_inode_batch_put(fs, b);
	if (rc == -ENOSPC || rc == -EDQUOT || rc == -EACCES || rc == -EIO) {
		/* The store fails: the engine logs it (at a bounded rate); the
		 * data stays buffered for the next try. */
		ip->wb_err = rc;
		if (atomic_exchange(&fs->wb_store_err, rc) == 0)
			UTIL_ERROR(FS_LOG, "inode %" PRIu64 ": buffered data cannot reach the store "
				   "(%s); it stays buffered and writers get the error once the "
				   "buffer is full", ip->ino, kv_strerror(rc));
	} else if (rc) {
		ip->wb_err = rc;
		UTIL_ERROR(FS_LOG, "inode %" PRIu64 ": writing buffered data failed: %s", ip->ino,
			   kv_strerror(rc));
	} else if (n_flushed && atomic_exchange(&fs->wb_store_err, 0) != 0) {
		UTIL_WARN(FS_LOG, "buffered data reaches the store again");
		CHECK_RETURN(pthread_mutex_lock(&fs->wb_mu));
		CHECK_RETURN(pthread_cond_broadcast(&fs->wb_cv));
		CHECK_RETURN(pthread_mutex_unlock(&fs->wb_mu));
	}
	return rc;
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
/* ---- attributes ----------------------------------------------------------- */

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
