#!/bin/sh
# logs.sh - the daemon's log, with mounts in the background (no -f: the
# daemon detaches, so its stderr is /dev/null):
#   * -o log_file=PATH gets every line, each with an ISO 8601 UTC
#     timestamp, the level, the module and the store URL; store errors
#     injected with SHALEFS_FAULTS (retried by the retry wrapper, which
#     warns at an operation's third failed attempt) show up there;
#   * logrotate's way: rename the file, kill -HUP the daemon: the next
#     lines go to a new file at PATH, and the mount is still up (SIGHUP
#     does not unmount);
#   * log_level=debug wins over SHALEFS_LOG=error: debug lines appear;
#   * without log_file= and without syslog, the daemon logs to
#     /var/log/shalefs/ (root) or $XDG_STATE_HOME/shalefs/, in a file named
#     after the mount point, and the mount command says so;
#   * `shalefs umount` ends each daemon cleanly (exit 0, process gone).
set -eu
. "${SHALE_SRCDIR:-.}/tests/fs/fs_lib.sh"
fs_setup logs
FALLBACK_LOG=""
FALLBACK_DIR_MADE=""
logs_cleanup() {
	fs_cleanup
	if [ -n "$FALLBACK_LOG" ]; then
		rm -f "$FALLBACK_LOG"
	fi
	if [ -n "$FALLBACK_DIR_MADE" ]; then
		rmdir "$FALLBACK_DIR_MADE" 2>/dev/null || true
	fi
}
trap logs_cleanup EXIT

ST="file://$FS_TMP/store"
M="$FS_TMP/m"
mkdir -p "$M"
fs_format "$ST"
# Put and put_if_absent fail 60% of the time, before the operation: the
# retry wrapper retries until it succeeds, so the mount keeps working,
# and an operation failing three times in a row is a warning.
FAULTS="error=0.6,ops=put,after=0"
TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
HEAD="^$TS shalefs\[[0-9]+\] $ST"
WARN_RE="$HEAD warn objstore: (put|put_if_absent) [^ ]+: attempt 3 failed \([^)]*\), retrying in [0-9]+ ms$"

# bg_mount MNT OPTS [VAR=VALUE...]: `shalefs mount -o OPTS` without -f, in
# env VAR=VALUE...; it returns once mounted, and the daemon detached. Sets
# BG_PID (the daemon, from the mount's stats) and BG_OUT (what the mount
# command printed).
bg_mount() {
	mnt=$1 opts=$2
	shift 2
	rc=0
	env "$@" "$SHALEFS" mount -o "$opts" "$ST" "$mnt" >"$FS_TMP/mount.out" 2>&1 || rc=$?
	BG_OUT=$(cat "$FS_TMP/mount.out")
	[ "$rc" -eq 0 ] || { echo "$BG_OUT" >&2; fs_die "shalefs mount -o $opts exited $rc"; }
	FS_MOUNTS="$FS_MOUNTS $mnt"
	mountpoint -q "$mnt" || fs_die "shalefs mount -o $opts returned 0 but $mnt is not a mount"
	BG_PID=$(fs_stat "$mnt" fs_daemon_pid)
	[ -n "$BG_PID" ] || fs_die "no fs_daemon_pid in the stats of $mnt"
	FS_PIDS="$FS_PIDS $BG_PID"
}

# bg_umount MNT: `shalefs umount` returns 0 (the daemon reported a clean
# end) and the daemon is gone.
bg_umount() {
	"$SHALEFS" umount "$1" >"$FS_TMP/umount.out" 2>&1 ||
		{ cat "$FS_TMP/umount.out" >&2; fs_die "shalefs umount $1 failed"; }
	! kill -0 "$BG_PID" 2>/dev/null || fs_die "daemon $BG_PID still runs after shalefs umount $1"
	! mountpoint -q "$1" || fs_die "$1 still mounted after shalefs umount"
	FS_PIDS=$(echo "$FS_PIDS" | sed "s/ $BG_PID\b//")
}

# work_until FILE REGEX WHAT: write files and `shalefs sync` (store puts,
# some failing) until FILE has a line matching REGEX (grep -E).
work_until() {
	i=0
	while ! grep -Eq -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le 60 ] || { cat "$1" >&2 2>/dev/null || true; fs_die "$3: no line matching '$2' in $1"; }
		echo "work $i $$" >"$M/w$i"
		"$SHALEFS" sync "$M" || fs_die "shalefs sync $M failed"
	done
}

# 1. log_file=: injected store errors are logged there, with timestamp,
# level, module and store.
L="$FS_TMP/x.log"
bg_mount "$M" "log_file=$L" SHALEFS_FAULTS="$FAULTS"
[ -z "$BG_OUT" ] || fs_die "mount with log_file= printed: $BG_OUT"
[ -f "$L" ] || fs_die "log_file $L not created"
[ "$(stat -c %a "$L")" = 640 ] || [ "$(umask)" != 0022 ] || fs_die "$L has mode $(stat -c %a "$L"), expected 640"
work_until "$L" "$WARN_RE" "log_file"
if grep -Evq -- "$HEAD (error|warn|info|debug) [a-z]+: " "$L"; then
	cat "$L" >&2
	fs_die "a line of $L lacks the timestamp, the store or the level"
fi
if grep -Eq " (info|debug) " "$L"; then
	fs_die "info or debug lines at the default level (warn)"
fi
echo "ok: log_file has: $(grep -E -m1 -- "$WARN_RE" "$L")"

# 2. rename + SIGHUP: a new file at the same path gets the next lines, the
# renamed one keeps the old ones, the mount stays up.
mv "$L" "$L.1"
n1=$(wc -l <"$L.1")
kill -HUP "$BG_PID"
i=0
while [ ! -f "$L" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -f "$L" ] || fs_die "SIGHUP did not make the daemon reopen $L"
mountpoint -q "$M" || fs_die "SIGHUP unmounted $M"
kill -0 "$BG_PID" 2>/dev/null || fs_die "SIGHUP ended the daemon"
work_until "$L" "$WARN_RE" "after SIGHUP"
echo hup >"$M/after-hup"
[ "$(cat "$M/after-hup")" = hup ] || fs_die "the mount does not work after SIGHUP"
n2=$(wc -l <"$L.1")
[ "$n2" -ge "$n1" ] || fs_die "the renamed log lost lines"
echo "ok: after rename and SIGHUP, $L has: $(grep -E -m1 -- "$WARN_RE" "$L")"
bg_umount "$M"
echo "ok: shalefs umount ended daemon $BG_PID cleanly"

# 3. log_level=debug wins over SHALEFS_LOG=error.
L2="$FS_TMP/debug.log"
bg_mount "$M" "log_file=$L2,log_level=debug" SHALEFS_FAULTS="$FAULTS" SHALEFS_LOG=error
work_until "$L2" "$HEAD debug objstore: (put|put_if_absent) [^ ]+: attempt [12] failed" "log_level=debug"
grep -Eq -- "$HEAD info cli: mounted $ST on " "$L2" || { cat "$L2" >&2; fs_die "no info line at log_level=debug"; }
echo "ok: log_level=debug has: $(grep -E -m1 -- "$HEAD debug " "$L2")"
bg_umount "$M"

# 4. No log_file=, no syslog: the fallback file, named by the mount command.
if python3 -c 'import socket
for t in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
    s = socket.socket(socket.AF_UNIX, t)
    try:
        s.connect("/dev/log")
        raise SystemExit(0)
    except OSError:
        pass
raise SystemExit(1)' 2>/dev/null; then
	echo "SKIP (part): /dev/log accepts connections, so a daemon without log_file= uses syslog"
else
	if [ "$(id -u)" = 0 ]; then
		dir=/var/log/shalefs
	else
		dir=$FS_TMP/state/shalefs
	fi
	[ -d "$dir" ] || FALLBACK_DIR_MADE=$dir
	name=$(realpath "$M" | sed 's|^/||; s|/|-|g')
	FALLBACK_LOG="$dir/$name.log"
	rm -f "$FALLBACK_LOG"
	bg_mount "$M" "lease_wait=60" SHALEFS_FAULTS="$FAULTS" HOME="$FS_TMP/home" \
		XDG_STATE_HOME="$FS_TMP/state"
	grep -Fqx "shalefs: no syslog here; logging to $FALLBACK_LOG" "$FS_TMP/mount.out" ||
		fs_die "mount printed '$BG_OUT', expected it to name $FALLBACK_LOG"
	[ "$(grep -c "no syslog here" "$FS_TMP/mount.out")" = 1 ] ||
		fs_die "mount named the log more than once: $BG_OUT"
	work_until "$FALLBACK_LOG" "$WARN_RE" "fallback log"
	bg_umount "$M"
	echo "ok: the fallback $FALLBACK_LOG has: $(grep -E -m1 -- "$WARN_RE" "$FALLBACK_LOG")"
fi
echo "logs: log_file, SIGHUP reopen, log_level and the fallback file work"
