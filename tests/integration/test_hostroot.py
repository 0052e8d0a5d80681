"""A container without a mount namespace of its own (the host's, or one
joined by path) that still asks for mounts, masked and read-only paths and a
read-only root: they are made below a private bind of the rootfs, nothing of
it propagates to other mount namespaces, and delete (or the cleanup of a
killed create) removes all of it, never anything outside the rootfs."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import describe, run_cmd

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]


def mount_points(pid="self"):
    """Mount points (unescaped enough for our paths) of pid's namespace."""
    with open(f"/proc/{pid}/mountinfo") as f:
        return [l.split()[4] for l in f]


def under(points, root):
    root = str(root)
    return [p for p in points if p == root or p.startswith(root + "/")]


def inside_mounts(text):
    """mount point -> options, from a /proc/self/mountinfo read inside."""
    out = {}
    for l in text.splitlines():
        f = l.split()
        if len(f) > 5:
            out[f[4]] = f[5].split(",")
    return out


@pytest.fixture
def sleeper():
    """sleeper(*unshare_args) -> Popen of `unshare ... sleep 600`, killed at
    teardown (by its pid)."""
    procs = []

    def start(*args):
        p = subprocess.Popen(["unshare", *args, "sleep", "600"])
        procs.append(p)
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{p.pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt"):
            assert time.monotonic() < deadline, "unshare did not start"
            time.sleep(0.02)
        time.sleep(0.05)  # exec'd sleep
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def no_mount_ns(b, args=("sleep", "600")):
    with b.edit() as c:
        c["process"]["args"] = list(args)
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "mount"]


def run_joined(sbx, bundle, other):
    """A detached container in the mount namespace of process OTHER."""
    b = bundle()
    no_mount_ns(b)
    with b.edit() as c:
        c["linux"]["namespaces"].append({"type": "mount", "path": f"/proc/{other.pid}/ns/mnt"})
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    return b, cid


def check_inside(sbx, cid):
    out = sbx.ok("exec", cid, "cat", "/proc/self/mountinfo").stdout
    m = inside_mounts(out)
    for p in ["/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]:
        assert p in m, out
    assert "ro" in m["/"], out  # root.readonly
    assert "ro" in m["/proc/sys"], out  # readonlyPaths
    assert "/proc/keys" in m and "/proc/acpi" in m, out  # maskedPaths
    st = sbx.ok("exec", cid, "stat", "-c", "%F %t:%T", "/proc/keys").stdout.split()
    assert st[-1] == "1:3" and "character" in st, st
    assert sbx("exec", cid, "sh", "-c", "echo x > /proc/sysrq-trigger").returncode != 0


def test_default_mounts_without_mount_namespace(sbx, bundle, sleeper):
    """The default config without a mount namespace: everything is there
    inside; nothing reached the host's other namespaces; nothing is left
    after delete."""
    slave = sleeper("-m", "--propagation", "slave")
    b = bundle()
    no_mount_ns(b)
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    check_inside(sbx, cid)
    host = under(mount_points(), b.rootfs)
    assert str(b.rootfs) + "/proc" in host, host
    # a slave of the host's mounts got at most the bind of the rootfs
    # itself (before it was made private), none of the container's
    assert under(mount_points(slave.pid), b.rootfs) in ([], [str(b.rootfs)]), mount_points(slave.pid)
    sbx.ok("delete", "--force", cid)
    assert under(mount_points(), b.rootfs) == []
    assert under(mount_points(slave.pid), b.rootfs) == []


def test_joined_mount_namespace_gets_the_rootfs_and_loses_it(sbx, bundle, sleeper):
    """Joining another process's mount namespace by path: the mounts are
    made there (not on the host) and go with delete."""
    other = sleeper("-m")
    b, cid = run_joined(sbx, bundle, other)
    check_inside(sbx, cid)
    assert str(b.rootfs) + "/proc" in under(mount_points(other.pid), b.rootfs)
    assert under(mount_points(), b.rootfs) == []
    sbx.ok("delete", "--force", cid)
    assert under(mount_points(other.pid), b.rootfs) == []


def test_joined_namespace_gone_before_delete(sbx, bundle, sleeper):
    """The joined namespace died (with its mounts): delete has nothing to
    unmount and succeeds."""
    other = sleeper("-m", "--fork", "--pid", "--kill-child")
    b, cid = run_joined(sbx, bundle, other)
    sbx.ok("kill", cid, "KILL")
    other.kill()
    other.wait()
    time.sleep(0.2)
    sbx.ok("delete", "--force", cid)


@pytest.mark.parametrize("step", ["create:host-root", "create:host-root-bound", "create:hooks"])
def test_killed_create_leaves_no_mount(sbx, bundle, step):
    b = bundle()
    no_mount_ns(b)
    cid = sbx.new_id()
    cp = sbx("create", "--bundle", b, cid, env={**os.environ, "SBXRUN_TEST_KILL_AT": step})
    assert cp.returncode == -signal.SIGKILL, describe(cp)
    time.sleep(0.2)  # the init dies with us (PR_SET_PDEATHSIG)
    sbx.ok("delete", "--force", cid)
    assert under(mount_points(), b.rootfs) == []


def test_failed_create_leaves_no_mount(sbx, bundle):
    """A create failing after the mounts (a missing program) removes them."""
    b = bundle()
    no_mount_ns(b, ["/nonexistent"])
    cid = sbx.new_id()
    sbx.fail("run", "--bundle", b, cid)
    assert under(mount_points(), b.rootfs) == []


def test_symlink_swap_does_not_unmount_host_paths(sbx, bundle, tmp_path):
    """rootfs/proc replaced by a symlink to a host directory that has a
    mount of its own before delete: delete removes the container's tree by
    the rootfs bind's fd, and never touches the host directory."""
    host_dir = tmp_path / "hostdir"
    host_dir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "sbx-host-marker", host_dir], check=True)
    try:
        b = bundle()
        no_mount_ns(b)
        with b.edit() as c:
            c["root"]["readonly"] = False  # the swap is made through the bind
        cid = sbx.new_id()
        sbx.ok("run", "--detach", "--bundle", b, cid)
        for p in sorted(under(mount_points(), b.rootfs / "proc"), key=len, reverse=True):
            subprocess.run(["umount", "-l", p], check=True)
        (b.rootfs / "proc").rmdir()
        (b.rootfs / "proc").symlink_to(host_dir)
        sbx.ok("delete", "--force", cid)
        assert str(host_dir) in mount_points()
        assert under(mount_points(), b.rootfs) == []
    finally:
        subprocess.run(["umount", host_dir], check=True)


def test_shared_propagation_refused_without_mount_namespace(sbx, bundle):
    b = bundle(["true"])
    no_mount_ns(b, ["true"])
    with b.edit() as c:
        c["linux"]["rootfsPropagation"] = "rshared"
    cp = sbx.fail("run", "--bundle", b, sbx.new_id())
    assert "linux.rootfsPropagation `rshared` needs a new mount namespace" in cp.stderr, describe(cp)


def test_foreground_run_removes_its_mounts(sbx, bundle):
    """`run` without --detach deletes the container when it exits: its
    mounts go with it."""
    b = bundle()
    no_mount_ns(b, ["sh", "-c", "test -e /proc/self/mountinfo && test -c /dev/null"])
    sbx.ok("run", "--bundle", b, sbx.new_id())
    assert under(mount_points(), b.rootfs) == []


def _edit_host_root(sbx, cid, **fields):
    p = sbx.root / cid / "status.json"
    st = json.loads(p.read_text())
    for k, v in fields.items():
        if v is None:
            st["hostRoot"].pop(k, None)
        else:
            st["hostRoot"][k] = v
    p.write_text(json.dumps(st))


def test_bind_without_a_recorded_id_is_not_taken_for_ours(sbx, bundle):
    """The runtime records the bind's id before it attaches the bind, so a
    state without one never has a bind of its own on the rootfs: a mount
    found there then (another container's on the same rootfs) is left
    alone, not taken for ours by where it sits."""
    b = bundle()
    no_mount_ns(b)
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    _edit_host_root(sbx, cid, mountId=None)
    sbx.ok("delete", "--force", cid)
    left = under(mount_points(), b.rootfs)
    assert str(b.rootfs) in left, left
    assert run_cmd(["umount", "-l", str(b.rootfs)]).returncode == 0
    assert under(mount_points(), b.rootfs) == []


def test_rootfs_below_a_directory_others_may_change_refused(sbx, bundle, tmp_path):
    """A parent of the rootfs that a user other than root could rename
    would let them redirect the bind onto a host directory: refused by
    name before anything is mounted; a sticky directory over a root-owned
    entry is fine."""
    b = bundle()
    no_mount_ns(b, ["true"])
    parent = b.rootfs.parent
    mode = parent.stat().st_mode
    os.chmod(parent, mode | 0o002)
    try:
        cp = sbx("run", "--bundle", b, sbx.new_id())
        assert cp.returncode != 0, describe(cp)
        assert "may be changed by others than root" in cp.stderr, describe(cp)
        assert under(mount_points(), b.rootfs) == []
        os.chmod(parent, mode | 0o1002)  # sticky: others cannot rename root's rootfs
        cp = sbx("run", "--bundle", b, sbx.new_id())
        assert cp.returncode == 0, describe(cp)
        os.chown(parent, 65534, -1)  # but a sticky directory's owner can
        cp = sbx("run", "--bundle", b, sbx.new_id())
        assert cp.returncode != 0, describe(cp)
        assert "may be changed by others than root" in cp.stderr, describe(cp)
    finally:
        os.chown(parent, 0, -1)
        os.chmod(parent, mode)
    assert under(mount_points(), b.rootfs) == []


def test_host_root_as_rootfs_refused(sbx, bundle):
    """root.path "/" without a mount namespace would bind the host's root
    onto itself and build on the host's own tree: refused by name."""
    b = bundle()
    no_mount_ns(b)
    b.config["root"]["path"] = "/"
    b.write()
    before = mount_points()
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode != 0, describe(cp)
    assert "is the root of the mount namespace" in cp.stderr, describe(cp)
    assert mount_points() == before


def test_a_mount_that_is_not_ours_is_left_alone(sbx, bundle):
    """The mount on the rootfs is not the recorded one: delete says so and
    unmounts nothing."""
    b = bundle()
    no_mount_ns(b)
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    _edit_host_root(sbx, cid, mountId=1)
    cp = sbx.ok("delete", "--force", cid)
    assert "is not the container's rootfs bind: left alone" in cp.stderr, describe(cp)
    left = under(mount_points(), b.rootfs)
    assert str(b.rootfs) in left and str(b.rootfs) + "/proc" in left, left
    subprocess.run(["umount", "-l", b.rootfs], check=True)


def test_delete_from_another_mount_namespace_keeps_the_state(sbx, bundle):
    """delete run from another mount namespace cannot reach the bind: it
    fails naming why and keeps the state, so a delete from the right one
    removes the mounts (they are not dropped as someone else's)."""
    b = bundle()
    no_mount_ns(b)
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    cp = run_cmd(["unshare", "-m", "--propagation", "private", *sbx.argv("delete", "--force", cid)])
    assert cp.returncode != 0, describe(cp)
    assert "another mount namespace than this runtime's" in cp.stderr, describe(cp)
    assert cid in sbx.list_ids()
    sbx.ok("delete", "--force", cid)
    assert cid not in sbx.list_ids()
    assert under(mount_points(), b.rootfs) == []
