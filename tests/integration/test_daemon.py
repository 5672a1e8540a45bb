"""The command line: daemon start and failure, unmounting by SIGTERM and by
fusermount3, --foreground, AWS_ENDPOINT_URL, find over the tree."""

import contextlib
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from iamfs_harness import (IAMFS_BIN, REGION, base_env, is_mounted, ls, ok, pids_of, run,
                           wait_for)


@pytest.mark.fresh_mount
def test_missing_mountpoint_fails_with_message(iamfs_bin, moto, tmp_path):
    missing = tmp_path / "does-not-exist"
    p = run([iamfs_bin, "--endpoint-url", moto.url, "--region", REGION, missing], timeout=30)
    assert p.returncode != 0
    assert p.stderr.strip(), "no message on stderr"
    assert str(missing) in p.stderr or "No such file" in p.stderr, p.stderr
    assert not pids_of(IAMFS_BIN, missing), "a daemon was left running"
    assert not missing.exists()


@pytest.mark.fresh_mount
def test_no_credentials_fails_with_message(iamfs_bin, moto, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = base_env(HOME=str(tmp_path))
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(k, None)
    try:
        p = run([iamfs_bin, "--endpoint-url", moto.url, "--region", REGION, mnt], env=env, timeout=60)
        assert p.returncode != 0, "mounted without any credentials"
        assert "credential" in p.stderr.lower(), p.stderr
        assert not is_mounted(mnt)
    finally:
        if is_mounted(mnt):
            run(["fusermount3", "-u", mnt])


@pytest.mark.fresh_mount
def test_daemon_returns_with_pipes(iamfs_bin, moto, tmp_path):
    """`out=$(iamfs ... MNT)` must return: the daemon may not keep the
    caller's stdout/stderr open."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        p = run([iamfs_bin, "--endpoint-url", moto.url, "--region", REGION,
                 "--log-file", tmp_path / "log", mnt], timeout=30)
        assert p.returncode == 0, p.stderr
        assert is_mounted(mnt)
    finally:
        if is_mounted(mnt):
            run(["fusermount3", "-u", mnt])
        wait_for(lambda: not pids_of(IAMFS_BIN, mnt), 10)


@pytest.mark.fresh_mount
def test_sigterm_unmounts_cleanly(make_mount):
    m = make_mount()
    assert "user1" in ls(m.p("users"))
    pids = m.pids()
    assert len(pids) == 1, f"expected one daemon for {m.path}, found {pids}"
    os.kill(pids[0], signal.SIGTERM)
    assert wait_for(lambda: not is_mounted(m.path), 10), "still mounted 10 s after SIGTERM"
    assert wait_for(lambda: not m.pids(), 10), "daemon still running 10 s after SIGTERM"
    # a plain empty directory again, not "Transport endpoint is not connected"
    assert ls(m.p(), "-A") == []
    log = m.log_path.read_text(errors="replace") if m.log_path.exists() else ""
    assert "panic" not in log.lower(), log[-2000:]


@pytest.mark.fresh_mount
def test_fusermount_unmount_ends_daemon(make_mount):
    m = make_mount()
    ls(m.p("roles"))
    assert m.pids()
    ok(["fusermount3", "-u", m.p()])
    assert not is_mounted(m.path)
    assert wait_for(lambda: not m.pids(), 10), "daemon still running 10 s after fusermount3 -u"


@pytest.mark.fresh_mount
def test_foreground_and_sigint(iamfs_bin, moto, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    log = open(tmp_path / "foreground.log", "w+b")  # a file: a full pipe would block the daemon
    proc = subprocess.Popen([str(iamfs_bin), "--foreground", "--endpoint-url", moto.url,
                             "--region", REGION, str(mnt)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            env=base_env())

    def output() -> str:
        log.flush()
        return (tmp_path / "foreground.log").read_text(errors="replace")[-3000:]

    try:
        assert wait_for(lambda: is_mounted(mnt) or proc.poll() is not None, 30)
        assert proc.poll() is None, f"--foreground exited {proc.returncode}: {output()}"
        assert "user1" in ls(mnt / "users")
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(15)
        assert not is_mounted(mnt), "still mounted after SIGINT"
        assert rc == 0 or rc == -signal.SIGINT, f"exit {rc}: {output()}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if is_mounted(mnt):
            run(["fusermount3", "-u", mnt])
        log.close()


@pytest.mark.fresh_mount
def test_endpoint_from_environment(make_mount, moto):
    m = make_mount(endpoint_via_env=True)
    assert "user1" in ls(m.p("users"))
    assert m.status()["endpoint"].rstrip("/") == moto.url


@pytest.mark.fresh_mount
def test_find_maxdepth_3(make_mount):
    m = make_mount()
    t0 = time.monotonic()
    p = run(["find", m.p(), "-maxdepth", "3"], timeout=180)
    secs = time.monotonic() - t0
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stderr == "", p.stderr[-2000:]
    found = set(p.stdout.splitlines())
    for rel in ("users/user1/user.json", "users/user1/attached", "roles/marketingadminrole/role.json",
                "roles/bulk-role-109/trust-policy.json", "groups/developers/members",
                "policies/s3-read-reports.json", "aws-policies/ReadOnlyAccess.json",
                ".iamfs/status"):
        assert str(m.p(rel)) in found, f"{rel} not found by find ({secs:.1f}s)"
    assert not any(x.startswith(str(m.p("users/user1/attached")) + "/") for x in found), \
        "depth > 3 listed"


def _fuse_device_flags(pid: int) -> list[int]:
    """The status flags of the daemon's /dev/fuse descriptors (from /proc)."""
    flags = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "/dev/fuse":
                continue
            info = open(f"/proc/{pid}/fdinfo/{fd}").read()
        except OSError:
            continue
        flags.append(int(info.split("flags:")[1].split()[0], 8))
    assert flags, f"no /dev/fuse descriptor in daemon {pid}"
    return flags


def _polled(pid: int) -> bool:
    """Whether the daemon's device is in non-blocking (busy-polled) mode."""
    return all(f & os.O_NONBLOCK for f in _fuse_device_flags(pid))


def _blocking(pid: int) -> bool:
    return not any(f & os.O_NONBLOCK for f in _fuse_device_flags(pid))


def _cpu_ticks(pid: int) -> int:
    """User plus system time of the process so far, in clock ticks."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@contextlib.contextmanager
def _opening_repeatedly(path):
    """Opens and reads `path` in a loop on another thread (each open reaches
    the daemon) until the block ends."""
    stop = threading.Event()

    def open_repeatedly():
        while not stop.is_set():
            with open(path, "rb") as f:
                f.read()

    opener = threading.Thread(target=open_repeatedly)
    opener.start()
    try:
        yield
    finally:
        stop.set()
        opener.join()


@pytest.mark.fresh_mount
def test_busy_poll_spins_only_while_requests_come(make_mount):
    """While opens keep coming the device is polled (non-blocking); once none
    has come for --busy-poll µs it is blocking again, and an idle daemon uses
    no CPU."""
    m = make_mount(args=["--busy-poll", "20000"])
    (pid,) = m.pids()
    doc = m.p("users/user1/user.json")
    assert _blocking(pid)
    with _opening_repeatedly(doc):
        polled = wait_for(lambda: _polled(pid), 10)
    assert polled, "the device was never polled while opens kept coming"
    assert wait_for(lambda: _blocking(pid), 5), "still polling 5 s after the last request"
    before = _cpu_ticks(pid)
    time.sleep(2)
    spent = _cpu_ticks(pid) - before
    assert spent <= 2, f"an idle daemon used {spent} clock ticks in 2 s"
    # Everything still answers after the switches.
    assert json.loads(open(doc).read())["UserName"] == "user1"


@pytest.mark.fresh_mount
def test_busy_poll_zero_never_polls(make_mount):
    m = make_mount(args=["--busy-poll", "0"])
    (pid,) = m.pids()
    for _ in range(50):
        with open(m.p("users/user1/user.json"), "rb") as f:
            f.read()
    assert _blocking(pid)


@pytest.mark.fresh_mount
def test_busy_poll_backs_off_when_the_cpus_are_busy(make_mount):
    """With every CPU taken by another process, a spinning reader would take
    time from its own clients: it must back off and mostly sleep on the
    device, though opens keep coming."""
    m = make_mount()                     # the default window, 1 ms
    (pid,) = m.pids()
    hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"])
            for _ in range(os.cpu_count() or 1)]
    try:
        with _opening_repeatedly(m.p("users/user1/user.json")):
            time.sleep(0.5)
            samples = []
            for _ in range(200):         # about 2 s
                samples.append(_polled(pid))
                time.sleep(0.01)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    polled = sum(samples) / len(samples)
    assert polled < 0.5, f"the device was polled in {polled:.0%} of samples with every CPU busy"


@pytest.mark.fresh_mount
def test_busy_poll_out_of_range_is_refused(iamfs_bin, moto, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = run([iamfs_bin, "--endpoint-url", moto.url, "--region", REGION,
             "--busy-poll", "2000000", mnt], timeout=30)
    assert p.returncode != 0
    assert "--busy-poll" in p.stderr and "1000000" in p.stderr, p.stderr
    assert not is_mounted(mnt)
