"""What the kernel keeps, and when it lets go.

iamfs lets the kernel keep entries, attributes, pages and listings for as
long as the cached IAM data they were made from stays fresh (see README,
Caching). These tests count the requests the kernel sends (.iamfs/status,
kernel_requests) to show that a warm scan is answered by the kernel, and check
with real tools that every change, made through the mount or outside it,
still shows when it should: at once for the mount's own changes, after
--cache-ttl or a refresh for IAM's."""

from __future__ import annotations

import json
import os
import time

import pytest

from write_helpers import *  # noqa: F401,F403

pytestmark = pytest.mark.fresh_mount


def kernel_requests(m) -> dict:
    return m.status()["kernel_requests"]


def grown(before: dict, after: dict) -> dict:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after
            if after.get(k, 0) != before.get(k, 0)}


def warm_up(argv):
    """Runs argv until the kernel holds everything: the first run fetches;
    folders whose listing was not fetched yet were answered with a
    stand-in date the kernel keeps for a second."""
    ok(argv)
    time.sleep(1.2)
    ok(argv)


def requests_of(m, argv, times: int = 5) -> dict:
    """The requests the kernel sent while argv ran `times` times, less those
    of reading status (give or take the kernel's own rounding: a status
    read's attributes may or may not be asked for again)."""
    a = kernel_requests(m)
    b = kernel_requests(m)
    for _ in range(times):
        ok(argv)
    c = kernel_requests(m)
    status_read = grown(a, b)
    return {k: v - status_read.get(k, 0) for k, v in grown(b, c).items()
            if v != status_read.get(k, 0)}


# What reading status itself may add beyond the baseline.
NOISE = 2


@pytest.fixture
def roles12(wiam):
    prefix = uniq("kc-")
    names = [f"{prefix}-{i:02d}" for i in range(12)]
    for n in names:
        wiam.create_role(RoleName=n, AssumeRolePolicyDocument=json.dumps(trust_doc()))
        wiam.put_role_policy(RoleName=n, PolicyName="inl",
                             PolicyDocument=json.dumps(identity_doc()))
    return names


def test_warm_ls_l_is_answered_by_the_kernel(make_wmount, roles12):
    m = make_wmount(args=["--cache-ttl", "300"])
    warm_up(["ls", "-l", m.p("roles/")])
    sent = requests_of(m, ["ls", "-l", m.p("roles/")])
    assert len(os.listdir(m.p("roles"))) >= 12
    # Not warm: 5 x 12 lookups or getattrs, and readdirs.
    assert sent.get("lookup", 0) <= NOISE and sent.get("getattr", 0) <= NOISE, sent
    assert "readdir" not in sent, sent


def test_warm_grep_opens_each_file_and_reads_no_page(make_wmount, roles12):
    m = make_wmount(args=["--cache-ttl", "300"])
    d = m.p(f"roles/{roles12[0]}")
    warm_up(["grep", "-r", "Allow", d])
    sent = requests_of(m, ["grep", "-r", "Allow", d])
    files = ok(["find", d, "-type", "f"]).split()
    dirs = ok(["find", d, "-mindepth", "1", "-type", "d"]).split()
    assert sent.get("open") == 5 * len(files), sent
    # None per file; a folder's attributes may be asked once more after the
    # stand-in date its first listing had (policies/, attached/, ...).
    assert sent.get("lookup", 0) <= NOISE, sent
    assert sent.get("getattr", 0) <= max(NOISE, len(dirs)), (sent, dirs)
    assert not {"readdir", "read", "flush"} & sent.keys(), sent


def test_outside_change_shows_after_cache_ttl(make_wmount, wiam, fx):
    """Content, size and listings: the kernel keeps nothing longer than
    iamfs's own cache does."""
    m = make_wmount(args=["--cache-ttl", "2"])
    doc = m.p(f"policies/{fx.policy}.json")
    inline_dir = m.p(f"roles/{fx.role}/policies")
    first = cat_bytes(doc)
    assert int(ok(["stat", "-c", "%s", doc])) == len(first)
    assert os.listdir(inline_dir) == [f"{fx.inline}.json"]
    longer = identity_doc("a-much-longer-resource-name-than-before", actions=("s3:GetObject",
                                                                              "s3:PutObject"))
    arn = policy_arn(fx.policy)
    wiam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(longer),
                               SetAsDefault=True)
    wiam.put_role_policy(RoleName=fx.role, PolicyName="added",
                         PolicyDocument=json.dumps(identity_doc()))
    assert cat_bytes(doc) == first, "changed before the TTL (cache not used?)"
    time.sleep(2.5)
    now = cat_bytes(doc)
    assert json.loads(now) == longer
    assert int(ok(["stat", "-c", "%s", doc])) == len(now)
    assert sorted(os.listdir(inline_dir)) == ["added.json", f"{fx.inline}.json"]


def test_saving_tags_shows_in_role_json_at_once(make_wmount, wiam, fx):
    """role.json shows the tags: the kernel must not keep its old size or
    pages after tags.json is saved."""
    m = make_wmount(args=["--cache-ttl", "300"])
    role_json = m.p(f"roles/{fx.role}/role.json")
    before = cat_bytes(role_json)
    ok(["stat", role_json])
    tags = {"stage": TOKEN, "owner": "a-team-with-a-long-name"}
    assert py_write(m.p(f"roles/{fx.role}/tags.json"), pretty(tags)) is None
    after = cat_bytes(role_json)
    assert after != before
    assert {t["Key"]: t["Value"] for t in json.loads(after)["Tags"]} == tags
    assert int(ok(["stat", "-c", "%s", role_json])) == len(after)


def test_membership_shows_on_both_sides_at_once(make_wmount, wiam, fx):
    m = make_wmount(args=["--cache-ttl", "300"])
    members = m.p(f"groups/{fx.group}/members")
    assert os.listdir(members) == []
    link = m.p(f"users/{fx.user}/groups/{fx.group}")
    ok(["ln", "-s", f"../../../groups/{fx.group}", link])
    assert os.listdir(members) == [fx.user]
    assert os.readlink(os.path.join(members, fx.user)) == f"../../../users/{fx.user}"
    ok(["rm", link])
    assert os.listdir(members) == []
    assert not os.path.lexists(os.path.join(members, fx.user))
    assert wiam.get_group(GroupName=fx.group)["Users"] == []


def test_unsaved_writes_are_not_shown_to_other_readers(make_wmount, wiam):
    """Written but not yet closed: another open of the file still reads IAM's
    document, even where the kernel had kept the file's pages. The document
    is longer than a page and keeps its size, so the kernel's own checks
    (size, mtime) see no change. (Read in this process: a forked reader
    would close a copy of the writer's descriptor, and that close commits.)"""
    def big(word):
        return {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "s3:GetObject",
            "Resource": [f"arn:aws:s3:::{word}-{i:03d}/*" for i in range(100)]}]}

    name = uniq("kc-big-")
    wiam.create_policy(PolicyName=name, PolicyDocument=json.dumps(big("saved-bucket")))
    m = make_wmount(args=["--cache-ttl", "300"])
    doc = m.p(f"policies/{name}.json")

    def read():
        with open(doc, "rb") as r:
            return r.read()

    before = read()
    assert read() == before  # the second open keeps the kernel's pages
    new = pretty(big("draft-bucket"))
    assert len(new) == len(before) > 4096
    with open(doc, "r+b") as f:
        f.write(new)
        f.flush()  # a write(2), not a close
        assert read() == before, "a reader saw a draft that was not saved"
    assert json.loads(cat_bytes(doc)) == big("draft-bucket")
