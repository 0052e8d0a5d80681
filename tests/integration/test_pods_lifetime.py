"""A pod's egress table outlives its sandbox while members are left
(issue 12, docs/annotations.md "Pods"): the sandbox deleted first keeps
the table, so the pod's running containers stay restricted, and the last
member to go removes it; after `kill -9` of sbxrun too (`delete --force`
decides again).  Fixtures and configs: test_pods (the captured CRI
configs, a NetLab namespace, test cgroups)."""

import json
import os
import signal
import subprocess

import pytest

from conftest import describe, wait_for
from test_netfilter import check, netlab, table_name  # noqa: F401 (fixture)
from test_pods import POD_ALLOWED, POD_BLOCKED, pod  # noqa: F401 (fixture)

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("create", "start", "exec", "delete"),
              pytest.mark.usefixtures("seccomp_cache_cleanup")]


def tables(netlab):
    return netlab.ruleset().count("table inet sbxrun-")


@pytest.mark.parametrize("kill_at", [None, "delete:killed", "delete:net"])
def test_sandbox_deleted_first_keeps_the_pod_table(sbx, pod, netlab, kill_at):
    """The sandbox goes first (with a running app that carries the pod's
    annotation and one without any): both apps stay restricted as before
    (allowed still answers, the rest is refused at once) and the table
    stays until the last app is deleted.  kill_at: sbxrun killed in the
    sandbox's delete after its processes are killed, or after the
    decision (before its record goes); `delete --force` finishes it."""
    sandbox = pod.start_sandbox()
    apps = [pod.app("cri-app-default.json"), pod.app("cri-app-default.json", drop_sbxrun=True)]
    assert tables(netlab) == 1
    if kill_at:
        cp = sbx("delete", "--force", sandbox, env={**os.environ, "SBXRUN_TEST_KILL_AT": kill_at})
        assert cp.returncode == -signal.SIGKILL, describe(cp)
    sbx.ok("delete", "--force", sandbox)
    assert not (sbx.root / sandbox).exists()
    assert f"table inet {table_name(sandbox)}" in netlab.ruleset()
    for cid in apps:
        check(sbx, cid, POD_ALLOWED[:2], POD_BLOCKED[:3])
    sbx.ok("delete", "--force", apps[0])
    check(sbx, apps[1], POD_ALLOWED[:1], POD_BLOCKED[:2])
    assert f"table inet {table_name(sandbox)}" in netlab.ruleset()
    sbx.ok("delete", "--force", apps[1])
    assert "sbxrun-" not in netlab.ruleset()
    # processes outside the pod in that namespace were never restricted
    assert all(r["ok"] for r in netlab.probe_outside(["tcp", "10.231.0.4", 80]))


def test_last_member_killed_in_its_delete(sbx, pod, netlab):
    """The last member's delete killed after it removed the pod's table:
    `delete --force` finishes it and nothing is left; a narrowing
    member's own table goes too."""
    sandbox = pod.start_sandbox()
    narrow = pod.app("cri-app-dropped-netraw-annotated.json", annotations={"org.sbxrun.net.allow": "10.231.0.3:443"})
    app = pod.app("cri-app-default.json")
    assert tables(netlab) == 2
    sbx.ok("delete", "--force", sandbox)
    sbx.ok("delete", "--force", narrow)
    assert tables(netlab) == 1 and f"table inet {table_name(sandbox)}" in netlab.ruleset()
    check(sbx, app, POD_ALLOWED[:1], POD_BLOCKED[:2])
    cp = sbx("delete", "--force", app, env={**os.environ, "SBXRUN_TEST_KILL_AT": "delete:net"})
    assert cp.returncode == -signal.SIGKILL, describe(cp)
    assert "sbxrun-" not in netlab.ruleset()
    sbx.ok("delete", "--force", app)
    assert not (sbx.root / app).exists()


def test_members_go_while_the_sandbox_delete_is_unfinished(sbx, pod, netlab):
    """sbxrun killed in the sandbox's delete after its processes: the
    sandbox's record still holds the table, so the members' deletes leave
    it to the sandbox, whose `delete --force` then removes it."""
    sandbox = pod.start_sandbox()
    app = pod.app("cri-app-default.json")
    cp = sbx("delete", "--force", sandbox, env={**os.environ, "SBXRUN_TEST_KILL_AT": "delete:killed"})
    assert cp.returncode == -signal.SIGKILL, describe(cp)
    check(sbx, app, POD_ALLOWED[:1], POD_BLOCKED[:2])
    sbx.ok("delete", "--force", app)
    assert f"table inet {table_name(sandbox)}" in netlab.ruleset()
    sbx.ok("delete", "--force", sandbox)
    assert "sbxrun-" not in netlab.ruleset()


def test_stopped_member_left_alone(sbx, pod, netlab):
    """A member that has exited still counts (it is a container of the
    pod until deleted); deleting it finds the pod's namespace through the
    sandbox's own path (the CNI namespace) and removes the table."""
    sandbox = pod.start_sandbox()
    app = pod.app("cri-app-default.json")
    rec = json.loads((sbx.root / app / "net.json").read_text())
    assert rec["podNetnsPath"] == netlab.netns_path, rec
    sbx.ok("kill", app, "KILL")
    sbx.wait_status(app, "stopped")
    sbx.ok("delete", "--force", sandbox)
    assert f"table inet {table_name(sandbox)}" in netlab.ruleset()
    sbx.ok("delete", app)
    assert "sbxrun-" not in netlab.ruleset()


def test_member_created_while_the_sandbox_goes(sbx, pod, netlab, tmp_path):
    """A member's create that found the pod's policy, stopped before its
    rules are recorded while the sandbox is deleted: the sandbox sees no
    member and removes the table, so the create must fail rather than
    start a container covered by a table that is gone."""
    sandbox = pod.start_sandbox()
    cid = sbx.new_id("app")
    pod.ids.append(cid)
    b = pod.config("cri-app-default.json", cid, drop_sbxrun=True)
    errfile = tmp_path / "create.err"  # a file: a created init would hold a pipe open
    with open(errfile, "w") as ef:
        p = subprocess.Popen(sbx.argv("create", "--bundle", b, cid), stdout=subprocess.DEVNULL,
                             stderr=ef, env={**os.environ, "SBXRUN_TEST_STOP_AT": "create:spawned"})
    try:
        wait_for(lambda: stopped(p.pid), timeout=30, what="create stopped")
        sbx.ok("delete", "--force", sandbox)
        assert "sbxrun-" not in netlab.ruleset()
    finally:
        os.kill(p.pid, signal.SIGCONT)
        p.wait(timeout=60)
    err = errfile.read_text()
    assert p.returncode != 0 and f'pod sandbox "{sandbox}" was deleted' in err, err
    assert not (sbx.root / cid).exists()
    assert "sbxrun-" not in netlab.ruleset()


def stopped(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def test_member_create_failing_after_the_sandbox_went(sbx, pod, netlab, tmp_path):
    """A member's create stopped after its rules are recorded (the
    sandbox's delete, meanwhile, keeps the table for it) and then failing
    (its prestart hook): the failed create is the pod's last container and
    removes the table."""
    sandbox = pod.start_sandbox()
    cid = sbx.new_id("app")
    pod.ids.append(cid)
    b = pod.config("cri-app-default.json", cid, drop_sbxrun=True)
    with b.edit() as c:
        c["hooks"] = {"prestart": [{"path": "/bin/false", "args": ["false"]}]}
    with open(tmp_path / "create.err", "w") as ef:
        p = subprocess.Popen(sbx.argv("create", "--bundle", b, cid), stdout=subprocess.DEVNULL,
                             stderr=ef, env={**os.environ, "SBXRUN_TEST_STOP_AT": "create:net"})
    try:
        wait_for(lambda: stopped(p.pid), timeout=30, what="create stopped")
        sbx.ok("delete", "--force", sandbox)
        assert f"table inet {table_name(sandbox)}" in netlab.ruleset()
    finally:
        os.kill(p.pid, signal.SIGCONT)
        p.wait(timeout=60)
    assert p.returncode != 0, (tmp_path / "create.err").read_text()
    assert not (sbx.root / cid).exists()
    assert "sbxrun-" not in netlab.ruleset()
