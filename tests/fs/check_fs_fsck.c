/*
 * check_fs_fsck.c - fs_key.c codecs and fs_fsck.c, without FUSE.
 *
 * A filesystem is built key by key in a mem:// store (root, a directory,
 * a file with a chunk, an entry pair), checked clean, then broken one way
 * at a time: fsck must report exactly the problem injected.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_int.h"
#include "tests/check_common.h"
#include "tests/check_main.h"

static struct kv_db *db;

/* An engine over a fresh mem:// store (check_store). */
static void setup(void)
{
	struct kv_config c = KV_CONFIG_INIT;
	c.no_background = 1;
	check_mem_setup();
	ck_assert_int_eq(kv_open(&db, check_store, &c), 0);
}

static void teardown(void)
{
	kv_close(db);
	check_mem_teardown();
}

static void put(const struct fs_key *k, const void *v, size_t vl)
{
	ck_assert_int_eq(kv_put(db, k->b, k->len, v, vl), 0);
}

static void del(const struct fs_key *k)
{
	ck_assert_int_eq(kv_delete(db, k->b, k->len), 0);
}

static void put_inode(uint64_t ino, const struct fs_attr *a)
{
	struct fs_key k;
	void *v;
	size_t vl;
	ck_assert_int_eq(fs_attr_encode(a, NULL, 0, &v, &vl), 0);
	fs_key_inode(&k, ino);
	put(&k, v, vl);
	free(v);
}

static void put_dent(uint64_t parent, const char *name, uint64_t ino, uint8_t type,
		     uint64_t cookie)
{
	struct kv_batch *b;
	struct fs_dent d = { ino, type, cookie };
	ck_assert_int_eq(kv_batch_create(&b), 0);
	ck_assert_int_eq(fs_dent_put(b, parent, name, &d), 0);
	ck_assert_int_eq(kv_write(db, b), 0);
	kv_batch_free(b);
}

/* root(1) / dir(2) / file(3) with one 100-byte chunk. */
static struct fs_attr root_a, dir_a, file_a;

static void build(void)
{
	struct fs_super s = { FS_FORMAT_VERSION, FS_CHUNK_SIZE, { 1 }, 1026, 0 };
	uint8_t sv[FS_SUPER_LEN], data[100];
	struct fs_key k;

	fs_super_encode(sv, &s);
	fs_key_super(&k);
	put(&k, sv, sizeof(sv));
	root_a = (struct fs_attr){ .mode = S_IFDIR | 0755, .nlink = 3, .parent = 1,
				   .next_cookie = 4 };
	dir_a = (struct fs_attr){ .mode = S_IFDIR | 0755, .nlink = 2, .parent = 1,
				  .next_cookie = 4 };
	file_a = (struct fs_attr){ .mode = S_IFREG | 0644, .nlink = 1, .size = 100, .blocks = 1 };
	put_inode(1, &root_a);
	put_inode(2, &dir_a);
	put_inode(3, &file_a);
	put_dent(1, "dir", 2, S_IFDIR >> 12, 3);
	put_dent(2, "file", 3, S_IFREG >> 12, 3);
	memset(data, 'x', sizeof(data));
	fs_key_chunk(&k, 3, 0);
	put(&k, data, sizeof(data));
}

/* What the last run_fsck found, one problem per line, and its summary. */
static char found[4096];
static struct fs_fsck_summary sum;

static void collect(void *arg, const char *text)
{
	size_t n = strlen(found);
	(void)arg;
	snprintf(found + n, sizeof(found) - n, "%s\n", text);
}

static unsigned long run_fsck_mode(int live)
{
	struct fs_fsck_conf conf = { .live = live, .problem = collect };

	found[0] = '\0';
	ck_assert_int_eq(fs_fsck(db, &conf, &sum), 0);
	if (sum.problems)
		fprintf(stderr, "%s", found);
	return sum.problems;
}

static unsigned long run_fsck(void)
{
	return run_fsck_mode(0);
}

/* Did the last run report the problem `line`, word for word? */
static int found_line(const char *line)
{
	size_t n = strlen(line);

	for (const char *p = found; *p; p = strchr(p, '\n') + 1)
		if (!strncmp(p, line, n) && p[n] == '\n')
			return 1;
	return 0;
}

/* Assert that the last run reported exactly the problem `what` (which
 * object, and what is wrong with it). */
#define ck_assert_found(what) \
	ck_assert_msg(found_line(what), "fsck did not report '%s'; it found:\n%s", what, found)

/* Assert that the last run reported nothing. */
#define ck_assert_found_nothing() \
	ck_assert_msg(found[0] == '\0', "fsck reported:\n%s", found)

START_TEST(test_fs_key__attr_roundtrip)
{
	struct fs_attr a = { .mode = S_IFLNK | 0777, .uid = 7, .gid = 8, .nlink = 1, .size = 3,
			     .rdev = 99, .blocks = 5, .atime = { -5, 6 }, .mtime = { 7, 999999999 },
			     .ctime = { 1LL << 40, 1 }, .parent = 12, .next_cookie = 44 }, b;
	char *link = NULL;
	size_t ll = 0;
	void *v;
	size_t vl;

	ck_assert_int_eq(fs_attr_encode(&a, "abc", 3, &v, &vl), 0);
	memset(&b, 0xAA, sizeof(b));
	ck_assert_int_eq(fs_attr_decode(&b, &link, &ll, v, vl, 1), 0);
	ck_assert_uint_eq(b.mode, a.mode);
	ck_assert_uint_eq(b.uid, 7);
	ck_assert_uint_eq(b.gid, 8);
	ck_assert_uint_eq(b.nlink, 1);
	ck_assert_uint_eq(b.size, 3);
	ck_assert_uint_eq(b.rdev, 99);
	ck_assert_uint_eq(b.blocks, 5);
	ck_assert_int_eq(b.atime.sec, -5);
	ck_assert_uint_eq(b.atime.nsec, 6);
	ck_assert_uint_eq(b.mtime.nsec, 999999999);
	ck_assert_int_eq(b.ctime.sec, 1LL << 40);
	ck_assert_uint_eq(b.parent, 12);
	ck_assert_uint_eq(b.next_cookie, 44);
	ck_assert_str_eq(link, "abc");
	ck_assert_int_eq(ll, 3);
	free(link);
	ck_assert_int_eq(fs_attr_decode(&b, NULL, NULL, v, 10, 1), -EIO);
	((uint8_t *)v)[0] = 9;
	ck_assert_int_eq(fs_attr_decode(&b, NULL, NULL, v, vl, 1), -EIO);
	free(v);
}
END_TEST

START_TEST(test_fs_key__order)
{
	struct fs_key a, b;
	/* chunks of one inode sort by index, before the next inode's */
	fs_key_chunk(&a, 5, 255);
	fs_key_chunk(&b, 5, 256);
	ck_assert_int_lt(memcmp(a.b, b.b, a.len), 0);
	fs_key_chunk(&b, 6, 0);
	ck_assert_int_lt(memcmp(a.b, b.b, a.len), 0);
	fs_key_ino_end(&b, FS_K_CHUNK, 5);
	ck_assert_int_lt(memcmp(a.b, b.b, b.len), 0);
	fs_key_dent(&a, 5, "zzz", 3);
	fs_key_ino_end(&b, FS_K_DENT, 5);
	ck_assert_int_lt(memcmp(a.b, b.b, b.len), 0);
}
END_TEST

START_TEST(test_fs_fsck__clean)
{
	build();
	ck_assert_int_eq(run_fsck(), 0);
	ck_assert_found_nothing();
	/* It saw the whole graph: root, dir, file and their two entries. */
	ck_assert_uint_eq(sum.inodes, 3);
	ck_assert_uint_eq(sum.entries, 2);
	ck_assert_uint_eq(sum.open_orphans, 0);
}
END_TEST

START_TEST(test_fs_fsck__entry_to_missing_inode)
{
	build();
	put_dent(2, "ghost", 77, S_IFREG >> 12, 4);   /* and cookie 4 >= next 4 */
	ck_assert_int_eq(run_fsck(), 2);
	ck_assert_found("inode 77: named by 1 entry but has no inode record");
	ck_assert_found("directory 2: cookie 4 not below its next cookie 4");
}
END_TEST

START_TEST(test_fs_fsck__nlink_wrong)
{
	build();
	file_a.nlink = 2;
	put_inode(3, &file_a);
	ck_assert_int_eq(run_fsck(), 1);
	ck_assert_found("inode 3: nlink 2, named by 1 entry");
}
END_TEST

START_TEST(test_fs_fsck__dir_nlink_wrong)
{
	build();
	root_a.nlink = 2;
	put_inode(1, &root_a);
	ck_assert_int_eq(run_fsck(), 1);
	ck_assert_found("directory 1: nlink 2, expected 3 (2 + subdirectories)");
}
END_TEST

START_TEST(test_fs_fsck__chunk_beyond_size)
{
	build();
	file_a.size = 50;
	put_inode(3, &file_a);
	ck_assert_int_eq(run_fsck(), 1);
	ck_assert_found("inode 3: chunk data up to byte 100 beyond the size 50");
}
END_TEST

START_TEST(test_fs_fsck__blocks_wrong)
{
	build();
	file_a.blocks = 9;
	put_inode(3, &file_a);
	ck_assert_int_eq(run_fsck(), 1);
	ck_assert_found("inode 3: st_blocks 9, chunks hold 1");
}
END_TEST

START_TEST(test_fs_fsck__orphan_left)
{
	struct fs_key k;
	build();
	fs_key_orphan(&k, 3);
	put(&k, "", 0);
	ck_assert_int_eq(run_fsck(), 1);
	ck_assert_found("inode 3: orphan (unlinked while open) not reclaimed (nlink 1)");
	ck_assert_uint_eq(sum.open_orphans, 0);
	/* With a live writer an orphan is a file still open: no problem,
	 * counted as one open orphan. */
	ck_assert_int_eq(run_fsck_mode(1), 0);
	ck_assert_found_nothing();
	ck_assert_uint_eq(sum.open_orphans, 1);
}
END_TEST

START_TEST(test_fs_fsck__leaked_inode)
{
	build();
	put_inode(9, &file_a);       /* named by nothing; nlink 1 != 0 refs too */
	ck_assert_uint_eq(run_fsck(), 3);
	ck_assert_found("inode 9 is named by no entry and is not an orphan (leaked)");
	ck_assert_found("inode 9: nlink 1, named by 0 entries");
	ck_assert_found("inode 9: st_blocks 1, chunks hold 0");
}
END_TEST

START_TEST(test_fs_fsck__cookie_without_entry)
{
	struct fs_key k;
	build();
	fs_key_dent(&k, 2, "file", 4);
	del(&k);
	/* R key left; the file is now named by nothing (leaked) */
	ck_assert_int_eq(run_fsck(), 3);
	ck_assert_found("directory 2: cookie 3 ('file') has no matching entry");
	ck_assert_found("inode 3 is named by no entry and is not an orphan (leaked)");
	ck_assert_found("inode 3: nlink 1, named by 0 entries");
}
END_TEST

START_TEST(test_fs_fsck__wrong_parent_pointer)
{
	build();
	dir_a.parent = 3;
	put_inode(2, &dir_a);
	ck_assert_int_eq(run_fsck(), 1);
	ck_assert_found("directory 2: parent pointer 3, but directory 1 names it");
}
END_TEST

START_TEST(test_fs_fsck__empty_store)
{
	struct fs_fsck_conf conf = { .problem = collect };
	found[0] = '\0';
	ck_assert_int_eq(fs_fsck(db, &conf, &sum), -ENOENT);
	ck_assert_found_nothing();
}
END_TEST

static Suite *fs_fsck_suite(void)
{
	Suite *s = suite_create("fs_fsck");
	TCase *k = tcase_create("key");
	TCase *f = tcase_create("fsck");

	tcase_add_test(k, test_fs_key__attr_roundtrip);
	tcase_add_test(k, test_fs_key__order);
	suite_add_tcase(s, k);
	tcase_add_checked_fixture(f, setup, teardown);
	tcase_add_test(f, test_fs_fsck__clean);
	tcase_add_test(f, test_fs_fsck__entry_to_missing_inode);
	tcase_add_test(f, test_fs_fsck__nlink_wrong);
	tcase_add_test(f, test_fs_fsck__dir_nlink_wrong);
	tcase_add_test(f, test_fs_fsck__chunk_beyond_size);
	tcase_add_test(f, test_fs_fsck__blocks_wrong);
	tcase_add_test(f, test_fs_fsck__orphan_left);
	tcase_add_test(f, test_fs_fsck__leaked_inode);
	tcase_add_test(f, test_fs_fsck__cookie_without_entry);
	tcase_add_test(f, test_fs_fsck__wrong_parent_pointer);
	tcase_add_test(f, test_fs_fsck__empty_store);
	suite_add_tcase(s, f);
	return s;
}

CHECK_MAIN(fs_fsck_suite)
