"""Rootless --systemd-cgroup from an ordinary login session (issue 15), in
the systemd guest (tests/vm/run-systemd.sh; skipped elsewhere).

The test user logs in through PAM (`runuser -l`, pam_systemd): logind puts
the session into user-UID.slice/session-N.scope, which is root's and not
delegated.  The kernel then does not let sbxrun move the container into
the user manager's scope (the two cgroups meet at root's user-UID.slice),
so sbxrun starts the container process first and has the user's systemd
place it (StartTransientUnit with its pid: the user manager asks the
system manager to move it), and moves exec'd processes the same way
(AttachProcessesToUnit).  The tests check, from inside the container, the
cgroup (/proc/self/cgroup) and the limits (memory.max, pids.max), the
whole life cycle from such sessions, and that delete leaves no unit, no
cgroup and no state.
"""

import json
import os
import re
import shlex

import pytest

from conftest import describe, run_cmd, wait_for
from test_systemd_host import (BUS, CG, cgfile, needs_driver, pid1, systemctl, user_scope_config,
                               user_session, user_unit_path, user_unit_prop)  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("run", "create", "start", "delete")]
if pid1() != "systemd" or not os.path.exists(BUS):
    pytestmark.append(pytest.mark.skip(reason="systemd is not PID 1 here (tests/vm/run-systemd.sh runs these)"))

@pytest.fixture(scope="module")
def login(user_session):
    """user_session plus login(script, cwd): the shell script run as the
    user in a new PAM login session (runuser -l, pam_systemd), with the
    session's own environment (XDG_RUNTIME_DIR and the user bus from
    pam_systemd)."""
    from test_rootless import USER
    s = user_session
    cp = systemctl("start", "systemd-logind.service")
    assert cp.returncode == 0, describe(cp)

    def run(script, cwd=None):
        return run_cmd(["runuser", "-l", USER, "-c", f"cd {shlex.quote(cwd or s.top)} && {script}"], timeout=180)

    s.login = run
    return s


def sbx(s, *args):
    return shlex.join([s.sbxrun, *args])


SESSION_RE = r"0::/user\.slice/user-{uid}\.slice/session-c?\d+\.scope"  # c1: no audit session id


def unit_listed(s, unit):
    cp = s.scoped("systemctl", "--user", "list-units", "--all", "--plain", "--no-legend", "--full", scope=False)
    return unit in cp.stdout.split()


@needs_driver
def test_login_session_run(login):
    """run from a login session: the session's cgroup is session-N.scope
    (root's, not writable by the user), and yet the container runs in
    sbxtest-c5.scope below user@UID.service with its memory and pids
    limits, read inside (no cgroup namespace: full paths); nothing is left
    after it exits."""
    s = login
    unit, path = "sbxtest-c5.scope", user_unit_path(s, "sbxtest-c5.scope")
    b = s.bundle(["sh", "-c", f"cat /proc/self/cgroup {CG}{path}/memory.max {CG}{path}/pids.max"],
                 user_scope_config("user.slice:sbxtest:c5", cgroupns=False))
    cp = s.login("cat /proc/self/cgroup; ls -ld \"/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)\"; "
                 "echo $XDG_RUNTIME_DIR; " + sbx(s, "--systemd-cgroup", "run", "c5"), cwd=b)
    assert cp.returncode == 0, describe(cp)
    lines = cp.stdout.split("\n")
    assert re.fullmatch(SESSION_RE.format(uid=s.uid), lines[0]), describe(cp)
    assert lines[1].split()[2] == "root", describe(cp)  # not delegated
    assert lines[2] == s.xdg, describe(cp)
    assert lines[3:6] == [f"0::{path}", str(64 << 20), "16"], describe(cp)
    assert not unit_listed(s, unit)
    assert not os.path.exists(f"{CG}{path}")
    assert s.state_entries() == []


@needs_driver
def test_login_session_lifecycle(login):
    """run -d, exec, pause/resume, kill, delete, each from its own login
    session, with the spec's cgroup namespace: inside, the container's
    cgroup is / and /sys/fs/cgroup has its limits; the init is in the
    user manager's scope, and so is an exec'd process (systemd moved it);
    exec --cgroup is refused by name; delete leaves no unit (systemctl
    --user list-units), no cgroup and no state."""
    s = login
    unit, path = "sbxtest-c6.scope", user_unit_path(s, "sbxtest-c6.scope")
    b = s.bundle(["sh", "-c", "while :; do sleep 1; done"],
                 user_scope_config("user.slice:sbxtest:c6", cgroupns=True))
    cp = s.login(sbx(s, "--systemd-cgroup", "run", "-d", "c6"), cwd=b)
    assert cp.returncode == 0, describe(cp)
    try:
        state = json.loads(s.login(sbx(s, "state", "c6")).stdout)
        with open(f"/proc/{state['pid']}/cgroup") as f:
            assert f.read().strip() == f"0::{path}"
        assert user_unit_prop(s, unit, "ActiveState") == "active"
        assert user_unit_prop(s, unit, "TasksMax") == "16"
        cp = s.login(sbx(s, "exec", "c6", "sh", "-c",
                         "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; "
                         "cat /sys/fs/cgroup/cgroup.procs"))
        assert cp.returncode == 0, describe(cp)
        out = cp.stdout.split()
        assert out[:3] == ["0::/", str(64 << 20), "16"], describe(cp)
        assert len(out) >= 5, describe(cp)  # the init and the exec'd shell (and cat)
        cp = s.login(sbx(s, "exec", "--cgroup", "sub", "c6", "true"))
        assert cp.returncode != 0 and "exec --cgroup" in cp.stderr and "user@UID.service" in cp.stderr, \
            describe(cp)
        cp = s.login(sbx(s, "pause", "c6"))
        assert cp.returncode == 0, describe(cp)
        assert json.loads(s.login(sbx(s, "state", "c6")).stdout)["status"] == "paused"
        assert "frozen 1" in cgfile(path, "cgroup.events").splitlines()
        cp = s.login(sbx(s, "resume", "c6"))
        assert cp.returncode == 0, describe(cp)
        assert "frozen 0" in cgfile(path, "cgroup.events").splitlines()
        cp = s.login(sbx(s, "kill", "c6", "KILL"))
        assert cp.returncode == 0, describe(cp)
        wait_for(lambda: json.loads(s.login(sbx(s, "state", "c6")).stdout)["status"] == "stopped",
                 timeout=30, what="c6 stopped")
        cp = s.login(sbx(s, "delete", "c6"))
        assert cp.returncode == 0, describe(cp)
        assert not unit_listed(s, unit)
        assert user_unit_prop(s, unit, "LoadState") == "not-found"
        assert not os.path.exists(f"{CG}{path}")
    finally:
        s.login(sbx(s, "delete", "--force", "c6"))
    assert s.state_entries() == []


@needs_driver
def test_login_session_slice_refused(login):
    """A slice as the container's cgroup cannot work from a login session
    (systemd places processes only into scopes): refused before anything
    is made, naming the slice and the session's cgroup; no unit, no
    state."""
    s = login
    b = s.bundle(["true"], user_scope_config("user.slice::sbxc7.slice", cgroupns=True))
    cp = s.login(sbx(s, "--systemd-cgroup", "run", "c7"), cwd=b)
    assert cp.returncode != 0, describe(cp)
    assert "names a slice" in cp.stderr and "session-" in cp.stderr, describe(cp)
    assert not unit_listed(s, "sbxc7.slice")
    assert s.state_entries() == []


@needs_driver
def test_login_session_nested_pid_namespace_refused(login):
    """From a pid namespace of its own (NSpid has two numbers) sbxrun
    cannot have systemd place the container by pid (systemd reads the
    number in its own namespace, where it is another process): refused by
    name; no unit, no state."""
    s = login
    b = s.bundle(["true"], user_scope_config("user.slice:sbxtest:c8", cgroupns=True))
    cp = s.login("unshare --user --map-current-user --pid --fork " + sbx(s, "--systemd-cgroup", "run", "c8"),
                 cwd=b)
    assert cp.returncode != 0, describe(cp)
    assert "pid namespace of its own" in cp.stderr and "session-" in cp.stderr, describe(cp)
    assert not unit_listed(s, "sbxtest-c8.scope")
    assert s.state_entries() == []


@needs_driver
def test_system_service_run(user_session):
    """The same from a system service's cgroup (the suite's unit in
    system.slice, root's): run places the container below
    user@UID.service, with its limits."""
    s = user_session
    unit, path = "sbxtest-c4.scope", user_unit_path(s, "sbxtest-c4.scope")
    b = s.bundle(["sh", "-c", f"cat /proc/self/cgroup {CG}{path}/pids.max"],
                 user_scope_config("user.slice:sbxtest:c4", cgroupns=False))
    cp = s.run("--systemd-cgroup", "run", "c4", cwd=b)
    assert cp.returncode == 0, describe(cp)
    assert cp.stdout.split() == [f"0::{path}", "16"], describe(cp)
    assert user_unit_prop(s, unit, "LoadState") == "not-found"
    assert s.state_entries() == []


@needs_driver
@pytest.mark.parametrize("step", ["create:spawned", "create:resources"])
def test_login_session_killed_create_leaves_nothing(login, step):
    """A create from a login session killed before systemd has the init
    (spawned) or after (resources: the unit holds it, limits written): the
    journal lists it as creating, and delete --force leaves no unit, no
    cgroup and no state."""
    s = login
    cid = f"k{step.split(':')[1][:3]}"
    unit, path = f"sbxtest-{cid}.scope", user_unit_path(s, f"sbxtest-{cid}.scope")
    b = s.bundle(["sleep", "600"], user_scope_config(f"user.slice:sbxtest:{cid}", cgroupns=True))
    cp = s.login(f"SBXRUN_TEST_KILL_AT={step} " + sbx(s, "--systemd-cgroup", "create", cid) + "; echo rc=$?",
                 cwd=b)
    assert "rc=137" in cp.stdout, describe(cp)
    listed = {c["id"]: c["status"] for c in json.loads(s.login(sbx(s, "list", "--format", "json")).stdout) or []}
    assert listed.get(cid) == "creating", listed
    cp = s.login(sbx(s, "delete", "--force", cid))
    assert cp.returncode == 0, describe(cp)
    assert not unit_listed(s, unit)
    assert not os.path.exists(f"{CG}{path}")
    assert s.state_entries() == []
