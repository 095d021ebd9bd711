/*
 * util_hist.c - fixed-bucket latency histograms (util.h, "latency
 * histograms").
 *
 * BUCKETS
 *   util_hist_bounds_ns are the upper bounds, inclusive as Prometheus'
 *   `le` is: a duration d lands in the first bucket whose bound is >= d,
 *   or in the last (+Inf) bucket past 10 s. The bounds are fixed so that
 *   histograms from different mounts and restarts can be added up.
 *
 * SHARDS
 *   Each thread picks a shard once (round robin over the threads that
 *   ever recorded) and keeps it in a thread-local. Counters are added
 *   with relaxed ordering: nothing is published through them, and a
 *   reader only needs each counter to be whole.
 */
#include "util/util.h"

#include <stdatomic.h>

const uint64_t util_hist_bounds_ns[UTIL_HIST_BOUNDS] = {
	10000, 25000, 50000,                        /* 10 us .. */
	100000, 250000, 500000,
	1000000, 2500000, 5000000,                  /* 1 ms .. */
	10000000, 25000000, 50000000,
	100000000, 250000000, 500000000,
	1000000000, 2500000000ull, 5000000000ull,   /* 1 s .. */
	10000000000ull,
};

static _Atomic unsigned util_hist_next_shard;
static _Thread_local unsigned util_hist_my_shard; /* 1 + shard, 0 = not chosen yet */

static unsigned util_hist_shard_of_thread(void)
{
	if (!util_hist_my_shard)
		util_hist_my_shard = 1 + atomic_fetch_add_explicit(&util_hist_next_shard, 1,
								   memory_order_relaxed) %
					     UTIL_HIST_SHARDS;
	return util_hist_my_shard - 1;
}

void util_hist_record(struct util_hist *h, uint64_t ns)
{
	struct util_hist_shard *s = &h->shard[util_hist_shard_of_thread()];
	unsigned lo = 0, hi = UTIL_HIST_BOUNDS;

	/* Binary search for the first bound >= ns (UTIL_HIST_BOUNDS: +Inf). */
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (util_hist_bounds_ns[mid] >= ns)
			hi = mid;
		else
			lo = mid + 1;
	}
	atomic_fetch_add_explicit(&s->bucket[lo], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum_ns, ns, memory_order_relaxed);
}

void util_hist_read(const struct util_hist *h, struct util_hist_snap *out)
{
	for (unsigned i = 0; i < UTIL_HIST_SHARDS; i++) {
		const struct util_hist_shard *s = &h->shard[i];
		for (unsigned b = 0; b <= UTIL_HIST_BOUNDS; b++) {
			uint64_t n = atomic_load_explicit(&s->bucket[b], memory_order_relaxed);
			out->bucket[b] += n;
			out->count += n;
		}
		out->sum_ns += atomic_load_explicit(&s->sum_ns, memory_order_relaxed);
	}
}
