/*
 * kv_cache.c - the block cache: decoded SST data blocks keyed by
 * (reader cache id, block offset), sharded LRU, byte-capped.
 *
 * DESIGN
 *   16 shards, chosen by the top bits of a hash of the key; each shard has
 *   its own mutex, hash table, byte budget (capacity / 16, rounded up) and
 *   two lists. No operation ever holds two shard locks, so there is no
 *   lock order to respect. No I/O happens under a shard lock: readers
 *   fetch and decode a block unlocked and then insert it.
 *
 * ENTRY STATES (an entry is a struct kv_cache_handle)
 *
 *   state            in_table  refs   list
 *   --------------   --------  -----  -------
 *   cached, idle        1        1    lru      (evictable)
 *   cached, pinned      1      >= 2   in_use
 *   detached, pinned    0      >= 1   none     (replaced or evicted while
 *                                              a handle was out)
 *
 *   refs counts handles given out plus one while the entry is in the
 *   table. An entry is freed when refs reaches 0, i.e. when it is out of
 *   the table and the last handle is released. Only idle entries are
 *   evicted, oldest first.
 *
 * INVARIANTS (checked by kv_cache_check_invariants)
 *   1. usage == sum of len over entries with in_table == 1.
 *   2. Every entry in the hash table is on exactly one of lru/in_use;
 *      lru entries have refs == 1, in_use entries refs >= 2.
 *   3. After insert and release return, usage <= capacity unless every
 *      remaining entry is pinned (lru empty): pinned bytes may exceed the
 *      budget for a while, they are evicted as soon as they are released.
 *
 * Inserting a key already present replaces it: new lookups see the new
 * block; holders of the old one keep a valid (detached) block.
 *
 * READ-AHEAD STATE (a hook)
 *   The SST read-ahead planner (kv_readahead.c) keeps engine-wide state: a
 *   budget for span bytes in flight, counters and the fill threads. Every
 *   reader of an engine shares this cache and is given nothing else, so
 *   the cache carries that state for the planner: kv_cache_create
 *   (kv_readahead.c) makes the cache with kv_cache_new and the state with
 *   kv_ra_create, and hangs it here with kv_cache_set_ra; kv_cache_free
 *   frees the state (kv_ra_free, which stops the fill threads), then the
 *   cache with kv_cache_delete. kv_cache_ra hands it out. The cache never
 *   looks inside it and never calls the planner: the planner calls the
 *   cache.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KV_CACHE_SHARD_BITS 4
#define KV_CACHE_SHARDS (1u << KV_CACHE_SHARD_BITS)
#define KV_CACHE_INITIAL_BUCKETS 64

struct kv_cache_handle {
	uint64_t file;                    /* reader's cache id */
	uint64_t off;                     /* block offset in the SST */
	uint32_t hash;
	int in_table;                     /* protected by the shard mutex */
	uint32_t refs;                    /* protected by the shard mutex */
	void *data;                       /* decoded block, free()d at refs == 0 */
	size_t len;
	struct kv_cache_handle *hnext;    /* hash chain; protected by the shard mutex */
	struct kv_cache_handle *prev;     /* lru / in_use list; protected by the shard mutex */
	struct kv_cache_handle *next;
};

struct kv_cache_shard {
	pthread_mutex_t mu;
	size_t capacity;                  /* byte budget; constant */
	size_t usage;                     /* bytes of entries in the table; protected by mu */
	size_t count;                     /* entries in the table; protected by mu */
	struct kv_cache_handle lru;       /* idle entries, oldest at lru.next; protected by mu */
	struct kv_cache_handle in_use;    /* pinned entries; protected by mu */
	struct kv_cache_handle **buckets; /* protected by mu */
	size_t nbuckets;                  /* power of two; protected by mu */
};

struct kv_cache {
	struct kv_cache_shard shards[KV_CACHE_SHARDS];
	atomic_uint_fast64_t next_id;
	atomic_uint_fast64_t hits;
	atomic_uint_fast64_t misses;
	struct kv_ra *ra;                 /* READ-AHEAD STATE; constant */
};

#ifdef SHALE_DEBUG
static int kv_cache_shard_check(struct kv_cache_shard *s);
#define KV_CACHE_SHARD_CHECK(s) assert(kv_cache_shard_check(s) == 0)
#else
#define KV_CACHE_SHARD_CHECK(s) ((void)0)
#endif

static uint32_t kv_cache_hash(uint64_t file, uint64_t off)
{
	/* splitmix64-style finaliser over both words. */
	uint64_t x = file * 0x9e3779b97f4a7c15ull ^ off;
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (uint32_t)(x >> 32);
}

static struct kv_cache_shard *kv_cache_shard_of(struct kv_cache *c, uint32_t hash)
{
	return &c->shards[hash >> (32 - KV_CACHE_SHARD_BITS)];
}

static void kv_cache_list_remove(struct kv_cache_handle *e)
{
	e->next->prev = e->prev;
	e->prev->next = e->next;
	e->prev = e->next = NULL;
}

/* Append e as the newest entry of list. */
static void kv_cache_list_append(struct kv_cache_handle *list, struct kv_cache_handle *e)
{
	e->next = list;
	e->prev = list->prev;
	e->prev->next = e;
	e->next->prev = e;
}

/* Slot holding the pointer to (file, off) in its chain, or to the chain's
 * terminating NULL. */
static struct kv_cache_handle **kv_cache_find(struct kv_cache_shard *s, uint64_t file,
					       uint64_t off, uint32_t hash)
{
	struct kv_cache_handle **p = &s->buckets[hash & (s->nbuckets - 1)];
	while (*p && ((*p)->file != file || (*p)->off != off))
		p = &(*p)->hnext;
	return p;
}

/* Double the bucket array. Failure is harmless: chains just get longer. */
static void kv_cache_grow(struct kv_cache_shard *s)
{
	size_t n = s->nbuckets * 2;
	if (n > SIZE_MAX / sizeof(*s->buckets))
		return;
	struct kv_cache_handle **b = calloc(n, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct kv_cache_handle *e = s->buckets[i];
		while (e) {
			struct kv_cache_handle *nx = e->hnext;
			size_t j = e->hash & (n - 1);
			e->hnext = b[j];
			b[j] = e;
			e = nx;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
}

static void kv_cache_ref(struct kv_cache_shard *s, struct kv_cache_handle *e)
{
	if (e->refs == 1 && e->in_table) {
		/* idle -> pinned */
		kv_cache_list_remove(e);
		kv_cache_list_append(&s->in_use, e);
	}
	e->refs++;
}

static void kv_cache_unref(struct kv_cache_shard *s, struct kv_cache_handle *e)
{
	assert(e->refs > 0);
	e->refs--;
	if (e->refs == 0) {
		assert(!e->in_table);
		free(e->data);
		free(e);
	} else if (e->in_table && e->refs == 1) {
		/* pinned -> idle */
		kv_cache_list_remove(e);
		kv_cache_list_append(&s->lru, e);
	}
}

/* e was just unlinked from the hash chain: detach it and drop the
 * table's reference. */
static void kv_cache_detach(struct kv_cache_shard *s, struct kv_cache_handle *e)
{
	assert(e->in_table);
	kv_cache_list_remove(e);
	e->in_table = 0;
	s->usage -= e->len;
	s->count--;
	kv_cache_unref(s, e);
}

/* Evict idle entries, oldest first, until the shard fits its budget. */
static void kv_cache_evict(struct kv_cache_shard *s)
{
	while (s->usage > s->capacity && s->lru.next != &s->lru) {
		struct kv_cache_handle *e = s->lru.next;
		struct kv_cache_handle **p = kv_cache_find(s, e->file, e->off, e->hash);
		assert(*p == e);
		*p = e->hnext;
		kv_cache_detach(s, e);
	}
}

/*
 * kv_cache_new - a cache holding up to `capacity` bytes of idle blocks,
 * without read-ahead state (kv_cache_create, kv_readahead.c, adds it). On
 * success *out is the caller's (kv_cache_delete). Returns 0 or -ENOMEM.
 */
int kv_cache_new(struct kv_cache **out, size_t capacity)
{
	struct kv_cache *c = calloc(1, sizeof(*c));
	size_t i;
	if (!c)
		return -ENOMEM;
	for (i = 0; i < KV_CACHE_SHARDS; i++) {
		struct kv_cache_shard *s = &c->shards[i];
		s->buckets = calloc(KV_CACHE_INITIAL_BUCKETS, sizeof(*s->buckets));
		if (!s->buckets)
			goto nomem;
		s->nbuckets = KV_CACHE_INITIAL_BUCKETS;
		s->capacity = capacity / KV_CACHE_SHARDS + (capacity % KV_CACHE_SHARDS != 0);
		s->lru.next = s->lru.prev = &s->lru;
		s->in_use.next = s->in_use.prev = &s->in_use;
		CHECK_RETURN(pthread_mutex_init(&s->mu, NULL));
	}
	atomic_init(&c->next_id, 1);
	atomic_init(&c->hits, 0);
	atomic_init(&c->misses, 0);
	*out = c;
	return 0;
nomem:
	while (i-- > 0) {
		CHECK_RETURN(pthread_mutex_destroy(&c->shards[i].mu));
		free(c->shards[i].buckets);
	}
	free(c);
	return -ENOMEM;
}

/*
 * kv_cache_delete - free the cache and every cached block, not its
 * read-ahead state (kv_cache_free frees both). Every handle must have
 * been released (a handle outliving its cache is a bug).
 */
void kv_cache_delete(struct kv_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < KV_CACHE_SHARDS; i++) {
		struct kv_cache_shard *s = &c->shards[i];
		assert(s->in_use.next == &s->in_use);
		for (size_t b = 0; b < s->nbuckets; b++) {
			struct kv_cache_handle *e = s->buckets[b];
			while (e) {
				struct kv_cache_handle *nx = e->hnext;
				free(e->data);
				free(e);
				e = nx;
			}
		}
		free(s->buckets);
		CHECK_RETURN(pthread_mutex_destroy(&s->mu));
	}
	free(c);
}

/* kv_cache_new_id - a fresh id (never 0) for one reader's keys. */
uint64_t kv_cache_new_id(struct kv_cache *c)
{
	return atomic_fetch_add(&c->next_id, 1);
}

/*
 * kv_cache_lookup - the block at (file, off), pinned, or NULL. A non-NULL
 * handle must be given back with kv_cache_release. Thread-safe.
 */
struct kv_cache_handle *kv_cache_lookup(struct kv_cache *c, uint64_t file, uint64_t off)
{
	uint32_t hash = kv_cache_hash(file, off);
	struct kv_cache_shard *s = kv_cache_shard_of(c, hash);
	struct kv_cache_handle *e;

	CHECK_RETURN(pthread_mutex_lock(&s->mu));
	e = *kv_cache_find(s, file, off, hash);
	if (e)
		kv_cache_ref(s, e);
	CHECK_RETURN(pthread_mutex_unlock(&s->mu));
	atomic_fetch_add_explicit(e ? &c->hits : &c->misses, 1, memory_order_relaxed);
	return e;
}

/*
 * kv_cache_contains - is a block cached at (file, off)? A peek for
 * read-ahead planning: it neither pins the block, nor refreshes it in the
 * LRU, nor counts as a hit or a miss. The answer may be stale as soon as
 * it is returned. Thread-safe.
 */
int kv_cache_contains(struct kv_cache *c, uint64_t file, uint64_t off)
{
	uint32_t hash = kv_cache_hash(file, off);
	struct kv_cache_shard *s = kv_cache_shard_of(c, hash);
	int found;

	CHECK_RETURN(pthread_mutex_lock(&s->mu));
	found = *kv_cache_find(s, file, off, hash) != NULL;
	CHECK_RETURN(pthread_mutex_unlock(&s->mu));
	return found;
}

/*
 * kv_cache_insert - cache `data` (len bytes, malloc'd; ownership passes to
 * the cache in every case) at (file, off), replacing any block already
 * there, and return it pinned. Idle blocks are evicted to make room.
 * Returns the handle (release it with kv_cache_release), or NULL when the
 * entry cannot be allocated (-ENOMEM; data has been freed). Thread-safe.
 */
struct kv_cache_handle *kv_cache_insert(struct kv_cache *c, uint64_t file, uint64_t off,
					void *data, size_t len)
{
	uint32_t hash = kv_cache_hash(file, off);
	struct kv_cache_shard *s = kv_cache_shard_of(c, hash);
	struct kv_cache_handle *e = calloc(1, sizeof(*e));
	struct kv_cache_handle **p;

	if (!e) {
		free(data);
		return NULL;
	}
	e->file = file;
	e->off = off;
	e->hash = hash;
	e->data = data;
	e->len = len;
	e->refs = 2;                      /* the caller's handle + the table */
	e->in_table = 1;

	CHECK_RETURN(pthread_mutex_lock(&s->mu));
	p = kv_cache_find(s, file, off, hash);
	if (*p) {
		struct kv_cache_handle *old = *p;
		*p = old->hnext;
		kv_cache_detach(s, old);
		p = kv_cache_find(s, file, off, hash);
	}
	e->hnext = *p;
	*p = e;
	kv_cache_list_append(&s->in_use, e);
	s->usage += len;
	s->count++;
	if (s->count > s->nbuckets)
		kv_cache_grow(s);
	kv_cache_evict(s);
	KV_CACHE_SHARD_CHECK(s);
	CHECK_RETURN(pthread_mutex_unlock(&s->mu));
	return e;
}

/* kv_cache_data - the block of a pinned handle; borrowed until release. */
const void *kv_cache_data(struct kv_cache_handle *h, size_t *len)
{
	*len = h->len;
	return h->data;
}

/* kv_cache_release - give back a handle from lookup or insert. */
void kv_cache_release(struct kv_cache *c, struct kv_cache_handle *h)
{
	struct kv_cache_shard *s = kv_cache_shard_of(c, h->hash);

	CHECK_RETURN(pthread_mutex_lock(&s->mu));
	kv_cache_unref(s, h);
	/* Blocks pinned while the shard was over budget are evicted now. */
	kv_cache_evict(s);
	KV_CACHE_SHARD_CHECK(s);
	CHECK_RETURN(pthread_mutex_unlock(&s->mu));
}

/* kv_cache_stats - lookups that hit and missed, bytes cached. Any of the
 * out pointers may be NULL. */
void kv_cache_stats(struct kv_cache *c, uint64_t *hits, uint64_t *misses, uint64_t *bytes)
{
	if (hits)
		*hits = atomic_load(&c->hits);
	if (misses)
		*misses = atomic_load(&c->misses);
	if (bytes) {
		uint64_t total = 0;
		for (size_t i = 0; i < KV_CACHE_SHARDS; i++) {
			struct kv_cache_shard *s = &c->shards[i];
			CHECK_RETURN(pthread_mutex_lock(&s->mu));
			total += s->usage;
			CHECK_RETURN(pthread_mutex_unlock(&s->mu));
		}
		*bytes = total;
	}
}

/* kv_cache_ra - the read-ahead planner's state (READ-AHEAD STATE above). */
struct kv_ra *kv_cache_ra(const struct kv_cache *c)
{
	return c->ra;
}

/* kv_cache_set_ra - carry ra (kv_cache_create, before any reader uses c). */
void kv_cache_set_ra(struct kv_cache *c, struct kv_ra *ra)
{
	c->ra = ra;
}

/* Check one shard's bookkeeping; the caller holds s->mu. */
static int kv_cache_shard_check(struct kv_cache_shard *s)
{
	size_t usage = 0, listed = 0, chained = 0;
	struct kv_cache_handle *e;

	for (e = s->lru.next; e != &s->lru; e = e->next) {
		if (e->next->prev != e || !e->in_table || e->refs != 1)
			return -1;
		usage += e->len;
		listed++;
	}
	for (e = s->in_use.next; e != &s->in_use; e = e->next) {
		if (e->next->prev != e || !e->in_table || e->refs < 2)
			return -1;
		usage += e->len;
		listed++;
	}
	for (size_t b = 0; b < s->nbuckets; b++) {
		for (e = s->buckets[b]; e; e = e->hnext) {
			if (!e->in_table || (e->hash & (s->nbuckets - 1)) != b)
				return -1;
			chained++;
		}
	}
	if (usage != s->usage || listed != s->count || chained != s->count)
		return -1;
	/* Invariant 3: over budget only while nothing is evictable. */
	if (s->usage > s->capacity && s->lru.next != &s->lru)
		return -1;
	return 0;
}

int kv_cache_check_invariants(struct kv_cache *c)
{
	int bad = 0;
	for (size_t i = 0; i < KV_CACHE_SHARDS && !bad; i++) {
		struct kv_cache_shard *s = &c->shards[i];
		CHECK_RETURN(pthread_mutex_lock(&s->mu));
		bad = kv_cache_shard_check(s) != 0;
		CHECK_RETURN(pthread_mutex_unlock(&s->mu));
	}
	return bad ? -1 : 0;
}
