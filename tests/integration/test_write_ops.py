"""Every change the contract names, checked in IAM through boto3:
saving documents (new, overwrite, semantically equal, 5-version rollover,
tags as a diff), mkdir/rmdir, ln -s/rm for attachments and memberships,
mv of users and groups (and EPERM for roles and policies), rm of managed
policies (EBUSY while attached), scratch files and the editor backup
rename, flush/fsync semantics, and EROFS on a --read-only mount."""

from __future__ import annotations

import errno
import json
import os
import time

import pytest

from write_helpers import *  # noqa: F401,F403

pytestmark = pytest.mark.fresh_mount


def oserr(fn, *args, **kw):
    """Calls fn; returns the OSError it raised, or None."""
    try:
        fn(*args, **kw)
    except OSError as e:
        return e
    return None


def expect_errno(err, want: int, what: str):
    assert err is not None, f"{what} succeeded; expected {errno.errorcode[want]}"
    assert err.errno == want, f"{what}: {errno_name(err)} ({err}); expected {errno.errorcode[want]}"


def attached_arns(wiam, kind: str, name: str) -> list[str]:
    if kind == "users":
        r = wiam.list_attached_user_policies(UserName=name)
    elif kind == "groups":
        r = wiam.list_attached_group_policies(GroupName=name)
    else:
        r = wiam.list_attached_role_policies(RoleName=name)
    return sorted(a["PolicyArn"] for a in r["AttachedPolicies"])


def groups_of(wiam, user: str) -> list[str]:
    return sorted(g["GroupName"] for g in wiam.list_groups_for_user(UserName=user)["Groups"])


def members_of(wiam, group: str) -> list[str]:
    return sorted(u["UserName"] for u in wiam.get_group(GroupName=group)["Users"])


def exists(wiam, kind: str, name: str) -> bool:
    try:
        if kind == "users":
            wiam.get_user(UserName=name)
        elif kind == "groups":
            wiam.get_group(GroupName=name)
        else:
            wiam.get_role(RoleName=name)
        return True
    except wiam.exceptions.NoSuchEntityException:
        return False


# --------------------------------------------------------------------------
# saving documents
# --------------------------------------------------------------------------

def test_new_managed_policy(wmount, wiam, wraw):
    name = uniq("wt-new-")
    doc = identity_doc("newpol")
    calls = wmount.api_calls()
    assert py_write(wmount.p(f"policies/{name}.json"), pretty(doc)) is None
    assert mutations(new_calls(calls, wmount.api_calls())) == {"CreatePolicy": 1}
    assert managed_doc(wraw, name) == doc
    assert f"{name}.json" in os.listdir(wmount.p("policies"))
    assert json.loads(cat_bytes(wmount.p(f"policies/{name}.json"))) == doc


def test_overwrite_managed_policy_makes_default_version(wmount, wiam, wraw, fx):
    arn = policy_arn(fx.policy)
    doc = identity_doc("v2doc")
    calls = wmount.api_calls()
    assert py_write(wmount.p(f"policies/{fx.policy}.json"), pretty(doc)) is None
    assert mutations(new_calls(calls, wmount.api_calls())) == {"CreatePolicyVersion": 1}
    pol = wiam.get_policy(PolicyArn=arn)["Policy"]
    assert pol["DefaultVersionId"] == "v2"
    assert version_ids(wiam, arn) == ["v1", "v2"]
    assert managed_doc(wraw, fx.policy) == doc
    assert cat_bytes(wmount.p(f"policies/{fx.policy}.json")) == pretty(doc)


@pytest.mark.parametrize("default", ["v5", "v1"])
def test_five_version_rollover(wmount, wiam, wraw, default):
    """With five versions, the oldest non-default one is deleted first."""
    name = uniq("wt-five-")
    arn = wiam.create_policy(PolicyName=name,
                             PolicyDocument=json.dumps(identity_doc("v1")))["Policy"]["Arn"]
    for i in range(2, 6):
        wiam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(identity_doc(f"v{i}")),
                                   SetAsDefault=True)
    wiam.set_default_policy_version(PolicyArn=arn, VersionId=default)
    wmount.refresh()
    assert json.loads(cat_bytes(wmount.p(f"policies/{name}.json"))) == identity_doc(default)
    doc = identity_doc("v6")
    calls = wmount.api_calls()
    assert py_write(wmount.p(f"policies/{name}.json"), pretty(doc)) is None
    made = mutations(new_calls(calls, wmount.api_calls()))
    assert made == {"DeletePolicyVersion": 1, "CreatePolicyVersion": 1}, made
    oldest_non_default = "v1" if default != "v1" else "v2"
    want = sorted({"v1", "v2", "v3", "v4", "v5", "v6"} - {oldest_non_default})
    assert version_ids(wiam, arn) == want
    assert wiam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v6"
    assert managed_doc(wraw, name) == doc
    if default == "v1":  # the old default survives
        v1 = wraw.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
        assert decode_document(v1["Document"]) == identity_doc("v1")


@pytest.mark.parametrize("kind", ["users", "groups", "roles"])
def test_new_and_overwritten_inline_policy(wmount, wiam, wraw, fx, kind):
    ent = {"users": fx.user, "groups": fx.group, "roles": fx.role}[kind]
    op = {"users": "PutUserPolicy", "groups": "PutGroupPolicy", "roles": "PutRolePolicy"}[kind]
    calls = wmount.api_calls()
    assert py_write(wmount.p(f"{kind}/{ent}/policies/extra.json"),
                    pretty(identity_doc("extra"))) is None
    assert py_write(wmount.p(f"{kind}/{ent}/policies/{fx.inline}.json"),
                    pretty(identity_doc("changed"))) is None
    assert mutations(new_calls(calls, wmount.api_calls())) == {op: 2}
    assert sorted(inline_names(wiam, kind, ent)) == sorted([fx.inline, "extra"])
    assert inline_document(wraw, kind, ent, "extra") == identity_doc("extra")
    assert inline_document(wraw, kind, ent, fx.inline) == identity_doc("changed")
    assert sorted(os.listdir(wmount.p(f"{kind}/{ent}/policies"))) == sorted(
        [f"{fx.inline}.json", "extra.json"])


@pytest.mark.parametrize("kind", ["users", "groups", "roles"])
def test_rm_inline_policy(wmount, wiam, wraw, fx, kind):
    ent = {"users": fx.user, "groups": fx.group, "roles": fx.role}[kind]
    op = {"users": "DeleteUserPolicy", "groups": "DeleteGroupPolicy",
          "roles": "DeleteRolePolicy"}[kind]
    calls = wmount.api_calls()
    ok(["rm", wmount.p(f"{kind}/{ent}/policies/{fx.inline}.json")])
    # Gone from the mount at once; deleted in IAM once rm's grace has passed
    # with no create of the name (see test_safety's install tests).
    assert os.listdir(wmount.p(f"{kind}/{ent}/policies")) == []
    assert wait_for(lambda: inline_names(wiam, kind, ent) == [], RM_GRACE + 5)
    assert mutations(new_calls(calls, wmount.api_calls())) == {op: 1}
    assert os.listdir(wmount.p(f"{kind}/{ent}/policies")) == []


def test_trust_policy_update(wmount, wiam, wraw, fx):
    doc = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    calls = wmount.api_calls()
    assert py_write(wmount.p(f"roles/{fx.role}/trust-policy.json"), pretty(doc)) is None
    assert mutations(new_calls(calls, wmount.api_calls())) == {"UpdateAssumeRolePolicy": 1}
    assert trust_document(wraw, fx.role) == doc
    assert json.loads(cat_bytes(wmount.p(f"roles/{fx.role}/role.json")))[
        "AssumeRolePolicyDocument"] == doc


@pytest.mark.parametrize("kind", ["users", "roles"])
def test_tags_are_a_diff(wmount, wiam, wraw, kind):
    name = uniq("wt-tags-")
    tags = [{"Key": "keep", "Value": "1"}, {"Key": "change", "Value": "old"},
            {"Key": "drop", "Value": "x"}]
    if kind == "users":
        wiam.create_user(UserName=name, Tags=tags)
    else:
        wiam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_doc()),
                         Tags=tags)
    want = {"keep": "1", "change": "new", "add": "y"}
    calls = wmount.api_calls()
    assert py_write(wmount.p(f"{kind}/{name}/tags.json"), pretty(want)) is None
    made = mutations(new_calls(calls, wmount.api_calls()))
    t = "User" if kind == "users" else "Role"
    assert made == {f"Tag{t}": 1, f"Untag{t}": 1}, made
    assert tags_of(wiam, kind, name) == want
    assert json.loads(cat_bytes(wmount.p(f"{kind}/{name}/tags.json"))) == want
    # Removing every tag: {} untags all and tags nothing.
    calls = wmount.api_calls()
    assert py_write(wmount.p(f"{kind}/{name}/tags.json"), b"{}\n") is None
    assert mutations(new_calls(calls, wmount.api_calls())) == {f"Untag{t}": 1}
    assert tags_of(wiam, kind, name) == {}


SEMANTIC_TWINS = {
    # reformatted: compact, keys reordered
    "managed": lambda: json.dumps({"Statement": [{"Resource": f"arn:aws:s3:::{TOKEN}-bucket/*",
                                                  "Action": ["s3:GetObject"], "Effect": "Allow"}],
                                   "Version": "2012-10-17"}).encode(),
    "user_inline": lambda: json.dumps(identity_doc(), indent=8).encode(),
    "trust": lambda: json.dumps(trust_doc(), separators=(",", ":")).encode(),
    "user_tags": lambda: b'{"team":"core","stage":"alpha"}',
    "role_tags": lambda: b'{ "stage" : "alpha" }\n\n',
}


@pytest.mark.parametrize("which", sorted(SEMANTIC_TWINS))
@pytest.mark.parametrize("how", ["same-bytes", "reformatted"])
def test_semantically_equal_save_makes_no_call(wmount, wiam, wraw, fx, which, how):
    rel = fx.rels()[which]
    before = cat_bytes(wmount.p(rel))
    data = before if how == "same-bytes" else SEMANTIC_TWINS[which]()
    snap = snapshot(wraw)
    calls = wmount.api_calls()
    assert py_write(wmount.p(rel), data) is None
    made = mutations(new_calls(calls, wmount.api_calls()))
    assert not made, f"saving an equal {rel} called {made}"
    assert_unchanged(wraw, snap)
    assert json.loads(cat_bytes(wmount.p(rel))) == json.loads(before)


def test_write_then_nothing_is_one_commit(wmount, wiam, wraw, fx):
    """Many write() calls, a dup'd descriptor closed twice, fsync then
    close: one CreatePolicyVersion; an open for writing with no write makes
    no call at all."""
    path = wmount.p(f"policies/{fx.policy}.json")
    arn = policy_arn(fx.policy)
    calls = wmount.api_calls()
    fd = os.open(path, os.O_WRONLY)
    os.close(fd)
    fd = os.open(path, os.O_RDWR)
    os.close(fd)
    assert not mutations(new_calls(calls, wmount.api_calls()))

    data = pretty(identity_doc("chunks"))
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    for i in range(0, len(data), 7):
        os.write(fd, data[i:i + 7])
    fd2 = os.dup(fd)
    os.fsync(fd)
    os.close(fd)
    os.close(fd2)
    made = mutations(new_calls(calls, wmount.api_calls()))
    assert made == {"CreatePolicyVersion": 1}, made
    assert version_ids(wiam, arn) == ["v1", "v2"]
    assert managed_doc(wraw, fx.policy) == identity_doc("chunks")


def test_fsync_returns_the_commit_error(wmount, wiam, wraw, fx):
    path = wmount.p(f"policies/{fx.policy}.json")
    snap = snapshot(wraw)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b'{"Version": "2012-10-17", "Statement": []}\n')
        expect_errno(oserr(os.fsync, fd), errno.EINVAL, "fsync of an invalid policy")
    finally:
        err = oserr(os.close, fd)
    expect_errno(err, errno.EINVAL, "close after the failed fsync")
    assert_unchanged(wraw, snap)


def test_partial_overwrite_without_trunc(wmount, wiam, wraw, fx):
    """O_WRONLY without O_TRUNC edits the document's bytes in place (like
    any file): overwriting `alpha` with `omega` at its offset saves the
    whole edited document."""
    rel = fx.rels()["managed"]
    before = cat_bytes(wmount.p(rel))
    off = before.index(TOKEN.encode())
    fd = os.open(wmount.p(rel), os.O_WRONLY)
    os.pwrite(fd, b"omega", off)
    os.close(fd)
    assert managed_doc(wraw, fx.policy) == identity_doc("omega")
    assert cat_bytes(wmount.p(rel)) == before.replace(TOKEN.encode(), b"omega")


def test_not_action_not_resource_accepted(wmount, wiam, wraw, fx):
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "NotAction": ["iam:*"], "NotResource": "arn:aws:s3:::x/*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}
    assert py_write(wmount.p(fx.rels()["managed"]), pretty(doc)) is None
    assert managed_doc(wraw, fx.policy) == doc


# --------------------------------------------------------------------------
# scratch files and editor renames
# --------------------------------------------------------------------------

SCRATCH_NAMES = [".hidden", "p.json~", "#p.json#", ".p.json.swp", "4913", "notes.txt",
                 "no-suffix"]


@pytest.mark.parametrize("where", ["policies", "users/{user}/policies", "roles/{role}",
                                   "users/{user}"])
def test_scratch_files_stay_local(wmount, wiam, wraw, fx, where):
    d = wmount.p(where.format(user=fx.user, role=fx.role))
    snap = snapshot(wraw)
    calls = wmount.api_calls()
    names = SCRATCH_NAMES if "policies" in where else SCRATCH_NAMES + ["other.json"]
    for n in names:
        assert py_write(d / n, pretty(identity_doc("scratch"))) is None, n
    for n in names:
        assert cat_bytes(d / n) == pretty(identity_doc("scratch")), n
        with open(d / n, "ab") as fh:
            fh.write(b"more")
        assert cat_bytes(d / n).endswith(b"more")
    listing = os.listdir(d)
    assert set(names) <= set(listing), listing
    assert not mutations(new_calls(calls, wmount.api_calls()))
    assert_unchanged(wraw, snap)
    os.rename(d / names[0], d / "renamed~")
    for n in names[1:] + ["renamed~"]:
        os.unlink(d / n)
    assert not set(names + ["renamed~"]) & set(os.listdir(d))
    assert_unchanged(wraw, snap)


def test_scratch_symlink_lock(wmount, wiam, wraw, fx):
    """emacs-style lock: a dangling symlink beside the document."""
    d = wmount.p("policies")
    snap = snapshot(wraw)
    os.symlink("user@host.1234:1700000000", d / f".#{fx.policy}.json")
    assert os.readlink(d / f".#{fx.policy}.json") == "user@host.1234:1700000000"
    expect_errno(oserr(os.symlink, "x", d / f".#{fx.policy}.json"), errno.EEXIST,
                 "a second lock")
    os.unlink(d / f".#{fx.policy}.json")
    assert_unchanged(wraw, snap)


@pytest.mark.parametrize("which", ["managed", "user_inline", "trust", "user_tags"])
def test_document_renamed_to_backup_then_rewritten(make_wmount, wiam, wraw, fx, which):
    """vim/emacs backup step: rename X -> X~ moves the content and hides X
    (IAM unchanged); creating X and writing it saves an update (no new
    entity); X~ keeps the old content."""
    m = make_wmount()
    rel = fx.rels()[which]
    path = m.p(rel)
    before = cat_bytes(path)
    snap = snapshot(wraw)
    os.rename(path, str(path) + "~")
    assert cat_bytes(str(path) + "~") == before
    assert path.name not in os.listdir(path.parent)
    assert not os.path.exists(path)
    assert_unchanged(wraw, snap, "the backup rename")
    calls = m.api_calls()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)  # vim: no O_TRUNC
    os.write(fd, before.replace(TOKEN.encode(), NEW_TOKEN.encode()))
    os.fsync(fd)
    os.close(fd)
    made = mutations(new_calls(calls, m.api_calls()))
    assert "CreatePolicy" not in made and len(made) >= 1, made
    assert iam_value(wiam, wraw, fx, which) == expected_after_word_change(which)
    assert cat_bytes(str(path) + "~") == before
    os.unlink(str(path) + "~")
    assert cat_bytes(path) == before.replace(TOKEN.encode(), NEW_TOKEN.encode())


def test_backup_rename_without_save_shows_iam_again(make_wmount, wiam, wraw, fx):
    """If no save follows the backup rename, the document's name shows
    IAM's document again once the cache expires (and no sooner than 10 s,
    however short the TTL: an editor writes the name again well within)."""
    m = make_wmount(args=["--cache-ttl", "2"])
    rel = fx.rels()["managed"]
    path = m.p(rel)
    before = cat_bytes(path)
    os.rename(path, str(path) + "~")
    assert not os.path.exists(path)
    time.sleep(5)
    assert not os.path.exists(path), "back before an editor could write it"
    assert wait_for(lambda: os.path.exists(path), 12, 0.25), "the document did not come back"
    assert cat_bytes(path) == before
    assert managed_doc(wraw, fx.policy) == identity_doc()


def test_scratch_renamed_onto_new_document_creates(wmount, wiam, wraw):
    name = uniq("wt-mvnew-")
    tmp = wmount.p("policies/.upload.tmp")
    assert py_write(tmp, pretty(identity_doc("mvnew"))) is None
    calls = wmount.api_calls()
    os.rename(tmp, wmount.p(f"policies/{name}.json"))
    assert mutations(new_calls(calls, wmount.api_calls())) == {"CreatePolicy": 1}
    assert managed_doc(wraw, name) == identity_doc("mvnew")
    assert not os.path.exists(tmp)


# --------------------------------------------------------------------------
# mkdir / rmdir
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["users", "groups", "roles"])
def test_mkdir_creates_and_rmdir_deletes(wmount, wiam, wraw, kind):
    name = uniq("wt-mk-")
    op = {"users": "User", "groups": "Group", "roles": "Role"}[kind]
    calls = wmount.api_calls()
    os.mkdir(wmount.p(f"{kind}/{name}"))
    assert mutations(new_calls(calls, wmount.api_calls())) == {f"Create{op}": 1}
    assert exists(wiam, kind, name)
    assert name in os.listdir(wmount.p(kind))
    assert {"policies", "attached"} <= set(os.listdir(wmount.p(f"{kind}/{name}")))
    if kind == "roles":
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRole"}]}
        assert trust_document(wraw, name) == trust
        assert json.loads(cat_bytes(wmount.p(f"roles/{name}/trust-policy.json"))) == trust
    expect_errno(oserr(os.mkdir, wmount.p(f"{kind}/{name}")), errno.EEXIST, "mkdir twice")
    calls = wmount.api_calls()
    os.rmdir(wmount.p(f"{kind}/{name}"))
    assert mutations(new_calls(calls, wmount.api_calls())) == {f"Delete{op}": 1}
    assert not exists(wiam, kind, name)
    assert name not in os.listdir(wmount.p(kind))


def _busy_user(wiam, what: str) -> str:
    name = uniq("wt-busy-")
    wiam.create_user(UserName=name)
    if what == "inline":
        wiam.put_user_policy(UserName=name, PolicyName="p",
                             PolicyDocument=json.dumps(identity_doc()))
    elif what == "attached":
        wiam.attach_user_policy(UserName=name,
                                PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    elif what == "group":
        g = uniq("wt-bg-")
        wiam.create_group(GroupName=g)
        wiam.add_user_to_group(GroupName=g, UserName=name)
    elif what == "key":
        wiam.create_access_key(UserName=name)
    return name


@pytest.mark.parametrize("what", ["inline", "attached", "group", "key"])
def test_rmdir_user_not_empty(wmount, wiam, wraw, what):
    name = _busy_user(wiam, what)
    snap = snapshot(wraw)
    keys = wiam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    calls = wmount.api_calls()
    expect_errno(oserr(os.rmdir, wmount.p(f"users/{name}")), errno.ENOTEMPTY,
                 f"rmdir of a user with {what}")
    assert not mutations(new_calls(calls, wmount.api_calls()))
    assert_unchanged(wraw, snap)
    assert wiam.list_access_keys(UserName=name)["AccessKeyMetadata"] == keys
    assert name in os.listdir(wmount.p("users"))


@pytest.mark.parametrize("what", ["inline", "attached", "member"])
def test_rmdir_group_not_empty(wmount, wiam, wraw, what):
    g = uniq("wt-bgrp-")
    wiam.create_group(GroupName=g)
    if what == "inline":
        wiam.put_group_policy(GroupName=g, PolicyName="p", PolicyDocument=json.dumps(identity_doc()))
    elif what == "attached":
        wiam.attach_group_policy(GroupName=g, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    else:
        u = uniq("wt-bmem-")
        wiam.create_user(UserName=u)
        wiam.add_user_to_group(GroupName=g, UserName=u)
    snap = snapshot(wraw)
    expect_errno(oserr(os.rmdir, wmount.p(f"groups/{g}")), errno.ENOTEMPTY,
                 f"rmdir of a group with {what}")
    assert_unchanged(wraw, snap)


@pytest.mark.parametrize("what", ["inline", "attached"])
def test_rmdir_role_not_empty(wmount, wiam, wraw, what):
    r = uniq("wt-brole-")
    wiam.create_role(RoleName=r, AssumeRolePolicyDocument=json.dumps(trust_doc()))
    if what == "inline":
        wiam.put_role_policy(RoleName=r, PolicyName="p", PolicyDocument=json.dumps(identity_doc()))
    else:
        wiam.attach_role_policy(RoleName=r, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    snap = snapshot(wraw)
    expect_errno(oserr(os.rmdir, wmount.p(f"roles/{r}")), errno.ENOTEMPTY,
                 f"rmdir of a role with {what}")
    assert_unchanged(wraw, snap)


def test_rmdir_after_emptying_with_rm(wmount, wiam, wraw):
    """The filesystem way: rm the inline policy, the attachment and the
    group link, then rmdir succeeds."""
    name = uniq("wt-empty-")
    g = uniq("wt-eg-")
    wiam.create_user(UserName=name)
    wiam.create_group(GroupName=g)
    wiam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(identity_doc()))
    wiam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    wiam.add_user_to_group(GroupName=g, UserName=name)
    u = wmount.p(f"users/{name}")
    ok(["rm", u / "policies/p.json", u / "attached/ReadOnlyAccess", u / f"groups/{g}"])
    ok(["rmdir", u])
    assert not exists(wiam, "users", name)
    assert exists(wiam, "groups", g)


# --------------------------------------------------------------------------
# links: attachments and memberships
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["users", "groups", "roles"])
@pytest.mark.parametrize("scope", ["policies", "aws-policies"])
def test_ln_attaches_and_rm_detaches(wmount, wiam, wraw, fx, kind, scope):
    ent = {"users": fx.user, "groups": fx.group, "roles": fx.role}[kind]
    pname = fx.policy if scope == "policies" else "ReadOnlyAccess"
    arn = policy_arn(fx.policy) if scope == "policies" else \
        "arn:aws:iam::aws:policy/ReadOnlyAccess"
    op = {"users": "User", "groups": "Group", "roles": "Role"}[kind]
    target = f"../../../{scope}/{pname}.json"
    link = wmount.p(f"{kind}/{ent}/attached/{pname}")
    calls = wmount.api_calls()
    ok(["ln", "-s", target, link])
    assert mutations(new_calls(calls, wmount.api_calls())) == {f"Attach{op}Policy": 1}
    assert attached_arns(wiam, kind, ent) == [arn]
    assert os.readlink(link) == target
    assert json.loads(cat_bytes(link)) == (identity_doc() if scope == "policies"
                                           else json.loads(cat_bytes(wmount.p(
                                               f"aws-policies/{pname}.json"))))
    calls = wmount.api_calls()
    ok(["rm", link])
    assert mutations(new_calls(calls, wmount.api_calls())) == {f"Detach{op}Policy": 1}
    assert attached_arns(wiam, kind, ent) == []
    assert pname not in os.listdir(link.parent)


def test_ln_wrong_name_or_target_refused(wmount, wiam, wraw, fx):
    snap = snapshot(wraw)
    d = wmount.p(f"users/{fx.user}/attached")
    for name, target in (("other", f"../../../policies/{fx.policy}.json"),
                         (fx.policy, f"../../../users/{fx.user}"),
                         ("nosuch", "../../../policies/nosuch.json")):
        err = oserr(os.symlink, target, d / name)
        assert err is not None and err.errno in (errno.EINVAL, errno.ENOENT), (name, target, err)
    err = oserr(os.symlink, "../../../users/nosuch", wmount.p(f"groups/{fx.group}/members/nosuch"))
    assert err is not None and err.errno in (errno.EINVAL, errno.ENOENT), err
    assert_unchanged(wraw, snap)


def test_ln_group_membership_both_ways(wmount, wiam, wraw, fx):
    calls = wmount.api_calls()
    ok(["ln", "-s", f"../../../groups/{fx.group}", wmount.p(f"users/{fx.user}/groups/{fx.group}")])
    assert mutations(new_calls(calls, wmount.api_calls())) == {"AddUserToGroup": 1}
    assert groups_of(wiam, fx.user) == [fx.group]
    assert os.listdir(wmount.p(f"groups/{fx.group}/members")) == [fx.user]
    assert os.readlink(wmount.p(f"groups/{fx.group}/members/{fx.user}")) == \
        f"../../../users/{fx.user}"
    ok(["rm", wmount.p(f"groups/{fx.group}/members/{fx.user}")])
    assert groups_of(wiam, fx.user) == []
    assert os.listdir(wmount.p(f"users/{fx.user}/groups")) == []

    other = uniq("wt-mem-")
    wiam.create_user(UserName=other)
    calls = wmount.api_calls()
    ok(["ln", "-s", f"../../../users/{other}", wmount.p(f"groups/{fx.group}/members/{other}")])
    assert mutations(new_calls(calls, wmount.api_calls())) == {"AddUserToGroup": 1}
    assert members_of(wiam, fx.group) == [other]
    assert os.listdir(wmount.p(f"users/{other}/groups")) == [fx.group]
    calls = wmount.api_calls()
    ok(["rm", wmount.p(f"users/{other}/groups/{fx.group}")])
    assert mutations(new_calls(calls, wmount.api_calls())) == {"RemoveUserFromGroup": 1}
    assert members_of(wiam, fx.group) == []


# --------------------------------------------------------------------------
# mv
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["users", "groups"])
def test_mv_renames_user_and_group(wmount, wiam, wraw, fx, kind):
    old = fx.user if kind == "users" else fx.group
    new = uniq("wt-ren-")
    calls = wmount.api_calls()
    ok(["mv", wmount.p(f"{kind}/{old}"), wmount.p(f"{kind}/{new}")])
    op = "UpdateUser" if kind == "users" else "UpdateGroup"
    assert mutations(new_calls(calls, wmount.api_calls())) == {op: 1}
    assert exists(wiam, kind, new) and not exists(wiam, kind, old)
    assert inline_names(wiam, kind, new) == [fx.inline]
    listing = os.listdir(wmount.p(kind))
    assert new in listing and old not in listing
    assert json.loads(cat_bytes(wmount.p(f"{kind}/{new}/policies/{fx.inline}.json"))) == \
        identity_doc()


def test_mv_user_keeps_memberships(wmount, wiam, wraw, fx):
    wiam.add_user_to_group(GroupName=fx.group, UserName=fx.user)
    wmount.refresh()
    new = uniq("wt-ren-")
    ok(["mv", wmount.p(f"users/{fx.user}"), wmount.p(f"users/{new}")])
    assert groups_of(wiam, new) == [fx.group]
    assert os.listdir(wmount.p(f"groups/{fx.group}/members")) == [new]
    assert os.listdir(wmount.p(f"users/{new}/groups")) == [fx.group]


@pytest.mark.parametrize("src,dst", [
    ("roles/{role}", "roles/{role}-renamed"),
    ("policies/{policy}.json", "policies/{policy}-renamed.json"),
])
def test_mv_role_or_policy_is_eperm(wmount, wiam, wraw, fx, src, dst):
    s = wmount.p(src.format(role=fx.role, policy=fx.policy))
    d = wmount.p(dst.format(role=fx.role, policy=fx.policy))
    snap = snapshot(wraw)
    expect_errno(oserr(os.rename, s, d), errno.EPERM, f"mv {src}")
    assert_unchanged(wraw, snap)
    assert os.path.exists(s) and not os.path.exists(d)
    assert error_lines_for(wmount, src.format(role=fx.role, policy=fx.policy)), \
        wmount.errors_text()


def test_mv_user_onto_existing_user_refused(wmount, wiam, wraw, fx):
    other = uniq("wt-oth-")
    wiam.create_user(UserName=other)
    snap = snapshot(wraw)
    err = oserr(os.rename, wmount.p(f"users/{fx.user}"), wmount.p(f"users/{other}"))
    assert err is not None and err.errno in (errno.EEXIST, errno.ENOTEMPTY), err
    assert_unchanged(wraw, snap)


# --------------------------------------------------------------------------
# rm of managed policies
# --------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["users", "groups", "roles"])
def test_rm_attached_policy_is_ebusy(wmount, wiam, wraw, fx, where):
    """moto would delete an attached policy; iamfs checks first. rm itself
    returns (`install` over an attached policy unlinks it first, and is a
    save); once its grace passes the delete is refused, logged with EBUSY,
    and the name shows the policy again."""
    arn = policy_arn(fx.policy)
    ent = {"users": fx.user, "groups": fx.group, "roles": fx.role}[where]
    getattr(wiam, f"attach_{where[:-1]}_policy")(
        **{f"{where[:-1].capitalize()}Name": ent, "PolicyArn": arn})
    wiam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(identity_doc("x")))
    snap = snapshot(wraw)
    calls = wmount.api_calls()
    rel = f"policies/{fx.policy}.json"
    ok(["rm", wmount.p(rel)])
    assert wait_for(lambda: error_lines_for(wmount, rel), RM_GRACE + 5), wmount.errors_text()
    lines = error_lines_for(wmount, rel)
    assert any("EBUSY" in l and f"{where}/{ent}" in l for l in lines), lines
    assert not mutations(new_calls(calls, wmount.api_calls()))
    assert_unchanged(wraw, snap)
    assert os.path.exists(wmount.p(rel))


def test_rm_unattached_policy_deletes_versions_then_policy(wmount, wiam, wraw):
    name = uniq("wt-del-")
    arn = wiam.create_policy(PolicyName=name,
                             PolicyDocument=json.dumps(identity_doc()))["Policy"]["Arn"]
    for i in range(2):
        wiam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(identity_doc(f"d{i}")))
    wmount.refresh()
    calls = wmount.api_calls()
    ok(["rm", wmount.p(f"policies/{name}.json")])
    assert f"{name}.json" not in os.listdir(wmount.p("policies"))
    assert wait_for(lambda: name not in local_policy_names(wiam), RM_GRACE + 5)
    made = mutations(new_calls(calls, wmount.api_calls()))
    assert made == {"DeletePolicyVersion": 2, "DeletePolicy": 1}, made
    assert name not in local_policy_names(wiam)
    assert f"{name}.json" not in os.listdir(wmount.p("policies"))


def test_rm_aws_policy_is_eperm(wmount, wiam, wraw):
    snap = snapshot(wraw)
    expect_errno(oserr(os.unlink, wmount.p("aws-policies/ReadOnlyAccess.json")), errno.EPERM,
                 "rm of an AWS-managed policy")
    assert_unchanged(wraw, snap)


# --------------------------------------------------------------------------
# --read-only
# --------------------------------------------------------------------------

def test_read_only_mount_refuses_every_change(make_wmount, wiam, wraw, fx):
    m = make_wmount(args=["--read-only"])
    other = uniq("wt-ro-")
    wiam.create_user(UserName=other)
    wiam.add_user_to_group(GroupName=fx.group, UserName=other)
    wiam.attach_user_policy(UserName=other, PolicyArn=policy_arn(fx.policy))
    snap = snapshot(wraw)
    P = m.p
    attempts = {
        "overwrite managed": lambda: py_write(P(f"policies/{fx.policy}.json"),
                                              pretty(identity_doc("ro"))),
        "new managed": lambda: py_write(P("policies/ro-new.json"), pretty(identity_doc())),
        "inline": lambda: py_write(P(f"users/{fx.user}/policies/{fx.inline}.json"),
                                   pretty(identity_doc("ro"))),
        "trust": lambda: py_write(P(f"roles/{fx.role}/trust-policy.json"),
                                  pretty(trust_doc("ro"))),
        "tags": lambda: py_write(P(f"users/{fx.user}/tags.json"), b'{"a": "b"}'),
        "scratch": lambda: py_write(P("policies/.swapfile"), b"x"),
        "rm inline": lambda: oserr(os.unlink, P(f"users/{fx.user}/policies/{fx.inline}.json")),
        "rm managed": lambda: oserr(os.unlink, P(f"policies/{fx.policy}.json")),
        "mkdir": lambda: oserr(os.mkdir, P("users/ro-new-user")),
        "rmdir": lambda: oserr(os.rmdir, P(f"users/{fx.user}")),
        "ln attach": lambda: oserr(os.symlink, f"../../../policies/{fx.policy}.json",
                                   P(f"roles/{fx.role}/attached/{fx.policy}")),
        "ln group": lambda: oserr(os.symlink, f"../../../groups/{fx.group}",
                                  P(f"users/{fx.user}/groups/{fx.group}")),
        "rm attach": lambda: oserr(os.unlink, P(f"users/{other}/attached/{fx.policy}")),
        "rm member": lambda: oserr(os.unlink, P(f"groups/{fx.group}/members/{other}")),
        "mv user": lambda: oserr(os.rename, P(f"users/{fx.user}"), P("users/ro-renamed")),
        "mv to backup": lambda: oserr(os.rename, P(f"policies/{fx.policy}.json"),
                                      P(f"policies/{fx.policy}.json~")),
        "truncate": lambda: oserr(os.truncate, P(f"policies/{fx.policy}.json"), 0),
    }
    wrong = {}
    for what, attempt in attempts.items():
        err = attempt()
        if err is None or err.errno != errno.EROFS:
            wrong[what] = errno_name(err)
    assert not wrong, f"not EROFS on a --read-only mount: {wrong}"
    assert_unchanged(wraw, snap)
    assert os.path.exists(P(f"policies/{fx.policy}.json"))


# --------------------------------------------------------------------------
# saving when IAM changed behind the mount's back (warm cache)
# --------------------------------------------------------------------------

def _change_behind(wiam, f: Fixture, which: str):
    """Someone else changes the document in IAM after the mount read it."""
    other = json.dumps(identity_doc("someone-else"))
    if which == "managed":
        wiam.create_policy_version(PolicyArn=policy_arn(f.policy), PolicyDocument=other,
                                   SetAsDefault=True)
    elif which == "user_inline":
        wiam.put_user_policy(UserName=f.user, PolicyName=f.inline, PolicyDocument=other)
    elif which == "trust":
        wiam.update_assume_role_policy(RoleName=f.role,
                                       PolicyDocument=json.dumps(trust_doc("someone-else")))
    elif which == "user_tags":
        wiam.tag_user(UserName=f.user, Tags=[{"Key": "extra", "Value": "someone-else"}])


@pytest.mark.parametrize("which", ["managed", "user_inline", "trust", "user_tags"])
def test_save_is_not_lost_when_iam_changed_meanwhile(wmount, wiam, wraw, fx, which):
    """The mount read document A (cached); someone else set B in IAM; the
    user saves A (e.g. `cp` of a saved copy to revert the change). IAM must
    end with A: a save is never skipped as "unchanged" by comparing with a
    stale copy, and tags are diffed against IAM's current tags."""
    rel = fx.rels()[which]
    a = cat_bytes(wmount.p(rel))  # warms the cache
    _change_behind(wiam, fx, which)
    err = py_write(wmount.p(rel), a)
    assert err is None, err
    want = json.loads(a)
    got = iam_value(wiam, wraw, fx, which)
    assert got == want, f"saved {rel} = A, but IAM has {got!r} (the save was lost)"


# --------------------------------------------------------------------------
# paths and names with IAM's punctuation
# --------------------------------------------------------------------------

def test_policy_with_a_path_overwrite_and_attach(wmount, wiam, wraw, fx):
    """A managed policy under /team/ops/ is saved and attached by its
    real ARN (the file and the link name carry no path)."""
    name = uniq("wt-path-")
    arn = wiam.create_policy(PolicyName=name, Path="/team/ops/",
                             PolicyDocument=json.dumps(identity_doc()))["Policy"]["Arn"]
    wmount.refresh()
    assert py_write(wmount.p(f"policies/{name}.json"), pretty(identity_doc("pathed"))) is None
    assert policy_document(wraw, arn) == identity_doc("pathed")
    ok(["ln", "-s", f"../../../policies/{name}.json", wmount.p(f"users/{fx.user}/attached/{name}")])
    assert attached_arns(wiam, "users", fx.user) == [arn]
    ok(["rm", wmount.p(f"users/{fx.user}/attached/{name}")])
    assert attached_arns(wiam, "users", fx.user) == []


def test_names_with_iam_punctuation(wmount, wiam, wraw):
    user = uniq("first.last+x=y,z@ex_a-")
    pol = uniq("my.pol+x=y,z@ex_a-")
    os.mkdir(wmount.p(f"users/{user}"))
    assert exists(wiam, "users", user)
    assert py_write(wmount.p(f"users/{user}/policies/{pol}.json"), pretty(identity_doc())) is None
    assert inline_names(wiam, "users", user) == [pol]
    assert py_write(wmount.p(f"policies/{pol}.json"), pretty(identity_doc("dots"))) is None
    assert managed_doc(wraw, pol) == identity_doc("dots")
    ok(["ln", "-s", f"../../../policies/{pol}.json", wmount.p(f"users/{user}/attached/{pol}")])
    assert attached_arns(wiam, "users", user) == [policy_arn(pol)]
    renamed = uniq("renamed.user@ex-")
    ok(["mv", wmount.p(f"users/{user}"), wmount.p(f"users/{renamed}")])
    assert exists(wiam, "users", renamed) and not exists(wiam, "users", user)
    assert os.listdir(wmount.p(f"users/{renamed}/attached")) == [pol]


def test_backup_rename_and_back_makes_no_call(wmount, wiam, wraw, fx):
    """mv X X.bak; mv X.bak X (an editor's backup undone): no IAM call, X
    reads as before."""
    rel = fx.rels()["managed"]
    path = wmount.p(rel)
    before = cat_bytes(path)
    snap = snapshot(wraw)
    calls = wmount.api_calls()
    os.rename(path, str(path) + ".bak")
    assert not os.path.exists(path)
    os.rename(str(path) + ".bak", path)
    assert not mutations(new_calls(calls, wmount.api_calls()))
    assert_unchanged(wraw, snap)
    assert cat_bytes(path) == before
    assert not os.path.exists(str(path) + ".bak")
