"""runtime-spec fields that act on the kernel's per-process attributes and
on the network namespace (issue 13): process.scheduler, process.ioPriority,
linux.personality, linux.memoryPolicy, linux.intelRdt (refused: no resctrl
here), linux.netDevices and the loopback of a new network namespace.

Each field is observed from inside the container (/proc/self/stat,
/proc/self/sched, ionice, uname, /proc/self/personality,
/proc/self/numa_maps, ip); each refusal fails `create` with an error naming
the field, and leaves nothing behind (the sbx fixture checks)."""

import json
import os
import platform
import shlex

import pytest

from conftest import describe, run_cmd

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("run", "state", "delete", "exec"),
              pytest.mark.usefixtures("seccomp_cache_cleanup")]


@pytest.fixture
def bundle(fast_bundle):
    return fast_bundle


def run_sh(sbx, b, script, code=0):
    b.args = ["sh", "-c", script]
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == code, describe(cp)
    return cp.stdout


def refused(sbx, b, *words):
    """create fails, the error names WORDS, nothing is left behind."""
    cid = sbx.new_id()
    cp = sbx("create", "--bundle", b, cid)
    assert cp.returncode != 0, describe(cp)
    for w in words:
        assert w in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()
    return cp.stderr


# /proc/self/stat: 18 priority, 19 nice, 40 rt_priority, 41 policy (1-based)
STAT = "cut -d' ' -f18,19,40,41 /proc/self/stat"


def stat_fields(out):
    prio, nice, rtprio, policy = map(int, out.split())
    return {"prio": prio, "nice": nice, "rtprio": rtprio, "policy": policy}


# ---- process.scheduler


@pytest.mark.parametrize("sched, want", [
    ({"policy": "SCHED_BATCH", "nice": 7}, {"policy": 3, "nice": 7}),
    ({"policy": "SCHED_OTHER", "nice": -3}, {"policy": 0, "nice": -3}),
    ({"policy": "SCHED_IDLE"}, {"policy": 5}),
    ({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_RESET_ON_FORK"]}, {"policy": 0}),
])
def test_scheduler_normal_policies(sbx, bundle, sched, want):
    b = bundle()
    with b.edit() as c:
        c["process"]["scheduler"] = sched
    seen = stat_fields(run_sh(sbx, b, STAT))
    for k, v in want.items():
        assert seen[k] == v, seen


def rt_budget(cgroup_parent, us):
    """Realtime group scheduling (cgroup v1 cpu, CONFIG_RT_GROUP_SCHED)
    gives a realtime task no time unless its cgroup and every ancestor have
    a budget.  Returns "none" without group scheduling, "set" once the
    test's own cpu cgroup has US, None when an ancestor that is not the
    test's has no budget (only its owner may give it one)."""
    top = "/sys/fs/cgroup/cpu"
    if not os.path.exists(f"{top}/cpu.rt_runtime_us"):
        return "none"
    d = top + str(cgroup_parent)
    p = os.path.dirname(d)
    while p != top and not os.path.isdir(p):
        p = os.path.dirname(p)
    while p != top:
        with open(f"{p}/cpu.rt_runtime_us") as f:
            if int(f.read()) < us:
                return None
        p = os.path.dirname(p)
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/cpu.rt_runtime_us", "w") as f:
        f.write(str(us))
    return "set"


@pytest.mark.parametrize("policy", ["SCHED_FIFO", "SCHED_RR"])
def test_scheduler_realtime(sbx, bundle, cgroup_parent, policy):
    budget = rt_budget(cgroup_parent, 20000)
    if budget is None:
        pytest.skip("an ancestor of the test's cpu cgroup has no realtime budget (cpu.rt_runtime_us = 0): "
                    "realtime policies cannot run below it (the refusal is tested)")
    b = bundle()
    with b.edit() as c:
        c["process"]["scheduler"] = {"policy": policy, "priority": 12}
        if budget == "set":
            c["linux"].setdefault("resources", {})["cpu"] = {"realtimeRuntime": 10000, "realtimePeriod": 1000000}
    seen = stat_fields(run_sh(sbx, b, STAT))
    assert seen["policy"] == {"SCHED_FIFO": 1, "SCHED_RR": 2}[policy], seen
    assert seen["rtprio"] == 12, seen


def test_scheduler_realtime_without_budget_is_explained(sbx, bundle):
    if not os.path.exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"):
        pytest.skip("no realtime group scheduling (cpu.rt_runtime_us) on this host")
    b = bundle()
    with b.edit() as c:
        c["process"]["scheduler"] = {"policy": "SCHED_FIFO", "priority": 1}
    refused(sbx, b, "process.scheduler", "realtimeRuntime")


def test_scheduler_deadline(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        # a SCHED_DEADLINE task cannot fork unless its children reset
        c["process"]["scheduler"] = {"policy": "SCHED_DEADLINE", "runtime": 2000000, "deadline": 8000000,
                                     "period": 10000000, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    out = run_sh(sbx, b, STAT.replace("self", "$$") + "; grep -E '^dl\\.runtime' /proc/$$/sched")
    lines = out.splitlines()
    assert stat_fields(lines[0])["policy"] == 6, out
    # what is left of this period's runtime
    assert 0 < int(lines[1].split(":")[1]) <= 2000000, out
    # the parameters themselves, as sched_getattr reports them
    b.args = ["sleep", "100"]
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    cp = run_cmd(["chrt", "-p", str(sbx.state(cid)["pid"])])
    assert "SCHED_DEADLINE|SCHED_RESET_ON_FORK" in cp.stdout, describe(cp)
    assert "2000000/8000000/10000000" in cp.stdout, describe(cp)


def test_scheduler_applies_to_exec(sbx, bundle, tmp_path):
    b = bundle(["sleep", "100"])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    proc = dict(b.config["process"], args=["sh", "-c", STAT + "; ionice"],
                scheduler={"policy": "SCHED_BATCH", "nice": 4},
                ioPriority={"class": "IOPRIO_CLASS_IDLE"})
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(proc))
    cp = sbx.ok("exec", "--process", pf, cid)
    first, second = cp.stdout.splitlines()[:2]
    seen = stat_fields(first)
    assert seen["policy"] == 3 and seen["nice"] == 4, cp.stdout
    assert second.startswith("idle"), cp.stdout
    # the init kept its own (default) attributes: the caller's
    init = stat_fields(sbx.ok("exec", cid, "cut", "-d ", "-f18,19,40,41", "/proc/1/stat").stdout)
    assert init["policy"] == os.sched_getscheduler(0) and init["nice"] == os.nice(0), init


@pytest.mark.parametrize("sched, words", [
    ({"policy": "SCHED_NOPE"}, ["process.scheduler.policy", "SCHED_NOPE"]),
    ({"policy": "SCHED_ISO"}, ["SCHED_ISO", "not implemented"]),
    ({"policy": "SCHED_FIFO"}, ["process.scheduler.priority", "[1, 99]"]),
    ({"policy": "SCHED_RR", "priority": 100}, ["process.scheduler.priority"]),
    ({"policy": "SCHED_OTHER", "priority": 3}, ["process.scheduler.priority", "must be 0"]),
    ({"policy": "SCHED_OTHER", "nice": 20}, ["process.scheduler.nice", "20"]),
    ({"policy": "SCHED_FIFO", "priority": 1, "nice": 3}, ["process.scheduler.nice"]),
    ({"policy": "SCHED_OTHER", "runtime": 5000}, ["SCHED_DEADLINE only"]),
    ({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_RECLAIM"]}, ["flags[0]", "SCHED_DEADLINE only"]),
    ({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_UTIL_CLAMP_MIN"]}, ["flags[0]", "clamp"]),
    ({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_BOGUS"]}, ["process.scheduler.flags[0]", "BOGUS"]),
    ({"policy": "SCHED_DEADLINE", "runtime": 2000000}, ["process.scheduler.deadline"]),
    ({"policy": "SCHED_DEADLINE", "runtime": 100, "deadline": 1000000}, ["process.scheduler.runtime", "1024"]),
    ({"policy": "SCHED_DEADLINE", "runtime": 2000000, "deadline": 1000000}, ["above deadline"]),
    ({"policy": "SCHED_DEADLINE", "runtime": 20000, "deadline": 2000000, "period": 1000000}, ["above period"]),
    ({"policy": "SCHED_DEADLINE", "runtime": 2000, "deadline": 50000}, ["process.scheduler.period", "sched_deadline_period"]),
    ({"policy": "SCHED_DEADLINE", "runtime": 2000, "deadline": 50000, "period": 10**13}, ["process.scheduler.period"]),
])
def test_scheduler_refused(sbx, bundle, sched, words):
    b = bundle()
    with b.edit() as c:
        c["process"]["scheduler"] = sched
    refused(sbx, b, *words)


# ---- process.ioPriority


@pytest.mark.parametrize("io, want", [
    ({"class": "IOPRIO_CLASS_BE", "priority": 3}, "best-effort: prio 3"),
    ({"class": "IOPRIO_CLASS_RT", "priority": 1}, "realtime: prio 1"),
    ({"class": "IOPRIO_CLASS_IDLE"}, "idle"),
])
def test_io_priority(sbx, bundle, io, want):
    b = bundle()
    with b.edit() as c:
        c["process"]["ioPriority"] = io
    assert run_sh(sbx, b, "ionice").strip() == want


@pytest.mark.parametrize("io, words", [
    ({"class": "IOPRIO_CLASS_NONE"}, ["process.ioPriority.class", "IOPRIO_CLASS_NONE"]),
    ({"class": "IOPRIO_CLASS_BE", "priority": 8}, ["process.ioPriority.priority", "8"]),
    ({"class": "IOPRIO_CLASS_BE", "priority": -1}, ["process.ioPriority.priority"]),
    ({"class": "IOPRIO_CLASS_IDLE", "priority": 2}, ["process.ioPriority.priority", "IDLE"]),
])
def test_io_priority_refused(sbx, bundle, io, words):
    b = bundle()
    with b.edit() as c:
        c["process"]["ioPriority"] = io
    refused(sbx, b, *words)


# ---- linux.personality


@pytest.mark.skipif(platform.machine() != "x86_64", reason="LINUX32 is checked as i686 on x86_64")
def test_personality_linux32(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["linux"]["personality"] = {"domain": "LINUX32"}
    out = run_sh(sbx, b, "uname -m; cat /proc/self/personality").split()
    assert out == ["i686", "00000008"], out


def test_personality_linux_with_flags(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["linux"]["personality"] = {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE", "UNAME26"]}
    out = run_sh(sbx, b, "uname -m; cat /proc/self/personality").split()
    assert out == [platform.machine(), "%08x" % (0x0040000 | 0x0020000)], out


def test_personality_applies_to_exec(sbx, bundle):
    b = bundle(["sleep", "100"])
    with b.edit() as c:
        c["linux"]["personality"] = {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    assert sbx.ok("exec", cid, "cat", "/proc/self/personality").stdout.strip() == "00040000"


@pytest.mark.parametrize("pers, words", [
    ({"domain": "LINUX64"}, ["linux.personality.domain", "LINUX64"]),
    ({"domain": "LINUX", "flags": ["NO_SUCH"]}, ["linux.personality.flags[0]", "NO_SUCH"]),
])
def test_personality_refused(sbx, bundle, pers, words):
    b = bundle()
    with b.edit() as c:
        c["linux"]["personality"] = pers
    refused(sbx, b, *words)


# ---- linux.memoryPolicy


def online_nodes():
    with open("/sys/devices/system/node/online") as f:
        return f.read().strip()


def heap_policy(out):
    # the first mapping (the program's text) carries the task's policy
    return out.splitlines()[0].split()[1]


@pytest.mark.parametrize("mp, want", [
    ({"mode": "MPOL_BIND", "nodes": "0"}, "bind:0"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0"}, "interleave:0"),
    ({"mode": "MPOL_PREFERRED", "nodes": "0"}, "prefer:0"),
    ({"mode": "MPOL_PREFERRED_MANY", "nodes": "0"}, "prefer (many):0"),
    ({"mode": "MPOL_LOCAL"}, "local"),
    ({"mode": "MPOL_DEFAULT"}, "default"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "bind=static:0"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]}, "interleave=relative:0"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]}, "bind=balancing:0"),
])
def test_memory_policy(sbx, bundle, mp, want):
    b = bundle()
    with b.edit() as c:
        c["linux"]["memoryPolicy"] = mp
    out = run_sh(sbx, b, "cat /proc/self/numa_maps")
    if want == "prefer (many):0" and heap_policy(out).startswith("prefer"):
        want = heap_policy(out)  # older kernels print "prefer (many)" differently
    assert heap_policy(out) == want, out


def test_memory_policy_applies_to_exec(sbx, bundle):
    b = bundle(["sleep", "100"])
    with b.edit() as c:
        c["linux"]["memoryPolicy"] = {"mode": "MPOL_INTERLEAVE", "nodes": "0"}
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    assert heap_policy(sbx.ok("exec", cid, "cat", "/proc/self/numa_maps").stdout) == "interleave:0"


@pytest.mark.parametrize("mp, words", [
    ({"mode": "MPOL_NOPE"}, ["linux.memoryPolicy.mode", "MPOL_NOPE"]),
    ({"mode": "MPOL_DEFAULT", "nodes": "0"}, ["MPOL_DEFAULT takes neither"]),
    ({"mode": "MPOL_LOCAL", "flags": ["MPOL_F_STATIC_NODES"]}, ["MPOL_LOCAL takes neither"]),
    ({"mode": "MPOL_BIND"}, ["linux.memoryPolicy.nodes", "at least one node"]),
    ({"mode": "MPOL_BIND", "nodes": "0-"}, ["linux.memoryPolicy.nodes", "0-"]),
    ({"mode": "MPOL_BIND", "nodes": "0,"}, ["linux.memoryPolicy.nodes"]),
    ({"mode": "MPOL_BIND", "nodes": "3-1"}, ["linux.memoryPolicy.nodes"]),
    ({"mode": "MPOL_BIND", "nodes": "999"}, ["linux.memoryPolicy.nodes", "node 999 is not online"]),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]},
     ["exclude each other"]),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]}, ["MPOL_F_NUMA_BALANCING"]),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_WHATEVER"]}, ["linux.memoryPolicy.flags[0]"]),
])
def test_memory_policy_refused(sbx, bundle, mp, words):
    b = bundle()
    with b.edit() as c:
        c["linux"]["memoryPolicy"] = mp
    refused(sbx, b, *words)


# ---- linux.intelRdt


def test_intel_rdt_refused_without_resctrl(sbx, bundle):
    if os.path.ismount("/sys/fs/resctrl"):
        pytest.skip("resctrl is mounted here")
    b = bundle()
    with b.edit() as c:
        c["linux"]["intelRdt"] = {"closID": "sbx", "l3CacheSchema": "L3:0=f"}
    refused(sbx, b, "linux.intelRdt", "resctrl")


# ---- network namespace: loopback, linux.netDevices


def test_loopback_is_up_in_a_new_network_namespace(sbx, bundle):
    b = bundle()
    out = run_sh(sbx, b, "ip -o link show lo; ip -o addr show lo")
    assert "<LOOPBACK,UP,LOWER_UP>" in out and "127.0.0.1/8" in out, out


def in_test_netns(sbx, script):
    """Run SCRIPT in a network namespace of its own (never the host's), with
    $SBX the sbxrun command line; the namespace and its veths go with it."""
    sbxcmd = " ".join(shlex.quote(a) for a in sbx.argv())
    return run_cmd(["unshare", "--net", "sh", "-ec", f"SBX={shlex.quote(sbxcmd)}\n{script}"])


VETH = "ip link add sbxv0 type veth peer name sbxv1; ip addr add 10.213.0.1/24 dev sbxv0; " \
       "ip -6 addr add fd13::1/64 dev sbxv0 nodad\n"


def test_net_devices_moved_renamed_with_addresses(sbx, bundle):
    b = bundle(["sh", "-c", "ip -o link; ip -o addr show eth7"])
    with b.edit() as c:
        c["linux"]["netDevices"] = {"sbxv0": {"name": "eth7"}}
    cid = sbx.new_id()
    cp = in_test_netns(sbx, VETH + f"$SBX run --bundle {b.path} {cid}\necho HOST; ip -o link")
    assert cp.returncode == 0, describe(cp)
    inside, host = cp.stdout.split("HOST")
    assert ": eth7@" in inside and "sbxv0" not in inside, inside
    assert "10.213.0.1/24" in inside and "fd13::1/64" in inside, inside
    # the container's namespace is gone: a virtual device went with it
    assert "sbxv0" not in host, host


def test_net_devices_keep_name_and_go_back_on_delete(sbx, bundle):
    b = bundle(["sleep", "100"])
    with b.edit() as c:
        c["linux"]["netDevices"] = {"sbxv0": {}}
    cid = sbx.new_id()
    cp = in_test_netns(sbx, VETH + f"$SBX run --detach --bundle {b.path} {cid}\n"
                       f"$SBX exec {cid} ip -o addr show sbxv0\necho HOST1; ip -o link\n"
                       f"$SBX delete --force {cid}\necho HOST2; ip -o addr show sbxv0")
    assert cp.returncode == 0, describe(cp)
    inside, rest = cp.stdout.split("HOST1")
    during, after = rest.split("HOST2")
    assert "10.213.0.1/24" in inside, inside
    assert "sbxv0" not in during, during
    assert "10.213.0.1/24" in after and "fd13::1/64" in after, after


@pytest.mark.parametrize("devs, words, own_netns", [
    ({"sbxnone0": {}}, ["linux.netDevices", "no interface `sbxnone0`"], True),
    ({"sbxv0": {"name": "a/b"}}, ["linux.netDevices[\"sbxv0\"].name", "a/b"], True),
    ({"sbxv0": {"name": "lo"}}, ["`lo`"], True),
    ({"sbxv0": {"name": "x"}, "sbxv1": {"name": "x"}}, ["two devices would be named `x`"], True),
    ({"lo": {}}, ["loopback"], True),
    ({"sbxv0": {}}, ["linux.netDevices", "network namespace of the container's own"], False),
])
def test_net_devices_refused(sbx, bundle, devs, words, own_netns):
    b = bundle()
    with b.edit() as c:
        c["linux"]["netDevices"] = devs
        if not own_netns:
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
    cid = sbx.new_id()
    cp = in_test_netns(sbx, VETH + f"$SBX create --bundle {b.path} {cid} || exit 0; exit 3")
    assert cp.returncode == 0, describe(cp)
    for w in words:
        assert w in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()


# ---- process.execCPUAffinity


def cpus_allowed(out):
    return [ln.split(":")[1].strip() for ln in out.splitlines() if ln.startswith("Cpus_allowed_list")][0]


@pytest.mark.skipif(os.cpu_count() < 2, reason="needs two CPUs")
def test_exec_cpu_affinity_final(sbx, bundle, tmp_path):
    b = bundle(["sleep", "100"])
    with b.edit() as c:
        c["process"]["execCPUAffinity"] = {"initial": "0", "final": "1"}
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    assert cpus_allowed(sbx.ok("exec", cid, "cat", "/proc/1/status").stdout) == "1"
    proc = dict(b.config["process"], args=["cat", "/proc/self/status"], execCPUAffinity={"final": "0"})
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(proc))
    assert cpus_allowed(sbx.ok("exec", "--process", pf, cid).stdout) == "0"


@pytest.mark.parametrize("aff, words", [
    ({"final": "1-"}, ["process.execCPUAffinity.final", "bad CPU list"]),
    ({"initial": ""}, ["process.execCPUAffinity.initial"]),
    ({"initial": "0", "final": "1000"}, ["process.execCPUAffinity.final", "CPU 1000 is not online"]),
])
def test_exec_cpu_affinity_refused(sbx, bundle, aff, words):
    b = bundle()
    with b.edit() as c:
        c["process"]["execCPUAffinity"] = aff
    refused(sbx, b, *words)


# ---- refused outright


@pytest.mark.parametrize("edit, words", [
    (lambda c: c["process"].__setitem__("commandLine", "sh -c true"), ["process.commandLine", "Windows only"]),
    (lambda c: c["process"]["user"].__setitem__("username", "root"), ["process.user.username", "Windows only"]),
], ids=["commandLine", "username"])
def test_windows_only_fields_refused(sbx, bundle, edit, words):
    b = bundle()
    with b.edit() as c:
        edit(c)
    refused(sbx, b, *words)
