"""Egress policy bypass attempts (issue 9.6), in the test networks of
tests/integration/test_netfilter.py (its netlab fixture: a client network
namespace the containers join and a server namespace behind a veth pair;
nothing else is touched).

Each test first shows the way out works where the policy is absent or
deliberately weakened, then that the container under the policy is stopped.
"""

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import describe, run_cmd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import test_netfilter as nf  # noqa: E402  (its helpers and the netlab fixture)

netlab = nf.netlab

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("create", "start", "exec", "delete"),
              pytest.mark.usefixtures("seccomp_cache_cleanup")]

NOBODY = 65534
PING_SYSCTL = {"net.ipv4.ping_group_range": "0 2147483647"}

PROBE = textwrap.dedent(
    """
    # egress.py '[[kind, host, port], ...]' -> [{"ok": ..., "err": ..., "t": s}, ...]
    import ctypes, errno, json, os, socket, struct, sys, time

    def fam(host):
        return socket.AF_INET6 if ":" in host else socket.AF_INET

    def echo6(host, how):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6)
        with s:
            s.settimeout(1.5)
            if how == "recverr":
                s.setsockopt(socket.IPPROTO_IPV6, 25, 1)  # IPV6_RECVERR
            if how == "connected":
                s.connect((host, 0))
            s.sendto(struct.pack("!BBHHH", 128, 0, 0, 0, 1) + b"sbxt", (host, 0))
            while True:
                if s.recv(2048)[0] == 129:
                    return "pong"

    def tcp(host, port):
        with socket.socket(fam(host), socket.SOCK_STREAM) as s:
            s.settimeout(4)
            s.connect((host, port))
            return s.recv(64).decode().strip()

    def udp(host, port):
        with socket.socket(fam(host), socket.SOCK_DGRAM) as s:
            s.settimeout(4)
            s.sendto(b"hi", (host, port))
            return s.recvfrom(256)[0].decode().strip()

    def opened(*args):
        socket.socket(*args).close()
        return "opened"

    def ptrace(pid):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.restype = ctypes.c_long
        libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        if libc.ptrace(0x4206, pid, None, None) < 0:  # PTRACE_SEIZE
            e = ctypes.get_errno()
            raise OSError(e, "ptrace")
        return "attached"  # detached when this process exits

    def rawsend(host, hdrincl):
        # an ICMP echo from a raw socket; with hdrincl an IPPROTO_RAW socket
        # writing the whole IPv4 header itself (a forged source address)
        icmp = struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"sbxt"
        s16 = sum(struct.unpack("!6H", icmp)); s16 = (s16 >> 16) + (s16 & 0xFFFF)
        icmp = icmp[:2] + struct.pack("!H", ~(s16 + (s16 >> 16)) & 0xFFFF) + icmp[4:]
        proto = socket.IPPROTO_RAW if hdrincl else socket.IPPROTO_ICMP
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, proto) as s:
            if hdrincl:
                ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0,
                                 socket.inet_aton("10.231.0.77"), socket.inet_aton(host))
                icmp = ip + icmp
            s.sendto(icmp, (host, 0))
        return "sent"

    def io_uring(_h, _p):
        libc = ctypes.CDLL(None, use_errno=True)
        params = ctypes.create_string_buffer(120)
        fd = libc.syscall(425, 4, params)  # io_uring_setup
        if fd < 0:
            raise OSError(ctypes.get_errno(), "io_uring_setup")
        os.close(fd)
        return "opened"

    KINDS = {
        "rawsend": lambda h, p: rawsend(h, False), "hdrincl": lambda h, p: rawsend(h, True),
        "xdp": lambda h, p: opened(44, socket.SOCK_RAW, 0),
        "sock_packet": lambda h, p: opened(socket.AF_INET, 10, socket.htons(3)),
        "io_uring": io_uring,
        "ping6-connected": lambda h, p: echo6(h, "connected"),
        "ping6-recverr": lambda h, p: echo6(h, "recverr"),
        "ping6": lambda h, p: echo6(h, "plain"),
        "tcp": tcp, "udp": udp,
        "packet": lambda h, p: opened(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)),
        "raw4": lambda h, p: opened(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
        "raw6": lambda h, p: opened(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
        "ptrace": lambda h, p: ptrace(p),
    }
    out = []
    for kind, host, port in json.loads(sys.argv[1]):
        t = time.monotonic()
        try:
            r = {"ok": KINDS[kind](host, port), "err": None}
        except OSError as e:
            r = {"ok": None, "err": errno.errorcode.get(e.errno, str(e))}
        r["t"] = round(time.monotonic() - t, 3)
        out.append(r)
    print(json.dumps(out))
    """
)


def egress_bundle(bundle, tmp_path, lab, annotations, **kw):
    b = nf.net_bundle(bundle, tmp_path, lab, annotations, **kw)
    (tmp_path / "probe" / "egress.py").write_text(PROBE)
    return b


def probe_in(sbx, cid, *specs):
    cp = sbx.ok("exec", cid, nf.PYTHON, "/probe/egress.py", json.dumps(specs), timeout=120)
    return json.loads(cp.stdout)


def probe_outside(lab, tmp_path, *specs):
    """The probes as root in the client namespace, outside any container."""
    script = tmp_path / "egress-outside.py"
    script.write_text(PROBE)
    cp = run_cmd(["ip", "netns", "exec", lab.client, nf.PYTHON, script, json.dumps(specs)])
    assert cp.returncode == 0, describe(cp)
    return json.loads(cp.stdout)


def refused(r, *errs):
    return r["ok"] is None and r["err"] in errs and r["t"] < nf.QUICK


# ---------------------------------------------------------------------------
# CAP_SYS_PTRACE


@pytest.fixture
def outside_process():
    """A process outside any container and any egress rule, as nobody."""
    p = subprocess.Popen(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups",
                          "sleep", "600"])
    try:
        yield p
    finally:
        p.kill()
        p.wait()


def test_cap_sys_ptrace_refused(sbx, bundle, tmp_path, netlab, outside_process):
    def shared_pid_bundle(ann, caps):
        b = egress_bundle(bundle, tmp_path, netlab, ann, caps=caps)
        with b.edit() as c:  # the host's pid namespace: the outside process is visible
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
            c["linux"].pop("seccomp", None)  # the policy alone must stop it
        return b

    spec = ["ptrace", "", outside_process.pid]
    # The primitive: without a policy, CAP_SYS_PTRACE in a shared pid
    # namespace takes hold of a process the container does not contain
    # (which could then be made to send anything); without the capability
    # the same attach is refused.
    for caps, want in ((["CAP_SYS_PTRACE"], "attached"), ((), None)):
        cid = nf.start(sbx, shared_pid_bundle({}, caps))
        (r,) = probe_in(sbx, cid, spec)
        assert r["ok"] == want and (want or r["err"] == "EPERM"), r
        sbx.ok("delete", "--force", cid)

    # Under a policy: refused at create, naming the capability and why.
    b = shared_pid_bundle({"org.sbxrun.net.egress": "deny"}, ["CAP_SYS_PTRACE"])
    cid = sbx.new_id("net")
    cp = sbx("create", "--bundle", b, cid)
    assert cp.returncode != 0, describe(cp)
    assert "CAP_SYS_PTRACE" in cp.stderr and "egress policy" in cp.stderr and "ptrace" in cp.stderr, describe(cp)
    assert not (sbx.root / cid).exists()

    # ... and by exec into a container under a policy.
    cid = nf.start(sbx, shared_pid_bundle({"org.sbxrun.net.egress": "deny"}, ()))
    cp = sbx("exec", "--cap", "CAP_SYS_PTRACE", cid, nf.PYTHON, "/probe/egress.py", json.dumps([spec]))
    assert cp.returncode != 0 and "CAP_SYS_PTRACE" in cp.stderr, describe(cp)
    assert "attached" not in cp.stdout
    (r,) = probe_in(sbx, cid, spec)
    assert r["err"] == "EPERM", r


# ---------------------------------------------------------------------------
# DNS: the resolvers are the engine's or the host's, not the image's


IMAGE_RESOLV = "nameserver 10.231.0.53\nnameserver fd31::53\n"


def dns_probes(*hosts):
    return [[k, h, 53] for h in hosts for k in ("udp", "tcp")]


def test_dns_resolvers_not_from_the_image(sbx, bundle, tmp_path, netlab):
    image_hosts = ["10.231.0.53", "fd31::53"]
    # The primitive: trusted explicitly (dns=image), the image's own file
    # chooses which hosts get port 53 -- any host it likes.
    b = egress_bundle(bundle, tmp_path, netlab, {"org.sbxrun.net.egress": "allowlist",
                                                 "org.sbxrun.net.dns": "image"}, resolv=IMAGE_RESOLV)
    cid = nf.start(sbx, b)
    assert all(r["ok"] for r in probe_in(sbx, cid, *dns_probes(*image_hosts))), "dns=image did not allow"
    sbx.ok("delete", "--force", cid)

    # Default, with the engine's bind mount at /etc/resolv.conf: its servers only.
    b = egress_bundle(bundle, tmp_path, netlab, {"org.sbxrun.net.egress": "allowlist"},
                      resolv=IMAGE_RESOLV, resolv_bind="nameserver 10.231.0.3\n")
    cid = nf.start(sbx, b)
    res = probe_in(sbx, cid, *dns_probes("10.231.0.3"), *dns_probes(*image_hosts), *dns_probes("10.231.0.4"))
    assert all(r["ok"] for r in res[:2]), res
    assert all(refused(r, "EPERM", "ECONNREFUSED") for r in res[2:]), res
    sbx.ok("delete", "--force", cid)

    # Default without a bind: the host's /etc/resolv.conf (here a private
    # mount namespace's, so the test does not depend on the machine's).
    host_resolv = tmp_path / "host-resolv.conf"
    host_resolv.write_text("nameserver fd31::2\n")
    b = egress_bundle(bundle, tmp_path, netlab, {"org.sbxrun.net.egress": "allowlist"}, resolv=IMAGE_RESOLV)
    script = 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"'
    cid = nf.start(sbx, b, create_argv=lambda cid: ["unshare", "-m", "--propagation", "private", "sh", "-c",
                                                     script, "sh", str(host_resolv),
                                                     *sbx.argv("create", "--bundle", b, cid)])
    res = probe_in(sbx, cid, *dns_probes("fd31::2"), *dns_probes(*image_hosts))
    assert all(r["ok"] for r in res[:2]), res
    assert all(refused(r, "EPERM", "ECONNREFUSED") for r in res[2:]), res


# ---------------------------------------------------------------------------
# ICMPv6


def test_icmpv6_refused_at_once(sbx, bundle, tmp_path, netlab):
    # The primitive: a plain drop is silent for an ICMPv6 ping socket (its
    # sendmsg ignores the verdict) -- the sender just never hears back.
    cp = run_cmd(["ip", "netns", "exec", netlab.client, "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"])
    assert cp.returncode == 0, describe(cp)
    weak = "sbxt-weak"
    rules = (f"table inet {weak} {{\n chain o {{\n type filter hook output priority 0;\n"
             f" ip6 daddr fd31::2 icmpv6 type echo-request drop\n }}\n}}\n")
    cp = run_cmd(["ip", "netns", "exec", netlab.client, "nft", "-f", "-"], input=rules)
    assert cp.returncode == 0, describe(cp)
    try:
        r_plain, r_conn = probe_outside(netlab, tmp_path, ["ping6", "fd31::2", 0], ["ping6-connected", "fd31::2", 0])
        assert r_plain["err"] == "timed out" and r_conn["err"] == "timed out", (r_plain, r_conn)
    finally:
        run_cmd(["ip", "netns", "exec", netlab.client, "nft", "delete", "table", "inet", weak])
    assert probe_outside(netlab, tmp_path, ["ping6-connected", "fd31::2", 0])[0]["ok"] == "pong"

    b = egress_bundle(bundle, tmp_path, netlab, {"org.sbxrun.net.allow": "[fd31::3]"}, sysctl=PING_SYSCTL)
    cid = nf.start(sbx, b)
    res = probe_in(sbx, cid, ["ping6-connected", "fd31::3", 0], ["ping6-connected", "fd31::2", 0],
                   ["ping6-recverr", "fd31::2", 0], ["ping6", "fd31::2", 0])
    assert res[0]["ok"] == "pong", res
    # connected or IPV6_RECVERR: told at once (admin-prohibited -> EACCES)
    assert refused(res[1], "EACCES") and refused(res[2], "EACCES"), res
    # unconnected without IPV6_RECVERR: the kernel tells it nothing (documented)
    assert res[3]["ok"] is None and res[3]["err"] == "timed out", res


# ---------------------------------------------------------------------------
# packet and raw sockets, v4-mapped IPv6, DNS to a non-resolver


def test_raw_sockets_mapped_addresses_and_dns(sbx, bundle, tmp_path, netlab):
    specs = [["packet", "", 0], ["raw4", "", 0], ["raw6", "", 0],
             ["tcp", "::ffff:10.231.0.3", 80], ["udp", "10.231.0.3", 53], ["tcp", "10.231.0.3", 53]]
    # The primitive: outside a container (root in the same namespace) the
    # sockets that bypass or forge traffic open, and the blocked server is
    # reachable through an IPv4-mapped IPv6 address and on port 53.
    outside = probe_outside(netlab, tmp_path, *specs)
    assert [r["ok"] for r in outside] == ["opened"] * 3 + ["tcp 80", "udp 53 hi", "tcp 53"], outside

    b = egress_bundle(bundle, tmp_path, netlab, {"org.sbxrun.net.allow": "10.231.0.2:80",
                                                 "org.sbxrun.net.dns": "10.231.0.53"})
    cid = nf.start(sbx, b)
    res = probe_in(sbx, cid, *specs, ["tcp", "::ffff:10.231.0.2", 80], ["udp", "10.231.0.53", 53])
    assert [r["err"] for r in res[:3]] == ["EPERM"] * 3, res  # no CAP_NET_RAW under a policy
    assert refused(res[3], "ECONNREFUSED"), res                # mapped address: still 10.231.0.3
    assert refused(res[4], "EPERM") and refused(res[5], "ECONNREFUSED"), res  # not a resolver
    assert res[6]["ok"] == "tcp 80" and res[7]["ok"] == "udp 53 hi", res      # what is allowed works


def test_net_raw_contained(sbx, bundle, tmp_path, netlab):
    """CAP_NET_RAW under a policy (issue 12): raw IP sockets open, and what
    they send passes the output hook like any packet (a forged header
    too); the sockets that would skip it (AF_PACKET, SOCK_PACKET, AF_XDP)
    and io_uring (whose socket operation skips seccomp) fail with EPERM."""
    specs = [["packet", "", 0], ["sock_packet", "", 0], ["xdp", "", 0], ["io_uring", "", 0],
             ["raw4", "", 0], ["raw6", "", 0], ["rawsend", "10.231.0.3", 0], ["hdrincl", "10.231.0.3", 0],
             ["rawsend", "10.231.0.4", 0], ["hdrincl", "10.231.0.4", 0]]
    outside = probe_outside(netlab, tmp_path, *specs)
    assert [r["ok"] for r in outside] == ["opened"] * 6 + ["sent"] * 4, outside  # the primitives exist
    b = egress_bundle(bundle, tmp_path, netlab, {"org.sbxrun.net.allow": "10.231.0.2:80, 10.231.0.4",
                                                 "org.sbxrun.net.dns": "none"}, caps=["CAP_NET_RAW"])
    with b.edit() as c:
        c["linux"].pop("seccomp", None)
    cid = nf.start(sbx, b)
    res = probe_in(sbx, cid, *specs)
    assert [r["err"] for r in res[:4]] == ["EPERM"] * 4, res
    assert [r["ok"] for r in res[4:6]] == ["opened"] * 2, res
    assert [r["err"] for r in res[6:8]] == ["EPERM"] * 2, res  # to a blocked host
    assert [r["ok"] for r in res[8:]] == ["sent"] * 2, res     # to an allowed one
