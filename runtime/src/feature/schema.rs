//! Shared attribute key lists.

use std::collections::HashMap;
use std::sync::Arc;

/// An ordered list of attribute names, shared by every feature that has those attributes.
///
/// A reader makes one schema and every feature it emits points at it, so a million features
/// with ten columns carry no per-feature keys or hash tables: only a vector of values.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Schema {
    names: Vec<Arc<str>>,
    index: HashMap<Arc<str>, usize>,
}

impl Schema {
    /// Builds a schema from attribute names. A repeated name keeps its first position.
    pub fn new<I, S>(names: I) -> Arc<Schema>
    where
        I: IntoIterator<Item = S>,
        S: Into<Arc<str>>,
    {
        let mut schema = Schema::default();
        for n in names {
            schema.push(n.into());
        }
        Arc::new(schema)
    }

    /// The empty schema.
    pub fn empty() -> Arc<Schema> {
        Arc::new(Schema::default())
    }

    fn push(&mut self, name: Arc<str>) -> usize {
        if let Some(&i) = self.index.get(&name) {
            return i;
        }
        let i = self.names.len();
        self.index.insert(name.clone(), i);
        self.names.push(name);
        i
    }

    /// Position of an attribute.
    #[inline]
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The attribute names, in order.
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the schema has no attributes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// A new schema with `name` appended (or the same content if it is already there).
    pub fn with(&self, name: &str) -> Arc<Schema> {
        let mut s = Schema {
            names: self.names.clone(),
            index: self.index.clone(),
        };
        s.push(name.into());
        Arc::new(s)
    }
}
