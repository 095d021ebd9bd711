/*
 * kv_readahead.c - the SST read-ahead planner: which blocks a block-cache
 * miss fetches besides its own, when the next span is fetched before
 * anyone asks for it, and the budget and threads that does it with.
 *
 * DESIGN
 *   A block-cache miss costs one GET, and on S3 a GET costs its latency
 *   whatever its size. fs/ reads a file one chunk (one data block) at a
 *   time, so a miss that only fetched its own block would read a file at
 *   one block per GET latency. The planner makes a miss fetch a run of
 *   the blocks that follow it in the same GET instead, when it has reason
 *   to think they will be read, and caches them all.
 *
 * STREAMS
 *   A stream (struct kv_ra_stream) is (next, win): where its next miss is
 *   expected (just past the last block or span it fetched) and the size of
 *   its last span. A miss at `next` or up to KV_RA_SLACK past it continues
 *   the stream: it fetches a span of 2 * win bytes (KV_RA_MIN for a
 *   stream's first span, at most KV_RA_MAX and at most kv_ra_span_max)
 *   starting at the missed block. A miss behind a stream's `next` but not
 *   before `lo`, where the last span its reader asked for started (a
 *   straggler of a concurrent sequential read, or a block evicted from a
 *   span), leaves the streams as they are and fetches its block alone;
 *   any other miss starts a new stream there (kv_ra_classify). Point
 *   lookups from every thread share their table's KV_RA_STREAMS streams (a
 *   new stream replaces the oldest); an iterator has a stream of its own,
 *   which cache hits advance too (kv_ra_hit), since it steps through
 *   blocks in order.
 *
 * SPANS
 *   A span holds whole blocks, as the index lays them out (kv_ra_plan): it
 *   ends at the data region's end, at an index entry that does not decode
 *   or does not follow on contiguously (the block is judged when asked
 *   for), and before a block already cached or in a span in flight. Every
 *   block of a span is checked and decoded exactly as a single block is
 *   (kv_sst_block_cache), then cached. Only the block asked for reports
 *   errors: a bad block read ahead is dropped without a word and fetched
 *   again, alone, if it is ever asked for, which then reports it with the
 *   same KV_ECORRUPT and message as a reader without read-ahead. A store
 *   error fails only the request whose span it was.
 *
 * SLOTS
 *   Spans in flight are recorded in their table (KV_RA_SLOTS at most); a
 *   miss inside one waits for it (t->cv) and then looks in the cache again
 *   instead of issuing its own GET. A slot also holds its span's bytes of
 *   the budget (BUDGET below) until the span is decoded. No slot free, or
 *   no budget: the miss fetches its block alone.
 *
 * GUESSES
 *   A miss that starts a new stream fetches a span of up to the table's
 *   guess size from the missed block on while the block cache, counting
 *   spans in flight and the new one, stays within 7/8 of its capacity
 *   (kv_ra_room), and the new stream continues after it: in a table the
 *   blocks after a file chunk are the file's next chunks, after an inode
 *   record or a directory entry come the next ones, and a 1 MiB GET costs
 *   about what a 64 KiB one does. Past 7/8 such a miss fetches its block
 *   alone, so a guess never pushes out a block someone asked for. A
 *   guessed span is counted as a guess, not as a sequential read (READS
 *   FIRST in kv_compact.c).
 *   Guesses must pay (kv_ra_guess_score): a table's guess size starts at
 *   KV_RA_GUESS; a guess whose second block is read (its stream's mark),
 *   or any stream that turns out sequential, doubles it (up to
 *   KV_RA_GUESS); a guessed stream replaced before either halves it, and
 *   below KV_RA_GUESS_MIN there are no guesses, until a sequential stream
 *   shows up again. Random reads over a table larger than what they read
 *   thus cost a few guesses (1 MiB x KV_RA_STREAMS, 512 KiB, 256 KiB) and
 *   then one block per miss.
 *
 * PREFETCH
 *   A span still stalls its reader for a GET, and with one GET in flight a
 *   stream reads at most a span per round trip, so while the fill threads
 *   run (kv_ra_fill_start; kv_open starts them) a stream keeps up to
 *   KV_RA_DEPTH spans in flight AHEAD of its reader:
 *   - When a miss fetches a span, the spans after it (each twice the one
 *     before, same caps) are queued for fill threads until KV_RA_DEPTH
 *     are (kv_ra_prefetch); their first blocks are kept in the stream's
 *     `ahead`, its `mark` is the oldest, and `next` moves past them all.
 *   - Reading the marked block (a hit, or a wait for the span in flight)
 *     drops it from `ahead` and tops the stream up again (kv_ra_marked).
 *     A guessed stream's mark is its second block: reading it confirms
 *     the guess and starts the prefetch.
 *   - A job holds a reference on the reader, a slot (so a miss in its
 *     range waits for it rather than fetching again) and its bytes of the
 *     budget. It decodes every block quietly; whatever fails (GET, decode,
 *     cache insert) is dropped: the block is fetched, and its error
 *     reported, when someone asks for it. Nothing is queued when the
 *     queue, the slots or the budget are full, the next block is cached
 *     already, or the table ends; the stream then goes back to fetching on
 *     misses.
 *
 * WARM
 *   Random reads of a table larger than the block cache can hold pay a
 *   GET per miss. With a disk cache under the store (kv_config
 *   warm_max_bytes, which the shalefs command sets from the disk cache's
 *   size), a table of at most that many bytes that has had
 *   KV_RA_WARM_AFTER random misses is fetched whole on the fill threads,
 *   in GETs
 *   of KV_RA_WARM_SPAN, KV_RA_WARM_DEPTH at a time, each holding its
 *   bytes of the budget (kv_ra_warm). The bytes only pass through: the
 *   disk cache keeps them, so later misses of that table read the local
 *   disk instead of the store; nothing of it goes into the block cache.
 *   Misses meanwhile fetch their block alone (the disk cache lets a miss
 *   wait for a warm GET of the same chunk rather than send its own). Any
 *   error stops the warm; the blocks are then fetched when asked for.
 *   A random miss is one in no stream whose new stream never continued
 *   (t->loose_misses: kv_ra_classify counts it, kv_ra_loose_end takes it
 *   back when the stream turns out sequential), so neither a sequential
 *   read nor the lookup before it (an open reads the inode first) warms
 *   a table; a miss just behind a stream, or behind its last span's start
 *   by less than KV_RA_SLACK, is a sequential read's out-of-order read
 *   (the kernel sends several READs at once), not a new stream.
 *
 * BUDGET (engine-wide)
 *   The raw bytes of a span live only while it is fetched and decoded (its
 *   blocks go into the byte-capped block cache), but many threads may
 *   fetch spans at once, so kv_ra_reserve grants span bytes while fewer
 *   than capacity / 4 of the block cache are out, and kv_ra_span_max caps
 *   one span at a KV_RA_DEPTH-th of that (capacity / 16: 4 MiB of the
 *   default 64 MiB cache), so a stream's spans in flight fit in it.
 *   The counters kv_stats reports (struct kv_ra_stats) are kept here too.
 *
 * FILL THREADS (engine-wide)
 *   kv_ra_fill_start starts KV_RA_FILL_THREADS threads that run the jobs
 *   handed over with kv_ra_fill_submit (prefetches, warms): enough for
 *   a stream's KV_RA_DEPTH spans and some more, and for a warm's
 *   KV_RA_WARM_DEPTH GETs with two threads left for other streams. The pool knows
 *   nothing of the jobs but their two functions: each job gets exactly one
 *   call, run(arg) on a fill thread, or cancel(arg) on the thread that
 *   stops them.
 *   - At most KV_RA_FILL_QUEUE jobs wait; submit refuses more (a reader
 *     then simply does not prefetch), FIFO order.
 *   - kv_ra_fill_stop (kv_close calls it, kv_cache_free does too through
 *     kv_ra_free) cancels the jobs still waiting, lets running ones
 *     finish, joins the threads. A job must therefore not need anything
 *     its owner frees before stopping the threads (a prefetch holds a
 *     reference on its reader; the object store outlives kv_close).
 *   - A job handles its own errors; nothing a job meets ends a thread or
 *     the process.
 *
 * WHERE THE STATE LIVES, AND LOCKS
 *   Engine-wide state (budget, counters, fill threads) is a struct kv_ra
 *   hanging off the block cache, the one object every reader of an engine
 *   shares (kv_cache_ra). ra_out and the counters are atomics; fill_mu
 *   guards the job queue and the pool's state, is never held while a job
 *   runs and is taken alone or inside a table's mu.
 *   Per-table state (streams, slots) is a struct kv_ra_table embedded in
 *   its reader, which it pins through the src.ref / src.unref the reader
 *   gave it (this file calls the cache and kv_sst_block.c, never
 *   kv_sst_read.c, which calls it). t->mu guards the shared streams and the slots and is never
 *   held across I/O. Lock order: t->mu, then a cache shard's lock
 *   (kv_cache_contains) or fill_mu (kv_ra_fill_submit); nothing calls back
 *   into a table while holding either. An iterator's own stream belongs
 *   to the iterator's thread; `mark` is also read without the lock.
 *   Without a cache (kv_sst_check_buffer) and in kv_sst_verify, which
 *   bypasses it, the reader never calls the planner.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Tuning (STREAMS, GUESSES above). */
#define KV_RA_MIN ((uint64_t)256 << 10)          /* first span of a stream */
#define KV_RA_MAX ((uint64_t)8 << 20)            /* largest span: one GET */
#define KV_RA_SLACK ((uint64_t)128 << 10)        /* a miss this far past `next` is sequential */
#define KV_RA_GUESS ((uint64_t)1 << 20)          /* largest span of a miss in no stream */
#define KV_RA_GUESS_MIN ((uint64_t)256 << 10)    /* smaller: no guess at all */
#define KV_RA_NONE UINT64_MAX                    /* stream unused / no mark */
#define KV_RA_WARM_SPAN ((uint64_t)2 << 20)      /* one GET of a warm (WARM) */
#define KV_RA_WARM_DEPTH 6                       /* a table's warm GETs at once */
#define KV_RA_WARM_AFTER 3                       /* random misses before a warm */

struct kv_ra_job {
	void (*run)(void *);
	void (*cancel)(void *);
	void *arg;
};

struct kv_ra {
	size_t capacity;                  /* of the block cache; constant */
	atomic_size_t ra_out;             /* span bytes reserved now (BUDGET) */
	atomic_int no_guess;              /* kv_ra_room always 0 (tests) */
	atomic_uint_fast64_t spans;       /* the counters (struct kv_ra_stats) */
	atomic_uint_fast64_t fg_spans;
	atomic_uint_fast64_t guesses;
	atomic_uint_fast64_t blocks;
	atomic_uint_fast64_t waits;
	atomic_uint_fast64_t warm_bytes;
	_Atomic uint64_t warm_max;        /* WARM: largest table warmed; 0 = off */

	/* FILL THREADS */
	pthread_mutex_t fill_mu;
	pthread_cond_t fill_cv;           /* a job was queued, or stop */
	struct kv_ra_job fill_q[KV_RA_FILL_QUEUE];   /* ring; protected by fill_mu */
	size_t fill_head, fill_n;         /* protected by fill_mu */
	int fill_state;                   /* 0 never started, 1 running, 2 stopped; fill_mu */
	atomic_int fill_on;               /* fill_state == 1, readable without the lock */
	pthread_t fill_threads[KV_RA_FILL_THREADS];
	int fill_nthreads;                /* written by start and stop only */
};

static void kv_ra_pool_stop(struct kv_ra *ra);

/* ---- engine-wide: budget and counters ----------------------------------- */

/*
 * kv_ra_create - the engine-wide state for a block cache of `capacity`
 * bytes (kv_cache_create calls it). On success *out is the caller's
 * (kv_ra_free). Returns 0 or -ENOMEM.
 */
static int kv_ra_create(struct kv_ra **out, size_t capacity)
{
	struct kv_ra *ra = calloc(1, sizeof(*ra));
	if (!ra)
		return -ENOMEM;
	ra->capacity = capacity;
	atomic_init(&ra->ra_out, 0);
	atomic_init(&ra->no_guess, 0);
	atomic_init(&ra->spans, 0);
	atomic_init(&ra->fg_spans, 0);
	atomic_init(&ra->guesses, 0);
	atomic_init(&ra->blocks, 0);
	atomic_init(&ra->waits, 0);
	atomic_init(&ra->warm_bytes, 0);
	atomic_init(&ra->warm_max, 0);
	atomic_init(&ra->fill_on, 0);
	CHECK_RETURN(pthread_mutex_init(&ra->fill_mu, NULL));
	CHECK_RETURN(pthread_cond_init(&ra->fill_cv, NULL));
	*out = ra;
	return 0;
}

/* kv_ra_free - stop the fill threads (kv_ra_fill_stop), then free. */
static void kv_ra_free(struct kv_ra *ra)
{
	if (!ra)
		return;
	kv_ra_pool_stop(ra);
	CHECK_RETURN(pthread_cond_destroy(&ra->fill_cv));
	CHECK_RETURN(pthread_mutex_destroy(&ra->fill_mu));
	free(ra);
}

/*
 * kv_cache_create - a block cache of `capacity` bytes carrying the
 * engine-wide read-ahead state (WHERE THE STATE LIVES, at the top): the cache
 * (kv_cache_new) and the state (kv_ra_create) are made here, above both,
 * so kv_cache.c never calls the planner. On success *out is the caller's
 * (kv_cache_free). Returns 0 or -ENOMEM.
 */
int kv_cache_create(struct kv_cache **out, size_t capacity)
{
	struct kv_cache *c;
	struct kv_ra *ra;
	int rc = kv_cache_new(&c, capacity);
	if (rc)
		return rc;
	if ((rc = kv_ra_create(&ra, capacity))) {
		kv_cache_delete(c);
		return rc;
	}
	kv_cache_set_ra(c, ra);
	*out = c;
	return 0;
}

/*
 * kv_cache_free - stop the fill threads and free the read-ahead state,
 * then the cache and every cached block. Every handle must have been
 * released (a handle outliving its cache is a bug).
 */
void kv_cache_free(struct kv_cache *c)
{
	if (!c)
		return;
	kv_ra_free(kv_cache_ra(c));
	kv_cache_delete(c);
}

/* kv_ra_span_max - the largest span worth fetching into cache c (BUDGET). */
size_t kv_ra_span_max(const struct kv_cache *c)
{
	return kv_cache_ra(c)->capacity / 4 / KV_RA_DEPTH;
}

/*
 * kv_ra_reserve - take `bytes` of the budget for a span about to be
 * fetched. Returns 1 (give them back with kv_ra_release once the span's
 * buffer is freed) or 0 (over budget: fetch one block instead).
 * Thread-safe, lock-free.
 */
int kv_ra_reserve(struct kv_cache *c, size_t bytes)
{
	struct kv_ra *ra = kv_cache_ra(c);
	size_t budget = ra->capacity / 4;
	size_t out = atomic_load_explicit(&ra->ra_out, memory_order_relaxed);
	do {
		if (bytes > budget || out > budget - bytes)
			return 0;
	} while (!atomic_compare_exchange_weak_explicit(&ra->ra_out, &out, out + bytes,
							memory_order_relaxed, memory_order_relaxed));
	return 1;
}

/* kv_ra_release - give back bytes kv_ra_reserve granted. */
void kv_ra_release(struct kv_cache *c, size_t bytes)
{
	size_t prev = atomic_fetch_sub_explicit(&kv_cache_ra(c)->ra_out, bytes,
						 memory_order_relaxed);
	assert(prev >= bytes);
	(void)prev;
}

/* kv_ra_room - may a guessed span of `bytes` be fetched (GUESSES)? */
int kv_ra_room(struct kv_cache *c, size_t bytes)
{
	struct kv_ra *ra = kv_cache_ra(c);
	uint64_t used;
	if (atomic_load_explicit(&ra->no_guess, memory_order_relaxed))
		return 0;
	kv_cache_stats(c, NULL, NULL, &used);
	used += atomic_load_explicit(&ra->ra_out, memory_order_relaxed);
	return used + bytes <= ra->capacity - ra->capacity / 8;
}

/* kv_ra_no_guesses - no guessed spans from c's readers from now on. */
void kv_ra_no_guesses(struct kv_cache *c)
{
	atomic_store(&kv_cache_ra(c)->no_guess, 1);
}

/* kv_ra_count - add to the counters. Thread-safe. */
void kv_ra_count(struct kv_cache *c, uint64_t spans, uint64_t blocks, uint64_t waits)
{
	struct kv_ra *ra = kv_cache_ra(c);
	if (spans)
		atomic_fetch_add_explicit(&ra->spans, spans, memory_order_relaxed);
	if (blocks)
		atomic_fetch_add_explicit(&ra->blocks, blocks, memory_order_relaxed);
	if (waits)
		atomic_fetch_add_explicit(&ra->waits, waits, memory_order_relaxed);
}

/* kv_ra_span - count a span fetched, by kind. Thread-safe. */
void kv_ra_span(struct kv_cache *c, enum kv_ra_kind kind)
{
	struct kv_ra *ra = kv_cache_ra(c);
	kv_ra_count(c, 1, 0, 0);
	if (kind == KV_RA_SEQUENTIAL)
		atomic_fetch_add_explicit(&ra->fg_spans, 1, memory_order_relaxed);
	else if (kind == KV_RA_GUESS)
		atomic_fetch_add_explicit(&ra->guesses, 1, memory_order_relaxed);
}

/* kv_ra_stats - read the counters. Thread-safe. */
void kv_ra_stats(struct kv_cache *c, struct kv_ra_stats *st)
{
	struct kv_ra *ra = kv_cache_ra(c);
	st->spans = atomic_load(&ra->spans);
	st->blocks = atomic_load(&ra->blocks);
	st->waits = atomic_load(&ra->waits);
	st->fg_spans = atomic_load(&ra->fg_spans);
	st->guesses = atomic_load(&ra->guesses);
	st->warm_bytes = atomic_load(&ra->warm_bytes);
}

/* kv_ra_set_warm - tables of at most `bytes` read at random are warmed
 * (WARM); 0 = none. */
void kv_ra_set_warm(struct kv_cache *c, uint64_t bytes)
{
	atomic_store(&kv_cache_ra(c)->warm_max, bytes);
}

/* ---- engine-wide: fill threads ------------------------------------------ */

/* Take the oldest queued job (fill_mu held, fill_n > 0). */
static struct kv_ra_job kv_ra_fill_pop(struct kv_ra *ra)
{
	struct kv_ra_job j = ra->fill_q[ra->fill_head];
	ra->fill_head = (ra->fill_head + 1) % KV_RA_FILL_QUEUE;
	ra->fill_n--;
	return j;
}

static void *kv_ra_fill_main(void *arg)
{
	struct kv_ra *ra = arg;
	struct kv_ra_job j;

	util_thread_setup("kv-fill", 0);
	CHECK_RETURN(pthread_mutex_lock(&ra->fill_mu));
	for (;;) {
		while (ra->fill_state == 1 && ra->fill_n == 0)
			CHECK_RETURN(pthread_cond_wait(&ra->fill_cv, &ra->fill_mu));
		if (ra->fill_state != 1)
			break;
		j = kv_ra_fill_pop(ra);
		CHECK_RETURN(pthread_mutex_unlock(&ra->fill_mu));
		j.run(j.arg);
		CHECK_RETURN(pthread_mutex_lock(&ra->fill_mu));
	}
	CHECK_RETURN(pthread_mutex_unlock(&ra->fill_mu));
	return NULL;
}

/*
 * kv_ra_fill_start - start c's fill threads (once per cache; a second
 * call, or one after kv_ra_fill_stop, does nothing). Returns 0, or the
 * error of the first pthread_create that failed (the threads already
 * started keep running; with none, jobs are refused).
 */
int kv_ra_fill_start(struct kv_cache *c)
{
	struct kv_ra *ra = kv_cache_ra(c);
	int rc = 0;
	sigset_t all, old;

	CHECK_RETURN(pthread_mutex_lock(&ra->fill_mu));
	if (ra->fill_state != 0) {
		CHECK_RETURN(pthread_mutex_unlock(&ra->fill_mu));
		return 0;
	}
	ra->fill_state = 1;
	CHECK_RETURN(pthread_mutex_unlock(&ra->fill_mu));
	/* Signals are for the threads that expect them (FUSE's). */
	sigfillset(&all);
	CHECK_RETURN(pthread_sigmask(SIG_SETMASK, &all, &old));
	for (int i = 0; i < KV_RA_FILL_THREADS; i++) {
		int e = pthread_create(&ra->fill_threads[i], NULL, kv_ra_fill_main, ra);
		if (e) {
			rc = -e;
			break;
		}
		ra->fill_nthreads++;
	}
	CHECK_RETURN(pthread_sigmask(SIG_SETMASK, &old, NULL));
	atomic_store(&ra->fill_on, ra->fill_nthreads > 0);
	if (!ra->fill_nthreads)
		kv_ra_pool_stop(ra);            /* cancels what was queued meanwhile */
	return rc;
}

/* kv_ra_fill_stop, given the state itself (kv_ra_free has no cache). */
static void kv_ra_pool_stop(struct kv_ra *ra)
{
	struct kv_ra_job q[KV_RA_FILL_QUEUE];
	size_t n = 0;

	CHECK_RETURN(pthread_mutex_lock(&ra->fill_mu));
	if (ra->fill_state == 1) {
		while (ra->fill_n)
			q[n++] = kv_ra_fill_pop(ra);
	}
	ra->fill_state = 2;
	atomic_store(&ra->fill_on, 0);
	CHECK_RETURN(pthread_cond_broadcast(&ra->fill_cv));
	CHECK_RETURN(pthread_mutex_unlock(&ra->fill_mu));
	for (size_t i = 0; i < n; i++)
		q[i].cancel(q[i].arg);
	for (int i = 0; i < ra->fill_nthreads; i++)
		CHECK_RETURN(pthread_join(ra->fill_threads[i], NULL));
	ra->fill_nthreads = 0;
}

/*
 * kv_ra_fill_stop - cancel waiting jobs (cancel(arg), on this thread),
 * wait for running ones, join the threads. Later submits are refused.
 * Idempotent; not concurrent with kv_ra_fill_start.
 */
void kv_ra_fill_stop(struct kv_cache *c)
{
	kv_ra_pool_stop(kv_cache_ra(c));
}

/* kv_ra_fill_running - are fill threads taking jobs? (a hint: submit
 * decides). Any thread, lock-free. */
int kv_ra_fill_running(struct kv_cache *c)
{
	return atomic_load_explicit(&kv_cache_ra(c)->fill_on, memory_order_relaxed);
}

/*
 * kv_ra_fill_submit - queue run(arg) for a fill thread. Returns 0
 * (exactly one of run(arg) or cancel(arg) will be called, on another
 * thread or in kv_ra_fill_stop) or -EBUSY (queue full, threads not
 * running: neither will be called; the caller keeps arg).
 */
int kv_ra_fill_submit(struct kv_cache *c, void (*run)(void *), void (*cancel)(void *),
		      void *arg)
{
	struct kv_ra *ra = kv_cache_ra(c);
	int rc = -EBUSY;

	CHECK_RETURN(pthread_mutex_lock(&ra->fill_mu));
	if (ra->fill_state == 1 && ra->fill_n < KV_RA_FILL_QUEUE) {
		ra->fill_q[(ra->fill_head + ra->fill_n) % KV_RA_FILL_QUEUE] =
			(struct kv_ra_job){ .run = run, .cancel = cancel, .arg = arg };
		ra->fill_n++;
		CHECK_RETURN(pthread_cond_signal(&ra->fill_cv));
		rc = 0;
	}
	CHECK_RETURN(pthread_mutex_unlock(&ra->fill_mu));
	return rc;
}

/* ---- per table: setup ----------------------------------------------------- */

/*
 * kv_ra_table_init - set up t for the table src describes (copied; what
 * it points to must live as long as t, i.e. as the reader). No streams,
 * no spans in flight.
 */
void kv_ra_table_init(struct kv_ra_table *t, const struct kv_ra_src *src)
{
	memset(t, 0, sizeof(*t));
	t->src = *src;
	CHECK_RETURN(pthread_mutex_init(&t->mu, NULL));
	CHECK_RETURN(pthread_cond_init(&t->cv, NULL));
	for (size_t i = 0; i < KV_RA_STREAMS; i++)
		kv_ra_stream_init(&t->ra[i], 0);
	t->guess = KV_RA_GUESS;
}

/* kv_ra_table_destroy - t's reader is being freed (no span in flight:
 * a prefetch holds a reference on the reader). */
void kv_ra_table_destroy(struct kv_ra_table *t)
{
	CHECK_RETURN(pthread_cond_destroy(&t->cv));
	CHECK_RETURN(pthread_mutex_destroy(&t->mu));
}

/* kv_ra_stream_init - an unused stream; background: a compaction input's
 * (its spans are not foreground reads, kv_ra_span). */
void kv_ra_stream_init(struct kv_ra_stream *s, int background)
{
	s->next = KV_RA_NONE;
	s->lo = KV_RA_NONE;
	s->next_p = SIZE_MAX;
	s->win = 0;
	atomic_init(&s->mark, KV_RA_NONE);
	s->nahead = 0;
	s->guessed = 0;
	s->loose = 0;
	s->background = background;
}

/* ---- per table: spans and slots (SPANS, SLOTS above) ------------------------ */

/* Walks the block handles of index entries from a given entry on,
 * without building keys. */
struct kv_ra_hcur {
	const uint8_t *base, *end;
	size_t p;                         /* offset of the next entry in the index block */
};

static void kv_ra_hcur_init(struct kv_ra_hcur *c, const struct kv_ra_table *t, size_t p)
{
	c->base = t->src.index;
	c->end = t->src.index + t->src.index_rlen;
	c->p = p;
}

/* The next handle; 0 at the end of the index or at an entry that does not
 * decode (quietly: the block is judged when it is asked for). */
static int kv_ra_hcur_next(struct kv_ra_hcur *c, uint64_t *off, uint64_t *size)
{
	const uint8_t *q, *v;
	uint64_t shared, unshared, vlen;
	size_t n, m;

	if (c->p >= (size_t)(c->end - c->base) ||
	    !(q = kv_sst_entry_head(c->base + c->p, c->end, &shared, &unshared, &vlen)) ||
	    vlen > (size_t)(c->end - q) - unshared)
		return 0;
	v = q + unshared;
	if (!(n = kv_varint_get(v, v + vlen, off)) || !(m = kv_varint_get(v + n, v + vlen, size)))
		return 0;
	c->p = (size_t)(v + vlen - c->base);
	return 1;
}

/* The in-flight span holding off, or -1 (t->mu held). */
static int kv_ra_inflight(const struct kv_ra_table *t, uint64_t off)
{
	for (int i = 0; i < KV_RA_SLOTS; i++)
		if (t->slots[i].hi && off >= t->slots[i].lo && off < t->slots[i].hi)
			return i;
	return -1;
}

/*
 * Plan a span of at most `win` bytes starting with the block at `off`,
 * whose index entry is at p: that block and the ones after it while they
 * follow on contiguously inside the data region and are neither cached
 * nor in a span in flight (the first block is checked against the cache
 * only if check_first). t->mu held. Returns the span's bytes (0: not even
 * the first block qualifies); *nblocks its blocks, *end_p the index entry
 * after its last block.
 */
static uint64_t kv_ra_plan(struct kv_ra_table *t, size_t p, uint64_t off, uint64_t win,
			   int check_first, uint32_t *nblocks, size_t *end_p)
{
	const struct kv_ra_src *s = &t->src;
	struct kv_ra_hcur c;
	uint64_t hi = off, boff, bsize;
	uint32_t nb = 0;

	kv_ra_hcur_init(&c, t, p);
	*end_p = p;
	while (kv_ra_hcur_next(&c, &boff, &bsize)) {
		if (boff != hi || bsize > KV_SST_BLOCK_MAX || hi > s->data_end ||
		    bsize + KV_SST_TRAILER_SIZE > s->data_end - hi ||
		    (nb && hi + bsize + KV_SST_TRAILER_SIZE - off > win) ||
		    ((nb || check_first) && kv_cache_contains(s->cache, s->cache_id, boff)) ||
		    kv_ra_inflight(t, boff) >= 0)
			break;
		hi += bsize + KV_SST_TRAILER_SIZE;
		nb++;
		*end_p = c.p;
	}
	*nblocks = nb;
	return hi - off;
}

/* A free slot for [lo, lo + len) with its bytes reserved, or -1 (t->mu held). */
static int kv_ra_slot_take(struct kv_ra_table *t, uint64_t lo, uint64_t len)
{
	for (int i = 0; i < KV_RA_SLOTS; i++) {
		if (t->slots[i].hi)
			continue;
		if (!kv_ra_reserve(t->src.cache, (size_t)len))
			return -1;
		t->slots[i].lo = lo;
		t->slots[i].hi = lo + len;
		t->slots[i].id = ++t->ids;
		return i;
	}
	return -1;
}

/* Free slot i and give its bytes back (t->mu held). */
static void kv_ra_slot_untake(struct kv_ra_table *t, int i)
{
	kv_ra_release(t->src.cache, (size_t)(t->slots[i].hi - t->slots[i].lo));
	t->slots[i].hi = 0;
}

/* Plan a span of up to `win` bytes from the block at (p, off) and take a
 * slot for it (t->mu held; kv_ra_plan's check_first, *nb, *end_p).
 * Returns the slot, or -1: the span is one block, or no slot or budget is
 * free (the miss then fetches its block alone). */
static int kv_ra_span_take(struct kv_ra_table *t, size_t p, uint64_t off, uint64_t win,
			   int check_first, uint64_t *len, uint32_t *nb, size_t *end_p)
{
	*len = kv_ra_plan(t, p, off, win, check_first, nb, end_p);
	return *nb > 1 ? kv_ra_slot_take(t, off, *len) : -1;
}

/* What a stream's spans count as (kv_ra_span). */
static enum kv_ra_kind kv_ra_kind(const struct kv_ra_stream *s)
{
	return s->background ? KV_RA_BACKGROUND : KV_RA_SEQUENTIAL;
}

/* The span of slot i is done: give its bytes back, wake whoever waits. */
static void kv_ra_slot_done(struct kv_ra_table *t, int i)
{
	CHECK_RETURN(pthread_mutex_lock(&t->mu));
	kv_ra_slot_untake(t, i);
	CHECK_RETURN(pthread_cond_broadcast(&t->cv));
	CHECK_RETURN(pthread_mutex_unlock(&t->mu));
}

/*
 * Fetch the planned span [lo, lo + len) of nb blocks, the first one's
 * index entry at p, with one GET, and cache every block that checks out.
 * With h (and blk) the first block, of index size `size`, is the one
 * asked for: it is decoded loudly into *h / *blk exactly as fetching it
 * alone would, and the result is what fetching it alone would have
 * returned; the others are decoded quietly. Without (a prefetch), every
 * block is quiet and the result is only a hint (0 or the store error).
 * kind: what the span is for, for the counters (kv_ra_span).
 */
static int kv_ra_fetch(struct kv_ra_table *t, size_t p, uint64_t lo, uint64_t size,
		       uint64_t len, uint32_t nb, enum kv_ra_kind kind,
		       struct kv_cache_handle **h, struct kv_sst_block *blk)
{
	const struct kv_ra_src *s = &t->src;
	uint64_t boff, bsize, pos = 0, cached = 0, first = size + KV_SST_TRAILER_SIZE;
	struct kv_ra_hcur c;
	struct kv_sst_block b;
	struct kv_cache_handle *bh;
	void *raw = NULL;
	size_t raw_len = 0;
	int rc;

	rc = kv_obj_get(s->store, s->name, lo, len, &raw, &raw_len);
	if (rc == KV_ECORRUPT && h && len > first) {
		/* The store refused the span as a whole (an encrypted store
		 * authenticates what it returns, kv_obj_get): a damaged block
		 * after this one must not fail its read. Fetch it alone. */
		len = first;
		nb = 1;
		rc = kv_obj_get(s->store, s->name, lo, len, &raw, &raw_len);
	}
	if (rc)
		return rc;
	kv_ra_span(s->cache, kind);
	kv_ra_hcur_init(&c, t, p);
	for (uint32_t i = 0; i < nb && kv_ra_hcur_next(&c, &boff, &bsize); i++) {
		uint64_t bstored = bsize + KV_SST_TRAILER_SIZE;
		if (i > 0 || !h) {
			if (pos > raw_len || bstored > raw_len - pos)
				break;          /* short read: left for whoever asks */
			if (kv_sst_block_cache(s->cache, s->cache_id, NULL, boff, bsize,
					       (const uint8_t *)raw + pos, (size_t)bstored, &bh,
					       &b) == 0) {
				kv_cache_release(s->cache, bh);
				cached++;
			}
		}
		pos += bstored;
	}
	kv_ra_count(s->cache, 0, cached, 0);
	/* The blocks read ahead went first: if this one fails, whoever waits
	 * for them still finds them. */
	if (h)
		rc = kv_sst_block_cache(s->cache, s->cache_id, s->name, lo, size, raw,
					raw_len < first ? raw_len : (size_t)first, h, blk);
	obj_buf_free(raw);
	return rc;
}

/* ---- per table: prefetch (PREFETCH above) ------------------------------------ */

struct kv_ra_pf_job {
	struct kv_ra_table *t;            /* its reader: a reference of the job's own */
	size_t p;                         /* index entry of the first block */
	uint64_t lo, len;
	uint32_t nb;
	int slot;
	enum kv_ra_kind kind;             /* of the stream it continues */
};

static void kv_ra_pf_end(struct kv_ra_pf_job *j)
{
	struct kv_sst_reader *r = j->t->src.r;
	void (*unref)(struct kv_sst_reader *) = j->t->src.unref;
	kv_ra_slot_done(j->t, j->slot);
	free(j);
	unref(r);                         /* may free the table */
}

/* On a fill thread: errors are dropped (whoever asks for a block the span
 * did not cache fetches it, and hears about it). */
static void kv_ra_pf_run(void *arg)
{
	struct kv_ra_pf_job *j = arg;
	(void)kv_ra_fetch(j->t, j->p, j->lo, 0, j->len, j->nb, j->kind, NULL, NULL);
	kv_ra_pf_end(j);
}

static void kv_ra_pf_cancel(void *arg)
{
	kv_ra_pf_end(arg);
}

/* Queue one span after everything stream s has (at s->next) for a fill
 * thread, and note its first block in s->ahead. Returns 0, or -1 when
 * there is a reason not to (nothing left, cached, no slot, budget, queue
 * full). t->mu held. */
static int kv_ra_prefetch_one(struct kv_ra_table *t, struct kv_ra_stream *s, uint64_t max)
{
	struct kv_ra_pf_job *j;
	uint64_t w, len;
	uint32_t nb;
	size_t end_p;
	int slot;

	if (s->next_p == SIZE_MAX || s->next >= t->src.data_end ||
	    !kv_ra_fill_running(t->src.cache))
		return -1;
	w = s->win ? s->win * 2 : KV_RA_MIN;
	if (w > max)
		w = max;
	if ((slot = kv_ra_span_take(t, s->next_p, s->next, w, 1, &len, &nb, &end_p)) < 0)
		return -1;
	if (!(j = malloc(sizeof(*j)))) {
		kv_ra_slot_untake(t, slot);
		return -1;
	}
	*j = (struct kv_ra_pf_job){ .t = t, .p = s->next_p, .lo = s->next, .len = len,
				    .nb = nb, .slot = slot, .kind = kv_ra_kind(s) };
	t->src.ref(t->src.r);
	if (kv_ra_fill_submit(t->src.cache, kv_ra_pf_run, kv_ra_pf_cancel, j)) {
		t->src.unref(t->src.r);         /* never the last: the caller holds one */
		kv_ra_slot_untake(t, slot);     /* nobody could wait on it yet */
		free(j);
		return -1;
	}
	s->ahead[s->nahead++] = s->next;
	s->next += len;
	s->next_p = end_p;
	s->win = w;
	return 0;
}

/*
 * Top stream s up to KV_RA_DEPTH spans queued ahead of its reader
 * (PREFETCH), and mark the first block of the oldest: reading it tops up
 * again. With several spans in flight a stream reads at up to
 * KV_RA_DEPTH spans per GET latency instead of one. t->mu held.
 */
static void kv_ra_prefetch(struct kv_ra_table *t, struct kv_ra_stream *s, uint64_t max)
{
	while (s->nahead < KV_RA_DEPTH && kv_ra_prefetch_one(t, s, max) == 0)
		;
	atomic_store_explicit(&s->mark, s->nahead ? s->ahead[0] : KV_RA_NONE,
			      memory_order_relaxed);
}

/* The reader of stream s reached the span queued at ahead[0] (t->mu held). */
static void kv_ra_ahead_pop(struct kv_ra_stream *s)
{
	assert(s->nahead > 0);
	memmove(s->ahead, s->ahead + 1, (s->nahead - 1) * sizeof(s->ahead[0]));
	s->nahead--;
}

/*
 * A guess paid off (ok: the block after its first was read, or a stream
 * turned out sequential) or did not (its stream was replaced before
 * either): the table's next guesses double, up to KV_RA_GUESS, or halve,
 * to none below KV_RA_GUESS_MIN (GUESSES). t->mu held.
 */
static void kv_ra_guess_score(struct kv_ra_table *t, int ok)
{
	uint64_t max = kv_ra_span_max(t->src.cache), g = t->guess < max ? t->guess : max;

	if (ok)
		t->guess = g == 0 ? KV_RA_GUESS_MIN : g >= KV_RA_GUESS / 2 ? KV_RA_GUESS : g * 2;
	else
		t->guess = g / 2 < KV_RA_GUESS_MIN ? 0 : g / 2;
}

/* Stream s, started by a miss in no stream, turned out sequential: that
 * miss no longer counts toward a warm (WARM). t->mu held. */
static void kv_ra_loose_end(struct kv_ra_table *t, struct kv_ra_stream *s)
{
	if (s->loose) {
		s->loose = 0;
		if (t->loose_misses > 0)
			t->loose_misses--;
	}
}

/* ---- per table: warm (WARM above) ------------------------------------------ */

struct kv_ra_warm_job {
	struct kv_ra_table *t;            /* its reader: a reference of the job's own */
	uint64_t lo, len;                 /* bytes of the budget held: len */
};

static void kv_ra_warm(struct kv_ra_table *t);

/* The job is over (run or cancelled): give back its budget, and with
 * more = 1 queue what is left of the table. */
static void kv_ra_warm_end(struct kv_ra_warm_job *j, int more)
{
	struct kv_ra_table *t = j->t;
	struct kv_sst_reader *r = t->src.r;
	void (*unref)(struct kv_sst_reader *) = t->src.unref;

	kv_ra_release(t->src.cache, (size_t)j->len);
	CHECK_RETURN(pthread_mutex_lock(&t->mu));
	t->warm_out--;
	if (more)
		kv_ra_warm(t);
	CHECK_RETURN(pthread_mutex_unlock(&t->mu));
	free(j);
	unref(r);                         /* may free the table */
}

/* On a fill thread: the bytes only pass through, to the disk cache under
 * the store; an error stops the warm (the blocks are fetched when asked
 * for, and that reports it). */
static void kv_ra_warm_run(void *arg)
{
	struct kv_ra_warm_job *j = arg;
	const struct kv_ra_src *s = &j->t->src;
	void *raw = NULL;
	size_t raw_len = 0;
	int rc = kv_obj_get(s->store, s->name, j->lo, j->len, &raw, &raw_len);

	obj_buf_free(raw);
	if (rc == 0)
		atomic_fetch_add_explicit(&kv_cache_ra(s->cache)->warm_bytes, raw_len,
					  memory_order_relaxed);
	kv_ra_warm_end(j, rc == 0);
}

static void kv_ra_warm_cancel(void *arg)
{
	kv_ra_warm_end(arg, 0);
}

/*
 * Keep up to KV_RA_WARM_DEPTH GETs of the rest of a table read at random
 * queued, when warming is on and the table is small enough (WARM). Each
 * holds its bytes of the budget; none when it is spent, the queue is
 * full or the table is all asked for. t->mu held.
 */
static void kv_ra_warm(struct kv_ra_table *t)
{
	uint64_t max = atomic_load_explicit(&kv_cache_ra(t->src.cache)->warm_max,
					    memory_order_relaxed);
	struct kv_ra_warm_job *j;

	if (!max || t->src.data_end > max || t->loose_misses < KV_RA_WARM_AFTER ||
	    !kv_ra_fill_running(t->src.cache))
		return;
	while (t->warm_out < KV_RA_WARM_DEPTH && t->warm_next < t->src.data_end) {
		uint64_t len = t->src.data_end - t->warm_next;
		if (len > KV_RA_WARM_SPAN)
			len = KV_RA_WARM_SPAN;
		if (!kv_ra_reserve(t->src.cache, (size_t)len))
			return;
		if (!(j = malloc(sizeof(*j)))) {
			kv_ra_release(t->src.cache, (size_t)len);
			return;
		}
		*j = (struct kv_ra_warm_job){ .t = t, .lo = t->warm_next, .len = len };
		t->src.ref(t->src.r);
		if (kv_ra_fill_submit(t->src.cache, kv_ra_warm_run, kv_ra_warm_cancel, j)) {
			t->src.unref(t->src.r);         /* never the last: the caller holds one */
			kv_ra_release(t->src.cache, (size_t)len);
			free(j);
			return;
		}
		t->warm_next += len;
		t->warm_out++;
	}
}

/* The largest span for this table's cache. */
static uint64_t kv_ra_max(const struct kv_ra_table *t)
{
	uint64_t max = kv_ra_span_max(t->src.cache);
	return max < KV_RA_MAX ? max : KV_RA_MAX;
}

/*
 * kv_ra_marked - the block at off was read (a hit, or a miss served) by
 * stream own (NULL: a point lookup, on t's shared streams): if a stream's
 * mark is there, queue its next span (PREFETCH). Takes t->mu only then.
 */
void kv_ra_marked(struct kv_ra_table *t, struct kv_ra_stream *own, uint64_t off)
{
	struct kv_ra_stream *s = own ? own : t->ra;
	unsigned n = own ? 1 : KV_RA_STREAMS;

	for (unsigned i = 0; i < n; i++) {
		if (atomic_load_explicit(&s[i].mark, memory_order_relaxed) != off)
			continue;
		CHECK_RETURN(pthread_mutex_lock(&t->mu));
		if (atomic_load_explicit(&s[i].mark, memory_order_relaxed) == off) {
			if (s[i].guessed) {
				kv_ra_guess_score(t, 1);
				s[i].guessed = 0;
			}
			kv_ra_loose_end(t, &s[i]);
			kv_ra_ahead_pop(&s[i]);
			kv_ra_prefetch(t, &s[i], kv_ra_max(t));
		}
		CHECK_RETURN(pthread_mutex_unlock(&t->mu));
	}
}

/*
 * kv_ra_hit - an iterator's stream follows it over cached blocks: the
 * block ending at `end` (next index entry next_p, SIZE_MAX = unknown) was
 * a hit. Never moves the stream back into what it has fetched or queued
 * already. own NULL (shared streams): nothing to do.
 */
void kv_ra_hit(struct kv_ra_stream *own, uint64_t end, size_t next_p)
{
	if (own && (own->next == KV_RA_NONE || end > own->next)) {
		own->next = end;
		own->next_p = next_p;
	}
}

/* ---- per table: a miss (STREAMS, GUESSES above) ------------------------------ */

/*
 * Classify a miss of the stored block [off, off + stored) (index entry
 * after it: next_p) against the streams s[0..n) (t->mu held). Returns the
 * span size to fetch with *which the stream it continues, or 0: no stream
 * continues. Then *which is the new stream started there (replacing
 * s[*victim]), or n when the miss was just behind a stream (none started).
 */
static uint64_t kv_ra_classify(struct kv_ra_table *t, struct kv_ra_stream *s, unsigned n,
			       unsigned *victim, uint64_t off, uint64_t stored, size_t next_p,
			       uint64_t max, unsigned *which)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (s[i].next != KV_RA_NONE && off >= s[i].next && off - s[i].next <= KV_RA_SLACK) {
			uint64_t w = s[i].win ? s[i].win * 2 : KV_RA_MIN;
			kv_ra_guess_score(t, 1);
			kv_ra_loose_end(t, &s[i]);
			s[i].guessed = 0;
			/* Past everything queued: those marks are stale. */
			s[i].nahead = 0;
			s[i].lo = off;
			atomic_store_explicit(&s[i].mark, KV_RA_NONE, memory_order_relaxed);
			*which = i;
			return w < max ? w : max;
		}
	}
	*which = n;
	/* Just behind a stream, or behind where its last span started by
	 * no more than the slack: a sequential read's reads that came out of
	 * order (the kernel sends several at once). */
	for (i = 0; i < n; i++) {
		if (s[i].next != KV_RA_NONE && off < s[i].next && off + KV_RA_SLACK >= s[i].lo)
			return 0;
	}
	i = *which = *victim;
	*victim = (i + 1) % n;
	if (s[i].guessed)
		kv_ra_guess_score(t, 0);
	s[i].guessed = 0;
	s[i].loose = 1;
	if (t->loose_misses < UINT_MAX)
		t->loose_misses++;
	s[i].lo = off;
	s[i].next = off + stored;
	s[i].next_p = next_p;
	s[i].win = 0;
	s[i].nahead = 0;
	atomic_store_explicit(&s[i].mark, KV_RA_NONE, memory_order_relaxed);
	return 0;
}

/*
 * kv_ra_miss - the read-ahead part of a cache miss on the stored block at
 * (off, size), whose index entry is at p (the next one at next_p), by
 * stream own (NULL: a point lookup, on t's shared streams): wait for a
 * span in flight that holds the block, or fetch a span starting with it
 * (and queue the one after it). Returns
 *   0 or an error: the span was fetched; *h (the caller's, pinned) and
 *     *blk are set exactly as fetching the block alone would set them
 *     (kv_sst_block_cache), and the error is what that would return;
 *   KV_RA_WAITED: a span in flight held the block and is done: look in
 *     the cache again (not there: the span or the block failed);
 *   KV_RA_ALONE: fetch the block alone.
 */
int kv_ra_miss(struct kv_ra_table *t, struct kv_ra_stream *own, uint64_t off, uint64_t size,
	       size_t p, size_t next_p, struct kv_cache_handle **h, struct kv_sst_block *blk)
{
	uint64_t stored = size + KV_SST_TRAILER_SIZE, max = kv_ra_max(t), win, len = 0;
	struct kv_ra_stream *s = own ? own : t->ra;
	unsigned nstreams = own ? 1 : KV_RA_STREAMS;
	uint32_t nb = 0;
	unsigned which = 0, own_victim = 0;
	size_t end_p = next_p;
	int slot = -1, rc;

	CHECK_RETURN(pthread_mutex_lock(&t->mu));
	if ((slot = kv_ra_inflight(t, off)) >= 0) {
		uint64_t id = t->slots[slot].id;
		while (t->slots[slot].hi && t->slots[slot].id == id)
			CHECK_RETURN(pthread_cond_wait(&t->cv, &t->mu));
		CHECK_RETURN(pthread_mutex_unlock(&t->mu));
		kv_ra_count(t->src.cache, 0, 0, 1);
		return KV_RA_WAITED;
	}
	win = kv_ra_classify(t, s, nstreams, own ? &own_victim : &t->victim, off, stored, next_p,
			     max, &which);
	if (win == 0) {
		/* GUESSES: a span while the cache has room and guesses pay;
		 * a new stream continues after it, and reading its second
		 * block confirms it and queues what follows (PREFETCH). */
		uint64_t g = t->guess < max ? t->guess : max;
		/* (A straggler, which == nstreams, is no new stream: alone.) */
		if (which < nstreams && g > stored && kv_ra_room(t->src.cache, (size_t)g) &&
		    (slot = kv_ra_span_take(t, p, off, g, 0, &len, &nb, &end_p)) >= 0) {
			s[which].next = off + len;
			s[which].next_p = end_p;
			s[which].win = len;
			s[which].guessed = 1;
			s[which].ahead[0] = off + stored;
			s[which].nahead = 1;
			atomic_store_explicit(&s[which].mark, off + stored, memory_order_relaxed);
		}
		kv_ra_warm(t);
	} else if (win > stored) {
		slot = kv_ra_span_take(t, p, off, win, 0, &len, &nb, &end_p);
		if (slot >= 0) {
			s[which].next = off + len;
			s[which].next_p = end_p;
		} else {                        /* too many spans out: this block alone */
			s[which].next = off + stored;
			s[which].next_p = next_p;
		}
		s[which].win = win;
		if (slot >= 0)
			kv_ra_prefetch(t, &s[which], max);
	}
	CHECK_RETURN(pthread_mutex_unlock(&t->mu));
	if (slot < 0)
		return KV_RA_ALONE;
	/* A guess (win == 0) is no evidence of a sequential read (READS FIRST). */
	rc = kv_ra_fetch(t, p, off, size, len, nb, win == 0 ? KV_RA_GUESS : kv_ra_kind(&s[which]),
			 h, blk);
	kv_ra_slot_done(t, slot);
	return rc;
}
