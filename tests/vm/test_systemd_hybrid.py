"""The systemd driver (--systemd-cgroup) where systemd runs the v1 cgroup
layouts, as tests/vm/guest.sh --mode systemd-hybrid (v1 controllers, systemd's
tracking in cgroup2 at /sys/fs/cgroup/unified) and --mode systemd-legacy (v1
only, tracking in name=systemd) present them (run by
tests/vm/run-systemd-hybrid.sh; skipped elsewhere).

systemd makes the scope's cgroup in its own hierarchies and in the
controllers it realizes for a delegated unit (memory, cpu,cpuacct, pids,
devices, blkio); sbxrun makes the same path in the others (cpuset, freezer,
net_cls, perf_event, hugetlb...) and removes them again.  Each test checks
what the container sees from inside (/proc/self/cgroup, the limit files) and
that no unit and no cgroup directory is left in any hierarchy."""

import json
import os

import pytest

from conftest import describe, mountinfo, wait_for
# no_unit_left (autouse) and podman are fixtures: imported, they apply here too
from test_systemd_host import (HAS_DRIVER, init_cgroup, no_unit_left, pid1, podman, refused_create,  # noqa: F401
                               sd_bundle, systemctl, unit_gone, unit_prop)

CG = "/sys/fs/cgroup"


def v1_mounts():
    """{controller or name=NAME: mount point} of the v1 hierarchies."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, opts = right.split()[:3]
            if fstype != "cgroup":
                continue
            mp = left.split()[4]
            for o in opts.split(","):
                if o not in ("rw", "ro", "nosuid", "nodev", "noexec", "relatime", "xattr") and not o.startswith(
                        "release_agent"):
                    out[o] = mp
    return out


V1 = v1_mounts()
HYBRID = any(t == "cgroup2" for _, _, t in mountinfo())

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("run", "create", "start", "delete"),
              pytest.mark.skipif(not HAS_DRIVER, reason="sbxrun built without the systemd driver (+SYSTEMD)")]
if pid1() != "systemd" or "name=systemd" not in V1 or "memory" not in V1:
    pytestmark.append(pytest.mark.skip(
        reason="not systemd on the v1 layouts (tests/vm/run-systemd-hybrid.sh runs these)"))

def v1file(ctrl, path, name):
    with open(f"{V1[ctrl]}{path}/{name}") as f:
        return f.read().strip()


def cgroup_lines(text):
    """{controllers: path} of a /proc/PID/cgroup text."""
    out = {}
    for line in text.strip().splitlines():
        _, ctrls, path = line.split(":", 2)
        out[ctrls] = path
    return out


def dirs_of(path):
    """PATH's directory in every cgroup hierarchy mounted here."""
    mps = set(V1.values())
    if HYBRID:
        mps.add(f"{CG}/unified")
    return sorted(mp + path for mp in mps)


def assert_no_dirs(path):
    left = [d for d in dirs_of(path) if os.path.exists(d)]
    assert not left, f"cgroup directories left: {left}"


def sd_run(sbx, b, cid, *args):
    return sbx("--systemd-cgroup", "run", "-d", *args, "--bundle", b, cid)


def kmsg_bundle(bundle, cid, rules):
    """A `sleep` in machine.slice:sbx:CID with /dev/kmsg in it and the
    device RULES."""
    b = sd_bundle(bundle, f"machine.slice:sbx:{cid}", ["sleep", "3600"], limits=False)
    b.config["linux"]["devices"] = [
        {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o644, "uid": 0, "gid": 0}]
    b.config["linux"]["resources"] = {"devices": rules}
    b.write()
    return b


# ---------------------------------------------------------------------------


def test_the_layout():
    """systemd is PID 1 on v1 controllers: hybrid has cgroup2 (no
    controller) at /sys/fs/cgroup/unified, legacy none; the suite runs in
    the delegated unit's "payload" in name=systemd."""
    assert pid1() == "systemd"
    for c in ("memory", "cpu", "pids", "devices", "freezer", "cpuset", "blkio"):
        assert c in V1, V1
    assert V1["name=systemd"] == f"{CG}/systemd"
    if HYBRID:
        assert [mp for _, mp, t in mountinfo() if t == "cgroup2"] == [f"{CG}/unified"]
        assert open(f"{CG}/unified/cgroup.controllers").read().strip() == ""
    own = cgroup_lines(open("/proc/self/cgroup").read())
    assert own["name=systemd"] == "/system.slice/sbxvm-command.service/payload"
    assert ("0" in [line.split(":")[0] for line in open("/proc/self/cgroup")]) == HYBRID
    assert unit_prop("sbxvm-command.service", "Delegate") == "yes"


def test_scope_placement_and_limits(sbx, bundle):
    """machine.slice:libpod:<id>: every hierarchy shows the scope in
    /proc/self/cgroup from inside (no cgroup namespace), the limits are in
    the v1 files as seen from inside and as unit properties; after a
    daemon-reload too (systemd writes its controllers again); delete leaves
    no unit and no directory in any hierarchy."""
    cid = sbx.new_id()
    unit = f"libpod-{cid}.scope"
    path = f"/machine.slice/{unit}"
    show = ("cat /proc/self/cgroup; echo --; cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/pids/pids.max; "
            "echo end")
    b = sd_bundle(bundle, f"machine.slice:libpod:{cid}", ["sh", "-c", f"({show}) > /tmp/view; sleep 100"],
                  cgroupns=False)
    cp = sd_run(sbx, b, cid)
    assert cp.returncode == 0, describe(cp)
    view = wait_for(lambda: (b.rootfs / "tmp/view").exists() and (b.rootfs / "tmp/view").read_text().endswith("end\n")
                    and (b.rootfs / "tmp/view").read_text())
    inside, files = view[:-len("end\n")].split("--\n")
    lines = cgroup_lines(inside)
    for ctrls, p in lines.items():
        if ctrls in ("", "name=systemd") or any(c in V1 for c in ctrls.split(",")):
            assert p == path, (ctrls, inside)
    assert lines["name=systemd"] == path and ("" in lines) == HYBRID
    assert files.split() == [str(64 << 20), "20000", "100000", "50"], files
    pid = sbx.state(cid)["pid"]
    assert cgroup_lines(init_cgroup(pid)) == lines
    # the placeholder that held the scope is gone from it
    assert v1file("name=systemd", path, "cgroup.procs").split() == [str(pid)]
    assert v1file("memory", path, "memory.limit_in_bytes") == str(64 << 20)
    assert v1file("memory", path, "memory.soft_limit_in_bytes") == str(8 << 20)
    assert unit_prop(unit, "Delegate") == "yes"
    assert unit_prop(unit, "Slice") == "machine.slice"
    assert unit_prop(unit, "MemoryMax") == str(64 << 20)
    assert unit_prop(unit, "TasksMax") == "50"
    assert unit_prop(unit, "CPUQuotaPerSecUSec") == "200ms"
    systemctl("daemon-reload")
    assert v1file("memory", path, "memory.limit_in_bytes") == str(64 << 20)
    assert v1file("cpu", path, "cpu.cfs_quota_us") == "20000"
    assert v1file("pids", path, "pids.max") == "50"
    sbx.ok("--systemd-cgroup", "delete", "--force", cid)
    assert unit_gone(unit)
    assert_no_dirs(path)


def test_lifecycle_through_the_unit(sbx, bundle):
    """update (SetUnitProperties and the files), pause/resume (the
    freezer hierarchy, sbxrun's), ps, events --stats, kill --all, delete."""
    cid = sbx.new_id()
    unit = f"sbx-{cid}.scope"
    path = f"/system.slice/{unit}"
    b = sd_bundle(bundle, f":sbx:{cid}", ["sh", "-c", "sleep 100 & sleep 100 & wait"])
    cp = sd_run(sbx, b, cid)
    assert cp.returncode == 0, describe(cp)
    assert unit_prop(unit, "Slice") == "system.slice"
    sbx.ok("update", "--memory", str(96 << 20), "--pids-limit", "40", "--cpu-quota", "30000", cid)
    assert v1file("memory", path, "memory.limit_in_bytes") == str(96 << 20)
    assert unit_prop(unit, "MemoryMax") == str(96 << 20)
    assert v1file("pids", path, "pids.max") == "40"
    assert unit_prop(unit, "TasksMax") == "40"
    assert v1file("cpu", path, "cpu.cfs_quota_us") == "30000"
    assert unit_prop(unit, "CPUQuotaPerSecUSec") == "300ms"
    sbx.ok("pause", cid)
    assert sbx.state(cid)["status"] == "paused"
    assert v1file("freezer", path, "freezer.state") == "FROZEN"
    sbx.ok("resume", cid)
    assert sbx.state(cid)["status"] == "running"
    assert v1file("freezer", path, "freezer.state") == "THAWED"
    pids = json.loads(sbx.ok("ps", "--format", "json", cid).stdout)
    assert len(pids) == 3
    for c in ("name=systemd", "memory", "freezer", "cpuset"):
        assert sorted(pids) == sorted(int(p) for p in v1file(c, path, "cgroup.procs").split()), c
    ev = json.loads(sbx.ok("events", "--stats", cid).stdout)
    assert ev["data"]["memory"]["usage"]["limit"] == 96 << 20
    assert ev["data"]["pids"]["current"] == 3
    sbx.ok("kill", "--all", cid, "KILL")
    wait_for(lambda: sbx.state(cid)["status"] == "stopped", timeout=20)
    sbx.ok("delete", cid)
    wait_for(lambda: unit_gone(unit), timeout=10, what=f"{unit} gone")
    assert_no_dirs(path)


def test_pids_limit_one(sbx, bundle):
    """pids.limit 1: the placeholder does not take the init's only task."""
    cid = sbx.new_id()
    unit = f"sbx-{cid}.scope"
    b = sd_bundle(bundle, f"machine.slice:sbx:{cid}", ["/bin/true"], limits=False)
    b.config["linux"]["resources"] = {"pids": {"limit": 1}}
    b.write()
    sbx.ok("--systemd-cgroup", "create", "--bundle", b, cid)
    assert v1file("pids", f"/machine.slice/{unit}", "pids.max") == "1"
    assert unit_prop(unit, "TasksMax") == "1"
    sbx.ok("start", cid)
    sbx.wait_status(cid, "stopped", timeout=30)
    sbx.ok("delete", cid)
    wait_for(lambda: unit_gone(unit), timeout=10, what=f"{unit} gone")
    assert_no_dirs(f"/machine.slice/{unit}")


def test_device_rules_survive_systemd(sbx, bundle, tmp_path):
    """linux.resources.devices on v1: devices.list of the scope is ours, and
    systemd writes its DeviceAllow= list again on daemon-reload (on v1 that
    list is then the only one): from inside, an allowed device stays usable
    and a denied one EPERM, before and after a reload and an update."""
    cid = sbx.new_id()
    unit = f"sbx-{cid}.scope"
    path = f"/machine.slice/{unit}"
    cp = sd_run(sbx, kmsg_bundle(bundle, cid, [{"allow": False, "access": "rwm"}]), cid)
    assert cp.returncode == 0, describe(cp)
    script = ('r() { if e=$(sh -c "$2" 2>&1 >/dev/null); then echo "$1 ok"; '
              'else case $e in *"Operation not permitted"*) echo "$1 EPERM" ;; *) echo "$1 other: $e" ;; esac; fi; }\n'
              "r kmsg 'echo sbxrun-device-test >/dev/kmsg'\nr null 'echo x >/dev/null'\n")

    def probe():
        return dict(line.split(" ", 1) for line in sbx.ok("exec", cid, "sh", "-c", script).stdout.splitlines())

    assert probe() == {"kmsg": "EPERM", "null": "ok"}
    assert "c 1:11" not in v1file("devices", path, "devices.list")
    systemctl("daemon-reload")
    assert probe() == {"kmsg": "EPERM", "null": "ok"}
    assert unit_prop(unit, "DevicePolicy") == "strict"
    res = tmp_path / "res.json"
    res.write_text(json.dumps({"devices": [{"allow": False, "access": "rwm"},
                                           {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}]}))
    sbx.ok("update", "--resources", str(res), cid)
    assert probe() == {"kmsg": "ok", "null": "ok"}
    assert "/dev/char/1:11 w" in unit_prop(unit, "DeviceAllow")
    systemctl("daemon-reload")
    assert probe() == {"kmsg": "ok", "null": "ok"}
    # a block list systemd cannot say, after an allow list: refused (the
    # unit's list, written again at each reload, would allow what it
    # denies; emptied, systemd would move the init out of the devices
    # cgroup); the rules stay as they were
    res.write_text(json.dumps({"devices": [{"allow": False, "type": "c", "major": 1, "minor": 11,
                                            "access": "rwm"}]}))
    cp = sbx("update", "--resources", str(res), cid)
    assert cp.returncode != 0 and "linux.resources.devices: a block list" in cp.stderr, describe(cp)
    systemctl("daemon-reload")
    assert probe() == {"kmsg": "ok", "null": "ok"}
    pid = sbx.state(cid)["pid"]
    assert cgroup_lines(init_cgroup(pid))["devices"] == path
    sbx.ok("delete", "--force", cid)
    assert unit_gone(unit)
    assert_no_dirs(path)


def test_device_block_list_stays_ours(sbx, bundle):
    """Rules that are a block list from the start: systemd gets no device
    properties, the devices cgroup is sbxrun's alone (made with the
    placeholder in it, so systemd cannot remove it as unused before the
    init is in), and a daemon-reload leaves the rules and the init there."""
    cid = sbx.new_id()
    unit = f"sbx-{cid}.scope"
    path = f"/machine.slice/{unit}"
    cp = sd_run(sbx, kmsg_bundle(bundle, cid, [{"allow": False, "type": "c", "major": 1, "minor": 11,
                                                "access": "rwm"}]), cid)
    assert cp.returncode == 0, describe(cp)
    probe = "echo x >/dev/null && echo null-ok; sh -c 'echo t >/dev/kmsg' 2>&1 || true"
    assert sbx.ok("exec", cid, "sh", "-c", probe).stdout.split("\n")[0] == "null-ok"
    assert "Operation not permitted" in sbx.ok("exec", cid, "sh", "-c", probe).stdout
    assert unit_prop(unit, "DeviceAllow") == ""
    systemctl("daemon-reload")
    out = sbx.ok("exec", cid, "sh", "-c", probe).stdout
    assert out.startswith("null-ok") and "Operation not permitted" in out, out
    pid = sbx.state(cid)["pid"]
    assert cgroup_lines(init_cgroup(pid))["devices"] == path
    sbx.ok("delete", "--force", cid)
    assert unit_gone(unit)
    assert_no_dirs(path)


@pytest.mark.parametrize(
    "res, expect",
    [
        # cpuset is sbxrun's on v1: the kernel refuses the CPU after the
        # unit exists, which must go again with every directory
        ({"cpu": {"cpus": "1000"}}, ["cpu.cpus", "1000"]),
        ({"cpu": {"cpus": "9000"}}, ["linux.resources.cpu.cpus: systemd refused AllowedCPUs=9000"]),
    ],
    ids=["apply-fails", "property-refused"],
)
def test_refused_leaves_nothing(sbx, bundle, res, expect):
    cid = refused_create(sbx, bundle, "machine.slice:sbx:{cid}", res, expect)
    assert_no_dirs(f"/machine.slice/sbx-{cid}.scope")


@pytest.mark.parametrize("step", ["create:cgroup", "create:resources", "create:spawned"])
def test_killed_create_is_removed_with_its_unit(sbx, bundle, step):
    """A create killed after the unit and sbxrun's own v1 directories exist:
    delete --force stops the unit and removes sbxrun's directories."""
    cid = sbx.new_id()
    unit = f"sbx-{cid}.scope"
    b = sd_bundle(bundle, f"machine.slice:sbx:{cid}")
    cp = sbx("--systemd-cgroup", "create", "--bundle", b, cid, env={**os.environ, "SBXRUN_TEST_KILL_AT": step})
    assert cp.returncode == -9, describe(cp)
    sbx.ok("delete", "--force", cid)
    assert not (sbx.root / cid).exists()
    wait_for(lambda: unit_gone(unit), timeout=10, what=f"{unit} gone")
    assert_no_dirs(f"/machine.slice/{unit}")


# ---------------------------------------------------------------------------
# podman, with its default cgroup_manager = "systemd", on the v1 layouts


def test_podman_run_with_limits(podman):
    """podman run --rm and run -d on sbxrun: the scope in every hierarchy
    and the v1 limits, from inside; the unit gone after rm."""
    pm = podman
    cp = pm("run", "--rm", "--network", "none", "--memory", "64m", "--pids-limit", "50", "--cpus", "0.2",
            "localhost/sbxbox", "sh", "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    assert cp.stdout.split() == [str(64 << 20), "50", "20000"], describe(cp)
    cid = pm("run", "-d", "--network", "none", "--memory", "64m", "localhost/sbxbox", "sleep", "1000").stdout.strip()
    unit = f"libpod-{cid}.scope"
    path = f"/machine.slice/{unit}"
    pid = int(pm("inspect", "--format", "{{.State.Pid}}", cid).stdout)
    lines = cgroup_lines(init_cgroup(pid))
    assert lines["name=systemd"] == path and lines["memory"] == path and lines["freezer"] == path, lines
    assert v1file("memory", path, "memory.limit_in_bytes") == str(64 << 20)
    pm("pause", cid)
    assert v1file("freezer", path, "freezer.state") == "FROZEN"
    pm("unpause", cid)
    pm("update", "--memory", "128m", cid)
    assert v1file("memory", path, "memory.limit_in_bytes") == str(128 << 20)
    pm("stop", "-t", "1", cid)
    pm("rm", cid)
    wait_for(lambda: unit_gone(unit), timeout=20, what=f"{unit} gone")
    assert_no_dirs(path)
