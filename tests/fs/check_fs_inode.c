/*
 * check_fs_inode.c - the in-memory inode table (fs_inode.c), without FUSE
 * or a store: growth under many cached inodes, the no-xattrs hint, and
 * the cap (inode_cache=): idle clean objects freed, lookup counts kept.
 */
#include <check.h>
#include <stdlib.h>

#include "fs/fs_int.h"
#include "tests/check_main.h"

#define N_INODES 50000

START_TEST(test_fs_inode__table_grows_and_empties)
{
	struct fs_config conf = FS_CONFIG_INIT;
	struct fs *fs;
	struct fs_inode **held = calloc(N_INODES, sizeof(*held));

	ck_assert_ptr_nonnull(held);
	ck_assert_int_eq(fs_alloc(&fs, &conf), 0);
	ck_assert_uint_eq(fs->itab_buckets, FS_ITAB_MIN_BUCKETS);
	for (size_t i = 0; i < N_INODES; i++) {
		ck_assert_int_eq(fs_inode_get(fs, 1000 + i * 7, &held[i]), 0);
		ck_assert_uint_eq(held[i]->ino, 1000 + i * 7);
	}
	ck_assert_uint_eq(fs->n_inodes, N_INODES);
	/* At most two per bucket on average, as fs_itab_grow keeps it. */
	ck_assert_uint_ge(2 * fs->itab_buckets, N_INODES);
	/* Every object is found again, the same one, after the rehashes. */
	for (size_t i = 0; i < N_INODES; i += 13) {
		struct fs_inode *ip;
		ck_assert_int_eq(fs_inode_get(fs, 1000 + i * 7, &ip), 0);
		ck_assert_ptr_eq(ip, held[i]);
		fs_inode_unpin(fs, ip);
	}
	for (size_t i = 0; i < N_INODES; i++)
		fs_inode_unpin(fs, held[i]);
	ck_assert_uint_eq(fs->n_inodes, 0);
	fs_free(fs);
	free(held);
}
END_TEST

START_TEST(test_fs_inode__only_hinted_inodes_skip_xattr_reads)
{
	struct fs_config conf = FS_CONFIG_INIT;
	struct fs_attr a = { .mode = 0100644, .nlink = 1, .hints = FS_HINT_NO_XATTRS };
	struct fs_attr b = { .mode = 0100644, .nlink = 1 };
	struct fs *fs;
	struct fs_inode *made, *plain, *loaded;

	ck_assert_int_eq(fs_alloc(&fs, &conf), 0);
	ck_assert_int_eq(fs_inode_new(fs, 77, &a, NULL, 0, &made), 0);
	ck_assert_int_eq(fs_inode_new(fs, 76, &b, NULL, 0, &plain), 0);
	ck_assert_int_eq(fs_inode_get(fs, 78, &loaded), 0);
	ck_assert_int_eq(fs_inode_no_xattrs(fs, 77), 1);
	/* Without the hint, not yet loaded, or not cached: unknown, so the
	 * engine is asked. */
	ck_assert_int_eq(fs_inode_no_xattrs(fs, 76), 0);
	ck_assert_int_eq(fs_inode_no_xattrs(fs, 78), 0);
	ck_assert_int_eq(fs_inode_no_xattrs(fs, 79), 0);
	fs_inode_unpin(fs, made);
	fs_inode_unpin(fs, plain);
	fs_inode_unpin(fs, loaded);
	ck_assert_int_eq(fs_inode_no_xattrs(fs, 77), 0);
	fs_free(fs);
}
END_TEST

#define CAP 100
#define N_HELD 1000

/* N_HELD inodes the kernel holds (2 lookups each), loaded and idle, with
 * inode_cache=CAP; inode 1000 stays open. */
static struct fs *fs_inode_cap_fill(struct fs_inode **open_ip)
{
	struct fs_config conf = FS_CONFIG_INIT;
	struct fs *fs;

	conf.inode_cache = CAP;
	ck_assert_int_eq(fs_alloc(&fs, &conf), 0);
	for (uint64_t i = 0; i < N_HELD; i++) {
		struct fs_inode *ip;
		ck_assert_int_eq(fs_inode_get(fs, 1000 + i, &ip), 0);
		ip->loaded = 1;            /* as if its record had been read */
		if (i == 0) {
			ip->nopen = 1;
			*open_ip = ip;
		}
		fs_inode_ref_lookup(fs, ip, 2);
		fs_inode_unpin(fs, ip);
	}
	return fs;
}

START_TEST(test_fs_inode__cap_frees_idle_clean_objects)
{
	struct fs_inode *open_ip, *ip;
	struct fs *fs = fs_inode_cap_fill(&open_ip);

	ck_assert_uint_le(fs->n_inodes, CAP);
	ck_assert_uint_eq(fs->n_inodes + fs->n_ghosts, N_HELD);
	/* The open one is never freed. */
	ck_assert_int_eq(fs_inode_get(fs, 1000, &ip), 0);
	ck_assert_ptr_eq(ip, open_ip);
	ck_assert_uint_eq(ip->nlookup, 2);
	ip->nopen = 0;
	fs_inode_unpin(fs, ip);
	/* A freed one comes back with its lookup count, not loaded. */
	ck_assert_int_eq(fs_inode_get(fs, 1001, &ip), 0);
	ck_assert_uint_eq(ip->nlookup, 2);
	ck_assert_int_eq(ip->loaded, 0);
	fs_inode_unpin(fs, ip);
	ck_assert_uint_le(fs->n_inodes, CAP + 1);
	fs_free(fs);
}
END_TEST

START_TEST(test_fs_inode__forgets_reach_freed_objects)
{
	struct fs_inode *open_ip;
	struct fs *fs = fs_inode_cap_fill(&open_ip);

	open_ip->nopen = 0;
	for (uint64_t i = 0; i < N_HELD; i++)
		fs_inode_forget(fs, 1000 + i, 1);
	ck_assert_uint_eq(fs->n_inodes + fs->n_ghosts, N_HELD);
	for (uint64_t i = 0; i < N_HELD; i++)
		fs_inode_forget(fs, 1000 + i, 1);
	ck_assert_uint_eq(fs->n_inodes, 0);
	ck_assert_uint_eq(fs->n_ghosts, 0);
	fs_free(fs);
}
END_TEST

static Suite *fs_inode_suite(void)
{
	Suite *s = suite_create("fs_inode");
	TCase *tc = tcase_create("table");

	tcase_add_test(tc, test_fs_inode__table_grows_and_empties);
	tcase_add_test(tc, test_fs_inode__only_hinted_inodes_skip_xattr_reads);
	suite_add_tcase(s, tc);
	tc = tcase_create("cap");
	tcase_add_test(tc, test_fs_inode__cap_frees_idle_clean_objects);
	tcase_add_test(tc, test_fs_inode__forgets_reach_freed_objects);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(fs_inode_suite)
