"""Filesystem snapshots against a hostile container (issue 10, review
leftovers): a file swapped for a FIFO while the tree is copied, a running
container that cannot be frozen, and xattrs that must not come back where
they could widen privileges (security.capability into another config,
trusted.* / security.* that the overlay format does not need, an imported
stream's file capabilities).  Each defence is shown against a weakened copy
first (the exploit working), then against sbxrun."""

import json
import os
import shutil
import stat
import subprocess
import sys
import time

import pytest

from conftest import describe, wait_for
from test_rootless import rootless_user  # noqa: F401 (fixture)
from test_snapshot import prepared, writable

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]

# cap_dac_override=ep as a VFS_CAP_REVISION_2 security.capability value
# (magic+effective, permitted low/high, inheritable low/high: bit 1).
CAP_DAC_OVERRIDE_EP = bytes.fromhex("01000002" "02000000" "00000000" "00000000" "00000000")


@pytest.fixture
def bundle(fast_bundle):
    return fast_bundle


# ------------------------------------------------------------ FIFO swap

# A copy that trusts its lstat: the entry is "a regular file", then opened
# (blocking) and read.  HOOK runs between the two, as a container would.
NAIVE_COPY = r"""
import os, sys, time
src = sys.argv[1]
st = os.lstat(src)
assert st.st_mode & 0o170000 == 0o100000
open(sys.argv[2], "w").close()          # the swap happens here (the test
while not os.path.exists(sys.argv[3]):   # says when it is done)
    time.sleep(0.01)
with open(src, "rb") as f:              # blocks on a FIFO without a writer
    f.read()
print("copied")
"""


def held_in_openat(tracer, name):
    """Is the process strace TRACER runs in openat(dirfd, NAME, ...)?"""
    try:
        with open(f"/proc/{tracer}/task/{tracer}/children") as f:
            kids = f.read().split()
        with open(f"/proc/{kids[0]}/syscall") as f:
            fields = f.read().split()
        if fields[0] != "257":  # openat on x86_64
            return False
        with open(f"/proc/{kids[0]}/mem", "rb") as m:
            m.seek(int(fields[2], 16))
            return m.read(len(name) + 1) == name.encode() + b"\0"
    except (OSError, IndexError, ValueError):
        return False


def swap_for_fifo(path):
    tmp = str(path) + ".fifo"
    os.mkfifo(tmp)
    os.rename(tmp, path)


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace (to widen the race window)")
def test_fifo_swapped_in_never_hangs_the_copy(sbx, bundle, tmp_path):
    cid, _ = prepared(sbx, bundle)
    upper = sbx.root / cid / "upper"
    victim = upper / "victim"
    # Weakened: the lstat-then-open copy hangs on the FIFO swapped in.
    victim.write_bytes(b"data\n")
    go, done = tmp_path / "go", tmp_path / "done"
    p = subprocess.Popen([sys.executable, "-c", NAIVE_COPY, victim, go, done], stdout=subprocess.PIPE)
    wait_for(go.exists, what="the naive copy's stat")
    swap_for_fifo(victim)
    done.write_text("")
    with pytest.raises(subprocess.TimeoutExpired):
        p.wait(timeout=3)
    p.kill()
    p.wait()
    os.unlink(victim)

    # sbxrun: the same swap in the same window (the openat of the victim,
    # which follows its stat, held 2 s by strace).  First a run that only
    # finds which openat that is (then its snapshot is deleted again).
    victim.write_bytes(b"data\n")
    log = tmp_path / "strace"
    argv = lambda *inject: ["strace", "-f", "-qq", "-e", "trace=openat", *inject, "-o", log,
                            *sbx.argv("snapshot", "create", cid, "s")]
    subprocess.run(argv(), check=True, capture_output=True)
    calls = [l for l in log.read_text().splitlines() if "openat(" in l]
    pid = calls[0].split()[0]
    calls = [l for l in calls if l.split()[0] == pid]  # strace's count is per process
    nth = [i for i, l in enumerate(calls) if '"victim"' in l and "O_CREAT" not in l]
    assert len(nth) == 1, calls
    sbx.ok("snapshot", "delete", cid, "s")
    t0 = time.monotonic()
    p = subprocess.Popen(argv("-e", f"inject=openat:delay_enter=2000000:when={nth[0] + 1}"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: held_in_openat(p.pid, "victim") or p.poll() is not None,
             what="sbxrun to reach the victim", interval=0.005)
    assert p.poll() is None, p.communicate()
    swap_for_fifo(victim)
    out, errs = p.communicate(timeout=60)
    assert time.monotonic() - t0 < 30
    assert p.returncode != 0, "the copy took the FIFO for the file"
    assert "/victim" in errs and "changed while the snapshot was taken" in errs, errs
    assert sorted(os.listdir(sbx.root / cid / "snapshots")) == [], "a snapshot or leftover remains"
    # Special files present from the start are copied as nodes, never opened.
    assert stat.S_ISFIFO(os.lstat(victim).st_mode)
    sbx.ok("snapshot", "create", cid, "fifo")
    assert stat.S_ISFIFO(os.lstat(sbx.root / cid / "snapshots/fifo/tree/victim").st_mode)


# ------------------------------------- running without a cgroup: refused


def test_running_container_without_cgroup_is_refused(rootless_user):  # noqa: F811
    """Rootless without cgroup delegation: no freezer, so a snapshot of the
    running container is refused, naming why; once stopped it is taken."""
    u = rootless_user
    b = u.bundle(["sh", "-c", "while :; do date > /tick; done"])
    cp = u.run("run", "-d", "live", cwd=b)
    assert cp.returncode == 0, describe(cp)
    try:
        assert "no writable cgroup" in cp.stderr, describe(cp)
        cp = u.run("snapshot", "create", "live", "s")
        assert cp.returncode != 0, describe(cp)
        assert 'container "live"' in cp.stderr and "running and has no cgroup" in cp.stderr, describe(cp)
        assert "cannot be frozen" in cp.stderr and "stop it first" in cp.stderr, describe(cp)
        snaps = os.path.join(u.state_root, "live", "snapshots")
        assert not os.path.exists(snaps) or os.listdir(snaps) == []
        assert json.loads(u.run("state", "live").stdout)["status"] == "running"
        cp = u.run("kill", "live", "KILL")
        assert cp.returncode == 0, describe(cp)
        wait_for(lambda: json.loads(u.run("state", "live").stdout)["status"] == "stopped",
                 what="the container to stop")
        cp = u.run("snapshot", "create", "live", "s")
        assert cp.returncode == 0, describe(cp)
        assert os.path.isfile(os.path.join(snaps, "s", "tree", "tick"))
    finally:
        u.run("delete", "--force", "live")


# ------------------------------------------------------------- xattrs


def as_user_with_dac_override_bound(c, args):
    """uid 1000, no capabilities but CAP_DAC_OVERRIDE in the bounding set,
    no_new_privs off: only a file capability can raise it."""
    p = c["process"]
    p["args"] = args
    p["user"] = {"uid": 1000, "gid": 1000}
    p["noNewPrivileges"] = False
    p["capabilities"] = {"bounding": ["CAP_DAC_OVERRIDE"], "effective": [], "permitted": [],
                         "inheritable": [], "ambient": []}


READ_SECRET = ["sh", "-c", "/opt/cat /secret 2>&1; true"]


def plant_capability(root):
    """/secret (root's, 0600) and /opt/cat: busybox with cap_dac_override=ep."""
    (root / "secret").write_text("the secret\n")
    os.chmod(root / "secret", 0o600)
    (root / "opt").mkdir(exist_ok=True)
    shutil.copy2(root / "bin/busybox", root / "opt/cat")
    os.setxattr(root / "opt/cat", "security.capability", CAP_DAC_OVERRIDE_EP)


def raw_copy(src, dst):
    """A copy that keeps every xattr (the owner first: a chown drops
    security.capability): the weakened restore."""
    shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copy2)
    for d, dirs, files in os.walk(src):
        for n in dirs + files:
            s = os.path.join(d, n)
            t = os.path.join(dst, os.path.relpath(s, src))
            st = os.lstat(s)
            os.lchown(t, st.st_uid, st.st_gid)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(t, stat.S_IMODE(st.st_mode))
            for x in os.listxattr(s, follow_symlinks=False):
                os.setxattr(t, x, os.getxattr(s, x, follow_symlinks=False), follow_symlinks=False)


def test_file_capability_only_back_into_the_same_config(sbx, bundle, tmp_path):
    b = writable(bundle(), READ_SECRET, overlay=False)
    with b.edit() as c:
        as_user_with_dac_override_bound(c, READ_SECRET)
    plant_capability(b.rootfs)
    cid = sbx.new_id("caps")
    # Where it was planted the capability works (the premise of the test).
    out = sbx.ok("run", "--keep", "--bundle", b, cid).stdout
    assert "the secret" in out, out
    sbx.ok("snapshot", "create", cid, "s")
    tree = sbx.root / cid / "snapshots/s/tree"
    assert os.getxattr(tree / "opt/cat", "security.capability") == CAP_DAC_OVERRIDE_EP

    # Weakened: a fork that copies every xattr lets another config's user
    # read the secret (here the same process settings, a different
    # config: another bundle, another cgroup).
    wb = writable(bundle(rootfs=False), READ_SECRET, overlay=False)
    raw_copy(tree, wb.rootfs)
    with wb.edit() as c:
        as_user_with_dac_override_bound(c, READ_SECRET)
    out = sbx.ok("run", "--bundle", wb, sbx.new_id("weak")).stdout
    assert "the secret" in out, out

    # sbxrun: the fork into the other config comes without the capability.
    fb = writable(bundle(), READ_SECRET, overlay=False)
    with fb.edit() as c:
        as_user_with_dac_override_bound(c, READ_SECRET)
    fork = sbx.new_id("fork")
    out = sbx.ok("run", "--keep", "--from-snapshot", f"{cid}:s", "--bundle", fb, fork).stdout
    assert "the secret" not in out and "Permission denied" in out, out
    assert "security.capability" not in os.listxattr(sbx.root / fork / "rootfs/opt/cat")
    # The reset of the container it was taken in (same saved config) keeps it.
    os.removexattr(b.rootfs / "opt/cat", "security.capability")
    sbx.ok("restore", "--from-snapshot", "s", cid)
    assert os.getxattr(b.rootfs / "opt/cat", "security.capability") == CAP_DAC_OVERRIDE_EP
    sbx.ok("delete", "--force", cid)
    sbx.ok("delete", "--force", fork)


def test_xattrs_outside_the_policy_are_not_copied(sbx, bundle):
    # rm + mkdir of /etc: the overlay marks upper/etc opaque (trusted.overlay.opaque).
    b = writable(bundle(), ["sh", "-c", "rm -rf /etc; mkdir /etc; echo only > /etc/only; echo x > /f"])
    cid = sbx.new_id("xa")
    sbx.ok("run", "--keep", "--bundle", b, cid)
    upper = sbx.root / cid / "upper"
    assert os.getxattr(upper / "etc", "trusted.overlay.opaque") == b"y"
    planted = {"trusted.sbxtest": b"1", "security.sbxtest": b"2", "user.overlay.redirect": b"/bin",
               "trusted.overlay.origin": b"\0\xfb", "user.note": b"kept"}
    for k, v in planted.items():
        os.setxattr(upper / "f", k, v)
    sbx.ok("snapshot", "create", cid, "s")
    tree = sbx.root / cid / "snapshots/s/tree"
    assert set(os.listxattr(tree / "f")) == {"user.note"}, os.listxattr(tree / "f")
    assert os.getxattr(tree / "etc", "trusted.overlay.opaque") == b"y"
    # A tree tampered with one afterwards: not copied out by a fork either.
    os.setxattr(tree / "f", "trusted.sbxtest", b"late")
    fb = writable(bundle(), ["sh", "-c", "ls /etc"], overlay=False)
    with fb.edit() as c:
        c["root"]["path"] = str(b.rootfs)
    fork = sbx.new_id("fork")
    out = sbx.ok("run", "--keep", "--from-snapshot", f"{cid}:s", "--bundle", fb, fork).stdout
    # The opaque mark came back: only the container's own /etc is seen.
    assert out.split() == ["only"], out
    assert set(os.listxattr(sbx.root / fork / "upper/f")) == {"user.note"}
    sbx.ok("delete", "--force", fork)


def test_import_refuses_file_capabilities_and_foreign_xattrs(sbx, bundle, tmp_path):
    cid, _ = prepared(sbx, bundle)
    upper = sbx.root / cid / "upper"
    (upper / "opt").mkdir()
    shutil.copy2("/bin/true", upper / "opt/tool")
    os.setxattr(upper / "opt/tool", "security.capability", CAP_DAC_OVERRIDE_EP)
    sbx.ok("snapshot", "create", cid, "s")
    archive = tmp_path / "s.tar"
    with open(archive, "wb") as f:
        assert sbx("snapshot", "export", cid, "s", stdout=f).returncode == 0
    # Weakened: an extraction that takes every xattr lands the capability.
    raw = tmp_path / "raw"
    raw.mkdir()
    subprocess.run(["tar", "-x", "--xattrs", "--xattrs-include=*", "-f", archive, "-C", raw], check=True)
    assert os.getxattr(raw / "tree/opt/tool", "security.capability") == CAP_DAC_OVERRIDE_EP
    # sbxrun: refused, naming the file and the xattr; nothing is left.
    other, _ = prepared(sbx, bundle)
    with open(archive, "rb") as f:
        cp = sbx.fail("snapshot", "import", other, "copy", stdin=f)
    assert "/opt/tool" in cp.stderr and "security.capability" in cp.stderr, describe(cp)
    assert os.listdir(sbx.root / other / "snapshots") == []
    # A stream with a trusted.* name the overlay format does not need (an
    # entry appended to a clean export): refused the same way.
    sbx.ok("snapshot", "create", other, "clean")
    clean = tmp_path / "clean.tar"
    with open(clean, "wb") as f:
        assert sbx("snapshot", "export", other, "clean", stdout=f).returncode == 0
    (tmp_path / "add/tree").mkdir(parents=True)
    (tmp_path / "add/tree/extra").write_text("x")
    os.setxattr(tmp_path / "add/tree/extra", "trusted.sbxtest", b"1")
    subprocess.run(["tar", "-r", "--format=posix", "--xattrs", "--xattrs-include=*", "-f", clean,
                    "-C", tmp_path / "add", "tree/extra"], check=True)
    with open(clean, "rb") as f:
        cp = sbx.fail("snapshot", "import", other, "copy", stdin=f)
    assert "/extra" in cp.stderr and "trusted.sbxtest" in cp.stderr, describe(cp)
    assert os.listdir(sbx.root / other / "snapshots") == ["clean"]
