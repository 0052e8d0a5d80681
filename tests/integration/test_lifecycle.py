"""Container lifecycle with real busybox containers: create, start, state,
kill, delete, run, list, ps, and commands racing on one container.

What a container does is observed through a host directory bind-mounted at
/out (the default root filesystem is read-only): the container writes marker
files there, the test waits for them.  Every test leaves cleanup to the
fixtures (`sbx` force-deletes what is left, `cgroup_parent` fails the test if
a cgroup survives), but most also check explicitly what delete removed.

Run against the reference runtime with
    SBXRUN=/usr/sbin/runc /usr/bin/python3 -m pytest -q tests/integration/test_lifecycle.py
(assertions on sbxrun's error wording, and on features an older runc lacks,
fail there).
"""

import datetime
import json
import os
import re
import signal
import socket
import time

import pytest

from conftest import (
    add_bind,
    cgroup_dirs,
    describe,
    parse_status,
    pid_alive,
    wait_for,
    Spawned,
)

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]


@pytest.fixture
def bundle(fast_bundle):
    """Here `bundle` is conftest's, with a cheaper rootfs copy (clone_rootfs)."""
    return fast_bundle


RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")

# A shell that reports the signals it gets: TERM and USR1 are appended to
# /out/got, and TERM then ends it with the distinctive status 5; /out/ready
# says the traps are in place.  `wait` returns as soon as a trapped signal
# arrives.
TRAPPER = (
    "trap 'echo TERM >> /out/got; exit 5' TERM; "
    "trap 'echo USR1 >> /out/got' USR1; "
    "echo ready > /out/ready; "
    "while :; do sleep 1 & wait $!; done"
)


@pytest.fixture
def out(tmp_path):
    """A host directory for a container to write into (bind it with add_bind)."""
    d = tmp_path / "out"
    d.mkdir()
    d.chmod(0o777)
    return d


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")[:-1]


def not_exist_msg(cid):
    return f'container "{cid}" does not exist'


def assert_gone(sbx, cid, cgroups_path=None):
    """The container is unknown to every command and left nothing behind."""
    cp = sbx.fail("state", cid)
    assert not_exist_msg(cid) in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()
    assert not (sbx.root / cid).exists(), f"state directory {sbx.root / cid} survived"
    if cgroups_path:
        left = [d for d in cgroup_dirs(cgroups_path) if os.path.exists(d)]
        assert left == [], f"cgroup directories survived: {left}"


def start_running(sbx, b, cid=None):
    """run --detach a bundle; return (id, init pid)."""
    cid = cid or sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    st = sbx.state(cid)
    assert st["status"] == "running", st
    return cid, st["pid"]


def wait_running(sbx, cid):
    """Wait until a container being made in the background runs (its state
    may not even exist yet)."""
    def running():
        cp = sbx("state", cid)
        return cp.returncode == 0 and json.loads(cp.stdout)["status"] == "running"
    wait_for(running, what=f"container {cid} to run")


def sig_handled(pid, signos):
    """True when process PID blocks or catches every signal in SIGNOS."""
    try:
        with open(f"/proc/{pid}/status") as f:
            st = parse_status(f.read())
    except FileNotFoundError:
        return False
    mask = int(st["SigBlk"], 16) | int(st["SigCgt"], 16)
    return all(mask >> (s - 1) & 1 for s in signos)


# ---- create / start / state / delete


@pytest.mark.needs_cmd("create", "start", "state", "kill", "delete")
def test_full_lifecycle(sbx, bundle, out):
    b = bundle(["sh", "-c", "echo started > /out/marker; exec sleep 1000"])
    add_bind(b, out, "/out")
    cid = sbx.new_id()

    sbx.ok("create", "--bundle", b, cid)
    created = sbx.state(cid)
    assert created["status"] == "created"

    sbx.ok("start", cid)
    assert sbx.state(cid)["status"] == "running"
    wait_for(lambda: (out / "marker").exists(), what="the container process to run")

    sbx.ok("kill", cid, "KILL")
    stopped = sbx.wait_status(cid, "stopped")
    assert stopped["id"] == cid

    sbx.ok("delete", cid)
    assert_gone(sbx, cid, b.config["linux"]["cgroupsPath"])


@pytest.mark.needs_cmd("create", "state")
def test_create_state_document(sbx, bundle, tmp_path):
    b = bundle(["sleep", "1000"])
    annotations = {"org.example.key": "value", "org.example.empty": "", "com.example/x": "a=b c"}
    with b.edit() as c:
        c["annotations"] = annotations
    cid = sbx.new_id()
    piddir = tmp_path / "piddir"
    piddir.mkdir()
    pidfile = piddir / "ctr.pid"
    pidfile.write_text("stale contents that must be replaced, not overwritten in place\n")
    stale_inode = pidfile.stat().st_ino

    before = datetime.datetime.now(datetime.timezone.utc)
    sbx.ok("create", "--bundle", b, "--pid-file", pidfile, cid)
    after = datetime.datetime.now(datetime.timezone.utc)

    # The pid file is complete when create returns, and was renamed into
    # place (a new inode, no temporary file left beside it).
    text = pidfile.read_text()
    assert re.fullmatch(r"[1-9][0-9]*\n?", text), f"pid file holds {text!r}"
    assert pidfile.stat().st_ino != stale_inode, "pid file rewritten in place, not atomically replaced"
    assert sorted(os.listdir(piddir)) == ["ctr.pid"], "temporary files left beside the pid file"
    pid = int(text)

    st = sbx.state(cid)
    assert st["id"] == cid
    assert st["status"] == "created"
    assert st["pid"] == pid, f"state pid {st['pid']} != pid file {pid}"
    assert pid_alive(pid)
    assert re.fullmatch(r"1\.\d+\.\d+.*", st["ociVersion"]), st["ociVersion"]
    assert st["bundle"] == str(b.path.resolve())
    assert st["rootfs"] == str(b.rootfs.resolve())
    assert st["owner"] == "root"
    assert st.get("annotations") == annotations
    assert RFC3339.fullmatch(st["created"]), f"created {st['created']!r} is not RFC 3339"
    created = datetime.datetime.fromisoformat(st["created"].replace("Z", "+00:00"))
    slack = datetime.timedelta(seconds=2)
    assert before - slack <= created <= after + slack, (before, st["created"], after)
    # The init lives in the configured cgroup from the moment it exists.
    with open(f"/proc/{pid}/cgroup") as f:
        paths = {line.rstrip("\n").split(":", 2)[2] for line in f}
    assert paths == {b.config["linux"]["cgroupsPath"]}, paths


@pytest.mark.needs_cmd("create", "state")
def test_create_with_large_annotations(sbx, bundle):
    """Regression: the state JSON once went to the init in one SOCK_SEQPACKET
    message, and more than ~200 kB of annotations (Kubernetes allows 256 KiB)
    failed with `Message too long`."""
    b = bundle(["sleep", "1000"])
    annotations = {f"org.example.a{i}": "v" * 1000 for i in range(240)}
    with b.edit() as c:
        c["annotations"] = annotations
    cid = sbx.new_id()
    cp = sbx("create", "--bundle", b, cid)
    assert cp.returncode == 0, describe(cp)
    assert sbx.state(cid)["annotations"] == annotations


@pytest.mark.needs_cmd("create", "start", "state")
def test_process_runs_only_at_start(sbx, bundle, out, busybox_rootfs):
    b = bundle(["sh", "-c", "echo started >> /out/marker; exec sleep 1000"])
    add_bind(b, out, "/out")
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    busybox = os.stat(b.rootfs / "bin/busybox")

    time.sleep(0.3)  # give a runtime that starts too early the chance to show it
    assert not (out / "marker").exists(), "process.args ran before `start`"
    assert sbx.state(cid)["status"] == "created"
    exe = os.stat(f"/proc/{pid}/exe")
    assert (exe.st_dev, exe.st_ino) != (busybox.st_dev, busybox.st_ino), "init already exec'd busybox"

    sbx.ok("start", cid)
    wait_for(lambda: lines(out / "marker") == ["started"], what="the marker written at start")
    st = sbx.state(cid)
    assert st["status"] == "running" and st["pid"] == pid, st
    wait_for(lambda: cmdline(pid) == [b"sleep", b"1000"], what="the init to exec `sleep 1000`")
    exe = os.stat(f"/proc/{pid}/exe")
    assert (exe.st_dev, exe.st_ino) == (busybox.st_dev, busybox.st_ino)


@pytest.mark.needs_cmd("create", "start", "state", "kill")
def test_start_twice_fails_and_changes_nothing(sbx, bundle, out):
    b = bundle(["sh", "-c", "echo run >> /out/runs; exec sleep 1000"])
    add_bind(b, out, "/out")
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    sbx.ok("start", cid)
    wait_for(lambda: lines(out / "runs") == ["run"], what="the first run")
    before = sbx.state(cid)

    cp = sbx.fail("start", cid)
    assert "cannot be started" in cp.stderr and "running" in cp.stderr, describe(cp)
    time.sleep(0.2)
    assert sbx.state(cid) == before
    assert lines(out / "runs") == ["run"], "the process ran a second time"

    sbx.ok("kill", cid, "KILL")
    sbx.wait_status(cid, "stopped")
    cp = sbx.fail("start", cid)
    assert "stopped" in cp.stderr, describe(cp)
    assert sbx.state(cid)["status"] == "stopped"
    assert lines(out / "runs") == ["run"]


@pytest.mark.needs_cmd("create", "start")
def test_silent_connection_does_not_block_start(sbx, bundle, out):
    """A local process that connects to the init's start socket and says
    nothing must not hold the real `start` off for good."""
    b = bundle(["sh", "-c", "echo started > /out/marker"])
    add_bind(b, out, "/out")
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as silent:
        silent.connect(str(sbx.root / cid / "start.sock"))
        t0 = time.monotonic()
        sbx.ok("start", cid, timeout=30)
        assert time.monotonic() - t0 < 15
    wait_for(lambda: lines(out / "marker") == ["started"], what="the process to run")


@pytest.mark.needs_cmd("create", "start")
def test_start_the_init_never_took_leaves_it_startable(sbx, bundle, out):
    """start.sock answered by something else (the request never reaches the
    init, which is still waiting): start fails, and a later one works."""
    b = bundle(["sh", "-c", "echo started > /out/marker"])
    add_bind(b, out, "/out")
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    sock = sbx.root / cid / "start.sock"
    os.rename(sock, sock.with_name("real.sock"))
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as fake:
        fake.bind(str(sock))
        fake.listen(1)
        fake.settimeout(30)
        p = sbx.popen("start", cid)
        conn, _ = fake.accept()
        conn.close()  # hang up without a word
        _, err = p.communicate(timeout=30)
    assert p.returncode != 0 and "did not take the request" in err, err
    assert sock.exists(), "start removed the socket of an init still waiting"
    assert sbx.state(cid)["status"] == "created"
    os.replace(sock.with_name("real.sock"), sock)
    sbx.ok("start", cid)
    wait_for(lambda: lines(out / "marker") == ["started"], what="the process to run")


@pytest.mark.needs_cmd("start")
def test_start_missing_container(sbx):
    cid = sbx.new_id()
    cp = sbx.fail("start", cid)
    assert not_exist_msg(cid) in cp.stderr, describe(cp)


@pytest.mark.needs_cmd("state")
def test_state_missing_container(sbx):
    cid = sbx.new_id()
    cp = sbx.fail("state", cid)
    assert not_exist_msg(cid) in cp.stderr, describe(cp)
    assert cp.stdout == ""


@pytest.mark.needs_cmd("create", "state")
def test_create_existing_id_fails_and_keeps_the_container(sbx, bundle):
    b = bundle(["sleep", "1000"])
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    before = sbx.state(cid)
    cp = sbx.fail("create", "--bundle", bundle(["true"]), cid)
    assert "already exists" in cp.stderr, describe(cp)
    assert sbx.state(cid) == before
    assert pid_alive(before["pid"])


@pytest.mark.needs_cmd("create")
@pytest.mark.parametrize("bad", ["a/b", "..", ".", "x" * 1025, "sp ace", ""])
def test_invalid_id_rejected_before_anything_is_made(sbx, bundle, bad):
    b = bundle(["true"])
    cp = sbx.fail("create", "--bundle", b, bad)
    assert "container id" in cp.stderr, describe(cp)
    left = [p.name for p in sbx.root.iterdir() if not p.name.startswith(".")] if sbx.root.exists() else []
    assert left == []
    assert [d for d in cgroup_dirs(b.config["linux"]["cgroupsPath"]) if os.path.exists(d)] == []


@pytest.mark.needs_cmd("create", "list", "delete")
def test_dot_id_is_listed_or_rejected(sbx, bundle):
    """Regression: IDs starting with '.' were accepted by create but hidden
    from list."""
    b = bundle(["sleep", "1000"])
    cid = ".hidden-" + sbx.new_id()
    try:
        cp = sbx("create", "--bundle", b, cid)
        if cp.returncode != 0:
            assert "container id" in cp.stderr, describe(cp)  # rejected as invalid: fine
        else:
            assert cid in sbx.list_ids(), f"{cid} exists (state works) but list does not show it"
    finally:
        sbx("delete", "--force", cid)


@pytest.mark.needs_cmd("run", "create", "state", "delete")
def test_seccomp_cache_does_not_shadow_an_id(sbx, bundle):
    """Regression: the seccomp cache <root>/.seccomp-cache made create of that
    (then valid) ID fail with 'already exists' while state said it did not exist."""
    sbx.ok("run", "--bundle", bundle(["true"]), sbx.new_id())  # fills the cache
    cid = ".seccomp-cache"
    try:
        cp = sbx("create", "--bundle", bundle(["sleep", "1000"]), cid)
        if cp.returncode != 0:
            assert "container id" in cp.stderr, describe(cp)  # rejected as invalid: fine
        else:
            assert sbx.state(cid)["status"] == "created"
    finally:
        if (sbx.root / cid / "status.json").exists():
            sbx("delete", "--force", cid)


@pytest.mark.needs_cmd("run", "delete", "state")
def test_delete_running_needs_force(sbx, bundle):
    b = bundle(["sleep", "1000"])
    cid, pid = start_running(sbx, b)

    cp = sbx.fail("delete", cid)
    assert "not stopped" in cp.stderr and "--force" in cp.stderr, describe(cp)
    assert sbx.state(cid)["status"] == "running"
    assert pid_alive(pid)

    sbx.ok("delete", "--force", cid)
    assert not pid_alive(pid), "delete --force returned while the init still runs"
    assert_gone(sbx, cid, b.config["linux"]["cgroupsPath"])


@pytest.mark.needs_cmd("create", "delete", "state")
def test_delete_created_needs_force(sbx, bundle, out):
    b = bundle(["sh", "-c", "echo ran > /out/marker"])
    add_bind(b, out, "/out")
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    cp = sbx.fail("delete", cid)
    assert "created" in cp.stderr, describe(cp)
    assert sbx.state(cid)["status"] == "created"
    sbx.ok("delete", "-f", cid)
    assert not pid_alive(pid)
    assert not (out / "marker").exists(), "deleting a created container ran its process"
    assert_gone(sbx, cid, b.config["linux"]["cgroupsPath"])


@pytest.mark.needs_cmd("delete")
def test_delete_missing(sbx):
    cid = sbx.new_id()
    cp = sbx.fail("delete", cid)
    assert not_exist_msg(cid) in cp.stderr, describe(cp)
    cp = sbx.ok("delete", "--force", cid)
    assert cp.stderr == "", describe(cp)


@pytest.mark.needs_cmd("run", "delete", "state")
def test_delete_stopped_without_force(sbx, bundle):
    b = bundle(["true"])
    cid = sbx.new_id()
    sbx.ok("run", "--keep", "--bundle", b, cid)
    assert sbx.state(cid)["status"] == "stopped"
    sbx.ok("delete", cid)
    assert_gone(sbx, cid, b.config["linux"]["cgroupsPath"])


@pytest.mark.needs_cmd("create", "start", "state")
def test_created_container_keeps_the_callers_stdio(sbx, bundle, tmp_path):
    """A detached container writes to the stdout/stderr `create` was given
    (containerd hands fifos to create and reads them after it returned)."""
    b = bundle(["sh", "-c", "echo to-stdout; echo to-stderr >&2"])
    cid = sbx.new_id()
    with open(tmp_path / "stdout", "w") as o, open(tmp_path / "stderr", "w") as e:
        cp = sbx("create", "--bundle", b, cid, stdout=o, stderr=e)
    assert cp.returncode == 0, (tmp_path / "stderr").read_text()
    sbx.ok("start", cid)
    sbx.wait_status(cid, "stopped")
    assert (tmp_path / "stdout").read_text() == "to-stdout\n"
    assert (tmp_path / "stderr").read_text() == "to-stderr\n"


@pytest.mark.needs_cmd("run", "state")
def test_relative_pid_file_and_config_option(sbx, bundle, tmp_path):
    b = bundle(["sleep", "1000"])
    other = tmp_path / "other-config.json"
    cfg = dict(b.config, annotations={"from": "other-config"})
    other.write_text(json.dumps(cfg))
    cid = sbx.new_id()
    cp = sbx("run", "--detach", "--config", other, "--pid-file", "rel.pid", "--bundle", b, cid, cwd=tmp_path)
    assert cp.returncode == 0, describe(cp)
    st = sbx.state(cid)
    assert st["pid"] == int((tmp_path / "rel.pid").read_text())
    assert st["annotations"] == {"from": "other-config"}
    assert st["bundle"] == str(b.path.resolve())


@pytest.mark.needs_cmd("create", "kill", "start", "state")
def test_kill_created_container(sbx, bundle, out):
    b = bundle(["sh", "-c", "echo ran > /out/marker"])
    add_bind(b, out, "/out")
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    sbx.ok("kill", cid, "KILL")
    sbx.wait_status(cid, "stopped")
    wait_for(lambda: not pid_alive(pid), what="the created init to die")
    cp = sbx.fail("start", cid)
    assert "stopped" in cp.stderr, describe(cp)
    assert not (out / "marker").exists()


# ---- kill


@pytest.mark.needs_cmd("run", "kill", "state")
@pytest.mark.parametrize("sig, expect", [
    (None, "TERM"), ("TERM", "TERM"), ("SIGTERM", "TERM"), ("15", "TERM"), ("term", "TERM"),
    ("USR1", "USR1"), ("SIGUSR1", "USR1"), (str(int(signal.SIGUSR1)), "USR1"),
])
def test_kill_delivers_signal(sbx, bundle, out, sig, expect):
    b = bundle(["sh", "-c", TRAPPER])
    add_bind(b, out, "/out")
    cid, _ = start_running(sbx, b)
    wait_for(lambda: (out / "ready").exists(), what="the traps to be set")
    sbx.ok("kill", cid, *([sig] if sig else []))
    wait_for(lambda: lines(out / "got"), what=f"the container to get SIG{expect}")
    assert lines(out / "got") == [expect]
    if expect == "TERM":
        sbx.wait_status(cid, "stopped")
    else:
        assert sbx.state(cid)["status"] == "running"


@pytest.mark.needs_cmd("run", "kill", "state")
@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "9", "sigkill"])
def test_kill_stops_container(sbx, bundle, sig):
    cid, pid = start_running(sbx, bundle(["sleep", "1000"]))
    sbx.ok("kill", cid, sig)
    st = sbx.wait_status(cid, "stopped")
    assert st["id"] == cid
    wait_for(lambda: not pid_alive(pid), what=f"pid {pid} to be gone")


@pytest.mark.needs_cmd("run", "kill")
def test_kill_invalid_signal(sbx, bundle):
    cid, pid = start_running(sbx, bundle(["sleep", "1000"]))
    for sig in ("NOSUCH", "SIGFOO", "4294967296", "65", "9x", ""):
        cp = sbx.fail("kill", cid, sig)
        assert "signal" in cp.stderr, describe(cp)
    assert sbx.state(cid)["status"] == "running"
    assert pid_alive(pid)
    # 0 is runc's liveness check: nothing is sent
    sbx.ok("kill", cid, "0")
    assert pid_alive(pid)


@pytest.mark.needs_cmd("run", "kill", "state")
def test_kill_stopped_container(sbx, bundle):
    cid = sbx.new_id()
    sbx.ok("run", "--keep", "--bundle", bundle(["true"]), cid)
    assert sbx.state(cid)["status"] == "stopped"
    for sig in ("TERM", "KILL"):
        cp = sbx.fail("kill", cid, sig)
        assert "container not running" in cp.stderr, describe(cp)
    assert sbx.state(cid)["status"] == "stopped"


@pytest.mark.needs_cmd("kill")
def test_kill_missing_container(sbx):
    cid = sbx.new_id()
    cp = sbx.fail("kill", cid, "KILL")
    assert not_exist_msg(cid) in cp.stderr, describe(cp)


@pytest.mark.needs_cmd("run", "exec", "kill", "state")
def test_kill_all_signals_every_process(sbx, bundle, tmp_path):
    cid, pid = start_running(sbx, bundle(["sleep", "1000"]))
    # A foreground exec, so that its sbxrun reaps it at once (a detached one
    # is reaped by whatever adopts it, possibly much later).
    ex = Spawned(sbx, "exec", "--pid-file", tmp_path / "exec.pid", cid, "sleep", "1000")
    epid = wait_for(lambda: (tmp_path / "exec.pid").exists() and int((tmp_path / "exec.pid").read_text()),
                    what="the exec'd process")
    assert pid_alive(epid)
    sbx.ok("kill", "--all", cid, "KILL")
    code, _, stderr = ex.finish()
    assert code == 128 + signal.SIGKILL, stderr
    sbx.wait_status(cid, "stopped")
    wait_for(lambda: not pid_alive(pid), what="the init to be killed")


# ---- list


@pytest.mark.needs_cmd("create", "run", "list")
def test_list_formats(sbx, bundle):
    b1, b2 = bundle(["sleep", "1000"]), bundle(["sleep", "1000"])
    c1, c2 = sbx.new_id("created"), sbx.new_id("running")
    sbx.ok("create", "--bundle", b1, c1)
    sbx.ok("run", "--detach", "--bundle", b2, c2)
    states = {c: sbx.state(c) for c in (c1, c2)}
    assert (states[c1]["status"], states[c2]["status"]) == ("created", "running")

    assert sorted(sbx.ok("list", "-q").stdout.splitlines()) == sorted([c1, c2])
    assert sorted(sbx.ok("list", "--quiet").stdout.splitlines()) == sorted([c1, c2])

    table = sbx.ok("list").stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], table[0]
    rows = {r.split()[0]: r.split() for r in table[1:] if r.strip()}
    assert sorted(rows) == sorted([c1, c2]), table
    for cid, st in states.items():
        assert rows[cid][1:] == [str(st["pid"]), st["status"], st["bundle"], st["created"], "root"], rows[cid]

    for fmt in (["--format", "json"], ["-f", "json"]):
        listed = json.loads(sbx.ok("list", *fmt).stdout)
        assert isinstance(listed, list)
        by_id = {e["id"]: e for e in listed}
        assert sorted(by_id) == sorted([c1, c2])
        for cid, st in states.items():
            for key in ("pid", "status", "bundle", "rootfs", "created", "owner"):
                assert by_id[cid][key] == st[key], (key, by_id[cid], st)


@pytest.mark.needs_cmd("list")
def test_list_empty_root(sbx):
    assert sbx.ok("list", "-q").stdout == ""
    assert json.loads(sbx.ok("list", "--format", "json").stdout) is None  # runc: null
    assert sbx.ok("list").stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]


@pytest.mark.needs_cmd("list")
def test_list_rejects_unknown_format(sbx):
    cp = sbx.fail("list", "--format", "yaml")
    assert "yaml" in cp.stderr, describe(cp)


@pytest.mark.needs_cmd("create", "list")
def test_list_json_includes_annotations(sbx, bundle):
    """Regression: `list --format json` printed empty annotations."""
    b = bundle(["sleep", "1000"])
    with b.edit() as c:
        c["annotations"] = {"org.example.key": "value"}
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    (entry,) = json.loads(sbx.ok("list", "--format", "json").stdout)
    assert entry.get("annotations") == {"org.example.key": "value"}, entry


# ---- ps


@pytest.mark.needs_cmd("run", "exec", "ps")
def test_ps_lists_host_pids_including_exec(sbx, bundle, tmp_path):
    b = bundle(["sleep", "1000"])
    cid, pid = start_running(sbx, b)
    assert json.loads(sbx.ok("ps", "--format", "json", cid).stdout) == [pid]

    ex = Spawned(sbx, "exec", "--pid-file", tmp_path / "exec.pid", cid, "sleep", "999")
    epid = wait_for(lambda: (tmp_path / "exec.pid").exists() and int((tmp_path / "exec.pid").read_text()),
                    what="the exec'd process")
    for fmt in (["--format", "json"], ["-f", "json"]):
        out = sbx.ok("ps", *fmt, cid).stdout
        pids = json.loads(out)
        assert isinstance(pids, list) and all(isinstance(p, int) for p in pids), out
        assert sorted(pids) == sorted([pid, epid]), f"ps says {pids}, expected init {pid} + exec {epid}"
    # host pids: they are these processes as seen from here
    assert cmdline(epid) == [b"sleep", b"999"]

    table = sbx.ok("ps", cid).stdout.splitlines()
    assert table[0].split()[:2] == ["UID", "PID"], table  # ps -ef's columns, as runc
    listed = {int(r.split()[1]) for r in table[1:] if r.strip()}
    assert listed == {pid, epid}, table
    sbx.ok("kill", "--all", cid, "KILL")
    assert ex.finish()[0] == 128 + signal.SIGKILL


@pytest.mark.needs_cmd("run", "ps", "state")
def test_ps_of_stopped_container_is_empty(sbx, bundle):
    cid = sbx.new_id()
    sbx.ok("run", "--keep", "--bundle", bundle(["true"]), cid)
    assert json.loads(sbx.ok("ps", "--format", "json", cid).stdout) == []


@pytest.mark.needs_cmd("ps")
def test_ps_missing_container(sbx):
    cid = sbx.new_id()
    cp = sbx.fail("ps", "--format", "json", cid)
    assert not_exist_msg(cid) in cp.stderr, describe(cp)


# ---- run


@pytest.mark.needs_cmd("run", "state", "list")
@pytest.mark.parametrize("code", [0, 7, 255])
def test_run_returns_exit_code_and_deletes(sbx, bundle, code):
    b = bundle(["sh", "-c", f"echo out; echo err >&2; exit {code}"])
    cid = sbx.new_id()
    cp = sbx("run", "--bundle", b, cid)
    assert cp.returncode == code, describe(cp)
    assert cp.stdout == "out\n" and cp.stderr == "err\n", describe(cp)
    assert_gone(sbx, cid, b.config["linux"]["cgroupsPath"])


@pytest.mark.needs_cmd("run", "kill", "state")
def test_run_killed_by_signal_exits_128_plus_n(sbx, bundle):
    b = bundle(["sleep", "1000"])
    cid = sbx.new_id()
    sp = Spawned(sbx, "run", "--bundle", b, cid)
    wait_running(sbx, cid)
    sbx.ok("kill", cid, "KILL")
    code, _, stderr = sp.finish()
    assert code == 128 + signal.SIGKILL, stderr
    assert_gone(sbx, cid, b.config["linux"]["cgroupsPath"])


@pytest.mark.needs_cmd("run")
def test_run_process_killing_itself(sbx, bundle):
    # Without a pid namespace the shell is not an init, so it can kill itself.
    b = bundle(["sh", "-c", "kill -USR2 $$; sleep 5"])
    with b.edit() as c:
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 128 + signal.SIGUSR2, describe(cp)


@pytest.mark.needs_cmd("run", "state")
def test_run_forwards_signals(sbx, bundle, out):
    b = bundle(["sh", "-c", TRAPPER])
    add_bind(b, out, "/out")
    cid = sbx.new_id()
    sp = Spawned(sbx, "run", "--bundle", b, cid)
    p = sp.p
    wait_for(lambda: (out / "ready").exists(), what="the traps to be set")
    # Signals are only forwarded once run has taken them over (blocked for a
    # signalfd or caught); before that they would kill the runtime itself.
    # See test_run_forwards_signals_during_poststart for that window.
    wait_for(lambda: sig_handled(p.pid, [signal.SIGUSR1, signal.SIGTERM]),
             what="sbxrun run to take over SIGUSR1 and SIGTERM")

    p.send_signal(signal.SIGUSR1)
    wait_for(lambda: lines(out / "got") == ["USR1"], what="SIGUSR1 to reach the container")
    assert p.poll() is None, "run exited on SIGUSR1"
    assert sbx.state(cid)["status"] == "running"

    p.send_signal(signal.SIGTERM)
    code, _, stderr = sp.finish()
    assert code == 5, f"exit {code}, stderr {stderr!r}"
    assert lines(out / "got") == ["USR1", "TERM"]
    assert_gone(sbx, cid, b.config["linux"]["cgroupsPath"])


@pytest.mark.needs_cmd("run", "state")
def test_run_forwards_signals_during_poststart(sbx, bundle, out, tmp_path):
    """Regression: `run` took over signals only after the poststart hooks, so a
    signal for the already running container killed sbxrun itself."""
    b = bundle(["sh", "-c", TRAPPER])
    add_bind(b, out, "/out")
    flag = tmp_path / "in-poststart"
    with b.edit() as c:
        c["hooks"] = {"poststart": [{"path": "/bin/sh", "args": [
            "sh", "-c", f"touch {flag}; sleep 1"]}]}
    cid = sbx.new_id()
    p = Spawned(sbx, "run", "--bundle", b, cid).p
    wait_for(lambda: (out / "ready").exists() and flag.exists(), what="the poststart hook")
    p.send_signal(signal.SIGUSR1)
    wait_for(lambda: p.poll() is not None or lines(out / "got"), what="USR1 to be handled")
    assert p.poll() is None, f"sbxrun run died with exit {p.returncode} on a SIGUSR1 for the container"
    assert lines(out / "got") == ["USR1"]
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 5


@pytest.mark.needs_cmd("run", "state", "delete")
def test_run_when_another_command_deletes_the_container(sbx, bundle, tmp_path):
    log = tmp_path / "poststop.log"
    b = bundle(["sleep", "1000"])
    with b.edit() as c:
        c["hooks"] = {"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"echo ran >> {log}"]}]}
    cid = sbx.new_id()
    sp = Spawned(sbx, "run", "--bundle", b, cid)
    wait_running(sbx, cid)
    sbx.ok("delete", "--force", cid)
    code, _, stderr = sp.finish()
    assert code == 128 + signal.SIGKILL, stderr
    assert log.read_text() == "ran\n", "poststop hooks must run exactly once"
    assert_gone(sbx, cid, b.config["linux"]["cgroupsPath"])


@pytest.mark.needs_cmd("run", "state", "delete")
def test_detached_container_that_exits_is_stopped(sbx, bundle):
    b = bundle(["sh", "-c", "exit 3"])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    st = sbx.wait_status(cid, "stopped")
    assert st["pid"] == 0 or not pid_alive(st["pid"])
    sbx.ok("delete", cid)
    assert_gone(sbx, cid, b.config["linux"]["cgroupsPath"])


@pytest.mark.needs_cmd("run", "state", "delete")
def test_run_keep(sbx, bundle):
    b = bundle(["sh", "-c", "exit 3"])
    cid = sbx.new_id()
    cp = sbx("run", "--keep", "--bundle", b, cid)
    assert cp.returncode == 3, describe(cp)
    st = sbx.state(cid)
    assert st["status"] == "stopped", st
    assert cid in sbx.list_ids()
    sbx.ok("delete", cid)
    assert_gone(sbx, cid, b.config["linux"]["cgroupsPath"])


@pytest.mark.needs_cmd("run", "state", "delete")
def test_run_detach(sbx, bundle, out, tmp_path):
    b = bundle(["sh", "-c", "echo up > /out/up; exec sleep 1000"])
    add_bind(b, out, "/out")
    cid = sbx.new_id()
    t0 = time.monotonic()
    cp = sbx("run", "--detach", "--pid-file", tmp_path / "pid", "--bundle", b, cid)
    assert cp.returncode == 0, describe(cp)
    assert time.monotonic() - t0 < 10
    st = sbx.state(cid)
    assert st["status"] == "running"
    assert st["pid"] == int((tmp_path / "pid").read_text())
    wait_for(lambda: (out / "up").exists(), what="the detached container to run")
    assert pid_alive(st["pid"])
    sbx.ok("delete", "--force", cid)
    assert_gone(sbx, cid, b.config["linux"]["cgroupsPath"])


@pytest.mark.needs_cmd("run")
def test_run_stdin_reaches_container(sbx, bundle):
    cp = sbx("run", "--bundle", bundle(["sh", "-c", "read line; echo got:$line"]), sbx.new_id(),
             input="hello\n")
    assert cp.returncode == 0 and cp.stdout == "got:hello\n", describe(cp)


@pytest.mark.needs_cmd("run", "state")
def test_run_failure_leaves_nothing(sbx, bundle):
    b = bundle(["/no/such/program"])
    cid = sbx.new_id()
    cp = sbx.fail("run", "--bundle", b, cid)
    assert "/no/such/program" in cp.stderr, describe(cp)
    assert_gone(sbx, cid, b.config["linux"]["cgroupsPath"])


# ---- concurrency


@pytest.mark.needs_cmd("run", "state", "kill")
def test_concurrent_state_and_kill(sbx, bundle):
    cid, pid = start_running(sbx, bundle(["sleep", "1000"]))
    procs = [Spawned(sbx, "state", cid) for _ in range(10)]
    procs.insert(5, Spawned(sbx, "kill", cid, "KILL"))
    for sp in procs:
        code, stdout, stderr = sp.finish()
        assert code == 0, f"{sp.args}: exit {code}: {stderr}"
        if sp.args[0] == "state":
            st = json.loads(stdout)
            assert st["id"] == cid and st["status"] in ("running", "stopped"), st
    sbx.wait_status(cid, "stopped")
    wait_for(lambda: not pid_alive(pid), what="the init to be gone")


@pytest.mark.needs_cmd("run", "delete", "state")
def test_concurrent_force_deletes(sbx, bundle):
    b = bundle(["sleep", "1000"])
    cid, pid = start_running(sbx, b)
    procs = [Spawned(sbx, "delete", "--force", cid) for _ in range(5)]
    results = [sp.finish() for sp in procs]
    assert [r[0] for r in results] == [0] * 5, results
    assert not pid_alive(pid)
    assert_gone(sbx, cid, b.config["linux"]["cgroupsPath"])


@pytest.mark.needs_cmd("create", "state")
def test_concurrent_create_same_id(sbx, bundle):
    bundles = [bundle(["sleep", "1000"]) for _ in range(4)]
    cid = sbx.new_id()
    procs = [Spawned(sbx, "create", "--bundle", b, cid) for b in bundles]
    results = [sp.finish() for sp in procs]
    winners = [i for i, r in enumerate(results) if r[0] == 0]
    assert len(winners) == 1, results
    for i, (code, _, err) in enumerate(results):
        if i not in winners:
            assert "already exists" in err, results
    st = sbx.state(cid)
    assert st["status"] == "created", st
    assert st["bundle"] == str(bundles[winners[0]].path.resolve())
    assert pid_alive(st["pid"])
    for i, b in enumerate(bundles):
        if i not in winners:
            left = [d for d in cgroup_dirs(b.config["linux"]["cgroupsPath"]) if os.path.exists(d)]
            assert left == [], f"a failed create left cgroups: {left}"


@pytest.mark.needs_cmd("create", "start", "state")
def test_concurrent_state_during_start(sbx, bundle, out):
    b = bundle(["sh", "-c", "echo run >> /out/runs; exec sleep 1000"])
    add_bind(b, out, "/out")
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    states = [Spawned(sbx, "state", cid) for _ in range(5)]
    starts = [Spawned(sbx, "start", cid) for _ in range(3)]
    states += [Spawned(sbx, "state", cid) for _ in range(5)]
    for sp in states:
        code, stdout, stderr = sp.finish()
        assert code == 0, stderr
        assert json.loads(stdout)["status"] in ("created", "running"), stdout
    results = [sp.finish() for sp in starts]
    assert sorted(r[0] for r in results)[0] == 0 and [r[0] for r in results].count(0) == 1, \
        f"exactly one start must succeed: {results}"
    wait_for(lambda: lines(out / "runs"), what="the process to run")
    time.sleep(0.1)
    assert lines(out / "runs") == ["run"]
    assert sbx.state(cid)["status"] == "running"
