#!/bin/sh
# run-criu.sh - checkpoint/restore with CRIU, which cannot work on every
# host (Debian's criu 3.17 fails on kernels much newer than it): ONE guest
# of tests/vm/guest.sh --mode v2 (Debian's own kernel, which its criu
# supports; cgroup2 alone), running pytest on
# tests/integration/test_checkpoint.py and test_snapshot_process.py there.
# The cases: a counter
# checkpointed and restored continues from its count (with and without
# --leave-running, from the state directory, from --image-path after
# delete), pre-dump then dump, files and tmpfs contents kept, state and
# delete right, the egress allowlist enforced again after restore; memory
# to a page server on 127.0.0.1 and lazy (post-copy) pages with --status-fd;
# restore --auto-dedup and --empty-ns network; a terminal container restored
# on a new pty; podman's checkpoint/restore with --runtime sbxrun; a
# snapshot --with-process (frozen, leave-running) restored with
# restore --from-snapshot, its counter going on from the snapshot's count,
# a tampered image refused.
#
#   SBXRUN=/abs/src/sbxrun tests/vm/run-criu.sh [PYTEST ARGS...]
# e.g. `-k snapshot_process` runs only the snapshot file's tests.
# Env: SBX_VM_TIMEOUT (seconds for the guest, default 900), SBX_VM=0 (skip),
# SBX_VM_DISTCHECK=1 (also run inside make distcheck).
# Exit: the guest's status; 77 (automake SKIP) when guests cannot run here
# or the host has no criu.
set -eu
. "$(dirname "$0")/common.sh"
command -v criu >/dev/null 2>&1 || skip "no criu on the host (apt-get install criu; contrib/sbxrun-setup.sh test)"
stage_suite
cat >"$scratch/suite.sh" <<'GUEST'
echo "guest: kernel $(uname -r), $(criu --version | head -1), up $(cut -d' ' -f1 /proc/uptime)s"
criu check || echo "guest: criu check failed: the CRIU tests will skip"
/usr/bin/python3 -m pytest -q -ra -p no:cacheprovider tests/integration/test_checkpoint.py \
	tests/integration/test_snapshot_process.py "$@"
rc=$?
echo "guest: tests done, up $(cut -d' ' -f1 /proc/uptime)s"
exit $rc
GUEST
run_guest v2 suite.sh "$@"
