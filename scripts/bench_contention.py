#!/usr/bin/env python3
"""Busy polling under CPU contention: warm `grep -r roles/` with and without
`--busy-poll`, on an idle machine, beside CPU-bound processes, and with iamfs
and grep pinned to one CPU.

    cargo build --release
    .venv/bin/python scripts/bench_contention.py                  # own moto_server, default account
    .venv/bin/python scripts/bench_contention.py --endpoint-url http://127.0.0.1:PORT

Busy polling saves the daemon's wakeup per request while a CPU would
otherwise idle, and costs CPU time that others may need; this prints both
sides (median seconds per warm grep, and the ratio polling / not polling).
The CPU-bound processes are `sh -c 'while :; do :; done'`, killed at the end.
Pinned to one CPU, iamfs turns busy polling off by itself: that row compares
two identical mounts and shows how noisy the machine is.
Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

import bench as B  # noqa: E402  (moto, seeding, mounts, timing)

HOG = ["sh", "-c", "while :; do :; done"]


def warm_mount(binary: Path, work: Path, url: str, args: list[str], pin: str | None):
    """A mount whose kernel and daemon caches hold roles/ (cache TTL an hour)."""
    m = B.BenchMount(binary, work, url, args=["--cache-ttl", "3600", *args])
    if pin is not None:     # the daemon inherits the affinity of its starter
        m.cmd = ["taskset", "-c", pin, *m.cmd]
    m.start()
    for _ in range(2):      # the second run is answered by the kernel
        B.timed([*B.GREP, "roles/"], m.path)
        time.sleep(1.2)     # listings first answered with a 1 s stand-in date
    return m


def grep_time(m, pin: str | None) -> float:
    cmd = [*B.GREP, "roles/"]
    if pin is not None:
        cmd = ["taskset", "-c", pin, *cmd]
    return B.timed(cmd, m.path)[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=str(REPO / "target" / "release" / "iamfs"))
    ap.add_argument("--endpoint-url", help="an already running loopback moto_server "
                    "(what is missing of the bench account is seeded)")
    ap.add_argument("--runs", type=int, default=7, help="warm greps per cell (median)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    B.prepare(ap, args)

    binary = Path(args.binary).resolve()
    work = Path(tempfile.mkdtemp(prefix="iamfs-contention."))
    ncpu = os.cpu_count() or 1
    moto = None
    results: dict = {"binary": str(binary), "nproc": ncpu, "runs": args.runs, "cells": []}
    try:
        if args.endpoint_url:
            url = args.endpoint_url
        else:
            moto = B.Moto(work)
            url = moto.url
        B.log(f"seeding the default account into {url}")
        B.seed_account(url, **B.DEFAULT)
        conditions = [("idle", 0, None), ("1 CPU-bound process", 1, None),
                      (f"{ncpu} CPU-bound processes", ncpu, None),
                      ("pinned to CPU 0 (polling off: noise check)", 0, "0")]
        for name, hogs, pin in conditions:
            # Both mounts side by side, their runs interleaved, so that drift
            # in the machine's speed hits both alike.
            mounts = {"busy_poll": warm_mount(binary, work, url, [], pin),
                      "no_busy_poll": warm_mount(binary, work, url, ["--busy-poll", "0"], pin)}
            times: dict = {label: [] for label in mounts}
            procs = [subprocess.Popen(HOG) for _ in range(hogs)]
            try:
                time.sleep(0.3)
                for _ in range(args.runs):
                    for label, m in mounts.items():
                        times[label].append(grep_time(m, pin))
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
                for m in mounts.values():
                    m.unmount()
            cell = {"condition": name}
            for label, ts in times.items():
                cell[label] = {"median_s": round(statistics.median(ts), 4),
                               "runs_s": [round(t, 4) for t in ts]}
            cell["ratio"] = round(cell["busy_poll"]["median_s"]
                                  / cell["no_busy_poll"]["median_s"], 2)
            B.log(f"{name}: {cell['busy_poll']['median_s'] * 1000:.1f} ms against "
                  f"{cell['no_busy_poll']['median_s'] * 1000:.1f} ms")
            results["cells"].append(cell)
    finally:
        for m in list(B._mounts):
            m.unmount()
        if moto is not None:
            moto.stop()

    print(f"{'warm grep -r roles/ (median of ' + str(args.runs) + ')':<40}"
          f"{'busy polling':>14}{'--busy-poll 0':>15}{'ratio':>8}")
    for c in results["cells"]:
        print(f"{c['condition']:<40}{c['busy_poll']['median_s'] * 1000:>11.1f} ms"
              f"{c['no_busy_poll']['median_s'] * 1000:>12.1f} ms{c['ratio']:>7.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
