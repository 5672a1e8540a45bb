"""Pagination past iamfs's own page size. iamfs asks for MaxItems=1000 (IAM's
maximum) and moto honours any MaxItems, so the session account's ~110
roles/policies come back in one page; this module seeds a separate moto
with more than 1000 roles and 1000 customer-managed policies so that
ListRoles and ListPolicies must follow Marker/IsTruncated."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import seed_sample
from iamfs_harness import MotoServer, Mount, ls, role_names, local_policies

pytestmark = pytest.mark.fresh_mount

N = 1005


@pytest.fixture(scope="module")
def big_moto(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("moto-big"))
    iam, _sts = seed_sample.clients(server.url)
    # moto_server's lookups race its concurrent creates (an HTTP 500 now and then)
    seeder = seed_sample.retrying(iam)
    trust = seed_sample.trust_service("ec2.amazonaws.com")
    pdoc = seed_sample.doc(seed_sample.allow("s3:GetObject"))
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: seeder.create_role(RoleName=f"page-role-{i:04d}",
                                                 AssumeRolePolicyDocument=trust), range(N)))
        list(ex.map(lambda i: seeder.create_policy(PolicyName=f"page-policy-{i:04d}",
                                                   PolicyDocument=pdoc), range(N)))
    yield server, iam
    server.stop()


@pytest.fixture
def big_mount(iamfs_bin, big_moto, tmp_path):
    m = Mount(tmp_path / "big", big_moto[0].url).start()
    yield m
    m.unmount()


def test_ls_roles_over_1000(big_mount, big_moto):
    iam = big_moto[1]
    expected = set(role_names(iam))
    assert len(expected) == N
    t0 = time.monotonic()
    listed = ls(big_mount.p("roles"))
    assert len(listed) == len(set(listed)) == N, f"ls roles/ shows {len(listed)} of {N}"
    assert set(listed) == expected
    assert time.monotonic() - t0 < 60


def test_ls_policies_over_1000(big_mount, big_moto):
    iam = big_moto[1]
    expected = {p["PolicyName"] + ".json" for p in local_policies(iam)}
    assert len(expected) == N
    listed = ls(big_mount.p("policies"))
    assert len(listed) == len(set(listed)) == N, f"ls policies/ shows {len(listed)} of {N}"
    assert set(listed) == expected
