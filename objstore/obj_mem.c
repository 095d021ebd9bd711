/*
 * obj_mem.c - the mem:// backend: objects in process memory, for unit
 * tests only (it is not a stand-in for S3 in integration tests).
 *
 * Stores are named: every obj_mem_create() of the same name shares one
 * store until obj_mem_destroy(name), so a test can "reopen" a store after
 * dropping a handle (a simulated crash).
 *
 * DATA STRUCTURE
 *   A store is a sorted array of objects (binary search; insertion shifts).
 *   Object bodies are immutable and reference-counted, so get() copies the
 *   bytes outside the store lock and a concurrent overwrite never tears a
 *   read.
 *
 * THREADING
 *   registry_lock protects the registry; each store's lock protects its
 *   array. Lock order: registry_lock before a store lock.
 */
#include "objstore/objstore.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct mem_body {
	atomic_int refs;
	size_t len;
	int64_t mtime_ns;
	uint64_t version;
	char token[OBJ_TOKEN_MAX];
	uint8_t data[];
};

struct mem_obj {
	char *name;
	struct mem_body *body;
};

struct mem_store {
	char *name;
	int refs;                         /* protected by registry_lock */
	pthread_mutex_t lock;
	struct mem_obj *objs;             /* protected by lock, sorted by name */
	size_t count, cap;                /* protected by lock */
	uint64_t next_version;            /* protected by lock */
	struct mem_store *next;           /* protected by registry_lock */
};

struct obj_mem {
	struct obj_backend base;          /* must be first */
	struct mem_store *store;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mem_store *registry;    /* protected by registry_lock */

static void mem_body_unref(struct mem_body *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1)
		free(b);
}

static void mem_store_free(struct mem_store *s)
{
	for (size_t i = 0; i < s->count; i++) {
		free(s->objs[i].name);
		mem_body_unref(s->objs[i].body);
	}
	free(s->objs);
	pthread_mutex_destroy(&s->lock);
	free(s->name);
	free(s);
}

/* Index of name, or of its insertion point with *found = 0. */
static size_t mem_find(struct mem_store *s, const char *name, int *found)
{
	size_t lo = 0, hi = s->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->objs[mid].name, name);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static struct mem_store *obj_mem_store(struct obj_backend *b)
{
	return ((struct obj_mem *)b)->store;
}

static int obj_mem__get(struct obj_backend *b, const char *name, uint64_t off, uint64_t len,
			void **out, size_t *out_len)
{
	struct mem_store *s = obj_mem_store(b);
	struct mem_body *body = NULL;
	int found;
	size_t i;

	*out = NULL;
	*out_len = 0;
	if (obj_name_check(name))
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, "get", name, "invalid object name");
	CHECK_RETURN(pthread_mutex_lock(&s->lock));
	i = mem_find(s, name, &found);
	if (found) {
		body = s->objs[i].body;
		atomic_fetch_add(&body->refs, 1);
	}
	CHECK_RETURN(pthread_mutex_unlock(&s->lock));
	if (!body)
		return obj_fail(-ENOENT, -1, "get", name, "no such object");
	if (off < body->len) {
		size_t n = body->len - (size_t)off;
		if (len != OBJ_WHOLE && len < n)
			n = (size_t)len;
		if (n) {
			*out = malloc(n);
			if (!*out) {
				mem_body_unref(body);
				return -ENOMEM;
			}
			memcpy(*out, body->data + off, n);
			*out_len = n;
		}
	}
	mem_body_unref(body);
	return 0;
}

static int obj_mem__head(struct obj_backend *b, const char *name, struct obj_stat *st)
{
	struct mem_store *s = obj_mem_store(b);
	int found, rc = 0;
	size_t i;

	memset(st, 0, sizeof(*st));
	if (obj_name_check(name))
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, "head", name, "invalid object name");
	CHECK_RETURN(pthread_mutex_lock(&s->lock));
	i = mem_find(s, name, &found);
	if (found) {
		struct mem_body *body = s->objs[i].body;
		st->size = body->len;
		st->mtime_ns = body->mtime_ns;
		snprintf(st->etag, sizeof(st->etag), "v%llu", (unsigned long long)body->version);
		memcpy(st->token, body->token, sizeof(st->token));
	} else {
		rc = -ENOENT;
	}
	CHECK_RETURN(pthread_mutex_unlock(&s->lock));
	return rc ? obj_fail(rc, -1, "head", name, "no such object") : 0;
}

static int obj_mem_store_put(struct obj_backend *b, const char *name, const void *data,
			     size_t len, const char *token, int exclusive)
{
	struct mem_store *s = obj_mem_store(b);
	const char *op = exclusive ? "put_if_absent" : "put";
	struct mem_body *body;
	char *dup = NULL;
	int found, rc = 0;
	size_t i;

	if (obj_name_check(name))
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, op, name, "invalid object name");
	if (len > SIZE_MAX - sizeof(*body))
		return -ENOMEM;
	body = malloc(sizeof(*body) + len);
	if (!body)
		return obj_fail(-ENOMEM, UTIL_LOG_ERROR, op, name, "out of memory");
	atomic_init(&body->refs, 1);
	body->len = len;
	body->mtime_ns = (int64_t)util_wall_ns();
	body->token[0] = '\0';
	if (token)
		snprintf(body->token, sizeof(body->token), "%s", token);
	if (len)
		memcpy(body->data, data, len);

	CHECK_RETURN(pthread_mutex_lock(&s->lock));
	body->version = ++s->next_version;
	i = mem_find(s, name, &found);
	if (found) {
		if (exclusive) {
			rc = -EEXIST;
		} else {
			mem_body_unref(s->objs[i].body);
			s->objs[i].body = body;
			body = NULL;
		}
	} else {
		dup = strdup(name);
		if (!dup) {
			rc = -ENOMEM;
		} else if (s->count == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 64;
			struct mem_obj *o = realloc(s->objs, cap * sizeof(*o));
			if (!o) {
				rc = -ENOMEM;
			} else {
				s->objs = o;
				s->cap = cap;
			}
		}
		if (!rc) {
			memmove(&s->objs[i + 1], &s->objs[i], (s->count - i) * sizeof(*s->objs));
			s->objs[i].name = dup;
			s->objs[i].body = body;
			s->count++;
			dup = NULL;
			body = NULL;
		}
	}
	CHECK_RETURN(pthread_mutex_unlock(&s->lock));
	free(dup);
	if (body)
		free(body);
	if (rc == -EEXIST)
		return obj_fail(rc, -1, op, name, "object exists");
	return rc;
}

static int obj_mem__put(struct obj_backend *b, const char *name, const void *data, size_t len,
			const char *token)
{
	return obj_mem_store_put(b, name, data, len, token, 0);
}

static int obj_mem__put_if_absent(struct obj_backend *b, const char *name, const void *data,
				  size_t len, const char *token)
{
	return obj_mem_store_put(b, name, data, len, token, 1);
}

static int obj_mem__del(struct obj_backend *b, const char *name)
{
	struct mem_store *s = obj_mem_store(b);
	struct mem_obj victim = { 0 };
	int found;
	size_t i;

	if (obj_name_check(name))
		return obj_fail(-EINVAL, UTIL_LOG_ERROR, "delete", name, "invalid object name");
	CHECK_RETURN(pthread_mutex_lock(&s->lock));
	i = mem_find(s, name, &found);
	if (found) {
		victim = s->objs[i];
		memmove(&s->objs[i], &s->objs[i + 1], (s->count - i - 1) * sizeof(*s->objs));
		s->count--;
	}
	CHECK_RETURN(pthread_mutex_unlock(&s->lock));
	free(victim.name);
	mem_body_unref(victim.body);
	return 0;
}

static int obj_mem__list(struct obj_backend *b, const char *prefix, const char *start_after,
			 size_t max, struct obj_list **out)
{
	struct mem_store *s = obj_mem_store(b);
	struct obj_list *l;
	size_t plen = prefix ? strlen(prefix) : 0, i;
	int found, rc = 0;

	*out = NULL;
	if (!max)
		max = 1000;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	CHECK_RETURN(pthread_mutex_lock(&s->lock));
	if (start_after && *start_after && (!prefix || strcmp(start_after, prefix) >= 0)) {
		i = mem_find(s, start_after, &found);
		if (found)
			i++;
	} else {
		i = prefix ? mem_find(s, prefix, &found) : 0;
	}
	for (; i < s->count; i++) {
		if (plen && strncmp(s->objs[i].name, prefix, plen)) {
			if (strcmp(s->objs[i].name, prefix) > 0)
				break;          /* sorted: past the prefix range */
			continue;
		}
		if (l->count == max) {
			l->truncated = 1;
			break;
		}
		if (l->count % 64 == 0) {
			struct obj_list_entry *e = realloc(l->entries, (l->count + 64) * sizeof(*e));
			if (!e) {
				rc = -ENOMEM;
				break;
			}
			l->entries = e;
		}
		l->entries[l->count].name = strdup(s->objs[i].name);
		if (!l->entries[l->count].name) {
			rc = -ENOMEM;
			break;
		}
		l->entries[l->count].size = s->objs[i].body->len;
		l->count++;
	}
	CHECK_RETURN(pthread_mutex_unlock(&s->lock));
	if (rc) {
		obj_list_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

static void obj_mem__stats(struct obj_backend *b, obj_stat_emit_fn emit, void *arg)
{
	struct mem_store *s = obj_mem_store(b);
	uint64_t n, bytes = 0;
	CHECK_RETURN(pthread_mutex_lock(&s->lock));
	n = s->count;
	for (size_t i = 0; i < s->count; i++)
		bytes += s->objs[i].body->len;
	CHECK_RETURN(pthread_mutex_unlock(&s->lock));
	emit(arg, "mem_objects", n);
	emit(arg, "mem_bytes", bytes);
}

static void obj_mem__free(struct obj_backend *b)
{
	struct obj_mem *m = (struct obj_mem *)b;
	struct mem_store *s = m->store;
	int last;

	CHECK_RETURN(pthread_mutex_lock(&registry_lock));
	/* A named store outlives its handles (tests reopen it); one destroyed
	 * while open is freed by its last handle. */
	last = --s->refs == 0 && !s->name;
	CHECK_RETURN(pthread_mutex_unlock(&registry_lock));
	if (last)
		mem_store_free(s);
	free(m);
}

int obj_mem_create(struct obj_backend **out, const char *name)
{
	struct obj_mem *m;
	struct mem_store *s;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	CHECK_RETURN(pthread_mutex_lock(&registry_lock));
	for (s = registry; s; s = s->next)
		if (!strcmp(s->name, name))
			break;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (s)
			s->name = strdup(name);
		if (!s || !s->name) {
			CHECK_RETURN(pthread_mutex_unlock(&registry_lock));
			if (s)
				free(s);
			free(m);
			return -ENOMEM;
		}
		CHECK_RETURN(pthread_mutex_init(&s->lock, NULL));
		s->next = registry;
		registry = s;
	}
	s->refs++;
	CHECK_RETURN(pthread_mutex_unlock(&registry_lock));

	m->store = s;
	m->base.version = OBJ_BACKEND_VERSION;
	m->base.kind = "mem";
	m->base.get = obj_mem__get;
	m->base.head = obj_mem__head;
	m->base.put = obj_mem__put;
	m->base.put_if_absent = obj_mem__put_if_absent;
	m->base.del = obj_mem__del;
	m->base.list = obj_mem__list;
	m->base.stats = obj_mem__stats;
	m->base.free = obj_mem__free;
	*out = &m->base;
	return 0;
}

void obj_mem_destroy(const char *name)
{
	struct mem_store *s, **pp;
	int free_now = 0;

	CHECK_RETURN(pthread_mutex_lock(&registry_lock));
	for (pp = &registry; (s = *pp); pp = &s->next) {
		if (!strcmp(s->name, name)) {
			*pp = s->next;
			/* Unnamed stores are freed by their last handle. */
			free(s->name);
			s->name = NULL;
			free_now = s->refs == 0;
			break;
		}
	}
	CHECK_RETURN(pthread_mutex_unlock(&registry_lock));
	if (s && free_now)
		mem_store_free(s);
}
