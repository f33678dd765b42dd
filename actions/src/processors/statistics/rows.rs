//! The spill format: how a group is written to a run and read back.
//!
//! A group becomes one *partial row* (its key, the tag `-1`, then one value per aggregate
//! state) followed by one *value row* per held value of a ranked op (its key, the slot number
//! as tag, then the value), slot by slot, each slot's values ascending:
//!
//! ```text
//!   k0 … k(k-1) | t  | s0 … s(m-1)        partial row (schema `k0.., t, s0..`)
//!   k0 … k(k-1) | 0  | v                  value rows of slot 0, ascending
//!   k0 … k(k-1) | 1  | v                  value rows of slot 1, ascending
//! ```
//!
//! Runs are sorted by [`Layout::cmp`] (key, then tag, then value), so the merge of all runs
//! yields, per group, every partial row (in run order, that is arrival order), then each
//! slot's values from every run in one ascending sequence: the states combine before any
//! value is ranked, and no group's values are ever held in memory at once.

use std::cmp::Ordering;
use std::sync::Arc;

use sluice_runtime::{Feature, Schema, Value};

use super::Group;
use super::state::State;
use crate::processors::keys::cmp_keys;

/// The tag of a partial row.
const PARTIAL: i64 = -1;

/// A spilled row, read back.
pub(super) enum Row {
    /// A group's partial states.
    Partial(Group),
    /// A value of ranked slot `slot`; the feature's first values are the key.
    Value { slot: usize, row: Feature },
}

/// The schemas and key width of spilled rows.
pub(super) struct Layout {
    /// Key attributes.
    pub(super) k: usize,
    /// Partial rows: `k0..`, `t`, `s0..`.
    pub(super) partial: Arc<Schema>,
    /// Value rows: `k0..`, `t`, `v`.
    pub(super) value: Arc<Schema>,
}

impl Layout {
    /// The layout for `k` key attributes and `m` aggregates.
    pub(super) fn new(k: usize, m: usize) -> Layout {
        let keys = || (0..k).map(|i| format!("k{i}"));
        Layout {
            k,
            partial: Schema::new(
                keys()
                    .chain(["t".to_string()])
                    .chain((0..m).map(|i| format!("s{i}"))),
            ),
            value: Schema::new(keys().chain(["t".to_string(), "v".to_string()])),
        }
    }

    /// Bytes one value row of `key` costs while a spill builds it (the feature, its value
    /// array and the cloned key), beyond the value itself.
    pub(super) fn value_row_bytes(&self, key: &[Value]) -> usize {
        Feature::BASE_BYTES
            + (self.k + 2) * std::mem::size_of::<Value>()
            + key.iter().map(Value::heap_size).sum::<usize>()
    }

    /// Appends a group's rows (see the module docs), sorting its held values.
    pub(super) fn push_rows(&self, group: Group, out: &mut Vec<Feature>) {
        let Group {
            key,
            states,
            values,
            ..
        } = group;
        let mut partial = Vec::with_capacity(self.partial.len());
        partial.extend(key.iter().cloned());
        partial.push(Value::Int(PARTIAL));
        partial.extend(states.iter().map(State::to_value));
        out.push(Feature::new(0, self.partial.clone(), partial));
        for (slot, mut held) in values.into_iter().enumerate() {
            held.sort_unstable_by(Value::total_cmp);
            for v in held {
                let mut row = Vec::with_capacity(self.k + 2);
                row.extend(key.iter().cloned());
                row.push(Value::Int(slot as i64));
                row.push(v);
                out.push(Feature::new(0, self.value.clone(), row));
            }
        }
    }

    /// The run order: key, then tag (partial rows first), then value.
    pub(super) fn cmp(&self, a: &Feature, b: &Feature) -> Ordering {
        let (x, y) = (a.values(), b.values());
        let k = self.k;
        cmp_keys(&x[..k.min(x.len())], &y[..k.min(y.len())])
            .then_with(|| tag(x, k).cmp(&tag(y, k)))
            .then_with(|| match (x.get(k + 1), y.get(k + 1)) {
                (Some(v), Some(w)) if tag(x, k) != PARTIAL => v.total_cmp(w),
                _ => Ordering::Equal,
            })
    }

    /// Reads a row back, with the aggregate ops to read partial states with; `None` when it
    /// is damaged.
    pub(super) fn read(&self, f: Feature, ops: &[super::AggOp], slots: usize) -> Option<Row> {
        let k = self.k;
        let values = f.values();
        match values.get(k) {
            Some(Value::Int(PARTIAL)) if values.len() == k + 1 + ops.len() => {
                let key: Box<[Value]> = values[..k].into();
                let states = ops
                    .iter()
                    .zip(&values[k + 1..])
                    .map(|(&op, v)| State::from_value(op, v.clone()))
                    .collect::<Option<Vec<State>>>()?;
                Some(Row::Partial(Group {
                    key,
                    states,
                    values: vec![Vec::new(); slots],
                    row_bytes: 0,
                }))
            }
            Some(Value::Int(t)) if values.len() == k + 2 => {
                let slot = usize::try_from(*t).ok().filter(|&s| s < slots)?;
                Some(Row::Value { slot, row: f })
            }
            _ => None,
        }
    }
}

fn tag(values: &[Value], k: usize) -> i64 {
    match values.get(k) {
        Some(Value::Int(t)) => *t,
        _ => PARTIAL,
    }
}
