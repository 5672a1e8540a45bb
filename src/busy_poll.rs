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
//! Invariant: blocking mode is always correct; spinning only saves latency.
//! So a race between the watcher and a request can at worst leave the device
//! blocking while requests come, until the next request turns spinning on.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

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
    /// How many times spinning began, for `.iamfs/status`.
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
        self.last_request.store(self.now(), Ordering::Relaxed);
        if !self.spinning.load(Ordering::Relaxed) {
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
        while !self.stopped.load(Ordering::Relaxed) {
            if !self.spinning.load(Ordering::Relaxed) {
                thread::park();
                continue;
            }
            thread::sleep(self.window);
            let _switch = self.switching.lock();
            let idle = self
                .now()
                .saturating_sub(self.last_request.load(Ordering::Relaxed));
            if idle >= self.window.as_nanos() as u64 && self.set_nonblocking(false).is_ok() {
                self.spinning.store(false, Ordering::Relaxed);
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

    pub fn spins_started(&self) -> u64 {
        self.poll.spins_started.load(Ordering::Relaxed)
    }

    /// Whether the device is in non-blocking mode now.
    pub fn spinning(&self) -> bool {
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
    fn spins_while_requests_come_and_blocks_once_idle() {
        // A pipe stands in for /dev/fuse: what matters is the open file's flags.
        let (reader, _writer) = std::io::pipe().unwrap();
        let reader = OwnedFd::from(reader);
        let guard = BusyPoll::start(reader.as_fd(), Duration::from_millis(200)).unwrap();
        let handle = guard.handle();
        assert!(!is_nonblocking(reader.as_fd()), "starts blocking");

        handle.request_arrived();
        assert!(
            is_nonblocking(reader.as_fd()),
            "a request turns spinning on at once"
        );
        assert!(handle.spinning());
        // Requests closer together than the window keep it spinning.
        for _ in 0..10 {
            thread::sleep(Duration::from_millis(5));
            handle.request_arrived();
            assert!(is_nonblocking(reader.as_fd()));
        }
        assert_eq!(handle.spins_started(), 1);

        assert!(
            wait_until(|| !is_nonblocking(reader.as_fd())),
            "an idle window puts the device back to blocking"
        );
        assert!(!handle.spinning());

        handle.request_arrived();
        assert!(
            is_nonblocking(reader.as_fd()),
            "and the next request spins again"
        );
        assert_eq!(handle.spins_started(), 2);

        drop(guard);
        assert!(
            !is_nonblocking(reader.as_fd()),
            "dropping the guard leaves it blocking"
        );
    }
}
