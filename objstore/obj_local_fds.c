/*
 * obj_local_fds.c - the file:// backend's cache of open object files.
 *
 * WHY
 *   The engine reads SST blocks with ranged GETs, one per block-cache
 *   miss. Opening and closing the file for each (a path walk, a struct
 *   file, then its release) would cost as much as the read itself.
 *   LevelDB keeps its tables open; this
 *   lets file:// do the same without changing the objstore contract.
 *
 * VALIDITY
 *   A cached descriptor stays right while its name still leads to the
 *   same inode. The backend never renames an object away and never links
 *   one anywhere else, so the name->inode link changes only when the
 *   object is deleted (unlink: the inode loses a link) or replaced
 *   (rename over it: the old inode loses a link). Either way the inode's
 *   st_nlink changes. So an entry records st_nlink at open, and a reader
 *   that finds a different count (checked with fstat on the descriptor,
 *   which the read path needs anyway for the size) drops the entry and
 *   opens the name again. A stale temporary link left by a crash only
 *   ever goes away, which also just causes a reopen. The check runs
 *   before every read; a change that lands between the check and the
 *   read orders that read before the change, as if it had come first.
 *   This backend's own put and delete also forget the name at once.
 *
 * CONCURRENCY
 *   One mutex over a small array (OBJ_LOCAL_FDS entries, compared by hash
 *   before name). An entry handed out is pinned (refs > 0): eviction and
 *   forgetting only unhook it, and the last release closes the fd, so a
 *   descriptor is never closed (and its number reused) under a reader.
 */
#include "objstore/objstore_int.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One open object file. Freed, and its fd closed, when refs reaches 0. */
struct obj_fd {
	char *name;
	uint64_t hash;
	int fd;
	nlink_t nlink;                    /* st_nlink when opened */
	unsigned refs;                    /* handed out, plus one while cached; under mu */
	uint64_t used;                    /* LRU stamp; under mu */
};

struct obj_fds {
	pthread_mutex_t mu;
	uint64_t clock;
	struct obj_fd *slot[OBJ_LOCAL_FDS];   /* NULL: free */
};

static uint64_t obj_fds_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;     /* FNV-1a */
	while (*s)
		h = (h ^ (uint8_t)*s++) * 0x100000001b3ull;
	return h;
}

struct obj_fds *obj_fds_create(void)
{
	struct obj_fds *c = calloc(1, sizeof(*c));
	if (c && pthread_mutex_init(&c->mu, NULL)) {
		free(c);
		return NULL;
	}
	return c;
}

static void obj_fd_destroy(struct obj_fd *f)
{
	close(f->fd);
	free(f->name);
	free(f);
}

/* Drop one reference under mu; returns f if the caller must destroy it
 * (after unlocking: close() can block on some filesystems). */
static struct obj_fd *obj_fd_unref(struct obj_fd *f)
{
	return --f->refs == 0 ? f : NULL;
}

void obj_fds_free(struct obj_fds *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < OBJ_LOCAL_FDS; i++)
		if (c->slot[i])
			obj_fd_destroy(c->slot[i]);     /* no reader can remain */
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static size_t obj_fds_find(struct obj_fds *c, const char *name, uint64_t h)
{
	for (size_t i = 0; i < OBJ_LOCAL_FDS; i++) {
		struct obj_fd *f = c->slot[i];
		if (f && f->hash == h && !strcmp(f->name, name))
			return i;
	}
	return OBJ_LOCAL_FDS;
}

struct obj_fd *obj_fds_get(struct obj_fds *c, const char *name)
{
	uint64_t h = obj_fds_hash(name);
	struct obj_fd *f = NULL;
	size_t i;

	CHECK_RETURN(pthread_mutex_lock(&c->mu));
	if ((i = obj_fds_find(c, name, h)) < OBJ_LOCAL_FDS) {
		f = c->slot[i];
		f->refs++;
		f->used = ++c->clock;
	}
	CHECK_RETURN(pthread_mutex_unlock(&c->mu));
	return f;
}

int obj_fd_fd(const struct obj_fd *f)
{
	return f->fd;
}

int obj_fd_valid(const struct obj_fd *f, nlink_t nlink)
{
	return f->nlink == nlink;
}

struct obj_fd *obj_fds_add(struct obj_fds *c, const char *name, int fd, nlink_t nlink)
{
	struct obj_fd *f = malloc(sizeof(*f)), *old = NULL, *gone = NULL;
	size_t i, victim = OBJ_LOCAL_FDS;

	if (!f || !(f->name = strdup(name))) {
		free(f);
		return NULL;                    /* uncached: the caller closes fd */
	}
	f->hash = obj_fds_hash(name);
	f->fd = fd;
	f->nlink = nlink;
	f->refs = 2;                            /* the caller's and the cache's */
	CHECK_RETURN(pthread_mutex_lock(&c->mu));
	f->used = ++c->clock;
	if ((i = obj_fds_find(c, name, f->hash)) < OBJ_LOCAL_FDS) {
		victim = i;                     /* another reader opened it too */
	} else {
		for (i = 0; i < OBJ_LOCAL_FDS; i++) {
			if (!c->slot[i]) {
				victim = i;
				break;
			}
			if (victim == OBJ_LOCAL_FDS || c->slot[i]->used < c->slot[victim]->used)
				victim = i;
		}
	}
	old = c->slot[victim];
	c->slot[victim] = f;
	if (old)
		gone = obj_fd_unref(old);
	CHECK_RETURN(pthread_mutex_unlock(&c->mu));
	if (gone)
		obj_fd_destroy(gone);
	return f;
}

void obj_fds_release(struct obj_fds *c, struct obj_fd *f)
{
	struct obj_fd *gone;

	CHECK_RETURN(pthread_mutex_lock(&c->mu));
	gone = obj_fd_unref(f);
	CHECK_RETURN(pthread_mutex_unlock(&c->mu));
	if (gone)
		obj_fd_destroy(gone);
}

void obj_fds_forget(struct obj_fds *c, const char *name, const struct obj_fd *only)
{
	uint64_t h = obj_fds_hash(name);
	struct obj_fd *gone = NULL;
	size_t i;

	CHECK_RETURN(pthread_mutex_lock(&c->mu));
	if ((i = obj_fds_find(c, name, h)) < OBJ_LOCAL_FDS && (!only || c->slot[i] == only)) {
		gone = obj_fd_unref(c->slot[i]);
		c->slot[i] = NULL;
	}
	CHECK_RETURN(pthread_mutex_unlock(&c->mu));
	if (gone)
		obj_fd_destroy(gone);
}
