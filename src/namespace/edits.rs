//! What the mount shows of documents on top of IAM while they are being
//! edited: new documents not saved yet, names an editor's backup rename
//! emptied, what was last saved, and rm's waiting deletes. One type, one
//! lock: every event below changes these together.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::IamError;
use crate::keyed::Expiring;
use crate::node::Node;

/// How long a document removed by rm waits before it is deleted in IAM: a
/// create of the same name within it (`install`, `cp --remove-destination`
/// unlink and create at once) makes the save an update that keeps the
/// policy's id and versions.
pub const UNLINK_GRACE: Duration = Duration::from_secs(2);

/// Shortest time a name emptied by an editor's backup rename stays empty.
pub const DETACHED_MIN: Duration = Duration::from_secs(10);

/// How long after a refused save an editor's cleanup unlink counts as
/// recovery rather than a request to delete (editors recover at once).
const RECOVERY_WINDOW: Duration = Duration::from_secs(10);

/// A document's bytes while it is open for writing.
#[derive(Debug, Default)]
pub struct Draft {
    pub data: Vec<u8>,
    /// Written to since the last commit.
    pub dirty: bool,
    /// The last commit's error, returned again by a flush with nothing new.
    pub failed: Option<IamError>,
    /// Its name was removed or renamed away while it was open: like writes
    /// to an unlinked file, what it holds is saved nowhere.
    pub nameless: bool,
}

pub type DraftRef = Arc<Mutex<Draft>>;

/// Where an editor's backup rename put a document's content: (folder,
/// scratch name).
pub type Backup = (Node, String);

#[derive(Default)]
struct State {
    /// Documents created and open, not yet saved: visible by name.
    drafts: HashMap<Node, DraftRef>,
    /// Names emptied by an editor's backup rename: absent until written
    /// again or until their lifetime passes.
    detached: Expiring<Node, Backup>,
    /// Names whose save was refused after the backup rename: while the
    /// backup exists, an unlink empties the name again instead of deleting
    /// in IAM (the editor's recovery).
    recovering: Expiring<Node, Backup>,
    /// What was last saved to a document, shown until the cache TTL passes.
    saved: Expiring<Node, Arc<Vec<u8>>>,
    /// Documents removed by rm, by when: hidden at once, deleted in IAM
    /// once UNLINK_GRACE has passed without a create of the same name.
    pending_deletes: HashMap<Node, Instant>,
    /// Documents created again while their delete was pending (`install`):
    /// their save is an update.
    replacing: HashSet<Node>,
}

impl State {
    /// A created document went without being saved: if it replaced one
    /// removed by rm, that removal goes ahead.
    fn draft_gone(&mut self, node: &Node) {
        if self.replacing.remove(node) {
            self.pending_deletes.insert(node.clone(), Instant::now());
        }
    }
}

pub struct Edits {
    state: Mutex<State>,
    /// How long saved bytes are shown (the cache TTL).
    saved_lifetime: Duration,
    /// How long an emptied name stays empty: the TTL, at least DETACHED_MIN,
    /// as long as an editor takes between its backup rename and writing.
    detached_lifetime: Duration,
}

impl Edits {
    pub fn new(cache_ttl: Duration) -> Self {
        Self {
            state: Mutex::default(),
            saved_lifetime: cache_ttl,
            detached_lifetime: cache_ttl.max(DETACHED_MIN),
        }
    }

    /// `.iamfs/refresh`: IAM's documents show again; open drafts and
    /// waiting deletes stay, they are the user's.
    pub fn refresh(&self) {
        let mut s = self.state.lock();
        s.saved.clear();
        s.detached.clear();
        s.recovering.clear();
    }

    // ---- what the mount shows ---------------------------------------------

    /// The unsaved document created at this name.
    pub fn draft(&self, node: &Node) -> Option<DraftRef> {
        self.state.lock().drafts.get(node).cloned()
    }

    pub fn has_draft(&self, node: &Node) -> bool {
        self.state.lock().drafts.contains_key(node)
    }

    /// Unsaved documents created at names `within` accepts.
    pub fn drafts_where(&self, within: impl Fn(&Node) -> bool) -> Vec<Node> {
        let s = self.state.lock();
        s.drafts.keys().filter(|n| within(n)).cloned().collect()
    }

    /// The name shows nothing: emptied by a backup rename or removed by rm.
    pub fn is_hidden(&self, node: &Node) -> bool {
        let mut s = self.state.lock();
        s.pending_deletes.contains_key(node)
            || s.detached.get(node, self.detached_lifetime).is_some()
    }

    pub fn is_pending_delete(&self, node: &Node) -> bool {
        self.state.lock().pending_deletes.contains_key(node)
    }

    /// What was last saved to the name, and when, while the TTL lasts.
    pub fn saved(&self, node: &Node) -> Option<(Arc<Vec<u8>>, Instant)> {
        let mut s = self.state.lock();
        s.saved
            .get(node, self.saved_lifetime)
            .map(|(bytes, at)| (bytes.clone(), at))
    }

    // ---- events -----------------------------------------------------------

    /// A document created at `node` (open, empty). Over a name rm removed,
    /// its save will be an update.
    pub fn created(&self, node: &Node, draft: DraftRef) {
        let mut s = self.state.lock();
        if s.pending_deletes.remove(node).is_some() {
            s.replacing.insert(node.clone());
        }
        s.drafts.insert(node.clone(), draft);
    }

    /// The last handle of a created document closed: if it was not saved,
    /// the name is gone again.
    pub fn released(&self, node: &Node, draft: &DraftRef) {
        let mut s = self.state.lock();
        if s.drafts.get(node).is_some_and(|d| Arc::ptr_eq(d, draft)) {
            s.drafts.remove(node);
            s.draft_gone(node);
        }
    }

    /// rm of a created document not saved yet: it existed only here.
    /// Returns whether there was one.
    pub fn unlink_draft(&self, node: &Node) -> bool {
        let mut s = self.state.lock();
        let Some(draft) = s.drafts.remove(node) else {
            return false;
        };
        draft.lock().nameless = true;
        s.draft_gone(node);
        true
    }

    /// An editor's cleanup unlink right after a refused save, while its
    /// backup exists (`backup_exists`): the name is emptied again instead
    /// of deleted in IAM. Returns whether it was such an unlink.
    pub fn recover(&self, node: &Node, backup_exists: impl Fn(&Backup) -> bool) -> bool {
        let mut s = self.state.lock();
        match s.recovering.take(node, RECOVERY_WINDOW) {
            Some((backup, at)) if backup_exists(&backup) => {
                s.detached.insert_at(node.clone(), backup, at);
                true
            }
            _ => false,
        }
    }

    /// rm of a document: hidden now, deleted after UNLINK_GRACE.
    pub fn removed(&self, node: &Node) {
        let mut s = self.state.lock();
        s.saved.remove(node);
        s.pending_deletes.insert(node.clone(), Instant::now());
    }

    /// IAM's document changed by other means (an rm carried out or refused,
    /// a rollback): what was last saved is no longer shown.
    pub fn drop_saved(&self, node: &Node) {
        self.state.lock().saved.remove(node);
    }

    /// Takes the waiting deletes whose grace ended by `now`, or, with
    /// `only`, every waiting delete it accepts.
    pub fn take_due_deletes(
        &self,
        now: Instant,
        only: Option<&dyn Fn(&Node) -> bool>,
    ) -> Vec<Node> {
        let mut s = self.state.lock();
        let due: Vec<Node> = s
            .pending_deletes
            .iter()
            .filter(|(node, at)| match only {
                Some(accept) => accept(node),
                None => now.saturating_duration_since(**at) >= UNLINK_GRACE,
            })
            .map(|(n, _)| n.clone())
            .collect();
        for node in &due {
            s.pending_deletes.remove(node);
        }
        due
    }

    pub fn has_pending_deletes(&self) -> bool {
        !self.state.lock().pending_deletes.is_empty()
    }

    /// A scratch file is renamed over `doc` (the save of an editor that
    /// writes a temporary file): over a name rm removed, the save is an
    /// update. Returns when the rm was, for `rename_refused`.
    pub fn renamed_over(&self, doc: &Node) -> Option<Instant> {
        let mut s = self.state.lock();
        let removed_at = s.pending_deletes.remove(doc);
        if removed_at.is_some() {
            s.replacing.insert(doc.clone());
        }
        removed_at
    }

    /// The rename over `doc` was refused: an rm before it stands.
    pub fn rename_refused(&self, doc: &Node, removed_at: Option<Instant>) {
        if let Some(at) = removed_at {
            self.state.lock().pending_deletes.insert(doc.clone(), at);
        }
    }

    /// An editor's backup rename moved `doc`'s content to `backup`: the
    /// name is empty until written again; a created document still open
    /// goes with the content.
    pub fn backed_up(&self, doc: &Node, backup: Backup) {
        let mut s = self.state.lock();
        if let Some(draft) = s.drafts.remove(doc) {
            draft.lock().nameless = true;
        }
        s.detached.insert(doc.clone(), backup);
        s.saved.remove(doc);
    }

    /// `bytes` were saved to `doc` in IAM: the name now holds what IAM
    /// holds, shown from here until the cache has it.
    pub fn saved_to_iam(&self, doc: &Node, bytes: Vec<u8>) {
        let mut s = self.state.lock();
        s.replacing.remove(doc);
        s.pending_deletes.remove(doc);
        s.drafts.remove(doc);
        s.detached.remove(doc);
        s.recovering.remove(doc);
        s.saved.insert(doc.clone(), Arc::new(bytes));
    }

    /// IAM refused the save of `draft` to `doc`: the document stays as IAM
    /// holds it (a refused replacement deletes nothing), and a name an
    /// editor emptied reads as IAM's document again, its recovery (unlink
    /// it, rename the backup back) kept from reaching IAM.
    pub fn save_refused(&self, doc: &Node, draft: &DraftRef) {
        let mut s = self.state.lock();
        s.replacing.remove(doc);
        if s.drafts.get(doc).is_some_and(|d| Arc::ptr_eq(d, draft)) {
            s.drafts.remove(doc);
        }
        s.saved.remove(doc);
        if let Some((backup, _)) = s.detached.remove(doc) {
            s.recovering.insert(doc.clone(), backup);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::Kind;

    fn doc() -> Node {
        Node::Inline(Kind::Role, "r".into(), "p".into())
    }

    #[test]
    fn a_create_over_an_rm_is_a_replacement_until_it_goes_unsaved() {
        let edits = Edits::new(Duration::from_secs(60));
        edits.removed(&doc());
        assert!(edits.is_hidden(&doc()));
        let draft = DraftRef::default();
        edits.created(&doc(), draft.clone());
        assert!(
            !edits.is_pending_delete(&doc()),
            "install: the rm is an update now"
        );
        assert!(edits.has_draft(&doc()));
        edits.released(&doc(), &draft);
        assert!(
            edits.is_pending_delete(&doc()),
            "unsaved: the rm goes ahead"
        );
        let later = Instant::now() + UNLINK_GRACE;
        assert_eq!(edits.take_due_deletes(later, None), [doc()]);
        assert!(!edits.has_pending_deletes());
    }

    #[test]
    fn a_save_shows_its_bytes_and_clears_the_rest() {
        let edits = Edits::new(Duration::from_secs(60));
        edits.backed_up(&doc(), (Node::Root, "p.json~".into()));
        assert!(edits.is_hidden(&doc()));
        edits.saved_to_iam(&doc(), b"{}".to_vec());
        assert!(!edits.is_hidden(&doc()));
        assert_eq!(edits.saved(&doc()).unwrap().0.as_slice(), b"{}");
        edits.refresh();
        assert!(edits.saved(&doc()).is_none());
    }

    #[test]
    fn a_refused_save_after_a_backup_lets_the_editor_recover() {
        let edits = Edits::new(Duration::ZERO);
        let backup = (Node::Root, "p.json~".into());
        edits.backed_up(&doc(), backup.clone());
        assert!(edits.is_hidden(&doc()), "empty at least DETACHED_MIN");
        edits.save_refused(&doc(), &DraftRef::default());
        assert!(!edits.is_hidden(&doc()), "IAM's document shows again");
        assert!(!edits.recover(&doc(), |_| false), "no backup: a real rm");
        edits.backed_up(&doc(), backup.clone());
        edits.save_refused(&doc(), &DraftRef::default());
        assert!(edits.recover(&doc(), |b| *b == backup));
        assert!(edits.is_hidden(&doc()), "the unlink empties the name again");
    }
}
