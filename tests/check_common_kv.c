/*
 * check_common_kv.c - the kv helpers of tests/check_common.h.
 */
#include "tests/check_common.h"

#include "kv/kv.h"

uint64_t check_kv_stat(struct kv_db *db, const char *key)
{
	struct check_stat s = { key, 0, 0 };

	kv_stats(db, check_stat_emit, &s);
	ck_assert_msg(s.seen, "no %s in kv_stats", key);
	return s.value;
}
