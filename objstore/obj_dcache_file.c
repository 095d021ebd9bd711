/*
 * obj_dcache_file.c - the disk cache's entry files: where each lives, how
 * it is written so that no crash leaves a half entry that verifies, and
 * how a read proves it holds the bytes asked for. No state, no locks: the
 * index (obj_dcache_index.c) decides which files exist.
 *
 * LAYOUT
 *   ROOT/<16 hex: hash of the store id>/      one directory per store
 *       store                                 the store id, in full
 *       lock                                  flock'd by the one process using it
 *       tmp/                                  entries being written
 *       <2 hex>/<16 hex>-<hex k>              chunk k of the object whose
 *                                             name hashes (FNV-1a 64) to the
 *                                             16 hex; the first 2 of them
 *                                             fan the files out over 256
 *                                             directories
 *
 * ENTRY FILE FORMAT
 *   An entry file is a 36-byte header, the object name, and the payload:
 *   bytes [k * chunk, k * chunk + len) of the object. All integers are
 *   big-endian.
 *     0   8  magic "SHDCENT1" (the 1 is the format version)
 *     8   2  name length n (1 .. OBJ_NAME_MAX - 1)
 *     10  2  zero (reserved)
 *     12  4  chunk size of the cache that wrote it
 *     16  8  chunk index k
 *     24  4  payload length len (0 .. chunk; less than chunk only for the
 *            last chunk of the object; 0 is an end marker: the object is
 *            exactly k * chunk bytes long, so a read of it to the end
 *            needs no request to learn where it ends)
 *     28  4  CRC32C of the payload
 *     32  4  CRC32C of bytes 0..31 followed by the name
 *     36  n  the object name
 *     36+n len  the payload
 *   The file is exactly 36 + n + len bytes. A read checks all of it: the
 *   magic, the header checksum, that name, chunk size and k are the ones
 *   asked for, the size, and the payload checksum. Any mismatch (a flipped
 *   byte, a truncated or extended file, a file of another object whose
 *   name has the same hash) is -EBADMSG: the caller drops it and fetches
 *   from the store. The name in the header is what makes a hash collision
 *   harmless, and what the scan at open rebuilds the index from.
 *
 * WRITING
 *   An entry is written to a fresh temp file in tmp/ and renamed into
 *   place, so a reader or a crash sees the whole old file, the whole new
 *   one, or none. There is no fsync: after a power loss a renamed file
 *   may hold zeros or a torn payload, which its checksums catch, and the
 *   cache can always be refetched. tmp/ is emptied at open (a crash leaves
 *   temp files there).
 */
#include "objstore/objstore_int.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DCF_MAGIC "SHDCENT1"

uint64_t obj_dcache_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

int obj_dcache_file_path(char *buf, size_t size, const char *dir, uint64_t h, uint32_t k)
{
	int n = snprintf(buf, size, "%s/%02x/%016" PRIx64 "-%" PRIx32, dir, (unsigned)(h >> 56),
			 h, k);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

uint64_t obj_dcache_file_charge(size_t name_len, uint32_t len)
{
	uint64_t sz = OBJ_DCACHE_HDR + (uint64_t)name_len + len;
	return (sz + 4095) & ~(uint64_t)4095;
}

/* The header of (name, chunk, k, payload) into hdr (OBJ_DCACHE_HDR bytes). */
static void obj_dcache_file_encode(uint8_t *hdr, const char *name, size_t n, uint32_t chunk,
				   uint32_t k, const void *data, uint32_t len)
{
	uint32_t crc;

	memcpy(hdr, DCF_MAGIC, 8);
	util_put_be16(hdr + 8, (uint16_t)n);
	util_put_be16(hdr + 10, 0);
	util_put_be32(hdr + 12, chunk);
	util_put_be64(hdr + 16, k);
	util_put_be32(hdr + 24, len);
	util_put_be32(hdr + 28, len ? util_crc32c(0, data, len) : 0);
	crc = util_crc32c(0, hdr, 32);
	crc = util_crc32c(crc, name, n);
	util_put_be32(hdr + 32, crc);
}

/* Write all of buf at the current offset of fd. Returns 0 or -errno. */
static int obj_dcache_file_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int obj_dcache_file_write(const char *dir, const char *name, uint64_t h, uint32_t chunk,
			  uint32_t k, const void *data, uint32_t len)
{
	uint8_t hdr[OBJ_DCACHE_HDR];
	char path[4096], tmp[4096];
	size_t n = strlen(name);
	int fd = -1, rc, saved;

	if (n == 0 || n >= OBJ_NAME_MAX || len > chunk)
		return -EINVAL;
	rc = obj_dcache_file_path(path, sizeof(path), dir, h, k);
	if (rc)
		return rc;
	if (snprintf(tmp, sizeof(tmp), "%s/tmp/e.XXXXXX", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	obj_dcache_file_encode(hdr, name, n, chunk, k, data, len);
	rc = obj_dcache_file_write_all(fd, hdr, sizeof(hdr));
	if (!rc)
		rc = obj_dcache_file_write_all(fd, name, n);
	if (!rc)
		rc = obj_dcache_file_write_all(fd, data, len);
	if (close(fd) != 0 && !rc)
		rc = -errno;
	if (rc)
		goto fail;
	if (rename(tmp, path) != 0) {
		char sub[4096];
		/* The fan-out directory is made on first use. */
		if (errno != ENOENT) {
			rc = -errno;
			goto fail;
		}
		snprintf(sub, sizeof(sub), "%s/%02x", dir, (unsigned)(h >> 56));
		if (mkdir(sub, 0700) != 0 && errno != EEXIST) {
			rc = -errno;
			goto fail;
		}
		if (rename(tmp, path) != 0) {
			rc = -errno;
			goto fail;
		}
	}
	return 0;
fail:
	saved = rc;
	unlink(tmp);
	return saved;
}

/* Read exactly len bytes at off. Returns 0, -EBADMSG (short) or -errno. */
static int obj_dcache_file_pread_all(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t r = pread(fd, p, len, off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EBADMSG;
		p += r;
		len -= (size_t)r;
		off += r;
	}
	return 0;
}

/* Check hdr (and the name after it, n bytes at name) against chunk;
 * *k and *len from it. Returns 0 or -EBADMSG. */
static int obj_dcache_file_check_header(const uint8_t *hdr, const char *name, size_t n,
					uint32_t chunk, uint32_t *k, uint32_t *len)
{
	uint32_t crc;
	uint64_t kk;

	if (memcmp(hdr, DCF_MAGIC, 8) != 0 || util_get_be16(hdr + 8) != n ||
	    util_get_be16(hdr + 10) != 0 || util_get_be32(hdr + 12) != chunk)
		return -EBADMSG;
	crc = util_crc32c(0, hdr, 32);
	crc = util_crc32c(crc, name, n);
	if (crc != util_get_be32(hdr + 32))
		return -EBADMSG;
	kk = util_get_be64(hdr + 16);
	*len = util_get_be32(hdr + 24);
	if (kk > UINT32_MAX || *len > chunk)
		return -EBADMSG;
	*k = (uint32_t)kk;
	return 0;
}

int obj_dcache_file_read(const char *dir, const char *name, uint64_t h, uint32_t chunk,
			 uint32_t k, uint32_t len, void *buf)
{
	uint8_t hdr[OBJ_DCACHE_HDR];
	char path[4096], fname[OBJ_NAME_MAX];
	size_t n = strlen(name);
	struct stat st;
	uint32_t fk, flen;
	int fd, rc;

	if (n == 0 || n >= OBJ_NAME_MAX)
		return -EINVAL;
	rc = obj_dcache_file_path(path, sizeof(path), dir, h, k);
	if (rc)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size != OBJ_DCACHE_HDR + n + (uint64_t)len) {
		rc = -EBADMSG;
		goto out;
	}
	rc = obj_dcache_file_pread_all(fd, hdr, sizeof(hdr), 0);
	if (!rc)
		rc = obj_dcache_file_pread_all(fd, fname, n, OBJ_DCACHE_HDR);
	if (!rc)
		rc = obj_dcache_file_check_header(hdr, fname, n, chunk, &fk, &flen);
	if (!rc && (memcmp(fname, name, n) != 0 || fk != k || flen != len))
		rc = -EBADMSG;
	if (!rc)
		rc = obj_dcache_file_pread_all(fd, buf, len, (off_t)(OBJ_DCACHE_HDR + n));
	if (!rc && (len ? util_crc32c(0, buf, len) : 0) != util_get_be32(hdr + 28))
		rc = -EBADMSG;
out:
	close(fd);
	return rc;
}

int obj_dcache_file_header(const char *path, uint32_t chunk, char **name, uint32_t *k,
			   uint32_t *len)
{
	uint8_t hdr[OBJ_DCACHE_HDR];
	struct stat st;
	char *nm = NULL;
	size_t n;
	int fd, rc;

	*name = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	rc = obj_dcache_file_pread_all(fd, hdr, sizeof(hdr), 0);
	if (rc)
		goto out;
	n = util_get_be16(hdr + 8);
	if (n == 0 || n >= OBJ_NAME_MAX) {
		rc = -EBADMSG;
		goto out;
	}
	nm = malloc(n + 1);
	if (!nm) {
		rc = -ENOMEM;
		goto out;
	}
	rc = obj_dcache_file_pread_all(fd, nm, n, OBJ_DCACHE_HDR);
	if (rc)
		goto out;
	nm[n] = '\0';
	if (strlen(nm) != n) {
		rc = -EBADMSG;
		goto out;
	}
	rc = obj_dcache_file_check_header(hdr, nm, n, chunk, k, len);
	if (!rc && (uint64_t)st.st_size != OBJ_DCACHE_HDR + n + (uint64_t)*len)
		rc = -EBADMSG;
out:
	close(fd);
	if (rc)
		free(nm);
	else
		*name = nm;
	return rc;
}

void obj_dcache_file_unlink(const char *dir, uint64_t h, uint32_t k)
{
	char path[4096];

	if (obj_dcache_file_path(path, sizeof(path), dir, h, k) == 0)
		(void)unlink(path);
}
