#!/usr/bin/env bash
#
# s3_outage.sh - puts through the retry wrapper survive an S3 outage.
#
# Starts a private RGW rig (tests/rig/rgw-start in a temp dir, on a free
# port, so stopping its gateway cannot disturb other tests running in
# parallel), starts s3_outage_run (400 objects of 64 KiB from 4 threads
# through obj_open("s3://...") = retry wrapper over the S3 backend), stops
# radosgw (only radosgw, by its pid file: tests/rig/rgw-restart-gateway)
# once the run is under way, starts it again 3 s later, and requires that
# every object reads back intact and that the writers stalled while the
# gateway was down.
#
# Runs when SHALE_S3_ENDPOINT or SHALE_REQUIRE_S3=1 says S3 tests are
# wanted; skipped otherwise; fails when SHALE_REQUIRE_S3=1 and the rig
# cannot start.
set -u
top=${SHALE_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${SHALE_BUILDDIR:-.}
if [ -z "${SHALE_S3_ENDPOINT:-}" ] && [ "${SHALE_REQUIRE_S3:-}" != 1 ]; then
	echo "s3_outage.sh: S3 tests not requested (set SHALE_S3_ENDPOINT or SHALE_REQUIRE_S3=1)" >&2
	exit 77
fi
run=$bld/tests/objstore/s3_outage_run
rig=$top/tests/rig
dir=$(mktemp -d /tmp/shale-outage.XXXXXX)
out=$dir/run.out
cleanup() { "$rig/rgw-stop" "$dir/rig" >/dev/null 2>&1; rm -rf "$dir"; }
trap cleanup EXIT

# A free port pair (gateway, monitor) away from the shared rig's.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for p in $(seq $((7600 + $$ % 200 * 2)) 2 7999) $(seq 7600 2 7998); do
	port_busy "$p" || port_busy "$((p + 1))" || { port=$p; break; }
done
[ -n "$port" ] || { echo "s3_outage.sh: no free port" >&2; exit 1; }
if ! "$rig/rgw-start" "$dir/rig" "$port" >"$dir/rig.out" 2>&1; then
	echo "s3_outage.sh: FAIL: the private RGW rig did not start:" >&2
	cat "$dir/rig.out" >&2
	exit 1
fi
# shellcheck disable=SC1091
. "$dir/rig/env"
gw() { "$rig/rgw-restart-gateway" "$dir/rig" "$1"; }

prefix="outage-$$/"
"$run" "$prefix" 400 65536 >"$out" 2>&1 &
pid=$!

# Wait for the run to be under way, then pull the gateway.
for _ in $(seq 1 200); do
	grep -q '^progress [1-9]' "$out" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
if ! kill -0 "$pid" 2>/dev/null; then
	echo "s3_outage.sh: the run finished before the outage began; make it longer" >&2
	cat "$out" >&2
	exit 1
fi
before=$(grep -c '^progress' "$out")
gw stop || { echo "s3_outage.sh: cannot stop radosgw" >&2; exit 1; }
stopped=$(grep -c '^progress' "$out")
echo "s3_outage.sh: radosgw stopped ($before progress lines before, $stopped once it was down)"
sleep 3
during=$(grep -c '^progress' "$out")
gw start || { echo "s3_outage.sh: cannot restart radosgw" >&2; exit 1; }
echo "s3_outage.sh: radosgw restarted ($during progress lines when it came back)"

wait "$pid"
rc=$?
grep -v '^progress' "$out" | tail -n 20
if [ "$rc" -ne 0 ]; then
	echo "s3_outage.sh: FAIL: objects lost or unreadable after the outage" >&2
	exit 1
fi
# The outage must have stalled the writers: no progress while it was down
# (one line of slack for a write that completed as the gateway went away).
if [ "$((during - stopped))" -gt 1 ]; then
	echo "s3_outage.sh: FAIL: writers kept progressing while radosgw was down ($stopped -> $during)" >&2
	exit 1
fi
grep -q 'retrying' "$out" || { echo "s3_outage.sh: FAIL: no retry was logged; was there an outage?" >&2; exit 1; }
echo "s3_outage.sh: PASS"
exit 0
