/*
 * fuzz_sst.c - fuzz target for the SST decoder (kv_sst_check_buffer: open,
 * verify, iterate and probe an SST held in memory).
 *
 * libFuzzer build (CRC checks off so mutations reach the decoders):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DSHALE_LIBFUZZER \
 *     -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -include config.h -I. \
 *     tests/fuzz/fuzz_sst.c kv/kv_sst_check.c kv/kv_sst_read.c kv/kv_sst_block.c \
 *     kv/kv_readahead.c kv/kv_sst_build.c kv/kv_sst_id.c kv/kv_bloom.c kv/kv_cache.c \
 *     kv/kv_ikey.c util/util_*.c -lzstd -lpthread
 *   ./a.out -close_fd_mask=2 tests/fuzz/corpus/sst
 *   (scripts: see the comment at the end of tests/fuzz/fuzz_sst_replay.sh)
 *
 * Without SHALE_LIBFUZZER this file has a main() that replays every file
 * of the directories (or files) given on the command line; `make check`
 * runs it over tests/fuzz/corpus/sst. `fuzz_sst --make-corpus DIR` writes
 * the seed corpus (valid SSTs of several shapes, plus mutations of them).
 *
 * A finding is a crash, a sanitizer report, or a result other than 0,
 * KV_ECORRUPT or -ENOMEM (-EIO: the reader disagrees with itself).
 */
#include "kv/kv_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Until the objstore module provides it on this branch; the real one
 * (same contract: free a buffer returned by get) wins at link time. */
__attribute__((weak)) void obj_buf_free(void *buf)
{
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int rc = kv_sst_check_buffer(data, size);
	if (rc != 0 && rc != KV_ECORRUPT && rc != -ENOMEM) {
		fprintf(stderr, "fuzz_sst: kv_sst_check_buffer returned %d (%s)\n", rc,
			kv_strerror(rc));
		__builtin_trap();
	}
	/* The index rebuild (kv_sst_rebuild.c) walks the same hostile bytes
	 * without an index: it must stay inside them, and what it finds must
	 * parse as the index block it claims to be. */
	struct kv_sst_rebuilt rb;
	rc = kv_sst_rebuild_index(data, size, &rb);
	if (rc != 0 && rc != -ENOMEM)
		__builtin_trap();
	if (rc == 0) {
		struct kv_sst_block idx;
		if (rb.data_end > size ||
		    kv_sst_block_parse(NULL, 0, rb.index.data, rb.index.len, &idx) != 0)
			__builtin_trap();
		kv_sst_rebuilt_free(&rb);
	}
	return 0;
}

#ifndef SHALE_LIBFUZZER

static int replay_file(const char *path, int *bad)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;
	int rc;

	if (!f) {
		fprintf(stderr, "fuzz_sst: %s: %s\n", path, strerror(errno));
		return -1;
	}
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			uint8_t *p = realloc(buf, cap);
			if (!p) {
				fclose(f);
				free(buf);
				return -1;
			}
			buf = p;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	rc = kv_sst_check_buffer(buf, len);
	if (rc != 0 && rc != KV_ECORRUPT && rc != -ENOMEM) {
		fprintf(stderr, "fuzz_sst: %s: %d (%s)\n", path, rc, kv_strerror(rc));
		(*bad)++;
	}
	free(buf);
	return rc == 0;
}

static int replay_path(const char *path, int *bad, int *files, int *valid)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "fuzz_sst: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		int v = replay_file(path, bad);
		if (v < 0)
			return -1;
		(*files)++;
		*valid += v;
		return 0;
	}
	DIR *d = opendir(path);
	struct dirent *de;
	if (!d) {
		fprintf(stderr, "fuzz_sst: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		char sub[4096];
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (replay_path(sub, bad, files, valid) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "fuzz_sst: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* One seed SST: n keys "key<i>" (some with 2 versions, some tombstones). */
static int make_seed(const char *dir, const char *name, int n, const struct kv_sst_options *o,
		     size_t vlen)
{
	struct kv_sst_builder *b;
	struct kv_sst_meta meta = { 0 };
	uint8_t *obj = NULL, ik[64], *val = calloc(1, vlen + 1);
	size_t len;
	int rc;

	if (!val || kv_sst_builder_create(&b, o))
		return -1;
	for (size_t i = 0; i < vlen; i++)
		val[i] = (uint8_t)('a' + i % 7);
	for (int i = 0; i < n; i++) {
		char k[32];
		int kl = snprintf(k, sizeof(k), "key%05d", i);
		for (int v = (i % 5 == 0) ? 2 : 1; v >= 1; v--) {
			enum kv_type t = (i % 11 == 3 && v == 1) ? KV_TYPE_DELETE : KV_TYPE_VALUE;
			kv_ikey_make(ik, k, (size_t)kl, (uint64_t)(100 + v), t);
			if (kv_sst_builder_add(b, ik, (size_t)kl + 8, val,
					       t == KV_TYPE_VALUE ? (size_t)(i % 3) * vlen / 2 : 0))
				goto fail;
		}
	}
	if (kv_sst_builder_finish(b, &obj, &len, &meta))
		goto fail;
	rc = write_file(dir, name, obj, len);
	/* Mutations: one flipped byte in each region, and a truncation. */
	for (int m = 0; m < 4 && rc == 0; m++) {
		static const double where[] = { 0.1, 0.5, 0.9, 0.99 };
		char mname[128];
		size_t at = (size_t)((double)len * where[m]);
		obj[at] ^= 0x41;
		snprintf(mname, sizeof(mname), "%s-flip%d", name, m);
		rc = write_file(dir, mname, obj, len);
		obj[at] ^= 0x41;
	}
	if (rc == 0) {
		char mname[128];
		snprintf(mname, sizeof(mname), "%s-trunc", name);
		rc = write_file(dir, mname, obj, len * 2 / 3);
	}
	free(obj);
	kv_sst_meta_clear(&meta);
	kv_sst_builder_free(b);
	free(val);
	return rc;
fail:
	kv_sst_builder_free(b);
	free(val);
	return -1;
}

static int make_corpus(const char *dir)
{
	struct kv_sst_options plain = { .block_size = 256, .restart_interval = 4 };
	struct kv_sst_options zstd = { .block_size = 512, .compression_level = 3 };
	struct kv_sst_options nofilter = { .bloom_bits_per_key = -1, .restart_interval = 1 };
	struct kv_sst_options dflt = { 0 };

	if (make_seed(dir, "empty", 0, &dflt, 0) || make_seed(dir, "one", 1, &dflt, 10) ||
	    make_seed(dir, "small-plain", 40, &plain, 20) ||
	    make_seed(dir, "small-zstd", 60, &zstd, 100) ||
	    make_seed(dir, "nofilter", 30, &nofilter, 8))
		return 1;
	return 0;
}

int main(int argc, char **argv)
{
	int bad = 0, files = 0, valid = 0;

	if (argc == 3 && !strcmp(argv[1], "--make-corpus"))
		return make_corpus(argv[2]);
	if (argc < 2) {
		fprintf(stderr, "usage: fuzz_sst DIR|FILE... | --make-corpus DIR\n");
		return 2;
	}
	/* Corrupt inputs each log a line; only findings matter here. */
	if (!getenv("SHALEFS_LOG"))
		util_log_set_level(UTIL_LOG_ERROR);
	for (int i = 1; i < argc; i++)
		if (replay_path(argv[i], &bad, &files, &valid) < 0)
			return 2;
	printf("fuzz_sst: %d inputs, %d valid SSTs, %d findings\n", files, valid, bad);
	return bad || files == 0 ? 1 : 0;
}

#endif /* !SHALE_LIBFUZZER */
