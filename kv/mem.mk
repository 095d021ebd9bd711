# kv memtable, iterators, WAL codec and write batches.
kv_libkv_a_SOURCES += kv/kv_memtable.c kv/kv_pool.c kv/kv_iter.c kv/kv_wal.c kv/kv_batch.c
