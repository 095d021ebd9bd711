#!/bin/sh
# Replay the WAL fuzz corpus through tests/fuzz/fuzz_wal (make check).
exec "${SHALE_SRCDIR:-.}/tests/fuzz/replay.sh" "${SHALE_BUILDDIR:-.}/tests/fuzz/fuzz_wal" \
	"${SHALE_SRCDIR:-.}/tests/fuzz/corpus/wal"
