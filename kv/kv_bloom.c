/*
 * kv_bloom.c - the bloom filter stored in every SST, over USER keys.
 *
 * FILTER FORMAT (persistent: the hash and the probe sequence below are
 * part of the SST format and must never change for format version 1)
 *
 *   m bytes of bit array (bit i is byte i/8, mask 1 << (i%8)), m >= 8
 *   1 byte  k, the number of probes (1..30)
 *
 * A key is added by k probes derived from one 32-bit hash h with double
 * hashing (Kirsch-Mitzenmacher): delta = rotr(h, 17), probe j sets bit
 * (h + j*delta) mod (8*m). With bits_per_key = 10 and k = 6 the false
 * positive rate is about 0.8%.
 *
 * A filter the reader cannot make sense of (too short, k out of range)
 * answers "may contain": a bad filter can cost a block read, never a
 * wrong answer or a crash. The filter block is CRC-checked by the reader
 * before it gets here anyway.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <string.h>

static inline uint32_t kv_bloom_rotl(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/*
 * kv_bloom_hash - MurmurHash3 (x86, 32-bit) of key with a fixed seed.
 * Input words are read little-endian explicitly so the result is the same
 * on every host: the value is persisted (through the filter bits).
 */
uint32_t kv_bloom_hash(const void *key, size_t len)
{
	const uint8_t *p = key;
	const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
	uint32_t h = 0xbc9f1d34u;
	size_t nblocks = len / 4;

	for (size_t i = 0; i < nblocks; i++, p += 4) {
		uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			     (uint32_t)p[3] << 24;
		k *= c1;
		k = kv_bloom_rotl(k, 15);
		k *= c2;
		h ^= k;
		h = kv_bloom_rotl(h, 13);
		h = h * 5 + 0xe6546b64u;
	}
	uint32_t k = 0;
	switch (len & 3) {
	case 3:
		k ^= (uint32_t)p[2] << 16;
		/* fall through */
	case 2:
		k ^= (uint32_t)p[1] << 8;
		/* fall through */
	case 1:
		k ^= p[0];
		k *= c1;
		k = kv_bloom_rotl(k, 15);
		k *= c2;
		h ^= k;
	}
	h ^= (uint32_t)len;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/*
 * kv_bloom_build - append a filter over n hashes (from kv_bloom_hash) to
 * out. bits_per_key must be > 0. Returns 0, -EINVAL, -ENOMEM (out is
 * left as it was, apart from spare capacity).
 */
int kv_bloom_build(struct kv_buf *out, const uint32_t *hashes, size_t n, int bits_per_key)
{
	size_t bits, bytes;
	int k;

	if (bits_per_key <= 0)
		return -EINVAL;
	/* k = bits_per_key * ln 2 minimises the false positive rate. */
	k = (int)(bits_per_key * 69 / 100);
	if (k < 1)
		k = 1;
	if (k > 30)
		k = 30;
	if (util_size_mul(&bits, n, (size_t)bits_per_key))
		return -ENOMEM;
	/* A tiny filter has a high false positive rate; 64 bits minimum. */
	if (bits < 64)
		bits = 64;
	bytes = bits / 8 + (bits % 8 != 0);
	bits = bytes * 8;

	int rc = kv_buf_reserve(out, bytes + 1);
	if (rc)
		return rc;
	uint8_t *a = out->data + out->len;
	memset(a, 0, bytes);
	for (size_t i = 0; i < n; i++) {
		uint32_t h = hashes[i];
		uint32_t delta = kv_bloom_rotl(h, 15);      /* rotr(h, 17) */
		for (int j = 0; j < k; j++) {
			size_t pos = h % bits;
			a[pos / 8] |= (uint8_t)(1u << (pos % 8));
			h += delta;
		}
	}
	a[bytes] = (uint8_t)k;
	out->len += bytes + 1;
	return 0;
}

/*
 * kv_bloom_may_contain - 0 if the key with this hash is certainly not in
 * the filter, 1 if it may be. Malformed filters answer 1 (see above).
 */
int kv_bloom_may_contain(const uint8_t *filter, size_t len, uint32_t hash)
{
	if (!filter || len < 2)
		return 1;
	int k = filter[len - 1];
	if (k < 1 || k > 30)
		return 1;
	size_t bits = (len - 1) * 8;
	uint32_t h = hash;
	uint32_t delta = kv_bloom_rotl(h, 15);
	for (int j = 0; j < k; j++) {
		size_t pos = h % bits;
		if (!(filter[pos / 8] & (1u << (pos % 8))))
			return 0;
		h += delta;
	}
	return 1;
}
