#!/bin/sh
# posix.sh - run the POSIX behaviour suite (posix_suite) on a fresh ShaleFS
# over file:// (with the default inode table and with inode_cache=1), and
# over s3:// when the S3 rig is configured. Each run
# mounts, runs the suite, unmounts and checks the daemon exited 0, then
# mounts again and checks what the suite left is still there.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup posix
SUITE=${SHALE_BUILDDIR:-.}/tests/fs/posix_suite

run_on() {
	store=$1
	shift
	fs_format "$store" "$@"
	mnt=$FS_TMP/mnt
	fs_mount "$store" "$mnt" "$@"
	mkdir "$mnt/suite"
	"$SUITE" "$mnt/suite" "$mnt" || { fs_umount "$mnt" || true; fs_die "posix suite failed on $store"; }
	fs_umount "$mnt"
	# What the suite wrote survives the unmount.
	fs_mount "$store" "$mnt" "$@"
	[ "$(cat "$mnt/suite/app")" = abcdefgh ] || fs_die "$store: suite/app lost its content after remount"
	[ "$(readlink "$mnt/suite/longlink" | wc -c)" = 4001 ] || fs_die "$store: suite/longlink lost after remount"
	# (getfattr: Debian's attr, in SHALE_TEST_PKGS; xa_g got its xattr as
	# a new file, answered from memory until then: now from the engine.)
	[ "$(getfattr --absolute-names --only-values -n user.d "$mnt/suite/xa_d")" = dir ] || fs_die "$store: xattr lost after remount"
	[ "$(getfattr --absolute-names --only-values -n user.new "$mnt/suite/xa_g")" = n ] || fs_die "$store: xa_g's xattr lost after remount"
	[ "$(getfattr --absolute-names -d -m - "$mnt/suite/xa_g" | grep -c '^user\.')" = 1 ] || fs_die "$store: xa_g does not list exactly its one xattr after remount"
	fs_umount "$mnt"
	echo "posix suite passed on $store"
}

mkdir -p "$FS_TMP/store" "$FS_TMP/store-cap1"
run_on "file://$FS_TMP/store" -o allow_other
# Again with an inode table of one object: nearly every inode the kernel
# holds is then a ghost (fs_inode.c, THE CAP), freed and read back.
run_on "file://$FS_TMP/store-cap1" -o allow_other,inode_cache=1
s3=$(fs_s3_store posix)
if [ -n "$s3" ]; then
	POSIX_SUITE_BIG_DIR=${POSIX_SUITE_BIG_DIR:-2000} run_on "$s3" -o "allow_other,$(fs_s3_opts)"
else
	echo "S3 rig not configured: s3:// run skipped"
fi
