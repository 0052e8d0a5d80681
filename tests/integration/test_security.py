"""Security settings observed from inside real containers: seccomp (actions,
errnos, argument conditions, the ENOSYS rule, notification, the compile
cache), capabilities, no_new_privs, LSM labels on a host without an LSM,
and the `features` document against what actually works.

Most checks run a busybox applet, or `sectest` (tests/integration/helpers/
sectest.c, built statically with gcc once per session and copied into the
rootfs) when the system call or its arguments must be exact: it prints one
line "OP ret=R errno=E" per operation, e.g. `sectest clone3 getppid`.

Profiles here are written for these tests.  Syscall numbers are x86_64's,
so the module is skipped elsewhere.
"""

import array
import contextlib
import ctypes
import errno
import fcntl
import json
import os
import platform
import re
import select
import shutil
import socket
import struct
import threading
import time

import pytest

from conftest import TOP_SRCDIR, describe, run_cmd, sbxrun

pytestmark = [
    pytest.mark.needs_root,
    pytest.mark.needs_cmd("create", "start", "run", "exec", "delete", "features"),
    pytest.mark.skipif(platform.machine() != "x86_64", reason="syscall numbers below are x86_64's"),
]

# x86_64 syscall numbers used directly through `sectest sys:NR,...`.
NR = {
    "fsync": 74,
    "fdatasync": 75,
    "getppid": 110,
    "getpgid": 121,
    "getsid": 124,
    "personality": 135,
    "sched_get_priority_max": 146,
    "sched_get_priority_min": 147,
    "syncfs": 306,
    "clone3": 435,
}

# Capability numbers (include/uapi/linux/capability.h).
CAP = {
    name: i
    for i, name in enumerate(
        "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
        "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
        "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
        "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
        "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
        "CHECKPOINT_RESTORE".split()
    )
}
CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
STATUS_KEY = {"bounding": "CapBnd", "effective": "CapEff", "inheritable": "CapInh",
              "permitted": "CapPrm", "ambient": "CapAmb"}

# What the static helper (glibc, x86_64) needs to start, print and exit; the
# highest of these numbers (rseq, 334) is where the ENOSYS rule begins.
HELPER_SYSCALLS = [
    "execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq",
    "prlimit64", "readlink", "readlinkat", "getrandom", "mprotect", "mmap", "munmap",
    "newfstatat", "fstat", "uname", "write", "exit", "exit_group", "wait4", "futex",
]

SIGSYS_EXIT = 128 + 31  # run's exit code for a process killed by SIGSYS


# ---------------------------------------------------------------------------
# helpers


def cap_mask(names):
    m = 0
    for n in names:
        m |= 1 << CAP[n.removeprefix("CAP_")]
    return m


def proc_status(text):
    """{"CapEff": "...", ...} from /proc/<pid>/status lines in TEXT."""
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip()] = v.strip()
    return out


def sectest_results(text):
    """{"OP": (ret, errno)} from sectest output."""
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"(\S+) ret=(-?\d+) errno=(\d+)", line.strip())
        if m:
            out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


def profile(default="SCMP_ACT_ALLOW", syscalls=(), **extra):
    p = {"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64"], "syscalls": list(syscalls)}
    p.update(extra)
    return p


def rule(names, action, errno_ret=None, args=None):
    r = {"names": [names] if isinstance(names, str) else list(names), "action": action}
    if errno_ret is not None:
        r["errnoRet"] = errno_ret
    if args:
        r["args"] = list(args)
    return r


def helper_allowlist(default, *, default_errno=None, extra_rules=()):
    """A default-deny profile that lets sectest run."""
    p = profile(default, [rule(HELPER_SYSCALLS, "SCMP_ACT_ALLOW"), *extra_rules])
    if default_errno is not None:
        p["defaultErrnoRet"] = default_errno
    return p


def state_entries(sbx):
    """Entries of --root other than the seccomp compile cache."""
    if not sbx.root.is_dir():
        return []
    return sorted(p.name for p in sbx.root.iterdir() if p.name != ".seccomp-cache")


def assert_nothing_left(sbx, cid):
    """After a failed create: no state, no listing; cgroup_parent's teardown
    checks the cgroups."""
    assert state_entries(sbx) == []
    cp = sbx.ok("list", "-q")
    assert cid not in cp.stdout.split()
    assert sbx("state", cid).returncode != 0
    cache = sbx.root / ".seccomp-cache"
    if cache.is_dir():
        assert [p.name for p in cache.iterdir() if not p.name.endswith(".bpf")] == [], \
            "temporary files left in the seccomp cache"


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(autouse=True)
def _seccomp_cache_is_not_state(sbx):
    """<root>/.seccomp-cache is the runtime's compile cache, not a container:
    remove it before the sbx fixture looks for leftover state directories."""
    yield
    shutil.rmtree(sbx.root / ".seccomp-cache", ignore_errors=True)


@pytest.fixture(scope="session")
def sectest_bin(tmp_path_factory):
    """Path of the statically linked helper, built once per session."""
    src = TOP_SRCDIR / "tests/integration/helpers/sectest.c"
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc missing: apt-get install gcc")
    out = tmp_path_factory.mktemp("sectest") / "sectest"
    cp = run_cmd([gcc, "-static", "-O2", "-Wall", "-o", out, src])
    if cp.returncode != 0:
        pytest.skip(f"cannot build a static helper (libc6-dev?):\n{cp.stderr}")
    return out


@pytest.fixture
def sbundle(bundle, sectest_bin):
    """bundle() with a writable root, /bin/sectest and an optional seccomp
    profile (seccomp=None removes linux.seccomp)."""

    def make(args, *, seccomp="keep", **kw):
        b = bundle(args, **kw)
        shutil.copy2(sectest_bin, b.rootfs / "bin/sectest")
        with b.edit() as c:
            c["root"]["readonly"] = False
            if seccomp is None:
                c["linux"].pop("seccomp", None)
            elif seccomp != "keep":
                c["linux"]["seccomp"] = seccomp
        return b

    return make


def run(sbx, b, *, cid=None, global_args=(), **kw):
    return sbx("run", "--bundle", b, cid or sbx.new_id(), global_args=global_args, **kw)


def run_ok(sbx, b, **kw):
    cp = run(sbx, b, **kw)
    assert cp.returncode == 0, describe(cp)
    return cp


@contextlib.contextmanager
def detached(sbx, b):
    """A running container (run -d); killed and deleted on exit."""
    cid = sbx.new_id()
    sbx.ok("run", "-d", "--bundle", b, cid)
    try:
        sbx.wait_status(cid, "running")
        yield cid
    finally:
        sbx("kill", cid, "KILL")
        with contextlib.suppress(Exception):
            sbx.wait_status(cid, "stopped", timeout=5)
        sbx("delete", "--force", cid)


# ---------------------------------------------------------------------------
# seccomp: actions and errnos


def test_errno_action_returns_configured_errno(sbx, sbundle):
    p = profile(syscalls=[rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errno.EACCES)])
    b = sbundle(["sh", "-c", "mkdir /tmp/x; echo rc=$?; test -d /tmp/x && echo exists; "
                 "touch /tmp/file && echo touched"], seccomp=p)
    cp = run_ok(sbx, b)
    assert "Permission denied" in cp.stderr, describe(cp)
    assert "rc=1" in cp.stdout and "exists" not in cp.stdout
    assert "touched" in cp.stdout  # other file operations still work


def test_errno_action_defaults_to_eperm(sbx, sbundle):
    p = profile(syscalls=[rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO")])
    b = sbundle(["mkdir", "/tmp/x"], seccomp=p)
    cp = run(sbx, b)
    assert cp.returncode == 1 and "Operation not permitted" in cp.stderr, describe(cp)


def test_default_errno_ret(sbx, sbundle):
    p = helper_allowlist("SCMP_ACT_ERRNO", default_errno=errno.EIO)
    b = sbundle(["/bin/sectest", "getppid", f"sys:{NR['getsid']},0"], seccomp=p)
    res = sectest_results(run_ok(sbx, b).stdout)
    assert res["getppid"] == (-1, errno.EIO)
    assert res[f"sys:{NR['getsid']},0"] == (-1, errno.EIO)


def test_default_errno_without_errno_ret_is_eperm(sbx, sbundle):
    p = helper_allowlist("SCMP_ACT_ERRNO")
    b = sbundle(["/bin/sectest", "getppid"], seccomp=p)
    assert sectest_results(run_ok(sbx, b).stdout)["getppid"] == (-1, errno.EPERM)


def test_kill_process_action(sbx, sbundle):
    p = profile(syscalls=[rule("getppid", "SCMP_ACT_KILL_PROCESS")])
    b = sbundle(["/bin/sectest", "personality:0xffffffff", "getppid", "personality:0xffffffff"],
                seccomp=p)
    cp = run(sbx, b)
    assert cp.returncode == SIGSYS_EXIT, describe(cp)
    # flushed before the fatal call; nothing after it ran
    assert cp.stdout.splitlines() == ["personality:0xffffffff ret=0 errno=0"], describe(cp)


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"])
def test_other_fatal_actions(sbx, sbundle, action):
    """Single-threaded process: KILL(_THREAD) and TRAP (SIGSYS, default
    disposition) all end it with SIGSYS."""
    b = sbundle(["/bin/sectest", "getppid"], seccomp=profile(syscalls=[rule("getppid", action)]))
    cp = run(sbx, b)
    assert cp.returncode == SIGSYS_EXIT, describe(cp)
    assert "getppid" not in cp.stdout


def test_trace_without_tracer_is_enosys_and_log_allows(sbx, sbundle):
    p = profile(syscalls=[
        rule("getppid", "SCMP_ACT_TRACE", 7),
        rule("getsid", "SCMP_ACT_LOG"),
    ])
    b = sbundle(["/bin/sectest", "getppid", f"sys:{NR['getsid']},0"], seccomp=p)
    res = sectest_results(run_ok(sbx, b).stdout)
    assert res["getppid"] == (-1, errno.ENOSYS)  # SECCOMP_RET_TRACE with no tracer
    ret, err = res[f"sys:{NR['getsid']},0"]
    assert err == 0 and ret >= 0


def test_kill_process_default_still_runs_allowed_calls(sbx, sbundle):
    p = helper_allowlist("SCMP_ACT_KILL_PROCESS", extra_rules=[rule("getppid", "SCMP_ACT_ALLOW")])
    b = sbundle(["/bin/sectest", "getppid", f"sys:{NR['getsid']},0"], seccomp=p)
    cp = run(sbx, b)
    assert cp.returncode == SIGSYS_EXIT, describe(cp)
    assert sectest_results(cp.stdout)["getppid"][1] == 0


# ---------------------------------------------------------------------------
# seccomp: argument conditions


def test_personality_query_allowed_other_values_blocked(sbx, sbundle):
    """Only personality(0xffffffff) (a query) is allowed, exactly that value."""
    p = profile(syscalls=[rule("personality", "SCMP_ACT_ERRNO", errno.EPERM,
                               [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_NE"}])])
    ops = ["personality:0xffffffff", "personality:0", "personality:8",
           "personality:0xfffffffe", "personality:0x1ffffffff", "personality:0xffffffff"]
    b = sbundle(["/bin/sectest", *ops], seccomp=p)
    cp = run_ok(sbx, b)
    lines = cp.stdout.splitlines()
    assert len(lines) == len(ops), describe(cp)
    for op, line in zip(ops, lines):
        ret, err = sectest_results(line)[op]
        if op == "personality:0xffffffff":
            assert err == 0 and ret >= 0, line
        else:
            assert (ret, err) == (-1, errno.EPERM), line


def test_busybox_linux32_blocked_linux64_allowed(sbx, sbundle):
    """busybox linux32/linux64 call personality(PER_LINUX32=8 / PER_LINUX=0)."""
    p = profile(syscalls=[rule("personality", "SCMP_ACT_ERRNO", errno.EACCES,
                               [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}])])
    b = sbundle(["sh", "-c", "linux64 true && echo l64-ok; linux32 true && echo l32-ok; echo done"],
                seccomp=p)
    cp = run_ok(sbx, b)
    assert "l64-ok" in cp.stdout and "l32-ok" not in cp.stdout, describe(cp)
    assert "Permission denied" in cp.stderr


# one harmless syscall per operator; arguments around 1000 (0x3e8)
OPERATOR_CASES = {
    "SCMP_CMP_NE": ("getpgid", {"value": 1000}, {999: True, 1000: False, 1001: True}),
    "SCMP_CMP_LT": ("getsid", {"value": 1000}, {999: True, 1000: False, 1001: False}),
    "SCMP_CMP_LE": ("fsync", {"value": 1000}, {999: True, 1000: True, 1001: False}),
    "SCMP_CMP_EQ": ("fdatasync", {"value": 1000}, {999: False, 1000: True, 1001: False}),
    "SCMP_CMP_GE": ("syncfs", {"value": 1000}, {999: False, 1000: True, 1001: True}),
    "SCMP_CMP_GT": ("sched_get_priority_max", {"value": 1000}, {999: False, 1000: False, 1001: True}),
    # value is the mask, valueTwo the datum
    "SCMP_CMP_MASKED_EQ": ("sched_get_priority_min", {"value": 0xFF00, "valueTwo": 0x300},
                           {0x3E8: True, 0x300: True, 0x4E8: False, 0x13E8: False}),
}
MATCHED = 123  # ENOMEDIUM: no syscall here returns it by itself


def test_every_operator(sbx, sbundle):
    rules, ops, expect = [], [], {}
    for op, (name, values, cases) in OPERATOR_CASES.items():
        rules.append(rule(name, "SCMP_ACT_ERRNO", MATCHED, [{"index": 0, "op": op, **values}]))
        for arg, matches in cases.items():
            o = f"sys:{NR[name]},{arg}"
            ops.append(o)
            expect[o] = (op, matches)
    b = sbundle(["/bin/sectest", *ops], seccomp=profile(syscalls=rules))
    res = sectest_results(run_ok(sbx, b).stdout)
    wrong = [f"{op} {o}: got {res.get(o)}, matched={m}" for o, (op, m) in expect.items()
             if o not in res or (res[o] == (-1, MATCHED)) != m]
    assert not wrong, "\n".join(wrong)


def test_conditions_on_distinct_args_are_anded(sbx, sbundle):
    """getpgid has one argument: use syscall 121 with a dummy second one; the
    filter sees all six registers."""
    nr = NR["getpgid"]
    p = profile(syscalls=[rule("getpgid", "SCMP_ACT_ERRNO", MATCHED, [
        {"index": 0, "value": 1000, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 7, "op": "SCMP_CMP_EQ"},
    ])])
    ops = [f"sys:{nr},1000,7", f"sys:{nr},1000,8", f"sys:{nr},999,7"]
    res = sectest_results(run_ok(sbx, sbundle(["/bin/sectest", *ops], seccomp=p)).stdout)
    assert res[ops[0]] == (-1, MATCHED)
    assert res[ops[1]][1] != MATCHED and res[ops[2]][1] != MATCHED


def test_conditions_on_the_same_arg_are_ored(sbx, sbundle):
    """seccomp.c documents that repeated indexes mean 'any of' (so profiles
    listing several allowed personality values keep working)."""
    nr = NR["getpgid"]
    p = profile(syscalls=[rule("getpgid", "SCMP_ACT_ERRNO", MATCHED, [
        {"index": 0, "value": 1000, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 2000, "op": "SCMP_CMP_EQ"},
    ])])
    ops = [f"sys:{nr},1000", f"sys:{nr},2000", f"sys:{nr},1500"]
    res = sectest_results(run_ok(sbx, sbundle(["/bin/sectest", *ops], seccomp=p)).stdout)
    assert res[ops[0]] == (-1, MATCHED) and res[ops[1]] == (-1, MATCHED)
    assert res[ops[2]][1] != MATCHED


# ---------------------------------------------------------------------------
# seccomp: syscalls the profile does not know


def test_unknown_new_syscalls_get_enosys(sbx, sbundle):
    """Under a default-deny profile, clone3 (435) and unassigned numbers above
    the highest named syscall look unimplemented; lower unnamed ones get the
    default errno."""
    p = helper_allowlist("SCMP_ACT_ERRNO", default_errno=errno.EPERM)
    ops = ["clone3", "sys:460", "sys:1000", "getppid"]
    res = sectest_results(run_ok(sbx, sbundle(["/bin/sectest", *ops], seccomp=p)).stdout)
    assert res["clone3"] == (-1, errno.ENOSYS)
    assert res["sys:460"] == (-1, errno.ENOSYS)
    assert res["sys:1000"] == (-1, errno.ENOSYS)
    assert res["getppid"] == (-1, errno.EPERM)


def test_enosys_rule_under_kill_default(sbx, sbundle):
    """A KILL_PROCESS default does not kill for syscalls newer than the
    profile: they are ENOSYS, so libc can fall back."""
    p = helper_allowlist("SCMP_ACT_KILL_PROCESS")
    cp = run_ok(sbx, sbundle(["/bin/sectest", "clone3", "sys:1000"], seccomp=p))
    res = sectest_results(cp.stdout)
    assert res["clone3"] == (-1, errno.ENOSYS) and res["sys:1000"] == (-1, errno.ENOSYS)


def test_enosys_rule_not_used_with_allow_default(sbx, sbundle):
    p = profile(syscalls=[rule("getppid", "SCMP_ACT_ERRNO", errno.EACCES)])
    res = sectest_results(run_ok(sbx, sbundle(["/bin/sectest", "clone3", "getppid"], seccomp=p)).stdout)
    assert res["clone3"] == (0, 0)  # clone3 works, the child exited
    assert res["getppid"] == (-1, errno.EACCES)


# ---------------------------------------------------------------------------
# seccomp: other ABIs of x86_64 (i386 through int $0x80, x32 numbers)

I386_GETPPID = 64
X32_BIT = 0x40000000


def test_i386_abi_is_filtered_when_listed(sbx, sbundle):
    p = profile(syscalls=[rule("getppid", "SCMP_ACT_ERRNO", errno.EXDEV)])
    p["architectures"] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    ops = ["getppid", f"int80:{I386_GETPPID}", "int80:20"]  # 20: i386 getpid
    res = sectest_results(run_ok(sbx, sbundle(["/bin/sectest", *ops], seccomp=p)).stdout)
    assert res["getppid"] == (-1, errno.EXDEV)
    assert res[f"int80:{I386_GETPPID}"] == (-1, errno.EXDEV)
    assert res["int80:20"] == (1, 0)  # getpid in the container's pid namespace


def test_i386_abi_is_killed_when_not_listed(sbx, sbundle):
    """A filter for x86_64 alone must not let int $0x80 through."""
    p = profile(syscalls=[rule("getppid", "SCMP_ACT_ERRNO", errno.EXDEV)])
    cp = run(sbx, sbundle(["/bin/sectest", "getppid", "int80:20"], seccomp=p))
    assert cp.returncode == SIGSYS_EXIT, describe(cp)
    assert "int80" not in cp.stdout


def test_x32_numbers_are_filtered(sbx, sbundle):
    """The filter sees x32 numbers whether or not the kernel implements the
    ABI: under a default-deny profile listing X32 they get the default errno
    (or ENOSYS when newer than the profile), never the kernel's answer."""
    p = helper_allowlist("SCMP_ACT_ERRNO", default_errno=errno.EXDEV)
    p["architectures"] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]
    ops = [f"sys:{X32_BIT | NR['getppid']:#x}", f"sys:{X32_BIT | NR['clone3']:#x}"]
    res = sectest_results(run_ok(sbx, sbundle(["/bin/sectest", *ops], seccomp=p)).stdout)
    assert res[ops[0]] == (-1, errno.EXDEV)
    assert res[ops[1]] == (-1, errno.ENOSYS)


def test_x32_numbers_without_x32_in_profile(sbx, sbundle):
    p = profile(syscalls=[rule("getppid", "SCMP_ACT_ERRNO", errno.EXDEV)])
    op = f"sys:{X32_BIT | NR['getppid']:#x}"
    cp = run(sbx, sbundle(["/bin/sectest", op], seccomp=p))
    # killed as a foreign ABI, or refused: never a successful getppid
    if cp.returncode == 0:
        assert sectest_results(cp.stdout)[op][0] == -1, describe(cp)
    else:
        assert cp.returncode == SIGSYS_EXIT, describe(cp)


# ---------------------------------------------------------------------------
# seccomp + no_new_privs + capabilities: what /proc/self/status says


STATUS_ARGS = ["grep", "-E", "^(Cap|NoNewPrivs|Seccomp)", "/proc/self/status"]


@pytest.mark.parametrize("nnp", [True, False])
def test_status_seccomp_and_no_new_privs(sbx, sbundle, nnp):
    b = sbundle(STATUS_ARGS)
    with b.edit() as c:
        c["process"]["noNewPrivileges"] = nnp
    st = proc_status(run_ok(sbx, b).stdout)
    assert st["Seccomp"] == "2"
    assert st["NoNewPrivs"] == ("1" if nnp else "0")
    assert st.get("Seccomp_filters", "1") == "1"


# ---------------------------------------------------------------------------
# session keyring

NR_KEYCTL = 250  # x86_64
KEYRING_OP = f"sys:{NR_KEYCTL},0,-3,0"  # KEYCTL_GET_KEYRING_ID of the session keyring


def own_session_keyring():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(ctypes.c_long(NR_KEYCTL), ctypes.c_long(0), ctypes.c_long(-3), ctypes.c_long(0))


def deny_keyctl():
    """preexec_fn: a seccomp filter refusing keyctl with EPERM (as a
    container engine's profile around the runtime would)."""
    libc = ctypes.CDLL(None, use_errno=True)

    class Insn(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]

    insns = (Insn * 4)(
        Insn(0x20, 0, 0, 0),                   # ld [nr]
        Insn(0x15, 0, 1, NR_KEYCTL),           # jeq keyctl
        Insn(0x06, 0, 0, 0x00050000 | errno.EPERM),  # ret ERRNO(EPERM)
        Insn(0x06, 0, 0, 0x7FFF0000),          # ret ALLOW
    )
    prog = Prog(4, insns)
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:
        os._exit(99)


def keyring_in_container(sbx, sbundle, *extra, **kw):
    """(ret, errno) of keyctl(GET_KEYRING_ID, session) in a container."""
    b = sbundle(["/bin/sectest", KEYRING_OP], seccomp=None)
    cp = sbx("run", *extra, "--bundle", b, sbx.new_id(), **kw)
    assert cp.returncode == 0, describe(cp)
    return sectest_results(cp.stdout)[KEYRING_OP], cp


def test_new_session_keyring(sbx, sbundle):
    ours = own_session_keyring()
    assert ours > 0
    (ring, err), cp = keyring_in_container(sbx, sbundle)
    assert err == 0 and ring > 0 and ring != ours and "keyring" not in cp.stderr, describe(cp)
    (ring, err), cp = keyring_in_container(sbx, sbundle, "--no-new-keyring")
    assert (ring, err) == (ours, 0), describe(cp)


def test_refused_keyring_is_a_warning(sbx, sbundle):
    """keyctl refused around the runtime: the container still runs (under
    the same filter), and the user is told it shares the keyring."""
    (ring, err), cp = keyring_in_container(sbx, sbundle, preexec_fn=deny_keyctl)
    assert (ring, err) == (-1, errno.EPERM), describe(cp)
    assert "cannot join a new session keyring (Operation not permitted)" in cp.stderr, describe(cp)


def test_status_without_seccomp(sbx, sbundle):
    st = proc_status(run_ok(sbx, sbundle(STATUS_ARGS, seccomp=None)).stdout)
    assert st["Seccomp"] == "0"


def test_filter_without_no_new_privs_as_non_root(sbx, sbundle):
    """Without no_new_privs the filter is loaded while the process still has
    CAP_SYS_ADMIN; it must be in place for a non-root user too."""
    p = profile(syscalls=[rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errno.EACCES)])
    b = sbundle(["sh", "-c", "mkdir /tmp/x; grep -E '^(Seccomp|NoNewPrivs|CapEff)' /proc/self/status"],
                seccomp=p)
    with b.edit() as c:
        c["process"]["noNewPrivileges"] = False
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
    cp = run_ok(sbx, b)
    st = proc_status(cp.stdout)
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "0" and int(st["CapEff"], 16) == 0
    assert "Permission denied" in cp.stderr


# Without no_new_privs the filter is in place before the runtime switches
# user and capabilities: a profile that kills or refuses those calls must
# fail the start with the reason, not pass for a successful exec.
DEATH_BEFORE_EXEC = {
    "killed": ([rule("capset", "SCMP_ACT_KILL_PROCESS")], "killed by signal 31"),
    # refused, and the error cannot be told either
    "mute": ([rule(["capset", "sendmsg"], "SCMP_ACT_ERRNO", errno.EPERM)],
             "exited with status 1 before exec"),
    # the PATH lookup, done at create so that a missing program fails there
    "lookup": ([rule(["faccessat", "faccessat2"], "SCMP_ACT_KILL_PROCESS")], "killed by signal 31"),
}
# Calls the init makes only after `start` (taking the start request): a
# filter loaded early killing them kills a created init at start, not at
# create.
DEATH_AT_START = {
    "killed": ([rule(["accept4", "accept"], "SCMP_ACT_KILL_PROCESS")], "killed by signal 31"),
}


@pytest.mark.parametrize("case", sorted(DEATH_BEFORE_EXEC))
def test_run_reports_death_before_exec(sbx, sbundle, case):
    r, want = DEATH_BEFORE_EXEC[case]
    b = sbundle(["sh", "-c", "echo reached-exec"], seccomp=profile(syscalls=r))
    with b.edit() as c:
        c["process"]["noNewPrivileges"] = False
    cid = sbx.new_id()
    cp = run(sbx, b, cid=cid)
    assert cp.returncode != 0 and "reached-exec" not in cp.stdout, describe(cp)
    assert want in cp.stderr and "seccomp profile" in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()


@pytest.mark.parametrize("case", sorted(DEATH_BEFORE_EXEC))
def test_create_reports_death_before_created(sbx, sbundle, case):
    """The init takes the container's credentials before "created" (a
    container process that can see it must not find the runtime's): a
    profile killing capset kills it at create, which says how."""
    r, want = DEATH_BEFORE_EXEC[case]
    b = sbundle(["sh", "-c", "echo reached-exec"], seccomp=profile(syscalls=r))
    with b.edit() as c:
        c["process"]["noNewPrivileges"] = False
    cid = sbx.new_id()
    cp = sbx.fail("create", "--bundle", b, cid)
    assert want in cp.stderr and "seccomp profile" in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()


@pytest.mark.parametrize("case", sorted(DEATH_AT_START))
def test_start_reports_death_before_exec(sbx, sbundle, case):
    r, _ = DEATH_AT_START[case]
    b = sbundle(["sh", "-c", "echo reached-exec > /tmp/out"], seccomp=profile(syscalls=r))
    with b.edit() as c:
        c["process"]["noNewPrivileges"] = False
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    cp = sbx.fail("start", cid)
    # not our child: how it died is unknown, that it did is not
    assert "exited before exec" in cp.stderr and "seccomp profile" in cp.stderr, describe(cp)
    assert sbx.state(cid)["status"] == "stopped"
    assert not (b.rootfs / "tmp/out").exists()
    sbx.ok("delete", cid)


@pytest.mark.parametrize("nnp", [False, True])
def test_profile_refusing_sendmsg_still_runs(sbx, sbundle, nnp):
    """The runtime's last word before exec needs no sendmsg (write(2) under
    an early filter, before the filter otherwise)."""
    b = sbundle(["sh", "-c", "echo reached-exec"],
                seccomp=profile(syscalls=[rule("sendmsg", "SCMP_ACT_KILL_PROCESS")]))
    with b.edit() as c:
        c["process"]["noNewPrivileges"] = nnp
    cp = run_ok(sbx, b)
    assert "reached-exec" in cp.stdout


def test_exec_reports_death_before_exec(sbx, sbundle, tmp_path):
    b = sbundle(["sleep", "30"], seccomp=profile(syscalls=[rule("capset", "SCMP_ACT_KILL_PROCESS")]))
    with b.edit() as c:
        c["process"]["noNewPrivileges"] = True  # the init's filter comes after capset
    proc = dict(b.config["process"], args=["sh", "-c", "echo reached-exec"], noNewPrivileges=False)
    pj = tmp_path / "process.json"
    pj.write_text(json.dumps(proc))
    with detached(sbx, b) as cid:
        cp = sbx("exec", "--process", pj, cid)
        assert cp.returncode != 0 and "reached-exec" not in cp.stdout, describe(cp)
        assert "killed by signal 31" in cp.stderr and "before exec" in cp.stderr, describe(cp)
        assert sbx.state(cid)["status"] == "running"


def test_spec_default_capabilities_observed(sbx, sbundle):
    b = sbundle(STATUS_ARGS)
    caps = b.config["process"]["capabilities"]
    st = proc_status(run_ok(sbx, b).stdout)
    assert int(st["CapBnd"], 16) == cap_mask(caps["bounding"])
    assert int(st["CapEff"], 16) == cap_mask(caps["effective"])
    assert int(st["CapPrm"], 16) == cap_mask(caps["permitted"])
    assert int(st["CapInh"], 16) == cap_mask(caps.get("inheritable", []))
    assert int(st["CapAmb"], 16) == cap_mask(caps.get("ambient", []))


def test_all_five_capability_sets(sbx, sbundle):
    """Root with no_new_privs: execve cannot raise permitted above what the
    runtime left, and root's effective set is its permitted set."""
    caps = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE", "CAP_SETPCAP",
                     "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"],
        "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"],
        "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE"],
        "ambient": ["CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"],
    }
    b = sbundle(STATUS_ARGS)
    with b.edit() as c:
        c["process"]["capabilities"] = caps
    st = proc_status(run_ok(sbx, b).stdout)
    for s in CAP_SETS:
        assert int(st[STATUS_KEY[s]], 16) == cap_mask(caps[s]), (s, st)


def test_non_root_ambient_capabilities_survive_exec(sbx, sbundle):
    want = ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]
    b = sbundle(STATUS_ARGS)
    with b.edit() as c:
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        c["process"]["capabilities"] = {
            "bounding": want + ["CAP_KILL"], "permitted": want + ["CAP_KILL"],
            "effective": want + ["CAP_KILL"], "inheritable": want, "ambient": want,
        }
    st = proc_status(run_ok(sbx, b).stdout)
    m = cap_mask(want)
    assert int(st["CapAmb"], 16) == m
    assert int(st["CapEff"], 16) == m  # ambient → permitted and effective at exec
    assert int(st["CapPrm"], 16) == m  # CAP_KILL (not ambient) is gone after exec
    assert int(st["CapInh"], 16) == m
    assert int(st["CapBnd"], 16) == cap_mask(want + ["CAP_KILL"])


def test_non_root_without_ambient_has_no_capabilities(sbx, sbundle):
    want = ["CAP_NET_BIND_SERVICE"]
    b = sbundle(STATUS_ARGS)
    with b.edit() as c:
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        c["process"]["capabilities"] = {s: want for s in ("bounding", "permitted", "effective")}
    st = proc_status(run_ok(sbx, b).stdout)
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0 and int(st["CapAmb"], 16) == 0
    assert int(st["CapBnd"], 16) == cap_mask(want)


@pytest.mark.parametrize("caps", [None, {}], ids=["absent", "empty"])
def test_no_capabilities_drops_everything(sbx, sbundle, caps):
    b = sbundle(STATUS_ARGS)
    with b.edit() as c:
        if caps is None:
            c["process"].pop("capabilities")
        else:
            c["process"]["capabilities"] = caps
    st = proc_status(run_ok(sbx, b).stdout)
    for key in STATUS_KEY.values():
        assert int(st[key], 16) == 0, (key, st)


def test_ambient_needs_permitted_and_inheritable(sbx, sbundle):
    b = sbundle(STATUS_ARGS)
    with b.edit() as c:
        c["process"]["capabilities"] = {
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "inheritable": ["CAP_CHOWN", "CAP_NET_RAW"],
            # CHOWN: both sets; KILL: not inheritable; NET_RAW: not permitted
            "ambient": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        }
    cp = run_ok(sbx, b, global_args=["--debug"])
    st = proc_status(cp.stdout)
    assert int(st["CapAmb"], 16) == cap_mask(["CAP_CHOWN"])
    # not raised without a word (runc and crun), only --debug says so
    for name in ("CAP_KILL", "CAP_NET_RAW"):
        assert re.search(rf"ambient.*{name} not raised", cp.stderr), describe(cp)
    assert "CAP_CHOWN not raised" not in cp.stderr


def test_capability_actually_enforced(sbx, sbundle):
    """Giving a file away needs CAP_CHOWN, even for root."""
    b = sbundle(["sh", "-c", "chown 1:1 /tmp && echo chowned"])
    with b.edit() as c:
        c["process"]["capabilities"] = {s: ["CAP_KILL"] for s in ("bounding", "permitted", "effective")}
    cp = run(sbx, b)
    assert "chowned" not in cp.stdout and "Operation not permitted" in cp.stderr, describe(cp)
    with b.edit() as c:
        c["process"]["capabilities"] = {s: ["CAP_CHOWN"] for s in ("bounding", "permitted", "effective")}
    assert "chowned" in run_ok(sbx, b).stdout


@pytest.mark.parametrize("cap_set", CAP_SETS)
@pytest.mark.parametrize("name", ["CAP_FOO", "cap_chown", "CHOWN", "CAP_CHOWN ", ""])
def test_unknown_capability_rejected(sbx, bundle, cap_set, name):
    b = bundle(["true"])
    with b.edit() as c:
        c["process"]["capabilities"][cap_set] = ["CAP_KILL", name]
    cid = sbx.new_id()
    cp = sbx.fail("create", "--bundle", b, cid)
    assert f"process.capabilities.{cap_set}" in cp.stderr, describe(cp)
    assert f'"{name}"' in cp.stderr, describe(cp)
    assert_nothing_left(sbx, cid)


def test_exec_capabilities(sbx, sbundle):
    b = sbundle(["sleep", "30"])
    with detached(sbx, b) as cid:
        cp = sbx.fail("exec", "--cap", "CAP_FOO", cid, "true")
        assert "CAP_FOO" in cp.stderr, describe(cp)
        base = b.config["process"]["capabilities"]
        st = proc_status(sbx.ok("exec", cid, *STATUS_ARGS).stdout)
        assert int(st["CapEff"], 16) == cap_mask(base["effective"])
        assert int(st["CapBnd"], 16) == cap_mask(base["bounding"])
        st = proc_status(sbx.ok("exec", "--cap", "CAP_NET_RAW", cid, *STATUS_ARGS).stdout)
        assert int(st["CapEff"], 16) == cap_mask(base["effective"] + ["CAP_NET_RAW"])
        assert int(st["CapBnd"], 16) & cap_mask(["CAP_NET_RAW"])


# ---------------------------------------------------------------------------
# the profile `sbxrun spec` writes


def default_profile_bundle(sbundle, args, *, sys_admin=True):
    """The spec's seccomp profile with CAP_SYS_ADMIN granted, so that
    capabilities are not what refuses mount/unshare: seccomp alone must."""
    b = sbundle(args)
    if sys_admin:
        with b.edit() as c:
            for s in ("bounding", "permitted", "effective"):
                c["process"]["capabilities"][s].append("CAP_SYS_ADMIN")
    return b


PRIVILEGED_SH = ("unshare -n true && echo unshare-ok; "
                 "mount -t tmpfs none /tmp && echo mount-ok; "
                 "unshare -U true && echo userns-ok; "
                 "sh -c 'echo forked' && echo exec-ok")


def test_default_profile_blocks_namespaces_and_mount(sbx, sbundle):
    cp = run_ok(sbx, default_profile_bundle(sbundle, ["sh", "-c", PRIVILEGED_SH]))
    assert "unshare-ok" not in cp.stdout and "mount-ok" not in cp.stdout
    assert "userns-ok" not in cp.stdout
    # busybox: "unshare(0x40000000): Operation not permitted", "unshare(0x10000000): ...",
    # and for mount(2)'s EPERM "permission denied (are you root?)"
    assert cp.stderr.count("Operation not permitted") == 2, describe(cp)
    assert "mount: permission denied" in cp.stderr, describe(cp)
    assert "forked" in cp.stdout and "exec-ok" in cp.stdout


def test_without_profile_the_same_commands_work(sbx, sbundle):
    """Control for the test above: with CAP_SYS_ADMIN and no filter they work."""
    b = default_profile_bundle(sbundle, ["sh", "-c", PRIVILEGED_SH])
    with b.edit() as c:
        c["linux"].pop("seccomp")
    cp = run_ok(sbx, b)
    for word in ("unshare-ok", "mount-ok", "userns-ok", "exec-ok"):
        assert word in cp.stdout, describe(cp)


def test_default_profile_clone_flags(sbx, sbundle):
    # CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUTS, and clone3
    ops = ["fork", "clone:0x10000000", "clone:0x40000000", "clone:0x20000", "clone:0x4000000", "clone3"]
    b = default_profile_bundle(sbundle, ["/bin/sectest", *ops])
    res = sectest_results(run_ok(sbx, b).stdout)
    assert res["fork"] == (0, 0)
    for op in ("clone:0x10000000", "clone:0x40000000", "clone:0x20000", "clone:0x4000000"):
        assert res[op] == (-1, errno.EPERM), (op, res)
    assert res["clone3"] == (-1, errno.ENOSYS)


def test_default_profile_other_blocked_calls(sbx, sbundle):
    # keyctl(KEYCTL_GET_KEYRING_ID=0, KEY_SPEC_SESSION_KEYRING=-3, 0), ptrace(PTRACE_TRACEME)
    ops = ["sys:250,0,0xfffffffffffffffd,0", "sys:101,0", "sys:169,0,0,0,0"]  # keyctl, ptrace, reboot
    res = sectest_results(run_ok(sbx, default_profile_bundle(sbundle, ["/bin/sectest", *ops])).stdout)
    for op in ops:
        assert res[op] == (-1, errno.EPERM), (op, res)


# ---------------------------------------------------------------------------
# exec


def test_exec_is_filtered_too(sbx, sbundle):
    p = profile(syscalls=[rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errno.EACCES),
                          rule("getppid", "SCMP_ACT_ERRNO", errno.EXDEV)])
    with detached(sbx, sbundle(["sleep", "30"], seccomp=p)) as cid:
        cp = sbx("exec", cid, "mkdir", "/tmp/y")
        assert cp.returncode != 0 and "Permission denied" in cp.stderr, describe(cp)
        cp = sbx.ok("exec", cid, "/bin/sectest", "getppid")
        assert sectest_results(cp.stdout)["getppid"] == (-1, errno.EXDEV)
        st = proc_status(sbx.ok("exec", cid, *STATUS_ARGS).stdout)
        assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
        sbx.ok("exec", cid, "sh", "-c", "touch /tmp/z")


def test_exec_no_new_privs(sbx, sbundle):
    b = sbundle(["sleep", "30"])
    with b.edit() as c:
        c["process"]["noNewPrivileges"] = False
    with detached(sbx, b) as cid:
        st = proc_status(sbx.ok("exec", cid, *STATUS_ARGS).stdout)
        assert st["NoNewPrivs"] == "0" and st["Seccomp"] == "2" and st["Seccomp_filters"] == "1"
        st = proc_status(sbx.ok("exec", "--no-new-privs", cid, *STATUS_ARGS).stdout)
        assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2" and st["Seccomp_filters"] == "1"


def test_exec_kill_process(sbx, sbundle):
    p = profile(syscalls=[rule("getppid", "SCMP_ACT_KILL_PROCESS")])
    with detached(sbx, sbundle(["sleep", "30"], seccomp=p)) as cid:
        cp = sbx("exec", cid, "/bin/sectest", "getppid")
        assert cp.returncode == SIGSYS_EXIT, describe(cp)
        assert sbx.state(cid)["status"] == "running"  # only the exec'd process died


# ---------------------------------------------------------------------------
# invalid profiles


def _p(**kw):
    return profile(**kw)


INVALID_PROFILES = {
    "unknown-action": (_p(syscalls=[rule("getppid", "SCMP_ACT_FOO")]),
                       "linux.seccomp.syscalls[0].action"),
    "unknown-default-action": (_p(default="SCMP_ACT_NOPE"), "linux.seccomp.defaultAction"),
    "bad-arch": (dict(_p(), architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_PDP11"]),
                 "linux.seccomp.architectures[1]"),
    "bad-operator": (_p(syscalls=[rule("getppid", "SCMP_ACT_ERRNO", 1,
                                       [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}])]),
                     "linux.seccomp.syscalls[0].args[0].op"),
    "errnoRet-on-allow": (_p(default="SCMP_ACT_ERRNO",
                             syscalls=[rule("getppid", "SCMP_ACT_ALLOW", 1)]),
                          "linux.seccomp.syscalls[0].errnoRet"),
    "errnoRet-on-kill": (_p(syscalls=[rule("mkdir", "SCMP_ACT_ERRNO", 1),
                                      rule("getppid", "SCMP_ACT_KILL_PROCESS", 1)]),
                         "linux.seccomp.syscalls[1].errnoRet"),
    "defaultErrnoRet-on-allow": (_p(defaultErrnoRet=1), "linux.seccomp.defaultErrnoRet"),
    "errnoRet-too-large": (_p(syscalls=[rule("getppid", "SCMP_ACT_ERRNO", 5000)]),
                           "linux.seccomp.syscalls[0].errnoRet"),
    "arg-index": (_p(syscalls=[rule("getppid", "SCMP_ACT_ERRNO", 1,
                                    [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}])]),
                  "linux.seccomp.syscalls[0].args[0].index"),
    "unknown-flag": (_p(flags=["SECCOMP_FILTER_FLAG_MAGIC"]), "linux.seccomp.flags[0]"),
    "notify-without-listener": (_p(syscalls=[rule("getppid", "SCMP_ACT_NOTIFY")]),
                                "linux.seccomp.listenerPath"),
    "metadata-without-listener": (_p(listenerMetadata="x"), "linux.seccomp.listenerMetadata"),
    "empty-names": (_p(syscalls=[{"names": [], "action": "SCMP_ACT_ERRNO"}]),
                    "linux.seccomp.syscalls[0].names"),
    "missing-defaultAction": ({"syscalls": []}, "defaultAction"),
    "names-not-array": (_p(syscalls=[{"names": "getppid", "action": "SCMP_ACT_ERRNO"}]),
                        "linux.seccomp.syscalls[0].names"),
}


@pytest.mark.parametrize("case", sorted(INVALID_PROFILES))
def test_invalid_profile_fails_create(sbx, bundle, case):
    prof, field = INVALID_PROFILES[case]
    b = bundle(["true"])
    with b.edit() as c:
        c["linux"]["seccomp"] = prof
    cid = sbx.new_id()
    cp = sbx.fail("create", "--bundle", b, cid)
    assert field in cp.stderr, describe(cp)
    assert cp.stderr.count("\n") <= 2, describe(cp)  # one clear message, no noise
    assert_nothing_left(sbx, cid)
    cp = sbx.fail("run", "--bundle", b, cid)
    assert field in cp.stderr, describe(cp)
    assert_nothing_left(sbx, cid)


def test_program_too_large_fails_create(sbx, bundle):
    """Thousands of two-argument rules exceed BPF_MAXINSNS (4096)."""
    rules = [rule("personality", "SCMP_ACT_ERRNO", 1, [
        {"index": 0, "value": i, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": i, "op": "SCMP_CMP_EQ"},
    ]) for i in range(2500)]
    b = bundle(["true"])
    with b.edit() as c:
        c["linux"]["seccomp"] = profile(syscalls=rules)
    cid = sbx.new_id()
    cp = sbx.fail("create", "--bundle", b, cid)
    assert "linux.seccomp" in cp.stderr and "4096" in cp.stderr, describe(cp)
    assert_nothing_left(sbx, cid)


def test_errno_ret_zero_fakes_success(sbx, sbundle):
    """ERRNO with errnoRet 0: the call "succeeds" with 0 and does nothing."""
    p = profile(syscalls=[rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", 0)])
    cp = run_ok(sbx, sbundle(["sh", "-c", "mkdir /tmp/x && echo rc0; test -d /tmp/x || echo absent"],
                             seccomp=p))
    assert "rc0" in cp.stdout and "absent" in cp.stdout, describe(cp)


def test_unknown_syscall_name_is_skipped(sbx, sbundle):
    p = profile(syscalls=[rule(["no_such_syscall_xyz", "getppid"], "SCMP_ACT_ERRNO", errno.EXDEV)])
    res = sectest_results(run_ok(sbx, sbundle(["/bin/sectest", "getppid"], seccomp=p)).stdout)
    assert res["getppid"] == (-1, errno.EXDEV)


# ---------------------------------------------------------------------------
# the compile cache


def cache_files(sbx):
    d = sbx.root / ".seccomp-cache"
    return sorted(d.glob("*.bpf")) if d.is_dir() else []


def test_seccomp_cache_hit(sbx, sbundle):
    p = profile(syscalls=[rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errno.EACCES)])
    b = sbundle(["sh", "-c", "mkdir /tmp/x"], seccomp=p)
    cp = run(sbx, b, global_args=["--debug"])
    assert "Permission denied" in cp.stderr and "cache hit" not in cp.stderr, describe(cp)
    files = cache_files(sbx)
    assert len(files) == 1 and re.fullmatch(r"[0-9a-f]{64}\.bpf", files[0].name), files
    st = files[0].stat()
    assert st.st_mode & 0o777 == 0o600 and st.st_uid == os.geteuid()
    mtime = st.st_mtime_ns

    cp = run(sbx, b, global_args=["--debug"])
    assert "Permission denied" in cp.stderr, describe(cp)
    assert f"cache hit {files[0].name[:-4]}" in cp.stderr, describe(cp)
    assert cache_files(sbx) == files and files[0].stat().st_mtime_ns == mtime

    # a different profile is another entry; the first stays
    with b.edit() as c:
        c["linux"]["seccomp"]["syscalls"][0]["errnoRet"] = errno.EROFS
    cp = run(sbx, b, global_args=["--debug"])
    assert "Read-only file system" in cp.stderr and "cache hit" not in cp.stderr, describe(cp)
    assert len(cache_files(sbx)) == 2


@pytest.mark.parametrize("tamper", ["flip-a-byte", "truncate", "group-writable", "symlink"])
def test_seccomp_cache_rejects_bad_entries(sbx, sbundle, tamper):
    p = profile(syscalls=[rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errno.EACCES)])
    b = sbundle(["sh", "-c", "mkdir /tmp/x && echo made"], seccomp=p)
    run(sbx, b)
    f, = cache_files(sbx)
    data = f.read_bytes()
    if tamper == "flip-a-byte":
        f.write_bytes(data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:])
    elif tamper == "truncate":
        f.write_bytes(data[:-8])
    elif tamper == "group-writable":
        f.chmod(0o620)
    else:
        other = f.with_name("other")
        f.rename(other)
        f.symlink_to(other)
    cp = run(sbx, b, global_args=["--debug"])
    assert "cache hit" not in cp.stderr, describe(cp)
    assert "made" not in cp.stdout and "Permission denied" in cp.stderr, describe(cp)


def test_exec_does_not_need_the_cache(sbx, sbundle):
    p = profile(syscalls=[rule("getppid", "SCMP_ACT_ERRNO", errno.EXDEV)])
    with detached(sbx, sbundle(["sleep", "30"], seccomp=p)) as cid:
        shutil.rmtree(sbx.root / ".seccomp-cache")
        cp = sbx.ok("exec", cid, "/bin/sectest", "getppid")
        assert sectest_results(cp.stdout)["getppid"] == (-1, errno.EXDEV)


# ---------------------------------------------------------------------------
# SCMP_ACT_NOTIFY


def _ioc(direction, type_, nr, size):
    return (direction << 30) | (size << 16) | (ord(type_) << 8) | nr


_IOC_WRITE, _IOC_READ = 1, 2
SECCOMP_GET_NOTIF_SIZES = 3
SYS_seccomp = 317


def notif_sizes():
    """(sizeof seccomp_notif, sizeof seccomp_notif_resp, sizeof seccomp_data)
    from the kernel, or the x86_64 values."""
    buf = (ctypes.c_uint16 * 3)()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, buf) == 0:
        return tuple(buf)
    return (80, 24, 64)


class NotifyListener:
    """An AF_UNIX server at PATH that takes one connection, reads the fd and
    the process state JSON, then answers every notified syscall with
    (VALUE, 0), or with SECCOMP_USER_NOTIF_FLAG_CONTINUE when VALUE is
    CONTINUE, until the fd is closed by the kernel or stop() is called."""

    CONTINUE = object()

    def __init__(self, path, value):
        self.path = str(path)
        self.value = value
        self.state = None
        self.fds = []
        self.seen = []  # (pid, nr, args[0])
        self.error = None
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(4)
        self.srv.settimeout(0.1)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self):
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    conn, _ = self.srv.accept()
                    break
                except socket.timeout:
                    if self._stop.is_set() or time.monotonic() > deadline:
                        return
            with conn:
                conn.settimeout(10)
                data, fds = b"", []
                while True:
                    msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
                    for level, typ, cdata in anc:
                        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                            a = array.array("i")
                            a.frombytes(cdata[: len(cdata) - len(cdata) % a.itemsize])
                            fds.extend(a)
                    if not msg:
                        break
                    data += msg
                    with contextlib.suppress(ValueError):
                        self.state = json.loads(data)
                        break
                self.fds = fds
                if self.state is None:
                    raise RuntimeError(f"no JSON from the runtime: {data!r}")
            if len(fds) != 1:
                raise RuntimeError(f"expected one fd, got {fds}")
            self._serve(fds[0])
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            for fd in self.fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _serve(self, fd):
        notif_size, resp_size, _ = notif_sizes()
        recv = _ioc(_IOC_READ | _IOC_WRITE, "!", 0, notif_size)
        send = _ioc(_IOC_READ | _IOC_WRITE, "!", 1, resp_size)
        while not self._stop.is_set():
            r, _, x = select.select([fd], [], [fd], 0.2)
            if not r and not x:
                continue
            buf = bytearray(notif_size)
            try:
                fcntl.ioctl(fd, recv, buf, True)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.EINTR):  # the task went away
                    continue
                if e.errno == errno.ENOTCONN:  # no more filter users
                    return
                raise
            nid, pid, _flags = struct.unpack_from("=QII", buf, 0)
            nr, _arch, _ip = struct.unpack_from("=iIQ", buf, 16)
            args = struct.unpack_from("=6Q", buf, 32)
            self.seen.append((pid, nr, args[0]))
            if self.value is self.CONTINUE:  # SECCOMP_USER_NOTIF_FLAG_CONTINUE
                fields = (nid, 0, 0, 1)
            else:
                fields = (nid, self.value, 0, 0)
            resp = bytearray(struct.pack("=QqiI", *fields).ljust(resp_size, b"\0"))
            with contextlib.suppress(OSError):
                fcntl.ioctl(fd, send, resp, True)

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=10)
        self.srv.close()


@pytest.fixture
def listener(tmp_path):
    made = []

    def make(value=4242):
        lst = NotifyListener(tmp_path / f"l{len(made)}.sock", value)
        made.append(lst)
        return lst

    yield make
    for lst in made:
        lst.stop()


def notify_profile(path, **extra):
    return profile(syscalls=[rule("getppid", "SCMP_ACT_NOTIFY")], listenerPath=str(path),
                   listenerMetadata="sbxrun-test-meta", **extra)


def test_notify_listener_receives_fd_and_state(sbx, sbundle, listener):
    lst = listener()
    b = sbundle(["/bin/sectest", "getppid"], seccomp=notify_profile(lst.path))
    cid = sbx.new_id()
    cp = run(sbx, b, cid=cid, timeout=60)
    lst.stop()
    assert lst.error is None, repr(lst.error)
    assert cp.returncode == 0, describe(cp)
    st = lst.state
    assert st["ociVersion"] == "1.2.0"
    assert st["fds"] == ["seccompFd"]
    assert isinstance(st["pid"], int) and st["pid"] > 0
    assert st["metadata"] == "sbxrun-test-meta"
    assert st["state"]["id"] == cid
    assert st["state"]["pid"] == st["pid"]
    assert os.path.samefile(st["state"]["bundle"], b.path)
    assert st["state"]["status"] in ("created", "running")
    # the listener answered getppid on the container's behalf
    assert sectest_results(cp.stdout)["getppid"] == (4242, 0), describe(cp)
    # one notification, for getppid, from the container process itself
    assert [(pid, nr) for pid, nr, _ in lst.seen] == [(st["pid"], NR["getppid"])]


def test_notify_with_create_then_start(sbx, sbundle, listener):
    """The fd goes to the listener at `start`, when the filter is loaded."""
    lst = listener(value=77)
    b = sbundle(["sh", "-c", "/bin/sectest getppid > /tmp/out"], seccomp=notify_profile(lst.path))
    cid = sbx.new_id()
    sbx.ok("create", "--bundle", b, cid)
    assert lst.state is None  # nothing sent before start
    sbx.ok("start", cid, timeout=60)
    sbx.wait_status(cid, "stopped", timeout=30)
    lst.stop()
    assert lst.error is None, repr(lst.error)
    assert lst.state["state"]["id"] == cid
    assert sectest_results((b.rootfs / "tmp/out").read_text())["getppid"] == (77, 0)
    sbx.ok("delete", cid)


def test_notify_only_the_rule_goes_to_the_listener(sbx, sbundle, listener):
    lst = listener(value=7)
    p = notify_profile(lst.path)
    p["syscalls"].append(rule("getsid", "SCMP_ACT_ERRNO", errno.EXDEV))
    b = sbundle(["/bin/sectest", "getppid", f"sys:{NR['getsid']},0", "getppid"], seccomp=p)
    cp = run(sbx, b, timeout=60)
    lst.stop()
    assert lst.error is None, repr(lst.error)
    res = sectest_results(cp.stdout)
    assert res["getppid"] == (7, 0)
    assert res[f"sys:{NR['getsid']},0"] == (-1, errno.EXDEV)
    assert len(lst.seen) == 2


def exec_to_new_listener(sbx, cid, listener, first, value):
    """exec `sectest getppid` in cid with a second listener answering value:
    the listenerPath was saved at create, so it is pointed to the second."""
    second = listener(value=value)
    os.unlink(first.path)
    os.symlink(second.path, first.path)
    cp = sbx("exec", cid, "/bin/sectest", "getppid", timeout=60)
    second.stop()
    assert second.error is None, repr(second.error)
    return second, cp


def test_notify_exec_sends_its_own_fd(sbx, sbundle, listener):
    first = listener(value=1)
    b = sbundle(["sleep", "30"], seccomp=notify_profile(first.path))
    with detached(sbx, b) as cid:
        first.stop()
        assert first.error is None and first.state["state"]["id"] == cid
        second, cp = exec_to_new_listener(sbx, cid, listener, first, 99)
        assert cp.returncode == 0, describe(cp)
        assert sectest_results(cp.stdout)["getppid"] == (99, 0)
        assert len(second.seen) == 1
        # runtime-spec: pid is the process the fd belongs to; state.pid the container's
        assert second.state["state"]["pid"] == first.state["pid"]
        assert second.state["pid"] == second.seen[0][0]
        assert second.state["pid"] != first.state["pid"]


def test_notify_fd_does_not_reach_the_container(sbx, sbundle, listener):
    lst = listener(value=3)
    b = sbundle(["sh", "-c", "ls -l /proc/self/fd/; /bin/sectest getppid"],
                seccomp=notify_profile(lst.path))
    cp = run(sbx, b, timeout=60)
    lst.stop()
    assert cp.returncode == 0 and lst.error is None, describe(cp)
    assert sectest_results(cp.stdout)["getppid"] == (3, 0)
    fds = [line for line in cp.stdout.splitlines() if " -> " in line]
    assert not [f for f in fds if "seccomp" in f or "anon_inode" in f], fds
    # 0, 1, 2 and the directory ls reads
    assert len(fds) <= 4, fds


# The calls the runtime makes after the filter loads (noNewPrivileges):
# the wait for the go-ahead, closing the listener, execve.
NR_EXECVE = 59  # x86_64
RUNTIME_TAIL = ["execve", "execveat", "recvmsg", "sendmsg", "close", "read", "write"]


def test_notify_on_execve_is_answered_by_the_agent(sbx, sbundle, listener):
    """runc's behaviour: the listener fd reaches the agent before the
    runtime's own last calls, so NOTIFY on execve (and on the calls around
    it) waits for the agent, which lets them through."""
    lst = listener(value=NotifyListener.CONTINUE)
    p = profile(syscalls=[rule(RUNTIME_TAIL, "SCMP_ACT_NOTIFY")], listenerPath=str(lst.path))
    b = sbundle(["/bin/sectest", "getppid"], seccomp=p)
    cid = sbx.new_id()
    cp = run(sbx, b, cid=cid, timeout=60)
    lst.stop()
    assert lst.error is None, repr(lst.error)
    assert cp.returncode == 0, describe(cp)
    # getppid is not notified: the real answer (0, the init of its pid ns)
    assert sectest_results(cp.stdout)["getppid"] == (0, 0), describe(cp)
    execs = [pid for pid, nr, _ in lst.seen if nr == NR_EXECVE]
    assert execs and execs[0] == lst.state["pid"], lst.seen
    assert lst.state["state"]["id"] == cid


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed (apt-get install runc)")
def test_notify_on_execve_runc_agrees(sbundle, listener, tmp_path):
    """The same bundle and agent under runc: it runs, and the agent sees the
    execve (the behaviour sbxrun copies; runc refuses NOTIFY on write,
    which sbxrun takes as well, see RUNTIME_TAIL)."""
    lst = listener(value=NotifyListener.CONTINUE)
    p = profile(syscalls=[rule(["execve", "execveat", "close"], "SCMP_ACT_NOTIFY")],
                listenerPath=str(lst.path))
    b = sbundle(["/bin/sectest", "getppid"], seccomp=p)
    root = tmp_path / "runc-root"
    try:
        cp = run_cmd([shutil.which("runc"), "--root", root, "run", "--bundle", b, "notify-runc"],
                     timeout=60)
    finally:
        lst.stop()
        run_cmd([shutil.which("runc"), "--root", root, "delete", "--force", "notify-runc"])
    assert lst.error is None, repr(lst.error)
    assert cp.returncode == 0, describe(cp)
    assert sectest_results(cp.stdout)["getppid"] == (0, 0), describe(cp)
    assert NR_EXECVE in [nr for _, nr, _ in lst.seen], lst.seen


def test_notify_on_execve_with_exec(sbx, sbundle, listener):
    first = listener(value=NotifyListener.CONTINUE)
    p = profile(syscalls=[rule(["execve", "recvmsg", "close"], "SCMP_ACT_NOTIFY")],
                listenerPath=str(first.path))
    b = sbundle(["sleep", "30"], seccomp=p)
    with detached(sbx, b) as cid:
        first.stop()
        assert first.error is None, repr(first.error)
        second, cp = exec_to_new_listener(sbx, cid, listener, first, NotifyListener.CONTINUE)
        assert cp.returncode == 0, describe(cp)
        assert "getppid ret=" in cp.stdout
        assert (second.state["pid"], NR_EXECVE) in [(pid, nr) for pid, nr, _ in second.seen]


def test_notify_on_execve_without_no_new_privileges_is_refused(sbx, sbundle, listener):
    """Without noNewPrivileges the filter loads while the runtime still sets
    up as root, before the agent can hold the fd: refused by name."""
    lst = listener(value=NotifyListener.CONTINUE)
    p = profile(syscalls=[rule("execve", "SCMP_ACT_NOTIFY")], listenerPath=str(lst.path))
    b = sbundle(["/bin/sectest", "getppid"], seccomp=p)
    with b.edit() as c:
        c["process"]["noNewPrivileges"] = False
    cid = sbx.new_id()
    try:
        cp = sbx.fail("run", "--bundle", b, cid)
    finally:
        lst.stop()
    assert "SCMP_ACT_NOTIFY on `execve`" in cp.stderr and "noNewPrivileges" in cp.stderr, describe(cp)
    assert_nothing_left(sbx, cid)


@pytest.mark.parametrize("syscall, nnp", [("sendmsg", True), ("setresuid", False)])
def test_notify_on_a_runtime_syscall_does_not_hang(sbx, sbundle, listener, syscall, nnp):
    """Nobody holds the listener fd yet, so the notification can never be
    answered: the runtime must refuse the profile (naming the syscall) or
    cope, not wait forever."""
    lst = listener(value=0)
    p = notify_profile(lst.path)
    p["syscalls"][0]["names"].append(syscall)
    b = sbundle(["/bin/sectest", "getppid"], seccomp=p)
    with b.edit() as c:
        c["process"]["noNewPrivileges"] = nnp
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
    try:
        cp = run(sbx, b, timeout=4)
    finally:
        lst.stop()
    if cp.returncode != 0:
        assert syscall in cp.stderr, describe(cp)


def test_notify_listener_missing_fails_start(sbx, sbundle, tmp_path):
    b = sbundle(["/bin/sectest", "getppid"], seccomp=notify_profile(tmp_path / "nobody.sock"))
    cid = sbx.new_id()
    cp = sbx.fail("run", "--bundle", b, cid)
    assert "linux.seccomp.listenerPath" in cp.stderr, describe(cp)
    assert_nothing_left(sbx, cid)


def test_notify_container_waits_for_the_listener(sbx, sbundle, tmp_path):
    """The runtime's connect to listenerPath is held (the listener's backlog
    is full) and then refused.  The container's program must not run before
    the fd reached the listener, and start must fail."""
    path = str(tmp_path / "full.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(0)
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    filler.connect(path)  # fills the backlog: the next connect blocks
    # notify a syscall sh itself never makes (busybox sh calls getppid for $PPID)
    prof = profile(syscalls=[rule("syncfs", "SCMP_ACT_NOTIFY")], listenerPath=path)
    b = sbundle(["sh", "-c", f"echo ran > /tmp/marker; /bin/sectest sys:{NR['syncfs']},1"],
                seccomp=prof)
    marker = b.rootfs / "tmp/marker"
    p = sbx.popen("run", "--bundle", b, sbx.new_id())
    try:
        deadline = time.monotonic() + 3
        while not marker.exists() and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.02)
        ran_early = marker.exists()
    finally:
        srv.close()  # the blocked connect now fails
        filler.close()
    out, err = p.communicate(timeout=30)
    assert p.returncode != 0, (out, err)
    assert "linux.seccomp.listenerPath" in err, err
    assert not ran_early and not marker.exists(), "the container's program ran before its listener got the fd"


# ---------------------------------------------------------------------------
# LSM labels on a host without AppArmor or SELinux


def _apparmor_on():
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().startswith("Y")
    except OSError:
        return False


def _selinux_on():
    return os.path.exists("/sys/fs/selinux/enforce")


LSM_CASES = {
    "apparmorProfile": (("process", "apparmorProfile"), "sbx-test-profile", _apparmor_on),
    "selinuxLabel": (("process", "selinuxLabel"), "system_u:system_r:container_t:s0", _selinux_on),
    "mountLabel": (("linux", "mountLabel"), "system_u:object_r:container_file_t:s0", _selinux_on),
}


@pytest.mark.parametrize("field", sorted(LSM_CASES))
@pytest.mark.parametrize("cmd", ["create", "run"])
def test_lsm_label_without_lsm_fails(sbx, bundle, field, cmd):
    (section, key), value, active = LSM_CASES[field]
    if active():
        pytest.skip(f"the LSM for {field} is active on this host")
    b = bundle(["true"])
    with b.edit() as c:
        c[section][key] = value
    cid = sbx.new_id()
    cp = sbx.fail(cmd, "--bundle", b, cid)
    assert f"{section}.{key}" in cp.stderr and value in cp.stderr, describe(cp)
    assert re.search(r"not (enabled|active|available|supported)", cp.stderr, re.I), describe(cp)
    assert_nothing_left(sbx, cid)


@pytest.mark.parametrize("field", ["apparmorProfile", "selinuxLabel"])
def test_exec_lsm_label_without_lsm_fails(sbx, sbundle, tmp_path, field):
    (_, key), value, active = LSM_CASES[field]
    if active():
        pytest.skip(f"the LSM for {field} is active on this host")
    b = sbundle(["sleep", "30"])
    with detached(sbx, b) as cid:
        proc = dict(b.config["process"], args=["/bin/sectest", "getppid"])
        proc[key] = value
        pf = tmp_path / "process.json"
        pf.write_text(json.dumps(proc))
        cp = sbx.fail("exec", "--process", pf, cid)
        assert f"process.{key}" in cp.stderr, describe(cp)
        assert "getppid ret" not in cp.stdout
        assert sbx.state(cid)["status"] == "running"


def test_empty_lsm_labels_are_ignored(sbx, sbundle):
    b = sbundle(["true"])
    with b.edit() as c:
        c["process"]["apparmorProfile"] = ""
        c["process"]["selinuxLabel"] = ""
        c["linux"]["mountLabel"] = ""
    run_ok(sbx, b)


# ---------------------------------------------------------------------------
# `features` against what works


@pytest.fixture(scope="module")
def features():
    cp = sbxrun("features")
    assert cp.returncode == 0, describe(cp)
    return json.loads(cp.stdout)["linux"]


def test_features_lists(features):
    sc = features["seccomp"]
    assert sc["enabled"] is True
    assert set(OPERATOR_CASES) == set(sc["operators"])
    for a in ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
              "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG",
              "SCMP_ACT_NOTIFY"):
        assert a in sc["actions"]
    assert {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"} <= set(sc["archs"])
    assert set(sc["supportedFlags"]) <= set(sc["knownFlags"])
    assert len(set(sc["actions"])) == len(sc["actions"])


def test_features_capabilities_match_kernel(features):
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    caps = features["capabilities"]
    known = {n: i for n, i in ((f"CAP_{k}", v) for k, v in CAP.items())}
    assert len(caps) == len(set(caps))
    # every capability the kernel has that we can name is listed
    assert {n for n, i in known.items() if i <= last} <= set(caps)


def test_features_every_action_compiles_and_runs(sbx, sbundle, features, tmp_path):
    """One profile with a rule for each listed action (on syscalls sectest
    does not make); NOTIFY needs a listenerPath, which need not exist until a
    notification... so it gets its own listener."""
    unused = ["acct", "vhangup", "swapon", "swapoff", "syslog", "uselib", "sysfs", "ustat",
              "lookup_dcookie", "nfsservctl", "quotactl", "iopl"]
    actions = [a for a in features["seccomp"]["actions"] if a != "SCMP_ACT_ALLOW"]
    assert len(actions) <= len(unused)
    rules = []
    for a, name in zip(actions, unused):
        rules.append(rule(name, a, 1 if a in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE") else None))
    lst = NotifyListener(tmp_path / "features.sock", 0)
    try:
        p = profile(syscalls=rules, listenerPath=lst.path)
        cp = run_ok(sbx, sbundle(["/bin/sectest", "getppid"], seccomp=p))
    finally:
        lst.stop()
    assert sectest_results(cp.stdout)["getppid"][1] == 0


def test_features_every_operator_accepted(sbx, bundle, features):
    rules = [rule("getppid", "SCMP_ACT_ERRNO", 1, [{"index": 0, "value": 1, "valueTwo": 1, "op": op}])
             for op in features["seccomp"]["operators"]]
    b = bundle(["true"])
    with b.edit() as c:
        c["linux"]["seccomp"] = profile(syscalls=rules)
    run_ok(sbx, b)


def test_features_every_arch_accepted(sbx, bundle, features):
    b = bundle(["true"])
    with b.edit() as c:
        c["linux"]["seccomp"] = dict(profile(syscalls=[rule("getppid", "SCMP_ACT_ERRNO")]),
                                     architectures=features["seccomp"]["archs"])
    run_ok(sbx, b)


def test_features_supported_flags_work(sbx, sbundle, features, tmp_path):
    flags = features["seccomp"]["supportedFlags"]
    b = sbundle(["/bin/sectest", "getppid"],
                seccomp=profile(syscalls=[rule("getppid", "SCMP_ACT_ERRNO", errno.EXDEV)], flags=flags))
    res = sectest_results(run_ok(sbx, b).stdout)
    assert res["getppid"] == (-1, errno.EXDEV)


def test_features_wait_killable_recv_with_notify(sbx, sbundle, features, listener):
    if "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" not in features["seccomp"]["supportedFlags"]:
        pytest.skip("kernel without WAIT_KILLABLE_RECV")
    lst = listener(value=5)
    p = notify_profile(lst.path, flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
                                        "SECCOMP_FILTER_FLAG_TSYNC"])
    cp = run(sbx, sbundle(["/bin/sectest", "getppid"], seccomp=p), timeout=60)
    lst.stop()
    assert lst.error is None, repr(lst.error)
    assert sectest_results(cp.stdout).get("getppid") == (5, 0), describe(cp)


def own_bounding_set():
    with open("/proc/self/status") as f:
        return int(proc_status(f.read())["CapBnd"], 16)


def test_features_every_capability_grantable(sbx, sbundle, features):
    """Every listed capability the runtime itself holds (a test VM may run
    with a reduced bounding set) can be given to a container."""
    own = own_bounding_set()
    caps = [n for n in features["capabilities"] if own & cap_mask([n])]
    b = sbundle(STATUS_ARGS)
    with b.edit() as c:
        c["process"]["capabilities"] = {s: caps for s in ("bounding", "permitted", "effective")}
    st = proc_status(run_ok(sbx, b).stdout)
    assert int(st["CapBnd"], 16) == own
    assert int(st["CapEff"], 16) == own
