#!/bin/sh
# replay.sh PROGRAM CORPUS_DIR - run a fuzz target's replay build over its
# committed corpus (every file in CORPUS_DIR, once). Used by `make check`
# for every fuzz target; fails if the program fails or the corpus is empty.
set -eu
if [ $# -ne 2 ]; then
	echo "usage: $0 PROGRAM CORPUS_DIR" >&2
	exit 2
fi
prog=$1
corpus=$2
if [ ! -x "$prog" ]; then
	echo "$0: $prog: not built" >&2
	exit 1
fi
if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
	echo "$0: $corpus: missing or empty corpus" >&2
	exit 1
fi
# Corrupt inputs log one line each; sanitizer reports go to the same
# stderr, so it is kept (the test log holds both).
exec "$prog" "$corpus"
