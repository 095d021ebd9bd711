# Tests mirror the source tree: tests/<module>/check_<file>.c. Each unit
# test is a check program; integration tests are scripts. Both run in TESTS.
TEST_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)

check_PROGRAMS += tests/util/check_util
tests_util_check_util_CPPFLAGS = $(TEST_CPPFLAGS)
tests_util_check_util_LDADD = util/libutil.a $(TEST_CHECK_LIBS)

OBJSTORE_CHECKS = tests/objstore/check_obj_local tests/objstore/check_obj_mem \
	tests/objstore/check_obj_retry tests/objstore/check_obj_fault tests/objstore/check_obj_url
check_PROGRAMS += $(OBJSTORE_CHECKS)
CONFORMANCE = tests/objstore/conformance.c tests/objstore/conformance.h
tests_objstore_check_obj_local_SOURCES = tests/objstore/check_obj_local.c $(CONFORMANCE)
tests_objstore_check_obj_local_CPPFLAGS = $(TEST_CPPFLAGS)
tests_objstore_check_obj_local_LDADD = $(OBJ_LIBS) $(TEST_CHECK_LIBS)
tests_objstore_check_obj_mem_SOURCES = tests/objstore/check_obj_mem.c $(CONFORMANCE)
tests_objstore_check_obj_mem_CPPFLAGS = $(TEST_CPPFLAGS)
tests_objstore_check_obj_mem_LDADD = $(OBJ_LIBS) $(TEST_CHECK_LIBS)
tests_objstore_check_obj_retry_CPPFLAGS = $(TEST_CPPFLAGS)
tests_objstore_check_obj_retry_LDADD = $(OBJ_LIBS) $(TEST_CHECK_LIBS)
tests_objstore_check_obj_fault_CPPFLAGS = $(TEST_CPPFLAGS)
tests_objstore_check_obj_fault_LDADD = $(OBJ_LIBS) $(TEST_CHECK_LIBS)
tests_objstore_check_obj_url_CPPFLAGS = $(TEST_CPPFLAGS)
tests_objstore_check_obj_url_LDADD = $(OBJ_LIBS) $(TEST_CHECK_LIBS)

TESTS += tests/util/check_util $(OBJSTORE_CHECKS)

check_PROGRAMS += tests/kv/check_kv_db
tests_kv_check_kv_db_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_db_LDADD = $(KV_LIBS) $(TEST_CHECK_LIBS)
TESTS += tests/kv/check_kv_db

check_PROGRAMS += tests/kv/check_kv_lease
tests_kv_check_kv_lease_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_lease_LDADD = $(KV_LIBS) $(TEST_CHECK_LIBS)
TESTS += tests/kv/check_kv_lease

# Manifest fuzz target (replay build over the committed corpus).
check_PROGRAMS += tests/fuzz/fuzz_manifest
tests_fuzz_fuzz_manifest_SOURCES = tests/fuzz/fuzz_manifest.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_manifest_LDADD = $(KV_LIBS)
TESTS += tests/fuzz/fuzz_manifest_replay.sh
dist_check_SCRIPTS += tests/fuzz/fuzz_manifest_replay.sh
EXTRA_DIST += tests/fuzz/corpus/manifest tests/fuzz/gen_manifest_corpus.c

# Regression: the WAL writer must wake on the first record after idling
# (found by the fs tests: unsynced writes never became durable).
check_PROGRAMS += tests/kv/check_kv_wal_timer
tests_kv_check_kv_wal_timer_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_wal_timer_LDADD = $(KV_LIBS) $(TEST_CHECK_LIBS)
TESTS += tests/kv/check_kv_wal_timer

check_PROGRAMS += tests/kv/check_kv_compact
tests_kv_check_kv_compact_CPPFLAGS = $(TEST_CPPFLAGS)
tests_kv_check_kv_compact_LDADD = $(KV_LIBS) $(TEST_CHECK_LIBS)
TESTS += tests/kv/check_kv_compact

# ThreadSanitizer suppressions for third-party libraries (scripts/tsan).
EXTRA_DIST += tests/tsan.supp
