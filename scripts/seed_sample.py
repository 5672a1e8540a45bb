#!/usr/bin/env python3
"""Seed a small sample IAM account into moto_server (or any IAM endpoint).

    .venv/bin/python scripts/seed_sample.py --endpoint-url http://127.0.0.1:PORT [--bulk]

Importable: the integration tests (tests/integration) reuse `clients`,
`seed_sample` and `seed_bulk`.

What the sample holds (see SAMPLE_* below for the exact names):
  users    user1 (inline policy, attached customer + AWS-managed policy, in
           group developers, tags, one access key), alice (in marketing)
  groups   developers, marketing (each with inline + attached policies)
  roles    marketingadminrole (trusts arn:aws:iam::<account>:root, as in the
           AWS CLI role-profile docs), ec2-readonly-role (trusts
           ec2.amazonaws.com, has the AWS-managed ReadOnlyAccess attached)
  policies s3-read-reports, deploy-app, billing-view (path /finance/)

AWS-managed policies exist in moto only when the server runs with
MOTO_IAM_LOAD_MANAGED_POLICIES=true (scripts/moto.sh and the tests set it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

# Dummy credentials: moto accepts anything, and the SDK must never go looking
# for real ones (instance metadata is a non-loopback address).
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
REGION = "us-east-1"

SAMPLE_USERS = ["user1", "alice"]
SAMPLE_GROUPS = ["developers", "marketing"]
SAMPLE_ROLES = ["marketingadminrole", "ec2-readonly-role"]
SAMPLE_POLICIES = ["s3-read-reports", "deploy-app", "billing-view"]
AWS_POLICY_EC2 = "ReadOnlyAccess"
AWS_POLICY_S3 = "AmazonS3ReadOnlyAccess"


def aws_policy_arn(name: str) -> str:
    return f"arn:aws:iam::aws:policy/{name}"


def clients(endpoint_url: str, region: str = REGION):
    """(iam, sts) boto3 clients for endpoint_url with dummy credentials."""
    import boto3

    for k, v in DUMMY_ENV.items():
        os.environ.setdefault(k, v)
    session = boto3.Session(
        aws_access_key_id=DUMMY_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )
    return (
        session.client("iam", endpoint_url=endpoint_url),
        session.client("sts", endpoint_url=endpoint_url),
    )


def retrying(iam):
    """iam.<op>(...) that retries moto's 500s (moto_server races: "dictionary
    changed size during iteration" when a lookup meets a concurrent create).
    Safe: a create retried after it did land answers EntityAlreadyExists,
    taken as done; the other seeding calls are idempotent."""
    from botocore.exceptions import ClientError
    from botocore.parsers import ResponseParserError

    class R:
        def __getattr__(self, op):
            fn = getattr(iam, op)

            def call(**kw):
                for attempt in range(12):
                    try:
                        return fn(**kw)
                    except ResponseParserError:
                        pass
                    except ClientError as e:
                        code = e.response.get("Error", {}).get("Code")
                        if attempt and code == "EntityAlreadyExists":
                            return None
                        if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) < 500:
                            raise
                    time.sleep(0.05 * (attempt + 1))
                return fn(**kw)
            return call
    return R()


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*", **extra) -> dict:
    st = {"Effect": "Allow", "Action": action, "Resource": resource}
    st.update(extra)
    return st


def trust_account(account: str) -> str:
    return doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "sts:AssumeRole",
        }
    )


def trust_service(service: str) -> str:
    return doc(
        {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
        }
    )


def seed_sample(iam, sts) -> dict:
    """Create the sample account. Returns a dict of what was made."""
    account = sts.get_caller_identity()["Account"]

    arns = {}
    arns["s3-read-reports"] = iam.create_policy(
        PolicyName="s3-read-reports",
        Description="Read the reports bucket",
        PolicyDocument=doc(
            allow(["s3:GetObject", "s3:ListBucket"],
                  ["arn:aws:s3:::example-reports", "arn:aws:s3:::example-reports/*"]),
        ),
    )["Policy"]["Arn"]
    arns["deploy-app"] = iam.create_policy(
        PolicyName="deploy-app",
        PolicyDocument=doc(
            allow(["codedeploy:CreateDeployment", "codedeploy:Get*"]),
            allow("ecs:UpdateService",
                  f"arn:aws:ecs:us-east-1:{account}:service/app/*"),
        ),
    )["Policy"]["Arn"]
    arns["billing-view"] = iam.create_policy(
        PolicyName="billing-view",
        Path="/finance/",
        PolicyDocument=doc(
            allow(["aws-portal:ViewBilling", "ce:Get*"]),
            {"Effect": "Deny", "Action": "aws-portal:Modify*", "Resource": "*"},
        ),
    )["Policy"]["Arn"]

    # groups
    iam.create_group(GroupName="developers")
    iam.put_group_policy(
        GroupName="developers",
        PolicyName="dev-logs",
        PolicyDocument=doc(allow(["logs:Get*", "logs:Describe*", "logs:FilterLogEvents"])),
    )
    iam.attach_group_policy(GroupName="developers", PolicyArn=arns["deploy-app"])
    iam.create_group(GroupName="marketing", Path="/business/")
    iam.put_group_policy(
        GroupName="marketing",
        PolicyName="marketing-assets",
        PolicyDocument=doc(
            allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::example-marketing/*")
        ),
    )
    iam.attach_group_policy(GroupName="marketing", PolicyArn=arns["billing-view"])
    iam.attach_group_policy(GroupName="marketing", PolicyArn=aws_policy_arn(AWS_POLICY_S3))

    # users
    iam.create_user(
        UserName="user1",
        Tags=[{"Key": "team", "Value": "dev"}, {"Key": "cost-center", "Value": "1234"}],
    )
    iam.put_user_policy(
        UserName="user1",
        PolicyName="s3-home",
        PolicyDocument=doc(
            allow("s3:*", "arn:aws:s3:::example-home/user1/*"),
            allow("s3:ListBucket", "arn:aws:s3:::example-home",
                  Condition={"StringLike": {"s3:prefix": ["user1/*"]}}),
        ),
    )
    iam.attach_user_policy(UserName="user1", PolicyArn=arns["s3-read-reports"])
    iam.add_user_to_group(GroupName="developers", UserName="user1")
    key = iam.create_access_key(UserName="user1")["AccessKey"]
    iam.create_user(UserName="alice", Path="/business/")
    iam.add_user_to_group(GroupName="marketing", UserName="alice")

    # roles
    iam.create_role(
        RoleName="marketingadminrole",
        AssumeRolePolicyDocument=trust_account(account),
        Description="Marketing administrators (assumed from the account)",
        MaxSessionDuration=7200,
        Tags=[{"Key": "department", "Value": "marketing"}],
    )
    iam.put_role_policy(
        RoleName="marketingadminrole",
        PolicyName="marketing-admin",
        PolicyDocument=doc(allow(["s3:*"], ["arn:aws:s3:::example-marketing",
                                           "arn:aws:s3:::example-marketing/*"])),
    )
    iam.attach_role_policy(RoleName="marketingadminrole", PolicyArn=arns["billing-view"])
    iam.create_role(
        RoleName="ec2-readonly-role",
        Path="/service-role/",
        AssumeRolePolicyDocument=trust_service("ec2.amazonaws.com"),
        Description="EC2 instances: read-only access",
    )
    iam.attach_role_policy(RoleName="ec2-readonly-role",
                           PolicyArn=aws_policy_arn(AWS_POLICY_EC2))

    return {
        "account": account,
        "users": list(SAMPLE_USERS),
        "groups": list(SAMPLE_GROUPS),
        "roles": list(SAMPLE_ROLES),
        "policies": dict(arns),
        "access_key_id": key["AccessKeyId"],
        "access_key_secret": key["SecretAccessKey"],
    }


def seed_bulk(iam, account: str, *, roles: int = 110, policies: int = 110,
              users: int = 12, groups: int = 5, prefix: str = "bulk") -> dict:
    """Many entities, enough that ListRoles/ListPolicies paginate (moto's
    page is 100 items). Every role has an inline policy and every 10th an
    attached policy, so a `grep -r` has documents to read."""
    made = {"roles": [], "policies": [], "users": [], "groups": []}
    for i in range(policies):
        name = f"{prefix}-policy-{i:03d}"
        path = "/" if i % 3 else f"/team-{i % 4}/"
        arn = iam.create_policy(
            PolicyName=name, Path=path,
            PolicyDocument=doc(allow([f"s3:GetObject"], f"arn:aws:s3:::{prefix}-{i:03d}/*")),
        )["Policy"]["Arn"]
        made["policies"].append((name, arn))
    for i in range(roles):
        name = f"{prefix}-role-{i:03d}"
        iam.create_role(
            RoleName=name,
            Path="/" if i % 5 else "/apps/",
            AssumeRolePolicyDocument=(trust_account(account) if i % 2
                                      else trust_service("lambda.amazonaws.com")),
        )
        iam.put_role_policy(
            RoleName=name, PolicyName="inline",
            PolicyDocument=doc(allow("sqs:SendMessage",
                                     f"arn:aws:sqs:us-east-1:{account}:{name}")),
        )
        if i % 10 == 0 and made["policies"]:
            iam.attach_role_policy(RoleName=name,
                                   PolicyArn=made["policies"][i % len(made["policies"])][1])
        made["roles"].append(name)
    for i in range(groups):
        name = f"{prefix}-group-{i}"
        iam.create_group(GroupName=name)
        made["groups"].append(name)
    for i in range(users):
        name = f"{prefix}-user-{i:02d}"
        iam.create_user(UserName=name, Tags=[{"Key": "index", "Value": str(i)}])
        if made["groups"]:
            iam.add_user_to_group(GroupName=made["groups"][i % len(made["groups"])],
                                  UserName=name)
        made["users"].append(name)
    return made


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint-url", required=True,
                    help="IAM/STS endpoint, e.g. http://127.0.0.1:5000 (moto_server)")
    ap.add_argument("--region", default=REGION)
    ap.add_argument("--bulk", action="store_true",
                    help="also create 110 roles and 110 policies (pagination)")
    ap.add_argument("--json", action="store_true", help="print what was made as JSON")
    args = ap.parse_args(argv)
    iam, sts = clients(args.endpoint_url, args.region)
    try:
        made = seed_sample(iam, sts)
        if args.bulk:
            made["bulk"] = seed_bulk(iam, made["account"])
    except iam.exceptions.EntityAlreadyExistsException as e:
        print(f"seed_sample: already seeded? {e}", file=sys.stderr)
        return 1
    except iam.exceptions.NoSuchEntityException as e:
        print(f"seed_sample: {e}\n(AWS-managed policies need moto_server started with "
              "MOTO_IAM_LOAD_MANAGED_POLICIES=true)", file=sys.stderr)
        return 1
    if args.json:
        made.pop("access_key_secret", None)
        print(json.dumps(made, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
