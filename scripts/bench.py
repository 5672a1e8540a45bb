#!/usr/bin/env python3
"""Benchmark iamfs against moto_server: the figures and targets of issue 5.

    cargo build --release
    .venv/bin/python scripts/bench.py                       # 1,000 roles, 1,000 users, 300 policies
    .venv/bin/python scripts/bench.py --scale-roles 10000   # ... and peak RSS at 10,000 roles
    .venv/bin/python scripts/bench.py --quick --binary target/debug/iamfs   # CI form, < 1 min

Starts its own moto_server on a free 127.0.0.1 port (AWS-managed policies
not loaded), seeds it through boto3 with a thread pool (seeding time is
reported separately), mounts iamfs (fresh mounts wherever a cold cache
matters) and measures:

  1. cold `grep -r` over roles/, over policies/ and over both (one fresh
     mount each): wall time and IAM calls by operation (.iamfs/status);
  2. `aws iam get-account-authorization-details` (the venv's AWS CLI) for
     the same data on the same endpoint, and the ratio;
  3. warm `grep -r`, `ls -l` and `ls -lR` over roles/ against a copy of the
     same tree on tmpfs (/dev/shm): medians of --runs runs, and the ratios;
  4. cached reads (os.open/os.read/os.close in this process) of documents
     and of roles/X/credentials: median and p99 per read;
  5. the daemon's peak RSS (VmHWM) after reading the whole account (a cold
     grep -r over users/ groups/ roles/ policies/ on a fresh mount: once
     with every file, once without access-keys.json, which is one
     ListAccessKeys per user by nature and is what the 10,000-role run
     compares like with like), and at --scale-roles roles if asked (with the
     cold and warm scans at that size too);
  6. time from starting iamfs to a mount whose .iamfs/status stats, and
     the IAM calls made by then (must be 0);
  7. read-only against read-write (issue 15): warm `grep -r`, `ls -lR` and
     `find -exec cat` over roles/ on a --read-only mount, a read-write mount
     and the tmpfs copy, side by side and interleaved, idle and with the
     command and both daemons pinned to one CPU (taskset), with the
     kernel's requests per run on each mount (a warm read-only walk sends
     none per file) and the load averages before and after. Also at
     --scale-roles roles if asked. `--only-read-only` seeds and runs only
     this section.

Timings are wall clock on a shared machine: run it on an idle one, and read
the per-run figures in the JSON before trusting a ratio near its bound.
`grep` writes into a pipe, never /dev/null (GNU grep stops at the first
match when its output is /dev/null).

Prints a table, writes the same figures as JSON (--json), and PASS/FAIL per
target. Exit status: 0, or 1 with --strict when a target fails, 2 when the
harness itself fails (a tool errors, a mount does not come up).

Only loopback addresses are used. Nothing outside its temporary directory
(and the /dev/shm copy, removed at the end) is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

import iamfs_harness as H  # noqa: E402  (mount helpers, env, free ports)
import seed_sample  # noqa: E402  (clients, document helpers)

REGION = "us-east-1"
PREFIX = "bench"

# Issue 5's targets.
MAX_COLD_CALLS = 50          # IAM calls for a cold scan of roles/ and policies/
MAX_WARM_RATIO = 3.0         # warm grep -r / ls -l against tmpfs
MAX_CACHED_READ_MS = 1.0     # cached cat
MAX_RSS_MB = 150.0           # peak RSS at the default size
MAX_MOUNT_MS = 200.0         # start to answering
# Issue 15: a warm read-only grep -r within this of tmpfs (idle).
MAX_RO_GREP_RATIO = 1.3
MAX_COLD_LIKE_RATIO = 0.8     # issue 15: cold walk against the CLI reading the same kinds

DEFAULT = dict(roles=1000, users=1000, policies=300, groups=20)
QUICK = dict(roles=120, users=60, policies=40, groups=5)


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class HarnessError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# moto_server (without AWS-managed policies: they slow GAAD down)
# --------------------------------------------------------------------------

class Moto:
    def __init__(self, workdir: Path):
        self.port = H.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"moto-{self.port}.log"
        exe = Path(sys.executable).parent / "moto_server"
        if not exe.exists():
            raise HarnessError(f"{exe} missing: run scripts/install-deps.sh")
        env = H.base_env()
        env.pop("MOTO_IAM_LOAD_MANAGED_POLICIES", None)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True)
        if not H.wait_for(self._answers, 30, 0.1):
            self.stop()
            raise HarnessError(f"moto_server did not answer on {self.url}")

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise HarnessError("moto_server exited: "
                               + self.log_path.read_text(errors="replace")[-2000:])
        try:
            urllib.request.urlopen(self.url + "/moto-api/", timeout=2).read()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


# --------------------------------------------------------------------------
# seeding, concurrently
# --------------------------------------------------------------------------

def _client_factory(url: str):
    """One IAM client shared by the seeding threads (botocore clients are
    thread-safe; making one per thread costs ~0.2 s of CPU each)."""
    import boto3
    from botocore.config import Config

    cfg = Config(retries={"max_attempts": 8, "mode": "standard"}, max_pool_connections=64)
    s = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name=REGION)
    iam = s.client("iam", endpoint_url=url, config=cfg)
    r = seed_sample.retrying(iam)
    return lambda: r


def role_name(i: int) -> str:
    return f"{PREFIX}-role-{i:05d}"


def user_name(i: int) -> str:
    return f"{PREFIX}-user-{i:05d}"


def policy_name(i: int) -> str:
    return f"{PREFIX}-policy-{i:04d}"


def group_name(i: int) -> str:
    return f"{PREFIX}-group-{i:02d}"


def policy_arn(account: str, i: int) -> str:
    path = "/" if i % 3 else f"/team-{i % 4}/"
    return f"arn:aws:iam::{account}:policy{path}{policy_name(i)}"


def _managed_doc(i: int) -> str:
    a = seed_sample.allow
    return seed_sample.doc(
        a(["s3:GetObject", "s3:ListBucket"],
          [f"arn:aws:s3:::{PREFIX}-data-{i:04d}", f"arn:aws:s3:::{PREFIX}-data-{i:04d}/*"]),
        a(["dynamodb:GetItem", "dynamodb:Query"],
          f"arn:aws:dynamodb:us-east-1:*:table/{PREFIX}-{i:04d}",
          Condition={"StringEquals": {"aws:RequestedRegion": "us-east-1"}}),
        {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"},
    )


def _inline_doc(account: str, name: str) -> str:
    a = seed_sample.allow
    return seed_sample.doc(
        a(["sqs:SendMessage", "sqs:ReceiveMessage"], f"arn:aws:sqs:us-east-1:{account}:{name}"),
        a("logs:PutLogEvents", f"arn:aws:logs:us-east-1:{account}:log-group:/app/{name}:*"),
    )


def _existing(iam, op: str, key: str, field: str) -> set[str]:
    return {x[field] for x in H.paginate(iam, op, key)}


def seed_account(url: str, *, roles: int, users: int, policies: int, groups: int,
                 threads: int = 16) -> dict:
    """Creates what is missing of the bench account (idempotent, so a larger
    --scale-roles run adds to the default one). Every role has an inline
    policy, every 10th an attached managed policy; every user has tags and a
    group, every 5th an inline policy, every 4th an attached policy."""
    get = _client_factory(url)
    iam, sts = seed_sample.clients(url)
    account = sts.get_caller_identity()["Account"]
    t0 = time.monotonic()
    have_p = {p["PolicyName"] for p in H.paginate(iam, "list_policies", "Policies", Scope="Local")}
    have_g = _existing(iam, "list_groups", "Groups", "GroupName")
    have_r = _existing(iam, "list_roles", "Roles", "RoleName")
    have_u = _existing(iam, "list_users", "Users", "UserName")
    calls = [0]
    lock = threading.Lock()

    def counted(n: int):
        with lock:
            calls[0] += n

    def mk_policy(i):
        name = policy_name(i)
        path = "/" if i % 3 else f"/team-{i % 4}/"
        get().create_policy(PolicyName=name, Path=path, PolicyDocument=_managed_doc(i),
                            Description=f"bench policy {i}")
        counted(1)

    def mk_group(i):
        get().create_group(GroupName=group_name(i))
        counted(1)

    def mk_role(i):
        c = get()
        name = role_name(i)
        c.create_role(
            RoleName=name, Path="/" if i % 5 else "/apps/",
            AssumeRolePolicyDocument=(seed_sample.trust_account(account) if i % 2
                                      else seed_sample.trust_service("lambda.amazonaws.com")),
            Description=f"bench role {i}",
            Tags=[{"Key": "team", "Value": f"team-{i % 7}"}])
        c.put_role_policy(RoleName=name, PolicyName="inline",
                          PolicyDocument=_inline_doc(account, name))
        n = 2
        if i % 10 == 0 and policies:
            c.attach_role_policy(RoleName=name, PolicyArn=policy_arn(account, i % policies))
            n += 1
        counted(n)

    def mk_user(i):
        c = get()
        name = user_name(i)
        c.create_user(UserName=name, Tags=[{"Key": "index", "Value": str(i)}])
        n = 1
        if groups:
            c.add_user_to_group(GroupName=group_name(i % groups), UserName=name)
            n += 1
        if i % 5 == 0:
            c.put_user_policy(UserName=name, PolicyName="home",
                              PolicyDocument=seed_sample.doc(seed_sample.allow(
                                  "s3:*", f"arn:aws:s3:::{PREFIX}-home/{name}/*")))
            n += 1
        if i % 4 == 0 and policies:
            c.attach_user_policy(UserName=name, PolicyArn=policy_arn(account, i % policies))
            n += 1
        counted(n)

    def run_all(fn, idx):
        with ThreadPoolExecutor(threads) as pool:
            for f in as_completed([pool.submit(fn, i) for i in idx]):
                f.result()

    run_all(mk_policy, [i for i in range(policies) if policy_name(i) not in have_p])
    run_all(mk_group, [i for i in range(groups) if group_name(i) not in have_g])
    run_all(mk_role, [i for i in range(roles) if role_name(i) not in have_r])
    run_all(mk_user, [i for i in range(users) if user_name(i) not in have_u])
    secs = time.monotonic() - t0
    return {"account": account, "seconds": round(secs, 2), "calls": calls[0],
            "calls_per_second": round(calls[0] / secs, 1) if secs else None,
            "threads": threads}


# --------------------------------------------------------------------------
# mounts
# --------------------------------------------------------------------------

class BenchMount:
    """One daemon; the start is timed up to the first answered stat."""

    seq = 0
    extra_args: list[str] = []     # --iamfs-arg, for every mount

    def __init__(self, binary: Path, workdir: Path, url: str, args=()):
        BenchMount.seq += 1
        self.binary = binary
        self.dir = workdir / f"m{BenchMount.seq:02d}"
        self.dir.mkdir(parents=True)
        self.path = self.dir / "mnt"
        self.path.mkdir()
        self.log = self.dir / "iamfs.log"
        self.cmd = [str(binary), "--region", REGION, "--endpoint-url", url,
                    "--log-file", str(self.log), *args, *self.extra_args, str(self.path)]
        self.start_ms: float | None = None
        self.pid: int | None = None

    def start(self) -> "BenchMount":
        status = self.path / ".iamfs" / "status"
        t0 = time.perf_counter()
        p = subprocess.run(self.cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           env=H.base_env(), timeout=60)
        if p.returncode != 0:
            raise HarnessError(f"iamfs exited {p.returncode}: {p.stderr.decode(errors='replace')}"
                               f"\nlog: {self.log_tail()}")
        deadline = t0 + 30
        while True:
            try:
                os.stat(status)
                break
            except OSError:
                if time.perf_counter() > deadline:
                    raise HarnessError(f"{status} did not answer in 30 s\n{self.log_tail()}")
                time.sleep(0.001)
        self.start_ms = (time.perf_counter() - t0) * 1000
        pids = H.pids_of(self.binary, self.path)
        self.pid = pids[0] if pids else None
        _mounts.append(self)
        return self

    def p(self, rel: str) -> Path:
        return self.path / rel

    def status(self) -> dict:
        return json.loads(read_file(self.p(".iamfs/status")))

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def vm(self) -> dict:
        """VmHWM / VmRSS of the daemon, in MB."""
        out = {}
        if self.pid is None:
            return out
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    out[k] = round(int(v.split()[0]) / 1024, 1)
        except OSError:
            pass
        return out

    def unmount(self) -> None:
        if self in _mounts:
            _mounts.remove(self)
        if H.is_mounted(self.path):
            if subprocess.run(["fusermount3", "-u", str(self.path)],
                              capture_output=True, timeout=30).returncode != 0:
                subprocess.run(["fusermount3", "-uz", str(self.path)],
                               capture_output=True, timeout=30)
        if self.pid is not None:
            if not H.wait_for(lambda: not Path(f"/proc/{self.pid}").exists()
                              or self.pid not in H.pids_of(self.binary, self.path), 10):
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


_mounts: list[BenchMount] = []


def read_file(path) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            b = os.read(fd, 1 << 16)
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------

def timed(args, cwd, ok_codes=(0,)) -> tuple[float, bytes]:
    """Wall seconds of a tool run; stdout goes to a pipe (not /dev/null,
    where GNU grep stops at the first match)."""
    t0 = time.perf_counter()
    p = subprocess.run(args, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                       env=H.base_env(), timeout=1800)
    secs = time.perf_counter() - t0
    if p.returncode not in ok_codes or p.stderr:
        raise HarnessError(f"{args} in {cwd} exited {p.returncode}: "
                           f"{p.stderr.decode(errors='replace')[:2000]}")
    return secs, p.stdout


def calls_of(st: dict) -> dict:
    return {"total": st["api_calls_total"], "by_operation": st["api_calls"],
            "sts": st.get("sts_calls", {})}


GREP = ["grep", "-r", "Allow"]


WHOLE = ["users/", "groups/", "roles/", "policies/"]
# Every folder of the mount but aws-policies/ and .iamfs/: the above and
# the rest of IAM (instance profiles, providers, versions, attachments,
# the account).
EVERY = [*WHOLE, "instance-profiles/", "identity-providers/", "policy-versions/",
         "policy-attachments/", "aws-policy-attachments/", "account/"]
# access-keys.json is ListAccessKeys per user (GAAD does not carry keys): the
# RSS reads leave it out so that both sizes read the same kinds of files.
NO_KEYS = ["--exclude=access-keys.json"]


def cold_grep(binary, work, url, dirs: list[str], expect_lines: int, flags=()) -> dict:
    m = BenchMount(binary, work, url).start()
    try:
        before = m.status()["api_calls_total"]
        if before:
            raise HarnessError(f"fresh mount already made {before} IAM calls")
        secs, out = timed([*GREP, *flags, *dirs], m.path)
        lines = out.count(b"\n")
        if lines < expect_lines:
            raise HarnessError(f"cold grep -r {dirs}: {lines} matching lines, expected "
                               f">= {expect_lines}\n{m.log_tail()}")
        st = m.status()
        return {"dirs": dirs, "seconds": secs, "matching_lines": lines, "calls": calls_of(st),
                "rss_mb": m.vm(), "errors": st.get("errors")}
    finally:
        m.unmount()


def drop_kernel_caches() -> bool:
    """Drops the kernel's dentries, inodes and clean pages (root only): a
    mount whose daemon cache is full then walks as cold as the kernel gets."""
    subprocess.run(["sync"], check=False)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def cold_command(binary, work, url, cmd: list[str], mount_args=(), floor=False) -> dict:
    """`cmd` (run in the mount) on a fresh mount: its time, IAM calls and the
    kernel's requests. With `floor`, the same command again once the daemon
    holds everything and the kernel's caches are dropped: what the walk costs
    in FUSE round trips alone, with no IAM call."""
    m = BenchMount(binary, work, url, args=["--cache-ttl", "600", *mount_args]).start()
    try:
        before = _requests(m)
        secs, _ = timed(cmd, m.path)
        st = m.status()
        out = {"seconds": round(secs, 3), "calls": calls_of(st),
               "kernel_requests": _grown(before, _requests(m))}
        if floor and drop_kernel_caches():
            calls = st["api_calls_total"]
            before = _requests(m)
            secs, _ = timed(cmd, m.path)
            out["floor"] = {"seconds": round(secs, 3),
                            "kernel_requests": _grown(before, _requests(m)),
                            "iam_calls": m.status()["api_calls_total"] - calls}
        return out
    finally:
        m.unmount()


def cold_listings_and_floor(binary, work, url, runs: int) -> dict:
    """Section 8: cold `ls` and `ls -l` of roles/, a cold read-only walk,
    and each walk's floor; medians of `runs` fresh mounts."""
    rows = {"ls roles/": (["ls", "roles/"], (), False),
            "ls -l roles/": (["ls", "-l", "roles/"], (), False),
            "grep -r roles/ (read-write)": ([*GREP, "roles/"], (), True),
            "grep -r roles/ (read-only)": ([*GREP, "roles/"], ("--read-only",), True)}
    out = {}
    for label, (cmd, args, floor) in rows.items():
        log(f"cold {label} x{runs}")
        rs = [cold_command(binary, work, url, cmd, args, floor) for _ in range(runs)]
        x = {"runs_s": [r["seconds"] for r in rs], "median_s": round(med([r["seconds"] for r in rs]), 3),
             "calls": rs[-1]["calls"], "kernel_requests": rs[-1]["kernel_requests"]}
        floors = [r["floor"] for r in rs if "floor" in r]
        if floors:
            x["floor"] = {"runs_s": [f["seconds"] for f in floors],
                          "median_s": round(med([f["seconds"] for f in floors]), 3),
                          "kernel_requests": floors[-1]["kernel_requests"],
                          "iam_calls": max(f["iam_calls"] for f in floors)}
        out[label] = x
    return out


# The CLI's filters that read what each cold walk reads: like with like.
CLI_FILTERS = {"roles": ["Role"], "policies": ["LocalManagedPolicy"],
               "roles+policies": ["Role", "LocalManagedPolicy"]}


def cli_gaad(url: str, filters=("User", "Role", "Group", "LocalManagedPolicy")
             ) -> tuple[float, dict]:
    aws = Path(sys.executable).parent / "aws"
    secs, out = timed([str(aws), "iam", "get-account-authorization-details",
                       "--endpoint-url", url, "--region", REGION, "--output", "json",
                       "--filter", *filters], cwd="/")
    d = json.loads(out)
    counts = {"roles": len(d["RoleDetailList"]), "users": len(d["UserDetailList"]),
              "groups": len(d["GroupDetailList"]), "policies": len(d["Policies"])}
    return secs, counts


def warm_compare(m: BenchMount, shm: Path, runs: int, perf_out: str | None = None) -> dict:
    """Fills the cache (grep -r roles/), copies roles/ to tmpfs, then runs each
    command `runs` times on both, interleaved so that drift hits both."""
    timed([*GREP, "roles/"], m.path)
    cp0 = time.perf_counter()
    subprocess.run(["cp", "-r", str(m.p("roles")), str(shm / "roles")], check=True, timeout=3600)
    cp_s = time.perf_counter() - cp0
    calls_before = m.status()["api_calls_total"]
    cmds = {"grep -r": [*GREP, "roles/"], "ls -l": ["ls", "-l", "roles/"],
            "ls -lR": ["ls", "-lR", "roles/"]}
    warm = {}
    perf = None
    if perf_out:
        # DWARF call graphs: the release binary keeps no frame pointers.
        perf = subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384",
                                 "-p", str(m.pid), "-o", perf_out],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    for name, cmd in cmds.items():
        fs_t, shm_t = [], []
        out_fs = out_shm = b""
        sent_before = m.status()["kernel_requests"]
        for _ in range(runs):
            t, out_fs = timed(cmd, m.path)
            fs_t.append(t)
            t, out_shm = timed(cmd, shm)
            shm_t.append(t)
        sent_after = m.status()["kernel_requests"]
        # Requests the kernel sent per run (reading status adds a few).
        sent = {op: round((n - sent_before.get(op, 0)) / runs, 1)
                for op, n in sent_after.items() if n != sent_before.get(op, 0)}
        if name == "grep -r":   # readdir order differs between the two
            same = sorted(out_fs.splitlines()) == sorted(out_shm.splitlines())
        else:                   # dates and sizes differ; the number of lines must not
            same = out_fs.count(b"\n") == out_shm.count(b"\n")
        warm[name] = {"iamfs_median_ms": round(med(fs_t) * 1000, 2),
                      "tmpfs_median_ms": round(med(shm_t) * 1000, 2),
                      "ratio": round(med(fs_t) / med(shm_t), 2),
                      "iamfs_runs_ms": [round(x * 1000, 1) for x in fs_t],
                      "tmpfs_runs_ms": [round(x * 1000, 1) for x in shm_t],
                      "kernel_requests_per_run": sent,
                      "same_output": same}
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        perf.wait(60)
    shutil.rmtree(shm / "roles", ignore_errors=True)
    return {"commands": warm, "iam_calls_during_warm_runs": m.status()["api_calls_total"] - calls_before,
            "copy_seconds": round(cp_s, 2)}


def _requests(m: BenchMount) -> dict:
    return m.status()["kernel_requests"]


def _grown(before: dict, after: dict) -> dict:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after
            if after.get(k, 0) != before.get(k, 0)}


def _pin(pid: int | None, cpus: str) -> None:
    if pid:
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], check=True,
                       stdout=subprocess.DEVNULL, timeout=30)


RO_CMDS = {"grep -r": [*GREP, "roles/"], "ls -lR": ["ls", "-lR", "roles/"],
           "find -exec cat": ["find", "roles/", "-type", "f", "-exec", "cat", "{}", "+"]}


# Requests a warm walk of a read-only mount must never send.
PER_OPEN = ("open", "release", "flush", "lookup", "getattr")


def read_only_walk_is_quiet(sent: dict, files: int) -> bool:
    """Nothing per file: no open, release, flush, lookup or getattr; statfs
    once per walk (grep's and find's fts ask the filesystem type); and reads
    or listings only of pages the kernel reclaimed meanwhile (this VM runs a
    DAMON pageout daemon that drops cold page-cache pages), under 1% of
    the files."""
    return (not any(sent.get(op, 0) for op in PER_OPEN) and sent.get("statfs", 0) <= 1
            and sent.get("read", 0) + sent.get("readdir", 0) < max(1, files / 100))


def read_only_compare(binary: Path, work: Path, url: str, shm: Path, runs: int) -> dict:
    """Issue 15: a --read-only mount (open and flush answered ENOSYS: the
    kernel sends nothing per file) beside a read-write mount and the tmpfs
    copy, each command's runs interleaved across the three so that drift
    hits all; idle, then with the command and both daemons on CPU 0."""
    ro = BenchMount(binary, work, url, args=["--read-only", "--cache-ttl", "3600"]).start()
    rw = BenchMount(binary, work, url, args=["--cache-ttl", "3600"]).start()
    copy = shm / "ro-roles"
    try:
        for m in (ro, rw):
            for cmd in RO_CMDS.values():
                timed(cmd, m.path)
        copy.mkdir()
        subprocess.run(["cp", "-r", str(ro.p("roles")), str(copy / "roles")], check=True,
                       timeout=3600)
        time.sleep(1.2)  # stand-in folder dates the kernel keeps for a second
        for m in (ro, rw):
            for cmd in RO_CMDS.values():
                timed(cmd, m.path)
        calls_before = ro.status()["api_calls_total"] + rw.status()["api_calls_total"]
        all_cpus = f"0-{(os.cpu_count() or 1) - 1}"
        out: dict = {"load_before": [round(x, 2) for x in os.getloadavg()], "conditions": {}}
        for condition in ("idle", "pinned"):
            prefix = ["taskset", "-c", "0"] if condition == "pinned" else []
            if condition == "pinned":
                _pin(ro.pid, "0")
                _pin(rw.pid, "0")
            try:
                rows = {}
                for name, cmd in RO_CMDS.items():
                    t = {"ro": [], "rw": [], "tmpfs": []}
                    outputs = {}
                    # Requests per run, less what reading status itself sends.
                    base = {k: _grown(_requests(m), _requests(m)) for k, m in
                            (("ro", ro), ("rw", rw))}
                    before = {"ro": _requests(ro), "rw": _requests(rw)}
                    for _ in range(runs):
                        for key, cwd in (("ro", ro.path), ("rw", rw.path), ("tmpfs", copy)):
                            secs, o = timed(prefix + cmd, cwd)
                            t[key].append(secs)
                            outputs[key] = o
                    sent = {}
                    for key, m in (("ro", ro), ("rw", rw)):
                        g = _grown(before[key], _requests(m))
                        sent[key] = {op: round((n - base[key].get(op, 0)) / runs, 1)
                                     for op, n in g.items() if n - base[key].get(op, 0) > 0}
                    if name == "ls -lR":   # dates and sizes differ; the line count must not
                        same = len({o.count(b"\n") for o in outputs.values()}) == 1
                    else:
                        same = len({tuple(sorted(o.splitlines())) for o in outputs.values()}) == 1
                    tm = med(t["tmpfs"])
                    rows[name] = {
                        "read_only_median_ms": round(med(t["ro"]) * 1000, 2),
                        "read_write_median_ms": round(med(t["rw"]) * 1000, 2),
                        "tmpfs_median_ms": round(tm * 1000, 2),
                        "read_only_ratio": round(med(t["ro"]) / tm, 2),
                        "read_write_ratio": round(med(t["rw"]) / tm, 2),
                        "runs_ms": {k: [round(x * 1000, 1) for x in v] for k, v in t.items()},
                        "kernel_requests_per_run": sent,
                        "same_output": same,
                    }
                out["conditions"][condition] = rows
            finally:
                if condition == "pinned":
                    _pin(ro.pid, all_cpus)
                    _pin(rw.pid, all_cpus)
        out["load_after"] = [round(x, 2) for x in os.getloadavg()]
        out["iam_calls_during_runs"] = (ro.status()["api_calls_total"]
                                        + rw.status()["api_calls_total"] - calls_before)
        out["files"] = sum(len(f) for _, _, f in os.walk(copy / "roles"))
        return out
    finally:
        ro.unmount()
        rw.unmount()
        shutil.rmtree(copy, ignore_errors=True)


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))
    return xs[k]


def read_latency(path: Path, n: int) -> dict:
    read_file(path)  # warm (and for credentials: the one AssumeRole)
    lat = []
    buf = 1 << 16
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fd = os.open(path, os.O_RDONLY)
        while os.read(fd, buf):
            pass
        os.close(fd)
        lat.append((time.perf_counter_ns() - t0) / 1e6)
    return {"reads": n, "median_ms": round(statistics.median(lat), 4),
            "p99_ms": round(percentile(lat, 0.99), 4), "max_ms": round(max(lat), 3),
            "bytes": len(read_file(path))}


def med(xs):
    return statistics.median(xs)


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------

def run(args) -> dict:
    sizes = dict(QUICK if args.quick else DEFAULT)
    for k in ("roles", "users", "policies", "groups"):
        if getattr(args, k) is not None:
            sizes[k] = getattr(args, k)
    runs = args.runs or (3 if args.quick else 7)
    cold_runs = args.cold_runs or (1 if args.quick else 3)
    reads = args.reads or (300 if args.quick else 3000)
    mount_runs = 3 if args.quick else 7
    binary = Path(args.binary).resolve()
    BenchMount.extra_args = list(args.iamfs_arg)
    if not os.access(binary, os.X_OK):
        raise HarnessError(f"{binary} missing: cargo build --release (or pass --binary)")

    git = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="iamfs-bench."))
    shm = Path(tempfile.mkdtemp(prefix="iamfs-bench.", dir="/dev/shm"))
    res: dict = {"config": {"binary": str(binary), "sizes": sizes, "quick": args.quick,
                            "runs": runs, "cold_runs": cold_runs, "reads": reads,
                            "nproc": os.cpu_count(), "workdir": str(work), "git": git,
                            "iamfs_args": BenchMount.extra_args,
                            "binary_mtime": time.strftime(
                                "%Y-%m-%d %H:%M:%S", time.localtime(binary.stat().st_mtime))}}
    moto = None
    ok = False
    try:
        if args.endpoint_url:
            url = args.endpoint_url
        else:
            moto = Moto(work)
            url = moto.url
        res["config"]["endpoint"] = url
        log(f"seeding {sizes} into {url}")
        res["seed"] = seed_account(url, **sizes)
        log(f"seeded in {res['seed']['seconds']} s ({res['seed']['calls']} calls)")
        account = res["seed"]["account"]

        # 7. read-only against read-write against tmpfs
        log(f"read-only / read-write / tmpfs, idle and pinned x{runs}")
        res["read_only"] = read_only_compare(binary, work, url, shm, runs)
        if args.only_read_only:
            if args.scale_roles:
                sz = dict(sizes, roles=args.scale_roles)
                log(f"scaling to {args.scale_roles} roles")
                seed = seed_account(url, **sz)
                log(f"seeded in {seed['seconds']} s")
                res["scale"] = {"roles": args.scale_roles, "seed": seed,
                                "read_only": read_only_compare(binary, work, url, shm,
                                                               max(3, runs // 2))}
            ok = True
            res["targets"] = targets(res, sizes)
            return res

        # 6. start to answering, with no IAM call
        log("mount time")
        ms, zero = [], []
        for _ in range(mount_runs):
            m = BenchMount(binary, work, url).start()
            ms.append(m.start_ms)
            zero.append(m.status()["api_calls_total"])
            m.unmount()
        res["mount"] = {"runs_ms": [round(x, 1) for x in ms], "median_ms": round(med(ms), 1),
                        "max_ms": round(max(ms), 1), "iam_calls_after_mount": max(zero)}

        # 2. the AWS CLI fetching the same data
        log("aws iam get-account-authorization-details")
        cli = []
        for _ in range(cold_runs):
            secs, counts = cli_gaad(url)
            cli.append(secs)
        if counts["roles"] < sizes["roles"]:
            raise HarnessError(f"the CLI saw {counts}")
        res["cli_gaad"] = {"runs_s": [round(x, 3) for x in cli], "median_s": round(med(cli), 3),
                           "entities": counts}

        # 1. cold grep -r, a fresh mount each
        cold = {}
        for label, dirs, expect in (("roles", ["roles/"], sizes["roles"]),
                                    ("policies", ["policies/"], sizes["policies"]),
                                    ("roles+policies", ["roles/", "policies/"],
                                     sizes["roles"] + sizes["policies"])):
            log(f"cold grep -r {' '.join(dirs)} x{cold_runs}")
            rs = [cold_grep(binary, work, url, dirs, expect) for _ in range(cold_runs)]
            cold[label] = {
                "runs_s": [round(r["seconds"], 3) for r in rs],
                "median_s": round(med([r["seconds"] for r in rs]), 3),
                "calls": max((r["calls"] for r in rs), key=lambda c: c["total"]),
                "matching_lines": rs[-1]["matching_lines"],
            }
        res["cold_grep"] = cold
        for label in cold:
            cold[label]["ratio_to_cli"] = round(cold[label]["median_s"] / res["cli_gaad"]["median_s"], 3)
            # Like with like: the CLI reading only what the walk reads.
            log(f"aws iam get-account-authorization-details --filter {' '.join(CLI_FILTERS[label])}")
            same = [cli_gaad(url, CLI_FILTERS[label])[0] for _ in range(cold_runs)]
            cold[label]["cli_same_filter_s"] = round(med(same), 3)
            cold[label]["ratio_to_cli_same_filter"] = round(cold[label]["median_s"] / med(same), 3)

        # 8. cold listings, a cold read-only walk, and the walks' floor
        res["cold_listings"] = cold_listings_and_floor(binary, work, url, cold_runs)
        res["cold_listings"]["cli_filter_role_s"] = cold["roles"]["cli_same_filter_s"]

        # 5. the whole account, cold: every file, then (for RSS at both
        # sizes) every file but access-keys.json
        log("cold grep -r over the whole mount")
        whole = cold_grep(binary, work, url, WHOLE, sizes["roles"] + sizes["policies"])
        res["whole_account"] = {"seconds": round(whole["seconds"], 3), "calls": whole["calls"],
                                "rss_mb": whole["rss_mb"]}
        log("cold grep -r over the whole mount but access-keys.json, peak RSS")
        whole = cold_grep(binary, work, url, WHOLE, sizes["roles"] + sizes["policies"], NO_KEYS)
        res["whole_account_no_keys"] = {"seconds": round(whole["seconds"], 3),
                                        "calls": whole["calls"], "rss_mb": whole["rss_mb"]}
        log("cold grep -r over every folder")
        every = cold_grep(binary, work, url, EVERY, sizes["roles"] + sizes["policies"])
        res["every_folder"] = {"seconds": round(every["seconds"], 3), "calls": every["calls"],
                               "rss_mb": every["rss_mb"]}

        # 3 and 4: warm scans and cached reads on one mount (a long TTL keeps it warm)
        log(f"warm grep -r / ls -l / ls -lR against tmpfs x{runs}")
        m = BenchMount(binary, work, url, args=["--cache-ttl", "3600"]).start()
        try:
            res["warm"] = warm_compare(m, shm, runs, args.perf_record)
            log(f"cached reads x{reads}")
            r0 = role_name(1)   # trusts the account: AssumeRole works
            p0 = policy_name(1)
            res["cached_reads"] = {
                "roles/X/policies/inline.json":
                    read_latency(m.p(f"roles/{r0}/policies/inline.json"), reads),
                "roles/X/trust-policy.json":
                    read_latency(m.p(f"roles/{r0}/trust-policy.json"), reads),
                "policies/X.json": read_latency(m.p(f"policies/{p0}.json"), reads),
                "roles/X/credentials": read_latency(m.p(f"roles/{r0}/credentials"), reads),
            }
            res["warm_mount_rss_mb"] = m.vm()
        finally:
            m.unmount()

        # 5b. peak RSS (and the scans) at --scale-roles
        if args.scale_roles:
            sz = dict(sizes, roles=args.scale_roles)
            log(f"scaling to {args.scale_roles} roles")
            seed = seed_account(url, **sz)
            log(f"seeded in {seed['seconds']} s")
            sc = {"roles": args.scale_roles, "seed": seed}
            log("cold grep -r roles/ policies/")
            c = cold_grep(binary, work, url, ["roles/", "policies/"],
                          args.scale_roles + sizes["policies"])
            sc["cold_roles_policies"] = {"seconds": round(c["seconds"], 3), "calls": c["calls"]}
            log("cold grep -r roles/, and the CLI with the matching filters")
            c = cold_grep(binary, work, url, ["roles/"], args.scale_roles)
            sc["cold_roles"] = {"seconds": round(c["seconds"], 3), "calls": c["calls"]}
            sc["cli_filter_role_s"] = round(cli_gaad(url, CLI_FILTERS["roles"])[0], 3)
            sc["cold_listings"] = cold_listings_and_floor(binary, work, url, 1)
            sc["cli_filter_role_policy_s"] = round(
                cli_gaad(url, CLI_FILTERS["roles+policies"])[0], 3)
            log("cold grep -r over the whole mount but access-keys.json, peak RSS")
            whole_n = cold_grep(binary, work, url, WHOLE, args.scale_roles + sizes["policies"],
                                NO_KEYS)
            sc.update(seconds=round(whole_n["seconds"], 3), calls=whole_n["calls"],
                      rss_mb=whole_n["rss_mb"])
            log("warm scans against tmpfs")
            m = BenchMount(binary, work, url, args=["--cache-ttl", "3600"]).start()
            try:
                sc["warm"] = warm_compare(m, shm, max(3, runs // 2))
            finally:
                m.unmount()
            log("read-only / read-write / tmpfs")
            sc["read_only"] = read_only_compare(binary, work, url, shm, max(3, runs // 2))
            res["scale"] = sc
        ok = True
    finally:
        for m in list(_mounts):
            m.unmount()
        if moto is not None:
            moto.stop()
        shutil.rmtree(shm, ignore_errors=True)
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    res["targets"] = targets(res, sizes)
    return res


def targets(res: dict, sizes: dict) -> list[dict]:
    out = []

    def t(name, want, got, passed):
        out.append({"target": name, "want": want, "measured": got,
                    "result": {True: "PASS", False: "FAIL", None: "SKIP"}[passed]})

    for label, ro in (("", res.get("read_only")),
                      (" at %s roles" % res.get("scale", {}).get("roles"),
                       res.get("scale", {}).get("read_only"))):
        if not ro:
            continue
        g = ro["conditions"]["idle"]["grep -r"]
        t(f"warm read-only grep -r roles/{label} within {MAX_RO_GREP_RATIO}x of tmpfs (idle)",
          f"ratio <= {MAX_RO_GREP_RATIO}",
          f"{g['read_only_median_ms']:.1f} ms vs {g['tmpfs_median_ms']:.1f} ms = "
          f"{g['read_only_ratio']:.2f}x (load {ro['load_before']})",
          g["read_only_ratio"] <= MAX_RO_GREP_RATIO)
        sent = g["kernel_requests_per_run"]["ro"]
        t(f"warm read-only grep -r roles/{label}: no request per file",
          "no open/release/flush/lookup/getattr; statfs 1 per walk; reads of reclaimed pages "
          "< 1% of files", ops_of(sent), read_only_walk_is_quiet(sent, ro["files"]))
    if "cold_grep" not in res:
        return out
    c = res["cold_grep"]["roles+policies"]
    t("cold scan of roles/ + policies/ costs O(pages)", f"<= {MAX_COLD_CALLS} IAM calls",
      f"{c['calls']['total']} calls", c["calls"]["total"] <= MAX_COLD_CALLS)
    t("cold scan no slower than the AWS CLI (GAAD)", "ratio <= 1.0",
      f"{c['median_s']:.2f} s vs {res['cli_gaad']['median_s']:.2f} s = {c['ratio_to_cli']:.2f}x",
      c["ratio_to_cli"] <= 1.0)
    for label in ("roles", "roles+policies"):
        c = res["cold_grep"][label]
        t(f"cold grep -r {label}/ within {MAX_COLD_LIKE_RATIO}x of the CLI "
          f"--filter {' '.join(CLI_FILTERS[label])}", f"ratio <= {MAX_COLD_LIKE_RATIO}",
          f"{c['median_s']:.2f} s vs {c['cli_same_filter_s']:.2f} s = "
          f"{c['ratio_to_cli_same_filter']:.2f}x", c["ratio_to_cli_same_filter"] <= MAX_COLD_LIKE_RATIO)
    sc = res.get("scale", {})
    if "cold_roles" in sc:
        ratio = sc["cold_roles"]["seconds"] / sc["cli_filter_role_s"]
        t(f"cold grep -r roles/ at {sc['roles']} roles within {MAX_COLD_LIKE_RATIO}x of the CLI "
          "--filter Role", f"ratio <= {MAX_COLD_LIKE_RATIO}",
          f"{sc['cold_roles']['seconds']:.2f} s vs {sc['cli_filter_role_s']:.2f} s = {ratio:.2f}x",
          ratio <= MAX_COLD_LIKE_RATIO)
    for name, w in res["warm"]["commands"].items():
        t(f"warm {name} roles/ within 3x of tmpfs", f"ratio <= {MAX_WARM_RATIO}",
          f"{w['iamfs_median_ms']:.1f} ms vs {w['tmpfs_median_ms']:.1f} ms = {w['ratio']:.2f}x",
          w["ratio"] <= MAX_WARM_RATIO)
    for name, r in res["cached_reads"].items():
        t(f"cached read of {name} under 1 ms", f"median < {MAX_CACHED_READ_MS} ms (p99 shown)",
          f"median {r['median_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms",
          r["median_ms"] < MAX_CACHED_READ_MS)
    full = res["whole_account"]["rss_mb"].get("VmHWM")
    rss = res["whole_account_no_keys"]["rss_mb"].get("VmHWM")
    peak = max(x for x in (full, rss, 0) if x is not None) or None
    t(f"peak RSS at {sizes['roles']} roles (whole account)", f"< {MAX_RSS_MB:.0f} MB",
      f"{peak} MB", None if peak is None else peak < MAX_RSS_MB)
    sc = res.get("scale")
    if sc and rss:
        big = sc["rss_mb"].get("VmHWM")
        factor = sc["roles"] / sizes["roles"]
        t(f"peak RSS grows no faster than linearly to {sc['roles']} roles",
          f"<= {factor:.0f} x {rss} MB",
          f"{big} MB ({big / rss:.2f}x for {factor:.0f}x the roles)",
          None if big is None else big <= factor * rss)
    else:
        t("peak RSS grows no faster than linearly to 10,000 roles", "run with --scale-roles 10000",
          "not run", None)
    mt = res["mount"]
    t("mounted and answering", f"< {MAX_MOUNT_MS:.0f} ms, 0 IAM calls",
      f"median {mt['median_ms']} ms (max {mt['max_ms']}), {mt['iam_calls_after_mount']} calls",
      mt["median_ms"] < MAX_MOUNT_MS and mt["iam_calls_after_mount"] == 0)
    return out


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------

def ops_of(counts: dict) -> str:
    """Counts by operation, largest first."""
    return ", ".join(f"{k} {v:g}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def ops(calls: dict) -> str:
    return ops_of(calls["by_operation"])


def table(res: dict) -> str:
    rows = []

    def row(a, b, c=""):
        rows.append((a, b, c))

    s = res["config"]["sizes"]
    row("account", f"{s['roles']} roles, {s['users']} users, {s['policies']} policies, "
        f"{s['groups']} groups", f"binary {res['config']['binary']}"
        + "".join(f" {a}" for a in res['config'].get('iamfs_args', [])))
    sd = res["seed"]
    row("seeding (not part of any figure)", f"{sd['seconds']:.1f} s",
        f"{sd['calls']} calls, {sd['threads']} threads, {sd['calls_per_second']}/s")
    for label, ro in (("", res.get("read_only")),
                      (f" at {res.get('scale', {}).get('roles')} roles",
                       res.get("scale", {}).get("read_only"))):
        if not ro:
            continue
        rows.append(None)
        row(f"7. warm, roles/{label}: read-only | read-write | tmpfs",
            f"load {ro['load_before']} -> {ro['load_after']}",
            f"{ro['files']} files; IAM calls during the runs: {ro['iam_calls_during_runs']}")
        for cond, cmds in ro["conditions"].items():
            for name, x in cmds.items():
                row(f"   {name} ({cond})",
                    f"{x['read_only_median_ms']:.1f} | {x['read_write_median_ms']:.1f} | "
                    f"{x['tmpfs_median_ms']:.1f} ms",
                    f"{x['read_only_ratio']:.2f}x | {x['read_write_ratio']:.2f}x tmpfs; requests "
                    f"per run ro: {ops_of(x['kernel_requests_per_run']['ro'])}; rw: "
                    f"{ops_of(x['kernel_requests_per_run']['rw'])}")
    if "cold_grep" not in res:
        rows.append(None)
        for t in res["targets"]:
            row(f"{t['result']}  {t['target']}", t["measured"], t["want"])
        return _format(rows)
    rows.append(None)
    cli = res["cli_gaad"]["median_s"]
    for label, c in res["cold_grep"].items():
        row(f"1. cold grep -r {label}/", f"{c['median_s']:.3f} s",
            f"{c['calls']['total']} IAM calls: {ops(c['calls'])}")
    w = res["whole_account"]
    row("   cold grep -r users/ groups/ roles/ policies/", f"{w['seconds']:.3f} s",
        f"{w['calls']['total']} IAM calls: {ops(w['calls'])}")
    wk = res["whole_account_no_keys"]
    row("   the same, --exclude=access-keys.json", f"{wk['seconds']:.3f} s",
        f"{wk['calls']['total']} IAM calls: {ops(wk['calls'])}")
    if "every_folder" in res:
        e = res["every_folder"]
        row("   cold grep -r of every folder (with instance-profiles/, identity-providers/, "
            "policy-versions/, policy-attachments/, account/)", f"{e['seconds']:.3f} s",
            f"{e['calls']['total']} IAM calls: {ops(e['calls'])}")
    row("2. aws iam get-account-authorization-details", f"{cli:.3f} s",
        "venv AWS CLI, same endpoint, --filter User Role Group LocalManagedPolicy")
    for label, c in res["cold_grep"].items():
        row(f"   ratio cold grep -r {label}/ : CLI", f"{c['ratio_to_cli']:.2f}x")
    for label, c in res["cold_grep"].items():
        if "cli_same_filter_s" in c:
            row(f"   like with like: cold grep -r {label}/ : CLI --filter "
                f"{' '.join(CLI_FILTERS[label])}",
                f"{c['median_s']:.3f} s vs {c['cli_same_filter_s']:.3f} s = "
                f"{c['ratio_to_cli_same_filter']:.2f}x")
    def listings_rows(cl: dict, where: str) -> None:
        cli_role = cl.get("cli_filter_role_s")
        for label, x in cl.items():
            if not isinstance(x, dict):
                continue
            ratio = f" = {x['median_s'] / cli_role:.2f}x CLI --filter Role" \
                if cli_role and label.startswith("grep") else ""
            row(f"8. cold {label}{where}", f"{x['median_s']:.3f} s{ratio}",
                f"{x['calls']['total']} IAM calls: {ops(x['calls'])}; kernel requests: "
                f"{ops_of(x['kernel_requests'])}")
            if "floor" in x:
                f = x["floor"]
                row(f"   its floor{where}: daemon cache full, kernel caches dropped",
                    f"{f['median_s']:.3f} s",
                    f"{f['iam_calls']} IAM calls; kernel requests: {ops_of(f['kernel_requests'])}")

    if "cold_listings" in res:
        listings_rows(res["cold_listings"], "")
    for name, x in res["warm"]["commands"].items():
        row(f"3. warm {name} roles/  iamfs | tmpfs",
            f"{x['iamfs_median_ms']:.1f} | {x['tmpfs_median_ms']:.1f} ms",
            f"ratio {x['ratio']:.2f}x (median of {len(x['iamfs_runs_ms'])}); kernel requests "
            f"per run: {ops_of(x['kernel_requests_per_run'])}")
    row("   IAM calls during the warm runs", str(res["warm"]["iam_calls_during_warm_runs"]))
    for name, r in res["cached_reads"].items():
        row(f"4. cached read {name}", f"{r['median_ms'] * 1000:.0f} us median",
            f"p99 {r['p99_ms'] * 1000:.0f} us, max {r['max_ms']:.2f} ms, {r['reads']} reads, "
            f"{r['bytes']} B")
    row("5. peak RSS (VmHWM) after the whole account", f"{w['rss_mb'].get('VmHWM')} MB",
        f"at {s['roles']} roles, every file")
    row("   the same, --exclude=access-keys.json", f"{wk['rss_mb'].get('VmHWM')} MB",
        f"at {s['roles']} roles")
    if "scale" in res:
        sc = res["scale"]
        row(f"   the same at {sc['roles']} roles", f"{sc['rss_mb'].get('VmHWM')} MB",
            f"cold grep {sc['seconds']:.1f} s, {sc['calls']['total']} IAM calls: "
            f"{ops(sc['calls'])}; seeding took {sc['seed']['seconds']:.0f} s")
        c = sc["cold_roles_policies"]
        row(f"   cold grep -r roles+policies/ at {sc['roles']} roles", f"{c['seconds']:.3f} s",
            f"{c['calls']['total']} IAM calls: {ops(c['calls'])}")
        if "cold_roles" in sc:
            r = sc["cold_roles"]
            row(f"   like with like at {sc['roles']} roles: cold grep -r roles/ : CLI --filter Role",
                f"{r['seconds']:.3f} s vs {sc['cli_filter_role_s']:.3f} s = "
                f"{r['seconds'] / sc['cli_filter_role_s']:.2f}x",
                f"{r['calls']['total']} IAM calls: {ops(r['calls'])}")
            row(f"   like with like at {sc['roles']} roles: roles+policies/ : CLI --filter Role "
                "LocalManagedPolicy",
                f"{c['seconds']:.3f} s vs {sc['cli_filter_role_policy_s']:.3f} s = "
                f"{c['seconds'] / sc['cli_filter_role_policy_s']:.2f}x")
        if "cold_listings" in sc:
            sc["cold_listings"]["cli_filter_role_s"] = sc["cli_filter_role_s"]
            listings_rows(sc["cold_listings"], f" at {sc['roles']} roles")
        for name, x in sc["warm"]["commands"].items():
            row(f"   warm {name} roles/ at {sc['roles']} roles  iamfs | tmpfs",
                f"{x['iamfs_median_ms']:.1f} | {x['tmpfs_median_ms']:.1f} ms",
                f"ratio {x['ratio']:.2f}x (median of {len(x['iamfs_runs_ms'])})")
    mt = res["mount"]
    row("6. start -> mount answers", f"{mt['median_ms']:.1f} ms median",
        f"runs {mt['runs_ms']} ms; IAM calls after mount: {mt['iam_calls_after_mount']}")
    rows.append(None)
    for t in res["targets"]:
        row(f"{t['result']}  {t['target']}", t["measured"], t["want"])
    return _format(rows)


def _format(rows) -> str:
    w0 = max(len(r[0]) for r in rows if r)
    w1 = max(len(r[1]) for r in rows if r)
    lines = []
    for r in rows:
        if r is None:
            lines.append("-" * (w0 + w1 + 30))
        else:
            lines.append(f"{r[0]:<{w0}}  {r[1]:>{w1}}  {r[2]}".rstrip())
    return "\n".join(lines)


def prepare(ap: argparse.ArgumentParser, args) -> None:
    """Refuses an endpoint that is not on loopback; dummy credentials for
    everything the harness starts."""
    if args.endpoint_url and not args.endpoint_url.startswith(("http://127.", "http://localhost")):
        ap.error("--endpoint-url must be a loopback address")
    for k, v in seed_sample.DUMMY_ENV.items():
        os.environ[k] = v
    os.environ.pop("AWS_SESSION_TOKEN", None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--binary", default=str(REPO / "target" / "release" / "iamfs"),
                    help="the iamfs binary (default target/release/iamfs)")
    ap.add_argument("--roles", type=int)
    ap.add_argument("--users", type=int)
    ap.add_argument("--policies", type=int)
    ap.add_argument("--groups", type=int)
    ap.add_argument("--quick", action="store_true",
                    help=f"small account ({QUICK['roles']} roles, {QUICK['users']} users, "
                         f"{QUICK['policies']} policies), fewer runs: the CI form")
    ap.add_argument("--scale-roles", type=int, metavar="N",
                    help="afterwards, grow the account to N roles and measure peak RSS again")
    ap.add_argument("--runs", type=int, help="warm runs per command (median; default 7, quick 3)")
    ap.add_argument("--cold-runs", type=int, help="cold runs, a fresh mount each (default 3, quick 1)")
    ap.add_argument("--reads", type=int, help="reads per cached-read figure (default 3000, quick 300)")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON here")
    ap.add_argument("--endpoint-url", help="use this (loopback) endpoint instead of starting "
                    "moto_server; what is missing of the bench account is seeded")
    ap.add_argument("--perf-record", metavar="FILE",
                    help="perf record (DWARF call graphs) the daemon during the warm runs into "
                    "FILE; read it with perf report -i FILE --no-children")
    ap.add_argument("--iamfs-arg", action="append", default=[], metavar="ARG",
                    help="pass ARG to every iamfs mount (repeatable), e.g. --iamfs-arg=--busy-poll=0")
    ap.add_argument("--only-read-only", action="store_true",
                    help="seed, then measure only read-only / read-write / tmpfs (section 7)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = ap.parse_args(argv)
    prepare(ap, args)
    try:
        res = run(args)
    except HarnessError as e:
        log(f"error: {e}")
        return 2
    text = table(res)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    else:
        print(json.dumps(res, indent=2))
    failed = [t for t in res["targets"] if t["result"] == "FAIL"]
    return 1 if (args.strict and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
