//! Memory: the budget accumulators reserve from, the resident-memory monitor, the heavy-finish
//! gate and spilling to Parquet.

mod budget;
mod spill_dir;

pub use budget::{ConsumerStats, MemoryBudget, Reservation};
pub use spill_dir::SpillDir;
