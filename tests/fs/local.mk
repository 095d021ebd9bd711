# Tests of the fs module. Integration tests mount a real ShaleFS (needs
# /dev/fuse; skipped with status 77 without it).
check_PROGRAMS += tests/fs/posix_suite tests/fs/fsx tests/fs/crash_work tests/fs/conc
tests_fs_posix_suite_SOURCES = tests/fs/posix_suite.c
tests_fs_posix_suite_LDADD = $(PTHREAD_LIBS)
tests_fs_fsx_SOURCES = tests/fs/fsx.c
tests_fs_crash_work_SOURCES = tests/fs/crash_work.c
tests_fs_conc_SOURCES = tests/fs/conc.c
tests_fs_conc_LDADD = $(PTHREAD_LIBS)

check_PROGRAMS += tests/fs/check_fs_fsck
tests_fs_check_fs_fsck_CPPFLAGS = $(TEST_CPPFLAGS) $(FUSE_CFLAGS)
tests_fs_check_fs_fsck_LDADD = $(TEST_COMMON_LIB) $(FS_LIBS) $(TEST_CHECK_LIBS)
TESTS += tests/fs/check_fs_fsck

check_PROGRAMS += tests/fs/check_fs_inode
tests_fs_check_fs_inode_CPPFLAGS = $(TEST_CPPFLAGS) $(FUSE_CFLAGS)
tests_fs_check_fs_inode_LDADD = $(TEST_COMMON_LIB) $(FS_LIBS) $(TEST_CHECK_LIBS)
TESTS += tests/fs/check_fs_inode

FS_TESTS = tests/fs/posix.sh tests/fs/fsx.sh tests/fs/cli_bad.sh tests/fs/ro_fence.sh \
	tests/fs/crash.sh tests/fs/conc.sh tests/fs/bigfile.sh \
	tests/fs/remount.sh tests/fs/lease.sh tests/fs/admin.sh tests/fs/full.sh \
	tests/fs/logs.sh tests/fs/s3_fail.sh tests/fs/metrics.sh tests/fs/operate.sh \
	tests/fs/gc.sh tests/fs/stats.sh tests/fs/full_rm.sh tests/fs/cred.sh \
	tests/fs/scrub.sh tests/fs/repair.sh tests/fs/dcache.sh \
	tests/fs/crypt.sh
# Quiet when idle (issue 23): no request from an idle writer mount.
FS_TESTS += tests/fs/idle.sh
TESTS += $(FS_TESTS)
dist_check_SCRIPTS += $(FS_TESTS)
EXTRA_DIST += tests/fs/fs_lib.sh tests/fs/cred_fake.py
