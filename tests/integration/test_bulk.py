"""Whole-account reads cost O(pages), not one call per file: a cold
`grep -r` fills the cache from GetAccountAuthorizationDetails."""

import time

import pytest

from iamfs_harness import local_policies, role_names, run

pytestmark = pytest.mark.fresh_mount


def grep_r(m, pattern: str, folder: str, *flags: str):
    t0 = time.monotonic()
    p = run(["grep", "-r", *flags, pattern, folder], cwd=m.p(), timeout=240)
    return p, time.monotonic() - t0


def test_cold_grep_r_roles(make_mount, iam, account):
    n_roles = len(role_names(iam))
    m = make_mount()
    assert m.calls() == 0
    p, secs = grep_r(m, "AssumeRole", "roles/", "-l")
    st = m.status()
    errs = "\n".join(p.stderr.splitlines()[:10])
    assert st["api_calls"].get("GetAccountAuthorizationDetails", 0) >= 1, st["api_calls"]
    assert st["api_calls_total"] < n_roles, (
        f"cold grep -r over {n_roles} roles made {st['api_calls_total']} calls "
        f"in {secs:.1f}s: {st['api_calls']}")
    # every role's trust policy was read, and read right
    hits = {line.split("/")[1] for line in p.stdout.splitlines()
            if line.endswith("/trust-policy.json")}
    assert hits == set(role_names(iam)), f"missing: {sorted(set(role_names(iam)) - hits)[:10]}"
    assert p.returncode == 0 and p.stderr == "", f"grep exited {p.returncode}: {errs}"


def test_cold_grep_r_allow_roles(make_mount, iam, account):
    """The brief's own command, exit status included."""
    n_roles = len(role_names(iam))
    m = make_mount()
    p = run(["bash", "-c", "grep -r Allow roles/ >/dev/null"], cwd=m.p(), timeout=240)
    st = m.status()
    assert st["api_calls"].get("GetAccountAuthorizationDetails", 0) >= 1, st["api_calls"]
    assert st["api_calls_total"] < n_roles, st["api_calls"]
    assert p.returncode == 0, "\n".join(p.stderr.splitlines()[:10])


def test_cold_grep_r_policies(make_mount, iam, account):
    pols = local_policies(iam)
    m = make_mount()
    assert m.calls() == 0
    p, secs = grep_r(m, "Allow", "policies/", "-l")
    st = m.status()
    assert st["api_calls"].get("GetAccountAuthorizationDetails", 0) >= 1, st["api_calls"]
    assert st["api_calls_total"] < len(pols), (
        f"cold grep -r over {len(pols)} policies made {st['api_calls_total']} calls "
        f"in {secs:.1f}s: {st['api_calls']}")
    errs = "\n".join(p.stderr.splitlines()[:10])
    assert p.returncode == 0 and p.stderr == "", f"grep exited {p.returncode}: {errs}"
    listed = {line.split("/", 1)[1] for line in p.stdout.splitlines()}
    assert listed == {x["PolicyName"] + ".json" for x in pols}  # every seeded policy allows something
