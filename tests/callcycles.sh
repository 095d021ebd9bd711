#!/bin/sh
# callcycles.sh - no two source files of a module call each other, directly
# or around a ring (scripts/callcycles): each module's files stay
# ordered, every call going to a file below the caller. Reads the symbol
# tables of the object files this build made, so it needs nm (skipped
# without it) and the build tree (SHALE_BUILDDIR, set by make check).
set -eu
src=${SHALE_SRCDIR:-.}
build=${SHALE_BUILDDIR:-$(pwd)}
if ! command -v nm >/dev/null 2>&1 || ! command -v bash >/dev/null 2>&1; then
	echo "callcycles.sh: nm or bash not found; skipped"
	exit 77
fi
exec bash "$src/scripts/callcycles" -b "$build" kv fs objstore cli util
