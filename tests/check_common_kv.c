/*
 * check_common_kv.c - the kv helpers of tests/check_common.h.
 */
#include "tests/check_common.h"

#include "kv/kv.h"
#include "kv/kv_int.h"
#include "util/util.h"

uint64_t check_kv_stat(struct kv_db *db, const char *key)
{
	struct check_stat s = { key, 0, 0 };

	kv_stats(db, check_stat_emit, &s);
	ck_assert_msg(s.seen, "no %s in kv_stats", key);
	return s.value;
}

void check_kv_flush_now(struct kv_db *db)
{
	uint64_t before = check_kv_stat(db, "l0_flushes");
	uint64_t deadline = util_now_ns() + 20ull * 1000000000ull;

	kv_mutex_lock(&db->mu);
	ck_assert_int_eq(kv_flush_freeze(db), 0);
	CHECK_RETURN(pthread_cond_signal(&db->cv_flush));
	kv_mutex_unlock(&db->mu);
	while (check_kv_stat(db, "l0_flushes") == before) {
		ck_assert_msg(util_now_ns() < deadline, "the flush did not commit");
		util_sleep_ns(5 * 1000000ull);
	}
}
