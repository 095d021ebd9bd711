#!/bin/sh
# metrics.sh - the mount daemon's Prometheus endpoint and metrics file
# (-o metrics=, -o metrics_file=; cli/cli_metrics.c):
#   * /metrics parses as text format 0.0.4 (prometheus_client's parser, so
#     a format error fails the test), every family has HELP and TYPE,
#     counters end in _total and gauges do not; any other path is a 404;
#   * counters never go down between a scrape during a workload and one
#     after it;
#   * the per-operation store requests match `shalefs stats MNT`, read
#     between two scrapes of a quiet mount that agree; by purpose and
#     class they add up to the same total, and each purpose's cost is
#     its requests at the prices given (price_put=) and exported;
#   * the latency histograms (store requests by op and status, FUSE
#     requests by op) have cumulative buckets with the fixed bounds, +Inf
#     equal to _count, a _sum; the ops of the workload were counted; on a
#     quiet mount each store op's _count summed over status equals its
#     shalefs_objstore_requests_total;
#   * metrics_file= appears, parses, and is written once more at unmount;
#   * a malformed metrics= is refused with one line, and a port in use
#     fails the mount with one line, mounting nothing.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup metrics

PY=
for p in python3 /usr/bin/python3; do
	if "$p" -c 'import prometheus_client.parser' 2>/dev/null; then
		PY=$p
		break
	fi
done
[ -n "$PY" ] || fs_die "no python3 with prometheus_client (Debian: python3-prometheus-client, in scripts/deps.sh SHALE_TEST_PKGS)"
command -v curl >/dev/null || fs_die "curl not installed"

# check.py CMD ARGS: the checks on scraped text (exit 1 with a message).
cat >"$FS_TMP/check.py" <<'EOF'
import re, sys
from prometheus_client.parser import text_string_to_metric_families

def load(path):
    """{(name, labels): value} of a scrape, after the format checks."""
    text = open(path).read()
    if not text.endswith("\n"):
        sys.exit("%s: no newline at the end" % path)
    helps = set(re.findall(r"^# HELP (\S+) \S", text, re.M))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    samples = {}
    for fam in text_string_to_metric_families(text):
        if fam.type not in ("counter", "gauge", "histogram"):
            sys.exit("%s: family %s has type %s" % (path, fam.name, fam.type))
        if fam.type == "histogram" and not fam.name.endswith("_seconds"):
            sys.exit("%s: histogram %s is not in _seconds" % (path, fam.name))
        for s in fam.samples:
            base = fam.name if fam.type == "histogram" else s.name
            if base not in helps or base not in types:
                sys.exit("%s: %s lacks a HELP or TYPE line" % (path, s.name))
            t = types[base]
            if t != "histogram" and (t == "counter") != s.name.endswith("_total"):
                sys.exit("%s: %s is a %s" % (path, s.name, t))
            if not s.name.startswith("shalefs_"):
                sys.exit("%s: %s lacks the shalefs_ prefix" % (path, s.name))
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in samples:
                sys.exit("%s: %s twice" % (path, key))
            samples[key] = (t, s.value)
    if len(samples) < 50:
        sys.exit("%s: only %d samples" % (path, len(samples)))
    return samples

def stats(path):
    out = {}
    for line in open(path):
        k, _, v = line.partition(": ")
        out[k] = int(v)
    return out

def reqs(m):
    return {dict(k[1])["op"]: v[1] for k, v in m.items()
            if k[0] == "shalefs_objstore_requests_total"}

OBJ_H = "shalefs_objstore_request_duration_seconds"
FUSE_H = "shalefs_fuse_request_duration_seconds"
BOUNDS = ["1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025",
          "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
          "+Inf"]

def hists(m, name):
    """{labels without le: (cumulative buckets in le order, sum, count)}."""
    out = {}
    for (n, labels), (t, v) in m.items():
        if n not in (name + "_bucket", name + "_sum", name + "_count"):
            continue
        d = dict(labels)
        le = d.pop("le", None)
        series = out.setdefault(tuple(sorted(d.items())), {"b": {}, "sum": None, "count": None})
        if n == name + "_bucket":
            series["b"][le] = v
        else:
            series[n[len(name) + 1:]] = v
    res = {}
    for labels, x in out.items():
        les = sorted(x["b"], key=lambda l: float(l))
        if [float(l) for l in les] != [float(l) for l in BOUNDS]:
            sys.exit("%s%s: buckets %s, expected %s" % (name, labels, les, BOUNDS))
        bs = [x["b"][l] for l in les]
        if any(bs[i] > bs[i + 1] for i in range(len(bs) - 1)):
            sys.exit("%s%s: buckets not cumulative: %s" % (name, labels, bs))
        if x["count"] is None or x["sum"] is None or bs[-1] != x["count"]:
            sys.exit("%s%s: +Inf %s, _count %s, _sum %s" % (name, labels, bs[-1], x["count"], x["sum"]))
        if x["sum"] < 0 or (x["count"] == 0 and x["sum"] != 0):
            sys.exit("%s%s: _sum %s with _count %s" % (name, labels, x["sum"], x["count"]))
        res[labels] = (bs, x["sum"], x["count"])
    return res

def hist_count_by_op(m):
    out = {}
    for labels, (_, _, c) in hists(m, OBJ_H).items():
        d = dict(labels)
        if d.get("status") not in ("ok", "not_found", "conflict", "error"):
            sys.exit("%s: bad status in %s" % (OBJ_H, d))
        out[d["op"]] = out.get(d["op"], 0) + c
    return out

cmd = sys.argv[1]
if cmd == "parse":
    load(sys.argv[2])
elif cmd == "monotonic":
    a, b = load(sys.argv[2]), load(sys.argv[3])
    for k, (t, v) in a.items():
        if k not in b:
            sys.exit("%s vanished" % (k,))
        if t == "counter" and b[k][1] < v:
            sys.exit("counter %s went down: %s -> %s" % (k, v, b[k][1]))
    w = dict((k[0], v[1]) for k, v in b.items())
    if w["shalefs_fs_written_bytes_total"] < float(sys.argv[4]):
        sys.exit("fs_written_bytes_total %s < %s" % (w["shalefs_fs_written_bytes_total"], sys.argv[4]))
    if sum(reqs(b).values()) == 0:
        sys.exit("no store requests counted")
elif cmd == "hist":
    m = load(sys.argv[2])
    o = hists(m, OBJ_H)
    f = {dict(k)["op"]: v for k, v in hists(m, FUSE_H).items()}
    ops = {dict(k)["op"] for k in o}
    if not {"get", "head", "put", "put_if_absent", "delete", "list"} <= ops:
        sys.exit("%s: ops %s" % (OBJ_H, sorted(ops)))
    for op in ("lookup", "getattr", "create", "write", "read", "fsync", "mkdir", "rename",
               "unlink", "release", "open", "statfs", "readdir", "setxattr"):
        if op not in f:
            sys.exit("%s has no op=%s" % (FUSE_H, op))
    for op in ("lookup", "create", "write", "read", "release", "mkdir", "rename", "unlink"):
        if f[op][2] == 0:
            sys.exit("%s{op=%s}: nothing counted after the workload" % (FUSE_H, op))
    if hist_count_by_op(m).get("put", 0) + hist_count_by_op(m).get("put_if_absent", 0) == 0:
        sys.exit("%s: no put counted" % OBJ_H)
    print("histograms: %d store series, %d FUSE series, %d writes timed" %
          (len(o), len(f), f["write"][2]))
elif cmd == "match":
    # scrape A, stats S, scrape B: A <= S <= B per op; A == B means
    # nothing ran in between, so S must equal them. Exit 2: not quiet.
    a, b, s = reqs(load(sys.argv[2])), reqs(load(sys.argv[3])), stats(sys.argv[4])
    if set(a) != set(b) or not a:
        sys.exit("ops differ between scrapes: %s %s" % (a, b))
    for op in a:
        v = s["objstore_%s_requests" % op]
        if not a[op] <= v <= b[op]:
            sys.exit("%s: stats says %d, scrapes %d and %d" % (op, v, a[op], b[op]))
    if sum(s[k] for k in s if re.match(r"objstore_.+_requests$", k)) != s["objstore_requests"]:
        sys.exit("stats: objstore_requests is not the sum over op")
    if a != b:
        sys.exit(2)
    for op in a:
        if s["objstore_%s_requests" % op] != a[op]:
            sys.exit("%s: stats %d != metrics %d" % (op, s["objstore_%s_requests" % op], a[op]))
    h = hist_count_by_op(load(sys.argv[2]))
    if h != a:
        sys.exit("histogram counts %s != request counters %s" % (h, a))
    # By purpose and class (cli_metrics_purpose_defs): every request is
    # in exactly one purpose and class, the WAL made PUTs, and each
    # purpose's cost is its requests at the exported prices.
    m = load(sys.argv[2])
    one = dict((k[0], v[1]) for k, v in m.items() if not k[1])
    def by(fam):
        return {dict(k[1])["purpose"]: v[1] for k, v in m.items() if k[0] == fam}
    pc = by("shalefs_store_put_class_requests_total")
    gc = by("shalefs_store_get_class_requests_total")
    dc = by("shalefs_store_delete_requests_total")
    cost = by("shalefs_cost_requests_dollars_total")
    want = {"wal", "flush", "compaction", "segment", "gc", "read", "manifest", "other"}
    if set(pc) != want or set(gc) != want or set(dc) != want or set(cost) != want:
        sys.exit("purposes: %s %s %s %s" % (sorted(pc), sorted(gc), sorted(dc), sorted(cost)))
    if sum(pc.values()) + sum(gc.values()) + sum(dc.values()) != sum(a.values()):
        sys.exit("requests by purpose %d != by op %d" %
                 (sum(pc.values()) + sum(gc.values()) + sum(dc.values()), sum(a.values())))
    if pc["wal"] < 1 or pc["manifest"] < 1:
        sys.exit("no WAL or manifest PUT counted: %s" % pc)
    pp, pg = one["shalefs_cost_price_put_dollars"], one["shalefs_cost_price_get_dollars"]
    if abs(pp - 0.00002) > 1e-12 or abs(pg - 0.0000004) > 1e-12:
        sys.exit("prices %s %s, expected price_put=0.02 per 1,000 and the default GET" % (pp, pg))
    for p in want:
        if abs(cost[p] - (pc[p] * pp + gc[p] * pg)) > 1e-9:
            sys.exit("cost of %s: %s, requests say %s" % (p, cost[p], pc[p] * pp + gc[p] * pg))
    if not one["shalefs_cost_estimated_dollars_per_hour"] > 0:
        sys.exit("no estimated cost per hour")
    print("requests match, histograms too: %s; by purpose: PUT class %s, cost $%.6f" %
          (a, pc, sum(cost.values())))
EOF

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT/metrics"
ST="file://$FS_TMP/store"
M="$FS_TMP/mnt"
MF="$FS_TMP/shalefs.prom"
fs_format "$ST"
fs_mount "$ST" "$M" -o "metrics=127.0.0.1:$PORT,metrics_file=$MF,price_put=0.02"

# The file is written before the mount detaches.
[ -s "$MF" ] || fs_die "metrics_file $MF missing after the mount"
"$PY" "$FS_TMP/check.py" parse "$MF" || fs_die "metrics_file does not parse"

# A workload, scraped while it runs.
mkdir "$M/d"
dd if=/dev/urandom of="$M/d/big" bs=64k count=64 2>/dev/null &
DD=$!
for i in $(seq 1 50); do echo "file $i" >"$M/d/f$i"; done
curl -sf "$URL" >"$FS_TMP/s1" || fs_die "scrape during the workload failed"
wait "$DD"
cat "$M/d/f7" "$M/d/big" >/dev/null
rm "$M/d/f1" "$M/d/f2"
mv "$M/d/f3" "$M/d/g3"
setfattr -n user.k -v v "$M/d/g3" 2>/dev/null || "$PY" -c 'import os, sys; os.setxattr(sys.argv[1], "user.k", b"v")' "$M/d/g3"
sync "$M/d/g3"
df "$M" >/dev/null
"$SHALEFS" sync "$M" >/dev/null || fs_die "shalefs sync failed"
curl -sf "$URL" >"$FS_TMP/s2" || fs_die "scrape after the workload failed"
"$PY" "$FS_TMP/check.py" hist "$FS_TMP/s2" || fs_die "latency histograms"
"$PY" "$FS_TMP/check.py" parse "$FS_TMP/s1" || fs_die "scrape 1 does not parse"
"$PY" "$FS_TMP/check.py" monotonic "$FS_TMP/s1" "$FS_TMP/s2" $((64 * 65536)) ||
	fs_die "counters between the scrapes"
echo "ok: two scrapes parse, counters monotonic"

# Request counts against the store's own counters, on a quiet mount:
# scrape, stats, scrape until the two scrapes agree. The cost per hour is
# a mean over the mount's age, none under a second (obj_cost_stats), and
# a quiet machine gets here sooner than that.
sleep 1.2
i=0
while :; do
	curl -sf "$URL" >"$FS_TMP/a"
	"$SHALEFS" stats --raw "$M" >"$FS_TMP/stats" || fs_die "shalefs stats --raw failed"
	curl -sf "$URL" >"$FS_TMP/b"
	rc=0
	"$PY" "$FS_TMP/check.py" match "$FS_TMP/a" "$FS_TMP/b" "$FS_TMP/stats" || rc=$?
	[ "$rc" -eq 0 ] && break
	[ "$rc" -eq 2 ] || fs_die "request counts of /metrics and shalefs stats disagree"
	i=$((i + 1))
	[ $i -lt 50 ] || fs_die "the mount never went quiet for a scrape"
	sleep 0.2
done

# Anything but /metrics is a 404; HEAD works.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")
[ "$code" = 404 ] || fs_die "GET / gave $code, expected 404"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metricsx")
[ "$code" = 404 ] || fs_die "GET /metricsx gave $code, expected 404"
curl -sfI "$URL" | grep -qi '^content-type: text/plain; version=0.0.4' ||
	fs_die "HEAD /metrics: no text format 0.0.4 content type"
echo "ok: 404 elsewhere, content type 0.0.4"

# The port is taken: a second mount fails with one line and mounts nothing.
fs_format "file://$FS_TMP/store2"
mkdir -p "$FS_TMP/mnt2"
rc=0
timeout 60 "$SHALEFS" mount -f -o "metrics=127.0.0.1:$PORT" "file://$FS_TMP/store2" \
	"$FS_TMP/mnt2" >"$FS_TMP/out" 2>"$FS_TMP/err" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fs_die "mount on a port in use exited $rc"
[ "$(wc -l <"$FS_TMP/err")" -eq 1 ] && grep -q "cannot listen on 127.0.0.1:$PORT" "$FS_TMP/err" ||
	{ cat "$FS_TMP/err" >&2; fs_die "mount on a port in use: expected one line naming it"; }
! mountpoint -q "$FS_TMP/mnt2" || fs_die "mounted although the metrics port is in use"
echo "ok: $(cat "$FS_TMP/err")"

# A malformed value is refused with one line.
for bad in metrics= metrics=0 metrics=65536 metrics=localhost:9567 metrics=1.2.3:80 \
	   metrics=127.0.0.1: metrics=:80 'metrics=[::1]' metrics_file=relative; do
	rc=0
	timeout 60 "$SHALEFS" mount -o "$bad" "file://$FS_TMP/store2" "$FS_TMP/mnt2" \
		>"$FS_TMP/out" 2>"$FS_TMP/err" || rc=$?
	[ "$rc" -ne 0 ] && [ "$(wc -l <"$FS_TMP/err")" -eq 1 ] &&
		grep -q "invalid value in option" "$FS_TMP/err" ||
		{ cat "$FS_TMP/err" >&2; fs_die "-o $bad: expected one line refusing it"; }
done
echo "ok: malformed values refused"

# The file once more at unmount: the final counters.
written=$(fs_stat "$M" fs_bytes_written)
fs_umount "$M"
"$PY" "$FS_TMP/check.py" parse "$MF" || fs_die "metrics_file does not parse after unmount"
grep -qx "shalefs_fs_written_bytes_total $written" "$MF" ||
	fs_die "metrics_file after unmount lacks fs_written_bytes_total $written"
curl -s "$URL" >/dev/null 2>&1 && fs_die "the endpoint still answers after unmount"
echo "ok: metrics_file written at unmount, endpoint closed"
echo "PASS"
