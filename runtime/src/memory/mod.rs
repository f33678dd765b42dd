//! Memory: the budget accumulators reserve from, the resident-memory monitor, the heavy-finish
//! gate and spilling to Parquet.

mod budget;
mod gate;
pub mod monitor;
mod spill_dir;

pub use gate::{Gate, GatePermit, GatePolicy};
pub use budget::{ConsumerStats, MemoryBudget, Reservation};
pub use monitor::{Monitor, Pressure, current_rss, total_memory};
pub use spill_dir::SpillDir;
