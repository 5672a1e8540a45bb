"""Installed like other FUSE tools (issue 14): mount(8) and fstab through
fuse3's mount.fuse3 helper.

mount(8) runs its helpers with a fixed PATH (/usr/local/sbin:/usr/local/bin:
...), so each test runs in its own mount namespace (unshare -m) where a
private directory holding `iamfs` (the binary under test) is bind-mounted
over /usr/local/sbin: `mount -t fuse.iamfs` finds it there as it finds an
installed /usr/local/bin/iamfs, and nothing outside the namespace changes.
Needs root (as CI runs) and unshare(1).
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import pytest

from iamfs_harness import IAMFS_BIN, base_env, is_mounted, run

pytestmark = pytest.mark.fresh_mount


def _namespace_script(tmp_path, body: str) -> str:
    sbin = tmp_path / "sbin"
    sbin.mkdir(exist_ok=True)
    link = sbin / "iamfs"
    if not link.exists():
        link.symlink_to(os.path.realpath(IAMFS_BIN))
    return (
        "set -u\n"
        f"mount --bind {shlex.quote(str(sbin))} /usr/local/sbin\n"
        + body
    )


def in_namespace(tmp_path, body: str, env=None, timeout=90):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    script = _namespace_script(tmp_path, body)
    return run(["unshare", "-m", "--propagation", "private", "bash", "-c", script],
               env=env or base_env(), timeout=timeout)


def _profiles(tmp_path) -> dict:
    """AWS files with a profile `admin` (moto takes any keys)."""
    creds = tmp_path / "credentials"
    creds.write_text("[admin]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    config = tmp_path / "config"
    config.write_text("[profile admin]\nregion = us-east-1\n")
    env = base_env(AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(creds))
    # The profile, not the environment, must supply the keys.
    env.pop("AWS_ACCESS_KEY_ID")
    env.pop("AWS_SECRET_ACCESS_KEY")
    return env


CHECK = r"""
line=$(awk -v m="$M" '$5 == m' /proc/self/mountinfo)
echo "MOUNTINFO: $line"
ls "$M/roles" | head -3 | sed 's/^/ROLE: /'
echo "ACCOUNT: $(grep -o '"account": *"[0-9]*"' "$M/.iamfs/status")"
echo "TTL: $(grep -o '"ttl_seconds": *[0-9.]*' "$M/.iamfs/status")"
touch "$M/policies/x.json" 2>&1 | sed 's/^/TOUCH: /'
"""


def test_mount_t_fuse_iamfs_and_fstab_lines_mount_and_umount(moto, account, tmp_path):
    env = _profiles(tmp_path)
    m = tmp_path / "mnt"
    m.mkdir()
    fstab = tmp_path / "fstab"
    fstab.write_text(
        f"admin {m} fuse.iamfs noauto,user,_netdev,endpoint_url={moto.url},cache_ttl=120,"
        f"log_file={tmp_path}/fstab.log 0 0\n")
    body = f"""
M={shlex.quote(str(m))}
mount -t fuse.iamfs admin "$M" -o profile=admin,ro,cache_ttl=120,endpoint_url={moto.url}
echo "MOUNT_RC: $?"
{CHECK}
umount "$M"; echo "UMOUNT_RC: $?"
awk -v m="$M" '$5 == m' /proc/self/mountinfo | sed 's/^/LEFT: /'
echo ---FSTAB---
mount -T {shlex.quote(str(fstab))} "$M"; echo "MOUNT_RC: $?"
{CHECK}
printf 'not json' > {shlex.quote(str(tmp_path))}/bad.json
cp {shlex.quote(str(tmp_path))}/bad.json "$M/policies/zz-not-json.json" 2>/dev/null; echo "BAD_SAVE_RC: $?"
umount "$M"; echo "UMOUNT_RC: $?"
awk -v m="$M" '$5 == m' /proc/self/mountinfo | sed 's/^/LEFT: /'
"""
    p = in_namespace(tmp_path, body, env=env)
    out = p.stdout
    assert p.returncode == 0, (out, p.stderr)
    first, second = out.split("---FSTAB---")
    for part, ro in ((first, True), (second, False)):
        lines = part.splitlines()
        assert "MOUNT_RC: 0" in lines, (part, p.stderr)
        assert "UMOUNT_RC: 0" in lines, (part, p.stderr)
        assert not any(line.startswith("LEFT:") for line in lines), part
        info = next(line for line in lines if line.startswith("MOUNTINFO:"))
        # Type fuse.iamfs with the SOURCE as its source, as findmnt and
        # `mount -a` expect; ro exactly when asked.
        assert " - fuse.iamfs admin " in info, info
        opts = info.split()[6]
        assert ("ro" in opts.split(",")) == ro, info
        assert any(line.startswith("ROLE: ") for line in lines), part
        assert f'"{account.id}"' in next(line for line in lines if line.startswith("ACCOUNT:"))
        assert "120" in next(line for line in lines if line.startswith("TTL:")), part
        touched = [line for line in lines if line.startswith("TOUCH:")]
        if ro:
            assert touched and "Read-only file system" in touched[0], part
    # log_file= from the fstab line: one line for the refused save, with
    # the path, the operation, the errno and the code.
    assert "BAD_SAVE_RC: 0" not in second, second
    logged = [line for line in (tmp_path / "fstab.log").read_text().splitlines()
              if 'path="policies/zz-not-json.json"' in line]
    assert len(logged) == 1, logged
    assert " WARN " in logged[0] and 'errno="EINVAL"' in logged[0] and "op=" in logged[0], logged


@pytest.mark.parametrize("case", ["unknown-key", "no-such-profile", "file-mountpoint"])
def test_bad_mount_lines_fail_in_one_line_and_mount_nothing(moto, tmp_path, case):
    env = _profiles(tmp_path)
    m = tmp_path / "mnt"
    m.mkdir()
    f = tmp_path / "afile"
    f.write_text("x\n")
    source, target, opts, says = {
        "unknown-key": ("admin", m, "cache_tll=5", "unknown mount option `cache_tll=5`"),
        "no-such-profile": ("nosuch", m, "", "profile `nosuch` is in neither"),
        "file-mountpoint": ("admin", f, "", "is not a directory"),
    }[case]
    extra = f",{opts}" if opts else ""
    body = f"""
mount -t fuse.iamfs {source} {shlex.quote(str(target))} -o endpoint_url={moto.url}{extra}
echo "MOUNT_RC: $?"
awk -v m={shlex.quote(str(target))} '$5 == m' /proc/self/mountinfo | wc -l | sed 's/^/COUNT: /'
"""
    p = in_namespace(tmp_path, body, env=env)
    assert "MOUNT_RC: 0" not in p.stdout, (p.stdout, p.stderr)
    assert "COUNT: 0" in p.stdout, p.stdout
    errors = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, p.stderr
    assert errors[0].startswith("iamfs: ") and says in errors[0], errors


def test_source_dash_is_the_default_chain_and_mount8_flags_give_way(moto, account, tmp_path):
    """`-` as SOURCE: the environment's credentials; dev,suid from
    mount.fuse3 and rw from mount(8) do not conflict with iamfs's own
    nodev,nosuid or with read_only."""
    m = tmp_path / "mnt"
    m.mkdir()
    body = f"""
M={shlex.quote(str(m))}
mount -t fuse.iamfs - "$M" -o endpoint_url={moto.url},read_only,rw,dev,suid,noatime
echo "MOUNT_RC: $?"
{CHECK}
umount "$M"; echo "UMOUNT_RC: $?"
"""
    p = in_namespace(tmp_path, body)
    assert "MOUNT_RC: 0" in p.stdout, (p.stdout, p.stderr)
    assert "UMOUNT_RC: 0" in p.stdout, (p.stdout, p.stderr)
    info = next(line for line in p.stdout.splitlines() if line.startswith("MOUNTINFO:"))
    opts = info.split()[6].split(",")
    assert "ro" in opts and "noatime" in opts, info
    assert " - fuse.iamfs - " in info, info
    assert any(line.startswith("ROLE: ") for line in p.stdout.splitlines())


def test_systemd_hears_ready_once_the_mount_answers_and_stopping_at_unmount(
        moto, account, tmp_path):
    """Type=notify: a Unix datagram socket stands in for systemd's
    NOTIFY_SOCKET; iamfs runs in the foreground as the unit runs it."""
    import socket
    import subprocess

    from iamfs_harness import is_mounted, wait_for

    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    m = tmp_path / "mnt"
    m.mkdir()
    env = base_env(NOTIFY_SOCKET=path)
    log = open(tmp_path / "iamfs.log", "wb")
    proc = subprocess.Popen(
        [str(IAMFS_BIN), "--foreground", "--endpoint-url", moto.url, str(m)],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = sock.recv(4096).decode()
        # READY=1 comes once the mount is there: a read at once answers.
        assert "READY=1" in ready.splitlines(), ready
        assert f"STATUS=mounted at {m}" in ready, ready
        assert is_mounted(m)
        assert run(["ls", m / "roles"]).returncode == 0
        assert run(["fusermount3", "-u", m]).returncode == 0
        stopping = sock.recv(4096).decode()
        assert "STOPPING=1" in stopping.splitlines(), stopping
        assert proc.wait(20) == 0
        assert not is_mounted(m)
        # SIGTERM (what `systemctl stop` sends) also says STOPPING=1.
        proc = subprocess.Popen(
            [str(IAMFS_BIN), "-f", "--endpoint-url", moto.url, str(m)],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        assert "READY=1" in sock.recv(4096).decode()
        proc.terminate()
        assert "STOPPING=1" in sock.recv(4096).decode()
        assert proc.wait(20) == 0
        assert wait_for(lambda: not is_mounted(m), 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if is_mounted(m):
            run(["fusermount3", "-uz", m])
        sock.close()
        log.close()


def test_iamfs_status_lists_mounts_and_summarises_one(make_mount, account):
    from iamfs_harness import ok as ok_

    m = make_mount(args=["--read-only"])
    ok_(["ls", m.p("roles")])
    listing = ok_([IAMFS_BIN, "status"])
    mine = [line for line in listing.splitlines() if line.split("\t")[0] == str(m.path)]
    assert len(mine) == 1, listing
    assert f"account {account.id}" in mine[0] and "read-only" in mine[0], mine
    summary = ok_([IAMFS_BIN, "status", m.path])
    for needle in (f"account      {account.id}", "caller       arn:aws:",
                   "cache        ", "IAM calls    ", "ListRoles", "errors       0",
                   "credentials  active"):
        assert needle in summary, (needle, summary)
    raw = ok_([IAMFS_BIN, "status", "--json", m.path])
    import json
    assert json.loads(raw)["account"] == account.id and "api_calls" in json.loads(raw)
    # Not a mount: one line, non-zero.
    p = run([IAMFS_BIN, "status", m.workdir])
    assert p.returncode != 0 and "is not an iamfs mount" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_a_mountpoint_named_status_mounts_as_dot_slash_status(moto, account, tmp_path):
    d = tmp_path / "status"
    d.mkdir()
    env = base_env()
    p = run([IAMFS_BIN, "--endpoint-url", moto.url, "./status"], cwd=tmp_path, env=env)
    try:
        assert p.returncode == 0, p.stderr
        from iamfs_harness import is_mounted
        assert is_mounted(d)
        out = run([IAMFS_BIN, "status", "./status"], cwd=tmp_path, env=env)
        assert out.returncode == 0 and "account" in out.stdout, out
    finally:
        run(["fusermount3", "-u", d])


def test_a_user_mounting_a_line_without_user_is_told_the_fix(moto, tmp_path):
    """mount(8) by a user (nobody) of a root-owned mountpoint without
    `user` in fstab: one line naming the fix, non-zero, nothing mounted."""
    import tempfile

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv(1)")
    # Somewhere nobody can read: the binary and the mountpoint (root's).
    base = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="iamfs-user-"))
    try:
        base.chmod(0o755)
        (base / "bin").mkdir()
        shutil.copy(os.path.realpath(IAMFS_BIN), base / "bin" / "iamfs")
        (base / "bin" / "iamfs").chmod(0o755)
        m = base / "mnt"
        m.mkdir()
        env = base_env(PATH=f"{base}/bin:/usr/bin:/bin", HOME=str(base))
        p = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                 "mount", "-t", "fuse.iamfs", "-", m, "-o", f"endpoint_url={moto.url}"],
                env=env, cwd="/")
        assert p.returncode != 0, p
        assert not is_mounted(m)
        lines = [line for line in p.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, p.stderr
        # mount(8) itself may refuse ("must be superuser"); if it runs the
        # helper, iamfs says what to do.
        assert ("superuser" in lines[0]
                or ("iamfs: cannot mount at" in lines[0] and "`user`" in lines[0])), lines
    finally:
        if is_mounted(base / "mnt"):
            run(["fusermount3", "-uz", base / "mnt"])
        shutil.rmtree(base, ignore_errors=True)
