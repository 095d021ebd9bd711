#!/bin/sh
# full.sh - a full store (a file:// store on a 64 MiB tmpfs):
#   * 4 MiB files written and fsync'd one after another until fsync fails:
#     it fails with ENOSPC (not EIO), and df shows the tmpfs's real space;
#   * `shalefs stats` names the failure (store health, last error);
#   * every file fsync'd before is intact, and the mount does not turn
#     read-only: rm works, reads work;
#   * once space is freed (a file beside the store on the same tmpfs is
#     removed), writes and fsync work again - no remount - and the data
#     written while the store was full and fsync'd later is there;
#   * an unmount while the store cannot take writes ends within
#     unmount_timeout, and says what was not stored; the next mount has
#     every fsync'd file.
# Then the same episode on s3:// with the rig (and on file:// without
# it), the store made full and empty again by the fault layer's switch
# (SHALEFS_FAULTS=full=PATH, docs/faults.md): fsync says ENOSPC, rm and
# reads work, writes resume without a remount, nothing fsync'd is lost.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup full
DISK=$FS_TMP/disk MNT=$FS_TMP/mnt
fs_tmpfs "$DISK" 64m
ST="file://$DISK/store"
fs_format "$ST"
head -c 6M /dev/urandom >"$DISK/filler"          # freed later, to make room
fs_mount "$ST" "$MNT" -o unmount_timeout=5

python3 - "$MNT" "$FS_TMP/acked" <<'PY' || fs_die "the fill phase failed"
import errno, hashlib, os, sys
mnt, acked = sys.argv[1], sys.argv[2]
log = open(acked, "w")
for i in range(64):
    data = os.urandom(4 << 20)
    fd = os.open(f"{mnt}/f{i}", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    except OSError as e:
        os.close(fd)
        if e.errno != errno.ENOSPC:
            sys.exit(f"fsync of f{i} failed with {errno.errorcode[e.errno]}, expected ENOSPC")
        print(f"full: fsync of f{i} failed with ENOSPC after {i} files")
        break
    os.close(fd)
    log.write(f"f{i} {hashlib.sha256(data).hexdigest()}\n")
    log.flush()
else:
    sys.exit("64 x 4 MiB fit in a 64 MiB store")
PY
n=$(wc -l <"$FS_TMP/acked")
[ "$n" -ge 5 ] || fs_die "only $n files fit before ENOSPC"
# df tells the truth about a file:// store.
df -P "$MNT" | awk 'NR == 2 { exit !($2 > 50000 && $2 < 70000) }' ||
	{ df -P "$MNT" >&2; fs_die "df does not show the 64 MiB tmpfs"; }

check_acked() {
	while read -r f h; do
		[ "$(sha256sum <"$MNT/$f" | cut -d' ' -f1)" = "$h" ] || fs_die "$1: fsync'd $f is lost or changed"
	done <"$FS_TMP/acked"
}
check_acked "while full"
# Still writable in memory: not read-only.
[ "$(fs_stat "$MNT" fs_readonly)" = 0 ] || fs_die "the mount turned read-only on a full store"
echo small >"$MNT/small" || fs_die "a small write fails on a full store"
if python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT/small" 2>"$FS_TMP/fsync.err"; then
	fs_die "fsync succeeded on a full store"
fi
grep -q "No space left on device" "$FS_TMP/fsync.err" || { cat "$FS_TMP/fsync.err" >&2; fs_die "fsync of a small file on a full store did not say ENOSPC"; }
# (rm making room by itself: tests/fs/full_rm.sh)
last=$(tail -1 "$FS_TMP/acked" | cut -d' ' -f1)
rm "$MNT/$last" || fs_die "rm fails on a full store"
sed -i "/^$last /d" "$FS_TMP/acked"

# Room comes back: everything resumes without a remount.
rm "$DISK/filler"
i=0
until python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT/small" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || fs_die "fsync still fails 20 s after space was freed"
	sleep 0.2
done
head -c 1M /dev/urandom >"$FS_TMP/after"
cp "$FS_TMP/after" "$MNT/after"
sync "$MNT/after" || fs_die "fsync after space was freed failed"
[ "$(fs_stat "$MNT" fs_readonly)" = 0 ] || fs_die "the mount is read-only after the episode"
grep -q "the store takes writes again" "$FS_TMP/daemon.log" || fs_die "the recovery was not logged"
n_err=$(grep -c "the store takes no writes" "$FS_TMP/daemon.log" || true)
[ "$n_err" -le 3 ] || fs_die "the failing store was logged $n_err times (expected a bounded few)"
check_acked "after the episode"

# Fill it again, then unmount while nothing can be stored.
head -c 40M /dev/urandom >"$DISK/filler2" 2>/dev/null || true
head -c 8M /dev/urandom >"$MNT/unstorable" 2>/dev/null || true
t0=$(date +%s)
fusermount3 -u "$MNT"
rc=0
wait "$FS_PID" || rc=$?
FS_PIDS=""
t1=$(date +%s)
[ $((t1 - t0)) -le 30 ] || fs_die "unmount of a full store took $((t1 - t0)) s with unmount_timeout=5"
[ $rc -ne 0 ] || fs_die "the daemon exited 0 although it could not store everything"
grep -q "not durable\|not made durable\|may be lost" "$FS_TMP/daemon.log" ||
	fs_die "the daemon did not say what was not stored"
rm -f "$DISK/filler2"
fs_mount "$ST" "$MNT"
check_acked "after the remount"
cmp "$FS_TMP/after" "$MNT/after" || fs_die "a file fsync'd after the episode is lost"
fs_umount "$MNT"
echo "full: ENOSPC at fsync, rm and reads while full, writes resumed without a remount, unmount ended in $((t1 - t0)) s, nothing fsync'd lost"

# fsync_ok FILE: fsync FILE; 0 on success, else prints the errno name.
fsync_ok() {
	python3 -c 'import errno,os,sys
try:
    fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)
except OSError as e:
    print(errno.errorcode[e.errno]); sys.exit(1)' "$1"
}

switch_episode() {
	st=$1 o=$2 sw=$FS_TMP/full-switch
	rm -f "$sw"
	fs_format "$st" ${o:+-o "$o"}
	export SHALEFS_FAULTS="full=$sw"
	fs_mount "$st" "$MNT" -o "unmount_timeout=5${o:+,$o}"
	unset SHALEFS_FAULTS
	head -c 2M /dev/urandom >"$FS_TMP/s1"
	cp "$FS_TMP/s1" "$MNT/s1"
	fsync_ok "$MNT/s1" >/dev/null || fs_die "$st: fsync before the episode failed"
	touch "$sw"                             # the store is full from here
	echo during >"$MNT/during"
	e=$(fsync_ok "$MNT/during") && fs_die "$st: fsync succeeded on a full store"
	[ "$e" = ENOSPC ] || fs_die "$st: fsync on a full store said $e, expected ENOSPC"
	rm "$MNT/s1" || fs_die "$st: rm fails on a full store"
	# A bigger write on a full store: taken into the buffers, or refused
	# with ENOSPC at close (the store takes only deletes and a trickle).
	cp_full=0
	cp "$FS_TMP/s1" "$MNT/s1b" 2>"$FS_TMP/cp.err" || cp_full=1
	[ $cp_full = 0 ] || grep -q "No space left" "$FS_TMP/cp.err" ||
		{ cat "$FS_TMP/cp.err" >&2; fs_die "$st: a write on a full store failed, but not with ENOSPC"; }
	[ "$(fs_stat "$MNT" store_failing)" = 1 ] || fs_die "$st: stats do not say the store is failing"
	"$SHALEFS" stats "$MNT" >"$FS_TMP/summary" || fs_die "$st: shalefs stats failed"
	grep -q '^store health: failing since .*: No space left on device$' "$FS_TMP/summary" &&
		grep -q '^last error:   [0-9-]*T[0-9:]*Z ' "$FS_TMP/summary" ||
		{ cat "$FS_TMP/summary" >&2; fs_die "$st: the summary does not name the failure"; }
	[ "$(fs_stat "$MNT" fs_readonly)" = 0 ] || fs_die "$st: the mount turned read-only"
	rm "$sw"                                # room again
	e=""
	i=0
	until fsync_ok "$MNT/during" >/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || fs_die "$st: fsync still fails 20 s after the store has room"
		sleep 0.2
	done
	# Data the store refused while full stays buffered, and its errors
	# for fsync to report (as Linux reports writeback errors: the
	# kernel's and the buffer's, each once): those say ENOSPC, and then
	# the data is written.
	[ $cp_full = 0 ] || cp "$FS_TMP/s1" "$MNT/s1b" || fs_die "$st: a write after the store has room failed"
	i=0
	until e=$(fsync_ok "$MNT/s1b"); do
		[ "$e" = ENOSPC ] || fs_die "$st: the error kept from the full store is $e, expected ENOSPC"
		i=$((i + 1))
		[ $i -lt 10 ] || fs_die "$st: fsync of a file written while full still fails after the store has room"
		sleep 0.5
	done
	[ "$(fs_stat "$MNT" store_failing)" = 0 ] || fs_die "$st: stats still say the store fails"
	fs_umount "$MNT"
	fs_mount "$st" "$MNT" ${o:+-o "$o"}
	[ ! -e "$MNT/s1" ] || fs_die "$st: the rm made while full was lost"
	[ "$(cat "$MNT/during")" = during ] || fs_die "$st: a file written while full is lost"
	cmp "$FS_TMP/s1" "$MNT/s1b" || fs_die "$st: a file written while full is lost"
	fs_umount "$MNT"
	echo "full: $st: a full store (fault switch): ENOSPC, rm, resumed, nothing lost"
}
s3=$(fs_s3_store full)
if [ -n "$s3" ]; then
	switch_episode "$s3" "$(fs_s3_opts)"
else
	switch_episode "file://$FS_TMP/switch-store" ""
fi
