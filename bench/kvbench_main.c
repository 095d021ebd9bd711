/*
 * kvbench_main.c - the harness shared by kvbench_shale, kvbench_leveldb and
 * kvbench_rocksdb (see kvbench.h): options, workloads, accounting, output.
 *
 *   kvbench_<engine> --db=PATH [--benchmarks=LIST] [--num=N] [--reads=N]
 *       [--value-size=B] [--compression-ratio=R] [--cache-mb=M]
 *       [--write-buffer-mb=M] [--bloom-bits=B] [--seed=S]
 *       [--sample-ms=MS] [--rss-budget-mb=M] [--settle-quiet-ms=MS]
 *       [--settle-max-s=S] [--gc-ms=MS] [--sustained]
 *
 * BENCHMARKS (comma-separated, run in order, like db_bench)
 *   fillseq        fresh database; num puts, keys 0..num-1 in order
 *   fillrandom     fresh database; num puts, keys uniform in [0, num)
 *   overwrite      num puts, keys uniform in [0, num), over the existing db
 *   readrandom     `reads` gets, keys uniform in [0, num); call it after
 *                  `settle` for "after compaction"
 *   readrandom_l0  the same, named apart: run right after a fill, it reads
 *                  from the memtable and L0 before compaction caught up
 *   readseq        scan every entry in key order
 *   settle         wait until background compaction is idle: the engine
 *                  reports nothing pending, L0 is below its trigger and no
 *                  byte was written for --settle-quiet-ms
 *   compact        full compaction (compact_all), or `settle` for engines
 *                  without one
 *   space          store bytes (every file/object) / live bytes (entries
 *                  found by a scan x (key + value size)); with --gc-ms it
 *                  first closes, reopens with GC on, settles and waits
 *                  gc_ms + 3 s so GC can delete obsolete tables
 *   sustained      fillrandom of num keys (fresh) reporting the max L0
 *                  count and RSS sampled every --sample-ms, against the
 *                  engine's L0 limit and RSS budget. --sustained is
 *                  shorthand for --benchmarks=sustained.
 *
 * A fill phase (fillseq, fillrandom, sustained) anywhere in the list
 * closes the database, removes it and starts fresh; other phases open the
 * existing one.
 *
 * ACCOUNTING
 *   user bytes  ops x (16 + value size)
 *   wamp        bytes written / user bytes of the last write phase, where
 *               "bytes written" is wchar from /proc/self/io (bytes this
 *               process handed to write(2): the same meter for every
 *               engine) and, for engines that count it, their own store
 *               counter (engine_wamp). A `settle` or `compact` right after
 *               a write phase reports the total including the background
 *               work it waited for (wamp_settled).
 *   rss         peak RSS of the phase: VmHWM after resetting it through
 *               /proc/self/clear_refs at the start of the phase (Linux >=
 *               4.0); the last line is getrusage(ru_maxrss) of the process.
 *
 * Keys and values are the same bytes for every engine (fixed seeds).
 * Values follow db_bench: each is cut from a pool where every 100-byte
 * piece is compression_ratio random bytes repeated, so a compressor
 * halves them at the default 0.5.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/kvbench.h"
#include "util/util.h"

#define KVB_KEY_SIZE 16
#define KVB_POOL_BYTES (1u << 20)
#define KVB_MIB (1024.0 * 1024.0)

struct kvb_run {
	const struct kvb_engine *e;
	struct kvb_opts o;
	void *h;                          /* open database, or NULL */
	uint8_t *pool;                    /* value pool */
	size_t pool_pos;
	/* the last write phase, for wamp_settled */
	const char *last_write;
	uint64_t last_write_user;
	uint64_t last_write_wchar0;
	uint64_t last_write_store0;
	/* the sampler (every phase) */
	pthread_t sampler;
	int sampler_on;
	pthread_mutex_t mu;
	atomic_int sampler_stop;
	uint64_t max_l0;                  /* protected by mu */
	uint64_t max_rss;                 /* protected by mu */
	uint64_t samples;                 /* protected by mu */
};

static void kvb_die(const char *what, int rc)
{
	fprintf(stderr, "kvbench: %s: %s\n", what, rc < 0 ? util_strerror(rc) : "failed");
	exit(1);
}

/* ---- process meters ----------------------------------------------------- */

/* Bytes this process passed to write(2) so far (/proc/self/io wchar). */
static uint64_t kvb_wchar(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	uint64_t v = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "wchar: %" SCNu64, &v) == 1)
			break;
	fclose(f);
	return v;
}

static uint64_t kvb_status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	uint64_t v = 0;
	size_t n = strlen(field);
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':') {
			v = strtoull(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static uint64_t kvb_rss_bytes(void)
{
	return kvb_status_kb("VmRSS") * 1024;
}

/* Reset VmHWM to the current RSS; 0 on success. */
static int kvb_peak_reset(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	int rc = -1;
	if (fd >= 0) {
		rc = write(fd, "5", 1) == 1 ? 0 : -1;
		close(fd);
	}
	return rc;
}

static uint64_t kvb_maxrss_bytes(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (uint64_t)ru.ru_maxrss * 1024;
}

/* ---- keys and values ---------------------------------------------------- */

static void kvb_key(char *out, uint64_t k)
{
	char tmp[KVB_KEY_SIZE + 1];
	snprintf(tmp, sizeof(tmp), "%016" PRIu64, k);
	memcpy(out, tmp, KVB_KEY_SIZE);
}

static int kvb_pool_init(struct kvb_run *r)
{
	struct util_rand rnd;
	size_t piece = 100;
	size_t raw = (size_t)(piece * r->o.compression_ratio);
	size_t len = KVB_POOL_BYTES + r->o.value_size;

	if (raw < 1)
		raw = 1;
	if (raw > piece)
		raw = piece;
	r->pool = malloc(len + piece);
	if (!r->pool)
		return -ENOMEM;
	util_rand_seed(&rnd, 0x6b76626e63680001ull);
	for (size_t at = 0; at < len; at += piece) {
		uint8_t *p = r->pool + at;
		for (size_t i = 0; i < raw; i++)
			p[i] = (uint8_t)(' ' + util_rand_below(&rnd, 95));
		for (size_t i = raw; i < piece; i++)
			p[i] = p[i % raw];
	}
	return 0;
}

static const uint8_t *kvb_value(struct kvb_run *r)
{
	if (r->pool_pos + r->o.value_size > KVB_POOL_BYTES)
		r->pool_pos = 0;
	const uint8_t *v = r->pool + r->pool_pos;
	r->pool_pos += r->o.value_size;
	return v;
}

/* ---- the sampler thread -------------------------------------------------- */

static void kvb_sample_once(struct kvb_run *r)
{
	struct kvb_sample s;
	memset(&s, 0xff, sizeof(s));
	s.compaction_pending = -1;
	r->e->sample(r->h, &s);
	uint64_t rss = kvb_rss_bytes();
	pthread_mutex_lock(&r->mu);
	if (s.l0_count != UINT64_MAX && (r->max_l0 == UINT64_MAX || s.l0_count > r->max_l0))
		r->max_l0 = s.l0_count;
	if (rss > r->max_rss)
		r->max_rss = rss;
	r->samples++;
	pthread_mutex_unlock(&r->mu);
}

static void *kvb_sampler_main(void *p)
{
	struct kvb_run *r = p;
	uint64_t period = (uint64_t)r->o.sample_ms * 1000000;
	uint64_t next = util_now_ns() + period;
	while (!atomic_load(&r->sampler_stop)) {
		uint64_t now = util_now_ns();
		if (now < next) {
			util_sleep_ns(next - now < 20000000 ? next - now : 20000000);
			continue;
		}
		next += period;
		kvb_sample_once(r);
	}
	return NULL;
}

static void kvb_sampler_start(struct kvb_run *r)
{
	pthread_mutex_lock(&r->mu);
	r->max_l0 = UINT64_MAX;
	r->max_rss = 0;
	r->samples = 0;
	pthread_mutex_unlock(&r->mu);
	kvb_sample_once(r);
	atomic_store(&r->sampler_stop, 0);
	if (pthread_create(&r->sampler, NULL, kvb_sampler_main, r))
		kvb_die("pthread_create", -EAGAIN);
	r->sampler_on = 1;
}

static void kvb_sampler_stop(struct kvb_run *r)
{
	if (!r->sampler_on)
		return;
	atomic_store(&r->sampler_stop, 1);
	pthread_join(r->sampler, NULL);
	r->sampler_on = 0;
	kvb_sample_once(r);
}

/* ---- phases ---------------------------------------------------------------- */

struct kvb_phase {
	const char *name;
	uint64_t t0;
	uint64_t wchar0;
	uint64_t store0;
	int peak_ok;
};

static uint64_t kvb_store_written(struct kvb_run *r)
{
	struct kvb_sample s;
	memset(&s, 0xff, sizeof(s));
	r->e->sample(r->h, &s);
	return s.store_bytes_written;
}

static void kvb_open(struct kvb_run *r, int fresh)
{
	char err[512] = "";
	if (r->h)
		return;
	int rc = r->e->open(&r->h, &r->o, fresh, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "kvbench: %s: open %s: %s\n", r->e->name, r->o.db, err);
		exit(1);
	}
}

static void kvb_close(struct kvb_run *r)
{
	if (!r->h)
		return;
	int rc = r->e->close(r->h);
	r->h = NULL;
	if (rc)
		kvb_die("close", rc);
}

static void kvb_phase_begin(struct kvb_run *r, struct kvb_phase *p, const char *name)
{
	p->name = name;
	p->peak_ok = kvb_peak_reset() == 0;
	kvb_sampler_start(r);
	p->wchar0 = kvb_wchar();
	p->store0 = kvb_store_written(r);
	p->t0 = util_now_ns();
}

/*
 * Print the result line of a phase. ops/bytes: what the phase did (bytes
 * = user bytes moved, for MiB/s); write = 1 for write phases (wamp).
 * extra: more key=value text, may be "".
 */
static void kvb_phase_end(struct kvb_run *r, struct kvb_phase *p, uint64_t ops, uint64_t bytes,
			  int write, const char *extra)
{
	double secs = (double)(util_now_ns() - p->t0) / 1e9;
	uint64_t wchar = kvb_wchar() - p->wchar0;
	uint64_t store1 = kvb_store_written(r);
	kvb_sampler_stop(r);
	uint64_t peak = p->peak_ok ? kvb_status_kb("VmHWM") * 1024 : kvb_maxrss_bytes();

	printf("kvbench engine=%s bench=%s ops=%" PRIu64 " secs=%.3f ops_s=%.0f mib_s=%.2f",
	       r->e->name, p->name, ops, secs, secs > 0 ? ops / secs : 0.0,
	       secs > 0 ? bytes / KVB_MIB / secs : 0.0);
	printf(" wchar_bytes=%" PRIu64, wchar);
	if (write && bytes) {
		printf(" user_bytes=%" PRIu64 " wamp=%.3f", bytes, (double)wchar / bytes);
		if (store1 != UINT64_MAX && p->store0 != UINT64_MAX)
			printf(" engine_wamp=%.3f", (double)(store1 - p->store0) / bytes);
		r->last_write = p->name;
		r->last_write_user = bytes;
		r->last_write_wchar0 = p->wchar0;
		r->last_write_store0 = p->store0;
	}
	pthread_mutex_lock(&r->mu);
	if (r->max_l0 != UINT64_MAX)
		printf(" l0_max_seen=%" PRIu64, r->max_l0);
	printf(" rss_sampled_max_mib=%.1f", r->max_rss / KVB_MIB);
	pthread_mutex_unlock(&r->mu);
	printf(" peak_rss_mib=%.1f%s%s\n", peak / KVB_MIB, *extra ? " " : "", extra);
	fflush(stdout);
}

static void kvb_fill(struct kvb_run *r, const char *name, int seq, uint64_t seed)
{
	struct kvb_phase p;
	struct util_rand rnd;
	char key[KVB_KEY_SIZE];
	char extra[512] = "";

	kvb_close(r);
	int rc = r->e->destroy(&r->o);
	if (rc)
		kvb_die("destroy", rc);
	kvb_open(r, 1);
	util_rand_seed(&rnd, seed);
	kvb_phase_begin(r, &p, name);
	for (uint64_t i = 0; i < r->o.num; i++) {
		kvb_key(key, seq ? i : util_rand_below(&rnd, r->o.num));
		rc = r->e->put(r->h, key, KVB_KEY_SIZE, kvb_value(r), r->o.value_size);
		if (rc)
			kvb_die("put", rc);
	}
	if (!strcmp(name, "sustained")) {
		struct kvb_sample s;
		char why[256] = "";
		size_t budget = r->o.rss_budget;
		memset(&s, 0xff, sizeof(s));
		r->e->sample(r->h, &s);
		if (!budget && r->e->rss_budget)
			budget = r->e->rss_budget(r->h, &r->o, why, sizeof(why));
		pthread_mutex_lock(&r->mu);
		uint64_t ml0 = r->max_l0, mrss = r->max_rss;
		pthread_mutex_unlock(&r->mu);
		snprintf(extra, sizeof(extra),
			 "l0_limit=%" PRIu64 " l0_ok=%s rss_budget_mib=%.1f rss_ok=%s budget=\"%s\"",
			 s.l0_limit, s.l0_limit == UINT64_MAX || ml0 == UINT64_MAX ? "unknown" :
			 ml0 <= s.l0_limit ? "yes" : "no", budget / KVB_MIB,
			 !budget ? "unknown" : mrss <= budget ? "yes" : "no", why);
	}
	kvb_phase_end(r, &p, r->o.num, r->o.num * (KVB_KEY_SIZE + r->o.value_size), 1, extra);
}

static void kvb_overwrite(struct kvb_run *r, uint64_t seed)
{
	struct kvb_phase p;
	struct util_rand rnd;
	char key[KVB_KEY_SIZE];

	kvb_open(r, 0);
	util_rand_seed(&rnd, seed);
	kvb_phase_begin(r, &p, "overwrite");
	for (uint64_t i = 0; i < r->o.num; i++) {
		kvb_key(key, util_rand_below(&rnd, r->o.num));
		int rc = r->e->put(r->h, key, KVB_KEY_SIZE, kvb_value(r), r->o.value_size);
		if (rc)
			kvb_die("put", rc);
	}
	kvb_phase_end(r, &p, r->o.num, r->o.num * (KVB_KEY_SIZE + r->o.value_size), 1, "");
}

static void kvb_readrandom(struct kvb_run *r, const char *name, uint64_t seed)
{
	struct kvb_phase p;
	struct util_rand rnd;
	struct kvb_sample s;
	char key[KVB_KEY_SIZE];
	char extra[128];
	uint64_t found = 0, bytes = 0;

	kvb_open(r, 0);
	memset(&s, 0xff, sizeof(s));
	r->e->sample(r->h, &s);
	util_rand_seed(&rnd, seed);
	kvb_phase_begin(r, &p, name);
	for (uint64_t i = 0; i < r->o.reads; i++) {
		size_t vlen = 0;
		kvb_key(key, util_rand_below(&rnd, r->o.num));
		int rc = r->e->get(r->h, key, KVB_KEY_SIZE, &vlen);
		if (rc < 0)
			kvb_die("get", rc);
		if (rc) {
			found++;
			bytes += KVB_KEY_SIZE + vlen;
		}
	}
	snprintf(extra, sizeof(extra), "found=%" PRIu64 " l0_at_start=%" PRId64, found,
		 s.l0_count == UINT64_MAX ? (int64_t)-1 : (int64_t)s.l0_count);
	kvb_phase_end(r, &p, r->o.reads, bytes, 0, extra);
}

static void kvb_readseq(struct kvb_run *r)
{
	struct kvb_phase p;
	uint64_t n = 0, bytes = 0;

	kvb_open(r, 0);
	kvb_phase_begin(r, &p, "readseq");
	int rc = r->e->scan(r->h, &n, &bytes);
	if (rc)
		kvb_die("scan", rc);
	kvb_phase_end(r, &p, n, bytes, 0, "");
}

/*
 * Wait until the engine is idle: nothing pending by its own account, L0
 * below its trigger, and no byte written for settle_quiet_ms.
 */
static int kvb_wait_idle(struct kvb_run *r)
{
	uint64_t deadline = util_now_ns() + (uint64_t)r->o.settle_max_s * 1000000000ull;
	uint64_t quiet_ns = (uint64_t)r->o.settle_quiet_ms * 1000000;
	uint64_t last_w = kvb_wchar(), since = util_now_ns();
	for (;;) {
		struct kvb_sample s;
		memset(&s, 0xff, sizeof(s));
		s.compaction_pending = -1;
		util_sleep_ns(100000000);
		r->e->sample(r->h, &s);
		uint64_t w = kvb_wchar(), now = util_now_ns();
		if (w != last_w || s.compaction_pending == 1 ||
		    (s.l0_count != UINT64_MAX && s.l0_trigger != UINT64_MAX &&
		     s.l0_count >= s.l0_trigger)) {
			last_w = w;
			since = now;
		}
		if (now - since >= quiet_ns)
			return 0;
		if (now >= deadline)
			return -ETIMEDOUT;
	}
}

static void kvb_settle(struct kvb_run *r, const char *name, int full)
{
	struct kvb_phase p;
	char extra[256];
	int rc;

	kvb_open(r, 0);
	kvb_phase_begin(r, &p, name);
	if (full && r->e->compact_all) {
		rc = r->e->compact_all(r->h);
		if (rc)
			kvb_die("compact", rc);
	}
	rc = kvb_wait_idle(r);
	/* the quiet period is not work: leave it out of secs */
	p.t0 += (uint64_t)r->o.settle_quiet_ms * 1000000;
	struct kvb_sample s;
	memset(&s, 0xff, sizeof(s));
	r->e->sample(r->h, &s);
	int len = snprintf(extra, sizeof(extra), "timed_out=%s l0_after=%" PRId64 " full=%s",
			   rc ? "yes" : "no",
			   s.l0_count == UINT64_MAX ? (int64_t)-1 : (int64_t)s.l0_count,
			   full && r->e->compact_all ? "compact_range" : "settle");
	if (r->last_write) {
		uint64_t w = kvb_wchar() - r->last_write_wchar0;
		len += snprintf(extra + len, sizeof(extra) - (size_t)len,
				" after=%s wamp_settled=%.3f", r->last_write,
				(double)w / r->last_write_user);
		if (s.store_bytes_written != UINT64_MAX && r->last_write_store0 != UINT64_MAX)
			snprintf(extra + len, sizeof(extra) - (size_t)len, " engine_wamp_settled=%.3f",
				 (double)(s.store_bytes_written - r->last_write_store0) /
					 r->last_write_user);
	}
	kvb_phase_end(r, &p, 0, 0, 0, extra);
}

static void kvb_space(struct kvb_run *r)
{
	struct kvb_phase p;
	uint64_t n = 0, bytes = 0, store = 0;
	char extra[256];

	if (r->o.gc_ms) {                 /* reopen with GC on; let it collect */
		kvb_close(r);
		r->o.gc_now = 1;
		kvb_open(r, 0);
		if (kvb_wait_idle(r))
			fprintf(stderr, "kvbench: space: engine not idle after reopen\n");
		util_sleep_ns(((uint64_t)r->o.gc_ms + 3000) * 1000000);
	}
	kvb_open(r, 0);
	kvb_phase_begin(r, &p, "space");
	int rc = r->e->scan(r->h, &n, &bytes);
	if (rc)
		kvb_die("scan", rc);
	rc = r->e->store_bytes(r->h, &r->o, &store);
	if (rc)
		kvb_die("store size", rc);
	snprintf(extra, sizeof(extra),
		 "live_entries=%" PRIu64 " live_bytes=%" PRIu64 " store_bytes=%" PRIu64
		 " space_amp=%.3f compression_ratio=%.2f",
		 n, bytes, store, bytes ? (double)store / bytes : 0.0, r->o.compression_ratio);
	kvb_phase_end(r, &p, n, bytes, 0, extra);
}

/* ---- options ---------------------------------------------------------------- */

static void kvb_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s --db=PATH [--benchmarks=LIST] [--num=N] [--reads=N]\n"
		"  [--value-size=B] [--compression-ratio=R] [--cache-mb=M] [--write-buffer-mb=M]\n"
		"  [--bloom-bits=B] [--seed=S] [--sample-ms=MS] [--rss-budget-mb=M]\n"
		"  [--settle-quiet-ms=MS] [--settle-max-s=S] [--gc-ms=MS] [--sustained]\n"
		"LIST: fillseq,fillrandom,overwrite,readrandom,readrandom_l0,readseq,\n"
		"      settle,compact,space,sustained (see bench/kvbench_main.c)\n",
		prog);
}

static int kvb_opt(const char *arg, const char *name, const char **val)
{
	size_t n = strlen(name);
	if (strncmp(arg, name, n) || arg[n] != '=')
		return 0;
	*val = arg + n + 1;
	return 1;
}

int kvb_main(int argc, char **argv, const struct kvb_engine *e)
{
	struct kvb_run r;
	const char *benchmarks = "fillseq,fillrandom,overwrite,readrandom,readseq";
	const char *v;
	int reads_set = 0;

	memset(&r, 0, sizeof(r));
	r.e = e;
	r.o.num = 1000000;
	r.o.value_size = 100;
	r.o.compression_ratio = 0.5;
	r.o.cache_bytes = 64u << 20;
	r.o.write_buffer_bytes = 64u << 20;
	r.o.bloom_bits = 10;
	r.o.seed = 301;
	r.o.sample_ms = 1000;
	r.o.settle_quiet_ms = 2000;
	r.o.settle_max_s = 600;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (kvb_opt(a, "--db", &v))
			r.o.db = v;
		else if (kvb_opt(a, "--benchmarks", &v))
			benchmarks = v;
		else if (kvb_opt(a, "--num", &v))
			r.o.num = strtoull(v, NULL, 10);
		else if (kvb_opt(a, "--reads", &v)) {
			r.o.reads = strtoull(v, NULL, 10);
			reads_set = 1;
		} else if (kvb_opt(a, "--value-size", &v))
			r.o.value_size = strtoull(v, NULL, 10);
		else if (kvb_opt(a, "--compression-ratio", &v))
			r.o.compression_ratio = strtod(v, NULL);
		else if (kvb_opt(a, "--cache-mb", &v))
			r.o.cache_bytes = (size_t)strtoull(v, NULL, 10) << 20;
		else if (kvb_opt(a, "--write-buffer-mb", &v))
			r.o.write_buffer_bytes = (size_t)strtoull(v, NULL, 10) << 20;
		else if (kvb_opt(a, "--bloom-bits", &v))
			r.o.bloom_bits = atoi(v);
		else if (kvb_opt(a, "--seed", &v))
			r.o.seed = strtoull(v, NULL, 10);
		else if (kvb_opt(a, "--sample-ms", &v))
			r.o.sample_ms = (unsigned)strtoul(v, NULL, 10);
		else if (kvb_opt(a, "--rss-budget-mb", &v))
			r.o.rss_budget = (size_t)strtoull(v, NULL, 10) << 20;
		else if (kvb_opt(a, "--settle-quiet-ms", &v))
			r.o.settle_quiet_ms = (unsigned)strtoul(v, NULL, 10);
		else if (kvb_opt(a, "--settle-max-s", &v))
			r.o.settle_max_s = (unsigned)strtoul(v, NULL, 10);
		else if (kvb_opt(a, "--gc-ms", &v))
			r.o.gc_ms = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--sustained"))
			benchmarks = "sustained";
		else {
			kvb_usage(argv[0]);
			return 2;
		}
	}
	if (!r.o.db || !r.o.num || !r.o.value_size || !r.o.sample_ms ||
	    r.o.value_size > KVB_POOL_BYTES) {
		kvb_usage(argv[0]);
		return 2;
	}
	if (!reads_set)
		r.o.reads = r.o.num;
	pthread_mutex_init(&r.mu, NULL);
	if (kvb_pool_init(&r))
		kvb_die("value pool", -ENOMEM);

	char *list = strdup(benchmarks);
	if (!list)
		kvb_die("strdup", -ENOMEM);
	int described = 0;
	uint64_t seed = r.o.seed;
	char *save = NULL;
	for (char *b = strtok_r(list, ",", &save); b; b = strtok_r(NULL, ",", &save)) {
		seed++;                   /* each phase its own key order, same for every engine */
		if (!strcmp(b, "fillseq"))
			kvb_fill(&r, b, 1, seed);
		else if (!strcmp(b, "fillrandom") || !strcmp(b, "sustained"))
			kvb_fill(&r, b, 0, seed);
		else if (!strcmp(b, "overwrite"))
			kvb_overwrite(&r, seed);
		else if (!strcmp(b, "readrandom") || !strcmp(b, "readrandom_l0"))
			kvb_readrandom(&r, b, seed);
		else if (!strcmp(b, "readseq"))
			kvb_readseq(&r);
		else if (!strcmp(b, "settle"))
			kvb_settle(&r, b, 0);
		else if (!strcmp(b, "compact"))
			kvb_settle(&r, b, 1);
		else if (!strcmp(b, "space"))
			kvb_space(&r);
		else {
			fprintf(stderr, "kvbench: unknown benchmark %s\n", b);
			kvb_usage(argv[0]);
			return 2;
		}
		if (!described && r.h) {
			e->describe(r.h, &r.o, stdout);
			described = 1;
		}
	}
	free(list);
	kvb_close(&r);
	printf("kvbench engine=%s bench=process ru_maxrss_mib=%.1f\n", e->name,
	       kvb_maxrss_bytes() / KVB_MIB);
	free(r.pool);
	pthread_mutex_destroy(&r.mu);
	return 0;
}

/* ---- helpers for directory-based engines ------------------------------------ */

static int kvb_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP ? rmdir(path) : unlink(path))
		return errno ? -errno : -EIO;
	return 0;
}

int kvb_dir_remove(const char *dir)
{
	struct stat st;
	if (lstat(dir, &st) && errno == ENOENT)
		return 0;
	int rc = nftw(dir, kvb_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc > 0 ? -EIO : rc;
}

static _Thread_local uint64_t kvb_du_sum;

static int kvb_du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F)
		kvb_du_sum += (uint64_t)st->st_size;
	return 0;
}

int kvb_dir_bytes(const char *dir, uint64_t *out)
{
	kvb_du_sum = 0;
	if (nftw(dir, kvb_du_one, 16, FTW_PHYS))
		return errno ? -errno : -EIO;
	*out = kvb_du_sum;
	return 0;
}
