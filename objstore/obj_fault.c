/*
 * obj_fault.c - the fault-injection wrapper. Configured from a spec string
 * (normally the SHALEFS_FAULTS environment variable) so real binaries can
 * run under store faults. docs/faults.md is the user documentation.
 *
 * SPEC
 *   Comma-separated key=value pairs:
 *     seed=N            PRNG seed (default: random, logged at start)
 *     error=P           probability of a transient error (-EAGAIN,
 *                       -ETIMEDOUT or -ECONNRESET, chosen at random)
 *     cancel=P          probability of -ECANCELED
 *     after=P           for put/put_if_absent/delete: probability that an
 *                       injected failure happens AFTER the operation was
 *                       performed (it succeeded but reported failure);
 *                       default 0.5
 *     latency_ms=A-B    sleep uniformly A..B ms before each operation
 *                       (a single number N means N-N)
 *     ops=a+b+...       operations affected: get, head, put (put and
 *                       put_if_absent), cas (put_if_absent only), delete,
 *                       list, all (default all)
 *     crash_after=N     _exit(99) right after the process's N-th store
 *                       operation (counted over every fault wrapper of
 *                       the process, with one atomic counter)
 *     full=PATH         while the file PATH exists, put and put_if_absent
 *                       fail with -ENOSPC without reaching the store: a
 *                       store that fills up and empties again at the
 *                       test's command (touch PATH / rm PATH), on any
 *                       backend
 *     crash_mode=M      after (default: once the N-th operation returned),
 *                       before (instead of performing it), put-succeeded
 *                       (count only put/put_if_absent calls that returned
 *                       0; exit right after the N-th)
 *   Probabilities are in [0, 1]; error + cancel <= 1.
 *   obj_open adds crash_after/crash_mode from SHALEFS_CRASH_AFTER_OPS=N[,M]
 *   and installs the wrapper whenever SHALEFS_FAULTS,
 *   SHALEFS_CRASH_AFTER_OPS or SHALEFS_CRASH_COUNT_FILE is set.
 *
 * CRASH POINTS
 *   The counter is process-wide (a crash is a process event). Operations
 *   are counted whether or not injection is enabled. When
 *   SHALEFS_CRASH_COUNT_FILE names a file, each wrapper's free writes the
 *   counter's value there ("ops N puts_ok M\n"), so a clean run of a
 *   workload tells the torture suite how many crash points it has.
 *   Unknown keys or malformed values are -EINVAL with a message naming
 *   the offending item.
 *
 * REPRODUCIBILITY
 *   One PRNG per wrapper, advanced under a mutex: a single-threaded
 *   sequence of operations is reproducible from the seed; with threads the
 *   interleaving decides which operation draws which number.
 */
#include "objstore/objstore_int.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum fault_crash_mode { FAULT_CRASH_AFTER, FAULT_CRASH_BEFORE, FAULT_CRASH_PUT_OK };

/* Process-wide operation counters for crash points. */
static atomic_uint_fast64_t fault_crash_ops;
static atomic_uint_fast64_t fault_crash_puts_ok;

struct fault_spec {
	uint64_t seed;
	double error, cancel, after;
	unsigned lat_min_ms, lat_max_ms;
	unsigned ops;                     /* bit per enum obj_op */
	uint64_t crash_after;             /* 0 = no crash point */
	enum fault_crash_mode crash_mode;
	char full[256];                   /* full=PATH; "" = none */
};

struct obj_fault {
	struct obj_wrapper w;             /* must be first */
	struct fault_spec spec;           /* immutable */
	atomic_int enabled;
	pthread_mutex_t lock;
	struct util_rand rng;             /* protected by lock */
	atomic_uint_fast64_t injected[OBJ_OP_COUNT];
	atomic_uint_fast64_t injected_after;
};

/* What to do to one call. */
struct fault_plan {
	int err;                          /* 0 = no failure */
	int after;                        /* perform the op, then fail */
	unsigned sleep_ms;
};

static int fault_parse_prob(const char *key, const char *val, double *out)
{
	char *end;
	double d = strtod(val, &end);
	if (end == val || *end || d < 0 || d > 1)
		return obj_fail(-EINVAL, -1, "faults", key,
				"'%s' is not a probability between 0 and 1", val);
	*out = d;
	return 0;
}

static int fault_parse_ops(const char *val, unsigned *ops)
{
	char buf[128], *save = NULL, *tok;
	snprintf(buf, sizeof(buf), "%s", val);
	*ops = 0;
	for (tok = strtok_r(buf, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
		if (!strcmp(tok, "all"))
			*ops |= (1u << OBJ_OP_COUNT) - 1;
		else if (!strcmp(tok, "get"))
			*ops |= 1u << OBJ_OP_GET;
		else if (!strcmp(tok, "head"))
			*ops |= 1u << OBJ_OP_HEAD;
		else if (!strcmp(tok, "put"))
			*ops |= 1u << OBJ_OP_PUT | 1u << OBJ_OP_PUT_IF_ABSENT;
		else if (!strcmp(tok, "cas"))
			*ops |= 1u << OBJ_OP_PUT_IF_ABSENT;
		else if (!strcmp(tok, "delete") || !strcmp(tok, "del"))
			*ops |= 1u << OBJ_OP_DELETE;
		else if (!strcmp(tok, "list"))
			*ops |= 1u << OBJ_OP_LIST;
		else
			return obj_fail(-EINVAL, -1, "faults", "ops",
					"unknown operation '%s' (get, head, put, cas, delete, list, all)", tok);
	}
	if (!*ops)
		return obj_fail(-EINVAL, -1, "faults", "ops", "empty operation list");
	return 0;
}

/* Parse spec into *s. Returns 0 or -EINVAL (message in obj_last_error()). */
static int fault_parse(const char *spec, struct fault_spec *s)
{
	char *copy, *save = NULL, *item;
	int rc = 0;

	memset(s, 0, sizeof(*s));
	s->after = 0.5;
	s->ops = (1u << OBJ_OP_COUNT) - 1;
	s->seed = util_rand_os_seed();
	copy = strdup(spec);
	if (!copy)
		return -ENOMEM;
	for (item = strtok_r(copy, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '='), *end;
		const char *key = item, *val;
		if (!eq) {
			rc = obj_fail(-EINVAL, -1, "faults", item, "expected key=value");
			break;
		}
		*eq = '\0';
		val = eq + 1;
		if (!strcmp(key, "seed")) {
			s->seed = strtoull(val, &end, 0);
			if (end == val || *end)
				rc = obj_fail(-EINVAL, -1, "faults", key, "'%s' is not a number", val);
		} else if (!strcmp(key, "error")) {
			rc = fault_parse_prob(key, val, &s->error);
		} else if (!strcmp(key, "cancel")) {
			rc = fault_parse_prob(key, val, &s->cancel);
		} else if (!strcmp(key, "after")) {
			rc = fault_parse_prob(key, val, &s->after);
		} else if (!strcmp(key, "latency_ms")) {
			unsigned long a, b;
			a = strtoul(val, &end, 10);
			if (end == val) {
				rc = obj_fail(-EINVAL, -1, "faults", key, "'%s' is not N or A-B", val);
				break;
			}
			b = a;
			if (*end == '-') {
				const char *v2 = end + 1;
				b = strtoul(v2, &end, 10);
				if (end == v2)
					b = a - 1;      /* force the error below */
			}
			if (*end || b < a || b > 600000)
				rc = obj_fail(-EINVAL, -1, "faults", key, "'%s' is not N or A-B (ms, A<=B)", val);
			s->lat_min_ms = (unsigned)a;
			s->lat_max_ms = (unsigned)b;
		} else if (!strcmp(key, "crash_after")) {
			s->crash_after = strtoull(val, &end, 10);
			if (end == val || *end || s->crash_after == 0)
				rc = obj_fail(-EINVAL, -1, "faults", key, "'%s' is not a number >= 1", val);
		} else if (!strcmp(key, "crash_mode")) {
			if (!strcmp(val, "after"))
				s->crash_mode = FAULT_CRASH_AFTER;
			else if (!strcmp(val, "before"))
				s->crash_mode = FAULT_CRASH_BEFORE;
			else if (!strcmp(val, "put-succeeded"))
				s->crash_mode = FAULT_CRASH_PUT_OK;
			else
				rc = obj_fail(-EINVAL, -1, "faults", key,
					      "'%s' is not after, before or put-succeeded", val);
		} else if (!strcmp(key, "full")) {
			if (val[0] != '/' || strlen(val) >= sizeof(s->full))
				rc = obj_fail(-EINVAL, -1, "faults", key,
					      "'%s' is not an absolute path (< 256 bytes)", val);
			else
				memcpy(s->full, val, strlen(val) + 1);
		} else if (!strcmp(key, "ops")) {
			rc = fault_parse_ops(val, &s->ops);
		} else {
			rc = obj_fail(-EINVAL, -1, "faults", key,
				      "unknown key (seed, error, cancel, after, latency_ms, ops, full, crash_after, crash_mode)");
		}
	}
	if (!rc && s->error + s->cancel > 1.0)
		rc = obj_fail(-EINVAL, -1, "faults", "error+cancel", "probabilities add up to more than 1");
	free(copy);
	return rc;
}

static void fault_plan(struct obj_fault *f, enum obj_op op, struct fault_plan *p)
{
	static const int transient[] = { -EAGAIN, -ETIMEDOUT, -ECONNRESET };
	int mutating = op == OBJ_OP_PUT || op == OBJ_OP_PUT_IF_ABSENT || op == OBJ_OP_DELETE;
	double x;

	memset(p, 0, sizeof(*p));
	if (!atomic_load(&f->enabled) || !(f->spec.ops & (1u << op)))
		return;
	CHECK_RETURN(pthread_mutex_lock(&f->lock));
	if (f->spec.lat_max_ms)
		p->sleep_ms = f->spec.lat_min_ms +
			      (unsigned)util_rand_below(&f->rng, f->spec.lat_max_ms - f->spec.lat_min_ms + 1);
	x = util_rand_unit(&f->rng);
	if (x < f->spec.error)
		p->err = transient[util_rand_below(&f->rng, 3)];
	else if (x < f->spec.error + f->spec.cancel)
		p->err = -ECANCELED;
	if (p->err && mutating)
		p->after = util_rand_unit(&f->rng) < f->spec.after;
	CHECK_RETURN(pthread_mutex_unlock(&f->lock));
	if (p->err) {
		atomic_fetch_add(&f->injected[op], 1);
		if (p->after)
			atomic_fetch_add(&f->injected_after, 1);
	}
}

/* Die at a crash point: one line on stderr (async-signal-safe), _exit(99). */
static void fault_crash_now(enum obj_op op, const char *name, uint64_t n, const char *when)
{
	char line[512];
	int len = snprintf(line, sizeof(line), "shalefs: crash point: _exit(99) %s %llu (%s %s)\n",
			   when, (unsigned long long)n, obj_op_names[op], name ? name : "");
	if (len > 0)
		(void)!write(2, line, (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
	_exit(99);
}

/* Count one operation; returns its number (1-based). In `before` mode dies
 * here when it is the N-th. */
static uint64_t fault_crash_enter(struct obj_fault *f, enum obj_op op, const char *name)
{
	uint64_t n = atomic_fetch_add(&fault_crash_ops, 1) + 1;
	if (f->spec.crash_after && f->spec.crash_mode == FAULT_CRASH_BEFORE && n == f->spec.crash_after)
		fault_crash_now(op, name, n, "before store operation");
	return n;
}

/* After the operation returned rc: die if it was the N-th (`after`), or the
 * N-th successful put (`put-succeeded`). */
static void fault_crash_leave(struct obj_fault *f, enum obj_op op, const char *name, uint64_t n, int rc)
{
	if ((op == OBJ_OP_PUT || op == OBJ_OP_PUT_IF_ABSENT) && rc == 0) {
		uint64_t p = atomic_fetch_add(&fault_crash_puts_ok, 1) + 1;
		if (f->spec.crash_after && f->spec.crash_mode == FAULT_CRASH_PUT_OK && p == f->spec.crash_after)
			fault_crash_now(op, name, p, "after successful put");
	}
	if (f->spec.crash_after && f->spec.crash_mode == FAULT_CRASH_AFTER && n == f->spec.crash_after)
		fault_crash_now(op, name, n, "after store operation");
}

/* Apply the plan around an operation: sleep; fail before, or run and fail after. */
static int fault_pre(struct obj_fault *f, enum obj_op op, const char *name, struct fault_plan *p)
{
	fault_plan(f, op, p);
	if (p->sleep_ms)
		util_sleep_ns((uint64_t)p->sleep_ms * 1000000ull);
	if (p->err && !p->after)
		return obj_fail(p->err, UTIL_LOG_DEBUG, obj_op_names[op], name,
				"injected fault: %s", util_strerror(p->err));
	return 0;
}

static int fault_post(struct fault_plan *p, enum obj_op op, const char *name, int rc)
{
	if (rc == 0 && p->err && p->after)
		return obj_fail(p->err, UTIL_LOG_DEBUG, obj_op_names[op], name,
				"injected fault after success: %s", util_strerror(p->err));
	return rc;
}

#define FAULT_INNER(b) (((struct obj_wrapper *)(b))->inner)

static int obj_fault__get(struct obj_backend *b, const char *name, uint64_t off, uint64_t len,
			  void **out, size_t *out_len)
{
	struct obj_fault *f = (struct obj_fault *)b;
	struct fault_plan p;
	uint64_t n = fault_crash_enter(f, OBJ_OP_GET, name);
	int rc = fault_pre(f, OBJ_OP_GET, name, &p);
	*out = NULL;
	*out_len = 0;
	if (!rc)
		rc = FAULT_INNER(b)->get(FAULT_INNER(b), name, off, len, out, out_len);
	fault_crash_leave(f, OBJ_OP_GET, name, n, rc);
	return rc;
}

static int obj_fault__head(struct obj_backend *b, const char *name, struct obj_stat *st)
{
	struct obj_fault *f = (struct obj_fault *)b;
	struct fault_plan p;
	uint64_t n = fault_crash_enter(f, OBJ_OP_HEAD, name);
	int rc = fault_pre(f, OBJ_OP_HEAD, name, &p);
	if (!rc)
		rc = FAULT_INNER(b)->head(FAULT_INNER(b), name, st);
	fault_crash_leave(f, OBJ_OP_HEAD, name, n, rc);
	return rc;
}

/* full=PATH: is the store "full" now? Returns 0 or -ENOSPC (counted). */
static int fault_full(struct obj_fault *f, enum obj_op op, const char *name)
{
	if (!f->spec.full[0] || access(f->spec.full, F_OK) != 0)
		return 0;
	atomic_fetch_add(&f->injected[op], 1);
	return obj_fail(-ENOSPC, UTIL_LOG_DEBUG, obj_op_names[op], name,
			"injected: the store is full (%s exists)", f->spec.full);
}

/*
 * Both writes: the injected faults, then the full-store check, then the
 * inner method put (put or put_if_absent of the inner backend). The
 * crash counter's put-succeeded counts what the store did, even if a
 * fault then lies about it.
 */
static int fault_put(struct obj_backend *b, enum obj_op op,
		     int (*put)(struct obj_backend *, const char *, const void *, size_t,
				const char *),
		     const char *name, const void *data, size_t len, const char *token)
{
	struct obj_fault *f = (struct obj_fault *)b;
	struct fault_plan p;
	uint64_t n = fault_crash_enter(f, op, name);
	int rc = fault_pre(f, op, name, &p), inner = rc;
	if (!rc)
		rc = inner = fault_full(f, op, name);
	if (!rc) {
		inner = put(FAULT_INNER(b), name, data, len, token);
		rc = fault_post(&p, op, name, inner);
	}
	fault_crash_leave(f, op, name, n, inner);
	return rc;
}

static int obj_fault__put(struct obj_backend *b, const char *name, const void *data, size_t len,
			  const char *token)
{
	return fault_put(b, OBJ_OP_PUT, FAULT_INNER(b)->put, name, data, len, token);
}

static int obj_fault__put_if_absent(struct obj_backend *b, const char *name, const void *data,
				    size_t len, const char *token)
{
	return fault_put(b, OBJ_OP_PUT_IF_ABSENT, FAULT_INNER(b)->put_if_absent, name, data, len,
			 token);
}

static int obj_fault__del(struct obj_backend *b, const char *name)
{
	struct obj_fault *f = (struct obj_fault *)b;
	struct fault_plan p;
	uint64_t n = fault_crash_enter(f, OBJ_OP_DELETE, name);
	int rc = fault_pre(f, OBJ_OP_DELETE, name, &p);
	if (!rc) {
		rc = FAULT_INNER(b)->del(FAULT_INNER(b), name);
		rc = fault_post(&p, OBJ_OP_DELETE, name, rc);
	}
	fault_crash_leave(f, OBJ_OP_DELETE, name, n, rc);
	return rc;
}

static int obj_fault__list(struct obj_backend *b, const char *prefix, const char *start_after,
			   size_t max, struct obj_list **out)
{
	struct obj_fault *f = (struct obj_fault *)b;
	struct fault_plan p;
	uint64_t n = fault_crash_enter(f, OBJ_OP_LIST, prefix);
	int rc = fault_pre(f, OBJ_OP_LIST, prefix, &p);
	*out = NULL;
	if (!rc)
		rc = FAULT_INNER(b)->list(FAULT_INNER(b), prefix, start_after, max, out);
	fault_crash_leave(f, OBJ_OP_LIST, prefix, n, rc);
	return rc;
}

static void obj_fault__stats(struct obj_backend *b, obj_stat_emit_fn emit, void *arg)
{
	struct obj_fault *f = (struct obj_fault *)b;
	uint64_t total = 0;
	for (int op = 0; op < OBJ_OP_COUNT; op++)
		total += atomic_load(&f->injected[op]);
	emit(arg, "faults_injected", total);
	emit(arg, "faults_injected_after_success", atomic_load(&f->injected_after));
	emit(arg, "fault_layer_ops", atomic_load(&fault_crash_ops));
	obj_stats(f->w.inner, emit, arg);
}

/* Write the process's operation counters to SHALEFS_CRASH_COUNT_FILE. */
static void fault_crash_write_count(void)
{
	const char *path = getenv("SHALEFS_CRASH_COUNT_FILE");
	FILE *fp;

	if (!path || !*path)
		return;
	fp = fopen(path, "w");
	if (!fp) {
		UTIL_WARN("objstore", "SHALEFS_CRASH_COUNT_FILE %s: %s", path, util_strerror(-errno));
		return;
	}
	fprintf(fp, "ops %llu puts_ok %llu\n", (unsigned long long)atomic_load(&fault_crash_ops),
		(unsigned long long)atomic_load(&fault_crash_puts_ok));
	fclose(fp);
}

static void obj_fault__free(struct obj_backend *b)
{
	struct obj_fault *f = (struct obj_fault *)b;
	fault_crash_write_count();
	obj_close(f->w.inner);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int obj_fault_create(struct obj_backend **out, struct obj_backend *inner, const char *spec)
{
	struct obj_fault *f;
	int rc;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	rc = fault_parse(spec, &f->spec);
	if (rc) {
		free(f);
		return rc;
	}
	CHECK_RETURN(pthread_mutex_init(&f->lock, NULL));
	util_rand_seed(&f->rng, f->spec.seed);
	atomic_init(&f->enabled, 1);
	f->w.inner = inner;
	f->w.base.version = OBJ_BACKEND_VERSION;
	f->w.base.kind = "fault";
	f->w.base.get = obj_fault__get;
	f->w.base.head = obj_fault__head;
	f->w.base.put = obj_fault__put;
	f->w.base.put_if_absent = obj_fault__put_if_absent;
	f->w.base.del = obj_fault__del;
	f->w.base.list = obj_fault__list;
	f->w.base.stats = obj_fault__stats;
	f->w.base.free = obj_fault__free;
	UTIL_INFO("objstore", "fault injection on: seed=%llu error=%.3f cancel=%.3f after=%.3f latency_ms=%u-%u crash_after=%llu/%d",
		  (unsigned long long)f->spec.seed, f->spec.error, f->spec.cancel, f->spec.after,
		  f->spec.lat_min_ms, f->spec.lat_max_ms, (unsigned long long)f->spec.crash_after,
		  (int)f->spec.crash_mode);
	*out = &f->w.base;
	return 0;
}

int obj_fault_set_enabled(struct obj_backend *b, int enabled)
{
	while (b) {
		if (b->kind && !strcmp(b->kind, "fault")) {
			atomic_store(&((struct obj_fault *)b)->enabled, enabled);
			return 0;
		}
		b = obj_wrapper_inner(b);
	}
	return -ENOENT;
}
