//! A process-wide, thread-safe memo for f64 tables keyed by small integers.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

/// A lazily filled map from key to shared table.
pub(crate) type TableCache<K, V> = RwLock<HashMap<K, Arc<V>>>;

/// Returns the cached table for `key`, building it with `build` on first use.
///
/// Two threads may both build a missing table; the first stored wins and both get it.
pub(crate) fn cached<K: Hash + Eq + Copy, V>(
    cache: &TableCache<K, V>,
    key: K,
    build: impl FnOnce() -> V,
) -> Arc<V> {
    if let Some(v) = cache.read().ok().and_then(|m| m.get(&key).cloned()) {
        return v;
    }
    let table = Arc::new(build());
    let mut map = cache
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(key).or_insert(table).clone()
}
