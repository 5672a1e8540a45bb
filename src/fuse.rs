//! The FUSE adapter (fuser 0.18): each operation counts the request, calls
//! the FUSE-free filesystem (`vfs.rs`) and replies; errors are mapped to
//! errno, logged and replied in one place (`fail`). A request's work is
//! polled once on the thread that read it; one that must wait (on IAM, a
//! lock) becomes a task that owns its reply, so one slow call never holds up
//! the others.

use std::ffi::OsStr;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::task::Context;
use std::time::SystemTime;

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, IoctlFlags,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::error::{errno, ErrorKind};
use crate::kernel_requests::FuseOp;
use crate::namespace::Attr;
use crate::node::FileKind;
use crate::platform::{self, BusyPollHandle};
use crate::vfs::{Attributes, Fs, FsError, FsResult, Invalidate, OpenMode, Written, NO_HANDLE};

/// Replies that can carry an errno.
pub trait ErrorReply {
    fn error(self, errno: Errno);
}

macro_rules! error_reply {
    ($($t:ty),*) => {$(
        impl ErrorReply for $t {
            fn error(self, errno: Errno) {
                <$t>::error(self, errno)
            }
        }
    )*};
}
error_reply!(
    ReplyAttr,
    ReplyData,
    ReplyDirectory,
    ReplyDirectoryPlus,
    ReplyEmpty,
    ReplyEntry,
    ReplyOpen,
    ReplyWrite,
    ReplyCreate
);

/// fuser's notifier, as the filesystem's way to make the kernel let go.
struct Notify(fuser::Notifier);

impl Invalidate for Notify {
    fn entry(&self, parent: u64, name: &str) {
        let _ = self.0.inval_entry(INodeNo(parent), OsStr::new(name));
    }

    fn inode(&self, ino: u64) {
        let _ = self.0.inval_inode(INodeNo(ino), 0, 0);
    }

    fn store(&self, ino: u64, data: &[u8]) -> bool {
        self.0.store(INodeNo(ino), 0, data).is_ok()
    }
}

pub struct FuseAdapter {
    fs: Arc<Fs>,
    rt: tokio::runtime::Handle,
    uid: u32,
    gid: u32,
    /// The kernel can do without opendir (see `platform::SKIP_OPENDIR`).
    no_opendir: bool,
    /// open and flush are answered ENOSYS (see `Fs::without_open`).
    no_open: bool,
    busy_poll: Arc<OnceLock<BusyPollHandle>>,
}

/// The one place an error is logged, recorded and replied.
fn fail<R: ErrorReply>(fs: &Fs, e: FsError, reply: R) {
    let code = errno(e.err.kind, e.is_file);
    if e.err.kind == ErrorKind::NoSuchEntity {
        // Lookups of absent names are routine (shells, editors probing).
        tracing::debug!(path = e.path, op = e.op, "{}", e.err);
    } else {
        fs.namespace()
            .errors
            .record_errno(&e.path, e.op, code, &e.err);
    }
    reply.error(Errno::from_i32(code));
}

fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::Dir => FileType::Directory,
        FileKind::File => FileType::RegularFile,
        FileKind::Symlink => FileType::Symlink,
    }
}

fn open_flags(mode: OpenMode) -> FopenFlags {
    let mut flags = FopenFlags::empty();
    if mode.direct_io {
        flags |= FopenFlags::FOPEN_DIRECT_IO;
    }
    if mode.keep_cache {
        flags |= FopenFlags::FOPEN_KEEP_CACHE;
    }
    if mode.no_flush {
        flags |= FopenFlags::FOPEN_NOFLUSH;
    }
    flags
}

fn time(t: Option<TimeOrNow>) -> Option<SystemTime> {
    t.map(|t| match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    })
}

impl FuseAdapter {
    pub fn new(fs: Arc<Fs>, rt: tokio::runtime::Handle) -> Self {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Self {
            fs,
            rt,
            uid,
            gid,
            no_opendir: false,
            no_open: false,
            busy_poll: Arc::default(),
        }
    }

    /// Where to put the busy poller once the session's device exists.
    pub fn busy_poll_slot(&self) -> Arc<OnceLock<BusyPollHandle>> {
        self.busy_poll.clone()
    }

    /// Gives the filesystem the session's notifier once the mount exists.
    pub fn set_notifier(fs: &Fs, notifier: fuser::Notifier) {
        fs.set_invalidator(Arc::new(Notify(notifier)));
    }

    /// The start of every request: counted, and it keeps the device polled.
    fn arrived(&self, op: FuseOp) {
        self.fs.namespace().requests.record(op);
        if let Some(poll) = self.busy_poll.get() {
            poll.request_arrived();
        }
    }

    /// Runs `work`, then `send`s its answer, or fails the reply with its error.
    fn run<R, T, Fut>(&self, reply: R, work: Fut, send: impl FnOnce(R, T) + Send + 'static)
    where
        R: ErrorReply + Send + 'static,
        T: Send + 'static,
        Fut: Future<Output = FsResult<T>> + Send + 'static,
    {
        let fs = self.fs.clone();
        let mut task = Box::pin(async move {
            match work.await {
                Ok(value) => send(reply, value),
                Err(e) => fail(&fs, e, reply),
            }
        });
        // Most answers come from the cache: polled here, on the thread that
        // read the request, they cost no hand-off to another thread. Only
        // one that waits (on IAM, a lock) becomes a task; from then on its
        // real waker is the one registered.
        let _runtime = self.rt.enter();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if task.as_mut().poll(&mut cx).is_pending() {
            self.rt.spawn(task);
        }
    }

    /// An entry reply, and then the filesystem is told it went out.
    fn entry(&self) -> impl FnOnce(ReplyEntry, Attributes) + Send + 'static {
        let (uid, gid) = (self.uid, self.gid);
        move |r: ReplyEntry, a: Attributes| {
            let fattr = attr_of(uid, gid, a.ino, &a.attr);
            r.entry(&a.ttl, &fattr, Generation(0));
            a.replied();
        }
    }

    fn attr(&self) -> impl FnOnce(ReplyAttr, Attributes) + Send + 'static {
        let (uid, gid) = (self.uid, self.gid);
        move |r: ReplyAttr, a: Attributes| {
            r.attr(&a.ttl, &attr_of(uid, gid, a.ino, &a.attr));
            a.replied();
        }
    }
}

fn attr_of(uid: u32, gid: u32, ino: u64, attr: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: attr.size,
        blocks: attr.size.div_ceil(512),
        atime: attr.mtime,
        mtime: attr.mtime,
        ctime: attr.ctime,
        crtime: attr.mtime,
        kind: file_type(attr.kind),
        perm: attr.perm,
        nlink: if attr.kind == FileKind::Dir { 2 } else { 1 },
        uid,
        gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn ok_empty(r: ReplyEmpty, (): ()) {
    r.ok()
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Each one the kernel offers (see `platform::INIT_CAPABILITIES`).
        for &flag in platform::INIT_CAPABILITIES {
            let _ = config.add_capabilities(flag);
        }
        self.no_opendir = platform::SKIP_OPENDIR
            && config
                .capabilities()
                .contains(fuser::InitFlags::FUSE_NO_OPENDIR_SUPPORT);
        self.no_open = self.fs.without_open(
            config
                .capabilities()
                .contains(fuser::InitFlags::FUSE_NO_OPEN_SUPPORT),
        );
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.arrived(FuseOp::Lookup);
        let work = self.fs.clone().lookup(parent.0, name.into(), req.uid());
        self.run(reply, work, self.entry());
    }

    /// fuser's batch_forget comes here once per inode.
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.arrived(FuseOp::Forget);
        self.fs.forget_inode(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.arrived(FuseOp::Getattr);
        let work = self.fs.clone().getattr(ino.0, fh.map(|f| f.0), req.uid());
        self.run(reply, work, self.attr());
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.arrived(FuseOp::Setattr);
        let mode = mode.map(|m| (m & 0o7777) as u16);
        let work =
            self.fs
                .clone()
                .setattr(ino.0, fh.map(|f| f.0), req.uid(), mode, size, time(mtime));
        self.run(reply, work, self.attr());
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.arrived(FuseOp::Readlink);
        let work = self.fs.clone().readlink(ino.0);
        self.run(reply, work, |r: ReplyData, target: String| {
            r.data(target.as_bytes())
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.arrived(FuseOp::Mkdir);
        let work = self.fs.clone().mkdir(parent.0, name.into(), req.uid());
        self.run(reply, work, self.entry());
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.arrived(FuseOp::Unlink);
        let work = self.fs.clone().unlink(parent.0, name.into(), req.uid());
        self.run(reply, work, ok_empty);
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.arrived(FuseOp::Rmdir);
        let work = self.fs.clone().rmdir(parent.0, name.into(), req.uid());
        self.run(reply, work, ok_empty);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        self.arrived(FuseOp::Symlink);
        let target = target.to_string_lossy().into_owned();
        let work = self
            .fs
            .clone()
            .symlink(parent.0, link_name.into(), target, req.uid());
        self.run(reply, work, self.entry());
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.arrived(FuseOp::Rename);
        let work = self.fs.clone().rename(
            parent.0,
            name.into(),
            newparent.0,
            newname.into(),
            req.uid(),
        );
        self.run(reply, work, ok_empty);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        self.arrived(FuseOp::Create);
        let perm = (mode & !umask & 0o7777) as u16;
        let work = self
            .fs
            .clone()
            .create(parent.0, name.into(), perm, req.uid());
        let (uid, gid) = (self.uid, self.gid);
        self.run(reply, work, move |r: ReplyCreate, c| {
            let e = &c.entry;
            let fattr = attr_of(uid, gid, e.ino, &e.attr);
            let (fh, flags) = (FileHandle(c.opened.fh), open_flags(c.opened.mode));
            r.created(&e.ttl, &fattr, Generation(0), fh, flags);
            c.entry.replied();
        });
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.arrived(FuseOp::Open);
        if self.no_open {
            // Once told, the kernel opens files without asking, and sends no
            // release (see `Fs::without_open`).
            return reply.error(Errno::ENOSYS);
        }
        let write = !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY);
        let truncate = flags.0 & libc::O_TRUNC != 0;
        let work = self.fs.clone().open(ino.0, write, truncate, req.uid());
        self.run(reply, work, |r: ReplyOpen, o| {
            r.opened(FileHandle(o.fh), open_flags(o.mode))
        });
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.arrived(FuseOp::Read);
        if fh.0 == NO_HANDLE {
            let work = self
                .fs
                .clone()
                .read_unopened(ino.0, offset, size, req.uid());
            return self.run(reply, work, |r: ReplyData, data: Vec<u8>| r.data(&data));
        }
        match self.fs.read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => fail(&self.fs, e, reply),
        }
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.arrived(FuseOp::Write);
        match self.fs.write(ino.0, fh.0, offset, data, req.uid()) {
            Ok(Written::Bytes(n)) => reply.written(n),
            // Answered once the refresh is done.
            Ok(Written::Refresh(n)) => {
                let fs = self.fs.clone();
                self.rt.spawn(async move {
                    fs.refresh().await;
                    reply.written(n);
                });
            }
            // Answered once STS has answered.
            Ok(Written::Mfa(n, code)) => {
                let fs = self.fs.clone();
                self.rt.spawn(async move {
                    match fs.clone().start_mfa_session(code).await {
                        Ok(()) => reply.written(n),
                        Err(e) => fail(&fs, e, reply),
                    }
                });
            }
            Err(e) => fail(&self.fs, e, reply),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.arrived(FuseOp::Flush);
        if self.no_open {
            // Nothing to commit; once told, the kernel stops sending flush.
            return reply.error(Errno::ENOSYS);
        }
        let work = self.fs.clone().commit("flush", fh.0);
        self.run(reply, work, ok_empty);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.arrived(FuseOp::Release);
        self.fs.release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.arrived(FuseOp::Fsync);
        let work = self.fs.clone().commit("fsync", fh.0);
        self.run(reply, work, ok_empty);
    }

    // What the tree cannot hold is refused here without fuser's default
    // warning in the log: a hard link, a device or fifo, preallocation, and
    // extended attributes (IAM has none; how that is said depends on the
    // kernel, see `platform::Xattrs`).

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    /// Regular files come through `create`; this is only asked for the rest.
    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EOPNOTSUPP);
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(platform::XATTRS.get());
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        match platform::XATTRS.list() {
            // The empty list: its size when asked for it, else no names.
            Ok(()) if size == 0 => reply.size(0),
            Ok(()) => reply.data(&[]),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        match platform::XATTRS.set(flags) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(platform::XATTRS.remove());
    }

    /// No file here is a terminal or takes ioctls; said quietly, because
    /// Python's open() asks (TCGETS) every time.
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(Errno::ENOTTY);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.arrived(FuseOp::Opendir);
        if self.no_opendir {
            // Once told, the kernel stops sending opendir and releasedir, and
            // keeps the listings it reads (see `listing_date`).
            return reply.error(Errno::ENOSYS);
        }
        match self.fs.is_dir(ino.0) {
            Ok(false) => reply.error(Errno::ENOTDIR),
            Ok(true) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => fail(&self.fs, e, reply),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.arrived(FuseOp::Readdir);
        let fs = self.fs.clone();
        let work = self.fs.clone().readdir(ino.0, offset);
        self.run(reply, work, move |mut r: ReplyDirectory, page| {
            fs.fill_dir(page, |ino, next, kind, name| {
                r.add(INodeNo(ino), next, file_type(kind), name)
            });
            r.ok();
        });
    }

    /// Linux (FUSE_DO_READDIRPLUS, adaptive) asks this for the first
    /// listing of a folder: entries with their attributes, so a walk or an
    /// `ls -l` sends no lookup per name.
    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        self.arrived(FuseOp::Readdirplus);
        let fs = self.fs.clone();
        let (uid, gid) = (self.uid, self.gid);
        let work = self.fs.clone().readdirplus(ino.0, offset, req.uid());
        self.run(reply, work, move |mut r: ReplyDirectoryPlus, page| {
            let sent = fs.fill_dir_plus(page, |ino, next, name, ttl, attr| {
                r.add(
                    INodeNo(ino),
                    next,
                    name,
                    &ttl,
                    &attr_of(uid, gid, ino, attr),
                    Generation(0),
                )
            });
            r.ok();
            sent.replied();
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.arrived(FuseOp::Releasedir);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.arrived(FuseOp::Fsyncdir);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.arrived(FuseOp::Statfs);
        let s = self.fs.statfs();
        reply.statfs(
            s.blocks,
            s.free,
            s.free,
            s.files,
            s.files,
            s.block_size,
            s.name_max,
            s.block_size,
        );
    }
}
