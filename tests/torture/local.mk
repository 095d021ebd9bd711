# The torture suite (docs/testing.md): crash points, random
# kill -9 rounds under store faults, takeovers. `make check` runs the
# short forms; scripts/torture --long runs the full ones. Mounts a real
# ShaleFS (needs /dev/fuse; skipped with status 77 without it).
check_PROGRAMS += tests/torture/tort_work
tests_torture_tort_work_SOURCES = tests/torture/tort_work.c

TORTURE_TESTS = tests/torture/crashpoints.sh tests/torture/kill.sh tests/torture/takeover.sh \
	tests/torture/secrets.sh tests/torture/full.sh tests/torture/encrypted.sh
TESTS += $(TORTURE_TESTS)
dist_check_SCRIPTS += $(TORTURE_TESTS)
EXTRA_DIST += tests/torture/torture_lib.sh tests/torture/outage.sh
