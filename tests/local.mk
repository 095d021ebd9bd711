# Tests mirror the source tree: tests/<module>/check_<file>.c. Each unit
# test is a check program; integration tests are scripts. Both run in TESTS.
# Each test directory keeps its own fragment (tests/<dir>/local.mk); what
# they share is here.
TEST_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)

# The S3 rig (tests/rig/rgw-start): the s3:// tests of every directory.
EXTRA_DIST += tests/rig

# ThreadSanitizer suppressions for third-party libraries (scripts/tsan).
EXTRA_DIST += tests/tsan.supp
