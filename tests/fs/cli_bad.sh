#!/bin/sh
# cli_bad.sh - every malformed option, URL and credential case of the
# shalefs command gives a clear one-line message on stderr and a non-zero
# exit, without mounting anything.
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup cli
mkdir -p "$FS_TMP/store" "$FS_TMP/mnt"
touch "$FS_TMP/notadir"
ST="file://$FS_TMP/store"
MP="$FS_TMP/mnt"
n=0

# expect_fail PATTERN CMD...: non-zero exit, exactly one stderr line matching PATTERN
expect_fail() {
	pat=$1
	shift
	rc=0
	timeout 60 "$@" >"$FS_TMP/out" 2>"$FS_TMP/err" </dev/null || rc=$?
	lines=$(wc -l <"$FS_TMP/err")
	if [ "$rc" -eq 0 ]; then
		fs_die "succeeded, expected failure: $*"
	fi
	if [ "$rc" -eq 124 ]; then
		fs_die "timed out: $*"
	fi
	if [ "$lines" -ne 1 ]; then
		cat "$FS_TMP/err" >&2
		fs_die "expected one line on stderr, got $lines: $*"
	fi
	if ! grep -q -- "$pat" "$FS_TMP/err"; then
		cat "$FS_TMP/err" >&2
		fs_die "message does not match '$pat': $*"
	fi
	if mountpoint -q "$MP"; then
		fs_die "something got mounted by: $*"
	fi
	echo "ok: $(cat "$FS_TMP/err")"
	n=$((n + 1))
}

S=$SHALEFS
expect_fail "usage" $S
expect_fail "unknown command 'frobnicate'" $S frobnicate
expect_fail "missing STORE" $S mount
expect_fail "missing MOUNTPOINT" $S mount "$ST"
expect_fail "too many arguments" $S mount "$ST" "$MP" extra
expect_fail "ftp://x: invalid store URL: unknown scheme" $S mount ftp://x "$MP"
expect_fail "file://relative: invalid store URL" $S mount file://relative "$MP"
expect_fail "/plain/path: invalid store URL" $S mount /plain/path "$MP"
expect_fail "invalid store URL" $S mount "" "$MP"
expect_fail "s3://: invalid store URL" $S mount s3:// "$MP"
expect_fail "s3://Bad_Bucket: invalid store URL" $S mount s3://Bad_Bucket "$MP"
expect_fail "mem:// stores live inside one process" $S mount mem://x "$MP"
# Empty, "." and ".." path segments; AWS's bucket rules (without path_style).
expect_fail "s3://bkt/../x: invalid store URL: '.' and '..' path segments" $S mount s3://bkt/../x "$MP"
expect_fail "s3://bkt/./x: invalid store URL: '.' and '..' path segments" $S mount s3://bkt/./x "$MP"
expect_fail "s3://bkt//x: invalid store URL: empty path segment" $S mount s3://bkt//x "$MP"
expect_fail "file:///a/../b: invalid store URL: '.' and '..' path segments" $S mount file:///a/../b "$MP"
expect_fail "file:///a//b: invalid store URL: empty path segment" $S mount file:///a//b "$MP"
expect_fail "s3://192.168.5.4: invalid store URL: bucket name must not be an IP address" \
	$S mount s3://192.168.5.4 "$MP"
expect_fail "s3://a..b: invalid store URL: bucket name must not contain '..'" $S mount s3://a..b "$MP"
expect_fail "invalid store URL: .*only with -o path_style" $S format s3://Bad_Bucket
# With path_style (or a non-AWS endpoint) the service decides: the name is
# taken, and it is the (unreachable) endpoint that fails. A LIST of the
# whole store names no object: "s3 LIST: ...", never "s3 LIST : ...".
for o in endpoint=http://127.0.0.1:1,path_style endpoint=http://127.0.0.1:1; do
	expect_fail "store s3://Bad_Bucket: s3 LIST: GET 127.0.0.1:1" env AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y \
		$S mount -f -o $o s3://Bad_Bucket "$MP"
done
expect_fail "does not exist" $S mount -f "file://$FS_TMP/nope" "$MP"
expect_fail "mount point $FS_TMP/nomp: No such file" $S mount "$ST" "$FS_TMP/nomp"
expect_fail "mount point $FS_TMP/notadir is not a directory" $S mount "$ST" "$FS_TMP/notadir"
expect_fail "unknown mount option 'bogus'" $S mount -o bogus "$ST" "$MP"
expect_fail "unknown mount option 'bogus=1'" $S mount -o ro,bogus=1 "$ST" "$MP"
expect_fail "unknown argument '-x'" $S mount -x "$ST" "$MP"
expect_fail "invalid value in option 'metrics=localhost:9567'" $S mount -o metrics=localhost:9567 "$ST" "$MP"
expect_fail "invalid value in option 'metrics=70000'" $S mount -o metrics=70000 "$ST" "$MP"
expect_fail "metrics file must be an absolute path" $S mount -o metrics_file=m.prom "$ST" "$MP"
expect_fail "apply to shalefs mount only" $S stats -o metrics=9567 "$ST"
expect_fail "flush_interval_ms=abc" $S mount -o flush_interval_ms=abc "$ST" "$MP"
expect_fail "invalid value in option 'price_put=-1': expected a price in dollars" \
	$S mount -o price_put=-1 "$ST" "$MP"
expect_fail "invalid value in option 'price_get=abc'" $S mount -o price_get=abc "$ST" "$MP"
expect_fail "invalid value in option 'price_gb_month=2000'" $S mount -o price_gb_month=2000 "$ST" "$MP"
expect_fail "poll_interval_ms=5" $S mount -o poll_interval_ms=5 "$ST" "$MP"
expect_fail "flush_interval_ms=0" $S mount -o flush_interval_ms=0 "$ST" "$MP"
expect_fail "flush_interval_ms=-5" $S mount -o flush_interval_ms=-5 "$ST" "$MP"
expect_fail "flush_interval_ms=" $S mount -o flush_interval_ms= "$ST" "$MP"
expect_fail "cache_mb=12x" $S mount -o cache_mb=12x "$ST" "$MP"
expect_fail "cache_mb=99999999999" $S mount -o cache_mb=99999999999 "$ST" "$MP"
expect_fail "write_buffer_mb=0" $S mount -o write_buffer_mb=0 "$ST" "$MP"
expect_fail "attr_timeout=-1" $S mount -o attr_timeout=-1 "$ST" "$MP"
expect_fail "attr_timeout=soon" $S mount -o attr_timeout=soon "$ST" "$MP"
expect_fail "entry_timeout=nan" $S mount -o entry_timeout=nan "$ST" "$MP"
expect_fail "checkpoint=' needs a name" $S mount -o checkpoint= "$ST" "$MP"
expect_fail "apply to s3:// stores only" $S mount -o endpoint=http://x "$ST" "$MP"
expect_fail "apply to s3:// stores only" $S mount -o region=eu-west-1 "$ST" "$MP"
expect_fail "apply to s3:// stores only" $S mount -o sign_payload "$ST" "$MP"
expect_fail "single_writer_unsafe' applies to s3://" $S mount -f -o single_writer_unsafe "$ST" "$MP"
expect_fail "credentials are never taken from the command line" $S mount -o access_key=AKIA "$ST" "$MP"
expect_fail "credentials are never taken from the command line" $S mount -o secret_key=x "$ST" "$MP"
expect_fail "credentials are never taken from the command line" $S mount -o aws_secret_access_key=x "$ST" "$MP"
expect_fail "credentials are never taken from the command line" $S mount -o session_token=x "$ST" "$MP"
# Mounts of a location that holds no store, read-write or not.
expect_fail "no ShaleFS store at $ST; create one with \`shalefs format $ST\`" $S mount -f "$ST" "$MP"
expect_fail "no ShaleFS store at $ST" $S mount -f -o ro "$ST" "$MP"
expect_fail "lease_wait=abc" $S mount -o lease_wait=abc "$ST" "$MP"
expect_fail "'takeover' applies to read-write mounts only" $S mount -o ro,takeover "$ST" "$MP"
expect_fail "shalefs mount does not take --json" $S mount --json "$ST" "$MP"
# Logging options.
expect_fail "option 'log_file=x.log': the log file must be an absolute path" \
	$S mount -o log_file=x.log "$ST" "$MP"
expect_fail "option 'log_file=': the log file must be an absolute path" \
	$S mount -o log_file= "$ST" "$MP"
expect_fail "option 'log_level=loud': expected error, warn, info or debug" \
	$S mount -o log_level=loud "$ST" "$MP"
expect_fail "option 'log_level=': expected error, warn, info or debug" \
	$S mount -o log_level= "$ST" "$MP"
expect_fail "log file $FS_TMP/nodir/x.log: No such file or directory" \
	$S mount -o log_file="$FS_TMP/nodir/x.log" "$ST" "$MP"
expect_fail "option 'log_file=' applies to shalefs mount only" \
	$S fsck -o log_file="$FS_TMP/x.log" "$ST"
[ ! -e "$FS_TMP/nodir" ] && [ ! -e "$FS_TMP/x.log" ] || fs_die "a refused log_file= was created"
# S3: unreachable endpoint, missing credentials (no retrying for minutes).
expect_fail "s3://shaletest" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent HOME=/nonexistent \
	$S mount -f -o endpoint=http://127.0.0.1:1 s3://shaletest "$MP"
expect_fail "s3://shaletest" env AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y \
	$S mount -f -o endpoint=http://127.0.0.1:1,path_style s3://shaletest "$MP"
expect_fail "s3://shaletest" env AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y \
	$S mount -o endpoint=notaurl s3://shaletest "$MP"
expect_fail "profile" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY HOME=$FS_TMP \
	$S mount -f -o profile=nosuchprofile,endpoint=http://127.0.0.1:1 s3://shaletest "$MP"
# stats and checkpoint
expect_fail "not a ShaleFS mount point" $S stats "$FS_TMP"
expect_fail "$FS_TMP/nothing: No such file" $S stats "$FS_TMP/nothing"
expect_fail "no ShaleFS store at $ST" $S stats "$ST"
expect_fail "unknown checkpoint command 'rename'" $S checkpoint rename "$ST" x
expect_fail "missing NAME" $S checkpoint create "$ST"
expect_fail "checkpoint list takes a store URL" $S checkpoint list nowhere
expect_fail "no ShaleFS store at $ST" $S checkpoint list "$ST"
expect_fail "invalid --expire 'soon'" $S checkpoint create --expire soon "$MP" x
expect_fail "shalefs checkpoint does not take --force" $S checkpoint create --force "$ST" x
# umount, sync, format, fsck
expect_fail "not a ShaleFS mount point" $S umount "$FS_TMP"
expect_fail "not a ShaleFS mount point" $S sync "$FS_TMP"
expect_fail "missing STORE" $S umount
expect_fail "shalefs umount does not take --repair" $S umount --repair "$MP"
expect_fail "shalefs fsck does not take --lazy" $S fsck --lazy "$ST"
expect_fail "invalid store URL" $S format nowhere
mkdir -p "$FS_TMP/other"
echo notes >"$FS_TMP/other/notes.txt"
expect_fail "holds other objects/files (the first is 'notes.txt')" $S format "file://$FS_TMP/other"
# Every command answers --help with its usage, exit 0.
for c in mount umount sync format checkpoint stats fsck; do
	$S $c --help >"$FS_TMP/help" 2>&1 || fs_die "shalefs $c --help exited non-zero"
	grep -q "^usage: shalefs $c" "$FS_TMP/help" || fs_die "shalefs $c --help does not print its usage"
	$S --help | grep -q "shalefs $c " || fs_die "shalefs --help does not list $c"
done
# A store of another format version, and a store that is not ShaleFS.
if [ -n "${SHALE_S3_ENDPOINT:-}" ] && [ -n "${SHALE_S3_BUCKET:-}" ]; then
	expect_fail "bucket 'no-such-bucket-$$' does not exist" \
		$S mount -f -o "$(fs_s3_opts)" "s3://no-such-bucket-$$" "$MP"
	expect_fail "access denied" env AWS_SECRET_ACCESS_KEY=wrong \
		$S mount -f -o "$(fs_s3_opts)" "s3://$SHALE_S3_BUCKET/cli-$$" "$MP"
fi
echo "cli_bad: $n bad-input cases each gave one clear line and a non-zero exit"
