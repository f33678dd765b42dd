//! The join once the inputs no longer fit: sorted runs and a sort-merge join.
//!
//! 1. Held features are written to runs sorted by (key, side, arrival), suppliers before
//!    requestors within a key. Hidden columns: `a` = arrival number, `b` = side.
//! 2. `finish` merges them; within a key it holds the suppliers, then joins each requestor
//!    to them as it streams by. Each result is tagged with its output position (`a` =
//!    requestor arrival, or `i64::MAX` for unmatched suppliers; `b` = supplier arrival, or -1)
//!    and its port (`c`), and written to a second set of runs sorted by position.
//! 3. Those are merged and emitted, which gives the order of the in-memory hash join.

use std::cmp::Ordering;

use sluice_runtime::memory::{MergeSpace, Reservation, SpillRun, merge_bounded, write_run};
use sluice_runtime::{ActionError, Emitter, Feature, NodeContext, Value};

use super::super::keys::{Hidden, KeyPlan, SchemaCache, cmp_keys, hidden_int};
use super::{CANCEL_CHECK_EVERY, HELD_OVERHEAD, JOINED, Join, REQUESTOR, SUPPLIER};

/// Sides as written: suppliers first within a key.
const SIDE_SUPPLIER: i64 = 0;
const SIDE_REQUESTOR: i64 = 1;

/// The int in hidden column `from_end` (1 = last) of a spilled feature.
fn hidden_at(f: &Feature, from_end: usize) -> i64 {
    let v = f.values();
    match v.len().checked_sub(from_end).map(|i| &v[i]) {
        Some(Value::Int(x)) => *x,
        _ => i64::MAX,
    }
}

/// Orders pass-1 features by (key, side, arrival).
fn by_key_side_seq<'a>(keys: [&'a [String]; 2]) -> impl FnMut(&Feature, &Feature) -> Ordering + 'a {
    let mut plans: SchemaCache<[KeyPlan; 2]> = SchemaCache::default();
    move |a, b| {
        let side = |f: &Feature| usize::from(hidden_at(f, 2) == SIDE_REQUESTOR);
        let (sa, sb) = (side(a), side(b));
        let make = |s: &std::sync::Arc<sluice_runtime::Schema>| {
            [KeyPlan::new(keys[0], s), KeyPlan::new(keys[1], s)]
        };
        let pa = plans.index(a.schema(), make);
        let pb = plans.index(b.schema(), make);
        let side_index = |s: usize| if s == 1 { REQUESTOR } else { SUPPLIER };
        cmp_keys(
            plans.at(pa)[side_index(sa)].values(a.values()),
            plans.at(pb)[side_index(sb)].values(b.values()),
        )
        .then(sa.cmp(&sb))
        .then_with(|| hidden_at(a, 3).cmp(&hidden_at(b, 3)))
    }
}

/// Orders pass-2 features by output position.
fn by_position(a: &Feature, b: &Feature) -> Ordering {
    (hidden_at(a, 3), hidden_at(a, 2)).cmp(&(hidden_at(b, 3), hidden_at(b, 2)))
}

/// Writes everything held, tagged and sorted, to a run and frees the reservation.
pub(super) fn spill_held(join: &mut Join, ctx: &NodeContext) -> Result<(), ActionError> {
    ctx.check_cancelled()?;
    let [requestors, suppliers] = std::mem::take(&mut join.held);
    let mut all: Vec<Feature> = Vec::with_capacity(requestors.len() + suppliers.len());
    for (side, features, tag) in [
        (REQUESTOR, requestors, SIDE_REQUESTOR),
        (SUPPLIER, suppliers, SIDE_SUPPLIER),
    ] {
        let first = join.arrived[side] - features.len() as u64;
        for (i, f) in features.into_iter().enumerate() {
            let seq = Value::Int((first + i as u64) as i64);
            all.push(join.hidden.attach(f, [seq, Value::Int(tag), Value::Null]));
        }
    }
    if !all.is_empty() {
        let keys = [join.requestor_key.as_slice(), join.supplier_key.as_slice()];
        all.sort_by(by_key_side_seq(keys));
        join.runs.push(write_run(&ctx.spill, &ctx.node_id, all)?);
    }
    if let Some(r) = &mut join.reservation {
        r.free();
    }
    Ok(())
}

/// The pass-2 buffer: results tagged with their position, spilled when the budget is full.
struct Results<'h> {
    held: Vec<Feature>,
    runs: Vec<SpillRun>,
    reservation: Reservation,
    hidden: &'h mut Hidden<3>,
}

impl Results<'_> {
    fn push(
        &mut self,
        f: Feature,
        position: (i64, i64),
        port: usize,
        ctx: &NodeContext,
    ) -> Result<(), ActionError> {
        let tags = [
            Value::Int(position.0),
            Value::Int(position.1),
            Value::Int(port as i64),
        ];
        let f = self.hidden.attach(f, tags);
        let bytes = f.mem_size() + HELD_OVERHEAD;
        if !self.reservation.try_grow(bytes) {
            self.flush(ctx)?;
            self.reservation.grow(bytes)?;
        }
        self.held.push(f);
        Ok(())
    }

    /// Writes what is held, sorted by position, to a run and frees its bytes.
    fn flush(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        if self.held.is_empty() {
            return Ok(());
        }
        ctx.check_cancelled()?;
        self.held.sort_by(by_position);
        let held = std::mem::take(&mut self.held);
        self.runs.push(write_run(&ctx.spill, &ctx.node_id, held)?);
        self.reservation.free();
        Ok(())
    }
}

/// Joins the spilled runs (and what is still held) key by key; see the module docs.
pub(super) fn sort_merge_join(
    join: &mut Join,
    ctx: &NodeContext,
    out: &mut Emitter,
) -> Result<(), ActionError> {
    spill_held(join, ctx)?;
    let mut shape = join.shape();
    if let Some(name) = join.hidden.clash(&shape.schema) {
        return Err(ActionError::data(
            None,
            format!("the joined attribute name \"{name}\" is reserved by join"),
        ));
    }
    let keys = [join.requestor_key.as_slice(), join.supplier_key.as_slice()];
    let unmatched = [
        join.unmatched_port(REQUESTOR),
        join.unmatched_port(SUPPLIER),
    ];
    let runs = std::mem::take(&mut join.runs);
    let mut results = Results {
        held: Vec::new(),
        runs: Vec::new(),
        reservation: ctx.budget.register(&ctx.node_id),
        hidden: &mut join.hidden,
    };
    // The suppliers of the current key: (feature, arrival, matched).
    let mut group: Vec<(Feature, i64, bool)> = Vec::new();
    let mut group_bytes = ctx.budget.register(&ctx.node_id);
    let mut current: Option<(Box<[Value]>, bool)> = None;
    let mut plans: SchemaCache<[KeyPlan; 2]> = SchemaCache::default();

    // Ends a key: its unmatched suppliers go out after every requestor.
    let close = |group: &mut Vec<(Feature, i64, bool)>,
                 group_bytes: &mut Reservation,
                 results: &mut Results,
                 shape: &mut super::Shape|
     -> Result<(), ActionError> {
        for (s, seq, matched) in group.drain(..) {
            if matched {
                continue;
            }
            let f = if unmatched[SUPPLIER] == JOINED {
                shape.join(None, Some(&s))
            } else {
                s
            };
            results.push(f, (i64::MAX, seq), unmatched[SUPPLIER], ctx)?;
        }
        group_bytes.free();
        Ok(())
    };

    // Pass 1: join key by key.
    let space = MergeSpace {
        budget: &ctx.budget,
        dir: &ctx.spill,
        name: &ctx.node_id,
    };
    let merged = merge_bounded(space, runs, Vec::new(), by_key_side_seq(keys))?;
    for (i, f) in merged.enumerate() {
        if i % CANCEL_CHECK_EVERY == 0 {
            ctx.check_cancelled()?;
        }
        let (f, [seq, side, _]) = results.hidden.detach(f?)?;
        let seq = hidden_int(&seq)?;
        let side = if hidden_int(&side)? == SIDE_REQUESTOR {
            REQUESTOR
        } else {
            SUPPLIER
        };
        let plan = &plans.get(f.schema(), |s| {
            [KeyPlan::new(keys[0], s), KeyPlan::new(keys[1], s)]
        })[side];
        let values = f.values();
        let same = current
            .as_ref()
            .is_some_and(|(k, _)| plan.matches(k, values));
        if !same {
            close(&mut group, &mut group_bytes, &mut results, &mut shape)?;
            current = Some((plan.to_key(values), plan.has_null(values)));
        }
        let null_key = current.as_ref().is_some_and(|(_, null)| *null);
        if side == SUPPLIER {
            // The suppliers of one key must fit; the results make room first.
            let bytes = f.mem_size() + HELD_OVERHEAD;
            if !group_bytes.try_grow(bytes) {
                results.flush(ctx)?;
                group_bytes.grow(bytes)?;
            }
            group.push((f, seq, false));
        } else if null_key || group.is_empty() {
            let port = unmatched[REQUESTOR];
            let f = if port == JOINED {
                shape.join(Some(&f), None)
            } else {
                f
            };
            results.push(f, (seq, -1), port, ctx)?;
        } else {
            for (s, s_seq, matched) in &mut group {
                *matched = true;
                let joined = shape.join(Some(&f), Some(s));
                results.push(joined, (seq, *s_seq), JOINED, ctx)?;
            }
        }
    }
    close(&mut group, &mut group_bytes, &mut results, &mut shape)?;

    // Pass 2: emit by output position.
    ctx.check_cancelled()?;
    if !results.runs.is_empty() {
        // What is held becomes the last run, so the merge has the budget for its buffers.
        results.flush(ctx)?;
    }
    let mut tail = std::mem::take(&mut results.held);
    tail.sort_by(by_position);
    let result_runs = std::mem::take(&mut results.runs);
    // Bytes go back as results leave (an even share each), so nodes downstream can use them.
    let total = result_runs.iter().map(|r| r.rows as usize).sum::<usize>() + tail.len();
    let share = results.reservation.size() / total.max(1);
    for (i, f) in merge_bounded(space, result_runs, tail, by_position)?.enumerate() {
        if i % CANCEL_CHECK_EVERY == 0 {
            ctx.check_cancelled()?;
        }
        results.reservation.shrink(share);
        let (f, [_, _, port]) = results.hidden.detach(f?)?;
        let port = match hidden_int(&port)? {
            p @ 0..=2 => p as usize,
            p => {
                return Err(ActionError::data(
                    None,
                    format!("a spilled join result names output port {p}, which does not exist"),
                ));
            }
        };
        out.emit_to(port, f)?;
    }
    results.reservation.free();
    Ok(())
}
