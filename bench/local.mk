# Benchmarks: programs that print figures; never part of `make check`.
noinst_PROGRAMS += bench/objstore_bench
bench_objstore_bench_LDADD = $(OBJ_LIBS)
