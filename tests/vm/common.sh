# common.sh - sourced by tests/vm/run-*.sh: locate the tree and the binary,
# decide between running and skipping, and stage what the guest needs.
#
# The guest sees the host's / read-only and gets fresh /tmp and /run, so a
# build under /tmp would be invisible there: everything the guest runs is
# copied into a scratch directory that guest.sh shares read-write.
#
# Sets: TOP_SRCDIR TOP_BUILDDIR SBXRUN GUEST scratch; stage_suite [DIR...]
# copies the integration suite (and the suite DIRs, e.g. tests/security),
# the binary and cgroup_live into $scratch.
# Env read: SBX_VM=0 (skip the guest suites), SBX_VM_DISTCHECK=1 (run them
# inside `make distcheck` too), SBX_VM_TIMEOUT (seconds per guest),
# SBX_VM_CONSOLE=FILE (keep the guest's console: kernel messages, OOM reports).

suite=${0##*/}
skip() {
	echo "$suite: SKIP: $*" >&2
	exit 77
}
fail() {
	echo "$suite: $*" >&2
	exit 1
}

TOP_SRCDIR=$(cd "${TOP_SRCDIR:-$(dirname "$0")/../..}" && pwd)
SBXRUN=${SBXRUN:-$TOP_SRCDIR/src/sbxrun}
case $SBXRUN in /*) ;; *) SBXRUN=$(pwd)/$SBXRUN ;; esac
TOP_BUILDDIR=${TOP_BUILDDIR:-$(dirname "$(dirname "$SBXRUN")")}
GUEST=$TOP_SRCDIR/tests/vm/guest.sh

[ "${SBX_VM:-1}" != 0 ] || skip "SBX_VM=0"
# automake's distcheck builds in DISTDIR/_build/sub against a read-only
# DISTDIR.  The suites work there (they only read the source tree), but they
# already ran in the `make check` before, and each boot costs minutes under
# TCG; SBX_VM_DISTCHECK=1 runs them anyway.
case $TOP_BUILDDIR in
*/_build/sub)
	[ "${SBX_VM_DISTCHECK:-0}" = 1 ] ||
		skip "inside make distcheck (the guest suites ran in make check; SBX_VM_DISTCHECK=1 runs them here too)"
	;;
esac
[ "$(id -u)" = 0 ] || skip "needs root (QEMU's 9p export of / must read every file)"
[ -x "$SBXRUN" ] || fail "SBXRUN=$SBXRUN is not an executable; build first"
/usr/bin/python3 -c 'import pytest' 2>/dev/null || skip "/usr/bin/python3 has no pytest"
# guest.sh --check installs QEMU and the kernel when it can; 77 if it cannot.
why=$(bash "$GUEST" --check 2>&1) || {
	rc=$?
	[ "$rc" = 77 ] && skip "${why#guest.sh: }"
	fail "guest.sh --check failed: $why"
}
echo "$suite: $why"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/sbxvm-suite.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

stage_suite() {
	local d
	mkdir -p "$scratch/tests"
	for d in tests/integration "$@"; do
		cp -r "$TOP_SRCDIR/$d" "$scratch/tests/"
		rm -rf "$scratch/$d/__pycache__" "$scratch/$d/.pytest_cache"
	done
	cp "$SBXRUN" "$scratch/sbxrun"
	if [ -x "$TOP_BUILDDIR/tests/unit/cgroup_live" ]; then
		cp "$TOP_BUILDDIR/tests/unit/cgroup_live" "$scratch/cgroup_live"
	fi
}

# run_guest MODE SCRIPT [ARG]...: SCRIPT (a file in $scratch) in a guest of
# MODE, with $scratch as its working directory; prints the wall time.
# $guest_opts (words) go to guest.sh as they are, e.g. "--disk 64M".
run_guest() {
	local mode=$1 rc start
	shift
	start=$(date +%s)
	set +e
	bash "$GUEST" ${SBX_VM_CONSOLE:+--console "$SBX_VM_CONSOLE"} --mode "$mode" ${guest_opts:-} --share "$scratch" --timeout "${SBX_VM_TIMEOUT:-900}" \
		--env SBXRUN="$scratch/sbxrun" --env TOP_SRCDIR="$scratch" --env PYTHONDONTWRITEBYTECODE=1 \
		-- /bin/sh "$@"
	rc=$?
	set -e
	echo "$suite: guest ($mode) exit $rc after $(($(date +%s) - start))s wall"
	return $rc
}
