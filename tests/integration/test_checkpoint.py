"""checkpoint and restore with CRIU (issue 10, section 1).

The CRIU tests need a kernel the installed criu supports: they skip, with
the reason, where `criu check` fails (Debian's criu 3.17 on a 6.18 kernel)
and run in the guest of tests/vm/run-criu.sh.  The tests of what happens
where CRIU cannot work run on such a host only.
"""

import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import describe, run_cmd
from test_failures import leftovers  # noqa: F401  (a fixture)
from test_netfilter import check, net_bundle, netlab  # noqa: F401  (netlab is a fixture)

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("create", "start", "checkpoint", "restore"),
              pytest.mark.usefixtures("seccomp_cache_cleanup")]

# Its stdio goes to the container's /dev/null: what the test harness hands
# it (temporary files of the host's /tmp) is on no mount of the container.
COUNTER = ["sh", "-c", "exec </dev/null >/dev/null 2>&1; i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.1; done"]


def criu_usable():
    if shutil.which("criu") is None:
        return False, "criu is not installed"
    cp = run_cmd(["criu", "check"], timeout=60)
    return cp.returncode == 0, (cp.stdout + cp.stderr).strip()[-300:]


_USABLE = None


def usable():
    global _USABLE
    if _USABLE is None:
        _USABLE = criu_usable()
    return _USABLE


@pytest.fixture
def criu():
    ok, why = usable()
    if not ok:
        pytest.skip(f"CRIU cannot work on this host ({why}); tests/vm/run-criu.sh runs this in a guest")


@pytest.fixture
def no_criu():
    ok, _ = usable()
    if ok:
        pytest.skip("CRIU works on this host: the failure path needs a host where it cannot")


def count(b):
    try:
        return int((b.rootfs / "count").read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def wait_count(b, above, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = count(b)
        if n > above:
            return n
        time.sleep(0.1)
    pytest.fail(f"the counter stayed at {count(b)} (wanted > {above})")


def counter(sbx, bundle):
    b = bundle(COUNTER)
    with b.edit() as c:
        c["root"]["readonly"] = False
    cid = sbx.new_id("cr")
    sbx.ok("create", "--bundle", b, cid)
    sbx.ok("start", cid)
    wait_count(b, 5)
    return b, cid


# --------------------------------------------------------------------------- always


def test_help_and_flags():
    """podman turns checkpoint off unless `checkpoint --help` exits 0."""
    from conftest import sbxrun
    for cmd in ("checkpoint", "restore"):
        cp = sbxrun(cmd, "--help")
        assert cp.returncode == 0, describe(cp)
    cp = sbxrun("checkpoint", "--help")
    for flag in ("--image-path", "--work-path", "--leave-running", "--tcp-established", "--ext-unix-sk",
                 "--shell-job", "--file-locks", "--pre-dump", "--parent-path", "--manage-cgroups-mode",
                 "--empty-ns", "--auto-dedup"):
        assert flag in cp.stdout, flag
    cp = sbxrun("restore", "--help")
    for flag in ("--image-path", "--work-path", "--bundle", "--detach", "--pid-file", "--console-socket",
                 "--no-subreaper", "--no-pivot", "--lsm-profile", "--manage-cgroups-mode", "--empty-ns",
                 "--auto-dedup"):
        assert flag in cp.stdout, flag


def test_features_and_version_report_criu(sbx):
    ok, _ = usable()
    f = sbx.json("features")
    assert f["annotations"]["org.sbxrun.criu"].startswith("usable" if ok else "not usable"), f["annotations"]
    v = sbx.ok("--version").stdout
    assert ("criu: usable" if ok else "criu: not usable") in v, v
    cp = sbx.ok("--criu", "/nonexistent/criu", "--version")
    assert "criu: not usable" in cp.stdout and "/nonexistent/criu" in cp.stdout, cp.stdout


def test_refusals(sbx, bundle):
    b = bundle(["sleep", "600"])
    cid = sbx.new_id("cr")
    cp = sbx.fail("restore", cid)
    assert "does not exist" in cp.stderr, describe(cp)
    assert not (sbx.root / cid).exists()
    sbx.ok("create", "--bundle", b, cid)
    cp = sbx.fail("checkpoint", cid)
    assert "cannot be checkpointed: it is created" in cp.stderr, describe(cp)
    cp = sbx.fail("restore", "--no-pivot", cid)
    assert "--no-pivot" in cp.stderr, describe(cp)
    cp = sbx.fail("restore", "--empty-ns", "ipc", cid)
    assert "--empty-ns `ipc`" in cp.stderr, describe(cp)
    sbx.ok("delete", "--force", cid)


def test_checkpoint_fails_fast_without_criu(sbx, bundle, no_criu):
    """Where CRIU cannot work: an immediate error with CRIU's reason and a
    hint; the container keeps running, untouched."""
    b, cid = counter(sbx, bundle)
    pid = sbx.state(cid)["pid"]
    for extra in ([], ["--leave-running"], ["--pre-dump"]):
        t = time.monotonic()
        cp = sbx.fail("checkpoint", *extra, cid, timeout=30)
        assert time.monotonic() - t < 10, "checkpoint must fail at once"
        assert "CRIU cannot work on this host" in cp.stderr and "hint" in cp.stderr, describe(cp)
        assert "criu" in cp.stderr.lower()
    st = sbx.state(cid)
    assert st["status"] == "running" and st["pid"] == pid
    n = count(b)
    wait_count(b, n)
    assert not (sbx.root / cid / "checkpoint").exists()
    # cached per boot: the second --version does not run criu again
    assert (sbx.root / ".criu-check").exists()
    sbx.ok("delete", "--force", cid)


# --------------------------------------------------------------------------- with CRIU


def test_checkpoint_restore_continues(sbx, bundle, criu):
    b, cid = counter(sbx, bundle)
    sbx.ok("exec", cid, "sh", "-c", "echo before > /marker; echo shm > /dev/shm/x")
    cp = sbx("checkpoint", cid, timeout=120)
    assert cp.returncode == 0, describe(cp) + (sbx.root / cid / "checkpoint/dump.log").read_text()[-3000:]
    assert sbx.state(cid)["status"] == "stopped"
    n = count(b)
    time.sleep(0.5)
    assert count(b) == n, "the counter ran on after checkpoint"
    assert (sbx.root / cid / "checkpoint/inventory.img").exists()
    cp = sbx("restore", "--detach", "--pid-file", b.path / "restored.pid", cid, timeout=120)
    assert cp.returncode == 0, describe(cp) + (sbx.root / cid / "checkpoint/restore.log").read_text()[-3000:]
    st = sbx.state(cid)
    assert st["status"] == "running", st
    assert int((b.path / "restored.pid").read_text()) == st["pid"]
    m = wait_count(b, n)
    assert n < m < n + 100, f"counter at {m} after restore from {n}: it restarted"
    assert sbx.ok("exec", cid, "cat", "/marker", "/dev/shm/x").stdout.split() == ["before", "shm"]
    sbx.ok("kill", cid, "KILL")
    sbx.wait_status(cid, "stopped")
    sbx.ok("delete", cid)
    assert not (sbx.root / cid).exists()


def test_leave_running_then_restore(sbx, bundle, criu):
    b, cid = counter(sbx, bundle)
    cp = sbx("checkpoint", "--leave-running", cid, timeout=120)
    assert cp.returncode == 0, describe(cp)
    n = count(b)
    assert sbx.state(cid)["status"] == "running"
    later = wait_count(b, n + 10)
    sbx.ok("kill", cid, "KILL")
    sbx.wait_status(cid, "stopped")
    sbx.ok("restore", "--detach", cid, timeout=120)
    assert sbx.state(cid)["status"] == "running"
    time.sleep(0.3)
    m = count(b)
    # back to the checkpoint's count, not the one it had reached
    assert m < later or m < n + 10 + 5, (n, later, m)
    wait_count(b, m)
    sbx.ok("delete", "--force", cid)


def test_pre_dump_dump_delete_restore_from_bundle(sbx, bundle, tmp_path, criu):
    """Pre-dump, then the final dump on top of it, outside the state
    directory; then what podman and containerd do: delete the container and
    restore it from --bundle and --image-path."""
    b, cid = counter(sbx, bundle)
    pre, final, work = tmp_path / "img/pre", tmp_path / "img/final", tmp_path / "work"
    sbx.ok("checkpoint", "--pre-dump", "--image-path", pre, cid, timeout=120)
    assert sbx.state(cid)["status"] == "running"
    assert any(pre.glob("pagemap-*.img"))
    cp = sbx("checkpoint", "--image-path", final, "--work-path", work, "--parent-path", "../pre", cid,
             timeout=120)
    assert cp.returncode == 0, describe(cp) + (work / "dump.log").read_text()[-3000:]
    assert sbx.state(cid)["status"] == "stopped"
    sbx.ok("delete", cid)
    assert final.is_dir(), "an image outside the state directory is kept"
    n = count(b)
    cp = sbx("restore", "--detach", "--bundle", b, "--image-path", final, "--work-path", work, cid,
             timeout=120)
    assert cp.returncode == 0, describe(cp) + (work / "restore.log").read_text()[-3000:]
    assert sbx.state(cid)["status"] == "running"
    m = wait_count(b, n)
    assert m < n + 100
    sbx.ok("delete", "--force", cid)


@pytest.mark.parametrize("step, fresh", [("restore:restored", False), ("restore:restored", True)])
def test_killed_during_restore(sbx, bundle, tmp_path, leftovers, criu, step, fresh):
    """Issue 14's journal on the restore path: a restore SIGKILLed after
    CRIU has brought the tasks back (held stopped, the rootfs bound for
    CRIU), into the stopped container or as a new one from --image-path,
    leaves a container that `list` shows and `delete --force` removes whole
    (cgroups, the restored processes, the mount)."""
    b, cid = counter(sbx, bundle)
    img = tmp_path / "img"
    sbx.ok("checkpoint", "--image-path", img, cid, timeout=120)
    if fresh:
        sbx.ok("delete", cid)  # restored as a new container (podman, containerd)
    leftovers.snapshot()
    cp = sbx("restore", "--detach", "--bundle", b, "--image-path", img, cid, timeout=120,
             env={**os.environ, "SBXRUN_TEST_KILL_AT": step})
    assert cp.returncode == -9, describe(cp)
    listed = {c["id"]: c["status"] for c in json.loads(sbx.ok("list", "--format", "json").stdout or "null") or []}
    assert listed.get(cid) == "creating", listed
    cp = sbx("delete", cid)
    assert cp.returncode != 0 and "--force" in cp.stderr, describe(cp)
    cp = sbx("delete", "--force", cid)
    assert cp.returncode == 0, describe(cp)
    leftovers.check(cp, cid)
    # the ID is free again, and the image still restores
    cp = sbx("restore", "--detach", "--bundle", b, "--image-path", img, cid, timeout=120)
    assert cp.returncode == 0, describe(cp)
    assert sbx.state(cid)["status"] == "running"
    sbx.ok("delete", "--force", cid)


def test_egress_allowlist_after_restore(sbx, bundle, tmp_path, netlab, criu):
    ann = {"org.sbxrun.net.allow": "10.231.0.2:80", "org.sbxrun.net.dns": "none"}
    b = net_bundle(bundle, tmp_path, netlab, ann, args=COUNTER)
    with b.edit() as c:
        c["root"]["readonly"] = False
    cid = sbx.new_id("crnet")
    sbx.ok("create", "--bundle", b, cid)
    sbx.ok("start", cid)
    wait_count(b, 3)
    allowed, blocked = [["tcp", "10.231.0.2", 80]], [["tcp", "10.231.0.2", 443], ["tcp", "10.231.0.3", 80]]
    check(sbx, cid, allowed, blocked)
    cp = sbx("checkpoint", cid, timeout=120)
    assert cp.returncode == 0, describe(cp) + (sbx.root / cid / "checkpoint/dump.log").read_text()[-3000:]
    # the rules go and come back from the saved config, not the image
    run_cmd(["ip", "netns", "exec", netlab.client, "nft", "delete", "table", "inet", f"sbxrun-{cid}"])
    cp = sbx("restore", "--detach", cid, timeout=120)
    assert cp.returncode == 0, describe(cp) + (sbx.root / cid / "checkpoint/restore.log").read_text()[-3000:]
    assert f"sbxrun-{cid}" in netlab.ruleset()
    check(sbx, cid, allowed, blocked)
    sbx.ok("delete", "--force", cid)
    assert f"sbxrun-{cid}" not in netlab.ruleset()
