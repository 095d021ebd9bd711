/*
 * obj_cost.c - what the store's requests are for and what they cost: the
 * thread-local purpose tag, the rule that charges a request to a purpose
 * (objstore.h, "what requests cost"), and the estimate obj_cost_stats
 * makes from the metrics layer's counts (obj_metrics.c) and a price list.
 *
 * THE ESTIMATE
 *   Requests: each purpose's PUT-class count times the PUT price plus its
 *   GET-class count times the GET price; deletes are free. Per hour: the
 *   total over the metrics layer's age, so a mount that was busy for a
 *   minute and idle for a day shows a small figure: the mean, not a
 *   forecast. Storage: the bytes the caller says are stored, for an hour,
 *   at the price per GiB-month over 730 hours (AWS's month).
 *   Nano-dollars keep every figure an integer: a GET costs 400 of them.
 *
 * THREADING
 *   The tag is thread-local; the rest reads atomics through
 *   obj_metrics_cost_read.
 */
#include "objstore/objstore_int.h"

#include <stdio.h>
#include <string.h>

const char *const obj_purpose_names[OBJ_PURPOSE_COUNT] = {
	"none", "wal", "flush", "compaction", "segment", "gc", "read", "manifest", "other",
};

static _Thread_local enum obj_purpose obj_cost_tag = OBJ_PURPOSE_NONE;

enum obj_purpose obj_purpose_set(enum obj_purpose p)
{
	enum obj_purpose old = obj_cost_tag;

	obj_cost_tag = p < OBJ_PURPOSE_COUNT ? p : OBJ_PURPOSE_OTHER;
	return old;
}

enum obj_purpose obj_purpose_get(void)
{
	return obj_cost_tag;
}

enum obj_class obj_cost_class(enum obj_op op)
{
	switch (op) {
	case OBJ_OP_PUT:
	case OBJ_OP_PUT_IF_ABSENT:
	case OBJ_OP_LIST:
		return OBJ_CLASS_PUT;
	case OBJ_OP_DELETE:
		return OBJ_CLASS_DELETE;
	default:
		return OBJ_CLASS_GET;
	}
}

enum obj_purpose obj_cost_purpose(enum obj_purpose tag, enum obj_op op, const char *name)
{
	static const char *const meta[] = { "manifest/", "lease/", "readers/" };

	if (tag == OBJ_PURPOSE_GC)
		return tag;
	for (size_t i = 0; name && i < sizeof(meta) / sizeof(meta[0]); i++)
		if (strncmp(name, meta[i], strlen(meta[i])) == 0)
			return OBJ_PURPOSE_MANIFEST;
	if (tag != OBJ_PURPOSE_NONE)
		return tag;
	return obj_cost_class(op) == OBJ_CLASS_GET ? OBJ_PURPOSE_READ : OBJ_PURPOSE_OTHER;
}

void obj_cost_stats(struct obj_backend *b, uint64_t stored_bytes, obj_stat_emit_fn emit,
		    void *arg)
{
	struct obj_cost_counts c;
	uint64_t total = 0;
	char key[80];

	if (obj_metrics_cost_read(b, &c))
		return;
	emit(arg, "cost_price_put_nusd", c.prices.put_nusd);
	emit(arg, "cost_price_get_nusd", c.prices.get_nusd);
	emit(arg, "cost_price_gib_month_nusd", c.prices.gib_month_nusd);
	for (int p = 1; p < OBJ_PURPOSE_COUNT; p++) {       /* none: never charged */
		uint64_t n = c.req[p][OBJ_CLASS_PUT] * c.prices.put_nusd +
			     c.req[p][OBJ_CLASS_GET] * c.prices.get_nusd;
		total += n;
		snprintf(key, sizeof(key), "cost_%s_nusd", obj_purpose_names[p]);
		emit(arg, key, n);
	}
	emit(arg, "cost_requests_nusd", total);
	/* Under a second of age the mean is noise: none yet. */
	double hours = (double)c.age_ns / 3.6e12;
	uint64_t req_h = c.age_ns >= 1000000000ull ? (uint64_t)((double)total / hours) : 0;
	uint64_t store_h = (uint64_t)((double)stored_bytes / (double)(1ull << 30) *
				      (double)c.prices.gib_month_nusd / 730.0);
	emit(arg, "cost_requests_nusd_per_hour", req_h);
	emit(arg, "cost_stored_bytes", stored_bytes);
	emit(arg, "cost_storage_nusd_per_hour", store_h);
	emit(arg, "cost_nusd_per_hour", req_h + store_h);
}
