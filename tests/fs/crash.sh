#!/bin/sh
# crash.sh - kill -9 the shalefs daemon at random moments while an
# fsync-recording workload runs (crash_work), remount, and check that
# everything acknowledged (fsync returned) is there, byte for byte; then
# fsck the store. CRASH_ROUNDS rounds (default 20).
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup crash
WORK=${SHALE_BUILDDIR:-.}/tests/fs/crash_work
ROUNDS=${CRASH_ROUNDS:-20}
mkdir -p "$FS_TMP/store"
ST="file://$FS_TMP/store"
MNT=$FS_TMP/mnt
LOG=$FS_TMP/acked.log
: >"$LOG"

r=1
while [ $r -le "$ROUNDS" ]; do
	fs_mount "$ST" "$MNT"
	mkdir -p "$MNT/w"
	"$WORK" verify "$MNT/w" "$LOG" || fs_die "round $r: acknowledged data lost after the crash of round $((r - 1))"
	"$WORK" run "$r" "$MNT/w" "$LOG" 2>/dev/null &
	wp=$!
	# 0.3 .. 2.2 s of work, then the crash.
	sleep "$(awk -v s="$r" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 1.9 }')"
	kill -9 "$FS_PID"
	wait "$FS_PID" 2>/dev/null || true
	FS_PIDS=""
	wait "$wp" 2>/dev/null || true
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
	echo "round $r: crashed after $(grep -c '^F' "$LOG") acknowledged file versions"
	r=$((r + 1))
done
fs_mount "$ST" "$MNT"
"$WORK" verify "$MNT/w" "$LOG" || fs_die "acknowledged data lost after the last crash"
fs_umount "$MNT"
if "$SHALEFS" fsck "$ST" >"$FS_TMP/fsck.out" 2>&1; then
	echo "fsck: clean"
else
	cat "$FS_TMP/fsck.out" >&2
	fs_die "fsck found problems after $ROUNDS crashes"
fi
echo "crash: $ROUNDS kill -9 rounds, every acknowledged file identical"
