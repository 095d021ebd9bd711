#!/bin/sh
# idle.sh - a mount with nothing to do makes no store request (issue 23;
# docs/objstore.md, REQUESTS OF AN IDLE MOUNT):
#   * a writer mount, after a workload of fsyncs, flushes, compactions and
#     the GC deletions they make due (gc_min_age=2; gc_interval=3 lets
#     passes come 3 s apart, which an idle mount must not use), settles
#     and then makes
#     0 requests over IDLE_WINDOW seconds (default 10; bench/cost measures
#     5 minutes after 1 minute of settling), by objstore_requests and in
#     every purpose;
#   * a read-only follower of the same store polls because it is one: in
#     the same window each of its polls costs exactly two GET-class
#     requests (a HEAD of the next manifest, a GET of the next WAL object)
#     and no PUT-class one, at the poll_interval_ms= it was given;
#   * the writer then still works, and GC still collects once there is
#     garbage again.
# On file://, and on s3:// when the rig is configured (SHALE_REQUIRE_S3=1
# makes that mandatory).
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup idle
WINDOW=${IDLE_WINDOW:-10}

# total MNT KEY...: the sum of the counters KEY... of MNT.
total() {
	m=$1
	shift
	"$SHALEFS" stats --raw "$m" >"$FS_TMP/raw" || fs_die "stats --raw $m failed"
	awk -F': ' -v keys=" $* " 'index(keys, " " $1 " ") { s += $2 } END { print s + 0 }' "$FS_TMP/raw"
}

# settle MNT: until nothing is pending for compaction and objstore_requests
# stays put for 6 s (more than gc_interval + gc_min_age, so a due GC pass
# is not mistaken for idleness; the compactor may hold L0 for quiet
# reads for a few seconds first); at most 120 s.
settle() {
	prev=-1 same=0 i=0
	while [ $same -lt 6 ]; do
		cur=$(total "$1" objstore_requests)
		pend=$(total "$1" compaction_pending)
		if [ "$cur" = "$prev" ] && [ "$pend" = 0 ]; then same=$((same + 1)); else same=0; fi
		prev=$cur
		i=$((i + 1))
		[ $i -lt 120 ] || fs_die "$1 never settled: objstore_requests $cur, compaction_pending $pend"
		sleep 1
	done
}

# purposes MNT: "purpose=requests" of every purpose that made any.
purposes() {
	"$SHALEFS" stats --raw "$1" | awk -F': ' '
		/^purpose_.*_requests$/ || /^purpose_.*_requests:/ {
			k = $1; sub(/^purpose_/, "", k); sub(/_(put_class|get_class|delete)_requests$/, "", k)
			n[k] += $2 }
		END { for (k in n) if (n[k]) printf "%s=%d ", k, n[k] }'
}

# overwrite_rounds MNT N: N rounds of six 1 MiB files rewritten, each
# round synced (flushes and compactions, so garbage for GC).
overwrite_rounds() {
	r=0
	while [ $r -lt "$2" ]; do
		i=0
		while [ $i -lt 6 ]; do
			head -c 1M /dev/urandom >"$1/f$i"
			i=$((i + 1))
		done
		"$SHALEFS" sync "$1" >/dev/null || fs_die "shalefs sync $1 failed"
		r=$((r + 1))
	done
}

run() {
	ST=$1 OPTS=$2 name=$3
	M=$FS_TMP/mnt-$name R=$FS_TMP/ro-$name
	fs_format "$ST" ${OPTS:+-o "$OPTS"}
	fs_mount "$ST" "$M" -o "memtable_mb=1,gc_min_age=2,gc_interval=3${OPTS:+,$OPTS}"
	W_PID=$FS_PID
	# Work: fsync'd small files, 1 MiB files overwritten (flushes,
	# compactions, so garbage for GC).
	i=0
	while [ $i -lt 20 ]; do
		echo "small $i" >"$M/s$i"
		sync "$M/s$i"
		i=$((i + 1))
	done
	overwrite_rounds "$M" 3
	(cd "$M" && sha256sum s* f*) >"$FS_TMP/sums-$name"
	fs_mount "$ST" "$R" -o "ro,poll_interval_ms=500${OPTS:+,$OPTS}"
	R_PID=$FS_PID
	settle "$M"
	w0=$(total "$M" objstore_requests) p0=$(purposes "$M")
	r0=$(total "$R" objstore_requests) polls0=$(total "$R" follower_polls)
	rp0=$(total "$R" class_put_class_requests)
	sleep "$WINDOW"
	w1=$(total "$M" objstore_requests) p1=$(purposes "$M")
	r1=$(total "$R" objstore_requests) polls1=$(total "$R" follower_polls)
	rp1=$(total "$R" class_put_class_requests)
	[ "$w1" = "$w0" ] ||
		fs_die "$name: an idle writer made $((w1 - w0)) store requests in $WINDOW s (by purpose: before $p0, after $p1)"
	polls=$((polls1 - polls0))
	# 500 ms: about 2 polls a second (and the stats reads around the
	# window take time too); a loaded machine may lose some.
	[ $polls -ge $((WINDOW)) ] && [ $polls -le $((WINDOW * 2 + 8)) ] ||
		fs_die "$name: the follower polled $polls times in $WINDOW s at poll_interval_ms=500"
	# Each poll's requests are counted after it: allow the one in flight.
	reqs=$((r1 - r0))
	[ $reqs -ge $((2 * polls - 2)) ] && [ $reqs -le $((2 * polls + 2)) ] ||
		fs_die "$name: the follower made $reqs requests in $polls polls, expected 2 a poll"
	# The periodic full LIST (every 30 polls) may fall in the window.
	[ $((rp1 - rp0)) -le $((polls / 30 + 1)) ] ||
		fs_die "$name: the idle follower made $((rp1 - rp0)) PUT-class requests in $polls polls"
	echo "ok: $name: idle writer 0 requests in $WINDOW s; follower $polls polls, $reqs requests ($((rp1 - rp0)) PUT-class)"
	fs_umount "$R" "$R_PID"
	# Still a working filesystem, and GC still collects.
	gc0=$(total "$M" gc_deleted_ssts)
	overwrite_rounds "$M" 2
	(cd "$M" && sha256sum s* f*) >"$FS_TMP/sums-$name"
	i=0
	while [ "$(total "$M" gc_deleted_ssts)" -le "$gc0" ]; do
		i=$((i + 1))
		[ $i -lt 60 ] || fs_die "$name: GC deleted nothing after new garbage"
		sleep 1
	done
	gc1=$(total "$M" gc_deleted_ssts)
	fs_umount "$M" "$W_PID"
	fs_mount "$ST" "$M" ${OPTS:+-o "$OPTS"}
	(cd "$M" && sha256sum -c --quiet "$FS_TMP/sums-$name") || fs_die "$name: contents after a remount"
	fs_umount "$M"
	echo "ok: $name: GC collected again ($gc0 -> $gc1 tables deleted), contents intact"
}

run "file://$FS_TMP/store" "" file
S3=$(fs_s3_store idle)
if [ -n "$S3" ]; then
	run "$S3" "$(fs_s3_opts)" s3
else
	echo "s3: skipped (no rig configured)"
fi
echo PASS
