# objstore: the S3 backend (libcurl + OpenSSL SigV4). Kept apart from
# objstore/local.mk so the S3 work merges without conflicts.
objstore_libobjstore_a_SOURCES += \
	objstore/obj_s3_int.h \
	objstore/obj_s3.c \
	objstore/obj_s3_sign.c \
	objstore/obj_s3_xml.c \
	objstore/obj_s3_conf.c
EXTRA_DIST += bench/s3_bench
