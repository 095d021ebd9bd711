# kv: the LSM engine. Sub-areas keep their own fragments (kv/*.mk).
noinst_LIBRARIES += kv/libkv.a
kv_libkv_a_CPPFLAGS = $(AM_CPPFLAGS) $(ZSTD_CFLAGS)
kv_libkv_a_SOURCES = kv/kv.h kv/kv_int.h kv/kv_ikey.c kv/kv_manifest.c kv/kv_lease.c kv/kv_store.c \
	kv/kv_version.c kv/kv_wal_writer.c kv/kv_flush.c kv/kv_db.c \
	kv/kv_compact.c kv/kv_gc.c kv/kv_follow.c kv/kv_checkpoint.c
KV_LIBS = kv/libkv.a objstore/libobjstore.a util/libutil.a $(ZSTD_LIBS) $(CURL_LIBS) $(CRYPTO_LIBS) $(PTHREAD_LIBS)
