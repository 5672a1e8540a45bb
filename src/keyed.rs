//! Per-key state shared by tasks: async locks that prune themselves, and
//! values that expire.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// One async lock per key, with a state `S` that lives exactly as long as
/// someone holds or waits for the key's lock.
///
/// Invariant: a key is in the map iff a guard or a waiter holds its slot;
/// the last guard to drop removes it, so the map never outgrows the keys
/// in use.
pub struct KeyedLocks<K, S = ()> {
    slots: Mutex<HashMap<K, Arc<Slot<S>>>>,
}

struct Slot<S> {
    lock: Arc<tokio::sync::Mutex<()>>,
    state: S,
}

impl<K: Eq + Hash + Clone, S: Default> KeyedLocks<K, S> {
    /// Waits for the key's lock.
    pub async fn lock(&self, key: &K) -> KeyedGuard<'_, K, S> {
        let slot = self
            .slots
            .lock()
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    lock: Arc::default(),
                    state: S::default(),
                })
            })
            .clone();
        let held = slot.lock.clone().lock_owned().await;
        KeyedGuard {
            locks: self,
            key: key.clone(),
            slot,
            held: Some(held),
        }
    }

    /// Runs `f` on the key's state if someone holds or waits for its lock.
    pub fn with_state(&self, key: &K, f: impl FnOnce(&S)) {
        if let Some(slot) = self.slots.lock().get(key) {
            f(&slot.state);
        }
    }

    /// Runs `f` on the state of every key held or waited for.
    pub fn each_state(&self, mut f: impl FnMut(&S)) {
        for slot in self.slots.lock().values() {
            f(&slot.state);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().len()
    }
}

impl<K, S> Default for KeyedLocks<K, S> {
    fn default() -> Self {
        Self {
            slots: Mutex::default(),
        }
    }
}

/// A key's lock, held; its state is reachable through it.
pub struct KeyedGuard<'a, K: Eq + Hash, S> {
    locks: &'a KeyedLocks<K, S>,
    key: K,
    slot: Arc<Slot<S>>,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<K: Eq + Hash, S> KeyedGuard<'_, K, S> {
    pub fn state(&self) -> &S {
        &self.slot.state
    }
}

impl<K: Eq + Hash, S> Drop for KeyedGuard<'_, K, S> {
    fn drop(&mut self) {
        self.held.take();
        let mut slots = self.locks.slots.lock();
        // The map's reference and this guard's: nobody else waits. Waiters
        // take their reference under the map's lock, so none can come
        // between this count and the removal.
        if Arc::strong_count(&self.slot) == 2 {
            slots.remove(&self.key);
        }
    }
}

/// Values that count as absent once `lifetime` has passed since they were
/// put; an expired value is dropped when next looked at.
pub struct Expiring<K, V> {
    entries: HashMap<K, (V, Instant)>,
}

impl<K, V> Default for Expiring<K, V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash, V> Expiring<K, V> {
    pub fn insert(&mut self, key: K, value: V) {
        self.insert_at(key, value, Instant::now());
    }

    /// Puts a value as if put at `at`.
    pub fn insert_at(&mut self, key: K, value: V, at: Instant) {
        self.entries.insert(key, (value, at));
    }

    /// The value and when it was put, if younger than `lifetime`.
    pub fn get(&mut self, key: &K, lifetime: Duration) -> Option<(&V, Instant)> {
        let fresh = self.entries.get(key)?.1.elapsed() < lifetime;
        if !fresh {
            self.entries.remove(key);
            return None;
        }
        self.entries.get(key).map(|(v, at)| (v, *at))
    }

    /// Takes the value out, if younger than `lifetime`.
    pub fn take(&mut self, key: &K, lifetime: Duration) -> Option<(V, Instant)> {
        self.entries
            .remove(key)
            .filter(|(_, at)| at.elapsed() < lifetime)
    }

    pub fn remove(&mut self, key: &K) -> Option<(V, Instant)> {
        self.entries.remove(key)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Drops every value older than `lifetime`.
    pub fn prune(&mut self, lifetime: Duration) {
        self.entries.retain(|_, (_, at)| at.elapsed() < lifetime);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.keys()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V, Instant)> {
        self.entries.iter().map(|(k, (v, at))| (k, v, *at))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_key_is_held_by_one_task_at_a_time_and_pruned_after() {
        let locks: Arc<KeyedLocks<&str, AtomicUsize>> = Arc::default();
        let inside = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (locks, inside) = (locks.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let guard = locks.lock(&"k").await;
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                guard.state().fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(locks.len(), 0, "the last guard removes its key");
    }

    #[tokio::test]
    async fn state_lives_while_the_key_is_held() {
        let locks: KeyedLocks<u32, AtomicUsize> = KeyedLocks::default();
        let mut seen = 0;
        locks.with_state(&1, |_| seen += 1);
        assert_eq!(seen, 0, "no state for a key nobody holds");
        let guard = locks.lock(&1).await;
        locks.with_state(&1, |s| {
            s.store(7, Ordering::SeqCst);
        });
        assert_eq!(guard.state().load(Ordering::SeqCst), 7);
        let other = locks.lock(&2).await;
        let mut held = 0;
        locks.each_state(|_| held += 1);
        assert_eq!(held, 2);
        drop((guard, other));
        assert_eq!(locks.len(), 0);
    }

    #[test]
    fn values_expire() {
        let mut map = Expiring::default();
        map.insert("fresh", 1);
        map.insert_at("old", 2, Instant::now() - Duration::from_secs(10));
        let life = Duration::from_secs(5);
        assert_eq!(map.get(&"fresh", life).map(|(v, _)| *v), Some(1));
        assert!(map.get(&"old", life).is_none());
        assert!(map.remove(&"old").is_none(), "dropped when looked at");
        map.insert_at("old", 2, Instant::now() - Duration::from_secs(10));
        assert!(map.take(&"old", life).is_none());
        map.insert_at("old", 2, Instant::now() - Duration::from_secs(10));
        map.prune(life);
        assert_eq!(map.keys().count(), 1);
    }
}
