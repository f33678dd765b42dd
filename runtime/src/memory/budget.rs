//! The memory budget: a pool of bytes that accumulating actions reserve from.
//!
//! Policy (after DataFusion's memory pool): only consumers that hold data for a long time
//! register (sort, dedup, group-by, join buffers); batches in flight on edges are bounded by
//! the channel bounds instead. A consumer reserves before it holds; when
//! [`Reservation::try_grow`] fails, a consumer that can spill writes what it holds to disk and
//! frees its reservation; one that cannot fails with a located error. A [`Reservation`] gives
//! its bytes back when dropped, so a finished, failed or cancelled run always returns to zero.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::error::ActionError;

/// The run's memory budget. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    inner: Arc<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    limit: usize,
    reserved: AtomicUsize,
    peak: AtomicUsize,
    consumers: Mutex<Vec<Arc<ConsumerStats>>>,
}

/// Per-consumer figures for the run report.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Consumer name (the node id).
    pub name: String,
    /// Bytes held now.
    pub reserved: AtomicUsize,
    /// Most bytes held at once.
    pub peak: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes for accumulators.
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            inner: Arc::new(BudgetInner {
                limit,
                reserved: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                consumers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A budget with no practical limit.
    pub fn unlimited() -> MemoryBudget {
        MemoryBudget::new(usize::MAX / 2)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes reserved now, over all consumers.
    pub fn reserved(&self) -> usize {
        self.inner.reserved.load(Ordering::SeqCst)
    }

    /// Bytes not reserved now (what a consumer could still grow by, if nobody else does
    /// first).
    pub fn available(&self) -> usize {
        self.inner.limit.saturating_sub(self.reserved())
    }

    /// The most bytes reserved at once during the run.
    pub fn peak(&self) -> usize {
        self.inner.peak.load(Ordering::SeqCst)
    }

    /// Registers a consumer and returns its (empty) reservation.
    pub fn register(&self, name: &str) -> Reservation {
        let stats = Arc::new(ConsumerStats {
            name: name.to_string(),
            ..Default::default()
        });
        self.inner.consumers.lock().push(stats.clone());
        Reservation {
            budget: self.clone(),
            stats,
            size: 0,
        }
    }

    /// Name and peak bytes of every consumer registered so far.
    pub fn consumer_peaks(&self) -> Vec<(String, usize)> {
        self.inner
            .consumers
            .lock()
            .iter()
            .map(|c| (c.name.clone(), c.peak.load(Ordering::Relaxed)))
            .collect()
    }

    /// Bytes reserved now by the consumers registered under `name`.
    pub fn reserved_by(&self, name: &str) -> usize {
        self.inner
            .consumers
            .lock()
            .iter()
            .filter(|c| c.name == name)
            .map(|c| c.reserved.load(Ordering::Relaxed))
            .sum()
    }

    fn try_take(&self, bytes: usize) -> bool {
        let r = &self.inner.reserved;
        let mut cur = r.load(Ordering::SeqCst);
        loop {
            let Some(next) = cur.checked_add(bytes).filter(|n| *n <= self.inner.limit) else {
                return false;
            };
            match r.compare_exchange_weak(cur, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    self.inner.peak.fetch_max(next, Ordering::SeqCst);
                    return true;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    fn give_back(&self, bytes: usize) {
        self.inner.reserved.fetch_sub(bytes, Ordering::SeqCst);
    }
}

/// Bytes held by one consumer; returned to the budget on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    stats: Arc<ConsumerStats>,
    size: usize,
}

impl Reservation {
    /// Bytes held.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Grows by `bytes` if the budget has room; `false` leaves the reservation unchanged.
    pub fn try_grow(&mut self, bytes: usize) -> bool {
        if !self.budget.try_take(bytes) {
            return false;
        }
        self.size += bytes;
        self.stats.reserved.store(self.size, Ordering::Relaxed);
        self.stats.peak.fetch_max(self.size, Ordering::Relaxed);
        true
    }

    /// Grows by `bytes` or fails with [`ActionError::MemoryExhausted`].
    pub fn grow(&mut self, bytes: usize) -> Result<(), ActionError> {
        if self.try_grow(bytes) {
            Ok(())
        } else {
            Err(ActionError::MemoryExhausted {
                requested: bytes,
                budget: self.budget.limit(),
            })
        }
    }

    /// Shrinks by up to `bytes`.
    pub fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.size);
        self.size -= bytes;
        self.budget.give_back(bytes);
        self.stats.reserved.store(self.size, Ordering::Relaxed);
    }

    /// Returns everything held.
    pub fn free(&mut self) {
        self.shrink(self.size);
    }

    /// The budget this reservation draws from.
    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.free();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_return_on_drop_and_respect_limit() {
        let b = MemoryBudget::new(100);
        let mut r1 = b.register("a");
        assert!(r1.try_grow(60));
        let mut r2 = b.register("b");
        assert!(!r2.try_grow(50));
        assert!(r2.try_grow(40));
        assert_eq!(b.reserved(), 100);
        drop(r1);
        assert_eq!(b.reserved(), 40);
        r2.shrink(10);
        drop(r2);
        assert_eq!(b.reserved(), 0);
        assert_eq!(b.peak(), 100);
        assert_eq!(b.consumer_peaks(), vec![("a".into(), 60), ("b".into(), 40)]);
    }
}
