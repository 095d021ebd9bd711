#!/bin/sh
# s3_fail.sh - an S3 store that refuses writes for a while, on the RGW rig
# (needs SHALE_RGW_DIR: radosgw-admin on the rig's cluster), with a user
# of its own so that nothing else running is disturbed:
#   * over quota (RGW user quota, 24 MiB): 4 MiB files fsync'd one after
#     another until fsync fails - with EDQUOT; every file fsync'd before
#     is intact, rm works, the mount is not read-only; the quota raised,
#     fsync works again without a remount;
#   * the access key revoked: fsync fails with EACCES; the key restored,
#     it works again without a remount;
#   * after all of it a clean unmount, a remount with every fsync'd file,
#     and fsck clean.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup s3fail
if [ -z "$(fs_s3_store probe)" ] || [ -z "${SHALE_RGW_DIR:-}" ]; then
	echo "SKIP: needs the S3 rig (tests/rig/rgw-start) and SHALE_RGW_DIR"
	exit 77
fi
RGWA="radosgw-admin -c $SHALE_RGW_DIR/ceph.conf"
U=fail$$ K=failkey$$ S=failsecret$$ B=fail$$
$RGWA user create --uid="$U" --display-name="$U" --access-key="$K" --secret-key="$S" >/dev/null
$RGWA quota set --quota-scope=user --uid="$U" --max-size=24M >/dev/null
$RGWA quota enable --quota-scope=user --uid="$U" >/dev/null
export AWS_ACCESS_KEY_ID=$K AWS_SECRET_ACCESS_KEY=$S
curl -sS -f -o /dev/null --user "$K:$S" --aws-sigv4 "aws:amz:us-east-1:s3" \
	-H "x-amz-content-sha256: $(printf '' | sha256sum | cut -d' ' -f1)" -X PUT \
	"$SHALE_S3_ENDPOINT/$B" || fs_die "creating bucket $B failed"
ST="s3://$B/fs" MNT=$FS_TMP/mnt O=$(fs_s3_opts)
fs_format "$ST" -o "$O"
fs_mount "$ST" "$MNT" -o "$O,reserve_mb=4"

# fsync_err FILE: fsync FILE; prints OK or the errno name.
fsync_err() {
	python3 -c 'import errno,os,sys
try:
    fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])' "$1"
}
# until_ok FILE WHAT: fsync FILE until it works (20 s at most).
until_ok() {
	i=0
	until [ "$(fsync_err "$1")" = OK ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fs_die "$2: fsync still fails after 20 s"
		sleep 0.2
	done
}

: >"$FS_TMP/acked"
i=0
while :; do
	head -c 4M /dev/urandom >"$FS_TMP/f"
	cp "$FS_TMP/f" "$MNT/f$i"
	e=$(fsync_err "$MNT/f$i")
	[ "$e" = OK ] || break
	echo "f$i $(sha256sum <"$FS_TMP/f" | cut -d' ' -f1)" >>"$FS_TMP/acked"
	i=$((i + 1))
	[ $i -lt 20 ] || fs_die "80 MiB fit under a 24 MiB quota"
done
[ "$e" = EDQUOT ] || fs_die "fsync over quota said $e, expected EDQUOT"
# RGW enforces the quota against usage statistics it caches and updates
# asynchronously, and compaction and GC delete what they replace: how
# many files fit before EDQUOT varies with the rig's timing; one must.
[ "$i" -ge 1 ] || fs_die "no file fits under the quota"
echo "s3_fail: over quota after $i files: fsync said EDQUOT"
check_acked() {
	while read -r f h; do
		[ "$(sha256sum <"$MNT/$f" | cut -d' ' -f1)" = "$h" ] || fs_die "$1: fsync'd $f is lost or changed"
	done <"$FS_TMP/acked"
}
check_acked "over quota"
[ "$(fs_stat "$MNT" fs_readonly)" = 0 ] || fs_die "the mount turned read-only over quota"
# Stats say the store fails while it does. GC deletes garbage at once on
# a full store, which can bring it back under the quota by itself: then
# fill it again.
k=0
until [ "$(fs_stat "$MNT" store_failing)" = 1 ]; do
	k=$((k + 1))
	[ $k -le 5 ] || fs_die "stats do not say the store fails"
	head -c 4M /dev/urandom >"$MNT/g$k"
	fsync_err "$MNT/g$k" >/dev/null
done
rm "$MNT/f$i" || fs_die "rm fails over quota"
$RGWA quota set --quota-scope=user --uid="$U" --max-size=512M >/dev/null
echo after-quota >"$MNT/after-quota"
until_ok "$MNT/after-quota" "the quota raised"
echo "after-quota $(sha256sum <"$MNT/after-quota" | cut -d' ' -f1)" >>"$FS_TMP/acked"

$RGWA key rm --uid="$U" --access-key="$K" >/dev/null
echo revoked >"$MNT/revoked"
e=$(fsync_err "$MNT/revoked")
[ "$e" = EACCES ] || fs_die "fsync with the key revoked said $e, expected EACCES"
[ "$(fs_stat "$MNT" fs_readonly)" = 0 ] || fs_die "the mount turned read-only with the key revoked"
$RGWA key create --uid="$U" --access-key="$K" --secret-key="$S" >/dev/null
until_ok "$MNT/revoked" "the key restored"
echo "revoked $(sha256sum <"$MNT/revoked" | cut -d' ' -f1)" >>"$FS_TMP/acked"
grep -q "the store takes writes again" "$FS_TMP/daemon.log" || fs_die "the recovery was not logged"

fs_umount "$MNT"
fs_mount "$ST" "$MNT" -o "$O"
check_acked "after the remount"
fs_umount "$MNT"
"$SHALEFS" fsck -o "$O" "$ST" >"$FS_TMP/fsck.out" 2>&1 || { cat "$FS_TMP/fsck.out" >&2; fs_die "fsck after the episodes"; }
$RGWA user rm --uid="$U" --purge-data >/dev/null 2>&1 || true
echo "s3_fail: over quota and back, key revoked and back: resumed without a remount, nothing fsync'd lost"
