#!/bin/sh
# secrets.sh - S3 credentials never leak (docs/testing.md). With the S3 rig
# (skipped otherwise) and unique credentials:
#   * a mount with SHALEFS_LOG=debug doing real work: the secret key and
#     session token appear in no daemon output, and no credential in
#     /proc/PID/cmdline;
#   * failing commands (a wrong secret, an unreachable endpoint, a refused
#     credential option): the secret is in no error message;
#   * `shalefs stats` of the mount does not show it either.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
. "${SHALE_SRCDIR:-.}/tests/torture/torture_lib.sh"
fs_setup secrets
ST=$(fs_s3_store secrets)
[ -n "$ST" ] || { echo "SKIP: the S3 rig is not configured"; exit 77; }
fs_format "$ST" -o "$(fs_s3_opts)"
MNT=$FS_TMP/mnt
SECRET=$AWS_SECRET_ACCESS_KEY
TOKEN=SessionTokenMustNotLeak0123456789
OUT=$FS_TMP/all-output

leak_check() {
	# $1: file, $2: what
	for s in "$SECRET" "$TOKEN" "${3:-$SECRET}"; do
		if grep -F -q -- "$s" "$1"; then
			grep -F -n -- "$s" "$1" | head -3 >&2
			fs_die "$2: a credential appears"
		fi
	done
}

# 1. A working mount, debug logging.
# (The rig ignores session tokens it does not know? RGW rejects unknown
# tokens, so the token is only tested on the failing paths below.)
mkdir -p "$MNT"
SHALEFS_LOG=debug "$SHALEFS" mount -f -o "$(fs_s3_opts)" "$ST" "$MNT" >"$FS_TMP/daemon.out" 2>&1 &
pid=$!
FS_PIDS="$FS_PIDS $pid"
FS_MOUNTS="$FS_MOUNTS $MNT"
i=0
while ! mountpoint -q "$MNT"; do
	kill -0 "$pid" 2>/dev/null || { cat "$FS_TMP/daemon.out" >&2; fs_die "mount failed"; }
	i=$((i + 1)); [ $i -lt 600 ] || fs_die "mount timeout"; sleep 0.1
done
tr '\0' ' ' </proc/$pid/cmdline >"$FS_TMP/cmdline"
leak_check "$FS_TMP/cmdline" "/proc/$pid/cmdline" "$AWS_ACCESS_KEY_ID"
echo hello >"$MNT/f" && sync "$MNT/f"
dd if=/dev/urandom of="$MNT/big" bs=64k count=40 2>/dev/null && sync "$MNT/big"
mv "$MNT/f" "$MNT/g" && rm "$MNT/big" && sync "$MNT/g"
for f in "" --raw --json; do
	"$SHALEFS" stats $f "$MNT" >"$FS_TMP/stats" 2>&1 || true
	leak_check "$FS_TMP/stats" "shalefs stats $f"
done
fusermount3 -u "$MNT"
tt_wait_exit "$pid" 60 || fs_die "the daemon did not exit"
[ -s "$FS_TMP/daemon.out" ] || fs_die "no debug output at all: is SHALEFS_LOG=debug honoured?"
leak_check "$FS_TMP/daemon.out" "the debug log of a mount"

# 2. Failing paths.
: >"$OUT"
env AWS_SECRET_ACCESS_KEY="$SECRET-wrong" SHALEFS_LOG=debug timeout 120 \
	"$SHALEFS" fsck -o "$(fs_s3_opts)" "$ST" >>"$OUT" 2>&1 || true
env AWS_SESSION_TOKEN="$TOKEN" SHALEFS_LOG=debug timeout 120 \
	"$SHALEFS" fsck -o "$(fs_s3_opts)" "$ST" >>"$OUT" 2>&1 || true
env SHALEFS_LOG=debug timeout 120 "$SHALEFS" fsck -o endpoint=http://127.0.0.1:1,path_style \
	"$ST" >>"$OUT" 2>&1 || true
"$SHALEFS" mount -o "secret_key=$SECRET" "$ST" "$MNT" >>"$OUT" 2>&1 || true
"$SHALEFS" mount -o "aws_session_token=$TOKEN" "$ST" "$MNT" >>"$OUT" 2>&1 || true
[ -s "$OUT" ] || fs_die "the failing commands printed nothing"
leak_check "$OUT" "an error message" "$SECRET-wrong"
echo "secrets: no credential in debug logs, /proc/PID/cmdline, stats or error messages"
