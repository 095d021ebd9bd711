/*
 * obj_dcache_index.c - the disk cache's in-memory index: which chunks of
 * which objects have an entry file, the LRU order they are evicted in,
 * and the bytes they are charged against the cap. Rebuilt at open by
 * scanning the store's cache directory; the files are the truth, the
 * index only a map of them (a file it lists may have vanished or rotted:
 * the read's verification catches that and the caller drops the entry).
 *
 * STATES OF A CHUNK
 *   absent   no entry: a reader claims it (acquire/claim) and fetches
 *   CLAIMED  one caller is fetching or writing it; others wait in
 *            acquire (so concurrent misses of one chunk fetch it once)
 *            or skip it in claim; ends with done()
 *   READY    its file is written; on the LRU list, charged to the cap
 *   done(len >= 0) turns CLAIMED into READY, done(-1) into absent. A
 *   CLAIMED entry of a name dropped meanwhile (the object was deleted)
 *   is marked `dropped` and ends absent, its file removed.
 *
 * INVARIANTS (obj_dcache_index_check under DEBUG)
 *   bytes = the sum of the charges of READY entries <= cap after every
 *   call that returns; an entry is on the LRU list iff READY; a name is
 *   in the table iff it has an entry (live > 0).
 *
 * MEMORY
 *   One struct per entry and per name, plus a pointer per chunk up to the
 *   highest cached chunk of a name: entries are charged at least 4 KiB
 *   each, so there are at most cap / 4 KiB of them. Claims are held only
 *   by callers inside a get or put, so they are bounded by the threads.
 *
 * THREADING
 *   One mutex, x->mu, protects everything below it. Entry files are
 *   removed under it (unlink, a local metadata call) so that a removal
 *   cannot hit a file another caller has just renamed into place for the
 *   same chunk; reads and writes of entry files happen outside it.
 */
#include "objstore/objstore_int.h"
#include "util/util.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum dci_state { DCI_CLAIMED, DCI_READY };

struct dci_name;
struct dci_ent {
	struct dci_ent *prev, *next;      /* LRU (READY only); next = older */
	struct dci_name *nm;              /* owner */
	uint32_t k;                       /* chunk index */
	uint32_t len;                     /* payload bytes (READY) */
	uint64_t charge;                  /* bytes against the cap (READY) */
	enum dci_state state;
	int dropped;                      /* CLAIMED: the name was dropped */
};

struct dci_name {
	struct dci_name *next;            /* hash chain */
	uint64_t h;                       /* obj_dcache_hash(name) */
	char *name;
	struct dci_ent **ch;              /* indexed by chunk; NULL = absent */
	uint32_t nch;                     /* size of ch */
	uint32_t live;                    /* non-NULL in ch */
};

struct obj_dcache_index {
	pthread_mutex_t mu;
	pthread_cond_t cv;                /* a claim ended */
	char *dir;                        /* the store's cache directory */
	uint32_t chunk;
	/* protected by mu: */
	uint64_t cap;
	uint64_t bytes;
	uint64_t entries;
	uint64_t evictions;
	struct dci_name **tab;            /* ntab (a power of two) chains */
	size_t ntab;
	struct dci_ent lru;               /* sentinel: lru.next newest, lru.prev oldest */
};

#ifdef DEBUG
static void obj_dcache_index_check(struct obj_dcache_index *x)
{
	uint64_t bytes = 0, n = 0;
	for (struct dci_ent *e = x->lru.next; e != &x->lru; e = e->next) {
		assert(e->state == DCI_READY);
		bytes += e->charge;
		n++;
	}
	assert(bytes == x->bytes && n == x->entries && x->bytes <= x->cap);
}
#else
#define obj_dcache_index_check(x) ((void)0)
#endif

int obj_dcache_index_create(struct obj_dcache_index **out, const char *dir, uint32_t chunk,
			    uint64_t cap)
{
	struct obj_dcache_index *x = calloc(1, sizeof(*x));
	size_t n = 1024;

	*out = NULL;
	if (!x)
		return -ENOMEM;
	/* About one chain per 64 KiB of cap: short chains at any cap. */
	while (n < (1u << 20) && (uint64_t)n * 65536 < cap)
		n <<= 1;
	x->dir = strdup(dir);
	x->tab = calloc(n, sizeof(*x->tab));
	if (!x->dir || !x->tab) {
		free(x->dir);
		free(x->tab);
		free(x);
		return -ENOMEM;
	}
	x->ntab = n;
	x->chunk = chunk;
	x->cap = cap;
	x->lru.next = x->lru.prev = &x->lru;
	CHECK_RETURN(pthread_mutex_init(&x->mu, NULL));
	CHECK_RETURN(pthread_cond_init(&x->cv, NULL));
	*out = x;
	return 0;
}

void obj_dcache_index_free(struct obj_dcache_index *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->ntab; i++) {
		struct dci_name *nm = x->tab[i], *next;
		for (; nm; nm = next) {
			next = nm->next;
			for (uint32_t k = 0; k < nm->nch; k++)
				free(nm->ch[k]);
			free(nm->ch);
			free(nm->name);
			free(nm);
		}
	}
	CHECK_RETURN(pthread_cond_destroy(&x->cv));
	CHECK_RETURN(pthread_mutex_destroy(&x->mu));
	free(x->tab);
	free(x->dir);
	free(x);
}

/* The name's node, or NULL. Called with mu held. */
static struct dci_name *dci_find(struct obj_dcache_index *x, const char *name, uint64_t h)
{
	struct dci_name *nm = x->tab[h & (x->ntab - 1)];

	while (nm && !(nm->h == h && !strcmp(nm->name, name)))
		nm = nm->next;
	return nm;
}

/* The entry slot of chunk k of name, growing the name's array and
 * creating the name as needed; NULL on no memory. Called with mu held. */
static struct dci_ent **dci_slot(struct obj_dcache_index *x, const char *name, uint64_t h,
				 uint32_t k)
{
	struct dci_name *nm = dci_find(x, name, h);

	if (k >= (1u << 30))
		return NULL;      /* the wrapper never caches so far into an object */
	if (!nm) {
		nm = calloc(1, sizeof(*nm));
		if (!nm)
			return NULL;
		nm->name = strdup(name);
		if (!nm->name) {
			free(nm);
			return NULL;
		}
		nm->h = h;
		nm->next = x->tab[h & (x->ntab - 1)];
		x->tab[h & (x->ntab - 1)] = nm;
	}
	if (k >= nm->nch) {
		uint32_t n = nm->nch ? nm->nch : 4;
		struct dci_ent **ch;
		while (n <= k)
			n *= 2;
		ch = realloc(nm->ch, (size_t)n * sizeof(*ch));
		if (!ch)
			return NULL;  /* a name without entries is freed by its next removal */
		memset(ch + nm->nch, 0, (size_t)(n - nm->nch) * sizeof(*ch));
		nm->ch = ch;
		nm->nch = n;
	}
	return &nm->ch[k];
}

static void dci_unhook_name(struct obj_dcache_index *x, struct dci_name *nm)
{
	struct dci_name **pp = &x->tab[nm->h & (x->ntab - 1)];

	while (*pp != nm)
		pp = &(*pp)->next;
	*pp = nm->next;
	free(nm->ch);
	free(nm->name);
	free(nm);
}

static void dci_lru_unlink(struct dci_ent *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
}

static void dci_lru_push(struct obj_dcache_index *x, struct dci_ent *e)
{
	e->next = x->lru.next;
	e->prev = &x->lru;
	x->lru.next->prev = e;
	x->lru.next = e;
}

/* Remove e from the index (and its file when unlink_file). Called with
 * mu held. */
static void dci_remove(struct obj_dcache_index *x, struct dci_ent *e, int unlink_file)
{
	struct dci_name *nm = e->nm;

	if (e->state == DCI_READY) {
		dci_lru_unlink(e);
		x->bytes -= e->charge;
		x->entries--;
	}
	if (unlink_file)
		obj_dcache_file_unlink(x->dir, nm->h, e->k);
	nm->ch[e->k] = NULL;
	nm->live--;
	free(e);
	if (nm->live == 0)
		dci_unhook_name(x, nm);
}

/* Evict the oldest READY entries until bytes <= cap. Called with mu held. */
static void dci_evict(struct obj_dcache_index *x)
{
	while (x->bytes > x->cap && x->lru.prev != &x->lru) {
		dci_remove(x, x->lru.prev, 1);
		x->evictions++;
	}
}

/* Make e (CLAIMED, or new) READY with len payload bytes, newest. Called
 * with mu held. Returns 0, or -EFBIG when it alone exceeds the cap (e is
 * then removed with its file). */
static int dci_make_ready(struct obj_dcache_index *x, struct dci_ent *e, uint32_t len)
{
	uint64_t charge = obj_dcache_file_charge(strlen(e->nm->name), len);

	if (charge > x->cap) {
		dci_remove(x, e, 1);
		return -EFBIG;
	}
	e->state = DCI_READY;
	e->len = len;
	e->charge = charge;
	x->bytes += charge;
	x->entries++;
	dci_lru_push(x, e);
	dci_evict(x);
	return 0;
}

/* A new CLAIMED entry in *slot. Called with mu held. */
static struct dci_ent *dci_new(struct dci_ent **slot, struct dci_name *nm, uint32_t k)
{
	struct dci_ent *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->nm = nm;
	e->k = k;
	e->state = DCI_CLAIMED;
	*slot = e;
	nm->live++;
	return e;
}

/* Claim chunk k of name (absent). Returns 0 or -ENOMEM. Called with mu held. */
static int dci_claim_locked(struct obj_dcache_index *x, const char *name, uint64_t h,
			    uint32_t k)
{
	struct dci_ent **slot = dci_slot(x, name, h, k);
	struct dci_name *nm = dci_find(x, name, h);

	if (!slot || !dci_new(slot, nm, k)) {
		if (nm && nm->live == 0)
			dci_unhook_name(x, nm);
		return -ENOMEM;
	}
	return 0;
}

/* Chunk k's entry, or NULL. Called with mu held. */
static struct dci_ent *dci_get(struct obj_dcache_index *x, const char *name, uint64_t h,
			       uint32_t k)
{
	struct dci_name *nm = dci_find(x, name, h);

	return nm && k < nm->nch ? nm->ch[k] : NULL;
}

/* obj_dcache_index_acquire, and with wait 0 obj_dcache_index_try. */
static int dci_acquire(struct obj_dcache_index *x, const char *name, uint32_t k, uint32_t *len,
		       int wait)
{
	uint64_t h = obj_dcache_hash(name);
	struct dci_ent *e;
	int rc;

	CHECK_RETURN(pthread_mutex_lock(&x->mu));
	while ((e = dci_get(x, name, h, k)) != NULL && e->state == DCI_CLAIMED && wait)
		CHECK_RETURN(pthread_cond_wait(&x->cv, &x->mu));
	if (e && e->state == DCI_CLAIMED) {
		rc = 2;
	} else if (e) {
		dci_lru_unlink(e);
		dci_lru_push(x, e);
		*len = e->len;
		rc = 1;
	} else {
		rc = dci_claim_locked(x, name, h, k);
	}
	CHECK_RETURN(pthread_mutex_unlock(&x->mu));
	return rc;
}

int obj_dcache_index_acquire(struct obj_dcache_index *x, const char *name, uint32_t k,
			     uint32_t *len)
{
	return dci_acquire(x, name, k, len, 1);
}

int obj_dcache_index_try(struct obj_dcache_index *x, const char *name, uint32_t k,
			 uint32_t *len)
{
	return dci_acquire(x, name, k, len, 0);
}

int obj_dcache_index_claim(struct obj_dcache_index *x, const char *name, uint32_t k)
{
	uint64_t h = obj_dcache_hash(name);
	int rc = 0;

	CHECK_RETURN(pthread_mutex_lock(&x->mu));
	if (!dci_get(x, name, h, k))
		rc = dci_claim_locked(x, name, h, k) == 0 ? 1 : -ENOMEM;
	CHECK_RETURN(pthread_mutex_unlock(&x->mu));
	return rc;
}

void obj_dcache_index_done(struct obj_dcache_index *x, const char *name, uint32_t k,
			   int64_t len)
{
	uint64_t h = obj_dcache_hash(name);
	struct dci_ent *e;

	CHECK_RETURN(pthread_mutex_lock(&x->mu));
	e = dci_get(x, name, h, k);
	/* Only the claimer ends a claim, and nothing else removes it. */
	assert(e && e->state == DCI_CLAIMED);
	if (len < 0 || e->dropped || len > x->chunk)
		dci_remove(x, e, len >= 0);
	else
		(void)dci_make_ready(x, e, (uint32_t)len);
	obj_dcache_index_check(x);
	CHECK_RETURN(pthread_cond_broadcast(&x->cv));
	CHECK_RETURN(pthread_mutex_unlock(&x->mu));
}

void obj_dcache_index_drop(struct obj_dcache_index *x, const char *name, uint32_t k)
{
	uint64_t h = obj_dcache_hash(name);
	struct dci_ent *e;

	CHECK_RETURN(pthread_mutex_lock(&x->mu));
	e = dci_get(x, name, h, k);
	if (e && e->state == DCI_READY)
		dci_remove(x, e, 1);
	CHECK_RETURN(pthread_mutex_unlock(&x->mu));
}

void obj_dcache_index_drop_name(struct obj_dcache_index *x, const char *name)
{
	uint64_t h = obj_dcache_hash(name);
	struct dci_name *nm;

	CHECK_RETURN(pthread_mutex_lock(&x->mu));
	nm = dci_find(x, name, h);
	/* Claimed entries keep the name alive: walk until only they remain. */
	for (uint32_t k = 0; nm && k < nm->nch; k++) {
		struct dci_ent *e = nm->ch[k];
		if (!e)
			continue;
		if (e->state == DCI_CLAIMED) {
			e->dropped = 1;
			continue;
		}
		if (nm->live == 1) {
			dci_remove(x, e, 1);   /* frees nm */
			break;
		}
		dci_remove(x, e, 1);
	}
	CHECK_RETURN(pthread_mutex_unlock(&x->mu));
}

void obj_dcache_index_set_cap(struct obj_dcache_index *x, uint64_t cap)
{
	CHECK_RETURN(pthread_mutex_lock(&x->mu));
	x->cap = cap;
	dci_evict(x);
	CHECK_RETURN(pthread_mutex_unlock(&x->mu));
}

void obj_dcache_index_stats(struct obj_dcache_index *x, struct obj_dcache_index_stats *st)
{
	CHECK_RETURN(pthread_mutex_lock(&x->mu));
	st->bytes = x->bytes;
	st->entries = x->entries;
	st->cap = x->cap;
	st->evictions = x->evictions;
	CHECK_RETURN(pthread_mutex_unlock(&x->mu));
}

/* ---- the scan at open ---------------------------------------------------- */

struct dci_found {
	char *name;
	uint32_t k, len;
	int64_t mtime_ns;
};

struct dci_scan {
	struct dci_found *v;
	size_t n, cap;
	uint64_t dropped;
};

static int dci_found_cmp(const void *a, const void *b)
{
	const struct dci_found *x = a, *y = b;
	return x->mtime_ns < y->mtime_ns ? -1 : x->mtime_ns > y->mtime_ns;
}

/* 1 when s is exactly two lower-case hex digits. */
static int dci_is_fan(const char *s)
{
	return strlen(s) == 2 && strspn(s, "0123456789abcdef") == 2;
}

/* One file of a fan-out directory: keep it in s, or remove it. */
static int dci_scan_file(struct obj_dcache_index *x, struct dci_scan *s, const char *path,
			 const char *fname)
{
	char *name = NULL, *end;
	uint64_t h;
	unsigned long kk;
	uint32_t k, len;
	struct stat st;
	int rc;

	if (strlen(fname) < 18 || fname[16] != '-' || strspn(fname, "0123456789abcdef") != 16)
		goto bad;
	h = strtoull(fname, NULL, 16);
	errno = 0;
	kk = strtoul(fname + 17, &end, 16);
	if (*end || errno || kk > UINT32_MAX)
		goto bad;
	rc = obj_dcache_file_header(path, x->chunk, &name, &k, &len);
	if (rc == -ENOMEM)
		return rc;
	if (rc || obj_dcache_hash(name) != h || k != kk || stat(path, &st) != 0)
		goto bad;
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 256;
		struct dci_found *v = realloc(s->v, nc * sizeof(*v));
		if (!v) {
			free(name);
			return -ENOMEM;
		}
		s->v = v;
		s->cap = nc;
	}
	s->v[s->n++] = (struct dci_found){ name, k, len,
		(int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec };
	return 0;
bad:
	free(name);
	UTIL_DEBUG("objstore", "disk cache: removing unreadable entry file %s", path);
	(void)unlink(path);
	s->dropped++;
	return 0;
}

int obj_dcache_index_scan(struct obj_dcache_index *x, uint64_t *dropped)
{
	struct dci_scan s = { 0 };
	DIR *top, *sub;
	struct dirent *d, *f;
	char path[4096];
	int rc = 0;

	*dropped = 0;
	top = opendir(x->dir);
	if (!top)
		return -errno;
	while (!rc && (d = readdir(top)) != NULL) {
		if (!dci_is_fan(d->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", x->dir, d->d_name);
		sub = opendir(path);
		if (!sub)
			continue;
		while (!rc && (f = readdir(sub)) != NULL) {
			if (f->d_name[0] == '.')
				continue;
			if (snprintf(path, sizeof(path), "%s/%s/%s", x->dir, d->d_name,
				     f->d_name) >= (int)sizeof(path))
				continue;
			rc = dci_scan_file(x, &s, path, f->d_name);
		}
		closedir(sub);
	}
	closedir(top);
	/* Oldest first, so the most recently written entries end newest in
	 * the LRU: reads do not touch the files, so write order is the best
	 * guess of use order a restart has. */
	if (!rc && s.n)
		qsort(s.v, s.n, sizeof(*s.v), dci_found_cmp);
	CHECK_RETURN(pthread_mutex_lock(&x->mu));
	for (size_t i = 0; !rc && i < s.n; i++) {
		uint64_t h = obj_dcache_hash(s.v[i].name);
		struct dci_ent *e;
		if (dci_get(x, s.v[i].name, h, s.v[i].k))
			continue;
		rc = dci_claim_locked(x, s.v[i].name, h, s.v[i].k);
		if (rc)
			break;
		e = dci_get(x, s.v[i].name, h, s.v[i].k);
		(void)dci_make_ready(x, e, s.v[i].len);
	}
	obj_dcache_index_check(x);
	CHECK_RETURN(pthread_mutex_unlock(&x->mu));
	for (size_t i = 0; i < s.n; i++)
		free(s.v[i].name);
	free(s.v);
	*dropped = s.dropped;
	return rc;
}
