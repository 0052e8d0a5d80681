#!/bin/sh
# run-v2.sh - the cgroup tests on a pure cgroup v2 host: ONE guest of
# tests/vm/guest.sh --mode v2 (Debian's kernel, cgroup2 alone at
# /sys/fs/cgroup with every controller enabled at the root, the host's /
# read-only under a RAM overlay; KVM when it works, TCG otherwise).
#
# In the guest: tests/unit/cgroup_live (the cgroup manager against the
# kernel, if built), pytest on tests/integration/test_cgroups.py, and the
# delegated-subtree cases of tests/integration/test_rootless.py, and the
# sealed-binary cases of tests/security/test_binary.py (Debian's 6.1 has
# no overlayfs data-only layers: the bind view's kernel).  The
# test process sits in the root cgroup there, which may hold processes and
# enable controllers, so the fixtures' per-test cgroups (/sbxtest-PID-N) are
# created directly below it.
#
#   SBXRUN=/abs/src/sbxrun tests/vm/run-v2.sh [PYTEST ARGS...]
# Env: SBX_VM_TIMEOUT (seconds for the guest, default 900), SBX_VM=0 (skip),
# SBX_VM_DISTCHECK=1 (also run inside make distcheck).
# Exit: the guest's status; 77 (automake SKIP) when guests cannot run here
# (no QEMU or kernel and none installable, not root, no pytest).
set -eu
. "$(dirname "$0")/common.sh"
stage_suite tests/security
cat >"$scratch/suite.sh" <<'GUEST'
echo "guest: kernel $(uname -r), /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control), up $(cut -d' ' -f1 /proc/uptime)s"
rc=0
if [ -x ./cgroup_live ]; then
	./cgroup_live || rc=1
fi
/usr/bin/python3 -m pytest -q -ra -p no:cacheprovider tests/integration/test_cgroups.py "$@" || rc=1
# a subtree delegated to an unprivileged user (docs/rootless.md)
/usr/bin/python3 -m pytest -q -ra -p no:cacheprovider tests/integration/test_rootless.py -k "delegated or cgroup2_over" || rc=1
# the sealed binary: not the cases armed with exe_interp (a -nostdlib ELF
# interpreter), which crashes (SIGSEGV) under this guest's TCG
/usr/bin/python3 -m pytest -q -ra -p no:cacheprovider tests/security/test_binary.py \
	-k "not entrypoint and not exec_cannot and not primitive_rewrites and not tmpfile_fallback" || rc=1
echo "guest: tests done, up $(cut -d' ' -f1 /proc/uptime)s"
exit $rc
GUEST
run_guest v2 suite.sh "$@"
