"""What container engines rely on, called the way they call the runtime.

podman (through conmon), containerd's runc v2 shim (go-runc) and Kubernetes
(through either) drive an OCI runtime with runc's command line:

  * global options before the command:
      RT --root R --log F --log-format json create --bundle B --pid-file P ID
    the pid file exists when `create` returns;
  * `--log-format json` lines are `{"level", "msg", "time"}`; on failure
    the engine shows the message of the *last* error line;
  * `state` gives ociVersion, id, status, pid, bundle, rootfs, created
    (RFC 3339), owner, annotations;
  * errors are recognised by substring: "does not exist" (container gone),
    "container not running" (kill of an exited container);
  * `kill ID 9`, `kill --all ID KILL`, `ps --format json` (a JSON array of
    host pids), `delete --force` (also for a container already gone);
  * `exec --process F --detach --pid-file P ID`;
  * plain `features` (no global options); `checkpoint --help` must exit 0
    or podman disables checkpoint/restore; `--version`;
  * Go's flag package also takes single-dash long options (`-bundle B`).
"""

import datetime
import json
import os
import re
import shutil
import time

import pytest

from conftest import describe, run_cmd, sbxrun

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("create", "start", "state", "kill", "delete")]

NOT_EXIST = "does not exist"
NOT_RUNNING = "container not running"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")


@pytest.fixture(autouse=True)
def _forget_seccomp_cache(sbx):
    """<root>/.seccomp-cache is the runtime's compile cache, not a
    container: drop it before the `sbx` teardown looks for leftovers."""
    yield
    shutil.rmtree(sbx.root / ".seccomp-cache", ignore_errors=True)


@pytest.fixture
def ctr(bundle, busybox_rootfs):
    """ctr(args) -> Bundle whose root.path is the session's busybox rootfs,
    read-only (copying the rootfs is the slow part of a bundle, and these
    containers never write to it)."""

    def make(args, **kw):
        b = bundle(args, rootfs=False, **kw)
        b.config["root"] = {"path": str(busybox_rootfs), "readonly": True}
        b.write()
        return b

    return make


def parse_rfc3339(text):
    assert RFC3339.fullmatch(text), f"not RFC 3339: {text!r}"
    text = text.replace("Z", "+00:00")
    # Python < 3.11 takes at most 6 fraction digits; Go writes up to 9.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    return datetime.datetime.fromisoformat(text)


def log_entries(path):
    """The JSON lines of a --log file, each checked for level, msg, time."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        e = json.loads(line)
        assert isinstance(e, dict), line
        assert {"level", "msg", "time"} <= set(e), line
        assert isinstance(e["level"], str) and isinstance(e["msg"], str), line
        parse_rfc3339(e["time"])
        entries.append(e)
    return entries


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


def wait_gone(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids):
        if time.monotonic() > deadline:
            pytest.fail(f"processes still alive after {timeout}s: {[p for p in pids if pid_alive(p)]}")
        time.sleep(0.02)


def wait_ps(sbx, cid, count, timeout=10.0):
    """Poll `ps --format json` until it lists at least COUNT pids."""
    deadline = time.monotonic() + timeout
    while True:
        pids = sbx.json("ps", "--format", "json", cid)
        if len(pids) >= count:
            return pids
        if time.monotonic() > deadline:
            pytest.fail(f"`ps` of {cid} shows {pids}, expected {count} processes")
        time.sleep(0.02)


# ---------------------------------------------------------------------------
# the command lines engines use


def test_conmon_create_start_kill_delete(sbx, ctr, tmp_path):
    """podman through conmon: global options first, pid file at create."""
    b = ctr(["sleep", "100"])
    log, pidfile, cid = tmp_path / "ctr.log", tmp_path / "ctr.pid", sbx.new_id()
    g = ["--log", log, "--log-format", "json"]
    sbx.ok("create", "--bundle", b, "--pid-file", pidfile, cid, global_args=g)
    assert pidfile.exists(), "the pid file must exist when create returns"
    pid = int(pidfile.read_text())
    st = sbx.state(cid)
    assert st["status"] == "created" and st["pid"] == pid and pid_alive(pid)
    sbx.ok("start", cid, global_args=g)
    assert sbx.state(cid)["status"] == "running"
    sbx.ok("kill", cid, "9", global_args=g)  # podman passes signal numbers
    sbx.wait_status(cid, "stopped")
    sbx.ok("delete", "--force", cid, global_args=g)
    assert NOT_EXIST in sbx.fail("state", cid).stderr
    assert [e for e in log_entries(log) if e["level"] == "error"] == []


def test_containerd_shim_layout(sbx, ctr):
    """containerd's shim: --log <bundle>/log.json, --pid-file <bundle>/init.pid."""
    b = ctr(["sleep", "100"])
    cid = sbx.new_id()
    g = ["--log", b.path / "log.json", "--log-format", "json"]
    sbx.ok("create", "--bundle", b, "--pid-file", b.path / "init.pid", cid, global_args=g)
    pid = int((b.path / "init.pid").read_text())
    sbx.ok("start", cid, global_args=g)
    st = sbx.state(cid)
    assert st["pid"] == pid and st["status"] == "running"
    assert pid in sbx.json("ps", "--format", "json", cid, global_args=g)
    sbx.ok("kill", "--all", cid, "KILL", global_args=g)
    sbx.wait_status(cid, "stopped")
    sbx.ok("delete", cid, global_args=g)
    assert [e for e in log_entries(b.path / "log.json") if e["level"] == "error"] == []


def test_go_style_single_dash_options(sbx, ctr, tmp_path):
    """go-runc and runc users write `-bundle B`; Go also takes `-opt=value`."""
    b = ctr(["sh", "-c", "sleep 100 & sleep 100"])
    log, pidfile, cid = tmp_path / "log.json", tmp_path / "pid", sbx.new_id()
    base = [sbx.binary, "-root", sbx.root, "-log", log, "-log-format", "json"]

    def go(*args):
        cp = run_cmd([*base, *args])
        assert cp.returncode == 0, describe(cp)
        return cp

    go("create", "-bundle", b, "-pid-file", pidfile, cid)
    assert pidfile.exists()
    go("start", cid)
    assert json.loads(go("state", cid).stdout)["status"] == "running"
    assert cid in [c["id"] for c in json.loads(go("list", "-format", "json").stdout)]
    pids = wait_ps(sbx, cid, 2)
    assert set(json.loads(go("ps", "-format=json", cid).stdout)) == set(pids)
    go("kill", "-all", cid, "KILL")
    sbx.wait_status(cid, "stopped")
    go("delete", "-force", cid)
    assert sbx.list_ids() == []
    assert [e for e in log_entries(log) if e["level"] == "error"] == []


def test_exec_detached_with_process_file(sbx, ctr, tmp_path):
    """conmon / the shim: everything about an exec comes from process.json."""
    b = ctr(["sleep", "100"])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    proc = dict(b.config["process"], args=["sleep", "99"], terminal=False)
    (tmp_path / "process.json").write_text(json.dumps(proc))
    pidfile = tmp_path / "exec.pid"
    g = ["--log", tmp_path / "log.json", "--log-format", "json"]
    sbx.ok("exec", "--process", tmp_path / "process.json", "--detach", "--pid-file", pidfile, cid,
           global_args=g)
    pid = int(pidfile.read_text())
    assert pid in wait_ps(sbx, cid, 2)
    sbx.ok("delete", "--force", cid)
    wait_gone([pid])


# ---------------------------------------------------------------------------
# --log-format json


def _bad_arg(b):
    b.config["process"]["args"] = ["sh", 5]
    b.write()


def _missing_bind(b):
    b.config["mounts"].append({"destination": "/mnt/x", "type": "bind", "source": str(b.path / "no-such-dir"),
                               "options": ["rbind"]})
    b.write()


def _failing_prestart(b):
    b.config["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}]}
    b.write()


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.parametrize("breaks, explains", [
    (_bad_arg, "process.args[1]"),
    (_missing_bind, "/mnt/x"),
    (_failing_prestart, "prestart"),
], ids=["config", "mount-in-init", "hook"])
def test_json_log_last_error_explains_create_failure(sbx, ctr, tmp_path, debug, breaks, explains):
    b = ctr(["true"])
    breaks(b)
    log, cid = tmp_path / "log.json", sbx.new_id()
    g = ["--log", log, "--log-format", "json", *(["--debug"] if debug else [])]
    cp = sbx.fail("create", "--bundle", b, "--pid-file", tmp_path / "pid", cid, global_args=g)
    errors = [e for e in log_entries(log) if e["level"] == "error"]
    assert errors, f"no error line in {log}:\n{describe(cp)}"
    assert explains in errors[-1]["msg"], errors
    assert not (tmp_path / "pid").exists()


def test_json_log_last_error_explains_start_failure(sbx, bundle, tmp_path):
    # a program that is there at create and gone at start
    b = bundle(["/bin/vanishing"])
    shutil.copy(b.rootfs / "bin/busybox", b.rootfs / "bin/vanishing")
    log, cid = tmp_path / "log.json", sbx.new_id()
    g = ["--log", log, "--log-format", "json", "--debug"]
    sbx.ok("create", "--bundle", b, cid, global_args=g)
    (b.rootfs / "bin/vanishing").unlink()
    sbx.fail("start", cid, global_args=g)
    errors = [e for e in log_entries(log) if e["level"] == "error"]
    assert errors and "/bin/vanishing" in errors[-1]["msg"], errors
    sbx.ok("delete", "--force", cid)


@pytest.mark.parametrize("cmd", ["state", "kill", "delete", "start", "ps"])
def test_json_log_missing_container(sbx, tmp_path, cmd):
    log, cid = tmp_path / "log.json", sbx.new_id()
    sbx.fail(cmd, cid, global_args=["--log", log, "--log-format", "json"])
    errors = [e for e in log_entries(log) if e["level"] == "error"]
    assert errors and NOT_EXIST in errors[-1]["msg"], errors


# ---------------------------------------------------------------------------
# state


def test_state_fields(sbx, ctr):
    b = ctr(["sleep", "100"])
    b.config["annotations"] = {"org.example.engine": "yes", "io.kubernetes.cri.sandbox-id": "abc"}
    b.write()
    cid = sbx.new_id()
    before = datetime.datetime.now(datetime.timezone.utc)
    sbx.ok("create", "--bundle", b, cid)
    st = sbx.state(cid)
    fields = {"ociVersion", "id", "status", "pid", "bundle", "rootfs", "created", "owner", "annotations"}
    assert fields <= set(st), st
    assert re.fullmatch(r"1\.\d+\.\d+(-\S+)?", st["ociVersion"]), st
    assert st["id"] == cid
    assert st["status"] == "created"
    assert isinstance(st["pid"], int) and st["pid"] > 0 and pid_alive(st["pid"])
    assert st["bundle"] == os.path.realpath(b.path)
    assert st["rootfs"] == os.path.realpath(b.rootfs)
    created = parse_rfc3339(st["created"])
    assert created.tzinfo is not None
    assert before - datetime.timedelta(seconds=5) <= created <= datetime.datetime.now(datetime.timezone.utc)
    assert st["owner"] == "root"
    assert st["annotations"] == b.config["annotations"]

    sbx.ok("start", cid)
    running = sbx.state(cid)
    assert running["status"] == "running" and running["pid"] == st["pid"]
    assert running["created"] == st["created"]
    sbx.ok("kill", cid, "KILL")
    stopped = sbx.wait_status(cid, "stopped")
    assert isinstance(stopped["pid"], int)
    assert stopped["bundle"] == st["bundle"] and stopped["created"] == st["created"]
    sbx.ok("delete", cid)


def test_state_without_annotations(sbx, ctr):
    b = ctr(["sleep", "100"])
    b.config.pop("annotations", None)
    b.write()
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    st = sbx.state(cid)
    assert st.get("annotations", {}) == {}
    sbx.ok("delete", "--force", cid)


def test_state_ociversion_matches_version_and_features(sbx, ctr):
    b = ctr(["sleep", "100"])
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    st = sbx.state(cid)
    spec = [line.split(":", 1)[1].strip() for line in sbxrun("--version").stdout.splitlines()
            if line.startswith("spec:")]
    assert spec == [st["ociVersion"]]
    assert json.loads(sbxrun("features").stdout)["ociVersionMax"] == st["ociVersion"]
    sbx.ok("delete", "--force", cid)


# ---------------------------------------------------------------------------
# error wording engines match on


@pytest.mark.parametrize("argv", [["state"], ["kill"], ["kill", "--all", "{id}", "KILL"], ["delete"],
                                  ["start"], ["ps"], ["ps", "--format", "json"], ["exec", "{id}", "true"]],
                         ids=lambda a: "-".join(x for x in a if x != "{id}").replace("--", ""))
def test_missing_container_says_does_not_exist(sbx, argv):
    cid = sbx.new_id()
    args = [a.replace("{id}", cid) for a in argv]
    if "{id}" not in argv:
        args.append(cid)
    cp = sbx.fail(*args)
    assert NOT_EXIST in cp.stderr, describe(cp)
    assert cp.stdout == ""


def test_kill_exited_container_says_not_running(sbx, ctr):
    b = ctr(["true"])
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    sbx.ok("start", cid)
    sbx.wait_status(cid, "stopped")
    for sig in ([], ["9"], ["TERM"]):
        cp = sbx.fail("kill", cid, *sig)
        assert NOT_RUNNING in cp.stderr, describe(cp)
    sbx.ok("delete", cid)


# ---------------------------------------------------------------------------
# kill, ps, delete


@pytest.mark.parametrize("sig", ["9", "KILL", "SIGKILL"])
def test_kill_signal_forms(sbx, ctr, sig):
    b = ctr(["sleep", "100"])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    sbx.ok("kill", cid, sig)
    sbx.wait_status(cid, "stopped")
    wait_gone([pid])
    sbx.ok("delete", cid)


def test_kill_all(sbx, ctr):
    """`kill --all ID KILL` reaches every process of the container, not
    only its init."""
    b = ctr(["sh", "-c", "sleep 100 & sleep 100 & wait"])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    pids = wait_ps(sbx, cid, 3)
    sbx.ok("kill", "--all", cid, "KILL")
    wait_gone(pids)
    sbx.wait_status(cid, "stopped")
    sbx.ok("delete", cid)


def test_ps_format_json(sbx, ctr):
    b = ctr(["sh", "-c", "sleep 100 & sleep 100 & wait"])
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    init = sbx.state(cid)["pid"]
    assert sbx.json("ps", "--format", "json", cid) == [init]
    sbx.ok("start", cid)
    pids = wait_ps(sbx, cid, 3)
    assert isinstance(pids, list) and all(type(p) is int for p in pids), pids
    assert init in pids and len(set(pids)) == len(pids)
    assert all(pid_alive(p) for p in pids), pids
    assert set(sbx.json("ps", "-f", "json", cid)) == set(pids)
    sbx.ok("delete", "--force", cid)
    wait_gone(pids)


def test_delete_force_is_idempotent(sbx, ctr):
    b = ctr(["sleep", "100"])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    sbx.ok("delete", "--force", cid)
    wait_gone([pid])
    assert NOT_EXIST in sbx.fail("state", cid).stderr
    sbx.ok("delete", "--force", cid)
    sbx.ok("delete", "--force", sbx.new_id())  # never existed
    assert sbx.list_ids() == []


def test_delete_force_created_container(sbx, ctr):
    b = ctr(["sleep", "100"])
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    sbx.ok("delete", "--force", cid)
    wait_gone([pid])
    assert NOT_EXIST in sbx.fail("state", cid).stderr


# ---------------------------------------------------------------------------
# features, checkpoint, --version


def test_features_plain():
    """containerd and the CRI run `features` with no global options."""
    cp = sbxrun("features")
    assert cp.returncode == 0, describe(cp)
    assert cp.stderr == ""
    f = json.loads(cp.stdout)
    for key in ("ociVersionMin", "ociVersionMax"):
        assert re.fullmatch(r"1\.\d+\.\d+", f[key]), f[key]
    hooks = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
    assert hooks <= set(f["hooks"])
    assert {"bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "rro"} <= set(f["mountOptions"])
    lx = f["linux"]
    assert {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"} <= set(lx["namespaces"])
    assert {"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_KILL"} <= set(lx["capabilities"])
    assert all(re.fullmatch(r"CAP_[A-Z_]+", c) for c in lx["capabilities"])
    assert isinstance(lx["cgroup"]["v1"], bool) and isinstance(lx["cgroup"]["v2"], bool)
    assert lx["cgroup"]["systemd"] is ("+SYSTEMD" in sbxrun("--version").stdout)  # --systemd-cgroup
    sc = lx["seccomp"]
    assert sc["enabled"] is True
    assert {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL"} <= set(sc["actions"])
    assert {"SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ"} <= set(sc["operators"])
    assert "SCMP_ARCH_X86_64" in sc["archs"]
    assert isinstance(lx.get("mountExtensions", {}).get("idmap", {}).get("enabled", False), bool)


def test_features_ignores_global_options(sbx):
    plain = sbxrun("features").stdout
    assert sbx.ok("features", global_args=["--log-format", "json"]).stdout == plain


def test_checkpoint_help():
    """podman disables checkpoint/restore when `checkpoint --help` fails."""
    cp = sbxrun("checkpoint", "--help")
    assert cp.returncode == 0, describe(cp)
    assert cp.stdout.startswith("Usage: sbxrun checkpoint")
    for opt in ("--image-path", "--work-path", "--leave-running"):
        assert opt in cp.stdout


def test_version_for_engines(sbx):
    """podman shows the first line; the spec line must agree with features."""
    for argv in (["--version"], ["-v"]):
        cp = sbx.ok(*argv, global_args=["--log-format", "json"])
        lines = cp.stdout.splitlines()
        assert re.fullmatch(r"sbxrun version \d+\.\d+\.\d+\S*", lines[0]), cp.stdout
        spec = [ln for ln in lines if ln.startswith("spec: ")]
        assert spec and spec[0] == "spec: " + json.loads(sbxrun("features").stdout)["ociVersionMax"]
        assert cp.stderr == ""
