/*
 * obj_metrics.c - the metrics wrapper: counts every request that reaches
 * the store (retries included, since it sits below the retry wrapper),
 * bytes each way, errors, and latency: min/avg/max in microseconds, which
 * `shalefs stats` prints, and a histogram per operation and status class
 * (util_hist), which obj_latency hands to the Prometheus exporter.
 *
 * PURPOSE
 *   Each request is also counted by purpose and billing class
 *   (obj_cost_purpose, obj_cost_class: objstore.h), with its bytes: the
 *   counts obj_cost_stats (below, THE ESTIMATE) turns into money, and the
 *   purpose_<p>_* keys of obj_stats. The prices live here, with the
 *   counts they apply to.
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

struct purpose_metrics {
	atomic_uint_fast64_t req[OBJ_CLASS_COUNT];
	atomic_uint_fast64_t bytes_put, bytes_got;
};

struct obj_metrics {
	struct obj_wrapper w;             /* must be first */
	struct op_metrics ops[OBJ_OP_COUNT];
	struct purpose_metrics purpose[OBJ_PURPOSE_COUNT];
	uint64_t born_ns;                 /* util_now_ns at create */
	atomic_uint_fast64_t price_put_nusd, price_get_nusd, price_gib_month_nusd;
};

#define METRICS_INNER(b) (((struct obj_wrapper *)(b))->inner)

static void metrics_record(struct obj_backend *b, enum obj_op op, const char *name,
			   uint64_t start_ns, int rc, uint64_t bytes)
{
	struct op_metrics *m = &((struct obj_metrics *)b)->ops[op];
	struct purpose_metrics *pm =
		&((struct obj_metrics *)b)->purpose[obj_cost_purpose(obj_purpose_get(), op, name)];
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
	/* Every request is billed, a failed one too. */
	atomic_fetch_add(&pm->req[obj_cost_class(op)], 1);
	if (op == OBJ_OP_GET)
		atomic_fetch_add(&pm->bytes_got, bytes);
	else if (op == OBJ_OP_PUT || op == OBJ_OP_PUT_IF_ABSENT)
		atomic_fetch_add(&pm->bytes_put, bytes);
}

static int obj_metrics__get(struct obj_backend *b, const char *name, uint64_t off, uint64_t len,
			    void **out, size_t *out_len)
{
	uint64_t t = util_now_ns();
	int rc = METRICS_INNER(b)->get(METRICS_INNER(b), name, off, len, out, out_len);
	metrics_record(b, OBJ_OP_GET, name, t, rc, rc ? 0 : *out_len);
	return rc;
}

static int obj_metrics__head(struct obj_backend *b, const char *name, struct obj_stat *st)
{
	uint64_t t = util_now_ns();
	int rc = METRICS_INNER(b)->head(METRICS_INNER(b), name, st);
	metrics_record(b, OBJ_OP_HEAD, name, t, rc, 0);
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
	metrics_record(b, op, name, t, rc, len);
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
	metrics_record(b, OBJ_OP_DELETE, name, t, rc, 0);
	return rc;
}

static int obj_metrics__list(struct obj_backend *b, const char *prefix, const char *start_after,
			     size_t max, struct obj_list **out)
{
	uint64_t t = util_now_ns();
	int rc = METRICS_INNER(b)->list(METRICS_INNER(b), prefix, start_after, max, out);
	metrics_record(b, OBJ_OP_LIST, prefix, t, rc, 0);
	return rc;
}

static int obj_metrics__del_many(struct obj_backend *b, const char *const *names, size_t count)
{
	uint64_t t = util_now_ns();
	int rc = METRICS_INNER(b)->del_many(METRICS_INNER(b), names, count);
	metrics_record(b, OBJ_OP_DELETE, count ? names[0] : NULL, t, rc, 0);
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
	{
		static const char *const cls[OBJ_CLASS_COUNT] = { "put_class", "get_class", "delete" };
		uint64_t sum[OBJ_CLASS_COUNT] = { 0 };
		/* From 1: a request always has a purpose (obj_cost_purpose). */
		for (int p = 1; p < OBJ_PURPOSE_COUNT; p++) {
			struct purpose_metrics *pm = &mx->purpose[p];
			const char *pn = obj_purpose_names[p];
			for (int c = 0; c < OBJ_CLASS_COUNT; c++) {
				uint64_t n = atomic_load(&pm->req[c]);
				sum[c] += n;
				snprintf(key, sizeof(key), "purpose_%s_%s_requests", pn, cls[c]);
				emit(arg, key, n);
			}
			snprintf(key, sizeof(key), "purpose_%s_put_bytes", pn);
			emit(arg, key, atomic_load(&pm->bytes_put));
			snprintf(key, sizeof(key), "purpose_%s_get_bytes", pn);
			emit(arg, key, atomic_load(&pm->bytes_got));
		}
		for (int c = 0; c < OBJ_CLASS_COUNT; c++) {
			snprintf(key, sizeof(key), "class_%s_requests", cls[c]);
			emit(arg, key, sum[c]);
		}
	}
	obj_stats(mx->w.inner, emit, arg);
}

struct obj_backend *obj_metrics_find(struct obj_backend *b)
{
	while (b && !(b->kind && !strcmp(b->kind, "metrics")))
		b = obj_wrapper_inner(b);
	return b;
}

void obj_cost_set_prices(struct obj_backend *b, const struct obj_prices *p)
{
	struct obj_metrics *mx = (struct obj_metrics *)obj_metrics_find(b);

	if (!mx)
		return;
	atomic_store(&mx->price_put_nusd, p->put_nusd);
	atomic_store(&mx->price_get_nusd, p->get_nusd);
	atomic_store(&mx->price_gib_month_nusd, p->gib_month_nusd);
}

/*
 * THE ESTIMATE (obj_cost_stats)
 *   Requests: each purpose's PUT-class count times the PUT price plus its
 *   GET-class count times the GET price; deletes are free. Per hour: the
 *   total over this layer's age, so a mount that was busy for a minute and
 *   idle for a day shows a small figure: the mean, not a forecast.
 *   Storage: the bytes the caller says are stored, for an hour, at the
 *   price per GiB-month over 730 hours (AWS's month). Nano-dollars keep
 *   every figure an integer: a GET costs 400 of them.
 */
void obj_cost_stats(struct obj_backend *b, uint64_t stored_bytes, obj_stat_emit_fn emit,
		    void *arg)
{
	struct obj_metrics *mx = (struct obj_metrics *)obj_metrics_find(b);
	uint64_t total = 0, pp, pg, pm, age;
	char key[80];

	if (!mx)
		return;
	pp = atomic_load(&mx->price_put_nusd);
	pg = atomic_load(&mx->price_get_nusd);
	pm = atomic_load(&mx->price_gib_month_nusd);
	age = util_now_ns() - mx->born_ns;
	emit(arg, "cost_price_put_nusd", pp);
	emit(arg, "cost_price_get_nusd", pg);
	emit(arg, "cost_price_gib_month_nusd", pm);
	for (int p = 1; p < OBJ_PURPOSE_COUNT; p++) {       /* none: never charged */
		uint64_t n = atomic_load(&mx->purpose[p].req[OBJ_CLASS_PUT]) * pp +
			     atomic_load(&mx->purpose[p].req[OBJ_CLASS_GET]) * pg;
		total += n;
		snprintf(key, sizeof(key), "cost_%s_nusd", obj_purpose_names[p]);
		emit(arg, key, n);
	}
	emit(arg, "cost_requests_nusd", total);
	/* Under a second of age the mean is noise: none yet. */
	uint64_t req_h = age >= 1000000000ull ? (uint64_t)((double)total / ((double)age / 3.6e12))
					      : 0;
	uint64_t store_h = (uint64_t)((double)stored_bytes / (double)(1ull << 30) * (double)pm /
				      730.0);
	emit(arg, "cost_requests_nusd_per_hour", req_h);
	emit(arg, "cost_stored_bytes", stored_bytes);
	emit(arg, "cost_storage_nusd_per_hour", store_h);
	emit(arg, "cost_nusd_per_hour", req_h + store_h);
}

void obj_latency(struct obj_backend *b, obj_hist_emit_fn emit, void *arg)
{
	struct obj_metrics *mx = (struct obj_metrics *)obj_metrics_find(b);

	if (!mx)
		return;
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
	m->born_ns = util_now_ns();
	atomic_init(&m->price_put_nusd, OBJ_DFLT_PRICE_PUT_NUSD);
	atomic_init(&m->price_get_nusd, OBJ_DFLT_PRICE_GET_NUSD);
	atomic_init(&m->price_gib_month_nusd, OBJ_DFLT_PRICE_GIB_MONTH_NUSD);
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
