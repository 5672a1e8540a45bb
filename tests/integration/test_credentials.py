"""roles/<R>/credentials and env: sts:AssumeRole through a file (issue 4)."""

import os
import stat
import time
from pathlib import Path

from iamfs_harness import REGION, base_env, cat_bytes, cat_json, parse_time, run

ROLE = "marketingadminrole"


def test_format_expiration_and_one_assume_role(make_mount):
    m = make_mount()
    before = m.status()["sts_calls"].get("AssumeRole", 0)
    creds = cat_json(m.p(f"roles/{ROLE}/credentials"))
    assert creds["Version"] == 1
    assert creds["AccessKeyId"] and creds["SecretAccessKey"] and creds["SessionToken"]
    expires = parse_time(creds["Expiration"])
    assert time.time() + 600 < expires <= time.time() + 3600 + 60, creds["Expiration"]
    # Cached: a second read, the env file and stat make no new AssumeRole.
    assert cat_json(m.p(f"roles/{ROLE}/credentials")) == creds
    env = cat_bytes(m.p(f"roles/{ROLE}/env")).decode()
    assert f"export AWS_SESSION_TOKEN='{creds['SessionToken']}'" in env
    st = os.stat(m.p(f"roles/{ROLE}/credentials"))
    assert stat.S_IMODE(st.st_mode) == 0o400 and st.st_uid == os.getuid()
    assert m.status()["sts_calls"]["AssumeRole"] == before + 1


def test_secrets_stay_out_of_logs_status_and_errors(make_mount):
    m = make_mount(env=base_env(RUST_LOG="debug"))
    creds = cat_json(m.p(f"roles/{ROLE}/credentials"))
    cat_bytes(m.p(f"roles/{ROLE}/env"))
    run(["cat", str(m.p("roles/nosuchrole/credentials"))])  # an error, for .iamfs/errors
    log = m.log_path.read_text(errors="replace")
    assert "assumed role" in log, "the log should say a role was assumed"
    public = [log, cat_bytes(m.p(".iamfs/status")).decode(), cat_bytes(m.p(".iamfs/errors")).decode()]
    for text in public:
        assert creds["SecretAccessKey"] not in text
        assert creds["SessionToken"] not in text


def test_missing_role_is_enoent(mnt):
    p = run(["cat", str(mnt.p("roles/nosuchrole/credentials"))])
    assert p.returncode != 0 and "No such file" in p.stderr


def _open_path_to(path: Path):
    """Let other users traverse to `path` (pytest's temp dirs are 0700), so
    that a refusal below comes from the mount, not from the way there."""
    for parent in list(path.parents)[:-1]:
        if parent == Path("/"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o011)


def test_another_user_cannot_read_credentials(make_mount):
    m = make_mount(args=["--allow-other"])
    _open_path_to(m.path)
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    # nobody gets in (allow_other) and may read what is world-readable...
    p = run(as_nobody + ["cat", str(m.p(f"roles/{ROLE}/role.json"))])
    assert p.returncode == 0, p.stderr
    # ...but not the 0400 credentials.
    for name in ("credentials", "env"):
        p = run(as_nobody + ["cat", str(m.p(f"roles/{ROLE}/{name}"))])
        assert p.returncode != 0 and "Permission denied" in p.stderr, (name, p.stdout, p.stderr)


def test_without_allow_other_other_users_are_kept_out(make_mount):
    m = make_mount()
    _open_path_to(m.path)
    p = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "cat", str(m.p(f"roles/{ROLE}/role.json"))])
    assert p.returncode != 0 and "Permission denied" in p.stderr, p.stderr


def test_daemon_authenticates_with_a_role_profile(make_mount, moto, tmp_path):
    """A profile with role_arn + source_profile, as in the AWS CLI docs: the
    daemon runs as the assumed role; chained sessions are clamped to 1 h."""
    config = tmp_path / "config"
    credentials = tmp_path / "credentials"
    credentials.write_text("[base]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    config.write_text(
        f"[profile base]\nregion = {REGION}\nendpoint_url = {moto.url}\n\n"
        f"[profile admin]\nrole_arn = arn:aws:iam::123456789012:role/{ROLE}\n"
        f"source_profile = base\nregion = {REGION}\nendpoint_url = {moto.url}\n")
    env = base_env(AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(k)
    m = make_mount(env=env, args=["--profile", "admin", "--session-duration", "7200"])
    status = m.status()
    assert f":assumed-role/{ROLE}/" in status["caller"], status
    creds = cat_json(m.p(f"roles/{ROLE}/credentials"))
    # Role chaining caps sessions at one hour: clamped, not refused.
    assert parse_time(creds["Expiration"]) <= time.time() + 3600 + 60, creds["Expiration"]
