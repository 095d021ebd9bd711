#!/bin/sh
# gc.sh - garbage collection runs on events, never on a timer (kv_gc.c,
# SCHEDULE and A FULL STORE):
#   * overwrites with a small memtable make flushes and compactions, so
#     tables become garbage; with gc_min_age=3 they are deleted once they
#     fall due, with no other activity to wake GC;
#   * then the mount is idle: no store request at all in 20 s, although
#     gc_interval=1 would allow a pass every second;
#   * a full store (the fault layer's switch): garbage younger than
#     gc_min_age (300 s here) is deleted within seconds, because no reader
#     is registered and the mount holds the lease; a registered reader
#     (a read-only mount) keeps that rule in force.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup gc
MNT=$FS_TMP/mnt

# churn MNT N: write and overwrite N 1 MiB files three times, syncing.
churn() {
	for round in 1 2 3; do
		i=0
		while [ $i -lt "$2" ]; do
			head -c 1M /dev/urandom >"$1/f$i"
			i=$((i + 1))
		done
		"$SHALEFS" sync "$1" >/dev/null || fs_die "shalefs sync $1 failed (round $round)"
	done
	(cd "$1" && sha256sum f*) >"$FS_TMP/sums"
}
check_sums() {
	(cd "$1" && sha256sum -c --quiet "$FS_TMP/sums") || fs_die "$2: file contents changed"
}

# wait_stat MNT KEY MIN SECONDS: until counter KEY >= MIN.
wait_stat() {
	i=0
	while :; do
		v=$(fs_stat "$1" "$2")
		[ "${v:-0}" -ge "$3" ] && return 0
		i=$((i + 1))
		[ $i -lt $(($4 * 5)) ] || fs_die "$2 is ${v:-unreadable} after $4 s, expected >= $3"
		sleep 0.2
	done
}

# 1. Due deletions happen by themselves, then nothing at all.
ST="file://$FS_TMP/store"
fs_format "$ST"
fs_mount "$ST" "$MNT" -o memtable_mb=1,gc_interval=1,gc_min_age=3
churn "$MNT" 8
wait_stat "$MNT" gc_deleted_ssts 1 60
# Settle: the last compaction's inputs fall due gc_min_age after it.
prev=-1
i=0
while :; do
	sleep 5
	cur=$(fs_stat "$MNT" objstore_requests)
	[ "$cur" = "$prev" ] && break
	prev=$cur
	i=$((i + 1))
	[ $i -lt 12 ] || fs_die "the store requests never stop on an idle mount ($cur)"
done
passes=$(fs_stat "$MNT" gc_passes)
sleep 20
[ "$(fs_stat "$MNT" objstore_requests)" = "$cur" ] ||
	fs_die "an idle mount made $(( $(fs_stat "$MNT" objstore_requests) - cur )) store requests in 20 s"
[ "$(fs_stat "$MNT" gc_passes)" = "$passes" ] || fs_die "GC ran on an idle mount"
# What GC left is what the engine uses: every table on disk is live.
on_disk=$(ls "$FS_TMP/store/sst" | wc -l)
check_sums "$MNT" "after GC"
fs_umount "$MNT"
fs_mount "$ST" "$MNT"
check_sums "$MNT" "after GC and a remount"
fs_umount "$MNT"
"$SHALEFS" fsck "$ST" >"$FS_TMP/fsck.out" 2>&1 || { cat "$FS_TMP/fsck.out" >&2; fs_die "fsck after GC"; }
echo "gc: due tables deleted, then an idle mount: 0 requests and 0 GC passes in 20 s ($on_disk tables on disk)"

# 2. A full store: garbage goes at once, unless a reader is registered.
FULL=$FS_TMP/full-switch
ST2="file://$FS_TMP/store2"
fs_format "$ST2"
export SHALEFS_FAULTS="full=$FULL"
fs_mount "$ST2" "$MNT" -o memtable_mb=1,gc_interval=1,gc_min_age=300
rw_pid=$FS_PID
unset SHALEFS_FAULTS
churn "$MNT" 8
wait_stat "$MNT" compactions_completed 1 60
sleep 2
[ "$(fs_stat "$MNT" gc_deleted_ssts)" = 0 ] || fs_die "tables younger than gc_min_age were deleted"
full_episode() {
	touch "$FULL"
	echo x >"$MNT/during"
	sync "$MNT/during" 2>/dev/null && fs_die "fsync succeeded on a full store"
	[ "$(fs_stat "$MNT" store_failing)" = 1 ] || fs_die "stats do not say the store is failing"
}
# A registered reader keeps the age rule: it may read the old tables.
RO=$FS_TMP/ro
fs_mount "$ST2" "$RO" -o ro
ro_pid=$FS_PID
full_episode
sleep 4
[ "$(fs_stat "$MNT" gc_deleted_ssts)" = 0 ] || fs_die "a full store's GC deleted young tables under a registered reader"
cat "$RO"/f* >/dev/null || fs_die "the reader cannot read"
rm -f "$FULL"
until sync "$MNT/during" 2>/dev/null; do sleep 0.2; done
fs_umount "$RO" "$ro_pid"
# No reader now: a full store's GC deletes the young garbage at once.
full_episode
wait_stat "$MNT" gc_deleted_ssts 1 15
rm -f "$FULL"
i=0
until sync "$MNT/during" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || fs_die "fsync still fails 20 s after the store has room"
	sleep 0.2
done
check_sums "$MNT" "after a full store's GC"
fs_umount "$MNT" "$rw_pid"
fs_mount "$ST2" "$MNT"
check_sums "$MNT" "after a full store's GC and a remount"
fs_umount "$MNT"
"$SHALEFS" fsck "$ST2" >"$FS_TMP/fsck.out" 2>&1 || { cat "$FS_TMP/fsck.out" >&2; fs_die "fsck after a full store's GC"; }
echo "gc: a full store collects young garbage at once with no reader, and keeps it for a registered one"
