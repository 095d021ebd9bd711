/*
 * objstore_bench.c - object store throughput: PUT and GET rates for a
 * given object size and concurrency, through the same backend stack the
 * engine uses (obj_open: retry + metrics over the base backend).
 *
 *   objstore_bench [-u URL] [-s SIZE[,SIZE...]] [-c CONC[,CONC...]]
 *                  [-n COUNT | -t SECONDS]
 *
 * SIZE accepts K/M suffixes. For each size and concurrency it PUTs COUNT
 * objects (or as many as fit in SECONDS), then GETs them back, verifies
 * their first and last bytes, deletes them, and prints one line:
 *
 *   url size conc op count seconds ops/s MiB/s
 *
 * Default: file:///tmp/shale-bench-objstore, sizes 4K,4M, concurrency 1,
 * 3 seconds per cell. This is a benchmark, not a test: it never fails on
 * speed, only on errors.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "objstore/objstore.h"
#include "util/util.h"

struct bench_cell {
	struct obj_backend *b;
	size_t size;
	unsigned conc;
	uint64_t count;                   /* fixed count, or 0 = timed */
	double seconds;
	const uint8_t *payload;
	char prefix[64];
	atomic_uint_fast64_t next;        /* next object index to claim */
	uint64_t limit;                   /* objects to GET (set after PUT) */
	uint64_t deadline_ns;
	atomic_int failed;
};

static uint64_t bench_claim(struct bench_cell *c, uint64_t limit)
{
	if (c->deadline_ns && util_now_ns() >= c->deadline_ns)
		return UINT64_MAX;
	uint64_t i = atomic_fetch_add(&c->next, 1);
	return i < limit ? i : UINT64_MAX;
}

static void *bench_put_thread(void *p)
{
	struct bench_cell *c = p;
	uint64_t i;
	while ((i = bench_claim(c, c->count ? c->count : UINT64_MAX - 1)) != UINT64_MAX) {
		char name[128];
		snprintf(name, sizeof(name), "%s%08llu", c->prefix, (unsigned long long)i);
		int rc = obj_put(c->b, name, c->payload, c->size);
		if (rc) {
			fprintf(stderr, "put %s: %s (%s)\n", name, util_strerror(rc), obj_last_error());
			atomic_store(&c->failed, 1);
			break;
		}
	}
	return NULL;
}

static void *bench_get_thread(void *p)
{
	struct bench_cell *c = p;
	uint64_t i;
	while ((i = bench_claim(c, c->limit)) != UINT64_MAX) {
		char name[128];
		void *buf = NULL;
		size_t len = 0;
		snprintf(name, sizeof(name), "%s%08llu", c->prefix, (unsigned long long)i);
		int rc = obj_get(c->b, name, 0, OBJ_WHOLE, &buf, &len);
		if (rc || len != c->size || (len && (((uint8_t *)buf)[0] != c->payload[0] ||
						     ((uint8_t *)buf)[len - 1] != c->payload[len - 1]))) {
			fprintf(stderr, "get %s: rc=%d len=%zu\n", name, rc, len);
			atomic_store(&c->failed, 1);
			free(buf);
			break;
		}
		free(buf);
	}
	return NULL;
}

static double bench_run(struct bench_cell *c, void *(*fn)(void *), uint64_t *done)
{
	pthread_t th[256];
	uint64_t t0 = util_now_ns();
	atomic_store(&c->next, 0);
	c->deadline_ns = c->count ? 0 : t0 + (uint64_t)(c->seconds * 1e9);
	for (unsigned i = 0; i < c->conc; i++)
		pthread_create(&th[i], NULL, fn, c);
	for (unsigned i = 0; i < c->conc; i++)
		pthread_join(th[i], NULL);
	double secs = (double)(util_now_ns() - t0) / 1e9;
	uint64_t n = atomic_load(&c->next);
	/* A claim is only made before the deadline, and always performed;
	 * claims past the limit are not. */
	uint64_t lim = fn == bench_put_thread ? (c->count ? c->count : n) : c->limit;
	if (n > lim)
		n = lim;
	*done = n;
	return secs;
}

static size_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (*end == 'K' || *end == 'k')
		v *= 1024;
	else if (*end == 'M' || *end == 'm')
		v *= 1024 * 1024;
	else if (*end == 'G' || *end == 'g')
		v *= 1024.0 * 1024 * 1024;
	return (size_t)v;
}

static void print_row(const char *url, size_t size, unsigned conc, const char *op, uint64_t n,
		      double secs)
{
	printf("%-40s %10zu %4u %-4s %7llu %8.3f %10.1f %9.1f\n", url, size, conc, op,
	       (unsigned long long)n, secs, (double)n / secs, (double)n * (double)size / secs / 1048576.0);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *url = "file:///tmp/shale-bench-objstore";
	char sizes[256] = "4K,4M", concs[256] = "1";
	uint64_t count = 0;
	double seconds = 3.0;
	struct obj_backend *b;
	struct obj_config conf = OBJ_CONFIG_INIT;
	int opt, rc;

	while ((opt = getopt(argc, argv, "u:s:c:n:t:h")) != -1) {
		switch (opt) {
		case 'u': url = optarg; break;
		case 's': snprintf(sizes, sizeof(sizes), "%s", optarg); break;
		case 'c': snprintf(concs, sizeof(concs), "%s", optarg); break;
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 't': seconds = strtod(optarg, NULL); break;
		default:
			fprintf(stderr, "usage: %s [-u URL] [-s SIZES] [-c CONCS] [-n COUNT | -t SECONDS]\n",
				argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	conf.create = 1;
	rc = obj_open(&b, url, &conf);
	if (rc) {
		fprintf(stderr, "objstore_bench: %s\n", obj_last_error());
		return 1;
	}
	printf("%-40s %10s %4s %-4s %7s %8s %10s %9s\n", "store", "size", "conc", "op", "count", "seconds",
	       "ops/s", "MiB/s");
	char *ssave = NULL, *s;
	for (s = strtok_r(sizes, ",", &ssave); s; s = strtok_r(NULL, ",", &ssave)) {
		size_t size = parse_size(s);
		uint8_t *payload = malloc(size ? size : 1);
		if (!payload)
			return 1;
		for (size_t i = 0; i < size; i++)
			payload[i] = (uint8_t)(i * 131 + 7);
		char cl[256], *csave = NULL, *cs;
		snprintf(cl, sizeof(cl), "%s", concs);
		for (cs = strtok_r(cl, ",", &csave); cs; cs = strtok_r(NULL, ",", &csave)) {
			struct bench_cell c = { .b = b, .size = size, .conc = (unsigned)atoi(cs),
						.count = count, .seconds = seconds, .payload = payload };
			uint64_t nput, nget;
			if (c.conc < 1 || c.conc > 256)
				c.conc = 1;
			snprintf(c.prefix, sizeof(c.prefix), "bench-%d-%zu-%u/", (int)getpid(), size, c.conc);
			double tput = bench_run(&c, bench_put_thread, &nput);
			c.limit = nput;
			c.count = nput;
			double tget = bench_run(&c, bench_get_thread, &nget);
			if (atomic_load(&c.failed)) {
				fprintf(stderr, "objstore_bench: errors, aborting\n");
				return 1;
			}
			print_row(url, size, c.conc, "put", nput, tput);
			print_row(url, size, c.conc, "get", nget, tget);
			for (uint64_t i = 0; i < nput; i++) {
				char name[128];
				snprintf(name, sizeof(name), "%s%08llu", c.prefix, (unsigned long long)i);
				obj_delete(b, name);
			}
		}
		free(payload);
	}
	obj_close(b);
	return 0;
}
