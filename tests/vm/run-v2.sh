#!/bin/sh
# run-v2.sh - the cgroup tests on a pure cgroup v2 kernel, in ONE throw-away
# QEMU guest (../shared/vm/in-vm.sh: Debian kernel, cgroup2 only, every
# controller enabled at the root, host / read-only, TCG so no KVM needed).
#
# In the guest: tests/unit/cgroup_live (the manager against the kernel, if
# built) and pytest on tests/integration/test_cgroups.py.  There the test
# process sits in the root cgroup, which may hold processes and enable
# controllers, so the fixtures' per-test cgroups (/sbxtest-PID-N) are
# created directly below it.
#
#   SBXRUN=/abs/src/sbxrun tests/vm/run-v2.sh [PYTEST ARGS...]
# Env: IN_VM (default $TOP_SRCDIR/../shared/vm/in-vm.sh), IN_VM_TIMEOUT
# (seconds, default 900).  Exit: the guest's status; 77 (automake SKIP) when
# in-vm.sh or pytest is not available.
set -eu

TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
SBXRUN=${SBXRUN:-$TOP_SRCDIR/src/sbxrun}
IN_VM=${IN_VM:-$TOP_SRCDIR/../shared/vm/in-vm.sh}
PYTHON=/usr/bin/python3

skip() { echo "run-v2.sh: $*; skipping" >&2; exit 77; }
[ -x "$IN_VM" ] || skip "no $IN_VM (the shared VM tools are not beside the source tree)"
# QEMU and the guest kernel: in-vm.sh installs what it lacks itself, so a
# fresh CI machine runs the suite instead of skipping it.
"$PYTHON" -c 'import pytest' 2>/dev/null || skip "$PYTHON has no pytest"
[ -x "$SBXRUN" ] || { echo "run-v2.sh: SBXRUN=$SBXRUN is not an executable; build first" >&2; exit 1; }
case $SBXRUN in /*) ;; *) SBXRUN=$(pwd)/$SBXRUN ;; esac
TOP_SRCDIR=$(cd "$TOP_SRCDIR" && pwd)
live=${TOP_BUILDDIR:-$(dirname "$(dirname "$SBXRUN")")}/tests/unit/cgroup_live

# The guest sees the host's / read-only (writes go to a RAM overlay) but
# gets fresh /tmp and /run, so a checkout under /tmp would be invisible
# there: what the guest runs is copied into the shared scratch directory.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sbxrun-v2.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/tests"
cp -r "$TOP_SRCDIR/tests/integration" "$scratch/tests/"
cp "$SBXRUN" "$scratch/sbxrun"
SBXRUN=$scratch/sbxrun
if [ -x "$live" ]; then
	cp "$live" "$scratch/cgroup_live"
	live=$scratch/cgroup_live
fi

# shellcheck disable=SC2016
guest='
set -u
cd "$1" || exit 125
export SBXRUN="$2" TOP_SRCDIR="$1" PYTHONDONTWRITEBYTECODE=1
live=$3; shift 3
echo "run-v2.sh: guest kernel $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup)"
rc=0
if [ -x "$live" ]; then
	"$live" || rc=1
fi
/usr/bin/python3 -m pytest -q -ra -p no:cacheprovider tests/integration/test_cgroups.py "$@" || rc=1
exit $rc'

start=$(date +%s)
set +e
"$IN_VM" --tcg --time --timeout "${IN_VM_TIMEOUT:-900}" --share "$scratch" -- \
	sh -c "$guest" guest "$scratch" "$SBXRUN" "$live" "$@"
rc=$?
set -e
echo "run-v2.sh: exit $rc after $(($(date +%s) - start))s"
exit $rc
