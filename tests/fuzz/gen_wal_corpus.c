/*
 * gen_wal_corpus.c - writes the seed corpus for fuzz_wal into a directory:
 * valid WAL objects (fence, one record, several records with puts,
 * deletes, empty and larger values) and deterministic mutations of them
 * (byte flips, truncations, crafted bad entries with valid checksums).
 * Not built by default; regenerate with
 *   cc -include build/config.h -I. tests/fuzz/gen_wal_corpus.c kv/kv_*.c util/util_*.c \
 *      -o /tmp/gen && /tmp/gen tests/fuzz/corpus/wal
 */
#include "kv/kv_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int nfile;

static void emit(const char *dir, const char *tag, const uint8_t *p, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%03d-%s", dir, nfile++, tag);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void object(struct kv_buf *out, struct util_rand *r, int nrec, int maxv)
{
	struct kv_wal_header h = { .wal_id = 42, .writer_epoch = 3 };
	uint64_t seq = 100;
	out->len = 0;
	kv_wal_begin(out, &h);
	for (int i = 0; i < nrec; i++) {
		struct kv_batch *b;
		kv_batch_create(&b);
		int n = 1 + (int)util_rand_below(r, 4);
		for (int j = 0; j < n; j++) {
			uint8_t k[8], v[300];
			size_t kl = 1 + util_rand_below(r, sizeof(k));
			size_t vl = util_rand_below(r, (uint64_t)maxv + 1);
			for (size_t t = 0; t < kl; t++)
				k[t] = (uint8_t)('a' + util_rand_below(r, 26));
			memset(v, 'v', vl);
			if (util_rand_below(r, 3) == 0)
				kv_batch_delete(b, k, kl);
			else
				kv_batch_put(b, k, kl, v, vl);
		}
		kv_wal_append(out, seq, b->count, b->rep.data, b->rep.len);
		seq += b->count;
		kv_batch_free(b);
	}
	kv_wal_finish(out);
}

int main(int argc, char **argv)
{
	struct util_rand r;
	struct kv_buf o = { 0 };
	if (argc != 2)
		return 2;
	util_rand_seed(&r, 2024);

	object(&o, &r, 0, 0);
	emit(argv[1], "fence", o.data, o.len);
	object(&o, &r, 1, 8);
	emit(argv[1], "one", o.data, o.len);
	object(&o, &r, 5, 16);
	emit(argv[1], "five", o.data, o.len);
	object(&o, &r, 3, 300);
	emit(argv[1], "bigvals", o.data, o.len);

	/* Mutations of a three-record object. */
	object(&o, &r, 3, 6);
	uint8_t *m = malloc(o.len);
	for (int i = 0; i < 40; i++) {
		memcpy(m, o.data, o.len);
		m[util_rand_below(&r, o.len)] ^= (uint8_t)(1 + util_rand_below(&r, 255));
		emit(argv[1], "flip", m, o.len);
	}
	for (int i = 0; i < 16; i++)
		emit(argv[1], "trunc", o.data, util_rand_below(&r, o.len));

	/* Valid checksums, bad entries. */
	static const uint8_t bad[][8] = {
		{ 2, 1, 'k' },                              /* bad type */
		{ 0, 0 },                                   /* empty key */
		{ 1, 1, 'k', 0x80, 0x80, 0x80, 0x40 },      /* value too long */
		{ 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },  /* overlong varint */
		{ 0, 5, 'k' },                              /* key past the end */
	};
	static const size_t badlen[] = { 3, 2, 7, 8, 3 };
	for (size_t i = 0; i < sizeof(badlen) / sizeof(badlen[0]); i++) {
		struct kv_wal_header h = { 1, 1 };
		o.len = 0;
		kv_wal_begin(&o, &h);
		kv_wal_append(&o, 5, 1, bad[i], badlen[i]);
		kv_wal_finish(&o);
		emit(argv[1], "badentry", o.data, o.len);
	}
	free(m);
	kv_buf_free(&o);
	return 0;
}
