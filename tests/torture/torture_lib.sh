# torture_lib.sh - helpers for the torture tests (sourced after fs_lib.sh).
#
#   tt_start STORE MNT ENV OPTS   start `env ENV shalefs mount -f -o OPTS`
#                          in the background (ENV may be ""); sets TT_PID;
#                          returns 0 once MNT is a mount, 1 if the daemon
#                          exited first (its status in TT_RC)
#   tt_wait_exit PID SECS  wait up to SECS for PID to exit; status in TT_RC
#                          (returns 1 on timeout)
#   tt_detach MNT          unmount MNT, lazily if it is a dead FUSE mount
#   tt_fsck STORE WHAT     run `shalefs fsck`; fail the test unless it exits 0
#   tt_verify ROOT WHAT LOG...   tort_work verify; fail on any loss; adds
#                          the counts to the summary
#   tt_sum KEY N           add N to KEY in $TORTURE_SUMMARY (if set)
#   tt_store NAME          a fresh, formatted store's URL: s3:// when
#                          TT_S3=1 (rig configured), else file://$FS_TMP/NAME
#   tt_opts                the -o options that go with tt_store's URLs
#   TT_KEY=FILE            (environment) every store is encrypted with the
#                          master key in FILE: format --encrypt, and the
#                          key_file= option on every mount and command
TT_WORK=${SHALE_BUILDDIR:-.}/tests/torture/tort_work
TT_PID=""
TT_RC=0
TT_S3=${TT_S3:-0}

tt_sum() {
	[ -n "${TORTURE_SUMMARY:-}" ] || return 0
	echo "$1 $2" >>"$TORTURE_SUMMARY"
}

# The -o options every command needs: the rig's, the key's.
tt_base_opts() {
	_o=""
	[ "$TT_S3" = 1 ] && _o="$(fs_s3_opts)"
	[ -n "${TT_KEY:-}" ] && _o="${_o:+$_o,}key_file=$TT_KEY"
	echo "$_o"
}

tt_store() {
	if [ "$TT_S3" = 1 ]; then
		tt_s=$(fs_s3_store "$1")
	else
		tt_s="file://$FS_TMP/$1"
	fi
	if [ -n "$tt_s" ]; then
		if [ -n "${TT_KEY:-}" ]; then
			fs_format --encrypt -o "$(tt_base_opts)" "$tt_s"
		elif [ "$TT_S3" = 1 ]; then
			fs_format "$tt_s" -o "$(fs_s3_opts)"
		else
			fs_format "$tt_s"
		fi
	fi
	echo "$tt_s"
}

tt_opts() {
	_b=$(tt_base_opts)
	echo "$1${_b:+,$_b}"
}

tt_start() {
	_st=$1 _mnt=$2 _env=$3 _opts=$4
	mkdir -p "$_mnt"
	# shellcheck disable=SC2086
	env $_env "$SHALEFS" mount -f -o "$_opts" "$_st" "$_mnt" >>"$FS_TMP/daemon.log" 2>&1 &
	TT_PID=$!
	FS_PIDS="$FS_PIDS $TT_PID"
	FS_MOUNTS="$FS_MOUNTS $_mnt"
	_i=0
	while ! mountpoint -q "$_mnt"; do
		if ! kill -0 "$TT_PID" 2>/dev/null; then
			TT_RC=0
			wait "$TT_PID" || TT_RC=$?
			return 1
		fi
		_i=$((_i + 1))
		[ $_i -lt 600 ] || fs_die "mount of $_st on $_mnt did not appear in 60 s"
		sleep 0.05
	done
	return 0
}

tt_wait_exit() {
	_p=$1 _n=$(($2 * 10))
	while kill -0 "$_p" 2>/dev/null; do
		_n=$((_n - 1))
		[ $_n -gt 0 ] || return 1
		sleep 0.1
	done
	TT_RC=0
	wait "$_p" 2>/dev/null || TT_RC=$?
	FS_PIDS=$(echo "$FS_PIDS" | sed "s/ $_p\b//")
	return 0
}

tt_detach() {
	if mountpoint -q "$1" 2>/dev/null || [ -n "$(grep " $1 " /proc/mounts 2>/dev/null)" ]; then
		fusermount3 -u "$1" 2>/dev/null || fusermount3 -uz "$1" 2>/dev/null || true
	fi
}

# tt_cli CMD... STORE [ARGS]: a shalefs CLI command (fsck, checkpoint ...)
# with the rig's -o options on s3:// and the key with TT_KEY.
tt_cli() {
	_c=$1
	shift
	_b=$(tt_base_opts)
	if [ -n "$_b" ]; then
		if [ "$_c" = checkpoint ]; then
			_v=$1
			shift
			"$SHALEFS" checkpoint "$_v" -o "$_b" "$@"
		else
			"$SHALEFS" "$_c" -o "$_b" "$@"
		fi
	else
		"$SHALEFS" "$_c" "$@"
	fi
}

tt_fsck() {
	if tt_cli fsck "$1" >"$FS_TMP/fsck.out" 2>&1; then
		tt_sum fsck_clean 1
	else
		tt_sum fsck_failed 1
		cat "$FS_TMP/fsck.out" >&2
		fs_die "$2: shalefs fsck $1 failed"
	fi
}

tt_verify() {
	_root=$1 _what=$2
	shift 2
	_rc=0
	"$TT_WORK" verify "$_root" "$@" >"$FS_TMP/verify.out" 2>"$FS_TMP/verify.err" || _rc=$?
	# "verified FILES files BYTES bytes lost LOST pending P"
	set -- $(cat "$FS_TMP/verify.out")
	tt_sum files_verified "${2:-0}"
	tt_sum bytes_verified "${4:-0}"
	tt_sum bytes_lost "${7:-0}"
	if [ "$_rc" -ne 0 ]; then
		head -20 "$FS_TMP/verify.err" >&2
		tail -30 "$FS_TMP/daemon.log" >&2
		fs_die "$_what: acknowledged data lost or the prefix property broken"
	fi
}
