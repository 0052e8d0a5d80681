"""OCI hooks (config.md "POSIX-platform Hooks", runtime.md "Lifecycle"):
prestart, createRuntime, createContainer, startContainer, poststart and
poststop run at their moment, in order, with the state on stdin, in the
right namespaces; failures abort or only warn as the spec says; timeouts
are enforced.

Every hook here is `/bin/sh -c HOOK_SCRIPT hook LABEL`: it appends one line
`LABEL <tab> mnt ns <tab> net ns <tab> rootfs /dev ready <tab> state JSON`
to $LOG.  /bin/sh resolves on the host for the runtime-namespace hooks and
for createContainer (which runs before pivot_root, so host paths still
work), and to the container's busybox for startContainer, whose $LOG is
the same host directory bind-mounted at /hooklog.
"""

import json
import os
import pwd
import signal
import sys
import time

import pytest

from conftest import add_bind, cgroup_dirs, describe, pid_alive, wait_for

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("create", "start", "state", "kill", "delete"),
              pytest.mark.usefixtures("seccomp_cache_cleanup")]


@pytest.fixture
def bundle(fast_bundle):
    """Here `bundle` is conftest's, with a cheaper rootfs copy (clone_rootfs)."""
    return fast_bundle


HOOK_SCRIPT = r"""
state=$(cat | tr -d '\n')
mnt=$(readlink /proc/self/ns/mnt)
net=$(readlink /proc/self/ns/net)
dev=no
if [ -n "$ROOTFS" ] && [ -c "$ROOTFS/dev/null" ]; then dev=yes; fi
printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$mnt" "$net" "$dev" "$state" >> "$LOG"
[ -n "$SLEEP" ] && exec sleep "$SLEEP"
exit "${CODE:-0}"
"""

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
IN_CONTAINER = ("createContainer", "startContainer")


class HookLog:
    """The log every hook of a test appends to (a host directory, also
    bind-mounted into the container at /hooklog)."""

    def __init__(self, d):
        self.dir = d
        self.dir.mkdir()
        self.dir.chmod(0o777)
        self.path = d / "log"

    def entries(self):
        """[(label, mnt ns, net ns, rootfs /dev ready, state dict)]"""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            label, mnt, net, dev, state = line.split("\t", 4)
            out.append((label, mnt, net, dev, json.loads(state) if state else None))
        return out

    def labels(self):
        return [e[0] for e in self.entries()]


@pytest.fixture
def log(tmp_path):
    return HookLog(tmp_path / "hooklog")


def hook(kind, log, label=None, *, code=0, timeout=None, sleep=None, rootfs=None, env=()):
    """A hook entry running HOOK_SCRIPT for KIND."""
    logpath = "/hooklog/log" if kind == "startContainer" else str(log.path)
    h = {"path": "/bin/sh", "args": ["sh", "-c", HOOK_SCRIPT, "hook", label or kind],
         "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"LOG={logpath}", f"CODE={code}", *env]}
    if sleep:
        h["env"].append(f"SLEEP={sleep}")
    if rootfs:
        h["env"].append(f"ROOTFS={rootfs}")
    if timeout is not None:
        h["timeout"] = timeout
    return h


def with_hooks(b, log, hooks):
    """Set HOOKS (and an annotation) in bundle B, whose container gets the
    hook log directory at /hooklog."""
    add_bind(b, log.dir, "/hooklog")
    with b.edit() as c:
        c["hooks"] = hooks
        c["annotations"] = {"org.example.hooks": "yes"}
    return b


def leftovers(sbx, cid, b):
    """What a failed create must not leave: state, cgroups."""
    found = []
    if (sbx.root / cid).exists():
        found.append(f"state dir {sbx.root / cid}")
    found += [d for d in cgroup_dirs(b.config["linux"]["cgroupsPath"]) if os.path.exists(d)]
    return found


def test_all_hooks_in_order_with_state_and_namespaces(sbx, bundle, log):
    host_mnt, host_net = os.readlink("/proc/self/ns/mnt"), os.readlink("/proc/self/ns/net")
    b = bundle(["sleep", "1000"])
    hooks = {k: [hook(k, log)] for k in KINDS}
    hooks["prestart"].append(hook("prestart", log, "prestart#2"))
    hooks["createContainer"] = [hook("createContainer", log, rootfs=b.rootfs)]
    with_hooks(b, log, hooks)
    cid = sbx.new_id()

    sbx.ok("create", "--bundle", b, cid)
    assert log.labels() == ["prestart", "prestart#2", "createRuntime", "createContainer"]
    pid = sbx.state(cid)["pid"]
    ctr_mnt, ctr_net = os.readlink(f"/proc/{pid}/ns/mnt"), os.readlink(f"/proc/{pid}/ns/net")

    sbx.ok("start", cid)
    assert log.labels()[4:] == ["startContainer", "poststart"], log.labels()
    sbx.ok("kill", cid, "KILL")
    sbx.wait_status(cid, "stopped")
    assert len(log.labels()) == 6, "a hook ran when the container stopped"
    sbx.ok("delete", cid)
    assert log.labels()[6:] == ["poststop"]

    # The create-time hooks see "created", as the OCI validation suite
    # (hooks_stdin) and other runtimes have it.
    want_status = {"prestart": {"created"}, "prestart#2": {"created"}, "createRuntime": {"created"},
                   "createContainer": {"creating", "created"}, "startContainer": {"created"},
                   "poststart": {"running"}, "poststop": {"stopped"}}
    for label, mnt, net, dev, state in log.entries():
        where = f"{label} hook"
        assert state is not None, f"{where} got no state on stdin"
        assert state["id"] == cid, where
        assert state["bundle"] == str(b.path.resolve()), where
        assert state.get("annotations") == {"org.example.hooks": "yes"}, where
        assert state["ociVersion"].startswith("1."), where
        assert state["status"] in want_status[label], f"{where}: status {state['status']}"
        # the init's hooks too: their state comes from the runtime's lookup
        assert state.get("owner") == pwd.getpwuid(os.geteuid()).pw_name, f"{where}: owner {state.get('owner')}"
        if label != "poststop":
            assert state["pid"] == pid, f"{where}: pid {state.get('pid')} != {pid}"
        if label.split("#")[0] in IN_CONTAINER:
            assert (mnt, net) == (ctr_mnt, ctr_net), f"{where} did not run in the container's namespaces"
        else:
            assert (mnt, net) == (host_mnt, host_net), f"{where} did not run in the runtime's namespaces"
    # createContainer: after the mounts and /dev, before pivot_root (the host
    # path of the rootfs is still reachable and populated)
    assert [e[3] for e in log.entries() if e[0] == "createContainer"] == ["yes"]


@pytest.mark.needs_cmd("run")
def test_hooks_with_run(sbx, bundle, log):
    b = with_hooks(bundle(["true"]), log, {k: [hook(k, log)] for k in KINDS})
    cid = sbx.new_id()
    cp = sbx("run", "--bundle", b, cid)
    assert cp.returncode == 0, describe(cp)
    assert log.labels() == list(KINDS)


HOOK_PROBE = """
import json, os, sys
fds = []
for fd in range(1024):
    try:
        os.fstat(fd)
        fds.append(fd)
    except OSError:
        pass
with open("/proc/self/cmdline", "rb") as f:
    argv = f.read().decode().split("\\0")[:-1]
with open("/proc/self/environ", "rb") as f:
    env = f.read().decode().split("\\0")[:-1]
with open(sys.argv[1], "w") as f:
    json.dump({"fds": fds, "argv": argv, "env": env, "stdin": sys.stdin.read()}, f)
"""


def test_hook_args_env_and_fds(sbx, bundle, log, tmp_path):
    record = tmp_path / "record.json"
    argv = ["custom-argv0", "-c", HOOK_PROBE, str(record), "two words"]
    h = {"path": sys.executable, "args": argv, "env": ["ONE=1", "SPACED=a b", "EMPTY="]}
    b = with_hooks(bundle(["sleep", "1000"]), log, {"createRuntime": [h]})
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    seen = json.loads(record.read_text())
    assert seen["argv"] == argv
    assert seen["env"] == ["ONE=1", "SPACED=a b", "EMPTY="], "the hook's environment is not exactly hook.env"
    assert seen["fds"] == [0, 1, 2], f"runtime fds leaked into the hook: {seen['fds']}"
    assert json.loads(seen["stdin"])["id"] == cid


def test_hook_without_args_gets_path_as_argv0(sbx, bundle, tmp_path):
    script = tmp_path / "hook.sh"
    script.write_text(f"#!/bin/sh\necho \"$0 $#\" > {tmp_path}/argv\n")
    script.chmod(0o755)
    b = bundle(["true"])
    with b.edit() as c:
        c["hooks"] = {"createRuntime": [{"path": str(script)}]}
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    assert (tmp_path / "argv").read_text() == f"{script} 0\n"


# ---- failures


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_leaves_nothing(sbx, bundle, log, kind):
    hooks = {k: [hook(k, log)] for k in KINDS}
    hooks[kind] = [hook(kind, log), hook(kind, log, f"{kind}-failing", code=3)]
    b = with_hooks(bundle(["sleep", "1000"]), log, hooks)
    cid = sbx.new_id()
    cp = sbx.fail("create", "--bundle", b, cid)
    assert f"{kind} hook #2 (/bin/sh)" in cp.stderr and "status 3" in cp.stderr, describe(cp)
    labels = log.labels()
    assert labels[-1] == f"{kind}-failing", labels
    assert not {"startContainer", "poststart"} & set(labels), labels
    assert leftovers(sbx, cid, b) == []
    cp = sbx.fail("state", cid)
    assert f'container "{cid}" does not exist' in cp.stderr
    pid = log.entries()[-1][4]["pid"]
    assert pid and not pid_alive(pid), f"the container process {pid} survived the failed create"


def test_failing_start_container_hook(sbx, bundle, log, tmp_path):
    marker = tmp_path / "marker"
    b = with_hooks(bundle(["sh", "-c", "touch /t/marker; exec sleep 1000"]), log,
                   {"startContainer": [hook("startContainer", log, code=4)],
                    "poststart": [hook("poststart", log)]})
    add_bind(b, tmp_path, "/t")
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    cp = sbx.fail("start", cid)
    assert "startContainer hook #1" in cp.stderr and "status 4" in cp.stderr, describe(cp)
    time.sleep(0.1)
    assert not marker.exists(), "process.args ran although startContainer failed"
    assert "poststart" not in log.labels()
    wait_for(lambda: not pid_alive(pid), what="the container to be stopped")
    assert sbx.state(cid)["status"] == "stopped"
    sbx.ok("delete", cid)


def test_failing_poststart_hook_is_a_warning(sbx, bundle, log, tmp_path):
    """runtime-spec 1.2 (and before; what `sbxrun spec` writes and the OCI
    validation suite checks): a warning, the lifecycle goes on."""
    b = with_hooks(bundle(["sh", "-c", "touch /t/marker; exec sleep 1000"]), log,
                   {"poststart": [hook("poststart", log, code=5), hook("poststart", log, "second")]})
    add_bind(b, tmp_path, "/t")
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    cp = sbx("start", cid)
    assert cp.returncode == 0, describe(cp)
    assert "poststart hook #1" in cp.stderr and "status 5" in cp.stderr, describe(cp)
    assert sbx.state(cid)["status"] == "running"
    wait_for(lambda: (tmp_path / "marker").exists(), what="the process to run")
    assert log.labels()[0] == "poststart"


def spec_1_3(b):
    with b.edit() as c:
        c["ociVersion"] = "1.3.0"
    return b


def test_failing_poststart_hook_stops_the_container(sbx, bundle, log, tmp_path):
    """runtime.md lifecycle step 9 from runtime-spec 1.3 on (runc 1.1.5
    kills the container too, but runs poststart at create): a failing
    poststart hook is an error: `start` fails naming it, the container is
    killed and stopped, the hooks after it do not run; delete runs
    poststop."""
    b = with_hooks(bundle(["sh", "-c", "touch /t/marker; exec sleep 1000"]), log,
                   {"poststart": [hook("poststart", log, code=5), hook("poststart", log, "second")],
                    "poststop": [hook("poststop", log)]})
    spec_1_3(b)
    add_bind(b, tmp_path, "/t")
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    cp = sbx.fail("start", cid)
    assert "poststart hook #1 (/bin/sh)" in cp.stderr and "status 5" in cp.stderr, describe(cp)
    assert not pid_alive(pid), "the container process outlived its failed poststart hook"
    assert sbx.state(cid)["status"] == "stopped"
    assert log.labels() == ["poststart"], "a poststart hook after the failing one ran"
    sbx.ok("delete", cid)
    assert log.labels() == ["poststart", "poststop"]
    assert leftovers(sbx, cid, b) == []


@pytest.mark.needs_cmd("run")
def test_failing_poststart_hook_fails_run(sbx, bundle, log):
    """1.3, `run`: the same error and exit status, and the container is deleted
    (poststop runs), without waiting for the process."""
    b = spec_1_3(with_hooks(bundle(["sleep", "1000"]), log,
                            {"poststart": [hook("poststart", log, code=5), hook("poststart", log, "second")],
                             "poststop": [hook("poststop", log)]}))
    cid = sbx.new_id()
    t0 = time.monotonic()
    cp = sbx("run", "--bundle", b, cid, timeout=30)
    assert cp.returncode != 0 and "poststart hook #1 (/bin/sh)" in cp.stderr, describe(cp)
    assert time.monotonic() - t0 < 10
    assert log.labels() == ["poststart", "poststop"]
    pid = log.entries()[0][4]["pid"]
    assert not pid_alive(pid), "the container process outlived its failed poststart hook"
    assert leftovers(sbx, cid, b) == []
    assert sbx.fail("state", cid).returncode != 0


def test_failing_poststop_hook_is_a_warning(sbx, bundle, log):
    b = with_hooks(bundle(["sleep", "1000"]), log,
                   {"poststop": [hook("poststop", log, code=6), hook("poststop", log, "second")]})
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    cp = sbx("delete", "--force", cid)
    assert cp.returncode == 0, describe(cp)
    assert "poststop hook #1" in cp.stderr and "status 6" in cp.stderr, describe(cp)
    assert log.labels()[0] == "poststop"
    assert leftovers(sbx, cid, b) == []


def test_missing_hook_binary(sbx, bundle):
    b = bundle(["true"])
    with b.edit() as c:
        c["hooks"] = {"createRuntime": [{"path": "/no/such/hook"}]}
    cid = sbx.new_id()
    cp = sbx.fail("create", "--bundle", b, cid)
    assert "createRuntime hook #1 (/no/such/hook)" in cp.stderr, describe(cp)
    assert leftovers(sbx, cid, b) == []


def test_relative_hook_path_is_refused(sbx, bundle):
    b = bundle(["true"])
    with b.edit() as c:
        c["hooks"] = {"prestart": [{"path": "bin/true"}]}
    cid = sbx.new_id()
    cp = sbx.fail("create", "--bundle", b, cid)
    assert "bin/true" in cp.stderr, describe(cp)
    assert leftovers(sbx, cid, b) == []


def test_hook_killed_by_signal_fails_create(sbx, bundle, log):
    b = bundle(["true"])
    with b.edit() as c:
        c["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "kill -TERM $$"]}]}
    cid = sbx.new_id()
    cp = sbx.fail("create", "--bundle", b, cid)
    assert "createRuntime hook #1" in cp.stderr and f"signal {int(signal.SIGTERM)}" in cp.stderr, describe(cp)
    assert leftovers(sbx, cid, b) == []


# ---- timeouts and stdin handling


def test_hook_timeout_is_enforced(sbx, bundle, tmp_path):
    pidfile = tmp_path / "hook.pid"
    b = bundle(["sleep", "1000"])
    with b.edit() as c:
        c["hooks"] = {"createRuntime": [{"path": "/bin/sh", "timeout": 1,
                                         "args": ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"]}]}
    cid = sbx.new_id()
    t0 = time.monotonic()
    cp = sbx.fail("create", "--bundle", b, cid)
    elapsed = time.monotonic() - t0
    assert "createRuntime hook #1" in cp.stderr and "timed out" in cp.stderr, describe(cp)
    assert 0.9 <= elapsed < 10, f"create took {elapsed:.1f}s with a 1s hook timeout"
    assert not pid_alive(int(pidfile.read_text())), "the timed out hook still runs"
    assert leftovers(sbx, cid, b) == []


def test_poststart_timeout_is_a_warning(sbx, bundle, log):
    b = with_hooks(bundle(["sleep", "1000"]), log,
                   {"poststart": [hook("poststart", log, sleep=60, timeout=1)]})
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    t0 = time.monotonic()
    cp = sbx("start", cid)
    assert cp.returncode == 0, describe(cp)
    assert time.monotonic() - t0 < 10
    assert "poststart hook #1" in cp.stderr and "timed out" in cp.stderr, describe(cp)
    assert sbx.state(cid)["status"] == "running"


def test_poststart_timeout_stops_the_container(sbx, bundle, log):
    b = spec_1_3(with_hooks(bundle(["sleep", "1000"]), log,
                            {"poststart": [hook("poststart", log, sleep=60, timeout=1)]}))
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    t0 = time.monotonic()
    cp = sbx.fail("start", cid)
    assert time.monotonic() - t0 < 10
    assert "poststart hook #1" in cp.stderr and "timed out" in cp.stderr, describe(cp)
    assert sbx.state(cid)["status"] == "stopped"


@pytest.mark.parametrize("script", ["exit 0", "exec 0<&-; sleep 0.2", "head -c 10 >/dev/null"],
                         ids=["exits-at-once", "closes-stdin", "reads-a-little"])
def test_hook_not_reading_a_large_state(sbx, bundle, script):
    """A state bigger than a pipe buffer (100 kB) must not block or kill the
    runtime when the hook does not read it all."""
    b = bundle(["true"])
    with b.edit() as c:
        c["annotations"] = {f"org.example.big{i}": "x" * 1000 for i in range(100)}
        c["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script], "timeout": 20}]}
    cid = sbx.new_id()
    cp = sbx("create", "--bundle", b, cid)
    assert cp.returncode == 0, describe(cp)
    assert sbx.state(cid)["status"] == "created"


def test_hook_reads_a_large_state(sbx, bundle, tmp_path):
    b = bundle(["true"])
    big = {f"org.example.big{i}": "y" * 1000 for i in range(100)}
    with b.edit() as c:
        c["annotations"] = big
        c["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {tmp_path}/state"]}]}
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    assert json.loads((tmp_path / "state").read_text())["annotations"] == big


def test_failing_poststop_hook_does_not_stop_the_others(sbx, bundle, tmp_path):
    """runtime.md: a failing poststop hook is a warning; the remaining hooks
    still run and delete completes."""
    out = tmp_path / "poststop.out"
    b = bundle(["true"])
    with b.edit() as c:
        c["hooks"] = {"poststop": [{"path": "/bin/false"},
                                   {"path": "/bin/sh", "args": ["sh", "-c", f"echo second >> {out}"]}]}
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    sbx.ok("start", cid)
    sbx.wait_status(cid, "stopped")
    cp = sbx.ok("delete", cid)
    assert "poststop hook #1" in cp.stderr, cp.stderr
    assert out.read_text() == "second\n"
    assert not (sbx.root / cid).exists()


def test_runtime_hooks_stay_in_the_runtime_pid_namespace(sbx, bundle, tmp_path):
    """A container joining another's pid namespace by path: its
    createRuntime hook still runs in the runtime's pid namespace."""
    first = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", bundle(["sleep", "600"]), first)
    pid = json.loads(sbx.ok("state", first).stdout)["pid"]
    out = tmp_path / "hook-pidns"
    b = bundle(["true"])
    with b.edit() as c:
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
        c["linux"]["namespaces"].append({"type": "pid", "path": f"/proc/{pid}/ns/pid"})
        c["hooks"] = {"createRuntime": [{"path": "/bin/sh",
                                         "args": ["sh", "-c", f"readlink /proc/self/ns/pid > {out}"]}]}
    second = sbx.new_id()
    sbx.ok("create", "--bundle", b, second)
    assert out.read_text().strip() == os.readlink("/proc/self/ns/pid")
    # and the container itself did join the first one's pid namespace
    pid2 = json.loads(sbx.ok("state", second).stdout)["pid"]
    assert os.readlink(f"/proc/{pid2}/ns/pid") == os.readlink(f"/proc/{pid}/ns/pid")
    sbx.ok("delete", "--force", second)
    sbx.ok("delete", "--force", first)
