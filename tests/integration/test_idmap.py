"""Idmapped bind mounts (config.md mounts: `idmap`, `ridmap`, a mount's
`uidMappings`/`gidMappings`): the runtime makes a detached copy of the
source (open_tree OPEN_TREE_CLONE), idmaps it (mount_setattr
MOUNT_ATTR_IDMAP with a user namespace made for the mapping) and the init
attaches it.  Observed from inside with stat; bad entries are refused at
create naming the field."""

import os
import subprocess

import pytest

from conftest import describe
from test_spec_fields import refused

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]

MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


@pytest.fixture
def src(tmp_path):
    """A host directory holding f (owned by host uid/gid 1000)."""
    d = tmp_path / "src"
    d.mkdir()
    (d / "f").write_text("x\n")
    os.chown(d / "f", 1000, 1000)
    d.chmod(0o777)
    return d


def _userns(c):
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = MAP
    c["linux"]["gidMappings"] = MAP


def _bind(c, src, dest, options, rootfs=None, **extra):
    if rootfs is not None:
        (rootfs / dest.lstrip("/")).mkdir(exist_ok=True)
    c["mounts"].append({"destination": dest, "type": "bind", "source": str(src), "options": options, **extra})


def test_idmap_shows_the_host_owner_inside_the_user_namespace(sbx, public_bundle, src):
    """idmap with the container's mapping (0 -> 100000): host uid 1000 is
    1000 inside (65534, unmapped, through a plain bind), and a file the
    container's root creates there belongs to host root."""
    b = public_bundle(["sh", "-c", "stat -c %u:%g /idmapped/f /plain/f; touch /idmapped/made"])
    with b.edit() as c:
        _userns(c)
        _bind(c, src, "/idmapped", ["bind", "idmap"], b.rootfs)
        _bind(c, src, "/plain", ["bind"], b.rootfs)
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    assert cp.stdout.split() == ["1000:1000", "65534:65534"], describe(cp)
    st = os.stat(src / "made")
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert os.stat(src / "f").st_uid == 1000, "the host file changed owner"


def test_mount_mappings_of_their_own(sbx, public_bundle, src):
    """The mount's uidMappings/gidMappings (1000 -> 102000, which the
    container sees as 2000) instead of the container's."""
    b = public_bundle(["stat", "-c", "%u:%g", "/m/f"])
    own = [{"containerID": 1000, "hostID": 102000, "size": 1}]
    with b.edit() as c:
        _userns(c)
        _bind(c, src, "/m", ["bind"], b.rootfs, uidMappings=own, gidMappings=own)
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    assert cp.stdout.split() == ["2000:2000"], describe(cp)


def test_ridmap_covers_submounts(sbx, public_bundle, src):
    """rbind of a source with a mount below it: ridmap idmaps the submount
    too, idmap only the top."""
    sub = src / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "sbxtest-idmap", str(sub)], check=True)
    try:
        (sub / "g").write_text("y\n")
        os.chown(sub / "g", 1000, 1000)
        b = public_bundle(["stat", "-c", "%u", "/r/sub/g", "/i/sub/g", "/i/f"])
        with b.edit() as c:
            _userns(c)
            _bind(c, src, "/r", ["rbind", "ridmap"], b.rootfs)
            _bind(c, src, "/i", ["rbind", "idmap"], b.rootfs)
        cp = sbx("run", "--bundle", b, sbx.new_id())
    finally:
        subprocess.run(["umount", str(sub)], check=True)
    assert cp.returncode == 0, describe(cp)
    assert cp.stdout.split() == ["1000", "65534", "1000"], describe(cp)


@pytest.mark.parametrize("edit, words", [
    (lambda c, s: c["mounts"].append({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                                      "options": ["idmap"]}),
     ["(/t)", "bind mounts only", "tmpfs"]),
    (lambda c, s: _bind(c, s, "/m", ["bind"], uidMappings=[{"containerID": 0, "hostID": 100000, "size": 1}]),
     ["gidMappings is required with", "uidMappings"]),
    (lambda c, s: _bind(c, s, "/m", ["bind"], uidMappings=[{"containerID": 0, "hostID": 100000, "size": 0}],
                        gidMappings=[{"containerID": 0, "hostID": 100000, "size": 1}]),
     ["uidMappings[0]", "size 0", "greater than 0"]),
    (lambda c, s: _bind(c, s, "/m", ["bind"], uidMappings=[{"containerID": 0, "hostID": 4294967295, "size": 2}],
                        gidMappings=[{"containerID": 0, "hostID": 100000, "size": 1}]),
     ["uidMappings[0]", "hostID 4294967295", "2^32-1"]),
], ids=["not-a-bind", "uid-without-gid", "size-0", "overflow"])
def test_bad_idmapped_mounts_refused(sbx, public_bundle, src, edit, words):
    b = public_bundle(["true"])
    with b.edit() as c:
        _userns(c)
        edit(c, src)
    stderr = refused(sbx, b, *words)
    assert "mounts[" in stderr


def test_idmap_without_a_user_namespace_refused(sbx, bundle, src):
    """Plain idmap takes the container's user namespace: none, an error."""
    b = bundle(["true"])
    with b.edit() as c:
        _bind(c, src, "/m", ["bind", "idmap"])
    refused(sbx, b, "idmap without mounts[", "user namespace")


def test_idmap_on_a_filesystem_without_support_refused(sbx, public_bundle):
    """procfs has no idmapped mounts: the kernel's EINVAL, named."""
    b = public_bundle(["true"])
    with b.edit() as c:
        _userns(c)
        _bind(c, "/proc/sys", "/m", ["bind", "idmap"], b.rootfs)
    refused(sbx, b, "does not support idmapped mounts", "/m")


def test_idmapped_source_through_an_image_symlink_is_refused(sbx, public_bundle, tmp_path):
    """The attack: the image ships `vol -> /a/root/owned/host/dir`, and the
    config binds `rootfs/vol` (a path into the unpacked image) idmapped.
    Through the resolved path itself the container's root plants a file
    owned by host root in a 0700 root directory (the primitive); through
    the image's symlink create is refused naming the mount, and nothing is
    planted."""
    secret = tmp_path / "hostsecret"
    secret.mkdir(mode=0o700)
    b = public_bundle(["touch", "/mnt/planted"])
    (b.rootfs / "vol").symlink_to(secret)
    with b.edit() as c:
        _userns(c)
        _bind(c, secret, "/mnt", ["bind", "idmap"], b.rootfs)
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    assert os.stat(secret / "planted").st_uid == 0
    os.unlink(secret / "planted")

    with b.edit() as c:
        c["mounts"][-1]["source"] = "rootfs/vol"
    cid = sbx.new_id()
    cp = sbx("run", "--bundle", b, cid)
    assert cp.returncode != 0 and "mounts[" in cp.stderr and "symlink" in cp.stderr, describe(cp)
    assert not os.path.exists(secret / "planted")
    assert not os.path.exists(sbx.root / cid)
