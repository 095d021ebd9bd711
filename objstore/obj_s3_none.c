/*
 * obj_s3_none.c - placeholder until the S3 backend lands (objstore/obj_s3.c
 * replaces this file; delete it from objstore/local.mk then).
 */
#include "objstore/objstore.h"

#include <errno.h>

int obj_s3_create(struct obj_backend **out, const char *bucket, const char *prefix,
		  const struct obj_s3_config *conf)
{
	(void)prefix;
	(void)conf;
	*out = NULL;
	return obj_fail(-ENOTSUP, -1, "open", bucket,
			"the S3 backend is not built yet in this version (use file:///abs/dir)");
}
