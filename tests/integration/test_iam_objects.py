"""The rest of IAM as files (issue 13, first part), through a real mount
against moto_server, checked in IAM with boto3: a role's settings.json
(UpdateRole), permissions boundaries as links (role boundaries: moto has
no user boundaries, the unit tests cover those), policy-versions/ with
the default link (rollback by `ln -sfn`) and rm of versions, and
service-linked roles refused locally. Bad input changes nothing in IAM."""

from __future__ import annotations

import errno
import json
import os
import time

import pytest

from iamfs_harness import base_env, ls

from write_helpers import *  # noqa: F401,F403

pytestmark = pytest.mark.fresh_mount


def role_settings(wiam, role: str) -> tuple[str, int]:
    r = wiam.get_role(RoleName=role)["Role"]
    return r.get("Description", ""), r["MaxSessionDuration"]


def role_boundary(wiam, role: str) -> str | None:
    r = wiam.get_role(RoleName=role)["Role"]
    return r.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")


def default_version(wiam, arn: str) -> str:
    return wiam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]


def refused(args, want: int) -> str:
    """Runs a tool that must fail with `want`; returns its stderr."""
    p = run(args)
    assert p.returncode != 0, f"{args} succeeded"
    assert os.strerror(want) in p.stderr, f"{args}: {p.stderr!r}, expected {os.strerror(want)}"
    return p.stderr


def test_role_settings_edit_with_sed_and_bad_values_change_nothing(wmount, wiam, wraw, fx):
    path = wmount.p(f"roles/{fx.role}/settings.json")
    assert "settings.json" in ls(wmount.p(f"roles/{fx.role}"))
    shown = json.loads(cat_bytes(path))
    assert shown == {"Description": "", "MaxSessionDuration": 3600}
    assert ok(["stat", "-c", "%a", path]).strip() == "644"

    ok(["sed", "-i", "s/3600/7200/", path])
    assert role_settings(wiam, fx.role)[1] == 7200
    ok(["jq", "-e", ".MaxSessionDuration == 7200", path])
    ok(["jq", "-e", ".MaxSessionDuration == 7200", wmount.p(f"roles/{fx.role}/role.json")])

    # Description through tee, as a script would write it.
    doc = json.dumps({"Description": "deploys the app", "MaxSessionDuration": 7200})
    ok(["tee", path], input=doc)
    assert role_settings(wiam, fx.role) == ("deploys the app", 7200)

    before = snapshot(wraw)
    settings_before = role_settings(wiam, fx.role)
    calls = wmount.api_calls()
    for bad in ['{"MaxSessionDuration": 60}', '{"MaxSessionDuration": 99999}',
                '{"MaxSessionDuration": 7200, "RoleName": "x"}', "not json"]:
        p = run(["tee", path], input=bad)
        assert p.returncode != 0, bad
        assert os.strerror(errno.EINVAL) in p.stderr, p.stderr
    assert "UpdateRole" not in new_calls(calls, wmount.api_calls())
    assert role_settings(wiam, fx.role) == settings_before
    assert_unchanged(wraw, before, "refused settings")
    assert "MaxSessionDuration" in wmount.errors_text()


def test_a_role_boundary_is_set_replaced_and_removed_with_ln_and_rm(wmount, wiam, wraw, fx):
    other = uniq("wt-bnd-")
    wiam.create_policy(PolicyName=other, PolicyDocument=json.dumps(identity_doc()))
    role_dir = wmount.p(f"roles/{fx.role}")
    link = wmount.p(f"roles/{fx.role}/boundary")
    assert "boundary" not in ls(role_dir)

    ok(["ln", "-s", f"../../policies/{fx.policy}.json", link])
    assert role_boundary(wiam, fx.role) == policy_arn(fx.policy)
    assert ok(["readlink", link]).strip() == f"../../policies/{fx.policy}.json"
    assert "boundary" in ls(role_dir)
    # The link resolves inside the mount: cat shows the boundary policy.
    assert cat_bytes(link) == cat_bytes(wmount.p(f"policies/{fx.policy}.json"))

    # ln -sfn: GNU ln makes a temporary link and renames it over the old.
    ok(["ln", "-sfn", f"../../policies/{other}.json", link])
    assert role_boundary(wiam, fx.role) == policy_arn(other)
    assert sorted(n for n in ls(role_dir, "-A") if n.startswith("Cu")) == []

    before = snapshot(wraw)
    for bad in [f"../../roles/{fx.role}", "../../policies/no-such-policy.json"]:
        p = run(["ln", "-sfn", bad, link])
        assert p.returncode != 0, bad
    assert role_boundary(wiam, fx.role) == policy_arn(other)
    assert_unchanged(wraw, before, "refused boundaries")

    ok(["rm", link])
    assert role_boundary(wiam, fx.role) is None
    assert "boundary" not in ls(role_dir)
    refused(["ln", "-s", f"../../policies/{fx.policy}.json",
             wmount.p(f"groups/{fx.group}/boundary")], errno.EINVAL)


def test_policy_versions_roll_back_with_ln_sfn_and_rm_a_version(wmount, wiam, wraw, fx):
    arn = policy_arn(fx.policy)
    doc = wmount.p(f"policies/{fx.policy}.json")
    ok(["sed", "-i", f"s/{TOKEN}/{NEW_TOKEN}/", doc])
    ok(["sed", "-i", "s/s3:GetObject/s3:PutObject/", doc])
    assert version_ids(wiam, arn) == ["v1", "v2", "v3"]

    vdir = wmount.p(f"policy-versions/{fx.policy}")
    assert fx.policy in ls(wmount.p("policy-versions"))
    assert sorted(ls(vdir)) == ["default", "v1.json", "v2.json", "v3.json"]
    assert ok(["readlink", f"{vdir}/default"]).strip() == "v3.json"
    assert ok(["stat", "-c", "%a", f"{vdir}/v1.json"]).strip() == "444"
    assert TOKEN.encode() in cat_bytes(f"{vdir}/v1.json")
    assert b"s3:PutObject" in cat_bytes(f"{vdir}/default")
    # Every version reads as IAM holds it.
    for v in ["v1", "v2", "v3"]:
        want = wraw.get_policy_version(PolicyArn=arn, VersionId=v)["PolicyVersion"]["Document"]
        assert json.loads(cat_bytes(f"{vdir}/{v}.json")) == decode_document(want)

    # Rollback in one command.
    ok(["ln", "-sfn", "v1.json", f"{vdir}/default"])
    assert default_version(wiam, arn) == "v1"
    assert cat_bytes(doc) == cat_bytes(f"{vdir}/v1.json")
    assert TOKEN.encode() in cat_bytes(doc)

    before = snapshot(wraw)
    refused(["rm", f"{vdir}/v1.json"], errno.EBUSY)  # the default
    refused(["rm", f"{vdir}/default"], errno.EPERM)
    for bad in ["v9.json", f"../{fx.policy}/v2.json", "v2"]:
        p = run(["ln", "-sfn", bad, f"{vdir}/default"])
        assert p.returncode != 0, bad
    refused(["touch", f"{vdir}/v9.json"], errno.EACCES)
    assert_unchanged(wraw, before, "refused version changes")
    assert "default version" in wmount.errors_text()

    ok(["rm", f"{vdir}/v2.json"])
    assert version_ids(wiam, arn) == ["v1", "v3"]
    assert sorted(ls(vdir)) == ["default", "v1.json", "v3.json"]


def test_service_linked_roles_read_like_others_and_refuse_changes(wmount, wiam, wraw, fx):
    name = uniq("wt-slr-")
    wiam.create_role(RoleName=name, Path="/aws-service-role/ec2.amazonaws.com/",
                     AssumeRolePolicyDocument=json.dumps(trust_doc()))
    wiam.put_role_policy(RoleName=name, PolicyName="inl",
                         PolicyDocument=json.dumps(identity_doc()))
    rdir = wmount.p(f"roles/{name}")
    assert json.loads(cat_bytes(f"{rdir}/role.json"))["Path"].startswith("/aws-service-role/")
    before = snapshot(wraw)
    refused(["sed", "-i", f"s/{TOKEN}/{NEW_TOKEN}/", f"{rdir}/trust-policy.json"], errno.EPERM)
    refused(["sed", "-i", "s/3600/7200/", f"{rdir}/settings.json"], errno.EPERM)
    refused(["rm", f"{rdir}/policies/inl.json"], errno.EPERM)
    refused(["ln", "-s", f"../../../policies/{fx.policy}.json",
             f"{rdir}/attached/{fx.policy}"], errno.EPERM)
    refused(["rmdir", rdir], errno.EPERM)
    assert_unchanged(wraw, before, "changes to a service-linked role")
    assert "service-linked" in wmount.errors_text()


def test_a_cold_walk_of_policy_versions_costs_pages(make_wmount, wiam):
    names = [uniq("wt-walk-") for _ in range(12)]
    for n in names:
        wiam.create_policy(PolicyName=n, PolicyDocument=json.dumps(identity_doc()))
        wiam.create_policy_version(PolicyArn=policy_arn(n),
                                   PolicyDocument=json.dumps(identity_doc(NEW_TOKEN)),
                                   SetAsDefault=False)
    m = make_wmount()
    p = run(["grep", "-r", "-c", NEW_TOKEN, m.p("policy-versions")])
    assert p.returncode == 0, p.stderr
    for n in names:
        assert f"policy-versions/{n}/v2.json:1" in p.stdout
    calls = m.api_calls()
    # One list of policies and, past the threshold, one bulk read: not a
    # ListPolicyVersions and a GetPolicyVersion per policy.
    assert calls.get("GetAccountAuthorizationDetails", 0) >= 1, calls
    assert calls.get("ListPolicyVersions", 0) < len(names), calls
    assert calls.get("GetPolicyVersion", 0) < len(names), calls


def test_the_account_folder_against_iam(wmount, wiam, wraw):
    acct = wmount.p("account")
    wiam.delete_account_password_policy() if _has_password_policy(wiam) else None
    for a in wiam.list_account_aliases()["AccountAliases"]:
        wiam.delete_account_alias(AccountAlias=a)
    wmount.refresh()
    assert sorted(ls(acct)) == ["credential-report.csv", "summary.json"]
    summary = json.loads(cat_bytes(f"{acct}/summary.json"))
    assert summary["Users"] == wiam.get_account_summary()["SummaryMap"]["Users"]
    # A change through the mount shows in the summary at once (not after the TTL).
    user = uniq("sum-usr-")
    os.mkdir(wmount.p(f"users/{user}"))
    try:
        users = int(ok(["jq", ".Users", f"{acct}/summary.json"]).strip())
        assert users == summary["Users"] + 1
    finally:
        os.rmdir(wmount.p(f"users/{user}"))
    users = int(ok(["jq", ".Users", f"{acct}/summary.json"]).strip())
    assert users == summary["Users"]
    report = cat_bytes(f"{acct}/credential-report.csv").decode()
    assert report.splitlines()[0].startswith("user,arn,")
    assert "<root_account>" in report or len(report.splitlines()) > 1

    # Create the password policy by writing it; jq reads it back.
    policy = {"MinimumPasswordLength": 14, "RequireSymbols": True, "MaxPasswordAge": 90}
    ok(["tee", f"{acct}/password-policy.json"], input=json.dumps(policy))
    held = wiam.get_account_password_policy()["PasswordPolicy"]
    assert held["MinimumPasswordLength"] == 14 and held["RequireSymbols"] is True
    ok(["sed", "-i", "s/14/16/", f"{acct}/password-policy.json"])
    assert wiam.get_account_password_policy()["PasswordPolicy"]["MinimumPasswordLength"] == 16
    before = wiam.get_account_password_policy()["PasswordPolicy"]
    for bad in ['{"MinimumPasswordLength": 3}', '{"MinLength": 8}']:
        p = run(["tee", f"{acct}/password-policy.json"], input=bad)
        assert p.returncode != 0 and os.strerror(errno.EINVAL) in p.stderr, p.stderr
    assert wiam.get_account_password_policy()["PasswordPolicy"] == before

    # The alias: one line; a new one replaces the old.
    ok(["sh", "-c", f"echo acme-prod > '{acct}/alias'"])
    assert wiam.list_account_aliases()["AccountAliases"] == ["acme-prod"]
    assert cat_bytes(f"{acct}/alias") == b"acme-prod\n"
    ok(["sh", "-c", f"echo acme-staging > '{acct}/alias'"])
    assert wiam.list_account_aliases()["AccountAliases"] == ["acme-staging"]
    # (A shell's `>` does not check close(); tee reports the refusal.)
    p = run(["tee", f"{acct}/alias"], input="Not An Alias\n")
    assert p.returncode != 0 and os.strerror(errno.EINVAL) in p.stderr, p.stderr
    assert wiam.list_account_aliases()["AccountAliases"] == ["acme-staging"]

    # rm deletes (after rm's 2 s grace).
    ok(["rm", f"{acct}/alias", f"{acct}/password-policy.json"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
            wiam.list_account_aliases()["AccountAliases"] or _has_password_policy(wiam)):
        time.sleep(0.25)
    assert wiam.list_account_aliases()["AccountAliases"] == []
    assert not _has_password_policy(wiam)
    assert sorted(ls(acct)) == ["credential-report.csv", "summary.json"]


def _has_password_policy(wiam) -> bool:
    try:
        wiam.get_account_password_policy()
        return True
    except wiam.exceptions.NoSuchEntityException:
        return False


def test_users_show_mfa_devices_and_console_passwords(wmount, wiam, fx):
    wiam.create_login_profile(UserName=fx.user, Password="Correct-Horse-9!",
                              PasswordResetRequired=True)
    serial = wiam.create_virtual_mfa_device(
        VirtualMFADeviceName=fx.user)["VirtualMFADevice"]["SerialNumber"]
    wiam.enable_mfa_device(UserName=fx.user, SerialNumber=serial,
                           AuthenticationCode1="123456", AuthenticationCode2="654321")
    udir = wmount.p(f"users/{fx.user}")
    login = json.loads(cat_bytes(f"{udir}/login-profile.json"))
    held = wiam.get_login_profile(UserName=fx.user)["LoginProfile"]
    assert login["PasswordExists"] is True
    assert login["PasswordResetRequired"] == held.get("PasswordResetRequired", False)
    assert b"Correct-Horse" not in cat_bytes(f"{udir}/login-profile.json")
    devices = json.loads(cat_bytes(f"{udir}/mfa-devices.json"))
    assert [d["SerialNumber"] for d in devices] == [serial]
    other = uniq("wt-nologin-")
    wiam.create_user(UserName=other)
    assert json.loads(cat_bytes(wmount.p(f"users/{other}/login-profile.json"))) == {
        "PasswordExists": False}
    assert json.loads(cat_bytes(wmount.p(f"users/{other}/mfa-devices.json"))) == []
    refused(["tee", f"{udir}/mfa-devices.json"], errno.EACCES)


def test_instance_profiles_with_mkdir_ln_rm_rmdir(wmount, wiam, wraw, fx):
    name = uniq("wt-ip-")
    top = wmount.p("instance-profiles")
    ok(["mkdir", f"{top}/{name}"])
    assert wiam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"] == []
    assert sorted(ls(f"{top}/{name}")) == ["instance-profile.json", "roles", "tags.json"]
    ok(["tee", f"{top}/{name}/tags.json"], input='{"team": "web"}')
    held_tags = wiam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Tags"]
    assert held_tags == [{"Key": "team", "Value": "web"}]
    ok(["ln", "-s", f"../../../roles/{fx.role}", f"{top}/{name}/roles/{fx.role}"])
    held = wiam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    assert [r["RoleName"] for r in held["Roles"]] == [fx.role]
    shown = json.loads(cat_bytes(f"{top}/{name}/instance-profile.json"))
    assert shown["Roles"] == [fx.role] and shown["Arn"] == held["Arn"]
    back = wmount.p(f"roles/{fx.role}/instance-profiles/{name}")
    assert ok(["readlink", back]).strip() == f"../../../instance-profiles/{name}"
    assert "instance-profile.json" in ls(f"{back}/")  # resolves inside the mount

    other = uniq("wt-rol2-")
    wiam.create_role(RoleName=other, AssumeRolePolicyDocument=json.dumps(trust_doc()))
    before = snapshot(wraw)
    err = refused(["ln", "-s", f"../../../roles/{other}", f"{top}/{name}/roles/{other}"],
                  errno.ENOSPC)
    assert err
    assert "one role" in wmount.errors_text()
    refused(["rmdir", f"{top}/{name}"], errno.ENOTEMPTY)
    refused(["rmdir", wmount.p(f"roles/{fx.role}")], errno.ENOTEMPTY)
    assert_unchanged(wraw, before, "refused instance-profile changes")
    held = wiam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    assert [r["RoleName"] for r in held["Roles"]] == [fx.role]

    ok(["rm", back])
    assert wiam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"] == []
    ok(["rmdir", f"{top}/{name}"])
    assert name not in ls(top)
    with pytest.raises(wiam.exceptions.NoSuchEntityException):
        wiam.get_instance_profile(InstanceProfileName=name)


def test_policy_attachments_answer_who_has_a_policy(wmount, wiam, fx):
    wiam.attach_role_policy(RoleName=fx.role, PolicyArn=policy_arn(fx.policy))
    pdir = wmount.p(f"policy-attachments/{fx.policy}")
    assert sorted(ls(pdir)) == ["groups", "roles", "users"]
    assert ls(f"{pdir}/roles") == [fx.role]
    assert ok(["readlink", f"{pdir}/roles/{fx.role}"]).strip() == f"../../../roles/{fx.role}"
    assert "role.json" in ls(f"{pdir}/roles/{fx.role}/")
    # Attaching through the mount shows here at once; find answers too.
    ok(["ln", "-s", f"../../../policies/{fx.policy}.json",
        wmount.p(f"users/{fx.user}/attached/{fx.policy}")])
    assert ls(f"{pdir}/users") == [fx.user]
    found = ok(["find", pdir, "-type", "l"]).split()
    assert sorted(found) == sorted([f"{pdir}/roles/{fx.role}", f"{pdir}/users/{fx.user}"])
    refused(["ln", "-s", "../../../groups/x", f"{pdir}/groups/x"], errno.EPERM)


SAML = ('<?xml version="1.0"?><EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" '
        'entityID="https://idp.example.com"><IDPSSODescriptor protocolSupportEnumeration='
        '"urn:oasis:names:tc:SAML:2.0:protocol"><KeyDescriptor><X509Data><X509Certificate>'
        + "A" * 1200 + '</X509Certificate></X509Data></KeyDescriptor></IDPSSODescriptor>'
        '</EntityDescriptor>')


def test_saml_and_oidc_providers_as_files(wmount, wiam, fx):
    saml_dir = wmount.p("identity-providers/saml")
    name = uniq("wt-saml-")
    ok(["tee", f"{saml_dir}/{name}.xml"], input=SAML)
    arns = [p["Arn"] for p in wiam.list_saml_providers()["SAMLProviderList"]]
    arn = next(a for a in arns if a.endswith(f"/{name}"))
    assert wiam.get_saml_provider(SAMLProviderArn=arn)["SAMLMetadataDocument"] == SAML
    assert cat_bytes(f"{saml_dir}/{name}.xml") == SAML.encode()
    # Not XML: refused, IAM unchanged.
    p = run(["tee", f"{saml_dir}/{name}.xml"], input="<not-xml")
    assert p.returncode != 0 and os.strerror(errno.EINVAL) in p.stderr, p.stderr
    assert wiam.get_saml_provider(SAMLProviderArn=arn)["SAMLMetadataDocument"] == SAML
    assert "malformed" in wmount.errors_text()

    oidc_dir = wmount.p("identity-providers/oidc")
    host = f"{uniq('wt-oidc-')}.example.com/id/ABC"
    file = host.replace("/", "%2F") + ".json"
    doc = {"Url": f"https://{host}", "ClientIDList": ["sts.amazonaws.com"],
           "ThumbprintList": ["a" * 40]}
    ok(["tee", f"{oidc_dir}/{file}"], input=json.dumps(doc))
    assert file in ls(oidc_dir)
    oarn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"
    held = wiam.get_open_id_connect_provider(OpenIDConnectProviderArn=oarn)
    assert held["ClientIDList"] == ["sts.amazonaws.com"]
    ok(["jq", "-e", f'.Url == "https://{host}"', f"{oidc_dir}/{file}"])
    # Thumbprints change by sed (moto has no AddClientIDToOpenIDConnectProvider).
    ok(["sed", "-i", f"s/{'a' * 40}/{'b' * 40}/", f"{oidc_dir}/{file}"])
    held = wiam.get_open_id_connect_provider(OpenIDConnectProviderArn=oarn)
    assert held["ThumbprintList"] == ["b" * 40]
    for bad in [{"Url": f"http://{host}"}, {**doc, "ThumbprintList": ["abc"]},
                {**doc, "Url": "https://elsewhere.example.com"}]:
        p = run(["tee", f"{oidc_dir}/{file}"], input=json.dumps(bad))
        assert p.returncode != 0 and os.strerror(errno.EINVAL) in p.stderr, (bad, p.stderr)
    held = wiam.get_open_id_connect_provider(OpenIDConnectProviderArn=oarn)
    assert held["ThumbprintList"] == ["b" * 40]

    # rm of a provider a trust policy names comes back, with the reason.
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": oarn},
        "Action": "sts:AssumeRoleWithWebIdentity"}]}
    wiam.update_assume_role_policy(RoleName=fx.role, PolicyDocument=json.dumps(trust))
    ok(["rm", f"{oidc_dir}/{file}", f"{saml_dir}/{name}.xml"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and f"/{name}" in str(wiam.list_saml_providers()):
        time.sleep(0.25)
    assert f"/{name}" not in str(wiam.list_saml_providers())
    time.sleep(1)
    wiam.get_open_id_connect_provider(OpenIDConnectProviderArn=oarn)  # still there
    assert f"trust policy of roles/{fx.role}" in wmount.errors_text()
    assert file in ls(oidc_dir)


@pytest.mark.parametrize("editor", ["vim", "emacs"])
def test_editors_save_the_new_documents(wmount, wiam, fx, tmp_path, editor):
    """vim (ex mode, Debian's defaults: backup rename, 4913 probe) and emacs
    --batch (lock symlink, X~ backup) save settings.json and a SAML
    metadata file like any document."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = base_env(HOME=str(home))
    name = uniq("wt-ed-")
    ok(["tee", wmount.p(f"identity-providers/saml/{name}.xml")], input=SAML)
    files = [(wmount.p(f"roles/{fx.role}/settings.json"), "3600", "7200"),
             (wmount.p(f"identity-providers/saml/{name}.xml"), "idp.example.com",
              "idp2.example.com")]
    for path, old, new in files:
        if editor == "vim":
            args = ["vim", "-Es", "-c", f"%s/{old}/{new}/", "-c", "wq", str(path)]
        else:
            lisp = (f'(progn (goto-char (point-min)) (search-forward "{old}") '
                    f'(replace-match "{new}") (save-buffer))')
            args = ["emacs", "--batch", str(path), "--eval", lisp]
        p = run(args, env=env, timeout=60)
        assert p.returncode == 0, (args, p.returncode, p.stderr[-2000:])
    assert role_settings(wiam, fx.role)[1] == 7200
    arn = next(p["Arn"] for p in wiam.list_saml_providers()["SAMLProviderList"]
               if p["Arn"].endswith(f"/{name}"))
    held = wiam.get_saml_provider(SAMLProviderArn=arn)["SAMLMetadataDocument"]
    assert "idp2.example.com" in held
    errors = [l for l in wmount.errors_text().splitlines() if name in l or "settings" in l]
    assert not errors, errors
