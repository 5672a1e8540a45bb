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
use crate::kernel::{Inodes, ReadMode, ROOT_INO};
use crate::namespace::{Attr, Caller, Content, Created, DraftRef, Namespace};
use crate::node::{ControlFile, FileKind, Node, Owner};
use crate::requests::FuseOp;

/// Longest name a folder takes, as statfs says (NAME_MAX).
const NAME_MAX: usize = 255;
/// Longest a save's open waits for reads through the page cache to end.
const WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// How often rm's waiting deletes are looked at.
const PENDING_DELETE_TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// A request whose reply carries an inode's attributes, from its arrival
/// to its reply (see `Inodes::attributes_asked`); dropped unanswered, it
/// leaves the size unknown.
struct AttrFlight {
    inner: Arc<Inner>,
    /// The inode the request is for, when the kernel may already hold it.
    ino: Option<u64>,
    done: bool,
}

impl AttrFlight {
    fn begin(inner: &Arc<Inner>, ino: Option<u64>) -> Self {
        if let Some(ino) = ino {
            inner.inodes.lock().attributes_asked(ino);
        }
        Self {
            inner: inner.clone(),
            ino,
            done: false,
        }
    }

    /// The reply for `ino` with this size went to the kernel.
    fn sent(mut self, ino: u64, size: u64) {
        self.done = true;
        let mut inodes = self.inner.inodes.lock();
        match self.ino {
            Some(asked) if asked == ino => inodes.attributes_sent(ino, Some(size)),
            Some(asked) => {
                // The name turned out to be another inode than expected.
                inodes.attributes_sent(asked, None);
                inodes.attributes_asked(ino);
                inodes.attributes_sent(ino, None);
            }
            None => inodes.size_sent(ino, size),
        }
    }
}

impl Drop for AttrFlight {
    fn drop(&mut self) {
        if let (false, Some(ino)) = (self.done, self.ino) {
            self.inner.inodes.lock().attributes_sent(ino, None);
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
    /// A snapshot taken at open: every read of this handle sees the same
    /// bytes. `cached`: read through the kernel's page cache.
    Read {
        content: Content,
        ino: u64,
        cached: bool,
    },
    /// A document open for writing; committed on flush and fsync.
    Draft(Node, DraftRef, u64),
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
    /// Inode numbers, and what the kernel may hold of each.
    inodes: Mutex<Inodes>,
    handles: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
    uid: u32,
    gid: u32,
    notifier: Arc<std::sync::OnceLock<fuser::Notifier>>,
    /// Keys the content fingerprints (which let the kernel keep pages
    /// across opens), so that nobody who can write a policy can make
    /// new content collide with what the kernel holds.
    fingerprint_keys: RandomState,
    /// Told when a reader through the page cache closes (writers wait).
    cached_reader_closed: tokio::sync::Notify,
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
                fingerprint_keys: RandomState::new(),
                cached_reader_closed: tokio::sync::Notify::new(),
                listings: Mutex::default(),
            }),
            no_opendir: false,
            busy_poll: Arc::default(),
            rt,
        }
    }

    /// Deletes in IAM what rm removed once its grace has passed (see
    /// `UNLINK_GRACE`), and lets the kernel know.
    pub fn start_pending_deletes(&self) {
        let inner = self.inner.clone();
        self.rt.spawn(async move {
            loop {
                tokio::time::sleep(PENDING_DELETE_TICK).await;
                if !inner.ns.has_pending_deletes() {
                    continue;
                }
                let settled = inner
                    .ns
                    .settle_pending_deletes(std::time::Instant::now())
                    .await;
                let refs: Vec<&Node> = settled.iter().collect();
                let mut held = inner.held_related(&refs);
                for node in &settled {
                    if let Some((parent, name)) = node.parent_and_name() {
                        held.extend(inner.held_at(&parent, &name, None));
                    }
                }
                inner.forget(held);
            }
        });
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
            .node(ino.0)
            .cloned()
            .ok_or(Errno::ENOENT)
    }

    /// The folder and the name an operation makes or changes: a name no
    /// folder here can hold is refused with a message (and logged).
    fn parent_and_new_name(
        &self,
        op: &'static str,
        parent: INodeNo,
        name: &OsStr,
    ) -> Result<(Node, String), Errno> {
        let parent = self.node(parent)?;
        new_name(&parent, name).map_err(|(path, err)| self.inner.refuse(op, &path, false, err))
    }

    /// Whether the request comes from the user who mounted.
    fn caller(&self, req: &Request) -> Caller {
        if req.uid() == self.inner.uid {
            Caller::Owner
        } else {
            Caller::Other
        }
    }

    /// Only the user who mounted changes IAM through the mount: with
    /// `--allow-other`, another user (root included) may read, never write.
    fn check_owner(
        &self,
        req: &Request,
        op: &'static str,
        what: impl FnOnce() -> String,
    ) -> Result<(), Errno> {
        if self.caller(req) == Caller::Owner {
            return Ok(());
        }
        let path = what();
        let err = IamError::new(
            ErrorKind::AccessDenied,
            "NotTheMounter",
            format!(
                "{path}: uid {} may read this mount, but only uid {} (who mounted it) may change IAM through it",
                req.uid(),
                self.inner.uid
            ),
        );
        Err(self.inner.refuse(op, &path, true, err))
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
            Some(Handle::Draft(node, draft, _)) => Some((node.clone(), draft.clone())),
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
    /// The entry of a node just made (mkdir, symlink).
    async fn entry_reply(
        self: Arc<Self>,
        node: Node,
    ) -> Result<Box<dyn FnOnce(ReplyEntry) + Send>, IamError> {
        let (attr, ttl) = self.ns.attr_with_lifetime(&node).await?;
        let flight = AttrFlight::begin(&self, None);
        Ok(self.entry_sender(&node, attr, ttl, flight))
    }

    /// An entry reply: one more lookup of the node, and the size the kernel
    /// then holds.
    fn entry_sender(
        self: Arc<Self>,
        node: &Node,
        attr: Attr,
        ttl: std::time::Duration,
        flight: AttrFlight,
    ) -> Box<dyn FnOnce(ReplyEntry) + Send> {
        let ino = self.inodes.lock().looked_up(node);
        let fattr = self.file_attr(ino, &attr);
        Box::new(move |r: ReplyEntry| {
            r.entry(&ttl, &fattr, Generation(0));
            flight.sent(ino, attr.size);
        })
    }

    /// An error the adapter itself answers (a name, a size, a caller):
    /// logged and recorded as IAM's are.
    fn refuse(&self, op: &str, path: &str, is_file: bool, err: IamError) -> Errno {
        let code = errno(err.kind, is_file);
        self.ns.errors.record_errno(path, op, code, &err);
        code
    }

    /// What the kernel holds of `parent/name`: the entry, the folder's
    /// listing, and `node`'s attributes and pages.
    fn held_at(&self, parent: &Node, name: &str, node: Option<&Node>) -> Vec<Held> {
        let inodes = self.inodes.lock();
        let mut held = Vec::new();
        if let Some(p) = inodes.get(parent) {
            held.push(Held::Entry(p, name.to_string()));
            held.push(Held::Inode(p));
        }
        if let Some(i) = node.and_then(|n| inodes.get(n)) {
            held.push(Held::Inode(i));
        }
        held
    }

    /// What the kernel holds of every known node `select` picks: its entry,
    /// attributes and pages.
    fn held_of(&self, select: impl Fn(&Node) -> bool) -> Vec<Held> {
        let inodes = self.inodes.lock();
        let mut held = Vec::new();
        for (ino, node) in inodes.all().filter(|(_, n)| select(n)) {
            if let Some((parent, name)) = node.parent_and_name() {
                if let Some(p) = inodes.get(&parent) {
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
        {
            let mut inodes = self.inodes.lock();
            for h in &held {
                if let Held::Inode(ino) = h {
                    inodes.invalidated(*ino);
                }
            }
        }
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
            self.ns.errors.record_errno(path, op, code, &err);
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
            ctime: attr.ctime,
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

    /// A writer's open waits, up to WRITER_WAIT, until nobody reads the
    /// file through the page cache: the kernel gives a writer's O_TRUNC and
    /// longer writes to the inode's size, which would cut or pad their reads.
    async fn wait_for_cached_readers(&self, ino: u64) {
        let deadline = tokio::time::Instant::now() + WRITER_WAIT;
        loop {
            let closed = self.cached_reader_closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.inodes.lock().cached_readers(ino) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, closed).await.is_err() {
                tracing::debug!(ino, "a reader keeps the file open; writing beside it");
                return;
            }
        }
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

/// A name looked up: one no folder here can hold is simply absent.
fn name_str(name: &OsStr) -> Result<&str, Errno> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    name.to_str().ok_or(Errno::ENOENT)
}

/// A name to be made: within NAME_MAX bytes and UTF-8 (IAM names are
/// text). On error, the path to report and why.
fn new_name(parent: &Node, name: &OsStr) -> Result<(Node, String), (String, IamError)> {
    let shown = || child_path(parent, &name.to_string_lossy());
    if name.len() > NAME_MAX {
        return Err((
            shown(),
            IamError::new(
                ErrorKind::NameTooLong,
                "NameTooLong",
                format!(
                    "a name here has at most {NAME_MAX} bytes; this one has {}",
                    name.len()
                ),
            ),
        ));
    }
    match name.to_str() {
        Some(n) => Ok((parent.clone(), n.to_string())),
        None => Err((
            shown(),
            IamError::new(
                ErrorKind::InvalidInput,
                "InvalidName",
                "the name is not valid UTF-8; IAM names and this mount's files are text",
            ),
        )),
    }
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

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.arrived(FuseOp::Lookup);
        let (parent, name) = match (self.node(parent), name_str(name)) {
            (Ok(p), Ok(n)) => (p, n.to_string()),
            (Ok(p), Err(Errno::ENAMETOOLONG)) => {
                let err = new_name(&p, name).expect_err("too long");
                return reply.error(self.inner.refuse("lookup", &err.0, true, err.1));
            }
            (Err(e), _) | (_, Err(e)) => return reply.error(e),
        };
        let caller = self.caller(req);
        let known = parent
            .child(&name)
            .and_then(|n| self.inner.inodes.lock().get(&n));
        let flight = AttrFlight::begin(&self.inner, known);
        self.spawn_at(
            "lookup",
            named(child_path(&parent, &name)),
            true,
            parent,
            reply,
            move |inner, parent| async move {
                let (node, attr, ttl) = inner
                    .ns
                    .lookup_with_lifetime(&parent, &name, caller)
                    .await?;
                Ok(inner.entry_sender(&node, attr, ttl, flight))
            },
        );
    }

    /// fuser's batch_forget comes here once per inode.
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.arrived(FuseOp::Forget);
        self.inner.inodes.lock().forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.arrived(FuseOp::Getattr);
        let node = match self.node(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        // Asked through an open file, the size is that open's: a reader's
        // snapshot, a writer's draft.
        let open_size = fh.and_then(|fh| match self.inner.handles.lock().get(&fh.0) {
            Some(Handle::Read { content, .. }) => Some(content.len() as u64),
            Some(Handle::Draft(_, d, _)) => Some(d.lock().data.len() as u64),
            _ => None,
        });
        let caller = self.caller(req);
        let flight = AttrFlight::begin(&self.inner, Some(ino.0));
        self.spawn("getattr", node, reply, move |inner, node| async move {
            let (mut attr, mut ttl) = inner.ns.attr_with_lifetime_for(&node, caller).await?;
            if let Some(size) = open_size.filter(|s| *s != attr.size) {
                attr.size = size;
                ttl = std::time::Duration::ZERO;
            }
            let fattr = inner.file_attr(ino.0, &attr);
            Ok(Box::new(move |r: ReplyAttr| {
                r.attr(&ttl, &fattr);
                flight.sent(ino.0, attr.size);
            }) as Box<dyn FnOnce(ReplyAttr) + Send>)
        });
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
        let node = match self.node(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        if let Err(e) = self.check_owner(req, "setattr", || node.path()) {
            return reply.error(e);
        }
        let draft = fh.and_then(|fh| match self.inner.handles.lock().get(&fh.0) {
            Some(Handle::Draft(_, d, _)) => Some(d.clone()),
            _ => None,
        });
        let flight = AttrFlight::begin(&self.inner, Some(ino.0));
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
                _ => match (size, &draft) {
                    // On the way to a rewrite: never committed by itself.
                    (Some(size), Some(d)) => {
                        Namespace::draft_truncate(&node, d, size)?;
                        inner.inodes.lock().written(ino.0);
                    }
                    (Some(size), None) => ns.truncate_closed(&node, size).await?,
                    // chmod, chown and utimes of documents (rsync -a, cp -p,
                    // vim) are accepted and change nothing: IAM has no such thing.
                    (None, _) => {}
                },
            }
            let (mut attr, mut ttl) = ns.attr_with_lifetime(&node).await?;
            if let Some(d) = &draft {
                attr.size = d.lock().data.len() as u64;
                ttl = std::time::Duration::ZERO;
            }
            let fattr = inner.file_attr(ino.0, &attr);
            Ok(Box::new(move |r: ReplyAttr| {
                r.attr(&ttl, &fattr);
                // A writer's size is its draft's, not what others read.
                if draft.is_none() {
                    flight.sent(ino.0, attr.size);
                }
            }) as Box<dyn FnOnce(ReplyAttr) + Send>)
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
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.arrived(FuseOp::Mkdir);
        let (parent, name) = match self.parent_and_new_name("mkdir", parent, name) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let path = child_path(&parent, &name);
        if let Err(e) = self.check_owner(req, "mkdir", || path.clone()) {
            return reply.error(e);
        }
        self.spawn_at(
            "mkdir",
            named(path),
            false,
            parent,
            reply,
            |inner, parent| async move {
                let node = inner.ns.mkdir(&parent, &name).await?;
                inner.entry_reply(node).await
            },
        );
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.arrived(FuseOp::Unlink);
        let (parent, name) = match self.node(parent).and_then(|p| Ok((p, name_str(name)?))) {
            Ok((p, n)) => (p, n.to_string()),
            Err(e) => return reply.error(e),
        };
        let path = child_path(&parent, &name);
        if let Err(e) = self.check_owner(req, "unlink", || path.clone()) {
            return reply.error(e);
        }
        self.spawn_at(
            "unlink",
            named(path),
            true,
            parent,
            reply,
            |inner, parent| async move {
                let node = inner.ns.unlink(&parent, &name).await?;
                let mut held = inner.held_at(&parent, &name, Some(&node));
                held.extend(inner.held_related(&[&node]));
                inner.forget(held);
                inner.inodes.lock().removed(&node);
                Ok(Box::new(|r: ReplyEmpty| r.ok()) as Box<dyn FnOnce(ReplyEmpty) + Send>)
            },
        );
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.arrived(FuseOp::Rmdir);
        let (parent, name) = match self.node(parent).and_then(|p| Ok((p, name_str(name)?))) {
            Ok((p, n)) => (p, n.to_string()),
            Err(e) => return reply.error(e),
        };
        let path = child_path(&parent, &name);
        if let Err(e) = self.check_owner(req, "rmdir", || path.clone()) {
            return reply.error(e);
        }
        self.spawn_at(
            "rmdir",
            named(path),
            false,
            parent,
            reply,
            |inner, parent| async move {
                inner.ns.rmdir(&parent, &name).await?;
                let mut held = inner.held_at(&parent, &name, None);
                if let Some(gone) = parent.child(&name) {
                    held.extend(inner.held_related(&[&gone]));
                    inner.forget(held);
                    inner.inodes.lock().removed(&gone);
                } else {
                    inner.forget(held);
                }
                Ok(Box::new(|r: ReplyEmpty| r.ok()) as Box<dyn FnOnce(ReplyEmpty) + Send>)
            },
        );
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
        let (parent, name) = match self.parent_and_new_name("symlink", parent, link_name) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let path = child_path(&parent, &name);
        if let Err(e) = self.check_owner(req, "symlink", || path.clone()) {
            return reply.error(e);
        }
        let target = target.to_string_lossy().into_owned();
        self.spawn_at(
            "symlink",
            named(path),
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
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.arrived(FuseOp::Rename);
        let from = self
            .node(parent)
            .and_then(|p| Ok((p, name_str(name)?.to_string())));
        let ((parent, name), (new_parent, new_name)) =
            match (from, self.parent_and_new_name("rename", newparent, newname)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => return reply.error(e),
            };
        let path = format!(
            "{} -> {}",
            child_path(&parent, &name),
            child_path(&new_parent, &new_name)
        );
        if let Err(e) = self.check_owner(req, "rename", || path.clone()) {
            return reply.error(e);
        }
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
                let mut held = inner.held_at(&parent, &name, None);
                held.extend(inner.held_at(&new_parent, &new_name, Some(&moved)));
                held.extend(inner.held_related(&[&from, &moved]));
                inner.inodes.lock().rename(&from, &moved);
                inner.forget(held);
                Ok(Box::new(|r: ReplyEmpty| r.ok()) as Box<dyn FnOnce(ReplyEmpty) + Send>)
            },
        );
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
        let (parent, name) = match self.parent_and_new_name("create", parent, name) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let path = child_path(&parent, &name);
        if let Err(e) = self.check_owner(req, "create", || path.clone()) {
            return reply.error(e);
        }
        let perm = (mode & !umask & 0o7777) as u16;
        self.spawn_at(
            "create",
            named(path),
            true,
            parent,
            reply,
            move |inner, parent| async move {
                let created = inner.ns.create(&parent, &name, perm).await?;
                let node = match &created {
                    Created::Document(node, _) | Created::Scratch(node) => node.clone(),
                };
                let (attr, ttl) = inner.ns.attr_with_lifetime(&node).await?;
                let ino = inner.inodes.lock().looked_up(&node);
                let fattr = inner.file_attr(ino, &attr);
                let (handle, flags) = match created {
                    Created::Document(node, draft) => {
                        inner.inodes.lock().open_write(ino);
                        (Handle::Draft(node, draft, ino), FopenFlags::FOPEN_DIRECT_IO)
                    }
                    Created::Scratch(node) => (Handle::Scratch(node), FopenFlags::empty()),
                };
                let fh = inner.add_handle(handle);
                Ok(
                    Box::new(move |r: ReplyCreate| {
                        r.created(&ttl, &fattr, Generation(0), fh, flags)
                    }) as Box<dyn FnOnce(ReplyCreate) + Send>,
                )
            },
        );
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.arrived(FuseOp::Open);
        let node = match self.node(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let truncate = flags.0 & libc::O_TRUNC != 0;
        let writing = wants_write(flags);
        if writing || matches!(node, Node::Credentials(_) | Node::Env(_)) {
            // Another user never causes an IAM write or an AssumeRole.
            if let Err(e) = self.check_owner(req, "open", || node.path()) {
                return reply.error(e);
            }
        }
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
        if writing {
            return self.spawn("open", node, reply, move |inner, node| async move {
                inner.inodes.lock().open_write(ino.0);
                inner.wait_for_cached_readers(ino.0).await;
                let draft = match inner.ns.open_document(&node, truncate).await {
                    Ok(d) => d,
                    Err(e) => {
                        inner.inodes.lock().close_write(ino.0);
                        return Err(e);
                    }
                };
                if truncate {
                    inner.inodes.lock().written(ino.0);
                }
                let fh = inner.add_handle(Handle::Draft(node, draft, ino.0));
                // Its writes never reach the pages other opens read.
                Ok(
                    Box::new(move |r: ReplyOpen| r.opened(fh, FopenFlags::FOPEN_DIRECT_IO))
                        as Box<dyn FnOnce(ReplyOpen) + Send>,
                )
            });
        }
        self.spawn("open", node, reply, move |inner, node| async move {
            let content = inner.ns.read(&node).await?;
            let mode = if node.is_volatile() {
                ReadMode::Direct { invalidate: false }
            } else {
                let fingerprint = inner.fingerprint_keys.hash_one(&*content);
                inner
                    .inodes
                    .lock()
                    .open_read(ino.0, content.len() as u64, fingerprint)
            };
            // Nothing to commit on close of a read-only open.
            let flags = FopenFlags::FOPEN_NOFLUSH
                | match mode {
                    ReadMode::Cached { keep: true } => FopenFlags::FOPEN_KEEP_CACHE,
                    ReadMode::Cached { keep: false } => FopenFlags::empty(),
                    ReadMode::Direct { invalidate } => {
                        if invalidate {
                            inner.forget(vec![Held::Inode(ino.0)]);
                        }
                        FopenFlags::FOPEN_DIRECT_IO
                    }
                };
            let cached = matches!(mode, ReadMode::Cached { .. });
            tracing::trace!(ino = ino.0, len = content.len(), ?mode, "open for reading");
            let fh = inner.add_handle(Handle::Read {
                content,
                ino: ino.0,
                cached,
            });
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
        // Offsets and sizes are the kernel's: bounded by the content here.
        let slice = |content: &[u8]| {
            let start = offset.min(content.len() as u64) as usize;
            let end = start.saturating_add(size as usize).min(content.len());
            content[start..end].to_vec()
        };
        let data = match self.inner.handles.lock().get(&fh.0) {
            Some(Handle::Read { content, .. }) => Ok(slice(content)),
            Some(Handle::Draft(_, draft, _)) => Ok(slice(&draft.lock().data)),
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
        // None: a write to .iamfs/refresh, answered once the refresh is done.
        let written = match self.inner.handles.lock().get(&fh.0) {
            Some(Handle::Draft(node, draft, _)) => {
                let done = Namespace::draft_write(node, draft, offset, data);
                if done.is_ok() {
                    self.inner.inodes.lock().written(ino.0);
                }
                Some(done.map_err(|e| (node.path(), e)))
            }
            Some(Handle::Scratch(node)) => Some(
                self.inner
                    .ns
                    .scratch_write(node, offset, data)
                    .map_err(|e| (node.path(), e)),
            ),
            Some(Handle::Refresh) => None,
            _ => return reply.error(Errno::EBADF),
        };
        match written {
            None => match self.check_owner(req, "write", || ".iamfs/refresh".into()) {
                Ok(()) => self.refresh(data.len() as u32, reply),
                Err(e) => reply.error(e),
            },
            Some(Ok(())) => reply.written(data.len() as u32),
            Some(Err((path, err))) => self.inner.fail("write", &path, true, err, reply),
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
        match self.inner.handles.lock().remove(&fh.0) {
            Some(Handle::Draft(node, draft, ino)) => {
                self.inner.ns.release_draft(&node, &draft);
                self.inner.inodes.lock().close_write(ino);
            }
            Some(Handle::Read {
                ino, cached: true, ..
            }) => {
                self.inner.inodes.lock().close_cached_read(ino);
                self.inner.cached_reader_closed.notify_waiters();
            }
            _ => {}
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
                    ("..", ROOT_INO, FileType::Directory),
                ];
                let total = dots.len() + children.len();
                let mut done = true;
                let mut inodes = inner.inodes.lock();
                for i in (offset as usize).min(total)..total {
                    let next = (i + 1) as u64;
                    let full = match dots.get(i) {
                        Some(&(name, ino, kind)) => r.add(INodeNo(ino), next, kind, name),
                        None => {
                            let (name, node) = &children[i - dots.len()];
                            r.add(
                                INodeNo(inodes.listed(node)),
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
                drop(inodes);
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
        // Editors (vim) check for free space before writing: what is left
        // for their files, the only bytes the mount keeps.
        const BLOCK: u64 = 4096;
        let (used, limit) = self.inner.ns.scratch_space();
        let blocks = limit / BLOCK;
        let free = limit.saturating_sub(used) / BLOCK;
        let files = 1 << 20;
        reply.statfs(
            blocks,
            free,
            free,
            files,
            files,
            BLOCK as u32,
            NAME_MAX as u32,
            BLOCK as u32,
        );
    }
}
