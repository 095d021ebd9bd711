# scripts/deps.sh - sourced by scripts/test and scripts/quickstart: installs
# the Debian packages ShaleFS needs, only when some are missing.
# shellcheck shell=bash

# Build and run: compiler, autotools, the six libraries (libmicrohttpd
# serves -o metrics=), FUSE itself.
SHALE_BUILD_PKGS="build-essential autoconf automake libtool pkg-config libfuse3-dev fuse3
  libcurl4-openssl-dev libzstd-dev libssl-dev libmicrohttpd-dev check curl ca-certificates"
# Tests: the S3 rig (Ceph RGW), valgrind, clang for the fuzz targets,
# getfattr (attr) for the xattr checks after remount, the Prometheus
# text-format parser for tests/fs/metrics.sh.
SHALE_TEST_PKGS="ceph-mon ceph-osd radosgw ceph-common valgrind clang attr
  python3-prometheus-client"
# Benchmarks only (bench/kvbench compares with LevelDB and RocksDB through
# their C APIs; bench/compare mounts s3fs, rclone and bindfs and plots with
# gnuplot); never needed to build, test or run ShaleFS.
SHALE_BENCH_PKGS="libleveldb-dev librocksdb-dev s3fs rclone bindfs gnuplot-nox bc"

shale_install_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "shalefs: missing Debian packages: ${missing[*]}" >&2
		echo "shalefs: run as root, or: sudo apt-get install ${missing[*]}" >&2
		return 1
	fi
	echo "shalefs: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
