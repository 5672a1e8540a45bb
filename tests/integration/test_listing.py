import os
import stat
"""The tree: `ls` of every top-level folder equals what IAM holds (moto
paginates ListRoles and ListPolicies at 100), and each entity's folder has
the contract's entries."""

import pytest

from conftest import EDGE_ROLE, EDGE_USER, N_BULK_POLICIES, N_BULK_ROLES
from iamfs_harness import (aws_policies, group_names, local_policies, ls, paginate,
                           role_names, user_names)

pytestmark = pytest.mark.shared_mount


def assert_same_names(listed: list[str], expected: list[str], what: str):
    assert len(listed) == len(set(listed)), f"{what}: duplicate entries in ls"
    missing = sorted(set(expected) - set(listed))
    extra = sorted(set(listed) - set(expected))
    assert not missing and not extra, (
        f"{what}: ls shows {len(listed)}, IAM has {len(expected)}; "
        f"missing {missing[:20]}, extra {extra[:20]}")


def test_top_level(mnt):
    assert sorted(ls(mnt.p(), "-A")) == sorted(
        [".iamfs", "account", "aws-policies", "groups", "instance-profiles", "policies",
         "policy-versions", "roles", "users"])
    assert sorted(ls(mnt.p(".iamfs"), "-A")) == ["errors", "mfa", "refresh", "status"]


def test_ls_roles_equals_paginated_list_roles(mnt, iam, account):
    expected = role_names(iam)
    assert len(expected) > 100, "seed too small: ListRoles would not paginate"
    assert len(expected) >= N_BULK_ROLES
    assert_same_names(ls(mnt.p("roles")), expected, "roles/")
    assert EDGE_ROLE in ls(mnt.p("roles"))


def test_ls_users_equals_list_users(mnt, iam, account):
    assert_same_names(ls(mnt.p("users")), user_names(iam), "users/")
    assert EDGE_USER in ls(mnt.p("users"))


def test_ls_groups_equals_list_groups(mnt, iam, account):
    assert_same_names(ls(mnt.p("groups")), group_names(iam), "groups/")


def test_ls_policies_equals_paginated_list_policies_local(mnt, iam, account):
    pols = local_policies(iam)
    assert len(pols) > 100, "seed too small: ListPolicies would not paginate"
    assert len(pols) >= N_BULK_POLICIES
    assert_same_names(ls(mnt.p("policies")), [p["PolicyName"] + ".json" for p in pols],
                      "policies/")


def test_ls_aws_policies_equals_list_policies_aws(mnt, iam):
    pols = aws_policies(iam)
    assert len(pols) > 1000  # moto ships ~1500 when MOTO_IAM_LOAD_MANAGED_POLICIES=true
    listed = ls(mnt.p("aws-policies"))
    assert_same_names(listed, [p["PolicyName"] + ".json" for p in pols], "aws-policies/")
    assert "ReadOnlyAccess.json" in listed


def test_user_folder(mnt, iam):
    assert sorted(ls(mnt.p("users/user1"), "-A")) == sorted(
        ["user.json", "policies", "attached", "groups", "access-keys.json", "mfa-devices.json",
         "login-profile.json", "tags.json"])
    inline = iam.list_user_policies(UserName="user1")["PolicyNames"]
    assert sorted(ls(mnt.p("users/user1/policies"), "-A")) == sorted(f"{n}.json" for n in inline)
    attached = paginate(iam, "list_attached_user_policies", "AttachedPolicies", UserName="user1")
    assert sorted(ls(mnt.p("users/user1/attached"), "-A")) == sorted(
        a["PolicyName"] for a in attached)
    groups = paginate(iam, "list_groups_for_user", "Groups", UserName="user1")
    assert sorted(ls(mnt.p("users/user1/groups"), "-A")) == sorted(g["GroupName"] for g in groups)


def test_group_folder(mnt, iam):
    for g in ("developers", "marketing"):
        assert sorted(ls(mnt.p(f"groups/{g}"), "-A")) == sorted(
            ["group.json", "policies", "attached", "members"])
        inline = iam.list_group_policies(GroupName=g)["PolicyNames"]
        assert sorted(ls(mnt.p(f"groups/{g}/policies"), "-A")) == sorted(f"{n}.json" for n in inline)
        attached = paginate(iam, "list_attached_group_policies", "AttachedPolicies", GroupName=g)
        assert sorted(ls(mnt.p(f"groups/{g}/attached"), "-A")) == sorted(
            a["PolicyName"] for a in attached)
        members = [u["UserName"] for u in iam.get_group(GroupName=g)["Users"]]
        assert sorted(ls(mnt.p(f"groups/{g}/members"), "-A")) == sorted(members)


@pytest.mark.parametrize("role", ["marketingadminrole", "ec2-readonly-role", EDGE_ROLE,
                                  "bulk-role-000"])
def test_role_folder(mnt, iam, role):
    listed = set(ls(mnt.p(f"roles/{role}"), "-A"))
    assert listed - {"credentials", "env"} == {
        "role.json", "trust-policy.json", "settings.json", "policies", "attached", "tags.json",
        "instance-profiles"}
    inline = iam.list_role_policies(RoleName=role)["PolicyNames"]
    assert sorted(ls(mnt.p(f"roles/{role}/policies"), "-A")) == sorted(f"{n}.json" for n in inline)
    attached = paginate(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=role)
    assert sorted(ls(mnt.p(f"roles/{role}/attached"), "-A")) == sorted(
        a["PolicyName"] for a in attached)


def test_role_credentials_resolve_by_name_but_are_not_listed(mnt):
    """roles/<R>/credentials and env exist (stat, cat) but ls leaves them out,
    so that grep -r, find and rsync never mint role sessions (README)."""
    role = mnt.p("roles/marketingadminrole")
    listed = set(ls(role, "-A"))
    assert not {"credentials", "env"} & listed, sorted(listed)
    for name in ("credentials", "env"):
        st = os.stat(os.path.join(role, name))
        assert stat.S_IMODE(st.st_mode) == 0o400
