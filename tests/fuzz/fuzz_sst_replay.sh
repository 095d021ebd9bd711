#!/bin/sh
# Replay the committed SST fuzz corpus through the decoder (make check).
# Corrupt inputs log one line each; they go to the test's .log file.
#
# To fuzz for real (clang + libFuzzer), from the source tree:
#   clang -g -O1 -fsanitize=fuzzer,address,undefined -DSHALE_LIBFUZZER \
#     -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -D_GNU_SOURCE -I. \
#     tests/fuzz/fuzz_sst.c kv/kv_sst_check.c kv/kv_sst_read.c kv/kv_sst_block.c \
#     kv/kv_readahead.c kv/kv_sst_build.c kv/kv_sst_id.c kv/kv_bloom.c kv/kv_cache.c \
#     kv/kv_ikey.c util/util_log.c util/util_misc.c \
#     -lzstd -lpthread -o /tmp/fuzz_sst
#   mkdir -p /tmp/sst-corpus && /tmp/fuzz_sst -close_fd_mask=2 -max_total_time=300 \
#     /tmp/sst-corpus tests/fuzz/corpus/sst
set -e
srcdir=${SHALE_SRCDIR:-.}
exec ./tests/fuzz/fuzz_sst "$srcdir/tests/fuzz/corpus/sst"
