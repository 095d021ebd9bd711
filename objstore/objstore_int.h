/*
 * objstore_int.h - internals shared by the objstore wrappers. Never
 * included from outside objstore/.
 */
#ifndef SHALE_OBJSTORE_INT_H
#define SHALE_OBJSTORE_INT_H

#include "objstore/objstore.h"

#include <sys/types.h>
#include <stdint.h>

/* Every wrapper starts with this, so generic code (obj_fault_set_enabled,
 * obj_stats) can walk a stack from the outermost layer inward. */
struct obj_wrapper {
	struct obj_backend base;          /* must be first */
	struct obj_backend *inner;        /* owned */
};

/* Inner backend of b if b is one of our wrappers, else NULL. */
struct obj_backend *obj_wrapper_inner(struct obj_backend *b);

/* Names of the operations, for counters and messages. */
enum obj_op {
	OBJ_OP_GET,
	OBJ_OP_HEAD,
	OBJ_OP_PUT,
	OBJ_OP_PUT_IF_ABSENT,
	OBJ_OP_DELETE,
	OBJ_OP_LIST,
	OBJ_OP_COUNT
};
extern const char *const obj_op_names[OBJ_OP_COUNT];

/* ---- obj_cost.c: requests by purpose and class ---------------------------- */

/* The purpose a request of op on name, made by a thread tagged tag, is
 * charged to (objstore.h says the rule). name may be NULL. */
enum obj_purpose obj_cost_purpose(enum obj_purpose tag, enum obj_op op, const char *name);
/* This thread's tag. */
enum obj_purpose obj_purpose_get(void);
/* The class S3 bills op in. */
enum obj_class obj_cost_class(enum obj_op op);

/* obj_metrics.c: the stack's metrics layer, or NULL. */
struct obj_backend *obj_metrics_find(struct obj_backend *b);

/*
 * The file:// backend's cache of open object files (obj_local_fds.c).
 * obj_fds_get and obj_fds_add return a pinned entry (or NULL: not
 * cached / no memory); every pinned entry goes back through
 * obj_fds_release. obj_fds_forget unhooks name (only if it is still the
 * entry `only`, when given); pinned holders keep a working descriptor.
 */
#define OBJ_LOCAL_FDS 64
struct obj_fds;
struct obj_fd;
struct obj_fds *obj_fds_create(void);
void obj_fds_free(struct obj_fds *c);
struct obj_fd *obj_fds_get(struct obj_fds *c, const char *name);
struct obj_fd *obj_fds_add(struct obj_fds *c, const char *name, int fd, nlink_t nlink);
void obj_fds_release(struct obj_fds *c, struct obj_fd *f);
void obj_fds_forget(struct obj_fds *c, const char *name, const struct obj_fd *only);
int obj_fd_fd(const struct obj_fd *f);
/* Whether the object file still has the link count it was opened with. */
int obj_fd_valid(const struct obj_fd *f, nlink_t nlink);

/*
 * How the file:// backend writes an object's bytes into a fresh temp file
 * (obj_local_direct.c): large objects with O_DIRECT through a bounded pool
 * of bounce buffers, small ones (and any on a filesystem that refuses
 * O_DIRECT) buffered. Thread-safe; returns 0 or -errno.
 */
struct obj_direct;
struct obj_direct *obj_direct_create(void);
void obj_direct_free(struct obj_direct *d);
int obj_direct_write(struct obj_direct *d, int fd, const void *data, size_t len);

/* ---- the disk cache (obj_dcache.c, obj_dcache_index.c, obj_dcache_file.c) ----
 * The wrapper keeps in obj_dcache.c; the in-memory index (states, LRU,
 * byte cap) in obj_dcache_index.c; the entry files (format, paths,
 * temp + rename, verification) in obj_dcache_file.c. docs/cache.md. */

/* Functions from file obj_dcache_file.c. All thread-safe (no state).
 * dir is the store's cache directory (ROOT/<store hash>). */
#define OBJ_DCACHE_HDR 36                 /* fixed part of an entry header */
#define OBJ_DCACHE_PIECE 16384            /* bytes under one checksum of an entry */
uint64_t obj_dcache_hash(const char *s);  /* FNV-1a 64 */
/* dir/<2 hex>/<16 hex of h>-<hex k> into buf. Returns 0 or -ENAMETOOLONG. */
int obj_dcache_file_path(char *buf, size_t size, const char *dir, uint64_t h, uint32_t k);
/* Write the entry (name, chunk k of chunk bytes, data[0..len)) through a
 * temp file in dir/tmp and rename. Returns 0 or -errno. */
int obj_dcache_file_write(const char *dir, const char *name, uint64_t h, uint32_t chunk,
			  uint32_t k, const void *data, uint32_t len);
/* Check the entry of (name, k), expected len payload bytes, and read the
 * pieces that hold its payload bytes [lo, hi) (lo <= hi <= len) into buf
 * (>= len bytes), verifying each: buf[0] is payload byte *at (lo rounded
 * down to a piece). Returns 0, -ENOENT (no file), -EBADMSG (truncated,
 * corrupt, or another entry's file), or -errno. */
int obj_dcache_file_read(const char *dir, const char *name, uint64_t h, uint32_t chunk,
			 uint32_t k, uint32_t len, uint32_t lo, uint32_t hi, void *buf,
			 uint32_t *at);
/* Check the header of the entry file at path (scan at open): *name (the
 * caller's, free), *k and *len from it; the header checksum, the chunk
 * size and the file size must agree. Returns 0, -EBADMSG, -ENOMEM or -errno. */
int obj_dcache_file_header(const char *path, uint32_t chunk, char **name, uint32_t *k,
			   uint32_t *len);
/* Remove the entry file of (h, k); a missing file is not an error. */
void obj_dcache_file_unlink(const char *dir, uint64_t h, uint32_t k);
/* Bytes an entry of name_len and len is charged against the cap: its file
 * size rounded up to whole 4 KiB blocks, what it costs on disk. */
uint64_t obj_dcache_file_charge(size_t name_len, uint32_t len);

/* Functions from file obj_dcache_index.c. Thread-safe (one mutex). */
struct obj_dcache_index;
int obj_dcache_index_create(struct obj_dcache_index **out, const char *dir, uint32_t chunk,
			    uint64_t cap);
void obj_dcache_index_free(struct obj_dcache_index *x);
/* Load the entries under dir (at open, before any other call); bad files
 * are removed and counted in *dropped. Returns 0 or -ENOMEM. */
int obj_dcache_index_scan(struct obj_dcache_index *x, uint64_t *dropped);
/* Change the cap, evicting down to it. */
void obj_dcache_index_set_cap(struct obj_dcache_index *x, uint64_t cap);
/* Chunk k of name: 1 = cached, *len its payload bytes (the entry moves to
 * the front of the LRU); 0 = not cached and now claimed by the caller,
 * who must end the claim with obj_dcache_index_done. Waits while another
 * caller holds the claim (one fetch per chunk). Returns 1, 0 or -ENOMEM. */
int obj_dcache_index_acquire(struct obj_dcache_index *x, const char *name, uint32_t k,
			     uint32_t *len);
/* obj_dcache_index_acquire without the wait: 2 when another caller holds
 * the claim. */
int obj_dcache_index_try(struct obj_dcache_index *x, const char *name, uint32_t k,
			 uint32_t *len);
/* Claim chunk k of name if it is neither cached nor claimed, without
 * waiting. Returns 1 (claimed), 0 (not), or -ENOMEM. */
int obj_dcache_index_claim(struct obj_dcache_index *x, const char *name, uint32_t k);
/* End a claim: len >= 0 means the entry file of len bytes is written
 * (it becomes cached, unless the name was dropped meanwhile or it cannot
 * fit; then its file is removed), len < 0 that there is none. Evicts
 * down to the cap. Wakes the waiters. */
void obj_dcache_index_done(struct obj_dcache_index *x, const char *name, uint32_t k,
			   int64_t len);
/* Forget chunk k of name and remove its file (it failed to verify). */
void obj_dcache_index_drop(struct obj_dcache_index *x, const char *name, uint32_t k);
/* Forget every chunk of name and remove their files (the object was
 * deleted or overwritten); claims in flight end uncached. */
void obj_dcache_index_drop_name(struct obj_dcache_index *x, const char *name);
struct obj_dcache_index_stats {
	uint64_t bytes, entries, cap, evictions;
};
void obj_dcache_index_stats(struct obj_dcache_index *x, struct obj_dcache_index_stats *st);
/*
 * Encryption (obj_crypt_key.c: keys and the key object; obj_crypt.c: the
 * wrapper and its chunk framing). docs/encryption.md has the formats.
 */
#define OBJ_CRYPT_KEY_LEN 32
#define OBJ_CRYPT_ID_LEN 16
#define OBJ_CRYPT_WRAP_LEN (12 + OBJ_CRYPT_KEY_LEN + 16)   /* nonce, key, tag */
#define OBJ_CRYPT_KEY_OBJECT "shalefs-key"
#define OBJ_CRYPT_KEY_NEXT "shalefs-key.next"
/* Plaintext bytes per chunk, and what each chunk adds (nonce + tag). */
#define OBJ_CRYPT_CHUNK 16384u
#define OBJ_CRYPT_OVERHEAD 28u

/* A secret in a page of its own (mlock'ed, not dumped, wiped on free). */
struct obj_crypt_secret {
	uint8_t key[OBJ_CRYPT_KEY_LEN];   /* master or data key */
	uint8_t id[OBJ_CRYPT_ID_LEN];     /* data key: the store id */
	size_t pass_len;
	uint8_t pass[1024];               /* passphrase / key file while read */
	size_t map_len;                   /* bytes mapped */
};
struct obj_crypt_secret *obj_crypt_secret_alloc(void);
void obj_crypt_secret_free(struct obj_crypt_secret *s);

enum obj_crypt_kdf { OBJ_CRYPT_KDF_NONE = 0, OBJ_CRYPT_KDF_SCRYPT = 1 };
/* The decoded key object. */
struct obj_crypt_keyobj {
	uint8_t store_id[OBJ_CRYPT_ID_LEN];
	enum obj_crypt_kdf kdf;
	uint64_t scrypt_n;
	unsigned scrypt_r, scrypt_p;
	uint8_t salt[16];
	uint8_t wrapped[OBJ_CRYPT_WRAP_LEN];
};
/* Decode/encode the key object. decode: 0 or -EINVAL (recorded); any
 * bytes are safe. encode: length written to buf, or -EINVAL. */
int obj_crypt_keyobj_decode(struct obj_crypt_keyobj *k, const void *buf, size_t len);
int obj_crypt_keyobj_encode(const struct obj_crypt_keyobj *k, char *buf, size_t len);
/* The master key for key object k from c's file (*out the caller's). */
int obj_crypt_master(struct obj_crypt_secret **out, const struct obj_crypt_config *c,
		     const struct obj_crypt_keyobj *k);
/* k's data key and store id into data: 0 or -EKEYREJECTED. */
int obj_crypt_unwrap(struct obj_crypt_secret *data, const struct obj_crypt_keyobj *k,
		     const struct obj_crypt_secret *master);
/* The data key of the store behind b (no crypt layer), made first when
 * c->create and the store is new. *out the caller's (obj_crypt_secret_free). */
int obj_crypt_load(struct obj_crypt_secret **out, struct obj_backend *b,
		   const struct obj_crypt_config *c);

/*
 * Chunk framing (obj_crypt.c). obj_crypt_plain_size: plaintext size of
 * an object of `ct` ciphertext bytes, or -EIO when no object has that
 * size. obj_crypt_seal: encrypt len bytes as object `name` into *out
 * (malloc'd, the caller's). obj_crypt_unseal: decrypt buf (ct_len bytes:
 * the chunks from first_chunk on, as fetched) in place; `ends` = 1 when
 * buf reaches the object's end (its last chunk is the final one), 0 when
 * more chunks follow. On success buf starts with the plaintext from
 * `skip` bytes into the first chunk on, and its length is returned; on
 * failure -EIO with *why and *bad (the failing chunk) set, and buf holds
 * garbage. Any bytes are safe.
 */
int obj_crypt_plain_size(uint64_t ct, uint64_t *plain);
uint64_t obj_crypt_cipher_size(uint64_t plain);
int obj_crypt_seal(const struct obj_crypt_secret *k, const char *name, const void *data,
		   size_t len, void **out, size_t *out_len);
/* The same into ct, obj_crypt_cipher_size(len) bytes the caller owns. */
int obj_crypt_seal_into(const struct obj_crypt_secret *k, const char *name, const void *data,
			size_t len, uint8_t *ct);
ssize_t obj_crypt_unseal(const struct obj_crypt_secret *k, const char *name,
			 uint64_t first_chunk, uint8_t *buf, size_t ct_len, int ends, size_t skip,
			 const char **why, uint64_t *bad);

/* ---- get buffers (obj_util.c) ----------------------------------------------
 * obj_buf_alloc - a buffer of at least n bytes for a get's result, freed
 * with obj_buf_free (or free: it is malloc'd). Buffers of
 * OBJ_BUF_POOL_MIN bytes and more come from, and go back to, a small pool
 * (at most OBJ_BUF_POOL_BYTES kept), so that the ranged reads of a
 * sequential read reuse their memory instead of mapping and faulting in
 * fresh pages for every span (the daemon sends every allocation of 128
 * KiB and more to mmap, cli/shalefs.c). What the pool does not serve
 * (smaller, bigger than it keeps, or nothing fits) comes from
 * util_big_alloc: huge pages from UTIL_BIG_ALLOC on. obj_buf_free takes
 * any malloc'd buffer (util_big_alloc's are). NULL when out of memory.
 * Thread-safe. */
#define OBJ_BUF_POOL_MIN ((size_t)256 << 10)
#define OBJ_BUF_POOL_BYTES ((size_t)64 << 20)
void *obj_buf_alloc(size_t n);

#endif /* SHALE_OBJSTORE_INT_H */
