#!/usr/bin/python3
"""Start-up benchmark: sbxrun vs crun vs runc (driven by bench.sh).

From one busybox bundle running /bin/true, for each runtime:
  * `run`: wall time of N sequential `run` (median, p90);
  * phases: N sequential create / start / delete, each phase timed on its
    own (the wait for the container to stop, polled with `state`, is not
    timed);
  * peak RSS of `run`: the largest `/usr/bin/time -f %M` over 10 extra runs
    (the runtime process and the children it waited for).  Not taken from
    our own wait4: a child spawned by a Python process carries the
    interpreter's RSS high-water mark across exec;
and the floor: `unshare --fork --pid --mount --uts --ipc --net --mount-proc
chroot ROOTFS /bin/true`, the namespaces without any runtime.

The whole benchmark is repeated R times (default 3) to show the spread; the
tables give the median and p90 of all R x N samples and the range of the R
per-repeat medians.  Then, unless --no-seccomp-cache, the seccomp section:
the same `run` with a ~300-rule allowlist profile, for sbxrun with an empty
compile cache (<root>/.seccomp-cache removed before each run, untimed), with
a warm cache, and for crun and runc (which have no cache).

Fairness:
  * the measurements are interleaved: iteration i runs every runtime and the
    floor once, in a shuffled order (seeded, so reproducible), so background
    load and the after-effects of the previous command (e.g. the kernel
    tearing down its network namespace) spread evenly; each runtime is driven
    by its own long-lived worker process;
  * every runtime gets the same config.json (made by `sbxrun spec`, or `runc
    spec` if that fails) with linux.seccomp removed (--seccomp), except
    linux.cgroupsPath, a per-runtime path below the benchmark's own cgroup;
  * ociVersion is set to 1.0.2 because crun 1.8 (Debian 12) rejects newer;
  * bundles, rootfs and state roots live on a tmpfs in a private mount
    namespace, like /run on most hosts (--on-disk: a directory under
    /var/tmp instead, to see the cost of the state directory's file system);
  * on a hybrid cgroup host crun refuses to run while cgroup v2 is mounted at
    /sys/fs/cgroup/unified, so its worker runs in a further private mount
    namespace with a tmpfs over that directory (crun then creates its cgroups
    in the v1 hierarchies only; sbxrun and runc also create one in v2);
  * 3 warm-up iterations per repeat are discarded.
"""

import argparse
import datetime
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

WARMUP = 3
RSS_RUNS = 10
PHASES = ("create", "start", "delete")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Failure(Exception):
    pass


# ---------------------------------------------------------------------------
# timing


def spawn_wait(argv, errpath):
    """Run ARGV with stdin/stdout on /dev/null and stderr to ERRPATH.
    Returns (exit status, wall seconds)."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, errpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    dt = time.perf_counter() - t0
    return os.waitstatus_to_exitcode(status), dt


def checked(argv, errpath):
    rc, dt = spawn_wait(argv, errpath)
    if rc != 0:
        with open(errpath, errors="replace") as f:
            err = f.read().strip()
        raise Failure(f"`{' '.join(argv)}` exited {rc}: {err[-800:]}")
    return dt


def peak_rss(argv_of, errpath, runs):
    """Largest maximum resident set size (KiB) reported by GNU time."""
    gnu_time = "/usr/bin/time"
    if not os.access(gnu_time, os.X_OK):
        return None
    out = errpath + ".rss"
    peak = 0
    for i in range(runs):
        checked([gnu_time, "-f", "%M", "-o", out, *argv_of(i)], errpath)
        with open(out) as f:
            peak = max(peak, int(f.read().split()[-1]))
    return peak


def percentile(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


# ---------------------------------------------------------------------------
# worker: drives one runtime, one request per stdin line, one JSON reply per
# line (this may run inside a private mount namespace, for crun)


def worker(args):
    rt = [args.binary, "--root", args.root]
    err = os.path.join(args.root, "stderr")
    os.makedirs(args.root, exist_ok=True)
    cache = os.path.join(args.root, ".seccomp-cache")

    def state_of(cid):
        cp = subprocess.run([*rt, "state", cid], capture_output=True, text=True)
        return json.loads(cp.stdout).get("status") if cp.returncode == 0 else None

    def wait_stopped(cid):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if state_of(cid) == "stopped":
                return
            time.sleep(0.001)
        raise Failure(f"{args.name}: container {cid} did not stop within 10s")

    def op_run(req):
        if req.get("cold"):
            shutil.rmtree(cache, ignore_errors=True)
        return {"run": checked([*rt, "run", "--bundle", req["bundle"], req["id"]], err)}

    def op_phases(req):
        cid = req["id"]
        r = {"create": checked([*rt, "create", "--bundle", req["bundle"], cid], err),
             "start": checked([*rt, "start", cid], err)}
        wait_stopped(cid)
        r["delete"] = checked([*rt, "delete", cid], err)
        return r

    def op_rss(req):
        return {"rss_kib": peak_rss(lambda i: [*rt, "run", "--bundle", req["bundle"], f"{req['id']}-{i}"],
                                    err, req["runs"])}

    def op_cleanup(req):
        cp = subprocess.run([*rt, "list", "-q"], capture_output=True, text=True)
        for cid in cp.stdout.split():
            subprocess.run([*rt, "delete", "--force", cid], capture_output=True)
        return {}

    ops = {"run": op_run, "phases": op_phases, "rss": op_rss, "cleanup": op_cleanup}
    for line in sys.stdin:
        req = json.loads(line)
        try:
            reply = ops[req["op"]](req)
        except (Failure, OSError) as e:
            reply = {"error": str(e)}
        print(json.dumps(reply), flush=True)


class Worker:
    def __init__(self, name, binary, root, wrap=()):
        cmd = [*wrap, sys.executable, os.path.abspath(__file__), "worker", "--name", name,
               "--binary", binary, "--root", root]
        self.name = name
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **req):
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise Failure(f"{self.name}: worker died")
        reply = json.loads(line)
        if "error" in reply:
            raise Failure(reply["error"])
        return reply

    def close(self):
        try:
            self.ask(op="cleanup")
            self.p.stdin.close()
        except (Failure, OSError):
            pass
        self.p.wait()


# ---------------------------------------------------------------------------
# set-up: rootfs, bundles, cgroups, seccomp profile


def own_cgroup():
    """Deepest path in /proc/self/cgroup (the memory controller's on a hybrid
    host): below our own cgroup in every hierarchy."""
    paths = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            paths.append(line.rstrip("\n").split(":", 2)[2])
    return max(paths, key=lambda p: len(p.rstrip("/").split("/")))


def cgroup_mounts():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] in ("cgroup", "cgroup2"):
                fields = left.split()
                out.append((fields[4], fields[3].rstrip("/")))
    return out


def cgroup_dirs(path):
    return [mp + path[len(root):] for mp, root in cgroup_mounts()
            if not root or path == root or path.startswith(root + "/")]


def existing_ancestors(path):
    found = set()
    for d in cgroup_dirs(path):
        p = os.path.dirname(d)
        while not os.path.ismount(p) and p != "/":
            if os.path.isdir(p):
                found.add(p)
            p = os.path.dirname(p)
    return found


def remove_cgroups(path, keep):
    """rmdir the tree PATH in every hierarchy, then the ancestors that did not
    exist before (KEEP).  rmdir only removes empty cgroups."""
    for d in cgroup_dirs(path):
        if os.path.isdir(d):
            for dirpath, _, _ in sorted(os.walk(d), key=lambda t: len(t[0]), reverse=True):
                try:
                    os.rmdir(dirpath)
                except OSError as e:
                    log(f"warning: cannot remove cgroup {dirpath}: {e.strerror}")
        p = os.path.dirname(d)
        while not os.path.ismount(p) and p != "/" and p not in keep:
            try:
                os.rmdir(p)
            except OSError:
                break
            p = os.path.dirname(p)


def hybrid_unified():
    """True when cgroup v2 is mounted at /sys/fs/cgroup/unified next to v1."""
    return any(mp == "/sys/fs/cgroup/unified" for mp, _ in cgroup_mounts())


def make_rootfs(rootfs):
    os.makedirs(os.path.join(rootfs, "bin"))
    for d in ("etc", "proc", "sys", "dev", "tmp", "root"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy2("/bin/busybox", os.path.join(rootfs, "bin/busybox"))
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True)
    for a in applets.stdout.split():
        if a != "busybox":
            os.symlink("busybox", os.path.join(rootfs, "bin", a))
    with open(os.path.join(rootfs, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(rootfs, "etc/group"), "w") as f:
        f.write("root:x:0:\n")


def base_config(sbxrun, work):
    """config.json from `sbxrun spec`, or `runc spec` when that fails."""
    d = os.path.join(work, "spec")
    os.makedirs(d)
    if sbxrun and subprocess.run([sbxrun, "spec", "--bundle", d], capture_output=True).returncode == 0:
        source = "sbxrun spec"
    elif shutil.which("runc"):
        subprocess.run(["runc", "spec", "--bundle", d], check=True)
        source = "runc spec"
    else:
        sys.exit("bench: cannot generate a config.json (neither sbxrun spec nor runc spec work)")
    with open(os.path.join(d, "config.json")) as f:
        return json.load(f), source


# Syscalls a Docker-like allowlist leaves out: module, kexec, clock, swap,
# mount and namespace administration, tracing, keyrings, obsolete calls.
SECCOMP_DENIED = set("""
    acct add_key afs_syscall bpf clock_adjtime clock_settime create_module
    delete_module finit_module get_kernel_syms get_mempolicy getpmsg init_module
    ioperm iopl kcmp kexec_file_load kexec_load keyctl lookup_dcookie mbind
    mount move_mount fsopen fsconfig fsmount fspick open_tree mount_setattr
    move_pages name_to_handle_at nfsservctl open_by_handle_at perf_event_open
    personality pivot_root process_vm_readv process_vm_writev ptrace putpmsg
    query_module quotactl quotactl_fd reboot request_key security
    set_mempolicy set_mempolicy_home_node setns settimeofday swapoff swapon
    _sysctl sysfs tuxcall umount2 unshare uselib userfaultfd ustat vhangup
    vserver
""".split())


def large_seccomp_profile():
    """A ~300-rule allowlist (one rule per syscall of this architecture's
    headers, minus SECCOMP_DENIED, plus four argument-filtered personality
    rules); everything else fails with EPERM.  None when the kernel headers
    (linux-libc-dev) are missing."""
    header = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
    if platform.machine() != "x86_64" or not os.path.exists(header):
        return None
    with open(header) as f:
        names = sorted(set(re.findall(r"#define __NR_(\w+)\s+\d+", f.read())) - SECCOMP_DENIED)
    rules = [{"names": [n], "action": "SCMP_ACT_ALLOW"} for n in names]
    for value in (0x0, 0x8, 0x20000, 0xFFFFFFFF):
        rules.append({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}]})
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": rules}


def make_bundle(config, bundle, rootfs, cgroups_path, seccomp):
    c = json.loads(json.dumps(config))
    c["ociVersion"] = "1.0.2"
    c["root"] = {"path": rootfs, "readonly": True}
    c["process"]["terminal"] = False
    c["process"]["args"] = ["/bin/true"]
    c.setdefault("linux", {})["cgroupsPath"] = cgroups_path
    if seccomp is None:
        c["linux"].pop("seccomp", None)
    elif seccomp != "keep":
        c["linux"]["seccomp"] = seccomp
    os.makedirs(bundle)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    return c


def describe_config(c):
    lx = c.get("linux", {})
    sc = lx.get("seccomp")
    caps = c["process"].get("capabilities", {}).get("bounding", [])
    return "; ".join([
        "namespaces " + ", ".join(n["type"] for n in lx.get("namespaces", [])),
        "mounts " + ", ".join(m["destination"] for m in c.get("mounts", [])),
        f"{len(lx.get('maskedPaths', []))} masked + {len(lx.get('readonlyPaths', []))} read-only paths",
        f"read-only rootfs, {len(caps)} capabilities, noNewPrivileges {c['process'].get('noNewPrivileges', False)}",
        "rlimits " + ", ".join(r["type"] for r in c["process"].get("rlimits", [])),
        f"{len(lx.get('resources', {}).get('devices', []))} device cgroup rule(s)",
        f"seccomp: {len(sc['syscalls'])} rules, default {sc['defaultAction']}" if sc else "no seccomp",
        "no hooks, no terminal, no user namespace",
    ])


def has_command(binary, cmd):
    return subprocess.run([binary, cmd, "--help"], capture_output=True).returncode == 0


def version_of(binary):
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "?"
    return out.split("\n", 1)[0].split()[-1] if out.strip() else "?"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def fstype(path):
    best, typ = "", "?"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            mp = left.split()[4]
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                best, typ = mp, right.split()[0]
    return typ


# ---------------------------------------------------------------------------
# the measurement loops


def shuffled(actors, seed):
    """ACTORS in a pseudo-random order fixed by SEED.  A plain rotation would
    give each actor mostly the same predecessor, and what the predecessor
    leaves behind matters: a network namespace is torn down asynchronously
    after its last process exits, while the next container is being set up."""
    order = list(actors)
    random.Random(repr(seed)).shuffle(order)
    return order


def floor_argv(rootfs):
    return [shutil.which("unshare"), "--fork", "--pid", "--mount", "--uts", "--ipc", "--net",
            "--mount-proc", "chroot", rootfs, "/bin/true"]


def main_loop(ents, rootfs, n, repeat, work):
    """ents: list of dicts {name, worker, bundle, run, phases}.  Fills
    ent['samples'][rep] = {'run': [...], 'create': [...], ...}."""
    floor_err = os.path.join(work, "floor.err")
    floor = {"name": "floor", "samples": []}
    actors = [e for e in ents if e.get("worker")] + [floor]
    for rep in range(repeat):
        log(f"repeat {rep + 1}/{repeat}: {n} iterations (+{WARMUP} warm-up) of "
            + ", ".join(a["name"] for a in actors) + f"; load {loadavg()}")
        for a in actors:
            a["samples"].append({k: [] for k in ("run", "prev") + PHASES})
        prev = None
        for i in range(WARMUP + n):
            for a in shuffled(actors, (rep, i)):
                if a.get("error"):
                    continue
                try:
                    if a is floor:
                        r = {"run": checked(floor_argv(rootfs), floor_err)}
                    else:
                        r = {}
                        tag = f"b{rep}-{i}"
                        if a["run"]:
                            r.update(a["worker"].ask(op="run", bundle=a["bundle"], id=f"{tag}-r"))
                        if a["phases"]:
                            r.update(a["worker"].ask(op="phases", bundle=a["bundle"], id=f"{tag}-p"))
                except Failure as e:
                    a["error"] = str(e)
                    log(f"{a['name']}: {e}")
                    continue
                if i >= WARMUP:
                    for key, v in r.items():
                        a["samples"][-1][key].append(v)
                    if "run" in r:
                        a["samples"][-1]["prev"].append(prev)
                prev = a["name"]
    return floor


def seccomp_loop(ents, n, work):
    """Each iteration, in a shuffled order: every runtime with the main config
    (the reference), then with the large profile: sbxrun with a cold and a
    warm cache, crun, runc."""
    actors = []
    for e in ents:
        if not e.get("sc_worker"):
            continue
        ref = {"name": f"{e['name']}, main config", "ent": e, "worker": e["worker"],
               "bundle": e["bundle"], "cold": False, "t": []}
        actors.append(ref)
        variants = [("cold cache", True), ("warm cache", False)] if e["name"] == "sbxrun" else [("", False)]
        for label, cold in variants:
            actors.append({"name": f"{e['name']}, seccomp" + (f", {label}" if label else ""), "ent": e,
                           "worker": e["sc_worker"], "bundle": e["sc_bundle"], "cold": cold,
                           "ref": ref, "t": []})
    log(f"seccomp: {n} iterations (+{WARMUP} warm-up) of " + ", ".join(a["name"] for a in actors)
        + f"; load {loadavg()}")
    for i in range(WARMUP + n):
        for a in shuffled(actors, ("seccomp", i)):
            if a.get("error"):
                continue
            try:
                r = a["worker"].ask(op="run", bundle=a["bundle"], id=f"s{i}-{len(a['t'])}-{id(a) % 997}",
                                    cold=a["cold"])
            except Failure as e:
                a["error"] = str(e)
                log(f"{a['name']}: {e}")
                continue
            if i >= WARMUP:
                a["t"].append(r["run"])
    return actors


POLICY = {"org.sbxrun.net.allow": "10.0.0.1:443", "org.sbxrun.net.dns": "none"}


def policy_loop(ents, n):
    """sbxrun's `run` with and without an egress policy (org.sbxrun.net.*,
    a new network namespace either way), paired: each iteration runs both,
    in a shuffled order.  Returns {"plain": [...], "policy": [...]}."""
    e = next((e for e in ents if e["name"] == "sbxrun" and e.get("pol_worker")), None)
    if e is None or e.get("error"):
        return None
    actors = [{"name": "plain", "worker": e["worker"], "bundle": e["bundle"]},
              {"name": "policy", "worker": e["pol_worker"], "bundle": e["pol_bundle"]}]
    out = {"plain": [], "policy": []}
    log(f"egress policy: {n} pairs (+{WARMUP} warm-up) of sbxrun run with and without a policy; "
        f"load {loadavg()}")
    for i in range(WARMUP + n):
        pair = {}
        for a in shuffled(actors, ("policy", i)):
            try:
                pair[a["name"]] = a["worker"].ask(op="run", bundle=a["bundle"], id=f"p{i}-{a['name']}")["run"]
            except Failure as ex:
                out["error"] = str(ex)
                log(f"egress policy: {ex}")
                return out
        if i >= WARMUP:
            for k, v in pair.items():
                out[k].append(v)
    return out


# ---------------------------------------------------------------------------
# report


def ms(x):
    return f"{x * 1000:.1f}" if x is not None else "-"


def pooled(a, key):
    return [v for rep in a["samples"] for v in rep[key]]


def med(a, key):
    v = pooled(a, key)
    return statistics.median(v) if v else None


def p90(a, key):
    v = pooled(a, key)
    return percentile(v, 90) if v else None


def spread(a, key):
    meds = [statistics.median(rep[key]) for rep in a["samples"] if rep[key]]
    if not meds:
        return "-"
    return f"{min(meds) * 1000:.1f}–{max(meds) * 1000:.1f}"


def paired(a, b, key):
    """(a, b) samples of KEY taken in the same iteration (while neither
    failed, the lists of one repeat line up)."""
    out = []
    for ra, rb in zip(a["samples"], b["samples"]):
        if len(ra[key]) == len(rb[key]):
            out += zip(ra[key], rb[key])
    return out


def ratio(x, y):
    return f"{x / y:.2f}" if x and y else "-"


def table(cols, rows):
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join(["---"] + ["--:"] * (len(cols) - 1)) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def report(ents, floor, sc, meta, pol=None):
    n, repeat = meta["n"], meta["repeat"]
    print(f"## Container start-up: {n} sequential runs of /bin/true (busybox bundle), x{repeat} repeats\n")
    print(f"- host: {platform.node()}, kernel {platform.release()}, {os.cpu_count()} x {cpu_model()}, "
          f"cgroups {'hybrid v1+v2' if hybrid_unified() else 'as mounted'}")
    print(f"- date: {meta['date']}; load average before {meta['load_before']}, after {loadavg()}")
    print(f"- bundles and state roots on {meta['fs']}; cgroupsPath below {own_cgroup()}")
    print(f"- config ({meta['spec_source']}, ociVersion 1.0.2): {meta['config']}")
    print("- wall time per command; median and p90 of all samples, spread = range of the per-repeat "
          f"medians; peak RSS: max of `/usr/bin/time -f %M` over {RSS_RUNS} runs "
          "(the runtime and the children it waited for)\n")

    fl = med(floor, "run") if floor["samples"] and pooled(floor, "run") else None
    rows = []
    for a in ents + [floor]:
        name = a["name"] if a is not floor else "floor: unshare + chroot"
        row = [name, a.get("version", "")]
        if a.get("samples") and pooled(a, "run"):
            row += [ms(med(a, "run")), ms(p90(a, "run")), spread(a, "run"), ratio(med(a, "run"), fl)]
        else:
            row += [a.get("note") or "-", "-", "-", "-"]
        for ph in PHASES:
            row.append(f"{ms(med(a, ph))} / {ms(p90(a, ph))}" if a.get("samples") and pooled(a, ph) else "-")
        row.append(f"{a['rss_kib'] / 1024:.1f}" if a.get("rss_kib") else "-")
        rows.append(row)
    table(["runtime", "version", "run median (ms)", "run p90 (ms)", "run median spread (ms)",
           "run vs floor", "create median / p90 (ms)", "start median / p90", "delete median / p90",
           "peak RSS (MiB)"], rows)

    sbx = next((a for a in ents if a["name"] == "sbxrun" and a.get("samples")), None)
    others = [a for a in ents if a["name"] != "sbxrun" and a.get("samples")]
    if sbx and others:
        print("Ratios (sbxrun / other; below 1 means sbxrun is faster or smaller).  Paired: the "
              "median of the per-iteration ratios, and in how many iterations sbxrun was faster "
              "(the runtimes run in the same iterations, so each pair saw the same background "
              "load).\n")
        rows = []
        for o in others:
            row = [f"sbxrun / {o['name']}", ratio(med(sbx, "run"), med(o, "run")),
                   ratio(p90(sbx, "run"), p90(o, "run"))]
            row += [ratio(med(sbx, ph), med(o, ph)) for ph in PHASES]
            row.append(ratio(sbx.get("rss_kib"), o.get("rss_kib")))
            for key in ("run", "create"):
                pairs = paired(sbx, o, key)
                row.append(f"{statistics.median(x / y for x, y in pairs):.2f}, "
                           f"{sum(x < y for x, y in pairs)}/{len(pairs)}" if pairs else "-")
            rows.append(row)
        table(["", "run median", "run p90", "create", "start", "delete", "peak RSS",
               "run, paired", "create, paired"], rows)

    names = [a["name"] for a in ents + [floor] if a.get("samples") and pooled(a, "run")]
    if len(names) > 2:
        print("`run` median (ms) by the actor whose turn came just before (n in brackets).  "
              "What the previous command left behind matters; compare runtimes column by "
              "column:\n")
        rows = []
        for a in ents + [floor]:
            if a["name"] not in names:
                continue
            by = {}
            for r in a["samples"]:
                for v, p in zip(r["run"], r.get("prev", [])):
                    by.setdefault(p, []).append(v)
            rows.append([a["name"]] + [f"{ms(statistics.median(by[p]))} ({len(by[p])})" if by.get(p) else "-"
                                       for p in names])
        table(["runtime"] + [f"after {p}" for p in names], rows)

    print("Per-repeat medians (ms): run, create, start, delete\n")
    rows = []
    for a in ents + [floor]:
        if not a.get("samples"):
            continue
        row = [a["name"]]
        for rep in a["samples"]:
            row.append(" / ".join(ms(statistics.median(rep[k])) if rep[k] else "-"
                                  for k in ("run",) + PHASES))
        rows.append(row)
    table(["runtime"] + [f"repeat {i + 1}" for i in range(repeat)], rows)

    if sc:
        print(f"### seccomp: ~300-rule allowlist ({meta['sc_rules']} rules, default SCMP_ACT_ERRNO, "
              f"3 architectures), {n} runs each\n")
        print(f"Interleaved with the same runtimes on the main config ({meta['seccomp']}), "
              "the reference for the added cost; paired: the median of the per-iteration "
              "differences (both ran in the same iteration).\n")
        warm = next((a for a in sc if a["name"] == "sbxrun, seccomp, warm cache"), None)
        rows = []
        for a in sc:
            if not a["t"]:
                rows.append([a["name"], "failed", "-", "-", "-", "-"])
                continue
            m = statistics.median(a["t"])
            ref = a.get("ref")
            base = statistics.median(ref["t"]) if ref and ref["t"] else None
            added = ""
            if ref and len(ref["t"]) == len(a["t"]):
                added = f"{statistics.median(x - y for x, y in zip(a['t'], ref['t'])) * 1000:+.2f}"
            rows.append([a["name"], ms(m), ms(percentile(a["t"], 90)),
                         f"{(m - base) * 1000:+.1f}" if base else "", added,
                         ratio(m, statistics.median(warm["t"])) if warm and warm["t"] and ref else ""])
        table(["runtime", "run median (ms)", "run p90 (ms)", "added by the profile (ms)",
               "added, paired (ms)", "vs sbxrun warm"], rows)

    if pol and pol["plain"]:
        ratios = [b / a for a, b in zip(pol["plain"], pol["policy"])]
        m0, m1 = statistics.median(pol["plain"]), statistics.median(pol["policy"])
        print(f"### egress policy: `run` of /bin/true with and without org.sbxrun.net.allow, "
              f"{len(ratios)} pairs\n")
        print("Both in a new network namespace; the policy is one allowed destination "
              f"({POLICY['org.sbxrun.net.allow']}, dns none).  Ratio: median of the per-pair ratios.\n")
        table(["sbxrun", "run median (ms)", "run p90 (ms)"],
              [["no policy", ms(m0), ms(percentile(pol["plain"], 90))],
               ["policy", ms(m1), ms(percentile(pol["policy"], 90))]])
        print(f"Added by the policy: {(m1 - m0) * 1000:+.1f} ms; paired ratio {statistics.median(ratios):.2f}\n")
    if pol and pol.get("error"):
        print(f"**egress policy pairs failed**: {pol['error']}\n")

    for a in ents + [floor] + (sc or []):
        if a.get("error"):
            print(f"**{a['name']} failed**: {a['error']}\n")


# ---------------------------------------------------------------------------


def bench(args):
    if os.geteuid() != 0:
        sys.exit("bench: run as root (containers need it)")
    if not os.path.exists("/bin/busybox"):
        sys.exit("bench: /bin/busybox missing (apt-get install busybox-static)")
    if not args.on_disk and not args.workdir:
        # Re-run in a private mount namespace with a tmpfs on the work
        # directory; the host's mounts are not touched.
        work = tempfile.mkdtemp(prefix="sbxrun-bench-")
        try:
            env = dict(os.environ)
            cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mount -t tmpfs -o mode=0700 sbxrun-bench "$1" && shift && exec "$@"', "sh", work,
                   sys.executable, os.path.abspath(__file__), *sys.argv[1:], "--workdir", work]
            return subprocess.run(cmd, env=env).returncode
        finally:
            os.rmdir(work)
    sbxrun = os.path.abspath(args.sbxrun)
    work = args.workdir or tempfile.mkdtemp(prefix="sbxrun-bench-", dir="/var/tmp")
    base = f"{own_cgroup().rstrip('/')}/sbxbench-{os.getpid()}"
    keep = existing_ancestors(base)
    meta = {"n": args.n, "repeat": args.repeat, "load_before": loadavg(),
            "seccomp": "no seccomp" if args.seccomp == "none" else f"seccomp {args.seccomp}",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "fs": f"{fstype(work)} ({'private tmpfs' if args.workdir else work})"}
    ents = []
    failed = False
    try:
        rootfs = os.path.join(work, "rootfs")
        make_rootfs(rootfs)
        if os.access(sbxrun, os.X_OK):
            # a private copy: a rebuild during the benchmark must not change
            # (or briefly remove) the binary under test
            os.makedirs(os.path.join(work, "bin"))
            shutil.copy2(sbxrun, os.path.join(work, "bin", "sbxrun"))
            sbxrun = os.path.join(work, "bin", "sbxrun")
        config, meta["spec_source"] = base_config(sbxrun if os.access(sbxrun, os.X_OK) else None, work)
        if args.seccomp == "none":
            sc_main = None
        elif args.seccomp == "spec":
            sc_main = "keep"
        else:
            with open(args.seccomp) as f:
                sc_main = json.load(f)
        large = None if args.no_seccomp_cache else large_seccomp_profile()
        meta["sc_rules"] = len(large["syscalls"]) if large else 0
        for name in args.runtimes.split(","):
            binary = sbxrun if name == "sbxrun" else shutil.which(name)
            e = {"name": name, "version": version_of(binary) if binary else "", "samples": []}
            ents.append(e)
            if not binary or not os.access(binary, os.X_OK):
                e["note"] = "not installed"
                log(f"{name}: not installed, skipped")
                continue
            e["run"] = has_command(binary, "run")
            e["phases"] = all(has_command(binary, c) for c in ("create", "start", "state", "delete"))
            if not e["run"]:
                e["note"] = "run not implemented"
                log(f"{name}: run not implemented")
            if not e["run"] and not e["phases"]:
                continue
            e["bundle"] = os.path.join(work, f"bundle-{name}")
            cfg = make_bundle(config, e["bundle"], rootfs, f"{base}/{name}", sc_main)
            meta["config"] = describe_config(cfg)
            wrap = ()
            if name == "crun" and hybrid_unified():
                wrap = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                        'mount -t tmpfs none /sys/fs/cgroup/unified && exec "$@"', "sh")
            e["worker"] = Worker(name, binary, os.path.join(work, f"state-{name}"), wrap)
            if name == "sbxrun" and e["run"] and not args.no_policy:
                pc = json.loads(json.dumps(config))
                pc.setdefault("annotations", {}).update(POLICY)
                e["pol_bundle"] = os.path.join(work, "bundle-sbxrun-policy")
                make_bundle(pc, e["pol_bundle"], rootfs, f"{base}/sbxrun-policy", sc_main)
                e["pol_worker"] = Worker(name, binary, os.path.join(work, "state-sbxrun-policy"), wrap)
            if large and e["run"]:
                e["sc_bundle"] = os.path.join(work, f"bundle-{name}-seccomp")
                make_bundle(config, e["sc_bundle"], rootfs, f"{base}/{name}-seccomp", large)
                e["sc_worker"] = Worker(name, binary, os.path.join(work, f"state-{name}-seccomp"), wrap)

        floor = main_loop(ents, rootfs, args.n, args.repeat, work)
        log(f"peak RSS: {RSS_RUNS} runs each")
        for e in ents:
            if e.get("worker") and e["run"] and not e.get("error"):
                try:
                    e["rss_kib"] = e["worker"].ask(op="rss", bundle=e["bundle"], id="rss",
                                                   runs=RSS_RUNS)["rss_kib"]
                except Failure as ex:
                    e["error"] = str(ex)
        if not floor.get("error"):
            floor["version"] = "util-linux " + version_of(shutil.which("unshare"))
            floor["rss_kib"] = peak_rss(lambda i: floor_argv(rootfs), os.path.join(work, "floor.err"),
                                        RSS_RUNS)
        sc = seccomp_loop(ents, args.n, work) if large else None
        pol = policy_loop(ents, args.n)
        failed = any(a.get("error") for a in ents + [floor] + (sc or [])) or bool(pol and pol.get("error"))
        print()
        report(ents, floor, sc, meta, pol)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"meta": meta, "runtimes": [{k: v for k, v in e.items() if "worker" not in k}
                                                      for e in ents + [floor]],
                           "seccomp": [{"name": a["name"], "t": a["t"]} for a in sc or []],
                           "policy": pol}, f)
    finally:
        try:
            for e in ents:
                for w in ("worker", "sc_worker", "pol_worker"):
                    if e.get(w):
                        e[w].close()
        finally:
            remove_cgroups(base, keep)
        if args.workdir:
            for entry in os.listdir(work):
                p = os.path.join(work, entry)
                shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else os.unlink(p)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="run the whole benchmark")
    b.add_argument("sbxrun", help="sbxrun binary")
    b.add_argument("-n", type=int, default=100, help="runs per measurement and repeat (default 100)")
    b.add_argument("--repeat", type=int, default=3, help="repeats of the whole benchmark (default 3)")
    b.add_argument("--runtimes", default="sbxrun,crun,runc")
    b.add_argument("--seccomp", default="none", metavar="none|spec|FILE",
                   help="main config: no linux.seccomp (default), the profile `spec` writes, "
                        "or a linux.seccomp object read from FILE")
    b.add_argument("--no-seccomp-cache", action="store_true",
                   help="skip the seccomp section (large profile, sbxrun cold vs warm cache)")
    b.add_argument("--on-disk", action="store_true",
                   help="bundles and state roots in /var/tmp instead of a private tmpfs")
    b.add_argument("--json", metavar="FILE", help="also write the raw samples to FILE")
    b.add_argument("--no-policy", action="store_true",
                   help="skip the paired runs with and without an egress policy")
    b.add_argument("--workdir", help=argparse.SUPPRESS)
    w = sub.add_parser("worker", help="(internal) drive one runtime")
    w.add_argument("--name", required=True)
    w.add_argument("--binary", required=True)
    w.add_argument("--root", required=True)
    args = ap.parse_args()
    if args.cmd == "worker":
        return worker(args)
    if args.n < 1 or args.repeat < 1:
        ap.error("-n and --repeat must be positive")
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
