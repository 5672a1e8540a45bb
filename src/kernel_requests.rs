//! Counts of the requests the kernel sends, by operation, for `.iamfs/status`:
//! they show what the kernel's caches save (a warm `ls -l` should send
//! almost none).

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! fuse_ops {
    ($($op:ident => $name:literal),* $(,)?) => {
        /// The FUSE operations iamfs answers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum FuseOp { $($op),* }

        impl FuseOp {
            const ALL: &'static [FuseOp] = &[$(FuseOp::$op),*];

            pub fn name(self) -> &'static str {
                match self { $(FuseOp::$op => $name),* }
            }
        }
    };
}

fuse_ops! {
    Lookup => "lookup", Getattr => "getattr", Setattr => "setattr",
    Readlink => "readlink", Mkdir => "mkdir", Unlink => "unlink", Rmdir => "rmdir",
    Symlink => "symlink", Rename => "rename", Create => "create", Open => "open",
    Read => "read", Write => "write", Flush => "flush", Release => "release",
    Fsync => "fsync", Opendir => "opendir", Readdir => "readdir",
    Readdirplus => "readdirplus",
    Releasedir => "releasedir", Fsyncdir => "fsyncdir", Statfs => "statfs",
    Forget => "forget",
}

#[derive(Default)]
pub struct KernelRequests {
    counts: [AtomicU64; FuseOp::ALL.len()],
}

impl KernelRequests {
    pub fn record(&self, op: FuseOp) {
        self.counts[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The operations seen so far, with their counts.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        FuseOp::ALL
            .iter()
            .map(|op| (op.name(), self.counts[*op as usize].load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_operation() {
        let counter = KernelRequests::default();
        counter.record(FuseOp::Open);
        counter.record(FuseOp::Open);
        counter.record(FuseOp::Statfs);
        assert_eq!(counter.snapshot(), vec![("open", 2), ("statfs", 1)]);
        assert_eq!(counter.total(), 3);
    }
}
