//! Reference-model tests, shaped like awslabs/mountpoint-s3's reftests
//! (`mountpoint-s3-fs/tests/reftests/`): proptest generates sequences of
//! operations (`Op`, printed and shrunk as readable steps), a harness
//! applies each one both to the namespace core (over the in-memory IAM) and
//! to a reference model made of plain maps, and after every step compares:
//!
//! - the result: success, or the same error kind the model predicts;
//! - IAM (the memory backend, read through its API) with the model's IAM,
//!   versions of managed policies counted;
//! - the namespace's view (listings, lookups of every name of the universe,
//!   every document read and parsed, links read, scratch files byte for
//!   byte, `stat` size = bytes read, the tags and trust policy role.json
//!   and user.json show) with the view the model derives;
//! - after a save, that the name reads what was written; after the rm
//!   graces pass, which deletes ran and how many refusals were logged.
//!
//! The universe is small and fixed, so that sequences collide: two users,
//! one group, two roles, three managed policies (one AWS-managed besides),
//! two inline policy names and the scratch names editors make.
//!
//! The model: `IamModel` is what IAM holds (principals with their inline
//! policies, attachments, tags, trust policy and keys; memberships; managed
//! policies with their version count); `Local` is what the mount holds
//! beside it (scratch files, names hidden by a backup rename, names in an
//! editor's recovery, bytes last saved, unsaved created documents, rm'd
//! documents waiting for their grace, creates replacing them). The view is
//! derived from both. rm is modelled in `model_unlink` and `model_settle`.
//!
//! Changes made behind the mount's back (straight to the memory backend) are
//! visible only once the cache is refreshed: until `Op::Refresh`, a path may
//! show any value the model gave it, or IAM held for it, since the last
//! refresh; operations on entities created or deleted behind the mount's
//! back are skipped, and nothing below them is checked, until the refresh.
//! Saves are still checked exactly: a save compares with what IAM holds now.
//!
//! Where the model follows what HEAD does rather than what the README
//! promises, the place is marked "HEAD (bug"; the bugs the tests found are
//! the `#[ignore]`d tests at the end, which model the README instead
//! (`run_strict`) or call the namespace directly.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{Created, DraftRef, Namespace, Settings, UNLINK_GRACE};
use crate::document;
use crate::error::{ErrorKind, IamError};
use crate::iam::faulty::{Call, Fault, Faulty, Injected, Rule};
use crate::iam::memory::MemoryIam;
use crate::iam::Operation;
use crate::iam::{collect_pages, Iam, Kind, PolicyScope, Tag};
use crate::node::{kind_dir, Node};

// ---- the universe -------------------------------------------------------------

const GROUP: &str = "devs";
const MANAGED: [&str; 3] = ["p1", "p2", "p3"];
const AWS_POLICY: &str = "AwsRead";
const INLINE: [&str; 2] = ["a", "b"];
const BAD_NAME: &str = "bad name";
const LOCK_TARGET: &str = "me@host.4242:1700000000";

const PRINCIPALS: [(Kind, &str); 5] = [
    (Kind::User, "alice"),
    (Kind::User, "bob"),
    (Kind::Group, GROUP),
    (Kind::Role, "app"),
    (Kind::Role, "ci"),
];

/// A document the mount can save: a file whose save is an IAM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Doc {
    Managed(&'static str),
    Inline(Kind, &'static str, &'static str),
    Trust(&'static str),
    Tags(Kind, &'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DocKind {
    Policy,
    Trust,
    Tags,
}

impl Doc {
    fn all() -> Vec<Doc> {
        let mut all: Vec<Doc> = MANAGED.iter().map(|p| Doc::Managed(p)).collect();
        for (kind, e) in PRINCIPALS {
            all.extend(INLINE.iter().map(|p| Doc::Inline(kind, e, p)));
        }
        for (kind, e) in PRINCIPALS {
            if kind == Kind::Role {
                all.push(Doc::Trust(e));
            }
            if kind != Kind::Group {
                all.push(Doc::Tags(kind, e));
            }
        }
        all
    }

    fn owner(self) -> Option<(Kind, &'static str)> {
        match self {
            Doc::Managed(_) => None,
            Doc::Inline(kind, e, _) | Doc::Tags(kind, e) => Some((kind, e)),
            Doc::Trust(r) => Some((Kind::Role, r)),
        }
    }

    fn dir(self) -> String {
        match self {
            Doc::Managed(_) => "policies".into(),
            Doc::Inline(kind, e, _) => format!("{}/{e}/policies", kind_dir(kind)),
            Doc::Trust(r) => format!("roles/{r}"),
            Doc::Tags(kind, e) => format!("{}/{e}", kind_dir(kind)),
        }
    }

    fn file(self) -> String {
        match self {
            Doc::Managed(p) | Doc::Inline(_, _, p) => format!("{p}.json"),
            Doc::Trust(_) => "trust-policy.json".into(),
            Doc::Tags(..) => "tags.json".into(),
        }
    }

    fn path(self) -> String {
        format!("{}/{}", self.dir(), self.file())
    }

    fn kind(self) -> DocKind {
        match self {
            Doc::Managed(_) | Doc::Inline(..) => DocKind::Policy,
            Doc::Trust(_) => DocKind::Trust,
            Doc::Tags(..) => DocKind::Tags,
        }
    }
}

/// Editors' and tools' names beside a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scratch {
    /// `X.json~`: vim's and emacs's backup.
    Tilde,
    /// `.X.json.swp`: vim's swap file.
    Swap,
    /// vim's `4913` probe.
    Probe,
    /// a temp file (`sed -i`, `jq > tmp && mv`).
    Tmp,
    /// `.#X.json`: emacs's lock, a symlink.
    Lock,
}

impl Scratch {
    const FILES: [Scratch; 4] = [Scratch::Tilde, Scratch::Swap, Scratch::Probe, Scratch::Tmp];
    const ALL: [Scratch; 5] = [
        Scratch::Tilde,
        Scratch::Swap,
        Scratch::Probe,
        Scratch::Tmp,
        Scratch::Lock,
    ];

    fn name(self, doc: Doc) -> String {
        let f = doc.file();
        match self {
            Scratch::Tilde => format!("{f}~"),
            Scratch::Swap => format!(".{f}.swp"),
            Scratch::Probe => "4913".into(),
            Scratch::Tmp => "tmp1".into(),
            Scratch::Lock => format!(".#{f}"),
        }
    }
}

// ---- contents -----------------------------------------------------------------

/// What is written, relative to the kind of the document it is written for.
#[derive(Debug, Clone, Copy)]
enum Content {
    /// A valid document of the target's kind, compact (number picks which).
    Valid(u8),
    /// The same, pretty-printed.
    Pretty(u8),
    /// A valid document of another kind (a trust policy in an identity
    /// policy's place, a policy in tags.json...).
    OtherKind,
    BadJson,
    /// JSON with a grammar error (`"Effect": "allow"`, a tag that is a number).
    BadGrammar,
    /// Over IAM's size limit (or 60 tags).
    TooLarge,
    Empty,
}

fn policy_doc(i: u8) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": format!("s3:Op{}", i % 4), "Resource": "*"}]})
}

fn trust_doc(i: u8) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": format!("svc{}.amazonaws.com", i % 4)},
        "Action": "sts:AssumeRole"}]})
}

fn tags_doc(i: u8) -> Value {
    match i % 4 {
        0 => json!({}),
        1 => json!({"team": "blue"}),
        2 => json!({"team": "red", "env": "dev"}),
        _ => json!({"env": "prod"}),
    }
}

fn default_trust() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]})
}

fn valid_doc(kind: DocKind, i: u8) -> Value {
    match kind {
        DocKind::Policy => policy_doc(i),
        DocKind::Trust => trust_doc(i),
        DocKind::Tags => tags_doc(i),
    }
}

impl Content {
    fn bytes(self, kind: DocKind) -> Vec<u8> {
        match self {
            Content::Valid(i) => valid_doc(kind, i).to_string().into_bytes(),
            Content::Pretty(i) => document::render(&valid_doc(kind, i)),
            Content::OtherKind => match kind {
                DocKind::Policy => trust_doc(0),
                DocKind::Trust | DocKind::Tags => policy_doc(0),
            }
            .to_string()
            .into_bytes(),
            Content::BadJson => br#"{"Version": "2012-10-17", "Statement": ["#.to_vec(),
            Content::BadGrammar => match kind {
                DocKind::Tags => json!({"team": 5}),
                DocKind::Policy => json!({"Version": "2012-10-17", "Statement": [
                    {"Effect": "allow", "Action": "s3:*", "Resource": "*"}]}),
                DocKind::Trust => json!({"Version": "2012-10-17", "Statement": [
                    {"Effect": "allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}),
            }
            .to_string()
            .into_bytes(),
            Content::TooLarge => match kind {
                DocKind::Tags => Value::Object(
                    (0..60)
                        .map(|i| (format!("k{i}"), Value::from("v")))
                        .collect(),
                ),
                DocKind::Policy | DocKind::Trust => {
                    let actions: Vec<String> = (0..600)
                        .map(|i| format!("s3:GetObjectVersionTagging{i}"))
                        .collect();
                    let mut doc = valid_doc(kind, 0);
                    doc["Statement"][0]["Action"] = json!(actions);
                    doc
                }
            }
            .to_string()
            .into_bytes(),
            Content::Empty => Vec::new(),
        }
    }
}

/// The model's own judgement of a document, for the shapes generated here:
/// the parsed document if a save of it is valid, None if the local checks
/// must refuse it.
fn classify(bytes: &[u8], kind: DocKind) -> Option<Value> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let size = bytes.iter().filter(|b| !b.is_ascii_whitespace()).count();
    let statement_ok = |principal: bool| {
        v.get("Version") == Some(&json!("2012-10-17"))
            && v["Statement"].as_array().is_some_and(|s| {
                !s.is_empty()
                    && s.iter().all(|st| {
                        matches!(
                            st.get("Effect").and_then(Value::as_str),
                            Some("Allow" | "Deny")
                        ) && st.get("Action").is_some()
                            && st.get("Principal").is_some() == principal
                            && (principal || st.get("Resource").is_some())
                    })
            })
    };
    let ok = match kind {
        DocKind::Policy => size <= 2048 && statement_ok(false),
        DocKind::Trust => size <= 2048 && statement_ok(true),
        DocKind::Tags => v.as_object().is_some_and(|m| {
            m.len() <= 50
                && m.iter()
                    .all(|(k, v)| !k.is_empty() && !k.starts_with("aws:") && v.is_string())
        }),
    };
    ok.then_some(v)
}

fn write_at(buf: &mut Vec<u8>, offset: usize, data: &[u8]) {
    if buf.len() < offset + data.len() {
        buf.resize(offset + data.len(), 0);
    }
    buf[offset..offset + data.len()].copy_from_slice(data);
}

// ---- the reference model ------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
struct PrincipalModel {
    inline: BTreeMap<String, Value>,
    attached: BTreeSet<String>,
    tags: BTreeMap<String, String>,
    trust: Option<Value>,
    keys: usize,
}

#[derive(Debug, Clone, PartialEq)]
struct ManagedModel {
    doc: Value,
    /// Versions IAM keeps (the default one included), at most 5.
    versions: usize,
}

/// What IAM holds.
#[derive(Debug, Clone, PartialEq, Default)]
struct IamModel {
    principals: BTreeMap<(Kind, String), PrincipalModel>,
    /// (user, group)
    members: BTreeSet<(String, String)>,
    managed: BTreeMap<String, ManagedModel>,
}

impl IamModel {
    fn initial() -> Self {
        let mut m = IamModel::default();
        for (kind, name) in PRINCIPALS {
            m.principals.insert(
                (kind, name.into()),
                PrincipalModel {
                    trust: (kind == Kind::Role).then(default_trust),
                    ..Default::default()
                },
            );
        }
        fn p<'a>(m: &'a mut IamModel, kind: Kind, name: &str) -> &'a mut PrincipalModel {
            m.principals.get_mut(&(kind, name.to_string())).unwrap()
        }
        let alice = p(&mut m, Kind::User, "alice");
        alice.inline.insert("a".into(), policy_doc(0));
        alice.attached.insert("p1".into());
        alice.tags.insert("team".into(), "blue".into());
        alice.keys = 1;
        let devs = p(&mut m, Kind::Group, GROUP);
        devs.inline.insert("a".into(), policy_doc(1));
        devs.attached.insert(AWS_POLICY.into());
        let app = p(&mut m, Kind::Role, "app");
        app.inline.insert("a".into(), policy_doc(2));
        app.attached.insert("p2".into());
        app.tags.insert("env".into(), "prod".into());
        m.members.insert(("alice".into(), GROUP.into()));
        for (name, i) in [("p1", 0), ("p2", 1)] {
            m.managed.insert(
                name.into(),
                ManagedModel {
                    doc: policy_doc(i),
                    versions: 1,
                },
            );
        }
        m
    }

    /// The same account in the memory backend.
    fn backend(&self) -> MemoryIam {
        let iam = MemoryIam::default();
        iam.add_policy(AWS_POLICY, "/aws/", &policy_doc(3).to_string());
        for (name, m) in &self.managed {
            iam.add_policy(name, "/", &m.doc.to_string());
        }
        for ((kind, name), p) in &self.principals {
            iam.add_entity(*kind, name);
            let tags: Vec<(&str, &str)> = p
                .tags
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            iam.set_tags(*kind, name, &tags);
            for (policy, doc) in &p.inline {
                iam.put_inline(*kind, name, policy, &doc.to_string());
            }
            for policy in &p.attached {
                iam.attach(*kind, name, policy);
            }
            for i in 0..p.keys {
                iam.add_access_key(name, &format!("AKIA{i:016}"));
            }
        }
        for (user, group) in &self.members {
            iam.add_to_group(user, group);
        }
        iam
    }

    fn principal(&self, kind: Kind, name: &str) -> Option<&PrincipalModel> {
        self.principals.get(&(kind, name.to_string()))
    }

    fn principal_mut(&mut self, kind: Kind, name: &str) -> Option<&mut PrincipalModel> {
        self.principals.get_mut(&(kind, name.to_string()))
    }

    fn exists(&self, kind: Kind, name: &str) -> bool {
        self.principal(kind, name).is_some()
    }

    /// The document IAM holds for `doc`, if any.
    fn document(&self, doc: Doc) -> Option<Value> {
        match doc {
            Doc::Managed(p) => self.managed.get(p).map(|m| m.doc.clone()),
            Doc::Inline(kind, e, p) => self.principal(kind, e)?.inline.get(p).cloned(),
            Doc::Trust(r) => self.principal(Kind::Role, r)?.trust.clone(),
            Doc::Tags(kind, e) => Some(Value::Object(
                self.principal(kind, e)?
                    .tags
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect(),
            )),
        }
    }

    /// A save of `bytes` to `doc`, as HEAD's save paths check and apply it
    /// (the order of the checks decides which error wins).
    fn save(&mut self, doc: Doc, bytes: &[u8]) -> Outcome {
        let invalid = ErrorKind::InvalidInput;
        match doc {
            Doc::Inline(kind, e, p) => {
                // The entity's other policies are read (for the size limit) first.
                if !self.exists(kind, e) {
                    return Err(ErrorKind::NoSuchEntity);
                }
                let v = classify(bytes, DocKind::Policy).ok_or(invalid)?;
                self.principal_mut(kind, e)
                    .unwrap()
                    .inline
                    .insert(p.into(), v);
            }
            Doc::Managed(p) => {
                let v = classify(bytes, DocKind::Policy).ok_or(invalid)?;
                match self.managed.get_mut(p) {
                    None => {
                        self.managed.insert(
                            p.into(),
                            ManagedModel {
                                doc: v,
                                versions: 1,
                            },
                        );
                    }
                    Some(m) if m.doc == v => {}
                    Some(m) => {
                        // The oldest non-default version makes room for the sixth.
                        m.doc = v;
                        m.versions = (m.versions + 1).min(5);
                    }
                }
            }
            Doc::Trust(r) => {
                let v = classify(bytes, DocKind::Trust).ok_or(invalid)?;
                let p = self
                    .principal_mut(Kind::Role, r)
                    .ok_or(ErrorKind::NoSuchEntity)?;
                p.trust = Some(v);
            }
            Doc::Tags(kind, e) => {
                let v = classify(bytes, DocKind::Tags).ok_or(invalid)?;
                let p = self.principal_mut(kind, e).ok_or(ErrorKind::NoSuchEntity)?;
                p.tags = v
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
            }
        }
        Ok(())
    }

    fn attached_anywhere(&self, policy: &str) -> bool {
        self.principals
            .values()
            .any(|p| p.attached.contains(policy))
    }

    fn empty(&self, kind: Kind, name: &str) -> bool {
        let p = self.principal(kind, name).unwrap();
        p.inline.is_empty()
            && p.attached.is_empty()
            && p.keys == 0
            && !self.members.iter().any(|(u, g)| {
                (kind == Kind::User && u == name) || (kind == Kind::Group && g == name)
            })
    }
}

/// The entries where IAM and the model differ, one a line.
fn iam_diff(actual: &IamModel, model: &IamModel) -> String {
    fn side<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
        out: &mut Vec<String>,
        a: &BTreeMap<K, V>,
        m: &BTreeMap<K, V>,
    ) {
        for key in a.keys().chain(m.keys()).collect::<BTreeSet<_>>() {
            let (x, y) = (a.get(key), m.get(key));
            if x != y {
                out.push(format!("  {key:?}\n    IAM   {x:?}\n    model {y:?}"));
            }
        }
    }
    let mut out = Vec::new();
    side(&mut out, &actual.principals, &model.principals);
    side(&mut out, &actual.managed, &model.managed);
    if actual.members != model.members {
        out.push(format!(
            "  members\n    IAM   {:?}\n    model {:?}",
            actual.members, model.members
        ));
    }
    out.join("\n")
}

type Outcome = std::result::Result<(), ErrorKind>;

#[derive(Debug, Clone, PartialEq)]
enum ScratchModel {
    File(Vec<u8>),
    Link(String),
}

/// What the mount holds beside IAM.
#[derive(Debug, Clone, Default)]
struct Local {
    /// (folder path, name)
    scratch: BTreeMap<(String, String), ScratchModel>,
    /// Documents renamed onto a backup name: hidden until written again or
    /// refreshed. Value: where the backup went.
    detached: BTreeMap<Doc, (String, String)>,
    /// Documents whose save after a backup rename was refused: an unlink
    /// within the recovery window empties the name again instead of deleting.
    recovering: BTreeMap<Doc, (String, String)>,
    /// Bytes last saved, shown until the cache TTL passes.
    overrides: BTreeMap<Doc, Vec<u8>>,
    /// Created documents not saved yet: name -> handle id.
    drafts: BTreeMap<Doc, u64>,
    /// Documents removed by rm, hidden, whose IAM delete waits for its grace
    /// (`settle_pending_deletes`).
    pending: BTreeSet<Doc>,
    /// Documents created again while their delete was pending: their save
    /// is an update, and if the create is closed unsaved the delete goes on.
    replacing: BTreeSet<Doc>,
}

// ---- views --------------------------------------------------------------------

/// What one path shows.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Dir(BTreeSet<String>),
    /// A document, parsed (compared as JSON, whatever the layout).
    Json(Value),
    /// A document that does not parse (an open draft), or a scratch file.
    Bytes(String),
    Link(String),
    /// The tags user.json / role.json show (`<file>#Tags`); their trust
    /// policy is `<file>#AssumeRolePolicyDocument`, each a path of its own.
    Tags(BTreeMap<String, String>),
    Absent,
}

fn seen_doc(bytes: &[u8]) -> Seen {
    serde_json::from_slice(bytes)
        .map(Seen::Json)
        .unwrap_or_else(|_| Seen::Bytes(String::from_utf8_lossy(bytes).into_owned()))
}

fn seen_scratch(bytes: &[u8]) -> Seen {
    Seen::Bytes(String::from_utf8_lossy(bytes).into_owned())
}

type View = BTreeMap<String, Seen>;

fn static_names(kind: Kind) -> Vec<&'static str> {
    match kind {
        Kind::User => vec![
            "user.json",
            "policies",
            "attached",
            "groups",
            "access-keys.json",
            "mfa-devices.json",
            "login-profile.json",
            "tags.json",
        ],
        Kind::Group => vec!["group.json", "policies", "attached", "members"],
        Kind::Role => vec![
            "role.json",
            "policies",
            "attached",
            "trust-policy.json",
            "settings.json",
            "instance-profiles",
            "tags.json",
        ],
    }
}

fn docs_in(dir: &str) -> Vec<Doc> {
    Doc::all().into_iter().filter(|d| d.dir() == dir).collect()
}

/// The entity a folder path belongs to (`users/alice/policies` -> alice).
fn dir_owner(dir: &str) -> Option<(Kind, String)> {
    let mut parts = dir.split('/');
    let kind = Kind::ALL
        .into_iter()
        .find(|k| Some(kind_dir(*k)) == parts.clone().next())?;
    parts.next();
    Some((kind, parts.next()?.to_string()))
}

fn link_target(policy: &str) -> String {
    if policy == AWS_POLICY {
        format!("../../../aws-policies/{policy}.json")
    } else {
        format!("../../../policies/{policy}.json")
    }
}

// ---- operations ---------------------------------------------------------------

/// Changes made in IAM behind the mount's back.
#[derive(Debug, Clone)]
enum Behind {
    PutInline(Kind, &'static str, &'static str, u8),
    DeleteInline(Kind, &'static str, &'static str),
    NewPolicyVersion(&'static str, u8),
    TagRole(&'static str, u8),
    /// Removes the user's policies, attachments, memberships and keys, then the user.
    DeleteUser(&'static str),
    CreateUser(&'static str),
}

#[derive(Debug, Clone)]
enum Op {
    // -- documents, as the kernel drives them
    /// open(O_WRONLY|O_CREAT[|O_TRUNC]), write at 0, close (flush + release).
    Save {
        doc: Doc,
        content: Content,
        trunc: bool,
    },
    /// open(O_WRONLY|O_CREAT[|O_TRUNC]) held open (at most three at once).
    Open {
        doc: Doc,
        trunc: bool,
    },
    /// pwrite at offset 0 to the `handle`th open file (modulo how many).
    Write {
        handle: usize,
        content: Content,
    },
    /// ftruncate(0) on an open file.
    Truncate {
        handle: usize,
    },
    Fsync {
        handle: usize,
    },
    /// close(): flush (the commit) and release.
    Close {
        handle: usize,
    },
    /// rm of a document.
    Unlink {
        doc: Doc,
    },
    // -- editors' files
    /// Writes a whole scratch file beside `doc` (created or O_TRUNC).
    WriteScratch {
        doc: Doc,
        scratch: Scratch,
        content: Content,
    },
    /// mv scratch doc: the save of sed -i, rsync, os.replace.
    RenameOver {
        doc: Doc,
        scratch: Scratch,
    },
    /// mv doc scratch: vim's and emacs's backup step.
    Backup {
        doc: Doc,
        scratch: Scratch,
    },
    UnlinkScratch {
        doc: Doc,
        scratch: Scratch,
    },
    /// ln -s me@host .#X.json: emacs's lock.
    LockLink {
        doc: Doc,
    },
    /// vim: probe 4913, rename to X~, create X, write, close, rm X~; on a
    /// refused save its recovery: rm X, mv X~ X.
    VimSave {
        doc: Doc,
        content: Content,
    },
    /// sed -i: write a temp file, rename it over; rm the temp if that fails.
    SedSave {
        doc: Doc,
        content: Content,
    },
    // -- folders and links
    Mkdir {
        kind: Kind,
        name: &'static str,
    },
    Rmdir {
        kind: Kind,
        name: &'static str,
    },
    /// ln -s ../../../policies/P.json <entity>/attached/P (misnamed: link named otherwise).
    Attach {
        kind: Kind,
        entity: &'static str,
        policy: &'static str,
        misnamed: bool,
    },
    Detach {
        kind: Kind,
        entity: &'static str,
        policy: &'static str,
    },
    /// ln -s into users/U/groups/ or groups/G/members/.
    Join {
        user: &'static str,
        from_group: bool,
    },
    Leave {
        user: &'static str,
        from_group: bool,
    },
    /// The grace of every rm passes: the deferred IAM deletes run.
    Settle,
    /// rm, and its grace passes.
    RmNow {
        doc: Doc,
    },
    // -- the world
    Behind(Behind),
    /// `.iamfs/refresh`.
    Refresh,
    /// One IAM call fails with `fault` during `op` (the checks between its
    /// steps are not counted).
    Faulted {
        target: Target,
        fault: Fault,
        op: Box<Op>,
    },
}

/// Which call a `Faulted` op fails.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The first call of this operation.
    Call(Call),
    /// The nth IAM call made (0: the first), whatever it is.
    Nth(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// 60 s cache; changes behind the mount's back and refreshes.
    Cached,
    /// A zero TTL: every read goes to IAM, as if the TTL had just passed.
    TtlZero,
    /// 60 s cache; IAM calls fail on command.
    Faulty,
}

// ---- the harness --------------------------------------------------------------

struct OpenHandle {
    id: u64,
    doc: Doc,
    node: Node,
    draft: DraftRef,
    /// The model's copy of what the file holds.
    bytes: Vec<u8>,
    dirty: bool,
    failed: Option<ErrorKind>,
    /// Its name was removed or renamed away while it was open: its close
    /// saves nothing, as writes to an unlinked file.
    nameless: bool,
}

struct Harness {
    variant: Variant,
    ns: Namespace,
    mem: Arc<MemoryIam>,
    faulty: Option<Arc<Faulty<MemoryIam>>>,
    iam: IamModel,
    local: Local,
    handles: Vec<OpenHandle>,
    next_id: u64,
    /// Changes were made behind the mount's back since the last refresh.
    stale: bool,
    /// The model's views since the last refresh, and what IAM held of each
    /// document: what a path may show while stale.
    history: Vec<View>,
    /// Entities created or deleted (or changed in what they list) behind
    /// the mount's back: operations on them are skipped until a refresh.
    ambiguous: BTreeSet<(Kind, String)>,
    /// The steps so far, for failure messages.
    trace: Vec<String>,
    /// The failure injected during this step.
    injected: std::cell::Cell<Option<Injected>>,
    /// Model what the README promises where HEAD departs from it (the bug
    /// tests), instead of what HEAD does.
    strict: bool,
}

fn settings(ttl: Duration) -> Settings {
    Settings::for_tests(ttl)
}

fn kind_of(result: &Result<impl Sized, IamError>) -> Outcome {
    match result {
        Ok(_) => Ok(()),
        Err(e) => Err(e.kind),
    }
}

impl Harness {
    fn new(variant: Variant) -> Self {
        let iam = IamModel::initial();
        let mem = Arc::new(iam.backend());
        let ttl = if variant == Variant::TtlZero {
            Duration::ZERO
        } else {
            Duration::from_secs(60)
        };
        let (backend, faulty): (Arc<dyn Iam>, _) = if variant == Variant::Faulty {
            let f = Arc::new(Faulty::new(mem.clone()));
            (f.clone(), Some(f))
        } else {
            (mem.clone(), None)
        };
        Self {
            variant,
            ns: Namespace::new(backend, settings(ttl)),
            mem,
            faulty,
            iam,
            local: Local::default(),
            handles: Vec::new(),
            next_id: 0,
            stale: false,
            history: Vec::new(),
            ambiguous: BTreeSet::new(),
            trace: Vec::new(),
            injected: std::cell::Cell::new(None),
            strict: true,
        }
    }

    fn ttl_zero(&self) -> bool {
        self.variant == Variant::TtlZero
    }

    #[track_caller]
    fn fail(&self, message: String) -> ! {
        panic!(
            "{message}\n-- steps:\n{}",
            self.trace
                .iter()
                .enumerate()
                .map(|(i, s)| format!("{i:3} {s}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    fn note(&mut self, s: String) {
        self.trace.push(s);
    }

    /// The failure injected during the last SUT call, if any.
    fn take_fault(&self) -> Option<ErrorKind> {
        let f = self.faulty.as_ref()?;
        let injected = f.take_injected();
        assert!(injected.len() <= 1, "{injected:?}");
        let first = injected.first().copied();
        if first.is_some() {
            self.injected.set(first);
        }
        first.map(|i| i.fault.kind())
    }

    /// After a failure was injected: what IAM may hold that the model does
    /// not, because HEAD's changes are several calls and the failed call
    /// came after others had succeeded.
    async fn after_injected_failure(&mut self, injected: Injected) {
        let actual = self.iam_state().await;
        // Non-default policy versions are not in the tree: a save that made
        // room (DeletePolicyVersion) before its CreatePolicyVersion failed,
        // or an rm whose DeletePolicy failed after the versions went, leaves
        // fewer. Taken as IAM has it.
        for (name, m) in self.iam.managed.iter_mut() {
            if let Some(a) = actual.managed.get(name) {
                if a.doc == m.doc && a.versions != m.versions {
                    self.trace.push(format!(
                        "   (IAM keeps {} versions of {name}, not {}, after the failed call)",
                        a.versions, m.versions
                    ));
                    m.versions = a.versions;
                }
            }
        }
        // HEAD (bug, see `bug_failed_tag_call_leaves_the_untag_applied`): a
        // tags save untags, then tags; when TagUser/TagRole fails, the untag
        // stays in IAM and the view keeps showing the old tags. Taken as IAM
        // has it, and refreshed so that the view follows.
        if injected.call == Call::TagEntity && !self.strict {
            let mut changed = false;
            for (key, p) in self.iam.principals.iter_mut() {
                if let Some(a) = actual.principals.get(key) {
                    if a.tags != p.tags {
                        self.trace.push(format!(
                            "   (known bug: {key:?} tags {:?} in IAM, {:?} before the failed save)",
                            a.tags, p.tags
                        ));
                        p.tags = a.tags.clone();
                        changed = true;
                    }
                }
            }
            if changed {
                self.refresh();
            }
        }
    }

    fn refresh(&mut self) {
        self.ns.refresh();
        self.local.detached.clear();
        self.local.recovering.clear();
        self.local.overrides.clear();
        self.stale = false;
        self.history.clear();
        self.ambiguous.clear();
    }

    fn expect(&self, what: &str, got: Outcome, want: Outcome) {
        if got != want {
            self.fail(format!("{what}: got {got:?}, the model says {want:?}"));
        }
    }

    /// The kernel's lookup before mkdir, symlink, create: EEXIST if the
    /// name is there, its error if the lookup fails otherwise.
    async fn absent(&self, dir: &Node, name: &str) -> Result<(), IamError> {
        match self.ns.lookup(dir, name).await {
            Ok(_) => Err(IamError::new(
                ErrorKind::EntityAlreadyExists,
                "EEXIST",
                "exists",
            )),
            Err(e) if e.kind == ErrorKind::NoSuchEntity => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn resolve(&self, path: &str) -> Result<Node, IamError> {
        let mut node = Node::Root;
        for part in path.split('/') {
            node = self.ns.lookup(&node, part).await?;
        }
        Ok(node)
    }

    fn dir_exists(&self, dir: &str) -> bool {
        dir_owner(dir).is_none_or(|(kind, name)| self.iam.exists(kind, &name))
    }

    /// The name resolves: an unsaved draft, or IAM's document not hidden by a backup rename.
    fn visible(&self, doc: Doc) -> bool {
        self.dir_exists(&doc.dir())
            && (self.local.drafts.contains_key(&doc)
                || (!self.local.detached.contains_key(&doc)
                    && !self.local.pending.contains(&doc)
                    && self.iam.document(doc).is_some()))
    }

    fn handle_by_id(&self, id: u64) -> &OpenHandle {
        self.handles
            .iter()
            .find(|h| h.id == id)
            .expect("a draft belongs to an open handle")
    }

    fn doc_seen(&self, doc: Doc) -> Seen {
        if !self.visible(doc) {
            return Seen::Absent;
        }
        if let Some(id) = self.local.drafts.get(&doc) {
            return seen_doc(&self.handle_by_id(*id).bytes);
        }
        if let Some(bytes) = self.local.overrides.get(&doc) {
            if !self.ttl_zero() {
                return seen_doc(bytes);
            }
        }
        Seen::Json(self.iam.document(doc).expect("visible"))
    }

    fn listing(&self, dir: &str, fixed: &[&str]) -> Seen {
        let docs = docs_in(dir);
        let mut names: BTreeSet<String> = fixed
            .iter()
            .filter(|n| !docs.iter().any(|d| d.file() == **n))
            .map(|n| n.to_string())
            .collect();
        names.extend(docs.iter().filter(|d| self.visible(**d)).map(|d| d.file()));
        names.extend(
            self.local
                .scratch
                .keys()
                .filter(|(d, _)| d == dir)
                .map(|(_, n)| n.clone()),
        );
        Seen::Dir(names)
    }

    fn scratch_seen(&self, dir: &str, view: &mut View) {
        for ((d, name), f) in &self.local.scratch {
            if d == dir {
                let seen = match f {
                    ScratchModel::File(b) => seen_scratch(b),
                    ScratchModel::Link(t) => Seen::Link(t.clone()),
                };
                view.insert(format!("{dir}/{name}"), seen);
            }
        }
    }

    /// The view the model derives: what every path of the universe shows.
    fn expected(&self) -> View {
        let mut view = View::new();
        for kind in Kind::ALL {
            let names = self
                .iam
                .principals
                .keys()
                .filter(|(k, _)| *k == kind)
                .map(|(_, n)| n.clone())
                .collect();
            view.insert(kind_dir(kind).into(), Seen::Dir(names));
        }
        for (kind, name) in PRINCIPALS {
            let path = format!("{}/{name}", kind_dir(kind));
            let Some(p) = self.iam.principal(kind, name) else {
                view.insert(path, Seen::Absent);
                continue;
            };
            view.insert(path.clone(), self.listing(&path, &static_names(kind)));
            self.scratch_seen(&path, &mut view);
            if kind != Kind::Group {
                let json = format!("{path}/{}.json", kind.api().to_lowercase());
                view.insert(format!("{json}#Tags"), Seen::Tags(p.tags.clone()));
                let trust = p.trust.clone().map_or(Seen::Absent, Seen::Json);
                view.insert(format!("{json}#AssumeRolePolicyDocument"), trust);
            }
            let pdir = format!("{path}/policies");
            view.insert(pdir.clone(), self.listing(&pdir, &[]));
            self.scratch_seen(&pdir, &mut view);
            let adir = format!("{path}/attached");
            view.insert(adir.clone(), Seen::Dir(p.attached.clone()));
            for policy in MANAGED.iter().chain([&AWS_POLICY]) {
                let seen = if p.attached.contains(*policy) {
                    Seen::Link(link_target(policy))
                } else {
                    Seen::Absent
                };
                view.insert(format!("{adir}/{policy}"), seen);
            }
            if kind != Kind::Role {
                let (ldir, others): (String, Vec<&str>) = if kind == Kind::User {
                    (format!("{path}/groups"), vec![GROUP])
                } else {
                    (format!("{path}/members"), vec!["alice", "bob"])
                };
                let linked = |other: &str| {
                    let pair = if kind == Kind::User {
                        (name.to_string(), other.to_string())
                    } else {
                        (other.to_string(), name.to_string())
                    };
                    self.iam.members.contains(&pair)
                };
                let names = others
                    .iter()
                    .filter(|o| linked(o))
                    .map(|o| o.to_string())
                    .collect();
                view.insert(ldir.clone(), Seen::Dir(names));
                for other in others {
                    let seen = if linked(other) {
                        Seen::Link(format!("../../../{}/{other}", kind_dir(kind.linked())))
                    } else {
                        Seen::Absent
                    };
                    view.insert(format!("{ldir}/{other}"), seen);
                }
            }
        }
        view.insert("policies".into(), self.listing("policies", &[]));
        self.scratch_seen("policies", &mut view);
        for doc in Doc::all() {
            if self.dir_exists(&doc.dir()) {
                view.insert(doc.path(), self.doc_seen(doc));
            }
        }
        view
    }

    /// Reads one file as `cat` does, checking that `stat` agrees on its size.
    async fn cat(&self, node: &Node) -> Vec<u8> {
        let bytes = match self.ns.read(node).await {
            Ok(b) => b.to_vec(),
            Err(e) => self.fail(format!("read {}: {e}", node.path())),
        };
        let attr = match self.ns.attr(node).await {
            Ok(a) => a,
            Err(e) => self.fail(format!("stat {}: {e}", node.path())),
        };
        if attr.size != bytes.len() as u64 {
            self.fail(format!(
                "stat {} says {} bytes, cat read {}",
                node.path(),
                attr.size,
                bytes.len()
            ));
        }
        bytes
    }

    async fn ls(&self, node: &Node) -> BTreeSet<String> {
        match self.ns.children(node).await {
            Ok(c) => c.into_iter().map(|(n, _)| n).collect(),
            Err(e) => self.fail(format!("ls {}: {e}", node.path())),
        }
    }

    async fn look(&self, dir: &Node, name: &str) -> Option<Node> {
        match self.ns.lookup(dir, name).await {
            Ok(n) => Some(n),
            Err(e) if e.kind == ErrorKind::NoSuchEntity => None,
            Err(e) => self.fail(format!("lookup {}/{name}: {e}", dir.path())),
        }
    }

    /// The scratch files listed in `dir` (names that are neither fixed nor documents).
    async fn observe_scratch(&self, dir: &Node, path: &str, fixed: &[&str], view: &mut View) {
        let Some(Seen::Dir(names)) = view.get(path).cloned() else {
            return;
        };
        let docs: Vec<String> = docs_in(path).iter().map(|d| d.file()).collect();
        for name in names {
            if fixed.contains(&name.as_str()) || docs.contains(&name) {
                continue;
            }
            let Some(node) = self.look(dir, &name).await else {
                self.fail(format!("{path}/{name} is listed but does not look up"));
            };
            let seen = match node {
                Node::ScratchLink(..) => Seen::Link(self.ns.readlink(&node).await.unwrap()),
                Node::Scratch(..) => seen_scratch(&self.cat(&node).await),
                other => self.fail(format!("{path}/{name} is {other:?}, not a scratch file")),
            };
            view.insert(format!("{path}/{name}"), seen);
        }
    }

    /// What the namespace shows, walked like `ls -R` and `cat`.
    async fn observe(&self) -> View {
        let mut view = View::new();
        for kind in Kind::ALL {
            view.insert(
                kind_dir(kind).into(),
                Seen::Dir(self.ls(&Node::KindDir(kind)).await),
            );
        }
        for (kind, name) in PRINCIPALS {
            let path = format!("{}/{name}", kind_dir(kind));
            let Some(entity) = self.look(&Node::KindDir(kind), name).await else {
                view.insert(path, Seen::Absent);
                continue;
            };
            view.insert(path.clone(), Seen::Dir(self.ls(&entity).await));
            self.observe_scratch(&entity, &path, &static_names(kind), &mut view)
                .await;
            if kind != Kind::Group {
                let json = format!("{}.json", kind.api().to_lowercase());
                let node = self.look(&entity, &json).await.expect("always there");
                let v: Value = serde_json::from_slice(&self.cat(&node).await).unwrap();
                let tags = v["Tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        (
                            t["Key"].as_str().unwrap().to_string(),
                            t["Value"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect();
                let trust = v
                    .get("AssumeRolePolicyDocument")
                    .cloned()
                    .map_or(Seen::Absent, Seen::Json);
                view.insert(format!("{path}/{json}#Tags"), Seen::Tags(tags));
                view.insert(format!("{path}/{json}#AssumeRolePolicyDocument"), trust);
            }
            let pdir_path = format!("{path}/policies");
            let pdir = self.look(&entity, "policies").await.unwrap();
            view.insert(pdir_path.clone(), Seen::Dir(self.ls(&pdir).await));
            self.observe_scratch(&pdir, &pdir_path, &[], &mut view)
                .await;
            let adir_path = format!("{path}/attached");
            let adir = self.look(&entity, "attached").await.unwrap();
            view.insert(adir_path.clone(), Seen::Dir(self.ls(&adir).await));
            for policy in MANAGED.iter().chain([&AWS_POLICY]) {
                let seen = match self.look(&adir, policy).await {
                    Some(node) => Seen::Link(self.ns.readlink(&node).await.unwrap()),
                    None => Seen::Absent,
                };
                view.insert(format!("{adir_path}/{policy}"), seen);
            }
            if kind != Kind::Role {
                let (folder, others): (&str, Vec<&str>) = if kind == Kind::User {
                    ("groups", vec![GROUP])
                } else {
                    ("members", vec!["alice", "bob"])
                };
                let ldir_path = format!("{path}/{folder}");
                let ldir = self.look(&entity, folder).await.unwrap();
                view.insert(ldir_path.clone(), Seen::Dir(self.ls(&ldir).await));
                for other in others {
                    let seen = match self.look(&ldir, other).await {
                        Some(node) => Seen::Link(self.ns.readlink(&node).await.unwrap()),
                        None => Seen::Absent,
                    };
                    view.insert(format!("{ldir_path}/{other}"), seen);
                }
            }
        }
        let pols = Node::PoliciesDir(PolicyScope::Local);
        view.insert("policies".into(), Seen::Dir(self.ls(&pols).await));
        self.observe_scratch(&pols, "policies", &[], &mut view)
            .await;
        for doc in Doc::all() {
            let dir_path = doc.dir();
            if !matches!(view.get(&dir_path), Some(Seen::Dir(_))) {
                continue;
            }
            let dir = self.resolve(&dir_path).await.unwrap();
            let seen = match self.look(&dir, &doc.file()).await {
                Some(node) => seen_doc(&self.cat(&node).await),
                None => Seen::Absent,
            };
            view.insert(doc.path(), seen);
        }
        view
    }

    /// IAM as its own API tells it.
    async fn iam_state(&self) -> IamModel {
        let mem = &*self.mem;
        let mut m = IamModel::default();
        let mut group_side = BTreeSet::new();
        for kind in Kind::ALL {
            let list = collect_pages(|mk| mem.list_entities(kind, mk))
                .await
                .unwrap();
            for e in list {
                let name = e.name.clone();
                let full = mem.get_entity(kind, &name).await.unwrap();
                let mut p = PrincipalModel {
                    trust: full.trust_policy.as_deref().map(document::decode_policy),
                    tags: full
                        .tags
                        .unwrap_or_default()
                        .into_iter()
                        .map(|t| (t.key, t.value))
                        .collect(),
                    ..Default::default()
                };
                for policy in collect_pages(|mk| mem.list_inline_policies(kind, &name, mk))
                    .await
                    .unwrap()
                {
                    let raw = mem.get_inline_policy(kind, &name, &policy).await.unwrap();
                    p.inline.insert(policy, document::decode_policy(&raw));
                }
                p.attached = collect_pages(|mk| mem.list_attached_policies(kind, &name, mk))
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|a| a.name)
                    .collect();
                match kind {
                    Kind::User => {
                        p.keys = collect_pages(|mk| mem.list_access_keys(&name, mk))
                            .await
                            .unwrap()
                            .len();
                        for g in collect_pages(|mk| mem.list_groups_for_user(&name, mk))
                            .await
                            .unwrap()
                        {
                            m.members.insert((name.clone(), g));
                        }
                    }
                    Kind::Group => {
                        for u in collect_pages(|mk| mem.get_group_members(&name, mk))
                            .await
                            .unwrap()
                        {
                            group_side.insert((u, name.clone()));
                        }
                    }
                    Kind::Role => {}
                }
                m.principals.insert((kind, name), p);
            }
        }
        if group_side != m.members {
            self.fail(format!(
                "IAM's two sides of memberships differ: {group_side:?} vs {:?}",
                m.members
            ));
        }
        for policy in collect_pages(|mk| mem.list_policies(PolicyScope::Local, mk))
            .await
            .unwrap()
        {
            let versions = collect_pages(|mk| mem.list_policy_versions(&policy.arn, mk))
                .await
                .unwrap();
            let raw = mem
                .get_policy_version(&policy.arn, &policy.default_version_id)
                .await
                .unwrap();
            m.managed.insert(
                policy.name,
                ManagedModel {
                    doc: document::decode_policy(&raw),
                    versions: versions.len(),
                },
            );
        }
        m
    }

    /// After every step: IAM agrees with the model, and so does the view.
    async fn check(&mut self) {
        let actual = self.iam_state().await;
        if actual != self.iam {
            self.fail(format!(
                "IAM differs from the model:\n{}",
                iam_diff(&actual, &self.iam)
            ));
        }
        let expected = self.expected();
        let observed = self.observe().await;
        self.history.push(expected.clone());
        // A hidden name (rm'd, renamed to a backup) can come back showing
        // what was cached of IAM while it was hidden.
        let mut shadow = View::new();
        for doc in Doc::all() {
            let seen = self.iam.document(doc).map_or(Seen::Absent, Seen::Json);
            shadow.insert(doc.path(), seen);
        }
        self.history.push(shadow);
        if self.stale {
            for (path, seen) in &observed {
                // Below an entity created or deleted behind the mount's
                // back, anything cached of it may show until the refresh.
                if dir_owner(path).is_some_and(|(k, n)| self.ambiguous.contains(&(k, n))) {
                    continue;
                }
                let allowed: Vec<&Seen> = self.history.iter().filter_map(|h| h.get(path)).collect();
                if !allowed.contains(&seen) {
                    self.fail(format!(
                        "{path} shows {seen:?}; since the last refresh the model gave it only {allowed:?}"
                    ));
                }
            }
        } else if observed != expected {
            let mut diff = Vec::new();
            for path in observed
                .keys()
                .chain(expected.keys())
                .collect::<BTreeSet<_>>()
            {
                let (o, e) = (observed.get(path), expected.get(path));
                if o != e {
                    diff.push(format!("  {path}\n    shows {o:?}\n    model {e:?}"));
                }
            }
            self.fail(format!(
                "the view differs from the model:\n{}",
                diff.join("\n")
            ));
        }
    }

    // ---- applying operations --------------------------------------------------

    async fn run(&mut self, ops: Vec<Op>) {
        self.check().await;
        for op in ops {
            let _ = self.op(op).await;
        }
        if std::env::var_os("REFTEST_TRACE").is_some() {
            eprintln!("TRACE {:?}\n{}", self.variant, self.trace.join("\n"));
        }
    }

    fn touches(&self, op: &Op) -> Vec<(Kind, String)> {
        let doc_owner = |doc: &Doc| {
            doc.owner()
                .map(|(k, n)| (k, n.to_string()))
                .into_iter()
                .collect()
        };
        let handle = |i: &usize| {
            if self.handles.is_empty() {
                Vec::new()
            } else {
                doc_owner(&self.handles[i % self.handles.len()].doc)
            }
        };
        match op {
            Op::Save { doc, .. }
            | Op::Open { doc, .. }
            | Op::Unlink { doc }
            | Op::RmNow { doc }
            | Op::WriteScratch { doc, .. }
            | Op::RenameOver { doc, .. }
            | Op::Backup { doc, .. }
            | Op::UnlinkScratch { doc, .. }
            | Op::LockLink { doc }
            | Op::VimSave { doc, .. }
            | Op::SedSave { doc, .. } => doc_owner(doc),
            Op::Write { handle: i, .. }
            | Op::Truncate { handle: i }
            | Op::Fsync { handle: i }
            | Op::Close { handle: i } => handle(i),
            Op::Mkdir { kind, name } | Op::Rmdir { kind, name } => vec![(*kind, name.to_string())],
            Op::Attach { kind, entity, .. } | Op::Detach { kind, entity, .. } => {
                vec![(*kind, entity.to_string())]
            }
            Op::Join { user, .. } | Op::Leave { user, .. } => {
                vec![(Kind::User, user.to_string()), (Kind::Group, GROUP.into())]
            }
            Op::Faulted { op, .. } => self.touches(op),
            Op::Behind(_) | Op::Refresh | Op::Settle => Vec::new(),
        }
    }

    async fn op(&mut self, op: Op) -> Outcome {
        if self.touches(&op).iter().any(|e| self.ambiguous.contains(e)) {
            self.note(format!("{op:?}: skipped (changed behind the mount's back)"));
            return Ok(());
        }
        let Op::Faulted { target, fault, op } = op else {
            return self.op_unfaulted(op).await;
        };
        let faulty = self.faulty.clone().expect("the Faulty variant");
        let rule = match target {
            Target::Call(call) => Rule::fail(call, fault),
            // Not GetAccountAuthorizationDetails: a failed bulk read falls
            // back to per-entity calls, by design.
            Target::Nth(n) => {
                let calls: Vec<Call> = Call::ALL
                    .into_iter()
                    .filter(|c| *c != Call::GetAccountAuthorizationDetails)
                    .collect();
                Rule::fail_any(&calls, fault).after(n)
            }
        };
        faulty.add(rule.times(1));
        self.note(format!("arm: {target:?} fails with {fault:?}"));
        let result = self.op_unfaulted(*op).await;
        faulty.clear();
        result
    }

    async fn op_unfaulted(&mut self, op: Op) -> Outcome {
        {
            match op {
                Op::Save {
                    doc,
                    content,
                    trunc,
                } => {
                    self.step(Op::Open { doc, trunc }).await?;
                    let last = self.handles.len() - 1;
                    self.step(Op::Write {
                        handle: last,
                        content,
                    })
                    .await?;
                    self.step(Op::Close { handle: last }).await
                }
                Op::VimSave { doc, content } => {
                    let probe = Scratch::Probe;
                    if self
                        .step(Op::WriteScratch {
                            doc,
                            scratch: probe,
                            content: Content::Empty,
                        })
                        .await
                        .is_ok()
                    {
                        self.step(Op::UnlinkScratch {
                            doc,
                            scratch: probe,
                        })
                        .await?;
                    }
                    let backup = self
                        .step(Op::Backup {
                            doc,
                            scratch: Scratch::Tilde,
                        })
                        .await;
                    self.step(Op::Open { doc, trunc: false }).await?;
                    let last = self.handles.len() - 1;
                    self.step(Op::Write {
                        handle: last,
                        content,
                    })
                    .await?;
                    let saved = self.step(Op::Close { handle: last }).await;
                    if backup.is_ok() {
                        if saved.is_ok() {
                            self.step(Op::UnlinkScratch {
                                doc,
                                scratch: Scratch::Tilde,
                            })
                            .await?;
                        } else {
                            let _ = self.step(Op::Unlink { doc }).await;
                            self.step(Op::RenameOver {
                                doc,
                                scratch: Scratch::Tilde,
                            })
                            .await?;
                        }
                    }
                    saved
                }
                Op::RmNow { doc } => {
                    self.step(Op::Unlink { doc }).await?;
                    self.step(Op::Settle).await
                }
                Op::SedSave { doc, content } => {
                    self.step(Op::WriteScratch {
                        doc,
                        scratch: Scratch::Tmp,
                        content,
                    })
                    .await?;
                    let saved = self
                        .step(Op::RenameOver {
                            doc,
                            scratch: Scratch::Tmp,
                        })
                        .await;
                    if saved.is_err() {
                        self.step(Op::UnlinkScratch {
                            doc,
                            scratch: Scratch::Tmp,
                        })
                        .await?;
                    }
                    saved
                }
                other => self.step(other).await,
            }
        }
    }

    async fn step(&mut self, op: Op) -> Outcome {
        let result = self.step_unchecked(op).await;
        if let Some(injected) = self.injected.take() {
            self.note(format!("   (injected: {injected:?})"));
            self.after_injected_failure(injected).await;
        }
        // The checks' own calls must not meet an armed failure.
        let rules = self.faulty.as_ref().map(|f| f.take_rules());
        self.check().await;
        if let (Some(f), Some(rules)) = (&self.faulty, rules) {
            for rule in rules {
                f.add(rule);
            }
        }
        result
    }

    /// Applies one primitive operation to the namespace and to the model,
    /// and compares their outcomes.
    async fn step_unchecked(&mut self, op: Op) -> Outcome {
        let text = format!("{op:?}");
        let outcome = match op {
            Op::Open { doc, trunc } => self.open(doc, trunc).await,
            Op::Write { handle, content } => {
                if self.handles.is_empty() {
                    return Ok(());
                }
                let n = self.handles.len();
                let h = &mut self.handles[handle % n];
                let bytes = content.bytes(h.doc.kind());
                if let Err(e) = Namespace::draft_write(&h.node, &h.draft, 0, &bytes) {
                    let e = e.to_string();
                    self.fail(format!("{text}: {e}"));
                }
                write_at(&mut h.bytes, 0, &bytes);
                h.dirty = true;
                h.failed = None;
                if h.draft.lock().data != h.bytes {
                    self.fail(format!("{text}: the draft holds other bytes than written"));
                }
                Ok(())
            }
            Op::Truncate { handle } => {
                if self.handles.is_empty() {
                    return Ok(());
                }
                let n = self.handles.len();
                let h = &mut self.handles[handle % n];
                if let Err(e) = Namespace::draft_truncate(&h.node, &h.draft, 0) {
                    let e = e.to_string();
                    self.fail(format!("{text}: {e}"));
                }
                h.bytes.clear();
                Ok(())
            }
            Op::Fsync { handle } | Op::Close { handle } => {
                if self.handles.is_empty() {
                    return Ok(());
                }
                let i = handle % self.handles.len();
                let close = matches!(op, Op::Close { .. });
                self.commit_handle(i, close).await
            }
            Op::Unlink { doc } => self.unlink(doc).await,
            Op::WriteScratch {
                doc,
                scratch,
                content,
            } => self.write_scratch(doc, scratch, content).await,
            Op::RenameOver { doc, scratch } => self.rename_over(doc, scratch).await,
            Op::Backup { doc, scratch } => self.backup(doc, scratch).await,
            Op::UnlinkScratch { doc, scratch } => self.unlink_scratch(doc, scratch).await,
            Op::LockLink { doc } => self.lock_link(doc).await,
            Op::Mkdir { kind, name } => self.mkdir(kind, name).await,
            Op::Rmdir { kind, name } => self.rmdir(kind, name).await,
            Op::Attach {
                kind,
                entity,
                policy,
                misnamed,
            } => self.attach(kind, entity, policy, misnamed).await,
            Op::Detach {
                kind,
                entity,
                policy,
            } => self.detach(kind, entity, policy).await,
            Op::Join { user, from_group } => self.join(user, from_group).await,
            Op::Leave { user, from_group } => self.leave(user, from_group).await,
            Op::Behind(b) => {
                self.behind(b).await;
                Ok(())
            }
            Op::Refresh => {
                self.refresh();
                Ok(())
            }
            Op::Settle => self.settle_all().await,
            Op::Save { .. }
            | Op::RmNow { .. }
            | Op::VimSave { .. }
            | Op::SedSave { .. }
            | Op::Faulted { .. } => {
                unreachable!("composite")
            }
        };
        self.note(format!("{text} -> {outcome:?}"));
        outcome
    }

    /// The SUT's outcome against the model's, given whether a failure was
    /// injected (then the SUT must return it, and the model changes nothing).
    fn settle(&self, what: &str, got: Outcome, fault: Option<ErrorKind>, want: Outcome) -> Outcome {
        let want = fault.map_or(want, Err);
        self.expect(what, got, want);
        got
    }

    async fn open(&mut self, doc: Doc, trunc: bool) -> Outcome {
        if self.handles.len() >= 3 {
            return Ok(());
        }
        let what = format!("open {}", doc.path());
        let opened = async {
            let dir = self.resolve(&doc.dir()).await?;
            match self.ns.lookup(&dir, &doc.file()).await {
                Ok(node) => {
                    let draft = self.ns.open_document(&node, trunc).await?;
                    Ok((node, draft, false))
                }
                Err(e) if e.kind == ErrorKind::NoSuchEntity => {
                    match self.ns.create(&dir, &doc.file(), 0o644).await? {
                        Created::Document(node, draft) => Ok((node, draft, true)),
                        Created::Scratch(node) => {
                            panic!("{} is a document, not {node:?}", doc.path())
                        }
                    }
                }
                Err(e) => Err(e),
            }
        }
        .await;
        let fault = self.take_fault();
        let want = if !self.dir_exists(&doc.dir()) {
            Err(ErrorKind::NoSuchEntity)
        } else {
            Ok(())
        };
        self.settle(&what, kind_of(&opened), fault, want)?;
        let (node, draft, created) = opened.unwrap();
        if created == self.visible(doc) {
            self.fail(format!(
                "{what}: the name {} resolve, the model says it {}",
                if created { "did not" } else { "did" },
                if created { "does" } else { "does not" },
            ));
        }
        let id = self.next_id;
        self.next_id += 1;
        if created {
            // rm then create (install, cp --remove-destination): the save
            // will replace the document.
            if self.local.pending.remove(&doc) {
                self.local.replacing.insert(doc);
            }
            self.local.drafts.insert(doc, id);
        }
        let bytes = draft.lock().data.clone();
        if trunc && !bytes.is_empty() {
            self.fail(format!("{what}: O_TRUNC left {} bytes", bytes.len()));
        }
        if !trunc && !created && seen_doc(&bytes) != self.doc_seen(doc) && !self.stale {
            self.fail(format!(
                "{what}: opened with other content than the name shows"
            ));
        }
        self.handles.push(OpenHandle {
            id,
            doc,
            node,
            draft,
            bytes,
            dirty: false,
            failed: None,
            nameless: false,
        });
        Ok(())
    }

    /// The open handle of a created document whose name went.
    fn unname_draft(&mut self, doc: Doc) {
        if let Some(id) = self.local.drafts.remove(&doc) {
            if let Some(h) = self.handles.iter_mut().find(|h| h.id == id) {
                h.nameless = true;
            }
        }
    }

    /// What a commit does to the mount's own state, after it succeeded or failed.
    fn after_commit(&mut self, doc: Doc, id: Option<u64>, bytes: &[u8], result: Outcome) {
        match result {
            Ok(()) => {
                self.local.replacing.remove(&doc);
                self.local.pending.remove(&doc);
                self.local.drafts.remove(&doc);
                self.local.detached.remove(&doc);
                self.local.recovering.remove(&doc);
                self.local.overrides.insert(doc, bytes.to_vec());
            }
            Err(_) => {
                // A refused replacement leaves IAM's document, and no rm.
                self.local.replacing.remove(&doc);
                if id.is_some() && self.local.drafts.get(&doc).copied() == id {
                    self.local.drafts.remove(&doc);
                }
                self.local.overrides.remove(&doc);
                if let Some(backup) = self.local.detached.remove(&doc) {
                    self.local.recovering.insert(doc, backup);
                }
            }
        }
    }

    /// The model's commit of `bytes` to `doc`: the save, then the local effects.
    fn model_commit(
        &mut self,
        doc: Doc,
        id: Option<u64>,
        bytes: &[u8],
        fault: Option<ErrorKind>,
    ) -> Outcome {
        let result = match fault {
            Some(kind) => Err(kind),
            None => self.iam.save(doc, bytes),
        };
        self.after_commit(doc, id, bytes, result);
        result
    }

    /// After a save the name reads what was written, at once.
    async fn read_back(&self, doc: Doc, bytes: &[u8]) {
        if self.ttl_zero() {
            return;
        }
        let node = match self.resolve(&doc.path()).await {
            Ok(n) => n,
            Err(e) => self.fail(format!(
                "{} does not resolve after its save: {e}",
                doc.path()
            )),
        };
        let shown = self.cat(&node).await;
        if seen_doc(&shown) != seen_doc(bytes) {
            self.fail(format!(
                "{} reads {:?} after a save of {:?}",
                doc.path(),
                String::from_utf8_lossy(&shown),
                String::from_utf8_lossy(bytes)
            ));
        }
    }

    async fn commit_handle(&mut self, i: usize, close: bool) -> Outcome {
        let (doc, id, node, draft) = {
            let h = &self.handles[i];
            (h.doc, h.id, h.node.clone(), h.draft.clone())
        };
        let got = self.ns.commit(&node, &draft).await;
        if close {
            self.ns.release_draft(&node, &draft);
        }
        let fault = self.take_fault();
        let (dirty, failed, bytes, nameless) = {
            let h = &self.handles[i];
            (h.dirty, h.failed, h.bytes.clone(), h.nameless)
        };
        let want = if nameless || self.local.pending.contains(&doc) {
            // Written to a name that rm (or a rename) took away: saved nowhere.
            let h = &mut self.handles[i];
            h.dirty = false;
            Ok(())
        } else if dirty {
            let r = self.model_commit(doc, Some(id), &bytes, fault);
            let h = &mut self.handles[i];
            h.dirty = false;
            h.failed = r.err();
            r
        } else {
            // Nothing new: the last commit's error again, and no call.
            failed.map_or(Ok(()), Err)
        };
        if close {
            // The last handle of an unsaved created document: it goes, and
            // an rm it was replacing goes ahead.
            if self.local.drafts.get(&doc) == Some(&id) {
                self.local.drafts.remove(&doc);
                if self.local.replacing.remove(&doc) {
                    self.local.pending.insert(doc);
                }
            }
            self.handles.remove(i);
        }
        let what = format!("{} {}", if close { "close" } else { "fsync" }, doc.path());
        self.expect(&what, kind_of(&got), want);
        if dirty && want.is_ok() && !nameless && !self.local.pending.contains(&doc) {
            self.read_back(doc, &bytes).await;
        }
        want
    }

    /// rm of a document: hidden at once, deleted in IAM once its grace has
    /// passed (`Op::Settle`) unless a create of the name replaces it first.
    /// The model of rm is here and in `model_settle`.
    async fn unlink(&mut self, doc: Doc) -> Outcome {
        let got = async {
            let dir = self.resolve(&doc.dir()).await?;
            self.ns.unlink(&dir, &doc.file()).await
        }
        .await;
        let fault = self.take_fault();
        let want = self.model_unlink(doc, fault);
        self.expect(&format!("rm {}", doc.path()), kind_of(&got), want);
        want
    }

    fn model_unlink(&mut self, doc: Doc, fault: Option<ErrorKind>) -> Outcome {
        if !self.visible(doc) {
            return Err(fault.unwrap_or(ErrorKind::NoSuchEntity));
        }
        // A created document not saved yet exists only in the mount.
        // HEAD (bug, see `bug_rm_create_rm_brings_the_document_back`): an
        // rm it was replacing is forgotten.
        if self.local.drafts.contains_key(&doc) {
            self.unname_draft(doc);
            if self.local.replacing.remove(&doc) {
                self.local.pending.insert(doc);
            }
            return Ok(());
        }
        // An editor cleaning up after a refused save: empty the name again.
        if let Some(backup) = self.local.recovering.remove(&doc) {
            if self.local.scratch.contains_key(&backup) {
                self.local.detached.insert(doc, backup);
                return Ok(());
            }
        }
        if let Some(kind) = fault {
            return Err(kind);
        }
        // Every document, even tags.json and trust-policy.json (their delete
        // is refused when it comes due, and the name shows IAM's again).
        self.local.overrides.remove(&doc);
        self.local.pending.insert(doc);
        Ok(())
    }

    /// The deletes of `docs` come due. Returns how many IAM refused (those
    /// go to `.iamfs/errors`). After an injected failure `actual` is IAM as
    /// it is: the delete it hit is the one still there.
    fn model_settle(&mut self, docs: Vec<Doc>, actual: Option<&IamModel>) -> u64 {
        let mut refused = 0;
        for doc in docs {
            self.local.pending.remove(&doc);
            let deletable = match doc {
                Doc::Inline(kind, e, p) => self
                    .iam
                    .principal(kind, e)
                    .is_some_and(|m| m.inline.contains_key(p)),
                Doc::Managed(p) => {
                    self.iam.managed.contains_key(p) && !self.iam.attached_anywhere(p)
                }
                Doc::Trust(_) | Doc::Tags(..) => false,
            };
            let failed_here = actual.is_some_and(|a| a.document(doc).is_some());
            if !deletable || failed_here {
                refused += 1;
                continue;
            }
            match doc {
                Doc::Inline(kind, e, p) => {
                    self.iam.principal_mut(kind, e).unwrap().inline.remove(p);
                }
                Doc::Managed(p) => {
                    self.iam.managed.remove(p);
                }
                Doc::Trust(_) | Doc::Tags(..) => unreachable!(),
            }
        }
        refused
    }

    /// The grace of every rm passes: `settle_pending_deletes`.
    async fn settle_all(&mut self) -> Outcome {
        let errors = self.ns.errors.count();
        let settled = self
            .ns
            .settle_pending_deletes(std::time::Instant::now() + UNLINK_GRACE)
            .await;
        let fault = self.take_fault();
        let mut got: Vec<String> = settled.iter().map(Node::path).collect();
        got.sort();
        let docs: Vec<Doc> = self.local.pending.iter().copied().collect();
        let mut want: Vec<String> = docs.iter().map(|d| d.path()).collect();
        want.sort();
        if got != want {
            self.fail(format!("settled {got:?}; the model has {want:?} pending"));
        }
        let actual = match fault {
            Some(_) => Some(self.iam_state().await),
            None => None,
        };
        let refused = self.model_settle(docs, actual.as_ref());
        let logged = self.ns.errors.count() - errors;
        if logged != refused {
            self.fail(format!(
                "{logged} refused deletes went to .iamfs/errors; the model says {refused}"
            ));
        }
        Ok(())
    }

    async fn write_scratch(&mut self, doc: Doc, scratch: Scratch, content: Content) -> Outcome {
        let name = scratch.name(doc);
        let bytes = content.bytes(doc.kind());
        let got = async {
            let dir = self.resolve(&doc.dir()).await?;
            let node = match self.ns.lookup(&dir, &name).await {
                Ok(node) => {
                    self.ns.scratch_set(&node, None, Some(0), None)?;
                    node
                }
                Err(e) if e.kind == ErrorKind::NoSuchEntity => {
                    match self.ns.create(&dir, &name, 0o644).await? {
                        Created::Scratch(node) => node,
                        Created::Document(node, _) => {
                            panic!("{name} is a scratch name, not {node:?}")
                        }
                    }
                }
                Err(e) => return Err(e),
            };
            self.ns.scratch_write(&node, 0, &bytes)
        }
        .await;
        let fault = self.take_fault();
        let want = if !self.dir_exists(&doc.dir()) {
            Err(ErrorKind::NoSuchEntity)
        } else {
            Ok(())
        };
        let got = self.settle(
            &format!("write {}/{name}", doc.dir()),
            kind_of(&got),
            fault,
            want,
        );
        if got.is_ok() {
            self.local
                .scratch
                .insert((doc.dir(), name), ScratchModel::File(bytes));
        }
        got
    }

    async fn rename_over(&mut self, doc: Doc, scratch: Scratch) -> Outcome {
        let name = scratch.name(doc);
        let got = async {
            let dir = self.resolve(&doc.dir()).await?;
            self.ns.rename(&dir, &name, &dir, &doc.file()).await
        }
        .await;
        let fault = self.take_fault();
        let key = (doc.dir(), name.clone());
        let what = format!("mv {}/{name} {}", doc.dir(), doc.file());
        let want = match (self.dir_exists(&doc.dir()), self.local.scratch.get(&key)) {
            (false, _) | (true, None) => Err(fault.unwrap_or(ErrorKind::NoSuchEntity)),
            (true, Some(ScratchModel::Link(_))) => Err(ErrorKind::InvalidInput),
            (true, Some(ScratchModel::File(bytes))) => {
                let bytes = bytes.clone();
                let r = self.model_commit(doc, None, &bytes, fault);
                if r.is_ok() {
                    self.local.scratch.remove(&key);
                }
                self.expect(&what, kind_of(&got), r);
                if r.is_ok() {
                    self.read_back(doc, &bytes).await;
                }
                return r;
            }
        };
        self.expect(&what, kind_of(&got), want);
        want
    }

    async fn backup(&mut self, doc: Doc, scratch: Scratch) -> Outcome {
        let name = scratch.name(doc);
        let shown = self.doc_seen(doc);
        let got = async {
            let dir = self.resolve(&doc.dir()).await?;
            self.ns.rename(&dir, &doc.file(), &dir, &name).await?;
            self.ns
                .scratch_read(&Node::Scratch(Box::new(dir), name.clone()))
        }
        .await;
        let fault = self.take_fault();
        let want = if self.visible(doc) {
            Ok(())
        } else {
            Err(ErrorKind::NoSuchEntity)
        };
        let what = format!("mv {} {name}", doc.path());
        self.settle(&what, kind_of(&got), fault, want)?;
        let bytes = got.unwrap();
        // The content moved is what the name showed.
        let moved = seen_doc(&bytes);
        let plausible = if self.stale {
            self.history
                .iter()
                .any(|h| h.get(&doc.path()) == Some(&moved))
                || moved == shown
        } else {
            moved == shown
        };
        if !plausible {
            self.fail(format!("{what} moved {moved:?}; the name showed {shown:?}"));
        }
        let key = (doc.dir(), name);
        self.local
            .scratch
            .insert(key.clone(), ScratchModel::File(bytes));
        // An open created draft of the name goes with it.
        self.unname_draft(doc);
        self.local.detached.insert(doc, key);
        self.local.overrides.remove(&doc);
        Ok(())
    }

    async fn unlink_scratch(&mut self, doc: Doc, scratch: Scratch) -> Outcome {
        let name = scratch.name(doc);
        let got = async {
            let dir = self.resolve(&doc.dir()).await?;
            self.ns.unlink(&dir, &name).await
        }
        .await;
        let fault = self.take_fault();
        let key = (doc.dir(), name.clone());
        let want = if self.dir_exists(&doc.dir()) && self.local.scratch.contains_key(&key) {
            Ok(())
        } else {
            Err(ErrorKind::NoSuchEntity)
        };
        let got = self.settle(
            &format!("rm {}/{name}", doc.dir()),
            kind_of(&got),
            fault,
            want,
        );
        if got.is_ok() {
            self.local.scratch.remove(&key);
        }
        got
    }

    async fn lock_link(&mut self, doc: Doc) -> Outcome {
        let name = Scratch::Lock.name(doc);
        let got = async {
            let dir = self.resolve(&doc.dir()).await?;
            self.absent(&dir, &name).await?;
            self.ns.symlink(&dir, &name, LOCK_TARGET).await
        }
        .await;
        let fault = self.take_fault();
        let key = (doc.dir(), name.clone());
        let want = if !self.dir_exists(&doc.dir()) {
            Err(ErrorKind::NoSuchEntity)
        } else if self.local.scratch.contains_key(&key) {
            Err(ErrorKind::EntityAlreadyExists)
        } else {
            Ok(())
        };
        let got = self.settle(
            &format!("ln -s {}/{name}", doc.dir()),
            kind_of(&got),
            fault,
            want,
        );
        if got.is_ok() {
            self.local
                .scratch
                .insert(key, ScratchModel::Link(LOCK_TARGET.into()));
        }
        got
    }

    async fn mkdir(&mut self, kind: Kind, name: &'static str) -> Outcome {
        let dir = Node::KindDir(kind);
        let got = async {
            // The kernel looks the name up first.
            self.absent(&dir, name).await?;
            self.ns.mkdir(&dir, name).await.map(|_| ())
        }
        .await;
        let fault = self.take_fault();
        let want = if self.iam.exists(kind, name) {
            Err(ErrorKind::EntityAlreadyExists)
        } else if name == BAD_NAME {
            Err(ErrorKind::InvalidInput)
        } else {
            Ok(())
        };
        let got = self.settle(
            &format!("mkdir {}/{name}", kind_dir(kind)),
            kind_of(&got),
            fault,
            want,
        );
        if got.is_ok() {
            self.iam.principals.insert(
                (kind, name.into()),
                PrincipalModel {
                    trust: (kind == Kind::Role).then(default_trust),
                    ..Default::default()
                },
            );
        }
        got
    }

    async fn rmdir(&mut self, kind: Kind, name: &'static str) -> Outcome {
        let errors = self.ns.errors.count();
        let got = self.ns.rmdir(&Node::KindDir(kind), name).await;
        let mut fault = self.take_fault();
        if self.iam.exists(kind, name) {
            // The rms inside it still in their grace are carried out first;
            // a failure there is logged, not returned.
            let mine: Vec<Doc> = self
                .local
                .pending
                .iter()
                .filter(|d| matches!(d, Doc::Inline(k, e, _) if *k == kind && *e == name))
                .copied()
                .collect();
            let in_settle = self
                .injected
                .get()
                .is_some_and(|i| i.call == Call::DeleteInlinePolicy && !mine.is_empty());
            let actual = match in_settle {
                true => Some(self.iam_state().await),
                false => None,
            };
            let refused = self.model_settle(mine, actual.as_ref());
            if in_settle {
                fault = None;
            }
            let logged = self.ns.errors.count() - errors;
            if logged != refused {
                self.fail(format!(
                    "rmdir: {logged} refused deletes went to .iamfs/errors; the model says {refused}"
                ));
            }
        }
        let want = if !self.iam.exists(kind, name) {
            Err(ErrorKind::NoSuchEntity)
        } else if !self.iam.empty(kind, name) {
            Err(ErrorKind::NotEmpty)
        } else if self.strict && self.holds_local_files(kind, name) {
            // HEAD (bug, see `bug_rmdir_deletes_a_folder_holding_editors_files`):
            // scratch files and unsaved drafts in the folder do not count.
            Err(ErrorKind::NotEmpty)
        } else {
            Ok(())
        };
        let got = self.settle(
            &format!("rmdir {}/{name}", kind_dir(kind)),
            kind_of(&got),
            fault,
            want,
        );
        if got.is_ok() {
            self.iam.principals.remove(&(kind, name.into()));
        }
        got
    }

    /// Editors' files or unsaved documents below an entity's folder.
    fn holds_local_files(&self, kind: Kind, name: &str) -> bool {
        let owned = |dir: &str| dir_owner(dir) == Some((kind, name.to_string()));
        self.local.scratch.keys().any(|(dir, _)| owned(dir))
            || self.local.drafts.keys().any(|doc| owned(&doc.dir()))
    }

    async fn attach(
        &mut self,
        kind: Kind,
        entity: &'static str,
        policy: &'static str,
        misnamed: bool,
    ) -> Outcome {
        let link = if misnamed { "wrong" } else { policy };
        let got = async {
            let dir = self
                .resolve(&format!("{}/{entity}/attached", kind_dir(kind)))
                .await?;
            self.absent(&dir, link).await?;
            self.ns
                .symlink(&dir, link, &link_target(policy))
                .await
                .map(|_| ())
        }
        .await;
        let fault = self.take_fault();
        let want = match self.iam.principal(kind, entity) {
            None => Err(ErrorKind::NoSuchEntity),
            Some(p) if p.attached.contains(link) => Err(ErrorKind::EntityAlreadyExists),
            Some(_) if misnamed => Err(ErrorKind::InvalidInput),
            Some(_) if policy != AWS_POLICY && !self.iam.managed.contains_key(policy) => {
                Err(ErrorKind::NoSuchEntity)
            }
            Some(_) => Ok(()),
        };
        let what = format!(
            "ln -s {} {}/{entity}/attached/{link}",
            link_target(policy),
            kind_dir(kind)
        );
        let got = self.settle(&what, kind_of(&got), fault, want);
        if got.is_ok() {
            let p = self.iam.principal_mut(kind, entity).unwrap();
            p.attached.insert(policy.into());
        }
        got
    }

    async fn detach(&mut self, kind: Kind, entity: &'static str, policy: &'static str) -> Outcome {
        let got = async {
            let dir = self
                .resolve(&format!("{}/{entity}/attached", kind_dir(kind)))
                .await?;
            self.ns.unlink(&dir, policy).await.map(|_| ())
        }
        .await;
        let fault = self.take_fault();
        let attached = self
            .iam
            .principal(kind, entity)
            .is_some_and(|p| p.attached.contains(policy));
        let want = if attached {
            Ok(())
        } else {
            Err(ErrorKind::NoSuchEntity)
        };
        let what = format!("rm {}/{entity}/attached/{policy}", kind_dir(kind));
        let got = self.settle(&what, kind_of(&got), fault, want);
        if got.is_ok() {
            let p = self.iam.principal_mut(kind, entity).unwrap();
            p.attached.remove(policy);
        }
        got
    }

    fn link_path(user: &str, from_group: bool) -> (String, String, String) {
        if from_group {
            (
                format!("groups/{GROUP}/members"),
                user.to_string(),
                format!("../../../users/{user}"),
            )
        } else {
            (
                format!("users/{user}/groups"),
                GROUP.to_string(),
                format!("../../../groups/{GROUP}"),
            )
        }
    }

    async fn join(&mut self, user: &'static str, from_group: bool) -> Outcome {
        let (dir_path, name, target) = Self::link_path(user, from_group);
        let got = async {
            let dir = self.resolve(&dir_path).await?;
            self.absent(&dir, &name).await?;
            self.ns.symlink(&dir, &name, &target).await.map(|_| ())
        }
        .await;
        let fault = self.take_fault();
        let pair = (user.to_string(), GROUP.to_string());
        let want = if !self.iam.exists(Kind::User, user) || !self.iam.exists(Kind::Group, GROUP) {
            Err(ErrorKind::NoSuchEntity)
        } else if self.iam.members.contains(&pair) {
            Err(ErrorKind::EntityAlreadyExists)
        } else {
            Ok(())
        };
        let got = self.settle(
            &format!("ln -s {target} {dir_path}/{name}"),
            kind_of(&got),
            fault,
            want,
        );
        if got.is_ok() {
            self.iam.members.insert(pair);
        }
        got
    }

    async fn leave(&mut self, user: &'static str, from_group: bool) -> Outcome {
        let (dir_path, name, _) = Self::link_path(user, from_group);
        let got = async {
            let dir = self.resolve(&dir_path).await?;
            self.ns.unlink(&dir, &name).await.map(|_| ())
        }
        .await;
        let fault = self.take_fault();
        let pair = (user.to_string(), GROUP.to_string());
        let want = if self.iam.members.contains(&pair) {
            Ok(())
        } else {
            Err(ErrorKind::NoSuchEntity)
        };
        let got = self.settle(&format!("rm {dir_path}/{name}"), kind_of(&got), fault, want);
        if got.is_ok() {
            self.iam.members.remove(&pair);
        }
        got
    }

    /// A change made in IAM by someone else.
    async fn behind(&mut self, change: Behind) {
        let mem = self.mem.clone();
        let mut ambiguous = Vec::new();
        let changed = match change {
            Behind::PutInline(kind, e, p, i) => match self.iam.principal_mut(kind, e) {
                None => false,
                Some(m) => {
                    let doc = policy_doc(i);
                    if m.inline.insert(p.into(), doc.clone()).is_none() {
                        ambiguous.push((kind, e.to_string()));
                    }
                    mem.put_inline_policy(kind, e, p, &doc.to_string())
                        .await
                        .unwrap();
                    true
                }
            },
            Behind::DeleteInline(kind, e, p) => {
                match self
                    .iam
                    .principal_mut(kind, e)
                    .and_then(|m| m.inline.remove(p))
                {
                    None => false,
                    Some(_) => {
                        mem.delete_inline_policy(kind, e, p).await.unwrap();
                        ambiguous.push((kind, e.to_string()));
                        true
                    }
                }
            }
            Behind::NewPolicyVersion(p, i) => match self.iam.managed.get_mut(p) {
                Some(m) if m.versions < 5 => {
                    let doc = policy_doc(i);
                    m.doc = doc.clone();
                    m.versions += 1;
                    let arn = format!("arn:aws:iam::123456789012:policy/{p}");
                    mem.create_policy_version(&arn, &doc.to_string())
                        .await
                        .unwrap();
                    true
                }
                _ => false,
            },
            Behind::TagRole(r, i) => match self.iam.principal_mut(Kind::Role, r) {
                None => false,
                Some(m) => {
                    let value = format!("v{}", i % 4);
                    m.tags.insert("team".into(), value.clone());
                    mem.tag_entity(
                        Kind::Role,
                        r,
                        &[Tag {
                            key: "team".into(),
                            value,
                        }],
                    )
                    .await
                    .unwrap();
                    true
                }
            },
            Behind::DeleteUser(u) => match self.iam.principals.remove(&(Kind::User, u.into())) {
                None => false,
                Some(_) => {
                    let groups: Vec<(String, String)> = self
                        .iam
                        .members
                        .iter()
                        .filter(|(user, _)| user == u)
                        .cloned()
                        .collect();
                    for (user, group) in groups {
                        self.iam.members.remove(&(user.clone(), group.clone()));
                        mem.remove_user_from_group(&user, &group).await.unwrap();
                        ambiguous.push((Kind::Group, group));
                    }
                    for p in collect_pages(|m| mem.list_inline_policies(Kind::User, u, m))
                        .await
                        .unwrap()
                    {
                        mem.delete_inline_policy(Kind::User, u, &p).await.unwrap();
                    }
                    for a in collect_pages(|m| mem.list_attached_policies(Kind::User, u, m))
                        .await
                        .unwrap()
                    {
                        mem.detach_policy(Kind::User, u, &a.arn).await.unwrap();
                    }
                    // The access keys go with it.
                    mem.remove_entity(Kind::User, u);
                    ambiguous.push((Kind::User, u.to_string()));
                    true
                }
            },
            Behind::CreateUser(u) => {
                if self.iam.exists(Kind::User, u) {
                    false
                } else {
                    self.iam
                        .principals
                        .insert((Kind::User, u.into()), PrincipalModel::default());
                    mem.create_entity(Kind::User, u, None).await.unwrap();
                    ambiguous.push((Kind::User, u.to_string()));
                    true
                }
            }
        };
        if changed && !self.ttl_zero() {
            self.stale = true;
            self.ambiguous.extend(ambiguous);
        }
    }
}

// ---- generators ---------------------------------------------------------------

fn doc_s() -> impl Strategy<Value = Doc> {
    prop::sample::select(Doc::all())
}

fn content_s() -> impl Strategy<Value = Content> {
    prop_oneof![
        6 => (0..4u8).prop_map(Content::Valid),
        2 => (0..4u8).prop_map(Content::Pretty),
        1 => Just(Content::OtherKind),
        1 => Just(Content::BadJson),
        1 => Just(Content::BadGrammar),
        1 => Just(Content::TooLarge),
        1 => Just(Content::Empty),
    ]
}

fn scratch_file_s() -> impl Strategy<Value = Scratch> {
    prop::sample::select(Scratch::FILES.to_vec())
}

fn principal_s() -> prop::sample::Select<(Kind, &'static str)> {
    prop::sample::select(PRINCIPALS.to_vec())
}

fn user_s() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["alice", "bob"])
}

fn policy_s() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["p1", "p2", "p3", AWS_POLICY])
}

fn behind_s() -> impl Strategy<Value = Behind> {
    let inline = (principal_s(), prop::sample::select(INLINE.to_vec()), 0..4u8);
    prop_oneof![
        inline
            .clone()
            .prop_map(|((k, e), p, i)| Behind::PutInline(k, e, p, i)),
        inline.prop_map(|((k, e), p, _)| Behind::DeleteInline(k, e, p)),
        (prop::sample::select(MANAGED.to_vec()), 0..4u8)
            .prop_map(|(p, i)| Behind::NewPolicyVersion(p, i)),
        (prop::sample::select(vec!["app", "ci"]), 0..4u8).prop_map(|(r, i)| Behind::TagRole(r, i)),
        user_s().prop_map(Behind::DeleteUser),
        user_s().prop_map(Behind::CreateUser),
    ]
}

/// One-step operations through the mount.
fn mount_op_s() -> BoxedStrategy<Op> {
    let handle = 0..3usize;
    prop_oneof![
        8 => (doc_s(), content_s(), any::<bool>())
            .prop_map(|(doc, content, trunc)| Op::Save { doc, content, trunc }),
        3 => (doc_s(), any::<bool>()).prop_map(|(doc, trunc)| Op::Open { doc, trunc }),
        3 => (handle.clone(), content_s()).prop_map(|(handle, content)| Op::Write { handle, content }),
        1 => handle.clone().prop_map(|handle| Op::Truncate { handle }),
        1 => handle.clone().prop_map(|handle| Op::Fsync { handle }),
        3 => handle.prop_map(|handle| Op::Close { handle }),
        4 => doc_s().prop_map(|doc| Op::Unlink { doc }),
        3 => (doc_s(), scratch_file_s(), content_s())
            .prop_map(|(doc, scratch, content)| Op::WriteScratch { doc, scratch, content }),
        3 => (doc_s(), scratch_file_s()).prop_map(|(doc, scratch)| Op::RenameOver { doc, scratch }),
        3 => (doc_s(), scratch_file_s()).prop_map(|(doc, scratch)| Op::Backup { doc, scratch }),
        2 => (doc_s(), prop::sample::select(Scratch::ALL.to_vec()))
            .prop_map(|(doc, scratch)| Op::UnlinkScratch { doc, scratch }),
        1 => doc_s().prop_map(|doc| Op::LockLink { doc }),
        3 => (doc_s(), content_s()).prop_map(|(doc, content)| Op::VimSave { doc, content }),
        2 => (doc_s(), content_s()).prop_map(|(doc, content)| Op::SedSave { doc, content }),
        2 => prop::sample::select(vec![
            (Kind::User, "alice"), (Kind::User, "bob"), (Kind::User, BAD_NAME),
            (Kind::Group, GROUP), (Kind::Role, "app"), (Kind::Role, "ci"),
        ]).prop_map(|(kind, name)| Op::Mkdir { kind, name }),
        2 => principal_s().prop_map(|(kind, name)| Op::Rmdir { kind, name }),
        3 => (principal_s(), policy_s(), prop::bool::weighted(0.1))
            .prop_map(|((kind, entity), policy, misnamed)| Op::Attach { kind, entity, policy, misnamed }),
        2 => (principal_s(), policy_s())
            .prop_map(|((kind, entity), policy)| Op::Detach { kind, entity, policy }),
        2 => (user_s(), any::<bool>()).prop_map(|(user, from_group)| Op::Join { user, from_group }),
        2 => (user_s(), any::<bool>()).prop_map(|(user, from_group)| Op::Leave { user, from_group }),
        3 => Just(Op::Settle),
        2 => doc_s().prop_map(|doc| Op::RmNow { doc }),
    ]
    .boxed()
}

/// Operations that make IAM calls, to fail.
fn faultable_op_s() -> BoxedStrategy<Op> {
    // Mostly valid documents: a refused one makes no call to fail.
    let content = || {
        prop_oneof![
            4 => (0..4u8).prop_map(Content::Valid),
            1 => (0..4u8).prop_map(Content::Pretty),
            1 => Just(Content::BadJson),
        ]
    };
    prop_oneof![
        6 => (doc_s(), content(), any::<bool>())
            .prop_map(|(doc, content, trunc)| Op::Save { doc, content, trunc }),
        2 => (doc_s(), content()).prop_map(|(doc, content)| Op::VimSave { doc, content }),
        2 => (doc_s(), content()).prop_map(|(doc, content)| Op::SedSave { doc, content }),
        2 => (0..3usize).prop_map(|handle| Op::Close { handle }),
        3 => doc_s().prop_map(|doc| Op::RmNow { doc }),
        1 => Just(Op::Settle),
        1 => prop::sample::select(vec![(Kind::User, "bob"), (Kind::Role, "ci")])
            .prop_map(|(kind, name)| Op::Mkdir { kind, name }),
        1 => principal_s().prop_map(|(kind, name)| Op::Rmdir { kind, name }),
        2 => (principal_s(), policy_s())
            .prop_map(|((kind, entity), policy)| Op::Attach { kind, entity, policy, misnamed: false }),
        1 => (principal_s(), policy_s())
            .prop_map(|((kind, entity), policy)| Op::Detach { kind, entity, policy }),
        1 => (user_s(), any::<bool>()).prop_map(|(user, from_group)| Op::Join { user, from_group }),
        1 => (user_s(), any::<bool>()).prop_map(|(user, from_group)| Op::Leave { user, from_group }),
    ]
    .boxed()
}

/// Failures that say nothing about the entity: the namespace must pass
/// them on whichever call they hit. (A NoSuchEntity from GetUserPolicy, by
/// contrast, means the policy is new, and the save goes on.)
const TRANSPORT_FAULTS: [Fault; 5] = [
    Fault::AccessDenied,
    Fault::Throttling,
    Fault::ServiceFailure,
    Fault::Unreachable,
    Fault::LimitExceeded,
];

/// Which call fails, and how: any error on a call that changes IAM, a
/// transport-like error on the reads saves make, or on the nth call.
fn target_fault_s() -> impl Strategy<Value = (Target, Fault)> {
    let reads = vec![
        Call::ListPolicyVersions,
        Call::GetPolicyVersion,
        Call::GetInlinePolicy,
        Call::ListInlinePolicies,
        Call::GetEntity,
        Call::ListEntitiesForPolicy,
    ];
    let transport = || prop::sample::select(TRANSPORT_FAULTS.to_vec());
    prop_oneof![
        3 => (prop::sample::select(Call::WRITES.to_vec()), prop::sample::select(Fault::ALL.to_vec()))
            .prop_map(|(c, f)| (Target::Call(c), f)),
        1 => (prop::sample::select(reads), transport()).prop_map(|(c, f)| (Target::Call(c), f)),
        3 => (prop_oneof![3 => Just(0u32), 2 => Just(1), 1 => Just(2)], transport())
            .prop_map(|(n, f)| (Target::Nth(n), f)),
    ]
}

fn op_s(variant: Variant) -> BoxedStrategy<Op> {
    match variant {
        Variant::Cached | Variant::TtlZero => prop_oneof![
            12 => mount_op_s(),
            2 => behind_s().prop_map(Op::Behind),
            1 => Just(Op::Refresh),
        ]
        .boxed(),
        Variant::Faulty => prop_oneof![
            6 => mount_op_s(),
            4 => (target_fault_s(), faultable_op_s())
                .prop_map(|((target, fault), op)| Op::Faulted { target, fault, op: Box::new(op) }),
            1 => Just(Op::Refresh),
        ]
        .boxed(),
    }
}

fn run(variant: Variant, ops: Vec<Op>) {
    run_with(Harness::new(variant), ops);
}

/// Runs with the README's promises modelled where HEAD departs from them.
fn run_strict(variant: Variant, ops: Vec<Op>) {
    let mut harness = Harness::new(variant);
    harness.strict = true;
    run_with(harness, ops);
}

fn run_with(mut harness: Harness, ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(harness.run(ops));
}

/// 64 cases a variant (`REFTEST_CASES=5000` for a longer search).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("REFTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn reftest_cached(ops in prop::collection::vec(op_s(Variant::Cached), 1..25)) {
        run(Variant::Cached, ops);
    }

    #[test]
    fn reftest_ttl_zero(ops in prop::collection::vec(op_s(Variant::TtlZero), 1..25)) {
        run(Variant::TtlZero, ops);
    }

    #[test]
    fn reftest_faulty(ops in prop::collection::vec(op_s(Variant::Faulty), 1..25)) {
        run(Variant::Faulty, ops);
    }
}

// ---- fixed sequences ------------------------------------------------------------

#[test]
fn reftest_vim_sed_and_refused_saves() {
    use Content::*;
    let a = Doc::Inline(Kind::User, "alice", "a");
    let p1 = Doc::Managed("p1");
    run(
        Variant::Cached,
        vec![
            Op::VimSave {
                doc: p1,
                content: Valid(2),
            },
            Op::VimSave {
                doc: p1,
                content: BadJson,
            },
            Op::SedSave {
                doc: a,
                content: Pretty(3),
            },
            Op::SedSave {
                doc: a,
                content: TooLarge,
            },
            Op::Save {
                doc: Doc::Trust("app"),
                content: OtherKind,
                trunc: true,
            },
            Op::Save {
                doc: Doc::Tags(Kind::Role, "app"),
                content: Valid(2),
                trunc: false,
            },
            Op::Save {
                doc: Doc::Managed("p3"),
                content: Valid(1),
                trunc: true,
            },
            Op::Behind(Behind::NewPolicyVersion("p3", 3)),
            Op::Save {
                doc: Doc::Managed("p3"),
                content: Valid(1),
                trunc: true,
            },
            Op::Refresh,
            Op::Unlink {
                doc: Doc::Managed("p3"),
            },
        ],
    );
}

#[test]
fn reftest_rm_grace_and_install() {
    use Content::*;
    let p1 = Doc::Managed("p1");
    let p2 = Doc::Managed("p2");
    let app_a = Doc::Inline(Kind::Role, "app", "a");
    run(
        Variant::Cached,
        vec![
            // Attached: the delete is refused when it comes due; p1 is back.
            Op::RmNow { doc: p1 },
            // install over a policy: an update, not a delete and a create.
            Op::Detach {
                kind: Kind::Role,
                entity: "app",
                policy: "p2",
            },
            Op::Unlink { doc: p2 },
            Op::Save {
                doc: p2,
                content: Valid(3),
                trunc: true,
            },
            Op::Settle,
            // rm, then touch: the rm goes ahead.
            Op::Unlink { doc: app_a },
            Op::Open {
                doc: app_a,
                trunc: true,
            },
            Op::Close { handle: 0 },
            Op::Settle,
            // tags.json cannot be deleted: the name comes back.
            Op::RmNow {
                doc: Doc::Tags(Kind::Role, "app"),
            },
            // rmdir carries out the rm inside it first.
            Op::Unlink {
                doc: Doc::Inline(Kind::Group, GROUP, "a"),
            },
            Op::Rmdir {
                kind: Kind::Group,
                name: GROUP,
            },
        ],
    );
}

#[test]
fn reftest_faults_on_saves() {
    use Content::*;
    let a = Doc::Inline(Kind::Role, "app", "a");
    run(
        Variant::Faulty,
        vec![
            Op::Open {
                doc: a,
                trunc: true,
            },
            Op::Write {
                handle: 0,
                content: Valid(3),
            },
            Op::Faulted {
                target: Target::Call(Call::PutInlinePolicy),
                fault: Fault::Throttling,
                op: Box::new(Op::Close { handle: 0 }),
            },
            Op::Save {
                doc: a,
                content: Valid(3),
                trunc: true,
            },
            Op::WriteScratch {
                doc: Doc::Managed("p2"),
                scratch: Scratch::Tmp,
                content: Valid(0),
            },
            Op::Faulted {
                target: Target::Call(Call::CreatePolicyVersion),
                fault: Fault::Unreachable,
                op: Box::new(Op::RenameOver {
                    doc: Doc::Managed("p2"),
                    scratch: Scratch::Tmp,
                }),
            },
            Op::RenameOver {
                doc: Doc::Managed("p2"),
                scratch: Scratch::Tmp,
            },
        ],
    );
}

// ---- bugs found (HEAD departs from the README) ----------------------------------
//
// Each runs a minimal sequence (the one the faulty proptest shrank to, for
// the tags save; the others came up while modelling HEAD against the
// README) and asserts what the README promises; they fail on HEAD. The
// proptests above model HEAD at the places marked "HEAD (bug".

/// A tags save is UntagRole (removed keys) then TagRole (new or changed
/// ones). When TagRole fails, the save returns its error, but IAM has lost
/// the removed keys, and tags.json (and role.json) still show them.
#[test]
fn a_failed_tag_call_undoes_the_untag() {
    run_strict(
        Variant::Faulty,
        vec![Op::Faulted {
            target: Target::Call(Call::TagEntity),
            fault: Fault::Throttling,
            op: Box::new(Op::Save {
                doc: Doc::Tags(Kind::Role, "app"),
                content: Content::Valid(1),
                trunc: true,
            }),
        }],
    );
}

/// rmdir deletes the entity while its folder still holds an editor's file
/// (README: "only when the folder is empty in the filesystem's sense").
#[test]
fn rmdir_keeps_a_folder_holding_editors_files() {
    run_strict(
        Variant::Cached,
        vec![
            Op::WriteScratch {
                doc: Doc::Inline(Kind::User, "bob", "a"),
                scratch: Scratch::Swap,
                content: Content::Valid(0),
            },
            Op::Rmdir {
                kind: Kind::User,
                name: "bob",
            },
        ],
    );
}

fn namespace_over(ttl: Duration) -> (Arc<MemoryIam>, Namespace) {
    let mem = Arc::new(IamModel::initial().backend());
    let ns = Namespace::new(mem.clone(), settings(ttl));
    (mem, ns)
}

/// The same root cause, seen from the other side: the editors' files of a
/// deleted user stay in memory and show up in a new user of the same name.
#[tokio::test]
async fn editors_files_do_not_outlive_their_entity() {
    let (_, ns) = namespace_over(Duration::from_secs(60));
    let users = Node::KindDir(Kind::User);
    let policies = Node::InlineDir(Kind::User, "bob".into());
    ns.create(&policies, ".a.json.swp", 0o600).await.unwrap();
    let err = ns.rmdir(&users, "bob").await.unwrap_err();
    assert!(err.message.contains(".a.json.swp"), "{err}");
    ns.unlink(&policies, ".a.json.swp").await.unwrap();
    ns.rmdir(&users, "bob").await.unwrap();
    ns.mkdir(&users, "bob").await.unwrap();
    let names: Vec<String> = ns
        .children(&policies)
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.is_empty(), "a new user's policies/ holds {names:?}");
}

/// With `--cache-ttl 0` the backup rename empties the name for no time at
/// all, so vim's open(X, O_WRONLY|O_CREAT) without O_TRUNC opens IAM's
/// document and writes over it: a shorter document keeps the old tail and
/// the save is refused (EINVAL). Any TTL shorter than the editor's gap
/// between rename and open does the same.
#[tokio::test]
async fn vim_saves_with_a_zero_ttl() {
    let (mem, ns) = namespace_over(Duration::ZERO);
    let dir = Node::PoliciesDir(PolicyScope::Local);
    ns.rename(&dir, "p1.json", &dir, "p1.json~").await.unwrap();
    // The kernel looks the name up, then opens it or creates it.
    let (node, draft) = match ns.lookup(&dir, "p1.json").await {
        Ok(node) => {
            let draft = ns.open_document(&node, false).await.unwrap();
            (node, draft)
        }
        Err(_) => match ns.create(&dir, "p1.json", 0o644).await.unwrap() {
            Created::Document(node, draft) => (node, draft),
            Created::Scratch(_) => unreachable!(),
        },
    };
    let new = policy_doc(1).to_string();
    Namespace::draft_write(&node, &draft, 0, new.as_bytes()).unwrap();
    ns.commit(&node, &draft).await.unwrap();
    let arn = "arn:aws:iam::123456789012:policy/p1";
    let versions = collect_pages(|m| mem.list_policy_versions(arn, m))
        .await
        .unwrap();
    let default = versions.iter().find(|v| v.is_default).unwrap();
    let raw = mem.get_policy_version(arn, &default.id).await.unwrap();
    assert_eq!(document::decode_policy(&raw), policy_doc(1));
}

/// rm of a created document that is still open removes the name, but the
/// open file's close then saves it: CreatePolicy, and the name is back. On
/// any other filesystem, writes to an unlinked file go nowhere. (The README
/// does not say; reported as questionable.)
#[tokio::test]
async fn an_unlinked_open_draft_is_not_saved_on_close() {
    let (_, ns) = namespace_over(Duration::from_secs(60));
    let dir = Node::PoliciesDir(PolicyScope::Local);
    let Created::Document(node, draft) = ns.create(&dir, "p3.json", 0o644).await.unwrap() else {
        unreachable!()
    };
    Namespace::draft_write(&node, &draft, 0, policy_doc(1).to_string().as_bytes()).unwrap();
    ns.unlink(&dir, "p3.json").await.unwrap();
    assert!(ns.lookup(&dir, "p3.json").await.is_err());
    let closed = ns.commit(&node, &draft).await;
    ns.release_draft(&node, &draft);
    assert_eq!(
        ns.api_calls().get(Operation::CreatePolicy),
        0,
        "close after rm made p3 ({closed:?})"
    );
    assert!(ns.lookup(&dir, "p3.json").await.is_err());
}

/// The backup rename of a created document that is still open moves its
/// content to the backup name, but the name stays (the draft), and its
/// close saves it. README: the rename "leaves the document's name empty".
#[tokio::test]
async fn a_renamed_open_draft_leaves_its_name() {
    let (_, ns) = namespace_over(Duration::from_secs(60));
    let dir = Node::PoliciesDir(PolicyScope::Local);
    let Created::Document(node, draft) = ns.create(&dir, "p3.json", 0o644).await.unwrap() else {
        unreachable!()
    };
    Namespace::draft_write(&node, &draft, 0, policy_doc(1).to_string().as_bytes()).unwrap();
    ns.rename(&dir, "p3.json", &dir, "p3.json~").await.unwrap();
    assert!(
        ns.lookup(&dir, "p3.json").await.is_err(),
        "p3.json still resolves after mv p3.json p3.json~"
    );
}

/// rm X, then create X (as install does), then rm X again before writing
/// it: the second rm removes only the new, unsaved file, and X shows IAM's
/// document again; the first rm is lost, and nothing is ever deleted.
#[test]
fn rm_create_rm_deletes() {
    let a = Doc::Inline(Kind::Role, "app", "a");
    run_strict(
        Variant::Cached,
        vec![
            Op::Unlink { doc: a },
            Op::Open {
                doc: a,
                trunc: true,
            },
            Op::Unlink { doc: a },
            Op::Settle,
        ],
    );
}
