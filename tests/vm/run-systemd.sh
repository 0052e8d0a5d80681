#!/bin/sh
# run-systemd.sh - sbxrun under a real systemd: ONE guest of
# tests/vm/guest.sh --mode systemd (the host's systemd as PID 1 on pure
# cgroup v2, with the D-Bus system bus, journald and udev; the suite runs as
# the delegated unit sbxvm-command.service).
#
# In the guest: pytest on tests/vm/test_systemd_host.py: the cgroupfs driver
# in the delegated cgroup; the systemd driver (--systemd-cgroup: transient
# scopes and slices, limits as unit properties, update, pause, ps, kill,
# events, delete, bad input, no unit left); a CRI pod's egress policy
# scoped to the pod's slice (tests/data/engine-configs, staged too); podman
# with its default cgroup_manager=systemd running containers on sbxrun.
# And tests/vm/test_systemd_session.py: rootless --systemd-cgroup from a
# PAM login session (session-N.scope, not delegated), systemd placing the
# container below user@UID.service.
#
#   SBXRUN=/abs/src/sbxrun tests/vm/run-systemd.sh [PYTEST ARGS...]
# Env and exit: as tests/vm/run-v2.sh (77 = skipped: no guest can run here,
# or the host has no systemd to boot).
set -eu
. "$(dirname "$0")/common.sh"
[ -x /lib/systemd/systemd ] || skip "no /lib/systemd/systemd on the host (apt-get install systemd)"
stage_suite
cp "$TOP_SRCDIR/tests/vm/test_systemd_host.py" "$TOP_SRCDIR/tests/vm/test_systemd_session.py" "$scratch/tests/integration/"
# the captured engine configs (the CRI pod under the systemd driver)
mkdir -p "$scratch/tests/data"
cp -r "$TOP_SRCDIR/tests/data/engine-configs" "$scratch/tests/data/"
cat >"$scratch/suite.sh" <<'GUEST'
echo "guest: kernel $(uname -r), PID 1 $(cat /proc/1/comm), in $(sed -n 's/^0:://p' /proc/self/cgroup), up $(cut -d' ' -f1 /proc/uptime)s"
/usr/bin/python3 -m pytest -q -ra -p no:cacheprovider tests/integration/test_systemd_host.py tests/integration/test_systemd_session.py "$@"
rc=$?
echo "guest: tests done, up $(cut -d' ' -f1 /proc/uptime)s"
exit $rc
GUEST
# a block device for the IO*Max and DeviceAllow tests
guest_opts="--disk 64M"
# the longest suite (systemd's boot, podman, containerd): about 15 minutes
# when several TCG guests share 2 cores, so more than the others' 900 s
SBX_VM_TIMEOUT=${SBX_VM_TIMEOUT:-1500}
run_guest systemd suite.sh "$@"
