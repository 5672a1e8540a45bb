//! The plain fallback: macOS (macFUSE) and every kernel but Linux's, and
//! Linux itself when built with `--cfg iamfs_portable` (how CI checks this
//! module). It asks nothing of the kernel that iamfs cannot check works.

use std::path::Path;

use fuser::InitFlags;

use super::Xattrs;

/// What the log says iamfs was built for.
pub const NAME: &str = "portable";

/// O_TRUNC arrives with open where the kernel offers it (FUSE 7.9); iamfs
/// handles a truncating open and a truncate alike, so either way works.
pub const INIT_CAPABILITIES: &[InitFlags] = &[InitFlags::FUSE_ATOMIC_O_TRUNC];

/// opendir is answered as usual.
pub const SKIP_OPENDIR: bool = false;

/// open is answered as usual: reads bypass the page cache here.
pub const SKIP_OPEN: bool = false;

/// macFUSE accepts inval_entry and inval_inode, but they are reported not
/// to take effect in some releases and setups (inval_entry since 4.9.1,
/// the volume root under its FSKit backend; osxfuse ignored inval_inode on
/// mounts that are not synchronous; FUSE-T drops them), and it keeps a
/// file's pages by its own rules: so answers are kept briefly and reads
/// bypass the page cache.
pub const KERNEL_INVALIDATES: bool = false;

pub const XATTRS: Xattrs = Xattrs::NoneKept;

/// stat of a mountpoint whose daemon died: ENXIO ("Device not configured")
/// on macOS.
pub const DEAD_MOUNT_ERRNOS: &[i32] = &[libc::ENOTCONN, libc::ENXIO];

/// What to run by hand when a dead mount is found.
pub fn manual_unmount_hint(path: &Path) -> String {
    format!(
        "run `umount -f {}` (macOS: or `diskutil unmount force {}`)",
        path.display(),
        path.display()
    )
}

/// Dead mounts are recognised only on Linux (/proc/self/mountinfo).
pub fn is_iamfs_mount(_path: &Path) -> Result<bool, String> {
    Err("finding dead mounts is done on Linux only".into())
}

/// Never reached: `is_iamfs_mount` recognises no mount.
pub fn lazy_unmount(path: &Path) -> Result<(), String> {
    Err(format!("{} is left to you to unmount", path.display()))
}

/// Busy polling is off: a handle whose API matches Linux's and does nothing.
pub mod busy_poll {
    use std::os::fd::BorrowedFd;
    use std::time::Duration;

    /// No busy polling here: `BusyPoll::start` says so.
    pub const SUPPORTED: bool = false;

    pub struct BusyPoll;

    /// Never made: `BusyPoll::start` fails.
    pub struct BusyPollGuard(());

    #[derive(Clone)]
    pub struct BusyPollHandle(());

    impl BusyPoll {
        pub fn start(_device: BorrowedFd<'_>, _window: Duration) -> std::io::Result<BusyPollGuard> {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "busy polling is done on Linux only",
            ))
        }
    }

    impl BusyPollGuard {
        pub fn handle(&self) -> BusyPollHandle {
            BusyPollHandle(())
        }
    }

    impl BusyPollHandle {
        pub fn request_arrived(&self) {}
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::os::fd::AsFd;

        #[test]
        fn busy_polling_is_refused_and_requests_are_read_blocking() {
            let (reader, _writer) = std::io::pipe().unwrap();
            let err = BusyPoll::start(reader.as_fd(), Duration::from_millis(1))
                .err()
                .expect("no busy polling in the fallback");
            assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
            assert!(crate::platform::start_busy_poll(reader.as_fd(), 1000).is_none());
            BusyPollGuard(()).handle().request_arrived();
        }
    }
}

/// The filesystem type's subtype, as fuser spells it.
pub fn subtype_option() -> fuser::MountOption {
    fuser::MountOption::Subtype("iamfs".into())
}

/// macFUSE's own `-o` options, passed on as they are (`noappledouble`...).
pub fn passes_mount_option(option: &str) -> bool {
    const FLAGS: &[&str] = &[
        "noappledouble",
        "noapplexattr",
        "local",
        "defer_permissions",
        "nobrowse",
        "novncache",
        "noubc",
        "jail_symlinks",
        "negative_vncache",
    ];
    const VALUED: &[&str] = &[
        "volname=",
        "iosize=",
        "daemon_timeout=",
        "volicon=",
        "fstypename=",
    ];
    FLAGS.contains(&option) || VALUED.iter().any(|p| option.starts_with(p))
}

/// No service manager is told anything here (systemd is Linux's).
pub fn notify_ready(_status: &str) {}

/// As `notify_ready`.
pub fn notify_stopping() {}

/// Listing mounts needs Linux's /proc/self/mountinfo.
pub fn iamfs_mounts() -> Result<Vec<std::path::PathBuf>, String> {
    Err(
        "listing the mounts needs Linux's /proc/self/mountinfo here: give the mountpoint \
         (iamfs status ~/iam)"
            .into(),
    )
}
