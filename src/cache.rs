//! A TTL'd LRU of listings, entities and documents, with single-flight
//! fetches so that concurrent misses of one key make one IAM call.

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lru::LruCache;
use parking_lot::Mutex;

use crate::keyed::KeyedLocks;

use crate::error::Result;
use crate::iam::{Kind, PolicyScope};

/// Changes remembered for `Cache::fill`: past this many keys, those older
/// than FILL_SPAN are forgotten (a bulk read longer than that may keep what
/// a change older than that replaced, until the TTL).
const CHANGES_KEPT: usize = 4096;
const FILL_SPAN: Duration = Duration::from_secs(600);

/// What a cached value is of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// ListUsers/ListGroups/ListRoles.
    Entities(Kind),
    /// One full entity (GetUser/GetGroup/GetRole or bulk).
    Entity(Kind, String),
    InlineNames(Kind, String),
    /// Rendered inline document.
    InlineDoc(Kind, String, String),
    Attached(Kind, String),
    /// A user's groups or a group's members.
    Links(Kind, String),
    /// Rendered access-keys.json.
    AccessKeys(String),
    Policies(PolicyScope),
    /// Rendered version of a managed policy, by ARN and version.
    PolicyDoc(String, String),
    /// A customer-managed policy's versions (ListPolicyVersions), by name.
    Versions(String),
    /// The users, groups and roles a managed policy is attached to
    /// (ListEntitiesForPolicy), by scope and name.
    PolicyEntities(PolicyScope, String),
    /// Rendered last-accessed.json of an entity.
    LastAccessed(Kind, String),
    /// ListSAMLProviders; a provider's metadata by ARN.
    SamlProviders,
    SamlMetadata(String),
    /// ListOpenIDConnectProviders (ARNs); one provider by ARN.
    OidcProviders,
    OidcProvider(String),
    /// ListInstanceProfiles (with each profile's roles).
    InstanceProfiles,
    /// One instance profile with its tags (GetInstanceProfile).
    InstanceProfile(String),
    /// Rendered users/X/mfa-devices.json and login-profile.json.
    MfaDevices(String),
    LoginProfile(String),
    /// The account's summary, password policy (None: none), aliases, and
    /// credential report.
    AccountSummary,
    PasswordPolicy,
    Aliases,
    CredentialReport,
}

impl Key {
    /// The entity whose details this key holds and a bulk read
    /// (GetAccountAuthorizationDetails) fills; access keys are not in it.
    pub fn bulk_entity(&self) -> Option<(Kind, &str)> {
        match self {
            Key::Entity(k, n)
            | Key::InlineNames(k, n)
            | Key::InlineDoc(k, n, _)
            | Key::Attached(k, n)
            | Key::Links(k, n) => Some((*k, n)),
            Key::Entities(_)
            | Key::Policies(_)
            | Key::PolicyDoc(..)
            | Key::Versions(_)
            | Key::InstanceProfiles
            | Key::InstanceProfile(_)
            | Key::PolicyEntities(..)
            | Key::LastAccessed(..)
            | Key::SamlProviders
            | Key::SamlMetadata(_)
            | Key::OidcProviders
            | Key::OidcProvider(_)
            | Key::AccessKeys(_)
            | Key::MfaDevices(_)
            | Key::LoginProfile(_)
            | Key::AccountSummary
            | Key::PasswordPolicy
            | Key::Aliases
            | Key::CredentialReport => None,
        }
    }
}

type Value = Arc<dyn Any + Send + Sync>;

struct Entry {
    at: Instant,
    /// `at` on the wall clock, fixed once: directories show it as mtime.
    wall: SystemTime,
    value: Value,
}

/// What the answer being built was made from.
#[derive(Clone, Copy, Default)]
struct Sources {
    /// When the oldest cached value it read was fetched.
    oldest: Option<Instant>,
    /// It stands for something iamfs has not fetched yet.
    unknown: bool,
}

tokio::task_local! {
    static SOURCES: Cell<Sources>;
    /// Set while an answer may use only what is cached (`cached_only`).
    static CACHED_ONLY: ();
}

/// Runs `answer` with what is cached only: a miss fails at once with
/// `ErrorKind::NotCached` instead of asking IAM or waiting for a fetch, and
/// leaves no trace (no fetch started, no miss counted toward a bulk read).
pub async fn cached_only<F: Future>(answer: F) -> F::Output {
    CACHED_ONLY.scope((), answer).await
}

/// Whether the answer being built may use only what is cached.
pub fn is_cached_only() -> bool {
    CACHED_ONLY.try_with(|_| ()).is_ok()
}

fn note(update: impl FnOnce(&mut Sources)) {
    let _ = SOURCES.try_with(|cell| {
        let mut sources = cell.get();
        update(&mut sources);
        cell.set(sources);
    });
}

/// Notes that the answer being built uses a value fetched at `at`.
pub fn note_read(at: Instant) {
    note(|s| {
        if s.oldest.is_none_or(|o| at < o) {
            s.oldest = Some(at);
        }
    });
}

/// How long an answer with a stand-in for a value not fetched stays fresh.
const STAND_IN_LIFETIME: Duration = Duration::from_secs(1);

/// Notes that the answer being built has a stand-in for a value not
/// fetched: it stays fresh only briefly.
pub fn note_unknown() {
    note(|s| s.unknown = true);
}

/// A fetch of one key, shared by everyone waiting for it.
#[derive(Default)]
struct Flight {
    /// The last fetch's error: those who waited for it get it too, rather
    /// than each asking IAM again (an endpoint that times out would make
    /// every waiter wait a timeout of its own).
    failed: Mutex<Option<crate::error::IamError>>,
}

/// When keys were last changed, for `Cache::fill`.
#[derive(Default)]
struct Changes {
    at: HashMap<Key, Instant>,
    /// Pruned at this many keys, then at twice what is left: a run of saves
    /// of many names pays for pruning once per doubling.
    prune_at: usize,
}

impl Changes {
    fn note(&mut self, key: &Key, now: Instant) {
        if self.at.len() >= self.prune_at.max(CHANGES_KEPT) {
            self.at.retain(|_, at| now.duration_since(*at) < FILL_SPAN);
            self.prune_at = 2 * self.at.len();
        }
        self.at.insert(key.clone(), now);
    }
}

pub struct Cache {
    entries: Mutex<LruCache<Key, Entry>>,
    /// When each key was last written or dropped by a change (a save, a
    /// refresh), for fetches and fills begun earlier (`changed_since`);
    /// `cleared`: the last clear.
    changed: Mutex<Changes>,
    cleared: Mutex<Option<Instant>>,
    /// Fetches under way, one per key (what one brings is not kept when
    /// `changed_since` it began).
    in_flight: KeyedLocks<Key, Flight>,
    ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
}

impl Cache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity.max(1)).expect("capacity is at least 1"),
            )),
            changed: Mutex::new(Changes::default()),
            cleared: Mutex::new(None),
            in_flight: KeyedLocks::default(),
            ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lookup<T: Any + Send + Sync>(&self, key: &Key) -> Option<Arc<T>> {
        let mut entries = self.entries.lock();
        match entries.get(key) {
            Some(e) if e.at.elapsed() < self.ttl => {
                note_read(e.at);
                let value = e.value.clone().downcast::<T>().ok();
                debug_assert!(value.is_some(), "{key:?} cached as another type");
                value
            }
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    /// A fresh value, counting the hit or miss.
    pub fn get<T: Any + Send + Sync>(&self, key: &Key) -> Option<Arc<T>> {
        let found = self.lookup(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// A fresh value without touching the statistics.
    pub fn peek<T: Any + Send + Sync>(&self, key: &Key) -> Option<Arc<T>> {
        self.lookup(key)
    }

    /// Puts a value in place; a fetch of the key under way will not
    /// replace it with what it brings.
    pub fn insert<T: Any + Send + Sync>(&self, key: Key, value: T) -> Arc<T> {
        self.overtake(&key);
        self.put(key, value)
    }

    /// A save's effect on a cached value: `change` applied to it. With none
    /// cached, a fetch of the key under way may have read IAM before the
    /// save, so what it brings is not kept.
    pub fn edit<T: Any + Send + Sync>(&self, key: Key, change: impl FnOnce(&T) -> T) {
        match self.peek::<T>(&key) {
            Some(value) => {
                self.insert(key, change(&value));
            }
            None => self.remove(&key),
        }
    }

    fn overtake(&self, key: &Key) {
        self.changed.lock().note(key, Instant::now());
    }

    /// Whether `key` was written or dropped by a change (or everything by
    /// a refresh) since `begun`: a read of IAM begun then may be older.
    fn changed_since(&self, key: &Key, begun: Instant) -> bool {
        let since = |at: Option<Instant>| at.is_some_and(|at| at >= begun);
        since(*self.cleared.lock()) || since(self.changed.lock().at.get(key).copied())
    }

    /// Puts a value a bulk read begun at `begun` brought, unless a change
    /// to the key came since: the bulk read may have read IAM before it.
    pub fn fill<T: Any + Send + Sync>(&self, key: Key, value: T, begun: Instant) {
        if !self.changed_since(&key, begun) {
            self.put(key, value);
        }
    }

    fn put<T: Any + Send + Sync>(&self, key: Key, value: T) -> Arc<T> {
        let value = Arc::new(value);
        let at = Instant::now();
        note_read(at);
        let entry = Entry {
            at,
            wall: SystemTime::now(),
            value: value.clone() as Value,
        };
        self.entries.lock().put(key, entry);
        value
    }

    /// When a fresh value of `key` was fetched, on the wall clock.
    pub fn fetched_at(&self, key: &Key) -> Option<SystemTime> {
        let entries = self.entries.lock();
        let e = entries.peek(key).filter(|e| e.at.elapsed() < self.ttl)?;
        note_read(e.at);
        Some(e.wall)
    }

    /// Runs `answer`, and tells how long its result stays as fresh as the
    /// cache: until the oldest cached value it read expires (the whole TTL
    /// when it read none).
    pub async fn with_freshness<F: Future>(&self, answer: F) -> (F::Output, Duration) {
        let (out, sources) = SOURCES
            .scope(Cell::new(Sources::default()), async {
                let out = answer.await;
                (out, SOURCES.with(Cell::get))
            })
            .await;
        let age = sources.oldest.map_or(Duration::ZERO, |at| at.elapsed());
        let fresh = self.ttl.saturating_sub(age);
        if sources.unknown {
            return (out, fresh.min(STAND_IN_LIFETIME));
        }
        (out, fresh)
    }

    pub fn remove(&self, key: &Key) {
        self.overtake(key);
        self.entries.lock().pop(key);
    }

    pub fn clear(&self) {
        *self.cleared.lock() = Some(Instant::now());
        *self.changed.lock() = Changes::default(); // fills begun before are refused whole
        self.entries.lock().clear();
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.entries.lock().len(),
        }
    }

    /// The cached value, or the result of `fetch` (cached), with at most one
    /// fetch of a key running at a time.
    pub async fn get_or_fetch<T, F, Fut>(&self, key: Key, fetch: F) -> Result<Arc<T>>
    where
        T: Any + Send + Sync,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        if is_cached_only() {
            return Err(crate::error::IamError::not_cached());
        }
        let held = self.in_flight.lock(&key).await;
        if let Some(v) = self.peek(&key) {
            return Ok(v);
        }
        let flight = held.state();
        if let Some(e) = flight.failed.lock().clone() {
            return Err(e); // the fetch this caller waited for failed
        }
        let begun = Instant::now();
        let value = match fetch().await {
            Ok(value) => value,
            Err(e) => {
                *flight.failed.lock() = Some(e.clone());
                return Err(e);
            }
        };
        if self.changed_since(&key, begun) {
            // A change through the mount (or a refresh) came while IAM was
            // asked: keep what it left, answer this caller with the fetch.
            return Ok(Arc::new(value));
        }
        Ok(self.put(key, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fetch of `key` that has read IAM (`value`) and answers once `finish`
    /// is sent; `started` is answered when it has begun.
    fn fetch_held(
        cache: &Arc<Cache>,
        key: &Key,
        value: u32,
    ) -> (
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<u32>>,
    ) {
        let (started, start) = tokio::sync::oneshot::channel();
        let (finish, finished) = tokio::sync::oneshot::channel::<()>();
        let (cache, key) = (cache.clone(), key.clone());
        let fetching = tokio::spawn(async move {
            cache
                .get_or_fetch(key, || async {
                    started.send(()).unwrap();
                    finished.await.unwrap();
                    Ok(value)
                })
                .await
                .map(|v| *v)
        });
        (start, finish, fetching)
    }

    #[tokio::test]
    async fn a_fetch_under_way_when_a_save_edits_an_uncached_key_is_not_kept() {
        let cache = Arc::new(Cache::new(Duration::from_secs(60), 10));
        let key = Key::Entity(Kind::Role, "r".into());
        // Read before the save landed.
        let (start, finish, fetching) = fetch_held(&cache, &key, 1);
        start.await.unwrap();
        cache.edit(key.clone(), |_: &u32| 2); // nothing cached to edit
        finish.send(()).unwrap();
        assert_eq!(fetching.await.unwrap().unwrap(), 1);
        assert!(
            cache.peek::<u32>(&key).is_none(),
            "the older read is not kept"
        );
        let again = cache.get_or_fetch(key.clone(), || async { Ok(3u32) }).await;
        assert_eq!(*again.unwrap(), 3);
        cache.edit(key.clone(), |v: &u32| v + 1);
        assert_eq!(*cache.peek::<u32>(&key).unwrap(), 4);
    }

    #[test]
    fn a_bulk_read_keeps_no_value_a_change_replaced_while_it_ran() {
        let cache = Cache::new(Duration::from_secs(60), 10);
        let changed = Key::Entity(Kind::Role, "r".into());
        let untouched = Key::Entity(Kind::Role, "s".into());
        let begun = Instant::now();
        cache.edit(changed.clone(), |_: &u32| 2); // a save, not cached
        cache.fill(changed.clone(), 1u32, begun);
        cache.fill(untouched.clone(), 1u32, begun);
        assert!(cache.peek::<u32>(&changed).is_none());
        assert_eq!(*cache.peek::<u32>(&untouched).unwrap(), 1);
        cache.insert(changed.clone(), 2u32); // a save, cached
        cache.fill(changed.clone(), 1u32, begun);
        assert_eq!(*cache.peek::<u32>(&changed).unwrap(), 2);
        cache.fill(changed.clone(), 3u32, Instant::now());
        assert_eq!(
            *cache.peek::<u32>(&changed).unwrap(),
            3,
            "begun after the save"
        );
        cache.clear();
        cache.fill(untouched.clone(), 1u32, begun);
        assert!(
            cache.peek::<u32>(&untouched).is_none(),
            "begun before a refresh"
        );
    }

    #[tokio::test]
    async fn a_fetch_overtaken_by_a_change_does_not_replace_it() {
        let cache = Arc::new(Cache::new(Duration::from_secs(60), 10));
        let key = Key::Entities(Kind::Role);
        // What IAM held before the change.
        let (start, finish, fetching) = fetch_held(&cache, &key, 1);
        start.await.unwrap();
        cache.insert(key.clone(), 2u32); // the change, made meanwhile
        finish.send(()).unwrap();
        assert_eq!(fetching.await.unwrap().unwrap(), 1);
        assert_eq!(*cache.get::<u32>(&key).unwrap(), 2, "the change stays");

        cache.remove(&key);
        let again = cache.get_or_fetch(key.clone(), || async { Ok(3u32) }).await;
        assert_eq!(*again.unwrap(), 3);
        assert_eq!(*cache.get::<u32>(&key).unwrap(), 3, "a fetch alone is kept");
    }

    #[tokio::test]
    async fn expires_after_ttl() {
        let cache = Cache::new(Duration::from_millis(30), 10);
        cache.insert(Key::Entities(Kind::Role), 5u32);
        assert_eq!(*cache.get::<u32>(&Key::Entities(Kind::Role)).unwrap(), 5);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(cache.get::<u32>(&Key::Entities(Kind::Role)).is_none());
        assert_eq!(cache.stats().hits, 1);
        assert_eq!(cache.stats().misses, 1);
    }

    #[tokio::test]
    async fn freshness_is_the_life_left_of_the_oldest_value_read() {
        let cache = Cache::new(Duration::from_secs(60), 10);
        let (_, whole) = cache.with_freshness(async {}).await;
        assert_eq!(whole, Duration::from_secs(60));
        cache.insert(Key::Entities(Kind::Role), 1u32);
        tokio::time::sleep(Duration::from_millis(50)).await;
        cache.insert(Key::Entities(Kind::User), 2u32);
        let (_, newest) = cache
            .with_freshness(async { cache.get::<u32>(&Key::Entities(Kind::User)) })
            .await;
        let (_, both) = cache
            .with_freshness(async {
                cache.get::<u32>(&Key::Entities(Kind::User));
                cache.get::<u32>(&Key::Entities(Kind::Role))
            })
            .await;
        assert!(newest > both, "{newest:?} {both:?}");
        assert!(both <= Duration::from_millis(59_950));
        let (_, unknown) = cache
            .with_freshness(async {
                cache.get::<u32>(&Key::Entities(Kind::User));
                note_unknown();
            })
            .await;
        assert_eq!(unknown, STAND_IN_LIFETIME);
    }

    #[tokio::test]
    async fn evicts_least_recently_used() {
        let cache = Cache::new(Duration::from_secs(60), 2);
        cache.insert(Key::AccessKeys("a".into()), 1u32);
        cache.insert(Key::AccessKeys("b".into()), 2u32);
        cache.get::<u32>(&Key::AccessKeys("a".into()));
        cache.insert(Key::AccessKeys("c".into()), 3u32);
        assert!(cache.peek::<u32>(&Key::AccessKeys("a".into())).is_some());
        assert!(cache.peek::<u32>(&Key::AccessKeys("b".into())).is_none());
    }

    #[tokio::test]
    async fn concurrent_misses_fetch_once() {
        let cache = Arc::new(Cache::new(Duration::from_secs(60), 10));
        let fetches = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cache, fetches) = (cache.clone(), fetches.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_fetch(Key::Entities(Kind::User), || async {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(7u32)
                        })
                        .await
                        .map(|v| *v)
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 7);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn those_waiting_for_a_failed_fetch_get_its_error_without_asking_again() {
        use std::sync::atomic::AtomicUsize;
        let cache = Arc::new(Cache::new(Duration::from_secs(60), 10));
        let key = Key::Entities(Kind::Role);
        let asked = Arc::new(AtomicUsize::new(0));
        let fetch = |cache: Arc<Cache>, asked: Arc<AtomicUsize>| {
            let key = key.clone();
            tokio::spawn(async move {
                cache
                    .get_or_fetch(key, || async {
                        asked.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err::<u32, _>(crate::error::IamError::new(
                            crate::error::ErrorKind::Unreachable,
                            "Timeout",
                            "no answer",
                        ))
                    })
                    .await
                    .map(|v| *v)
            })
        };
        let first = fetch(cache.clone(), asked.clone());
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = fetch(cache.clone(), asked.clone());
        assert!(first.await.unwrap().is_err());
        assert_eq!(second.await.unwrap().unwrap_err().code, "Timeout");
        assert_eq!(asked.load(Ordering::SeqCst), 1, "one fetch for both");
        // Later callers ask again.
        let again = cache.get_or_fetch(key, || async { Ok(7u32) }).await;
        assert_eq!(*again.unwrap(), 7);
    }
}
