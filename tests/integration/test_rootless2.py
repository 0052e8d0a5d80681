"""Rootless, part 2 (issue 15): cgroup v1 subtrees delegated to the
unprivileged test user on a v1/hybrid host, and rootless networking beyond
loopback through slirp4netns.  The test user and its helpers come from
test_rootless.py."""

import json
import os
import shutil
import socket
import threading

import pytest

from conftest import describe, run_cmd
from test_rootless import _cg, _pid_alive, rootless_podman, rootless_user  # noqa: F401 (fixtures)

pytestmark = pytest.mark.needs_root

V1_ROOT = "/sys/fs/cgroup"
# what an administrator would delegate: the hierarchies of the limits
V1_DELEGATED = ("memory", "pids", "cpu")


def _v1_mount(ctrl):
    """The mount point of the v1 hierarchy carrying CTRL, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fstype, _, opts = post.split()[:3]
            if fstype == "cgroup" and ctrl in opts.split(","):
                return pre.split()[4], pre.split()[3]
    return None


@pytest.fixture
def v1_delegated(rootless_user, cgroup_parent):
    """The per-test cgroup (below the test's own cgroup, see conftest's
    CgroupParent) made in the memory, pids and cpu hierarchies and chowned
    to the test user, files included, as an administrator delegates a v1
    subtree.  {controller: directory}; cgroup_parent removes it all."""
    u = rootless_user
    dirs = {}
    for ctrl in V1_DELEGATED:
        m = _v1_mount(ctrl)
        if m is None:
            pytest.skip(f"no cgroup v1 {ctrl} hierarchy (a v1/hybrid host runs this)")
        mp, root = m
        base = cgroup_parent.base
        assert root == "/" or base.startswith(root.rstrip("/") + "/"), (mp, root, base)
        d = mp + base[len(root.rstrip("/")):]
        os.makedirs(d)
        for n in [""] + os.listdir(d):
            os.chown(os.path.join(d, n), u.uid, u.gid)
        dirs[ctrl] = d
    yield dirs


def test_rootless_v1_delegated_limits(rootless_user, v1_delegated, cgroup_parent):
    """The user's container gets cgroups in the delegated hierarchies:
    memory and pids limits applied and seen from inside, a fork bomb held
    at pids.limit, update working, pause refused naming the freezer that
    was not delegated, one warning naming the hierarchies left out, and
    delete removing the cgroups."""
    u = rootless_user
    path = cgroup_parent.path("ctr")

    def edit(c):
        c["linux"]["cgroupsPath"] = path
        c["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 16}}

    b = u.bundle(["sleep", "600"], edit)
    cp = u.run("run", "-d", "v1deleg", cwd=b)
    assert cp.returncode == 0, describe(cp)
    cg = {k: os.path.join(d, "ctr") for k, d in v1_delegated.items()}
    try:
        assert "no writable cgroup" not in cp.stderr, describe(cp)
        warnings = [ln for ln in cp.stderr.splitlines() if "rootless" in ln]
        assert len(warnings) == 1 and "freezer" in warnings[0] and "memory" not in warnings[0], describe(cp)
        pid = json.loads(u.run("state", "v1deleg").stdout)["pid"]
        for d in cg.values():
            assert str(pid) in _cg(d, "cgroup.procs").split(), d
        assert _cg(cg["memory"], "memory.limit_in_bytes").strip() == str(64 << 20)
        assert _cg(cg["pids"], "pids.max").strip() == "16"
        # from inside: the cgroup namespace is rooted at the container's
        # cgroup, whose memory and pids files the container's mount shows
        cp = u.run("exec", "v1deleg", "sh", "-c",
                   "cat /proc/self/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                   "/sys/fs/cgroup/pids/pids.max")
        assert cp.returncode == 0, describe(cp)
        inside = cp.stdout.split()
        assert f"{64 << 20}" in inside and "16" in inside, describe(cp)
        assert any(ln.endswith(":memory:/") for ln in inside), describe(cp)
        # a fork bomb: held at the limit, the init unharmed
        cp = u.run("exec", "v1deleg", "sh", "-c", "for i in $(seq 64); do sleep 120 & done; echo done")
        assert int(_cg(cg["pids"], "pids.current")) <= 16
        events = dict(line.split() for line in _cg(cg["pids"], "pids.events").splitlines())
        assert int(events["max"]) > 0, events
        assert _pid_alive(pid)
        cp = u.run("update", "--pids-limit", "32", "v1deleg")
        assert cp.returncode == 0, describe(cp)
        assert _cg(cg["pids"], "pids.max").strip() == "32"
        cp = u.run("pause", "v1deleg")
        assert cp.returncode != 0, describe(cp)
        assert "freezer hierarchy" in cp.stderr and "not delegated" in cp.stderr, describe(cp)
        cp = u.run("update", "--blkio-weight", "500", "v1deleg")
        assert cp.returncode != 0 and "blkio hierarchy" in cp.stderr, describe(cp)
        cp = u.run("delete", "--force", "v1deleg")
        assert cp.returncode == 0, describe(cp)
    finally:
        u.run("delete", "--force", "v1deleg")
    for d in cg.values():
        assert not os.path.exists(d), d
    assert not _pid_alive(pid)
    assert u.state_entries() == []


def test_rootless_v1_delegated_memory_limit_enforced(rootless_user, v1_delegated, cgroup_parent):
    """The memory limit holds: 48 MiB of tmpfs-backed memory do not fit
    under a 16 MiB limit; without the limit they do."""
    u = rootless_user
    # tmpfs pages are charged to the writer: under the limit the write
    # fails (ENOMEM) or dd is killed, short of 48 MiB
    hog = "dd if=/dev/zero of=/dev/shm/fill bs=1M count=48 2>/dev/null; echo size=$(wc -c < /dev/shm/fill)"
    results = {}
    for name, limit in (("nolimit", None), ("limit", 16 << 20)):
        def edit(c, limit=limit, name=name):
            c["linux"]["cgroupsPath"] = cgroup_parent.path(name)
            c["linux"]["resources"] = {"pids": {"limit": 64}}
            if limit:
                c["linux"]["resources"]["memory"] = {"limit": limit, "swap": limit}
            for m in c["mounts"]:
                if m["destination"] == "/dev/shm":
                    m["options"] = [o for o in m["options"] if not o.startswith("size=")] + ["size=128m"]

        b = u.bundle(["sh", "-c", hog], edit)
        results[name] = u.run("run", f"v1mem-{name}", cwd=b)
        u.run("delete", "--force", f"v1mem-{name}")
    def size(cp):
        return int(cp.stdout.split("size=")[1].split()[0])

    assert results["nolimit"].returncode == 0 and size(results["nolimit"]) == 48 << 20, \
        describe(results["nolimit"])
    assert size(results["limit"]) <= 16 << 20, describe(results["limit"])
    assert u.state_entries() == []


def test_rootless_v1_limit_in_undelegated_hierarchy_refused(rootless_user, v1_delegated, cgroup_parent):
    """A limit whose hierarchy was not delegated (blkio) is refused at
    create, naming the hierarchy; nothing is left."""
    u = rootless_user

    def edit(c):
        c["linux"]["cgroupsPath"] = cgroup_parent.path("ctr")
        c["linux"]["resources"] = {"pids": {"limit": 16}, "blockIO": {"weight": 500}}

    b = u.bundle(["true"], edit)
    cp = u.run("run", "v1refused", cwd=b)
    assert cp.returncode != 0, describe(cp)
    assert "blkio hierarchy" in cp.stderr and "not delegated" in cp.stderr, describe(cp)
    for d in v1_delegated.values():
        assert not os.path.exists(os.path.join(d, "ctr")), d
    assert u.state_entries() == []


def test_rootless_v1_default_place_in_delegated(rootless_user, v1_delegated):
    """No cgroupsPath, the user's shell inside its delegated cgroups: the
    container's cgroup is <own>/sbxrun/<id> in those hierarchies."""
    u = rootless_user
    b = u.bundle(["sleep", "600"], lambda c: c["linux"].update(resources={"pids": {"limit": 8}}))
    enter = " && ".join(f'echo $$ > {d}/cgroup.procs' for d in v1_delegated.values())
    # the user moves itself (v1: write access to the target and its own uid)
    argv = ["runuser", "-u", "sbxtest", "--", "sh", "-c", f'{enter} && exec "$@"', "sh",
            "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"XDG_RUNTIME_DIR={u.xdg}", u.sbxrun,
            "run", "-d", "v1default"]
    cp = run_cmd(argv, cwd=b)
    assert cp.returncode == 0, describe(cp)
    try:
        pid = json.loads(u.run("state", "v1default").stdout)["pid"]
        d = os.path.join(v1_delegated["pids"], "sbxrun", "v1default")
        assert str(pid) in _cg(d, "cgroup.procs").split()
        assert _cg(d, "pids.max").strip() == "8"
        cp = u.run("delete", "--force", "v1default")
        assert cp.returncode == 0, describe(cp)
        assert not os.path.exists(d)
        assert not os.path.exists(os.path.dirname(d))
    finally:
        u.run("delete", "--force", "v1default")
    assert u.state_entries() == []


@pytest.fixture
def loopback_servers():
    """Two TCP servers on the host's 127.0.0.1 (ephemeral ports), each
    answering every connection with its own token.  [(port, token)]."""
    socks, out = [], []
    stop = threading.Event()

    def serve(s, token):
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = s.accept()
            except OSError:
                continue
            with c:
                c.sendall(token.encode() + b"\n")

    threads = []
    for i in (1, 2):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        socks.append(s)
        token = f"token-{i}-{os.getpid()}"
        out.append((s.getsockname()[1], token))
        t = threading.Thread(target=serve, args=(s, token), daemon=True)
        t.start()
        threads.append(t)
    try:
        yield out
    finally:
        stop.set()
        for t in threads:
            t.join(2)
        for s in socks:
            s.close()


SLIRP_PROBE = """
for p in {p1} {p2}; do
  out=$(nc -w 5 10.0.2.2 $p </dev/null 2>&1); echo "port=$p rc=$? out=$out"
done
"""


def test_rootless_podman_slirp4netns_allowlist(rootless_podman, loopback_servers):
    """Rootless podman with slirp4netns reaches the host's loopback as
    10.0.2.2 (allow_host_loopback=true): without the annotation both
    servers answer; with org.sbxrun.net.allow=10.0.2.2:PORT1 the first
    answers and the second is refused."""
    if shutil.which("slirp4netns") is None:
        pytest.skip("slirp4netns not installed (contrib/sbxrun-setup.sh installs it)")
    pm = rootless_podman
    (p1, t1), (p2, t2) = loopback_servers
    probe = SLIRP_PROBE.format(p1=p1, p2=p2)
    net = ["--network", "slirp4netns:allow_host_loopback=true"]
    cp = pm("run", "--rm", *net, "localhost/sbxtest-bb", "sh", "-c", probe)
    assert f"out={t1}" in cp.stdout and f"out={t2}" in cp.stdout, cp.stdout + cp.stderr
    cp = pm("run", "--rm", *net, "--annotation", f"org.sbxrun.net.allow=10.0.2.2:{p1}",
            "localhost/sbxtest-bb", "sh", "-c", probe)
    lines = dict(ln.split(" ", 1) for ln in cp.stdout.splitlines() if ln.startswith("port="))
    assert lines[f"port={p1}"] == f"rc=0 out={t1}", cp.stdout + cp.stderr
    assert t2 not in lines[f"port={p2}"] and "rc=0" not in lines[f"port={p2}"], cp.stdout + cp.stderr
    assert "refused" in lines[f"port={p2}"], cp.stdout + cp.stderr  # at once, not a timeout
