//! The resident-memory monitor: samples the process RSS at a fixed interval on its own thread,
//! keeps the peak, and reports pressure levels (warning from [`WARNING_PERCENT`], critical
//! from [`CRITICAL_PERCENT`] of the limit). Under pressure it shrinks the run's batch size and
//! read-ahead as the memory policy says (`plan.rs`); when pressure ends it restores them.
//!
//! The wait between samples is a `recv_timeout` on a stop channel, so stopping is immediate.
//! One sample reads `/proc/self/statm` on Linux (a few microseconds); elsewhere sysinfo.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::events::{Event, EventSender};
use crate::memory::plan::{
    CRITICAL_BATCH_DIVISOR, CRITICAL_PERCENT, PRESSURE_MIN_BATCH, WARNING_BATCH_DIVISOR,
    WARNING_PERCENT, WARNING_READ_AHEAD_DIVISOR,
};
use crate::memory::{MemoryBudget, current_rss};

/// The least time between two reports to observers (memory samples, progress ticks).
pub const REPORT_EVERY: Duration = Duration::from_millis(100);

/// Pressure levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pressure {
    /// Below [`WARNING_PERCENT`] of the limit.
    Normal,
    /// At or above [`WARNING_PERCENT`].
    Warning,
    /// At or above [`CRITICAL_PERCENT`].
    Critical,
}

impl Pressure {
    /// The level for `rss` against `limit`.
    pub fn of(rss: u64, limit: u64) -> Pressure {
        if limit == 0 {
            return Pressure::Normal;
        }
        let pct = rss.saturating_mul(100) / limit;
        if pct >= CRITICAL_PERCENT {
            Pressure::Critical
        } else if pct >= WARNING_PERCENT {
            Pressure::Warning
        } else {
            Pressure::Normal
        }
    }

    /// The batch size and read-ahead at this level, from those of the run without pressure.
    fn knobs(self, base_batch: usize, base_ahead: usize) -> (usize, usize) {
        match self {
            Pressure::Normal => (base_batch, base_ahead),
            Pressure::Warning => (
                (base_batch / WARNING_BATCH_DIVISOR).max(PRESSURE_MIN_BATCH),
                (base_ahead / WARNING_READ_AHEAD_DIVISOR).max(1),
            ),
            Pressure::Critical => (
                (base_batch / CRITICAL_BATCH_DIVISOR).max(PRESSURE_MIN_BATCH),
                1,
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Pressure::Normal => "normal",
            Pressure::Warning => "warning",
            Pressure::Critical => "critical",
        }
    }
}

/// Knobs the monitor turns under pressure.
#[derive(Clone, Debug)]
pub struct Knobs {
    /// Features per batch.
    pub batch_size: Arc<AtomicUsize>,
    /// Files/pages a reader may hold read ahead.
    pub read_ahead: Arc<AtomicUsize>,
}

/// The most points a [`MemoryTrace`] keeps: when full, every other point is dropped and
/// samples are kept half as often, so a run of any length keeps at most this many, evenly
/// spread.
pub const MAX_TRACE_POINTS: usize = 2000;
/// The most pressure changes a [`MemoryTrace`] keeps.
pub const MAX_PRESSURE_MARKS: usize = 1000;

/// Memory over a run, for the run report's picture: samples (downsampled to at most
/// [`MAX_TRACE_POINTS`]) and the pressure changes.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MemoryTrace {
    /// Samples, in time order.
    pub points: Vec<MemoryPoint>,
    /// Pressure level changes, in time order.
    pub pressure: Vec<PressureMark>,
    /// Samples kept: one in this many taken at the report interval.
    #[serde(skip)]
    stride: usize,
    #[serde(skip)]
    seen: usize,
}

/// One memory sample.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MemoryPoint {
    /// Milliseconds since the run started.
    pub t_ms: f64,
    /// Resident set size, bytes.
    pub rss: u64,
    /// Bytes reserved from the budget.
    pub reserved: u64,
}

/// A change of memory pressure.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PressureMark {
    /// Milliseconds since the run started.
    pub t_ms: f64,
    /// `normal`, `warning` or `critical`.
    pub level: &'static str,
    /// Resident set size then, bytes.
    pub rss: u64,
}

impl MemoryTrace {
    fn sample(&mut self, point: MemoryPoint) {
        self.stride = self.stride.max(1);
        self.seen += 1;
        if !(self.seen - 1).is_multiple_of(self.stride) {
            return;
        }
        if self.points.len() >= MAX_TRACE_POINTS {
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride *= 2;
            self.seen = 1;
        }
        self.points.push(point);
    }

    fn pressure(&mut self, mark: PressureMark) {
        if self.pressure.len() < MAX_PRESSURE_MARKS {
            self.pressure.push(mark);
        }
    }
}

/// A running monitor; stop it to get the peak.
pub struct Monitor {
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
    peak: Arc<AtomicU64>,
    trace: Arc<parking_lot::Mutex<MemoryTrace>>,
}

impl Monitor {
    /// Starts sampling every `interval`.
    pub fn start(
        interval: Duration,
        limit: u64,
        budget: MemoryBudget,
        knobs: Knobs,
        events: EventSender,
        mut tick: Box<dyn FnMut() + Send>,
    ) -> Monitor {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let peak = Arc::new(AtomicU64::new(current_rss()));
        let peak2 = peak.clone();
        let trace = Arc::new(parking_lot::Mutex::new(MemoryTrace::default()));
        let trace2 = trace.clone();
        let started = Instant::now();
        let base_batch = knobs.batch_size.load(Ordering::Relaxed);
        let base_ahead = knobs.read_ahead.load(Ordering::Relaxed);
        let handle = std::thread::Builder::new()
            .name("sluice-monitor".into())
            .spawn(move || {
                let mut level = Pressure::Normal;
                let mut last_report: Option<Instant> = None;
                loop {
                    let rss = current_rss();
                    peak2.fetch_max(rss, Ordering::Relaxed);
                    // Observers get at most ~10 samples a second, whatever the interval.
                    if last_report.is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
                        last_report = Some(Instant::now());
                        let reserved = budget.reserved() as u64;
                        trace2.lock().sample(MemoryPoint {
                            t_ms: started.elapsed().as_secs_f64() * 1e3,
                            rss,
                            reserved,
                        });
                        events.send(Event::MemorySampled { rss, reserved });
                        tick();
                    }
                    let now = Pressure::of(rss, limit);
                    if now != level {
                        level = now;
                        let (batch, ahead) = now.knobs(base_batch, base_ahead);
                        knobs.batch_size.store(batch, Ordering::Relaxed);
                        knobs.read_ahead.store(ahead, Ordering::Relaxed);
                        trace2.lock().pressure(PressureMark {
                            t_ms: started.elapsed().as_secs_f64() * 1e3,
                            level: now.name(),
                            rss,
                        });
                        events.send(Event::MemoryPressureChanged {
                            level: now.name().into(),
                            rss,
                            limit,
                        });
                    }
                    match stopped.recv_timeout(interval) {
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                        _ => break,
                    }
                }
            })
            .ok();
        Monitor {
            stop: Some(stop),
            handle,
            peak,
            trace,
        }
    }

    /// The peak RSS seen so far.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Stops the monitor (takes one last sample) and returns the peak RSS.
    pub fn stop(mut self) -> u64 {
        self.shutdown();
        self.peak.fetch_max(current_rss(), Ordering::Relaxed);
        self.peak()
    }

    /// Stops the monitor and returns the peak RSS and the memory over the run.
    pub fn stop_with_trace(mut self) -> (u64, MemoryTrace) {
        self.shutdown();
        self.peak.fetch_max(current_rss(), Ordering::Relaxed);
        let trace = std::mem::take(&mut *self.trace.lock());
        (self.peak(), trace)
    }

    fn shutdown(&mut self) {
        self.stop.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_trace_is_thinned_evenly_and_stays_bounded() {
        let mut t = MemoryTrace::default();
        for i in 0..50_000u64 {
            t.sample(MemoryPoint {
                t_ms: i as f64,
                rss: i,
                reserved: 0,
            });
        }
        assert!(t.points.len() <= MAX_TRACE_POINTS, "{}", t.points.len());
        assert!(t.points.len() > MAX_TRACE_POINTS / 2);
        assert_eq!(t.points[0].t_ms, 0.0);
        // Evenly spread: every gap the same, and the last point near the end.
        let gap = t.points[1].t_ms - t.points[0].t_ms;
        assert!(t.points.windows(2).all(|w| w[1].t_ms - w[0].t_ms == gap));
        assert!(t.points.last().unwrap().t_ms >= 50_000.0 - 2.0 * gap);
    }

    #[test]
    fn levels() {
        assert_eq!(Pressure::of(79, 100), Pressure::Normal);
        assert_eq!(Pressure::of(80, 100), Pressure::Warning);
        assert_eq!(Pressure::of(95, 100), Pressure::Critical);
        assert_eq!(Pressure::of(95, 0), Pressure::Normal);
    }

    #[test]
    fn knobs_follow_the_policy() {
        assert_eq!(Pressure::Normal.knobs(1024, 8), (1024, 8));
        assert_eq!(Pressure::Warning.knobs(1024, 8), (256, 4));
        assert_eq!(Pressure::Critical.knobs(1024, 8), (64, 1));
        // Never below the smallest batch, never without read-ahead.
        assert_eq!(Pressure::Warning.knobs(32, 1), (PRESSURE_MIN_BATCH, 1));
        assert_eq!(Pressure::Critical.knobs(32, 1), (PRESSURE_MIN_BATCH, 1));
    }

    #[test]
    fn pressure_shrinks_knobs_and_stop_is_prompt() {
        let knobs = Knobs {
            batch_size: Arc::new(AtomicUsize::new(1024)),
            read_ahead: Arc::new(AtomicUsize::new(8)),
        };
        let (events, mut rx) = EventSender::stream();
        // A 1-byte limit is always critical.
        let m = Monitor::start(
            Duration::from_secs(3600),
            1,
            MemoryBudget::unlimited(),
            knobs.clone(),
            events,
            Box::new(|| {}),
        );
        let ev = rx
            .by_ref()
            .find(|e| matches!(e, Event::MemoryPressureChanged { .. }))
            .unwrap();
        assert!(
            matches!(ev, Event::MemoryPressureChanged { ref level, .. } if level == "critical")
        );
        assert_eq!(knobs.batch_size.load(Ordering::Relaxed), 64);
        assert_eq!(knobs.read_ahead.load(Ordering::Relaxed), 1);
        assert!(m.stop() > 0);
    }
}
