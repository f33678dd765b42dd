//! [`Emitter`]: how actions hand features downstream, in batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_channel::Sender;

use crate::error::ActionError;
use crate::executor::CancelToken;
use crate::feature::{Batch, Feature};

/// One edge leaving a port: its sender and the counter of features that crossed it.
pub(crate) type EdgeOut = (Sender<Batch>, Arc<AtomicU64>);

/// One output port: a buffer and the edges it feeds.
struct PortOut {
    buf: Vec<Feature>,
    edges: Vec<EdgeOut>,
    emitted: Arc<AtomicU64>,
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
}

impl Emitter {
    /// A buffering emitter with `ports` output ports.
    pub fn buffer(ports: usize) -> Emitter {
        Emitter {
            ports: (0..ports)
                .map(|_| PortOut {
                    buf: Vec::new(),
                    edges: Vec::new(),
                    emitted: Arc::new(AtomicU64::new(0)),
                })
                .collect(),
            batch_size: Arc::new(AtomicUsize::new(usize::MAX)),
            cancel: None,
        }
    }

    /// A sending emitter: for each port, its edges (sender and edge counter) and a port
    /// counter.
    pub(crate) fn channels(
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
                })
                .collect(),
            batch_size,
            cancel: Some(cancel),
        }
    }

    /// The per-port emitted counters.
    pub(crate) fn counters(&self) -> Vec<Arc<AtomicU64>> {
        self.ports.iter().map(|p| p.emitted.clone()).collect()
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
    /// drops the feature.
    #[inline]
    pub fn emit_to(&mut self, port: usize, feature: Feature) -> Result<(), ActionError> {
        let Some(p) = self.ports.get_mut(port) else {
            return Err(ActionError::Other(
                format!("emitted to output port {port}, which the action does not declare").into(),
            ));
        };
        if self.cancel.is_some() && p.edges.is_empty() {
            p.emitted.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        p.buf.push(feature);
        if p.buf.len() >= self.batch_size.load(Ordering::Relaxed) {
            self.flush_port(port)?;
        }
        Ok(())
    }

    /// Emits a whole batch to a port.
    pub fn emit_batch(&mut self, port: usize, batch: Batch) -> Result<(), ActionError> {
        for f in batch {
            self.emit_to(port, f)?;
        }
        Ok(())
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
        for (i, (tx, counter)) in p.edges.iter().enumerate() {
            // Fan-out: every edge but the last gets a clone of the batch (reference-count bumps,
            // no deep copies); the last gets the batch itself.
            let b = if i == last {
                batch.take().unwrap_or_default()
            } else {
                batch.clone().unwrap_or_default()
            };
            crossbeam_channel::select! {
                send(tx, b) -> res => {
                    // A closed edge means the receiver stopped (it failed or was cancelled);
                    // the run's error path reports that, so the batch is dropped here.
                    if res.is_ok() {
                        counter.fetch_add(n, Ordering::Relaxed);
                    }
                }
                recv(cancel.receiver()) -> _ => return Err(ActionError::Cancelled),
            }
        }
        Ok(())
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
    fn channel_emitter_batches_and_fans_out() {
        let (t1, r1) = crossbeam_channel::bounded(10);
        let (t2, r2) = crossbeam_channel::bounded(10);
        let c1 = Arc::new(AtomicU64::new(0));
        let emitted = Arc::new(AtomicU64::new(0));
        let mut e = Emitter::channels(
            vec![(
                vec![(t1, c1.clone()), (t2, Arc::new(AtomicU64::new(0)))],
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
}
