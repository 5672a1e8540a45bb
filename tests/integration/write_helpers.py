"""Shared fixtures and helpers for the write-path tests (test_write_*.py).

Import what a test module needs with `from write_helpers import *`: pytest
finds the fixtures in the module's namespace.

State:

* `wmoto` (module): a moto_server of its own on a free 127.0.0.1 port
  (AWS-managed policies loaded), separate from the read tests' seeded
  account, so that the write tests can compare the *whole* account before
  and after a change (`snapshot`) and never disturb the read tests.
* `wmount` / `make_wmount` (function): a fresh iamfs daemon per test, cold
  cache, so API-call counts and cache state are the test's own. The mount
  point lives outside /tmp (see `MOUNT_BASE`): Debian's vim has
  `backupskip=/tmp/*` and emacs's `normal-backup-enable-predicate` skips
  `temporary-file-directory`, so under /tmp neither editor makes the
  rename-based backup a user's ~/iam mount sees.
* `fx` (function): entities of the test's own, with unique names, each
  document holding the word `alpha` exactly once, so an editor can change
  one word (`alpha` -> `zed`, shortening the file) and the test knows the exact result.

Everything talks to 127.0.0.1 only; every subprocess has a bounded timeout.
"""

from __future__ import annotations

import errno as errno_mod
import itertools
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from iamfs_harness import (  # noqa: F401  (re-exported for the test modules)
    LIVE_MOUNTS, REPO, MotoServer, Mount, Timeout, base_env, cat_bytes, decode_document,
    inline_document, ok, paginate, policy_document, raw_client, run, sh, trust_document,
    wait_for,
)

import seed_sample

ACCOUNT = "123456789012"  # moto's default account
TOKEN, NEW_TOKEN = "alpha", "zed"  # the edit shortens the file
# rm of a document is carried out in IAM this long after it returns, unless
# a create of the name follows (iamfs's UNLINK_GRACE, seconds).
RM_GRACE = 2.0


def _mount_base() -> Path:
    """A directory for mount points that neither vim's backupskip
    (/tmp/*, $TMPDIR/*, $TMP/*, $TEMP/*) nor emacs's temporary-file-directory
    covers."""
    skip = ["/tmp"] + [os.environ[v] for v in ("TMPDIR", "TMP", "TEMP") if os.environ.get(v)]
    skip = [os.path.realpath(s) for s in skip]
    cands = ["/var/tmp", str(REPO / "target")]
    if os.environ.get("IAMFS_WRITE_MOUNT_BASE"):  # e.g. a per-run directory test.sh cleans
        cands.insert(0, os.environ["IAMFS_WRITE_MOUNT_BASE"])
    for cand in cands:
        real = os.path.realpath(cand)
        if os.path.isdir(real) and os.access(real, os.W_OK) and not any(
                real == s or real.startswith(s.rstrip("/") + "/") for s in skip):
            return Path(real)
    raise RuntimeError("no writable directory for mount points outside /tmp and $TMPDIR")


MOUNT_BASE = _mount_base()

_counter = itertools.count(1)


def uniq(prefix: str) -> str:
    """A name no other test in this process uses."""
    return f"{prefix}{os.getpid() % 1000}x{next(_counter)}"


# --------------------------------------------------------------------------
# documents
# --------------------------------------------------------------------------

def identity_doc(resource_word: str = TOKEN, *, actions=("s3:GetObject",), sid=None) -> dict:
    st = {"Effect": "Allow", "Action": list(actions),
          "Resource": f"arn:aws:s3:::{resource_word}-bucket/*"}
    if sid:
        st = {"Sid": sid, **st}
    return {"Version": "2012-10-17", "Statement": [st]}


def trust_doc(principal_word: str = TOKEN) -> dict:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{principal_word}"},
        "Action": "sts:AssumeRole"}]}


def pretty(doc) -> bytes:
    """The contract's rendering (two-space indent, trailing newline)."""
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


# --------------------------------------------------------------------------
# moto and mounts
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wmoto(tmp_path_factory, iamfs_bin):
    server = MotoServer(tmp_path_factory.mktemp("wmoto"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def wclients(wmoto):
    return seed_sample.clients(wmoto.url)


@pytest.fixture(scope="module")
def wiam(wclients):
    return wclients[0]


@pytest.fixture(scope="module")
def wraw(wiam):
    """Documents as the endpoint sent them (see iamfs_harness.raw_client)."""
    return raw_client(wiam)


class WMount(Mount):
    """A Mount whose mount point is under MOUNT_BASE (log and start output
    stay in the pytest workdir, so they survive for the failure report)."""

    def __init__(self, workdir: Path, endpoint, **kw):
        super().__init__(workdir, endpoint, **kw)
        self.path = Path(tempfile.mkdtemp(prefix="iamfs-wt-", dir=MOUNT_BASE))

    def unmount(self):
        super().unmount()
        try:
            if not os.path.ismount(self.path):
                self.path.rmdir()
        except OSError:
            pass

    # -- observations -----------------------------------------------------
    def api_calls(self) -> dict:
        return dict(self.status()["api_calls"])

    def errors_text(self) -> str:
        return cat_bytes(self.p(".iamfs/errors")).decode(errors="replace")


@pytest.fixture
def make_wmount(wmoto, iamfs_bin, tmp_path_factory):
    made: list[WMount] = []

    def make(*, args=(), env=None, start=True) -> WMount:
        m = WMount(tmp_path_factory.mktemp("wmnt"), wmoto.url, args=list(args), env=env)
        made.append(m)
        return m.start() if start else m

    yield make
    for m in made:
        m.unmount()


@pytest.fixture
def wmount(make_wmount) -> WMount:
    return make_wmount()


def new_calls(before: dict, after: dict) -> dict:
    """API calls made between two `api_calls()` readings, by operation."""
    return {k: after.get(k, 0) - before.get(k, 0)
            for k in set(before) | set(after) if after.get(k, 0) != before.get(k, 0)}


MUTATING_OPS = {
    "CreatePolicy", "CreatePolicyVersion", "DeletePolicy", "DeletePolicyVersion",
    "SetDefaultPolicyVersion", "PutUserPolicy", "PutGroupPolicy", "PutRolePolicy",
    "DeleteUserPolicy", "DeleteGroupPolicy", "DeleteRolePolicy", "UpdateAssumeRolePolicy",
    "TagUser", "UntagUser", "TagRole", "UntagRole", "CreateUser", "CreateGroup", "CreateRole",
    "DeleteUser", "DeleteGroup", "DeleteRole", "UpdateUser", "UpdateGroup",
    "AttachUserPolicy", "AttachGroupPolicy", "AttachRolePolicy", "DetachUserPolicy",
    "DetachGroupPolicy", "DetachRolePolicy", "AddUserToGroup", "RemoveUserFromGroup",
    "DeleteAccessKey", "UpdateAccessKey", "CreateAccessKey", "DeleteLoginProfile",
}


def mutations(calls: dict) -> dict:
    return {k: v for k, v in calls.items() if k in MUTATING_OPS}


# --------------------------------------------------------------------------
# ground truth: the whole account (customer side) through boto3
# --------------------------------------------------------------------------

def _docs(items, name_key="PolicyName", doc_key="PolicyDocument") -> dict:
    return {i[name_key]: decode_document(i[doc_key]) for i in items}


def snapshot(wraw) -> dict:
    """Everything a write could change, from GetAccountAuthorizationDetails
    (paginated): users, groups, roles with their ids, inline documents,
    attachments, memberships, tags and trust policies; every
    customer-managed policy with its creation date and every version's
    document. (Access keys are not in it: iamfs never changes them; the
    rmdir test checks them itself.)"""
    users, groups, roles, policies = [], [], [], []
    kw = {"Filter": ["User", "Role", "Group", "LocalManagedPolicy"]}
    while True:
        page = wraw.get_account_authorization_details(**kw)
        users += page["UserDetailList"]
        groups += page["GroupDetailList"]
        roles += page["RoleDetailList"]
        policies += page["Policies"]
        if not page.get("IsTruncated"):
            break
        kw["Marker"] = page["Marker"]
    snap = {"users": {}, "groups": {}, "roles": {}, "policies": {}}
    for u in users:
        snap["users"][u["UserName"]] = {
            "path": u["Path"], "id": u["UserId"],
            "inline": _docs(u.get("UserPolicyList", [])),
            "attached": sorted(a["PolicyArn"] for a in u.get("AttachedManagedPolicies", [])),
            "groups": sorted(u.get("GroupList", [])),
            "tags": [(t["Key"], t["Value"]) for t in u.get("Tags", [])],
        }
    for g in groups:
        snap["groups"][g["GroupName"]] = {
            "path": g["Path"], "id": g["GroupId"],
            "inline": _docs(g.get("GroupPolicyList", [])),
            "attached": sorted(a["PolicyArn"] for a in g.get("AttachedManagedPolicies", [])),
        }
    for r in roles:
        snap["roles"][r["RoleName"]] = {
            "path": r["Path"], "id": r["RoleId"],
            "trust": decode_document(r["AssumeRolePolicyDocument"]),
            "inline": _docs(r.get("RolePolicyList", [])),
            "attached": sorted(a["PolicyArn"] for a in r.get("AttachedManagedPolicies", [])),
            "tags": [(t["Key"], t["Value"]) for t in r.get("Tags", [])],
        }
    for p in policies:
        snap["policies"][p["Arn"]] = {
            "created": str(p.get("CreateDate")),
            "default": p["DefaultVersionId"],
            "versions": {v["VersionId"]: decode_document(v["Document"])
                         for v in p["PolicyVersionList"]},
        }
    return snap


def diff_snapshots(a: dict, b: dict) -> list[str]:
    """Human-readable differences, for assertion messages."""
    out = []

    def walk(x, y, path):
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y), key=str):
                if k not in x:
                    out.append(f"+ {path}/{k}: {json.dumps(y[k], default=str)[:300]}")
                elif k not in y:
                    out.append(f"- {path}/{k}")
                else:
                    walk(x[k], y[k], f"{path}/{k}")
        elif x != y:
            out.append(f"~ {path}: {json.dumps(x, default=str)[:300]} -> "
                       f"{json.dumps(y, default=str)[:300]}")

    walk(a, b, "")
    return out


def assert_unchanged(wraw, before: dict, what: str = ""):
    after = snapshot(wraw)
    d = diff_snapshots(before, after)
    assert not d, f"IAM changed{(' by ' + what) if what else ''}:\n" + "\n".join(d)


def policy_arn(name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{ACCOUNT}:policy{path}{name}"


def managed_doc(wraw, name: str, path: str = "/"):
    return policy_document(wraw, policy_arn(name, path))


def local_policy_names(wiam) -> set[str]:
    return {p["PolicyName"] for p in paginate(wiam, "list_policies", "Policies", Scope="Local")}


def inline_names(wiam, kind: str, entity: str) -> list[str]:
    if kind == "users":
        return paginate(wiam, "list_user_policies", "PolicyNames", UserName=entity)
    if kind == "groups":
        return paginate(wiam, "list_group_policies", "PolicyNames", GroupName=entity)
    return paginate(wiam, "list_role_policies", "PolicyNames", RoleName=entity)


def tags_of(wiam, kind: str, entity: str) -> dict:
    if kind == "users":
        tags = wiam.list_user_tags(UserName=entity)["Tags"]
    else:
        tags = wiam.list_role_tags(RoleName=entity)["Tags"]
    return {t["Key"]: t["Value"] for t in tags}


def version_ids(wiam, arn: str) -> list[str]:
    return sorted(v["VersionId"] for v in wiam.list_policy_versions(PolicyArn=arn)["Versions"])


# --------------------------------------------------------------------------
# per-test entities
# --------------------------------------------------------------------------

@dataclass
class Fixture:
    """A managed policy, a user (inline policy, tags), a group (inline
    policy) and a role (trust policy, inline policy, tags), all new, each
    document containing TOKEN exactly once."""
    policy: str
    user: str
    group: str
    role: str
    inline: str = "inl"
    docs: dict = field(default_factory=dict)  # rel path -> original text (pretty)

    def rels(self) -> dict:
        return {
            "managed": f"policies/{self.policy}.json",
            "user_inline": f"users/{self.user}/policies/{self.inline}.json",
            "group_inline": f"groups/{self.group}/policies/{self.inline}.json",
            "role_inline": f"roles/{self.role}/policies/{self.inline}.json",
            "trust": f"roles/{self.role}/trust-policy.json",
            "user_tags": f"users/{self.user}/tags.json",
            "role_tags": f"roles/{self.role}/tags.json",
        }


def make_fixture(wiam, prefix: str = "wt") -> Fixture:
    f = Fixture(policy=uniq(f"{prefix}-pol-"), user=uniq(f"{prefix}-usr-"),
                group=uniq(f"{prefix}-grp-"), role=uniq(f"{prefix}-rol-"))
    d = json.dumps(identity_doc())
    wiam.create_policy(PolicyName=f.policy, PolicyDocument=d)
    wiam.create_user(UserName=f.user, Tags=[{"Key": "stage", "Value": TOKEN},
                                            {"Key": "team", "Value": "core"}])
    wiam.put_user_policy(UserName=f.user, PolicyName=f.inline, PolicyDocument=d)
    wiam.create_group(GroupName=f.group)
    wiam.put_group_policy(GroupName=f.group, PolicyName=f.inline, PolicyDocument=d)
    wiam.create_role(RoleName=f.role, AssumeRolePolicyDocument=json.dumps(trust_doc()),
                     Tags=[{"Key": "stage", "Value": TOKEN}])
    wiam.put_role_policy(RoleName=f.role, PolicyName=f.inline, PolicyDocument=d)
    return f


@pytest.fixture
def fx(wiam) -> Fixture:
    return make_fixture(wiam)


def iam_value(wiam, wraw, f: Fixture, which: str):
    """What IAM holds for one of the fixture's documents, as JSON (tags as
    a dict)."""
    if which == "managed":
        return managed_doc(wraw, f.policy)
    if which == "user_inline":
        return inline_document(wraw, "users", f.user, f.inline)
    if which == "group_inline":
        return inline_document(wraw, "groups", f.group, f.inline)
    if which == "role_inline":
        return inline_document(wraw, "roles", f.role, f.inline)
    if which == "trust":
        return trust_document(wraw, f.role)
    if which == "user_tags":
        return tags_of(wiam, "users", f.user)
    if which == "role_tags":
        return tags_of(wiam, "roles", f.role)
    raise KeyError(which)


def expected_after_word_change(which: str):
    """The fixture document `which` with TOKEN replaced by NEW_TOKEN."""
    if which in ("managed", "user_inline", "group_inline", "role_inline"):
        return identity_doc(NEW_TOKEN)
    if which == "trust":
        return trust_doc(NEW_TOKEN)
    if which == "user_tags":
        return {"stage": NEW_TOKEN, "team": "core"}
    if which == "role_tags":
        return {"stage": NEW_TOKEN}
    raise KeyError(which)


def check_no_stray_objects(wiam, f: Fixture, *, policies_before: set[str],
                           extra_policies: set[str] = frozenset()):
    """No scratch file became an IAM object: the account's customer-managed
    policies and the fixture's inline policy names are exactly the expected
    ones."""
    now = local_policy_names(wiam)
    assert now == policies_before | set(extra_policies), (
        f"customer-managed policies changed: +{sorted(now - policies_before)} "
        f"-{sorted(policies_before - now)}")
    for kind, ent in (("users", f.user), ("groups", f.group), ("roles", f.role)):
        names = inline_names(wiam, kind, ent)
        assert names == [f.inline], f"{kind}/{ent} inline policies: {names}"


def assert_edited(m: WMount, wiam, wraw, f: Fixture, which: str, *, expect_bytes=None):
    """After an editor changed TOKEN to NEW_TOKEN in document `which`: IAM
    holds the edit, and the mount shows it at once."""
    want = expected_after_word_change(which)
    got = iam_value(wiam, wraw, f, which)
    assert got == want, f"IAM has {got!r} for {which}, expected {want!r}"
    rel = f.rels()[which]
    text = cat_bytes(m.p(rel))
    assert json.loads(text) == want, f"{rel} reads {text!r} after the save"
    size = os.stat(m.p(rel)).st_size
    assert size == len(text), f"{rel}: stat says {size} bytes, cat returns {len(text)}"
    if expect_bytes is not None:
        assert text == expect_bytes, f"{rel} reads {text!r}, expected the saved bytes {expect_bytes!r}"


# --------------------------------------------------------------------------
# errno helpers
# --------------------------------------------------------------------------

def py_write(path, data: bytes, *, mode="wb"):
    """open/write/close in Python; returns None or the OSError raised (by
    open, write or close: close is where a commit's error shows)."""
    try:
        with open(path, mode) as fh:
            fh.write(data)
    except OSError as e:
        return e
    return None


def errno_name(e) -> str:
    return errno_mod.errorcode.get(e.errno, str(e.errno)) if e else "OK"


def error_lines_for(m: WMount, rel: str) -> list[str]:
    """Lines of .iamfs/errors whose path field (or message) names `rel`."""
    return [l for l in m.errors_text().splitlines() if rel in l]


# --------------------------------------------------------------------------
# tmux (interactive editors)
# --------------------------------------------------------------------------

class Tmux:
    """A private tmux server (its own socket) running one command in a pane
    of a fixed size. The command's exit status lands in a file, so waiting
    for the editor to exit is a bounded poll."""

    def __init__(self, workdir: Path, name: str = "t"):
        self.workdir = Path(workdir)
        self.sock = self.workdir / f"tmux-{name}.sock"
        self.rc_file = self.workdir / f"tmux-{name}.rc"
        self.started = False

    def tmux(self, *args, timeout=10) -> subprocess.CompletedProcess:
        return run(["tmux", "-S", self.sock, *args], timeout=timeout)

    def start(self, argv: list[str], env: dict, cwd=None):
        self.rc_file.unlink(missing_ok=True)
        envs = " ".join(f"{k}={_q(v)}" for k, v in env.items())
        inner = f"env -i {envs} " + " ".join(_q(str(a)) for a in argv)
        cmd = f"{inner}; echo $? > {_q(str(self.rc_file))}"
        if cwd:
            cmd = f"cd {_q(str(cwd))} && {cmd}"
        p = self.tmux("-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40", cmd)
        assert p.returncode == 0, f"tmux new-session failed: {p.stderr}"
        self.started = True

    def keys(self, *keys: str, literal=False):
        args = ["send-keys", "-t", "0"] + (["-l"] if literal else []) + list(keys)
        p = self.tmux(*args)
        assert p.returncode == 0, f"tmux send-keys {keys} failed: {p.stderr}"

    def screen(self) -> str:
        p = self.tmux("capture-pane", "-p", "-t", "0")
        return p.stdout if p.returncode == 0 else f"(no pane: {p.stderr})"

    def wait_screen(self, needle: str, timeout: float = 15) -> bool:
        return wait_for(lambda: needle in self.screen(), timeout, 0.1)

    def wait_exit(self, timeout: float = 20) -> int:
        if not wait_for(lambda: self.rc_file.exists() and self.rc_file.read_text().strip(),
                        timeout, 0.1):
            raise Timeout(f"the editor in tmux did not exit within {timeout}s; screen:\n"
                          f"{self.screen()}")
        return int(self.rc_file.read_text().strip())

    def kill(self):
        if self.started:
            run(["tmux", "-S", self.sock, "kill-server"], timeout=10)
            self.started = False


def _q(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


@pytest.fixture
def tmux(tmp_path):
    made = []

    def make(name="t") -> Tmux:
        t = Tmux(tmp_path, f"{name}{len(made)}")
        made.append(t)
        return t

    yield make
    for t in made:
        t.kill()


def editor_env(home: Path, **extra) -> dict:
    """A clean environment for an editor: empty HOME (no user vimrc, no
    ~/.emacs, no nanorc), a terminal type tmux understands, C.UTF-8."""
    home.mkdir(parents=True, exist_ok=True)
    env = {"HOME": str(home), "TERM": "screen", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "SHELL": "/bin/sh"}
    env.update(extra)
    return env


__all__ = [n for n in dir() if not n.startswith("__")]
