//! What depends on the kernel iamfs runs on: one module for Linux, one
//! plain fallback for the rest (macOS through macFUSE, the BSDs).
//!
//! Linux (`linux.rs`): busy polling of /dev/fuse (O_NONBLOCK switching,
//! gettid, /proc/self/task/TID/schedstat), dead mounts found in
//! /proc/self/mountinfo and unmounted with fusermount3, the init flags only
//! the Linux kernel has (FUSE_CACHE_SYMLINKS, FUSE_AUTO_INVAL_DATA,
//! FUSE_NO_OPENDIR_SUPPORT, and answering open ENOSYS in read-only
//! mounts), and trust in the kernel's invalidations: it
//! may keep entries, attributes and pages as long as the IAM data behind
//! them stays fresh, because it is told when they change.
//!
//! The fallback (`portable.rs`) asks nothing of the kernel that iamfs
//! cannot check works: no busy polling, no dead-mount recovery, only
//! FUSE_ATOMIC_O_TRUNC at init; the kernel keeps an answer at most
//! `UNTRUSTED_TTL` and reads bypass its page cache, since macFUSE does not
//! reliably honour invalidation notices; and extended attributes are
//! answered so that macOS does not keep them in AppleDouble `._name` files.
//!
//! The Linux module is chosen on Linux unless the crate is built with
//! `RUSTFLAGS="--cfg iamfs_portable"`, which selects the fallback there so
//! that CI compiles and tests the code a Mac would run.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use fuser::Errno;

#[cfg(all(target_os = "linux", not(iamfs_portable)))]
mod linux;
#[cfg(all(target_os = "linux", not(iamfs_portable)))]
use linux as imp;

#[cfg(not(all(target_os = "linux", not(iamfs_portable))))]
mod portable;
#[cfg(not(all(target_os = "linux", not(iamfs_portable))))]
use portable as imp;

pub use imp::busy_poll::{BusyPoll, BusyPollGuard, BusyPollHandle};
pub use imp::{
    iamfs_mounts, is_iamfs_mount, lazy_unmount, manual_unmount_hint, notify_ready, notify_stopping,
    passes_mount_option, subtype_option, DEAD_MOUNT_ERRNOS, INIT_CAPABILITIES, KERNEL_INVALIDATES,
    NAME, SKIP_OPEN, SKIP_OPENDIR, XATTRS,
};

/// The longest the kernel keeps an entry or attributes where its
/// invalidations cannot be relied on (`KERNEL_INVALIDATES` false): what a
/// change through the mount or `.iamfs/refresh` made stale shows within it.
pub const UNTRUSTED_TTL: Duration = Duration::from_secs(1);

/// How long the kernel may keep an answer that iamfs would keep for `ttl`.
pub fn kernel_ttl(ttl: Duration) -> Duration {
    ttl_for(KERNEL_INVALIDATES, ttl)
}

fn ttl_for(invalidates: bool, ttl: Duration) -> Duration {
    if invalidates {
        ttl
    } else {
        ttl.min(UNTRUSTED_TTL)
    }
}

/// Whether reads may go through the kernel's page cache (see
/// `kernel::ReadMode`): only where the kernel drops pages when told.
pub const PAGE_CACHE: bool = KERNEL_INVALIDATES;

/// Busy polling of the session's device, unless turned off (`micros` 0),
/// not built for this platform, or pointless (one CPU); requests are then
/// read the ordinary, blocking way.
pub fn start_busy_poll(device: BorrowedFd<'_>, micros: u64) -> Option<BusyPollGuard> {
    if micros == 0 {
        return None;
    }
    if !imp::busy_poll::SUPPORTED {
        tracing::debug!("busy polling is off: Linux only");
        return None;
    }
    // On one CPU the spinning thread would only take turns with its client.
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        tracing::info!("busy polling is off: one CPU");
        return None;
    }
    match BusyPoll::start(device, Duration::from_micros(micros)) {
        Ok(guard) => Some(guard),
        Err(e) => {
            tracing::warn!("busy polling is off: {e}");
            None
        }
    }
}

/// How iamfs answers the extended-attribute requests (IAM keeps none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Xattrs {
    /// ENOSYS to all four: the Linux kernel remembers it for the mount,
    /// stops asking (so `ls -l` does not send a getxattr per file) and
    /// answers EOPNOTSUPP itself.
    Unsupported,
    /// None kept: the list is empty, a get or remove finds nothing
    /// (ENOATTR), a set is accepted and dropped. macOS keeps the
    /// attributes of a filesystem that answers ENOTSUP (macFUSE turns
    /// ENOSYS into ENOTSUP) in AppleDouble `._name` files beside each file,
    /// which iamfs would take for editors' scratch files; a refused set
    /// (EPERM) is reported to make Finder abort its copies.
    NoneKept,
}

impl Xattrs {
    /// The answer to getxattr.
    pub fn get(self) -> Errno {
        match self {
            Xattrs::Unsupported => Errno::ENOSYS,
            Xattrs::NoneKept => Errno::NO_XATTR,
        }
    }

    /// The answer to listxattr: `Ok` is the empty list.
    pub fn list(self) -> Result<(), Errno> {
        match self {
            Xattrs::Unsupported => Err(Errno::ENOSYS),
            Xattrs::NoneKept => Ok(()),
        }
    }

    /// The answer to setxattr with `flags` (XATTR_CREATE, XATTR_REPLACE).
    pub fn set(self, flags: i32) -> Result<(), Errno> {
        match self {
            Xattrs::Unsupported => Err(Errno::ENOSYS),
            // Nothing is there to replace.
            Xattrs::NoneKept if flags & XATTR_REPLACE != 0 => Err(Errno::NO_XATTR),
            Xattrs::NoneKept => Ok(()),
        }
    }

    /// The answer to removexattr.
    pub fn remove(self) -> Errno {
        self.get()
    }
}

/// XATTR_REPLACE as the kernel passes it on (none known elsewhere).
#[cfg(any(target_os = "linux", target_os = "macos"))]
const XATTR_REPLACE: i32 = libc::XATTR_REPLACE;
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
const XATTR_REPLACE: i32 = 0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_keeps_answers_briefly_unless_it_is_told_of_changes() {
        let minute = Duration::from_secs(60);
        assert_eq!(ttl_for(true, minute), minute);
        assert_eq!(ttl_for(false, minute), UNTRUSTED_TTL);
        assert_eq!(ttl_for(false, Duration::ZERO), Duration::ZERO);
        assert_eq!(
            kernel_ttl(minute),
            if KERNEL_INVALIDATES {
                minute
            } else {
                UNTRUSTED_TTL
            }
        );
    }

    #[test]
    fn linux_is_told_xattrs_are_unsupported() {
        let x = Xattrs::Unsupported;
        assert_eq!(x.get(), Errno::ENOSYS);
        assert_eq!(x.list(), Err(Errno::ENOSYS));
        assert_eq!(x.set(0), Err(Errno::ENOSYS));
        assert_eq!(x.remove(), Errno::ENOSYS);
    }

    #[test]
    fn elsewhere_no_xattr_is_kept_and_none_is_refused() {
        // Never ENOTSUP or ENOSYS: macOS would write `._name` files.
        let x = Xattrs::NoneKept;
        for answer in [x.get(), x.remove()] {
            assert_eq!(answer, Errno::NO_XATTR);
        }
        assert_eq!(x.list(), Ok(()));
        assert_eq!(x.set(0), Ok(()));
        if XATTR_REPLACE != 0 {
            assert_eq!(x.set(XATTR_REPLACE), Err(Errno::NO_XATTR));
        }
    }

    #[test]
    fn the_platform_answers_xattrs_as_its_kernel_needs() {
        let expected = if cfg!(all(target_os = "linux", not(iamfs_portable))) {
            Xattrs::Unsupported
        } else {
            Xattrs::NoneKept
        };
        assert_eq!(XATTRS, expected);
    }
}
