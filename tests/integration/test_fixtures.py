"""Checks of the shared fixtures themselves, so that a lifecycle test failure
points at sbxrun rather than at the harness."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import cgroup_dirs, describe, is_static_elf, own_cgroup, run_cmd


def test_busybox_rootfs(busybox_rootfs):
    assert is_static_elf(busybox_rootfs / "bin/busybox")
    for applet in ("sh", "true", "cat", "sleep", "id", "ip"):
        assert os.readlink(busybox_rootfs / "bin" / applet) == "busybox"
    assert "root:x:0:0:" in (busybox_rootfs / "etc/passwd").read_text()


def test_bundle(bundle, cgroup_parent):
    b = bundle(["true"])
    c = json.loads(b.config_path.read_text())
    assert c["process"]["args"] == ["true"]
    assert c["process"]["terminal"] is False
    assert c["linux"]["cgroupsPath"].startswith(str(cgroup_parent) + "/")
    assert (b.rootfs / "bin/busybox").is_file()
    with b.edit() as cfg:
        cfg["process"]["env"].append("X=1")
    assert "X=1" in json.loads(b.config_path.read_text())["process"]["env"]
    b.args = ["sh", "-c", "exit 3"]
    assert b.reload()["process"]["args"] == ["sh", "-c", "exit 3"]
    assert bundle(name="other", cgroup=False, rootfs=False).path.name == "other"


def test_rootless_bundle(bundle):
    b = bundle(spec_args=["--rootless"])
    assert "user" in [n["type"] for n in b.config["linux"]["namespaces"]]


def test_cgroup_parent_is_below_own_cgroup(cgroup_parent):
    own = own_cgroup()
    assert str(cgroup_parent).startswith(own.rstrip("/") + "/sbxtest-")
    with open("/proc/self/cgroup") as f:
        for line in f:
            path = line.rstrip("\n").split(":", 2)[2]
            assert own == path or own.startswith(path.rstrip("/") + "/"), line
    assert cgroup_dirs(str(cgroup_parent))


def test_cgroup_parent_cleans_what_a_runtime_would_create(cgroup_parent):
    """Simulate a runtime that mkdir -p's the cgroup everywhere and removes only
    the leaf: teardown must leave the hierarchies as they were."""
    path = cgroup_parent.path("leaf")
    for d in cgroup_dirs(path):
        os.makedirs(d, exist_ok=True)
        os.rmdir(d)
    leftovers, stuck = cgroup_parent.cleanup()
    assert leftovers == [] and stuck == []
    for d in cgroup_dirs(str(cgroup_parent)):
        assert not os.path.exists(d)
    for d in cgroup_dirs(own_cgroup()):
        # our own cgroup still exists wherever it existed (it is never removed)
        if os.path.isdir(d):
            assert os.path.exists(os.path.join(d, "cgroup.procs"))


def test_sbx_helper(sbx):
    cp = sbx.ok("--version")
    assert cp.args[:3] == [sbx.binary, "--root", str(sbx.root)]
    assert sbx.new_id() != sbx.new_id()


# Inside a private mount namespace: /sys/fs/cgroup becomes a fresh tmpfs with
# binds of the real hierarchies and a plain (unmounted) hugetlb directory, as
# on hybrid hosts where conmon then makes ordinary directories and files.
PLAIN_LAYOUT = """set -eu
s=$(mktemp -d "$1/cgroot.XXXXXX")
mount -t tmpfs sbxtest "$s"
for h in /sys/fs/cgroup/*; do mkdir "$s/${h##*/}"; mount --bind "$h" "$s/${h##*/}"; done
mkdir "$s/hugetlb"
mount --move "$s" /sys/fs/cgroup
shift
exec "$@"
"""

PLAIN_CHECK = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from conftest import CgroupParent, all_cgroup_dirs, cgroup_dirs
# below the outer test's cgroup_parent, whose finalizer removes whatever a
# crash here leaves in the real hierarchies
cg = CgroupParent(sys.argv[2])
conmon = cg.path("pod") + "/conmon"
plain = [d for top, d in all_cgroup_dirs(conmon) if top == "/sys/fs/cgroup/hugetlb"]
made = []
for d in plain:  # what conmon does in a plain directory
    os.makedirs(d)
    with open(os.path.join(d, "tasks"), "w") as f:
        f.write(f"{os.getpid()}\\n")
    made.append(d)
for d in cgroup_dirs(conmon):  # and in the real hierarchies
    os.makedirs(d)
leftovers, stuck = cg.cleanup()
print(json.dumps({"plain": made, "mounted": cgroup_dirs(conmon), "leftovers": leftovers, "stuck": stuck,
                  "remaining": [p for p in os.listdir("/sys/fs/cgroup/hugetlb")]}))
"""


def test_cgroup_parent_cleans_plain_directories(tmp_path, cgroup_parent):
    """Teardown also removes what an engine made in a plain directory under
    /sys/fs/cgroup (issue 23: conmon's <parent>/conmon/tasks in hugetlb...),
    which is not a mounted hierarchy and so not among cgroup_dirs()."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1)")
    script = tmp_path / "check.py"
    script.write_text(PLAIN_CHECK)
    cp = run_cmd(["unshare", "--mount", "--propagation", "private", "sh", "-c", PLAIN_LAYOUT, "sh", tmp_path,
                  sys.executable, script, Path(__file__).resolve().parent, cgroup_parent.path("inner")])
    assert cp.returncode == 0, describe(cp)
    r = json.loads(cp.stdout)
    # the plain directory was reachable only through the new lookup
    assert len(r["plain"]) == 1 and r["plain"][0] not in r["mounted"], r
    assert r["plain"][0] in r["leftovers"], r
    assert r["stuck"] == [], r
    # nothing is left in it (the ancestors the "engine" made are gone too)
    assert r["remaining"] == [], r
