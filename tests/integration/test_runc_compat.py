"""Interoperability with the reference runtime: the config `sbxrun spec`
writes must run under runc as it is (only process.args, process.terminal and
linux.cgroupsPath are changed, by the bundle fixture)."""

import shutil

import pytest

from conftest import describe, mounts_under, run_cmd

pytestmark = pytest.mark.needs_root

RUNC = shutil.which("runc")


@pytest.fixture
def runc(tmp_path, cgroup_parent):
    """Run runc with a private --root; delete its containers afterwards
    (before cgroup_parent checks that no cgroup is left)."""
    if not RUNC:
        pytest.skip("runc is not installed (apt-get install runc)")
    root = tmp_path / "runc-root"

    def call(*args, **kw):
        return run_cmd([RUNC, "--root", root, *args], **kw)

    yield call
    listed = call("list", "-q")
    for cid in listed.stdout.split() if listed.returncode == 0 else []:
        call("delete", "--force", cid)
    assert call("list", "-q").stdout.split() == []


def test_spec_runs_under_runc(runc, bundle, tmp_path):
    b = bundle(["sh", "-c", "echo hello from runc; id -u; hostname; cat /proc/self/cgroup"])
    cp = runc("run", "--bundle", b, "sbxspec-runc")
    assert cp.returncode == 0, describe(cp)
    out = cp.stdout.splitlines()
    assert out[0] == "hello from runc"
    assert out[1] == "0"
    assert out[2] == b.config["hostname"]
    assert runc("list", "-q").stdout.split() == []
    assert mounts_under(tmp_path) == []


def test_spec_exit_status_propagates_under_runc(runc, bundle):
    b = bundle(["sh", "-c", "exit 7"])
    assert runc("run", "--bundle", b, "sbxspec-exit").returncode == 7
