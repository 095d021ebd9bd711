#!/bin/sh
# takeover.sh - a second writer fences the first mid-workload (docs/testing.md).
#
# TAKEOVER_ROUNDS rounds (default 5), each on a fresh file:// store:
# mount A runs the mixed workload (tort_work random); after a random
# 0.3-1.8 s mount B opens the same store with -o takeover, which fences
# A. Then:
#   * A's workload must stop with EROFS within 30 s, and a new change on A
#     must fail with EROFS;
#   * A never writes again: listing the store, no WAL object carrying A's
#     writer epoch (header bytes 20..27, kv/kv_wal.c) has an id above B's
#     fence (the first WAL object with a higher epoch);
#   * every write A acknowledged (fsync returned 0) is visible in B - all
#     of them, since an fsync that returns after B's fence is itself a bug;
#   * after both unmount, `shalefs fsck` passes.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
. "${SHALE_SRCDIR:-.}/tests/torture/torture_lib.sh"
fs_setup takeover
ROUNDS=${TAKEOVER_ROUNDS:-5}
SEED=${TAKEOVER_SEED:-1}
A=$FS_TMP/a B=$FS_TMP/b
OPTS="memtable_mb=2,flush_interval_ms=50"

# wal_epochs DIR: "ID EPOCH" (both hex, fixed width) per WAL object.
wal_epochs() {
	for f in "$1"/wal/*; do
		[ -f "$f" ] || continue
		id=$(od -An -tx1 -j12 -N8 "$f" | tr -d ' \n')
		ep=$(od -An -tx1 -j20 -N8 "$f" | tr -d ' \n')
		echo "$id $ep"
	done
}

r=1
while [ "$r" -le "$ROUNDS" ]; do
	s=$((SEED * 1000 + r))
	ST=$(tt_store "s$r")
	dir=$FS_TMP/s$r
	: >"$FS_TMP/log.$r"
	: >"$FS_TMP/work.err"
	tt_start "$ST" "$A" "" "$OPTS" || fs_die "round $r: mount A failed"
	pa=$TT_PID
	"$TT_WORK" random "$s" "$A/w" "$FS_TMP/log.$r" 2>"$FS_TMP/work.err" &
	wp=$!
	sleep "$(awk -v s="$s" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 1.5 }')"
	kill -0 "$wp" 2>/dev/null || { cat "$FS_TMP/work.err" >&2; fs_die "round $r: the workload on A stopped early"; }
	epoch_a=$(wal_epochs "$dir" | sort | tail -1 | cut -d' ' -f2)
	tt_start "$ST" "$B" "" "takeover,$OPTS" || { tail -20 "$FS_TMP/daemon.log" >&2; fs_die "round $r: mount B failed"; }
	pb=$TT_PID
	cp "$FS_TMP/log.$r" "$FS_TMP/log.$r.atB"
	# A must notice at its next WAL upload and stop accepting changes.
	i=0
	while kill -0 "$wp" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 300 ] || fs_die "round $r: A still accepts changes 30 s after B's mount"
		sleep 0.1
	done
	wait "$wp" 2>/dev/null || true
	# EROFS from the daemon; or EIO from close/fsync when the kernel's
	# writeback of data A had accepted failed (the kernel reports any
	# writeback error as EIO).
	grep -q -E "Read-only file system|Input/output error" "$FS_TMP/work.err" ||
		{ cat "$FS_TMP/work.err" >&2; fs_die "round $r: A's workload did not stop with EROFS (or EIO at writeback)"; }
	if out=$(mkdir "$A/w/after-fence" 2>&1); then
		fs_die "round $r: the fenced mount A accepted a mkdir"
	fi
	echo "$out" | grep -q "Read-only file system" || fs_die "round $r: mkdir on the fenced A: expected EROFS, got: $out"
	grep "^tort_work" "$FS_TMP/work.err" | sed "s/^/round $r: A stopped: /"
	# Listing: A's epoch must not appear above B's fence.
	wal_epochs "$dir" | sort >"$FS_TMP/wal.$r"
	# ("" forces string comparison: awk takes a hex id like 00e7 for a number)
	fence=$(awk -v a="$epoch_a" '($2 "") > (a "") { print $1; exit }' "$FS_TMP/wal.$r")
	[ -n "$fence" ] || fs_die "round $r: no WAL object with an epoch above A's ($epoch_a): where is B's fence?"
	late=$(awk -v a="$epoch_a" -v f="$fence" '($2 "") == (a "") && ($1 "") > (f "")' "$FS_TMP/wal.$r")
	[ -z "$late" ] || { cat "$FS_TMP/wal.$r" >&2; fs_die "round $r: A wrote WAL objects after B's fence $fence: $late"; }
	sleep 0.5
	wal_epochs "$dir" | sort >"$FS_TMP/wal.$r.2"
	late=$(awk -v a="$epoch_a" -v f="$fence" '($2 "") == (a "") && ($1 "") > (f "")' "$FS_TMP/wal.$r.2")
	[ -z "$late" ] || fs_die "round $r: A wrote WAL objects after B's fence $fence: $late"
	# Everything A acknowledged is in B.
	tt_verify "$B" "round $r: B after the takeover" "$FS_TMP/log.$r"
	a_acked=$(grep -c '^A' "$FS_TMP/log.$r.atB" || true)
	a_all=$(grep -c '^A' "$FS_TMP/log.$r" || true)
	[ "$a_acked" = "$a_all" ] || echo "round $r: note: $((a_all - a_acked)) acknowledgements were logged after B's mount returned (all verified)"
	echo new-writer >"$B/b-was-here"
	fs_umount "$B" "$pb"
	fusermount3 -u "$A" 2>/dev/null || fusermount3 -uz "$A" 2>/dev/null || true
	tt_wait_exit "$pa" 60 || fs_die "round $r: the fenced daemon A did not exit after unmount"
	tt_fsck "$ST" "round $r"
	tt_sum takeovers 1
	echo "round $r: B fenced A (epoch $epoch_a) at WAL $fence; A got EROFS and wrote nothing after; $(cat "$FS_TMP/verify.out")"
	rm -rf "$dir"
	r=$((r + 1))
done
echo "takeover: $ROUNDS takeovers, nothing acknowledged lost, no write by a fenced writer"
