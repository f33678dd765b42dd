//! [`Emitter`]: how actions hand features downstream, in batches.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_channel::Sender;

use super::tap::{EdgeTap, TapMsg};
use crate::cancel::CancelToken;
use crate::error::ActionError;
use crate::feature::{Batch, Feature, Value};

use super::{REJECTED_PORT, REJECTION_REASON};

/// The position of the `rejected` port in an output list.
fn rejected_index<S: AsRef<str>>(outputs: &[S]) -> Option<usize> {
    outputs.iter().position(|p| p.as_ref() == REJECTED_PORT)
}

/// One edge leaving a port: where its batches go, the counter of features that crossed it,
/// and the capture tap when the run captures the edge.
pub(crate) struct EdgeOut {
    pub target: EdgeTarget,
    pub counter: Arc<AtomicU64>,
    pub tap: Option<EdgeTap>,
}

/// Where an edge's batches go.
pub(crate) enum EdgeTarget {
    /// A channel to the thread of the node downstream.
    Channel(Sender<Batch>),
    /// The next node of a fused chain, called on this thread as each batch is sent (`None`
    /// until the executor connects it).
    Local(Option<Box<dyn LocalEdge>>),
}

/// The downstream end of an edge inside a fused chain of transforms: it applies its node to
/// each batch at once, on the sending thread, so what the chain holds stays one batch per
/// member however many features a member emits per input.
pub(crate) trait LocalEdge: Send + Sync {
    /// Takes one batch.
    fn send(&mut self, batch: Batch) -> Result<(), ActionError>;
    /// Nothing more comes: the downstream node ends (sends what it holds, closes its edges).
    fn close(&mut self) -> Result<(), ActionError>;
}

#[cfg(test)]
impl EdgeOut {
    fn plain(tx: Sender<Batch>, counter: Arc<AtomicU64>) -> EdgeOut {
        EdgeOut {
            target: EdgeTarget::Channel(tx),
            counter,
            tap: None,
        }
    }
}

/// Features an action emitted to a port that has no edge: they are dropped, and counted here
/// so the run report and the command line can say so (nothing vanishes silently).
#[derive(Debug, Default)]
pub(crate) struct PortDrops {
    count: AtomicU64,
    first_reason: OnceLock<String>,
}

impl PortDrops {
    /// Features dropped so far.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The `_rejection_reason` of the first dropped feature that had one.
    pub(crate) fn first_reason(&self) -> Option<&str> {
        self.first_reason.get().map(String::as_str)
    }

    fn record(&self, feature: &Feature) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if self.first_reason.get().is_none()
            && let Some(reason) = feature.get(REJECTION_REASON).and_then(|v| v.as_str())
        {
            let _ = self.first_reason.set(reason.to_string());
        }
    }
}

/// The error of a local edge that was never connected (the executor connects every one).
fn unconnected() -> ActionError {
    ActionError::Other("an edge inside a fused chain was not connected".into())
}

/// The most features a sending port's buffer reserves up front (batch sizes above this grow
/// as they fill).
const MAX_RESERVE: usize = 1 << 16;

/// One output port: a buffer and the edges it feeds.
struct PortOut {
    buf: Vec<Feature>,
    edges: Vec<EdgeOut>,
    /// Features sent on the port's edges.
    emitted: Arc<AtomicU64>,
    /// Features dropped because the port has no edge.
    dropped: Arc<PortDrops>,
}

/// Collects emitted features per output port and sends them downstream in batches.
///
/// Sending blocks while a downstream edge is full; that wait also listens to the cancel token
/// and then returns [`ActionError::Cancelled`]. An emitter made with [`Emitter::buffer`]
/// sends nothing and keeps everything for [`Emitter::into_buffers`] (used for parallel
/// transforms and in tests).
pub struct Emitter {
    ports: Vec<PortOut>,
    batch_size: Arc<AtomicUsize>,
    cancel: Option<CancelToken>,
    /// The index of the `rejected` output port, when the action declares one.
    rejected: Option<usize>,
}

impl Emitter {
    /// A buffering emitter for an action whose output ports are `outputs` (the spec's or the
    /// built action's list): [`Emitter::reject`] sends to the port named `rejected`.
    pub fn for_outputs<S: AsRef<str>>(outputs: &[S]) -> Emitter {
        let mut e = Emitter::buffer(outputs.len());
        e.rejected = rejected_index(outputs);
        e
    }

    /// A buffering emitter with `ports` output ports and no `rejected` port (see
    /// [`Emitter::for_outputs`]).
    pub fn buffer(ports: usize) -> Emitter {
        Emitter {
            ports: (0..ports)
                .map(|_| PortOut {
                    buf: Vec::new(),
                    edges: Vec::new(),
                    emitted: Arc::new(AtomicU64::new(0)),
                    dropped: Arc::default(),
                })
                .collect(),
            batch_size: Arc::new(AtomicUsize::new(usize::MAX)),
            cancel: None,
            rejected: None,
        }
    }

    /// A buffering emitter with this one's ports (the executor times and parallelises
    /// transforms into these, then forwards their buffers).
    pub(crate) fn buffer_like(&self) -> Emitter {
        let mut e = Emitter::buffer(self.ports.len());
        e.rejected = self.rejected;
        e
    }

    /// A sending emitter: for each port, its edges (sender and edge counter) and a port
    /// counter (features sent on the port's edges; features to a port with no edge are
    /// counted apart, see [`Emitter::drops`]). `outputs` names the ports, in order.
    pub(crate) fn channels<S: AsRef<str>>(
        outputs: &[S],
        ports: Vec<(Vec<EdgeOut>, Arc<AtomicU64>)>,
        batch_size: Arc<AtomicUsize>,
        cancel: CancelToken,
    ) -> Emitter {
        Emitter {
            ports: ports
                .into_iter()
                .map(|(edges, emitted)| PortOut {
                    buf: Vec::new(),
                    edges,
                    emitted,
                    dropped: Arc::default(),
                })
                .collect(),
            batch_size,
            cancel: Some(cancel),
            rejected: rejected_index(outputs),
        }
    }

    /// The per-port counters of features sent on edges.
    pub(crate) fn counters(&self) -> Vec<Arc<AtomicU64>> {
        self.ports.iter().map(|p| p.emitted.clone()).collect()
    }

    /// The per-port counters of features dropped because the port has no edge.
    pub(crate) fn drops(&self) -> Vec<Arc<PortDrops>> {
        self.ports.iter().map(|p| p.dropped.clone()).collect()
    }

    /// Number of output ports.
    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    /// Emits to the default (first) output port.
    #[inline]
    pub fn emit(&mut self, feature: Feature) -> Result<(), ActionError> {
        self.emit_to(0, feature)
    }

    /// Emits to output port `port` (index in the action's output list). A port with no edge
    /// drops the feature, and counts it (with the first `_rejection_reason` seen) for the run
    /// report.
    #[inline]
    pub fn emit_to(&mut self, port: usize, feature: Feature) -> Result<(), ActionError> {
        let Some(p) = self.ports.get_mut(port) else {
            return Err(ActionError::Other(
                format!("emitted to output port {port}, which the action does not declare").into(),
            ));
        };
        if self.cancel.is_some() && p.edges.is_empty() {
            p.dropped.record(&feature);
            return Ok(());
        }
        let size = self.batch_size.load(Ordering::Relaxed);
        if p.buf.capacity() == 0 && self.cancel.is_some() {
            // A sending port's buffer is handed on whole at each flush: size the next one
            // once rather than letting it grow from nothing for every batch.
            p.buf.reserve_exact(size.min(MAX_RESERVE));
        }
        p.buf.push(feature);
        if p.buf.len() >= size {
            self.flush_port(port)?;
        }
        Ok(())
    }

    /// Sends `feature` to the `rejected` port with `reason` in its `_rejection_reason`
    /// attribute (replacing any reason it had). An action that rejects must declare a
    /// `rejected` output; otherwise this fails, naming the missing port.
    pub fn reject(
        &mut self,
        mut feature: Feature,
        reason: impl Into<String>,
    ) -> Result<(), ActionError> {
        feature.set(REJECTION_REASON, Value::from(reason.into()));
        self.emit_rejected(feature)
    }

    /// Sends a feature that already carries its `_rejection_reason` (readers build the
    /// rejected row with the reason in place) to the `rejected` port.
    pub fn emit_rejected(&mut self, feature: Feature) -> Result<(), ActionError> {
        match self.rejected {
            Some(port) => self.emit_to(port, feature),
            None => Err(ActionError::Other(
                format!(
                    "rejected a feature, but the action declares no `{REJECTED_PORT}` output port"
                )
                .into(),
            )),
        }
    }

    /// The index of the `rejected` output port, if the action has one.
    pub fn rejected_port(&self) -> Option<usize> {
        self.rejected
    }

    /// Emits a whole batch to a port. A batch of exactly the batch size that finds the
    /// port's buffer empty is sent as it is; otherwise its features are moved into the
    /// buffer a batch's worth at a time.
    pub fn emit_batch(&mut self, port: usize, mut batch: Batch) -> Result<(), ActionError> {
        let size = self.batch_size.load(Ordering::Relaxed);
        let sends = self.cancel.is_some();
        match self.ports.get_mut(port) {
            Some(p) if sends && !p.edges.is_empty() && size > 0 => {
                if p.buf.is_empty() && batch.len() == size {
                    p.buf = batch;
                    return self.flush_port(port);
                }
                while !batch.is_empty() {
                    let p = &mut self.ports[port];
                    let room = size.saturating_sub(p.buf.len()).max(1);
                    if batch.len() < room {
                        p.buf.append(&mut batch);
                        break;
                    }
                    p.buf.extend(batch.drain(..room));
                    self.flush_port(port)?;
                }
                Ok(())
            }
            _ => {
                for f in batch {
                    self.emit_to(port, f)?;
                }
                Ok(())
            }
        }
    }

    /// Sends every buffered feature now.
    pub fn flush(&mut self) -> Result<(), ActionError> {
        for i in 0..self.ports.len() {
            self.flush_port(i)?;
        }
        Ok(())
    }

    fn flush_port(&mut self, port: usize) -> Result<(), ActionError> {
        let Some(cancel) = &self.cancel else {
            return Ok(());
        };
        let p = &mut self.ports[port];
        if p.buf.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut p.buf);
        let n = batch.len() as u64;
        p.emitted.fetch_add(n, Ordering::Relaxed);
        let last = p.edges.len() - 1;
        let mut batch = Some(batch);
        for (i, edge) in p.edges.iter_mut().enumerate() {
            // A captured edge's writer gets the batch first: it shares the features
            // (reference-count bumps) and serialises them from references on its own thread.
            if let Some(tap) = &edge.tap {
                tap.send(TapMsg::Batch(batch.clone().unwrap_or_default()), cancel)?;
            }
            // Fan-out: every edge but the last gets a clone of the batch (reference-count bumps,
            // no deep copies); the last gets the batch itself.
            let b = if i == last {
                batch.take().unwrap_or_default()
            } else {
                batch.clone().unwrap_or_default()
            };
            let counter = &edge.counter;
            match &mut edge.target {
                EdgeTarget::Channel(tx) => crossbeam_channel::select! {
                    send(tx, b) -> res => {
                        // A closed edge means the receiver stopped (it failed or was
                        // cancelled); the run's error path reports that, so the batch is
                        // dropped here.
                        if res.is_ok() {
                            counter.fetch_add(n, Ordering::Relaxed);
                        }
                    }
                    recv(cancel.receiver()) -> _ => return Err(ActionError::Cancelled),
                },
                EdgeTarget::Local(next) => {
                    next.as_mut().ok_or_else(unconnected)?.send(b)?;
                    counter.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    /// Sends every buffered feature, then tells each captured edge's writer that nothing
    /// more comes (so its capture is complete). Called once, when the node succeeded.
    pub(crate) fn close(&mut self) -> Result<(), ActionError> {
        self.flush()?;
        let Some(cancel) = &self.cancel else {
            return Ok(());
        };
        for p in &mut self.ports {
            for tap in p.edges.iter().filter_map(|e| e.tap.as_ref()) {
                tap.send(TapMsg::End, cancel)?;
            }
            for e in &mut p.edges {
                if let EdgeTarget::Local(next) = &mut e.target {
                    next.as_mut().ok_or_else(unconnected)?.close()?;
                }
            }
        }
        Ok(())
    }

    /// Connects this node's local edge (its one output edge inside a fused chain) to the
    /// node it leads to. Gives `next` back if it has no unconnected local edge.
    pub(crate) fn connect_local(
        &mut self,
        next: Box<dyn LocalEdge>,
    ) -> Result<(), Box<dyn LocalEdge>> {
        let slot = self.ports.iter_mut().find_map(|p| {
            p.edges.iter_mut().find_map(|e| match &mut e.target {
                EdgeTarget::Local(slot @ None) => Some(slot),
                _ => None,
            })
        });
        match slot {
            Some(slot) => {
                *slot = Some(next);
                Ok(())
            }
            None => Err(next),
        }
    }

    /// Takes the buffered features of every port (buffering emitters).
    pub fn into_buffers(self) -> Vec<Vec<Feature>> {
        self.ports.into_iter().map(|p| p.buf).collect()
    }

    /// Takes the buffered features of every port, leaving them empty.
    pub fn take_buffers(&mut self) -> Vec<Vec<Feature>> {
        self.ports
            .iter_mut()
            .map(|p| std::mem::take(&mut p.buf))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffering_emitter_keeps_ports_apart() {
        let mut e = Emitter::buffer(2);
        e.emit(Feature::empty(1)).unwrap();
        e.emit_to(1, Feature::empty(2)).unwrap();
        e.emit(Feature::empty(3)).unwrap();
        assert!(e.emit_to(2, Feature::empty(4)).is_err());
        let b = e.into_buffers();
        assert_eq!(b[0].iter().map(|f| f.id()).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(b[1].len(), 1);
    }

    #[test]
    fn reject_attaches_the_reason_and_finds_the_rejected_port_by_name() {
        let mut e = Emitter::for_outputs(&["passed", "failed", "rejected"]);
        assert_eq!(e.rejected_port(), Some(2));
        let f = Feature::from_pairs(7, [("a", 1.into())]);
        e.reject(f, "no geometry").unwrap();
        let b = e.into_buffers();
        assert!(b[0].is_empty() && b[1].is_empty());
        assert_eq!(b[2][0].id(), 7);
        assert_eq!(
            b[2][0].get(REJECTION_REASON).and_then(|v| v.as_str()),
            Some("no geometry")
        );
        assert_eq!(b[2][0].get("a"), Some(&1.into()));
    }

    #[test]
    fn rejecting_without_a_rejected_port_is_an_error_that_names_the_port() {
        let mut e = Emitter::for_outputs(&["default"]);
        let err = e.reject(Feature::empty(1), "bad").unwrap_err();
        assert!(err.to_string().contains("`rejected`"), "{err}");
        assert!(e.into_buffers()[0].is_empty());
    }

    #[test]
    fn channel_emitter_batches_and_fans_out() {
        let (t1, r1) = crossbeam_channel::bounded(10);
        let (t2, r2) = crossbeam_channel::bounded(10);
        let c1 = Arc::new(AtomicU64::new(0));
        let emitted = Arc::new(AtomicU64::new(0));
        let mut e = Emitter::channels(
            &["default"],
            vec![(
                vec![
                    EdgeOut::plain(t1, c1.clone()),
                    EdgeOut::plain(t2, Arc::new(AtomicU64::new(0))),
                ],
                emitted.clone(),
            )],
            Arc::new(AtomicUsize::new(2)),
            CancelToken::new(),
        );
        for i in 0..5 {
            e.emit(Feature::empty(i)).unwrap();
        }
        e.flush().unwrap();
        drop(e);
        let sizes: Vec<usize> = r1.iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        assert_eq!(r2.iter().map(|b| b.len()).sum::<usize>(), 5);
        assert_eq!(c1.load(Ordering::Relaxed), 5);
        assert_eq!(emitted.load(Ordering::Relaxed), 5);
    }

    /// Whole batches and single features mixed: every batch sent is full but the last, and
    /// the features arrive in the order emitted.
    #[test]
    fn emit_batch_sends_full_batches_in_order() {
        for pattern in [
            &[1usize, 7, 3, 3, 2][..],
            &[3, 3, 3],
            &[0, 10, 1],
            &[2, 2, 2, 2, 5],
        ] {
            let (tx, rx) = crossbeam_channel::unbounded();
            let mut e = Emitter::channels(
                &["default"],
                vec![(
                    vec![EdgeOut::plain(tx, Arc::new(AtomicU64::new(0)))],
                    Arc::new(AtomicU64::new(0)),
                )],
                Arc::new(AtomicUsize::new(3)),
                CancelToken::new(),
            );
            let mut next = 0u64;
            for (i, &n) in pattern.iter().enumerate() {
                let batch: Vec<Feature> = (next..next + n as u64).map(Feature::empty).collect();
                next += n as u64;
                if i % 2 == 0 {
                    e.emit_batch(0, batch).unwrap();
                } else {
                    for f in batch {
                        e.emit(f).unwrap();
                    }
                }
            }
            e.flush().unwrap();
            drop(e);
            let batches: Vec<Vec<u64>> = rx
                .iter()
                .map(|b: Batch| b.iter().map(|f| f.id()).collect())
                .collect();
            let (last, full) = batches.split_last().expect("something was sent");
            assert!(
                full.iter().all(|b| b.len() == 3),
                "{pattern:?}: {batches:?}"
            );
            assert!(
                !last.is_empty() && last.len() <= 3,
                "{pattern:?}: {batches:?}"
            );
            let ids: Vec<u64> = batches.concat();
            assert_eq!(ids, (0..next).collect::<Vec<_>>(), "{pattern:?}");
        }
    }

    /// A local edge (inside a fused chain) gets each batch as soon as it is full, on the
    /// emitting thread, and is closed after the last one: a member that emits many features
    /// per input never holds more than a batch of them.
    #[test]
    fn a_local_edge_takes_each_batch_as_it_fills_and_is_closed_last() {
        #[derive(Default)]
        struct Seen {
            batches: parking_lot::Mutex<Vec<Vec<u64>>>,
            closed: std::sync::atomic::AtomicBool,
        }
        struct Recorder(Arc<Seen>);
        impl LocalEdge for Recorder {
            fn send(&mut self, batch: Batch) -> Result<(), ActionError> {
                self.0
                    .batches
                    .lock()
                    .push(batch.iter().map(Feature::id).collect());
                Ok(())
            }
            fn close(&mut self) -> Result<(), ActionError> {
                self.0.closed.store(true, Ordering::Relaxed);
                Ok(())
            }
        }
        let counter = Arc::new(AtomicU64::new(0));
        let mut e = Emitter::channels(
            &["default"],
            vec![(
                vec![EdgeOut {
                    target: EdgeTarget::Local(None),
                    counter: counter.clone(),
                    tap: None,
                }],
                Arc::new(AtomicU64::new(0)),
            )],
            Arc::new(AtomicUsize::new(4)),
            CancelToken::new(),
        );
        // Unconnected, a send is an error, not a silent drop, and counts nothing.
        e.emit(Feature::empty(100)).unwrap();
        e.emit_batch(0, (101..104).map(Feature::empty).collect())
            .unwrap_err();
        let seen = Arc::new(Seen::default());
        let mut e = Emitter::channels(
            &["default"],
            vec![(
                vec![EdgeOut {
                    target: EdgeTarget::Local(None),
                    counter: counter.clone(),
                    tap: None,
                }],
                Arc::new(AtomicU64::new(0)),
            )],
            Arc::new(AtomicUsize::new(4)),
            CancelToken::new(),
        );
        assert!(e.connect_local(Box::new(Recorder(seen.clone()))).is_ok());
        assert!(e.connect_local(Box::new(Recorder(seen.clone()))).is_err());
        for i in 0..10 {
            e.emit(Feature::empty(i)).unwrap();
            assert_eq!(seen.batches.lock().len(), (i as usize + 1) / 4, "after {i}");
        }
        assert!(!seen.closed.load(Ordering::Relaxed));
        e.close().unwrap();
        assert_eq!(
            *seen.batches.lock(),
            vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]
        );
        assert!(seen.closed.load(Ordering::Relaxed));
        assert_eq!(counter.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn a_port_without_edges_counts_drops_and_keeps_the_first_reason() {
        let (t1, r1) = crossbeam_channel::bounded(10);
        let mut e = Emitter::channels(
            &["default", "rejected"],
            vec![
                (
                    vec![EdgeOut::plain(t1, Arc::new(AtomicU64::new(0)))],
                    Arc::default(),
                ),
                (Vec::new(), Arc::default()),
            ],
            Arc::new(AtomicUsize::new(4)),
            CancelToken::new(),
        );
        let drops = e.drops();
        let sent = e.counters();
        e.emit(Feature::empty(1)).unwrap();
        e.emit_to(1, Feature::empty(2)).unwrap();
        for (i, reason) in [(3, "first"), (4, "second")] {
            let f = Feature::from_pairs(i, [(REJECTION_REASON, reason.into())]);
            e.emit_to(1, f).unwrap();
        }
        e.flush().unwrap();
        drop(e);
        assert_eq!(r1.iter().map(|b| b.len()).sum::<usize>(), 1);
        assert_eq!(sent[0].load(Ordering::Relaxed), 1);
        assert_eq!(sent[1].load(Ordering::Relaxed), 0);
        assert_eq!((drops[0].count(), drops[1].count()), (0, 3));
        assert_eq!(drops[1].first_reason(), Some("first"));
    }
}
