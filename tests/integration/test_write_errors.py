"""Bad input is refused before any IAM call: EINVAL (EACCES/EPERM for
read-only files), IAM unchanged (the whole account compared through boto3
before and after), the old content still readable, and a line in
`.iamfs/errors` naming the path (with line and column for JSON errors).

moto_server accepts much of what IAM refuses (Principal in identity
policies, oversize documents, odd names), so a pass here means iamfs
refused it itself.
"""

from __future__ import annotations

import errno
import json
import os
import re

import pytest

from write_helpers import *  # noqa: F401,F403

pytestmark = pytest.mark.fresh_mount


def compact_len(doc) -> int:
    return len(json.dumps(doc, separators=(",", ":")))


def sized_identity_doc(n_chars: int) -> dict:
    """An identity policy of about n_chars non-whitespace characters (no
    whitespace inside its strings, so compact JSON length is IAM's count)."""
    base = identity_doc("size")
    pad = n_chars - compact_len(base)
    assert pad > 20
    base["Statement"][0]["Action"].append("s3:" + "A" * (pad - 6))
    assert abs(compact_len(base) - n_chars) <= 1, compact_len(base)
    return base


def doc_text(doc) -> bytes:
    return pretty(doc)


GOOD = identity_doc("ok")
BAD_JSON = b'{\n  "Version": "2012-10-17",\n  "Statement": [\n    {"Effect": "Allow",,}\n  ]\n}\n'
NO_ACTION = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}
WRONG_EFFECT = {"Version": "2012-10-17",
                "Statement": [{"Effect": "Permit", "Action": "s3:*", "Resource": "*"}]}
NO_RESOURCE = {"Version": "2012-10-17",
               "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}
OLD_VERSION = {"Version": "2008-10-17",
               "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
PRINCIPAL_IN_IDENTITY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "s3:*", "Resource": "*"}]}
TRUST_NO_PRINCIPAL = {"Version": "2012-10-17",
                      "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
SNOWMAN = {"Version": "2012-10-17", "Statement": [{
    "Sid": "Snow", "Effect": "Allow", "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::snow\u2603/*"}]}
BINARY = b"\x00\x01\x02\xffPK\x03\x04" + bytes(range(256))

# (id, target key in Fixture.rels() or a new name, bytes, errno, JSON position expected)
CASES = [
    ("json-managed", "managed", BAD_JSON, errno.EINVAL, True),
    ("json-inline", "user_inline", BAD_JSON, errno.EINVAL, True),
    ("json-trust", "trust", BAD_JSON, errno.EINVAL, True),
    ("json-tags", "user_tags", b'{"stage": "x",\n "team" "core"}\n', errno.EINVAL, True),
    ("effect-managed", "managed", doc_text(WRONG_EFFECT), errno.EINVAL, False),
    ("effect-inline", "group_inline", doc_text(WRONG_EFFECT), errno.EINVAL, False),
    ("no-action-managed", "managed", doc_text(NO_ACTION), errno.EINVAL, False),
    ("no-action-inline", "role_inline", doc_text(NO_ACTION), errno.EINVAL, False),
    ("no-resource-managed", "managed", doc_text(NO_RESOURCE), errno.EINVAL, False),
    ("version-managed", "managed", doc_text(OLD_VERSION), errno.EINVAL, False),
    ("principal-managed", "managed", doc_text(PRINCIPAL_IN_IDENTITY), errno.EINVAL, False),
    ("principal-inline", "user_inline", doc_text(PRINCIPAL_IN_IDENTITY), errno.EINVAL, False),
    ("trust-no-principal", "trust", doc_text(TRUST_NO_PRINCIPAL), errno.EINVAL, False),
    ("oversize-managed", "managed", doc_text(sized_identity_doc(6300)), errno.EINVAL, False),
    ("oversize-group-inline", "group_inline", doc_text(sized_identity_doc(5300)),
     errno.EINVAL, False),
    ("oversize-role-inline", "role_inline", doc_text(sized_identity_doc(10400)),
     errno.EINVAL, False),
    ("snowman-managed", "managed", doc_text(SNOWMAN), errno.EINVAL, False),
    ("snowman-inline", "user_inline", doc_text(SNOWMAN), errno.EINVAL, False),
    ("whitespace-only-managed", "managed", b"\n  \n", errno.EINVAL, False),
    ("binary-managed", "managed", BINARY, errno.EINVAL, False),
    ("binary-inline", "user_inline", BINARY, errno.EINVAL, False),
    ("binary-tags", "user_tags", BINARY, errno.EINVAL, False),
    ("tags-not-strings", "user_tags", b'{"stage": 1}\n', errno.EINVAL, False),
    ("tags-duplicate-key", "user_tags", b'{"stage": "a",\n "stage": "b"}\n', errno.EINVAL, True),
    ("tags-array", "role_tags", b'[{"Key": "a", "Value": "b"}]\n', errno.EINVAL, False),
    ("tags-long-key", "user_tags", json.dumps({"k" * 129: "v"}).encode(), errno.EINVAL, False),
    ("trust-is-identity", "trust", doc_text(identity_doc()), errno.EINVAL, False),
]


def assert_refused(m, wraw, rel, before_snap, before_bytes, err, want_errno, json_pos):
    assert err is not None, f"writing {rel} succeeded; it should fail with {errno.errorcode[want_errno]}"
    assert err.errno == want_errno, f"{rel}: {errno_name(err)} ({err}), expected " \
                                    f"{errno.errorcode[want_errno]}"
    assert_unchanged(wraw, before_snap, f"a refused write of {rel}")
    lines = error_lines_for(m, rel)
    assert lines, f".iamfs/errors has no line naming {rel}:\n{m.errors_text()}"
    if json_pos:
        assert any(re.search(r"line \d+, column \d+", l) for l in lines), lines
        assert re.search(r"line \d+, column \d+", m.log_path.read_text()), "not in the log"
    if before_bytes is not None:
        assert cat_bytes(m.p(rel)) == before_bytes, f"{rel} no longer reads IAM's document"
    return lines


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_document_refused(wmount, wiam, wraw, fx, case):
    _, which, data, want, json_pos = case
    rel = fx.rels()[which]
    before_bytes = cat_bytes(wmount.p(rel))
    snap = snapshot(wraw)
    calls = wmount.api_calls()
    err = py_write(wmount.p(rel), data)
    assert_refused(wmount, wraw, rel, snap, before_bytes, err, want, json_pos)
    made = mutations(new_calls(calls, wmount.api_calls()))
    assert not made, f"refused write still called {made}"


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in (
    "json-managed", "principal-inline", "trust-no-principal", "binary-tags", "snowman-managed")],
    ids=lambda c: c[0])
def test_bad_document_via_rename_refused(wmount, wiam, wraw, fx, case):
    """The same checks when the content arrives by rename (sed -i, rsync,
    os.replace): rename fails with the error, the temp file stays."""
    _, which, data, want, json_pos = case
    rel = fx.rels()[which]
    target = wmount.p(rel)
    before_bytes = cat_bytes(target)
    snap = snapshot(wraw)
    tmp = target.parent / f".{target.name}.tmp123"
    assert py_write(tmp, data) is None
    try:
        os.replace(tmp, target)
        err = None
    except OSError as e:
        err = e
    assert_refused(wmount, wraw, rel, snap, before_bytes, err, want, json_pos)
    assert cat_bytes(tmp) == data, "the temp file should still be there, unchanged"
    os.unlink(tmp)


def test_bad_new_policy_not_created(wmount, wiam, wraw):
    """A new file with bad content creates nothing, and does not linger."""
    name = uniq("wt-bad-")
    rel = f"policies/{name}.json"
    snap = snapshot(wraw)
    err = py_write(wmount.p(rel), doc_text(PRINCIPAL_IN_IDENTITY))
    assert_refused(wmount, wraw, rel, snap, None, err, errno.EINVAL, False)
    assert name not in local_policy_names(wiam)
    assert not os.path.exists(wmount.p(rel))
    assert f"{name}.json" not in os.listdir(wmount.p("policies"))


def test_inline_aggregate_size_user(wmount, wiam, wraw, fx):
    """A user's inline policies together may hold 2,048 characters: a new
    one that fits alone but not with the existing one is refused."""
    existing = compact_len(identity_doc())
    doc = sized_identity_doc(2048 - existing + 40)
    assert compact_len(doc) < 2048
    rel = f"users/{fx.user}/policies/second.json"
    snap = snapshot(wraw)
    err = py_write(wmount.p(rel), doc_text(doc))
    assert_refused(wmount, wraw, rel, snap, None, err, errno.EINVAL, False)
    assert inline_names(wiam, "users", fx.user) == [fx.inline]
    # The same document fits on a role (10,240).
    rel2 = f"roles/{fx.role}/policies/second.json"
    assert py_write(wmount.p(rel2), doc_text(doc)) is None
    assert inline_document(wraw, "roles", fx.role, "second") == doc


def test_size_just_under_limit_is_accepted(wmount, wiam, wraw, fx):
    doc = sized_identity_doc(6100)
    rel = fx.rels()["managed"]
    assert py_write(wmount.p(rel), doc_text(doc)) is None
    assert managed_doc(wraw, fx.policy) == doc


def test_latin1_is_accepted(wmount, wiam, wraw, fx):
    """U+0020-U+00FF is allowed (the refusal is for what lies outside)."""
    doc = identity_doc("caf\u00e9")
    rel = fx.rels()["user_inline"]
    assert py_write(wmount.p(rel), doc_text(doc)) is None
    assert inline_document(wraw, "users", fx.user, fx.inline) == doc
    assert json.loads(cat_bytes(wmount.p(rel))) == doc


def test_json_error_position_is_right(wmount, wiam, wraw, fx):
    rel = fx.rels()["managed"]
    err = py_write(wmount.p(rel), BAD_JSON)
    assert err is not None and err.errno == errno.EINVAL
    # BAD_JSON's fault: line 4, the second comma of `"Allow",,`.
    lines = error_lines_for(wmount, rel)
    assert any("line 4, column" in l for l in lines), lines


def test_cp_reports_failed_close(wmount, wiam, wraw, fx, tmp_path):
    rel = fx.rels()["managed"]
    src = tmp_path / "bad.json"
    src.write_bytes(doc_text(WRONG_EFFECT))
    snap = snapshot(wraw)
    p = run(["cp", src, wmount.p(rel)])
    assert p.returncode != 0
    assert "failed to close" in p.stderr and "Invalid argument" in p.stderr, p.stderr
    assert_unchanged(wraw, snap)


def test_shell_redirect_ignores_close_but_iam_unchanged(wmount, wiam, wraw, fx, tmp_path):
    """bash's `>` does not check close(); the refusal is still in
    .iamfs/errors and IAM is unchanged."""
    rel = fx.rels()["trust"]
    before = cat_bytes(wmount.p(rel))
    src = tmp_path / "bad.json"
    src.write_bytes(doc_text(TRUST_NO_PRINCIPAL))
    snap = snapshot(wraw)
    sh(f"cat '{src}' > '{wmount.p(rel)}'")
    assert_unchanged(wraw, snap)
    assert error_lines_for(wmount, rel), wmount.errors_text()
    assert cat_bytes(wmount.p(rel)) == before


def test_truncate_alone_is_refused_or_harmless(wmount, wiam, wraw, fx):
    """truncate(2) of a document by path (setattr without an open file)
    cannot be a save: EINVAL, IAM unchanged. A truncate through an open
    file with nothing written after it (`truncate -s 0` = open +
    ftruncate; `: > X` = O_TRUNC) is never committed by itself: no call,
    and the document still reads IAM's content."""
    rel = fx.rels()["managed"]
    before = cat_bytes(wmount.p(rel))
    snap = snapshot(wraw)
    calls = wmount.api_calls()
    try:
        os.truncate(wmount.p(rel), 0)
        err = None
    except OSError as e:
        err = e
    assert err is not None and err.errno == errno.EINVAL, errno_name(err)
    for script in (f"truncate -s 0 '{wmount.p(rel)}'", f": > '{wmount.p(rel)}'"):
        p = sh(script)
        assert p.returncode == 0, (script, p.stderr)
        assert cat_bytes(wmount.p(rel)) == before, f"after {script}"
    assert not mutations(new_calls(calls, wmount.api_calls()))
    assert_unchanged(wraw, snap)
    assert cat_bytes(wmount.p(rel)) == before


# --------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind,name", [
    ("users", "bad name"),
    ("users", "u" * 65),
    ("users", "slash\\x"),
    ("groups", "bad:name"),
    ("groups", "g" * 129),
    ("roles", "r" * 65),
    ("roles", "bad name"),
], ids=["user-space", "user-65", "user-backslash", "group-colon", "group-129", "role-65",
        "role-space"])
def test_mkdir_invalid_name(wmount, wiam, wraw, kind, name):
    snap = snapshot(wraw)
    try:
        os.mkdir(wmount.p(f"{kind}/{name}"))
        err = None
    except OSError as e:
        err = e
    assert err is not None and err.errno == errno.EINVAL, errno_name(err)
    assert_unchanged(wraw, snap)
    assert error_lines_for(wmount, f"{kind}/{name}"), wmount.errors_text()


@pytest.mark.parametrize("rel_tmpl", [
    "policies/bad name.json",
    "policies/" + "p" * 129 + ".json",
    "users/{user}/policies/bad name.json",
    "roles/{role}/policies/bad:name.json",
])
def test_new_policy_invalid_name(wmount, wiam, wraw, fx, rel_tmpl):
    rel = rel_tmpl.format(user=fx.user, role=fx.role)
    snap = snapshot(wraw)
    err = py_write(wmount.p(rel), doc_text(GOOD))
    assert err is not None and err.errno == errno.EINVAL, errno_name(err)
    assert_unchanged(wraw, snap)
    assert error_lines_for(wmount, rel), wmount.errors_text()


# --------------------------------------------------------------------------
# read-only files
# --------------------------------------------------------------------------

READ_ONLY = [
    "users/{user}/user.json",
    "users/{user}/access-keys.json",
    "groups/{group}/group.json",
    "roles/{role}/role.json",
    "aws-policies/ReadOnlyAccess.json",
]


@pytest.mark.parametrize("rel_tmpl", READ_ONLY)
def test_read_only_file_write_is_eacces(wmount, wiam, wraw, fx, rel_tmpl):
    rel = rel_tmpl.format(user=fx.user, group=fx.group, role=fx.role)
    before = cat_bytes(wmount.p(rel))
    snap = snapshot(wraw)
    for mode in ("wb", "r+b", "ab"):
        err = py_write(wmount.p(rel), b"{}\n", mode=mode)
        assert err is not None and err.errno == errno.EACCES, (mode, errno_name(err))
    p = sh(f"echo '{{}}' > '{wmount.p(rel)}'")
    assert p.returncode != 0 and "Permission denied" in p.stderr, p.stderr
    assert_unchanged(wraw, snap)
    assert cat_bytes(wmount.p(rel)) == before
    assert error_lines_for(wmount, rel), wmount.errors_text()


@pytest.mark.parametrize("rel_tmpl", READ_ONLY)
def test_read_only_file_rm_is_eperm(wmount, wiam, wraw, fx, rel_tmpl):
    rel = rel_tmpl.format(user=fx.user, group=fx.group, role=fx.role)
    snap = snapshot(wraw)
    try:
        os.unlink(wmount.p(rel))
        err = None
    except OSError as e:
        err = e
    assert err is not None and err.errno == errno.EPERM, errno_name(err)
    assert_unchanged(wraw, snap)
    assert os.path.exists(wmount.p(rel))


@pytest.mark.parametrize("rel", ["trust", "role_tags", "user_tags"])
def test_rm_of_an_entity_document_comes_back_and_is_logged(wmount, wiam, wraw, fx, rel):
    """A trust policy or tags.json cannot be deleted. rm returns (install
    saves by unlink + create), then the name shows IAM's document again and
    the refusal is in .iamfs/errors; IAM is unchanged."""
    path = wmount.p(fx.rels()[rel])
    before, snap = cat_bytes(path), snapshot(wraw)
    os.unlink(path)
    assert not os.path.exists(path)
    assert wait_for(lambda: os.path.exists(path), RM_GRACE + 5)
    assert cat_bytes(path) == before
    assert_unchanged(wraw, snap)
    lines = error_lines_for(wmount, fx.rels()[rel])
    assert any("EPERM" in l and "cannot be deleted" in l for l in lines), wmount.errors_text()


@pytest.mark.parametrize("rel_tmpl", READ_ONLY + ["roles/{role}/credentials"])
def test_read_only_file_rename_onto_refused(wmount, wiam, wraw, fx, rel_tmpl):
    """A temp file renamed over a file IAM does not let you edit is
    refused; nothing changes, and the name still shows IAM's content (not
    the temp file's)."""
    rel = rel_tmpl.format(user=fx.user, group=fx.group, role=fx.role)
    target = wmount.p(rel)
    before = None if rel.endswith("credentials") else cat_bytes(target)
    tmp = target.parent / f".{target.name}.tmp"
    assert py_write(tmp, b'{"fake": true}\n') is None
    snap = snapshot(wraw)
    try:
        os.replace(tmp, target)
        err = None
    except OSError as e:
        err = e
    after = cat_bytes(target)
    listing = os.listdir(target.parent)
    assert err is not None and err.errno in (errno.EACCES, errno.EPERM), (
        f"rename onto {rel}: {errno_name(err)}; it now reads {after[:80]!r}; "
        f"{target.name} listed {listing.count(target.name)} times")
    assert_unchanged(wraw, snap)
    if before is not None:
        assert after == before
    else:
        assert b"AccessKeyId" in after, after[:80]
    assert listing.count(target.name) <= 1, listing
    os.unlink(tmp)


def test_new_aws_policy_refused(wmount, wiam, wraw):
    snap = snapshot(wraw)
    err = py_write(wmount.p("aws-policies/MyOwn.json"), doc_text(GOOD))
    assert err is not None and err.errno == errno.EACCES, errno_name(err)
    assert_unchanged(wraw, snap)
