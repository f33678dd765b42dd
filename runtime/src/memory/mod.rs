//! Memory: the budget accumulators reserve from, the resident-memory monitor, the heavy-finish
//! gate and spilling to Parquet.

mod budget;
mod gate;
pub mod monitor;
mod plan;
mod probe;
pub(crate) mod spill;
mod spill_dir;

pub use budget::{ConsumerStats, MemoryBudget, Reservation};
pub use gate::{Gate, GatePermit, GatePolicy};
pub use monitor::{MemoryPoint, MemoryTrace, Monitor, Pressure, PressureMark};
pub use plan::{
    ACCUMULATOR_MIN_BYTES, BUDGET_SHARE, CRITICAL_BATCH_DIVISOR, CRITICAL_PERCENT, FEATURE_BYTES,
    LimitTooSmall, MIN_EDGE_FEATURES, MemoryPlan, NODE_BYTES, PRESSURE_MIN_BATCH, PlanInput,
    READ_AHEAD_PER_THREAD, WARNING_BATCH_DIVISOR, WARNING_PERCENT, WARNING_READ_AHEAD_DIVISOR,
    default_memory_limit,
};
pub use probe::{current_rss, total_memory};
pub use spill::{
    MergeIter, MergeSpace, READ_ROWS, ROW_GROUP_ROWS, SpillReader, SpillRun, merge, merge_bounded,
    write_run,
};
pub use spill_dir::SpillDir;

/// Parses a size such as `64MB`, `1.5GiB`, `512k` or `1000000` (bytes). Units are powers of
/// 1024 (`KB` = `KiB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid size \"{s}\" (examples: 64MB, 2GiB, 1000000)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit \"{other}\" in \"{s}\" (use B, KB, MB, GB, TB)"
            ));
        }
    };
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_parse() {
        assert_eq!(super::parse_size("64MB"), Ok(64 << 20));
        assert_eq!(super::parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(super::parse_size("100"), Ok(100));
        assert!(super::parse_size("12 parsecs").is_err());
    }
}
