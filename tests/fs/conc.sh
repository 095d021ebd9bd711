#!/bin/sh
# conc.sh - 8 threads create/rename/link/unlink/mkdir/rmdir in shared
# directories (conc) for CONC_SECONDS (default 15; the acceptance run uses
# 60), then: no deadlock, the daemon exits 0 at unmount, the tree survives
# a remount, and fsck finds the store clean.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup conc
CONC=${SHALE_BUILDDIR:-.}/tests/fs/conc
SECS=${CONC_SECONDS:-15}
mkdir -p "$FS_TMP/store"
ST="file://$FS_TMP/store"
fs_format "$ST"
MNT=$FS_TMP/mnt
fs_mount "$ST" "$MNT" -o attr_timeout=0.2,entry_timeout=0.2
mkdir "$MNT/c"
timeout $((SECS + 120)) "$CONC" "$MNT/c" "$SECS" 8 || fs_die "conc failed (or hung)"
find "$MNT/c" | sort >"$FS_TMP/before"
fs_umount "$MNT"
fs_mount "$ST" "$MNT"
find "$MNT/c" | sort >"$FS_TMP/after"
cmp -s "$FS_TMP/before" "$FS_TMP/after" || fs_die "the tree changed across the remount"
fs_umount "$MNT"
"$SHALEFS" fsck "$ST" >"$FS_TMP/fsck.out" 2>&1 || { cat "$FS_TMP/fsck.out" >&2; fs_die "fsck found problems"; }
cat "$FS_TMP/fsck.out"
echo "conc: $(wc -l <"$FS_TMP/after") names after $SECS s of 8 threads; fsck clean"
