# kv SSTs: builder, reader, bloom filter, block cache, ids (kv_int.h "SSTs").
kv_libkv_a_SOURCES += kv/kv_sst_build.c kv/kv_sst_read.c kv/kv_sst_id.c kv/kv_bloom.c \
	kv/kv_cache.c
