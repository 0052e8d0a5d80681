#!/usr/bin/python3
"""Start-up benchmark: sbxrun vs crun vs runc (driven by bench.sh).

For each runtime, from the same busybox bundle running /bin/true:
  * N sequential `run`: wall time per run (median, p90);
  * peak RSS of `run`: the largest `/usr/bin/time -f %M` over min(N, 10)
    extra runs (the runtime process and the children it waited for).  Not
    taken from our own wait4: a child spawned by this Python process carries
    the interpreter's RSS high-water mark across exec;
  * N sequential create / start / delete, each phase timed on its own (the
    wait for the container to stop, polled with `state`, is not timed);
and the floor: `unshare --fork --pid --mount --uts --ipc --net --mount-proc
chroot ROOTFS /bin/true`, the namespaces without any runtime.  Prints a
Markdown table.

Notes on fairness:
  * every runtime gets the same config.json (made by `sbxrun spec`, or `runc
    spec` if that fails), except linux.cgroupsPath, which is a per-runtime
    path below the benchmark process's own cgroup;
  * ociVersion is set to 1.0.2 because crun 1.8 (Debian 12) rejects newer;
  * on a hybrid cgroup host crun refuses to run while cgroup v2 is mounted at
    /sys/fs/cgroup/unified, so its measurement loop (not each run) runs in a
    private mount namespace with a tmpfs over that directory;
  * 3 warm-up iterations per measurement are discarded.
"""

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

WARMUP = 3
HERE = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# timing


def spawn_wait(argv, errpath):
    """Run ARGV with stdin/stdout on /dev/null and stderr to ERRPATH.
    Returns (exit status, wall seconds, ru_maxrss KiB)."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, errpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    _, status, ru = os.wait4(pid, 0)
    dt = time.perf_counter() - t0
    return os.waitstatus_to_exitcode(status), dt, ru.ru_maxrss


class Failure(Exception):
    pass


def peak_rss(argv, errpath, runs):
    """Largest maximum resident set size (KiB) reported by GNU time."""
    gnu_time = "/usr/bin/time"
    if not os.access(gnu_time, os.X_OK):
        return None
    out = errpath + ".rss"
    peak = 0
    for i in range(runs):
        checked([gnu_time, "-f", "%M", "-o", out, *argv(i)], errpath)
        with open(out) as f:
            peak = max(peak, int(f.read().split()[-1]))
    return peak


def checked(argv, errpath):
    rc, dt, rss = spawn_wait(argv, errpath)
    if rc != 0:
        with open(errpath, errors="replace") as f:
            err = f.read().strip()
        raise Failure(f"`{' '.join(argv)}` exited {rc}: {err[-800:]}")
    return dt, rss


def percentile(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def summary(values):
    return {"median": statistics.median(values), "p90": percentile(values, 90), "n": len(values)}


# ---------------------------------------------------------------------------
# one runtime (this may run inside a private mount namespace, for crun)


def measure(args):
    rt = [args.binary, "--root", args.root]
    err = os.path.join(args.root, "stderr")
    os.makedirs(args.root, exist_ok=True)
    result = {"name": args.name, "runs": None, "phases": None, "rss_kib": None}
    tag = f"bench-{args.name}-{os.getpid()}"

    def wait_stopped(cid):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            cp = subprocess.run([*rt, "state", cid], capture_output=True, text=True)
            if cp.returncode == 0 and json.loads(cp.stdout).get("status") == "stopped":
                return
            time.sleep(0.001)
        raise Failure(f"{args.name}: container {cid} did not stop within 10s")

    try:
        if args.run:
            times = []
            for i in range(WARMUP + args.n):
                dt, _ = checked([*rt, "run", "--bundle", args.bundle, f"{tag}-r{i}"], err)
                if i >= WARMUP:
                    times.append(dt)
            result["runs"] = summary(times)
            result["rss_kib"] = peak_rss(lambda i: [*rt, "run", "--bundle", args.bundle, f"{tag}-m{i}"],
                                         err, min(args.n, 10))
        if args.phases:
            phases = {"create": [], "start": [], "delete": []}
            for i in range(WARMUP + args.n):
                cid = f"{tag}-p{i}"
                t_create, _ = checked([*rt, "create", "--bundle", args.bundle, cid], err)
                t_start, _ = checked([*rt, "start", cid], err)
                wait_stopped(cid)
                t_delete, _ = checked([*rt, "delete", cid], err)
                if i >= WARMUP:
                    phases["create"].append(t_create)
                    phases["start"].append(t_start)
                    phases["delete"].append(t_delete)
            result["phases"] = {k: summary(v) for k, v in phases.items()}
    except Failure as e:
        result["error"] = str(e)
        cp = subprocess.run([*rt, "list", "-q"], capture_output=True, text=True)
        for cid in cp.stdout.split():
            subprocess.run([*rt, "delete", "--force", cid], capture_output=True)
    with open(args.out, "w") as f:
        json.dump(result, f)


def measure_floor(rootfs, n, errpath):
    unshare = shutil.which("unshare")
    argv = [unshare, "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "--mount-proc",
            "chroot", rootfs, "/bin/true"]
    times = []
    for i in range(WARMUP + n):
        dt, _ = checked(argv, errpath)
        if i >= WARMUP:
            times.append(dt)
    return {"name": "floor", "runs": summary(times), "phases": None,
            "rss_kib": peak_rss(lambda i: argv, errpath, min(n, 10))}


# ---------------------------------------------------------------------------
# set-up: rootfs, bundles, cgroups


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


def make_bundle(config, bundle, rootfs, cgroups_path):
    c = json.loads(json.dumps(config))
    c["ociVersion"] = "1.0.2"
    c["root"] = {"path": rootfs, "readonly": True}
    c["process"]["terminal"] = False
    c["process"]["args"] = ["/bin/true"]
    c.setdefault("linux", {})["cgroupsPath"] = cgroups_path
    os.makedirs(bundle)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(c, f, indent=2)


def has_command(binary, cmd):
    return subprocess.run([binary, cmd, "--help"], capture_output=True).returncode == 0


def version_of(binary):
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "?"
    return out.split("\n", 1)[0].split()[-1] if out.strip() else "?"


def hybrid_unified():
    """True when cgroup v2 is mounted at /sys/fs/cgroup/unified next to v1."""
    return any(mp == "/sys/fs/cgroup/unified" for mp, _ in cgroup_mounts())


# ---------------------------------------------------------------------------
# report


def ms(x):
    return f"{x * 1000:.1f}"


def report(results, n, spec_source):
    runc = next((r for r in results if r["name"] == "runc" and r.get("runs")), None)
    print(f"## Container start-up: {n} sequential runs of /bin/true (busybox bundle)\n")
    print(f"- host: {platform.node()}, kernel {platform.release()}, {os.cpu_count()} CPUs, "
          f"cgroups {'hybrid v1+v2' if hybrid_unified() else 'as mounted'}")
    print(f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    print(f"- config: {spec_source}, ociVersion 1.0.2, cgroupsPath below {own_cgroup()}")
    print("- wall time per command, medians of the phases; peak RSS: max of `/usr/bin/time -f %M` "
          f"over {min(n, 10)} runs (the runtime and the children it waited for)\n")
    cols = ["runtime", "version", "run median (ms)", "run p90 (ms)", "median vs runc",
            "p90 vs runc", "create (ms)", "start (ms)", "delete (ms)", "peak RSS (MiB)"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join(["---"] + ["--:"] * (len(cols) - 1)) + "|")
    for r in results:
        name = r["name"] if r["name"] != "floor" else "floor: unshare + chroot"
        row = [name, r.get("version", "")]
        runs = r.get("runs")
        if runs:
            row += [ms(runs["median"]), ms(runs["p90"])]
            if runc:
                row += [f"{runs['median'] / runc['runs']['median']:.2f}x",
                        f"{runs['p90'] / runc['runs']['p90']:.2f}x"]
            else:
                row += ["-", "-"]
        else:
            row += [r.get("note") or "-", "-", "-", "-"]
        ph = r.get("phases")
        row += [ms(ph[k]["median"]) for k in ("create", "start", "delete")] if ph else ["-"] * 3
        row.append(f"{r['rss_kib'] / 1024:.1f}" if r.get("rss_kib") else "-")
        print("| " + " | ".join(row) + " |")
    for r in results:
        if r.get("error"):
            print(f"\n**{r['name']} failed**: {r['error']}")


# ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="run the whole benchmark")
    b.add_argument("sbxrun", help="sbxrun binary")
    b.add_argument("-n", type=int, default=100, help="runs per measurement (default 100)")
    b.add_argument("--runtimes", default="sbxrun,crun,runc")
    m = sub.add_parser("measure", help="(internal) measure one runtime")
    m.add_argument("--name", required=True)
    m.add_argument("--binary", required=True)
    m.add_argument("--root", required=True)
    m.add_argument("--bundle", required=True)
    m.add_argument("-n", type=int, required=True)
    m.add_argument("--run", action="store_true")
    m.add_argument("--phases", action="store_true")
    m.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.cmd == "measure":
        return measure(args)

    if os.geteuid() != 0:
        sys.exit("bench: run as root (containers need it)")
    if not os.path.exists("/bin/busybox"):
        sys.exit("bench: /bin/busybox missing (apt-get install busybox-static)")
    sbxrun = os.path.abspath(args.sbxrun)
    work = tempfile.mkdtemp(prefix="sbxrun-bench-")
    base = f"{own_cgroup().rstrip('/')}/sbxbench-{os.getpid()}"
    keep = existing_ancestors(base)
    failed = False
    try:
        rootfs = os.path.join(work, "rootfs")
        make_rootfs(rootfs)
        config, spec_source = base_config(sbxrun if os.access(sbxrun, os.X_OK) else None, work)
        results = []
        for name in args.runtimes.split(","):
            binary = sbxrun if name == "sbxrun" else shutil.which(name)
            r = {"name": name, "version": version_of(binary) if binary else ""}
            results.append(r)
            if not binary or not os.access(binary, os.X_OK):
                r["note"] = "not installed"
                log(f"{name}: not installed, skipped")
                continue
            do_run = has_command(binary, "run")
            do_phases = all(has_command(binary, c) for c in ("create", "start", "state", "delete"))
            if not do_run:
                r["note"] = "run not implemented"
                print(f"{name}: run not implemented", flush=True)
            if not do_run and not do_phases:
                continue
            bundle = os.path.join(work, f"bundle-{name}")
            make_bundle(config, bundle, rootfs, f"{base}/{name}")
            out = os.path.join(work, f"{name}.json")
            cmd = [sys.executable, os.path.abspath(__file__), "measure", "--name", name,
                   "--binary", binary, "--root", os.path.join(work, f"state-{name}"),
                   "--bundle", bundle, "-n", str(args.n), "--out", out]
            cmd += ["--run"] if do_run else []
            cmd += ["--phases"] if do_phases else []
            if name == "crun" and hybrid_unified():
                # private mount namespace: the tmpfs never reaches the host's
                cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       'mount -t tmpfs none /sys/fs/cgroup/unified && exec "$@"', "sh", *cmd]
            log(f"{name}: {args.n} x run, {args.n} x create/start/delete ...")
            subprocess.run(cmd, check=True)
            with open(out) as f:
                r.update(json.load(f))
            if r.get("error"):
                failed = True
                if not r.get("runs"):
                    r["note"] = r.get("note") or "failed (below)"
        log(f"floor: {args.n} x unshare + chroot ...")
        try:
            floor = measure_floor(rootfs, args.n, os.path.join(work, "floor.err"))
            floor["version"] = "util-linux " + version_of(shutil.which("unshare"))
            floor["note"] = None
        except Failure as e:
            floor = {"name": "floor", "error": str(e)}
            failed = True
        results.append(floor)
        print()
        report(results, args.n, spec_source)
    finally:
        remove_cgroups(base, keep)
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
