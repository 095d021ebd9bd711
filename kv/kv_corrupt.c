/*
 * kv_corrupt.c - the one way kv reports corruption.
 *
 * Every place that finds bytes from the store malformed (an SST, WAL
 * object, manifest, lease or store marker that fails its checksums or its
 * format, or an object the manifest names that the store does not have)
 * returns KV_CORRUPT(object, offset, reason...). That logs one error line
 * naming the object, the reason and the place in the source that found
 * it, records {object, offset, reason} as the process's last corruption
 * (kv_corrupt_last), and evaluates to KV_ECORRUPT. A NULL object is a
 * quiet check (a block read ahead that nobody has asked for yet,
 * kv_readahead.c): nothing is logged or recorded.
 *
 * The reason already says what sits at the offset ("block at offset N",
 * "record i at offset N"), so the log line does not repeat it; the
 * record keeps the offset as a number.
 *
 * THREADING
 *   Any thread; the record is guarded by its own mutex, taken alone.
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t kv_corrupt_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kv_corrupt_info kv_corrupt_rec;   /* protected by kv_corrupt_mu */
/* The last one this thread found (kv_corrupt_mine): a scrub's workers
 * each need their own, not the process's latest. */
static _Thread_local struct kv_corrupt_info kv_corrupt_here;

int kv_corrupt_at(const char *file, int line, const char *object, uint64_t offset,
		  const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!object)
		return KV_ECORRUPT;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	UTIL_ERROR("kv", "%s: %s (%s:%d)", object, msg, file, line);
	CHECK_RETURN(pthread_mutex_lock(&kv_corrupt_mu));
	kv_corrupt_rec.count++;
	snprintf(kv_corrupt_rec.object, sizeof(kv_corrupt_rec.object), "%s", object);
	kv_corrupt_rec.offset = offset;
	snprintf(kv_corrupt_rec.reason, sizeof(kv_corrupt_rec.reason), "%s", msg);
	kv_corrupt_rec.file = file;
	kv_corrupt_rec.line = line;
	kv_corrupt_here = kv_corrupt_rec;
	CHECK_RETURN(pthread_mutex_unlock(&kv_corrupt_mu));
	return KV_ECORRUPT;
}

void kv_corrupt_last(struct kv_corrupt_info *out)
{
	CHECK_RETURN(pthread_mutex_lock(&kv_corrupt_mu));
	*out = kv_corrupt_rec;
	CHECK_RETURN(pthread_mutex_unlock(&kv_corrupt_mu));
}

/*
 * kv_obj_get - obj_get for the engine's objects: bytes that fail the
 * store's own authentication (-EBADMSG: an encrypted store's object
 * tampered with, cut, swapped or renamed, obj_crypt.c) are corruption of
 * that object, reported and counted like a failed checksum.
 */
int kv_obj_get(struct obj_backend *store, const char *name, uint64_t off, uint64_t len,
	       void **out, size_t *out_len)
{
	int rc = obj_get(store, name, off, len, out, out_len);
	if (rc != -EBADMSG)
		return rc;
	return KV_CORRUPT(name, off, "%s", *obj_last_error() ? obj_last_error() :
			  "fails authentication");
}

void kv_corrupt_mine(struct kv_corrupt_info *out)
{
	*out = kv_corrupt_here;
}
