"""The runtime's binary cannot be rewritten from inside a container
(CVE-2019-5736 class).

The attack: an image whose entrypoint (or a program exec'd into it) is a
link to /proc/self/exe makes the kernel run the runtime's own binary, with
the ELF interpreter named in it resolved in the image: exe_interp.c, which
opens the binary O_PATH and execs exe_overwrite.c ("/exploit"), which
reopens it for writing once no process runs it any more and writes a shell
script over it.  A process with CAP_SYS_PTRACE can do the same through
/proc/<pid>/exe of any runtime process it sees (exe_overwrite.c poll).

Every route first runs against a deliberately weak target and shows the
binary rewritten; sbxrun runs from a read-only overlay view of its binary, a
read-only bind view of it, or a sealed memfd copy (sealed.h), so the write
fails and the binary on disk keeps its hash.  The sbxrun under attack
is always a private copy (fixture sbxrun_copy), never the binary under
test, so a regression cannot damage the build.
"""

import ctypes
import errno
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import add_bind, describe, pid_alive, run_cmd, sha256, wait_for

MARKER = "_SBXRUN_SEALED_COPY"  # sealed.c

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]

INTERP = "lib64/ld-linux-x86-64.so.2"
NAIVE_RUNTIME = r"""
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>
/* A runtime without the defence: private mounts, /proc, chroot, exec.  */
int main (int argc, char **argv)
{
  char p[4096];
  snprintf (p, sizeof p, "%s/proc", argv[1]);
  if (unshare (CLONE_NEWNS) || mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)
      || mount ("proc", p, "proc", 0, NULL) || chroot (argv[1]) || chdir ("/"))
    return perror ("setup"), 1;
  execv (argv[2], argv + 2);
  return perror ("exec"), 127;
}
"""


def report(path):
    """The exploit's report: {key: [values...]}."""
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            k, _, v = line.partition(" ")
            out.setdefault(k, []).append(v)
    return out


@pytest.fixture
def weapons(exploit):
    interp = exploit("exe_interp", "-nostdlib", "-fno-stack-protector", "-no-pie", "-fno-pie")
    writer = exploit("exe_overwrite")
    return interp, writer


def arm(b, weapons, out):
    """Make bundle B's image hostile: the fake interpreter, the writer at
    /exploit, /bin/evil -> /proc/self/exe, and OUT bound at /out."""
    interp, writer = weapons
    root = b.rootfs
    (root / "lib64").mkdir(exist_ok=True)
    shutil.copy(interp, root / INTERP)
    shutil.copy(writer, root / "exploit")
    os.symlink("/proc/self/exe", root / "bin" / "evil")
    out.mkdir(exist_ok=True)
    add_bind(b, out, "/out")


def wait_report(out, timeout=15):
    return wait_for(lambda: "done" in report(out / "report") and report(out / "report"), timeout,
                    "the exploit's report")


def sealed_target(link, binary):
    """LINK (of a runtime process's exe) is one of sealed.c's: the memfd
    copy, or the overlay or bind view -- the binary's name below the root
    of a mount attached nowhere (so no directory above that)."""
    return link.startswith("/memfd:sbxrun") or link == "/" + binary.name


def assert_stopped(rep, binary, before):
    assert sha256(binary) == before, f"the runtime's binary was rewritten: {rep}"
    assert rep.get("target") and all(sealed_target(t, binary) for t in rep["target"]), rep
    assert_write_refused(rep)


def assert_write_refused(rep):
    # The memfd copy may be opened, but not changed (F_SEAL_WRITE -> EPERM);
    # the overlay view cannot even be opened for writing (EROFS).
    writes = rep.get("write", []) + [v for v in rep.get("open_write", []) if v != "0"]
    assert writes and all(v != "0" for v in writes), rep


def test_primitive_rewrites_an_unprotected_runtime(tmp_path, bundle, weapons):
    """The same image against a runtime that execs the container from its
    own binary: the binary on disk becomes the attacker's script."""
    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip("no gcc")
    src = tmp_path / "naive.c"
    src.write_text(NAIVE_RUNTIME)
    naive = tmp_path / "naive-runtime"
    cp = run_cmd([cc, "-O1", "-o", naive, src])  # dynamic: it has an interpreter
    assert cp.returncode == 0, describe(cp)
    b = bundle(["/bin/evil"])
    out = tmp_path / "out"
    arm(b, weapons, out)
    (b.rootfs / "out").mkdir(exist_ok=True)
    before = sha256(naive)
    # /out inside the naive root is the rootfs's own directory
    cp = run_cmd([naive, b.rootfs, "/bin/evil"])
    rep = report(b.rootfs / "out" / "report")
    assert rep.get("write") == ["0"], (rep, describe(cp))
    assert sha256(naive) != before
    assert naive.read_bytes().startswith(b"#!/bin/sh\necho PWNED")


@pytest.mark.parametrize("route", ["run-d", "create-start", "memfd-run-d"])
def test_entrypoint_cannot_rewrite_the_runtime(sbx, bundle, tmp_path, weapons, sbxrun_copy, route):
    """memfd-run-d: without the overlay view (no CAP_SYS_ADMIN, Linux
    before 6.8) the copy is a sealed memfd, and the exploit reaches it."""
    if route.startswith("memfd") and os.uname().machine != "x86_64":
        pytest.skip("the filter is for x86_64")
    b = bundle(["/bin/evil"])
    out = tmp_path / "out"
    arm(b, weapons, out)
    sbx.binary = str(sbxrun_copy)
    before = sha256(sbxrun_copy)
    cid = sbx.new_id()
    if route == "memfd-run-d":
        cp = run_cmd(sbx.argv("run", "-d", "--bundle", b, cid), preexec_fn=no_view)
        assert cp.returncode == 0, describe(cp)
        rep = wait_report(out)
        assert all(t.startswith("/memfd:sbxrun") for t in rep.get("target", [])), rep
    elif route == "run-d":
        sbx.ok("run", "-d", "--bundle", b, cid)
    else:
        sbx.ok("create", "--bundle", b, cid)
        sbx.ok("start", cid)
    rep = wait_report(out)
    assert_stopped(rep, sbxrun_copy, before)
    sbx.ok("delete", "-f", cid)
    # the copy still works
    assert run_cmd([sbxrun_copy, "--version"]).returncode == 0


def test_exec_cannot_rewrite_the_runtime(sbx, bundle, tmp_path, weapons, sbxrun_copy):
    b = bundle(["sleep", "60"])
    out = tmp_path / "out"
    arm(b, weapons, out)
    sbx.binary = str(sbxrun_copy)
    before = sha256(sbxrun_copy)
    cid = sbx.new_id()
    sbx.ok("run", "-d", "--bundle", b, cid)
    sbx.ok("exec", "-d", cid, "/bin/evil")
    rep = wait_report(out)
    assert_stopped(rep, sbxrun_copy, before)


def with_ptrace(b, args):
    caps = b.config["process"]["capabilities"]
    for k in caps:
        if "CAP_SYS_PTRACE" not in caps[k]:
            caps[k].append("CAP_SYS_PTRACE")
    b.config["process"]["args"] = args
    # the default profile refuses ptrace(2); /proc/<pid>/exe needs none
    b.write()


def test_primitive_ptracer_rewrites_a_visible_binary(sbx, bundle, tmp_path, weapons):
    """A CAP_SYS_PTRACE poller in the container finds a process that runs a
    host binary, holds its exe and rewrites it after it exits."""
    if shutil.which("nsenter") is None:
        pytest.skip("no nsenter")
    b = bundle()
    out = tmp_path / "out"
    arm(b, weapons, out)
    with_ptrace(b, ["/exploit", "poll", "victim-sleep", "/out/report", "20"])
    victim = tmp_path / "victim-sleep"
    shutil.copy(shutil.which("sleep"), victim)
    before = sha256(victim)
    cid = sbx.new_id()
    sbx.ok("run", "-d", "--bundle", b, cid)
    pid = sbx.state(cid)["pid"]
    p = subprocess.Popen(["nsenter", "-t", str(pid), "-p", "--", str(victim), "1"])
    p.wait(timeout=20)
    rep = wait_report(out, 25)
    assert rep.get("found"), rep
    assert rep.get("write") == ["0"], rep
    assert sha256(victim) != before


def test_ptracer_cannot_rewrite_the_runtime_during_exec(sbx, bundle, tmp_path, weapons, sbxrun_copy):
    b = bundle()
    out = tmp_path / "out"
    arm(b, weapons, out)
    with_ptrace(b, ["/exploit", "poll", "sbxrun", "/out/report", "30"])
    sbx.binary = str(sbxrun_copy)
    before = sha256(sbxrun_copy)
    cid = sbx.new_id()
    sbx.ok("run", "-d", "--bundle", b, cid)
    deadline = time.monotonic() + 25
    while "found" not in report(out / "report") and time.monotonic() < deadline:
        cp = sbx("exec", cid, "true")
        # The poller is the init: once it has tried the exe it found (the
        # overlay view refuses at once, EROFS) it exits, killing that exec.
        assert cp.returncode == 0 or "found" in report(out / "report"), describe(cp)
    rep = wait_report(out, 30)
    assert rep.get("found"), f"the poller never saw an exec process: {rep}"
    assert all(sealed_target(f.split(" ", 1)[1], sbxrun_copy) for f in rep["found"]), rep
    assert sha256(sbxrun_copy) == before, rep
    assert_write_refused(rep)


def waiting_init(sbx, bundle, binary, pre=None):
    """With BINARY as sbxrun (its `create` under the seccomp filter PRE), a
    created container whose init waits for `start` as sbxrun: (BINARY's
    hash, its id, its pid)."""
    sbx.binary = str(binary)
    before = sha256(binary)
    a = bundle(["sleep", "30"], name="waiting")
    aid = sbx.new_id()
    cp = run_cmd(sbx.argv("create", "--bundle", a, aid), preexec_fn=pre)
    assert cp.returncode == 0, describe(cp)
    return before, aid, sbx.state(aid)["pid"]


def join_pid_ns(b, pid):
    """Bundle B's container shares PID's pid namespace (a pod)."""
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == "pid":
            ns["path"] = f"/proc/{pid}/ns/pid"
    b.write()


def test_neighbour_cannot_rewrite_a_waiting_init(sbx, bundle, tmp_path, weapons, sbxrun_copy):
    """A created container's init waits for `start` as sbxrun; a neighbour
    in its pid namespace (a pod) goes for its /proc/1/exe."""
    before, aid, apid = waiting_init(sbx, bundle, sbxrun_copy)
    n = bundle(name="neighbour")
    out = tmp_path / "out"
    arm(n, weapons, out)
    with_ptrace(n, ["/exploit", "poll", "sbxrun", "/out/report", "20"])
    join_pid_ns(n, apid)
    nid = sbx.new_id()
    sbx.ok("run", "-d", "--bundle", n, nid)
    wait_for(lambda: "found" in report(out / "report"), 20, "the neighbour to find the waiting init")
    # The init leaves the binary for sleep: nothing runs the copy any more,
    # so the held exe can be opened for writing; the write must still fail.
    sbx.ok("start", aid)
    rep = wait_report(out, 25)
    assert rep.get("found"), f"the neighbour never saw the waiting init: {rep}"
    assert sha256(sbxrun_copy) == before, rep
    assert_write_refused(rep)
    assert pid_alive(apid)


@pytest.mark.parametrize("view", ["default", "bind"])
def test_privileged_neighbour_cannot_make_the_view_writable(sbx, bundle, tmp_path, exploit, sbxrun_copy, view):
    """A waiting init runs from the overlay view of the binary (or, on a
    kernel without overlayfs data-only layers, and here when the overlay's
    fsmount is refused, the bind view); a neighbour
    in its pid namespace with CAP_SYS_ADMIN in the initial user namespace
    and no seccomp holds that exe and tries every way to make it writable:
    open it for writing, clear its mount's read-only flag, reconfigure or
    remount its filesystem read-write, reach the directory above it, clone
    its mount and clear the clone's flag."""
    if view == "bind" and os.uname().machine != "x86_64":
        pytest.skip("the filter is for x86_64")
    remount = exploit("exe_remount")
    before, aid, apid = waiting_init(sbx, bundle, sbxrun_copy, no_overlay_view if view == "bind" else None)
    link = os.readlink(f"/proc/{apid}/exe")
    if link.startswith("/memfd:"):
        pytest.skip(f"no view here (kernel {os.uname().release}): the init runs from {link}")
    assert link == "/" + sbxrun_copy.name, link
    st, own = os.stat(f"/proc/{apid}/exe"), os.stat(sbxrun_copy)
    bind = (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)
    assert bind or view == "default"
    n = bundle(["/exe_remount", "1", "/out/report", "20"], name="privileged")
    shutil.copy(remount, n.rootfs / "exe_remount")
    out = tmp_path / "out"
    out.mkdir()
    add_bind(n, out, "/out")
    caps = n.config["process"]["capabilities"]
    for k in caps:
        caps[k] += [c for c in ("CAP_SYS_ADMIN", "CAP_SYS_PTRACE") if c not in caps[k]]
    n.config["process"]["noNewPrivileges"] = False
    lx = n.config["linux"]
    lx.pop("seccomp", None)
    lx["maskedPaths"], lx["readonlyPaths"] = [], []
    assert not any(ns["type"] == "user" for ns in lx["namespaces"])
    join_pid_ns(n, apid)
    sbx.ok("run", "-d", "--bundle", n, sbx.new_id())
    wait_for(lambda: "waiting" in report(out / "report"), 20, "the exploit's first round")
    # the init leaves the binary for sleep; the exploit then writes again
    # through what it holds (a running file is busy, whatever its mount)
    sbx.ok("start", aid)
    rep = wait_report(out, 25)
    assert rep.get("target") == [link], rep
    assert rep.get("open_path") == ["0"], rep
    erofs, einval = str(errno.EROFS), str(errno.EINVAL)
    # the bind view is the binary itself, running: busy before read-only
    assert rep.get("open_write") in ([[erofs], [str(errno.ETXTBSY)]] if bind else [[erofs]]), rep
    assert rep.get("open_write_after") == [erofs], rep
    assert "write" not in rep, rep
    # the mount is attached nowhere and the file is not a mount's root
    for k in ("setattr", "fspick", "remount", "remount_bind"):
        assert rep.get(k) == [einval], (k, rep)
    assert rep.get("parent") == [str(errno.ENOTDIR)], rep
    if bind:  # what sealed.c checked before it used the bind view
        assert rep.get("clone") == [einval], rep
    else:  # a clone of the overlay is the same read-only superblock
        assert rep.get("clone") == [einval] or rep.get("clone_write") == [erofs], rep
    assert sha256(sbxrun_copy) == before, rep
    assert pid_alive(apid)


def test_primitive_a_bind_view_is_cloned_writable(tmp_path, exploit):
    """Why sealed.c closes its bind view's mount before it uses it, and
    then checks that the mount cannot be cloned: a program run through a
    read-only bind mount attached nowhere whose open_tree fd is still held
    (by the program here), attacked as above by root on the host.  Where
    the kernel clones such a mount (6.18 does, 6.1 does not), the clone,
    rooted at the file, drops the read-only flag and the file is
    rewritten; where it does not, every step is refused."""
    remount = exploit("exe_remount")
    d = tmp_path / "dir"
    d.mkdir()
    target = d / "sleep"
    shutil.copy(shutil.which("sleep"), target)
    before = sha256(target)
    clones = kernel_clones_detached_mounts(tmp_path)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    pid = os.fork()
    if pid == 0:
        try:
            m = libc.syscall(428, -100, str(d).encode(), 0x1)  # OPEN_TREE_CLONE
            attr = (ctypes.c_uint64 * 4)(0x1, 0, 0, 0)  # MOUNT_ATTR_RDONLY
            if m < 0 or libc.syscall(442, m, b"", 0x1000, attr, ctypes.sizeof(attr)) < 0:
                os._exit(120)
            f = os.open("sleep", os.O_RDONLY, dir_fd=m)
            os.execve(f, ["sleep", "30"], {})  # m, not close-on-exec, stays open
        finally:
            os._exit(121)
    report_path = tmp_path / "report"
    try:
        wait_for(lambda: os.readlink(f"/proc/{pid}/exe") == "/sleep", 10, "the view to run")
        p = subprocess.Popen([remount, str(pid), report_path, "10"])
        wait_for(lambda: "waiting" in report(report_path), 10, "the exploit's first round")
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert p.wait(timeout=15) == 0
    rep = report(report_path)
    assert rep.get("open_write") == [str(errno.ETXTBSY)], rep
    assert rep.get("open_write_after") == [str(errno.EROFS)], rep
    if clones:
        assert rep.get("clone") == ["0"] and rep.get("clone_setattr") == ["0"], rep
        assert rep.get("clone_write") == ["0"] and rep.get("write") == ["0"], rep
        assert sha256(target) != before
    else:
        assert rep.get("clone") == [str(errno.EINVAL)] and "write" not in rep, rep
        assert sha256(target) == before


def _enosys_filter(memfd, bind=True):
    """preexec_fn maker: a seccomp filter failing with ENOSYS the fsmount(2)
    of sealed.c's overlay view (its attribute flags, NOSUID|NODEV, are its
    alone), as on a kernel without overlayfs data-only layers; without
    BIND, also the open_tree(2) of its bind view (its flags, CLONE|CLOEXEC|
    AT_SYMLINK_NOFOLLOW, are its alone), as on a kernel that clones detached
    mounts; with MEMFD, also memfd_create(..., MFD_ALLOW_SEALING), as on a
    kernel without memfd (the memfd sbxrun uses for seccomp programs has no
    sealing flag and still works)."""
    ret_allow, ret_errno, enosys = 0x7FFF0000, 0x00050000, 38
    return _filter([
        (0x20, 0, 0, 4),            # 0: ld arch
        (0x15, 0, 11, 0xC000003E),  # 1: AUDIT_ARCH_X86_64, else allow
        (0x20, 0, 0, 0),            # 2: ld nr
        (0x15, 0, 2, 432),          # 3: __NR_fsmount, else 6
        (0x20, 0, 0, 32),           # 4: ld args[2] (low word)
        (0x15, 6, 7, 0x6),          # 5: MOUNT_ATTR_NOSUID|NODEV: ENOSYS, else allow
        (0x15, 0, 2, 0xFFFFFFFF if bind else 428),  # 6: __NR_open_tree, else 9
        (0x20, 0, 0, 32),           # 7: ld args[2] (low word)
        (0x15, 3, 4, 0x80101),      # 8: CLONE|CLOEXEC|NOFOLLOW: ENOSYS, else allow
        (0x15, 0, 3, 319 if memfd else 0xFFFFFFFF),  # 9: __NR_memfd_create, else allow
        (0x20, 0, 0, 24),           # 10: ld args[1] (low word)
        (0x45, 0, 1, 2),            # 11: MFD_ALLOW_SEALING set?
        (0x06, 0, 0, ret_errno | enosys),
        (0x06, 0, 0, ret_allow),
    ])


def _filter(prog):
    """preexec_fn installing the classic BPF program PROG (no_new_privs)."""

    class Insn(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]

    def install():
        insns = (Insn * len(prog))(*[Insn(*i) for i in prog])
        p = Prog(len(prog), insns)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(p), 0, 0) != 0:
            os._exit(121)  # PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP FILTER

    return install


no_overlay_view = _enosys_filter(memfd=False)
no_view = _enosys_filter(memfd=False, bind=False)
no_view_nor_sealable_memfd = _enosys_filter(memfd=True, bind=False)
# prctl(PR_SET_MM, ...) fails EPERM, as without CAP_CHECKPOINT_RESTORE and
# CAP_SYS_ADMIN: sbxrun cannot take the sealed file in place and re-executes.
no_set_mm = _filter([
    (0x20, 0, 0, 4),            # 0: ld arch
    (0x15, 0, 5, 0xC000003E),   # 1: AUDIT_ARCH_X86_64, else allow
    (0x20, 0, 0, 0),            # 2: ld nr
    (0x15, 0, 3, 157),          # 3: __NR_prctl, else allow
    (0x20, 0, 0, 16),           # 4: ld args[0] (low word)
    (0x15, 0, 1, 35),           # 5: PR_SET_MM: EPERM, else allow
    (0x06, 0, 0, 0x00050000 | errno.EPERM),
    (0x06, 0, 0, 0x7FFF0000),
])


def image_maps(pid, binary):
    """PID's mappings of BINARY on disk, and those of the sealed view or
    copy: by device and inode as /proc/PID/maps shows them (the file behind
    /proc/PID/exe when it is another), and for BINARY's own inode by the
    path /proc/PID/map_files gives -- the bind view is that very file,
    through a mount attached nowhere ("/NAME")."""
    def key(st):
        return (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)

    own, exe = key(os.stat(binary)), key(os.stat(f"/proc/{pid}/exe"))
    on_disk, view = [], []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            rng, _, _, dev, ino = line.split()[:5]
            maj, mnr = (int(x, 16) for x in dev.split(":"))
            k = (maj, mnr, int(ino))
            if k == own:
                link = os.readlink(f"/proc/{pid}/map_files/{rng}")
                (on_disk if link == os.path.realpath(binary) else view).append(rng)
            elif k == exe:
                view.append(rng)
    return on_disk, view


def kernel_clones_detached_mounts(tmp_path):
    """Whether open_tree(OPEN_TREE_CLONE) takes a file on a mount attached
    nowhere whose own open_tree fd is still open (Linux 6.1 refuses with
    EINVAL, 6.18 does it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    (tmp_path / "f").write_text("")
    m = libc.syscall(428, -100, str(tmp_path).encode(), 0x1 | 0x80000)  # AT_FDCWD, CLONE|CLOEXEC
    assert m >= 0, os.strerror(ctypes.get_errno())
    try:
        f = os.open("f", os.O_RDONLY | os.O_CLOEXEC, dir_fd=m)
        try:
            c = libc.syscall(428, f, b"", 0x1 | 0x80000 | 0x1000)  # + AT_EMPTY_PATH
            if c >= 0:
                os.close(c)
                return True
            assert ctypes.get_errno() == errno.EINVAL, os.strerror(ctypes.get_errno())
            return False
        finally:
            os.close(f)
    finally:
        os.close(m)


def test_primitive_an_unsealed_runtime_maps_its_binary(sbx, bundle, sbxrun_copy):
    """The check below can fail: a command that does not seal itself
    (`events`, which stays) maps the binary it was started from."""
    b = bundle(["sleep", "30"])
    sbx.binary = str(sbxrun_copy)
    cid = sbx.new_id()
    sbx.ok("run", "-d", "--bundle", b, cid)
    p = subprocess.Popen(sbx.argv("events", cid), stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: image_maps(p.pid, sbxrun_copy)[0], 10, "events to map its binary")
        own, other = image_maps(p.pid, sbxrun_copy)
        assert own and not other, (own, other)
    finally:
        p.kill()
        p.wait()
    sbx.ok("delete", "-f", cid)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the filters are for x86_64")
@pytest.mark.parametrize("route", ["view", "bind", "memfd", "tmpfile", "reexec"])
def test_waiting_init_maps_nothing_of_the_binary(sbx, bundle, sbxrun_copy, route):
    """Every mapping of the image a created init (which waits as sbxrun,
    visible to its container) runs is of the sealed view or copy, none of
    the binary on disk (/proc/<pid>/map_files would reach that).  With
    CAP_CHECKPOINT_RESTORE (root here) sbxrun takes the sealed file in
    place, without a second exec (the re-exec's marker never appears in
    the init's initial environment); without, it re-executes.  bind: no
    overlay view, so the bind view."""
    pre = {"view": None, "bind": no_overlay_view, "memfd": no_view, "tmpfile": no_view_nor_sealable_memfd,
           "reexec": no_set_mm}[route]
    fs = run_cmd(["stat", "-f", "-c", "%T", sbxrun_copy]).stdout.strip()
    if fs == "overlayfs":
        # maps shows a view of a file on an overlay with that file's own
        # device and inode: sbxrun cannot tell them apart and re-executes
        pytest.skip("the binary under test is on overlayfs")
    b = bundle(["sleep", "30"])
    sbx.binary = str(sbxrun_copy)
    cid = sbx.new_id()
    cp = run_cmd(sbx.argv("create", "--bundle", b, cid), preexec_fn=pre)
    assert cp.returncode == 0, describe(cp)
    pid = sbx.state(cid)["pid"]
    own, sealed = image_maps(pid, sbxrun_copy)
    assert not own, f"the init maps the binary on disk: {own}"
    assert len(sealed) >= 3, sealed  # text, read-only data, data
    link = os.readlink(f"/proc/{pid}/exe")
    assert sealed_target(link, sbxrun_copy) or (route == "tmpfile" and link.endswith(" (deleted)")), link
    if route == "bind":  # the binary itself, through another mount
        st, own = os.stat(f"/proc/{pid}/exe"), os.stat(sbxrun_copy)
        assert (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino), link
    with open(f"/proc/{pid}/environ", "rb") as f:
        reexecuted = (MARKER + "=1").encode() in f.read().split(b"\0")
    assert reexecuted == (route == "reexec"), route
    sbx.ok("delete", "-f", cid)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the filter is for x86_64")
def test_tmpfile_fallback_cannot_rewrite_the_runtime(sbx, bundle, tmp_path, weapons, sbxrun_copy):
    """Without sealable memfds the copy is an unlinked O_TMPFILE file: the
    exploit reaches only that copy; the binary on disk keeps its hash."""
    b = bundle(["sleep", "60"])
    out = tmp_path / "out"
    arm(b, weapons, out)
    sbx.binary = str(sbxrun_copy)
    before = sha256(sbxrun_copy)
    cid = sbx.new_id()
    cp = run_cmd(sbx.argv("create", "--bundle", b, cid), preexec_fn=no_view_nor_sealable_memfd)
    assert cp.returncode == 0, describe(cp)
    pid = sbx.state(cid)["pid"]
    link, st = os.readlink(f"/proc/{pid}/exe"), os.stat(f"/proc/{pid}/exe")
    assert "memfd:" not in link and link.endswith(" (deleted)") and st.st_nlink == 0, link
    assert str(sbxrun_copy) not in link
    sbx.ok("start", cid)
    cp = run_cmd(sbx.argv("exec", "-d", cid, "/bin/evil"), preexec_fn=no_view_nor_sealable_memfd)
    assert cp.returncode == 0, describe(cp)
    rep = wait_report(out)
    assert rep.get("target") and all(t.endswith(" (deleted)") and "memfd" not in t for t in rep["target"]), rep
    assert sha256(sbxrun_copy) == before, rep


def test_marker_is_not_trusted(sbx, bundle, sbxrun_copy):
    """The re-exec marker set by a caller does not make sbxrun believe it
    runs from a sealed copy: the copy itself is checked, and the command
    fails rather than running unprotected."""
    b = bundle(["true"])
    sbx.binary = str(sbxrun_copy)
    env = dict(os.environ, **{MARKER: "1"})
    cid = sbx.new_id()
    cp = sbx("run", "--bundle", b, cid, env=env)
    assert cp.returncode != 0 and "not sealed" in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()


def test_reexec_keeps_the_callers_fds(sbx, bundle, tmp_path):
    """After the re-exec the container gets exactly the caller's fds
    (--preserve-fds), none of the copy's, and no marker in its environment."""
    keep = tmp_path / "preserved"
    keep.write_text("kept\n")
    fd = os.open(keep, os.O_RDONLY | os.O_CLOEXEC)
    b = bundle(["sh", "-c", "ls -l /proc/1/fd; cat <&3; env"])
    try:
        cp = sbx.ok("run", "--preserve-fds", "1", "--bundle", b, sbx.new_id(),
                    preexec_fn=lambda: os.dup2(fd, 3), close_fds=False)
    finally:
        os.close(fd)
    fds = dict(re.findall(r" (\d+) -> (.*)$", cp.stdout, re.M))
    assert sorted(fds, key=int) == ["0", "1", "2", "3"], describe(cp)
    assert "kept" in cp.stdout, describe(cp)
    assert not any("memfd" in t or "sbxrun" in t for t in fds.values()), describe(cp)
    assert MARKER not in cp.stdout, describe(cp)
