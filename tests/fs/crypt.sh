#!/bin/sh
# crypt.sh - an encrypted store (docs/encryption.md), mounted:
#   * format --encrypt, files with unique names and contents (compressible
#     and not, small and 6 MiB) fsync'd; no object of the store holds any
#     of the names or contents (every object searched, and the search
#     shown to find them in the plaintext);
#   * zstd still applies: the compressible bytes take far less room;
#   * no key, a wrong key, a key for a plain store: refused with the
#     documented lines;
#   * a flipped byte, a cut, two objects' contents swapped, an old
#     manifest put back in place of the newest: reads fail with EIO (or
#     the mount refuses), the log names the object, never other bytes;
#   * rekey to a passphrase: the new one mounts, the old key is refused;
#   * kill -9 during fsync'd writes: nothing acknowledged is lost;
#   * fsck (scrub) is clean and prints no plaintext;
#   * on the S3 rig when it is configured: format, write, search every
#     object fetched raw, wrong key refused, read back.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup crypt
WORK=${SHALE_BUILDDIR:-.}/tests/fs/crash_work
MNT=$FS_TMP/mnt
K1=$FS_TMP/k1 K2=$FS_TMP/k2 PW=$FS_TMP/pass
head -c 32 /dev/urandom >"$K1"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$K2"
echo "a passphrase for crypt.sh $$" >"$PW"
chmod 600 "$K1" "$K2" "$PW"
TAG="zq$$x$(date +%s)"

# The plaintext: names and contents that appear nowhere else.
mkdir -p "$FS_TMP/plain"
i=0
while [ $i -lt 20 ]; do
	echo "small-content-$TAG-$i" >"$FS_TMP/plain/small-name-$TAG-$i"
	i=$((i + 1))
done
awk -v t="$TAG" 'BEGIN { for (i = 0; i < 200000; i++) printf "compressible-%s-line\n", t }' \
	>"$FS_TMP/plain/zip-name-$TAG"
head -c $((6 << 20)) /dev/urandom >"$FS_TMP/plain/rand-name-$TAG"
# needles: the names, the text markers, and 48-byte slices of the random file.
python3 - "$FS_TMP/plain" "$TAG" >"$FS_TMP/needles" <<'EOF'
import os, sys
d, tag = sys.argv[1], sys.argv[2]
out = set()
for n in os.listdir(d):
    out.add(n.encode().hex())
out.add(("small-content-" + tag).encode().hex())
out.add(("compressible-" + tag).encode().hex())
r = open(os.path.join(d, "rand-name-" + tag), "rb").read()
for off in range(0, len(r) - 48, len(r) // 64):
    out.add(r[off:off + 48].hex())
print("\n".join(sorted(out)))
EOF

# search DIR: count needles found in any file under DIR (prints the hits).
search() {
	python3 - "$1" "$FS_TMP/needles" <<'EOF'
import os, sys
needles = [bytes.fromhex(l) for l in open(sys.argv[2]).read().split()]
hits = 0
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        data = open(os.path.join(root, f), "rb").read()
        for n in needles:
            if n in data:
                hits += 1
                print("found %r... in %s" % (n[:24], os.path.join(root, f)), file=sys.stderr)
print(hits)
EOF
}
[ "$(search "$FS_TMP/plain" 2>/dev/null)" -gt 40 ] || fs_die "the search does not find the plaintext in the plaintext"

# copy_in MNT: the plaintext into MNT/d, fsync'd.
copy_in() {
	mkdir -p "$1/d"
	cp "$FS_TMP/plain/"* "$1/d/"
	sync "$1/d/"* "$1/d"
}
# same MNT: every file reads back identical.
same() {
	for f in "$FS_TMP/plain/"*; do
		cmp "$f" "$1/d/$(basename "$f")" || return 1
	done
}

mkdir -p "$FS_TMP/store"
ST="file://$FS_TMP/store"
fs_format --encrypt -o key_file="$K1" "$ST"
grep -q "store format 2, encrypted" "$FS_TMP/daemon.log" || fs_die "format --encrypt did not say it made an encrypted store"
fs_mount "$ST" "$MNT" -o key_file="$K1"
copy_in "$MNT"
same "$MNT" || fs_die "a file read back differs before unmount"
fs_umount "$MNT"
n=$(search "$FS_TMP/store")
[ "$n" = 0 ] || fs_die "$n plaintext names or contents found in the store's objects"
echo "crypt: no plaintext name or content in any of $(find "$FS_TMP/store" -type f | wc -l) objects"
grep -q "encrypted aes-256-gcm" "$FS_TMP/store/shalefs-store" || fs_die "the marker does not say the store is encrypted"
grep -q "^shalefs-store 2$" "$FS_TMP/store/shalefs-store" || fs_die "the marker is not store format 2"
# zstd before encryption: 7 MiB of compressible text and 6 MiB of random
# bytes must take far less than their sum in the tables.
kb=$(du -sk "$FS_TMP/store/sst" | cut -f1)
[ "$kb" -lt 9000 ] || fs_die "the tables take $kb KiB for 13 MiB of which 7 compress well: compression lost?"
echo "crypt: tables take $kb KiB for 6 MiB random + $(($(wc -c <"$FS_TMP/plain/zip-name-$TAG") >> 10)) KiB compressible"

# Keys refused.
refuse() {
	want=$1
	shift
	if "$SHALEFS" "$@" >"$FS_TMP/out" 2>&1; then
		fs_die "shalefs $* worked"
	fi
	grep -q "$want" "$FS_TMP/out" || { cat "$FS_TMP/out" >&2; fs_die "shalefs $*: no '$want'"; }
}
refuse "is encrypted: give its key with -o key_file=PATH or -o passphrase_file=PATH" mount -f "$ST" "$MNT"
refuse "wrong key for encrypted store $ST" mount -f -o key_file="$K2" "$ST" "$MNT"
refuse "wrong key for encrypted store $ST" fsck -o key_file="$K2" "$ST"
refuse "wrong key for encrypted store $ST" stats -o passphrase_file="$PW" "$ST"
chmod 640 "$K1"
refuse "mode 0640 lets group or others read" mount -f -o key_file="$K1" "$ST" "$MNT"
chmod 600 "$K1"
refuse "given as an absolute path" mount -f -o key_file=k1 "$ST" "$MNT"
mkdir -p "$FS_TMP/plainstore"
fs_format "file://$FS_TMP/plainstore"
refuse "is not encrypted" mount -f -o key_file="$K1" "file://$FS_TMP/plainstore" "$MNT"
refuse "unencrypted store" format --encrypt --force -o key_file="$K1" "file://$FS_TMP/plainstore"
echo "crypt: missing, wrong, loose and unexpected keys refused"

# Tampering. Each case starts from a copy of the clean store.
cp -a "$FS_TMP/store" "$FS_TMP/clean"
big=$(cd "$FS_TMP/clean" && ls -S sst | head -1)
second=$(cd "$FS_TMP/clean" && ls -S sst | sed -n 2p)
[ -n "$big" ] || fs_die "no tables in the store"
reset_store() { rm -rf "$FS_TMP/store" && cp -a "$FS_TMP/clean" "$FS_TMP/store"; }
# tampered WHAT OBJECT: mount and read everything; the reads (or the
# mount) must fail, the log must name OBJECT, and no read may return
# other bytes.
tampered() {
	: >"$FS_TMP/t.log"
	mkdir -p "$MNT"
	if "$SHALEFS" mount -o key_file="$K1",log_file="$FS_TMP/t.log" "$ST" "$MNT" \
		>>"$FS_TMP/t.log" 2>&1; then
		i=0
		while ! mountpoint -q "$MNT"; do
			i=$((i + 1))
			[ $i -lt 300 ] || fs_die "$1: mount did not appear"
			sleep 0.1
		done
		bad=0
		for f in "$FS_TMP/plain/"*; do
			if cat "$MNT/d/$(basename "$f")" >"$FS_TMP/got" 2>"$FS_TMP/cat.err"; then
				cmp -s "$f" "$FS_TMP/got" || fs_die "$1: $(basename "$f") read back OTHER bytes"
			else
				grep -q "Input/output error" "$FS_TMP/cat.err" ||
					{ cat "$FS_TMP/cat.err" >&2; fs_die "$1: the read failed, but not with EIO"; }
				bad=$((bad + 1))
			fi
		done
		"$SHALEFS" umount "$MNT" >/dev/null 2>&1 || fusermount3 -u "$MNT" 2>/dev/null || true
		[ "$bad" -gt 0 ] || fs_die "$1: every file read back; the tampering went unnoticed"
		how="$bad files gave EIO"
	else
		how="the mount refused"
	fi
	grep -q "$2" "$FS_TMP/t.log" || { cat "$FS_TMP/t.log" >&2; fs_die "$1: the log does not name $2"; }
	echo "crypt: $1: $how, the log names $2"
}
reset_store
python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(70000); b = f.read(1); f.seek(70000); f.write(bytes([b[0] ^ 1]))' "$FS_TMP/store/sst/$big"
tampered "a flipped byte" "sst/$big"
reset_store
truncate -s $((2 * 16412)) "$FS_TMP/store/sst/$big"
tampered "a table cut short" "sst/$big"
if [ -n "$second" ]; then
	reset_store
	cp "$FS_TMP/clean/sst/$big" "$FS_TMP/store/sst/$second"
	cp "$FS_TMP/clean/sst/$second" "$FS_TMP/store/sst/$big"
	tampered "two tables' contents swapped" "sst/"
fi
# An old manifest put back in place of the newest (a replay).
newest=$(cd "$FS_TMP/clean" && ls manifest | tail -1)
older=$(cd "$FS_TMP/clean" && ls manifest | tail -2 | head -1)
[ "$newest" != "$older" ] || fs_die "only one manifest: nothing to replay"
reset_store
cp "$FS_TMP/clean/manifest/$older" "$FS_TMP/store/manifest/$newest"
tampered "an older manifest restored as the newest" "manifest/$newest"
# A WAL the next mount must replay: fsync'd, then kill -9 before any flush.
reset_store
fs_mount "$ST" "$MNT" -o key_file="$K1"
echo "wal-content-$TAG" >"$MNT/d/wal-name-$TAG"
sync "$MNT/d/wal-name-$TAG" "$MNT/d"
kill -9 "$FS_PID"
wait "$FS_PID" 2>/dev/null || true
FS_PIDS=""
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
wal=$(cd "$FS_TMP/store" && ls wal | tail -1)
[ -n "$wal" ] && ! [ -e "$FS_TMP/clean/wal/$wal" ] || fs_die "the fsync wrote no new WAL object"
python3 -c 'import sys, os; f = open(sys.argv[1], "r+b"); f.seek(os.path.getsize(sys.argv[1]) // 2); b = f.read(1); f.seek(-1, 1); f.write(bytes([b[0] ^ 0x80]))' "$FS_TMP/store/wal/$wal"
tampered "a flipped byte in the WAL to replay" "wal/$wal"
reset_store

# Rekey to a passphrase.
"$SHALEFS" rekey -o key_file="$K1" --new-passphrase-file="$PW" "$ST" >"$FS_TMP/out" 2>&1 ||
	{ cat "$FS_TMP/out" >&2; fs_die "rekey failed"; }
refuse "wrong key for encrypted store $ST" mount -f -o key_file="$K1" "$ST" "$MNT"
fs_mount "$ST" "$MNT" -o passphrase_file="$PW"
same "$MNT" || fs_die "a file differs after rekey"
fs_umount "$MNT"
echo "crypt: rekey: the new passphrase mounts, the old key is refused"

# fsck (the scrub) on the encrypted store: clean, and no plaintext name.
"$SHALEFS" fsck -o passphrase_file="$PW" "$ST" >"$FS_TMP/fsck.out" 2>&1 ||
	{ cat "$FS_TMP/fsck.out" >&2; fs_die "fsck of the encrypted store failed"; }
! grep -q "$TAG" "$FS_TMP/fsck.out" || fs_die "fsck printed plaintext names"

# kill -9 while fsync'd files are written, 3 rounds.
LOG=$FS_TMP/acked.log
: >"$LOG"
r=1
while [ $r -le 3 ]; do
	fs_mount "$ST" "$MNT" -o passphrase_file="$PW"
	mkdir -p "$MNT/w"
	"$WORK" verify "$MNT/w" "$LOG" || fs_die "round $r: acknowledged data lost after a crash"
	"$WORK" run "$r" "$MNT/w" "$LOG" 2>/dev/null &
	wp=$!
	sleep 1.5
	kill -9 "$FS_PID"
	wait "$FS_PID" 2>/dev/null || true
	FS_PIDS=""
	wait "$wp" 2>/dev/null || true
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
	r=$((r + 1))
done
fs_mount "$ST" "$MNT" -o passphrase_file="$PW"
"$WORK" verify "$MNT/w" "$LOG" || fs_die "acknowledged data lost after the last crash"
same "$MNT" || fs_die "a file differs after the crashes"
fs_umount "$MNT"
echo "crypt: 3 kill -9 rounds, $(grep -c '^F' "$LOG") acknowledged file versions all there"

# The S3 rig.
S3=$(fs_s3_store crypt)
if [ -n "$S3" ]; then
	O=$(fs_s3_opts)
	fs_format --encrypt -o "$O,key_file=$K1" "$S3"
	fs_mount "$S3" "$MNT" -o "$O,key_file=$K1"
	copy_in "$MNT"
	fs_umount "$MNT"
	pfx=${S3#s3://$SHALE_S3_BUCKET/}
	sig="aws:amz:${AWS_REGION:-us-east-1}:s3"
	e="x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	# The credentials reach curl through a mode-600 config file, not argv.
	(umask 077 && printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" \
		>"$FS_TMP/curl.cfg")
	mkdir -p "$FS_TMP/s3raw"
	curl -sS -f -K "$FS_TMP/curl.cfg" --aws-sigv4 "$sig" -H "$e" \
		"$SHALE_S3_ENDPOINT/$SHALE_S3_BUCKET?list-type=2&max-keys=1000&prefix=$pfx%2F" \
		-o "$FS_TMP/list.xml" || fs_die "listing $S3 failed"
	n=0
	for key in $(grep -o '<Key>[^<]*</Key>' "$FS_TMP/list.xml" | sed 's/<[^>]*>//g'); do
		curl -sS -f -K "$FS_TMP/curl.cfg" --aws-sigv4 "$sig" -H "$e" \
			"$SHALE_S3_ENDPOINT/$SHALE_S3_BUCKET/$key" -o "$FS_TMP/s3raw/$n" ||
			fs_die "fetching $key failed"
		n=$((n + 1))
	done
	[ "$n" -gt 5 ] || fs_die "only $n objects listed in $S3"
	h=$(search "$FS_TMP/s3raw")
	[ "$h" = 0 ] || fs_die "$h plaintext names or contents found in the S3 store's objects"
	refuse "wrong key for encrypted store $S3" fsck -o "$O,key_file=$K2" "$S3"
	refuse "is encrypted: give its key" fsck -o "$O" "$S3"
	fs_mount "$S3" "$MNT" -o "$O,key_file=$K1,ro"
	same "$MNT" || fs_die "a file read back from S3 differs"
	fs_umount "$MNT"
	echo "crypt: s3: no plaintext in any of $n objects, wrong and missing keys refused, files read back"
else
	echo "crypt: S3 rig not configured, S3 part skipped"
fi
echo "crypt: all checks passed"
