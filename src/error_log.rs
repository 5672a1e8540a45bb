//! The most recent errors, for `.iamfs/errors` and `.iamfs/status`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::document::timestamp;
use crate::error::{errno, IamError};

const KEEP: usize = 200;

#[derive(Default)]
pub struct ErrorLog {
    lines: Mutex<VecDeque<String>>,
    count: AtomicU64,
}

impl ErrorLog {
    /// Logs and keeps one error: time, path, operation, errno, IAM's message.
    pub fn record(&self, path: &str, op: &str, err: &IamError) {
        self.record_errno(path, op, errno(err.kind, true), err);
    }

    /// `record`, with the errno the caller was answered.
    pub fn record_errno(&self, path: &str, op: &str, code: i32, err: &IamError) {
        let line = format!(
            "{}\t{path}\t{op}\t{}\t{}: {}",
            timestamp(SystemTime::now()),
            errno_name(code),
            err.code,
            err.message.replace('\n', " ")
        );
        tracing::warn!(
            path,
            op,
            errno = errno_name(code),
            "{}: {}",
            err.code,
            err.message
        );
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut lines = self.lines.lock();
        if lines.len() == KEEP {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn render(&self) -> Vec<u8> {
        let lines = self.lines.lock();
        let mut out = String::new();
        for l in lines.iter() {
            out.push_str(l);
            out.push('\n');
        }
        out.into_bytes()
    }
}

pub fn errno_name(code: i32) -> &'static str {
    match code {
        libc::ENOENT => "ENOENT",
        libc::EEXIST => "EEXIST",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::EBUSY => "EBUSY",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::EROFS => "EROFS",
        libc::EAGAIN => "EAGAIN",
        libc::EISDIR => "EISDIR",
        libc::ENOTDIR => "ENOTDIR",
        libc::EIO => "EIO",
        libc::EFBIG => "EFBIG",
        libc::EBADF => "EBADF",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => "E?",
    }
}
