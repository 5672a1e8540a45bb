//! The data iamfs knows IAM by: principals, policies, tags, credentials,
//! as the backend returns them. No paths, no errno, no rendering: those
//! belong to the layers above.

use std::time::SystemTime;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// The three kinds of IAM principal folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    User,
    Group,
    Role,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::User, Kind::Group, Kind::Role];

    /// IAM's word for it, as in `GetUser`, `ListRolePolicies`.
    pub fn api(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
            Kind::Role => "Role",
        }
    }

    /// The kind at the other end of a group membership.
    pub fn linked(self) -> Kind {
        if self == Kind::User {
            Kind::Group
        } else {
            Kind::User
        }
    }
}

/// A page of a paginated IAM list call.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Set when IAM said IsTruncated: pass it back as the next Marker.
    pub marker: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionsBoundary {
    pub kind: String,
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleLastUsed {
    pub date: Option<SystemTime>,
    pub region: Option<String>,
}

/// The path of service-linked roles, which only their AWS service may change.
pub const SERVICE_ROLE_PATH: &str = "/aws-service-role/";

/// An IAM user, group or role with what IAM's Get/List calls return.
/// Fields a list call does not return are `None`; `complete` says every
/// field a Get call returns is present.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub kind: Kind,
    pub path: String,
    pub name: String,
    pub id: String,
    pub arn: String,
    pub create_date: SystemTime,
    pub password_last_used: Option<SystemTime>,
    /// Raw AssumeRolePolicyDocument as IAM returned it (maybe URL-encoded).
    pub trust_policy: Option<String>,
    pub description: Option<String>,
    pub max_session_duration: Option<i32>,
    pub permissions_boundary: Option<PermissionsBoundary>,
    pub tags: Option<Vec<Tag>>,
    pub role_last_used: Option<RoleLastUsed>,
    pub complete: bool,
}

impl Entity {
    pub fn new(kind: Kind, name: &str, id: &str, arn: &str, create_date: SystemTime) -> Self {
        Self {
            kind,
            path: "/".into(),
            name: name.into(),
            id: id.into(),
            arn: arn.into(),
            create_date,
            password_last_used: None,
            trust_policy: None,
            description: None,
            max_session_duration: None,
            permissions_boundary: None,
            tags: None,
            role_last_used: None,
            complete: false,
        }
    }
}

/// A managed policy (customer or AWS), as ListPolicies/GetPolicy return it.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedPolicy {
    pub name: String,
    pub arn: String,
    pub path: String,
    pub default_version_id: String,
    pub attachment_count: i32,
    pub create_date: SystemTime,
    pub update_date: SystemTime,
}

impl ManagedPolicy {
    pub fn is_aws_managed(&self) -> bool {
        is_aws_managed_arn(&self.arn)
    }
}

pub fn is_aws_managed_arn(arn: &str) -> bool {
    arn.starts_with("arn:") && arn.split(':').nth(4) == Some("aws")
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyVersion {
    pub id: String,
    pub is_default: bool,
    pub create_date: SystemTime,
}

/// One entry of ListAttached{User,Group,Role}Policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedPolicy {
    pub name: String,
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessKey {
    pub id: String,
    pub status: String,
    pub create_date: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccessKeyLastUsed {
    pub date: Option<SystemTime>,
    pub service: Option<String>,
    pub region: Option<String>,
}

/// Which policy list to ask for (ListPolicies Scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyScope {
    Local,
    Aws,
}

/// One principal from GetAccountAuthorizationDetails.
#[derive(Debug, Clone)]
pub struct EntityDetail {
    pub entity: Entity,
    /// Inline policies: (name, raw document).
    pub inline: Vec<(String, String)>,
    pub attached: Vec<AttachedPolicy>,
    /// For users: the groups they belong to.
    pub groups: Vec<String>,
}

/// One managed policy from GetAccountAuthorizationDetails, with its default document.
#[derive(Debug, Clone)]
pub struct PolicyDetail {
    pub policy: ManagedPolicy,
    pub default_document: Option<String>,
    /// Every version, with its raw document where the answer has it.
    pub versions: Vec<(PolicyVersion, Option<String>)>,
}

/// What to ask GetAccountAuthorizationDetails for: a walk of one folder
/// reads the details of what that folder shows, not the whole account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailsFilter {
    Users,
    /// Groups, and users: a group's members are only in its users' details.
    Groups,
    Roles,
    LocalManagedPolicies,
    AwsManagedPolicies,
}

impl DetailsFilter {
    pub fn includes(self, kind: Kind) -> bool {
        matches!(
            (self, kind),
            (DetailsFilter::Users, Kind::User)
                | (DetailsFilter::Groups, Kind::Group | Kind::User)
                | (DetailsFilter::Roles, Kind::Role)
        )
    }

    /// Customer-managed (`Some(false)`) or AWS-managed (`Some(true)`) policies.
    pub fn policies(self) -> Option<bool> {
        match self {
            DetailsFilter::LocalManagedPolicies => Some(false),
            DetailsFilter::AwsManagedPolicies => Some(true),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AccountDetails {
    pub principals: Vec<EntityDetail>,
    pub policies: Vec<PolicyDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
}

impl CallerIdentity {
    /// The daemon itself runs on a role session: AssumeRole from it is chaining.
    pub fn is_role_session(&self) -> bool {
        self.arn.contains(":assumed-role/")
    }

    /// The partition of the caller's ARN (`aws`, `aws-cn`, `aws-us-gov`...):
    /// every ARN iamfs builds is in it.
    pub fn partition(&self) -> &str {
        partition_of(&self.arn)
    }

    /// The account's root principal, `arn:<partition>:iam::<account>:root`.
    pub fn account_root(&self) -> String {
        format!("arn:{}:iam::{}:root", self.partition(), self.account)
    }
}

/// The partition of an ARN; `aws` when it has none.
pub fn partition_of(arn: &str) -> &str {
    match arn.split(':').collect::<Vec<_>>()[..] {
        ["arn", partition, ..] if !partition.is_empty() => partition,
        _ => "aws",
    }
}

/// Temporary credentials from sts:AssumeRole. Debug (in credentials.rs)
/// never shows the secrets; zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RoleCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    #[zeroize(skip)]
    pub expiration: SystemTime,
}

/// The account's password policy, with IAM's field names (the file shows
/// it as IAM returns it; a save sends it back).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PasswordPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_password_length: Option<i32>,
    #[serde(default)]
    pub require_symbols: bool,
    #[serde(default)]
    pub require_numbers: bool,
    #[serde(default)]
    pub require_uppercase_characters: bool,
    #[serde(default)]
    pub require_lowercase_characters: bool,
    #[serde(default)]
    pub allow_users_to_change_password: bool,
    /// IAM's own: true when MaxPasswordAge is set. Ignored on a save.
    #[serde(default)]
    pub expire_passwords: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_password_age: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_reuse_prevention: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard_expiry: Option<bool>,
}

impl PasswordPolicy {
    /// Whether a save of `self` would change `current` (ExpirePasswords is
    /// IAM's to compute).
    pub fn same_as(&self, current: &PasswordPolicy) -> bool {
        let settable = |p: &PasswordPolicy| PasswordPolicy {
            expire_passwords: false,
            ..p.clone()
        };
        settable(self) == settable(current)
    }
}

/// One of a user's MFA devices (ListMFADevices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaDevice {
    pub serial_number: String,
    pub enable_date: SystemTime,
}

/// A user's console password, without the password (GetLoginProfile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginProfile {
    pub create_date: SystemTime,
    pub password_reset_required: bool,
}

/// An instance profile: how EC2 instances get a role (IAM allows one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceProfile {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub create_date: SystemTime,
    /// The roles in it, by name.
    pub roles: Vec<String>,
    /// Only GetInstanceProfile returns them; None from a list.
    pub tags: Option<Vec<Tag>>,
}
