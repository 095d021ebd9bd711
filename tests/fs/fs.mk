# Tests of the fs module. Integration tests mount a real ShaleFS (needs
# /dev/fuse; skipped with status 77 without it).
check_PROGRAMS += tests/fs/posix_suite tests/fs/fsx
tests_fs_posix_suite_SOURCES = tests/fs/posix_suite.c
tests_fs_posix_suite_LDADD = $(PTHREAD_LIBS)
tests_fs_fsx_SOURCES = tests/fs/fsx.c
tests_fs_fsx_LDADD = $(PTHREAD_LIBS)

FS_TESTS = tests/fs/posix.sh tests/fs/fsx.sh tests/fs/cli_bad.sh
TESTS += $(FS_TESTS)
dist_check_SCRIPTS += $(FS_TESTS)
EXTRA_DIST += tests/fs/fs_lib.sh
