#!/bin/sh
# Replay the store-URL/fault-spec fuzz corpus through tests/fuzz/fuzz_url (make check).
exec "${SHALE_SRCDIR:-.}/tests/fuzz/replay.sh" "${SHALE_BUILDDIR:-.}/tests/fuzz/fuzz_url" \
	"${SHALE_SRCDIR:-.}/tests/fuzz/corpus/url"
