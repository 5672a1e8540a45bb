//! What each path in the mount means.

use crate::iam::{Kind, PolicyScope};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ControlFile {
    Status,
    Errors,
    Refresh,
    /// Write an MFA code here for a new MFA session.
    Mfa,
}

/// A path in the mount, by meaning. Names are IAM names (no `.json`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    Root,
    /// users/, groups/, roles/
    KindDir(Kind),
    /// users/X
    Entity(Kind, String),
    /// users/X/user.json
    EntityJson(Kind, String),
    /// users/X/policies/
    InlineDir(Kind, String),
    /// users/X/policies/P.json
    Inline(Kind, String, String),
    /// users/X/attached/
    AttachedDir(Kind, String),
    /// users/X/attached/P (symlink)
    Attached(Kind, String, String),
    /// users/X/groups/ or groups/X/members/
    LinksDir(Kind, String),
    /// users/X/groups/G or groups/X/members/U (symlink)
    Link(Kind, String, String),
    AccessKeys(String),
    Tags(Kind, String),
    TrustPolicy(String),
    Credentials(String),
    Env(String),
    /// policies/ or aws-policies/
    PoliciesDir(PolicyScope),
    /// policies/P.json
    Policy(PolicyScope, String),
    ControlDir,
    Control(ControlFile),
    /// An editor's or tool's file in a folder (see scratch.rs).
    Scratch(Box<Node>, String),
    ScratchLink(Box<Node>, String),
}

/// An IAM entity or managed policy, by name, as `Node::owners` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    Entity(Kind, &'a str),
    Policy(PolicyScope, &'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    File,
    Symlink,
}

pub const JSON: &str = ".json";

/// The folder of each kind at the top of the mount.
pub fn kind_dir(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "users",
        Kind::Group => "groups",
        Kind::Role => "roles",
    }
}

fn scope_dir(scope: PolicyScope) -> &'static str {
    match scope {
        PolicyScope::Local => "policies",
        PolicyScope::Aws => "aws-policies",
    }
}

fn links_dir(kind: Kind) -> &'static str {
    if kind == Kind::User {
        "groups"
    } else {
        "members"
    }
}

impl Node {
    pub fn file_kind(&self) -> FileKind {
        match self {
            Node::Root
            | Node::KindDir(_)
            | Node::Entity(..)
            | Node::InlineDir(..)
            | Node::AttachedDir(..)
            | Node::LinksDir(..)
            | Node::PoliciesDir(_)
            | Node::ControlDir => FileKind::Dir,
            Node::Attached(..) | Node::Link(..) | Node::ScratchLink(..) => FileKind::Symlink,
            _ => FileKind::File,
        }
    }

    /// Permission bits, as DESIGN.md's content rules give them.
    pub fn perm(&self) -> u16 {
        match self {
            Node::Credentials(_) | Node::Env(_) => 0o400,
            Node::EntityJson(..)
            | Node::AccessKeys(_)
            | Node::Policy(PolicyScope::Aws, _)
            | Node::Control(ControlFile::Status | ControlFile::Errors) => 0o444,
            Node::Control(ControlFile::Refresh | ControlFile::Mfa) => 0o200,
            Node::Attached(..) | Node::Link(..) | Node::ScratchLink(..) => 0o777,
            _ if self.file_kind() == FileKind::Dir => 0o755,
            _ => 0o644,
        }
    }

    /// The folder this node is in, and its name there.
    pub fn parent_and_name(&self) -> Option<(Node, String)> {
        let path = self.path();
        let (_, name) = path.rsplit_once('/')?;
        let parent = match self {
            Node::Scratch(dir, _) | Node::ScratchLink(dir, _) => (**dir).clone(),
            Node::KindDir(_) | Node::PoliciesDir(_) | Node::ControlDir => Node::Root,
            Node::Entity(kind, _) => Node::KindDir(*kind),
            Node::Inline(kind, e, _) => Node::InlineDir(*kind, e.clone()),
            Node::Attached(kind, e, _) => Node::AttachedDir(*kind, e.clone()),
            Node::Link(kind, e, _) => Node::LinksDir(*kind, e.clone()),
            Node::Policy(scope, _) => Node::PoliciesDir(*scope),
            Node::Control(_) => Node::ControlDir,
            Node::EntityJson(kind, e)
            | Node::InlineDir(kind, e)
            | Node::AttachedDir(kind, e)
            | Node::LinksDir(kind, e)
            | Node::Tags(kind, e) => Node::Entity(*kind, e.clone()),
            Node::AccessKeys(e) => Node::Entity(Kind::User, e.clone()),
            Node::TrustPolicy(e) | Node::Credentials(e) | Node::Env(e) => {
                Node::Entity(Kind::Role, e.clone())
            }
            Node::Root => return None,
        };
        Some((parent, name.to_string()))
    }

    /// The entities and policies whose state this node shows: a change to
    /// one of them may change what the kernel was told of the node. A
    /// membership link shows both of its ends.
    pub fn owners(&self) -> impl Iterator<Item = Owner<'_>> {
        let (first, second) = match self {
            Node::Entity(kind, e)
            | Node::EntityJson(kind, e)
            | Node::InlineDir(kind, e)
            | Node::Inline(kind, e, _)
            | Node::AttachedDir(kind, e)
            | Node::Attached(kind, e, _)
            | Node::LinksDir(kind, e)
            | Node::Tags(kind, e) => (Some(Owner::Entity(*kind, e)), None),
            Node::Link(kind, e, other) => (
                Some(Owner::Entity(*kind, e)),
                Some(Owner::Entity(kind.linked(), other)),
            ),
            Node::AccessKeys(e) => (Some(Owner::Entity(Kind::User, e)), None),
            Node::TrustPolicy(e) | Node::Credentials(e) | Node::Env(e) => {
                (Some(Owner::Entity(Kind::Role, e)), None)
            }
            Node::Policy(scope, p) => (Some(Owner::Policy(*scope, p)), None),
            Node::Root
            | Node::KindDir(_)
            | Node::PoliciesDir(_)
            | Node::ControlDir
            | Node::Control(_)
            | Node::Scratch(..)
            | Node::ScratchLink(..) => (None, None),
        };
        first.into_iter().chain(second)
    }

    /// Documents whose save becomes an IAM call.
    pub fn is_editable(&self) -> bool {
        matches!(
            self,
            Node::Policy(PolicyScope::Local, _)
                | Node::Inline(..)
                | Node::TrustPolicy(_)
                | Node::Tags(..)
        )
    }

    /// Credential files resolve by name but are left out of listings, so
    /// that `ls`, `grep -r`, `find` and `rsync` never mint role sessions.
    pub fn is_listed(&self) -> bool {
        !matches!(self, Node::Credentials(_) | Node::Env(_))
    }

    /// Files whose content is made at read time and must bypass the page cache.
    pub fn is_volatile(&self) -> bool {
        matches!(self, Node::Credentials(_) | Node::Env(_) | Node::Control(_))
    }

    /// The fixed children of a directory node, by name.
    pub fn static_children(&self) -> Vec<(&'static str, Node)> {
        match self {
            Node::Root => vec![
                ("users", Node::KindDir(Kind::User)),
                ("groups", Node::KindDir(Kind::Group)),
                ("roles", Node::KindDir(Kind::Role)),
                ("policies", Node::PoliciesDir(PolicyScope::Local)),
                ("aws-policies", Node::PoliciesDir(PolicyScope::Aws)),
                (".iamfs", Node::ControlDir),
            ],
            Node::ControlDir => vec![
                ("status", Node::Control(ControlFile::Status)),
                ("errors", Node::Control(ControlFile::Errors)),
                ("refresh", Node::Control(ControlFile::Refresh)),
                ("mfa", Node::Control(ControlFile::Mfa)),
            ],
            Node::Entity(kind, name) => {
                let n = || name.clone();
                let json: &'static str = match kind {
                    Kind::User => "user.json",
                    Kind::Group => "group.json",
                    Kind::Role => "role.json",
                };
                let mut v = vec![
                    (json, Node::EntityJson(*kind, n())),
                    ("policies", Node::InlineDir(*kind, n())),
                    ("attached", Node::AttachedDir(*kind, n())),
                ];
                match kind {
                    Kind::User => {
                        v.push(("groups", Node::LinksDir(*kind, n())));
                        v.push(("access-keys.json", Node::AccessKeys(n())));
                        v.push(("tags.json", Node::Tags(*kind, n())));
                    }
                    Kind::Group => v.push(("members", Node::LinksDir(*kind, n()))),
                    Kind::Role => {
                        v.push(("trust-policy.json", Node::TrustPolicy(n())));
                        v.push(("tags.json", Node::Tags(*kind, n())));
                        v.push(("credentials", Node::Credentials(n())));
                        v.push(("env", Node::Env(n())));
                    }
                }
                v
            }
            _ => Vec::new(),
        }
    }

    /// The node a name in this directory would be, if it exists in IAM.
    pub fn child(&self, name: &str) -> Option<Node> {
        if let Some((_, node)) = self.static_children().into_iter().find(|(n, _)| *n == name) {
            return Some(node);
        }
        let json_name = || name.strip_suffix(JSON).filter(|n| !n.is_empty());
        let s = name.to_string();
        match self {
            Node::KindDir(kind) => Some(Node::Entity(*kind, s)),
            Node::InlineDir(kind, e) => {
                json_name().map(|p| Node::Inline(*kind, e.clone(), p.into()))
            }
            Node::AttachedDir(kind, e) => Some(Node::Attached(*kind, e.clone(), s)),
            Node::LinksDir(kind, e) => Some(Node::Link(*kind, e.clone(), s)),
            Node::PoliciesDir(scope) => json_name().map(|p| Node::Policy(*scope, p.into())),
            _ => None,
        }
    }

    /// The path below the mount point, for messages and `.iamfs/errors`.
    pub fn path(&self) -> String {
        let entity = |kind: Kind, name: &str| format!("{}/{name}", kind_dir(kind));
        match self {
            Node::Root => "/".into(),
            Node::KindDir(k) => kind_dir(*k).into(),
            Node::Entity(k, n) => entity(*k, n),
            Node::EntityJson(k, n) => {
                format!("{}/{}.json", entity(*k, n), k.api().to_lowercase())
            }
            Node::InlineDir(k, n) => format!("{}/policies", entity(*k, n)),
            Node::Inline(k, n, p) => format!("{}/policies/{p}{JSON}", entity(*k, n)),
            Node::AttachedDir(k, n) => format!("{}/attached", entity(*k, n)),
            Node::Attached(k, n, p) => format!("{}/attached/{p}", entity(*k, n)),
            Node::LinksDir(k, n) => format!("{}/{}", entity(*k, n), links_dir(*k)),
            Node::Link(k, n, l) => format!("{}/{}/{l}", entity(*k, n), links_dir(*k)),
            Node::AccessKeys(n) => format!("{}/access-keys.json", entity(Kind::User, n)),
            Node::Tags(k, n) => format!("{}/tags.json", entity(*k, n)),
            Node::TrustPolicy(n) => format!("{}/trust-policy.json", entity(Kind::Role, n)),
            Node::Credentials(n) => format!("{}/credentials", entity(Kind::Role, n)),
            Node::Env(n) => format!("{}/env", entity(Kind::Role, n)),
            Node::PoliciesDir(s) => scope_dir(*s).into(),
            Node::Policy(s, p) => format!("{}/{p}{JSON}", scope_dir(*s)),
            Node::ControlDir => ".iamfs".into(),
            Node::Scratch(dir, name) | Node::ScratchLink(dir, name) => {
                format!("{}/{name}", dir.path())
            }
            Node::Control(c) => format!(
                ".iamfs/{}",
                match c {
                    ControlFile::Status => "status",
                    ControlFile::Errors => "errors",
                    ControlFile::Refresh => "refresh",
                    ControlFile::Mfa => "mfa",
                }
            ),
        }
    }
}

/// Where a managed policy's file is, relative to an entity's attached/ folder.
pub fn policy_link_target(policy_name: &str, aws_managed: bool) -> String {
    let dir = if aws_managed {
        "aws-policies"
    } else {
        "policies"
    };
    format!("../../../{dir}/{policy_name}{JSON}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_membership_belongs_to_both_ends() {
        let link = Node::Link(Kind::User, "u".into(), "g".into());
        assert_eq!(
            link.owners().collect::<Vec<_>>(),
            [
                Owner::Entity(Kind::User, "u"),
                Owner::Entity(Kind::Group, "g")
            ]
        );
        assert_eq!(
            Node::TrustPolicy("r".into()).owners().collect::<Vec<_>>(),
            [Owner::Entity(Kind::Role, "r")]
        );
        let scratch = Node::Scratch(
            Box::new(Node::InlineDir(Kind::Role, "r".into())),
            "x~".into(),
        );
        assert!(scratch.owners().next().is_none());
    }

    #[test]
    fn children_round_trip_through_paths() {
        let role = Node::Entity(Kind::Role, "r1".into());
        assert_eq!(
            role.child("trust-policy.json"),
            Some(Node::TrustPolicy("r1".into()))
        );
        assert_eq!(
            role.child("policies").unwrap().child("p.json"),
            Some(Node::Inline(Kind::Role, "r1".into(), "p".into()))
        );
        assert_eq!(Node::InlineDir(Kind::Role, "r1".into()).child("p"), None);
        assert_eq!(
            Node::InlineDir(Kind::Role, "r1".into()).child(".json"),
            None
        );
        assert_eq!(
            Node::Inline(Kind::Role, "r1".into(), "p".into()).path(),
            "roles/r1/policies/p.json"
        );
        assert_eq!(
            Node::Link(Kind::Group, "g".into(), "u".into()).path(),
            "groups/g/members/u"
        );
        assert_eq!(
            Node::Entity(Kind::Group, "g".into()).child("tags.json"),
            None
        );
    }

    #[test]
    fn modes_follow_the_design() {
        assert_eq!(Node::Credentials("r".into()).perm(), 0o400);
        assert_eq!(Node::EntityJson(Kind::User, "u".into()).perm(), 0o444);
        assert_eq!(Node::Policy(PolicyScope::Local, "p".into()).perm(), 0o644);
        assert_eq!(Node::Policy(PolicyScope::Aws, "p".into()).perm(), 0o444);
        assert_eq!(Node::KindDir(Kind::Role).perm(), 0o755);
    }
}
