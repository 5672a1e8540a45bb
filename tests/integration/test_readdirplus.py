"""Listings with attributes (readdirplus, issue 15).

Every listing request iamfs gets on Linux is READDIRPLUS: the entries come
with their attributes, so `ls -l` and a walk send no lookup per name. Only
what is cached is described; the rest goes out as stand-ins the kernel
keeps for no time. These tests show with real tools that a cold `ls -l`
sends no lookup per role, that a plain `ls` fetches no document, that no
tool ever sees a stand-in's size or date, and that a reader holding a file
keeps whole bytes across a listing that could not describe it (README,
Caching)."""

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


@pytest.fixture(scope="module")
def roles8(wiam):
    prefix = uniq("rdp-")
    names = [f"{prefix}-{i}" for i in range(8)]
    for n in names:
        wiam.create_role(RoleName=n, AssumeRolePolicyDocument=json.dumps(trust_doc()),
                         Description=f"role {n}")
        wiam.put_role_policy(RoleName=n, PolicyName="inl",
                             PolicyDocument=json.dumps(identity_doc()))
    wiam.create_policy(PolicyName=f"{prefix}-managed",
                       PolicyDocument=json.dumps(identity_doc()))
    return names


def ls_sizes(folder) -> dict[str, tuple[int, str]]:
    """Name -> (size, mtime) as `ls -l --time-style=full-iso` shows them."""
    out = {}
    for line in ok(["ls", "-l", "--time-style=+%s.%N", str(folder)]).splitlines()[1:]:
        parts = line.split()
        out[parts[-1]] = (int(parts[4]), parts[5])
    return out


def test_a_cold_ls_l_sends_no_lookup_per_role(make_wmount, roles8):
    m = make_wmount()
    roles = len(os.listdir(m.p("roles")))  # warms the listing only
    m.unmount()
    m = make_wmount()
    before = kernel_requests(m)
    listed = ok(["ls", "-l", m.p("roles")]).splitlines()
    sent = grown(before, kernel_requests(m))
    assert len(listed) - 1 == roles >= 8
    assert sent.get("readdirplus", 0) >= 1, sent
    # The status reads around it make a lookup or two; no lookup per role.
    assert sent.get("lookup", 0) <= 3, sent
    assert "readdir" not in sent, sent
    for name in roles8:
        assert any(line.endswith(" " + name) and line.startswith("d") for line in listed), name


def test_no_tool_sees_a_stand_in(make_wmount, roles8):
    """A cold role folder is listed before its documents are read: ls -l,
    stat and the bytes read agree on every size, and no date is the epoch."""
    m = make_wmount()
    role = m.p(f"roles/{roles8[0]}")
    shown = ls_sizes(role)
    assert {"role.json", "trust-policy.json", "tags.json", "settings.json"} <= set(shown)
    for name, (size, mtime) in shown.items():
        path = role / name
        assert float(mtime) > 1e9, (name, mtime)
        assert os.stat(path).st_size == size, name
        if os.path.isfile(path):
            assert len(open(path, "rb").read()) == size, name
    inline = role / "policies" / "inl.json"
    assert os.stat(inline).st_size == len(open(inline, "rb").read())


def test_a_plain_ls_of_a_cold_folder_reads_no_document(make_wmount, roles8):
    m = make_wmount()
    calls = m.api_calls()
    names = os.listdir(m.p("policies"))
    assert f"{roles8[0].rsplit('-', 1)[0]}-managed.json" in names
    made = new_calls(calls, m.api_calls())
    # The listing, and the folder's bulk read started beside it; never a
    # document per policy.
    assert set(made) <= {"ListPolicies", "GetAccountAuthorizationDetails"}, made
    # ls -l then shows the documents' true sizes.
    for name, (size, _) in ls_sizes(m.p("policies")).items():
        assert len(open(m.p(f"policies/{name}"), "rb").read()) == size, name


@pytest.mark.parametrize("mode", ["read-write", "read-only"])
def test_a_reader_keeps_whole_bytes_across_a_listing_that_cannot_describe_it(
        make_wmount, wiam, roles8, mode):
    """The kernel holds the file and the daemon's cache has expired: the
    listing's entry for it is a stand-in (with the size the kernel holds,
    see vfs::tests), and a reader part-way through reads the rest of the
    same bytes. (With FUSE_AUTO_INVAL_DATA the kernel also asks for the
    attributes again before each read once they expired, which a stand-in's
    have at once.)"""
    args = ["--cache-ttl", "1"] + (["--read-only"] if mode == "read-only" else [])
    m = make_wmount(args=args)
    path = m.p(f"roles/{roles8[1]}/policies/inl.json")
    whole = open(path, "rb").read()
    assert len(whole) > 40
    with open(path, "rb", buffering=0) as f:
        head = f.read(20)
        time.sleep(1.5)                       # every cached value expired
        before = kernel_requests(m)
        ok(["ls", "-l", str(path.parent)])    # the listing, with the held file
        sent = grown(before, kernel_requests(m))
        rest = f.read()
    assert sent.get("readdirplus", 0) >= 1, sent
    assert head + rest == whole
    assert os.stat(path).st_size == len(whole)
