# Tests of the kv module: one check program per area.
KV_TEST_LIBS = $(TEST_COMMON_LIB) $(KV_LIBS) $(TEST_CHECK_LIBS)

check_PROGRAMS += tests/kv/check_kv_db
tests_kv_check_kv_db_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_db_LDADD = $(KV_TEST_LIBS)
TESTS += tests/kv/check_kv_db

check_PROGRAMS += tests/kv/check_kv_lease
tests_kv_check_kv_lease_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_lease_LDADD = $(KV_TEST_LIBS)
TESTS += tests/kv/check_kv_lease

# The WAL writer must wake on the first record after idling, or unsynced
# writes never become durable.
check_PROGRAMS += tests/kv/check_kv_wal_timer
tests_kv_check_kv_wal_timer_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_wal_timer_LDADD = $(KV_TEST_LIBS)
TESTS += tests/kv/check_kv_wal_timer

check_PROGRAMS += tests/kv/check_kv_compact
tests_kv_check_kv_compact_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_compact_LDADD = $(KV_TEST_LIBS)
TESTS += tests/kv/check_kv_compact

# The memtable, iterators, WAL codec, batches and internal keys.
KV_MEM_CHECKS = tests/kv/check_kv_memtable tests/kv/check_kv_iter tests/kv/check_kv_wal \
	tests/kv/check_kv_batch tests/kv/check_kv_ikey
check_PROGRAMS += $(KV_MEM_CHECKS)
TESTS += $(KV_MEM_CHECKS)

tests_kv_check_kv_memtable_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_memtable_LDADD = $(KV_TEST_LIBS)

tests_kv_check_kv_iter_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_iter_LDADD = $(KV_TEST_LIBS)

tests_kv_check_kv_wal_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_wal_LDADD = $(KV_TEST_LIBS)

tests_kv_check_kv_batch_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_batch_LDADD = $(KV_TEST_LIBS)

tests_kv_check_kv_ikey_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_ikey_LDADD = $(KV_TEST_LIBS)

# The SST area (kv_int.h "SSTs").
check_PROGRAMS += tests/kv/check_kv_sst tests/kv/check_kv_bloom tests/kv/check_kv_cache
TESTS += tests/kv/check_kv_sst tests/kv/check_kv_bloom tests/kv/check_kv_cache

tests_kv_check_kv_sst_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_sst_LDADD = $(KV_TEST_LIBS)

tests_kv_check_kv_bloom_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_bloom_LDADD = $(KV_TEST_LIBS)

tests_kv_check_kv_cache_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_cache_LDADD = $(KV_TEST_LIBS)

check_PROGRAMS += tests/kv/check_kv_ref
tests_kv_check_kv_ref_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_ref_LDADD = $(KV_TEST_LIBS)
TESTS += tests/kv/check_kv_ref
