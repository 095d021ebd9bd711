#!/bin/sh
# lease.sh - one writer per store, decided before anything is fenced
# (docs/lease.md), on file:// and on s3:// with the rig:
#   * a second read-write mount of a mounted store fails within lease_wait,
#     non-zero, naming the holder; the first mount keeps working and loses
#     nothing, also across its own unmount and a remount;
#   * -o takeover still takes the store (the old writer turns read-only,
#     nothing it fsync'd is lost);
#   * a kill -9'd holder on this host is taken over without any option;
#   * read-only and checkpoint mounts never wait for, block or fence the
#     writer.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup lease

run() {
	st=$1
	shift
	A=$FS_TMP/a B=$FS_TMP/b C=$FS_TMP/c R=$FS_TMP/r
	fs_format "$st" "$@"
	fs_mount "$st" "$A" "$@"
	PA=$FS_PID
	echo one >"$A/closed"                   # closed, not fsync'd

	# A second writer: refused within lease_wait, holder named.
	mkdir -p "$B"
	t0=$(date +%s)
	if "$SHALEFS" mount -f -o "lease_wait=2${1:+,}$(fs_s3_opts_of "$@")" "$st" "$B" \
		>"$FS_TMP/second.out" 2>&1; then
		fs_die "$st: a second read-write mount succeeded"
	fi
	t1=$(date +%s)
	[ $((t1 - t0)) -le 10 ] || fs_die "$st: the refused mount took $((t1 - t0)) s with lease_wait=2"
	grep -q "is mounted read-write by $(hostname) (pid $PA" "$FS_TMP/second.out" ||
		{ cat "$FS_TMP/second.out" >&2; fs_die "$st: the refusal does not name the holder"; }
	grep -q "takeover" "$FS_TMP/second.out" || fs_die "$st: the refusal does not mention -o takeover"
	mountpoint -q "$B" && fs_die "$st: $B is mounted after a refusal"
	# The first mount keeps working and loses nothing.
	echo two >"$A/after"
	[ "$(cat "$A/closed")" = one ] || fs_die "$st: the holder lost a file after a refused second mount"
	fs_umount "$A" "$PA"
	fs_mount "$st" "$A" "$@"
	PA=$FS_PID
	[ "$(cat "$A/closed")" = one ] && [ "$(cat "$A/after")" = two ] ||
		fs_die "$st: files written around a refused second mount were lost"

	# Readers never block or fence the writer, and the writer's remount
	# does not wait for them.
	"$SHALEFS" checkpoint create "$A" snap >/dev/null || fs_die "$st: checkpoint create failed"
	fs_mount "$st" "$R" -o "ro${1:+,}$(fs_s3_opts_of "$@")"
	PR=$FS_PID
	fs_mount "$st" "$C" -o "checkpoint=snap${1:+,}$(fs_s3_opts_of "$@")"
	PC=$FS_PID
	echo three >"$A/with-readers"
	sync "$A/with-readers"
	t0=$(date +%s)
	fs_umount "$A" "$PA"
	fs_mount "$st" "$A" "$@"
	PA=$FS_PID
	t1=$(date +%s)
	[ $((t1 - t0)) -le 10 ] || fs_die "$st: the writer's remount waited $((t1 - t0)) s beside readers"
	echo four >"$A/still-writable" || fs_die "$st: the writer is not writable beside readers"
	sync "$A/still-writable" || fs_die "$st: fsync failed beside readers"
	[ "$(fs_stat "$A" fs_readonly)" = 0 ] || fs_die "$st: the writer turned read-only beside readers"
	[ "$(cat "$C/closed")" = one ] || fs_die "$st: the checkpoint mount lost a file"
	fs_umount "$C" "$PC"
	fs_umount "$R" "$PR"

	# -o takeover: the old writer is fenced, its fsync'd data is kept.
	echo acked >"$A/acked"
	sync "$A/acked"
	fs_mount "$st" "$B" -o "takeover${1:+,}$(fs_s3_opts_of "$@")"
	PB=$FS_PID
	[ "$(cat "$B/acked")" = acked ] || fs_die "$st: takeover lost an fsync'd file"
	fs_wait_fenced "$A"
	fs_umount "$B" "$PB"
	fusermount3 -u "$A"
	wait "$PA" || true
	FS_PIDS=""

	# kill -9 of the holder: the next mount takes over at once, no option.
	fs_mount "$st" "$A" "$@"
	PA=$FS_PID
	echo crashed >"$A/crash"
	sync "$A/crash"
	kill -9 "$PA"
	fusermount3 -u "$A" 2>/dev/null || fusermount3 -uz "$A" 2>/dev/null || true
	t0=$(date +%s)
	fs_mount "$st" "$A" "$@"
	t1=$(date +%s)
	[ $((t1 - t0)) -le 10 ] || fs_die "$st: taking over a dead holder took $((t1 - t0)) s"
	wait "$PA" 2>/dev/null || true
	[ "$(cat "$A/crash")" = crashed ] || fs_die "$st: an fsync'd file was lost in the crash takeover"
	grep -q "that process is gone (crash recovery)" "$FS_TMP/daemon.log" ||
		fs_die "$st: the crash takeover was not logged"
	fs_umount "$A"
	echo "lease: $st: second mount refused and named, takeover, crash takeover, readers beside the writer"
}

# The s3 options of run's "-o OPTS" arguments, or nothing.
fs_s3_opts_of() {
	[ $# -ge 2 ] && echo "$2" || true
}

run "file://$FS_TMP/store"
s3=$(fs_s3_store lease)
if [ -n "$s3" ]; then
	run "$s3" -o "$(fs_s3_opts)"
else
	echo "S3 rig not configured: s3:// run skipped"
fi
