#!/bin/sh
# Replay the command-line/mount-option fuzz corpus through tests/fuzz/fuzz_mountopt (make check).
exec "${SHALE_SRCDIR:-.}/tests/fuzz/replay.sh" "${SHALE_BUILDDIR:-.}/tests/fuzz/fuzz_mountopt" \
	"${SHALE_SRCDIR:-.}/tests/fuzz/corpus/mountopt"
