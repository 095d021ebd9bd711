#!/bin/sh
# fsx.sh - the random-operation exerciser (fsx) against a model file,
# several seeds, unmount + remount between phases (each phase starts by
# comparing the whole file, so what survived the remount is checked).
#
# FSX_OPS (total operations, default 12000 in CI) and FSX_SEEDS (default
# "1 2 3") choose the size; FSX_LONG=1 runs 50,000 operations over 5
# seeds. Each seed gets 4 phases.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup fsx
FSX=${SHALE_BUILDDIR:-.}/tests/fs/fsx

if [ "${FSX_LONG:-0}" = 1 ]; then
	seeds=${FSX_SEEDS:-"11 22 33 44 55"}
	total=${FSX_OPS:-50000}
else
	seeds=${FSX_SEEDS:-"1 2 3"}
	total=${FSX_OPS:-12000}
fi
nseeds=$(echo $seeds | wc -w)
phases=4
per=$((total / nseeds / phases))

mkdir -p "$FS_TMP/store" "$FS_TMP/model"
store="file://$FS_TMP/store"
fs_format "$store"
mnt=$FS_TMP/mnt
done_ops=0
for seed in $seeds; do
	for phase in $(seq 1 $phases); do
		opts=""
		# Vary the mount: small write buffer and flush interval on some phases.
		case $phase in
		2) opts="-o write_buffer_mb=1,flush_interval_ms=20" ;;
		4) opts="-o no_writeback_cache" ;;
		esac
		# shellcheck disable=SC2086
		fs_mount "$store" "$mnt" $opts
		"$FSX" -s "$seed" -p "$phase" -n "$per" "$mnt/fsx-$seed" "$FS_TMP/model/fsx-$seed" ||
			fs_die "fsx seed $seed phase $phase failed"
		fs_umount "$mnt"
		done_ops=$((done_ops + per))
	done
	# After the last phase: one more remount and a full compare (0 ops).
	fs_mount "$store" "$mnt"
	"$FSX" -s "$seed" -p 99 -n 0 "$mnt/fsx-$seed" "$FS_TMP/model/fsx-$seed" ||
		fs_die "fsx seed $seed: final compare after remount failed"
	fs_umount "$mnt"
done
echo "fsx: $done_ops operations over seeds $seeds, all phases identical to the model"
