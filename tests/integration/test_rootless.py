"""sbxrun run by an unprivileged user (issue 15): a dedicated test user runs
the `sbxrun spec --rootless` config, with its own state root under
XDG_RUNTIME_DIR, uid/gid maps written directly (its own id) or by
newuidmap/newgidmap (its /etc/subuid range), and no cgroup (none is
delegated on the test hosts)."""

import contextlib
import json
import os
import pwd
import shutil
import stat
import tempfile

import pytest

from conftest import SBXRUN, describe, run_cmd, wait_for

USER = "sbxtest"
pytestmark = pytest.mark.needs_root


def _subid_range(path, user):
    with contextlib.suppress(OSError):
        with open(path) as f:
            for line in f:
                name, _, rest = line.strip().partition(":")
                if name == user and rest:
                    start, count = rest.split(":")
                    return int(start), int(count)
    return None


class RootlessUser:
    """The test user: its ids, subordinate ranges, runtime dir, a private
    copy of the binary and a tmp dir it owns."""

    def __init__(self, top, busybox_rootfs):
        pw = pwd.getpwnam(USER)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.subuid = _subid_range("/etc/subuid", USER)
        self.subgid = _subid_range("/etc/subgid", USER)
        self.top = top
        self.xdg = f"/run/user/{self.uid}"
        self.state_root = os.path.join(self.xdg, "sbxrun")
        # /work may not be readable by the user: its own copy of the binary
        self.sbxrun = os.path.join(top, "sbxrun")
        shutil.copy2(SBXRUN, self.sbxrun)
        os.chmod(self.sbxrun, 0o755)
        self.rootfs_src = busybox_rootfs
        self.n = 0

    def run(self, *args, cwd=None, env=None, cgroup=None):
        """sbxrun ARGS as the user; with CGROUP (a directory of the unified
        hierarchy), from a process put there first, as a login in a
        delegated user session is."""
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "XDG_RUNTIME_DIR": self.xdg}
        e.update(env or {})
        argv = ["runuser", "-u", USER, "--", "env", "-i", *[f"{k}={v}" for k, v in e.items()],
                self.sbxrun, *args]
        if cgroup:
            argv = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, *argv]
        return run_cmd(argv, cwd=cwd or self.top)

    def bundle(self, args, edit=None):
        """A bundle owned by the user from its own `sbxrun spec --rootless`."""
        self.n += 1
        path = os.path.join(self.top, f"bundle{self.n}")
        os.mkdir(path)
        os.chown(path, self.uid, self.gid)
        cp = self.run("spec", "--rootless", "--bundle", path)
        assert cp.returncode == 0, describe(cp)
        with open(os.path.join(path, "config.json")) as f:
            c = json.load(f)
        c["process"]["terminal"] = False
        c["process"]["args"] = list(args)
        c["root"]["readonly"] = False
        if edit:
            edit(c)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(c, f)
        rootfs = os.path.join(path, c["root"]["path"])
        shutil.copytree(self.rootfs_src, rootfs, symlinks=True)
        for d, dirs, files in os.walk(rootfs):
            for n in [d] + [os.path.join(d, x) for x in dirs + files]:
                os.lchown(n, self.uid, self.gid)
        return path

    def state_entries(self):
        with contextlib.suppress(FileNotFoundError):
            return sorted(n for n in os.listdir(self.state_root) if not n.startswith("."))
        return []


@pytest.fixture(scope="module")
def rootless_user(busybox_rootfs):
    if not shutil.which("runuser"):
        pytest.skip("runuser (util-linux) is missing")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        # the group may exist already (a user removed without its group)
        group = ["-g", USER] if run_cmd(["getent", "group", USER]).returncode == 0 else ["-U"]
        cp = run_cmd(["useradd", "-m", *group, USER])
        assert cp.returncode == 0, describe(cp)
    uid = pwd.getpwnam(USER).pw_uid
    for f in ("/etc/subuid", "/etc/subgid"):
        if _subid_range(f, USER) is None:
            with open(f, "a") as fh:
                fh.write(f"{USER}:{300000}:65536\n")
    if run_cmd(["runuser", "-u", USER, "--", "unshare", "-U", "true"]).returncode != 0:
        pytest.skip("unprivileged user namespaces are disabled on this host "
                    "(kernel.unprivileged_userns_clone or user.max_user_namespaces)")
    xdg = f"/run/user/{uid}"
    made_xdg = False
    if not os.path.isdir(xdg):
        os.makedirs(xdg, mode=0o700)
        os.chown(xdg, uid, pwd.getpwnam(USER).pw_gid)
        made_xdg = True
    top = tempfile.mkdtemp(prefix=f"sbxrun-rootless-{os.getpid()}-")
    os.chmod(top, 0o755)
    try:
        yield RootlessUser(top, busybox_rootfs)
    finally:
        shutil.rmtree(top, ignore_errors=True)
        if made_xdg:
            shutil.rmtree(xdg, ignore_errors=True)
        else:
            shutil.rmtree(os.path.join(xdg, "sbxrun"), ignore_errors=True)


def _maps(text):
    return [tuple(int(x) for x in line.split()) for line in text.strip().splitlines()]


def test_rootless_run_own_id(rootless_user):
    """The caller alone mapped to root, maps written without helpers, a file
    written inside owned by the caller on the host, the exit status passed
    through, and the private state root left empty."""
    u = rootless_user
    b = u.bundle(["sh", "-c", "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; "
                  "id -u; id -g; cat /proc/self/setgroups; echo hi > /owned; exit 7"])
    cp = u.run("run", "own-id", cwd=b)
    assert cp.returncode == 7, describe(cp)
    uid_map, gid_map, rest = cp.stdout.split("--\n")
    assert _maps(uid_map) == [(0, u.uid, 1)]
    assert _maps(gid_map) == [(0, u.gid, 1)]
    assert rest.split() == ["0", "0", "deny"]
    st = os.stat(os.path.join(b, "rootfs", "owned"))
    assert (st.st_uid, st.st_gid) == (u.uid, u.gid)
    # no cgroup is delegated here: said once, as a warning naming the limits
    assert cp.stderr.count("warning: rootless: no writable cgroup") == 1, describe(cp)
    assert "memory, cpu, pids" in cp.stderr
    st = os.stat(u.state_root)
    assert st.st_uid == u.uid and stat.S_IMODE(st.st_mode) == 0o700
    assert u.state_entries() == []


def test_rootless_subid_ranges(rootless_user):
    """Ranges beyond the caller's id go through newuidmap/newgidmap: ids
    inside map to the user's /etc/subuid range on the host."""
    u = rootless_user
    if not (shutil.which("newuidmap") and shutil.which("newgidmap")):
        pytest.skip("newuidmap/newgidmap missing: apt-get install uidmap")
    (us, un), (gs, gn) = u.subuid, u.subgid

    def edit(c):
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": u.uid, "size": 1},
                                     {"containerID": 1, "hostID": us, "size": un}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": u.gid, "size": 1},
                                     {"containerID": 1, "hostID": gs, "size": gn}]

    b = u.bundle(["sh", "-c", "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; "
                  "echo x > /f; chown 1000:1000 /f"], edit)
    cp = u.run("run", "ranges", cwd=b)
    assert cp.returncode == 0, describe(cp)
    uid_map, gid_map = cp.stdout.split("--\n")
    assert _maps(uid_map) == [(0, u.uid, 1), (1, us, un)]
    assert _maps(gid_map) == [(0, u.gid, 1), (1, gs, gn)]
    st = os.stat(os.path.join(b, "rootfs", "f"))
    assert (st.st_uid, st.st_gid) == (us + 999, gs + 999)
    assert u.state_entries() == []


def test_rootless_range_not_granted(rootless_user):
    """A range outside /etc/subuid: newuidmap refuses, the error names the
    field, nothing is left."""
    u = rootless_user
    if not shutil.which("newuidmap"):
        pytest.skip("newuidmap missing: apt-get install uidmap")

    def edit(c):
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 4000000, "size": 10}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": u.gid, "size": 1}]

    b = u.bundle(["true"], edit)
    cp = u.run("run", "not-granted", cwd=b)
    assert cp.returncode != 0, describe(cp)
    assert "linux.uidMappings" in cp.stderr and "newuidmap" in cp.stderr, describe(cp)
    assert u.state_entries() == []


def test_rootless_limits_refused(rootless_user):
    """linux.resources limits without a writable cgroup: refused by name (as
    runc does), not silently dropped; nothing left."""
    u = rootless_user

    def edit(c):
        c["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 64}}

    b = u.bundle(["true"], edit)
    cp = u.run("run", "limits", cwd=b)
    assert cp.returncode != 0, describe(cp)
    assert "linux.resources: memory, pids requested" in cp.stderr, describe(cp)
    assert u.state_entries() == []


def test_rootless_mounts_without_mount_namespace_refused(rootless_user):
    """An unprivileged caller may not mount in the namespace it is in: the
    default mounts without a mount namespace are refused by name."""
    u = rootless_user

    def edit(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "mount"]

    b = u.bundle(["true"], edit)
    cp = u.run("run", "nomntns", cwd=b)
    assert cp.returncode != 0, describe(cp)
    assert "need a new mount namespace in linux.namespaces when the caller is unprivileged" in cp.stderr, \
        describe(cp)
    assert u.state_entries() == []


def test_rootless_flag_values(rootless_user):
    u = rootless_user
    cp = u.run("--rootless=bogus", "list")
    assert cp.returncode != 0 and "--rootless `bogus`" in cp.stderr, describe(cp)
    for v in ("auto", "true", "false"):
        cp = u.run(f"--rootless={v}", "list")
        assert cp.returncode == 0, describe(cp)


def test_rootless_forced_off_fails_clearly(rootless_user):
    """--rootless=false as a user: sbxrun assumes privileges it does not
    have, and the cgroup error says so (no silent fallback)."""
    u = rootless_user
    b = u.bundle(["true"])
    cp = u.run("--rootless=false", "run", "forced", cwd=b)
    assert cp.returncode != 0, describe(cp)
    assert "cgroup" in cp.stderr and "Permission denied" in cp.stderr, describe(cp)
    assert u.state_entries() == []


def _pid_alive(pid):
    """Running, not a zombie left for whoever reaps orphans here."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_rootless_lifecycle(rootless_user):
    """create/start/state/list/exec/kill/delete as the user, without a
    cgroup: the container runs as the user on the host, exec joins it,
    pause/resume/update are refused naming what is not permitted, and
    delete leaves nothing (no process, no state)."""
    u = rootless_user
    b = u.bundle(["sleep", "600"])
    cp = u.run("create", "life", cwd=b)
    assert cp.returncode == 0, describe(cp)
    try:
        cp = u.run("state", "life")
        assert cp.returncode == 0, describe(cp)
        st = json.loads(cp.stdout)
        assert st["status"] == "created" and st["owner"] == USER, st
        pid = st["pid"]
        cp = u.run("start", "life")
        assert cp.returncode == 0, describe(cp)
        assert json.loads(u.run("state", "life").stdout)["status"] == "running"
        with open(f"/proc/{pid}/status") as f:
            uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        assert uids == [str(u.uid)] * 4, uids
        cp = u.run("list", "--format", "json")
        assert cp.returncode == 0, describe(cp)
        assert [(x["id"], x["status"]) for x in json.loads(cp.stdout)] == [("life", "running")]
        cp = u.run("exec", "life", "sh", "-c", "id -u; cat /proc/1/cmdline | tr '\\0' ' '; exit 5")
        assert cp.returncode == 5, describe(cp)
        assert cp.stdout.split("\n", 1) == ["0", "sleep 600 "], describe(cp)
        cp = u.run("ps", "--format", "json", "life")
        assert cp.returncode == 0 and json.loads(cp.stdout) == [pid], describe(cp)
        # no cgroup: ps and kill --all find the rest through the pid namespace
        cp = u.run("exec", "-d", "--pid-file", os.path.join(b, "exec.pid"), "life", "sleep", "600")
        assert cp.returncode == 0, describe(cp)
        with open(os.path.join(b, "exec.pid")) as f:
            epid = int(f.read())
        cp = u.run("ps", "--format", "json", "life")
        assert cp.returncode == 0 and sorted(json.loads(cp.stdout)) == sorted([pid, epid]), describe(cp)
        cp = u.run("kill", "--all", "life", "TERM")  # the init ignores TERM (pid 1, no handler)
        assert cp.returncode == 0, describe(cp)
        wait_for(lambda: not _pid_alive(epid), what="the exec'd process to get the signal")
        assert _pid_alive(pid)
        for args, what in ((["pause", "life"], "pause"), (["resume", "life"], "resume"),
                           (["update", "--pids-limit", "10", "life"], "update")):
            cp = u.run(*args)
            if what == "resume":  # refused for being running first, as for root
                assert cp.returncode != 0 and "not paused" in cp.stderr, describe(cp)
                continue
            assert cp.returncode != 0, describe(cp)
            assert f'{what} container "life": not permitted without a cgroup' in cp.stderr, describe(cp)
            assert "unprivileged" in cp.stderr, describe(cp)
        assert json.loads(u.run("state", "life").stdout)["status"] == "running"
        cp = u.run("kill", "life", "KILL")
        assert cp.returncode == 0, describe(cp)
        wait_for(lambda: json.loads(u.run("state", "life").stdout)["status"] == "stopped",
                 what="the container to stop")
        cp = u.run("delete", "life")
        assert cp.returncode == 0, describe(cp)
    finally:
        u.run("delete", "--force", "life")
    assert not _pid_alive(pid)
    assert u.state_entries() == []
    cp = u.run("state", "life")
    assert cp.returncode != 0 and "life" in cp.stderr, describe(cp)


def test_rootless_delete_force_running(rootless_user):
    """delete --force of a running container with an exec'd process
    inside: both gone (the pid namespace goes with its init, no cgroup
    needed), nothing left."""
    u = rootless_user
    b = u.bundle(["sleep", "600"])
    cp = u.run("run", "-d", "forced-del", cwd=b)
    assert cp.returncode == 0, describe(cp)
    pid = json.loads(u.run("state", "forced-del").stdout)["pid"]
    cp = u.run("exec", "-d", "--pid-file", os.path.join(b, "exec.pid"), "forced-del", "sleep", "600")
    assert cp.returncode == 0, describe(cp)
    with open(os.path.join(b, "exec.pid")) as f:
        epid = int(f.read())
    cp = u.run("delete", "--force", "forced-del")
    assert cp.returncode == 0, describe(cp)
    wait_for(lambda: not _pid_alive(pid) and not _pid_alive(epid), what="the container's processes to end")
    assert u.state_entries() == []


EGRESS_SERVER = """
import socket, sys, threading
def serve(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        with c:
            c.sendall(b"tcp %d\\n" % port)
for p in (8001, 8002):
    threading.Thread(target=serve, args=(p,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""


@pytest.fixture
def server_netns(tmp_path):
    """A server network namespace (`ip netns add`) with TCP listeners on
    8001 and 8002 at 10.232.0.2, and the free end of a veth pair for the
    container: the connectivity a rootless engine's slirp4netns or pasta
    would give, here from the test (root)."""
    import subprocess
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs /usr/bin/python3 for the test server")
    tag = f"sbxt{os.getpid() % 10**7}"
    ns, veth = f"{tag}-rl-s", (f"{tag}ra", f"{tag}rb")
    proc = None
    try:
        for argv in (["netns", "add", ns], ["-n", ns, "link", "set", "lo", "up"],
                     ["link", "add", veth[0], "type", "veth", "peer", "name", veth[1], "netns", ns],
                     ["-n", ns, "addr", "add", "10.232.0.2/24", "dev", veth[1]],
                     ["-n", ns, "link", "set", veth[1], "up"]):
            cp = run_cmd(["ip", *argv])
            assert cp.returncode == 0, describe(cp)
        script = tmp_path / "server.py"
        script.write_text(EGRESS_SERVER)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", str(script)],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert proc.stdout.readline().strip() == "ready"
        yield ns, veth[0]
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        run_cmd(["ip", "link", "del", veth[0]])
        run_cmd(["ip", "netns", "del", ns])


def test_rootless_egress_allowlist(rootless_user, server_netns):
    """The egress allowlist for an unprivileged user (no peer runtime has
    it): the container's new network namespace is owned by its user
    namespace, the rules go in there, the allowed address:port connects
    and another port of the same host is refused at once; the container's
    root cannot remove them (no CAP_NET_ADMIN), and nothing is left."""
    u = rootless_user
    ns, dev = server_netns

    def edit(c):
        c["linux"]["namespaces"].append({"type": "network"})
        c["annotations"] = {"org.sbxrun.net.allow": "10.232.0.2:8001"}

    b = u.bundle(["sleep", "600"], edit)
    cp = u.run("run", "-d", "egress", cwd=b)
    assert cp.returncode == 0, describe(cp)
    try:
        pid = json.loads(u.run("state", "egress").stdout)["pid"]
        cp = run_cmd(["nsenter", "-t", pid, "-n", "nft", "list", "table", "inet", "sbxrun-egress"])
        assert cp.returncode == 0 and "10.232.0.2 . tcp . 8001" in cp.stdout, describe(cp)
        # the caller's part: the container end of the link, addressed
        for argv in (["link", "set", dev, "netns", str(pid)],):
            cp = run_cmd(["ip", *argv])
            assert cp.returncode == 0, describe(cp)
        for argv in (["addr", "add", "10.232.0.1/24", "dev", dev], ["link", "set", dev, "up"]):
            cp = run_cmd(["nsenter", "-t", pid, "-n", "ip", *argv])
            assert cp.returncode == 0, describe(cp)
        # the refused port is served: the refusal is the policy's
        cp = run_cmd(["ip", "netns", "exec", ns, "/bin/busybox", "nc", "-w", "3", "10.232.0.2", "8002"])
        assert cp.stdout == "tcp 8002\n", describe(cp)
        cp = u.run("exec", "egress", "sh", "-c",
                   "for p in 8001 8002; do nc -w 3 10.232.0.2 $p </dev/null; echo rc=$?; done 2>&1; "
                   "ip link set lo down; echo down=$?")
        assert cp.returncode == 0, describe(cp)
        lines = cp.stdout.splitlines()
        assert lines[:2] == ["tcp 8001", "rc=0"], describe(cp)
        assert "Connection refused" in lines[2] and lines[3] == "rc=1", describe(cp)
        assert lines[4] == "down=2", describe(cp)  # RTNETLINK: Operation not permitted
        cp = run_cmd(["nsenter", "-t", pid, "-n", "nft", "list", "table", "inet", "sbxrun-egress"])
        assert cp.returncode == 0, describe(cp)
        cp = u.run("delete", "--force", "egress")
        assert cp.returncode == 0, describe(cp)
    finally:
        u.run("delete", "--force", "egress")
    assert u.state_entries() == []


CG2 = "/sys/fs/cgroup"


@pytest.fixture
def delegated(rootless_user):
    """A cgroup v2 subtree delegated to the user as systemd delegates
    user@UID.service (cgroup-v2.rst, "Delegation"): the directory and its
    cgroup.procs, cgroup.subtree_control and cgroup.threads owned by the
    user, and a `shell` child, the user's session, where the runtime is
    started.  Only on a pure cgroup v2 host (tests/vm/run-v2.sh)."""
    if not os.path.exists(os.path.join(CG2, "cgroup.subtree_control")):
        pytest.skip("not a pure cgroup v2 host (tests/vm/run-v2.sh runs this)")
    u = rootless_user
    top = os.path.join(CG2, f"sbxtest-deleg-{os.getpid()}")
    os.mkdir(top)
    try:
        with open(os.path.join(CG2, "cgroup.subtree_control")) as f:
            assert {"pids", "memory"} <= set(f.read().split())
        for n in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
            os.chown(os.path.join(top, n), u.uid, u.gid)
        shell = os.path.join(top, "shell")
        os.mkdir(shell)
        for n in ("", "cgroup.procs"):
            os.chown(os.path.join(shell, n), u.uid, u.gid)
        yield top
    finally:
        for d in sorted((os.path.join(r, x) for r, ds, _ in os.walk(top) for x in ds), key=len, reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(d)
        os.rmdir(top)


def _cg(path, name):
    with open(os.path.join(path, name)) as f:
        return f.read()


def test_rootless_delegated_cgroup_limits(rootless_user, delegated):
    """With a delegated subtree the user's container gets a cgroup of its
    own there: limits applied (memory.max, pids.max), a fork bomb held at
    pids.limit, pause/resume working, and delete removing the cgroup."""
    u = rootless_user
    name = os.path.basename(delegated)

    def edit(c):
        c["linux"]["cgroupsPath"] = f"/{name}/ctr"
        c["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 16}}

    b = u.bundle(["sleep", "600"], edit)
    cg = os.path.join(delegated, "ctr")
    cp = u.run("run", "-d", "deleg", cwd=b, cgroup=os.path.join(delegated, "shell"))
    assert cp.returncode == 0, describe(cp)
    try:
        assert "no writable cgroup" not in cp.stderr, describe(cp)
        pid = json.loads(u.run("state", "deleg").stdout)["pid"]
        assert str(pid) in _cg(cg, "cgroup.procs").split()
        assert _cg(cg, "memory.max").strip() == str(64 << 20)
        assert _cg(cg, "pids.max").strip() == "16"
        # a fork bomb: held at the limit, the init unharmed
        cp = u.run("exec", "deleg", "sh", "-c", "for i in $(seq 64); do sleep 120 & done; echo done",
                   cgroup=os.path.join(delegated, "shell"))
        assert int(_cg(cg, "pids.current")) <= 16
        events = dict(line.split() for line in _cg(cg, "pids.events").splitlines())
        assert int(events["max"]) > 0, events
        assert _pid_alive(pid)
        for verb, frozen in (("pause", "1"), ("resume", "0")):
            cp = u.run(verb, "deleg")
            assert cp.returncode == 0, describe(cp)
            wait_for(lambda: f"frozen {frozen}" in _cg(cg, "cgroup.events"), what=f"frozen {frozen}")
        assert json.loads(u.run("state", "deleg").stdout)["status"] == "running"
        cp = u.run("update", "--pids-limit", "32", "deleg")
        assert cp.returncode == 0, describe(cp)
        assert _cg(cg, "pids.max").strip() == "32"
        cp = u.run("delete", "--force", "deleg")
        assert cp.returncode == 0, describe(cp)
    finally:
        u.run("delete", "--force", "deleg")
    assert not os.path.exists(cg)
    assert not _pid_alive(pid)
    assert u.state_entries() == []


def test_rootless_delegated_default_place(rootless_user, delegated):
    """No cgroupsPath: the container's cgroup goes below the caller's own
    (the delegated session), where pause works; limits there are refused
    by the "no internal processes" rule, naming the cgroup."""
    u = rootless_user
    shell = os.path.join(delegated, "shell")
    b = u.bundle(["sleep", "600"])
    cp = u.run("run", "-d", "deleg-default", cwd=b, cgroup=shell)
    assert cp.returncode == 0, describe(cp)
    try:
        assert "no writable cgroup" not in cp.stderr, describe(cp)
        cg = os.path.join(shell, "sbxrun", "deleg-default")
        pid = json.loads(u.run("state", "deleg-default").stdout)["pid"]
        assert str(pid) in _cg(cg, "cgroup.procs").split()
        cp = u.run("pause", "deleg-default")
        assert cp.returncode == 0, describe(cp)
        assert "frozen 1" in _cg(cg, "cgroup.events")
        cp = u.run("resume", "deleg-default")
        assert cp.returncode == 0, describe(cp)
        cp = u.run("delete", "--force", "deleg-default")
        assert cp.returncode == 0, describe(cp)
        assert not os.path.exists(cg)
    finally:
        u.run("delete", "--force", "deleg-default")
    assert u.state_entries() == []


LANDLOCK_PROBE = r"""
cat /etc/motd; echo "read_etc=$?"
cat /root/secret 2>&1; echo "read_root=$?"
nc -l -p 9000 >/dev/null & nc -l -p 9001 >/dev/null &
# until the listener is up (slow hosts); EACCES does not change with retries
conn() { for i in $(seq 50); do out=$(echo x | nc -w 1 127.0.0.1 $1 2>&1) && return 0
  case $out in *"ermission denied"*) echo "$out"; return 1;; esac; sleep 0.1; done; echo "$out"; return 1; }
conn 9000; echo "connect_9000=$?"
conn 9001; echo "connect_9001=$?"
"""


def test_rootless_landlock(rootless_user):
    """org.sbxrun.landlock.* for an unprivileged user (issue 17): a read
    allowed and one refused with EACCES, a TCP connect allowed by port and
    one refused; the same script without the annotations does everything."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(444, None, 0, 1) < 4:  # landlock_create_ruleset(NULL, 0, VERSION)
        pytest.skip("needs Landlock ABI 4 (kernel 6.7) for TCP rules")
    u = rootless_user
    results = {}
    for rules in (None, {"org.sbxrun.landlock.fs": "rx:/bin; ro:/etc,/proc; rw:/dev",
                         "org.sbxrun.landlock.net": "bind:9000,9001; connect:9000"}):
        def edit(c, rules=rules):
            c["linux"]["namespaces"].append({"type": "network"})
            if rules:
                c["annotations"] = rules
        b = u.bundle(["sh", "-c", LANDLOCK_PROBE], edit)
        with open(os.path.join(b, "rootfs/etc/motd"), "w") as f:
            f.write("motd\n")
        os.makedirs(os.path.join(b, "rootfs/root"), exist_ok=True)
        with open(os.path.join(b, "rootfs/root/secret"), "w") as f:
            f.write("secret\n")
        cp = u.run("run", "landlock", cwd=b)
        assert cp.returncode == 0, describe(cp)
        results[bool(rules)] = cp.stdout
    free, ruled = results[False], results[True]
    for k in ("read_etc=0", "read_root=0", "connect_9000=0", "connect_9001=0"):
        assert k in free.splitlines(), free
    lines = ruled.splitlines()
    assert "motd" in lines and "read_etc=0" in lines, ruled
    assert "secret" not in lines and "Permission denied" in ruled.split("read_root")[0], ruled
    assert "connect_9000=0" in lines, ruled
    before = ruled.split("connect_9000=0")[1]
    assert "Permission denied" in before and "connect_9001=1" in lines, ruled
    assert u.state_entries() == []


def test_rootless_cgroup2_over_bound_sys(rootless_user):
    """The rootless config binds /sys recursively, so the host's cgroup2
    mount is already at its place (locked, in a user namespace): a cgroup2
    mount there is refused by mount(2) with EBUSY, and goes through
    move_mount instead, showing the container's cgroup namespace."""
    dest = "/sys/fs/cgroup/unified"
    if os.path.exists("/sys/fs/cgroup/cgroup.subtree_control"):
        dest = "/sys/fs/cgroup"  # pure v2: the config's own cgroup mount is this case
    elif not os.path.exists(os.path.join(dest, "cgroup.controllers")):
        pytest.skip("no cgroup2 mount under /sys/fs/cgroup")
    u = rootless_user

    def edit(c):
        c["mounts"] = [m for m in c["mounts"] if m["destination"] != dest]
        c["mounts"].append({"destination": dest, "type": "cgroup2", "source": "cgroup2",
                            "options": ["nosuid", "nodev", "noexec", "ro"]})

    b = u.bundle(["sh", "-c", f"grep ' {dest} ' /proc/self/mountinfo | tail -1; ls {dest}"], edit)
    cp = u.run("run", "cg2-over", cwd=b)
    assert cp.returncode == 0, describe(cp)
    last = cp.stdout.splitlines()[0].split()
    assert last[3] == "/" and last[4] == dest and "cgroup2" in last and last[5].startswith("ro,"), describe(cp)
    assert "cgroup.procs" in cp.stdout.split(), describe(cp)
    assert u.state_entries() == []


@pytest.fixture
def rootless_podman(rootless_user, tmp_path):
    """podman as the test user, with sbxrun as its runtime: podman's own
    user namespace (the user's subuid range, via newuidmap), vfs storage and
    a runtime dir of its own; --network none (no slirp4netns or pasta
    here).  Its pause process is ended at teardown, by its pid."""
    from test_podman import import_busybox, remove_everything
    if shutil.which("podman") is None:
        pytest.skip("podman not installed")
    u = rootless_user
    home = tempfile.mkdtemp(prefix=f"sbxpm-{os.getpid()}-", dir="/tmp")
    xdg = os.path.join(home, "xdg")
    os.mkdir(xdg, 0o700)
    conf = os.path.join(home, "containers.conf")
    with open(conf, "w") as f:
        f.write('[engine]\nruntime_supports_json = ["sbxrun"]\n'
                f'[engine.runtimes]\nsbxrun = ["{u.sbxrun}"]\n')
    for d in (home, xdg, conf):
        os.chown(d, u.uid, u.gid)
    env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"HOME={home}", f"XDG_RUNTIME_DIR={xdg}",
           f"CONTAINERS_CONF={conf}", f"USER={USER}"]
    base = ["runuser", "-u", USER, "--", "env", "-i", *env, "podman", "--root", f"{home}/storage",
            "--runroot", f"{home}/run", "--runtime", "sbxrun", "--cgroup-manager", "cgroupfs",
            "--events-backend", "none", "--storage-driver", "vfs"]

    def pm(*args, ok=True, **kw):
        cp = run_cmd([*base, *args], timeout=120, cwd=home, **kw)
        if ok:
            assert cp.returncode == 0, describe(cp)
        return cp

    pm.xdg = xdg
    try:
        import_busybox(pm, u.rootfs_src)
        yield pm
    finally:
        remove_everything(pm)
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            with open(os.path.join(xdg, "libpod/tmp/pause.pid")) as f:
                os.kill(int(f.read()), 9)
        shutil.rmtree(home, ignore_errors=True)


def test_rootless_podman(rootless_user, rootless_podman):
    """Rootless podman drives sbxrun inside podman's user namespace: run
    --rm, run -d with the egress annotation (rules in the container's
    namespace), exec, stop, rm; sbxrun's state (in podman's
    XDG_RUNTIME_DIR) is gone afterwards."""
    pm = rootless_podman
    cp = pm("run", "--rm", "--network", "none", "localhost/sbxtest-bb", "sh", "-c",
            "id -u; cat /proc/self/uid_map; exit 3", ok=False)
    assert cp.returncode == 3, describe(cp)
    lines = cp.stdout.split("\n")
    assert lines[0] == "0" and [int(x) for x in lines[1].split()] == [0, rootless_user.uid, 1], describe(cp)
    cp = pm("run", "-d", "--name", "pmrl", "--network", "none", "--annotation",
            "org.sbxrun.net.allow=10.232.0.2:8001", "localhost/sbxtest-bb", "sleep", "600")
    pid = int(pm("inspect", "pmrl", "--format", "{{.State.Pid}}").stdout)
    cp = run_cmd(["nsenter", "-t", pid, "-n", "nft", "list", "ruleset"])
    assert cp.returncode == 0 and "10.232.0.2 . tcp . 8001" in cp.stdout, describe(cp)
    cp = pm("exec", "pmrl", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; ip link set lo down", ok=False)
    assert cp.stdout == "sleep 600 " and "not permitted" in cp.stderr, describe(cp)
    pm("stop", "-t", "1", "pmrl")
    assert pm("inspect", "pmrl", "--format", "{{.State.Status}}").stdout.strip() == "exited"
    pm("rm", "pmrl")
    assert not _pid_alive(pid)
    state = os.path.join(pm.xdg, "sbxrun")
    assert [n for n in os.listdir(state) if not n.startswith(".")] == []


@pytest.mark.parametrize("case", ["no-userns", "netdevices"])
def test_rootless_refusals_name_what_is_not_permitted(rootless_user, case):
    """What the kernel does not permit an ordinary user is refused before
    anything exists, naming the field and saying what is not permitted."""
    u = rootless_user

    def edit(c):
        if case == "no-userns":
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "user"]
            c["linux"].pop("uidMappings")
            c["linux"].pop("gidMappings")
        else:
            c["linux"]["namespaces"].append({"type": "network"})
            c["linux"]["netDevices"] = {"lo": {"name": "eth9"}}

    b = u.bundle(["true"], edit)
    cp = u.run("run", "refused", cwd=b)
    assert cp.returncode != 0, describe(cp)
    field = "linux.namespaces" if case == "no-userns" else "linux.netDevices"
    assert f"config.json: {field}: an unprivileged caller (uid {u.uid}) is not permitted" in cp.stderr, describe(cp)
    assert "warning" not in cp.stderr, describe(cp)
    assert u.state_entries() == []


def test_rootless_checkpoint_restore_refused(rootless_user):
    """CRIU needs privileges that an ordinary user does not have: restore
    (of a container that does not exist, from an image directory) and
    checkpoint are refused by name with the reason before CRIU runs, and
    nothing is left in the state root (no container created for the
    restore)."""
    u = rootless_user
    b = u.bundle(["true"])
    img = os.path.join(u.top, "img")
    os.mkdir(img)
    os.chown(img, u.uid, u.gid)
    cp = u.run("restore", "--image-path", img, "--bundle", b, "-d", "rst")
    assert cp.returncode != 0, describe(cp)
    assert "restore: not supported for an unprivileged caller (rootless): CRIU needs CAP_SYS_ADMIN" in cp.stderr, \
        describe(cp)
    assert "criu check" not in cp.stderr, describe(cp)
    assert u.state_entries() == []
    cp = u.run("checkpoint", "rst")
    assert cp.returncode != 0 and "checkpoint: not supported for an unprivileged caller" in cp.stderr, describe(cp)
    assert u.state_entries() == []
    cp = u.run("snapshot", "create", "--with-process", "rst", "s1")
    assert cp.returncode != 0, describe(cp)
    assert "snapshot create --with-process: not supported for an unprivileged caller" in cp.stderr, describe(cp)
    assert u.state_entries() == []
