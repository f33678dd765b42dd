//! The attributes of joined features: one schema for every feature on `joined`.
//!
//! ```text
//!   requestor attributes (union over requestors, first-seen order)
//!   [requestor key attributes no requestor had, when a supplier key of that name is merged]
//!   supplier attributes  (union over suppliers, first-seen order), without the merged keys,
//!                        renamed `<prefix><name>` while the name is taken
//! ```
//!
//! A key pair whose two attribute names are equal is merged: the supplier's attribute is left
//! out, and a supplier joined without a requestor (full mode) fills the requestor's column.

use std::collections::HashSet;
use std::sync::Arc;

use sluice_runtime::{Feature, Schema, Value};

use super::super::keys::SchemaCache;
use super::JoinMode;
use sluice_runtime::shape::{self as schema, Type};

/// The static shape of `joined`, by the rule of [`Shape::new`] applied to the input shapes.
/// Supplier attributes are listed only when the requestor's shape is closed (otherwise which
/// names are taken, and so renamed, is known only at run time).
pub(super) fn joined(
    requestor: &schema::Shape,
    supplier: &schema::Shape,
    requestor_key: &[String],
    supplier_key: &[String],
    prefix: &str,
    mode: JoinMode,
) -> schema::Shape {
    let mut out = requestor.clone();
    let mut dropped: HashSet<&str> = HashSet::new();
    for (r, s) in requestor_key.iter().zip(supplier_key) {
        if r == s && dropped.insert(s.as_str()) {
            let t = match (requestor.get(r), supplier.get(s)) {
                (Some(a), Some(b)) if mode == JoinMode::Full => schema::widen(a, b),
                (Some(a), _) if requestor.has(r) => a,
                (_, Some(b)) => b,
                _ => Type::Any,
            };
            out.set(r, t);
        }
    }
    if requestor.open {
        out.open = true;
    } else {
        for (name, t) in &supplier.attributes {
            if dropped.contains(name.as_str()) {
                continue;
            }
            let mut name = name.clone();
            while out.has(&name) {
                name = format!("{prefix}{name}");
            }
            out.attributes.push((name, *t));
        }
        out.open = supplier.open;
    }
    out.unread = requestor.unread.clone().or_else(|| supplier.unread.clone());
    out.geometry = requestor.geometry.merge(supplier.geometry);
    out
}

/// The union of the attribute names seen on one input, in first-seen order.
#[derive(Default)]
pub(super) struct NameUnion {
    names: Vec<Arc<str>>,
    set: HashSet<Arc<str>>,
    seen: SchemaCache<()>,
}

impl NameUnion {
    /// Adds the names of `schema` (once per distinct schema).
    #[inline]
    pub(super) fn add(&mut self, schema: &Arc<Schema>) {
        let (names, set) = (&mut self.names, &mut self.set);
        self.seen.index(schema, |s| {
            for n in s.names() {
                if set.insert(n.clone()) {
                    names.push(n.clone());
                }
            }
        });
    }
}

/// The output schema and how to fill it.
pub(super) struct Shape {
    pub(super) schema: Arc<Schema>,
    /// Output columns filled from the requestor (the first `requestor.len()` columns).
    requestor: Vec<Arc<str>>,
    /// Supplier attribute names, filling the columns after the requestor's.
    supplier: Vec<Arc<str>>,
    /// Merged keys: (output column, supplier attribute), for features without a requestor.
    merged: Vec<(usize, Arc<str>)>,
    /// Per requestor schema: its column of each requestor output column.
    requestor_maps: SchemaCache<Vec<Option<usize>>>,
    /// Per supplier schema: its column of each supplier output column.
    supplier_maps: SchemaCache<Vec<Option<usize>>>,
}

impl Shape {
    /// The shape for the attribute unions of both inputs.
    pub(super) fn new(
        requestors: NameUnion,
        suppliers: NameUnion,
        requestor_key: &[String],
        supplier_key: &[String],
        prefix: &str,
    ) -> Shape {
        let mut requestor = requestors.names;
        let mut taken = requestors.set;
        let mut dropped: HashSet<&str> = HashSet::new();
        let mut merged_names = Vec::new();
        for (r, s) in requestor_key.iter().zip(supplier_key) {
            if r == s && dropped.insert(s.as_str()) {
                let name: Arc<str> = Arc::from(r.as_str());
                if taken.insert(name.clone()) {
                    requestor.push(name.clone());
                }
                merged_names.push(name);
            }
        }
        let mut supplier = Vec::new();
        let mut out_names: Vec<Arc<str>> = requestor.clone();
        for name in suppliers.names {
            if dropped.contains(&*name) {
                continue;
            }
            let mut out: Arc<str> = name.clone();
            while taken.contains(&out) {
                out = format!("{prefix}{out}").into();
            }
            taken.insert(out.clone());
            out_names.push(out);
            supplier.push(name);
        }
        let merged = merged_names
            .into_iter()
            .filter_map(|n| Some((requestor.iter().position(|r| *r == n)?, n)))
            .collect();
        Shape {
            schema: Schema::new(out_names),
            requestor,
            supplier,
            merged,
            requestor_maps: SchemaCache::default(),
            supplier_maps: SchemaCache::default(),
        }
    }

    /// A joined feature: the requestor's id and geometry (the supplier's when there is no
    /// requestor, or it has no geometry), attributes as in the module docs.
    pub(super) fn join(
        &mut self,
        requestor: Option<&Feature>,
        supplier: Option<&Feature>,
    ) -> Feature {
        let n = self.requestor.len();
        let mut values = vec![Value::Null; self.schema.len()];
        if let Some(r) = requestor {
            let names = &self.requestor;
            let map = self.requestor_maps.get(r.schema(), |s| {
                names.iter().map(|name| s.index_of(name)).collect()
            });
            for (slot, col) in values.iter_mut().zip(map) {
                if let Some(c) = col {
                    *slot = r.values()[*c].clone();
                }
            }
        }
        if let Some(s) = supplier {
            let names = &self.supplier;
            let map = self.supplier_maps.get(s.schema(), |sc| {
                names.iter().map(|name| sc.index_of(name)).collect()
            });
            for (slot, col) in values[n..].iter_mut().zip(map) {
                if let Some(c) = col {
                    *slot = s.values()[*c].clone();
                }
            }
            if requestor.is_none() {
                for (col, name) in &self.merged {
                    values[*col] = s.get(name).cloned().unwrap_or_default();
                }
            }
        }
        let id = requestor.or(supplier).map_or(0, Feature::id);
        let geometry = [requestor, supplier]
            .into_iter()
            .flatten()
            .find(|f| f.geometry().is_some())
            .and_then(|f| f.clone().take_geometry());
        let mut joined = Feature::new(id, self.schema.clone(), values);
        joined.set_shared_geometry(geometry);
        joined
    }
}
