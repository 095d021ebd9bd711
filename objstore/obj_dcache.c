/*
 * obj_dcache.c - the local disk cache wrapper (docs/cache.md): keeps
 * ranges of immutable objects in checksummed chunk files on a local disk,
 * so a read the cache holds issues no request to the store, and a remount
 * starts warm.
 *
 * WHAT IS CACHED
 *   Only objects named OBJ_DCACHE_PREFIX ("sst/"): the engine's tables,
 *   named by random 128-bit ULIDs, written once and never rewritten, so a
 *   name means one byte string for ever, even across a re-format of the
 *   store at the same URL. Everything else passes through: the WAL and
 *   manifests have sequential names that a new store at the same URL
 *   reuses, the lease and reader objects, the store marker and the space
 *   reserve are overwritten in place.
 *
 * READS
 *   An object is cut into aligned chunks of conf->chunk bytes (1 MiB by
 *   default), chunk k holding bytes [k * chunk, (k + 1) * chunk); the last
 *   chunk of an object is shorter. get(off, len) walks the chunks the
 *   range touches: a cached one is read from its file and verified; a run
 *   of up to DC_RUN_MAX adjacent missing ones is fetched with one ranged
 *   GET of whole chunks, written into the cache and copied out. A chunk
 *   shorter than `chunk` is the end of the object: the walk stops there,
 *   which gives get's clipping for ranges past the end. An object of
 *   whole chunks gets an empty end-marker entry after its last chunk once
 *   a fetch or a write has shown where it ends. A file that fails
 *   to verify (flipped byte, truncated, deleted) is dropped, counted in
 *   dcache_corrupt, and its chunk fetched again: never served.
 *   Concurrent misses of one chunk fetch it once: the index lets one
 *   caller claim it and the others wait for the claim to end. A get of a
 *   known length waits for such chunks last: it first serves and fetches
 *   the rest of its range, putting each byte in its place, then takes
 *   those from the other caller's fetch. The spans a sequential reader
 *   keeps in flight share their edge chunks, so waiting in order would
 *   make each span's GET start only when the one before it ended.
 *
 * WRITES AND DELETES
 *   A put or put_if_absent of a cacheable object that succeeds writes its
 *   chunks into the cache inline, before returning (write-through): the
 *   bytes are in memory only now, the callers are the engine's flush and
 *   compaction threads, and a local write is cheaper than the upload just
 *   made, so a bounded queue that copies them would only add memory.
 *   Objects over a quarter of the cap are not written through (they would
 *   evict most of the cache). delete and del_many drop the entries of the
 *   names after the store's delete.
 *
 * FAILURES
 *   The cache never fails a request the store would serve: an entry that
 *   cannot be written (disk full, permissions) is skipped and counted in
 *   dcache_write_errors, the bytes go to the caller all the same.
 *
 * THREADING
 *   Counters are atomics; the index has its own lock; file I/O and store
 *   requests run with no lock held. conf->dir/<store hash>/lock is
 *   flock'd for the life of the wrapper, so one process at a time uses a
 *   store's cache (a second mount of the same store runs without one).
 */
#include "objstore/objstore_int.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Only these objects are immutable for ever (see WHAT IS CACHED). */
#define OBJ_DCACHE_PREFIX "sst/"
/* Most chunks one GET fetches: bounds a miss's memory to 16 MiB at the
 * default chunk size, whatever range (or OBJ_WHOLE) was asked for. */
#define DC_RUN_MAX 16
/* Chunks of one get that another get was fetching, served after its own
 * (READS): a get of DC_RESERVE_MAX bytes has at most this many chunks at
 * the smallest chunk size tests use. */
#define DC_LATER_MAX 1024
/* A get reserves its whole range up front up to this size. */
#define DC_RESERVE_MAX ((uint64_t)64 << 20)
/* Chunks past this are not cached (an object of 1 TiB at 1 MiB). */
#define DC_K_MAX (1u << 20)

struct obj_dcache {
	struct obj_wrapper w;             /* must be first */
	struct obj_dcache_index *x;
	char *dir;                        /* ROOT/<store hash> */
	uint32_t chunk;
	int lock_fd;
	atomic_uint_fast64_t hits;        /* chunks served from the cache */
	atomic_uint_fast64_t hit_bytes;
	atomic_uint_fast64_t misses;      /* chunks fetched from the store */
	atomic_uint_fast64_t fetches;     /* GETs sent to the store */
	atomic_uint_fast64_t fetch_bytes;
	atomic_uint_fast64_t corrupt;     /* entries that failed to verify */
	atomic_uint_fast64_t write_errors;
	atomic_uint_fast64_t written;     /* entries written (fetched or write-through) */
	atomic_uint_fast64_t writethrough_bytes;
	atomic_int warned;                /* the first corrupt entry was logged */
};

#define DC_INNER(b) (((struct obj_wrapper *)(b))->inner)

static int obj_dcache_cacheable(const char *name)
{
	return !strncmp(name, OBJ_DCACHE_PREFIX, sizeof(OBJ_DCACHE_PREFIX) - 1);
}

/* A result being assembled. */
struct dc_buf {
	uint8_t *p;
	size_t len, cap;
};

/* Make room for n bytes in all: a ranged get knows its size up front,
 * and growing by doubling would copy and fault in its bytes twice. */
static int dc_buf_reserve(struct dc_buf *b, size_t n)
{
	uint8_t *p;

	if (n <= b->cap)
		return 0;
	if (!(p = b->p ? realloc(b->p, n) : obj_buf_alloc(n)))
		return -ENOMEM;
	b->p = p;
	b->cap = n;
	return 0;
}

/* Copy n bytes to b at byte `at` (b->len grows to cover them); the bytes
 * before `at` are b's already, or come later (a chunk another caller was
 * fetching, READS). */
static int dc_buf_put(struct dc_buf *b, size_t at, const void *data, size_t n)
{
	if (n == 0)
		return 0;
	if (at + n > b->cap) {
		size_t c = b->cap ? b->cap : 4096;
		uint8_t *p;
		while (c < at + n)
			c *= 2;
		p = realloc(b->p, c);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = c;
	}
	memcpy(b->p + at, data, n);
	if (at + n > b->len)
		b->len = at + n;
	return 0;
}

/* Put the part of [start, start + n) (data) inside [off, end) where it
 * belongs in a result that starts at off. */
static int dc_buf_overlap(struct dc_buf *b, uint64_t start, const uint8_t *data, size_t n,
			  uint64_t off, uint64_t end)
{
	uint64_t lo = start > off ? start : off;
	uint64_t hi = start + n < end ? start + n : end;

	return hi > lo ? dc_buf_put(b, (size_t)(lo - off), data + (lo - start),
				    (size_t)(hi - lo)) : 0;
}

static void obj_dcache_corrupt(struct obj_dcache *c, const char *name, uint32_t k, int rc)
{
	atomic_fetch_add(&c->corrupt, 1);
	/* One warning per mount; the rest at debug (a disk going bad would
	 * otherwise flood the log). */
	if (!atomic_exchange(&c->warned, 1))
		UTIL_WARN("objstore", "disk cache: entry for %s chunk %" PRIu32 " in %s %s; "
			  "dropped and fetched from the store (further ones logged at debug)",
			  name, k, c->dir, rc == -ENOENT ? "is missing" : "failed to verify");
	else
		UTIL_DEBUG("objstore", "disk cache: entry for %s chunk %" PRIu32 " %s; dropped",
			   name, k, rc == -ENOENT ? "is missing" : "failed to verify");
}

/* Write chunk k (data, len bytes; 0: the end marker) of name and end its
 * claim. */
static void obj_dcache_store(struct obj_dcache *c, const char *name, uint32_t k,
			     const void *data, size_t len)
{
	int rc = obj_dcache_file_write(c->dir, name, obj_dcache_hash(name), c->chunk, k, data,
				       (uint32_t)len);

	if (rc == 0) {
		atomic_fetch_add(&c->written, 1);
	} else {
		atomic_fetch_add(&c->write_errors, 1);
		UTIL_DEBUG("objstore", "disk cache: cannot write the entry for %s chunk %" PRIu32
			   " in %s: %s", name, k, c->dir, util_strerror(-rc));
	}
	obj_dcache_index_done(c->x, name, k, rc == 0 ? (int64_t)len : -1);
}

/*
 * Fetch the claimed chunks [k, k + n) of name with one GET, cache them,
 * append what falls in [off, end) to r. *eof is set when the object ends
 * inside the run. Ends every claim. Returns 0 or the store's error.
 */
static int obj_dcache_fetch(struct obj_dcache *c, const char *name, uint32_t k, uint32_t n,
			    uint64_t off, uint64_t end, struct dc_buf *r, int *eof)
{
	struct obj_backend *in = c->w.inner;
	uint64_t start = (uint64_t)k * c->chunk;
	void *data = NULL;
	size_t dlen = 0;
	int rc;

	rc = in->get(in, name, start, (uint64_t)n * c->chunk, &data, &dlen);
	atomic_fetch_add(&c->fetches, 1);
	if (rc) {
		for (uint32_t i = 0; i < n; i++)
			obj_dcache_index_done(c->x, name, k + i, -1);
		return rc;
	}
	atomic_fetch_add(&c->fetch_bytes, dlen);
	for (uint32_t i = 0; i < n; i++) {
		size_t at = (size_t)i * c->chunk;
		size_t len = dlen > at ? dlen - at : 0;
		if (len > c->chunk)
			len = c->chunk;
		if (len) {
			atomic_fetch_add(&c->misses, 1);
			obj_dcache_store(c, name, k + i, (uint8_t *)data + at, len);
		} else if (dlen > 0 && dlen == at) {
			/* Bytes came back, so the object ends at start + dlen:
			 * exactly where this chunk starts. (No bytes at all
			 * only says it ends at or before start.) */
			obj_dcache_store(c, name, k + i, NULL, 0);
		} else {
			obj_dcache_index_done(c->x, name, k + i, -1);
		}
	}
	rc = dc_buf_overlap(r, start, data, dlen, off, end);
	if (dlen < (uint64_t)n * c->chunk)
		*eof = 1;
	obj_buf_free(data);
	return rc;
}

/*
 * Serve cached chunk k (clen payload bytes, its claim not ours) from its
 * file: only the part of [off, end) it holds, read into *scratch (one per
 * get, from the get-buffer pool: a fresh chunk-sized buffer would be
 * mapped, faulted in and unmapped per hit), put into r. A file that fails
 * to verify or to read is dropped and counted: returns 1 (fetch the chunk
 * again). Otherwise 0 or -ENOMEM (the entry stays); *eof when the object
 * ends in this chunk.
 */
static int obj_dcache_hit(struct obj_dcache *c, const char *name, uint64_t k, uint32_t clen,
			  uint64_t off, uint64_t end, uint8_t **scratch, struct dc_buf *r, int *eof)
{
	uint64_t cs = k * c->chunk;
	uint32_t lo = off > cs ? (uint32_t)(off - cs) : 0, at;
	uint32_t hi = end - cs < clen ? (uint32_t)(end - cs) : clen;
	int rc;

	if (!*scratch && !(*scratch = obj_buf_alloc(c->chunk)))
		return -ENOMEM;
	if (lo > hi)
		lo = hi;
	rc = obj_dcache_file_read(c->dir, name, obj_dcache_hash(name), c->chunk, (uint32_t)k,
				  clen, lo, hi, *scratch, &at);
	if (rc == -ENOMEM)              /* the entry is not at fault: keep it */
		return rc;
	if (rc) {
		obj_dcache_corrupt(c, name, (uint32_t)k, rc);
		obj_dcache_index_drop(c->x, name, (uint32_t)k);
		return 1;
	}
	/* An end marker (clen 0) is a hit too: it saves the request that
	 * would learn where the object ends. */
	atomic_fetch_add(&c->hits, 1);
	atomic_fetch_add(&c->hit_bytes, hi - lo);
	*eof = clen < c->chunk;
	return dc_buf_overlap(r, cs + at, *scratch, hi - at, off, end);
}

/* Claimed k: extend the claim over the next missing chunks (a run of n),
 * fetch them with one GET, put their part of [off, end) into r. */
static int obj_dcache_fetch_run(struct obj_dcache *c, const char *name, uint64_t k, uint64_t end,
				uint64_t off, struct dc_buf *r, int *eof, uint32_t *n)
{
	*n = 1;
	while (*n < DC_RUN_MAX && k + *n < DC_K_MAX && (k + *n) * c->chunk < end) {
		int cl = obj_dcache_index_claim(c->x, name, (uint32_t)(k + *n));
		if (cl != 1)
			break;
		(*n)++;
	}
	return obj_dcache_fetch(c, name, (uint32_t)k, *n, off, end, r, eof);
}

static int obj_dcache__get(struct obj_backend *b, const char *name, uint64_t off, uint64_t len,
			   void **out, size_t *out_len)
{
	struct obj_dcache *c = (struct obj_dcache *)b;
	struct dc_buf r = { 0 };
	uint8_t *scratch = NULL;
	uint64_t end = len == OBJ_WHOLE || off + len < off ? UINT64_MAX : off + len;
	uint64_t k = off / c->chunk;
	uint32_t later[DC_LATER_MAX];
	size_t nlater = 0;
	int eof = 0, rc = 0, bounded = 0;

	*out = NULL;
	*out_len = 0;
	if (!obj_dcache_cacheable(name) || len == 0 || k >= DC_K_MAX)
		return c->w.inner->get(c->w.inner, name, off, len, out, out_len);
	/* A span of known length: one buffer of its size from obj_buf_alloc
	 * (the pool, or huge pages from 4 MiB on), not a doubling one. (A
	 * range past the object's end is clipped: the buffer is then larger
	 * than its bytes, by what the caller asked for too much.) */
	if (end != UINT64_MAX && end - off <= DC_RESERVE_MAX) {
		if ((rc = dc_buf_reserve(&r, (size_t)(end - off))))
			return rc;
		bounded = 1;
	}
	while (!eof && k < DC_K_MAX && k * c->chunk < end) {
		uint32_t clen = 0, n = 1;

		/* A chunk another get is fetching: its bytes come later
		 * (READS: the spans in flight of a stream share their edge
		 * chunks, and waiting here would make each wait for the one
		 * before). Only where the result has its place reserved. */
		if (bounded && nlater < DC_LATER_MAX) {
			rc = obj_dcache_index_try(c->x, name, (uint32_t)k, &clen);
			if (rc == 2) {
				later[nlater++] = (uint32_t)k++;
				continue;
			}
		} else {
			rc = obj_dcache_index_acquire(c->x, name, (uint32_t)k, &clen);
		}
		if (rc < 0)
			goto out;
		if (rc == 1) {
			rc = obj_dcache_hit(c, name, k, clen, off, end, &scratch, &r, &eof);
			if (rc < 0)
				goto out;
			if (rc == 0)
				k++;
			continue;       /* rc 1: dropped; claim it and fetch */
		}
		rc = obj_dcache_fetch_run(c, name, k, end, off, &r, &eof, &n);
		if (rc)
			goto out;
		k += n;
	}
	/* The chunks others were fetching: cached by now, or their fetch
	 * failed and this get fetches them. */
	rc = 0;
	for (size_t i = 0; i < nlater && !rc; i++) {
		uint32_t kl = later[i], clen = 0;
		int end_here = 0;

		do {
			rc = obj_dcache_index_acquire(c->x, name, kl, &clen);
			if (rc == 1)    /* 1 again: dropped as corrupt, fetch it */
				rc = obj_dcache_hit(c, name, kl, clen, off, end, &scratch, &r,
						    &end_here);
			else if (rc == 0)
				rc = obj_dcache_fetch(c, name, kl, 1, off, end, &r, &end_here);
		} while (rc == 1);
		/* Where the object ends in it, nothing after it held bytes:
		 * the result ends there already. */
		if (end_here)
			eof = 1;
	}
	if (rc)
		goto out;
	/* A range reaching past DC_K_MAX chunks: the rest straight from the store. */
	if (!eof && k >= DC_K_MAX && k * c->chunk < end) {
		void *rest = NULL;
		size_t rlen = 0;
		uint64_t from = k * c->chunk > off ? k * c->chunk : off;
		rc = c->w.inner->get(c->w.inner, name, from, end == UINT64_MAX ? OBJ_WHOLE :
				     end - from, &rest, &rlen);
		if (!rc)
			rc = dc_buf_put(&r, (size_t)(from - off), rest, rlen);
		obj_buf_free(rest);
		if (rc)
			goto out;
	}
	rc = 0;
	if (r.len) {
		*out = r.p;
		*out_len = r.len;
		r.p = NULL;
	}
out:
	obj_buf_free(r.p);
	obj_buf_free(scratch);
	return rc;
}

static int obj_dcache__head(struct obj_backend *b, const char *name, struct obj_stat *st)
{
	return DC_INNER(b)->head(DC_INNER(b), name, st);
}

/* Write-through of a freshly written object (see WRITES AND DELETES). */
static void obj_dcache_populate(struct obj_dcache *c, const char *name, const void *data,
				size_t len)
{
	struct obj_dcache_index_stats st;

	obj_dcache_index_stats(c->x, &st);
	if (len == 0 || len > st.cap / 4 || len / c->chunk >= DC_K_MAX)
		return;
	/* <= len: an object of whole chunks gets its end marker. */
	for (size_t at = 0; at <= len; at += c->chunk) {
		uint32_t k = (uint32_t)(at / c->chunk);
		size_t n = len - at < c->chunk ? len - at : c->chunk;
		if (obj_dcache_index_claim(c->x, name, k) != 1)
			continue;
		obj_dcache_store(c, name, k, n ? (const uint8_t *)data + at : NULL, n);
		atomic_fetch_add(&c->writethrough_bytes, n);
	}
}

static int obj_dcache__put(struct obj_backend *b, const char *name, const void *data,
			   size_t len, const char *token)
{
	struct obj_dcache *c = (struct obj_dcache *)b;
	int rc = c->w.inner->put(c->w.inner, name, data, len, token);

	if (obj_dcache_cacheable(name)) {
		/* put may replace: whatever was cached of the name is stale. */
		obj_dcache_index_drop_name(c->x, name);
		if (rc == 0)
			obj_dcache_populate(c, name, data, len);
	}
	return rc;
}

static int obj_dcache__put_if_absent(struct obj_backend *b, const char *name, const void *data,
				     size_t len, const char *token)
{
	struct obj_dcache *c = (struct obj_dcache *)b;
	int rc = c->w.inner->put_if_absent(c->w.inner, name, data, len, token);

	/* Only a won create: on -EEXIST the object holds another writer's bytes. */
	if (rc == 0 && obj_dcache_cacheable(name))
		obj_dcache_populate(c, name, data, len);
	return rc;
}

static int obj_dcache__del(struct obj_backend *b, const char *name)
{
	struct obj_dcache *c = (struct obj_dcache *)b;
	int rc = c->w.inner->del(c->w.inner, name);

	if (obj_dcache_cacheable(name))
		obj_dcache_index_drop_name(c->x, name);
	return rc;
}

static int obj_dcache__del_many(struct obj_backend *b, const char *const *names, size_t count)
{
	struct obj_dcache *c = (struct obj_dcache *)b;
	int rc = c->w.inner->del_many(c->w.inner, names, count);

	for (size_t i = 0; i < count; i++)
		if (obj_dcache_cacheable(names[i]))
			obj_dcache_index_drop_name(c->x, names[i]);
	return rc;
}

static int obj_dcache__list(struct obj_backend *b, const char *prefix, const char *start_after,
			    size_t max, struct obj_list **out)
{
	return DC_INNER(b)->list(DC_INNER(b), prefix, start_after, max, out);
}

static void obj_dcache__stats(struct obj_backend *b, obj_stat_emit_fn emit, void *arg)
{
	struct obj_dcache *c = (struct obj_dcache *)b;
	struct obj_dcache_index_stats st;

	obj_dcache_index_stats(c->x, &st);
	emit(arg, "dcache_hits", atomic_load(&c->hits));
	emit(arg, "dcache_hit_bytes", atomic_load(&c->hit_bytes));
	emit(arg, "dcache_misses", atomic_load(&c->misses));
	emit(arg, "dcache_fetches", atomic_load(&c->fetches));
	emit(arg, "dcache_fetch_bytes", atomic_load(&c->fetch_bytes));
	emit(arg, "dcache_corrupt", atomic_load(&c->corrupt));
	emit(arg, "dcache_write_errors", atomic_load(&c->write_errors));
	emit(arg, "dcache_writes", atomic_load(&c->written));
	emit(arg, "dcache_writethrough_bytes", atomic_load(&c->writethrough_bytes));
	emit(arg, "dcache_evictions", st.evictions);
	emit(arg, "dcache_entries", st.entries);
	emit(arg, "dcache_bytes", st.bytes);
	emit(arg, "dcache_cap", st.cap);
	obj_stats(c->w.inner, emit, arg);
}

static void obj_dcache_release(struct obj_dcache *c)
{
	obj_dcache_index_free(c->x);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	free(c->dir);
	free(c);
}

static void obj_dcache__free(struct obj_backend *b)
{
	struct obj_dcache *c = (struct obj_dcache *)b;
	struct obj_backend *in = c->w.inner;

	obj_dcache_release(c);
	obj_close(in);
}

/* ---- opening the store's cache directory ---------------------------------- */

/* mkdir -p path (mode 0700 for what it creates). Returns 0 or -errno. */
static int obj_dcache_mkdirs(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return -errno;
		buf[i] = i < n ? '/' : '\0';
	}
	return 0;
}

/* dir/store holds id, or is created holding it. Returns 0, -EEXIST (it
 * names another store) or -errno. */
static int obj_dcache_check_id(const char *dir, const char *id)
{
	char path[4096], buf[2048];
	size_t n = strlen(id);
	ssize_t got;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/store", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		got = read(fd, buf, sizeof(buf));
		close(fd);
		if (got >= 0 && (size_t)got == n + 1 && !memcmp(buf, id, n) && buf[n] == '\n')
			return 0;
		if (got > 0)
			return -EEXIST;
		/* Empty or unreadable: a crash while writing it; write it again. */
	} else if (errno != ENOENT) {
		return -errno;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, id, n) != (ssize_t)n || write(fd, "\n", 1) != 1)
		rc = -EIO;
	if (close(fd) != 0 && !rc)
		rc = -errno;
	return rc;
}

/* Remove what a crash left in dir/tmp (made if missing). */
static int obj_dcache_clean_tmp(const char *dir)
{
	char path[4096];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "%s/tmp", dir);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return -errno;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		char f[4096];
		if (e->d_name[0] == '.')
			continue;
		if (snprintf(f, sizeof(f), "%s/%s", path, e->d_name) < (int)sizeof(f))
			(void)unlink(f);
	}
	closedir(d);
	return 0;
}

int obj_dcache_create(struct obj_backend **out, struct obj_backend *inner,
		      const struct obj_dcache_config *conf, const char *store_id)
{
	struct obj_dcache *c;
	uint64_t dropped = 0, cap = conf->size;
	uint32_t chunk = conf->chunk ? conf->chunk : OBJ_DCACHE_CHUNK;
	char lockp[4096];
	int rc;

	*out = NULL;
	if (!conf->dir || !*conf->dir || !conf->size || (chunk & (chunk - 1)) ||
	    chunk < 4096 || chunk > (64u << 20) || !store_id)
		return obj_fail(-EINVAL, -1, "disk cache", conf->dir,
				"needs a directory, a size and a power-of-two chunk of 4 KiB-64 MiB");
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->lock_fd = -1;
	c->chunk = chunk;
	if (asprintf(&c->dir, "%s/%016" PRIx64, conf->dir, obj_dcache_hash(store_id)) < 0) {
		c->dir = NULL;
		rc = -ENOMEM;
		goto fail;
	}
	rc = obj_dcache_mkdirs(c->dir);
	if (rc) {
		obj_fail(rc, -1, "disk cache", c->dir, "cannot create the directory: %s",
			 util_strerror(-rc));
		goto fail;
	}
	snprintf(lockp, sizeof(lockp), "%s/lock", c->dir);
	c->lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->lock_fd < 0) {
		rc = obj_fail(-errno, -1, "disk cache", lockp, "cannot open: %s",
			      util_strerror(errno));
		goto fail;
	}
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		obj_fail(rc, -1, "disk cache", c->dir, rc == -EBUSY ?
			 "another process is using this store's cache" : "cannot lock: %s",
			 util_strerror(-rc));
		goto fail;
	}
	rc = obj_dcache_check_id(c->dir, store_id);
	if (rc) {
		obj_fail(rc, -1, "disk cache", c->dir, rc == -EEXIST ?
			 "holds the cache of another store with the same hash" :
			 "cannot record the store: %s", util_strerror(-rc));
		goto fail;
	}
	rc = obj_dcache_clean_tmp(c->dir);
	if (rc) {
		obj_fail(rc, -1, "disk cache", c->dir, "cannot prepare tmp/: %s",
			 util_strerror(-rc));
		goto fail;
	}
	rc = obj_dcache_index_create(&c->x, c->dir, chunk, cap);
	if (rc)
		goto fail;
	rc = obj_dcache_index_scan(c->x, &dropped);
	if (rc) {
		obj_fail(rc, -1, "disk cache", c->dir, "cannot scan: %s", util_strerror(-rc));
		goto fail;
	}
	c->corrupt = dropped;
	if (conf->max_free_pct) {
		struct statvfs vfs;
		struct obj_dcache_index_stats st;
		obj_dcache_index_stats(c->x, &st);
		if (statvfs(c->dir, &vfs) == 0) {
			uint64_t room = (uint64_t)vfs.f_bavail * vfs.f_frsize + st.bytes;
			uint64_t most = room / 100 * conf->max_free_pct;
			if (most < cap) {
				UTIL_INFO("objstore", "disk cache %s: cap %" PRIu64 " MiB (%u%% of "
					  "the room on its filesystem) instead of %" PRIu64 " MiB",
					  c->dir, most >> 20, conf->max_free_pct, cap >> 20);
				cap = most;
				obj_dcache_index_set_cap(c->x, cap);
			}
		}
	}
	c->w.inner = inner;
	c->w.base.version = OBJ_BACKEND_VERSION;
	c->w.base.kind = "dcache";
	c->w.base.get = obj_dcache__get;
	c->w.base.head = obj_dcache__head;
	c->w.base.put = obj_dcache__put;
	c->w.base.put_if_absent = obj_dcache__put_if_absent;
	c->w.base.del = obj_dcache__del;
	c->w.base.list = obj_dcache__list;
	c->w.base.del_many = inner->del_many ? obj_dcache__del_many : NULL;
	c->w.base.stats = obj_dcache__stats;
	c->w.base.free = obj_dcache__free;
	*out = &c->w.base;
	return 0;
fail:
	obj_dcache_release(c);
	return rc;
}

int obj_dcache_store_id(char **out, const struct obj_url *u, const struct obj_s3_config *s3)
{
	const char *ep = s3 ? s3->endpoint : NULL;
	int n;

	*out = NULL;
	switch (u->scheme) {
	case OBJ_SCHEME_FILE:
		n = asprintf(out, "file://%s", u->path);
		break;
	case OBJ_SCHEME_MEM:
		/* mem:// stores live in one process: never share entries. */
		n = asprintf(out, "mem://%s pid %ld", u->path, (long)getpid());
		break;
	case OBJ_SCHEME_S3:
		if (!ep || !*ep)
			ep = getenv("AWS_ENDPOINT_URL_S3");
		if (!ep || !*ep)
			ep = getenv("AWS_ENDPOINT_URL");
		/* Bucket names are global on AWS: the bucket and prefix name it. */
		n = asprintf(out, "s3://%s/%s endpoint %s", u->bucket, u->prefix,
			     ep && *ep ? ep : "aws");
		break;
	default:
		return -EINVAL;
	}
	if (n < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}
