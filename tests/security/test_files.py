"""Files sbxrun writes outside its state directory (--pid-file, --log)
cannot be redirected by another user's symlinks (issue 9.4).

The scene: a directory writable by `nobody` (not sticky, so the kernel's
fs.protected_symlinks, which only covers sticky world-writable directories,
does not stop a root process from following nobody's symlinks there), and a
root-owned victim file elsewhere.  `nobody` plants symlinks at the final
name and at every temporary name the old code could have used
(`.NAME.tmp.<pid>` for the next few thousand pids).
"""

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import describe, run_cmd

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]

NOBODY = 65534
PRECIOUS = b"root's precious data\n"


def as_nobody(argv):
    cp = run_cmd(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups", *argv])
    assert cp.returncode == 0, describe(cp)
    return cp


@pytest.fixture
def scene(tmp_path):
    """(shared dir writable by nobody, root-owned victim file)."""
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")
    # /tmp itself is reachable by nobody; tmp_path (0700) is not.
    shared = Path(tempfile.mkdtemp(prefix="sbxt-shared-", dir="/tmp"))
    os.chmod(shared, 0o777)  # deliberately not sticky
    victim = tmp_path / "victim"
    victim.write_bytes(PRECIOUS)
    os.chmod(victim, 0o644)
    try:
        yield shared, victim
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def plant(shared, name, victim, *, predictable_temps=True):
    """As nobody: NAME -> victim, and .NAME.tmp.<pid> -> victim for the next pids."""
    last = int(Path("/proc/sys/kernel/ns_last_pid").read_text())
    code = (
        "import os, sys\n"
        "d, name, victim, first = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])\n"
        "os.symlink(victim, os.path.join(d, name))\n"
        "if first:\n"
        "    for p in range(first, first + 4000):\n"
        "        os.symlink(victim, os.path.join(d, '.%s.tmp.%d' % (name, p)))\n"
    )
    as_nobody(["/usr/bin/python3", "-c", code, str(shared), name, str(victim), str(last + 1 if predictable_temps else 0)])
    assert os.lstat(shared / name).st_uid == NOBODY


def test_primitive_root_follows_nobodys_symlink(scene):
    # What the old --pid-file did (O_CREAT|O_TRUNC on a guessable name) is
    # enough: root opening nobody's symlink truncates a root-owned file.
    shared, _ = scene
    scratch = shared.parent / f"{shared.name}-scratch-victim"
    scratch.write_bytes(PRECIOUS)
    try:
        plant(shared, "pid", scratch, predictable_temps=False)
        assert Path("/proc/sys/fs/protected_symlinks").read_text().strip() in ("0", "1")
        fd = os.open(shared / "pid", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"1234")
        os.close(fd)
        assert scratch.read_bytes() == b"1234", "the naive open did not follow the symlink"
    finally:
        scratch.unlink()


def _check_pid_file(shared, victim, pid):
    assert victim.read_bytes() == PRECIOUS, "the victim was written through a symlink"
    st = os.lstat(shared / "pid")
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 0, "the pid file is not root's regular file"
    assert (shared / "pid").read_text() == str(pid)
    left = [p.name for p in shared.iterdir() if not p.is_symlink() and p.name != "pid"]
    assert left == [], f"temporary files left behind: {left}"


def test_pid_file_symlink_attack_create(sbx, bundle, scene):
    shared, victim = scene
    plant(shared, "pid", victim)
    b = bundle(["sleep", "600"])
    cid = sbx.new_id("pidf")
    sbx.ok("create", "--bundle", b, "--pid-file", shared / "pid", cid)
    _check_pid_file(shared, victim, sbx.state(cid)["pid"])
    sbx.ok("delete", "--force", cid)


def test_pid_file_symlink_attack_exec(sbx, bundle, scene, tmp_path):
    shared, victim = scene
    b = bundle(["sleep", "600"])
    cid = sbx.new_id("pidf")
    sbx.ok("run", "-d", "--bundle", b, cid)
    plant(shared, "pid", victim)
    sbx.ok("exec", "-d", "--pid-file", shared / "pid", cid, "sleep", "600")
    pid = int((shared / "pid").read_text())
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
    _check_pid_file(shared, victim, pid)
    sbx.ok("delete", "--force", cid)


def test_pid_file_refusals_are_clear(sbx, bundle, scene):
    shared, victim = scene
    (shared / "adir").mkdir()
    b = bundle(["true"])
    cid = sbx.new_id("pidf")
    cp = sbx.fail("create", "--bundle", b, "--pid-file", shared / "adir", cid)
    assert "pid file" in cp.stderr and "adir" in cp.stderr, describe(cp)
    assert not (sbx.root / cid).exists()
    assert victim.read_bytes() == PRECIOUS


def test_log_file_symlink_refused(sbx, scene):
    shared, victim = scene
    # The primitive: an O_APPEND|O_CREAT open by root appends to the target.
    scratch = shared.parent / f"{shared.name}-scratch-log"
    scratch.write_bytes(PRECIOUS)
    try:
        plant(shared, "log", scratch, predictable_temps=False)
        with open(shared / "log", "ab") as f:
            f.write(b"x")
        assert scratch.read_bytes() == PRECIOUS + b"x"
    finally:
        scratch.unlink()
        (shared / "log").unlink()
    plant(shared, "log", victim, predictable_temps=False)
    cp = sbx("--log", shared / "log", "nosuchcommand")
    assert cp.returncode != 0 and "symbolic link" in cp.stderr and "log" in cp.stderr, describe(cp)
    assert victim.read_bytes() == PRECIOUS
    # an ordinary existing log file is still appended to (engines reuse it)
    (shared / "log").unlink()
    (shared / "log").write_text("earlier\n")
    sbx("--log", shared / "log", "nosuchcommand")
    text = (shared / "log").read_text()
    assert text.startswith("earlier\n") and "nosuchcommand" in text, text


@pytest.mark.needs_root
@pytest.mark.parametrize("name", ["/dev/stderr", "/dev/fd/2", "/proc/self/fd/2"])
def test_log_to_callers_own_stream(sbx, name):
    # The caller's stream named through its /dev symlink is its own fd, not
    # a planted link: the message reaches our stderr once per format.
    cp = sbx("--log", name, "--log-format", "json", "state", "no-such-ctr")
    assert cp.returncode != 0, describe(cp)
    assert '"level":"error"' in cp.stderr and "does not exist" in cp.stderr, describe(cp)
