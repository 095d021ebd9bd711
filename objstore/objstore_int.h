/*
 * objstore_int.h - internals shared by the objstore wrappers. Never
 * included from outside objstore/.
 */
#ifndef SHALE_OBJSTORE_INT_H
#define SHALE_OBJSTORE_INT_H

#include "objstore/objstore.h"

#include <sys/types.h>

/* Every wrapper starts with this, so generic code (obj_fault_set_enabled,
 * obj_stats) can walk a stack from the outermost layer inward. */
struct obj_wrapper {
	struct obj_backend base;          /* must be first */
	struct obj_backend *inner;        /* owned */
};

/* Inner backend of b if b is one of our wrappers, else NULL. */
struct obj_backend *obj_wrapper_inner(struct obj_backend *b);

/* Names of the operations, for counters and messages. */
enum obj_op {
	OBJ_OP_GET,
	OBJ_OP_HEAD,
	OBJ_OP_PUT,
	OBJ_OP_PUT_IF_ABSENT,
	OBJ_OP_DELETE,
	OBJ_OP_LIST,
	OBJ_OP_COUNT
};
extern const char *const obj_op_names[OBJ_OP_COUNT];

/*
 * The file:// backend's cache of open object files (obj_local_fds.c).
 * obj_fds_get and obj_fds_add return a pinned entry (or NULL: not
 * cached / no memory); every pinned entry goes back through
 * obj_fds_release. obj_fds_forget unhooks name (only if it is still the
 * entry `only`, when given); pinned holders keep a working descriptor.
 */
#define OBJ_LOCAL_FDS 64
struct obj_fds;
struct obj_fd;
struct obj_fds *obj_fds_create(void);
void obj_fds_free(struct obj_fds *c);
struct obj_fd *obj_fds_get(struct obj_fds *c, const char *name);
struct obj_fd *obj_fds_add(struct obj_fds *c, const char *name, int fd, nlink_t nlink);
void obj_fds_release(struct obj_fds *c, struct obj_fd *f);
void obj_fds_forget(struct obj_fds *c, const char *name, const struct obj_fd *only);
int obj_fd_fd(const struct obj_fd *f);
/* Whether the object file still has the link count it was opened with. */
int obj_fd_valid(const struct obj_fd *f, nlink_t nlink);

/*
 * How the file:// backend writes an object's bytes into a fresh temp file
 * (obj_local_direct.c): large objects with O_DIRECT through a bounded pool
 * of bounce buffers, small ones (and any on a filesystem that refuses
 * O_DIRECT) buffered. Thread-safe; returns 0 or -errno.
 */
struct obj_direct;
struct obj_direct *obj_direct_create(void);
void obj_direct_free(struct obj_direct *d);
int obj_direct_write(struct obj_direct *d, int fd, const void *data, size_t len);

#endif /* SHALE_OBJSTORE_INT_H */
