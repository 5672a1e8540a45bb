//! What the kernel holds, without FUSE: inode numbers with their lookup
//! counts, and per inode the size and pages the kernel may be keeping, so
//! that an open never lets the kernel serve bytes that disagree with them.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::namespace::{Attr, Content};
use crate::node::Node;

/// The root's inode number, fixed by FUSE.
pub const ROOT_INO: u64 = 1;

/// Inodes the kernel was only shown in listings (lookup count 0) are kept
/// up to this many; past it they are dropped, and get new numbers if seen again.
const UNLOOKED_KEEP: usize = 1 << 16;

/// After a change a file is read without the page cache this long: around
/// a save the kernel applies attribute replies and invalidations in an
/// order the daemon cannot see, so its size may briefly disagree.
pub const SETTLE: Duration = Duration::from_secs(2);

/// In a mount without open (see `Fs::without_open`): how long a snapshot
/// still answers the attribute requests the kernel makes from inside a
/// read (getattr with a file handle, before each read(2) and at EOF), so
/// that one reader's reads all see one snapshot.
pub const READ_SPAN: Duration = Duration::from_secs(1);

/// In a mount without open, the content of a file last described to the
/// kernel in an attribute reply: reads (which carry no handle) are answered
/// from it, so they never disagree with the size the kernel cuts them at.
#[derive(Clone)]
pub struct Snapshot {
    pub content: Content,
    pub fingerprint: u64,
    taken: Instant,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snapshot({:?}, {:x})", self.content, self.fingerprint)
    }
}

/// A file's mtime as told to the kernel in a mount without open: its
/// whole seconds (IAM's dates have no more), and the content's fingerprint
/// as nanoseconds. With FUSE_AUTO_INVAL_DATA the kernel drops a file's
/// pages when an attribute reply brings another mtime, so it drops them
/// exactly when the bytes changed, whatever their size.
pub fn marked_mtime(mtime: SystemTime, fingerprint: u64) -> SystemTime {
    let secs = mtime.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::new(secs, (fingerprint % 1_000_000_000) as u32)
}

/// How a file open for reading is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Through the page cache; `keep` when the kernel's pages hold this very
    /// content and may be reused.
    Cached { keep: bool },
    /// Every read asks the daemon: the kernel's size or pages may disagree
    /// with this open's bytes (or the file is made at read time).
    Direct {
        /// The kernel's attributes are stale: tell it to drop them.
        invalidate: bool,
    },
}

/// Sizes in the attribute replies of overlapping requests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Flights {
    #[default]
    None,
    Same(u64),
    /// Replies with different sizes, or something else changed the size:
    /// the kernel keeps whichever it applied first, so its size is unknown.
    Mixed,
}

/// What the kernel may hold of one inode's content.
#[derive(Debug, Default, Clone)]
struct View {
    /// The size the kernel holds, when known for sure.
    size: Option<u64>,
    /// Requests whose reply carries attributes, from arrival to reply.
    in_flight: u32,
    flights: Flights,
    /// Fingerprint of the content the kernel's pages were filled from.
    pages: Option<u64>,
    /// Opens reading through the page cache now.
    cached_readers: u32,
    /// Opens writing a draft now.
    writers: u32,
    /// Without open: the content last described to the kernel.
    snapshot: Option<Snapshot>,
}

/// What a file replaced or removed was, for its descriptors.
#[derive(Debug, Clone)]
pub struct Detached {
    /// Its attributes just before, when they were cached.
    pub attr: Option<Attr>,
}

#[derive(Debug)]
struct Inode {
    node: Node,
    /// Lookups answered and not yet forgotten.
    lookups: u64,
    view: View,
    /// A rename put another file at this inode's name, or rm removed it:
    /// only descriptors opened before reach it (see `Inodes::rename`).
    detached: Option<Detached>,
}

/// Inode numbers. A node keeps its number while the kernel holds it; a
/// number stays valid until the kernel forgets it, even after its name was
/// removed or replaced (it then means the node now at that name).
pub struct Inodes {
    by_node: HashMap<Node, u64>,
    by_ino: HashMap<u64, Inode>,
    next: u64,
    unlooked: usize,
    /// Nodes changed within SETTLE, and when.
    changed: HashMap<Node, Instant>,
}

impl Default for Inodes {
    fn default() -> Self {
        Self::new()
    }
}

impl Inodes {
    pub fn new() -> Self {
        let mut inodes = Self {
            by_node: HashMap::new(),
            by_ino: HashMap::new(),
            next: ROOT_INO + 1,
            unlooked: 0,
            changed: HashMap::new(),
        };
        inodes.by_node.insert(Node::Root, ROOT_INO);
        inodes.by_ino.insert(
            ROOT_INO,
            Inode {
                node: Node::Root,
                lookups: 1,
                view: View::default(),
                detached: None,
            },
        );
        inodes
    }

    pub fn node(&self, ino: u64) -> Option<&Node> {
        self.by_ino.get(&ino).map(|i| &i.node)
    }

    /// The number of a node the kernel holds, if it holds one.
    pub fn get(&self, node: &Node) -> Option<u64> {
        self.by_node.get(node).copied()
    }

    /// The number of a node the kernel holds a reference to (a lookup not
    /// yet forgotten), and the size it holds if known.
    pub fn held(&self, node: &Node) -> Option<(u64, Option<u64>)> {
        let ino = *self.by_node.get(node)?;
        let inode = self.by_ino.get(&ino)?;
        (inode.lookups > 0).then_some((ino, inode.view.size))
    }

    /// The node's number for a listing entry: the kernel holds no
    /// reference through it.
    pub fn listed(&mut self, node: &Node) -> u64 {
        if let Some(&ino) = self.by_node.get(node) {
            return ino;
        }
        if self.unlooked >= UNLOOKED_KEEP {
            self.drop_unlooked();
        }
        self.unlooked += 1;
        self.insert(node, 0)
    }

    /// The node's number for an entry reply (lookup, create, mkdir,
    /// symlink): one more reference the kernel will forget.
    pub fn looked_up(&mut self, node: &Node) -> u64 {
        if let Some(&ino) = self.by_node.get(node) {
            let inode = self.by_ino.get_mut(&ino).expect("tables agree");
            if inode.lookups == 0 {
                self.unlooked -= 1;
            }
            inode.lookups += 1;
            return ino;
        }
        self.insert(node, 1)
    }

    fn insert(&mut self, node: &Node, lookups: u64) -> u64 {
        let ino = self.next;
        self.next += 1;
        self.by_node.insert(node.clone(), ino);
        self.by_ino.insert(
            ino,
            Inode {
                node: node.clone(),
                lookups,
                view: View::default(),
                detached: None,
            },
        );
        ino
    }

    /// The kernel let go of `n` references; at none the number is free.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if ino == ROOT_INO {
            return;
        }
        let Some(inode) = self.by_ino.get_mut(&ino) else {
            return;
        };
        inode.lookups = inode.lookups.saturating_sub(n);
        // The kernel forgets no inode it holds open.
        if inode.lookups > 0 {
            return;
        }
        let inode = self.by_ino.remove(&ino).expect("present");
        if self.by_node.get(&inode.node) == Some(&ino) {
            self.by_node.remove(&inode.node);
        }
    }

    fn drop_unlooked(&mut self) {
        let by_node = &mut self.by_node;
        self.by_ino.retain(|&ino, inode| {
            let keep = ino == ROOT_INO || inode.lookups > 0;
            if !keep && by_node.get(&inode.node) == Some(&ino) {
                by_node.remove(&inode.node);
            }
            keep
        });
        self.unlooked = 0;
    }

    /// A renamed node keeps its number, as the kernel expects. The number
    /// the replaced node had stays valid for whoever holds it, and now means
    /// the new node at that name (a reader opening it sees the new content,
    /// never ENOENT), but its descriptors opened before keep their bytes
    /// and their size, as on a local filesystem, and an open of the number
    /// while one of them is open gets their bytes (see `Fs::open`).
    pub fn rename(&mut self, from: &Node, to: &Node, was: Option<Attr>) {
        self.changed(to);
        if let Some(ino) = self.by_node.remove(from) {
            if let Some(replaced) = self.by_node.insert(to.clone(), ino) {
                if let Some(old) = self.by_ino.get_mut(&replaced) {
                    old.node = to.clone();
                    old.detached = Some(Detached { attr: was });
                    Self::size_unknown(&mut old.view);
                }
            }
            if let Some(inode) = self.by_ino.get_mut(&ino) {
                inode.node = to.clone();
                Self::size_unknown(&mut inode.view);
                inode.view.pages = None;
            }
        }
    }

    /// Whether a rename replaced the file `ino` was, or rm removed it: its
    /// descriptors still read the bytes they opened, and its attributes are
    /// theirs (see `Fs::getattr`).
    pub fn detached(&self, ino: u64) -> Option<Detached> {
        self.by_ino.get(&ino).and_then(|i| i.detached.clone())
    }

    /// A name was removed (`attr`: what its file was, if known): a node made
    /// again at it gets a new number.
    pub fn removed(&mut self, node: &Node, attr: Option<Attr>) {
        if let Some(ino) = self.by_node.remove(node) {
            if let Some(inode) = self.by_ino.get_mut(&ino) {
                Self::size_unknown(&mut inode.view);
                inode.detached = Some(Detached { attr });
            }
        }
    }

    /// The node's content or size changed, or may have.
    pub fn changed(&mut self, node: &Node) {
        let now = Instant::now();
        if self.changed.len() >= 4096 {
            self.changed
                .retain(|_, at| now.duration_since(*at) < SETTLE);
        }
        self.changed.insert(node.clone(), now);
    }

    fn changed_ino(&mut self, ino: u64) {
        if let Some(node) = self.by_ino.get(&ino).map(|i| i.node.clone()) {
            self.changed(&node);
        }
    }

    fn settling(&self, node: &Node) -> bool {
        self.changed
            .get(node)
            .is_some_and(|at| at.elapsed() < SETTLE)
    }

    /// Makes every change older than SETTLE.
    #[cfg(test)]
    fn settle_now(&mut self) {
        self.changed.clear();
    }

    fn view(&mut self, ino: u64) -> Option<&mut View> {
        self.by_ino.get_mut(&ino).map(|i| &mut i.view)
    }

    /// A request whose reply carries the inode's attributes arrived. Until
    /// it is answered the kernel's size is not known here: of concurrent
    /// replies the kernel applies the first to reach it and drops the rest.
    pub fn attributes_asked(&mut self, ino: u64) {
        if let Some(v) = self.view(ino) {
            v.in_flight += 1;
            v.size = None;
        }
    }

    /// That request was answered with `size` (None: with an error, or with
    /// a size the kernel may not keep).
    pub fn attributes_sent(&mut self, ino: u64, size: Option<u64>) {
        let Some(v) = self.view(ino) else {
            return;
        };
        v.in_flight = v.in_flight.saturating_sub(1);
        v.flights = match (v.flights, size) {
            (Flights::None, Some(s)) => Flights::Same(s),
            (Flights::Same(a), Some(b)) if a == b => Flights::Same(a),
            _ => Flights::Mixed,
        };
        if v.in_flight == 0 {
            v.size = match v.flights {
                Flights::Same(s) => Some(s),
                _ => None,
            };
            v.flights = Flights::None;
        }
    }

    /// Attributes with this size went to the kernel for an inode it did not
    /// hold yet (a first lookup, mkdir, symlink).
    pub fn size_sent(&mut self, ino: u64, size: u64) {
        self.attributes_asked(ino);
        self.attributes_sent(ino, Some(size));
    }

    /// The kernel's size changed, or may have, by other means than a reply.
    fn size_unknown(v: &mut View) {
        v.size = None;
        if v.in_flight > 0 {
            v.flights = Flights::Mixed;
        }
    }

    /// The kernel was told to drop what it holds of the inode.
    pub fn invalidated(&mut self, ino: u64) {
        self.changed_ino(ino);
        if let Some(v) = self.view(ino) {
            Self::size_unknown(v);
            v.pages = None;
        }
    }

    /// How to serve an open for reading of `len` bytes with `fingerprint`.
    /// The kernel cuts a read at the size it holds and serves pages it
    /// holds, so the page cache is used only when both agree with these bytes.
    pub fn open_read(&mut self, ino: u64, len: u64, fingerprint: u64) -> ReadMode {
        let settling = self
            .by_ino
            .get(&ino)
            .is_some_and(|i| self.settling(&i.node));
        let Some(v) = self.view(ino) else {
            return ReadMode::Direct { invalidate: false };
        };
        if v.writers > 0 || settling {
            // A writer's own size, or one from around a change, may be
            // what the kernel holds.
            return ReadMode::Direct { invalidate: false };
        }
        if v.size != Some(len) {
            let invalidate = v.size.is_some();
            v.size = None;
            return ReadMode::Direct { invalidate };
        }
        if v.cached_readers > 0 && v.pages != Some(fingerprint) {
            // Another open is filling pages from other bytes of this size.
            return ReadMode::Direct { invalidate: false };
        }
        let keep = v.pages == Some(fingerprint);
        v.pages = Some(fingerprint);
        v.cached_readers += 1;
        ReadMode::Cached { keep }
    }

    /// Opens reading `ino` through the page cache now.
    pub fn cached_readers(&self, ino: u64) -> u32 {
        self.by_ino.get(&ino).map_or(0, |i| i.view.cached_readers)
    }

    /// A reader served through the page cache closed.
    pub fn close_cached_read(&mut self, ino: u64) {
        if let Some(v) = self.view(ino) {
            v.cached_readers = v.cached_readers.saturating_sub(1);
        }
    }

    /// A document is being opened for writing (served with direct I/O, so
    /// its writes never reach the pages other opens read). From now on new
    /// readers bypass the page cache; the writer waits for those reading
    /// through it (see `cached_readers`), whose reads the kernel would cut
    /// at the size the writer gives it.
    pub fn open_write(&mut self, ino: u64) {
        if let Some(v) = self.view(ino) {
            v.writers += 1;
        }
    }

    /// A write or truncate went through a draft: the kernel may hold its
    /// size now, and an O_TRUNC open dropped its pages.
    pub fn written(&mut self, ino: u64) {
        self.changed_ino(ino);
        if let Some(v) = self.view(ino) {
            Self::size_unknown(v);
            v.pages = None;
        }
    }

    pub fn close_write(&mut self, ino: u64) {
        self.changed_ino(ino);
        if let Some(v) = self.view(ino) {
            v.writers = v.writers.saturating_sub(1);
            Self::size_unknown(v);
            v.pages = None;
        }
    }

    /// Without open: the snapshot reads of `ino` are answered from.
    pub fn snapshot(&self, ino: u64) -> Option<Snapshot> {
        self.by_ino.get(&ino)?.view.snapshot.clone()
    }

    /// The snapshot to describe again to a read in progress: one taken
    /// less than READ_SPAN before `now`.
    pub fn snapshot_within_read(&self, ino: u64, now: Instant) -> Option<Snapshot> {
        self.snapshot(ino)
            .filter(|s| now.saturating_duration_since(s.taken) < READ_SPAN)
    }

    /// Content described to the kernel now: what its reads are answered
    /// from from now on.
    pub fn take_snapshot(
        &mut self,
        ino: u64,
        content: Content,
        fingerprint: u64,
        now: Instant,
    ) -> Snapshot {
        let snapshot = Snapshot {
            content,
            fingerprint,
            taken: now,
        };
        if let Some(v) = self.view(ino) {
            v.snapshot = Some(snapshot.clone());
        }
        snapshot
    }

    /// The snapshot is let go (a secret, once the kernel was told to drop
    /// its pages).
    pub fn drop_snapshot(&mut self, ino: u64) {
        if let Some(v) = self.view(ino) {
            v.snapshot = None;
        }
    }

    /// Every number the kernel may hold, with its node.
    pub fn all(&self) -> impl Iterator<Item = (u64, &Node)> {
        self.by_ino.iter().map(|(&ino, i)| (ino, &i.node))
    }

    pub fn len(&self) -> usize {
        self.by_ino.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ino.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::{Kind, PolicyScope};

    fn policy(name: &str) -> Node {
        Node::Policy(PolicyScope::Local, name.into())
    }

    #[test]
    fn marked_mtimes_keep_the_second_and_follow_the_content() {
        let date = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let a = marked_mtime(date, 42);
        assert_eq!(a, UNIX_EPOCH + Duration::new(1_700_000_000, 42));
        assert_eq!(marked_mtime(date, 42), a);
        assert_ne!(marked_mtime(date, 43), a);
        assert_eq!(
            marked_mtime(date, u64::MAX)
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_700_000_000
        );
    }

    #[test]
    fn a_snapshot_answers_reads_in_progress_for_a_while() {
        let mut inodes = Inodes::new();
        let ino = inodes.looked_up(&policy("p"));
        let t0 = Instant::now();
        assert!(inodes.snapshot(ino).is_none());
        inodes.take_snapshot(ino, b"{}".to_vec().into(), 7, t0);
        assert_eq!(inodes.snapshot(ino).unwrap().fingerprint, 7);
        assert!(inodes
            .snapshot_within_read(ino, t0 + READ_SPAN / 2)
            .is_some());
        assert!(inodes.snapshot_within_read(ino, t0 + READ_SPAN).is_none());
        assert!(inodes.snapshot(ino).is_some(), "kept for reads");
        inodes.drop_snapshot(ino);
        assert!(inodes.snapshot(ino).is_none());
    }

    #[test]
    fn numbers_live_until_forgotten() {
        let mut inodes = Inodes::new();
        let p = policy("p");
        let ino = inodes.looked_up(&p);
        assert_eq!(inodes.looked_up(&p), ino);
        inodes.forget(ino, 1);
        assert_eq!(inodes.node(ino), Some(&p));
        inodes.forget(ino, 1);
        assert_eq!(inodes.node(ino), None);
        assert_eq!(inodes.get(&p), None);
        assert_ne!(
            inodes.looked_up(&p),
            ino,
            "a forgotten number is not reused"
        );
        inodes.forget(ROOT_INO, 100);
        assert_eq!(inodes.node(ROOT_INO), Some(&Node::Root));
    }

    #[test]
    fn the_table_does_not_grow_with_lookups_and_forgets() {
        let mut inodes = Inodes::new();
        for i in 0..10_000 {
            let ino = inodes.looked_up(&policy(&format!("p{i}")));
            inodes.forget(ino, 1);
        }
        assert_eq!(inodes.len(), 1);
    }

    #[test]
    fn listed_only_numbers_are_bounded() {
        let mut inodes = Inodes::new();
        let held = inodes.looked_up(&policy("held"));
        for i in 0..(UNLOOKED_KEEP + 10) {
            inodes.listed(&policy(&format!("p{i}")));
        }
        assert!(inodes.len() <= UNLOOKED_KEEP + 2);
        assert_eq!(inodes.node(held), Some(&policy("held")));
    }

    #[test]
    fn a_number_replaced_by_rename_stays_valid_and_means_the_new_file() {
        let mut inodes = Inodes::new();
        let dir = Node::PoliciesDir(PolicyScope::Local);
        let tmp = Node::Scratch(Box::new(dir), ".p.json.tmp".into());
        let target = policy("p");
        let old = inodes.looked_up(&target);
        inodes.size_sent(old, 100);
        let new = inodes.looked_up(&tmp);
        inodes.rename(&tmp, &target, None);
        assert_eq!(inodes.get(&target), Some(new));
        assert_eq!(inodes.node(old), Some(&target));
        assert_eq!(inodes.node(new), Some(&target));
        // The kernel's size for the old number is the old document's.
        assert_eq!(
            inodes.open_read(old, 120, 7),
            ReadMode::Direct { invalidate: false }
        );
        inodes.forget(old, 1);
        assert_eq!(inodes.node(old), None);
        assert_eq!(inodes.get(&target), Some(new));
    }

    #[test]
    fn pages_are_used_only_when_size_and_content_agree() {
        let mut inodes = Inodes::new();
        let ino = inodes.looked_up(&Node::Tags(Kind::Role, "r".into()));
        inodes.size_sent(ino, 10);
        assert_eq!(
            inodes.open_read(ino, 10, 1),
            ReadMode::Cached { keep: false }
        );
        inodes.close_cached_read(ino);
        assert_eq!(
            inodes.open_read(ino, 10, 1),
            ReadMode::Cached { keep: true }
        );
        // Same size, other bytes, while the first reader still reads pages.
        assert_eq!(
            inodes.open_read(ino, 10, 2),
            ReadMode::Direct { invalidate: false }
        );
        inodes.close_cached_read(ino);
        assert_eq!(
            inodes.open_read(ino, 10, 2),
            ReadMode::Cached { keep: false }
        );
        inodes.close_cached_read(ino);
        // A save changed the size under the kernel's feet.
        assert_eq!(
            inodes.open_read(ino, 12, 3),
            ReadMode::Direct { invalidate: true }
        );
        assert_eq!(
            inodes.open_read(ino, 12, 3),
            ReadMode::Direct { invalidate: false }
        );
        inodes.size_sent(ino, 12);
        assert_eq!(
            inodes.open_read(ino, 12, 3),
            ReadMode::Cached { keep: false }
        );
    }

    #[test]
    fn overlapping_replies_with_different_sizes_leave_the_size_unknown() {
        let mut inodes = Inodes::new();
        let ino = inodes.looked_up(&policy("p"));
        inodes.size_sent(ino, 10);
        inodes.attributes_asked(ino);
        inodes.attributes_asked(ino);
        // Until both are answered the kernel may hold either.
        assert!(matches!(
            inodes.open_read(ino, 10, 1),
            ReadMode::Direct { .. }
        ));
        inodes.attributes_sent(ino, Some(12));
        inodes.attributes_sent(ino, Some(10));
        assert!(matches!(
            inodes.open_read(ino, 10, 1),
            ReadMode::Direct { .. }
        ));
        assert!(matches!(
            inodes.open_read(ino, 12, 1),
            ReadMode::Direct { .. }
        ));
        // Overlapping replies that agree, and a failed one alone.
        inodes.attributes_asked(ino);
        inodes.attributes_asked(ino);
        inodes.attributes_sent(ino, Some(12));
        inodes.attributes_sent(ino, Some(12));
        assert_eq!(
            inodes.open_read(ino, 12, 1),
            ReadMode::Cached { keep: false }
        );
        inodes.close_cached_read(ino);
        inodes.attributes_asked(ino);
        inodes.attributes_sent(ino, None);
        assert!(matches!(
            inodes.open_read(ino, 12, 1),
            ReadMode::Direct { .. }
        ));
        // An invalidation during a request: the reply may be dropped.
        inodes.attributes_asked(ino);
        inodes.invalidated(ino);
        inodes.attributes_sent(ino, Some(12));
        assert!(matches!(
            inodes.open_read(ino, 12, 1),
            ReadMode::Direct { .. }
        ));
    }

    #[test]
    fn around_a_change_reads_bypass_the_pages_until_it_settles() {
        let mut inodes = Inodes::new();
        let node = Node::EntityJson(Kind::Role, "r".into());
        let ino = inodes.looked_up(&node);
        inodes.invalidated(ino);
        inodes.size_sent(ino, 10);
        assert!(matches!(
            inodes.open_read(ino, 10, 1),
            ReadMode::Direct { .. }
        ));
        inodes.settle_now();
        assert_eq!(
            inodes.open_read(ino, 10, 1),
            ReadMode::Cached { keep: false }
        );
    }

    #[test]
    fn readers_beside_a_writer_never_use_the_pages() {
        let mut inodes = Inodes::new();
        let ino = inodes.looked_up(&policy("p"));
        inodes.size_sent(ino, 10);
        inodes.open_write(ino);
        assert_eq!(
            inodes.open_read(ino, 10, 1),
            ReadMode::Direct { invalidate: false }
        );
        inodes.written(ino);
        inodes.close_write(ino);
        // The writer may have left its size in the kernel.
        assert!(matches!(
            inodes.open_read(ino, 10, 1),
            ReadMode::Direct { .. }
        ));
    }
}
