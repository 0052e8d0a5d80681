"""cgroup features on real kernels with real limits: pause / resume, update,
events (stats and OOM), memory / pids / cpu limits, device rules, kill --all
and delete when the cgroup is gone.

Every test works on cgroup v1 (this host: hybrid, v1 controllers) and on a
pure cgroup v2 host; tests/vm/run-v2.sh runs this file in a v2 guest.
Cgroup files are looked up in whichever hierarchy carries them
(cgroup_dirs), so the same assertions read memory.limit_in_bytes on v1 and
memory.max on v2.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import cgroup_dirs, describe
from conftest import wait_for as conftest_wait_for

pytestmark = [
    pytest.mark.needs_root,
    pytest.mark.needs_cmd("run", "create", "start", "delete", "pause", "resume", "update", "events"),
]

V2 = os.path.isfile("/sys/fs/cgroup/cgroup.controllers")
MiB = 1 << 20


@pytest.fixture(autouse=True)
def _drop_seccomp_cache(sbx):
    """The runtime's seccomp compile cache lives in <--root>/.seccomp-cache;
    it is not container state, which the sbx teardown looks for."""
    yield
    shutil.rmtree(sbx.root / ".seccomp-cache", ignore_errors=True)


# ---------------------------------------------------------------------------
# helpers


def cg_path(b):
    return b.config["linux"]["cgroupsPath"]


def cg_file(b, name):
    """The file NAME of bundle B's cgroup, in the hierarchy that has it."""
    for d in cgroup_dirs(cg_path(b)):
        f = os.path.join(d, name)
        if os.path.exists(f):
            return f
    pytest.fail(f"cgroup {cg_path(b)} has no {name} in any hierarchy")


def cg_read(b, name):
    with open(cg_file(b, name)) as f:
        return f.read().strip()


def cg_procs(b):
    """Pids in the container's cgroup (the pids or unified hierarchy)."""
    name = "cgroup.procs"
    for d in cgroup_dirs(cg_path(b)):
        if V2 or "/pids/" in d:
            try:
                with open(os.path.join(d, name)) as f:
                    return [int(p) for p in f.read().split()]
            except FileNotFoundError:
                return []
    pytest.fail("no pids hierarchy")


def cpu_usage_ns(b):
    if V2:
        m = re.search(r"^usage_usec (\d+)$", cg_read(b, "cpu.stat"), re.M)
        return int(m.group(1)) * 1000
    return int(cg_read(b, "cpuacct.usage"))


def set_resources(b, **res):
    b.config.setdefault("linux", {})["resources"] = res
    b.write()


def writable_root(b):
    b.config["root"]["readonly"] = False
    b.write()


def wait_for(pred, timeout=20.0, what="condition"):
    """conftest's, with this file's longer default (slow v2 guest)."""
    return conftest_wait_for(pred, timeout=timeout, what=what, interval=0.02)


def read_counter(b):
    """The number the counter script keeps writing to /tmp/cnt (atomically,
    through a rename)."""
    try:
        return int((b.rootfs / "tmp/cnt").read_text())
    except (FileNotFoundError, ValueError):
        return 0


COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /tmp/cnt.new; mv /tmp/cnt.new /tmp/cnt; done"


def saved_resources(sbx, cid):
    return json.loads((sbx.root / cid / "config.json").read_text())["linux"]["resources"]


def swap_enabled():
    with open("/proc/swaps") as f:
        return len(f.read().splitlines()) > 1


def memory_limit(limit):
    """linux.resources.memory for LIMIT, with swap capped too when the host
    swaps (so that exceeding the limit OOMs instead of swapping)."""
    return {"limit": limit, **({"swap": limit} if swap_enabled() else {})}


def free_char_major():
    """A character major no driver registered: opening a node of it fails
    with ENXIO once the device cgroup lets the open through."""
    used, section = set(), None
    with open("/proc/devices") as f:
        for line in f:
            if line.strip().endswith("devices:"):
                section = line.split()[0]
            elif section == "Character" and line.split():
                used.add(int(line.split()[0]))
    for major in range(240, 255):
        if major not in used:
            return major
    pytest.skip("no free character major in 240-254")


def alive(pid):
    """PID exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def has_anon_fd(pid, kinds):
    """Does PID hold an fd of one of the anon inode KINDS (eventfd, inotify)?"""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in kinds:
                return True
        except OSError:
            pass
    return False


# ---------------------------------------------------------------------------
# pause / resume


def test_pause_resume(sbx, bundle):
    b = bundle(["sh", "-c", COUNTER])
    writable_root(b)
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    cp = sbx.fail("pause", cid)
    assert "not running" in cp.stderr, describe(cp)
    sbx.ok("start", cid)
    wait_for(lambda: read_counter(b) > 0, what="the counter to start")

    sbx.ok("pause", cid)
    assert sbx.state(cid)["status"] == "paused"
    cp = sbx.fail("pause", cid)
    assert "already paused" in cp.stderr, describe(cp)
    a = read_counter(b)
    time.sleep(0.4)
    assert read_counter(b) == a, "the counter advanced while paused"
    assert V2 or cg_read(b, "freezer.state") == "FROZEN"

    sbx.ok("resume", cid)
    assert sbx.state(cid)["status"] == "running"
    cp = sbx.fail("resume", cid)
    assert "not paused" in cp.stderr, describe(cp)
    wait_for(lambda: read_counter(b) > a, what="the counter to advance after resume")

    # a paused container can be killed and deleted
    sbx.ok("pause", cid)
    sbx.ok("delete", "--force", cid)
    assert cid not in sbx.list_ids()


# ---------------------------------------------------------------------------
# memory, pids, cpu


def test_memory_oom_kill_and_event(sbx, bundle):
    limit = 16 * MiB
    b = bundle(["tail", "/dev/zero"])  # buffers one endless "line"
    set_resources(b, memory=memory_limit(limit))
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    assert cg_read(b, "memory.max" if V2 else "memory.limit_in_bytes") == str(limit)

    ev = sbx.popen("events", "--interval", "1h", cid)
    # start only once events watches (eventfd on v1, inotify on v2)
    wait_for(
        lambda: has_anon_fd(ev.pid, ("anon_inode:[eventfd]", "anon_inode:inotify")) or ev.poll() is not None,
        what="events to register for OOM notifications",
    )
    assert ev.poll() is None, ev.communicate()
    sbx.ok("start", cid)
    out, err = ev.communicate(timeout=60)
    assert ev.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert {"type": "oom", "id": cid} in events, out
    st = sbx.wait_status(cid, "stopped")
    assert st["pid"] == 0


def test_pids_limit(sbx, bundle):
    b = bundle(["sh", "-c", "for i in 1 2 3 4 5 6; do sleep 30 & done; echo spawned"])
    set_resources(b, pids={"limit": 4})
    cp = sbx("run", "--bundle", b, sbx.new_id())
    # the shell and three sleeps fit; the fourth fork fails
    assert re.search(r"can't fork|Resource temporarily unavailable", cp.stderr), describe(cp)


def test_tiny_limits_still_run_true(sbx, bundle):
    """512 KiB of memory and pids.max = 1: the runtime's own work must not be
    charged to the container, only the init's."""
    b = bundle(["/bin/true"])
    set_resources(b, memory={"limit": 512 * 1024}, pids={"limit": 1})
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)


# Issue 16's bar, on the hybrid hosts it was set for.  The guests (pure v1
# or v2, Debian's 6.1 kernel under emulation) keep issue 14's 256 KiB: there
# a per-CPU charge batch (64 pages) taken at the wrong moment can exceed
# 192 KiB once in tens of runs under load.
HYBRID = not V2 and os.path.isfile("/sys/fs/cgroup/unified/cgroup.controllers")
TRUE_LIMIT = (192 if HYBRID else 256) * 1024


@pytest.mark.parametrize("spec", ["sbxrun", "runc"])
def test_true_runs_under_192k_every_time(sbx, bundle, spec):
    """The bar of issue 16: /bin/true under a 192 KiB memory limit (256 KiB
    in the guests, TRUE_LIMIT), 10 of 10 times, with sbxrun's and runc's
    default configs (what the init charges to the container before exec
    must stay well below that)."""
    b = bundle(["/bin/true"])
    if spec == "runc":
        if not shutil.which("runc"):
            pytest.skip("runc is not installed")
        keep = {"root": b.config["root"], "cgroupsPath": b.config["linux"]["cgroupsPath"]}
        b.config_path.unlink()
        cp = subprocess.run(["runc", "spec", "--bundle", str(b.path)], capture_output=True, text=True)
        assert cp.returncode == 0, cp.stderr
        b.reload()
        b.config["root"] = keep["root"]
        b.config["linux"]["cgroupsPath"] = keep["cgroupsPath"]
        b.config["process"].update(args=["/bin/true"], terminal=False)
    set_resources(b, memory={"limit": TRUE_LIMIT})
    fails = [cp for cp in (sbx("run", "--bundle", b, sbx.new_id()) for _ in range(10)) if cp.returncode != 0]
    assert not fails, f"{len(fails)} of 10 failed; first:\n{describe(fails[0])}"
    # held below one charge batch during setup, the configured limit once created
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    try:
        assert cg_read(b, "memory.max" if V2 else "memory.limit_in_bytes") == str(TRUE_LIMIT)
    finally:
        sbx.ok("delete", "--force", cid)


def test_cgroup_placement_and_namespace(sbx, bundle):
    """The init is in the container's cgroup once created and once
    started, and its cgroup namespace is rooted there."""
    b = bundle(["sh", "-c", "cat /proc/self/cgroup > /tmp/cg; sleep 100"])
    writable_root(b)
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    assert cg_procs(b) == [pid]
    sbx.ok("start", cid)
    view = wait_for(lambda: (b.rootfs / "tmp/cg").exists() and (b.rootfs / "tmp/cg").read_text())
    # the file has its text before cat has exited (seen under TCG): the init
    # is alone once cat is gone and sh has become sleep
    wait_for(lambda: cg_procs(b) == [pid], what=f"only the init {pid} in the cgroup")
    lines = view.split()
    assert lines and all(line.endswith(":/") for line in lines), view
    if V2:
        assert lines == ["0::/"], view


def _stopped(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def _cgroup_lines(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return [line.rstrip("\n").split(":", 2) for line in f]


@pytest.mark.skipif(V2, reason="pure v2: one cgroup, made before the clone; the init is born in it")
def test_v1_cgroups_are_made_while_the_init_mounts(sbx, bundle, tmp_path):
    """Late placement (cgroup.h): on v1 and hybrid hosts the runtime makes
    the v1 cgroups after the clone, while the init mounts its rootfs.
    With the runtime stopped right after making them, the init exists, has
    mounted /proc and /sys but not /sys/fs/cgroup, and is in none of its v1
    cgroups yet; let go, it is in all of them, its cgroup namespace rooted
    there, as without the overlap."""
    b = bundle(["sh", "-c", "cat /proc/self/cgroup > /tmp/cg; sleep 100"])
    writable_root(b)
    cid = sbx.new_id()
    errfile = tmp_path / "create.err"  # a file: the created init holds its stderr
    with open(errfile, "w") as ef:
        p = subprocess.Popen(sbx.argv("create", "--bundle", b, cid), stdout=subprocess.DEVNULL, stderr=ef,
                             env={**os.environ, "SBXRUN_TEST_STOP_AT": "create:cgroup"})
    try:
        wait_for(lambda: _stopped(p.pid), what="create stopped at create:cgroup")
        pid = json.loads((sbx.root / cid / "status.json").read_text())["pid"]
        rootfs = str(b.rootfs.resolve())

        def mounted():
            with open(f"/proc/{pid}/mountinfo") as f:
                return {line.split()[4] for line in f}

        # the init waits for its cgroups, its mounts before the cgroup one made
        wait_for(lambda: rootfs + "/sys" in mounted(), what="the init's /sys mount")
        points = mounted()
        assert rootfs + "/proc" in points and rootfs + "/sys/fs/cgroup" not in points, sorted(points)
        v1 = [(c, path) for _, c, path in _cgroup_lines(pid) if c]
        assert v1 and all(not path.endswith(cg_path(b)) for _, path in v1), v1
    finally:
        os.kill(p.pid, signal.SIGCONT)
        p.wait(timeout=60)
    assert p.returncode == 0, errfile.read_text()
    try:
        lines = _cgroup_lines(pid)
        # the v1 hierarchies (a pure v1 host may show an unmounted "0::/")
        assert all(path == cg_path(b) for _, c, path in lines if c), "\n".join(":".join(x) for x in lines)
        assert cg_procs(b) == [pid]
        sbx.ok("start", cid)
        view = wait_for(lambda: (b.rootfs / "tmp/cg").exists() and (b.rootfs / "tmp/cg").read_text())
        assert all(line.endswith(":/") for line in view.split()), view
    finally:
        sbx("delete", "--force", cid)


def test_cpu_quota(sbx, bundle):
    b = bundle(["sh", "-c", "while :; do :; done"])
    set_resources(b, cpu={"quota": 20000, "period": 100000})
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    time.sleep(0.3)
    u0, t0 = cpu_usage_ns(b), time.monotonic()
    time.sleep(1.0)
    u1, t1 = cpu_usage_ns(b), time.monotonic()
    share = (u1 - u0) / ((t1 - t0) * 1e9)
    # the quota caps the share; a busy host (make -j check) may lower it
    assert 0.05 < share < 0.3, f"CPU share {share:.2f} with a 20% quota"
    # A starved container (other load on the host) may not reach its quota
    # in a given period: give it a few seconds to be throttled once.
    deadline = time.monotonic() + 10
    while True:
        data = sbx.json("events", "--stats", cid)["data"]
        if data["cpu"]["throttling"]["throttledPeriods"] > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert data["cpu"]["throttling"]["throttledPeriods"] > 0, data["cpu"]


# ---------------------------------------------------------------------------
# devices


def test_device_rules(sbx, bundle):
    major = free_char_major()
    b = bundle(
        [
            "sh",
            "-c",
            "echo x > /dev/null && echo null-ok;"
            "echo denied: $(cat /dev/denied 2>&1);"
            "echo readable: $(cat /dev/readonly 2>&1);"
            "echo write: $( (echo x > /dev/readonly) 2>&1);"
            "echo block: $(head -c1 /dev/sda-test 2>&1)",
        ]
    )
    with b.edit() as c:
        c["linux"]["devices"] = [
            {"path": "/dev/denied", "type": "c", "major": major, "minor": 0, "fileMode": 0o666},
            {"path": "/dev/readonly", "type": "c", "major": major, "minor": 1, "fileMode": 0o666},
            {"path": "/dev/sda-test", "type": "b", "major": 8, "minor": 0, "fileMode": 0o666},
        ]
        c["linux"]["resources"] = {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": major, "minor": 1, "access": "r"},
            ]
        }
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    lines = dict(line.split(":", 1) for line in cp.stdout.splitlines() if ":" in line)
    assert "null-ok" in cp.stdout, describe(cp)
    assert "Operation not permitted" in lines["denied"], describe(cp)
    # allowed for reading: the open gets through to the (absent) driver
    assert "No such device" in lines["readable"], describe(cp)
    assert "Operation not permitted" in lines["write"], describe(cp)
    assert "Operation not permitted" in lines["block"], describe(cp)


def test_listed_node_under_a_device_block_list(sbx, bundle):
    """A linux.devices node that a block list denies is still made (the
    defaults allow mknod of any device, after the user's rules: on v1 the
    kernel keeps the block list's deny of `m` over that allow, so the init
    makes its nodes outside the devices cgroup); the container may not use
    it."""
    b = bundle(["sh", "-c", "ls -l /dev/kmsg && echo x >/dev/null && echo null-ok; echo t >/dev/kmsg"])
    with b.edit() as c:
        c["linux"]["devices"] = [{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o644}]
        c["linux"]["resources"] = {
            "devices": [{"allow": False, "type": "c", "major": 1, "minor": 11, "access": "rwm"}]}
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert "null-ok" in cp.stdout, describe(cp)
    assert cp.returncode != 0 and "Operation not permitted" in cp.stderr, describe(cp)


def test_update_device_rules(sbx, bundle):
    """update replaces the device rules of a running container (v2: the
    eBPF program is swapped)."""
    major = free_char_major()
    b = bundle(["sleep", "100"])
    with b.edit() as c:
        c["linux"]["devices"] = [{"path": "/dev/x", "type": "c", "major": major, "minor": 0, "fileMode": 0o666}]
        c["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)

    def open_x():
        return sbx("exec", cid, "sh", "-c", "cat /dev/x 2>&1; echo null: $(echo > /dev/null && echo ok)").stdout

    out = open_x()
    assert "Operation not permitted" in out and "null: ok" in out, out
    rules = {"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": major, "access": "rw"}]}
    sbx.ok("update", "--resources", "-", cid, input=json.dumps(rules))
    out = open_x()
    assert "No such device" in out and "null: ok" in out, out
    assert saved_resources(sbx, cid)["devices"] == rules["devices"]


# ---------------------------------------------------------------------------
# update


def test_update_refuses_what_create_refuses(sbx, bundle):
    """update checks the merged sections as create does: the value is
    named and nothing changes."""
    b = bundle(["sleep", "100"])
    set_resources(b, cpu={"shares": 1024}, pids={"limit": 10})
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    for res, frag in [({"cpu": {"shares": 1}}, "linux.resources.cpu.shares: 1 "),
                      ({"pids": {"limit": -2}}, "linux.resources.pids.limit: -2"),
                      ({"cpu": {"period": 999}}, "linux.resources.cpu.period: 999")]:
        cp = sbx("update", "--resources", "-", cid, input=json.dumps(res))
        assert cp.returncode != 0 and frag in cp.stderr, describe(cp)
    assert cg_read(b, "pids.max") == "10"
    assert saved_resources(sbx, cid)["cpu"] == {"shares": 1024}


def test_update_live_limits(sbx, bundle, tmp_path):
    b = bundle(["sleep", "100"])
    set_resources(b, memory={"limit": 64 * MiB}, pids={"limit": 10}, cpu={"shares": 1024})
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    mem_file = "memory.max" if V2 else "memory.limit_in_bytes"
    assert cg_read(b, mem_file) == str(64 * MiB)

    sbx.ok(
        "update", "--memory", "96m", "--memory-reservation", "32M", "--pids-limit", "20", "--cpu-shares", "512",
        "--cpu-quota", "50000", "--cpu-period", "100000", cid,
    )
    assert cg_read(b, mem_file) == str(96 * MiB)
    assert cg_read(b, "memory.low" if V2 else "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert cg_read(b, "pids.max") == "20"
    if V2:
        assert cg_read(b, "cpu.weight") == "59"
        assert cg_read(b, "cpu.max") == "50000 100000"
    else:
        assert cg_read(b, "cpu.shares") == "512"
        assert cg_read(b, "cpu.cfs_quota_us") == "50000"
    res = saved_resources(sbx, cid)
    assert res["memory"] == {"limit": 96 * MiB, "reservation": 32 * MiB}
    assert res["pids"] == {"limit": 20}
    assert res["cpu"] == {"shares": 512, "quota": 50000, "period": 100000}

    # runc's spelling of the shares flag, which scripts written for it use
    sbx.ok("update", "--cpu-share", "256", cid)
    assert cg_read(b, "cpu.weight" if V2 else "cpu.shares") == ("35" if V2 else "256")
    assert saved_resources(sbx, cid)["cpu"]["shares"] == 256
    sbx.ok("update", "--cpu-shares", "512", cid)

    # containerd's way: the linux.resources JSON on stdin; fields merge
    sbx.ok("update", "--resources", "-", cid, input=json.dumps({"memory": {"limit": 80 * MiB}, "pids": {"limit": 15}}))
    assert cg_read(b, mem_file) == str(80 * MiB)
    assert cg_read(b, "pids.max") == "15"
    res = saved_resources(sbx, cid)
    assert res["memory"] == {"limit": 80 * MiB, "reservation": 32 * MiB}
    # from a file, with a flag on top
    f = tmp_path / "res.json"
    f.write_text(json.dumps({"pids": {"limit": 12}}))
    sbx.ok("update", "--resources", f, "--memory", "100m", cid)
    assert cg_read(b, "pids.max") == "12"
    assert cg_read(b, mem_file) == str(100 * MiB)
    assert sbx.state(cid)["status"] == "running"

    for args, msg in (
        (["--memory", "12x"], "invalid size"),
        (["--pids-limit", "many"], "pids-limit"),
        ([], "nothing to change"),
    ):
        cp = sbx.fail("update", *args, cid)
        assert msg in cp.stderr, describe(cp)
    cp = sbx.fail("update", "--memory", "1g", "no-such-container")
    assert "does not exist" in cp.stderr, describe(cp)
    # refused by the kernel: the saved config keeps the old values
    cp = sbx.fail("update", "--cpuset-cpus", "4095", cid)
    assert "cpu.cpus" in cp.stderr, describe(cp)
    assert "cpus" not in saved_resources(sbx, cid)["cpu"]


# ---------------------------------------------------------------------------
# events


def test_events_stats_and_exit(sbx, bundle):
    # long enough for the stats below in a slow (TCG) guest
    b = bundle(["sh", "-c", "sleep 6"])
    set_resources(b, memory={"limit": 32 * MiB}, pids={"limit": 10})
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    ev = sbx.json("events", "--stats", cid)
    assert ev["type"] == "stats" and ev["id"] == cid
    data = ev["data"]
    for key in ("cpu", "memory", "pids", "blkio", "hugetlb"):
        assert key in data, data
    assert data["memory"]["usage"]["limit"] == 32 * MiB
    assert data["memory"]["usage"]["usage"] > 0
    assert data["pids"]["current"] >= 1 and data["pids"]["limit"] == 10
    assert data["cpu"]["usage"]["total"] > 0

    # a stream that ends by itself when the container stops
    p = sbx.popen("events", "--interval", "200ms", cid)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines and all(e["type"] == "stats" and e["id"] == cid for e in lines), out
    cp = sbx.fail("events", "--stats", cid)
    assert "not running" in cp.stderr, describe(cp)
    cp = sbx.fail("events", "--interval", "soon", cid)
    assert "invalid duration" in cp.stderr, describe(cp)


# ---------------------------------------------------------------------------
# kill --all, delete


def test_kill_all(sbx, bundle):
    b = bundle(["sh", "-c", "sleep 100 & sleep 100 & wait"])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    wait_for(lambda: len(cg_procs(b)) == 3, what="three processes in the cgroup")
    sbx.ok("kill", "--all", cid, "KILL")
    sbx.wait_status(cid, "stopped")
    assert cg_procs(b) == []


def test_delete_kills_stragglers(sbx, bundle):
    """Without a pid namespace a child outlives the init; delete kills it
    and removes the cgroup."""
    b = bundle(["sh", "-c", "sleep 100 & echo started"])
    with b.edit() as c:
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    sbx.wait_status(cid, "stopped")
    left = wait_for(lambda: cg_procs(b), what="the orphaned sleep in the cgroup")
    sbx.ok("delete", cid)
    for pid in left:
        wait_for(lambda: not alive(pid), timeout=5, what=f"straggler {pid} to die")
    assert not any(os.path.isdir(d) for d in cgroup_dirs(cg_path(b)))


def test_state_and_delete_when_cgroup_removed(sbx, bundle):
    b = bundle(["sleep", "100"])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    sbx.ok("kill", cid, "KILL")
    sbx.wait_status(cid, "stopped")
    for d in cgroup_dirs(cg_path(b)):
        if os.path.isdir(d):
            os.rmdir(d)  # someone else removed it
    assert sbx.state(cid)["status"] == "stopped"
    sbx.ok("delete", cid)
    assert cid not in sbx.list_ids()


def test_pod_member_in_a_joined_pid_namespace(sbx, bundle):
    """A container joining another's pid namespace by path (its init is
    forked into it after the setup) is in its own cgroup, in the joined
    namespace with a /proc of it, and runs within 512 KiB and
    pids.max = 1."""
    first = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", bundle(["sleep", "600"]), first)
    ppid = sbx.state(first)["pid"]
    b = bundle(["sh", "-c", "exit 7"])
    with b.edit() as c:
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
        c["linux"]["namespaces"].append({"type": "pid", "path": f"/proc/{ppid}/ns/pid"})
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    assert cg_procs(b) == [pid]
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{ppid}/ns/pid")
    sbx.ok("delete", "--force", cid)
    # its /proc is the joined namespace's (the setup ran in the host's)
    b.args = ["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"]
    cp = sbx.ok("run", "--bundle", b, sbx.new_id())
    assert cp.stdout.strip() == "sleep 600", describe(cp)
    b.args = ["sh", "-c", "exit 7"]
    # Before 6.17 (no procfs for a joined pid namespace from outside it)
    # the init is born inside and does its whole setup in the cgroup: give
    # it room for that, a tight limit is only a claim of the forked path.
    release = tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
    limit = 512 * 1024 if release >= (6, 17) else 4 << 20
    set_resources(b, memory={"limit": limit}, pids={"limit": 1})
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 7, describe(cp)
