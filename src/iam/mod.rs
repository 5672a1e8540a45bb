//! The IAM backend: one trait method per IAM API call, so that counting
//! calls here counts what the account is charged in requests.

pub mod memory;
pub mod sdk;

use std::collections::BTreeMap;
use std::time::SystemTime;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::Result;

/// The three kinds of IAM principal folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    User,
    Group,
    Role,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::User, Kind::Group, Kind::Role];

    /// The folder name at the top of the mount.
    pub fn dir(self) -> &'static str {
        match self {
            Kind::User => "users",
            Kind::Group => "groups",
            Kind::Role => "roles",
        }
    }

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
}

/// Counts API calls by operation name; read by `.iamfs/status` and tests.
#[derive(Debug, Default)]
pub struct CallCounter {
    calls: Mutex<BTreeMap<String, u64>>,
}

impl CallCounter {
    pub fn record(&self, op: &str) {
        *self.calls.lock().entry(op.to_string()).or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.calls.lock().clone()
    }

    pub fn get(&self, op: &str) -> u64 {
        self.calls.lock().get(op).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.calls.lock().values().sum()
    }
}

/// The IAM API as iamfs uses it. Every list method is one page of the
/// underlying call; callers follow `Page::marker`.
#[async_trait]
pub trait Iam: Send + Sync + 'static {
    fn calls(&self) -> &CallCounter;

    async fn list_entities(&self, kind: Kind, marker: Option<String>) -> Result<Page<Entity>>;
    async fn get_entity(&self, kind: Kind, name: &str) -> Result<Entity>;
    /// GetGroup: the group's members, one page at a time.
    async fn get_group_members(&self, group: &str, marker: Option<String>) -> Result<Page<String>>;
    async fn list_groups_for_user(
        &self,
        user: &str,
        marker: Option<String>,
    ) -> Result<Page<String>>;

    async fn list_inline_policies(
        &self,
        kind: Kind,
        name: &str,
        marker: Option<String>,
    ) -> Result<Page<String>>;
    /// The raw document, as IAM returned it.
    async fn get_inline_policy(&self, kind: Kind, name: &str, policy: &str) -> Result<String>;
    async fn list_attached_policies(
        &self,
        kind: Kind,
        name: &str,
        marker: Option<String>,
    ) -> Result<Page<AttachedPolicy>>;

    async fn list_policies(
        &self,
        scope: PolicyScope,
        marker: Option<String>,
    ) -> Result<Page<ManagedPolicy>>;
    async fn get_policy_version(&self, arn: &str, version_id: &str) -> Result<String>;

    async fn list_access_keys(&self, user: &str, marker: Option<String>)
        -> Result<Page<AccessKey>>;
    async fn get_access_key_last_used(&self, key_id: &str) -> Result<AccessKeyLastUsed>;

    /// GetAccountAuthorizationDetails: principals with their policies, or
    /// managed policies with their documents.
    async fn get_account_authorization_details(
        &self,
        filter: DetailsFilter,
        marker: Option<String>,
    ) -> Result<Page<AccountDetails>>;

    // ---- changes ----------------------------------------------------------

    /// CreateUser/CreateGroup/CreateRole (roles need a trust policy).
    async fn create_entity(
        &self,
        kind: Kind,
        name: &str,
        trust_policy: Option<&str>,
    ) -> Result<Entity>;
    async fn delete_entity(&self, kind: Kind, name: &str) -> Result<()>;
    /// UpdateUser/UpdateGroup with a new name (roles cannot be renamed).
    async fn rename_entity(&self, kind: Kind, name: &str, new_name: &str) -> Result<()>;
    async fn put_inline_policy(
        &self,
        kind: Kind,
        name: &str,
        policy: &str,
        document: &str,
    ) -> Result<()>;
    async fn delete_inline_policy(&self, kind: Kind, name: &str, policy: &str) -> Result<()>;
    async fn attach_policy(&self, kind: Kind, name: &str, arn: &str) -> Result<()>;
    async fn detach_policy(&self, kind: Kind, name: &str, arn: &str) -> Result<()>;
    async fn add_user_to_group(&self, user: &str, group: &str) -> Result<()>;
    async fn remove_user_from_group(&self, user: &str, group: &str) -> Result<()>;
    async fn update_trust_policy(&self, role: &str, document: &str) -> Result<()>;
    /// TagUser/TagRole.
    async fn tag_entity(&self, kind: Kind, name: &str, tags: &[Tag]) -> Result<()>;
    /// UntagUser/UntagRole.
    async fn untag_entity(&self, kind: Kind, name: &str, keys: &[String]) -> Result<()>;
    async fn create_policy(&self, name: &str, document: &str) -> Result<ManagedPolicy>;
    /// CreatePolicyVersion --set-as-default; returns the new version id.
    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<String>;
    async fn list_policy_versions(
        &self,
        arn: &str,
        marker: Option<String>,
    ) -> Result<Page<PolicyVersion>>;
    async fn delete_policy_version(&self, arn: &str, version_id: &str) -> Result<()>;
    async fn delete_policy(&self, arn: &str) -> Result<()>;
    /// ListEntitiesForPolicy: who has the policy attached.
    async fn list_entities_for_policy(
        &self,
        arn: &str,
        marker: Option<String>,
    ) -> Result<Page<(Kind, String)>>;

    /// sts:GetCallerIdentity.
    async fn caller_identity(&self) -> Result<CallerIdentity>;

    /// sts:AssumeRole.
    async fn assume_role(
        &self,
        role_arn: &str,
        session_name: &str,
        duration_seconds: i32,
    ) -> Result<crate::credentials::RoleCredentials>;
}

/// Follows Marker/IsTruncated until IAM says the list is complete.
pub async fn collect_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>>>,
{
    let mut items = Vec::new();
    let mut marker = None;
    loop {
        let page = fetch(marker.take()).await?;
        items.extend(page.items);
        match page.marker {
            Some(next) => marker = Some(next),
            None => return Ok(items),
        }
    }
}
