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

# ---- a second mount on a live one: refused, the first stays -----------------
# The kernel would stack it and hide the first, which keeps running.
fs_mount "$ST" "$MP"
echo kept >"$MP/first"
fs_format "file://$FS_TMP/other"
one_line_fail "mount point $MP already has a ShaleFS mounted on it (daemon pid $FS_PID): unmount it first" \
	$S mount "file://$FS_TMP/other" "$MP"
[ "$(grep -c " $MP fuse.shalefs " /proc/mounts)" = 1 ] || fs_die "a second mount was stacked on $MP"
[ "$(cat "$MP/first")" = kept ] || fs_die "$MP no longer shows the first mount"

# ---- a stale mount: the daemon was killed ------------------------------------
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

# ---- df -i: live inodes, exact --------------------------------------------------
DST="file://$FS_TMP/dfstore"
DMP="$FS_TMP/dfmnt"
fs_format "$DST"
fs_mount "$DST" "$DMP"
iused() { df --output=iused "$1" | tail -1 | tr -d ' '; }
[ "$(iused "$DMP")" -eq 1 ] || fs_die "df -i of a new filesystem: $(iused "$DMP") used, expected 1 (the root)"
mkdir "$DMP/d1" "$DMP/d1/d2"
for i in 1 2 3 4 5; do echo "$i" >"$DMP/d1/f$i"; done
ln -s f1 "$DMP/d1/sym"
ln "$DMP/d1/f1" "$DMP/d1/hard"          # a second name, not a second inode
[ "$(iused "$DMP")" -eq 9 ] || fs_die "df -i: $(iused "$DMP") used, expected 9 (root, 2 dirs, 5 files, 1 symlink)"
rm "$DMP/d1/f5" "$DMP/d1/sym"
rmdir "$DMP/d1/d2"
[ "$(iused "$DMP")" -eq 6 ] || fs_die "df -i after rm: $(iused "$DMP") used, expected 6"
fs_umount "$DMP"
fs_mount "$DST" "$DMP"                   # counted again at mount
[ "$(iused "$DMP")" -eq 6 ] || fs_die "df -i after a remount: $(iused "$DMP") used, expected 6"
fs_umount "$DMP"
echo "ok: df -i counts the live inodes"

# ---- size=: df tells the truth, ENOSPC at the limit, nothing lost ---------------
QST="file://$FS_TMP/qstore"
QMP="$FS_TMP/qmnt"
fs_format "$QST"
fs_mount "$QST" "$QMP" -o size=64M
used() { df -B1 --output=used "$1" | tail -1 | tr -d ' '; }
size=$(df -B1 --output=size "$QMP" | tail -1 | tr -d ' ')
[ "$size" -eq $((64 << 20)) ] || fs_die "df size $size, expected 64 MiB (size=64M)"
dd if=/dev/urandom of="$QMP/a" bs=1M count=10 status=none
dd if=/dev/urandom of="$QMP/b" bs=1M count=20 status=none
$S sync "$QMP" || fs_die "shalefs sync failed"
u=$(used "$QMP")
want=$((30 << 20))
[ $((u * 100)) -ge $((want * 95)) ] && [ $((u * 100)) -le $((want * 105)) ] ||
	fs_die "df Used $u, expected within 5% of $want"
avail=$(df -B1 --output=avail "$QMP" | tail -1 | tr -d ' ')
[ $((avail + u)) -eq "$size" ] || fs_die "df Avail $avail + Used $u != Size $size"
echo "ok: df Used $u for $want bytes written (size=64M)"
# The quota: a file that does not fit fails with ENOSPC; what fits is kept.
rc=0
dd if=/dev/urandom of="$QMP/c" bs=1M count=40 conv=fsync status=none 2>"$FS_TMP/dd.err" || rc=$?
[ "$rc" -ne 0 ] || fs_die "writing 40 MiB past a 64 MiB quota holding 30 MiB succeeded"
grep -q "No space left on device" "$FS_TMP/dd.err" || { cat "$FS_TMP/dd.err" >&2; fs_die "dd failed, but not with ENOSPC"; }
[ "$(used "$QMP")" -le "$size" ] || fs_die "df Used $(used "$QMP") above the quota $size"
truncate -s 100M "$QMP/a" 2>/dev/null && fs_die "truncate past the quota succeeded"
rm -f "$QMP/c"
dd if=/dev/urandom of="$QMP/d" bs=1M count=30 status=none || fs_die "30 MiB did not fit in the 34 MiB left"
md5sum "$QMP/a" "$QMP/b" "$QMP/d" >"$FS_TMP/sums"
fs_umount "$QMP"
fs_mount "$QST" "$QMP" -o size=64M
(cd "$QMP" && md5sum "$QMP/a" "$QMP/b" "$QMP/d") | cmp -s - "$FS_TMP/sums" || fs_die "data changed across the remount"
u=$(used "$QMP")
want=$((60 << 20))
[ $((u * 100)) -ge $((want * 95)) ] && [ $((u * 100)) -le $((want * 105)) ] ||
	fs_die "df Used $u after the remount, expected within 5% of $want"
fs_umount "$QMP"
echo "ok: size= gives ENOSPC at the limit; nothing written before is lost"

# ---- one version everywhere -------------------------------------------------------
# configure.ac's AC_INIT is the version: shalefs --version prints it, the
# man page's .TH line carries it, and scripts/quickstart prints what the
# binary says (it names no version of its own).
ver=$(sed -n 's/^AC_INIT(\[shalefs\], \[\([^]]*\)\].*/\1/p' "$SHALE_SRCDIR/configure.ac")
[ -n "$ver" ] || fs_die "no version in configure.ac's AC_INIT"
$S --version | grep -q "^shalefs $ver " || fs_die "shalefs --version: '$($S --version)', expected $ver"
grep -q "^\.TH SHALEFS 1 .* \"shalefs $ver\"" "$SHALE_SRCDIR/cli/shalefs.1" ||
	fs_die "shalefs.1's .TH line does not say shalefs $ver"
grep -q -- '--version' "$SHALE_SRCDIR/scripts/quickstart" || fs_die "quickstart does not print the version"
grep -Eq '[0-9]+\.[0-9]+\.[0-9]+' "$SHALE_SRCDIR/scripts/quickstart" && fs_die "quickstart names a version of its own"
# The man page's SYNOPSIS has every command of shalefs --help, and --version.
syn=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH DESCRIPTION/p' "$SHALE_SRCDIR/cli/shalefs.1")
for c in $($S --help | sed -n 's/^ *\(usage: \)\{0,1\}shalefs \([a-z]*\).*/\2/p' | sort -u); do
	echo "$syn" | grep -q "^\.B shalefs $c" || fs_die "shalefs.1 SYNOPSIS lacks shalefs $c"
done
echo "$syn" | grep -q -- '\\-\\-version' || fs_die "shalefs.1 SYNOPSIS lacks --version"
echo "ok: version $ver in shalefs --version and shalefs.1; SYNOPSIS complete"
