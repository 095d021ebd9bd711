/*
 * obj_local.c - the file:// backend: objects are files under a root
 * directory. The default store, and the one crash tests lean on, so every
 * write is made durable before it is acknowledged.
 *
 * LAYOUT
 *   Object "a/b/c" is the file ROOT/a/b/c; directories are created on
 *   demand (each new directory's parent is fsync'd so it survives a crash).
 *   Temporary files live in ROOT/.tmp.shalefs/ (same filesystem, so rename
 *   and link are atomic); names whose first component is ".tmp.shalefs" are
 *   refused. A name cannot be both an object and a directory ("a" and
 *   "a/b"): such a put returns -EINVAL. The engine never needs that.
 *
 * ATOMICITY AND DURABILITY
 *   put:            write temp + fsync, rename(temp, target), fsync(dir).
 *                   Readers see the old file or the new one, never a mix.
 *   put_if_absent:  write temp + fsync, link(temp, target), unlink(temp),
 *                   fsync(dir). link(2) fails with EEXIST if the target
 *                   exists, atomically across threads and processes.
 *   token:          stored in the xattr "user.shalefs.token" when the
 *                   filesystem supports it (head() reports "" otherwise and
 *                   the retry wrapper falls back to comparing bytes).
 *
 * LISTING
 *   Object names sort bytewise, but a directory walk does not: "a.b" sorts
 *   before "a/x" though the directory "a" precedes the file "a.b" by name.
 *   So each directory's children are ordered by their key in the name space
 *   (a subdirectory "d" counts as "d/"), which makes a depth-first walk emit
 *   names in exact byte order. To keep memory bounded for huge directories,
 *   a walk keeps only the smallest (wanted + 1) qualifying children of a
 *   directory and rescans after the last one it used if it needs more.
 *
 * WRITING
 *   Large objects are written with O_DIRECT (obj_local_direct.c says why
 *   and how); small ones, and all on a filesystem that refuses it, through
 *   the page cache.
 *
 * OPEN FILES
 *   Files read by ranged GETs stay open in a small cache, checked on
 *   every use (obj_local_fds.c explains why that is safe).
 *
 * SPACE
 *   obj_space (objstore.h) is defined here: it walks a stack down to its
 *   file:// backend, the one kind with a size.
 *
 * THREADING
 *   The only shared mutable state is that cache and the bounce-buffer
 *   pool, which lock themselves: safe from any thread.
 */
#include "objstore/objstore_int.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#define LOCAL_TMPDIR ".tmp.shalefs"
#define LOCAL_XATTR "user.shalefs.token"

struct obj_local {
	struct obj_backend base;          /* must be first */
	char *root;                       /* absolute, no trailing slash; immutable */
	int root_fd;                      /* O_PATH|O_DIRECTORY on root; immutable */
	struct obj_fds *fds;              /* open object files; thread-safe */
	struct obj_direct *direct;        /* bounce buffers for O_DIRECT; thread-safe */
};

static struct obj_local *obj_local_of(struct obj_backend *b)
{
	return (struct obj_local *)b;
}

/* Map errno after a failed syscall on `name` during `op`. ENOENT and
 * EEXIST are expected outcomes for callers and are not logged. */
static int obj_local_err(int err, const char *op, const char *name, const char *what)
{
	/* A full disk is reported by the engine, once and then at a bounded
	 * rate, while it retries (kv_db.c, STORE FAILURES): not at every try. */
	int lvl = (err == ENOENT || err == EEXIST) ? -1 :
		(err == ENOSPC || err == EDQUOT) ? UTIL_LOG_DEBUG : UTIL_LOG_ERROR;
	int rc;

	switch (err) {
	case ENOENT:
	case EEXIST:
	case EACCES:
	case ENOSPC:
	case ENOMEM:
	case EINTR:
		rc = -err;
		break;
	case EPERM:
	case EROFS:
		rc = -EACCES;
		break;
	case EDQUOT:
		rc = -ENOSPC;
		break;
	case ENOTDIR:
	case EISDIR:
	case ENAMETOOLONG:
		rc = -EINVAL;
		break;
	default:
		rc = -EIO;
		break;
	}
	return obj_fail(rc, lvl, op, name, "%s: %s", what, util_strerror(err));
}

static int obj_local_check(const char *op, const char *name)
{
	if (obj_name_check(name))
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, op, name, "invalid object name");
	if (!strncmp(name, LOCAL_TMPDIR, strlen(LOCAL_TMPDIR)) &&
	    (name[strlen(LOCAL_TMPDIR)] == '/' || name[strlen(LOCAL_TMPDIR)] == '\0'))
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, op, name, "name is reserved by the file:// backend");
	return 0;
}

/* fsync a directory given relative to root ("" = root). */
static int obj_local_fsync_dir(struct obj_local *l, const char *rel)
{
	int fd = openat(l->root_fd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) ? -errno : 0;
	close(fd);
	return rc;
}

/* Parent directory of name into buf ("" for top-level names). */
static void obj_local_parent(const char *name, char *buf, size_t size)
{
	const char *slash = strrchr(name, '/');
	size_t n = slash ? (size_t)(slash - name) : 0;
	if (n >= size)
		n = size - 1;
	memcpy(buf, name, n);
	buf[n] = '\0';
}

/* mkdir -p for the parent directories of name; each directory created is
 * made durable by fsyncing its parent. */
static int obj_local_mkparents(struct obj_local *l, const char *name)
{
	char path[OBJ_NAME_MAX];
	size_t len = strlen(name);

	memcpy(path, name, len + 1);
	for (size_t i = 0; i < len; i++) {
		if (path[i] != '/')
			continue;
		path[i] = '\0';
		if (mkdirat(l->root_fd, path, 0755) == 0) {
			char parent[OBJ_NAME_MAX];
			obj_local_parent(path, parent, sizeof(parent));
			int rc = obj_local_fsync_dir(l, parent);
			if (rc)
				return rc;
		} else if (errno != EEXIST) {
			return -errno;
		}
		path[i] = '/';
	}
	return 0;
}

/* Write data to a fresh durable temp file; its root-relative name goes to tmp. */
static int obj_local_write_tmp(struct obj_local *l, const char *op, const char *name,
			       const void *data, size_t len, const char *token, char *tmp,
			       size_t tmpsize)
{
	uint64_t r;
	int fd, rc;

	for (int attempt = 0;; attempt++) {
		util_random_bytes(&r, sizeof(r));
		snprintf(tmp, tmpsize, LOCAL_TMPDIR "/%016llx", (unsigned long long)r);
		fd = openat(l->root_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0)
			break;
		if (errno == ENOENT && attempt == 0) {
			/* Someone removed the temp dir: recreate it once. */
			if (mkdirat(l->root_fd, LOCAL_TMPDIR, 0755) && errno != EEXIST)
				return obj_local_err(errno, op, name, "creating temp directory");
			continue;
		}
		if (errno != EEXIST || attempt > 8)
			return obj_local_err(errno, op, name, "creating temp file");
	}
	rc = obj_direct_write(l->direct, fd, data, len);
	if (rc) {
		rc = obj_local_err(-rc, op, name, "writing temp file");
		goto fail;
	}
	if (token && *token && fsetxattr(fd, LOCAL_XATTR, token, strlen(token), 0) &&
	    errno != ENOTSUP && errno != EOPNOTSUPP) {
		rc = obj_local_err(errno, op, name, "storing token xattr");
		goto fail;
	}
	if (fsync(fd)) {
		rc = obj_local_err(errno, op, name, "fsync of temp file");
		goto fail;
	}
	if (close(fd)) {
		fd = -1;
		rc = obj_local_err(errno, op, name, "closing temp file");
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlinkat(l->root_fd, tmp, 0);
	return rc;
}

static int obj_local_store(struct obj_backend *b, const char *name, const void *data,
			   size_t len, const char *token, int exclusive)
{
	struct obj_local *l = obj_local_of(b);
	const char *op = exclusive ? "put_if_absent" : "put";
	char tmp[64], parent[OBJ_NAME_MAX];
	int rc;

	rc = obj_local_check(op, name);
	if (rc)
		return rc;
	rc = obj_local_mkparents(l, name);
	if (rc)
		return obj_local_err(-rc, op, name, "creating parent directories");
	rc = obj_local_write_tmp(l, op, name, data, len, token, tmp, sizeof(tmp));
	if (rc)
		return rc;
	if (exclusive) {
		if (linkat(l->root_fd, tmp, l->root_fd, name, 0)) {
			rc = obj_local_err(errno, op, name, "linking into place");
			unlinkat(l->root_fd, tmp, 0);
			return rc;
		}
		unlinkat(l->root_fd, tmp, 0);
	} else if (renameat(l->root_fd, tmp, l->root_fd, name)) {
		rc = obj_local_err(errno, op, name, "renaming into place");
		unlinkat(l->root_fd, tmp, 0);
		return rc;
	} else {
		obj_fds_forget(l->fds, name, NULL);     /* replaced */
	}
	obj_local_parent(name, parent, sizeof(parent));
	rc = obj_local_fsync_dir(l, parent);
	if (rc)
		return obj_local_err(-rc, op, name, "fsync of directory");
	return 0;
}

static int obj_local__put(struct obj_backend *b, const char *name, const void *data, size_t len,
			  const char *token)
{
	return obj_local_store(b, name, data, len, token, 0);
}

static int obj_local__put_if_absent(struct obj_backend *b, const char *name, const void *data,
				    size_t len, const char *token)
{
	return obj_local_store(b, name, data, len, token, 1);
}

static int obj_local__get(struct obj_backend *b, const char *name, uint64_t off, uint64_t len,
			  void **out, size_t *out_len)
{
	struct obj_local *l = obj_local_of(b);
	/* Ranged reads are the engine's block reads: keep those files open
	 * (obj_local_fds.c). Whole-object reads are one-offs. */
	int ranged = off != 0 || len != OBJ_WHOLE;
	struct obj_fd *cf = NULL;
	struct stat st;
	uint8_t *buf = NULL;
	size_t n, done = 0;
	int fd = -1, rc;

	*out = NULL;
	*out_len = 0;
	rc = obj_local_check("get", name);
	if (rc)
		return rc;
	if (ranged && (cf = obj_fds_get(l->fds, name)) != NULL) {
		fd = obj_fd_fd(cf);
		if (fstat(fd, &st) == 0 && obj_fd_valid(cf, st.st_nlink))
			goto have;
		obj_fds_forget(l->fds, name, cf);       /* deleted or replaced */
		obj_fds_release(l->fds, cf);
		cf = NULL;
	}
	fd = openat(l->root_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return obj_local_err(errno, "get", name, "open");
	if (fstat(fd, &st)) {
		rc = obj_local_err(errno, "get", name, "fstat");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = obj_fail(-ENOENT, -1, "get", name, "not an object (a directory)");
		goto out;
	}
	if (ranged)
		cf = obj_fds_add(l->fds, name, fd, st.st_nlink);   /* NULL: stays ours */
have:
	if (off >= (uint64_t)st.st_size)
		goto out;                       /* reading at/after the end: 0 bytes */
	n = (size_t)((uint64_t)st.st_size - off);
	if (len != OBJ_WHOLE && len < n)
		n = (size_t)len;
	if (n == 0)
		goto out;
	buf = obj_buf_alloc(n);
	if (!buf) {
		rc = obj_fail(-ENOMEM, UTIL_LOG_ERROR, "get", name, "out of memory for %zu bytes", n);
		goto out;
	}
	while (done < n) {
		ssize_t r = pread(fd, buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = obj_local_err(errno, "get", name, "read");
			goto out;
		}
		if (r == 0)
			break;                  /* cannot happen: objects are immutable */
		done += (size_t)r;
	}
	*out = buf;
	*out_len = done;
	buf = NULL;
out:
	obj_buf_free(buf);
	if (cf)
		obj_fds_release(l->fds, cf);
	else
		close(fd);
	return rc;
}

static int obj_local__head(struct obj_backend *b, const char *name, struct obj_stat *st)
{
	struct obj_local *l = obj_local_of(b);
	struct stat s;
	int fd, rc;
	ssize_t n;

	memset(st, 0, sizeof(*st));
	rc = obj_local_check("head", name);
	if (rc)
		return rc;
	fd = openat(l->root_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return obj_local_err(errno, "head", name, "open");
	if (fstat(fd, &s)) {
		rc = obj_local_err(errno, "head", name, "fstat");
		goto out;
	}
	if (!S_ISREG(s.st_mode)) {
		rc = obj_fail(-ENOENT, -1, "head", name, "not an object (a directory)");
		goto out;
	}
	st->size = (uint64_t)s.st_size;
	st->mtime_ns = (int64_t)s.st_mtim.tv_sec * 1000000000 + s.st_mtim.tv_nsec;
	snprintf(st->etag, sizeof(st->etag), "%llx-%llx-%llx", (unsigned long long)s.st_ino,
		 (unsigned long long)s.st_size, (unsigned long long)st->mtime_ns);
	n = fgetxattr(fd, LOCAL_XATTR, st->token, sizeof(st->token) - 1);
	st->token[n > 0 ? n : 0] = '\0';
out:
	close(fd);
	return rc;
}

static int obj_local__del(struct obj_backend *b, const char *name)
{
	struct obj_local *l = obj_local_of(b);
	int rc = obj_local_check("delete", name);
	if (rc)
		return rc;
	obj_fds_forget(l->fds, name, NULL);
	if (unlinkat(l->root_fd, name, 0) && errno != ENOENT) {
		if (errno == EISDIR || errno == EPERM) {
			struct stat s;
			if (fstatat(l->root_fd, name, &s, 0) == 0 && S_ISDIR(s.st_mode))
				return 0;       /* a directory is not an object */
		}
		return obj_local_err(errno, "delete", name, "unlink");
	}
	return 0;
}

/* ---- listing ------------------------------------------------------------ */

struct local_child {
	char *key;                        /* name-space key: "dir/" or "file" (full name) */
	int is_dir;
	uint64_t size;
};

struct local_walk {
	struct obj_local *l;
	const char *prefix;
	const char *after;                /* "" = none */
	struct obj_list *out;
	size_t want;                      /* entries to collect (max + 1) */
	int err;
};

/* Could anything under dir key `dkey` ("a/b/") match prefix and follow after? */
static int local_dir_relevant(const struct local_walk *w, const char *dkey)
{
	size_t dl = strlen(dkey), pl = strlen(w->prefix);
	size_t n = dl < pl ? dl : pl;
	if (strncmp(dkey, w->prefix, n))
		return 0;
	/* Everything under dkey sorts in (dkey, dkey+"\xff..."): skip the dir
	 * when start_after is past it entirely. */
	if (*w->after && strcmp(dkey, w->after) < 0 && strncmp(w->after, dkey, dl))
		return 0;
	return 1;
}

static int local_file_relevant(const struct local_walk *w, const char *name)
{
	if (strncmp(name, w->prefix, strlen(w->prefix)))
		return 0;
	return !*w->after || strcmp(name, w->after) > 0;
}

static int local_emit(struct local_walk *w, const char *name, uint64_t size)
{
	struct obj_list *o = w->out;
	struct obj_list_entry *e = realloc(o->entries, (o->count + 1) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	o->entries = e;
	e[o->count].name = strdup(name);
	if (!e[o->count].name)
		return -ENOMEM;
	e[o->count].size = size;
	o->count++;
	return 0;
}

static int local_walk_dir(struct local_walk *w, const char *rel);

/*
 * Collect up to `cap` smallest relevant children of directory rel whose key
 * is > `from` (NULL = no lower bound), sorted. Returns the count via *n and
 * whether more qualifying children exist via *more.
 */
static int local_scan(struct local_walk *w, const char *rel, const char *from, size_t cap,
		      struct local_child **kids, size_t *n, int *more)
{
	struct local_child *k = NULL;
	size_t count = 0;
	DIR *d = NULL;
	int fd, rc = 0;

	*kids = NULL;
	*n = 0;
	*more = 0;
	fd = openat(w->l->root_fd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	k = calloc(cap + 1, sizeof(*k));
	if (!k) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		struct dirent *de;
		struct stat st;
		char key[OBJ_NAME_MAX + 2];
		int is_dir;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = -errno;
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!*rel && !strcmp(de->d_name, LOCAL_TMPDIR))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;               /* deleted under us */
		is_dir = S_ISDIR(st.st_mode);
		if (!is_dir && !S_ISREG(st.st_mode))
			continue;
		if ((size_t)snprintf(key, sizeof(key), "%s%s%s%s", rel, *rel ? "/" : "", de->d_name,
				     is_dir ? "/" : "") >= sizeof(key))
			continue;
		if (from && strcmp(key, from) <= 0)
			continue;
		if (is_dir ? !local_dir_relevant(w, key) : !local_file_relevant(w, key))
			continue;
		/* Keep the `cap` smallest: insertion into a sorted array. */
		size_t pos = count;
		while (pos > 0 && strcmp(k[pos - 1].key, key) > 0)
			pos--;
		if (pos >= cap) {
			*more = 1;
			continue;
		}
		if (count == cap) {
			free(k[count - 1].key);
			count--;
			*more = 1;
		}
		memmove(&k[pos + 1], &k[pos], (count - pos) * sizeof(*k));
		k[pos].key = strdup(key);
		if (!k[pos].key) {
			memmove(&k[pos], &k[pos + 1], (count - pos) * sizeof(*k));
			rc = -ENOMEM;
			break;
		}
		k[pos].is_dir = is_dir;
		k[pos].size = (uint64_t)st.st_size;
		count++;
	}
out:
	if (d)
		closedir(d);
	if (rc) {
		for (size_t i = 0; i < count; i++)
			free(k[i].key);
		free(k);
		return rc;
	}
	*kids = k;
	*n = count;
	return 0;
}

static int local_walk_dir(struct local_walk *w, const char *rel)
{
	char *from = NULL;
	int rc = 0;

	for (;;) {
		struct local_child *kids;
		size_t n, i, cap = w->want - w->out->count + 1;
		int more;

		rc = local_scan(w, rel, from, cap, &kids, &n, &more);
		if (rc)
			break;
		for (i = 0; i < n && rc == 0 && w->out->count < w->want; i++) {
			if (kids[i].is_dir) {
				kids[i].key[strlen(kids[i].key) - 1] = '\0';
				rc = local_walk_dir(w, kids[i].key);
				kids[i].key[strlen(kids[i].key)] = '/';
			} else {
				rc = local_emit(w, kids[i].key, kids[i].size);
			}
		}
		/* Resume after the last child used if this directory has more. */
		int again = rc == 0 && more && w->out->count < w->want && n > 0;
		if (again) {
			free(from);
			from = strdup(kids[n - 1].key);
			if (!from)
				rc = -ENOMEM;
		}
		for (i = 0; i < n; i++)
			free(kids[i].key);
		free(kids);
		if (!again || rc)
			break;
	}
	free(from);
	return rc;
}

static int obj_local__list(struct obj_backend *b, const char *prefix, const char *start_after,
			   size_t max, struct obj_list **out)
{
	struct local_walk w = {
		.l = obj_local_of(b),
		.prefix = prefix ? prefix : "",
		.after = start_after ? start_after : "",
		.want = (max ? max : 1000) + 1,
	};
	int rc;

	*out = NULL;
	w.out = calloc(1, sizeof(*w.out));
	if (!w.out)
		return -ENOMEM;
	rc = local_walk_dir(&w, "");
	if (rc) {
		obj_list_free(w.out);
		return obj_local_err(-rc, "list", w.prefix, "walking directories");
	}
	if (w.out->count == w.want) {
		w.out->count--;
		free(w.out->entries[w.out->count].name);
		w.out->truncated = 1;
	}
	*out = w.out;
	return 0;
}

static void obj_local__free(struct obj_backend *b)
{
	struct obj_local *l = obj_local_of(b);
	if (l->root_fd >= 0)
		close(l->root_fd);
	obj_fds_free(l->fds);
	obj_direct_free(l->direct);
	free(l->root);
	free(l);
}

static int obj_local_space(struct obj_backend *b, uint64_t *total, uint64_t *avail)
{
	struct statvfs sv;

	if (statvfs(obj_local_of(b)->root, &sv) != 0)
		return -errno;
	*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

/* Only a file:// store has a size, so the walk down a stack to find one
 * lives with it, and obj_util.c never calls into a backend by name. */
int obj_space(struct obj_backend *b, uint64_t *total, uint64_t *avail)
{
	while (b) {
		if (b->kind && !strcmp(b->kind, "file"))
			return obj_local_space(b, total, avail);
		b = obj_wrapper_inner(b);
	}
	return -ENOTSUP;
}

int obj_local_create(struct obj_backend **out, const char *dir, int create)
{
	struct obj_local *l;
	struct stat st;
	int rc;

	*out = NULL;
	if (!dir || dir[0] != '/')
		return obj_fail(-EINVAL, -1, "open", dir ? dir : "(null)",
				"file:// store needs an absolute directory path");
	if (create && mkdir(dir, 0755) && errno != EEXIST)
		return obj_local_err(errno, "open", dir, "creating store directory");
	if (stat(dir, &st))
		return obj_fail(errno == ENOENT ? -ENOENT : -EACCES, -1, "open", dir,
				"store directory: %s", util_strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return obj_fail(-EINVAL, -1, "open", dir, "store path is not a directory");
	if (access(dir, R_OK | W_OK | X_OK))
		return obj_fail(-EACCES, -1, "open", dir, "store directory: %s", util_strerror(errno));

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->root_fd = -1;
	l->root = strdup(dir);
	l->fds = obj_fds_create();
	l->direct = obj_direct_create();
	if (!l->root || !l->fds || !l->direct) {
		rc = -ENOMEM;
		goto fail;
	}
	l->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->root_fd < 0) {
		rc = obj_local_err(errno, "open", dir, "opening store directory");
		goto fail;
	}
	if (mkdirat(l->root_fd, LOCAL_TMPDIR, 0755) && errno != EEXIST) {
		rc = obj_local_err(errno, "open", dir, "creating " LOCAL_TMPDIR);
		goto fail;
	}
	l->base.version = OBJ_BACKEND_VERSION;
	l->base.kind = "file";
	l->base.get = obj_local__get;
	l->base.head = obj_local__head;
	l->base.put = obj_local__put;
	l->base.put_if_absent = obj_local__put_if_absent;
	l->base.del = obj_local__del;
	l->base.list = obj_local__list;
	l->base.free = obj_local__free;
	*out = &l->base;
	return 0;
fail:
	obj_local__free(&l->base);
	return rc;
}
