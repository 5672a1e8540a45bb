"""Symlinks: attached/, groups/ and members/ entries point where the
contract says, relative, and resolve inside the mount."""

import os

import pytest

from conftest import EDGE_POLICY, EDGE_ROLE
from iamfs_harness import cat_bytes, ls, ok, run

pytestmark = pytest.mark.shared_mount


def readlink(path) -> str:
    return ok(["readlink", path]).rstrip("\n")


@pytest.mark.parametrize("link,target", [
    ("users/user1/attached/s3-read-reports", "../../../policies/s3-read-reports.json"),
    ("groups/developers/attached/deploy-app", "../../../policies/deploy-app.json"),
    ("groups/marketing/attached/billing-view", "../../../policies/billing-view.json"),
    ("groups/marketing/attached/AmazonS3ReadOnlyAccess",
     "../../../aws-policies/AmazonS3ReadOnlyAccess.json"),
    ("roles/marketingadminrole/attached/billing-view", "../../../policies/billing-view.json"),
    ("roles/ec2-readonly-role/attached/ReadOnlyAccess", "../../../aws-policies/ReadOnlyAccess.json"),
    (f"roles/{EDGE_ROLE}/attached/{EDGE_POLICY}", f"../../../policies/{EDGE_POLICY}.json"),
    ("users/user1/groups/developers", "../../../groups/developers"),
    ("groups/developers/members/user1", "../../../users/user1"),
    ("groups/marketing/members/alice", "../../../users/alice"),
])
def test_readlink(mnt, link, target):
    assert ok(["stat", "-c", "%F", mnt.p(link)]).strip() == "symbolic link"
    assert readlink(mnt.p(link)) == target
    # resolves inside the mount
    real = ok(["readlink", "-e", mnt.p(link)]).rstrip("\n")
    assert real == os.path.normpath(os.path.join(os.path.dirname(mnt.p(link)), target))


@pytest.mark.parametrize("link,doc", [
    ("users/user1/attached/s3-read-reports", "policies/s3-read-reports.json"),
    ("roles/ec2-readonly-role/attached/ReadOnlyAccess", "aws-policies/ReadOnlyAccess.json"),
    ("groups/marketing/attached/AmazonS3ReadOnlyAccess", "aws-policies/AmazonS3ReadOnlyAccess.json"),
])
def test_cat_through_attached_link(mnt, link, doc):
    assert cat_bytes(mnt.p(link)) == cat_bytes(mnt.p(doc))


def test_ls_through_group_link(mnt):
    assert sorted(ls(mnt.p("users/user1/groups/developers/"), "-A")) == sorted(
        ["group.json", "policies", "attached", "members"])
    assert "user1" in ls(mnt.p("users/user1/groups/developers/members/"))


def test_ls_through_member_link(mnt):
    assert "user.json" in ls(mnt.p("groups/developers/members/user1/"))
    assert ok(["jq", "-r", ".UserName", mnt.p("groups/developers/members/user1/user.json")]
              ).strip() == "user1"


def test_ls_l_shows_links(mnt):
    out = ok(["ls", "-l", mnt.p("users/user1/attached")])
    assert "s3-read-reports -> ../../../policies/s3-read-reports.json" in out


def test_symlink_size_is_target_length(mnt):
    """As on any Linux filesystem, lstat's size of a symlink is its target's length."""
    link = mnt.p("users/user1/attached/s3-read-reports")
    size = int(ok(["stat", "-c", "%s", link]))
    assert size == len(readlink(link).encode())


def test_find_follows_nothing_by_default(mnt):
    p = run(["find", mnt.p("users/user1"), "-type", "l"])
    assert p.returncode == 0, p.stderr
    links = sorted(p.stdout.split())
    assert links == sorted([str(mnt.p("users/user1/attached/s3-read-reports")),
                            str(mnt.p("users/user1/groups/developers"))])
