/*
 * kv_store.c - the marker that makes a location a ShaleFS store.
 *
 * Without it, any directory or prefix became a store at its first writer
 * open: a mistyped prefix mounted a new, empty filesystem, and a directory
 * holding something else was written into. Now `shalefs format` writes
 * the marker (create-only, so two formats cannot both succeed) into a
 * location that holds nothing, and a mount checks for it first.
 *
 * MARKER FORMAT (object "shalefs-store"; text, so an administrator can
 * read it; written once, never changed; never encrypted)
 *   "shalefs-store V\n"            magic and store format version: 1 for a
 *                                  plain store, 2 for an encrypted one
 *   "uuid <32 hex digits>\n"       random at format
 *   "created <wall-clock ns>\n"
 *   "encrypted aes-256-gcm\n"      version 2 only: every other object but
 *                                  the key object is ciphertext
 *                                  (docs/encryption.md)
 *   "crc <8 hex digits>\n"         CRC32C of every byte before this line
 *   A higher version is refused (a newer shalefs made it), so a shalefs
 *   without encryption refuses an encrypted store by its version rather
 *   than reading ciphertext as data.
 *
 * Stores made before the marker existed have manifests but no marker:
 * kv_store_check reports them as stores (KV_STORE_UNMARKED) and a writer
 * adds the marker (kv_store_mark).
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_STORE_MAGIC "shalefs-store "

static int kv_store_encode(char *buf, size_t len, int encrypted)
{
	uint8_t id[16];
	char hex[33];
	int n;

	if (util_random_bytes(id, sizeof(id)) != 0)
		return -EIO;
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	n = snprintf(buf, len, KV_STORE_MAGIC "%u\nuuid %s\ncreated %" PRIu64 "\n%s",
		     encrypted ? KV_STORE_FORMAT_ENCRYPTED : KV_STORE_FORMAT_PLAIN, hex,
		     util_wall_ns(), encrypted ? "encrypted aes-256-gcm\n" : "");
	if (n < 0 || (size_t)n + 16 > len)
		return -EINVAL;
	n += snprintf(buf + n, len - (size_t)n, "crc %08" PRIx32 "\n",
		      util_crc32c(0, buf, (size_t)n));
	return n;
}

/* Put the marker (create-only). Returns 0, -EEXIST or a store error. */
static int kv_store_put_marker(struct obj_backend *store)
{
	char buf[256];
	int n = kv_store_encode(buf, sizeof(buf), obj_is_encrypted(store));
	if (n < 0)
		return n;
	return obj_put_if_absent(store, KV_STORE_MARKER, buf, (size_t)n);
}

static int kv_store_parse(const char *buf, size_t len, unsigned *version, int *encrypted)
{
	size_t ml = strlen(KV_STORE_MAGIC);
	const char *crc;
	char tmp[512];

	if (len >= sizeof(tmp) || len < ml || memcmp(buf, KV_STORE_MAGIC, ml) != 0)
		return KV_CORRUPT(KV_STORE_MARKER, 0, "not a valid store marker (bad header)");
	memcpy(tmp, buf, len);
	tmp[len] = '\0';
	crc = strstr(tmp, "\ncrc ");
	if (!crc)
		return KV_CORRUPT(KV_STORE_MARKER, KV_CORRUPT_NO_OFFSET,
				  "not a valid store marker (no checksum)");
	crc++;
	if (util_crc32c(0, tmp, (size_t)(crc - tmp)) != (uint32_t)strtoul(crc + 4, NULL, 16))
		return KV_CORRUPT(KV_STORE_MARKER, (uint64_t)(crc - tmp),
				  "not a valid store marker (checksum mismatch)");
	*version = (unsigned)strtoul(tmp + ml, NULL, 10);
	*encrypted = strstr(tmp, "\nencrypted aes-256-gcm\n") != NULL;
	return 0;
}

int kv_store_check(struct obj_backend *store)
{
	void *buf = NULL;
	size_t len = 0;
	unsigned version = 0;
	struct obj_list *l = NULL;
	int encrypted = 0;
	int rc = obj_get(store, KV_STORE_MARKER, 0, OBJ_WHOLE, &buf, &len);

	if (rc == 0) {
		rc = kv_store_parse(buf, len, &version, &encrypted);
		obj_buf_free(buf);
		if (rc)
			return rc;              /* logged */
		if (version > KV_STORE_FORMAT || version == 0) {
			UTIL_ERROR("kv", "%s: store format %u, this shalefs reads format %u: "
				   "use a newer shalefs", KV_STORE_MARKER, version, KV_STORE_FORMAT);
			return -EPROTO;
		}
		if ((version == KV_STORE_FORMAT_ENCRYPTED) != encrypted)
			return KV_CORRUPT(KV_STORE_MARKER, KV_CORRUPT_NO_OFFSET,
					  "store format and encryption line disagree");
		if (encrypted && !obj_is_encrypted(store))
			return -ENOKEY;
		if (!encrypted && obj_is_encrypted(store))
			return -EMEDIUMTYPE;
		return KV_STORE_MARKED;
	}
	if (rc != -ENOENT)
		return rc;
	rc = obj_list_page(store, "manifest/", NULL, 1, &l);
	if (rc)
		return rc;
	rc = l->count ? KV_STORE_UNMARKED : -ENOENT;
	obj_list_free(l);
	return rc;
}

int kv_store_mark(struct obj_backend *store)
{
	int rc = kv_store_put_marker(store);
	return rc == -EEXIST ? 0 : rc;
}

int kv_store_format(struct obj_backend *store, int force, char *first, size_t firstlen)
{
	struct obj_list *l = NULL;
	int rc = kv_store_check(store);

	if (rc == KV_STORE_MARKED || rc == KV_STORE_UNMARKED)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	/* The key objects an encrypted open has just made are not content. */
	rc = obj_list_page(store, "", NULL, 4, &l);
	if (rc)
		return rc;
	for (size_t i = 0; i < l->count && !force; i++) {
		if (obj_is_encrypted(store) && !strncmp(l->entries[i].name, "shalefs-key", 11))
			continue;
		if (firstlen)
			snprintf(first, firstlen, "%s", l->entries[i].name);
		obj_list_free(l);
		return -ENOTEMPTY;
	}
	obj_list_free(l);
	return kv_store_put_marker(store);
}
