/*
 * fs_optime.c - how long each FUSE request takes: a decorator of the
 * operation table (as sshfs' cache_wrap is) whose methods read the clock,
 * call the method of fs_ops_untimed (fs_ops.c) and record the time in the
 * histogram of that operation (struct fs, op_lat). fs_fuse_ops() hands
 * this table to the session; fs_latency reads the histograms.
 *
 * WHAT IS TIMED
 *   From the handler's entry to its return, which covers the reply: every
 *   handler replies before it returns (none keeps a request for another
 *   thread). The fs pointer is taken before the call, because the request
 *   is gone once it is answered. init, destroy and the forgets are passed
 *   through untimed: they are not requests a caller waits for.
 *
 * THREADING
 *   The histograms are lock-free (util_hist); the wrappers add two clock
 *   reads and two relaxed atomic adds to a request.
 */
#include "fs/fs_int.h"

static const char *const fs_optime_names[FS_OPT_COUNT] = {
#define FS_OPTIME_NAME(op) #op,
	FS_OPTIME_OPS(FS_OPTIME_NAME)
#undef FS_OPTIME_NAME
};

/* One wrapper: params is the method's parameter list, args the call's. */
#define FS_OPTIME_WRAP(op, params, args)                                       \
	static void fs_optime__##op params                                     \
	{                                                                      \
		struct fs *fs = fs_of(req);                                    \
		uint64_t t0 = util_now_ns();                                   \
		fs_ops_untimed.op args;                                        \
		util_hist_since(&fs->op_lat[FS_OPT_##op], t0);                 \
	}

FS_OPTIME_WRAP(lookup, (fuse_req_t req, fuse_ino_t parent, const char *name), (req, parent, name))
FS_OPTIME_WRAP(getattr, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	       (req, ino, fi))
FS_OPTIME_WRAP(setattr, (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			 struct fuse_file_info *fi), (req, ino, attr, to_set, fi))
FS_OPTIME_WRAP(readlink, (fuse_req_t req, fuse_ino_t ino), (req, ino))
FS_OPTIME_WRAP(mknod, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		       dev_t rdev), (req, parent, name, mode, rdev))
FS_OPTIME_WRAP(mkdir, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode),
	       (req, parent, name, mode))
FS_OPTIME_WRAP(unlink, (fuse_req_t req, fuse_ino_t parent, const char *name), (req, parent, name))
FS_OPTIME_WRAP(rmdir, (fuse_req_t req, fuse_ino_t parent, const char *name), (req, parent, name))
FS_OPTIME_WRAP(symlink, (fuse_req_t req, const char *link, fuse_ino_t parent, const char *name),
	       (req, link, parent, name))
FS_OPTIME_WRAP(rename, (fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
			const char *newname, unsigned int flags),
	       (req, parent, name, newparent, newname, flags))
FS_OPTIME_WRAP(link, (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname),
	       (req, ino, newparent, newname))
FS_OPTIME_WRAP(open, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))
FS_OPTIME_WRAP(read, (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi), (req, ino, size, off, fi))
FS_OPTIME_WRAP(write, (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi), (req, ino, buf, size, off, fi))
FS_OPTIME_WRAP(release, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	       (req, ino, fi))
FS_OPTIME_WRAP(fsync, (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi),
	       (req, ino, datasync, fi))
FS_OPTIME_WRAP(opendir, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	       (req, ino, fi))
FS_OPTIME_WRAP(readdir, (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi), (req, ino, size, off, fi))
FS_OPTIME_WRAP(readdirplus, (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			     struct fuse_file_info *fi), (req, ino, size, off, fi))
FS_OPTIME_WRAP(releasedir, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
	       (req, ino, fi))
FS_OPTIME_WRAP(fsyncdir, (fuse_req_t req, fuse_ino_t ino, int datasync,
			  struct fuse_file_info *fi), (req, ino, datasync, fi))
FS_OPTIME_WRAP(statfs, (fuse_req_t req, fuse_ino_t ino), (req, ino))
FS_OPTIME_WRAP(setxattr, (fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			  size_t size, int flags), (req, ino, name, value, size, flags))
FS_OPTIME_WRAP(getxattr, (fuse_req_t req, fuse_ino_t ino, const char *name, size_t size),
	       (req, ino, name, size))
FS_OPTIME_WRAP(listxattr, (fuse_req_t req, fuse_ino_t ino, size_t size), (req, ino, size))
FS_OPTIME_WRAP(removexattr, (fuse_req_t req, fuse_ino_t ino, const char *name), (req, ino, name))
FS_OPTIME_WRAP(create, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			struct fuse_file_info *fi), (req, parent, name, mode, fi))
FS_OPTIME_WRAP(fallocate, (fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			   struct fuse_file_info *fi), (req, ino, mode, off, len, fi))
#undef FS_OPTIME_WRAP

/* Passed through untimed (a table initializer cannot read another table). */
static void fs_optime__init(void *userdata, struct fuse_conn_info *conn)
{
	fs_ops_untimed.init(userdata, conn);
}

static void fs_optime__destroy(void *userdata)
{
	fs_ops_untimed.destroy(userdata);
}

static void fs_optime__forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_ops_untimed.forget(req, ino, nlookup);
}

static void fs_optime__forget_multi(fuse_req_t req, size_t count,
				    struct fuse_forget_data *forgets)
{
	fs_ops_untimed.forget_multi(req, count, forgets);
}

static const struct fuse_lowlevel_ops fs_optime_ops = {
	.init = fs_optime__init,
	.destroy = fs_optime__destroy,
	.forget = fs_optime__forget,
	.forget_multi = fs_optime__forget_multi,
#define FS_OPTIME_METHOD(op) .op = fs_optime__##op,
	FS_OPTIME_OPS(FS_OPTIME_METHOD)
#undef FS_OPTIME_METHOD
};

const struct fuse_lowlevel_ops *fs_fuse_ops(void)
{
	return &fs_optime_ops;
}

void fs_latency(struct fs *fs, fs_hist_emit_fn emit, void *arg)
{
	for (int op = 0; op < FS_OPT_COUNT; op++) {
		struct util_hist_snap h = { .count = 0 };
		util_hist_read(&fs->op_lat[op], &h);
		emit(arg, fs_optime_names[op], &h);
	}
}
