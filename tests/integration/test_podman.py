"""podman drives sbxrun through conmon (`podman --runtime`): the calls and
output formats in shared/notes/engines.md, checked end to end with a real
podman.  The image is the busybox rootfs, imported (no registry).  Skipped
where podman is not installed."""

import contextlib
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import SBXRUN, all_cgroup_dirs, describe, mounts_under, remove_cgroup_tree, run_cmd

pytestmark = [pytest.mark.needs_root,
              pytest.mark.skipif(shutil.which("podman") is None, reason="podman not installed")]


def import_busybox(pm, rootfs):
    """The busybox rootfs as the image localhost/sbxtest-bb (no registry)."""
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    try:
        pm("import", "-", "localhost/sbxtest-bb:latest", stdin=tar.stdout)
    finally:
        tar.stdout.close()
        tar.wait()


def remove_everything(pm):
    """Teardown, on failure too: every container, then podman's storage."""
    with contextlib.suppress(Exception):
        ids = pm("ps", "-aq", ok=False).stdout.split()
        if ids:
            pm("rm", "-f", "-t", "0", *ids, ok=False)
    with contextlib.suppress(Exception):
        pm("system", "reset", "-f", ok=False)


@pytest.fixture
def podman(tmp_path, busybox_rootfs, cgroup_parent):
    conf = tmp_path / "containers.conf"
    # No CAP_SYS_RESOURCE on this VM: podman's default ulimits ask for more.
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=1024:1024","nproc=4096:4096"]\n'
                    '[engine]\nruntime_supports_json = ["sbxrun"]\n'
                    f'[engine.runtimes]\nsbxrun = ["{SBXRUN}"]\n')
    # podman refuses a runroot longer than 50 characters; the pid in the
    # name lets the session guard tell our runroots from other sessions'.
    runroot = tempfile.mkdtemp(prefix=f"sbxpm-{os.getpid()}-", dir="/tmp")
    # --tmpdir: podman's own state (its "alive" file among others) is per
    # test too: a shared /run/libpod that another podman user removes makes
    # podman think the host rebooted and mark every container stopped.
    base = ["podman", "--root", str(tmp_path / "storage"), "--runroot", runroot,
            "--tmpdir", f"{runroot}/libpod",
            "--runtime", "sbxrun", "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    env = {"CONTAINERS_CONF": str(conf), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}

    def pm(*args, ok=True, **kw):
        cp = run_cmd([*base, *args], env=env, timeout=120, **kw)
        if ok:
            assert cp.returncode == 0, describe(cp)
        return cp

    pm.parent = cgroup_parent.path("pod")
    pm.base, pm.env = base, env
    # Everything below runs on failure too (a failed import, a failed
    # test): the containers, podman's storage mounts and runroot, and the
    # cgroups conmon made go before cgroup_parent checks for leftovers.
    left, ours, stuck = [], [], []
    try:
        import_busybox(pm, busybox_rootfs)
        yield pm
    finally:
        remove_everything(pm)
        left = mounts_under(tmp_path) + mounts_under(runroot)
        for mp in left:  # keep the host clean for the following tests
            subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(runroot, ignore_errors=True)
        # conmon's cgroup (<parent>/conmon) is podman's to keep: it is made in
        # every hierarchy and in every plain directory under /sys/fs/cgroup
        # (unmounted controllers on a hybrid host), so remove it everywhere.
        # The containers' cgroups (libpod-<id>) are sbxrun's and must be gone.
        for _, d in all_cgroup_dirs(pm.parent):
            if os.path.isdir(d):
                ours += [os.path.join(d, e) for e in os.listdir(d) if e.startswith("libpod")]
                stuck += remove_cgroup_tree(os.path.join(d, "conmon"))[1]
                with contextlib.suppress(OSError):
                    os.rmdir(d)
    assert left == [], "podman/sbxrun left mounts behind"
    assert stuck == [], f"could not remove conmon's cgroups: {stuck}"
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


def test_landlock_annotation(podman):
    """org.sbxrun.landlock.* through podman's --annotation, with podman's
    default seccomp profile loaded before the rules (noNewPrivileges false)."""
    # podman's --annotation splits its value at commas: one group per path.
    rules = "org.sbxrun.landlock.fs=rx:/bin; rx:/usr; ro:/etc; ro:/proc; rw:/tmp; rw:/dev"
    script = "cat /etc/passwd >/dev/null && echo read-ok; echo x > /root/x || echo write-refused; " \
             "grep NoNewPrivs /proc/self/status"
    cp = podman("run", "--rm", "--network", "none", "--cgroup-parent", podman.parent,
                "--annotation", rules, "localhost/sbxtest-bb:latest", "sh", "-c", script)
    assert cp.stdout.split("\n")[:3] == ["read-ok", "write-refused", "NoNewPrivs:\t1"], describe(cp)
    # Without the annotation the same write works: the rule, not the image, refuses it.
    cp = podman("run", "--rm", "--network", "none", "--cgroup-parent", podman.parent,
                "localhost/sbxtest-bb:latest", "sh", "-c", "echo x > /root/x && echo write-ok")
    assert cp.stdout.strip() == "write-ok", describe(cp)
