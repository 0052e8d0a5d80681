"""sbxrun on a host where systemd is PID 1 and manages the cgroups, as
tests/vm/guest.sh --mode systemd presents it (run by tests/vm/run-systemd.sh;
skipped elsewhere).  The suite runs in the delegated unit
sbxvm-command.service, itself in the leaf "payload" of the unit's cgroup.

- the cgroupfs driver inside the delegated cgroup (what an engine in a
  delegated unit does);
- the systemd driver (--systemd-cgroup, linux.cgroupsPath slice:prefix:name):
  the transient scope, the limits as unit properties and in the cgroup
  files, update/pause/resume/ps/kill/events/delete through it, the slice
  name rules, bad input and failures leaving no unit behind;
- a CRI pod (containerd's SystemdCgroup = true form of cgroupsPath): the
  sandbox's egress policy scoped to the pod's slice, covering its apps;
- podman with its default cgroup_manager=systemd driving sbxrun.
"""

import ctypes
import json
import os
import re
import shutil
import subprocess
import tarfile
import time

import pytest

from conftest import describe, run_cmd, sbxrun, wait_for

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("run", "create", "start", "delete")]

CG = "/sys/fs/cgroup"
BUS = "/run/dbus/system_bus_socket"


def pid1():
    with open("/proc/1/comm") as f:
        return f.read().strip()


if pid1() != "systemd" or not os.path.exists(BUS):
    pytestmark.append(pytest.mark.skip(reason="systemd is not PID 1 here (tests/vm/run-systemd.sh runs these)"))

HAS_DRIVER = "+SYSTEMD" in sbxrun("--version").stdout
needs_driver = pytest.mark.skipif(not HAS_DRIVER, reason="sbxrun built without the systemd driver (+SYSTEMD)")


def own_cgroup():
    """Our cgroup in systemd's tracking hierarchy: cgroup2's, or on the
    legacy v1 layout (no cgroup2) name=systemd's."""
    with open("/proc/self/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    return next((p for _, c, p in lines if c == ""), None) or next(p for _, c, p in lines if c == "name=systemd")


# the unit's cgroup (our own is its leaf "payload")
UNIT_CG = os.path.dirname(own_cgroup()) if pid1() == "systemd" else "/"


def systemctl(*args):
    return run_cmd(["systemctl", *args])


def unit_prop(unit, prop):
    return systemctl("show", "-P", prop, unit).stdout.strip()


def unit_gone(unit):
    """Neither loaded nor known to systemd any more.  (A slice loads without
    a unit file whenever asked about: for slices, inactive is gone.)"""
    if unit.endswith(".slice"):
        return unit_prop(unit, "ActiveState") == "inactive"
    return unit_prop(unit, "LoadState") == "not-found" and unit_prop(unit, "ActiveState") == "inactive"


def transient_units():
    """The transient units systemd knows, as a set of names."""
    out = systemctl("list-units", "--all", "--plain", "--no-legend", "--full").stdout
    return {line.split()[0] for line in out.splitlines() if line.split()} - BOOT_UNITS


BOOT_UNITS = set()


@pytest.fixture(autouse=True)
def no_unit_left(sbx):
    """Every test: no unit appears that was not there before (the sbx
    teardown has force-deleted the test's containers by then)."""
    if not BOOT_UNITS:
        BOOT_UNITS.update(transient_units())
    before = transient_units()
    yield
    shutil.rmtree(sbx.root / ".seccomp-cache", ignore_errors=True)
    for cid in os.listdir(sbx.root) if sbx.root.is_dir() else []:
        sbx("delete", "--force", cid)
    # parent slices systemd made on the way (machine.slice) stay, as with runc
    left = {u for u in transient_units() - before if u.endswith(".scope")}
    # podman's own conmon scope ends after `podman run --rm` has returned
    # (conmon still runs podman's exit command): not ours, so waited for.
    # sbxrun's scopes must be gone once delete has returned.
    conmon = {u for u in left if u.startswith("libpod-conmon-")}
    if conmon:
        wait_for(lambda: all(unit_gone(u) for u in conmon), timeout=60, what=f"{sorted(conmon)} gone")
    left -= conmon
    assert not left, f"units left behind: {sorted(left)}"


def cgfile(path, name):
    with open(f"{CG}{path}/{name}") as f:
        return f.read().strip()


def init_cgroup(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return f.read().strip()


LIMITS = {
    "memory": {"limit": 64 << 20, "reservation": 8 << 20},
    "pids": {"limit": 50},
    "cpu": {"quota": 20000, "period": 100000, "shares": 1024},
}


def sd_bundle(bundle, path, args=("sleep", "100"), limits=True, cgroupns=True):
    b = bundle(list(args))
    b.config["linux"]["cgroupsPath"] = path
    if limits:
        b.config["linux"]["resources"] = json.loads(json.dumps(LIMITS))
    if not cgroupns:
        b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "cgroup"]
    b.config["root"]["readonly"] = False
    b.write()
    return b


# ---------------------------------------------------------------------------
# the host


def test_systemd_is_pid1_with_a_bus():
    assert pid1() == "systemd"
    assert os.path.exists(BUS)
    assert open("/proc/self/mountinfo").read().count(" - cgroup2 ") >= 1
    assert systemctl("is-system-running").stdout.strip() in ("running", "degraded", "starting")
    assert own_cgroup() == "/system.slice/sbxvm-command.service/payload"
    assert unit_prop("sbxvm-command.service", "Delegate") == "yes"


def test_cgroupfs_driver_in_the_delegated_unit(sbx, bundle):
    """Without --systemd-cgroup, a cgroupsPath in the delegated unit's
    cgroup (beside our leaf) gets its limits; systemd leaves it alone."""
    path = f"{UNIT_CG}/ctr-{os.getpid()}"
    b = sd_bundle(bundle, path)
    cid = sbx.new_id()
    sbx.ok("run", "-d", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    assert init_cgroup(pid) == f"0::{path}"
    assert cgfile(path, "memory.max") == str(64 << 20)
    assert cgfile(path, "pids.max") == "50"
    assert cgfile(path, "cpu.max") == "20000 100000"
    sbx.ok("pause", cid)
    assert sbx.state(cid)["status"] == "paused"
    sbx.ok("resume", cid)
    sbx.ok("delete", "--force", cid)
    assert not os.path.exists(CG + path)


# ---------------------------------------------------------------------------
# the systemd driver


def sd_run(sbx, b, cid, *args):
    return sbx("--systemd-cgroup", "run", "-d", *args, "--bundle", b, cid)


@needs_driver
def test_scope_placement_and_limits(sbx, bundle):
    """machine.slice:libpod:<id>: the init sits in
    /machine.slice/libpod-<id>.scope (seen from inside without a cgroup
    namespace), the unit is delegated with the limits as properties, the
    files say the same; delete stops the unit and it is gone."""
    cid = sbx.new_id()
    unit = f"libpod-{cid}.scope"
    b = sd_bundle(bundle, f"machine.slice:libpod:{cid}", ["sh", "-c", "cat /proc/self/cgroup > /tmp/cg; sleep 100"],
                  cgroupns=False)
    cp = sd_run(sbx, b, cid)
    assert cp.returncode == 0, describe(cp)
    path = f"/machine.slice/{unit}"
    view = wait_for(lambda: (b.rootfs / "tmp/cg").exists() and (b.rootfs / "tmp/cg").read_text().strip())
    assert view == f"0::{path}"
    pid = sbx.state(cid)["pid"]
    assert init_cgroup(pid) == f"0::{path}"
    assert cgfile(path, "cgroup.procs").split() == [str(pid)]  # the placeholder is gone
    assert cgfile(path, "memory.max") == str(64 << 20)
    assert cgfile(path, "memory.low") == str(8 << 20)
    assert cgfile(path, "pids.max") == "50"
    assert cgfile(path, "cpu.max") == "20000 100000"
    assert unit_prop(unit, "ActiveState") == "active"
    assert unit_prop(unit, "Delegate") == "yes"
    assert unit_prop(unit, "Slice") == "machine.slice"
    assert unit_prop(unit, "MemoryMax") == str(64 << 20)
    assert unit_prop(unit, "TasksMax") == "50"
    assert unit_prop(unit, "CPUQuotaPerSecUSec") == "200ms"
    assert unit_prop(unit, "DefaultDependencies") == "no"
    sbx.ok("--systemd-cgroup", "delete", "--force", cid)
    assert unit_gone(unit)
    assert not os.path.exists(CG + path)


@needs_driver
def test_lifecycle_through_the_unit(sbx, bundle):
    """update (SetUnitProperties and the files), pause/resume, ps, events
    --stats, kill --all, delete: each on the scope's cgroup."""
    cid = sbx.new_id()
    unit = f"sbx-{cid}.scope"
    b = sd_bundle(bundle, f":sbx:{cid}", ["sh", "-c", "sleep 100 & sleep 100 & wait"])
    cp = sd_run(sbx, b, cid)
    assert cp.returncode == 0, describe(cp)
    path = f"/system.slice/{unit}"
    assert unit_prop(unit, "Slice") == "system.slice"
    sbx.ok("update", "--memory", str(96 << 20), "--pids-limit", "40", cid)
    assert cgfile(path, "memory.max") == str(96 << 20)
    assert unit_prop(unit, "MemoryMax") == str(96 << 20)
    assert cgfile(path, "pids.max") == "40"
    assert unit_prop(unit, "TasksMax") == "40"
    sbx.ok("pause", cid)
    assert sbx.state(cid)["status"] == "paused"
    assert cgfile(path, "cgroup.freeze") == "1"
    sbx.ok("resume", cid)
    assert sbx.state(cid)["status"] == "running"
    pids = json.loads(sbx.ok("ps", "--format", "json", cid).stdout)
    assert len(pids) == 3 and sorted(pids) == sorted(int(p) for p in cgfile(path, "cgroup.procs").split())
    ev = json.loads(sbx.ok("events", "--stats", cid).stdout)
    assert ev["data"]["memory"]["usage"]["limit"] == 96 << 20
    assert ev["data"]["pids"]["current"] == 3
    sbx.ok("kill", "--all", cid, "KILL")
    wait_for(lambda: sbx.state(cid)["status"] == "stopped", timeout=20)
    sbx.ok("delete", cid)
    wait_for(lambda: unit_gone(unit), timeout=10, what=f"{unit} gone")
    assert not os.path.exists(CG + path)


@needs_driver
def test_pids_limit_one(sbx, bundle):
    """pids.limit 1: the scope's placeholder must not take the init's only
    task; the limit is exactly 1 once created."""
    cid = sbx.new_id()
    unit = f"sbx-{cid}.scope"
    b = sd_bundle(bundle, f"machine.slice:sbx:{cid}", ["/bin/true"], limits=False)
    b.config["linux"]["resources"] = {"pids": {"limit": 1}}
    b.write()
    sbx.ok("--systemd-cgroup", "create", "--bundle", b, cid)
    assert cgfile(f"/machine.slice/{unit}", "pids.max") == "1"
    assert unit_prop(unit, "TasksMax") == "1"
    sbx.ok("start", cid)
    sbx.wait_status(cid, "stopped", timeout=30)
    sbx.ok("delete", cid)
    wait_for(lambda: unit_gone(unit), timeout=10, what=f"{unit} gone")


@needs_driver
def test_nested_slice_and_slice_units(sbx, bundle):
    """`-` in a slice name nests slices; a name ending in .slice makes that
    slice the container's unit."""
    cid = sbx.new_id()
    b = sd_bundle(bundle, f"sbxa-sbxb.slice:sbx:{cid}", limits=False)
    cp = sd_run(sbx, b, cid)
    assert cp.returncode == 0, describe(cp)
    pid = sbx.state(cid)["pid"]
    assert init_cgroup(pid) == f"0::/sbxa.slice/sbxa-sbxb.slice/sbx-{cid}.scope"
    sbx.ok("delete", "--force", cid)
    assert unit_gone(f"sbx-{cid}.scope")
    for s in ("sbxa-sbxb.slice", "sbxa.slice"):
        systemctl("stop", s)

    cid = sbx.new_id()
    name = f"sbxc-{cid.replace('-', '')}.slice"
    b = sd_bundle(bundle, f"sbxc.slice:x:{name}")
    cp = sd_run(sbx, b, cid)
    assert cp.returncode == 0, describe(cp)
    pid = sbx.state(cid)["pid"]
    assert init_cgroup(pid) == f"0::/sbxc.slice/{name}"
    assert unit_prop(name, "MemoryMax") == str(64 << 20)
    assert cgfile(f"/sbxc.slice/{name}", "pids.max") == "50"
    sbx.ok("delete", "--force", cid)
    assert unit_gone(name)
    systemctl("stop", "sbxc.slice")


@needs_driver
@pytest.mark.parametrize(
    "path, res, expect",
    [
        ("machine.slice:libpod", None, ["linux.cgroupsPath", "slice:prefix:name"]),
        ("ma/chine.slice:libpod:x", None, ["linux.cgroupsPath", "no `/`"]),
        ("machine.slice:sbx:bad%name", None, ["sbx-bad%name.scope", "systemd refused"]),
        # systemd takes AllowedCPUs for a CPU the guest lacks; the kernel
        # refuses cpuset.cpus after the unit exists: it must go again
        ("machine.slice:sbx:{cid}", {"cpu": {"cpus": "1000"}}, ["cpu.cpus", "1000"]),
        # a property systemd refuses (AllowedCPUs= stops at CPU 8191), after
        # the scope exists: named with its value, the unit goes again
        ("machine.slice:sbx:{cid}", {"cpu": {"cpus": "9000"}},
         ["linux.resources.cpu.cpus: systemd refused AllowedCPUs=9000"]),
    ],
    ids=["two-fields", "slash", "unit-name", "apply-fails", "property-refused"],
)
def test_refused_leaves_nothing(sbx, bundle, path, res, expect):
    cid = refused_create(sbx, bundle, path, res, expect)
    assert not os.path.exists(f"{CG}/machine.slice/sbx-{cid}.scope")


def refused_create(sbx, bundle, path, res, expect):
    """create with cgroupsPath PATH ({cid} filled in) and resources RES
    fails, naming each of EXPECT, and leaves no state and no unit; the id."""
    cid = sbx.new_id()
    b = sd_bundle(bundle, path.format(cid=cid), limits=False)
    if res:
        b.config["linux"]["resources"] = res
        b.write()
    units = transient_units()
    cp = sbx("--systemd-cgroup", "create", "--bundle", b, cid)
    assert cp.returncode != 0, describe(cp)
    for e in expect:
        assert e in cp.stderr, describe(cp)
    assert not (sbx.root / cid).exists()
    assert transient_units() <= units
    return cid


@needs_driver
def test_no_system_bus(sbx, bundle):
    cid = sbx.new_id()
    b = sd_bundle(bundle, f"machine.slice:sbx:{cid}", limits=False)
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/run/sbx-no-such-bus"}
    cp = sbx("--systemd-cgroup", "create", "--bundle", b, cid, env=env)
    assert cp.returncode != 0
    assert "system bus" in cp.stderr and "systemd" in cp.stderr, describe(cp)
    assert len(cp.stderr.strip().splitlines()) == 1, cp.stderr
    assert not (sbx.root / cid).exists()
    assert unit_gone(f"sbx-{cid}.scope")


@needs_driver
def test_failed_create_stops_the_unit(sbx, bundle):
    """A failure after systemd made the scope (the process cannot start)
    takes the unit away again."""
    cid = sbx.new_id()
    b = sd_bundle(bundle, f"machine.slice:sbx:{cid}", ["/no/such/binary"])
    cp = sbx("--systemd-cgroup", "run", "--bundle", b, cid)
    assert cp.returncode != 0, describe(cp)
    sbx("delete", "--force", cid)
    wait_for(lambda: unit_gone(f"sbx-{cid}.scope"), timeout=10, what="unit gone")


@needs_driver
def test_unit_of_another_container_left_alone(sbx, bundle):
    """A second container naming the unit of a running one: refused by
    name (UnitExists), and its cleanup neither stops that unit nor kills
    the first container's processes."""
    a = sbx.new_id()
    unit = f"sbx-dup{a}.scope"
    b = sd_bundle(bundle, f":sbx:dup{a}", ["sleep", "100"])
    cp = sd_run(sbx, b, a)
    assert cp.returncode == 0, describe(cp)
    pid = sbx.state(a)["pid"]
    other = sbx.new_id()
    cp = sbx("--systemd-cgroup", "run", "-d", "--bundle", b, other)
    assert cp.returncode != 0, describe(cp)
    assert f"unit `{unit}` exists already" in cp.stderr, describe(cp)
    assert other not in sbx.list_ids()
    assert sbx.state(a)["status"] == "running" and os.path.exists(f"/proc/{pid}")
    assert unit_prop(unit, "ActiveState") == "active"
    sbx.ok("delete", "--force", a)
    wait_for(lambda: unit_gone(unit), timeout=10, what=f"{unit} gone")


@needs_driver
@pytest.mark.parametrize("step", ["create:cgroup-recorded", "create:cgroup", "create:resources",
                                  "create:spawned"])
def test_killed_create_is_removed_with_its_unit(sbx, bundle, step):
    """The journal names the unit before systemd is asked for it: a create
    killed at any step is listed as creating, and delete --force stops the
    unit and removes its cgroup."""
    cid = sbx.new_id()
    unit = f"sbx-{cid}.scope"
    b = sd_bundle(bundle, f"machine.slice:sbx:{cid}")
    cp = sbx("--systemd-cgroup", "create", "--bundle", b, cid, env={**os.environ, "SBXRUN_TEST_KILL_AT": step})
    assert cp.returncode == -9, describe(cp)
    listed = {c["id"]: c["status"] for c in json.loads(sbx.ok("list", "--format", "json").stdout) or []}
    assert listed.get(cid) == "creating"
    sbx.ok("delete", "--force", cid)
    assert not (sbx.root / cid).exists()
    wait_for(lambda: unit_gone(unit), timeout=10, what=f"{unit} gone")
    assert not os.path.exists(f"{CG}/machine.slice/{unit}")


# ---------------------------------------------------------------------------
# devices and block I/O, on the guest's disk (guest.sh --disk)


def guest_disk():
    """(major, minor) of the guest's virtio disk; skip without one."""
    for _ in range(2):
        for name in sorted(os.listdir("/sys/block")):
            try:
                serial = open(f"/sys/block/{name}/serial").read().strip()
            except OSError:
                continue
            if serial == "sbxvm-disk":
                return tuple(int(x) for x in open(f"/sys/block/{name}/dev").read().split(":"))
        run_cmd(["modprobe", "virtio_blk"])
        time.sleep(2)
    pytest.skip("no guest disk (tests/vm/run-systemd.sh boots with guest.sh --disk)")


_libc = ctypes.CDLL(None, use_errno=True)
SYS_BPF, BPF_PROG_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD, BPF_PROG_QUERY, BPF_CGROUP_DEVICE = 321, 13, 15, 16, 6


def _bpf(cmd, attr):
    r = _libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def device_programs(path):
    """Names of the device programs attached to cgroup PATH itself
    (BPF_PROG_QUERY, then each program's bpf_prog_info.name)."""
    fd = os.open(CG + path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        ids = (ctypes.c_uint32 * 64)()
        q = (ctypes.c_uint8 * 32)()
        ctypes.c_uint32.from_buffer(q, 0).value = fd
        ctypes.c_uint32.from_buffer(q, 4).value = BPF_CGROUP_DEVICE
        ctypes.c_uint64.from_buffer(q, 16).value = ctypes.addressof(ids)
        ctypes.c_uint32.from_buffer(q, 24).value = 64
        _bpf(BPF_PROG_QUERY, q)
        names = []
        for i in range(ctypes.c_uint32.from_buffer(q, 24).value):
            a = (ctypes.c_uint8 * 16)()
            ctypes.c_uint32.from_buffer(a, 0).value = ids[i]
            pfd = _bpf(BPF_PROG_GET_FD_BY_ID, a)
            try:
                info = (ctypes.c_uint8 * 96)()
                g = (ctypes.c_uint8 * 16)()
                ctypes.c_uint32.from_buffer(g, 0).value = pfd
                ctypes.c_uint32.from_buffer(g, 4).value = 96
                ctypes.c_uint64.from_buffer(g, 8).value = ctypes.addressof(info)
                _bpf(BPF_OBJ_GET_INFO_BY_FD, g)
                names.append(bytes(info[64:80]).split(b"\0")[0].decode())
            finally:
                os.close(pfd)
        return sorted(names)
    finally:
        os.close(fd)


@needs_driver
def test_device_rules_through_the_unit(sbx, bundle, tmp_path):
    """linux.resources.devices become DevicePolicy=strict and DeviceAllow=
    on the scope, beside our own device program: seen from inside, an
    allowed device opens and a denied one gives EPERM, after an update and
    after systemd re-applies the unit (daemon-reload) too; both programs
    stay attached (neither side detaches the other's)."""
    maj, mi = guest_disk()
    cid = sbx.new_id()
    unit = f"sbx-{cid}.scope"
    path = f"/machine.slice/{unit}"
    b = sd_bundle(bundle, f"machine.slice:sbx:{cid}", ["sleep", "3600"], limits=False)
    b.config["linux"]["devices"] = [
        {"path": "/dev/sbxdisk", "type": "b", "major": maj, "minor": mi, "fileMode": 0o660, "uid": 0, "gid": 0},
        {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o644, "uid": 0, "gid": 0},
    ]
    b.config["linux"]["resources"] = {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "b", "major": maj, "minor": mi, "access": "r"},
    ]}
    b.write()
    cp = sd_run(sbx, b, cid)
    assert cp.returncode == 0, describe(cp)

    probes = {
        "read-disk": "head -c 512 /dev/sbxdisk >/dev/null",
        "write-disk": "printf x >/dev/sbxdisk",
        # write-only: /dev/kmsg wants CAP_SYSLOG only for reading
        "write-kmsg": "echo sbxrun-device-test >/dev/kmsg",
        "null": "echo x >/dev/null && head -c 4 /dev/zero >/dev/null",
    }
    # one exec for all the probes (each exec costs seconds under TCG)
    script = 'r() { if e=$(sh -c "$2" 2>&1 >/dev/null); then echo "$1 ok"; ' \
        'else case $e in *"Operation not permitted"*) echo "$1 EPERM" ;; *) echo "$1 other: $e" ;; esac; fi; }\n' + \
        "".join(f"r {op} '{cmd}'\n" for op, cmd in probes.items())

    def probe_all():
        cp = sbx.ok("exec", cid, "sh", "-c", script)
        return dict(line.split(" ", 1) for line in cp.stdout.splitlines())

    def check(expect, allow):
        assert probe_all() == expect
        assert unit_prop(unit, "DevicePolicy") == "strict"
        allowed = unit_prop(unit, "DeviceAllow")
        for entry in allow:
            assert entry in allowed, allowed
        assert device_programs(path) == ["sbx_devices", "sd_devices"]

    first = {"read-disk": "ok", "write-disk": "EPERM", "write-kmsg": "EPERM", "null": "ok"}
    check(first, [f"/dev/block/{maj}:{mi} r", "/dev/char/1:3 rwm", "char-pts rwm"])
    systemctl("daemon-reload")
    check(first, [f"/dev/block/{maj}:{mi} r"])

    res = tmp_path / "res.json"
    res.write_text(json.dumps({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "b", "major": maj, "minor": mi, "access": "rw"},
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"},
    ]}))
    sbx.ok("update", "--resources", str(res), cid)
    second = {"read-disk": "ok", "write-disk": "ok", "write-kmsg": "ok", "null": "ok"}
    check(second, [f"/dev/block/{maj}:{mi} rw", "/dev/char/1:11 w"])

    # narrowing again: systemd's list must shrink with ours
    res.write_text(json.dumps({"devices": [{"allow": False, "access": "rwm"}]}))
    sbx.ok("update", "--resources", str(res), cid)
    systemctl("daemon-reload")
    third = {"read-disk": "EPERM", "write-disk": "EPERM", "write-kmsg": "EPERM", "null": "ok"}
    check(third, ["/dev/char/1:3 rwm"])
    assert f"/dev/block/{maj}:{mi}" not in unit_prop(unit, "DeviceAllow")
    sbx.ok("delete", "--force", cid)
    assert unit_gone(unit)


@needs_driver
def test_io_max_through_the_unit(sbx, bundle, tmp_path):
    """blockIO throttle entries become IO*Max= on the scope: io.max (read
    from inside the container) has them, after update and daemon-reload."""
    maj, mi = guest_disk()
    cid = sbx.new_id()
    unit = f"sbx-{cid}.scope"
    b = sd_bundle(bundle, f"machine.slice:sbx:{cid}", ["sleep", "3600"], limits=False)
    dev = {"major": maj, "minor": mi}
    b.config["linux"]["resources"] = {"blockIO": {
        "throttleReadBpsDevice": [{**dev, "rate": 1 << 20}],
        "throttleWriteIOPSDevice": [{**dev, "rate": 100}],
    }}
    b.write()
    cp = sd_run(sbx, b, cid)
    assert cp.returncode == 0, describe(cp)

    def io_max():
        return sbx.ok("exec", cid, "cat", "/sys/fs/cgroup/io.max").stdout.strip()

    assert io_max() == f"{maj}:{mi} rbps={1 << 20} wbps=max riops=max wiops=100"
    assert unit_prop(unit, "IOReadBandwidthMax") == f"/dev/block/{maj}:{mi} {1 << 20}"
    assert unit_prop(unit, "IOWriteIOPSMax") == f"/dev/block/{maj}:{mi} 100"
    res = tmp_path / "res.json"
    res.write_text(json.dumps({"blockIO": {
        "throttleReadBpsDevice": [{**dev, "rate": 2 << 20}],
        "throttleWriteBpsDevice": [{**dev, "rate": 3 << 20}],
    }}))
    sbx.ok("update", "--resources", str(res), cid)
    want = f"{maj}:{mi} rbps={2 << 20} wbps={3 << 20} riops=max wiops=100"
    assert io_max() == want
    assert unit_prop(unit, "IOReadBandwidthMax") == f"/dev/block/{maj}:{mi} {2 << 20}"
    systemctl("daemon-reload")
    assert io_max() == want
    sbx.ok("delete", "--force", cid)
    assert unit_gone(unit)


# ---------------------------------------------------------------------------
# podman, with its default cgroup_manager = "systemd"


@pytest.fixture(scope="module")
def podman(tmp_path_factory, busybox_rootfs):
    """podman on a private store (vfs: the guest's root is an overlay),
    with sbxrun as the runtime and an image imported from the busybox
    rootfs (the guest has no network)."""
    if not shutil.which("podman") or not shutil.which("conmon"):
        pytest.skip("podman or conmon not installed (apt-get install podman)")
    if not HAS_DRIVER:
        pytest.skip("sbxrun built without the systemd driver")
    top = tmp_path_factory.mktemp("podman")
    base = ["podman", "--runtime", os.environ.get("SBXRUN"), "--root", str(top / "root"),
            "--runroot", f"/run/sbxpm-{os.getpid()}", "--storage-driver", "vfs", "--events-backend", "file",
            "--cgroup-manager", "systemd"]
    tar = top / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(busybox_rootfs, arcname=".")

    def pm(*args, check=True, timeout=120):
        cp = run_cmd([*base, *map(str, args)], timeout=timeout)
        if check:
            assert cp.returncode == 0, describe(cp)
        return cp

    pm("import", tar, "localhost/sbxbox")
    yield pm
    pm("rm", "--all", "--force", check=False)
    shutil.rmtree(f"/run/sbxpm-{os.getpid()}", ignore_errors=True)
    shutil.rmtree(top, ignore_errors=True)  # the image store: not state the guard should see


def test_podman_run_rm_with_limits(podman):
    cp = podman("run", "--rm", "--network", "none", "--memory", "64m", "--pids-limit", "50", "--cpus", "0.2",
                "localhost/sbxbox", "sh", "-c",
                "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max")
    assert cp.stdout.split("\n")[:4] == ["0::/", str(64 << 20), "50", "20000 100000"], describe(cp)


def test_podman_lifecycle(podman):
    cid = podman("run", "-d", "--network", "none", "--memory", "64m", "--pids-limit", "50", "--cpus", "0.2",
                 "localhost/sbxbox", "sleep", "1000").stdout.strip()
    unit = f"libpod-{cid}.scope"
    path = f"/machine.slice/{unit}"
    pid = int(podman("inspect", "--format", "{{.State.Pid}}", cid).stdout)
    assert init_cgroup(pid) == f"0::{path}"
    assert cgfile(path, "memory.max") == str(64 << 20)
    assert cgfile(path, "pids.max") == "50"
    assert cgfile(path, "cpu.max") == "20000 100000"
    assert unit_prop(unit, "ActiveState") == "active"
    assert podman("exec", cid, "echo", "hi").stdout == "hi\n"
    st = json.loads(podman("stats", "--no-stream", "--format", "json", cid).stdout)
    assert st and st[0]["id"].startswith(cid[:12]), st
    podman("pause", cid)
    assert podman("inspect", "--format", "{{.State.Status}}", cid).stdout.strip() == "paused"
    assert cgfile(path, "cgroup.freeze") == "1"
    podman("unpause", cid)
    assert podman("inspect", "--format", "{{.State.Status}}", cid).stdout.strip() == "running"
    podman("update", "--memory", "128m", cid)
    assert cgfile(path, "memory.max") == str(128 << 20)
    podman("stop", "-t", "1", cid)
    podman("rm", cid)
    wait_for(lambda: unit_gone(unit), timeout=20, what=f"{unit} gone")
    assert not os.path.exists(CG + path)


# ---------------------------------------------------------------------------
# containerd's runc shim with SystemdCgroup (ctr --runc-systemd-cgroup)


@pytest.fixture(scope="module")
def ctr(containerd):
    if not HAS_DRIVER:
        pytest.skip("sbxrun built without the systemd driver")
    return containerd


def test_containerd_shim_systemd_cgroup(ctr):
    """The runc shim with SystemdCgroup (ctr --runc-systemd-cgroup) runs the
    container through sbxrun --systemd-cgroup, in its scope, with its
    limit; the unit is gone afterwards."""
    cid = f"sbxctr{os.getpid()}"
    unit = f"sbxctr-{cid}.scope"
    path = f"/machine.slice/{unit}"
    ctr("run", "-d", "--runc-binary", os.environ.get("SBXRUN"), "--runc-systemd-cgroup",
        "--cgroup", f"machine.slice:sbxctr:{cid}", "--memory-limit", str(64 << 20),
        "localhost/sbxbox:latest", cid, "sleep", "1000")

    def task():
        for line in ctr("task", "ls").stdout.splitlines()[1:]:
            f = line.split()
            if f and f[0] == cid:
                return int(f[1]), f[2]
        return None, None

    pid, status = task()
    assert status == "RUNNING", (pid, status)
    assert init_cgroup(pid) == f"0::{path}"
    assert cgfile(path, "memory.max") == str(64 << 20)
    assert unit_prop(unit, "ActiveState") == "active"
    ctr("task", "kill", "-s", "SIGKILL", cid)
    wait_for(lambda: task()[1] == "STOPPED", timeout=30, what="task stopped")
    ctr("task", "delete", cid)
    ctr("containers", "delete", cid)
    wait_for(lambda: unit_gone(unit), timeout=20, what=f"{unit} gone")
    assert not os.path.exists(CG + path)


# ---------------------------------------------------------------------------
# a CRI pod under the systemd driver (containerd with SystemdCgroup = true)

from test_netfilter import check, netlab, table_name  # noqa: E402,F401 (the fixture)
from test_pods import POD_ALLOWED, POD_BLOCKED, Pod  # noqa: E402

POD_UID = "4141e535_b1ad_4276_852c_69eb193d5eee"
POD_SLICE = f"kubepods-besteffort-pod{POD_UID}.slice"
POD_CG = f"/kubepods.slice/kubepods-besteffort.slice/{POD_SLICE}"


class SdPod(Pod):
    """test_pods' CRI pod (the captured configs, lab's namespace) with the
    cgroupsPath containerd's CRI plugin sends with SystemdCgroup = true:
    `<pod slice>:cri-containerd:<id>`, every container in the pod's slice."""

    def __init__(self, sbx, bundle, tmp_path, lab):
        self.sbx, self.bundle, self.tmp, self.lab, self.kind = sbx, bundle, tmp_path, lab, "cri"
        self.sandbox, self.pid, self.ids = None, None, []
        self.cgroup = None  # cgroupsPath: set below

    def config(self, name, cid, *args, **kw):
        b = super().config(name, cid, *args, **kw)
        with b.edit() as c:
            c["linux"]["cgroupsPath"] = f"{POD_SLICE}:cri-containerd:{cid}"
        return b


@needs_driver
def test_cri_pod_policy_scoped_to_the_pod_slice(sbx, bundle, tmp_path, netlab):
    """The sandbox's policy is scoped to the pod's slice (the parent of its
    cri-containerd-<id>.scope), so both apps of the pod -- one carrying the
    pod annotation as containerd copies it, one without any -- are
    restricted, the second after a restart (delete, create again) too; the
    table goes with the sandbox, deleted last."""
    sbx.global_args = ["--systemd-cgroup"]
    pod = SdPod(sbx, bundle, tmp_path, netlab)
    allowed, blocked = POD_ALLOWED[:1], POD_BLOCKED[:2]  # each probe costs seconds under TCG
    try:
        sandbox = pod.start_sandbox()
        assert init_cgroup(pod.pid) == f"0::{POD_CG}/cri-containerd-{sandbox}.scope"
        app = pod.app("cri-app-default.json")
        bare = pod.app("cri-app-default.json", drop_sbxrun=True)
        for cid in (app, bare):
            assert init_cgroup(sbx.state(cid)["pid"]) == f"0::{POD_CG}/cri-containerd-{cid}.scope"
            check(sbx, cid, allowed, blocked)
        rec = json.loads((sbx.root / sandbox / "net.json").read_text())
        assert rec["scope"] == "pod" and rec["cgroup2"].endswith(POD_CG), rec
        rules = netlab.ruleset()
        assert f"table inet {table_name(sandbox)}" in rules and rules.count("table inet sbxrun-") == 1, rules
        sbx.ok("delete", "--force", bare)
        assert unit_gone(f"cri-containerd-{bare}.scope")
        pod.app("cri-app-default.json", cid=bare, drop_sbxrun=True)
        check(sbx, bare, allowed, blocked)
        for cid in (app, bare):
            sbx.ok("delete", "--force", cid)
        assert f"table inet {table_name(sandbox)}" in netlab.ruleset()
        sbx.ok("delete", "--force", sandbox)
        assert "sbxrun-" not in netlab.ruleset()
        for cid in (sandbox, app, bare):
            assert unit_gone(f"cri-containerd-{cid}.scope")
    finally:
        for cid in pod.ids:
            if (sbx.root / cid).exists():
                sbx("delete", "--force", cid)
        systemctl("stop", "kubepods.slice")


# ---------------------------------------------------------------------------
# rootless: the user's systemd (issue 15)

@pytest.fixture(scope="module")
def user_session(busybox_rootfs):
    """The rootless test user of test_rootless.py with a running user
    manager (loginctl enable-linger, user@UID.service) and its bundles
    (RootlessUser.bundle, from `sbxrun spec --rootless`); run(...) runs a
    command as the user in a scope of its user manager (systemd-run --user
    --scope), where a process of its session would be, so that sbxrun may
    move processes within user@UID.service."""
    import tempfile
    from test_rootless import USER, RootlessUser
    for cmd in ("useradd", "loginctl", "runuser", "systemd-run"):
        if not shutil.which(cmd):
            pytest.skip(f"{cmd} missing")
    if run_cmd(["id", USER]).returncode != 0:
        # the group may exist already (a user removed without its group)
        group = ["-g", USER] if run_cmd(["getent", "group", USER]).returncode == 0 else ["-U"]
        cp = run_cmd(["useradd", "-m", *group, USER])
        assert cp.returncode == 0, describe(cp)
    # lingering keeps the user manager up without a login (logind may be
    # asleep in the guest: user@UID.service is started below either way)
    run_cmd(["loginctl", "enable-linger", USER], timeout=120)
    top = tempfile.mkdtemp(prefix="sbxsd-", dir="/tmp")
    os.chmod(top, 0o755)
    u = RootlessUser(top, busybox_rootfs)
    u.service = f"user@{u.uid}.service"
    try:
        cp = systemctl("start", u.service)
        assert cp.returncode == 0, describe(cp)
        wait_for(lambda: os.path.exists(f"{u.xdg}/bus"), timeout=60, what=f"{u.xdg}/bus")
        env = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"XDG_RUNTIME_DIR={u.xdg}", f"USER={USER}"]

        def run(*args, scope=True, cwd=None):
            wrap = ["systemd-run", "--user", "--scope", "--quiet", "--"] if scope else []
            return run_cmd(["runuser", "-u", USER, "--", *env, *wrap, *args], cwd=cwd or top, timeout=180)

        u.scoped = run
        yield u
    finally:
        systemctl("stop", u.service)
        run_cmd(["loginctl", "disable-linger", USER], timeout=120)
        shutil.rmtree(top, ignore_errors=True)


def user_scope_config(path_form, cgroupns):
    """A config edit: cgroupsPath, memory and pids limits; without cgroupns,
    the host's /sys/fs/cgroup (in the /sys rbind) instead of a cgroup mount,
    so that the container reads its own cgroup's files by their full path."""
    def edit(c):
        c["linux"]["cgroupsPath"] = path_form
        c["linux"]["resources"] = {"pids": {"limit": 16}, "memory": {"limit": 64 << 20}}
        if not cgroupns:
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "cgroup"]
            c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    return edit


def user_unit_path(s, unit):
    """The cgroup of a unit in the user manager's user.slice."""
    return f"/user.slice/user-{s.uid}.slice/{s.service}/user.slice/{unit}"


def user_unit_prop(s, unit, prop):
    return s.scoped("systemctl", "--user", "show", "-P", prop, unit, scope=False).stdout.strip()


def delete_leaves_no_unit(s, cid, unit, path):
    """delete as the user: the user manager forgets the unit, its cgroup
    (full path) is gone."""
    cp = s.scoped(s.sbxrun, "delete", "--force", cid)
    assert cp.returncode == 0, describe(cp)
    assert user_unit_prop(s, unit, "LoadState") == "not-found"
    assert not os.path.exists(f"{CG}{path}")


@needs_driver
def test_rootless_systemd_user_scope(user_session):
    """--systemd-cgroup as an ordinary user: sbxrun asks the user's systemd
    (the user bus), which makes the transient scope below user@UID.service
    (podman's rootless cgroupsPath user.slice:libpod:<id> form).  Inside
    (no cgroup namespace): /proc/self/cgroup names that scope, memory.max
    and pids.max hold the limits, a fork bomb stops at pids.max; the user
    manager has TasksMax/MemoryMax; pause freezes it (a process inside
    stops counting), resume thaws it; delete stops the unit and removes its
    cgroup, and nothing is left in the state root."""
    s = user_session
    # an init that reaps (ash's waits take any child): the bomb's orphans
    # must not stay zombies, counted in pids.current
    b = s.bundle(["sh", "-c", "while :; do sleep 1; done"],
                 user_scope_config("user.slice:sbxtest:c1", cgroupns=False))
    sbx = s.sbxrun
    unit, path = "sbxtest-c1.scope", user_unit_path(s, "sbxtest-c1.scope")
    cp = s.scoped(sbx, "--systemd-cgroup", "run", "-d", "c1", cwd=b)
    assert cp.returncode == 0, describe(cp)
    try:
        assert "no writable cgroup" not in cp.stderr, describe(cp)
        cp = s.scoped(sbx, "exec", "c1", "sh", "-c",
                      f"cat /proc/self/cgroup {CG}{path}/memory.max {CG}{path}/pids.max")
        assert cp.returncode == 0, describe(cp)
        assert cp.stdout.split() == [f"0::{path}", str(64 << 20), "16"], describe(cp)
        for prop, want in (("TasksMax", "16"), ("MemoryMax", str(64 << 20)), ("ActiveState", "active")):
            assert user_unit_prop(s, unit, prop) == want, prop
        # a fork bomb in a subshell (ash gives up at the first fork refused):
        # held at pids.max, the count read inside by builtins (no fork left
        # for cat), then every process but the init and the shell killed
        cp = s.scoped(sbx, "exec", "c1", "sh", "-c",
                      "(i=0; while [ $i -lt 40 ]; do sleep 100 & i=$((i+1)); done) 2>/dev/null; "
                      f"read n < {CG}{path}/pids.current; echo $n; "
                      "for d in /proc/[0-9]*; do p=${d#/proc/}; [ $p = 1 ] || [ $p = $$ ] || kill $p; done")
        assert cp.returncode == 0 and 14 <= int(cp.stdout.strip()) <= 16, describe(cp)
        assert int(dict(ln.split() for ln in cgfile(path, "pids.events").splitlines())["max"]) > 0
        wait_for(lambda: int(cgfile(path, "pids.current")) <= 2, timeout=30, what="the bomb's processes gone")
        # pause/resume through the delegated cgroup.freeze
        cp = s.scoped(sbx, "pause", "c1")
        assert cp.returncode == 0, describe(cp)
        cp = s.scoped(sbx, "state", "c1")
        assert json.loads(cp.stdout)["status"] == "paused", describe(cp)
        assert "frozen 1" in cgfile(path, "cgroup.events").splitlines()
        cp = s.scoped(sbx, "resume", "c1")
        assert cp.returncode == 0, describe(cp)
        assert "frozen 0" in cgfile(path, "cgroup.events").splitlines()
        cp = s.scoped(sbx, "exec", "c1", "echo", "thawed")
        assert cp.stdout.strip() == "thawed", describe(cp)
        delete_leaves_no_unit(s, "c1", unit, path)
    finally:
        s.scoped(sbx, "delete", "--force", "c1")
    assert s.state_entries() == []


@needs_driver
def test_rootless_systemd_user_create_default_slice(user_session):
    """create + start with the spec's cgroup namespace and no cgroupsPath:
    the unit is sbxrun-c2.scope in the user manager's user.slice (runc's
    rootless default), the container sees its own cgroup as / and reads
    the limits at /sys/fs/cgroup; delete leaves no unit."""
    s = user_session
    b = s.bundle(["sleep", "600"], user_scope_config(None, cgroupns=True))
    sbx = s.sbxrun
    unit, path = "sbxrun-c2.scope", user_unit_path(s, "sbxrun-c2.scope")
    cp = s.scoped(sbx, "--systemd-cgroup", "create", "c2", cwd=b)
    assert cp.returncode == 0, describe(cp)
    try:
        cp = s.scoped(sbx, "start", "c2")
        assert cp.returncode == 0, describe(cp)
        cp = s.scoped(sbx, "exec", "c2", "sh", "-c",
                      "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max")
        assert cp.returncode == 0, describe(cp)
        assert cp.stdout.split() == ["0::/", str(64 << 20), "16"], describe(cp)
        assert cgfile(path, "memory.max") == str(64 << 20)
        delete_leaves_no_unit(s, "c2", unit, path)
    finally:
        s.scoped(sbx, "delete", "--force", "c2")
    assert s.state_entries() == []


@needs_driver
def test_rootless_systemd_no_user_bus(user_session):
    """No user bus ($XDG_RUNTIME_DIR without one, no
    $DBUS_SESSION_BUS_ADDRESS): --systemd-cgroup is refused, the error
    names the user bus, and neither a container nor a unit is left (not
    the no-cgroup fallback of a rootless run without a delegated
    subtree)."""
    s = user_session
    b = s.bundle(["true"], user_scope_config("user.slice:sbxtest:c3", cgroupns=True))
    xdg = os.path.join(s.top, "nobus")
    os.mkdir(xdg, 0o700)
    os.chown(xdg, s.uid, s.gid)
    cp = s.run("--systemd-cgroup", "run", "c3", cwd=b, env={"XDG_RUNTIME_DIR": xdg})
    assert cp.returncode != 0, describe(cp)
    assert "user bus" in cp.stderr and "no writable cgroup" not in cp.stderr, describe(cp)
    root = os.path.join(xdg, "sbxrun")
    left = [n for n in os.listdir(root) if not n.startswith(".")] if os.path.isdir(root) else []
    assert left == [], describe(cp)
    assert user_unit_prop(s, "sbxtest-c3.scope", "LoadState") == "not-found"
