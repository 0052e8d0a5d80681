#!/bin/sh
# bench-v2-guest.sh - tests/bench/bench.sh on a pure cgroup v2 host: one
# guest of tests/vm/guest.sh --mode v2 (see tests/vm/run-v2.sh), with the
# host's crun and busybox (the guest sees the host's / read-only).  Also
# shows, with strace, which cgroup directories one `run` makes and whether
# the init is born in its cgroup (CLONE_INTO_CGROUP).  Not part of make check.
#
#   SBXRUN=/abs/src/sbxrun tests/bench/bench-v2-guest.sh [N] [BENCH OPTIONS...]
# Default: 20 --repeat 1 --runtimes sbxrun,crun --seccomp none --no-policy.
# Under TCG (no KVM) absolute times are emulation's; compare the ratios.
set -eu
. "$(dirname "$0")/../vm/common.sh"
cp "$SBXRUN" "$scratch/sbxrun"
mkdir -p "$scratch/tests"
cp -r "$TOP_SRCDIR/tests/bench" "$scratch/tests/"
cat >"$scratch/suite.sh" <<'GUEST'
echo "guest: kernel $(uname -r), /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup), up $(cut -d' ' -f1 /proc/uptime)s"
[ $# -gt 0 ] || set -- 20 --repeat 1 --runtimes sbxrun,crun --seccomp none --no-policy
rc=0
bash tests/bench/bench.sh "$SBXRUN" "$@" || rc=1
if command -v strace >/dev/null; then
	b=$(mktemp -d /tmp/b.XXXXXX)
	mkdir -p "$b/rootfs/bin" && cp /bin/busybox "$b/rootfs/bin/" && ln -s busybox "$b/rootfs/bin/true"
	(cd "$b" && "$SBXRUN" spec >/dev/null &&
		sed -i 's|"sh"|"/bin/true"|; s|"terminal": true|"terminal": false|' config.json)
	strace -f -qq -e trace=mkdir,mkdirat,clone3 -o "$b/trace" "$SBXRUN" --root "$b/state" run --bundle "$b" v2probe || rc=1
	echo "guest: cgroup directories made by one run:"; grep -E 'mkdir(at)?\(.*cgroup' "$b/trace" || true
	echo "guest: clone3 calls:"; grep -o 'clone3({[^}]*}' "$b/trace" || true
fi
echo "guest: done, up $(cut -d' ' -f1 /proc/uptime)s"
exit $rc
GUEST
run_guest v2 suite.sh "$@"
