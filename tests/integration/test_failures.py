"""Bad input: a clear error that names the field and the value, a non-zero
exit status, and nothing left behind.

After every failing `create` / `run` the `leftovers` fixture checks that
there is

  * no state directory under --root (the seccomp compile cache aside),
  * no cgroup directory below the test's cgroup parent, in every v1
    hierarchy and in the unified one,
  * no mount that was not in /proc/self/mountinfo before the command
    (other than those other tests on the host evidently made meanwhile),
  * no surviving process: none whose root directory is one of the test's
    rootfs directories (compared by device and inode: a pivoted container
    reads `/` through readlink), none still running the runtime on our
    --root (an init that never exec'd), no live descendant of ours,
  * no new network namespace held by such a process or pinned by a mount.

The security section checks that symlinks and magic links in the config
cannot make the runtime act on host paths, that host fds do not reach the
container and that the state directory is private.

A test that shows a runtime bug is marked xfail(strict=True, reason="bug:
..."), so that it fails as XPASS once the bug is fixed and the mark can go.
"""

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import cgroup_dirs, describe, mountinfo, run_cmd, sbxrun

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("create", "start", "delete", "state", "list")]

CACHE = ".seccomp-cache"  # the runtime's compile cache under --root, not a container
CRIU_CHECK = ".criu-check"  # `criu check`'s result, cached per boot under --root

@pytest.fixture(autouse=True)
def _forget_seccomp_cache(sbx):
    """The compile cache is not container state: drop it before the `sbx`
    teardown looks for leftover directories under --root."""
    yield
    shutil.rmtree(sbx.root / CACHE, ignore_errors=True)


# ---------------------------------------------------------------------------
# what a failed command may leave behind


def _mount_ids():
    """{mount id: mount point} of /proc/self/mountinfo."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            out[fields[0]] = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
    return out


def _pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def _netns(pid):
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _all_netns():
    return {ino for ino in map(_netns, _pids()) if ino is not None}


def _proc_info(pid):
    """(ppid, state letter) from /proc/PID/stat, or None when it is gone."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    rest = text.rpartition(")")[2].split()
    return int(rest[1]), rest[0]


class Leftovers:
    """Snapshots the host before a failing command; check() lists what the
    command left."""

    def __init__(self, sbx, cgroup_parent, tmp_path, other_sessions, rootfs=()):
        self.sbx = sbx
        self.rootfs = list(rootfs)
        self.cgroup_parent = cgroup_parent
        self.tmp = tmp_path
        self.other_sessions = other_sessions
        self.snapshot()

    def snapshot(self):
        """Take the "before" picture (again): right before the command
        narrows the window in which others' mounts could be mistaken for
        ours."""
        self.mounts_before = _mount_ids()
        self.netns_before = _all_netns()

    def _someone_elses(self, mountpoint):
        """True for a mount that other tests running on this host at the
        same time (the suite runs from several trees at once, next to the
        unit tests) evidently made: a named network namespace of `ip netns`
        (which sbxrun never makes), anything below another session's pytest
        base temp or named after another pytest process' pid, as the
        fixtures name things (`sbxtest-<pid>-<n>`, `ctr-<pid>-<n>`)."""
        if mountpoint.startswith(("/run/netns/", "/var/run/netns/")):
            return True
        dirs, pids = self.other_sessions()
        if any(mountpoint == d or mountpoint.startswith(d + "/") for d in dirs):
            return True
        return any(re.search(rf"(?<!\d){pid}(?!\d)", mountpoint) for pid in pids)

    def _rootfs_ids(self, extra):
        ids = set()
        dirs = [p / "rootfs" for p in (self.tmp / "bundles").glob("*")]
        dirs += [Path(p) for p in [*self.rootfs, *extra]]
        for d in dirs:
            try:
                st = os.stat(d)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                ids.add((st.st_dev, st.st_ino))
        return ids

    def _ours(self, pid, rootfs_ids):
        """Why process PID belongs to this test, or None."""
        if pid == os.getpid():
            return None
        info = _proc_info(pid)
        if info is None or info[1] in "ZX":
            return None
        try:
            st = os.stat(f"/proc/{pid}/root")
            if (st.st_dev, st.st_ino) in rootfs_ids:
                return "its root is a test rootfs"
        except OSError:
            pass
        cmdline = _read(f"/proc/{pid}/cmdline", "rb") or b""
        if str(self.sbx.root).encode() in cmdline:
            return "it runs sbxrun on the test's --root"
        p, seen = info[0], 0
        while p > 1 and seen < 64:
            if p == os.getpid():
                return "it is a descendant of the test"
            up = _proc_info(p)
            if up is None:
                break
            p, seen = up[0], seen + 1
        return None

    def problems(self, extra_rootfs=()):
        out = []
        root = self.sbx.root
        if root.is_dir():
            state = sorted(p.name for p in root.iterdir() if p.name not in (CACHE, CRIU_CHECK))
            if state:
                out.append(f"state left under {root}: {state}")
        for d in cgroup_dirs(str(self.cgroup_parent)):
            if os.path.isdir(d):
                below = [os.path.join(dp, n) for dp, dns, _ in os.walk(d) for n in dns]
                if below:
                    out.append(f"cgroups left: {below}")
        new_mounts = {i: mp for i, mp in _mount_ids().items()
                      if i not in self.mounts_before and not self._someone_elses(mp)}
        if new_mounts:
            out.append(f"new mounts: {sorted(new_mounts.values())}")
        rootfs_ids = self._rootfs_ids(extra_rootfs)
        # The last close of a netfilter socket whose batch deleted rules
        # is left to a short-lived detached process (egress/nl.c,
        # "sbxrun-nlclose": it waits out an RCU grace period): give those,
        # and only those, a moment to go.
        deadline = time.monotonic() + 2
        while True:
            ours = {}
            for pid in _pids():
                why = self._ours(pid, rootfs_ids)
                if why:
                    ours[pid] = why
            closing = [p for p in ours if (_read(f"/proc/{p}/comm") or "").strip() == "sbxrun-nlclose"]
            if not closing or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        for pid, why in ours.items():
            cmd = (_read(f"/proc/{pid}/cmdline", "rb") or b"").replace(b"\0", b" ").decode(errors="replace")
            out.append(f"process {pid} survived ({why}): {cmd}")
        held = {_netns(pid) for pid in ours} - {None} - self.netns_before
        if held:
            out.append(f"new network namespaces held by leftover processes: {sorted(held)}")
        pinned = [mp for _, mp, fstype in mountinfo() if fstype == "nsfs" and mp in new_mounts.values()]
        if pinned:
            out.append(f"namespaces pinned by new mounts: {pinned}")
        return out

    def check(self, cp=None, cid=None, extra_rootfs=()):
        problems = self.problems(extra_rootfs)
        if cid is not None:
            st = self.sbx("state", cid)
            if st.returncode == 0:
                problems.append(f"`state {cid}` still answers: {st.stdout}")
        if problems:
            by = f" by\n{describe(cp)}" if cp else ""
            pytest.fail(f"left behind{by}:\n  " + "\n  ".join(problems))


@pytest.fixture
def leftovers(sbx, cgroup_parent, tmp_path, tmp_path_factory, busybox_rootfs):
    base = tmp_path_factory.getbasetemp()

    def other_sessions():
        """(base temps, pids) of the other pytest sessions on this host."""
        try:
            dirs = [str(p) for p in base.parent.iterdir() if p != base]
        except OSError:
            dirs = []
        pids = [pid for pid in _pids() if pid != os.getpid()
                and b"pytest" in (_read(f"/proc/{pid}/cmdline", "rb") or b"")]
        return dirs, pids

    return Leftovers(sbx, cgroup_parent, tmp_path, other_sessions, [busybox_rootfs])


def _tree_digest(top):
    """Names, modes and mtimes below TOP (symlinks not followed)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        for n in sorted(dirnames + filenames):
            st = os.lstat(os.path.join(dirpath, n))
            out.append((os.path.join(dirpath, n), st.st_mode, st.st_mtime_ns, st.st_size))
    return out


@pytest.fixture
def ro_bundle(bundle, busybox_rootfs):
    """Like `bundle`, without the copy of the rootfs (the slow part of a
    bundle): root.path is the session's busybox rootfs, read-only.  For
    containers that never write to their rootfs (every default mount lands
    on an existing directory or inside a tmpfs/sysfs); teardown fails the
    test if the shared rootfs changed."""
    before = _tree_digest(busybox_rootfs)

    def make(args=None, **kw):
        b = bundle(args, rootfs=False, **kw)
        b.config["root"] = {"path": str(busybox_rootfs), "readonly": True}
        b.write()
        return b

    yield make
    assert _tree_digest(busybox_rootfs) == before, "a container wrote to the shared busybox rootfs"


def assert_names(cp, *fragments):
    """A failed command whose stderr names every fragment."""
    assert cp.returncode != 0, describe(cp)
    missing = [f for f in fragments if f not in cp.stderr]
    assert not missing, f"error does not mention {missing}:\n{describe(cp)}"


def fail_and_check(sbx, leftovers, b, *fragments, cmd="create", cid=None, args=(), **kw):
    """Run CMD on bundle B, expect failure naming FRAGMENTS and nothing left."""
    cid = cid or sbx.new_id()
    leftovers.snapshot()
    cp = sbx(cmd, *args, "--bundle", b, cid, **kw)
    assert_names(cp, *fragments)
    assert cp.stdout == "", describe(cp)
    leftovers.check(cp, cid)
    return cp


@pytest.fixture
def small_bundle(bundle, busybox_rootfs):
    """Like `bundle`, with a private rootfs the test may change, made of a
    few busybox applets only (much faster than a full copy)."""

    def make(args=None, applets=("sh", "true", "touch", "ls", "seq", "sleep", "cat"), **kw):
        b = bundle(args, rootfs=False, **kw)
        root = b.rootfs
        for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
            (root / d).mkdir(parents=True)
        try:
            os.link(busybox_rootfs / "bin/busybox", root / "bin/busybox")
        except OSError:
            shutil.copy2(busybox_rootfs / "bin/busybox", root / "bin/busybox")
        for a in applets:
            (root / "bin" / a).symlink_to("busybox")
        return b

    return make


# ---------------------------------------------------------------------------
# config.json


def test_config_missing(sbx, ro_bundle, leftovers):
    b = ro_bundle(["true"])
    b.config_path.unlink()
    fail_and_check(sbx, leftovers, b, "config.json", "No such file or directory")


def test_config_is_a_directory(sbx, ro_bundle, leftovers):
    b = ro_bundle(["true"])
    b.config_path.unlink()
    b.config_path.mkdir()
    fail_and_check(sbx, leftovers, b, "config.json", "Is a directory")


def test_config_unreadable(sbx, ro_bundle, leftovers):
    """Mode 000 stops root only without CAP_DAC_OVERRIDE/READ_SEARCH: run
    the runtime with both dropped from its bounding set (so from the
    permitted set after execve)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv missing (util-linux)")
    b = ro_bundle(["true"])
    b.config_path.chmod(0)
    cid = sbx.new_id()
    leftovers.snapshot()
    cp = run_cmd([setpriv, "--bounding-set", "-dac_override,-dac_read_search",
                  *sbx.argv("create", "--bundle", b, cid)])
    assert_names(cp, "config.json", "Permission denied")
    leftovers.check(cp, cid)


@pytest.mark.parametrize("text", ["", "{", '{"ociVersion": "1.0.2", "process": {"args": ["sh"', "[1, 2]",
                                  "{} {}"], ids=["empty", "open-brace", "cut", "array", "trailing"])
def test_config_not_json(sbx, ro_bundle, leftovers, text):
    b = ro_bundle(["true"])
    b.config_path.write_text(text)
    fail_and_check(sbx, leftovers, b, "config.json")


def test_config_truncated(sbx, ro_bundle, leftovers):
    b = ro_bundle(["true"])
    full = b.config_path.read_text()
    b.config_path.write_text(full[: len(full) // 2])
    cp = fail_and_check(sbx, leftovers, b, "config.json")
    assert re.search(r"JSON|premature|EOF", cp.stderr), describe(cp)


def _del(path):
    def mutate(c):
        *parents, last = path
        for k in parents:
            c = c[k]
        del c[last]
    return mutate


def _set(path, value):
    def mutate(c):
        *parents, last = path
        for k in parents:
            c = c[k]
        c[last] = value
    return mutate


def _without_ns(kind):
    def mutate(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != kind]
    return mutate


def _chain(*mutations):
    def mutate(c):
        for m in mutations:
            m(c)
    return mutate


def _add_ns(entry):
    """Append a namespace entry; its index is the expected field."""
    def mutate(c):
        c["linux"]["namespaces"].append(entry)
        return [f"linux.namespaces[{len(c['linux']['namespaces']) - 1}]"]
    return mutate


def _userns(uid_maps, gid_maps):
    def mutate(c):
        c["linux"]["namespaces"].append({"type": "user"})
        if uid_maps is not None:
            c["linux"]["uidMappings"] = uid_maps
        if gid_maps is not None:
            c["linux"]["gidMappings"] = gid_maps
    return mutate


def _seccomp_rule_with_args(c):
    """Index of a seccomp rule that has args, adding one when needed."""
    sc = c["linux"].setdefault("seccomp", {"defaultAction": "SCMP_ACT_ALLOW"})
    rules = sc.setdefault("syscalls", [])
    for i, r in enumerate(rules):
        if r.get("args"):
            return i
    rules.append({"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                  "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]})
    return len(rules) - 1


def _seccomp_bad_op(c):
    i = _seccomp_rule_with_args(c)
    c["linux"]["seccomp"]["syscalls"][i]["args"][0]["op"] = "SCMP_CMP_FOO"
    return [f"linux.seccomp.syscalls[{i}].args[0].op"]


def _seccomp_bad_rule_action(c):
    sc = c["linux"].setdefault("seccomp", {"defaultAction": "SCMP_ACT_ALLOW"})
    sc.setdefault("syscalls", []).insert(0, {"names": ["getpid"], "action": "SCMP_ACT_BAR"})
    return ["linux.seccomp.syscalls[0].action"]


def _res(**sections):
    """Set linux.resources to SECTIONS (whatever `runc spec` had)."""
    return _set(["linux", "resources"], sections)


MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]

# (id, mutation of config, fragments the error must contain)
CONFIG_CASES = [
    ("args-1-number", _set(["process", "args"], ["sh", 5]), ["process.args[1]", "expected string"]),
    ("uid-string", _set(["process", "user", "uid"], "0"), ["process.user.uid", "expected integer"]),
    ("uid-negative", _set(["process", "user", "uid"], -1), ["process.user.uid", "-1"]),
    ("env-null", _set(["process", "env"], ["A=1", None]), ["process.env[1]", "expected string"]),
    # (uid_t)-1 is "unchanged" to setresuid: the process would stay root
    ("uid-minus-one", _set(["process", "user", "uid"], 4294967295), ["process.user.uid", "4294967295"]),
    ("gid-minus-one", _set(["process", "user", "gid"], 4294967295), ["process.user.gid", "4294967295"]),
    ("additional-gid-minus-one", _set(["process", "user", "additionalGids"], [5, 4294967295]),
     ["process.user.additionalGids[1]", "4294967295"]),
    ("env-without-equals", _set(["process", "env"], ["PATH=/bin", "JUSTANAME"]), ["process.env[1]", "JUSTANAME"]),
    ("env-empty-name", _set(["process", "env"], ["=value"]), ["process.env[0]", "=value"]),
    ("process-null", _set(["process"], None), ["process", "required"]),
    ("process-absent", _del(["process"]), ["process", "required"]),
    # linux.resources: -1 is the only "unlimited"; what the kernel would
    # silently clamp, round or read as unlimited is refused
    ("memory-limit-minus-two", _res(memory={"limit": -2}), ["linux.resources.memory.limit", "-2"]),
    ("memory-reservation-minus-two", _res(memory={"reservation": -2}),
     ["linux.resources.memory.reservation", "-2"]),
    ("memory-swap-minus-two", _res(memory={"limit": 1 << 26, "swap": -2}), ["linux.resources.memory.swap", "-2"]),
    ("memory-swap-below-limit", _res(memory={"limit": 1 << 26, "swap": 1 << 25}),
     ["linux.resources.memory.swap", str(1 << 25), "below"]),
    ("memory-swappiness-101", _res(memory={"swappiness": 101}), ["linux.resources.memory.swappiness", "101"]),
    ("pids-limit-minus-two", _res(pids={"limit": -2}), ["linux.resources.pids.limit", "-2"]),
    ("cpu-shares-max", _res(cpu={"shares": 2**64 - 1}), ["linux.resources.cpu.shares", str(2**64 - 1)]),
    ("cpu-shares-1", _res(cpu={"shares": 1}), ["linux.resources.cpu.shares", "1 is not in [2, 262144]"]),
    ("cpu-shares-262145", _res(cpu={"shares": 262145}), ["linux.resources.cpu.shares", "262145"]),
    ("cpu-quota-minus-two", _res(cpu={"quota": -2}), ["linux.resources.cpu.quota", "-2"]),
    ("cpu-quota-999", _res(cpu={"quota": 999}), ["linux.resources.cpu.quota", "999"]),
    ("cpu-period-999", _res(cpu={"period": 999}), ["linux.resources.cpu.period", "999"]),
    ("cpu-period-1000001", _res(cpu={"period": 1000001}), ["linux.resources.cpu.period", "1000001"]),
    ("cpu-burst-above-quota", _res(cpu={"quota": 50000, "burst": 60000}), ["linux.resources.cpu.burst", "60000"]),
    ("cpu-idle-2", _res(cpu={"idle": 2}), ["linux.resources.cpu.idle", "2"]),
    ("cpu-rt-runtime-minus-two", _res(cpu={"realtimeRuntime": -2}), ["linux.resources.cpu.realtimeRuntime", "-2"]),
    ("blkio-weight-9", _res(blockIO={"weight": 9}), ["linux.resources.blockIO.weight", "9 is not in [10, 1000]"]),
    ("blkio-weight-1001", _res(blockIO={"weight": 1001}), ["linux.resources.blockIO.weight", "1001"]),
    ("blkio-leaf-weight-0", _res(blockIO={"leafWeight": 0}), ["linux.resources.blockIO.leafWeight", "0"]),
    ("blkio-weight-device", _res(blockIO={"weightDevice": [{"major": 8, "minor": 0, "weight": 2000}]}),
     ["linux.resources.blockIO.weightDevice[0].weight", "2000"]),
    ("blkio-throttle-negative-major",
     _res(blockIO={"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1000}]}),
     ["linux.resources.blockIO.throttleReadBpsDevice[0]", "-1:0"]),
    ("hugepage-limit-not-page-multiple", _res(hugepageLimits=[{"pageSize": "2MB", "limit": 3 << 20}]),
     ["linux.resources.hugepageLimits[0].limit", str(3 << 20), "2MB"]),
    ("hugepage-page-size", _res(hugepageLimits=[{"pageSize": "2XB", "limit": 0}]),
     ["linux.resources.hugepageLimits[0].pageSize", "2XB"]),
    ("hugepage-twice", _res(hugepageLimits=[{"pageSize": "2MB", "limit": 0}, {"pageSize": "2MB", "limit": 0}]),
     ["linux.resources.hugepageLimits[1].pageSize", "2MB"]),
    ("device-rule-type", _res(devices=[{"allow": False, "type": "x"}]), ["linux.resources.devices[0].type", "x"]),
    ("mount-option-bool", lambda c: c["mounts"][1]["options"].__setitem__(1, True),
     ["mounts[1].options[1]", "expected string"]),
    ("memory-limit-string", _set(["linux", "resources"], {"memory": {"limit": "lots"}}),
     ["linux.resources.memory.limit", "expected integer"]),
    ("process-not-object", _set(["process"], "sh"), ["process", "expected object"]),
    ("no-ociVersion", _del(["ociVersion"]), ["ociVersion", "missing"]),
    ("no-cwd", _del(["process", "cwd"]), ["process.cwd", "missing"]),
    ("ociVersion-invalid", _set(["ociVersion"], "invalid"), ["ociVersion", "invalid"]),
    ("ociVersion-2", _set(["ociVersion"], "2.0.0"), ["ociVersion", "2.0.0"]),
    ("cwd-relative", _set(["process", "cwd"], "tmp"), ["process.cwd", "`tmp`", "absolute"]),
    ("args-empty", _set(["process", "args"], []), ["process.args"]),
    ("namespace-unknown", _add_ns({"type": "foo"}), ["type", "foo"]),
    ("namespace-duplicate", _add_ns({"type": "pid"}), ["pid", "twice"]),
    ("cap-unknown", lambda c: c["process"]["capabilities"]["bounding"].append("CAP_FOO"),
     ["process.capabilities.bounding", "CAP_FOO"]),
    ("cap-ambient-unknown", _set(["process", "capabilities", "ambient"], ["CAP_FOO"]),
     ["process.capabilities.ambient", "CAP_FOO"]),
    ("rlimit-unknown", _set(["process", "rlimits"], [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]),
     ["process.rlimits[0]", "RLIMIT_FOO"]),
    ("rlimit-soft-above-hard",
     _set(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 10}]),
     ["process.rlimits[0]", "RLIMIT_NOFILE", "soft"]),
    ("seccomp-default-action", _set(["linux", "seccomp", "defaultAction"], "SCMP_ACT_FOO"),
     ["linux.seccomp.defaultAction", "SCMP_ACT_FOO"]),
    ("seccomp-rule-action", _seccomp_bad_rule_action, ["SCMP_ACT_BAR"]),
    ("seccomp-arch", _set(["linux", "seccomp", "architectures"], ["SCMP_ARCH_FOO"]),
     ["linux.seccomp.architectures[0]", "SCMP_ARCH_FOO"]),
    ("seccomp-operator", _seccomp_bad_op, ["SCMP_CMP_FOO"]),
    ("userns-no-gid-mappings", _userns(MAP, None), ["gidMappings"]),
    ("userns-mapping-size-0", _userns([{"containerID": 0, "hostID": 100000, "size": 0}], MAP),
     ["uidMappings"]),
    ("sysctl-dotdot", _set(["linux", "sysctl"], {"../x": "1"}), ["linux.sysctl", "../x"]),
    ("hostname-without-uts", _without_ns("uts"), ["hostname", "uts"]),
    # without a mount namespace of its own the rootfs is a private bind in
    # a namespace shared with others: propagation that would link it to
    # their mounts is refused by name (test_hostroot.py has the rest)
    ("rootfsPropagation-shared-without-mount-ns",
     _chain(_without_ns("mount"), _set(["linux", "rootfsPropagation"], "shared")),
     ["linux.rootfsPropagation `shared` needs a new mount namespace"]),
    ("mount-rslave-without-mount-ns",
     _chain(_without_ns("mount"),
            lambda c: c["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/tmp",
                                          "options": ["rbind", "rslave"]})),
     ["(/mnt): shared or slave propagation needs a new mount namespace"]),
    ("mount-rslave-in-joined-mount-ns",
     _chain(_without_ns("mount"),
            lambda c: c["linux"]["namespaces"].append({"type": "mount", "path": "/proc/self/ns/mnt"}),
            lambda c: c["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/tmp",
                                          "options": ["rbind", "rshared"]})),
     ["(/mnt): shared or slave propagation needs a new mount namespace"]),
    ("cgroupsPath-dotdot", _set(["linux", "cgroupsPath"], "/a/../../b"), ["linux.cgroupsPath", ".."]),
    ("cgroupsPath-systemd", _set(["linux", "cgroupsPath"], "system.slice:sbxtest:c1"),
     ["system.slice:sbxtest:c1", "--systemd-cgroup"]),
    ("hook-relative", _set(["hooks"], {"prestart": [{"path": "bin/true"}]}),
     ["prestart", "bin/true", "absolute"]),
]


@pytest.mark.parametrize("cmd", ["create", "run"])
@pytest.mark.parametrize("mutate, expect", [pytest.param(m, e, id=i) for i, m, e in CONFIG_CASES])
def test_invalid_config(sbx, ro_bundle, leftovers, cmd, mutate, expect):
    b = ro_bundle(["true"])
    extra = mutate(b.config) or []
    b.write()
    fail_and_check(sbx, leftovers, b, *expect, *extra, cmd=cmd)


@pytest.mark.parametrize("cmd", ["create", "run"])
def test_memory_limit_too_small_for_setup(sbx, ro_bundle, leftovers, cmd):
    """4096 bytes cannot hold the init's setup: say it was OOM-killed and
    name the limit (it used to be `... waiting for runtime-hooks: Broken
    pipe`)."""
    b = ro_bundle(["true"])
    b.config["linux"]["resources"] = {"memory": {"limit": 4096}}
    b.write()
    fail_and_check(sbx, leftovers, b, "init was OOM-killed during setup", "linux.resources.memory.limit 4096 bytes",
                   cmd=cmd)


@pytest.mark.parametrize("cmd", ["create", "run"])
def test_root_symlink_out_of_bundle(sbx, bundle, busybox_rootfs, leftovers, cmd):
    """A rootfs in the bundle that is a symlink to a directory elsewhere:
    refused (whoever wrote the bundle would pick a host directory)."""
    b = bundle(["true"], rootfs=False)
    (b.path / "rootfs").symlink_to(busybox_rootfs)
    b.config["root"] = {"path": "rootfs", "readonly": True}
    b.write()
    fail_and_check(sbx, leftovers, b, "root.path `rootfs`", "symlink", "outside the bundle", str(busybox_rootfs),
                   cmd=cmd)


def test_root_symlink_inside_bundle(sbx, bundle, busybox_rootfs):
    """A symlink that stays in the bundle is fine."""
    b = bundle(["true"], rootfs=False)
    shutil.copytree(busybox_rootfs, b.path / "real", symlinks=True)
    (b.path / "rootfs").symlink_to("real")
    b.config["root"] = {"path": "rootfs", "readonly": True}
    b.write()
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)


def test_relative_mount_destination_warns(sbx, ro_bundle):
    """config.md: SHOULD be absolute, a relative one is taken from "/":
    mounted there, with a warning (as runc has it)."""
    b = ro_bundle(["sh", "-c", "grep ' /tmp ' /proc/self/mountinfo"])
    b.config["mounts"].append({"destination": "tmp", "type": "tmpfs", "source": "tmpfs"})
    b.write()
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    assert "tmpfs" in cp.stdout, describe(cp)
    assert "mounts[" in cp.stderr and "`tmp` is not absolute" in cp.stderr, describe(cp)


def test_systemd_cgroups_path_with_flag(sbx, ro_bundle, leftovers):
    """--systemd-cgroup on a host without systemd (this one): one line
    saying so (tests/vm/run-systemd.sh runs the driver under systemd)."""
    if os.path.exists("/run/systemd/system"):
        pytest.skip("systemd runs here")
    b = ro_bundle(["true"])
    b.config["linux"]["cgroupsPath"] = "system.slice:sbxtest:c1"
    b.write()
    cp = fail_and_check(sbx, leftovers, b, "systemd", global_args=["--systemd-cgroup"])
    assert "+SYSTEMD" not in sbxrun("--version").stdout or "system bus" in cp.stderr, cp.stderr
    assert len(cp.stderr.strip().splitlines()) == 1, cp.stderr


@pytest.mark.parametrize(
    "path, expect",
    [
        ("machine.slice:libpod", "slice:prefix:name"),
        ("a:b:c:d", "slice:prefix:name"),
        ("/abs/path", "slice:prefix:name"),
        ("bad/x.slice:p:n", "no `/`"),
        ("machine:p:n", "invalid slice name `machine`"),
        ("a--b.slice:p:n", "invalid slice name `a--b.slice`"),
        ("machine.slice:p:", "a name"),
    ],
)
def test_systemd_cgroups_path_malformed(sbx, ro_bundle, leftovers, path, expect):
    """A malformed slice:prefix:name is refused before systemd is asked,
    naming the field and the value; nothing is left."""
    b = ro_bundle(["true"])
    b.config["linux"]["cgroupsPath"] = path
    b.write()
    cp = fail_and_check(sbx, leftovers, b, "linux.cgroupsPath", expect, global_args=["--systemd-cgroup"])
    assert path in cp.stderr


@pytest.mark.parametrize("cmd", ["create", "run"])
def test_namespace_path_missing_names_field(sbx, ro_bundle, leftovers, cmd):
    b = ro_bundle(["true"])
    missing = str(b.path / "no-such-netns")
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = missing
    b.write()
    idx = [n["type"] for n in b.config["linux"]["namespaces"]].index("network")
    fail_and_check(sbx, leftovers, b, f"linux.namespaces[{idx}].path", missing, "No such file", cmd=cmd)


def _join_wrong_kind(b, target):
    """Make the network namespace entry of B name something that is not a
    network namespace; return (its index, the path)."""
    if target == "regular-file":
        path = str(b.path / "not-a-namespace")
        Path(path).write_text("")
    else:
        path = f"/proc/{os.getpid()}/ns/uts"
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = path
    b.write()
    return [n["type"] for n in b.config["linux"]["namespaces"]].index("network"), path


@pytest.mark.parametrize("target", ["regular-file", "uts-namespace"])
def test_namespace_path_of_wrong_kind(sbx, ro_bundle, leftovers, target):
    """Caught at validation (it used to fail later, in setns, with a bare
    `join net namespace: Invalid argument`)."""
    b = ro_bundle(["true"])
    idx, path = _join_wrong_kind(b, target)
    fail_and_check(sbx, leftovers, b, f"linux.namespaces[{idx}].path", path)


def test_rootfs_missing(sbx, bundle, leftovers):
    b = bundle(["true"], rootfs=False)
    b.config["root"]["path"] = "no-such-rootfs"
    b.write()
    fail_and_check(sbx, leftovers, b, "root.path", "no-such-rootfs", "No such file")


def test_rootfs_is_a_file(sbx, bundle, leftovers):
    b = bundle(["true"], rootfs=False)
    (b.path / "rootfs-file").write_text("not a directory\n")
    b.config["root"]["path"] = "rootfs-file"
    b.write()
    fail_and_check(sbx, leftovers, b, "root.path", "rootfs-file", "Not a directory")


@pytest.mark.parametrize("cmd", ["create", "run"])
def test_bind_source_missing(sbx, small_bundle, leftovers, cmd):
    b = small_bundle(["true"])
    idx = len(b.config["mounts"])
    src = b.path / "no-such-source"
    b.config["mounts"].append({"destination": "/mnt/data", "type": "bind", "source": str(src),
                               "options": ["rbind", "ro"]})
    b.write()
    fail_and_check(sbx, leftovers, b, f"mounts[{idx}]", "/mnt/data", str(src), cmd=cmd)


@pytest.mark.parametrize("broken", ["missing", "directory"])
def test_config_error_keeps_its_errno(sbx, ro_bundle, broken):
    """`open ...: No such file or directory` must not end in a contradicting
    `: Invalid argument` (the parser's errors used to be raised as EINVAL)."""
    b = ro_bundle(["true"])
    b.config_path.unlink()
    if broken == "directory":
        b.config_path.mkdir()
    cp = sbx.fail("create", "--bundle", b, sbx.new_id())
    assert "Invalid argument" not in cp.stderr, describe(cp)


def _domainname_without_uts(b):
    b.config.pop("hostname", None)
    b.config["domainname"] = "example.org"
    _without_ns("uts")(b.config)
    b.write()


def test_domainname_without_uts(sbx, ro_bundle, leftovers):
    """The error names domainname, not hostname."""
    b = ro_bundle(["true"])
    _domainname_without_uts(b)
    fail_and_check(sbx, leftovers, b, "domainname", "uts")


def test_empty_hostname_without_uts_is_accepted(sbx, ro_bundle):
    """"" is no hostname (as with runc), so no uts namespace is needed."""
    b = ro_bundle(["true"])
    b.config["hostname"] = ""
    _without_ns("uts")(b.config)
    b.write()
    sbx.ok("run", "--bundle", b, sbx.new_id())


def test_cgroups_path_dotdot_creates_nothing_outside(sbx, ro_bundle, leftovers, cgroup_parent):
    """`<parent>/../../x` would resolve above the test's cgroup: nothing may
    appear there (nor anywhere else)."""
    b = ro_bundle(["true"])
    name = f"sbxesc-{os.getpid()}-{time.monotonic_ns()}"
    b.config["linux"]["cgroupsPath"] = f"{cgroup_parent}/../../{name}"
    b.write()
    fail_and_check(sbx, leftovers, b, "linux.cgroupsPath", "..")
    escaped = os.path.normpath(f"{cgroup_parent}/../../{name}")
    assert [d for d in cgroup_dirs(escaped) if os.path.exists(d)] == []


# ---------------------------------------------------------------------------
# hooks


def _hook(tmp_path, kind, code=3):
    """A hook that records that it ran, then exits with CODE."""
    mark = tmp_path / f"{kind}.ran"
    return {"path": "/bin/sh", "args": ["sh", "-c", f"echo ran >> {mark}; exit {code}"]}, mark


@pytest.mark.parametrize("cmd", ["create", "run"])
@pytest.mark.parametrize("kind", ["createRuntime", "prestart", "createContainer"])
def test_failing_create_hook(sbx, ro_bundle, leftovers, tmp_path, cmd, kind):
    b = ro_bundle(["true"])
    hook, mark = _hook(tmp_path, kind)
    b.config["hooks"] = {kind: [hook]}
    b.write()
    fail_and_check(sbx, leftovers, b, kind, "status 3", cmd=cmd)
    assert mark.exists(), f"the {kind} hook never ran"


def test_failing_start_container_hook(sbx, ro_bundle, leftovers, tmp_path):
    """startContainer runs at `start`: create succeeds, start fails, and the
    container is then stopped and deletable."""
    b = ro_bundle(["sleep", "100"])
    b.config["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}
    b.write()
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    cp = sbx.fail("start", cid)
    assert_names(cp, "startContainer", "status 3")
    sbx.wait_status(cid, "stopped")
    sbx.ok("delete", cid)
    leftovers.check(cp, cid)


def test_failing_start_container_hook_run(sbx, ro_bundle, leftovers):
    b = ro_bundle(["sleep", "100"])
    b.config["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}
    b.write()
    fail_and_check(sbx, leftovers, b, "startContainer", "status 3", cmd="run")


# ---------------------------------------------------------------------------
# the program to run


def test_missing_program_fails_at_create(sbx, ro_bundle, leftovers):
    """The program is looked up at create (as runc does): engines map the
    error text to 127 (not found) and 126 (not executable)."""
    b = ro_bundle(["/no/such/program", "arg"])
    cp = fail_and_check(sbx, leftovers, b, "/no/such/program", "No such file or directory")
    b = ro_bundle(["no-such-program"], name="inpath")
    fail_and_check(sbx, leftovers, b, "no-such-program", "executable file not found in $PATH")
    b = ro_bundle(["/etc/passwd"], name="noexec")
    fail_and_check(sbx, leftovers, b, "/etc/passwd", "Permission denied")


def test_missing_program_run(sbx, ro_bundle, leftovers):
    b = ro_bundle(["/no/such/program"])
    fail_and_check(sbx, leftovers, b, "/no/such/program", cmd="run")


PIN_HELPER = r"""
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(f"/proc/{sys.argv[1]}/ns/pid", os.O_RDONLY)
if libc.setns(fd, 0x20000000) != 0:  # CLONE_NEWPID: our next child is in it
    sys.exit("setns: " + os.strerror(ctypes.get_errno()))
child = os.fork()
if child == 0:
    signal.pause()
    os._exit(0)
print("pinned", flush=True)
time.sleep(float(sys.argv[2]))
try:
    os.kill(child, signal.SIGKILL)
except ProcessLookupError:
    pass
os.waitpid(child, 0)
"""


def test_stopped_as_soon_as_start_failed(sbx, bundle, tmp_path):
    """A failed `start` returns only once the init is gone, so the
    container reads "stopped" (and a plain `delete` works) right away.

    `start` used to return on the init's error report, before it had
    exited: "created" for a moment, about one run in five.  Make that
    window deterministic: a process outside the container owns a child in
    the container's pid namespace and reaps it only after a second, and an
    exiting pid-namespace init waits until every process in its namespace
    has been reaped."""
    # there at create (where the program is looked up), gone at start
    b = bundle(["/bin/vanishing"])
    shutil.copy(b.rootfs / "bin/busybox", b.rootfs / "bin/vanishing")
    cid = sbx.new_id()
    pidfile = tmp_path / "init.pid"
    sbx.ok("create", "--bundle", b, "--pid-file", pidfile, cid)
    (b.rootfs / "bin/vanishing").unlink()
    pin = subprocess.Popen([sys.executable, "-c", PIN_HELPER, pidfile.read_text().strip(), "1.0"],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert pin.stdout.readline().strip() == "pinned"
        sbx.fail("start", cid)
        status = sbx.state(cid)["status"]
    finally:
        pin.wait(timeout=30)
    assert status == "stopped"
    sbx.ok("delete", cid)


# ---------------------------------------------------------------------------
# container IDs


BAD_IDS = [
    pytest.param("", "empty", id="empty"),
    pytest.param(".", None, id="dot"),
    pytest.param("..", None, id="dotdot"),
    pytest.param("a/b", "/", id="slash"),
    pytest.param("../x", "/", id="dotdot-slash"),
    pytest.param("x" * 2000, "1024", id="2000-chars"),
    pytest.param("a b", None, id="space"),
    pytest.param("a\nb", None, id="newline"),
]


@pytest.mark.parametrize("cmd", ["create", "run"])
@pytest.mark.parametrize("cid, fragment", BAD_IDS)
def test_bad_id_rejected_before_any_path(sbx, ro_bundle, leftovers, tmp_path, cmd, cid, fragment):
    b = ro_bundle(["true"])
    assert not sbx.root.exists()
    leftovers.snapshot()
    cp = sbx(cmd, "--bundle", b, cid)
    assert_names(cp, "container id", *([fragment] if fragment else []))
    assert not sbx.root.exists(), f"--root was created: {sorted(os.listdir(sbx.root))}"
    assert not (tmp_path / "x").exists() and not (tmp_path / "a").exists()
    leftovers.check(cp)


@pytest.mark.parametrize("cmd", [["state"], ["start"], ["kill"], ["delete"], ["delete", "--force"], ["ps"],
                                 ["exec"]], ids=lambda c: "-".join(c))
@pytest.mark.parametrize("cid", ["..", "../victim", "."])
def test_bad_id_never_touches_other_paths(sbx, tmp_path, leftovers, cmd, cid):
    """`delete --force ../victim` must not remove <root>/../victim."""
    sbx.root.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("keep\n")
    (sbx.root / "keep").write_text("keep\n")
    extra = ["true"] if cmd == ["exec"] else []
    leftovers.snapshot()
    cp = sbx(*cmd, cid, *extra)
    assert cp.returncode != 0, describe(cp)
    assert "container id" in cp.stderr, describe(cp)
    assert (victim / "keep").exists() and (sbx.root / "keep").exists()
    (sbx.root / "keep").unlink()
    leftovers.check(cp)


def test_duplicate_id(sbx, ro_bundle, leftovers, tmp_path):
    """The second create fails and leaves the first container as it was:
    same state, same cgroup (both bundles use the same cgroupsPath), and it
    still starts."""
    b = ro_bundle(["sleep", "100"])
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    before = sbx.state(cid)
    saved = {p.name: p.read_bytes() for p in (sbx.root / cid).iterdir() if p.is_file()}
    cg = [d for d in cgroup_dirs(b.config["linux"]["cgroupsPath"]) if os.path.isdir(d)]
    assert cg
    pidfile = tmp_path / "second.pid"
    cp = sbx("create", "--bundle", b, "--pid-file", pidfile, cid)
    assert_names(cp, "already exists", cid)
    assert not pidfile.exists()
    assert sbx.state(cid) == before
    assert {p.name: p.read_bytes() for p in (sbx.root / cid).iterdir() if p.is_file()} == saved
    for d in cg:
        assert os.path.isdir(d), f"the first container lost its cgroup {d}"
        assert str(before["pid"]) in Path(d, "cgroup.procs").read_text().split(), d
    sbx.ok("start", cid)
    assert sbx.state(cid)["status"] == "running"
    sbx.ok("delete", "--force", cid)
    leftovers.check(cp, cid)


# ---------------------------------------------------------------------------
# the command line


def test_preserve_fds_not_a_number(sbx, ro_bundle, leftovers):
    b = ro_bundle(["true"])
    fail_and_check(sbx, leftovers, b, "--preserve-fds", "abc", args=["--preserve-fds", "abc"])


@pytest.mark.parametrize("value", ["-1", "1x", ""])
def test_preserve_fds_invalid(sbx, ro_bundle, leftovers, value):
    b = ro_bundle(["true"])
    fail_and_check(sbx, leftovers, b, "preserve-fds", args=[f"--preserve-fds={value}"])


@pytest.mark.parametrize("cmd", ["create", "run"])
def test_unknown_option(sbx, ro_bundle, leftovers, cmd):
    b = ro_bundle(["true"])
    fail_and_check(sbx, leftovers, b, "--no-such-option", cmd=cmd, args=["--no-such-option"])


def test_unknown_global_option(sbx, ro_bundle, leftovers):
    b = ro_bundle(["true"])
    cid = sbx.new_id()
    leftovers.snapshot()
    cp = sbx("create", "--bundle", b, cid, global_args=["--no-such-global"])
    assert_names(cp, "--no-such-global")
    leftovers.check(cp, cid)


@pytest.mark.parametrize("argv", [["create"], ["create", "--bundle"], ["run"], ["start"], ["state"], ["kill"],
                                  ["delete"], ["ps"], ["exec"], ["state", "a", "b"], ["delete", "a", "b"]],
                         ids=lambda a: "-".join(a).replace("--", ""))
def test_missing_or_extra_arguments(sbx, leftovers, argv):
    leftovers.snapshot()
    cp = sbx(*argv)
    assert cp.returncode != 0, describe(cp)
    assert cp.stderr.startswith("sbxrun: "), describe(cp)
    assert argv[0] in cp.stderr, describe(cp)
    leftovers.check(cp)


def test_create_without_bundle_argument_value(sbx, leftovers, tmp_path):
    """`create --bundle` with the value missing must not take the ID as the
    bundle and create from the current directory."""
    leftovers.snapshot()
    cp = sbx("create", "--bundle", cwd=tmp_path)
    assert_names(cp, "bundle")
    leftovers.check(cp)


@pytest.mark.parametrize("signame", ["SIGFOO", "FOO", "99999", "65", "9x", ""])
def test_kill_invalid_signal(sbx, ro_bundle, leftovers, signame):
    b = ro_bundle(["sleep", "100"])
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    before = sbx.state(cid)
    cp = sbx("kill", cid, signame)
    assert cp.returncode != 0, describe(cp)
    if signame:
        assert signame in cp.stderr, describe(cp)
    assert sbx.state(cid) == before
    sbx.ok("delete", "--force", cid)
    leftovers.check(cp, cid)


def test_exec_into_missing_container(sbx, leftovers):
    cid = sbx.new_id()
    leftovers.snapshot()
    cp = sbx("exec", cid, "true")
    assert_names(cp, "does not exist", cid)
    assert not (sbx.root / cid).exists()
    leftovers.check(cp, cid)


def test_console_socket_missing(sbx, ro_bundle, leftovers, tmp_path):
    b = ro_bundle(["true"], terminal=True)
    sock = tmp_path / "no-such.sock"
    fail_and_check(sbx, leftovers, b, "--console-socket", str(sock), args=["--console-socket", sock])


def test_console_socket_not_a_socket(sbx, ro_bundle, leftovers, tmp_path):
    b = ro_bundle(["true"], terminal=True)
    sock = tmp_path / "plain-file"
    sock.write_text("")
    fail_and_check(sbx, leftovers, b, "--console-socket", str(sock), args=["--console-socket", sock])


def test_terminal_without_console_socket(sbx, ro_bundle, leftovers):
    b = ro_bundle(["true"], terminal=True)
    fail_and_check(sbx, leftovers, b, "terminal", "--console-socket")


# ---------------------------------------------------------------------------
# security


@pytest.fixture
def host_dir(tmp_path):
    """A host directory a symlink in the rootfs points at; it must stay
    empty and unmounted."""
    d = Path(f"/tmp/sbxtest-host-{os.getpid()}-{time.monotonic_ns()}")
    d.mkdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def assert_untouched(d):
    assert os.listdir(d) == [], f"the host directory {d} was written to: {os.listdir(d)}"
    mps = [mp for _, mp, _ in mountinfo() if mp == str(d) or mp.startswith(f"{d}/")]
    assert mps == [], f"mounted on the host: {mps}"


@pytest.mark.parametrize("link", ["absolute", "relative"])
@pytest.mark.parametrize("kind", ["tmpfs", "bind", "tmpfs-below"])
def test_mount_destination_through_symlink_stays_in_rootfs(sbx, small_bundle, host_dir, tmp_path, link, kind):
    b = small_bundle(["sh", "-c", "touch /escape/written /escape/sub/written 2>/dev/null; true"])
    b.config["root"]["readonly"] = False
    target = str(host_dir) if link == "absolute" else "../" * 8 + str(host_dir).lstrip("/")
    (b.rootfs / "escape").symlink_to(target)
    dest = "/escape/sub" if kind == "tmpfs-below" else "/escape"
    if kind == "bind":
        src = tmp_path / "bindsrc"
        src.mkdir()
        b.config["mounts"].append({"destination": dest, "type": "bind", "source": str(src),
                                   "options": ["rbind", "rw"]})
    else:
        b.config["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs"})
    b.write()
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert_untouched(host_dir)
    if cp.returncode == 0:
        # The symlink was resolved inside the rootfs.
        assert (b.rootfs / str(host_dir).lstrip("/")).is_dir(), describe(cp)


@pytest.mark.parametrize("link", ["absolute", "relative"])
def test_cwd_through_symlink_stays_in_rootfs(sbx, small_bundle, host_dir, link):
    b = small_bundle(["sh", "-c", "touch written"])
    b.config["root"]["readonly"] = False
    target = str(host_dir) if link == "absolute" else "../" * 8 + str(host_dir).lstrip("/")
    (b.rootfs / "escape").symlink_to(target)
    # The path the link names, inside the rootfs: where the cwd must land.
    (b.rootfs / str(host_dir).lstrip("/")).mkdir(parents=True)
    b.config["process"]["cwd"] = "/escape"
    b.write()
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert_untouched(host_dir)
    if cp.returncode == 0:
        assert (b.rootfs / str(host_dir).lstrip("/") / "written").exists(), describe(cp)


def test_cwd_magic_link_cannot_escape(sbx, ro_bundle, tmp_path):
    """process.cwd = /proc/self/fd/N (CVE-2024-21626): whatever fd N is
    while the init sets up, the process must not end up in a host
    directory.  From an escaped cwd `cd ..` walks up to the host's root,
    where the marker is found by its host path."""
    marker = tmp_path / "host-marker"
    marker.write_text("host\n")
    rel = str(marker).lstrip("/")
    script = f"for i in $(seq 40); do cd .. || exit 9; done; if [ -e {rel} ]; then echo ESCAPED; fi; true"
    b = ro_bundle(["sh", "-c", script])
    for n in range(3, 16):
        b.config["process"]["cwd"] = f"/proc/self/fd/{n}"
        b.write()
        cp = sbx("run", "--bundle", b, sbx.new_id())
        assert "ESCAPED" not in cp.stdout, f"cwd /proc/self/fd/{n} escaped:\n{describe(cp)}"
        if cp.returncode != 0:
            assert f"/proc/self/fd/{n}" in cp.stderr, describe(cp)


def test_cwd_symlink_to_magic_link_cannot_escape(sbx, small_bundle, tmp_path):
    marker = tmp_path / "host-marker"
    marker.write_text("host\n")
    rel = str(marker).lstrip("/")
    b = small_bundle(["sh", "-c", f"for i in $(seq 40); do cd ..; done; [ -e {rel} ] && echo ESCAPED; true"])
    for n in range(3, 10):
        link = b.rootfs / f"fd{n}"
        link.symlink_to(f"/proc/self/fd/{n}")
    for n in range(3, 10):
        b.config["process"]["cwd"] = f"/fd{n}"
        b.write()
        cp = sbx("run", "--bundle", b, sbx.new_id())
        assert "ESCAPED" not in cp.stdout, f"cwd /fd{n} -> /proc/self/fd/{n} escaped:\n{describe(cp)}"


def test_host_fds_do_not_reach_the_container(sbx, ro_bundle, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("secret\n")
    fd = os.open(secret, os.O_RDONLY)  # inheritable only through pass_fds
    try:
        b = ro_bundle(["sh", "-c", "ls /proc/$$/fd; true"])
        cp = sbx("run", "--bundle", b, sbx.new_id(), pass_fds=[fd])
        assert cp.returncode == 0, describe(cp)
        assert cp.stdout.split() == ["0", "1", "2"], describe(cp)

        # create + start, both with the fd: look from the host.
        b2 = ro_bundle(["sleep", "100"])
        cid = sbx.new_id()
        sbx.ok("create", "--bundle", b2, cid, pass_fds=[fd])
        sbx.ok("start", cid, pass_fds=[fd])
        pid = sbx.state(cid)["pid"]
        assert sorted(os.listdir(f"/proc/{pid}/fd"), key=int) == ["0", "1", "2"]
        for n in os.listdir(f"/proc/{pid}/fd"):
            assert os.readlink(f"/proc/{pid}/fd/{n}") != str(secret)
        sbx.ok("delete", "--force", cid)
    finally:
        os.close(fd)


def test_state_dir_is_private(sbx, ro_bundle):
    b = ro_bundle(["sleep", "100"])
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    d = sbx.root / cid
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for p in d.iterdir():
        mode = stat.S_IMODE(p.lstat().st_mode)
        if not p.is_socket():
            assert mode & 0o077 == 0, f"{p} is mode {mode:o}"
    sbx.ok("delete", "--force", cid)


# ---- crash consistency (issue 14): the runtime SIGKILLed at every step of
# create, run and delete (SBXRUN_TEST_KILL_AT, see docs/design.md) leaves a
# container that `list` shows and `delete --force` removes whole (cgroups in
# every hierarchy, processes, egress rules, state), its ID reusable.

CREATE_STEPS = [("create:state", "creating"), ("create:cgroup-recorded", "creating"),
                ("create:cgroup", "creating"), ("create:resources", "creating"),
                ("create:spawned", "creating"), ("create:net", "creating"), ("create:hooks", "creating"),
                ("create:created", "created")]
RUN_STEPS = CREATE_STEPS + [("run:created", "created"), ("run:started", "running")]
DELETE_STEPS = ["delete:marked", "delete:killed", "delete:cgroup", "delete:net"]


def _crash_bundle(ro_bundle):
    """Limits in several hierarchies, an egress policy: something of each
    kind to leave behind."""
    b = ro_bundle(["sleep", "100"])
    b.config["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 32},
                                      "cpu": {"shares": 512}}
    b.config.setdefault("annotations", {}).update({"org.sbxrun.net.allow": "127.0.0.1:9",
                                                   "org.sbxrun.net.dns": "none"})
    b.write()
    return b


def _listed(sbx, cid):
    cp = sbx("list", "--format", "json")
    assert cp.returncode == 0, describe(cp)
    return {c["id"]: c["status"] for c in json.loads(cp.stdout) or []}.get(cid)


def _delete_all_and_reuse(sbx, leftovers, b, cid):
    cp = sbx("delete", "--force", cid)
    assert cp.returncode == 0, describe(cp)
    leftovers.check(cp, cid)
    assert _listed(sbx, cid) is None
    # the ID is free again
    b.config["process"]["args"] = ["true"]
    b.write()
    cp = sbx("run", "--bundle", b, cid)
    assert cp.returncode == 0, describe(cp)
    leftovers.check(cp, cid)


@pytest.mark.parametrize("cmd, step, status",
                         [pytest.param("create", s, st, id=f"create-{s}") for s, st in CREATE_STEPS]
                         + [pytest.param("run", s, st, id=f"run-{s}") for s, st in RUN_STEPS])
def test_killed_during_create_or_run(sbx, ro_bundle, leftovers, cmd, step, status):
    b = _crash_bundle(ro_bundle)
    cid = sbx.new_id()
    leftovers.snapshot()
    cp = sbx(cmd, "--bundle", b, cid, env={**os.environ, "SBXRUN_TEST_KILL_AT": step})
    assert cp.returncode == -signal.SIGKILL, describe(cp)
    assert _listed(sbx, cid) == status
    if status == "creating":
        # a create that did not finish is not stopped: plain delete says so
        cp = sbx("delete", cid)
        assert cp.returncode != 0 and "creating" in cp.stderr and "--force" in cp.stderr, describe(cp)
    _delete_all_and_reuse(sbx, leftovers, b, cid)


@pytest.mark.parametrize("step", DELETE_STEPS)
def test_killed_during_delete(sbx, ro_bundle, leftovers, step):
    b = _crash_bundle(ro_bundle)
    cid = sbx.new_id()
    leftovers.snapshot()
    sbx.ok("create", "--bundle", b, cid)
    cp = sbx("delete", "--force", cid, env={**os.environ, "SBXRUN_TEST_KILL_AT": step})
    assert cp.returncode == -signal.SIGKILL, describe(cp)
    assert _listed(sbx, cid) == "deleting"
    _delete_all_and_reuse(sbx, leftovers, b, cid)


def test_state_dir_without_status_is_removable(sbx, ro_bundle, leftovers):
    """What an older sbxrun killed during create left (a state directory
    with only config.json) is listed as creating and removed by delete -f."""
    b = ro_bundle(["true"])
    cid = sbx.new_id()
    d = sbx.root / cid
    d.mkdir(parents=True)
    shutil.copy(b.config_path, d / "config.json")
    assert _listed(sbx, cid) == "creating"
    _delete_all_and_reuse(sbx, leftovers, b, cid)


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
def test_create_losing_the_id_race_leaves_the_winner_alone(sbx, bundle):
    """Two creates of one id with one cgroupsPath: the one that checked
    first but claims the id last (strace delays its mkdirat of the state
    directory) fails with "already exists" and removes nothing of the
    winner's: its init stays alive, its cgroup stays (review finding: the
    loser's cleanup once destroyed the cgroup it had only planned)."""
    b = bundle(["sleep", "30"])
    cid = sbx.new_id()
    loser = subprocess.Popen(
        ["strace", "-qq", "-o", "/dev/null", "-e", "trace=mkdirat", "-e",
         "inject=mkdirat:delay_enter=1500000:when=1"] + [str(a) for a in sbx.argv("create", "--bundle", b, cid)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        sbx.ok("create", "--bundle", b, cid)
        pid = sbx.state(cid)["pid"]
        _, err = loser.communicate(timeout=30)
        assert loser.returncode != 0 and "already exists" in err, err
        time.sleep(0.2)
        st = sbx.state(cid)
        assert st["status"] == "created" and st["pid"] == pid and os.path.exists(f"/proc/{pid}"), st
        dirs = [d for d in cgroup_dirs(b.config["linux"]["cgroupsPath"])]
        assert dirs and all(os.path.isdir(d) for d in dirs), dirs
    finally:
        if loser.poll() is None:
            loser.kill()
            loser.wait()
        sbx("delete", "--force", cid)
