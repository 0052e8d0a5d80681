"""Differential tests against runc (issue 22, third part): exec into a
paused container and --ignore-paused, exec --cgroup, exec's exit status
255 for its own failures.  The same command line under runc and sbxrun,
comparing the exit status and what is observed (the process's output, the
cgroup.procs files of the host).  Skipped where runc is not installed."""

import json
import os
import subprocess
import time

import pytest

from conftest import CGROUP_FSTYPES, all_cgroup_dirs, describe, fstype_of

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]

# runc with a private --root, its containers deleted at teardown
from test_runc_compat import RUNC as RUNC_BIN, runc  # noqa: E402,F401  (a fixture)
from test_runc_compat_b import _rmdirs, _start, _wait_pids, both  # noqa: E402


def _argv(name, sbx, tmp_path):
    """The command line prefix of each runtime (as the runc fixture calls it)."""
    return [RUNC_BIN, "--root", str(tmp_path / "runc-root")] if name == "runc" else sbx.argv()


# ------------------------------------------------------- paused containers


def test_exec_into_paused_container_like_runc(runc, sbx, bundle, tmp_path):
    """exec into a paused container fails with 255 and runs nothing; with
    --ignore-paused it waits (frozen) and completes once the container is
    resumed, passing on the process's status; `resume` is not blocked by
    the waiting exec."""
    seen = {}
    for name, call in both(runc, sbx):
        cid = f"pz-{name}"
        _start(call, bundle(["sleep", "60"], name=cid), cid)
        assert call("pause", cid).returncode == 0
        refused = call("exec", cid, "sh", "-c", "echo must-not-run")
        p = subprocess.Popen([*_argv(name, sbx, tmp_path), "exec", "--ignore-paused", cid, "sh", "-c",
                              "echo ran; exit 4"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.5)
            waiting = p.poll() is None
            resumed = call("resume", cid, timeout=20)
            out, err = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        seen[name] = {
            "refused": (refused.returncode, "must-not-run" in refused.stdout),
            "waiting": waiting,
            "resume": resumed.returncode,
            "ignore": (p.returncode, out.split()),
            "status": call("state", cid).returncode,
        }
        if name == "sbxrun":
            assert "paused" in refused.stderr and "--ignore-paused" in refused.stderr, describe(refused)
        call("delete", "--force", cid)
    assert seen["sbxrun"] == seen["runc"], seen
    assert seen["sbxrun"] == {"refused": (255, False), "waiting": True, "resume": 0, "ignore": (4, ["ran"]),
                              "status": 0}, seen


# ----------------------------------------------------------- exec --cgroup


def _container_cgroup_dirs(cgpath):
    """The directories of cgroup CGPATH in every mounted hierarchy."""
    return [d for top, d in all_cgroup_dirs(cgpath) if fstype_of(top) in CGROUP_FSTYPES and os.path.isdir(d)]


def _make_sub(dirs, name, only=None):
    """Sub-cgroup NAME in each of DIRS (or those whose path contains one of
    ONLY); a cpuset one gets its parent's cpus and mems."""
    made = []
    for d in dirs:
        if only and not any(f"/{c}/" in d for c in only):
            continue
        sub = os.path.join(d, name)
        os.mkdir(sub)
        made.append(sub)
        for f in ("cpuset.cpus", "cpuset.mems"):  # v1; on v2 only where the controller is enabled
            if os.path.exists(os.path.join(d, f)) and os.path.exists(os.path.join(sub, f)):
                with open(os.path.join(d, f)) as src, open(os.path.join(sub, f), "w") as dst:
                    dst.write(src.read().strip() or "\n")
    return made


CGROUP_CASES = [
    ("all", ["--cgroup", "sub"]),
    ("two-ctrls", ["--cgroup", "memory,pids:part"]),
    ("ctrl-and-ctrl", ["--cgroup", "pids:sub", "--cgroup", "memory:part"]),
    ("ctrl-and-all", ["--cgroup", "sub", "--cgroup", "memory:part"]),
    ("dotdot-inside", ["--cgroup", "memory:part/../part"]),
    ("top", ["--cgroup", "/"]),
    ("escapes", ["--cgroup", "../.."]),
    ("escapes-ctrl", ["--cgroup", "memory:../../x"]),
    ("missing", ["--cgroup", "nosuch"]),
    ("missing-in-one", ["--cgroup", "part"]),  # part exists in memory and pids only
    ("unknown-ctrl", ["--cgroup", "nosuchctrl:sub"]),
    ("two-paths", ["--cgroup", "sub", "--cgroup", "part"]),
]


def test_exec_cgroup_like_runc(runc, sbx, bundle, tmp_path):
    """exec --cgroup: the process lands in the sub-cgroup(s) named (seen in
    its own /proc/self/cgroup, through the container's cgroup namespace, and
    in the host's cgroup.procs while it runs); a path leaving the container's
    cgroup, a missing sub-cgroup, an unknown controller or two paths for all
    controllers are refused with 255 and the process does not run."""
    _v1_dir("/", "memory.limit_in_bytes")  # the cases name v1 controllers
    seen = {}
    for name, call in both(runc, sbx):
        cid = f"cg-{name}"
        b = bundle(["sleep", "60"], name=cid)
        _start(call, b, cid)
        dirs = _container_cgroup_dirs(b.config["linux"]["cgroupsPath"])
        made = _make_sub(dirs, "sub") + _make_sub(dirs, "part", only=("memory", "pids"))
        try:
            res = {}
            for case, flags in CGROUP_CASES:
                cp = call("exec", *flags, cid, "sh", "-c", "echo ran; cat /proc/self/cgroup")
                lines = cp.stdout.splitlines()
                res[case] = (cp.returncode, sorted(lines[1:]) if lines[:1] == ["ran"] else lines)
            # seen from the host: the process is in sub/ of every hierarchy
            p = subprocess.Popen([*_argv(name, sbx, tmp_path), "exec", "--cgroup", "sub", cid, "sleep", "30"],
                                 stdin=subprocess.DEVNULL)
            try:
                host = []
                for _ in range(100):
                    host = [d for d in made if d.endswith("/sub") and _procs(d)]
                    if len(host) == len(dirs):
                        break
                    time.sleep(0.05)
                res["host"] = len(host) == len(dirs) and len(dirs) > 0
            finally:
                p.kill()
                p.wait()
        finally:
            call("kill", cid, "KILL")
            call("delete", "--force", cid)
            _rmdirs(reversed(made))
        seen[name] = res
    assert seen["sbxrun"] == seen["runc"], seen
    s = seen["sbxrun"]
    for case in ("escapes", "escapes-ctrl", "missing", "missing-in-one", "unknown-ctrl", "two-paths",
                 "ctrl-and-all"):
        assert s[case] == (255, []), (case, s[case])
    assert s["all"][0] == 0 and all(ln.endswith(":/sub") for ln in s["all"][1]), s["all"]
    memory = [ln for ln in s["two-ctrls"][1] if ":memory:" in ln or ":pids:" in ln]
    assert s["two-ctrls"][0] == 0 and memory and all(ln.endswith(":/part") for ln in memory), s
    mixed = s["ctrl-and-ctrl"][1]
    assert s["ctrl-and-ctrl"][0] == 0 and mixed, s
    assert all(ln.endswith(":/part" if ":memory:" in ln else ":/sub" if ":pids:" in ln else ":/")
               for ln in mixed), mixed
    assert s["dotdot-inside"][0] == 0 and [ln for ln in s["dotdot-inside"][1] if ln.endswith(":/part")] == \
        [ln for ln in s["dotdot-inside"][1] if ":memory:" in ln], s["dotdot-inside"]
    assert s["top"][0] == 0 and all(ln.endswith(":/") for ln in s["top"][1]), s["top"]
    assert s["host"] is True


def _procs(d):
    try:
        with open(os.path.join(d, "cgroup.procs")) as f:
            return f.read().split()
    except OSError:
        return []


# ------------------------------------------------------ exec's exit status


def test_exec_failures_exit_255_like_runc(runc, sbx, bundle, tmp_path):
    """A failure of exec itself exits 255 (so that a caller tells it from the
    process's status), a command line that does not parse 1, and the
    process's own status passes through, under both runtimes."""
    cases = {
        "status": (["sh", "-c", "exit 3"], None),
        "signal": (["sh", "-c", "kill -9 $$"], None),
        "missing-container": (["true"], "nosuch-ctr"),
        "bad-pid-file": (["--pid-file", str(tmp_path / "no" / "dir" / "pid"), "{cid}", "true"], ""),
        "no-command": (["{cid}"], ""),
        "missing-program": (["{cid}", "/no/such/program"], ""),
        "bad-cwd": (["--cwd", "/no/such/dir", "{cid}", "true"], ""),
        "bad-env": (["-e", "NOEQUALS", "{cid}", "true"], ""),
        "bad-process-file": (["-p", str(tmp_path / "no-such.json"), "{cid}"], ""),
        "process-file-and-args": (["-p", str(tmp_path / "no-such.json"), "{cid}", "extra"], ""),
        "bad-cgroup": (["--cgroup", "nosuch", "{cid}", "true"], ""),
        "unknown-flag": (["--no-such-flag", "{cid}", "true"], ""),
        "no-id": ([], ""),
    }
    seen = {}
    for name, call in both(runc, sbx):
        cid = f"rc-{name}"
        _start(call, bundle(["sleep", "60"], name=cid), cid)
        res = {}
        for case, (args, target) in cases.items():
            if target is None:  # a command in the container
                argv = [cid, *args]
            elif target:  # another container
                argv = [target, *args]
            else:
                argv = [a.replace("{cid}", cid) for a in args]
            cp = call("exec", *argv)
            res[case] = cp.returncode
            if name == "sbxrun" and cp.returncode not in (0, 3, 137):
                assert cp.stderr.strip(), (case, describe(cp))
        res["pid-file-left"] = os.path.exists(tmp_path / "no")
        call("delete", "--force", cid)
        seen[name] = res
    assert seen["sbxrun"] == seen["runc"], seen
    s = seen["sbxrun"]
    assert (s["status"], s["signal"], s["unknown-flag"], s["no-id"]) == (3, 137, 1, 1), s
    assert all(s[c] == 255 for c in cases if c not in ("status", "signal", "unknown-flag", "no-id")), s


# ----------------------------------------------------------------- update


def _v1_dir(cgpath, probe):
    """The directory of cgroup CGPATH in the v1 hierarchy whose root has
    file PROBE (cpu.cfs_quota_us, memory.memsw.limit_in_bytes...)."""
    for top, d in all_cgroup_dirs(cgpath):
        if fstype_of(top) == "cgroup" and os.path.exists(os.path.join(top, probe)):
            return d
    pytest.skip(f"no cgroup v1 hierarchy with {probe} on this host")


def _read(d, f):
    with open(os.path.join(d, f)) as fh:
        return int(fh.read())


def test_update_cpu_period_and_quota_below_a_limited_parent_like_runc(runc, sbx, bundle, cgroup_parent):
    """The parent cgroup allows one CPU (quota 100000 per 100000); the
    container has 0.6 CPU as 600000 per 1000000.  Moving to 60000 per
    100000 fails if the period goes first (600000 per 100000 is 6 CPUs):
    the update succeeds, and so does the way back, with both runtimes."""
    parent = _v1_dir(str(cgroup_parent), "cpu.cfs_quota_us")
    os.makedirs(parent, exist_ok=True)
    with open(os.path.join(parent, "cpu.cfs_quota_us"), "w") as f:
        f.write("100000")
    seen = {}
    for name, call in both(runc, sbx):
        cid = f"cpuq-{name}"
        b = bundle(["sleep", "60"], name=cid)
        b.config["linux"].setdefault("resources", {})["cpu"] = {"period": 1000000, "quota": 600000}
        b.write()
        _start(call, b, cid)
        d = os.path.join(parent, cid)
        res = [(_read(d, "cpu.cfs_period_us"), _read(d, "cpu.cfs_quota_us"))]
        for period, quota in ((100000, 60000), (1000000, 600000)):
            cp = call("update", "--cpu-period", str(period), "--cpu-quota", str(quota), cid)
            res.append((cp.returncode == 0, _read(d, "cpu.cfs_period_us"), _read(d, "cpu.cfs_quota_us")))
        # 2 CPUs under a parent with one: refused by the kernel
        res.append(call("update", "--cpu-period", "100000", "--cpu-quota", "200000", cid).returncode)
        call("delete", "--force", cid)
        seen[name] = res
    assert seen["sbxrun"] == seen["runc"], seen
    assert seen["sbxrun"] == [(1000000, 600000), (True, 100000, 60000), (True, 1000000, 600000), 1], seen


def test_update_memory_minus_one_is_unlimited_like_runc(runc, sbx, bundle):
    """--memory -1 on a container created with memory and swap limits:
    memory and memory+swap become unlimited (swap, not given, follows), and
    a limit can be set again afterwards."""
    unlimited = 1 << 62
    seen = {}
    for name, call in both(runc, sbx):
        cid = f"mem-{name}"
        b = bundle(["sleep", "60"], name=cid)
        b.config["linux"].setdefault("resources", {})["memory"] = {"limit": 256 << 20, "swap": 512 << 20}
        b.write()
        d = _v1_dir(b.config["linux"]["cgroupsPath"], "memory.memsw.limit_in_bytes")
        _start(call, b, cid)

        def now():
            return (_read(d, "memory.limit_in_bytes") >= unlimited and "max" or _read(d, "memory.limit_in_bytes"),
                    _read(d, "memory.memsw.limit_in_bytes") >= unlimited and "max"
                    or _read(d, "memory.memsw.limit_in_bytes"))
        res = [now()]
        for args in (["--memory", "-1"], ["--memory", "128m"]):
            cp = call("update", *args, cid)
            res.append((cp.returncode, now()))
        # unlimited memory but a memory+swap limit: the kernel refuses it
        res.append(call("update", "--memory", "-1", "--memory-swap", "1g", cid).returncode)
        call("delete", "--force", cid)
        seen[name] = res
    assert seen["sbxrun"] == seen["runc"], seen
    assert seen["sbxrun"] == [(256 << 20, 512 << 20), (0, ("max", "max")), (0, (128 << 20, "max")), 1], seen


def test_update_cpu_rt_like_runc(runc, sbx, bundle):
    """--cpu-rt-period and --cpu-rt-runtime write cpu.rt_period_us and
    cpu.rt_runtime_us (v1); a runtime the parents have not been given is
    refused by the kernel under both runtimes, and nothing changes."""
    seen = {}
    for name, call in both(runc, sbx):
        cid = f"rt-{name}"
        b = bundle(["sleep", "60"], name=cid)
        d = _v1_dir(b.config["linux"]["cgroupsPath"], "cpu.rt_period_us")
        _start(call, b, cid)
        res = []
        for args in (["--cpu-rt-period", "500000", "--cpu-rt-runtime", "0"], ["--cpu-rt-period", "800000"],
                     ["--cpu-rt-runtime", "1000"]):
            cp = call("update", *args, cid)
            res.append((cp.returncode == 0, _read(d, "cpu.rt_period_us"), _read(d, "cpu.rt_runtime_us")))
            if name == "sbxrun" and cp.returncode:
                assert "realtimeRuntime" in cp.stderr, describe(cp)
        call("delete", "--force", cid)
        seen[name] = res
    assert seen["sbxrun"] == seen["runc"], seen
    assert seen["sbxrun"] == [(True, 500000, 0), (True, 800000, 0), (False, 800000, 0)], seen


# ------------------------------------------------------------ kill --all


def _status(call, cid):
    cp = call("state", cid)
    return json.loads(cp.stdout)["status"] if cp.returncode == 0 else None


@pytest.mark.parametrize("flag", ["--all", "-a"])
def test_kill_all_signals_every_process_like_runc(runc, sbx, bundle, flag):
    """`kill ID TERM` reaches only the init (a shell as pid 1, which ignores
    it): nothing dies.  `kill --all ID TERM` reaches every process of the
    container's cgroup, exec'd ones and one in a sub-cgroup included: the
    sleeps die, so the shell's `wait` returns and the container stops."""
    seen = {}
    for name, call in both(runc, sbx):
        cid = f"ka-{name}"
        b = bundle(["sh", "-c", "sleep 60 & sleep 61 & wait"], name=cid)
        _start(call, b, cid)
        dirs = _container_cgroup_dirs(b.config["linux"]["cgroupsPath"])
        v1 = any("/memory/" in d for d in dirs)  # else pure v2: a path alone
        made = _make_sub(dirs, "sub", only=("memory",) if v1 else None)
        try:
            assert call("exec", "-d", cid, "sleep", "62").returncode == 0
            assert call("exec", "-d", "--cgroup", "memory:sub" if v1 else "sub", cid, "sleep",
                        "63").returncode == 0
            before = len(_wait_pids(call, cid, 5))
            one = call("kill", cid, "TERM").returncode
            time.sleep(0.5)
            after_one = len(_wait_pids(call, cid, 1))
            every = call("kill", flag, cid, "TERM").returncode
            for _ in range(200):
                if _status(call, cid) == "stopped":
                    break
                time.sleep(0.05)
            stopped = _status(call, cid)
            left = [d for d in made if _procs(d)]
        finally:
            call("delete", "--force", cid)
            _rmdirs(reversed(made))
        seen[name] = (before, one, after_one, every, stopped, left)
    assert seen["sbxrun"] == seen["runc"], seen
    assert seen["sbxrun"] == (5, 0, 5, 0, "stopped", []), seen


# ------------------------------------------------------------------ list


def test_list_quiet_and_json_like_runc(runc, sbx, bundle):
    """`list -q` prints the IDs, sorted, also with `--format json`; `list
    --format json` prints null without containers, and with them one object
    per container with runc's fields (annotations only when the config has
    some) and the same values as `state`."""
    seen = {}
    for name, call in both(runc, sbx):
        empty = call("list", "--format", "json")
        empty_q = call("list", "-q")
        b = bundle(["sleep", "60"], name=f"ls-{name}")
        _start(call, b, f"ls-b-{name}")
        assert call("create", "--bundle", b, f"ls-a-{name}").returncode == 0
        ba = bundle(["sleep", "60"], name=f"lsann-{name}")
        ba.config["annotations"] = {"org.example.k": "v"}
        ba.write()
        assert call("create", "--bundle", ba, f"ls-c-{name}").returncode == 0
        quiet = call("list", "-q")
        quiet_json = call("list", "-q", "--format", "json")
        full = call("list", "--format", "json")
        listed = json.loads(full.stdout)
        states = {cid: json.loads(call("state", cid).stdout) for cid in quiet.stdout.split()}
        seen[name] = {
            "empty": (empty.returncode, empty.stdout.strip(), empty_q.returncode, empty_q.stdout),
            "quiet": [i.replace(name, "X") for i in quiet.stdout.split()],
            "quiet_json": quiet_json.stdout == quiet.stdout,
            "ids": [e["id"].replace(name, "X") for e in listed],
            "keys": [sorted(e) for e in listed],
            "status": [e["status"] for e in listed],
            "annotations": [e.get("annotations") for e in listed],
            "same_as_state": all(e[k] == states[e["id"]][k] for e in listed
                                 for k in ("pid", "status", "bundle", "rootfs", "created")),
        }
        for cid in quiet.stdout.split():
            call("delete", "--force", cid)
    assert seen["sbxrun"] == seen["runc"], seen
    s = seen["sbxrun"]
    assert s["empty"] == (0, "null", 0, "")
    assert s["quiet"] == s["ids"] == ["ls-a-X", "ls-b-X", "ls-c-X"] and s["quiet_json"]
    base = ["bundle", "created", "id", "ociVersion", "owner", "pid", "rootfs", "status"]
    assert s["keys"] == [base, base, sorted(base + ["annotations"])], s["keys"]
    assert s["status"] == ["created", "running", "created"] and s["same_as_state"]
    assert s["annotations"] == [None, None, {"org.example.k": "v"}]
