/*
 * obj_retry.c - the retry wrapper: carries every operation through
 * transient store failures (5xx, throttling, timeouts, resets, cancelled
 * I/O) with capped exponential backoff and full jitter.
 *
 * POLICY
 *   Attempt n (n >= 1) that fails transiently sleeps a uniformly random
 *   time in [0, min(cap_ms, base_ms * 2^(n-1))] and tries again, until
 *   max_attempts (0 = unlimited) or max_total_ms (0 = 600 s) is reached;
 *   then the last transient error is returned. Permanent errors (ENOENT,
 *   EEXIST, EACCES, EINVAL, ENOSPC, EIO, ...) pass through at once.
 *   The engine's background threads retry on top of this, so a long outage
 *   never kills them; foreground callers see the error after max_total_ms.
 *
 * PUT_IF_ABSENT AND THE FALSE CONFLICT
 *   A conditional create whose response was lost (timeout, reset, or a
 *   store that did the write and then reported failure) may have created
 *   the object. Retrying it then meets -EEXIST from our own write. So
 *   every put_if_absent carries a token, unique per call, stored with the
 *   object. When an attempt after an ambiguous failure gets -EEXIST, the
 *   wrapper reads the object's token back (head): ours means success.
 *   Backends that cannot store tokens (file:// without user xattrs) report
 *   an empty token; the wrapper then compares the object's bytes with the
 *   bytes it tried to write. Engine objects embed the writer epoch and
 *   their own id, so identical bytes from a different writer cannot occur.
 *
 * THREADING
 *   No locks: counters are atomics; per-call state lives on the stack.
 */
#include "objstore/objstore_int.h"
#include "util/util.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_DEFAULT_BASE_MS 50
#define RETRY_DEFAULT_CAP_MS 5000
#define RETRY_DEFAULT_TOTAL_MS 600000

struct retry_counters {
	atomic_uint_fast64_t calls;
	atomic_uint_fast64_t attempts;
	atomic_uint_fast64_t retries;
	atomic_uint_fast64_t failures;    /* calls that returned an error */
};

struct obj_retry {
	struct obj_wrapper w;             /* must be first */
	struct obj_retry_config conf;     /* immutable */
	struct retry_counters ops[OBJ_OP_COUNT];
	atomic_uint_fast64_t token_resolved;   /* -EEXIST turned into success */
	atomic_uint_fast64_t gave_up;          /* transient errors returned */
	atomic_uint_fast64_t seed;
};

/* Per-call retry state. */
struct retry_state {
	struct obj_retry *r;
	enum obj_op op;
	const char *name;
	unsigned attempt;                 /* attempts made so far */
	uint64_t start_ns;
	struct util_rand rng;
};

static void retry_begin(struct retry_state *s, struct obj_retry *r, enum obj_op op,
			const char *name)
{
	s->r = r;
	s->op = op;
	s->name = name;
	s->attempt = 0;
	s->start_ns = util_now_ns();
	util_rand_seed(&s->rng, atomic_fetch_add(&r->seed, 0x9e3779b97f4a7c15ull));
	atomic_fetch_add(&r->ops[op].calls, 1);
}

/*
 * Decide after an attempt returned rc: 1 = try again (after sleeping),
 * 0 = return rc to the caller. Counts and logs.
 */
static int retry_again(struct retry_state *s, int rc)
{
	struct obj_retry *r = s->r;
	uint64_t elapsed_ms, backoff_ms, ceiling;
	unsigned total_ms = r->conf.max_total_ms ? r->conf.max_total_ms : RETRY_DEFAULT_TOTAL_MS;

	s->attempt++;
	atomic_fetch_add(&r->ops[s->op].attempts, 1);
	if (rc == 0)
		return 0;
	if (!obj_err_is_transient(rc)) {
		atomic_fetch_add(&r->ops[s->op].failures, 1);
		return 0;
	}
	elapsed_ms = (util_now_ns() - s->start_ns) / 1000000;
	if ((r->conf.max_attempts && s->attempt >= r->conf.max_attempts) || elapsed_ms >= total_ms) {
		atomic_fetch_add(&r->ops[s->op].failures, 1);
		atomic_fetch_add(&r->gave_up, 1);
		UTIL_ERROR("objstore", "%s %s: giving up after %u attempts in %llu ms: %s",
			   obj_op_names[s->op], s->name ? s->name : "-", s->attempt,
			   (unsigned long long)elapsed_ms, util_strerror(rc));
		return 0;
	}
	ceiling = (uint64_t)r->conf.base_ms << (s->attempt - 1 < 20 ? s->attempt - 1 : 20);
	if (ceiling > r->conf.cap_ms)
		ceiling = r->conf.cap_ms;
	backoff_ms = util_rand_below(&s->rng, ceiling + 1);
	if (elapsed_ms + backoff_ms > total_ms)
		backoff_ms = total_ms - elapsed_ms;
	atomic_fetch_add(&r->ops[s->op].retries, 1);
	/* One warning when an operation first struggles, then every 10th try:
	 * an outage must be visible without flooding the log. The other
	 * failed attempts are debug lines. */
	if (s->attempt == 3 || (s->attempt > 3 && s->attempt % 10 == 0))
		UTIL_WARN("objstore", "%s %s: attempt %u failed (%s), retrying in %llu ms",
			  obj_op_names[s->op], s->name ? s->name : "-", s->attempt,
			  util_strerror(rc), (unsigned long long)backoff_ms);
	else
		UTIL_DEBUG("objstore", "%s %s: attempt %u failed (%s), retrying in %llu ms",
			   obj_op_names[s->op], s->name ? s->name : "-", s->attempt,
			   util_strerror(rc), (unsigned long long)backoff_ms);
	util_sleep_ns(backoff_ms * 1000000ull);
	return 1;
}

static struct obj_backend *retry_inner(struct obj_backend *b)
{
	return ((struct obj_wrapper *)b)->inner;
}

static int obj_retry__get(struct obj_backend *b, const char *name, uint64_t off, uint64_t len,
			  void **out, size_t *out_len)
{
	struct obj_backend *in = retry_inner(b);
	struct retry_state s;
	int rc;

	retry_begin(&s, (struct obj_retry *)b, OBJ_OP_GET, name);
	do
		rc = in->get(in, name, off, len, out, out_len);
	while (retry_again(&s, rc));
	return rc;
}

static int obj_retry__head(struct obj_backend *b, const char *name, struct obj_stat *st)
{
	struct obj_backend *in = retry_inner(b);
	struct retry_state s;
	int rc;

	retry_begin(&s, (struct obj_retry *)b, OBJ_OP_HEAD, name);
	do
		rc = in->head(in, name, st);
	while (retry_again(&s, rc));
	return rc;
}

static int obj_retry__put(struct obj_backend *b, const char *name, const void *data, size_t len,
			  const char *token)
{
	struct obj_backend *in = retry_inner(b);
	struct retry_state s;
	int rc;

	retry_begin(&s, (struct obj_retry *)b, OBJ_OP_PUT, name);
	do
		rc = in->put(in, name, data, len, token);
	while (retry_again(&s, rc));
	return rc;
}

/*
 * After -EEXIST following an ambiguous attempt: is the object ours?
 * Returns 1 yes, 0 no, or a negative error if it could not be read.
 */
static int retry_is_ours(struct obj_retry *r, const char *name, const void *data, size_t len,
			 const char *token)
{
	struct obj_stat st;
	void *buf = NULL;
	size_t blen = 0;
	int rc;

	rc = obj_retry__head(&r->w.base, name, &st);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	if (st.token[0])
		return strcmp(st.token, token) == 0;
	if (st.size != len)
		return 0;
	rc = obj_retry__get(&r->w.base, name, 0, OBJ_WHOLE, &buf, &blen);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	rc = blen == len && (len == 0 || memcmp(buf, data, len) == 0);
	free(buf);
	return rc;
}

static int obj_retry__put_if_absent(struct obj_backend *b, const char *name, const void *data,
				    size_t len, const char *token)
{
	struct obj_retry *r = (struct obj_retry *)b;
	struct obj_backend *in = retry_inner(b);
	struct retry_state s;
	char mytoken[OBJ_TOKEN_MAX];
	int rc, ambiguous = 0;

	if (!token || !*token) {
		uint8_t raw[12];
		if (util_random_bytes(raw, sizeof(raw)))
			util_put_be64(raw, util_rand_os_seed() ^ util_now_ns());
		for (size_t i = 0; i < sizeof(raw); i++)
			snprintf(mytoken + 2 * i, 3, "%02x", raw[i]);
		token = mytoken;
	}
	retry_begin(&s, r, OBJ_OP_PUT_IF_ABSENT, name);
	for (;;) {
		rc = in->put_if_absent(in, name, data, len, token);
		if (rc == -EEXIST && ambiguous) {
			int ours = retry_is_ours(r, name, data, len, token);
			if (ours == 1) {
				atomic_fetch_add(&r->token_resolved, 1);
				UTIL_INFO("objstore", "put_if_absent %s: conflict was our own earlier attempt",
					  name);
				rc = 0;
			} else if (ours < 0) {
				rc = ours;
			}
		}
		if (obj_err_is_transient(rc))
			ambiguous = 1;
		if (!retry_again(&s, rc))
			break;
	}
	return rc;
}

static int obj_retry__del(struct obj_backend *b, const char *name)
{
	struct obj_backend *in = retry_inner(b);
	struct retry_state s;
	int rc;

	retry_begin(&s, (struct obj_retry *)b, OBJ_OP_DELETE, name);
	do
		rc = in->del(in, name);
	while (retry_again(&s, rc));
	return rc;
}

static int obj_retry__list(struct obj_backend *b, const char *prefix, const char *start_after,
			   size_t max, struct obj_list **out)
{
	struct obj_backend *in = retry_inner(b);
	struct retry_state s;
	int rc;

	retry_begin(&s, (struct obj_retry *)b, OBJ_OP_LIST, prefix);
	do
		rc = in->list(in, prefix, start_after, max, out);
	while (retry_again(&s, rc));
	return rc;
}

static int obj_retry__del_many(struct obj_backend *b, const char *const *names, size_t count)
{
	struct obj_backend *in = retry_inner(b);
	int rc, first = 0;

	/* One batch request first (S3 DeleteObjects). A failed batch is not
	 * retried whole: with a 10% per-request failure rate a batch of many
	 * names would almost never succeed at once. Deletes are idempotent, so
	 * each name is then retried on its own. */
	if (in->del_many) {
		rc = in->del_many(in, names, count);
		if (rc == 0 || !obj_err_is_transient(rc))
			return rc;
	}
	for (size_t i = 0; i < count; i++) {
		rc = obj_retry__del(b, names[i]);
		if (rc && !first)
			first = rc;
	}
	return first;
}

static void obj_retry__stats(struct obj_backend *b, obj_stat_emit_fn emit, void *arg)
{
	struct obj_retry *r = (struct obj_retry *)b;
	uint64_t retries = 0, failures = 0;
	char key[64];

	for (int op = 0; op < OBJ_OP_COUNT; op++) {
		uint64_t rt = atomic_load(&r->ops[op].retries);
		uint64_t fl = atomic_load(&r->ops[op].failures);
		retries += rt;
		failures += fl;
		snprintf(key, sizeof(key), "objstore_%s_retries", obj_op_names[op]);
		emit(arg, key, rt);
	}
	emit(arg, "objstore_retries", retries);
	emit(arg, "objstore_failures", failures);
	emit(arg, "objstore_gave_up", atomic_load(&r->gave_up));
	emit(arg, "objstore_conflicts_resolved_by_token", atomic_load(&r->token_resolved));
	obj_stats(r->w.inner, emit, arg);
}

static void obj_retry__free(struct obj_backend *b)
{
	struct obj_retry *r = (struct obj_retry *)b;
	obj_close(r->w.inner);
	free(r);
}

int obj_retry_create(struct obj_backend **out, struct obj_backend *inner,
		     const struct obj_retry_config *conf)
{
	struct obj_retry *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -ENOMEM;
	if (conf)
		r->conf = *conf;
	if (!r->conf.base_ms)
		r->conf.base_ms = RETRY_DEFAULT_BASE_MS;
	if (!r->conf.cap_ms)
		r->conf.cap_ms = RETRY_DEFAULT_CAP_MS;
	if (r->conf.cap_ms < r->conf.base_ms)
		r->conf.cap_ms = r->conf.base_ms;
	atomic_init(&r->seed, util_rand_os_seed());
	r->w.inner = inner;
	r->w.base.version = OBJ_BACKEND_VERSION;
	r->w.base.kind = "retry";
	r->w.base.get = obj_retry__get;
	r->w.base.head = obj_retry__head;
	r->w.base.put = obj_retry__put;
	r->w.base.put_if_absent = obj_retry__put_if_absent;
	r->w.base.del = obj_retry__del;
	r->w.base.list = obj_retry__list;
	r->w.base.del_many = obj_retry__del_many;
	r->w.base.stats = obj_retry__stats;
	r->w.base.free = obj_retry__free;
	*out = &r->w.base;
	return 0;
}
