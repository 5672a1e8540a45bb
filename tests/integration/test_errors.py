"""Errors: missing names, refused writes (EROFS for now), unreachable
endpoints fail fast with EIO and are recorded in .iamfs/errors."""

import errno
import socket
import subprocess
import sys
import time

import pytest

from iamfs_harness import (Mount, cat_bytes, free_port, ls, paginate, policy_by_name, run, sh)


@pytest.mark.shared_mount
@pytest.mark.parametrize("rel", [
    "roles/nosuch/role.json",
    "users/nosuch/user.json",
    "groups/nosuch/group.json",
    "policies/nosuch.json",
    "aws-policies/NoSuchAwsPolicy.json",
    "users/user1/policies/nosuch.json",
    "roles/marketingadminrole/nosuch",
])
def test_cat_missing_is_enoent(mnt, rel):
    p = run(["cat", mnt.p(rel)])
    assert p.returncode != 0
    assert "No such file or directory" in p.stderr, p.stderr


@pytest.mark.shared_mount
def test_ls_missing_entity_is_enoent(mnt):
    p = run(["ls", mnt.p("roles/nosuch")])
    assert p.returncode != 0 and "No such file or directory" in p.stderr, p.stderr


def snapshot(iam):
    """What the write targets look like in IAM."""
    pol = policy_by_name(iam, "s3-read-reports")
    return {
        "policy": (pol["DefaultVersionId"],
                   [v["VersionId"] for v in iam.list_policy_versions(PolicyArn=pol["Arn"])["Versions"]]),
        "policies": sorted(p["PolicyName"] for p in paginate(iam, "list_policies", "Policies",
                                                               Scope="Local")),
        "inline": iam.get_user_policy(UserName="user1", PolicyName="s3-home")["PolicyDocument"],
        "user_inline": iam.list_user_policies(UserName="user1")["PolicyNames"],
        "trust": iam.get_role(RoleName="marketingadminrole")["Role"]["AssumeRolePolicyDocument"],
        "tags": iam.list_user_tags(UserName="user1")["Tags"],
    }


WRITE_TARGETS = [
    "policies/s3-read-reports.json",
    "users/user1/policies/s3-home.json",
    "roles/marketingadminrole/trust-policy.json",
    "users/user1/tags.json",
    "policies/brand-new-policy.json",
    "users/user1/policies/brand-new-inline.json",
]


@pytest.fixture(scope="module")
def ro_mnt(iamfs_bin, moto, account, tmp_path_factory):
    """One --read-only mount for the EROFS tests."""
    m = Mount(tmp_path_factory.mktemp("readonly"), moto.url, args=["--read-only"]).start()
    yield m
    m.unmount()


@pytest.mark.fresh_mount
@pytest.mark.parametrize("rel", WRITE_TARGETS)
def test_read_only_mount_write_is_erofs(ro_mnt, iam, rel):
    """--read-only: every change is refused with EROFS at open, so even a
    shell redirection reports it, and IAM is untouched."""
    before = snapshot(iam)
    existed = run(["test", "-e", ro_mnt.p(rel)]).returncode == 0
    old = cat_bytes(ro_mnt.p(rel)) if existed else None
    p = sh(f"echo x > '{ro_mnt.p(rel)}'")
    assert p.returncode != 0, f"write to {rel} succeeded"
    assert "Read-only file system" in p.stderr, p.stderr
    assert snapshot(iam) == before
    if existed:
        assert cat_bytes(ro_mnt.p(rel)) == old
    else:
        assert run(["test", "-e", ro_mnt.p(rel)]).returncode != 0, f"{rel} appeared"


@pytest.mark.fresh_mount
def test_read_only_mount_refuses_mkdir_rm_ln(ro_mnt, iam):
    before = snapshot(iam)
    for cmd in (["mkdir", ro_mnt.p("users/newuser")],
                ["rm", ro_mnt.p("users/user1/policies/s3-home.json")],
                ["ln", "-s", "../../../policies/deploy-app.json", ro_mnt.p("users/user1/attached/deploy-app")]):
        p = run(cmd)
        assert p.returncode != 0 and "Read-only file system" in p.stderr, (cmd, p.stderr)
    assert snapshot(iam) == before


@pytest.mark.fresh_mount
@pytest.mark.parametrize("rel", WRITE_TARGETS)
def test_invalid_write_is_einval_and_changes_nothing(make_mount, iam, rel):
    """Default (writable) mount: content that is not JSON is rejected before
    any API call; the error comes back from close() (tee and Python see
    EINVAL; bash ignores close() errors on redirections, so `echo x > f`
    exits 0 whatever happens) and lands in .iamfs/errors; IAM is unchanged
    and reads show IAM's document."""
    m = make_mount()
    before = snapshot(iam)
    path = m.p(rel)
    existed = run(["test", "-e", path]).returncode == 0
    old = cat_bytes(path) if existed else None
    n_errors = len(cat_bytes(m.p(".iamfs/errors")).splitlines())

    p = run(["tee", path], input="x\n")
    assert p.returncode != 0, f"tee into {rel} succeeded"
    assert "Invalid argument" in p.stderr, p.stderr
    py = run([sys.executable, "-c", (
        "import os, sys\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n"
        "os.write(fd, b'{not json')\n"
        "try:\n    os.close(fd)\nexcept OSError as e:\n    print(e.errno)\n"), path])
    assert py.stdout.strip() == str(errno.EINVAL), (py.stdout, py.stderr)
    sh(f"echo x > '{path}'")  # exit status unknowable (bash ignores close errors)

    assert snapshot(iam) == before
    if existed:
        assert cat_bytes(path) == old
    errors = cat_bytes(m.p(".iamfs/errors")).decode()
    assert len(errors.splitlines()) > n_errors
    assert rel in errors.splitlines()[-1] and "EINVAL" in errors.splitlines()[-1], errors[-500:]


def dead_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    return free_port()


@pytest.mark.fresh_mount
def test_dead_endpoint_fails_fast_with_eio(make_mount):
    m = make_mount(f"http://127.0.0.1:{dead_port()}")
    t0 = time.monotonic()
    p = run(["ls", m.p("roles/")], timeout=60)
    secs = time.monotonic() - t0
    assert p.returncode != 0, p.stdout
    assert "Input/output error" in p.stderr, p.stderr
    assert secs < 15, f"ls took {secs:.1f}s against a dead endpoint"
    errors = cat_bytes(m.p(".iamfs/errors")).decode()
    assert errors.strip(), ".iamfs/errors is empty after a failed call"
    assert m.status()["errors"] >= 1


@pytest.mark.fresh_mount
def test_silent_endpoint_does_not_hang(make_mount):
    """An endpoint that accepts connections and never answers: the mount
    must give an errno within a bounded time, not hang (DESIGN: 'the mount
    never hangs'). The bound here is 30 s."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)  # never accept(): the kernel completes handshakes, nobody replies
    try:
        m = make_mount(f"http://127.0.0.1:{srv.getsockname()[1]}")
        t0 = time.monotonic()
        p = run(["ls", m.p("roles/")], timeout=120)
        secs = time.monotonic() - t0
        assert p.returncode != 0, p.stdout
        assert "Input/output error" in p.stderr, p.stderr
        assert secs < 30, f"ls took {secs:.1f}s against a silent endpoint"
        assert cat_bytes(m.p(".iamfs/errors")).decode().strip()
    finally:
        srv.close()


@pytest.mark.fresh_mount
def test_a_hanging_call_does_not_block_other_requests(make_mount):
    """While one request waits on an endpoint that never answers, others on
    the same mount are served: requests run concurrently, each owning its
    reply. Serialized, each of these would wait the full ~20 s timeout."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    try:
        m = make_mount(f"http://127.0.0.1:{srv.getsockname()[1]}")
        slow = subprocess.Popen(["ls", str(m.p("roles/"))], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            assert slow.poll() is None, "the call to the silent endpoint returned early"
            t0 = time.monotonic()
            assert ls(m.p("")) == ["account", "aws-policies", "groups", "instance-profiles",
                                   "policies", "policy-versions", "roles", "users"]
            errors_file = cat_bytes(m.p(".iamfs/errors"))
            assert isinstance(errors_file, bytes)
            assert slow.poll() is None, "the slow call finished while others were served"
            assert time.monotonic() - t0 < 5
        finally:
            slow.kill()
            slow.wait()
    finally:
        srv.close()


@pytest.mark.fresh_mount
def test_what_the_tree_cannot_hold_is_refused_quietly(make_mount, iam):
    """A hard link, a fifo and preallocation get a plain errno, change
    nothing, and leave no warning in the log; neither do Python's opens (it
    asks every file for TCGETS)."""
    m = make_mount()
    before = snapshot(iam)
    doc = m.p("users/user1/tags.json")
    cases = [(["ln", doc, m.p("users/user1/hard.json")], "Operation not permitted"),
             (["mkfifo", m.p("users/user1/fifo")], "Operation not permitted"),
             (["fallocate", "-l", "10", doc], "Operation not supported")]
    for cmd, message in cases:
        p = run(cmd)
        assert p.returncode != 0 and message in p.stderr, (cmd, p.stderr)
    for _ in range(3):
        run([sys.executable, "-c", f"open({str(doc)!r}).read()"]).check_returncode()
    assert "hard.json" not in ls(m.p("users/user1")) and "fifo" not in ls(m.p("users/user1"))
    assert snapshot(iam) == before
    log = m.log_path.read_text(errors="replace")
    assert "Not Implemented" not in log, log[-2000:]
