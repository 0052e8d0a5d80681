"""Filesystem snapshots (issue 10, section 2) with real busybox containers:
the opt-in writable overlay (org.sbxrun.rootfs.overlay / --overlay),
`snapshot create|list|delete|export|import`, `restore --from-snapshot` and
`create|run --from-snapshot SRCID:NAME`.

What a container sees is read from its own output (`run` in the foreground
prints it); what is on disk is read from the state directory
(<--root>/<id>/upper, snapshots/<name>/tree) and the bundle's rootfs."""

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import describe, wait_for

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]

MB = 1 << 20


@pytest.fixture
def bundle(fast_bundle):
    return fast_bundle


def writable(b, args, overlay=True):
    """A bundle with a writable root (the overlay annotation when OVERLAY)."""
    with b.edit() as c:
        c["root"]["readonly"] = False
        c["process"]["args"] = list(args)
        if overlay:
            c.setdefault("annotations", {})["org.sbxrun.rootfs.overlay"] = "true"
    return b


def tree_listing(path):
    """{relative path: (mode, size, link target)} of a directory tree."""
    out = {}
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            out[os.path.relpath(p, path)] = (
                st.st_mode, st.st_size, os.readlink(p) if stat.S_ISLNK(st.st_mode) else None)
    return out


# Changes a prepared container makes: a file added, one changed, one deleted
# (a whiteout in the upper dir), a hard link, a 100 MB sparse file with one
# block of data at 50 MB.
PREPARE = (
    "echo added > /added; echo changed > /etc/hosts; rm /etc/group; "
    "mkdir -p /data; echo linked > /data/a; ln /data/a /data/b; "
    "truncate -s 100M /sparse; echo middle | dd of=/sparse bs=1M seek=50 conv=notrunc 2>/dev/null; "
    "echo prepared"
)

CHECK = (
    "cat /added /etc/hosts; test -e /etc/group && echo group-present || echo group-gone; "
    "cat /data/b; stat -c 'links=%h' /data/a; "
    "dd if=/sparse bs=1M skip=50 count=1 2>/dev/null | head -c 6; echo; stat -c 'size=%s' /sparse"
)


def prepared(sbx, bundle, overlay=True):
    """A stopped container that ran PREPARE; its id and bundle."""
    b = writable(bundle(), ["sh", "-c", PREPARE], overlay=overlay)
    cid = sbx.new_id("prep")
    cp = sbx.ok("run", "--keep", "--bundle", b, cid)
    assert "prepared" in cp.stdout
    return cid, b


def check_output(out):
    lines = out.split("\n")
    assert lines[0] == "added" and lines[1] == "changed", out
    assert "group-gone" in out and "linked" in out and "links=2" in out, out
    assert "middle" in out and f"size={100 * MB}" in out, out


def test_overlay_lower_never_written_upper_in_state_dir(sbx, bundle):
    cid, b = None, bundle()
    before = tree_listing(b.rootfs)
    writable(b, ["sh", "-c", PREPARE + "; grep ' / / ' /proc/self/mountinfo"])
    cid = sbx.new_id("ovl")
    cp = sbx.ok("run", "--keep", "--bundle", b, cid)
    # Inside: / is an overlay whose upper dir is in the state directory.
    line = [l for l in cp.stdout.splitlines() if " / / " in l][0]
    assert " - overlay " in line, line
    upper = sbx.root / cid / "upper"
    assert f"upperdir={upper}" in line, line
    # The bundle's rootfs is exactly as before.
    assert tree_listing(b.rootfs) == before
    assert (b.rootfs / "etc/group").exists() and not (b.rootfs / "added").exists()
    # The changes are in upper/: a file, a whiteout for the deleted one.
    assert (upper / "added").read_text() == "added\n"
    wh = os.lstat(upper / "etc/group")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    sbx.ok("delete", cid)
    assert not (sbx.root / cid).exists()


def test_overlay_flag_and_bad_annotation(sbx, bundle):
    b = writable(bundle(), ["sh", "-c", "grep ' / / ' /proc/self/mountinfo"], overlay=False)
    cid = sbx.new_id("flag")
    cp = sbx.ok("run", "--overlay", "--bundle", b, cid)
    assert " - overlay " in cp.stdout
    for key, value, word in (("org.sbxrun.rootfs.overlay", "yes", "expected true or false"),
                             ("org.sbxrun.rootfs.other", "true", "unknown key")):
        with b.edit() as c:
            c["annotations"] = {key: value}
        cid = sbx.new_id("bad")
        cp = sbx.fail("run", "--bundle", b, cid)
        assert key in cp.stderr and word in cp.stderr, describe(cp)
        assert not (sbx.root / cid).exists()


@pytest.mark.parametrize("overlay", [True, False], ids=["overlay", "full"])
def test_snapshot_round_trip_and_forks(sbx, bundle, overlay):
    cid, b = prepared(sbx, bundle, overlay=overlay)
    if overlay:
        # An xattr on a changed file (set in the upper dir while stopped).
        os.setxattr(sbx.root / cid / "upper/added", "user.note", b"kept")
    else:
        os.setxattr(b.rootfs / "added", "user.note", b"kept")
    sbx.ok("snapshot", "create", cid, "s1")
    listing = sbx.ok("snapshot", "list", cid).stdout
    assert "s1" in listing and ("overlay" if overlay else "full") in listing
    tree = sbx.root / cid / "snapshots/s1/tree"
    assert os.getxattr(tree / "added", "user.note") == b"kept"
    sp = os.stat(tree / "sparse")
    assert sp.st_size == 100 * MB and sp.st_blocks * 512 < 4 * MB, sp
    man = json.loads((sbx.root / cid / "snapshots/s1/manifest.json").read_text())
    assert man["kind"] == ("overlay" if overlay else "full") and man["configDigest"].startswith("sha256:")

    # Several forks side by side: each sees the snapshot, changes stay apart.
    fb = writable(bundle(), ["sh", "-c", "sleep 600"], overlay=False)
    if overlay:
        with fb.edit() as c:  # the change set is over the source's lower
            c["root"]["path"] = str(b.rootfs)
    forks = [sbx.new_id("fork") for _ in range(3)]
    for i, f in enumerate(forks):
        sbx.ok("run", "-d", "--from-snapshot", f"{cid}:s1", "--bundle", fb, f)
        sbx.ok("exec", f, "sh", "-c", f"echo fork{i} > /mine; echo more >> /added")
    for i, f in enumerate(forks):
        cp = sbx.ok("exec", f, "sh", "-c", CHECK + "; cat /mine; cat /added | wc -l")
        check_output(cp.stdout.replace("added\nmore\n", "added\n", 1))
        assert f"fork{i}" in cp.stdout and cp.stdout.rstrip().endswith("2"), cp.stdout
        assert os.getxattr(sbx.root / f / ("upper/added" if overlay else "rootfs/added"), "user.note") == b"kept"
    # The snapshot itself is untouched by the forks.
    assert (tree / "added").read_text() == "added\n" and not (tree / "mine").exists()
    for f in forks:
        sbx.ok("delete", "--force", f)
        assert not (sbx.root / f).exists()


def test_snapshot_of_running_container_is_frozen_then_thawed(sbx, bundle):
    b = writable(bundle(), ["sh", "-c", "echo before > /f; while :; do date +%s%N > /tick; sleep 0.01; done"])
    cid = sbx.new_id("live")
    sbx.ok("run", "-d", "--bundle", b, cid)
    wait_for(lambda: (sbx.root / cid / "upper/f").exists(), what="the file written")
    sbx.ok("snapshot", "create", cid, "live")
    assert sbx.state(cid)["status"] == "running"
    assert (sbx.root / cid / "snapshots/live/tree/f").read_text() == "before\n"
    t0 = (sbx.root / cid / "upper/tick").read_text()
    wait_for(lambda: (sbx.root / cid / "upper/tick").read_text() != t0, what="the container to run on")
    sbx.ok("delete", "--force", cid)


@pytest.mark.parametrize("overlay", [True, False], ids=["overlay", "full"])
def test_restore_from_snapshot_resets_filesystem(sbx, bundle, overlay):
    cid, b = prepared(sbx, bundle, overlay=overlay)
    sbx.ok("snapshot", "create", cid, "base")
    where = sbx.root / cid / "upper" if overlay else b.rootfs
    (where / "added").write_text("later\n")
    (where / "extra").write_text("x")
    sbx.ok("restore", "--from-snapshot", "base", cid)
    assert (where / "added").read_text() == "added\n" and not (where / "extra").exists()
    assert sbx.state(cid)["status"] == "created"
    if not overlay:
        # The reset rootfs, used again by a new container of the bundle.
        sbx.ok("delete", "--force", cid)
        writable(b, ["sh", "-c", CHECK], overlay=False)
        check_output(sbx.ok("run", "--bundle", b, sbx.new_id("again")).stdout)
    # Only a stopped container is reset.
    b2 = writable(bundle(), ["sleep", "600"])
    live = sbx.new_id("busy")
    sbx.ok("run", "-d", "--bundle", b2, live)
    sbx.ok("snapshot", "create", live, "s")
    cp = sbx.fail("restore", "--from-snapshot", "s", live)
    assert "stopped" in cp.stderr


# Counts the lines of /log it finds, adds one, then waits to be looked at.
COUNTER = "cat /log 2>/dev/null | wc -l > /count; echo run >> /log; exec sleep 600"


@pytest.mark.parametrize("overlay", [True, False], ids=["overlay", "full"])
def test_restore_from_snapshot_makes_it_created_again(sbx, bundle, overlay):
    b = writable(bundle(), ["sh", "-c", COUNTER], overlay=overlay)
    cid = sbx.new_id("reset")
    sbx.ok("run", "-d", "--bundle", b, cid)
    first = sbx.state(cid)["pid"]
    # its one line written before it is killed (a loaded host may not have run it yet)
    wait_for(lambda: sbx("exec", cid, "cat", "/count").stdout.strip() == "0",
             what="the first run to count")
    sbx.ok("kill", cid, "KILL")
    wait_for(lambda: sbx.state(cid)["status"] == "stopped", what="the container to stop")
    sbx.ok("snapshot", "create", cid, "one-run")
    where = sbx.root / cid / "upper" if overlay else b.rootfs
    with open(where / "log", "a") as f:  # changes after the snapshot
        f.write("later\n" * 5)
    for _ in range(2):  # a reset container can be reset again
        sbx.ok("restore", "--from-snapshot", "one-run", cid)
        st = sbx.state(cid)
        assert st["status"] == "created" and st["pid"] != first, st
        assert st["bundle"] == str(b.path), st
        sbx.ok("start", cid)
        assert sbx.state(cid)["status"] == "running"
        # From inside: the process found the one line of the snapshot's run.
        seen = lambda: sbx.ok("exec", cid, "sh", "-c", "wc -l < /log; cat /count").stdout.split()
        wait_for(lambda: seen()[0] == "2", what="the process to count")
        assert seen() == ["2", "1"], seen()
        sbx.ok("kill", cid, "KILL")
        wait_for(lambda: sbx.state(cid)["status"] == "stopped", what="the container to stop")
        # The snapshot survives the reset; no holding directory is left.
        assert "one-run" in sbx.ok("snapshot", "list", cid).stdout
        assert not [n for n in os.listdir(sbx.root) if n.startswith(".reset-")]
    sbx.ok("delete", cid)
    assert not (sbx.root / cid).exists()


def test_restore_from_snapshot_failed_create_keeps_the_trees(sbx, bundle):
    cid, b = prepared(sbx, bundle)
    sbx.ok("snapshot", "create", cid, "s")
    # The bundle's config now fails where the saved one did not: the
    # saved one is used, so the reset still works.
    with b.edit() as c:
        c["process"]["args"] = ["sh", "-c", "exit 3"]
        c["annotations"]["org.sbxrun.rootfs.bogus"] = "x"
    sbx.ok("restore", "--from-snapshot", "s", cid)
    assert sbx.state(cid)["status"] == "created"
    sbx.ok("delete", "--force", cid)
    # A bundle whose rootfs is gone cannot be created again: the error names
    # the directory that keeps the snapshots and the reset upper dir.
    cid, b = prepared(sbx, bundle)
    sbx.ok("snapshot", "create", cid, "s")
    os.rename(b.rootfs, str(b.rootfs) + ".away")
    try:
        cp = sbx.fail("restore", "--from-snapshot", "s", cid)
    finally:
        os.rename(str(b.rootfs) + ".away", b.rootfs)
    held = [n for n in os.listdir(sbx.root) if n.startswith(".reset-")]
    assert len(held) == 1 and held[0] in cp.stderr, describe(cp)
    keep = sbx.root / held[0]
    assert (keep / "snapshots/s/manifest.json").exists() and (keep / "upper/added").read_text() == "added\n"
    assert not (sbx.root / cid).exists()
    shutil.rmtree(keep)


def corrupt_variants():
    return ["appended", "truncated", "removed", "manifest-edited", "manifest-missing",
            "same-size", "hole-filled", "digest-edited"]


# What a content change names in the error (the metadata check names none).
NAMED = {"same-size": "/added", "hole-filled": "/sparse", "digest-edited": "/etc/hosts"}


@pytest.mark.parametrize("how", corrupt_variants())
def test_corrupted_snapshot_refused_nothing_changes(sbx, bundle, how):
    cid, b = prepared(sbx, bundle)
    sbx.ok("snapshot", "create", cid, "s")
    snap = sbx.root / cid / "snapshots/s"
    if how == "appended":
        with open(snap / "tree/added", "a") as f:
            f.write("evil")
    elif how == "truncated":
        os.truncate(snap / "tree/sparse", MB)
    elif how == "removed":
        os.unlink(snap / "tree/data/b")
    elif how == "manifest-edited":
        m = json.loads((snap / "manifest.json").read_text())
        m["bytes"] += 1
        (snap / "manifest.json").write_text(json.dumps(m))
    elif how == "same-size":  # the size, mode and times stay: only the bytes differ
        st = os.stat(snap / "tree/added")
        with open(snap / "tree/added", "r+") as f:
            f.write("evil!\n")
        os.utime(snap / "tree/added", ns=(st.st_atime_ns, st.st_mtime_ns))
    elif how == "hole-filled":  # a byte in the sparse file's hole
        with open(snap / "tree/sparse", "r+b") as f:
            f.seek(10 * MB)
            f.write(b"x")
    elif how == "digest-edited":
        m = json.loads((snap / "manifest.json").read_text())
        m["files"]["/etc/hosts"] = "0" * 64
        (snap / "manifest.json").write_text(json.dumps(m))
    else:
        os.unlink(snap / "manifest.json")
    upper = sbx.root / cid / "upper"
    (upper / "added").write_text("current\n")
    before = tree_listing(upper)
    before_dir = os.listdir(sbx.root / cid)
    named = NAMED.get(how, 'snapshot "s"')
    cp = sbx.fail("restore", "--from-snapshot", "s", cid)
    assert 'snapshot "s"' in cp.stderr and named in cp.stderr, describe(cp)
    assert tree_listing(upper) == before and (upper / "added").read_text() == "current\n"
    assert sbx.state(cid)["status"] == "stopped"
    assert sorted(os.listdir(sbx.root / cid)) == sorted(before_dir), "a leftover of the refused copy"
    fork = sbx.new_id("nofork")
    fb = writable(bundle(), ["true"], overlay=False)
    with fb.edit() as c:
        c["root"]["path"] = str(b.rootfs)
    cp = sbx.fail("run", "--from-snapshot", f"{cid}:s", "--bundle", fb, fork)
    assert 'snapshot "s"' in cp.stderr and named in cp.stderr, describe(cp)
    assert not (sbx.root / fork).exists()
    with tempfile.TemporaryFile() as out:
        cp = sbx("snapshot", "export", cid, "s", stdout=out, stderr=subprocess.PIPE)
        assert cp.returncode != 0 and 'snapshot "s"' in cp.stderr and named in cp.stderr, cp.stderr
        assert out.seek(0, os.SEEK_END) == 0, "a refused export wrote a stream"


def test_kill9_during_create_leaves_nothing_visible(sbx, bundle):
    cid, b = prepared(sbx, bundle)
    with open(sbx.root / cid / "upper/big", "wb") as f:  # real data: a long copy
        chunk = os.urandom(MB)
        for _ in range(400):
            f.write(chunk)
    snaps = sbx.root / cid / "snapshots"
    p = sbx.popen("snapshot", "create", cid, "half")
    wait_for(lambda: snaps.is_dir() and any(n.startswith(".tmp-") for n in os.listdir(snaps)),
             what="the copy to start", interval=0.001)
    time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL, "snapshot create finished before the kill"
    assert not (snaps / "half").exists()
    assert "half" not in sbx.ok("snapshot", "list", cid).stdout
    sbx.fail("restore", "--from-snapshot", "half", cid)
    # The next create removes the leftover and succeeds under the same name.
    os.unlink(sbx.root / cid / "upper/big")
    sbx.ok("snapshot", "create", cid, "half")
    assert sorted(os.listdir(snaps)) == ["half"]


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
def test_snapshot_synced_before_it_is_published(sbx, bundle, tmp_path):
    """The snapshot's filesystem is synced (syncfs of its temporary
    directory: every file and directory in it) before the rename that makes
    it visible, and snapshots/ is fsync'd after it (the rename itself)."""
    cid, _ = prepared(sbx, bundle)
    log = tmp_path / "strace"
    subprocess.run(["strace", "-f", "-y", "-qq", "-e", "trace=fsync,syncfs,renameat2", "-o", log,
                    *sbx.argv("snapshot", "create", cid, "durable")], check=True, capture_output=True)
    lines = log.read_text().splitlines()
    ren = [i for i, l in enumerate(lines) if "renameat2(" in l and "durable" in l]
    assert len(ren) == 1, lines
    tmp = lines[ren[0]].split('"')[1]  # renameat2(fd</.../snapshots>, ".tmp-durable-xxxxxx", ...
    snaps = sbx.root / cid / "snapshots"
    fd_path = lambda l: l.split("<", 1)[1].split(">", 1)[0]
    assert any("syncfs(" in l and fd_path(l) == str(snaps / tmp) for l in lines[: ren[0]]), lines
    assert any("fsync(" in l and fd_path(l) == str(snaps) for l in lines[ren[0]:]), \
        "snapshots/ not synced after the rename"
    assert (snaps / "durable/manifest.json").exists()


@pytest.mark.parametrize("name", ["../x", "/", "", "a/b", ".hidden", "x" * 1025, "bad\nname"])
def test_bad_snapshot_names_refused(sbx, bundle, name):
    cid, b = prepared(sbx, bundle)
    cp = sbx.fail("snapshot", "create", cid, name)
    assert "snapshot name" in cp.stderr, describe(cp)
    assert not (sbx.root / cid / "snapshots").exists() or os.listdir(sbx.root / cid / "snapshots") == []
    for args in (("snapshot", "delete", cid, name), ("restore", "--from-snapshot", name, cid),
                 ("snapshot", "import", cid, name)):
        cp = sbx.fail(*args, input="")
        assert "snapshot name" in cp.stderr, describe(cp)
    cp = sbx.fail("run", "--from-snapshot", f"{cid}:{name}", "--bundle", b, sbx.new_id("n"))
    assert "snapshot name" in cp.stderr, describe(cp)


def test_export_import_round_trip(sbx, bundle, tmp_path):
    cid, b = prepared(sbx, bundle)
    os.setxattr(sbx.root / cid / "upper/added", "user.note", b"kept")
    sbx.ok("snapshot", "create", cid, "s")
    archive = tmp_path / "s.tar"
    with open(archive, "wb") as f:
        cp = sbx("snapshot", "export", cid, "s", stdout=f)
    assert cp.returncode == 0
    # 100 MB sparse, exported as its data only.
    assert archive.stat().st_size < 2 * MB
    # GNU tar reads it: the sparse file at full size, the whiteout a 0,0 device.
    listing = subprocess.run(["tar", "tvf", archive], capture_output=True, text=True, check=True).stdout
    assert "tree/etc/group" in listing and "0,0" in listing and str(100 * MB) in listing
    other, _ = prepared(sbx, bundle)
    with open(archive, "rb") as f:
        sbx.ok("snapshot", "import", other, "copy", stdin=f)
    t = sbx.root / other / "snapshots/copy/tree"
    assert os.getxattr(t / "added", "user.note") == b"kept"
    assert os.stat(t / "data/a").st_ino == os.stat(t / "data/b").st_ino
    assert os.stat(t / "sparse").st_blocks * 512 < 4 * MB
    fb = writable(bundle(), ["sh", "-c", CHECK], overlay=False)
    with fb.edit() as c:
        c["root"]["path"] = str(b.rootfs)
    check_output(sbx.ok("run", "--from-snapshot", f"{other}:copy", "--bundle", fb, sbx.new_id("imp")).stdout)
    # A truncated stream is refused and leaves nothing.
    data = archive.read_bytes()
    cp = sbx.fail("snapshot", "import", other, "cut", input=data[: len(data) // 2])
    assert "truncated" in cp.stderr or "does not match" in cp.stderr, describe(cp)
    assert sorted(os.listdir(sbx.root / other / "snapshots")) == ["copy"]
    # A stream whose file data was changed (same size) is refused, naming the file.
    at = data.index(b"linked\n")
    cp = sbx.fail("snapshot", "import", other, "evil", input=data[:at] + b"evil!!\n" + data[at + 7:])
    assert 'snapshot "evil"' in cp.stderr and "/data/a" in cp.stderr, describe(cp)
    assert sorted(os.listdir(sbx.root / other / "snapshots")) == ["copy"]


def test_import_refuses_paths_outside_the_snapshot(sbx, bundle, tmp_path):
    cid, _ = prepared(sbx, bundle)
    evil = tmp_path / "evil"
    (evil / "tree").mkdir(parents=True)
    (evil / "manifest.json").write_text("{}")
    os.symlink("/tmp", evil / "tree/link")
    for member in ("../escape", "tree/link/escape"):
        arch = tmp_path / "evil.tar"
        extra = tmp_path / "escape"
        extra.write_text("x")
        args = ["tar", "cf", arch, "-C", evil, "manifest.json", "tree"]
        subprocess.run(args, check=True)
        # Append an entry under the hostile name.
        subprocess.run(["tar", "rf", arch, "-P", "--transform", f"s,.*,{member},", "-C", tmp_path, "escape"],
                       check=True)
        cp = sbx.fail("snapshot", "import", cid, "evil", stdin=open(arch, "rb"))
        assert "import" in cp.stderr, describe(cp)
        assert not os.path.exists("/tmp/escape")
        assert os.listdir(sbx.root / cid / "snapshots") == []


def test_with_process_of_stopped_container_refused(sbx, bundle):
    cid, _ = prepared(sbx, bundle)
    cp = sbx.fail("snapshot", "create", "--with-process", cid, "p")
    assert "--with-process" in cp.stderr and "is stopped" in cp.stderr, describe(cp)
    # without --from-snapshot, restore is CRIU's: a stopped container with no image
    cp = sbx.fail("restore", cid)
    assert "checkpoint" in cp.stderr or "CRIU" in cp.stderr, cp.stderr
    assert not (sbx.root / cid / "snapshots").exists()


def test_snapshot_delete(sbx, bundle):
    cid, _ = prepared(sbx, bundle)
    name = sbx.ok("snapshot", "create", cid).stdout.strip()
    assert name.startswith("snap-")
    sbx.ok("snapshot", "delete", cid, name)
    assert os.listdir(sbx.root / cid / "snapshots") == []
    cp = sbx.fail("snapshot", "delete", cid, name)
    assert "no snapshot" in cp.stderr


def test_snapshot_of_paused_container_stays_paused(sbx, bundle):
    b = writable(bundle(), ["sh", "-c", "echo x > /f; sleep 600"])
    cid = sbx.new_id("paused")
    sbx.ok("run", "-d", "--bundle", b, cid)
    wait_for(lambda: (sbx.root / cid / "upper/f").exists(), what="the file written")
    sbx.ok("pause", cid)
    sbx.ok("snapshot", "create", cid, "p")
    assert sbx.state(cid)["status"] == "paused"
    assert (sbx.root / cid / "snapshots/p/tree/f").read_text() == "x\n"
    sbx.ok("resume", cid)
    sbx.ok("delete", "--force", cid)


def criu_works():
    if not shutil.which("criu"):
        return False
    return subprocess.run(["criu", "check"], capture_output=True, timeout=60).returncode == 0


@pytest.mark.parametrize("criu", ["default", "missing"])
def test_with_process_fails_fast_where_criu_cannot_work(sbx, bundle, criu):
    """snapshot create --with-process where CRIU cannot work (this host's
    kernel is newer than its criu; or --criu names no binary): an immediate
    error with CRIU's reason, nothing left (no snapshot, no snapshots/, no
    CRIU work dir), and the container running, not left frozen."""
    if criu == "default" and criu_works():
        pytest.skip("CRIU works here: tests/integration/test_snapshot_process.py covers it")
    glob = ["--criu", "/nonexistent/criu"] if criu == "missing" else []
    b = writable(bundle(), ["sh", "-c", "echo x > /f; while :; do date +%s%N > /tick; sleep 0.01; done"])
    cid = sbx.new_id("wp")
    sbx.ok("run", "-d", "--bundle", b, cid)
    tick = sbx.root / cid / "upper/tick"
    wait_for(tick.exists, what="the container to write")
    before = sorted(os.listdir(sbx.root / cid))
    t = time.monotonic()
    cp = sbx.fail(*glob, "snapshot", "create", "--with-process", cid, "p", timeout=30)
    assert time.monotonic() - t < 10, "--with-process must fail at once"
    assert "snapshot create --with-process" in cp.stderr and "CRIU cannot work on this host" in cp.stderr, \
        describe(cp)
    assert "hint" in cp.stderr and "criu" in cp.stderr.lower(), describe(cp)
    if criu == "missing":
        assert "/nonexistent/criu" in cp.stderr, describe(cp)
    assert sorted(os.listdir(sbx.root / cid)) == before, "something was left in the state dir"
    assert not (sbx.root / cid / "snapshots").exists()
    st = sbx.state(cid)
    assert st["status"] == "running", st
    t0 = tick.read_text()
    wait_for(lambda: tick.read_text() != t0, what="the container to run on (thawed)")
    # A plain snapshot still works, and lists without a process image.
    sbx.ok("snapshot", "create", cid, "fs")
    line = [l for l in sbx.ok("snapshot", "list", cid).stdout.splitlines() if l.startswith("fs ")][0]
    assert line.split()[1:3] == ["overlay", "no"], line
    sbx.ok("delete", "--force", cid)


# A stand-in for criu, enough for the host: `--version`, `check`, and a
# dump that records its arguments and the freezer state of the cgroup it
# was given, then writes a few image files (or fails, when @REC@/fail
# exists); anything else (restore) fails as CRIU does, in its log.
FAKE_CRIU = r"""#!/bin/sh
log=/dev/null; imgs=; fc=
for a; do
	case $a in
	--log-file=*) log=${a#*=} ;;
	--images-dir=*) imgs=${a#*=} ;;
	--freeze-cgroup=*) fc=${a#*=} ;;
	esac
done
case $1 in
--version) echo "Version: 3.99-fake"; exit 0 ;;
check) echo "Looks good."; exit 0 ;;
dump)
	echo "$*" >@REC@/args
	{ cat "$fc/freezer.state" || grep '^frozen' "$fc/cgroup.events"; } >@REC@/frozen 2>&1
	if [ -e @REC@/fail ]; then echo "Error (fake.c:1): the test refuses this dump" >"$log"; exit 1; fi
	echo inventory >"$imgs/inventory.img"; echo core >"$imgs/core-1.img"
	head -c 100000 /dev/urandom >"$imgs/pages-1.img"
	exit 0 ;;
esac
echo "Error (fake.c:2): the stand-in cannot $1" >"$log"
exit 1
"""


@pytest.fixture
def stand_in(tmp_path):
    """FAKE_CRIU as a binary, and the directory it records into."""
    rec = tmp_path / "rec"
    rec.mkdir()
    criu = tmp_path / "fake-criu"
    criu.write_text(FAKE_CRIU.replace("@REC@", str(rec)))
    criu.chmod(0o755)
    return criu, rec


def test_with_process_around_a_stand_in_criu(sbx, bundle, tmp_path, stand_in):
    """What sbxrun does around CRIU, on any host: the dump runs with the
    container frozen (--freeze-cgroup of its frozen cgroup, --leave-running)
    and is thawed after; a dump that fails publishes nothing and names its
    log; the image is under the manifest (list, export; a changed or
    missing image file, or one that is not a regular file, refused by name
    with nothing changed; a fork refused; never imported); a restore whose
    CRIU fails leaves the files reset, the container stopped."""
    criu, rec = stand_in
    g = ["--criu", str(criu)]
    b = writable(bundle(), ["sh", "-c", "echo x > /f; while :; do date +%s%N > /tick; sleep 0.01; done"])
    cid = sbx.new_id("fake")
    sbx.ok("run", "-d", "--bundle", b, cid)
    upper, snaps = sbx.root / cid / "upper", sbx.root / cid / "snapshots"
    wait_for((upper / "tick").exists, what="the container to write")

    def runs_on():
        assert sbx.state(cid)["status"] == "running"
        t0 = (upper / "tick").read_text()
        wait_for(lambda: (upper / "tick").read_text() != t0, what="the container to run on (thawed)")

    (rec / "fail").touch()
    cp = sbx.fail(*g, "snapshot", "create", "--with-process", cid, "bad")
    assert "the test refuses this dump" in cp.stderr and "snapshot-criu/dump.log" in cp.stderr, describe(cp)
    assert (sbx.root / cid / "snapshot-criu/dump.log").exists()
    assert os.listdir(snaps) == [], "a failed dump left a snapshot"
    runs_on()
    (rec / "fail").unlink()
    sbx.ok(*g, "snapshot", "create", "--with-process", cid, "s")
    args = (rec / "args").read_text()
    assert "--leave-running" in args and "--freeze-cgroup=" in args, args
    assert (rec / "frozen").read_text().strip() in ("FROZEN", "frozen 1"), (rec / "frozen").read_text()
    runs_on()
    snap = snaps / "s"
    man = json.loads((snap / "manifest.json").read_text())
    names = ["core-1.img", "inventory.img", "pages-1.img", "sbx-criu.txt"]  # the last one sbxrun's
    assert sorted(man["process"]["files"]) == ["/" + n for n in names], man
    assert man["process"]["bytes"] == sum(os.stat(snap / "process" / n).st_size for n in names)
    assert not (sbx.root / cid / "snapshot-criu").exists()
    line = [l for l in sbx.ok("snapshot", "list", cid).stdout.splitlines() if l.startswith("s ")][0]
    assert line.split()[1:3] == ["overlay", "yes"], line

    # Exported with its image, but an image is never imported: a CRIU image
    # is whatever its author wrote (credentials, seccomp, mounts, a log
    # symlink CRIU would write through), and its manifest is the author's.
    archive = tmp_path / "s.tar"
    with open(archive, "wb") as f:
        assert sbx("snapshot", "export", cid, "s", stdout=f).returncode == 0
    with open(archive, "rb") as f:
        cp = sbx.fail("snapshot", "import", cid, "s2", stdin=f)
    assert "process/" in cp.stderr and "not imported" in cp.stderr, describe(cp)
    assert sorted(os.listdir(snaps)) == ["s"], os.listdir(snaps)

    fb = writable(bundle(), ["true"], overlay=False)
    with fb.edit() as c:
        c["root"]["path"] = str(b.rootfs)
    fork = sbx.new_id("nofork")
    cp = sbx.fail("run", "--from-snapshot", f"{cid}:s", "--bundle", fb, fork)
    assert 'snapshot "s" has a process image' in cp.stderr, describe(cp)
    assert not (sbx.root / fork).exists()

    sbx.ok("kill", cid, "KILL")
    sbx.wait_status(cid, "stopped")
    (upper / "f").write_text("later\n")
    img = snap / "process"
    pages, core = (img / "pages-1.img").read_bytes(), (img / "core-1.img").read_bytes()
    core_mode = (img / "core-1.img").stat().st_mode & 0o7777
    with open(img / "pages-1.img", "r+b") as f:
        f.seek(500)
        f.write(bytes([pages[500] ^ 0xFF]))  # a changed byte (random content may hold "!")
    cp = sbx.fail(*g, "restore", "--detach", "--from-snapshot", "s", cid)
    assert 'snapshot "s"' in cp.stderr and "/pages-1.img" in cp.stderr, describe(cp)
    (img / "pages-1.img").write_bytes(pages)
    os.unlink(img / "core-1.img")
    cp = sbx.fail(*g, "restore", "--detach", "--from-snapshot", "s", cid)
    assert 'snapshot "s"' in cp.stderr and "/core-1.img" in cp.stderr and "missing" in cp.stderr, describe(cp)
    (img / "core-1.img").write_bytes(core)
    os.chmod(img / "core-1.img", core_mode)
    # Not CRIU's: a symlink where CRIU would write its log.
    victim = tmp_path / "victim"
    victim.write_text("host file\n")
    os.symlink(victim, img / "restore.log")
    cp = sbx.fail(*g, "restore", "--detach", "--from-snapshot", "s", cid)
    assert "`restore.log` is not a regular file" in cp.stderr, describe(cp)
    os.unlink(img / "restore.log")
    assert victim.read_text() == "host file\n"
    assert (upper / "f").read_text() == "later\n" and sbx.state(cid)["status"] == "stopped"
    assert not (sbx.root / cid / "snapshot-restore").exists()

    cp = sbx.fail(*g, "restore", "--detach", "--from-snapshot", "s", cid)
    assert "the stand-in cannot restore" in cp.stderr and "processes are not restored" in cp.stderr, describe(cp)
    assert (upper / "f").read_text() == "x\n", "the files were not reset"
    assert sbx.state(cid)["status"] == "stopped"
    assert (sbx.root / cid / "snapshot-restore/inventory.img").exists()
    sbx.ok("delete", "--force", cid)
    assert not (sbx.root / cid).exists()


def test_with_process_of_paused_container_stays_paused(sbx, bundle, stand_in):
    criu, rec = stand_in
    b = writable(bundle(), ["sh", "-c", "echo x > /f; sleep 600"])
    cid = sbx.new_id("fakep")
    sbx.ok("run", "-d", "--bundle", b, cid)
    wait_for(lambda: (sbx.root / cid / "upper/f").exists(), what="the file written")
    sbx.ok("pause", cid)
    sbx.ok("--criu", criu, "snapshot", "create", "--with-process", cid, "p")
    assert (rec / "frozen").read_text().strip() in ("FROZEN", "frozen 1")
    assert sbx.state(cid)["status"] == "paused"
    assert (sbx.root / cid / "snapshots/p/process/inventory.img").exists()
    sbx.ok("resume", cid)
    sbx.ok("delete", "--force", cid)
