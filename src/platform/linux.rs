//! Linux: everything iamfs can ask of the Linux kernel's FUSE.

use std::path::Path;

use fuser::InitFlags;

use super::Xattrs;

pub mod busy_poll;

/// What the log says iamfs was built for.
pub const NAME: &str = "linux";

/// Asked at init, each only if the kernel offers it. O_TRUNC arrives with
/// open, so a truncating open is one request. Link targets are names and
/// never change under a name: the kernel may keep them. With
/// AUTO_INVAL_DATA the kernel checks a folder's mtime before reusing a
/// listing it cached, and a file's mtime and size before reusing its
/// pages, once their attributes expire.
pub const INIT_CAPABILITIES: &[InitFlags] = &[
    InitFlags::FUSE_ATOMIC_O_TRUNC,
    InitFlags::FUSE_CACHE_SYMLINKS,
    InitFlags::FUSE_AUTO_INVAL_DATA,
    // Every listing with its entries' attributes (`readdirplus`). Not the
    // adaptive form (FUSE_READDIRPLUS_AUTO): it asks with attributes only
    // for a folder's first reply, and a walk reads a whole folder before it
    // looks anything up. Attributes here cost no IAM call (what is not
    // cached goes out as a stand-in), so every reply may carry them.
    InitFlags::FUSE_DO_READDIRPLUS,
];

/// Linux 5.1 and later can do without opendir (FUSE_NO_OPENDIR_SUPPORT):
/// told so once, the kernel stops sending opendir and releasedir and keeps
/// the listings it reads.
pub const SKIP_OPENDIR: bool = true;

/// Linux 4.20 and later can do without open (FUSE_NO_OPEN_SUPPORT): told
/// so once (ENOSYS), the kernel stops sending open and release for the
/// whole mount, gives every open file handle 0 and keeps its pages as with
/// FOPEN_KEEP_CACHE (fs/fuse/file.c, "Default for no-open"); answered
/// ENOSYS, it stops sending flush too. Used by read-only mounts only (see
/// `Fs::without_open`).
pub const SKIP_OPEN: bool = true;

/// The kernel drops the entries, attributes and pages it is told to
/// (inval_entry, inval_inode), and pages at an open without KEEP_CACHE.
pub const KERNEL_INVALIDATES: bool = true;

pub const XATTRS: Xattrs = Xattrs::Unsupported;

/// stat of a mountpoint whose daemon died.
pub const DEAD_MOUNT_ERRNOS: &[i32] = &[libc::ENOTCONN];

/// What to run by hand when a dead mount cannot be unmounted for the user.
pub fn manual_unmount_hint(path: &Path) -> String {
    format!("run `fusermount3 -uz {}` (or `umount -l`)", path.display())
}

/// Whether `path` (absolute) is an iamfs mount, from /proc/self/mountinfo.
pub fn is_iamfs_mount(path: &Path) -> Result<bool, String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    let found = crate::mountpoint::iamfs_mounts(&table).any(|m| m == path);
    Ok(found)
}

/// fusermount3 -uz, which an unprivileged mounter may run; as root, a
/// lazy umount2 if fusermount3 is missing.
pub fn lazy_unmount(path: &Path) -> Result<(), String> {
    let by_helper = std::process::Command::new("fusermount3")
        .arg("-uz")
        .arg(path)
        .status();
    if matches!(by_helper, Ok(s) if s.success()) {
        return Ok(());
    }
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    Err(format!(
        "unmounting it failed: {}",
        std::io::Error::last_os_error()
    ))
}

/// The filesystem type's subtype, as a kernel option: fuser passes
/// `subtype=` to fusermount3 (an unprivileged mount) but drops it from the
/// mount(2) root makes itself, which then shows type `fuse`; the kernel
/// takes `subtype=iamfs` in the mount data and shows `fuse.iamfs` either
/// way, so `umount -t fuse.iamfs`, findmnt and `iamfs status` find it.
pub fn subtype_option() -> fuser::MountOption {
    fuser::MountOption::CUSTOM("subtype=iamfs".into())
}

/// `-o` options beyond iamfs's and FUSE's generic ones: none on Linux (the
/// kernel refuses what it does not know with EINVAL).
pub fn passes_mount_option(_option: &str) -> bool {
    false
}

/// Tells systemd (Type=notify; NOTIFY_SOCKET in the environment) that the
/// mount answers, with a status line. Nothing happens without the socket.
pub fn notify_ready(status: &str) {
    let sent = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
    if let Err(e) = sent {
        tracing::warn!("telling systemd the mount is ready: {e}");
    }
}

/// Tells systemd that the mount is going away.
pub fn notify_stopping() {
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Stopping]) {
        tracing::warn!("telling systemd the mount is stopping: {e}");
    }
}

/// The mountpoints of the iamfs mounts this process sees
/// (/proc/self/mountinfo), for `iamfs status`.
pub fn iamfs_mounts() -> Result<Vec<std::path::PathBuf>, String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    Ok(crate::mountpoint::iamfs_mounts(&table).collect())
}
