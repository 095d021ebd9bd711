/*
 * fs_ctl.c - the hidden control directory `/.shalefs`.
 *
 * A lookup of ".shalefs" in the root returns a virtual, read-only
 * directory (never stored, never listed by readdir of the root, inode
 * numbers FS_CTL_*_INO outside the allocated range). It holds:
 *   stats   "key: value" lines: the fs counters, then kv_stats, then
 *           obj_stats, then obj_cost_stats (costed on the tables the
 *           engine knows of, kv_table_bytes). Its content is rendered at open, so one open reads
 *           one consistent snapshot; it is opened with direct_io, so its
 *           st_size (0) does not matter.
 *   info    "key: value" lines whose values are text (fs_info_render):
 *           the store, the mount point, the mode, the last logged
 *           problem. Rendered at open like stats.
 *   ctl     commands for the `shalefs` command, mode 0600 and owned by the
 *           daemon's user. A write of one line runs one command and
 *           returns only when it is done; its errno is the write's
 *           result, and a read of the same open file returns one line
 *           saying what happened:
 *             sync                         every write before it is durable
 *             checkpoint NAME [EXPIRE_NS]  sync, then create checkpoint NAME
 *                                          (EXPIRE_NS: wall-clock ns, 0 never)
 *           Also opened with direct_io, so each write reaches us at once.
 * Nothing here touches the inode table or lookup counts: forget of a
 * control inode is ignored. Nothing here replies either: the handlers of
 * fs_ops.c and fs_dir.c call the fs_ctl_do_* functions for the control
 * inodes and reply with their results (fs_reply.c).
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The largest listing of the control directory readdir returns. */
#define FS_CTL_DIR_BUF 1024

struct fs_ctl_buf {
	char *s;
	size_t len, cap;
	int err;
};

/* Append n bytes of text and a newline to b, keeping it NUL-terminated;
 * after a failed growth b->err is -ENOMEM and later appends do nothing. */
static void fs_ctl_append(struct fs_ctl_buf *b, const char *text, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 2 > b->cap) {
		size_t nc = (b->cap ? b->cap * 2 : 4096) + n + 2;
		char *t = realloc(b->s, nc);
		if (!t) {
			b->err = -ENOMEM;
			return;
		}
		b->s = t;
		b->cap = nc;
	}
	memcpy(b->s + b->len, text, n);
	b->len += n;
	b->s[b->len++] = '\n';
	b->s[b->len] = '\0';
}

static void fs_ctl_emit(void *arg, const char *key, uint64_t value)
{
	char line[160];
	int n = snprintf(line, sizeof(line), "%s: %" PRIu64, key, value);

	if (n >= 0)
		fs_ctl_append(arg, line, strlen(line));
}

int fs_stats_render(struct fs *fs, char **out, size_t *len)
{
	struct fs_ctl_buf b = { 0 };

	fs_stats(fs, fs_ctl_emit, &b);
	kv_stats(fs->db, fs_ctl_emit, &b);
	if (fs->store) {
		obj_stats(fs->store, fs_ctl_emit, &b);
		obj_cost_stats(fs->store, kv_table_bytes(fs->db), fs_ctl_emit, &b);
	}
	if (b.err) {
		free(b.s);
		return b.err;
	}
	*out = b.s;
	*len = b.len;
	return 0;
}

/* One "key: value" line; a value is kept to one line. */
static void fs_ctl_line(struct fs_ctl_buf *b, const char *key, const char *value)
{
	char line[1024], *p;
	int n = snprintf(line, sizeof(line), "%s: %s", key, value ? value : "");

	if (n < 0)
		return;
	for (p = line + strlen(key) + 2; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fs_ctl_append(b, line, strlen(line));
}

int fs_info_render(struct fs *fs, char **out, size_t *len)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	struct fs_ctl_buf b = { 0 };
	enum util_log_level lvl = UTIL_LOG_ERROR;
	char text[512], num[32];
	uint64_t t = util_log_last_problem(&lvl, text, sizeof(text));

	fs_ctl_line(&b, "mountpoint", fs->conf.mountpoint);
	fs_ctl_line(&b, "store", fs->conf.store_url);
	fs_ctl_line(&b, "checkpoint", fs->conf.checkpoint);
	fs_ctl_line(&b, "mode", fs->conf.checkpoint ? "checkpoint" :
		    fs->conf.readonly ? "read-only" : "read-write");
	snprintf(num, sizeof(num), "%" PRIu64, t / 1000000u);
	fs_ctl_line(&b, "last_error_unix_ms", num);
	fs_ctl_line(&b, "last_error_level", t ? levels[lvl] : "");
	fs_ctl_line(&b, "last_error", t ? text : "");
	if (b.err) {
		free(b.s);
		return b.err;
	}
	*out = b.s;
	*len = b.len;
	return 0;
}

static void fs_ctl_stat(uint64_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == FS_CTL_DIR_INO) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else if (ino == FS_CTL_CMD_INO) {
		/* Only the mount's owner (and root) may sync or checkpoint. */
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_uid = geteuid();
		st->st_gid = getegid();
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
	}
	st->st_blksize = 4096;
}

int fs_ctl_getattr(struct fs *fs, uint64_t ino, struct stat *st)
{
	if (ino != FS_CTL_DIR_INO && ino != FS_CTL_STATS_INO && ino != FS_CTL_CMD_INO &&
	    ino != FS_CTL_INFO_INO)
		return -ENOENT;
	fs_ctl_stat(ino, st);
	return 0;
}

int fs_ctl_lookup(struct fs *fs, uint64_t ino, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	fs_ctl_stat(ino, &e->attr);
	e->attr_timeout = fs->conf.attr_timeout;
	e->entry_timeout = fs->conf.entry_timeout;
	return 0;
}

int fs_ctl_lookup_name(struct fs *fs, uint64_t parent, const char *name,
		       struct fuse_entry_param *e)
{
	if (parent != FS_CTL_DIR_INO)
		return -ENOTDIR;
	if (strcmp(name, "stats") == 0)
		return fs_ctl_lookup(fs, FS_CTL_STATS_INO, e);
	if (strcmp(name, "ctl") == 0)
		return fs_ctl_lookup(fs, FS_CTL_CMD_INO, e);
	if (strcmp(name, "info") == 0)
		return fs_ctl_lookup(fs, FS_CTL_INFO_INO, e);
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return fs_ctl_lookup(fs, FS_CTL_DIR_INO, e);
	return -ENOENT;
}

int fs_ctl_do_open(struct fs *fs, uint64_t ino, struct fuse_file_info *fi)
{
	char *s = NULL;
	size_t len = 0;
	int rc;

	if (ino == FS_CTL_DIR_INO)
		return -EISDIR;
	if (ino == FS_CTL_CMD_INO) {
		/* fh: the reply line of the last command ("" before one). */
		s = calloc(1, FS_CTL_REPLY_MAX);
		if (!s)
			return -ENOMEM;
	} else {
		if ((fi->flags & O_ACCMODE) != O_RDONLY)
			return -EACCES;
		/* fh owns the snapshot: a NUL-terminated string. */
		rc = ino == FS_CTL_INFO_INO ? fs_info_render(fs, &s, &len)
					    : fs_stats_render(fs, &s, &len);
		if (rc)
			return rc;
	}
	struct fs_ctl_fh *h = malloc(sizeof(*h) + (s ? strlen(s) : 0) + 1 +
				     (ino == FS_CTL_CMD_INO ? FS_CTL_REPLY_MAX : 0));
	if (!h) {
		free(s);
		return -ENOMEM;
	}
	if (ino == FS_CTL_CMD_INO)
		memset(h->text, 0, FS_CTL_REPLY_MAX);
	else
		strcpy(h->text, s);
	free(s);
	CHECK_RETURN(pthread_mutex_lock(&fs->ctl_mu));
	h->prev = NULL;
	h->next = fs->ctl_fhs;
	if (h->next)
		h->next->prev = h;
	fs->ctl_fhs = h;
	CHECK_RETURN(pthread_mutex_unlock(&fs->ctl_mu));
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	return 0;
}

int fs_ctl_do_read(uint64_t ino, size_t size, off_t off, const struct fuse_file_info *fi,
		   char **out, size_t *n)
{
	const struct fs_ctl_fh *h = (const struct fs_ctl_fh *)(uintptr_t)fi->fh;
	const char *s = h ? h->text : NULL;
	size_t len = s ? strlen(s) : 0;

	*out = NULL;
	*n = 0;
	if ((ino != FS_CTL_STATS_INO && ino != FS_CTL_CMD_INO && ino != FS_CTL_INFO_INO) || !s)
		return -EISDIR;
	if (off < 0 || (size_t)off >= len)
		return 0;
	if (size > len - (size_t)off)
		size = len - (size_t)off;
	/*
	 * Reply from a copy this thread owns, not from the handle's text: the
	 * kernel completes the read while our writev is still in progress, so
	 * the reader's close() and our release (another worker, which frees
	 * the text) can run before writev returns. The kernel has copied the
	 * bytes by then, but ThreadSanitizer checks writev's buffer after the
	 * call and reported a use after free (tsan posix, CI).
	 */
	*out = malloc(size);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, s + off, size);
	*n = size;
	return 0;
}

/* Run one command line (see the ctl file above); the reply line goes to
 * reply. Returns 0 or a negative errno. */
static int fs_ctl_run(struct fs *fs, char *line, char *reply)
{
	char *save = NULL, *verb, *name, *exp, *end;
	uint64_t expire = 0;
	int rc;

	line[strcspn(line, "\n")] = '\0';
	verb = strtok_r(line, " ", &save);
	if (!verb) {
		snprintf(reply, FS_CTL_REPLY_MAX, "error: empty command\n");
		return -EINVAL;
	}
	if (!strcmp(verb, "sync")) {
		rc = fs_sync(fs);
		if (rc)
			snprintf(reply, FS_CTL_REPLY_MAX, "error: sync failed: %s\n",
				 kv_strerror(rc));
		else
			snprintf(reply, FS_CTL_REPLY_MAX, "ok: everything written before the sync "
				 "is durable\n");
		return rc;
	}
	if (!strcmp(verb, "checkpoint")) {
		name = strtok_r(NULL, " ", &save);
		exp = strtok_r(NULL, " ", &save);
		if (exp) {
			errno = 0;
			expire = strtoull(exp, &end, 10);
			if (errno || *end) {
				snprintf(reply, FS_CTL_REPLY_MAX, "error: bad expiry '%s'\n", exp);
				return -EINVAL;
			}
		}
		if (!name) {
			snprintf(reply, FS_CTL_REPLY_MAX, "error: checkpoint needs a name\n");
			return -EINVAL;
		}
		rc = fs_checkpoint(fs, name, expire);
		if (rc == -EEXIST)
			snprintf(reply, FS_CTL_REPLY_MAX, "error: checkpoint '%s' already exists\n",
				 name);
		else if (rc == -EINVAL)
			snprintf(reply, FS_CTL_REPLY_MAX, "error: invalid checkpoint name '%s': 1-255 "
				 "characters of [A-Za-z0-9._-]\n", name);
		else if (rc)
			snprintf(reply, FS_CTL_REPLY_MAX, "error: checkpoint '%s' failed: %s\n", name,
				 kv_strerror(rc));
		else
			snprintf(reply, FS_CTL_REPLY_MAX, "ok: checkpoint '%s' created with "
				 "everything written before it\n", name);
		return rc;
	}
	snprintf(reply, FS_CTL_REPLY_MAX, "error: unknown command '%s'\n", verb);
	return -EINVAL;
}

int fs_ctl_do_write(struct fs *fs, uint64_t ino, const char *data, size_t size,
		    const struct fuse_file_info *fi)
{
	struct fs_ctl_fh *h = (struct fs_ctl_fh *)(uintptr_t)fi->fh;
	char *reply = h ? h->text : NULL;
	char line[FS_CTL_REPLY_MAX];

	if (ino != FS_CTL_CMD_INO || !reply)
		return -EBADF;
	if (size >= sizeof(line))
		return -E2BIG;
	memcpy(line, data, size);
	line[size] = '\0';
	return fs_ctl_run(fs, line, reply);
}

void fs_ctl_do_release(struct fs *fs, struct fuse_file_info *fi)
{
	struct fs_ctl_fh *h = (struct fs_ctl_fh *)(uintptr_t)fi->fh;

	if (!h)
		return;
	CHECK_RETURN(pthread_mutex_lock(&fs->ctl_mu));
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->ctl_fhs = h->next;
	if (h->next)
		h->next->prev = h->prev;
	CHECK_RETURN(pthread_mutex_unlock(&fs->ctl_mu));
	free(h);
}

int fs_ctl_do_readdir(fuse_req_t req, uint64_t ino, size_t size, off_t off, int plus,
		      char **buf, size_t *pos)
{
	static const struct {
		const char *name;
		uint64_t ino;
	} ents[] = { { ".", FS_CTL_DIR_INO }, { "..", FS_ROOT_INO }, { "stats", FS_CTL_STATS_INO },
		     { "ctl", FS_CTL_CMD_INO }, { "info", FS_CTL_INFO_INO } };
	const off_t n_ents = (off_t)(sizeof(ents) / sizeof(ents[0]));

	*buf = NULL;
	*pos = 0;
	if (ino != FS_CTL_DIR_INO)
		return -ENOTDIR;
	/* The whole listing takes well under this. */
	if (size > FS_CTL_DIR_BUF)
		size = FS_CTL_DIR_BUF;
	*buf = malloc(size ? size : 1);
	if (!*buf)
		return -ENOMEM;
	for (off_t i = off; i >= 0 && i < n_ents; i++) {
		struct stat st;
		size_t need;
		fs_ctl_stat(ents[i].ino == FS_ROOT_INO ? FS_CTL_DIR_INO : ents[i].ino, &st);
		st.st_ino = ents[i].ino;
		if (plus) {
			struct fuse_entry_param e = { 0 };
			e.attr = st;
			/* No lookup count for virtual entries: ino 0 tells the
			 * kernel not to instantiate them. */
			need = fuse_add_direntry_plus(req, *buf + *pos, size - *pos, ents[i].name,
						      &e, i + 1);
		} else {
			need = fuse_add_direntry(req, *buf + *pos, size - *pos, ents[i].name, &st,
						 i + 1);
		}
		if (need > size - *pos)
			break;
		*pos += need;
	}
	return 0;
}
