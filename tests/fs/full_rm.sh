#!/bin/sh
# full_rm.sh - on a full store, deleting files through the mount makes
# room, and writes resume without a remount and without anything freed
# beside the store (kv_reclaim.c): a file:// store on a 96 MiB tmpfs,
# filled with 1 MiB files written and fsync'd one by one until fsync keeps
# failing with ENOSPC; then the older half of them is removed with rm; new
# files are written and fsync'd again; every fsync'd file that was not
# removed is intact, also after a remount, and fsck finds nothing.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup full_rm
DISK=$FS_TMP/disk MNT=$FS_TMP/mnt
fs_tmpfs "$DISK" 96m
ST="file://$DISK/store"
fs_format "$ST"
fs_mount "$ST" "$MNT" -o memtable_mb=2,table_mb=4,reserve_mb=16,unmount_timeout=10,log_level=info

# write_until_full FIRST: write f<FIRST>, f<FIRST+1>, ... (1 MiB, fsync)
# until it fails with ENOSPC eight times over 21 s; appends "name sha"
# of each fsync'd file to acked; prints the number written.
python3 - "$MNT" "$FS_TMP/acked" <<'PY' || fs_die "the fill phase failed"
import errno, hashlib, os, sys, time
mnt, acked = sys.argv[1], sys.argv[2]
log = open(acked, "w")
def attempt(path, data):
    """1 on success, 0 on ENOSPC (anywhere: create, write, fsync)"""
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        return 0
    ok = 1
    try:
        os.write(fd, data)
        os.fsync(fd)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            sys.exit(f"{path}: {errno.errorcode[e.errno]}, expected ENOSPC")
        ok = 0
    try:
        os.close(fd)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            sys.exit(f"close {path}: {errno.errorcode[e.errno]}, expected ENOSPC")
        ok = 0
    return ok
for i in range(200):
    data = os.urandom(1 << 20)
    path = f"{mnt}/f{i:03d}"
    fails = 0
    while not attempt(path, data):
        fails += 1
        if fails == 8:
            break
        time.sleep(3)       # garbage may be collected meanwhile
    if fails == 8:
        try:
            os.unlink(path)
        except OSError:
            pass
        print(f"full_rm: the store is full after {i} files")
        break
    log.write(f"f{i:03d} {hashlib.sha256(data).hexdigest()}\n")
    log.flush()
else:
    sys.exit("200 MiB fit in a 96 MiB store")
PY
n=$(wc -l <"$FS_TMP/acked")
[ "$n" -ge 30 ] || fs_die "only $n MiB of files fit in the 96 MiB store before ENOSPC: garbage is not collected on a full store"
[ "$(fs_stat "$MNT" fs_readonly)" = 0 ] || fs_die "the mount turned read-only on a full store"

diag() {
	grep -v "engine write failed" "$FS_TMP/daemon.log" | tail -30 >&2
	"$SHALEFS" stats --raw "$MNT" 2>/dev/null | grep -E "^(reclaim|reserve|store_|gc_|l0_|compaction)" >&2 || true
	du -sk "$DISK"/store/* >&2 || true
	df -k "$DISK" >&2 || true
}
# Remove the older half through the mount.
half=$((n / 2))
head -n "$half" "$FS_TMP/acked" | while read -r f _; do
	rm "$MNT/$f" || fs_die "rm $f fails on a full store"
done
sed -i "1,${half}d" "$FS_TMP/acked"

# Writes resume by themselves: new files, fsync'd.
python3 - "$MNT" "$FS_TMP/acked" "$half" <<'PY' || { diag; fs_die "writes did not resume after rm"; }
import errno, hashlib, os, sys, time
mnt, acked, want = sys.argv[1], sys.argv[2], int(sys.argv[3]) * 3 // 4
log = open(acked, "a")
deadline = time.time() + 150
for i in range(want):
    data = os.urandom(1 << 20)
    path = f"{mnt}/new{i:03d}"
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            except OSError:
                try:
                    os.close(fd)
                except OSError:
                    pass
                raise
            os.close(fd)
            break
        except OSError as e:
            if e.errno != errno.ENOSPC or time.time() > deadline:
                sys.exit(f"{path}: {errno.errorcode[e.errno]} (after rm of half the files)")
            time.sleep(0.5)
    log.write(f"new{i:03d} {hashlib.sha256(data).hexdigest()}\n")
    log.flush()
print(f"full_rm: {want} new 1 MiB files fsync'd after the rm")
PY

check_acked() {
	while read -r f h; do
		[ "$(sha256sum <"$MNT/$f" | cut -d' ' -f1)" = "$h" ] || fs_die "$1: fsync'd $f is lost or changed"
	done <"$FS_TMP/acked"
}
check_acked "after the rm"
reclaimed=$(fs_stat "$MNT" reclaim_tables)
released=$(fs_stat "$MNT" reserve_releases)
fs_umount "$MNT"
fs_mount "$ST" "$MNT"
check_acked "after a remount"
[ ! -e "$MNT/f000" ] || fs_die "a file removed while the store was full is back"
fs_umount "$MNT"
"$SHALEFS" fsck "$ST" >"$FS_TMP/fsck.out" 2>&1 || { cat "$FS_TMP/fsck.out" >&2; fs_die "fsck after the episode"; }
echo "full_rm: $n files filled the store; rm of $half made room ($reclaimed tables reclaimed, reserve released $released times); writes resumed; nothing fsync'd lost"
