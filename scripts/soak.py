#!/usr/bin/env python3
"""Soak iamfs: readers and writers on one mount for a set time, against moto_server.

    cargo build --release
    .venv/bin/python scripts/soak.py                          # 5 minutes, 4 readers, 4 writers
    .venv/bin/python scripts/soak.py --duration 3600 --readers 8 --writers 8
    .venv/bin/python scripts/soak.py --quick --binary target/debug/iamfs   # CI form, ~20 s of load

Starts its own moto_server on a free 127.0.0.1 port (or uses --endpoint-url),
seeds it with boto3 (the soak's targets, and with its own moto a small
account for the tree walkers), mounts iamfs once and runs, for --duration
seconds, N readers and M writers on that mount.

Writers (writer i does kind i % 4, and K = i // 4 numbers its target); each
saves its own target in a loop, sequence number n = 1, 2, ... in the
content, and records its last successful save (close(), or for (b) the
rename, returned without error):

  (a) inplace  policies/soak-inplace-K.json, in place: open(O_TRUNC), write, close
  (b) rename   policies/.soak-tmp-K (a scratch name), then os.rename onto
               policies/soak-rename-K.json
  (c) tags     roles/soak-role/tags.json = {"writer": "wK", "seq": "n"}
               (K > 0: roles/soak-role-K/tags.json)
  (d) inline   roles/soak-role/policies/soak-inline-K.json, in place

Every policy a writer saves is valid: Version 2012-10-17, one statement
{Sid, Effect Allow, Action s3:GetObject, Resource arn:aws:s3:::soak-T-seq-n}
where T names the target (inplace-K, ...). The Sid's length varies with n, so
that two versions differ in length and a mix of two rarely parses. Version 0
is the document seeded before the mount (the "original").

Readers (reader j does kind j % 4):

  reread   python open/read/close, as fast as possible, of exactly the files
           the writers save plus role.json of each role whose tags.json is
           rewritten. Every read must parse as JSON and be one whole version
           (the original or one a writer wrote); any OSError, ENOENT included
           (these names always exist), is a read error.
  grep     grep -r -a -Z -H -e '' roles/ policies/ (every line of every file,
           so each file's bytes can be put back together and checked)
  find     find roles/ policies/ -type f ! -name '.soak-tmp-*' -exec cat {} +
           (the concatenation is split at each document's start and checked
           document by document; the scratch file is left out because its
           content is legitimately half-written while a writer writes it)
  ls       ls -lR roles/ policies/ (errors, names that vanish, sizes)

For the tree walkers (grep, find, ls) ENOENT on a scratch name
(.soak-tmp-K, renamed away between readdir and open) is an expected listing
race, counted but not a failure; ENOENT or a missing entry for any other name
is one (nothing else is ever deleted). A document is "torn" when it is
empty (or blank), holds NUL bytes, is not valid JSON (truncated: a cut-off
prefix of a version; extra data: a whole document followed by more bytes;
invalid), or parses but is none of the written versions (mix). grep prints
nothing for an empty file and find's cat adds nothing to the stream, so a
soak document missing from their output without an error is counted as torn,
kind "absent".

Also counted, reported, and failures only with --strict:

  stale reads   a read that started after a save of version n had returned
                but shows a version older than n (README: "after a save,
                reads show what you wrote at once"), and a final read through
                the mount, after the writers stopped, that differs from IAM
  stale sizes   ls -lR showing a soak document's size that no whole version
                has, or (reread) fstat's size, the same just after open and
                after the read, differing from the number of bytes read,
                unless a newer save of a document saved in place was under
                way (counted as "sizes of later saves": an open reads the
                version at open, fstat shows the file now; a file replaced
                by rename keeps its own size for its descriptors)

At the end: lost saves (per writer, IAM's current document, read with boto3
from the endpoint, must equal the writer's last successful save), the
daemon's RSS (VmRSS sampled every 0.25 s: start, peak, end; VmHWM), and the
lines of .iamfs/errors.

Prints a table, writes JSON (--json FILE). Exit status: 0 when read errors,
write errors (a valid save that failed), torn reads and lost saves are all 0;
1 otherwise; 2 when the harness itself fails (moto, seeding, mount); 130
when interrupted.
Unmounts and stops moto on the way out, Ctrl-C and SIGTERM included. With
--endpoint-url the soak's own entities (soak-*) are reset at the start and
deleted at the end; nothing else is changed.
"""

from __future__ import annotations

import argparse
import bisect
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

import iamfs_harness as H  # noqa: E402  (env, free ports, pids, raw documents)
import bench  # noqa: E402  (Moto, BenchMount, seed_account, prepare)
import seed_sample  # noqa: E402  (clients, trust documents)

ROLE = "soak-role"
SCRATCH = ".soak-tmp-"
KINDS_W = ("inplace", "rename", "tags", "inline")
KINDS_R = ("reread", "grep", "find", "ls")
QUICK_DURATION = 20.0
DEFAULT_DURATION = 300.0
EXAMPLES = 5          # examples kept per reader and kind
TOOL_TIMEOUT = 120    # seconds for one grep/find/ls pass


def log(msg: str) -> None:
    print(f"soak: {msg}", file=sys.stderr, flush=True)


class HarnessError(RuntimeError):
    pass


ERRNO_OF_MSG = {os.strerror(e): errno.errorcode[e] for e in errno.errorcode}


def errname(e: OSError) -> str:
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__


def show(data: bytes, n: int) -> str:
    return data[:n].decode("utf-8", "backslashreplace")


# --------------------------------------------------------------------------
# targets: what the writers save, and how a read of it is judged
# --------------------------------------------------------------------------

def render(obj) -> bytes:
    """iamfs's rendering: two-space indent, trailing newline."""
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()


class Target:
    """One document a writer saves. Versions are numbered: 0 is the
    original (seeded), n >= 1 what the writer's n-th save wrote."""

    def __init__(self, kind: str, k: int):
        self.kind = kind
        self.k = k
        self.id = f"{kind}-{k}"
        self.role = (ROLE if k == 0 else f"{ROLE}-{k}") if kind == "tags" else ROLE
        self.name = {"inplace": f"soak-inplace-{k}", "rename": f"soak-rename-{k}",
                     "inline": f"soak-inline-{k}", "tags": None}[kind]
        self.rel = {"inplace": f"policies/soak-inplace-{k}.json",
                    "rename": f"policies/soak-rename-{k}.json",
                    "tags": f"roles/{self.role}/tags.json",
                    "inline": f"roles/{ROLE}/policies/soak-inline-{k}.json"}[kind]
        self.tmp_rel = f"policies/{SCRATCH}{k}" if kind == "rename" else None
        # writer state, read by the readers (ints and appends: atomic in CPython)
        self.attempted = 0
        self.saved = 0                      # last successful save (0: none yet)
        self.save_times: list[float] = []   # monotonic time each save returned
        self.save_seqs: list[int] = []
        self._sizes: dict[int, int] = {}

    def expected(self, seq: int):
        if self.kind == "tags":
            return {"writer": f"w{self.k}", "seq": str(seq)}
        return {"Version": "2012-10-17", "Statement": [{
            "Sid": f"Seq{seq}" + "P" * (seq % 11),
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::soak-{self.id}-seq-{seq}",
        }]}

    def render(self, seq: int) -> bytes:
        return render(self.expected(seq))

    def size(self, seq: int) -> int:
        if seq not in self._sizes:
            self._sizes[seq] = len(self.render(seq))
        return self._sizes[seq]

    def seq_of(self, obj) -> int | None:
        """The version number `obj` claims to be, if any."""
        if self.kind == "tags":
            if (isinstance(obj, dict) and set(obj) == {"writer", "seq"}
                    and obj["writer"] == f"w{self.k}" and str(obj["seq"]).isdigit()):
                return int(obj["seq"])
            return None
        try:
            m = re.fullmatch(rf"arn:aws:s3:::soak-{re.escape(self.id)}-seq-(\d+)",
                             obj["Statement"][0]["Resource"])
        except (KeyError, IndexError, TypeError):
            return None
        return int(m.group(1)) if m else None

    def seq_in_bytes(self, data: bytes) -> int | None:
        m = re.search(rb"soak-" + re.escape(self.id.encode()) + rb"-seq-(\d+)", data)
        if self.kind == "tags":
            m = re.search(rb'"seq": "(\d+)', data)
        return int(m.group(1)) if m else None

    def whole(self, obj, seq: int) -> bool:
        return obj == self.expected(seq)

    def required(self, t0: float) -> int:
        """The newest version whose save had returned before t0."""
        n = len(self.save_times)
        i = bisect.bisect_left(self.save_times, t0, 0, n)
        return self.save_seqs[i - 1] if i else 0


class RoleDoc:
    """roles/R/role.json of a role whose tags.json a writer rewrites: its
    Tags must be one whole tags version."""

    def __init__(self, tags: Target):
        self.tags = tags
        self.id = f"role.json-{tags.k}"
        self.rel = f"roles/{tags.role}/role.json"
        self.role = tags.role
        self.kind = "role.json"

    @property
    def attempted(self):
        return self.tags.attempted

    def seq_of(self, obj) -> int | None:
        if not isinstance(obj, dict) or obj.get("RoleName") != self.role:
            return None
        tags = obj.get("Tags")
        if not isinstance(tags, list):
            return None
        try:
            d = {t["Key"]: t["Value"] for t in tags}
        except (KeyError, TypeError):
            return None
        if len(d) != len(tags):
            return None
        return self.tags.seq_of(d)

    def seq_in_bytes(self, data: bytes) -> int | None:
        return None

    def whole(self, obj, seq: int) -> bool:
        return True   # seq_of already checked the tags; the rest IAM computes

    def required(self, t0: float) -> int:
        return self.tags.required(t0)


def judge(t, data: bytes) -> tuple[str | None, int | None]:
    """(torn kind or None, version seen or None) for the bytes of one read."""
    if not data:
        return "empty", None
    if not data.strip():
        return "blank", None
    if b"\0" in data:
        return "nul", None
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return "invalid utf-8", None
    except ValueError as e:
        if str(e).startswith("Extra data"):
            return "extra data", None
        if isinstance(t, Target):
            # a cut-off prefix of some version (torn reads are rare: try them all)
            s = t.seq_in_bytes(data)
            cands = [s] if s is not None else []
            cands += range(min(t.attempted, 100000), -1, -1)
            if any(c <= t.attempted and t.render(c).startswith(data) for c in cands):
                return "truncated", None
        pos = getattr(e, "pos", 0)
        text = data.decode("utf-8")
        if pos >= len(text.rstrip()) - 1 or (str(e).startswith("Unterminated string")
                                             and '"' not in text[pos + 1:]):
            return "truncated", None
        return "invalid json", None
    seq = t.seq_of(obj)
    if seq is None or not t.whole(obj, seq):
        return "mix", None
    if seq > t.attempted:
        return "unknown version", seq
    return None, seq


# --------------------------------------------------------------------------
# seeding and clean-up (boto3, straight to the endpoint)
# --------------------------------------------------------------------------

def _code(e) -> str:
    return e.response.get("Error", {}).get("Code", "")


def seed_targets(iam, account: str, targets: list[Target]) -> None:
    """Creates each target with version 0, or resets it to version 0 when it
    is left over from an earlier run."""
    from botocore.exceptions import ClientError

    roles = sorted({t.role for t in targets} | {ROLE})
    for role in roles:
        try:
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=seed_sample.trust_account(account),
                            Description="iamfs soak")
        except ClientError as e:
            if _code(e) != "EntityAlreadyExists":
                raise
    for t in targets:
        text = json.dumps(t.expected(0))
        if t.kind in ("inplace", "rename"):
            arn = f"arn:aws:iam::{account}:policy/{t.name}"
            try:
                iam.create_policy(PolicyName=t.name, PolicyDocument=text, Description="iamfs soak")
            except ClientError as e:
                if _code(e) != "EntityAlreadyExists":
                    raise
                for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
                    if not v["IsDefaultVersion"]:
                        iam.delete_policy_version(PolicyArn=arn, VersionId=v["VersionId"])
                iam.create_policy_version(PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)
                for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
                    if not v["IsDefaultVersion"]:
                        iam.delete_policy_version(PolicyArn=arn, VersionId=v["VersionId"])
        elif t.kind == "inline":
            iam.put_role_policy(RoleName=t.role, PolicyName=t.name, PolicyDocument=text)
        else:
            want = t.expected(0)
            have = {x["Key"] for x in iam.list_role_tags(RoleName=t.role)["Tags"]}
            if have - set(want):
                iam.untag_role(RoleName=t.role, TagKeys=sorted(have - set(want)))
            iam.tag_role(RoleName=t.role, Tags=[{"Key": k, "Value": v} for k, v in want.items()])


def delete_targets(iam, account: str, targets: list[Target]) -> list[str]:
    """Deletes the soak's entities (with --endpoint-url); returns what failed."""
    failed = []

    def attempt(what, fn, **kw):
        try:
            fn(**kw)
        except Exception as e:  # noqa: BLE001 (best effort, reported)
            failed.append(f"{what}: {e}")

    for t in targets:
        if t.kind in ("inplace", "rename"):
            arn = f"arn:aws:iam::{account}:policy/{t.name}"
            try:
                for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
                    if not v["IsDefaultVersion"]:
                        attempt(f"delete version {v['VersionId']} of {t.name}",
                                iam.delete_policy_version, PolicyArn=arn, VersionId=v["VersionId"])
            except Exception as e:  # noqa: BLE001
                failed.append(f"list versions of {t.name}: {e}")
            attempt(f"delete policy {t.name}", iam.delete_policy, PolicyArn=arn)
    for role in sorted({t.role for t in targets} | {ROLE}):
        try:
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                attempt(f"delete {role}/{name}", iam.delete_role_policy, RoleName=role,
                        PolicyName=name)
        except Exception as e:  # noqa: BLE001
            failed.append(f"list policies of {role}: {e}")
        attempt(f"delete role {role}", iam.delete_role, RoleName=role)
    return failed


def iam_state(raw, account: str, t: Target):
    """IAM's current document of a target, read with boto3."""
    if t.kind in ("inplace", "rename"):
        return H.policy_document(raw, f"arn:aws:iam::{account}:policy/{t.name}")
    if t.kind == "inline":
        return H.inline_document(raw, "roles", t.role, t.name)
    return {x["Key"]: x["Value"] for x in raw.list_role_tags(RoleName=t.role)["Tags"]}


# --------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------

class Writer(threading.Thread):
    def __init__(self, i: int, t: Target, root: Path, stop: threading.Event, pause: float):
        super().__init__(name=f"writer-{i}", daemon=True)
        self.t = t
        self.root = root
        self.stop_ev = stop
        self.pause = pause
        self.failures: dict[str, int] = {}
        self.failure_examples: list[dict] = []
        self.crash: str | None = None

    def save(self, seq: int) -> None:
        data = self.t.render(seq).decode()
        path = self.root / self.t.rel
        if self.t.kind == "rename":
            tmp = self.root / self.t.tmp_rel
            with open(tmp, "w") as f:
                f.write(data)
            os.rename(tmp, path)
        else:
            with open(path, "w") as f:   # O_WRONLY|O_CREAT|O_TRUNC; close() commits
                f.write(data)

    def run(self) -> None:
        t = self.t
        try:
            while not self.stop_ev.is_set():
                seq = t.attempted + 1
                t.attempted = seq
                try:
                    self.save(seq)
                except OSError as e:
                    k = errname(e)
                    self.failures[k] = self.failures.get(k, 0) + 1
                    if len(self.failure_examples) < EXAMPLES:
                        self.failure_examples.append({"seq": seq, "errno": k, "error": str(e)})
                    time.sleep(0.05)
                    continue
                now = time.monotonic()
                t.saved = seq
                t.save_seqs.append(seq)
                t.save_times.append(now)
                if self.pause:
                    time.sleep(self.pause)
        except Exception as e:  # noqa: BLE001 (a bug in the soak itself)
            self.crash = repr(e)

    def report(self) -> dict:
        return {"name": self.name, "kind": self.t.kind, "path": self.t.rel,
                "attempts": self.t.attempted, "saves": len(self.t.save_seqs),
                "failures": dict(self.failures), "failure_examples": self.failure_examples,
                "last_saved_seq": self.t.saved, "crash": self.crash}


# --------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------

class Reader(threading.Thread):
    def __init__(self, j: int, kind: str, root: Path, targets: list, stop: threading.Event):
        super().__init__(name=f"{kind}-{j}", daemon=True)
        self.kind = kind
        self.root = root
        self.targets = targets                       # Targets and RoleDocs
        self.by_rel = {t.rel: t for t in targets}
        self.by_id = {t.id: t for t in targets}
        self.stop_ev = stop
        self.passes = 0
        self.docs = 0
        self.errors: dict[str, int] = {}
        self.errors_by_file: dict[str, dict[str, int]] = {}
        self.error_examples: list[dict] = []
        self.torn: dict[str, dict[str, int]] = {}
        self.torn_examples: list[dict] = []
        self.races = 0
        self.stale_reads = 0
        self.stale_examples: list[dict] = []
        self.stale_sizes = 0
        self.size_examples: list[dict] = []
        self.sizes_of_later_saves = 0
        self.crash: str | None = None
        self._examples_by_kind: dict[str, int] = {}

    # -- counting ---------------------------------------------------------
    def error(self, rel: str, name: str, msg: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1
        per = self.errors_by_file.setdefault(rel, {})
        per[name] = per.get(name, 0) + 1
        if len(self.error_examples) < 2 * EXAMPLES:
            self.error_examples.append({"file": rel, "errno": name, "error": msg,
                                        "t": round(time.monotonic() - T0, 3)})

    def torn_read(self, rel: str, kind: str, data: bytes | None) -> None:
        per = self.torn.setdefault(rel, {})
        per[kind] = per.get(kind, 0) + 1
        n = self._examples_by_kind.get(kind, 0)
        if n < EXAMPLES:
            self._examples_by_kind[kind] = n + 1
            ex = {"reader": self.name, "file": rel, "kind": kind,
                  "t": round(time.monotonic() - T0, 3)}
            if data is not None:
                ex.update(len=len(data), first_200=show(data, 200),
                          last_80=data[-80:].decode("utf-8", "backslashreplace"))
            self.torn_examples.append(ex)

    def stale(self, rel: str, seen: int, want: int) -> None:
        self.stale_reads += 1
        if len(self.stale_examples) < EXAMPLES:
            self.stale_examples.append({"file": rel, "seen_seq": seen, "required_seq": want,
                                        "t": round(time.monotonic() - T0, 3)})

    def stale_size(self, rel: str, size: int, detail: str) -> None:
        self.stale_sizes += 1
        if len(self.size_examples) < EXAMPLES:
            self.size_examples.append({"file": rel, "size": size, "detail": detail,
                                       "t": round(time.monotonic() - T0, 3)})

    def check_doc(self, t, data: bytes, t0: float | None) -> int | None:
        """Counts the read; the version it showed, if whole."""
        self.docs += 1
        kind, seq = judge(t, data)
        if kind:
            self.torn_read(t.rel, kind, data)
            return None
        if t0 is not None and seq is not None:
            want = t.required(t0)
            if seq < want:
                self.stale(t.rel, seq, want)
        return seq

    # -- the loops ----------------------------------------------------------
    def run(self) -> None:
        fn = getattr(self, f"pass_{self.kind}")
        try:
            while not self.stop_ev.is_set():
                fn()
                self.passes += 1
        except Exception as e:  # noqa: BLE001 (a bug in the soak itself)
            import traceback
            self.crash = traceback.format_exc()
            log(f"{self.name} crashed: {e!r}")

    def pass_reread(self) -> None:
        for t in self.targets:
            if self.stop_ev.is_set():
                return
            path = str(self.root / t.rel)
            t0 = time.monotonic()
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    size0 = os.fstat(fd).st_size
                    chunks = []
                    while True:
                        b = os.read(fd, 1 << 16)
                        if not b:
                            break
                        chunks.append(b)
                    size = os.fstat(fd).st_size
                finally:
                    os.close(fd)
            except OSError as e:
                self.error(t.rel, errname(e), str(e))
                continue
            data = b"".join(chunks)
            seq = self.check_doc(t, data, t0)
            # a save between the two fstats legitimately changes the size
            if size0 == size != len(data):
                if t.kind != "rename" and seq is not None and t.attempted > seq:
                    # An open reads the version at open; fstat carries no
                    # descriptor and shows the file now, which a later save
                    # rewrote in place. A file replaced by rename is another
                    # file: its descriptors keep their own size.
                    self.sizes_of_later_saves += 1
                else:
                    self.stale_size(t.rel, size, f"fstat says {size} bytes before and after "
                                    f"the read, read returned {len(data)}")

    def tool(self, args: list[str]) -> tuple[bytes, list[tuple[str, str, str]], int]:
        """Runs a tree walker in the mount; returns stdout, (path, errno name,
        message) for each error it printed, and the exit status."""
        try:
            p = subprocess.run(args, cwd=self.root, capture_output=True, timeout=TOOL_TIMEOUT,
                               env=H.base_env(), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.error(" ".join(args), "TIMEOUT", f"did not finish in {TOOL_TIMEOUT} s")
            return b"", [], -1
        errs = []
        for line in p.stderr.decode("utf-8", "backslashreplace").splitlines():
            m = re.match(r"^[\w.-]+: (?:cannot (?:access|open directory|read symbolic link) )?"
                         r"'?(.+?)'?: ([^:]+)$", line)
            if m:
                errs.append((m.group(1), ERRNO_OF_MSG.get(m.group(2), m.group(2)), line))
            else:
                errs.append(("?", "OTHER", line))
        return p.stdout, errs, p.returncode

    def tool_errors(self, errs, rc: int, ok_codes=(0,)) -> set[str]:
        """Counts a walker's errors; returns the paths that had one."""
        paths = set()
        for path, name, line in errs:
            paths.add(path)
            if name == "ENOENT" and os.path.basename(path).startswith(SCRATCH):
                self.races += 1          # renamed away between readdir and open
            else:
                self.error(path, name, line)
        if not errs and rc not in ok_codes:
            self.error("?", f"exit {rc}", f"{self.kind} exited {rc} without a message")
        return paths

    def pass_grep(self) -> None:
        out, errs, rc = self.tool(["grep", "-r", "-a", "-Z", "-H", "-e", "", "roles/", "policies/"])
        if rc == -1:
            return
        failed = self.tool_errors(errs, rc, (0, 1))
        files: dict[str, list[bytes]] = {}
        for line in out.split(b"\n")[:-1] if out.endswith(b"\n") else out.split(b"\n"):
            path, sep, content = line.partition(b"\0")
            if not sep:
                self.error("?", "OTHER", f"grep output line without a file name: {line[:120]!r}")
                continue
            files.setdefault(path.decode("utf-8", "backslashreplace"), []).append(content)
        seen = set()
        for path, lines in files.items():
            rel = os.path.normpath(path)
            if os.path.basename(rel).startswith(SCRATCH):
                continue                 # a scratch file mid-write is not a document
            data = b"\n".join(lines) + b"\n"
            t = self.by_rel.get(rel)
            if t is not None:
                seen.add(rel)
                self.check_doc(t, data, None)
            else:
                self.check_other(rel, data)
        for t in self.targets:
            if t.rel not in seen and not any(os.path.normpath(p) == t.rel for p in failed):
                self.docs += 1
                self.torn_read(t.rel, "absent", None)

    def check_other(self, rel: str, data: bytes) -> None:
        """A file no writer touches: it must still be whole JSON."""
        self.docs += 1
        if b"\0" in data:
            self.torn_read(rel, "nul", data)
            return
        try:
            json.loads(data.decode("utf-8"))
        except ValueError:
            self.torn_read(rel, "invalid json", data)

    DOC_START = re.compile(rb'\{\n  "')

    def pass_find(self) -> None:
        out, errs, rc = self.tool(["find", "roles/", "policies/", "-type", "f",
                                   "!", "-name", f"{SCRATCH}*", "-exec", "cat", "{}", "+"])
        if rc == -1:
            return
        failed = {os.path.normpath(p) for p in self.tool_errors(errs, rc)}
        starts = [m.start() for m in self.DOC_START.finditer(out)]
        if not starts or starts[0] != 0:
            starts = [0] + starts
        seen = set()
        unknown: list[tuple[str, bytes]] = []     # torn pieces of no known file
        dec = json.JSONDecoder()
        for a, b in zip(starts, starts[1:] + [len(out)]):
            seg = out[a:b]
            if not seg.strip():
                continue
            # each segment is one document, maybe followed by "{}\n" files
            t = self.attribute(seg)
            if b"\0" in seg:
                self.docs += 1
                if t:
                    seen.add(t.rel)
                    self.torn_read(t.rel, "nul", seg)
                else:
                    unknown.append(("nul", seg))
                continue
            try:
                text = seg.decode("utf-8")
            except UnicodeDecodeError:
                self.docs += 1
                if t:
                    seen.add(t.rel)
                    self.torn_read(t.rel, "invalid utf-8", seg)
                else:
                    unknown.append(("invalid utf-8", seg))
                continue
            pos = 0
            first = True
            prev = None              # the soak document decoded just before
            while True:
                while pos < len(text) and text[pos] in " \n\t\r":
                    pos += 1
                if pos >= len(text):
                    break
                try:
                    obj, end = dec.raw_decode(text, pos)
                except ValueError:
                    piece = text[pos:].encode()
                    tt = self.attribute(piece)
                    if tt is not None:
                        # a torn document of its own
                        self.docs += 1
                        seen.add(tt.rel)
                        kind, _ = judge(tt, piece)
                        self.torn_read(tt.rel, kind or "invalid json", piece)
                    elif not first:
                        # bytes after a whole document and before the next
                        # one's start: that document's file went on (cat
                        # concatenates); a stale size's tail
                        if prev is not None:
                            self.torn_read(prev.rel, "extra data", seg)
                        else:
                            unknown.append(("extra data", seg))
                    else:
                        self.docs += 1
                        unknown.append(("invalid json", seg))
                    break
                piece = text[pos:end].encode() + b"\n"
                tt = self.attribute_obj(obj)
                if tt is not None:
                    seen.add(tt.rel)
                    self.check_doc(tt, piece, None)
                else:
                    self.docs += 1
                prev = tt
                pos = end
                first = False
        missing = [t for t in self.targets if t.rel not in seen and t.rel not in failed]
        if len(unknown) == 1 and len(missing) == 1:
            # the one torn piece nobody claims is the one document not seen
            t = missing.pop()
            kind, seg = unknown.pop()
            if kind == "invalid json":
                kind = judge(t, seg)[0] or kind
            self.torn_read(t.rel, kind, seg)
        for kind, seg in unknown:
            self.torn_read("(find: unknown file)", kind, seg)
        if not unknown:
            for t in missing:
                self.docs += 1
                self.torn_read(t.rel, "absent", None)

    def attribute_obj(self, obj):
        """Which soak document a parsed object is (None: another file)."""
        if isinstance(obj, dict):
            if "RoleName" in obj and "Arn" in obj:
                for t in self.targets:
                    if isinstance(t, RoleDoc) and obj.get("RoleName") == t.role:
                        return t
                return None
            try:
                m = re.fullmatch(r"arn:aws:s3:::soak-(\w+-\d+)-seq-\d+",
                                 obj["Statement"][0]["Resource"])
                if m and m.group(1) in self.by_id:
                    return self.by_id[m.group(1)]
            except (KeyError, IndexError, TypeError):
                pass
            w = obj.get("writer")
            if isinstance(w, str) and re.fullmatch(r"w\d+", w):
                return self.by_id.get(f"tags-{w[1:]}")
        return None

    def attribute(self, data: bytes):
        """Which soak document some bytes (maybe torn) come from."""
        m = re.search(rb"soak-(\w+-\d+)-seq-\d+", data)
        if m and m.group(1).decode() in self.by_id:
            return self.by_id[m.group(1).decode()]
        m = re.search(rb'"writer": "w(\d+)"', data)
        if m:
            return self.by_id.get(f"tags-{m.group(1).decode()}")
        m = re.search(rb'"RoleName": "([^"]+)"', data)
        if m:
            for t in self.targets:
                if isinstance(t, RoleDoc) and t.role == m.group(1).decode():
                    return t
        return None

    def pass_ls(self) -> None:
        out, errs, rc = self.tool(["ls", "-lR", "roles/", "policies/"])
        if rc == -1:
            return
        self.tool_errors(errs, rc)
        listed: dict[str, int] = {}
        dirs = set()
        cur = None
        for line in out.decode("utf-8", "backslashreplace").splitlines():
            if line.endswith(":") and line.startswith(("roles", "policies")):
                cur = os.path.normpath(line[:-1])
                dirs.add(cur)
                continue
            f = line.split(None, 8)
            if cur is None or len(f) < 9 or not line.startswith("-"):
                continue
            try:
                listed[f"{cur}/{f[8]}"] = int(f[4])
            except ValueError:
                pass
        for t in self.targets:
            if os.path.dirname(t.rel) not in dirs:
                continue            # its folder was not listed this pass (an error says why)
            self.docs += 1
            if t.rel not in listed:
                self.error(t.rel, "UNLISTED", "ls -lR did not list it")
                continue
            size = listed[t.rel]
            if isinstance(t, Target):
                top = t.attempted
                ok_sizes = {t.size(s) for s in range(0, top + 1)} if top < 5000 else None
                if ok_sizes is not None and size not in ok_sizes:
                    self.stale_size(t.rel, size, "no whole version has this size")

    def report(self) -> dict:
        return {"name": self.name, "kind": self.kind, "passes": self.passes,
                "documents_checked": self.docs,
                "errors": dict(self.errors), "error_total": sum(self.errors.values()),
                "errors_by_file": self.errors_by_file,
                "error_examples": self.error_examples,
                "torn": self.torn, "torn_total": sum(sum(v.values()) for v in self.torn.values()),
                "torn_examples": self.torn_examples, "listing_races": self.races,
                "stale_reads": self.stale_reads, "stale_examples": self.stale_examples,
                "stale_sizes": self.stale_sizes, "stale_size_examples": self.size_examples,
                "sizes_of_later_saves": self.sizes_of_later_saves,
                "crash": self.crash}


T0 = time.monotonic()


# --------------------------------------------------------------------------
# RSS
# --------------------------------------------------------------------------

class RssSampler(threading.Thread):
    def __init__(self, pid: int | None, stop: threading.Event, interval: float = 0.25):
        super().__init__(name="rss", daemon=True)
        self.pid = pid
        self.stop_ev = stop
        self.interval = interval
        self.samples: list[tuple[float, int]] = []

    def read(self, key: str = "VmRSS") -> int | None:
        if self.pid is None:
            return None
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                k, _, v = line.partition(":")
                if k == key:
                    return int(v.split()[0])
        except OSError:
            return None
        return None

    def sample(self) -> None:
        v = self.read()
        if v is not None:
            self.samples.append((round(time.monotonic() - T0, 2), v))

    def run(self) -> None:
        while not self.stop_ev.wait(self.interval):
            self.sample()


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------

def make_targets(writers: int) -> list[Target]:
    return [Target(KINDS_W[i % 4], i // 4) for i in range(writers)]


def warm_check(root: Path, targets: list[Target]) -> dict:
    """Before the load: every target reads as version 0 through the mount,
    byte for byte (so the sizes the ls reader expects are right)."""
    out = {}
    for t in targets:
        data = (root / t.rel).read_bytes()
        kind, seq = judge(t, data)
        if kind or seq != 0:
            raise HarnessError(f"{t.rel} does not read as its seeded version before the load "
                               f"({kind or seq}): {show(data, 300)!r}")
        out[t.rel] = data == t.render(0)
    return out


def run(args) -> dict:
    global T0
    duration = args.duration if args.duration is not None else (
        QUICK_DURATION if args.quick else DEFAULT_DURATION)
    binary = Path(args.binary).resolve()
    if not os.access(binary, os.X_OK):
        raise HarnessError(f"{binary} missing: cargo build --release (or pass --binary)")
    if args.writers < 1 or args.readers < 1:
        raise HarnessError("--readers and --writers must be at least 1")
    bench.BenchMount.extra_args = list(args.iamfs_arg)
    git = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="iamfs-soak."))
    targets = make_targets(args.writers)
    roledocs = [RoleDoc(t) for t in targets if t.kind == "tags"]
    watched = [*targets, *roledocs]
    res: dict = {"config": {
        "binary": str(binary), "duration_s": duration, "quick": args.quick,
        "readers": args.readers, "writers": args.writers, "iamfs_args": list(args.iamfs_arg),
        "git": git, "nproc": os.cpu_count(), "workdir": str(work),
        "binary_mtime": time.strftime("%Y-%m-%d %H:%M:%S",
                                      time.localtime(binary.stat().st_mtime)),
        "targets": [t.rel for t in watched]}}
    moto = mount = None
    stop = threading.Event()
    readers: list[Reader] = []
    writers: list[Writer] = []
    sampler = None
    iam = raw = account = None
    ok = False
    try:
        if args.endpoint_url:
            url = args.endpoint_url
        else:
            moto = bench.Moto(work)
            url = moto.url
        res["config"]["endpoint"] = url
        iam, sts = seed_sample.clients(url)
        raw = H.raw_client(iam)
        account = sts.get_caller_identity()["Account"]
        if moto is not None and (args.roles or args.policies):
            log(f"seeding {args.roles} roles and {args.policies} policies for the tree walkers")
            res["seed"] = bench.seed_account(url, roles=args.roles, users=0,
                                             policies=args.policies, groups=0, threads=8)
        log(f"seeding {len(targets)} soak targets into {url}")
        seed_targets(iam, account, targets)

        mount = bench.BenchMount(binary, work, url).start()
        root = mount.path
        res["config"]["daemon_pid"] = mount.pid
        log(f"mounted at {root} (pid {mount.pid})")
        res["renders_match"] = warm_check(root, targets)
        for rd in roledocs:
            kind, seq = judge(rd, (root / rd.rel).read_bytes())
            if kind or seq != 0:
                raise HarnessError(f"{rd.rel} does not show the seeded tags ({kind or seq})")
        # the walkers' first pass is cold; take it before RSS's start figure
        subprocess.run(["grep", "-rq", "-e", "x", "roles/", "policies/"], cwd=root,
                       capture_output=True, timeout=TOOL_TIMEOUT, env=H.base_env())

        sampler = RssSampler(mount.pid, stop)
        sampler.sample()
        rss_start = sampler.samples[-1][1] if sampler.samples else None
        T0 = time.monotonic()
        writers = [Writer(i, t, root, stop, args.write_pause) for i, t in enumerate(targets)]
        readers = [Reader(j, KINDS_R[j % 4], root, watched, stop) for j in range(args.readers)]
        sampler.start()
        for th in [*writers, *readers]:
            th.start()
        log(f"load: {args.readers} readers, {args.writers} writers for {duration:g} s")
        end = T0 + duration
        next_note = T0 + 10
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if not any(th.is_alive() for th in writers):
                log("every writer stopped early")
                break
            time.sleep(min(0.5, end - now))
            if time.monotonic() >= next_note:
                next_note += 10
                saves = sum(len(t.save_seqs) for t in targets)
                torn = sum(sum(sum(v.values()) for v in r.torn.values()) for r in readers)
                errs = sum(sum(r.errors.values()) for r in readers)
                log(f"{time.monotonic() - T0:.0f} s: {saves} saves, {errs} read errors, "
                    f"{torn} torn reads")
        elapsed = time.monotonic() - T0
        stop.set()
        for th in [*writers, *readers]:
            th.join(TOOL_TIMEOUT + 30)
        hung = [th.name for th in [*writers, *readers] if th.is_alive()]
        if hung:
            raise HarnessError(f"threads still running after the stop (a hang in the "
                               f"filesystem?): {hung}\n{mount.log_tail()}")
        sampler.join(5)
        sampler.sample()
        res["elapsed_s"] = round(elapsed, 2)

        # lost saves: IAM against each writer's last successful save
        lost = []
        for w in writers:
            t = w.t
            rep = w.report()
            try:
                got = iam_state(raw, account, t)
            except Exception as e:  # noqa: BLE001
                got = f"(boto3: {e})"
            want = t.expected(t.saved)
            rep["iam_seq"] = t.seq_of(got) if not isinstance(got, str) else None
            rep["lost"] = got != want
            if rep["lost"]:
                lost.append({"writer": w.name, "path": t.rel, "last_saved_seq": t.saved,
                             "iam_seq": rep["iam_seq"], "iam_document": got})
            # and the mount, now that nothing writes
            try:
                data = (root / t.rel).read_bytes()
                kind, seq = judge(t, data)
                rep["mount_final_seq"] = seq
                rep["mount_final_ok"] = kind is None and seq == t.saved
                if not rep["mount_final_ok"]:
                    rep["mount_final_bytes"] = show(data, 200)
            except OSError as e:
                rep["mount_final_ok"] = False
                rep["mount_final_error"] = str(e)
            w.rep = rep
        res["writers"] = [w.rep for w in writers]
        res["lost_saves"] = lost
        res["readers"] = [r.report() for r in readers]

        vals = [v for _, v in sampler.samples]
        res["rss_kb"] = {"start": rss_start, "peak": max(vals) if vals else None,
                         "end": vals[-1] if vals else None, "hwm": sampler.read("VmHWM"),
                         "samples": len(vals),
                         "series": sampler.samples[:: max(1, len(vals) // 200)]}
        try:
            text = (root / ".iamfs" / "errors").read_text(errors="replace")
            lines = [ln for ln in text.splitlines() if ln.strip()]
            res["iamfs_errors"] = {"lines": len(lines), "content": lines[:200]}
        except OSError as e:
            res["iamfs_errors"] = {"lines": None, "error": str(e)}
        try:
            st = mount.status()
            res["iamfs_status"] = {"api_calls_total": st.get("api_calls_total"),
                                   "api_calls": st.get("api_calls"), "errors": st.get("errors")}
        except (OSError, ValueError) as e:
            res["iamfs_status"] = {"error": str(e)}
        ok = True
    finally:
        stop.set()
        for th in [*writers, *readers]:
            th.join(5)
        if mount is not None:
            try:
                mount.unmount()
            except Exception as e:  # noqa: BLE001
                log(f"unmount: {e}")
        if moto is None and iam is not None and account is not None and not args.keep_entities:
            failed = delete_targets(iam, account, targets)
            res["cleanup_failures"] = failed
        if moto is not None:
            moto.stop()
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    summarise(res, args.strict)
    return res


def summarise(res: dict, strict: bool) -> None:
    rd, wr = res["readers"], res["writers"]
    torn_by_file: dict[str, dict[str, int]] = {}
    for r in rd:
        for f, kinds in r["torn"].items():
            d = torn_by_file.setdefault(f, {})
            for k, n in kinds.items():
                d[k] = d.get(k, 0) + n
    final_stale = sum(1 for w in wr if not w.get("mount_final_ok", True))
    tot = {
        "read_errors": sum(r["error_total"] for r in rd),
        "write_errors": sum(sum(w["failures"].values()) for w in wr),
        "torn_reads": sum(r["torn_total"] for r in rd),
        "lost_saves": len(res["lost_saves"]),
        "listing_races": sum(r["listing_races"] for r in rd),
        "stale_reads": sum(r["stale_reads"] for r in rd) + final_stale,
        "stale_sizes": sum(r["stale_sizes"] for r in rd),
        "sizes_of_later_saves": sum(r.get("sizes_of_later_saves", 0) for r in rd),
        "saves": sum(w["saves"] for w in wr),
        "documents_checked": sum(r["documents_checked"] for r in rd),
        "crashes": sum(1 for x in [*rd, *wr] if x.get("crash")),
        "iamfs_errors_lines": res.get("iamfs_errors", {}).get("lines"),
    }
    res["torn_by_file"] = torn_by_file
    errors_by_file: dict[str, dict[str, int]] = {}
    for r in rd:
        for f, kinds in r["errors_by_file"].items():
            d = errors_by_file.setdefault(f, {})
            for k, n in kinds.items():
                d[k] = d.get(k, 0) + n
    res["read_errors_by_file"] = errors_by_file
    res["totals"] = tot
    failing = ["read_errors", "write_errors", "torn_reads", "lost_saves", "crashes"]
    if strict:
        failing += ["stale_reads", "stale_sizes"]
    res["failures"] = [k for k in failing if tot[k]]
    res["result"] = "FAIL" if res["failures"] else "PASS"


def table(res: dict) -> str:
    c = res["config"]
    out = [f"iamfs soak: {c['readers']} readers, {c['writers']} writers, "
           f"{res.get('elapsed_s', 0):.1f} s of load, binary {c['binary']} ({c['binary_mtime']})"
           + "".join(f" {a}" for a in c["iamfs_args"]) + f", endpoint {c.get('endpoint')}", ""]

    def grid(head, rows):
        w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        lines = ["  ".join(str(x).ljust(n) if i == 0 else str(x).rjust(n)
                           for i, (x, n) in enumerate(zip(r, w))).rstrip()
                 for r in [head, *rows]]
        lines.insert(1, "-" * len(lines[0]))
        return lines

    out += grid(["reader", "passes", "docs", "errors", "torn", "races", "stale", "sizes"],
                [[r["name"], r["passes"], r["documents_checked"], r["error_total"],
                  r["torn_total"], r["listing_races"], r["stale_reads"], r["stale_sizes"]]
                 for r in res["readers"]])
    out.append("")
    out += grid(["writer", "path", "saves", "failed", "last saved", "IAM has", "lost", "mount"],
                [[w["name"], w["path"], w["saves"], sum(w["failures"].values()),
                  w["last_saved_seq"], w.get("iam_seq"), "LOST" if w.get("lost") else "ok",
                  "ok" if w.get("mount_final_ok") else f"seq {w.get('mount_final_seq')}"]
                 for w in res["writers"]])
    t = res["totals"]
    out += ["", "totals: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in t.items())]
    if res["torn_by_file"]:
        out.append("torn reads by file and kind:")
        for f, kinds in sorted(res["torn_by_file"].items()):
            out.append(f"  {f}: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    errs: dict[str, int] = {}
    for r in res["readers"]:
        for k, n in r["errors"].items():
            errs[k] = errs.get(k, 0) + n
    if errs:
        out.append("read errors: " + ", ".join(f"{k} {n}" for k, n in sorted(errs.items()))
                   + "; by file:")
        for f, kinds in sorted(res["read_errors_by_file"].items()):
            out.append(f"  {f}: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        out.append("  e.g.")
        for r in res["readers"]:
            for e in r["error_examples"][:3]:
                out.append(f"    {r['name']} @{e['t']}s {e['file']}: {e['error']}")
    for w in res["writers"]:
        if w["failures"]:
            out.append(f"{w['name']} save failures: {w['failures']}; e.g. "
                       + "; ".join(f"seq {x['seq']}: {x['error']}" for x in w["failure_examples"][:2]))
        if w.get("crash"):
            out.append(f"{w['name']} CRASHED: {w['crash']}")
    for r in res["readers"]:
        if r.get("crash"):
            out.append(f"{r['name']} CRASHED: {r['crash']}")
    shown = 0
    for r in res["readers"]:
        per_kind: dict[str, int] = {}
        for ex in r["torn_examples"]:
            if shown >= 14 or per_kind.get(ex["kind"], 0) >= 2:
                continue
            per_kind[ex["kind"]] = per_kind.get(ex["kind"], 0) + 1
            if shown == 0:
                out.append("torn read examples (first 200 bytes; the last 80 where the end "
                           "is the point):")
            shown += 1
            out.append(f"  {ex['reader']} @{ex['t']}s {ex['file']} [{ex['kind']}]"
                       + (f" {ex['len']} bytes: {ex['first_200']!r}" if "len" in ex else ""))
            if ex["kind"] in ("extra data", "nul") and "last_80" in ex:
                out.append(f"      ... last 80: {ex['last_80']!r}")
    for r in res["readers"]:
        for ex in r["stale_examples"][:2]:
            out.append(f"  stale: {r['name']} @{ex['t']}s {ex['file']} showed seq "
                       f"{ex['seen_seq']} after seq {ex['required_seq']} was saved")
        for ex in r["stale_size_examples"][:2]:
            out.append(f"  size: {r['name']} @{ex['t']}s {ex['file']}: {ex['detail']} "
                       f"({ex['size']})")
    for x in res["lost_saves"]:
        out.append(f"LOST SAVE {x['writer']} {x['path']}: last saved seq {x['last_saved_seq']}, "
                   f"IAM has seq {x['iam_seq']}: {json.dumps(x['iam_document'])[:200]}")
    rss = res.get("rss_kb", {})
    mb = lambda v: "?" if v is None else f"{v / 1024:.1f}"  # noqa: E731
    out.append(f"daemon RSS (MB): start {mb(rss.get('start'))}, peak {mb(rss.get('peak'))}, "
               f"end {mb(rss.get('end'))}, VmHWM {mb(rss.get('hwm'))} "
               f"({rss.get('samples')} samples)")
    ie = res.get("iamfs_errors", {})
    out.append(f".iamfs/errors: {ie.get('lines')} lines")
    for line in ie.get("content", [])[:20]:
        out.append(f"  {line}")
    st = res.get("iamfs_status", {})
    if st.get("api_calls_total") is not None:
        out.append(f"IAM calls: {st['api_calls_total']}")
    if res.get("cleanup_failures"):
        out.append(f"clean-up failures: {res['cleanup_failures']}")
    out.append("")
    out.append(f"RESULT: {res['result']}" + (f" ({', '.join(res['failures'])})"
                                            if res["failures"] else
                                            " (0 read errors, 0 write errors, 0 torn, 0 lost)"))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--duration", type=float, metavar="SECONDS",
                    help=f"seconds of load (default {DEFAULT_DURATION:g}; --quick "
                         f"{QUICK_DURATION:g})")
    ap.add_argument("--readers", type=int, default=4,
                    help="reader threads, kinds in turn: reread, grep, find, ls (default 4)")
    ap.add_argument("--writers", type=int, default=4,
                    help="writer threads, kinds in turn: inplace, rename, tags, inline (default 4)")
    ap.add_argument("--quick", action="store_true",
                    help=f"the CI form: {QUICK_DURATION:g} s of load, a smaller account")
    ap.add_argument("--binary", default=str(REPO / "target" / "release" / "iamfs"),
                    help="the iamfs binary (default target/release/iamfs)")
    ap.add_argument("--endpoint-url", help="use this (loopback) moto_server instead of starting "
                    "one; only the soak's own entities are created, and deleted at the end")
    ap.add_argument("--roles", type=int, help="with its own moto: roles seeded for the tree "
                    "walkers (default 60; --quick 30)")
    ap.add_argument("--policies", type=int, help="with its own moto: customer policies seeded "
                    "for the tree walkers (default 30; --quick 15)")
    ap.add_argument("--write-pause", type=float, default=0.0, metavar="SECONDS",
                    help="pause after each successful save (default 0: as fast as possible)")
    ap.add_argument("--iamfs-arg", action="append", default=[], metavar="ARG",
                    help="pass ARG to the mount (repeatable), e.g. --iamfs-arg=--cache-ttl=5")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON here")
    ap.add_argument("--strict", action="store_true",
                    help="stale reads and stale sizes fail the run too")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    ap.add_argument("--keep-entities", action="store_true",
                    help="with --endpoint-url: leave the soak's entities in IAM")
    args = ap.parse_args(argv)
    if args.roles is None:
        args.roles = 30 if args.quick else 60
    if args.policies is None:
        args.policies = 15 if args.quick else 30
    bench.prepare(ap, args)

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    if threading.current_thread() is threading.main_thread():
        # SIGINT too: a shell starts background jobs with SIGINT ignored
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_term)
    try:
        res = run(args)
    except (HarnessError, bench.HarnessError) as e:
        log(f"error: {e}")
        return 2
    except KeyboardInterrupt:
        log("interrupted; unmounted and stopped")
        return 130
    except Exception:  # noqa: BLE001 (seeding, boto3, the soak itself)
        import traceback
        log(f"error: {traceback.format_exc()}")
        return 2
    print(table(res), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0 if res["result"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
