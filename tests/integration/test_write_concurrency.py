"""Concurrent saves: eight writers of eight documents all land; eight
writers of one document leave exactly one writer's version (never a mix of
two), in IAM and in what the mount reads."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from write_helpers import *  # noqa: F401,F403

pytestmark = pytest.mark.fresh_mount

N = 8


def variant(i: int, kind: str = "identity") -> dict:
    """Writer i's document: valid, distinct, and of a distinct length (so
    that a mix of two writers' bytes cannot pass for either)."""
    if kind == "tags":
        return {"writer": str(i), "pad": "p" * (10 * i)}
    if kind == "trust":
        doc = trust_doc(f"writer{i}")
        doc["Statement"][0]["Sid"] = "S" * (5 * i + 1)
        return doc
    return identity_doc(f"writer{i}", actions=[f"s3:GetObject{'x' * (7 * i)}"],
                        sid="W" * (3 * i + 1))


def run_writers(jobs, *, chunk: int = 48, pause: float = 0.002):
    """Runs `jobs` (path, bytes, how) at once, each in its own thread,
    writing in small chunks with pauses so the writers interleave. Returns
    the OSError (or None) of each."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def work(k, path, data, how):
        try:
            barrier.wait(10)
            if how == "rename":
                tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.w{k}")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            else:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                for i in range(0, len(data), chunk):
                    os.write(fd, data[i:i + chunk])
                    time.sleep(pause)
            finally:
                os.close(fd)
            if how == "rename":
                os.replace(tmp, path)
        except OSError as e:
            results[k] = e
        except threading.BrokenBarrierError as e:
            results[k] = OSError(f"barrier: {e}")

    threads = [threading.Thread(target=work, args=(k, str(p), d, h), daemon=True)
               for k, (p, d, h) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a writer hung (the filesystem did not answer within 60s)"
    return results


def test_eight_documents_at_once(wmount, wiam, wraw, fx):
    new = uniq("wt-conc-")
    f2 = make_fixture(wiam, "wc")
    wmount.refresh()
    want = {
        f"policies/{fx.policy}.json": ("managed", identity_doc("c0")),
        f"policies/{f2.policy}.json": ("managed", identity_doc("c1")),
        f"policies/{new}.json": ("new", identity_doc("c2")),
        f"users/{fx.user}/policies/{fx.inline}.json": ("inline", identity_doc("c3")),
        f"groups/{fx.group}/policies/{fx.inline}.json": ("inline", identity_doc("c4")),
        f"roles/{fx.role}/policies/{fx.inline}.json": ("inline", identity_doc("c5")),
        f"roles/{fx.role}/trust-policy.json": ("trust", trust_doc("c6")),
        f"users/{fx.user}/tags.json": ("tags", {"c": "7"}),
    }
    jobs = [(wmount.p(rel), pretty(doc), "trunc" if i % 2 else "rename")
            for i, (rel, (_, doc)) in enumerate(want.items())]
    results = run_writers(jobs)
    assert all(r is None for r in results), [(j[0], r) for j, r in zip(jobs, results) if r]
    assert managed_doc(wraw, fx.policy) == identity_doc("c0")
    assert managed_doc(wraw, f2.policy) == identity_doc("c1")
    assert managed_doc(wraw, new) == identity_doc("c2")
    assert inline_document(wraw, "users", fx.user, fx.inline) == identity_doc("c3")
    assert inline_document(wraw, "groups", fx.group, fx.inline) == identity_doc("c4")
    assert inline_document(wraw, "roles", fx.role, fx.inline) == identity_doc("c5")
    assert trust_document(wraw, fx.role) == trust_doc("c6")
    assert tags_of(wiam, "users", fx.user) == {"c": "7"}
    for rel, (_, doc) in want.items():
        assert json.loads(cat_bytes(wmount.p(rel))) == doc, rel


def one_of(got, candidates, what):
    assert got in candidates, (f"{what} is none of the written versions (a mix?): "
                               f"{json.dumps(got)[:400]}")
    return candidates.index(got)


@pytest.mark.parametrize("how", ["trunc", "rename"])
@pytest.mark.parametrize("which", ["managed", "user_inline", "trust", "user_tags"])
def test_eight_writers_one_document(wmount, wiam, wraw, fx, which, how):
    rel = fx.rels()[which]
    kind = {"trust": "trust", "user_tags": "tags"}.get(which, "identity")
    docs = [variant(i, kind) for i in range(N)]
    results = run_writers([(wmount.p(rel), pretty(d), how) for d in docs])
    failed = [(i, r) for i, r in enumerate(results) if r]
    assert not failed, f"writers failed: {failed}"
    got = iam_value(wiam, wraw, fx, which)
    k = one_of(got, docs, f"IAM's {rel}")
    text = cat_bytes(wmount.p(rel))
    assert json.loads(text) == docs[k], f"the mount reads {text[:300]!r}, IAM has writer {k}"
    if which == "managed":
        arn = policy_arn(fx.policy)
        vs = version_ids(wiam, arn)
        assert len(vs) <= 5, vs
        for v in vs:
            d = decode_document(wraw.get_policy_version(PolicyArn=arn, VersionId=v)
                                ["PolicyVersion"]["Document"])
            assert d == identity_doc() or d in docs, f"version {v} is a mix: {d}"
    # No writer's temp file (rename variant) became anything.
    assert not [n for n in os.listdir(wmount.p(rel).parent) if ".w" in n]


@pytest.mark.parametrize("how", ["trunc", "rename"])
def test_eight_writers_create_the_same_new_policy(wmount, wiam, wraw, how):
    """Eight `>` (or temp file + rename) of a policy that does not exist
    yet: one policy, holding exactly one writer's document, every version
    one writer's."""
    name = uniq("wt-race-")
    rel = f"policies/{name}.json"
    docs = [variant(i) for i in range(N)]
    before = local_policy_names(wiam)
    results = run_writers([(wmount.p(rel), pretty(d), how) for d in docs])
    assert local_policy_names(wiam) == before | {name}
    got = managed_doc(wraw, name)
    k = one_of(got, docs, f"IAM's {rel}")
    errors = [(i, errno_name(r)) for i, r in enumerate(results) if r]
    assert not errors, f"writers failed: {errors}"
    arn = policy_arn(name)
    for v in version_ids(wiam, arn):
        d = decode_document(wraw.get_policy_version(PolicyArn=arn, VersionId=v)
                            ["PolicyVersion"]["Document"])
        assert d in docs, f"version {v} is a mix: {json.dumps(d)[:300]}"
    assert json.loads(cat_bytes(wmount.p(rel))) == docs[k]


def test_eight_writers_create_the_same_new_inline_policy(wmount, wiam, wraw, fx):
    rel = f"users/{fx.user}/policies/raced.json"
    docs = [variant(i) for i in range(N)]
    results = run_writers([(wmount.p(rel), pretty(d), "trunc") for d in docs])
    got = inline_document(wraw, "users", fx.user, "raced")
    k = one_of(got, docs, f"IAM's {rel}")
    errors = [(i, errno_name(r)) for i, r in enumerate(results) if r]
    assert not errors, f"writers failed: {errors}"
    assert sorted(inline_names(wiam, "users", fx.user)) == sorted([fx.inline, "raced"])
    assert json.loads(cat_bytes(wmount.p(rel))) == docs[k]


def test_eight_mkdirs_of_one_user(wmount, wiam, wraw):
    """Eight mkdir of the same new user: one succeeds, the others get
    EEXIST; one user in IAM."""
    name = uniq("wt-mkrace-")
    barrier = threading.Barrier(N)
    results = [None] * N

    def work(k):
        barrier.wait(10)
        try:
            os.mkdir(wmount.p(f"users/{name}"))
            results[k] = "ok"
        except OSError as e:
            results[k] = errno_name(e)

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    assert sorted(results) == ["EEXIST"] * (N - 1) + ["ok"], results
    assert [u for u in paginate(wiam, "list_users", "Users") if u["UserName"] == name]
