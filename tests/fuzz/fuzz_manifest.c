/*
 * fuzz_manifest.c - fuzz target for the manifest decoder (kv/kv_manifest.c).
 *
 * Any input must decode to a manifest or KV_ECORRUPT, never crash; a
 * manifest that decodes must survive encode -> decode -> encode unchanged
 * (varints may arrive in a longer form than the encoder writes, so the
 * first re-encoding may differ from the input, but never the second).
 *
 *   libFuzzer:  clang -g -O1 -fsanitize=fuzzer,address,undefined -include config.h -I. \
 *                 tests/fuzz/fuzz_manifest.c kv/kv_[a-z]*.c objstore/obj_[a-z]*.c util/util_[a-z]*.c ...
 *   replay:     linked with tests/fuzz/replay_main.c, run by `make check`.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kv_manifest *m = NULL;
	int rc = kv_manifest_decode("fuzz", data, size, &m);
	if (rc != 0 && rc != KV_ECORRUPT && rc != -ENOMEM)
		__builtin_trap();
	if (rc == 0) {
		struct kv_buf b1 = { 0 }, b2 = { 0 };
		struct kv_manifest *m2 = NULL;
		if (kv_manifest_encode(m, &b1) == 0) {
			if (kv_manifest_decode("fuzz-reencoded", b1.data, b1.len, &m2) != 0)
				__builtin_trap();
			if (kv_manifest_encode(m2, &b2) == 0 &&
			    (b1.len != b2.len || memcmp(b1.data, b2.data, b1.len)))
				__builtin_trap();
		}
		kv_buf_free(&b1);
		kv_buf_free(&b2);
		kv_manifest_free(m2);
		kv_manifest_free(m);
	}
	return 0;
}
