"""Removing an egress policy from a namespace joined by path (issue 21):
the deletion is complete when `delete` returns, while the close of the
netfilter socket -- which waits for an RCU grace period after a batch that
deleted something -- is left to a short-lived detached process that holds
nothing of the caller's.  In the test networks of test_netfilter.py."""

import os
import subprocess
import time

import pytest

from conftest import describe
import test_netfilter as nf

netlab = nf.netlab

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("create", "start", "exec", "delete"),
              pytest.mark.usefixtures("seccomp_cache_cleanup")]

CLOSER = "sbxrun-nlclose"  # egress_internal.h, EGR_NL_CLOSER_COMM


def closers():
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/comm") as f:
                    if f.read().strip() == CLOSER:
                        out.append(int(p))
            except OSError:
                pass
    return out


def drained(fd):
    """Everything left in pipe fd, which must be at its end already: no
    other process may hold its write end."""
    os.set_blocking(fd, False)
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            pytest.fail("the pipe is still open for writing after sbxrun exited: a process it left "
                        f"behind holds it (read so far: {data[-500:]!r})")
        if not chunk:
            return data.decode(errors="replace")
        data += chunk


def test_delete_in_joined_netns_is_complete_at_return(sbx, bundle, tmp_path, netlab):
    ann = {"org.sbxrun.net.allow": "10.231.0.2:80", "org.sbxrun.net.dns": "none"}
    b1 = nf.net_bundle(bundle, tmp_path, netlab, ann)
    a = nf.start(sbx, b1)
    other = nf.start(sbx, nf.net_bundle(bundle, tmp_path, netlab, ann))
    nf.check(sbx, a, allowed=[["tcp", "10.231.0.2", 80]], blocked=[["tcp", "10.231.0.3", 80]])
    rules = netlab.ruleset()
    assert nf.table_name(a) in rules and nf.table_name(other) in rules, rules

    # stdout and stderr are pipes only sbxrun holds: right after it exits
    # they must be at their end, closer or not
    p = subprocess.Popen(sbx.argv("--debug", "delete", "--force", a), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rc = p.wait(timeout=60)
    err = drained(p.stderr.fileno())
    drained(p.stdout.fileno())
    p.stdout.close()
    p.stderr.close()
    # no rule of the deleted container is left, at once; the other's stay
    rules = netlab.ruleset()
    assert rc == 0, err
    assert nf.table_name(a) not in rules, rules
    assert nf.table_name(other) in rules, rules
    assert f'egress policy of container "{a}": removed' in err and "detached process" in err, err
    # the other container is still restricted
    nf.check(sbx, other, allowed=[["tcp", "10.231.0.2", 80]], blocked=[["tcp", "10.231.0.3", 80]])
    # and the closer goes once the grace period is over
    deadline = time.monotonic() + 10
    while closers() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not closers(), f"{CLOSER} processes still there after 10 s: {closers()}"

    sbx.ok("delete", "--force", other)
    assert "sbxrun-" not in netlab.ruleset()
