#!/bin/sh
# crash.sh - kill -9 the shalefs daemon at random moments while an
# fsync-recording workload runs (crash_work), remount, and check that
# everything acknowledged (fsync returned) is there, byte for byte; then
# fsck the store. CRASH_ROUNDS rounds (default 20), then CRASH_BULK_ROUNDS
# (default 10) with files up to 6 MiB on a mount with wal_bypass_mb=1, so
# their data goes to the engine unlogged (kv_write_unlogged): acknowledged
# by fsync through a memtable flush instead of the WAL.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup crash
WORK=${SHALE_BUILDDIR:-.}/tests/fs/crash_work
ROUNDS=${CRASH_ROUNDS:-20}
BULK_ROUNDS=${CRASH_BULK_ROUNDS:-10}
mkdir -p "$FS_TMP/store"
ST="file://$FS_TMP/store"
MNT=$FS_TMP/mnt
LOG=$FS_TMP/acked.log
: >"$LOG"

unlogged=0
r=1
while [ $r -le $((ROUNDS + BULK_ROUNDS)) ]; do
	if [ $r -le "$ROUNDS" ]; then
		fs_mount "$ST" "$MNT"
	else
		fs_mount "$ST" "$MNT" -o wal_bypass_mb=1,wal_bypass_quiet_ms=0
		export CRASH_WORK_MAXSZ=$((6 << 20))
	fi
	mkdir -p "$MNT/w"
	"$WORK" verify "$MNT/w" "$LOG" || fs_die "round $r: acknowledged data lost after the crash of round $((r - 1))"
	"$WORK" run "$r" "$MNT/w" "$LOG" 2>/dev/null &
	wp=$!
	# 0.3 .. 2.2 s of work, then the crash.
	sleep "$(awk -v s="$r" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 1.9 }')"
	if [ $r -gt "$ROUNDS" ]; then
		n=$("$SHALEFS" stats "$MNT" 2>/dev/null | sed -n 's/^unlogged_batches: //p')
		unlogged=$((unlogged + ${n:-0}))
	fi
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
# The bulk rounds must have taken the unlogged path, or they tested nothing new.
[ "$BULK_ROUNDS" = 0 ] || [ "$unlogged" -gt 0 ] || fs_die "the bulk rounds wrote no unlogged batch"
echo "crash: $((ROUNDS + BULK_ROUNDS)) kill -9 rounds ($BULK_ROUNDS with $unlogged unlogged batches seen), every acknowledged file identical"
