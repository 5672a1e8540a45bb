//! An in-memory IAM for unit tests: pages every list call and can return documents URL-encoded (as IAM does) or plain.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use parking_lot::Mutex;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use super::{
    AccessKey, AccessKeyLastUsed, AccountDetails, AttachedPolicy, CallerIdentity, DetailsFilter,
    Entity, EntityDetail, Iam, InstanceProfile, Kind, LoginProfile, ManagedPolicy, MfaDevice,
    OidcProvider, Page, PasswordPolicy, PermissionsBoundary, PolicyDetail, PolicyScope,
    PolicyVersion, SamlProvider, ServiceAccess, Tag,
};
use crate::error::{ErrorKind, IamError, Result};
use crate::model::RoleCredentials;

pub const ACCOUNT: &str = "123456789012";

#[derive(Debug, Clone, Default)]
struct Principal {
    entity: Option<Entity>,
    inline: BTreeMap<String, String>,
    attached: Vec<AttachedPolicy>,
    /// Users: groups; groups: members.
    links: Vec<String>,
    keys: Vec<AccessKey>,
    mfa: Vec<MfaDevice>,
    login: Option<LoginProfile>,
}

#[derive(Debug, Default)]
struct State {
    principals: BTreeMap<(Kind, String), Principal>,
    policies: BTreeMap<String, (ManagedPolicy, String)>,
    /// Non-default versions by policy name: (id, document, created).
    old_versions: BTreeMap<String, Vec<(String, String, SystemTime)>>,
    next_version: BTreeMap<String, u32>,
    password_policy: Option<PasswordPolicy>,
    aliases: Vec<String>,
    instance_profiles: BTreeMap<String, InstanceProfile>,
    /// SAML providers by ARN: (provider, metadata).
    saml: BTreeMap<String, (SamlProvider, String)>,
    oidc: BTreeMap<String, OidcProvider>,
    /// Last-accessed jobs: the ARN asked about, and how often asked since.
    jobs: BTreeMap<String, (String, u32)>,
    report_generated: bool,
}

pub struct MemoryIam {
    state: Mutex<State>,
    /// AssumeRole calls so far: they number the credentials handed out.
    assumed: AtomicU64,
    /// Items per page; IAM may return fewer than asked, so keep it small.
    pub page_size: usize,
    pub url_encode: bool,
    pub deny_account_details: bool,
    /// Added to every call, to test concurrency.
    pub latency: Duration,
    pub caller_arn: String,
    /// Session name and duration of the last AssumeRole.
    pub last_assume: Mutex<Option<(String, i32)>>,
    /// The filter of every GetAccountAuthorizationDetails page asked for.
    pub details_asked: Mutex<Vec<DetailsFilter>>,
}

impl Default for MemoryIam {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            assumed: AtomicU64::default(),
            page_size: 3,
            url_encode: true,
            deny_account_details: false,
            latency: Duration::ZERO,
            caller_arn: format!("arn:aws:iam::{ACCOUNT}:user/tester"),
            last_assume: Mutex::default(),
            details_asked: Mutex::default(),
        }
    }
}

/// The name of the policy with this ARN, or IAM's NoSuchEntity.
fn policy_name(state: &State, arn: &str) -> Result<String> {
    state
        .policies
        .values()
        .find(|(p, _)| p.arn == arn)
        .map(|(p, _)| p.name.clone())
        .ok_or_else(|| IamError::from_code("NoSuchEntity", format!("Policy {arn} not found")))
}

/// TagX: new keys added, existing ones given the new value.
fn merge_tags(current: &mut Vec<Tag>, tags: &[Tag]) {
    for tag in tags {
        match current.iter_mut().find(|t| t.key == tag.key) {
            Some(t) => t.value = tag.value.clone(),
            None => current.push(tag.clone()),
        }
    }
}

fn profile_mut<'a>(state: &'a mut State, name: &str) -> Result<&'a mut InstanceProfile> {
    state
        .instance_profiles
        .get_mut(name)
        .ok_or_else(|| no_instance_profile(name))
}

fn oidc_mut<'a>(state: &'a mut State, arn: &str) -> Result<&'a mut OidcProvider> {
    state.oidc.get_mut(arn).ok_or_else(|| no_provider(arn))
}

fn no_provider(arn: &str) -> IamError {
    IamError::from_code("NoSuchEntity", format!("Provider {arn} not found"))
}

fn no_instance_profile(name: &str) -> IamError {
    IamError::from_code(
        "NoSuchEntity",
        format!("Instance Profile {name} cannot be found."),
    )
}

fn date(days: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000 + days * 86_400)
}

fn page<T: Clone>(all: &[T], marker: Option<String>, size: usize) -> Page<T> {
    let start: usize = marker.and_then(|m| m.parse().ok()).unwrap_or(0);
    let end = (start + size).min(all.len());
    Page {
        items: all[start.min(end)..end].to_vec(),
        marker: (end < all.len()).then(|| end.to_string()),
    }
}

impl MemoryIam {
    /// The partition of `caller_arn`: the account's ARNs are in it.
    pub fn partition(&self) -> &str {
        crate::model::partition_of(&self.caller_arn)
    }

    fn encode(&self, doc: &str) -> String {
        if self.url_encode {
            utf8_percent_encode(doc, NON_ALPHANUMERIC).to_string()
        } else {
            doc.to_string()
        }
    }

    /// Every call waits `latency`.
    async fn call(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    pub fn add_entity(&self, kind: Kind, name: &str) -> &Self {
        let n = self.state.lock().principals.len() as u64;
        let lower = kind.api().to_lowercase();
        let mut e = Entity::new(
            kind,
            name,
            &format!("AID{n:017}"),
            &format!("arn:{}:iam::{ACCOUNT}:{lower}/{name}", self.partition()),
            date(n),
        );
        e.tags = Some(Vec::new());
        if kind == Kind::Role {
            e.trust_policy = Some(format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
            ));
            e.max_session_duration = Some(3600);
        }
        e.complete = true;
        self.state.lock().principals.insert(
            (kind, name.to_string()),
            Principal {
                entity: Some(e),
                ..Default::default()
            },
        );
        self
    }

    fn with<R>(&self, kind: Kind, name: &str, f: impl FnOnce(&mut Principal) -> R) -> R {
        let mut state = self.state.lock();
        f(state
            .principals
            .get_mut(&(kind, name.to_string()))
            .expect("principal exists"))
    }

    pub fn set_tags(&self, kind: Kind, name: &str, tags: &[(&str, &str)]) -> &Self {
        self.with(kind, name, |p| {
            p.entity.as_mut().unwrap().tags = Some(
                tags.iter()
                    .map(|(k, v)| Tag {
                        key: k.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
            )
        });
        self
    }

    pub fn put_inline(&self, kind: Kind, name: &str, policy: &str, doc: &str) -> &Self {
        self.with(kind, name, |p| p.inline.insert(policy.into(), doc.into()));
        self
    }

    pub fn add_policy(&self, name: &str, path: &str, doc: &str) -> &Self {
        let n = self.state.lock().policies.len() as u64;
        let account = if path.starts_with("/aws/") {
            "aws"
        } else {
            ACCOUNT
        };
        let path = path.trim_start_matches("/aws");
        let policy = ManagedPolicy {
            name: name.into(),
            arn: format!("arn:{}:iam::{account}:policy{path}{name}", self.partition()),
            path: path.into(),
            default_version_id: "v1".into(),
            attachment_count: 0,
            create_date: date(n),
            update_date: date(n + 1),
        };
        self.state
            .lock()
            .policies
            .insert(name.into(), (policy, doc.into()));
        self
    }

    pub fn attach(&self, kind: Kind, name: &str, policy: &str) -> &Self {
        let arn = self.state.lock().policies[policy].0.arn.clone();
        self.with(kind, name, |p| {
            p.attached.push(AttachedPolicy {
                name: policy.into(),
                arn,
            })
        });
        self
    }

    pub fn add_to_group(&self, user: &str, group: &str) -> &Self {
        self.with(Kind::User, user, |p| p.links.push(group.into()));
        self.with(Kind::Group, group, |p| p.links.push(user.into()));
        self
    }

    pub fn add_access_key(&self, user: &str, id: &str) -> &Self {
        self.with(Kind::User, user, |p| {
            p.keys.push(AccessKey {
                id: id.into(),
                status: "Active".into(),
                create_date: Some(date(1)),
            })
        });
        self
    }

    /// Gives a user a console password and an MFA device.
    pub fn add_login(&self, user: &str, serial: &str) -> &Self {
        self.with(Kind::User, user, |p| {
            p.login = Some(LoginProfile {
                create_date: date(7),
                password_reset_required: true,
            });
            p.mfa.push(MfaDevice {
                serial_number: serial.into(),
                enable_date: date(8),
            });
        });
        self
    }

    /// The account's password policy and alias, as IAM holds them.
    pub fn account_settings(&self) -> (Option<PasswordPolicy>, Vec<String>) {
        let state = self.state.lock();
        (state.password_policy.clone(), state.aliases.clone())
    }

    /// Moves an entity to another path (`/aws-service-role/...`).
    pub fn set_path(&self, kind: Kind, name: &str, path: &str) -> &Self {
        self.with(kind, name, |p| {
            p.entity.as_mut().unwrap().path = path.into()
        });
        self
    }

    pub fn remove_entity(&self, kind: Kind, name: &str) {
        self.state
            .lock()
            .principals
            .remove(&(kind, name.to_string()));
    }

    fn principal(&self, kind: Kind, name: &str) -> Result<Principal> {
        self.state
            .lock()
            .principals
            .get(&(kind, name.to_string()))
            .cloned()
            .ok_or_else(|| {
                IamError::from_code(
                    "NoSuchEntity",
                    format!(
                        "The {} with name {name} cannot be found.",
                        kind.api().to_lowercase()
                    ),
                )
            })
    }
}

#[async_trait]
impl Iam for MemoryIam {
    async fn list_entities(&self, kind: Kind, marker: Option<String>) -> Result<Page<Entity>> {
        self.call().await;
        let all: Vec<Entity> = self
            .state
            .lock()
            .principals
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .filter_map(|(_, p)| p.entity.clone())
            .map(|mut e| {
                // List calls leave out tags, boundaries and last-used.
                e.tags = None;
                e.complete = kind == Kind::Group;
                e
            })
            .collect();
        Ok(page(&all, marker, self.page_size))
    }

    async fn get_entity(&self, kind: Kind, name: &str) -> Result<Entity> {
        self.call().await;
        let mut e = self.principal(kind, name)?.entity.unwrap();
        if let Some(doc) = &e.trust_policy {
            e.trust_policy = Some(self.encode(doc));
        }
        Ok(e)
    }

    async fn get_group_members(&self, group: &str, marker: Option<String>) -> Result<Page<String>> {
        self.call().await;
        Ok(page(
            &self.principal(Kind::Group, group)?.links,
            marker,
            self.page_size,
        ))
    }

    async fn list_groups_for_user(
        &self,
        user: &str,
        marker: Option<String>,
    ) -> Result<Page<String>> {
        self.call().await;
        Ok(page(
            &self.principal(Kind::User, user)?.links,
            marker,
            self.page_size,
        ))
    }

    async fn list_inline_policies(
        &self,
        kind: Kind,
        name: &str,
        marker: Option<String>,
    ) -> Result<Page<String>> {
        self.call().await;
        let names: Vec<String> = self.principal(kind, name)?.inline.into_keys().collect();
        Ok(page(&names, marker, self.page_size))
    }

    async fn get_inline_policy(&self, kind: Kind, name: &str, policy: &str) -> Result<String> {
        self.call().await;
        let doc = self.principal(kind, name)?.inline.get(policy).cloned();
        doc.map(|d| self.encode(&d)).ok_or_else(|| {
            IamError::from_code(
                "NoSuchEntity",
                format!("The policy {policy} cannot be found."),
            )
        })
    }

    async fn list_attached_policies(
        &self,
        kind: Kind,
        name: &str,
        marker: Option<String>,
    ) -> Result<Page<AttachedPolicy>> {
        self.call().await;
        Ok(page(
            &self.principal(kind, name)?.attached,
            marker,
            self.page_size,
        ))
    }

    async fn list_policies(
        &self,
        scope: PolicyScope,
        marker: Option<String>,
    ) -> Result<Page<ManagedPolicy>> {
        self.call().await;
        let state = self.state.lock();
        let all: Vec<ManagedPolicy> = state
            .policies
            .values()
            .filter(|(p, _)| p.is_aws_managed() == (scope == PolicyScope::Aws))
            .map(|(p, _)| {
                let attached = state
                    .principals
                    .values()
                    .filter(|x| x.attached.iter().any(|a| a.arn == p.arn))
                    .count();
                ManagedPolicy {
                    attachment_count: attached as i32,
                    ..p.clone()
                }
            })
            .collect();
        Ok(page(&all, marker, self.page_size))
    }

    async fn get_policy_version(&self, arn: &str, version_id: &str) -> Result<String> {
        self.call().await;
        let state = self.state.lock();
        let name = policy_name(&state, arn)?;
        let (policy, doc) = &state.policies[&name];
        let doc = if policy.default_version_id == version_id {
            Some(doc.clone())
        } else {
            state
                .old_versions
                .get(&name)
                .and_then(|v| v.iter().find(|(id, _, _)| id == version_id))
                .map(|(_, d, _)| d.clone())
        };
        doc.map(|d| self.encode(&d)).ok_or_else(|| {
            IamError::from_code(
                "NoSuchEntity",
                format!("Policy {arn} version {version_id} does not exist."),
            )
        })
    }

    async fn list_access_keys(
        &self,
        user: &str,
        marker: Option<String>,
    ) -> Result<Page<AccessKey>> {
        self.call().await;
        Ok(page(
            &self.principal(Kind::User, user)?.keys,
            marker,
            self.page_size,
        ))
    }

    async fn get_access_key_last_used(&self, _key_id: &str) -> Result<AccessKeyLastUsed> {
        self.call().await;
        Ok(AccessKeyLastUsed {
            date: None,
            service: Some("N/A".into()),
            region: Some("N/A".into()),
        })
    }

    async fn get_account_authorization_details(
        &self,
        filter: DetailsFilter,
        marker: Option<String>,
    ) -> Result<Page<AccountDetails>> {
        self.call().await;
        self.details_asked.lock().push(filter);
        if self.deny_account_details {
            return Err(IamError::new(
                ErrorKind::AccessDenied,
                "AccessDenied",
                "User is not authorized to perform: iam:GetAccountAuthorizationDetails",
            ));
        }
        // One "item" per principal or policy, paged like the others.
        #[derive(Clone)]
        enum Item {
            P(Box<EntityDetail>),
            M(PolicyDetail),
        }
        let items: Vec<Item> = {
            let state = self.state.lock();
            let principals = state
                .principals
                .values()
                .filter(|p| filter.includes(p.entity.as_ref().unwrap().kind))
                .map(|p| {
                    let mut entity = p.entity.clone().unwrap();
                    entity.trust_policy = entity.trust_policy.map(|d| self.encode(&d));
                    entity.description = None;
                    entity.max_session_duration = None;
                    entity.complete = entity.kind == Kind::Group;
                    Item::P(Box::new(EntityDetail {
                        groups: if entity.kind == Kind::User {
                            p.links.clone()
                        } else {
                            Vec::new()
                        },
                        entity,
                        inline: p
                            .inline
                            .iter()
                            .map(|(k, v)| (k.clone(), self.encode(v)))
                            .collect(),
                        attached: p.attached.clone(),
                    }))
                });
            let policies = state
                .policies
                .values()
                .filter(|(p, _)| filter.policies() == Some(p.is_aws_managed()))
                .map(|(p, d)| {
                    let default = PolicyVersion {
                        id: p.default_version_id.clone(),
                        is_default: true,
                        create_date: p.update_date,
                    };
                    let old = state.old_versions.get(&p.name).into_iter().flatten();
                    let versions = std::iter::once((default, Some(self.encode(d))))
                        .chain(old.map(|(id, doc, at)| {
                            let version = PolicyVersion {
                                id: id.clone(),
                                is_default: false,
                                create_date: *at,
                            };
                            (version, Some(self.encode(doc)))
                        }))
                        .collect();
                    Item::M(PolicyDetail {
                        policy: p.clone(),
                        default_document: Some(self.encode(d)),
                        versions,
                    })
                });
            principals.chain(policies).collect()
        };
        let Page { items, marker } = page(&items, marker, self.page_size);
        let mut details = AccountDetails::default();
        for item in items {
            match item {
                Item::P(p) => details.principals.push(*p),
                Item::M(m) => details.policies.push(m),
            }
        }
        Ok(Page {
            items: vec![details],
            marker,
        })
    }

    async fn create_entity(
        &self,
        kind: Kind,
        name: &str,
        trust_policy: Option<&str>,
    ) -> Result<Entity> {
        self.call().await;
        if self.principal(kind, name).is_ok() {
            return Err(IamError::from_code(
                "EntityAlreadyExists",
                format!("{} with name {name} already exists.", kind.api()),
            ));
        }
        self.add_entity(kind, name);
        if let Some(doc) = trust_policy {
            self.with(kind, name, |p| {
                p.entity.as_mut().unwrap().trust_policy = Some(doc.into())
            });
        }
        Ok(self.principal(kind, name)?.entity.unwrap())
    }

    async fn delete_entity(&self, kind: Kind, name: &str) -> Result<()> {
        self.call().await;
        let p = self.principal(kind, name)?;
        if !p.inline.is_empty()
            || !p.attached.is_empty()
            || !p.links.is_empty()
            || !p.keys.is_empty()
        {
            return Err(IamError::from_code(
                "DeleteConflict",
                format!("Cannot delete entity, must remove referenced objects first ({name})."),
            ));
        }
        self.remove_entity(kind, name);
        Ok(())
    }

    async fn rename_entity(&self, kind: Kind, name: &str, new_name: &str) -> Result<()> {
        self.call().await;
        let mut p = self.principal(kind, name)?;
        if self.principal(kind, new_name).is_ok() {
            return Err(IamError::from_code(
                "EntityAlreadyExists",
                format!("{new_name} exists"),
            ));
        }
        let mut state = self.state.lock();
        state.principals.remove(&(kind, name.to_string()));
        let e = p.entity.as_mut().unwrap();
        e.name = new_name.into();
        e.arn = e.arn.replace(&format!("/{name}"), &format!("/{new_name}"));
        let other = kind.linked();
        for link in &p.links {
            if let Some(q) = state.principals.get_mut(&(other, link.clone())) {
                for l in q.links.iter_mut().filter(|l| *l == name) {
                    *l = new_name.into();
                }
            }
        }
        state.principals.insert((kind, new_name.to_string()), p);
        Ok(())
    }

    async fn put_inline_policy(
        &self,
        kind: Kind,
        name: &str,
        policy: &str,
        document: &str,
    ) -> Result<()> {
        self.call().await;
        self.principal(kind, name)?;
        self.put_inline(kind, name, policy, document);
        Ok(())
    }

    async fn delete_inline_policy(&self, kind: Kind, name: &str, policy: &str) -> Result<()> {
        self.call().await;
        self.principal(kind, name)?;
        self.with(kind, name, |p| p.inline.remove(policy))
            .map(|_| ())
            .ok_or_else(|| IamError::from_code("NoSuchEntity", format!("policy {policy}")))
    }

    async fn attach_policy(&self, kind: Kind, name: &str, arn: &str) -> Result<()> {
        self.call().await;
        self.principal(kind, name)?;
        let found = self
            .state
            .lock()
            .policies
            .values()
            .find(|(p, _)| p.arn == arn)
            .map(|(p, _)| p.name.clone());
        let policy = found.ok_or_else(|| {
            IamError::from_code("NoSuchEntity", format!("Policy {arn} does not exist"))
        })?;
        self.with(kind, name, |p| {
            if !p.attached.iter().any(|a| a.arn == arn) {
                p.attached.push(AttachedPolicy {
                    name: policy,
                    arn: arn.into(),
                });
            }
        });
        Ok(())
    }

    async fn detach_policy(&self, kind: Kind, name: &str, arn: &str) -> Result<()> {
        self.call().await;
        self.principal(kind, name)?;
        let before = self.with(kind, name, |p| {
            let n = p.attached.len();
            p.attached.retain(|a| a.arn != arn);
            n - p.attached.len()
        });
        if before == 0 {
            return Err(IamError::from_code(
                "NoSuchEntity",
                format!("Policy {arn} was not found."),
            ));
        }
        Ok(())
    }

    async fn add_user_to_group(&self, user: &str, group: &str) -> Result<()> {
        self.call().await;
        let u = self.principal(Kind::User, user)?;
        self.principal(Kind::Group, group)?;
        if !u.links.iter().any(|g| g == group) {
            self.add_to_group(user, group);
        }
        Ok(())
    }

    async fn remove_user_from_group(&self, user: &str, group: &str) -> Result<()> {
        self.call().await;
        self.principal(Kind::User, user)?;
        self.principal(Kind::Group, group)?;
        self.with(Kind::User, user, |p| p.links.retain(|g| g != group));
        self.with(Kind::Group, group, |p| p.links.retain(|u| u != user));
        Ok(())
    }

    async fn update_trust_policy(&self, role: &str, document: &str) -> Result<()> {
        self.call().await;
        self.principal(Kind::Role, role)?;
        self.with(Kind::Role, role, |p| {
            p.entity.as_mut().unwrap().trust_policy = Some(document.into())
        });
        Ok(())
    }

    async fn tag_entity(&self, kind: Kind, name: &str, tags: &[Tag]) -> Result<()> {
        self.call().await;
        self.principal(kind, name)?;
        self.with(kind, name, |p| {
            merge_tags(
                p.entity.as_mut().unwrap().tags.get_or_insert_with(Vec::new),
                tags,
            );
        });
        Ok(())
    }

    async fn untag_entity(&self, kind: Kind, name: &str, keys: &[String]) -> Result<()> {
        self.call().await;
        self.principal(kind, name)?;
        self.with(kind, name, |p| {
            if let Some(current) = p.entity.as_mut().unwrap().tags.as_mut() {
                current.retain(|t| !keys.contains(&t.key));
            }
        });
        Ok(())
    }

    async fn create_policy(&self, name: &str, document: &str) -> Result<ManagedPolicy> {
        self.call().await;
        if self.state.lock().policies.contains_key(name) {
            return Err(IamError::from_code(
                "EntityAlreadyExists",
                format!("A policy called {name} already exists."),
            ));
        }
        self.add_policy(name, "/", document);
        Ok(self.state.lock().policies[name].0.clone())
    }

    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<String> {
        self.call().await;
        let mut state = self.state.lock();
        let name = policy_name(&state, arn)?;
        if state.old_versions.get(&name).map_or(0, Vec::len) + 1 >= 5 {
            return Err(IamError::from_code(
                "LimitExceeded",
                format!("A managed policy can have up to 5 versions ({name})."),
            ));
        }
        let next = state.next_version.entry(name.clone()).or_insert(1);
        *next += 1;
        let id = format!("v{next}");
        let (policy, doc) = state.policies.get_mut(&name).unwrap();
        let old = (
            policy.default_version_id.clone(),
            std::mem::replace(doc, document.to_string()),
            policy.update_date,
        );
        policy.default_version_id = id.clone();
        policy.update_date = SystemTime::now();
        state.old_versions.entry(name).or_default().push(old);
        Ok(id)
    }

    async fn list_policy_versions(
        &self,
        arn: &str,
        marker: Option<String>,
    ) -> Result<Page<PolicyVersion>> {
        self.call().await;
        let state = self.state.lock();
        let (policy, _) = state
            .policies
            .values()
            .find(|(p, _)| p.arn == arn)
            .ok_or_else(|| {
                IamError::from_code("NoSuchEntity", format!("Policy {arn} not found"))
            })?;
        let mut all = vec![PolicyVersion {
            id: policy.default_version_id.clone(),
            is_default: true,
            create_date: policy.update_date,
        }];
        for (id, _, date) in state.old_versions.get(&policy.name).into_iter().flatten() {
            all.push(PolicyVersion {
                id: id.clone(),
                is_default: false,
                create_date: *date,
            });
        }
        Ok(page(&all, marker, self.page_size))
    }

    async fn delete_policy_version(&self, arn: &str, version_id: &str) -> Result<()> {
        self.call().await;
        let mut state = self.state.lock();
        let name = policy_name(&state, arn)?;
        let versions = state.old_versions.entry(name).or_default();
        let before = versions.len();
        versions.retain(|(id, _, _)| id != version_id);
        if versions.len() == before {
            return Err(IamError::from_code(
                "DeleteConflict",
                "Cannot delete the default version of a policy.",
            ));
        }
        Ok(())
    }

    async fn delete_policy(&self, arn: &str) -> Result<()> {
        self.call().await;
        let attached = self
            .state
            .lock()
            .principals
            .values()
            .any(|p| p.attached.iter().any(|a| a.arn == arn));
        let mut state = self.state.lock();
        let name = policy_name(&state, arn)?;
        if attached || state.old_versions.get(&name).is_some_and(|v| !v.is_empty()) {
            return Err(IamError::from_code(
                "DeleteConflict",
                "Cannot delete a policy attached to entities or with non-default versions.",
            ));
        }
        state.policies.remove(&name);
        Ok(())
    }

    async fn set_default_policy_version(&self, arn: &str, version_id: &str) -> Result<()> {
        self.call().await;
        let mut state = self.state.lock();
        let name = policy_name(&state, arn)?;
        if state.policies[&name].0.default_version_id == version_id {
            return Ok(());
        }
        let versions = state.old_versions.entry(name.clone()).or_default();
        let at = versions
            .iter()
            .position(|(id, _, _)| id == version_id)
            .ok_or_else(|| {
                IamError::from_code(
                    "NoSuchEntity",
                    format!("Policy {arn} version {version_id} does not exist."),
                )
            })?;
        let (id, doc, created) = versions.remove(at);
        let (policy, current) = state.policies.get_mut(&name).unwrap();
        let old = (
            std::mem::replace(&mut policy.default_version_id, id),
            std::mem::replace(current, doc),
            std::mem::replace(&mut policy.update_date, created),
        );
        state.old_versions.get_mut(&name).unwrap().push(old);
        Ok(())
    }

    async fn update_role(
        &self,
        role: &str,
        description: &str,
        max_session_duration: i32,
    ) -> Result<()> {
        self.call().await;
        self.principal(Kind::Role, role)?;
        if !(3600..=43200).contains(&max_session_duration) {
            return Err(IamError::from_code(
                "ValidationError",
                "MaxSessionDuration must be between 3600 and 43200",
            ));
        }
        self.with(Kind::Role, role, |p| {
            let e = p.entity.as_mut().unwrap();
            e.description = Some(description.into());
            e.max_session_duration = Some(max_session_duration);
        });
        Ok(())
    }

    async fn put_permissions_boundary(&self, kind: Kind, name: &str, arn: &str) -> Result<()> {
        self.call().await;
        self.principal(kind, name)?;
        if kind == Kind::Group {
            return Err(IamError::from_code(
                "InvalidInput",
                "groups have no boundary",
            ));
        }
        policy_name(&self.state.lock(), arn)?;
        self.with(kind, name, |p| {
            p.entity.as_mut().unwrap().permissions_boundary = Some(PermissionsBoundary {
                kind: "Policy".into(),
                arn: arn.into(),
            })
        });
        Ok(())
    }

    async fn delete_permissions_boundary(&self, kind: Kind, name: &str) -> Result<()> {
        self.call().await;
        self.principal(kind, name)?;
        self.with(kind, name, |p| {
            p.entity.as_mut().unwrap().permissions_boundary = None
        });
        Ok(())
    }

    async fn list_instance_profiles(
        &self,
        marker: Option<String>,
    ) -> Result<Page<InstanceProfile>> {
        self.call().await;
        let all: Vec<InstanceProfile> = self
            .state
            .lock()
            .instance_profiles
            .values()
            .map(|p| InstanceProfile {
                tags: None,
                ..p.clone()
            })
            .collect();
        Ok(page(&all, marker, self.page_size))
    }

    async fn get_instance_profile(&self, name: &str) -> Result<InstanceProfile> {
        self.call().await;
        self.state
            .lock()
            .instance_profiles
            .get(name)
            .cloned()
            .ok_or_else(|| no_instance_profile(name))
    }

    async fn create_instance_profile(&self, name: &str) -> Result<InstanceProfile> {
        self.call().await;
        let mut state = self.state.lock();
        if state.instance_profiles.contains_key(name) {
            return Err(IamError::from_code(
                "EntityAlreadyExists",
                format!("Instance Profile {name} already exists."),
            ));
        }
        let n = state.instance_profiles.len() as u64;
        let profile = InstanceProfile {
            name: name.into(),
            path: "/".into(),
            id: format!("AIPA{n:017}"),
            arn: format!("arn:aws:iam::{ACCOUNT}:instance-profile/{name}"),
            create_date: date(n),
            roles: Vec::new(),
            tags: Some(Vec::new()),
        };
        state.instance_profiles.insert(name.into(), profile.clone());
        Ok(profile)
    }

    async fn delete_instance_profile(&self, name: &str) -> Result<()> {
        self.call().await;
        let mut state = self.state.lock();
        let profile = state
            .instance_profiles
            .get(name)
            .ok_or_else(|| no_instance_profile(name))?;
        if !profile.roles.is_empty() {
            return Err(IamError::from_code(
                "DeleteConflict",
                "Cannot delete entity, must remove roles from instance profile first.",
            ));
        }
        state.instance_profiles.remove(name);
        Ok(())
    }

    async fn add_role_to_instance_profile(&self, profile: &str, role: &str) -> Result<()> {
        self.call().await;
        self.principal(Kind::Role, role)?;
        let mut state = self.state.lock();
        let p = profile_mut(&mut state, profile)?;
        if !p.roles.is_empty() {
            return Err(IamError::from_code(
                "LimitExceeded",
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1",
            ));
        }
        p.roles.push(role.into());
        Ok(())
    }

    async fn remove_role_from_instance_profile(&self, profile: &str, role: &str) -> Result<()> {
        self.call().await;
        let mut state = self.state.lock();
        let p = profile_mut(&mut state, profile)?;
        let before = p.roles.len();
        p.roles.retain(|r| r != role);
        if p.roles.len() == before {
            return Err(IamError::from_code(
                "NoSuchEntity",
                format!("Role {role} is not in instance profile {profile}"),
            ));
        }
        Ok(())
    }

    async fn list_saml_providers(&self) -> Result<Vec<SamlProvider>> {
        self.call().await;
        Ok(self
            .state
            .lock()
            .saml
            .values()
            .map(|(p, _)| p.clone())
            .collect())
    }

    async fn get_saml_provider(&self, arn: &str) -> Result<String> {
        self.call().await;
        self.state
            .lock()
            .saml
            .get(arn)
            .map(|(_, doc)| doc.clone())
            .ok_or_else(|| no_provider(arn))
    }

    async fn create_saml_provider(&self, name: &str, metadata: &str) -> Result<String> {
        self.call().await;
        let arn = format!("arn:aws:iam::{ACCOUNT}:saml-provider/{name}");
        let mut state = self.state.lock();
        if state.saml.contains_key(&arn) {
            return Err(IamError::from_code(
                "EntityAlreadyExists",
                format!("SAMLProvider {name} already exists"),
            ));
        }
        let provider = SamlProvider {
            arn: arn.clone(),
            create_date: date(3),
        };
        state.saml.insert(arn.clone(), (provider, metadata.into()));
        Ok(arn)
    }

    async fn update_saml_provider(&self, arn: &str, metadata: &str) -> Result<()> {
        self.call().await;
        let mut state = self.state.lock();
        let entry = state.saml.get_mut(arn).ok_or_else(|| no_provider(arn))?;
        entry.1 = metadata.into();
        Ok(())
    }

    async fn delete_saml_provider(&self, arn: &str) -> Result<()> {
        self.call().await;
        self.state
            .lock()
            .saml
            .remove(arn)
            .map(|_| ())
            .ok_or_else(|| no_provider(arn))
    }

    async fn list_oidc_providers(&self) -> Result<Vec<String>> {
        self.call().await;
        Ok(self.state.lock().oidc.keys().cloned().collect())
    }

    async fn get_oidc_provider(&self, arn: &str) -> Result<OidcProvider> {
        self.call().await;
        self.state
            .lock()
            .oidc
            .get(arn)
            .cloned()
            .ok_or_else(|| no_provider(arn))
    }

    async fn create_oidc_provider(
        &self,
        url: &str,
        client_ids: &[String],
        thumbprints: &[String],
    ) -> Result<String> {
        self.call().await;
        let host_path = url.trim_start_matches("https://").to_string();
        let arn = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{host_path}");
        let mut state = self.state.lock();
        if state.oidc.contains_key(&arn) {
            return Err(IamError::from_code(
                "EntityAlreadyExists",
                format!("Provider with url {url} already exists."),
            ));
        }
        let provider = OidcProvider {
            arn: arn.clone(),
            url: host_path,
            client_ids: client_ids.to_vec(),
            thumbprints: thumbprints.to_vec(),
            create_date: date(4),
        };
        state.oidc.insert(arn.clone(), provider);
        Ok(arn)
    }

    async fn add_oidc_client_id(&self, arn: &str, client_id: &str) -> Result<()> {
        self.call().await;
        let mut state = self.state.lock();
        let p = oidc_mut(&mut state, arn)?;
        if !p.client_ids.iter().any(|c| c == client_id) {
            p.client_ids.push(client_id.into());
        }
        Ok(())
    }

    async fn remove_oidc_client_id(&self, arn: &str, client_id: &str) -> Result<()> {
        self.call().await;
        let mut state = self.state.lock();
        let p = oidc_mut(&mut state, arn)?;
        p.client_ids.retain(|c| c != client_id);
        Ok(())
    }

    async fn update_oidc_thumbprints(&self, arn: &str, thumbprints: &[String]) -> Result<()> {
        self.call().await;
        let mut state = self.state.lock();
        let p = oidc_mut(&mut state, arn)?;
        p.thumbprints = thumbprints.to_vec();
        Ok(())
    }

    async fn delete_oidc_provider(&self, arn: &str) -> Result<()> {
        self.call().await;
        self.state
            .lock()
            .oidc
            .remove(arn)
            .map(|_| ())
            .ok_or_else(|| no_provider(arn))
    }

    async fn generate_last_accessed(&self, arn: &str) -> Result<String> {
        self.call().await;
        let mut state = self.state.lock();
        let id = format!("job-{}", state.jobs.len());
        state.jobs.insert(id.clone(), (arn.into(), 0));
        Ok(id)
    }

    async fn get_last_accessed(&self, job_id: &str) -> Result<Option<Vec<ServiceAccess>>> {
        self.call().await;
        let mut state = self.state.lock();
        let (arn, asked) = state
            .jobs
            .get_mut(job_id)
            .ok_or_else(|| IamError::from_code("NoSuchEntity", format!("no job {job_id}")))?;
        // The first answer is "in progress", as a real job's often is.
        *asked += 1;
        if *asked == 1 {
            return Ok(None);
        }
        Ok(Some(vec![ServiceAccess {
            service_name: "Amazon S3".into(),
            service_namespace: "s3".into(),
            last_authenticated: Some(date(9)),
            last_authenticated_entity: Some(arn.clone()),
            last_authenticated_region: Some("us-east-1".into()),
            total_authenticated_entities: Some(1),
        }]))
    }

    async fn tag_instance_profile(&self, name: &str, tags: &[Tag]) -> Result<()> {
        self.call().await;
        let mut state = self.state.lock();
        let p = profile_mut(&mut state, name)?;
        merge_tags(p.tags.get_or_insert_with(Vec::new), tags);
        Ok(())
    }

    async fn untag_instance_profile(&self, name: &str, keys: &[String]) -> Result<()> {
        self.call().await;
        let mut state = self.state.lock();
        let p = profile_mut(&mut state, name)?;
        if let Some(current) = p.tags.as_mut() {
            current.retain(|t| !keys.contains(&t.key));
        }
        Ok(())
    }

    async fn get_account_summary(&self) -> Result<Vec<(String, i64)>> {
        self.call().await;
        let state = self.state.lock();
        let count = |kind| state.principals.keys().filter(|(k, _)| *k == kind).count() as i64;
        Ok(vec![
            ("Groups".into(), count(Kind::Group)),
            ("Policies".into(), state.policies.len() as i64),
            ("Roles".into(), count(Kind::Role)),
            ("Users".into(), count(Kind::User)),
            ("UsersQuota".into(), 5000),
        ])
    }

    async fn get_password_policy(&self) -> Result<Option<PasswordPolicy>> {
        self.call().await;
        Ok(self.state.lock().password_policy.clone())
    }

    async fn update_password_policy(&self, policy: &PasswordPolicy) -> Result<()> {
        self.call().await;
        let mut policy = policy.clone();
        policy.expire_passwords = policy.max_password_age.is_some_and(|a| a > 0);
        self.state.lock().password_policy = Some(policy);
        Ok(())
    }

    async fn delete_password_policy(&self) -> Result<()> {
        self.call().await;
        match self.state.lock().password_policy.take() {
            Some(_) => Ok(()),
            None => Err(IamError::from_code(
                "NoSuchEntity",
                "The account has no password policy.",
            )),
        }
    }

    async fn list_account_aliases(&self) -> Result<Vec<String>> {
        self.call().await;
        Ok(self.state.lock().aliases.clone())
    }

    async fn create_account_alias(&self, alias: &str) -> Result<()> {
        self.call().await;
        // IAM replaces the alias: an account has one.
        self.state.lock().aliases = vec![alias.into()];
        Ok(())
    }

    async fn delete_account_alias(&self, alias: &str) -> Result<()> {
        self.call().await;
        let mut state = self.state.lock();
        if !state.aliases.iter().any(|a| a == alias) {
            return Err(IamError::from_code(
                "NoSuchEntity",
                format!("The account alias {alias} does not exist."),
            ));
        }
        state.aliases.clear();
        Ok(())
    }

    async fn generate_credential_report(&self) -> Result<bool> {
        self.call().await;
        let mut state = self.state.lock();
        // The first call starts it, the next finds it done (as IAM does).
        let done = state.report_generated;
        state.report_generated = true;
        Ok(done)
    }

    async fn get_credential_report(&self) -> Result<Option<Vec<u8>>> {
        self.call().await;
        let state = self.state.lock();
        if !state.report_generated {
            return Err(IamError::from_code(
                "ReportNotPresent",
                "Credential report not present.",
            ));
        }
        let mut csv = String::from("user,arn,password_enabled,mfa_active\n");
        for ((kind, name), p) in &state.principals {
            if *kind == Kind::User {
                let arn = p.entity.as_ref().map(|e| e.arn.clone()).unwrap_or_default();
                csv += &format!("{name},{arn},{},{}\n", p.login.is_some(), !p.mfa.is_empty());
            }
        }
        Ok(Some(csv.into_bytes()))
    }

    async fn list_mfa_devices(
        &self,
        user: &str,
        marker: Option<String>,
    ) -> Result<Page<MfaDevice>> {
        self.call().await;
        Ok(page(
            &self.principal(Kind::User, user)?.mfa,
            marker,
            self.page_size,
        ))
    }

    async fn get_login_profile(&self, user: &str) -> Result<Option<LoginProfile>> {
        self.call().await;
        Ok(self.principal(Kind::User, user)?.login)
    }

    async fn list_entities_for_policy(
        &self,
        arn: &str,
        marker: Option<String>,
    ) -> Result<Page<(Kind, String)>> {
        self.call().await;
        let all: Vec<(Kind, String)> = self
            .state
            .lock()
            .principals
            .iter()
            .filter(|(_, p)| p.attached.iter().any(|a| a.arn == arn))
            .map(|((k, n), _)| (*k, n.clone()))
            .collect();
        Ok(page(&all, marker, self.page_size))
    }

    async fn caller_identity(&self) -> Result<CallerIdentity> {
        self.call().await;
        Ok(CallerIdentity {
            account: ACCOUNT.into(),
            arn: self.caller_arn.clone(),
        })
    }

    async fn assume_role(
        &self,
        role_arn: &str,
        session_name: &str,
        duration_seconds: i32,
    ) -> Result<RoleCredentials> {
        self.call().await;
        let n = self.assumed.fetch_add(1, Ordering::Relaxed) + 1;
        let name = role_arn.rsplit('/').next().unwrap_or_default();
        if !self
            .state
            .lock()
            .principals
            .contains_key(&(Kind::Role, name.to_string()))
        {
            return Err(IamError::from_code(
                "AccessDenied",
                format!(
                    "User is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
                ),
            ));
        }
        *self.last_assume.lock() = Some((session_name.to_string(), duration_seconds));
        Ok(RoleCredentials {
            access_key_id: format!("ASIA{n:016}"),
            secret_access_key: format!("secret{n}"),
            session_token: format!("token{n}"),
            expiration: SystemTime::now() + Duration::from_secs(duration_seconds as u64),
        })
    }
}
