/*
 * fs_orphan.c - unlinked inodes: the O keys, reclaiming an inode's keys,
 * and the release of open handles (the last release of an unlinked file
 * reclaims it).
 *
 * ORPHANS
 *   When nlink reaches 0 the same batch writes O<ino>. If no handle is open
 *   the inode's keys are deleted at once (fs_orphan_reclaim_keys); otherwise
 *   at the last release. fs_start reclaims every O key left by a crash
 *   (fs_orphan_reclaim_all).
 *
 * Reclaiming deletes the C (chunks), X (xattrs), I and O keys of the
 * inode, in that order, so a crash part-way leaves the O key and the next
 * mount finishes the job. Every function here is idempotent.
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Delete every key of (prefix, ino) in batches of at most 4096. */
static int fs_orphan_delete_range(struct fs *fs, char prefix, uint64_t ino,
				  uint64_t *blocks_freed)
{
	struct fs_key lo, hi;
	struct kv_iter_user *it = NULL;
	struct kv_batch *b = NULL;
	int rc;

	fs_key_ino_start(&lo, prefix, ino);
	fs_key_ino_end(&hi, prefix, ino);
	rc = kv_batch_create(&b);
	if (rc)
		return rc;
	for (;;) {
		rc = kv_iter_create(fs->db, NULL, lo.b, lo.len, hi.b, hi.len, &it);
		if (rc)
			goto out;
		while (kv_iter_valid(it) && kv_batch_count(b) < 4096) {
			size_t kl, vl = kv_iter_value_len(it);   /* no data read */
			const void *key = kv_iter_key(it, &kl);
			if (blocks_freed)
				*blocks_freed += (vl + 511) / 512;
			rc = kv_batch_delete(b, key, kl);
			if (rc)
				goto out;
			kv_iter_next(it);
		}
		rc = kv_iter_status(it);
		kv_iter_free(it);
		it = NULL;
		if (rc)
			goto out;
		if (kv_batch_count(b) == 0)
			break;
		rc = fs_write_batch(fs, b);
		if (rc)
			goto out;
		kv_batch_clear(b);
	}
out:
	kv_iter_free(it);
	kv_batch_free(b);
	return rc;
}

/*
 * The chunk keys of a regular file of the given size. Every stored chunk
 * lies below the size (fs_data.c never stores a byte at or past it; fsck
 * checks), so deleting the key of each index below ceil(size / chunk)
 * removes them all without reading one: the iterate-and-delete of
 * fs_orphan_delete_range loads every block of the file, which on s3:// is
 * one GET per 64 KiB (an unlink of a 1 GiB file blocked for minutes). Past
 * FS_BLIND_DELETE_MAX indices (a 64 GiB file, ~30 MB of tombstones) a
 * sparse file's tombstones would cost more than reading what exists, so
 * such files are iterated.
 */
static int fs_orphan_delete_chunks_blind(struct fs *fs, uint64_t ino, uint64_t size)
{
	uint64_t end = (size + FS_CHUNK_SIZE - 1) / FS_CHUNK_SIZE;
	struct kv_batch *b = NULL;
	int rc;

	rc = kv_batch_create(&b);
	for (uint64_t first = 0; !rc && first < end; first += 4096) {
		uint64_t last = end - first > 4096 ? first + 4096 : end;
		kv_batch_clear(b);
		rc = fs_data_delete_chunks(b, ino, first, last);
		if (!rc)
			rc = fs_write_batch(fs, b);
	}
	kv_batch_free(b);
	return rc;
}

/* What reclaiming ino has to delete: *size and *is_reg from a (the table
 * object's attributes) or, when a is NULL (orphans of an earlier run), from
 * the stored record. *known = 0 when neither is available. */
static void fs_orphan_shape(struct fs *fs, uint64_t ino, const struct fs_attr *a,
			     int *known, int *is_reg, uint64_t *size)
{
	struct fs_attr rec;
	struct fs_key k;
	void *val = NULL;
	size_t len = 0;

	*known = 0;
	if (!a) {
		fs_key_inode(&k, ino);
		if (kv_get(fs->db, NULL, k.b, k.len, &val, &len))
			return;
		int rc = fs_attr_decode(&rec, NULL, NULL, val, len, ino);
		free(val);
		if (rc)
			return;
		a = &rec;
	}
	*known = 1;
	*is_reg = S_ISREG(a->mode);
	*size = a->size;
}

int fs_orphan_reclaim_keys(struct fs *fs, uint64_t ino, const struct fs_attr *a)
{
	struct kv_batch *b = NULL;
	struct fs_key k;
	uint64_t size = 0;
	int known, is_reg = 0, rc;

	fs_orphan_shape(fs, ino, a, &known, &is_reg, &size);
	if (known && is_reg && size / FS_CHUNK_SIZE < FS_BLIND_DELETE_MAX)
		rc = fs_orphan_delete_chunks_blind(fs, ino, size);
	else if (known && !is_reg)
		rc = 0;        /* only regular files have chunks (symlinks are inline) */
	else
		rc = fs_orphan_delete_range(fs, FS_K_CHUNK, ino, NULL);
	if (!rc)
		rc = fs_orphan_delete_range(fs, FS_K_XATTR, ino, NULL);
	if (!rc)
		rc = kv_batch_create(&b);
	if (rc)
		goto out;
	fs_key_inode(&k, ino);
	rc = kv_batch_delete(b, k.b, k.len);
	fs_key_orphan(&k, ino);
	if (!rc)
		rc = kv_batch_delete(b, k.b, k.len);
	if (!rc)
		rc = fs_write_batch(fs, b);
out:
	kv_batch_free(b);
	if (rc)
		UTIL_ERROR(FS_LOG, "inode %" PRIu64 ": reclaiming the unlinked inode failed: %s "
			   "(its O key stays; the next mount retries)", ino, kv_strerror(rc));
	else
		atomic_fetch_add(&fs->n_orphans_reclaimed, 1);
	return rc;
}

int fs_orphan_maybe_reclaim_locked(struct fs *fs, struct fs_inode *ip)
{
	int rc;

	if (ip->gone || ip->a.nlink > 0 || ip->nopen > 0)
		return 0;
	fs_inode_drop_chunks_locked(fs, ip);
	ip->attr_dirty = 0;
	atomic_store(&ip->needs_flush, 0);
	rc = fs_orphan_reclaim_keys(fs, ip->ino, &ip->a);
	if (rc == 0) {
		ip->gone = 1;
		atomic_fetch_sub(&fs->live_inodes, 1);
		if (S_ISREG(ip->a.mode))
			fs_space_shrink(fs, ip->a.size);
	}
	return rc;
}

int fs_orphan_release_locked(struct fs *fs, struct fs_inode *ip)
{
	int rc = 0;

	assert(ip->nopen > 0);
	if (ip->a.nlink > 0 && !ip->gone)
		rc = fs_inode_flush_locked(fs, ip, 0);
	ip->nopen--;
	if (ip->nopen == 0 && ip->a.nlink == 0)
		rc = fs_orphan_maybe_reclaim_locked(fs, ip);
	return rc;
}

int fs_orphan_reclaim_all(struct fs *fs)
{
	struct fs_key lo, hi;
	struct kv_iter_user *it = NULL;
	uint64_t *inos = NULL;
	size_t n = 0, cap = 0;
	int rc;

	lo.b[0] = FS_K_ORPHAN;
	lo.len = 1;
	hi.b[0] = FS_K_ORPHAN + 1;
	hi.len = 1;
	rc = kv_iter_create(fs->db, NULL, lo.b, lo.len, hi.b, hi.len, &it);
	if (rc)
		return rc;
	for (; kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl;
		const uint8_t *key = kv_iter_key(it, &kl);
		if (kl != 9)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			uint64_t *t = realloc(inos, nc * sizeof(*t));
			if (!t) {
				rc = -ENOMEM;
				goto out;
			}
			inos = t;
			cap = nc;
		}
		inos[n++] = util_get_be64(key + 1);
	}
	rc = kv_iter_status(it);
	kv_iter_free(it);
	it = NULL;
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		rc = fs_orphan_reclaim_keys(fs, inos[i], NULL);
		if (rc)
			goto out;
	}
	if (n)
		UTIL_INFO(FS_LOG, "reclaimed %zu unlinked inode(s) left open by an earlier run", n);
out:
	kv_iter_free(it);
	free(inos);
	return rc;
}
