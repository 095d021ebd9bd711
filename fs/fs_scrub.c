/*
 * fs_scrub.c - name the files and directories whose reads fail.
 *
 * kv_scrub (kv/kv_scrub.c) finds damaged bytes in objects; which files
 * that costs is decided here, by doing what reads through the mount do,
 * with the engine's own read path: for every path, the lookup of each
 * name (its D key), its attributes (I key), for a regular file every
 * chunk in [0, size) (C keys, one kv_get each, as fs_data.c reads), and
 * its extended attributes (X keys). A path is damaged when one of those
 * fails as corrupt; the object the engine names for it is recorded
 * (kv_corrupt_last). So the list is the set of paths whose reads fail,
 * and a damaged block that only holds versions newer data shadows, or a
 * WAL object whose records are in tables, costs nothing here.
 *
 * LISTING
 *   A directory is listed from its D keys (name -> inode) and its R keys
 *   (cookie -> inode, name: what readdir reads), so a name whose D key is
 *   lost is still found (and reported: its lookup fails). An iteration
 *   that meets damage starts again just past the damaged key range the
 *   object scrub found (conf->skip); without one the rest of that listing
 *   is lost, and the directory is reported as such.
 *
 * HARD LINKS AND ORPHANS
 *   A file with several names is checked once and every name that
 *   reaches it is reported. Files unlinked while open (O keys) have no
 *   name: they are reported as "orphan inode N".
 *
 * MEMORY
 *   Directories wait in a FIFO (ino and path); the names of one
 *   directory are held while it is checked; hard-linked inodes' verdicts
 *   are kept. Nothing else grows with the store.
 */
#include "fs/fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct scrub_dir {
	uint64_t ino;
	char *path;
	int unreachable;                  /* an ancestor's lookup fails */
	struct scrub_dir *next;
};

struct scrub_name {
	char *name;
	uint64_t ino;
	uint8_t type;
	int from_d;                       /* listed by its D key */
};

struct scrub_link {
	uint64_t ino;
	int damaged;                      /* 0 = fine, else the verdict was reported */
	struct fs_scrub_path verdict;     /* what, object, ranges (copied) */
	char object[64];                  /* verdict.object points here */
};

struct scrub {
	struct kv_db *db;
	const struct fs_scrub_conf *conf;
	struct fs_scrub_summary *sum;
	struct scrub_dir *head, *tail;
	struct scrub_link *links;         /* hard-linked inodes seen, unsorted */
	size_t n_links, cap_links;
	uint64_t (*ranges)[2];            /* lost byte ranges of the current file */
	size_t n_ranges, cap_ranges;
};

/* The object the engine named for the last corrupt read. */
static void scrub_blame(struct fs_scrub_path *p, struct kv_corrupt_info *ci)
{
	kv_corrupt_last(ci);
	p->object = ci->object;
	p->object_off = ci->offset;
}

static void scrub_emit(struct scrub *s, struct fs_scrub_path *p)
{
	s->sum->damaged_paths++;
	if (s->conf->path)
		s->conf->path(s->conf->arg, p);
}

static int scrub_is_corrupt(int rc)
{
	return rc == KV_ECORRUPT;
}

/* Bytewise key order, a shorter key first when it is a prefix. */
static int scrub_keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	return c ? c : (alen > blen) - (alen < blen);
}

/*
 * Could a read of a key in [a, b] meet damage? Only if a damaged range
 * (lo, hi] of conf->skip overlaps it: every other block a read of such a
 * key could consult was checked whole by kv_scrub. conf->all reads
 * everything. Metadata keys are read regardless (one get per name).
 */
static int scrub_suspect(const struct scrub *s, const struct fs_key *a, const struct fs_key *b)
{
	if (s->conf->all)
		return 1;
	for (size_t i = 0; i < s->conf->n_skip; i++) {
		const struct fs_scrub_range *r = &s->conf->skip[i];
		if (r->lo && scrub_keycmp(r->lo, r->lo_len, b->b, b->len) >= 0)
			continue;               /* the range ends before a..b starts */
		if (r->hi && scrub_keycmp(r->hi, r->hi_len, a->b, a->len) < 0)
			continue;               /* ... or starts after it */
		return 1;
	}
	return 0;
}

/* The D key of (parent, name), as a lookup reads it. */
static int scrub_dent_get(struct kv_db *db, uint64_t parent, const char *name,
			  struct fs_dent *d)
{
	struct fs_key k;
	void *val = NULL;
	size_t vlen = 0;
	int rc;

	fs_key_dent(&k, parent, name, strlen(name));
	rc = kv_get(db, NULL, k.b, k.len, &val, &vlen);
	if (rc == 0 && fs_dent_decode(d, val, vlen))
		rc = -ENOENT;                   /* malformed: fsck's business */
	free(val);
	return rc;
}

/* ---- listing a directory ------------------------------------------------ */

static int scrub_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct scrub_name *)a)->name, ((const struct scrub_name *)b)->name);
}

struct scrub_list {
	struct scrub_name *v;
	size_t n, cap;
	int damaged;                      /* some listing failed */
	struct kv_corrupt_info ci;
};

static int scrub_list_add(struct scrub_list *l, const char *name, size_t nlen, uint64_t ino,
			  uint8_t type, int from_d)
{
	if (util_grow(&l->v, &l->cap, l->n, sizeof(*l->v)))
		return -ENOMEM;
	char *copy = malloc(nlen + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, name, nlen);
	copy[nlen] = '\0';
	l->v[l->n++] = (struct scrub_name){ .name = copy, .ino = ino, .type = type,
					    .from_d = from_d };
	return 0;
}

/* Where to start again after an iteration over [.., hi) failed past
 * `last` (NULL: before its first key, at `from`): just past the smallest
 * damaged range end above it. 0 and *next set, or -ENOENT (none). */
static int scrub_resume(const struct scrub *s, const struct fs_key *from, const void *last,
			size_t last_len, const struct fs_key *hi, struct fs_key *next)
{
	const struct fs_scrub_range *pick = NULL;

	for (size_t i = 0; i < s->conf->n_skip; i++) {
		const struct fs_scrub_range *r = &s->conf->skip[i];
		if (!r->hi || r->hi_len + 1 > sizeof(next->b))
			continue;
		int c = last ? scrub_keycmp(r->hi, r->hi_len, last, last_len)
			     : scrub_keycmp(r->hi, r->hi_len, from->b, from->len) + 1;
		if (c <= 0 || scrub_keycmp(r->hi, r->hi_len, hi->b, hi->len) >= 0)
			continue;
		if (!pick || scrub_keycmp(r->hi, r->hi_len, pick->hi, pick->hi_len) < 0)
			pick = r;
	}
	if (!pick)
		return -ENOENT;
	memcpy(next->b, pick->hi, pick->hi_len);
	next->b[pick->hi_len] = 0;              /* the least key after hi */
	next->len = pick->hi_len + 1;
	return 0;
}

typedef int (*scrub_entry_fn)(struct scrub_list *l, const void *key, size_t klen,
			      const void *val, size_t vlen);

/* Iterate [lo, hi) with scrub_resume past damage, calling fn per key. */
static int scrub_iterate(struct scrub *s, struct scrub_list *l, const struct fs_key *lo,
			 const struct fs_key *hi, scrub_entry_fn fn)
{
	struct fs_key from = *lo, next;
	int rc;

	for (;;) {
		struct kv_iter_user *it = NULL;
		uint8_t last[sizeof(from.b)];
		size_t last_len = 0;
		int have_last = 0;

		rc = kv_iter_create(s->db, NULL, from.b, from.len, hi->b, hi->len, &it);
		if (rc)
			return rc;
		for (; kv_iter_valid(it); kv_iter_next(it)) {
			size_t kl, vl;
			const void *k = kv_iter_key(it, &kl);
			const void *v = kv_iter_value(it, &vl);
			if ((rc = fn(l, k, kl, v, vl))) {
				kv_iter_free(it);
				return rc;
			}
			if (kl <= sizeof(last)) {
				memcpy(last, k, kl);
				last_len = kl;
				have_last = 1;
			}
		}
		rc = kv_iter_status(it);
		kv_iter_free(it);
		if (!scrub_is_corrupt(rc))
			return rc;
		if (!l->damaged)
			kv_corrupt_last(&l->ci);
		l->damaged = 1;
		if (scrub_resume(s, &from, have_last ? last : NULL, last_len, hi, &next))
			return 0;               /* the rest cannot be listed */
		from = next;
	}
}

static int scrub_dent_entry(struct scrub_list *l, const void *key, size_t klen,
			    const void *val, size_t vlen)
{
	struct fs_dent d;
	if (klen <= 9 || fs_dent_decode(&d, val, vlen))
		return 0;                       /* fsck's business, not a failed read */
	return scrub_list_add(l, (const char *)key + 9, klen - 9, d.ino, d.type, 1);
}

static int scrub_cookie_entry(struct scrub_list *l, const void *key, size_t klen,
			      const void *val, size_t vlen)
{
	(void)key, (void)klen;
	if (vlen <= 9)
		return 0;
	return scrub_list_add(l, (const char *)val + 9, vlen - 9, util_get_be64(val),
			      ((const uint8_t *)val)[8], 0);
}

/* The names of directory ino, sorted, duplicates (D and R) merged with
 * the D key's record kept. */
static int scrub_list_dir(struct scrub *s, uint64_t ino, struct scrub_list *l)
{
	struct fs_key lo, hi;
	int rc;

	fs_key_ino_start(&lo, FS_K_DENT, ino);
	fs_key_ino_end(&hi, FS_K_DENT, ino);
	if ((rc = scrub_iterate(s, l, &lo, &hi, scrub_dent_entry)))
		return rc;
	fs_key_ino_start(&lo, FS_K_COOKIE, ino);
	fs_key_ino_end(&hi, FS_K_COOKIE, ino);
	if ((rc = scrub_iterate(s, l, &lo, &hi, scrub_cookie_entry)))
		return rc;
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), scrub_name_cmp);
	size_t w = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (w && !strcmp(l->v[w - 1].name, l->v[i].name)) {
			if (l->v[i].from_d && !l->v[w - 1].from_d) {
				free(l->v[w - 1].name);
				l->v[w - 1] = l->v[i];
			} else {
				free(l->v[i].name);
			}
			continue;
		}
		l->v[w++] = l->v[i];
	}
	l->n = w;
	return 0;
}

static void scrub_list_free(struct scrub_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
}

/* ---- checking one inode ------------------------------------------------- */

static int scrub_range_add(struct scrub *s, uint64_t off, uint64_t len)
{
	if (s->n_ranges && s->ranges[s->n_ranges - 1][0] + s->ranges[s->n_ranges - 1][1] == off) {
		s->ranges[s->n_ranges - 1][1] += len;
		return 0;
	}
	if (util_grow(&s->ranges, &s->cap_ranges, s->n_ranges, sizeof(*s->ranges)))
		return -ENOMEM;
	s->ranges[s->n_ranges][0] = off;
	s->ranges[s->n_ranges][1] = len;
	s->n_ranges++;
	return 0;
}

/*
 * Check inode ino the way reads reach it. Fills *p (what, object,
 * ranges) and returns 1 when a read fails, 0 when all is readable, or a
 * negative error that stops the scrub. *a gets the attributes (for
 * directories: whether to descend).
 */
static int scrub_inode(struct scrub *s, uint64_t ino, struct fs_attr *a, int *have_attr,
		       struct fs_scrub_path *p, struct kv_corrupt_info *ci)
{
	struct fs_key k;
	void *val = NULL;
	size_t vlen = 0;
	char *link = NULL;
	size_t link_len = 0;
	int rc;

	*have_attr = 0;
	s->n_ranges = 0;
	fs_key_inode(&k, ino);
	rc = kv_get(s->db, NULL, k.b, k.len, &val, &vlen);
	if (scrub_is_corrupt(rc)) {
		p->what = "attributes";
		scrub_blame(p, ci);
		return 1;
	}
	if (rc == -ENOENT)
		return 0;                       /* a dangling entry: fsck reports it */
	if (rc)
		return rc;
	rc = fs_attr_decode(a, &link, &link_len, val, vlen, ino);
	free(val);
	free(link);
	if (rc)
		return 0;                       /* fsck's business */
	*have_attr = 1;
	s->sum->inodes++;
	if (S_ISREG(a->mode)) {
		uint64_t nchunks = (a->size + FS_CHUNK_SIZE - 1) / FS_CHUNK_SIZE;
		struct fs_key first, last;
		fs_key_chunk(&first, ino, 0);
		fs_key_chunk(&last, ino, nchunks ? nchunks - 1 : 0);
		if (!scrub_suspect(s, &first, &last))
			nchunks = 0;            /* no damaged block holds its chunks */
		for (uint64_t i = 0; i < nchunks; i++) {
			fs_key_chunk(&k, ino, i);
			if (!scrub_suspect(s, &k, &k))
				continue;
			rc = kv_get(s->db, NULL, k.b, k.len, &val, &vlen);
			free(val);
			val = NULL;
			s->sum->bytes += rc == 0 ? vlen : 0;
			if (scrub_is_corrupt(rc)) {
				if (!s->n_ranges)
					scrub_blame(p, ci);
				uint64_t off = i * FS_CHUNK_SIZE;
				uint64_t len = a->size - off < FS_CHUNK_SIZE ? a->size - off : FS_CHUNK_SIZE;
				if ((rc = scrub_range_add(s, off, len)))
					return rc;
			} else if (rc && rc != -ENOENT) {
				return rc;
			}
		}
		if (s->n_ranges) {
			p->what = "data";
			p->ranges = (const uint64_t(*)[2])s->ranges;
			p->n_ranges = s->n_ranges;
			return 1;
		}
	}
	/* Extended attributes: listxattr reads them all. */
	struct fs_key lo, hi;
	struct kv_iter_user *it = NULL;
	fs_key_ino_start(&lo, FS_K_XATTR, ino);
	fs_key_ino_end(&hi, FS_K_XATTR, ino);
	if ((rc = kv_iter_create(s->db, NULL, lo.b, lo.len, hi.b, hi.len, &it)))
		return rc;
	while (kv_iter_valid(it))
		kv_iter_next(it);
	rc = kv_iter_status(it);
	kv_iter_free(it);
	if (scrub_is_corrupt(rc)) {
		p->what = "xattrs";
		scrub_blame(p, ci);
		return 1;
	}
	return rc;
}

static struct scrub_link *scrub_link_find(struct scrub *s, uint64_t ino)
{
	for (size_t i = 0; i < s->n_links; i++)         /* few hard links in practice */
		if (s->links[i].ino == ino)
			return &s->links[i];
	return NULL;
}

/* Remember the verdict on a hard-linked inode (copying what p borrows). */
static int scrub_link_keep(struct scrub *s, uint64_t ino, int damaged,
			   const struct fs_scrub_path *p, char *object)
{
	if (util_grow(&s->links, &s->cap_links, s->n_links, sizeof(*s->links)))
		return -ENOMEM;
	struct scrub_link *l = &s->links[s->n_links++];
	memset(l, 0, sizeof(*l));
	l->ino = ino;
	l->damaged = damaged;
	if (damaged) {
		l->verdict = *p;
		snprintf(l->object, sizeof(l->object), "%s", object ? object : "");
		l->verdict.object = l->object;
		l->verdict.ranges = NULL;
		l->verdict.n_ranges = 0;
		if (p->n_ranges) {
			uint64_t (*r)[2] = malloc(p->n_ranges * sizeof(*r));
			if (!r)
				return -ENOMEM;
			memcpy(r, p->ranges, p->n_ranges * sizeof(*r));
			l->verdict.ranges = (const uint64_t(*)[2])r;
			l->verdict.n_ranges = p->n_ranges;
		}
	}
	return 0;
}

/* ---- the walk ------------------------------------------------------------ */

static int scrub_queue(struct scrub *s, uint64_t ino, const char *path, int unreachable)
{
	struct scrub_dir *d = calloc(1, sizeof(*d));
	if (!d || !(d->path = strdup(path))) {
		free(d);
		return -ENOMEM;
	}
	d->ino = ino;
	d->unreachable = unreachable;
	if (s->tail)
		s->tail->next = d;
	else
		s->head = d;
	s->tail = d;
	return 0;
}

static char *scrub_join(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	char *p = malloc(dl + nl + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, dl);
	size_t o = dl;
	if (!dl || dir[dl - 1] != '/')
		p[o++] = '/';
	memcpy(p + o, name, nl + 1);
	return p;
}

/* One name in directory d: its lookup, its inode, and (directories) the
 * queue. */
static int scrub_entry(struct scrub *s, const struct scrub_dir *d, const struct scrub_name *n)
{
	struct fs_scrub_path p = { .ino = n->ino };
	struct kv_corrupt_info ci;
	struct fs_attr a;
	struct fs_dent de;
	int have_attr = 0, bad = 0, rc;
	char *path = scrub_join(d->path, n->name);

	if (!path)
		return -ENOMEM;
	p.path = path;
	s->sum->entries++;
	if (d->unreachable) {
		p.what = "unreachable";
		p.object = "";
		bad = 1;
	} else {
		rc = scrub_dent_get(s->db, d->ino, n->name, &de);
		if (scrub_is_corrupt(rc)) {
			p.what = "entry";
			scrub_blame(&p, &ci);
			bad = 1;
		} else if (rc && rc != -ENOENT) {
			free(path);
			return rc;
		} else if (rc == 0) {
			p.ino = de.ino;
		}
	}
	struct scrub_link *l = NULL;
	if (!bad && (l = scrub_link_find(s, p.ino)) != NULL) {
		if (l->damaged) {
			struct fs_scrub_path q = l->verdict;
			q.path = path;
			scrub_emit(s, &q);
		}
		free(path);
		return 0;
	}
	if (!bad) {
		rc = scrub_inode(s, p.ino, &a, &have_attr, &p, &ci);
		if (rc < 0) {
			free(path);
			return rc;
		}
		bad = rc;
		if (have_attr && !S_ISDIR(a.mode) && a.nlink > 1 &&
		    (rc = scrub_link_keep(s, p.ino, bad, &p, bad ? ci.object : NULL)) != 0) {
			free(path);
			return rc;
		}
	}
	if (bad)
		scrub_emit(s, &p);
	if (n->type == (S_IFDIR >> 12) || (have_attr && S_ISDIR(a.mode)))
		rc = scrub_queue(s, p.ino, path, bad && strcmp(p.what, "xattrs") != 0);
	else
		rc = 0;
	free(path);
	return rc;
}

static int scrub_dir(struct scrub *s, const struct scrub_dir *d)
{
	struct scrub_list l = { 0 };
	int rc = scrub_list_dir(s, d->ino, &l);

	if (rc == 0 && l.damaged && !d->unreachable) {
		struct fs_scrub_path p = { .path = d->path, .ino = d->ino, .what = "listing",
					   .object = l.ci.object, .object_off = l.ci.offset };
		scrub_emit(s, &p);
	}
	for (size_t i = 0; i < l.n && !rc; i++) {
		if (fs_dir_is_ctl_name(d->ino, l.v[i].name))
			continue;
		rc = scrub_entry(s, d, &l.v[i]);
	}
	scrub_list_free(&l);
	return rc;
}

/* Orphans: inodes unlinked while open have O keys and no name. */
static int scrub_orphans(struct scrub *s)
{
	struct fs_key lo = { .b = { FS_K_ORPHAN }, .len = 1 };
	struct fs_key hi = { .b = { FS_K_ORPHAN + 1 }, .len = 1 };
	struct kv_iter_user *it = NULL;
	int rc = kv_iter_create(s->db, NULL, lo.b, lo.len, hi.b, hi.len, &it);

	if (rc)
		return rc;
	for (; kv_iter_valid(it) && !rc; kv_iter_next(it)) {
		size_t kl;
		const uint8_t *k = kv_iter_key(it, &kl);
		if (kl != 9)
			continue;
		uint64_t ino = util_get_be64(k + 1);
		char name[64];
		struct fs_scrub_path p = { .ino = ino, .path = name };
		struct kv_corrupt_info ci;
		struct fs_attr a;
		int have_attr;
		snprintf(name, sizeof(name), "orphan inode %" PRIu64, ino);
		rc = scrub_inode(s, ino, &a, &have_attr, &p, &ci);
		if (rc == 1) {
			scrub_emit(s, &p);
			rc = 0;
		}
	}
	if (!rc)
		rc = kv_iter_status(it);
	kv_iter_free(it);
	if (scrub_is_corrupt(rc)) {
		struct kv_corrupt_info ci;
		struct fs_scrub_path p = { .path = "orphan inodes", .what = "listing" };
		scrub_blame(&p, &ci);
		scrub_emit(s, &p);
		rc = 0;
	}
	return rc;
}

int fs_scrub(struct kv_db *db, const struct fs_scrub_conf *conf, struct fs_scrub_summary *sum)
{
	struct scrub s = { .db = db, .conf = conf, .sum = sum };
	struct fs_scrub_path root = { .path = "/", .ino = FS_ROOT_INO };
	struct kv_corrupt_info ci;
	struct fs_attr a;
	int have_attr, rc;

	memset(sum, 0, sizeof(*sum));
	rc = scrub_inode(&s, FS_ROOT_INO, &a, &have_attr, &root, &ci);
	if (rc == 1)
		scrub_emit(&s, &root);
	if (rc >= 0)
		rc = scrub_queue(&s, FS_ROOT_INO, "/", rc == 1 && strcmp(root.what, "xattrs") != 0);
	while (rc == 0 && s.head) {
		struct scrub_dir *d = s.head;
		s.head = d->next;
		if (!s.head)
			s.tail = NULL;
		rc = scrub_dir(&s, d);
		free(d->path);
		free(d);
	}
	if (rc == 0)
		rc = scrub_orphans(&s);
	while (s.head) {
		struct scrub_dir *d = s.head;
		s.head = d->next;
		free(d->path);
		free(d);
	}
	for (size_t i = 0; i < s.n_links; i++)
		free((void *)s.links[i].verdict.ranges);
	free(s.links);
	free(s.ranges);
	return rc;
}
