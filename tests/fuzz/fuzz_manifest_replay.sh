#!/bin/sh
# Replay the manifest fuzz corpus through tests/fuzz/fuzz_manifest (make check).
exec "${SHALE_SRCDIR:-.}/tests/fuzz/replay.sh" "${SHALE_BUILDDIR:-.}/tests/fuzz/fuzz_manifest" \
	"${SHALE_SRCDIR:-.}/tests/fuzz/corpus/manifest"
