/*
 * objstore_int.h - internals shared by the objstore wrappers. Never
 * included from outside objstore/.
 */
#ifndef SHALE_OBJSTORE_INT_H
#define SHALE_OBJSTORE_INT_H

#include "objstore/objstore.h"

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

#endif /* SHALE_OBJSTORE_INT_H */
