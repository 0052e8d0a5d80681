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

PROBE = nf.PROBE  # tests/integration/helpers/egress_probe.py


def egress_bundle(bundle, tmp_path, lab, annotations, **kw):
    return nf.net_bundle(bundle, tmp_path, lab, annotations, **kw)


def probe_in(sbx, cid, *specs):
    cp = sbx.ok("exec", cid, nf.PYTHON, "/probe/probe.py", json.dumps(specs), timeout=120)
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


def sleeper_as(uid):
    """A process outside any container and any egress rule, as uid (and
    gid) uid, ended when the fixture using it ends."""
    p = subprocess.Popen(["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups",
                          "sleep", "600"])
    try:
        yield p
    finally:
        p.kill()
        p.wait()


@pytest.fixture
def outside_process():
    yield from sleeper_as(NOBODY)


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

    # ... and by exec into a container under a policy (whose seccomp
    # profile denies ptrace: required in a shared pid namespace).
    b = shared_pid_bundle({"org.sbxrun.net.egress": "deny"}, ())
    with b.edit() as c:
        c["linux"]["seccomp"] = DENY_REACH
    cid = nf.start(sbx, b)
    cp = sbx("exec", "--cap", "CAP_SYS_PTRACE", cid, nf.PYTHON, "/probe/probe.py", json.dumps([spec]))
    assert cp.returncode != 0 and "CAP_SYS_PTRACE" in cp.stderr, describe(cp)
    assert "attached" not in cp.stdout
    (r,) = probe_in(sbx, cid, spec)
    assert r["err"] == "EPERM", r


DENY_REACH = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd"],
                            "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
USER = 1000


@pytest.fixture
def outside_user_process():
    yield from sleeper_as(USER)


def test_shared_pid_namespace_same_uid(sbx, bundle, tmp_path, netlab, outside_user_process):
    """Without any capability, a process may ptrace another of its uid: in
    a pid namespace shared with an unrestricted process of that uid, a
    way out.  Under a policy the filter must deny it."""
    def same_uid_bundle(ann, seccomp=None):
        b = egress_bundle(bundle, tmp_path, netlab, ann)
        with b.edit() as c:
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
            c["process"]["user"] = {"uid": USER, "gid": USER}
            c["linux"].pop("seccomp", None)
            if seccomp:
                c["linux"]["seccomp"] = seccomp
        return b

    spec = ["ptrace", "", outside_user_process.pid]
    # The primitive: no capability, same uid, the host's pid namespace.
    cid = nf.start(sbx, same_uid_bundle({}))
    (r,) = probe_in(sbx, cid, spec)
    assert r["ok"] == "attached", r
    sbx.ok("delete", "--force", cid)

    # A policy without a filter against it is refused, saying why ...
    cid = sbx.new_id("net")
    cp = sbx("create", "--bundle", same_uid_bundle({"org.sbxrun.net.egress": "deny"}), cid)
    assert cp.returncode != 0, describe(cp)
    assert "shares a pid namespace" in cp.stderr and "`ptrace`" in cp.stderr, describe(cp)
    assert not (sbx.root / cid).exists()
    assert "sbxrun-" not in netlab.ruleset()

    # ... and with one, the attach fails.
    cid = nf.start(sbx, same_uid_bundle({"org.sbxrun.net.egress": "deny"}, DENY_REACH))
    (r,) = probe_in(sbx, cid, spec)
    assert r["ok"] is None and r["err"] == "EPERM", r


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


# ---------------------------------------------------------------------------
# multicast membership reports: a covert channel through the kernel


RECORDER = textwrap.dedent(
    """
    # recorder.py IFACE SECONDS: the IGMP and MLD reports arriving on IFACE,
    # as JSON [{"kind": "igmp"|"mld", "groups": [...]}, ...]
    import json, socket, struct, sys, time
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((sys.argv[1], 0))
    s.settimeout(0.2)
    print("ready", flush=True)
    out, end = [], time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        try:
            f = s.recv(65536)
        except socket.timeout:
            continue
        eth, p = struct.unpack("!H", f[12:14])[0], f[14:]
        if eth == 0x0800 and p[9] == 2:  # IGMP
            q = p[(p[0] & 15) * 4:]
            groups = []
            if q[0] == 0x22:  # v3 report: records of type, aux, nsrc, group
                n, off = struct.unpack("!H", q[6:8])[0], 8
                for _ in range(n):
                    nsrc = struct.unpack("!H", q[off + 2:off + 4])[0]
                    groups.append(socket.inet_ntop(socket.AF_INET, q[off + 4:off + 8]))
                    off += 8 + 4 * nsrc + 4 * q[off + 1]
            elif q[0] in (0x12, 0x16, 0x17):
                groups.append(socket.inet_ntop(socket.AF_INET, q[4:8]))
            out.append({"kind": "igmp", "type": q[0], "groups": groups})
        elif eth == 0x86DD:
            nh, q = p[6], p[40:]
            while nh in (0, 43, 60):  # hop-by-hop (router alert), routing, dest options
                nh, q = q[0], q[(q[1] + 1) * 8:]
            if nh == 58 and q[0] in (131, 132, 143):
                groups = []
                if q[0] == 143:
                    n, off = struct.unpack("!H", q[6:8])[0], 8
                    for _ in range(n):
                        nsrc = struct.unpack("!H", q[off + 2:off + 4])[0]
                        groups.append(socket.inet_ntop(socket.AF_INET6, q[off + 4:off + 20]))
                        off += 20 + 16 * nsrc + 4 * q[off + 1]
                else:
                    groups.append(socket.inet_ntop(socket.AF_INET6, q[8:24]))
                out.append({"kind": "mld", "type": q[0], "groups": groups})
    print(json.dumps(out))
    """
)

JOIN = textwrap.dedent(
    """
    # join.py V4ADDR IFNAME GROUP4 GROUP6 SECONDS: join both groups (as any
    # unprivileged process may), hold them, print what the calls returned
    import json, socket, struct, sys, time
    v4addr, ifname, g4, g6, hold = sys.argv[1:6]
    res = {}
    s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        s4.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                      socket.inet_aton(g4) + socket.inet_aton(v4addr))
        res["v4"] = "joined"
    except OSError as e:
        res["v4"] = e.strerror
    try:
        mreq = socket.inet_pton(socket.AF_INET6, g6) + struct.pack("@I", socket.if_nametoindex(ifname))
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        res["v6"] = "joined"
    except OSError as e:
        res["v6"] = e.strerror
    time.sleep(float(hold))
    print(json.dumps(res))
    """
)

G4, G6 = "239.69.71.72", "ff05::4547:4821"


def record_joins(sbx, tmp_path, lab, cid):
    """Join G4 and G6 in container CID while the server namespace records
    the reports on its end of the veth pair."""
    rec = tmp_path / "recorder.py"
    rec.write_text(RECORDER)
    p = subprocess.Popen(["ip", "netns", "exec", lab.server, nf.PYTHON, str(rec), lab.veth[1], "4"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
        cp = sbx.ok("exec", cid, nf.PYTHON, "/probe/join.py", nf.CLIENT4, lab.veth[0], G4, G6, "2.5",
                    timeout=60)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    return json.loads(cp.stdout), json.loads(out)


def groups_of(frames, kind):
    return {g for f in frames if f["kind"] == kind for g in f["groups"]}


def test_multicast_reports_do_not_leave(sbx, bundle, tmp_path, netlab):
    def mcast_bundle(ann):
        b = egress_bundle(bundle, tmp_path, netlab, ann)
        (tmp_path / "probe" / "join.py").write_text(JOIN)
        return b

    # The primitive: without a policy, the groups a process joins go out
    # on the link in the kernel's IGMPv3 and MLDv2 reports.
    cid = nf.start(sbx, mcast_bundle({}))
    calls, frames = record_joins(sbx, tmp_path, netlab, cid)
    assert calls == {"v4": "joined", "v6": "joined"}, calls
    assert G4 in groups_of(frames, "igmp") and G6 in groups_of(frames, "mld"), frames
    sbx.ok("delete", "--force", cid)

    # Under a policy: the joins succeed, no report leaves at all, and what
    # is allowed still works over IPv4 and IPv6 (neighbour discovery).
    run_cmd(["ip", "-n", netlab.client, "neigh", "flush", "all"])
    cid = nf.start(sbx, mcast_bundle({"org.sbxrun.net.allow": "10.231.0.2:80, [fd31::2]:80",
                                      "org.sbxrun.net.dns": "none"}))
    calls, frames = record_joins(sbx, tmp_path, netlab, cid)
    assert calls == {"v4": "joined", "v6": "joined"}, calls
    assert frames == [], frames
    res = probe_in(sbx, cid, ["tcp", "10.231.0.2", 80], ["tcp", "fd31::2", 80])
    assert [r["ok"] for r in res] == ["tcp 80", "tcp 80"], res
    sbx.ok("delete", "--force", cid)

    # A policy that allows a multicast destination explicitly lets that
    # family's reports out (and only that family's).
    cid = nf.start(sbx, mcast_bundle({"org.sbxrun.net.allow": "udp:239.69.0.0/16", "org.sbxrun.net.dns": "none"}))
    calls, frames = record_joins(sbx, tmp_path, netlab, cid)
    assert G4 in groups_of(frames, "igmp") and not groups_of(frames, "mld"), frames


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
