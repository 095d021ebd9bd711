/*
 * kv_sst_id.c - SST ids and the manifest's per-SST metadata.
 *
 * An SST id is a ULID: 128 bits, the first 48 a big-endian Unix time in
 * milliseconds, the last 80 random. Ids are unique without coordination
 * between writers and compactors (two ids collide only if 80 random bits
 * do within the same millisecond), and names sort roughly by creation
 * time, which keeps listings of sst/ readable.
 *
 * NAME
 *   "sst/" + 26 characters of Crockford base32 + ".sst". The 128 bits
 *   are encoded as a 130-bit number whose two top bits are zero, five bits
 *   per character, most significant first (the ULID text form).
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fallback PRNG for the (practically impossible) case where getrandom()
 * fails: ids must still be produced, since kv_sst_id_new cannot fail. */
static pthread_mutex_t kv_sst_id_mu = PTHREAD_MUTEX_INITIALIZER;
static struct util_rand kv_sst_id_rand;      /* protected by kv_sst_id_mu */
static int kv_sst_id_rand_seeded;            /* protected by kv_sst_id_mu */

/* kv_sst_id_new - a fresh id. Thread-safe. */
void kv_sst_id_new(struct kv_sst_id *id)
{
	uint64_t ms = util_wall_ns() / 1000000u;

	for (int i = 0; i < 6; i++)
		id->b[i] = (uint8_t)(ms >> (8 * (5 - i)));
	if (util_random_bytes(id->b + 6, 10) != 0) {
		CHECK_RETURN(pthread_mutex_lock(&kv_sst_id_mu));
		if (!kv_sst_id_rand_seeded) {
			util_rand_seed(&kv_sst_id_rand, util_rand_os_seed() ^ util_now_ns());
			kv_sst_id_rand_seeded = 1;
		}
		uint64_t a = util_rand_next(&kv_sst_id_rand);
		uint64_t b = util_rand_next(&kv_sst_id_rand);
		CHECK_RETURN(pthread_mutex_unlock(&kv_sst_id_mu));
		memcpy(id->b + 6, &a, 8);
		memcpy(id->b + 14, &b, 2);
	}
}

/*
 * kv_sst_id_name - write "sst/<ULID>.sst" (34 characters + NUL) into buf.
 * A smaller buf gets a truncated, NUL-terminated prefix (size > 0).
 */
void kv_sst_id_name(const struct kv_sst_id *id, char *buf, size_t size)
{
	static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	char text[27];
	unsigned __int128 v = 0;

	for (int i = 0; i < 16; i++)
		v = v << 8 | id->b[i];
	for (int i = 0; i < 26; i++) {
		int shift = 125 - 5 * i;
		text[i] = alphabet[(unsigned)(v >> shift) & 31];
	}
	text[26] = '\0';
	if (size)
		snprintf(buf, size, "sst/%s.sst", text);
}

/* kv_sst_meta_clear - free the key copies and zero the struct. */
void kv_sst_meta_clear(struct kv_sst_meta *m)
{
	free(m->smallest);
	free(m->largest);
	free(m->refs);
	memset(m, 0, sizeof(*m));
}

/*
 * kv_sst_meta_copy - deep copy of src into dst. dst is overwritten, not
 * freed first. Returns 0 or -ENOMEM (dst then cleared, owning nothing).
 */
int kv_sst_meta_copy(struct kv_sst_meta *dst, const struct kv_sst_meta *src)
{
	*dst = *src;
	dst->smallest = NULL;
	dst->largest = NULL;
	dst->refs = NULL;
	if (kv_drefs_copy(&dst->refs, src->refs, src->n_refs))
		goto nomem;
	if (src->smallest) {
		dst->smallest = malloc(src->smallest_len ? src->smallest_len : 1);
		if (!dst->smallest)
			goto nomem;
		memcpy(dst->smallest, src->smallest, src->smallest_len);
	}
	if (src->largest) {
		dst->largest = malloc(src->largest_len ? src->largest_len : 1);
		if (!dst->largest)
			goto nomem;
		memcpy(dst->largest, src->largest, src->largest_len);
	}
	return 0;
nomem:
	kv_sst_meta_clear(dst);
	return -ENOMEM;
}
