"""podman drives sbxrun through conmon (`podman --runtime`): the calls and
output formats in shared/notes/engines.md, checked end to end with a real
podman.  The image is the busybox rootfs, imported (no registry).  Skipped
where podman is not installed."""

import json
import shutil
import subprocess
import tempfile

import pytest

import os

from conftest import SBXRUN, cgroup_dirs, describe, mounts_under, run_cmd

pytestmark = [pytest.mark.needs_root,
              pytest.mark.skipif(shutil.which("podman") is None, reason="podman not installed")]


@pytest.fixture
def podman(tmp_path, busybox_rootfs, cgroup_parent):
    conf = tmp_path / "containers.conf"
    # No CAP_SYS_RESOURCE on this VM: podman's default ulimits ask for more.
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=1024:1024","nproc=4096:4096"]\n'
                    '[engine]\nruntime_supports_json = ["sbxrun"]\n'
                    f'[engine.runtimes]\nsbxrun = ["{SBXRUN}"]\n')
    # podman refuses a runroot longer than 50 characters
    runroot = tempfile.mkdtemp(prefix="sbxpm-", dir="/tmp")
    base = ["podman", "--root", str(tmp_path / "storage"), "--runroot", runroot,
            "--runtime", "sbxrun", "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    env = {"CONTAINERS_CONF": str(conf), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}

    def pm(*args, ok=True, **kw):
        cp = run_cmd([*base, *args], env=env, timeout=120, **kw)
        if ok:
            assert cp.returncode == 0, describe(cp)
        return cp

    tar = subprocess.Popen(["tar", "-C", str(busybox_rootfs), "-c", "."], stdout=subprocess.PIPE)
    pm("import", "-", "localhost/sbxtest-bb:latest", stdin=tar.stdout)
    tar.wait()
    pm.parent = cgroup_parent.path("pod")
    yield pm
    ids = pm("ps", "-aq").stdout.split()
    if ids:
        pm("rm", "-f", "-t", "0", *ids, ok=False)
    pm("system", "reset", "-f", ok=False)
    left = mounts_under(tmp_path) + mounts_under(runroot)
    shutil.rmtree(runroot, ignore_errors=True)
    assert left == [], "podman/sbxrun left mounts behind"
    # conmon's cgroup (<parent>/conmon) is podman's to keep; the containers'
    # cgroups (libpod-<id>) are sbxrun's and must be gone.
    ours = []
    for d in cgroup_dirs(pm.parent):
        if os.path.isdir(d):
            ours += [e for e in os.listdir(d) if e.startswith("libpod")]
            for sub in (os.path.join(d, "conmon"), d):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass
    assert ours == [], f"container cgroups left behind: {ours}"


def test_run_foreground(podman):
    cp = podman("run", "--rm", "--network", "none", "--cgroup-parent", podman.parent,
                "localhost/sbxtest-bb:latest", "sh", "-c", "echo hello; cat /proc/self/status")
    assert cp.stdout.startswith("hello\n"), cp.stdout
    assert "Seccomp:\t2" in cp.stdout  # podman's own seccomp profile, loaded by sbxrun


def test_exit_code(podman):
    cp = podman("run", "--rm", "--network", "none", "--cgroup-parent", podman.parent,
                "localhost/sbxtest-bb:latest", "sh", "-c", "exit 3", ok=False)
    assert cp.returncode == 3, describe(cp)


def test_detached_exec_pause_stop_rm(podman):
    cid = podman("run", "-d", "--network", "none", "--cgroup-parent", podman.parent,
                 "localhost/sbxtest-bb:latest", "sleep", "300").stdout.strip()
    cp = podman("exec", cid, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline")
    assert cp.stdout.startswith("exec-ok\nsleep"), cp.stdout
    assert podman("exec", "-t", cid, "echo", "tty-ok").stdout.strip() == "tty-ok"
    podman("pause", cid)
    state = json.loads(podman("inspect", cid).stdout)[0]["State"]
    assert state["Status"] == "paused", state
    podman("unpause", cid)
    podman("stop", "-t", "1", cid)
    state = json.loads(podman("inspect", cid).stdout)[0]["State"]
    assert state["Status"] == "exited", state
    podman("rm", cid)
    assert podman("ps", "-aq").stdout.strip() == ""
