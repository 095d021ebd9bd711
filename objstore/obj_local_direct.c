/*
 * obj_local_direct.c - how the file:// backend writes a large object's
 * bytes: with O_DIRECT, through a small pool of aligned bounce buffers.
 *
 * WHY
 *   Every object we write is immutable and fsync'd at once, and the engine
 *   reads it back through its own block cache, so the kernel's page cache
 *   adds nothing on the write path but a copy into freshly allocated page
 *   cache pages (copy_folio_from_iter_atomic): on the VMs this runs on,
 *   the daemon's biggest cost in a sequential write; docs/objstore.md has
 *   the figures. RocksDB's use_direct_io_for_flush_and_compaction makes the
 *   same choice for its table files.
 *
 * HOW
 *   The file is opened normally and O_DIRECT is switched on with fcntl;
 *   O_DIRECT needs the buffer, the file offset and the length aligned to
 *   the device's logical block, so each OBJ_DIRECT_BUF-sized piece is
 *   copied into an aligned bounce buffer (a copy within our own hot
 *   memory, far cheaper than the page cache's). The tail under
 *   OBJ_DIRECT_ALIGN is written through the page cache once O_DIRECT is
 *   switched off again (rather than padded with zeros and cut back with
 *   ftruncate, one more metadata change per object). The caller fsyncs as
 *   for any write.
 *
 *   A filesystem that refuses O_DIRECT (EINVAL from fcntl or from a write,
 *   e.g. an old tmpfs, or a device with larger blocks) gets the rest of this
 *   object written buffered, and the pool remembers it so later objects go
 *   buffered from the start. Objects under OBJ_DIRECT_MIN (manifests, small
 *   tables, the WAL objects of a quiet mount) are written buffered: their
 *   page-cache cost is small, and a direct write waits for the device.
 *
 * MEMORY
 *   At most OBJ_DIRECT_BUFS bounce buffers exist; a writer that finds none
 *   free waits for one rather than allocate more.
 */
#include "objstore/objstore_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OBJ_DIRECT_ALIGN 4096u
#define OBJ_DIRECT_BUF (1u << 20)
#define OBJ_DIRECT_BUFS 4
#define OBJ_DIRECT_MIN (128u << 10)

struct obj_direct {
	pthread_mutex_t mu;
	pthread_cond_t cv;                /* a buffer was returned */
	void *free_bufs[OBJ_DIRECT_BUFS]; /* under mu */
	int n_free;                       /* under mu */
	int n_made;                       /* under mu; <= OBJ_DIRECT_BUFS */
	atomic_int refused;               /* the filesystem said EINVAL: buffered from now on */
};

struct obj_direct *obj_direct_create(void)
{
	struct obj_direct *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	atomic_init(&d->refused, 0);
	return d;
}

void obj_direct_free(struct obj_direct *d)
{
	if (!d)
		return;
	for (int i = 0; i < d->n_free; i++)
		free(d->free_bufs[i]);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

/* A bounce buffer, or NULL (no memory: write buffered). Waits while all
 * OBJ_DIRECT_BUFS are in use. */
static void *obj_direct_take(struct obj_direct *d)
{
	void *buf = NULL;

	pthread_mutex_lock(&d->mu);
	while (d->n_free == 0 && d->n_made == OBJ_DIRECT_BUFS)
		pthread_cond_wait(&d->cv, &d->mu);
	if (d->n_free > 0) {
		buf = d->free_bufs[--d->n_free];
	} else if (posix_memalign(&buf, OBJ_DIRECT_ALIGN, OBJ_DIRECT_BUF) == 0) {
		d->n_made++;
	} else {
		buf = NULL;
	}
	pthread_mutex_unlock(&d->mu);
	return buf;
}

static void obj_direct_give(struct obj_direct *d, void *buf)
{
	pthread_mutex_lock(&d->mu);
	d->free_bufs[d->n_free++] = buf;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

/* pwrite all of [p, p+len) at off; EINTR and short writes are retried. */
static int obj_direct_pwrite_all(int fd, const uint8_t *p, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len > (1u << 30) ? (1u << 30) : len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Write len bytes of data at the start of the empty file fd. Returns 0 or
 * -errno (the file's contents are then unspecified; the caller removes it).
 */
int obj_direct_write(struct obj_direct *d, int fd, const void *data, size_t len)
{
	const uint8_t *src = data;
	size_t aligned = len & ~(size_t)(OBJ_DIRECT_ALIGN - 1);
	size_t done = 0;
	void *buf = NULL;
	int flags, direct = 0, rc = 0;

	if (len >= OBJ_DIRECT_MIN && !atomic_load(&d->refused) &&
	    (flags = fcntl(fd, F_GETFL)) >= 0) {
		if (fcntl(fd, F_SETFL, flags | O_DIRECT) == 0)
			direct = 1;
		else if (errno == EINVAL)
			atomic_store(&d->refused, 1);
	}
	if (direct && !(buf = obj_direct_take(d)))
		direct = 0;
	while (direct && done < aligned) {
		/* A multiple of OBJ_DIRECT_ALIGN, like done. */
		size_t piece = aligned - done < OBJ_DIRECT_BUF ? aligned - done : OBJ_DIRECT_BUF;
		ssize_t n;

		memcpy(buf, src + done, piece);
		n = pwrite(fd, buf, piece, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == (ssize_t)piece) {
			done += piece;
			continue;
		}
		if (n < 0 && errno != EINVAL) {
			rc = -errno;
			break;
		}
		/* Refused (EINVAL: alignment this device does not take) or a
		 * short direct write: the rest goes buffered, from done. */
		if (n < 0)
			atomic_store(&d->refused, 1);
		break;
	}
	if (buf)
		obj_direct_give(d, buf);
	/* The tail (under one block), or everything after a refusal, goes
	 * through the page cache; the caller's fsync writes it out. */
	if (rc == 0 && direct && done < len &&
	    ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_DIRECT) < 0))
		rc = -errno;
	if (rc == 0 && done < len)
		rc = obj_direct_pwrite_all(fd, src + done, len - done, (off_t)done);
	return rc;
}
