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
 * READ-AHEAD BUDGET
 *   SST readers fetch runs of blocks in one GET (READ-AHEAD in
 *   kv_sst_read.c) and decode them into this cache. The raw bytes of such
 *   a span are held only while it is fetched and decoded, but many
 *   threads may do that at once, so the cache, which every reader of one
 *   engine shares, also keeps the budget for them: kv_cache_ra_reserve
 *   grants span bytes while fewer than capacity / 4 are out (a refused
 *   reader fetches just the block it needs), and kv_cache_ra_span_max
 *   caps one span at capacity / 8 so a span never floods the cache it
 *   fills. A span that is a guess (GUESSES in kv_sst_read.c) is fetched
 *   only while kv_cache_ra_room says the cache, with the spans in flight
 *   and the new one, stays within 7/8 of its capacity. The read-ahead
 *   counters live here for the same reason.
 *
 * FILL THREADS (DESIGN)
 *   kv_cache_fill_start starts KV_CACHE_FILL_THREADS threads that run
 *   jobs handed over with kv_cache_fill_submit: an SST reader fetching
 *   the next span of a sequential read while the current one is read
 *   (PREFETCH in kv_sst_read.c). The cache knows nothing of the jobs
 *   but their two functions: each job gets exactly one call, run(arg) on
 *   a fill thread, or cancel(arg) on the thread that stops them.
 *   - At most KV_CACHE_FILL_QUEUE jobs wait; submit refuses more (a
 *     reader then simply does not prefetch), FIFO order.
 *   - kv_cache_fill_stop (kv_close calls it, kv_cache_free does too)
 *     cancels the jobs still waiting, lets running ones finish, joins
 *     the threads. A job must therefore not need anything its owner
 *     frees before stopping the threads (the SST reader holds a
 *     reference on itself; the object store outlives kv_close).
 *   - A job handles its own errors; nothing a job meets ends a thread
 *     or the process.
 *   fill_mu guards the queue and the state; it is never held while a
 *   job runs and is taken alone (no other lock inside it).
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define KV_CACHE_SHARD_BITS 4
#define KV_CACHE_SHARDS (1u << KV_CACHE_SHARD_BITS)
#define KV_CACHE_INITIAL_BUCKETS 64
#define KV_CACHE_FILL_THREADS 2
#define KV_CACHE_FILL_QUEUE 8

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
	size_t capacity;                  /* constant */
	atomic_uint_fast64_t next_id;
	atomic_uint_fast64_t hits;
	atomic_uint_fast64_t misses;
	atomic_size_t ra_out;             /* read-ahead span bytes reserved now */
	atomic_int ra_no_guess;           /* kv_cache_ra_room always 0 (tests) */
	atomic_uint_fast64_t ra_spans;    /* read-ahead counters (kv_cache_ra_count) */
	atomic_uint_fast64_t ra_fg_spans;
	atomic_uint_fast64_t ra_guesses;
	atomic_uint_fast64_t ra_blocks;
	atomic_uint_fast64_t ra_waits;

	/* fill threads (FILL THREADS above) */
	pthread_mutex_t fill_mu;
	pthread_cond_t fill_cv;           /* a job was queued, or stop */
	struct kv_cache_job {
		void (*run)(void *);
		void (*cancel)(void *);
		void *arg;
	} fill_q[KV_CACHE_FILL_QUEUE];    /* ring; protected by fill_mu */
	size_t fill_head, fill_n;         /* protected by fill_mu */
	int fill_state;                   /* 0 never started, 1 running, 2 stopped; fill_mu */
	atomic_int fill_on;               /* fill_state == 1, readable without the lock */
	pthread_t fill_threads[KV_CACHE_FILL_THREADS];
	int fill_nthreads;                /* written by start and stop only */
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
 * kv_cache_create - a cache holding up to `capacity` bytes of idle blocks.
 * On success *out is the caller's (kv_cache_free). Returns 0 or -ENOMEM.
 */
int kv_cache_create(struct kv_cache **out, size_t capacity)
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
	c->capacity = capacity;
	atomic_init(&c->next_id, 1);
	atomic_init(&c->hits, 0);
	atomic_init(&c->misses, 0);
	atomic_init(&c->ra_out, 0);
	atomic_init(&c->ra_spans, 0);
	atomic_init(&c->ra_fg_spans, 0);
	atomic_init(&c->ra_guesses, 0);
	atomic_init(&c->ra_no_guess, 0);
	atomic_init(&c->ra_blocks, 0);
	atomic_init(&c->ra_waits, 0);
	atomic_init(&c->fill_on, 0);
	CHECK_RETURN(pthread_mutex_init(&c->fill_mu, NULL));
	CHECK_RETURN(pthread_cond_init(&c->fill_cv, NULL));
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
 * kv_cache_free - free the cache and every cached block. Every handle
 * must have been released (a handle outliving its cache is a bug).
 */
void kv_cache_free(struct kv_cache *c)
{
	if (!c)
		return;
	kv_cache_fill_stop(c);
	CHECK_RETURN(pthread_cond_destroy(&c->fill_cv));
	CHECK_RETURN(pthread_mutex_destroy(&c->fill_mu));
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

/* kv_cache_ra_span_max - the largest read-ahead span worth fetching
 * into this cache (READ-AHEAD BUDGET above). */
size_t kv_cache_ra_span_max(const struct kv_cache *c)
{
	return c->capacity / 8;
}

/*
 * kv_cache_ra_reserve - take `bytes` of the read-ahead budget for a span
 * about to be fetched. Returns 1 (give them back with kv_cache_ra_release
 * once the span's buffer is freed) or 0 (over budget: fetch one block
 * instead). Thread-safe, lock-free.
 */
int kv_cache_ra_reserve(struct kv_cache *c, size_t bytes)
{
	size_t budget = c->capacity / 4;
	size_t out = atomic_load_explicit(&c->ra_out, memory_order_relaxed);
	do {
		if (bytes > budget || out > budget - bytes)
			return 0;
	} while (!atomic_compare_exchange_weak_explicit(&c->ra_out, &out, out + bytes,
							memory_order_relaxed, memory_order_relaxed));
	return 1;
}

int kv_cache_ra_room(struct kv_cache *c, size_t bytes)
{
	uint64_t used;
	if (atomic_load_explicit(&c->ra_no_guess, memory_order_relaxed))
		return 0;
	kv_cache_stats(c, NULL, NULL, &used);
	used += atomic_load_explicit(&c->ra_out, memory_order_relaxed);
	return used + bytes <= c->capacity - c->capacity / 8;
}

void kv_cache_ra_no_guesses(struct kv_cache *c)
{
	atomic_store(&c->ra_no_guess, 1);
}

void kv_cache_ra_release(struct kv_cache *c, size_t bytes)
{
	size_t prev = atomic_fetch_sub_explicit(&c->ra_out, bytes, memory_order_relaxed);
	assert(prev >= bytes);
	(void)prev;
}

/* kv_cache_ra_count - add to the read-ahead counters. Thread-safe. */
void kv_cache_ra_count(struct kv_cache *c, uint64_t spans, uint64_t blocks, uint64_t waits)
{
	if (spans)
		atomic_fetch_add_explicit(&c->ra_spans, spans, memory_order_relaxed);
	if (blocks)
		atomic_fetch_add_explicit(&c->ra_blocks, blocks, memory_order_relaxed);
	if (waits)
		atomic_fetch_add_explicit(&c->ra_waits, waits, memory_order_relaxed);
}

/* kv_cache_ra_span - count a span fetched, by kind (see kv_int.h). Thread-safe. */
void kv_cache_ra_span(struct kv_cache *c, enum kv_ra_kind kind)
{
	kv_cache_ra_count(c, 1, 0, 0);
	if (kind == KV_RA_SEQUENTIAL)
		atomic_fetch_add_explicit(&c->ra_fg_spans, 1, memory_order_relaxed);
	else if (kind == KV_RA_GUESS)
		atomic_fetch_add_explicit(&c->ra_guesses, 1, memory_order_relaxed);
}

/* kv_cache_ra_stats - the read-ahead counters (see kv_int.h). */
void kv_cache_ra_stats(struct kv_cache *c, struct kv_cache_ra_stats *st)
{
	st->spans = atomic_load(&c->ra_spans);
	st->blocks = atomic_load(&c->ra_blocks);
	st->waits = atomic_load(&c->ra_waits);
	st->fg_spans = atomic_load(&c->ra_fg_spans);
	st->guesses = atomic_load(&c->ra_guesses);
}

static void *kv_cache_fill_main(void *arg)
{
	struct kv_cache *c = arg;
	struct kv_cache_job j;

	util_thread_setup("kv-fill", 0);
	CHECK_RETURN(pthread_mutex_lock(&c->fill_mu));
	for (;;) {
		while (c->fill_state == 1 && c->fill_n == 0)
			CHECK_RETURN(pthread_cond_wait(&c->fill_cv, &c->fill_mu));
		if (c->fill_state != 1)
			break;
		j = c->fill_q[c->fill_head];
		c->fill_head = (c->fill_head + 1) % KV_CACHE_FILL_QUEUE;
		c->fill_n--;
		CHECK_RETURN(pthread_mutex_unlock(&c->fill_mu));
		j.run(j.arg);
		CHECK_RETURN(pthread_mutex_lock(&c->fill_mu));
	}
	CHECK_RETURN(pthread_mutex_unlock(&c->fill_mu));
	return NULL;
}

/*
 * kv_cache_fill_start - start the fill threads (once per cache; a second
 * call, or one after kv_cache_fill_stop, does nothing). Returns 0, or
 * the error of the first pthread_create that failed (the threads already
 * started keep running; with none, jobs are refused).
 */
int kv_cache_fill_start(struct kv_cache *c)
{
	int rc = 0;
	sigset_t all, old;

	CHECK_RETURN(pthread_mutex_lock(&c->fill_mu));
	if (c->fill_state != 0) {
		CHECK_RETURN(pthread_mutex_unlock(&c->fill_mu));
		return 0;
	}
	c->fill_state = 1;
	CHECK_RETURN(pthread_mutex_unlock(&c->fill_mu));
	/* Signals are for the threads that expect them (FUSE's). */
	sigfillset(&all);
	CHECK_RETURN(pthread_sigmask(SIG_SETMASK, &all, &old));
	for (int i = 0; i < KV_CACHE_FILL_THREADS; i++) {
		int e = pthread_create(&c->fill_threads[i], NULL, kv_cache_fill_main, c);
		if (e) {
			rc = -e;
			break;
		}
		c->fill_nthreads++;
	}
	CHECK_RETURN(pthread_sigmask(SIG_SETMASK, &old, NULL));
	atomic_store(&c->fill_on, c->fill_nthreads > 0);
	if (!c->fill_nthreads)
		kv_cache_fill_stop(c);          /* cancels what was queued meanwhile */
	return rc;
}

/*
 * kv_cache_fill_stop - cancel waiting jobs (cancel(arg), on this thread),
 * wait for running ones, join the threads. Later submits are refused.
 * Idempotent; not concurrent with kv_cache_fill_start.
 */
void kv_cache_fill_stop(struct kv_cache *c)
{
	struct kv_cache_job q[KV_CACHE_FILL_QUEUE];
	size_t n = 0;

	CHECK_RETURN(pthread_mutex_lock(&c->fill_mu));
	if (c->fill_state == 1) {
		while (c->fill_n) {
			q[n++] = c->fill_q[c->fill_head];
			c->fill_head = (c->fill_head + 1) % KV_CACHE_FILL_QUEUE;
			c->fill_n--;
		}
	}
	c->fill_state = 2;
	atomic_store(&c->fill_on, 0);
	CHECK_RETURN(pthread_cond_broadcast(&c->fill_cv));
	CHECK_RETURN(pthread_mutex_unlock(&c->fill_mu));
	for (size_t i = 0; i < n; i++)
		q[i].cancel(q[i].arg);
	for (int i = 0; i < c->fill_nthreads; i++)
		CHECK_RETURN(pthread_join(c->fill_threads[i], NULL));
	c->fill_nthreads = 0;
}

/* kv_cache_fill_running - are fill threads taking jobs? (a hint: submit
 * decides). Any thread, lock-free. */
int kv_cache_fill_running(struct kv_cache *c)
{
	return atomic_load_explicit(&c->fill_on, memory_order_relaxed);
}

/*
 * kv_cache_fill_submit - queue run(arg) for a fill thread. Returns 0
 * (exactly one of run(arg) or cancel(arg) will be called, on another
 * thread or in kv_cache_fill_stop) or -EBUSY (queue full, threads not
 * running: neither will be called; the caller keeps arg).
 */
int kv_cache_fill_submit(struct kv_cache *c, void (*run)(void *), void (*cancel)(void *),
			 void *arg)
{
	int rc = -EBUSY;

	CHECK_RETURN(pthread_mutex_lock(&c->fill_mu));
	if (c->fill_state == 1 && c->fill_n < KV_CACHE_FILL_QUEUE) {
		struct kv_cache_job *j =
			&c->fill_q[(c->fill_head + c->fill_n) % KV_CACHE_FILL_QUEUE];
		j->run = run;
		j->cancel = cancel;
		j->arg = arg;
		c->fill_n++;
		CHECK_RETURN(pthread_cond_signal(&c->fill_cv));
		rc = 0;
	}
	CHECK_RETURN(pthread_mutex_unlock(&c->fill_mu));
	return rc;
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
