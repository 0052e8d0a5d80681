"""podman pods under an egress policy (issue 12): the infra container
carries the policy (containers.conf `annotations`, which podman puts in
every container it creates, the infra one included: `podman pod create`
has no --annotation), members created with `podman run --pod` name it by
`io.kubernetes.cri-o.SandboxID` and get its rules.  The pod's network is a
test namespace (test_netfilter's NetLab) given with `--network ns:PATH`:
podman makes no bridge and touches no host network.  Skipped without
podman."""

import contextlib
import json
import os
import shutil

import pytest

from conftest import all_cgroup_dirs, describe, run_cmd
from test_netfilter import netlab, table_name  # noqa: F401 (fixture)
from test_podman import podman  # noqa: F401 (fixture)

pytestmark = [pytest.mark.needs_root,
              pytest.mark.skipif(shutil.which("podman") is None, reason="podman not installed")]

IMAGE = "localhost/sbxtest-bb:latest"


def nc(podman, cid, host, port):
    """TCP connect from container CID: the server's answer, or None."""
    cp = podman("exec", cid, "nc", "-w", "2", host, str(port), ok=False)
    return cp.stdout.strip() or None


def link_into(netlab, pid):
    """A veth from lab's server namespace into the network namespace of
    process PID (podman's `--network none` pod namespace): 10.232.0.1 there,
    10.232.0.2 and .3 on the server side.  Gone with the namespace."""
    n = os.getpid() % 10**7
    a, b = f"sbxt{n}p", f"sbxt{n}q"
    for argv in (["ip", "-n", netlab.server, "link", "add", a, "type", "veth", "peer", "name", b, "netns", str(pid)],
                 ["ip", "-n", netlab.server, "addr", "add", "10.232.0.2/24", "dev", a],
                 ["ip", "-n", netlab.server, "addr", "add", "10.232.0.3/24", "dev", a],
                 ["ip", "-n", netlab.server, "link", "set", a, "up"],
                 ["nsenter", "-t", str(pid), "-n", "ip", "addr", "add", "10.232.0.1/24", "dev", b],
                 ["nsenter", "-t", str(pid), "-n", "ip", "link", "set", b, "up"]):
        cp = run_cmd(argv)
        assert cp.returncode == 0, describe(cp)


def pod_id(podman):
    return json.loads(podman("pod", "inspect", "sbxpod").stdout)["Id"]


def ruleset_of(pid):
    cp = run_cmd(["nsenter", "-t", str(pid), "-n", "nft", "list", "ruleset"])
    assert cp.returncode == 0, describe(cp)
    return cp.stdout


def test_pod_infra_policy_and_members(podman, netlab, tmp_path):
    conf = tmp_path / "containers-infra.conf"
    conf.write_text(open(podman.env["CONTAINERS_CONF"]).read().replace(
        "[containers]\n", '[containers]\nannotations = ["org.sbxrun.net.allow=10.232.0.2:80-81"]\n', 1))
    env = dict(podman.env, CONTAINERS_CONF=str(conf))
    # podman pods take no `ns:PATH` network: `none` gives the pod a
    # namespace of its own with only lo, and link_into adds the test link.
    for args in (["pod", "create", "--name", "sbxpod", "--network", "none", "--cgroup-parent", podman.parent,
                  "--infra-image", IMAGE, "--infra-command", "sleep 600"], ["pod", "start", "sbxpod"]):
        cp = run_cmd([*podman.base, *args], env=env, timeout=120)
        assert cp.returncode == 0, describe(cp)
    infra = json.loads(podman("pod", "inspect", "sbxpod").stdout)["InfraContainerID"]
    pid = json.loads(podman("inspect", infra).stdout)[0]["State"]["Pid"]
    link_into(netlab, pid)
    members = [podman("run", "-d", "--pod", "sbxpod", IMAGE, "sleep", "600").stdout.strip(),
               podman("run", "-d", "--pod", "sbxpod", "--cap-add", "NET_RAW", IMAGE, "sleep", "600").stdout.strip()]
    for cid in members:
        assert nc(podman, cid, "10.232.0.2", 80) == "tcp 80"
        assert nc(podman, cid, "10.232.0.3", 80) is None
        assert nc(podman, cid, "10.232.0.2", 443) is None
    cp = podman("exec", members[1], "ping", "-c", "1", "-W", "1", "10.232.0.3", ok=False)
    assert cp.returncode != 0, describe(cp)
    # One table for the pod: the infra's, re-scoped to the pod's cgroup
    # (the infra's and the members' parent) when the first member came; the
    # members carry the same annotation (containers.conf) and add nothing.
    rules = ruleset_of(pid)
    assert rules.count("table inet sbxrun-") == 1 and f"table inet {table_name(infra)}" in rules, rules
    assert f'socket cgroupv2 level ' in rules and f"/{pod_id(podman)}\"" in rules, rules
    # a member restarted is still restricted, by the same table
    podman("restart", "-t", "0", members[0])
    assert nc(podman, members[0], "10.232.0.3", 80) is None
    assert nc(podman, members[0], "10.232.0.2", 80) == "tcp 80"
    # a narrowing member: a table of its own as well; a widening one refused
    narrow = podman("run", "-d", "--pod", "sbxpod", "--annotation", "org.sbxrun.net.allow=10.232.0.2:80",
                    IMAGE, "sleep", "600").stdout.strip()
    assert nc(podman, narrow, "10.232.0.2", 80) == "tcp 80"
    assert ruleset_of(pid).count("table inet sbxrun-") == 2
    cp = podman("run", "-d", "--pod", "sbxpod", "--annotation", "org.sbxrun.net.allow=10.232.0.0/24",
                IMAGE, "sleep", "600", ok=False)
    assert cp.returncode != 0 and "10.232.0.0/24" in cp.stdout + cp.stderr, describe(cp)
    # members removed: the pod's table stays, the others still restricted
    podman("rm", "-f", "-t", "0", narrow, members[0])
    rules = ruleset_of(pid)
    assert rules.count("table inet sbxrun-") == 1 and f"table inet {table_name(infra)}" in rules, rules
    assert nc(podman, members[1], "10.232.0.3", 80) is None
    assert nc(podman, members[1], "10.232.0.2", 80) == "tcp 80"
    pid_of_pod = pod_id(podman)
    podman("pod", "rm", "-f", "-t", "0", "sbxpod")
    assert not os.path.exists(f"/proc/{pid}")
    # The pod's cgroup is podman's; it removes it from the v1 controllers
    # only, not from the hierarchies where sbxrun made it as the parent of
    # the containers' (name=systemd, unified).  Empty: the containers'
    # cgroups inside are gone (the podman fixture checks).
    for _, d in all_cgroup_dirs(f"{podman.parent}/{pid_of_pod}"):
        with contextlib.suppress(OSError):
            os.rmdir(d)


def test_run_annotation_with_default_caps(podman, netlab):
    for extra in ([], ["--cap-add", "NET_RAW"]):
        cid = podman("run", "-d", "--network", f"ns:{netlab.netns_path}", "--cgroup-parent", podman.parent,
                     "--annotation", "org.sbxrun.net.allow=10.231.0.2:80", *extra, IMAGE,
                     "sleep", "600").stdout.strip()
        assert nc(podman, cid, "10.231.0.2", 80) == "tcp 80"
        assert nc(podman, cid, "10.231.0.3", 80) is None
        cp = podman("exec", cid, "ping", "-c", "1", "-W", "1", "10.231.0.3", ok=False)
        assert cp.returncode != 0, describe(cp)
        podman("rm", "-f", "-t", "0", cid)
    assert "sbxrun-" not in netlab.ruleset()
