#!/bin/bash
# bench.sh - container start-up benchmark: sbxrun vs crun vs runc.
#
#   sudo tests/bench/bench.sh SBXRUN_BINARY [N] [OPTIONS]   (or: N=20 tests/bench/bench.sh ...)
#   make bench                                              (N=100)
#
# Times N (default 100) sequential `run` of /bin/true from a busybox bundle for
# each runtime (median, p90, ratios), the create/start/delete phases, the peak
# RSS of `run` and the namespace floor (unshare + chroot without a runtime),
# interleaved, the whole repeated 3 times; then `run` with a ~300-rule seccomp
# profile (sbxrun with a cold and a warm compile cache, crun, runc), then
# sbxrun's `run` paired with and without an egress policy
# (org.sbxrun.net.allow; --no-policy skips it).  Prints
# Markdown tables on stdout; progress goes to stderr.  Runtimes that are
# missing, or an sbxrun without `run`, are reported and skipped.  Needs root,
# busybox-static, and runc/crun for the comparison.  OPTIONS go to bench.py
# (--repeat R, --on-disk, --seccomp none|spec|FILE, --no-seccomp-cache,
# --runtimes LIST, --no-policy, --json FILE; see `bench.py bench --help`).  Results and
# method: docs/performance.md.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
	sed -n '2,20s/^# \{0,1\}//p' "$0"
	[ $# -ge 1 ] && exit 0 || exit 2
fi
SBXRUN_BIN=$1
shift
N=${N:-100}
if [ $# -ge 1 ] && [ "${1#-}" = "$1" ]; then
	N=$1
	shift
fi
case "$N" in '' | *[!0-9]* | 0)
	echo "bench.sh: N must be a positive integer, got '$N'" >&2
	exit 2
	;;
esac
[ "$(id -u)" -eq 0 ] || {
	echo "bench.sh: run as root" >&2
	exit 1
}
for tool in unshare chroot; do
	command -v "$tool" >/dev/null || {
		echo "bench.sh: $tool not found (util-linux/coreutils)" >&2
		exit 1
	}
done

HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
exec /usr/bin/python3 "$HERE/bench.py" bench -n "$N" "$@" "$SBXRUN_BIN"
