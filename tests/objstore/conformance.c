/*
 * conformance.c - the objstore contract, written once and run against
 * every backend (file://, mem://, s3://). Each backend's test program
 * calls obj_conformance_suite() with a store URL.
 *
 * Every test works under its own fresh prefix, so suites may share a
 * store (an S3 bucket) and tests may run in any order.
 */
#include "tests/objstore/conformance.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/util.h"

static char conf_url[1024];
static struct obj_backend *store;
static char pfx[128];                 /* per-test prefix, "conf-<pid>-<n>/" */

static void conf_setup(void)
{
	static int n;
	struct obj_config c = OBJ_CONFIG_INIT;
	c.retry.max_total_ms = 60000;
	int rc = obj_open(&store, conf_url, &c);
	ck_assert_msg(rc == 0, "open %s: %d %s", conf_url, rc, obj_last_error());
	snprintf(pfx, sizeof(pfx), "conf-%d-%llx-%d/", (int)getpid(),
		 (unsigned long long)(util_now_ns() & 0xffffff), n++);
}

static void conf_teardown(void)
{
	obj_close(store);
	store = NULL;
}

static const char *nm(const char *rest)
{
	static _Thread_local char buf[2][600];
	static _Thread_local int k;
	k ^= 1;
	snprintf(buf[k], sizeof(buf[k]), "%s%s", pfx, rest);
	return buf[k];
}

static void fill_random(void *p, size_t n, uint64_t seed)
{
	struct util_rand r;
	uint8_t *b = p;
	util_rand_seed(&r, seed);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = util_rand_next(&r);
		memcpy(b + i, &v, n - i < 8 ? n - i : 8);
	}
}

START_TEST(test_obj_conformance__empty_object)
{
	void *buf = (void *)1;
	size_t len = 99;
	struct obj_stat st;

	ck_assert_int_eq(obj_put(store, nm("empty"), "", 0), 0);
	ck_assert_int_eq(obj_get(store, nm("empty"), 0, OBJ_WHOLE, &buf, &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_ptr_null(buf);
	ck_assert_int_eq(obj_head(store, nm("empty"), &st), 0);
	ck_assert_uint_eq(st.size, 0);
	ck_assert_int_eq(obj_put_if_absent(store, nm("empty2"), NULL, 0), 0);
	ck_assert_int_eq(obj_get(store, nm("empty2"), 0, 10, &buf, &len), 0);
	ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(test_obj_conformance__large_object)
{
	size_t n = 64u << 20;
	uint8_t *data = malloc(n);
	void *back = NULL;
	size_t len = 0;
	struct obj_stat st;

	ck_assert_ptr_nonnull(data);
	fill_random(data, n, 64);
	ck_assert_int_eq(obj_put(store, nm("big"), data, n), 0);
	ck_assert_int_eq(obj_head(store, nm("big"), &st), 0);
	ck_assert_uint_eq(st.size, n);
	ck_assert_int_eq(obj_get(store, nm("big"), 0, OBJ_WHOLE, &back, &len), 0);
	ck_assert_uint_eq(len, n);
	ck_assert(memcmp(back, data, n) == 0);
	free(back);
	/* A range deep inside. */
	ck_assert_int_eq(obj_get(store, nm("big"), 40000001, 1000003, &back, &len), 0);
	ck_assert_uint_eq(len, 1000003);
	ck_assert(memcmp(back, data + 40000001, len) == 0);
	free(back);
	free(data);
}
END_TEST

START_TEST(test_obj_conformance__ranges_at_edges)
{
	uint8_t data[1000];
	static const struct { uint64_t off, len, want; } cases[] = {
		{ 0, 0, 0 },     { 0, 1, 1 },       { 0, 999, 999 },  { 0, 1000, 1000 },
		{ 0, 1001, 1000 }, { 0, OBJ_WHOLE, 1000 }, { 1, OBJ_WHOLE, 999 }, { 500, 500, 500 },
		{ 500, 501, 500 }, { 999, 1, 1 },    { 999, 10, 1 },   { 999, OBJ_WHOLE, 1 },
		{ 1000, 1, 0 },  { 1000, OBJ_WHOLE, 0 }, { 1001, 5, 0 }, { 1u << 30, 5, 0 },
		{ 123, 0, 0 },
	};
	fill_random(data, sizeof(data), 1000);
	ck_assert_int_eq(obj_put(store, nm("r"), data, sizeof(data)), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		void *b = NULL;
		size_t len = 77;
		int rc = obj_get(store, nm("r"), cases[i].off, cases[i].len, &b, &len);
		ck_assert_msg(rc == 0, "case %zu: rc %d", i, rc);
		ck_assert_msg(len == cases[i].want, "case %zu: got %zu want %llu", i, len,
			      (unsigned long long)cases[i].want);
		if (len)
			ck_assert(memcmp(b, data + cases[i].off, len) == 0);
		free(b);
	}
}
END_TEST

struct atom_arg {
	atomic_int stop;
	atomic_int reads;
	int bad;
	const char *name;
};

static void *atom_reader(void *p)
{
	struct atom_arg *a = p;
	while (!atomic_load(&a->stop)) {
		void *b = NULL;
		size_t len = 0;
		if (obj_get(store, a->name, 0, OBJ_WHOLE, &b, &len) != 0)
			continue;
		const uint8_t *c = b;
		size_t want = c[0] == 'a' ? (1u << 20) : (512u << 10);
		int ok = len == want && (c[0] == 'a' || c[0] == 'b');
		for (size_t i = 0; ok && i < len; i++)
			ok = c[i] == c[0];
		if (!ok)
			a->bad++;
		atomic_fetch_add(&a->reads, 1);
		free(b);
	}
	return NULL;
}

START_TEST(test_obj_conformance__overwrite_atomic_under_reader)
{
	size_t na = 1u << 20, nb = 512u << 10;
	uint8_t *A = malloc(na), *B = malloc(nb);
	struct atom_arg arg = { .name = nm("atom") };
	pthread_t th;

	memset(A, 'a', na);
	memset(B, 'b', nb);
	ck_assert_int_eq(obj_put(store, arg.name, A, na), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, atom_reader, &arg), 0);
	/* At least 40 overwrites, and on until the reader has read 20 times
	 * (a fast store can finish 40 puts before the reader starts). */
	for (int i = 0; i < 40 || (atomic_load(&arg.reads) < 20 && i < 100000); i++)
		ck_assert_int_eq(obj_put(store, arg.name, i % 2 ? A : B, i % 2 ? na : nb), 0);
	atomic_store(&arg.stop, 1);
	pthread_join(th, NULL);
	ck_assert_int_eq(arg.bad, 0);
	ck_assert_int_ge(atomic_load(&arg.reads), 20);
	free(A);
	free(B);
}
END_TEST

struct race_arg {
	const char *name;
	int id;
	int rc;
	pthread_barrier_t *bar;
};

static void *race_thread(void *p)
{
	struct race_arg *a = p;
	char body[32];
	int n = snprintf(body, sizeof(body), "winner-%d", a->id);
	pthread_barrier_wait(a->bar);
	a->rc = obj_put_if_absent(store, a->name, body, (size_t)n);
	return NULL;
}

START_TEST(test_obj_conformance__put_if_absent_race_16_threads)
{
	for (int round = 0; round < 5; round++) {
		pthread_t th[16];
		struct race_arg a[16];
		pthread_barrier_t bar;
		char name[64];
		int wins = 0, winner = -1;

		snprintf(name, sizeof(name), "race-%d", round);
		pthread_barrier_init(&bar, NULL, 16);
		for (int i = 0; i < 16; i++) {
			a[i] = (struct race_arg){ .name = nm(name), .id = i, .bar = &bar };
			a[i].name = strdup(a[i].name);
			ck_assert_int_eq(pthread_create(&th[i], NULL, race_thread, &a[i]), 0);
		}
		for (int i = 0; i < 16; i++)
			pthread_join(th[i], NULL);
		for (int i = 0; i < 16; i++) {
			ck_assert_msg(a[i].rc == 0 || a[i].rc == -EEXIST, "thread %d rc %d", i, a[i].rc);
			if (a[i].rc == 0) {
				wins++;
				winner = i;
			}
		}
		ck_assert_int_eq(wins, 1);
		void *b = NULL;
		size_t len = 0;
		char want[32];
		snprintf(want, sizeof(want), "winner-%d", winner);
		ck_assert_int_eq(obj_get(store, a[0].name, 0, OBJ_WHOLE, &b, &len), 0);
		ck_assert_uint_eq(len, strlen(want));
		ck_assert(memcmp(b, want, len) == 0);
		free(b);
		for (int i = 0; i < 16; i++)
			free((void *)a[i].name);
		pthread_barrier_destroy(&bar);
	}
}
END_TEST

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct put_range_arg {
	char **names;
	size_t from, to;
	int rc;
};

static void *put_range(void *p)
{
	struct put_range_arg *a = p;
	for (size_t i = a->from; i < a->to && !a->rc; i++)
		a->rc = obj_put(store, a->names[i], a->names[i], strlen(a->names[i]));
	return NULL;
}

START_TEST(test_obj_conformance__list_order_and_paging)
{
	enum { N = 2500 };
	char **names = calloc(N, sizeof(char *));
	/* Shapes that trip a naive directory walk: "d03.x" sorts before
	 * "d03/" although the directory d03 comes first by name. */
	for (size_t i = 0; i < N; i++) {
		char tail[64];
		size_t d = i % 7;
		switch (i % 5) {
		case 0: snprintf(tail, sizeof(tail), "d%02zu/obj%05zu", d, i); break;
		case 1: snprintf(tail, sizeof(tail), "d%02zu.x%05zu", d, i); break;
		case 2: snprintf(tail, sizeof(tail), "d%02zu-%05zu", d, i); break;
		case 3: snprintf(tail, sizeof(tail), "d%02zu/sub/o%05zu", d, i); break;
		default: snprintf(tail, sizeof(tail), "top%05zu%02zu", d, i); break;
		}
		names[i] = strdup(nm(tail));
	}
	/* Upload with a few threads: 2,500 sequential puts are slow on S3. */
	pthread_t th[8];
	struct put_range_arg pa[8];
	for (int t = 0; t < 8; t++) {
		pa[t] = (struct put_range_arg){ names, (size_t)t * N / 8, (size_t)(t + 1) * N / 8, 0 };
		pthread_create(&th[t], NULL, put_range, &pa[t]);
	}
	for (int t = 0; t < 8; t++) {
		pthread_join(th[t], NULL);
		ck_assert_int_eq(pa[t].rc, 0);
	}
	qsort(names, N, sizeof(char *), cmp_str);

	static const size_t pages[] = { 1000, 7, 333 };
	for (size_t p = 0; p < 3; p++) {
		size_t got = 0;
		char *after = NULL;
		int truncated = 1;
		while (truncated) {
			struct obj_list *l = NULL;
			ck_assert_int_eq(obj_list_page(store, pfx, after, pages[p], &l), 0);
			ck_assert_uint_le(l->count, pages[p]);
			for (size_t i = 0; i < l->count; i++, got++) {
				ck_assert_uint_lt(got, N);
				ck_assert_str_eq(l->entries[i].name, names[got]);
				ck_assert_uint_eq(l->entries[i].size, strlen(names[got]));
			}
			truncated = l->truncated;
			free(after);
			after = l->count ? strdup(l->entries[l->count - 1].name) : NULL;
			ck_assert(l->count > 0 || !truncated);
			obj_list_free(l);
		}
		free(after);
		ck_assert_uint_eq(got, N);
	}
	/* start_after in the middle, and a narrower prefix. */
	struct obj_list *l = NULL;
	ck_assert_int_eq(obj_list_page(store, pfx, names[1234], 5, &l), 0);
	ck_assert_uint_eq(l->count, 5);
	ck_assert_str_eq(l->entries[0].name, names[1235]);
	obj_list_free(l);
	size_t want = 0;
	for (size_t i = 0; i < N; i++)
		want += strncmp(names[i], nm("d03/"), strlen(nm("d03/"))) == 0;
	size_t count = 0;
	char *after = NULL;
	for (;;) {
		ck_assert_int_eq(obj_list_page(store, nm("d03/"), after, 100, &l), 0);
		for (size_t i = 0; i < l->count; i++)
			ck_assert(strncmp(l->entries[i].name, nm("d03/"), strlen(nm("d03/"))) == 0);
		count += l->count;
		free(after);
		after = l->count ? strdup(l->entries[l->count - 1].name) : NULL;
		int more = l->truncated;
		obj_list_free(l);
		if (!more)
			break;
	}
	free(after);
	ck_assert_uint_eq(count, want);
	ck_assert_uint_gt(want, 0);
	/* obj_list_each sees them all, in order. */
	for (size_t i = 0; i < N; i++)
		free(names[i]);
	free(names);
}
END_TEST

START_TEST(test_obj_conformance__delete_semantics)
{
	struct obj_stat st;
	void *b = NULL;
	size_t len;

	ck_assert_int_eq(obj_delete(store, nm("never-existed")), 0);
	ck_assert_int_eq(obj_head(store, nm("never-existed"), &st), -ENOENT);
	ck_assert_int_eq(obj_get(store, nm("never-existed"), 0, OBJ_WHOLE, &b, &len), -ENOENT);
	ck_assert_int_eq(obj_put(store, nm("x"), "abc", 3), 0);
	ck_assert_int_eq(obj_put_if_absent(store, nm("x"), "def", 3), -EEXIST);
	ck_assert_int_eq(obj_delete(store, nm("x")), 0);
	ck_assert_int_eq(obj_delete(store, nm("x")), 0);
	ck_assert_int_eq(obj_get(store, nm("x"), 0, OBJ_WHOLE, &b, &len), -ENOENT);
	ck_assert_int_eq(obj_put_if_absent(store, nm("x"), "ghi", 3), 0);
	ck_assert_int_eq(obj_get(store, nm("x"), 0, OBJ_WHOLE, &b, &len), 0);
	ck_assert(len == 3 && memcmp(b, "ghi", 3) == 0);
	free(b);
	const char *many[3] = { nm("m1"), NULL, NULL };
	char n2[600], n3[600];
	snprintf(n2, sizeof(n2), "%s", nm("m2"));
	snprintf(n3, sizeof(n3), "%s", nm("m3-missing"));
	many[0] = strdup(nm("m1"));
	many[1] = n2;
	many[2] = n3;
	ck_assert_int_eq(obj_put(store, many[0], "1", 1), 0);
	ck_assert_int_eq(obj_put(store, many[1], "2", 1), 0);
	ck_assert_int_eq(obj_delete_many(store, many, 3), 0);
	ck_assert_int_eq(obj_head(store, many[0], &st), -ENOENT);
	ck_assert_int_eq(obj_head(store, many[1], &st), -ENOENT);
	free((void *)many[0]);
}
END_TEST

START_TEST(test_obj_conformance__names_with_spaces_and_utf8)
{
	static const char *const tails[] = { "dir with space/file name.bin",
					     "na\xc3\xafve/\xe2\x98\x83 snow+man%20=&?.txt",
					     "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" };
	for (size_t i = 0; i < 3; i++) {
		void *b = NULL;
		size_t len;
		char body[16];
		int n = snprintf(body, sizeof(body), "body%zu", i);
		ck_assert_int_eq(obj_put(store, nm(tails[i]), body, (size_t)n), 0);
		ck_assert_int_eq(obj_get(store, nm(tails[i]), 0, OBJ_WHOLE, &b, &len), 0);
		ck_assert(len == (size_t)n && memcmp(b, body, len) == 0);
		free(b);
	}
	struct obj_list *l = NULL;
	ck_assert_int_eq(obj_list_page(store, pfx, NULL, 100, &l), 0);
	ck_assert_uint_eq(l->count, 3);
	ck_assert_str_eq(l->entries[0].name, nm(tails[0]));
	ck_assert_str_eq(l->entries[1].name, nm(tails[1]));
	ck_assert_str_eq(l->entries[2].name, nm(tails[2]));
	obj_list_free(l);
}
END_TEST

START_TEST(test_obj_conformance__invalid_names)
{
	static const char *const bad[] = { "", "/abs", "a//b", "a/./b", "a/../b", "trailing/", ".." };
	void *b = NULL;
	size_t len;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(obj_put(store, bad[i], "x", 1), -EINVAL);
		ck_assert_int_eq(obj_get(store, bad[i], 0, OBJ_WHOLE, &b, &len), -EINVAL);
	}
}
END_TEST

START_TEST(test_obj_conformance__token_round_trip)
{
	struct obj_stat st;
	ck_assert_int_eq(store->put_if_absent(store, nm("tok"), "t", 1, "tok123abc"), 0);
	ck_assert_int_eq(obj_head(store, nm("tok"), &st), 0);
	/* A backend may not store tokens (then it reports ""), never a wrong one. */
	ck_assert(st.token[0] == '\0' || strcmp(st.token, "tok123abc") == 0);
	ck_assert_uint_eq(st.size, 1);
}
END_TEST

Suite *obj_conformance_suite(const char *suite_name, const char *url)
{
	Suite *s = suite_create(suite_name);
	TCase *tc = tcase_create("conformance");

	snprintf(conf_url, sizeof(conf_url), "%s", url);
	tcase_add_checked_fixture(tc, conf_setup, conf_teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_obj_conformance__empty_object);
	tcase_add_test(tc, test_obj_conformance__large_object);
	tcase_add_test(tc, test_obj_conformance__ranges_at_edges);
	tcase_add_test(tc, test_obj_conformance__overwrite_atomic_under_reader);
	tcase_add_test(tc, test_obj_conformance__put_if_absent_race_16_threads);
	tcase_add_test(tc, test_obj_conformance__list_order_and_paging);
	tcase_add_test(tc, test_obj_conformance__delete_semantics);
	tcase_add_test(tc, test_obj_conformance__names_with_spaces_and_utf8);
	tcase_add_test(tc, test_obj_conformance__invalid_names);
	tcase_add_test(tc, test_obj_conformance__token_round_trip);
	suite_add_tcase(s, tc);
	return s;
}
