"""Safe to leave mounted on a production account (issue 10), with the real
tools: sizes and names a user can type (truncate, dd, touch, mkdir),
`install` and `cp --remove-destination` saving by unlink + create, readers
while saves run, another local user (runuser), `tar` of the mount, and a
daemon killed with SIGKILL.

Each refusal: a clear errno, a line in .iamfs/errors, the daemon alive, IAM
unchanged (the whole account compared through boto3).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
from pathlib import Path

import pytest

from write_helpers import *  # noqa: F401,F403
from write_helpers import MOUNT_BASE

pytestmark = pytest.mark.fresh_mount

MiB = 1 << 20



def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def oserror(fn, *args) -> OSError | None:
    try:
        fn(*args)
    except OSError as e:
        return e
    return None


def assert_alive(m: WMount):
    assert m.pids(), "the daemon is gone"
    assert json.loads(cat_bytes(m.p(".iamfs/status")))["errors"] >= 0


def policy_meta(wiam, name: str) -> tuple[str, int]:
    """(PolicyId, number of versions) of a customer-managed policy."""
    arn = policy_arn(name)
    pid = wiam.get_policy(PolicyArn=arn)["Policy"]["PolicyId"]
    return pid, len(wiam.list_policy_versions(PolicyArn=arn)["Versions"])


# ---- 1. sizes ---------------------------------------------------------------

def test_sizes_past_any_document_are_refused_at_the_write(wmount, wiam, wraw, fx):
    m = wmount
    doc = m.p(fx.rels()["managed"])
    (pid,) = m.pids()
    before = snapshot(wraw)
    original = cat_bytes(doc)

    for target in (doc, Path(str(doc) + "~")):
        p = run(["truncate", "-s", "1T", target])
        assert p.returncode != 0 and "File too large" in p.stderr, p
    p = run(["dd", "if=/dev/zero", f"of={doc}", "bs=1M", "count=200"])
    assert p.returncode != 0 and "File too large" in p.stderr, p.stderr
    p = run(["dd", "if=/dev/zero", f"of={doc}", "bs=1", "count=1", "seek=1T", "conv=notrunc"])
    assert p.returncode != 0 and "File too large" in p.stderr, p.stderr
    e = oserror(os.truncate, doc, 1 << 62)
    assert e is not None and e.errno == errno.EFBIG, e

    # Binary without NUL bytes, saved with cp: not JSON, refused at close.
    junk = bytes(b for b in os.urandom(8192) if b)[:4096]
    src = Path(tempfile.mkdtemp()) / "junk"
    src.write_bytes(junk)
    p = run(["cp", src, doc])
    assert p.returncode != 0 and "Invalid argument" in p.stderr, p.stderr
    p = run(["fallocate", "-l", "1T", doc])
    assert p.returncode != 0, p

    assert_alive(m)
    assert cat_bytes(doc) == original
    assert vm_kib(pid, "VmHWM") < 100 * 1024, f"peak RSS {vm_kib(pid, 'VmHWM')} KiB"
    assert_unchanged(wraw, before, "sizes past the limit")
    lines = error_lines_for(m, fx.rels()["managed"])
    assert sum("EFBIG" in l for l in lines) >= 4, m.errors_text()
    assert any("EINVAL" in l for l in lines), m.errors_text()


def test_editors_files_are_capped_and_statfs_shows_what_is_left(wmount, wraw):
    m = wmount
    d = m.p("policies")
    before = snapshot(wraw)
    vfs = os.statvfs(d)
    free0 = vfs.f_bavail * vfs.f_frsize
    assert vfs.f_namemax == 255
    assert free0 == 64 * MiB, free0

    # One file: at most 16 MiB.
    p = run(["dd", "if=/dev/zero", f"of={d}/big.tmp", "bs=1M", "count=17"])
    assert p.returncode != 0 and "File too large" in p.stderr, p.stderr
    os.unlink(d / "big.tmp")
    # All of them: 64 MiB.
    for i in range(4):
        ok(["dd", "if=/dev/zero", f"of={d}/f{i}.tmp", "bs=1M", "count=16"])
    vfs = os.statvfs(d)
    assert vfs.f_bavail == 0
    p = run(["dd", "if=/dev/zero", f"of={d}/f4.tmp", "bs=4k", "count=1"])
    assert p.returncode != 0 and "No space left" in p.stderr, p.stderr
    for i in range(5):
        if (d / f"f{i}.tmp").exists():
            os.unlink(d / f"f{i}.tmp")
    vfs = os.statvfs(d)
    assert vfs.f_bavail * vfs.f_frsize == free0
    assert_alive(m)
    (pid,) = m.pids()
    assert vm_kib(pid, "VmHWM") < 180 * 1024, "64 MiB of editors' files and the daemon"
    assert_unchanged(wraw, before, "editors' files")
    text = m.errors_text()
    assert "EFBIG" in text and "ENOSPC" in text, text


# ---- 7. names ---------------------------------------------------------------

def test_names_past_name_max_or_not_utf8_are_refused_with_a_message(wmount, wraw):
    m = wmount
    before = snapshot(wraw)
    long_name = "a" * 256
    for argv in (["touch", m.p(f"policies/{long_name}")],
                 ["touch", m.p(f"policies/{'b' * 251}.json")],
                 ["mkdir", m.p(f"users/{long_name}")]):
        p = run(argv)
        assert p.returncode != 0 and "File name too long" in p.stderr, (argv, p)
    # 255 bytes is a name like any other.
    ok(["touch", m.p(f"policies/{'c' * 254}~")])
    os.unlink(m.p(f"policies/{'c' * 254}~"))

    base = os.fsencode(m.p(""))
    for rel, fn in ((b"users/bad\xff", os.mkdir),
                    (b"policies/bad\xffname.json", lambda p: open(p, "wb").close()),
                    (b"policies/scratch\xfe~", lambda p: open(p, "wb").close()),
                    (b"roles/x\xff", lambda p: os.symlink("../policies/a.json", p))):
        e = oserror(fn, base + b"/" + rel)
        assert e is not None and e.errno == errno.EINVAL, (rel, e)
    assert_alive(m)
    assert_unchanged(wraw, before, "bad names")
    text = m.errors_text()
    assert text.count("ENAMETOOLONG") >= 3 and text.count("InvalidName") >= 4, text


# ---- 3. install, cp --remove-destination: unlink + create is an update -----

def test_install_over_documents_updates_them_in_place(wmount, wiam, wraw, fx, tmp_path):
    m = wmount
    rels = fx.rels()
    # Attached somewhere: rm alone would be refused, install is a save.
    wiam.attach_user_policy(UserName=fx.user, PolicyArn=policy_arn(fx.policy))
    pid, versions = policy_meta(wiam, fx.policy)
    calls0 = m.api_calls()
    new = {}
    for which in ("managed", "user_inline", "role_inline", "trust", "role_tags"):
        path = m.p(rels[which])
        text = cat_bytes(path).decode().replace(TOKEN, NEW_TOKEN)
        src = tmp_path / f"{which}.json"
        src.write_text(text)
        ok(["install", "-m", "0644", src, path])
        assert cat_bytes(path) == text.encode(), which
        new[which] = json.loads(text)
    time.sleep(RM_GRACE + 1)  # nothing may be deleted once the grace passes
    calls = new_calls(calls0, m.api_calls())
    for op in ("DeletePolicy", "CreatePolicy", "DeleteUserPolicy", "DeleteRolePolicy",
               "DeletePolicyVersion"):
        assert op not in calls, calls
    for op in ("CreatePolicyVersion", "PutUserPolicy", "PutRolePolicy", "UpdateAssumeRolePolicy"):
        assert calls.get(op) == 1, (op, calls)
    assert policy_meta(wiam, fx.policy) == (pid, versions + 1), "same policy, one more version"
    assert managed_doc(wraw, fx.policy) == new["managed"]
    assert inline_document(wraw, "users", fx.user, fx.inline) == new["user_inline"]
    assert trust_document(wraw, fx.role) == new["trust"]
    assert tags_of(wiam, "roles", fx.role) == new["role_tags"]
    assert m.errors_text() == ""

    # cp --remove-destination saves the same way.
    path = m.p(rels["managed"])
    src = tmp_path / "cp.json"
    src.write_text(cat_bytes(path).decode().replace(NEW_TOKEN, "cp-word"))
    ok(["cp", "--remove-destination", src, path])
    time.sleep(RM_GRACE + 1)
    assert policy_meta(wiam, fx.policy) == (pid, versions + 2)
    assert "cp-word" in json.dumps(managed_doc(wraw, fx.policy))


def test_rm_alone_still_deletes_and_a_refusal_is_logged(wmount, wiam, wraw, fx):
    m = wmount
    rels = fx.rels()
    ok(["rm", m.p(rels["user_inline"]), m.p(rels["managed"])])
    assert not m.p(rels["user_inline"]).exists()
    assert wait_for(lambda: fx.inline not in inline_names(wiam, "users", fx.user), RM_GRACE + 5)
    assert wait_for(lambda: fx.policy not in local_policy_names(wiam), RM_GRACE + 5)

    # Attached: the rm returns (install over it must work), then IAM's
    # refusal is logged and the name shows the document again.
    other = make_fixture(wiam, "rm")
    wiam.attach_role_policy(RoleName=other.role, PolicyArn=policy_arn(other.policy))
    m.refresh()  # made behind the mount's back after policies/ was listed
    before = snapshot(wraw)
    rel = other.rels()["managed"]
    ok(["rm", m.p(rel)])
    assert wait_for(lambda: m.p(rel).exists(), RM_GRACE + 5), "the name comes back"
    assert_unchanged(wraw, before, "rm of an attached policy")
    lines = error_lines_for(m, rel)
    assert any("EBUSY" in l and other.role in l for l in lines), m.errors_text()


# ---- 2. readers while saves run -----------------------------------------------

def _read_loop(path: Path, stop: threading.Event, seen: list, problems: list):
    while not stop.is_set():
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            problems.append(f"{path.name}: {e}")
            continue
        try:
            seen.append(json.loads(data))
        except ValueError:
            problems.append(f"{path.name}: torn {data[:120]!r}...{data[-60:]!r} ({len(data)} bytes)")


def test_readers_see_whole_documents_while_saves_run(wmount, wiam, fx):
    m = wmount
    rels = fx.rels()
    managed, tags, role_json = m.p(rels["managed"]), m.p(rels["role_tags"]), \
        m.p(f"roles/{fx.role}/role.json")
    stop = threading.Event()
    seen: dict[str, list] = {"managed": [], "tags": [], "role": []}
    problems: list[str] = []
    readers = [threading.Thread(target=_read_loop, args=(p, stop, seen[k], problems))
               for k, p in (("managed", managed), ("tags", tags), ("role", role_json))]
    for t in readers:
        t.start()
    written_docs, written_tags = [], []
    try:
        for i in range(25):
            # Rename over: a temp file, then os.replace (sed -i, rsync, jq > tmp && mv).
            doc = identity_doc(f"seq{i:03d}" + "x" * (i * 37 % 300))
            written_docs.append(doc)
            tmp = managed.parent / f".{managed.name}.tmp{i}"
            tmp.write_text(json.dumps(doc, indent=2))
            os.replace(tmp, managed)
            # In place, sizes going up and down.
            t = {"writer": "a", "seq": str(i), "pad": "p" * (i * 53 % 200)}
            written_tags.append(t)
            with open(tags, "w") as f:
                json.dump(t, f)
    finally:
        stop.set()
        for t in readers:
            t.join(30)
    assert not problems, f"{len(problems)} bad reads, e.g.:\n" + "\n".join(problems[:10])
    assert all(d in written_docs or d["Statement"] for d in seen["managed"])
    assert all(t in written_tags or "stage" in t for t in seen["tags"]), seen["tags"][:5]
    assert all(r.get("RoleName") == fx.role for r in seen["role"])
    assert len(seen["managed"]) > 25 and len(seen["role"]) > 25
    assert json.loads(cat_bytes(managed)) == written_docs[-1]
    assert tags_of(wiam, "roles", fx.role) == written_tags[-1]


# ---- 4. other local users -----------------------------------------------------

@pytest.fixture
def shared_dir():
    """A mount point other users can reach (MOUNT_BASE itself is 0700)."""
    d = Path(tempfile.mkdtemp(prefix="iamfs-other-", dir="/var/tmp"))
    os.chmod(d, 0o755)
    yield d
    try:
        d.rmdir()
    except OSError:
        pass


def as_nobody(*argv) -> "subprocess.CompletedProcess":
    return run(["runuser", "-u", "nobody", "--", *argv])


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"),
                    reason="needs root and runuser to act as another user")
def test_other_users_cause_no_sts_call_and_no_iam_write(make_wmount, wiam, wraw, fx, shared_dir):
    m = make_wmount(args=["--allow-other"], start=False)
    m.path = shared_dir / "mnt"
    m.start()
    role = fx.role
    creds, env = m.p(f"roles/{role}/credentials"), m.p(f"roles/{role}/env")
    before = snapshot(wraw)
    sts0 = m.status().get("sts_calls", {}).get("AssumeRole", 0)

    p = as_nobody("stat", "-c", "%s %A", creds, env)
    assert p.returncode == 0 and p.stdout.split()[1] == "-r--------", p
    for f in (creds, env):
        p = as_nobody("cat", f)
        assert p.returncode != 0 and "Permission denied" in p.stderr, p
    # What their modes allow: reading documents.
    p = as_nobody("cat", m.p(fx.rels()["managed"]))
    assert p.returncode == 0 and json.loads(p.stdout)["Statement"], p
    # What they do not: any change.
    for argv in (["touch", m.p("policies/by-nobody.json")],
                 ["mkdir", m.p("users/by-nobody")],
                 ["rm", "-f", m.p(fx.rels()["user_inline"])],
                 ["sh", "-c", f"echo '{{}}' > {m.p(fx.rels()['role_tags'])}"]):
        p = as_nobody(*argv)
        assert p.returncode != 0, (argv, p)
    assert m.status().get("sts_calls", {}).get("AssumeRole", 0) == sts0, "no AssumeRole for nobody"
    time.sleep(RM_GRACE + 0.5)
    assert_unchanged(wraw, before, "another user")

    # The owner still gets credentials; then nobody's stat sees their size,
    # still without a call.
    body = json.loads(cat_bytes(creds))
    assert body["Version"] == 1
    n = m.status()["sts_calls"]["AssumeRole"]
    p = as_nobody("stat", "-c", "%s", creds)
    assert int(p.stdout) == len(cat_bytes(creds))
    assert m.status()["sts_calls"]["AssumeRole"] == n


# ---- 5. tar ---------------------------------------------------------------------

def test_tar_of_the_mount_sees_no_folder_change(make_wmount, wiam, fx, tmp_path):
    # A short TTL: listings are fetched again between and during the runs.
    m = make_wmount(args=["--cache-ttl", "1"])
    for run_no in range(3):
        p = run(["tar", "cf", tmp_path / f"t{run_no}.tar", "-C", m.p(""),
                 "users", "groups", "roles", "policies"], timeout=120)
        assert p.returncode == 0, (run_no, p.stderr[-2000:])
        time.sleep(1.2)
    names = run(["tar", "tf", tmp_path / "t2.tar"]).stdout
    assert f"roles/{fx.role}/trust-policy.json" in names


def test_a_folder_ctime_moves_only_when_its_names_change(wmount, wiam, fx):
    m = wmount
    d = m.p("policies")
    os.listdir(d)
    c0 = os.stat(d).st_ctime_ns
    m.refresh()
    os.listdir(d)
    assert os.stat(d).st_ctime_ns == c0, "listing again changed nothing"
    wiam.create_policy(PolicyName=uniq("ctime-"), PolicyDocument=json.dumps(identity_doc()))
    m.refresh()
    os.listdir(d)
    assert os.stat(d).st_ctime_ns > c0


# ---- 6. a daemon killed -----------------------------------------------------------

def test_a_daemon_killed_during_saves_leaves_old_or_new_and_restarts(make_wmount, wiam, wraw, fx):
    m = make_wmount()
    path = m.p(fx.rels()["managed"])
    (pid,) = m.pids()
    docs = [identity_doc(f"kill{i}") for i in range(200)]

    def writer():
        for d in docs:
            try:
                path.write_text(json.dumps(d))
            except OSError:
                return

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.4)
    os.kill(pid, signal.SIGKILL)
    t.join(30)
    assert managed_doc(wraw, fx.policy) in docs + [identity_doc()]
    e = oserror(os.statvfs, m.p(""))
    assert e is not None and e.errno == errno.ENOTCONN

    # Starting it again on the dead mount point recovers it.
    m.start()
    assert "no longer running" in m.start_result.stderr, m.start_result.stderr
    assert json.loads(cat_bytes(path)) == managed_doc(wraw, fx.policy)
