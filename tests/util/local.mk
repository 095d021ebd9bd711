# Tests of the util module.
check_PROGRAMS += tests/util/check_util
tests_util_check_util_CPPFLAGS = $(TEST_CPPFLAGS)
tests_util_check_util_LDADD = $(TEST_COMMON_LIB) util/libutil.a $(TEST_CHECK_LIBS)
TESTS += tests/util/check_util

check_PROGRAMS += tests/util/check_util_hist
tests_util_check_util_hist_CPPFLAGS = $(TEST_CPPFLAGS)
tests_util_check_util_hist_LDADD = $(TEST_COMMON_LIB) util/libutil.a $(TEST_CHECK_LIBS) $(PTHREAD_LIBS)
TESTS += tests/util/check_util_hist
