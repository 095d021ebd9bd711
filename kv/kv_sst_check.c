/*
 * kv_sst_check.c - kv_sst_check_buffer: open, verify, iterate and probe
 * an SST held in memory (the fuzzer's entry point, tests/fuzz/fuzz_sst.c).
 *
 * SHARED DECODING
 *   kv_sst_check_buffer (fuzzing) runs the very same open/verify/iterate/
 *   get code over a private in-memory struct obj_backend that serves get()
 *   from the caller's buffer, so the fuzzer exercises the production
 *   decoder rather than a copy of it. The libFuzzer build ignores CRC
 *   mismatches (KV_SST_CRC_OK in kv_int.h).
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A read-only "store" holding one object: the buffer under check. */
struct kv_sst_membuf {
	struct obj_backend base;
	const uint8_t *data;
	size_t len;
};

static int kv_sst_membuf__get(struct obj_backend *b, const char *name, uint64_t off,
			      uint64_t len, void **out, size_t *out_len)
{
	struct kv_sst_membuf *m = (struct kv_sst_membuf *)b;
	(void)name;
	*out = NULL;
	*out_len = 0;
	if (off >= m->len)
		return 0;
	if (len > m->len - off)
		len = m->len - off;
	void *p = malloc((size_t)len);
	if (!p)
		return -ENOMEM;
	memcpy(p, m->data + off, (size_t)len);
	*out = p;
	*out_len = (size_t)len;
	return 0;
}

/* Reader inconsistent with itself: a bug in this file, not corruption. */
static int kv_sst_check_bug(const char *what)
{
	UTIL_ERROR("kv", "sst check: reader inconsistency: %s", what);
	return -EIO;
}

/* Spot checks: get and seek must find what iteration found. */
#define KV_SST_CHECK_SAMPLES 256

/*
 * kv_sst_check_buffer - open, verify, iterate and probe an SST held in
 * memory (data, len), with no cache. Returns 0 (valid SST), KV_ECORRUPT,
 * -ENOMEM, or -EIO when the reader disagrees with itself (a reader bug:
 * the fuzzer treats it as a finding).
 */
int kv_sst_check_buffer(const uint8_t *data, size_t len)
{
	struct kv_sst_membuf mb = { 0 };
	struct kv_sst_meta meta = { 0 };
	struct kv_sst_reader *r = NULL;
	struct kv_iter *it = NULL, *seek = NULL;
	struct kv_buf prev = { 0 };
	uint64_t count = 0, checked = 0;
	uint8_t *val = NULL;
	size_t vlen;
	int rc;

	mb.base.version = OBJ_BACKEND_VERSION;
	mb.base.kind = "sst-check";
	mb.base.get = kv_sst_membuf__get;
	mb.data = data;
	mb.len = len;
	meta.size = len;

	if ((rc = kv_sst_open(&r, &mb.base, NULL, &meta)))
		return rc;
	if ((rc = kv_sst_verify(r)))
		goto out;
	if ((rc = kv_sst_iter_create(&it, r)) || (rc = kv_sst_iter_create(&seek, r)))
		goto out;
	for (it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it)) {
		const uint8_t *k, *v;
		size_t kl, vl;
		it->ops->key(it, &k, &kl);
		it->ops->value(it, &v, &vl);
		count++;
		uint64_t seq = kv_ikey_seq(k, kl);
		/* get(ukey, seq) answers this entry unless an entry with the same
		 * user key and seq but a greater type came just before it. */
		int shadowed = prev.len == kl && !memcmp(prev.data, k, kl - 1);
		if (checked < KV_SST_CHECK_SAMPLES && !shadowed) {
			checked++;
			int g = kv_sst_get(r, k, kl - KV_IKEY_TRAILER, seq, &val, &vlen);
			enum kv_type t = kv_ikey_type(k, kl);
			int want = t == KV_TYPE_VALUE ? 1 : t == KV_TYPE_REF ? KV_GOT_REF : 2;
			if (g < 0) {
				rc = g;
				goto out;
			}
			if (g != want || (g != 2 && (vlen != vl || (vl && memcmp(val, v, vl))))) {
				rc = kv_sst_check_bug("get disagrees with iteration");
				goto out;
			}
			free(val);
			val = NULL;
			seek->ops->seek(seek, k, kl);
			const uint8_t *sk;
			size_t skl;
			if (!seek->ops->valid(seek)) {
				rc = seek->ops->status(seek);
				if (!rc)
					rc = kv_sst_check_bug("seek to an existing key found nothing");
				goto out;
			}
			seek->ops->key(seek, &sk, &skl);
			if (skl != kl || memcmp(sk, k, kl)) {
				rc = kv_sst_check_bug("seek disagrees with iteration");
				goto out;
			}
		}
		prev.len = 0;
		if ((rc = kv_buf_append(&prev, k, kl)))
			goto out;
	}
	if ((rc = it->ops->status(it)))
		goto out;
	if (count != kv_sst_entries(r))
		rc = kv_sst_check_bug("iteration count differs from the verified count");
out:
	free(val);
	kv_buf_free(&prev);
	if (seek)
		seek->ops->free(seek);
	if (it)
		it->ops->free(it);
	kv_sst_unref(r);
	return rc;
}
