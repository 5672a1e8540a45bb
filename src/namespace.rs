//! The namespace core: what each path holds, served from the cache and
//! IAM. Knows nothing of FUSE; tested against the in-memory backend.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use futures::{stream, StreamExt, TryStreamExt};
use parking_lot::Mutex;
use serde_json::json;

use zeroize::Zeroizing;

use crate::cache::{Cache, CacheStats, Key};
use crate::credentials::CredentialCache;
use crate::document;
use crate::error::{ErrorKind, IamError, Result};
use crate::error_log::ErrorLog;
use crate::iam::counted::Service;
use crate::iam::{
    collect_pages, AccessKey, AccessKeyLastUsed, AttachedPolicy, CallCounts, CallerIdentity,
    Counted, DetailsFilter, Entity, Iam, InstanceProfile, Kind, ManagedPolicy, OidcProvider,
    PasswordPolicy, PolicyScope, PolicyVersion, SamlProvider,
};
use crate::kernel_requests::KernelRequests;
use crate::keyed::KeyedLocks;
use crate::node::{policy_link_target, ControlFile, FileKind, Node};
use crate::scratch::ScratchStore;
use edits::Edits;

/// Distinct entities of one kind fetched one by one before the whole account
/// is read in bulk (a tree walk, not a single `cat`).
const BULK_THRESHOLD: usize = 4;
/// Per-entity calls in flight at once when bulk reads are denied.
const FAN_OUT: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub kind: FileKind,
    pub perm: u16,
    pub size: u64,
    pub mtime: SystemTime,
    /// A file's mtime; a folder's last change of names seen by iamfs (not
    /// its listing date: backup tools compare ctime before and after).
    pub ctime: SystemTime,
}

#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub endpoint: String,
    pub region: String,
    pub read_only: bool,
    pub cache_ttl: Duration,
    pub cache_entries: usize,
    /// Seconds asked of AssumeRole for roles/X/credentials.
    pub session_duration: u64,
    pub session_name: String,
    /// The daemon's own credentials (an MFA session, or the chain): shown
    /// in `.iamfs/status`, renewed through `.iamfs/mfa`.
    pub daemon_credentials: Option<Arc<crate::session::DaemonCredentials>>,
}

/// A file's bytes: shared with the cache, or a secret that is zeroized when
/// the last reader lets go of it.
#[derive(Clone)]
pub enum Content {
    Shared(Arc<Vec<u8>>),
    Secret(Arc<Zeroizing<Vec<u8>>>),
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Shared(b) => write!(f, "Content({} bytes)", b.len()),
            Content::Secret(_) => f.write_str("Content(<secret>)"),
        }
    }
}

impl std::ops::Deref for Content {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Content::Shared(b) => b,
            Content::Secret(b) => b,
        }
    }
}

impl From<Arc<Vec<u8>>> for Content {
    fn from(b: Arc<Vec<u8>>) -> Self {
        Content::Shared(b)
    }
}

impl From<Vec<u8>> for Content {
    fn from(b: Vec<u8>) -> Self {
        Content::Shared(Arc::new(b))
    }
}

/// An entity as cached, with the files made from it rendered once: a warm
/// `grep -r` opens each of them again and again.
pub struct CachedEntity {
    entity: Entity,
    json: OnceLock<Arc<Vec<u8>>>,
    tags: OnceLock<Arc<Vec<u8>>>,
    trust: OnceLock<Arc<Vec<u8>>>,
}

impl From<Entity> for CachedEntity {
    fn from(entity: Entity) -> Self {
        Self {
            entity,
            json: OnceLock::new(),
            tags: OnceLock::new(),
            trust: OnceLock::new(),
        }
    }
}

impl std::ops::Deref for CachedEntity {
    type Target = Entity;
    fn deref(&self) -> &Entity {
        &self.entity
    }
}

impl CachedEntity {
    fn json(&self) -> Arc<Vec<u8>> {
        let e = &self.entity;
        self.json
            .get_or_init(|| Arc::new(document::render_entity(e)))
            .clone()
    }

    fn tags(&self) -> Arc<Vec<u8>> {
        let tags = self.entity.tags.as_deref().unwrap_or(&[]);
        self.tags
            .get_or_init(|| Arc::new(document::render_tags(tags)))
            .clone()
    }

    fn trust_policy(&self) -> Arc<Vec<u8>> {
        let doc = self.entity.trust_policy.as_deref().unwrap_or("{}");
        self.trust
            .get_or_init(|| Arc::new(document::render_policy(doc)))
            .clone()
    }
}

/// A listing in IAM's order, indexed by name: lookups in a folder of
/// thousands of entries must not scan it.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    items: Vec<T>,
    index: HashMap<String, usize>,
}

pub trait Named {
    fn name(&self) -> &str;
}

impl Named for Entity {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for InstanceProfile {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for ManagedPolicy {
    fn name(&self) -> &str {
        &self.name
    }
}

impl<T: Named> Listing<T> {
    pub fn new(items: Vec<T>) -> Self {
        let index = items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.name().to_string(), i))
            .collect();
        Self { items, index }
    }

    pub fn get(&self, name: &str) -> Option<&T> {
        self.index.get(name).map(|i| &self.items[*i])
    }

    pub fn into_items(self) -> Vec<T> {
        self.items
    }
}

impl<T> std::ops::Deref for Listing<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items
    }
}

/// Which bulk read a cache miss counts toward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum BulkScope {
    Principals(Kind),
    ManagedPolicies,
    AwsPolicies,
    /// One of users' access keys, MFA devices or console passwords: in no
    /// bulk read IAM has, so a walk of users/ fetches the file it reads for
    /// every user, FAN_OUT at a time (and only that file: `grep
    /// --exclude=access-keys.json` fetches no keys).
    SignIn(SignInFile),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SignInFile {
    AccessKeys,
    MfaDevices,
    LoginProfile,
}

impl BulkScope {
    /// What GetAccountAuthorizationDetails is asked for to read the scope,
    /// and the listing that fills in the fields it leaves out; None where no
    /// bulk read exists.
    fn details(self) -> Option<(DetailsFilter, Option<Kind>)> {
        Some(match self {
            BulkScope::Principals(Kind::User) => (DetailsFilter::Users, Some(Kind::User)),
            BulkScope::Principals(Kind::Group) => (DetailsFilter::Groups, None),
            BulkScope::Principals(Kind::Role) => (DetailsFilter::Roles, Some(Kind::Role)),
            BulkScope::ManagedPolicies => (DetailsFilter::LocalManagedPolicies, None),
            BulkScope::AwsPolicies => (DetailsFilter::AwsManagedPolicies, None),
            BulkScope::SignIn(_) => return None,
        })
    }
}

#[derive(Default)]
struct BulkState {
    misses: HashMap<BulkScope, HashSet<String>>,
    /// GetAccountAuthorizationDetails answered AccessDenied: fan out instead.
    denied: bool,
    /// The scope being read in bulk now (one at a time: `bulk_gate`).
    filling: Option<BulkScope>,
}

tokio::task_local! {
    /// Set while a bulk read runs: its own fetches (the fan-out) go
    /// straight to IAM instead of waiting for the read they are part of.
    static IN_FILL: ();
}

/// What a cache miss does about bulk reads.
enum OnMiss {
    /// Fetch the one value.
    Fetch,
    /// Read the whole scope in bulk first.
    Fill,
    /// A bulk read of its scope is under way: wait for it.
    Wait,
}

#[cfg(test)]
impl Settings {
    /// Settings for tests over the in-memory backend.
    pub fn for_tests(cache_ttl: Duration) -> Self {
        Self {
            endpoint: "memory".into(),
            region: "us-east-1".into(),
            read_only: false,
            cache_ttl,
            cache_entries: 10_000,
            session_duration: 3600,
            session_name: "iamfs-tester".into(),
            daemon_credentials: None,
        }
    }
}

/// Who asks: the user who mounted, or another local user (`--allow-other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Owner,
    Other,
}

/// How long a read of the credential report waits for IAM to generate it,
/// asking every REPORT_POLL.
const REPORT_WAIT: Duration = Duration::from_secs(20);
const REPORT_POLL: Duration = Duration::from_secs(1);

/// How long the kernel keeps the attributes of a file that is being written.
pub const CHANGING_FILE_LIFETIME: Duration = Duration::from_secs(1);

pub struct Namespace {
    /// Itself, once shared (`shared`): background work holds it.
    me: OnceLock<std::sync::Weak<Namespace>>,
    /// Every request counted, for `.iamfs/status`.
    iam: Counted<dyn Iam>,
    cache: Cache,
    bulk: Mutex<BulkState>,
    bulk_gate: tokio::sync::Mutex<()>,
    pub errors: ErrorLog,
    /// Requests from the kernel, counted by the FUSE adapter.
    pub requests: KernelRequests,
    settings: Settings,
    mounted_at: SystemTime,
    identity: tokio::sync::OnceCell<CallerIdentity>,
    credentials: CredentialCache,
    scratch: ScratchStore,
    /// Documents as editing leaves them, over IAM's.
    edits: Edits,
    /// One save of a document at a time.
    commit_locks: KeyedLocks<Node>,
    /// By folder: a hash of the names last listed, and since when they
    /// are as they are (the folder's ctime).
    dir_changes: Mutex<HashMap<Node, (u64, SystemTime)>>,
}

impl Namespace {
    pub fn new(iam: Arc<dyn Iam>, settings: Settings) -> Self {
        Self {
            me: OnceLock::new(),
            iam: Counted::new(iam),
            cache: Cache::new(settings.cache_ttl, settings.cache_entries),
            edits: Edits::new(settings.cache_ttl),
            bulk: Mutex::default(),
            bulk_gate: tokio::sync::Mutex::new(()),
            errors: ErrorLog::default(),
            requests: KernelRequests::default(),
            credentials: CredentialCache::new(
                settings.session_name.clone(),
                settings.session_duration,
            ),
            settings,
            mounted_at: SystemTime::now(),
            identity: tokio::sync::OnceCell::new(),
            scratch: ScratchStore::default(),
            commit_locks: KeyedLocks::default(),
            dir_changes: Mutex::default(),
        }
    }

    /// The namespace shared, able to run work in the background (a cold
    /// listing's bulk read).
    pub fn shared(self) -> Arc<Self> {
        let ns = Arc::new(self);
        let _ = ns.me.set(Arc::downgrade(&ns));
        ns
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The IAM and STS requests made so far.
    pub fn api_calls(&self) -> &CallCounts {
        self.iam.counts()
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Drops every cached entry (`.iamfs/refresh`).
    pub fn refresh(&self) {
        self.cache.clear();
        self.credentials.clear();
        self.edits.refresh();
        let mut bulk = self.bulk.lock();
        bulk.misses.clear();
    }

    // ---- cached IAM reads ------------------------------------------------

    fn bulk_scope(key: &Key) -> Option<(BulkScope, String)> {
        match key {
            Key::PolicyDoc(arn, _) if crate::iam::is_aws_managed_arn(arn) => {
                Some((BulkScope::AwsPolicies, arn.clone()))
            }
            Key::PolicyDoc(arn, _) => Some((BulkScope::ManagedPolicies, arn.clone())),
            Key::Versions(name) => Some((BulkScope::ManagedPolicies, name.clone())),
            Key::AccessKeys(user) => {
                Some((BulkScope::SignIn(SignInFile::AccessKeys), user.clone()))
            }
            Key::MfaDevices(user) => {
                Some((BulkScope::SignIn(SignInFile::MfaDevices), user.clone()))
            }
            Key::LoginProfile(user) => {
                Some((BulkScope::SignIn(SignInFile::LoginProfile), user.clone()))
            }
            _ => key
                .bulk_entity()
                .map(|(kind, name)| (BulkScope::Principals(kind), name.to_string())),
        }
    }

    /// A cached value or one fetched now; a run of misses across distinct
    /// entities turns into one bulk read of the account.
    async fn cached<T, F, Fut>(&self, key: Key, fetch: F) -> Result<Arc<T>>
    where
        T: std::any::Any + Send + Sync,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        if let Some(v) = self.cache.get(&key) {
            return Ok(v);
        }
        if crate::cache::is_cached_only() {
            return Err(IamError::not_cached());
        }
        if let Some((scope, id)) = Self::bulk_scope(&key) {
            let on_miss = {
                let mut bulk = self.bulk.lock();
                match bulk.filling {
                    _ if IN_FILL.try_with(|_| ()).is_ok() => OnMiss::Fetch,
                    Some(filling) if filling == scope => OnMiss::Wait,
                    // A running fill's fetches don't count toward another.
                    Some(_) => OnMiss::Fetch,
                    None => {
                        let seen = bulk.misses.entry(scope).or_default();
                        seen.insert(id);
                        if seen.len() >= BULK_THRESHOLD {
                            OnMiss::Fill
                        } else {
                            OnMiss::Fetch
                        }
                    }
                }
            };
            match on_miss {
                OnMiss::Fill => self.fill_in_bulk(scope).await,
                // The gate is held for the whole of a fill.
                OnMiss::Wait => drop(self.bulk_gate.lock().await),
                OnMiss::Fetch => {}
            }
            if !matches!(on_miss, OnMiss::Fetch) {
                if let Some(v) = self.cache.peek(&key) {
                    return Ok(v);
                }
            }
        }
        self.cache.get_or_fetch(key, fetch).await
    }

    /// A cold listing of users/, groups/, roles/ or policies/ starts the
    /// scope's bulk read at once, beside the List call, instead of waiting
    /// for a walk to show itself in BULK_THRESHOLD misses: the listing's
    /// answer is not delayed, and a walk's lookups wait for the bulk read
    /// instead of asking entity by entity. Only for a shared namespace
    /// (`shared`), which can run the read in the background.
    fn start_bulk_early(&self, scope: BulkScope, listing: &Key) {
        let Some(me) = self.me.get().and_then(std::sync::Weak::upgrade) else {
            return;
        };
        if scope.details().is_none() {
            return;
        }
        {
            let mut bulk = self.bulk.lock();
            if bulk.denied || bulk.filling.is_some() || self.cache_has_listing(listing) {
                return;
            }
            // As if the walk had already shown itself.
            let seen = bulk.misses.entry(scope).or_default();
            for i in seen.len()..BULK_THRESHOLD {
                seen.insert(format!("\0listing-{i}"));
            }
        }
        tokio::spawn(async move { me.fill_in_bulk(scope).await });
    }

    fn cache_has_listing(&self, listing: &Key) -> bool {
        self.cache.fetched_at(listing).is_some()
    }

    /// Reads the whole account with GetAccountAuthorizationDetails, or, where
    /// that is denied, fans out per-entity calls for the scope.
    /// Boxed: it reaches `cached` again through the fan-out.
    fn fill_in_bulk(&self, scope: BulkScope) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(self.fill_in_bulk_now(scope))
    }

    async fn fill_in_bulk_now(&self, scope: BulkScope) {
        let _gate = self.bulk_gate.lock().await;
        let denied = {
            let mut bulk = self.bulk.lock();
            if bulk
                .misses
                .get(&scope)
                .is_none_or(|s| s.len() < BULK_THRESHOLD)
            {
                return; // another task filled while we waited
            }
            bulk.misses.remove(&scope);
            bulk.filling = Some(scope);
            bulk.denied
        };
        let started = Instant::now();
        let result = IN_FILL
            .scope((), async {
                match scope.details() {
                    Some((filter, listed_kind)) if !denied => {
                        match self.load_details(scope, filter, listed_kind).await {
                            Err(e) if e.kind == ErrorKind::AccessDenied => {
                                tracing::info!("bulk read denied ({e}); fetching entity by entity");
                                self.bulk.lock().denied = true;
                                self.fan_out(scope).await
                            }
                            other => other,
                        }
                    }
                    _ => self.fan_out(scope).await,
                }
            })
            .await;
        self.bulk.lock().filling = None;
        tracing::debug!(
            ?scope,
            seconds = started.elapsed().as_secs_f64(),
            "bulk read"
        );
        if let Err(e) = result {
            tracing::warn!("bulk read failed: {e}");
            self.errors.record("/", "bulk-read", &e);
        }
    }

    /// Reads the details of everything in `scope` with
    /// GetAccountAuthorizationDetails, and caches them as the per-entity
    /// calls would have.
    async fn load_details(
        &self,
        scope: BulkScope,
        filter: DetailsFilter,
        listed_kind: Option<Kind>,
    ) -> Result<()> {
        // GAAD leaves out what only the list calls return (role descriptions,
        // session durations, password use): the listing is merged in, and
        // read at the same time.
        // Both run to their end: a listing others wait for is never dropped
        // half-way because the bulk read failed first.
        let begun = Instant::now();
        let (pages, listed) = futures::join!(
            collect_pages(|m| self.iam.get_account_authorization_details(filter, m)),
            async {
                match listed_kind {
                    Some(kind) => self.entities(kind).await.map(Some),
                    None => Ok(None),
                }
            }
        );
        let (pages, listed) = (pages?, listed?);
        let listed: HashMap<&str, &Entity> = listed
            .iter()
            .flat_map(|l| l.iter())
            .map(|e| (e.name.as_str(), e))
            .collect();
        // Listings stay with the List calls: they keep IAM's order and cost a
        // page per thousand names.
        let mut members: HashMap<String, Vec<String>> = HashMap::new();
        for page in pages {
            for detail in page.principals {
                let mut entity = detail.entity;
                let (kind, name) = (entity.kind, entity.name.clone());
                for group in &detail.groups {
                    members.entry(group.clone()).or_default().push(name.clone());
                }
                if kind == Kind::User {
                    self.cache
                        .fill(Key::Links(kind, name.clone()), detail.groups, begun);
                }
                if kind == Kind::Group {
                    members.entry(name.clone()).or_default();
                }
                if BulkScope::Principals(kind) != scope {
                    continue; // users read for their groups' members
                }
                if let Some(listed) = listed.get(name.as_str()) {
                    entity.description = listed.description.clone();
                    entity.max_session_duration = listed.max_session_duration;
                    entity.password_last_used = listed.password_last_used;
                }
                entity.complete = true;
                let names: Vec<String> = detail.inline.iter().map(|(n, _)| n.clone()).collect();
                for (policy, raw) in &detail.inline {
                    self.cache.fill(
                        Key::InlineDoc(kind, name.clone(), policy.clone()),
                        document::render_policy(raw),
                        begun,
                    );
                }
                self.cache
                    .fill(Key::InlineNames(kind, name.clone()), names, begun);
                self.cache
                    .fill(Key::Attached(kind, name.clone()), detail.attached, begun);
                self.cache
                    .fill(Key::Entity(kind, name), CachedEntity::from(entity), begun);
            }
            for p in page.policies {
                if let Some(raw) = &p.default_document {
                    self.cache.fill(
                        Key::PolicyDoc(p.policy.arn.clone(), p.policy.default_version_id.clone()),
                        document::render_policy(raw),
                        begun,
                    );
                }
                // policy-versions/ reads from the same answer.
                for (version, raw) in &p.versions {
                    if let Some(raw) = raw.as_ref().filter(|_| !version.is_default) {
                        self.cache.fill(
                            Key::PolicyDoc(p.policy.arn.clone(), version.id.clone()),
                            document::render_policy(raw),
                            begun,
                        );
                    }
                }
                if !p.policy.is_aws_managed() && !p.versions.is_empty() {
                    let versions: Vec<PolicyVersion> =
                        p.versions.into_iter().map(|(v, _)| v).collect();
                    self.cache
                        .fill(Key::Versions(p.policy.name), versions, begun);
                }
            }
        }
        // Every user was read, so each group's member list is whole.
        for (group, users) in members {
            self.cache
                .fill(Key::Links(Kind::Group, group), users, begun);
        }
        Ok(())
    }

    async fn fan_out(&self, scope: BulkScope) -> Result<()> {
        match scope {
            BulkScope::Principals(kind) => {
                let names: Vec<String> = self
                    .entities(kind)
                    .await?
                    .iter()
                    .map(|e| e.name.clone())
                    .collect();
                stream::iter(names)
                    .map(|name| async move { self.prefetch_entity(kind, &name).await })
                    .buffer_unordered(FAN_OUT)
                    .try_collect::<Vec<()>>()
                    .await?;
            }
            BulkScope::ManagedPolicies | BulkScope::AwsPolicies => {
                let scope = if scope == BulkScope::AwsPolicies {
                    PolicyScope::Aws
                } else {
                    PolicyScope::Local
                };
                let all = self.policies(scope).await?;
                stream::iter(all.iter().cloned())
                    .map(|p| async move { self.policy_document(&p).await })
                    .buffer_unordered(FAN_OUT)
                    .try_collect::<Vec<_>>()
                    .await?;
            }
            BulkScope::SignIn(file) => {
                let users: Vec<String> = self
                    .entities(Kind::User)
                    .await?
                    .iter()
                    .map(|u| u.name.clone())
                    .collect();
                stream::iter(users)
                    .map(|user| async move {
                        match file {
                            SignInFile::AccessKeys => self.access_keys(&user).await,
                            SignInFile::MfaDevices => self.mfa_devices(&user).await,
                            SignInFile::LoginProfile => self.login_profile(&user).await,
                        }
                    })
                    .buffer_unordered(FAN_OUT)
                    .try_collect::<Vec<_>>()
                    .await?;
            }
        }
        Ok(())
    }

    async fn prefetch_entity(&self, kind: Kind, name: &str) -> Result<()> {
        self.entity(kind, name).await?;
        let names = self.inline_names(kind, name).await?;
        for policy in names.iter() {
            self.inline_document(kind, name, policy).await?;
        }
        self.attached(kind, name).await?;
        if kind != Kind::Role {
            self.links(kind, name).await?;
        }
        Ok(())
    }

    pub async fn entities(&self, kind: Kind) -> Result<Arc<Listing<Entity>>> {
        self.cache
            .get_or_fetch(Key::Entities(kind), || async {
                Ok(Listing::new(
                    collect_pages(|m| self.iam.list_entities(kind, m)).await?,
                ))
            })
            .await
    }

    /// The listing's entry if the listing is cached, without fetching it.
    fn listed_entity(&self, kind: Kind, name: &str) -> Option<Option<Entity>> {
        self.cache
            .peek::<Listing<Entity>>(&Key::Entities(kind))
            .map(|list| list.get(name).cloned())
    }

    pub async fn entity(&self, kind: Kind, name: &str) -> Result<Arc<CachedEntity>> {
        self.cached(Key::Entity(kind, name.into()), || async {
            self.iam
                .get_entity(kind, name)
                .await
                .map(CachedEntity::from)
        })
        .await
    }

    async fn inline_names(&self, kind: Kind, name: &str) -> Result<Arc<Vec<String>>> {
        self.cached(Key::InlineNames(kind, name.into()), || {
            collect_pages(|m| self.iam.list_inline_policies(kind, name, m))
        })
        .await
    }

    async fn inline_document(&self, kind: Kind, name: &str, policy: &str) -> Result<Arc<Vec<u8>>> {
        self.cached(Key::InlineDoc(kind, name.into(), policy.into()), || async {
            Ok(document::render_policy(
                &self.iam.get_inline_policy(kind, name, policy).await?,
            ))
        })
        .await
    }

    async fn attached(&self, kind: Kind, name: &str) -> Result<Arc<Vec<AttachedPolicy>>> {
        self.cached(Key::Attached(kind, name.into()), || {
            collect_pages(|m| self.iam.list_attached_policies(kind, name, m))
        })
        .await
    }

    async fn links(&self, kind: Kind, name: &str) -> Result<Arc<Vec<String>>> {
        self.cached(Key::Links(kind, name.into()), || {
            collect_pages(|m| async move {
                match kind {
                    Kind::Group => self.iam.get_group_members(name, m).await,
                    _ => self.iam.list_groups_for_user(name, m).await,
                }
            })
        })
        .await
    }

    async fn access_keys(&self, user: &str) -> Result<Arc<Vec<u8>>> {
        self.cached(Key::AccessKeys(user.into()), || async {
            let keys: Vec<AccessKey> =
                collect_pages(|m| self.iam.list_access_keys(user, m)).await?;
            let ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
            let used: Vec<AccessKeyLastUsed> = stream::iter(ids)
                .map(|id| async move { self.iam.get_access_key_last_used(&id).await })
                .buffered(FAN_OUT)
                .try_collect()
                .await?;
            Ok(document::render_access_keys(
                &keys.into_iter().zip(used).collect::<Vec<_>>(),
            ))
        })
        .await
    }

    /// Who a managed policy is attached to; no call for a policy IAM
    /// lists as attached nowhere.
    async fn policy_entities(
        &self,
        scope: PolicyScope,
        name: &str,
    ) -> Result<Arc<Vec<(Kind, String)>>> {
        let policy = self.policy(scope, name).await?;
        self.cached(Key::PolicyEntities(scope, name.into()), || async {
            if policy.attachment_count == 0 {
                return Ok(Vec::new());
            }
            collect_pages(|m| self.iam.list_entities_for_policy(&policy.arn, m)).await
        })
        .await
    }

    async fn saml_providers(&self) -> Result<Arc<Vec<SamlProvider>>> {
        self.cached(Key::SamlProviders, || self.iam.list_saml_providers())
            .await
    }

    /// The SAML provider named `name`, or NoSuchEntity.
    async fn saml_provider(&self, name: &str) -> Result<SamlProvider> {
        self.saml_providers()
            .await?
            .iter()
            .find(|p| p.name() == name)
            .cloned()
            .ok_or_else(|| IamError::no_such_entity(format!("SAML provider {name}")))
    }

    async fn saml_metadata(&self, arn: &str) -> Result<Arc<Vec<u8>>> {
        self.cached(Key::SamlMetadata(arn.into()), || async {
            Ok(self.iam.get_saml_provider(arn).await?.into_bytes())
        })
        .await
    }

    async fn oidc_arns(&self) -> Result<Arc<Vec<String>>> {
        self.cached(Key::OidcProviders, || self.iam.list_oidc_providers())
            .await
    }

    /// The ARN of the OIDC provider at `url` (host and path), if any.
    async fn oidc_arn(&self, url: &str) -> Result<Option<String>> {
        let suffix = format!(":oidc-provider/{url}");
        Ok(self
            .oidc_arns()
            .await?
            .iter()
            .find(|arn| arn.ends_with(&suffix))
            .cloned())
    }

    async fn oidc_provider(&self, url: &str) -> Result<Arc<OidcProvider>> {
        let arn = self
            .oidc_arn(url)
            .await?
            .ok_or_else(|| IamError::no_such_entity(format!("OIDC provider {url}")))?;
        self.cached(Key::OidcProvider(arn.clone()), || {
            self.iam.get_oidc_provider(&arn)
        })
        .await
    }

    pub async fn instance_profiles(&self) -> Result<Arc<Listing<InstanceProfile>>> {
        self.cache
            .get_or_fetch(Key::InstanceProfiles, || async {
                Ok(Listing::new(
                    collect_pages(|m| self.iam.list_instance_profiles(m)).await?,
                ))
            })
            .await
    }

    /// The instance profile with its tags (GetInstanceProfile).
    async fn instance_profile(&self, name: &str) -> Result<Arc<InstanceProfile>> {
        self.cached(Key::InstanceProfile(name.into()), || {
            self.iam.get_instance_profile(name)
        })
        .await
    }

    /// The instance profile as listed (its roles), or NoSuchEntity.
    async fn listed_instance_profile(&self, name: &str) -> Result<InstanceProfile> {
        self.instance_profiles()
            .await?
            .get(name)
            .cloned()
            .ok_or_else(|| IamError::no_such_entity(format!("instance-profiles/{name}")))
    }

    /// The instance profiles a role is in.
    async fn profiles_of_role(&self, role: &str) -> Result<Vec<String>> {
        Ok(self
            .instance_profiles()
            .await?
            .iter()
            .filter(|p| p.roles.iter().any(|r| r == role))
            .map(|p| p.name.clone())
            .collect())
    }

    async fn mfa_devices(&self, user: &str) -> Result<Arc<Vec<u8>>> {
        self.cached(Key::MfaDevices(user.into()), || async {
            let devices = collect_pages(|m| self.iam.list_mfa_devices(user, m)).await?;
            Ok(document::render_mfa_devices(&devices))
        })
        .await
    }

    async fn login_profile(&self, user: &str) -> Result<Arc<Vec<u8>>> {
        self.cached(Key::LoginProfile(user.into()), || async {
            let profile = self.iam.get_login_profile(user).await?;
            Ok(document::render_login_profile(profile.as_ref()))
        })
        .await
    }

    /// Nearly every change moves a count in the summary: one read before the
    /// last change was answered is read again.
    async fn account_summary(&self) -> Result<Arc<Vec<u8>>> {
        let fetch = || async {
            let changes = self.iam.counts().changes_answered();
            let summary = self.iam.get_account_summary().await?;
            Ok((changes, Arc::new(document::render_summary(&summary))))
        };
        let cached: Arc<(u64, Arc<Vec<u8>>)> = self.cached(Key::AccountSummary, fetch).await?;
        if cached.0 == self.iam.counts().changes_answered() {
            return Ok(cached.1.clone());
        }
        self.cache.remove(&Key::AccountSummary);
        let fresh: Arc<(u64, Arc<Vec<u8>>)> = self.cached(Key::AccountSummary, fetch).await?;
        Ok(fresh.1.clone())
    }

    /// The account's password policy; None when it has none.
    async fn password_policy(&self) -> Result<Arc<Option<PasswordPolicy>>> {
        self.cached(Key::PasswordPolicy, || self.iam.get_password_policy())
            .await
    }

    /// The account's alias, if it has one.
    async fn alias(&self) -> Result<Option<String>> {
        let aliases: Arc<Vec<String>> = self
            .cached(Key::Aliases, || self.iam.list_account_aliases())
            .await?;
        Ok(aliases.first().cloned())
    }

    /// When the entity last used each service: a job started and polled,
    /// waiting at most REPORT_WAIT (asked only when the file is read).
    async fn last_accessed(&self, kind: Kind, name: &str) -> Result<Arc<Vec<u8>>> {
        let arn = self.entity(kind, name).await?.arn.clone();
        self.cached(Key::LastAccessed(kind, name.into()), || async {
            let job = self.iam.generate_last_accessed(&arn).await?;
            let deadline = Instant::now() + REPORT_WAIT;
            loop {
                if let Some(services) = self.iam.get_last_accessed(&job).await? {
                    return Ok(document::render_last_accessed(&services));
                }
                if Instant::now() >= deadline {
                    return Err(IamError::new(
                        ErrorKind::Throttled,
                        "JobInProgress",
                        "IAM is still gathering the last-accessed data; read it again in a minute",
                    ));
                }
                tokio::time::sleep(REPORT_POLL).await;
            }
        })
        .await
    }

    /// The credential report: generated, then read once IAM has it,
    /// waiting at most REPORT_WAIT.
    async fn credential_report(&self) -> Result<Arc<Vec<u8>>> {
        self.cached(Key::CredentialReport, || async {
            let deadline = Instant::now() + REPORT_WAIT;
            loop {
                if self.iam.generate_credential_report().await? {
                    if let Some(csv) = self.iam.get_credential_report().await? {
                        return Ok(csv);
                    }
                }
                if Instant::now() >= deadline {
                    return Err(IamError::new(
                        ErrorKind::Throttled,
                        "ReportInProgress",
                        "IAM is still generating the credential report; read it again in a minute",
                    ));
                }
                tokio::time::sleep(REPORT_POLL).await;
            }
        })
        .await
    }

    pub async fn policies(&self, scope: PolicyScope) -> Result<Arc<Listing<ManagedPolicy>>> {
        self.cache
            .get_or_fetch(Key::Policies(scope), || async {
                Ok(Listing::new(
                    collect_pages(|m| self.iam.list_policies(scope, m)).await?,
                ))
            })
            .await
    }

    async fn policy(&self, scope: PolicyScope, name: &str) -> Result<ManagedPolicy> {
        self.policies(scope)
            .await?
            .get(name)
            .cloned()
            .ok_or_else(|| IamError::no_such_entity(format!("policy {name}")))
    }

    async fn policy_document(&self, policy: &ManagedPolicy) -> Result<Arc<Vec<u8>>> {
        let key = Key::PolicyDoc(policy.arn.clone(), policy.default_version_id.clone());
        self.cached(key, || async {
            Ok(document::render_policy(
                &self
                    .iam
                    .get_policy_version(&policy.arn, &policy.default_version_id)
                    .await?,
            ))
        })
        .await
    }

    /// A customer-managed policy's versions, in IAM's order.
    async fn versions(&self, policy: &str) -> Result<Arc<Vec<PolicyVersion>>> {
        let p = self.policy(PolicyScope::Local, policy).await?;
        self.cached(Key::Versions(policy.into()), || {
            collect_pages(|m| self.iam.list_policy_versions(&p.arn, m))
        })
        .await
    }

    async fn version(&self, policy: &str, id: &str) -> Result<PolicyVersion> {
        self.versions(policy)
            .await?
            .iter()
            .find(|v| v.id == id)
            .cloned()
            .ok_or_else(|| {
                IamError::no_such_entity(format!(
                    "policy-versions/{policy}/{id}{}",
                    crate::node::JSON
                ))
            })
    }

    async fn version_document(&self, policy: &str, id: &str) -> Result<Arc<Vec<u8>>> {
        let p = self.policy(PolicyScope::Local, policy).await?;
        self.cached(Key::PolicyDoc(p.arn.clone(), id.into()), || async {
            Ok(document::render_policy(
                &self.iam.get_policy_version(&p.arn, id).await?,
            ))
        })
        .await
    }

    /// Where an entity's boundary link points, if it has a boundary.
    async fn boundary_target(&self, kind: Kind, name: &str) -> Result<Option<String>> {
        let e = self.entity(kind, name).await?;
        Ok(e.permissions_boundary.as_ref().map(|b| {
            let policy = b.arn.rsplit('/').next().unwrap_or_default();
            crate::node::policy_path_from(2, policy, crate::iam::is_aws_managed_arn(&b.arn))
        }))
    }

    /// The entity's create date, from the listing when it is cached; one not
    /// in the listing is asked of IAM (it may be newer than the listing).
    async fn entity_date(&self, kind: Kind, name: &str) -> Result<SystemTime> {
        if let Some(Some(e)) = self.listed_entity(kind, name) {
            return Ok(e.create_date);
        }
        Ok(self.entity(kind, name).await?.create_date)
    }

    // ---- the filesystem view ------------------------------------------------

    /// Checks that `node` exists in IAM (its parent is known to).
    async fn check_exists(&self, node: &Node) -> Result<()> {
        let missing = || Err(IamError::no_such_entity(node.path()));
        match node {
            Node::EntityDir(kind, name) => self.entity_date(*kind, name).await.map(|_| ()),
            Node::Inline(kind, name, policy) => {
                if self.inline_names(*kind, name).await?.contains(policy) {
                    Ok(())
                } else {
                    missing()
                }
            }
            Node::Attached(kind, name, policy) => {
                if self
                    .attached(*kind, name)
                    .await?
                    .iter()
                    .any(|a| &a.name == policy)
                {
                    Ok(())
                } else {
                    missing()
                }
            }
            Node::Link(kind, name, other) => {
                if self.links(*kind, name).await?.contains(other) {
                    Ok(())
                } else {
                    missing()
                }
            }
            Node::Policy(scope, name) => self.policy(*scope, name).await.map(|_| ()),
            Node::Boundary(kind, name) => match self.boundary_target(*kind, name).await? {
                Some(_) => Ok(()),
                None => missing(),
            },
            Node::VersionsDir(policy) => self.policy(PolicyScope::Local, policy).await.map(|_| ()),
            Node::PasswordPolicy if self.password_policy().await?.is_none() => missing(),
            Node::InstanceProfileDir(p) => self.listed_instance_profile(p).await.map(|_| ()),
            Node::SamlProvider(name) => self.saml_provider(name).await.map(|_| ()),
            Node::OidcProvider(url) => match self.oidc_arn(url).await? {
                Some(_) => Ok(()),
                None => missing(),
            },
            Node::AttachmentsDir(scope, p) => self.policy(*scope, p).await.map(|_| ()),
            Node::Attachment(scope, p, kind, name) => {
                let attached = self.policy_entities(*scope, p).await?;
                if attached.iter().any(|(k, n)| k == kind && n == name) {
                    Ok(())
                } else {
                    missing()
                }
            }
            Node::InstanceProfileRole(p, r) | Node::RoleInstanceProfile(r, p) => {
                if self.listed_instance_profile(p).await?.roles.contains(r) {
                    Ok(())
                } else {
                    missing()
                }
            }
            Node::AccountAlias if self.alias().await?.is_none() => missing(),
            Node::Version(policy, id) => self.version(policy, id).await.map(|_| ()),
            _ => Ok(()),
        }
    }

    fn fresh_override(&self, node: &Node) -> Option<Arc<Vec<u8>>> {
        let (bytes, at) = self.edits.saved(node)?;
        crate::cache::note_read(at);
        Some(bytes)
    }

    /// The child `name` of `parent`, if it exists.
    pub async fn lookup(&self, parent: &Node, name: &str) -> Result<Node> {
        if let Some(file) = self.scratch.get(parent, name) {
            let dir = Box::new(parent.clone());
            return Ok(match file.link {
                Some(_) => Node::ScratchLink(dir, name.into()),
                None => Node::Scratch(dir, name.into()),
            });
        }
        let missing = || IamError::no_such_entity(format!("{}/{name}", parent.path()));
        let node = parent.child(name).ok_or_else(missing)?;
        if self.edits.has_draft(&node) {
            return Ok(node);
        }
        if self.edits.is_hidden(&node) {
            return Err(missing());
        }
        self.check_exists(&node).await?;
        Ok(node)
    }

    /// The names in a directory, in IAM's order.
    pub async fn children(&self, dir: &Node) -> Result<Vec<(String, Node)>> {
        let mut out: Vec<(String, Node)> = dir
            .static_children()
            .into_iter()
            .filter(|(_, node)| node.is_listed())
            .collect();
        let named = |names: &[String], make: &dyn Fn(&str) -> Node| -> Vec<(String, Node)> {
            names.iter().map(|n| (n.clone(), make(n))).collect()
        };
        match dir {
            Node::KindDir(kind) => {
                self.start_bulk_early(BulkScope::Principals(*kind), &Key::Entities(*kind));
                let list = self.entities(*kind).await?;
                out.extend(
                    list.iter()
                        .map(|e| (e.name.clone(), Node::EntityDir(*kind, e.name.clone()))),
                );
            }
            Node::EntityDir(kind, name) => {
                self.entity_date(*kind, name).await?;
                if *kind != Kind::Group && self.boundary_target(*kind, name).await?.is_none() {
                    out.retain(|(_, n)| !matches!(n, Node::Boundary(..)));
                }
            }
            Node::AttachmentsRoot(scope) => {
                let list = self.policies(*scope).await?;
                out.extend(
                    list.iter()
                        // AWS's own: only those attached somewhere.
                        .filter(|p| *scope == PolicyScope::Local || p.attachment_count > 0)
                        .map(|p| (p.name.clone(), Node::AttachmentsDir(*scope, p.name.clone()))),
                );
            }
            Node::AttachmentsKindDir(scope, p, kind) => {
                let attached = self.policy_entities(*scope, p).await?;
                out.extend(attached.iter().filter(|(k, _)| k == kind).map(|(k, n)| {
                    (
                        n.clone(),
                        Node::Attachment(*scope, p.clone(), *k, n.clone()),
                    )
                }));
            }
            Node::SamlDir => {
                for p in self.saml_providers().await?.iter() {
                    let node = Node::SamlProvider(p.name().into());
                    out.push((node.name(), node));
                }
            }
            Node::OidcDir => {
                for arn in self.oidc_arns().await?.iter() {
                    if let Some((_, url)) = arn.split_once(":oidc-provider/") {
                        let node = Node::OidcProvider(url.into());
                        out.push((node.name(), node));
                    }
                }
            }
            Node::InstanceProfilesDir => {
                let list = self.instance_profiles().await?;
                out.extend(
                    list.iter()
                        .map(|p| (p.name.clone(), Node::InstanceProfileDir(p.name.clone()))),
                );
            }
            Node::InstanceProfileRoles(p) => {
                let profile = self.listed_instance_profile(p).await?;
                out.extend(
                    profile
                        .roles
                        .iter()
                        .map(|r| (r.clone(), Node::InstanceProfileRole(p.clone(), r.clone()))),
                );
            }
            Node::RoleInstanceProfiles(r) => {
                for p in self.profiles_of_role(r).await? {
                    out.push((p.clone(), Node::RoleInstanceProfile(r.clone(), p)));
                }
            }
            Node::AccountDir => {
                if self.password_policy().await?.is_none() {
                    out.retain(|(_, n)| *n != Node::PasswordPolicy);
                }
                if self.alias().await?.is_none() {
                    out.retain(|(_, n)| *n != Node::AccountAlias);
                }
            }
            Node::VersionsRoot => {
                let list = self.policies(PolicyScope::Local).await?;
                out.extend(
                    list.iter()
                        .map(|p| (p.name.clone(), Node::VersionsDir(p.name.clone()))),
                );
            }
            Node::VersionsDir(policy) => {
                let versions = self.versions(policy).await?;
                out.extend(versions.iter().map(|v| {
                    let node = Node::Version(policy.clone(), v.id.clone());
                    (node.name(), node)
                }));
            }
            Node::InlineDir(kind, e) => {
                let names = self.inline_names(*kind, e).await?;
                out.extend(names.iter().map(|p| {
                    (
                        format!("{p}{}", crate::node::JSON),
                        Node::Inline(*kind, e.clone(), p.clone()),
                    )
                }));
            }
            Node::AttachedDir(kind, e) => {
                let list = self.attached(*kind, e).await?;
                out.extend(list.iter().map(|a| {
                    (
                        a.name.clone(),
                        Node::Attached(*kind, e.clone(), a.name.clone()),
                    )
                }));
            }
            Node::LinksDir(kind, e) => {
                let names = self.links(*kind, e).await?;
                out.extend(named(&names, &|n| Node::Link(*kind, e.clone(), n.into())));
            }
            Node::PoliciesDir(scope) => {
                if *scope == PolicyScope::Local {
                    self.start_bulk_early(BulkScope::ManagedPolicies, &Key::Policies(*scope));
                }
                let list = self.policies(*scope).await?;
                out.extend(list.iter().map(|p| {
                    (
                        format!("{}{}", p.name, crate::node::JSON),
                        Node::Policy(*scope, p.name.clone()),
                    )
                }));
            }
            _ => {}
        }
        out.retain(|(_, node)| !self.edits.is_hidden(node));
        let drafts = self
            .edits
            .drafts_where(|n| n.parent_and_name().is_some_and(|(p, _)| &p == dir));
        for node in drafts {
            if !out.iter().any(|(_, n)| *n == node) {
                let (_, name) = node.parent_and_name().expect("filtered above");
                out.push((name, node));
            }
        }
        for (name, is_link) in self.scratch.list(dir) {
            let d = Box::new(dir.clone());
            let node = if is_link {
                Node::ScratchLink(d, name.clone())
            } else {
                Node::Scratch(d, name.clone())
            };
            out.push((name, node));
        }
        self.names_seen(dir, &out);
        Ok(out)
    }

    /// Notes a folder's names: its ctime moves only when they change.
    fn names_seen(&self, dir: &Node, names: &[(String, Node)]) {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for (name, _) in names {
            name.hash(&mut hasher);
        }
        let hash = hasher.finish();
        let mut changes = self.dir_changes.lock();
        match changes.get_mut(dir) {
            Some((seen, at)) if *seen != hash => {
                *seen = hash;
                *at = SystemTime::now();
            }
            Some(_) => {}
            // What stat showed before this first listing stays.
            None => {
                changes.insert(dir.clone(), (hash, self.mounted_at));
            }
        }
    }

    fn dir_ctime(&self, dir: &Node) -> SystemTime {
        self.dir_changes
            .lock()
            .get(dir)
            .map_or(self.mounted_at, |(_, at)| *at)
    }

    /// A file's whole content.
    pub async fn read(&self, node: &Node) -> Result<Content> {
        if let Some(draft) = self.edits.draft(node) {
            return Ok(draft.lock().data.clone().into());
        }
        if let Some(bytes) = self.fresh_override(node) {
            return Ok(bytes.into());
        }
        match node {
            Node::Scratch(..) => Ok(self.scratch_read(node)?.into()),
            Node::EntityJson(kind, name) => Ok(self.entity(*kind, name).await?.json().into()),
            Node::Inline(kind, name, policy) => {
                Ok(self.inline_document(*kind, name, policy).await?.into())
            }
            Node::AccessKeys(user) => Ok(self.access_keys(user).await?.into()),
            Node::MfaDevices(user) => Ok(self.mfa_devices(user).await?.into()),
            Node::LastAccessed(kind, name) => Ok(self.last_accessed(*kind, name).await?.into()),
            Node::SamlProvider(name) => {
                let provider = self.saml_provider(name).await?;
                Ok(self.saml_metadata(&provider.arn).await?.into())
            }
            Node::OidcProvider(url) => {
                Ok(document::render_oidc_provider(&*self.oidc_provider(url).await?).into())
            }
            Node::InstanceProfileJson(p) => {
                Ok(document::render_instance_profile(&*self.instance_profile(p).await?).into())
            }
            Node::InstanceProfileTags(p) => {
                let profile = self.instance_profile(p).await?;
                Ok(document::render_tags(profile.tags.as_deref().unwrap_or_default()).into())
            }
            Node::LoginProfile(user) => Ok(self.login_profile(user).await?.into()),
            Node::AccountSummary => Ok(self.account_summary().await?.into()),
            Node::CredentialReport => Ok(self.credential_report().await?.into()),
            Node::PasswordPolicy => match self.password_policy().await?.as_ref() {
                Some(p) => Ok(document::render_password_policy(p).into()),
                None => Err(IamError::no_such_entity(node.path())),
            },
            Node::AccountAlias => match self.alias().await? {
                Some(alias) => Ok(format!("{alias}\n").into_bytes().into()),
                None => Err(IamError::no_such_entity(node.path())),
            },
            Node::Tags(kind, name) => Ok(self.entity(*kind, name).await?.tags().into()),
            Node::TrustPolicy(role) => {
                Ok(self.entity(Kind::Role, role).await?.trust_policy().into())
            }
            Node::Policy(scope, name) => {
                let policy = self.policy(*scope, name).await?;
                Ok(self.policy_document(&policy).await?.into())
            }
            Node::Version(policy, id) => Ok(self.version_document(policy, id).await?.into()),
            Node::RoleSettings(role) => {
                let e = self.entity(Kind::Role, role).await?;
                Ok(document::render_role_settings(
                    e.description.as_deref().unwrap_or_default(),
                    e.max_session_duration.unwrap_or(3600),
                )
                .into())
            }
            Node::Control(ControlFile::Status) => Ok(self.status().await.into()),
            Node::Control(ControlFile::Errors) => Ok(self.errors.render().into()),
            Node::Control(ControlFile::Refresh | ControlFile::Mfa) => Ok(Vec::new().into()),
            Node::Credentials(role) | Node::Env(role) => {
                let e = self.entity(Kind::Role, role).await?;
                let chained = self.identity().await.is_ok_and(|id| id.is_role_session());
                let creds = self
                    .credentials
                    .get(&self.iam, &e.arn, e.max_session_duration, chained)
                    .await?;
                let bytes = if matches!(node, Node::Env(_)) {
                    creds.env_lines()
                } else {
                    creds.process_json()
                };
                Ok(Content::Secret(Arc::new(bytes)))
            }
            _ => Err(IamError::new(
                ErrorKind::IsDirectory,
                "IsDirectory",
                format!("{} is a directory", node.path()),
            )),
        }
    }

    pub async fn readlink(&self, node: &Node) -> Result<String> {
        match node {
            Node::Attached(kind, name, policy) => {
                let list = self.attached(*kind, name).await?;
                let a = list
                    .iter()
                    .find(|a| &a.name == policy)
                    .ok_or_else(|| IamError::no_such_entity(node.path()))?;
                Ok(policy_link_target(
                    &a.name,
                    crate::iam::is_aws_managed_arn(&a.arn),
                ))
            }
            Node::Link(kind, _, other) => Ok(format!(
                "../../../{}/{other}",
                crate::node::kind_dir(kind.linked())
            )),
            Node::Attachment(_, _, kind, name) => {
                Ok(format!("../../../{}/{name}", crate::node::kind_dir(*kind)))
            }
            Node::InstanceProfileRole(_, role) => Ok(format!(
                "../../../{}/{role}",
                crate::node::kind_dir(Kind::Role)
            )),
            Node::RoleInstanceProfile(_, profile) => Ok(format!(
                "../../../{}/{profile}",
                Node::InstanceProfilesDir.name()
            )),
            Node::Boundary(kind, name) => self
                .boundary_target(*kind, name)
                .await?
                .ok_or_else(|| IamError::no_such_entity(node.path())),
            Node::DefaultVersion(policy) => {
                let versions = self.versions(policy).await?;
                let default = versions
                    .iter()
                    .find(|v| v.is_default)
                    .ok_or_else(|| IamError::no_such_entity(node.path()))?;
                Ok(Node::Version(policy.clone(), default.id.clone()).name())
            }
            Node::ScratchLink(dir, name) => self
                .scratch
                .get(dir, name)
                .and_then(|f| f.link)
                .ok_or_else(|| IamError::no_such_entity(node.path())),
            _ => Err(IamError::new(
                ErrorKind::InvalidInput,
                "NotALink",
                format!("{} is not a symbolic link", node.path()),
            )),
        }
    }

    async fn mtime(&self, node: &Node) -> Result<SystemTime> {
        Ok(match node {
            Node::EntityDir(kind, name)
            | Node::EntityJson(kind, name)
            | Node::Inline(kind, name, _)
            | Node::Attached(kind, name, _)
            | Node::Link(kind, name, _)
            | Node::Boundary(kind, name)
            | Node::LastAccessed(kind, name)
            | Node::Tags(kind, name) => self.entity_date(*kind, name).await?,
            Node::AccessKeys(n) | Node::MfaDevices(n) | Node::LoginProfile(n) => {
                self.entity_date(Kind::User, n).await?
            }
            Node::TrustPolicy(n) | Node::RoleSettings(n) | Node::Credentials(n) | Node::Env(n) => {
                self.entity_date(Kind::Role, n).await?
            }
            Node::Policy(scope, name) => self.policy(*scope, name).await?.update_date,
            Node::DefaultVersion(name) => self.policy(PolicyScope::Local, name).await?.update_date,
            Node::Version(policy, id) => self.version(policy, id).await?.create_date,
            Node::SamlProvider(name) => self.saml_provider(name).await?.create_date,
            Node::OidcProvider(url) => self.oidc_provider(url).await?.create_date,
            Node::InstanceProfileDir(p)
            | Node::InstanceProfileJson(p)
            | Node::InstanceProfileTags(p)
            | Node::InstanceProfileRole(p, _)
            | Node::RoleInstanceProfile(_, p) => self.listed_instance_profile(p).await?.create_date,
            _ => self.listing_date(node).unwrap_or(self.mounted_at),
        })
    }

    /// A listed folder's mtime: when its listing was fetched, or, while no
    /// fresh listing is cached, now (a listing read now would be as of now;
    /// the kernel keeps that stand-in for a second at most). The kernel
    /// reuses a listing it cached only while the folder's mtime stays the
    /// same, so a listing iamfs fetches again is a new listing to the kernel
    /// too. `stat` itself never fetches a listing.
    fn listing_date(&self, dir: &Node) -> Option<SystemTime> {
        let key = match dir {
            Node::KindDir(kind) => Key::Entities(*kind),
            Node::PoliciesDir(scope) => Key::Policies(*scope),
            Node::InlineDir(kind, name) => Key::InlineNames(*kind, name.clone()),
            Node::AttachedDir(kind, name) => Key::Attached(*kind, name.clone()),
            Node::LinksDir(kind, name) => Key::Links(*kind, name.clone()),
            Node::VersionsRoot => Key::Policies(PolicyScope::Local),
            Node::AttachmentsRoot(scope) | Node::AttachmentsDir(scope, _) => Key::Policies(*scope),
            Node::AttachmentsKindDir(scope, p, _) => Key::PolicyEntities(*scope, p.clone()),
            Node::SamlDir => Key::SamlProviders,
            Node::OidcDir => Key::OidcProviders,
            Node::InstanceProfilesDir
            | Node::InstanceProfileRoles(_)
            | Node::RoleInstanceProfiles(_) => Key::InstanceProfiles,
            Node::VersionsDir(name) => Key::Versions(name.clone()),
            _ => return None,
        };
        Some(self.cache.fetched_at(&key).unwrap_or_else(|| {
            crate::cache::note_unknown();
            SystemTime::now()
        }))
    }

    pub async fn attr(&self, node: &Node) -> Result<Attr> {
        self.attr_for(node, Caller::Owner).await
    }

    /// A node's attributes as `caller` may learn them: another local user
    /// is never the reason for an AssumeRole (credential files then show
    /// the size of what is cached, or 0).
    pub async fn attr_for(&self, node: &Node, caller: Caller) -> Result<Attr> {
        if let Node::Scratch(dir, name) | Node::ScratchLink(dir, name) = node {
            let file = self
                .scratch
                .get(dir, name)
                .ok_or_else(|| IamError::no_such_entity(node.path()))?;
            let size = file.link.as_ref().map_or(file.data.len(), String::len);
            return Ok(Attr {
                kind: node.file_kind(),
                perm: file.perm,
                size: size as u64,
                mtime: file.mtime,
                ctime: file.mtime,
            });
        }
        if self.edits.has_draft(node) {
            let size = self.read(node).await?.len() as u64;
            let now = SystemTime::now();
            return Ok(Attr {
                kind: FileKind::File,
                perm: node.perm(),
                size,
                mtime: now,
                ctime: now,
            });
        }
        let kind = node.file_kind();
        let size = match (kind, node) {
            (FileKind::Dir, _) => 0,
            (FileKind::Symlink, _) => self.readlink(node).await?.len() as u64,
            (FileKind::File, Node::Credentials(_) | Node::Env(_)) if caller == Caller::Other => {
                self.cached_credentials_size(node)
            }
            // Volatile files are served with direct I/O; their size is that
            // of the content now (bash's `source` reads st_size bytes).
            (FileKind::File, _) => self.read(node).await?.len() as u64,
        };
        let mtime = self.mtime(node).await?;
        let ctime = if kind == FileKind::Dir {
            self.dir_ctime(node)
        } else {
            mtime
        };
        Ok(Attr {
            kind,
            perm: node.perm(),
            size,
            mtime,
            ctime,
        })
    }

    /// The size of a role's credential file if its session is cached, else
    /// 0; never an AssumeRole.
    fn cached_credentials_size(&self, node: &Node) -> u64 {
        let (Node::Credentials(role) | Node::Env(role)) = node else {
            return 0;
        };
        let Some(entity) = self
            .cache
            .peek::<CachedEntity>(&Key::Entity(Kind::Role, role.clone()))
        else {
            return 0;
        };
        match self.credentials.peek(&entity.arn) {
            Some(creds) if matches!(node, Node::Env(_)) => creds.env_lines().len() as u64,
            Some(creds) => creds.process_json().len() as u64,
            None => 0,
        }
    }

    /// `attr`, and how long the kernel may keep it.
    pub async fn attr_with_lifetime(&self, node: &Node) -> Result<(Attr, Duration)> {
        self.attr_with_lifetime_for(node, Caller::Owner).await
    }

    pub async fn attr_with_lifetime_for(
        &self,
        node: &Node,
        caller: Caller,
    ) -> Result<(Attr, Duration)> {
        let (attr, fresh) = self.cache.with_freshness(self.attr_for(node, caller)).await;
        Ok((attr?, self.kernel_lifetime(node, fresh)))
    }

    /// `lookup` and the child's `attr`, and how long the kernel may keep them.
    pub async fn lookup_with_lifetime(
        &self,
        parent: &Node,
        name: &str,
        caller: Caller,
    ) -> Result<(Node, Attr, Duration)> {
        let (found, fresh) = self
            .cache
            .with_freshness(async {
                let node = self.lookup(parent, name).await?;
                let attr = self.attr_for(&node, caller).await?;
                Ok::<_, IamError>((node, attr))
            })
            .await;
        let (node, attr) = found?;
        let lifetime = self.kernel_lifetime(&node, fresh);
        Ok((node, attr, lifetime))
    }

    /// The kernel keeps an answer no longer than the cached values it was
    /// built from, so it never shows what iamfs itself would fetch again.
    /// Files made at read time are asked every time; editors' files and open
    /// drafts change under the kernel's own writes, so briefly.
    fn kernel_lifetime(&self, node: &Node, fresh: Duration) -> Duration {
        if node.is_volatile() {
            Duration::ZERO
        } else if matches!(node, Node::Scratch(..) | Node::ScratchLink(..))
            || self.edits.has_draft(node)
        {
            fresh.min(CHANGING_FILE_LIFETIME)
        } else {
            fresh
        }
    }

    async fn identity(&self) -> Result<&CallerIdentity> {
        if let Some(known) = self.identity.get() {
            return Ok(known);
        }
        if crate::cache::is_cached_only() {
            return Err(IamError::not_cached());
        }
        self.identity
            .get_or_try_init(|| self.iam.caller_identity())
            .await
    }

    /// A code written to `.iamfs/mfa`: a new MFA session at once.
    pub async fn start_mfa_session(&self, code: &crate::session::MfaCode) -> Result<()> {
        match &self.settings.daemon_credentials {
            Some(credentials) => credentials.start(code).await,
            None => Err(IamError::new(
                ErrorKind::InvalidInput,
                "NoMfaDevice",
                "this mount has no MFA device",
            )),
        }
    }

    async fn status(&self) -> Vec<u8> {
        let identity = self.identity().await.ok();
        let account = identity.map(|id| id.account.clone());
        let caller = identity.map(|id| id.arn.clone());
        let calls = self.api_calls().snapshot();
        let of = |service| calls.iter().filter(move |(op, _)| op.service() == service);
        let by_name = |service| {
            of(service)
                .map(|(op, n)| (op.name().to_string(), (*n).into()))
                .collect::<serde_json::Map<_, _>>()
        };
        let total: u64 = of(Service::Iam).map(|(_, n)| n).sum();
        let stats = self.cache.stats();
        let value = json!({
            "account": account,
            "caller": caller,
            "endpoint": self.settings.endpoint,
            "region": self.settings.region,
            "read_only": self.settings.read_only,
            "credentials": self.settings.daemon_credentials.as_ref().map(|c| c.status()),
            "cache": {"hits": stats.hits, "misses": stats.misses, "entries": stats.entries,
                      "ttl_seconds": self.settings.cache_ttl.as_secs_f64(),
                      "capacity": self.settings.cache_entries},
            "api_calls": by_name(Service::Iam),
            "api_calls_total": total,
            "sts_calls": by_name(Service::Sts),
            "errors": self.errors.count(),
            "kernel_requests": self.requests.snapshot().into_iter().map(|(k, v)| (k.to_string(), v.into())).collect::<serde_json::Map<_, _>>(),
            "kernel_requests_total": self.requests.total(),
        });
        document::render(&value)
    }
}

mod edits;
#[cfg(test)]
mod reftests;
mod tagging;
#[cfg(test)]
mod tests;
mod write;

pub use edits::{Draft, DraftRef, UNLINK_GRACE};
pub use write::{Created, DOCUMENT_MAX};

/// Compile-time guard: the FUSE adapter spawns these futures on the runtime.
#[cfg(test)]
#[allow(dead_code)]
fn assert_send_futures(ns: &'static Namespace, n: &'static Node) {
    fn send<T: Send>(_: T) {}
    send(ns.entities(Kind::User));
    send(ns.entity(Kind::User, "x"));
    send(ns.inline_names(Kind::User, "x"));
    send(ns.inline_document(Kind::User, "x", "y"));
    send(ns.attached(Kind::User, "x"));
    send(ns.links(Kind::User, "x"));
    send(ns.access_keys("x"));
    send(ns.policies(PolicyScope::Local));
    send(ns.fill_in_bulk(BulkScope::ManagedPolicies));
    send(ns.load_details(
        BulkScope::ManagedPolicies,
        DetailsFilter::LocalManagedPolicies,
        None,
    ));
    send(ns.fan_out(BulkScope::ManagedPolicies));
    send(ns.check_exists(n));
    send(ns.children(n));
    send(ns.read(n));
    send(ns.attr(n));
    send(ns.status());
    send(ns.policy(PolicyScope::Local, "x"));
    send(ns.entity_date(Kind::User, "x"));
    send(ns.readlink(n));
    send(ns.mtime(n));
}
