"""Session fixtures for iamfs's integration tests.

State, and which tests see which (see the markers in pytest.ini):

* `moto` (session): one moto_server on a free 127.0.0.1 port, AWS-managed
  policies loaded. Killed at the end.
* `account` (session): the sample account of scripts/seed_sample.py, plus
  110 roles / 110 customer-managed policies (so moto paginates ListRoles and
  ListPolicies), more users/groups, and edge cases (names with IAM's
  punctuation, documents with characters that URL-encoding changes).
  Tests that change IAM undo their change.
* `mnt` (session, marker `shared_mount`): one daemon mount of that account,
  default options. Its cache may be warm: use it only for tests that read
  and compare with IAM.
* `make_mount` (function, marker `fresh_mount`): a new mount per call, cold
  cache; needed wherever API-call counts or cache behaviour are asserted.
  Unmounted when the test ends.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field

import pytest

from iamfs_harness import IAMFS_BIN, LIVE_MOUNTS, MotoServer, Mount, raw_client

import seed_sample  # scripts/seed_sample.py (iamfs_harness put scripts/ on sys.path)

N_BULK_ROLES = 110
N_BULK_POLICIES = 110

# Characters that URL-encoding (RFC 3986) changes, plus non-ASCII, so a
# decoder that skips a step or decodes twice shows up.
TRICKY = "a b+c&d=é/%25 ~*?[x]"
EDGE_USER = "first.last@example.com"
EDGE_ROLE = "svc+deploy=a,b.c@d_e-f"
EDGE_POLICY = "encoding-test"


@dataclass
class Account:
    id: str
    sample: dict
    bulk: dict
    edge: dict = field(default_factory=dict)


@pytest.fixture(scope="session")
def iamfs_bin():
    if not (IAMFS_BIN.exists() and os.access(IAMFS_BIN, os.X_OK)):
        pytest.fail(f"{IAMFS_BIN} missing: build it with `cargo build` (scripts/test.sh does)")
    if not shutil.which("fusermount3"):
        pytest.fail("fusermount3 missing: run scripts/install-deps.sh")
    if not os.path.exists("/dev/fuse"):
        pytest.fail("/dev/fuse missing")
    return IAMFS_BIN


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def clients(moto):
    return seed_sample.clients(moto.url)


@pytest.fixture(scope="session")
def iam(clients):
    return clients[0]


@pytest.fixture(scope="session")
def iam_raw(iam):
    """Like `iam`, but documents come back as the endpoint's raw strings
    (see iamfs_harness.raw_client: boto3 mis-decodes moto's plain ones)."""
    return raw_client(iam)


@pytest.fixture(scope="session")
def sts(clients):
    return clients[1]


def _seed_edge(iam, account_id: str) -> dict:
    doc = {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "Tricky",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": f"arn:aws:s3:::bucket/{TRICKY}",
            "Condition": {"StringLike": {"s3:prefix": [TRICKY, "naïve/日本語/*"]}},
        }],
    }
    text = json.dumps(doc)  # ASCII with \u escapes, as boto3 users send it
    iam.create_policy(PolicyName=EDGE_POLICY, Path="/edge/cases/", PolicyDocument=text)
    iam.create_user(UserName=EDGE_USER, Tags=[{"Key": "owner", "Value": "Zoë"},
                                              {"Key": "a", "Value": "1"}])
    iam.put_user_policy(UserName=EDGE_USER, PolicyName="tricky", PolicyDocument=text)
    trust = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": TRICKY}},
        }],
    }
    iam.create_role(RoleName=EDGE_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=EDGE_ROLE, PolicyName="tricky", PolicyDocument=text)
    iam.attach_role_policy(RoleName=EDGE_ROLE,
                           PolicyArn=f"arn:aws:iam::{account_id}:policy/edge/cases/{EDGE_POLICY}")
    return {"user": EDGE_USER, "role": EDGE_ROLE, "policy": EDGE_POLICY, "doc": doc}


@pytest.fixture(scope="session")
def account(iam, sts) -> Account:
    sample = seed_sample.seed_sample(iam, sts)
    bulk = seed_sample.seed_bulk(iam, sample["account"], roles=N_BULK_ROLES,
                                 policies=N_BULK_POLICIES, users=12, groups=5)
    edge = _seed_edge(iam, sample["account"])
    return Account(id=sample["account"], sample=sample, bulk=bulk, edge=edge)


@pytest.fixture(scope="session")
def mnt(iamfs_bin, moto, account, tmp_path_factory):
    m = Mount(tmp_path_factory.mktemp("shared"), moto.url).start()
    yield m
    m.unmount()


@pytest.fixture
def make_mount(iamfs_bin, moto, account, tmp_path_factory):
    made = []

    def make(endpoint: str | None = "moto", *, args=(), env=None, start=True,
             endpoint_via_env=False) -> Mount:
        url = moto.url if endpoint == "moto" else endpoint
        m = Mount(tmp_path_factory.mktemp("fresh"), url, args=args, env=env,
                  endpoint_via_env=endpoint_via_env)
        made.append(m)
        return m.start() if start else m

    yield make
    for m in made:
        m.unmount()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when in ("call", "setup") and report.failed:
        for m in list(LIVE_MOUNTS):
            report.sections.append((f"iamfs log {m.log_path}", m.log_tail(60)))
