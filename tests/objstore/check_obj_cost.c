/*
 * check_obj_cost.c - what requests are for and what they cost
 * (objstore/obj_cost.c, counted by obj_metrics.c): the rule that charges
 * a request to a purpose, the counts and bytes by purpose and class over
 * a metrics layer, the thread-local tag, and the estimate obj_cost_stats
 * makes at a given price list.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objstore/objstore.h"
#include "objstore/objstore_int.h"
#include "tests/check_common.h"
#include "tests/check_main.h"

/* metrics(mem://name), every tag cleared. */
static struct obj_backend *cost_stack(const char *name)
{
	struct obj_backend *mem, *m;

	ck_assert_int_eq(obj_mem_create(&mem, name), 0);
	ck_assert_int_eq(obj_metrics_create(&m, mem), 0);
	(void)obj_purpose_set(OBJ_PURPOSE_NONE);
	return m;
}

/* The value of obj_cost_stats key `key` of b with stored bytes. */
static uint64_t cost_stat(struct obj_backend *b, uint64_t stored, const char *key)
{
	struct check_stat st = { key, 0, 0 };

	obj_cost_stats(b, stored, check_stat_emit, &st);
	ck_assert_msg(st.seen, "obj_cost_stats has no %s", key);
	return st.value;
}

START_TEST(test_obj_cost__purpose_rule)
{
	/* GC owns all it does; then meta objects; then the tag; then reads. */
	ck_assert_int_eq(obj_cost_purpose(OBJ_PURPOSE_GC, OBJ_OP_LIST, "manifest/"), OBJ_PURPOSE_GC);
	ck_assert_int_eq(obj_cost_purpose(OBJ_PURPOSE_GC, OBJ_OP_DELETE, "sst/x"), OBJ_PURPOSE_GC);
	ck_assert_int_eq(obj_cost_purpose(OBJ_PURPOSE_FLUSH, OBJ_OP_PUT_IF_ABSENT, "manifest/0001"),
			 OBJ_PURPOSE_MANIFEST);
	ck_assert_int_eq(obj_cost_purpose(OBJ_PURPOSE_NONE, OBJ_OP_GET, "lease/0001"),
			 OBJ_PURPOSE_MANIFEST);
	ck_assert_int_eq(obj_cost_purpose(OBJ_PURPOSE_OTHER, OBJ_OP_PUT, "readers/1-2"),
			 OBJ_PURPOSE_MANIFEST);
	ck_assert_int_eq(obj_cost_purpose(OBJ_PURPOSE_FLUSH, OBJ_OP_PUT, "sst/x"), OBJ_PURPOSE_FLUSH);
	ck_assert_int_eq(obj_cost_purpose(OBJ_PURPOSE_WAL, OBJ_OP_PUT, "wal/1"), OBJ_PURPOSE_WAL);
	ck_assert_int_eq(obj_cost_purpose(OBJ_PURPOSE_NONE, OBJ_OP_GET, "sst/x"), OBJ_PURPOSE_READ);
	ck_assert_int_eq(obj_cost_purpose(OBJ_PURPOSE_NONE, OBJ_OP_HEAD, NULL), OBJ_PURPOSE_READ);
	ck_assert_int_eq(obj_cost_purpose(OBJ_PURPOSE_NONE, OBJ_OP_PUT, "x"), OBJ_PURPOSE_OTHER);
	ck_assert_int_eq(obj_cost_purpose(OBJ_PURPOSE_NONE, OBJ_OP_DELETE, "x"), OBJ_PURPOSE_OTHER);
	/* The classes S3 bills. */
	ck_assert_int_eq(obj_cost_class(OBJ_OP_PUT), OBJ_CLASS_PUT);
	ck_assert_int_eq(obj_cost_class(OBJ_OP_PUT_IF_ABSENT), OBJ_CLASS_PUT);
	ck_assert_int_eq(obj_cost_class(OBJ_OP_LIST), OBJ_CLASS_PUT);
	ck_assert_int_eq(obj_cost_class(OBJ_OP_GET), OBJ_CLASS_GET);
	ck_assert_int_eq(obj_cost_class(OBJ_OP_HEAD), OBJ_CLASS_GET);
	ck_assert_int_eq(obj_cost_class(OBJ_OP_DELETE), OBJ_CLASS_DELETE);
	/* The setter returns the previous tag, and refuses nonsense. */
	ck_assert_int_eq(obj_purpose_set(OBJ_PURPOSE_WAL), OBJ_PURPOSE_NONE);
	ck_assert_int_eq(obj_purpose_set(OBJ_PURPOSE_COUNT + 3), OBJ_PURPOSE_WAL);
	ck_assert_int_eq(obj_purpose_set(OBJ_PURPOSE_NONE), OBJ_PURPOSE_OTHER);
}
END_TEST

START_TEST(test_obj_cost__counts_by_purpose_and_class)
{
	struct obj_backend *b = cost_stack("cost-counts");
	const char *victims[] = { "sst/a", "sst/b" };
	struct obj_list *l = NULL;
	void *buf = NULL;
	size_t len = 0;

	(void)obj_purpose_set(OBJ_PURPOSE_WAL);
	ck_assert_int_eq(obj_put(b, "wal/00000000000000000001", "0123456789", 10), 0);
	ck_assert_int_eq(obj_put(b, "wal/00000000000000000002", "abcde", 5), 0);
	(void)obj_purpose_set(OBJ_PURPOSE_FLUSH);
	ck_assert_int_eq(obj_put(b, "sst/a", "tableA", 6), 0);
	ck_assert_int_eq(obj_put(b, "sst/b", "tableBB", 7), 0);
	ck_assert_int_eq(obj_put_if_absent(b, "manifest/00000000000000000001", "m1", 2), 0);
	(void)obj_purpose_set(OBJ_PURPOSE_NONE);
	ck_assert_int_eq(obj_get(b, "sst/a", 0, OBJ_WHOLE, &buf, &len), 0);
	obj_buf_free(buf);
	/* A miss is a billed request too, with no bytes. */
	ck_assert_int_eq(obj_get(b, "sst/none", 0, OBJ_WHOLE, &buf, &len), -ENOENT);
	(void)obj_purpose_set(OBJ_PURPOSE_GC);
	ck_assert_int_eq(obj_list_page(b, "manifest/", NULL, 100, &l), 0);
	obj_list_free(l);
	ck_assert_int_eq(obj_delete_many(b, victims, 2), 0);
	(void)obj_purpose_set(OBJ_PURPOSE_NONE);

	ck_assert_uint_eq(check_obj_stat(b, "purpose_wal_put_class_requests"), 2);
	ck_assert_uint_eq(check_obj_stat(b, "purpose_wal_put_bytes"), 15);
	ck_assert_uint_eq(check_obj_stat(b, "purpose_flush_put_class_requests"), 2);
	ck_assert_uint_eq(check_obj_stat(b, "purpose_flush_put_bytes"), 13);
	ck_assert_uint_eq(check_obj_stat(b, "purpose_manifest_put_class_requests"), 1);
	ck_assert_uint_eq(check_obj_stat(b, "purpose_manifest_put_bytes"), 2);
	ck_assert_uint_eq(check_obj_stat(b, "purpose_read_get_class_requests"), 2);
	ck_assert_uint_eq(check_obj_stat(b, "purpose_read_get_bytes"), 6);
	ck_assert_uint_eq(check_obj_stat(b, "purpose_gc_put_class_requests"), 1);   /* the LIST */
	ck_assert_uint_eq(check_obj_stat(b, "purpose_gc_get_class_requests"), 0);
	ck_assert_uint_eq(check_obj_stat(b, "purpose_segment_put_class_requests"), 0);
	/* The batch delete is one request (mem:// has one; S3's is a POST,
	 * counted with the free deletes). */
	uint64_t dels = check_obj_stat(b, "objstore_delete_requests");
	ck_assert_uint_eq(check_obj_stat(b, "purpose_gc_delete_requests"), dels);
	/* Every request in exactly one purpose and class. */
	ck_assert_uint_eq(check_obj_stat(b, "class_put_class_requests") +
				  check_obj_stat(b, "class_get_class_requests") +
				  check_obj_stat(b, "class_delete_requests"),
			  check_obj_stat(b, "objstore_requests"));
	ck_assert_uint_eq(check_obj_stat(b, "class_put_class_requests"), 6);
	ck_assert_uint_eq(check_obj_stat(b, "class_get_class_requests"), 2);

	/* Costs at a price list: PUT 1000, GET 10 nano-dollars. */
	struct obj_prices p = OBJ_PRICES_INIT;
	ck_assert_uint_eq(cost_stat(b, 0, "cost_price_put_nusd"), OBJ_DFLT_PRICE_PUT_NUSD);
	p.put_nusd = 1000;
	p.get_nusd = 10;
	obj_cost_set_prices(b, &p);
	ck_assert_uint_eq(cost_stat(b, 0, "cost_price_put_nusd"), 1000);
	ck_assert_uint_eq(cost_stat(b, 0, "cost_wal_nusd"), 2000);
	ck_assert_uint_eq(cost_stat(b, 0, "cost_flush_nusd"), 2000);
	ck_assert_uint_eq(cost_stat(b, 0, "cost_manifest_nusd"), 1000);
	ck_assert_uint_eq(cost_stat(b, 0, "cost_read_nusd"), 20);
	ck_assert_uint_eq(cost_stat(b, 0, "cost_gc_nusd"), 1000);   /* deletes are free */
	ck_assert_uint_eq(cost_stat(b, 0, "cost_requests_nusd"), 6020);
	obj_close(b);
	obj_mem_destroy("cost-counts");
}
END_TEST

static void *cost_tagged_thread(void *arg)
{
	struct obj_backend *b = arg;

	ck_assert_int_eq(obj_purpose_set(OBJ_PURPOSE_COMPACT), OBJ_PURPOSE_NONE);
	ck_assert_int_eq(obj_put(b, "sst/c", "c", 1), 0);
	return NULL;
}

START_TEST(test_obj_cost__tag_is_per_thread)
{
	struct obj_backend *b = cost_stack("cost-thread");
	pthread_t t;

	(void)obj_purpose_set(OBJ_PURPOSE_WAL);
	ck_assert_int_eq(pthread_create(&t, NULL, cost_tagged_thread, b), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(obj_put(b, "wal/00000000000000000001", "w", 1), 0);
	(void)obj_purpose_set(OBJ_PURPOSE_NONE);
	ck_assert_uint_eq(check_obj_stat(b, "purpose_compaction_put_class_requests"), 1);
	ck_assert_uint_eq(check_obj_stat(b, "purpose_wal_put_class_requests"), 1);
	obj_close(b);
	obj_mem_destroy("cost-thread");
}
END_TEST

START_TEST(test_obj_cost__storage_per_hour)
{
	struct obj_backend *b = cost_stack("cost-storage");
	struct obj_prices p = OBJ_PRICES_INIT;

	/* 730 hours in a month: at 730,000 nano-dollars per GiB-month, one
	 * GiB costs 1,000 an hour, and 10 GiB 10,000. */
	p.gib_month_nusd = 730000;
	obj_cost_set_prices(b, &p);
	ck_assert_uint_eq(cost_stat(b, 1ull << 30, "cost_storage_nusd_per_hour"), 1000);
	ck_assert_uint_eq(cost_stat(b, 10ull << 30, "cost_storage_nusd_per_hour"), 10000);
	ck_assert_uint_eq(cost_stat(b, 10ull << 30, "cost_stored_bytes"), 10ull << 30);
	/* No request yet: the per-hour total is the storage alone. */
	ck_assert_uint_eq(cost_stat(b, 10ull << 30, "cost_nusd_per_hour"), 10000);
	/* The default price: $0.023 per GiB-month. */
	p.gib_month_nusd = OBJ_DFLT_PRICE_GIB_MONTH_NUSD;
	obj_cost_set_prices(b, &p);
	ck_assert_uint_eq(cost_stat(b, 730ull << 30, "cost_storage_nusd_per_hour"), 23000000);
	obj_close(b);
	obj_mem_destroy("cost-storage");
}
END_TEST

START_TEST(test_obj_cost__no_metrics_layer)
{
	struct obj_backend *mem;
	struct check_stat st = { "cost_requests_nusd", 0, 0 };
	struct obj_prices p = OBJ_PRICES_INIT;

	ck_assert_int_eq(obj_mem_create(&mem, "cost-bare"), 0);
	obj_cost_set_prices(mem, &p);           /* ignored */
	obj_cost_stats(mem, 1, check_stat_emit, &st);
	ck_assert(!st.seen);
	obj_close(mem);
	obj_mem_destroy("cost-bare");
}
END_TEST

static Suite *obj_cost_suite(void)
{
	Suite *s = suite_create("obj_cost");
	TCase *tc = tcase_create("cost");
	tcase_add_test(tc, test_obj_cost__purpose_rule);
	tcase_add_test(tc, test_obj_cost__counts_by_purpose_and_class);
	tcase_add_test(tc, test_obj_cost__tag_is_per_thread);
	tcase_add_test(tc, test_obj_cost__storage_per_hour);
	tcase_add_test(tc, test_obj_cost__no_metrics_layer);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(obj_cost_suite)
