//! Scratch files: what editors and tools make beside a document (swap,
//! probe, backup, lock and temp files). They live in memory, behave like
//! files anywhere, and never become IAM objects.

use std::collections::BTreeMap;
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::error::{ErrorKind, IamError, Result};
use crate::node::Node;

/// Whether a name in a policy folder is an editor's or tool's file rather
/// than a document: dot files, `~` backups, `#autosave#`, swap files, and
/// anything without `.json`.
pub fn is_scratch_name(name: &str) -> bool {
    is_editor_name(name)
        || !name.ends_with(crate::node::JSON)
        || name.len() == crate::node::JSON.len()
}

/// Names editors give their own files whatever the extension: dot files
/// (swap files, locks), backups (`~`) and emacs's `#autosave#`.
pub fn is_editor_name(name: &str) -> bool {
    name.starts_with('.') || name.ends_with('~') || name.starts_with('#') || name.ends_with('#')
}

#[derive(Debug, Clone)]
pub struct ScratchFile {
    pub data: Vec<u8>,
    /// Set for a symbolic link (emacs's `.#name` locks).
    pub link: Option<String>,
    pub perm: u16,
    pub mtime: SystemTime,
}

impl ScratchFile {
    pub fn new(perm: u16, link: Option<String>) -> Self {
        Self {
            data: Vec::new(),
            link,
            perm,
            mtime: SystemTime::now(),
        }
    }
}

/// Largest scratch file: far past any editor's swap or backup of a
/// document, far below what would hurt the daemon.
pub const SCRATCH_FILE_MAX: u64 = 16 << 20;
/// All scratch files together; statfs reports what is left of it.
pub const SCRATCH_TOTAL_MAX: u64 = 64 << 20;

#[derive(Default)]
struct Files {
    by_name: BTreeMap<(Node, String), ScratchFile>,
    /// Bytes held by all files.
    used: u64,
}

/// Scratch files by (folder, name), within SCRATCH_FILE_MAX each and
/// SCRATCH_TOTAL_MAX in all.
#[derive(Default)]
pub struct ScratchStore {
    files: Mutex<Files>,
}

fn missing(name: &str) -> IamError {
    IamError::new(
        ErrorKind::NoSuchEntity,
        "NoSuchFile",
        format!("{name}: no such file"),
    )
}

/// Checks that a file of `old` bytes may grow to `new` bytes.
fn check_growth(name: &str, used: u64, old: u64, new: u64) -> Result<()> {
    if new > SCRATCH_FILE_MAX {
        return Err(IamError::new(
            ErrorKind::TooLarge,
            "FileTooLarge",
            format!(
                "{name}: {new} bytes is past the {SCRATCH_FILE_MAX}-byte limit of an editor's file here"
            ),
        ));
    }
    if new > old && used - old + new > SCRATCH_TOTAL_MAX {
        return Err(IamError::new(
            ErrorKind::NoSpace,
            "NoSpace",
            format!(
                "{name}: editors' files here may hold {SCRATCH_TOTAL_MAX} bytes in all, and {used} are in use"
            ),
        ));
    }
    Ok(())
}

impl ScratchStore {
    pub fn get(&self, dir: &Node, name: &str) -> Option<ScratchFile> {
        self.files
            .lock()
            .by_name
            .get(&(dir.clone(), name.to_string()))
            .cloned()
    }

    pub fn contains(&self, dir: &Node, name: &str) -> bool {
        self.files
            .lock()
            .by_name
            .contains_key(&(dir.clone(), name.to_string()))
    }

    /// Bytes held by all scratch files.
    pub fn used(&self) -> u64 {
        self.files.lock().used
    }

    /// Paths of the files in `dir` and in the folders below it.
    pub fn names_within(&self, dir: &Node) -> Vec<String> {
        self.files
            .lock()
            .by_name
            .keys()
            .filter(|(d, _)| d == dir || d.parent_and_name().is_some_and(|(p, _)| &p == dir))
            .map(|(d, n)| format!("{}/{n}", d.path()))
            .collect()
    }

    /// Names in a folder: (name, is a symlink).
    pub fn list(&self, dir: &Node) -> Vec<(String, bool)> {
        self.files
            .lock()
            .by_name
            .iter()
            .filter(|((d, _), _)| d == dir)
            .map(|((_, n), f)| (n.clone(), f.link.is_some()))
            .collect()
    }

    /// Creates a file; fails with EEXIST when the name is taken (O_EXCL).
    pub fn create(&self, dir: &Node, name: &str, file: ScratchFile) -> Result<()> {
        let mut files = self.files.lock();
        let key = (dir.clone(), name.to_string());
        if files.by_name.contains_key(&key) {
            return Err(IamError::new(
                ErrorKind::EntityAlreadyExists,
                "FileExists",
                format!("{name} exists"),
            ));
        }
        files.used += file.data.len() as u64;
        files.by_name.insert(key, file);
        Ok(())
    }

    /// Puts a file in place, replacing any there.
    pub fn put(&self, dir: &Node, name: &str, file: ScratchFile) {
        let mut files = self.files.lock();
        files.used += file.data.len() as u64;
        if let Some(old) = files.by_name.insert((dir.clone(), name.to_string()), file) {
            files.used -= old.data.len() as u64;
        }
    }

    /// Changes a file through `change`, which leaves it `new_len(old)`
    /// bytes long, within the limits, keeping the total in step. `touch`:
    /// its bytes change, so its mtime is now (before `change`, which may
    /// set another).
    fn change(
        &self,
        dir: &Node,
        name: &str,
        new_len: impl FnOnce(u64) -> u64,
        touch: bool,
        change: impl FnOnce(&mut ScratchFile),
    ) -> Result<()> {
        let mut guard = self.files.lock();
        let files = &mut *guard;
        let file = files
            .by_name
            .get_mut(&(dir.clone(), name.to_string()))
            .ok_or_else(|| missing(name))?;
        let old = file.data.len() as u64;
        check_growth(name, files.used, old, new_len(old))?;
        if touch {
            file.mtime = SystemTime::now();
        }
        change(file);
        files.used = files.used - old + file.data.len() as u64;
        Ok(())
    }

    /// Changes a file's mode, size or mtime (chmod, truncate, utimes).
    pub fn set(
        &self,
        dir: &Node,
        name: &str,
        perm: Option<u16>,
        size: Option<u64>,
        mtime: Option<SystemTime>,
    ) -> Result<()> {
        let new_len = |old| size.unwrap_or(old);
        self.change(dir, name, new_len, size.is_some(), |file| {
            if let Some(size) = size {
                file.data.resize(size as usize, 0);
            }
            if let Some(perm) = perm {
                file.perm = perm;
            }
            if let Some(t) = mtime {
                file.mtime = t;
            }
        })
    }

    pub fn write(&self, dir: &Node, name: &str, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset.saturating_add(data.len() as u64);
        self.change(
            dir,
            name,
            |old| end.max(old),
            true,
            |file| write_at(&mut file.data, offset, data),
        )
    }

    pub fn take(&self, dir: &Node, name: &str) -> Option<ScratchFile> {
        let mut files = self.files.lock();
        let file = files.by_name.remove(&(dir.clone(), name.to_string()))?;
        files.used -= file.data.len() as u64;
        Some(file)
    }

    pub fn remove(&self, dir: &Node, name: &str) -> Result<()> {
        self.take(dir, name)
            .map(|_| ())
            .ok_or_else(|| missing(name))
    }

    pub fn clear(&self) {
        let mut files = self.files.lock();
        files.by_name.clear();
        files.used = 0;
    }
}

/// Writes `data` at `offset`, growing the buffer with zeros as a file would.
/// Callers bound `offset + data.len()` first.
pub fn write_at(buf: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let offset = offset as usize;
    if buf.len() < offset + data.len() {
        buf.resize(offset + data.len(), 0);
    }
    buf[offset..offset + data.len()].copy_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_names_are_scratch_and_json_names_are_documents() {
        for name in [
            "4913",
            ".p.json.swp",
            "p.json~",
            ".#p.json",
            "#p.json#",
            "sedAbc123",
            ".p.json.Xy12Ab",
            "p.json.tmp",
            "tmpk2j3",
            ".json",
        ] {
            assert!(is_scratch_name(name), "{name}");
        }
        assert!(!is_scratch_name("p.json"));
        assert!(!is_scratch_name("my-policy.v2.json"));
    }

    #[test]
    fn sizes_are_capped_per_file_and_in_all() {
        let store = ScratchStore::default();
        let dir = Node::Root;
        store
            .create(&dir, "a", ScratchFile::new(0o644, None))
            .unwrap();
        let err = store.set(&dir, "a", None, Some(1 << 40), None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooLarge);
        let err = store.write(&dir, "a", u64::MAX - 1, b"xy").unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooLarge);
        assert_eq!(store.used(), 0);
        for i in 0..4 {
            let name = format!("f{i}");
            store
                .create(&dir, &name, ScratchFile::new(0o644, None))
                .unwrap();
            store
                .set(&dir, &name, None, Some(SCRATCH_FILE_MAX), None)
                .unwrap();
        }
        assert_eq!(store.used(), SCRATCH_TOTAL_MAX);
        let err = store.write(&dir, "a", 0, b"x").unwrap_err();
        assert_eq!(err.kind, ErrorKind::NoSpace);
        // Shrinking and rewriting within a file's size is always allowed.
        store.set(&dir, "f0", None, Some(10), None).unwrap();
        store.write(&dir, "a", 0, b"x").unwrap();
        store.remove(&dir, "f1").unwrap();
        assert_eq!(store.used(), 11 + 2 * SCRATCH_FILE_MAX);
    }

    #[test]
    fn writes_past_the_end_fill_with_zeros() {
        let mut buf = b"ab".to_vec();
        write_at(&mut buf, 4, b"cd");
        assert_eq!(buf, b"ab\0\0cd");
        write_at(&mut buf, 0, b"X");
        assert_eq!(buf, b"Xb\0\0cd");
    }
}
