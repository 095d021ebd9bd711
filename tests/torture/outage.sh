#!/bin/sh
# outage.sh - the S3 gateway goes away for OUTAGE_SECONDS (default 30)
# while the filesystem is busy (docs/testing.md).
#
# Needs a rig it may stop: SHALE_RIG_DIR (a tests/rig/rgw-start DIR whose
# env is exported); skipped otherwise. Not part of `make check` (it stops
# the gateway other S3 tests use); scripts/torture --long runs it.
#
#   * the mixed workload runs; the gateway is stopped (rgw-restart-gateway
#     stop) for OUTAGE_SECONDS; operations may block or fail with EIO, but
#     the daemon must stay alive the whole time;
#   * the gateway restarts; a second workload runs for 5 s on the same
#     mount, which must still accept and acknowledge writes;
#   * a clean unmount (exit 0), a remount verifies everything acknowledged
#     before, during and after the outage, and fsck passes.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
. "${SHALE_SRCDIR:-.}/tests/torture/torture_lib.sh"
fs_setup outage
[ -n "${SHALE_RIG_DIR:-}" ] && [ -f "$SHALE_RIG_DIR/rig.state" ] ||
	{ echo "SKIP: SHALE_RIG_DIR does not name a running rig"; exit 77; }
TT_S3=1
ST=$(tt_store outage)
[ -n "$ST" ] || { echo "SKIP: the S3 rig is not configured"; exit 77; }
SECS=${OUTAGE_SECONDS:-30}
RIG=${SHALE_SRCDIR:-.}/tests/rig/rgw-restart-gateway
MNT=$FS_TMP/mnt
# OUTAGE_STORE_TIMEOUT=S: give up retrying one request after S s
# (store_timeout=), so that an outage longer than that is ridden through
# by the engine's own retries (kv_db.c, STORE FAILURES).
OPTS=$(tt_opts "memtable_mb=2,flush_interval_ms=100${OUTAGE_STORE_TIMEOUT:+,store_timeout=$OUTAGE_STORE_TIMEOUT}")
restart_needed=0
outage_cleanup() {
	[ $restart_needed = 1 ] && "$RIG" "$SHALE_RIG_DIR" start >/dev/null 2>&1 || true
	tt_detach "$MNT"        # a dead daemon's mount, which fs_cleanup cannot see
	fs_cleanup
}
trap outage_cleanup EXIT
# The daemon died: say how (its exit status: 134 = abort, from a sanitizer
# or an assert; 137 = SIGKILL; 0/1 = it ended its session), show its last
# lines (a sanitizer report is there) and every answer of the gateway to
# this store that was not a success, then fail. The scratch directory is
# removed at exit (unless FS_KEEP), so this is all a failed run leaves.
outage_died() {
	_rc=0
	wait "$pid" 2>/dev/null || _rc=$?
	echo "the daemon (pid $pid) exited with status $_rc; its last lines:" >&2
	tail -60 "$FS_TMP/daemon.log" >&2
	_prefix=${ST#s3://*/}
	echo "the gateway's non-2xx answers for $_prefix (412 on manifests and probes is normal):" >&2
	cat "$SHALE_RIG_DIR"/log/client.rgw*.log 2>/dev/null | grep "beast: .*/$_prefix/" |
		grep -vE '" 2[0-9][0-9] ' | tail -40 >&2 || true
	fs_die "$1"
}

tt_start "$ST" "$MNT" "" "$OPTS" || fs_die "mount failed"
pid=$TT_PID
"$TT_WORK" random 1 "$MNT/before" "$FS_TMP/log.1" 2>"$FS_TMP/work1.err" &
w1=$!
sleep 3
restart_needed=1
"$RIG" "$SHALE_RIG_DIR" stop
# (counted once the gateway is gone: stopping it takes up to 10 s)
acked_before=$(grep -c '^A' "$FS_TMP/log.1" || true)
echo "gateway stopped after $acked_before acknowledged versions"
i=0
while [ $i -lt "$SECS" ]; do
	kill -0 "$pid" 2>/dev/null || outage_died "the daemon died during the outage ($i s)"
	sleep 1
	i=$((i + 1))
done
acked_during=$(grep -c '^A' "$FS_TMP/log.1" || true)
"$RIG" "$SHALE_RIG_DIR" start
restart_needed=0
echo "gateway back after $SECS s; $((acked_during - acked_before)) acknowledgements during the outage"
# The first workload may have stopped on EIO; stop it either way.
sleep 5
kill "$w1" 2>/dev/null || true
wait "$w1" 2>/dev/null || true
grep "^tort_work" "$FS_TMP/work1.err" | sed 's/^/first workload: /' || true
kill -0 "$pid" 2>/dev/null || outage_died "the daemon died after the outage"
"$TT_WORK" random 2 "$MNT/after" "$FS_TMP/log.2" 2>"$FS_TMP/work2.err" &
w2=$!
sleep 5
kill "$w2" 2>/dev/null || true
wait "$w2" 2>/dev/null || true
n2=$(grep -c '^A' "$FS_TMP/log.2" || true)
[ "$n2" -gt 0 ] || { cat "$FS_TMP/work2.err" >&2; fs_die "nothing acknowledged after the gateway came back"; }
fs_umount "$MNT" "$pid"
tt_start "$ST" "$MNT" "" "$OPTS" || fs_die "remount failed"
tt_verify "$MNT" "after the outage" "$FS_TMP/log.1" "$FS_TMP/log.2"
fs_umount "$MNT" "$TT_PID"
tt_fsck "$ST" "after the outage"
tt_sum outages 1
echo "outage: $SECS s without the gateway, the daemon lived; $n2 acknowledged after; $(cat "$FS_TMP/verify.out")"
