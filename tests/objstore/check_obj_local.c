/*
 * check_obj_local.c - the file:// backend: the conformance suite, the
 * put_if_absent race across processes, and the errors a real disk gives
 * (ENOSPC on a full filesystem, a read-only filesystem, bad roots).
 */
#include "tests/objstore/conformance.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/check_common.h"
#include "tests/check_main.h"
#include "util/util.h"

/* The directory of the conformance suite's store (the tests of this file
 * each get their own, check_dir). */
static char root[CHECK_PATH_MAX];

/* Fork 2 processes x 8 threads racing put_if_absent on one name per round. */
struct proc_race {
	struct obj_backend *b;
	const char *name;
	uint64_t start_ns;
	int rc;
};

static void *proc_race_thread(void *p)
{
	struct proc_race *r = p;
	while (util_wall_ns() < r->start_ns)
		;
	r->rc = obj_put_if_absent(r->b, r->name, "w", 1);
	return NULL;
}

START_TEST(test_obj_local__put_if_absent_race_2_processes)
{
	const char *url = check_dir_url;
	for (int round = 0; round < 20; round++) {
		char name[64];
		int pipes[2][2], total = 0;
		pid_t pid[2];
		uint64_t start = util_wall_ns() + 50000000ull;

		snprintf(name, sizeof(name), "prace/r%d", round);
		for (int p = 0; p < 2; p++) {
			ck_assert_int_eq(pipe(pipes[p]), 0);
			pid[p] = fork();
			ck_assert_int_ge(pid[p], 0);
			if (pid[p] == 0) {
				struct obj_backend *b;
				struct proc_race r[8];
				pthread_t th[8];
				int wins = 0;
				if (obj_open(&b, url, NULL))
					_exit(100);
				for (int t = 0; t < 8; t++) {
					r[t] = (struct proc_race){ b, name, start, 0 };
					pthread_create(&th[t], NULL, proc_race_thread, &r[t]);
				}
				for (int t = 0; t < 8; t++) {
					pthread_join(th[t], NULL);
					if (r[t].rc == 0)
						wins++;
					else if (r[t].rc != -EEXIST)
						_exit(101);
				}
				obj_close(b);
				_exit(wins);
			}
		}
		for (int p = 0; p < 2; p++) {
			int status;
			ck_assert_int_eq(waitpid(pid[p], &status, 0), pid[p]);
			ck_assert(WIFEXITED(status));
			ck_assert_int_lt(WEXITSTATUS(status), 100);
			total += WEXITSTATUS(status);
			close(pipes[p][0]);
			close(pipes[p][1]);
		}
		ck_assert_int_eq(total, 1);
	}
}
END_TEST

/* Large objects go through O_DIRECT with a padded last block that is cut
 * off again (obj_local_direct.c): every size around the alignment and the
 * bounce-buffer size reads back exactly, whole and in ranges at unaligned
 * offsets, on the disk and on a tmpfs (which may refuse O_DIRECT: then the
 * buffered fallback is what is checked). */
static void direct_round_trip(const char *url)
{
	static const size_t sizes[] = {
		0, 1, 4095, (128u << 10) - 1, 128u << 10, (128u << 10) + 1,
		(1u << 20) - 1, 1u << 20, (1u << 20) + 1, (3u << 20) + 4097, 8u << 20,
	};
	size_t maxn = 8u << 20;
	struct obj_backend *b;
	struct obj_stat st;
	uint8_t *data = malloc(maxn);
	char name[64];

	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < maxn; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	ck_assert_int_eq(obj_open(&b, url, NULL), 0);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		void *got;
		size_t got_len;

		data[0] = (uint8_t)k;           /* each object differs */
		snprintf(name, sizeof(name), "d/%zu", sizes[k]);
		ck_assert_int_eq(k % 2 ? obj_put(b, name, data, sizes[k])
				       : obj_put_if_absent(b, name, data, sizes[k]), 0);
		ck_assert_int_eq(obj_head(b, name, &st), 0);
		ck_assert_uint_eq(st.size, sizes[k]);
		ck_assert_int_eq(obj_get(b, name, 0, OBJ_WHOLE, &got, &got_len), 0);
		ck_assert_uint_eq(got_len, sizes[k]);
		ck_assert(sizes[k] == 0 || memcmp(got, data, sizes[k]) == 0);
		free(got);
		/* Ranged reads: aligned and not, ending inside the object
		 * and running past its end. */
		for (int r = 0; r < 4 && sizes[k] > 0; r++) {
			static const uint64_t offs[] = { 0, 1, 4097, 65536 };
			uint64_t off = offs[r] < sizes[k] ? offs[r] : sizes[k] - 1;
			uint64_t want = r % 2 ? sizes[k] : (300u << 10);
			size_t expect = sizes[k] - off < want ? sizes[k] - off : want;

			ck_assert_int_eq(obj_get(b, name, off, want, &got, &got_len), 0);
			ck_assert_uint_eq(got_len, expect);
			ck_assert(memcmp(got, data + off, expect) == 0);
			free(got);
		}
	}
	obj_close(b);
	free(data);
}

START_TEST(test_obj_local__direct_writes_round_trip)
{
	char dir[300], url[320];

	direct_round_trip(check_dir_url);
	if (geteuid() != 0)
		return;                 /* the tmpfs part needs root; CI runs as root */
	snprintf(dir, sizeof(dir), "%s-tmpfs", check_dir);
	mkdir(dir, 0755);
	ck_assert_int_eq(mount("tmpfs", dir, "tmpfs", 0, "size=64m"), 0);
	snprintf(url, sizeof(url), "file://%s", dir);
	direct_round_trip(url);
	umount(dir);
	rmdir(dir);
}
END_TEST

START_TEST(test_obj_local__enospc_leaves_no_partial_object)
{
	char dir[300], url[320];
	struct obj_backend *b;
	struct obj_list *l;
	struct obj_stat st;
	size_t n = 4u << 20;
	void *data;

	if (geteuid() != 0)
		return;                 /* needs a small tmpfs; CI runs as root */
	snprintf(dir, sizeof(dir), "%s-full", check_dir);
	mkdir(dir, 0755);
	ck_assert_int_eq(mount("tmpfs", dir, "tmpfs", 0, "size=1m"), 0);
	snprintf(url, sizeof(url), "file://%s", dir);
	ck_assert_int_eq(obj_open(&b, url, NULL), 0);
	data = calloc(1, n);
	ck_assert_int_eq(obj_put(b, "huge", data, n), -ENOSPC);
	ck_assert_ptr_nonnull(strstr(obj_last_error(), "huge"));
	ck_assert_int_eq(obj_put_if_absent(b, "huge2", data, n), -ENOSPC);
	ck_assert_int_eq(obj_head(b, "huge", &st), -ENOENT);
	ck_assert_int_eq(obj_list_page(b, "", NULL, 10, &l), 0);
	ck_assert_uint_eq(l->count, 0);
	obj_list_free(l);
	/* The space of the failed temp files was given back. */
	ck_assert_int_eq(obj_put(b, "small", data, 4096), 0);
	free(data);
	obj_close(b);
	umount(dir);
	rmdir(dir);
}
END_TEST

START_TEST(test_obj_local__readonly_fs_is_eacces)
{
	char dir[300], url[320];
	struct obj_backend *b;

	if (geteuid() != 0)
		return;
	snprintf(dir, sizeof(dir), "%s-ro", check_dir);
	mkdir(dir, 0755);
	ck_assert_int_eq(mount("tmpfs", dir, "tmpfs", MS_RDONLY, "size=1m"), 0);
	snprintf(url, sizeof(url), "file://%s", dir);
	/* The store cannot even make its temp directory. */
	int rc = obj_open(&b, url, NULL);
	ck_assert_int_eq(rc, -EACCES);
	ck_assert_ptr_nonnull(strstr(obj_last_error(), dir));
	umount(dir);
	rmdir(dir);
}
END_TEST

START_TEST(test_obj_local__bad_roots)
{
	struct obj_backend *b;
	char url[320];

	ck_assert_int_eq(obj_open(&b, "file:///nonexistent/shale/dir", NULL), -ENOENT);
	ck_assert_ptr_nonnull(strstr(obj_last_error(), "/nonexistent/shale/dir"));
	ck_assert_int_eq(obj_open(&b, "file://relative/dir", NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(obj_last_error(), "absolute"));
	snprintf(url, sizeof(url), "%s/afile", check_dir_url);
	FILE *f = fopen(url + 7, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(obj_open(&b, url, NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(obj_last_error(), "not a directory"));
}
END_TEST

START_TEST(test_obj_local__object_and_directory_name_clash)
{
	struct obj_backend *b;

	ck_assert_int_eq(obj_open(&b, check_dir_url, NULL), 0);
	ck_assert_int_eq(obj_put(b, "clash", "x", 1), 0);
	ck_assert_int_eq(obj_put(b, "clash/child", "y", 1), -EINVAL);
	ck_assert_int_eq(obj_put(b, ".tmp.shalefs/x", "y", 1), -EINVAL);
	obj_close(b);
}
END_TEST

/* Ranged GET of name at offset 1 for 2 bytes: the backend keeps such
 * files open (obj_local_fds.c). */
static void get_range(struct obj_backend *b, const char *name, int want_rc, const char *want)
{
	void *d = NULL;
	size_t n = 0;
	ck_assert_int_eq(obj_get(b, name, 1, 2, &d, &n), want_rc);
	if (want_rc == 0) {
		ck_assert_uint_eq(n, strlen(want));
		ck_assert_mem_eq(d, want, n);
	}
	if (d)
		obj_buf_free(d);
}

/*
 * Kept-open files must never serve an old version: an object replaced or
 * deleted through this handle or through another one (standing in for
 * another process on the same directory) is read anew, and more objects
 * than the cache holds keep reading right as entries are evicted.
 */
START_TEST(test_obj_local__open_files_see_replace_and_delete)
{
	struct obj_backend *a, *b;
	char name[32], want[8];

	ck_assert_int_eq(obj_open(&a, check_dir_url, NULL), 0);
	ck_assert_int_eq(obj_open(&b, check_dir_url, NULL), 0);
	ck_assert_int_eq(obj_put(a, "fd/x", "0abc", 4), 0);
	get_range(a, "fd/x", 0, "ab");
	ck_assert_int_eq(obj_put(a, "fd/x", "0def", 4), 0);      /* same handle */
	get_range(a, "fd/x", 0, "de");
	ck_assert_int_eq(obj_put(b, "fd/x", "0ghi", 4), 0);      /* the other one */
	get_range(a, "fd/x", 0, "gh");
	ck_assert_int_eq(obj_delete(b, "fd/x"), 0);
	get_range(a, "fd/x", -ENOENT, NULL);
	ck_assert_int_eq(obj_put_if_absent(b, "fd/x", "0jkl", 4), 0);
	get_range(a, "fd/x", 0, "jk");
	ck_assert_int_eq(obj_delete(a, "fd/x"), 0);
	get_range(a, "fd/x", -ENOENT, NULL);

	/* Twice the cache's size, read round-robin three times, with every
	 * third object replaced by the other handle between rounds. */
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 128; i++) {
			snprintf(name, sizeof(name), "fd/o%03d", i);
			int v = i % 3 == 0 && round == 2 ? (i + 50) % 100 : i % 100;
			if (round == 0 || v != i % 100) {
				snprintf(want, sizeof(want), "o%02d", v);
				ck_assert_int_eq(obj_put(b, name, want, 3), 0);
			}
			snprintf(want, sizeof(want), "%02d", v);
			get_range(a, name, 0, want);
		}
	}
	obj_close(b);
	obj_close(a);
}
END_TEST

static Suite *obj_local_suite(const char *url)
{
	Suite *s = obj_conformance_suite("obj_local", url);
	TCase *tc = tcase_create("local");

	tcase_add_checked_fixture(tc, check_dir_setup, check_dir_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_obj_local__put_if_absent_race_2_processes);
	tcase_add_test(tc, test_obj_local__direct_writes_round_trip);
	tcase_add_test(tc, test_obj_local__enospc_leaves_no_partial_object);
	tcase_add_test(tc, test_obj_local__readonly_fs_is_eacces);
	tcase_add_test(tc, test_obj_local__bad_roots);
	tcase_add_test(tc, test_obj_local__object_and_directory_name_clash);
	tcase_add_test(tc, test_obj_local__open_files_see_replace_and_delete);
	suite_add_tcase(s, tc);
	return s;
}

/* The conformance suite is built over a URL: its directory is made before
 * the suites and removed after the run. */
int main(void)
{
	char url[CHECK_PATH_MAX + 8];
	Suite *s;
	int rc = check_tmpdir_create(root, sizeof(root), "check-local");

	if (rc) {
		fprintf(stderr, "check_obj_local: mkdtemp %s: %s\n", root, strerror(-rc));
		return EXIT_FAILURE;
	}
	snprintf(url, sizeof(url), "file://%s", root);
	s = obj_local_suite(url);
	rc = check_main_run(&s, 1);
	check_tmpdir_remove(root);
	return rc;
}
