"""Nothing of the host is reachable through sbxrun's own processes while a
container can see them (CVE-2016-9962 class), and exec enters the
container's root (CVE-2024-21626 class cwd included).

The attacker is a container process with CAP_SYS_PTRACE (default caps
otherwise) running exploits/pidwatch: it finds every new process of its pid
namespace and opens /proc/PID/{root,cwd,fd/N}, reporting whether each leads
to a directory outside its root and whether a host marker file (placed in
the caller's cwd) can be read through it."""

import os
import shutil
import subprocess
import time

import pytest

from conftest import describe

MARKER = "sbx-host-marker"
pytestmark = pytest.mark.usefixtures("seccomp_cache_cleanup")


@pytest.fixture
def marker_dir(tmp_path):
    """The host cwd of the sbxrun caller, holding a secret."""
    d = tmp_path / "hostcwd"
    d.mkdir()
    (d / MARKER).write_text("HOST-SECRET\n")
    return d


def add_caps(b, *caps):
    with b.edit() as c:
        for k in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][k] += list(caps)


class Watcher:
    def __init__(self, sbx, cid, log):
        self.sbx, self.cid, self.log = sbx, cid, log
        self.pid = sbx.state(cid)["pid"]
        deadline = time.monotonic() + 10
        while "ready" not in self.text():
            assert time.monotonic() < deadline, f"pidwatch not ready: {self.text()!r}"
            time.sleep(0.05)

    def text(self):
        return self.log.read_text() if self.log.exists() else ""

    def seen(self):
        return {int(l.split("=")[1]) for l in self.text().splitlines() if l.startswith("seen pid=")}

    def reached(self):
        """Every probe line, as dicts."""
        out = []
        for line in self.text().splitlines():
            if line.startswith("pid="):
                out.append(dict(f.split("=", 1) for f in line.split(" ", 4)))
        return out

    def settle(self):
        time.sleep(0.3)


@pytest.fixture
def watcher(sbx, bundle, exploit, marker_dir):
    """A running container whose init is pidwatch, with CAP_SYS_PTRACE."""

    def start(namespaces=None):
        b = bundle(["/pidwatch", "/tmp/watch.log", MARKER, str(marker_dir / MARKER)])
        shutil.copy(exploit("pidwatch"), b.rootfs / "pidwatch")
        add_caps(b, "CAP_SYS_PTRACE")
        with b.edit() as c:
            c["root"]["readonly"] = False  # its log is read from the host
        cid = sbx.new_id("watch")
        sbx.ok("run", "--detach", "--bundle", b, cid)
        return Watcher(sbx, cid, b.rootfs / "tmp/watch.log")

    return start


def root_id(path):
    st = os.stat(path)
    return f"outside:{st.st_dev}:{st.st_ino}"


def assert_nothing_of_the_host(w, new_pids, roots=("inside",)):
    """No probe of new_pids read the marker or reached a directory outside
    the allowed roots ("inside": the watcher's own; a neighbour's rootfs as
    root_id())."""
    lines = [l for l in w.reached() if int(l["pid"]) in new_pids]
    bad = [l for l in lines if l["marker"] == "1" or (l["where"] != "nodir" and l["where"] not in roots)]
    assert not bad, "reached the host through an sbxrun process:\n" + "\n".join(map(str, bad))
    for l in lines:
        if l["what"] in ("root", "cwd"):
            assert l["where"] in roots, l
    return lines


@pytest.mark.needs_root
def test_primitive_a_host_process_in_the_pid_namespace_gives_the_host_away(watcher, marker_dir):
    """The weakened setup: a process put into the container's pid namespace
    from the host (as the old exec child was), with a host cwd and an open
    host directory fd: pidwatch finds it and reads the marker through it."""
    w = watcher()
    before = w.seen()
    subprocess.run(["nsenter", "-t", str(w.pid), "-p", "--", "sh", "-c", 'exec 7<"$0"; sleep 1.5', marker_dir],
                   cwd=marker_dir, check=True, timeout=30)
    w.settle()
    new = w.seen() - before
    assert new, w.text()
    lines = [l for l in w.reached() if int(l["pid"]) in new]
    host = root_id("/")
    assert any(l["what"] == "cwd" and l["marker"] == "1" and l["where"] == host for l in lines), w.text()
    assert any(l["what"] == "root" and l["marker"] == "1" and l["where"] == host for l in lines), w.text()
    assert any(l["what"] == "fd7" and l["marker"] == "1" and l["where"] == host for l in lines), w.text()


@pytest.mark.needs_root
def test_exec_child_shows_only_the_container(sbx, watcher, marker_dir):
    """20 execs (foreground, detached, with a terminal), each alive long
    enough to be seen on a loaded host: pidwatch sees every one of them, and
    through none reaches a host directory or the marker."""
    w = watcher()
    before = w.seen()
    for i in range(20):
        extra = ["--detach"] if i % 5 == 1 else ["--tty"] if i % 5 == 2 else []
        sbx.ok("exec", *extra, "--cwd", "/tmp", w.cid, "sh", "-c", "sleep 0.3", cwd=marker_dir)
    w.settle()
    new = w.seen() - before
    assert len(new) >= 20, w.text()  # the watcher did observe them
    lines = assert_nothing_of_the_host(w, new)
    assert any(l["what"] == "cwd" and l["link"] == "/tmp" for l in lines), w.text()


@pytest.mark.needs_root
def test_neighbour_in_a_joined_pid_namespace_sees_nothing_of_the_host(sbx, bundle, watcher, marker_dir):
    """A second container joins the watcher's pid namespace by path (a pod):
    during its create and while it waits for start, its init shows only
    the container's root, cwd and sockets/pipes/stdio."""
    w = watcher()
    before = w.seen()
    roots = ["inside"]
    for _ in range(5):
        b = bundle(["true"])
        roots.append(root_id(b.rootfs))
        with b.edit() as c:
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
            c["linux"]["namespaces"].append({"type": "pid", "path": f"/proc/{w.pid}/ns/pid"})
        cid = sbx.new_id("pod")
        sbx.ok("create", "--bundle", b, cid, cwd=marker_dir)
        pid = sbx.state(cid)["pid"]
        assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{w.pid}/ns/pid")
        w.settle()
        sbx.ok("delete", "--force", cid)
    new = w.seen() - before
    assert len(new) >= 5, w.text()
    assert root_id("/") not in roots
    lines = assert_nothing_of_the_host(w, new, roots)
    # the waiting inits were probed, not just glimpsed
    assert any(l["what"].startswith("fd") for l in lines), w.text()


@pytest.mark.needs_root
def test_exec_without_mount_namespace_enters_the_rootfs(sbx, bundle, marker_dir):
    """A container without a mount namespace: the init is chrooted into the
    rootfs, and exec is too, in process.cwd inside it."""
    b = bundle(["sleep", "600"])
    with b.edit() as c:
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "mount"]
        # the default mounts are made below a private bind of the rootfs
    (b.rootfs / "etc/os-release").write_text("ID=sbx-rootfs-marker\n")
    (b.rootfs / "work").mkdir()
    # what the old exec showed is a different world: the host's
    host = open("/etc/os-release").read() if os.path.exists("/etc/os-release") else ""
    assert "sbx-rootfs-marker" not in host
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    out = sbx("exec", "--cwd", "/work", cid, "sh", "-c", f"cat /etc/os-release; pwd; ls /; cat {MARKER}",
              cwd=marker_dir).stdout
    lines = out.splitlines()
    assert lines[0] == "ID=sbx-rootfs-marker", out
    assert lines[1] == "/work", out
    assert set(lines[2:]) == set(os.listdir(b.rootfs)), out
    assert "HOST-SECRET" not in out
    # its own procfs (of its pid namespace) there, not the host's
    assert sbx.ok("exec", cid, "cat", "/proc/1/cmdline").stdout.split("\0")[:2] == ["sleep", "600"]


@pytest.mark.needs_root
def test_cwd_through_a_leaked_fd_is_refused(sbx, bundle, marker_dir):
    """CVE-2024-21626: process.cwd = /proc/self/fd/N.  The primitive: a
    directory fd of the host in a container process leads to the host (here
    one passed on purpose with --preserve-fds).  Then no N in 3..10, for
    exec or run, lands in a host directory."""
    b = bundle(["sleep", "600"])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    argv = sbx.argv("exec", "--preserve-fds", "1", cid, "cat", f"/proc/self/fd/3/{MARKER}")
    cp = subprocess.run(["sh", "-c", 'exec 3<"$0"; exec "$@"', marker_dir, *argv], capture_output=True,
                        text=True, timeout=30)
    assert cp.returncode == 0 and "HOST-SECRET" in cp.stdout, describe(cp)
    # even that fd, named as the cwd, is refused
    argv = sbx.argv("exec", "--preserve-fds", "1", "--cwd", "/proc/self/fd/3", cid, "cat", MARKER)
    cp = subprocess.run(["sh", "-c", 'exec 3<"$0"; exec "$@"', marker_dir, *argv], capture_output=True,
                        text=True, timeout=30)
    assert cp.returncode != 0 and "HOST-SECRET" not in cp.stdout, describe(cp)
    for n in range(3, 11):
        cp = sbx("exec", "--cwd", f"/proc/self/fd/{n}", cid, "sh", "-c", f"pwd; cat {MARKER}", cwd=marker_dir)
        assert "HOST-SECRET" not in cp.stdout, describe(cp)
        assert cp.returncode != 0 or cp.stdout.startswith("/proc/"), describe(cp)
    for n in (3, 4, 5):
        rb = bundle(["sh", "-c", f"pwd; cat {MARKER}"])
        with rb.edit() as c:
            c["process"]["cwd"] = f"/proc/self/fd/{n}"
        cp = sbx("run", "--bundle", rb, sbx.new_id(), cwd=marker_dir)
        assert "HOST-SECRET" not in cp.stdout, describe(cp)
        assert cp.returncode != 0 or cp.stdout.startswith("/proc/"), describe(cp)


@pytest.mark.needs_root
def test_created_init_holds_nothing_of_the_host(sbx, bundle, exploit, marker_dir):
    """An exec into a created container sees its init (pid 1) waiting for
    start: no cgroup directory (a v1 one leads to release_agent), no
    cgroup.procs, no log file or other host fd; root and cwd the
    container's."""
    b = bundle(["true"])
    shutil.copy(exploit("pidwatch"), b.rootfs / "pidwatch")
    with b.edit() as c:
        c["root"]["readonly"] = False
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid, global_args=("--log", marker_dir / "log.txt"), cwd=marker_dir)
    sbx.ok("exec", "--detach", "--cap", "CAP_SYS_PTRACE", cid, "/pidwatch", "/tmp/watch.log", MARKER,
           marker_dir / MARKER, cwd=marker_dir)
    log = b.rootfs / "tmp/watch.log"
    deadline = time.monotonic() + 10
    while "ready" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    w = Watcher.__new__(Watcher)
    w.log = log
    lines = assert_nothing_of_the_host(w, {1})
    assert any(l["what"] == "root" for l in lines), w.text()  # pid 1 was probed
    assert not any("log.txt" in l["link"] or "cgroup" in l["link"] for l in lines), w.text()
