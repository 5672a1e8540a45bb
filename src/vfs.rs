//! The filesystem without FUSE: what each request does to the namespace and
//! to what the kernel holds (inodes, open files, listings being read), and
//! who may do it. Answers are plain values and `FsError`s; the FUSE adapter
//! (`fuse.rs`) only converts arguments, replies and errno. Tested without a
//! mount (`vfs/tests.rs`).

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use crate::error::{ErrorKind, IamError};
use crate::kernel::{self, Detached, Inodes, ReadMode, Snapshot, ROOT_INO};
use crate::namespace::{Attr, Caller, Content, Created, DraftRef, Namespace};
use crate::node::{ControlFile, FileKind, Node, Owner};
use crate::platform;
use crate::session::MfaCode;

/// Longest name a folder takes, as statfs says (NAME_MAX).
pub const NAME_MAX: usize = 255;
/// Longest a save's open waits for reads through the page cache to end.
const WRITER_WAIT: Duration = Duration::from_secs(1);
/// How often rm's waiting deletes are looked at.
const PENDING_DELETE_TICK: Duration = Duration::from_millis(250);
/// statfs's block size.
const BLOCK: u64 = 4096;
/// Without open: how long after a read of `credentials` or `env` the
/// kernel is told to drop the pages that read filled (and iamfs its
/// snapshot), so that no secret stays in the page cache.
pub const SECRET_LINGER: Duration = Duration::from_secs(1);
/// The file handle of reads the kernel makes without an open (see
/// `Fs::without_open`); iamfs's own handles start at 1.
pub const NO_HANDLE: u64 = 0;

/// An operation that failed: IAM's error (or a local one), and the path and
/// kind of file the caller is told about.
#[derive(Debug)]
pub struct FsError {
    pub op: &'static str,
    pub path: String,
    /// Whether the path names a file (DeleteConflict is EBUSY for a file).
    pub is_file: bool,
    pub err: IamError,
}

pub type FsResult<T> = Result<T, FsError>;

/// Tells the kernel to drop what it holds (fuser's Notifier in a mount).
pub trait Invalidate: Send + Sync + 'static {
    fn entry(&self, parent: u64, name: &str);
    fn inode(&self, ino: u64);
    /// Puts `data` in the inode's pages from offset 0 (FUSE_NOTIFY_STORE);
    /// false if the kernel refused.
    fn store(&self, ino: u64, data: &[u8]) -> bool;
}

/// Something the kernel may hold: a name in a folder, or an inode's
/// attributes and pages (a folder's: its listing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    Entry(u64, String),
    Inode(u64),
}

/// A folder's names and what they are.
type Children = Arc<Vec<(String, Node)>>;

/// An open file.
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
    /// `.iamfs/mfa` opened for writing.
    Mfa,
}

/// How the kernel is to serve an open file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenMode {
    /// Every read and write goes to the daemon; no page cache, no size cut.
    pub direct_io: bool,
    /// The kernel's pages hold this very content.
    pub keep_cache: bool,
    /// Nothing to commit on close.
    pub no_flush: bool,
}

#[derive(Debug)]
pub struct Opened {
    pub fh: u64,
    pub mode: OpenMode,
}

/// A node's attributes for the kernel, and how long it may keep them. Call
/// `replied` once the reply is sent.
pub struct Attributes {
    pub ino: u64,
    pub attr: Attr,
    pub ttl: Duration,
    flight: Option<AttrFlight>,
}

impl Attributes {
    pub fn replied(self) {
        if let Some(flight) = self.flight {
            flight.sent(self.ino, self.attr.size);
        }
    }
}

/// A file made by create: its entry, and the open file.
pub struct CreatedFile {
    pub entry: Attributes,
    pub opened: Opened,
}

/// A listing being read, from `offset`.
pub struct DirPage {
    ino: u64,
    offset: u64,
    children: Children,
}

/// A listing being read with attributes (readdirplus), from `offset`:
/// the entries whose attributes were worked out for this reply.
pub struct DirPlusPage {
    page: DirPage,
    entries: Vec<PlusEntry>,
}

/// A listing entry and what its reply tells the kernel of it.
struct PlusEntry {
    node: Node,
    attr: Attr,
    ttl: Duration,
    described: Described,
    flight: AttrFlight,
}

/// Entries a readdirplus reply held: told they went out (`replied`).
pub struct PlusSent(Vec<(AttrFlight, u64, u64)>);

impl PlusSent {
    pub fn replied(self) {
        for (flight, ino, size) in self.0 {
            flight.sent(ino, size);
        }
    }
}

/// The largest file whose pages the first open fills by itself (IAM's
/// documents are far smaller; a credential report may not be).
const PUSHED_PAGES_MAX: usize = 256 * 1024;

/// Readdirplus entries worked out at first, before a reply shows how many
/// fit the kernel's buffer (the kernel does not say its size).
const PLUS_BATCH_FIRST: usize = 32;
const PLUS_BATCH_MAX: usize = 1024;

pub struct StatFs {
    pub blocks: u64,
    pub free: u64,
    pub files: u64,
    pub block_size: u32,
    pub name_max: u32,
}

/// What a write asks of the caller.
pub enum Written {
    Bytes(u32),
    /// A write to `.iamfs/refresh`: run `refresh`, then answer these bytes.
    Refresh(u32),
    /// A code written to `.iamfs/mfa`: run `start_mfa_session`, then
    /// answer these bytes.
    Mfa(u32, MfaCode),
}

/// A request whose reply carries an inode's attributes, from its arrival
/// to its reply (see `Inodes::attributes_asked`); dropped unanswered, it
/// leaves the size unknown.
struct AttrFlight {
    fs: Arc<Fs>,
    /// The inode the request is for, when the kernel may already hold it.
    ino: Option<u64>,
    done: bool,
}

impl AttrFlight {
    fn begin(fs: &Arc<Fs>, ino: Option<u64>) -> Self {
        if let Some(ino) = ino {
            fs.inodes.lock().attributes_asked(ino);
        }
        Self {
            fs: fs.clone(),
            ino,
            done: false,
        }
    }

    /// The reply for `ino` with this size went to the kernel.
    fn sent(mut self, ino: u64, size: u64) {
        self.done = true;
        let mut inodes = self.fs.inodes.lock();
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
            self.fs.inodes.lock().attributes_sent(ino, None);
        }
    }
}

pub struct Fs {
    ns: Arc<Namespace>,
    /// Inode numbers, and what the kernel may hold of each.
    inodes: Mutex<Inodes>,
    handles: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
    /// The user who mounted: the only one who changes IAM.
    owner_uid: u32,
    invalidate: OnceLock<Arc<dyn Invalidate>>,
    /// Keys the content fingerprints (which let the kernel keep pages
    /// across opens), so that nobody who can write a policy can make
    /// new content collide with what the kernel holds.
    fingerprint_keys: RandomState,
    /// Told when a reader through the page cache closes (writers wait).
    cached_reader_closed: tokio::sync::Notify,
    /// By directory inode: the listing being read, from its first request to
    /// the one that reaches its end.
    listings: Mutex<HashMap<u64, Children>>,
    /// The kernel was told that open is not implemented (see `without_open`).
    without_open: AtomicBool,
    /// Secrets whose pages the kernel is to be told to drop (`SECRET_LINGER`).
    secret_drops: Mutex<HashSet<u64>>,
    /// How many readdirplus entries to work out per reply: as many as fit
    /// the last full one.
    plus_batch: AtomicUsize,
}

/// What an attribute reply of a file says of its content, in a mount
/// without open (see `Fs::describe`).
enum Described {
    /// As the namespace gives it (a folder, a link, a mount with open, or
    /// another user's look at a secret nobody read yet).
    AsIs,
    /// The snapshot the kernel already holds.
    Kept(Snapshot),
    /// New content read now.
    Fresh(Content),
}

fn error(op: &'static str, path: String, is_file: bool, err: IamError) -> FsError {
    FsError {
        op,
        path,
        is_file,
        err,
    }
}

/// The path an operation on `node` reports.
fn on<'a>(op: &'static str, node: &'a Node) -> impl FnOnce(IamError) -> FsError + 'a {
    move |err| error(op, node.path(), node.file_kind() != FileKind::Dir, err)
}

fn child_path(dir: &Node, name: &str) -> String {
    match dir {
        Node::Root => name.to_string(),
        _ => format!("{}/{name}", dir.path()),
    }
}

/// Role credentials (`credentials`, `env`): read by the mounter only.
fn is_secret(node: &Node) -> bool {
    matches!(node, Node::Credentials(_) | Node::Env(_))
}

fn bad_handle(op: &'static str) -> FsError {
    error(
        op,
        "?".into(),
        true,
        IamError::new(ErrorKind::BadHandle, "BadHandle", "no such open file"),
    )
}

impl Fs {
    pub fn new(ns: Arc<Namespace>, owner_uid: u32) -> Arc<Self> {
        Arc::new(Self {
            ns,
            inodes: Mutex::new(Inodes::new()),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            owner_uid,
            invalidate: OnceLock::new(),
            fingerprint_keys: RandomState::new(),
            cached_reader_closed: tokio::sync::Notify::new(),
            listings: Mutex::default(),
            without_open: AtomicBool::new(false),
            secret_drops: Mutex::default(),
            plus_batch: AtomicUsize::new(PLUS_BATCH_FIRST),
        })
    }

    /// Whether to tell the kernel that open (of files) and flush are not
    /// implemented, given whether it can do without them
    /// (FUSE_NO_OPEN_SUPPORT): only in a read-only mount, where no open has
    /// anything to commit. The kernel then sends no open, release or flush
    /// and keeps every file's pages across opens, so a warm walk sends
    /// nothing at all; every read comes with handle 0 and is answered from
    /// the snapshot last described to the kernel (see `describe`).
    pub fn without_open(&self, kernel_can: bool) -> bool {
        let on = kernel_can && platform::SKIP_OPEN && self.ns.settings().read_only;
        self.without_open.store(on, Ordering::Relaxed);
        on
    }

    fn is_without_open(&self) -> bool {
        self.without_open.load(Ordering::Relaxed)
    }

    /// Without open, what an attribute reply for `node` (inode `known`, if
    /// the kernel holds one) says of its content. A path walk or a stat
    /// describes the content as it is now; a request from inside a read
    /// (`within_read`: getattr with a file handle, which the kernel sends
    /// before every read(2) when the attributes expired, and at EOF)
    /// describes again the snapshot it is reading, if taken within
    /// READ_SPAN, so that `cat .iamfs/status` never sees two snapshots. A
    /// secret is read for the mounter only: another user is shown the
    /// snapshot the mounter was last given, if any.
    async fn described(
        &self,
        known: Option<u64>,
        node: &Node,
        kind: FileKind,
        caller: Caller,
        within_read: bool,
    ) -> Result<Described, IamError> {
        if !self.is_without_open() || kind != FileKind::File {
            return Ok(Described::AsIs);
        }
        let snapshot = |young: bool| {
            let inodes = self.inodes.lock();
            let ino = known?;
            match young {
                true => inodes.snapshot_within_read(ino, Instant::now()),
                false => inodes.snapshot(ino),
            }
        };
        if caller == Caller::Other && is_secret(node) {
            return Ok(snapshot(false).map_or(Described::AsIs, Described::Kept));
        }
        if within_read {
            if let Some(kept) = snapshot(true) {
                return Ok(Described::Kept(kept));
            }
        }
        Ok(Described::Fresh(self.ns.read(node).await?))
    }

    /// Puts what `described` found into the reply for `ino`: the
    /// snapshot's size, and its fingerprint in the mtime's nanoseconds
    /// (`kernel::marked_mtime`), so that the kernel drops its pages
    /// (FUSE_AUTO_INVAL_DATA) exactly when a reply describes other bytes. A
    /// snapshot described again is kept by the kernel no longer than the
    /// read that asked.
    fn describe(&self, ino: u64, described: Described, attr: &mut Attr, ttl: &mut Duration) {
        let snapshot = match described {
            Described::AsIs => return,
            Described::Kept(s) => {
                *ttl = Duration::ZERO;
                s
            }
            Described::Fresh(content) => {
                let fingerprint = self.fingerprint_keys.hash_one(&*content);
                self.inodes
                    .lock()
                    .take_snapshot(ino, content, fingerprint, Instant::now())
            }
        };
        attr.size = snapshot.content.len() as u64;
        attr.mtime = kernel::marked_mtime(attr.mtime, snapshot.fingerprint);
    }

    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// How to tell the kernel to let go, once the mount exists.
    pub fn set_invalidator(&self, invalidate: Arc<dyn Invalidate>) {
        let _ = self.invalidate.set(invalidate);
    }

    /// Deletes in IAM what rm removed once its grace has passed (see
    /// `UNLINK_GRACE`), and lets the kernel know. Runs until the runtime ends.
    pub fn start_pending_deletes(self: &Arc<Self>, rt: &tokio::runtime::Handle) {
        let fs = self.clone();
        rt.spawn(async move {
            loop {
                tokio::time::sleep(PENDING_DELETE_TICK).await;
                if fs.ns.has_pending_deletes() {
                    fs.settle_pending_deletes(Instant::now()).await;
                }
            }
        });
    }

    /// Carries out the rms whose grace has passed by `now`.
    pub async fn settle_pending_deletes(&self, now: Instant) {
        let settled = self.ns.settle_pending_deletes(now).await;
        let refs: Vec<&Node> = settled.iter().collect();
        let mut held = self.held_related(&refs);
        for node in &settled {
            if let Some((parent, name)) = node.parent_and_name() {
                held.extend(self.held_at(&parent, &name, None));
            }
        }
        self.let_go(held);
    }

    fn node(&self, op: &'static str, ino: u64) -> FsResult<Node> {
        self.inodes.lock().node(ino).cloned().ok_or_else(|| {
            error(
                op,
                format!("inode {ino}"),
                true,
                IamError::no_such_entity(format!("inode {ino}")),
            )
        })
    }

    fn caller(&self, uid: u32) -> Caller {
        if uid == self.owner_uid {
            Caller::Owner
        } else {
            Caller::Other
        }
    }

    /// Only the user who mounted changes IAM through the mount: with
    /// `--allow-other`, another user (root included) may read, never write.
    fn check_owner(
        &self,
        uid: u32,
        op: &'static str,
        path: impl FnOnce() -> String,
    ) -> FsResult<()> {
        if self.caller(uid) == Caller::Owner {
            return Ok(());
        }
        let path = path();
        let message = format!(
            "{path}: uid {uid} may read this mount, but only uid {} (who mounted it) may change IAM through it",
            self.owner_uid
        );
        Err(error(
            op,
            path,
            true,
            IamError::new(ErrorKind::AccessDenied, "NotTheMounter", message),
        ))
    }

    /// A name looked up: one no folder here can hold is simply absent
    /// (too long: ENAMETOOLONG, as everywhere).
    fn looked_up_name(&self, op: &'static str, parent: &Node, name: &OsStr) -> FsResult<String> {
        if name.len() > NAME_MAX {
            return Err(self.name_error(op, parent, name).expect_err("too long"));
        }
        name.to_str().map(str::to_string).ok_or_else(|| {
            error(
                op,
                child_path(parent, &name.to_string_lossy()),
                true,
                IamError::no_such_entity(child_path(parent, &name.to_string_lossy())),
            )
        })
    }

    /// A name to be made: within NAME_MAX bytes and UTF-8 (IAM names are text).
    fn name_error(&self, op: &'static str, parent: &Node, name: &OsStr) -> FsResult<String> {
        let shown = || child_path(parent, &name.to_string_lossy());
        if name.len() > NAME_MAX {
            let message = format!(
                "a name here has at most {NAME_MAX} bytes; this one has {}",
                name.len()
            );
            return Err(error(
                op,
                shown(),
                false,
                IamError::new(ErrorKind::NameTooLong, "NameTooLong", message),
            ));
        }
        match name.to_str() {
            Some(n) => Ok(n.to_string()),
            None => Err(error(
                op,
                shown(),
                false,
                IamError::new(
                    ErrorKind::InvalidInput,
                    "InvalidName",
                    "the name is not valid UTF-8; IAM names and this mount's files are text",
                ),
            )),
        }
    }

    /// The folder and the name a changing operation works on, by the owner.
    fn change_at(
        &self,
        op: &'static str,
        uid: u32,
        parent: u64,
        name: &OsStr,
    ) -> FsResult<(Node, String)> {
        let parent = self.node(op, parent)?;
        let name = self.name_error(op, &parent, name)?;
        self.check_owner(uid, op, || child_path(&parent, &name))?;
        Ok((parent, name))
    }

    /// What the file at `name` is, from the cache only (no IAM call).
    async fn cached_attr(&self, parent: &Node, name: &str) -> Option<Attr> {
        let node = parent.child(name)?;
        crate::cache::cached_only(self.ns.attr(&node)).await.ok()
    }

    /// The bytes the newest open for reading of `ino` holds.
    fn newest_read(&self, ino: u64) -> Option<Content> {
        let handles = self.handles.lock();
        let newest = handles.iter().filter_map(|(fh, h)| match h {
            Handle::Read {
                content, ino: i, ..
            } if *i == ino => Some((*fh, content)),
            _ => None,
        });
        newest.max_by_key(|(fh, _)| *fh).map(|(_, c)| c.clone())
    }

    fn add_handle(&self, handle: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().insert(fh, handle);
        fh
    }

    fn attributes(ino: u64, attr: Attr, ttl: Duration, flight: Option<AttrFlight>) -> Attributes {
        Attributes {
            ino,
            attr,
            // Capped where the kernel's invalidations are not relied on.
            ttl: platform::kernel_ttl(ttl),
            flight,
        }
    }

    /// An entry: one more lookup of `node` for the kernel to forget.
    fn entry(
        self: &Arc<Self>,
        node: &Node,
        attr: Attr,
        ttl: Duration,
        flight: AttrFlight,
    ) -> Attributes {
        let ino = self.inodes.lock().looked_up(node);
        Self::attributes(ino, attr, ttl, Some(flight))
    }

    /// The entry of a node just made (mkdir, symlink).
    async fn new_entry(self: &Arc<Self>, node: Node) -> Result<Attributes, IamError> {
        let (attr, ttl) = self.ns.attr_with_lifetime(&node).await?;
        let flight = AttrFlight::begin(self, None);
        Ok(self.entry(&node, attr, ttl, flight))
    }

    // ---- what the kernel holds ------------------------------------------------

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
    fn let_go(&self, held: Vec<Held>) -> Option<tokio::task::JoinHandle<()>> {
        {
            let mut inodes = self.inodes.lock();
            for h in &held {
                if let Held::Inode(ino) = h {
                    inodes.invalidated(*ino);
                }
            }
        }
        let invalidate = self.invalidate.get()?.clone();
        Some(tokio::task::spawn_blocking(move || {
            for h in held {
                match h {
                    Held::Entry(parent, name) => invalidate.entry(parent, &name),
                    Held::Inode(ino) => invalidate.inode(ino),
                }
            }
        }))
    }

    /// `let_go`, waiting for the kernel except for what is in `busy_dirs`:
    /// the folders the operation being answered changes, which the kernel
    /// keeps locked until it has the answer.
    async fn let_go_around(&self, held: Vec<Held>, busy_dirs: &[u64]) {
        let (now, later): (Vec<Held>, Vec<Held>) = held.into_iter().partition(|h| match h {
            Held::Entry(parent, _) | Held::Inode(parent) => !busy_dirs.contains(parent),
        });
        self.let_go(later);
        self.let_go_now(now).await;
    }

    /// `let_go`, and wait until the kernel has.
    async fn let_go_now(&self, held: Vec<Held>) {
        if let Some(done) = self.let_go(held) {
            let _ = done.await;
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

    // ---- requests -----------------------------------------------------------

    pub async fn lookup(
        self: Arc<Self>,
        parent: u64,
        name: OsString,
        uid: u32,
    ) -> FsResult<Attributes> {
        let op = "lookup";
        let parent = self.node(op, parent)?;
        let name = self.looked_up_name(op, &parent, &name)?;
        let known = parent.child(&name).and_then(|n| self.inodes.lock().get(&n));
        let flight = AttrFlight::begin(&self, known);
        let caller = self.caller(uid);
        let fail = |e| error(op, child_path(&parent, &name), true, e);
        let (node, attr, ttl) = self
            .ns
            .lookup_with_lifetime(&parent, &name, caller)
            .await
            .map_err(fail)?;
        let described = self
            .described(known, &node, attr.kind, caller, false)
            .await
            .map_err(fail)?;
        let mut entry = self.entry(&node, attr, ttl, flight);
        self.describe(entry.ino, described, &mut entry.attr, &mut entry.ttl);
        Ok(entry)
    }

    /// The kernel let go of `n` lookups of `ino`.
    pub fn forget_inode(&self, ino: u64, n: u64) {
        self.inodes.lock().forget(ino, n);
    }

    /// Attributes, asked through an open file (`fh`) or not: through an open
    /// file the size is that open's (a reader's snapshot, a writer's draft).
    pub async fn getattr(
        self: Arc<Self>,
        ino: u64,
        fh: Option<u64>,
        uid: u32,
    ) -> FsResult<Attributes> {
        let node = self.node("getattr", ino)?;
        let detached = self.inodes.lock().detached(ino);
        let open_size = match fh {
            Some(fh) => match self.handles.lock().get(&fh) {
                Some(Handle::Read { content, .. }) => Some(content.len() as u64),
                Some(Handle::Draft(_, d, _)) => Some(d.lock().data.len() as u64),
                _ => None,
            },
            // fstat carries no handle; a file replaced or removed is reached
            // only through descriptors opened before.
            None if detached.is_some() => self.newest_read(ino).map(|c| c.len() as u64),
            None => None,
        };
        if let (
            Some(size),
            Some(Detached {
                attr: Some(mut attr),
            }),
        ) = (open_size, detached)
        {
            attr.size = size;
            return Ok(Self::attributes(ino, attr, Duration::ZERO, None));
        }
        let flight = AttrFlight::begin(&self, Some(ino));
        let caller = self.caller(uid);
        let (mut attr, mut ttl) = self
            .ns
            .attr_with_lifetime_for(&node, caller)
            .await
            .map_err(on("getattr", &node))?;
        if let Some(size) = open_size.filter(|s| *s != attr.size) {
            attr.size = size;
            ttl = Duration::ZERO;
        }
        let described = self
            .described(Some(ino), &node, attr.kind, caller, fh.is_some())
            .await
            .map_err(on("getattr", &node))?;
        self.describe(ino, described, &mut attr, &mut ttl);
        Ok(Self::attributes(ino, attr, ttl, Some(flight)))
    }

    /// chmod, truncate, utimes. Documents accept chmod, chown and utimes
    /// (rsync -a, cp -p, vim) and change nothing: IAM has no such thing.
    pub async fn setattr(
        self: Arc<Self>,
        ino: u64,
        fh: Option<u64>,
        uid: u32,
        mode: Option<u16>,
        size: Option<u64>,
        mtime: Option<SystemTime>,
    ) -> FsResult<Attributes> {
        let op = "setattr";
        let node = self.node(op, ino)?;
        self.check_owner(uid, op, || node.path())?;
        let draft = fh.and_then(|fh| match self.handles.lock().get(&fh) {
            Some(Handle::Draft(_, d, _)) => Some(d.clone()),
            _ => None,
        });
        let flight = AttrFlight::begin(&self, Some(ino));
        let ns = &self.ns;
        let fail = on(op, &node);
        match &node {
            Node::Scratch(..) | Node::ScratchLink(..) => {
                ns.scratch_set(&node, mode, size, mtime).map_err(fail)?;
            }
            // `echo 1 > .iamfs/refresh` truncates first; that changes nothing.
            Node::Control(ControlFile::Refresh | ControlFile::Mfa) => {}
            _ => match (size, &draft) {
                // On the way to a rewrite: never committed by itself.
                (Some(size), Some(d)) => {
                    Namespace::draft_truncate(&node, d, size).map_err(fail)?;
                    self.inodes.lock().written(ino);
                }
                (Some(size), None) => ns.truncate_closed(&node, size).await.map_err(fail)?,
                (None, _) => {}
            },
        }
        let (mut attr, mut ttl) = ns.attr_with_lifetime(&node).await.map_err(on(op, &node))?;
        // A writer's size is its draft's, not what others read.
        let flight = match &draft {
            Some(d) => {
                attr.size = d.lock().data.len() as u64;
                ttl = Duration::ZERO;
                drop(flight);
                None
            }
            None => Some(flight),
        };
        Ok(Self::attributes(ino, attr, ttl, flight))
    }

    pub async fn readlink(self: Arc<Self>, ino: u64) -> FsResult<String> {
        let node = self.node("readlink", ino)?;
        self.ns.readlink(&node).await.map_err(on("readlink", &node))
    }

    pub async fn mkdir(
        self: Arc<Self>,
        parent: u64,
        name: OsString,
        uid: u32,
    ) -> FsResult<Attributes> {
        let op = "mkdir";
        let (parent, name) = self.change_at(op, uid, parent, &name)?;
        let fail = |e| error(op, child_path(&parent, &name), false, e);
        let node = self.ns.mkdir(&parent, &name).await.map_err(fail)?;
        self.new_entry(node).await.map_err(fail)
    }

    pub async fn unlink(self: Arc<Self>, parent: u64, name: OsString, uid: u32) -> FsResult<()> {
        let op = "unlink";
        let parent = self.node(op, parent)?;
        let name = self.looked_up_name(op, &parent, &name)?;
        self.check_owner(uid, op, || child_path(&parent, &name))?;
        let was = self.cached_attr(&parent, &name).await;
        let node = self
            .ns
            .unlink(&parent, &name)
            .await
            .map_err(|e| error(op, child_path(&parent, &name), true, e))?;
        let mut held = self.held_at(&parent, &name, Some(&node));
        held.extend(self.held_related(&[&node]));
        self.inodes.lock().removed(&node, was);
        // A membership shows under both ends: the other is gone on return.
        let busy = self.inodes.lock().get(&parent);
        self.let_go_around(held, &busy.into_iter().collect::<Vec<_>>())
            .await;
        Ok(())
    }

    pub async fn rmdir(self: Arc<Self>, parent: u64, name: OsString, uid: u32) -> FsResult<()> {
        let op = "rmdir";
        let parent = self.node(op, parent)?;
        let name = self.looked_up_name(op, &parent, &name)?;
        self.check_owner(uid, op, || child_path(&parent, &name))?;
        self.ns
            .rmdir(&parent, &name)
            .await
            .map_err(|e| error(op, child_path(&parent, &name), false, e))?;
        let mut held = self.held_at(&parent, &name, None);
        let gone = parent.child(&name);
        if let Some(gone) = &gone {
            held.extend(self.held_related(&[gone]));
        }
        self.let_go(held);
        if let Some(gone) = &gone {
            self.inodes.lock().removed(gone, None);
        }
        Ok(())
    }

    pub async fn symlink(
        self: Arc<Self>,
        parent: u64,
        name: OsString,
        target: String,
        uid: u32,
    ) -> FsResult<Attributes> {
        let op = "symlink";
        let (parent, name) = self.change_at(op, uid, parent, &name)?;
        let fail = |e| error(op, child_path(&parent, &name), true, e);
        let node = self
            .ns
            .symlink(&parent, &name, &target)
            .await
            .map_err(fail)?;
        self.let_go(self.held_related(&[&node]));
        self.new_entry(node).await.map_err(fail)
    }

    pub async fn rename(
        self: Arc<Self>,
        parent: u64,
        name: OsString,
        new_parent: u64,
        new_name: OsString,
        uid: u32,
    ) -> FsResult<()> {
        let op = "rename";
        let parent = self.node(op, parent)?;
        let name = self.looked_up_name(op, &parent, &name)?;
        let (new_parent, new_name) = self.change_at(op, uid, new_parent, &new_name)?;
        let path = || {
            format!(
                "{} -> {}",
                child_path(&parent, &name),
                child_path(&new_parent, &new_name)
            )
        };
        let replaced = self.cached_attr(&new_parent, &new_name).await;
        let (from, moved) = self
            .ns
            .rename(&parent, &name, &new_parent, &new_name)
            .await
            .map_err(|e| error(op, path(), true, e))?;
        let mut held = self.held_at(&parent, &name, None);
        held.extend(self.held_at(&new_parent, &new_name, Some(&moved)));
        held.extend(self.held_related(&[&from, &moved]));
        self.inodes.lock().rename(&from, &moved, replaced);
        self.let_go(held);
        Ok(())
    }

    pub async fn create(
        self: Arc<Self>,
        parent: u64,
        name: OsString,
        perm: u16,
        uid: u32,
    ) -> FsResult<CreatedFile> {
        let op = "create";
        let (parent, name) = self.change_at(op, uid, parent, &name)?;
        let fail = |e| error(op, child_path(&parent, &name), true, e);
        let created = self.ns.create(&parent, &name, perm).await.map_err(fail)?;
        let node = match &created {
            Created::Document(node, _) | Created::Scratch(node) => node.clone(),
        };
        let (attr, ttl) = self.ns.attr_with_lifetime(&node).await.map_err(fail)?;
        let ino = self.inodes.lock().looked_up(&node);
        let (handle, direct_io) = match created {
            Created::Document(node, draft) => {
                self.inodes.lock().open_write(ino);
                (Handle::Draft(node, draft, ino), true)
            }
            Created::Scratch(node) => (Handle::Scratch(node), false),
        };
        let fh = self.add_handle(handle);
        Ok(CreatedFile {
            entry: Self::attributes(ino, attr, ttl, None),
            opened: Opened {
                fh,
                mode: OpenMode {
                    direct_io,
                    ..OpenMode::default()
                },
            },
        })
    }

    /// An open. `write`: for writing; `truncate`: O_TRUNC.
    pub async fn open(
        self: Arc<Self>,
        ino: u64,
        write: bool,
        truncate: bool,
        uid: u32,
    ) -> FsResult<Opened> {
        let op = "open";
        let node = self.node(op, ino)?;
        if write || matches!(node, Node::Credentials(_) | Node::Env(_)) {
            // Another user never causes an IAM write or an AssumeRole.
            self.check_owner(uid, op, || node.path())?;
        }
        let opened = |fh, mode| Ok(Opened { fh, mode });
        match &node {
            Node::Control(c @ (ControlFile::Refresh | ControlFile::Mfa)) => {
                let fh = self.add_handle(if *c == ControlFile::Mfa {
                    Handle::Mfa
                } else {
                    Handle::Refresh
                });
                let mode = OpenMode {
                    direct_io: true,
                    ..OpenMode::default()
                };
                return opened(fh, mode);
            }
            Node::Scratch(..) => {
                if truncate {
                    let _ = self.ns.scratch_set(&node, None, Some(0), None);
                }
                let fh = self.add_handle(Handle::Scratch(node));
                return opened(fh, OpenMode::default());
            }
            _ => {}
        }
        if write {
            self.inodes.lock().open_write(ino);
            self.wait_for_cached_readers(ino).await;
            let draft = match self.ns.open_document(&node, truncate).await {
                Ok(d) => d,
                Err(e) => {
                    self.inodes.lock().close_write(ino);
                    return Err(on(op, &node)(e));
                }
            };
            if truncate {
                self.inodes.lock().written(ino);
            }
            let fh = self.add_handle(Handle::Draft(node, draft, ino));
            // Its writes never reach the pages other opens read.
            let mode = OpenMode {
                direct_io: true,
                ..OpenMode::default()
            };
            return opened(fh, mode);
        }
        // A file a rename replaced or rm removed, opened again (a lookup
        // made before, /proc/PID/fd): the bytes its other descriptors read.
        let detached = self.inodes.lock().detached(ino).is_some();
        let kept = detached.then(|| self.newest_read(ino)).flatten();
        let content = match kept {
            Some(content) => content,
            None => self.ns.read(&node).await.map_err(on(op, &node))?,
        };
        let read_mode = if node.is_volatile() || !platform::PAGE_CACHE {
            ReadMode::Direct { invalidate: false }
        } else {
            let fingerprint = self.fingerprint_keys.hash_one(&*content);
            self.inodes
                .lock()
                .open_read(ino, content.len() as u64, fingerprint)
        };
        let mut mode = OpenMode {
            no_flush: true,
            ..OpenMode::default()
        };
        match read_mode {
            ReadMode::Cached { keep: false } => mode.keep_cache = self.push_pages(ino, &content),
            ReadMode::Cached { keep } => mode.keep_cache = keep,
            ReadMode::Direct { invalidate } => {
                if invalidate {
                    self.let_go(vec![Held::Inode(ino)]);
                }
                mode.direct_io = true;
            }
        }
        let cached = matches!(read_mode, ReadMode::Cached { .. });
        tracing::trace!(ino, len = content.len(), ?read_mode, "open for reading");
        let fh = self.add_handle(Handle::Read {
            content,
            ino,
            cached,
        });
        opened(fh, mode)
    }

    /// The first reader through the page cache finds its bytes there: they
    /// are stored in the inode's pages before the open is answered (and kept:
    /// FOPEN_KEEP_CACHE), so its reads send no request. That also spares the
    /// next `stat` a request: each read the daemon answers makes the kernel
    /// count the file's atime stale (fuse_invalidate_atime), and a `grep -r`
    /// after a cold one would ask for every file's attributes again.
    /// Only where no other open reads through the page cache (its
    /// readahead could hold a page lock while it waits for this thread).
    fn push_pages(&self, ino: u64, content: &Content) -> bool {
        if content.is_empty()
            || content.len() > PUSHED_PAGES_MAX
            || self.inodes.lock().cached_readers(ino) != 1
        {
            return false;
        }
        let Some(invalidate) = self.invalidate.get() else {
            return false;
        };
        invalidate.store(ino, content)
    }

    /// Bytes of an open file. Offsets and sizes are the kernel's: bounded by
    /// the content here.
    pub fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let slice = |content: &[u8]| {
            let start = offset.min(content.len() as u64) as usize;
            let end = start.saturating_add(size as usize).min(content.len());
            content[start..end].to_vec()
        };
        match self.handles.lock().get(&fh) {
            Some(Handle::Read { content, .. }) => Ok(slice(content)),
            Some(Handle::Draft(_, draft, _)) => Ok(slice(&draft.lock().data)),
            Some(Handle::Scratch(node)) => self
                .ns
                .scratch_read(node)
                .map(|d| slice(&d))
                .map_err(on("read", node)),
            Some(Handle::Refresh | Handle::Mfa) => Ok(Vec::new()),
            None => Err(bad_handle("read")),
        }
    }

    /// A read without an open file (handle `NO_HANDLE`, see
    /// `without_open`): bytes of the snapshot last described to the kernel,
    /// whose size the kernel cuts the read at. A secret is read by the
    /// mounter only, and its pages are dropped `SECRET_LINGER` later.
    pub async fn read_unopened(
        self: Arc<Self>,
        ino: u64,
        offset: u64,
        size: u32,
        uid: u32,
    ) -> FsResult<Vec<u8>> {
        let op = "read";
        let node = self.node(op, ino)?;
        if is_secret(&node) {
            self.check_owner(uid, op, || node.path())?;
        }
        let snapshot = self.inodes.lock().snapshot(ino);
        let content = match snapshot {
            Some(s) => s.content,
            // Never described (a page fault after the secret's snapshot
            // was let go): the content now, described from now on.
            None => {
                let content = self.ns.read(&node).await.map_err(on(op, &node))?;
                let fingerprint = self.fingerprint_keys.hash_one(&*content);
                let now = Instant::now();
                let s = self
                    .inodes
                    .lock()
                    .take_snapshot(ino, content, fingerprint, now);
                s.content
            }
        };
        let start = offset.min(content.len() as u64) as usize;
        let end = start.saturating_add(size as usize).min(content.len());
        let bytes = content[start..end].to_vec();
        if is_secret(&node) {
            self.drop_secret_later(ino);
        }
        Ok(bytes)
    }

    /// Tells the kernel, `SECRET_LINGER` from now, to drop the pages and
    /// attributes it holds of a secret, and lets go of its snapshot: a
    /// reader still reading is described the session again (the same
    /// bytes while it is not renewed).
    fn drop_secret_later(self: &Arc<Self>, ino: u64) {
        if !self.secret_drops.lock().insert(ino) {
            return;
        }
        let fs = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SECRET_LINGER).await;
            fs.secret_drops.lock().remove(&ino);
            fs.inodes.lock().drop_snapshot(ino);
            fs.let_go(vec![Held::Inode(ino)]);
        });
    }

    pub fn write(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        data: &[u8],
        uid: u32,
    ) -> FsResult<Written> {
        let op = "write";
        let len = data.len() as u32;
        match self.handles.lock().get(&fh) {
            Some(Handle::Draft(node, draft, _)) => {
                Namespace::draft_write(node, draft, offset, data).map_err(on(op, node))?;
                self.inodes.lock().written(ino);
                Ok(Written::Bytes(len))
            }
            Some(Handle::Scratch(node)) => {
                self.ns
                    .scratch_write(node, offset, data)
                    .map_err(on(op, node))?;
                Ok(Written::Bytes(len))
            }
            Some(Handle::Refresh) => {
                self.check_owner(uid, op, || ".iamfs/refresh".into())?;
                Ok(Written::Refresh(len))
            }
            Some(Handle::Mfa) => {
                let node = Node::Control(ControlFile::Mfa);
                self.check_owner(uid, op, || node.path())?;
                let code = MfaCode::parse(data).map_err(on(op, &node))?;
                Ok(Written::Mfa(len, code))
            }
            _ => Err(bad_handle(op)),
        }
    }

    /// `.iamfs/refresh`: drops iamfs's cache and everything the kernel
    /// holds, and returns once the kernel has let go, so the next command
    /// sees IAM as it is now.
    pub async fn refresh(self: Arc<Self>) {
        self.ns.refresh();
        tracing::info!("cache dropped through .iamfs/refresh");
        self.let_go_now(self.held_of(|_| true)).await;
    }

    /// A code written to `.iamfs/mfa`: a new MFA session, at once; the
    /// write fails with IAM's refusal (EACCES for a wrong code).
    pub async fn start_mfa_session(self: Arc<Self>, code: MfaCode) -> FsResult<()> {
        let node = Node::Control(ControlFile::Mfa);
        self.ns
            .start_mfa_session(&code)
            .await
            .map_err(on("write", &node))
    }

    /// flush and fsync: commits a draft; the commit's error is the answer.
    pub async fn commit(self: Arc<Self>, op: &'static str, fh: u64) -> FsResult<()> {
        let draft = match self.handles.lock().get(&fh) {
            Some(Handle::Draft(node, draft, _)) => Some((node.clone(), draft.clone())),
            _ => None,
        };
        let Some((node, draft)) = draft else {
            return Ok(());
        };
        let result = self.ns.commit(&node, &draft).await;
        // Before the reply, so that the next `stat`, `cat` or open(O_CREAT)
        // after close() sees what iamfs holds (a truncate that was not
        // committed, a refused new document, a save in a new layout, and
        // every file the save changed).
        let mut held = match node.parent_and_name() {
            Some((parent, name)) => self.held_at(&parent, &name, Some(&node)),
            None => Vec::new(),
        };
        if result.is_ok() {
            held.extend(self.held_related(&[&node]));
        }
        self.let_go_now(held).await;
        result.map_err(on(op, &node))
    }

    pub fn release(&self, fh: u64) {
        match self.handles.lock().remove(&fh) {
            Some(Handle::Draft(node, draft, ino)) => {
                self.ns.release_draft(&node, &draft);
                self.inodes.lock().close_write(ino);
            }
            Some(Handle::Read {
                ino, cached: true, ..
            }) => {
                self.inodes.lock().close_cached_read(ino);
                self.cached_reader_closed.notify_waiters();
            }
            _ => {}
        }
    }

    pub fn is_dir(&self, ino: u64) -> FsResult<bool> {
        Ok(self.node("opendir", ino)?.file_kind() == FileKind::Dir)
    }

    /// A listing from `offset`: the names as of its first request, kept
    /// until a request finds nothing left (see `fill_dir`).
    pub async fn readdir(self: Arc<Self>, ino: u64, offset: u64) -> FsResult<DirPage> {
        let node = self.node("readdir", ino)?;
        let snapshot = match offset {
            0 => None,
            _ => self.listings.lock().get(&ino).cloned(),
        };
        let children = match snapshot {
            Some(c) => c,
            None => Arc::new(
                self.ns
                    .children(&node)
                    .await
                    .map_err(on("readdir", &node))?,
            ),
        };
        Ok(DirPage {
            ino,
            offset,
            children,
        })
    }

    /// Hands a listing's entries to `add` (inode, next offset, kind, name)
    /// until it says the reply is full.
    pub fn fill_dir(&self, page: DirPage, mut add: impl FnMut(u64, u64, FileKind, &str) -> bool) {
        let DirPage {
            ino,
            offset,
            children,
        } = page;
        let dots = [(".", ino), ("..", ROOT_INO)];
        let total = dots.len() + children.len();
        let mut added = 0;
        let mut inodes = self.inodes.lock();
        for i in (offset as usize).min(total)..total {
            let next = (i + 1) as u64;
            let full = match dots.get(i) {
                Some(&(name, dot)) => add(dot, next, FileKind::Dir, name),
                None => {
                    let (name, node) = &children[i - dots.len()];
                    add(inodes.listed(node), next, node.file_kind(), name)
                }
            };
            if full {
                break;
            }
            added += 1;
        }
        drop(inodes);
        // The kernel reads until a reply holds nothing: only then is the
        // listing done.
        let mut listings = self.listings.lock();
        if added == 0 {
            listings.remove(&ino);
        } else {
            listings.insert(ino, children);
        }
    }

    /// The listing from `offset` with each entry's attributes, as a lookup
    /// of it would answer. What is not cached is not waited for: such an
    /// entry goes out as a stand-in the kernel keeps for no time (it looks
    /// the name up before any use), so a plain `ls` of a cold folder costs
    /// no more than its listing. A stand-in for an inode the kernel holds
    /// carries the size the kernel holds (another size would cut the pages
    /// a reader is reading, or a cached link's target); where that size is
    /// not known here, the entry is worked out as its lookup would be.
    pub async fn readdirplus(
        self: Arc<Self>,
        ino: u64,
        offset: u64,
        uid: u32,
    ) -> FsResult<DirPlusPage> {
        let page = self.clone().readdir(ino, offset).await?;
        let caller = self.caller(uid);
        let dots = 2;
        let first = (offset as usize)
            .saturating_sub(dots)
            .min(page.children.len());
        let last = (first + self.plus_batch.load(Ordering::Relaxed)).min(page.children.len());
        let mut entries = Vec::with_capacity(last - first);
        for (_, node) in &page.children[first..last] {
            entries.push(self.plus_entry(node, caller).await?);
        }
        Ok(DirPlusPage { page, entries })
    }

    async fn plus_entry(self: &Arc<Self>, node: &Node, caller: Caller) -> FsResult<PlusEntry> {
        let (known, held) = {
            let inodes = self.inodes.lock();
            (inodes.get(node), inodes.held(node))
        };
        let flight = AttrFlight::begin(self, known);
        let at_hand = if node.is_volatile() {
            Err(IamError::not_cached()) // never an AssumeRole for a listing
        } else {
            crate::cache::cached_only(self.plus_attributes(known, node, caller)).await
        };
        let (attr, ttl, described) = match (at_hand, held) {
            (Ok(answer), _) => answer,
            (Err(_), None) => (Self::stand_in(node, 0), Duration::ZERO, Described::AsIs),
            (Err(_), Some((_, Some(size)))) => {
                tracing::trace!(path = %node.path(), size, "readdirplus: a stand-in for a held inode");
                (Self::stand_in(node, size), Duration::ZERO, Described::AsIs)
            }
            (Err(_), Some((_, None))) if node.file_kind() == FileKind::Dir => {
                (Self::stand_in(node, 0), Duration::ZERO, Described::AsIs)
            }
            (Err(_), Some((_, None))) => self
                .plus_attributes(known, node, caller)
                .await
                .map_err(on("readdirplus", node))?,
        };
        Ok(PlusEntry {
            node: node.clone(),
            attr,
            ttl,
            described,
            flight,
        })
    }

    async fn plus_attributes(
        &self,
        known: Option<u64>,
        node: &Node,
        caller: Caller,
    ) -> Result<(Attr, Duration, Described), IamError> {
        let (attr, ttl) = self.ns.attr_with_lifetime_for(node, caller).await?;
        let described = self
            .described(known, node, attr.kind, caller, false)
            .await?;
        Ok((attr, ttl, described))
    }

    /// Attributes that stand for ones not at hand, kept by the kernel for no
    /// time; `size` is what the kernel already holds, if it holds the inode.
    fn stand_in(node: &Node, size: u64) -> Attr {
        Attr {
            kind: node.file_kind(),
            perm: node.perm(),
            size,
            mtime: SystemTime::UNIX_EPOCH,
            ctime: SystemTime::UNIX_EPOCH,
        }
    }

    /// Hands a readdirplus page's entries to `add` (inode, next offset,
    /// name, lifetime, attributes) until it says the reply is full, counting
    /// a lookup for each entry sent (the kernel forgets them as lookups).
    pub fn fill_dir_plus(
        &self,
        plus: DirPlusPage,
        mut add: impl FnMut(u64, u64, &str, Duration, &Attr) -> bool,
    ) -> PlusSent {
        let DirPlusPage { page, entries } = plus;
        let DirPage {
            ino,
            offset,
            children,
        } = page;
        let dots = [(".", ino), ("..", ROOT_INO)];
        // The kernel ignores the attributes of the dot entries.
        let dot_attr = Self::stand_in(&Node::Root, 0);
        let mut sent = Vec::with_capacity(entries.len());
        let mut added = 0;
        let mut full = false;
        let mut offset = offset as usize;
        while offset < dots.len() && !full {
            let (name, dot) = dots[offset];
            full = add(dot, (offset + 1) as u64, name, Duration::ZERO, &dot_attr);
            if !full {
                added += 1;
                offset += 1;
            }
        }
        let planned = entries.len();
        for (i, entry) in entries.into_iter().enumerate() {
            if full {
                break;
            }
            let PlusEntry {
                node,
                mut attr,
                mut ttl,
                described,
                flight,
            } = entry;
            let child_ino = self.inodes.lock().looked_up(&node);
            self.describe(child_ino, described, &mut attr, &mut ttl);
            let name = &children[offset - dots.len() + i].0;
            full = add(
                child_ino,
                (offset + i + 1) as u64,
                name,
                platform::kernel_ttl(ttl),
                &attr,
            );
            if full {
                self.inodes.lock().forget(child_ino, 1);
                let fit = sent.len().max(8);
                self.plus_batch.store(fit, Ordering::Relaxed);
                break;
            }
            added += 1;
            sent.push((flight, child_ino, attr.size));
        }
        if !full && planned > 0 && sent.len() == planned {
            let more = (planned * 2).min(PLUS_BATCH_MAX);
            self.plus_batch.fetch_max(more, Ordering::Relaxed);
        }
        let mut listings = self.listings.lock();
        if added == 0 {
            listings.remove(&ino);
        } else {
            listings.insert(ino, children);
        }
        PlusSent(sent)
    }

    /// Editors (vim) check for free space before writing: what is left for
    /// their files, the only bytes the mount keeps.
    pub fn statfs(&self) -> StatFs {
        let (used, limit) = self.ns.scratch_space();
        StatFs {
            blocks: limit / BLOCK,
            free: limit.saturating_sub(used) / BLOCK,
            files: 1 << 20,
            block_size: BLOCK as u32,
            name_max: NAME_MAX as u32,
        }
    }
}

#[cfg(test)]
mod tests;
