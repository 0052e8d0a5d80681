"""Interoperability with the reference runtime: the config `sbxrun spec`
writes must run under runc as it is (only process.args, process.terminal and
linux.cgroupsPath are changed, by the bundle fixture)."""

import shutil

import pytest

from conftest import describe, mounts_under, run_cmd

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]

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


def _lifecycle(call, b, cid):
    """create + start a `sleep` container with runtime CALL."""
    cp = call("create", "--bundle", b, cid)
    assert cp.returncode == 0, describe(cp)
    cp = call("start", cid)
    assert cp.returncode == 0, describe(cp)


def _wait_stopped(call, cid):
    import json
    import time
    for _ in range(200):
        cp = call("state", cid)
        if cp.returncode == 0 and json.loads(cp.stdout)["status"] == "stopped":
            return
        time.sleep(0.05)
    raise AssertionError(f"{cid} never stopped")


def test_kill_signal_zero_is_a_liveness_check_like_runc(runc, sbx, bundle):
    """`kill ID 0`: success while the container runs, failure once it has
    stopped, under both runtimes."""
    results = {}
    for name, call in (("runc", runc), ("sbxrun", sbx)):
        b = bundle(["sleep", "60"], name=f"k0-{name}")
        cid = f"k0-{name}"
        _lifecycle(call, b, cid)
        alive = call("kill", cid, "0")
        call("kill", cid, "KILL")
        _wait_stopped(call, cid)
        dead = call("kill", cid, "0")
        results[name] = (alive.returncode == 0, dead.returncode != 0)
        call("delete", "--force", cid)
    assert results["sbxrun"] == results["runc"] == (True, True), results


def test_list_is_sorted_by_id_like_runc(runc, sbx, bundle):
    ids = ["zeta", "alpha", "mid", "beta"]
    out = {}
    for name, call in (("runc", runc), ("sbxrun", sbx)):
        b = bundle(["sleep", "60"], name=f"ls-{name}")
        for cid in ids:
            cp = call("create", "--bundle", b, cid)
            assert cp.returncode == 0, describe(cp)
        out[name] = call("list", "-q").stdout.split()
        for cid in ids:
            call("delete", "--force", cid)
    assert out["sbxrun"] == out["runc"] == sorted(ids), out
