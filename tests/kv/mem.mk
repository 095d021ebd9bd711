# Tests for the kv memtable, iterators, WAL codec, batches and internal keys.
KV_MEM_CHECKS = tests/kv/check_kv_memtable tests/kv/check_kv_iter tests/kv/check_kv_wal \
	tests/kv/check_kv_batch tests/kv/check_kv_ikey
check_PROGRAMS += $(KV_MEM_CHECKS)
TESTS += $(KV_MEM_CHECKS)

tests_kv_check_kv_memtable_SOURCES = tests/kv/check_kv_memtable.c
tests_kv_check_kv_memtable_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)
tests_kv_check_kv_memtable_LDADD = $(KV_LIBS) $(TEST_CHECK_LIBS)

tests_kv_check_kv_iter_SOURCES = tests/kv/check_kv_iter.c
tests_kv_check_kv_iter_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)
tests_kv_check_kv_iter_LDADD = $(KV_LIBS) $(TEST_CHECK_LIBS)

tests_kv_check_kv_wal_SOURCES = tests/kv/check_kv_wal.c
tests_kv_check_kv_wal_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)
tests_kv_check_kv_wal_LDADD = $(KV_LIBS) $(TEST_CHECK_LIBS)

tests_kv_check_kv_batch_SOURCES = tests/kv/check_kv_batch.c
tests_kv_check_kv_batch_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)
tests_kv_check_kv_batch_LDADD = $(KV_LIBS) $(TEST_CHECK_LIBS)

tests_kv_check_kv_ikey_SOURCES = tests/kv/check_kv_ikey.c
tests_kv_check_kv_ikey_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)
tests_kv_check_kv_ikey_LDADD = $(KV_LIBS) $(TEST_CHECK_LIBS)

# WAL fuzz target: built with a replay main() and run over the committed
# corpus by `make check` (tests/fuzz/replay.sh PROGRAM CORPUS_DIR). Build
# it under libFuzzer by hand: see the header of tests/fuzz/fuzz_wal.c.
check_PROGRAMS += tests/fuzz/fuzz_wal
tests_fuzz_fuzz_wal_SOURCES = tests/fuzz/fuzz_wal.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_wal_LDADD = $(KV_LIBS)
TESTS += tests/fuzz/fuzz_wal_replay.sh
dist_check_SCRIPTS += tests/fuzz/replay.sh tests/fuzz/fuzz_wal_replay.sh
EXTRA_DIST += tests/fuzz/corpus/wal tests/fuzz/gen_wal_corpus.c
