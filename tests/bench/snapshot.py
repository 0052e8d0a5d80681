#!/usr/bin/python3
"""snapshot.py - filesystem snapshot benchmark (docs/performance.md).

    sudo tests/bench/snapshot.py SBXRUN [-n N] [--files F] [--mb M]

Builds an overlay container whose upper dir holds a change set (F small
files of 1-64 KiB in 50 directories, a hard link, a symlink, a whiteout, one
M MiB file of real data and a 100 MiB sparse file), then times, N times each,
interleaved:
  - `sbxrun snapshot create ID NAME` (the copy plus the manifest; the
    container is stopped) against `cp -a --reflink=auto UPPER DEST` of the
    same directory;
  - forking: `sbxrun create --from-snapshot ID:NAME` + `delete` against a
    plain `create` + `delete` of the same bundle.
Prints a Markdown table of medians on stdout; progress on stderr."""

import argparse
import json
import os
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


def timed(argv):
    t = time.perf_counter()
    run(argv)
    return time.perf_counter() - t


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
    a = ap.parse_args()
    sbx = os.path.abspath(a.sbxrun)
    work = tempfile.mkdtemp(prefix="sbx-bench-snap-", dir="/var/tmp")
    from pathlib import Path

    work = Path(work)
    root = work / "root"
    g = [sbx, "--root", root]
    try:
        b = make_bundle(sbx, work)
        run([*g, "run", "--keep", "--bundle", b, "--config", config_for(b, "src"), "src"])
        upper = root / "src/upper"
        fill(upper, a.files, a.mb)
        size = int(run(["du", "-sk", upper]).stdout.split()[0])
        snap, cp, fork, plain = [], [], [], []
        for i in range(a.n):
            print(f"round {i + 1}/{a.n}", file=sys.stderr)
            run(["sync"])
            snap.append(timed([*g, "snapshot", "create", "src", f"s{i}"]))
            run(["sync"])
            cp.append(timed(["cp", "-a", "--reflink=auto", upper, work / f"cp{i}"]))
            fc, pc = config_for(b, f"fork{i}"), config_for(b, f"plain{i}")
            fork.append(timed([*g, "create", "--from-snapshot", "src:s0", "--bundle", b, "--config", fc, f"fork{i}"]))
            run([*g, "delete", "--force", f"fork{i}"])
            plain.append(timed([*g, "create", "--bundle", b, "--config", pc, f"plain{i}"]))
            run([*g, "delete", "--force", f"plain{i}"])
            if i > 0:
                run([*g, "snapshot", "delete", "src", f"s{i}"])
            shutil.rmtree(work / f"cp{i}")
        med = {k: statistics.median(v) * 1000 for k, v in
               (("snap", snap), ("cp", cp), ("fork", fork), ("plain", plain))}
        fs = run(["stat", "-f", "-c", "%T", work]).stdout.strip()
        print(f"Change set: {a.files} files in 50 dirs, {a.mb} MiB of data, a 100 MiB sparse file "
              f"({size // 1024} MiB allocated), on {fs}; medians of {a.n}.\n")
        print("| operation | median (ms) | ratio |")
        print("|---|---:|---:|")
        print(f"| `sbxrun snapshot create` (overlay upper) | {med['snap']:.1f} | {med['snap'] / med['cp']:.2f}x cp |")
        print(f"| `cp -a --reflink=auto` of the same dir | {med['cp']:.1f} | 1.00 |")
        print(f"| `sbxrun create --from-snapshot` (fork) | {med['fork']:.1f} | {med['fork'] / med['plain']:.2f}x create |")
        print(f"| `sbxrun create` (same bundle, no snapshot) | {med['plain']:.1f} | 1.00 |")
    finally:
        for cid in subprocess.run([sbx, "--root", root, "list", "-q"], capture_output=True,
                                  text=True).stdout.split():
            subprocess.run([sbx, "--root", root, "delete", "--force", cid], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
