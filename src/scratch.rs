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
    name.starts_with('.')
        || name.ends_with('~')
        || name.starts_with('#')
        || name.ends_with('#')
        || !name.ends_with(crate::node::JSON)
        || name.len() == crate::node::JSON.len()
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

/// Scratch files by (folder, name).
#[derive(Default)]
pub struct ScratchStore {
    files: Mutex<BTreeMap<(Node, String), ScratchFile>>,
}

fn missing(name: &str) -> IamError {
    IamError::new(
        ErrorKind::NoSuchEntity,
        "NoSuchFile",
        format!("{name}: no such file"),
    )
}

impl ScratchStore {
    pub fn get(&self, dir: &Node, name: &str) -> Option<ScratchFile> {
        self.files
            .lock()
            .get(&(dir.clone(), name.to_string()))
            .cloned()
    }

    pub fn contains(&self, dir: &Node, name: &str) -> bool {
        self.files
            .lock()
            .contains_key(&(dir.clone(), name.to_string()))
    }

    /// Names in a folder: (name, is a symlink).
    pub fn list(&self, dir: &Node) -> Vec<(String, bool)> {
        self.files
            .lock()
            .iter()
            .filter(|((d, _), _)| d == dir)
            .map(|((_, n), f)| (n.clone(), f.link.is_some()))
            .collect()
    }

    /// Creates a file; fails with EEXIST when the name is taken (O_EXCL).
    pub fn create(&self, dir: &Node, name: &str, file: ScratchFile) -> Result<()> {
        let mut files = self.files.lock();
        let key = (dir.clone(), name.to_string());
        if files.contains_key(&key) {
            return Err(IamError::new(
                ErrorKind::EntityAlreadyExists,
                "FileExists",
                format!("{name} exists"),
            ));
        }
        files.insert(key, file);
        Ok(())
    }

    /// Puts a file in place, replacing any there.
    pub fn put(&self, dir: &Node, name: &str, file: ScratchFile) {
        self.files
            .lock()
            .insert((dir.clone(), name.to_string()), file);
    }

    pub fn update<R>(
        &self,
        dir: &Node,
        name: &str,
        f: impl FnOnce(&mut ScratchFile) -> R,
    ) -> Result<R> {
        let mut files = self.files.lock();
        let file = files
            .get_mut(&(dir.clone(), name.to_string()))
            .ok_or_else(|| missing(name))?;
        Ok(f(file))
    }

    pub fn write(&self, dir: &Node, name: &str, offset: u64, data: &[u8]) -> Result<()> {
        self.update(dir, name, |file| {
            write_at(&mut file.data, offset, data);
            file.mtime = SystemTime::now();
        })
    }

    pub fn take(&self, dir: &Node, name: &str) -> Option<ScratchFile> {
        self.files.lock().remove(&(dir.clone(), name.to_string()))
    }

    pub fn remove(&self, dir: &Node, name: &str) -> Result<()> {
        self.take(dir, name)
            .map(|_| ())
            .ok_or_else(|| missing(name))
    }

    pub fn clear(&self) {
        self.files.lock().clear();
    }
}

/// Writes `data` at `offset`, growing the buffer with zeros as a file would.
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
    fn writes_past_the_end_fill_with_zeros() {
        let mut buf = b"ab".to_vec();
        write_at(&mut buf, 4, b"cd");
        assert_eq!(buf, b"ab\0\0cd");
        write_at(&mut buf, 0, b"X");
        assert_eq!(buf, b"Xb\0\0cd");
    }
}
