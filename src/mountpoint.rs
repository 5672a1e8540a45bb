//! Mountpoints left by a daemon that died: recognised and unmounted, so
//! that starting iamfs again just works (on Linux: `platform` reads the
//! mount table and unmounts).

use std::path::{Path, PathBuf};

use crate::platform;

/// The filesystem type iamfs mounts as (`-t fuse.iamfs`); mounted
/// directly by root it shows as type `fuse` with source `iamfs`.
const FS_TYPE: &str = "fuse.iamfs";
const FS_NAME: &str = "iamfs";

/// Unmounts `path` lazily if it is a dead iamfs mount; says why not otherwise.
pub fn recover_dead_mount(path: &Path) -> Result<(), String> {
    let absolute = absolute(path)?;
    if !platform::is_iamfs_mount(&absolute)? {
        return Err("not an iamfs mount, so it was left alone".into());
    }
    platform::lazy_unmount(&absolute)
}

/// The path made absolute without following it (a dead mount cannot be stat'd).
fn absolute(path: &Path) -> Result<PathBuf, String> {
    let name = path
        .file_name()
        .ok_or_else(|| format!("{} names no directory", path.display()))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent =
        std::fs::canonicalize(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    Ok(parent.join(name))
}

/// Mount points of iamfs in a /proc/PID/mountinfo table.
pub fn iamfs_mounts(table: &str) -> impl Iterator<Item = PathBuf> + '_ {
    table.lines().filter_map(move |line| {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
        let (before, after) = line.split_once(" - ")?;
        let mountpoint = before.split(' ').nth(4)?;
        let mut rest = after.split(' ');
        let (ty, source) = (rest.next()?, rest.next()?);
        let ours = ty == FS_TYPE || (ty == "fuse" && source == FS_NAME);
        ours.then(|| PathBuf::from(unescape(mountpoint)))
    })
}

/// mountinfo writes space, tab, newline and backslash as \ooo.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_iamfs_mount_points() {
        let table = "\
36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
612 29 0:70 / /home/me/my\\040iam rw,nosuid,nodev,relatime shared:330 - fuse.iamfs iamfs rw,user_id=0,group_id=0
613 29 0:71 / /other rw - fuse.sshfs host: rw
45 27 0:40 / /var/tmp/m1 rw,nosuid,nodev,relatime - fuse iamfs rw,user_id=0
46 27 0:41 / /var/tmp/m2 rw,nosuid,nodev,relatime - fuse other rw,user_id=0
";
        let found: Vec<PathBuf> = iamfs_mounts(table).collect();
        assert_eq!(
            found,
            [
                PathBuf::from("/home/me/my iam"),
                PathBuf::from("/var/tmp/m1")
            ]
        );
    }
}
