//! The heavy-finish gate.
//!
//! Several accumulators (four sorts at the end of four branches) often reach `finish` at the
//! same moment; running their finishes together adds their peaks. A processor whose spec says
//! `heavy_finish` asks the gate before it finishes:
//!
//! - [`GatePolicy::Adaptive`] (the default) admits a finish at once when no other heavy finish
//!   runs; otherwise only when the running ones are past their allocation-heavy first phase
//!   (their first parallel section on the pool, such as a sort's in-memory sort), the shared
//!   pool is quiet (no parallel batch in flight) AND the process's resident memory plus what
//!   this finish holds stays under the limit. Finishes thus overlap only in their light
//!   phases (draining), keeping the peak of one finish at a time while both the pool and the
//!   node threads stay busy. The rest wait
//!   and are re-examined every time an admitted finish ends. It cannot deadlock: when nothing
//!   else runs, the first waiter is admitted.
//! - [`GatePolicy::Semaphore`] admits at most `n` at a time (the baseline it must beat).
//! - [`GatePolicy::Ungated`] admits everything.
//!
//! Waiting selects on a wake-up channel and the run's cancel token; nothing polls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use crate::cancel::CancelToken;
use crate::error::ActionError;
use crate::events::{Event, EventSender};
use crate::memory::{MemoryBudget, current_rss};

/// How heavy finishes are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GatePolicy {
    /// Memory- and load-aware admission (see the module docs).
    #[default]
    Adaptive,
    /// At most `n` heavy finishes at once.
    Semaphore(usize),
    /// No gate.
    Ungated,
}

impl std::str::FromStr for GatePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "adaptive" => Ok(GatePolicy::Adaptive),
            "ungated" | "none" => Ok(GatePolicy::Ungated),
            other => match other.strip_prefix("semaphore") {
                Some(n) => n
                    .trim_start_matches([':', '='])
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(GatePolicy::Semaphore)
                    .ok_or_else(|| format!("bad semaphore size in \"{s}\"")),
                None => Err(format!(
                    "unknown gate policy \"{s}\" (adaptive, semaphore:N, ungated)"
                )),
            },
        }
    }
}

thread_local! {
    /// Whether the heavy finish running on this thread is still in its first phase.
    static STARTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

struct State {
    running: usize,
    /// Admitted finishes that have not yet completed their first parallel phase (their
    /// allocation-heavy start, e.g. a sort's in-memory sort).
    starting: usize,
    running_need: u64,
    waiters: Vec<Sender<()>>,
}

/// The gate of one run. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

struct Inner {
    policy: GatePolicy,
    limit: u64,
    budget: MemoryBudget,
    pool_busy: Arc<AtomicUsize>,
    state: Mutex<State>,
    waited_ns: std::sync::atomic::AtomicU64,
}

/// An admitted heavy finish; dropping it lets the next one in.
pub struct GatePermit {
    gate: Gate,
    need: u64,
    /// Time spent waiting for admission.
    pub waited: Duration,
}

impl Gate {
    /// A gate with `policy` for a run with memory `limit` (bytes) and a counter of parallel
    /// work in flight on the shared pool.
    pub fn new(
        policy: GatePolicy,
        limit: u64,
        budget: MemoryBudget,
        pool_busy: Arc<AtomicUsize>,
    ) -> Gate {
        Gate {
            inner: Arc::new(Inner {
                policy,
                limit,
                budget,
                pool_busy,
                state: Mutex::new(State {
                    running: 0,
                    starting: 0,
                    running_need: 0,
                    waiters: Vec::new(),
                }),
                waited_ns: Default::default(),
            }),
        }
    }

    /// The policy.
    pub fn policy(&self) -> GatePolicy {
        self.inner.policy
    }

    /// Total time spent waiting at this gate.
    pub fn total_wait(&self) -> Duration {
        Duration::from_nanos(self.inner.waited_ns.load(Ordering::Relaxed))
    }

    fn admissible(&self, st: &State, need: u64) -> bool {
        match self.inner.policy {
            GatePolicy::Ungated => true,
            GatePolicy::Semaphore(n) => st.running < n,
            GatePolicy::Adaptive => {
                if st.running == 0 {
                    return true;
                }
                // Another finish may start only when the running ones are past their
                // allocation-heavy start, the pool is idle and memory leaves room.
                let quiet = st.starting == 0 && self.inner.pool_busy.load(Ordering::SeqCst) == 0;
                let rss = current_rss();
                quiet
                    && rss.saturating_add(need).saturating_add(st.running_need) <= self.inner.limit
            }
        }
    }

    /// Waits until the finish of `node` (holding `need` bytes) may start.
    pub fn acquire(
        &self,
        node: &str,
        cancel: &CancelToken,
        events: &EventSender,
    ) -> Result<GatePermit, ActionError> {
        let need = self.inner.budget.reserved_by(node) as u64;
        let start = Instant::now();
        let mut announced = false;
        loop {
            let wake = {
                let mut st = self.inner.state.lock();
                if self.admissible(&st, need) {
                    st.running += 1;
                    st.running_need += need;
                    st.starting += 1;
                    STARTING.with(|s| s.set(true));
                    let waited = start.elapsed();
                    self.inner
                        .waited_ns
                        .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
                    if announced {
                        events.send(Event::GateAdmitted {
                            node: node.to_string(),
                            waited,
                        });
                    }
                    return Ok(GatePermit {
                        gate: self.clone(),
                        need,
                        waited,
                    });
                }
                let (tx, rx) = crossbeam_channel::bounded(1);
                st.waiters.push(tx);
                rx
            };
            if !announced {
                announced = true;
                events.send(Event::GateWaiting {
                    node: node.to_string(),
                });
            }
            crossbeam_channel::select! {
                recv(wake) -> _ => {}
                recv(cancel.receiver()) -> _ => return Err(ActionError::Cancelled),
            }
        }
    }

    /// Runs `f` on `pool`, counting it as parallel work in flight: the adaptive gate admits a
    /// second heavy finish only while no such work runs, and re-examines its waiters as soon
    /// as the pool goes quiet.
    pub fn install<R: Send>(&self, pool: &rayon::ThreadPool, f: impl FnOnce() -> R + Send) -> R {
        self.inner.pool_busy.fetch_add(1, Ordering::SeqCst);
        let r = pool.install(f);
        let first_phase_done = STARTING.with(|s| s.replace(false));
        if first_phase_done {
            self.inner.state.lock().starting -= 1;
        }
        if self.inner.pool_busy.fetch_sub(1, Ordering::SeqCst) == 1 || first_phase_done {
            self.wake_all();
        }
        r
    }

    fn wake_all(&self) {
        let waiters = std::mem::take(&mut self.inner.state.lock().waiters);
        for w in waiters {
            let _ = w.try_send(());
        }
    }

    fn release(&self, need: u64) {
        let still_starting = STARTING.with(|s| s.replace(false));
        let waiters = {
            let mut st = self.inner.state.lock();
            st.running -= 1;
            st.running_need -= need;
            if still_starting {
                st.starting -= 1;
            }
            std::mem::take(&mut st.waiters)
        };
        for w in waiters {
            let _ = w.try_send(());
        }
    }
}

impl Drop for GatePermit {
    fn drop(&mut self) {
        self.gate.release(self.need);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(policy: GatePolicy, limit: u64) -> Gate {
        Gate::new(
            policy,
            limit,
            MemoryBudget::unlimited(),
            Arc::new(AtomicUsize::new(0)),
        )
    }

    #[test]
    fn semaphore_admits_one_and_wakes_the_next() {
        let g = gate(GatePolicy::Semaphore(1), u64::MAX);
        let cancel = CancelToken::new();
        let p = g.acquire("a", &cancel, &EventSender::none()).unwrap();
        let g2 = g.clone();
        let c2 = cancel.clone();
        let (events, mut rx) = EventSender::stream();
        let h = std::thread::spawn(move || {
            let _p = g2.acquire("b", &c2, &events).unwrap();
        });
        // b announces that it waits, and cannot get in until a's permit drops.
        assert!(matches!(rx.next().unwrap(), Event::GateWaiting { .. }));
        drop(p);
        h.join().unwrap();
    }

    #[test]
    fn adaptive_admits_the_first_even_without_room() {
        let g = gate(GatePolicy::Adaptive, 1);
        let cancel = CancelToken::new();
        let p = g.acquire("a", &cancel, &EventSender::none()).unwrap();
        // A second one does not fit in a 1-byte limit: it waits, and cancellation frees it.
        let g2 = g.clone();
        let c2 = cancel.clone();
        let h = std::thread::spawn(move || g2.acquire("b", &c2, &EventSender::none()).is_err());
        cancel.cancel();
        assert!(h.join().unwrap());
        drop(p);
    }

    #[test]
    fn policies_parse() {
        assert_eq!(
            "semaphore:1".parse::<GatePolicy>(),
            Ok(GatePolicy::Semaphore(1))
        );
        assert_eq!("adaptive".parse::<GatePolicy>(), Ok(GatePolicy::Adaptive));
        assert!("semaphore:0".parse::<GatePolicy>().is_err());
    }
}
