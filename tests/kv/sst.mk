# Tests of the kv SST area (kv/sst.mk): one check program per area, plus the
# fuzz target replayed over its committed corpus.
check_PROGRAMS += tests/kv/check_kv_sst tests/kv/check_kv_bloom tests/kv/check_kv_cache \
	tests/fuzz/fuzz_sst
TESTS += tests/kv/check_kv_sst tests/kv/check_kv_bloom tests/kv/check_kv_cache \
	tests/fuzz/fuzz_sst_replay.sh
dist_check_SCRIPTS += tests/fuzz/fuzz_sst_replay.sh
EXTRA_DIST += tests/fuzz/corpus/sst

tests_kv_check_kv_sst_SOURCES = tests/kv/check_kv_sst.c
tests_kv_check_kv_sst_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)
tests_kv_check_kv_sst_LDADD = $(KV_LIBS) $(TEST_CHECK_LIBS)

tests_kv_check_kv_bloom_SOURCES = tests/kv/check_kv_bloom.c
tests_kv_check_kv_bloom_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)
tests_kv_check_kv_bloom_LDADD = $(KV_LIBS) $(TEST_CHECK_LIBS)

tests_kv_check_kv_cache_SOURCES = tests/kv/check_kv_cache.c
tests_kv_check_kv_cache_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)
tests_kv_check_kv_cache_LDADD = $(KV_LIBS) $(TEST_CHECK_LIBS)

# Replay build of the fuzz target (libFuzzer build: see tests/fuzz/fuzz_sst.c).
tests_fuzz_fuzz_sst_SOURCES = tests/fuzz/fuzz_sst.c
tests_fuzz_fuzz_sst_LDADD = $(KV_LIBS)
