/*
 * kv_memtable.c - the memtable: an arena-allocated skiplist of internal
 * keys (user key + 8-byte trailer, see kv_int.h) with their values.
 *
 * THREADING
 *   One writer at a time: the engine serialises kv_mem_add (it holds its
 *   write lock). Any number of readers (kv_mem_get, iterators) run
 *   concurrently with the writer and with each other, without locks.
 *   This works because a node is never changed or freed once it is
 *   linked, and is linked only after it is completely written:
 *     - the writer fills in the node (key, value, its own next pointers)
 *       and only then publishes it with a release store into its
 *       predecessor's next pointer, level 0 first, then upwards;
 *     - readers load next pointers with acquire, so a node they reach is
 *       fully visible to them (no torn entries);
 *     - the list height is a relaxed atomic: a reader that sees the new
 *       height before the head's pointers on the new levels sees NULL
 *       there and simply drops down a level.
 *   Counters (entries, arena bytes) are relaxed atomics, so stats may be
 *   read from any thread.
 *
 * INVARIANTS (checked by kv_mem_check_invariants)
 *   1. Level 0 holds every node in non-decreasing kv_ikey_cmp order.
 *   2. Level i > 0 is a subsequence of level i-1, hence also sorted.
 *   3. A node linked on level i has height > i.
 *   4. The number of nodes on level 0 equals the entry count.
 *
 * MEMORY
 *   Nodes live in an arena of chunks (KV_MEM_CHUNK bytes, or one chunk of
 *   its own for a node larger than a quarter of that so big values do not
 *   waste the rest of a chunk). Nothing is freed until the last reference
 *   drops; then every chunk is freed at once, the standard-size ones back
 *   into the engine's chunk pool (kv_pool.c says why) when there is one. Pointers handed out by
 *   kv_mem_get and iterators are therefore valid while the reader holds
 *   its reference.
 *
 * NODE LAYOUT (one arena allocation, pointer-aligned)
 *   struct kv_mem_node { klen, vlen, height, next[height] }
 *   followed by the internal key (klen bytes, trailer included) and the
 *   value (vlen bytes).
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define KV_MEM_MAX_HEIGHT 12
#define KV_MEM_BRANCHING 4                /* p = 1/4 per extra level */
#define KV_MEM_CHUNK ((size_t)1 << 20)

struct kv_mem_node {
	uint32_t klen;                    /* internal key bytes (trailer included) */
	uint32_t vlen;                    /* value bytes */
	uint32_t height;                  /* 1..KV_MEM_MAX_HEIGHT */
	/* next[i]: successor on level i; NULL at the end. Written once
	 * before publication (relaxed), then only by release stores. */
	_Atomic(struct kv_mem_node *) next[];
};

struct kv_mem_chunk {
	struct kv_mem_chunk *next;        /* older chunk */
	size_t size;                      /* bytes of data[] */
	int pooled;                       /* from m->pool: goes back there */
	alignas(max_align_t) unsigned char data[];
};

struct kv_mem {
	atomic_uint refs;                 /* references; the last frees */
	struct kv_mem_node *head;         /* sentinel, KV_MEM_MAX_HEIGHT high, no key */
	struct kv_pool *pool;             /* standard chunks; NULL = malloc; ref held */
	atomic_int height;                /* levels in use (>= 1) */
	atomic_uint_fast64_t count;       /* entries */
	atomic_size_t bytes;              /* arena bytes allocated */
	atomic_size_t used;               /* arena bytes handed out to nodes */

	/* Writer-only state (serialised by the caller of kv_mem_add). */
	struct kv_mem_chunk *chunks;      /* newest first; the current one */
	size_t chunk_used;                /* bytes used in chunks->data */
	struct util_rand rng;             /* node heights */
};

struct kv_mem_iter {
	struct kv_iter base;              /* must be first */
	struct kv_mem *m;                 /* reference held */
	struct kv_mem_node *cur;          /* NULL = not valid */
};

static inline const uint8_t *kv_mem_node_key(const struct kv_mem_node *n)
{
	return (const uint8_t *)&n->next[n->height];
}

static inline const uint8_t *kv_mem_node_val(const struct kv_mem_node *n)
{
	return kv_mem_node_key(n) + n->klen;
}

static inline struct kv_mem_node *kv_mem_next(const struct kv_mem_node *n, int level)
{
	return atomic_load_explicit(&((struct kv_mem_node *)n)->next[level],
				    memory_order_acquire);
}

/*
 * Allocate n bytes (pointer-aligned) from the arena. Writer only.
 * Returns NULL on allocation failure, leaving the arena as it was.
 */
static void *kv_mem_arena_alloc(struct kv_mem *m, size_t n)
{
	const size_t align = alignof(max_align_t);
	size_t need;

	if (util_size_add(&need, n, align - 1))
		return NULL;
	need &= ~(align - 1);
	if (m->chunks && m->chunk_used <= m->chunks->size &&
	    need <= m->chunks->size - m->chunk_used) {
		void *p = m->chunks->data + m->chunk_used;
		m->chunk_used += need;
		atomic_fetch_add_explicit(&m->used, need, memory_order_relaxed);
		return p;
	}

	/* A big node gets a chunk of its own, inserted behind the current
	 * chunk so the current chunk's free space is not abandoned. */
	int own = need > KV_MEM_CHUNK / 4;
	size_t size = own ? need : KV_MEM_CHUNK;
	size_t total;
	if (util_size_add(&total, sizeof(struct kv_mem_chunk), size))
		return NULL;
	/* Standard chunks are recycled: a fresh one is a page fault per page. */
	int pooled = !own && m->pool && kv_pool_block(m->pool) == total;
	struct kv_mem_chunk *c = pooled ? kv_pool_get(m->pool) : malloc(total);
	if (!c)
		return NULL;
	c->size = size;
	c->pooled = pooled;
	atomic_fetch_add_explicit(&m->bytes, total, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->used, need, memory_order_relaxed);
	if (own && m->chunks) {
		c->next = m->chunks->next;
		m->chunks->next = c;
	} else {
		c->next = m->chunks;
		m->chunks = c;
		m->chunk_used = need;
	}
	return c->data;
}

static int kv_mem_random_height(struct kv_mem *m)
{
	int h = 1;
	while (h < KV_MEM_MAX_HEIGHT && util_rand_below(&m->rng, KV_MEM_BRANCHING) == 0)
		h++;
	return h;
}

/*
 * Compare node n's internal key with (ukey, trailer) in internal-key order
 * (user key ascending, then trailer descending). The head is never
 * passed here.
 */
static int kv_mem_cmp(const struct kv_mem_node *n, const uint8_t *ukey, size_t uklen,
		      uint64_t trailer)
{
	const uint8_t *k = kv_mem_node_key(n);
	size_t nuk = n->klen - KV_IKEY_TRAILER;
	int c = kv_ukey_cmp(k, nuk, ukey, uklen);
	if (c)
		return c;
	uint64_t t = util_get_be64(k + nuk);
	return t > trailer ? -1 : t < trailer;
}

/*
 * First node whose key is >= (ukey, trailer), or NULL. If prev is not
 * NULL, prev[i] receives the last node before that point on level i for
 * every level (the insertion predecessors; only the writer asks).
 */
static struct kv_mem_node *kv_mem_find_ge(struct kv_mem *m, const uint8_t *ukey, size_t uklen,
					  uint64_t trailer, struct kv_mem_node **prev)
{
	struct kv_mem_node *x = m->head;
	int level = atomic_load_explicit(&m->height, memory_order_relaxed) - 1;

	if (prev) {
		/* Levels above the current height start at the head. */
		for (int i = level + 1; i < KV_MEM_MAX_HEIGHT; i++)
			prev[i] = m->head;
	}
	for (;;) {
		struct kv_mem_node *nx = kv_mem_next(x, level);
		if (nx && kv_mem_cmp(nx, ukey, uklen, trailer) < 0) {
			x = nx;
			continue;
		}
		if (prev)
			prev[level] = x;
		if (level == 0)
			return nx;
		level--;
	}
}

struct kv_pool *kv_mem_pool_create(size_t bytes)
{
	size_t block = sizeof(struct kv_mem_chunk) + KV_MEM_CHUNK;
	return kv_pool_create(block, bytes / block);
}

int kv_mem_create(struct kv_mem **out, struct kv_pool *pool)
{
	struct kv_mem *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (pool) {
		kv_pool_ref(pool);
		m->pool = pool;
	}
	atomic_init(&m->refs, 1);
	atomic_init(&m->height, 1);
	atomic_init(&m->count, 0);
	atomic_init(&m->bytes, 0);
	util_rand_seed(&m->rng, util_rand_os_seed());

	size_t hsize = sizeof(struct kv_mem_node) +
		       KV_MEM_MAX_HEIGHT * sizeof(_Atomic(struct kv_mem_node *));
	m->head = kv_mem_arena_alloc(m, hsize);
	if (!m->head) {
		kv_pool_unref(m->pool);
		free(m);
		return -ENOMEM;
	}
	m->head->klen = 0;
	m->head->vlen = 0;
	m->head->height = KV_MEM_MAX_HEIGHT;
	for (int i = 0; i < KV_MEM_MAX_HEIGHT; i++)
		atomic_init(&m->head->next[i], NULL);
	*out = m;
	return 0;
}

void kv_mem_ref(struct kv_mem *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void kv_mem_unref(struct kv_mem *m)
{
	if (!m)
		return;
	/* acq_rel: every access made under other references happens before
	 * the free below. */
	unsigned old = atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel);
	assert(old > 0);
	if (old != 1)
		return;
#ifdef SHALE_DEBUG
	assert(kv_mem_check_invariants(m));
#endif
	struct kv_mem_chunk *c = m->chunks;
	while (c) {
		struct kv_mem_chunk *nx = c->next;
		if (c->pooled)
			kv_pool_put(m->pool, c);
		else
			free(c);
		c = nx;
	}
	kv_pool_unref(m->pool);
	free(m);
}

int kv_mem_add(struct kv_mem *m, uint64_t seq, enum kv_type type, const void *key,
	       size_t klen, const void *val, size_t vlen)
{
	struct kv_mem_node *prev[KV_MEM_MAX_HEIGHT];

	if (seq > KV_SEQ_MAX || (type != KV_TYPE_VALUE && type != KV_TYPE_DELETE) ||
	    klen > KV_KEY_MAX || vlen > KV_VALUE_MAX)
		return -EINVAL;
	if (type == KV_TYPE_DELETE)
		vlen = 0;

	/* Sizes are bounded by the limits above, so this cannot overflow. */
	int height = kv_mem_random_height(m);
	size_t size = sizeof(struct kv_mem_node) +
		      (size_t)height * sizeof(_Atomic(struct kv_mem_node *)) +
		      klen + KV_IKEY_TRAILER + vlen;
	struct kv_mem_node *n = kv_mem_arena_alloc(m, size);
	if (!n)
		return -ENOMEM;
	n->klen = (uint32_t)(klen + KV_IKEY_TRAILER);
	n->vlen = (uint32_t)vlen;
	n->height = (uint32_t)height;
	uint64_t trailer = kv_ikey_pack(seq, type);
	kv_ikey_make((uint8_t *)kv_mem_node_key(n), key, klen, seq, type);
	if (vlen)
		memcpy((uint8_t *)kv_mem_node_val(n), val, vlen);

	/* Insert before any equal key, so a duplicate add shadows. */
	kv_mem_find_ge(m, key, klen, trailer, prev);

	int cur = atomic_load_explicit(&m->height, memory_order_relaxed);
	if (height > cur)
		atomic_store_explicit(&m->height, height, memory_order_relaxed);

	for (int i = 0; i < height; i++) {
		/* The node is not reachable yet: a relaxed store is enough. */
		atomic_store_explicit(&n->next[i],
				      atomic_load_explicit(&prev[i]->next[i], memory_order_relaxed),
				      memory_order_relaxed);
		/* Publish: readers that acquire this pointer see the node
		 * fully written. */
		atomic_store_explicit(&prev[i]->next[i], n, memory_order_release);
	}
	atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
	return 0;
}

int kv_mem_get(struct kv_mem *m, const void *key, size_t klen, uint64_t snap,
	       const uint8_t **val, size_t *vlen)
{
	if (snap > KV_SEQ_MAX)
		snap = KV_SEQ_MAX;
	/* The largest trailer a visible version can have: every version with
	 * seq <= snap sorts at or after (key, snap, 0xff). */
	struct kv_mem_node *n = kv_mem_find_ge(m, key, klen, snap << 8 | 0xff, NULL);
	if (!n)
		return 0;
	const uint8_t *k = kv_mem_node_key(n);
	if (kv_ukey_cmp(k, n->klen - KV_IKEY_TRAILER, key, klen) != 0)
		return 0;
	if (kv_ikey_type(k, n->klen) == KV_TYPE_DELETE)
		return 2;
	*val = kv_mem_node_val(n);
	*vlen = n->vlen;
	return 1;
}

size_t kv_mem_bytes(const struct kv_mem *m)
{
	return atomic_load_explicit(&((struct kv_mem *)m)->used, memory_order_relaxed);
}

size_t kv_mem_alloc_bytes(const struct kv_mem *m)
{
	return atomic_load_explicit(&((struct kv_mem *)m)->bytes, memory_order_relaxed);
}

uint64_t kv_mem_count(const struct kv_mem *m)
{
	return atomic_load_explicit(&((struct kv_mem *)m)->count, memory_order_relaxed);
}

int kv_mem_check_invariants(struct kv_mem *m)
{
	int height = atomic_load(&m->height);
	uint64_t n0 = 0;

	if (height < 1 || height > KV_MEM_MAX_HEIGHT) {
		UTIL_ERROR("kv", "memtable: height %d out of range", height);
		return 0;
	}
	for (int level = KV_MEM_MAX_HEIGHT - 1; level >= 0; level--) {
		const struct kv_mem_node *prev = NULL;
		const struct kv_mem_node *x = kv_mem_next(m->head, level);
		/* below: walks level-1 in step to prove the subsequence. */
		const struct kv_mem_node *below = level ? kv_mem_next(m->head, level - 1) : NULL;

		if (level >= height && x) {
			UTIL_ERROR("kv", "memtable: level %d used above height %d", level, height);
			return 0;
		}
		for (; x; prev = x, x = kv_mem_next(x, level)) {
			if (x->height <= (uint32_t)level || x->height > KV_MEM_MAX_HEIGHT) {
				UTIL_ERROR("kv", "memtable: node of height %u on level %d",
					   x->height, level);
				return 0;
			}
			if (x->klen < KV_IKEY_TRAILER) {
				UTIL_ERROR("kv", "memtable: key of %u bytes on level %d", x->klen,
					   level);
				return 0;
			}
			if (prev && kv_ikey_cmp(kv_mem_node_key(prev), prev->klen,
						kv_mem_node_key(x), x->klen) > 0) {
				UTIL_ERROR("kv", "memtable: level %d out of order", level);
				return 0;
			}
			if (level) {
				while (below && below != x)
					below = kv_mem_next(below, level - 1);
				if (!below) {
					UTIL_ERROR("kv", "memtable: node on level %d missing below",
						   level);
					return 0;
				}
				below = kv_mem_next(below, level - 1);
			} else {
				n0++;
			}
		}
	}
	uint64_t count = atomic_load(&m->count);
	if (n0 != count) {
		UTIL_ERROR("kv", "memtable: %llu nodes but count %llu", (unsigned long long)n0,
			   (unsigned long long)count);
		return 0;
	}
	return 1;
}

/* ---- iterator ------------------------------------------------------------ */

static void kv_mem_iter__seek(struct kv_iter *it, const uint8_t *ikey, size_t len)
{
	struct kv_mem_iter *mi = (struct kv_mem_iter *)it;
	assert(len >= KV_IKEY_TRAILER);
	mi->cur = kv_mem_find_ge(mi->m, ikey, len - KV_IKEY_TRAILER,
				 util_get_be64(ikey + len - KV_IKEY_TRAILER), NULL);
}

static void kv_mem_iter__seek_first(struct kv_iter *it)
{
	struct kv_mem_iter *mi = (struct kv_mem_iter *)it;
	mi->cur = kv_mem_next(mi->m->head, 0);
}

static void kv_mem_iter__next(struct kv_iter *it)
{
	struct kv_mem_iter *mi = (struct kv_mem_iter *)it;
	assert(mi->cur);
	mi->cur = kv_mem_next(mi->cur, 0);
}

static int kv_mem_iter__valid(struct kv_iter *it)
{
	return ((struct kv_mem_iter *)it)->cur != NULL;
}

static void kv_mem_iter__key(struct kv_iter *it, const uint8_t **k, size_t *len)
{
	struct kv_mem_iter *mi = (struct kv_mem_iter *)it;
	assert(mi->cur);
	*k = kv_mem_node_key(mi->cur);
	*len = mi->cur->klen;
}

static void kv_mem_iter__value(struct kv_iter *it, const uint8_t **v, size_t *len)
{
	struct kv_mem_iter *mi = (struct kv_mem_iter *)it;
	assert(mi->cur);
	*v = kv_mem_node_val(mi->cur);
	*len = mi->cur->vlen;
}

static int kv_mem_iter__status(struct kv_iter *it)
{
	(void)it;
	return 0;                         /* a memtable cannot fail a read */
}

static void kv_mem_iter__free(struct kv_iter *it)
{
	struct kv_mem_iter *mi = (struct kv_mem_iter *)it;
	if (!mi)
		return;
	kv_mem_unref(mi->m);
	free(mi);
}

static const struct kv_iter_ops kv_mem_iter_ops = {
	.seek = kv_mem_iter__seek,
	.seek_first = kv_mem_iter__seek_first,
	.next = kv_mem_iter__next,
	.valid = kv_mem_iter__valid,
	.key = kv_mem_iter__key,
	.value = kv_mem_iter__value,
	.status = kv_mem_iter__status,
	.free = kv_mem_iter__free,
};

int kv_mem_iter_create(struct kv_iter **out, struct kv_mem *m)
{
	struct kv_mem_iter *mi = calloc(1, sizeof(*mi));
	if (!mi)
		return -ENOMEM;
	mi->base.ops = &kv_mem_iter_ops;
	mi->m = m;
	mi->cur = NULL;
	kv_mem_ref(m);
	*out = &mi->base;
	return 0;
}
