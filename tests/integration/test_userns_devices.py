"""Device nodes of a container with a user namespace (issue 13): made by
the runtime on a private tmpfs in the initial user namespace (mknod is
refused inside one, and a devtmpfs cannot be idmapped), owned by the host
ids that the container's configured owner maps to, and bound into the
container's /dev nosuid,noexec.  The host's own nodes are never changed,
and nothing of it is ever mounted on the host."""

import ctypes
import json
import os
import stat
import subprocess

import pytest

from conftest import describe, wait_for
from test_cgroups import free_char_major

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]

MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def _kernel_copies_detached_mounts():
    """Whether open_tree(OPEN_TREE_CLONE) may copy a node of a detached
    tmpfs (fsmount, never attached): what the runtime needs to make the
    nodes (not before Linux 6.15; the runtime then binds the host's)."""
    libc = ctypes.CDLL(None, use_errno=True)
    sysc = libc.syscall
    sysc.restype = ctypes.c_long
    fs = sysc(430, b"tmpfs", 1)  # fsopen, FSOPEN_CLOEXEC
    if fs < 0:
        return False
    try:
        if sysc(431, fs, 6, None, None, 0) < 0:  # fsconfig FSCONFIG_CMD_CREATE
            return False
        mnt = sysc(432, fs, 1, 0)  # fsmount
        if mnt < 0:
            return False
        try:
            os.mknod("f", 0o600 | stat.S_IFREG, dir_fd=mnt)
            tree = sysc(428, mnt, b"f", 1 | os.O_CLOEXEC)  # open_tree OPEN_TREE_CLONE
            if tree < 0:
                return False
            os.close(tree)
            return True
        finally:
            os.close(mnt)
    finally:
        os.close(fs)


MADE = _kernel_copies_detached_mounts()
made_nodes = pytest.mark.skipif(not MADE, reason="this kernel cannot copy a node of a detached mount (before "
                                                 "6.15): the host's nodes are bound (test_host_nodes_bound_on_"
                                                 "older_kernels)")
HOST_NODES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")


def _userns(b, devices=None):
    with b.edit() as c:
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = MAP
        c["linux"]["gidMappings"] = MAP
        if devices is not None:
            c["linux"]["devices"] = devices
    return b


def _host_nodes():
    out = {}
    for p in HOST_NODES:
        st = os.stat(p)
        out[p] = (st.st_uid, st.st_gid, st.st_mode, st.st_rdev)
    return out


def _mount_devs(text):
    """mountinfo text -> {mount point: (st_dev "M:m", root, per-mount options, fstype)}"""
    out = {}
    for ln in text.splitlines():
        f = ln.split()
        sep = f.index("-")
        out[f[4]] = (f[2], f[3], f[5].split(","), f[sep + 1])
    return out


@made_nodes
def test_default_devices_owned_by_container_root(sbx, public_bundle):
    """stat of the default devices shows 0:0 inside (before: the host's
    root, unmapped, so 65534:65534), they work, and the host's nodes keep
    their owner and mode."""
    before = _host_nodes()
    b = _userns(public_bundle(["sh", "-c", "stat -c '%n %u:%g %a %t:%T' /dev/null /dev/zero /dev/full "
                                           "/dev/random /dev/urandom /dev/tty; "
                                           "echo x > /dev/null && head -c 3 /dev/zero | wc -c"]))
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    lines = cp.stdout.splitlines()
    want = {"/dev/null": "1:3", "/dev/zero": "1:5", "/dev/full": "1:7", "/dev/random": "1:8",
            "/dev/urandom": "1:9", "/dev/tty": "5:0"}
    got = {ln.split()[0]: ln.split()[1:] for ln in lines[:-1]}
    for path, rdev in want.items():
        assert got[path] == ["0:0", "666", rdev], describe(cp)
    assert lines[-1].strip() == "3", describe(cp)
    assert _host_nodes() == before


MYZERO = {"path": "/dev/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600, "uid": 1000, "gid": 5}


def _run_as(sbx, public_bundle, user, script):
    b = _userns(public_bundle(["sh", "-c", script]), [MYZERO])
    with b.edit() as c:
        c["process"]["user"] = user
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    return cp


@made_nodes
def test_configured_owner_and_mode(sbx, public_bundle):
    """A linux.devices entry with uid 1000, gid 5 and mode 0600 is 1000:5
    inside and can be opened by that user."""
    cp = _run_as(sbx, public_bundle, {"uid": 1000, "gid": 5},
                 "stat -c '%u:%g %a' /dev/myzero; head -c 4 /dev/myzero | od -An -tx1; "
                 "grep ' /dev/myzero ' /proc/self/mountinfo")
    lines = cp.stdout.splitlines()
    assert lines[0] == "1000:5 600", describe(cp)
    assert lines[1].split() == ["00"] * 4, describe(cp)
    opts = lines[2].split()[5].split(",")
    assert "nosuid" in opts and "noexec" in opts and "nodev" not in opts, lines[2]


@made_nodes
def test_configured_owner_other_user_denied(sbx, public_bundle):
    """The owner is enforced: mode 0600 of uid 1000, another user (1001)
    cannot open it."""
    cp = _run_as(sbx, public_bundle, {"uid": 1001, "gid": 1001}, "head -c 1 /dev/myzero; echo rc=$?")
    assert "Permission denied" in cp.stderr + cp.stdout and "rc=1" in cp.stdout, describe(cp)


@pytest.mark.skipif(MADE, reason="this kernel lets the runtime make the nodes")
def test_host_nodes_bound_on_older_kernels(sbx, public_bundle):
    """Where the runtime cannot make the nodes, the host's are bound as
    before: their owner is the host's (root, unmapped: 65534), they work,
    and each bind is nosuid,noexec (set on the copy before it is attached)."""
    b = _userns(public_bundle(["sh", "-c", "stat -c %u:%g /dev/null; head -c 3 /dev/zero | wc -c; "
                                           "grep -E ' /dev/(null|zero|tty) ' /proc/self/mountinfo"]))
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    lines = cp.stdout.splitlines()
    assert lines[:2] == ["65534:65534", "3"], describe(cp)
    assert len(lines[2:]) == 3, describe(cp)
    for ln in lines[2:]:
        opts = ln.split()[5].split(",")
        assert "nosuid" in opts and "noexec" in opts, ln


@pytest.mark.parametrize("field", ["uid", "gid"])
def test_unmapped_owner_refused(sbx, public_bundle, field):
    b = _userns(public_bundle(["true"]),
                [{"path": "/dev/myzero", "type": "c", "major": 1, "minor": 5, field: 70000}])
    cid = sbx.new_id()
    mounts = open("/proc/self/mountinfo").read()
    cp = sbx.fail("create", "--bundle", b, cid)
    assert f"linux.devices[0].{field} 70000 is not mapped" in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()
    assert not (sbx.root / cid).exists()
    assert open("/proc/self/mountinfo").read().count("tmpfs") <= mounts.count("tmpfs")


@made_nodes
def test_nothing_on_the_host(sbx, public_bundle):
    """The nodes' tmpfs is never mounted on the host: while the container
    runs, no host mount has its superblock, and after delete neither; the
    host's nodes are unchanged."""
    before = _host_nodes()
    b = _userns(public_bundle(["sleep", "1000"]),
                [{"path": "/dev/myzero", "type": "c", "major": 1, "minor": 5, "uid": 1000, "gid": 5}])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    inside = _mount_devs(open(f"/proc/{pid}/mountinfo").read())
    dev, root, _, fstype = inside["/dev/myzero"]
    assert fstype == "tmpfs", inside["/dev/myzero"]
    # every node bound from the same private tmpfs
    assert all(inside[p][0] == dev for p in HOST_NODES), inside
    host = _mount_devs(open("/proc/self/mountinfo").read())
    assert all(v[0] != dev for v in host.values()), dev
    assert os.stat(b.rootfs / "dev").st_dev != int(dev.split(":")[0]) << 8  # nothing on the rootfs itself
    sbx.ok("delete", "--force", cid)
    host = _mount_devs(open("/proc/self/mountinfo").read())
    assert all(v[0] != dev for v in host.values()), dev
    assert _host_nodes() == before


@made_nodes
def test_device_cgroup_still_governs(sbx, public_bundle):
    """The nodes are usable devices (the tmpfs is not nodev), so the device
    cgroup is what decides: of two nodes of a major no driver has, the
    allowed one gets through to the (absent) driver, the other is refused."""
    major = free_char_major()
    b = _userns(public_bundle(["sh", "-c", "echo denied: $(head -c 1 /dev/denied 2>&1); "
                                           "echo allowed: $(head -c 1 /dev/allowed 2>&1)"]),
                [{"path": "/dev/denied", "type": "c", "major": major, "minor": 0},
                 {"path": "/dev/allowed", "type": "c", "major": major, "minor": 1}])
    with b.edit() as c:
        c["linux"]["resources"] = {"devices": [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": major, "minor": 1, "access": "rwm"}]}
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    lines = dict(ln.split(":", 1) for ln in cp.stdout.splitlines())
    assert "Operation not permitted" in lines["denied"], describe(cp)
    assert "No such device" in lines["allowed"], describe(cp)


def test_maps_recorded_for_exec(sbx, public_bundle):
    """create records the user namespace's maps; exec gives its pipes to
    process.user.uid through them: uid 1000 can reopen its stdout."""
    b = _userns(public_bundle(["sleep", "1000"]))
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    st = json.loads((sbx.root / cid / "status.json").read_text())
    assert st["uidMap"].split() == ["0", "100000", "65536"], st
    assert st["gidMap"].split() == ["0", "100000", "65536"], st
    # pipes (run_cmd's files are the caller's, never given away)
    cp = sbx("exec", "--user", "1000:1000", cid, "sh", "-c", "echo reopened > /proc/self/fd/1; "
                                                             "stat -L -c %u /proc/self/fd/1",
             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert cp.returncode == 0, describe(cp)
    assert cp.stdout.splitlines() == ["reopened", "1000"], describe(cp)


def test_exec_stdio_ignores_a_changed_namespace(sbx, public_bundle):
    """The container may move its init into a user namespace of its own
    with a map it wrote (here 0 -> its uid 1000): exec's pipes still go to
    the host uid that the config maps process.user.uid to (100000), as
    recorded at create, not to what the container's map says (101000)."""
    b = _userns(public_bundle(["sh", "-c", "(sleep 0.3; echo '0 1000 1' > /proc/1/uid_map; "
                                           "echo '0 1000 1' > /proc/1/gid_map) & exec unshare -U sleep 1000"]))
    with b.edit() as c:
        c["linux"].pop("seccomp", None)  # the default profile refuses unshare(CLONE_NEWUSER)
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    wait_for(lambda: open(f"/proc/{pid}/uid_map").read().split() == ["0", "101000", "1"])
    r, w = os.pipe()
    try:
        cp = sbx("exec", "--user", "0:0", cid, "true", stdout=w, stderr=subprocess.PIPE)
        os.close(w)
        w = -1
        assert cp.returncode == 0, describe(cp)
        assert os.fstat(r).st_uid == 100000
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
