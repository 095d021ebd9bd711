#!/bin/sh
# kill.sh - random kill -9 rounds (docs/testing.md).
#
# KILL_ROUNDS rounds (default 20) on one store. Each round mounts it (with
# SHALEFS_FAULTS store errors, cancellations and latency in every other
# round), runs a mixed workload (tort_work random: small and large files, random
# overwrites, truncates, renames, hard links, unlinks, fsyncs) in a fresh
# directory and kills the daemon with SIGKILL after a random 0.3-2.2 s.
# Then a mount without faults verifies what was acknowledged (tort_work
# verify: byte-identical files, acknowledged unlinks, prefix chains): this
# round's facts, and every KILL_VERIFY_ALL-th round (10) and at the end
# those of all rounds so far; it unmounts cleanly and `shalefs fsck` checks the store (fsck wants a
# store after a clean unmount: a crash legitimately leaves orphans - files
# unlinked while open - that the next mount reclaims). KILL_SEED varies the timing and faults between runs.
# Rounds 3, 4, 7, 8, ... mount with wal_bypass_mb=1, so the large files
# (0.5-1.5 MiB) go to the engine unlogged (kv_write_unlogged), with and
# without store faults; the other rounds keep everything on the WAL.
#
# On s3:// when TT_S3=1 and the rig is configured (tests/rig/rgw-start).
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
. "${SHALE_SRCDIR:-.}/tests/torture/torture_lib.sh"
fs_setup kill
ROUNDS=${KILL_ROUNDS:-20}
SEED=${KILL_SEED:-1}
MNT=$FS_TMP/mnt
ST=$(tt_store store)
OPTS_WAL=$(tt_opts "memtable_mb=2,flush_interval_ms=100")
OPTS_BULK=$(tt_opts "memtable_mb=2,flush_interval_ms=100,wal_bypass_mb=1,wal_bypass_quiet_ms=0")
LOGS=""
UNLOGGED=0

r=1
while [ "$r" -le "$ROUNDS" ]; do
	env_faults=""
	OPTS=$OPTS_WAL
	[ $(((r - 1) % 4)) -ge 2 ] && OPTS=$OPTS_BULK
	if [ $((r % 2)) = 1 ]; then
		env_faults="SHALEFS_FAULTS=seed=$((SEED * 1000 + r)),error=0.05,cancel=0.01,latency_ms=0-3"
	fi
	tt_start "$ST" "$MNT" "$env_faults" "$OPTS" ||
		{ tail -20 "$FS_TMP/daemon.log" >&2; fs_die "round $r: mount failed (status $TT_RC)"; }
	pid=$TT_PID
	LOGS="$LOGS $FS_TMP/log.$r"
	: >"$FS_TMP/log.$r"
	"$TT_WORK" random "$((SEED * 1000 + r))" "$MNT/r$r" "$FS_TMP/log.$r" 2>>"$FS_TMP/work.err" &
	wp=$!
	sleep "$(awk -v s="$((SEED * 1000 + r))" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 1.9 }')"
	kill -0 "$wp" 2>/dev/null || { tail -5 "$FS_TMP/work.err" >&2; fs_die "round $r: the workload stopped before the kill"; }
	if [ "$OPTS" = "$OPTS_BULK" ]; then
		n=$(fs_stat "$MNT" unlogged_batches)
		UNLOGGED=$((UNLOGGED + ${n:-0}))
	fi
	kill -9 "$pid"
	tt_wait_exit "$pid" 10 || fs_die "round $r: the daemon survived SIGKILL"
	wait "$wp" 2>/dev/null || true
	tt_detach "$MNT"
	tt_sum kills 1
	tt_start "$ST" "$MNT" "" "$OPTS" ||
		{ tail -20 "$FS_TMP/daemon.log" >&2; fs_die "round $r: remount after the kill failed (status $TT_RC)"; }
	# Everything so far every KILL_VERIFY_ALL rounds (default 10) and at
	# the end; in between this round's facts only (verifying all of a
	# 200-round store each round is quadratic: hours).
	if [ $((r % ${KILL_VERIFY_ALL:-10})) = 0 ] || [ "$r" = "$ROUNDS" ]; then
		# shellcheck disable=SC2086
		tt_verify "$MNT" "round $r (after the kill; all rounds)" $LOGS
	else
		tt_verify "$MNT" "round $r (after the kill)" "$FS_TMP/log.$r"
	fi
	fs_umount "$MNT" "$TT_PID"
	tt_fsck "$ST" "round $r"
	echo "round $r: killed$( [ -n "$env_faults" ] && echo ' (store faults on)')$( [ "$OPTS" = "$OPTS_BULK" ] && echo ' (bulk unlogged)'), $(grep -c '^A' "$FS_TMP/log.$r") acknowledged versions; $(cat "$FS_TMP/verify.out"); fsck clean"
	r=$((r + 1))
done
# The bulk rounds must have written unlogged batches, or they tested nothing.
[ "$ROUNDS" -lt 3 ] || [ "$UNLOGGED" -gt 0 ] || fs_die "the bulk rounds wrote no unlogged batch"
echo "kill: $ROUNDS kill -9 rounds ($UNLOGGED unlogged batches seen in the bulk rounds), $(cat "$FS_TMP/verify.out")"
