"""A container process with CAP_SYS_PTRACE (and a profile allowing
ptrace(2)) can take over any process of its pid namespace: non-dumpable
does not stop a tracer that holds the capability over it.  So no sbxrun
process that a container can see may hold more than the container it
belongs to: the created init waits for `start` with the container's user,
capabilities and no_new_privs already in force (as runc's does).

The attacker, ptrace_inject.c, makes each process with more capabilities
than its own execute pwn_report.c, which records what it holds.
"""

import shutil
import subprocess

import pytest

from conftest import CAP_NAMES, describe, wait_for

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]


def status_of(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":") if ":" in line else line.partition(" ")
        out[k.strip()] = v.strip()
    return out


def cap_set(b):
    names = b.config["process"]["capabilities"]["bounding"]
    return sum(1 << CAP_NAMES.index(n) for n in names)


@pytest.fixture
def attacker(sbx, bundle, exploit):
    """Container A: the injector, with CAP_SYS_PTRACE and ptrace allowed."""
    a = bundle(["/inject", "/inject.log", "/pwn"], name="attacker")
    shutil.copy(exploit("ptrace_inject"), a.rootfs / "inject")
    shutil.copy(exploit("pwn_report"), a.rootfs / "pwn")
    with a.edit() as c:
        c["root"]["readonly"] = False
        for k in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][k].append("CAP_SYS_PTRACE")
        for r in c["linux"].get("seccomp", {}).get("syscalls", []):
            if "ptrace" in r["names"]:
                r["names"].remove("ptrace")
    aid = sbx.new_id("attacker")
    sbx.ok("run", "-d", "--bundle", a, aid)
    wait_for(lambda: (a.rootfs / "inject.log").exists() and "ready" in (a.rootfs / "inject.log").read_text(),
             10, "the injector")
    return a, aid, sbx.state(aid)["pid"]


def test_primitive_a_privileged_visible_process_is_taken_over(sbx, attacker, exploit):
    """Weakened setup: a process with the host's full capabilities put into
    the attacker's pid and mount namespaces runs the payload with them."""
    if shutil.which("nsenter") is None:
        pytest.skip("no nsenter")
    a, aid, apid = attacker
    p = subprocess.Popen(["nsenter", "-t", str(apid), "-m", "-p", "--", "/bin/sleep", "5"])
    try:
        rep = wait_for(lambda: (a.rootfs / "tmp/pwn.report").exists()
                       and "done" in (a.rootfs / "tmp/pwn.report").read_text()
                       and (a.rootfs / "tmp/pwn.report").read_text(), 10, "the payload's report")
    finally:
        p.kill()
        p.wait()
    st = status_of(rep)
    full = int(open("/proc/self/status").read().split("CapEff:")[1].split()[0], 16)
    assert int(st["CapEff"], 16) == full, rep
    assert st["mount_proc"] == "0" and st["core_pattern"] == "0", rep


def test_created_init_holds_only_the_containers_credentials(sbx, bundle, attacker):
    """A pod neighbour created (not started) in the attacker's pid
    namespace: the injector reaches its waiting init, and the payload holds
    no more than the neighbour's own capabilities, with its
    no_new_privs."""
    a, aid, apid = attacker
    b = bundle(["true"], name="neighbour")
    shutil.copy(a.rootfs / "pwn", b.rootfs / "pwn")
    with b.edit() as c:
        c["root"]["readonly"] = False
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
        c["linux"]["namespaces"].append({"type": "pid", "path": f"/proc/{apid}/ns/pid"})
    # A pod member's init is visible from its birth: several creates give
    # the injector its chances at that moment too.
    for _ in range(5):
        bid = sbx.new_id("neighbour")
        sbx.ok("create", "--bundle", b, bid)
        bpid = sbx.state(bid)["pid"]
        assert "injected" not in (a.rootfs / "inject.log").read_text()
        sbx.ok("delete", "-f", bid)
    bid = sbx.new_id("neighbour")
    sbx.ok("create", "--bundle", b, bid)
    bpid = sbx.state(bid)["pid"]
    log = a.rootfs / "inject.log"
    report = b.rootfs / "tmp/pwn.report"
    # the init's credentials, as the host sees them while it waits
    host = status_of(open(f"/proc/{bpid}/status").read())
    assert int(host["CapEff"], 16) & ~cap_set(b) == 0, host
    assert host["NoNewPrivs"] == "1", host
    # the injector either finds nothing to gain, or its payload holds no more
    deadline_ok = False
    try:
        wait_for(lambda: report.exists() and "done" in report.read_text(), 3, "a payload")
    except BaseException:
        deadline_ok = True
    if deadline_ok:
        assert "injected" not in log.read_text(), log.read_text()
    else:
        st = status_of(report.read_text())
        assert int(st["CapEff"], 16) & ~cap_set(b) == 0, report.read_text()
        assert st["core_pattern"] != "0", report.read_text()


def test_exec_process_holds_only_the_containers_credentials(sbx, attacker):
    """Processes exec'd into the attacker's container are born with its
    credentials (the joiner outside its pid namespace took them first):
    the injector never finds one with more capabilities than its own."""
    a, aid, apid = attacker
    log = a.rootfs / "inject.log"
    for _ in range(30):
        sbx.ok("exec", aid, "true")
    text = log.read_text()
    assert "injected" not in text and not (a.rootfs / "tmp/pwn.report").exists(), text
