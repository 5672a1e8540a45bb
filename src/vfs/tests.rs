//! The filesystem's rules without a mount: inode lifetimes, how opens are
//! served, when the kernel is told to let go, truncates, refresh, who may
//! change what, names.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use super::*;
use crate::iam::memory::MemoryIam;
use crate::iam::{Iam, Kind, Operation};
use crate::namespace::Settings;

const OWNER: u32 = 1000;
const OTHER: u32 = 1001;
const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
const DOC2: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#;

/// Records what the kernel is told to drop.
#[derive(Default)]
struct Recorder(Mutex<Vec<Held>>, Mutex<Vec<(u64, usize)>>);

impl Invalidate for Recorder {
    fn entry(&self, parent: u64, name: &str) {
        self.0.lock().push(Held::Entry(parent, name.into()));
    }
    fn inode(&self, ino: u64) {
        self.0.lock().push(Held::Inode(ino));
    }
    fn store(&self, ino: u64, data: &[u8]) -> bool {
        self.1.lock().push((ino, data.len()));
        true
    }
}

impl Recorder {
    fn take(&self) -> Vec<Held> {
        std::mem::take(&mut *self.0.lock())
    }
}

fn filesystem() -> (Arc<MemoryIam>, Arc<Fs>, Arc<Recorder>) {
    let iam = MemoryIam::default();
    iam.add_policy("p", "/", DOC)
        .add_entity(Kind::Role, "r")
        .put_inline(Kind::Role, "r", "inline", DOC);
    let iam = Arc::new(iam);
    let ns = Namespace::new(
        iam.clone() as Arc<dyn Iam>,
        Settings::for_tests(Duration::from_secs(60)),
    );
    let fs = Fs::new(Arc::new(ns), OWNER);
    let recorder = Arc::new(Recorder::default());
    fs.set_invalidator(recorder.clone());
    (iam, fs, recorder)
}

async fn lookup(fs: &Arc<Fs>, parent: u64, name: &str) -> u64 {
    let entry = fs.clone().lookup(parent, name.into(), OWNER).await.unwrap();
    let ino = entry.ino;
    entry.replied();
    ino
}

async fn path(fs: &Arc<Fs>, path: &str) -> u64 {
    let mut ino = ROOT_INO;
    for part in path.split('/') {
        ino = lookup(fs, ino, part).await;
    }
    ino
}

async fn read_open(fs: &Arc<Fs>, ino: u64) -> Opened {
    fs.clone().open(ino, false, false, OWNER).await.unwrap()
}

/// Lets the invalidations sent on the blocking pool land.
async fn settled(recorder: &Recorder) -> Vec<Held> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    recorder.take()
}

async fn save(fs: &Arc<Fs>, ino: u64, bytes: &str) -> FsResult<()> {
    let opened = fs.clone().open(ino, true, true, OWNER).await?;
    assert!(opened.mode.direct_io, "a writer never fills the page cache");
    fs.write(ino, opened.fh, 0, bytes.as_bytes(), OWNER)?;
    let result = fs.clone().commit("flush", opened.fh).await;
    fs.release(opened.fh);
    result
}

#[tokio::test]
async fn inode_numbers_follow_lookups_and_forgets() {
    let (_, fs, _) = filesystem();
    let a = path(&fs, "policies/p.json").await;
    let again = path(&fs, "policies/p.json").await;
    assert_eq!(a, again);
    fs.forget_inode(a, 1);
    assert!(
        fs.clone().getattr(a, None, OWNER).await.is_ok(),
        "one lookup left"
    );
    fs.forget_inode(a, 1);
    let err = fs.clone().getattr(a, None, OWNER).await.err().unwrap();
    assert_eq!(err.err.kind, ErrorKind::NoSuchEntity);
}

#[tokio::test]
async fn opens_use_the_page_cache_only_when_the_kernel_holds_their_size() {
    let (_, fs, recorder) = filesystem();
    let ino = path(&fs, "policies/p.json").await;
    if !crate::platform::PAGE_CACHE {
        // The fallback platform does not rely on the kernel dropping pages:
        // every read bypasses the page cache.
        for _ in 0..2 {
            let opened = read_open(&fs, ino).await;
            assert!(opened.mode.direct_io && !opened.mode.keep_cache);
            fs.release(opened.fh);
        }
        return;
    }
    let first = read_open(&fs, ino).await;
    assert_eq!(
        first.mode,
        OpenMode {
            direct_io: false,
            keep_cache: true,
            no_flush: true
        },
        "the first reader's bytes are stored in the pages, and kept"
    );
    let content = fs
        .namespace()
        .read(&Node::Policy(crate::model::PolicyScope::Local, "p".into()))
        .await
        .unwrap();
    assert_eq!(*recorder.1.lock(), vec![(ino, content.len())]);
    fs.release(first.fh);
    let second = read_open(&fs, ino).await;
    assert!(
        second.mode.keep_cache,
        "same content, same size: keep the pages"
    );
    fs.release(second.fh);
    assert_eq!(
        recorder.1.lock().len(),
        1,
        "pages already hold it: not stored again"
    );

    // A save: the kernel is told to drop the file, and reads bypass the
    // page cache while the change settles.
    save(&fs, ino, DOC2).await.unwrap();
    let dropped = settled(&recorder).await;
    assert!(dropped.contains(&Held::Inode(ino)), "{dropped:?}");
    let after = read_open(&fs, ino).await;
    assert!(after.mode.direct_io);
    assert_eq!(fs.read(after.fh, 0, 1 << 20).unwrap(), DOC2.as_bytes());
    fs.release(after.fh);
}

#[tokio::test]
async fn a_save_drops_what_the_kernel_holds_of_every_file_it_changed() {
    let (_, fs, recorder) = filesystem();
    let role_json = path(&fs, "roles/r/role.json").await;
    let tags = path(&fs, "roles/r/tags.json").await;
    recorder.take();
    save(&fs, tags, r#"{"team": "a"}"#).await.unwrap();
    let dropped = settled(&recorder).await;
    assert!(dropped.contains(&Held::Inode(role_json)), "{dropped:?}");
    let opened = read_open(&fs, role_json).await;
    let text = String::from_utf8(fs.read(opened.fh, 0, 1 << 20).unwrap()).unwrap();
    assert!(text.contains("\"team\""), "{text}");
}

#[tokio::test]
async fn readers_beside_a_writer_read_whole_snapshots_without_the_page_cache() {
    let (_, fs, _) = filesystem();
    let ino = path(&fs, "policies/p.json").await;
    let writer = fs.clone().open(ino, true, true, OWNER).await.unwrap();
    fs.write(ino, writer.fh, 0, b"{\"half", OWNER).unwrap();
    let reader = read_open(&fs, ino).await;
    assert!(reader.mode.direct_io);
    let bytes = fs.read(reader.fh, 0, 1 << 20).unwrap();
    assert_eq!(
        &bytes[..],
        &crate::document::render_policy(DOC)[..],
        "IAM's, not the draft"
    );
    fs.release(reader.fh);
    fs.release(writer.fh);
}

#[tokio::test]
async fn truncates_are_bounded_and_never_committed_alone() {
    let (_, fs, _) = filesystem();
    let ino = path(&fs, "policies/p.json").await;
    let err = fs
        .clone()
        .setattr(ino, None, OWNER, None, Some(3), None)
        .await
        .err()
        .unwrap();
    assert_eq!(err.err.kind, ErrorKind::InvalidInput);
    let writer = fs.clone().open(ino, true, false, OWNER).await.unwrap();
    let err = fs
        .clone()
        .setattr(ino, Some(writer.fh), OWNER, None, Some(1 << 40), None)
        .await
        .err()
        .unwrap();
    assert_eq!(err.err.kind, ErrorKind::TooLarge);
    let attrs = fs
        .clone()
        .setattr(ino, Some(writer.fh), OWNER, None, Some(0), None)
        .await
        .unwrap();
    assert_eq!(attrs.attr.size, 0, "the writer sees its draft");
    fs.clone().commit("flush", writer.fh).await.unwrap();
    fs.release(writer.fh);
    assert_eq!(
        fs.namespace()
            .api_calls()
            .get(Operation::CreatePolicyVersion),
        0
    );
    let err = fs.write(ino, 999, 0, b"x", OWNER).err().unwrap();
    assert_eq!(err.err.kind, ErrorKind::BadHandle);
}

#[tokio::test]
async fn refresh_drops_everything_the_kernel_holds() {
    let (_, fs, recorder) = filesystem();
    let doc = path(&fs, "policies/p.json").await;
    let refresh = path(&fs, ".iamfs/refresh").await;
    recorder.take();
    let opened = fs.clone().open(refresh, true, true, OWNER).await.unwrap();
    assert!(matches!(
        fs.write(refresh, opened.fh, 0, b"1\n", OWNER),
        Ok(Written::Refresh(2))
    ));
    fs.clone().refresh().await;
    let dropped = recorder.take();
    assert!(dropped.contains(&Held::Inode(doc)) && dropped.contains(&Held::Inode(ROOT_INO)));
}

#[tokio::test]
async fn another_user_reads_but_never_changes_or_assumes_a_role() {
    let (_, fs, _) = filesystem();
    let role = path(&fs, "roles/r").await;
    let creds = fs
        .clone()
        .lookup(role, "credentials".into(), OTHER)
        .await
        .unwrap();
    assert_eq!(creds.attr.size, 0);
    let ino = creds.ino;
    creds.replied();
    let err = fs
        .clone()
        .open(ino, false, false, OTHER)
        .await
        .err()
        .unwrap();
    assert_eq!(err.err.kind, ErrorKind::AccessDenied);
    assert_eq!(fs.namespace().api_calls().get(Operation::AssumeRole), 0);

    let policies = path(&fs, "policies").await;
    for result in [
        fs.clone()
            .create(policies, "x.json".into(), 0o644, OTHER)
            .await
            .map(|_| ()),
        fs.clone().unlink(policies, "p.json".into(), OTHER).await,
        fs.clone()
            .mkdir(path(&fs, "users").await, "u".into(), OTHER)
            .await
            .map(|_| ()),
    ] {
        assert_eq!(result.err().unwrap().err.kind, ErrorKind::AccessDenied);
    }
    let doc = path(&fs, "policies/p.json").await;
    assert!(fs.clone().open(doc, true, true, OTHER).await.is_err());
    assert!(fs.clone().open(doc, false, false, OTHER).await.is_ok());
}

#[tokio::test]
async fn names_no_folder_can_hold_are_refused_with_a_reason() {
    let (_, fs, _) = filesystem();
    let policies = path(&fs, "policies").await;
    let long = OsString::from("a".repeat(256));
    let err = fs
        .clone()
        .lookup(policies, long.clone(), OWNER)
        .await
        .err()
        .unwrap();
    assert_eq!(err.err.kind, ErrorKind::NameTooLong);
    let err = fs
        .clone()
        .create(policies, long, 0o644, OWNER)
        .await
        .err()
        .unwrap();
    assert_eq!(err.err.kind, ErrorKind::NameTooLong);
    let bad = OsString::from_vec(b"x\xff.json".to_vec());
    let err = fs
        .clone()
        .create(policies, bad.clone(), 0o644, OWNER)
        .await
        .err()
        .unwrap();
    assert_eq!(err.err.kind, ErrorKind::InvalidInput);
    let err = fs.clone().lookup(policies, bad, OWNER).await.err().unwrap();
    assert_eq!(err.err.kind, ErrorKind::NoSuchEntity, "absent, as any name");
}

#[tokio::test]
async fn a_listing_read_in_pages_is_one_snapshot() {
    let (iam, fs, _) = filesystem();
    let policies = path(&fs, "policies").await;
    let mut names = Vec::new();
    let mut offset = 0;
    for page_no in 0.. {
        if page_no == 1 {
            // Made after the listing began: not in this listing.
            iam.add_policy("later", "/", DOC);
            fs.clone().refresh().await;
        }
        let page = fs.clone().readdir(policies, offset).await.unwrap();
        // A reply with room for one entry: `add` says full (not added) after it.
        let mut room = 1;
        fs.fill_dir(page, |_, next, _, name| {
            if room == 0 {
                return true;
            }
            room -= 1;
            names.push(name.to_string());
            offset = next;
            false
        });
        if room == 1 {
            break;
        }
    }
    assert_eq!(
        names,
        [".", "..", "p.json"],
        "the policy made meanwhile is not in it"
    );
    let statfs = fs.statfs();
    assert_eq!(statfs.name_max, 255);
    assert_eq!(statfs.free, statfs.blocks);
}

/// A read-only mount whose kernel was told open is not implemented.
fn without_open() -> (Arc<MemoryIam>, Arc<Fs>, Arc<Recorder>) {
    let iam = MemoryIam::default();
    iam.add_policy("p", "/", DOC)
        .add_entity(Kind::Role, "r")
        .put_inline(Kind::Role, "r", "inline", DOC);
    let iam = Arc::new(iam);
    let mut settings = Settings::for_tests(Duration::from_secs(60));
    settings.read_only = true;
    let fs = Fs::new(Arc::new(Namespace::new(iam.clone(), settings)), OWNER);
    let recorder = Arc::new(Recorder::default());
    fs.set_invalidator(recorder.clone());
    assert_eq!(fs.without_open(true), crate::platform::SKIP_OPEN);
    (iam, fs, recorder)
}

async fn attributes(fs: &Arc<Fs>, ino: u64, within_read: bool) -> (u64, SystemTime) {
    let fh = within_read.then_some(NO_HANDLE);
    let a = fs.clone().getattr(ino, fh, OWNER).await.unwrap();
    let seen = (a.attr.size, a.attr.mtime);
    a.replied();
    seen
}

async fn read_all(fs: &Arc<Fs>, ino: u64, uid: u32) -> FsResult<Vec<u8>> {
    fs.clone().read_unopened(ino, 0, 1 << 20, uid).await
}

#[tokio::test]
async fn only_read_only_mounts_do_without_open() {
    let (_, fs, _) = filesystem();
    assert!(
        !fs.without_open(true),
        "a read-write mount commits on flush"
    );
    let (_, fs, _) = without_open();
    assert!(!fs.without_open(false), "the kernel cannot do without open");
}

#[tokio::test]
async fn reads_without_open_answer_the_snapshot_the_kernel_was_described() {
    if !crate::platform::SKIP_OPEN {
        return;
    }
    let (iam, fs, _) = without_open();
    let ino = path(&fs, "roles/r/policies/inline.json").await;
    let (size, mtime) = attributes(&fs, ino, false).await;
    let first = read_all(&fs, ino, OWNER).await.unwrap();
    assert_eq!(first.len() as u64, size);
    // Changed in IAM and fetched again: until an attribute reply describes
    // the new bytes, reads answer the ones whose size the kernel holds.
    iam.put_inline(Kind::Role, "r", "inline", DOC2);
    fs.namespace().refresh();
    assert_eq!(read_all(&fs, ino, OWNER).await.unwrap(), first);
    let (new_size, new_mtime) = attributes(&fs, ino, false).await;
    let second = read_all(&fs, ino, OWNER).await.unwrap();
    assert_ne!(second, first);
    assert_eq!(second.len() as u64, new_size);
    // Another mtime, in the same second: the kernel drops its pages.
    assert_ne!(new_mtime, mtime);
    let secs = |t: SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(secs(new_mtime), secs(mtime));
    // The same bytes described again keep their mtime: pages are kept.
    assert_eq!(attributes(&fs, ino, false).await, (new_size, new_mtime));
}

#[tokio::test]
async fn a_read_in_progress_is_described_its_own_snapshot() {
    if !crate::platform::SKIP_OPEN {
        return;
    }
    let (_, fs, _) = without_open();
    let status = path(&fs, ".iamfs/status").await;
    // A stat describes status now (its counters move with every request).
    let (size, mtime) = attributes(&fs, status, false).await;
    let _ = path(&fs, "roles/r/role.json").await;
    // From inside a read (getattr with handle 0, before each read and at
    // EOF) the same snapshot is described again, and read.
    assert_eq!(attributes(&fs, status, true).await, (size, mtime));
    let bytes = read_all(&fs, status, OWNER).await.unwrap();
    assert_eq!(bytes.len() as u64, size);
    // The next stat or path walk describes the content as it is now.
    let (_, later) = attributes(&fs, status, false).await;
    assert_ne!(later, mtime);
}

#[tokio::test]
async fn secrets_without_open_are_the_mounters_and_leave_the_page_cache() {
    if !crate::platform::SKIP_OPEN {
        return;
    }
    let (_, fs, recorder) = without_open();
    let role = path(&fs, "roles/r").await;
    // Another user: no AssumeRole, no bytes.
    let other = fs
        .clone()
        .lookup(role, "credentials".into(), OTHER)
        .await
        .unwrap();
    let ino = other.ino;
    other.replied();
    let err = read_all(&fs, ino, OTHER).await.err().unwrap();
    assert_eq!(err.err.kind, ErrorKind::AccessDenied);
    assert_eq!(fs.namespace().api_calls().get(Operation::AssumeRole), 0);
    // The mounter reads them; SECRET_LINGER later the kernel is told to
    // drop their pages.
    let (size, _) = attributes(&fs, ino, false).await;
    assert_eq!(read_all(&fs, ino, OWNER).await.unwrap().len() as u64, size);
    settled(&recorder).await;
    tokio::time::sleep(SECRET_LINGER).await;
    assert_eq!(settled(&recorder).await, vec![Held::Inode(ino)]);
    // Another user now sees the mounter's session's size, still no bytes.
    let a = fs.clone().getattr(ino, None, OTHER).await.unwrap();
    assert_eq!(a.attr.size, size);
    a.replied();
    assert_eq!(fs.namespace().api_calls().get(Operation::AssumeRole), 1);
}

/// A readdirplus of `dir` as the kernel makes it: entries (name, inode,
/// lifetime, size) until the reply holds `room` entries, then told they
/// went out.
async fn readdirplus(
    fs: &Arc<Fs>,
    dir: u64,
    offset: u64,
    room: usize,
) -> Vec<(String, u64, Duration, u64)> {
    let page = fs.clone().readdirplus(dir, offset, OWNER).await.unwrap();
    let mut got = Vec::new();
    let sent = fs.fill_dir_plus(page, |ino, _, name, ttl, attr| {
        if got.len() == room {
            return true;
        }
        got.push((name.to_string(), ino, ttl, attr.size));
        false
    });
    sent.replied();
    got
}

#[tokio::test]
async fn readdirplus_answers_what_is_cached_and_waits_for_nothing_else() {
    // What a plain listing of the role's folder costs in IAM calls.
    async fn listed(fs: &Arc<Fs>, dir: u64) -> Vec<(String, u64)> {
        let page = fs.clone().readdir(dir, 0).await.unwrap();
        let mut names = Vec::new();
        fs.fill_dir(page, |ino, _, _, name| {
            names.push((name.to_string(), ino));
            false
        });
        names
    }
    let (_, plain, _) = filesystem();
    let roles = path(&plain, "roles").await;
    let r = listed(&plain, roles)
        .await
        .into_iter()
        .find(|e| e.0 == "r")
        .unwrap();
    let before = plain.namespace().api_calls().total();
    listed(&plain, r.1).await;
    let listing_calls = plain.namespace().api_calls().total() - before;

    let (_, fs, _) = filesystem();
    let roles = path(&fs, "roles").await;
    let listed = readdirplus(&fs, roles, 0, 100).await;
    let r = listed.iter().find(|e| e.0 == "r").unwrap();
    assert!(
        r.2 > Duration::ZERO,
        "a role folder's date is in the listing"
    );
    let before = fs.namespace().api_calls().total();
    let files = readdirplus(&fs, r.1, 0, 100).await;
    assert_eq!(
        fs.namespace().api_calls().total() - before,
        listing_calls,
        "no IAM call for the entries' attributes: {files:?}"
    );
    let stand_ins: Vec<_> = files[2..]
        .iter()
        .filter(|e| e.2 == Duration::ZERO)
        .collect();
    for e in &stand_ins {
        assert_eq!(e.3, 0, "a stand-in for a new inode: {e:?}");
    }

    // Once looked up, the same inode; once cached, real attributes.
    for e in &stand_ins {
        assert_eq!(lookup(&fs, r.1, &e.0).await, e.1, "{e:?}");
    }
    let warm = readdirplus(&fs, r.1, 0, 100).await;
    for e in &warm[2..] {
        assert!(e.2 > Duration::ZERO, "cached now: {e:?}");
    }
    let role_json = warm.iter().find(|e| e.0 == "role.json").unwrap();
    let content = fs
        .namespace()
        .read(&Node::EntityJson(Kind::Role, "r".into()))
        .await
        .unwrap();
    assert_eq!(role_json.3, content.len() as u64);
}

#[tokio::test]
async fn readdirplus_stands_in_for_documents_not_fetched_yet() {
    let (_, fs, _) = filesystem();
    let policies = path(&fs, "policies").await;
    fs.namespace()
        .children(&Node::PoliciesDir(crate::model::PolicyScope::Local))
        .await
        .unwrap();
    let listing_calls = fs.namespace().api_calls().snapshot();
    let entries = readdirplus(&fs, policies, 0, 100).await;
    assert_eq!(
        fs.namespace().api_calls().snapshot(),
        listing_calls,
        "no GetPolicyVersion for a listing"
    );
    let p = entries.iter().find(|e| e.0 == "p.json").unwrap();
    assert_eq!((p.2, p.3), (Duration::ZERO, 0), "{entries:?}");
    // The kernel looks the name up before using it: the real size.
    let entry = fs
        .clone()
        .lookup(policies, "p.json".into(), OWNER)
        .await
        .unwrap();
    assert_eq!(entry.ino, p.1);
    let doc = fs
        .namespace()
        .read(&Node::Policy(crate::model::PolicyScope::Local, "p".into()))
        .await
        .unwrap();
    assert_eq!(entry.attr.size, doc.len() as u64);
    entry.replied();
}

#[tokio::test]
async fn readdirplus_counts_a_lookup_for_each_entry_sent_and_none_for_the_rest() {
    let (_, fs, _) = filesystem();
    let role = path(&fs, "roles/r").await;
    let all = readdirplus(&fs, role, 0, 100).await;
    assert!(all.len() > 4, "{all:?}");
    // A reply with room for the dots and two entries: the kernel holds
    // those two, and asks again from the third.
    let part = readdirplus(&fs, role, 0, 4).await;
    assert_eq!(part.len(), 4);
    let rest = readdirplus(&fs, role, 4, 100).await;
    assert_eq!(part.len() + rest.len(), all.len());
    let first = &part[2];
    // Two readdirplus replies held it: two forgets free it.
    fs.forget_inode(first.1, 1);
    assert!(fs.clone().getattr(first.1, None, OWNER).await.is_ok());
    fs.forget_inode(first.1, 1);
    assert!(fs.clone().getattr(first.1, None, OWNER).await.is_err());
    // The third was sent once, in `all`; the refused one in `part` was not
    // counted.
    let third = &rest[0];
    fs.forget_inode(third.1, 1);
    fs.forget_inode(third.1, 1);
    assert!(fs.clone().getattr(third.1, None, OWNER).await.is_err());
}

#[tokio::test]
async fn readdirplus_stands_in_for_a_held_file_with_the_size_the_kernel_holds() {
    let (_, fs, _) = filesystem();
    let policies = path(&fs, "policies").await;
    let ino = lookup(&fs, policies, "p.json").await;
    let size = fs.clone().getattr(ino, None, OWNER).await.unwrap();
    let size = {
        let s = size.attr.size;
        size.replied();
        s
    };
    assert!(size > 0);
    // Everything cached is dropped (a refresh): the listing is fetched
    // again, the document is not, and the kernel still holds the file.
    fs.namespace().refresh();
    let calls = fs.namespace().api_calls().snapshot();
    let entries = readdirplus(&fs, policies, 0, 100).await;
    let held = entries.iter().find(|e| e.0 == "p.json").unwrap();
    assert_eq!(held.1, ino);
    assert_eq!(
        (held.2, held.3),
        (Duration::ZERO, size),
        "the size the kernel holds, asked again before use"
    );
    let after: u64 = fs.namespace().api_calls().total();
    let listing: u64 = calls.iter().map(|(_, n)| n).sum::<u64>() + 1;
    assert!(
        after <= listing,
        "only the listing was fetched: {:?}",
        fs.namespace().api_calls().snapshot()
    );
}

#[tokio::test]
async fn a_file_replaced_by_rename_keeps_its_size_for_its_open_readers() {
    let (_, fs, _) = filesystem();
    let policies = path(&fs, "policies").await;
    let old = lookup(&fs, policies, "p.json").await;
    let reader = read_open(&fs, old).await;
    let held = fs.read(reader.fh, 0, 1 << 20).unwrap();
    let tmp = fs
        .clone()
        .create(policies, ".p.json.tmp".into(), 0o644, OWNER)
        .await
        .unwrap();
    let tmp_ino = tmp.entry.ino;
    tmp.entry.replied();
    let longer = format!("{DOC2}\n\n\n\n");
    fs.write(tmp_ino, tmp.opened.fh, 0, longer.as_bytes(), OWNER)
        .unwrap();
    fs.release(tmp.opened.fh);
    fs.clone()
        .rename(
            policies,
            ".p.json.tmp".into(),
            policies,
            "p.json".into(),
            OWNER,
        )
        .await
        .unwrap();
    let size = |a: Attributes| {
        let size = a.attr.size;
        a.replied();
        size
    };
    let replaced = fs.clone().getattr(old, None, OWNER).await.unwrap();
    assert_eq!(
        size(replaced),
        held.len() as u64,
        "fstat on the reader's descriptor"
    );
    assert_eq!(fs.read(reader.fh, 0, 1 << 20).unwrap(), held);
    let new = fs.clone().getattr(tmp_ino, None, OWNER).await.unwrap();
    assert_ne!(size(new), held.len() as u64);
    fs.release(reader.fh);
    // With no descriptor left, the number means the file now at the name.
    let replaced = fs.clone().getattr(old, None, OWNER).await.unwrap();
    assert_ne!(size(replaced), held.len() as u64);
}

// ---- descriptors against names: a reference model --------------------------------

mod descriptors {
    //! Random sequences of opens, reads, fstat, saves in place, saves by
    //! rename, rm and re-creates of two managed policies, a role's inline
    //! policy and its tags.json (rm and create: not of tags.json), checked
    //! after every step
    //! against what a local filesystem does: a descriptor reads the bytes it
    //! opened; fstat of a file no name reaches any more (replaced by rename,
    //! or removed) gives the size of its newest descriptor's bytes; a name
    //! reads, and stats, what was last saved at it; after changes made
    //! behind the mount's back and a refresh, what a new mount reads.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// Each file's folder and name.
    const FILES: [(&str, &str); 4] = [
        ("policies", "p.json"),
        ("policies", "q.json"),
        ("roles/r/policies", "inline.json"),
        ("roles/r", "tags.json"),
    ];
    const TAGS: usize = 3;

    #[derive(Debug, Clone)]
    enum Op {
        Open(usize),
        Close(usize),
        SaveInPlace(usize, u8),
        RenameOver(usize, u8),
        Remove(usize),
        Create(usize, u8),
        /// Someone else changes file `n` in IAM.
        Behind(usize, u8),
        /// `.iamfs/refresh`.
        Refresh,
        /// Opens the `k`th inode number ever looked up, whether or not a
        /// name still reaches it (a lookup made before a rename, /proc/PID/fd).
        OpenAgain(usize),
    }

    fn op_s() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..4usize).prop_map(Op::Open),
            1 => (0..4usize).prop_map(Op::Close),
            2 => (0..4usize, 0..4u8).prop_map(|(n, v)| Op::SaveInPlace(n, v)),
            2 => (0..4usize, 0..4u8).prop_map(|(n, v)| Op::RenameOver(n, v)),
            1 => (0..TAGS).prop_map(Op::Remove),
            1 => (0..TAGS, 0..4u8).prop_map(|(n, v)| Op::Create(n, v)),
            1 => (0..4usize, 0..4u8).prop_map(|(n, v)| Op::Behind(n, v)),
            1 => Just(Op::Refresh),
            2 => (0..8usize).prop_map(Op::OpenAgain),
        ]
    }

    /// Version `v` of file `n`, of a length of its own.
    fn doc(n: usize, v: u8) -> String {
        if n == TAGS {
            return format!(r#"{{"v": "{}"}}"#, "x".repeat(v as usize * 7 + 1));
        }
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"V{}","Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}]}}"#,
            "x".repeat(v as usize * 7 + 1)
        )
    }

    struct Open {
        fh: u64,
        ino: u64,
        bytes: Vec<u8>,
    }

    struct Model {
        iam: Arc<MemoryIam>,
        fs: Arc<Fs>,
        /// Names changed behind the mount's back since the last refresh:
        /// they may read either version.
        unsure: std::collections::BTreeSet<usize>,
        /// Each file's folder.
        dirs: Vec<u64>,
        /// What each name reads now (None: no file there).
        at: BTreeMap<usize, Option<Vec<u8>>>,
        /// Inode numbers no name reaches any more.
        detached: Vec<u64>,
        opens: Vec<Open>,
        /// The inode number each name had when last looked up.
        ino_of: BTreeMap<usize, u64>,
        /// Every inode number looked up, and its file.
        seen: Vec<(u64, usize)>,
    }

    fn mount(iam: &Arc<MemoryIam>) -> Arc<Fs> {
        let ns = Namespace::new(
            iam.clone() as Arc<dyn Iam>,
            Settings::for_tests(Duration::from_secs(60)),
        );
        let fs = Fs::new(Arc::new(ns), OWNER);
        fs.set_invalidator(Arc::new(Recorder::default()));
        fs
    }

    /// What a mount made now reads at file `n` (None: no file there).
    async fn fresh_read(iam: &Arc<MemoryIam>, n: usize) -> Option<Vec<u8>> {
        let fs = mount(iam);
        let (dir, name) = FILES[n];
        let dir = path(&fs, dir).await;
        let entry = fs.clone().lookup(dir, name.into(), OWNER).await.ok()?;
        let ino = entry.ino;
        entry.replied();
        let opened = read_open(&fs, ino).await;
        Some(fs.read(opened.fh, 0, 1 << 20).unwrap())
    }

    impl Model {
        async fn new() -> Self {
            let iam = MemoryIam::default();
            iam.add_policy("p", "/", DOC)
                .add_policy("q", "/", DOC)
                .add_entity(Kind::Role, "r")
                .put_inline(Kind::Role, "r", "inline", DOC);
            let iam = Arc::new(iam);
            let fs = mount(&iam);
            let mut dirs = Vec::new();
            let mut at = BTreeMap::new();
            for (n, (dir, name)) in FILES.iter().enumerate() {
                dirs.push(path(&fs, dir).await);
                let ino = path(&fs, &format!("{dir}/{name}")).await;
                let opened = read_open(&fs, ino).await;
                at.insert(n, Some(fs.read(opened.fh, 0, 1 << 20).unwrap()));
                fs.release(opened.fh);
            }
            Self {
                iam,
                fs,
                unsure: Default::default(),
                dirs,
                at,
                detached: Vec::new(),
                opens: Vec::new(),
                ino_of: BTreeMap::new(),
                seen: Vec::new(),
            }
        }

        async fn lookup(&mut self, n: usize) -> Option<u64> {
            let entry = self
                .fs
                .clone()
                .lookup(self.dirs[n], FILES[n].1.into(), OWNER)
                .await
                .ok()?;
            let ino = entry.ino;
            entry.replied();
            self.ino_of.insert(n, ino);
            if !self.seen.contains(&(ino, n)) {
                self.seen.push((ino, n));
            }
            Some(ino)
        }

        /// Creates `name` in file `n`'s folder and writes version `v` of it:
        /// its number and open handle.
        async fn create_written(&self, n: usize, name: &str, v: u8) -> (u64, u64) {
            let fs = self.fs.clone();
            let made = fs
                .clone()
                .create(self.dirs[n], name.into(), 0o644, OWNER)
                .await
                .unwrap();
            let ino = made.entry.ino;
            made.entry.replied();
            fs.write(ino, made.opened.fh, 0, doc(n, v).as_bytes(), OWNER)
                .unwrap();
            (ino, made.opened.fh)
        }

        /// The inode at name `n` stops being reached by it.
        fn detach(&mut self, n: usize) {
            if let Some(ino) = self.ino_of.remove(&n) {
                self.detached.push(ino);
            }
        }

        async fn step(&mut self, op: Op) {
            let fs = self.fs.clone();
            match op {
                Op::Behind(n, v) => {
                    if self.at[&n].is_none() {
                        return; // nothing there to change
                    }
                    let text = doc(n, v);
                    match n {
                        TAGS => {
                            let value = "y".repeat(v as usize * 5 + 1);
                            self.iam.set_tags(Kind::Role, "r", &[("b", &value)]);
                        }
                        2 => {
                            self.iam.put_inline(Kind::Role, "r", "inline", &text);
                        }
                        _ => {
                            let name = FILES[n].1.trim_end_matches(".json");
                            self.iam.add_policy(name, "/", &text);
                        }
                    }
                    self.unsure.insert(n);
                }
                Op::Refresh => {
                    let refresh = path(&fs, ".iamfs/refresh").await;
                    let opened = fs.clone().open(refresh, true, true, OWNER).await.unwrap();
                    fs.write(refresh, opened.fh, 0, b"1\n", OWNER).unwrap();
                    fs.release(opened.fh);
                    fs.clone().refresh().await;
                    for n in 0..FILES.len() {
                        if self.at[&n].is_some() {
                            let now = fresh_read(&self.iam, n).await;
                            self.at.insert(n, now);
                        }
                    }
                    self.unsure.clear();
                }
                Op::OpenAgain(k) => {
                    if self.seen.is_empty() {
                        return;
                    }
                    let (ino, n) = self.seen[k % self.seen.len()];
                    let held = self.opens.iter().rev().find(|o| o.ino == ino);
                    let want = match held {
                        // Its other descriptors' bytes, wherever its name went.
                        Some(o) if self.detached.contains(&ino) => Some(o.bytes.clone()),
                        // No name reaches it and no descriptor holds it: what
                        // it reads is not modelled (see Inodes::rename).
                        _ if self.detached.contains(&ino) => return,
                        _ if self.unsure.contains(&n) => return,
                        _ => self.at[&n].clone(),
                    };
                    let Ok(opened) = fs.clone().open(ino, false, false, OWNER).await else {
                        assert!(want.is_none(), "{} could not be opened again", FILES[n].1);
                        return;
                    };
                    let bytes = fs.read(opened.fh, 0, 1 << 20).unwrap();
                    assert_eq!(Some(&bytes), want.as_ref(), "{} opened again", FILES[n].1);
                    self.opens.push(Open {
                        fh: opened.fh,
                        ino,
                        bytes,
                    });
                }
                Op::Open(n) => {
                    let Some(ino) = self.lookup(n).await else {
                        assert!(self.at[&n].is_none(), "{} vanished", FILES[n].1);
                        return;
                    };
                    let opened = fs.clone().open(ino, false, false, OWNER).await.unwrap();
                    let bytes = fs.read(opened.fh, 0, 1 << 20).unwrap();
                    if !self.unsure.contains(&n) {
                        assert_eq!(Some(&bytes), self.at[&n].as_ref(), "{} reads", FILES[n].1);
                    }
                    self.opens.push(Open {
                        fh: opened.fh,
                        ino,
                        bytes,
                    });
                }
                Op::Close(k) => {
                    if !self.opens.is_empty() {
                        let open = self.opens.remove(k % self.opens.len());
                        fs.release(open.fh);
                    }
                }
                Op::SaveInPlace(n, v) => {
                    let Some(ino) = self.lookup(n).await else {
                        return;
                    };
                    save(&fs, ino, &doc(n, v)).await.unwrap();
                    // What was written, as written.
                    self.at.insert(n, Some(doc(n, v).into_bytes()));
                    self.unsure.remove(&n);
                }
                Op::RenameOver(n, v) => {
                    let tmp = format!(".{}.tmp", FILES[n].1);
                    let (ino, fh) = self.create_written(n, &tmp, v).await;
                    fs.release(fh);
                    fs.clone()
                        .rename(
                            self.dirs[n],
                            tmp.into(),
                            self.dirs[n],
                            FILES[n].1.into(),
                            OWNER,
                        )
                        .await
                        .unwrap();
                    self.detach(n);
                    self.ino_of.insert(n, ino);
                    // What was written, as written.
                    self.at.insert(n, Some(doc(n, v).into_bytes()));
                    self.unsure.remove(&n);
                }
                Op::Remove(n) => {
                    if self.lookup(n).await.is_none() {
                        return;
                    }
                    fs.clone()
                        .unlink(self.dirs[n], FILES[n].1.into(), OWNER)
                        .await
                        .unwrap();
                    self.detach(n);
                    self.at.insert(n, None);
                    self.unsure.remove(&n);
                }
                Op::Create(n, v) => {
                    if self.lookup(n).await.is_some() {
                        return;
                    }
                    let (ino, fh) = self.create_written(n, FILES[n].1, v).await;
                    fs.clone().commit("flush", fh).await.unwrap();
                    fs.release(fh);
                    self.ino_of.insert(n, ino);
                    // What was written, as written.
                    self.at.insert(n, Some(doc(n, v).into_bytes()));
                    self.unsure.remove(&n);
                }
            }
        }

        async fn check(&mut self) {
            let fs = self.fs.clone();
            for open in &self.opens {
                assert_eq!(fs.read(open.fh, 0, 1 << 20).unwrap(), open.bytes);
                let through = fs.clone().getattr(open.ino, Some(open.fh), OWNER).await;
                let through = through.unwrap();
                assert_eq!(through.attr.size, open.bytes.len() as u64, "fstat with fh");
                through.replied();
            }
            for &ino in &self.detached {
                let Some(newest) = self.opens.iter().rev().find(|o| o.ino == ino) else {
                    continue; // no descriptor reaches it
                };
                let attr = fs.clone().getattr(ino, None, OWNER).await.unwrap();
                assert_eq!(
                    attr.attr.size,
                    newest.bytes.len() as u64,
                    "fstat of a file no name reaches"
                );
                attr.replied();
            }
            for (n, (_, name)) in FILES.iter().enumerate() {
                if self.unsure.contains(&n) {
                    continue;
                }
                match (self.lookup(n).await, &self.at[&n]) {
                    (Some(ino), Some(bytes)) => {
                        let attr = fs.clone().getattr(ino, None, OWNER).await.unwrap();
                        assert_eq!(attr.attr.size, bytes.len() as u64, "stat {name}");
                        attr.replied();
                    }
                    (None, None) => {}
                    (got, want) => panic!("{name}: {got:?} against {:?}", want.is_some()),
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("REFTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn descriptors_keep_what_they_opened(ops in prop::collection::vec(op_s(), 1..20)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            rt.block_on(async {
                let mut model = Model::new().await;
                for op in ops {
                    model.step(op).await;
                    model.check().await;
                }
            });
        }
    }
}
