/*
 * check_common.h - fixtures and helpers the unit tests share
 * (tests/<module>/check_*.c): temporary directories and file:// stores,
 * mem:// stores, fault-injecting stores, stderr capture and stat lookups.
 *
 * Every helper asserts with ck_assert on failure, so a test reads as the
 * behaviour it checks. Fixtures hold their state in globals, one per
 * process: each test runs in its own forked process (CK_FORK), and with
 * CK_FORK=no the checked fixtures make a fresh one per test all the same.
 *
 * The helpers live in libcheckcommon.a, split by what they link:
 * check_common.c (libc and check only), check_common_obj.c (objstore/),
 * check_common_kv.c (kv/). A test program links only what it calls.
 */
#ifndef SHALE_TESTS_CHECK_COMMON_H
#define SHALE_TESTS_CHECK_COMMON_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct obj_backend;
struct kv_db;

/* ---- temporary directories (check_common.c) ------------------------------ */

#define CHECK_PATH_MAX 256

/*
 * check_tmpdir_create - make a fresh, empty directory
 * /tmp/shale-<tag>-XXXXXX (mkdtemp) and write its path to dir (size
 * bytes). The directory is the caller's: check_tmpdir_remove. Returns 0
 * or -errno (it does not assert, so main() may call it outside a test).
 */
int check_tmpdir_create(char *dir, size_t size, const char *tag);
/* check_tmpdir_remove - rm -rf dir; a failure is reported on stderr, not
 * asserted, so that teardown after a failed test still finishes. */
void check_tmpdir_remove(const char *dir);

/*
 * The temp-directory fixture (tcase_add_checked_fixture(tc,
 * check_dir_setup, check_dir_teardown)): each test gets a fresh directory
 * check_dir and the file:// URL of a store in it, check_dir_url.
 */
extern char check_dir[CHECK_PATH_MAX];
extern char check_dir_url[CHECK_PATH_MAX + 8];
void check_dir_setup(void);
void check_dir_teardown(void);

/* ---- stderr and stats (check_common.c) --------------------------------------------- */

/*
 * check_stderr_quiet - send fd 2 to /dev/null (tests whose expected errors
 * would log thousands of lines). Returns the saved fd for
 * check_stderr_restore.
 */
int check_stderr_quiet(void);
/*
 * check_stderr_capture - send fd 2 into a fresh temporary file, *f (the
 * caller's: fclose after check_stderr_restore; rewind to read it).
 * Returns the saved fd for check_stderr_restore.
 */
int check_stderr_capture(FILE **f);
/* check_stderr_restore - put back the fd 2 saved by either of the above. */
void check_stderr_restore(int saved);

/*
 * The picker behind check_obj_stat and check_kv_stat, for a caller that
 * passes it to obj_stats or kv_stats itself: sets value and seen when the
 * emitted key is `key`.
 */
struct check_stat {
	const char *key;
	uint64_t value;
	int seen;
};
void check_stat_emit(void *arg, const char *key, uint64_t value);

/* ---- stores (check_common_obj.c) ----------------------------------------- */

/*
 * check_mem_open - obj_open("mem://name") with the default stack, the
 * store emptied first (a name reused within one process is the same
 * store). The result is the caller's: check_mem_close, or obj_close to
 * keep the contents for a reopen.
 */
struct obj_backend *check_mem_open(const char *name);
/* check_mem_close - obj_close(b), then drop the contents of mem://name. */
void check_mem_close(struct obj_backend *b, const char *name);

/*
 * The mem:// fixture (check_mem_setup, check_mem_teardown): each test gets
 * a fresh, empty store check_store at check_store_url, a name no other test
 * of the process uses.
 */
extern struct obj_backend *check_store;
extern char check_store_url[64];
void check_mem_setup(void);
void check_mem_teardown(void);

/*
 * check_fault_open - the fault wrapper (spec as docs/faults.md) right over
 * the bare mem:// backend of an emptied mem://name, no retry in between;
 * the test can open the name again to look behind the faults. The result
 * is the caller's: check_mem_close.
 */
struct obj_backend *check_fault_open(const char *name, const char *spec);

/*
 * check_store_open - obj_open(url) with the fault spec `faults` (NULL:
 * none) and the retry wrapper's pauses cut short, so that tests injecting
 * thousands of faults do not spend their time backing off. The result is
 * the caller's (obj_close).
 */
struct obj_backend *check_store_open(const char *url, const char *faults);

/* check_obj_stat - the value of obj_stats key `key` of b; asserts it is
 * reported. */
uint64_t check_obj_stat(struct obj_backend *b, const char *key);

/* ---- kv (check_common_kv.c) ---------------------------------------------- */

/* check_kv_stat - the value of kv_stats key `key` of db; asserts it is
 * reported. */
uint64_t check_kv_stat(struct kv_db *db, const char *key);
/* check_kv_flush_now - freeze db's memtable and wait (up to 20 s) for its
 * flush to commit. */
void check_kv_flush_now(struct kv_db *db);

#endif /* SHALE_TESTS_CHECK_COMMON_H */
