//! Holding and ordering the features of `sort`: everything a spilling sort changes.

use std::cmp::Ordering;
use std::sync::Arc;

use rayon::slice::ParallelSliceMut;
use sluice_runtime::memory::{
    MergeIter, MergeSpace, Reservation, SpillRun, merge_bounded, write_run,
};
use sluice_runtime::{ActionError, Batch, Feature, NodeContext, Schema, Value};

use super::KeySpec;

/// Marks a key attribute the feature does not have.
const MISSING: u32 = u32::MAX;
/// What a missing key reads as.
static NULL: Value = Value::Null;
/// Keys beyond this many are compared through the flat key arrays, not inside the entries.
const INLINE_KEYS: usize = 3;

// ---------------------------------------------------------------------------------------------
// Normalized keys
//
// Comparing `Value`s in place makes a sort of millions of features wait on memory: each
// comparison follows pointers into two features' value arrays and strings. So when a feature
// arrives, each key value is also encoded as a `(tag, norm)` pair that orders like
// `Value::total_cmp`:
//
// - the tag holds the type rank (0 = null) and an EXACT bit;
// - the norm is an order-preserving `[u64; 2]`: floats (and ints, as floats, as `total_cmp`
//   compares them) in total-order bits, dates and datetimes with the sign bit flipped, strings
//   and bytes as their first 16 bytes, big-endian.
//
// Pairs that differ order their values exactly. Equal pairs mean equal values when both are
// EXACT; otherwise (long strings with a common prefix, huge ints, arrays, maps) the values are
// compared in place. The sort itself moves compact entries holding the first keys' pairs.
// ---------------------------------------------------------------------------------------------

/// An order-preserving encoding of a value (see above).
type Norm = [u64; 2];

/// The type-rank bits of a tag.
const RANK: u8 = 0x0f;
/// Set when equal norms mean equal values.
const EXACT: u8 = 0x80;
const SIGN: u64 = 1 << 63;

/// The `(tag, norm)` pair of a value.
fn normalize(value: &Value) -> (u8, Norm) {
    fn float(f: f64) -> Norm {
        let bits = f.to_bits();
        [if bits & SIGN != 0 { !bits } else { bits | SIGN }, 0]
    }
    fn prefix(bytes: &[u8], rank: u8) -> (u8, Norm) {
        let mut buf = [0u8; 16];
        let n = bytes.len().min(16);
        buf[..n].copy_from_slice(&bytes[..n]);
        // Zero padding is ambiguous only for values longer than 16 bytes or holding a zero.
        let exact = bytes.len() <= 16 && !buf[..n].contains(&0);
        let (hi, lo) = buf.split_at(8);
        let word = |b: &[u8]| b.try_into().map_or(0, u64::from_be_bytes);
        (rank | if exact { EXACT } else { 0 }, [word(hi), word(lo)])
    }
    match value {
        Value::Null => (EXACT, [0, 0]),
        Value::Bool(b) => (1 | EXACT, [u64::from(*b), 0]),
        Value::Int(i) => {
            // Exact while the int converts to a float without rounding.
            let exact = i.unsigned_abs() <= 1 << 53;
            (2 | if exact { EXACT } else { 0 }, float(*i as f64))
        }
        Value::Float(f) => (2 | EXACT, float(*f)),
        Value::String(s) => prefix(s.as_bytes(), 3),
        Value::Date(d) => (4 | EXACT, [(i64::from(*d) as u64) ^ SIGN, 0]),
        Value::DateTime(t) => (5 | EXACT, [(*t as u64) ^ SIGN, 0]),
        Value::LocalDateTime(t) => (6 | EXACT, [(*t as u64) ^ SIGN, 0]),
        Value::Bytes(b) => prefix(b, 7),
        Value::Array(_) => (8, [0, 0]),
        Value::Map(_) => (9, [0, 0]),
    }
}

/// [`Value::total_cmp`], except that an int and a float compare exactly.
///
/// `total_cmp` compares them through `int as f64`, which rounds beyond 2^53 and so is not
/// transitive (`2^53 + 1 == 2^53 as float == 2^53`, yet `2^53 < 2^53 + 1`). Here an int sits
/// exactly where its mathematical value is; zero counts as `+0.0` (after `-0.0`), as in
/// `total_cmp`, and NaNs stay at the ends.
pub(super) fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Int(i), Value::Float(f)) => int_float_cmp(*i, *f),
        (Value::Float(f), Value::Int(i)) => int_float_cmp(*i, *f).reverse(),
        _ => a.total_cmp(b),
    }
}

fn int_float_cmp(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        return if f.is_sign_negative() {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    // Rounding is monotonic and `f` is a float, so a rounded difference is a real one.
    match (i as f64).total_cmp(&f) {
        // `f` is then integral and within [-2^63, 2^63].
        Ordering::Equal if f >= 9_223_372_036_854_775_808.0 => Ordering::Less,
        Ordering::Equal => i.cmp(&(f as i64)),
        o => o,
    }
}

impl KeySpec {
    /// Compares two normalized values of this key; `in_place` compares the values themselves
    /// (both non-null) when the pairs cannot decide.
    #[inline]
    fn compare_norm(
        &self,
        (ta, na): (u8, Norm),
        (tb, nb): (u8, Norm),
        in_place: impl FnOnce() -> Ordering,
    ) -> Ordering {
        match (ta & RANK == 0, tb & RANK == 0) {
            (false, false) => {
                let mut o = (ta & RANK).cmp(&(tb & RANK)).then(na.cmp(&nb));
                if o == Ordering::Equal && ta & tb & EXACT == 0 {
                    o = in_place();
                }
                if self.descending { o.reverse() } else { o }
            }
            (true, true) => Ordering::Equal,
            (true, false) if self.nulls_first => Ordering::Less,
            (true, false) => Ordering::Greater,
            (false, true) if self.nulls_first => Ordering::Greater,
            (false, true) => Ordering::Less,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The buffer
// ---------------------------------------------------------------------------------------------

/// Holds features and orders them: accumulate with [`SortBuffer::push`], drain with
/// [`SortBuffer::finish_sorted`].
///
/// Per held feature it keeps one sort entry (the first keys' normalized pairs and the
/// feature's index), built on arrival, so `finish` sorts the entries in place: no copy and no
/// merge buffer at the moment the sort holds the most.
pub(super) struct SortBuffer {
    keys: Vec<KeySpec>,
    held: Held,
    /// The last schema seen and its key columns.
    last_schema: Option<(Arc<Schema>, Vec<u32>)>,
    reservation: Option<Reservation>,
    /// Sorted runs spilled to disk when the budget was full, oldest first.
    runs: Vec<SpillRun>,
}

/// The held features and their keys.
struct Held {
    features: Vec<Feature>,
    /// One sort entry per feature, in arrival order until sorted.
    entries: Entries,
    /// Normalized tags and values of the keys beyond the inline ones, `k - INLINE_KEYS` per
    /// feature (empty with at most `INLINE_KEYS` keys).
    rest_tags: Vec<u8>,
    rest_norms: Vec<Norm>,
    /// The key columns from a feature index on, one item per change of columns (`MISSING`
    /// when absent): what comparing values in place looks up.
    columns: Vec<(u32, Vec<u32>)>,
}

/// The sort entries, with as many inline keys as the sort has (at most `INLINE_KEYS`).
///
/// Entries start narrow: one word per key, enough while every inline key's norm has a zero
/// second word (numbers, dates, booleans, strings of up to 8 bytes). The first pair that
/// needs both words widens them all (see [`Held::push_entry`]). A sort by numbers or dates
/// so holds 16 bytes per feature for one key and 24 for two, instead of 24 and 40.
enum Entries {
    NarrowOne(Vec<Entry<u64, 1>>),
    NarrowTwo(Vec<Entry<u64, 2>>),
    NarrowThree(Vec<Entry<u64, INLINE_KEYS>>),
    One(Vec<Entry<Norm, 1>>),
    Two(Vec<Entry<Norm, 2>>),
    Three(Vec<Entry<Norm, INLINE_KEYS>>),
}

/// Runs `$body` with `$v` bound to the entries' vector, whatever their width.
macro_rules! with_entries {
    ($entries:expr, $v:ident => $body:expr) => {
        match $entries {
            Entries::NarrowOne($v) => $body,
            Entries::NarrowTwo($v) => $body,
            Entries::NarrowThree($v) => $body,
            Entries::One($v) => $body,
            Entries::Two($v) => $body,
            Entries::Three($v) => $body,
        }
    };
}

impl Entries {
    fn narrow(keys: usize) -> Entries {
        match keys {
            1 => Entries::NarrowOne(Vec::new()),
            2 => Entries::NarrowTwo(Vec::new()),
            _ => Entries::NarrowThree(Vec::new()),
        }
    }

    fn is_narrow(&self) -> bool {
        matches!(
            self,
            Entries::NarrowOne(_) | Entries::NarrowTwo(_) | Entries::NarrowThree(_)
        )
    }

    /// The same entries, each key's norm in two words.
    fn widen(self) -> Entries {
        fn wide<const N: usize>(v: Vec<Entry<u64, N>>) -> Vec<Entry<Norm, N>> {
            let mut out = Vec::with_capacity(v.capacity());
            out.extend(v.into_iter().map(Entry::widen));
            out
        }
        match self {
            Entries::NarrowOne(v) => Entries::One(wide(v)),
            Entries::NarrowTwo(v) => Entries::Two(wide(v)),
            Entries::NarrowThree(v) => Entries::Three(wide(v)),
            wide_already => wide_already,
        }
    }
}

impl Held {
    fn new(keys: usize) -> Held {
        Held {
            features: Vec::new(),
            entries: Entries::narrow(keys),
            rest_tags: Vec::new(),
            rest_norms: Vec::new(),
            columns: Vec::new(),
        }
    }

    fn reserve(&mut self, n: usize, rest: usize) {
        self.features.reserve(n);
        with_entries!(&mut self.entries, v => v.reserve(n));
        self.rest_tags.reserve(n * rest);
        self.rest_norms.reserve(n * rest);
    }

    /// Adds the entry of the next feature from its keys' pairs, widening the entries first
    /// when an inline key needs both words of its norm.
    fn push_entry(&mut self, pairs: &[(u8, Norm)]) {
        let index = self.features.len() as u32;
        if self.entries.is_narrow() && pairs.iter().take(INLINE_KEYS).any(|(_, n)| n[1] != 0) {
            let entries = std::mem::replace(&mut self.entries, Entries::narrow(0));
            self.entries = entries.widen();
        }
        with_entries!(&mut self.entries, v => v.push(Entry::new(index, pairs)));
        for &(tag, norm) in pairs.iter().skip(INLINE_KEYS) {
            self.rest_tags.push(tag);
            self.rest_norms.push(norm);
        }
    }
}

impl SortBuffer {
    pub(super) fn new(keys: Vec<KeySpec>) -> SortBuffer {
        SortBuffer {
            held: Held::new(keys.len()),
            keys,
            last_schema: None,
            reservation: None,
            runs: Vec::new(),
        }
    }

    /// Sorts what is held and writes it to disk as one sorted run, giving its memory back.
    fn spill(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        let held = std::mem::replace(&mut self.held, Held::new(self.keys.len()));
        self.last_schema = None;
        if held.features.is_empty() {
            return Ok(());
        }
        let (features, order) = self.sorted(held, ctx);
        let mut slots: Vec<Option<Feature>> = features.into_iter().map(Some).collect();
        let sorted = order
            .into_iter()
            .filter_map(|i| slots.get_mut(i as usize).and_then(Option::take));
        let run = write_run(&ctx.spill, &format!("sort-{}", ctx.node_id), sorted)?;
        ctx.spilled(run.bytes, run.rows);
        self.runs.push(run);
        if let Some(r) = &mut self.reservation {
            r.free();
        }
        Ok(())
    }

    /// Sorts the held entries and gives the features with their stable order, as indices.
    fn sorted(&self, held: Held, ctx: &NodeContext) -> (Vec<Feature>, Vec<u32>) {
        let Held {
            features,
            entries,
            rest_tags,
            rest_norms,
            columns,
        } = held;
        let rest = Rest {
            features: &features,
            tags: &rest_tags,
            norms: &rest_norms,
            columns: &columns,
        };
        let order = with_entries!(entries, v => sort_entries(v, &self.keys, &rest, ctx));
        (features, order)
    }

    /// Bytes of bookkeeping per held feature beyond its own size: its sort entry (counted
    /// wide, since narrow entries may widen), the keys beyond the inline ones and its place
    /// in the order.
    fn overhead(&self) -> usize {
        let k = self.keys.len();
        let entry = match k {
            1 => std::mem::size_of::<Entry<Norm, 1>>(),
            2 => std::mem::size_of::<Entry<Norm, 2>>(),
            _ => std::mem::size_of::<Entry<Norm, INLINE_KEYS>>(),
        };
        entry + 17 * k.saturating_sub(INLINE_KEYS) + 4
    }

    /// Takes a batch into the buffer, reserving its memory first.
    pub(super) fn push(&mut self, batch: Batch, ctx: &NodeContext) -> Result<(), ActionError> {
        if self.held.features.len() + batch.len() > u32::MAX as usize {
            return Err(ActionError::data(
                None,
                format!("sort holds at most {} features", u32::MAX),
            ));
        }
        let overhead = self.overhead();
        let bytes: usize = batch.iter().map(|f| f.mem_size() + overhead).sum();
        let reservation = self
            .reservation
            .get_or_insert_with(|| ctx.budget.register(&ctx.node_id));
        if !reservation.try_grow(bytes) {
            // The budget is full: write what is held as a sorted run and start again.
            self.spill(ctx)?;
            let reservation = self
                .reservation
                .get_or_insert_with(|| ctx.budget.register(&ctx.node_id));
            if !reservation.try_grow(bytes) {
                // Other accumulators hold the budget: this batch alone becomes a run.
                let held = std::mem::replace(&mut self.held, Held::new(self.keys.len()));
                self.push_unreserved(batch);
                self.spill(ctx)?;
                self.held = held;
                return Ok(());
            }
        }
        self.push_unreserved(batch);
        Ok(())
    }

    /// Takes a batch into the buffer (its memory already reserved).
    fn push_unreserved(&mut self, batch: Batch) {
        let k = self.keys.len();
        self.held
            .reserve(batch.len(), k.saturating_sub(INLINE_KEYS));
        let mut pairs: Vec<(u8, Norm)> = Vec::with_capacity(k);
        for feature in batch {
            let schema = feature.schema();
            let cached = matches!(&self.last_schema, Some((s, _)) if Arc::ptr_eq(s, schema));
            if !cached {
                let cols = key_columns(&self.keys, schema);
                let held = &mut self.held;
                if held.columns.last().is_none_or(|(_, c)| *c != cols) {
                    held.columns
                        .push((held.features.len() as u32, cols.clone()));
                }
                self.last_schema = Some((schema.clone(), cols));
            }
            if let Some((_, cols)) = &self.last_schema {
                pairs.clear();
                pairs.extend(cols.iter().map(|&c| normalize(key_value(&feature, c))));
                self.held.push_entry(&pairs);
            }
            self.held.features.push(feature);
        }
    }

    /// Sorts what was pushed and returns it as a draining iterator, which moves each feature
    /// out and gives its reserved bytes back; the reservation is freed when it ends.
    pub(super) fn finish_sorted(&mut self, ctx: &NodeContext) -> Result<Drain, ActionError> {
        ctx.check_cancelled()?;
        if !self.runs.is_empty() {
            // Spilled: what is held becomes the last run, so the merge has the budget for its
            // buffers. Ties go to the older run first, which is arrival order: the sort stays
            // stable.
            self.spill(ctx)?;
            self.reservation = None;
            let cmp = FeatureOrder::new(self.keys.clone());
            let cmp: FeatureCmp = Box::new(move |a, b| cmp.compare(a, b));
            let space = MergeSpace {
                budget: &ctx.budget,
                dir: &ctx.spill,
                name: &ctx.node_id,
            };
            let merged = merge_bounded(space, std::mem::take(&mut self.runs), Vec::new(), cmp)?;
            return Ok(Drain::Merge(Box::new(merged)));
        }
        let held = std::mem::replace(&mut self.held, Held::new(self.keys.len()));
        self.last_schema = None;
        let (features, order) = self.sorted(held, ctx);
        ctx.check_cancelled()?;
        let n = features.len();
        let reservation = self.reservation.take();
        let per_feature = reservation.as_ref().map_or(0, |r| r.size() / n.max(1));
        let drain = SortedDrain {
            slots: features.into_iter().map(Some).collect(),
            order: order.into_iter(),
            reservation,
            per_feature,
            until_shrink: SHRINK_EVERY,
        };
        Ok(Drain::Memory(drain))
    }
}

/// The column of each key in `schema` (`MISSING` where it has none).
fn key_columns(keys: &[KeySpec], schema: &Schema) -> Vec<u32> {
    keys.iter()
        .map(|k| {
            schema
                .index_of(&k.attribute)
                .and_then(|i| u32::try_from(i).ok())
                .unwrap_or(MISSING)
        })
        .collect()
}

/// The value of `f` in key column `column` (null for `MISSING`).
#[inline]
fn key_value(f: &Feature, column: u32) -> &Value {
    f.values().get(column as usize).unwrap_or(&NULL)
}

/// The sorted output: straight from memory, or merged from spilled runs.
pub(super) enum Drain {
    /// Nothing was spilled.
    Memory(SortedDrain),
    /// Runs on disk merged with the in-memory tail.
    Merge(Box<MergeIter<FeatureCmp>>),
}

/// The comparator of a merge.
type FeatureCmp = Box<dyn FnMut(&Feature, &Feature) -> Ordering + Send>;

impl Iterator for Drain {
    type Item = Result<Feature, ActionError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Drain::Memory(d) => d.next().map(Ok),
            Drain::Merge(m) => m.next(),
        }
    }
}

/// Compares two features under the sort keys, exactly as the in-memory sort orders them
/// (normalized pairs first, the values themselves when those cannot decide). Key columns are
/// looked up once per schema.
/// The sort's order of features by `keys` (ties: equal), for merging sorted runs.
pub(super) fn feature_order(keys: Vec<KeySpec>) -> FeatureOrder {
    FeatureOrder::new(keys)
}

pub(super) struct FeatureOrder {
    keys: Vec<KeySpec>,
    cache: std::cell::RefCell<Vec<(Arc<Schema>, Vec<u32>)>>,
}

impl FeatureOrder {
    fn new(keys: Vec<KeySpec>) -> FeatureOrder {
        FeatureOrder {
            keys,
            cache: Default::default(),
        }
    }

    fn columns(&self, schema: &Arc<Schema>) -> Vec<u32> {
        let mut cache = self.cache.borrow_mut();
        if let Some((_, cols)) = cache.iter().find(|(s, _)| Arc::ptr_eq(s, schema)) {
            return cols.clone();
        }
        let cols = key_columns(&self.keys, schema);
        if cache.len() >= 16 {
            cache.remove(0);
        }
        cache.push((schema.clone(), cols.clone()));
        cols
    }

    pub(super) fn compare(&self, a: &Feature, b: &Feature) -> Ordering {
        let (ca, cb) = (self.columns(a.schema()), self.columns(b.schema()));
        for (j, key) in self.keys.iter().enumerate() {
            let (va, vb) = (key_value(a, ca[j]), key_value(b, cb[j]));
            let o = key.compare_norm(normalize(va), normalize(vb), || compare_values(va, vb));
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

/// How an entry holds a key's norm: both words, or only the first (the second being zero).
trait Word: Copy + Send + Sync {
    const ZERO: Self;
    fn from_norm(norm: Norm) -> Self;
    fn norm(self) -> Norm;
}

impl Word for u64 {
    const ZERO: u64 = 0;
    #[inline]
    fn from_norm(norm: Norm) -> u64 {
        norm[0]
    }
    #[inline]
    fn norm(self) -> Norm {
        [self, 0]
    }
}

impl Word for Norm {
    const ZERO: Norm = [0; 2];
    #[inline]
    fn from_norm(norm: Norm) -> Norm {
        norm
    }
    #[inline]
    fn norm(self) -> Norm {
        self
    }
}

/// What the sort moves: the first `N` keys' normalized pairs and the feature's index.
#[derive(Clone, Copy)]
struct Entry<W, const N: usize> {
    norms: [W; N],
    tags: [u8; N],
    index: u32,
}

impl<W: Word, const N: usize> Entry<W, N> {
    /// The entry of feature `index` from its keys' pairs (the first `N` of them).
    #[inline]
    fn new(index: u32, pairs: &[(u8, Norm)]) -> Entry<W, N> {
        let mut e = Entry {
            norms: [W::ZERO; N],
            tags: [0; N],
            index,
        };
        for (j, &(tag, norm)) in pairs.iter().take(N).enumerate() {
            e.norms[j] = W::from_norm(norm);
            e.tags[j] = tag;
        }
        e
    }
}

impl<const N: usize> Entry<u64, N> {
    fn widen(self) -> Entry<Norm, N> {
        Entry {
            norms: self.norms.map(Word::norm),
            tags: self.tags,
            index: self.index,
        }
    }
}

/// What comparing entries reads beyond them: the keys after the inline ones, and the
/// features themselves for values the normalized pairs cannot order.
struct Rest<'a> {
    features: &'a [Feature],
    tags: &'a [u8],
    norms: &'a [Norm],
    columns: &'a [(u32, Vec<u32>)],
}

impl Rest<'_> {
    /// The value of key `j` of feature `i`.
    fn value(&self, i: usize, j: usize) -> &Value {
        let run = self
            .columns
            .partition_point(|(first, _)| *first as usize <= i);
        let column = run
            .checked_sub(1)
            .and_then(|r| self.columns.get(r))
            .and_then(|(_, cols)| cols.get(j).copied());
        match (self.features.get(i), column) {
            (Some(f), Some(c)) => key_value(f, c),
            _ => &NULL,
        }
    }
}

/// The stable order of the entries under `keys`, as feature indices. The entries are sorted
/// in place (unstable, on the shared pool) with the arrival index as the last key, which
/// makes the order total and the result that of a stable sort.
fn sort_entries<W: Word, const N: usize>(
    mut entries: Vec<Entry<W, N>>,
    keys: &[KeySpec],
    rest: &Rest<'_>,
    ctx: &NodeContext,
) -> Vec<u32> {
    let k = keys.len();
    let beyond = k.saturating_sub(N);
    let compare = |a: &Entry<W, N>, b: &Entry<W, N>| -> Ordering {
        let (ia, ib) = (a.index as usize, b.index as usize);
        for (j, key) in keys.iter().enumerate() {
            let (pa, pb) = if j < N {
                (
                    (a.tags[j], a.norms[j].norm()),
                    (b.tags[j], b.norms[j].norm()),
                )
            } else {
                let (x, y) = (ia * beyond + j - N, ib * beyond + j - N);
                ((rest.tags[x], rest.norms[x]), (rest.tags[y], rest.norms[y]))
            };
            let o = key.compare_norm(pa, pb, || {
                compare_values(rest.value(ia, j), rest.value(ib, j))
            });
            if o != Ordering::Equal {
                return o;
            }
        }
        a.index.cmp(&b.index)
    };
    // (Rayon's sorts never panic on an inconsistent order, which `Value::total_cmp` can be
    // inside arrays; see `compare_values`.)
    ctx.install(|| entries.par_sort_unstable_by(compare));
    entries.into_iter().map(|e| e.index).collect()
}

/// How many features ahead the drain fetches a slot (and half as many, the feature in it).
const DRAIN_AHEAD: usize = 16;

/// Gives bytes back every this many features while draining.
const SHRINK_EVERY: usize = 4096;

/// The sorted features, moved out one at a time.
pub(super) struct SortedDrain {
    slots: Vec<Option<Feature>>,
    order: std::vec::IntoIter<u32>,
    reservation: Option<Reservation>,
    /// The reservation's average bytes per feature, given back as features leave.
    per_feature: usize,
    /// Features to emit before the next step back.
    until_shrink: usize,
}

impl SortedDrain {
    fn release(&mut self) {
        self.slots = Vec::new();
        if let Some(mut r) = self.reservation.take() {
            r.free();
        }
    }
}

impl Iterator for SortedDrain {
    type Item = Feature;

    fn next(&mut self) -> Option<Feature> {
        loop {
            // The order is random in memory: fetch a slot well ahead, and the feature in a
            // slot fetched earlier.
            let ahead = self.order.as_slice();
            if let Some(&j) = ahead.get(DRAIN_AHEAD) {
                sluice_runtime::feature::prefetch(self.slots.as_ptr().wrapping_add(j as usize));
            }
            if let Some(Some(f)) = ahead
                .get(DRAIN_AHEAD / 2)
                .and_then(|&j| self.slots.get(j as usize))
            {
                f.prefetch();
            }
            let Some(i) = self.order.next() else {
                self.release();
                return None;
            };
            // `order` is a permutation, so every slot is taken exactly once.
            let Some(feature) = self.slots.get_mut(i as usize).and_then(Option::take) else {
                continue;
            };
            self.until_shrink -= 1;
            if self.until_shrink == 0 {
                self.until_shrink = SHRINK_EVERY;
                if let Some(r) = &mut self.reservation {
                    r.shrink(SHRINK_EVERY * self.per_feature);
                }
            }
            return Some(feature);
        }
    }
}
