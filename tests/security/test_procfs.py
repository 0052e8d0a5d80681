"""procfs write redirection (CVE-2019-16884 / CVE-2025-52881 class), symlinked
/proc and /sys (CVE-2019-19921 class), symlinked mount targets and masks,
/dev/console, and what `features` says about the host's LSMs.

Each test first shows the primitive on the host, in a private mount
namespace (`unshare -m`): a path-based open or mount goes wherever a bind or
a symlink sends it.  Then it shows that sbxrun does not."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cgroup_dirs, describe, read_pty_until

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]


# unshare -m --propagation private, without util-linux's unshare(1).
_UNSHARE = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x00020000) != 0:
    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
if libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None) != 0:
    raise OSError(ctypes.get_errno(), "make / rprivate")
os.execvp("sh", ["sh", "-euc", sys.argv[1]])
"""


def in_private_mountns(script):
    """Run sh SCRIPT in a private mount namespace on the host (the weakened
    setup: plain paths, no checks); return its stdout."""
    if shutil.which("mount") is None:
        pytest.skip("no mount(8)")
    cp = subprocess.run([sys.executable, "-c", _UNSHARE, script], capture_output=True, text=True,
                        timeout=30)
    assert cp.returncode == 0, describe(cp)
    return cp.stdout


def nothing_left(sbx, b, cid):
    assert not (sbx.root / cid).exists(), f"state dir of {cid} left behind"
    for d in cgroup_dirs(b.config["linux"]["cgroupsPath"]):
        assert not os.path.exists(d), f"cgroup {d} left behind"


def replace_mount(b, dest, entry):
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != dest] + [entry]
    b.write()


# ---- a bind over /proc


def test_bind_over_proc_primitive(tmp_path):
    """A directory bound over /proc takes a write meant for procfs."""
    fake = tmp_path / "fakeproc"
    (fake / "self").mkdir(parents=True)
    (fake / "self" / "oom_score_adj").write_text("0\n")
    in_private_mountns(f"mount --rbind {fake} /proc; "
                       f"{sys.executable} -c 'open(\"/proc/self/oom_score_adj\", \"w\").write(\"123\")'")
    assert (fake / "self" / "oom_score_adj").read_text() == "123"


@pytest.mark.parametrize("dest", ["/proc", "//proc/.", "/proc/self", "/proc/thread-self/attr",
                                  "/proc/sys/net"])
def test_bind_over_proc_refused_at_create(sbx, bundle, tmp_path, dest):
    fake = tmp_path / "fakeproc"
    (fake / "self").mkdir(parents=True)
    (fake / "self" / "oom_score_adj").write_text("0\n")
    b = bundle(["true"], rootfs=False)
    b.rootfs.mkdir()
    b.config["process"]["oomScoreAdj"] = 123
    if dest in ("/proc", "//proc/."):
        replace_mount(b, "/proc", {"destination": dest, "type": "bind", "source": str(fake),
                                   "options": ["rbind"]})
    else:
        b.config["mounts"].append({"destination": dest, "type": "bind", "source": str(fake),
                                   "options": ["rbind"]})
        b.write()
    cid = sbx.new_id()
    cp = sbx("create", "--bundle", b, cid)
    assert cp.returncode != 0, describe(cp)
    idx = next(i for i, m in enumerate(b.config["mounts"]) if m["destination"] == dest)
    assert f"mounts[{idx}]" in cp.stderr and f"`{dest}`" in cp.stderr, describe(cp)
    assert "/proc" in cp.stderr, describe(cp)
    nothing_left(sbx, b, cid)
    assert (fake / "self" / "oom_score_adj").read_text() == "0\n"


def test_image_symlink_into_proc_refused(sbx, fast_bundle, tmp_path):
    """A harmless-looking destination that the image links into /proc."""
    fake = tmp_path / "fakeattr"
    fake.mkdir()
    b = fast_bundle(["true"])
    os.symlink("/proc/self/attr", b.rootfs / "data")
    b.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(fake),
                               "options": ["rbind"]})
    b.write()
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode != 0, describe(cp)
    assert "leads into /proc" in cp.stderr, describe(cp)


def test_oom_score_adj_still_written(sbx, bundle):
    b = bundle(["cat", "/proc/self/oom_score_adj"])
    b.config["process"]["oomScoreAdj"] = 123
    b.write()
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0 and cp.stdout == "123\n", describe(cp)


def test_lxcfs_file_binds_allowed(sbx, bundle, tmp_path):
    """Engines bind LXCFS's files over /proc/meminfo and the like."""
    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal: 42 kB\n")
    b = bundle(["sh", "-c", "head -1 /proc/meminfo; cat /proc/self/oom_score_adj"])
    b.config["process"]["oomScoreAdj"] = 7
    b.config["mounts"].append({"destination": "/proc/meminfo", "type": "bind", "source": str(fake),
                               "options": ["bind", "ro"]})
    b.write()
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0 and cp.stdout == "MemTotal: 42 kB\n7\n", describe(cp)


# ---- symlinked /proc and /sys, symlinked targets


def test_symlinked_mount_target_primitive(tmp_path):
    """A path-based mount follows a symlink planted in the rootfs out of it."""
    victim = tmp_path / "victim"
    victim.mkdir()
    root = tmp_path / "rootfs"
    root.mkdir()
    os.symlink(f"/../../..{victim}", root / "proc")
    out = in_private_mountns(f"mount -t tmpfs none {root}/proc; grep -c ' {victim} ' /proc/self/mountinfo")
    assert out.strip() == "1"


@pytest.mark.parametrize("dest,fstype", [("/proc", "proc"), ("/sys", "sysfs")])
@pytest.mark.parametrize("inside", [True, False])
def test_symlinked_proc_sys_refused(sbx, fast_bundle, tmp_path, dest, fstype, inside):
    b = fast_bundle(["true"])
    link = b.rootfs / dest.lstrip("/")
    if link.is_dir() and not link.is_symlink():
        link.rmdir()
    if inside:
        (b.rootfs / "elsewhere").mkdir()
        os.symlink("/elsewhere", link)
    else:
        os.symlink(f"/../../..{tmp_path}", link)
    cid = sbx.new_id()
    cp = sbx("create", "--bundle", b, cid)
    assert cp.returncode != 0, describe(cp)
    assert "symlink" in cp.stderr and dest in cp.stderr, describe(cp)
    nothing_left(sbx, b, cid)


def test_bind_target_symlink_stays_in_rootfs(sbx, fast_bundle, tmp_path):
    victim = tmp_path / "victim"  # on the host; must stay absent
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_text("from the volume\n")
    b = fast_bundle(["cat", "/mnt/file"])
    os.rmdir(b.rootfs / "mnt") if (b.rootfs / "mnt").is_dir() else None
    os.symlink(f"/../../..{victim}", b.rootfs / "mnt")
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(src),
                               "options": ["rbind"]})
    b.write()
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0 and cp.stdout == "from the volume\n", describe(cp)
    assert not victim.exists(), "the bind target was created on the host"
    assert (b.rootfs / str(victim).lstrip("/")).is_dir(), "the target was not made inside the rootfs"


# ---- masked paths


def test_mask_source_symlink_primitive(tmp_path):
    """Masking with a /dev/null that is a symlink exposes what it points to."""
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    root = tmp_path / "rootfs"
    (root / "dev").mkdir(parents=True)
    (root / "masked").write_text("")
    os.symlink(f"/../../..{secret}", root / "dev" / "null")
    out = in_private_mountns(f"mount --bind {root}/dev/null {root}/masked; cat {root}/masked")
    assert out == "host secret\n"


def test_mask_source_symlink_refused(sbx, fast_bundle, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    b = fast_bundle(["cat", "/etc/hostname"])
    (b.rootfs / "etc" / "hostname").write_text("image\n")
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/dev"]
    b.config["linux"]["maskedPaths"] = ["/etc/hostname"]
    b.write()
    dev = b.rootfs / "dev"
    dev.mkdir(exist_ok=True)
    if (dev / "null").exists() or (dev / "null").is_symlink():
        (dev / "null").unlink()
    os.symlink(f"/../../..{secret}", dev / "null")
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert "host secret" not in cp.stdout, describe(cp)
    assert cp.returncode != 0 or cp.stdout == "", describe(cp)
    assert secret.read_text() == "host secret\n"


def test_masked_path_symlink_stays_in_rootfs(sbx, fast_bundle, tmp_path):
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("host\n")
    b = fast_bundle(["sh", "-c", f"cat {hostfile}; echo end"])
    inside = b.rootfs / str(hostfile).lstrip("/")
    inside.parent.mkdir(parents=True)
    inside.write_text("inside\n")
    os.symlink(f"/../../..{hostfile}", b.rootfs / "etc" / "masklink")
    b.config["linux"]["maskedPaths"] = ["/etc/masklink"]
    b.write()
    cp = sbx("run", "--bundle", b, sbx.new_id())
    # The mask landed on the rootfs's copy (now empty), not on the host's.
    assert cp.returncode == 0 and cp.stdout == "end\n", describe(cp)
    assert hostfile.read_text() == "host\n"


# ---- /dev/console


def test_console_symlink_primitive(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("")
    root = tmp_path / "rootfs"
    (root / "dev").mkdir(parents=True)
    os.symlink(f"/../../..{victim}", root / "dev" / "console")
    out = in_private_mountns(f"mount --bind /dev/null {root}/dev/console; grep -c ' {victim} ' /proc/self/mountinfo")
    assert out.strip() == "1"


def test_console_symlink_not_followed(sbx, fast_bundle, tmp_path, console_socket):
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    b = fast_bundle(["sh", "-c", f"test -L /dev/console && echo LINK; test -c /dev/console && echo CHR; "
                     f"echo MI=$(grep -c ' {victim} ' /proc/self/mountinfo); echo hi > /dev/console; echo DONE"],
                    terminal=True)
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/dev"]
    b.config["root"]["readonly"] = False  # the image's own /dev, where its link is
    b.write()
    dev = b.rootfs / "dev"
    dev.mkdir(exist_ok=True)
    os.symlink(f"/../../..{victim}", dev / "console")
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, "--console-socket", console_socket.path, cid)
    master, _ = console_socket.receive()
    sbx.ok("start", cid)
    out = read_pty_until(master, "DONE\r")
    os.close(master)
    assert "LINK" not in out and "CHR" in out, out
    assert "MI=0" in out and "hi" in out, out
    assert victim.read_text() == "untouched\n"


# ---- features


def host_apparmor():
    try:
        return Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
    except OSError:
        return False


def host_selinux():
    return os.path.exists("/sys/fs/selinux/enforce")


def test_features_lsm_truthful(sbx, bundle):
    f = json.loads(sbx.ok("features").stdout)["linux"]
    assert f["apparmor"]["enabled"] is host_apparmor(), f["apparmor"]
    assert f["selinux"]["enabled"] is host_selinux(), f["selinux"]
    # And create agrees: a label for an LSM said absent is refused.
    for field, value, on in (("apparmorProfile", "unconfined", host_apparmor()),
                             ("selinuxLabel", "system_u:system_r:container_t:s0", host_selinux())):
        if on:
            continue
        b = bundle(["true"], rootfs=False)
        b.rootfs.mkdir()
        b.config["process"][field] = value
        b.write()
        cp = sbx("create", "--bundle", b, sbx.new_id())
        assert cp.returncode != 0 and "not enabled on this host" in cp.stderr, describe(cp)
