/*
 * objstore.h - the one contract between ShaleFS and storage.
 *
 * An object store holds immutable byte strings under '/'-separated names.
 * Everything above this header (the LSM engine, the filesystem) sees only
 * these operations; everything below it (a local directory, an S3 bucket,
 * memory) implements them. Nothing here knows about keys or inodes.
 *
 * BACKENDS AND WRAPPERS
 *   A backend is a `struct obj_backend` of function pointers embedded first
 *   in its implementation (STYLE rule 7). Wrappers are backends that own an
 *   inner backend and forward to it:
 *
 *       [crypt] ──▶ [dcache] ──▶ retry ──▶ metrics ──▶ [fault] ──▶ base
 *
 *   crypt (obj_crypt.c) only when conf->crypt names a key: it is outermost
 *   so every layer below, and the bucket, only ever hold ciphertext.
 *
 *   dcache (the local disk cache, only when conf->dcache names a dir and
 *   a size) sits above retry and metrics: a cache hit issues no request,
 *   and the objstore_* counters count only requests that reached the
 *   store. fault is there only when SHALEFS_FAULTS or SHALEFS_CRASH_* is
 *   set.
 *   obj_open() builds that stack from a store URL. Freeing the outermost
 *   backend frees the whole stack.
 *
 * ERRORS
 *   Every function returns 0 on success or a negative errno:
 *     permanent:  -ENOENT (no such object / bucket), -EEXIST (put_if_absent
 *                 lost), -EACCES (credentials, permissions), -EINVAL (bad
 *                 name or argument, rejected request), -ENOSPC (full),
 *                 -EDQUOT (over a quota: S3 QuotaExceeded), -EBADMSG (the
 *                 object's bytes fail authentication: an encrypted store's
 *                 object tampered with, cut, swapped or renamed), -EIO
 *                 (other failures, corrupt responses), -ENOMEM, -ENOTSUP
 *     transient:  -EAGAIN, -ETIMEDOUT, -ECANCELED, -ECONNRESET (also
 *                 -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH, -EPIPE,
 *                 -EBUSY); obj_err_is_transient() is the single definition.
 *   A backend logs unexpected failures once with the operation, the object
 *   name and the cause, and leaves the cause in obj_last_error() for the
 *   calling thread so upper layers can repeat it in their own messages.
 *   -ENOENT and -EEXIST are expected outcomes and are not logged as errors.
 *
 * THREADING
 *   Every backend and wrapper is safe to call from any number of threads
 *   at once. Buffers handed in are only read during the call; buffers
 *   handed out are the caller's (free with obj_buf_free()).
 */
#ifndef SHALE_OBJSTORE_H
#define SHALE_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>

#define OBJ_BACKEND_VERSION 1

/* Longest object name accepted anywhere (S3's limit is 1024 bytes). */
#define OBJ_NAME_MAX 1024
/* Longest put token (see put_if_absent), including the NUL. */
#define OBJ_TOKEN_MAX 64
/* get(): read to the end of the object. */
#define OBJ_WHOLE UINT64_MAX

/* What head() reports. */
struct obj_stat {
	uint64_t size;
	int64_t mtime_ns;                 /* wall-clock ns, 0 when unknown */
	char etag[80];                    /* backend's version tag, "" when none */
	char token[OBJ_TOKEN_MAX];        /* token given at put time, "" when none */
};

/* One page of list() results, allocated by the backend and freed with
 * obj_list_free(). Names are full object names (prefix included), in
 * strictly increasing byte order. */
struct obj_list_entry {
	char *name;
	uint64_t size;
};
struct obj_list {
	struct obj_list_entry *entries;
	size_t count;
	int truncated;                    /* more names follow the last entry */
};

/* Counter sink for stats(): called once per counter. Keys are
 * lower_snake_case, values are plain integers. */
typedef void (*obj_stat_emit_fn)(void *arg, const char *key, uint64_t value);

struct obj_backend {
	unsigned version;                 /* OBJ_BACKEND_VERSION */
	const char *kind;                 /* "file", "mem", "s3", "retry", ... */

	/*
	 * get - read bytes [off, off+len) of object `name`.
	 * len == OBJ_WHOLE reads to the end. A range past the end is clipped;
	 * off at or past the end returns 0 bytes (not an error). On success
	 * *out is a malloc'd buffer of *out_len bytes owned by the caller
	 * (obj_buf_free), NULL when *out_len is 0.
	 * Returns 0, -ENOENT, or another error.
	 */
	int (*get)(struct obj_backend *b, const char *name, uint64_t off, uint64_t len,
		   void **out, size_t *out_len);

	/* head - size and tags of `name`. Returns 0, -ENOENT, or an error. */
	int (*head)(struct obj_backend *b, const char *name, struct obj_stat *st);

	/*
	 * put - create or overwrite `name` atomically: a concurrent reader sees
	 * the whole old object or the whole new one, never a mix. `token`, when
	 * not NULL, is an ASCII string (< OBJ_TOKEN_MAX, [A-Za-z0-9_-]) stored
	 * with the object where the backend can (head() returns it).
	 */
	int (*put)(struct obj_backend *b, const char *name, const void *data, size_t len,
		   const char *token);

	/*
	 * put_if_absent - create `name` only if no object of that name exists.
	 * Exactly one of any number of concurrent callers (threads, processes,
	 * machines) succeeds; the others get -EEXIST and the object is left as
	 * the winner wrote it. This is the engine's only safety primitive.
	 * `token` as for put(): the retry wrapper uses it to tell its own
	 * earlier, ambiguously-failed attempt from a real conflict.
	 */
	int (*put_if_absent)(struct obj_backend *b, const char *name, const void *data,
			     size_t len, const char *token);

	/* delete - remove `name`. Deleting a missing object returns 0. */
	int (*del)(struct obj_backend *b, const char *name);

	/*
	 * list - up to `max` names beginning with `prefix` and sorting strictly
	 * after `start_after` (NULL or "" = from the start), in increasing byte
	 * order. The caller continues with start_after = last name while
	 * out->truncated. A backend may return fewer than `max` names with
	 * truncated set. On success *out is the caller's (obj_list_free).
	 */
	int (*list)(struct obj_backend *b, const char *prefix, const char *start_after,
		    size_t max, struct obj_list **out);

	/*
	 * del_many - optional (NULL = the caller deletes one by one). Deletes
	 * `count` names; missing names count as deleted. Returns 0 when all
	 * are gone, else the first error.
	 */
	int (*del_many)(struct obj_backend *b, const char *const *names, size_t count);

	/* stats - optional; emit this layer's counters, then the inner's. */
	void (*stats)(struct obj_backend *b, obj_stat_emit_fn emit, void *arg);

	/* free - release the backend (and, for a wrapper, its inner backend).
	 * No call may be in progress. */
	void (*free)(struct obj_backend *b);
};

/* ---- configuration ------------------------------------------------------ */

/* S3 settings; any field left NULL/0 falls back to the environment
 * (AWS_*) and then ~/.aws/{config,credentials}. Credentials come from the
 * AWS chain (environment, web identity, profile, ECS, EC2 instance
 * metadata: shalefs(1) CREDENTIALS), never from this struct. */
struct obj_s3_config {
	const char *endpoint;             /* "https://s3.us-east-1.amazonaws.com", "http://127.0.0.1:7480" */
	const char *region;
	const char *profile;
	int path_style;                   /* 1 = path-style, 0 = virtual-hosted, -1 = auto */
	int insecure_tls;                 /* 1 = skip TLS verification (test endpoints only) */
	unsigned connect_timeout_ms;      /* default 5000 */
	unsigned request_timeout_ms;      /* default 30000 (scaled up for large bodies) */
	size_t multipart_threshold;       /* default 16 MiB */
	size_t part_size;                 /* default 8 MiB */
	unsigned max_connections;         /* connection pool size, default 32 */
	/* Bodies of 64 KiB and up: 0 = UNSIGNED-PAYLOAD over https (TLS
	 * protects them) and to a loopback endpoint (no network path), signed
	 * over plain http to any other host (the default); 1 = always;
	 * -1 = never (every body hashed and signed). */
	int unsigned_payload;
	/* An s3fs-style file of ACCESS_KEY_ID:SECRET_ACCESS_KEY lines, used
	 * instead of the credential chain (must be mode 0600 or stricter). */
	const char *credentials_file;
	int no_sign_request;              /* 1 = send requests unsigned (public buckets) */
};

struct obj_retry_config {
	unsigned base_ms;                 /* first backoff, default 50 */
	unsigned cap_ms;                  /* largest single backoff, default 5000 */
	unsigned max_attempts;            /* 0 = no attempt limit */
	unsigned max_total_ms;            /* 0 = no time limit; default 0 (retry for a long time) */
};

/* The local disk cache (obj_dcache.c, docs/cache.md). Off unless both
 * dir and size are set. */
struct obj_dcache_config {
	const char *dir;                  /* cache root, shared by stores; NULL/"" = off */
	uint64_t size;                    /* byte cap per store; 0 = off */
	/* 0 = none; else the cap is also at most this percentage of what the
	 * cache may use on its filesystem (free space plus its own entries). */
	unsigned max_free_pct;
	uint32_t chunk;                   /* entry size, a power of two; 0 = OBJ_DCACHE_CHUNK */
};
/* Object bytes are cached in aligned chunks of this size. */
#define OBJ_DCACHE_CHUNK (1024u * 1024)
/* Client-side encryption (obj_crypt.c, docs/encryption.md). Both paths
 * NULL = no encryption layer. The files hold the master key (32 raw bytes
 * or 64 hex digits) or a passphrase, and must not be accessible by group
 * or others; only the paths travel, never the secret. */
struct obj_crypt_config {
	const char *key_file;             /* master key file */
	const char *passphrase_file;      /* or a passphrase, stretched with scrypt */
	int create;                       /* 1 = write a new key object if the store has
					   * none and no marker (format --encrypt) */
};

struct obj_config {
	unsigned version;                 /* OBJ_CONFIG_VERSION */
	struct obj_s3_config s3;
	struct obj_crypt_config crypt;    /* outermost layer when a key is given */
	struct obj_retry_config retry;
	struct obj_dcache_config dcache;
	const char *faults;               /* fault spec; NULL = getenv("SHALEFS_FAULTS") */
	int no_retry;                     /* 1 = do not add the retry wrapper (tests) */
	int create;                       /* file://: create the root directory if missing */
};

#define OBJ_CONFIG_VERSION 1
#define OBJ_CONFIG_INIT { .version = OBJ_CONFIG_VERSION, .s3 = { .path_style = -1 } }

/* ---- opening a store ---------------------------------------------------- */

/*
 * obj_open - parse `url` and build the backend stack for it.
 *   file:///abs/dir     local directory (must exist unless conf->create)
 *   mem://name          in-process memory store; the same name within one
 *                       process is the same store until obj_mem_destroy()
 *   s3://bucket[/pfx]   S3 bucket, optional key prefix
 * On success *out is the caller's (obj_close). On failure a one-line
 * reason naming the URL and the cause is in obj_last_error().
 * Returns 0, -EINVAL (malformed URL, bad fault spec), -ENOENT (missing
 * directory or bucket), -EACCES, -ENOTSUP (scheme not built).
 */
int obj_open(struct obj_backend **out, const char *url, const struct obj_config *conf);

/* obj_close - free a stack returned by obj_open (NULL is a no-op). */
void obj_close(struct obj_backend *b);

/* Parsed form of a store URL; obj_url_parse fills it with pointers into a
 * private copy freed by obj_url_free. */
enum obj_scheme { OBJ_SCHEME_FILE, OBJ_SCHEME_MEM, OBJ_SCHEME_S3 };
struct obj_url {
	enum obj_scheme scheme;
	char *path;                       /* file: absolute dir; mem: name */
	char *bucket;                     /* s3 */
	char *prefix;                     /* s3: "" or "dir/" (always ends with '/') */
};
/*
 * obj_url_parse - parse url into *out (the caller's: obj_url_free, also
 * after a failure). Bucket names are checked against AWS's rules.
 * obj_url_parse_conf checks them against what the S3 service of s3 (may
 * be NULL: AWS) allows: relaxed names when s3->path_style is 1 or the
 * endpoint (s3->endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL) is not
 * AWS's. Returns 0, -EINVAL (obj_last_error says why) or -ENOMEM.
 */
int obj_url_parse(struct obj_url *out, const char *url);
int obj_url_parse_conf(struct obj_url *out, const char *url, const struct obj_s3_config *s3);
void obj_url_free(struct obj_url *u);

/* ---- backends and wrappers (used by obj_open, and directly by tests) ---- */

int obj_local_create(struct obj_backend **out, const char *dir, int create);
int obj_mem_create(struct obj_backend **out, const char *name);
/* Drop the shared state of mem://name (tests). */
void obj_mem_destroy(const char *name);
int obj_s3_create(struct obj_backend **out, const char *bucket, const char *prefix,
		  const struct obj_s3_config *conf);
/* Does the S3 store behind `b` (an obj_s3_create backend, not a wrapper)
 * honour If-None-Match: * on PUT? Creates, re-creates and deletes one probe
 * object. Returns 0 (yes), -ENOTSUP (it overwrote: one writer only), or
 * the error of a failing request (credentials, bucket, endpoint). */
int obj_s3_probe_conditional(struct obj_backend *b);

/* Wrappers take ownership of `inner` on success only. */
int obj_retry_create(struct obj_backend **out, struct obj_backend *inner,
		     const struct obj_retry_config *conf);
int obj_metrics_create(struct obj_backend **out, struct obj_backend *inner);
/*
 * obj_dcache_create - the local disk cache over inner (docs/cache.md):
 * ranges of objects named sst/... are kept in checksummed chunk files
 * under conf->dir/<hash of store_id>/, evicted LRU under conf->size.
 * store_id names the store behind inner (obj_dcache_store_id) so stores
 * sharing conf->dir never see each other's bytes. Returns 0, -EBUSY
 * (another process uses this store's cache), -EEXIST (the directory of
 * store_id's hash holds another store: a hash collision), -ENOMEM or the
 * -errno of creating the directories; obj_last_error() says which.
 */
int obj_dcache_create(struct obj_backend **out, struct obj_backend *inner,
		      const struct obj_dcache_config *conf, const char *store_id);
/* The identity of the store at url for the disk cache: scheme, endpoint
 * (s3->endpoint, else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS),
 * bucket and prefix, or the directory. *out is the caller's (free).
 * Returns 0, -EINVAL or -ENOMEM. */
int obj_dcache_store_id(char **out, const struct obj_url *u, const struct obj_s3_config *s3);
/* Fault wrapper; `spec` syntax in docs/faults.md, e.g.
 * "seed=7,error=0.10,cancel=0.05,latency_ms=0-20,ops=get+put+list". */
int obj_fault_create(struct obj_backend **out, struct obj_backend *inner, const char *spec);

/*
 * obj_crypt_open - put the encryption layer on top of `inner`: read the
 * store's key object (shalefs-key) through inner, unwrap its data key
 * with the master key from conf, and wrap inner. With conf->create and
 * neither a key object nor a store marker, a new data key and key object
 * are made first. Takes ownership of inner on success only.
 * Returns 0, -EKEYREJECTED (wrong key), -ENOKEY (no key object: the store
 * is not encrypted), -EACCES (key file readable by others), -EINVAL (bad
 * key file or key object), -EEXIST (create on an unencrypted store), or a
 * store error; obj_last_error() says which file or object and why.
 */
int obj_crypt_open(struct obj_backend **out, struct obj_backend *inner,
		   const struct obj_crypt_config *conf);
/*
 * obj_crypt_rekey - wrap the data key of the encrypted store behind `b`
 * (a stack WITHOUT the crypt layer) with a new master key: old names the
 * current key, new the new one. The key object is replaced so that at
 * every moment one of the two keys opens the store (docs/encryption.md).
 * Returns 0, or the errors of obj_crypt_open.
 */
int obj_crypt_rekey(struct obj_backend *b, const struct obj_crypt_config *old_key,
		    const struct obj_crypt_config *new_key);
/* 1 if the stack b has an encryption layer, else 0. */
int obj_is_encrypted(struct obj_backend *b);

/* Fault wrapper control for tests: pause/resume injection on a stack
 * (walks wrappers to find the fault layer). Returns -ENOENT if none. */
int obj_fault_set_enabled(struct obj_backend *b, int enabled);

/* ---- helpers ------------------------------------------------------------ */

static inline int obj_get(struct obj_backend *b, const char *name, uint64_t off, uint64_t len,
			  void **out, size_t *out_len)
{
	return b->get(b, name, off, len, out, out_len);
}
static inline int obj_head(struct obj_backend *b, const char *name, struct obj_stat *st)
{
	return b->head(b, name, st);
}
static inline int obj_put(struct obj_backend *b, const char *name, const void *data, size_t len)
{
	return b->put(b, name, data, len, NULL);
}
static inline int obj_put_if_absent(struct obj_backend *b, const char *name, const void *data,
				    size_t len)
{
	return b->put_if_absent(b, name, data, len, NULL);
}
static inline int obj_delete(struct obj_backend *b, const char *name)
{
	return b->del(b, name);
}
static inline int obj_list_page(struct obj_backend *b, const char *prefix,
				const char *start_after, size_t max, struct obj_list **out)
{
	return b->list(b, prefix, start_after, max, out);
}

/* Delete many names, using del_many when the backend has it. */
int obj_delete_many(struct obj_backend *b, const char *const *names, size_t count);

/*
 * obj_list_each - call fn(arg, name, size) for every object under prefix,
 * in order, fetching pages of `page` names (0 = 1000) so memory stays
 * bounded. fn returns 0 to continue, >0 to stop early (returned as 0),
 * <0 to stop with that error.
 */
typedef int (*obj_list_fn)(void *arg, const char *name, uint64_t size);
int obj_list_each(struct obj_backend *b, const char *prefix, size_t page, obj_list_fn fn,
		  void *arg);

void obj_buf_free(void *buf);
void obj_list_free(struct obj_list *l);

/* Emit every counter of the stack. */
void obj_stats(struct obj_backend *b, obj_stat_emit_fn emit, void *arg);
/*
 * obj_latency - the request latency histograms of the stack's metrics
 * layer (obj_metrics.c; none without one): emit is called once per
 * operation ("get", "head", "put", "put_if_absent", "delete", "list") and
 * status class ("ok"; "not_found": -ENOENT; "conflict": -EEXIST, a lost
 * put_if_absent; "error": anything else). The "ok" histogram of every
 * operation is always emitted, the others once they counted a request.
 * h is borrowed for the call. The counts of one operation add up to its
 * objstore_<op>_requests counter (up to the requests that finish while
 * the two are read). Thread-safe.
 */
struct util_hist_snap;
typedef void (*obj_hist_emit_fn)(void *arg, const char *op, const char *status,
				 const struct util_hist_snap *h);
void obj_latency(struct obj_backend *b, obj_hist_emit_fn emit, void *arg);

/* ---- what requests cost (obj_cost.c: purposes; obj_metrics.c: counts, prices, the estimate) */

/*
 * Every request the metrics layer counts is charged to a purpose, so that
 * `shalefs stats` can say what the bucket's bill is made of. The purpose is
 * a thread-local tag: each engine thread sets its own once (the WAL writer
 * WAL, the flusher FLUSH, the compactor COMPACT, GC GC, the follower READ),
 * kv_open sets OTHER around itself, and a thread that never set one (a
 * FUSE worker, the read-ahead thread) has NONE. The metrics layer then
 * decides, in this order (obj_cost_purpose):
 *   1. GC: everything a GC pass does is GC's, whatever it touches;
 *   2. objects under manifest/, lease/ and readers/: MANIFEST (a flush's
 *      or compaction's commit is a manifest write, counted here);
 *   3. the thread's tag, when it has one;
 *   4. untagged: GET and HEAD are READ, the rest OTHER.
 * SEGMENT is the flush's data tables (kv_ref.c: the large values, file
 * data, written once); the copies compactions make out of mostly dead
 * data tables stay COMPACT's.
 */
enum obj_purpose {
	OBJ_PURPOSE_NONE,                 /* no tag set on this thread */
	OBJ_PURPOSE_WAL,
	OBJ_PURPOSE_FLUSH,
	OBJ_PURPOSE_COMPACT,
	OBJ_PURPOSE_SEGMENT,
	OBJ_PURPOSE_GC,
	OBJ_PURPOSE_READ,
	OBJ_PURPOSE_MANIFEST,
	OBJ_PURPOSE_OTHER,
	OBJ_PURPOSE_COUNT
};
/* "none", "wal", "flush", "compaction", "segment", "gc", "read",
 * "manifest", "other": the <p> of the stats keys purpose_<p>_*. */
extern const char *const obj_purpose_names[OBJ_PURPOSE_COUNT];

/* Set this thread's purpose tag; returns the previous one (to restore). */
enum obj_purpose obj_purpose_set(enum obj_purpose p);

/*
 * Request classes, as S3 bills them: PUT (PUT, COPY, POST and LIST
 * requests; put, put_if_absent, list here), GET (GET, HEAD and the rest;
 * get, head) and DELETE (free on AWS S3; a batch delete is a POST there,
 * counted here as one DELETE). A multipart upload (objects over the S3
 * backend's multipart_threshold, 16 MiB) is counted as one PUT, though S3
 * sees 2 + parts requests.
 */
enum obj_class { OBJ_CLASS_PUT, OBJ_CLASS_GET, OBJ_CLASS_DELETE, OBJ_CLASS_COUNT };

/*
 * A price list, in nano-dollars: per request of the PUT and GET classes,
 * and per GiB (2^30 bytes, as AWS bills a "GB") stored for a month. The
 * defaults are AWS S3 Standard in us-east-1: $0.005 per 1,000 PUT, COPY,
 * POST or LIST requests, $0.0004 per 1,000 GET or HEAD requests, $0.023
 * per GB-month (shalefs(1): price_put=, price_get=, price_gb_month=).
 */
struct obj_prices {
	unsigned version;                 /* OBJ_PRICES_VERSION */
	uint64_t put_nusd;                /* per request */
	uint64_t get_nusd;                /* per request */
	uint64_t gib_month_nusd;          /* per GiB-month */
};
#define OBJ_PRICES_VERSION 1
#define OBJ_DFLT_PRICE_PUT_NUSD 5000ull           /* $0.005 / 1,000 */
#define OBJ_DFLT_PRICE_GET_NUSD 400ull            /* $0.0004 / 1,000 */
#define OBJ_DFLT_PRICE_GIB_MONTH_NUSD 23000000ull /* $0.023 */
#define OBJ_PRICES_INIT { OBJ_PRICES_VERSION, OBJ_DFLT_PRICE_PUT_NUSD, \
			  OBJ_DFLT_PRICE_GET_NUSD, OBJ_DFLT_PRICE_GIB_MONTH_NUSD }

/* Use prices p (copied) for the stack's estimates from now on. A stack
 * without a metrics layer ignores it. Thread-safe. */
void obj_cost_set_prices(struct obj_backend *b, const struct obj_prices *p);

/*
 * obj_cost_stats - emit the cost estimate of the stack's metrics layer
 * (nothing without one):
 *   cost_price_put_nusd, cost_price_get_nusd, cost_price_gib_month_nusd
 *   cost_<purpose>_nusd          what the requests of a purpose cost so far
 *   cost_requests_nusd           their sum
 *   cost_requests_nusd_per_hour  that sum over the time since the stack
 *                                was opened, per hour
 *   cost_stored_bytes            stored_bytes, as given
 *   cost_storage_nusd_per_hour   what storing that costs per hour (a month
 *                                is 730 hours)
 *   cost_nusd_per_hour           the two per-hour figures added
 * stored_bytes is what the caller knows to be in the bucket (kv: the
 * tables of the current manifest). Thread-safe.
 */
void obj_cost_stats(struct obj_backend *b, uint64_t stored_bytes, obj_stat_emit_fn emit,
		    void *arg);

/* Size and free bytes of what holds the store, where a backend knows
 * them (file://: the filesystem of its directory). Returns 0, or
 * -ENOTSUP (s3://, mem://: no fixed size), or -errno. */
int obj_space(struct obj_backend *b, uint64_t *total, uint64_t *avail);

/* 1 if err (negative errno) is worth retrying. */
int obj_err_is_transient(int err);

/* Name validity: non-empty, < OBJ_NAME_MAX, no NUL, no leading '/', no
 * "." or ".." component, no empty component. Returns 0 or -EINVAL. */
int obj_name_check(const char *name);

/* Thread-local text of the last failure recorded by a backend on this
 * thread ("" when none). Borrowed until the next objstore call. */
const char *obj_last_error(void);
/* Record (and log at `level`, see util.h) a failure as "OP NAME: CAUSE",
 * or "OP: CAUSE" when name is NULL or "" (no one object, e.g. a LIST of
 * the whole store); returns err so callers can write `return obj_fail(...)`. */
int obj_fail(int err, int log_level, const char *op, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Clear obj_last_error() for this thread. */
void obj_clear_error(void);

#endif /* SHALE_OBJSTORE_H */
