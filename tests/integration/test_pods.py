"""Pod-level egress policies (issue 12, docs/annotations.md "Pods").

The configs are the ones containerd's CRI plugin and podman wrote for a
real pod (tests/data/engine-configs/, captured from the engines): their
annotations, capabilities and namespace layout are kept, their paths
adapted to our bundles -- the CNI namespace is a test namespace of
test_netfilter's NetLab (veth to a server namespace, no outside address),
the pod's cgroup a test cgroup.
"""

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import cgroup_dirs, describe, run_cmd
from test_netfilter import (PYTHON, bare_netns, check, net_bundle, netlab, probe,  # noqa: F401 (fixtures)
                            table_name)

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("create", "start", "exec", "delete"),
              pytest.mark.usefixtures("seccomp_cache_cleanup")]

DATA = Path(__file__).resolve().parents[1] / "data" / "engine-configs"
POD_ALLOW = "10.231.0.2:80, 10.231.0.3"
RESOLV = "search capture.svc.cluster.local\nnameserver 10.231.0.53\n"

RAW = r"""
import errno, json, socket, struct, sys, time
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b)); s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF
def rawping(host):
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        s.settimeout(1.5)
        pkt = struct.pack("!BBHHH", 8, 0, 0, 0x5b, 1) + b"sbxt"
        pkt = pkt[:2] + struct.pack("!H", csum(pkt)) + pkt[4:]
        s.sendto(pkt, (host, 0))
        while True:
            d = s.recv(2048)
            if d[20] == 0:
                return "pong"
def packet(_):
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)).close(); return "made"
def sock_packet(_):
    socket.socket(socket.AF_INET, 10, socket.htons(3)).close(); return "made"
out = []
for kind, arg in json.loads(sys.argv[1]):
    try:
        out.append({"ok": globals()[kind](arg), "err": None})
    except OSError as e:
        out.append({"ok": None, "err": errno.errorcode.get(e.errno, str(e))})
print(json.dumps(out))
"""


def captured(name):
    return json.loads((DATA / name).read_text())


def raw_probe(sbx, cid, tmp_path, *specs, ok=True):
    script = tmp_path / "probe" / "raw.py"
    script.write_text(RAW)
    cp = sbx("exec", cid, PYTHON, "/probe/raw.py", json.dumps(specs), timeout=60)
    assert cp.returncode == 0, describe(cp)
    return json.loads(cp.stdout)


class Pod:
    """A CRI pod built from the captured configs: a sandbox whose network
    namespace is lab's client namespace, app containers joining it through
    /proc/<sandbox pid>/ns/{net,ipc,uts}, all in cgroups <pod>/<id>."""

    def __init__(self, sbx, bundle, tmp_path, lab, cgroup_parent, kind="cri"):
        self.sbx, self.bundle, self.tmp, self.lab, self.kind = sbx, bundle, tmp_path, lab, kind
        self.cgroup = cgroup_parent.path("pod4141e535")
        self.sandbox = None
        self.pid = None
        self.ids = []

    def config(self, name, cid, annotations=None, drop_sbxrun=False, netns=None):
        cap = captured(name)
        ann = dict(cap["annotations"])
        if self.sandbox:
            for k in ("io.kubernetes.cri.sandbox-id", "io.kubernetes.cri-o.SandboxID"):
                if k in ann:
                    ann[k] = self.sandbox
        if "org.sbxrun.net.allow" in ann:
            ann["org.sbxrun.net.allow"] = POD_ALLOW  # the pod annotation, as containerd copies it
        if drop_sbxrun:
            ann = {k: v for k, v in ann.items() if not k.startswith("org.sbxrun.")}
        for k, v in (annotations or {}).items():
            if v is None:
                ann.pop(k, None)
            else:
                ann[k] = v
        b = net_bundle(self.bundle, self.tmp, self.lab, ann, resolv_bind=RESOLV)
        with b.edit() as c:
            c["process"]["capabilities"] = cap["process"]["capabilities"]
            c["linux"]["cgroupsPath"] = f"{self.cgroup}/{cid}"
            nss = []
            for ns in cap["linux"]["namespaces"]:
                ns = dict(ns)
                if "path" in ns:
                    ns["path"] = netns if ns["type"] == "network" and netns else (
                        self.lab.netns_path if ns["type"] == "network" and self.pid is None
                        else f"/proc/{self.pid}/ns/{ns['type'][:3] if ns['type'] != 'network' else 'net'}")
                nss.append(ns)
            c["linux"]["namespaces"] = nss
            # as captured: podman's profile, or none (CRI's Unconfined)
            c["linux"].pop("seccomp", None)
            if "seccomp" in cap["linux"]:
                c["linux"]["seccomp"] = cap["linux"]["seccomp"]
        return b

    def start_sandbox(self, name="cri-sandbox-annotated.json", annotations=None):
        cid = self.sbx.new_id("sandbox")
        b = self.config(name, cid, annotations)
        self.ids.append(cid)
        self.sbx.ok("create", "--bundle", b, cid)
        self.sbx.ok("start", cid)
        self.sandbox, self.pid = cid, self.sbx.state(cid)["pid"]
        return cid

    def app(self, name, cid=None, annotations=None, drop_sbxrun=False, ok=True):
        cid = cid or self.sbx.new_id("app")
        b = self.config(name, cid, annotations, drop_sbxrun)
        self.ids.append(cid)
        cp = self.sbx("create", "--bundle", b, cid)
        if not ok:
            return cid, cp
        assert cp.returncode == 0, describe(cp)
        self.sbx.ok("start", cid)
        return cid


@pytest.fixture
def pod(sbx, bundle, tmp_path, netlab, cgroup_parent):
    p = Pod(sbx, bundle, tmp_path, netlab, cgroup_parent)
    yield p
    # The pod's cgroup goes with the last container when sbxrun made it;
    # a test that made it itself (kubelet's part) removes it.  A container
    # cgroup left inside stays for the cgroup_parent guard to report.
    for cid in p.ids:
        if (sbx.root / cid).exists():
            sbx("delete", "--force", cid)


def pod_cgroups(pod):
    """The directories of the pod's cgroup that exist, in the mounted
    hierarchies (where sbxrun makes cgroups)."""
    return [d for d in cgroup_dirs(pod.cgroup) if os.path.isdir(d)]


def caps_of(sbx, cid):
    for line in sbx.ok("exec", cid, "cat", "/proc/self/status").stdout.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError("no CapEff")


NET_RAW = 1 << 13
POD_ALLOWED = [["tcp", "10.231.0.2", 80], ["tcp", "10.231.0.3", 443], ["udp", "10.231.0.3", 9000],
               ["udp", "10.231.0.53", 53], ["tcp", "10.231.0.53", 53]]  # resolv.conf's nameserver
POD_BLOCKED = [["tcp", "10.231.0.2", 443], ["tcp", "10.231.0.4", 80], ["udp", "10.231.0.4", 9000],
               ["udp", "10.231.0.53", 9000], ["tcp", "fd31::2", 80]]


def test_cri_pod_policy_covers_every_container(sbx, pod, netlab, tmp_path):
    sandbox = pod.start_sandbox()
    # kubelet's default caps (CAP_NET_RAW included) everywhere but app-netraw
    assert caps_of(sbx, sandbox) & NET_RAW
    check(sbx, sandbox, POD_ALLOWED, POD_BLOCKED)
    rules = netlab.ruleset()
    assert f"table inet {table_name(sandbox)}" in rules, rules
    rec = json.loads((sbx.root / sandbox / "net.json").read_text())
    assert rec["scope"] == "pod" and rec["cgroup2"].endswith("/pod4141e535"), rec

    # As containerd makes them: the app carries the pod annotation too, the
    # second one its own (narrower) value and NET_RAW dropped.
    app = pod.app("cri-app-default.json")
    assert caps_of(sbx, app) & NET_RAW
    netraw = pod.app("cri-app-dropped-netraw-annotated.json",
                     annotations={"org.sbxrun.net.allow": "10.231.0.3:443"})
    assert not caps_of(sbx, netraw) & NET_RAW
    # One without any org.sbxrun annotation (CRI-O without allowed_annotations
    # for containers): covered by the pod's rules, no table of its own.
    bare = pod.app("cri-app-default.json", drop_sbxrun=True)
    check(sbx, app, POD_ALLOWED, POD_BLOCKED)
    check(sbx, bare, POD_ALLOWED, POD_BLOCKED)
    check(sbx, netraw, [["tcp", "10.231.0.3", 443]],
          POD_BLOCKED + [["tcp", "10.231.0.2", 80], ["udp", "10.231.0.3", 9000]])
    rules = netlab.ruleset()
    assert table_name(bare) not in rules and f"table inet {table_name(netraw)}" in rules, rules
    # the app carrying the pod's own value (as containerd copies it) adds no table
    assert table_name(app) not in rules, rules
    assert json.loads((sbx.root / bare / "net.json").read_text())["pod"] == sandbox
    # processes outside the pod, in the same namespace, are not restricted
    assert all(r["ok"] for r in netlab.probe_outside(["tcp", "10.231.0.4", 80]))

    # a restart: delete and create again, same ID
    for cid, name, kw in ((bare, "cri-app-default.json", {"drop_sbxrun": True}),
                          (app, "cri-app-default.json", {})):
        sbx.ok("delete", "--force", cid)
        pod.app(name, cid=cid, **kw)
        check(sbx, cid, POD_ALLOWED, POD_BLOCKED)
    assert f"table inet {table_name(sandbox)}" in netlab.ruleset()
    # exec'd processes: check() probes through exec; a detached one too
    sbx.ok("exec", "-d", bare, "sh", "-c", "nc -w 1 10.231.0.4 80 > /tmp/out 2>&1; echo rc=$? >> /tmp/out")
    deadline = time.monotonic() + 10
    while "rc=" not in (out := sbx.ok("exec", bare, "sh", "-c", "cat /tmp/out 2>/dev/null; true").stdout) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "rc=0" not in out and "tcp 80" not in out, out

    for cid in (app, netraw, bare):
        sbx.ok("delete", "--force", cid)
    assert f"table inet {table_name(sandbox)}" in netlab.ruleset()
    sbx.ok("delete", "--force", sandbox)
    assert "sbxrun-" not in netlab.ruleset()


def test_widening_refused(sbx, pod, netlab):
    sandbox = pod.start_sandbox()
    for ann, word in (({"org.sbxrun.net.allow": "127.0.0.1:8080"}, "127.0.0.1:8080"),  # as captured
                      ({"org.sbxrun.net.allow": "10.231.0.2:80-81"}, "10.231.0.2:80-81"),
                      ({"org.sbxrun.net.allow": "10.231.0.0/24"}, "10.231.0.0/24"),
                      ({"org.sbxrun.net.dns": "10.231.0.4"}, "10.231.0.4"),
                      ({"org.sbxrun.net.egress": "open", "org.sbxrun.net.allow": None}, "open")):
        cid, cp = pod.app("cri-app-dropped-netraw-annotated.json", annotations=ann, ok=False)
        assert cp.returncode != 0, describe(cp)
        assert word in cp.stderr and sandbox in cp.stderr and "narrow" in cp.stderr, describe(cp)
        assert not (sbx.root / cid).exists()
    # CAP_NET_ADMIN stays refused in a pod member without annotations
    b = pod.config("cri-app-default.json", "x", drop_sbxrun=True)
    with b.edit() as c:
        for s in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][s].append("CAP_NET_ADMIN")
    cid = sbx.new_id("app")
    pod.ids.append(cid)
    cp = sbx("create", "--bundle", b, cid)
    assert cp.returncode != 0 and "CAP_NET_ADMIN" in cp.stderr, describe(cp)
    assert not (sbx.root / cid).exists()
    assert netlab.ruleset().count("table inet sbxrun-") == 1
    sbx.ok("delete", "--force", sandbox)


def test_narrowing_against_the_union(sbx, pod, netlab):
    """The pod allows 10.231.0.0/25 and 10.231.0.128/25: a member asking
    for 10.231.0.0/24 narrows nothing and is accepted (and restricted to
    it); one asking for 10.231.0.0/23 is refused, naming the entry."""
    sandbox = pod.start_sandbox(annotations={"org.sbxrun.net.allow": "10.231.0.128/25, 10.231.0.0/25"})
    cid = pod.app("cri-app-dropped-netraw-annotated.json", annotations={"org.sbxrun.net.allow": "10.231.0.0/24"})
    check(sbx, cid, [["tcp", "10.231.0.2", 80], ["udp", "10.231.0.4", 9000]], [["tcp", "fd31::2", 80]])
    wide, cp = pod.app("cri-app-dropped-netraw-annotated.json",
                       annotations={"org.sbxrun.net.allow": "10.231.0.0/24, 10.231.0.0/23"}, ok=False)
    assert cp.returncode != 0 and "`10.231.0.0/23`" in cp.stderr and "narrow" in cp.stderr, describe(cp)
    assert not (sbx.root / wide).exists()
    for c in (cid, sandbox):
        sbx.ok("delete", "--force", c)
    assert "sbxrun-" not in netlab.ruleset()


def test_packet_sockets_and_raw_icmp(sbx, pod, netlab, tmp_path, bundle):
    sandbox = pod.start_sandbox()
    app = pod.app("cri-app-default.json")
    for cid in (sandbox, app):
        r = raw_probe(sbx, cid, tmp_path, ["packet", None], ["sock_packet", None],
                      ["rawping", "10.231.0.3"], ["rawping", "10.231.0.4"], ["rawping", "10.231.0.2"])
        assert [x["err"] for x in r[:2]] == ["EPERM", "EPERM"], r
        assert r[2]["ok"] == "pong", r           # 10.231.0.3: every protocol
        assert r[3]["err"] == "EPERM" and r[4]["err"] == "EPERM", r  # not allowed / TCP only
    # exec'd processes have the filter too
    st = sbx.ok("exec", app, "cat", "/proc/self/status", "/proc/1/status").stdout
    assert [ln for ln in st.splitlines() if ln.startswith("Seccomp")] == ["Seccomp:\t2", "Seccomp_filters:\t1"] * 2, st
    # busybox ping with CAP_NET_RAW: allowed host answers, another is refused
    assert sbx("exec", app, "ping", "-c", "1", "-W", "2", "10.231.0.3").returncode == 0
    cp = sbx("exec", app, "ping", "-c", "1", "-W", "1", "10.231.0.4")
    assert cp.returncode != 0, describe(cp)
    # A container joining the pod's namespace without naming the sandbox is
    # found through the namespace itself: governed too.
    free = net_bundle(bundle, tmp_path, netlab, {}, caps=["CAP_NET_RAW"])
    with free.edit() as c:
        c["linux"].pop("seccomp", None)
    cid = sbx.new_id("free")
    sbx.ok("create", "--bundle", free, cid)
    sbx.ok("start", cid)
    r = raw_probe(sbx, cid, tmp_path, ["packet", None], ["rawping", "10.231.0.4"], ["rawping", "10.231.0.3"])
    assert [x["err"] for x in r[:2]] == ["EPERM", "EPERM"] and r[2]["ok"] == "pong", r
    assert json.loads((sbx.root / cid / "net.json").read_text())["pod"] == sandbox
    for c in (cid, app, sandbox):
        sbx.ok("delete", "--force", c)
    # without a policy, CAP_NET_RAW makes packet sockets as usual
    sbx.ok("create", "--bundle", free, cid)
    sbx.ok("start", cid)
    r = raw_probe(sbx, cid, tmp_path, ["packet", None], ["sock_packet", None], ["rawping", "10.231.0.4"])
    assert [x["ok"] for x in r] == ["made", "made", "pong"], r
    assert "Seccomp:\t0" in sbx.ok("exec", cid, "cat", "/proc/self/status").stdout
    sbx.ok("delete", "--force", cid)


def test_user_profile_kept_with_packet_filter(sbx, pod, netlab, tmp_path):
    """podman's profile (captured) plus ours: both stay in force."""
    sandbox = pod.start_sandbox()
    b = pod.config("podman-pod-member.json", "x", annotations={"org.sbxrun.net.allow": "10.231.0.3"})
    with b.edit() as c:
        c["annotations"]["io.kubernetes.cri-o.SandboxID"] = sandbox
        c["process"]["capabilities"] = captured("cri-app-default.json")["process"]["capabilities"]
    cid = sbx.new_id("app")
    pod.ids.append(cid)
    sbx.ok("create", "--bundle", b, cid)
    sbx.ok("start", cid)
    st = sbx.ok("exec", cid, "cat", "/proc/self/status").stdout
    assert "Seccomp_filters:\t2" in st, st
    r = raw_probe(sbx, cid, tmp_path, ["packet", None], ["rawping", "10.231.0.3"])
    assert r[0]["err"] == "EPERM" and r[1]["ok"] == "pong", r
    # the profile's own refusals still hold, with its errno: podman's makes
    # socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT) fail with EINVAL
    cp = sbx("exec", cid, PYTHON, "-c", "import socket\ntry:\n socket.socket(16, 3, 9)\n"
             "except OSError as e:\n print(e.errno)")
    assert cp.returncode == 0 and cp.stdout.strip() == "22", describe(cp)
    sbx.ok("delete", "--force", cid)
    sbx.ok("delete", "--force", sandbox)


def test_kill9_during_sandbox_create(sbx, pod, netlab, tmp_path):
    """sbxrun killed after the rules are in (here: while a prestart hook
    runs), then `delete --force` removes everything."""
    pidfile = tmp_path / "hook.pid"
    cid = sbx.new_id("sandbox")
    pod.ids.append(cid)
    b = pod.config("cri-sandbox-annotated.json", cid)
    with b.edit() as c:
        c["hooks"] = {"prestart": [{"path": "/bin/sh", "args": [
            "sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"]}]}
    # no pipes: the hook would hold them open after sbxrun's death
    p = subprocess.Popen(sbx.argv("create", "--bundle", b, cid), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not pidfile.exists() or not pidfile.read_text().strip():
            assert time.monotonic() < deadline and p.poll() is None, p.poll()
            time.sleep(0.05)
        assert f"table inet {table_name(cid)}" in netlab.ruleset()
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=10)
    finally:
        with contextlib.suppress(Exception):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert pod_cgroups(pod)
    sbx.ok("delete", "--force", cid)
    assert "sbxrun-" not in netlab.ruleset()
    assert not (sbx.root / cid).exists()
    assert pod_cgroups(pod) == []  # the pod's cgroup, made by this create, too


@pytest.mark.parametrize("step", ["create:cgroup-recorded", "create:cgroup", "create:net"])
def test_kill9_at_sandbox_create_steps(sbx, pod, netlab, step):
    """sbxrun killed right before making the cgroups, right after, and
    after the rules: `delete --force` leaves no pod cgroup and no table."""
    cid = sbx.new_id("sandbox")
    pod.ids.append(cid)
    b = pod.config("cri-sandbox-annotated.json", cid)
    cp = sbx("create", "--bundle", b, cid, env={**os.environ, "SBXRUN_TEST_KILL_AT": step})
    assert cp.returncode == -signal.SIGKILL, describe(cp)
    sbx.ok("delete", "--force", cid)
    assert pod_cgroups(pod) == [] and "sbxrun-" not in netlab.ruleset()


@pytest.mark.parametrize("sandbox_last", [True, False])
def test_pod_cgroup_removed_with_the_pod(sbx, pod, netlab, sandbox_last):
    """The pod's cgroup that the sandbox's create made goes with the last
    container of the pod, whichever order they are deleted in; while one
    is left it stays."""
    sandbox = pod.start_sandbox()
    apps = [pod.app("cri-app-default.json"), pod.app("cri-app-default.json", drop_sbxrun=True)]
    dirs = pod_cgroups(pod)
    # every hierarchy (v1 controllers, name=systemd, unified): no kubelet here
    assert len(dirs) == len(cgroup_dirs(pod.cgroup)), dirs
    order = apps + [sandbox] if sandbox_last else [sandbox] + apps
    for cid in order[:-1]:
        sbx.ok("delete", "--force", cid)
        assert pod_cgroups(pod) == dirs
    sbx.ok("delete", "--force", order[-1])
    assert pod_cgroups(pod) == []


def test_pod_cgroup_of_kubelet_kept(sbx, pod, netlab):
    """A pod cgroup that existed before the sandbox (kubelet made it) is
    not sbxrun's: it stays after the pod's containers are gone."""
    made = []
    for d in cgroup_dirs(pod.cgroup):
        os.makedirs(d, exist_ok=True)  # with the test's cgroup above it, as kubelet would
        made.append(d)
    sandbox = pod.start_sandbox()
    app = pod.app("cri-app-default.json")
    for cid in (app, sandbox):
        sbx.ok("delete", "--force", cid)
    try:
        assert pod_cgroups(pod) == made
    finally:
        for d in made:
            with contextlib.suppress(OSError):
                os.rmdir(d)


LL_CONNECT = r"""
import errno, json, socket, sys
out = {}
for host, port in json.loads(sys.argv[1]):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, port)); out[f"{host}:{port}"] = "ok"
    except OSError as e:
        out[f"{host}:{port}"] = errno.errorcode.get(e.errno, str(e))
    finally:
        s.close()
print(json.dumps(out))
"""


def test_landlock_annotations_in_a_cri_pod(sbx, pod, netlab, tmp_path):
    """Issue 17: the org.sbxrun.landlock.* annotations, copied into a CRI
    app container as containerd copies pod annotations, confine it under
    kubelet's defaults; an app of the same pod without them shows that
    each denied operation works otherwise."""
    from test_landlock import kernel_abi
    if kernel_abi() < 4:
        pytest.skip("needs Landlock ABI 4 (kernel 6.7) for the TCP rules")
    pod.start_sandbox()  # its bundle made /probe
    (tmp_path / "probe" / "llconnect.py").write_text(LL_CONNECT)  # readable alone, not its dir
    ann = {"org.sbxrun.landlock.fs": "rx:/bin; rx:/usr; ro:/etc; ro:/proc; rw:/dev/null; ro:/probe/llconnect.py",
           "org.sbxrun.landlock.net": "connect:80"}
    ruled = pod.app("cri-app-default.json", annotations=ann)
    free = pod.app("cri-app-default.json")
    seen = {}
    for cid in (ruled, free):
        reads = sbx("exec", cid, "sh", "-c",
                    "cat /etc/resolv.conf >/dev/null 2>&1 && echo etc; ls /probe >/dev/null 2>&1 && echo probe; true")
        assert reads.returncode == 0, describe(reads)
        conn = sbx.ok("exec", cid, PYTHON, "/probe/llconnect.py",
                      json.dumps([["10.231.0.2", 80], ["10.231.0.3", 443]]), timeout=60)
        seen[cid] = (reads.stdout.split(), json.loads(conn.stdout))
    assert seen[free] == (["etc", "probe"], {"10.231.0.2:80": "ok", "10.231.0.3:443": "ok"}), seen
    assert seen[ruled] == (["etc"], {"10.231.0.2:80": "ok", "10.231.0.3:443": "EACCES"}), seen
    assert "org.sbxrun.landlock.effective" in sbx.state(ruled).get("annotations", {})
