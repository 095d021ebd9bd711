/*
 * check_fs_inode.c - the in-memory inode table (fs_inode.c), without FUSE
 * or a store: growth under many cached inodes, and the no-xattrs mark of
 * inodes this mount created.
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

START_TEST(test_fs_inode__only_new_inodes_skip_xattr_reads)
{
	struct fs_config conf = FS_CONFIG_INIT;
	struct fs_attr a = { .mode = 0100644, .nlink = 1 };
	struct fs *fs;
	struct fs_inode *made, *loaded;

	ck_assert_int_eq(fs_alloc(&fs, &conf), 0);
	ck_assert_int_eq(fs_inode_new(fs, 77, &a, NULL, 0, &made), 0);
	ck_assert_int_eq(fs_inode_get(fs, 78, &loaded), 0);
	ck_assert_int_eq(fs_inode_no_xattrs(fs, 77), 1);
	/* An inode read from the store may have xattrs; one not cached is
	 * unknown: both go to the engine. */
	ck_assert_int_eq(fs_inode_no_xattrs(fs, 78), 0);
	ck_assert_int_eq(fs_inode_no_xattrs(fs, 79), 0);
	fs_inode_unpin(fs, made);
	fs_inode_unpin(fs, loaded);
	ck_assert_int_eq(fs_inode_no_xattrs(fs, 77), 0);
	fs_free(fs);
}
END_TEST

static Suite *fs_inode_suite(void)
{
	Suite *s = suite_create("fs_inode");
	TCase *tc = tcase_create("table");

	tcase_add_test(tc, test_fs_inode__table_grows_and_empties);
	tcase_add_test(tc, test_fs_inode__only_new_inodes_skip_xattr_reads);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(fs_inode_suite)
