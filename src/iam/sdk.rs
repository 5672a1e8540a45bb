//! The `Iam` trait over aws-sdk-iam and aws-sdk-sts.

use std::time::SystemTime;

use async_trait::async_trait;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types as t;
use aws_smithy_types::DateTime;

use super::{
    AccessKey, AccessKeyLastUsed, AccountDetails, AttachedPolicy, CallerIdentity, DetailsFilter,
    Entity, EntityDetail, Iam, InstanceProfile, Kind, LoginProfile, ManagedPolicy, MfaDevice, Page,
    PasswordPolicy, PermissionsBoundary, PolicyDetail, PolicyScope, PolicyVersion, RoleLastUsed,
    Tag,
};
use crate::error::{ErrorKind, IamError, Result};
use crate::model::RoleCredentials;

/// Sends a request; IAM's (or STS's) errors become ours.
macro_rules! send {
    ($request:expr) => {
        $request.send().await.map_err(sdk_error)
    };
}

/// Sends a list request for the page from `marker` (pages as large as IAM
/// gives) and makes a page of the items `|out| items` takes from the answer.
macro_rules! list_page {
    ($request:expr, $marker:expr, |$out:ident| $items:expr) => {{
        let $out = send!($request.set_marker($marker).max_items(MAX_ITEMS))?;
        Ok(page($items, $out.is_truncated(), $out.marker()))
    }};
}

/// Sends the user, group or role form of an operation, whichever `kind`
/// names. `[user_op, group_op, role_op]` are the client's builders; with
/// `name:` each is given the entity's name (UserName, GroupName, RoleName);
/// a form in parentheses adds setters of its own, and `-` marks a kind the
/// operation has no form for (answered with the `else` error). The setters
/// after the forms go to all of them, and `|out| answer` (a `Result`) is
/// written once for the three answers, which share their accessors.
macro_rules! per_kind {
    ($iam:expr, $kind:expr, $(name: $name:expr,)? [$user:tt, $group:tt, $role:tt]
        $(.$set:ident($v:expr))*, |$out:ident| $answer:expr $(, else $none:expr)? $(,)?) => {
        match $kind {
            Kind::User => per_kind!(@send $iam, $user, [$(.user_name($name))? $(.$set($v))*],
                |$out| $answer $(, else $none)?),
            Kind::Group => per_kind!(@send $iam, $group, [$(.group_name($name))? $(.$set($v))*],
                |$out| $answer $(, else $none)?),
            Kind::Role => per_kind!(@send $iam, $role, [$(.role_name($name))? $(.$set($v))*],
                |$out| $answer $(, else $none)?),
        }
    };
    (@send $iam:expr, -, [$($set:tt)*], |$out:ident| $answer:expr, else $none:expr) => {
        Err($none)
    };
    (@send $iam:expr, $op:ident, [$($set:tt)*], |$out:ident| $answer:expr $(, else $none:expr)?) => {{
        let $out = send!($iam.$op() $($set)*)?;
        $answer
    }};
    (@send $iam:expr, ($op:ident $($own:tt)*), [$($set:tt)*], |$out:ident| $answer:expr
        $(, else $none:expr)?) => {{
        let $out = send!($iam.$op() $($own)* $($set)*)?;
        $answer
    }};
}

/// Page size asked of every list call (IAM's maximum).
const MAX_ITEMS: i32 = 1000;

pub struct SdkIam {
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
}

impl SdkIam {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            iam: aws_sdk_iam::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
        }
    }
}

/// Turns any SDK error into an `IamError` with IAM's code and message.
pub fn sdk_error<E, R>(err: SdkError<E, R>) -> IamError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match &err {
        SdkError::TimeoutError(_) => IamError::new(
            ErrorKind::Unreachable,
            "Timeout",
            "the IAM endpoint did not answer in time",
        ),
        // The credentials provider failed before anything was sent (an
        // expired SSO token, an MFA session waiting for a code): the SDK
        // reports that as a dispatch failure.
        SdkError::DispatchFailure(_) if credentials_failure(&err).is_some() => IamError::new(
            ErrorKind::CredentialsExpired,
            "CredentialsUnavailable",
            credentials_failure(&err).unwrap_or_default(),
        ),
        SdkError::DispatchFailure(failure) => IamError::new(
            ErrorKind::Unreachable,
            "DispatchFailure",
            format!(
                "cannot reach the IAM endpoint: {:?}",
                failure.as_connector_error()
            ),
        ),
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let code = inner.code().unwrap_or("Unknown");
            let message = inner.message().unwrap_or("").to_string();
            IamError::from_code(code, message)
        }
        other => IamError::new(ErrorKind::Other, "SdkError", format!("{other:?}")),
    }
}

/// The message of a credentials provider's failure somewhere in `err`'s
/// sources: the provider's own words, its sources after it.
fn credentials_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    use aws_credential_types::provider::error::CredentialsError;
    let mut source = err.source();
    while let Some(e) = source {
        if e.downcast_ref::<CredentialsError>().is_some() {
            let mut parts = Vec::new();
            let mut inner = e.source();
            while let Some(i) = inner {
                parts.push(i.to_string());
                inner = i.source();
            }
            if parts.is_empty() {
                parts.push(e.to_string());
            }
            return Some(parts.join(": "));
        }
        source = e.source();
    }
    None
}

/// An error and its sources, as one line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

fn groups_have_no_tags() -> IamError {
    IamError::new(
        ErrorKind::InvalidInput,
        "InvalidInput",
        "IAM groups cannot be tagged",
    )
}

fn groups_have_no_boundary() -> IamError {
    IamError::new(
        ErrorKind::InvalidInput,
        "InvalidInput",
        "IAM groups have no permissions boundary",
    )
}

fn instance_profile(p: &t::InstanceProfile, with_tags: bool) -> InstanceProfile {
    InstanceProfile {
        name: p.instance_profile_name().to_string(),
        path: p.path().to_string(),
        id: p.instance_profile_id().to_string(),
        arn: p.arn().to_string(),
        create_date: time(p.create_date()),
        roles: p
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect(),
        tags: with_tags.then(|| tags(p.tags())),
    }
}

fn time(dt: &DateTime) -> SystemTime {
    SystemTime::try_from(*dt).unwrap_or(SystemTime::UNIX_EPOCH)
}

fn opt_time(dt: Option<&DateTime>) -> Option<SystemTime> {
    dt.map(time)
}

/// One page of a list answer: IAM's Marker counts only while IsTruncated.
fn page<T>(items: Vec<T>, truncated: bool, marker: Option<&str>) -> Page<T> {
    Page {
        items,
        marker: marker.filter(|_| truncated).map(str::to_string),
    }
}

fn tags(tags: &[t::Tag]) -> Vec<Tag> {
    tags.iter()
        .map(|tag| Tag {
            key: tag.key().to_string(),
            value: tag.value().to_string(),
        })
        .collect()
}

fn boundary(b: Option<&t::AttachedPermissionsBoundary>) -> Option<PermissionsBoundary> {
    b.map(|b| PermissionsBoundary {
        kind: b
            .permissions_boundary_type()
            .map(|k| k.as_str().to_string())
            .unwrap_or_default(),
        arn: b.permissions_boundary_arn().unwrap_or_default().to_string(),
    })
}

fn role_last_used(r: Option<&t::RoleLastUsed>) -> Option<RoleLastUsed> {
    r.map(|r| RoleLastUsed {
        date: opt_time(r.last_used_date()),
        region: r.region().map(str::to_string),
    })
}

/// A user, group or role as IAM returns it. `complete`: it came from a Get
/// or Create (lists leave out tags, boundaries and last use).
trait Principal {
    fn entity(&self, complete: bool) -> Entity;
}

impl Principal for t::User {
    fn entity(&self, complete: bool) -> Entity {
        let mut e = Entity::new(
            Kind::User,
            self.user_name(),
            self.user_id(),
            self.arn(),
            time(self.create_date()),
        );
        e.path = self.path().to_string();
        e.password_last_used = opt_time(self.password_last_used());
        if complete {
            e.permissions_boundary = boundary(self.permissions_boundary());
            e.tags = Some(tags(self.tags()));
            e.complete = true;
        }
        e
    }
}

impl Principal for t::Group {
    /// A group is complete in any answer: it has no tags or boundary.
    fn entity(&self, _complete: bool) -> Entity {
        let mut e = Entity::new(
            Kind::Group,
            self.group_name(),
            self.group_id(),
            self.arn(),
            time(self.create_date()),
        );
        e.path = self.path().to_string();
        e.complete = true;
        e
    }
}

impl Principal for t::Role {
    fn entity(&self, complete: bool) -> Entity {
        let mut e = Entity::new(
            Kind::Role,
            self.role_name(),
            self.role_id(),
            self.arn(),
            time(self.create_date()),
        );
        e.path = self.path().to_string();
        e.trust_policy = self.assume_role_policy_document().map(str::to_string);
        e.description = self.description().map(str::to_string);
        e.max_session_duration = self.max_session_duration();
        if complete {
            e.permissions_boundary = boundary(self.permissions_boundary());
            e.tags = Some(tags(self.tags()));
            e.role_last_used = role_last_used(self.role_last_used());
            e.complete = true;
        }
        e
    }
}

/// The principals an answer carries: a list's page, or the one a Get or
/// Create returns.
trait Principals {
    fn principals(&self) -> Vec<Entity>;
}

macro_rules! principals {
    ($($op:ident::$output:ident: $get:ident, $complete:literal;)*) => {$(
        impl Principals for aws_sdk_iam::operation::$op::$output {
            fn principals(&self) -> Vec<Entity> {
                self.$get().into_iter().map(|p| p.entity($complete)).collect()
            }
        }
    )*};
}

principals! {
    list_users::ListUsersOutput: users, false;
    list_groups::ListGroupsOutput: groups, false;
    list_roles::ListRolesOutput: roles, false;
    get_user::GetUserOutput: user, true;
    get_group::GetGroupOutput: group, true;
    get_role::GetRoleOutput: role, true;
    create_user::CreateUserOutput: user, true;
    create_group::CreateGroupOutput: group, true;
    create_role::CreateRoleOutput: role, true;
}

/// The one principal a Get or Create answered with.
fn the_one(mut principals: Vec<Entity>, what: impl std::fmt::Display) -> Result<Entity> {
    principals
        .pop()
        .ok_or_else(|| IamError::no_such_entity(what))
}

fn policy(p: &t::Policy) -> ManagedPolicy {
    let create_date = opt_time(p.create_date()).unwrap_or(SystemTime::UNIX_EPOCH);
    ManagedPolicy {
        name: p.policy_name().unwrap_or_default().to_string(),
        arn: p.arn().unwrap_or_default().to_string(),
        path: p.path().unwrap_or("/").to_string(),
        default_version_id: p.default_version_id().unwrap_or("v1").to_string(),
        attachment_count: p.attachment_count().unwrap_or(0),
        create_date,
        update_date: opt_time(p.update_date()).unwrap_or(create_date),
    }
}

fn attached(list: &[t::AttachedPolicy]) -> Vec<AttachedPolicy> {
    list.iter()
        .map(|a| AttachedPolicy {
            name: a.policy_name().unwrap_or_default().to_string(),
            arn: a.policy_arn().unwrap_or_default().to_string(),
        })
        .collect()
}

fn inline(list: &[t::PolicyDetail]) -> Vec<(String, String)> {
    list.iter()
        .map(|p| {
            (
                p.policy_name().unwrap_or_default().to_string(),
                p.policy_document().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn detail_entity(
    kind: Kind,
    path: Option<&str>,
    name: Option<&str>,
    id: Option<&str>,
    arn: Option<&str>,
    created: Option<&DateTime>,
) -> Entity {
    let mut e = Entity::new(
        kind,
        name.unwrap_or_default(),
        id.unwrap_or_default(),
        arn.unwrap_or_default(),
        opt_time(created).unwrap_or(SystemTime::UNIX_EPOCH),
    );
    e.path = path.unwrap_or("/").to_string();
    e
}

fn account_details(
    out: &aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput,
) -> AccountDetails {
    let mut details = AccountDetails::default();
    for u in out.user_detail_list() {
        let mut e = detail_entity(
            Kind::User,
            u.path(),
            u.user_name(),
            u.user_id(),
            u.arn(),
            u.create_date(),
        );
        e.permissions_boundary = boundary(u.permissions_boundary());
        e.tags = Some(tags(u.tags()));
        details.principals.push(EntityDetail {
            entity: e,
            inline: inline(u.user_policy_list()),
            attached: attached(u.attached_managed_policies()),
            groups: u.group_list().to_vec(),
        });
    }
    for g in out.group_detail_list() {
        let mut e = detail_entity(
            Kind::Group,
            g.path(),
            g.group_name(),
            g.group_id(),
            g.arn(),
            g.create_date(),
        );
        e.complete = true;
        details.principals.push(EntityDetail {
            entity: e,
            inline: inline(g.group_policy_list()),
            attached: attached(g.attached_managed_policies()),
            groups: Vec::new(),
        });
    }
    for r in out.role_detail_list() {
        let mut e = detail_entity(
            Kind::Role,
            r.path(),
            r.role_name(),
            r.role_id(),
            r.arn(),
            r.create_date(),
        );
        e.trust_policy = r.assume_role_policy_document().map(str::to_string);
        e.permissions_boundary = boundary(r.permissions_boundary());
        e.tags = Some(tags(r.tags()));
        e.role_last_used = role_last_used(r.role_last_used());
        details.principals.push(EntityDetail {
            entity: e,
            inline: inline(r.role_policy_list()),
            attached: attached(r.attached_managed_policies()),
            groups: Vec::new(),
        });
    }
    for p in out.policies() {
        let create_date = opt_time(p.create_date()).unwrap_or(SystemTime::UNIX_EPOCH);
        let default_version_id = p.default_version_id().unwrap_or("v1").to_string();
        let default_document = p
            .policy_version_list()
            .iter()
            .find(|v| v.is_default_version() || v.version_id() == Some(&default_version_id))
            .and_then(|v| v.document())
            .map(str::to_string);
        let versions = p
            .policy_version_list()
            .iter()
            .map(|v| {
                let version = PolicyVersion {
                    id: v.version_id().unwrap_or_default().to_string(),
                    is_default: v.is_default_version(),
                    create_date: opt_time(v.create_date()).unwrap_or(create_date),
                };
                (version, v.document().map(str::to_string))
            })
            .collect();
        details.policies.push(PolicyDetail {
            versions,
            policy: ManagedPolicy {
                // Some endpoints (moto) leave PolicyName out here; the ARN ends with it.
                name: p
                    .policy_name()
                    .or_else(|| p.arn().and_then(|a| a.rsplit('/').next()))
                    .unwrap_or_default()
                    .to_string(),
                arn: p.arn().unwrap_or_default().to_string(),
                path: p.path().unwrap_or("/").to_string(),
                default_version_id,
                attachment_count: p.attachment_count().unwrap_or(0),
                create_date,
                update_date: opt_time(p.update_date()).unwrap_or(create_date),
            },
            default_document,
        });
    }
    details
}

#[async_trait]
impl Iam for SdkIam {
    async fn list_entities(&self, kind: Kind, marker: Option<String>) -> Result<Page<Entity>> {
        per_kind!(
            self.iam,
            kind,
            [list_users, list_groups, list_roles]
                .set_marker(marker)
                .max_items(MAX_ITEMS),
            |o| Ok(page(o.principals(), o.is_truncated(), o.marker()))
        )
    }

    async fn get_entity(&self, kind: Kind, name: &str) -> Result<Entity> {
        let what = format!("{} {name}", kind.api().to_lowercase());
        per_kind!(
            self.iam,
            kind,
            name: name,
            // GetGroup also lists the members: one is enough here.
            [get_user, (get_group.max_items(1)), get_role],
            |o| the_one(o.principals(), what)
        )
    }

    async fn get_group_members(&self, group: &str, marker: Option<String>) -> Result<Page<String>> {
        list_page!(self.iam.get_group().group_name(group), marker, |out| out
            .users()
            .iter()
            .map(|u| u.user_name().to_string())
            .collect())
    }

    async fn list_groups_for_user(
        &self,
        user: &str,
        marker: Option<String>,
    ) -> Result<Page<String>> {
        list_page!(
            self.iam.list_groups_for_user().user_name(user),
            marker,
            |out| out
                .groups()
                .iter()
                .map(|g| g.group_name().to_string())
                .collect()
        )
    }

    async fn list_inline_policies(
        &self,
        kind: Kind,
        name: &str,
        marker: Option<String>,
    ) -> Result<Page<String>> {
        per_kind!(
            self.iam,
            kind,
            name: name,
            [list_user_policies, list_group_policies, list_role_policies]
                .set_marker(marker)
                .max_items(MAX_ITEMS),
            |o| Ok(page(o.policy_names().to_vec(), o.is_truncated(), o.marker()))
        )
    }

    async fn get_inline_policy(&self, kind: Kind, name: &str, policy: &str) -> Result<String> {
        per_kind!(
            self.iam,
            kind,
            name: name,
            [get_user_policy, get_group_policy, get_role_policy].policy_name(policy),
            |o| Ok(o.policy_document)
        )
    }

    async fn list_attached_policies(
        &self,
        kind: Kind,
        name: &str,
        marker: Option<String>,
    ) -> Result<Page<AttachedPolicy>> {
        per_kind!(
            self.iam,
            kind,
            name: name,
            [list_attached_user_policies, list_attached_group_policies, list_attached_role_policies]
                .set_marker(marker)
                .max_items(MAX_ITEMS),
            |o| Ok(page(attached(o.attached_policies()), o.is_truncated(), o.marker()))
        )
    }

    async fn list_policies(
        &self,
        scope: PolicyScope,
        marker: Option<String>,
    ) -> Result<Page<ManagedPolicy>> {
        let scope = match scope {
            PolicyScope::Local => t::PolicyScopeType::Local,
            PolicyScope::Aws => t::PolicyScopeType::Aws,
        };
        list_page!(self.iam.list_policies().scope(scope), marker, |out| out
            .policies()
            .iter()
            .map(policy)
            .collect())
    }

    async fn get_policy_version(&self, arn: &str, version_id: &str) -> Result<String> {
        let out = send!(self
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version_id))?;
        Ok(out
            .policy_version()
            .and_then(|v| v.document())
            .unwrap_or_default()
            .to_string())
    }

    async fn list_access_keys(
        &self,
        user: &str,
        marker: Option<String>,
    ) -> Result<Page<AccessKey>> {
        list_page!(self.iam.list_access_keys().user_name(user), marker, |out| {
            out.access_key_metadata()
                .iter()
                .map(|k| AccessKey {
                    id: k.access_key_id().unwrap_or_default().to_string(),
                    status: k
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    create_date: opt_time(k.create_date()),
                })
                .collect()
        })
    }

    async fn get_access_key_last_used(&self, key_id: &str) -> Result<AccessKeyLastUsed> {
        let out = send!(self.iam.get_access_key_last_used().access_key_id(key_id))?;
        Ok(out
            .access_key_last_used()
            .map(|l| AccessKeyLastUsed {
                date: opt_time(l.last_used_date()),
                service: Some(l.service_name().to_string()),
                region: Some(l.region().to_string()),
            })
            .unwrap_or_default())
    }

    async fn get_account_authorization_details(
        &self,
        filter: DetailsFilter,
        marker: Option<String>,
    ) -> Result<Page<AccountDetails>> {
        let filters = match filter {
            DetailsFilter::Users => vec![t::EntityType::User],
            DetailsFilter::Groups => vec![t::EntityType::Group, t::EntityType::User],
            DetailsFilter::Roles => vec![t::EntityType::Role],
            DetailsFilter::LocalManagedPolicies => vec![t::EntityType::LocalManagedPolicy],
            DetailsFilter::AwsManagedPolicies => vec![t::EntityType::AwsManagedPolicy],
        };
        let request = self.iam.get_account_authorization_details();
        list_page!(request.set_filter(Some(filters)), marker, |out| vec![
            account_details(&out)
        ])
    }

    async fn create_entity(
        &self,
        kind: Kind,
        name: &str,
        trust_policy: Option<&str>,
    ) -> Result<Entity> {
        per_kind!(
            self.iam,
            kind,
            name: name,
            [
                create_user,
                create_group,
                (create_role.assume_role_policy_document(trust_policy.unwrap_or_default()))
            ],
            |o| the_one(o.principals(), name)
        )
    }

    async fn delete_entity(&self, kind: Kind, name: &str) -> Result<()> {
        per_kind!(
            self.iam,
            kind,
            name: name,
            [delete_user, delete_group, delete_role],
            |_done| Ok(())
        )
    }

    async fn rename_entity(&self, kind: Kind, name: &str, new_name: &str) -> Result<()> {
        per_kind!(
            self.iam,
            kind,
            name: name,
            [
                (update_user.new_user_name(new_name)),
                (update_group.new_group_name(new_name)),
                -
            ],
            |_done| Ok(()),
            else IamError::new(ErrorKind::NotPermitted, "NotPermitted", "IAM cannot rename a role")
        )
    }

    async fn put_inline_policy(
        &self,
        kind: Kind,
        name: &str,
        policy: &str,
        document: &str,
    ) -> Result<()> {
        per_kind!(
            self.iam,
            kind,
            name: name,
            [put_user_policy, put_group_policy, put_role_policy]
                .policy_name(policy)
                .policy_document(document),
            |_done| Ok(())
        )
    }

    async fn delete_inline_policy(&self, kind: Kind, name: &str, policy: &str) -> Result<()> {
        per_kind!(
            self.iam,
            kind,
            name: name,
            [delete_user_policy, delete_group_policy, delete_role_policy].policy_name(policy),
            |_done| Ok(())
        )
    }

    async fn attach_policy(&self, kind: Kind, name: &str, arn: &str) -> Result<()> {
        per_kind!(
            self.iam,
            kind,
            name: name,
            [attach_user_policy, attach_group_policy, attach_role_policy].policy_arn(arn),
            |_done| Ok(())
        )
    }

    async fn detach_policy(&self, kind: Kind, name: &str, arn: &str) -> Result<()> {
        per_kind!(
            self.iam,
            kind,
            name: name,
            [detach_user_policy, detach_group_policy, detach_role_policy].policy_arn(arn),
            |_done| Ok(())
        )
    }

    async fn add_user_to_group(&self, user: &str, group: &str) -> Result<()> {
        send!(self
            .iam
            .add_user_to_group()
            .user_name(user)
            .group_name(group))
        .map(|_| ())
    }

    async fn remove_user_from_group(&self, user: &str, group: &str) -> Result<()> {
        send!(self
            .iam
            .remove_user_from_group()
            .user_name(user)
            .group_name(group))
        .map(|_| ())
    }

    async fn update_trust_policy(&self, role: &str, document: &str) -> Result<()> {
        send!(self
            .iam
            .update_assume_role_policy()
            .role_name(role)
            .policy_document(document))
        .map(|_| ())
    }

    async fn tag_entity(&self, kind: Kind, name: &str, tags: &[Tag]) -> Result<()> {
        let sdk_tags: Vec<t::Tag> = tags
            .iter()
            .map(|tag| t::Tag::builder().key(&tag.key).value(&tag.value).build())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| IamError::new(ErrorKind::InvalidInput, "InvalidInput", e.to_string()))?;
        per_kind!(
            self.iam,
            kind,
            name: name,
            [tag_user, -, tag_role].set_tags(Some(sdk_tags)),
            |_done| Ok(()),
            else groups_have_no_tags()
        )
    }

    async fn untag_entity(&self, kind: Kind, name: &str, keys: &[String]) -> Result<()> {
        per_kind!(
            self.iam,
            kind,
            name: name,
            [untag_user, -, untag_role].set_tag_keys(Some(keys.to_vec())),
            |_done| Ok(()),
            else groups_have_no_tags()
        )
    }

    async fn set_default_policy_version(&self, arn: &str, version_id: &str) -> Result<()> {
        send!(self
            .iam
            .set_default_policy_version()
            .policy_arn(arn)
            .version_id(version_id))?;
        Ok(())
    }

    async fn update_role(
        &self,
        role: &str,
        description: &str,
        max_session_duration: i32,
    ) -> Result<()> {
        send!(self
            .iam
            .update_role()
            .role_name(role)
            .description(description)
            .max_session_duration(max_session_duration))?;
        Ok(())
    }

    async fn put_permissions_boundary(&self, kind: Kind, name: &str, arn: &str) -> Result<()> {
        per_kind!(
            self.iam,
            kind,
            name: name,
            [put_user_permissions_boundary, -, put_role_permissions_boundary]
                .permissions_boundary(arn),
            |_done| Ok(()),
            else groups_have_no_boundary()
        )
    }

    async fn delete_permissions_boundary(&self, kind: Kind, name: &str) -> Result<()> {
        per_kind!(
            self.iam,
            kind,
            name: name,
            [delete_user_permissions_boundary, -, delete_role_permissions_boundary],
            |_done| Ok(()),
            else groups_have_no_boundary()
        )
    }

    async fn list_instance_profiles(
        &self,
        marker: Option<String>,
    ) -> Result<Page<InstanceProfile>> {
        list_page!(self.iam.list_instance_profiles(), marker, |out| out
            .instance_profiles()
            .iter()
            .map(|p| instance_profile(p, false))
            .collect())
    }

    async fn get_instance_profile(&self, name: &str) -> Result<InstanceProfile> {
        let out = send!(self.iam.get_instance_profile().instance_profile_name(name))?;
        out.instance_profile()
            .map(|p| instance_profile(p, true))
            .ok_or_else(|| IamError::no_such_entity(format!("instance profile {name}")))
    }

    async fn create_instance_profile(&self, name: &str) -> Result<InstanceProfile> {
        let out = send!(self
            .iam
            .create_instance_profile()
            .instance_profile_name(name))?;
        out.instance_profile()
            .map(|p| instance_profile(p, true))
            .ok_or_else(|| IamError::no_such_entity(format!("instance profile {name}")))
    }

    async fn delete_instance_profile(&self, name: &str) -> Result<()> {
        send!(self
            .iam
            .delete_instance_profile()
            .instance_profile_name(name))?;
        Ok(())
    }

    async fn add_role_to_instance_profile(&self, profile: &str, role: &str) -> Result<()> {
        send!(self
            .iam
            .add_role_to_instance_profile()
            .instance_profile_name(profile)
            .role_name(role))?;
        Ok(())
    }

    async fn remove_role_from_instance_profile(&self, profile: &str, role: &str) -> Result<()> {
        send!(self
            .iam
            .remove_role_from_instance_profile()
            .instance_profile_name(profile)
            .role_name(role))?;
        Ok(())
    }

    async fn get_account_summary(&self) -> Result<Vec<(String, i64)>> {
        let out = send!(self.iam.get_account_summary())?;
        let mut summary: Vec<(String, i64)> = out
            .summary_map()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str().to_string(), i64::from(*v)))
            .collect();
        summary.sort();
        Ok(summary)
    }

    async fn get_password_policy(&self) -> Result<Option<PasswordPolicy>> {
        let out = match send!(self.iam.get_account_password_policy()) {
            Ok(out) => out,
            Err(e) if e.kind == ErrorKind::NoSuchEntity => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(out.password_policy().map(|p| PasswordPolicy {
            minimum_password_length: p.minimum_password_length(),
            require_symbols: p.require_symbols(),
            require_numbers: p.require_numbers(),
            require_uppercase_characters: p.require_uppercase_characters(),
            require_lowercase_characters: p.require_lowercase_characters(),
            allow_users_to_change_password: p.allow_users_to_change_password(),
            expire_passwords: p.expire_passwords(),
            max_password_age: p.max_password_age(),
            password_reuse_prevention: p.password_reuse_prevention(),
            hard_expiry: p.hard_expiry(),
        }))
    }

    async fn update_password_policy(&self, p: &PasswordPolicy) -> Result<()> {
        send!(self
            .iam
            .update_account_password_policy()
            .set_minimum_password_length(p.minimum_password_length)
            .require_symbols(p.require_symbols)
            .require_numbers(p.require_numbers)
            .require_uppercase_characters(p.require_uppercase_characters)
            .require_lowercase_characters(p.require_lowercase_characters)
            .allow_users_to_change_password(p.allow_users_to_change_password)
            .set_max_password_age(p.max_password_age)
            .set_password_reuse_prevention(p.password_reuse_prevention)
            .set_hard_expiry(p.hard_expiry))?;
        Ok(())
    }

    async fn delete_password_policy(&self) -> Result<()> {
        send!(self.iam.delete_account_password_policy())?;
        Ok(())
    }

    async fn list_account_aliases(&self) -> Result<Vec<String>> {
        let out = send!(self.iam.list_account_aliases())?;
        Ok(out.account_aliases().to_vec())
    }

    async fn create_account_alias(&self, alias: &str) -> Result<()> {
        send!(self.iam.create_account_alias().account_alias(alias))?;
        Ok(())
    }

    async fn delete_account_alias(&self, alias: &str) -> Result<()> {
        send!(self.iam.delete_account_alias().account_alias(alias))?;
        Ok(())
    }

    async fn generate_credential_report(&self) -> Result<bool> {
        let out = send!(self.iam.generate_credential_report())?;
        Ok(out.state() == Some(&t::ReportStateType::Complete))
    }

    async fn get_credential_report(&self) -> Result<Option<Vec<u8>>> {
        match send!(self.iam.get_credential_report()) {
            Ok(out) => Ok(Some(
                out.content()
                    .map(|b| b.as_ref().to_vec())
                    .unwrap_or_default(),
            )),
            Err(e) if e.code == "ReportInProgress" => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list_mfa_devices(
        &self,
        user: &str,
        marker: Option<String>,
    ) -> Result<Page<MfaDevice>> {
        list_page!(self.iam.list_mfa_devices().user_name(user), marker, |out| {
            out.mfa_devices()
                .iter()
                .map(|d| MfaDevice {
                    serial_number: d.serial_number().to_string(),
                    enable_date: time(d.enable_date()),
                })
                .collect()
        })
    }

    async fn get_login_profile(&self, user: &str) -> Result<Option<LoginProfile>> {
        match send!(self.iam.get_login_profile().user_name(user)) {
            Ok(out) => Ok(out.login_profile().map(|p| LoginProfile {
                create_date: time(p.create_date()),
                password_reset_required: p.password_reset_required(),
            })),
            Err(e) if e.kind == ErrorKind::NoSuchEntity => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_policy(&self, name: &str, document: &str) -> Result<ManagedPolicy> {
        let out = send!(self
            .iam
            .create_policy()
            .policy_name(name)
            .policy_document(document))?;
        let p = out.policy().ok_or_else(|| IamError::no_such_entity(name))?;
        Ok(policy(p))
    }

    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<String> {
        let out = send!(self
            .iam
            .create_policy_version()
            .policy_arn(arn)
            .policy_document(document)
            .set_as_default(true))?;
        Ok(out
            .policy_version()
            .and_then(|v| v.version_id())
            .unwrap_or_default()
            .to_string())
    }

    async fn list_policy_versions(
        &self,
        arn: &str,
        marker: Option<String>,
    ) -> Result<Page<PolicyVersion>> {
        list_page!(
            self.iam.list_policy_versions().policy_arn(arn),
            marker,
            |out| out
                .versions()
                .iter()
                .map(|v| PolicyVersion {
                    id: v.version_id().unwrap_or_default().to_string(),
                    is_default: v.is_default_version(),
                    create_date: opt_time(v.create_date()).unwrap_or(SystemTime::UNIX_EPOCH),
                })
                .collect()
        )
    }

    async fn delete_policy_version(&self, arn: &str, version_id: &str) -> Result<()> {
        send!(self
            .iam
            .delete_policy_version()
            .policy_arn(arn)
            .version_id(version_id))
        .map(|_| ())
    }

    async fn delete_policy(&self, arn: &str) -> Result<()> {
        send!(self.iam.delete_policy().policy_arn(arn)).map(|_| ())
    }

    async fn list_entities_for_policy(
        &self,
        arn: &str,
        marker: Option<String>,
    ) -> Result<Page<(Kind, String)>> {
        let name = |n: Option<&str>| n.unwrap_or_default().to_string();
        list_page!(
            self.iam.list_entities_for_policy().policy_arn(arn),
            marker,
            |out| {
                let users = out
                    .policy_users()
                    .iter()
                    .map(|u| (Kind::User, name(u.user_name())));
                let groups = out
                    .policy_groups()
                    .iter()
                    .map(|g| (Kind::Group, name(g.group_name())));
                let roles = out
                    .policy_roles()
                    .iter()
                    .map(|r| (Kind::Role, name(r.role_name())));
                users.chain(groups).chain(roles).collect()
            }
        )
    }

    async fn caller_identity(&self) -> Result<CallerIdentity> {
        let out = send!(self.sts.get_caller_identity())?;
        Ok(CallerIdentity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
        })
    }

    async fn assume_role(
        &self,
        role_arn: &str,
        session_name: &str,
        duration_seconds: i32,
    ) -> Result<RoleCredentials> {
        let out = send!(self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .duration_seconds(duration_seconds))?;
        let c = out.credentials().ok_or_else(|| {
            IamError::new(
                ErrorKind::Other,
                "NoCredentials",
                "AssumeRole returned no credentials",
            )
        })?;
        Ok(RoleCredentials {
            access_key_id: c.access_key_id().to_string(),
            secret_access_key: c.secret_access_key().to_string(),
            session_token: c.session_token().to_string(),
            expiration: time(c.expiration()),
        })
    }
}
