/*
 * check_obj_retry.c - the retry wrapper under the fault wrapper: every
 * operation completes through injected transient failures, permanent
 * errors pass through untouched, and put_if_absent never reports a false
 * conflict for a write this caller itself made.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "objstore/objstore.h"
#include "objstore/objstore_int.h"
#include "util/util.h"
#include "tests/check_common.h"
#include "tests/check_main.h"

/* A wrapper that drops tokens, standing in for a backend without token
 * storage: the retry wrapper must fall back to comparing bytes. */
static int notoken__put_if_absent(struct obj_backend *b, const char *name, const void *d,
				  size_t n, const char *token)
{
	struct obj_backend *in = ((struct obj_wrapper *)b)->inner;
	(void)token;
	return in->put_if_absent(in, name, d, n, NULL);
}
static int notoken__get(struct obj_backend *b, const char *n, uint64_t o, uint64_t l, void **out,
			size_t *ol)
{
	struct obj_backend *in = ((struct obj_wrapper *)b)->inner;
	return in->get(in, n, o, l, out, ol);
}
static int notoken__head(struct obj_backend *b, const char *n, struct obj_stat *st)
{
	struct obj_backend *in = ((struct obj_wrapper *)b)->inner;
	return in->head(in, n, st);
}
static int notoken__put(struct obj_backend *b, const char *n, const void *d, size_t l,
			const char *t)
{
	struct obj_backend *in = ((struct obj_wrapper *)b)->inner;
	(void)t;
	return in->put(in, n, d, l, NULL);
}
static int notoken__del(struct obj_backend *b, const char *n)
{
	struct obj_backend *in = ((struct obj_wrapper *)b)->inner;
	return in->del(in, n);
}
static int notoken__list(struct obj_backend *b, const char *p, const char *s, size_t m,
			 struct obj_list **o)
{
	struct obj_backend *in = ((struct obj_wrapper *)b)->inner;
	return in->list(in, p, s, m, o);
}
static void notoken__free(struct obj_backend *b)
{
	obj_close(((struct obj_wrapper *)b)->inner);
	free(b);
}
static struct obj_backend *notoken_wrap(struct obj_backend *inner)
{
	struct obj_wrapper *w = calloc(1, sizeof(*w));
	w->inner = inner;
	w->base.version = OBJ_BACKEND_VERSION;
	w->base.kind = "notoken";
	w->base.get = notoken__get;
	w->base.head = notoken__head;
	w->base.put = notoken__put;
	w->base.put_if_absent = notoken__put_if_absent;
	w->base.del = notoken__del;
	w->base.list = notoken__list;
	w->base.free = notoken__free;
	return &w->base;
}

/* Build retry(metrics(fault(base))) with fast backoff. */
static struct obj_backend *stack(struct obj_backend *base, const char *faults)
{
	struct obj_backend *f, *m, *r;
	struct obj_retry_config rc = { .base_ms = 1, .cap_ms = 4, .max_total_ms = 120000 };
	ck_assert_int_eq(obj_fault_create(&f, base, faults), 0);
	ck_assert_int_eq(obj_metrics_create(&m, f), 0);
	ck_assert_int_eq(obj_retry_create(&r, m, &rc), 0);
	return r;
}

/*
 * 10,000 mixed operations at 20% transient errors + 5% cancellations, half
 * of the failed puts having succeeded first. Every operation must succeed
 * with the right result.
 */
static void run_workload(struct obj_backend *b)
{
	struct util_rand rng;
	int created = 0, overwritten = 0;

	util_rand_seed(&rng, 42);
	for (int i = 0; i < 10000; i++) {
		char name[64], body[64];
		int op = (int)util_rand_below(&rng, 6), n;
		void *buf = NULL;
		size_t len = 0;
		struct obj_stat st;

		switch (op) {
		case 0: /* unique put_if_absent: must be 0, never a false -EEXIST */
			snprintf(name, sizeof(name), "pia/%06d", created);
			n = snprintf(body, sizeof(body), "body-%d", created);
			ck_assert_msg(obj_put_if_absent(b, name, body, (size_t)n) == 0, "pia %s", name);
			created++;
			break;
		case 1: /* put/overwrite */
			n = snprintf(body, sizeof(body), "over-%d", i);
			ck_assert_int_eq(obj_put(b, "over", body, (size_t)n), 0);
			overwritten = 1;
			ck_assert_int_eq(obj_get(b, "over", 0, OBJ_WHOLE, &buf, &len), 0);
			ck_assert(len == (size_t)n && memcmp(buf, body, len) == 0);
			free(buf);
			break;
		case 2: /* get of an object we created */
			if (!created)
				break;
			n = (int)util_rand_below(&rng, (uint64_t)created);
			snprintf(name, sizeof(name), "pia/%06d", n);
			snprintf(body, sizeof(body), "body-%d", n);
			ck_assert_int_eq(obj_get(b, name, 0, OBJ_WHOLE, &buf, &len), 0);
			ck_assert(len == strlen(body) && memcmp(buf, body, len) == 0);
			free(buf);
			break;
		case 3:
			ck_assert_int_eq(obj_head(b, "over", &st), overwritten ? 0 : -ENOENT);
			break;
		case 4: { /* list */
			struct obj_list *l = NULL;
			ck_assert_int_eq(obj_list_page(b, "pia/", NULL, 50, &l), 0);
			ck_assert_uint_eq(l->count, created < 50 ? (size_t)created : 50);
			obj_list_free(l);
			break;
		}
		case 5: /* delete of a scratch object, then it must be gone */
			ck_assert_int_eq(obj_put(b, "scratch", "s", 1), 0);
			ck_assert_int_eq(obj_delete(b, "scratch"), 0);
			ck_assert_int_eq(obj_head(b, "scratch", &st), -ENOENT);
			break;
		}
	}
	ck_assert_int_gt(created, 1000);
}

START_TEST(test_obj_retry__10k_ops_under_faults_mem)
{
	struct obj_backend *base, *b;
	obj_mem_destroy("retry10k");
	ck_assert_int_eq(obj_mem_create(&base, "retry10k"), 0);
	b = stack(base, "seed=7,error=0.20,cancel=0.05,after=0.5");
	run_workload(b);
	ck_assert_uint_gt(check_obj_stat(b, "objstore_retries"), 1000);
	ck_assert_uint_gt(check_obj_stat(b, "faults_injected_after_success"), 100);
	ck_assert_uint_gt(check_obj_stat(b, "objstore_conflicts_resolved_by_token"), 10);
	ck_assert_uint_eq(check_obj_stat(b, "objstore_gave_up"), 0);
	obj_close(b);
	obj_mem_destroy("retry10k");
}
END_TEST

START_TEST(test_obj_retry__10k_ops_under_faults_without_tokens)
{
	struct obj_backend *base, *b;
	obj_mem_destroy("retrynotok");
	ck_assert_int_eq(obj_mem_create(&base, "retrynotok"), 0);
	b = stack(notoken_wrap(base), "seed=11,error=0.20,cancel=0.05,after=0.5");
	run_workload(b);
	ck_assert_uint_gt(check_obj_stat(b, "objstore_conflicts_resolved_by_token"), 10);
	obj_close(b);
	obj_mem_destroy("retrynotok");
}
END_TEST

START_TEST(test_obj_retry__10k_ops_under_faults_file)
{
	char dir[CHECK_PATH_MAX];
	struct obj_backend *base, *b;
	ck_assert_int_eq(check_tmpdir_create(dir, sizeof(dir), "check-retry"), 0);
	ck_assert_int_eq(obj_local_create(&base, dir, 1), 0);
	b = stack(base, "seed=3,error=0.20,cancel=0.05,after=0.5");
	run_workload(b);
	obj_close(b);
	check_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_obj_retry__real_conflict_is_reported)
{
	struct obj_backend *base, *b;
	obj_mem_destroy("retryconf");
	ck_assert_int_eq(obj_mem_create(&base, "retryconf"), 0);
	ck_assert_int_eq(base->put(base, "taken", "theirs", 6, "othertoken"), 0);
	b = stack(base, "seed=5,error=0.30,cancel=0.10,after=0.5");
	/* Someone else's object: -EEXIST every time, whatever the faults did. */
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(obj_put_if_absent(b, "taken", "mine", 4), -EEXIST);
	/* Same bytes but another writer's object (no token match): still a conflict
	 * when tokens are stored. */
	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(obj_put_if_absent(b, "taken", "theirs", 6), -EEXIST);
	obj_close(b);
	obj_mem_destroy("retryconf");
}
END_TEST

START_TEST(test_obj_retry__permanent_errors_pass_through)
{
	struct obj_backend *base, *b;
	void *buf;
	size_t len;

	ck_assert_int_eq(obj_mem_create(&base, "retryperm"), 0);
	b = stack(base, "seed=1,error=0");
	ck_assert_int_eq(obj_get(b, "missing", 0, OBJ_WHOLE, &buf, &len), -ENOENT);
	ck_assert_int_eq(obj_put(b, "bad//name", "x", 1), -EINVAL);
	ck_assert_uint_eq(check_obj_stat(b, "objstore_retries"), 0);
	ck_assert_uint_eq(check_obj_stat(b, "objstore_get_requests"), 1);
	obj_close(b);
	obj_mem_destroy("retryperm");
}
END_TEST

START_TEST(test_obj_retry__gives_up_after_max_attempts)
{
	struct obj_backend *f = check_fault_open("retrygive", "seed=1,error=1"), *r;
	struct obj_retry_config rc = { .base_ms = 1, .cap_ms = 2, .max_attempts = 5 };
	void *buf;
	size_t len;

	ck_assert_int_eq(obj_retry_create(&r, f, &rc), 0);
	int e = obj_get(r, "x", 0, OBJ_WHOLE, &buf, &len);
	ck_assert(obj_err_is_transient(e));
	ck_assert_uint_eq(check_obj_stat(r, "objstore_get_retries"), 4);
	ck_assert_uint_eq(check_obj_stat(r, "objstore_gave_up"), 1);
	/* Injection can be paused: then the same call goes through. */
	ck_assert_int_eq(obj_fault_set_enabled(r, 0), 0);
	ck_assert_int_eq(obj_get(r, "x", 0, OBJ_WHOLE, &buf, &len), -ENOENT);
	obj_close(r);
	obj_mem_destroy("retrygive");
}
END_TEST

static Suite *obj_retry_suite(void)
{
	Suite *s = suite_create("obj_retry");
	TCase *tc = tcase_create("retry");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_obj_retry__10k_ops_under_faults_mem);
	tcase_add_test(tc, test_obj_retry__10k_ops_under_faults_without_tokens);
	tcase_add_test(tc, test_obj_retry__10k_ops_under_faults_file);
	tcase_add_test(tc, test_obj_retry__real_conflict_is_reported);
	tcase_add_test(tc, test_obj_retry__permanent_errors_pass_through);
	tcase_add_test(tc, test_obj_retry__gives_up_after_max_attempts);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(obj_retry_suite)
