"""Helpers for iamfs's integration tests: run real tools with bounded
timeouts, start moto_server on loopback, mount and unmount iamfs.

Everything here talks only to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

# The binary under test: $IAMFS_BIN, else the debug build in $CARGO_TARGET_DIR
# (what scripts/test.sh just built), else target/debug.
IAMFS_BIN = Path(os.environ.get("IAMFS_BIN")
                 or Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "debug" / "iamfs")
REGION = "us-east-1"
TIMEOUT = 60  # default bound for one tool invocation, seconds


class Timeout(AssertionError):
    pass


def base_env(**extra: str) -> dict:
    """Environment for tools and for iamfs: C locale, dummy credentials,
    no instance-metadata probing, no ~/.aws influence."""
    env = dict(os.environ)
    for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL",
              "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS", "AWS_SESSION_TOKEN",
              "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        env.pop(k, None)
    env.update(
        LC_ALL="C",
        LANG="C",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    env.update(extra)
    return env


def run(args, *, timeout: float = TIMEOUT, env: dict | None = None, cwd=None,
        input: bytes | str | None = None, text: bool = True) -> subprocess.CompletedProcess:
    """Run a real tool; never hangs longer than `timeout` (raises Timeout)."""
    if isinstance(input, str) and not text:
        input = input.encode()
    try:
        return subprocess.run(
            [str(a) for a in args], capture_output=True, timeout=timeout,
            env=env if env is not None else base_env(), cwd=cwd, input=input,
            text=text, stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise Timeout(f"{list(map(str, args))} did not finish within {timeout}s "
                      "(a hang in the filesystem?)") from None


def sh(script: str, **kw) -> subprocess.CompletedProcess:
    """bash -c SCRIPT (for redirections like `echo x > file`)."""
    return run(["bash", "-c", script], **kw)


def ok(args, **kw) -> str:
    """Run and require exit 0; return stdout."""
    p = run(args, **kw)
    assert p.returncode == 0, (f"{list(map(str, args))} exited {p.returncode}\n"
                               f"stdout: {p.stdout!r}\nstderr: {p.stderr!r}")
    return p.stdout


def cat_bytes(path) -> bytes:
    p = run(["cat", path], text=False)
    assert p.returncode == 0, f"cat {path} exited {p.returncode}: {p.stderr!r}"
    return p.stdout


def cat_json(path):
    return json.loads(cat_bytes(path))


def ls(path, *flags: str) -> list[str]:
    return ok(["ls", "-1", *flags, path]).splitlines()


def expected_doc_bytes(doc) -> bytes:
    """The contract's rendering of a decoded JSON document."""
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mounted_paths() -> set[str]:
    out = set()
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 1:
                out.add(parts[1].replace("\\040", " "))
    return out


def is_mounted(path) -> bool:
    return str(path) in mounted_paths()


def wait_for(pred, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


def pids_of(binary: Path, mountpoint: Path) -> list[int]:
    """Live processes running `binary` with `mountpoint` among its arguments
    (the daemons this test started; matched by exact argv, never by name)."""
    found = []
    want_bin = str(binary)
    want_mnt = str(mountpoint)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            argv = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        argv = [a.decode(errors="replace") for a in argv if a]
        if not argv or want_mnt not in argv:
            continue
        exe = argv[0]
        if exe != want_bin and os.path.realpath(exe) != os.path.realpath(want_bin):
            continue
        state = stat.rsplit(")", 1)[1].split()[0]
        if state != "Z":
            found.append(int(d))
    return found


# --------------------------------------------------------------------------
# moto_server
# --------------------------------------------------------------------------

class MotoServer:
    """moto_server on 127.0.0.1:<free port>, with AWS-managed policies loaded."""

    def __init__(self, logdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = logdir / f"moto-{self.port}.log"
        exe = Path(sys.executable).parent / "moto_server"
        if not exe.exists():
            raise RuntimeError(f"{exe} missing: run scripts/install-deps.sh")
        env = base_env(MOTO_IAM_LOAD_MANAGED_POLICIES="true")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )
        # scripts/test.sh kills it by this pid if pytest itself dies.
        self.pid_path = self.log_path.with_suffix(".pid")
        self.pid_path.write_text(f"{self.proc.pid}\n")
        if not wait_for(self._answers, 30, 0.1):
            self.stop()
            raise RuntimeError(f"moto_server did not answer on {self.url}: "
                               f"{self.log_path.read_text()[-2000:]}")

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"moto_server exited: {self.log_path.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(self.url + "/moto-api/", timeout=2).read()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def requests(self) -> int:
        """HTTP requests moto has answered so far (werkzeug logs one line each)."""
        text = self.log_path.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if '"POST ' in line or '"GET ' in line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        self.pid_path.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# iamfs mounts
# --------------------------------------------------------------------------

LIVE_MOUNTS: list["Mount"] = []


class Mount:
    """One iamfs daemon mounted at `<workdir>/mnt`, logging to `<workdir>/iamfs.log`."""

    def __init__(self, workdir: Path, endpoint: str | None, *, args=(), env: dict | None = None,
                 endpoint_via_env: bool = False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.path = self.workdir / "mnt"
        self.log_path = self.workdir / "iamfs.log"
        self.endpoint = endpoint
        self.args = list(args)
        self.env = env if env is not None else base_env()
        if endpoint_via_env:
            self.env["AWS_ENDPOINT_URL"] = endpoint
        self.endpoint_via_env = endpoint_via_env
        self.start_result: subprocess.CompletedProcess | None = None

    def command(self) -> list[str]:
        cmd = [str(IAMFS_BIN), "--region", REGION, "--log-file", str(self.log_path)]
        if self.endpoint and not self.endpoint_via_env:
            cmd += ["--endpoint-url", self.endpoint]
        return cmd + self.args + [str(self.path)]

    def start(self, timeout: float = 30) -> "Mount":
        self.path.mkdir(exist_ok=True)
        # Files, not pipes: the parent's exit is what we wait for; a daemon
        # that kept our pipes open would otherwise look like a hang here
        # (test_daemon checks that separately).
        out, err = self.workdir / "start.stdout", self.workdir / "start.stderr"
        with open(out, "wb") as o, open(err, "wb") as e:
            try:
                rc = subprocess.run(self.command(), stdout=o, stderr=e, stdin=subprocess.DEVNULL,
                                    env=self.env, timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                rc = None
        self.start_result = subprocess.CompletedProcess(
            self.command(), rc, out.read_text(errors="replace"), err.read_text(errors="replace"))
        LIVE_MOUNTS.append(self)
        if rc is None:
            raise AssertionError(f"iamfs did not return within {timeout}s\n{self.diagnostics()}")
        if rc != 0:
            raise AssertionError(f"iamfs exited {rc}\n{self.diagnostics()}")
        if not is_mounted(self.path):
            raise AssertionError(f"iamfs exited 0 but {self.path} is not in /proc/mounts\n"
                                 f"{self.diagnostics()}")
        return self

    def p(self, rel: str = "") -> Path:
        return self.path / rel if rel else self.path

    def status(self) -> dict:
        return json.loads(cat_bytes(self.p(".iamfs/status")))

    def calls(self) -> int:
        return self.status()["api_calls_total"]

    def refresh(self):
        p = sh(f"echo 1 > '{self.p('.iamfs/refresh')}'")
        assert p.returncode == 0, f"refresh failed: {p.stderr!r}"

    def pids(self) -> list[int]:
        return pids_of(IAMFS_BIN, self.path)

    def log_tail(self, n: int = 80) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError as e:
            return f"(no log: {e})"
        return "\n".join(lines[-n:])

    def diagnostics(self) -> str:
        r = self.start_result
        s = f"command: {' '.join(self.command())}\n"
        if r is not None:
            s += f"exit: {r.returncode}\nstdout: {r.stdout[-2000:]!r}\nstderr: {r.stderr[-4000:]!r}\n"
        return s + f"log tail ({self.log_path}):\n{self.log_tail()}"

    def unmount(self):
        if self in LIVE_MOUNTS:
            LIVE_MOUNTS.remove(self)
        pids = self.pids()
        if is_mounted(self.path):
            ok_ = wait_for(lambda: run(["fusermount3", "-u", self.path], timeout=20).returncode == 0
                           or not is_mounted(self.path), 10, 0.5)
            if not ok_:
                run(["fusermount3", "-uz", self.path], timeout=20)
        # The daemon should exit by itself once unmounted.
        if not wait_for(lambda: not any(os.path.exists(f"/proc/{p}") and p in self.pids()
                                        for p in pids), 10):
            for p in self.pids():
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# --------------------------------------------------------------------------
# ground truth from boto3 (paginated everywhere)
# --------------------------------------------------------------------------

def paginate(iam, op: str, key: str, **kw) -> list:
    out = []
    for page in iam.get_paginator(op).paginate(**kw):
        out.extend(page[key])
    return out


def role_names(iam) -> list[str]:
    return [r["RoleName"] for r in paginate(iam, "list_roles", "Roles")]


def user_names(iam) -> list[str]:
    return [u["UserName"] for u in paginate(iam, "list_users", "Users")]


def group_names(iam) -> list[str]:
    return [g["GroupName"] for g in paginate(iam, "list_groups", "Groups")]


def local_policies(iam) -> list[dict]:
    return paginate(iam, "list_policies", "Policies", Scope="Local")


def aws_policies(iam) -> list[dict]:
    return paginate(iam, "list_policies", "Policies", Scope="AWS")


def policy_by_name(iam, name: str, scope: str = "Local") -> dict:
    for p in paginate(iam, "list_policies", "Policies", Scope=scope):
        if p["PolicyName"] == name:
            return p
    raise KeyError(name)


def raw_client(iam):
    """A copy of `iam` that leaves policy documents as the strings the
    endpoint sent. botocore's own decoding (handlers.json_decode_policies)
    URL-decodes every document unconditionally, but moto returns some of
    them plain (GetPolicyVersion, ListRoles, GAAD's trust policies): a
    literal "%25" in such a document comes out of boto3 as "%". Ground truth
    for documents comes from here and decode_document()."""
    import boto3
    import botocore.handlers
    c = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name=REGION).client("iam", endpoint_url=iam.meta.endpoint_url)
    c.meta.events.unregister("after-call.iam", botocore.handlers.json_decode_policies)
    return c


def decode_document(text: str):
    """A document as IAM sent it: JSON text, or URL-encoded JSON text (which
    never parses as JSON: it starts with %7B). Decoded exactly once."""
    from urllib.parse import unquote
    assert isinstance(text, str), f"expected the raw document string, got {type(text)}"
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(unquote(text))


def policy_document(iam_raw, arn: str):
    pol = iam_raw.get_policy(PolicyArn=arn)["Policy"]
    return decode_document(iam_raw.get_policy_version(
        PolicyArn=arn, VersionId=pol["DefaultVersionId"])["PolicyVersion"]["Document"])


def inline_document(iam_raw, kind: str, entity: str, policy: str):
    if kind == "users":
        raw = iam_raw.get_user_policy(UserName=entity, PolicyName=policy)["PolicyDocument"]
    elif kind == "groups":
        raw = iam_raw.get_group_policy(GroupName=entity, PolicyName=policy)["PolicyDocument"]
    else:
        raw = iam_raw.get_role_policy(RoleName=entity, PolicyName=policy)["PolicyDocument"]
    return decode_document(raw)


def trust_document(iam_raw, role: str):
    return decode_document(iam_raw.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"])


def parse_time(value) -> float:
    """An ISO-8601 timestamp from a file (as IAM writes it) -> epoch seconds."""
    from datetime import datetime
    assert isinstance(value, str), f"expected an ISO-8601 string, got {value!r}"
    v = value.replace("Z", "+00:00")
    return datetime.fromisoformat(v).timestamp()
