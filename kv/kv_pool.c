/*
 * kv_pool.c - recycled fixed-size memory blocks (the memtable's 1 MiB
 * arena chunks).
 *
 * WHY
 *   shalefs keeps glibc from caching large blocks (cli/shalefs.c: every
 *   allocation of 128 KiB or more is its own mapping, given back on free),
 *   which bounds the daemon's RSS. The price is that every such block is
 *   fresh memory: each of its pages costs a page fault and a clear, and in
 *   a bulk write those faults are a large share of the daemon's CPU, the
 *   memtable's arena chunks among the biggest sources (docs/kv-format.md,
 *   "Memory"). A memtable lives for seconds and the next one needs the same chunks,
 *   so the chunks of a dropped memtable are kept here for the next.
 *
 * MEMORY
 *   At most max_free blocks wait here; a block returned beyond that is
 *   freed. Blocks in use are their owner's to count. The pool is
 *   reference-counted: a memtable can outlive the db that made it (a
 *   reader's snapshot), and its chunks still come home.
 *
 * THREADING
 *   Safe from any thread (one mutex, held for a list operation only).
 */
#include "kv/kv_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct kv_pool_free {
	struct kv_pool_free *next;
};

struct kv_pool {
	atomic_uint refs;
	size_t block;                     /* bytes per block; immutable */
	size_t max_free;                  /* immutable */
	pthread_mutex_t mu;
	struct kv_pool_free *free;        /* under mu */
	size_t n_free;                    /* under mu */
};

struct kv_pool *kv_pool_create(size_t block, size_t max_free)
{
	struct kv_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	atomic_init(&p->refs, 1);
	p->block = block < sizeof(struct kv_pool_free) ? sizeof(struct kv_pool_free) : block;
	p->max_free = max_free;
	pthread_mutex_init(&p->mu, NULL);
	return p;
}

void kv_pool_ref(struct kv_pool *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void kv_pool_unref(struct kv_pool *p)
{
	if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	while (p->free) {
		struct kv_pool_free *nx = p->free->next;
		free(p->free);
		p->free = nx;
	}
	pthread_mutex_destroy(&p->mu);
	free(p);
}

size_t kv_pool_block(const struct kv_pool *p)
{
	return p->block;
}

void *kv_pool_get(struct kv_pool *p)
{
	struct kv_pool_free *f;

	CHECK_RETURN(pthread_mutex_lock(&p->mu));
	f = p->free;
	if (f) {
		p->free = f->next;
		p->n_free--;
	}
	CHECK_RETURN(pthread_mutex_unlock(&p->mu));
	return f ? (void *)f : malloc(p->block);
}

void kv_pool_put(struct kv_pool *p, void *blk)
{
	struct kv_pool_free *f = blk;

	if (!blk)
		return;
	CHECK_RETURN(pthread_mutex_lock(&p->mu));
	if (p->n_free < p->max_free) {
		f->next = p->free;
		p->free = f;
		p->n_free++;
		f = NULL;
	}
	CHECK_RETURN(pthread_mutex_unlock(&p->mu));
	free(f);
}

size_t kv_pool_free_bytes(struct kv_pool *p)
{
	CHECK_RETURN(pthread_mutex_lock(&p->mu));
	size_t n = p->n_free;
	CHECK_RETURN(pthread_mutex_unlock(&p->mu));
	return n * p->block;
}
