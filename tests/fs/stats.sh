#!/bin/sh
# stats.sh - `shalefs stats` (cli/cli_stats.c, cli_stats_show.c):
#   * the default summary names the mount, the store and every state by
#     name (mode, lease, engine, store health), with the lease generation
#     of --raw, no line whose value is a bare number standing for a state,
#     and request rates that see a workload running meanwhile;
#   * --json is one JSON object: states as names and numbers matching the
#     --raw counters, and "counters" holding exactly the --raw keys;
#   * --raw is "key: value" lines of integers, fs_daemon_pid the daemon;
#   * cost: N fsyncs raise the WAL's PUT count by >= N and its cost by N
#     PUT prices; the summary shows the estimate, the prices and a row per
#     purpose;
#   * --watch 1 prints a header and a line per second, and SIGINT (Ctrl-C)
#     ends it with exit status 0;
#   * --help exits 0; conflicting or malformed flags fail with one line;
#   * a read-only mount and a STORE argument report lease "none" and
#     their mode by name.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup stats

PY=
for p in python3 /usr/bin/python3; do
	if "$p" -c 'import json' 2>/dev/null; then
		PY=$p
		break
	fi
done
[ -n "$PY" ] || fs_die "no python3"

ST="file://$FS_TMP/store"
M="$FS_TMP/mnt"
fs_format "$ST"
fs_mount "$ST" "$M"
mkdir "$M/d"
for i in 1 2 3 4 5; do echo "file $i" >"$M/d/f$i"; done
"$SHALEFS" sync "$M" >/dev/null || fs_die "shalefs sync failed"

# value KEY FILE: the value of "KEY: value" in FILE (the summary's label).
value() { awk -v k="$1" 'index($0, k ": ") == 1 { sub(/^[^:]*: */, ""); print; exit }' "$2"; }

# --raw: counters only, integers, the daemon's pid.
"$SHALEFS" stats --raw "$M" >"$FS_TMP/raw" || fs_die "stats --raw failed"
[ "$(wc -l <"$FS_TMP/raw")" -gt 100 ] || fs_die "--raw: only $(wc -l <"$FS_TMP/raw") lines"
! grep -Evq '^[a-z0-9_]+: [0-9]+$' "$FS_TMP/raw" ||
	fs_die "--raw: a line not 'key: integer': $(grep -Ev '^[a-z0-9_]+: [0-9]+$' "$FS_TMP/raw" | head -1)"
[ "$(value fs_daemon_pid "$FS_TMP/raw")" = "$FS_PID" ] || fs_die "--raw: fs_daemon_pid is not $FS_PID"
GEN=$(value lease_gen "$FS_TMP/raw")
[ "${GEN:-0}" -gt 0 ] || fs_die "--raw: a writer mount without a lease generation"
echo "ok: --raw ($(wc -l <"$FS_TMP/raw") counters, lease generation $GEN)"

# The summary, with writes going on during its two samples.
(
	i=0
	while [ $i -lt 40 ]; do
		dd if=/dev/zero of="$M/d/w$i" bs=4k count=4 conv=fsync 2>/dev/null
		i=$((i + 1))
		sleep 0.05
	done
) &
W=$!
"$SHALEFS" stats "$M" >"$FS_TMP/sum" || fs_die "stats failed"
wait "$W"
cat "$FS_TMP/sum"
[ "$(value mount "$FS_TMP/sum" | cut -d' ' -f1)" = "$M" ] || fs_die "summary: no mount line for $M"
value mount "$FS_TMP/sum" | grep -q "(pid $FS_PID, up " || fs_die "summary: no pid and uptime"
[ "$(value store "$FS_TMP/sum")" = "$ST" ] || fs_die "summary: store is not $ST"
[ "$(value mode "$FS_TMP/sum")" = read-write ] || fs_die "summary: mode is not read-write"
[ "$(value lease "$FS_TMP/sum")" = "held (generation $GEN)" ] || fs_die "summary: lease is not held (generation $GEN)"
[ "$(value engine "$FS_TMP/sum")" = ok ] || fs_die "summary: engine is not ok"
[ "$(value 'store health' "$FS_TMP/sum")" = ok ] || fs_die "summary: store health is not ok"
for k in files 'store bytes' memory cache rates compaction 'write stalls' 'last error'; do
	[ -n "$(value "$k" "$FS_TMP/sum")" ] || fs_die "summary: no '$k' line"
done
! grep -Eq '^[a-z][a-z _]*: *[0-9]+$' "$FS_TMP/sum" ||
	fs_die "summary: a bare number: $(grep -E '^[a-z][a-z _]*: *[0-9]+$' "$FS_TMP/sum")"
! grep -Eq '^(state|store_failing|lease_gen|readonly):' "$FS_TMP/sum" || fs_die "summary: raw state keys"
wr=$(awk '$1 == "write" && $2 ~ /^[0-9.]+$/ { print $2 }' "$FS_TMP/sum")
awk -v r="${wr:-0}" 'BEGIN { exit !(r > 0) }' || fs_die "summary: write requests/s is '${wr:-}' during writes"
echo "ok: summary (write $wr requests/s)"

# Cost: N fsyncs are at least N WAL PUTs, charged at the price given; the
# summary has the cost lines, with a wal row.
n0=$(value purpose_wal_put_class_requests "$FS_TMP/raw")
c0=$(value cost_wal_nusd "$FS_TMP/raw")
[ -n "$n0" ] && [ -n "$c0" ] || fs_die "--raw: no purpose_wal_put_class_requests or cost_wal_nusd"
N=10
i=0
while [ $i -lt $N ]; do
	dd if=/dev/zero of="$M/d/c$i" bs=4k count=1 conv=fsync 2>/dev/null
	i=$((i + 1))
done
"$SHALEFS" stats --raw "$M" >"$FS_TMP/raw3" || fs_die "stats --raw failed"
n1=$(value purpose_wal_put_class_requests "$FS_TMP/raw3")
c1=$(value cost_wal_nusd "$FS_TMP/raw3")
[ $((n1 - n0)) -ge $N ] || fs_die "$N fsyncs: the WAL's PUT count went from $n0 to $n1"
[ "$(value cost_price_put_nusd "$FS_TMP/raw3")" = 5000 ] || fs_die "--raw: the default PUT price is not \$0.005 per 1,000"
[ $((c1 - c0)) -ge $((N * 5000)) ] || fs_die "$N fsyncs: the WAL's cost went from $c0 to $c1 nano-dollars"
[ "$(value cost_requests_nusd_per_hour "$FS_TMP/raw3")" -gt 0 ] || fs_die "--raw: no request cost per hour"
[ "$(value cost_stored_bytes "$FS_TMP/raw3")" = "$(value sst_bytes "$FS_TMP/raw3")" ] ||
	fs_die "--raw: cost_stored_bytes is not sst_bytes"
value cost "$FS_TMP/sum" | grep -Eq '^\$[0-9.]+/h estimated: requests \$[0-9.]+/h' ||
	fs_die "summary: no 'cost: \$X/h estimated' line"
grep -Eq '^  prices: \$0.005 per 1,000 PUT' "$FS_TMP/sum" || fs_die "summary: no price list"
grep -Eq '^  wal +[1-9][0-9]* ' "$FS_TMP/sum" || fs_die "summary: no wal row with PUTs"
echo "ok: cost ($N fsyncs: WAL PUTs $n0 -> $n1, $c0 -> $c1 nano-dollars)"

# --json: states as names and numbers, the counters of --raw.
"$SHALEFS" stats --json "$M" >"$FS_TMP/json" || fs_die "stats --json failed"
"$PY" -m json.tool "$FS_TMP/json" >/dev/null || fs_die "--json: not JSON"
"$SHALEFS" stats --raw "$M" >"$FS_TMP/raw2" || fs_die "stats --raw failed"
"$PY" - "$FS_TMP/json" "$FS_TMP/raw2" "$M" "$ST" <<'PYEOF' || fs_die "--json disagrees with --raw"
import json, sys
d = json.load(open(sys.argv[1]))
raw = {}
for line in open(sys.argv[2]):
    k, _, v = line.rstrip("\n").partition(": ")
    raw[k] = int(v)
c = d["counters"]
if set(c) != set(raw):
    sys.exit("counter keys differ: %s" % sorted(set(c) ^ set(raw)))
for k in ("fs_daemon_pid", "fs_format", "lease_gen", "writer_epoch", "l0_max", "state",
          "store_failing", "fs_readonly", "block_cache_cap", "fs_started_unix_ms"):
    if c[k] != raw[k]:
        sys.exit("%s: json %s, raw %s" % (k, c[k], raw[k]))
s = d["states"]
want = {"lease": ("held", "generation", raw["lease_gen"]), "engine": ("ok", "value", raw["state"]),
        "store": ("ok", "value", raw["store_failing"]), "mode": ("read-write", "value", 0)}
for k, (name, field, num) in want.items():
    if s[k]["name"] != name or s[k][field] != num:
        sys.exit("states.%s = %s, expected %s %s=%s" % (k, s[k], name, field, num))
if d["mountpoint"] != sys.argv[3] or d["store"] != sys.argv[4] or d["pid"] != raw["fs_daemon_pid"]:
    sys.exit("mountpoint/store/pid: %s %s %s" % (d["mountpoint"], d["store"], d["pid"]))
for cls in ("read", "write", "metadata", "fsync", "store_get", "store_put", "store_other"):
    r = d["rates"][cls]
    if r["requests_per_s"] < 0 or r["bytes_per_s"] < 0:
        sys.exit("rates.%s: %s" % (cls, r))
if not 0.5 < d["rates"]["interval_s"] < 30:
    sys.exit("rates.interval_s %s" % d["rates"]["interval_s"])
k = d["cost"]
if set(k["by_purpose_usd"]) != {"wal", "flush", "compaction", "segment", "gc", "read", "manifest", "other"}:
    sys.exit("cost.by_purpose_usd: %s" % k["by_purpose_usd"])
if abs(k["usd_per_hour"] - (k["requests_usd_per_hour"] + k["storage_usd_per_hour"])) > 2e-9:
    sys.exit("cost: %s" % k)
if abs(k["by_purpose_usd"]["wal"] - c["purpose_wal_put_class_requests"] * 0.005 / 1000) > 1e-9:
    sys.exit("cost of the WAL: %s for %d PUTs" % (k["by_purpose_usd"]["wal"], c["purpose_wal_put_class_requests"]))
if d["uptime_s"] < 0 or "last_error" not in d or "cache_hit_ratio" not in d:
    sys.exit("uptime_s, last_error or cache_hit_ratio")
print("json: %d counters, states %s" % (len(c), {k: v["name"] for k, v in s.items()}))
PYEOF
echo "ok: --json"

# --watch 1 for about 3 s, ended by SIGINT as Ctrl-C would.
rc=0
timeout -s INT --preserve-status 3.5 "$SHALEFS" stats --watch 1 "$M" >"$FS_TMP/watch" 2>&1 || rc=$?
cat "$FS_TMP/watch"
[ "$rc" -eq 0 ] || fs_die "--watch ended by SIGINT exited $rc, expected 0"
head -1 "$FS_TMP/watch" | grep -q '^time .*read/s.*write/s.*state$' || fs_die "--watch: no header first"
n=$(grep -Ec '^[0-9]{2}:[0-9]{2}:[0-9]{2} ' "$FS_TMP/watch" || true)
[ "$n" -ge 2 ] || fs_die "--watch: $n data lines in 3.5 s, expected at least 2"
grep -E '^[0-9]{2}:[0-9]{2}:[0-9]{2} ' "$FS_TMP/watch" | awk 'NF != 15 { exit 1 }' ||
	fs_die "--watch: a data line without 15 columns"
echo "ok: --watch ($n lines)"

# --help; refused flags.
"$SHALEFS" stats --help >"$FS_TMP/help" || fs_die "stats --help did not exit 0"
grep -q -- '--watch N' "$FS_TMP/help" && grep -q -- '--json' "$FS_TMP/help" &&
	grep -q -- '--raw' "$FS_TMP/help" || fs_die "stats --help does not describe the flags"
for bad in "--raw --json" "--watch 1 --json" "--watch 0" "--watch x" "--force"; do
	rc=0
	# shellcheck disable=SC2086
	"$SHALEFS" stats $bad "$M" >"$FS_TMP/out" 2>"$FS_TMP/err" || rc=$?
	[ "$rc" -eq 1 ] && [ "$(wc -l <"$FS_TMP/err")" -eq 1 ] && [ ! -s "$FS_TMP/out" ] ||
		{ cat "$FS_TMP/err" >&2; fs_die "stats $bad: exit $rc, expected 1 with one line"; }
done
echo "ok: --help, bad flags refused"
fs_umount "$M"

# A read-only mount, then the store itself.
fs_mount "$ST" "$M" -o ro
"$SHALEFS" stats "$M" >"$FS_TMP/sum" || fs_die "stats of a read-only mount failed"
[ "$(value mode "$FS_TMP/sum")" = read-only ] || fs_die "ro summary: mode is not read-only"
[ "$(value lease "$FS_TMP/sum")" = "none (read-only mount)" ] || fs_die "ro summary: lease is not none"
fs_umount "$M"
"$SHALEFS" stats "$ST" >"$FS_TMP/sum" || fs_die "stats STORE failed"
[ "$(value store "$FS_TMP/sum")" = "$ST" ] || fs_die "STORE summary: store is not $ST"
value mount "$FS_TMP/sum" | grep -q '^none' || fs_die "STORE summary: mount is not none"
value lease "$FS_TMP/sum" | grep -q '^none' || fs_die "STORE summary: lease is not none"
[ "$(value engine "$FS_TMP/sum")" = ok ] || fs_die "STORE summary: engine is not ok"
"$SHALEFS" stats --json "$ST" | "$PY" -c 'import json, sys; d = json.load(sys.stdin); assert d["states"]["lease"]["name"] == "none" and d["counters"]["fs_inodes"] >= 46, d["counters"]["fs_inodes"]' ||
	fs_die "stats --json STORE"
"$SHALEFS" stats --raw "$ST" | grep -q '^fs_format: ' || fs_die "stats --raw STORE"
echo "ok: read-only mount and STORE"
echo "PASS"
