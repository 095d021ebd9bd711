/*
 * obj_crypt_key.c - the keys of an encrypted store: the master key (from a
 * key file, or a passphrase stretched with scrypt), the store's data key,
 * and the key object that holds the data key wrapped by the master key
 * (docs/encryption.md). obj_crypt.c uses the data key; nothing here sees
 * object contents.
 *
 * SECRETS
 *   Every key, and a passphrase while it is read and stretched, lives in
 *   a struct obj_crypt_secret: one anonymous page of its own, mlock'ed
 *   (best effort: RLIMIT_MEMLOCK may refuse) and excluded from core dumps
 *   (MADV_DONTDUMP), wiped with OPENSSL_cleanse before it is unmapped.
 *   No secret is ever logged or put into an error message; messages name
 *   the file or object and what is wrong with it.
 *
 * KEY OBJECT FORMAT (object "shalefs-key"; text, so an administrator can
 * see what a store uses; stored in the clear beside the store marker)
 *   "shalefs-key 1\n"                       magic and key-object version
 *   "store_id <32 hex digits>\n"            random at format; bound into
 *                                           every chunk's associated data
 *   "cipher aes-256-gcm chunk 16384\n"      the chunk framing of obj_crypt.c
 *   "kdf none\n"                            master key from a key file, or
 *   "kdf scrypt n N r R p P salt <32 hex>\n" from a passphrase: scrypt with
 *                                           these parameters and this
 *                                           16-byte random salt
 *   "wrapped <120 hex digits>\n"            12-byte nonce, the 32-byte data
 *                                           key encrypted with AES-256-GCM
 *                                           under the master key, 16-byte
 *                                           tag; associated data: every
 *                                           byte of the object before this
 *                                           line, so the id and the KDF
 *                                           parameters cannot be changed
 *   "crc <8 hex digits>\n"                  CRC32C of every byte before
 *                                           this line (tells damage from a
 *                                           wrong key)
 *   The GCM tag of "wrapped" is the key check: a wrong master key fails
 *   it, and nothing else about the key is stored. Lines come in exactly
 *   this order; anything else is a malformed key object (-EINVAL).
 *
 * REKEY
 *   obj_crypt_rekey writes the new wrapping as "shalefs-key.next" (put),
 *   reads it back and unwraps it with the new master key, then replaces
 *   "shalefs-key" (put: atomic) and deletes ".next". Opening tries
 *   "shalefs-key" and, when the master key does not open it, ".next": a
 *   crash at any point leaves the old key or the new one working.
 *
 * THREADING
 *   Called at open and rekey, one thread; no shared state.
 */
#include "objstore/objstore_int.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define KEY_MAGIC "shalefs-key 1\n"
#define KEY_CIPHER_LINE "cipher aes-256-gcm chunk 16384\n"
/* scrypt at format: 2^15 x 8 x 128 B = 32 MiB of memory, about 0.1 s. */
#define KEY_SCRYPT_N 32768u
#define KEY_SCRYPT_R 8u
#define KEY_SCRYPT_P 1u
/* What a key object may ask for: at most 512 MiB of scrypt memory. */
#define KEY_SCRYPT_MAX_NR (1ull << 22)
#define KEY_OBJ_MAX 1024

struct obj_crypt_secret *obj_crypt_secret_alloc(void)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	void *p;

	if (pg < sizeof(struct obj_crypt_secret))
		pg = (sizeof(struct obj_crypt_secret) + 4095) & ~(size_t)4095;
	p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Both are best effort: the secret is still wiped on free. */
	(void)mlock(p, pg);
	(void)madvise(p, pg, MADV_DONTDUMP);
	((struct obj_crypt_secret *)p)->map_len = pg;
	return p;
}

void obj_crypt_secret_free(struct obj_crypt_secret *s)
{
	size_t len;

	if (!s)
		return;
	len = s->map_len;
	OPENSSL_cleanse(s, len);
	(void)munlock(s, len);
	munmap(s, len);
}

/* ---- the master key ------------------------------------------------------- */

/* Read at most cap bytes of file `path` into buf (a secret page), refusing
 * a file group or others can access. Returns the length or -errno
 * (recorded, naming the file). */
static int key_read_file(const char *path, const char *opt, uint8_t *buf, size_t cap)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = -errno;
		return obj_fail(rc, -1, opt, path, "cannot open: %s", util_strerror(rc));
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		close(fd);
		return obj_fail(rc, -1, opt, path, "cannot stat: %s", util_strerror(rc));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return obj_fail(-EINVAL, -1, opt, path, "not a regular file");
	}
	if (st.st_mode & 077) {
		close(fd);
		return obj_fail(-EACCES, -1, opt, path, "mode %04o lets group or others read "
				"or change the key; chmod 600 it", (unsigned)(st.st_mode & 07777));
	}
	for (;;) {
		n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			close(fd);
			return obj_fail(rc, -1, opt, path, "cannot read: %s", util_strerror(rc));
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == cap) {
			close(fd);
			return obj_fail(-EINVAL, -1, opt, path, "too long (at most %zu bytes)",
					cap - 1);
		}
	}
	close(fd);
	return (int)got;
}

static int key_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* n bytes from 2n hex digits at s. Returns 0 or -1. */
static int key_unhex(uint8_t *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = key_hexval((unsigned char)s[2 * i]), lo;
		if (hi < 0)
			return -1;
		lo = key_hexval((unsigned char)s[2 * i + 1]);
		if (lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static void key_hex(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* The key file: exactly 32 raw bytes, or 64 hex digits and an optional
 * newline. */
static int key_from_file(struct obj_crypt_secret *m, const char *path)
{
	int n = key_read_file(path, "key_file", m->pass, sizeof(m->pass));

	if (n < 0)
		return n;
	if (n == OBJ_CRYPT_KEY_LEN) {
		memcpy(m->key, m->pass, OBJ_CRYPT_KEY_LEN);
	} else if ((n == 64 || (n == 65 && m->pass[64] == '\n')) &&
		   key_unhex(m->key, (const char *)m->pass, OBJ_CRYPT_KEY_LEN) == 0) {
		/* hex form */
	} else {
		OPENSSL_cleanse(m->pass, sizeof(m->pass));
		return obj_fail(-EINVAL, -1, "key_file", path, "expected exactly 32 bytes, or 64 "
				"hex digits (make one with: head -c 32 /dev/urandom > FILE)");
	}
	OPENSSL_cleanse(m->pass, sizeof(m->pass));
	return 0;
}

/* The passphrase: the file's bytes without one trailing newline. */
static int key_read_passphrase(struct obj_crypt_secret *m, const char *path)
{
	int n = key_read_file(path, "passphrase_file", m->pass, sizeof(m->pass));

	if (n < 0)
		return n;
	if (n > 0 && m->pass[n - 1] == '\n')
		n--;
	if (n > 0 && m->pass[n - 1] == '\r')
		n--;
	if (n == 0)
		return obj_fail(-EINVAL, -1, "passphrase_file", path, "the passphrase is empty");
	m->pass_len = (size_t)n;
	return 0;
}

static int key_scrypt(struct obj_crypt_secret *m, const struct obj_crypt_keyobj *k)
{
	uint64_t maxmem = 128ull * k->scrypt_r * (k->scrypt_n + k->scrypt_p + 2) + (1u << 20);

	if (EVP_PBE_scrypt((const char *)m->pass, m->pass_len, k->salt, sizeof(k->salt),
			   k->scrypt_n, k->scrypt_r, k->scrypt_p, maxmem, m->key,
			   OBJ_CRYPT_KEY_LEN) != 1)
		return obj_fail(-ENOMEM, -1, "passphrase_file", NULL,
				"scrypt (n %" PRIu64 " r %u p %u) failed", k->scrypt_n,
				k->scrypt_r, k->scrypt_p);
	return 0;
}

int obj_crypt_master(struct obj_crypt_secret **out, const struct obj_crypt_config *c,
		     const struct obj_crypt_keyobj *k)
{
	struct obj_crypt_secret *m = obj_crypt_secret_alloc();
	int rc;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	if (c->key_file && c->passphrase_file) {
		rc = obj_fail(-EINVAL, -1, "key_file", NULL,
			      "give key_file= or passphrase_file=, not both");
	} else if (c->key_file) {
		rc = key_from_file(m, c->key_file);
		if (rc == 0 && k->kdf != OBJ_CRYPT_KDF_NONE)
			rc = obj_fail(-EKEYREJECTED, -1, "key_file", c->key_file,
				      "this store's key is a passphrase: give passphrase_file=");
	} else if (c->passphrase_file) {
		rc = key_read_passphrase(m, c->passphrase_file);
		if (rc == 0 && k->kdf != OBJ_CRYPT_KDF_SCRYPT)
			rc = obj_fail(-EKEYREJECTED, -1, "passphrase_file", c->passphrase_file,
				      "this store's key is a key file: give key_file=");
		if (rc == 0)
			rc = key_scrypt(m, k);
		OPENSSL_cleanse(m->pass, sizeof(m->pass));
		m->pass_len = 0;
	} else {
		rc = obj_fail(-EINVAL, -1, "key_file", NULL,
			      "no key_file= or passphrase_file= given");
	}
	if (rc) {
		obj_crypt_secret_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* ---- the key object ------------------------------------------------------- */

/* The text of k up to (not including) the "wrapped" line: the AAD of the
 * wrap. Returns its length or -EINVAL. */
static int key_encode_head(const struct obj_crypt_keyobj *k, char *buf, size_t len)
{
	char id[2 * OBJ_CRYPT_ID_LEN + 1], salt[2 * sizeof(k->salt) + 1];
	int n;

	key_hex(id, k->store_id, OBJ_CRYPT_ID_LEN);
	if (k->kdf == OBJ_CRYPT_KDF_SCRYPT) {
		key_hex(salt, k->salt, sizeof(k->salt));
		n = snprintf(buf, len, KEY_MAGIC "store_id %s\n" KEY_CIPHER_LINE
			     "kdf scrypt n %" PRIu64 " r %u p %u salt %s\n", id, k->scrypt_n,
			     k->scrypt_r, k->scrypt_p, salt);
	} else {
		n = snprintf(buf, len, KEY_MAGIC "store_id %s\n" KEY_CIPHER_LINE "kdf none\n", id);
	}
	return n < 0 || (size_t)n >= len ? -EINVAL : n;
}

int obj_crypt_keyobj_encode(const struct obj_crypt_keyobj *k, char *buf, size_t len)
{
	char w[2 * OBJ_CRYPT_WRAP_LEN + 1];
	int n = key_encode_head(k, buf, len), m;

	if (n < 0)
		return n;
	key_hex(w, k->wrapped, OBJ_CRYPT_WRAP_LEN);
	m = snprintf(buf + n, len - (size_t)n, "wrapped %s\n", w);
	if (m < 0 || (size_t)(n + m) + 14 > len)
		return -EINVAL;
	n += m;
	n += snprintf(buf + n, len - (size_t)n, "crc %08" PRIx32 "\n",
		      util_crc32c(0, buf, (size_t)n));
	return n;
}

/* Next line of [*p, end) into line (NUL-terminated, without '\n').
 * Returns 0, or -1 when there is none or it is too long. */
static int key_line(const char **p, const char *end, char *line, size_t cap)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n;

	if (!nl)
		return -1;
	n = (size_t)(nl - *p);
	if (n >= cap || memchr(*p, '\0', n))
		return -1;
	memcpy(line, *p, n);
	line[n] = '\0';
	*p = nl + 1;
	return 0;
}

static int key_bad(const char *why)
{
	return obj_fail(-EINVAL, -1, "key object", OBJ_CRYPT_KEY_OBJECT, "malformed: %s", why);
}

int obj_crypt_keyobj_decode(struct obj_crypt_keyobj *k, const void *data, size_t len)
{
	const char *buf = data, *p = buf, *end = buf + len, *crc_at;
	char line[256], salt[64], tail;
	unsigned long long n;
	unsigned r, pp, crc;
	char head[KEY_OBJ_MAX];
	int hn;

	memset(k, 0, sizeof(*k));
	if (len > KEY_OBJ_MAX)
		return key_bad("too long");
	if (key_line(&p, end, line, sizeof(line)) || strcmp(line, "shalefs-key 1"))
		return key_bad(strncmp(line, "shalefs-key ", 12) ? "bad header" :
			       "key-object version this shalefs does not read");
	if (key_line(&p, end, line, sizeof(line)) || strlen(line) != 9 + 32 ||
	    strncmp(line, "store_id ", 9) || key_unhex(k->store_id, line + 9, OBJ_CRYPT_ID_LEN))
		return key_bad("bad store_id line");
	if (key_line(&p, end, line, sizeof(line)) || strcmp(line, "cipher aes-256-gcm chunk 16384"))
		return key_bad("unknown cipher or chunk size");
	if (key_line(&p, end, line, sizeof(line)))
		return key_bad("no kdf line");
	if (!strcmp(line, "kdf none")) {
		k->kdf = OBJ_CRYPT_KDF_NONE;
	} else if (sscanf(line, "kdf scrypt n %llu r %u p %u salt %63s%c", &n, &r, &pp, salt,
			  &tail) == 4 && strlen(salt) == 32 &&
		   key_unhex(k->salt, salt, sizeof(k->salt)) == 0) {
		if (n < 2 || (n & (n - 1)) || r < 1 || r > 64 || pp < 1 || pp > 16 ||
		    n * r > KEY_SCRYPT_MAX_NR)
			return key_bad("scrypt parameters out of range");
		k->kdf = OBJ_CRYPT_KDF_SCRYPT;
		k->scrypt_n = n;
		k->scrypt_r = r;
		k->scrypt_p = pp;
	} else {
		return key_bad("bad kdf line");
	}
	if (key_line(&p, end, line, sizeof(line)) || strncmp(line, "wrapped ", 8) ||
	    strlen(line + 8) != 2 * OBJ_CRYPT_WRAP_LEN ||
	    key_unhex(k->wrapped, line + 8, OBJ_CRYPT_WRAP_LEN))
		return key_bad("bad wrapped line");
	crc_at = p;
	if (key_line(&p, end, line, sizeof(line)) || sscanf(line, "crc %8x%c", &crc, &tail) != 1 ||
	    strlen(line) != 12 || p != end)
		return key_bad("bad crc line");
	if (util_crc32c(0, buf, (size_t)(crc_at - buf)) != crc)
		return key_bad("checksum mismatch (damaged)");
	/* The canonical form must be what was read: the AAD is re-encoded. */
	hn = key_encode_head(k, head, sizeof(head));
	if (hn < 0 || (size_t)hn > len || memcmp(head, buf, (size_t)hn))
		return key_bad("not in canonical form");
	return 0;
}

/* AES-256-GCM of the data key under the master key, AAD = head of k. */
static int key_wrap_op(int enc, struct obj_crypt_keyobj *k, uint8_t *data_key,
		       const struct obj_crypt_secret *master)
{
	char aad[KEY_OBJ_MAX];
	int alen = key_encode_head(k, aad, sizeof(aad)), n, ok = 0;
	uint8_t *nonce = k->wrapped, *ct = k->wrapped + 12, *tag = k->wrapped + 12 + 32;
	EVP_CIPHER_CTX *ctx;

	if (alen < 0)
		return -EINVAL;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (enc) {
		if (RAND_bytes(nonce, 12) != 1)
			goto out;
		ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, master->key, nonce) == 1 &&
		     EVP_EncryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, alen) == 1 &&
		     EVP_EncryptUpdate(ctx, ct, &n, data_key, OBJ_CRYPT_KEY_LEN) == 1 &&
		     EVP_EncryptFinal_ex(ctx, ct + n, &n) == 1 &&
		     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
	} else {
		ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, master->key, nonce) == 1 &&
		     EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, alen) == 1 &&
		     EVP_DecryptUpdate(ctx, data_key, &n, ct, OBJ_CRYPT_KEY_LEN) == 1 &&
		     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
		     EVP_DecryptFinal_ex(ctx, data_key + n, &n) == 1;
		if (!ok)
			OPENSSL_cleanse(data_key, OBJ_CRYPT_KEY_LEN);
	}
out:
	EVP_CIPHER_CTX_free(ctx);
	if (ok)
		return 0;
	return enc ? -EIO : -EKEYREJECTED;
}

int obj_crypt_unwrap(struct obj_crypt_secret *data, const struct obj_crypt_keyobj *k,
		     const struct obj_crypt_secret *master)
{
	struct obj_crypt_keyobj copy = *k;
	int rc = key_wrap_op(0, &copy, data->key, master);
	if (rc == 0)
		memcpy(data->id, k->store_id, OBJ_CRYPT_ID_LEN);
	return rc;
}

/* ---- reading, making and replacing the key object ------------------------ */

static int key_get(struct obj_backend *b, const char *name, struct obj_crypt_keyobj *k)
{
	void *buf = NULL;
	size_t len = 0;
	int rc = obj_get(b, name, 0, OBJ_WHOLE, &buf, &len);

	if (rc)
		return rc;
	rc = obj_crypt_keyobj_decode(k, buf, len);
	obj_buf_free(buf);
	return rc;
}

/* Master key for k from c, then k's data key into data. */
static int key_open_one(struct obj_crypt_secret *data, const struct obj_crypt_keyobj *k,
			const struct obj_crypt_config *c)
{
	struct obj_crypt_secret *m = NULL;
	int rc = obj_crypt_master(&m, c, k);

	if (rc == 0)
		rc = obj_crypt_unwrap(data, k, m);
	obj_crypt_secret_free(m);
	return rc;
}

/* A fresh key object for data key `data` under the master key of c (new
 * salt for a passphrase). */
static int key_make(struct obj_crypt_keyobj *k, const struct obj_crypt_secret *data,
		    const struct obj_crypt_config *c)
{
	struct obj_crypt_secret *m = NULL, *dk;
	int rc;

	memset(k, 0, sizeof(*k));
	memcpy(k->store_id, data->id, OBJ_CRYPT_ID_LEN);
	if (c->passphrase_file && !c->key_file) {
		k->kdf = OBJ_CRYPT_KDF_SCRYPT;
		k->scrypt_n = KEY_SCRYPT_N;
		k->scrypt_r = KEY_SCRYPT_R;
		k->scrypt_p = KEY_SCRYPT_P;
		if (RAND_bytes(k->salt, sizeof(k->salt)) != 1)
			return obj_fail(-EIO, -1, "key object", OBJ_CRYPT_KEY_OBJECT,
					"no random bytes for the salt");
	}
	rc = obj_crypt_master(&m, c, k);
	if (rc)
		return rc;
	dk = obj_crypt_secret_alloc();
	if (!dk) {
		obj_crypt_secret_free(m);
		return -ENOMEM;
	}
	memcpy(dk->key, data->key, OBJ_CRYPT_KEY_LEN);
	rc = key_wrap_op(1, k, dk->key, m);
	obj_crypt_secret_free(dk);
	obj_crypt_secret_free(m);
	if (rc)
		return obj_fail(rc, -1, "key object", OBJ_CRYPT_KEY_OBJECT, "wrapping failed");
	return 0;
}

static int key_put(struct obj_backend *b, const char *name, const struct obj_crypt_keyobj *k,
		   int create_only)
{
	char buf[KEY_OBJ_MAX];
	int n = obj_crypt_keyobj_encode(k, buf, sizeof(buf));

	if (n < 0)
		return n;
	return create_only ? obj_put_if_absent(b, name, buf, (size_t)n) :
			     obj_put(b, name, buf, (size_t)n);
}

/* A new store: random id and data key, key object created only if absent
 * (two formats cannot both win). */
static int key_create(struct obj_crypt_secret *data, struct obj_backend *b,
		      const struct obj_crypt_config *c)
{
	struct obj_crypt_keyobj k;
	struct obj_stat st;
	int rc = obj_head(b, "shalefs-store", &st);

	if (rc == 0)
		return obj_fail(-EEXIST, -1, "format", "shalefs-store",
				"the location holds an unencrypted store; an existing store "
				"cannot be encrypted in place (copy it into a new encrypted store)");
	if (rc != -ENOENT)
		return rc;
	if (RAND_bytes(data->key, OBJ_CRYPT_KEY_LEN) != 1 ||
	    RAND_bytes(data->id, OBJ_CRYPT_ID_LEN) != 1)
		return obj_fail(-EIO, -1, "format", OBJ_CRYPT_KEY_OBJECT, "no random bytes");
	rc = key_make(&k, data, c);
	if (rc)
		return rc;
	rc = key_put(b, OBJ_CRYPT_KEY_OBJECT, &k, 1);
	if (rc == -EEXIST)
		return -EAGAIN;                 /* lost to another format: read theirs */
	return rc;
}

int obj_crypt_load(struct obj_crypt_secret **out, struct obj_backend *b,
		   const struct obj_crypt_config *c)
{
	struct obj_crypt_secret *data = obj_crypt_secret_alloc();
	struct obj_crypt_keyobj k;
	int rc, tries = 0;

	*out = NULL;
	if (!data)
		return -ENOMEM;
again:
	rc = key_get(b, OBJ_CRYPT_KEY_OBJECT, &k);
	if (rc == -ENOENT && c->create && tries++ == 0) {
		rc = key_create(data, b, c);
		if (rc == -EAGAIN)
			goto again;
		goto out;
	}
	if (rc == -ENOENT) {
		rc = obj_fail(-ENOKEY, -1, "open", OBJ_CRYPT_KEY_OBJECT,
			      "no key object: the store is not encrypted (or not formatted); "
			      "open it without key_file= and passphrase_file=");
		goto out;
	}
	if (rc)
		goto out;
	rc = key_open_one(data, &k, c);
	if (rc == -EKEYREJECTED) {
		/* A rekey that stopped between writing ".next" and replacing the
		 * key object: the new key is in ".next". */
		struct obj_crypt_keyobj nk;
		int r2 = key_get(b, OBJ_CRYPT_KEY_NEXT, &nk);
		if (r2 == 0 && !memcmp(nk.store_id, k.store_id, OBJ_CRYPT_ID_LEN) &&
		    key_open_one(data, &nk, c) == 0)
			rc = 0;
	}
	if (rc == -EKEYREJECTED)
		rc = obj_fail(-EKEYREJECTED, -1, "open", OBJ_CRYPT_KEY_OBJECT,
			      "the key does not unwrap this store's data key (wrong key)");
out:
	if (rc) {
		obj_crypt_secret_free(data);
		return rc;
	}
	*out = data;
	return 0;
}

int obj_crypt_rekey(struct obj_backend *b, const struct obj_crypt_config *old_key,
		    const struct obj_crypt_config *new_key)
{
	struct obj_crypt_secret *data = NULL, *check = NULL;
	struct obj_crypt_config oc = *old_key;
	struct obj_crypt_keyobj k, back;
	int rc;

	oc.create = 0;
	rc = obj_crypt_load(&data, b, &oc);
	if (rc)
		return rc;
	rc = key_make(&k, data, new_key);
	if (rc)
		goto out;
	rc = key_put(b, OBJ_CRYPT_KEY_NEXT, &k, 0);
	if (rc)
		goto out;
	/* Read back: the new key must open what is stored before it replaces
	 * the only other working copy. */
	check = obj_crypt_secret_alloc();
	if (!check) {
		rc = -ENOMEM;
		goto out;
	}
	rc = key_get(b, OBJ_CRYPT_KEY_NEXT, &back);
	if (rc == 0)
		rc = key_open_one(check, &back, new_key);
	if (rc == 0 && CRYPTO_memcmp(check->key, data->key, OBJ_CRYPT_KEY_LEN))
		rc = obj_fail(-EIO, -1, "rekey", OBJ_CRYPT_KEY_NEXT, "read back a different key");
	if (rc)
		goto out;
	rc = key_put(b, OBJ_CRYPT_KEY_OBJECT, &k, 0);
	if (rc)
		goto out;
	/* Best effort: a leftover ".next" holds the same new wrapping. */
	(void)obj_delete(b, OBJ_CRYPT_KEY_NEXT);
out:
	obj_crypt_secret_free(check);
	obj_crypt_secret_free(data);
	return rc;
}
