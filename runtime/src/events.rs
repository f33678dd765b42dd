//! The typed event stream an embedder (a UI, the CLI) consumes while a run goes on.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::executor::DroppedReport;

/// Something that happened during a run. Past-tense names; fields are plain data.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run started with this many nodes.
    RunStarted {
        /// Node count.
        nodes: usize,
    },
    /// A node's thread started.
    NodeStarted {
        /// Node id.
        node: String,
    },
    /// A node finished successfully.
    NodeFinished {
        /// Node id.
        node: String,
        /// Features received.
        features_in: u64,
        /// Features sent on edges.
        features_out: u64,
        /// Features emitted to ports with no edge, and so dropped, over all ports.
        features_dropped: u64,
        /// The ports that dropped features, in port order, each with its count and the first
        /// rejection reason (empty when nothing was dropped); the same as the run report's
        /// [`NodeReport::dropped`](crate::executor::NodeReport::dropped).
        dropped: Vec<DroppedReport>,
        /// Wall time of the node.
        elapsed: Duration,
    },
    /// A node failed (error or caught panic).
    NodeFailed {
        /// Node id.
        node: String,
        /// The rendered error.
        error: String,
    },
    /// A memory sample from the monitor.
    MemorySampled {
        /// Resident set size of the process, bytes.
        rss: u64,
        /// Bytes reserved by accumulators.
        reserved: u64,
    },
    /// Resident memory crossed a threshold (warning 80 %, critical 90 % of the limit).
    MemoryPressureChanged {
        /// `normal`, `warning` or `critical`.
        level: String,
        /// Resident set size, bytes.
        rss: u64,
        /// The memory limit, bytes.
        limit: u64,
    },
    /// A heavy finish is waiting at the gate.
    GateWaiting {
        /// Node id.
        node: String,
    },
    /// A heavy finish was admitted by the gate.
    GateAdmitted {
        /// Node id.
        node: String,
        /// Time spent waiting.
        waited: Duration,
    },
    /// An accumulator spilled a run to disk.
    Spilled {
        /// Node id.
        node: String,
        /// Bytes written.
        bytes: u64,
        /// Rows written.
        rows: u64,
    },
    /// A log line from an action.
    Log {
        /// Node id.
        node: String,
        /// The message.
        message: String,
    },
    /// A snapshot of the whole run, sent about ten times a second whatever the feature
    /// rate (the same as [`crate::executor::RunHandle::progress`]).
    Progress(crate::executor::Progress),
    /// The run ended.
    RunFinished {
        /// Whether it succeeded.
        ok: bool,
        /// Wall time.
        elapsed: Duration,
    },
}

impl Event {
    /// Whether the event may be dropped when the consumer falls behind: samples and log
    /// lines, which a later one supersedes or which only inform. The events that mark a
    /// run's and its nodes' life (started, finished, failed, gated) are always delivered;
    /// there are a few per node, so holding them is bounded by the workflow's size.
    pub fn is_droppable(&self) -> bool {
        matches!(
            self,
            Event::MemorySampled { .. }
                | Event::Spilled { .. }
                | Event::Log { .. }
                | Event::Progress(_)
        )
    }
}

/// How many droppable events wait for a slow consumer before more are dropped (and counted).
pub const DEFAULT_BACKLOG: usize = 1024;

/// Where a run's events go: nowhere, a callback, or a stream to iterate.
///
/// Sending never blocks and never waits for the consumer: a slow or absent consumer does not
/// slow the run. Droppable events ([`Event::is_droppable`]) beyond the backlog are dropped
/// and counted ([`EventSender::dropped`]); the others are always kept.
///
/// ```
/// use sluice_runtime::events::{Event, EventSender};
/// let (events, stream) = EventSender::stream();
/// events.send(Event::RunStarted { nodes: 1 });
/// events.send(Event::RunFinished { ok: true, elapsed: std::time::Duration::ZERO });
/// // The stream ends after `RunFinished` (or when every sender is gone).
/// assert_eq!(stream.count(), 2);
/// ```
#[derive(Debug, Default)]
pub struct EventSender {
    hub: Option<Arc<Hub>>,
}

impl Clone for EventSender {
    fn clone(&self) -> EventSender {
        if let Some(hub) = &self.hub {
            hub.queue.lock().senders += 1;
        }
        EventSender {
            hub: self.hub.clone(),
        }
    }
}

impl Drop for EventSender {
    fn drop(&mut self) {
        if let Some(hub) = &self.hub {
            let mut q = hub.queue.lock();
            q.senders -= 1;
            if q.senders == 0 {
                hub.ready.notify_all();
            }
        }
    }
}

#[derive(Debug)]
struct Hub {
    queue: Mutex<Queue>,
    ready: Condvar,
    backlog: usize,
    dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Event>,
    /// How many of `events` are droppable.
    droppable: usize,
    /// Live senders; at 0 the stream ends once drained.
    senders: usize,
}

impl EventSender {
    /// Drops every event.
    pub fn none() -> EventSender {
        EventSender { hub: None }
    }

    /// A sender and the stream of what it sends, with the [`DEFAULT_BACKLOG`].
    pub fn stream() -> (EventSender, EventStream) {
        EventSender::stream_with_backlog(DEFAULT_BACKLOG)
    }

    /// A sender and its stream, holding at most `backlog` droppable events.
    pub fn stream_with_backlog(backlog: usize) -> (EventSender, EventStream) {
        let hub = Arc::new(Hub {
            queue: Mutex::new(Queue {
                senders: 1,
                ..Queue::default()
            }),
            ready: Condvar::new(),
            backlog,
            dropped: AtomicU64::new(0),
        });
        (
            EventSender {
                hub: Some(hub.clone()),
            },
            EventStream { hub, ended: false },
        )
    }

    /// Calls `f` with every event, in order, on a thread of its own (named
    /// `sluice-events`), which ends after [`Event::RunFinished`] or when every sender is
    /// gone. A slow `f` never slows the run: events wait for it, and droppable ones beyond
    /// the backlog are dropped and counted.
    pub fn callback(f: impl FnMut(Event) + Send + 'static) -> std::io::Result<EventSender> {
        let (sender, stream) = EventSender::stream();
        std::thread::Builder::new()
            .name("sluice-events".into())
            .spawn(move || stream.for_each(f))?;
        Ok(sender)
    }

    /// Sends one event, without blocking.
    pub fn send(&self, event: Event) {
        let Some(hub) = &self.hub else { return };
        let mut q = hub.queue.lock();
        if event.is_droppable() {
            if q.droppable >= hub.backlog {
                hub.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            q.droppable += 1;
        }
        q.events.push_back(event);
        drop(q);
        hub.ready.notify_one();
    }

    /// How many events were dropped because the consumer fell behind.
    pub fn dropped(&self) -> u64 {
        self.hub
            .as_ref()
            .map_or(0, |h| h.dropped.load(Ordering::Relaxed))
    }
}

/// The events of a run, in order, as an iterator. `next` waits for the next event; the
/// iterator ends after [`Event::RunFinished`], or when every [`EventSender`] is dropped
/// (a run that could not start sends no `RunFinished`).
#[derive(Debug)]
pub struct EventStream {
    hub: Arc<Hub>,
    ended: bool,
}

impl EventStream {
    /// The next event if one is waiting, without waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        let mut q = self.hub.queue.lock();
        let e = q.events.pop_front()?;
        self.ended = took(&mut q, &e);
        Some(e)
    }

    /// How many events were dropped because this stream fell behind.
    pub fn dropped(&self) -> u64 {
        self.hub.dropped.load(Ordering::Relaxed)
    }
}

/// Accounts for an event taken off the queue; true when it ends the stream.
fn took(q: &mut Queue, e: &Event) -> bool {
    if e.is_droppable() {
        q.droppable -= 1;
    }
    matches!(e, Event::RunFinished { .. })
}

impl Iterator for EventStream {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        let mut q = self.hub.queue.lock();
        loop {
            if let Some(e) = q.events.pop_front() {
                self.ended = took(&mut q, &e);
                return Some(e);
            }
            if q.senders == 0 {
                self.ended = true;
                return None;
            }
            self.hub.ready.wait(&mut q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample(i: u64) -> Event {
        Event::MemorySampled {
            rss: i,
            reserved: 0,
        }
    }

    #[test]
    fn an_absent_consumer_holds_a_bounded_backlog_and_counts_drops() {
        let (events, stream) = EventSender::stream_with_backlog(10);
        events.send(Event::RunStarted { nodes: 2 });
        for i in 0..1000 {
            events.send(sample(i));
        }
        for n in ["a", "b"] {
            events.send(Event::NodeStarted { node: n.into() });
        }
        events.send(Event::RunFinished {
            ok: true,
            elapsed: Duration::ZERO,
        });
        assert_eq!(events.dropped(), 990);
        let got: Vec<Event> = stream.collect();
        // Every lifecycle event, in order; the first 10 samples.
        assert_eq!(got.len(), 1 + 10 + 2 + 1);
        assert_eq!(got[0], Event::RunStarted { nodes: 2 });
        assert_eq!(got[10], sample(9));
        assert!(matches!(got.last(), Some(Event::RunFinished { .. })));
    }

    #[test]
    fn the_stream_ends_when_every_sender_is_gone() {
        let (events, stream) = EventSender::stream();
        let second = events.clone();
        let reader = std::thread::spawn(move || stream.count());
        events.send(Event::RunStarted { nodes: 0 });
        drop(events);
        second.send(sample(1));
        drop(second);
        assert_eq!(reader.join().unwrap(), 2);
    }

    #[test]
    fn a_callback_gets_every_event_in_order_on_its_own_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        let events = EventSender::callback(move |e| {
            let _ = tx.send(e);
        })
        .unwrap();
        for i in 0..100 {
            events.send(sample(i));
        }
        events.send(Event::RunFinished {
            ok: false,
            elapsed: Duration::ZERO,
        });
        let got: Vec<Event> = rx.iter().collect();
        assert_eq!(got.len(), 101);
        assert_eq!(got[42], sample(42));
    }

    #[test]
    fn a_stuck_consumer_never_blocks_the_sender() {
        // The consumer blocks on its first event until released; sending 100,000 events
        // meanwhile returns at once, keeping at most the backlog of samples.
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let stuck = parking_lot::Mutex::new(stuck);
        let events = EventSender::callback(move |_| {
            let _ = stuck.lock().recv();
        })
        .unwrap();
        for i in 0..100_000 {
            events.send(sample(i));
        }
        assert!(events.dropped() >= 100_000 - DEFAULT_BACKLOG as u64 - 1);
        drop(release);
    }
}
