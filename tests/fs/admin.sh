#!/bin/sh
# admin.sh - the administrative commands keep every written byte and say
# what they did (docs/lease.md), on file:// and on s3:// with the rig:
#   * format: a mount of a location without a store refuses, naming
#     `shalefs format`; format refuses a store and a non-empty location;
#   * `shalefs sync MNT` and fsync of the mount's root: files closed
#     without fsync survive an immediate kill -9 (flush_interval_ms=60000,
#     so only the sync can have saved them);
#   * checkpoint create MNT|STORE NAME: files closed just before are in it;
#     delete of a mounted checkpoint is refused naming the reader, --force
#     deletes it and the mount says why its reads fail; --expire shows in
#     list;
#   * fsck while a writer runs (files open and unlinked, writes in flight)
#     exits 0; fsck(8) exit codes 0, 1 (--repair), 4, 8; --json;
#   * shalefs umount --lazy: an open file keeps working after the detach,
#     and what it wrote is in the store once it is closed.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup admin

expect_fail() { # WANT_RC PATTERN CMD...: CMD exits WANT_RC and says PATTERN
	want=$1 pat=$2
	shift 2
	rc=0
	"$@" >"$FS_TMP/out" 2>&1 || rc=$?
	[ "$rc" = "$want" ] || { cat "$FS_TMP/out" >&2; fs_die "'$*' exited $rc, expected $want"; }
	grep -q -- "$pat" "$FS_TMP/out" || { cat "$FS_TMP/out" >&2; fs_die "'$*' did not say '$pat'"; }
}

# kill -9 the daemon of MNT (pid PID) and mount the store again at MNT.
crash_remount() {
	kill -9 "$2"
	wait "$2" 2>/dev/null || true
	FS_PIDS=""
	fusermount3 -u "$1" 2>/dev/null || fusermount3 -uz "$1" 2>/dev/null || true
	fs_mount "$st" "$1" $opts
}

run() {
	st=$1 o=${2:-}
	opts=${o:+-o $o}
	oc=${o:+,$o}
	M=$FS_TMP/m C=$FS_TMP/c
	mkdir -p "$M" "$C"

	# format.
	expect_fail 1 "no ShaleFS store at $st; create one with \`shalefs format $st\`" \
		"$SHALEFS" mount -f $opts "$st" "$M"
	fs_format "$st" $opts
	expect_fail 1 "already holds a ShaleFS store" "$SHALEFS" format $opts "$st"

	# sync and fsync of the root.
	fs_mount "$st" "$M" -o "flush_interval_ms=60000$oc"
	mkdir "$M/s"
	for i in 1 2 3 4 5 6 7 8 9 10; do echo "synced $i" >"$M/s/$i"; done
	"$SHALEFS" sync "$M" || fs_die "$st: shalefs sync failed"
	crash_remount "$M" "$FS_PID"
	for i in 1 2 3 4 5 6 7 8 9 10; do
		[ "$(cat "$M/s/$i" 2>/dev/null)" = "synced $i" ] ||
			fs_die "$st: s/$i, written before \`shalefs sync\`, lost by a kill -9 after it"
	done
	fs_umount "$M"
	fs_mount "$st" "$M" -o "flush_interval_ms=60000$oc"
	for i in 1 2 3 4 5; do echo "root $i" >"$M/s/r$i"; done
	python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$M" ||
		fs_die "$st: fsync of the root failed"
	crash_remount "$M" "$FS_PID"
	for i in 1 2 3 4 5; do
		[ "$(cat "$M/s/r$i" 2>/dev/null)" = "root $i" ] ||
			fs_die "$st: s/r$i, written before fsync of the root, lost by a kill -9 after it"
	done
	PM=$FS_PID

	# checkpoints include files closed just before, by mount point and by store.
	echo "before-1" >"$M/ck1"
	"$SHALEFS" checkpoint create "$M" one >/dev/null || fs_die "$st: checkpoint create MNT failed"
	echo "before-2" >"$M/ck2"
	"$SHALEFS" checkpoint create $opts --expire 1h "$st" two >"$FS_TMP/ck.out" ||
		fs_die "$st: checkpoint create STORE failed"
	"$SHALEFS" checkpoint list $opts "$st" >"$FS_TMP/list"
	grep -q "^one" "$FS_TMP/list" || fs_die "$st: list lacks 'one'"
	grep "^two" "$FS_TMP/list" | grep -q "expires=20" || { cat "$FS_TMP/list" >&2; fs_die "$st: list does not show two's expiry"; }
	fs_mount "$st" "$C" -o "checkpoint=two$oc"
	PC=$FS_PID
	[ "$(cat "$C/ck1")" = before-1 ] && [ "$(cat "$C/ck2")" = before-2 ] ||
		fs_die "$st: files closed just before checkpoint create are not in the checkpoint"
	expect_fail 1 "checkpoint 'two' is mounted by $(hostname) (pid $PC" \
		"$SHALEFS" checkpoint delete $opts "$st" two
	[ "$(cat "$C/ck1")" = before-1 ] || fs_die "$st: the refused delete disturbed the checkpoint mount"
	"$SHALEFS" checkpoint delete $opts --force "$st" two >/dev/null || fs_die "$st: delete --force failed"
	"$SHALEFS" checkpoint list $opts "$st" | grep -q "^two" && fs_die "$st: two still listed after --force"
	fs_umount "$C" "$PC"
	"$SHALEFS" checkpoint delete $opts "$st" one >/dev/null || fs_die "$st: delete of an unmounted checkpoint failed"

	# fsck beside a live writer: files open and unlinked, writes in flight.
	mkdir "$M/live"
	exec 7>"$M/live/open-unlinked-1"
	exec 8>"$M/live/open-unlinked-2"
	echo data >&7
	rm "$M/live/open-unlinked-1" "$M/live/open-unlinked-2"
	sync -f "$M"
	( i=0; while [ $i -lt 400 ]; do echo "$i" >"$M/live/w$((i % 50))"; rm -f "$M/live/w$(((i + 25) % 50))"; i=$((i + 1)); done ) &
	wp=$!
	rc=0
	"$SHALEFS" fsck $opts "$st" >"$FS_TMP/fsck.out" 2>&1 || rc=$?
	wait $wp
	[ $rc = 0 ] || { cat "$FS_TMP/fsck.out" >&2; fs_die "$st: fsck beside a live writer exited $rc"; }
	grep -q "open files of the live writer" "$FS_TMP/fsck.out" ||
		{ cat "$FS_TMP/fsck.out" >&2; fs_die "$st: fsck did not report the live writer's open files"; }
	"$SHALEFS" fsck --json $opts "$st" >"$FS_TMP/fsck.json" || fs_die "$st: fsck --json exited non-zero"
	python3 - "$FS_TMP/fsck.json" <<'PY' || fs_die "$st: fsck --json is not the expected JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["exit_code"] == 0 and d["problems"] == [] and d["live_writer"], d
PY
	# Crash with the files still open: their orphans are left behind.
	kill -9 "$PM"
	wait "$PM" 2>/dev/null || true
	FS_PIDS=""
	exec 7>&- 8>&-
	fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M" 2>/dev/null || true
	expect_fail 4 "orphan (unlinked while open) not reclaimed" "$SHALEFS" fsck $opts "$st"
	"$SHALEFS" fsck --json $opts "$st" >"$FS_TMP/fsck.json" && fs_die "$st: fsck --json of a damaged store exited 0"
	python3 - "$FS_TMP/fsck.json" <<'PY' || fs_die "$st: fsck --json does not list the orphans"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["exit_code"] == 4 and len(d["problems"]) == 2, d
assert all("orphan" in p for p in d["problems"]), d
PY
	expect_fail 1 "corrected" "$SHALEFS" fsck --repair $opts "$st"
	"$SHALEFS" fsck $opts "$st" >"$FS_TMP/fsck.out" 2>&1 || { cat "$FS_TMP/fsck.out" >&2; fs_die "$st: fsck after --repair not clean"; }
	expect_fail 8 "could not run" "$SHALEFS" fsck $opts "${st}-none"
	fs_mount "$st" "$M" $opts
	[ "$(cat "$M/ck2")" = before-2 ] || fs_die "$st: data lost around fsck --repair"
	# umount --lazy: detached at once; an open file keeps working until
	# closed, then the daemon flushes and exits.
	PM=$FS_PID
	exec 7>"$M/lazy"
	"$SHALEFS" umount --lazy "$M" || fs_die "$st: shalefs umount --lazy failed"
	mountpoint -q "$M" && fs_die "$st: still mounted after umount --lazy"
	echo "written after the detach" >&7
	exec 7>&-
	wait "$PM" || fs_die "$st: the daemon of a lazy unmount exited non-zero"
	FS_PIDS=""
	fs_mount "$st" "$M" $opts
	[ "$(cat "$M/lazy")" = "written after the detach" ] || fs_die "$st: a file written after umount --lazy is lost"
	"$SHALEFS" umount "$M" || fs_die "$st: shalefs umount failed"
	FS_PIDS=""
	echo "admin: $st: format, sync, fsync of the root, checkpoints, fsck live and exit codes"
}

mkdir -p "$FS_TMP/store"
run "file://$FS_TMP/store"
expect_fail 1 "holds other" sh -c "mkdir -p '$FS_TMP/other' && echo x >'$FS_TMP/other/notes.txt' && '$SHALEFS' format 'file://$FS_TMP/other'"
s3=$(fs_s3_store admin)
if [ -n "$s3" ]; then
	run "$s3" "$(fs_s3_opts)"
else
	echo "S3 rig not configured: s3:// run skipped"
fi
