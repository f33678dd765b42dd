//! Taps: a second receiver of what an edge carries (capture, `crate::capture`, is the one
//! user). The emitter hands a tapped edge's writer each batch before sending it on, and
//! `End` once its node succeeded.

use crossbeam_channel::{Receiver, Sender};

use crate::cancel::CancelToken;
use crate::error::ActionError;
use crate::feature::Batch;

/// What goes down a tap.
pub(crate) enum TapMsg {
    /// Features that crossed the edge.
    Batch(Batch),
    /// The producing node finished: every feature has been sent.
    End,
}

/// The node-side end of a captured edge.
#[derive(Clone)]
pub(crate) struct EdgeTap {
    tx: Sender<TapMsg>,
}

impl EdgeTap {
    /// A tap holding at most `batches` messages, and the receiving end for its writer.
    pub(crate) fn bounded(batches: usize) -> (EdgeTap, Receiver<TapMsg>) {
        let (tx, rx) = crossbeam_channel::bounded(batches);
        (EdgeTap { tx }, rx)
    }

    /// Hands `msg` to the edge's writer, waiting while its channel is full; a cancelled
    /// run stops the wait. A writer that stopped (it failed, and the run is ending) takes
    /// nothing more; its error is the run's.
    pub(crate) fn send(&self, msg: TapMsg, cancel: &CancelToken) -> Result<(), ActionError> {
        crossbeam_channel::select! {
            send(self.tx, msg) -> _ => Ok(()),
            recv(cancel.receiver()) -> _ => Err(ActionError::Cancelled),
        }
    }
}
