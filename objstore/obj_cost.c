/*
 * obj_cost.c - what the store's requests are for: the thread-local
 * purpose tag, and the rules that charge a request to a purpose and to a
 * billing class (objstore.h, "what requests cost"). The metrics layer
 * (obj_metrics.c) counts by them and makes the estimate, obj_cost_stats.
 *
 * THREADING
 *   The tag is thread-local; the rules are pure functions.
 */
#include "objstore/objstore_int.h"

#include <string.h>

const char *const obj_purpose_names[OBJ_PURPOSE_COUNT] = {
	"none", "wal", "flush", "compaction", "segment", "gc", "read", "manifest", "other",
};

static _Thread_local enum obj_purpose obj_cost_tag = OBJ_PURPOSE_NONE;

enum obj_purpose obj_purpose_set(enum obj_purpose p)
{
	enum obj_purpose old = obj_cost_tag;

	obj_cost_tag = p < OBJ_PURPOSE_COUNT ? p : OBJ_PURPOSE_OTHER;
	return old;
}

enum obj_purpose obj_purpose_get(void)
{
	return obj_cost_tag;
}

enum obj_class obj_cost_class(enum obj_op op)
{
	switch (op) {
	case OBJ_OP_PUT:
	case OBJ_OP_PUT_IF_ABSENT:
	case OBJ_OP_LIST:
		return OBJ_CLASS_PUT;
	case OBJ_OP_DELETE:
		return OBJ_CLASS_DELETE;
	default:
		return OBJ_CLASS_GET;
	}
}

enum obj_purpose obj_cost_purpose(enum obj_purpose tag, enum obj_op op, const char *name)
{
	static const char *const meta[] = { "manifest/", "lease/", "readers/" };

	if (tag == OBJ_PURPOSE_GC)
		return tag;
	for (size_t i = 0; name && i < sizeof(meta) / sizeof(meta[0]); i++)
		if (strncmp(name, meta[i], strlen(meta[i])) == 0)
			return OBJ_PURPOSE_MANIFEST;
	if (tag != OBJ_PURPOSE_NONE)
		return tag;
	return obj_cost_class(op) == OBJ_CLASS_GET ? OBJ_PURPOSE_READ : OBJ_PURPOSE_OTHER;
}
