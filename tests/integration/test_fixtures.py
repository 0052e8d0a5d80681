"""Checks of the shared fixtures themselves, so that a lifecycle test failure
points at sbxrun rather than at the harness."""

import json
import os

from conftest import cgroup_dirs, is_static_elf, own_cgroup


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
