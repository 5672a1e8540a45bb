"""The soak's CI form (scripts/soak.py --quick): for ~20 s, four readers
(a tight open/read/close loop of the documents being saved, grep -r, find
-exec cat, ls -lR) and four writers (a managed policy saved in place, one
saved by rename-over, a role's tags.json, an inline role policy) on one
mount of the session's moto_server. Every read must be a whole version of
its document and no read may fail; every save must land (IAM ends with each
writer's last successful save). Strict, with a 2 s cache TTL: no read that
starts after a save may show an older version (the cache expires ten times
under the load, so a fetch or whole-account read begun before a save and
cached over it shows), and fstat's size must be the bytes read, unless a
later in-place save explains it. The script prints its table; it is in the
assertion message on failure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from iamfs_harness import REPO, base_env

pytestmark = [pytest.mark.fresh_mount, pytest.mark.mutates_iam]

SOAK = REPO / "scripts" / "soak.py"


def test_soak_quick(iamfs_bin, moto, account, tmp_path):
    # `account` seeds the session's sample and bulk account first, so that
    # the tree walkers have ~120 roles and policies to walk besides the
    # soak's own documents. The soak creates only soak-* entities and
    # deletes them at the end.
    out = tmp_path / "soak.json"
    cmd = [sys.executable, str(SOAK), "--quick", "--binary", str(iamfs_bin),
           "--endpoint-url", moto.url, "--json", str(out), "--strict",
           "--iamfs-arg=--cache-ttl=2"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=150,
                           env=base_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"soak.py --quick did not finish in 150 s (a hang in the filesystem?)\n"
                    f"{e.stdout}\n{e.stderr}")
    print(p.stdout)  # the table, shown with -s
    report = f"{' '.join(cmd)}\nexit {p.returncode}\n{p.stdout}\nstderr:\n{p.stderr[-4000:]}"
    assert p.returncode in (0, 1) and out.exists(), f"the soak itself failed\n{report}"
    res = json.loads(out.read_text())
    t = res["totals"]
    assert t["saves"] > 0 and t["documents_checked"] > 0, f"nothing was soaked\n{report}"
    assert (t["read_errors"], t["write_errors"], t["torn_reads"], t["lost_saves"],
            t["crashes"]) == (0, 0, 0, 0, 0), (
        f"read errors {t['read_errors']}, write errors {t['write_errors']}, torn reads "
        f"{t['torn_reads']}, lost saves {t['lost_saves']}, crashes {t['crashes']} "
        f"(all must be 0)\n{report}")
    assert (t["stale_reads"], t["stale_sizes"]) == (0, 0), (
        f"stale reads {t['stale_reads']}, stale sizes {t['stale_sizes']} (both must be 0)\n{report}")
    assert p.returncode == 0, report
    assert not res.get("cleanup_failures"), f"soak-* entities left in IAM\n{report}"
