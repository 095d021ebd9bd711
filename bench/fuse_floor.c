/*
 * fuse_floor - a null FUSE filesystem: the cost of the kernel's FUSE round
 * trips alone, with nothing behind them.
 *
 *   fuse_floor [-d] [-o no_writeback] [-o no_default_permissions] MOUNTPOINT
 *
 * runs in the foreground; the -o options show what the kernel's work costs
 * without the writeback cache or its permission checks.
 *
 * It answers lookup, getattr, setattr, mkdir, create, open, write, flush,
 * release, getxattr and the directory calls from an in-memory table, keeps
 * no file data (reads return zeros) and is mounted exactly as shalefs mounts
 * itself: low-level API, default_permissions, the writeback cache, the
 * multi-threaded loop with 16 threads, 1 MiB writes. So bench/fsbench's
 * small-file workloads (create, write4k) on it time the floor that any
 * filesystem built this way pays on this kernel and machine, and shalefs's
 * figure over this one says how much of its time is its own
 * (docs/benchmarks.md).
 *
 * Not a filesystem: no unlink, rename or data; memory grows with the files
 * created (a benchmark of 10,000 or 20,000 files). Single purpose, so it
 * takes no part in the build of shalefs.
 */
#define FUSE_USE_VERSION 312
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct ff_node {
	struct stat st;
	struct ff_node *hnext;          /* in the (parent, name) table */
	uint64_t parent;
	char *name;
};

#define FF_BUCKETS (1u << 18)

static pthread_mutex_t ff_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ff_node **ff_nodes;       /* by inode number */
static size_t ff_n, ff_cap;
static struct ff_node *ff_names[FF_BUCKETS];
static int ff_writeback = 1;

static size_t ff_hash(uint64_t parent, const char *name)
{
	uint64_t h = parent * 0x9e3779b97f4a7c15ull;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 0x100000001b3ull;
	return (size_t)(h % FF_BUCKETS);
}

/* ff_mu held. */
static struct ff_node *ff_get(fuse_ino_t ino)
{
	return ino < ff_n ? ff_nodes[ino] : NULL;
}

/* ff_mu held. */
static struct ff_node *ff_find(uint64_t parent, const char *name)
{
	struct ff_node *n;

	for (n = ff_names[ff_hash(parent, name)]; n; n = n->hnext)
		if (n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

/* ff_mu held. */
static struct ff_node *ff_add(uint64_t parent, const char *name, mode_t mode,
			      const struct fuse_ctx *ctx)
{
	struct ff_node *n = calloc(1, sizeof(*n));
	struct timespec now;

	if (!n)
		return NULL;
	if (ff_n == ff_cap) {
		size_t cap = ff_cap ? 2 * ff_cap : 1024;
		struct ff_node **t = realloc(ff_nodes, cap * sizeof(*t));

		if (!t) {
			free(n);
			return NULL;
		}
		ff_nodes = t;
		ff_cap = cap;
	}
	n->name = strdup(name);
	if (!n->name) {
		free(n);
		return NULL;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	n->st.st_ino = ff_n;
	n->st.st_mode = mode;
	n->st.st_nlink = S_ISDIR(mode) ? 2 : 1;
	n->st.st_uid = ctx ? ctx->uid : 0;
	n->st.st_gid = ctx ? ctx->gid : 0;
	n->st.st_atim = n->st.st_mtim = n->st.st_ctim = now;
	n->parent = parent;
	ff_nodes[ff_n++] = n;
	if (parent) {
		size_t h = ff_hash(parent, name);

		n->hnext = ff_names[h];
		ff_names[h] = n;
	}
	return n;
}

static void ff_entry(fuse_req_t req, const struct ff_node *n)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = n->st.st_ino;
	e.generation = 1;
	e.attr = n->st;
	e.attr_timeout = 1.0;
	e.entry_timeout = 1.0;
	fuse_reply_entry(req, &e);
}

static void ff_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	if (ff_writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	conn->max_write = 1 << 20;
	conn->want &= ~(unsigned)(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
				  FUSE_CAP_SPLICE_MOVE);
}

static void ff_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ff_node *n;

	pthread_mutex_lock(&ff_mu);
	n = ff_find(parent, name);
	if (n)
		ff_entry(req, n);
	else
		fuse_reply_err(req, ENOENT);    /* as shalefs: no negative entries */
	pthread_mutex_unlock(&ff_mu);
}

static void ff_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ff_node *n;

	(void)fi;
	pthread_mutex_lock(&ff_mu);
	n = ff_get(ino);
	if (n)
		fuse_reply_attr(req, &n->st, 1.0);
	else
		fuse_reply_err(req, ENOENT);
	pthread_mutex_unlock(&ff_mu);
}

static void ff_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int set,
		       struct fuse_file_info *fi)
{
	struct ff_node *n;

	(void)fi;
	pthread_mutex_lock(&ff_mu);
	n = ff_get(ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
	} else {
		if (set & FUSE_SET_ATTR_MODE)
			n->st.st_mode = (n->st.st_mode & S_IFMT) | (attr->st_mode & 07777);
		if (set & FUSE_SET_ATTR_SIZE)
			n->st.st_size = attr->st_size;
		if (set & FUSE_SET_ATTR_MTIME)
			n->st.st_mtim = attr->st_mtim;
		fuse_reply_attr(req, &n->st, 1.0);
	}
	pthread_mutex_unlock(&ff_mu);
}

static void ff_make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		    struct fuse_file_info *fi)
{
	struct ff_node *n;

	pthread_mutex_lock(&ff_mu);
	if (!ff_get(parent)) {
		fuse_reply_err(req, ENOENT);
	} else if (ff_find(parent, name)) {
		fuse_reply_err(req, EEXIST);
	} else if (!(n = ff_add(parent, name, mode, fuse_req_ctx(req)))) {
		fuse_reply_err(req, ENOMEM);
	} else if (fi) {
		struct fuse_entry_param e;

		memset(&e, 0, sizeof(e));
		e.ino = n->st.st_ino;
		e.generation = 1;
		e.attr = n->st;
		e.attr_timeout = e.entry_timeout = 1.0;
		fuse_reply_create(req, &e, fi);
	} else {
		ff_entry(req, n);
	}
	pthread_mutex_unlock(&ff_mu);
}

static void ff_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	ff_make(req, parent, name, S_IFDIR | (mode & 07777), NULL);
}

static void ff_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	ff_make(req, parent, name, S_IFREG | (mode & 07777), fi);
}

static void ff_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_open(req, fi);
}

static void ff_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	static const char zeros[1 << 17];
	struct ff_node *n;
	off_t end;

	(void)fi;
	pthread_mutex_lock(&ff_mu);
	n = ff_get(ino);
	end = n ? n->st.st_size : 0;
	pthread_mutex_unlock(&ff_mu);
	if (off >= end)
		size = 0;
	else if ((off_t)size > end - off)
		size = (size_t)(end - off);
	if (size > sizeof(zeros))
		size = sizeof(zeros);
	fuse_reply_buf(req, zeros, size);
}

static void ff_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	struct ff_node *n;

	(void)buf;
	(void)fi;
	pthread_mutex_lock(&ff_mu);
	n = ff_get(ino);
	if (n && off + (off_t)size > n->st.st_size)
		n->st.st_size = off + (off_t)size;
	pthread_mutex_unlock(&ff_mu);
	fuse_reply_write(req, size);
}

static void ff_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void ff_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	ff_ok(req, ino, fi);
}

static void ff_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino;
	(void)name;
	(void)size;
	fuse_reply_err(req, ENODATA);
}

static void ff_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	/* Only the children the benchmark needs to walk: all of them, one
	 * linear pass per call (fine for a floor measurement of writes). */
	char *buf = malloc(size);
	size_t used = 0;
	struct stat st;

	(void)fi;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&ff_mu);
	for (size_t i = (size_t)off + 1; i < ff_n; i++) {
		struct ff_node *n = ff_nodes[i];
		size_t len;

		if (n->parent != ino)
			continue;
		st.st_ino = n->st.st_ino;
		st.st_mode = n->st.st_mode;
		len = fuse_add_direntry(req, buf + used, size - used, n->name, &st, (off_t)i);
		if (len > size - used)
			break;
		used += len;
	}
	pthread_mutex_unlock(&ff_mu);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static const struct fuse_lowlevel_ops ff_ops = {
	.init = ff_init,
	.lookup = ff_lookup,
	.getattr = ff_getattr,
	.setattr = ff_setattr,
	.mkdir = ff_mkdir,
	.create = ff_create,
	.open = ff_open,
	.read = ff_read,
	.write = ff_write,
	/* no .flush: shalefs has none (fs_ops.c), so neither has its floor */
	.release = ff_ok,
	.fsync = ff_fsync,
	.opendir = ff_open,
	.readdir = ff_readdir,
	.releasedir = ff_ok,
	.getxattr = ff_getxattr,
};

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *lc;
	struct fuse_session *se;
	const char *mnt = NULL;
	int rc = 1, debug = 0, perms = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc &&
		    strcmp(argv[i + 1], "no_writeback") == 0)
			ff_writeback = 0, i++;
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc &&
			 strcmp(argv[i + 1], "no_default_permissions") == 0)
			perms = 0, i++;
		else if (strcmp(argv[i], "-d") == 0)
			debug = 1;
		else if (!mnt)
			mnt = argv[i];
	}
	if (!mnt) {
		fprintf(stderr, "usage: fuse_floor [-d] [-o no_writeback] [-o no_default_permissions] "
				"MOUNTPOINT\n");
		return 2;
	}
	if (fuse_opt_add_arg(&args, argv[0]) || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, perms ? "default_permissions,fsname=fuse_floor"
					  : "fsname=fuse_floor") ||
	    (debug && fuse_opt_add_arg(&args, "-d")))
		return 1;
	if (!ff_add(0, "", 0, NULL) || !ff_add(0, "", S_IFDIR | 0755, NULL))
		return 1;      /* inode 0 unused; 1 is the root */
	se = fuse_session_new(&args, &ff_ops, sizeof(ff_ops), NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) == 0 && fuse_session_mount(se, mnt) == 0) {
		lc = fuse_loop_cfg_create();
		if (lc) {
			fuse_loop_cfg_set_clone_fd(lc, 0);
			fuse_loop_cfg_set_max_threads(lc, 16);
			rc = fuse_session_loop_mt(se, lc) ? 1 : 0;
			fuse_loop_cfg_destroy(lc);
		}
		fuse_session_unmount(se);
		fuse_remove_signal_handlers(se);
	}
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return rc;
}
