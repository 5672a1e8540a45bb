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

impl ControlFile {
    pub const ALL: [ControlFile; 4] = [
        ControlFile::Status,
        ControlFile::Errors,
        ControlFile::Refresh,
        ControlFile::Mfa,
    ];
}

/// A path in the mount, by meaning. Names are IAM names (no `.json`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    Root,
    /// users/, groups/, roles/
    KindDir(Kind),
    /// users/X
    EntityDir(Kind, String),
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
    /// roles/X/settings.json: Description and MaxSessionDuration.
    RoleSettings(String),
    /// users/X/boundary, roles/X/boundary (symlink to the boundary policy)
    Boundary(Kind, String),
    /// instance-profiles/
    InstanceProfilesDir,
    /// instance-profiles/P/
    InstanceProfileDir(String),
    /// instance-profiles/P/instance-profile.json
    InstanceProfileJson(String),
    /// instance-profiles/P/roles/
    InstanceProfileRoles(String),
    /// instance-profiles/P/roles/R (symlink to roles/R)
    InstanceProfileRole(String, String),
    /// roles/R/instance-profiles/
    RoleInstanceProfiles(String),
    /// roles/R/instance-profiles/P (symlink to instance-profiles/P)
    RoleInstanceProfile(String, String),
    /// users/X/mfa-devices.json
    MfaDevices(String),
    /// users/X/login-profile.json
    LoginProfile(String),
    /// account/
    AccountDir,
    /// account/summary.json
    AccountSummary,
    /// account/password-policy.json
    PasswordPolicy,
    /// account/alias
    AccountAlias,
    /// account/credential-report.csv
    CredentialReport,
    /// policy-versions/
    VersionsRoot,
    /// policy-versions/P/
    VersionsDir(String),
    /// policy-versions/P/v3.json (the version id, without .json)
    Version(String, String),
    /// policy-versions/P/default (symlink to the default version's file)
    DefaultVersion(String),
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
    /// The account's own settings (account/).
    Account,
    InstanceProfile(&'a str),
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
            | Node::EntityDir(..)
            | Node::InlineDir(..)
            | Node::AttachedDir(..)
            | Node::LinksDir(..)
            | Node::PoliciesDir(_)
            | Node::VersionsRoot
            | Node::VersionsDir(_)
            | Node::AccountDir
            | Node::InstanceProfilesDir
            | Node::InstanceProfileDir(_)
            | Node::InstanceProfileRoles(_)
            | Node::RoleInstanceProfiles(_)
            | Node::ControlDir => FileKind::Dir,
            Node::Attached(..)
            | Node::Link(..)
            | Node::Boundary(..)
            | Node::DefaultVersion(_)
            | Node::InstanceProfileRole(..)
            | Node::RoleInstanceProfile(..)
            | Node::ScratchLink(..) => FileKind::Symlink,
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
            | Node::Version(..)
            | Node::MfaDevices(_)
            | Node::LoginProfile(_)
            | Node::InstanceProfileJson(_)
            | Node::AccountSummary
            | Node::CredentialReport
            | Node::Control(ControlFile::Status | ControlFile::Errors) => 0o444,
            Node::Control(ControlFile::Refresh | ControlFile::Mfa) => 0o200,
            _ if self.file_kind() == FileKind::Symlink => 0o777,
            _ if self.file_kind() == FileKind::Dir => 0o755,
            _ => 0o644,
        }
    }

    /// The folder this node is in, and its name there.
    pub fn parent_and_name(&self) -> Option<(Node, String)> {
        Some((self.parent()?, self.name()))
    }

    /// The folder this node is in.
    pub fn parent(&self) -> Option<Node> {
        Some(match self {
            Node::Scratch(dir, _) | Node::ScratchLink(dir, _) => (**dir).clone(),
            Node::KindDir(_)
            | Node::PoliciesDir(_)
            | Node::VersionsRoot
            | Node::AccountDir
            | Node::InstanceProfilesDir
            | Node::ControlDir => Node::Root,
            Node::InstanceProfileDir(_) => Node::InstanceProfilesDir,
            Node::InstanceProfileJson(p) | Node::InstanceProfileRoles(p) => {
                Node::InstanceProfileDir(p.clone())
            }
            Node::InstanceProfileRole(p, _) => Node::InstanceProfileRoles(p.clone()),
            Node::RoleInstanceProfiles(r) => Node::EntityDir(Kind::Role, r.clone()),
            Node::RoleInstanceProfile(r, _) => Node::RoleInstanceProfiles(r.clone()),
            Node::AccountSummary
            | Node::PasswordPolicy
            | Node::AccountAlias
            | Node::CredentialReport => Node::AccountDir,
            Node::EntityDir(kind, _) => Node::KindDir(*kind),
            Node::Inline(kind, e, _) => Node::InlineDir(*kind, e.clone()),
            Node::Attached(kind, e, _) => Node::AttachedDir(*kind, e.clone()),
            Node::Link(kind, e, _) => Node::LinksDir(*kind, e.clone()),
            Node::Policy(scope, _) => Node::PoliciesDir(*scope),
            Node::VersionsDir(_) => Node::VersionsRoot,
            Node::Version(p, _) | Node::DefaultVersion(p) => Node::VersionsDir(p.clone()),
            Node::Control(_) => Node::ControlDir,
            Node::EntityJson(kind, e)
            | Node::InlineDir(kind, e)
            | Node::AttachedDir(kind, e)
            | Node::LinksDir(kind, e)
            | Node::Boundary(kind, e)
            | Node::Tags(kind, e) => Node::EntityDir(*kind, e.clone()),
            Node::AccessKeys(e) | Node::MfaDevices(e) | Node::LoginProfile(e) => {
                Node::EntityDir(Kind::User, e.clone())
            }
            Node::TrustPolicy(e) | Node::RoleSettings(e) | Node::Credentials(e) | Node::Env(e) => {
                Node::EntityDir(Kind::Role, e.clone())
            }
            Node::Root => return None,
        })
    }

    /// The entities and policies whose state this node shows: a change to
    /// one of them may change what the kernel was told of the node. A
    /// membership link shows both of its ends.
    pub fn owners(&self) -> impl Iterator<Item = Owner<'_>> {
        let (first, second) = match self {
            Node::EntityDir(kind, e)
            | Node::EntityJson(kind, e)
            | Node::InlineDir(kind, e)
            | Node::Inline(kind, e, _)
            | Node::AttachedDir(kind, e)
            | Node::Attached(kind, e, _)
            | Node::LinksDir(kind, e)
            | Node::Boundary(kind, e)
            | Node::Tags(kind, e) => (Some(Owner::Entity(*kind, e)), None),
            Node::Link(kind, e, other) => (
                Some(Owner::Entity(*kind, e)),
                Some(Owner::Entity(kind.linked(), other)),
            ),
            Node::AccessKeys(e) | Node::MfaDevices(e) | Node::LoginProfile(e) => {
                (Some(Owner::Entity(Kind::User, e)), None)
            }
            Node::AccountSummary
            | Node::PasswordPolicy
            | Node::AccountAlias
            | Node::CredentialReport => (Some(Owner::Account), None),
            Node::InstanceProfileDir(p)
            | Node::InstanceProfileJson(p)
            | Node::InstanceProfileRoles(p) => (Some(Owner::InstanceProfile(p)), None),
            Node::InstanceProfileRole(p, r) | Node::RoleInstanceProfile(r, p) => (
                Some(Owner::InstanceProfile(p)),
                Some(Owner::Entity(Kind::Role, r)),
            ),
            Node::RoleInstanceProfiles(r) => (Some(Owner::Entity(Kind::Role, r)), None),
            Node::TrustPolicy(e) | Node::RoleSettings(e) | Node::Credentials(e) | Node::Env(e) => {
                (Some(Owner::Entity(Kind::Role, e)), None)
            }
            Node::Policy(scope, p) => (Some(Owner::Policy(*scope, p)), None),
            Node::VersionsDir(p) | Node::Version(p, _) | Node::DefaultVersion(p) => {
                (Some(Owner::Policy(PolicyScope::Local, p)), None)
            }
            Node::Root
            | Node::KindDir(_)
            | Node::PoliciesDir(_)
            | Node::VersionsRoot
            | Node::AccountDir
            | Node::InstanceProfilesDir
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
                | Node::RoleSettings(_)
                | Node::PasswordPolicy
                | Node::AccountAlias
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

    /// The fixed children of a directory node.
    fn fixed_children(&self) -> Vec<Node> {
        match self {
            Node::Root => vec![
                Node::KindDir(Kind::User),
                Node::KindDir(Kind::Group),
                Node::KindDir(Kind::Role),
                Node::PoliciesDir(PolicyScope::Local),
                Node::PoliciesDir(PolicyScope::Aws),
                Node::InstanceProfilesDir,
                Node::VersionsRoot,
                Node::AccountDir,
                Node::ControlDir,
            ],
            Node::InstanceProfileDir(p) => vec![
                Node::InstanceProfileJson(p.clone()),
                Node::InstanceProfileRoles(p.clone()),
            ],
            Node::AccountDir => vec![
                Node::AccountSummary,
                Node::PasswordPolicy,
                Node::AccountAlias,
                Node::CredentialReport,
            ],
            Node::ControlDir => ControlFile::ALL.map(Node::Control).to_vec(),
            Node::VersionsDir(policy) => vec![Node::DefaultVersion(policy.clone())],
            Node::EntityDir(kind, name) => {
                let n = || name.clone();
                let mut v = vec![
                    Node::EntityJson(*kind, n()),
                    Node::InlineDir(*kind, n()),
                    Node::AttachedDir(*kind, n()),
                ];
                match kind {
                    Kind::User => v.extend([
                        Node::LinksDir(*kind, n()),
                        Node::AccessKeys(n()),
                        Node::MfaDevices(n()),
                        Node::LoginProfile(n()),
                        Node::Tags(*kind, n()),
                        Node::Boundary(*kind, n()),
                    ]),
                    Kind::Group => v.push(Node::LinksDir(*kind, n())),
                    Kind::Role => v.extend([
                        Node::TrustPolicy(n()),
                        Node::RoleSettings(n()),
                        Node::RoleInstanceProfiles(n()),
                        Node::Tags(*kind, n()),
                        Node::Boundary(*kind, n()),
                        Node::Credentials(n()),
                        Node::Env(n()),
                    ]),
                }
                v
            }
            _ => Vec::new(),
        }
    }

    /// The fixed children of a directory node, by name.
    pub fn static_children(&self) -> Vec<(String, Node)> {
        self.fixed_children()
            .into_iter()
            .map(|node| (node.name(), node))
            .collect()
    }

    /// The node a name in this directory would be, if it exists in IAM.
    pub fn child(&self, name: &str) -> Option<Node> {
        if let Some(node) = self.fixed_children().into_iter().find(|n| n.name() == name) {
            return Some(node);
        }
        let json_name = || name.strip_suffix(JSON).filter(|n| !n.is_empty());
        let s = name.to_string();
        match self {
            Node::KindDir(kind) => Some(Node::EntityDir(*kind, s)),
            Node::InlineDir(kind, e) => {
                json_name().map(|p| Node::Inline(*kind, e.clone(), p.into()))
            }
            Node::AttachedDir(kind, e) => Some(Node::Attached(*kind, e.clone(), s)),
            Node::LinksDir(kind, e) => Some(Node::Link(*kind, e.clone(), s)),
            Node::PoliciesDir(scope) => json_name().map(|p| Node::Policy(*scope, p.into())),
            Node::VersionsRoot => Some(Node::VersionsDir(s)),
            Node::InstanceProfilesDir => Some(Node::InstanceProfileDir(s)),
            Node::InstanceProfileRoles(p) => Some(Node::InstanceProfileRole(p.clone(), s)),
            Node::RoleInstanceProfiles(r) => Some(Node::RoleInstanceProfile(r.clone(), s)),
            Node::VersionsDir(p) => json_name()
                .filter(|v| is_version_id(v))
                .map(|v| Node::Version(p.clone(), v.into())),
            _ => None,
        }
    }

    /// Its name in its folder: the one place each fixed name is spelled.
    pub fn name(&self) -> String {
        let fixed = match self {
            Node::Root => "/",
            Node::KindDir(k) => kind_dir(*k),
            Node::PoliciesDir(s) => scope_dir(*s),
            Node::ControlDir => ".iamfs",
            Node::VersionsRoot => "policy-versions",
            Node::MfaDevices(_) => "mfa-devices.json",
            Node::InstanceProfilesDir | Node::RoleInstanceProfiles(_) => "instance-profiles",
            Node::InstanceProfileJson(_) => "instance-profile.json",
            Node::InstanceProfileRoles(_) => "roles",
            Node::LoginProfile(_) => "login-profile.json",
            Node::AccountDir => "account",
            Node::AccountSummary => "summary.json",
            Node::PasswordPolicy => "password-policy.json",
            Node::AccountAlias => "alias",
            Node::CredentialReport => "credential-report.csv",
            Node::RoleSettings(_) => "settings.json",
            Node::Boundary(..) => "boundary",
            Node::DefaultVersion(_) => "default",
            Node::Control(ControlFile::Status) => "status",
            Node::Control(ControlFile::Errors) => "errors",
            Node::Control(ControlFile::Refresh) => "refresh",
            Node::Control(ControlFile::Mfa) => "mfa",
            Node::EntityJson(Kind::User, _) => "user.json",
            Node::EntityJson(Kind::Group, _) => "group.json",
            Node::EntityJson(Kind::Role, _) => "role.json",
            Node::InlineDir(..) => "policies",
            Node::AttachedDir(..) => "attached",
            Node::LinksDir(k, _) => links_dir(*k),
            Node::AccessKeys(_) => "access-keys.json",
            Node::Tags(..) => "tags.json",
            Node::TrustPolicy(_) => "trust-policy.json",
            Node::Credentials(_) => "credentials",
            Node::Env(_) => "env",
            Node::EntityDir(_, name)
            | Node::VersionsDir(name)
            | Node::InstanceProfileDir(name)
            | Node::InstanceProfileRole(_, name)
            | Node::RoleInstanceProfile(_, name)
            | Node::Attached(_, _, name)
            | Node::Link(_, _, name)
            | Node::Scratch(_, name)
            | Node::ScratchLink(_, name) => return name.clone(),
            Node::Inline(_, _, name) | Node::Policy(_, name) | Node::Version(_, name) => {
                return format!("{name}{JSON}")
            }
        };
        fixed.to_string()
    }

    /// The path below the mount point, for messages and `.iamfs/errors`.
    pub fn path(&self) -> String {
        match self.parent() {
            None => "/".into(),
            Some(Node::Root) => self.name(),
            Some(parent) => format!("{}/{}", parent.path(), self.name()),
        }
    }
}

/// IAM's policy version ids: `v` and a number.
pub fn is_version_id(id: &str) -> bool {
    id.strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Where a managed policy's file is from `depth` folders below the mount.
pub fn policy_path_from(depth: usize, policy_name: &str, aws_managed: bool) -> String {
    let scope = if aws_managed {
        PolicyScope::Aws
    } else {
        PolicyScope::Local
    };
    format!(
        "{}{}/{policy_name}{JSON}",
        "../".repeat(depth),
        scope_dir(scope)
    )
}

/// Where a managed policy's file is, relative to an entity's attached/ folder.
pub fn policy_link_target(policy_name: &str, aws_managed: bool) -> String {
    policy_path_from(3, policy_name, aws_managed)
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
        let role = Node::EntityDir(Kind::Role, "r1".into());
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
            Node::EntityDir(Kind::Group, "g".into()).child("tags.json"),
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
