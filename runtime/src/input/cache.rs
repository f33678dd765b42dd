//! A map shared by the reading threads of one source.

use std::collections::HashMap;
use std::hash::Hash;

use parking_lot::Mutex;

/// A map shared by the reading threads of one reader, so that files with the same columns
/// get the same `Arc<Schema>` (looked up once per file or per change of columns).
pub struct SharedCache<K, V> {
    map: Mutex<HashMap<K, V>>,
}

impl<K: Hash + Eq, V: Clone> SharedCache<K, V> {
    /// An empty cache.
    pub fn new() -> Self {
        SharedCache {
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The value for `key`, made by `make` the first time.
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> V {
        self.map.lock().entry(key).or_insert_with(make).clone()
    }
}

impl<K: Hash + Eq, V: Clone> Default for SharedCache<K, V> {
    fn default() -> Self {
        Self::new()
    }
}
