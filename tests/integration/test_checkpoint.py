"""checkpoint and restore with CRIU (issue 10, section 1).

The CRIU tests need a kernel the installed criu supports: they skip, with
the reason, where `criu check` fails (Debian's criu 3.17 on a 6.18 kernel)
and run in the guest of tests/vm/run-criu.sh.  The tests of what happens
where CRIU cannot work run on such a host only.
"""

import json
import os
import select
import shutil
import socket
import stat
import subprocess
import time

import pytest

from conftest import ConsoleSocket, describe, read_pty_until, run_cmd, wait_for
from test_failures import leftovers  # noqa: F401  (a fixture)
from test_netfilter import check, net_bundle, netlab  # noqa: F401  (netlab is a fixture)
from test_podman import podman  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("create", "start", "checkpoint", "restore"),
              pytest.mark.usefixtures("seccomp_cache_cleanup")]

# Its stdio goes to the container's /dev/null: what the test harness hands
# it (temporary files of the host's /tmp) is on no mount of the container.
COUNTER = ["sh", "-c", "exec </dev/null >/dev/null 2>&1; i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.1; done"]


def criu_usable():
    if shutil.which("criu") is None:
        return False, "criu is not installed"
    cp = run_cmd(["criu", "check"], timeout=60)
    return cp.returncode == 0, (cp.stdout + cp.stderr).strip()[-300:]


_USABLE = None


def usable():
    global _USABLE
    if _USABLE is None:
        _USABLE = criu_usable()
    return _USABLE


@pytest.fixture
def criu():
    ok, why = usable()
    if not ok:
        pytest.skip(f"CRIU cannot work on this host ({why}); tests/vm/run-criu.sh runs this in a guest")


@pytest.fixture
def no_criu():
    ok, _ = usable()
    if ok:
        pytest.skip("CRIU works on this host: the failure path needs a host where it cannot")


def count(b):
    try:
        return int((b.rootfs / "count").read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def wait_count(b, above, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = count(b)
        if n > above:
            return n
        time.sleep(0.1)
    pytest.fail(f"the counter stayed at {count(b)} (wanted > {above})")


def counter(sbx, bundle):
    b = bundle(COUNTER)
    with b.edit() as c:
        c["root"]["readonly"] = False
    cid = sbx.new_id("cr")
    sbx.ok("create", "--bundle", b, cid)
    sbx.ok("start", cid)
    wait_count(b, 5)
    return b, cid


# --------------------------------------------------------------------------- always


def test_help_and_flags():
    """podman turns checkpoint off unless `checkpoint --help` exits 0."""
    from conftest import sbxrun
    for cmd in ("checkpoint", "restore"):
        cp = sbxrun(cmd, "--help")
        assert cp.returncode == 0, describe(cp)
    cp = sbxrun("checkpoint", "--help")
    for flag in ("--image-path", "--work-path", "--leave-running", "--tcp-established", "--ext-unix-sk",
                 "--shell-job", "--file-locks", "--pre-dump", "--parent-path", "--manage-cgroups-mode",
                 "--empty-ns", "--auto-dedup"):
        assert flag in cp.stdout, flag
    cp = sbxrun("restore", "--help")
    for flag in ("--image-path", "--work-path", "--bundle", "--detach", "--pid-file", "--console-socket",
                 "--no-subreaper", "--no-pivot", "--lsm-profile", "--manage-cgroups-mode", "--empty-ns",
                 "--auto-dedup"):
        assert flag in cp.stdout, flag


def test_features_and_version_report_criu(sbx):
    ok, _ = usable()
    f = sbx.json("features")
    assert f["annotations"]["org.sbxrun.criu"].startswith("usable" if ok else "not usable"), f["annotations"]
    v = sbx.ok("--version").stdout
    assert ("criu: usable" if ok else "criu: not usable") in v, v
    cp = sbx.ok("--criu", "/nonexistent/criu", "--version")
    assert "criu: not usable" in cp.stdout and "/nonexistent/criu" in cp.stdout, cp.stdout


def test_refusals(sbx, bundle):
    b = bundle(["sleep", "600"])
    cid = sbx.new_id("cr")
    cp = sbx.fail("restore", cid)
    assert "does not exist" in cp.stderr, describe(cp)
    assert not (sbx.root / cid).exists()
    sbx.ok("create", "--bundle", b, cid)
    cp = sbx.fail("checkpoint", cid)
    assert "cannot be checkpointed: it is created" in cp.stderr, describe(cp)
    cp = sbx.fail("restore", "--no-pivot", cid)
    assert "--no-pivot" in cp.stderr, describe(cp)
    cp = sbx.fail("restore", "--empty-ns", "ipc", cid)
    assert "--empty-ns `ipc`" in cp.stderr, describe(cp)
    sbx.ok("delete", "--force", cid)


def test_checkpoint_fails_fast_without_criu(sbx, bundle, no_criu):
    """Where CRIU cannot work: an immediate error with CRIU's reason and a
    hint; the container keeps running, untouched."""
    b, cid = counter(sbx, bundle)
    pid = sbx.state(cid)["pid"]
    for extra in ([], ["--leave-running"], ["--pre-dump"]):
        t = time.monotonic()
        cp = sbx.fail("checkpoint", *extra, cid, timeout=30)
        assert time.monotonic() - t < 10, "checkpoint must fail at once"
        assert "CRIU cannot work on this host" in cp.stderr and "hint" in cp.stderr, describe(cp)
        assert "criu" in cp.stderr.lower()
    st = sbx.state(cid)
    assert st["status"] == "running" and st["pid"] == pid
    n = count(b)
    wait_count(b, n)
    assert not (sbx.root / cid / "checkpoint").exists()
    # cached per boot: the second --version does not run criu again
    assert (sbx.root / ".criu-check").exists()
    sbx.ok("delete", "--force", cid)


def test_memory_flag_refusals(sbx, bundle):
    """Bad --page-server, --status-fd or --lazy-pages: refused before CRIU
    runs (on any host), naming the flag and the value; the container runs
    on, untouched, and no image directory is left."""
    b = bundle(["sleep", "600"])
    cid = sbx.new_id("cr")
    sbx.ok("create", "--bundle", b, cid)
    sbx.ok("start", cid)
    pid = sbx.state(cid)["pid"]
    ps = ["--page-server", "127.0.0.1:1"]
    cases = [(["--page-server", "127.0.0.1"], "--page-server `127.0.0.1`: want ADDRESS:PORT"),
             (["--page-server", "localhost:1234"], "`localhost` is not a numeric IPv4 or IPv6 address"),
             (["--page-server", "127.0.0.1:0"], "port `0` is not in 1..65535"),
             (["--page-server", "[::1]:70000"], "port `70000` is not in 1..65535"),
             (["--status-fd", "1"], "--status-fd 1: only with --lazy-pages"),
             (["--status-fd", "x"], "--status-fd `x`: not a file descriptor number"),
             (["--lazy-pages"], "--lazy-pages needs --page-server ADDRESS:PORT"),
             (["--lazy-pages", "--pre-dump", *ps], "--lazy-pages and --pre-dump"),
             (["--lazy-pages", *ps, "--status-fd", "99"], "--status-fd 99: not an open file descriptor")]
    for args, want in cases:
        cp = sbx.fail("checkpoint", *args, cid)
        assert want in cp.stderr, (args, describe(cp))
    r, w = os.pipe()
    try:
        cp = sbx.fail("checkpoint", "--lazy-pages", *ps, "--status-fd", r, cid, pass_fds=(r,))
        assert f"--status-fd {r}: not open for writing" in cp.stderr, describe(cp)
    finally:
        os.close(r)
        os.close(w)
    st = sbx.state(cid)
    assert st["status"] == "running" and st["pid"] == pid
    assert not (sbx.root / cid / "checkpoint").exists()
    sbx.ok("delete", "--force", cid)


# --------------------------------------------------------------------------- with CRIU


@pytest.fixture
def loopback(criu):
    """The guest's lo (its only interface) up: page servers listen there."""
    run_cmd(["ip", "link", "set", "lo", "up"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_status(fd, timeout=120.0):
    """The bytes CRIU writes to a --status-fd (b"" at EOF), or None on timeout."""
    r, _, _ = select.select([fd], [], [], timeout)
    return os.read(fd, 16) if r else None


def count_after(read, n, timeout=30.0):
    """The first count other than n (0: the file mid-write): above n when
    the counter went on from its checkpoint, small when it started again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = read()
        if v not in (0, n):
            assert n < v < n + 100, f"counter at {v} after restore from {n}: it started again"
            return v
        time.sleep(0.05)
    pytest.fail(f"the counter stayed at {n} after restore")


def tail(*paths):
    return "".join(f"\n--- {p}\n" + p.read_text()[-2500:] for p in paths if p.exists())


def test_checkpoint_restore_continues(sbx, bundle, criu):
    b, cid = counter(sbx, bundle)
    sbx.ok("exec", cid, "sh", "-c", "echo before > /marker; echo shm > /dev/shm/x")
    cp = sbx("checkpoint", cid, timeout=120)
    assert cp.returncode == 0, describe(cp) + (sbx.root / cid / "checkpoint/dump.log").read_text()[-3000:]
    assert sbx.state(cid)["status"] == "stopped"
    n = count(b)
    time.sleep(0.5)
    assert count(b) == n, "the counter ran on after checkpoint"
    assert (sbx.root / cid / "checkpoint/inventory.img").exists()
    cp = sbx("restore", "--detach", "--pid-file", b.path / "restored.pid", cid, timeout=120)
    assert cp.returncode == 0, describe(cp) + (sbx.root / cid / "checkpoint/restore.log").read_text()[-3000:]
    st = sbx.state(cid)
    assert st["status"] == "running", st
    assert int((b.path / "restored.pid").read_text()) == st["pid"]
    m = wait_count(b, n)
    assert n < m < n + 100, f"counter at {m} after restore from {n}: it restarted"
    assert sbx.ok("exec", cid, "cat", "/marker", "/dev/shm/x").stdout.split() == ["before", "shm"]
    sbx.ok("kill", cid, "KILL")
    sbx.wait_status(cid, "stopped")
    sbx.ok("delete", cid)
    assert not (sbx.root / cid).exists()


def test_leave_running_then_restore(sbx, bundle, criu):
    b, cid = counter(sbx, bundle)
    cp = sbx("checkpoint", "--leave-running", cid, timeout=120)
    assert cp.returncode == 0, describe(cp)
    n = count(b)
    assert sbx.state(cid)["status"] == "running"
    later = wait_count(b, n + 10)
    sbx.ok("kill", cid, "KILL")
    sbx.wait_status(cid, "stopped")
    sbx.ok("restore", "--detach", cid, timeout=120)
    assert sbx.state(cid)["status"] == "running"
    time.sleep(0.3)
    m = count(b)
    # back to the checkpoint's count, not the one it had reached
    assert m < later or m < n + 10 + 5, (n, later, m)
    wait_count(b, m)
    sbx.ok("delete", "--force", cid)


def test_pre_dump_dump_delete_restore_from_bundle(sbx, bundle, tmp_path, criu):
    """Pre-dump, then the final dump on top of it, outside the state
    directory; then what podman and containerd do: delete the container and
    restore it from --bundle and --image-path."""
    b, cid = counter(sbx, bundle)
    pre, final, work = tmp_path / "img/pre", tmp_path / "img/final", tmp_path / "work"
    sbx.ok("checkpoint", "--pre-dump", "--image-path", pre, cid, timeout=120)
    assert sbx.state(cid)["status"] == "running"
    assert any(pre.glob("pagemap-*.img"))
    cp = sbx("checkpoint", "--image-path", final, "--work-path", work, "--parent-path", "../pre", cid,
             timeout=120)
    assert cp.returncode == 0, describe(cp) + (work / "dump.log").read_text()[-3000:]
    assert sbx.state(cid)["status"] == "stopped"
    sbx.ok("delete", cid)
    assert final.is_dir(), "an image outside the state directory is kept"
    n = count(b)
    cp = sbx("restore", "--detach", "--bundle", b, "--image-path", final, "--work-path", work, cid,
             timeout=120)
    assert cp.returncode == 0, describe(cp) + (work / "restore.log").read_text()[-3000:]
    assert sbx.state(cid)["status"] == "running"
    m = wait_count(b, n)
    assert m < n + 100
    sbx.ok("delete", "--force", cid)


@pytest.mark.parametrize("step, fresh", [("restore:restored", False), ("restore:restored", True)])
def test_killed_during_restore(sbx, bundle, tmp_path, leftovers, criu, step, fresh):
    """Issue 14's journal on the restore path: a restore SIGKILLed after
    CRIU has brought the tasks back (held stopped, the rootfs bound for
    CRIU), into the stopped container or as a new one from --image-path,
    leaves a container that `list` shows and `delete --force` removes whole
    (cgroups, the restored processes, the mount)."""
    b, cid = counter(sbx, bundle)
    img = tmp_path / "img"
    sbx.ok("checkpoint", "--image-path", img, cid, timeout=120)
    if fresh:
        sbx.ok("delete", cid)  # restored as a new container (podman, containerd)
    leftovers.snapshot()
    cp = sbx("restore", "--detach", "--bundle", b, "--image-path", img, cid, timeout=120,
             env={**os.environ, "SBXRUN_TEST_KILL_AT": step})
    assert cp.returncode == -9, describe(cp)
    listed = {c["id"]: c["status"] for c in json.loads(sbx.ok("list", "--format", "json").stdout or "null") or []}
    assert listed.get(cid) == "creating", listed
    cp = sbx("delete", cid)
    assert cp.returncode != 0 and "--force" in cp.stderr, describe(cp)
    cp = sbx("delete", "--force", cid)
    assert cp.returncode == 0, describe(cp)
    leftovers.check(cp, cid)
    # the ID is free again, and the image still restores
    cp = sbx("restore", "--detach", "--bundle", b, "--image-path", img, cid, timeout=120)
    assert cp.returncode == 0, describe(cp)
    assert sbx.state(cid)["status"] == "running"
    sbx.ok("delete", "--force", cid)


def test_egress_allowlist_after_restore(sbx, bundle, tmp_path, netlab, criu):
    ann = {"org.sbxrun.net.allow": "10.231.0.2:80", "org.sbxrun.net.dns": "none"}
    b = net_bundle(bundle, tmp_path, netlab, ann, args=COUNTER)
    with b.edit() as c:
        c["root"]["readonly"] = False
    cid = sbx.new_id("crnet")
    sbx.ok("create", "--bundle", b, cid)
    sbx.ok("start", cid)
    wait_count(b, 3)
    allowed, blocked = [["tcp", "10.231.0.2", 80]], [["tcp", "10.231.0.2", 443], ["tcp", "10.231.0.3", 80]]
    check(sbx, cid, allowed, blocked)
    cp = sbx("checkpoint", cid, timeout=120)
    assert cp.returncode == 0, describe(cp) + (sbx.root / cid / "checkpoint/dump.log").read_text()[-3000:]
    # the rules go and come back from the saved config, not the image
    run_cmd(["ip", "netns", "exec", netlab.client, "nft", "delete", "table", "inet", f"sbxrun-{cid}"])
    cp = sbx("restore", "--detach", cid, timeout=120)
    assert cp.returncode == 0, describe(cp) + (sbx.root / cid / "checkpoint/restore.log").read_text()[-3000:]
    assert f"sbxrun-{cid}" in netlab.ruleset()
    check(sbx, cid, allowed, blocked)
    sbx.ok("delete", "--force", cid)
    assert f"sbxrun-{cid}" not in netlab.ruleset()


def test_page_server_loopback(sbx, bundle, tmp_path, criu, loopback):
    """checkpoint --page-server: the memory goes to a `criu page-server` on
    127.0.0.1, not into the image directory; with it moved back, restore
    continues the count."""
    b, cid = counter(sbx, bundle)
    psd, img = tmp_path / "ps", tmp_path / "img"
    psd.mkdir()
    port = free_port()
    r, w = os.pipe()
    srv = subprocess.Popen(["criu", "page-server", "--images-dir", psd, "--address", "127.0.0.1",
                            "--port", str(port), "--status-fd", str(w), "-o", psd / "ps.log", "-v4"],
                           pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    os.close(w)
    try:
        assert read_status(r) == b"\0", tail(psd / "ps.log")
        cp = sbx("checkpoint", "--image-path", img, "--page-server", f"127.0.0.1:{port}", cid, timeout=120)
        assert cp.returncode == 0, describe(cp) + tail(img / "dump.log", psd / "ps.log")
        assert srv.wait(timeout=60) == 0, tail(psd / "ps.log")
    finally:
        os.close(r)
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    assert sbx.state(cid)["status"] == "stopped"
    assert any(psd.glob("pages-*.img")), sorted(p.name for p in psd.iterdir())
    assert not any(img.glob("pages-*.img")), "the pages went into the image directory"
    for f in psd.glob("*.img"):
        shutil.copy(f, img)
    n = count(b)
    cp = sbx("restore", "--detach", "--image-path", img, cid, timeout=120)
    assert cp.returncode == 0, describe(cp) + tail(img / "restore.log")
    count_after(lambda: count(b), n)
    sbx.ok("delete", "--force", cid)


def test_lazy_pages_status_fd(sbx, bundle, tmp_path, criu, loopback):
    """checkpoint --lazy-pages --page-server 127.0.0.1:P --status-fd FD:
    CRIU writes a 0 byte to FD once it serves the memory; `restore
    --lazy-pages` of another container on the same rootfs, its pages
    fetched by `criu lazy-pages`, continues the count.  Where the kernel
    lacks non-cooperative userfaultfd: refused with CRIU's reason, the
    container untouched."""
    b, cid = counter(sbx, bundle)
    pid = sbx.state(cid)["pid"]
    img = tmp_path / "lazy"
    port = free_port()
    uffd = run_cmd(["criu", "check", "--feature", "uffd-noncoop"], timeout=60)
    r, w = os.pipe()
    dump = sbx.popen("checkpoint", "--lazy-pages", "--page-server", f"127.0.0.1:{port}", "--status-fd", w,
                     "--image-path", img, cid, pass_fds=(w,))
    os.close(w)
    daemon = None
    try:
        if uffd.returncode != 0:
            print(f"no uffd-noncoop here ({uffd.stdout.strip()[-200:]}): the refusal is tested")
            _, err = dump.communicate(timeout=60)
            assert dump.returncode != 0 and "--lazy-pages" in err and "uffd-noncoop" in err, err
            assert read_status(r, 1) == b"", "no status byte for a refused dump"
            st = sbx.state(cid)
            assert st["status"] == "running" and st["pid"] == pid
            wait_count(b, count(b))
            sbx.ok("delete", "--force", cid)
            return
        print(f"guest kernel has uffd-noncoop: lazy migration on 127.0.0.1:{port}")
        got = read_status(r)
        assert got == b"\0", (got, tail(img / "dump.log"))
        assert dump.poll() is None, "the dump returned before its memory was fetched"
        # the destination: the same rootfs, another ID and cgroup
        b2 = bundle(COUNTER, rootfs=False)
        with b2.edit() as c:
            c["root"] = {"path": str(b.rootfs), "readonly": False}
        daemon = subprocess.Popen(["criu", "lazy-pages", "--page-server", "--address", "127.0.0.1",
                                   "--port", str(port), "--images-dir", img, "--work-dir", img,
                                   "-o", img / "lazy-pages.log", "-v4"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not any(stat.S_ISSOCK(p.lstat().st_mode) for p in img.iterdir()):
            assert daemon.poll() is None and time.monotonic() < deadline, tail(img / "lazy-pages.log")
            time.sleep(0.1)
        n = count(b)
        cid2 = sbx.new_id("crlazy")
        cp = sbx("restore", "--detach", "--lazy-pages", "--bundle", b2, "--image-path", img, cid2, timeout=120)
        assert cp.returncode == 0, describe(cp) + tail(img / "restore.log", img / "lazy-pages.log")
        count_after(lambda: count(b), n)
        out, err = dump.communicate(timeout=120)
        assert dump.returncode == 0, err + tail(img / "dump.log")
        assert daemon.wait(timeout=60) == 0, tail(img / "lazy-pages.log")
        assert sbx.state(cid)["status"] == "stopped"
        assert sbx.state(cid2)["status"] == "running"
        wait_count(b, count(b))
        sbx.ok("delete", cid)
        sbx.ok("delete", "--force", cid2)
    finally:
        os.close(r)
        if daemon and daemon.poll() is None:
            daemon.kill()
            daemon.wait()


def test_restore_auto_dedup_and_empty_netns(sbx, bundle, criu):
    """restore --auto-dedup punches the restored pages out of the image;
    restore --empty-ns network gives a new, unconfigured network namespace
    (an address added to lo before the checkpoint is not there after)."""
    b, cid = counter(sbx, bundle)
    pid = sbx.state(cid)["pid"]
    cp = run_cmd(["nsenter", "-t", pid, "-n", "ip", "addr", "add", "10.213.0.1/32", "dev", "lo"])
    assert cp.returncode == 0, describe(cp)
    assert "10.213.0.1" in sbx.ok("exec", cid, "ip", "-4", "addr", "show", "dev", "lo").stdout
    img = sbx.root / cid / "checkpoint"
    cp = sbx("checkpoint", cid, timeout=120)
    assert cp.returncode == 0, describe(cp) + tail(img / "dump.log")

    def blocks():
        return sum(p.stat().st_blocks for p in img.glob("pages-*.img"))

    before = blocks()
    assert before > 0
    n = count(b)
    cp = sbx("restore", "--detach", "--auto-dedup", "--empty-ns", "network", cid, timeout=120)
    assert cp.returncode == 0, describe(cp) + tail(img / "restore.log")
    count_after(lambda: count(b), n)
    assert blocks() < before // 4, f"pages kept {blocks()} of {before} blocks after --auto-dedup"
    out = sbx.ok("exec", cid, "ip", "-4", "addr", "show", "dev", "lo").stdout
    assert "10.213.0.1" not in out, out
    sbx.ok("delete", "--force", cid)


TTY_LOOP = ["sh", "-c", 'n=0; while read l; do n=$((n+1)); echo "$n $l" > /got; echo "got $n $l"; done']


def test_terminal_checkpoint_restore(sbx, bundle, tmp_path, console_socket, criu):
    """process.terminal with --console-socket: after checkpoint, restore
    --console-socket hands a new pty master, and the shell reading its
    terminal continues (its line count kept) on the new pty."""
    b = bundle(TTY_LOOP, terminal=True)
    with b.edit() as c:
        c["root"]["readonly"] = False
    cid = sbx.new_id("crtty")
    sbx.ok("create", "--bundle", b, "--console-socket", console_socket.path, cid)
    master, _ = console_socket.receive()
    cs2 = ConsoleSocket(tmp_path / "cs2")
    master2 = -1
    try:
        sbx.ok("start", cid)
        os.write(master, b"one\n")
        read_pty_until(master, "got 1 one", timeout=30)
        img = sbx.root / cid / "checkpoint"
        cp = sbx("checkpoint", cid, timeout=120)
        assert cp.returncode == 0, describe(cp) + tail(img / "dump.log")
        assert sbx.state(cid)["status"] == "stopped"
        os.close(master)
        master = -1
        cp = sbx("restore", "--detach", "--console-socket", cs2.path, cid, timeout=120)
        assert cp.returncode == 0, describe(cp) + tail(img / "restore.log")
        master2, _ = cs2.receive()
        assert sbx.state(cid)["status"] == "running"
        os.write(master2, b"two\n")
        read_pty_until(master2, "got 2 two", timeout=30)
        assert (b.rootfs / "got").read_text() == "2 two\n"
        sbx.ok("delete", "--force", cid)
    finally:
        for fd in (master, master2):
            if fd >= 0:
                os.close(fd)
        cs2.close()


PODMAN_COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.1; done"


def test_podman_checkpoint_restore(podman, criu):  # noqa: F811
    """`podman container checkpoint` / `restore` with --runtime sbxrun: the
    counter, its stdio conmon's pipes, continues from its count."""
    if shutil.which("conmon") is None:
        pytest.skip("conmon not installed")
    cid = podman("run", "-d", "--network", "none", "--cgroup-parent", podman.parent,
                 "localhost/sbxtest-bb:latest", "sh", "-c", PODMAN_COUNTER).stdout.strip()
    mnt = podman("mount", cid).stdout.strip()

    def pcount():
        try:
            return int(open(os.path.join(mnt, "count")).read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    deadline = time.monotonic() + 60
    while pcount() <= 5:
        assert time.monotonic() < deadline, "the counter does not count"
        time.sleep(0.1)
    podman("container", "checkpoint", cid)
    st = json.loads(podman("inspect", cid).stdout)[0]["State"]
    assert st["Status"] == "exited" and st.get("Checkpointed", True), st
    n = pcount()
    time.sleep(0.5)
    assert pcount() == n, "the counter ran on after checkpoint"
    podman("container", "restore", cid)
    st = json.loads(podman("inspect", cid).stdout)[0]["State"]
    assert st["Status"] == "running", st
    count_after(pcount, n)
    assert int(podman("exec", cid, "cat", "/count").stdout) >= n
    podman("stop", "-t", "1", cid)
    podman("umount", cid, ok=False)
    podman("rm", cid)


def test_ctr_checkpoint_restore(containerd, cgroup_parent, criu):
    """containerd's runc shim with sbxrun as its binary: `ctr containers
    checkpoint --task` makes a checkpoint image (the shim calls `sbxrun
    checkpoint --image-path --work-path --leave-running`), and `ctr
    containers restore --live --rw` of it (`sbxrun restore --bundle ...
    --detach`) continues the count on the restored rw layer."""
    ctr = containerd
    cid = f"sbxcr{os.getpid()}"
    ref = f"localhost/sbxckpt-{cid}:1"
    rootfs = f"{ctr.state}/io.containerd.runtime.v2.task/sbx/{cid}/rootfs"

    def read():
        try:
            return int(open(os.path.join(rootfs, "count")).read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    ctr("run", "-d", "--runc-binary", os.environ.get("SBXRUN"), "--cgroup", cgroup_parent.path("ctr"),
        "localhost/sbxbox:latest", cid, *COUNTER)
    try:
        deadline = time.monotonic() + 60
        while read() < 10:
            assert time.monotonic() < deadline, "the counter does not count"
            time.sleep(0.1)
        # --rw: the rw layer with the processes, whose open files (the
        # shell may be inside `echo > /count`) must be there on restore
        ctr("containers", "checkpoint", "--task", "--rw", cid, ref)
        assert ref in ctr("images", "ls", "-q").stdout
        ctr("task", "delete", "--force", cid)
        ctr("containers", "delete", cid)
        ctr("containers", "restore", "--live", "--rw", cid, ref)
        v = wait_for(read, what="the restored rw layer's count")  # 0: mid-write
        assert v >= 10, f"the restored rw layer holds {v}"
        count_after(read, v, timeout=60)
    finally:
        ctr("task", "delete", "--force", cid, check=False)
        ctr("containers", "delete", cid, check=False)
        ctr("images", "rm", ref, check=False)
