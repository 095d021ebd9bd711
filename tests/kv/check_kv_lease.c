/*
 * check_kv_lease.c - the writer lease, reader registrations and the store
 * marker (kv/kv_lease.c, kv/kv_store.c; docs/lease.md).
 *
 * Holders that are gone are real processes that exited (fork, open,
 * _exit without close); holders on another host are records written in
 * the documented text format with another machine id.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv/kv.h"
#include "objstore/objstore.h"
#include "util/util.h"
#include "tests/check_common.h"
#include "tests/check_main.h"

/* The store of the test: a file:// one in the test's directory
 * (check_dir_setup). */
static struct obj_backend *open_store(void)
{
	struct obj_backend *s = NULL;
	ck_assert_int_eq(obj_open(&s, check_dir_url, NULL), 0);
	return s;
}

static int open_db(struct obj_backend *s, struct kv_lease_conf *lc, enum kv_open_mode mode,
		   struct kv_db **db)
{
	struct kv_config c = KV_CONFIG_INIT;
	c.mode = mode;
	c.no_background = 1;
	c.lease = lc;
	return kv_open(db, s, &c);
}

/* Take, hold, release: the records say who and when. */
START_TEST(test_kv_lease__taken_and_released_by_a_writer)
{
	struct obj_backend *s = open_store();
	struct kv_lease_conf lc = { .mountpoint = "/mnt/a", .wait_ms = 0 };
	struct kv_lease_info l;
	struct kv_db *db;

	ck_assert_int_eq(kv_lease_read(s, &l), -ENOENT);
	ck_assert_int_eq(open_db(s, &lc, KV_OPEN_WRITER, &db), 0);
	ck_assert_int_eq(kv_lease_read(s, &l), 0);
	ck_assert_int_eq(l.held, 1);
	ck_assert_int_eq(l.gen, 1);
	ck_assert_int_eq(l.who.pid, getpid());
	ck_assert_str_eq(l.mountpoint, "/mnt/a");
	ck_assert_uint_eq(l.epoch, 1);
	ck_assert_int_eq(kv_lease_liveness(&l), KV_LEASE_LIVE);
	ck_assert_int_eq(kv_put(db, "k", 1, "v", 1), 0);
	ck_assert_int_eq(kv_close(db), 0);
	ck_assert_int_eq(kv_lease_read(s, &l), 0);
	ck_assert_int_eq(l.held, 0);
	ck_assert_int_eq(l.clean, 1);
	ck_assert_int_eq(l.gen, 2);
	ck_assert_int_eq(kv_lease_liveness(&l), KV_LEASE_FREE);
	/* The next writer takes it at once, and trims old records. */
	ck_assert_int_eq(open_db(s, &lc, KV_OPEN_WRITER, &db), 0);
	ck_assert_int_eq(kv_close(db), 0);
	ck_assert_int_eq(open_db(s, &lc, KV_OPEN_WRITER, &db), 0);
	ck_assert_int_eq(kv_lease_read(s, &l), 0);
	ck_assert_int_eq(l.gen, 5);
	ck_assert_uint_eq(l.epoch, 3);
	ck_assert_int_eq(kv_close(db), 0);
	{
		void *b = NULL;
		size_t n = 0;
		ck_assert_int_eq(obj_get(s, "lease/00000000000000000001", 0, OBJ_WHOLE, &b, &n),
				 -ENOENT);
	}
	obj_close(s);
}
END_TEST

static int waited;
static void on_wait(void *arg, const struct kv_lease_info *h)
{
	(void)arg;
	ck_assert_int_eq(h->who.pid, getpid());
	waited++;
}

/* A live holder on this host: waited for, then refused with its name. */
START_TEST(test_kv_lease__live_holder_is_waited_for_then_refused)
{
	struct obj_backend *s = open_store();
	struct kv_lease_info holder;
	struct kv_lease_conf lc = { .mountpoint = "/mnt/a" };
	struct kv_lease_conf lc2 = { .wait_ms = 300, .waiting = on_wait, .holder = &holder };
	struct kv_db *db, *db2 = NULL;
	uint64_t t0;
	char who[1400];

	ck_assert_int_eq(open_db(s, &lc, KV_OPEN_WRITER, &db), 0);
	waited = 0;
	t0 = util_now_ns();
	ck_assert_int_eq(open_db(s, &lc2, KV_OPEN_WRITER, &db2), -EBUSY);
	ck_assert_uint_ge(util_now_ns() - t0, 300ull * 1000000);
	ck_assert_int_eq(waited, 1);
	ck_assert_int_eq(holder.who.pid, getpid());
	kv_lease_describe(&holder, who, sizeof(who));
	ck_assert_ptr_nonnull(strstr(who, "on /mnt/a"));
	/* The holder was not disturbed: it still writes and closes cleanly. */
	ck_assert_int_eq(kv_put(db, "k", 1, "v", 1), 0);
	ck_assert_int_eq(kv_sync(db), 0);
	ck_assert_int_eq(kv_close(db), 0);
	obj_close(s);
}
END_TEST

struct closer {
	struct kv_db *db;
	unsigned after_ms;
};
static void *close_later(void *arg)
{
	struct closer *c = arg;
	usleep(c->after_ms * 1000);
	ck_assert_int_eq(kv_close(c->db), 0);
	return NULL;
}

/* Unmount-then-mount: the waiter gets the lease once the holder has
 * flushed and released, and sees everything it wrote. */
START_TEST(test_kv_lease__waiter_gets_it_after_release_with_all_data)
{
	struct obj_backend *s = open_store();
	struct kv_lease_conf lc = { 0 };
	struct kv_lease_conf lc2 = { .wait_ms = 10000, .waiting = on_wait };
	struct closer c = { .after_ms = 400 };
	struct kv_db *db2;
	pthread_t t;
	void *v = NULL;
	size_t vl;

	ck_assert_int_eq(open_db(s, &lc, KV_OPEN_WRITER, &c.db), 0);
	for (int i = 0; i < 100; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%03d", i);
		ck_assert_int_eq(kv_put(c.db, k, strlen(k), "value", 5), 0);
	}
	waited = 0;
	ck_assert_int_eq(pthread_create(&t, NULL, close_later, &c), 0);
	ck_assert_int_eq(open_db(s, &lc2, KV_OPEN_WRITER, &db2), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(waited, 1);
	ck_assert_int_eq(kv_get(db2, NULL, "k099", 4, &v, &vl), 0);
	free(v);
	ck_assert_int_eq(kv_close(db2), 0);
	obj_close(s);
}
END_TEST

/* A holder that died (kill -9) is taken over without asking. */
START_TEST(test_kv_lease__dead_holder_on_this_host_is_taken_over)
{
	struct obj_backend *s = open_store();
	struct kv_lease_conf lc = { .wait_ms = 0 };
	struct kv_lease_info l;
	struct kv_db *db;
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct obj_backend *cs = NULL;
		struct kv_db *cdb = NULL;
		if (obj_open(&cs, check_dir_url, NULL) || open_db(cs, &lc, KV_OPEN_WRITER, &cdb) ||
		    kv_put(cdb, "crash", 5, "v", 1) || kv_sync(cdb))
			_exit(1);
		_exit(0);                       /* no close: a crash */
	}
	/* Exited but not reaped: a zombie, which runs no code any more. */
	{
		siginfo_t si;
		ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	}
	ck_assert_int_eq(kv_lease_read(s, &l), 0);
	ck_assert_int_eq(l.held, 1);
	ck_assert_int_eq(l.who.pid, pid);
	ck_assert_int_eq(kv_lease_liveness(&l), KV_LEASE_DEAD);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(kv_lease_liveness(&l), KV_LEASE_DEAD);
	ck_assert_int_eq(open_db(s, &lc, KV_OPEN_WRITER, &db), 0);
	{
		void *v = NULL;
		size_t vl;
		ck_assert_int_eq(kv_get(db, NULL, "crash", 5, &v, &vl), 0);
		free(v);
	}
	ck_assert_int_eq(kv_lease_read(s, &l), 0);
	ck_assert_int_eq(l.who.pid, getpid());
	ck_assert_int_eq(kv_close(db), 0);
	obj_close(s);
}
END_TEST

/* Write a lease record by hand, in the documented format. */
static void put_record(struct obj_backend *s, uint64_t gen, const char *host_id, const char *state)
{
	char body[1024], name[64];
	int n = snprintf(body, sizeof(body),
			 "shalefs-lease 1\ngen %" PRIu64 "\nstate %s\nclean 0\nhost elsewhere\n"
			 "host_id %s\nboot_id b\npid_ns 1\npid 4242\nstart 7\nsince 1000000000\n"
			 "epoch 9\ncheckpoint \nmountpoint /srv/data\n", gen, state, host_id);
	n += snprintf(body + n, sizeof(body) - (size_t)n, "crc %08" PRIx32 "\n",
		      util_crc32c(0, body, (size_t)n));
	snprintf(name, sizeof(name), "lease/%020" PRIu64, gen);
	ck_assert_int_eq(obj_put(s, name, body, (size_t)n), 0);
}

/* Another host: refused at once (no wait), named; takeover fences it. */
START_TEST(test_kv_lease__other_host_refused_unless_takeover)
{
	struct obj_backend *s = open_store();
	struct kv_lease_info holder, l;
	struct kv_lease_conf lc = { .wait_ms = 5000, .holder = &holder };
	struct kv_db *db = NULL;
	uint64_t t0;

	put_record(s, 3, "0123456789abcdef0123456789abcdef", "held");
	t0 = util_now_ns();
	ck_assert_int_eq(open_db(s, &lc, KV_OPEN_WRITER, &db), -EBUSY);
	ck_assert_uint_lt(util_now_ns() - t0, 4000ull * 1000000);   /* no wait_ms of 5 s */
	ck_assert_str_eq(holder.who.host, "elsewhere");
	ck_assert_int_eq(holder.who.pid, 4242);
	ck_assert_str_eq(holder.mountpoint, "/srv/data");
	ck_assert_int_eq(kv_lease_liveness(&holder), KV_LEASE_REMOTE);
	lc.takeover = 1;
	ck_assert_int_eq(open_db(s, &lc, KV_OPEN_WRITER, &db), 0);
	ck_assert_int_eq(kv_lease_read(s, &l), 0);
	ck_assert_int_eq(l.gen, 4);
	ck_assert_int_eq(l.who.pid, getpid());
	ck_assert_int_eq(kv_close(db), 0);
	/* A released record of another host is simply taken. */
	put_record(s, 6, "0123456789abcdef0123456789abcdef", "released");
	lc.takeover = 0;
	ck_assert_int_eq(open_db(s, &lc, KV_OPEN_WRITER, &db), 0);
	ck_assert_int_eq(kv_close(db), 0);
	obj_close(s);
}
END_TEST

/* A damaged lease record is refused, not guessed at. */
START_TEST(test_kv_lease__corrupt_record_refused)
{
	struct obj_backend *s = open_store();
	struct kv_lease_info l;
	struct kv_lease_conf lc = { 0 };
	struct kv_db *db = NULL;
	const char *bad = "shalefs-lease 1\ngen 1\nstate held\ncrc 00000000\n";

	ck_assert_int_eq(obj_put(s, "lease/00000000000000000001", bad, strlen(bad)), 0);
	ck_assert_int_eq(kv_lease_read(s, &l), KV_ECORRUPT);
	ck_assert_int_eq(open_db(s, &lc, KV_OPEN_WRITER, &db), KV_ECORRUPT);
	obj_close(s);
}
END_TEST

struct rcount {
	int n;
	char ckpt[256];
	pid_t pid;
};
static int count_reader(void *arg, const struct kv_lease_info *r)
{
	struct rcount *c = arg;
	c->n++;
	snprintf(c->ckpt, sizeof(c->ckpt), "%s", r->checkpoint);
	c->pid = (pid_t)r->who.pid;
	return 0;
}

/* Readers register while open and never take the lease. */
START_TEST(test_kv_lease__readers_register_and_leave)
{
	struct obj_backend *s = open_store();
	struct kv_lease_conf lc = { .mountpoint = "/mnt/r" };
	struct kv_lease_info l;
	struct kv_db *w, *r, *cp;
	struct kv_config c = KV_CONFIG_INIT;
	struct rcount rc = { 0 };

	ck_assert_int_eq(open_db(s, &lc, KV_OPEN_WRITER, &w), 0);
	ck_assert_int_eq(kv_put(w, "k", 1, "v", 1), 0);
	ck_assert_int_eq(kv_db_checkpoint_create(w, "snap", 0), 0);
	ck_assert_int_eq(open_db(s, &lc, KV_OPEN_READONLY, &r), 0);
	c.mode = KV_OPEN_CHECKPOINT;
	c.checkpoint = "snap";
	c.no_background = 1;
	c.lease = &lc;
	ck_assert_int_eq(kv_open(&cp, s, &c), 0);
	ck_assert_int_eq(kv_readers_list(s, count_reader, &rc), 0);
	ck_assert_int_eq(rc.n, 2);
	ck_assert_int_eq(rc.pid, getpid());
	/* The writer still holds the lease, untouched. */
	ck_assert_int_eq(kv_lease_read(s, &l), 0);
	ck_assert_int_eq(l.held, 1);
	ck_assert_int_eq(l.gen, 1);
	ck_assert_int_eq(kv_put(w, "k2", 2, "v", 1), 0);
	ck_assert_int_eq(kv_sync(w), 0);
	ck_assert_int_eq(kv_close(r), 0);
	memset(&rc, 0, sizeof(rc));
	ck_assert_int_eq(kv_readers_list(s, count_reader, &rc), 0);
	ck_assert_int_eq(rc.n, 1);
	ck_assert_str_eq(rc.ckpt, "snap");
	ck_assert_int_eq(kv_close(cp), 0);
	memset(&rc, 0, sizeof(rc));
	ck_assert_int_eq(kv_readers_list(s, count_reader, &rc), 0);
	ck_assert_int_eq(rc.n, 0);
	ck_assert_int_eq(kv_close(w), 0);
	obj_close(s);
}
END_TEST

static int del_sst(void *arg, const char *name, uint64_t size)
{
	(void)size;
	return obj_delete(arg, name);
}

/* A mounted checkpoint deleted with --force: its reads fail once the
 * tables are gone, and the db says why instead of only "corrupt". */
START_TEST(test_kv_lease__deleted_checkpoint_is_named)
{
	struct obj_backend *s = open_store();
	struct kv_config c = KV_CONFIG_INIT;
	struct kv_db *w, *cp;
	char val[1024];
	void *v = NULL;
	size_t vl;

	c.no_background = 1;
	c.memtable_bytes = 64 << 10;
	ck_assert_int_eq(kv_open(&w, s, &c), 0);
	memset(val, 'v', sizeof(val));
	for (int i = 0; i < 400; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%04d", i);
		ck_assert_int_eq(kv_put(w, k, strlen(k), val, sizeof(val)), 0);
	}
	ck_assert_int_eq(kv_sync(w), 0);
	ck_assert_uint_gt(check_kv_stat(w, "l0_count"), 0);
	ck_assert_int_eq(kv_db_checkpoint_create(w, "snap", 0), 0);
	ck_assert_int_eq(kv_close(w), 0);
	c.mode = KV_OPEN_CHECKPOINT;
	c.checkpoint = "snap";
	ck_assert_int_eq(kv_open(&cp, s, &c), 0);
	ck_assert_uint_eq(check_kv_stat(cp, "checkpoint_deleted"), 0);
	ck_assert_int_eq(kv_checkpoint_delete(s, "snap"), 0);
	ck_assert_int_eq(obj_list_each(s, "sst/", 0, del_sst, s), 0);    /* what GC does later */
	ck_assert_int_eq(kv_get(cp, NULL, "k0000", 5, &v, &vl), KV_ECORRUPT);
	ck_assert_uint_eq(check_kv_stat(cp, "checkpoint_deleted"), 1);
	ck_assert_int_eq(kv_close(cp), 0);
	obj_close(s);
}
END_TEST

/* The marker: only an empty location is formatted; a store is one. */
START_TEST(test_kv_store__format_only_empty_locations)
{
	struct obj_backend *s = open_store();
	char first[64] = "";
	struct kv_db *db;
	struct kv_lease_conf lc = { 0 };

	ck_assert_int_eq(kv_store_check(s), -ENOENT);
	ck_assert_int_eq(obj_put(s, "photos/cat.jpg", "x", 1), 0);
	ck_assert_int_eq(kv_store_format(s, 0, first, sizeof(first)), -ENOTEMPTY);
	ck_assert_str_eq(first, "photos/cat.jpg");
	ck_assert_int_eq(kv_store_check(s), -ENOENT);
	ck_assert_int_eq(kv_store_format(s, 1, NULL, 0), 0);
	ck_assert_int_eq(kv_store_check(s), KV_STORE_MARKED);
	ck_assert_int_eq(kv_store_format(s, 1, NULL, 0), -EEXIST);
	ck_assert_int_eq(obj_delete(s, KV_STORE_MARKER), 0);
	/* A store made before the marker: manifests, no marker. */
	ck_assert_int_eq(open_db(s, &lc, KV_OPEN_WRITER, &db), 0);
	ck_assert_int_eq(kv_close(db), 0);
	ck_assert_int_eq(kv_store_check(s), KV_STORE_UNMARKED);
	ck_assert_int_eq(kv_store_format(s, 1, NULL, 0), -EEXIST);
	ck_assert_int_eq(kv_store_mark(s), 0);
	ck_assert_int_eq(kv_store_check(s), KV_STORE_MARKED);
	/* A newer format is refused by version, a damaged marker as corrupt. */
	{
		char body[128];
		int n = snprintf(body, sizeof(body), "shalefs-store 99\nuuid 00\ncreated 1\n");
		n += snprintf(body + n, sizeof(body) - (size_t)n, "crc %08" PRIx32 "\n",
			      util_crc32c(0, body, (size_t)n));
		ck_assert_int_eq(obj_put(s, KV_STORE_MARKER, body, (size_t)n), 0);
		ck_assert_int_eq(kv_store_check(s), -EPROTO);
		body[20] ^= 1;
		ck_assert_int_eq(obj_put(s, KV_STORE_MARKER, body, (size_t)n), 0);
		ck_assert_int_eq(kv_store_check(s), KV_ECORRUPT);
	}
	obj_close(s);
}
END_TEST

static Suite *kv_lease_suite(void)
{
	Suite *s = suite_create("kv_lease");
	TCase *tc = tcase_create("lease");
	tcase_add_checked_fixture(tc, check_dir_setup, check_dir_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_kv_lease__taken_and_released_by_a_writer);
	tcase_add_test(tc, test_kv_lease__live_holder_is_waited_for_then_refused);
	tcase_add_test(tc, test_kv_lease__waiter_gets_it_after_release_with_all_data);
	tcase_add_test(tc, test_kv_lease__dead_holder_on_this_host_is_taken_over);
	tcase_add_test(tc, test_kv_lease__other_host_refused_unless_takeover);
	tcase_add_test(tc, test_kv_lease__corrupt_record_refused);
	tcase_add_test(tc, test_kv_lease__readers_register_and_leave);
	tcase_add_test(tc, test_kv_lease__deleted_checkpoint_is_named);
	tcase_add_test(tc, test_kv_store__format_only_empty_locations);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(kv_lease_suite)
