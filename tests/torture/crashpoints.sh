#!/bin/sh
# crashpoints.sh - systematic crash points (docs/testing.md).
#
# A fixed workload (tort_work fixed: creates, writes, overwrites,
# truncates, renames, hard links, unlinks and fsyncs, recorded in a log
# outside the mount; a `shalefs checkpoint create` while mounted; 6 MiB of
# large files, which with memtable_mb=1 flush the memtable several
# times and trigger an L0 compaction; with wal_bypass_mb=1 those of 1 MiB
# and more go to the engine unlogged, so crash points fall inside the
# memtable flushes that make them durable) runs once on a fresh store with
# SHALEFS_CRASH_COUNT_FILE set, which tells how many store operations (K)
# and successful puts (P) it makes. Then for N in 1..K (step
# CRASHPOINTS_STRIDE; by default about CRASHPOINTS_PER_MODE points per
# mode) and each mode of SHALEFS_CRASH_AFTER_OPS (after, before,
# put-succeeded, the last over 1..P): a fresh store, a mount that
# _exit(99)s at operation N, the workload until the daemon dies, a remount
# without the switch that must show every acknowledged file byte for byte
# and a prefix of the creation chain, then `shalefs fsck` must pass.
#
# Background threads (WAL timer, flusher, compactor, GC) make the exact
# operation sequence vary a little between runs; a point past the end of a
# run is reported as "not reached" and still checked.
#
# On file://, then on s3:// when the rig is configured (tests/rig/rgw-start
# exports; CRASHPOINTS_S3_PER_MODE points per mode, default 4;
# CRASHPOINTS_S3=0 skips it). TT_S3=1 runs only s3://, with the file://
# settings.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
. "${SHALE_SRCDIR:-.}/tests/torture/torture_lib.sh"
fs_setup crashpts
MNT=$FS_TMP/mnt
PER_MODE=${CRASHPOINTS_PER_MODE:-20}
MODES=${CRASHPOINTS_MODES:-"after before put-succeeded"}

# workload STORE LOG: the fixed workload's three phases with a checkpoint
# after the first; stops at the first failure (the daemon died).
workload() {
	"$TT_WORK" fixed 1 "$MNT/p1" "$2" 2>>"$FS_TMP/work.err" || return 1
	tt_cli checkpoint create "$1" cp1 >>"$FS_TMP/work.err" 2>&1 || return 1
	"$TT_WORK" fixed 2 "$MNT/p2" "$2" 2>>"$FS_TMP/work.err" || return 1
	"$TT_WORK" fixed 3 "$MNT/p3" "$2" 2>>"$FS_TMP/work.err" || return 1
}

# sweep: the counting run, then the crash points, on TT_S3's kind of store.
tried=0 reached=0 it=0
sweep() {
OPTS=$(tt_opts "memtable_mb=1,flush_interval_ms=50,wal_bypass_mb=1,wal_bypass_quiet_ms=0")
kind=file; [ "$TT_S3" = 1 ] && kind=s3
# Counting run.
: >"$FS_TMP/count.log"
it=$((it + 1))
ST=$(tt_store "s$it")
tt_start "$ST" "$MNT" "SHALEFS_CRASH_COUNT_FILE=$FS_TMP/count" "$OPTS" ||
	fs_die "counting mount failed (status $TT_RC)"
workload "$ST" "$FS_TMP/count.log" || { cat "$FS_TMP/work.err" >&2; fs_die "the workload failed without a crash point"; }
sleep 1   # let the flusher and compactor catch up, they are part of the workload
unlogged=$(fs_stat "$MNT" unlogged_batches)
[ "${unlogged:-0}" -gt 0 ] || fs_die "the workload wrote no unlogged batch (wal_bypass_mb=1)"
fs_umount "$MNT" "$TT_PID"
tt_start "$ST" "$MNT" "" "$OPTS" || fs_die "remount failed"
tt_verify "$MNT" "counting run" "$FS_TMP/count.log"
fs_umount "$MNT" "$TT_PID"
tt_fsck "$ST" "counting run"
set -- $(cat "$FS_TMP/count")
K=$2 P=$4
echo "crashpoints ($kind): the workload makes $K store operations, $P successful puts, $unlogged unlogged batches"
[ "$K" -gt 0 ] && [ "$P" -gt 0 ] || fs_die "the count file says nothing happened"

for mode in $MODES; do
	max=$K
	[ "$mode" = put-succeeded ] && max=$P
	stride=${CRASHPOINTS_STRIDE:-$(( (max + PER_MODE - 1) / PER_MODE ))}
	[ "$stride" -ge 1 ] || stride=1
	n=1
	while [ "$n" -le "$max" ]; do
		it=$((it + 1))
		ST=$(tt_store "s$it")
		LOG=$FS_TMP/log.$it
		: >"$LOG"
		: >"$FS_TMP/work.err"
		what="crash point ($kind) $mode $n/$max"
		died=0
		if tt_start "$ST" "$MNT" "SHALEFS_CRASH_AFTER_OPS=$n,$mode" "$OPTS"; then
			pid=$TT_PID
			workload "$ST" "$LOG" || true
			if kill -0 "$pid" 2>/dev/null; then
				sleep 1
			fi
			if kill -0 "$pid" 2>/dev/null; then
				# unmounting may itself reach the point (flush, close)
				fusermount3 -u "$MNT" || fs_die "$what: fusermount3 -u failed"
				tt_wait_exit "$pid" 60 || fs_die "$what: the daemon did not exit after unmount"
				case $TT_RC in
				0) ;;
				99) died=1 ;;
				*) tail -20 "$FS_TMP/daemon.log" >&2; fs_die "$what: the daemon exited with $TT_RC at unmount" ;;
				esac
			else
				tt_wait_exit "$pid" 5 || true
				[ "$TT_RC" = 99 ] || { tail -20 "$FS_TMP/daemon.log" >&2; fs_die "$what: the daemon exited with $TT_RC, expected 99"; }
				died=1
				tt_detach "$MNT"
			fi
		else
			[ "$TT_RC" = 99 ] || { tail -20 "$FS_TMP/daemon.log" >&2; fs_die "$what: the mount failed with $TT_RC, expected 99"; }
			died=1
			tt_detach "$MNT"
		fi
		tried=$((tried + 1))
		[ $died = 1 ] && reached=$((reached + 1))
		if ! tt_start "$ST" "$MNT" "" "$OPTS"; then
			tail -20 "$FS_TMP/daemon.log" >&2
			fs_die "$what: the remount after the crash failed (status $TT_RC)"
		fi
		tt_verify "$MNT" "$what" "$LOG"
		fs_umount "$MNT" "$TT_PID"
		tt_fsck "$ST" "$what"
		echo "$what: $( [ $died = 1 ] && echo crashed || echo 'not reached'), $(cat "$FS_TMP/verify.out")"
		[ "$TT_S3" = 1 ] || rm -rf "$FS_TMP/s$it"
		n=$((n + stride))
	done
done
}

sweep
if [ "$TT_S3" != 1 ] && [ "${CRASHPOINTS_S3:-1}" = 1 ] && [ -n "$(fs_s3_store probe)" ]; then
	TT_S3=1
	PER_MODE=${CRASHPOINTS_S3_PER_MODE:-4}
	unset CRASHPOINTS_STRIDE
	sweep
fi
tt_sum crashpoints_tried "$tried"
tt_sum crashpoints_reached "$reached"
echo "crashpoints: $tried crash points tried ($reached reached), every acknowledged byte intact, fsck clean"
