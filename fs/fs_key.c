/*
 * fs_key.c - the filesystem's keys and the records stored under them.
 *
 * Every integer in a key is big-endian so that the keys of one inode (its
 * chunks, its xattrs) and of one directory (its entries, its cookies) sort
 * together and an iterator over [prefix+ino, prefix+ino+1) visits exactly
 * them. docs/fs-format.md is the reference; the encoders below follow it.
 *
 * INODE RECORD (value of I<ino:8>), integers big-endian:
 *   u8  record version (1)      u8 hints (FS_HINT_*)  u16 reserved
 *   u32 mode  u32 uid  u32 gid  u32 nlink  u32 flags
 *   u64 size  u64 rdev  u64 blocks (512-byte units held in C keys)
 *   4 x (i64 sec, u32 nsec): atime, mtime, ctime, btime
 *   u64 parent (directories; root: itself)  u64 next readdir cookie
 *   then, for symlinks, the target bytes (the rest of the value)
 *
 * DIRECTORY ENTRY (value of D<parent:8><name>): u64 ino, u8 type
 * (mode >> 12), u64 cookie. COOKIE (value of R<parent:8><cookie:8>): u64
 * ino, u8 type, the name bytes.
 *
 * SUPERBLOCK (value of S): "SHALEFS1" magic, u32 format, u32 chunk size,
 * 16-byte uuid, u64 inode-number limit, u64 creation time (ns).
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FS_ATTR_FIXED_LEN (4 + 5 * 4 + 3 * 8 + 4 * 12 + 2 * 8)
#define FS_ATTR_VERSION 1
static const uint8_t fs_super_magic[8] = { 'S', 'H', 'A', 'L', 'E', 'F', 'S', '1' };

static void fs_key_pfx_ino(struct fs_key *k, char prefix, uint64_t ino)
{
	k->b[0] = (uint8_t)prefix;
	util_put_be64(k->b + 1, ino);
	k->len = 9;
}

void fs_key_super(struct fs_key *k)
{
	k->b[0] = FS_K_SUPER;
	k->len = 1;
}

void fs_key_inode(struct fs_key *k, uint64_t ino)
{
	fs_key_pfx_ino(k, FS_K_INODE, ino);
}

void fs_key_orphan(struct fs_key *k, uint64_t ino)
{
	fs_key_pfx_ino(k, FS_K_ORPHAN, ino);
}

/* prefix, inode, then the name's bytes (dentry and xattr keys). */
static void fs_key_pfx_ino_name(struct fs_key *k, char prefix, uint64_t ino, const char *name,
				size_t nlen)
{
	assert(nlen <= FS_XATTR_NAME_MAX);
	fs_key_pfx_ino(k, prefix, ino);
	memcpy(k->b + 9, name, nlen);
	k->len = 9 + nlen;
}

void fs_key_dent(struct fs_key *k, uint64_t parent, const char *name, size_t nlen)
{
	fs_key_pfx_ino_name(k, FS_K_DENT, parent, name, nlen);
}

void fs_key_cookie(struct fs_key *k, uint64_t parent, uint64_t cookie)
{
	fs_key_pfx_ino(k, FS_K_COOKIE, parent);
	util_put_be64(k->b + 9, cookie);
	k->len = 17;
}

void fs_key_chunk(struct fs_key *k, uint64_t ino, uint64_t idx)
{
	fs_key_pfx_ino(k, FS_K_CHUNK, ino);
	util_put_be64(k->b + 9, idx);
	k->len = 17;
}

void fs_key_xattr(struct fs_key *k, uint64_t ino, const char *name, size_t nlen)
{
	fs_key_pfx_ino_name(k, FS_K_XATTR, ino, name, nlen);
}

void fs_key_ino_start(struct fs_key *k, char prefix, uint64_t ino)
{
	fs_key_pfx_ino(k, prefix, ino);
}

void fs_key_ino_end(struct fs_key *k, char prefix, uint64_t ino)
{
	if (ino == UINT64_MAX) {
		k->b[0] = (uint8_t)(prefix + 1);
		k->len = 1;
		return;
	}
	fs_key_pfx_ino(k, prefix, ino + 1);
}

static uint8_t *fs_put_time(uint8_t *p, const struct fs_time *t)
{
	util_put_be64(p, (uint64_t)t->sec);
	util_put_be32(p + 8, t->nsec);
	return p + 12;
}

static const uint8_t *fs_get_time(const uint8_t *p, struct fs_time *t)
{
	t->sec = (int64_t)util_get_be64(p);
	t->nsec = util_get_be32(p + 8);
	return p + 12;
}

int fs_attr_encode(const struct fs_attr *a, const char *link, size_t link_len, void **out,
		   size_t *out_len)
{
	size_t n = FS_ATTR_FIXED_LEN + link_len;
	uint8_t *v = malloc(n), *p;

	*out = NULL;
	if (!v)
		return -ENOMEM;
	p = v;
	p[0] = FS_ATTR_VERSION;
	p[1] = a->hints;
	p[2] = p[3] = 0;
	p += 4;
	util_put_be32(p, a->mode); p += 4;
	util_put_be32(p, a->uid); p += 4;
	util_put_be32(p, a->gid); p += 4;
	util_put_be32(p, a->nlink); p += 4;
	util_put_be32(p, a->flags); p += 4;
	util_put_be64(p, a->size); p += 8;
	util_put_be64(p, a->rdev); p += 8;
	util_put_be64(p, a->blocks); p += 8;
	p = fs_put_time(p, &a->atime);
	p = fs_put_time(p, &a->mtime);
	p = fs_put_time(p, &a->ctime);
	p = fs_put_time(p, &a->btime);
	util_put_be64(p, a->parent); p += 8;
	util_put_be64(p, a->next_cookie); p += 8;
	assert((size_t)(p - v) == FS_ATTR_FIXED_LEN);
	if (link_len)
		memcpy(p, link, link_len);
	*out = v;
	*out_len = n;
	return 0;
}

int fs_attr_decode(struct fs_attr *a, char **link, size_t *link_len, const void *val,
		   size_t len, uint64_t ino)
{
	const uint8_t *p = val;
	size_t ll;

	if (link)
		*link = NULL;
	if (link_len)
		*link_len = 0;
	if (len < FS_ATTR_FIXED_LEN || p[0] != FS_ATTR_VERSION) {
		UTIL_ERROR(FS_LOG, "inode %" PRIu64 ": malformed record (%zu bytes, version %u)",
			   ino, len, len ? p[0] : 0);
		return -EIO;
	}
	a->hints = p[1];
	p += 4;
	a->mode = util_get_be32(p); p += 4;
	a->uid = util_get_be32(p); p += 4;
	a->gid = util_get_be32(p); p += 4;
	a->nlink = util_get_be32(p); p += 4;
	a->flags = util_get_be32(p); p += 4;
	a->size = util_get_be64(p); p += 8;
	a->rdev = util_get_be64(p); p += 8;
	a->blocks = util_get_be64(p); p += 8;
	p = fs_get_time(p, &a->atime);
	p = fs_get_time(p, &a->mtime);
	p = fs_get_time(p, &a->ctime);
	p = fs_get_time(p, &a->btime);
	a->parent = util_get_be64(p); p += 8;
	a->next_cookie = util_get_be64(p); p += 8;
	ll = len - FS_ATTR_FIXED_LEN;
	if (ll && link) {
		*link = malloc(ll + 1);
		if (!*link)
			return -ENOMEM;
		memcpy(*link, p, ll);
		(*link)[ll] = '\0';
		*link_len = ll;
	}
	return 0;
}

void fs_dent_encode(uint8_t out[FS_DENT_LEN], const struct fs_dent *d)
{
	util_put_be64(out, d->ino);
	out[8] = d->type;
	util_put_be64(out + 9, d->cookie);
}

int fs_dent_decode(struct fs_dent *d, const void *val, size_t len)
{
	const uint8_t *p = val;
	if (len != FS_DENT_LEN)
		return -EIO;
	d->ino = util_get_be64(p);
	d->type = p[8];
	d->cookie = util_get_be64(p + 9);
	return 0;
}

void fs_cookie_encode(uint8_t *out, uint64_t ino, uint8_t type, const char *name, size_t nlen)
{
	util_put_be64(out, ino);
	out[8] = type;
	memcpy(out + 9, name, nlen);
}

void fs_super_encode(uint8_t out[FS_SUPER_LEN], const struct fs_super *s)
{
	memcpy(out, fs_super_magic, 8);
	util_put_be32(out + 8, s->format);
	util_put_be32(out + 12, s->chunk_size);
	memcpy(out + 16, s->uuid, 16);
	util_put_be64(out + 32, s->ino_limit);
	util_put_be64(out + 40, s->created_ns);
}

int fs_super_decode(struct fs_super *s, const void *val, size_t len)
{
	const uint8_t *p = val;
	if (len < FS_SUPER_LEN || memcmp(p, fs_super_magic, 8) != 0) {
		UTIL_ERROR(FS_LOG, "the store's superblock is not a ShaleFS superblock (%zu bytes)",
			   len);
		return -EPROTO;
	}
	s->format = util_get_be32(p + 8);
	s->chunk_size = util_get_be32(p + 12);
	memcpy(s->uuid, p + 16, 16);
	s->ino_limit = util_get_be64(p + 32);
	s->created_ns = util_get_be64(p + 40);
	return 0;
}
