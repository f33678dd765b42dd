//! Dedup once the keys no longer fit: markers, held features, and the two merges of
//! `finish` (see the module docs of `dedup`).
//!
//! Every feature written here carries two hidden columns: its arrival number (`SEQ`) and a
//! state (`STATE`): pending, marker, winner or duplicate.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_runtime::memory::{MergeSpace, Reservation, SpillRun, merge_bounded, write_run};
use sluice_runtime::{ActionError, Emitter, Feature, NodeContext, Schema, Value};

use super::super::keys::{Hidden, KeyPlan, SchemaCache, cmp_keys, hidden_int};
use super::{Keys, SEQ, STATE, Seen};

/// A held feature whose fate is not known yet.
const PENDING: i64 = 0;
/// A key passed before spilling began (not a feature).
const MARKER: i64 = 1;
/// The first feature of its key.
const WINNER: i64 = 2;
/// A later feature of its key.
const DUPLICATE: i64 = 3;

/// Bytes of bookkeeping per held feature beyond its own size.
const HELD_OVERHEAD: usize = 64;
/// How often (in features) long loops check for cancellation.
const CANCEL_CHECK_EVERY: usize = 4096;

/// Held features and the runs written so far.
#[derive(Default)]
pub(super) struct Spilling {
    held: Vec<Feature>,
    runs: Vec<SpillRun>,
    reservation: Option<Reservation>,
}

/// The arrival number in a spilled feature's hidden column (the next to last).
fn seq_of(f: &Feature) -> i64 {
    let v = f.values();
    match v.len().checked_sub(2).map(|i| &v[i]) {
        Some(Value::Int(s)) => *s,
        _ => i64::MAX,
    }
}

/// Orders spilled features by (key, arrival).
fn by_key_then_seq(keys: &Keys) -> impl FnMut(&Feature, &Feature) -> std::cmp::Ordering + '_ {
    let mut plans: SchemaCache<KeyPlan> = SchemaCache::default();
    move |a, b| {
        let pa = plans.index(a.schema(), |s| keys.plan(s, 2));
        let pb = plans.index(b.schema(), |s| keys.plan(s, 2));
        cmp_keys(
            plans.at(pa).values(a.values()),
            plans.at(pb).values(b.values()),
        )
        .then_with(|| seq_of(a).cmp(&seq_of(b)))
    }
}

/// Where merges of this node reserve and write.
fn space(ctx: &NodeContext) -> MergeSpace<'_> {
    MergeSpace {
        budget: &ctx.budget,
        dir: &ctx.spill,
        name: &ctx.node_id,
    }
}

/// Holds `feature` in `held` (reserving its bytes), first writing what is held to a run
/// sorted by `cmp` when the budget is full.
fn push_or_flush(
    held: &mut Vec<Feature>,
    runs: &mut Vec<SpillRun>,
    reservation: &mut Reservation,
    feature: Feature,
    cmp: impl FnMut(&Feature, &Feature) -> std::cmp::Ordering,
    ctx: &NodeContext,
) -> Result<(), ActionError> {
    let bytes = feature.mem_size() + HELD_OVERHEAD;
    if !reservation.try_grow(bytes) {
        flush(held, runs, reservation, cmp, ctx)?;
        reservation.grow(bytes)?;
    }
    held.push(feature);
    Ok(())
}

/// Sorts what is held by `cmp`, writes it to a run and frees its bytes.
fn flush(
    held: &mut Vec<Feature>,
    runs: &mut Vec<SpillRun>,
    reservation: &mut Reservation,
    cmp: impl FnMut(&Feature, &Feature) -> std::cmp::Ordering,
    ctx: &NodeContext,
) -> Result<(), ActionError> {
    if held.is_empty() {
        return Ok(());
    }
    ctx.check_cancelled()?;
    held.sort_by(cmp);
    runs.push(write_run(&ctx.spill, &ctx.node_id, std::mem::take(held))?);
    reservation.free();
    Ok(())
}

impl Spilling {
    /// Writes the keys passed so far as markers, sorted by key, to a run.
    pub(super) fn write_markers(
        &mut self,
        mut seen: Vec<Seen>,
        keys: &Keys,
        ctx: &NodeContext,
    ) -> Result<(), ActionError> {
        if seen.is_empty() {
            return Ok(());
        }
        seen.sort_by(|a, b| cmp_keys(a.key.iter(), b.key.iter()));
        // Without `by`, a key starts with its name-list tag, which the marker's names give.
        let skip = usize::from(keys.by.is_empty());
        let mut schemas: HashMap<Vec<Arc<str>>, Arc<Schema>> = HashMap::new();
        let markers: Vec<Feature> = seen
            .into_iter()
            .map(|s| {
                let names = keys.marker_names(&s.key);
                let schema = schemas
                    .entry(names)
                    .or_insert_with_key(|n| {
                        Schema::new(n.iter().cloned().chain([SEQ.into(), STATE.into()]))
                    })
                    .clone();
                let mut values: Vec<Value> = s.key.into_vec().into_iter().skip(skip).collect();
                values.push(Value::Int(s.seq as i64));
                values.push(Value::Int(MARKER));
                Feature::new(0, schema, values)
            })
            .collect();
        self.runs
            .push(write_run(&ctx.spill, &ctx.node_id, markers)?);
        Ok(())
    }

    /// Holds a feature (arrival number `seq`) until `finish`.
    pub(super) fn hold(
        &mut self,
        feature: Feature,
        seq: u64,
        keys: &Keys,
        hidden: &mut Hidden<2>,
        ctx: &NodeContext,
    ) -> Result<(), ActionError> {
        let feature = hidden.attach(feature, [Value::Int(seq as i64), Value::Int(PENDING)]);
        let reservation = self
            .reservation
            .get_or_insert_with(|| ctx.budget.register(&ctx.node_id));
        push_or_flush(
            &mut self.held,
            &mut self.runs,
            reservation,
            feature,
            by_key_then_seq(keys),
            ctx,
        )
    }

    /// Decides every held feature and emits them in arrival order.
    pub(super) fn finish(
        mut self,
        keys: &Keys,
        hidden: &mut Hidden<2>,
        ctx: &NodeContext,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        let mut reservation = self
            .reservation
            .take()
            .unwrap_or_else(|| ctx.budget.register(&ctx.node_id));
        // Everything goes to runs first, so the decided features have the whole budget.
        flush(
            &mut self.held,
            &mut self.runs,
            &mut reservation,
            by_key_then_seq(keys),
            ctx,
        )?;

        // Pass 1: decide, in (key, arrival) order.
        let by_seq = |a: &Feature, b: &Feature| seq_of(a).cmp(&seq_of(b));
        let mut decided: Vec<Feature> = Vec::new();
        let mut decided_runs: Vec<SpillRun> = Vec::new();
        let mut plans: SchemaCache<KeyPlan> = SchemaCache::default();
        let mut current: Option<Box<[Value]>> = None;
        let mut passed = false;
        let merged = merge_bounded(
            space(ctx),
            std::mem::take(&mut self.runs),
            Vec::new(),
            by_key_then_seq(keys),
        )?;
        for (i, f) in merged.enumerate() {
            if i % CANCEL_CHECK_EVERY == 0 {
                ctx.check_cancelled()?;
            }
            let mut f = f?;
            let plan = plans.get(f.schema(), |s| keys.plan(s, 2));
            let values = f.values();
            if !current.as_ref().is_some_and(|k| plan.matches(k, values)) {
                current = Some(plan.to_key(values));
                passed = false;
            }
            let n = values.len();
            let state = values.last().map(hidden_int).transpose()?;
            if state == Some(MARKER) {
                passed = true;
                continue;
            }
            let state = if passed { DUPLICATE } else { WINNER };
            passed = true;
            f.values_mut()[n - 1] = Value::Int(state);
            push_or_flush(
                &mut decided,
                &mut decided_runs,
                &mut reservation,
                f,
                by_seq,
                ctx,
            )?;
        }

        // Pass 2: emit in arrival order.
        ctx.check_cancelled()?;
        if !decided_runs.is_empty() {
            // What is held becomes the last run, so the merge has the budget for its buffers.
            flush(
                &mut decided,
                &mut decided_runs,
                &mut reservation,
                by_seq,
                ctx,
            )?;
        }
        decided.sort_by(by_seq);
        // Bytes go back as features leave (an even share each), so nodes downstream can use
        // them.
        let total = decided_runs.iter().map(|r| r.rows as usize).sum::<usize>() + decided.len();
        let share = reservation.size() / total.max(1);
        for (i, f) in merge_bounded(space(ctx), decided_runs, decided, by_seq)?.enumerate() {
            if i % CANCEL_CHECK_EVERY == 0 {
                ctx.check_cancelled()?;
            }
            reservation.shrink(share);
            let (f, [_, state]) = hidden.detach(f?)?;
            let port = if hidden_int(&state)? == WINNER { 0 } else { 1 };
            out.emit_to(port, f)?;
        }
        reservation.free();
        Ok(())
    }
}
