/*
 * fs_data.c - file data: 64 KiB chunks, reads, writes into the per-inode
 * write buffer, the flusher thread, truncate and hole punching.
 *
 * CHUNKS
 *   Byte b of a file lives in chunk b / 64 KiB, key C<ino><idx>. A chunk's
 *   value holds the chunk's bytes up to the file size (never beyond: the
 *   invariant "no stored byte at or past size" is what makes a later
 *   extension read zeros). A missing chunk, or the part of a chunk past its
 *   value, reads as zeros: sparse files cost nothing.
 *
 * WRITE BUFFER
 *   A write copies into whole-chunk images kept on the inode (fs_chunk);
 *   a partially written chunk that exists in the engine is read first
 *   (read-modify-write). Reads see the images. Images go to the engine,
 *   together with the inode record, in one batch (fs_inode_flush_locked,
 *   fs_inode.c, which owns the images' memory):
 *     - when a write reaches a chunk's last byte (that chunk is complete);
 *     - at flush (close), release, fsync, setattr(size), punch;
 *     - from the flusher thread every flush_interval_ms / 2;
 *     - when the buffer passes write_buffer_bytes: writers then wait for
 *       the flusher (fs_wb_wait_room), so memory stays bounded by the cap
 *       plus one write per worker thread.
 *   The engine's WAL flush period is the other half of flush_interval_ms,
 *   so a write is durable within flush_interval_ms without fsync.
 *
 * st_blocks counts 512-byte units of the chunk values held in the engine;
 * each image remembers the stored length of its chunk (stored_len).
 *
 * SPACE
 *   fs->live_bytes is the sum of the sizes of regular files. Every change
 *   of a file's size goes through fs_data_write (growth) or
 *   fs_data_truncate_locked (either way); both account it before the size
 *   changes, so with size= (conf.size_limit) a write, truncate or
 *   fallocate that would pass the limit fails whole with -ENOSPC and
 *   nothing is buffered for it. A grow is reserved with one compare-and-
 *   swap, so concurrent writers of different files cannot pass the limit
 *   together. Reclaiming an unlinked file gives its size back
 *   (fs_orphan.c).
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int fs_space_grow(struct fs *fs, uint64_t delta)
{
	uint_fast64_t cur = atomic_load(&fs->live_bytes);
	uint64_t limit = fs->conf.size_limit;

	do {
		if (limit && (delta > limit || cur > limit - delta))
			return -ENOSPC;
	} while (!atomic_compare_exchange_weak(&fs->live_bytes, &cur, cur + delta));
	return 0;
}

void fs_space_shrink(struct fs *fs, uint64_t delta)
{
	uint_fast64_t cur = atomic_load(&fs->live_bytes);

	/* Never below 0: a mount that started with a miscount (a record
	 * changed by a writer elsewhere) must not wrap around. */
	while (!atomic_compare_exchange_weak(&fs->live_bytes, &cur, cur > delta ? cur - delta : 0))
		;
}

int fs_space_scan(struct fs *fs)
{
	struct kv_iter_user *it = NULL;
	uint8_t lo = FS_K_INODE, hi = FS_K_INODE + 1;
	uint64_t inodes = 0, bytes = 0;
	int rc;

	/* The I keys sort together: one pass over their blocks only. */
	rc = kv_iter_create(fs->db, NULL, &lo, 1, &hi, 1, &it);
	if (rc)
		return rc;
	for (; kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *key = kv_iter_key(it, &kl);
		const void *val = kv_iter_value(it, &vl);
		struct fs_attr a;

		if (kl != 9)
			continue;
		inodes++;
		if (fs_attr_decode(&a, NULL, NULL, val, vl, util_get_be64(key + 1)) == 0 &&
		    S_ISREG(a.mode))
			bytes += a.size;
	}
	rc = kv_iter_status(it);
	kv_iter_free(it);
	if (rc && rc != KV_ECORRUPT)
		return rc;
	/* Corrupt: the counts so far, the best there is (the caller says so). */
	atomic_store(&fs->live_inodes, inodes);
	atomic_store(&fs->live_bytes, bytes);
	return rc;
}
static struct fs_chunk *fs_chunk_find(struct fs_inode *ip, uint64_t idx)
{
	for (struct fs_chunk *c = ip->chunks; c; c = c->next)
		if (c->idx == idx)
			return c;
	return NULL;
}
int fs_wb_wait_room(struct fs *fs)
{
	int waited = 0, rc = 0;

	CHECK_RETURN(pthread_mutex_lock(&fs->wb_mu));
	fs->wb_waiters++;
	while (fs->wb_bytes >= fs->conf.write_buffer_bytes && fs->flusher_running &&
	       !fs->flusher_stop) {
		/* The buffer drains only into a store that takes writes. */
		if ((rc = atomic_load(&fs->wb_store_err)) != 0)
			break;
		fs->flusher_kick = 1;
		CHECK_RETURN(pthread_cond_broadcast(&fs->wb_cv));
		struct timespec ts = util_wall_after_ns(50 * 1000000ull);
		(void)pthread_cond_timedwait(&fs->wb_cv, &fs->wb_mu, &ts);
		waited = 1;
	}
	fs->wb_waiters--;
	CHECK_RETURN(pthread_mutex_unlock(&fs->wb_mu));
	if (waited)
		atomic_fetch_add(&fs->n_write_waits, 1);
	return rc;
}

/* A failed engine read of chunk idx: logged, and its errno for FUSE. */
static int fs_chunk_read_err(uint64_t ino, uint64_t idx, int rc)
{
	UTIL_ERROR(FS_LOG, "inode %" PRIu64 " chunk %" PRIu64 ": read failed: %s", ino, idx,
		   kv_strerror(rc));
	return rc == -ENOMEM ? rc : -EIO;
}

/* A stored chunk longer than a chunk: logged; -EIO. */
static int fs_chunk_too_long(uint64_t ino, uint64_t idx, size_t len)
{
	UTIL_ERROR(FS_LOG, "inode %" PRIu64 " chunk %" PRIu64 ": %zu bytes, more than a chunk",
		   ino, idx, len);
	return -EIO;
}

/* Read chunk idx from the engine (at snap, or the newest) into dst
 * (FS_CHUNK_SIZE, zero-filled past the value). *stored gets the value
 * length. */
static int fs_chunk_load_at(struct fs *fs, const struct kv_snapshot *snap, uint64_t ino,
			    uint64_t idx, uint8_t *dst, uint32_t *stored)
{
	struct fs_key k;
	void *val = NULL;
	size_t len = 0;
	int rc;

	fs_key_chunk(&k, ino, idx);
	rc = kv_get(fs->db, snap, k.b, k.len, &val, &len);
	if (rc == -ENOENT) {
		memset(dst, 0, FS_CHUNK_SIZE);
		*stored = 0;
		return 0;
	}
	if (rc)
		return fs_chunk_read_err(ino, idx, rc);
	if (len > FS_CHUNK_SIZE) {
		free(val);
		return fs_chunk_too_long(ino, idx, len);
	}
	memcpy(dst, val, len);
	memset(dst + len, 0, FS_CHUNK_SIZE - len);
	*stored = (uint32_t)len;
	free(val);
	return 0;
}

/* Read bytes [in, in + n) of chunk idx (at snap) into dst, zeros past the
 * stored value: only those bytes are copied out of the engine. */
static int fs_chunk_read_part(struct fs *fs, const struct kv_snapshot *snap, uint64_t ino,
			      uint64_t idx, size_t in, char *dst, size_t n)
{
	struct fs_key k;
	size_t len = 0, got = 0;
	int rc;

	fs_key_chunk(&k, ino, idx);
	rc = kv_get_part(fs->db, snap, k.b, k.len, in, dst, n, &len);
	if (rc && rc != -ENOENT)
		return fs_chunk_read_err(ino, idx, rc);
	if (len > FS_CHUNK_SIZE)
		return fs_chunk_too_long(ino, idx, len);
	if (!rc && len > in)
		got = len - in < n ? len - in : n;
	memset(dst + got, 0, n - got);
	return 0;
}

/*
 * Reads run with ip->mu released during engine I/O, so that reads of one
 * file proceed in parallel (the kernel's read-ahead sends several at once)
 * and no lock is held across a store GET. Under the lock: the size is
 * read, buffered chunk images are copied, and an engine snapshot is taken.
 * Every byte not in the buffer at that moment is in the engine at or below
 * the snapshot (buffers reach the engine under ip->mu), so the unlocked
 * part reads exactly the file as it was when the lock was held: a write or
 * truncate that runs meanwhile is simply ordered after this read.
 */
/* The piece of [off, off + size) that starts `done` bytes in and stays in
 * one chunk: its chunk index, its offset in the chunk; returns its length. */
static size_t fs_piece(uint64_t off, size_t size, size_t done, uint64_t *idx, size_t *in)
{
	*idx = (off + done) / FS_CHUNK_SIZE;
	*in = (size_t)((off + done) % FS_CHUNK_SIZE);
	return FS_CHUNK_SIZE - *in < size - done ? FS_CHUNK_SIZE - *in : size - done;
}

ssize_t fs_data_read_unlock(struct fs *fs, struct fs_inode *ip, uint64_t off, size_t size,
			    char *buf)
{
	struct kv_snapshot *snap = NULL;
	uint64_t ino = ip->ino, first, idx;
	uint8_t small[64], *had;       /* had[i]: chunk first + i was buffered */
	size_t done, n, in, nchunks, missing = 0;
	int rc = 0;

	if (off >= ip->a.size || size == 0) {
		fs_inode_unlock(ip);
		return 0;
	}
	if (size > ip->a.size - off)
		size = (size_t)(ip->a.size - off);
	first = off / FS_CHUNK_SIZE;
	nchunks = (size_t)((off + size - 1) / FS_CHUNK_SIZE - first + 1);
	had = nchunks <= sizeof(small) ? small : malloc(nchunks);
	if (!had) {
		fs_inode_unlock(ip);
		return -ENOMEM;
	}
	for (done = 0; done < size; done += n) {
		struct fs_chunk *c;
		n = fs_piece(off, size, done, &idx, &in);
		c = fs_chunk_find(ip, idx);
		had[idx - first] = c != NULL;
		if (c)
			memcpy(buf + done, c->data + in, n);
		else
			missing++;
	}
	if (missing)
		rc = kv_snapshot_create(fs->db, &snap);
	fs_inode_unlock(ip);

	for (done = 0; !rc && missing && done < size; done += n) {
		n = fs_piece(off, size, done, &idx, &in);
		if (!had[idx - first])
			rc = fs_chunk_read_part(fs, snap, ino, idx, in, buf + done, n);
	}
	if (snap)
		kv_snapshot_release(fs->db, snap);
	if (had != small)
		free(had);
	if (rc)
		return rc;
	atomic_fetch_add(&fs->bytes_read, size);
	return (ssize_t)size;
}

/* fs_data_write without the space accounting: size checked by the caller. */
static ssize_t fs_data_write_buf(struct fs *fs, struct fs_inode *ip, uint64_t off,
				 const char *buf, size_t size)
{
	size_t done = 0;
	int any_complete = 0, rc;

	while (done < size) {
		uint64_t idx;
		size_t in, n = fs_piece(off, size, done, &idx, &in);
		struct fs_chunk *c;

		c = fs_chunk_find(ip, idx);
		if (!c) {
			c = malloc(sizeof(*c) + FS_CHUNK_SIZE);
			if (!c)
				return done ? (ssize_t)done : -ENOMEM;
			c->idx = idx;
			c->complete = 0;
			c->stored_len = 0;
			if (idx * FS_CHUNK_SIZE < ip->a.size) {
				/* It may exist: read it (for the bytes around the
				 * write, and for its stored length). */
				rc = fs_chunk_load_at(fs, NULL, ip->ino, idx, c->data,
						      &c->stored_len);
				if (rc) {
					free(c);
					return done ? (ssize_t)done : rc;
				}
			} else {
				memset(c->data, 0, FS_CHUNK_SIZE);
			}
			c->next = ip->chunks;
			ip->chunks = c;
			ip->n_chunks++;
			fs_wb_account(fs, (long)FS_CHUNK_SIZE);
		}
		memcpy(c->data + in, buf + done, n);
		if (in + n == FS_CHUNK_SIZE) {
			c->complete = 1;
			any_complete = 1;
		}
		done += n;
		if (off + done > ip->a.size)
			ip->a.size = off + done;
	}
	ip->a.mtime = ip->a.ctime = fs_time_now();
	ip->attr_dirty = 1;
	fs_inode_mark_dirty(fs, ip);
	atomic_fetch_add(&fs->bytes_written, done);
	ip->since_fsync += done;
	if (any_complete) {
		rc = fs_inode_flush_locked(fs, ip, 1);
		if (rc)
			return rc;
	}
	return (ssize_t)done;
}

ssize_t fs_data_write(struct fs *fs, struct fs_inode *ip, uint64_t off, const char *buf,
		      size_t size)
{
	uint64_t old = ip->a.size, grow = 0;
	ssize_t n;
	int rc;

	if (size == 0)
		return 0;
	if (off >= FS_MAX_FILE_SIZE || size > FS_MAX_FILE_SIZE - off)
		return -EFBIG;
	if (off + size > old) {
		grow = off + size - old;
		rc = fs_space_grow(fs, grow);
		if (rc)
			return rc;
	}
	n = fs_data_write_buf(fs, ip, off, buf, size);
	/* A short or failed write grew the file by less than reserved. */
	if (grow && ip->a.size - old < grow)
		fs_space_shrink(fs, grow - (ip->a.size - old));
	return n;
}
/*
 * Zero [from, to) of the stored chunks of ip within chunk range, adding the
 * changes to b: whole chunks are deleted, partial ones rewritten (read,
 * zero, trimmed to `size`). Buffered images must have been flushed.
 * *blocks is adjusted.
 */
static int fs_data_zero_range(struct fs *fs, struct fs_inode *ip, uint64_t from, uint64_t to,
			      uint64_t size, struct kv_batch *b, uint64_t *blocks)
{
	struct fs_key lo, hi, k;
	struct kv_iter_user *it = NULL;
	uint8_t *tmp = NULL;
	uint64_t first = from / FS_CHUNK_SIZE;
	uint64_t last = (to + FS_CHUNK_SIZE - 1) / FS_CHUNK_SIZE;   /* exclusive */
	int rc;

	if (from >= to)
		return 0;
	fs_key_chunk(&lo, ip->ino, first);
	if (last == 0 || to == UINT64_MAX)
		fs_key_ino_end(&hi, FS_K_CHUNK, ip->ino);
	else
		fs_key_chunk(&hi, ip->ino, last);
	rc = kv_iter_create(fs->db, NULL, lo.b, lo.len, hi.b, hi.len, &it);
	if (rc)
		return rc;
	for (; kv_iter_valid(it); kv_iter_next(it)) {
		size_t kl, vl = kv_iter_value_len(it);   /* the bytes only where kept */
		const uint8_t *key = kv_iter_key(it, &kl);
		uint64_t idx, cs, ce, zs, ze, keep, stored, newlen;

		if (kl != 17)
			continue;
		idx = util_get_be64(key + 9);
		cs = idx * FS_CHUNK_SIZE;
		ce = cs + FS_CHUNK_SIZE;
		zs = from > cs ? from : cs;
		ze = to < ce ? to : ce;
		keep = size > cs ? size - cs : 0;   /* bytes of this chunk below size */
		if (keep > FS_CHUNK_SIZE)
			keep = FS_CHUNK_SIZE;
		stored = vl > FS_CHUNK_SIZE ? FS_CHUNK_SIZE : vl;
		newlen = keep < stored ? keep : stored;
		fs_key_chunk(&k, ip->ino, idx);
		if (zs >= cs + newlen && newlen == stored)
			continue;                   /* nothing stored in the range */
		if (zs == cs && ze >= cs + newlen) {
			rc = kv_batch_delete(b, k.b, k.len);
			*blocks -= fs_blocks_of(vl);
		} else {
			if (!tmp) {
				tmp = malloc(FS_CHUNK_SIZE);
				if (!tmp) {
					rc = -ENOMEM;
					goto out;
				}
			}
			size_t got;
			const uint8_t *val = kv_iter_value(it, &got);
			if (!val)
				break;                  /* kv_iter_status says why */
			memcpy(tmp, val, (size_t)newlen);
			if (zs < cs + newlen)
				memset(tmp + (zs - cs), 0,
				       (size_t)((ze < cs + newlen ? ze : cs + newlen) - zs));
			rc = kv_batch_put(b, k.b, k.len, tmp, (size_t)newlen);
			*blocks = *blocks - fs_blocks_of(vl) + fs_blocks_of(newlen);
		}
		if (rc)
			goto out;
	}
	rc = kv_iter_status(it);
	if (rc) {
		UTIL_ERROR(FS_LOG, "inode %" PRIu64 ": reading its chunks failed: %s", ip->ino,
			   kv_strerror(rc));
		rc = rc == -ENOMEM ? rc : -EIO;
	}
out:
	kv_iter_free(it);
	free(tmp);
	return rc;
}

int fs_data_delete_chunks(struct kv_batch *b, uint64_t ino, uint64_t first, uint64_t end)
{
	struct fs_key k;
	int rc = 0;

	for (uint64_t idx = first; !rc && idx < end; idx++) {
		fs_key_chunk(&k, ino, idx);
		rc = kv_batch_delete(b, k.b, k.len);
	}
	return rc;
}

int fs_data_truncate_locked(struct fs *fs, struct fs_inode *ip, uint64_t size,
			    struct kv_batch *extra)
{
	struct kv_batch *b = NULL;
	uint64_t blocks, old = ip->a.size;
	struct fs_attr saved = ip->a;
	int rc;

	if (size > FS_MAX_FILE_SIZE)
		return -EFBIG;
	rc = fs_inode_flush_locked(fs, ip, 0);
	if (rc)
		return rc;
	if (size > old) {
		rc = fs_space_grow(fs, size - old);
		if (rc)
			return rc;
	}
	b = extra;
	if (!b) {
		rc = kv_batch_create(&b);
		if (rc)
			goto out;
	}
	blocks = ip->a.blocks;
	if (size == 0 && old / FS_CHUNK_SIZE < FS_BLIND_DELETE_MAX) {
		/* O_TRUNC and friends: every chunk goes, so nothing need be
		 * read (on s3:// a read is a GET per 64 KiB block). */
		rc = fs_data_delete_chunks(b, ip->ino, 0, (old + FS_CHUNK_SIZE - 1) / FS_CHUNK_SIZE);
		if (rc)
			goto out;
		blocks = 0;
	} else if (size < old) {
		rc = fs_data_zero_range(fs, ip, size, UINT64_MAX, size, b, &blocks);
		if (rc)
			goto out;
	}
	ip->a.size = size;
	ip->a.blocks = blocks;
	rc = fs_inode_put(ip, b);
	if (!rc)
		rc = fs_write_batch(fs, b);
	if (rc)
		ip->a = saved;
	else
		ip->attr_dirty = 0;
out:
	if (rc && size > old)
		fs_space_shrink(fs, size - old);
	else if (!rc && size < old)
		fs_space_shrink(fs, old - size);
	if (!extra)
		kv_batch_free(b);
	return rc;
}

int fs_data_punch_locked(struct fs *fs, struct fs_inode *ip, uint64_t off, uint64_t len)
{
	struct kv_batch *b = NULL;
	uint64_t blocks, end;
	int rc;

	if (off >= ip->a.size || len == 0)
		return 0;
	end = len > ip->a.size - off ? ip->a.size : off + len;
	rc = fs_inode_flush_locked(fs, ip, 0);
	if (rc)
		return rc;
	rc = kv_batch_create(&b);
	if (rc)
		return rc;
	blocks = ip->a.blocks;
	rc = fs_data_zero_range(fs, ip, off, end, ip->a.size, b, &blocks);
	if (rc)
		goto out;
	{
		struct fs_attr saved = ip->a;
		ip->a.blocks = blocks;
		ip->a.mtime = ip->a.ctime = fs_time_now();
		rc = fs_inode_put(ip, b);
		if (!rc)
			rc = fs_write_batch(fs, b);
		if (rc)
			ip->a = saved;
	}
out:
	kv_batch_free(b);
	return rc;
}

int fs_data_flush_all(struct fs *fs)
{
	struct fs_inode **v = NULL;
	size_t n = 0;
	int rc, first = 0;

	rc = fs_inode_collect_dirty(fs, &v, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		CHECK_RETURN(pthread_mutex_lock(&v[i]->mu));
		rc = fs_inode_flush_locked(fs, v[i], 0);
		CHECK_RETURN(pthread_mutex_unlock(&v[i]->mu));
		if (rc && !first)
			first = rc;
		fs_inode_unpin(fs, v[i]);
	}
	free(v);
	return first;
}

/* The flusher: every flush_interval_ms / 2, or when a writer waits for room. */
static void *fs_flusher_main(void *arg)
{
	struct fs *fs = arg;
	unsigned period_ms = fs->conf.flush_interval_ms / 2;

	if (period_ms == 0)
		period_ms = 1;
	util_thread_setup("fs-flush", 0);
	CHECK_RETURN(pthread_mutex_lock(&fs->wb_mu));
	while (!fs->flusher_stop) {
		/* Sleep out the period unless kicked: wb_cv is also broadcast
		 * for writers waiting for room. */
		struct timespec ts = util_wall_after_ns((uint64_t)period_ms * 1000000ull);
		while (!fs->flusher_kick && !fs->flusher_stop &&
		       pthread_cond_timedwait(&fs->wb_cv, &fs->wb_mu, &ts) != ETIMEDOUT)
			;
		if (fs->flusher_stop)
			break;
		fs->flusher_kick = 0;
		CHECK_RETURN(pthread_mutex_unlock(&fs->wb_mu));
		atomic_fetch_add_explicit(&fs->n_flusher_runs, 1, memory_order_relaxed);
		(void)fs_data_flush_all(fs);
		CHECK_RETURN(pthread_mutex_lock(&fs->wb_mu));
	}
	CHECK_RETURN(pthread_mutex_unlock(&fs->wb_mu));
	return NULL;
}

int fs_flusher_start(struct fs *fs)
{
	int rc = pthread_create(&fs->flusher, NULL, fs_flusher_main, fs);
	if (rc) {
		UTIL_ERROR(FS_LOG, "cannot start the flusher thread: %s", util_strerror(rc));
		return -rc;
	}
	CHECK_RETURN(pthread_mutex_lock(&fs->wb_mu));
	fs->flusher_running = 1;
	CHECK_RETURN(pthread_mutex_unlock(&fs->wb_mu));
	return 0;
}

void fs_flusher_stop(struct fs *fs)
{
	CHECK_RETURN(pthread_mutex_lock(&fs->wb_mu));
	if (!fs->flusher_running) {
		CHECK_RETURN(pthread_mutex_unlock(&fs->wb_mu));
		return;
	}
	fs->flusher_stop = 1;
	CHECK_RETURN(pthread_cond_broadcast(&fs->wb_cv));
	CHECK_RETURN(pthread_mutex_unlock(&fs->wb_mu));
	CHECK_RETURN(pthread_join(fs->flusher, NULL));
	CHECK_RETURN(pthread_mutex_lock(&fs->wb_mu));
	fs->flusher_running = 0;
	CHECK_RETURN(pthread_mutex_unlock(&fs->wb_mu));
}
