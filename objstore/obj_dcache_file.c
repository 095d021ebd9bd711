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
 *   An entry file is a 36-byte header, the object name, a table of piece
 *   checksums and the payload: bytes [k * chunk, k * chunk + len) of the
 *   object. All integers are big-endian.
 *     0   8  magic "SHDCENT2" (the 2 is the format version)
 *     8   2  name length n (1 .. OBJ_NAME_MAX - 1)
 *     10  2  zero (reserved)
 *     12  4  chunk size of the cache that wrote it
 *     16  8  chunk index k
 *     24  4  payload length len (0 .. chunk; less than chunk only for the
 *            last chunk of the object; 0 is an end marker: the object is
 *            exactly k * chunk bytes long, so a read of it to the end
 *            needs no request to learn where it ends)
 *     28  4  piece size P (OBJ_DCACHE_PIECE)
 *     32  4  CRC32C of bytes 0..31, the name and the piece table
 *     36  n  the object name
 *     36+n  4 x np  the piece table: CRC32C of each P-byte piece of the
 *            payload (np = len / P rounded up; the last piece is shorter)
 *     36+n+4np  len  the payload
 *   The file is exactly that long. A read checks the magic, the header
 *   checksum, that name, chunk size, piece size and k are the ones asked
 *   for and the size, then reads only the pieces that hold the bytes asked
 *   for and checks each against the table. Pieces, not the whole chunk:
 *   an engine block (about 64 KiB of a 1 MiB chunk) read from the cache
 *   then costs a small part of the chunk's reading and checksumming. Any
 *   mismatch (a flipped byte, a truncated or extended file, a file of
 *   another object whose name has the same hash) is -EBADMSG: the caller
 *   drops the entry and fetches the chunk from the store. A flipped byte
 *   in a piece nobody reads stays until one does: no wrong byte is ever
 *   served. The name in the header is what makes a hash collision
 *   harmless, and what the scan at open rebuilds the index from; entries
 *   of another format version fail the magic there and are removed.
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

#define DCF_MAGIC "SHDCENT2"
/* Heads up to this size are built on the stack (a 1 MiB chunk's of a
 * table name: 36 + 36 + 256 bytes). */
#define DCF_HEAD_STACK 1024

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

/* Pieces of a payload of len bytes. */
static uint32_t obj_dcache_pieces(uint32_t len)
{
	return (len + OBJ_DCACHE_PIECE - 1) / OBJ_DCACHE_PIECE;
}

/* Bytes before the payload: header, name, piece table. */
static size_t obj_dcache_head_size(size_t n, uint32_t len)
{
	return OBJ_DCACHE_HDR + n + 4 * (size_t)obj_dcache_pieces(len);
}

uint64_t obj_dcache_file_charge(size_t name_len, uint32_t len)
{
	uint64_t sz = obj_dcache_head_size(name_len, len) + (uint64_t)len;
	return (sz + 4095) & ~(uint64_t)4095;
}

/* The checksum of a head: bytes 0..31, then the name and the table. */
static uint32_t obj_dcache_head_crc(const uint8_t *head, size_t n, uint32_t np)
{
	uint32_t crc = util_crc32c(0, head, 32);
	return util_crc32c(crc, head + OBJ_DCACHE_HDR, n + 4 * (size_t)np);
}

/* The head of an entry (name, chunk, k, payload): header, name and piece
 * table, obj_dcache_head_size(n, len) bytes, into head. */
static void obj_dcache_file_encode(uint8_t *head, const char *name, size_t n, uint32_t chunk,
				   uint32_t k, const uint8_t *data, uint32_t len)
{
	uint8_t *tab = head + OBJ_DCACHE_HDR + n;
	uint32_t np = obj_dcache_pieces(len);

	memcpy(head, DCF_MAGIC, 8);
	util_put_be16(head + 8, (uint16_t)n);
	util_put_be16(head + 10, 0);
	util_put_be32(head + 12, chunk);
	util_put_be64(head + 16, k);
	util_put_be32(head + 24, len);
	util_put_be32(head + 28, OBJ_DCACHE_PIECE);
	memcpy(head + OBJ_DCACHE_HDR, name, n);
	for (uint32_t i = 0; i < np; i++) {
		uint32_t at = i * OBJ_DCACHE_PIECE;
		uint32_t plen = len - at < OBJ_DCACHE_PIECE ? len - at : OBJ_DCACHE_PIECE;
		util_put_be32(tab + 4 * i, util_crc32c(0, data + at, plen));
	}
	util_put_be32(head + 32, obj_dcache_head_crc(head, n, np));
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
	uint8_t stack[DCF_HEAD_STACK], *head;
	char path[4096], tmp[4096];
	size_t n = strlen(name), hs;
	int fd = -1, rc, saved;

	if (n == 0 || n >= OBJ_NAME_MAX || len > chunk)
		return -EINVAL;
	rc = obj_dcache_file_path(path, sizeof(path), dir, h, k);
	if (rc)
		return rc;
	if (snprintf(tmp, sizeof(tmp), "%s/tmp/e.XXXXXX", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	hs = obj_dcache_head_size(n, len);
	if (!(head = hs <= sizeof(stack) ? stack : malloc(hs)))
		return -ENOMEM;
	fd = mkstemp(tmp);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	obj_dcache_file_encode(head, name, n, chunk, k, data, len);
	rc = obj_dcache_file_write_all(fd, head, hs);
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
	rc = 0;
	goto out;
fail:
	saved = rc;
	unlink(tmp);
	rc = saved;
out:
	if (head != stack)
		free(head);
	return rc;
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

/* Check the fixed header (OBJ_DCACHE_HDR bytes at head) against chunk:
 * *n, *k and *len from it. The checksum waits for the name and the piece
 * table (obj_dcache_head_ok). Returns 0 or -EBADMSG. */
static int obj_dcache_file_check_fixed(const uint8_t *head, uint32_t chunk, size_t *n,
				       uint32_t *k, uint32_t *len)
{
	uint64_t kk;

	if (memcmp(head, DCF_MAGIC, 8) != 0 || util_get_be16(head + 10) != 0 ||
	    util_get_be32(head + 12) != chunk || util_get_be32(head + 28) != OBJ_DCACHE_PIECE)
		return -EBADMSG;
	*n = util_get_be16(head + 8);
	kk = util_get_be64(head + 16);
	*len = util_get_be32(head + 24);
	if (*n == 0 || *n >= OBJ_NAME_MAX || kk > UINT32_MAX || *len > chunk)
		return -EBADMSG;
	*k = (uint32_t)kk;
	return 0;
}

/* Whether a whole head (n name bytes, a payload of len) has its checksum. */
static int obj_dcache_head_ok(const uint8_t *head, size_t n, uint32_t len)
{
	return obj_dcache_head_crc(head, n, obj_dcache_pieces(len)) == util_get_be32(head + 32);
}

int obj_dcache_file_read(const char *dir, const char *name, uint64_t h, uint32_t chunk,
			 uint32_t k, uint32_t len, uint32_t lo, uint32_t hi, void *buf,
			 uint32_t *at)
{
	uint8_t stack[DCF_HEAD_STACK], *head = stack;
	char path[4096];
	size_t n = strlen(name), hs, fn;
	struct stat st;
	uint32_t fk, flen, p0, p1, end;
	int fd, rc;

	*at = 0;
	if (n == 0 || n >= OBJ_NAME_MAX || lo > hi || hi > len)
		return -EINVAL;
	rc = obj_dcache_file_path(path, sizeof(path), dir, h, k);
	if (rc)
		return rc;
	hs = obj_dcache_head_size(n, len);
	if (hs > sizeof(stack) && !(head = malloc(hs)))
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out_free;
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size != hs + (uint64_t)len) {
		rc = -EBADMSG;
		goto out;
	}
	rc = obj_dcache_file_pread_all(fd, head, hs, 0);
	if (!rc)
		rc = obj_dcache_file_check_fixed(head, chunk, &fn, &fk, &flen);
	if (!rc && (fn != n || fk != k || flen != len ||
		    memcmp(head + OBJ_DCACHE_HDR, name, n) != 0 || !obj_dcache_head_ok(head, n, len)))
		rc = -EBADMSG;
	if (rc || lo == hi)
		goto out;
	/* The pieces [p0, p1) hold [lo, hi): read and check just those. */
	p0 = lo / OBJ_DCACHE_PIECE;
	p1 = (hi + OBJ_DCACHE_PIECE - 1) / OBJ_DCACHE_PIECE;
	*at = p0 * OBJ_DCACHE_PIECE;
	end = p1 * OBJ_DCACHE_PIECE < len ? p1 * OBJ_DCACHE_PIECE : len;
	rc = obj_dcache_file_pread_all(fd, buf, end - *at, (off_t)(hs + *at));
	for (uint32_t i = p0; !rc && i < p1; i++) {
		uint32_t from = i * OBJ_DCACHE_PIECE - *at;
		uint32_t plen = end - *at - from < OBJ_DCACHE_PIECE ? end - *at - from
								    : OBJ_DCACHE_PIECE;
		if (util_crc32c(0, (uint8_t *)buf + from, plen) !=
		    util_get_be32(head + OBJ_DCACHE_HDR + n + 4 * (size_t)i))
			rc = -EBADMSG;
	}
out:
	close(fd);
out_free:
	if (head != stack)
		free(head);
	return rc;
}

int obj_dcache_file_header(const char *path, uint32_t chunk, char **name, uint32_t *k,
			   uint32_t *len)
{
	uint8_t *head = NULL;
	struct stat st;
	char *nm = NULL;
	size_t n, hs;
	int fd, rc;

	*name = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (!(head = malloc(OBJ_DCACHE_HDR))) {
		rc = -ENOMEM;
		goto out;
	}
	rc = obj_dcache_file_pread_all(fd, head, OBJ_DCACHE_HDR, 0);
	if (!rc)
		rc = obj_dcache_file_check_fixed(head, chunk, &n, k, len);
	if (rc)
		goto out;
	hs = obj_dcache_head_size(n, *len);
	if ((uint64_t)st.st_size != hs + (uint64_t)*len) {
		rc = -EBADMSG;
		goto out;
	}
	{
		uint8_t *grown = realloc(head, hs);
		if (!grown) {
			rc = -ENOMEM;
			goto out;
		}
		head = grown;
	}
	rc = obj_dcache_file_pread_all(fd, head + OBJ_DCACHE_HDR, hs - OBJ_DCACHE_HDR,
				       OBJ_DCACHE_HDR);
	if (rc)
		goto out;
	if (!obj_dcache_head_ok(head, n, *len) || memchr(head + OBJ_DCACHE_HDR, 0, n)) {
		rc = -EBADMSG;
		goto out;
	}
	if (!(nm = malloc(n + 1))) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(nm, head + OBJ_DCACHE_HDR, n);
	nm[n] = '\0';
out:
	close(fd);
	free(head);
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
