/*
 * fuzz_wal.c - fuzz target for the WAL object decoder (kv/kv_wal.c).
 *
 * Feeds arbitrary bytes to kv_wal_decode and walks each record's entries
 * with kv_batch_each, touching every key and value byte so ASan sees any
 * out-of-bounds slice. The decoder must return 0 or KV_ECORRUPT, never
 * crash, and never call back for an object it then rejects.
 *
 * Two builds:
 *   libFuzzer:  clang -g -O1 -fsanitize=fuzzer,address,undefined -DSHALE_LIBFUZZER \
 *                 -include config.h -I. tests/fuzz/fuzz_wal.c kv/kv_*.c util/util_*.c
 *               ./a.out tests/fuzz/corpus/wal
 *   replay (default, run by `make check` via tests/fuzz/replay.sh): a
 *   main() that runs every file in the directories (or files) on argv
 *   through the target once.
 */
#include "kv/kv_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static int fuzz_entry(void *arg, enum kv_type type, const uint8_t *key, size_t klen,
		      const uint8_t *val, size_t vlen)
{
	unsigned *sum = arg;
	for (size_t i = 0; i < klen; i++)
		*sum += key[i];
	for (size_t i = 0; i < vlen; i++)
		*sum += val[i];
	*sum += (unsigned)type;
	return 0;
}

static int fuzz_record(void *arg, uint64_t first_seq, uint32_t count, const uint8_t *entries,
		       size_t len)
{
	/* The decoder verified the entries: walking them must succeed. */
	int rc = kv_batch_each(entries, len, count, fuzz_entry, arg);
	if (rc != 0)
		__builtin_trap();
	if (count == 0 || first_seq > KV_SEQ_MAX)
		__builtin_trap();
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kv_wal_header h;
	unsigned sum = 0;
	int rc = kv_wal_decode("fuzz", data, size, &h, fuzz_record, &sum);
	if (rc != 0 && rc != KV_ECORRUPT)
		__builtin_trap();
	/* The entry walker on its own, over the raw input. */
	if (size > 4)
		(void)kv_batch_each(data + 4, size - 4, util_get_be32(data), fuzz_entry, &sum);
	return 0;
}

#ifndef SHALE_LIBFUZZER
/* Run one file through the target. Returns 0 or -errno. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int rc = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			uint8_t *nb = realloc(buf, ncap);
			if (!nb) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0) {
			if (ferror(f))
				rc = -EIO;
			break;
		}
	}
	/* An exact-size copy, so ASan catches reads past the input. */
	if (!rc) {
		uint8_t *exact = malloc(len ? len : 1);
		if (!exact) {
			rc = -ENOMEM;
			goto out;
		}
		if (len)
			memcpy(exact, buf, len);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
out:
	free(buf);
	fclose(f);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned files = 0;
	int failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		if (!d) {
			int rc = replay_file(argv[i]);
			if (rc) {
				fprintf(stderr, "%s: %s\n", argv[i], util_strerror(rc));
				failed = 1;
			}
			files++;
			continue;
		}
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			char path[4096];
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			int rc = replay_file(path);
			if (rc) {
				fprintf(stderr, "%s: %s\n", path, util_strerror(rc));
				failed = 1;
			}
			files++;
		}
		closedir(d);
	}
	printf("replayed %u inputs\n", files);
	if (files == 0)
		failed = 1;
	return failed;
}
#endif
