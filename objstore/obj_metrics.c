/*
 * obj_metrics.c - the metrics wrapper: counts every request that reaches
 * the store (retries included, since it sits below the retry wrapper),
 * bytes each way, errors, and latency: min/avg/max in microseconds, which
 * `shalefs stats` prints, and a histogram per operation and status class
 * (util_hist), which obj_latency hands to the Prometheus exporter.
 *
 * THREADING
 *   Lock-free: atomics only. min/max use compare-exchange loops.
 */
#include "objstore/objstore_int.h"
#include "util/util.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How a request ended, for the histograms (obj_latency names them). */
enum metrics_status {
	METRICS_OK,
	METRICS_NOT_FOUND,                /* -ENOENT */
	METRICS_CONFLICT,                 /* -EEXIST */
	METRICS_ERROR,
	METRICS_STATUS_COUNT
};
static const char *const metrics_status_names[METRICS_STATUS_COUNT] = {
	"ok", "not_found", "conflict", "error",
};

struct op_metrics {
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t errors;
	atomic_uint_fast64_t bytes;
	atomic_uint_fast64_t lat_sum_us;
	atomic_uint_fast64_t lat_min_us;
	atomic_uint_fast64_t lat_max_us;
	struct util_hist lat[METRICS_STATUS_COUNT];
};

struct obj_metrics {
	struct obj_wrapper w;             /* must be first */
	struct op_metrics ops[OBJ_OP_COUNT];
};

#define METRICS_INNER(b) (((struct obj_wrapper *)(b))->inner)

static void metrics_record(struct obj_backend *b, enum obj_op op, uint64_t start_ns, int rc,
			   uint64_t bytes)
{
	struct op_metrics *m = &((struct obj_metrics *)b)->ops[op];
	uint64_t ns = util_now_ns() - start_ns, us = ns / 1000, cur;
	enum metrics_status st = rc == 0 ? METRICS_OK : rc == -ENOENT ? METRICS_NOT_FOUND :
				 rc == -EEXIST ? METRICS_CONFLICT : METRICS_ERROR;

	atomic_fetch_add(&m->count, 1);
	/* Expected outcomes are not errors: a missing object on get/head, a
	 * lost race on put_if_absent. */
	if (rc && rc != -ENOENT && rc != -EEXIST)
		atomic_fetch_add(&m->errors, 1);
	atomic_fetch_add(&m->bytes, bytes);
	atomic_fetch_add(&m->lat_sum_us, us);
	cur = atomic_load(&m->lat_min_us);
	while ((cur == 0 || us < cur) && !atomic_compare_exchange_weak(&m->lat_min_us, &cur, us ? us : 1))
		;
	cur = atomic_load(&m->lat_max_us);
	while (us > cur && !atomic_compare_exchange_weak(&m->lat_max_us, &cur, us))
		;
	util_hist_record(&m->lat[st], ns);
}

static int obj_metrics__get(struct obj_backend *b, const char *name, uint64_t off, uint64_t len,
			    void **out, size_t *out_len)
{
	uint64_t t = util_now_ns();
	int rc = METRICS_INNER(b)->get(METRICS_INNER(b), name, off, len, out, out_len);
	metrics_record(b, OBJ_OP_GET, t, rc, rc ? 0 : *out_len);
	return rc;
}

static int obj_metrics__head(struct obj_backend *b, const char *name, struct obj_stat *st)
{
	uint64_t t = util_now_ns();
	int rc = METRICS_INNER(b)->head(METRICS_INNER(b), name, st);
	metrics_record(b, OBJ_OP_HEAD, t, rc, 0);
	return rc;
}

/* Both writes, timed and counted with their length; put is the inner
 * backend's put or put_if_absent. */
static int metrics_put(struct obj_backend *b, enum obj_op op,
		       int (*put)(struct obj_backend *, const char *, const void *, size_t,
				  const char *),
		       const char *name, const void *data, size_t len, const char *token)
{
	uint64_t t = util_now_ns();
	int rc = put(METRICS_INNER(b), name, data, len, token);
	metrics_record(b, op, t, rc, len);
	return rc;
}

static int obj_metrics__put(struct obj_backend *b, const char *name, const void *data,
			    size_t len, const char *token)
{
	return metrics_put(b, OBJ_OP_PUT, METRICS_INNER(b)->put, name, data, len, token);
}

static int obj_metrics__put_if_absent(struct obj_backend *b, const char *name, const void *data,
				      size_t len, const char *token)
{
	return metrics_put(b, OBJ_OP_PUT_IF_ABSENT, METRICS_INNER(b)->put_if_absent, name, data,
			   len, token);
}

static int obj_metrics__del(struct obj_backend *b, const char *name)
{
	uint64_t t = util_now_ns();
	int rc = METRICS_INNER(b)->del(METRICS_INNER(b), name);
	metrics_record(b, OBJ_OP_DELETE, t, rc, 0);
	return rc;
}

static int obj_metrics__list(struct obj_backend *b, const char *prefix, const char *start_after,
			     size_t max, struct obj_list **out)
{
	uint64_t t = util_now_ns();
	int rc = METRICS_INNER(b)->list(METRICS_INNER(b), prefix, start_after, max, out);
	metrics_record(b, OBJ_OP_LIST, t, rc, 0);
	return rc;
}

static int obj_metrics__del_many(struct obj_backend *b, const char *const *names, size_t count)
{
	uint64_t t = util_now_ns();
	int rc = METRICS_INNER(b)->del_many(METRICS_INNER(b), names, count);
	metrics_record(b, OBJ_OP_DELETE, t, rc, 0);
	return rc;
}

static void obj_metrics__stats(struct obj_backend *b, obj_stat_emit_fn emit, void *arg)
{
	struct obj_metrics *mx = (struct obj_metrics *)b;
	uint64_t req = 0, err = 0, bytes_put = 0, bytes_got = 0;
	char key[80];

	for (int op = 0; op < OBJ_OP_COUNT; op++) {
		struct op_metrics *m = &mx->ops[op];
		uint64_t n = atomic_load(&m->count);
		const char *nm = obj_op_names[op];
		req += n;
		err += atomic_load(&m->errors);
		if (op == OBJ_OP_GET)
			bytes_got += atomic_load(&m->bytes);
		if (op == OBJ_OP_PUT || op == OBJ_OP_PUT_IF_ABSENT)
			bytes_put += atomic_load(&m->bytes);
		snprintf(key, sizeof(key), "objstore_%s_requests", nm);
		emit(arg, key, n);
		snprintf(key, sizeof(key), "objstore_%s_errors", nm);
		emit(arg, key, atomic_load(&m->errors));
		snprintf(key, sizeof(key), "objstore_%s_latency_us_min", nm);
		emit(arg, key, atomic_load(&m->lat_min_us));
		snprintf(key, sizeof(key), "objstore_%s_latency_us_avg", nm);
		emit(arg, key, n ? atomic_load(&m->lat_sum_us) / n : 0);
		snprintf(key, sizeof(key), "objstore_%s_latency_us_max", nm);
		emit(arg, key, atomic_load(&m->lat_max_us));
	}
	emit(arg, "objstore_requests", req);
	emit(arg, "objstore_errors", err);
	emit(arg, "objstore_bytes_put", bytes_put);
	emit(arg, "objstore_bytes_got", bytes_got);
	obj_stats(mx->w.inner, emit, arg);
}

void obj_latency(struct obj_backend *b, obj_hist_emit_fn emit, void *arg)
{
	struct obj_metrics *mx;

	while (b && !(b->kind && !strcmp(b->kind, "metrics")))
		b = obj_wrapper_inner(b);
	if (!b)
		return;
	mx = (struct obj_metrics *)b;
	for (int op = 0; op < OBJ_OP_COUNT; op++) {
		for (int st = 0; st < METRICS_STATUS_COUNT; st++) {
			struct util_hist_snap h = { .count = 0 };
			util_hist_read(&mx->ops[op].lat[st], &h);
			if (st == METRICS_OK || h.count)
				emit(arg, obj_op_names[op], metrics_status_names[st], &h);
		}
	}
}

static void obj_metrics__free(struct obj_backend *b)
{
	obj_close(METRICS_INNER(b));
	free(b);
}

int obj_metrics_create(struct obj_backend **out, struct obj_backend *inner)
{
	struct obj_metrics *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->w.inner = inner;
	m->w.base.version = OBJ_BACKEND_VERSION;
	m->w.base.kind = "metrics";
	m->w.base.get = obj_metrics__get;
	m->w.base.head = obj_metrics__head;
	m->w.base.put = obj_metrics__put;
	m->w.base.put_if_absent = obj_metrics__put_if_absent;
	m->w.base.del = obj_metrics__del;
	m->w.base.list = obj_metrics__list;
	/* Only a backend with a batch delete gets one: otherwise callers
	 * delete name by name through every layer (and are counted so). */
	m->w.base.del_many = inner->del_many ? obj_metrics__del_many : NULL;
	m->w.base.stats = obj_metrics__stats;
	m->w.base.free = obj_metrics__free;
	*out = &m->w.base;
	return 0;
}
