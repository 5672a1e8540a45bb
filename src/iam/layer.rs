//! A backend wrapped by a hook that sees every call on its way through:
//! `Counted` (counted.rs) counts them for `.iamfs/status`, and the tests'
//! `Faulty` (faulty.rs) fails or delays chosen ones. The delegation to the
//! wrapped backend is written here once, for every hook.

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;

use super::{
    AccessKey, AccessKeyLastUsed, AccountDetails, AttachedPolicy, CallerIdentity, DetailsFilter,
    Entity, Iam, InstanceProfile, Kind, LoginProfile, ManagedPolicy, MfaDevice, Page,
    PasswordPolicy, PolicyScope, PolicyVersion, RoleCredentials, Tag,
};
use crate::error::Result;

macro_rules! calls {
    ($($call:ident),* $(,)?) => {
        /// One method of the `Iam` trait.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Call { $($call),* }

        impl Call {
            pub const ALL: [Call; [$(Call::$call),*].len()] = [$(Call::$call),*];
        }
    };
}

calls! {
    ListEntities, GetEntity, GetGroupMembers, ListGroupsForUser, ListInlinePolicies,
    GetInlinePolicy, ListAttachedPolicies, ListPolicies, GetPolicyVersion, ListAccessKeys,
    GetAccessKeyLastUsed, GetAccountAuthorizationDetails, CreateEntity, DeleteEntity,
    RenameEntity, PutInlinePolicy, DeleteInlinePolicy, AttachPolicy, DetachPolicy,
    AddUserToGroup, RemoveUserFromGroup, UpdateTrustPolicy, TagEntity, UntagEntity,
    CreatePolicy, CreatePolicyVersion, ListPolicyVersions, DeletePolicyVersion, DeletePolicy,
    ListEntitiesForPolicy, SetDefaultPolicyVersion, UpdateRole, PutPermissionsBoundary,
    DeletePermissionsBoundary, GetAccountSummary, GetPasswordPolicy, UpdatePasswordPolicy,
    DeletePasswordPolicy, ListAccountAliases, CreateAccountAlias, DeleteAccountAlias,
    GenerateCredentialReport, GetCredentialReport, ListMfaDevices, GetLoginProfile,
    ListInstanceProfiles, GetInstanceProfile, CreateInstanceProfile, DeleteInstanceProfile,
    AddRoleToInstanceProfile, RemoveRoleFromInstanceProfile, CallerIdentity, AssumeRole,
}

/// What a wrapper does with each call: `call` names the method, `kind` the
/// principal kind for the methods that take one, and `op` is the wrapped
/// backend's answer, not yet polled (not polling it keeps the call from
/// reaching the backend).
pub trait Hook: Send + Sync + 'static {
    fn around<'a, T: Send + 'a>(
        &'a self,
        call: Call,
        kind: Option<Kind>,
        op: BoxFuture<'a, Result<T>>,
    ) -> BoxFuture<'a, Result<T>>;
}

/// A backend whose every call goes through a hook.
pub struct Layer<I: ?Sized, H> {
    pub(super) inner: Arc<I>,
    pub(super) hook: H,
}

impl<I: Iam + ?Sized, H: Hook> Layer<I, H> {
    pub fn wrap(inner: Arc<I>, hook: H) -> Self {
        Self { inner, hook }
    }

    /// The wrapped backend, to look at (or change) it behind the wrapper.
    pub fn inner(&self) -> &Arc<I> {
        &self.inner
    }
}

#[async_trait]
impl<I: Iam + ?Sized, H: Hook> Iam for Layer<I, H> {
    async fn list_entities(&self, kind: Kind, marker: Option<String>) -> Result<Page<Entity>> {
        let op = self.inner.list_entities(kind, marker);
        self.hook.around(Call::ListEntities, Some(kind), op).await
    }

    async fn get_entity(&self, kind: Kind, name: &str) -> Result<Entity> {
        let op = self.inner.get_entity(kind, name);
        self.hook.around(Call::GetEntity, Some(kind), op).await
    }

    async fn get_group_members(&self, group: &str, marker: Option<String>) -> Result<Page<String>> {
        let op = self.inner.get_group_members(group, marker);
        self.hook.around(Call::GetGroupMembers, None, op).await
    }

    async fn list_groups_for_user(
        &self,
        user: &str,
        marker: Option<String>,
    ) -> Result<Page<String>> {
        let op = self.inner.list_groups_for_user(user, marker);
        self.hook.around(Call::ListGroupsForUser, None, op).await
    }

    async fn list_inline_policies(
        &self,
        kind: Kind,
        name: &str,
        marker: Option<String>,
    ) -> Result<Page<String>> {
        let op = self.inner.list_inline_policies(kind, name, marker);
        self.hook
            .around(Call::ListInlinePolicies, Some(kind), op)
            .await
    }

    async fn get_inline_policy(&self, kind: Kind, name: &str, policy: &str) -> Result<String> {
        let op = self.inner.get_inline_policy(kind, name, policy);
        self.hook
            .around(Call::GetInlinePolicy, Some(kind), op)
            .await
    }

    async fn list_attached_policies(
        &self,
        kind: Kind,
        name: &str,
        marker: Option<String>,
    ) -> Result<Page<AttachedPolicy>> {
        let op = self.inner.list_attached_policies(kind, name, marker);
        self.hook
            .around(Call::ListAttachedPolicies, Some(kind), op)
            .await
    }

    async fn list_policies(
        &self,
        scope: PolicyScope,
        marker: Option<String>,
    ) -> Result<Page<ManagedPolicy>> {
        let op = self.inner.list_policies(scope, marker);
        self.hook.around(Call::ListPolicies, None, op).await
    }

    async fn get_policy_version(&self, arn: &str, version_id: &str) -> Result<String> {
        let op = self.inner.get_policy_version(arn, version_id);
        self.hook.around(Call::GetPolicyVersion, None, op).await
    }

    async fn list_access_keys(
        &self,
        user: &str,
        marker: Option<String>,
    ) -> Result<Page<AccessKey>> {
        let op = self.inner.list_access_keys(user, marker);
        self.hook.around(Call::ListAccessKeys, None, op).await
    }

    async fn get_access_key_last_used(&self, key_id: &str) -> Result<AccessKeyLastUsed> {
        let op = self.inner.get_access_key_last_used(key_id);
        self.hook.around(Call::GetAccessKeyLastUsed, None, op).await
    }

    async fn get_account_authorization_details(
        &self,
        filter: DetailsFilter,
        marker: Option<String>,
    ) -> Result<Page<AccountDetails>> {
        let op = self.inner.get_account_authorization_details(filter, marker);
        let call = Call::GetAccountAuthorizationDetails;
        self.hook.around(call, None, op).await
    }

    async fn create_entity(
        &self,
        kind: Kind,
        name: &str,
        trust_policy: Option<&str>,
    ) -> Result<Entity> {
        let op = self.inner.create_entity(kind, name, trust_policy);
        self.hook.around(Call::CreateEntity, Some(kind), op).await
    }

    async fn delete_entity(&self, kind: Kind, name: &str) -> Result<()> {
        let op = self.inner.delete_entity(kind, name);
        self.hook.around(Call::DeleteEntity, Some(kind), op).await
    }

    async fn set_default_policy_version(&self, arn: &str, version_id: &str) -> Result<()> {
        let op = self.inner.set_default_policy_version(arn, version_id);
        self.hook
            .around(Call::SetDefaultPolicyVersion, None, op)
            .await
    }

    async fn update_role(
        &self,
        role: &str,
        description: &str,
        max_session_duration: i32,
    ) -> Result<()> {
        let op = self
            .inner
            .update_role(role, description, max_session_duration);
        self.hook.around(Call::UpdateRole, None, op).await
    }

    async fn put_permissions_boundary(&self, kind: Kind, name: &str, arn: &str) -> Result<()> {
        let op = self.inner.put_permissions_boundary(kind, name, arn);
        self.hook
            .around(Call::PutPermissionsBoundary, Some(kind), op)
            .await
    }

    async fn delete_permissions_boundary(&self, kind: Kind, name: &str) -> Result<()> {
        let op = self.inner.delete_permissions_boundary(kind, name);
        self.hook
            .around(Call::DeletePermissionsBoundary, Some(kind), op)
            .await
    }

    async fn get_account_summary(&self) -> Result<Vec<(String, i64)>> {
        let op = self.inner.get_account_summary();
        self.hook.around(Call::GetAccountSummary, None, op).await
    }

    async fn get_password_policy(&self) -> Result<Option<PasswordPolicy>> {
        let op = self.inner.get_password_policy();
        self.hook.around(Call::GetPasswordPolicy, None, op).await
    }

    async fn update_password_policy(&self, policy: &PasswordPolicy) -> Result<()> {
        let op = self.inner.update_password_policy(policy);
        self.hook.around(Call::UpdatePasswordPolicy, None, op).await
    }

    async fn delete_password_policy(&self) -> Result<()> {
        let op = self.inner.delete_password_policy();
        self.hook.around(Call::DeletePasswordPolicy, None, op).await
    }

    async fn list_account_aliases(&self) -> Result<Vec<String>> {
        let op = self.inner.list_account_aliases();
        self.hook.around(Call::ListAccountAliases, None, op).await
    }

    async fn create_account_alias(&self, alias: &str) -> Result<()> {
        let op = self.inner.create_account_alias(alias);
        self.hook.around(Call::CreateAccountAlias, None, op).await
    }

    async fn delete_account_alias(&self, alias: &str) -> Result<()> {
        let op = self.inner.delete_account_alias(alias);
        self.hook.around(Call::DeleteAccountAlias, None, op).await
    }

    async fn generate_credential_report(&self) -> Result<bool> {
        let op = self.inner.generate_credential_report();
        self.hook
            .around(Call::GenerateCredentialReport, None, op)
            .await
    }

    async fn get_credential_report(&self) -> Result<Option<Vec<u8>>> {
        let op = self.inner.get_credential_report();
        self.hook.around(Call::GetCredentialReport, None, op).await
    }

    async fn list_mfa_devices(
        &self,
        user: &str,
        marker: Option<String>,
    ) -> Result<Page<MfaDevice>> {
        let op = self.inner.list_mfa_devices(user, marker);
        self.hook.around(Call::ListMfaDevices, None, op).await
    }

    async fn get_login_profile(&self, user: &str) -> Result<Option<LoginProfile>> {
        let op = self.inner.get_login_profile(user);
        self.hook.around(Call::GetLoginProfile, None, op).await
    }

    async fn list_instance_profiles(
        &self,
        marker: Option<String>,
    ) -> Result<Page<InstanceProfile>> {
        let op = self.inner.list_instance_profiles(marker);
        self.hook.around(Call::ListInstanceProfiles, None, op).await
    }

    async fn get_instance_profile(&self, name: &str) -> Result<InstanceProfile> {
        let op = self.inner.get_instance_profile(name);
        self.hook.around(Call::GetInstanceProfile, None, op).await
    }

    async fn create_instance_profile(&self, name: &str) -> Result<InstanceProfile> {
        let op = self.inner.create_instance_profile(name);
        self.hook
            .around(Call::CreateInstanceProfile, None, op)
            .await
    }

    async fn delete_instance_profile(&self, name: &str) -> Result<()> {
        let op = self.inner.delete_instance_profile(name);
        self.hook
            .around(Call::DeleteInstanceProfile, None, op)
            .await
    }

    async fn add_role_to_instance_profile(&self, profile: &str, role: &str) -> Result<()> {
        let op = self.inner.add_role_to_instance_profile(profile, role);
        self.hook
            .around(Call::AddRoleToInstanceProfile, None, op)
            .await
    }

    async fn remove_role_from_instance_profile(&self, profile: &str, role: &str) -> Result<()> {
        let op = self.inner.remove_role_from_instance_profile(profile, role);
        self.hook
            .around(Call::RemoveRoleFromInstanceProfile, None, op)
            .await
    }

    async fn rename_entity(&self, kind: Kind, name: &str, new_name: &str) -> Result<()> {
        let op = self.inner.rename_entity(kind, name, new_name);
        self.hook.around(Call::RenameEntity, Some(kind), op).await
    }

    async fn put_inline_policy(
        &self,
        kind: Kind,
        name: &str,
        policy: &str,
        document: &str,
    ) -> Result<()> {
        let op = self.inner.put_inline_policy(kind, name, policy, document);
        self.hook
            .around(Call::PutInlinePolicy, Some(kind), op)
            .await
    }

    async fn delete_inline_policy(&self, kind: Kind, name: &str, policy: &str) -> Result<()> {
        let op = self.inner.delete_inline_policy(kind, name, policy);
        self.hook
            .around(Call::DeleteInlinePolicy, Some(kind), op)
            .await
    }

    async fn attach_policy(&self, kind: Kind, name: &str, arn: &str) -> Result<()> {
        let op = self.inner.attach_policy(kind, name, arn);
        self.hook.around(Call::AttachPolicy, Some(kind), op).await
    }

    async fn detach_policy(&self, kind: Kind, name: &str, arn: &str) -> Result<()> {
        let op = self.inner.detach_policy(kind, name, arn);
        self.hook.around(Call::DetachPolicy, Some(kind), op).await
    }

    async fn add_user_to_group(&self, user: &str, group: &str) -> Result<()> {
        let op = self.inner.add_user_to_group(user, group);
        self.hook.around(Call::AddUserToGroup, None, op).await
    }

    async fn remove_user_from_group(&self, user: &str, group: &str) -> Result<()> {
        let op = self.inner.remove_user_from_group(user, group);
        self.hook.around(Call::RemoveUserFromGroup, None, op).await
    }

    async fn update_trust_policy(&self, role: &str, document: &str) -> Result<()> {
        let op = self.inner.update_trust_policy(role, document);
        self.hook.around(Call::UpdateTrustPolicy, None, op).await
    }

    async fn tag_entity(&self, kind: Kind, name: &str, tags: &[Tag]) -> Result<()> {
        let op = self.inner.tag_entity(kind, name, tags);
        self.hook.around(Call::TagEntity, Some(kind), op).await
    }

    async fn untag_entity(&self, kind: Kind, name: &str, keys: &[String]) -> Result<()> {
        let op = self.inner.untag_entity(kind, name, keys);
        self.hook.around(Call::UntagEntity, Some(kind), op).await
    }

    async fn create_policy(&self, name: &str, document: &str) -> Result<ManagedPolicy> {
        let op = self.inner.create_policy(name, document);
        self.hook.around(Call::CreatePolicy, None, op).await
    }

    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<String> {
        let op = self.inner.create_policy_version(arn, document);
        self.hook.around(Call::CreatePolicyVersion, None, op).await
    }

    async fn list_policy_versions(
        &self,
        arn: &str,
        marker: Option<String>,
    ) -> Result<Page<PolicyVersion>> {
        let op = self.inner.list_policy_versions(arn, marker);
        self.hook.around(Call::ListPolicyVersions, None, op).await
    }

    async fn delete_policy_version(&self, arn: &str, version_id: &str) -> Result<()> {
        let op = self.inner.delete_policy_version(arn, version_id);
        self.hook.around(Call::DeletePolicyVersion, None, op).await
    }

    async fn delete_policy(&self, arn: &str) -> Result<()> {
        let op = self.inner.delete_policy(arn);
        self.hook.around(Call::DeletePolicy, None, op).await
    }

    async fn list_entities_for_policy(
        &self,
        arn: &str,
        marker: Option<String>,
    ) -> Result<Page<(Kind, String)>> {
        let op = self.inner.list_entities_for_policy(arn, marker);
        self.hook
            .around(Call::ListEntitiesForPolicy, None, op)
            .await
    }

    async fn caller_identity(&self) -> Result<CallerIdentity> {
        let op = self.inner.caller_identity();
        self.hook.around(Call::CallerIdentity, None, op).await
    }

    async fn assume_role(
        &self,
        role_arn: &str,
        session_name: &str,
        duration_seconds: i32,
    ) -> Result<RoleCredentials> {
        let op = self
            .inner
            .assume_role(role_arn, session_name, duration_seconds);
        self.hook.around(Call::AssumeRole, None, op).await
    }
}
