#!/usr/bin/python3
"""snapshot.py - filesystem snapshot benchmark (docs/performance.md).

    sudo tests/bench/snapshot.py SBXRUN [-n N] [--files F] [--mb M] [--also SBXRUN2] [--no-fork]

Builds an overlay container whose upper dir holds a change set (F small
files of 1-64 KiB in 50 directories, a hard link, a symlink, a whiteout, one
M MiB file of real data and a 100 MiB sparse file), then times, N times each,
interleaved:
  - `sbxrun snapshot create ID NAME` (the copy plus the manifest, synced
    before it is published; the container is stopped) against
    `cp -a --reflink=auto UPPER DEST` of the same directory, and against
    `cp -a --reflink=auto UPPER DEST && sync -f DEST` (the same copy made
    durable, the fair yardstick for a snapshot that survives a crash);
  - with --also, the snapshot create of a second sbxrun binary (e.g. the
    build before a change), in the same rounds;
  - forking: `sbxrun create --from-snapshot ID:NAME` + `delete` against a
    plain `create` + `delete` of the same bundle.
Each round starts after a `sync` and runs the copies in a rotated order.
Wall time and CPU time (user+sys of the command and its children) are
recorded; the load average is printed at the start and the end.  Prints a
Markdown table of medians on stdout; progress on stderr."""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BUSYBOX = "/bin/busybox"


def run(argv, **kw):
    # Output through a file: a created container's init keeps a pipe open.
    with tempfile.TemporaryFile() as out:
        cp = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=out, stderr=out, **kw)
        out.seek(0)
        cp.stdout = cp.stderr = out.read().decode(errors="replace")
    if cp.returncode != 0:
        sys.exit(f"snapshot.py: {' '.join(map(str, argv))}: exit {cp.returncode}: {cp.stderr.strip()}")
    return cp


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(argv):
    """(wall, user+sys CPU) seconds of ARGV and its children."""
    c, t = children_cpu(), time.perf_counter()
    run(argv)
    return time.perf_counter() - t, children_cpu() - c


def loadavg():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_bundle(sbx, work):
    b = work / "bundle"
    (b / "rootfs/bin").mkdir(parents=True)
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        (b / "rootfs" / d).mkdir()
    shutil.copy2(BUSYBOX, b / "rootfs/bin/busybox")
    for a in ("sh", "true", "rm", "mkdir"):
        os.symlink("busybox", b / "rootfs/bin" / a)
    (b / "rootfs/etc/passwd").write_text("root:x:0:0::/:/bin/sh\n")
    run([sbx, "spec", "--bundle", b])
    c = json.loads((b / "config.json").read_text())
    c["process"]["terminal"] = False
    c["process"]["args"] = ["rm", "/etc/passwd"]
    c["root"]["readonly"] = False
    c["annotations"] = {"org.sbxrun.rootfs.overlay": "true"}
    (b / "config.json").write_text(json.dumps(c))
    return b


def own_cgroup():
    """The deepest path in /proc/self/cgroup: containers go below it."""
    with open("/proc/self/cgroup") as f:
        paths = [l.rstrip("\n").split(":", 2)[2] for l in f]
    return max(paths, key=lambda p: len(p.rstrip("/").split("/")))


def config_for(b, cid):
    """--config for container CID: its own cgroup under ours."""
    c = json.loads((b / "config.json").read_text())
    c.setdefault("linux", {})["cgroupsPath"] = f"{own_cgroup().rstrip('/')}/sbx-bench-{os.getpid()}-{cid}"
    p = b / f"config-{cid}.json"
    p.write_text(json.dumps(c))
    return p


def fill(upper, files, mb):
    rnd = os.urandom(64 << 10)
    for i in range(files):
        d = upper / f"d{i % 50}"
        d.mkdir(exist_ok=True)
        (d / f"f{i}").write_bytes(rnd[: 1024 * (1 + i % 64)])
    os.link(upper / "d0/f0", upper / "d0/link")
    os.symlink("d0/f0", upper / "sym")
    with open(upper / "big", "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))
    with open(upper / "sparse", "wb") as f:
        f.truncate(100 << 20)
        f.seek(50 << 20)
        f.write(b"x" * 4096)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sbxrun")
    ap.add_argument("-n", type=int, default=7)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--also", help="a second sbxrun whose snapshot create is timed in the same rounds")
    ap.add_argument("--no-fork", action="store_true", help="skip the fork/create timings")
    a = ap.parse_args()
    sbx = os.path.abspath(a.sbxrun)
    work = tempfile.mkdtemp(prefix="sbx-bench-snap-", dir="/var/tmp")
    from pathlib import Path

    work = Path(work)
    root = work / "root"
    g = [sbx, "--root", root]
    load0 = loadavg()
    print(f"load average at start: {load0}", file=sys.stderr)
    try:
        b = make_bundle(sbx, work)
        run([*g, "run", "--keep", "--bundle", b, "--config", config_for(b, "src"), "src"])
        upper = root / "src/upper"
        fill(upper, a.files, a.mb)
        size = int(run(["du", "-sk", upper]).stdout.split()[0])
        copies = {
            "snap": lambda i: [*g, "snapshot", "create", "src", f"s{i}"],
            "cp": lambda i: ["cp", "-a", "--reflink=auto", upper, work / f"cp{i}"],
            "cpsync": lambda i: ["sh", "-c", 'cp -a --reflink=auto "$1" "$2" && sync -f "$2"', "sh",
                                 upper, work / f"cps{i}"],
        }
        if a.also:
            also = os.path.abspath(a.also)
            copies["also"] = lambda i: [also, "--root", root, "snapshot", "create", "src", f"a{i}"]
        wall = {k: [] for k in copies}
        cpu = {k: [] for k in copies}
        fork, plain = [], []
        keys = list(copies)
        for i in range(a.n):
            print(f"round {i + 1}/{a.n} (load {loadavg()})", file=sys.stderr)
            for k in keys[i % len(keys):] + keys[: i % len(keys)]:
                run(["sync"])
                w, c = timed(copies[k](i))
                wall[k].append(w)
                cpu[k].append(c)
            if not a.no_fork:
                fc, pc = config_for(b, f"fork{i}"), config_for(b, f"plain{i}")
                fork.append(timed([*g, "create", "--from-snapshot", "src:s0", "--bundle", b, "--config", fc,
                                   f"fork{i}"])[0])
                run([*g, "delete", "--force", f"fork{i}"])
                plain.append(timed([*g, "create", "--bundle", b, "--config", pc, f"plain{i}"])[0])
                run([*g, "delete", "--force", f"plain{i}"])
            if i > 0:
                run([*g, "snapshot", "delete", "src", f"s{i}"])
            if a.also:
                run([*g, "snapshot", "delete", "src", f"a{i}"])
            shutil.rmtree(work / f"cp{i}")
            shutil.rmtree(work / f"cps{i}")
        med = lambda v: statistics.median(v) * 1000
        mw = {k: med(v) for k, v in wall.items()}
        mc = {k: med(v) for k, v in cpu.items()}
        fs = run(["stat", "-f", "-c", "%T", work]).stdout.strip()
        print(f"Change set: {a.files} files in 50 dirs, {a.mb} MiB of data, a 100 MiB sparse file "
              f"({size // 1024} MiB allocated), on {fs}; medians of {a.n}; load average "
              f"{load0} at the start, {loadavg()} at the end, {os.cpu_count()} CPUs.\n")
        print("| operation | wall (ms) | ÷ cp | ÷ cp+sync | CPU user+sys (ms) | ÷ cp |")
        print("|---|---:|---:|---:|---:|---:|")
        rows = [("snap", "`sbxrun snapshot create` (overlay upper)")]
        if a.also:
            rows.append(("also", f"`{os.path.basename(a.also)} snapshot create` (--also)"))
        rows += [("cp", "`cp -a --reflink=auto` of the same dir"),
                 ("cpsync", "`cp -a --reflink=auto && sync -f`")]
        for k, label in rows:
            print(f"| {label} | {mw[k]:.0f} | {mw[k] / mw['cp']:.2f} | {mw[k] / mw['cpsync']:.2f} "
                  f"| {mc[k]:.0f} | {mc[k] / mc['cp']:.2f} |")
        if not a.no_fork:
            print()
            print("| operation | median (ms) | ratio |")
            print("|---|---:|---:|")
            print(f"| `sbxrun create --from-snapshot` (fork) | {med(fork):.1f} | {med(fork) / med(plain):.2f}x create |")
            print(f"| `sbxrun create` (same bundle, no snapshot) | {med(plain):.1f} | 1.00 |")
        print("\nraw wall (s): " + json.dumps({k: [round(x, 3) for x in v] for k, v in wall.items()}),
              file=sys.stderr)
    finally:
        for cid in subprocess.run([sbx, "--root", root, "list", "-q"], capture_output=True,
                                  text=True).stdout.split():
            subprocess.run([sbx, "--root", root, "delete", "--force", cid], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
