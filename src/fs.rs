//! The FUSE adapter: inodes, handles, replies, and what the kernel may
//! cache. A request's work is polled once where it was read; one that must
//! wait (on IAM, a lock) becomes a task that owns its reply, so one slow call
//! never holds up the others.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Context;
use std::time::SystemTime;

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, IoctlFlags,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;

use crate::busy_poll::BusyPollHandle;
use crate::error::{errno, ErrorKind, IamError};
use crate::namespace::{Attr, Content, Created, DraftRef, Namespace, CHANGING_FILE_LIFETIME};
use crate::node::{ControlFile, FileKind, Node, Owner};
use crate::requests::FuseOp;

struct Inodes {
    by_node: HashMap<Node, u64>,
    by_ino: HashMap<u64, Node>,
    next: u64,
}

impl Inodes {
    fn new() -> Self {
        let mut inodes = Self {
            by_node: HashMap::new(),
            by_ino: HashMap::new(),
            next: 2,
        };
        inodes.by_node.insert(Node::Root, 1);
        inodes.by_ino.insert(1, Node::Root);
        inodes
    }

    /// The inode of a node; a node keeps its number for the life of the mount.
    fn ino(&mut self, node: &Node) -> u64 {
        if let Some(ino) = self.by_node.get(node) {
            return *ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_node.insert(node.clone(), ino);
        self.by_ino.insert(ino, node.clone());
        ino
    }
}

impl Inodes {
    /// A renamed file keeps its inode number, as the kernel expects: the
    /// number now means the node at the new name.
    fn rename(&mut self, from: &Node, to: &Node) {
        if let Some(ino) = self.by_node.remove(from) {
            if let Some(old) = self.by_node.insert(to.clone(), ino) {
                self.by_ino.remove(&old);
            }
            self.by_ino.insert(ino, to.clone());
        }
    }
}

/// A folder's names and what they are.
type Children = Arc<Vec<(String, Node)>>;

/// Something the kernel may hold: a name in a folder, or an inode's
/// attributes and pages (a folder's: its listing).
enum Held {
    Entry(u64, String),
    Inode(u64),
}

/// An open file or directory.
enum Handle {
    /// A snapshot taken at open: every read of this handle sees the same bytes.
    Read(Content),
    /// A document open for writing; committed on flush and fsync.
    Draft(Node, DraftRef),
    /// An editor's file, read and written in place.
    Scratch(Node),
    /// `.iamfs/refresh` opened for writing.
    Refresh,
}

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
    ReplyEmpty,
    ReplyEntry,
    ReplyOpen,
    ReplyWrite,
    ReplyCreate
);

struct Inner {
    ns: Arc<Namespace>,
    inodes: Mutex<Inodes>,
    handles: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
    uid: u32,
    gid: u32,
    notifier: Arc<std::sync::OnceLock<fuser::Notifier>>,
    /// By inode: a fingerprint of the content last handed to the
    /// kernel, whose page cache may still hold it. An open that finds the
    /// same fingerprint lets the kernel keep its pages.
    handed_out: Mutex<HashMap<u64, u64>>,
    /// Keys the fingerprints, so that nobody who can write a policy can make
    /// new content collide with what the kernel holds.
    fingerprint_keys: RandomState,
    /// By directory inode: the listing being read, from its first request to
    /// the one that reaches its end.
    listings: Mutex<HashMap<u64, Children>>,
}

pub struct IamFs {
    inner: Arc<Inner>,
    rt: tokio::runtime::Handle,
    /// The kernel can do without opendir (Linux 5.1 and later).
    no_opendir: bool,
    busy_poll: Arc<std::sync::OnceLock<BusyPollHandle>>,
}

impl IamFs {
    pub fn new(ns: Arc<Namespace>, rt: tokio::runtime::Handle) -> Self {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Self {
            inner: Arc::new(Inner {
                ns,
                inodes: Mutex::new(Inodes::new()),
                handles: Mutex::new(HashMap::new()),
                next_fh: AtomicU64::new(1),
                uid,
                gid,
                notifier: Arc::default(),
                handed_out: Mutex::default(),
                fingerprint_keys: RandomState::new(),
                listings: Mutex::default(),
            }),
            no_opendir: false,
            busy_poll: Arc::default(),
            rt,
        }
    }

    /// Where to put the busy poller once the session's device exists.
    pub fn busy_poll_slot(&self) -> Arc<std::sync::OnceLock<BusyPollHandle>> {
        self.busy_poll.clone()
    }

    /// The start of every request: counted, and it keeps the device polled.
    fn arrived(&self, op: FuseOp) {
        self.inner.ns.requests.record(op);
        if let Some(poll) = self.busy_poll.get() {
            poll.request_arrived();
        }
    }

    /// Where to put the session's notifier once the mount exists.
    pub fn notifier_slot(&self) -> Arc<std::sync::OnceLock<fuser::Notifier>> {
        self.inner.notifier.clone()
    }

    /// Runs `work` as a task; its error, if any, is logged and replied once.
    fn spawn<R, F, Fut>(&self, op: &'static str, node: Node, reply: R, work: F)
    where
        R: ErrorReply + Send + 'static,
        F: FnOnce(Arc<Inner>, Node) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Box<dyn FnOnce(R) + Send>, IamError>> + Send + 'static,
    {
        let is_file = node.file_kind() != FileKind::Dir;
        let named = node.clone();
        self.spawn_at(op, move || named.path(), is_file, node, reply, work);
    }

    /// Like `spawn`, with the path and kind that errors are reported for
    /// (`dir/name` for an operation on a name in a folder).
    fn spawn_at<R, F, Fut>(
        &self,
        op: &'static str,
        path: impl FnOnce() -> String + Send + 'static,
        is_file: bool,
        node: Node,
        reply: R,
        work: F,
    ) where
        R: ErrorReply + Send + 'static,
        F: FnOnce(Arc<Inner>, Node) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Box<dyn FnOnce(R) + Send>, IamError>> + Send + 'static,
    {
        let inner = self.inner.clone();
        let mut task = Box::pin(async move {
            match work(inner.clone(), node).await {
                Ok(send) => send(reply),
                Err(err) => inner.fail(op, &path(), is_file, err, reply),
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

    fn node(&self, ino: INodeNo) -> Result<Node, Errno> {
        self.inner
            .inodes
            .lock()
            .by_ino
            .get(&ino.0)
            .cloned()
            .ok_or(Errno::ENOENT)
    }

    fn parent_and_name(&self, parent: INodeNo, name: &OsStr) -> Result<(Node, String), Errno> {
        Ok((self.node(parent)?, name_str(name)?.to_string()))
    }

    /// `.iamfs/refresh`: drops iamfs's cache and everything the kernel holds,
    /// then answers the write, so the next command sees IAM as it is now.
    fn refresh(&self, written: u32, reply: ReplyWrite) {
        self.inner.ns.refresh();
        tracing::info!("cache dropped through .iamfs/refresh");
        let inner = self.inner.clone();
        self.rt.spawn(async move {
            inner.forget_now(inner.held_of(|_| true)).await;
            reply.written(written);
        });
    }

    /// Commits a draft (flush, fsync); the commit's error is the reply.
    fn commit(&self, op: &'static str, fh: FileHandle, reply: ReplyEmpty) {
        let draft = match self.inner.handles.lock().get(&fh.0) {
            Some(Handle::Draft(node, draft)) => Some((node.clone(), draft.clone())),
            _ => None,
        };
        let Some((node, draft)) = draft else {
            return reply.ok();
        };
        self.spawn(op, node, reply, move |inner, node| async move {
            let result = inner.ns.commit(&node, &draft).await;
            // Before the reply, so that the next `stat`, `cat` or
            // open(O_CREAT) after close() sees what iamfs holds (a truncate
            // that was not committed, a refused new document, a save in a new
            // layout, and every file the save changed).
            let mut held = match node.parent_and_name() {
                Some((parent, name)) => inner.held_at(&parent, &name, Some(&node)),
                None => Vec::new(),
            };
            if result.is_ok() {
                held.extend(inner.held_related(&[&node]));
            }
            inner.forget_now(held).await;
            result?;
            Ok(Box::new(|r: ReplyEmpty| r.ok()) as Box<dyn FnOnce(ReplyEmpty) + Send>)
        });
    }
}

impl Inner {
    async fn entry_reply(
        &self,
        node: Node,
    ) -> Result<Box<dyn FnOnce(ReplyEntry) + Send>, IamError> {
        let (attr, ttl) = self.ns.attr_with_lifetime(&node).await?;
        let fattr = self.file_attr(self.ino(&node), &attr);
        Ok(Box::new(move |r: ReplyEntry| {
            r.entry(&ttl, &fattr, Generation(0))
        }))
    }

    /// Whether the kernel may keep the pages it holds for `ino`: true when
    /// they were made from the same content.
    fn keeps_pages(&self, ino: u64, fingerprint: u64) -> bool {
        self.handed_out.lock().insert(ino, fingerprint) == Some(fingerprint)
    }

    /// The kernel's pages of `ino` now hold what was written through it, not
    /// what iamfs handed out: the next open must not keep them.
    fn pages_written(&self, ino: u64) {
        self.handed_out.lock().remove(&ino);
    }

    /// What the kernel holds of `parent/name`: the entry, the folder's
    /// listing, and `node`'s attributes and pages.
    fn held_at(&self, parent: &Node, name: &str, node: Option<&Node>) -> Vec<Held> {
        let inodes = self.inodes.lock();
        let mut held = Vec::new();
        if let Some(&p) = inodes.by_node.get(parent) {
            held.push(Held::Entry(p, name.to_string()));
            held.push(Held::Inode(p));
        }
        if let Some(&i) = node.and_then(|n| inodes.by_node.get(n)) {
            held.push(Held::Inode(i));
        }
        held
    }

    /// What the kernel holds of every known node `select` picks: its entry,
    /// attributes and pages.
    fn held_of(&self, select: impl Fn(&Node) -> bool) -> Vec<Held> {
        let inodes = self.inodes.lock();
        let mut held = Vec::new();
        for (node, &ino) in inodes.by_node.iter().filter(|(n, _)| select(n)) {
            if let Some((parent, name)) = node.parent_and_name() {
                if let Some(&p) = inodes.by_node.get(&parent) {
                    held.push(Held::Entry(p, name));
                }
            }
            held.push(Held::Inode(ino));
        }
        held
    }

    /// What the kernel holds of every node that belongs to the entities or
    /// policies a change touched: a save of tags.json changes role.json, a
    /// membership shows in both the user and the group.
    fn held_related(&self, changed: &[&Node]) -> Vec<Held> {
        let owners: Vec<Owner> = changed.iter().flat_map(|n| n.owners()).collect();
        self.held_of(|n| n.owners().any(|o| owners.contains(&o)))
    }

    /// Tells the kernel to drop `held`. Runs on the blocking pool, never on a
    /// runtime worker: the kernel may hold a folder's lock while it waits
    /// for a reply that a worker has to send (a concurrent create, or the
    /// rename being answered), so a worker blocked here could deadlock the
    /// mount.
    fn forget(&self, held: Vec<Held>) -> Option<tokio::task::JoinHandle<()>> {
        let notifier = self.notifier.get()?.clone();
        Some(tokio::task::spawn_blocking(move || {
            for h in held {
                let _ = match h {
                    Held::Entry(parent, name) => {
                        notifier.inval_entry(INodeNo(parent), OsStr::new(&name))
                    }
                    Held::Inode(ino) => notifier.inval_inode(INodeNo(ino), 0, 0),
                };
            }
        }))
    }

    /// `forget`, and wait until the kernel has let go.
    async fn forget_now(&self, held: Vec<Held>) {
        if let Some(done) = self.forget(held) {
            let _ = done.await;
        }
    }

    /// The one place an error is logged, recorded and replied.
    fn fail<R: ErrorReply>(&self, op: &str, path: &str, is_file: bool, err: IamError, reply: R) {
        let code = errno(err.kind, is_file);
        if err.kind == ErrorKind::NoSuchEntity {
            // Lookups of absent names are routine (shells, editors probing).
            tracing::debug!(path, op, "{}", err);
        } else {
            self.ns.errors.record(path, op, &err);
        }
        reply.error(code);
    }

    fn file_attr(&self, ino: u64, attr: &Attr) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size: attr.size,
            blocks: attr.size.div_ceil(512),
            atime: attr.mtime,
            mtime: attr.mtime,
            ctime: attr.mtime,
            crtime: attr.mtime,
            kind: file_type(attr.kind),
            perm: attr.perm,
            nlink: if attr.kind == FileKind::Dir { 2 } else { 1 },
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn ino(&self, node: &Node) -> u64 {
        self.inodes.lock().ino(node)
    }

    fn add_handle(&self, handle: Handle) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().insert(fh, handle);
        FileHandle(fh)
    }
}

/// The path errors are reported for, already made.
fn named(path: String) -> impl FnOnce() -> String + Send + 'static {
    move || path
}

fn child_path(dir: &Node, name: &str) -> String {
    match dir {
        Node::Root => name.to_string(),
        _ => format!("{}/{name}", dir.path()),
    }
}

fn name_str(name: &OsStr) -> Result<&str, Errno> {
    name.to_str().ok_or(Errno::ENOENT)
}

fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::Dir => FileType::Directory,
        FileKind::File => FileType::RegularFile,
        FileKind::Symlink => FileType::Symlink,
    }
}

fn wants_write(flags: OpenFlags) -> bool {
    !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY)
}

impl Filesystem for IamFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // O_TRUNC arrives with open, so a truncating open is one request.
        // Link targets are names and never change under a name: the kernel
        // may keep them.
        // With AUTO_INVAL_DATA the kernel checks a folder's mtime before
        // reusing a listing it cached, and a file's mtime and size before
        // reusing its pages, once their attributes expire.
        for flag in [
            fuser::InitFlags::FUSE_ATOMIC_O_TRUNC,
            fuser::InitFlags::FUSE_CACHE_SYMLINKS,
            fuser::InitFlags::FUSE_AUTO_INVAL_DATA,
        ] {
            let _ = config.add_capabilities(flag);
        }
        self.no_opendir = config
            .capabilities()
            .contains(fuser::InitFlags::FUSE_NO_OPENDIR_SUPPORT);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.arrived(FuseOp::Lookup);
        let (parent, name) = match (self.node(parent), name_str(name)) {
            (Ok(p), Ok(n)) => (p, n.to_string()),
            (Err(e), _) | (_, Err(e)) => return reply.error(e),
        };
        self.spawn_at(
            "lookup",
            named(child_path(&parent, &name)),
            true,
            parent,
            reply,
            |inner, parent| async move {
                let (node, attr, ttl) = inner.ns.lookup_with_lifetime(&parent, &name).await?;
                let fattr = inner.file_attr(inner.ino(&node), &attr);
                Ok(
                    Box::new(move |r: ReplyEntry| r.entry(&ttl, &fattr, Generation(0)))
                        as Box<dyn FnOnce(ReplyEntry) + Send>,
                )
            },
        );
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.arrived(FuseOp::Getattr);
        let node = match self.node(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.spawn("getattr", node, reply, move |inner, node| async move {
            let (attr, ttl) = inner.ns.attr_with_lifetime(&node).await?;
            let fattr = inner.file_attr(ino.0, &attr);
            Ok(Box::new(move |r: ReplyAttr| r.attr(&ttl, &fattr))
                as Box<dyn FnOnce(ReplyAttr) + Send>)
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        _req: &Request,
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
        let node = match self.node(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let draft = fh.and_then(|fh| match self.inner.handles.lock().get(&fh.0) {
            Some(Handle::Draft(_, d)) => Some(d.clone()),
            _ => None,
        });
        self.spawn("setattr", node, reply, move |inner, node| async move {
            let ns = &inner.ns;
            match &node {
                Node::Scratch(..) | Node::ScratchLink(..) => {
                    let mtime = mtime.map(|t| match t {
                        TimeOrNow::SpecificTime(t) => t,
                        TimeOrNow::Now => SystemTime::now(),
                    });
                    ns.scratch_set(&node, mode.map(|m| (m & 0o7777) as u16), size, mtime)?;
                }
                // `echo 1 > .iamfs/refresh` truncates first; that changes nothing.
                Node::Control(ControlFile::Refresh) => {}
                _ => {
                    if let Some(size) = size {
                        match &draft {
                            // On the way to a rewrite: never committed by itself.
                            Some(d) => {
                                Namespace::draft_truncate(d, size);
                                inner.pages_written(ino.0);
                            }
                            None => {
                                let current = ns.attr(&node).await?.size;
                                if size != current {
                                    ns.check_writable(&node)?;
                                    return Err(IamError::new(
                                        ErrorKind::InvalidInput,
                                        "Truncate",
                                        format!(
                                            "{}: truncate it through an open file and write the whole document",
                                            node.path()
                                        ),
                                    ));
                                }
                            }
                        }
                    }
                    // chmod, chown and utimes of documents (rsync -a, cp -p,
                    // vim) are accepted and change nothing: IAM has no such thing.
                }
            }
            let (mut attr, mut ttl) = ns.attr_with_lifetime(&node).await?;
            if let Some(d) = &draft {
                attr.size = d.lock().data.len() as u64;
                ttl = ttl.min(CHANGING_FILE_LIFETIME);
            }
            let fattr = inner.file_attr(ino.0, &attr);
            Ok(Box::new(move |r: ReplyAttr| r.attr(&ttl, &fattr))
                as Box<dyn FnOnce(ReplyAttr) + Send>)
        });
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.arrived(FuseOp::Readlink);
        let node = match self.node(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.spawn("readlink", node, reply, |inner, node| async move {
            let target = inner.ns.readlink(&node).await?;
            Ok(Box::new(move |r: ReplyData| r.data(target.as_bytes()))
                as Box<dyn FnOnce(ReplyData) + Send>)
        });
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.arrived(FuseOp::Mkdir);
        let (parent, name) = match self.parent_and_name(parent, name) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        self.spawn_at(
            "mkdir",
            named(child_path(&parent, &name)),
            false,
            parent,
            reply,
            |inner, parent| async move {
                let node = inner.ns.mkdir(&parent, &name).await?;
                inner.entry_reply(node).await
            },
        );
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.arrived(FuseOp::Unlink);
        let (parent, name) = match self.parent_and_name(parent, name) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        self.spawn_at(
            "unlink",
            named(child_path(&parent, &name)),
            true,
            parent,
            reply,
            |inner, parent| async move {
                let node = inner.ns.unlink(&parent, &name).await?;
                let mut held = inner.held_at(&parent, &name, Some(&node));
                held.extend(inner.held_related(&[&node]));
                inner.forget(held);
                Ok(Box::new(|r: ReplyEmpty| r.ok()) as Box<dyn FnOnce(ReplyEmpty) + Send>)
            },
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.arrived(FuseOp::Rmdir);
        let (parent, name) = match self.parent_and_name(parent, name) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        self.spawn_at(
            "rmdir",
            named(child_path(&parent, &name)),
            false,
            parent,
            reply,
            |inner, parent| async move {
                inner.ns.rmdir(&parent, &name).await?;
                let mut held = inner.held_at(&parent, &name, None);
                if let Some(gone) = parent.child(&name) {
                    held.extend(inner.held_related(&[&gone]));
                }
                inner.forget(held);
                Ok(Box::new(|r: ReplyEmpty| r.ok()) as Box<dyn FnOnce(ReplyEmpty) + Send>)
            },
        );
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        self.arrived(FuseOp::Symlink);
        let (parent, name) = match self.parent_and_name(parent, link_name) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let target = target.to_string_lossy().into_owned();
        self.spawn_at(
            "symlink",
            named(child_path(&parent, &name)),
            true,
            parent,
            reply,
            |inner, parent| async move {
                let node = inner.ns.symlink(&parent, &name, &target).await?;
                inner.forget(inner.held_related(&[&node]));
                inner.entry_reply(node).await
            },
        );
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.arrived(FuseOp::Rename);
        let ((parent, name), (new_parent, new_name)) = match (
            self.parent_and_name(parent, name),
            self.parent_and_name(newparent, newname),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return reply.error(e),
        };
        let path = format!(
            "{} -> {}",
            child_path(&parent, &name),
            child_path(&new_parent, &new_name)
        );
        self.spawn_at(
            "rename",
            named(path),
            true,
            parent,
            reply,
            |inner, parent| async move {
                let (from, moved) = inner
                    .ns
                    .rename(&parent, &name, &new_parent, &new_name)
                    .await?;
                inner.inodes.lock().rename(&from, &moved);
                let mut held = inner.held_at(&parent, &name, None);
                held.extend(inner.held_at(&new_parent, &new_name, Some(&moved)));
                held.extend(inner.held_related(&[&from, &moved]));
                inner.forget(held);
                Ok(Box::new(|r: ReplyEmpty| r.ok()) as Box<dyn FnOnce(ReplyEmpty) + Send>)
            },
        );
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        self.arrived(FuseOp::Create);
        let (parent, name) = match self.parent_and_name(parent, name) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let perm = (mode & !umask & 0o7777) as u16;
        self.spawn_at(
            "create",
            named(child_path(&parent, &name)),
            true,
            parent,
            reply,
            move |inner, parent| async move {
                let (node, handle) = match inner.ns.create(&parent, &name, perm).await? {
                    Created::Document(node, draft) => (node.clone(), Handle::Draft(node, draft)),
                    Created::Scratch(node) => (node.clone(), Handle::Scratch(node)),
                };
                let (attr, ttl) = inner.ns.attr_with_lifetime(&node).await?;
                let fattr = inner.file_attr(inner.ino(&node), &attr);
                let fh = inner.add_handle(handle);
                Ok(Box::new(move |r: ReplyCreate| {
                    r.created(&ttl, &fattr, Generation(0), fh, FopenFlags::empty())
                }) as Box<dyn FnOnce(ReplyCreate) + Send>)
            },
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.arrived(FuseOp::Open);
        let node = match self.node(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let truncate = flags.0 & libc::O_TRUNC != 0;
        match &node {
            Node::Control(ControlFile::Refresh) => {
                let fh = self.inner.add_handle(Handle::Refresh);
                return reply.opened(fh, FopenFlags::FOPEN_DIRECT_IO);
            }
            Node::Scratch(..) => {
                if truncate {
                    let _ = self.inner.ns.scratch_set(&node, None, Some(0), None);
                }
                let fh = self.inner.add_handle(Handle::Scratch(node));
                return reply.opened(fh, FopenFlags::empty());
            }
            _ => {}
        }
        if wants_write(flags) {
            return self.spawn("open", node, reply, move |inner, node| async move {
                let draft = inner.ns.open_document(&node, truncate).await?;
                let fh = inner.add_handle(Handle::Draft(node, draft));
                Ok(
                    Box::new(move |r: ReplyOpen| r.opened(fh, FopenFlags::empty()))
                        as Box<dyn FnOnce(ReplyOpen) + Send>,
                )
            });
        }
        self.spawn("open", node, reply, move |inner, node| async move {
            let content = inner.ns.read(&node).await?;
            let flags = if node.is_volatile() {
                FopenFlags::FOPEN_DIRECT_IO
            } else if inner.keeps_pages(ino.0, inner.fingerprint_keys.hash_one(&*content)) {
                // Nothing to commit on close of a read-only open.
                FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_NOFLUSH
            } else {
                FopenFlags::FOPEN_NOFLUSH
            };
            let fh = inner.add_handle(Handle::Read(content));
            Ok(Box::new(move |r: ReplyOpen| r.opened(fh, flags))
                as Box<dyn FnOnce(ReplyOpen) + Send>)
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.arrived(FuseOp::Read);
        let slice = |content: &[u8]| {
            let start = (offset as usize).min(content.len());
            let end = (start + size as usize).min(content.len());
            content[start..end].to_vec()
        };
        let data = match self.inner.handles.lock().get(&fh.0) {
            Some(Handle::Read(content)) => Ok(slice(content)),
            Some(Handle::Draft(_, draft)) => Ok(slice(&draft.lock().data)),
            Some(Handle::Scratch(node)) => self
                .inner
                .ns
                .scratch_read(node)
                .map(|d| slice(&d))
                .map_err(|_| Errno::ENOENT),
            Some(Handle::Refresh) => Ok(Vec::new()),
            _ => Err(Errno::EBADF),
        };
        match data {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
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
        // None: a write to .iamfs/refresh, answered once the refresh is done.
        let written = match self.inner.handles.lock().get(&fh.0) {
            Some(Handle::Draft(_, draft)) => {
                Namespace::draft_write(draft, offset, data);
                self.inner.pages_written(ino.0);
                Some(Ok(()))
            }
            Some(Handle::Scratch(node)) => Some(
                self.inner
                    .ns
                    .scratch_write(node, offset, data)
                    .map_err(|_| Errno::ENOENT),
            ),
            Some(Handle::Refresh) => None,
            _ => Some(Err(Errno::EBADF)),
        };
        match written {
            None => self.refresh(data.len() as u32, reply),
            Some(Ok(())) => reply.written(data.len() as u32),
            Some(Err(e)) => reply.error(e),
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
        self.commit("flush", fh, reply);
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
        if let Some(Handle::Draft(node, draft)) = self.inner.handles.lock().remove(&fh.0) {
            self.inner.ns.release_draft(&node, &draft);
        }
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
        self.commit("fsync", fh, reply);
    }

    // What the tree cannot hold is refused here without fuser's default
    // warning in the log: a hard link, a device or fifo, preallocation, and
    // extended attributes (IAM has none: their ENOSYS tells the kernel once,
    // instead of `ls -l` asking per file; it then answers EOPNOTSUPP itself).

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
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
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
        match self.node(ino) {
            Ok(node) if node.file_kind() != FileKind::Dir => reply.error(Errno::ENOTDIR),
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
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
        let node = match self.node(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        // A listing read in several requests continues where it began.
        let snapshot = match offset {
            0 => None,
            _ => self.inner.listings.lock().get(&ino.0).cloned(),
        };
        self.spawn("readdir", node, reply, move |inner, node| async move {
            let children = match snapshot {
                Some(c) => c,
                None => Arc::new(inner.ns.children(&node).await?),
            };
            Ok(Box::new(move |mut r: ReplyDirectory| {
                let dots = [
                    (".", ino.0, FileType::Directory),
                    ("..", 1, FileType::Directory),
                ];
                let total = dots.len() + children.len();
                let mut done = true;
                for i in offset as usize..total {
                    let next = (i + 1) as u64;
                    let full = match dots.get(i) {
                        Some(&(name, ino, kind)) => r.add(INodeNo(ino), next, kind, name),
                        None => {
                            let (name, node) = &children[i - dots.len()];
                            r.add(
                                INodeNo(inner.ino(node)),
                                next,
                                file_type(node.file_kind()),
                                name,
                            )
                        }
                    };
                    if full {
                        done = false;
                        break;
                    }
                }
                let mut listings = inner.listings.lock();
                if done {
                    listings.remove(&ino.0);
                } else {
                    listings.insert(ino.0, children);
                }
                drop(listings);
                r.ok();
            }) as Box<dyn FnOnce(ReplyDirectory) + Send>)
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
        // Editors (vim) check for free space before writing.
        let blocks = 1 << 20;
        reply.statfs(blocks, blocks, blocks, 1 << 20, 1 << 20, 4096, 255, 4096);
    }
}
