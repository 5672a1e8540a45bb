//! The `Iam` trait over aws-sdk-iam and aws-sdk-sts.

use std::time::SystemTime;

use async_trait::async_trait;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types as t;
use aws_smithy_types::DateTime;

use super::{
    AccessKey, AccessKeyLastUsed, AccountDetails, AttachedPolicy, CallerIdentity, DetailsFilter,
    Entity, EntityDetail, Iam, Kind, ManagedPolicy, Page, PermissionsBoundary, PolicyDetail,
    PolicyScope, PolicyVersion, RoleLastUsed, Tag,
};
use crate::error::{ErrorKind, IamError, Result};
use crate::model::RoleCredentials;

/// Calls the user, group or role form of an operation that takes the
/// entity's name and returns nothing we use.
macro_rules! per_kind {
    ($client:expr, $kind:expr, $name:expr, [$user:ident, $group:ident, $role:ident] $(, $set:ident($v:expr))* $(,)?) => {
        match $kind {
            Kind::User => $client.$user().user_name($name)$(.$set($v))*.send().await.map(|_| ()).map_err(sdk_error),
            Kind::Group => $client.$group().group_name($name)$(.$set($v))*.send().await.map(|_| ()).map_err(sdk_error),
            Kind::Role => $client.$role().role_name($name)$(.$set($v))*.send().await.map(|_| ()).map_err(sdk_error),
        }
    };
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
    R: std::fmt::Debug,
{
    match &err {
        SdkError::TimeoutError(_) => IamError::new(
            ErrorKind::Unreachable,
            "Timeout",
            "the IAM endpoint did not answer in time",
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

fn groups_have_no_tags() -> IamError {
    IamError::new(
        ErrorKind::InvalidInput,
        "InvalidInput",
        "IAM groups cannot be tagged",
    )
}

fn time(dt: &DateTime) -> SystemTime {
    SystemTime::try_from(*dt).unwrap_or(SystemTime::UNIX_EPOCH)
}

fn opt_time(dt: Option<&DateTime>) -> Option<SystemTime> {
    dt.map(time)
}

fn next_marker(truncated: bool, marker: Option<&str>) -> Option<String> {
    if truncated {
        marker.map(str::to_string)
    } else {
        None
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

fn user(u: &t::User, complete: bool) -> Entity {
    let mut e = Entity::new(
        Kind::User,
        u.user_name(),
        u.user_id(),
        u.arn(),
        time(u.create_date()),
    );
    e.path = u.path().to_string();
    e.password_last_used = opt_time(u.password_last_used());
    if complete {
        e.permissions_boundary = boundary(u.permissions_boundary());
        e.tags = Some(tags(u.tags()));
        e.complete = true;
    }
    e
}

fn group(g: &t::Group) -> Entity {
    let mut e = Entity::new(
        Kind::Group,
        g.group_name(),
        g.group_id(),
        g.arn(),
        time(g.create_date()),
    );
    e.path = g.path().to_string();
    e.complete = true;
    e
}

fn role(r: &t::Role, complete: bool) -> Entity {
    let mut e = Entity::new(
        Kind::Role,
        r.role_name(),
        r.role_id(),
        r.arn(),
        time(r.create_date()),
    );
    e.path = r.path().to_string();
    e.trust_policy = r.assume_role_policy_document().map(str::to_string);
    e.description = r.description().map(str::to_string);
    e.max_session_duration = r.max_session_duration();
    if complete {
        e.permissions_boundary = boundary(r.permissions_boundary());
        e.tags = Some(tags(r.tags()));
        e.role_last_used = role_last_used(r.role_last_used());
        e.complete = true;
    }
    e
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
        details.policies.push(PolicyDetail {
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
        match kind {
            Kind::User => {
                let out = self
                    .iam
                    .list_users()
                    .set_marker(marker)
                    .max_items(MAX_ITEMS)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Ok(Page {
                    items: out.users().iter().map(|u| user(u, false)).collect(),
                    marker: next_marker(out.is_truncated(), out.marker()),
                })
            }
            Kind::Group => {
                let out = self
                    .iam
                    .list_groups()
                    .set_marker(marker)
                    .max_items(MAX_ITEMS)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Ok(Page {
                    items: out.groups().iter().map(group).collect(),
                    marker: next_marker(out.is_truncated(), out.marker()),
                })
            }
            Kind::Role => {
                let out = self
                    .iam
                    .list_roles()
                    .set_marker(marker)
                    .max_items(MAX_ITEMS)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Ok(Page {
                    items: out.roles().iter().map(|r| role(r, false)).collect(),
                    marker: next_marker(out.is_truncated(), out.marker()),
                })
            }
        }
    }

    async fn get_entity(&self, kind: Kind, name: &str) -> Result<Entity> {
        match kind {
            Kind::User => {
                let out = self
                    .iam
                    .get_user()
                    .user_name(name)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                let u = out
                    .user()
                    .ok_or_else(|| IamError::no_such_entity(format!("user {name}")))?;
                Ok(user(u, true))
            }
            Kind::Group => {
                let out = self
                    .iam
                    .get_group()
                    .group_name(name)
                    .max_items(1)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                let g = out
                    .group()
                    .ok_or_else(|| IamError::no_such_entity(format!("group {name}")))?;
                Ok(group(g))
            }
            Kind::Role => {
                let out = self
                    .iam
                    .get_role()
                    .role_name(name)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                let r = out
                    .role()
                    .ok_or_else(|| IamError::no_such_entity(format!("role {name}")))?;
                Ok(role(r, true))
            }
        }
    }

    async fn get_group_members(&self, group: &str, marker: Option<String>) -> Result<Page<String>> {
        let out = self
            .iam
            .get_group()
            .group_name(group)
            .set_marker(marker)
            .max_items(MAX_ITEMS)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(Page {
            items: out
                .users()
                .iter()
                .map(|u| u.user_name().to_string())
                .collect(),
            marker: next_marker(out.is_truncated(), out.marker()),
        })
    }

    async fn list_groups_for_user(
        &self,
        user: &str,
        marker: Option<String>,
    ) -> Result<Page<String>> {
        let out = self
            .iam
            .list_groups_for_user()
            .user_name(user)
            .set_marker(marker)
            .max_items(MAX_ITEMS)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(Page {
            items: out
                .groups()
                .iter()
                .map(|g| g.group_name().to_string())
                .collect(),
            marker: next_marker(out.is_truncated(), out.marker()),
        })
    }

    async fn list_inline_policies(
        &self,
        kind: Kind,
        name: &str,
        marker: Option<String>,
    ) -> Result<Page<String>> {
        let (names, truncated, next) = match kind {
            Kind::User => {
                let o = self
                    .iam
                    .list_user_policies()
                    .user_name(name)
                    .set_marker(marker)
                    .max_items(MAX_ITEMS)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                (
                    o.policy_names().to_vec(),
                    o.is_truncated(),
                    o.marker().map(str::to_string),
                )
            }
            Kind::Group => {
                let o = self
                    .iam
                    .list_group_policies()
                    .group_name(name)
                    .set_marker(marker)
                    .max_items(MAX_ITEMS)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                (
                    o.policy_names().to_vec(),
                    o.is_truncated(),
                    o.marker().map(str::to_string),
                )
            }
            Kind::Role => {
                let o = self
                    .iam
                    .list_role_policies()
                    .role_name(name)
                    .set_marker(marker)
                    .max_items(MAX_ITEMS)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                (
                    o.policy_names().to_vec(),
                    o.is_truncated(),
                    o.marker().map(str::to_string),
                )
            }
        };
        Ok(Page {
            items: names,
            marker: next_marker(truncated, next.as_deref()),
        })
    }

    async fn get_inline_policy(&self, kind: Kind, name: &str, policy: &str) -> Result<String> {
        let doc = match kind {
            Kind::User => {
                self.iam
                    .get_user_policy()
                    .user_name(name)
                    .policy_name(policy)
                    .send()
                    .await
                    .map_err(sdk_error)?
                    .policy_document
            }
            Kind::Group => {
                self.iam
                    .get_group_policy()
                    .group_name(name)
                    .policy_name(policy)
                    .send()
                    .await
                    .map_err(sdk_error)?
                    .policy_document
            }
            Kind::Role => {
                self.iam
                    .get_role_policy()
                    .role_name(name)
                    .policy_name(policy)
                    .send()
                    .await
                    .map_err(sdk_error)?
                    .policy_document
            }
        };
        Ok(doc)
    }

    async fn list_attached_policies(
        &self,
        kind: Kind,
        name: &str,
        marker: Option<String>,
    ) -> Result<Page<AttachedPolicy>> {
        let (items, truncated, next) = match kind {
            Kind::User => {
                let o = self
                    .iam
                    .list_attached_user_policies()
                    .user_name(name)
                    .set_marker(marker)
                    .max_items(MAX_ITEMS)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                (
                    attached(o.attached_policies()),
                    o.is_truncated(),
                    o.marker().map(str::to_string),
                )
            }
            Kind::Group => {
                let o = self
                    .iam
                    .list_attached_group_policies()
                    .group_name(name)
                    .set_marker(marker)
                    .max_items(MAX_ITEMS)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                (
                    attached(o.attached_policies()),
                    o.is_truncated(),
                    o.marker().map(str::to_string),
                )
            }
            Kind::Role => {
                let o = self
                    .iam
                    .list_attached_role_policies()
                    .role_name(name)
                    .set_marker(marker)
                    .max_items(MAX_ITEMS)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                (
                    attached(o.attached_policies()),
                    o.is_truncated(),
                    o.marker().map(str::to_string),
                )
            }
        };
        Ok(Page {
            items,
            marker: next_marker(truncated, next.as_deref()),
        })
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
        let out = self
            .iam
            .list_policies()
            .scope(scope)
            .set_marker(marker)
            .max_items(MAX_ITEMS)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(Page {
            items: out.policies().iter().map(policy).collect(),
            marker: next_marker(out.is_truncated(), out.marker()),
        })
    }

    async fn get_policy_version(&self, arn: &str, version_id: &str) -> Result<String> {
        let out = self
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version_id)
            .send()
            .await
            .map_err(sdk_error)?;
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
        let out = self
            .iam
            .list_access_keys()
            .user_name(user)
            .set_marker(marker)
            .max_items(MAX_ITEMS)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(Page {
            items: out
                .access_key_metadata()
                .iter()
                .map(|k| AccessKey {
                    id: k.access_key_id().unwrap_or_default().to_string(),
                    status: k
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    create_date: opt_time(k.create_date()),
                })
                .collect(),
            marker: next_marker(out.is_truncated(), out.marker()),
        })
    }

    async fn get_access_key_last_used(&self, key_id: &str) -> Result<AccessKeyLastUsed> {
        let out = self
            .iam
            .get_access_key_last_used()
            .access_key_id(key_id)
            .send()
            .await
            .map_err(sdk_error)?;
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
        let out = self
            .iam
            .get_account_authorization_details()
            .set_filter(Some(filters))
            .set_marker(marker)
            .max_items(MAX_ITEMS)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(Page {
            items: vec![account_details(&out)],
            marker: next_marker(out.is_truncated(), out.marker()),
        })
    }

    async fn create_entity(
        &self,
        kind: Kind,
        name: &str,
        trust_policy: Option<&str>,
    ) -> Result<Entity> {
        match kind {
            Kind::User => {
                let out = self
                    .iam
                    .create_user()
                    .user_name(name)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                let u = out.user().ok_or_else(|| IamError::no_such_entity(name))?;
                Ok(user(u, true))
            }
            Kind::Group => {
                let out = self
                    .iam
                    .create_group()
                    .group_name(name)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                let g = out.group().ok_or_else(|| IamError::no_such_entity(name))?;
                Ok(group(g))
            }
            Kind::Role => {
                let out = self
                    .iam
                    .create_role()
                    .role_name(name)
                    .assume_role_policy_document(trust_policy.unwrap_or_default())
                    .send()
                    .await
                    .map_err(sdk_error)?;
                let r = out.role().ok_or_else(|| IamError::no_such_entity(name))?;
                Ok(role(r, true))
            }
        }
    }

    async fn delete_entity(&self, kind: Kind, name: &str) -> Result<()> {
        per_kind!(
            self.iam,
            kind,
            name,
            [delete_user, delete_group, delete_role]
        )
    }

    async fn rename_entity(&self, kind: Kind, name: &str, new_name: &str) -> Result<()> {
        match kind {
            Kind::User => self
                .iam
                .update_user()
                .user_name(name)
                .new_user_name(new_name)
                .send()
                .await
                .map(|_| ())
                .map_err(sdk_error),
            Kind::Group => self
                .iam
                .update_group()
                .group_name(name)
                .new_group_name(new_name)
                .send()
                .await
                .map(|_| ())
                .map_err(sdk_error),
            Kind::Role => Err(IamError::new(
                ErrorKind::NotPermitted,
                "NotPermitted",
                "IAM cannot rename a role",
            )),
        }
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
            name,
            [put_user_policy, put_group_policy, put_role_policy],
            policy_name(policy),
            policy_document(document)
        )
    }

    async fn delete_inline_policy(&self, kind: Kind, name: &str, policy: &str) -> Result<()> {
        per_kind!(
            self.iam,
            kind,
            name,
            [delete_user_policy, delete_group_policy, delete_role_policy],
            policy_name(policy)
        )
    }

    async fn attach_policy(&self, kind: Kind, name: &str, arn: &str) -> Result<()> {
        per_kind!(
            self.iam,
            kind,
            name,
            [attach_user_policy, attach_group_policy, attach_role_policy],
            policy_arn(arn)
        )
    }

    async fn detach_policy(&self, kind: Kind, name: &str, arn: &str) -> Result<()> {
        per_kind!(
            self.iam,
            kind,
            name,
            [detach_user_policy, detach_group_policy, detach_role_policy],
            policy_arn(arn)
        )
    }

    async fn add_user_to_group(&self, user: &str, group: &str) -> Result<()> {
        self.iam
            .add_user_to_group()
            .user_name(user)
            .group_name(group)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk_error)
    }

    async fn remove_user_from_group(&self, user: &str, group: &str) -> Result<()> {
        self.iam
            .remove_user_from_group()
            .user_name(user)
            .group_name(group)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk_error)
    }

    async fn update_trust_policy(&self, role: &str, document: &str) -> Result<()> {
        self.iam
            .update_assume_role_policy()
            .role_name(role)
            .policy_document(document)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk_error)
    }

    async fn tag_entity(&self, kind: Kind, name: &str, tags: &[Tag]) -> Result<()> {
        let sdk_tags: Vec<t::Tag> = tags
            .iter()
            .map(|tag| t::Tag::builder().key(&tag.key).value(&tag.value).build())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| IamError::new(ErrorKind::InvalidInput, "InvalidInput", e.to_string()))?;
        match kind {
            Kind::User => self
                .iam
                .tag_user()
                .user_name(name)
                .set_tags(Some(sdk_tags))
                .send()
                .await
                .map(|_| ())
                .map_err(sdk_error),
            Kind::Role => self
                .iam
                .tag_role()
                .role_name(name)
                .set_tags(Some(sdk_tags))
                .send()
                .await
                .map(|_| ())
                .map_err(sdk_error),
            Kind::Group => Err(groups_have_no_tags()),
        }
    }

    async fn untag_entity(&self, kind: Kind, name: &str, keys: &[String]) -> Result<()> {
        match kind {
            Kind::User => self
                .iam
                .untag_user()
                .user_name(name)
                .set_tag_keys(Some(keys.to_vec()))
                .send()
                .await
                .map(|_| ())
                .map_err(sdk_error),
            Kind::Role => self
                .iam
                .untag_role()
                .role_name(name)
                .set_tag_keys(Some(keys.to_vec()))
                .send()
                .await
                .map(|_| ())
                .map_err(sdk_error),
            Kind::Group => Err(groups_have_no_tags()),
        }
    }

    async fn create_policy(&self, name: &str, document: &str) -> Result<ManagedPolicy> {
        let out = self
            .iam
            .create_policy()
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map_err(sdk_error)?;
        let p = out.policy().ok_or_else(|| IamError::no_such_entity(name))?;
        Ok(policy(p))
    }

    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<String> {
        let out = self
            .iam
            .create_policy_version()
            .policy_arn(arn)
            .policy_document(document)
            .set_as_default(true)
            .send()
            .await
            .map_err(sdk_error)?;
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
        let out = self
            .iam
            .list_policy_versions()
            .policy_arn(arn)
            .set_marker(marker)
            .max_items(MAX_ITEMS)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(Page {
            items: out
                .versions()
                .iter()
                .map(|v| PolicyVersion {
                    id: v.version_id().unwrap_or_default().to_string(),
                    is_default: v.is_default_version(),
                    create_date: opt_time(v.create_date()).unwrap_or(SystemTime::UNIX_EPOCH),
                })
                .collect(),
            marker: next_marker(out.is_truncated(), out.marker()),
        })
    }

    async fn delete_policy_version(&self, arn: &str, version_id: &str) -> Result<()> {
        self.iam
            .delete_policy_version()
            .policy_arn(arn)
            .version_id(version_id)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk_error)
    }

    async fn delete_policy(&self, arn: &str) -> Result<()> {
        self.iam
            .delete_policy()
            .policy_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk_error)
    }

    async fn list_entities_for_policy(
        &self,
        arn: &str,
        marker: Option<String>,
    ) -> Result<Page<(Kind, String)>> {
        let out = self
            .iam
            .list_entities_for_policy()
            .policy_arn(arn)
            .set_marker(marker)
            .max_items(MAX_ITEMS)
            .send()
            .await
            .map_err(sdk_error)?;
        let mut items = Vec::new();
        for u in out.policy_users() {
            items.push((Kind::User, u.user_name().unwrap_or_default().to_string()));
        }
        for g in out.policy_groups() {
            items.push((Kind::Group, g.group_name().unwrap_or_default().to_string()));
        }
        for r in out.policy_roles() {
            items.push((Kind::Role, r.role_name().unwrap_or_default().to_string()));
        }
        Ok(Page {
            items,
            marker: next_marker(out.is_truncated(), out.marker()),
        })
    }

    async fn caller_identity(&self) -> Result<CallerIdentity> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(sdk_error)?;
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
        let out = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .duration_seconds(duration_seconds)
            .send()
            .await
            .map_err(sdk_error)?;
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
