#!/usr/bin/env bash
#
# s3_outage.sh - puts through the retry wrapper survive an S3 outage.
#
# Starts s3_outage_run (400 objects of 64 KiB from 4 threads through
# obj_open("s3://...") = retry wrapper over the S3 backend), stops radosgw
# (only radosgw, by its pid file: tests/rig/rgw-restart-gateway) once the
# run is under way, starts it again 3 s later, and requires that every
# object reads back intact and that the run noticed the outage.
#
# Needs a rig: SHALE_RGW_DIR (from the rig's env file) plus the S3
# variables. Skipped without them, failed when SHALE_REQUIRE_S3=1.
set -u
top=${SHALE_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${SHALE_BUILDDIR:-.}
if [ -z "${SHALE_S3_ENDPOINT:-}" ] || [ -z "${SHALE_RGW_DIR:-}" ]; then
	echo "s3_outage.sh: needs a running rig (tests/rig/rgw-start DIR; . DIR/env)" >&2
	[ "${SHALE_REQUIRE_S3:-}" = 1 ] && exit 1
	exit 77
fi
run=$bld/tests/objstore/s3_outage_run
gw=$top/tests/rig/rgw-restart-gateway
out=$(mktemp)
trap 'rm -f "$out"; "$gw" "$SHALE_RGW_DIR" start >/dev/null 2>&1 || true' EXIT

prefix="outage-$$-$(date +%s)/"
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
"$gw" "$SHALE_RGW_DIR" stop || { echo "s3_outage.sh: cannot stop radosgw" >&2; exit 1; }
stopped=$(grep -c '^progress' "$out")
echo "s3_outage.sh: radosgw stopped ($before progress lines before, $stopped once it was down)"
sleep 3
during=$(grep -c '^progress' "$out")
"$gw" "$SHALE_RGW_DIR" start || { echo "s3_outage.sh: cannot restart radosgw" >&2; exit 1; }
echo "s3_outage.sh: radosgw restarted ($during progress lines when it came back)"

wait "$pid"
rc=$?
cat "$out"
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
echo "s3_outage.sh: PASS"
exit 0
