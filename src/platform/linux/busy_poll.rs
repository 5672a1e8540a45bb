//! Busy polling of the FUSE device while requests keep coming.
//!
//! A FUSE thread that sleeps in read(/dev/fuse) has to be woken for every
//! request, and on a VM a wakeup of an idle vCPU is a round trip through the
//! hypervisor. A warm `grep -r` sends one open per file, so that wakeup is a
//! large share of its time. While requests arrive, the device is put in
//! non-blocking mode: fuser's read loop then retries EAGAIN at once, so the
//! thread spins and picks up the next request without being woken. A watcher
//! puts the device back in blocking mode once no request has come for a
//! whole window, so an idle mount costs no CPU.
//!
//! Spinning pays only while a CPU would otherwise sit idle. When the spinning
//! thread has to wait for a CPU (a busy machine, or the client on the same
//! CPU), it takes time from the very process it serves: the watcher reads the
//! thread's run-queue wait (/proc schedstat) every window, and once it adds up
//! to more than a tenth of four or more windows of spinning, spinning stops
//! and is not tried again for `BACKOFF`.
//!
//! Invariant: blocking mode is always correct; spinning only saves latency.
//! So a race between the watcher and a request can at worst leave the device
//! blocking while requests come, until the next request turns spinning on.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Busy polling works here (see the fallback's).
pub const SUPPORTED: bool = true;

/// How long spinning is not tried again once it had to wait for a CPU; each
/// back-off in a row (the CPUs stay busy) doubles it, up to BACKOFF_MAX.
pub const BACKOFF: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_millis(1600);
/// Windows of spinning before its run-queue wait is judged: a single short
/// wait (a wakeup on its CPU) is not contention.
const JUDGED_AFTER_WINDOWS: u64 = 4;

pub struct BusyPoll {
    /// A duplicate of the session's descriptor: the same open file, so its
    /// status flags are the session's, and it stays valid until we drop it.
    device: OwnedFd,
    window: Duration,
    epoch: Instant,
    /// Nanoseconds since `epoch` at the last request.
    last_request: AtomicU64,
    spinning: AtomicBool,
    /// Serialises switches of the device's mode.
    switching: Mutex<()>,
    stopped: AtomicBool,
    /// The thread that reads the device (the one that spins), once known.
    reader_tid: AtomicI32,
    /// No spinning before this (nanoseconds since `epoch`).
    backoff_until: AtomicU64,
    /// How many times spinning began (what the tests watch).
    spins_started: AtomicU64,
}

/// Stops the watcher and returns the device to blocking mode when dropped.
pub struct BusyPollGuard {
    poll: Arc<BusyPoll>,
    watcher: Option<JoinHandle<()>>,
}

impl BusyPoll {
    /// Starts watching `device` (the session's /dev/fuse descriptor).
    /// Spinning lasts from a request until no request has come for `window`
    /// (checked every `window`, so at most twice that).
    pub fn start(device: BorrowedFd<'_>, window: Duration) -> std::io::Result<BusyPollGuard> {
        let poll = Arc::new(BusyPoll {
            device: device.try_clone_to_owned()?,
            window,
            epoch: Instant::now(),
            last_request: AtomicU64::new(0),
            spinning: AtomicBool::new(false),
            switching: Mutex::new(()),
            stopped: AtomicBool::new(false),
            reader_tid: AtomicI32::new(0),
            backoff_until: AtomicU64::new(0),
            spins_started: AtomicU64::new(0),
        });
        // Fail now, not on the first request, if the device refuses the flag.
        poll.set_nonblocking(false)?;
        let watched = poll.clone();
        let watcher = thread::Builder::new()
            .name("iamfs-busy-poll".into())
            .spawn(move || watched.watch())?;
        Ok(BusyPollGuard {
            poll,
            watcher: Some(watcher),
        })
    }

    /// Called at the start of every request, on the FUSE thread.
    pub fn request_arrived(&self, watcher: &thread::Thread) {
        let now = self.now();
        self.last_request.store(now, Ordering::Relaxed);
        if self.reader_tid.load(Ordering::Relaxed) == 0 {
            // SAFETY: gettid cannot fail.
            self.reader_tid
                .store(unsafe { libc::gettid() }, Ordering::Relaxed);
        }
        if !self.spinning.load(Ordering::Relaxed)
            && now >= self.backoff_until.load(Ordering::Relaxed)
        {
            let _switch = self.switching.lock();
            if !self.spinning.load(Ordering::Relaxed) && self.set_nonblocking(true).is_ok() {
                self.spinning.store(true, Ordering::Relaxed);
                self.spins_started.fetch_add(1, Ordering::Relaxed);
                watcher.unpark();
            }
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn watch(&self) {
        let mut schedstat: Option<(i32, File)> = None;
        // The last sample while spinning: (now, run-queue wait), in ns.
        let mut last: Option<(u64, u64)> = None;
        // Time spent spinning, and waiting for a CPU meanwhile, since the
        // last judgement; spells cut short by idleness add up.
        let mut spun = (0u64, 0u64);
        // Back-offs since spinning last ended for lack of requests: on a
        // machine that stays busy (where this watcher itself waits for a
        // CPU, and so judges late) the pauses grow.
        let mut backoffs_in_a_row = 0u32;
        while !self.stopped.load(Ordering::Relaxed) {
            if !self.spinning.load(Ordering::Relaxed) {
                last = None;
                thread::park();
                continue;
            }
            let tid = self.reader_tid.load(Ordering::Relaxed);
            if schedstat.as_ref().is_none_or(|(t, _)| *t != tid) {
                schedstat = File::open(format!("/proc/self/task/{tid}/schedstat"))
                    .ok()
                    .map(|f| (tid, f));
            }
            let sample = |now: u64| {
                schedstat
                    .as_ref()
                    .and_then(|(_, f)| run_queue_wait(f))
                    .map(|w| (now, w))
            };
            if last.is_none() {
                last = sample(self.now());
            }
            thread::sleep(self.window);
            let now = self.now();
            let current = sample(now);
            if let (Some((t0, w0)), Some((t1, w1))) = (last, current) {
                spun.0 += t1.saturating_sub(t0);
                spun.1 += w1.saturating_sub(w0);
            }
            last = current;
            let decision = decide(
                self.window,
                now.saturating_sub(self.last_request.load(Ordering::Relaxed)),
                spun,
                current.is_some(),
            );
            // Whether this spell's run-queue wait so far says the CPUs are
            // busy, judged before a whole judgement resets it.
            let contended = waited_too_long(spun);
            if spun.0 >= JUDGED_AFTER_WINDOWS * self.window.as_nanos() as u64 {
                spun = (0, 0);
            }
            if decision == Decision::Spin {
                continue;
            }
            let _switch = self.switching.lock();
            if self.set_nonblocking(false).is_ok() {
                self.spinning.store(false, Ordering::Relaxed);
                if decision == Decision::BackOff {
                    let pause = BACKOFF
                        .saturating_mul(1 << backoffs_in_a_row.min(4))
                        .min(BACKOFF_MAX);
                    backoffs_in_a_row += 1;
                    self.backoff_until
                        .store(now + pause.as_nanos() as u64, Ordering::Relaxed);
                } else if !contended {
                    // Only a spell that ran without waiting for a CPU shows
                    // the machine is free again: on a busy one, clients
                    // starved of CPU leave gaps that end spells too.
                    backoffs_in_a_row = 0;
                }
            }
        }
    }

    fn set_nonblocking(&self, on: bool) -> std::io::Result<()> {
        let fd = self.device.as_fd().as_raw_fd();
        // SAFETY: fcntl on a descriptor we own, with integer arguments.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let wanted = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        // SAFETY: as above.
        if wanted != flags && unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// What the watcher does after a window of spinning.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Spin,
    /// No request for a whole window.
    Block,
    /// The spinning thread waited for a CPU: someone else needs it.
    BackOff,
}

/// `since_request`: time since the last request; `spun`: (time spent
/// spinning, run-queue wait of the spinning thread meanwhile) since the last
/// judgement; `measurable`: whether the wait can be read at all (without it,
/// spinning cannot tell whether it hurts, so it backs off).
fn decide(
    window: Duration,
    since_request: u64,
    (wall, waited): (u64, u64),
    measurable: bool,
) -> Decision {
    if !measurable
        || (wall >= JUDGED_AFTER_WINDOWS * window.as_nanos() as u64
            && waited_too_long((wall, waited)))
    {
        return Decision::BackOff;
    }
    if since_request >= window.as_nanos() as u64 {
        Decision::Block
    } else {
        Decision::Spin
    }
}

/// More than a tenth of the time spent spinning went waiting for a CPU.
fn waited_too_long((wall, waited): (u64, u64)) -> bool {
    waited * 10 > wall
}

/// The second field of /proc/.../schedstat: nanoseconds spent runnable but
/// waiting for a CPU.
fn run_queue_wait(schedstat: &File) -> Option<u64> {
    let mut buf = [0u8; 96];
    let n = schedstat.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl BusyPollGuard {
    /// What the FUSE adapter calls on each request.
    pub fn handle(&self) -> BusyPollHandle {
        BusyPollHandle {
            poll: self.poll.clone(),
            watcher: self
                .watcher
                .as_ref()
                .expect("the watcher runs until the guard drops")
                .thread()
                .clone(),
        }
    }
}

impl Drop for BusyPollGuard {
    fn drop(&mut self) {
        self.poll.stopped.store(true, Ordering::Relaxed);
        if let Some(watcher) = self.watcher.take() {
            watcher.thread().unpark();
            let _ = watcher.join();
        }
        let _ = self.poll.set_nonblocking(false);
    }
}

/// A cheap clone for the FUSE adapter.
#[derive(Clone)]
pub struct BusyPollHandle {
    poll: Arc<BusyPoll>,
    watcher: thread::Thread,
}

impl BusyPollHandle {
    pub fn request_arrived(&self) {
        self.poll.request_arrived(&self.watcher);
    }

    #[cfg(test)]
    fn spins_started(&self) -> u64 {
        self.poll.spins_started.load(Ordering::Relaxed)
    }

    /// Whether the device is in non-blocking mode now.
    #[cfg(test)]
    fn spinning(&self) -> bool {
        self.poll.spinning.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_nonblocking(fd: BorrowedFd<'_>) -> bool {
        // SAFETY: F_GETFL on a valid descriptor.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) & libc::O_NONBLOCK != 0 }
    }

    fn wait_until(what: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if what() {
                return true;
            }
            thread::sleep(Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn spins_from_a_request_until_idle() {
        // A pipe stands in for /dev/fuse: what matters is the open file's flags.
        let (reader, _writer) = std::io::pipe().unwrap();
        let reader = OwnedFd::from(reader);
        let guard = BusyPoll::start(reader.as_fd(), Duration::from_millis(50)).unwrap();
        let handle = guard.handle();
        assert!(!is_nonblocking(reader.as_fd()), "starts blocking");

        handle.request_arrived();
        assert!(
            is_nonblocking(reader.as_fd()),
            "a request turns spinning on at once"
        );
        assert!(handle.spinning());
        assert_eq!(handle.spins_started(), 1);
        assert!(
            wait_until(|| !is_nonblocking(reader.as_fd())),
            "an idle window (or a back-off) puts the device back to blocking"
        );
        assert!(!handle.spinning());

        // After any back-off, the next request spins again.
        thread::sleep(BACKOFF + Duration::from_millis(20));
        handle.request_arrived();
        assert!(is_nonblocking(reader.as_fd()));
        assert_eq!(handle.spins_started(), 2);

        drop(guard);
        assert!(
            !is_nonblocking(reader.as_fd()),
            "dropping the guard leaves it blocking"
        );
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn keeps_spinning_while_requests_come_and_the_cpu_is_its_own() {
        let window = Duration::from_millis(1);
        assert_eq!(decide(window, MS / 10, (0, 0), true), Decision::Spin);
        assert_eq!(decide(window, MS / 10, (MS, 0), true), Decision::Spin);
        assert_eq!(
            decide(window, MS / 10, (4 * MS, MS / 5), true),
            Decision::Spin
        );
        // One long wait early on is not yet contention.
        assert_eq!(decide(window, MS / 10, (2 * MS, MS), true), Decision::Spin);
    }

    #[test]
    fn blocks_after_a_window_without_requests() {
        let window = Duration::from_millis(1);
        assert_eq!(decide(window, MS, (MS, 0), true), Decision::Block);
        assert_eq!(decide(window, 5 * MS, (0, 0), true), Decision::Block);
    }

    #[test]
    fn backs_off_when_it_waited_for_a_cpu_or_cannot_tell() {
        let window = Duration::from_millis(1);
        // More than a tenth of four windows or more of spinning spent
        // waiting for a CPU.
        assert_eq!(
            decide(window, MS / 10, (4 * MS, MS), true),
            Decision::BackOff
        );
        assert_eq!(
            decide(window, 5 * MS, (10 * MS, 2 * MS), true),
            Decision::BackOff
        );
        assert_eq!(decide(window, MS / 10, (0, 0), false), Decision::BackOff);
    }

    #[test]
    fn reads_the_run_queue_wait() {
        let f = File::open("/proc/thread-self/schedstat").unwrap();
        assert!(run_queue_wait(&f).is_some());
    }
}
