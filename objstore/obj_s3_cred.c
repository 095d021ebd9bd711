/*
 * obj_s3_cred.c - the S3 backend's credentials: the current set, handed to
 * each request as a pinned snapshot, and the refresh of temporary
 * credentials before they expire.
 *
 * DESIGN
 *   A struct obj_s3_cred holds the source the chain chose at create time
 *   (obj_s3_cred_src.c) and the current credentials, an immutable,
 *   reference-counted struct obj_s3_creds. A request pins the current set
 *   (obj_s3_cred_get), signs with it and unpins it (obj_s3_cred_put); a
 *   refresh swaps in a new set under the lock and the old one is freed
 *   (its secrets wiped) when its last request unpins it. So signing never
 *   copies a secret, and no request ever sees half of an old and half of a
 *   new set.
 *
 *   When the credentials expire (they came with an Expiration), one
 *   refresher thread owns the refresh: it sleeps until the refresh is due,
 *   fetches a new set from the same source with no lock held, and swaps it
 *   in. Requests meanwhile keep signing with the current set, which is
 *   still valid: a refresh is due once less than
 *       min(max(5 min, lifetime / 3), lifetime / 2)
 *   remains (lifetime = expiry - time fetched), so an hour-long set is
 *   refreshed 20 minutes early and a 5-second one (tests) 2.5 seconds
 *   early. Static credentials (no expiry) start no thread.
 *
 *   A request that finds the current set expired (the refresh kept
 *   failing) asks for an immediate attempt and waits for it, rather than
 *   sign with credentials the store will refuse; if that attempt fails too
 *   it gets -EAGAIN, which the retry wrapper retries. A request refused
 *   with ExpiredToken / InvalidAccessKeyId while the set is temporary
 *   calls obj_s3_cred_expired(): the first such caller triggers one
 *   refresh, every caller that used the same set waits for that one, and
 *   each retries once with the new set.
 *
 *   A failed refresh is retried after 1, 2, 4 ... 30 s (1 s when a request
 *   is waiting), and logged at most once a minute (with the number of
 *   failures in between); the first success afterwards is logged too.
 *   Nothing here ends the process.
 *
 *     mu ─ protects cur, fetched_ns, attempts, want_now, stopping,
 *          last_attempt_ns, failures, last_log_ns, unlogged, last_err
 *     cv ─ wakes the refresher (due time, want_now, stopping) and the
 *          requests waiting for an attempt to finish (attempts changed)
 *
 *   No lock is held while a source is fetched (network, a child process).
 *
 * LAYERING
 *   One set of credentials (struct obj_s3_creds: make, free, parse an
 *   expiry) lives in obj_s3_creds.c, below this file, the sources and the
 *   parsers, which all use it. This file calls the sources; nothing below
 *   calls back.
 *
 * SECRETS
 *   Credentials are never logged and never in a message; messages name the
 *   source ("EC2 instance metadata", "profile 'x' credential_process").
 */
#include "objstore/obj_s3_int.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#define OBJ_S3_CRED_MOD "objstore.s3"
#define OBJ_S3_NS 1000000000LL
/* A set this close to its expiry is not used to sign: the request would
 * reach the store after it. */
#define OBJ_S3_CRED_SKEW_NS (1 * OBJ_S3_NS)
/* Refresh margins (see DESIGN). */
#define OBJ_S3_CRED_MARGIN_MIN_NS (300 * OBJ_S3_NS)
/* Retry spacing after failed refreshes. */
#define OBJ_S3_CRED_BACKOFF_MIN_NS (1 * OBJ_S3_NS)
#define OBJ_S3_CRED_BACKOFF_MAX_NS (30 * OBJ_S3_NS)
/* At most one refresh-failure line per this interval. */
#define OBJ_S3_CRED_LOG_EVERY_NS (60 * OBJ_S3_NS)
/* How long a request waits for a refresh it asked for. */
#define OBJ_S3_CRED_WAIT_NS (60 * OBJ_S3_NS)

struct obj_s3_cred {
	struct obj_s3_cred_src *src;      /* NULL: requests go unsigned; immutable */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct obj_s3_creds *cur;         /* protected by mu; NULL when unsigned */
	int64_t fetched_ns;               /* protected by mu: wall time cur was fetched */
	uint64_t attempts;                /* protected by mu: refresh attempts finished */
	int want_now;                     /* protected by mu: a request waits for an attempt */
	int stopping;                     /* protected by mu */
	int64_t last_attempt_ns;          /* protected by mu */
	unsigned failures;                /* protected by mu: consecutive failed attempts */
	int64_t last_log_ns;              /* protected by mu */
	uint64_t unlogged;                /* protected by mu: failures since the last line */
	char last_err[300];               /* protected by mu */
	int have_thread;                  /* immutable after create */
	pthread_t thread;

	atomic_uint_fast64_t st_refreshes, st_refresh_failures, st_auth_retries;
};

static int64_t obj_s3_cred_now(void)
{
	return (int64_t)util_wall_ns();
}

/* ---- refresh policy ------------------------------------------------------------ */

/* Wall time (ns) at which c->cur should be replaced; INT64_MAX: never. */
static int64_t obj_s3_cred_due(const struct obj_s3_cred *c)
{
	int64_t exp_ns, life, margin;

	if (!c->cur || !c->cur->expires)
		return INT64_MAX;
	exp_ns = c->cur->expires * OBJ_S3_NS;
	life = exp_ns - c->fetched_ns;
	if (life < 2 * OBJ_S3_CRED_SKEW_NS)
		return c->fetched_ns; /* too short-lived to wait at all */
	margin = life / 3 > OBJ_S3_CRED_MARGIN_MIN_NS ? life / 3 : OBJ_S3_CRED_MARGIN_MIN_NS;
	if (margin > life / 2)
		margin = life / 2;
	return exp_ns - margin;
}

static int obj_s3_cred_usable(const struct obj_s3_creds *k, int64_t now)
{
	return !k->expires || now < k->expires * OBJ_S3_NS - OBJ_S3_CRED_SKEW_NS;
}

static int64_t obj_s3_cred_backoff(unsigned failures)
{
	int64_t b = OBJ_S3_CRED_BACKOFF_MIN_NS;
	for (unsigned i = 1; i < failures && b < OBJ_S3_CRED_BACKOFF_MAX_NS; i++)
		b *= 2;
	return b < OBJ_S3_CRED_BACKOFF_MAX_NS ? b : OBJ_S3_CRED_BACKOFF_MAX_NS;
}

static void obj_s3_cred_timedwait(struct obj_s3_cred *c, int64_t until_ns)
{
	struct timespec ts;
	if (until_ns == INT64_MAX) {
		CHECK_RETURN(pthread_cond_wait(&c->cv, &c->mu));
		return;
	}
	ts.tv_sec = (time_t)(until_ns / OBJ_S3_NS);
	ts.tv_nsec = (long)(until_ns % OBJ_S3_NS);
	int r = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	assert(r == 0 || r == ETIMEDOUT);
	(void)r;
}

/* One attempt; called and returning with mu held, dropping it meanwhile. */
static void obj_s3_cred_attempt(struct obj_s3_cred *c)
{
	struct obj_s3_creds *fresh = NULL, *old = NULL;
	char err[sizeof(c->last_err)] = "";
	int64_t now;
	int rc;

	c->want_now = 0;
	c->last_attempt_ns = obj_s3_cred_now();
	CHECK_RETURN(pthread_mutex_unlock(&c->mu));
	rc = obj_s3_cred_src_fetch(c->src, &fresh, err, sizeof(err));
	CHECK_RETURN(pthread_mutex_lock(&c->mu));
	now = obj_s3_cred_now();
	c->attempts++;
	if (rc == 0) {
		char until[32] = "never";
		if (fresh->expires) {
			time_t t = (time_t)fresh->expires;
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
		}
		atomic_fetch_add_explicit(&c->st_refreshes, 1, memory_order_relaxed);
		old = c->cur;
		c->cur = fresh;
		c->fetched_ns = now;
		if (c->failures)
			util_log(UTIL_LOG_WARN, OBJ_S3_CRED_MOD,
				 "S3 credentials from %s refreshed again after %u failed attempts (valid until %s)",
				 obj_s3_cred_src_name(c->src), c->failures, until);
		else
			util_log(UTIL_LOG_INFO, OBJ_S3_CRED_MOD,
				 "S3 credentials from %s refreshed (valid until %s)",
				 obj_s3_cred_src_name(c->src), until);
		c->failures = 0;
		c->unlogged = 0;
		c->last_err[0] = '\0';
	} else {
		atomic_fetch_add_explicit(&c->st_refresh_failures, 1, memory_order_relaxed);
		c->failures++;
		snprintf(c->last_err, sizeof(c->last_err), "%s", err[0] ? err : util_strerror(rc));
		if (c->failures == 1 || now - c->last_log_ns >= OBJ_S3_CRED_LOG_EVERY_NS) {
			int expired = !obj_s3_cred_usable(c->cur, now);
			char more[64] = "";
			if (c->unlogged)
				snprintf(more, sizeof(more), " (%llu more failures since the last report)",
					 (unsigned long long)c->unlogged);
			util_log(expired ? UTIL_LOG_ERROR : UTIL_LOG_WARN, OBJ_S3_CRED_MOD,
				 "refreshing S3 credentials from %s failed (%s): %s; retrying%s",
				 obj_s3_cred_src_name(c->src),
				 expired ? "they have expired" : "the current ones are still valid",
				 c->last_err, more);
			c->last_log_ns = now;
			c->unlogged = 0;
		} else {
			c->unlogged++;
		}
	}
	CHECK_RETURN(pthread_cond_broadcast(&c->cv));
	if (old && --old->refs == 0) {
		/* Wipe outside the lock: nobody else can reach it now. */
		CHECK_RETURN(pthread_mutex_unlock(&c->mu));
		obj_s3_creds_free(old);
		CHECK_RETURN(pthread_mutex_lock(&c->mu));
	}
}

static void *obj_s3_cred_main(void *arg)
{
	struct obj_s3_cred *c = arg;

	CHECK_RETURN(pthread_mutex_lock(&c->mu));
	while (!c->stopping) {
		int64_t now = obj_s3_cred_now(), wake;

		wake = c->failures ? c->last_attempt_ns + obj_s3_cred_backoff(c->failures) : obj_s3_cred_due(c);
		/* A source handing out ever-expiring sets is not asked in a loop. */
		if (wake < c->last_attempt_ns + OBJ_S3_CRED_BACKOFF_MIN_NS)
			wake = c->last_attempt_ns + OBJ_S3_CRED_BACKOFF_MIN_NS;
		if (c->want_now && c->last_attempt_ns + OBJ_S3_CRED_BACKOFF_MIN_NS < wake)
			wake = c->last_attempt_ns + OBJ_S3_CRED_BACKOFF_MIN_NS;
		if (now < wake) {
			obj_s3_cred_timedwait(c, wake);
			continue;
		}
		obj_s3_cred_attempt(c);
	}
	CHECK_RETURN(pthread_mutex_unlock(&c->mu));
	return NULL;
}

/* ---- the public side ----------------------------------------------------------- */

int obj_s3_cred_create(struct obj_s3_cred **out, const struct obj_s3_settings *set,
		       const struct obj_s3_config *conf, const char *bucket, char *err, size_t errlen)
{
	struct obj_s3_cred *c;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	CHECK_RETURN(pthread_mutex_init(&c->mu, NULL));
	{
		pthread_condattr_t ca;
		CHECK_RETURN(pthread_condattr_init(&ca));
		CHECK_RETURN(pthread_condattr_setclock(&ca, CLOCK_REALTIME));
		CHECK_RETURN(pthread_cond_init(&c->cv, &ca));
		CHECK_RETURN(pthread_condattr_destroy(&ca));
	}
	if (conf && conf->no_sign_request) {
		*out = c;
		return 0;
	}
	rc = obj_s3_cred_src_chain(&c->src, &c->cur, set, conf, bucket, err, errlen);
	if (rc)
		goto fail;
	c->fetched_ns = obj_s3_cred_now();
	if (c->cur->expires) {
		sigset_t all, old;
		sigfillset(&all);
		/* The thread takes no signals: they belong to the daemon's main. */
		CHECK_RETURN(pthread_sigmask(SIG_BLOCK, &all, &old));
		rc = -pthread_create(&c->thread, NULL, obj_s3_cred_main, c);
		CHECK_RETURN(pthread_sigmask(SIG_SETMASK, &old, NULL));
		if (rc) {
			snprintf(err, errlen, "cannot start the credential refresh thread: %s",
				 util_strerror(rc));
			goto fail;
		}
		c->have_thread = 1;
	}
	*out = c;
	return 0;
fail:
	obj_s3_cred_free(c);
	return rc;
}

void obj_s3_cred_free(struct obj_s3_cred *c)
{
	if (!c)
		return;
	if (c->have_thread) {
		CHECK_RETURN(pthread_mutex_lock(&c->mu));
		c->stopping = 1;
		CHECK_RETURN(pthread_cond_broadcast(&c->cv));
		CHECK_RETURN(pthread_mutex_unlock(&c->mu));
		CHECK_RETURN(pthread_join(c->thread, NULL));
	}
	/* No request may be in progress (objstore.h), so cur has one ref. */
	if (c->cur) {
		assert(c->cur->refs == 1);
		obj_s3_creds_free(c->cur);
	}
	obj_s3_cred_src_free(c->src);
	CHECK_RETURN(pthread_cond_destroy(&c->cv));
	CHECK_RETURN(pthread_mutex_destroy(&c->mu));
	free(c);
}

int obj_s3_cred_get(struct obj_s3_cred *c, struct obj_s3_creds **snap, char *err, size_t errlen)
{
	int64_t deadline = 0;
	int rc = 0;

	*snap = NULL;
	CHECK_RETURN(pthread_mutex_lock(&c->mu));
	for (;;) {
		int64_t now = obj_s3_cred_now();
		uint64_t seq;

		if (!c->cur)
			break; /* unsigned requests */
		if (obj_s3_cred_usable(c->cur, now)) {
			c->cur->refs++;
			*snap = c->cur;
			break;
		}
		if (!c->have_thread || (deadline && now >= deadline)) {
			snprintf(err, errlen, "S3 credentials from %s have expired and could not be refreshed%s%s",
				 obj_s3_cred_src_name(c->src), c->last_err[0] ? ": " : "", c->last_err);
			rc = -EAGAIN;
			break;
		}
		if (!deadline)
			deadline = now + OBJ_S3_CRED_WAIT_NS;
		/* Expired: ask for an attempt now and wait for its outcome. */
		seq = c->attempts;
		c->want_now = 1;
		CHECK_RETURN(pthread_cond_broadcast(&c->cv));
		while (c->attempts == seq && obj_s3_cred_now() < deadline)
			obj_s3_cred_timedwait(c, deadline);
		if (!obj_s3_cred_usable(c->cur, obj_s3_cred_now()))
			deadline = 1; /* that attempt failed: report it */
	}
	CHECK_RETURN(pthread_mutex_unlock(&c->mu));
	return rc;
}

void obj_s3_cred_put(struct obj_s3_cred *c, struct obj_s3_creds *snap)
{
	int last;

	if (!snap)
		return;
	CHECK_RETURN(pthread_mutex_lock(&c->mu));
	assert(snap->refs > 0);
	last = --snap->refs == 0;
	CHECK_RETURN(pthread_mutex_unlock(&c->mu));
	if (last)
		obj_s3_creds_free(snap);
}

int obj_s3_cred_expired(struct obj_s3_cred *c, const struct obj_s3_creds *used)
{
	int64_t deadline;
	uint64_t seq;
	int fresh;

	if (!used || !used->expires || !c->have_thread)
		return 0; /* static credentials: a refusal is final */
	CHECK_RETURN(pthread_mutex_lock(&c->mu));
	atomic_fetch_add_explicit(&c->st_auth_retries, 1, memory_order_relaxed);
	if (c->cur == used) {
		deadline = obj_s3_cred_now() + OBJ_S3_CRED_WAIT_NS;
		seq = c->attempts;
		c->want_now = 1;
		CHECK_RETURN(pthread_cond_broadcast(&c->cv));
		while (c->attempts == seq && c->cur == used && obj_s3_cred_now() < deadline)
			obj_s3_cred_timedwait(c, deadline);
	}
	fresh = c->cur != used;
	CHECK_RETURN(pthread_mutex_unlock(&c->mu));
	return fresh;
}

const char *obj_s3_cred_source(const struct obj_s3_cred *c)
{
	return c->src ? obj_s3_cred_src_name(c->src) : "none (unsigned requests)";
}

void obj_s3_cred_stats(struct obj_s3_cred *c, obj_stat_emit_fn emit, void *arg)
{
	emit(arg, "s3_cred_refreshes", atomic_load(&c->st_refreshes));
	emit(arg, "s3_cred_refresh_failures", atomic_load(&c->st_refresh_failures));
	emit(arg, "s3_cred_auth_retries", atomic_load(&c->st_auth_retries));
}
