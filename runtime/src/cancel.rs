//! Cancellation: one token per run that every blocking wait also listens to.
//!
//! The token holds the only [`Sender`] of a zero-capacity channel that never carries a message.
//! Cancelling drops that sender, so every `select!` that has the token's receiver as an arm
//! wakes at once (a disconnected channel is always ready). Nothing polls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

/// A cloneable handle that cancels a run. Cancelling twice is harmless.
#[derive(Clone, Debug)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    flag: AtomicBool,
    sender: Mutex<Option<Sender<()>>>,
    receiver: Receiver<()>,
}

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken::new()
    }
}

impl CancelToken {
    /// A token that has not been cancelled.
    pub fn new() -> CancelToken {
        let (s, r) = crossbeam_channel::bounded(0);
        CancelToken {
            inner: Arc::new(Inner {
                flag: AtomicBool::new(false),
                sender: Mutex::new(Some(s)),
                receiver: r,
            }),
        }
    }

    /// Cancels: every wait that selects on [`CancelToken::receiver`] wakes now.
    pub fn cancel(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.sender.lock().take();
    }

    /// Whether [`CancelToken::cancel`] was called.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.inner.flag.load(Ordering::Relaxed)
    }

    /// A receiver that becomes ready (disconnected) when the token is cancelled. Use it as an
    /// arm of every blocking `select!`.
    pub fn receiver(&self) -> &Receiver<()> {
        &self.inner.receiver
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_wakes_a_select() {
        let t = CancelToken::new();
        let t2 = t.clone();
        let h = std::thread::spawn(move || {
            let (_s, r) = crossbeam_channel::bounded::<u8>(1);
            crossbeam_channel::select! {
                recv(r) -> _ => false,
                recv(t2.receiver()) -> _ => true,
            }
        });
        t.cancel();
        assert!(h.join().unwrap());
        assert!(t.is_cancelled());
    }
}
