"""The session guard (conftest.py: HostGuard, _session_guard) fails a run
that leaves something on the machine and names it.

Each test runs a tiny pytest session in a subprocess, loading the guard the
way each suite does (tests/integration/conftest.py directly, or through
tests/security/conftest.py, which re-exports it).  A clean session must pass;
a session whose test leaks a cgroup below our own cgroup, a network
namespace, a mount under its tmp dir and a process must fail, name each of
them, and remove them.  Whatever the inner session leaves, this test removes
in its finalizer."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import TOP_SRCDIR, all_cgroup_dirs, mounts_under, own_cgroup, remove_cgroup_tree, run_cmd

pytestmark = pytest.mark.needs_root

SUITES = {
    "integration": TOP_SRCDIR / "tests" / "integration" / "conftest.py",
    "security": TOP_SRCDIR / "tests" / "security" / "conftest.py",
}

CONFTEST = """
import importlib.util
_spec = importlib.util.spec_from_file_location("guard_loaded_conftest", {path!r})
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
globals().update({{k: v for k, v in vars(_mod).items() if not k.startswith("__")}})
"""

CLEAN = """
def test_clean(tmp_path):
    (tmp_path / "file").write_text("tmp files are fine")
"""

LEAKY = """
import json, os, subprocess
from conftest import cgroup_dirs, own_cgroup, run_cmd

def test_leaks(tmp_path):
    pid = os.getpid()
    cg = f"{own_cgroup().rstrip('/')}/sbxguard-leak-{pid}"
    ns = f"sbxguard-{pid}"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # recorded first, so that the outer test can clean up whatever happens
    proc = subprocess.Popen(["sleep", "300"], cwd=tmp_path, start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    with open(os.environ["GUARD_LEAK_RECORD"], "w") as f:
        json.dump({"cgroup": cg, "netns": ns, "mount": str(mnt), "pid": proc.pid}, f)
    for d in cgroup_dirs(cg):
        os.makedirs(d)
    assert run_cmd(["ip", "netns", "add", ns]).returncode == 0
    assert run_cmd(["mount", "-t", "tmpfs", "sbxguard", mnt]).returncode == 0
"""


def run_inner(tmp_path, suite, body):
    """Run a pytest session on a test file with BODY under tmp_path/inner,
    loading SUITE's conftest; return the CompletedProcess."""
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "conftest.py").write_text(CONFTEST.format(path=str(SUITES[suite])))
    (inner / "test_inner.py").write_text(textwrap.dedent(body))
    env = dict(os.environ, GUARD_LEAK_RECORD=str(tmp_path / "leak.json"), SBXTEST_GUARD_SETTLE="0.5",
               PYTHONDONTWRITEBYTECODE="1")
    return run_cmd([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", inner,
                    "--basetemp", tmp_path / "basetemp", inner / "test_inner.py"],
                   cwd=inner, env=env, timeout=120)


@pytest.fixture
def leak_record(tmp_path):
    """The leaks of the inner session (what test_leaks records), removed
    at teardown whatever the guard did."""
    path = tmp_path / "leak.json"
    yield path
    if not path.exists():
        return
    rec = json.loads(path.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(rec["pid"], signal.SIGKILL)
    for mp in mounts_under(rec["mount"]):
        run_cmd(["umount", "-l", mp])
    if os.path.exists(f"/run/netns/{rec['netns']}"):
        run_cmd(["ip", "netns", "delete", rec["netns"]])
    for _, d in all_cgroup_dirs(rec["cgroup"]):
        remove_cgroup_tree(d)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in "ZX"
    except OSError:
        return False


@pytest.mark.parametrize("suite", SUITES)
def test_guard_passes_a_clean_session(tmp_path, suite):
    cp = run_inner(tmp_path, suite, CLEAN)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "1 passed" in cp.stdout and "LEFTOVER" not in cp.stdout, cp.stdout


@pytest.mark.parametrize("suite", SUITES)
def test_guard_fails_a_leaking_session(tmp_path, suite, leak_record):
    cp = run_inner(tmp_path, suite, LEAKY)
    out = cp.stdout + cp.stderr
    rec = json.loads(leak_record.read_text())
    # The leaks happened and the test itself passed: only the guard fails the run.
    assert "1 passed" in cp.stdout, out
    assert cp.returncode == 1, out
    assert "session guard: the run left things behind" in cp.stdout, out
    left = [line for line in cp.stdout.splitlines() if line.startswith("LEFTOVER ")]
    own_dirs = [d for _, d in all_cgroup_dirs(rec["cgroup"]) if "/sys/fs/cgroup/" in d]
    assert own_dirs and any(d in line for d in own_dirs for line in left), out
    assert f"LEFTOVER netns {rec['netns']}" in left, out
    assert any(line.startswith("LEFTOVER mount ") and rec["mount"] in line for line in left), out
    assert any(line.startswith(f"LEFTOVER process {rec['pid']}: sleep 300") for line in left), out
    assert "could not remove" not in out, out
    # ... and the guard removed what it named.
    assert not _alive(rec["pid"]), "the leaked process survived the guard"
    assert mounts_under(rec["mount"]) == []
    assert not os.path.exists(f"/run/netns/{rec['netns']}")
    assert [d for _, d in all_cgroup_dirs(rec["cgroup"]) if os.path.exists(d)] == []
    assert own_cgroup() in rec["cgroup"]
