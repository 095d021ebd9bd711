/*
 * check_kv_wal_timer.c - reproducer (found by the fs tests): a write that
 * nobody syncs must become durable within flush_interval_ms (kv.h,
 * DURABILITY). It does not: the WAL writer thread sleeps in an untimed
 * pthread_cond_wait while the open WAL object is empty, and
 * kv_wal_writer_append() signals cv_wal only when the object passes
 * wal_max_bytes or a kv_sync() waits - so the first record of a new
 * object never arms the flush_interval timer. The record stays in memory
 * until some later kv_sync() (or kv_close()); a crash before that loses
 * it, and a writer fenced by a newer one does not notice until then.
 *
 * Run by `make check` (TESTS in tests/kv/local.mk).
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv/kv.h"
#include "objstore/objstore.h"
#include "tests/check_common.h"
#include "tests/check_main.h"

/* A put, then 10 flush intervals without any sync: durable? */
START_TEST(test_kv_wal_timer__unsynced_write_durable_within_interval)
{
	struct obj_backend *store;
	struct kv_db *db;
	struct kv_config c = KV_CONFIG_INIT;
	void *v = NULL;
	size_t vl = 0;

	c.flush_interval_ms = 50;
	c.no_background = 1;
	store = check_mem_open("wal-timer");
	ck_assert_int_eq(kv_open(&db, store, &c), 0);
	/* Let the WAL writer reach its idle wait (the bug is a lost wake-up:
	 * a put racing with the thread's start-up happens to be flushed). */
	usleep(300 * 1000);
	ck_assert_int_eq(kv_put(db, "k", 1, "v", 1), 0);
	usleep(500 * 1000);
	uint64_t last = check_kv_stat(db, "last_seq"), durable = check_kv_stat(db, "durable_seq");
	ck_assert_msg(durable == last,
		      "after 10 x flush_interval_ms without sync: durable_seq %llu, last_seq %llu",
		      (unsigned long long)durable, (unsigned long long)last);
	/* And it survives a crash. */
	kv_abandon(db);
	ck_assert_int_eq(kv_open(&db, store, &c), 0);
	ck_assert_int_eq(kv_get(db, NULL, "k", 1, &v, &vl), 0);
	free(v);
	ck_assert_int_eq(kv_close(db), 0);
	check_mem_close(store, "wal-timer");
}
END_TEST

static Suite *kv_wal_timer_suite(void)
{
	Suite *s = suite_create("kv_wal_timer");
	TCase *tc = tcase_create("durability");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_kv_wal_timer__unsynced_write_durable_within_interval);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(kv_wal_timer_suite)
