/*
 * fs_fsck.c - check a filesystem's key graph (docs/fs-format.md).
 *
 * One ordered pass over every key of the store (reading every key also
 * reads, and so checksums, every SST block and WAL record the engine
 * holds), collecting per-inode facts in a hash table, then the checks:
 *   - the superblock exists, has this format, and every inode number is
 *     below its limit;
 *   - every entry (D) names an existing inode of the type it records, in a
 *     directory, with a matching cookie key (R), and every R key has its D;
 *     cookies are below the directory's next cookie;
 *   - nlink of a file = the number of entries naming it; a directory is
 *     named exactly once (root: never), its nlink = 2 + subdirectories and
 *     its parent pointer is the directory naming it;
 *   - no chunk (C) at or beyond the size, no chunk longer than 64 KiB, and
 *     st_blocks = the chunks' 512-byte units;
 *   - chunks and xattrs belong to existing inodes, and no inode with
 *     xattrs carries FS_HINT_NO_XATTRS;
 *   - no orphan (O) key and no unreferenced inode: after a clean unmount
 *     every unlinked inode has been reclaimed.
 * LIVE STORES
 *   The engine's read-only view is a prefix of the writer's write order,
 *   and every fs operation is one atomic batch, so a store that a writer
 *   is changing still reads as a consistent graph. What differs is that
 *   a live writer has files unlinked while open: their orphan keys are
 *   counted (open_orphans), not reported, when conf->live is set. The
 *   caller decides that from the store's lease (kv_lease_read).
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fsck_ino {
	uint64_t ino;              /* 0 = free slot */
	int has_inode, orphan, has_xattr;
	struct fs_attr a;
	uint64_t refs;             /* D entries naming it */
	uint64_t subdirs;          /* D entries in it naming directories */
	uint64_t named_in;         /* the directory naming it (last seen) */
	uint64_t chunk_blocks;
	uint64_t chunk_end;        /* highest byte past a stored chunk */
	uint64_t max_cookie;       /* highest cookie of an entry in it */
	uint8_t named_type;        /* type recorded by an entry naming it */
	int type_mismatch;
};

struct fsck_dent {
	uint64_t parent, cookie;   /* parent 0 = free */
	uint64_t ino;
	int matched;
};

struct fsck {
	const struct fs_fsck_conf *conf;
	unsigned long problems;
	struct fsck_ino *inos;
	size_t ino_cap, ino_n;
	struct fsck_dent *dents;
	size_t dent_cap, dent_n;
};

static void fsck_problem(struct fsck *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fsck_problem(struct fsck *f, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	f->problems++;
	if (f->problems > FS_FSCK_MAX_REPORTED || !f->conf->problem)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	f->conf->problem(f->conf->arg, text);
}

static uint64_t fsck_hash(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static int fsck_grow_inos(struct fsck *f)
{
	size_t nc = f->ino_cap ? f->ino_cap * 2 : 1024;
	struct fsck_ino *n = calloc(nc, sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < f->ino_cap; i++) {
		if (!f->inos[i].ino)
			continue;
		size_t h = fsck_hash(f->inos[i].ino) & (nc - 1);
		while (n[h].ino)
			h = (h + 1) & (nc - 1);
		n[h] = f->inos[i];
	}
	free(f->inos);
	f->inos = n;
	f->ino_cap = nc;
	return 0;
}

/* The record of ino, added if missing. The caller made room first
 * (fsck_room), so no pointer into the table moves here. */
static struct fsck_ino *fsck_ino(struct fsck *f, uint64_t ino)
{
	size_t h;

	if (ino == 0 || (f->ino_n + 1) * 2 > f->ino_cap)
		return NULL;
	h = fsck_hash(ino) & (f->ino_cap - 1);
	while (f->inos[h].ino && f->inos[h].ino != ino)
		h = (h + 1) & (f->ino_cap - 1);
	if (!f->inos[h].ino) {
		f->inos[h].ino = ino;
		f->ino_n++;
	}
	return &f->inos[h];
}

/* Room for two more inode records. */
static int fsck_room(struct fsck *f)
{
	if ((f->ino_n + 2) * 2 > f->ino_cap)
		return fsck_grow_inos(f);
	return 0;
}

static int fsck_grow_dents(struct fsck *f)
{
	size_t nc = f->dent_cap ? f->dent_cap * 2 : 1024;
	struct fsck_dent *n = calloc(nc, sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < f->dent_cap; i++) {
		if (!f->dents[i].parent)
			continue;
		size_t h = fsck_hash(f->dents[i].parent ^ fsck_hash(f->dents[i].cookie)) & (nc - 1);
		while (n[h].parent)
			h = (h + 1) & (nc - 1);
		n[h] = f->dents[i];
	}
	free(f->dents);
	f->dents = n;
	f->dent_cap = nc;
	return 0;
}

/* Find (create = 1: or add) the entry record of (parent, cookie). */
static struct fsck_dent *fsck_dent(struct fsck *f, uint64_t parent, uint64_t cookie, int create)
{
	size_t h;

	if (create && (f->dent_n + 1) * 2 > f->dent_cap && fsck_grow_dents(f))
		return NULL;
	if (!f->dent_cap)
		return NULL;
	h = fsck_hash(parent ^ fsck_hash(cookie)) & (f->dent_cap - 1);
	while (f->dents[h].parent &&
	       (f->dents[h].parent != parent || f->dents[h].cookie != cookie))
		h = (h + 1) & (f->dent_cap - 1);
	if (!f->dents[h].parent) {
		if (!create)
			return NULL;
		f->dents[h].parent = parent;
		f->dents[h].cookie = cookie;
		f->dent_n++;
	}
	return &f->dents[h];
}

int fs_fsck(struct kv_db *db, const struct fs_fsck_conf *conf, struct fs_fsck_summary *sum)
{
	struct fsck f = { .conf = conf };
	struct kv_iter_user *it = NULL;
	struct fs_super s = { 0 };
	int have_super = 0, rc;
	uint64_t n_keys = 0;

	memset(sum, 0, sizeof(*sum));
	rc = kv_iter_create(db, NULL, NULL, 0, NULL, 0, &it);
	if (rc)
		return rc;
	for (; kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = kv_iter_key(it, &kl);
		const uint8_t *v = kv_iter_value(it, &vl);
		uint64_t ino = kl >= 9 ? util_get_be64(k + 1) : 0;
		struct fsck_ino *ip;

		n_keys++;
		if (fsck_room(&f))
			goto nomem;
		switch (k[0]) {
		case FS_K_SUPER:
			if (kl != 1 || fs_super_decode(&s, v, vl) != 0) {
				fsck_problem(&f, "malformed superblock key (%zu bytes)", vl);
				break;
			}
			have_super = 1;
			break;
		case FS_K_CHUNK:
			if (kl != 17) {
				fsck_problem(&f, "malformed chunk key (%zu bytes)", kl);
				break;
			}
			ip = fsck_ino(&f, ino);
			if (!ip) {
				fsck_problem(&f, "key of inode 0 (prefix %c)", k[0]);
				break;
			}
			if (vl > FS_CHUNK_SIZE || vl == 0)
				fsck_problem(&f, "inode %" PRIu64 " chunk %" PRIu64 ": %zu bytes", ino,
					     util_get_be64(k + 9), vl);
			ip->chunk_blocks += (vl + 511) / 512;
			{
				uint64_t end = util_get_be64(k + 9) * FS_CHUNK_SIZE + vl;
				if (end > ip->chunk_end)
					ip->chunk_end = end;
			}
			break;
		case FS_K_INODE:
			if (kl != 9) {
				fsck_problem(&f, "malformed inode key (%zu bytes)", kl);
				break;
			}
			ip = fsck_ino(&f, ino);
			if (!ip) {
				fsck_problem(&f, "key of inode 0 (prefix %c)", k[0]);
				break;
			}
			if (fs_attr_decode(&ip->a, NULL, NULL, v, vl, ino) != 0) {
				fsck_problem(&f, "inode %" PRIu64 ": malformed record", ino);
				break;
			}
			ip->has_inode = 1;
			if (S_ISLNK(ip->a.mode) && vl == 108)
				fsck_problem(&f, "symlink %" PRIu64 " has no target", ino);
			break;
		case FS_K_DENT: {
			struct fs_dent d;
			struct fsck_ino *pp, *cp;
			struct fsck_dent *e;
			if (kl < 10 || kl > 9 + FS_NAME_MAX || fs_dent_decode(&d, v, vl) != 0) {
				fsck_problem(&f, "malformed entry key in directory %" PRIu64, ino);
				break;
			}
			pp = fsck_ino(&f, ino);
			cp = fsck_ino(&f, d.ino);
			if (!pp || !cp) {
				fsck_problem(&f, "directory %" PRIu64 ": entry names inode 0", ino);
				break;
			}
			cp->refs++;
			cp->named_in = ino;
			if (cp->named_type && cp->named_type != d.type)
				cp->type_mismatch = 1;
			cp->named_type = d.type;
			if (d.type == (S_IFDIR >> 12))
				pp->subdirs++;
			if (d.cookie > pp->max_cookie)
				pp->max_cookie = d.cookie;
			e = fsck_dent(&f, ino, d.cookie, 1);
			if (!e)
				goto nomem;
			if (e->ino)
				fsck_problem(&f, "directory %" PRIu64 ": cookie %" PRIu64
					     " used by two entries", ino, d.cookie);
			e->ino = d.ino;
			break;
		}
		case FS_K_ORPHAN:
			ip = fsck_ino(&f, ino);
			if (!ip) {
				fsck_problem(&f, "key of inode 0 (prefix %c)", k[0]);
				break;
			}
			ip->orphan = 1;
			break;
		case FS_K_COOKIE: {
			struct fsck_dent *e;
			if (kl != 17 || vl < 10) {
				fsck_problem(&f, "malformed cookie key in directory %" PRIu64, ino);
				break;
			}
			e = fsck_dent(&f, ino, util_get_be64(k + 9), 0);
			if (!e || e->ino != util_get_be64(v))
				fsck_problem(&f, "directory %" PRIu64 ": cookie %" PRIu64 " ('%.*s') "
					     "has no matching entry", ino, util_get_be64(k + 9),
					     (int)(vl - 9), (const char *)v + 9);
			else
				e->matched = 1;
			break;
		}
		case FS_K_XATTR:
			ip = fsck_ino(&f, ino);
			if (!ip) {
				fsck_problem(&f, "key of inode 0 (prefix %c)", k[0]);
				break;
			}
			ip->has_xattr = 1;
			break;
		default:
			fsck_problem(&f, "unknown key prefix 0x%02x", k[0]);
		}
	}
	rc = kv_iter_status(it);
	kv_iter_free(it);
	it = NULL;
	if (rc)
		goto fail;                      /* the engine logged the object */
	if (!have_super) {
		if (n_keys == 0) {
			rc = -ENOENT;
			goto fail;
		}
		fsck_problem(&f, "no superblock");
	} else if (s.format != FS_FORMAT_VERSION) {
		UTIL_ERROR(FS_LOG, "fsck: format version %u; this fsck checks format %u", s.format,
			   FS_FORMAT_VERSION);
		rc = -EPROTO;
		goto fail;
	}

	for (size_t i = 0; i < f.dent_cap; i++)
		if (f.dents[i].parent && !f.dents[i].matched)
			fsck_problem(&f, "directory %" PRIu64 ": entry with cookie %" PRIu64
				     " (inode %" PRIu64 ") has no cookie key", f.dents[i].parent,
				     f.dents[i].cookie, f.dents[i].ino);
	for (size_t i = 0; i < f.ino_cap; i++) {
		struct fsck_ino *ip = &f.inos[i];
		uint64_t ino = ip->ino;
		if (!ino)
			continue;
		if (!ip->has_inode) {
			if (ip->refs)
				fsck_problem(&f, "inode %" PRIu64 ": named by %" PRIu64 " entr%s but "
					     "has no inode record", ino, ip->refs,
					     ip->refs == 1 ? "y" : "ies");
			if (ip->chunk_blocks)
				fsck_problem(&f, "inode %" PRIu64 ": chunks without an inode", ino);
			if (ip->has_xattr)
				fsck_problem(&f, "inode %" PRIu64 ": xattrs without an inode", ino);
			if (ip->orphan)
				fsck_problem(&f, "inode %" PRIu64 ": orphan key without an inode", ino);
			if (ip->subdirs || ip->max_cookie)
				fsck_problem(&f, "directory %" PRIu64 " has entries but no inode", ino);
			continue;
		}
		if (have_super && ino >= s.ino_limit)
			fsck_problem(&f, "inode %" PRIu64 " is at or above the allocation limit %"
				     PRIu64, ino, s.ino_limit);
		if (ip->has_xattr && (ip->a.hints & FS_HINT_NO_XATTRS))
			fsck_problem(&f, "inode %" PRIu64 ": has xattrs but its record says it has "
				     "none", ino);
		if (ip->orphan && conf->live)
			sum->open_orphans++;
		else if (ip->orphan)
			fsck_problem(&f, "inode %" PRIu64 ": orphan (unlinked while open) not reclaimed "
				     "(nlink %u)", ino, ip->a.nlink);
		if (ip->refs && ip->named_type != (uint8_t)((ip->a.mode & S_IFMT) >> 12))
			fsck_problem(&f, "inode %" PRIu64 ": entries record type %u, inode has mode "
				     "0%o", ino, ip->named_type, ip->a.mode);
		if (ip->type_mismatch)
			fsck_problem(&f, "inode %" PRIu64 ": entries disagree on its type", ino);
		if (S_ISDIR(ip->a.mode)) {
			if (ino == FS_ROOT_INO) {
				if (ip->refs)
					fsck_problem(&f, "the root is named by an entry");
			} else if (ip->refs != 1 && !ip->orphan) {
				fsck_problem(&f, "directory %" PRIu64 ": named by %" PRIu64
					     " entries, expected 1", ino, ip->refs);
			} else if (ip->refs == 1 && ip->a.parent != ip->named_in) {
				fsck_problem(&f, "directory %" PRIu64 ": parent pointer %" PRIu64
					     ", but directory %" PRIu64 " names it", ino, ip->a.parent,
					     ip->named_in);
			}
			if (ip->a.nlink != 2 + ip->subdirs && !(ip->orphan && ip->a.nlink == 0))
				fsck_problem(&f, "directory %" PRIu64 ": nlink %u, expected %" PRIu64
					     " (2 + subdirectories)", ino, ip->a.nlink, 2 + ip->subdirs);
			if (ip->max_cookie && ip->max_cookie >= ip->a.next_cookie)
				fsck_problem(&f, "directory %" PRIu64 ": cookie %" PRIu64 " not below "
					     "its next cookie %" PRIu64, ino, ip->max_cookie,
					     ip->a.next_cookie);
		} else {
			if (ip->subdirs || ip->max_cookie)
				fsck_problem(&f, "inode %" PRIu64 " is not a directory but has entries",
					     ino);
			if (ip->a.nlink != ip->refs)
				fsck_problem(&f, "inode %" PRIu64 ": nlink %u, named by %" PRIu64
					     " entr%s", ino, ip->a.nlink, ip->refs,
					     ip->refs == 1 ? "y" : "ies");
		}
		if (ip->refs == 0 && ino != FS_ROOT_INO && !ip->orphan)
			fsck_problem(&f, "inode %" PRIu64 " is named by no entry and is not an orphan "
				     "(leaked)", ino);
		if (ip->chunk_blocks && !S_ISREG(ip->a.mode))
			fsck_problem(&f, "inode %" PRIu64 ": chunks on a non-regular file", ino);
		if (ip->chunk_end > ip->a.size)
			fsck_problem(&f, "inode %" PRIu64 ": chunk data up to byte %" PRIu64
				     " beyond the size %" PRIu64, ino, ip->chunk_end, ip->a.size);
		if (S_ISREG(ip->a.mode) && ip->chunk_blocks != ip->a.blocks)
			fsck_problem(&f, "inode %" PRIu64 ": st_blocks %" PRIu64 ", chunks hold %"
				     PRIu64, ino, ip->a.blocks, ip->chunk_blocks);
	}
	if (fsck_room(&f))
		goto nomem;
	if (!fsck_ino(&f, FS_ROOT_INO)->has_inode)
		fsck_problem(&f, "no root inode");
	sum->keys = n_keys;
	sum->inodes = f.ino_n;
	sum->entries = f.dent_n;
	sum->problems = f.problems;
	rc = 0;
	goto out;
nomem:
	rc = -ENOMEM;
fail:
out:
	kv_iter_free(it);
	free(f.inos);
	free(f.dents);
	return rc;
}
