# objstore: the storage contract, its backends and wrappers, and the S3
# backend (libcurl + OpenSSL SigV4).
noinst_LIBRARIES += objstore/libobjstore.a
objstore_libobjstore_a_CPPFLAGS = $(AM_CPPFLAGS) $(CURL_CFLAGS) $(CRYPTO_CFLAGS)
objstore_libobjstore_a_SOURCES = objstore/objstore.h objstore/objstore_int.h \
	objstore/obj_util.c objstore/obj_url.c objstore/obj_local.c objstore/obj_local_fds.c objstore/obj_local_direct.c objstore/obj_mem.c \
	objstore/obj_retry.c objstore/obj_fault.c objstore/obj_metrics.c objstore/obj_cost.c \
	objstore/obj_dcache.c objstore/obj_dcache_index.c objstore/obj_dcache_file.c \
	objstore/obj_crypt.c objstore/obj_crypt_key.c \
	objstore/obj_s3_int.h \
	objstore/obj_s3.c objstore/obj_s3_req.c \
	objstore/obj_s3_sign.c \
	objstore/obj_s3_xml.c \
	objstore/obj_s3_conf.c \
	objstore/obj_s3_json.c \
	objstore/obj_s3_creds.c \
	objstore/obj_s3_cred.c \
	objstore/obj_s3_cred_src.c \
	objstore/obj_s3_cred_parse.c \
	objstore/obj_s3_cred_io.c
OBJ_LIBS = objstore/libobjstore.a util/libutil.a $(CURL_LIBS) $(CRYPTO_LIBS) $(PTHREAD_LIBS)
