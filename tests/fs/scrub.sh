#!/bin/sh
# scrub.sh - `shalefs fsck --scrub` names every damaged object and exactly
# the paths whose reads fail. A tree (files of many sizes, a hard link, a
# symlink, nested directories) is written, a checkpoint taken, more
# written, and the store unmounted; scrub of it exits 0. Then, each on a
# fresh copy of that store, one byte is flipped in: a table's data block,
# a table's index, its footer, its index and a data block, the latest manifest, the checkpoint's manifest, a WAL
# object whose records are in tables, and (after a kill -9) a WAL object
# whose records are not, and a data table's block, its index, and both.
# Every time scrub exits 4 and names the object;
# the set of paths it lists equals the set of paths that fail `stat` or
# `cat` through a read-only mount (all of them when the mount refuses,
# which scrub must then say; a damaged table index or footer costs
# nothing: the table is read through an index rebuilt from its data
# blocks; with a data block damaged as well it stays broken, the mount
# still works, the names only that table held cannot be listed: scrub
# names no readable path and reports the listings it could not finish).
# Then SCRUB_FILES files scrubbed in bounded memory. On the S3 rig (when configured) the same cases, each object
# flipped through curl --aws-sigv4 and put back after.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup scrub
MNT=$FS_TMP/mnt

# make_tree MNT: the tree; prints nothing.
make_tree() {
	mkdir -p "$1/a/b/deep" "$1/c" "$1/empty"
	i=1
	while [ $i -le 40 ]; do
		head -c $((i * 7919)) /dev/urandom >"$1/a/f$i"
		i=$((i + 1))
	done
	i=1
	while [ $i -le 30 ]; do
		echo "small file $i" >"$1/a/b/s$i"
		i=$((i + 1))
	done
	head -c 3145728 /dev/urandom >"$1/c/big"
	echo deep >"$1/a/b/deep/leaf"
	ln "$1/a/f5" "$1/hardlink"
	ln -s a/f1 "$1/symlink"
}

# all_paths MNT > FILE: every path below MNT, relative with a leading /.
all_paths() {
	(cd "$1" && find . -mindepth 1 ! -path './.shalefs*' | sed 's|^\.||' | sort)
}

# failing ST FILE: the paths of FILE whose stat or cat fails through a
# read-only mount of ST; "MOUNT_REFUSED" when it cannot be mounted.
failing() {
	mkdir -p "$MNT"
	if ! "$SHALEFS" mount -o "ro${STORE_OPTS:+,$STORE_OPTS}" "$1" "$MNT" >"$FS_TMP/ro.log" 2>&1; then
		echo MOUNT_REFUSED
		return
	fi
	FS_MOUNTS="$FS_MOUNTS $MNT"
	while read -r p; do
		if ! stat "$MNT$p" >/dev/null 2>&1; then
			echo "$p"
		elif [ -f "$MNT$p" ] && [ ! -L "$MNT$p" ] && ! cat "$MNT$p" >/dev/null 2>&1; then
			echo "$p"
		fi
	done <"$2"
	fusermount3 -u "$MNT"
	sleep 0.3
}

# scrub_case NAME ST: scrub --json ST; checks exit 4, the object named
# (pattern $3), and the path set against `failing`.
scrub_case() {
	name=$1 st=$2 pat=$3
	rc=0
	"$SHALEFS" fsck --scrub --json ${STORE_OPTS:+-o "$STORE_OPTS"} "$st" >"$FS_TMP/$name.json" 2>"$FS_TMP/$name.err" || rc=$?
	[ $rc -eq 4 ] || { cat "$FS_TMP/$name.json" "$FS_TMP/$name.err" >&2; fs_die "$name: scrub exited $rc, expected 4"; }
	python3 - "$FS_TMP/$name.json" "$pat" >"$FS_TMP/$name.scrub" <<'PY' || fs_die "$name: the scrub report"
import json, re, sys
r = json.load(open(sys.argv[1]))
objs = [d["object"] for d in r["damage"]]
if not any(re.search(sys.argv[2], o) for o in objs):
    sys.exit(f"no damaged object matches {sys.argv[2]}: {objs}")
if not r["filesystem_opens"]:
    print("MOUNT_REFUSED")
for p in r["paths"]:
    if p["what"] != "listing":
        print(p["path"])
PY
	failing "$st" "$FS_TMP/paths" >"$FS_TMP/$name.fail"
	sort -u "$FS_TMP/$name.scrub" -o "$FS_TMP/$name.scrub"
	sort -u "$FS_TMP/$name.fail" -o "$FS_TMP/$name.fail"
	if [ "${4:-}" = unlisted ]; then
		# The names are only in the damaged object: scrub names no path
		# that reads fine, and each failing path it cannot name lies below
		# a directory whose listing it reports incomplete.
		python3 - "$FS_TMP/$name.json" "$FS_TMP/$name.scrub" "$FS_TMP/$name.fail" <<'PY' || fs_die "$name: the paths scrub names"
import json, sys
r = json.load(open(sys.argv[1]))
named = set(open(sys.argv[2]).read().split())
fail = set(open(sys.argv[3]).read().split())
if named - fail:
    sys.exit(f"named but readable: {sorted(named - fail)}")
dirs = [p["path"] for p in r["paths"] if p["what"] == "listing"]
under = lambda p: any(d == "/" or p.startswith(d.rstrip("/") + "/") for d in dirs)
missed = [p for p in fail - named if not under(p)]
if missed:
    sys.exit(f"fail, not named, and under no incomplete listing: {missed}")
if not dirs:
    sys.exit("no incomplete listing reported")
PY
		echo "scrub: $name: exit 4; $(grep -c . "$FS_TMP/$name.fail") of $(wc -l <"$FS_TMP/paths") paths fail: $(grep -c . "$FS_TMP/$name.scrub" || true) named, the rest under a listing scrub reports incomplete"
		return
	fi
	if ! cmp -s "$FS_TMP/$name.scrub" "$FS_TMP/$name.fail"; then
		echo "scrub names / reads fail:" >&2
		diff "$FS_TMP/$name.scrub" "$FS_TMP/$name.fail" >&2 || true
		cat "$FS_TMP/ro.log" "$FS_TMP/$name.json" >&2
		fs_die "$name: the paths scrub names are not the paths whose reads fail"
	fi
	echo "scrub: $name: exit 4, $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(", ".join(d["object"] + " (" + d["kind"] + ")" for d in r["damage"]))' "$FS_TMP/$name.json") named; $(grep -vc MOUNT_REFUSED "$FS_TMP/$name.fail" || true) of $(wc -l <"$FS_TMP/paths") paths fail, the same $(grep -vc MOUNT_REFUSED "$FS_TMP/$name.scrub" || true) scrub names$(grep -q MOUNT_REFUSED "$FS_TMP/$name.fail" && echo ' (the mount refuses, as scrub says)' || true)"
}

# flip FILE OFFSET: invert one byte.
flip() {
	python3 - "$1" "$2" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xFF]))
PY
}

# fresh [SRC]: a copy of the clean store (or of $FS_TMP/SRC) as
# $FS_TMP/st, printed as a URL.
fresh() {
	rm -rf "$FS_TMP/st"
	cp -a "$FS_TMP/${1:-clean}" "$FS_TMP/st"
	echo "file://$FS_TMP/st"
}

# build_store NAME OPTS: the tree, a checkpoint, more files, in a store at
# $FS_TMP/NAME mounted with -o OPTS; the paths go to $FS_TMP/paths.
build_store() {
	mkdir -p "$FS_TMP/$1"
	fs_format "file://$FS_TMP/$1"
	fs_mount "file://$FS_TMP/$1" "$MNT" -o "$2"
	make_tree "$MNT"
	"$SHALEFS" checkpoint create "$MNT" ck1 >/dev/null || fs_die "checkpoint create"
	mkdir -p "$MNT/later"
	i=1
	while [ $i -le 20 ]; do
		head -c $((i * 3001)) /dev/urandom >"$MNT/later/g$i"
		i=$((i + 1))
	done
	all_paths "$MNT" >"$FS_TMP/paths"
	fs_umount "$MNT"
}

# ---- the stores ---------------------------------------------------------------
# The table cases on a store whose file data is in its tables too (big
# tables, names among data), the data-table cases on one with whole
# chunks in data tables (data_min_kb=64); the two trees have the same paths.
build_store clean memtable_mb=2,data_min_kb=0
build_store clean_dt memtable_mb=2,data_min_kb=64
CLEAN="file://$FS_TMP/clean"

rc=0
"$SHALEFS" fsck --scrub "$CLEAN" >"$FS_TMP/clean.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || { cat "$FS_TMP/clean.out" >&2; fs_die "scrub of a cleanly unmounted store exited $rc"; }
echo "scrub: clean store: exit 0: $(tail -1 "$FS_TMP/clean.out")"

# biggest_sst DIR / biggest_data DIR: the largest table (names, inodes,
# small files) / data table (whole chunks of file data) the latest
# manifest of the store in DIR needs.
biggest_of() {
	fs_tables "$1" >"$FS_TMP/tables" || fs_die "cannot read the manifest of $1"
	awk -v k="$2" -v d="$1" '$1 == k { print d "/" $2 }' "$FS_TMP/tables" >"$FS_TMP/tables.$2"
	[ -s "$FS_TMP/tables.$2" ] || fs_die "no $2 in the manifest of $1"
	xargs ls -S <"$FS_TMP/tables.$2" | head -1
}
biggest_sst() { biggest_of "$1" table; }
biggest_data() { biggest_of "$1" data; }
size_of() { stat -c %s "$1"; }

# unflushed_wal STORE [MOUNT OPTS]: leave a WAL object whose records are in
# no table (one file fsync'd, then kill -9), and list the file in paths.
unflushed_wal() {
	uw_store=$1
	shift
	fs_mount "$uw_store" "$MNT" "$@"
	head -c 100000 /dev/urandom >"$MNT/unflushed"
	sync "$MNT/unflushed"
	kill -9 "$FS_PID"
	wait "$FS_PID" 2>/dev/null || true
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
	echo /unflushed >>"$FS_TMP/paths"
}

# A table's data block.
st=$(fresh)
t=$(biggest_sst "$FS_TMP/st")
flip "$t" $(( $(size_of "$t") / 2 ))
scrub_case sst_block "$st" "^sst/"
[ "$(grep -c . "$FS_TMP/sst_block.scrub")" -ge 1 ] || fs_die "sst_block: no path lost for a flipped data block"

# A table's index (just before the 64-byte footer), then its footer: the
# data blocks hold every key, so the engine finds them by their checksums
# and reads the table through a rebuilt index: scrub reports the damage,
# and no path fails.
for part in index footer; do
	st=$(fresh)
	t=$(biggest_sst "$FS_TMP/st")
	case $part in
	index) flip "$t" $(( $(size_of "$t") - 64 - 12 ));;
	footer) flip "$t" $(( $(size_of "$t") - 30 ));;
	esac
	scrub_case "sst_$part" "$st" "^sst/"
	[ "$(grep -c . "$FS_TMP/sst_$part.fail")" -eq 0 ] || fs_die "sst_$part: paths fail with only the table's $part damaged"
done

# A table's index and one of its data blocks: the table cannot be proved
# whole, so it stays broken; the names only it held cannot be listed.
st=$(fresh)
t=$(biggest_sst "$FS_TMP/st")
flip "$t" $(( $(size_of "$t") - 64 - 12 ))
flip "$t" $(( $(size_of "$t") / 2 ))
scrub_case sst_index_block "$st" "^sst/" unlisted
! grep -q MOUNT_REFUSED "$FS_TMP/sst_index_block.fail" || fs_die "sst_index_block: one damaged table keeps the filesystem from mounting"
[ "$(grep -c . "$FS_TMP/sst_index_block.fail")" -ge 1 ] || fs_die "sst_index_block: no path fails with a table's index and a block damaged"

# A data table (the whole 64 KiB chunks of files): a damaged block loses
# the files with a chunk in it, and scrub names exactly those; a damaged
# index or footer costs nothing (rebuilt from its blocks, as for a
# table); an index and a block: it stays broken, and again the paths
# scrub names are exactly the files whose reads fail.
st=$(fresh clean_dt)
t=$(biggest_data "$FS_TMP/st")
[ -n "$t" ] || fs_die "the store has no data table"
flip "$t" $(( $(size_of "$t") / 2 ))
scrub_case data_block "$st" "^sst/"
[ "$(grep -c . "$FS_TMP/data_block.scrub")" -ge 1 ] || fs_die "data_block: no path lost for a flipped data block"
st=$(fresh clean_dt)
t=$(biggest_data "$FS_TMP/st")
flip "$t" $(( $(size_of "$t") - 64 - 12 ))
scrub_case data_index "$st" "^sst/"
[ "$(grep -c . "$FS_TMP/data_index.fail")" -eq 0 ] || fs_die "data_index: paths fail with only a data table's index damaged"
st=$(fresh clean_dt)
t=$(biggest_data "$FS_TMP/st")
flip "$t" $(( $(size_of "$t") - 64 - 12 ))
flip "$t" $(( $(size_of "$t") / 2 ))
scrub_case data_index_block "$st" "^sst/"
[ "$(grep -c . "$FS_TMP/data_index_block.fail")" -ge 1 ] || fs_die "data_index_block: no path fails"

# The latest manifest.
st=$(fresh)
m=$(ls "$FS_TMP/st/manifest" | tail -1)
flip "$FS_TMP/st/manifest/$m" 20
scrub_case manifest "$st" "^manifest/$m\$"

# The checkpoint's manifest: the live filesystem loses nothing, the
# checkpoint cannot be mounted.
st=$(fresh)
cm=$("$SHALEFS" checkpoint list "$st" | sed -n 's/^ck1\t.*manifest=\([0-9]*\).*/\1/p')
[ -n "$cm" ] || fs_die "checkpoint ck1 not listed"
cmn=$(printf "%020d" "$cm")
flip "$FS_TMP/st/manifest/$cmn" 20
scrub_case ckpt_manifest "$st" "^manifest/$cmn\$"
grep -q '"kind": *"checkpoint manifest"' "$FS_TMP/ckpt_manifest.json" ||
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if any(d["kind"]=="checkpoint manifest" for d in r["damage"]) else 1)' "$FS_TMP/ckpt_manifest.json" ||
	fs_die "ckpt_manifest: not reported as a checkpoint's manifest"
if "$SHALEFS" mount -o checkpoint=ck1 "$st" "$MNT" >/dev/null 2>&1; then
	fusermount3 -u "$MNT"
	fs_die "ckpt_manifest: the damaged checkpoint mounts"
fi

# A WAL object whose records are in tables: damaged, no data lost.
st=$(fresh)
w=$(ls -S "$FS_TMP/st/wal" | head -1)
flip "$FS_TMP/st/wal/$w" $(( $(size_of "$FS_TMP/st/wal/$w") / 2 ))
scrub_case wal_in_tables "$st" "^wal/$w\$"
python3 - "$FS_TMP/wal_in_tables.json" "wal/$w" <<'PY' || fs_die "wal_in_tables: not reported as costing no data"
import json, sys
r = json.load(open(sys.argv[1]))
d = [d for d in r["damage"] if d["object"] == sys.argv[2]][0]
sys.exit(0 if d["paths_lost"] == 0 and r["filesystem_opens"] else 1)
PY

# A WAL object whose records are not in tables (kill -9 after fsync).
st=$(fresh)
unflushed_wal "$st"
w=$(ls "$FS_TMP/st/wal" | tail -1)
flip "$FS_TMP/st/wal/$w" 40
scrub_case wal_unreplayed "$st" "^wal/$w\$"

# ---- an encrypted store -------------------------------------------------------
# A flipped byte in a table of an encrypted store: scrub (with the key)
# names the table and exactly the paths whose reads fail, and prints
# nothing of the files' contents; without the key it refuses.
head -c 32 /dev/urandom >"$FS_TMP/key"
chmod 600 "$FS_TMP/key"
mkdir -p "$FS_TMP/enc"
ENC="file://$FS_TMP/enc"
fs_format --encrypt -o key_file="$FS_TMP/key" "$ENC"
fs_mount "$ENC" "$MNT" -o key_file="$FS_TMP/key"
i=1
while [ $i -le 30 ]; do
	{ echo "secret-content-$i"; head -c $((i * 9000)) /dev/urandom; } >"$MNT/e$i"
	i=$((i + 1))
done
fs_umount "$MNT"
t=$(ls -S "$FS_TMP"/enc/sst/*.sst | head -1)     # its manifest is encrypted
flip "$t" $(( $(size_of "$t") / 2 ))
rc=0
"$SHALEFS" fsck --scrub -o key_file="$FS_TMP/key" "$ENC" >"$FS_TMP/enc.out" 2>&1 || rc=$?
[ $rc -eq 4 ] || { cat "$FS_TMP/enc.out" >&2; fs_die "encrypted: scrub exited $rc, expected 4"; }
grep -q "^damaged: sst/" "$FS_TMP/enc.out" || fs_die "encrypted: the table is not named"
! grep -q "secret-content" "$FS_TMP/enc.out" || fs_die "encrypted: scrub printed file contents"
sed -n 's/^lost: \([^:]*\):.*/\1/p' "$FS_TMP/enc.out" | sort -u >"$FS_TMP/enc.scrub"
mkdir -p "$MNT"
"$SHALEFS" mount -o ro,key_file="$FS_TMP/key" "$ENC" "$MNT" >/dev/null 2>&1 || fs_die "encrypted: ro mount"
i=1
while [ $i -le 30 ]; do
	cat "$MNT/e$i" >/dev/null 2>&1 || echo "/e$i"
	i=$((i + 1))
done | sort -u >"$FS_TMP/enc.fail"
fusermount3 -u "$MNT"
sleep 0.3
cmp -s "$FS_TMP/enc.scrub" "$FS_TMP/enc.fail" ||
	{ diff "$FS_TMP/enc.scrub" "$FS_TMP/enc.fail" >&2; fs_die "encrypted: the paths scrub names are not the paths whose reads fail"; }
[ -s "$FS_TMP/enc.fail" ] || fs_die "encrypted: no path lost for a flipped table byte"
rc=0
"$SHALEFS" fsck --scrub "$ENC" >/dev/null 2>&1 || rc=$?
[ $rc -eq 8 ] || fs_die "encrypted: scrub without the key exited $rc, expected 8"
echo "scrub: encrypted store: exit 4, the table named, $(wc -l <"$FS_TMP/enc.fail") paths fail, the same scrub names, no plaintext printed; without the key: exit 8"

# ---- many files, bounded memory ---------------------------------------------
# SCRUB_FILES files in 100 directories (default 10000; 100000 by hand),
# one block of the directory entries flipped so that the walk reads every
# name: scrub's peak RSS stays under SCRUB_RSS_MIB (an ASan build, a 16 MiB
# block cache, 4 jobs of 8 MiB spans; nothing in it grows with the files).
# ASan's quarantine of freed memory (256 MiB by default) would count in
# the RSS and grow with the allocations made, not with what is live: it is
# held to 8 MiB for this run.
N=${SCRUB_FILES:-10000}
RSS_MAX=${SCRUB_RSS_MIB:-128}
mkdir -p "$FS_TMP/many"
fs_format "file://$FS_TMP/many"
fs_mount "file://$FS_TMP/many" "$MNT"
python3 - "$MNT" "$N" <<'PY' || fs_die "creating $N files"
import os, sys
m, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = f"{m}/d{i % 100}"
    if i < 100:
        os.mkdir(d)
    fd = os.open(f"{d}/file-{i}", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"%d" % i)
    os.close(fd)
PY
fs_umount "$MNT"
t=$(biggest_sst "$FS_TMP/many")
flip "$t" $(( $(size_of "$t") / 3 ))
python3 - "$SHALEFS" "file://$FS_TMP/many" "$RSS_MAX" "$N" <<'PY' || fs_die "scrub of $N files"
import resource, subprocess, sys
shalefs, st, cap, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
import os
env = dict(os.environ)
env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "quarantine_size_mb=8"]))
r = subprocess.run([shalefs, "fsck", "--scrub", "-o", "cache_mb=16", st],
                   capture_output=True, text=True, env=env)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr
if r.returncode != 4:
    sys.exit(f"scrub exited {r.returncode}, expected 4: {summary}")
if rss > cap:
    sys.exit(f"scrub of {n} files peaked at {rss} MiB RSS, over {cap} MiB")
print(f"scrub: {n} files: peak RSS {rss} MiB (cap {cap}): {summary}")
PY

# ---- the S3 rig ------------------------------------------------------------
# The same tree on the rig, and each object kind flipped in turn through
# curl's SigV4 signing (and put back after its case).
S3=$(fs_s3_store scrub)
if [ -n "$S3" ]; then
	opts=$(fs_s3_opts)
	fs_format -o "$opts" "$S3"
	fs_mount "$S3" "$MNT" -o "$opts,cache_size=0,memtable_mb=2"
	make_tree "$MNT"
	"$SHALEFS" checkpoint create "$MNT" ck1 >/dev/null || fs_die "s3: checkpoint create"
	mkdir -p "$MNT/later"
	head -c 50000 /dev/urandom >"$MNT/later/g1"
	all_paths "$MNT" >"$FS_TMP/paths"
	fs_umount "$MNT"
	STORE_OPTS="$opts,cache_size=0"
	rc=0
	"$SHALEFS" fsck --scrub -o "$STORE_OPTS" "$S3" >"$FS_TMP/s3clean.out" 2>&1 || rc=$?
	[ $rc -eq 0 ] || { cat "$FS_TMP/s3clean.out" >&2; fs_die "s3: scrub of a clean store exited $rc"; }
	echo "scrub: s3 clean store: exit 0: $(tail -1 "$FS_TMP/s3clean.out")"
	bucket=${S3#s3://}
	prefix=${bucket#*/}
	bucket=${bucket%%/*}
	url="$SHALE_S3_ENDPOINT/$bucket"
	sig="aws:amz:${AWS_REGION:-us-east-1}:s3"
	empty="x-amz-content-sha256: $(printf '' | sha256sum | cut -d' ' -f1)"
	# s3_pick DIR biggest|last: the key under prefix/DIR/ (largest size, or
	# last name).
	s3_pick() {
		curl -sf --aws-sigv4 "$sig" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "$empty" \
			"$url?list-type=2&prefix=$prefix%2F$1%2F" >"$FS_TMP/list.xml" || fs_die "s3: listing $1/"
		python3 - "$FS_TMP/list.xml" "$2" <<'PY'
import re, sys
x = open(sys.argv[1]).read()
items = re.findall(r"<Key>([^<]*)</Key>.*?<Size>(\d+)</Size>", x, re.S)
print(max(items, key=lambda kv: int(kv[1]))[0] if sys.argv[2] == "biggest" else sorted(items)[-1][0])
PY
	}
	s3_get() {
		curl -sf --aws-sigv4 "$sig" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "$empty" \
			-o "$2" "$url/$1" || fs_die "s3: GET $1"
	}
	s3_put() {
		curl -sf --aws-sigv4 "$sig" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
			-H "x-amz-content-sha256: $(sha256sum <"$2" | cut -d' ' -f1)" \
			-X PUT --data-binary @"$2" "$url/$1" >/dev/null || fs_die "s3: PUT $1"
	}
	# s3_case NAME KEY OFFSET [unlisted]: flip the byte at OFFSET (negative:
	# from the end) of KEY, scrub_case, put the object back.
	s3_case() {
		s3_get "$2" "$FS_TMP/orig"
		cp "$FS_TMP/orig" "$FS_TMP/obj"
		off=$3
		[ "$off" -ge 0 ] || off=$(( $(size_of "$FS_TMP/obj") + off ))
		flip "$FS_TMP/obj" "$off"
		s3_put "$2" "$FS_TMP/obj"
		scrub_case "s3_$1" "$S3" "^${2#"$prefix"/}\$" ${4:-}
		s3_put "$2" "$FS_TMP/orig"
	}
	t=$(s3_pick sst biggest)
	s3_get "$t" "$FS_TMP/size"
	s3_case sst_block "$t" $(( $(size_of "$FS_TMP/size") / 2 ))
	[ -s "$FS_TMP/s3_sst_block.fail" ] || fs_die "s3: no path lost for a flipped table byte"
	s3_case sst_index "$t" -76
	[ ! -s "$FS_TMP/s3_sst_index.fail" ] || fs_die "s3: paths fail with only a table's index damaged"
	s3_case manifest "$(s3_pick manifest last)" 20
	cm=$("$SHALEFS" checkpoint list -o "$STORE_OPTS" "$S3" | sed -n 's/^ck1\t.*manifest=\([0-9]*\).*/\1/p')
	[ -n "$cm" ] || fs_die "s3: checkpoint ck1 not listed"
	s3_case ckpt_manifest "$prefix/manifest/$(printf "%020d" "$cm")" 20
	w=$(s3_pick wal biggest)
	s3_get "$w" "$FS_TMP/size"
	s3_case wal_in_tables "$w" $(( $(size_of "$FS_TMP/size") / 2 ))
	# A WAL object not in tables yet (kill -9 after fsync).
	unflushed_wal "$S3" -o "$STORE_OPTS"
	s3_case wal_unreplayed "$(s3_pick wal last)" 40
	STORE_OPTS=""
fi
echo "scrub: every damaged object named, every path list exact"
