/*
 * fuzz_crypt.c - fuzz target for the decoders of encrypted stores
 * (objstore/obj_crypt_key.c obj_crypt_keyobj_decode, objstore/obj_crypt.c
 * obj_crypt_unseal and obj_crypt_plain_size).
 *
 * The first byte picks what the rest is:
 *   0  a key object: decode must return 0 or -EINVAL, never crash, and a
 *      decoded object must encode back to the same bytes;
 *   1  ciphertext chunks of "sst/f" (chunk index and final flag from the
 *      next byte): unseal must fail with -EIO or return at most the
 *      plaintext size, never crash (a fixed data key: random bytes only
 *      pass with probability 2^-128);
 *   2  plaintext: sealed, unsealed back identical (from an input-chosen
 *      offset into the first chunk); then the byte at an
 *      input-chosen offset is flipped and unseal must refuse it; and
 *      plain_size(cipher_size(n)) == n.
 *
 *   libFuzzer:  scripts/fuzz SECONDS crypt
 *   replay (default): linked with tests/fuzz/replay_main.c, run over
 *   tests/fuzz/corpus/crypt by `make check`.
 */
#include "objstore/objstore.h"
#include "objstore/objstore_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct obj_crypt_secret *fuzz_key(void)
{
	static struct obj_crypt_secret *k;

	if (!k) {
		k = obj_crypt_secret_alloc();
		if (!k)
			abort();
		for (int i = 0; i < OBJ_CRYPT_KEY_LEN; i++)
			k->key[i] = (uint8_t)(i * 13 + 5);
		memset(k->id, 0x5a, OBJ_CRYPT_ID_LEN);
	}
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct obj_crypt_secret *k = fuzz_key();
	const char *why;
	uint64_t bad, plain;

	if (size < 2)
		return 0;
	switch (data[0] % 3) {
	case 0: {
		struct obj_crypt_keyobj ko;
		char back[1024];
		int rc = obj_crypt_keyobj_decode(&ko, data + 1, size - 1);
		if (rc == 0) {
			int n = obj_crypt_keyobj_encode(&ko, back, sizeof(back));
			if (n < 0 || (size_t)n != size - 1 || memcmp(back, data + 1, size - 1))
				__builtin_trap();
		} else if (rc != -EINVAL) {
			__builtin_trap();
		}
		break;
	}
	case 1: {
		uint8_t *buf = malloc(size);
		ssize_t n;
		if (!buf)
			return 0;
		memcpy(buf, data + 2, size - 2);
		n = obj_crypt_unseal(k, "sst/f", data[1] >> 1, buf, size - 2, data[1] & 1, 0,
				     &why, &bad);
		if (n >= 0 && (obj_crypt_plain_size(size - 2, &plain) || (uint64_t)n != plain))
			__builtin_trap();
		if (n < 0 && n != -EIO)
			__builtin_trap();
		free(buf);
		break;
	}
	default: {
		size_t len = size - 2;
		void *ct = NULL;
		size_t ct_len = 0;
		uint8_t *copy;
		size_t skip = len ? data[1] % (len < 16384 ? len : 16384) : 0;
		ssize_t n;
		if (obj_crypt_seal(k, "sst/f", data + 2, len, &ct, &ct_len))
			return 0;
		if (obj_crypt_plain_size(ct_len, &plain) || plain != len ||
		    obj_crypt_cipher_size(len) != ct_len)
			__builtin_trap();
		copy = malloc(ct_len);
		if (!copy) {
			free(ct);
			return 0;
		}
		memcpy(copy, ct, ct_len);
		n = obj_crypt_unseal(k, "sst/f", 0, copy, ct_len, 1, skip, &why, &bad);
		if (n != (ssize_t)(len - skip) || (len > skip && memcmp(copy, data + 2 + skip, len - skip)))
			__builtin_trap();
		((uint8_t *)ct)[(data[1] * 131u) % ct_len] ^= 0x01;
		if (obj_crypt_unseal(k, "sst/f", 0, ct, ct_len, 1, 0, &why, &bad) != -EIO)
			__builtin_trap();
		free(copy);
		free(ct);
		break;
	}
	}
	return 0;
}
