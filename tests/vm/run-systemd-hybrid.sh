#!/bin/sh
# run-systemd-hybrid.sh - the systemd cgroup driver where systemd runs the
# v1 cgroup layouts: ONE guest of tests/vm/guest.sh --mode systemd-hybrid
# (systemd.unified_cgroup_hierarchy=0: v1 controllers, systemd's tracking in
# cgroup2 at /sys/fs/cgroup/unified), or of --mode systemd-legacy with
# SBX_VM_SYSTEMD_LAYOUT=legacy (v1 only, name=systemd).
#
# In the guest: pytest on tests/vm/test_systemd_hybrid.py (scopes with the
# limits in the v1 files, seen from inside; update, pause, ps, kill, events,
# devices across daemon-reload, failures and killed creates leaving no unit
# and no directory; podman with cgroup_manager=systemd).
#
#   SBXRUN=/abs/src/sbxrun tests/vm/run-systemd-hybrid.sh [PYTEST ARGS...]
# Env and exit: as tests/vm/run-v2.sh (77 = skipped: no guest can run here,
# or the host has no systemd to boot); SBX_VM_SYSTEMD_LAYOUT=hybrid|legacy.
set -eu
. "$(dirname "$0")/common.sh"
[ -x /lib/systemd/systemd ] || skip "no /lib/systemd/systemd on the host (apt-get install systemd)"
layout=${SBX_VM_SYSTEMD_LAYOUT:-hybrid}
case $layout in hybrid | legacy) ;; *) fail "SBX_VM_SYSTEMD_LAYOUT=$layout: not hybrid or legacy" ;; esac
stage_suite
cp "$TOP_SRCDIR/tests/vm/test_systemd_host.py" "$TOP_SRCDIR/tests/vm/test_systemd_hybrid.py" "$scratch/tests/integration/"
cat >"$scratch/suite.sh" <<'GUEST'
echo "guest: kernel $(uname -r), PID 1 $(cat /proc/1/comm), cgroup mounts: $(awk '{ for (i = 7; i < NF; i++) if ($i == "-" && $(i + 1) ~ /^cgroup/) printf "%s(%s) ", $5, $(i + 1) }' /proc/self/mountinfo), up $(cut -d' ' -f1 /proc/uptime)s"
/usr/bin/python3 -m pytest -q -ra -p no:cacheprovider tests/integration/test_systemd_hybrid.py "$@"
rc=$?
echo "guest: tests done, up $(cut -d' ' -f1 /proc/uptime)s"
exit $rc
GUEST
SBX_VM_TIMEOUT=${SBX_VM_TIMEOUT:-1200}
run_guest "systemd-$layout" suite.sh "$@"
