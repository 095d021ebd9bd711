#!/bin/sh
# dcache.sh - the local disk cache (docs/cache.md) on s3:// (skipped
# without the S3 rig; fails without it when SHALE_REQUIRE_S3=1):
#   * files written, unmounted (the tables are written through into the
#     cache), remounted: reading them all sends no GET for a table
#     (dcache_fetches 0, objstore_get_requests unchanged by the reads);
#   * while mounted, cache entry files are corrupted (a flipped byte),
#     truncated and deleted: every file still reads back its exact bytes
#     and dcache_corrupt counts the bad entries;
#   * with cache_size=4M, reading 20 MiB keeps the entry files within 5%
#     of the cap;
#   * two stores mounted at once with one cache_dir, the same file names
#     holding different bytes: each reads back its own, warm and cold.
set -eu
# (fs_mount sets store= and mnt=: these names are this test's own)
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup dcache

SA=$(fs_s3_store dcache-a)
[ -n "$SA" ] || { echo "SKIP: no S3 rig (tests/rig/rgw-start)"; exit 77; }
SB=$(fs_s3_store dcache-b)
s3=$(fs_s3_opts)
cache=$FS_TMP/cache
MA=$FS_TMP/mnt
MB=$FS_TMP/mnt_b

# The sum of the entry files' disk usage of every store under $cache.
entry_bytes() {
	find "$cache" -type f -path '*/[0-9a-f][0-9a-f]/*' -printf '%b\n' |
		awk '{ s += $1 * 512 } END { print s + 0 }'
}

sums() { (cd "$1" && find . -type f | sort | xargs md5sum); }

fs_format "$SA" -o "$s3"
fs_mount "$SA" "$MA" -o "$s3,cache_dir=$cache,cache_size=64M"
mkdir "$MA/d"
head -c 12582912 /dev/urandom >"$FS_TMP/big"
cp "$FS_TMP/big" "$MA/d/big"
for i in 1 2 3 4 5 6 7 8; do head -c $((i * 50000)) /dev/urandom >"$MA/d/small$i"; done
sums "$MA" >"$FS_TMP/sums"
sync -f "$MA"
fs_umount "$MA"

# Warm remount: the tables are in the cache.
fs_mount "$SA" "$MA" -o "$s3,cache_dir=$cache,cache_size=64M"
g0=$(fs_stat "$MA" objstore_get_requests)
f0=$(fs_stat "$MA" dcache_fetches)
[ -n "$g0" ] && [ -n "$f0" ] || fs_die "shalefs stats has no objstore_get_requests / dcache_fetches"
sums "$MA" | cmp - "$FS_TMP/sums" || fs_die "files differ after a remount with a warm cache"
g1=$(fs_stat "$MA" objstore_get_requests)
f1=$(fs_stat "$MA" dcache_fetches)
hits=$(fs_stat "$MA" dcache_hits)
echo "warm remount: reads sent $((g1 - g0)) GETs, $f1 table GETs in all, $hits cache hits"
[ "$f1" = 0 ] || fs_die "warm remount fetched $f1 table ranges from the store"
[ "$g1" = "$g0" ] || fs_die "reading with a warm cache sent $((g1 - g0)) GETs"
[ "$hits" -gt 0 ] || fs_die "no disk cache hits"
fs_umount "$MA"

# Corrupt, truncate and delete entries under a mounted filesystem.
fs_mount "$SA" "$MA" -o "$s3,cache_dir=$cache,cache_size=64M"
find "$cache" -type f -path '*/[0-9a-f][0-9a-f]/*' | sort >"$FS_TMP/entries"
n=$(wc -l <"$FS_TMP/entries")
[ "$n" -ge 6 ] || fs_die "only $n cache entries"
i=0
while read -r e; do
	size=$(stat -c %s "$e")
	case $((i % 3)) in
	0) # flip a byte in the middle of the payload
		off=$((size - 100))
		b=$(dd if="$e" bs=1 skip=$off count=1 status=none | od -An -tu1 | tr -d ' ')
		printf "$(printf '\\%03o' $(((b + 1) % 256)))" |
			dd of="$e" bs=1 seek=$off count=1 conv=notrunc status=none ;;
	1) truncate -s $((size / 2)) "$e" ;;
	2) rm -f "$e" ;;
	esac
	i=$((i + 1))
done <"$FS_TMP/entries"
sums "$MA" | cmp - "$FS_TMP/sums" || fs_die "files differ after cache entries were corrupted"
bad=$(fs_stat "$MA" dcache_corrupt)
echo "corrupted $n entries: dcache_corrupt $bad"
[ "$bad" -gt 0 ] || fs_die "no corrupt cache entry was counted"
# Refetched and rewritten: good from now on. (The first remount still
# meets the bad entries of what the mount above had read before they were
# spoilt: table footers and indexes, read once at open.)
for pass in 1 2; do
	fs_umount "$MA"
	fs_mount "$SA" "$MA" -o "$s3,cache_dir=$cache,cache_size=64M"
	sums "$MA" | cmp - "$FS_TMP/sums" || fs_die "files differ after the cache was repaired"
done
[ "$(fs_stat "$MA" dcache_fetches)" = 0 ] || fs_die "repaired cache still fetches"
[ "$(fs_stat "$MA" dcache_corrupt)" = 0 ] || fs_die "repaired cache still has bad entries"
fs_umount "$MA"

# The cap: 4 MiB of cache under 20 MiB of reads.
rm -rf "$cache"
fs_mount "$SA" "$MA" -o "$s3,cache_dir=$cache,cache_size=4M"
head -c 8388608 /dev/urandom >"$MA/d/more"
sums "$MA" >"$FS_TMP/sums"
sync -f "$MA"
fs_umount "$MA"
fs_mount "$SA" "$MA" -o "$s3,cache_dir=$cache,cache_size=4M"
cat "$MA/d/big" "$MA/d/more" "$MA/d/big" >/dev/null
used=$(entry_bytes)
ev=$(fs_stat "$MA" dcache_evictions)
echo "cap 4 MiB: entry files use $used bytes, $ev evictions"
[ "$used" -le $((4194304 + 4194304 / 20)) ] || fs_die "cache uses $used bytes, cap 4 MiB"
[ "$ev" -gt 0 ] || fs_die "no evictions under a workload 5x the cap"
[ "$(fs_stat "$MA" dcache_bytes)" -le 4194304 ] || fs_die "dcache_bytes over the cap"
fs_umount "$MA"

# Two stores, one cache directory, same names, different bytes.
rm -rf "$cache"
fs_format "$SB" -o "$s3"
fs_mount "$SA" "$MA" -o "$s3,cache_dir=$cache,cache_size=64M"
pid_a=$FS_PID
fs_mount "$SB" "$MB" -o "$s3,cache_dir=$cache,cache_size=64M"
pid_b=$FS_PID
mkdir -p "$MB/d"
for f in big small1 small2; do head -c "$(stat -c %s "$MA/d/$f")" /dev/urandom >"$MB/d/$f"; done
sums "$MB" >"$FS_TMP/sums_b"
cmp -s "$FS_TMP/sums" "$FS_TMP/sums_b" && fs_die "the two stores hold the same bytes"
sums "$MA" | cmp - "$FS_TMP/sums" || fs_die "store A differs with B mounted on the same cache"
sync -f "$MB"
fs_umount "$MB" "$pid_b"
fs_umount "$MA" "$pid_a"
[ "$(ls "$cache" | wc -l)" = 2 ] || fs_die "expected one cache directory per store in $cache"
for pass in warm warm2; do
	fs_mount "$SA" "$MA" -o "$s3,cache_dir=$cache,cache_size=64M"
	pid_a=$FS_PID
	fs_mount "$SB" "$MB" -o "$s3,cache_dir=$cache,cache_size=64M"
	pid_b=$FS_PID
	sums "$MA" | cmp - "$FS_TMP/sums" || fs_die "store A differs ($pass, shared cache)"
	sums "$MB" | cmp - "$FS_TMP/sums_b" || fs_die "store B differs ($pass, shared cache)"
	[ "$(fs_stat "$MB" dcache_fetches)" = 0 ] || fs_die "store B fetched with a warm cache"
	fs_umount "$MB" "$pid_b"
	fs_umount "$MA" "$pid_a"
done
echo "PASS: dcache.sh"
