#!/bin/sh
# ro_fence.sh - read-only mounts, checkpoints and fencing:
#   * a read-only mount of a live store sees what the writer fsync'd, and
#     refuses changes with EROFS;
#   * `shalefs checkpoint create` while the writer is mounted; a mount at
#     the checkpoint shows the data as it was, later changes do not show;
#   * a second writer (-o takeover) fences the first: the first turns read-only (EROFS
#     for changes, reads keep working, one log line says why), and nothing
#     it had fsync'd is lost.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup rofence
mkdir -p "$FS_TMP/store"
ST="file://$FS_TMP/store"
fs_format "$ST"
A=$FS_TMP/a B=$FS_TMP/b C=$FS_TMP/c D=$FS_TMP/d

expect_erofs() {
	if out=$("$@" 2>&1); then
		fs_die "succeeded, expected EROFS: $*"
	fi
	echo "$out" | grep -q "Read-only file system" || fs_die "expected EROFS from '$*', got: $out"
}

fs_mount "$ST" "$A" -o flush_interval_ms=100
PA=$FS_PID
echo version1 > "$A/f"
mkdir "$A/dir"
sync "$A/f"         # fsync (sync FILE calls fsync)
sync -f "$A"        # syncfs

# Read-only follower.
fs_mount "$ST" "$B" -o ro,attr_timeout=0,entry_timeout=0
PB=$FS_PID
[ "$(cat "$B/f")" = version1 ] || fs_die "read-only mount does not show the fsync'd file"
expect_erofs touch "$B/new"
expect_erofs mkdir "$B/newdir"
expect_erofs sh -c "echo x > '$B/f'"
expect_erofs rm "$B/f"
fs_umount "$B" "$PB"

# Checkpoint while the writer is mounted.
"$SHALEFS" checkpoint create "$ST" snap1 || fs_die "checkpoint create failed"
"$SHALEFS" checkpoint list "$ST" | grep -q '^snap1' || fs_die "checkpoint list does not show snap1"
echo version2 > "$A/f"
sync "$A/f"
fs_mount "$ST" "$C" -o checkpoint=snap1
PC=$FS_PID
[ "$(cat "$C/f")" = version1 ] || fs_die "the checkpoint mount shows '$(cat "$C/f")', expected version1"
expect_erofs touch "$C/new"
fs_umount "$C" "$PC"
"$SHALEFS" checkpoint delete "$ST" snap1 || fs_die "checkpoint delete failed"
if "$SHALEFS" checkpoint delete "$ST" snap1 2>/dev/null; then
	fs_die "deleting a deleted checkpoint succeeded"
fi

# Fencing: a second writer.
echo acknowledged > "$A/acked"
sync "$A/acked"
fs_mount "$ST" "$D" -o takeover
PD=$FS_PID
[ "$(cat "$D/acked")" = acknowledged ] || fs_die "the new writer lost an fsync'd file"
[ "$(cat "$D/f")" = version2 ] || fs_die "the new writer lost an fsync'd overwrite"
fs_wait_fenced "$A"
expect_erofs mkdir "$A/newdir2"
expect_erofs sh -c "echo x > '$A/g'"
[ "$(cat "$A/f")" = version2 ] || fs_die "reads stopped working on the fenced mount"
ls "$A/dir" >/dev/null || fs_die "readdir stopped working on the fenced mount"
n=$(grep -c "turned read-only" "$FS_TMP/daemon.log" || true)
[ "$n" = 1 ] || fs_die "expected one 'turned read-only' log line, found $n"
echo new-writer > "$D/after"
fs_umount "$D" "$PD"
# The fenced daemon must still exit on unmount (its status may report
# the fencing).
fusermount3 -u "$A"
wait "$PA" || true
FS_PIDS=""
fs_mount "$ST" "$D"
[ "$(cat "$D/after")" = new-writer ] || fs_die "data of the new writer lost"
fs_umount "$D"
echo "ro_fence: read-only follower, checkpoint mount and fencing behave"
