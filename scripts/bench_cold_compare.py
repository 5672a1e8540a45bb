#!/usr/bin/env python3
"""Cold listings and walks of two iamfs binaries side by side (bench.py
section 8 for each), their fresh mounts interleaved so that drift in the
machine or in moto_server hits both alike.

    .venv/bin/python scripts/bench_cold_compare.py --endpoint-url URL \\
        --before OLD/iamfs --after target/release/iamfs [--runs 5]

URL is a moto_server already seeded (bench.py --endpoint-url seeds one).
Each row prints the median time of `--runs` fresh mounts, the IAM calls,
the kernel's listing and lookup requests, and for the walks their floor:
the same walk again with the daemon's cache full and the kernel's caches
dropped (root only)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

ROWS = {
    "ls roles/": (["ls", "roles/"], (), False),
    "ls -l roles/": (["ls", "-l", "roles/"], (), False),
    "grep -r roles/ (read-write)": ([*bench.GREP, "roles/"], (), True),
    "grep -r roles/ (read-only)": ([*bench.GREP, "roles/"], ("--read-only",), True),
    "grep -r roles/ policies/ (read-write)": ([*bench.GREP, "roles/", "policies/"], (), False),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint-url", required=True)
    ap.add_argument("--before", required=True, type=Path)
    ap.add_argument("--after", required=True, type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    binaries = {"before": args.before.resolve(), "after": args.after.resolve()}
    work = Path(tempfile.mkdtemp(prefix="iamfs-cold-compare."))
    results: dict = {}
    for label, (cmd, mount_args, floor) in ROWS.items():
        for _ in range(args.runs):
            for which, binary in binaries.items():
                r = bench.cold_command(binary, work, args.endpoint_url, cmd, mount_args, floor)
                results.setdefault(label, {}).setdefault(which, []).append(r)
    for label, by in results.items():
        for which, runs in by.items():
            secs = statistics.median(r["seconds"] for r in runs)
            floors = [r["floor"]["seconds"] for r in runs if "floor" in r]
            floor = f"{statistics.median(floors):.3f} s" if floors else "-"
            sent = runs[-1]["kernel_requests"]
            print(f"{label:40} {which:6} {secs:.3f} s  floor {floor:8}  "
                  f"IAM calls {runs[-1]['calls']['total']:3}  lookup {sent.get('lookup', 0)}  "
                  f"readdir {sent.get('readdir', 0)}  readdirplus {sent.get('readdirplus', 0)}  "
                  f"read {sent.get('read', 0)}  runs {[r['seconds'] for r in runs]}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
