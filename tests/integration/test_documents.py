"""Documents: entity JSON matches GetUser/GetRole/GetGroup; policy
documents are exactly json.dumps(doc, indent=2) + "\\n" of IAM's decoded
document (key order as IAM gave), and parse with jq."""

import json

import pytest

from conftest import EDGE_POLICY, EDGE_ROLE, EDGE_USER
from iamfs_harness import (cat_bytes, cat_json, expected_doc_bytes, inline_document, ok,
                           parse_time, policy_by_name, policy_document, trust_document)

pytestmark = pytest.mark.shared_mount


def assert_doc_file(path, doc):
    """Bytes are the contract's rendering; jq parses the file to the same value."""
    got = cat_bytes(path)
    want = expected_doc_bytes(doc)
    assert got == want, (f"{path}: bytes differ from json.dumps(doc, indent=2)+'\\n'\n"
                         f"--- got ---\n{got.decode(errors='replace')[:3000]}\n"
                         f"--- want ---\n{want.decode()[:3000]}")
    assert json.loads(ok(["jq", "-c", ".", path])) == doc
    ok(["jq", "-e", ".Statement", path])


def assert_time_field(value, expected_dt, what):
    got = parse_time(value)
    assert abs(got - expected_dt.timestamp()) < 1.0, f"{what}: {value!r} vs {expected_dt}"


@pytest.mark.parametrize("user", ["user1", "alice", EDGE_USER, "bulk-user-03"])
def test_user_json_matches_get_user(mnt, iam, user):
    truth = iam.get_user(UserName=user)["User"]
    got = cat_json(mnt.p(f"users/{user}/user.json"))
    for k in ("Path", "UserName", "UserId", "Arn"):
        assert got.get(k) == truth[k], f"user.json {k}"
    assert_time_field(got.get("CreateDate"), truth["CreateDate"], "user.json CreateDate")
    assert ok(["jq", "-r", ".UserName", mnt.p(f"users/{user}/user.json")]).strip() == user


@pytest.mark.parametrize("role", ["marketingadminrole", "ec2-readonly-role", EDGE_ROLE,
                                  "bulk-role-007", "bulk-role-105"])
def test_role_json_matches_get_role(mnt, iam, iam_raw, role):
    truth = iam.get_role(RoleName=role)["Role"]
    got = cat_json(mnt.p(f"roles/{role}/role.json"))
    for k in ("Path", "RoleName", "RoleId", "Arn", "MaxSessionDuration"):
        assert got.get(k) == truth[k], f"role.json {k}"
    if "Description" in truth:
        assert got.get("Description") == truth["Description"]
    assert_time_field(got.get("CreateDate"), truth["CreateDate"], "role.json CreateDate")
    # decoded as an object, not left as an (encoded) string
    assert got.get("AssumeRolePolicyDocument") == trust_document(iam_raw, role)


@pytest.mark.parametrize("group", ["developers", "marketing", "bulk-group-2"])
def test_group_json_matches_get_group(mnt, iam, group):
    truth = iam.get_group(GroupName=group)["Group"]
    got = cat_json(mnt.p(f"groups/{group}/group.json"))
    for k in ("Path", "GroupName", "GroupId", "Arn"):
        assert got.get(k) == truth[k], f"group.json {k}"
    assert_time_field(got.get("CreateDate"), truth["CreateDate"], "group.json CreateDate")


@pytest.mark.parametrize("name", ["s3-read-reports", "deploy-app", "billing-view", EDGE_POLICY,
                                  "bulk-policy-000", "bulk-policy-001", "bulk-policy-109"])
def test_managed_policy_document(mnt, iam, iam_raw, name):
    pol = policy_by_name(iam, name)
    assert_doc_file(mnt.p(f"policies/{name}.json"), policy_document(iam_raw, pol["Arn"]))


@pytest.mark.parametrize("name", ["ReadOnlyAccess", "AmazonS3ReadOnlyAccess"])
def test_aws_managed_policy_document(mnt, iam_raw, name):
    arn = f"arn:aws:iam::aws:policy/{name}"
    assert_doc_file(mnt.p(f"aws-policies/{name}.json"), policy_document(iam_raw, arn))


@pytest.mark.parametrize("kind,entity,policy", [
    ("users", "user1", "s3-home"),
    ("users", EDGE_USER, "tricky"),
    ("groups", "developers", "dev-logs"),
    ("groups", "marketing", "marketing-assets"),
    ("roles", "marketingadminrole", "marketing-admin"),
    ("roles", EDGE_ROLE, "tricky"),
    ("roles", "bulk-role-042", "inline"),
])
def test_inline_policy_document(mnt, iam_raw, kind, entity, policy):
    assert_doc_file(mnt.p(f"{kind}/{entity}/policies/{policy}.json"),
                    inline_document(iam_raw, kind, entity, policy))


@pytest.mark.parametrize("role", ["marketingadminrole", "ec2-readonly-role", EDGE_ROLE,
                                  "bulk-role-010", "bulk-role-011"])
def test_trust_policy_document(mnt, iam_raw, role):
    assert_doc_file(mnt.p(f"roles/{role}/trust-policy.json"), trust_document(iam_raw, role))


def test_trust_policy_trusts_account_root(mnt, account):
    doc = cat_json(mnt.p("roles/marketingadminrole/trust-policy.json"))
    assert doc["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{account.id}:root"}


def test_edge_documents_match_what_was_sent(mnt, iam_raw, account):
    """Independent of any decoding rule: the edge documents equal the
    objects the seed sent."""
    sent = account.edge["doc"]
    assert cat_json(mnt.p(f"policies/{EDGE_POLICY}.json")) == sent
    assert cat_json(mnt.p(f"users/{EDGE_USER}/policies/tricky.json")) == sent
    assert cat_json(mnt.p(f"roles/{EDGE_ROLE}/policies/tricky.json")) == sent
    assert policy_document(iam_raw, policy_by_name(iam_raw, EDGE_POLICY)["Arn"]) == sent


def test_edge_document_decoded_once(mnt, account):
    """moto hands this document back URL-encoded from some calls and plain
    from others; either way the file holds the original characters, decoded
    exactly once (a literal "%25" stays "%25")."""
    text = cat_bytes(mnt.p(f"policies/{EDGE_POLICY}.json")).decode("utf-8")
    assert "a b+c&d=é/%25 ~*?[x]" in text
    assert "naïve/日本語/*" in text
    assert json.loads(text) == account.edge["doc"]
