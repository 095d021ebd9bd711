# kv: the LSM engine.
noinst_LIBRARIES += kv/libkv.a
kv_libkv_a_CPPFLAGS = $(AM_CPPFLAGS) $(ZSTD_CFLAGS)
kv_libkv_a_SOURCES = kv/kv.h kv/kv_int.h kv/kv_ikey.c kv/kv_manifest.c kv/kv_lease.c kv/kv_store.c \
	kv/kv_corrupt.c kv/kv_health.c kv/kv_pending.c kv/kv_snapshot.c kv/kv_replay.c \
	kv/kv_version.c kv/kv_wal_writer.c kv/kv_flush.c kv/kv_flush_build.c kv/kv_db.c \
	kv/kv_compact.c kv/kv_reclaim.c kv/kv_scrub.c kv/kv_repair.c kv/kv_gc.c kv/kv_follow.c kv/kv_checkpoint.c
# Memtable, iterators, WAL codec and write batches.
kv_libkv_a_SOURCES += kv/kv_memtable.c kv/kv_pool.c kv/kv_iter.c kv/kv_wal.c kv/kv_batch.c
# SSTs: builder, blocks, reader, in-memory checker, read-ahead planner,
# bloom filter, block cache, ids (kv_int.h "SSTs" and the sections after it).
kv_libkv_a_SOURCES += kv/kv_sst_build.c kv/kv_sst_block.c kv/kv_sst_read.c kv/kv_sst_rebuild.c kv/kv_sst_check.c \
	kv/kv_readahead.c kv/kv_sst_id.c kv/kv_bloom.c kv/kv_cache.c kv/kv_ref.c
KV_LIBS = kv/libkv.a objstore/libobjstore.a util/libutil.a $(ZSTD_LIBS) $(CURL_LIBS) $(CRYPTO_LIBS) $(PTHREAD_LIBS)
