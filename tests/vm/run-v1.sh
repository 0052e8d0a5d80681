#!/bin/sh
# run-v1.sh - the cgroup tests on a cgroup v1-only host: ONE guest of
# tests/vm/guest.sh --mode v1 (every controller its own v1 hierarchy under a
# read-only tmpfs at /sys/fs/cgroup, no cgroup2 mounted anywhere; Debian's
# kernel, the host's / read-only under a RAM overlay; KVM when it works, TCG
# otherwise).
#
# In the guest: tests/unit/cgroup_live (if built), then pytest on
# tests/integration/test_cgroups.py and tests/vm/test_v1_host.py (the layout
# the guest presents, what a container sees in it, and a non-cgroup file
# system at /sys/fs/cgroup/unified, which must not be taken for cgroup2).
#
#   SBXRUN=/abs/src/sbxrun tests/vm/run-v1.sh [PYTEST ARGS...]
# Env and exit: as tests/vm/run-v2.sh (77 = skipped: no guest can run here).
set -eu
. "$(dirname "$0")/common.sh"
stage_suite
cp "$TOP_SRCDIR/tests/vm/test_v1_host.py" "$scratch/tests/integration/"
cat >"$scratch/suite.sh" <<'GUEST'
echo "guest: kernel $(uname -r), /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup): $(ls /sys/fs/cgroup | tr '\n' ' '), up $(cut -d' ' -f1 /proc/uptime)s"
rc=0
if [ -x ./cgroup_live ]; then
	./cgroup_live || rc=1
fi
/usr/bin/python3 -m pytest -q -ra -p no:cacheprovider tests/integration/test_v1_host.py tests/integration/test_cgroups.py "$@" || rc=1
echo "guest: tests done, up $(cut -d' ' -f1 /proc/uptime)s"
exit $rc
GUEST
run_guest v1 suite.sh "$@"
