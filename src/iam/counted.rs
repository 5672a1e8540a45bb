//! Counts of the IAM and STS requests made, by API operation: what
//! `.iamfs/status` shows and what the tests assert on. `Counted` wraps any
//! backend and counts each call as the request it makes (one per page of a
//! list), so the backends themselves count nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;

use super::layer::{Call, Hook, Layer};
use super::{Iam, Kind};
use crate::error::Result;

/// Which API an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Iam,
    Sts,
}

macro_rules! operations {
    ($($service:ident: [$($op:ident),* $(,)?]),* $(,)?) => {
        /// An IAM or STS API operation iamfs calls, named as AWS names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation { $($($op,)*)* }

        impl Operation {
            pub const ALL: &'static [Operation] = &[$($(Operation::$op,)*)*];

            /// The API's name for it: `ListRoles`, `GetRolePolicy`, `AssumeRole`.
            pub fn name(self) -> &'static str {
                match self { $($(Operation::$op => stringify!($op),)*)* }
            }

            pub fn service(self) -> Service {
                match self { $($(Operation::$op => Service::$service,)*)* }
            }

            /// Whether the request changes IAM (IAM's reads are Get, List
            /// and Generate requests).
            pub fn changes_iam(self) -> bool {
                let name = self.name();
                self.service() == Service::Iam
                    && !["Get", "List", "Generate"].iter().any(|p| name.starts_with(p))
            }
        }
    };
}

operations! {
    Iam: [
        ListUsers, ListGroups, ListRoles, GetUser, GetGroup, GetRole, ListGroupsForUser,
        ListUserPolicies, ListGroupPolicies, ListRolePolicies,
        GetUserPolicy, GetGroupPolicy, GetRolePolicy,
        ListAttachedUserPolicies, ListAttachedGroupPolicies, ListAttachedRolePolicies,
        ListPolicies, GetPolicyVersion, ListAccessKeys, GetAccessKeyLastUsed,
        GetAccountAuthorizationDetails,
        CreateUser, CreateGroup, CreateRole, DeleteUser, DeleteGroup, DeleteRole,
        UpdateUser, UpdateGroup,
        PutUserPolicy, PutGroupPolicy, PutRolePolicy,
        DeleteUserPolicy, DeleteGroupPolicy, DeleteRolePolicy,
        AttachUserPolicy, AttachGroupPolicy, AttachRolePolicy,
        DetachUserPolicy, DetachGroupPolicy, DetachRolePolicy,
        AddUserToGroup, RemoveUserFromGroup, UpdateAssumeRolePolicy,
        TagUser, TagRole, UntagUser, UntagRole,
        CreatePolicy, CreatePolicyVersion, ListPolicyVersions, DeletePolicyVersion,
        DeletePolicy, ListEntitiesForPolicy, SetDefaultPolicyVersion, UpdateRole,
        PutUserPermissionsBoundary, PutRolePermissionsBoundary,
        DeleteUserPermissionsBoundary, DeleteRolePermissionsBoundary,
        GetAccountSummary, GetAccountPasswordPolicy, UpdateAccountPasswordPolicy,
        DeleteAccountPasswordPolicy, ListAccountAliases, CreateAccountAlias, DeleteAccountAlias,
        GenerateCredentialReport, GetCredentialReport, ListMFADevices, GetLoginProfile,
        ListInstanceProfiles, GetInstanceProfile, CreateInstanceProfile, DeleteInstanceProfile,
        AddRoleToInstanceProfile, RemoveRoleFromInstanceProfile,
        ListSAMLProviders, GetSAMLProvider, CreateSAMLProvider, UpdateSAMLProvider,
        DeleteSAMLProvider, ListOpenIDConnectProviders, GetOpenIDConnectProvider,
        CreateOpenIDConnectProvider, AddClientIDToOpenIDConnectProvider,
        RemoveClientIDFromOpenIDConnectProvider, UpdateOpenIDConnectProviderThumbprint,
        DeleteOpenIDConnectProvider, GenerateServiceLastAccessedDetails,
        GetServiceLastAccessedDetails, TagInstanceProfile, UntagInstanceProfile,
    ],
    Sts: [GetCallerIdentity, AssumeRole],
}

impl Call {
    /// The request a call makes: for the methods with a user, group and role
    /// form, the form of `kind`. None: the call makes no request (groups
    /// have no tags and roles cannot be renamed; the backend refuses those).
    pub fn operation(self, kind: Option<Kind>) -> Option<Operation> {
        use Operation as O;
        let [user, group, role] = match self {
            Call::ListEntities => [O::ListUsers, O::ListGroups, O::ListRoles].map(Some),
            Call::GetEntity => [O::GetUser, O::GetGroup, O::GetRole].map(Some),
            Call::ListInlinePolicies => [
                O::ListUserPolicies,
                O::ListGroupPolicies,
                O::ListRolePolicies,
            ]
            .map(Some),
            Call::GetInlinePolicy => {
                [O::GetUserPolicy, O::GetGroupPolicy, O::GetRolePolicy].map(Some)
            }
            Call::ListAttachedPolicies => [
                O::ListAttachedUserPolicies,
                O::ListAttachedGroupPolicies,
                O::ListAttachedRolePolicies,
            ]
            .map(Some),
            Call::CreateEntity => [O::CreateUser, O::CreateGroup, O::CreateRole].map(Some),
            Call::DeleteEntity => [O::DeleteUser, O::DeleteGroup, O::DeleteRole].map(Some),
            Call::RenameEntity => [Some(O::UpdateUser), Some(O::UpdateGroup), None],
            Call::PutInlinePolicy => {
                [O::PutUserPolicy, O::PutGroupPolicy, O::PutRolePolicy].map(Some)
            }
            Call::DeleteInlinePolicy => [
                O::DeleteUserPolicy,
                O::DeleteGroupPolicy,
                O::DeleteRolePolicy,
            ]
            .map(Some),
            Call::AttachPolicy => [
                O::AttachUserPolicy,
                O::AttachGroupPolicy,
                O::AttachRolePolicy,
            ]
            .map(Some),
            Call::DetachPolicy => [
                O::DetachUserPolicy,
                O::DetachGroupPolicy,
                O::DetachRolePolicy,
            ]
            .map(Some),
            Call::TagEntity => [Some(O::TagUser), None, Some(O::TagRole)],
            Call::UntagEntity => [Some(O::UntagUser), None, Some(O::UntagRole)],
            Call::PutPermissionsBoundary => [
                Some(O::PutUserPermissionsBoundary),
                None,
                Some(O::PutRolePermissionsBoundary),
            ],
            Call::DeletePermissionsBoundary => [
                Some(O::DeleteUserPermissionsBoundary),
                None,
                Some(O::DeleteRolePermissionsBoundary),
            ],
            Call::SetDefaultPolicyVersion => return Some(O::SetDefaultPolicyVersion),
            Call::UpdateRole => return Some(O::UpdateRole),
            Call::GetAccountSummary => return Some(O::GetAccountSummary),
            Call::GetPasswordPolicy => return Some(O::GetAccountPasswordPolicy),
            Call::UpdatePasswordPolicy => return Some(O::UpdateAccountPasswordPolicy),
            Call::DeletePasswordPolicy => return Some(O::DeleteAccountPasswordPolicy),
            Call::ListAccountAliases => return Some(O::ListAccountAliases),
            Call::CreateAccountAlias => return Some(O::CreateAccountAlias),
            Call::DeleteAccountAlias => return Some(O::DeleteAccountAlias),
            Call::GenerateCredentialReport => return Some(O::GenerateCredentialReport),
            Call::GetCredentialReport => return Some(O::GetCredentialReport),
            Call::ListMfaDevices => return Some(O::ListMFADevices),
            Call::GetLoginProfile => return Some(O::GetLoginProfile),
            Call::ListInstanceProfiles => return Some(O::ListInstanceProfiles),
            Call::GetInstanceProfile => return Some(O::GetInstanceProfile),
            Call::CreateInstanceProfile => return Some(O::CreateInstanceProfile),
            Call::DeleteInstanceProfile => return Some(O::DeleteInstanceProfile),
            Call::AddRoleToInstanceProfile => return Some(O::AddRoleToInstanceProfile),
            Call::RemoveRoleFromInstanceProfile => return Some(O::RemoveRoleFromInstanceProfile),
            Call::ListSamlProviders => return Some(O::ListSAMLProviders),
            Call::GetSamlProvider => return Some(O::GetSAMLProvider),
            Call::CreateSamlProvider => return Some(O::CreateSAMLProvider),
            Call::UpdateSamlProvider => return Some(O::UpdateSAMLProvider),
            Call::DeleteSamlProvider => return Some(O::DeleteSAMLProvider),
            Call::ListOidcProviders => return Some(O::ListOpenIDConnectProviders),
            Call::GetOidcProvider => return Some(O::GetOpenIDConnectProvider),
            Call::CreateOidcProvider => return Some(O::CreateOpenIDConnectProvider),
            Call::AddOidcClientId => return Some(O::AddClientIDToOpenIDConnectProvider),
            Call::RemoveOidcClientId => return Some(O::RemoveClientIDFromOpenIDConnectProvider),
            Call::UpdateOidcThumbprints => return Some(O::UpdateOpenIDConnectProviderThumbprint),
            Call::DeleteOidcProvider => return Some(O::DeleteOpenIDConnectProvider),
            Call::GenerateLastAccessed => return Some(O::GenerateServiceLastAccessedDetails),
            Call::GetLastAccessed => return Some(O::GetServiceLastAccessedDetails),
            Call::TagInstanceProfile => return Some(O::TagInstanceProfile),
            Call::UntagInstanceProfile => return Some(O::UntagInstanceProfile),
            Call::GetGroupMembers => return Some(O::GetGroup),
            Call::ListGroupsForUser => return Some(O::ListGroupsForUser),
            Call::ListPolicies => return Some(O::ListPolicies),
            Call::GetPolicyVersion => return Some(O::GetPolicyVersion),
            Call::ListAccessKeys => return Some(O::ListAccessKeys),
            Call::GetAccessKeyLastUsed => return Some(O::GetAccessKeyLastUsed),
            Call::GetAccountAuthorizationDetails => return Some(O::GetAccountAuthorizationDetails),
            Call::AddUserToGroup => return Some(O::AddUserToGroup),
            Call::RemoveUserFromGroup => return Some(O::RemoveUserFromGroup),
            Call::UpdateTrustPolicy => return Some(O::UpdateAssumeRolePolicy),
            Call::CreatePolicy => return Some(O::CreatePolicy),
            Call::CreatePolicyVersion => return Some(O::CreatePolicyVersion),
            Call::ListPolicyVersions => return Some(O::ListPolicyVersions),
            Call::DeletePolicyVersion => return Some(O::DeletePolicyVersion),
            Call::DeletePolicy => return Some(O::DeletePolicy),
            Call::ListEntitiesForPolicy => return Some(O::ListEntitiesForPolicy),
            Call::CallerIdentity => return Some(O::GetCallerIdentity),
            Call::AssumeRole => return Some(O::AssumeRole),
        };
        match kind? {
            Kind::User => user,
            Kind::Group => group,
            Kind::Role => role,
        }
    }
}

/// Requests made, by operation.
pub struct CallCounts {
    counts: [AtomicU64; Operation::ALL.len()],
    /// Requests that change IAM, counted when answered (success or not).
    changes_answered: AtomicU64,
}

impl Default for CallCounts {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            changes_answered: AtomicU64::new(0),
        }
    }
}

impl CallCounts {
    pub fn record(&self, op: Operation) {
        self.counts[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, op: Operation) -> u64 {
        self.counts[op as usize].load(Ordering::Relaxed)
    }

    /// The operations called so far, with their counts, by name.
    pub fn snapshot(&self) -> Vec<(Operation, u64)> {
        let mut calls: Vec<_> = Operation::ALL
            .iter()
            .map(|&op| (op, self.get(op)))
            .filter(|(_, n)| *n > 0)
            .collect();
        calls.sort_by_key(|(op, _)| op.name());
        calls
    }

    /// How many requests that change IAM have been answered: what was read
    /// before this moved may predate a change.
    pub fn changes_answered(&self) -> u64 {
        self.changes_answered.load(Ordering::Relaxed)
    }

    /// Every request made, IAM's and STS's.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

impl std::fmt::Debug for CallCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.snapshot().into_iter().map(|(op, n)| (op.name(), n)))
            .finish()
    }
}

impl Hook for CallCounts {
    /// Counted when the call is made, whether or not it succeeds.
    fn around<'a, T: Send + 'a>(
        &'a self,
        call: Call,
        kind: Option<Kind>,
        op: BoxFuture<'a, Result<T>>,
    ) -> BoxFuture<'a, Result<T>> {
        let Some(operation) = call.operation(kind) else {
            return op;
        };
        self.record(operation);
        if !operation.changes_iam() {
            return op;
        }
        Box::pin(async move {
            let answer = op.await;
            self.changes_answered.fetch_add(1, Ordering::Relaxed);
            answer
        })
    }
}

/// A backend whose requests are counted.
pub type Counted<I> = Layer<I, CallCounts>;

impl<I: Iam + ?Sized> Layer<I, CallCounts> {
    pub fn new(inner: Arc<I>) -> Self {
        Self::wrap(inner, CallCounts::default())
    }

    pub fn counts(&self) -> &CallCounts {
        &self.hook
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::iam::memory::MemoryIam;
    use crate::iam::PolicyScope;

    #[test]
    fn every_operation_is_the_request_of_some_call_and_names_itself() {
        let mut made = BTreeSet::new();
        for call in Call::ALL {
            for kind in Kind::ALL {
                made.extend(call.operation(Some(kind)));
            }
        }
        let all: BTreeSet<_> = Operation::ALL.iter().copied().collect();
        assert_eq!(made, all);
        assert_eq!(Operation::ListRoles.name(), "ListRoles");
        assert_eq!(Operation::AssumeRole.service(), Service::Sts);
        assert_eq!(Operation::GetGroup.service(), Service::Iam);
    }

    #[test]
    fn changes_are_told_from_reads_by_their_request() {
        use Operation as O;
        for op in [
            O::CreateUser,
            O::TagRole,
            O::SetDefaultPolicyVersion,
            O::DeleteAccountAlias,
        ] {
            assert!(op.changes_iam(), "{op:?}");
        }
        for op in [
            O::GetRole,
            O::ListUsers,
            O::GenerateCredentialReport,
            O::AssumeRole,
        ] {
            assert!(!op.changes_iam(), "{op:?}");
        }
    }

    #[test]
    fn the_form_of_a_call_follows_its_kind() {
        let ops = |call: Call| Kind::ALL.map(|kind| call.operation(Some(kind)));
        use Operation as O;
        assert_eq!(
            ops(Call::GetInlinePolicy),
            [O::GetUserPolicy, O::GetGroupPolicy, O::GetRolePolicy].map(Some)
        );
        assert_eq!(ops(Call::GetGroupMembers), [Some(O::GetGroup); 3]);
        assert_eq!(ops(Call::TagEntity)[1], None, "groups have no tags");
        assert_eq!(ops(Call::RenameEntity)[2], None, "roles keep their name");
        assert_eq!(
            Call::CallerIdentity.operation(None),
            Some(O::GetCallerIdentity)
        );
    }

    #[tokio::test]
    async fn counts_each_request_once_failed_or_not() {
        let iam = MemoryIam::default();
        iam.add_entity(Kind::Role, "r");
        let counted = Counted::new(Arc::new(iam));
        counted.get_entity(Kind::Role, "r").await.unwrap();
        counted.get_entity(Kind::Role, "r").await.unwrap();
        assert!(counted.get_entity(Kind::User, "nobody").await.is_err());
        counted
            .list_policies(PolicyScope::Local, None)
            .await
            .unwrap();
        counted.assume_role("arn", "s", 900).await.unwrap_err();
        assert!(counted.tag_entity(Kind::Group, "g", &[]).await.is_err());
        let counts = counted.counts();
        assert_eq!(counts.get(Operation::GetRole), 2);
        assert_eq!(counts.get(Operation::GetUser), 1);
        assert_eq!(counts.total(), 5, "{counts:?}");
        assert_eq!(
            counts.snapshot(),
            [
                (Operation::AssumeRole, 1),
                (Operation::GetRole, 2),
                (Operation::GetUser, 1),
                (Operation::ListPolicies, 1),
            ]
        );
    }
}
