#!/bin/sh
# crash.sh - kill -9 the shalefs daemon at random moments while an
# fsync-recording workload runs (crash_work), remount, and check that
# everything acknowledged (fsync returned) is there, byte for byte; then
# fsck the store. CRASH_ROUNDS rounds (default 20), then CRASH_BULK_ROUNDS
# (default 10) with files up to 6 MiB on a mount with wal_bypass_mb=1, so
# their data goes to the engine unlogged (kv_write_unlogged): acknowledged
# by fsync through a memtable flush instead of the WAL. Then
# CRASH_CHURN_ROUNDS (default 6) of the same with data tables on small
# memtables (data_min_kb=64, data_rewrite_pct=95), where the writes stop before the kill so that
# compactions run and copy values out of data tables the deleted versions
# left mostly dead while the kill comes (the rounds must have seen such
# copies). Last, files
# closed without fsync must survive a crash after flush_interval_ms.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup crash
WORK=${SHALE_BUILDDIR:-.}/tests/fs/crash_work
ROUNDS=${CRASH_ROUNDS:-20}
BULK_ROUNDS=${CRASH_BULK_ROUNDS:-10}
CHURN_ROUNDS=${CRASH_CHURN_ROUNDS:-6}
mkdir -p "$FS_TMP/store"
ST="file://$FS_TMP/store"
fs_format "$ST"
MNT=$FS_TMP/mnt
LOG=$FS_TMP/acked.log
: >"$LOG"

unlogged=0 copied=0
r=1
while [ $r -le $((ROUNDS + BULK_ROUNDS + CHURN_ROUNDS)) ]; do
	work=1
	if [ $r -le "$ROUNDS" ]; then
		fs_mount "$ST" "$MNT"
	elif [ $r -le $((ROUNDS + BULK_ROUNDS)) ]; then
		fs_mount "$ST" "$MNT" -o wal_bypass_mb=1,wal_bypass_quiet_ms=0
		export CRASH_WORK_MAXSZ=$((6 << 20))
	else
		fs_mount "$ST" "$MNT" -o wal_bypass_mb=1,wal_bypass_quiet_ms=0,memtable_mb=4,data_min_kb=64,data_rewrite_pct=95
		export CRASH_WORK_MAXSZ=$((6 << 20))
		work=0
	fi
	mkdir -p "$MNT/w"
	"$WORK" verify "$MNT/w" "$LOG" || fs_die "round $r: acknowledged data lost after the crash of round $((r - 1))"
	"$WORK" run "$r" "$MNT/w" "$LOG" 2>/dev/null &
	wp=$!
	if [ "$work" = 0 ]; then
		# Churn: 1.5 s of writes, then the writer stops and the
		# compactor, which waits while writes fill memtables (BULK
		# LOADS) and reads run (READS FIRST, kv_compact.c), gets 2 s
		# later to its jobs, copies included: the crash comes 2.5 ..
		# 5.5 s after the writes.
		sleep 1.5
		kill "$wp" 2>/dev/null || true
		wait "$wp" 2>/dev/null || true
		sleep "$(awk -v s="$r" 'BEGIN { srand(s); printf "%.2f", 2.5 + rand() * 3 }')"
	else
		# 0.3 .. 2.2 s of work, then the crash.
		sleep "$(awk -v s="$r" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 1.9 }')"
	fi
	if [ $r -gt "$ROUNDS" ] && [ $r -le $((ROUNDS + BULK_ROUNDS)) ]; then
		n=$(fs_stat "$MNT" unlogged_batches)
		unlogged=$((unlogged + ${n:-0}))
	elif [ $r -gt "$ROUNDS" ]; then
		n=$(fs_stat "$MNT" data_rewrite_bytes)
		copied=$((copied + ${n:-0}))
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
# Without fsync, closed files are durable within flush_interval_ms: the
# kernel sends no FLUSH at close (fs_ops.c), so the last close's RELEASE or
# the write-buffer flusher hands the data to the engine, whose WAL writer
# then has half the interval. 300 small files and one of 3 MiB, closed,
# then kill -9 after 3x the interval (slack for sanitizer builds).
fs_mount "$ST" "$MNT" -o flush_interval_ms=200
mkdir -p "$MNT/u"
head -c 3145728 /dev/urandom >"$FS_TMP/u-big"
head -c 4000 /dev/urandom >"$FS_TMP/u-small"
cp "$FS_TMP/u-big" "$MNT/u/big"
i=0
while [ $i -lt 300 ]; do
	{ cat "$FS_TMP/u-small"; echo "$i"; } >"$MNT/u/$i"
	i=$((i + 1))
done
sleep 0.6
kill -9 "$FS_PID"
wait "$FS_PID" 2>/dev/null || true
FS_PIDS=""
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
fs_mount "$ST" "$MNT"
cmp "$FS_TMP/u-big" "$MNT/u/big" || fs_die "a closed 3 MiB file was lost or changed by a crash 3x flush_interval_ms after its close"
i=0
while [ $i -lt 300 ]; do
	{ cat "$FS_TMP/u-small"; echo "$i"; } | cmp - "$MNT/u/$i" ||
		fs_die "closed file u/$i was lost or changed by a crash 3x flush_interval_ms after its close"
	i=$((i + 1))
done
fs_umount "$MNT"
echo "crash: 301 files closed without fsync survived a kill -9 0.6 s later (flush_interval_ms=200)"

# The bulk rounds must have taken the unlogged path, and the churn rounds
# copied values out of data tables, or they tested nothing new.
[ "$BULK_ROUNDS" = 0 ] || [ "$unlogged" -gt 0 ] || fs_die "the bulk rounds wrote no unlogged batch"
[ "$CHURN_ROUNDS" = 0 ] || [ "$copied" -gt 0 ] || fs_die "the churn rounds copied nothing out of a data table"
echo "crash: $((ROUNDS + BULK_ROUNDS + CHURN_ROUNDS)) kill -9 rounds ($BULK_ROUNDS with $unlogged unlogged batches seen, $CHURN_ROUNDS with $copied bytes copied out of data tables), every acknowledged file identical"
