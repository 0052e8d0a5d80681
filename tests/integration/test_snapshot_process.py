"""Snapshots with a process image (issue 10, section 2): `snapshot create
--with-process` (a CRIU dump, leave-running, taken while the container is
frozen for the filesystem copy) and `restore --from-snapshot` of such a
snapshot (the filesystem reset, then the processes restored).

Needs a kernel the installed criu supports: skips with the reason elsewhere
(tests/integration/test_snapshot.py has the fail-fast path of such hosts);
tests/vm/run-criu.sh runs it in a guest.  One container per kind of
snapshot: the counter's count is read from its upper dir in the state
directory (overlay) or from the bundle's rootfs (full)."""

import json
import os
import subprocess
import time

import pytest

from conftest import describe, wait_for
from test_checkpoint import COUNTER, criu, tail  # noqa: F401  (criu is a fixture)

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("snapshot", "checkpoint", "restore"),
              pytest.mark.usefixtures("seccomp_cache_cleanup")]


def read_count(path):
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def wait_above(path, n, timeout=60.0):
    return wait_for(lambda: read_count(path) > n and read_count(path), timeout=timeout,
                    what=f"the counter above {n}", interval=0.05)


def flip_byte(path):
    """One byte changed, size and times kept."""
    st = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(st.st_size // 2)
        b = f.read(1)
        f.seek(st.st_size // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("kind", ["full", "overlay"])
def test_snapshot_with_process_then_restore(sbx, bundle, tmp_path, criu, kind):
    b = bundle(COUNTER)
    with b.edit() as c:
        c["root"]["readonly"] = False
        if kind == "overlay":
            c.setdefault("annotations", {})["org.sbxrun.rootfs.overlay"] = "true"
    run_case(sbx, b, tmp_path, kind)


def run_case(sbx, b, tmp_path, kind):
    cid = sbx.new_id("sproc")
    sbx.ok("create", "--bundle", b, cid)
    sbx.ok("start", cid)
    state_dir = sbx.root / cid
    where = state_dir / "upper" if kind == "overlay" else b.rootfs
    live = where / "count"
    wait_above(live, 5)
    sbx.ok("exec", cid, "sh", "-c", "echo before > /marker")
    pid = sbx.state(cid)["pid"]

    cp = sbx("snapshot", "create", "--with-process", cid, "s1", timeout=300)
    assert cp.returncode == 0, describe(cp) + tail(state_dir / "snapshot-criu/dump.log")
    # Still running (thawed, same init), and it counts on.
    st = sbx.state(cid)
    assert st["status"] == "running" and st["pid"] == pid, st
    snap = state_dir / "snapshots/s1"
    n = read_count(snap / "tree/count")
    assert n > 5 and (snap / "tree/marker").read_text() == "before\n"
    assert (snap / "process/inventory.img").exists()
    man = json.loads((snap / "manifest.json").read_text())
    assert "/inventory.img" in man["process"]["files"], man.get("process")
    assert not (state_dir / "snapshot-criu").exists(), "CRIU's work dir left after a good dump"
    later = wait_above(live, n + 20)
    line = [l for l in sbx.ok("snapshot", "list", cid).stdout.splitlines() if l.startswith("s1 ")][0]
    assert line.split()[1:3] == [kind, "yes"], line
    sbx.ok("exec", cid, "sh", "-c", "echo after > /marker; echo new > /extra")

    # export writes the image; import refuses it (a CRIU image restores
    # whatever its author wrote, and a stream's manifest is the author's).
    archive = tmp_path / "s1.tar"
    with open(archive, "wb") as f:
        assert sbx("snapshot", "export", cid, "s1", stdout=f).returncode == 0
    names = subprocess.run(["tar", "tf", archive], capture_output=True, text=True, check=True).stdout.split()
    assert "process/inventory.img" in names, names
    with open(archive, "rb") as f:
        cp = sbx.fail("snapshot", "import", cid, "s2", stdin=f)
    assert "process/" in cp.stderr and "not imported" in cp.stderr, describe(cp)
    assert not (state_dir / "snapshots/s2").exists()

    later = max(later, read_count(live))
    sbx.ok("kill", cid, "KILL")
    sbx.wait_status(cid, "stopped", timeout=30)
    later = max(later, read_count(live))

    # A fork of a snapshot with a process image is refused by name.
    fork = sbx.new_id("spfork")
    cp = sbx.fail("create", "--from-snapshot", f"{cid}:s1", "--bundle", b, fork)
    assert 'snapshot "s1" has a process image' in cp.stderr, describe(cp)
    assert not (sbx.root / fork).exists()

    # A changed or a missing image file: refused naming snapshot and file,
    # nothing changed (the files as they were, the container stopped); each
    # put back as it was after.
    img = snap / "process"
    pages = sorted(img.glob("pages-*.img"))[0]
    core = sorted(img.glob("core-*.img"))[0]
    saved = {p: (p.read_bytes(), p.stat().st_mode) for p in (pages, core)}
    for what, name in (("changed", pages.name), ("missing", core.name)):
        if what == "changed":
            flip_byte(pages)
        else:
            core.unlink()
        cp = sbx.fail("restore", "--detach", "--from-snapshot", "s1", cid, timeout=120)
        assert 'snapshot "s1"' in cp.stderr and name in cp.stderr, (what, describe(cp))
        assert sbx.state(cid)["status"] == "stopped"
        assert (where / "marker").read_text() == "after\n"
        assert not (state_dir / "snapshot-restore").exists()
        for p, (data, mode) in saved.items():
            p.write_bytes(data)
            os.chmod(p, mode & 0o7777)

    # The good one: files as of the snapshot, the counter from its count.
    cp = sbx("restore", "--detach", "--from-snapshot", "s1", cid, timeout=300)
    assert cp.returncode == 0, describe(cp) + tail(state_dir / "snapshot-restore/restore.log")
    assert sbx.state(cid)["status"] == "running"
    v = wait_for(lambda: read_count(live) not in (0, n) and read_count(live), timeout=60,
                 what="the restored counter to count", interval=0.02)
    assert n < v < later, f"counter at {v} after restore from the snapshot's {n} (it had reached {later})"
    out = sbx.ok("exec", cid, "sh", "-c", "cat /marker; test -e /extra && echo extra || echo no-extra").stdout
    assert out.split() == ["before", "no-extra"], out
    assert not (state_dir / "snapshot-restore").exists(), "the checked copy of the image was left"
    time.sleep(0.5)
    assert read_count(live) > v, "the restored counter stopped"
    sbx.ok("delete", "--force", cid)
    assert not state_dir.exists()
