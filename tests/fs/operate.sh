#!/bin/sh
# operate.sh - running shalefs as an administrator does: a mount whose
# daemon died (every command says to run fusermount3 -u), the options
# fstab and systemd add, df and df -i, the size= quota, the version.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup operate
ST="file://$FS_TMP/store"
MP="$FS_TMP/mnt"
S=$SHALEFS
mkdir -p "$MP"

# one_line_fail PATTERN CMD...: non-zero exit, one stderr line matching PATTERN
one_line_fail() {
	pat=$1
	shift
	rc=0
	timeout 60 "$@" >"$FS_TMP/out" 2>"$FS_TMP/err" </dev/null || rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fs_die "exit $rc, expected a failure: $*"
	[ "$(wc -l <"$FS_TMP/err")" -eq 1 ] || { cat "$FS_TMP/err" >&2; fs_die "not one line: $*"; }
	grep -q -- "$pat" "$FS_TMP/err" || { cat "$FS_TMP/err" >&2; fs_die "no '$pat': $*"; }
	echo "ok: $(cat "$FS_TMP/err")"
}

fs_format "$ST"

# ---- a stale mount: the daemon was killed ------------------------------------
fs_mount "$ST" "$MP"
kill -9 "$FS_PID"
wait "$FS_PID" 2>/dev/null || true
FS_PIDS=""
stat "$MP" >/dev/null 2>&1 && fs_die "$MP is not stale after the daemon was killed"
hint="the mount is stale.*run \`fusermount3 -u $MP\`"
one_line_fail "$hint" $S stats "$MP"
one_line_fail "$hint" $S sync "$MP"
one_line_fail "$hint" $S umount "$MP"
one_line_fail "$hint" $S checkpoint create "$MP" c1
one_line_fail "$hint" $S mount "$ST" "$MP"
fusermount3 -u "$MP" || fs_die "fusermount3 -u of the stale mount failed"
