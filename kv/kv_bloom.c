/*
 * kv_bloom.c - the bloom filter stored in every SST, over USER keys.
 *
 * FILTER FORMAT (persistent: hashes and probe sequences below are part of
 * the SST format and must never change). The last byte says which kind:
 *
 *   blocked (the kind this code writes), last byte 0x40 | k, k in 1..30:
 *     m bytes of bit array, m a multiple of 64 (>= 64), seen as m/64
 *     lines of 512 bits; bit i of a line is byte i/8, mask 1 << (i%8).
 *     A key with 32-bit hash h sets k bits, all in line
 *     floor(h * (m/64) / 2^32); the bits are the top 9 bits of g, g * c,
 *     g * c^2, ... where g = h * c and c = 0x9e3779b9 (mod 2^32).
 *     One line is one CPU cache line, so a lookup costs one memory miss
 *     instead of k. With 10 bits per key and k = 6 the false positive rate
 *     is about 1% (0.8% for the classic kind).
 *
 *   classic (format version 1's first filters), last byte k in 1..30:
 *     m bytes of bit array, m >= 8; k probes by double hashing
 *     (Kirsch-Mitzenmacher) over the whole array: delta = rotr(h, 17),
 *     probe j sets bit (h + j*delta) mod (8*m). Still read, never written.
 *
 * A filter the reader cannot make sense of (too short, unknown kind, k out
 * of range, a blocked array that is not whole lines) answers "may
 * contain": a bad filter can cost a block read, never a wrong answer or a
 * crash. The filter block is CRC-checked by the reader before it gets
 * here anyway.
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

#define KV_BLOOM_BLOCKED 0x40u          /* kind bit in the last byte */
#define KV_BLOOM_LINE 64u               /* bytes per line of the blocked kind */
#define KV_BLOOM_MUL 0x9e3779b9u

/* Line index of hash h among nlines: a multiply-shift range reduction. */
static inline size_t kv_bloom_line(uint32_t h, size_t nlines)
{
	return (size_t)(((uint64_t)h * nlines) >> 32);
}

/*
 * kv_bloom_build - append a blocked filter over n hashes (from
 * kv_bloom_hash) to out. bits_per_key must be > 0. Returns 0, -EINVAL,
 * -ENOMEM (out is left as it was, apart from spare capacity).
 */
int kv_bloom_build(struct kv_buf *out, const uint32_t *hashes, size_t n, int bits_per_key)
{
	size_t bits, bytes, nlines;
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
	/* Whole lines, at least one. */
	nlines = bits / (8 * KV_BLOOM_LINE) + (bits % (8 * KV_BLOOM_LINE) != 0);
	if (nlines == 0)
		nlines = 1;
	if (util_size_mul(&bytes, nlines, KV_BLOOM_LINE))
		return -ENOMEM;

	int rc = kv_buf_reserve(out, bytes + 1);
	if (rc)
		return rc;
	uint8_t *a = out->data + out->len;
	memset(a, 0, bytes);
	for (size_t i = 0; i < n; i++) {
		uint8_t *line = a + kv_bloom_line(hashes[i], nlines) * KV_BLOOM_LINE;
		uint32_t g = hashes[i] * KV_BLOOM_MUL;
		for (int j = 0; j < k; j++) {
			uint32_t bit = g >> 23;
			line[bit / 8] |= (uint8_t)(1u << (bit % 8));
			g *= KV_BLOOM_MUL;
		}
	}
	a[bytes] = (uint8_t)(KV_BLOOM_BLOCKED | (unsigned)k);
	out->len += bytes + 1;
	return 0;
}

static int kv_bloom_classic_may_contain(const uint8_t *filter, size_t len, int k, uint32_t hash)
{
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

/*
 * kv_bloom_may_contain - 0 if the key with this hash is certainly not in
 * the filter, 1 if it may be. Malformed filters answer 1 (see above).
 */
int kv_bloom_may_contain(const uint8_t *filter, size_t len, uint32_t hash)
{
	if (!filter || len < 2)
		return 1;
	unsigned last = filter[len - 1];
	int k = (int)(last & ~KV_BLOOM_BLOCKED);
	if (k < 1 || k > 30)
		return 1;
	if (!(last & KV_BLOOM_BLOCKED))
		return kv_bloom_classic_may_contain(filter, len, k, hash);
	size_t bytes = len - 1;
	if (bytes % KV_BLOOM_LINE)
		return 1;
	const uint8_t *line = filter + kv_bloom_line(hash, bytes / KV_BLOOM_LINE) * KV_BLOOM_LINE;
	uint32_t g = hash * KV_BLOOM_MUL;
	for (int j = 0; j < k; j++) {
		uint32_t bit = g >> 23;
		if (!(line[bit / 8] & (1u << (bit % 8))))
			return 0;
		g *= KV_BLOOM_MUL;
	}
	return 1;
}
