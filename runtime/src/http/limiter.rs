//! An adaptive limit on requests in flight (AIMD, as TCP does with its window).
//!
//! - It starts at the configured maximum.
//! - A 429 or 503 ([`Permit::throttled`]) halves it (never below 1). Answers to requests
//!   that were already in flight when it was halved do not halve it again: each halving
//!   starts a new *epoch*, and only a permit of the current epoch can halve.
//! - Every [`SUCCESSES_PER_STEP`] successes ([`Permit::success`]) add one, up to the maximum.
//!
//! [`AdaptiveLimit::acquire`] waits while the requests in flight reach the limit; releases
//! wake the waiters through a channel, and the wait also selects on the run's cancel token,
//! so nothing polls.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, bounded, select};
use parking_lot::Mutex;

use super::HttpError;
use crate::cancel::CancelToken;

/// Successes that raise the limit by one.
pub const SUCCESSES_PER_STEP: usize = 8;

/// A shared, adaptive limit on requests in flight. Cloning shares it.
#[derive(Clone, Debug)]
pub struct AdaptiveLimit {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    max: usize,
    step: usize,
    state: Mutex<State>,
    wake_tx: Sender<()>,
    wake_rx: Receiver<()>,
}

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    successes: usize,
    epoch: u64,
    /// The lowest the limit went.
    lowest: usize,
    /// Times the limit was halved.
    halvings: u64,
}

impl AdaptiveLimit {
    /// A limit of at most `max` requests in flight (at least 1), starting at `max`.
    pub fn new(max: usize) -> AdaptiveLimit {
        AdaptiveLimit::with_step(max, SUCCESSES_PER_STEP)
    }

    /// The same, growing by one every `step` successes.
    pub fn with_step(max: usize, step: usize) -> AdaptiveLimit {
        let max = max.max(1);
        let (wake_tx, wake_rx) = bounded(max + 1);
        AdaptiveLimit {
            inner: Arc::new(Inner {
                max,
                step: step.max(1),
                state: Mutex::new(State {
                    limit: max,
                    in_flight: 0,
                    successes: 0,
                    epoch: 0,
                    lowest: max,
                    halvings: 0,
                }),
                wake_tx,
                wake_rx,
            }),
        }
    }

    /// The limit now.
    pub fn limit(&self) -> usize {
        self.inner.state.lock().limit
    }

    /// The lowest the limit went, and how many times it was halved.
    pub fn history(&self) -> (usize, u64) {
        let s = self.inner.state.lock();
        (s.lowest, s.halvings)
    }

    /// Waits until a request may start, then counts it in flight until the permit is
    /// given back (dropped, or [`Permit::success`] / [`Permit::throttled`]).
    pub fn acquire(&self, cancel: &CancelToken) -> Result<Permit, HttpError> {
        loop {
            if cancel.is_cancelled() {
                return Err(HttpError::Cancelled);
            }
            {
                let mut s = self.inner.state.lock();
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    return Ok(Permit {
                        limit: self.clone(),
                        epoch: s.epoch,
                        released: false,
                    });
                }
            }
            select! {
                recv(self.inner.wake_rx) -> _ => {}
                recv(cancel.receiver()) -> _ => return Err(HttpError::Cancelled),
            }
        }
    }

    fn release(&self, epoch: u64, outcome: Outcome) {
        let free = {
            let mut s = self.inner.state.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
            match outcome {
                Outcome::Success => {
                    s.successes += 1;
                    if s.successes >= self.inner.step {
                        s.successes = 0;
                        s.limit = (s.limit + 1).min(self.inner.max);
                    }
                }
                Outcome::Throttled if epoch == s.epoch => {
                    s.limit = (s.limit / 2).max(1);
                    s.lowest = s.lowest.min(s.limit);
                    s.halvings += 1;
                    s.epoch += 1;
                    s.successes = 0;
                }
                Outcome::Throttled | Outcome::Neutral => {}
            }
            s.limit.saturating_sub(s.in_flight).max(1)
        };
        for _ in 0..free {
            // A full channel already holds wake-ups enough.
            if self.inner.wake_tx.try_send(()).is_err() {
                break;
            }
        }
    }
}

enum Outcome {
    Success,
    Throttled,
    Neutral,
}

/// A request in flight. Dropping it gives it back with no verdict.
#[derive(Debug)]
pub struct Permit {
    limit: AdaptiveLimit,
    epoch: u64,
    released: bool,
}

impl Permit {
    /// The request succeeded: counts towards raising the limit.
    pub fn success(mut self) {
        self.released = true;
        self.limit.release(self.epoch, Outcome::Success);
    }

    /// The server said it is overloaded (429, 503): halves the limit, once per epoch.
    pub fn throttled(mut self) {
        self.released = true;
        self.limit.release(self.epoch, Outcome::Throttled);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.released {
            self.limit.release(self.epoch, Outcome::Neutral);
        }
    }
}
