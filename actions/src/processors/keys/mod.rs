//! Keys over attribute values, shared by `counter`, `statistics`, `dedup` and `join`.
//!
//! - [`KeyPlan`]: the positions of a key's attributes in one schema, so a key is read, hashed
//!   and compared in place, without collecting the values into a vector per feature.
//! - [`hash_key`]: a hash consistent with [`Value::total_cmp`] equality (an int and a float of
//!   the same value hash alike; `-0.0` and `0.0` do not, as `total_cmp` tells them apart).
//! - [`KeyTable`]: an open-addressing table from key hashes to entries; the caller decides
//!   equality, so an entry need not store its key.
//! - [`SchemaCache`]: per-schema plans, found by pointer.
//! - [`Hidden`]: extra columns that ride along with features through a spill run (sequence
//!   numbers, sides, ports) and are stripped on the way back.

mod hash;
mod hidden;

use std::cmp::Ordering;
use std::sync::Arc;

use sluice_runtime::{ActionError, Schema, Value};

pub(crate) use hash::hash_key;
pub(crate) use hidden::{Hidden, hidden_int};

/// What a missing attribute reads as.
pub(crate) static NULL: Value = Value::Null;

/// Marks a key attribute the schema does not have.
const MISSING: u32 = u32::MAX;

// ---------------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------------

/// Where a key's values sit in one schema; an optional leading tag value comes first.
#[derive(Debug, Clone)]
pub(crate) struct KeyPlan {
    /// A constant first key value (dedup over all attributes tags each distinct name list).
    pub(crate) tag: Option<Value>,
    cols: Vec<u32>,
}

impl KeyPlan {
    /// The plan of the attributes `names` in `schema` (missing ones read as null).
    pub(crate) fn new<S: AsRef<str>>(names: &[S], schema: &Schema) -> KeyPlan {
        KeyPlan {
            tag: None,
            cols: names
                .iter()
                .map(|n| {
                    schema
                        .index_of(n.as_ref())
                        .and_then(|i| u32::try_from(i).ok())
                        .unwrap_or(MISSING)
                })
                .collect(),
        }
    }

    /// A plan over the given column positions, with a leading tag.
    pub(crate) fn with_columns(tag: Option<Value>, cols: Vec<usize>) -> KeyPlan {
        KeyPlan {
            tag,
            cols: cols
                .into_iter()
                .map(|c| u32::try_from(c).unwrap_or(MISSING))
                .collect(),
        }
    }

    /// The key's values in `values` (a feature's values in this plan's schema).
    #[inline]
    pub(crate) fn values<'a>(
        &'a self,
        values: &'a [Value],
    ) -> impl Iterator<Item = &'a Value> + Clone + 'a {
        self.tag.iter().chain(
            self.cols
                .iter()
                .map(move |&c| values.get(c as usize).unwrap_or(&NULL)),
        )
    }

    /// Number of key values (the tag included).
    pub(crate) fn len(&self) -> usize {
        self.cols.len() + usize::from(self.tag.is_some())
    }

    /// The hash of the key in `values`.
    #[inline]
    pub(crate) fn hash(&self, values: &[Value]) -> u64 {
        hash_key(self.values(values))
    }

    /// Whether the key in `values` equals `stored` (under `total_cmp`).
    #[inline]
    pub(crate) fn matches(&self, stored: &[Value], values: &[Value]) -> bool {
        stored.len() == self.len() && keys_equal(stored.iter(), self.values(values))
    }

    /// Whether any key value is null (or missing).
    pub(crate) fn has_null(&self, values: &[Value]) -> bool {
        self.values(values).any(Value::is_null)
    }

    /// The key's values, cloned.
    pub(crate) fn to_key(&self, values: &[Value]) -> Box<[Value]> {
        self.values(values).cloned().collect()
    }
}

/// Compares two keys value by value with `total_cmp`, then by length.
pub(crate) fn cmp_keys<'a, 'b>(
    a: impl IntoIterator<Item = &'a Value>,
    b: impl IntoIterator<Item = &'b Value>,
) -> Ordering {
    let mut a = a.into_iter();
    let mut b = b.into_iter();
    loop {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) => match x.total_cmp(y) {
                Ordering::Equal => {}
                o => return o,
            },
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
        }
    }
}

/// Whether two keys are equal under `total_cmp`.
#[inline]
pub(crate) fn keys_equal<'a, 'b>(
    a: impl IntoIterator<Item = &'a Value>,
    b: impl IntoIterator<Item = &'b Value>,
) -> bool {
    cmp_keys(a, b) == Ordering::Equal
}

/// A cache of per-schema plans, found by pointer. Past 64 schemas (only features that each
/// carry their own key list get there) a new plan replaces an old one in turn, never the one
/// returned last: an index stays valid through the next call, so a comparison can hold the
/// plans of both its features.
pub(crate) struct SchemaCache<T> {
    entries: Vec<(Arc<Schema>, T)>,
    /// The index returned last.
    last: usize,
    /// The slot the next plan replaces once the cache is full.
    next: usize,
}

impl<T> Default for SchemaCache<T> {
    fn default() -> Self {
        SchemaCache {
            entries: Vec::new(),
            last: 0,
            next: 0,
        }
    }
}

/// Most plans a [`SchemaCache`] keeps.
const MAX_CACHED: usize = 64;

impl<T> SchemaCache<T> {
    /// The position of `schema`'s plan, made with `make` when absent.
    #[inline]
    pub(crate) fn index(
        &mut self,
        schema: &Arc<Schema>,
        make: impl FnOnce(&Arc<Schema>) -> T,
    ) -> usize {
        if let Some(i) = self
            .entries
            .iter()
            .position(|(s, _)| Arc::ptr_eq(s, schema))
        {
            self.last = i;
            return i;
        }
        let entry = (schema.clone(), make(schema));
        let i = if self.entries.len() < MAX_CACHED {
            self.entries.push(entry);
            self.entries.len() - 1
        } else {
            let mut slot = self.next % MAX_CACHED;
            if slot == self.last {
                slot = (slot + 1) % MAX_CACHED;
            }
            self.next = slot + 1;
            self.entries[slot] = entry;
            slot
        };
        self.last = i;
        i
    }

    /// The plan at `index` (from [`SchemaCache::index`]).
    #[inline]
    pub(crate) fn at(&self, index: usize) -> &T {
        &self.entries[index].1
    }

    /// The plan of `schema`, made with `make` when absent.
    #[inline]
    pub(crate) fn get(&mut self, schema: &Arc<Schema>, make: impl FnOnce(&Arc<Schema>) -> T) -> &T {
        let i = self.index(schema, make);
        self.at(i)
    }
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// Marks an empty slot.
const EMPTY: u32 = u32::MAX;

/// Entries found by key hash, in an open-addressing table (linear probing) of
/// (hash, entry) slots. Entries whose full hashes collide sit in several slots, and the
/// caller's equality test tells them apart; a probe compares hashes before it touches an
/// entry. Entries keep their insertion order.
pub(crate) struct KeyTable<T> {
    slots: Vec<(u64, u32)>,
    entries: Vec<T>,
}

/// Bytes of table bookkeeping per entry (its share of the slots), for memory estimates.
pub(crate) const TABLE_ENTRY_BYTES: usize = 48;

impl<T> Default for KeyTable<T> {
    fn default() -> Self {
        KeyTable {
            slots: Vec::new(),
            entries: Vec::new(),
        }
    }
}

impl<T> KeyTable<T> {
    /// The entry with hash `hash` for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(&T) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let (h, at) = self.slots[i];
            if at == EMPTY {
                return None;
            }
            if h == hash && eq(&self.entries[at as usize]) {
                return Some(at as usize);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds an entry (the caller checked it is not there) and returns its position.
    ///
    /// Fails past `u32::MAX - 1` entries.
    pub(crate) fn insert(&mut self, hash: u64, entry: T) -> Result<usize, ActionError> {
        let at = self.entries.len();
        let Some(index) = u32::try_from(at).ok().filter(|&i| i != EMPTY) else {
            return Err(ActionError::data(
                None,
                format!("more than {} distinct keys", EMPTY - 1),
            ));
        };
        // At most half full, so probes stay short.
        if (at + 1) * 2 > self.slots.len() {
            let size = (self.slots.len() * 2).max(16);
            let old = std::mem::replace(&mut self.slots, vec![(0, EMPTY); size]);
            for (h, i) in old {
                if i != EMPTY {
                    self.place(h, i);
                }
            }
        }
        self.place(hash, index);
        self.entries.push(entry);
        Ok(at)
    }

    /// Puts (hash, index) in the first free slot from the hash's home.
    fn place(&mut self, hash: u64, index: u32) {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        while self.slots[i].1 != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = (hash, index);
    }

    /// The entry at `at`.
    #[inline]
    pub(crate) fn get_mut(&mut self, at: usize) -> &mut T {
        &mut self.entries[at]
    }

    /// Whether the table is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes the entries out, in insertion order, leaving the table empty.
    pub(crate) fn take_entries(&mut self) -> Vec<T> {
        self.slots = Vec::new();
        std::mem::take(&mut self.entries)
    }
}

/// The hash a partitioned run splits a grouping action's input by: over the attributes `by`
/// (a missing one reads as null) or, with none, over the sorted attribute names and their
/// values, consistent with how `dedup` and `statistics` tell keys apart.
pub(crate) fn feature_hasher(by: Vec<String>) -> sluice_runtime::action::FeatureHasher {
    let mut plans: Vec<(Arc<Schema>, KeyPlan, Vec<Value>)> = Vec::new();
    Box::new(move |f: &sluice_runtime::Feature| {
        let schema = f.schema();
        let at = match plans.iter().position(|(s, _, _)| Arc::ptr_eq(s, schema)) {
            Some(i) => i,
            None => {
                if plans.len() >= 16 {
                    plans.remove(0);
                }
                let (plan, names) = if by.is_empty() {
                    let names = schema.names();
                    let mut order: Vec<usize> = (0..names.len()).collect();
                    order.sort_by(|&a, &b| names[a].cmp(&names[b]));
                    let sorted: Vec<Value> =
                        order.iter().map(|&i| Value::from(&*names[i])).collect();
                    (KeyPlan::with_columns(None, order), sorted)
                } else {
                    (KeyPlan::new(&by, schema), Vec::new())
                };
                plans.push((schema.clone(), plan, names));
                plans.len() - 1
            }
        };
        let (_, plan, names) = &plans[at];
        hash_key(names.iter().chain(plan.values(f.values())))
    })
}

#[cfg(test)]
mod tests {

    /// Past its size the cache replaces plans in turn, but never the one it returned last:
    /// a comparison holding the plans of two features with new schemas keeps both valid.
    #[test]
    fn a_full_schema_cache_keeps_the_last_index_valid() {
        let mut cache: super::SchemaCache<usize> = super::SchemaCache::default();
        let schemas: Vec<_> = (0..300)
            .map(|i| sluice_runtime::Schema::new([format!("c{i}")]))
            .collect();
        for pair in schemas.windows(2) {
            let a = cache.index(&pair[0], |s| s.len() * 1000 + s.names()[0].len());
            let b = cache.index(&pair[1], |s| s.len() * 1000 + s.names()[0].len());
            assert_eq!(*cache.at(a), 1000 + pair[0].names()[0].len());
            assert_eq!(*cache.at(b), 1000 + pair[1].names()[0].len());
            assert!(std::sync::Arc::ptr_eq(&cache.entries[a].0, &pair[0]));
            assert!(std::sync::Arc::ptr_eq(&cache.entries[b].0, &pair[1]));
        }
        assert!(cache.entries.len() <= super::MAX_CACHED);
    }
    use super::*;

    #[test]
    fn plans_read_missing_attributes_as_null() {
        let schema = Schema::new(["a", "b"]);
        let plan = KeyPlan::new(&["b", "zz"], &schema);
        let values = [Value::Int(1), Value::from("x")];
        let key: Vec<&Value> = plan.values(&values).collect();
        assert_eq!(key, [&Value::from("x"), &Value::Null]);
        assert!(plan.has_null(&values));
        assert!(plan.matches(&[Value::from("x"), Value::Null], &values));
        assert!(!plan.matches(&[Value::from("x")], &values));
    }

    #[test]
    fn table_tells_colliding_hashes_apart_and_grows() {
        let mut t: KeyTable<&str> = KeyTable::default();
        t.insert(7, "a").unwrap();
        t.insert(7, "b").unwrap();
        t.insert(8, "c").unwrap();
        assert_eq!(t.find(7, |e| *e == "a"), Some(0));
        assert_eq!(t.find(7, |e| *e == "b"), Some(1));
        assert_eq!(t.find(7, |e| *e == "c"), None);
        assert_eq!(t.find(9, |_| true), None);
        assert_eq!(t.take_entries(), ["a", "b", "c"]);
        assert!(t.is_empty());
        // Past several growths (hashes sharing low bits too), every entry is still found.
        let mut t: KeyTable<u64> = KeyTable::default();
        for i in 0..1000u64 {
            t.insert(i << 40 | (i % 3), i).unwrap();
        }
        for i in 0..1000u64 {
            assert_eq!(t.find(i << 40 | (i % 3), |e| *e == i), Some(i as usize));
        }
        assert_eq!(t.find(5 << 40, |_| true), None);
    }
}
