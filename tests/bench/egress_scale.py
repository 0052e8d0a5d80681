#!/usr/bin/python3
"""egress_scale.py - how long sbxrun takes to install big egress allowlists.

    sudo tests/bench/egress_scale.py SBXRUN_BINARY [-r REPEAT] [--only NAME] [--fifo]

For each list (10,000 host:port entries, 10,000 hosts, 10,000 IPv6 /48
ranges, 65,536 host:port entries ...), `create`s a container with that
list in org.sbxrun.net.allow REPEAT times (default 7), interleaved, and
reads the install time sbxrun --debug prints ("installed in T ms (C ms of
CPU": sets built, netlink batch sent and applied by the kernel, socket
closed; C is the runtime thread's CPU time, the kernel's work on the batch
included, less sensitive to other load; and the time it was runnable but
waited for a CPU, schedstat's run_delay: the other load's share), then
deletes it.  What is left of the wall time once CPU and run-queue waits
are taken out is time the install itself blocked ("blocked").
Prints a Markdown table of medians and ranges, with the load average.
Needs root and busybox.  Results: docs/performance.md."""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import own_cgroup  # noqa: E402


def lists():
    def host_port(n):  # non-adjacent, so nothing merges
        return [f"10.{100 + i // 32768}.{(i // 128) % 256}.{(i % 128) * 2}:443" for i in range(n)]

    return [
        ("10,000 × `10.x.y.z:443`", host_port(10000)),
        ("10,000 × `10.x.y.z`", [e.rsplit(":", 1)[0] for e in host_port(10000)]),
        ("10,000 × `[fd00::x:y]:443`", [f"[fd00::{i // 128:x}:{(i % 128) * 2:x}]:443" for i in range(10000)]),
        ("10,000 × `10.x.y.0/24`", [f"10.{i // 128}.{(i % 128) * 2}.0/24" for i in range(10000)]),
        ("10,000 × `[fd00:N::/48]`", [f"[fd00:{2 * i:x}::/48]" for i in range(10000)]),
        ("65,536 × `10.x.y.z:443`", host_port(65536)),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sbxrun")
    ap.add_argument("-r", "--repeat", type=int, default=7)
    ap.add_argument("--only", help="only the lists whose name contains this")
    ap.add_argument("--fifo", action="store_true",
                    help="run each create under SCHED_FIFO (chrt -f -R 1; its children are reset to the "
                         "normal policy): other load then cannot preempt the install, as on a quiet host")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("egress_scale.py: run as root")
    busybox = shutil.which("busybox")
    if not busybox:
        sys.exit("egress_scale.py: busybox not found")
    sbx = os.path.abspath(args.sbxrun)
    work = tempfile.mkdtemp(prefix="sbx-egress-scale-")
    root = os.path.join(work, "state")
    cg = f"{own_cgroup().rstrip('/')}/sbx-egress-scale-{os.getpid()}"
    try:
        rootfs = os.path.join(work, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"))
        for d in ("proc", "dev", "sys", "tmp"):
            os.makedirs(os.path.join(rootfs, d))
        shutil.copy2(busybox, os.path.join(rootfs, "bin/busybox"))
        os.symlink("busybox", os.path.join(rootfs, "bin/true"))
        subprocess.run([sbx, "spec", "--bundle", work], check=True)
        with open(os.path.join(work, "config.json")) as f:
            base = json.load(f)
        base["root"] = {"path": rootfs, "readonly": True}
        base["process"]["terminal"] = False
        base["process"]["args"] = ["/bin/true"]
        todo = [(name, ents) for name, ents in lists() if not args.only or args.only in name]
        bundles = []
        for i, (name, ents) in enumerate(todo):
            c = json.loads(json.dumps(base))
            c["annotations"] = {"org.sbxrun.net.allow": ",".join(ents), "org.sbxrun.net.dns": "none"}
            c["linux"]["cgroupsPath"] = f"{cg}/{i}"
            b = os.path.join(work, f"b{i}")
            os.makedirs(b)
            with open(os.path.join(b, "config.json"), "w") as f:
                json.dump(c, f)
            bundles.append(b)
        fifo = ["chrt", "-f", "-R", "1"] if args.fifo else []
        load0 = os.getloadavg()
        res = {name: [] for name, _ in todo}
        elems = {}
        for r in range(args.repeat):
            for i, (name, _) in enumerate(todo):
                cid = f"scale{r}-{i}"
                # stderr to a file: the created init keeps the runtime's
                # stdio open, so a pipe would never see its end
                with tempfile.TemporaryFile(mode="w+") as errf:
                    cp = subprocess.run(fifo + [sbx, "--debug", "--root", root, "create", "--bundle", bundles[i], cid],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
                    errf.seek(0)
                    err = errf.read()
                subprocess.run([sbx, "--root", root, "delete", "--force", cid], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                m = re.search(r"egress policy: (\d+) set elements, (\d+) bytes of netlink batch, "
                              r"installed in ([\d.]+) ms \(([\d.]+) ms of CPU, ([\d.]+) ms runnable waiting "
                              r"for a CPU, (\d+) voluntary", err)
                if cp.returncode != 0 or not m:
                    sys.exit(f"egress_scale.py: {name}: create failed:\n{err[-2000:]}")
                elems[name] = (int(m.group(1)), int(m.group(2)))
                res[name].append((float(m.group(3)), float(m.group(4)), float(m.group(5)), int(m.group(6))))
        load1 = os.getloadavg()
        print(f"Load average {load0[0]:.2f} before, {load1[0]:.2f} after; {args.repeat} creates each, "
              f"interleaved; `{' '.join(['egress_scale.py'] + sys.argv[2:])}`\n")
        print("| list | set elements | batch | installed in (median) | range | CPU (median) | "
              "waiting for a CPU (median) | blocked (median) |")
        print("| --- | --: | --: | --: | --: | --: | --: | --: |")
        for name, _ in todo:
            t = [r[0] for r in res[name]]
            cpu = [r[1] for r in res[name]]
            rq = [r[2] for r in res[name]]
            # neither running nor runnable: waits of the install's own
            blocked = [max(0.0, r[0] - r[1] - r[2]) for r in res[name]]
            n, b = elems[name]
            print(f"| {name} | {n:,} | {b / 1024:.0f} KiB | {statistics.median(t):.1f} ms | "
                  f"{min(t):.1f}–{max(t):.1f} ms | {statistics.median(cpu):.1f} ms | "
                  f"{statistics.median(rq):.1f} ms | {statistics.median(blocked):.1f} ms |")
    finally:
        if os.path.isdir(root):
            for cid in os.listdir(root):
                if not cid.startswith("."):
                    subprocess.run([sbx, "--root", root, "delete", "--force", cid], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
        for d in [p for p in (f"/sys/fs/cgroup/{c}{cg}" for c in os.listdir("/sys/fs/cgroup"))]:
            if os.path.isdir(d):
                for sub in os.listdir(d):
                    if os.path.isdir(os.path.join(d, sub)):
                        try:
                            os.rmdir(os.path.join(d, sub))
                        except OSError:
                            pass
                try:
                    os.rmdir(d)
                except OSError:
                    pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
