//! The shared rayon pool: CPU work of every node of a run goes through one pool.

use std::sync::{Arc, OnceLock};

/// A process-wide pool sized to the cores, for code that runs actions outside a workflow run.
pub fn default_pool() -> Arc<rayon::ThreadPool> {
    static POOL: OnceLock<Arc<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| Arc::new(new_pool(0))).clone()
}

/// A new pool with `threads` threads (0: one per core).
pub fn new_pool(threads: usize) -> rayon::ThreadPool {
    let mut b = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("sluice-pool-{i}"));
    if threads > 0 {
        b = b.num_threads(threads);
    }
    match b.build() {
        Ok(p) => p,
        // Building a pool only fails if threads cannot be spawned; try a single thread.
        Err(_) => rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap_or_else(|e| panic!("cannot start even one pool thread: {e}")),
    }
}
