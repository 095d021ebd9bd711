/*
 * kv_ikey.c - internal-key comparison, varints and the growable buffer
 * every encoder (WAL, SST, manifest) writes into.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int kv_ukey_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

int kv_ikey_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = kv_ukey_cmp(a, alen - KV_IKEY_TRAILER, b, blen - KV_IKEY_TRAILER);
	if (c)
		return c;
	/* Same user key: higher trailer (newer seq) sorts first. */
	uint64_t ta = util_get_be64((const uint8_t *)a + alen - KV_IKEY_TRAILER);
	uint64_t tb = util_get_be64((const uint8_t *)b + blen - KV_IKEY_TRAILER);
	return ta > tb ? -1 : ta < tb;
}

size_t kv_varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

size_t kv_varint_get_slow(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (size_t i = 0; i < 10 && p + i < end; i++) {
		uint64_t byte = p[i];
		if (i == 9 && byte > 1)
			return 0;               /* would overflow 64 bits */
		r |= (byte & 0x7f) << (7 * i);
		if (!(byte & 0x80)) {
			*v = r;
			return i + 1;
		}
	}
	return 0;
}

int kv_buf_reserve(struct kv_buf *b, size_t extra)
{
	size_t need;
	if (util_size_add(&need, b->len, extra))
		return -ENOMEM;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	uint8_t *p = b->borrowed ? malloc(cap) : realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	if (b->borrowed && b->len)
		memcpy(p, b->data, b->len);
	b->borrowed = 0;
	b->data = p;
	b->cap = cap;
	return 0;
}

int kv_buf_append(struct kv_buf *b, const void *p, size_t n)
{
	int rc = kv_buf_reserve(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int kv_buf_put_varint(struct kv_buf *b, uint64_t v)
{
	int rc = kv_buf_reserve(b, 10);
	if (rc)
		return rc;
	b->len += kv_varint_put(b->data + b->len, v);
	return 0;
}

int kv_buf_put_be32(struct kv_buf *b, uint32_t v)
{
	int rc = kv_buf_reserve(b, 4);
	if (rc)
		return rc;
	util_put_be32(b->data + b->len, v);
	b->len += 4;
	return 0;
}

int kv_buf_put_be64(struct kv_buf *b, uint64_t v)
{
	int rc = kv_buf_reserve(b, 8);
	if (rc)
		return rc;
	util_put_be64(b->data + b->len, v);
	b->len += 8;
	return 0;
}

void kv_buf_keep_spare(struct kv_buf *spare, uint8_t *data, size_t cap, size_t max_cap)
{
	if (spare->data || cap > max_cap) {
		free(data);
		return;
	}
	*spare = (struct kv_buf){ .data = data, .len = 0, .cap = cap };
}

void kv_buf_free(struct kv_buf *b)
{
	if (!b->borrowed)
		free(b->data);
	b->borrowed = 0;
	b->data = NULL;
	b->len = b->cap = 0;
}

const char *kv_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case KV_ECORRUPT:
		return "object is corrupt (checksum or format check failed)";
	case KV_EFENCED:
		return "fenced by a newer writer";
	default:
		return util_strerror(err);
	}
}
