"""linux.resources fields not covered by test_cgroups.py, and the ones that
are refused because the host (or Linux) lacks them: each either reaches its
cgroup file or fails `create` naming the field.  Also linux.rootfsPropagation
and memory.checkBeforeUpdate.  Works on v1 (this host) and v2 (the guest)."""

import glob
import json
import os
import shutil
import time

import pytest

from conftest import _own_paths, all_cgroup_dirs, cgroup_dirs, describe, fstype_of, remove_cgroup_tree, run_cmd

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("run", "create", "delete", "update")]

V2 = os.path.isfile("/sys/fs/cgroup/cgroup.controllers")
MiB = 1 << 20


@pytest.fixture(autouse=True)
def _drop_seccomp_cache(sbx):
    yield
    shutil.rmtree(sbx.root / ".seccomp-cache", ignore_errors=True)


def cg_read(b, name):
    for d in cgroup_dirs(b.config["linux"]["cgroupsPath"]):
        f = os.path.join(d, name)
        if os.path.exists(f):
            with open(f) as fh:
                return fh.read().strip()
    pytest.fail(f"no {name} in the container's cgroup")


def block_device():
    for d in sorted(glob.glob("/sys/block/*")):
        if os.path.basename(d).startswith(("vd", "sd", "nvme", "xvd")):
            with open(f"{d}/dev") as f:
                return tuple(int(x) for x in f.read().split(":"))
    return None


def controller_present(name):
    if V2:
        with open("/sys/fs/cgroup/cgroup.controllers") as f:
            return name in f.read().split()
    return os.path.isdir(f"/sys/fs/cgroup/{name}")


DEV = block_device()

# field, resources, (v1 file, text it contains) or None, (v2 file, text) or None
FILES = [
    ("memory.swap", {"memory": {"limit": 64 * MiB, "swap": 128 * MiB}},
     ("memory.memsw.limit_in_bytes", str(128 * MiB)), ("memory.swap.max", str(64 * MiB))),
    ("memory.swappiness", {"memory": {"swappiness": 33}}, ("memory.swappiness", "33"), None),
    ("memory.kernelTCP", {"memory": {"kernelTCP": 16 * MiB}}, ("memory.kmem.tcp.limit_in_bytes", str(16 * MiB)), None),
    ("memory.disableOOMKiller", {"memory": {"limit": 64 * MiB, "disableOOMKiller": True}},
     ("memory.oom_control", "oom_kill_disable 1"), None),
    ("memory.useHierarchy", {"memory": {"useHierarchy": True}}, ("memory.use_hierarchy", "1"), None),
    ("cpu.burst", {"cpu": {"quota": 50000, "period": 100000, "burst": 1000}},
     ("cpu.cfs_burst_us", "1000"), ("cpu.max.burst", "1000")),
    ("cpu.idle", {"cpu": {"idle": 1}}, ("cpu.idle", "1"), ("cpu.idle", "1")),
    ("cpu.cpus", {"cpu": {"cpus": "0"}}, ("cpuset.cpus", "0"), ("cpuset.cpus", "0")),
    ("cpu.mems", {"cpu": {"mems": "0"}}, ("cpuset.mems", "0"), ("cpuset.mems", "0")),
]
for kind, v1f, v2k in (("throttleReadBpsDevice", "read_bps_device", "rbps"),
                       ("throttleWriteBpsDevice", "write_bps_device", "wbps"),
                       ("throttleReadIOPSDevice", "read_iops_device", "riops"),
                       ("throttleWriteIOPSDevice", "write_iops_device", "wiops")):
    if DEV:
        FILES.append((f"blockIO.{kind}", {"blockIO": {kind: [{"major": DEV[0], "minor": DEV[1], "rate": 4096}]}},
                      (f"blkio.throttle.{v1f}", f"{DEV[0]}:{DEV[1]} 4096"),
                      ("io.max", f"{v2k}=4096")))


@pytest.mark.parametrize("field, res, v1, v2", FILES, ids=[f[0] for f in FILES])
def test_resource_files(sbx, bundle, field, res, v1, v2):
    want = v2 if V2 else v1
    if want is None:
        pytest.skip(f"linux.resources.{field} is cgroup v{1 if V2 else 2} only (refused here: test_resources_refused)")
    b = bundle(["sleep", "100"])
    with b.edit() as c:
        c["linux"]["resources"] = res
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    assert want[1] in cg_read(b, want[0]), (field, cg_read(b, want[0]))


REFUSED = [
    ("memory.kernel", {"memory": {"kernel": 64 * MiB}}, "not supported by Linux", True),
    ("blockIO.leafWeight", {"blockIO": {"leafWeight": 100}}, "leafWeight", True),
    ("blockIO.weightDevice[].leafWeight",
     {"blockIO": {"weightDevice": [{"major": 254, "minor": 0, "leafWeight": 100}]}}, "leafWeight", True),
    ("network.classID", {"network": {"classID": 1048577}}, "network", not controller_present("net_cls") or V2),
    ("network.priorities", {"network": {"priorities": [{"name": "lo", "priority": 1}]}}, "network",
     not controller_present("net_prio") or V2),
    ("rdma", {"rdma": {"mlx4_0": {"hcaHandles": 2}}}, "rdma", not controller_present("rdma")),
    ("memory.swappiness (v2)", {"memory": {"swappiness": 10}}, "cgroup v1 only", V2),
    ("memory.disableOOMKiller (v2)", {"memory": {"disableOOMKiller": True}}, "cgroup v1 only", V2),
    ("memory.kernelTCP (v2)", {"memory": {"kernelTCP": MiB}}, "cgroup v1 only", V2),
]


@pytest.mark.parametrize("field, res, words, applies", REFUSED, ids=[r[0] for r in REFUSED])
def test_resources_refused(sbx, bundle, field, res, words, applies):
    if not applies:
        pytest.skip(f"linux.resources.{field} is supported on this host")
    b = bundle()
    with b.edit() as c:
        c["linux"]["resources"] = res
    cid = sbx.new_id()
    cp = sbx("create", "--bundle", b, cid)
    assert cp.returncode != 0, describe(cp)
    assert "linux.resources." + field.split(" ")[0].split("[")[0] in cp.stderr and words in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()


def test_block_io_weight(sbx, bundle):
    b = bundle(["sleep", "100"])
    with b.edit() as c:
        c["linux"]["resources"] = {"blockIO": {"weight": 300}}
    cid = sbx.new_id()
    cp = sbx("run", "--detach", "--bundle", b, cid)
    files = ["io.bfq.weight", "io.weight"] if V2 else ["blkio.weight", "blkio.bfq.weight"]
    if cp.returncode != 0:
        # no I/O scheduler with weights here: refused, naming the field
        assert "linux.resources.blockIO.weight" in cp.stderr and "weights" in cp.stderr, describe(cp)
        assert cid not in sbx.list_ids()
        return
    seen = [cg_read(b, f) for f in files if any(os.path.exists(os.path.join(d, f))
                                                for d in cgroup_dirs(b.config["linux"]["cgroupsPath"]))]
    assert seen and any(s.split()[-1] in ("300", "3") or "300" in s for s in seen), seen


def test_realtime_budget(sbx, bundle):
    b = bundle(["sleep", "100"])
    with b.edit() as c:
        c["linux"]["resources"] = {"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 1000000}}
    cid = sbx.new_id()
    cp = sbx("run", "--detach", "--bundle", b, cid)
    if cp.returncode == 0:
        assert cg_read(b, "cpu.rt_runtime_us") == "1000"
        assert cg_read(b, "cpu.rt_period_us") == "1000000"
        return
    # v2 has no realtime budgets; on v1 the budget must fit the parent's
    assert "linux.resources.cpu.realtime" in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()


def test_check_before_update(sbx, bundle):
    b = bundle(["sh", "-c", "head -c 8388608 /dev/zero > /dev/shm/fill; sleep 100"])
    with b.edit() as c:
        c["linux"]["resources"] = {"memory": {"limit": 64 * MiB}}
        c["mounts"].append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                            "options": ["nosuid", "nodev", "size=16m"]})
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    mem = "memory.max" if V2 else "memory.limit_in_bytes"
    usage = "memory.current" if V2 else "memory.usage_in_bytes"
    for _ in range(200):
        if int(cg_read(b, usage)) > 8 * MiB:
            break
        time.sleep(0.02)
    cp = sbx("update", "--resources", "-", cid,
             input=json.dumps({"memory": {"limit": 4 * MiB, "checkBeforeUpdate": True}}))
    assert cp.returncode != 0, describe(cp)
    assert "memory" in cp.stderr, describe(cp)
    assert cg_read(b, mem) == str(64 * MiB)
    assert sbx.state(cid)["status"] == "running"


@pytest.mark.parametrize("prop, want", [("private", ""), ("shared", "shared:"), ("unbindable", "unbindable"),
                                        ("rprivate", ""), ("rshared", "shared:")])
def test_rootfs_propagation(sbx, bundle, prop, want):
    b = bundle(["awk", "$5 == \"/\"", "/proc/self/mountinfo"])
    with b.edit() as c:
        c["linux"]["rootfsPropagation"] = prop
    cp = sbx.ok("run", "--bundle", b, sbx.new_id())
    line = cp.stdout.strip()
    fields = line.split(" - ")[0].split()[6:]
    if want:
        assert any(f.startswith(want) for f in fields), line
    else:
        assert not any(f.startswith(("shared:", "master:")) for f in fields), line


def _own_cpu_dir(rel):
    """(the directory of our own cgroup, that of relative cgroupsPath REL
    below it) in the v1 hierarchy with realtime group scheduling."""
    for controllers, own in _own_paths().items():
        if "cpu" not in controllers.split(","):
            continue
        for top, d in all_cgroup_dirs(own.rstrip("/") + "/" + rel):
            if fstype_of(top) == "cgroup" and os.path.exists(os.path.join(top, "cpu.rt_runtime_us")):
                return top + own.rstrip("/") if own != "/" else top, d
    pytest.skip("no cgroup v1 cpu hierarchy with realtime group scheduling (CONFIG_RT_GROUP_SCHED)")


def _rt(d):
    with open(os.path.join(d, "cpu.rt_runtime_us")) as f:
        return int(f.read())


@pytest.fixture
def own_relative():
    """A relative cgroupsPath top, `sbxtest-<pid>-rt`: below our own cgroup
    in each hierarchy (in cpu that is the hierarchy's root on a hybrid host,
    which has a realtime budget); removed everywhere afterwards."""
    rel = f"sbxtest-{os.getpid()}-rt"
    yield rel
    for own in set(_own_paths().values()):
        for d in cgroup_dirs(own.rstrip("/") + "/" + rel):
            remove_cgroup_tree(d)


def test_realtime_budget_goes_down_the_levels_this_create_made(sbx, bundle, own_relative):
    """cpu.realtimeRuntime on v1: the kernel refuses a budget an ancestor
    lacks, so the levels sbxrun itself made (the test's top and `mid`) get
    it first, and an SCHED_RR init then runs.  A level made by someone else
    (kubelet's; here the test's) is theirs: create fails naming the field,
    and that level keeps its 0."""
    path = own_relative + "/mid/rt"
    own, d = _own_cpu_dir(path)
    mid, top = os.path.dirname(d), os.path.dirname(os.path.dirname(d))
    if _rt(own) < 20000:
        pytest.skip(f"our own cpu cgroup {own} has no realtime budget to share")
    b = bundle(["sleep", "60"])
    b.config["linux"]["cgroupsPath"] = path
    b.config["linux"]["resources"] = {"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 1000000}}
    b.config["process"]["scheduler"] = {"policy": "SCHED_RR", "priority": 1}
    b.write()
    cid = sbx.new_id("rt")
    cp = sbx("run", "-d", "--bundle", b, cid)
    assert cp.returncode == 0, describe(cp)
    assert (_rt(top), _rt(mid), _rt(d)) == (10000, 10000, 10000)
    policy = run_cmd(["chrt", "-p", str(sbx.state(cid)["pid"])]).stdout
    assert "SCHED_RR" in policy, policy
    sbx.ok("delete", "--force", cid)

    # a level made beforehand, without a budget
    path2 = own_relative + "/theirs/rt"
    _, d2 = _own_cpu_dir(path2)
    os.makedirs(os.path.dirname(d2))
    b.config["linux"]["cgroupsPath"] = path2
    b.write()
    cid2 = sbx.new_id("rt")
    cp = sbx("run", "-d", "--bundle", b, cid2)
    assert cp.returncode != 0 and "realtimeRuntime" in cp.stderr, describe(cp)
    assert _rt(os.path.dirname(d2)) == 0
    assert not os.path.exists(sbx.root / cid2)
