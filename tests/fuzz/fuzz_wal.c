/*
 * fuzz_wal.c - fuzz target for the WAL object decoder (kv/kv_wal.c).
 *
 * Feeds arbitrary bytes to kv_wal_decode and kv_wal_salvage and walks each record's entries
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
	/* The salvage walk (fsck --scrub --repair): the records it hands out
	 * must walk cleanly, and it must stop inside the input. */
	size_t end = 0;
	rc = kv_wal_salvage(data, size, &h, fuzz_record, &sum, &end);
	if ((rc != 0 && rc != KV_ECORRUPT) || end > size)
		__builtin_trap();
	/* The entry walker on its own, over the raw input. */
	if (size > 4)
		(void)kv_batch_each(data + 4, size - 4, util_get_be32(data), fuzz_entry, &sum);
	return 0;
}

/* The replay build's main() is tests/fuzz/replay_main.c. */
