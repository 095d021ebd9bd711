/*
 * fs_reply.c - the one place where the result of an operation becomes its
 * FUSE reply.
 *
 * Every FUSE handler (fs_ops.c, fs_dir.c) has one shape: decode the
 * request, call an fs_do_* function (fs_ctl_do_* for the control
 * directory) that returns 0 or a negative errno and fills out-params,
 * then end with exactly one of these. Each takes that rc: below 0 it
 * becomes fuse_reply_err, 0 sends the operation's own reply from the
 * out-params. So each handler replies exactly once, and errors become
 * positive errnos only here.
 *
 * No lock may be held across these calls: the reply may be the kernel's
 * last reference to an inode, and its forget can come at once.
 */
#include "fs/fs_int.h"

#include <errno.h>

/*
 * The engine's own codes (KV_ECORRUPT, ..., below KV_ERR_BASE) reach here
 * from paths that return an iterator's status as is; they are no errno
 * (libfuse would answer ERANGE for them, with a "bad error value" line),
 * so they become EIO - what a failing disk gives.
 */
void fs_reply_err(fuse_req_t req, int rc)
{
	if (rc < 0)
		rc = -rc;
	if (rc >= 1000)
		rc = EIO;
	fuse_reply_err(req, rc);
}

void fs_reply_none(fuse_req_t req)
{
	fuse_reply_none(req);
}

void fs_reply_entry(fuse_req_t req, int rc, const struct fuse_entry_param *e)
{
	if (rc)
		fs_reply_err(req, rc);
	else
		fuse_reply_entry(req, e);
}

int fs_reply_create(fuse_req_t req, int rc, const struct fuse_entry_param *e,
		    const struct fuse_file_info *fi)
{
	if (rc) {
		fs_reply_err(req, rc);
		return 0;
	}
	return fuse_reply_create(req, e, fi) != 0 ? -1 : 0;
}

void fs_reply_attr(fuse_req_t req, int rc, const struct stat *st, double timeout)
{
	if (rc)
		fs_reply_err(req, rc);
	else
		fuse_reply_attr(req, st, timeout);
}

void fs_reply_readlink(fuse_req_t req, int rc, const char *link)
{
	if (rc)
		fs_reply_err(req, rc);
	else
		fuse_reply_readlink(req, link);
}

int fs_reply_open(fuse_req_t req, int rc, const struct fuse_file_info *fi)
{
	if (rc) {
		fs_reply_err(req, rc);
		return 0;
	}
	return fuse_reply_open(req, fi) != 0 ? -1 : 0;
}

void fs_reply_buf(fuse_req_t req, int rc, const void *buf, size_t len)
{
	if (rc)
		fs_reply_err(req, rc);
	else
		fuse_reply_buf(req, buf, len);
}

void fs_reply_write(fuse_req_t req, int rc, size_t n)
{
	if (rc)
		fs_reply_err(req, rc);
	else
		fuse_reply_write(req, n);
}

void fs_reply_xattr(fuse_req_t req, int rc, size_t size, const void *val, size_t len)
{
	if (rc)
		fs_reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fs_reply_err(req, -ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

void fs_reply_statfs(fuse_req_t req, int rc, const struct statvfs *sv)
{
	if (rc)
		fs_reply_err(req, rc);
	else
		fuse_reply_statfs(req, sv);
}
