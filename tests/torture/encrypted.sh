#!/bin/sh
# encrypted.sh - the torture suite's kill -9 rounds and crash points on an
# encrypted store (format --encrypt, a fresh master key; TT_KEY in
# torture_lib.sh): nothing acknowledged is lost, fsck is clean after each
# round. ENC_KILL_ROUNDS (default 5) and ENC_CRASHPOINTS (per mode,
# default 3) set the sizes; `SHALE_TORTURE_ENCRYPT=1 scripts/torture` runs
# the whole short form encrypted.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
TT_KEY=$(mktemp /tmp/shalefs-torture-key.XXXXXX)
trap 'rm -f "$TT_KEY"' EXIT
head -c 32 /dev/urandom >"$TT_KEY"
chmod 600 "$TT_KEY"
export TT_KEY
KILL_ROUNDS=${ENC_KILL_ROUNDS:-5} sh "$here/kill.sh"
CRASHPOINTS_PER_MODE=${ENC_CRASHPOINTS:-3} sh "$here/crashpoints.sh"
echo "encrypted: kill -9 rounds and crash points on an encrypted store: nothing acknowledged lost"
