"""The state root and the seccomp compile cache cannot be poisoned by another
user (issue 9.5): a --root or <root>/.seccomp-cache that someone else can
write is refused, and a cache entry is bound to its key, so a permissive
profile's compiled filter renamed over a strict profile's key is a miss.
"""

import errno
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import describe, run_cmd

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]

NOBODY = 65534


def nobody_can_write(d):
    """The primitive: as nobody, create a file in D (then remove it)."""
    probe = Path(d) / "planted-by-nobody"
    cp = run_cmd(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups",
                  "/bin/sh", "-c", f"echo x > '{probe}'"])
    ok = cp.returncode == 0 and probe.exists()
    if probe.exists():
        probe.unlink()
    return ok


@pytest.fixture
def reachable_dir():
    """A fresh directory under /tmp, which nobody can reach (tmp_path cannot)."""
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")
    d = Path(tempfile.mkdtemp(prefix="sbxt-root-", dir="/tmp"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def profile(errno_syscalls, errno_ret):
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": list(errno_syscalls), "action": "SCMP_ACT_ERRNO", "errnoRet": errno_ret}]}


@pytest.mark.parametrize("how", ["owned-by-nobody", "mode-0777", "mode-0770", "symlink"])
def test_untrusted_root_refused(sbx, bundle, reachable_dir, how):
    root = reachable_dir / "root"
    root.mkdir(mode=0o700)
    if how == "owned-by-nobody":
        os.chown(root, NOBODY, NOBODY)
    elif how == "mode-0777":
        os.chmod(root, 0o777)
    elif how == "mode-0770":
        os.chown(root, 0, NOBODY)
        os.chmod(root, 0o770)
    if how == "symlink":
        # nobody's directory behind a link: whoever owns the target writes the state
        target = reachable_dir / "nobodys"
        target.mkdir()
        os.chown(target, NOBODY, NOBODY)
        root.rmdir()
        root.symlink_to(target)
        assert nobody_can_write(target)
    else:
        assert nobody_can_write(root), "the weakened root is not writable by nobody"
    b = bundle(["true"])
    cid = sbx.new_id("root")
    argv = [sbx.binary, "--root", str(root), "create", "--bundle", str(b), cid]
    cp = run_cmd(argv)
    assert cp.returncode != 0, describe(cp)
    want = {"owned-by-nobody": "owned by uid 65534", "mode-0777": "writable by group or others",
            "mode-0770": "writable by group or others", "symlink": "symbolic link"}[how]
    assert "state root" in cp.stderr and want in cp.stderr, describe(cp)
    assert sorted(p.name for p in root.iterdir()) == [], "create left something in the refused root"
    # the other commands refuse it too (a planted state could name any pid)
    for cmd in (["state", cid], ["list"], ["delete", "--force", cid]):
        cp = run_cmd([sbx.binary, "--root", str(root), *cmd])
        assert cp.returncode != 0 and "state root" in cp.stderr, describe(cp)


@pytest.mark.parametrize("how", ["owned-by-nobody", "mode-0777", "symlink"])
def test_untrusted_cache_dir_refused(sbx, bundle, reachable_dir, how):
    sbx.root.mkdir(mode=0o700)
    cache = sbx.root / ".seccomp-cache"
    if how == "symlink":
        target = reachable_dir / "cache"
        target.mkdir()
        os.chown(target, NOBODY, NOBODY)
        cache.symlink_to(target)
        assert nobody_can_write(target)
    else:
        # a cache dir nobody could fill before anything checked it
        target = reachable_dir / "cache"
        target.mkdir(mode=0o700)
        if how == "owned-by-nobody":
            os.chown(target, NOBODY, NOBODY)
        else:
            os.chmod(target, 0o777)
        assert nobody_can_write(target)
        shutil.move(str(target), str(cache))
    b = bundle(["true"])
    with b.edit() as c:
        c["linux"]["seccomp"] = profile(["mkdir", "mkdirat"], errno.EXDEV)
    cid = sbx.new_id("cache")
    cp = sbx("create", "--bundle", b, cid)
    assert cp.returncode != 0, describe(cp)
    assert "seccomp cache" in cp.stderr, describe(cp)
    assert not (sbx.root / cid).exists()
    if cache.is_symlink():
        cache.unlink()


def _bpf(sbx):
    d = sbx.root / ".seccomp-cache"
    return {p.name: p for p in d.glob("*.bpf")} if d.is_dir() else {}


def test_renamed_permissive_entry_over_strict_key(sbx, bundle):
    # strict: mkdir fails with EXDEV; permissive: only syslog is refused
    script = "mkdir /tmp/made.$$ && echo made"
    strict, permissive = bundle(["sh", "-c", script]), bundle(["sh", "-c", script])
    for b, p in ((strict, profile(["mkdir", "mkdirat"], errno.EXDEV)), (permissive, profile(["syslog"], errno.EPERM))):
        with b.edit() as c:
            c["root"]["readonly"] = False
            c["linux"]["seccomp"] = p
    run = lambda b: sbx("run", "--bundle", b, sbx.new_id("cache"), global_args=["--debug"])

    cp = run(permissive)
    assert cp.returncode == 0 and "made" in cp.stdout, describe(cp)
    (p_name,) = _bpf(sbx)
    cp = run(strict)
    assert cp.returncode != 0 and os.strerror(errno.EXDEV) in cp.stderr, describe(cp)
    (s_name,) = set(_bpf(sbx)) - {p_name}
    # The cache is what the strict container gets its filter from.
    cp = run(strict)
    assert f"cache hit {s_name[:-4]}" in cp.stderr, describe(cp)

    # The attack: the permissive program under the strict key.  The file is
    # root's and mode 0600, as every entry: only its content can tell.
    cache = sbx.root / ".seccomp-cache"
    permissive_bytes = (cache / p_name).read_bytes()
    os.rename(cache / p_name, cache / s_name)
    assert (cache / s_name).read_bytes() == permissive_bytes

    cp = run(strict)
    assert "cache hit" not in cp.stderr and "another key" in cp.stderr, describe(cp)
    assert cp.returncode != 0 and "made" not in cp.stdout, describe(cp)
    assert os.strerror(errno.EXDEV) in cp.stderr, "the strict profile was not enforced: " + describe(cp)
    # rewritten with the strict program, and a hit again
    assert (cache / s_name).read_bytes() != permissive_bytes
    cp = run(strict)
    assert f"cache hit {s_name[:-4]}" in cp.stderr and os.strerror(errno.EXDEV) in cp.stderr, describe(cp)
    leftovers = [p.name for p in cache.iterdir() if not p.name.endswith(".bpf")]
    assert leftovers == [], leftovers
