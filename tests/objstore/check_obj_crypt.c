/*
 * check_obj_crypt.c - the encryption wrapper over mem://: what is read is
 * exactly what was written, at every size and range; sizes are reported
 * as plaintext; and every tampering of the ciphertext (a flipped byte, a
 * cut, two objects' contents swapped, an object copied under another
 * name or from another store) reads as -EBADMSG naming the object, never as
 * other bytes. Keys: a wrong one, a missing one, a readable key file,
 * passphrases, and rekey.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "objstore/objstore.h"
#include "objstore/objstore_int.h"
#include "util/util.h"
#include "tests/check_common.h"
#include "tests/check_main.h"

static char crypt_dir[64];
static char key_a[128], key_b[128], pass_a[128], pass_b[128];
static char mem_url[64];

static void crypt_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

static void crypt_setup(void)
{
	static int seq;
	uint8_t k[32];

	snprintf(crypt_dir, sizeof(crypt_dir), "/tmp/check_obj_crypt.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(crypt_dir));
	snprintf(key_a, sizeof(key_a), "%s/a.key", crypt_dir);
	snprintf(key_b, sizeof(key_b), "%s/b.key", crypt_dir);
	snprintf(pass_a, sizeof(pass_a), "%s/a.pass", crypt_dir);
	snprintf(pass_b, sizeof(pass_b), "%s/b.pass", crypt_dir);
	for (int i = 0; i < 32; i++)
		k[i] = (uint8_t)(i * 7 + 1);
	crypt_write_file(key_a, k, 32, 0600);
	/* The hex form of another key. */
	crypt_write_file(key_b, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
			 65, 0600);
	crypt_write_file(pass_a, "correct horse battery staple\n", 29, 0400);
	crypt_write_file(pass_b, "another passphrase", 18, 0600);
	snprintf(mem_url, sizeof(mem_url), "mem://crypt-%d-%d", (int)getpid(), seq++);
}

static void crypt_teardown(void)
{
	char cmd[128];
	obj_mem_destroy(mem_url + 6);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", crypt_dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Open mem_url with the key file(s) given (NULL: none); returns obj_open's rc. */
static int crypt_open(struct obj_backend **b, const char *key_file, const char *pass_file,
		      int create)
{
	struct obj_config c = OBJ_CONFIG_INIT;
	c.no_retry = 1;
	c.crypt.key_file = key_file;
	c.crypt.passphrase_file = pass_file;
	c.crypt.create = create;
	return obj_open(b, mem_url, &c);
}

static struct obj_backend *crypt_open_ok(const char *key_file, int create)
{
	struct obj_backend *b = NULL;
	int rc = crypt_open(&b, key_file, NULL, create);
	ck_assert_msg(rc == 0, "open: %d %s", rc, obj_last_error());
	ck_assert(obj_is_encrypted(b));
	return b;
}

static struct obj_backend *crypt_raw(void)
{
	struct obj_backend *b = NULL;
	ck_assert_int_eq(crypt_open(&b, NULL, NULL, 0), 0);
	ck_assert(!obj_is_encrypted(b));
	return b;
}

static void crypt_fill(uint8_t *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)(x >> 16);
	}
}

/* get(off, len) through b must equal the same slice of want[0..n). */
static void crypt_check_range(struct obj_backend *b, const char *name, const uint8_t *want,
			      size_t n, uint64_t off, uint64_t len)
{
	void *got = NULL;
	size_t got_len = 0, exp;
	int rc = obj_get(b, name, off, len, &got, &got_len);

	ck_assert_msg(rc == 0, "get %s [%llu,+%llu): %d %s", name, (unsigned long long)off,
		      (unsigned long long)len, rc, obj_last_error());
	exp = off >= n ? 0 : (len == OBJ_WHOLE || off + len > n) ? n - (size_t)off : (size_t)len;
	ck_assert_msg(got_len == exp, "get %s [%llu,+%llu): %zu bytes, want %zu", name,
		      (unsigned long long)off, (unsigned long long)len, got_len, exp);
	if (exp)
		ck_assert(memcmp(got, want + off, exp) == 0);
	obj_buf_free(got);
}

START_TEST(test_obj_crypt__round_trip_sizes_and_ranges)
{
	static const size_t sizes[] = { 0, 1, 27, 28, 4095, 4096, 16383, 16384, 16385, 32768,
					32769, 100000, 3 * 16384 + 5, 1 << 20 };
	struct obj_backend *b = crypt_open_ok(key_a, 1), *raw;
	uint8_t *data = malloc(1 << 20);
	char name[64];

	raw = crypt_raw();
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		struct obj_stat st;
		uint64_t offs[] = { 0, 1, 100, 4096, 16383, 16384, 16385, 20000, n ? n - 1 : 0, n,
				    n + 1, n + 100000 };
		uint64_t lens[] = { 0, 1, 4096, 16384, 16385, 40000, OBJ_WHOLE };

		crypt_fill(data, n, (unsigned)s);
		snprintf(name, sizeof(name), "sst/obj-%zu", n);
		ck_assert_int_eq(obj_put(b, name, data, n), 0);
		ck_assert_int_eq(obj_head(b, name, &st), 0);
		ck_assert_uint_eq(st.size, n);
		/* Stored as ciphertext of the documented size. */
		ck_assert_int_eq(obj_head(raw, name, &st), 0);
		ck_assert_uint_eq(st.size, obj_crypt_cipher_size(n));
		for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
			for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++)
				crypt_check_range(b, name, data, n, offs[i], lens[j]);
	}
	/* list reports plaintext sizes; the marker passes in the clear. */
	ck_assert_int_eq(obj_put(b, "shalefs-store", "marker", 6), 0);
	{
		struct obj_list *l = NULL;
		void *m = NULL;
		size_t ml = 0;
		ck_assert_int_eq(obj_list_page(b, "sst/", NULL, 100, &l), 0);
		ck_assert_uint_eq(l->count, sizeof(sizes) / sizeof(sizes[0]));
		for (size_t i = 0; i < l->count; i++)
			ck_assert_uint_eq(l->entries[i].size,
					  strtoull(l->entries[i].name + strlen("sst/obj-"), NULL, 10));
		obj_list_free(l);
		ck_assert_int_eq(obj_get(raw, "shalefs-store", 0, OBJ_WHOLE, &m, &ml), 0);
		ck_assert_uint_eq(ml, 6);
		ck_assert(memcmp(m, "marker", 6) == 0);
		obj_buf_free(m);
	}
	/* put_if_absent goes through the same framing. */
	crypt_fill(data, 50000, 99);
	ck_assert_int_eq(obj_put_if_absent(b, "wal/1", data, 50000), 0);
	ck_assert_int_eq(obj_put_if_absent(b, "wal/1", data, 50000), -EEXIST);
	crypt_check_range(b, "wal/1", data, 50000, 16000, 1000);
	free(data);
	obj_close(raw);
	obj_close(b);
}
END_TEST

/* Puts of tables' sizes, in an order that makes the wrapper seal into the
 * buffer it kept from an earlier, bigger put (SPARE in obj_crypt.c) and
 * also pass it over: each object reads back whole, of its own size. */
START_TEST(test_obj_crypt__reused_seal_buffer)
{
	static const size_t sizes[] = { 9 << 20, 6 << 20, (6 << 20) - 7, 1 << 20, 12 << 20,
					7 << 20, 5 << 20 };
	const size_t n = sizeof(sizes) / sizeof(sizes[0]);
	struct obj_backend *b = crypt_open_ok(key_a, 1);
	uint8_t *data = malloc(12 << 20);
	char name[64];

	for (size_t i = 0; i < n; i++) {
		crypt_fill(data, sizes[i], (unsigned)i + 7);
		snprintf(name, sizeof(name), "sst/big-%zu", i);
		ck_assert_int_eq(obj_put(b, name, data, sizes[i]), 0);
	}
	for (size_t i = 0; i < n; i++) {
		struct obj_stat st;
		crypt_fill(data, sizes[i], (unsigned)i + 7);
		snprintf(name, sizeof(name), "sst/big-%zu", i);
		ck_assert_int_eq(obj_head(b, name, &st), 0);
		ck_assert_uint_eq(st.size, sizes[i]);
		crypt_check_range(b, name, data, sizes[i], 0, OBJ_WHOLE);
	}
	free(data);
	obj_close(b);
}
END_TEST

/* Two puts at once (a flush and a compaction) each seal into a buffer of
 * their own, kept ones or fresh, and every object reads back whole. */
struct crypt_putter {
	struct obj_backend *b;
	unsigned id;
	int rc;
};

static void *crypt_putter_main(void *arg)
{
	struct crypt_putter *p = arg;
	uint8_t *data = malloc(8 << 20);
	char name[64];

	for (unsigned i = 0; i < 12 && !p->rc; i++) {
		size_t n = ((size_t)(5 + (i + p->id) % 4) << 20) - 13 * i;
		crypt_fill(data, n, p->id * 100 + i);
		snprintf(name, sizeof(name), "sst/par-%u-%u", p->id, i);
		p->rc = obj_put(p->b, name, data, n);
	}
	free(data);
	return NULL;
}

START_TEST(test_obj_crypt__concurrent_puts_keep_their_buffers)
{
	struct obj_backend *b = crypt_open_ok(key_a, 1);
	struct crypt_putter p[2] = { { b, 1, 0 }, { b, 2, 0 } };
	pthread_t t[2];
	uint8_t *data = malloc(8 << 20);
	char name[64];

	for (int k = 0; k < 2; k++)
		ck_assert_int_eq(pthread_create(&t[k], NULL, crypt_putter_main, &p[k]), 0);
	for (int k = 0; k < 2; k++) {
		ck_assert_int_eq(pthread_join(t[k], NULL), 0);
		ck_assert_int_eq(p[k].rc, 0);
	}
	for (unsigned id = 1; id <= 2; id++) {
		for (unsigned i = 0; i < 12; i++) {
			size_t n = ((size_t)(5 + (i + id) % 4) << 20) - 13 * i;
			crypt_fill(data, n, id * 100 + i);
			snprintf(name, sizeof(name), "sst/par-%u-%u", id, i);
			crypt_check_range(b, name, data, n, 0, OBJ_WHOLE);
		}
	}
	free(data);
	obj_close(b);
}
END_TEST

START_TEST(test_obj_crypt__no_plaintext_in_ciphertext)
{
	struct obj_backend *b = crypt_open_ok(key_a, 1), *raw = crypt_raw();
	const char *secret = "UNIQUE-PLAINTEXT-MARKER-0123456789";
	char text[70000];
	void *ct = NULL;
	size_t ct_len = 0;

	for (size_t i = 0; i + strlen(secret) < sizeof(text); i += strlen(secret))
		memcpy(text + i, secret, strlen(secret));
	ck_assert_int_eq(obj_put(b, "sst/t", text, sizeof(text)), 0);
	ck_assert_int_eq(obj_get(raw, "sst/t", 0, OBJ_WHOLE, &ct, &ct_len), 0);
	ck_assert_ptr_null(memmem(ct, ct_len, "UNIQUE-PLAINTEXT", 16));
	obj_buf_free(ct);
	obj_close(raw);
	obj_close(b);
}
END_TEST

/* get of name through b fails with -EBADMSG (authentication) and an error naming it. */
static void crypt_check_eio(struct obj_backend *b, const char *name, uint64_t off, uint64_t len)
{
	void *got = NULL;
	size_t got_len = 0;
	int rc = obj_get(b, name, off, len, &got, &got_len);

	ck_assert_msg(rc == -EBADMSG, "get %s [%llu,+%llu): %d, want -EBADMSG", name,
		      (unsigned long long)off, (unsigned long long)len, rc);
	ck_assert_ptr_null(got);
	ck_assert_msg(strstr(obj_last_error(), name) != NULL, "error '%s' does not name %s",
		      obj_last_error(), name);
}

static void crypt_raw_put(struct obj_backend *raw, const char *name, const void *d, size_t n)
{
	ck_assert_int_eq(obj_put(raw, name, d, n), 0);
}

START_TEST(test_obj_crypt__tampering_reads_as_eio)
{
	struct obj_backend *b = crypt_open_ok(key_a, 1), *raw = crypt_raw();
	size_t n = 3 * 16384 + 100, ct_len = 0, ct2_len = 0;
	uint8_t *data = malloc(n);
	uint8_t *ct = NULL, *ct2 = NULL, *t;
	struct obj_stat st;

	crypt_fill(data, n, 5);
	ck_assert_int_eq(obj_put(b, "sst/a", data, n), 0);
	ck_assert_int_eq(obj_put(b, "sst/b", data, n), 0);        /* same plaintext */
	ck_assert_int_eq(obj_get(raw, "sst/a", 0, OBJ_WHOLE, (void **)&ct, &ct_len), 0);
	ck_assert_int_eq(obj_get(raw, "sst/b", 0, OBJ_WHOLE, (void **)&ct2, &ct2_len), 0);
	/* Fresh nonces: the same plaintext never gives the same ciphertext. */
	ck_assert(memcmp(ct, ct2, ct_len) != 0);
	t = malloc(ct_len);

	/* A flipped bit anywhere: nonce, data, tag, in each chunk. */
	size_t spots[] = { 0, 11, 12, 500, 16395, 16411, 16412, 2 * 16412 + 7, ct_len - 1 };
	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
		memcpy(t, ct, ct_len);
		t[spots[i]] ^= 0x10;
		crypt_raw_put(raw, "sst/x", t, ct_len);
		crypt_check_eio(b, "sst/x", 0, OBJ_WHOLE);
		/* The chunk holding the flip fails a ranged read too. */
		crypt_check_eio(b, "sst/x", (spots[i] / 16412) * 16384, 10);
	}
	/* Cut at a chunk boundary: the remaining chunk is not marked last. */
	crypt_raw_put(raw, "sst/x", ct, 2 * 16412);
	crypt_check_eio(b, "sst/x", 0, OBJ_WHOLE);
	crypt_check_eio(b, "sst/x", 16384, 100);
	crypt_check_eio(b, "sst/x", 3 * 16384, 10);      /* past the cut: proven, not empty */
	ck_assert_int_eq(obj_head(b, "sst/x", &st), 0);   /* a possible size ... */
	/* Cut inside a chunk, and inside a nonce+tag. */
	crypt_raw_put(raw, "sst/x", ct, ct_len - 5);
	crypt_check_eio(b, "sst/x", 0, OBJ_WHOLE);
	crypt_check_eio(b, "sst/x", 3 * 16384, 10);
	crypt_raw_put(raw, "sst/x", ct, 3 * 16412 + 10);
	crypt_check_eio(b, "sst/x", 0, OBJ_WHOLE);
	ck_assert_int_eq(obj_head(b, "sst/x", &st), -EBADMSG);  /* ... and an impossible one */
	/* Emptied. */
	crypt_raw_put(raw, "sst/x", ct, 0);
	crypt_check_eio(b, "sst/x", 0, OBJ_WHOLE);
	/* Extended by a chunk copied from its own start. */
	{
		uint8_t *big = malloc(ct_len + 16412);
		memcpy(big, ct, ct_len);
		memcpy(big + ct_len, ct, 16412);
		crypt_raw_put(raw, "sst/x", big, ct_len + 16412);
		crypt_check_eio(b, "sst/x", 0, OBJ_WHOLE);
		free(big);
	}
	/* Two chunks swapped. */
	memcpy(t, ct, ct_len);
	memcpy(t, ct + 16412, 16412);
	memcpy(t + 16412, ct, 16412);
	crypt_raw_put(raw, "sst/x", t, ct_len);
	crypt_check_eio(b, "sst/x", 0, OBJ_WHOLE);
	crypt_check_eio(b, "sst/x", 0, 100);
	/* Two objects' contents swapped (same sizes, same plaintext even). */
	crypt_raw_put(raw, "sst/a", ct2, ct2_len);
	crypt_raw_put(raw, "sst/b", ct, ct_len);
	crypt_check_eio(b, "sst/a", 0, OBJ_WHOLE);
	crypt_check_eio(b, "sst/b", 100, 10);
	/* Copied under another name (a rename in the bucket). */
	crypt_raw_put(raw, "sst/renamed", ct, ct_len);
	crypt_check_eio(b, "sst/renamed", 0, OBJ_WHOLE);
	ck_assert_uint_ge(check_obj_stat(b, "objstore_crypt_auth_failures"), 10);
	free(t);
	free(data);
	obj_buf_free(ct);
	obj_buf_free(ct2);
	obj_close(raw);
	obj_close(b);
}
END_TEST

START_TEST(test_obj_crypt__other_store_copy_fails)
{
	/* The same master key, two stores: an object copied from one into the
	 * other (same name) fails, since each store has its own data key and
	 * id. */
	struct obj_backend *b = crypt_open_ok(key_a, 1), *raw = crypt_raw(), *b2, *raw2;
	char url2[80];
	struct obj_config c = OBJ_CONFIG_INIT;
	void *ct = NULL;
	size_t ct_len = 0;

	ck_assert_int_eq(obj_put(b, "manifest/1", "hello", 5), 0);
	ck_assert_int_eq(obj_get(raw, "manifest/1", 0, OBJ_WHOLE, &ct, &ct_len), 0);
	snprintf(url2, sizeof(url2), "%s-2", mem_url);
	obj_mem_destroy(url2 + 6);
	c.no_retry = 1;
	c.crypt.key_file = key_a;
	c.crypt.create = 1;
	ck_assert_int_eq(obj_open(&b2, url2, &c), 0);
	ck_assert_int_eq(obj_put(b2, "manifest/1", "world", 5), 0);
	c.crypt.key_file = NULL;
	ck_assert_int_eq(obj_open(&raw2, url2, &c), 0);
	ck_assert_int_eq(obj_put(raw2, "manifest/1", ct, ct_len), 0);
	crypt_check_eio(b2, "manifest/1", 0, OBJ_WHOLE);
	obj_buf_free(ct);
	obj_close(raw2);
	obj_close(b2);
	obj_mem_destroy(url2 + 6);
	obj_close(raw);
	obj_close(b);
}
END_TEST

START_TEST(test_obj_crypt__keys_refused)
{
	struct obj_backend *b = NULL, *raw;
	char loose[160];

	/* No key object and no create: not an encrypted store. */
	ck_assert_int_eq(crypt_open(&b, key_a, NULL, 0), -ENOKEY);
	b = crypt_open_ok(key_a, 1);
	ck_assert_int_eq(obj_put(b, "sst/k", "abc", 3), 0);
	obj_close(b);
	/* Wrong key (hex form), wrong kind of key. */
	ck_assert_int_eq(crypt_open(&b, key_b, NULL, 0), -EKEYREJECTED);
	ck_assert_ptr_nonnull(strstr(obj_last_error(), "wrong key"));
	ck_assert_int_eq(crypt_open(&b, NULL, pass_a, 0), -EKEYREJECTED);
	/* create on an encrypted store with another key: refused, not replaced. */
	ck_assert_int_eq(crypt_open(&b, key_b, NULL, 1), -EKEYREJECTED);
	/* A key file others can read: refused, naming the file and its mode. */
	snprintf(loose, sizeof(loose), "%s/loose.key", crypt_dir);
	crypt_write_file(loose, "0123456789abcdef0123456789abcdef", 32, 0640);
	ck_assert_int_eq(crypt_open(&b, loose, NULL, 0), -EACCES);
	ck_assert_ptr_nonnull(strstr(obj_last_error(), loose));
	ck_assert_ptr_nonnull(strstr(obj_last_error(), "0640"));
	/* Not 32 bytes nor 64 hex digits. */
	crypt_write_file(loose, "short", 5, 0600);
	ck_assert_int_eq(crypt_open(&b, loose, NULL, 0), -EINVAL);
	/* The key object never holds the key or the data key in the clear. */
	raw = crypt_raw();
	{
		void *ko = NULL;
		size_t kl = 0;
		uint8_t k[32];
		for (int i = 0; i < 32; i++)
			k[i] = (uint8_t)(i * 7 + 1);
		ck_assert_int_eq(obj_get(raw, OBJ_CRYPT_KEY_OBJECT, 0, OBJ_WHOLE, &ko, &kl), 0);
		ck_assert_ptr_null(memmem(ko, kl, k, 32));
		obj_buf_free(ko);
	}
	/* The right key still works. */
	b = crypt_open_ok(key_a, 0);
	crypt_check_range(b, "sst/k", (const uint8_t *)"abc", 3, 0, OBJ_WHOLE);
	obj_close(b);
	/* create where an unencrypted store is: refused. */
	obj_mem_destroy(mem_url + 6);
	obj_close(raw);
	raw = crypt_raw();
	ck_assert_int_eq(obj_put(raw, "shalefs-store", "x", 1), 0);
	ck_assert_int_eq(crypt_open(&b, key_a, NULL, 1), -EEXIST);
	obj_close(raw);
}
END_TEST

START_TEST(test_obj_crypt__passphrase_and_rekey)
{
	struct obj_backend *b = NULL, *raw;
	struct obj_crypt_config old = { .passphrase_file = pass_a };
	struct obj_crypt_config nk = { .key_file = key_b };
	struct obj_crypt_config np = { .passphrase_file = pass_b };

	ck_assert_int_eq(crypt_open(&b, NULL, pass_a, 1), 0);
	ck_assert_int_eq(obj_put(b, "sst/p", "passphrase data", 15), 0);
	obj_close(b);
	ck_assert_int_eq(crypt_open(&b, NULL, pass_b, 0), -EKEYREJECTED);
	ck_assert_int_eq(crypt_open(&b, key_a, NULL, 0), -EKEYREJECTED);
	raw = crypt_raw();
	/* Passphrase -> key file: the data key is the same, so old objects read. */
	ck_assert_int_eq(obj_crypt_rekey(raw, &old, &nk), 0);
	ck_assert_int_eq(crypt_open(&b, NULL, pass_a, 0), -EKEYREJECTED);
	b = crypt_open_ok(key_b, 0);
	crypt_check_range(b, "sst/p", (const uint8_t *)"passphrase data", 15, 0, OBJ_WHOLE);
	obj_close(b);
	/* Wrong old key: nothing changes. */
	ck_assert_int_eq(obj_crypt_rekey(raw, &old, &np), -EKEYREJECTED);
	/* Key file -> passphrase. */
	ck_assert_int_eq(obj_crypt_rekey(raw, &nk, &np), 0);
	ck_assert_int_eq(crypt_open(&b, key_b, NULL, 0), -EKEYREJECTED);
	ck_assert_int_eq(crypt_open(&b, NULL, pass_b, 0), 0);
	crypt_check_range(b, "sst/p", (const uint8_t *)"passphrase data", 15, 0, OBJ_WHOLE);
	obj_close(b);
	/* A rekey that stopped after writing ".next": both keys open the store. */
	{
		void *cur = NULL;
		size_t cl = 0;
		ck_assert_int_eq(obj_get(raw, OBJ_CRYPT_KEY_OBJECT, 0, OBJ_WHOLE, &cur, &cl), 0);
		ck_assert_int_eq(obj_crypt_rekey(raw, &np, &nk), 0);
		/* Put the old wrapping back as the key object; ".next" has the new. */
		ck_assert_int_eq(obj_crypt_rekey(raw, &nk, &nk), 0);
		void *nw = NULL;
		size_t nl = 0;
		ck_assert_int_eq(obj_get(raw, OBJ_CRYPT_KEY_OBJECT, 0, OBJ_WHOLE, &nw, &nl), 0);
		ck_assert_int_eq(obj_put(raw, OBJ_CRYPT_KEY_NEXT, nw, nl), 0);
		ck_assert_int_eq(obj_put(raw, OBJ_CRYPT_KEY_OBJECT, cur, cl), 0);
		ck_assert_int_eq(crypt_open(&b, NULL, pass_b, 0), 0);
		obj_close(b);
		ck_assert_int_eq(crypt_open(&b, key_b, NULL, 0), 0);
		obj_close(b);
		obj_buf_free(cur);
		obj_buf_free(nw);
	}
	obj_close(raw);
}
END_TEST

START_TEST(test_obj_crypt__key_object_decoder)
{
	struct obj_crypt_keyobj k;
	char buf[1024];
	int n;

	memset(&k, 0, sizeof(k));
	k.kdf = OBJ_CRYPT_KDF_SCRYPT;
	k.scrypt_n = 1024;
	k.scrypt_r = 8;
	k.scrypt_p = 1;
	n = obj_crypt_keyobj_encode(&k, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(obj_crypt_keyobj_decode(&k, buf, (size_t)n), 0);
	/* Every single-byte change and every cut is refused. */
	for (int i = 0; i < n; i++) {
		char t[1024];
		memcpy(t, buf, (size_t)n);
		t[i] ^= 0x01;
		ck_assert_int_eq(obj_crypt_keyobj_decode(&k, t, (size_t)n), -EINVAL);
		ck_assert_int_eq(obj_crypt_keyobj_decode(&k, buf, (size_t)i), -EINVAL);
	}
}
END_TEST

static Suite *obj_crypt_suite(void)
{
	Suite *s = suite_create("obj_crypt");
	TCase *tc = tcase_create("crypt");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, crypt_setup, crypt_teardown);
	tcase_add_test(tc, test_obj_crypt__round_trip_sizes_and_ranges);
	tcase_add_test(tc, test_obj_crypt__reused_seal_buffer);
	tcase_add_test(tc, test_obj_crypt__concurrent_puts_keep_their_buffers);
	tcase_add_test(tc, test_obj_crypt__no_plaintext_in_ciphertext);
	tcase_add_test(tc, test_obj_crypt__tampering_reads_as_eio);
	tcase_add_test(tc, test_obj_crypt__other_store_copy_fails);
	tcase_add_test(tc, test_obj_crypt__keys_refused);
	tcase_add_test(tc, test_obj_crypt__passphrase_and_rekey);
	tcase_add_test(tc, test_obj_crypt__key_object_decoder);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(obj_crypt_suite)
