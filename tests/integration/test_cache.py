"""Cache behaviour, measured with .iamfs/status's API-call counters on fresh
mounts (cold cache)."""

import json
import time
import uuid

import pytest

from iamfs_harness import cat_json, ls, ok

pytestmark = pytest.mark.fresh_mount


def test_nothing_fetched_at_mount(make_mount, moto):
    before = moto.requests()
    m = make_mount()
    time.sleep(0.5)
    assert moto.requests() == before, "the endpoint was called at mount time"
    st = m.status()  # the first thing touched on this mount
    assert st["api_calls_total"] == 0, st
    assert sum(st["api_calls"].values()) == 0, st


def test_status_fields(make_mount, moto, account):
    m = make_mount()
    ls(m.p("users"))
    st = m.status()
    assert st["account"] == account.id
    assert st["endpoint"].rstrip("/") == moto.url
    assert st["region"] == "us-east-1"
    for k in ("hits", "misses", "entries"):
        assert isinstance(st["cache"][k], int), k
    assert isinstance(st["api_calls"], dict) and st["api_calls"]
    assert st["api_calls_total"] == sum(st["api_calls"].values())
    assert st["api_calls_total"] >= 1
    assert isinstance(st["errors"], int)
    assert ok(["jq", "-e", ".api_calls_total", m.p(".iamfs/status")])


def test_second_ls_l_within_ttl_costs_nothing(make_mount):
    m = make_mount(args=["--cache-ttl", "300"])
    ok(["ls", "-l", m.p("roles/")])
    first = m.status()
    assert first["api_calls_total"] > 0
    ok(["ls", "-l", m.p("roles/")])
    second = m.status()
    assert second["api_calls_total"] == first["api_calls_total"], (
        f"second ls -l roles/ made calls: {first['api_calls']} -> {second['api_calls']}")
    assert second["cache"]["hits"] > first["cache"]["hits"]


def test_second_cat_within_ttl_costs_nothing(make_mount):
    m = make_mount(args=["--cache-ttl", "300"])
    a = ok(["cat", m.p("roles/marketingadminrole/role.json"),
            m.p("policies/s3-read-reports.json"), m.p("users/user1/policies/s3-home.json")])
    n = m.calls()
    b = ok(["cat", m.p("roles/marketingadminrole/role.json"),
            m.p("policies/s3-read-reports.json"), m.p("users/user1/policies/s3-home.json")])
    assert a == b
    assert m.calls() == n


@pytest.mark.mutates_iam
def test_new_role_visible_only_after_refresh(make_mount, iam, account):
    m = make_mount(args=["--cache-ttl", "300"])
    before = ls(m.p("roles"))
    name = f"cache-probe-{uuid.uuid4().hex[:8]}"
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    try:
        assert name not in ls(m.p("roles")), "new role visible before refresh (cache not used?)"
        assert ls(m.p("roles")) == before
        m.refresh()
        assert name in ls(m.p("roles"))
        assert cat_json(m.p(f"roles/{name}/role.json"))["RoleName"] == name
    finally:
        iam.delete_role(RoleName=name)


@pytest.mark.mutates_iam
def test_changed_document_visible_after_refresh(make_mount, iam, account):
    """Content, not only listings: after refresh, cat shows IAM's new
    document (no stale page cache)."""
    name = f"cache-doc-{uuid.uuid4().hex[:8]}"
    doc1 = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    doc2 = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::longer-name/*"}]}
    arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(doc1))["Policy"]["Arn"]
    try:
        m = make_mount(args=["--cache-ttl", "300"])
        path = m.p(f"policies/{name}.json")
        assert cat_json(path) == doc1
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(doc2), SetAsDefault=True)
        assert cat_json(path) == doc1, "changed before refresh (cache not used?)"
        m.refresh()
        assert cat_json(path) == doc2
        size = int(ok(["stat", "-c", "%s", path]))
        assert size == len(ok(["cat", path]).encode())
    finally:
        for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
            if not v["IsDefaultVersion"]:
                iam.delete_policy_version(PolicyArn=arn, VersionId=v["VersionId"])
        iam.delete_policy(PolicyArn=arn)


@pytest.mark.mutates_iam
def test_cache_ttl_expires(make_mount, iam, account):
    """--cache-ttl bounds staleness without any refresh."""
    m = make_mount(args=["--cache-ttl", "1"])
    ls(m.p("roles"))
    name = f"ttl-probe-{uuid.uuid4().hex[:8]}"
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    try:
        time.sleep(2.5)
        assert name in ls(m.p("roles")), "still stale after the TTL"
    finally:
        iam.delete_role(RoleName=name)
