#!/bin/bash
# bench.sh - container start-up benchmark: sbxrun vs crun vs runc.
#
#   sudo tests/bench/bench.sh SBXRUN_BINARY [N]      (or: N=20 tests/bench/bench.sh ...)
#   make bench                                       (N=100)
#
# Times N (default 100) sequential `run` of /bin/true from a busybox bundle for
# each runtime (median, p90, ratio to runc), the create/start/delete phases
# separately (median), the peak RSS of `run`, and the namespace floor
# (unshare + chroot without a runtime), then prints a Markdown table on
# stdout; progress goes to stderr.  Runtimes that are missing, or an sbxrun
# without `run`, are reported and skipped.  Needs root, busybox-static, and
# runc/crun for the comparison.  See bench.py for the method.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
	sed -n '2,13s/^# \{0,1\}//p' "$0"
	[ $# -ge 1 ] && exit 0 || exit 2
fi
SBXRUN_BIN=$1
N=${2:-${N:-100}}
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
exec /usr/bin/python3 "$HERE/bench.py" bench -n "$N" "$SBXRUN_BIN"
