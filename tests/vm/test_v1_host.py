"""A cgroup v1-only host, as tests/vm/guest.sh --mode v1 presents it (run by
tests/vm/run-v1.sh; skipped elsewhere): the layout itself, a container's
view of it, and a file system at /sys/fs/cgroup/unified that is not a
cgroup2 mount (a tmpfs, or a cgroup2 mount hidden under one), which the
runtime must recognise by its magic, not by its path."""

import contextlib
import os
import shutil
import subprocess

import pytest

from conftest import cgroup_dirs, describe, mountinfo

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("run", "create", "delete")]

ROOT = "/sys/fs/cgroup"
UNIFIED = f"{ROOT}/unified"
CGROUP_SUPER_MAGIC = "27e0eb"
CGROUP2_SUPER_MAGIC = "63677270"
TMPFS_MAGIC = "1021994"
CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "freezer", "devices", "blkio", "cpuset")


def magic(path):
    return subprocess.run(["stat", "-fc", "%t", path], capture_output=True, text=True, check=True).stdout.strip()


def fstypes():
    return [t for _, _, t in mountinfo()]


if "cgroup2" in fstypes() or not os.path.isdir(f"{ROOT}/memory"):
    pytestmark.append(pytest.mark.skip(reason="not a cgroup v1-only host (tests/vm/run-v1.sh runs these)"))


@pytest.fixture(autouse=True)
def _drop_seccomp_cache(sbx):
    """The seccomp compile cache in <--root> is not container state."""
    yield
    shutil.rmtree(sbx.root / ".seccomp-cache", ignore_errors=True)


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True)


@contextlib.contextmanager
def at_unified(*mounts):
    """Mount MOUNTS ((fstype, source) in order, each over the previous one) at
    /sys/fs/cgroup/unified for the block; the read-only tmpfs at
    /sys/fs/cgroup is made writable only for the mkdir and rmdir."""
    sh("mount", "-o", "remount,rw", ROOT)
    os.mkdir(UNIFIED)
    sh("mount", "-o", "remount,ro", ROOT)
    done = 0
    try:
        for fstype, source in mounts:
            sh("mount", "-t", fstype, source, UNIFIED)
            done += 1
        yield
    finally:
        for _ in range(done):
            sh("umount", UNIFIED)
        sh("mount", "-o", "remount,rw", ROOT)
        os.rmdir(UNIFIED)
        sh("mount", "-o", "remount,ro", ROOT)


def test_layout_is_v1_only():
    """Each controller is a cgroup v1 hierarchy (magic CGROUP_SUPER_MAGIC)
    under a tmpfs; no cgroup2 anywhere, although the kernel still prints
    its 0:: line."""
    assert magic(ROOT) == TMPFS_MAGIC
    for c in CONTROLLERS:
        assert magic(f"{ROOT}/{c}") == CGROUP_SUPER_MAGIC, c
    assert "cgroup2" not in fstypes()
    assert not os.path.exists(UNIFIED)
    lines = open("/proc/self/cgroup").read().split()
    assert not any(line.startswith("0::") for line in lines), lines
    assert any(":memory:" in line for line in lines)


def run_limited(sbx, bundle, script):
    """Run SCRIPT under memory, pids and CPU limits; return (bundle, output)."""
    b = bundle(["sh", "-c", script])
    b.config["linux"]["resources"] = {
        "memory": {"limit": 64 << 20},
        "pids": {"limit": 50},
        "cpu": {"quota": 20000, "period": 100000, "shares": 512},
    }
    b.write()
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    return b, cp.stdout


VIEW = (
    "cat /proc/self/cgroup; echo --; ls /sys/fs/cgroup; echo --;"
    " cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
    " /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares"
)


def check_view(out, unified):
    cg, ls, files = out.split("--\n")
    lines = cg.split()
    assert any(":memory:/" in line for line in lines), cg
    assert all(line.endswith(":/") for line in lines), cg
    names = ls.split()
    for c in ("memory", "pids", "cpu", "freezer", "devices"):
        assert c in names, ls
    assert ("unified" in names) == unified, ls
    assert files.split() == [str(64 << 20), "50", "20000", "512"], files


def test_container_sees_v1_with_limits(sbx, bundle):
    """The container gets the v1 hierarchies, rooted at its cgroup, with its
    limits in the v1 files; no unified entry appears."""
    _, out = run_limited(sbx, bundle, VIEW)
    check_view(out, unified=False)


def test_tmpfs_at_unified_is_not_cgroup2(sbx, bundle):
    """A tmpfs at /sys/fs/cgroup/unified (a leftover directory, a
    distribution's placeholder) is not a cgroup2 hierarchy: containers run,
    and nothing is written into it."""
    with at_unified(("tmpfs", "tmpfs")):
        assert magic(UNIFIED) == TMPFS_MAGIC
        _, out = run_limited(sbx, bundle, VIEW)
        check_view(out, unified=False)
        assert os.listdir(UNIFIED) == []


def test_cgroup2_at_unified_makes_a_hybrid_host(sbx, bundle):
    """A real cgroup2 mount there turns the host hybrid: the container is
    placed in the unified hierarchy too (process tracking), and sees it."""
    with at_unified(("cgroup2", "cgroup2")):
        b = bundle(["sh", "-c", "cat /proc/self/cgroup; sleep 100"])
        cid = sbx.new_id()
        sbx.ok("create", "--bundle", b, cid)
        pid = sbx.state(cid)["pid"]
        path = b.config["linux"]["cgroupsPath"]
        udir = UNIFIED + path
        assert os.path.isdir(udir), cgroup_dirs(path)
        assert str(pid) in open(f"{udir}/cgroup.procs").read().split()
        sbx.ok("delete", "--force", cid)
        assert not os.path.exists(udir)


def test_cgroup2_hidden_under_tmpfs_is_ignored(sbx, bundle):
    """mountinfo still lists a cgroup2 mount that a tmpfs covers; statfs of
    the path says tmpfs, and that is what counts."""
    with at_unified(("cgroup2", "cgroup2"), ("tmpfs", "tmpfs")):
        assert magic(UNIFIED) == TMPFS_MAGIC
        assert "cgroup2" in fstypes()
        _, out = run_limited(sbx, bundle, VIEW)
        check_view(out, unified=False)
        assert os.listdir(UNIFIED) == []
