"""stat: sizes equal what cat returns; modes, owner, mtimes as the contract
says. Driven by find, stat and cat."""

import os
import re

import pytest

from conftest import EDGE_POLICY
from iamfs_harness import cat_bytes, ok, policy_by_name

pytestmark = pytest.mark.shared_mount

# (regex on the path relative to the mount, octal mode)
MODES = [
    (r"users/[^/]+/user\.json", "444"),
    (r"users/[^/]+/access-keys\.json", "444"),
    (r"users/[^/]+/(mfa-devices|login-profile)\.json", "444"),
    (r"roles/[^/]+/settings\.json", "644"),
    (r"(users|groups|roles)/[^/]+/policies/[^/]+\.json", "644"),
    (r"(users|roles)/[^/]+/tags\.json", "644"),
    (r"groups/[^/]+/group\.json", "444"),
    (r"roles/[^/]+/role\.json", "444"),
    (r"roles/[^/]+/trust-policy\.json", "644"),
    (r"roles/[^/]+/(credentials|env)", "400"),
    (r"policies/[^/]+\.json", "644"),
    (r"aws-policies/[^/]+\.json", "444"),
]


def expected_mode(rel: str) -> str:
    for rx, mode in MODES:
        if re.fullmatch(rx, rel):
            return mode
    raise KeyError(rel)


def entries(mnt, rel: str):
    """(relative path, type, mode, size, uid, gid) for everything under rel,
    not following symlinks, via find + stat."""
    out = ok(["find", mnt.p(rel), "-printf", "%P\\0"])
    paths = [rel] + [f"{rel}/{p}" for p in out.split("\0") if p]
    stat_out = ok(["stat", "--printf", "%F\\t%a\\t%s\\t%u\\t%g\\t%Y\\n",
                   *[mnt.p(p) for p in paths]])
    rows = []
    for p, line in zip(paths, stat_out.splitlines()):
        ftype, mode, size, uid, gid, mtime = line.split("\t")
        rows.append((p, ftype, mode, int(size), int(uid), int(gid), int(mtime)))
    assert len(rows) == len(paths)
    return rows


TREES = ["users/user1", "roles/marketingadminrole", "groups/developers"]


@pytest.mark.parametrize("tree", TREES)
def test_size_equals_cat_length(mnt, tree):
    checked = 0
    for rel, ftype, _mode, size, *_ in entries(mnt, tree):
        if not ftype.startswith("regular") or rel.endswith(("/credentials", "/env")):
            continue
        data = cat_bytes(mnt.p(rel))
        assert size == len(data), f"{rel}: stat size {size}, cat returned {len(data)} bytes"
        checked += 1
    assert checked >= 2


def test_policies_size_equals_cat_length(mnt):
    names = ["s3-read-reports.json", "deploy-app.json", "billing-view.json",
             f"{EDGE_POLICY}.json", "bulk-policy-050.json"]
    for n in names:
        size = int(ok(["stat", "-c", "%s", mnt.p(f"policies/{n}")]))
        assert size == len(cat_bytes(mnt.p(f"policies/{n}"))), n
    for n in ["ReadOnlyAccess.json", "AmazonS3ReadOnlyAccess.json"]:
        size = int(ok(["stat", "-c", "%s", mnt.p(f"aws-policies/{n}")]))
        assert size == len(cat_bytes(mnt.p(f"aws-policies/{n}"))), n


def test_credential_files_size(mnt):
    """credentials/env follow the same rule: stat's size is what a read
    returns, before and after the first read. Tools rely on it: bash's
    `source FILE` reads exactly st_size bytes, so with size 0 `source env`
    silently sets nothing (see test_keys_tags::test_source_env)."""
    for f in ("credentials", "env"):
        path = mnt.p(f"roles/bulk-role-003/{f}")  # a role no other test reads
        size_before = int(ok(["stat", "-c", "%s", path]))
        data = cat_bytes(path)
        size_after = int(ok(["stat", "-c", "%s", path]))
        assert data
        assert (size_before, size_after) == (len(data), len(data)), (
            f"{f}: stat size {size_before} before reading, {size_after} after, "
            f"cat returned {len(data)} bytes")


@pytest.mark.parametrize("tree", TREES)
def test_modes_and_owner(mnt, tree):
    uid, gid = os.getuid(), os.getgid()
    for rel, ftype, mode, _size, fuid, fgid, _ in entries(mnt, tree):
        assert (fuid, fgid) == (uid, gid), f"{rel}: owner {fuid}:{fgid}, mounted by {uid}:{gid}"
        if ftype == "directory":
            assert mode == "755", f"{rel}: dir mode {mode}"
        elif ftype.startswith("regular"):  # "regular file" / "regular empty file"
            assert mode == expected_mode(rel), f"{rel}: mode {mode}, want {expected_mode(rel)}"
        else:
            assert ftype == "symbolic link", f"{rel}: unexpected {ftype}"


def test_top_level_modes(mnt):
    for d in ("", "users", "groups", "roles", "policies", "aws-policies", "policy-versions",
              "account", "instance-profiles", ".iamfs"):
        mode, uid = ok(["stat", "-c", "%a %u", mnt.p(d)]).split()
        assert mode == "755", f"/{d}: {mode}"
        assert int(uid) == os.getuid()
    for rel in ("policies/s3-read-reports.json", "aws-policies/ReadOnlyAccess.json"):
        mode, uid = ok(["stat", "-c", "%a %u", mnt.p(rel)]).split()
        assert mode == expected_mode(rel), rel
        assert int(uid) == os.getuid()


def test_role_mtime_is_create_date(mnt, iam):
    created = iam.get_role(RoleName="marketingadminrole")["Role"]["CreateDate"].timestamp()
    for rel in ("roles/marketingadminrole", "roles/marketingadminrole/role.json"):
        mtime = float(ok(["stat", "-c", "%.9Y", mnt.p(rel)]))
        assert abs(mtime - created) < 1.0, f"{rel}: mtime {mtime}, CreateDate {created}"


def test_user_and_group_mtime_is_create_date(mnt, iam):
    for rel, created in (
        ("users/user1", iam.get_user(UserName="user1")["User"]["CreateDate"]),
        ("groups/developers", iam.get_group(GroupName="developers")["Group"]["CreateDate"]),
    ):
        mtime = float(ok(["stat", "-c", "%.9Y", mnt.p(rel)]))
        assert abs(mtime - created.timestamp()) < 1.0, rel


def test_managed_policy_mtime_is_update_date(mnt, iam):
    for name in ("s3-read-reports", "billing-view"):
        updated = policy_by_name(iam, name)["UpdateDate"].timestamp()
        mtime = float(ok(["stat", "-c", "%.9Y", mnt.p(f"policies/{name}.json")]))
        assert abs(mtime - updated) < 1.0, name
    updated = policy_by_name(iam, "ReadOnlyAccess", scope="AWS")["UpdateDate"].timestamp()
    mtime = float(ok(["stat", "-c", "%.9Y", mnt.p("aws-policies/ReadOnlyAccess.json")]))
    assert abs(mtime - updated) < 1.0
