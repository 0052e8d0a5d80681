"""Differential tests against runc (issue 22, second part): the same command
line under runc and sbxrun, comparing exit status and what is observed
(ps output, cgroup refusals, a read-only /dev with mounts below it, the
owner of the terminal).  Skipped where runc is not installed."""

import contextlib
import json
import pty
import select
import signal
import os
import subprocess
import time

import pytest

from conftest import CGROUP_FSTYPES, all_cgroup_dirs, describe, fstype_of

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]

# runc with a private --root, its containers deleted at teardown
from test_runc_compat import RUNC as RUNC_BIN, runc  # noqa: E402,F401  (a fixture)


def both(runc, sbx):
    return (("runc", runc), ("sbxrun", sbx))


def _start(call, b, cid):
    cp = call("create", "--bundle", b, cid)
    assert cp.returncode == 0, describe(cp)
    cp = call("start", cid)
    assert cp.returncode == 0, describe(cp)


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def _wait_pids(call, cid, n, comms=None):
    """The container's pids once there are N of them (and, with COMMS, once
    their commands are those: a forked child shows its parent's until it
    has exec'd)."""
    for _ in range(200):
        cp = call("ps", "--format", "json", cid)
        pids = (json.loads(cp.stdout) or []) if cp.returncode == 0 else []
        if len(pids) >= n and (comms is None or sorted(_comm(p) or "" for p in pids) == sorted(comms)):
            return pids
        time.sleep(0.05)
    raise AssertionError(f"{cid}: fewer than {n} processes: {describe(cp)}")


# --------------------------------------------------------------------- ps


def _column(out, name):
    """The values of column NAME (the last column takes the rest of the line)."""
    lines = out.splitlines()
    head = lines[0].split()
    i = head.index(name)
    last = i == len(head) - 1
    return sorted(ln.split(None, i)[i] if last else ln.split()[i] for ln in lines[1:] if ln.strip())


def test_ps_passes_its_arguments_to_ps_like_runc(runc, sbx, bundle):
    """`ps ID`, `ps ID -o pid,comm`, `ps ID -e -x`, `--format json`, and a
    ps command line without a PID column: same status, header and rows."""
    seen = {}
    for name, call in both(runc, sbx):
        b = bundle(["sh", "-c", "sleep 60 & sleep 61; true"], name=f"ps-{name}")
        cid = f"ps-{name}"
        _start(call, b, cid)
        pids = _wait_pids(call, cid, 3, ["sh", "sleep", "sleep"])
        default = call("ps", cid)
        comm = call("ps", cid, "-o", "pid,comm")
        ex = call("ps", cid, "-e", "-x")
        nopid = call("ps", cid, "-o", "comm")
        badopt = call("ps", cid, "--no-such-ps-option")
        seen[name] = {
            "json": sorted(pids) == sorted(json.loads(call("ps", "--format", "json", cid).stdout)),
            "njson": len(pids),
            "status": [cp.returncode for cp in (default, comm, ex)],
            "default_head": default.stdout.splitlines()[0].split(),
            "default_cmd": _column(default.stdout, "CMD"),
            "default_pids": sorted(int(p) for p in _column(default.stdout, "PID")) == sorted(pids),
            "comm": comm.stdout.splitlines()[0].split() + _column(comm.stdout, "COMMAND"),
            "ex_head": ex.stdout.splitlines()[0].split(),
            "ex_cmd": _column(ex.stdout, "COMMAND"),
            "nopid_fails": nopid.returncode != 0,
            "badopt_fails": badopt.returncode != 0,
        }
        call("delete", "--force", cid)
    assert seen["sbxrun"] == seen["runc"], seen
    s = seen["sbxrun"]
    assert s["default_head"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert s["default_cmd"] == ["sh -c sleep 60 & sleep 61; true", "sleep 60", "sleep 61"]
    assert s["comm"] == ["PID", "COMMAND", "sh", "sleep", "sleep"]
    assert s["njson"] == 3 and s["json"] and s["default_pids"]
    assert s["status"] == [0, 0, 0] and s["nopid_fails"] and s["badopt_fails"]


# --------------------------------------------------------------- cgroups


def _freezer_dir(cgpath):
    """(directory, file, frozen value) of the freezer for cgroup path CGPATH:
    the v1 freezer hierarchy, else cgroup v2's cgroup.freeze."""
    for top, d in all_cgroup_dirs(cgpath):
        if os.path.exists(os.path.join(top, "freezer.state")) or top.rstrip("/").endswith("/freezer"):
            return d, "freezer.state", ("FROZEN", "THAWED")
    for top, d in all_cgroup_dirs(cgpath):
        if os.path.exists(os.path.join(top, "cgroup.subtree_control")):
            return d, "cgroup.freeze", ("1", "0")
    pytest.skip("no freezer on this host")


def _rmdirs(dirs):
    """Remove the cgroups a test made itself (a runtime may have already)."""
    for d in dirs:
        for _ in range(100):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


def test_frozen_cgroup_is_refused_like_runc(runc, sbx, bundle, cgroup_parent):
    """A cgroupsPath naming a frozen cgroup: create fails at once, with
    either runtime, instead of hanging; nothing is left in the cgroup."""
    seen = {}
    for name, call in both(runc, sbx):
        b = bundle(["true"], name=f"frz-{name}")
        cgpath = b.config["linux"]["cgroupsPath"]
        d, f, (frozen, thawed) = _freezer_dir(cgpath)
        os.makedirs(d)
        with open(os.path.join(d, f), "w") as fh:
            fh.write(frozen)
        try:
            cp = call("create", "--bundle", b, f"frz-{name}", timeout=30)
            seen[name] = (cp.returncode != 0, call("list", "-q").stdout.split())
            if name == "sbxrun":
                assert "frozen" in cp.stderr, describe(cp)
        finally:
            with open(os.path.join(d, f), "w") as fh:
                fh.write(thawed)
            call("delete", "--force", f"frz-{name}")
            _rmdirs([d])
    assert seen["sbxrun"] == seen["runc"] == (True, []), seen


def test_frozen_ancestor_is_refused(sbx, bundle, cgroup_parent):
    """A cgroupsPath two levels below a frozen cgroup, its parent not made
    yet (sbxrun then skips looking for the parent and the leaf, which
    cannot exist): still refused at once, nothing left."""
    b = bundle(["true"])
    cgpath = b.config["linux"]["cgroupsPath"]
    d, f, (frozen, thawed) = _freezer_dir(cgpath)
    b.config["linux"]["cgroupsPath"] = cgpath + "/newparent/leaf"
    b.write()
    os.makedirs(d)
    with open(os.path.join(d, f), "w") as fh:
        fh.write(frozen)
    cid = sbx.new_id()
    try:
        cp = sbx("create", "--bundle", b, cid, timeout=30)
        assert cp.returncode != 0 and "frozen" in cp.stderr, describe(cp)
        assert cid not in sbx.list_ids()
        assert not os.path.exists(os.path.join(d, "newparent")), os.listdir(d)
    finally:
        with open(os.path.join(d, f), "w") as fh:
            fh.write(thawed)
        sbx("delete", "--force", cid)
        _rmdirs([os.path.join(d, "newparent", "leaf"), os.path.join(d, "newparent"), d])


def test_non_empty_cgroup_warns_like_runc(runc, sbx, bundle, cgroup_parent):
    """A cgroupsPath naming a cgroup that has a process already: create
    succeeds with a warning about it, as runc's."""
    seen = {}
    for name, call in both(runc, sbx):
        b = bundle(["true"], name=f"busy-{name}")
        cgpath = b.config["linux"]["cgroupsPath"]
        squatter = subprocess.Popen(["sleep", "60"])
        made = []
        try:
            for top, d in all_cgroup_dirs(cgpath):
                if fstype_of(top) in CGROUP_FSTYPES:
                    os.makedirs(d, exist_ok=True)
                    made.append(d)
                    with contextlib.suppress(OSError):  # cpuset: no cpus yet
                        with open(os.path.join(d, "cgroup.procs"), "w") as fh:
                            fh.write(str(squatter.pid))
            cp = call("create", "--bundle", b, f"busy-{name}")
            seen[name] = (cp.returncode, "not empty" in cp.stderr)
            call("delete", "--force", f"busy-{name}")
        finally:
            squatter.kill()
            squatter.wait()
            _rmdirs(made)
    assert seen["sbxrun"] == seen["runc"] == (0, True), seen


# ------------------------------------------------------------ read-only /dev


def test_read_only_dev_with_mounts_below_like_runc(runc, sbx, bundle):
    """/dev a read-only tmpfs with /dev/pts, /dev/shm, /dev/mqueue below:
    the container runs, the submounts and device nodes are there, /dev
    itself is read-only."""
    script = ("cut -d' ' -f5,6 /proc/self/mountinfo | grep '^/dev' | sed 's/,.*//' | sort;"
              " echo x > /dev/null && echo null-ok; ls /dev/pts/ptmx >/dev/null && echo ptmx-ok;"
              " touch /dev/newfile 2>/dev/null && echo dev-writable || echo dev-ro;"
              " touch /dev/shm/f && echo shm-writable")
    seen = {}
    for name, call in both(runc, sbx):
        b = bundle(["sh", "-c", script], name=f"rodev-{name}")
        for m in b.config["mounts"]:
            if m["destination"] == "/dev":
                m["options"] = [*m.get("options", []), "ro"]
        b.write()
        cp = call("run", "--bundle", b, f"rodev-{name}")
        seen[name] = (cp.returncode, cp.stdout.splitlines())
        call("delete", "--force", f"rodev-{name}")
    assert seen["sbxrun"] == seen["runc"], seen
    code, out = seen["sbxrun"]
    assert code == 0
    for line in ("/dev ro", "/dev/pts rw", "/dev/shm rw", "/dev/mqueue rw", "null-ok", "ptmx-ok", "dev-ro",
                 "shm-writable"):
        assert line in out, out


# ---------------------------------------------------------- terminal owner


def _in_pty(argv, timeout=30):
    """Run ARGV with a terminal of its own as controlling terminal and
    stdio (runc opens /dev/tty); (exit status, what it wrote)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(argv[0], [str(a) for a in argv])
        finally:
            os._exit(127)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the other side is closed
                    break
                if not chunk:
                    break
                out += chunk
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def _tty_owner(out):
    """(mode, uid, gid) of `ls -ln $(tty)` output, and what tty printed."""
    lines = [ln.strip() for ln in out.replace("\r", "").splitlines() if ln.strip()]
    assert len(lines) == 2, out
    f = lines[1].split()
    return lines[0].startswith("/dev/pts/"), f[0], f[2], f[3]


def test_terminal_belongs_to_the_user_like_runc(runc, sbx, bundle, tmp_path):
    """process.terminal with process.user 1000:1000: the pty slave is owned
    by uid 1000 and the devpts mount's gid= group (tty, 5), in run and in
    exec --tty, under both runtimes."""
    script = "tty; ls -ln $(tty)"
    argv = {"runc": [RUNC_BIN, "--root", tmp_path / "runc-root"], "sbxrun": sbx.argv()}  # as the runc fixture
    seen = {}
    for name, call in both(runc, sbx):
        b = bundle(["sh", "-c", script], name=f"tty-{name}", terminal=True)
        b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
        b.write()
        rc, out = _in_pty([*argv[name], "run", "--bundle", b, f"tty-{name}"])
        assert rc == 0, out
        run_owner = _tty_owner(out)
        call("delete", "--force", f"tty-{name}")

        b2 = bundle(["sleep", "60"], name=f"ttyx-{name}")
        _start(call, b2, f"ttyx-{name}")
        rc, out = _in_pty([*argv[name], "exec", "--tty", "--user", "1000:1000", f"ttyx-{name}", "sh", "-c",
                           script])
        assert rc == 0, out
        seen[name] = (run_owner, _tty_owner(out))
        call("delete", "--force", f"ttyx-{name}")
    assert seen["sbxrun"] == seen["runc"], seen
    assert seen["sbxrun"][0] == seen["sbxrun"][1] == (True, "crw--w----", "1000", "5"), seen
