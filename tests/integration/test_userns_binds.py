"""Bind sources the container's root cannot reach in its user namespace (a
0700 directory of host root): bound all the same, as runc does, because the
runtime opens them before the user namespace is entered."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import add_bind, describe, run_cmd

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]

RUNC = shutil.which("runc")
MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


@pytest.fixture
def locked(tmp_path):
    """/tmp/X (0700, host root) holding shared/ (0755) with a file, and a
    file of its own."""
    d = Path(tempfile.mkdtemp(prefix=f"sbxtest-{os.getpid()}-", dir="/tmp"))
    d.chmod(0o700)
    (d / "shared").mkdir(mode=0o755)
    (d / "shared" / "hello").write_text("through a locked parent\n")
    (d / "shared" / "hello").chmod(0o644)
    (d / "top").write_text("x\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _bundle(public_bundle, locked, script):
    b = public_bundle(["sh", "-c", script])
    for dest in ("locked", "shared"):
        (b.rootfs / dest).mkdir()
    add_bind(b, locked, "/locked")
    add_bind(b, locked / "shared", "/shared", ro=True)
    with b.edit() as c:
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = MAP
        c["linux"]["gidMappings"] = MAP
    return b


SCRIPT = ("cat /shared/hello; grep -c ' /locked ' /proc/self/mountinfo; "
          "stat -c %u:%a /locked; (ls /locked) 2>&1 | grep -c 'Permission denied'")
EXPECTED = ["through a locked parent", "1", "65534:700", "1"]


def test_unreachable_bind_source_is_bound(sbx, public_bundle, locked):
    b = _bundle(public_bundle, locked, SCRIPT)
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    # bound; the container's root still cannot read host root's 0700
    # directory, but reaches what is readable below it
    assert cp.stdout.splitlines() == EXPECTED, describe(cp)


@pytest.mark.skipif(RUNC is None, reason="runc is not installed (apt-get install runc)")
def test_unreachable_bind_source_runc_agrees(public_bundle, locked, tmp_path):
    b = _bundle(public_bundle, locked, SCRIPT)
    root = tmp_path / "runc-root"
    try:
        cp = run_cmd([RUNC, "--root", root, "run", "--bundle", b, "userns-bind-runc"])
    finally:
        run_cmd([RUNC, "--root", root, "delete", "--force", "userns-bind-runc"])
    assert cp.returncode == 0, describe(cp)
    assert cp.stdout.splitlines() == EXPECTED, describe(cp)
