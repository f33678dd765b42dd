//! [`Slice`]: which part of its input a source reads in a partitioned run, and
//! [`Partitioning`]: what an action's spec says about running it in partitions.

use std::ops::Range;

/// The part of its input a source reads: task `index` of `count` (0-based). A run that is
/// not partitioned reads [`Slice::WHOLE`].
///
/// Slices of one input are contiguous and in order: reading slices `0..count` one after the
/// other gives exactly the features of a whole read, in the same order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Slice {
    /// This task's index, below `count`.
    pub index: u32,
    /// How many tasks share the input (at least 1).
    pub count: u32,
}

/// A slice that cannot be: a count of 0 or an index at or past the count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("partition {index}/{count} does not exist: {reason}")]
pub struct BadSlice {
    /// The index given.
    pub index: u64,
    /// The count given.
    pub count: u64,
    /// Why it cannot be.
    pub reason: &'static str,
}

impl Slice {
    /// The whole input (task 0 of 1).
    pub const WHOLE: Slice = Slice { index: 0, count: 1 };

    /// Task `index` of `count`, checked.
    pub fn new(index: u64, count: u64) -> Result<Slice, BadSlice> {
        let bad = |reason| BadSlice {
            index,
            count,
            reason,
        };
        if count == 0 {
            return Err(bad("the count of partitions must be at least 1"));
        }
        if index >= count {
            return Err(bad(
                "the index counts from 0 and must be below the count of partitions",
            ));
        }
        let count = u32::try_from(count).map_err(|_| bad("at most 4294967295 partitions"))?;
        Ok(Slice {
            index: index as u32,
            count,
        })
    }

    /// Whether this is the whole input.
    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// Whether this is the first slice (the one that reads an input that cannot be split).
    pub fn is_first(&self) -> bool {
        self.index == 0
    }

    /// This slice's share of `0..len`: `[len·i/n, len·(i+1)/n)`. The shares of all slices
    /// are contiguous, in order, and cover `0..len` exactly.
    pub fn range(&self, len: u64) -> Range<u64> {
        let at = |i: u32| ((len as u128 * i as u128) / self.count as u128) as u64;
        at(self.index)..at(self.index + 1)
    }

    /// This slice's share of `0..len` as `usize` indices (files of a list, row groups).
    pub fn index_range(&self, len: usize) -> Range<usize> {
        let r = self.range(len as u64);
        r.start as usize..r.end as usize
    }
}

impl std::fmt::Display for Slice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Slice {
    type Err = String;

    /// Parses `I/N` (`0/4`).
    fn from_str(s: &str) -> Result<Slice, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected INDEX/COUNT such as 0/4, got \"{s}\""))?;
        let num = |t: &str, what: &str| {
            t.trim().parse::<u64>().map_err(|_| {
                format!("expected INDEX/COUNT such as 0/4, got \"{s}\": {what} is not a number")
            })
        };
        Slice::new(num(i, "the index")?, num(n, "the count")?).map_err(|e| e.to_string())
    }
}

/// How an action runs when a workflow is run in partitions (`sluice plan`): what its spec
/// declares, so the planner needs to know no concrete action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioning {
    /// A source that reads its slice of the input ([`NodeContext::slice`]); the text says
    /// how it splits (`"files by index; a CSV file in newline-aligned byte ranges"`).
    ///
    /// [`NodeContext::slice`]: super::NodeContext::slice
    Sliced(&'static str),
    /// A source that cannot split its input: the first task reads all of it.
    Whole,
    /// Each feature is handled on its own (its output depends on that feature only), so the
    /// node runs in every task of a partitioned stage.
    PerFeature,
    /// Needs all of its input in one place and in order (sorts, joins, aggregates, writers
    /// of one output): the planner cuts the workflow before it.
    Global,
}

impl Partitioning {
    /// The name used in `sluice plan --json` and `sluice actions --json`.
    pub fn name(&self) -> &'static str {
        match self {
            Partitioning::Sliced(_) => "sliced",
            Partitioning::Whole => "whole",
            Partitioning::PerFeature => "per_feature",
            Partitioning::Global => "global",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_input_exactly_and_in_order() {
        for len in [0u64, 1, 2, 3, 7, 100, 1_000_003] {
            for n in 1..=9u64 {
                let mut next = 0;
                for i in 0..n {
                    let r = Slice::new(i, n).unwrap().range(len);
                    assert_eq!(r.start, next, "len {len} n {n} i {i}");
                    assert!(r.end >= r.start);
                    next = r.end;
                }
                assert_eq!(next, len);
            }
        }
        assert_eq!(Slice::new(3, 4).unwrap().range(u64::MAX).end, u64::MAX);
    }

    #[test]
    fn bad_slices_say_why() {
        assert!(
            "5/4"
                .parse::<Slice>()
                .unwrap_err()
                .contains("below the count")
        );
        assert!(
            "4/4"
                .parse::<Slice>()
                .unwrap_err()
                .contains("below the count")
        );
        assert!("0/0".parse::<Slice>().unwrap_err().contains("at least 1"));
        assert!(
            "x/4"
                .parse::<Slice>()
                .unwrap_err()
                .contains("the index is not a number")
        );
        assert!("3".parse::<Slice>().unwrap_err().contains("INDEX/COUNT"));
        assert_eq!(
            "2/4".parse::<Slice>().unwrap(),
            Slice { index: 2, count: 4 }
        );
        assert_eq!(Slice::WHOLE.to_string(), "0/1");
    }
}
