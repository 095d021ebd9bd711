#!/bin/sh
# remount.sh - an unmount followed at once by a mount never loses a closed
# file. REMOUNT_ROUNDS rounds (default 5) each of `fusermount3 -u`, of
# SIGTERM to the daemon and of `shalefs umount` (which must return only
# once the daemon has exited), on file:// and on s3:// with the rig: a 48 MiB
# file and 500 small files written without fsync, then the unmount, then
# an immediate `shalefs mount` of the same store (after SIGTERM on another
# mount point: the old one may still be mounted for a moment). The new
# mount waits for the old daemon's release of the lease, and must show
# every byte (sha256). The old daemon must exit 0.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup remount
ROUNDS=${REMOUNT_ROUNDS:-5}
head -c 48M /dev/urandom >"$FS_TMP/big"
BIG=$(sha256sum <"$FS_TMP/big")

# write_round MNT NAME: the round's files under MNT/NAME, closed, never fsync'd.
write_round() {
	mkdir "$1/$2"
	cp "$FS_TMP/big" "$1/$2/big"
	i=0
	while [ $i -lt 500 ]; do
		echo "$2 file $i" >"$1/$2/f$i"
		i=$((i + 1))
	done
}

# check_round MNT NAME WHAT: every byte of write_round NAME is there.
check_round() {
	[ "$(sha256sum <"$1/$2/big")" = "$BIG" ] || fs_die "$3: the 48 MiB file is cut or changed"
	i=0
	while [ $i -lt 500 ]; do
		[ "$(cat "$1/$2/f$i" 2>/dev/null)" = "$2 file $i" ] ||
			fs_die "$3: $2/f$i is missing or changed"
		i=$((i + 1))
	done
}

run() {
	st=$1
	shift
	fs_format "$st" "$@"
	m1=$FS_TMP/m1 m2=$FS_TMP/m2
	fs_mount "$st" "$m1" "$@"
	cur=$m1 prev=""
	for how in umount term cmd; do
		r=1
		while [ $r -le "$ROUNDS" ]; do
			write_round "$cur" "$how$r"
			old=$FS_PID
			if [ $how = umount ]; then
				fusermount3 -u "$cur" || fs_die "fusermount3 -u $cur failed"
				next=$cur
			elif [ $how = cmd ]; then
				# Returns once the daemon has flushed and exited.
				"$SHALEFS" umount "$cur" || fs_die "shalefs umount $cur failed"
				kill -0 "$old" 2>/dev/null && fs_die "shalefs umount returned before the daemon exited"
				next=$cur
			else
				kill -TERM "$old"
				next=$([ "$cur" = "$m1" ] && echo "$m2" || echo "$m1")
			fi
			fs_mount "$st" "$next" "$@"
			rc=0
			wait "$old" || rc=$?
			[ $rc -eq 0 ] || { cat "$FS_TMP/daemon.log" >&2; fs_die "$st: the daemon ended by $how exited $rc"; }
			FS_PIDS=$(echo "$FS_PIDS" | sed "s/ $old\b//")
			mountpoint -q "$cur" && [ "$cur" != "$next" ] && fs_die "$cur still mounted after SIGTERM"
			check_round "$next" "$how$r" "$st, $how round $r"
			rm -r "$next/$how$r"
			cur=$next
			r=$((r + 1))
		done
	done
	fs_umount "$cur"
	echo "remount: $st: $ROUNDS x (fusermount3 -u; mount), $ROUNDS x (SIGTERM; mount) and $ROUNDS x (shalefs umount; mount), 48 MiB + 500 files each, nothing lost"
}

run "file://$FS_TMP/store"
s3=$(fs_s3_store remount)
if [ -n "$s3" ]; then
	run "$s3" -o "$(fs_s3_opts)"
else
	echo "S3 rig not configured: s3:// run skipped"
fi
