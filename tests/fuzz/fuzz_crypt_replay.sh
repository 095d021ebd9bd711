#!/bin/sh
# Replay the encryption fuzz corpus through tests/fuzz/fuzz_crypt (make check).
exec "${SHALE_SRCDIR:-.}/tests/fuzz/replay.sh" "${SHALE_BUILDDIR:-.}/tests/fuzz/fuzz_crypt" \
	"${SHALE_SRCDIR:-.}/tests/fuzz/corpus/crypt"
