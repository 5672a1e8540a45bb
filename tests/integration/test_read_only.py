"""--read-only mounts at tmpfs speed (issue 15).

In a read-only mount iamfs answers open (of files) and flush with ENOSYS:
the kernel stops sending open, release and flush for the whole mount and
keeps every file's pages across opens, so a warm walk sends the daemon
nothing. These tests show that, and that what used to rely on an open per
read stays correct without it: credentials renewed before expiry, the
status and errors files, documents changed in IAM behind the mount's back,
and the bytes every tool reads (see README, Caching, and vfs.rs's
`without_open`)."""

from __future__ import annotations

import datetime
import http.server
import json
import os
import re
import shutil
import threading
import time
import urllib.request

import pytest

from write_helpers import *  # noqa: F401,F403

pytestmark = pytest.mark.fresh_mount

RO = ["--read-only"]


def kernel_requests(m) -> dict:
    return m.status()["kernel_requests"]


def grown(before: dict, after: dict) -> dict:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after
            if after.get(k, 0) != before.get(k, 0)}


def requests_of(m, argv, times: int = 5) -> dict:
    """The requests the kernel sent while argv ran `times` times, less those
    of reading status itself (measured by reading it twice first)."""
    a = kernel_requests(m)
    b = kernel_requests(m)
    for _ in range(times):
        ok(argv)
    c = kernel_requests(m)
    status_read = grown(a, b)
    return {k: v - status_read.get(k, 0) for k, v in grown(b, c).items()
            if v != status_read.get(k, 0)}


@pytest.fixture(scope="module")
def roles12(wiam):
    prefix = uniq("ro-")
    names = [f"{prefix}-{i:02d}" for i in range(12)]
    for n in names:
        wiam.create_role(RoleName=n, AssumeRolePolicyDocument=json.dumps(trust_doc()))
        wiam.put_role_policy(RoleName=n, PolicyName="inl",
                             PolicyDocument=json.dumps(identity_doc()))
        wiam.tag_role(RoleName=n, Tags=[{"Key": "team", "Value": n}])
    wiam.create_policy(PolicyName=f"{prefix}-managed", PolicyDocument=json.dumps(identity_doc()))
    wiam.create_user(UserName=f"{prefix}-user")
    wiam.put_user_policy(UserName=f"{prefix}-user", PolicyName="inl",
                         PolicyDocument=json.dumps(identity_doc()))
    return names


def warm_up(argv):
    """Runs argv until the kernel holds everything (folders whose listing
    was not fetched yet were answered with a stand-in date kept a second)."""
    ok(argv)
    time.sleep(1.2)
    ok(argv)


def test_warm_walks_send_the_daemon_nothing(make_wmount, roles12):
    m = make_wmount(args=RO + ["--cache-ttl", "300"])
    for argv in (["grep", "-r", "Allow", m.p("roles/")],
                 ["ls", "-lR", m.p("roles/")],
                 ["find", m.p("roles/"), "-type", "f", "-exec", "cat", "{}", "+"]):
        warm_up(argv)
        sent = requests_of(m, argv, times=5)
        # Nothing per file. grep's fts asks for the filesystem's type once
        # per walk (fstatfs), which no kernel keeps: at most one per run.
        assert sent.pop("statfs", 0) <= 5, (argv, sent)
        assert sum(v for v in sent.values() if v > 0) == 0, (argv, sent)
    counts = kernel_requests(m)
    # One open was answered ENOSYS, after which the kernel opens by itself;
    # no release ever comes, and flush at most once (answered ENOSYS too).
    assert counts.get("open", 0) <= 1, counts
    assert counts.get("release", 0) == 0, counts
    assert counts.get("flush", 0) <= 1, counts


def test_read_write_mounts_still_open_every_file(make_wmount, roles12):
    """Unchanged: a read-write mount answers open (saves commit on flush)."""
    m = make_wmount(args=["--cache-ttl", "300"])
    argv = ["grep", "-r", "Allow", m.p("roles/")]
    warm_up(argv)
    sent = requests_of(m, argv, times=2)
    files = int(ok(["sh", "-c", f"find '{m.p('roles/')}' -type f | wc -l"]).strip())
    assert sent.get("open", 0) >= 2 * files and sent.get("release", 0) >= 2 * files, sent


def tree_files(root) -> list[str]:
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            out.append(os.path.relpath(os.path.join(d, f), root))
    return out


def same_trees(a, b):
    fa, fb = tree_files(a), tree_files(b)
    assert fa == fb
    for rel in fa:
        pa, pb = os.path.join(a, rel), os.path.join(b, rel)
        if os.path.islink(pa):
            assert os.readlink(pa) == os.readlink(pb), rel
        else:
            with open(pa, "rb") as x, open(pb, "rb") as y:
                assert x.read() == y.read(), rel


FOLDERS = ["roles", "policies", "users", "groups"]


def copy_all(m, dest):
    """cat of every file (one stream), cp -r, rsync -rl and tar of the tree
    into dest; and every file's stat size is the bytes cat reads."""
    dest.mkdir()
    files = ok(["sh", "-c", f"cd '{m.p()}' && find {' '.join(FOLDERS)} -type f | sort"]).split()
    assert files
    cat = run(["cat", *[m.p(f) for f in files]], text=False)
    assert cat.returncode == 0, cat.stderr
    (dest / "cat").write_bytes(cat.stdout)
    for f in files:
        assert os.stat(m.p(f)).st_size == len(cat_bytes(m.p(f))), f
    for tool in ("cp", "rsync", "tar"):
        (dest / tool).mkdir()
    ok(["cp", "-r", *[m.p(f) for f in FOLDERS], dest / "cp"])
    ok(["rsync", "-rl", *[m.p(f) for f in FOLDERS], dest / "rsync"])
    p = sh(f"cd '{m.p()}' && tar -cf - {' '.join(FOLDERS)} | tar -xf - -C '{dest / 'tar'}'")
    assert p.returncode == 0, p.stderr


def test_tools_read_the_same_bytes_as_in_a_read_write_mount(make_wmount, roles12, tmp_path):
    ro = make_wmount(args=RO)
    rw = make_wmount()
    copy_all(rw, tmp_path / "rw")
    copy_all(ro, tmp_path / "ro-cold")
    copy_all(ro, tmp_path / "ro-warm")
    for ro_copy in ("ro-cold", "ro-warm"):
        assert (tmp_path / "rw" / "cat").read_bytes() == (tmp_path / ro_copy / "cat").read_bytes()
        for tool in ("cp", "rsync", "tar"):
            same_trees(tmp_path / "rw" / tool, tmp_path / ro_copy / tool)


def test_documents_changed_in_iam_show_after_the_cache_ttl(make_wmount, roles12, wiam):
    """Changed behind the mount's back, a document shows once --cache-ttl has
    passed, also when its size stays the same (the mtime carries the
    content's fingerprint: the kernel drops the pages it held)."""
    m = make_wmount(args=RO + ["--cache-ttl", "2"])
    role = roles12[3]
    path = m.p(f"roles/{role}/policies/inl.json")
    old = cat_bytes(path)
    assert cat_bytes(path) == old
    same_size = identity_doc(actions=("s3:PutObject",))  # as long as s3:GetObject
    wiam.put_role_policy(RoleName=role, PolicyName="inl", PolicyDocument=json.dumps(same_size))
    assert wait_for(lambda: cat_bytes(path) == pretty(same_size), 10, 0.2), cat_bytes(path)
    assert len(pretty(same_size)) == len(old)
    mtime_seconds = int(os.stat(path).st_mtime)
    longer = identity_doc(actions=("s3:PutObject", "s3:DeleteObject"))
    wiam.put_role_policy(RoleName=role, PolicyName="inl", PolicyDocument=json.dumps(longer))
    assert wait_for(lambda: cat_bytes(path) == pretty(longer), 10, 0.2), cat_bytes(path)
    assert os.stat(path).st_size == len(pretty(longer))
    # The mtime is still the role's date, to the second.
    assert int(os.stat(path).st_mtime) == mtime_seconds
    wiam.put_role_policy(RoleName=role, PolicyName="inl", PolicyDocument=json.dumps(identity_doc()))


def test_refresh_is_refused_in_a_read_only_mount(make_wmount, roles12):
    """As before: the mount is read-only to the kernel, so writing
    .iamfs/refresh fails with EROFS there (the cache TTL applies)."""
    m = make_wmount(args=RO)
    p = sh(f"echo 1 > '{m.p('.iamfs/refresh')}'")
    assert p.returncode != 0 and "Read-only file system" in p.stderr, p.stderr


def test_status_shows_current_content_and_whole_snapshots(make_wmount, roles12):
    m = make_wmount(args=RO)
    before = m.status()
    ok(["cat", m.p(f"roles/{roles12[0]}/role.json")])
    after = m.status()
    assert after["api_calls_total"] > before["api_calls_total"]
    assert after["kernel_requests_total"] > before["kernel_requests_total"]
    # Every read is one whole snapshot, its size the one fstat gave, even
    # though each read changes the counters it shows.
    seen = set()
    for _ in range(50):
        fd = os.open(m.p(".iamfs/status"), os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            data = b""
            while chunk := os.read(fd, 7):  # many reads of one open
                data += chunk
        finally:
            os.close(fd)
        assert len(data) == size
        seen.add(json.loads(data)["kernel_requests_total"])
    assert len(seen) > 1, "status never changed"


def test_errors_show_a_new_error(make_wmount, roles12):
    m = make_wmount(args=RO)
    before = cat_bytes(m.p(".iamfs/errors"))
    long_name = "x" * 300
    p = run(["stat", m.p(f"roles/{long_name}")])
    assert p.returncode != 0
    assert wait_for(lambda: cat_bytes(m.p(".iamfs/errors")) != before, 5)
    after = cat_bytes(m.p(".iamfs/errors")).decode()
    assert long_name in after, after


# --------------------------------------------------------------------------
# credentials renewed before expiry
# --------------------------------------------------------------------------

# iamfs renews a session this long before it expires (credentials.rs).
REFRESH_WINDOW = 300
# Sessions handed out through the proxy are fresh to iamfs this long.
FRESH_FOR = 3


class ShortSessions:
    """A loopback proxy in front of moto_server that rewrites the Expiration
    of every AssumeRole answer to REFRESH_WINDOW + FRESH_FOR seconds from
    now, so iamfs renews the session FRESH_FOR seconds after it got it."""

    def __init__(self, target: str):
        self.assumed = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                req = urllib.request.Request(target + self.path, data=body, headers=headers,
                                             method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=20) as r:
                        status, out, ctype = r.status, r.read(), r.headers.get("Content-Type")
                except urllib.error.HTTPError as e:
                    status, out, ctype = e.code, e.read(), e.headers.get("Content-Type")
                if b"Action=AssumeRole" in body and status == 200:
                    proxy.assumed += 1
                    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
                        seconds=REFRESH_WINDOW + FRESH_FOR)
                    stamp = soon.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
                    out = re.sub(rb"<Expiration>[^<]*</Expiration>",
                                 b"<Expiration>" + stamp + b"</Expiration>", out)
                self.send_response(status)
                self.send_header("Content-Type", ctype or "text/xml")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def short_sessions(wmoto):
    p = ShortSessions(wmoto.url)
    yield p
    p.close()


def test_credentials_renewed_before_expiry_show_at_the_next_read(
        wmoto, iamfs_bin, tmp_path_factory, roles12, short_sessions):
    m = WMount(tmp_path_factory.mktemp("ro-creds"), short_sessions.url, args=RO)
    try:
        m.start()
        creds = m.p(f"roles/{roles12[0]}/credentials")
        env = m.p(f"roles/{roles12[0]}/env")
        first = json.loads(cat_bytes(creds))
        assert json.loads(cat_bytes(creds)) == first, "one session while it is fresh"
        assert f"'{first['AccessKeyId']}'" in cat_bytes(env).decode()
        assert short_sessions.assumed == 1
        time.sleep(FRESH_FOR + 1)
        data = cat_bytes(creds)
        second = json.loads(data)
        assert second["AccessKeyId"] != first["AccessKeyId"], "renewed session not shown"
        assert short_sessions.assumed == 2
        assert os.stat(creds).st_size == len(data)
        assert f"'{second['AccessKeyId']}'" in cat_bytes(env).decode()
        # A long-lived reader (one open, reading again later) sees it too.
        fd = os.open(creds, os.O_RDONLY)
        try:
            assert json.loads(os.pread(fd, 65536, 0))["AccessKeyId"] == second["AccessKeyId"]
            time.sleep(FRESH_FOR + 1)
            third = json.loads(os.pread(fd, 65536, 0))
            assert third["AccessKeyId"] not in (first["AccessKeyId"], second["AccessKeyId"])
        finally:
            os.close(fd)
    finally:
        m.unmount()


def cached_pages(path) -> int:
    """Pages of `path` in the page cache (fincore, util-linux)."""
    out = ok(["fincore", "--noheadings", "--raw", "--bytes", "-o", "PAGES", str(path)])
    return int(out.split()[0])


@pytest.mark.skipif(not shutil.which("fincore"), reason="fincore (util-linux) missing")
def test_credentials_leave_the_page_cache_soon_after_a_read(make_wmount, roles12):
    m = make_wmount(args=RO)
    creds = m.p(f"roles/{roles12[1]}/credentials")
    doc = m.p(f"roles/{roles12[1]}/role.json")
    cat_bytes(creds)
    cat_bytes(doc)
    time.sleep(2)  # past SECRET_LINGER (1 s)
    assert cached_pages(creds) == 0
    assert cached_pages(doc) >= 1, "documents stay in the page cache"
    # A read-write mount serves them with direct I/O, as before: never cached.
    rw = make_wmount()
    rw_creds = rw.p(f"roles/{roles12[1]}/credentials")
    cat_bytes(rw_creds)
    assert cached_pages(rw_creds) == 0
