"""Landlock rules from org.sbxrun.landlock.* annotations, observed from
inside real containers: reads, writes, exec, links across rule boundaries
(refer), truncate, TCP bind/connect per port, exec'd processes, the ABI
downgrade in both modes, and malformed annotations (nothing left behind).

Each rule is checked against the same script run without the annotation,
so a test cannot pass because the operation fails anyway.
"""

import ctypes
import json
import os

import pytest

from conftest import describe
from test_failures import fail_and_check, leftovers, ro_bundle  # noqa: F401 (fixtures)

FS = "org.sbxrun.landlock.fs"
NET = "org.sbxrun.landlock.net"
MODE = "org.sbxrun.landlock.mode"


def kernel_abi():
    libc = ctypes.CDLL(None, use_errno=True)
    r = libc.syscall(444, None, 0, 1)  # landlock_create_ruleset(NULL, 0, VERSION)
    return max(r, 0)


pytestmark = [
    pytest.mark.needs_root,
    pytest.mark.needs_cmd("run", "exec", "state", "delete", "features"),
    pytest.mark.skipif(kernel_abi() < 4, reason="needs Landlock ABI 4 (kernel 6.7) for the TCP rules"),
]

# One line per operation: "NAME ok" or "NAME denied" (busybox's message says
# "Permission denied" for EACCES, "Invalid cross-device link" for EXDEV).
PROBE = r"""
try() { name=$1; shift; if out=$("$@" 2>&1); then echo "$name ok"; else
  case $out in *"ermission denied"*) echo "$name denied";; *"cross-device"*) echo "$name exdev";;
  *) echo "$name other: $out";; esac; fi; }
try read_etc cat /etc/motd
try read_root cat /root/secret
try list_root ls /root
try write_tmp sh -c 'echo x > /tmp/new'
try write_etc sh -c 'echo x > /etc/new'
try mkdir_tmp mkdir /tmp/d
try exec_bin /bin/true
try exec_tmp /tmp/busybox true
try link_a_b ln /tmp/a/f /tmp/b/f
try link_a_c ln /tmp/a/g /tmp/c/g
try append_t sh -c 'echo y >> /tmp/t'
try truncate_t truncate -s 0 /tmp/t
"""


@pytest.fixture(autouse=True)
def _no_cache_left(seccomp_cache_cleanup):
    yield


def probe_results(text):
    out = {}
    for line in text.splitlines():
        parts = line.split(" ", 1)
        if len(parts) == 2 and parts[1] in ("ok", "denied", "exdev"):
            out[parts[0]] = parts[1]
        elif len(parts) == 2 and parts[1].startswith("other"):
            out[parts[0]] = parts[1]
    return out


def fs_bundle(bundle, annotations=None, args=None):
    b = bundle(args if args is not None else ["sh", "-c", PROBE])
    root = b.rootfs
    (root / "etc/motd").write_text("motd\n")
    (root / "root/secret").write_text("secret\n")
    for d in ("tmp/a", "tmp/b", "tmp/c"):
        (root / d).mkdir(parents=True)
    (root / "tmp/a/f").write_text("f\n")
    (root / "tmp/a/g").write_text("g\n")
    (root / "tmp/t").write_text("0123456789\n")
    os.link(root / "bin/busybox", root / "tmp/busybox")
    with b.edit() as c:
        c["root"]["readonly"] = False
        if annotations:
            c.setdefault("annotations", {}).update(annotations)
    return b


RULES = {
    FS: "rx:/bin; ro:/etc; rw:/tmp/a,/tmp/c; "
    "read_file+read_dir+write_file+make_reg+make_dir:/tmp,/tmp/b; read_file+write_file:/tmp/t"
}


def test_fs_rules_from_inside(sbx, bundle):
    # The weakened setup: every operation works without the rules.
    cp = sbx.ok("run", "--bundle", fs_bundle(bundle), sbx.new_id())
    free = probe_results(cp.stdout)
    assert set(free.values()) == {"ok"}, describe(cp)

    cp = sbx.ok("run", "--bundle", fs_bundle(bundle, RULES), sbx.new_id())
    got = probe_results(cp.stdout)
    assert got == {
        "read_etc": "ok",
        "read_root": "denied",  # not listed: nothing allowed
        "list_root": "denied",
        "write_tmp": "ok",  # make_reg+write_file on /tmp
        "write_etc": "denied",  # ro
        "mkdir_tmp": "ok",
        "exec_bin": "ok",
        "exec_tmp": "denied",  # no execute under /tmp
        "link_a_b": "exdev",  # /tmp/b lacks refer
        "link_a_c": "ok",  # both rw, refer on both sides
        "append_t": "ok",  # write_file without truncate
        "truncate_t": "denied",
    }, describe(cp)


def test_exec_is_confined(sbx, bundle):
    b = fs_bundle(bundle, {FS: "rx:/bin; ro:/etc,/proc"}, args=["sleep", "60"])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    cp = sbx("exec", cid, "cat", "/root/secret")
    assert cp.returncode != 0 and "Permission denied" in cp.stderr, describe(cp)
    cp = sbx.ok("exec", cid, "cat", "/etc/motd")
    assert cp.stdout == "motd\n"
    # A changed process is held to the same rules.
    cp = sbx("exec", "--user", "0:0", cid, "sh", "-c", "echo x > /etc/motd")
    assert cp.returncode != 0 and "Permission denied" in cp.stderr, describe(cp)
    status = (sbx.ok("exec", cid, "cat", "/proc/self/status").stdout)
    assert "NoNewPrivs:\t1" in status
    sbx.ok("delete", "--force", cid)


NET_PROBE = r"""
try() { name=$1; shift; out=$("$@" 2>&1); rc=$?
  case $out in *"ermission denied"*) echo "$name denied";; *) echo "$name rc=$rc";; esac; }
try bind_8080 timeout 1 nc -l -p 8080
try bind_8081 timeout 1 nc -l -p 8081
try connect_9000 nc -w 1 127.0.0.1 9000
try connect_9001 nc -w 1 127.0.0.1 9001
try connect_9002 nc -w 1 127.0.0.1 9002
"""


def net_results(text):
    return dict(line.split(" ", 1) for line in text.splitlines() if line.startswith(("bind_", "connect_")))


@pytest.mark.parametrize("abi_cap", [None, "3"])
def test_net_rules_from_inside(sbx, bundle, abi_cap):
    env = dict(os.environ)
    if abi_cap:
        env["_SBXRUN_TEST_LANDLOCK_ABI"] = abi_cap
    ann = {FS: "rwx:/", NET: "bind:8080; connect:9000-9001"}
    cp = sbx("run", "--bundle", fs_bundle(bundle, ann, args=["sh", "-c", NET_PROBE]), sbx.new_id(), env=env)
    assert cp.returncode == 0, describe(cp)
    got = net_results(cp.stdout)
    # The loopback is down in the new network namespace: an allowed connect
    # fails with "unreachable" (or refused), never with EACCES.
    allowed = {k for k, v in got.items() if v != "denied"}
    if abi_cap is None:
        assert allowed == {"bind_8080", "connect_9000", "connect_9001"}, describe(cp)
        assert "warning" not in cp.stderr
    else:
        # ABI 3 has no TCP rules: best-effort says so and restricts nothing.
        assert allowed == set(got), describe(cp)
        assert "ABI 3 cannot restrict" in cp.stderr and "bind_tcp, connect_tcp" in cp.stderr, describe(cp)


def test_strict_mode_refuses_an_older_abi(sbx, ro_bundle, leftovers):  # noqa: F811
    b = ro_bundle(["true"])
    with b.edit() as c:
        c["annotations"] = {FS: "ro:/", NET: "connect:80", MODE: "strict"}
    env = dict(os.environ, _SBXRUN_TEST_LANDLOCK_ABI="3")
    fail_and_check(sbx, leftovers, b, MODE + "=strict", "ABI 3", "ioctl_dev, bind_tcp, connect_tcp", env=env)
    env["_SBXRUN_TEST_LANDLOCK_ABI"] = "0"
    fail_and_check(sbx, leftovers, b, "Landlock is not available", env=env)


@pytest.mark.parametrize(
    "annotations,fragments",
    [
        ({FS: "xx:/bin"}, [FS, "unknown rights `xx`"]),
        ({FS: "read_file+bogus:/bin"}, [FS, "unknown rights `bogus`"]),
        ({FS: "ro:bin"}, [FS, "`bin` is not absolute"]),
        ({FS: "ro:"}, [FS, "name no path"]),
        ({FS: "/bin"}, [FS, "is not RIGHTS:PATH"]),
        ({NET: "bind:99999"}, [NET, "`99999` is not a port"]),
        ({NET: "connect:90-80"}, [NET, "reversed"]),
        ({NET: "listen:80"}, [NET, "`listen` is not bind:PORTS or connect:PORTS"]),
        ({NET: "bind"}, [NET, "names no port"]),
        ({MODE: "lenient", FS: "ro:/"}, [MODE, "`lenient` is not best-effort or strict"]),
        ({MODE: "strict"}, [MODE, "no org.sbxrun.landlock.fs or org.sbxrun.landlock.net"]),
        ({"org.sbxrun.landlock.files": "ro:/"}, ["unknown annotation org.sbxrun.landlock.files"]),
        ({"org.sbxrun.landlock.effective": "abi=9"}, ["org.sbxrun.landlock.effective is set by sbxrun"]),
        ({FS: "ro:/nonexistent"}, [FS, "`/nonexistent` in the container", "No such file"]),
    ],
)
def test_malformed_annotations(sbx, ro_bundle, leftovers, annotations, fragments):  # noqa: F811
    b = ro_bundle(["true"])
    with b.edit() as c:
        c["annotations"] = annotations
    fail_and_check(sbx, leftovers, b, *fragments)


def test_features_and_state_report(sbx, bundle):
    f = sbx.json("features")["annotations"]
    assert f["org.sbxrun.landlock.abi"] == str(kernel_abi())
    assert "bind_tcp" in f["org.sbxrun.landlock.rights"] and "refer" in f["org.sbxrun.landlock.rights"]
    for k in (FS, NET, MODE):
        assert k in f
    b = fs_bundle(bundle, {FS: "rx:/bin; ro:/etc; read_file+write_file:/tmp/t", NET: "connect:443"},
                  args=["sleep", "60"])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    eff = sbx.state(cid)["annotations"]["org.sbxrun.landlock.effective"]
    assert eff == (f"abi={kernel_abi()} mode=best-effort fs=rx:/bin;ro:/etc;write_file+read_file:/tmp/t "
                   "net=connect:443 no_new_privs"), eff
    sbx.ok("delete", "--force", cid)
    assert json.loads(sbx.ok("list", "--format", "json").stdout) is None  # no container: null, as runc
