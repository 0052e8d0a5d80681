"""Shared fixtures for the sbxrun integration tests.

The suite runs the built binary ($SBXRUN, set by `make check`; defaults to
src/sbxrun in this tree) as a black box.  Fixtures:

  sbx            runs sbxrun with a private --root under the test's tmp dir and,
                 at teardown, force-deletes whatever the test left and checks
                 that no state directory and no mount under the tmp dir remain.
  bundle         factory: bundle(args=[...]) makes a bundle (config.json from
                 `sbxrun spec`, terminal false, cgroupsPath under our own
                 cgroup, a copy of the busybox rootfs) and returns a Bundle
                 whose .config dict can be edited and written back.
  cgroup_parent  a per-test cgroup directory under the cgroup this process is
                 in; .path(name) gives a linux.cgroupsPath.  Teardown removes
                 everything below it, in every mounted hierarchy and in every
                 plain directory under /sys/fs/cgroup (where engines such as
                 conmon also mkdir), and fails if a runtime left a cgroup.
  busybox_rootfs session-wide cached rootfs built from Debian's static busybox.
  _session_guard autouse, session-wide (HostGuard): fails the run, naming them,
                 if the session left cgroups, network namespaces, host nft
                 tables, mounts, state or tmp dirs or processes (see below).

Markers (registered below):
  @pytest.mark.needs_cmd("create", "start")  skip until sbxrun has the commands
  @pytest.mark.needs_root                     skip unless running as root
"""

import contextlib
import errno
import functools
import itertools
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

TOP_SRCDIR = Path(os.environ.get("TOP_SRCDIR") or Path(__file__).resolve().parents[2])
SBXRUN = os.environ.get("SBXRUN") or str(TOP_SRCDIR / "src" / "sbxrun")
BUSYBOX = "/bin/busybox"
DEFAULT_TIMEOUT = 60  # seconds, for any single sbxrun invocation

_seq = itertools.count(1)


# ---------------------------------------------------------------------------
# Plain helpers (no fixture needed)


def run_cmd(argv, *, timeout=DEFAULT_TIMEOUT, **kw):
    """subprocess.run with stdin from /dev/null (unless input= is given) and
    stdout/stderr captured as text in .stdout/.stderr.

    Output goes through temporary files, not pipes: a detached container
    (`create`, `run -d`) inherits the runtime's stdout and stderr and would
    hold a pipe open long after the command has returned."""
    argv = [str(a) for a in argv]
    if "input" not in kw:
        kw.setdefault("stdin", subprocess.DEVNULL)
    if "stdout" in kw or "stderr" in kw or kw.pop("capture_output", True) is False:
        return subprocess.run(argv, text=True, timeout=timeout, **kw)
    if isinstance(kw.get("input"), str):
        kw["input"] = kw["input"].encode()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        cp = subprocess.run(argv, stdout=out, stderr=err, timeout=timeout, **kw)
        out.seek(0)
        err.seek(0)
        cp.stdout = out.read().decode(errors="replace")
        cp.stderr = err.read().decode(errors="replace")
        return cp


def sbxrun(*args, **kw):
    """Run sbxrun without a per-test --root (for commands that keep no state)."""
    return run_cmd([SBXRUN, *args], **kw)


@functools.cache
def has_command(name):
    """True when this build of sbxrun implements subcommand NAME."""
    return sbxrun(name, "--help").returncode == 0


@functools.cache
def subcommands():
    """Subcommand names, as listed by `sbxrun --help`."""
    out = sbxrun("--help").stdout
    names, listing = [], False
    for line in out.splitlines():
        if line.strip().lower().startswith("commands"):
            listing = True
            continue
        if listing:
            if not line.strip():
                if names:
                    break
                continue
            names.append(line.split()[0])
    return names


def describe(cp):
    """A CompletedProcess as text, for assertion messages."""
    return f"$ {' '.join(map(str, cp.args))}\nexit {cp.returncode}\nstdout: {cp.stdout}\nstderr: {cp.stderr}"


def is_static_elf(path):
    """True for an ELF executable without a program interpreter (PT_INTERP)."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if hdr[:4] != b"\x7fELF":
            return False
        is64, little = hdr[4] == 2, hdr[5] == 1
        e = "<" if little else ">"
        if is64:
            phoff, = struct.unpack(e + "Q", hdr[32:40])
            phentsize, phnum = struct.unpack(e + "HH", hdr[54:58])
        else:
            phoff, = struct.unpack(e + "I", hdr[28:32])
            phentsize, phnum = struct.unpack(e + "HH", hdr[42:46])
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, = struct.unpack(e + "I", f.read(4))
            if p_type == 3:  # PT_INTERP
                return False
        return True


def _unescape_mountinfo(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mountinfo():
    """(mount root, mount point, fstype) for every line of /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            out.append((_unescape_mountinfo(fields[3]), _unescape_mountinfo(fields[4]), right.split()[0]))
    return out


def mounts_under(directory):
    """Mount points at or below DIRECTORY, deepest first."""
    d = os.path.realpath(directory)
    found = [mp for _, mp, _ in mountinfo() if mp == d or mp.startswith(d + "/")]
    return sorted(found, key=len, reverse=True)


# ---------------------------------------------------------------------------
# cgroups


def own_cgroup():
    """The cgroup path this process is in, usable as a cgroupsPath parent.

    /proc/self/cgroup has one line per hierarchy.  On a hybrid host like
    `4:memory:/process_api/xyz`, `1:cpu:/`, `0::/`, the process sits deep in
    the memory hierarchy and at the root elsewhere.  A cgroupsPath is the same
    path in every hierarchy, so we take the deepest of our paths (normally the
    memory controller's): it is then below our own cgroup in every hierarchy
    whose path is one of its ancestors ("/" in the example), which is all of
    them on such hosts.  On a pure cgroup v2 host it is the `0::` path.
    """
    paths = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            paths[controllers] = path
    memory = [p for c, p in paths.items() if "memory" in c.split(",")]
    deepest = max(paths.values(), key=lambda p: len(p.rstrip("/").split("/")))
    for p in paths.values():
        if not (deepest == p or deepest.startswith(p.rstrip("/") + "/")):
            # Disjoint hierarchies: no path is below us everywhere; prefer memory.
            return memory[0] if memory else deepest
    return deepest


def cgroup_mounts():
    """[(mount point, mount root)] for every cgroup v1/v2 hierarchy mounted here
    (once per mount point: the mount on top, the one that is visible)."""
    top = {}
    for root, mp, fstype in mountinfo():
        top.pop(mp, None)
        top[mp] = (root, fstype)
    return [(mp, root) for mp, (root, fstype) in top.items() if fstype in ("cgroup", "cgroup2")]


def cgroup_dirs(path):
    """The directory of cgroup PATH in each mounted hierarchy that can hold it."""
    out = []
    for mp, root in cgroup_mounts():
        root = root.rstrip("/")
        if root and not (path == root or path.startswith(root + "/")):
            continue
        out.append(mp + path[len(root):])
    return out


CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_FSTYPES = ("cgroup", "cgroup2")


def fstype_of(path):
    """The file system type of the mount that holds PATH."""
    path = os.path.realpath(path)
    best, fstype = "", None
    for _, mp, t in mountinfo():
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best, fstype = mp, t
    return fstype


def plain_cgroup_tops():
    """Directories directly under /sys/fs/cgroup that are not a mounted
    hierarchy: on a hybrid host, the controllers the kernel has but nobody
    mounted (hugetlb, net_cls, net_prio, perf_event...) may exist there as
    plain directories of the tmpfs, and engines (conmon) that mkdir -p a
    cgroup in every directory they find there create ordinary directories
    and files in them."""
    if fstype_of(CGROUP_ROOT) in CGROUP_FSTYPES:
        return []  # a cgroup2 root: its subdirectories are cgroups, not tops
    mounted = {mp for _, mp, t in mountinfo() if t in CGROUP_FSTYPES}
    try:
        names = sorted(os.listdir(CGROUP_ROOT))
    except OSError:
        return []
    out = []
    for n in names:
        d = os.path.join(CGROUP_ROOT, n)
        if d not in mounted and not os.path.islink(d) and os.path.isdir(d):
            out.append(d)
    return out


def cgroup_trees():
    """[(top, mount root or None for a plain directory)]: every mounted
    hierarchy (wherever it is mounted) and every plain directory under
    /sys/fs/cgroup."""
    return [(mp, root) for mp, root in cgroup_mounts()] + [(d, None) for d in plain_cgroup_tops()]


def all_cgroup_dirs(path):
    """(top, directory of cgroup PATH) in every mounted hierarchy that can
    hold it and in every plain directory under /sys/fs/cgroup."""
    out = []
    for top, root in cgroup_trees():
        root = (root or "").rstrip("/")
        if root and not (path == root or path.startswith(root + "/")):
            continue
        out.append((top, top + path[len(root):]))
    return out


def _kill_cgroup_procs(d):
    """SIGKILL the processes of a leftover test cgroup (only ever below our own
    per-test directory, so they were started by this test)."""
    try:
        with open(os.path.join(d, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        return []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _rmdir_tree(top):
    """Remove a cgroup directory tree bottom-up; return the directories that
    existed below TOP (excluding TOP) and the ones that could not be removed."""
    found, stuck = [], []
    for dirpath, _, _ in sorted(os.walk(top), key=lambda t: len(t[0]), reverse=True):
        if dirpath != top:
            found.append(dirpath)
        for attempt in range(50):
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOTEMPTY) or attempt == 49:
                    stuck.append(f"{dirpath}: {e.strerror}")
                    break
                _kill_cgroup_procs(dirpath)
                time.sleep(0.1)
    return found, stuck


def _rm_plain_tree(top):
    """Remove a tree of ordinary directories and files (what an engine made
    in a plain directory under /sys/fs/cgroup): files first, then the
    directories bottom-up.  A `tasks` or `cgroup.procs` file there is just a
    file: the pids in it are not killed.  Same return as _rmdir_tree."""
    found, stuck = [], []
    for dirpath, _, files in os.walk(top, topdown=False):
        if dirpath != top:
            found.append(dirpath)
        for f in files:
            try:
                os.unlink(os.path.join(dirpath, f))
            except FileNotFoundError:
                pass
            except OSError as e:
                stuck.append(f"{os.path.join(dirpath, f)}: {e.strerror}")
        try:
            os.rmdir(dirpath)
        except FileNotFoundError:
            pass
        except OSError as e:
            stuck.append(f"{dirpath}: {e.strerror}")
    return found, stuck


def remove_cgroup_tree(d):
    """Remove directory D and everything below it, whether D is a real cgroup
    (kill its processes, rmdir bottom-up) or a plain directory (unlink the
    files, then rmdir).  Returns (directories found below D, errors)."""
    if not os.path.isdir(d) or os.path.islink(d):
        return [], []
    if fstype_of(d) in CGROUP_FSTYPES:
        return _rmdir_tree(d)
    return _rm_plain_tree(d)


class CgroupParent:
    """A per-test cgroup below our own: `<own>/sbxtest-<pid>-<n>`."""

    def __init__(self, base=None):
        self.own = own_cgroup()
        self.base = base or f"{self.own.rstrip('/')}/sbxtest-{os.getpid()}-{next(_seq)}"
        self._names = itertools.count(1)
        # Ancestors of base a runtime or an engine may create (they mkdir -p
        # the whole path in every hierarchy, and conmon in every directory
        # under /sys/fs/cgroup); remember which exist so teardown removes
        # only the ones that appeared during the test.
        self._preexisting = set()
        for top, d in all_cgroup_dirs(self.base):
            for p in self._ancestors(top, d):
                if os.path.isdir(p):
                    self._preexisting.add(p)

    @staticmethod
    def _ancestors(top, d):
        """The directories strictly between TOP and D, deepest first."""
        p = os.path.dirname(d)
        while p.startswith(top.rstrip("/") + "/"):
            yield p
            p = os.path.dirname(p)

    def path(self, name=None):
        """A fresh linux.cgroupsPath below this test's cgroup."""
        return f"{self.base}/{name or f'c{next(self._names)}'}"

    def __str__(self):
        return self.base

    def cleanup(self):
        """Remove the test's cgroup in every hierarchy and every plain
        directory under /sys/fs/cgroup, and the ancestors that appeared
        during the test.  Returns (directories found below the test's
        cgroup, what could not be removed)."""
        leftovers, stuck = [], []
        for top, d in all_cgroup_dirs(self.base):
            found, st = remove_cgroup_tree(d)
            leftovers += found
            stuck += st
            for p in self._ancestors(top, d):
                if p in self._preexisting:
                    break
                try:
                    os.rmdir(p)
                except OSError:
                    break
        return leftovers, stuck


@pytest.fixture
def cgroup_parent():
    cg = CgroupParent()
    yield cg
    leftovers, stuck = cg.cleanup()
    if stuck:
        pytest.fail("could not remove test cgroups:\n  " + "\n  ".join(stuck))
    if leftovers:
        pytest.fail("cgroups left behind after the containers were deleted:\n  " + "\n  ".join(leftovers))


# ---------------------------------------------------------------------------
# rootfs and bundles


def build_busybox_rootfs(rootfs):
    """A minimal rootfs: /bin/busybox, one symlink per applet, /etc basics."""
    rootfs = Path(rootfs)
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "run", "var/tmp", "usr"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    (rootfs / "var/tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
    applets = run_cmd([BUSYBOX, "--list"], check=True).stdout.split()
    for a in applets:
        if "/" not in a and not (rootfs / "bin" / a).exists():
            (rootfs / "bin" / a).symlink_to("busybox")
    (rootfs / "sbin").symlink_to("bin")
    (rootfs / "usr/bin").symlink_to("../bin")
    (rootfs / "usr/sbin").symlink_to("../bin")
    (rootfs / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (rootfs / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (rootfs / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost\n")
    (rootfs / "etc/resolv.conf").write_text("")
    return rootfs


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory):
    """Path of a busybox rootfs shared by the session; bundles copy it."""
    if not os.path.exists(BUSYBOX):
        pytest.skip(f"{BUSYBOX} missing: apt-get install busybox-static")
    if not is_static_elf(BUSYBOX):
        pytest.skip(f"{BUSYBOX} is dynamically linked: apt-get install busybox-static")
    return build_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


class Bundle:
    """An OCI bundle on disk.  Edit .config then call .write(), or use
    `with b.edit() as c: ...` which writes on exit."""

    def __init__(self, path, config):
        self.path = Path(path)
        self.config = config

    @property
    def config_path(self):
        return self.path / "config.json"

    @property
    def rootfs(self):
        return self.path / self.config["root"]["path"]

    @property
    def args(self):
        return self.config["process"]["args"]

    @args.setter
    def args(self, value):
        self.config["process"]["args"] = list(value)
        self.write()

    def write(self):
        self.config_path.write_text(json.dumps(self.config, indent=2) + "\n")

    def reload(self):
        self.config = json.loads(self.config_path.read_text())
        return self.config

    @contextlib.contextmanager
    def edit(self):
        yield self.config
        self.write()

    def __fspath__(self):
        return str(self.path)

    def __str__(self):
        return str(self.path)


@pytest.fixture
def bundle(tmp_path, busybox_rootfs, cgroup_parent):
    """bundle(args=None, *, name=None, spec_args=(), cgroup=True, rootfs=True,
    terminal=False) -> Bundle.

    config.json comes from `sbxrun spec [spec_args]`; process.args is ARGS when
    given, process.terminal is TERMINAL, linux.cgroupsPath is a fresh path
    under cgroup_parent (unless cgroup=False) and rootfs/ is a copy of the
    cached busybox rootfs (unless rootfs=False)."""
    names = itertools.count(1)

    def make(args=None, *, name=None, spec_args=(), cgroup=True, rootfs=True, terminal=False):
        name = name or f"bundle{next(names)}"
        path = tmp_path / "bundles" / name
        path.mkdir(parents=True)
        cp = sbxrun("spec", "--bundle", path, *spec_args)
        assert cp.returncode == 0, describe(cp)
        b = Bundle(path, json.loads((path / "config.json").read_text()))
        proc = b.config.setdefault("process", {})
        proc["terminal"] = terminal
        if args is not None:
            proc["args"] = list(args)
        if cgroup:
            b.config.setdefault("linux", {})["cgroupsPath"] = cgroup_parent.path(name)
        b.write()
        if rootfs:
            shutil.copytree(busybox_rootfs, b.rootfs, symlinks=True)
        return b

    return make


# ---------------------------------------------------------------------------
# running sbxrun


class Sbx:
    """Runs sbxrun with a private state root.  Every method takes the
    subcommand and its arguments; keyword arguments go to subprocess.run."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.root = tmp_path / "root"  # short: sockets may live under it
        self.binary = SBXRUN
        self.global_args = []
        self._ids = itertools.count(1)
        self._procs = []

    def argv(self, *args, global_args=()):
        return [self.binary, "--root", str(self.root), *self.global_args, *global_args, *map(str, args)]

    def __call__(self, *args, global_args=(), **kw):
        return run_cmd(self.argv(*args, global_args=global_args), **kw)

    def ok(self, *args, **kw):
        """Run and assert exit status 0."""
        cp = self(*args, **kw)
        assert cp.returncode == 0, describe(cp)
        return cp

    def fail(self, *args, **kw):
        """Run and assert a non-zero exit status."""
        cp = self(*args, **kw)
        assert cp.returncode != 0, describe(cp)
        return cp

    def json(self, *args, **kw):
        """Run, assert success and parse stdout as JSON."""
        return json.loads(self.ok(*args, **kw).stdout)

    def popen(self, *args, **kw):
        """Start sbxrun in the background (killed at teardown if still running)."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
        p = subprocess.Popen(self.argv(*args), **kw)
        self._procs.append(p)
        return p

    def new_id(self, prefix="ctr"):
        """A container id unique in this session."""
        return f"{prefix}-{os.getpid()}-{next(_seq)}"

    # -- lifecycle helpers (need the corresponding commands)

    def state(self, cid):
        return self.json("state", cid)

    def wait_status(self, cid, status, timeout=10.0):
        """Poll `state` until the container's status is STATUS."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.state(cid)
            if st.get("status") == status:
                return st
            if time.monotonic() > deadline:
                pytest.fail(f"container {cid} is {st.get('status')!r}, not {status!r}, after {timeout}s")
            time.sleep(0.02)

    def list_ids(self):
        return self.ok("list", "-q").stdout.split()

    # -- teardown

    def cleanup(self):
        """Delete every container, then report what was left behind."""
        problems = []
        for p in self._procs:
            if p.poll() is None:
                p.kill()
            with contextlib.suppress(Exception):
                p.communicate(timeout=10)
        if has_command("list") and has_command("delete"):
            cp = self("list", "-q")
            for cid in cp.stdout.split() if cp.returncode == 0 else []:
                self("delete", "--force", cid)
        if self.root.is_dir():
            left = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            if left:
                problems.append(f"state directories left in {self.root}: {left}")
        mps = mounts_under(self.tmp)
        if mps:
            problems.append(f"mounts left under {self.tmp}: {mps}")
            for mp in mps:  # keep the host clean for the following tests
                subprocess.run(["umount", "-l", mp], capture_output=True)
        return problems


@pytest.fixture
def sbx(tmp_path, cgroup_parent):
    # cgroup_parent is requested so that its teardown (which checks for
    # leftover cgroups) runs after this one has deleted the containers.
    s = Sbx(tmp_path)
    yield s
    problems = s.cleanup()
    if problems:
        pytest.fail("\n".join(problems))


# ---------------------------------------------------------------------------
# markers


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_cmd(*names): skip unless sbxrun implements the subcommands")
    config.addinivalue_line("markers", "needs_root: skip unless running as root")


def pytest_runtest_setup(item):
    for m in item.iter_markers("needs_cmd"):
        missing = [n for n in m.args if not has_command(n)]
        if missing:
            pytest.skip(f"sbxrun has no `{'`, `'.join(missing)}` command yet")
    if item.get_closest_marker("needs_root") and os.geteuid() != 0:
        pytest.skip("needs root")


def pytest_report_header(config):
    return [f"sbxrun: {SBXRUN}", f"own cgroup: {own_cgroup()}"]


# ---------------------------------------------------------------------------
# The session guard: a run leaves nothing on the machine.
#
# Around the whole session it records what tests and the programs they start
# could leave behind, and fails the run (exit status 1) naming every new
# leftover, which it then removes.  Other suites may run on this host at the
# same time, so only what is attributable to this pytest process counts:
# names carrying its pid (the fixtures name things sbxtest-<pid>-<n>,
# ctr-<pid>-<n>, sbxt<pid>-..., /tmp/<prefix>-<pid>-...), cgroups below its
# own cgroup, paths below its tmp dirs, and its descendants.


def _pid_token(pid):
    return re.compile(rf"(?<!\d){pid}(?!\d)")


def _foreign_marker(rel, pid):
    """True when cgroup path REL goes through another session's per-test
    cgroup (sbxtest-<other pid>-<n>)."""
    return any(m.group(1) != str(pid) for m in re.finditer(r"(?:^|/)sbxtest-(\d+)-\d+(?=/|$)", rel))


def _own_paths():
    """{hierarchy controllers: path} from /proc/self/cgroup."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            out[controllers] = path
    return out


def guard_cgroups(pid):
    """Cgroup directories attributable to session PID, in every mounted
    hierarchy and every plain directory under /sys/fs/cgroup: anything
    below our own cgroup (the deepest of our paths, which the fixtures use
    everywhere; in a hierarchy disjoint from it, that hierarchy's own path)
    that is not another session's per-test cgroup, and any
    sbxtest-<pid>-<n> wherever it is."""
    own = own_cgroup().rstrip("/")
    paths = list(_own_paths().values())
    ours_anywhere = re.compile(rf"(?:^|/)sbxtest-{pid}-\d+(?:/|$)")
    found = set()
    for top, root in cgroup_trees():
        root = (root or "").rstrip("/")
        scope = own
        if root and not (own == root or own.startswith(root + "/")):
            # own cgroup not visible in this hierarchy: its own path there
            scope = next((p.rstrip("/") for p in paths if p == root or p.startswith(root + "/")), root)
        for dirpath, dirs, _ in os.walk(top):
            rel = root + dirpath[len(top):]
            if _foreign_marker(rel, pid):
                dirs[:] = []
                continue
            if ours_anywhere.search(rel) or rel.startswith(scope + "/"):
                found.add(dirpath)
            elif dirpath != top and (scope + "/").startswith(rel + "/"):
                # our own cgroup or one of its ancestors, which a mkdir -p of
                # a test cgroup may have made (in a plain directory, say): a
                # leftover when new and empty (no other session in it)
                found.add(("ancestor", dirpath, tuple(os.path.join(dirpath, d) for d in dirs)))
    return found


def _cgroup_leftovers(before, after):
    """New cgroup directories of AFTER (guard_cgroups() sets): ours, and the
    new ancestors of our own cgroup that hold nothing but leftovers."""
    seen = {x[1] if isinstance(x, tuple) else x for x in before}
    out = {x for x in after if not isinstance(x, tuple) and x not in seen}
    for _, d, children in sorted((x for x in after if isinstance(x, tuple)), key=lambda x: -len(x[1])):
        if d not in seen and all(c in out for c in children):
            out.add(d)
    return out


def _ip_netns_names():
    names = set()
    if shutil.which("ip"):
        cp = run_cmd(["ip", "netns", "list"], timeout=30)
        names |= {line.split()[0] for line in cp.stdout.splitlines() if line.strip()}
    for d in ("/run/netns", "/var/run/netns"):
        with contextlib.suppress(OSError):
            names |= set(os.listdir(d))
    return names


def _nft_tables():
    """{"family name"} of the tables in the host's network namespace."""
    if not shutil.which("nft"):
        return set()
    cp = run_cmd(["nft", "list", "tables"], timeout=30)
    return {line.split(None, 1)[1].strip() for line in cp.stdout.splitlines() if line.startswith("table ")}


def _proc_stat(pid):
    """(ppid, state, start time) of PID, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return int(rest[1]), rest[0], int(rest[19])


def _under(path, roots):
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


class HostGuard:
    """Snapshots of what a test session could leave behind; leftovers()
    lists what is new and attributable to this session."""

    STATE_ROOTS = ("/run/sbxrun",)

    def __init__(self, basetemp):
        self.pid = os.getpid()
        self.token = _pid_token(self.pid)
        self.basetemp = os.path.realpath(basetemp)
        self.before = self.snapshot()

    def test_roots(self):
        """This session's tmp dirs: pytest's base temp and the /tmp
        directories the tests make with the session pid in their name."""
        roots = [self.basetemp]
        with contextlib.suppress(OSError):
            roots += [os.path.join("/tmp", n) for n in os.listdir("/tmp") if self.token.search(n)]
        return roots

    def _ours_proc(self, pid, roots):
        """Why process PID belongs to this session, or None."""
        st = _proc_stat(pid)
        if st is None or st[1] in "ZX":
            return None
        p, hops = st[0], 0
        while p > 1 and hops < 64:
            if p == self.pid:
                return "a descendant of the pytest process"
            up = _proc_stat(p)
            if up is None:
                break
            p, hops = up[0], hops + 1
        for link in ("cwd", "root"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/{link}")
                if target != "/" and _under(target, roots):
                    return f"its {link} is {target}"
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/cgroup") as f:
                if re.search(rf"/sbxtest-{self.pid}-\d+(?:/|$)", f.read(), re.M):
                    return "it is in a test cgroup"
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
            if any(r in cmd for r in roots):
                return "its command line names a test dir"
        return None

    def snapshot(self):
        roots = self.test_roots()
        snap = {"cgroup": guard_cgroups(self.pid)}
        snap["netns"] = {n for n in _ip_netns_names() if self.token.search(n)}
        snap["nft table"] = {t for t in _nft_tables() if self.token.search(t)}
        mounts = {}
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left = line.partition(" - ")[0].split()
                root, mp = _unescape_mountinfo(left[3]), _unescape_mountinfo(left[4])
                if _under(mp, roots) or _under(root, roots) or self.token.search(mp):
                    mounts[left[0]] = mp
        snap["mount"] = set(mounts.items())
        state = set()
        for r in self.STATE_ROOTS:
            with contextlib.suppress(OSError):
                state |= {os.path.join(r, n) for n in os.listdir(r) if self.token.search(n)}
        # and the per-test --root dirs (sbx's root, runc-root) below base temp
        for pattern in ("*/root/*", "*/runc-root/*"):
            state |= {str(p) for p in Path(self.basetemp).glob(pattern)
                      if p.is_dir() and not p.name.startswith(".")}
        snap["state dir"] = state
        snap["tmp dir"] = set(roots[1:])
        procs = set()
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == self.pid:
                continue
            why = self._ours_proc(int(name), roots)
            st = _proc_stat(name)
            if why and st:
                with contextlib.suppress(OSError):
                    with open(f"/proc/{name}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                    procs.add((int(name), st[2], f"{cmd} ({why})"))
        snap["process"] = procs
        return snap

    def new(self, snap):
        out = {}
        for kind, items in snap.items():
            old = self.before.get(kind, set())
            if kind == "process":
                old_ids = {(p, t) for p, t, _ in old}
                fresh = {x for x in items if (x[0], x[1]) not in old_ids}
            elif kind == "cgroup":
                fresh = _cgroup_leftovers(old, items)
            else:
                fresh = items - old
            if fresh:
                out[kind] = fresh
        return out

    def leftovers(self, settle=None):
        """New leftovers, waited for for up to SETTLE seconds (a killed
        process takes a moment to go, and its cgroup with it)."""
        if settle is None:
            settle = float(os.environ.get("SBXTEST_GUARD_SETTLE", "5"))
        deadline = time.monotonic() + settle
        while True:
            found = self.new(self.snapshot())
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.25)

    @staticmethod
    def report_lines(found):
        lines = []
        for kind in sorted(found):
            for x in sorted(found[kind]):
                if kind == "process":
                    lines.append(f"process {x[0]}: {x[2]}")
                elif kind == "mount":
                    lines.append(f"mount {x[1]} (id {x[0]})")
                else:
                    lines.append(f"{kind} {x}")
        return lines

    def remove(self, found):
        """Remove the leftovers FOUND; return what could not be removed."""
        errors = []
        procs = found.get("process", set())
        for pid, start, _ in procs:
            st = _proc_stat(pid)
            if st and st[2] == start:  # the same process, not a reused pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while any(_proc_stat(p) and _proc_stat(p)[1] not in "ZX" for p, _, _ in procs):
            if time.monotonic() > deadline:
                errors.append("processes did not die")
                break
            time.sleep(0.05)
        for _, mp in sorted(found.get("mount", set()), key=lambda m: len(m[1]), reverse=True):
            cp = run_cmd(["umount", "-l", mp])
            if cp.returncode != 0:
                errors.append(f"umount {mp}: {cp.stderr.strip()}")
        for ns in found.get("netns", set()):
            cp = run_cmd(["ip", "netns", "delete", ns])
            if cp.returncode != 0:
                errors.append(f"ip netns delete {ns}: {cp.stderr.strip()}")
        for t in found.get("nft table", set()):
            cp = run_cmd(["nft", "delete", "table", *t.split()])
            if cp.returncode != 0:
                errors.append(f"nft delete table {t}: {cp.stderr.strip()}")
        for d in sorted(found.get("cgroup", set()), key=len, reverse=True):
            errors += remove_cgroup_tree(d)[1]
        for d in found.get("state dir", set()) | found.get("tmp dir", set()):
            if mounts_under(d):
                errors.append(f"{d}: still has mounts, not removed")
            elif os.path.isdir(d) and not os.path.islink(d):
                shutil.rmtree(d, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(d)
        return errors


# What the guard found, for the session-finish hooks.  (The security suite
# loads this file as another module; the fixture and the hooks it copies
# still share this dictionary, their globals.)
_guard_result = {"leftovers": [], "errors": []}


# Suites that run at once (make -j2 check runs integration and security
# together) share our own cgroup.  In a hierarchy that does not hold it
# (hybrid: memory:/a/b but pids:/), a runtime's mkdir -p makes a copy of its
# path.  Made and removed test by test, one suite's test would find the
# other's copy, keep it as the host's (CgroupParent removes only what
# appeared) and leave it behind.  So each session makes the missing copies
# first and lists them in the list file; the last session to end (the one
# that can take the presence lock exclusively) removes the listed ones that
# are empty.  Sessions nest (test_guard runs pytest), so the presence lock
# is only ever held shared while a session runs.
_MIRROR_LIST = "/run/sbxtest-cgroup-mirrors.list"
_MIRROR_PRESENCE = "/run/sbxtest-cgroup-mirrors.presence"


def _mirror_open(path):
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)


def _mirrors_make():
    """The presence lock's fd, held shared until _mirrors_release, or None."""
    import fcntl

    try:
        presence = _mirror_open(_MIRROR_PRESENCE)
        lst = _mirror_open(_MIRROR_LIST)
    except OSError:
        return None
    fcntl.flock(presence, fcntl.LOCK_SH)
    try:
        fcntl.flock(lst, fcntl.LOCK_EX)
        made = []
        own = own_cgroup().rstrip("/")
        for top, d in all_cgroup_dirs(own):
            for p in reversed([d, *CgroupParent._ancestors(top, d)]):
                if not os.path.isdir(p):
                    with contextlib.suppress(OSError):
                        os.mkdir(p)
                        made.append(p)
        if made:
            os.lseek(lst, 0, os.SEEK_END)
            os.write(lst, "".join(p + "\n" for p in made).encode())
    finally:
        os.close(lst)
    return presence


def _mirrors_release(presence):
    import fcntl

    if presence is None:
        return
    try:
        fcntl.flock(presence, fcntl.LOCK_UN)
        try:
            fcntl.flock(presence, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # another session still runs: the last one removes them
        lst = _mirror_open(_MIRROR_LIST)
        try:
            fcntl.flock(lst, fcntl.LOCK_EX)
            listed = os.read(lst, 1 << 20).decode().split()
            left = []
            for p in sorted(set(listed), key=len, reverse=True):
                try:
                    os.rmdir(p)
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(p)
            os.ftruncate(lst, 0)
            os.lseek(lst, 0, os.SEEK_SET)
            os.write(lst, "".join(p + "\n" for p in left).encode())
        finally:
            os.close(lst)
    finally:
        os.close(presence)


@pytest.fixture(scope="session", autouse=True)
def _session_guard(tmp_path_factory):
    """Autouse, session-wide: set up before any other fixture of the
    session and so torn down after all of them."""
    mirrors = _mirrors_make()
    guard = HostGuard(tmp_path_factory.getbasetemp())
    yield guard
    found = guard.leftovers()
    if found:
        _guard_result["leftovers"] = guard.report_lines(found)
        _guard_result["errors"] = guard.remove(found)
    _mirrors_release(mirrors)


def pytest_sessionfinish(session, exitstatus):
    if _guard_result["leftovers"] and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    left = _guard_result["leftovers"]
    if not left:
        return
    tr = terminalreporter
    tr.section("session guard: the run left things behind", sep="=", red=True, bold=True)
    for line in left:
        tr.line(f"LEFTOVER {line}", red=True)
    for e in _guard_result["errors"]:
        tr.line(f"could not remove: {e}", red=True)
    tr.line("(removed by the guard; the run fails)")


# ---------------------------------------------------------------------------
# Helpers shared by the container tests (test_lifecycle, test_isolation,
# test_exec, test_hooks).  Additions only: nothing above depends on them.

import socket  # noqa: E402  (kept with the helpers that use it)

# Capability numbers (linux/capability.h): CAP_NAMES[n] is capability n.
CAP_NAMES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]


def cap_mask(names):
    """The /proc/<pid>/status bit mask (an int) of capability NAMES."""
    mask = 0
    for n in names:
        mask |= 1 << CAP_NAMES.index(n)
    return mask


def cap_names(mask):
    """The capability names of a mask, for readable assertion messages."""
    return sorted(n for i, n in enumerate(CAP_NAMES) if mask >> i & 1) + (
        [f"bit{i}" for i in range(len(CAP_NAMES), 64) if mask >> i & 1])


def parse_status(text):
    """`Key:\\tvalue` lines (as in /proc/<pid>/status) -> {key: value}."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def wait_for(predicate, timeout=10.0, what="condition", interval=0.01):
    """Poll PREDICATE until it returns a true value (which is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid):
    """True while PID exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def add_bind(b, source, destination, *, ro=False):
    """Append a bind mount of host SOURCE at DESTINATION to bundle B's config
    (written back).  The usual way to get files out of a container whose
    root is read-only."""
    opts = ["rbind", "ro" if ro else "rw"]
    b.config.setdefault("mounts", []).append(
        {"destination": destination, "type": "bind", "source": str(source), "options": opts})
    b.write()


@pytest.fixture
def seccomp_cache_cleanup(sbx):
    """sbxrun keeps compiled seccomp filters in `<--root>/.seccomp-cache`,
    which is not the state of any container; remove it before the `sbx`
    teardown looks for leftover state directories.  (test_lifecycle checks
    that it never shadows a container ID.)"""
    yield
    shutil.rmtree(sbx.root / ".seccomp-cache", ignore_errors=True)


class ConsoleSocket:
    """The receiving end of `--console-socket`: a listening AF_UNIX stream
    socket.  A runtime connects and sends the pty master with SCM_RIGHTS;
    the connection is queued by the kernel, so `create` can be run to
    completion before receive() accepts it."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(4)

    def receive(self, timeout=10.0):
        """Accept one connection; return (master fd, text payload)."""
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(timeout)
            msg, fds, _, _ = socket.recv_fds(conn, 4096, 4)
        assert len(fds) == 1, f"expected one fd over the console socket, got {fds} ({msg!r})"
        return fds[0], msg.decode(errors="replace")

    def close(self):
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


@pytest.fixture
def console_socket(tmp_path):
    """A ConsoleSocket at <tmp>/cs (short: sun_path has 108 bytes)."""
    cs = ConsoleSocket(tmp_path / "cs")
    yield cs
    cs.close()


def read_pty_until(fd, needle, timeout=10.0):
    """Read from pty master FD until the text NEEDLE (str or compiled regex)
    has been seen; return everything read.  EIO means the other side hung up."""
    import select

    buf = b""
    deadline = time.monotonic() + timeout

    def found():
        text = buf.decode(errors="replace")
        return needle.search(text) if hasattr(needle, "search") else needle in text

    while not found():
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"no {needle!r} from the terminal within {timeout}s; got {buf!r}")
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            chunk = b""
        if not chunk:
            pytest.fail(f"terminal closed before {needle!r} was seen; got {buf!r}")
        buf += chunk
    return buf.decode(errors="replace")


@pytest.fixture
def public_bundle(bundle, busybox_rootfs, sbx):
    """Like `bundle`, but in a directory every uid can traverse (pytest's
    tmp root is 0700), for containers whose root is an unprivileged host uid.
    The containers of the test are deleted before the directory goes."""
    made = []

    def make(args=None):
        b = bundle(args, rootfs=False)
        d = Path(tempfile.mkdtemp(prefix=f"sbxtest-{os.getpid()}-", dir="/tmp"))
        d.chmod(0o755)
        made.append(d)
        shutil.copy(b.config_path, d / "config.json")
        pb = Bundle(d, json.loads((d / "config.json").read_text()))
        shutil.copytree(busybox_rootfs, pb.rootfs, symlinks=True)
        return pb

    yield make
    listed = sbx("list", "-q")
    for cid in listed.stdout.split():
        sbx("delete", "--force", cid)
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


class Spawned:
    """A background sbxrun whose output goes to temporary files: a container
    it creates inherits them and, unlike pipes, they cannot keep us waiting."""

    def __init__(self, sbx, *args):
        self.args = [str(a) for a in args]
        self.out, self.err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self.p = sbx.popen(*args, stdout=self.out, stderr=self.err)
        self.pid = self.p.pid

    def finish(self, timeout=30):
        """Wait; return (exit status, stdout, stderr)."""
        code = self.p.wait(timeout=timeout)
        res = []
        for f in (self.out, self.err):
            f.seek(0)
            res.append(f.read().decode(errors="replace"))
            f.close()
        return code, *res


def clone_rootfs(src, dst):
    """A private copy of rootfs SRC at DST, much cheaper than copytree for a
    busybox tree: directories and regular files are copied, symbolic links
    (the ~400 applet links) are hard links to the source's link inodes,
    which nothing can change in place.  A container may add, remove or
    rewrite files in DST without touching SRC."""
    src, dst = Path(src), Path(dst)
    dst.mkdir()
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        for name in dirs + files:
            s, d = Path(root) / name, dst / rel / name
            if s.is_symlink():
                os.link(s, d, follow_symlinks=False)
            elif s.is_dir():
                d.mkdir()
            else:
                shutil.copy2(s, d)
    for root, dirs, _ in os.walk(src):
        for name in [""] + dirs:
            s = Path(root) / name
            if not s.is_symlink():
                shutil.copystat(s, dst / s.relative_to(src))


@pytest.fixture
def fast_bundle(bundle, busybox_rootfs):
    """The `bundle` factory, with the rootfs made by clone_rootfs."""

    def make(args=None, *, rootfs=True, **kw):
        b = bundle(args, rootfs=False, **kw)
        if rootfs:
            clone_rootfs(busybox_rootfs, b.rootfs)
        return b

    return make


# ---------------------------------------------------------------------------
# containerd (tests/vm suites: the guests run it)


def oci_image_tar(rootfs, out, name):
    """An OCI image layout (one uncompressed layer: ROOTFS) in tar OUT,
    named NAME for `ctr images import`."""
    import hashlib
    import io

    blobs = {}

    def blob(data):
        d = hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return {"digest": f"sha256:{d}", "size": len(data)}

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.add(rootfs, arcname=".")
    layer = blob(buf.getvalue())
    config = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                              "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
    manifest = blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}]}).encode())
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
        "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "latest"}}]}
    with tarfile.open(out, "w") as t:
        def add(path, data):
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add("index.json", json.dumps(index).encode())
        for d, data in blobs.items():
            add(f"blobs/sha256/{d}", data)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory, busybox_rootfs):
    """A private containerd (its own root, state and socket; no CRI) with
    the busybox rootfs imported as localhost/sbxbox:latest.  Returns
    ctr(*args, check=True, timeout=120) for `ctr` on its namespace "sbx";
    .state is its state directory."""
    for b in ("containerd", "ctr", "containerd-shim-runc-v2"):
        if not shutil.which(b):
            pytest.skip(f"{b} not installed (apt-get install containerd)")
    top = tmp_path_factory.mktemp("containerd")
    sock = f"/run/sbxctrd-{os.getpid()}/containerd.sock"
    cfg = top / "config.toml"
    cfg.write_text(f'version = 2\nroot = "{top}/root"\nstate = "/run/sbxctrd-{os.getpid()}"\n'
                   f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "{sock}"\n')
    log = open(top / "containerd.log", "w")
    daemon = subprocess.Popen(["containerd", "--config", str(cfg)], stdout=log, stderr=log,
                              stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(sock), timeout=60, what="containerd's socket")

        def c(*args, check=True, timeout=120):
            cp = run_cmd(["ctr", "--address", sock, "--namespace", "sbx", *map(str, args)], timeout=timeout)
            if check:
                assert cp.returncode == 0, describe(cp) + "\n" + (top / "containerd.log").read_text()[-3000:]
            return cp

        c.state = f"/run/sbxctrd-{os.getpid()}"
        oci_image_tar(busybox_rootfs, top / "image.tar", "localhost/sbxbox:latest")
        c("images", "import", top / "image.tar")
        yield c
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        log.close()
        shutil.rmtree(f"/run/sbxctrd-{os.getpid()}", ignore_errors=True)
        shutil.rmtree(top, ignore_errors=True)
