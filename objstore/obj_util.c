/*
 * obj_util.c - what every backend shares: error recording, name checks,
 * error classification, the helpers layered on the vtable (paged
 * listing, batch delete, stats) and a stack's lifecycle end (obj_close).
 * It is the bottom of objstore/: backends, wrappers and the URL parser
 * call it, and it calls none of them, only the vtable.
 */
#include "objstore/objstore.h"
#include "objstore/objstore_int.h"
#include "util/util.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char obj_errbuf[1024]; /* room for the credential chain's "tried ..." list */

const char *obj_last_error(void)
{
	return obj_errbuf;
}

void obj_clear_error(void)
{
	obj_errbuf[0] = '\0';
}

int obj_fail(int err, int log_level, const char *op, const char *name, const char *fmt, ...)
{
	char cause[896];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cause, sizeof(cause), fmt, ap);
	va_end(ap);
	/* An operation on no one object (a LIST of the whole store) has an
	 * empty name: "s3 LIST: cause", not "s3 LIST : cause". */
	if (name && *name)
		snprintf(obj_errbuf, sizeof(obj_errbuf), "%s %s: %s", op, name, cause);
	else
		snprintf(obj_errbuf, sizeof(obj_errbuf), "%s: %s", op, cause);
	if (log_level >= 0)
		util_log((enum util_log_level)log_level, "objstore", "%s", obj_errbuf);
	return err;
}

int obj_err_is_transient(int err)
{
	switch (err) {
	case -EAGAIN:
	case -ETIMEDOUT:
	case -ECANCELED:
	case -ECONNRESET:
	case -ECONNREFUSED:
	case -ECONNABORTED:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -ENETDOWN:
	case -EPIPE:
	case -EBUSY:
	case -EINTR:
		return 1;
	default:
		return 0;
	}
}

int obj_name_check(const char *name)
{
	size_t len;
	const char *p, *seg;

	if (!name || !*name)
		return -EINVAL;
	len = strnlen(name, OBJ_NAME_MAX);
	if (len >= OBJ_NAME_MAX || name[0] == '/')
		return -EINVAL;
	for (seg = p = name;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t n = (size_t)(p - seg);
			if (n == 0 && *p == '/')
				return -EINVAL;     /* empty component */
			if (n == 0 && *p == '\0')
				return -EINVAL;     /* trailing slash */
			if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
				return -EINVAL;
			if (*p == '\0')
				break;
			seg = p + 1;
		}
	}
	return 0;
}

/*
 * The pool of get buffers (obj_buf_alloc, objstore_int.h): up to
 * OBJ_BUF_POOL_N buffers, OBJ_BUF_POOL_BYTES in all, each of at least
 * OBJ_BUF_POOL_MIN bytes. A request takes the smallest that fits if it is
 * at most twice the size asked for (a small request does not pin a big
 * buffer). What the pool keeps counts in the daemon's RSS. A buffer the
 * pool does not serve comes from util_big_alloc (2 MiB-aligned, huge
 * pages, from UTIL_BIG_ALLOC = 4 MiB on; malloc below), and any buffer
 * obj_buf_free takes back, whichever of the two made it, is kept if it
 * fits the cap and free()d otherwise: both are free()'s memory.
 */
#define OBJ_BUF_POOL_N 32

static pthread_mutex_t obj_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	void *p;
	size_t cap;
} obj_pool[OBJ_BUF_POOL_N];          /* protected by obj_pool_mu */
static size_t obj_pool_n, obj_pool_bytes;   /* protected by obj_pool_mu */

void *obj_buf_alloc(size_t n)
{
	void *p = NULL;
	size_t best = SIZE_MAX;

	if (n >= OBJ_BUF_POOL_MIN) {
		CHECK_RETURN(pthread_mutex_lock(&obj_pool_mu));
		for (size_t i = 0; i < obj_pool_n; i++)
			if (obj_pool[i].cap >= n && obj_pool[i].cap / 2 <= n &&
			    (best == SIZE_MAX || obj_pool[i].cap < obj_pool[best].cap))
				best = i;
		if (best != SIZE_MAX) {
			p = obj_pool[best].p;
			obj_pool_bytes -= obj_pool[best].cap;
			obj_pool[best] = obj_pool[--obj_pool_n];
		}
		CHECK_RETURN(pthread_mutex_unlock(&obj_pool_mu));
	}
	/* Not pooled (small, too big for a slot, or none free): huge pages
	 * from UTIL_BIG_ALLOC on, malloc below. Either is free()'s. */
	return p ? p : util_big_alloc(n);
}

void obj_buf_free(void *buf)
{
	size_t cap;

	if (!buf)
		return;
	cap = malloc_usable_size(buf);
	if (cap >= OBJ_BUF_POOL_MIN) {
		CHECK_RETURN(pthread_mutex_lock(&obj_pool_mu));
		if (obj_pool_n < OBJ_BUF_POOL_N && obj_pool_bytes + cap <= OBJ_BUF_POOL_BYTES) {
			obj_pool[obj_pool_n].p = buf;
			obj_pool[obj_pool_n++].cap = cap;
			obj_pool_bytes += cap;
			buf = NULL;
		}
		CHECK_RETURN(pthread_mutex_unlock(&obj_pool_mu));
	}
	free(buf);
}

void obj_list_free(struct obj_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		free(l->entries[i].name);
	free(l->entries);
	free(l);
}

int obj_delete_many(struct obj_backend *b, const char *const *names, size_t count)
{
	int first = 0;
	if (b->del_many)
		return b->del_many(b, names, count);
	for (size_t i = 0; i < count; i++) {
		int rc = b->del(b, names[i]);
		if (rc && !first)
			first = rc;
	}
	return first;
}

int obj_list_each(struct obj_backend *b, const char *prefix, size_t page, obj_list_fn fn,
		  void *arg)
{
	char *after = NULL;
	int rc = 0;

	if (!page)
		page = 1000;
	for (;;) {
		struct obj_list *l = NULL;
		rc = b->list(b, prefix, after, page, &l);
		if (rc)
			break;
		for (size_t i = 0; i < l->count && rc == 0; i++)
			rc = fn(arg, l->entries[i].name, l->entries[i].size);
		if (rc || !l->truncated || l->count == 0) {
			obj_list_free(l);
			break;
		}
		free(after);
		after = strdup(l->entries[l->count - 1].name);
		obj_list_free(l);
		if (!after) {
			rc = -ENOMEM;
			break;
		}
	}
	free(after);
	return rc > 0 ? 0 : rc;
}

void obj_stats(struct obj_backend *b, obj_stat_emit_fn emit, void *arg)
{
	if (b && b->stats)
		b->stats(b, emit, arg);
}

const char *const obj_op_names[OBJ_OP_COUNT] = {
	"get", "head", "put", "put_if_absent", "delete", "list",
};

struct obj_backend *obj_wrapper_inner(struct obj_backend *b)
{
	static const char *const wrappers[] = { "crypt", "dcache", "retry", "metrics", "fault" };
	for (size_t i = 0; i < sizeof(wrappers) / sizeof(wrappers[0]); i++)
		if (b->kind && !strcmp(b->kind, wrappers[i]))
			return ((struct obj_wrapper *)b)->inner;
	return NULL;
}

void obj_close(struct obj_backend *b)
{
	if (b)
		b->free(b);
}
