#!/bin/sh
# operate.sh - running shalefs as an administrator does: a mount whose
# daemon died (every command says to run fusermount3 -u), the options
# fstab and systemd add, df and df -i, the size= quota, the version.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup operate
ST="file://$FS_TMP/store"
MP="$FS_TMP/mnt"
S=$SHALEFS
mkdir -p "$MP"

# one_line_fail PATTERN CMD...: non-zero exit, one stderr line matching PATTERN
one_line_fail() {
	pat=$1
	shift
	rc=0
	timeout 60 "$@" >"$FS_TMP/out" 2>"$FS_TMP/err" </dev/null || rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fs_die "exit $rc, expected a failure: $*"
	[ "$(wc -l <"$FS_TMP/err")" -eq 1 ] || { cat "$FS_TMP/err" >&2; fs_die "not one line: $*"; }
	grep -q -- "$pat" "$FS_TMP/err" || { cat "$FS_TMP/err" >&2; fs_die "no '$pat': $*"; }
	echo "ok: $(cat "$FS_TMP/err")"
}

fs_format "$ST"

# ---- a stale mount: the daemon was killed ------------------------------------
fs_mount "$ST" "$MP"
kill -9 "$FS_PID"
wait "$FS_PID" 2>/dev/null || true
FS_PIDS=""
stat "$MP" >/dev/null 2>&1 && fs_die "$MP is not stale after the daemon was killed"
hint="the mount is stale.*run \`fusermount3 -u $MP\`"
one_line_fail "$hint" $S stats "$MP"
one_line_fail "$hint" $S sync "$MP"
one_line_fail "$hint" $S umount "$MP"
one_line_fail "$hint" $S checkpoint create "$MP" c1
one_line_fail "$hint" $S mount "$ST" "$MP"
fusermount3 -u "$MP" || fs_die "fusermount3 -u of the stale mount failed"

# ---- what fstab and systemd add: accepted and ignored -------------------------
# However the command is called: shalefs mount, or as the mount(8) helpers
# (argv[0] mount.shalefs, mount.fuse.shalefs; mount(8) adds -t TYPE).
FSTAB_OPTS=x-systemd.automount,x-systemd.requires=network-online.target,x-systemd.mount-timeout=30,x-gvfs-show,_netdev,nofail,noauto
mkdir -p "$FS_TMP/bin"
S_ABS=$(cd "$(dirname "$S")" && pwd)/shalefs
ln -s "$S_ABS" "$FS_TMP/bin/mount.shalefs"
ln -s "$S_ABS" "$FS_TMP/bin/mount.fuse.shalefs"
FS_MOUNTS="$FS_MOUNTS $MP"
for how in "$S mount" "$FS_TMP/bin/mount.shalefs" "$FS_TMP/bin/mount.fuse.shalefs"; do
	# shellcheck disable=SC2086
	$how "$ST" "$MP" -o "$FSTAB_OPTS,log_file=$FS_TMP/bg.log" -t fuse.shalefs ||
		fs_die "$how with $FSTAB_OPTS failed"
	mountpoint -q "$MP" || fs_die "$how returned but $MP is not mounted"
	$S umount "$MP" || fs_die "shalefs umount after $how failed"
	echo "ok: $how -o $FSTAB_OPTS mounted"
done

# ---- mount(8) with an fstab line -----------------------------------------------
# mount(8) runs /sbin/mount.fuse.shalefs. Nothing is installed on the host:
# in a private mount namespace (unshare -m) a directory holding only that
# link is bound over /sbin, mount -T reads a temporary fstab, and the mount,
# the daemon's view and the unmount all stay inside the namespace.
if [ "$(id -u)" -eq 0 ] && unshare -m --propagation private true 2>/dev/null; then
	mkdir -p "$FS_TMP/sbin"
	ln -s "$S_ABS" "$FS_TMP/sbin/mount.fuse.shalefs"
	printf '%s %s fuse.shalefs %s,log_file=%s 0 0\n' "$ST" "$MP" \
		"x-systemd.automount,_netdev,nofail" "$FS_TMP/fstab.log" >"$FS_TMP/fstab"
	unshare -m --propagation private sh -c '
		set -e
		mount --bind "$1/sbin" "$(readlink -f /sbin)"
		mount -T "$1/fstab" "$2"
		mountpoint -q "$2"
		echo hello >"$2/via-fstab"
		"$3" umount "$2"
	' sh "$FS_TMP" "$MP" "$S_ABS" || fs_die "mount -T fstab of $ST failed"
	fs_mount "$ST" "$MP"
	[ "$(cat "$MP/via-fstab")" = hello ] || fs_die "what was written through the fstab mount is not there"
	fs_umount "$MP"
	echo "ok: mount -T fstab ($ST $MP fuse.shalefs ...) via /sbin/mount.fuse.shalefs"
else
	echo "skip: mount(8) with an fstab line (needs root and unshare -m)"
fi
