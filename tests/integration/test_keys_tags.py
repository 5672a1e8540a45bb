"""access-keys.json (ids and status, never secrets), tags.json, role
credentials/env."""

import json

import pytest

from conftest import EDGE_USER
from iamfs_harness import cat_bytes, cat_json, ok

pytestmark = pytest.mark.shared_mount


def find_key_records(value):
    """Every dict carrying an AccessKeyId, wherever the file nests them."""
    if isinstance(value, dict):
        if "AccessKeyId" in value:
            yield value
        for v in value.values():
            yield from find_key_records(v)
    elif isinstance(value, list):
        for v in value:
            yield from find_key_records(v)


def test_access_keys_json(mnt, iam, account):
    raw = cat_bytes(mnt.p("users/user1/access-keys.json"))
    text = raw.decode()
    assert "SecretAccessKey" not in text
    assert account.sample["access_key_secret"] not in text
    got = {r["AccessKeyId"]: r.get("Status") for r in find_key_records(json.loads(raw))}
    truth = {k["AccessKeyId"]: k["Status"]
             for k in iam.list_access_keys(UserName="user1")["AccessKeyMetadata"]}
    assert truth and got == truth
    assert raw.endswith(b"\n")


def test_access_keys_json_without_keys(mnt, iam):
    assert iam.list_access_keys(UserName="alice")["AccessKeyMetadata"] == []
    data = cat_json(mnt.p("users/alice/access-keys.json"))
    assert list(find_key_records(data)) == []


@pytest.mark.parametrize("user", ["user1", EDGE_USER, "bulk-user-05", "alice"])
def test_user_tags_json(mnt, iam, user):
    truth = iam.list_user_tags(UserName=user)["Tags"]
    raw = cat_bytes(mnt.p(f"users/{user}/tags.json"))
    got = json.loads(raw)
    assert list(got.items()) == [(t["Key"], t["Value"]) for t in truth]  # same order too
    assert raw == (json.dumps(got, indent=2, ensure_ascii=False) + "\n").encode()


@pytest.mark.parametrize("role", ["marketingadminrole", "ec2-readonly-role"])
def test_role_tags_json(mnt, iam, role):
    truth = iam.list_role_tags(RoleName=role)["Tags"]
    got = cat_json(mnt.p(f"roles/{role}/tags.json"))
    assert list(got.items()) == [(t["Key"], t["Value"]) for t in truth]


def test_role_credentials(mnt, account):
    creds = cat_json(mnt.p("roles/marketingadminrole/credentials"))
    assert creds["Version"] == 1
    for k in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"):
        assert creds.get(k), k
    env = cat_bytes(mnt.p("roles/marketingadminrole/env")).decode()
    assert creds["AccessKeyId"] in env
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert f"export {var}=" in env, var
    # a second read within the cache lifetime gives the same credentials
    assert cat_json(mnt.p("roles/marketingadminrole/credentials"))["AccessKeyId"] == creds["AccessKeyId"]


@pytest.mark.parametrize("how", ["source", "eval"])
def test_source_env(mnt, how):
    """`source roles/X/env` (and `eval "$(cat ...)"`) set the role's credentials."""
    env_file = mnt.p("roles/marketingadminrole/env")
    creds = cat_json(mnt.p("roles/marketingadminrole/credentials"))
    load = f'source "{env_file}"' if how == "source" else f'eval "$(cat "{env_file}")"'
    out = ok(["bash", "-c", f'set -e; {load}; '
              'printf "%s\\n" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN"'],
             env={"PATH": "/usr/bin:/bin"})
    assert out.splitlines() == [creds["AccessKeyId"], creds["SecretAccessKey"],
                                creds["SessionToken"]]


def test_credential_process_with_aws_cli(mnt, tmp_path, moto):
    """`credential_process = cat <mount>/roles/X/credentials` just works."""
    import os
    import sys
    cfg = tmp_path / "config"
    cfg.write_text("[profile viarole]\nregion = us-east-1\n"
                   f"credential_process = cat {mnt.p('roles/marketingadminrole/credentials')}\n")
    env = dict(os.environ, AWS_CONFIG_FILE=str(cfg), AWS_PROFILE="viarole",
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true")
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(k, None)
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    out = ok([aws, "--endpoint-url", moto.url, "sts", "get-caller-identity", "--output", "json"],
             env=env)
    ident = json.loads(out)
    assert ":assumed-role/marketingadminrole/" in ident["Arn"], ident
