#!/usr/bin/env python3
"""parallel.py - N container lifecycles at once: sbxrun vs runc vs crun.

    sudo tests/bench/parallel.py SBXRUN_BINARY [-n 50] [-r 7] [--runtimes sbxrun,runc,crun]

Each round starts N `run` of /bin/true (create, start, wait, delete) at the
same moment, one state root per runtime and one cgroup per container below
our own cgroup, and times until the last has exited.  The runtimes take
turns in a shuffled order each round (R rounds, after one warm-up round);
printed: the median and range of the wall time per runtime, the median of
the per-round ratios sbxrun/other, and how many runs failed.  The same
config (`sbxrun spec`, as tests/bench/bench.py makes it) for every runtime,
on a private tmpfs.  Issue 16's bar: sbxrun <= 0.7 of runc's wall time.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the set-up helpers: rootfs, config, cgroups)


def one_round(binary, root, bundles, tag):
    """Start len(bundles) `run`s at once; the wall time and the failures."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen([binary, "--root", root, "run", "--bundle", b, f"{tag}-{i}"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i, b in enumerate(bundles)]
    errors = []
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            errors.append(err.decode(errors="replace").strip())
    return time.perf_counter() - t0, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sbxrun")
    ap.add_argument("-n", type=int, default=50, help="lifecycles at once (default 50)")
    ap.add_argument("-r", "--rounds", type=int, default=7, help="timed rounds per runtime (default 7)")
    ap.add_argument("--runtimes", default="sbxrun,runc,crun")
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("parallel: run as root")
    if not args.workdir:
        # a private mount namespace with a tmpfs on the work directory
        work = tempfile.mkdtemp(prefix="sbxrun-par-")
        try:
            cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mount -t tmpfs -o mode=0700 sbxrun-par "$1" && shift && exec "$@"', "sh", work,
                   sys.executable, os.path.abspath(__file__), *sys.argv[1:], "--workdir", work]
            return subprocess.run(cmd).returncode
        finally:
            os.rmdir(work)
    work = args.workdir
    base = f"{bench.own_cgroup().rstrip('/')}/sbxpar-{os.getpid()}"
    keep = bench.existing_ancestors(base)
    rootfs = os.path.join(work, "rootfs")
    bench.make_rootfs(rootfs)
    os.makedirs(os.path.join(work, "bin"))
    sbxrun = os.path.join(work, "bin", "sbxrun")
    shutil.copy2(os.path.abspath(args.sbxrun), sbxrun)  # a rebuild must not change it
    config, _ = bench.base_config(sbxrun, work)
    ents = []
    for name in args.runtimes.split(","):
        binary = sbxrun if name == "sbxrun" else shutil.which(name)
        if not binary:
            print(f"{name}: not installed, skipped", file=sys.stderr)
            continue
        bundles = []
        for i in range(args.n):
            b = os.path.join(work, f"b-{name}-{i}")
            bench.make_bundle(config, b, rootfs, f"{base}/{name}-{i}", None)
            bundles.append(b)
        root = os.path.join(work, f"state-{name}")
        os.makedirs(root)
        ents.append({"name": name, "bin": binary, "root": root, "bundles": bundles, "t": [], "failed": 0,
                     "first_error": None})
    load_before = bench.loadavg()
    try:
        for rnd in range(args.rounds + 1):
            order = list(ents)
            random.Random(rnd).shuffle(order)
            for e in order:
                t, errors = one_round(e["bin"], e["root"], e["bundles"], f"r{rnd}")
                if rnd == 0:
                    continue  # warm-up
                e["t"].append(t)
                e["failed"] += len(errors)
                e["first_error"] = e["first_error"] or (errors[0] if errors else None)
            print(f"round {rnd}/{args.rounds}: " + ", ".join(f"{e['name']} {e['t'][-1] * 1000:.0f} ms"
                                                              for e in ents if e["t"] and rnd), file=sys.stderr)
    finally:
        for e in ents:
            for i in range(args.n):
                bench.remove_cgroups(f"{base}/{e['name']}-{i}", keep)
        bench.remove_cgroups(base, keep)
    print(f"## {args.n} parallel `run` of /bin/true, {args.rounds} rounds (+1 warm-up), "
          f"load {load_before} before, {bench.loadavg()} after\n")
    print("| runtime | wall median (ms) | range (ms) | failed runs |")
    print("|---|--:|--:|--:|")
    for e in ents:
        print(f"| {e['name']} | {statistics.median(e['t']) * 1000:.0f} | "
              f"{min(e['t']) * 1000:.0f}–{max(e['t']) * 1000:.0f} | {e['failed']} |")
    sbx = next((e for e in ents if e["name"] == "sbxrun"), None)
    if sbx:
        print()
        for e in ents:
            if e is not sbx:
                r = statistics.median(a / b for a, b in zip(sbx["t"], e["t"]))
                print(f"- sbxrun / {e['name']}: {r:.2f} (median of the per-round ratios)")
    for e in ents:
        if e["first_error"]:
            print(f"- {e['name']}: first failure: {e['first_error'][:300]}")
    return 1 if any(e["failed"] for e in ents) else 0


if __name__ == "__main__":
    sys.exit(main())
