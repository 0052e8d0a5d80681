"""`sbxrun exec`: a new process in a running container.

The process is built from the container's own process plus flags (runc's
semantics) or read whole from --process FILE (what containerd and podman
pass).  It must land in every namespace and the cgroup of the container,
get its seccomp filter, and report its exit status.
"""

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import termios

import pytest

from conftest import (
    cap_mask,
    cap_names,
    describe,
    parse_status,
    pid_alive,
    read_pty_until,
    run_cmd,
    wait_for,
    Spawned,
)

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("run", "exec", "state"),
              pytest.mark.usefixtures("seccomp_cache_cleanup")]


@pytest.fixture
def bundle(fast_bundle):
    """Here `bundle` is conftest's, with a cheaper rootfs copy (clone_rootfs)."""
    return fast_bundle


NS_FILES = ("cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children",
            "user", "uts")


def start(sbx, b):
    cid = sbx.new_id()
    b.args = ["sleep", "1000"]
    sbx.ok("run", "--detach", "--bundle", b, cid)
    return cid, sbx.state(cid)["pid"]


@pytest.fixture
def ctr(sbx, bundle):
    """A running busybox container (`sleep 1000`) with a tmpfs at /w, an
    environment variable and noNewPrivileges off."""
    b = bundle()
    with b.edit() as c:
        c["process"]["env"].append("FROM_CONFIG=yes")
        c["process"]["noNewPrivileges"] = False
        c["mounts"].append({"destination": "/w", "type": "tmpfs", "source": "tmpfs",
                            "options": ["mode=1777"]})
    cid, pid = start(sbx, b)
    return cid, pid, b


def exec_ok(sbx, cid, *args, **kw):
    """`sbxrun exec OPTIONS... CID COMMAND...`, where ARGS are the options
    followed by the command as a list; assert success, return stdout."""
    cp = sbx("exec", *args[:-1], cid, *args[-1], **kw)
    assert cp.returncode == 0, describe(cp)
    return cp.stdout


# ---- basic form, exit status


def test_exec_args_output_and_exit_code(sbx, ctr):
    cid, _, _ = ctr
    cp = sbx("exec", cid, "sh", "-c", "echo out; echo err >&2; exit 42")
    assert (cp.returncode, cp.stdout, cp.stderr) == (42, "out\n", "err\n"), describe(cp)
    assert sbx("exec", cid, "true").returncode == 0


def test_exec_killed_by_signal(sbx, ctr):
    cid, _, _ = ctr
    cp = sbx("exec", cid, "sh", "-c", "kill -KILL $$")
    assert cp.returncode == 128 + signal.SIGKILL, describe(cp)
    cp = sbx("exec", cid, "sh", "-c", "kill -TERM $$")
    assert cp.returncode == 128 + signal.SIGTERM, describe(cp)


def test_exec_stdin(sbx, ctr):
    cid, _, _ = ctr
    cp = sbx("exec", cid, "sh", "-c", "read a; echo got:$a", input="piped\n")
    assert cp.returncode == 0 and cp.stdout == "got:piped\n", describe(cp)


def test_exec_searches_the_container_path(sbx, bundle):
    b = bundle()
    tool = b.rootfs / "opt/tools/sbx-hello"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\necho hello from $0\n")
    tool.chmod(0o755)
    with b.edit() as c:
        c["process"]["env"] = ["PATH=/opt/tools:/bin"]
    cid, _ = start(sbx, b)
    assert exec_ok(sbx, cid, ["sbx-hello"]) == "hello from /opt/tools/sbx-hello\n"
    cp = sbx("exec", "-e", "PATH=/bin", cid, "sbx-hello")
    assert cp.returncode != 0 and "sbx-hello" in cp.stderr, describe(cp)


def test_exec_missing_program(sbx, ctr):
    cid, pid, _ = ctr
    cp = sbx("exec", cid, "/no/such/program")
    assert cp.returncode != 0, describe(cp)
    assert "/no/such/program" in cp.stderr, describe(cp)
    assert json.loads(sbx.ok("ps", "--format", "json", cid).stdout) == [pid], "a failed exec left a process"
    assert sbx.state(cid)["status"] == "running"


def test_exec_inherits_the_container_process(sbx, ctr):
    cid, _, b = ctr
    out = exec_ok(sbx, cid, ["sh", "-c", "echo $FROM_CONFIG; pwd; id -u; ulimit -n; "
                                         "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"])
    lines = out.splitlines()
    assert lines[:4] == ["yes", b.config["process"]["cwd"], "0", "1024"], lines
    st = parse_status("\n".join(lines[4:]))
    assert int(st["CapEff"], 16) == cap_mask(b.config["process"]["capabilities"]["effective"])
    assert st["NoNewPrivs"] == "0"


# ---- flags


def test_exec_env(sbx, ctr):
    cid, _, _ = ctr
    out = exec_ok(sbx, cid, "-e", "NEW=1", "--env", "FROM_CONFIG=overridden", "-e", "SPACED=a b",
                  ["sh", "-c", "tr '\\0' '\\n' < /proc/$$/environ; exit 0"])
    env = out.splitlines()
    assert "NEW=1" in env and "SPACED=a b" in env, env
    assert [v for v in env if v.startswith("FROM_CONFIG=")] == ["FROM_CONFIG=overridden"], env
    assert any(v.startswith("PATH=") for v in env)


def test_exec_env_rejects_malformed(sbx, ctr):
    cid, _, _ = ctr
    cp = sbx.fail("exec", "-e", "NOEQUALS", cid, "true")
    assert "NOEQUALS" in cp.stderr, describe(cp)


def test_exec_cwd(sbx, ctr):
    cid, _, _ = ctr
    assert exec_ok(sbx, cid, "--cwd", "/var/tmp", ["pwd"]) == "/var/tmp\n"
    cp = sbx.fail("exec", "--cwd", "/does/not/exist", cid, "pwd")
    assert "/does/not/exist" in cp.stderr, describe(cp)
    cp = sbx.fail("exec", "--cwd", "relative/dir", cid, "pwd")
    assert "relative/dir" in cp.stderr, describe(cp)


def test_exec_user_and_groups(sbx, ctr):
    cid, _, _ = ctr
    out = exec_ok(sbx, cid, "--user", "1000:1001", "-g", "5", "--additional-gids", "2000",
                  ["cat", "/proc/self/status"])
    st = parse_status(out)
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["1001"] * 4
    assert sorted(st["Groups"].split(), key=int) == ["5", "2000"]
    # a non-root exec keeps no capabilities (no ambient ones configured)
    assert int(st["CapEff"], 16) == 0, cap_names(int(st["CapEff"], 16))
    out = exec_ok(sbx, cid, "-u", "1234", ["sh", "-c", "id -u; id -g"])
    assert out.split() == ["1234", "0"]


def test_exec_user_rejects_names(sbx, ctr):
    cid, _, _ = ctr
    cp = sbx.fail("exec", "--user", "nobody", cid, "true")
    assert "nobody" in cp.stderr, describe(cp)


def test_exec_cap(sbx, ctr):
    cid, _, b = ctr
    base = cap_mask(b.config["process"]["capabilities"]["effective"])
    st = parse_status(exec_ok(sbx, cid, ["cat", "/proc/self/status"]))
    assert not int(st["CapEff"], 16) & cap_mask(["CAP_SYS_ADMIN"])
    st = parse_status(exec_ok(sbx, cid, "--cap", "CAP_SYS_ADMIN", "-c", "CAP_NET_RAW",
                        ["cat", "/proc/self/status"]))
    added = cap_mask(["CAP_SYS_ADMIN", "CAP_NET_RAW"])
    for key in ("CapEff", "CapPrm", "CapBnd"):
        assert int(st[key], 16) == base | added, f"{key}: {cap_names(int(st[key], 16))}"
    # bounding, effective and permitted only, as runc does
    caps = b.config["process"]["capabilities"]
    assert int(st["CapAmb"], 16) == cap_mask(caps.get("ambient", [])), cap_names(int(st["CapAmb"], 16))
    assert int(st["CapInh"], 16) == cap_mask(caps.get("inheritable", [])), cap_names(int(st["CapInh"], 16))
    cp = sbx.fail("exec", "--cap", "CAP_NOT_A_CAP", cid, "true")
    assert "CAP_NOT_A_CAP" in cp.stderr, describe(cp)


def test_exec_no_new_privs(sbx, ctr):
    cid, _, _ = ctr
    assert parse_status(exec_ok(sbx, cid, ["cat", "/proc/self/status"]))["NoNewPrivs"] == "0"
    assert parse_status(exec_ok(sbx, cid, "--no-new-privs", ["cat", "/proc/self/status"]))["NoNewPrivs"] == "1"


def test_exec_preserve_fds(sbx, ctr, tmp_path):
    cid, _, _ = ctr
    f3 = tmp_path / "three"
    f3.write_text("passed in\n")
    argv = sbx.argv("exec", "--preserve-fds", "1", cid, "sh", "-c", "ls /proc/$$/fd; cat <&3; exit 0")
    cp = run_cmd(["/bin/sh", "-c", 'exec 3<"$1" 4<"$1"; shift; exec "$@"', "sh", f3, *argv])
    assert cp.returncode == 0, describe(cp)
    lines = cp.stdout.split()
    assert sorted(lines[:-2], key=int) == ["0", "1", "2", "3"], lines
    assert lines[-2:] == ["passed", "in"]


def test_exec_without_preserve_fds_leaks_nothing(sbx, ctr, tmp_path):
    cid, _, _ = ctr
    f = tmp_path / "f"
    f.write_text("x")
    argv = sbx.argv("exec", cid, "sh", "-c", "ls /proc/$$/fd; exit 0")
    cp = run_cmd(["/bin/sh", "-c", 'exec 3<"$1" 7<"$1"; shift; exec "$@"', "sh", f, *argv])
    assert cp.returncode == 0, describe(cp)
    assert sorted(cp.stdout.split(), key=int) == ["0", "1", "2"]


# ---- --process


def test_exec_process_file(sbx, ctr, tmp_path):
    cid, _, _ = ctr
    proc = {
        "terminal": False,
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [3000], "umask": 0o077},
        "args": ["sh", "-c", "cat /proc/self/status; echo cwd=$(pwd) env=$ONLY n=$(ulimit -n); "
                             "echo $FROM_CONFIG-unset; touch /w/f; stat -c mode=%a /w/f"],
        "env": ["PATH=/bin", "ONLY=this"],
        "cwd": "/w",
        "capabilities": {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted", "inheritable",
                                                    "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 88}],
        "noNewPrivileges": True,
    }
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(proc))
    cp = sbx("exec", "--process", pf, cid)
    assert cp.returncode == 0, describe(cp)
    st = parse_status(cp.stdout)
    assert st["Uid"].split() == ["1000"] * 4 and st["Gid"].split() == ["1000"] * 4
    assert st["Groups"].split() == ["3000"]
    assert st["NoNewPrivs"] == "1"
    for key in ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(st[key], 16) == cap_mask(["CAP_KILL"]), f"{key}: {cap_names(int(st[key], 16))}"
    assert "cwd=/w env=this n=77" in cp.stdout
    assert "\n-unset\n" in cp.stdout, "the container's environment leaked into a --process exec"
    assert "mode=600" in cp.stdout


def test_exec_process_file_exit_code(sbx, ctr, tmp_path):
    cid, _, _ = ctr
    pf = tmp_path / "p.json"
    pf.write_text(json.dumps({"args": ["sh", "-c", "exit 9"], "cwd": "/", "env": ["PATH=/bin"],
                              "user": {"uid": 0, "gid": 0}}))
    assert sbx("exec", "-p", pf, cid).returncode == 9


def test_exec_process_file_invalid(sbx, ctr, tmp_path):
    cid, _, _ = ctr
    pf = tmp_path / "p.json"
    pf.write_text(json.dumps({"args": ["true"], "cwd": "relative"}))
    cp = sbx.fail("exec", "--process", pf, cid)
    assert "cwd" in cp.stderr, describe(cp)
    pf.write_text("{not json")
    cp = sbx.fail("exec", "--process", pf, cid)
    assert str(pf) in cp.stderr, describe(cp)
    assert json.loads(sbx.ok("ps", "--format", "json", cid).stdout) == [ctr[1]]


@pytest.mark.parametrize("flags", [["--env", "X=1"], ["--cwd", "/tmp"], ["--user", "1:1"], ["--cap", "CAP_SYS_ADMIN"],
                                   ["--no-new-privs"], ["--additional-gids", "5"], ["--tty"]])
def test_exec_process_file_refuses_overlay_flags(sbx, ctr, tmp_path, flags):
    """runc 1.1 silently ignores these next to --process; sbxrun names them
    (--tty only when the file's process.terminal is not true)."""
    cid, _, _ = ctr
    pf = tmp_path / "p.json"
    pf.write_text(json.dumps({"args": ["sh", "-c", "echo ran; id"], "cwd": "/", "env": ["PATH=/bin"],
                              "user": {"uid": 0, "gid": 0}}))
    cp = sbx.fail("exec", "--process", pf, *flags, cid)
    assert flags[0] in cp.stderr and str(pf) in cp.stderr, describe(cp)
    assert "ran" not in cp.stdout
    assert json.loads(sbx.ok("ps", "--format", "json", cid).stdout) == [ctr[1]]


def test_exec_process_file_tty_agreeing(sbx, ctr, tmp_path, console_socket):
    """podman passes --tty with a file whose terminal is true: that runs."""
    cid, _, _ = ctr
    pf = tmp_path / "p.json"
    pf.write_text(json.dumps({"terminal": True, "args": ["sh", "-c", "test -t 0 && echo stdin-tty; read x; exit 4"],
                              "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}))
    sp = Spawned(sbx, "exec", "--process", pf, "--tty", "--console-socket", console_socket.path, cid)
    master, _ = console_socket.receive()
    try:
        read_pty_until(master, "stdin-tty")
        os.write(master, b"x\n")
        code, _, stderr = sp.finish()
        assert code == 4, stderr
    finally:
        os.close(master)


# ---- terminal


def test_exec_tty_with_console_socket(sbx, ctr, console_socket):
    cid, _, _ = ctr
    sp = Spawned(sbx, "exec", "-t", "--console-socket", console_socket.path, cid,
                 "sh", "-c", "tty; test -t 0 && echo stdin-tty; read x; echo got-$x; exit 6")
    master, _ = console_socket.receive()
    try:
        text = read_pty_until(master, "stdin-tty")
        assert re.search(r"^/dev/pts/\d+\r$", text, re.M), text
        os.write(master, b"hello\n")
        read_pty_until(master, "got-hello")
        code, _, stderr = sp.finish()
        assert code == 6, stderr
    finally:
        os.close(master)


def test_pod_member_with_terminal(sbx, ctr, bundle, console_socket):
    """A container joining the pid namespace of another by path, with a
    terminal: the init forked into the namespace makes the pty's session
    (the setup process that joined the namespace is gone by then)."""
    _, ppid, _ = ctr
    b = bundle(["sh", "-c", "tty; echo sid-$(cut -d' ' -f6 /proc/self/stat)-pid-$$; read x; echo got-$x; exit 4"],
               terminal=True)
    with b.edit() as c:
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
        c["linux"]["namespaces"].append({"type": "pid", "path": f"/proc/{ppid}/ns/pid"})
    cid = sbx.new_id()
    sbx.ok("create", "--console-socket", console_socket.path, "--bundle", b, cid)
    master, _ = console_socket.receive()
    try:
        sbx.ok("start", cid)
        text = read_pty_until(master, re.compile(r"sid-\d+-pid-\d+"))
        m = re.search(r"sid-(\d+)-pid-(\d+)", text)
        assert m.group(1) == m.group(2), text  # its own session, on the pty
        os.write(master, b"hi\n")
        read_pty_until(master, "got-hi")
    finally:
        os.close(master)
    sbx.wait_status(cid, "stopped")


def test_exec_detached_tty(sbx, ctr, console_socket, tmp_path):
    cid, _, _ = ctr
    sbx.ok("exec", "-d", "-t", "--console-socket", console_socket.path, "--pid-file", tmp_path / "pid",
           cid, "sh", "-c", "echo ready-$((1+1)); read x; echo bye-$x")
    master, _ = console_socket.receive()
    try:
        pid = int((tmp_path / "pid").read_text())
        read_pty_until(master, "ready-2")
        os.write(master, b"now\n")
        read_pty_until(master, "bye-now")
        wait_for(lambda: not pid_alive(pid), what="the detached tty process to finish")
    finally:
        os.close(master)


def test_exec_tty_in_foreground_without_console_socket(sbx, ctr):
    cid, _, _ = ctr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        argv = sbx.argv("exec", "-t", cid, "sh", "-c", "read x; stty size; tty; echo got-$x; exit 8")
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    finally:
        os.close(slave)
    sbx._procs.append(p)
    try:
        os.write(master, b"typed\n")
        text = read_pty_until(master, "got-typed")
        assert "40 120" in text, text
        assert re.search(r"^/dev/pts/\d+\r$", text, re.M), text
        assert p.wait(timeout=30) == 8
    finally:
        os.close(master)


def test_exec_detached_tty_needs_console_socket(sbx, ctr):
    cid, pid, _ = ctr
    cp = sbx.fail("exec", "-d", "-t", cid, "true")
    assert "console-socket" in cp.stderr, describe(cp)


# ---- detached, namespaces, cgroup, exe


def test_exec_detached_joins_everything(sbx, ctr, tmp_path):
    cid, pid, b = ctr
    pidfile = tmp_path / "exec.pid"
    cp = sbx.ok("exec", "--detach", "--pid-file", pidfile, cid, "sleep", "999")
    assert cp.stdout == ""
    epid = int(pidfile.read_text())
    assert epid != pid and pid_alive(epid)
    for ns in NS_FILES:
        assert os.readlink(f"/proc/{epid}/ns/{ns}") == os.readlink(f"/proc/{pid}/ns/{ns}"), \
            f"exec'd process is not in the container's {ns} namespace"
    with open(f"/proc/{epid}/cgroup") as f, open(f"/proc/{pid}/cgroup") as g:
        assert f.read() == g.read(), "exec'd process is not in the container's cgroup"
    exe, busybox = os.stat(f"/proc/{epid}/exe"), os.stat(b.rootfs / "bin/busybox")
    assert (exe.st_dev, exe.st_ino) == (busybox.st_dev, busybox.st_ino)
    assert os.readlink(f"/proc/{epid}/root") == "/" and \
        os.stat(f"/proc/{epid}/root").st_ino == os.stat(f"/proc/{pid}/root").st_ino
    with open(f"/proc/{epid}/status") as f:
        st = parse_status(f.read())
    assert st["NSpid"].split()[0] == str(epid) and st["NSpid"].split()[1] != "1"
    assert sorted(json.loads(sbx.ok("ps", "--format", "json", cid).stdout)) == sorted([pid, epid])


def test_exec_sees_the_container_from_inside(sbx, ctr):
    cid, _, b = ctr
    out = exec_ok(sbx, cid, ["sh", "-c",
                             "for n in " + " ".join(NS_FILES) + "; do "
                             "[ $(readlink /proc/self/ns/$n) = $(readlink /proc/1/ns/$n) ] "
                             "|| echo differs:$n; done; "
                             "echo pid=$$; hostname; cat /proc/self/cgroup; "
                             "cat /proc/1/cmdline | tr '\\0' ' '; "
                             "echo; grep Seccomp: /proc/self/status"])
    lines = out.splitlines()
    assert not [v for v in lines if v.startswith("differs:")], lines
    assert lines[0] != "pid=1"
    assert lines[1] == b.config["hostname"]
    cg = [v for v in lines if re.match(r"\d+:", v)]
    assert cg and all(v.endswith(":/") for v in cg), cg
    assert "sleep 1000 " in lines
    assert lines[-1].split() == ["Seccomp:", "2"], \
        "exec'd process runs without the container's seccomp filter"


def test_exec_joins_user_namespace(sbx, public_bundle):
    b = public_bundle()
    with b.edit() as c:
        c["root"]["readonly"] = False
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cid, pid = start(sbx, b)
    out = exec_ok(sbx, cid, ["sh", "-c", "cat /proc/self/uid_map; id -u; touch /tmp/by-exec; "
                                         "for n in user mnt pid; do readlink /proc/self/ns/$n; done"])
    lines = out.splitlines()
    assert lines[0].split() == ["0", "100000", "65536"]
    assert lines[1] == "0"
    assert lines[2:] == [os.readlink(f"/proc/{pid}/ns/{n}") for n in ("user", "mnt", "pid")]
    assert os.stat(b.rootfs / "tmp/by-exec").st_uid == 100000, "exec'd root is not host uid 100000"


def test_exec_joins_time_namespace(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"boottime": {"secs": 1000000, "nanosecs": 0}}
    cid, pid = start(sbx, b)
    out = exec_ok(sbx, cid, ["sh", "-c", "cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime; "
                                         "readlink /proc/self/ns/time"])
    lines = out.splitlines()
    assert any(v.split()[:2] == ["boottime", "1000000"] for v in lines), lines
    host_uptime = float(open("/proc/uptime").read().split()[0])
    assert int(lines[-2]) >= 1000000 + int(host_uptime) - 2, lines
    assert lines[-1] == os.readlink(f"/proc/{pid}/ns/time") != os.readlink("/proc/self/ns/time")


def test_exec_into_created_container(sbx, bundle):
    b = bundle(["sleep", "1000"])
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    cp = sbx("exec", cid, "sh", "-c", "echo in-created; exit 0")
    assert cp.returncode == 0 and cp.stdout == "in-created\n", describe(cp)
    assert sbx.state(cid)["status"] == "created"


# ---- failures


def test_exec_into_stopped_container_fails(sbx, bundle):
    cid = sbx.new_id()
    sbx.ok("run", "--keep", "--bundle", bundle(["true"]), cid)
    cp = sbx.fail("exec", cid, "true")
    assert "stopped" in cp.stderr, describe(cp)
    cp = sbx.fail("exec", cid, "sh", "-c", "echo must-not-run")
    assert "must-not-run" not in cp.stdout


def test_exec_into_missing_container_fails(sbx):
    cid = sbx.new_id()
    cp = sbx.fail("exec", cid, "true")
    assert f'container "{cid}" does not exist' in cp.stderr, describe(cp)


def test_exec_needs_a_command(sbx, ctr):
    cid, _, _ = ctr
    cp = sbx.fail("exec", cid)
    assert cp.stderr, describe(cp)


def test_concurrent_execs(sbx, ctr):
    cid, _, _ = ctr
    procs = [Spawned(sbx, "exec", cid, "sh", "-c", f"echo n={i}; exit {i}") for i in range(6)]
    for i, sp in enumerate(procs):
        code, stdout, stderr = sp.finish()
        assert (code, stdout) == (i, f"n={i}\n"), stderr
    assert sbx.state(cid)["status"] == "running"
