//! Merging runs: [`merge`] (every run open at once) and [`merge_bounded`] (a multi-level merge
//! within the budget).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use super::SpillRun;
use super::codec::POLICY;
use super::reader::SpillReader;
use super::writer::RunWriter;
use crate::error::ActionError;
use crate::feature::arrow::ColumnKind;
use crate::feature::{Feature, Schema};
use crate::memory::{MemoryBudget, Reservation, SpillDir};

/// K-way merge of sorted runs and one in-memory sorted tail, by `cmp`, in one pass.
///
/// Ties go to the earlier source: run 0, then run 1, …, then the tail. So when the runs are
/// consecutive slices of the input, each stably sorted, and the tail is the last slice, the
/// output is the stable sort of the whole input. Each run is read one page at a time and
/// deleted as soon as it is exhausted. Opening a run or reading its first feature can fail
/// here; later failures come out of the iterator (which then stops).
///
/// Every run is open at once, and nothing is reserved: accumulators use [`merge_bounded`],
/// which merges within the budget.
pub fn merge<F>(
    runs: Vec<SpillRun>,
    tail: Vec<Feature>,
    cmp: F,
) -> Result<MergeIter<F>, ActionError>
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    // Readers share schemas with each other and with the tail, so equal key lists come out
    // as one Arc (processors downstream cache by pointer).
    let mut known: Vec<Arc<Schema>> = Vec::new();
    for f in &tail {
        if !known.iter().any(|k| Arc::ptr_eq(k, f.schema()))
            && !known.iter().any(|k| k == f.schema())
        {
            known.push(f.schema().clone());
        }
    }
    let mut sources = Vec::with_capacity(runs.len() + 1);
    for run in runs {
        let reader = SpillReader::open(&run.path, &mut known)?;
        sources.push(MergeSource::Run(Some(Box::new((reader, run)))));
    }
    sources.push(MergeSource::Tail(tail.into_iter()));
    let mut it = MergeIter {
        heads: Vec::with_capacity(sources.len()),
        sources,
        heap: Vec::new(),
        cmp,
        failed: false,
        reservation: None,
    };
    for i in 0..it.sources.len() {
        let head = it.sources[i].next()?;
        if head.is_some() {
            it.heap.push(i);
        }
        it.heads.push(head);
    }
    for i in (0..it.heap.len() / 2).rev() {
        sift_down(&mut it.heap, &it.heads, &mut it.cmp, i);
    }
    Ok(it)
}

/// Where a bounded merge gets its memory and writes its intermediate runs.
#[derive(Clone, Copy, Debug)]
pub struct MergeSpace<'a> {
    /// The run's budget; the merge reserves its read and write buffers from it.
    pub budget: &'a MemoryBudget,
    /// Where intermediate runs go.
    pub dir: &'a SpillDir,
    /// The consumer (node id) the reservation and the files are named after.
    pub name: &'a str,
}

/// [`merge`] within the budget: a multi-level merge whose fan-in is what the budget allows.
///
/// Each open run costs [`SpillRun::open_cost`]; writing a merged run costs
/// [`SpillRun::write_cost`]. When the budget cannot hold every run open at once, groups of
/// consecutive runs are first merged into bigger runs (as few as it takes to bring the count
/// down to the fan-in; each pass reads every run at most once), so ties still go to the
/// earlier run and a stable sort stays stable. The final merge takes at most half of what
/// is free (the consumer keeps the rest for what it holds while merging) and holds its
/// reservation until the iterator is exhausted or dropped; the intermediate ones give theirs
/// back when done.
///
/// The tail is the caller's: it is held (and reserved, or not) by the caller, and joins only
/// the final merge. The fan-in is never below 2, so a budget too small even for that is
/// exceeded by at most two open runs and one writer (the run's minimum limit covers that).
pub fn merge_bounded<F>(
    space: MergeSpace<'_>,
    mut runs: Vec<SpillRun>,
    tail: Vec<Feature>,
    mut cmp: F,
) -> Result<MergeIter<F>, ActionError>
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    let mut reservation = space.budget.register(space.name);
    loop {
        let available = space.budget.available();
        let all: usize = runs.iter().map(SpillRun::open_cost).sum();
        // The final merge leaves half of what is free to the consumer, which goes on holding
        // (and spilling) what it makes of the merged features.
        let final_fan_in = fan_in(&runs, available / 2, false);
        if final_fan_in >= runs.len() {
            // Best effort below a fan-in of 2: the minimum limit makes room for that.
            let _ = reservation.try_grow(all.min(available / 2));
            break;
        }
        // An intermediate pass has the consumer's half too, less a writer.
        let group = fan_in(&runs, available, true);
        let per_run = runs.iter().map(SpillRun::open_cost).max().unwrap_or(0);
        let write = runs.iter().map(SpillRun::write_cost).max().unwrap_or(0);
        let _ = reservation.try_grow((per_run * group + write).min(available));
        runs = merge_pass(space, runs, group, final_fan_in, &mut cmp)?;
        reservation.free();
    }
    let mut it = merge(runs, tail, cmp)?;
    it.reservation = Some(reservation);
    Ok(it)
}

/// How many runs `bytes` can hold open at once (at least 2), leaving room for the writer of
/// the merged run when `writing`.
pub(super) fn fan_in(runs: &[SpillRun], bytes: usize, writing: bool) -> usize {
    let per_run = runs
        .iter()
        .map(SpillRun::open_cost)
        .max()
        .unwrap_or(1)
        .max(1);
    let write = if writing {
        runs.iter().map(SpillRun::write_cost).max().unwrap_or(0)
    } else {
        0
    };
    (bytes.saturating_sub(write) / per_run).max(2)
}

/// One pass: merges the first groups of `fan_in` consecutive runs, as many as it takes to
/// leave at most `target` runs (or, when that is more than one pass can do, every group).
fn merge_pass<F>(
    space: MergeSpace<'_>,
    runs: Vec<SpillRun>,
    fan_in: usize,
    target: usize,
    cmp: &mut F,
) -> Result<Vec<SpillRun>, ActionError>
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    let merges = runs
        .len()
        .saturating_sub(target)
        .div_ceil(fan_in - 1)
        .max(1);
    let mut out = Vec::with_capacity(runs.len());
    let mut rest = runs.into_iter();
    for _ in 0..merges {
        let group: Vec<SpillRun> = rest.by_ref().take(fan_in).collect();
        if group.len() < 2 {
            out.extend(group);
            break;
        }
        out.push(merge_into_run(space, group, cmp)?);
    }
    out.extend(rest);
    Ok(out)
}

/// Merges `group` into one new run (its columns the union of theirs), deleting each as it is
/// exhausted.
fn merge_into_run<F>(
    space: MergeSpace<'_>,
    group: Vec<SpillRun>,
    cmp: &mut F,
) -> Result<SpillRun, ActionError>
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    let path = space.dir.new_path(&format!("{}-merged", space.name))?;
    let written = (|| {
        let merged = merge(group, Vec::new(), &mut *cmp)?;
        let (columns, kinds) = merged.columns();
        let mut writer = RunWriter::create(&path, columns, kinds)?;
        for f in merged {
            writer.push(f?)?;
        }
        writer.finish()
    })();
    match written {
        Ok(w) => {
            space.dir.record(w.bytes);
            Ok(w.into_run(path))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

/// The iterator [`merge`] and [`merge_bounded`] return.
pub struct MergeIter<F> {
    sources: Vec<MergeSource>,
    /// The next feature of each source.
    heads: Vec<Option<Feature>>,
    /// Min-heap of the sources that still have a head.
    heap: Vec<usize>,
    cmp: F,
    failed: bool,
    /// The bytes of the open runs ([`merge_bounded`]); freed when the merge ends.
    reservation: Option<Reservation>,
}

impl<F> MergeIter<F> {
    /// The union of the open runs' attribute columns (first-seen order) and their kinds.
    fn columns(&self) -> (Vec<Arc<str>>, Vec<ColumnKind>) {
        let mut columns: Vec<Arc<str>> = Vec::new();
        let mut kinds: Vec<ColumnKind> = Vec::new();
        let mut column_of: HashMap<Arc<str>, usize> = HashMap::new();
        for s in &self.sources {
            let MergeSource::Run(Some(open)) = s else {
                continue;
            };
            for (name, kind) in open.0.columns.iter().zip(&open.0.kinds) {
                match column_of.get(name) {
                    Some(&c) => kinds[c] = POLICY.join(kinds[c], *kind),
                    None => {
                        column_of.insert(name.clone(), columns.len());
                        columns.push(name.clone());
                        kinds.push(*kind);
                    }
                }
            }
        }
        (columns, kinds)
    }

    /// Sources (runs and the tail) the merge was opened with.
    #[cfg(test)]
    pub(super) fn open_sources(&self) -> usize {
        self.sources.len()
    }

    /// Bytes reserved for the merge now (0 for [`merge`]).
    pub fn reserved(&self) -> usize {
        self.reservation.as_ref().map_or(0, Reservation::size)
    }
}

impl<F> std::fmt::Debug for MergeIter<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeIter")
            .field("sources", &self.sources.len())
            .field("live", &self.heap.len())
            .finish_non_exhaustive()
    }
}

enum MergeSource {
    /// A run and its reader; `None` once exhausted (the file is deleted then).
    Run(Option<Box<(SpillReader, SpillRun)>>),
    Tail(std::vec::IntoIter<Feature>),
}

impl MergeSource {
    fn next(&mut self) -> Result<Option<Feature>, ActionError> {
        match self {
            MergeSource::Tail(t) => Ok(t.next()),
            MergeSource::Run(slot) => {
                let Some(open) = slot else {
                    return Ok(None);
                };
                match open.0.next() {
                    Some(r) => r.map(Some),
                    None => {
                        *slot = None;
                        Ok(None)
                    }
                }
            }
        }
    }
}

/// Whether source `a`'s head comes before source `b`'s: by `cmp`, then by source order.
fn before<F>(heads: &[Option<Feature>], cmp: &mut F, a: usize, b: usize) -> bool
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    let o = match (&heads[a], &heads[b]) {
        (Some(x), Some(y)) => cmp(x, y),
        _ => Ordering::Equal,
    };
    o.then(a.cmp(&b)) == Ordering::Less
}

fn sift_down<F>(heap: &mut [usize], heads: &[Option<Feature>], cmp: &mut F, mut i: usize)
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut best = i;
        if l < heap.len() && before(heads, cmp, heap[l], heap[best]) {
            best = l;
        }
        if r < heap.len() && before(heads, cmp, heap[r], heap[best]) {
            best = r;
        }
        if best == i {
            return;
        }
        heap.swap(i, best);
        i = best;
    }
}

impl<F> Iterator for MergeIter<F>
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    type Item = Result<Feature, ActionError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let Some(&top) = self.heap.first() else {
            // Exhausted: the runs are closed, their bytes go back.
            self.reservation = None;
            return None;
        };
        let out = self.heads[top].take()?;
        match self.sources[top].next() {
            Ok(Some(f)) => self.heads[top] = Some(f),
            Ok(None) => {
                self.heap.swap_remove(0);
            }
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        }
        sift_down(&mut self.heap, &self.heads, &mut self.cmp, 0);
        Some(Ok(out))
    }
}
