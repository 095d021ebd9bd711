# Tests mirror the source tree: tests/<module>/check_<file>.c. Each unit
# test is a check program; integration tests are scripts. Both run in TESTS.
# Each test directory keeps its own fragment (tests/<dir>/local.mk); what
# they share is here.
TEST_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)

# What the unit tests share: the runner (tests/check_main.h) and the
# fixtures (tests/check_common.h). It links before the modules it calls.
check_LIBRARIES = tests/libcheckcommon.a
tests_libcheckcommon_a_SOURCES = tests/check_main.c tests/check_main.h tests/check_common.c \
	tests/check_common_obj.c tests/check_common_kv.c tests/check_common.h
tests_libcheckcommon_a_CPPFLAGS = $(TEST_CPPFLAGS)
TEST_COMMON_LIB = tests/libcheckcommon.a

# The S3 rig (tests/rig/rgw-start): the s3:// tests of every directory.
EXTRA_DIST += tests/rig

# ThreadSanitizer suppressions for third-party libraries (scripts/tsan).
EXTRA_DIST += tests/tsan.supp

# Each module's files call one another one way only (scripts/callcycles).
TESTS += tests/callcycles.sh
dist_check_SCRIPTS += tests/callcycles.sh
