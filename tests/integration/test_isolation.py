"""What a container process sees of itself: capabilities, no_new_privs,
names, user, rlimits, cwd, env, oom score, mounts, masked and read-only
paths, /dev, devices, sysctls, namespaces (new, joined, user, time), its
cgroup, file descriptors, its executable and terminals.

Each test configures one thing, runs a busybox shell that prints what it
observes, and parses that output; where the host's view matters (pids,
cgroups, namespace inodes, the exe link) it is checked from here on a
detached container.
"""

import fcntl
import os
import pty
import signal
import re
import resource
import shutil
import socket
import struct
import subprocess
import tempfile
import termios
import time
from pathlib import Path

import pytest

from conftest import (
    add_bind,
    cap_mask,
    cap_names,
    cgroup_dirs,
    describe,
    parse_status,
    read_pty_until,
    run_cmd,
    wait_for,
)

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("run", "state", "delete"),
              pytest.mark.usefixtures("seccomp_cache_cleanup")]


@pytest.fixture
def bundle(fast_bundle):
    """Here `bundle` is conftest's, with a cheaper rootfs copy (clone_rootfs)."""
    return fast_bundle


CAP_SETS = {"bounding": "CapBnd", "effective": "CapEff", "permitted": "CapPrm",
            "inheritable": "CapInh", "ambient": "CapAmb"}


def run_sh(sbx, b, script=None, *, code=0, **kw):
    """Run bundle B (with `sh -c SCRIPT` as its process when given) in the
    foreground; assert the exit code and return stdout."""
    if script is not None:
        b.args = ["sh", "-c", script]
    cp = sbx("run", "--bundle", b, sbx.new_id(), **kw)
    assert cp.returncode == code, describe(cp)
    return cp.stdout


def detached(sbx, b, args=("sleep", "1000")):
    """run --detach B with ARGS; return (id, host pid of its init)."""
    b.args = list(args)
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    return cid, sbx.state(cid)["pid"]


def status_of(text):
    """The capability / no_new_privs lines of a /proc/self/status dump."""
    st = parse_status(text)
    return {k: st[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")}


def mountinfo_by_target(text):
    """mountinfo text -> {mount point: (per-mount options, fstype, super options)}
    (the last mount on a point wins, as it is the visible one)."""
    out = {}
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        r = right.split()
        if len(f) >= 6 and len(r) >= 3:
            out[f[4]] = (set(f[5].split(",")), r[0], set(r[2].split(",")))
    return out


def host_ns(kind):
    return os.readlink(f"/proc/self/ns/{kind}")


@pytest.fixture
def out(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    d.chmod(0o777)
    return d


# ---- capabilities and no_new_privs


def caps_config(bounding, effective, permitted, inheritable, ambient):
    return {"bounding": bounding, "effective": effective, "permitted": permitted,
            "inheritable": inheritable, "ambient": ambient}


CUSTOM_B = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN",
            "CAP_AUDIT_READ"]


@pytest.mark.parametrize("caps", [
    "default",
    caps_config(CUSTOM_B, CUSTOM_B, CUSTOM_B, ["CAP_KILL", "CAP_NET_RAW"], ["CAP_NET_RAW"]),
    caps_config([], [], [], [], []),
    None,
], ids=["spec-default", "custom", "empty", "absent"])
def test_capabilities_of_root(sbx, bundle, caps):
    b = bundle()
    with b.edit() as c:
        if caps is None:
            c["process"].pop("capabilities", None)
        elif caps != "default":
            c["process"]["capabilities"] = caps
    configured = b.config["process"].get("capabilities") or {}
    want = {CAP_SETS[k]: cap_mask(configured.get(k, [])) for k in CAP_SETS}
    # For uid 0 the kernel recomputes permitted and effective at execve as
    # bounding | inheritable: configs where that equals `permitted` are
    # observable as configured.
    assert want["CapPrm"] == want["CapBnd"] | want["CapInh"] == want["CapEff"]
    # and ambient capabilities must be permitted and inheritable
    assert want["CapAmb"] & ~(want["CapPrm"] & want["CapInh"]) == 0

    seen = status_of(run_sh(sbx, b, "cat /proc/self/status"))
    for key, mask in want.items():
        assert int(seen[key], 16) == mask, (
            f"{key}: container has {cap_names(int(seen[key], 16))}, configured {cap_names(mask)}")


RUNC_SPEC_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


@pytest.mark.parametrize("debug", [False, True], ids=["quiet", "debug"])
def test_runc_spec_ambient_caps_are_quiet(sbx, bundle, debug):
    """`runc spec` lists ambient caps that are not inheritable: they are not
    raised (as with runc and crun), and only --debug says so."""
    b = bundle(["grep", "Cap", "/proc/self/status"])
    with b.edit() as c:
        c["process"]["capabilities"] = {k: RUNC_SPEC_CAPS for k in ("bounding", "effective", "permitted",
                                                                  "ambient")}
    cp = sbx("run", "--bundle", b, sbx.new_id(), global_args=["--debug"] if debug else [])
    assert cp.returncode == 0, describe(cp)
    assert re.search(r"^CapAmb:\s+0+$", cp.stdout, re.M), describe(cp)
    if debug:
        assert "CAP_KILL not raised" in cp.stderr, describe(cp)
    else:
        assert "ambient" not in cp.stderr and cp.stderr == "", describe(cp)


def test_capabilities_of_non_root_with_ambient(sbx, bundle):
    b = bundle()
    amb = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    bnd = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]
    with b.edit() as c:
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        c["process"]["capabilities"] = caps_config(bnd, amb, amb, amb, amb)
    seen = status_of(run_sh(sbx, b, "cat /proc/self/status"))
    assert int(seen["CapBnd"], 16) == cap_mask(bnd), cap_names(int(seen["CapBnd"], 16))
    # without file capabilities a non-root process keeps exactly its ambient set
    for key in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(seen[key], 16) == cap_mask(amb), f"{key}: {cap_names(int(seen[key], 16))}"


def test_capability_sets_really_apply(sbx, bundle):
    """Not just the numbers: chown needs CAP_CHOWN and kill of another user's
    process needs CAP_KILL."""
    b = bundle()
    keep = ["CAP_SETUID", "CAP_SETGID"]
    with b.edit() as c:
        c["process"]["capabilities"] = caps_config(keep, keep, keep, [], [])
        c["mounts"].append({"destination": "/w", "type": "tmpfs", "source": "tmpfs"})
    out = run_sh(sbx, b, "touch /w/f; chown 1:1 /w/f 2>&1; echo chown=$?")
    assert "chown=1" in out and "Operation not permitted" in out, out


@pytest.mark.parametrize("nnp, want", [(True, "1"), (False, "0"), (None, "0")])
def test_no_new_privileges(sbx, bundle, nnp, want):
    b = bundle()
    with b.edit() as c:
        if nnp is None:
            c["process"].pop("noNewPrivileges", None)
        else:
            c["process"]["noNewPrivileges"] = nnp
    seen = status_of(run_sh(sbx, b, "cat /proc/self/status"))
    assert seen["NoNewPrivs"] == want


# ---- names, user, limits, cwd, env, oom score


def test_hostname_and_domainname(sbx, bundle):
    host_before = (socket.gethostname(), open("/proc/sys/kernel/domainname").read())
    b = bundle()
    with b.edit() as c:
        c["hostname"] = "sbx-test-host"
        c["domainname"] = "sbx.example"
    out = run_sh(sbx, b, "hostname; cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname; uname -n")
    assert out.splitlines() == ["sbx-test-host", "sbx-test-host", "sbx.example", "sbx-test-host"]
    assert (socket.gethostname(), open("/proc/sys/kernel/domainname").read()) == host_before


def test_hostname_without_uts_namespace_is_refused(sbx, bundle):
    b = bundle(["true"])
    with b.edit() as c:
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "uts"]
        c["hostname"] = "must-not-reach-the-host"
    before = socket.gethostname()
    cp = sbx.fail("run", "--bundle", b, sbx.new_id())
    assert "hostname" in cp.stderr, describe(cp)
    assert socket.gethostname() == before


def test_user_groups_and_umask(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 2000], "umask": 0o027}
        c["mounts"].append({"destination": "/w", "type": "tmpfs", "source": "tmpfs",
                            "options": ["mode=1777"]})
    out = run_sh(sbx, b, "cat /proc/self/status; echo id=$(id -u):$(id -g):$(id -G); "
                         "echo umask=$(umask); touch /w/f; mkdir /w/d; stat -c 'mode=%n:%a:%u:%g' /w/f /w/d")
    st = parse_status(out)
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["1001"] * 4
    assert sorted(st["Groups"].split(), key=int) == ["5", "2000"]
    assert st["Umask"] == "0027"
    assert "umask=0027" in out
    assert re.search(r"^id=1000:1001:(.*)$", out, re.M).group(1).split()[0] == "1001"
    assert "mode=/w/f:640:1000:1001" in out and "mode=/w/d:750:1000:1001" in out, out


def test_default_user_has_no_supplementary_groups(sbx, bundle):
    st = parse_status(run_sh(sbx, bundle(), "cat /proc/self/status"))
    assert st["Uid"].split() == ["0"] * 4 and st["Gid"].split() == ["0"] * 4
    assert st["Groups"] == "", f"groups leaked from the runtime: {st['Groups']!r}"


def test_rlimits(sbx, bundle):
    b = bundle()
    core_hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    unlimited = 2**64 - 1 if core_hard == resource.RLIM_INFINITY else core_hard
    with b.edit() as c:
        c["process"]["rlimits"] = [
            {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": unlimited},
            {"type": "RLIMIT_NPROC", "soft": 777, "hard": 888},
        ]
    out = run_sh(sbx, b, "echo n=$(ulimit -n) hn=$(ulimit -Hn); cat /proc/self/limits")
    assert "n=123 hn=456" in out
    limits = {}
    for line in out.splitlines():
        m = re.match(r"(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)", line)
        if m:
            limits[m.group(1)] = (m.group(2), m.group(3))
    assert limits["Max open files"] == ("123", "456")
    assert limits["Max core file size"] == ("0", "unlimited" if unlimited == 2**64 - 1 else str(unlimited))
    assert limits["Max processes"] == ("777", "888")


def test_cwd(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["process"]["cwd"] = "/var/tmp"
    assert run_sh(sbx, b, "pwd; readlink /proc/self/cwd").splitlines() == ["/var/tmp", "/var/tmp"]


def test_environment_is_exactly_the_configured_one(sbx, bundle):
    b = bundle()
    env = ["PATH=/bin:/sbin", "FOO=bar baz", "EMPTY=", "EQUALS=a=b=c", "UNICODE=\u00e9t\u00e9"]
    with b.edit() as c:
        c["process"]["env"] = env
    # What the runtime handed to execve, before the shell adds anything.
    out = run_sh(sbx, b, "tr '\\0' '\\n' < /proc/1/environ; echo end",
                 env={**os.environ, "SBXTEST_MUST_NOT_LEAK": "1"})
    seen = out.splitlines()
    assert seen.pop() == "end"
    extra = [v for v in seen if v not in env and not v.startswith("HOME=")]
    assert extra == [], f"unexpected variables in the container: {extra}"
    assert [v for v in seen if v in env] == env


def have_cap(name):
    with open("/proc/self/status") as f:
        return bool(int(parse_status(f.read())["CapEff"], 16) & cap_mask([name]))


@pytest.mark.parametrize("adj", [123, -500])
def test_oom_score_adj(sbx, bundle, adj):
    if adj < 0 and not have_cap("CAP_SYS_RESOURCE"):
        pytest.skip("lowering oom_score_adj needs CAP_SYS_RESOURCE, which this host's root lacks")
    b = bundle()
    with b.edit() as c:
        c["process"]["oomScoreAdj"] = adj
    assert run_sh(sbx, b, "cat /proc/self/oom_score_adj") == f"{adj}\n"


# ---- mounts, masked and read-only paths, root.readonly


def test_bind_mounts_ro_and_rw(sbx, bundle, tmp_path):
    ro, rw = tmp_path / "ro-src", tmp_path / "rw-src"
    ro.mkdir()
    rw.mkdir()
    (ro / "hello").write_text("from the host\n")
    b = bundle()
    add_bind(b, ro, "/data/ro", ro=True)
    add_bind(b, rw, "/data/rw")
    out = run_sh(sbx, b, "cat /data/ro/hello; "
                         "touch /data/ro/new 2>&1; echo ro-write=$?; "
                         "echo x > /data/rw/new; echo rw-write=$?; "
                         "echo ===; cat /proc/self/mountinfo")
    head, _, mi = out.partition("===\n")
    assert head.startswith("from the host\n")
    assert "Read-only file system" in head and "ro-write=1" in head, head
    assert "rw-write=0" in head
    assert not (ro / "new").exists()
    assert (rw / "new").read_text() == "x\n"
    mounts = mountinfo_by_target(mi)
    assert "ro" in mounts["/data/ro"][0], mounts["/data/ro"]
    assert "rw" in mounts["/data/rw"][0], mounts["/data/rw"]


def test_relative_bind_source_is_in_the_bundle(sbx, bundle):
    b = bundle()
    (b.path / "data").mkdir()
    (b.path / "data/file").write_text("bundle data\n")
    with b.edit() as c:
        c["mounts"].append({"destination": "/data", "type": "bind", "source": "data",
                            "options": ["rbind", "ro"]})
    assert run_sh(sbx, b, "cat /data/file") == "bundle data\n"


def test_mount_target_symlink_stays_in_rootfs(sbx, bundle, tmp_path):
    """A mount destination through an absolute symlink in the rootfs is
    resolved inside the rootfs, never on the host."""
    hostside = tmp_path / "hostside"
    hostside.mkdir()
    b = bundle()
    (b.rootfs / "escape").symlink_to(hostside)  # absolute host path
    with b.edit() as c:
        c["root"]["readonly"] = False
        c["mounts"].append({"destination": "/escape/sub", "type": "tmpfs", "source": "tmpfs"})
    # inside, the symlink leads to the same place in the container's root
    out = run_sh(sbx, b, f"echo inside > /escape/sub/f; cat {hostside}/sub/f")
    assert out == "inside\n", out
    assert list(hostside.iterdir()) == [], "the runtime created the mount target on the host"
    assert (b.rootfs / str(hostside).lstrip("/") / "sub").is_dir()


def test_tmpfs_mount_with_size_mode_and_flags(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1770"]})
    out = run_sh(sbx, b, "stat -c %a /scratch; echo ===; cat /proc/self/mountinfo")
    mode, _, mi = out.partition("===\n")
    assert mode.strip() == "1770"
    opts, fstype, sopts = mountinfo_by_target(mi)["/scratch"]
    assert fstype == "tmpfs"
    assert {"nosuid", "nodev", "noexec"} <= opts, opts
    assert {"size=1024k", "mode=1770"} <= sopts, sopts


def test_masked_paths(sbx, bundle):
    b = bundle()
    (b.rootfs / "etc/secret").write_text("top secret\n")
    (b.rootfs / "opt/secrets").mkdir(parents=True)
    (b.rootfs / "opt/secrets/key").write_text("key\n")
    with b.edit() as c:
        c["linux"]["maskedPaths"] += ["/etc/secret", "/opt/secrets", "/does/not/exist"]
    # the default list names files that only some kernels have
    files = [f for f in ("/proc/kcore", "/proc/keys", "/proc/timer_list") if os.path.exists(f)]
    files.append("/etc/secret")
    dirs = [d for d in ("/proc/acpi", "/sys/firmware") if os.path.isdir(d)] + ["/opt/secrets"]
    out = run_sh(sbx, b, f"for f in {' '.join(files)}; do echo $f:$(wc -c < $f); done; "
                         f"for d in {' '.join(dirs)}; do echo $d:[$(ls -A $d)]; done; "
                         "test -e /does/not/exist; echo missing=$?")
    assert out.splitlines() == [f"{f}:0" for f in files] + [f"{d}:[]" for d in dirs] + ["missing=1"]


def test_readonly_paths(sbx, bundle):
    b = bundle()
    (b.rootfs / "locked").mkdir()
    with b.edit() as c:
        c["root"]["readonly"] = False
        c["linux"]["readonlyPaths"].append("/locked")
    # /proc/sys/kernel/hostname belongs to the container's uts namespace: a
    # write that wrongly succeeded would not touch the host.
    out = run_sh(sbx, b, "(echo changed > /proc/sys/kernel/hostname) 2>&1; echo sys=$?; "
                         "touch /locked/f 2>&1; echo locked=$?; touch /free; echo free=$?")
    assert re.search(r"Read-only file system\s*sys=1", out), out
    assert re.search(r"Read-only file system\s*locked=1", out), out
    assert "free=0" in out
    assert (b.rootfs / "free").exists()


@pytest.mark.parametrize("readonly", [True, False])
def test_root_readonly(sbx, bundle, readonly):
    b = bundle()
    with b.edit() as c:
        c["root"]["readonly"] = readonly
    out = run_sh(sbx, b, "touch /newfile 2>&1; echo rc=$?; echo ===; cat /proc/self/mountinfo")
    head, _, mi = out.partition("===\n")
    root_opts = mountinfo_by_target(mi)["/"][0]
    if readonly:
        assert "Read-only file system" in head and "rc=1" in head, head
        assert "ro" in root_opts
        assert not (b.rootfs / "newfile").exists()
    else:
        assert "rc=0" in head, head
        assert "rw" in root_opts
        assert (b.rootfs / "newfile").exists()


# ---- /dev


DEV_NODES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9),
             "tty": (5, 0)}
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}


def test_dev_has_exactly_the_default_devices(sbx, bundle):
    out = run_sh(sbx, bundle(), "ls -A /dev; echo ===; "
                                "for f in /dev/*; do stat -c '%n|%F|%t|%T|%a' $f; done; echo ===; "
                                "for l in fd stdin stdout stderr ptmx; do echo $l:$(readlink /dev/$l); done; "
                                "echo ===; cat /proc/self/mountinfo")
    listing, stats, links, mi = out.split("===\n")
    names = set(listing.split())
    expected = set(DEV_NODES) | set(DEV_LINKS) | {"pts", "shm", "mqueue"}
    assert names == expected, f"missing {expected - names}, unexpected {names - expected}"
    nodes = {}
    for line in stats.splitlines():
        n, kind, major, minor, mode = line.split("|")
        nodes[n.removeprefix("/dev/")] = (kind, int(major, 16), int(minor, 16), mode)
    for n, (major, minor) in DEV_NODES.items():
        assert nodes[n] == ("character special file", major, minor, "666"), (n, nodes[n])
    assert dict(line.split(":", 1) for line in links.splitlines()) == DEV_LINKS
    mounts = mountinfo_by_target(mi)
    assert mounts["/dev/pts"][1] == "devpts"
    assert mounts["/dev/shm"][1] == "tmpfs"


def test_default_devices_work(sbx, bundle):
    out = run_sh(sbx, bundle(), "echo x > /dev/null && echo null-ok; "
                                "head -c 5 /dev/zero | wc -c; head -c 5 /dev/urandom | wc -c; "
                                "echo x 2>&1 > /dev/full; echo full=$?")
    assert out.split()[:3] == ["null-ok", "5", "5"], out
    assert "No space left on device" in out and "full=1" in out, out


def test_linux_devices(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["linux"]["devices"] = [
            {"path": "/dev/sbxnull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620,
             "uid": 1000, "gid": 1001},
            {"path": "/dev/sub/dir/sbxblk", "type": "b", "major": 7, "minor": 200, "fileMode": 0o640,
             "uid": 0, "gid": 6},
            {"path": "/dev/sbxzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666},
        ]
    out = run_sh(sbx, b, "stat -c '%n|%F|%t|%T|%a|%u|%g' /dev/sbxnull /dev/sub/dir/sbxblk; "
                         "head -c 3 /dev/sbxzero | wc -c")
    assert out.splitlines() == [
        "/dev/sbxnull|character special file|1|3|620|1000|1001",
        "/dev/sub/dir/sbxblk|block special file|7|c8|640|0|6",
        "3",
    ]


def test_console_only_with_terminal(sbx, bundle):
    out = run_sh(sbx, bundle(), "test -e /dev/console; echo console=$?")
    assert out == "console=1\n", "/dev/console exists without a terminal"


# ---- sysctl


def test_sysctl_in_new_namespaces(sbx, bundle):
    host = {k: open(f"/proc/sys/{k}").read() for k in ("net/ipv4/ip_forward", "kernel/shm_rmid_forced")}
    b = bundle()
    with b.edit() as c:
        c["linux"]["readonlyPaths"].remove("/proc/sys")
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
    out = run_sh(sbx, b, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced")
    assert out.split() == ["1", "1"]
    assert {k: open(f"/proc/sys/{k}").read() for k in host} == host, "a container sysctl reached the host"


def test_sysctl_with_default_readonly_proc_sys(sbx, bundle):
    """Regression: sysctls were written after readonlyPaths, so the default
    spec's read-only /proc/sys made every sysctl fail with EROFS.  The
    container still cannot change them."""
    b = bundle()
    with b.edit() as c:
        assert "/proc/sys" in c["linux"]["readonlyPaths"]
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    out = run_sh(sbx, b, "cat /proc/sys/net/ipv4/ip_forward; (echo 0 > /proc/sys/net/ipv4/ip_forward) 2>&1; "
                         "cat /proc/sys/net/ipv4/ip_forward")
    lines = out.splitlines()
    assert lines[0] == lines[-1] == "1", out
    assert "Read-only file system" in out


# The runtime must refuse sysctls that would change the host (it once wrote
# them).  These use the host's current value, so even a regression changes
# nothing.
@pytest.mark.parametrize("key, drop_ns", [
    ("vm.swappiness", None),
    ("net.ipv4.ip_forward", "network"),
    ("kernel.shm_rmid_forced", "ipc"),
], ids=["not-namespaced", "net-without-netns", "ipc-without-ipcns"])
def test_sysctl_that_would_change_the_host_is_refused(sbx, bundle, key, drop_ns):
    path = "/proc/sys/" + key.replace(".", "/")
    host_value = open(path).read().strip()
    b = bundle(["cat", path])
    with b.edit() as c:
        c["linux"]["readonlyPaths"].remove("/proc/sys")
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != drop_ns]
        c["linux"]["sysctl"] = {key: host_value}
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert open(path).read().strip() == host_value
    assert cp.returncode != 0, f"sysctl {key} was written to the host: {describe(cp)}"
    assert key in cp.stderr


# ---- namespaces


def test_new_namespaces_and_pid_1(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["linux"]["namespaces"] = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")]
    out = run_sh(sbx, b, "echo pid=$$; cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                                "for p in /proc/[0-9]*; do echo proc=${p#/proc/}; done; "
                                "for n in pid net ipc uts mnt cgroup user time; do "
                                "echo ns=$n=$(readlink /proc/self/ns/$n); done")
    lines = out.splitlines()
    assert lines[0] == "pid=1"
    assert lines[1].startswith("sh -c "), lines[1]
    procs = {int(v.split("=")[1]) for v in lines if v.startswith("proc=")}
    assert procs <= {1, 2, 3, 4, 5}, f"host processes visible: {sorted(procs)[:20]}"
    ns = dict(v.split("=", 2)[1:] for v in lines if v.startswith("ns="))
    for kind in ("pid", "net", "ipc", "uts", "mnt", "cgroup"):
        assert ns[kind] != host_ns(kind), f"{kind} namespace is the host's"
    for kind in ("user", "time"):
        assert ns[kind] == host_ns(kind), f"an unrequested {kind} namespace was created"


def test_unlisted_namespaces_are_the_hosts(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c.pop("hostname", None)
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"]
                                    if n["type"] not in ("network", "ipc", "uts", "cgroup")]
    out = run_sh(sbx, b, "for n in net ipc uts cgroup pid mnt; do echo $n=$(readlink /proc/self/ns/$n); done")
    ns = dict(line.split("=", 1) for line in out.splitlines())
    for kind in ("net", "ipc", "uts", "cgroup"):
        assert ns[kind] == host_ns(kind), f"{kind}: a namespace was created although not listed"
    for kind in ("pid", "mnt"):
        assert ns[kind] != host_ns(kind)


def test_host_sees_namespaces_of_init(sbx, bundle):
    cid, pid = detached(sbx, bundle())
    for kind in ("pid", "net", "ipc", "uts", "mnt", "cgroup"):
        assert os.readlink(f"/proc/{pid}/ns/{kind}") != host_ns(kind), kind
    with open(f"/proc/{pid}/status") as f:
        st = parse_status(f.read())
    assert st["NSpid"].split() == [str(pid), "1"], st["NSpid"]


def test_join_namespaces_of_another_container(sbx, bundle):
    b1 = bundle()
    first, pid = detached(sbx, b1)
    b = bundle()
    with b.edit() as c:
        c.pop("hostname", None)  # joining a uts namespace must not rename it
        joined = {"network": "net", "ipc": "ipc", "uts": "uts", "pid": "pid"}
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] not in joined]
        c["linux"]["namespaces"] += [{"type": t, "path": f"/proc/{pid}/ns/{k}"} for t, k in joined.items()]
    out = run_sh(sbx, b, "echo pid=$$; for n in pid net ipc uts mnt; do "
                         "echo ns=$n=$(readlink /proc/self/ns/$n); done; hostname")
    lines = out.splitlines()
    ns = dict(v.split("=", 2)[1:] for v in lines if v.startswith("ns="))
    for kind in ("net", "ipc", "uts", "pid"):
        assert ns[kind] == os.readlink(f"/proc/{pid}/ns/{kind}"), f"{kind} not joined"
    assert ns["mnt"] != os.readlink(f"/proc/{pid}/ns/mnt"), "mount namespace should be new"
    assert lines[0] != "pid=1", "joined a pid namespace but became its init"
    assert lines[-1] == b1.config["hostname"], "hostname of the joined uts namespace changed"
    assert sbx.state(first)["status"] == "running"


@pytest.fixture
def netns():
    """A named network namespace (ip netns add), deleted afterwards."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2 is not installed")
    name = f"sbxtest-{os.getpid()}"
    cp = run_cmd(["ip", "netns", "add", name])
    if cp.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {cp.stderr.strip()}")
    try:
        yield f"/run/netns/{name}"
    finally:
        run_cmd(["ip", "netns", "delete", name])


def test_join_network_namespace_by_path(sbx, bundle, netns):
    b = bundle()
    with b.edit() as c:
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
        c["linux"]["namespaces"].append({"type": "network", "path": netns})
    out = run_sh(sbx, b, "readlink /proc/self/ns/net; ip -o link show | cut -d: -f2")
    lines = out.split()
    assert lines[0] == f"net:[{os.stat(netns).st_ino}]"
    assert lines[1:] == ["lo"], f"the joined namespace has interfaces {lines[1:]}"


def test_join_missing_namespace_path_fails_cleanly(sbx, bundle, tmp_path):
    b = bundle(["true"])
    with b.edit() as c:
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
        c["linux"]["namespaces"].append({"type": "network", "path": str(tmp_path / "nope")})
    cid = sbx.new_id()
    cp = sbx.fail("run", "--bundle", b, cid)
    assert "nope" in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()


def test_user_namespace_mappings(sbx, public_bundle):
    b = public_bundle()
    with b.edit() as c:
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 1000}]
        c["process"]["capabilities"] = caps_config(*[["CAP_CHOWN", "CAP_SETUID"]] * 3, [], [])
    cid, pid = detached(sbx, b, ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map > /dev/null; "
                                             "exec sleep 1000"])
    out = sbx.ok("exec", cid, "sh", "-c", "cat /proc/1/uid_map /proc/1/gid_map; id -u; id -g; "
                                          "readlink /proc/1/ns/user").stdout.splitlines()
    assert out[0].split() == ["0", "100000", "65536"]
    assert out[1].split() == ["0", "200000", "1000"]
    assert out[2:4] == ["0", "0"]
    assert out[4] != host_ns("user")
    with open(f"/proc/{pid}/status") as f:
        st = parse_status(f.read())
    assert st["Uid"].split() == ["100000"] * 4, "container root is not host uid 100000"
    assert st["Gid"].split() == ["200000"] * 4
    # capabilities inside a user namespace are relative to it
    assert int(st["CapEff"], 16) == cap_mask(["CAP_CHOWN", "CAP_SETUID"])


def test_user_namespace_device_nodes_are_nosuid_noexec(sbx, public_bundle):
    """In a user namespace mknod is refused, so the host's nodes are bound:
    each bound node (the defaults and a linux.devices entry) is nosuid and
    noexec, and still works; without a user namespace the nodes are made on
    the tmpfs /dev, which has those options itself."""
    b = public_bundle(["sh", "-c", "grep -E ' /dev/(null|zero|fuse) ' /proc/self/mountinfo; "
                                   "echo x > /dev/null && head -c 3 /dev/zero | wc -c"])
    with b.edit() as c:
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    lines = cp.stdout.splitlines()
    binds = [ln for ln in lines if " /dev/" in ln]
    assert len(binds) == 3, cp.stdout
    for ln in binds:
        opts = ln.split()[5].split(",")
        assert "nosuid" in opts and "noexec" in opts, ln
    assert lines[-1].strip() == "3"


def test_user_namespace_root_cannot_write_host_files(sbx, public_bundle, tmp_path):
    b = public_bundle()
    hostdir = Path(tempfile.mkdtemp(prefix=f"sbxtest-{os.getpid()}-", dir="/tmp"))
    try:
        hostdir.chmod(0o755)
        (hostdir / "owned-by-host-root").write_text("x\n")
        (b.rootfs / "host").mkdir()  # container root may not create it (host root owns /)
        add_bind(b, hostdir, "/host")
        with b.edit() as c:
            c["root"]["readonly"] = False
            c["linux"]["namespaces"].append({"type": "user"})
            c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
            c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        out = run_sh(sbx, b, "(echo y >> /host/owned-by-host-root) 2>&1; echo rc=$?; "
                             "stat -c %u:%g /host/owned-by-host-root; touch /tmp/mine; stat -c %u /tmp/mine")
        assert "Permission denied" in out and "rc=1" in out, out
        assert "65534:65534" in out, "unmapped host root should show as the overflow id"
        assert (hostdir / "owned-by-host-root").read_text() == "x\n"
        assert os.stat(b.rootfs / "tmp/mine").st_uid == 100000
        assert out.split()[-1] == "0"
    finally:
        shutil.rmtree(hostdir, ignore_errors=True)


def test_time_namespace_offsets(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"monotonic": {"secs": 864000, "nanosecs": 0},
                                     "boottime": {"secs": 86400, "nanosecs": 500}}
    before = float(open("/proc/uptime").read().split()[0])
    out = run_sh(sbx, b, "cat /proc/self/timens_offsets; cut -d' ' -f1 /proc/uptime; "
                         "readlink /proc/self/ns/time")
    after = float(open("/proc/uptime").read().split()[0])
    lines = out.splitlines()
    offsets = {ln.split()[0]: ln.split()[1:] for ln in lines[:2]}
    assert offsets == {"monotonic": ["864000", "0"], "boottime": ["86400", "500"]}
    inside = float(lines[2])
    assert before + 86400 - 1 <= inside <= after + 86400 + 1, (before, inside, after)
    assert lines[3] != host_ns("time")


def test_user_and_time_namespaces_together(sbx, public_bundle):
    b = public_bundle()
    with b.edit() as c:
        c["linux"]["namespaces"] += [{"type": "user"}, {"type": "time"}]
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["timeOffsets"] = {"boottime": {"secs": 1000000, "nanosecs": 0}}
    out = run_sh(sbx, b, "cat /proc/self/uid_map /proc/self/timens_offsets")
    assert "100000" in out and "1000000" in out, out


def test_time_offsets_without_time_namespace_are_refused(sbx, bundle):
    b = bundle(["true"])
    with b.edit() as c:
        c["linux"]["timeOffsets"] = {"monotonic": {"secs": 10, "nanosecs": 0}}
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode != 0, f"timeOffsets silently ignored: {describe(cp)}"


# ---- cgroups


def test_cgroup_namespace_and_placement(sbx, bundle):
    b = bundle()
    path = b.config["linux"]["cgroupsPath"]
    cid, pid = detached(sbx, b)
    with open(f"/proc/{pid}/cgroup") as f:
        host_view = [line.rstrip("\n").split(":", 2) for line in f]
    assert host_view and all(p == path for _, _, p in host_view), host_view
    inside = sbx.ok("exec", cid, "cat", "/proc/self/cgroup").stdout.splitlines()
    assert inside and all(line.endswith(":/") for line in inside), inside
    assert len(inside) == len(host_view)


def test_cgroup_without_namespace_shows_full_path(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "cgroup"]
    path = b.config["linux"]["cgroupsPath"]
    lines = run_sh(sbx, b, "cat /proc/self/cgroup").splitlines()
    assert lines and all(line.split(":", 2)[2] == path for line in lines), lines


def test_cgroup_mount_without_namespace_is_the_containers(sbx, bundle):
    """Without a cgroup namespace /sys/fs/cgroup binds the container's own
    cgroup directories (the setup runs in the runtime's cgroups: not
    those): the limit files read from inside are the container's."""
    b = bundle()
    with b.edit() as c:
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "cgroup"]
        c["linux"]["resources"] = {"pids": {"limit": 37}}
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    if not v2 and not os.path.isdir("/sys/fs/cgroup/pids"):
        pytest.skip("no pids controller")
    out = run_sh(sbx, b, "cat /sys/fs/cgroup/pids.max" if v2 else "cat /sys/fs/cgroup/pids/pids.max")
    assert out.strip() == "37"


# ---- file descriptors


def test_no_leaked_fds(sbx, bundle):
    # (not as the last command: the shell would exec ls, which has its own fd)
    out = run_sh(sbx, bundle(), "ls /proc/$$/fd; exit 0")
    assert sorted(out.split(), key=int) == ["0", "1", "2"], f"fds of the container process: {out.split()}"
    cid, pid = detached(sbx, bundle())
    fds = sorted(os.listdir(f"/proc/{pid}/fd"), key=int)
    assert fds == ["0", "1", "2"], {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds}


def with_fds(argv, files, listen_pid=False):
    """ARGV run by a shell that first opens FILES as fds 3, 4, ... (and,
    with LISTEN_PID, exports LISTEN_PID=<its pid>, which ARGV inherits)."""
    redirs = " ".join(f'{3 + i}<"${i + 1}"' for i in range(len(files)))
    export = "export LISTEN_PID=$$; " if listen_pid else ""
    return ["/bin/sh", "-c", f'{export}exec {redirs}; shift {len(files)}; exec "$@"', "sh",
            *map(str, files), *map(str, argv)]


def test_preserve_fds(sbx, bundle, tmp_path):
    f3, f4 = tmp_path / "three", tmp_path / "four"
    f3.write_text("preserved\n")
    f4.write_text("not preserved\n")
    b = bundle(["sh", "-c", "ls /proc/$$/fd; cat <&3; exit 0"])
    cp = run_cmd(with_fds(sbx.argv("run", "--preserve-fds", "1", "--bundle", b, sbx.new_id()), [f3, f4]))
    assert cp.returncode == 0, describe(cp)
    lines = cp.stdout.split()
    assert sorted(lines[:-1], key=int) == ["0", "1", "2", "3"]
    assert lines[-1] == "preserved"


def test_listen_fds_passthrough(sbx, bundle, tmp_path):
    f3 = tmp_path / "socket-stand-in"
    f3.write_text("activated\n")
    b = bundle(["sh", "-c", "tr '\\0' '\\n' < /proc/1/environ | grep ^LISTEN_; "
                            "ls /proc/$$/fd; cat <&3; exit 0"])
    env = {**os.environ, "LISTEN_FDS": "1"}
    cp = run_cmd(with_fds(sbx.argv("run", "--bundle", b, sbx.new_id()), [f3], listen_pid=True), env=env)
    assert cp.returncode == 0, describe(cp)
    lines = cp.stdout.split()
    assert sorted(x for x in lines if x.startswith("LISTEN_")) == ["LISTEN_FDS=1", "LISTEN_PID=1"]
    assert sorted((x for x in lines if x.isdigit()), key=int) == ["0", "1", "2", "3"]
    assert lines[-1] == "activated"


def test_listen_fds_for_another_process_are_ignored(sbx, bundle, tmp_path):
    f3 = tmp_path / "not-for-us"
    f3.write_text("private\n")
    b = bundle(["sh", "-c", "tr '\\0' '\\n' < /proc/1/environ | grep ^LISTEN_; ls /proc/$$/fd; exit 0"])
    env = {**os.environ, "LISTEN_FDS": "1", "LISTEN_PID": "1"}  # systemd's, not ours
    cp = run_cmd(with_fds(sbx.argv("run", "--bundle", b, sbx.new_id()), [f3]), env=env)
    assert cp.returncode == 0, describe(cp)
    assert sorted(cp.stdout.split(), key=lambda x: (not x.isdigit(), x)) == ["0", "1", "2"], cp.stdout


# ---- the executable


def test_init_exe_is_the_container_binary(sbx, bundle):
    b = bundle()
    cid, pid = detached(sbx, b)
    exe, busybox = os.stat(f"/proc/{pid}/exe"), os.stat(b.rootfs / "bin/busybox")
    assert (exe.st_dev, exe.st_ino) == (busybox.st_dev, busybox.st_ino)
    assert sbx.ok("exec", cid, "readlink", "/proc/1/exe").stdout == "/bin/busybox\n"


@pytest.mark.needs_cmd("create", "start", "exec")
def test_created_init_is_not_dumpable(sbx, bundle):
    """Before start the init is a copy of the runtime: a container process
    (without CAP_SYS_PTRACE) must not reach its /proc/1/exe (CVE-2019-5736)."""
    b = bundle(["sleep", "1000"])
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    probe = ["sh", "-c", "readlink -v /proc/1/exe 2>&1; echo rc=$?"]
    out = sbx.ok("exec", cid, *probe).stdout
    assert "rc=1" in out and "Permission denied" in out, f"created init is dumpable: {out}"
    sbx.ok("start", cid)
    wait_for(lambda: sbx.ok("exec", cid, *probe).stdout == "/bin/busybox\nrc=0\n",
             what="the started init to be busybox")


# ---- terminal


def test_terminal_via_console_socket(sbx, bundle, console_socket):
    b = bundle(["sh"], terminal=True)
    with b.edit() as c:
        c["process"]["consoleSize"] = {"height": 30, "width": 100}
    cid = sbx.new_id()
    sbx.ok("create", "--console-socket", console_socket.path, "--bundle", b, cid)
    master, _ = console_socket.receive()
    try:
        sbx.ok("start", cid)
        os.write(master, b"stty size; tty; stat -c %t:%T /dev/console $(tty); echo hi-$((40+2))\n")
        text = read_pty_until(master, "hi-42\r\n")
        assert "\r\n30 100\r\n" in text, text
        assert "\r\n/dev/pts/0\r\n" in text, text
        cons = re.findall(r"^([0-9a-f]+:[0-9a-f]+)\r$", text, re.M)
        assert len(cons) == 2 and cons[0] == cons[1], f"/dev/console is not the pty: {text}"
        os.write(master, b"exit 3\n")
        sbx.wait_status(cid, "stopped")
    finally:
        os.close(master)


@pytest.mark.parametrize("cmd", [["create"], ["run", "--detach"]], ids=["create", "run-detach"])
def test_terminal_detached_without_console_socket_is_refused(sbx, bundle, cmd):
    b = bundle(["sh"], terminal=True)
    cid = sbx.new_id()
    cp = sbx.fail(*cmd, "--bundle", b, cid)
    assert "console-socket" in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()


def test_unreachable_console_socket_fails_create(sbx, bundle, tmp_path):
    b = bundle(["sh"], terminal=True)
    cid = sbx.new_id()
    cp = sbx.fail("create", "--console-socket", tmp_path / "nobody-listens", "--bundle", b, cid)
    assert "nobody-listens" in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()
    assert [d for d in cgroup_dirs(b.config["linux"]["cgroupsPath"]) if os.path.exists(d)] == []


def sbx_on_pty(sbx, *args, rows=24, cols=90):
    """Start `sbxrun ARGS...` in the foreground with a new pty as its stdio;
    return (Popen, master fd)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    try:
        p = subprocess.Popen(sbx.argv(*args), stdin=slave, stdout=slave, stderr=slave,
                             start_new_session=True)
    finally:
        os.close(slave)
    sbx._procs.append(p)
    return p, master


def run_on_pty(sbx, b, rows=24, cols=90):
    return sbx_on_pty(sbx, "run", "--bundle", b, sbx.new_id(), rows=rows, cols=cols)


def test_terminal_in_foreground_run(sbx, bundle):
    b = bundle(["sh", "-c", "tty; echo hi-$((40+2)); read x; stty size; echo got-$x; exit 4"], terminal=True)
    p, master = run_on_pty(sbx, b)
    try:
        text = read_pty_until(master, "hi-42")
        assert "/dev/pts/0" in text
        os.write(master, b"abc\n")
        text = read_pty_until(master, "got-abc")
        # by the time the input arrived, our window size was copied
        assert "24 90" in text, text
        assert p.wait(timeout=30) == 4
    finally:
        os.close(master)


TRAP_SH = ("trap 'echo got-USR1' USR1; trap 'echo got-TERM; exit 3' TERM; echo ready; "
           "while :; do sleep 0.05; done")


def test_signals_forwarded_while_terminal_is_proxied(sbx, bundle):
    """Foreground run with a terminal: signals to sbxrun reach the container
    while the terminal is being proxied, not only after it exits."""
    b = bundle(["sh", "-c", TRAP_SH], terminal=True)
    p, master = run_on_pty(sbx, b)
    try:
        read_pty_until(master, "ready")
        p.send_signal(signal.SIGUSR1)
        read_pty_until(master, "got-USR1")
        p.send_signal(signal.SIGTERM)
        read_pty_until(master, "got-TERM")
        assert p.wait(timeout=30) == 3
    finally:
        os.close(master)


def test_signals_forwarded_to_exec_with_terminal(sbx, bundle):
    b = bundle(["sleep", "1000"])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    p, master = sbx_on_pty(sbx, "exec", "-t", cid, "sh", "-c", TRAP_SH)
    try:
        read_pty_until(master, "ready")
        p.send_signal(signal.SIGUSR1)
        read_pty_until(master, "got-USR1")
        p.send_signal(signal.SIGTERM)  # would kill an exec that does not forward
        read_pty_until(master, "got-TERM")
        assert p.wait(timeout=30) == 3
        assert sbx.state(cid)["status"] == "running"
    finally:
        os.close(master)
        sbx.ok("delete", "--force", cid)


def test_terminal_in_foreground_run_has_size_from_the_start(sbx, bundle):
    b = bundle(["sh", "-c", "stty size; echo end"], terminal=True)
    with b.edit() as c:
        # widen the (otherwise short) window in which the bug shows
        c["hooks"] = {"poststart": [{"path": "/bin/sleep", "args": ["sleep", "0.3"]}]}
    p, master = run_on_pty(sbx, b, rows=33, cols=77)
    try:
        text = read_pty_until(master, "end")
        assert "33 77" in text, text
        p.wait(timeout=30)
    finally:
        os.close(master)


def test_preserve_fds_gap_leaks_nothing_of_the_runtime(sbx, bundle):
    """--preserve-fds N with fewer fds passed: the runtime's own fds that land
    in the range (cgroup dirs, the start socket) must not reach the
    container; only what the caller passed does."""
    b = bundle(["sh", "-c", "ls /proc/self/fd"])
    cp = sbx.ok("run", "--preserve-fds", "8", "--bundle", b, sbx.new_id())
    fds = sorted(int(x) for x in cp.stdout.split())
    # 0-2, plus the one ls opens for the listing
    assert len(fds) <= 4 and all(fd < 4 for fd in fds), cp.stdout


def test_time_namespace_joined_by_path(sbx, bundle):
    holder = subprocess.Popen(["unshare", "--time", "--fork", "sleep", "60"])
    try:
        target = None
        for _ in range(100):
            kids = open(f"/proc/{holder.pid}/task/{holder.pid}/children").read().split()
            if kids:
                target = kids[0]
                break
            time.sleep(0.02)
        assert target, "unshare did not fork"
        b = bundle(["sh", "-c", "readlink /proc/self/ns/time"])
        with b.edit() as c:
            c["linux"]["namespaces"].append({"type": "time", "path": f"/proc/{target}/ns/time"})
        cp = sbx.ok("run", "--bundle", b, sbx.new_id())
        assert cp.stdout.strip() == os.readlink(f"/proc/{target}/ns/time"), cp.stdout
    finally:
        holder.kill()
        holder.wait()
