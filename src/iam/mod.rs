//! The IAM backend: one trait method per IAM API call (one request each,
//! one page of a list), so that counting calls (`Counted`) counts what the
//! account is charged in requests.

pub mod counted;
#[cfg(test)]
pub mod faulty;
pub mod layer;
#[cfg(test)]
pub mod memory;
pub mod sdk;

use async_trait::async_trait;

use crate::error::Result;
pub use crate::model::*;
pub use counted::{CallCounts, Counted, Operation};
pub use layer::Call;

/// The IAM API as iamfs uses it. Every list method is one page of the
/// underlying call; callers follow `Page::marker`.
#[async_trait]
pub trait Iam: Send + Sync + 'static {
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
    /// SetDefaultPolicyVersion.
    async fn set_default_policy_version(&self, arn: &str, version_id: &str) -> Result<()>;
    /// UpdateRole: the role's description and maximum session duration.
    async fn update_role(
        &self,
        role: &str,
        description: &str,
        max_session_duration: i32,
    ) -> Result<()>;
    /// PutUserPermissionsBoundary/PutRolePermissionsBoundary.
    async fn put_permissions_boundary(&self, kind: Kind, name: &str, arn: &str) -> Result<()>;
    /// DeleteUserPermissionsBoundary/DeleteRolePermissionsBoundary.
    async fn delete_permissions_boundary(&self, kind: Kind, name: &str) -> Result<()>;
    /// ListEntitiesForPolicy: who has the policy attached.
    async fn list_entities_for_policy(
        &self,
        arn: &str,
        marker: Option<String>,
    ) -> Result<Page<(Kind, String)>>;

    // ---- instance profiles ------------------------------------------------

    /// ListInstanceProfiles (each with its roles).
    async fn list_instance_profiles(&self, marker: Option<String>)
        -> Result<Page<InstanceProfile>>;
    /// GetInstanceProfile (with its tags).
    async fn get_instance_profile(&self, name: &str) -> Result<InstanceProfile>;
    async fn create_instance_profile(&self, name: &str) -> Result<InstanceProfile>;
    async fn delete_instance_profile(&self, name: &str) -> Result<()>;
    async fn add_role_to_instance_profile(&self, profile: &str, role: &str) -> Result<()>;
    async fn remove_role_from_instance_profile(&self, profile: &str, role: &str) -> Result<()>;

    // ---- the account ------------------------------------------------------

    /// GetAccountSummary: IAM's usage and quotas, by IAM's key names.
    async fn get_account_summary(&self) -> Result<Vec<(String, i64)>>;
    /// GetAccountPasswordPolicy; None when the account has none.
    async fn get_password_policy(&self) -> Result<Option<PasswordPolicy>>;
    async fn update_password_policy(&self, policy: &PasswordPolicy) -> Result<()>;
    async fn delete_password_policy(&self) -> Result<()>;
    /// ListAccountAliases (an account has at most one).
    async fn list_account_aliases(&self) -> Result<Vec<String>>;
    async fn create_account_alias(&self, alias: &str) -> Result<()>;
    async fn delete_account_alias(&self, alias: &str) -> Result<()>;
    /// GenerateCredentialReport: whether the report is complete.
    async fn generate_credential_report(&self) -> Result<bool>;
    /// GetCredentialReport: the CSV, or None while it is being generated.
    async fn get_credential_report(&self) -> Result<Option<Vec<u8>>>;
    /// ListMFADevices for a user.
    async fn list_mfa_devices(&self, user: &str, marker: Option<String>)
        -> Result<Page<MfaDevice>>;
    /// GetLoginProfile; None when the user has no console password.
    async fn get_login_profile(&self, user: &str) -> Result<Option<LoginProfile>>;

    /// sts:GetCallerIdentity.
    async fn caller_identity(&self) -> Result<CallerIdentity>;

    /// sts:AssumeRole.
    async fn assume_role(
        &self,
        role_arn: &str,
        session_name: &str,
        duration_seconds: i32,
    ) -> Result<RoleCredentials>;
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
