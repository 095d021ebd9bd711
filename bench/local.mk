# Benchmarks: programs that print figures; never part of `make check`.
noinst_PROGRAMS += bench/objstore_bench
bench_objstore_bench_LDADD = $(OBJ_LIBS)
EXTRA_DIST += bench/s3_bench bench/crypt bench/scrub

# kvbench: db_bench-style workloads over the engine, and the same harness
# over LevelDB and RocksDB when configure found them (bench/kvbench runs
# all three and prints the table; docs/benchmarks.md).
KVBENCH_COMMON = bench/kvbench.h bench/kvbench_main.c
noinst_PROGRAMS += bench/kvbench_shale
bench_kvbench_shale_SOURCES = bench/kvbench_shale.c $(KVBENCH_COMMON)
bench_kvbench_shale_LDADD = $(KV_LIBS)
if HAVE_LEVELDB
noinst_PROGRAMS += bench/kvbench_leveldb
bench_kvbench_leveldb_SOURCES = bench/kvbench_leveldb.c $(KVBENCH_COMMON)
bench_kvbench_leveldb_LDADD = util/libutil.a $(LEVELDB_LIBS) $(PTHREAD_LIBS)
endif
if HAVE_ROCKSDB
noinst_PROGRAMS += bench/kvbench_rocksdb
bench_kvbench_rocksdb_SOURCES = bench/kvbench_rocksdb.c $(KVBENCH_COMMON)
bench_kvbench_rocksdb_LDADD = util/libutil.a $(ROCKSDB_LIBS) $(PTHREAD_LIBS)
endif
EXTRA_DIST += bench/kvbench

# fsbench: filesystem workloads over any mount point (bench/fsbench runs one
# target, bench/compare runs them all, bench/ab times builds of shalefs
# against each other on one workload; docs/benchmarks.md).
noinst_PROGRAMS += bench/fsbench_ops
bench_fsbench_ops_SOURCES = bench/fsbench_ops.c
# fuse_floor: a null FUSE filesystem, fsbench's `floor` target: what the
# kernel's round trips alone cost on the small-file workloads.
noinst_PROGRAMS += bench/fuse_floor
bench_fuse_floor_SOURCES = bench/fuse_floor.c
bench_fuse_floor_CPPFLAGS = $(AM_CPPFLAGS) $(FUSE_CFLAGS)
bench_fuse_floor_LDADD = $(FUSE_LIBS) $(PTHREAD_LIBS)
EXTRA_DIST += bench/cost bench/fsbench bench/compare bench/ab bench/fsync_under_bulk bench/bigdir \
	bench/delay_proxy.py bench/delay_proxy_check
