#!/bin/sh
# full.sh - store-full episodes under the mixed workload (docs/testing.md).
#
# FULL_ROUNDS rounds (default 3) on one store (file://, or s3:// with
# TT_S3=1). Each round mounts with the fault layer's store-full switch
# (SHALEFS_FAULTS=full=PATH, docs/faults.md), runs the mixed workload
# (tort_work random, TW_FULL_OK: a full store ends it with status 3), and
# after a random 0.3-1.5 s makes the store full:
#   * the workload must end on ENOSPC within 30 s (not hang), and the
#     daemon must stay up and writable in memory (not read-only);
#   * the switch is removed; once the engine's retries see it (stats
#     store_failing 0, within 30 s), a second workload on the same mount
#     must get acknowledgements (writes resumed without a remount);
#   * then kill -9, a remount verifies everything both workloads
#     acknowledged, a clean unmount, fsck.
# With FS_KEEP=1 a file:// store is also kept as the kill left it
# ($FS_TMP/store.crash.ROUND), to mount again and again while debugging.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
. "${SHALE_SRCDIR:-.}/tests/torture/torture_lib.sh"
fs_setup tfull
ROUNDS=${FULL_ROUNDS:-3}
SEED=${FULL_SEED:-1}
MNT=$FS_TMP/mnt SW=$FS_TMP/full-switch
ST=$(tt_store store)
OPTS=$(tt_opts "memtable_mb=2,flush_interval_ms=100,write_buffer_mb=8")
LOGS=""
export TW_FULL_OK=1

r=1
while [ "$r" -le "$ROUNDS" ]; do
	s=$((SEED * 1000 + r))
	rm -f "$SW"
	tt_start "$ST" "$MNT" "SHALEFS_FAULTS=full=$SW" "$OPTS" || fs_die "round $r: mount failed"
	pid=$TT_PID
	: >"$FS_TMP/log.$r.a"
	: >"$FS_TMP/log.$r.b"
	LOGS="$LOGS $FS_TMP/log.$r.a $FS_TMP/log.$r.b"
	"$TT_WORK" random "$s" "$MNT/a$r" "$FS_TMP/log.$r.a" 2>"$FS_TMP/work.err" &
	wp=$!
	sleep "$(awk -v s="$s" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 1.2 }')"
	touch "$SW"
	tt_wait_exit "$wp" 30 || fs_die "round $r: the workload did not end within 30 s of the store filling up"
	[ "$TT_RC" = 3 ] || { cat "$FS_TMP/work.err" >&2; fs_die "round $r: the workload ended with $TT_RC, expected 3 (ENOSPC)"; }
	kill -0 "$pid" 2>/dev/null || fs_die "round $r: the daemon died on a full store"
	[ "$(fs_stat "$MNT" fs_readonly)" = 0 ] || fs_die "round $r: the mount turned read-only"
	acked=$(grep -c '^A' "$FS_TMP/log.$r.a" || true)
	rm "$SW"
	# The engine finds out at its next retry (backoff up to ~6 s); until
	# then a writer that has to wait for room still gets ENOSPC.
	i=0
	until [ "$(fs_stat "$MNT" store_failing)" = 0 ]; do
		i=$((i + 1))
		[ $i -lt 150 ] || fs_die "round $r: the store still counts as failing 30 s after it had room"
		sleep 0.2
	done
	"$TT_WORK" random "$((s + 500))" "$MNT/b$r" "$FS_TMP/log.$r.b" 2>"$FS_TMP/work.err" &
	wp=$!
	sleep 2
	kill -0 "$wp" 2>/dev/null || { cat "$FS_TMP/work.err" >&2; fs_die "round $r: the workload after the episode stopped"; }
	n=$(grep -c '^A' "$FS_TMP/log.$r.b" || true)
	[ "$n" -gt 0 ] || fs_die "round $r: nothing acknowledged after the store had room again"
	kill -9 "$pid"
	tt_wait_exit "$pid" 10 || fs_die "round $r: the daemon survived SIGKILL"
	wait "$wp" 2>/dev/null || true
	tt_detach "$MNT"
	[ -z "${FS_KEEP:-}" ] || [ "$TT_S3" = 1 ] || cp -a "$FS_TMP/store" "$FS_TMP/store.crash.$r"
	tt_sum kills 1
	tt_start "$ST" "$MNT" "" "$OPTS" || fs_die "round $r: remount failed"
	# shellcheck disable=SC2086
	tt_verify "$MNT" "round $r (store full, then kill -9)" $LOGS
	fs_umount "$MNT" "$TT_PID"
	tt_fsck "$ST" "round $r"
	tt_sum full_episodes 1
	echo "round $r: store full after $acked acknowledged versions, $n after it had room again, killed; $(cat "$FS_TMP/verify.out"); fsck clean"
	r=$((r + 1))
done
echo "full: $ROUNDS store-full episodes, $(cat "$FS_TMP/verify.out")"
