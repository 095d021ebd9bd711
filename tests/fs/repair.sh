#!/bin/sh
# repair.sh - `shalefs fsck --scrub --repair` mends what needs no guess.
# Three files are written and fsync'd one after another, each with
# contents found nowhere else and each after a small file, and the daemon
# is killed (-9), so their records are only in WAL objects. One byte is flipped inside the second
# file's record: the store no longer mounts. Then:
#   - --repair (and --repair --dry-run) lists the cut of that WAL object,
#     the emptying of every later WAL object and the removal of an
#     unreferenced old table planted beside them; it leaves a young one,
#     saying why, and exits 4 without changing one byte of the store;
#   - --repair --yes exits 1, keeps a copy of every WAL object it changed
#     under lost+found/ (equal to the old bytes), and the store mounts: the
#     first file reads whole, and so does the small file written just
#     before the second in the same WAL object; the third is gone with the
#     second's damaged write (the log is cut at its last valid record: what survives is a
#     prefix of the write order), plain fsck finds nothing, scrub exits 0;
#   - --yes without --repair, and --repair while mounted, are refused.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup repair
MNT=$FS_TMP/mnt
ST=$FS_TMP/st
STORE=file://$ST
mkdir -p "$MNT" "$ST"

# digest DIR: one line per file under DIR: sha256 and path.
digest() { (cd "$1" && find . -type f | sort | xargs sha256sum); }

# pattern N: 200 KiB of text that names file N and nothing else.
pattern() { python3 -c 'import sys; sys.stdout.write(("file-%s-contents;" % sys.argv[1]) * 12000)' "$1"; }

fs_format "$STORE"
# Only fsync uploads the WAL here, so each file's object also holds the
# small file written just before it.
fs_mount "$STORE" "$MNT" -o flush_interval_ms=60000
echo before >"$MNT/base"
sync "$MNT/base"
for n in 1 2 3; do
	echo "small $n" >"$MNT/s$n"
	pattern $n >"$MNT/f$n"
	sync "$MNT/f$n"
done
kill -9 "$FS_PID"
wait "$FS_PID" 2>/dev/null || true
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true

# The WAL object with file 2's contents, and a byte inside them.
w2=$(grep -l "file-2-contents" "$ST"/wal/* | head -1)
[ -n "$w2" ] || fs_die "no WAL object holds file 2 (its data went to a table?)"
grep -q "file-3-contents" "$w2" && fs_die "files 2 and 3 share $w2: the test needs them apart"
python3 - "$w2" <<'PY'
import sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
i = d.find(b"file-2-contents") + 5000
d[i] ^= 0xFF
open(p, "wb").write(d)
PY
later=$(ls "$ST/wal" | awk -v w="$(basename "$w2")" '$0 > w')
[ -n "$later" ] || fs_die "no WAL object after $w2"
if "$SHALEFS" mount -o ro "$STORE" "$MNT" >"$FS_TMP/refused.log" 2>&1; then
	fusermount3 -u "$MNT"
	fs_die "the damaged store mounts before the repair"
fi

# Two unreferenced tables: one written long ago (the time is in its
# ULID name), one just now.
t=$(ls "$ST"/sst/*.sst | head -1)
cp "$t" "$ST/sst/01000000000000000000000000.sst"
young=$(python3 -c '
import time
a = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
t = int(time.time() * 1000)
print("".join(a[(t >> (45 - 5 * i)) & 31] for i in range(10)) + "0" * 16)')
cp "$t" "$ST/sst/$young.sst"

# ---- the dry run ---------------------------------------------------------------
digest "$ST" >"$FS_TMP/before.sum"
for form in "--repair" "--repair --dry-run"; do
	rc=0
	# shellcheck disable=SC2086
	"$SHALEFS" fsck --scrub $form "$STORE" >"$FS_TMP/dry.out" 2>&1 || rc=$?
	[ $rc -eq 4 ] || { cat "$FS_TMP/dry.out" >&2; fs_die "fsck --scrub $form exited $rc, expected 4"; }
	grep -q "^repair: would cut wal/$(basename "$w2") at byte [0-9]*: keep [1-9]" "$FS_TMP/dry.out" ||
		{ cat "$FS_TMP/dry.out" >&2; fs_die "$form: no cut of $(basename "$w2") keeping its valid records"; }
	for o in $later; do
		grep -q "^repair: would empty wal/$o: drop its [1-9]" "$FS_TMP/dry.out" ||
			{ cat "$FS_TMP/dry.out" >&2; fs_die "$form: wal/$o not to be emptied"; }
	done
	grep -q "^repair: would remove sst/01000000000000000000000000.sst" "$FS_TMP/dry.out" ||
		{ cat "$FS_TMP/dry.out" >&2; fs_die "$form: the old unreferenced table is not to be removed"; }
	grep -q "^repair: left: sst/$young.sst: not referenced, but written less than" "$FS_TMP/dry.out" ||
		{ cat "$FS_TMP/dry.out" >&2; fs_die "$form: the young table is not reported as left"; }
	grep -q "nothing changed (a dry run)" "$FS_TMP/dry.out" || fs_die "$form: no dry-run line"
	digest "$ST" >"$FS_TMP/after.sum"
	cmp -s "$FS_TMP/before.sum" "$FS_TMP/after.sum" || fs_die "fsck --scrub $form changed the store"
done
echo "repair: dry run: exit 4, $(grep -c '^repair: would' "$FS_TMP/dry.out") actions listed, the store unchanged"

# ---- the refusals --------------------------------------------------------------
rc=0
"$SHALEFS" fsck --yes "$STORE" >/dev/null 2>"$FS_TMP/yes.err" || rc=$?
[ $rc -eq 8 ] && grep -q "apply to fsck --scrub --repair only" "$FS_TMP/yes.err" ||
	fs_die "fsck --yes without --scrub --repair: exit $rc, $(cat "$FS_TMP/yes.err")"
rc=0
"$SHALEFS" fsck --scrub --repair --yes --dry-run "$STORE" >/dev/null 2>"$FS_TMP/yes.err" || rc=$?
[ $rc -eq 8 ] || fs_die "--yes with --dry-run: exit $rc"

# ---- the repair ----------------------------------------------------------------
mkdir -p "$FS_TMP/old"
cp "$w2" "$FS_TMP/old/"
for o in $later; do cp "$ST/wal/$o" "$FS_TMP/old/"; done
rc=0
"$SHALEFS" fsck --scrub --repair --yes --json "$STORE" >"$FS_TMP/yes.json" 2>"$FS_TMP/yes.err" || rc=$?
[ $rc -eq 1 ] || { cat "$FS_TMP/yes.json" "$FS_TMP/yes.err" >&2; fs_die "--repair --yes exited $rc, expected 1"; }
python3 - "$FS_TMP/yes.json" "$ST" "$FS_TMP/old" <<'PY' || fs_die "the repair report or the kept copies"
import json, os, sys
r = json.load(open(sys.argv[1]))
st, old = sys.argv[2], sys.argv[3]
if not r["repair_applied"]:
    sys.exit("not applied")
bad = [a for a in r["repairs"] if not a["done"]]
if bad:
    sys.exit(f"not done: {bad}")
changed = [a for a in r["repairs"] if a["action"] in ("cut_wal", "empty_wal")]
if not changed:
    sys.exit("no WAL object changed")
for a in changed:
    kept = os.path.join(st, a["saved_as"])
    was = os.path.join(old, os.path.basename(a["object"]))
    if open(kept, "rb").read() != open(was, "rb").read():
        sys.exit(f"{a['saved_as']} differs from the old {a['object']}")
PY
[ -e "$ST/sst/01000000000000000000000000.sst" ] && fs_die "the old unreferenced table is still there"
[ -e "$ST/sst/$young.sst" ] || fs_die "the young unreferenced table was removed"
for o in $later; do [ -e "$ST/wal/$o" ] || fs_die "wal/$o is gone (it should be kept, empty)"; done

fs_mount "$STORE" "$MNT" -o ro
[ "$(cat "$MNT/base")" = before ] || fs_die "base lost"
pattern 1 | cmp -s - "$MNT/f1" || fs_die "f1, written before the damaged record, does not read whole"
[ "$(cat "$MNT/s2")" = "small 2" ] || fs_die "s2, in the cut object before the damaged record, was not kept"
[ -e "$MNT/s3" ] && fs_die "s3, written after the cut, is in the filesystem"
[ -e "$MNT/f3" ] && fs_die "f3, written after the cut, is in the filesystem: the log has a hole"
if [ -e "$MNT/f2" ] && [ -s "$MNT/f2" ]; then
	fs_die "f2 has $(stat -c %s "$MNT/f2") bytes: its write was the damaged record"
fi
fs_umount "$MNT"
rc=0
"$SHALEFS" fsck "$STORE" >"$FS_TMP/fsck.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || { cat "$FS_TMP/fsck.out" >&2; fs_die "plain fsck after the repair exited $rc"; }
rc=0
"$SHALEFS" fsck --scrub "$STORE" >"$FS_TMP/scrub.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || { cat "$FS_TMP/scrub.out" >&2; fs_die "scrub after the repair exited $rc"; }
echo "repair: --yes: exit 1, $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(len(r["repairs"]))' "$FS_TMP/yes.json") actions done, old bytes kept; mounts, f1 whole, f3 gone, fsck and scrub exit 0"

# ---- refused while a writer holds the store ------------------------------------
fs_mount "$STORE" "$MNT"
rc=0
"$SHALEFS" fsck --scrub --repair "$STORE" >/dev/null 2>"$FS_TMP/live.err" || rc=$?
[ $rc -eq 8 ] && grep -q "mounted read-write" "$FS_TMP/live.err" ||
	fs_die "--repair of a mounted store: exit $rc, $(cat "$FS_TMP/live.err")"
fs_umount "$MNT"
echo "repair: refused while mounted, and --yes without --scrub --repair"
