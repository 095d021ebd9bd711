# fs_lib.sh - helpers for the fs integration tests (sourced).
#
#   fs_setup NAME          scratch dir $FS_TMP, a trap that unmounts and cleans
#   fs_format STORE [-o OPTS]   `shalefs format` a new store (a file://
#                          directory is created); fails the test on error
#   fs_wait_fenced MNT     wait until MNT, fenced by a newer writer, refuses changes
#   fs_mount STORE MNT [-o OPTS]   start `shalefs mount -f` in the background,
#                          wait until MNT is a mount; sets FS_PID (s3://
#                          stores cache under $FS_TMP/cache)
#   fs_umount MNT [PID]    fusermount3 -u, wait for the daemon (default the
#                          last one mounted), fail unless it exited 0
#   fs_s3_store NAME       print s3://BUCKET/<unique prefix> when the S3 rig is
#                          configured (SHALE_S3_ENDPOINT, SHALE_S3_BUCKET,
#                          AWS_*); empty otherwise; exits 1 when
#                          SHALE_REQUIRE_S3=1 and it is not
#   fs_s3_opts             the -o options for the rig's endpoint
#   fs_tmpfs DIR SIZE      mount a tmpfs of SIZE on DIR (skips the test
#                          when it cannot); the EXIT trap stops the mounts
#                          and daemons first, then unmounts it
#   fs_stat MNT|STORE KEY  print one `shalefs stats --raw` counter (empty when the
#                          stats cannot be read, e.g. the daemon is gone)
SHALEFS=${SHALE_BUILDDIR:-$(pwd)}/cli/shalefs
FS_MOUNTS=""
FS_PIDS=""

fs_die() { echo "FAIL: $*" >&2; exit 1; }

fs_cleanup() {
	for m in $FS_MOUNTS; do
		if mountpoint -q "$m" 2>/dev/null; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true
		fi
	done
	for p in $FS_PIDS; do
		kill "$p" 2>/dev/null || true
	done
	# (an if, not &&: as the EXIT trap's last command, a false test
	# would become the script's exit status, failing a passing test)
	if [ -n "${FS_TMP:-}" ] && [ -z "${FS_KEEP:-}" ]; then
		rm -rf "$FS_TMP"
	fi
}

fs_setup() {
	FS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/shalefs-$1.XXXXXX")
	chmod 755 "$FS_TMP"     # the permission checks run as another user
	trap fs_cleanup EXIT
	trap 'exit 1' INT TERM
	[ -x "$SHALEFS" ] || fs_die "$SHALEFS not built"
	[ -e /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 77; }
}

# fs_wait_fenced MNT: until changes on MNT fail (a newer writer fenced
# it; it notices at its next WAL upload, which an fsync makes).
fs_wait_fenced() {
	i=0
	while touch "$1/probe-$i" 2>/dev/null && sync "$1/probe-$i" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 50 ] || fs_die "the fenced writer of $1 still accepts changes"
		sleep 0.2
	done
}

fs_format() {
	"$SHALEFS" format "$@" >>"$FS_TMP/daemon.log" 2>&1 ||
		{ cat "$FS_TMP/daemon.log" >&2; fs_die "shalefs format $* failed"; }
}

fs_mount() {
	store=$1 mnt=$2
	shift 2
	mkdir -p "$mnt"
	# s3:// mounts cache in the test's own directory, not the machine's.
	case "$store" in
	s3://*) set -- -o "cache_dir=$FS_TMP/cache" "$@" ;;
	esac
	"$SHALEFS" mount -f "$@" "$store" "$mnt" >>"$FS_TMP/daemon.log" 2>&1 &
	FS_PID=$!
	FS_PIDS="$FS_PIDS $FS_PID"
	FS_MOUNTS="$FS_MOUNTS $mnt"
	i=0
	while ! mountpoint -q "$mnt"; do
		if ! kill -0 "$FS_PID" 2>/dev/null; then
			cat "$FS_TMP/daemon.log" >&2
			fs_die "shalefs mount $store $mnt exited before mounting"
		fi
		i=$((i + 1))
		[ $i -lt 600 ] || fs_die "mount of $store on $mnt did not appear in 60 s"
		sleep 0.1
	done
}

fs_umount() {
	mnt=$1
	pid=${2:-$FS_PID}
	fusermount3 -u "$mnt" || fs_die "fusermount3 -u $mnt failed"
	rc=0
	wait "$pid" || rc=$?
	FS_PIDS=$(echo "$FS_PIDS" | sed "s/ $pid\b//")
	if [ "$rc" -ne 0 ]; then
		cat "$FS_TMP/daemon.log" >&2
		fs_die "the shalefs daemon for $mnt exited with $rc, expected 0"
	fi
}

fs_s3_store() {
	if [ -n "${SHALE_S3_ENDPOINT:-}" ] && [ -n "${SHALE_S3_BUCKET:-}" ] &&
	   [ -n "${AWS_ACCESS_KEY_ID:-}" ] && [ -n "${AWS_SECRET_ACCESS_KEY:-}" ]; then
		echo "s3://$SHALE_S3_BUCKET/fs-$1-$$-$(date +%s%N)"
	elif [ "${SHALE_REQUIRE_S3:-0}" = 1 ]; then
		fs_die "SHALE_REQUIRE_S3=1 but the S3 rig is not configured (SHALE_S3_ENDPOINT, SHALE_S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
	fi
}

fs_s3_opts() {
	echo "endpoint=$SHALE_S3_ENDPOINT,path_style,region=${AWS_REGION:-us-east-1}"
}

fs_stat() {
	"$SHALEFS" stats --raw "$1" 2>/dev/null | awk -F': ' -v k="$2" '$1 == k { print $2 }'
}

fs_tmpfs() {
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to mount a tmpfs"; exit 77; }
	FS_TMPFS=$1
	mkdir -p "$FS_TMPFS"
	mount -t tmpfs -o size="$2" tmpfs "$FS_TMPFS" || { echo "SKIP: cannot mount a tmpfs"; exit 77; }
	trap fs_tmpfs_cleanup EXIT
}

# The daemons hold the tmpfs: stop them before unmounting it.
fs_tmpfs_cleanup() {
	for m in $FS_MOUNTS; do
		fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true
	done
	for p in $FS_PIDS; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	FS_MOUNTS="" FS_PIDS=""
	umount "$FS_TMPFS" 2>/dev/null || umount -l "$FS_TMPFS" 2>/dev/null || true
	fs_cleanup
}

# fs_tables STOREDIR: the objects the latest manifest of the file:// store
# in STOREDIR needs, one per line: "table sst/<ULID>.sst" for each table
# (L0 and runs), "data sst/<ULID>.sst" for each data table they reference
# (once). Decodes the manifest as kv/kv_manifest.c describes it.
fs_tables() {
	python3 - "$1" <<'PY'
import os, sys
d = os.path.join(sys.argv[1], "manifest")
m = open(os.path.join(d, max(os.listdir(d))), "rb").read()
assert m[:8] == b"SHMANIF\x01", "not a manifest"
ver = int.from_bytes(m[8:12], "big")
p = 68
def varint():
    global p
    v = s = 0
    while True:
        b = m[p]; p += 1
        v |= (b & 0x7F) << s; s += 7
        if b < 0x80:
            return v
def name(b):
    v = int.from_bytes(b, "big")
    a = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "sst/" + "".join(a[(v >> (125 - 5 * i)) & 31] for i in range(26)) + ".sst"
data = []
def meta():
    global p
    print("table", name(m[p:p + 16])); p += 16
    for _ in range(4):
        varint()
    for _ in range(2):
        n = varint(); p += n
    if ver >= 2:
        for _ in range(varint()):
            n = name(m[p:p + 16]); p += 16
            varint(); varint()
            if n not in data:
                data.append(n)
for _ in range(varint()):
    meta()
for _ in range(varint()):
    varint()
    for _ in range(varint()):
        meta()
for n in data:
    print("data", n)
PY
}
