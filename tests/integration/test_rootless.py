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

from conftest import SBXRUN, describe, run_cmd

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

    def run(self, *args, cwd=None, env=None):
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "XDG_RUNTIME_DIR": self.xdg}
        e.update(env or {})
        argv = ["runuser", "-u", USER, "--", "env", "-i", *[f"{k}={v}" for k, v in e.items()],
                self.sbxrun, *args]
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
        cp = run_cmd(["useradd", "-m", USER])
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
