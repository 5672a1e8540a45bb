"""Accounts that demand MFA (issue 12).

moto_server accepts SerialNumber and TokenCode without checking them, so
these tests check what iamfs sends: every request goes through a recording
proxy in front of moto, which can also answer ExpiredToken as AWS does for
a session that has expired or been revoked.
"""

from __future__ import annotations

import http.client
import http.server
import os
import pty
import re
import select
import subprocess
import threading
import time
import urllib.parse

import pytest

from iamfs_harness import LIVE_MOUNTS, base_env, cat_json, is_mounted, run, sh

pytestmark = pytest.mark.fresh_mount

SERIAL = "arn:aws:iam::123456789012:mfa/me"
ROLE = "marketingadminrole"
MFA_CALLS = ("GetSessionToken", "AssumeRole")
EXPIRED = (b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error>'
           b'<Type>Sender</Type><Code>ExpiredToken</Code>'
           b'<Message>The security token included in the request is expired</Message>'
           b'</Error><RequestId>0</RequestId></ErrorResponse>')


class RecordingProxy:
    """An HTTP proxy in front of moto_server that records every request's
    Action, parameters and signing key, and the credentials STS hands out.
    While `expired` is set it answers ExpiredToken to everything but a new
    MFA session (a GetSessionToken/AssumeRole carrying a TokenCode)."""

    def __init__(self, upstream: str):
        self.upstream = urllib.parse.urlparse(upstream)
        self.requests: list[dict] = []
        self.issued: list[dict] = []  # credentials in STS answers
        self.expired = False
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self._forward()

            def do_POST(self):
                self._forward()

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                query = urllib.parse.urlparse(self.path).query
                params = {k: v[0] for k, v in urllib.parse.parse_qs(
                    body.decode(errors="replace") + "&" + query).items()}
                auth = self.headers.get("Authorization", "")
                m = re.search(r"Credential=([^/]+)/", auth)
                rec = {"action": params.get("Action"), "params": params,
                       "key": m.group(1) if m else None}
                with proxy.lock:
                    proxy.requests.append(rec)
                    refuse = proxy.expired and not (
                        rec["action"] in MFA_CALLS and "TokenCode" in params)
                if refuse:
                    self._answer(403, {"Content-Type": "text/xml"}, EXPIRED)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname,
                                                  proxy.upstream.port, timeout=30)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if rec["action"] in MFA_CALLS and resp.status == 200:
                    text = data.decode(errors="replace")
                    issued = {k: re.search(f"<{k}>(.*?)</{k}>", text, re.S)
                              for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
                    with proxy.lock:
                        proxy.issued.append({k: v.group(1) if v else None
                                             for k, v in issued.items()}
                                            | {"code": params.get("TokenCode")})
                        if "TokenCode" in params:
                            proxy.expired = False
                hdrs = {k: v for k, v in resp.getheaders()
                        if k.lower() not in ("transfer-encoding", "connection", "content-length")}
                self._answer(resp.status, hdrs, data)

            def _answer(self, status, headers, data):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def calls(self, action: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["action"] == action]

    def mfa_calls(self) -> list[dict]:
        with self.lock:
            return [r for r in self.requests
                    if r["action"] in MFA_CALLS and "TokenCode" in r["params"]]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(moto):
    p = RecordingProxy(moto.url)
    yield p
    p.stop()


def aws_files(tmp_path, config: str, credentials: str = "") -> dict:
    """An environment whose AWS config and credentials files are these, with
    no credentials in the environment itself."""
    (tmp_path / "config").write_text(config)
    (tmp_path / "credentials").write_text(credentials)
    env = base_env(AWS_CONFIG_FILE=str(tmp_path / "config"),
                   AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"))
    env.pop("AWS_ACCESS_KEY_ID")
    env.pop("AWS_SECRET_ACCESS_KEY")
    return env


KEYS = "[me]\naws_access_key_id = testing\naws_secret_access_key = testing\n"


def start_on_a_terminal(m, answer: str | None, timeout: float = 30) -> tuple[int, str]:
    """Runs the mount command with a pseudo-terminal as its standard input,
    output and error; types `answer` at the MFA prompt. Returns the exit
    status and everything the terminal showed."""
    m.path.mkdir(exist_ok=True)
    master, slave = os.openpty()
    proc = subprocess.Popen(m.command(), stdin=slave, stdout=slave, stderr=slave,
                            env=m.env, start_new_session=True)
    os.close(slave)
    LIVE_MOUNTS.append(m)
    shown = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    chunk = b""
                shown += chunk
                if not answered and answer is not None and b"Enter MFA code for" in shown:
                    os.write(master, answer.encode() + b"\n")
                    answered = True
                if not chunk and proc.poll() is not None:
                    break
            elif proc.poll() is not None:
                break
        rc = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        os.close(master)
    return rc, shown.decode(errors="replace")


def test_user_profile_prompts_like_the_cli_and_uses_get_session_token(
        make_mount, proxy, tmp_path):
    env = aws_files(tmp_path, f"[profile me]\nregion = us-east-1\nmfa_serial = {SERIAL}\n", KEYS)
    env["RUST_LOG"] = "trace"
    m = make_mount(proxy.url, args=["--profile", "me"], env=env, start=False)
    rc, shown = start_on_a_terminal(m, "314159")
    assert rc == 0, f"{shown}\n{m.log_tail()}"
    assert is_mounted(m.path)
    # The AWS CLI's prompt, and the code was not echoed.
    assert f"Enter MFA code for {SERIAL}: " in shown
    assert "314159" not in shown
    [call] = proxy.mfa_calls()
    assert call["action"] == "GetSessionToken"
    assert call["params"]["SerialNumber"] == SERIAL
    assert call["params"]["TokenCode"] == "314159"
    assert call["params"]["DurationSeconds"] == str(12 * 3600)
    assert call["key"] == "testing"  # asked with the profile's own keys
    session_key = proxy.issued[-1]["AccessKeyId"]
    assert run(["ls", m.p("users")]).returncode == 0
    # Every IAM call is signed with the MFA session, not the long-term keys.
    iam_calls = [r for r in proxy.requests if r["action"] not in MFA_CALLS]
    assert iam_calls and all(r["key"] == session_key for r in iam_calls), iam_calls
    creds = cat_json(m.p(".iamfs/status"))["credentials"]
    assert creds["state"] == "active" and creds["call"] == "GetSessionToken"
    assert creds["mfa_serial"] == SERIAL and creds["expires"]
    # roles/X/credentials come from the MFA session (one AssumeRole with it,
    # no code asked for).
    role = cat_json(m.p(f"roles/{ROLE}/credentials"))
    [assume] = proxy.calls("AssumeRole")
    assert assume["key"] == session_key and "TokenCode" not in assume["params"]
    # Trace level: neither the code nor any secret STS handed out is logged.
    log = m.log_path.read_text(errors="replace")
    assert "GetSessionToken" in log or "MFA session started" in log
    secrets = ["314159", role["SecretAccessKey"], role["SessionToken"]]
    secrets += [c["SecretAccessKey"] for c in proxy.issued] + [c["SessionToken"] for c in proxy.issued]
    for public in (log, sh(f"cat '{m.p('.iamfs/status')}' '{m.p('.iamfs/errors')}'").stdout):
        for secret in secrets:
            assert secret and secret not in public


def test_role_profile_uses_assume_role_with_the_code_of_mfa_command(
        make_mount, proxy, tmp_path, account):
    ran = tmp_path / "ran"
    command = f"echo ran >> '{ran}'; echo 271828"
    role_arn = f"arn:aws:iam::{account.id}:role/{ROLE}"
    env = aws_files(tmp_path, (
        "[profile me]\nregion = us-east-1\n"
        f"[profile admin]\nrole_arn = {role_arn}\nsource_profile = me\n"
        f"mfa_serial = {SERIAL}\nduration_seconds = 3600\n"), KEYS)
    m = make_mount(proxy.url, args=["--profile", "admin", "--mfa-command", command], env=env)
    [call] = proxy.mfa_calls()
    assert call["action"] == "AssumeRole"
    assert call["params"]["RoleArn"] == role_arn
    assert call["params"]["SerialNumber"] == SERIAL
    assert call["params"]["TokenCode"] == "271828"
    assert call["params"]["DurationSeconds"] == "3600"
    assert call["key"] == "testing"  # the source_profile's keys
    assert ran.read_text().count("ran") == 1
    session_key = proxy.issued[-1]["AccessKeyId"]
    status = m.status()
    assert ":assumed-role/" in status["caller"]
    assert status["credentials"]["call"] == "AssumeRole"
    assert status["credentials"]["role_arn"] == role_arn
    # roles/X/credentials: AssumeRole from the MFA'd role session (role
    # chaining), without a code, cached: two reads, one call.
    before = len(proxy.calls("AssumeRole"))
    cat_json(m.p(f"roles/{ROLE}/credentials"))
    cat_json(m.p(f"roles/{ROLE}/credentials"))
    chained = proxy.calls("AssumeRole")[before:]
    assert len(chained) == 1
    assert chained[0]["key"] == session_key and "TokenCode" not in chained[0]["params"]
    # AWS says the session expired: the call fails EACCES, the next one runs
    # the command again and works. (A read of one user: a listing would
    # start a bulk read beside it, which could meet the expiry first.)
    proxy.expired = True
    sh(f"echo 1 > '{m.p('.iamfs/refresh')}'")
    first = run(["cat", m.p("users/user1/user.json")])
    assert first.returncode != 0 and "Permission denied" in first.stderr
    assert run(["cat", m.p("users/user1/user.json")]).returncode == 0
    assert ran.read_text().count("ran") == 2
    assert [c["params"]["TokenCode"] for c in proxy.mfa_calls()] == ["271828", "271828"]


def test_no_terminal_then_a_code_in_iamfs_mfa_and_an_expired_session(
        make_mount, proxy, tmp_path):
    env = base_env(RUST_LOG="trace")  # environment credentials
    m = make_mount(proxy.url, args=["--mfa-serial", SERIAL], env=env)
    assert "no MFA code yet" in m.start_result.stderr
    assert not proxy.mfa_calls()
    renew = f"echo CODE > {os.path.realpath(m.path)}/.iamfs/mfa"
    # No session yet: every call fails EACCES, and says how to start one.
    p = run(["ls", m.p("users")])
    assert p.returncode != 0 and "Permission denied" in p.stderr
    errors = (m.p(".iamfs/errors")).read_text()
    assert f"no MFA session for {SERIAL} yet" in errors and renew in errors
    creds = m.status()["credentials"]
    assert creds["state"] == "none" and renew in creds["renew"]
    # Not a code: refused before any call.
    p = sh(f"echo not-a-code > '{m.p('.iamfs/mfa')}'")
    assert p.returncode != 0 and "Invalid argument" in p.stderr
    assert not proxy.mfa_calls()
    # A code: a new session at once.
    p = sh(f"echo 161803 > '{m.p('.iamfs/mfa')}'")
    assert p.returncode == 0, p.stderr
    [call] = proxy.mfa_calls()
    assert call["action"] == "GetSessionToken"
    assert (call["params"]["SerialNumber"], call["params"]["TokenCode"]) == (SERIAL, "161803")
    assert call["key"] == "testing"
    assert run(["ls", m.p("users")]).returncode == 0
    creds = m.status()["credentials"]
    assert creds["state"] == "active" and creds["expires"]
    # The session expires (AWS answers ExpiredToken): EACCES, and the
    # errors say when and how to renew; the status shows it.
    proxy.expired = True
    sh(f"echo 1 > '{m.p('.iamfs/refresh')}'")
    for _ in range(2):
        p = run(["ls", m.p("roles")])
        assert p.returncode != 0 and "Permission denied" in p.stderr
    errors = m.p(".iamfs/errors").read_text()
    assert "ExpiredToken" in errors and f"AWS refused the MFA session for {SERIAL} at" in errors
    assert renew in errors
    creds = m.status()["credentials"]
    assert creds["state"] == "refused" and renew in creds["renew"]
    # A new code: recovered without remounting.
    p = sh(f"echo 141421 > '{m.p('.iamfs/mfa')}'")
    assert p.returncode == 0, p.stderr
    assert run(["ls", m.p("roles")]).returncode == 0
    assert [c["params"]["TokenCode"] for c in proxy.mfa_calls()] == ["161803", "141421"]
    assert m.status()["credentials"]["state"] == "active"
    # Trace level: no code, no session secret in the log, status or errors.
    log = m.log_path.read_text(errors="replace")
    public = [log, m.p(".iamfs/errors").read_text(), m.p(".iamfs/status").read_text()]
    secrets = ["161803", "141421"] + [c["SecretAccessKey"] for c in proxy.issued] \
        + [c["SessionToken"] for c in proxy.issued]
    for text in public:
        for secret in secrets:
            assert secret and secret not in text, secret
